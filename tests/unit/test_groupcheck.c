/* Consumer groups' checkers (sim/groupcheck.c) judged on hand-written histories, one table row
 * each: every property has rows that break it and close legal rows that must pass (a checker
 * that never fires proves nothing). Cursors are "q" (a queue group) and "p/a", "p/b" (pub/sub
 * members); histories run on 2 partitions. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "sim/groupcheck.h"
#include "tests/unit/suite_main.h"

enum ev_kind { DELIVER, APPLY, EXPECT, FINISH };

struct ev {
    enum ev_kind kind;
    const char *cursor;
    uint32_t partition;
    /* DELIVER: generation, member, offset; APPLY: index, op, generation, member, offset */
    uint64_t index;
    uint8_t op;
    uint64_t generation;
    uint64_t member;
    uint64_t offset;
    int done;              /* APPLY: CURSOR_DONE (1) or refused (0) */
    uint64_t committed;    /* APPLY: what it left */
    uint32_t node;         /* APPLY */
    uint64_t ends[2];      /* FINISH; log starts 0 */
};

#define NO PROTO_NO_OFFSET
/* queue group "q" delivers offset o of partition p to member m in generation g */
#define DQ(p, g, m, o) {DELIVER, "q", p, 0, 0, g, m, o, 0, 0, 0, {0, 0}}
#define DP(c, p, g, m, o) {DELIVER, c, p, 0, 0, g, m, o, 0, 0, 0, {0, 0}}
/* node n applies at index i of partition p a CLAIM / COMMIT / RESET of cursor c */
#define CLAIM(n, p, i, c, g, m, left) {APPLY, c, p, i, CURSOR_CLAIM, g, m, 0, 1, left, n, {0, 0}}
#define COMMIT(n, p, i, c, g, m, o, left) {APPLY, c, p, i, CURSOR_COMMIT, g, m, o, 1, left, n, {0, 0}}
#define FENCED(n, p, i, c, g, m, o, left) {APPLY, c, p, i, CURSOR_COMMIT, g, m, o, 0, left, n, {0, 0}}
#define RESET(n, p, i, c, o) {APPLY, c, p, i, CURSOR_RESET, 0, 0, o, 1, o, n, {0, 0}}
#define WANT(c) {EXPECT, c, 0, 0, 0, 0, 0, 0, 0, 0, 0, {0, 0}}
#define END(e0, e1) {FINISH, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, {e0, e1}}

enum { EVENTS_MAX = 10, NEVER = -1 };

struct row {
    const char *name;
    int count;
    struct ev events[EVENTS_MAX];
    int fires_at;
    const char *property;
};

/* clang-format off */
static const struct row rows[] = {
    /* exclusivity */
    {"two members read one partition in one generation", 2, {DQ(0, 5, 1, 0), DQ(0, 5, 2, 1)}, 1,
     "exclusivity"},
    {"two members, one generation, the second at a later offset", 3, {DQ(1, 7, 1, 0), DQ(1, 7, 1, 1),
     DQ(1, 7, 3, 9)}, 2, "exclusivity"},
    {"the partition moves with the generation", 3, {DQ(0, 5, 1, 0), DQ(0, 6, 2, 0), DQ(0, 6, 2, 1)},
     NEVER, NULL},
    {"one generation, two members, two partitions", 2, {DQ(0, 5, 1, 0), DQ(1, 5, 2, 0)}, NEVER, NULL},
    {"an older generation reads on after a newer one began", 3, {DQ(0, 6, 2, 3), DQ(0, 5, 1, 4),
     DQ(0, 6, 2, 4)}, NEVER, NULL},
    {"pub/sub members each read everything", 2, {DP("p/a", 0, 5, 1, 0), DP("p/a", 0, 5, 2, 0)},
     NEVER, NULL},
    {"two queue groups are two groups", 2, {DQ(0, 5, 1, 0), DP("r", 0, 5, 2, 0)}, NEVER, NULL},
    /* committed offsets never go backward */
    {"a commit moves the committed offset back", 3, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     COMMIT(1, 0, 4, "q", 5, 1, 10, 10), COMMIT(1, 0, 6, "q", 5, 1, 7, 7)}, 2, "went back"},
    {"a claim reports less than was committed", 3, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     COMMIT(1, 0, 4, "q", 5, 1, 10, 10), CLAIM(1, 0, 9, "q", 6, 2, 4)}, 2, "went back"},
    {"a claim after commits says none", 3, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     COMMIT(1, 0, 4, "q", 5, 1, 10, 10), CLAIM(2, 0, 9, "q", 6, 2, NO)}, 2, "went back"},
    {"a late commit of a smaller offset keeps the larger", 4, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     COMMIT(1, 0, 4, "q", 5, 1, 10, 10), COMMIT(1, 0, 6, "q", 5, 1, 7, 10),
     COMMIT(2, 0, 6, "q", 5, 1, 7, 10)}, NEVER, NULL},
    {"a reset moves it back", 4, {CLAIM(1, 0, 3, "q", 5, 1, NO), COMMIT(1, 0, 4, "q", 5, 1, 10, 10),
     RESET(1, 0, 5, "q", 2), CLAIM(1, 0, 6, "q", 5, 1, 2)}, NEVER, NULL},
    {"a replica restarting replays older commits", 5, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     COMMIT(1, 0, 4, "q", 5, 1, 4, 4), COMMIT(1, 0, 5, "q", 5, 1, 8, 8),
     COMMIT(1, 0, 4, "q", 5, 1, 4, 4), COMMIT(1, 0, 5, "q", 5, 1, 8, 8)}, NEVER, NULL},
    {"cursors and partitions are apart", 4, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     COMMIT(1, 0, 4, "q", 5, 1, 10, 10), CLAIM(1, 1, 3, "q", 5, 1, NO),
     COMMIT(1, 1, 4, "q", 5, 1, 2, 2)}, NEVER, NULL},
    /* fencing */
    {"a commit of an older generation is accepted", 3, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     CLAIM(1, 0, 4, "q", 6, 2, NO), COMMIT(1, 0, 5, "q", 5, 1, 3, 3)}, 2, "fencing"},
    {"a commit by another member of the generation", 2, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     COMMIT(2, 0, 4, "q", 5, 2, 3, 3)}, 1, "fencing"},
    {"a commit nobody claimed", 1, {COMMIT(1, 0, 4, "q", 5, 2, 3, 3)}, 0, "nobody claimed"},
    {"a commit after a reset, before a claim", 3, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     RESET(1, 0, 4, "q", 0), COMMIT(1, 0, 5, "q", 5, 1, 3, 3)}, 2, "reset"},
    {"a claim of an older generation is accepted", 2, {CLAIM(1, 0, 3, "q", 6, 1, NO),
     CLAIM(2, 0, 4, "q", 5, 2, NO)}, 1, "fencing"},
    {"two members claim one generation", 2, {CLAIM(1, 0, 3, "q", 6, 1, NO),
     CLAIM(2, 0, 4, "q", 6, 2, NO)}, 1, "fencing"},
    {"an older commit refused, the newer accepted", 4, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     CLAIM(1, 0, 4, "q", 6, 2, NO), FENCED(1, 0, 5, "q", 5, 1, 3, NO),
     COMMIT(1, 0, 6, "q", 6, 2, 4, 4)}, NEVER, NULL},
    {"a claim retried, a reset, another member of the generation", 4, {CLAIM(1, 0, 3, "q", 6, 1, NO),
     CLAIM(1, 0, 4, "q", 6, 1, NO), RESET(1, 0, 5, "q", 0), CLAIM(1, 0, 6, "q", 6, 2, 0)}, NEVER,
     NULL},
    {"a pub/sub member's cursor is its own", 3, {CLAIM(1, 0, 3, "p/a", 6, 1, NO),
     CLAIM(1, 0, 4, "p/b", 5, 2, NO), COMMIT(1, 0, 5, "p/b", 5, 2, 1, 1)}, NEVER, NULL},
    {"a claim reported late by a lagging replica is judged in index order", 3,
     {CLAIM(1, 0, 3, "q", 5, 1, NO), COMMIT(1, 0, 7, "q", 5, 1, 3, 3), CLAIM(2, 0, 5, "q", 6, 2, NO)},
     2, "fencing"},
    /* replicas agree */
    {"two replicas apply one index differently", 2, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     CLAIM(2, 0, 3, "q", 5, 2, NO)}, 1, "replicas"},
    {"a replica refuses what another accepted", 3, {CLAIM(1, 0, 3, "q", 5, 1, NO),
     COMMIT(1, 0, 4, "q", 5, 1, 3, 3), FENCED(2, 0, 4, "q", 5, 1, 3, NO)}, 2, "replicas"},
    {"replicas agree on a refusal", 2, {FENCED(1, 0, 4, "q", 5, 1, 3, NO),
     FENCED(2, 0, 4, "q", 5, 1, 3, NO)}, NEVER, NULL},
    /* at least once */
    {"an offset no member was delivered", 4, {WANT("q"), DQ(0, 5, 1, 0), DQ(0, 5, 1, 2), END(3, 0)},
     3, "at-least-once"},
    {"a partition never read", 3, {WANT("q"), DQ(0, 5, 1, 0), END(1, 2)}, 2, "partition 1"},
    {"a pub/sub member misses what another read", 5, {WANT("p/a"), WANT("p/b"),
     DP("p/a", 0, 5, 1, 0), DP("p/b", 0, 6, 2, 1), END(2, 0)}, 4, "at-least-once"},
    {"members together cover the log", 6, {WANT("q"), DQ(0, 5, 1, 0), DQ(0, 6, 2, 1), DQ(0, 6, 2, 1),
     DQ(1, 6, 3, 0), END(2, 1)}, NEVER, NULL},
    {"a cursor not expected covers nothing", 2, {DQ(0, 5, 1, 0), END(4, 4)}, NEVER, NULL},
};
/* clang-format on */

enum { ROWS = (int)(sizeof rows / sizeof rows[0]) };

static struct proto_bytes name_of(const char *s) {
    return (struct proto_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static int run_event(struct groupcheck *c, const struct ev *e, char *why) {
    switch (e->kind) {
    case DELIVER:
        return groupcheck_delivered(c, name_of(e->cursor), strchr(e->cursor, '/') == NULL,
                                    e->partition, e->generation, e->member, e->offset, why);
    case APPLY: {
        struct cursor_entry ce = {.op = e->op, .name = name_of(e->cursor),
                                  .generation = e->generation, .member = e->member,
                                  .offset = e->offset};
        return groupcheck_applied(c, e->partition, e->node, e->index, &ce, e->done, e->committed,
                                  why);
    }
    case EXPECT: groupcheck_expect(c, name_of(e->cursor)); return 0;
    case FINISH: {
        static const uint64_t starts[2] = {0, 0};
        return groupcheck_finish(c, starts, e->ends, why);
    }
    }
    return 0;
}

START_TEST(table) {
    const struct row *r = &rows[_i];
    struct groupcheck *c = groupcheck_create(2);
    char why[GROUPCHECK_WHY_MAX];
    int fired = NEVER;
    for (int i = 0; i < r->count && fired == NEVER; i++) {
        why[0] = '\0';
        if (run_event(c, &r->events[i], why) != 0) fired = i;
    }
    ck_assert_msg(fired == r->fires_at, "%s: fired at %d, want %d (%s)", r->name, fired,
                  r->fires_at, why);
    if (r->property != NULL)
        ck_assert_msg(strstr(why, r->property) != NULL, "%s: \"%s\" does not name %s", r->name,
                      why, r->property);
    ck_assert_uint_eq(groupcheck_unchecked(c), 0);
    groupcheck_destroy(c);
}
END_TEST

START_TEST(every_property_has_a_firing_row) {
    static const char *const properties[] = {"exclusivity", "went back", "fencing", "replicas",
                                             "at-least-once"};
    for (size_t p = 0; p < sizeof properties / sizeof properties[0]; p++) {
        int n = 0;
        for (int i = 0; i < ROWS; i++)
            n += rows[i].property != NULL && strstr(rows[i].property, properties[p]) != NULL;
        ck_assert_msg(n >= 1, "%s fires in no row", properties[p]);
    }
}
END_TEST

/* The log start exempts what retention deleted before anyone read it. */
START_TEST(below_the_log_start_is_exempt) {
    struct groupcheck *c = groupcheck_create(1);
    char why[GROUPCHECK_WHY_MAX];
    groupcheck_expect(c, name_of("q"));
    ck_assert_int_eq(groupcheck_delivered(c, name_of("q"), 1, 0, 5, 1, 3, why), 0);
    uint64_t start = 3, end = 4;
    ck_assert_int_eq(groupcheck_finish(c, &start, &end, why), 0);
    start = 2;
    ck_assert_int_eq(groupcheck_finish(c, &start, &end, why), -1);
    groupcheck_destroy(c);
}
END_TEST

/* Offsets and cursors beyond the bounds are counted, not checked. */
START_TEST(beyond_the_bounds_is_counted) {
    struct groupcheck *c = groupcheck_create(1);
    char why[GROUPCHECK_WHY_MAX];
    ck_assert_int_eq(groupcheck_delivered(c, name_of("q"), 1, 0, 5, 1, GROUPCHECK_OFFSETS_MAX, why), 0);
    ck_assert_uint_eq(groupcheck_unchecked(c), 1);
    char name[16];
    for (int i = 0; i < GROUPCHECK_CURSORS_MAX; i++) {
        snprintf(name, sizeof name, "g%d", i);
        groupcheck_expect(c, name_of(name));
    }
    ck_assert_uint_eq(groupcheck_unchecked(c), 2);   /* "q" took one place */
    groupcheck_destroy(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("groupcheck");
    TCase *tc = tcase_create("histories");
    tcase_add_loop_test(tc, table, 0, ROWS);
    tcase_add_test(tc, every_property_has_a_firing_row);
    tcase_add_test(tc, below_the_log_start_is_exempt);
    tcase_add_test(tc, beyond_the_bounds_is_counted);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
