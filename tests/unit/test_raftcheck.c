/* The Raft safety checkers judged on hand-written histories (a table: one row per scenario, a
 * script of observations and the one that must fire, if any). A checker that never fires proves
 * nothing, so every property has rows that break it (paper figure 3), and rows of legal histories
 * that come close to breaking it and must pass. Then the entry digest and the bounds. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sim/raftcheck.h"
#include "tests/unit/suite_main.h"

/* Entries are a type and a one-byte payload; rows name the payload ('a', 'b', ...). */
enum { ENTRY_TYPE = 1 };

enum ev_kind { EV_LEADER, EV_ENTRY, EV_APPLIED, EV_NEW_LEADER, EV_ACKED, EV_SNAPSHOT };

enum {
    CASE_GROUPS = 2,
    CASE_EVENTS_MAX = 10,
    FAKE_LOG_MAX = 8, /* a new leader's log: terms by index - 1, ended by the first 0 */
    NEVER_FIRES = -1,
};

struct ev {
    enum ev_kind kind;
    uint32_t group;
    uint32_t node;
    uint64_t index;
    uint64_t term;
    uint64_t prev_term;         /* EV_ENTRY */
    char payload;               /* EV_ENTRY, EV_APPLIED, EV_ACKED */
    uint64_t leader_term;       /* EV_APPLIED */
    uint64_t log[FAKE_LOG_MAX]; /* EV_NEW_LEADER */
};

#define LEADER(g, t, n)                                                                            \
    { .kind = EV_LEADER, .group = (g), .term = (t), .node = (n) }
#define ENTRY(g, i, t, pt, p)                                                                      \
    { .kind = EV_ENTRY, .group = (g), .index = (i), .term = (t), .prev_term = (pt), .payload = (p) }
#define APPLIED(g, n, i, t, p, lt)                                                                 \
    {                                                                                              \
        .kind = EV_APPLIED, .group = (g), .node = (n), .index = (i), .term = (t), .payload = (p),  \
        .leader_term = (lt)                                                                        \
    }
/* A node seen leading term t for the first time, with its log's terms (0 alone: an empty log). */
#define NEW_LEADER(g, n, t, ...)                                                                   \
    {                                                                                              \
        .kind = EV_NEW_LEADER, .group = (g), .node = (n), .term = (t), .log = { __VA_ARGS__ }      \
    }
#define ACKED(g, i, t, p)                                                                          \
    { .kind = EV_ACKED, .group = (g), .index = (i), .term = (t), .payload = (p) }
/* Node n holds a snapshot image (named by p) of group g as of index i. */
#define SNAPSHOT(g, n, i, p)                                                                       \
    { .kind = EV_SNAPSHOT, .group = (g), .node = (n), .index = (i), .payload = (p) }

struct rc_case {
    const char *name;
    uint32_t event_count;
    struct ev events[CASE_EVENTS_MAX];
    int fires_at;         /* the event that must return -1, or NEVER_FIRES */
    const char *property; /* the why string names it */
    const char *detail;   /* and says this too (NULL: not checked) */
};

/* clang-format off */
static const struct rc_case cases[] = {
    /* ---- election safety ---- */
    {"two nodes lead one term",
     2, {LEADER(1, 2, 1), LEADER(1, 2, 2)},
     1, "election safety", "two leaders"},
    {"a second leader of an old term, long after",
     4, {LEADER(1, 2, 1), LEADER(1, 3, 2), LEADER(1, 4, 3), LEADER(1, 2, 3)},
     3, "election safety", NULL},
    {"the first leader seen again, then a rival",
     3, {LEADER(1, 5, 1), LEADER(1, 5, 1), LEADER(1, 5, 2)},
     2, "election safety", NULL},
    {"the same leader reported many times for its term",
     4, {LEADER(1, 2, 1), LEADER(1, 2, 1), LEADER(1, 3, 2), LEADER(1, 2, 1)},
     NEVER_FIRES, NULL, NULL},
    {"one leader per term, a new one each term",
     4, {LEADER(1, 1, 1), LEADER(1, 2, 2), LEADER(1, 3, 1), LEADER(1, 4, 3)},
     NEVER_FIRES, NULL, NULL},
    {"groups elect independently: same term, different leaders",
     3, {LEADER(1, 2, 1), LEADER(2, 2, 2), LEADER(1, 2, 1)},
     NEVER_FIRES, NULL, NULL},

    /* ---- log matching ---- */
    {"same (index, term), different contents",
     2, {ENTRY(1, 1, 1, 0, 'a'), ENTRY(1, 1, 1, 0, 'b')},
     1, "log matching", "digests differ"},
    {"same (index, term) and contents, different predecessors",
     4, {ENTRY(1, 1, 1, 0, 'a'), ENTRY(1, 2, 2, 1, 'b'), ENTRY(1, 3, 3, 2, 'c'),
         ENTRY(1, 3, 3, 1, 'c')},
     3, "log matching", "previous terms differ"},
    {"contents and predecessor both differ: the contents are named",
     2, {ENTRY(1, 4, 2, 1, 'a'), ENTRY(1, 4, 2, 2, 'b')},
     1, "log matching", "digests differ"},
    {"a conflict with the first of many reports",
     5, {ENTRY(1, 1, 1, 0, 'a'), ENTRY(1, 1, 1, 0, 'a'), ENTRY(1, 2, 1, 1, 'b'),
         ENTRY(1, 1, 1, 0, 'a'), ENTRY(1, 1, 1, 0, 'z')},
     4, "log matching", NULL},
    {"the same entry reported by several nodes and again after restarts",
     6, {ENTRY(1, 1, 1, 0, 'a'), ENTRY(1, 1, 1, 0, 'a'), ENTRY(1, 1, 1, 0, 'a'),
         ENTRY(1, 2, 1, 1, 'b'), ENTRY(1, 2, 1, 1, 'b'), ENTRY(1, 1, 1, 0, 'a')},
     NEVER_FIRES, NULL, NULL},
    {"one index, different terms: an overwritten uncommitted entry is legal",
     3, {ENTRY(1, 2, 1, 1, 'b'), ENTRY(1, 2, 2, 1, 'x'), ENTRY(1, 2, 3, 2, 'y')},
     NEVER_FIRES, NULL, NULL},
    {"groups have their own logs",
     2, {ENTRY(1, 1, 1, 0, 'a'), ENTRY(2, 1, 1, 0, 'b')},
     NEVER_FIRES, NULL, NULL},

    /* ---- state machine safety ---- */
    {"a different entry applied at an applied index",
     2, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 2, 1, 1, 'b', 0)},
     1, "state machine safety", NULL},
    {"the same contents from another term at an applied index",
     2, {APPLIED(1, 1, 1, 1, 'a', 0), APPLIED(1, 2, 1, 2, 'a', 0)},
     1, "state machine safety", NULL},
    {"an index applied before the one below it",
     2, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 3, 1, 'c', 1)},
     1, "state machine safety", "before"},
    {"a first apply above index 1",
     1, {APPLIED(1, 1, 2, 1, 'b', 0)},
     0, "state machine safety", "before"},
    {"a restarted node applies a different entry at an old index",
     4, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 2, 1, 'b', 1), APPLIED(1, 1, 3, 1, 'c', 1),
         APPLIED(1, 1, 2, 2, 'x', 0)},
     3, "state machine safety", NULL},
    {"re-applying the identical entries after a restart",
     5, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 2, 1, 'b', 1), APPLIED(1, 2, 1, 1, 'a', 0),
         APPLIED(1, 1, 1, 1, 'a', 0), APPLIED(1, 1, 2, 1, 'b', 0)},
     NEVER_FIRES, NULL, NULL},
    {"groups apply independently",
     3, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(2, 1, 1, 1, 'b', 1), APPLIED(2, 2, 1, 1, 'b', 0)},
     NEVER_FIRES, NULL, NULL},

    /* ---- leader completeness ---- */
    {"a later leader whose log is too short",
     3, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 2, 1, 'b', 1), NEW_LEADER(1, 2, 2, 1)},
     2, "leader completeness", "shorter"},
    {"a later leader with another entry at a committed index",
     3, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 2, 1, 'b', 1), NEW_LEADER(1, 2, 2, 1, 2)},
     2, "leader completeness", "(2,1)"},
    {"a later leader with an empty log",
     2, {APPLIED(1, 1, 1, 3, 'a', 3), NEW_LEADER(1, 2, 7, 0)},
     1, "leader completeness", NULL},
    {"a later leader that has all the committed entries and more",
     4, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 2, 1, 'b', 1), NEW_LEADER(1, 2, 2, 1, 1),
         NEW_LEADER(1, 3, 3, 1, 1, 2, 2, 3)},
     NEVER_FIRES, NULL, NULL},
    {"a late winner of an older election lacks newer commits",
     3, {APPLIED(1, 1, 1, 5, 'a', 5), APPLIED(1, 1, 2, 5, 'b', 5), NEW_LEADER(1, 2, 3, 0)},
     NEVER_FIRES, NULL, NULL},
    {"entries committed in the leader's own term are not required of it",
     2, {APPLIED(1, 1, 1, 4, 'a', 4), NEW_LEADER(1, 1, 4, 0)},
     NEVER_FIRES, NULL, NULL},
    {"entries applied only by followers are not required",
     3, {APPLIED(1, 2, 1, 1, 'a', 0), APPLIED(1, 3, 2, 1, 'b', 0), NEW_LEADER(1, 1, 2, 0)},
     NEVER_FIRES, NULL, NULL},
    {"follower-only entries above do not hide an older commit",
     3, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 2, 2, 1, 'b', 0), NEW_LEADER(1, 3, 2, 0)},
     2, "leader completeness", "(1,1)"},
    {"a leader between two commit terms needs only the older commits",
     4, {APPLIED(1, 1, 1, 2, 'a', 2), APPLIED(1, 2, 2, 5, 'b', 5), NEW_LEADER(1, 3, 4, 2),
         NEW_LEADER(1, 1, 3, 2, 3)},
     NEVER_FIRES, NULL, NULL},
    {"a leader between two commit terms lacking the older commit",
     3, {APPLIED(1, 1, 1, 2, 'a', 2), APPLIED(1, 2, 2, 5, 'b', 5), NEW_LEADER(1, 3, 4, 3)},
     2, "leader completeness", "committed in term 2"},
    {"a leader after both commit terms lacking the newer commit",
     3, {APPLIED(1, 1, 1, 2, 'a', 2), APPLIED(1, 2, 2, 5, 'b', 5), NEW_LEADER(1, 3, 6, 2)},
     2, "leader completeness", "committed in term 5"},
    {"the commit term is the earliest leader's that applied it",
     3, {APPLIED(1, 1, 1, 1, 'a', 4), APPLIED(1, 2, 1, 1, 'a', 2), NEW_LEADER(1, 3, 3, 0)},
     2, "leader completeness", "committed in term 2"},
    {"a leader's apply after followers' makes the entry required",
     3, {APPLIED(1, 2, 1, 1, 'a', 0), APPLIED(1, 1, 1, 1, 'a', 1), NEW_LEADER(1, 3, 2, 0)},
     2, "leader completeness", NULL},
    {"commits in one group bind no leader of another",
     2, {APPLIED(1, 1, 1, 1, 'a', 1), NEW_LEADER(2, 2, 2, 0)},
     NEVER_FIRES, NULL, NULL},

    /* ---- durability ---- */
    {"an ack when nothing was applied",
     1, {ACKED(1, 1, 1, 'a')},
     0, "durability", "no node applied it"},
    {"an ack for an index nobody applied",
     2, {APPLIED(1, 1, 1, 1, 'a', 1), ACKED(1, 2, 1, 'b')},
     1, "durability", "no node applied it"},
    {"an ack whose entry differs from the applied one",
     2, {APPLIED(1, 1, 1, 1, 'a', 1), ACKED(1, 1, 1, 'b')},
     1, "durability", "another entry"},
    {"an ack whose term differs from the applied one",
     2, {APPLIED(1, 1, 1, 1, 'a', 1), ACKED(1, 1, 2, 'a')},
     1, "durability", "another entry"},
    {"an ack in a group where it was not applied",
     2, {APPLIED(1, 1, 1, 1, 'a', 1), ACKED(2, 1, 1, 'a')},
     1, "durability", NULL},
    {"an acked write lost after every node lost power",
     4, {APPLIED(1, 1, 1, 1, 'a', 1), ACKED(1, 1, 1, 'a'), LEADER(1, 2, 2),
         APPLIED(1, 2, 1, 2, 'x', 2)},
     3, "state machine safety", NULL},
    {"a duplicate ack, and acks of older entries",
     5, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 2, 1, 'b', 1), ACKED(1, 2, 1, 'b'),
         ACKED(1, 2, 1, 'b'), ACKED(1, 1, 1, 'a')},
     NEVER_FIRES, NULL, NULL},

    /* ---- snapshots ---- */
    {"two images of one index differ",
     4, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 2, 1, 'b', 1), SNAPSHOT(1, 1, 2, 's'),
         SNAPSHOT(1, 2, 2, 't')},
     3, "snapshot", "differs"},
    {"a restored image differs from the one taken",
     4, {APPLIED(1, 1, 1, 1, 'a', 1), SNAPSHOT(1, 1, 1, 's'), SNAPSHOT(1, 2, 1, 's'),
         SNAPSHOT(1, 3, 1, 'x')},
     3, "snapshot", NULL},
    {"an image of entries nobody applied",
     2, {APPLIED(1, 1, 1, 1, 'a', 1), SNAPSHOT(1, 1, 2, 's')},
     1, "snapshot", "beyond every applied entry"},
    {"equal images at one index, other images at other indexes and groups",
     6, {APPLIED(1, 1, 1, 1, 'a', 1), APPLIED(1, 1, 2, 1, 'b', 1), SNAPSHOT(1, 1, 1, 's'),
         SNAPSHOT(1, 2, 1, 's'), SNAPSHOT(1, 3, 2, 't'), APPLIED(2, 1, 1, 1, 'a', 1)},
     NEVER_FIRES, NULL, NULL},

    /* ---- a whole legal run: elections, replication, commits, a leader change ---- */
    {"three nodes, two terms",
     10, {LEADER(1, 1, 1), NEW_LEADER(1, 1, 1, 0), ENTRY(1, 1, 1, 0, 'a'),
          ENTRY(1, 1, 1, 0, 'a'), APPLIED(1, 1, 1, 1, 'a', 1), ACKED(1, 1, 1, 'a'),
          APPLIED(1, 2, 1, 1, 'a', 0), LEADER(1, 2, 2), NEW_LEADER(1, 2, 2, 1),
          ENTRY(1, 2, 2, 1, 'n')},
     NEVER_FIRES, NULL, NULL},
};
/* clang-format on */

enum { CASE_COUNT = (int)(sizeof cases / sizeof cases[0]) };

struct fake_log {
    const uint64_t *terms; /* by index - 1 */
    uint64_t count;
    uint64_t calls;
};

/* Counts its calls: the fake logs the tests pass are never const objects. */
static uint64_t fake_term_at(const void *arg, uint64_t index) {
    struct fake_log *f = (struct fake_log *)arg;
    f->calls++;
    ck_assert_uint_ge(index, 1);
    return index <= f->count ? f->terms[index - 1] : UINT64_MAX;
}

static uint64_t digest_of(char payload) { return raftcheck_digest(ENTRY_TYPE, &payload, 1); }

static int run_event(struct raftcheck *c, const struct ev *e, char *why) {
    switch (e->kind) {
    case EV_LEADER: return raftcheck_leader(c, e->group, e->term, e->node, why);
    case EV_ENTRY:
        return raftcheck_entry(c, e->group, e->index, e->term, e->prev_term, digest_of(e->payload),
                               why);
    case EV_APPLIED:
        return raftcheck_applied(c, e->group, e->node, e->index, e->term, digest_of(e->payload),
                                 e->leader_term, why);
    case EV_NEW_LEADER: {
        struct fake_log f = {e->log, 0, 0};
        while (f.count < FAKE_LOG_MAX && e->log[f.count] != 0)
            f.count++;
        return raftcheck_new_leader(c, e->group, e->node, e->term, fake_term_at, &f, why);
    }
    case EV_ACKED:
        return raftcheck_acked(c, e->group, e->index, e->term, digest_of(e->payload), why);
    case EV_SNAPSHOT:
        return raftcheck_snapshot(c, e->group, e->node, e->index, digest_of(e->payload), why);
    }
    ck_abort_msg("unknown event kind %d", (int)e->kind);
    return 0;
}

START_TEST(table) {
    const struct rc_case *k = &cases[_i];
    ck_assert_uint_le(k->event_count, CASE_EVENTS_MAX);
    if (k->fires_at != NEVER_FIRES) ck_assert_int_lt(k->fires_at, (int)k->event_count);
    struct raftcheck *c = raftcheck_create(CASE_GROUPS);
    char why[RAFTCHECK_WHY_MAX];
    for (uint32_t i = 0; i < k->event_count; i++) {
        why[0] = '\0';
        int rc = run_event(c, &k->events[i], why);
        if ((int)i != k->fires_at) {
            ck_assert_msg(rc == 0, "%s: event %u fired: %s", k->name, i, why);
            continue;
        }
        ck_assert_msg(rc == -1, "%s: event %u did not fire", k->name, i);
        ck_assert_msg(strstr(why, k->property) != NULL, "%s: why \"%s\" does not name %s", k->name,
                      why, k->property);
        if (k->detail != NULL)
            ck_assert_msg(strstr(why, k->detail) != NULL, "%s: why \"%s\" does not say %s", k->name,
                          why, k->detail);
        ck_assert_uint_lt(strlen(why), RAFTCHECK_WHY_MAX);
        ck_assert_ptr_null(strchr(why, '\n')); /* one line */
        break;
    }
    ck_assert_uint_eq(raftcheck_unchecked(c), 0);
    raftcheck_destroy(c);
}
END_TEST

START_TEST(every_property_has_a_row_that_fires) {
    static const char *const properties[] = {"election safety", "log matching",
                                             "state machine safety", "leader completeness",
                                             "durability", "snapshot"};
    for (size_t p = 0; p < sizeof properties / sizeof properties[0]; p++) {
        int rows = 0;
        for (int i = 0; i < CASE_COUNT; i++) {
            if (cases[i].fires_at != NEVER_FIRES && strcmp(cases[i].property, properties[p]) == 0)
                rows++;
        }
        ck_assert_msg(rows >= 2, "%s: %d firing rows", properties[p], rows);
    }
}
END_TEST

/* The new leader's log is read where a commit requires it, and not at all when nothing does. */
START_TEST(new_leader_reads_the_log_only_where_required) {
    struct raftcheck *c = raftcheck_create(1);
    char why[RAFTCHECK_WHY_MAX];
    const uint64_t terms[] = {1, 1, 2};
    struct fake_log f = {terms, 3, 0};
    ck_assert_int_eq(raftcheck_new_leader(c, 1, 1, 1, fake_term_at, &f, why), 0);
    ck_assert_uint_eq(f.calls, 0);
    ck_assert_int_eq(raftcheck_applied(c, 1, 1, 1, 1, digest_of('a'), 0, why), 0);
    ck_assert_int_eq(raftcheck_new_leader(c, 1, 2, 2, fake_term_at, &f, why), 0);
    ck_assert_uint_eq(f.calls, 0); /* follower-only: nothing required */
    ck_assert_int_eq(raftcheck_applied(c, 1, 1, 2, 1, digest_of('b'), 1, why), 0);
    ck_assert_int_eq(raftcheck_applied(c, 1, 1, 3, 2, digest_of('c'), 2, why), 0);
    ck_assert_int_eq(raftcheck_new_leader(c, 1, 2, 3, fake_term_at, &f, why), 0);
    ck_assert_uint_ge(f.calls, 1);
    raftcheck_destroy(c);
}
END_TEST

START_TEST(applied_last_is_the_highest_index_applied_per_group) {
    struct raftcheck *c = raftcheck_create(2);
    char why[RAFTCHECK_WHY_MAX];
    ck_assert_uint_eq(raftcheck_applied_last(c, 1), 0);
    ck_assert_uint_eq(raftcheck_applied_last(c, 2), 0);
    for (uint64_t i = 1; i <= 5; i++)
        ck_assert_int_eq(raftcheck_applied(c, 1, 1, i, 1, digest_of((char)('a' + i)), 1, why), 0);
    /* a lagging node catches up to index 2 */
    ck_assert_int_eq(raftcheck_applied(c, 1, 2, 2, 1, digest_of((char)('a' + 2)), 0, why), 0);
    ck_assert_int_eq(raftcheck_applied(c, 2, 1, 1, 1, digest_of('z'), 1, why), 0);
    ck_assert_uint_eq(raftcheck_applied_last(c, 1), 5);
    ck_assert_uint_eq(raftcheck_applied_last(c, 2), 1);
    ck_assert_int_eq(raftcheck_applied(c, 1, 1, 9, 1, digest_of('q'), 1, why), -1);
    ck_assert_uint_eq(raftcheck_applied_last(c, 1), 5); /* a refused apply records nothing */
    raftcheck_destroy(c);
}
END_TEST

START_TEST(the_last_group_is_usable) {
    struct raftcheck *c = raftcheck_create(RAFTCHECK_GROUPS_MAX);
    char why[RAFTCHECK_WHY_MAX];
    uint32_t g = RAFTCHECK_GROUPS_MAX;
    ck_assert_int_eq(raftcheck_applied(c, g, 1, 1, 1, digest_of('a'), 1, why), 0);
    ck_assert_int_eq(raftcheck_acked(c, g, 1, 1, digest_of('a'), why), 0);
    struct fake_log empty = {NULL, 0, 0};
    ck_assert_int_eq(raftcheck_new_leader(c, g, 2, 2, fake_term_at, &empty, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "leader completeness"));
    ck_assert_uint_eq(raftcheck_applied_last(c, g), 1);
    ck_assert_uint_eq(raftcheck_applied_last(c, 1), 0);
    raftcheck_destroy(c);
}
END_TEST

/* ---- the digest ---- */

START_TEST(digest_is_a_function_of_type_and_data) {
    const char data[] = "hello, raft";
    uint64_t d = raftcheck_digest(1, data, sizeof data - 1);
    ck_assert_uint_eq(raftcheck_digest(1, data, sizeof data - 1), d);
    char copy[sizeof data];
    memcpy(copy, data, sizeof data);
    ck_assert_uint_eq(raftcheck_digest(1, copy, sizeof data - 1), d); /* bytes, not addresses */
    ck_assert_uint_eq(raftcheck_digest(2, NULL, 0), raftcheck_digest(2, "", 0));
}
END_TEST

START_TEST(digest_distinguishes_type_and_data) {
    const uint8_t x[] = {'a', 'b', 'c', 0};
    const uint8_t y[] = {'a', 'b', 'd', 0};
    const uint8_t swapped[] = {'b', 'a', 'c', 0};
    uint64_t d = raftcheck_digest(1, x, 3);
    ck_assert_uint_ne(raftcheck_digest(2, x, 3), d); /* type */
    ck_assert_uint_ne(raftcheck_digest(0, x, 3), d);
    ck_assert_uint_ne(raftcheck_digest(1, y, 3), d);       /* last byte */
    ck_assert_uint_ne(raftcheck_digest(1, swapped, 3), d); /* order */
    ck_assert_uint_ne(raftcheck_digest(1, x, 2), d);       /* a prefix */
    ck_assert_uint_ne(raftcheck_digest(1, x, 4), d);       /* a trailing zero byte */
    ck_assert_uint_ne(raftcheck_digest(1, NULL, 0), raftcheck_digest(2, NULL, 0)); /* empty data */
    ck_assert_uint_ne(raftcheck_digest(1, x, 0), raftcheck_digest(1, x + 3, 1));   /* "" vs "\0" */
    /* every single-byte payload of one type is its own */
    uint32_t equal = 0;
    for (uint32_t a = 0; a < 256; a++) {
        uint8_t pa = (uint8_t)a;
        for (uint32_t b = a + 1; b < 256; b++) {
            uint8_t pb = (uint8_t)b;
            equal += raftcheck_digest(1, &pa, 1) == raftcheck_digest(1, &pb, 1);
        }
    }
    ck_assert_uint_eq(equal, 0);
}
END_TEST

/* ---- bounds ---- */

enum { MANY = 50000 };

/* Far more entries, leaders and applies than the initial tables hold: every one is still checked
 * (a conflict with the very first is still found) and nothing is counted unchecked. */
START_TEST(many_distinct_observations_stay_checked) {
    struct raftcheck *c = raftcheck_create(2);
    char why[RAFTCHECK_WHY_MAX];
    uint64_t fired = 0; /* counted, not asserted each time: a Check assert costs a syscall */
    for (uint64_t i = 1; i <= MANY; i++) {
        uint32_t g = 1 + (uint32_t)(i & 1);
        uint64_t term = 1 + i / 100;
        fired += raftcheck_leader(c, g, i, (uint32_t)(i % 5) + 1, why) != 0;
        fired += raftcheck_entry(c, g, i, term, term, i * 7 + 1, why) != 0;
        fired += raftcheck_entry(c, g, i, term + 1, term, i * 7 + 2, why) != 0;
        fired += raftcheck_applied(c, 1, 1, i, term, i * 7 + 1, term, why) != 0;
    }
    ck_assert_uint_eq(fired, 0);
    ck_assert_uint_eq(raftcheck_unchecked(c), 0);
    ck_assert_uint_eq(raftcheck_applied_last(c, 1), MANY);
    for (uint64_t i = 1; i <= MANY; i += 997) { /* all still remembered, as first reported */
        uint32_t g = 1 + (uint32_t)(i & 1);
        uint64_t term = 1 + i / 100;
        ck_assert_int_eq(raftcheck_leader(c, g, i, (uint32_t)(i % 5) + 1, why), 0);
        ck_assert_int_eq(raftcheck_entry(c, g, i, term, term, i * 7 + 1, why), 0);
        ck_assert_int_eq(raftcheck_applied(c, 1, 2, i, term, i * 7 + 1, 0, why), 0);
        ck_assert_int_eq(raftcheck_acked(c, 1, i, term, i * 7 + 1, why), 0);
    }
    /* index 2 went to group 1, in term 1 */
    ck_assert_int_eq(raftcheck_leader(c, 1, 2, 9, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "election safety"));
    ck_assert_int_eq(raftcheck_entry(c, 1, 2, 1, 1, 0, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "log matching"));
    ck_assert_int_eq(raftcheck_applied(c, 1, 3, 1, 1, 0, 0, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "state machine safety"));
    ck_assert_int_eq(raftcheck_acked(c, 1, MANY, 1 + MANY / 100, 0, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "durability"));
    const uint64_t none[] = {0};
    struct fake_log empty = {none, 0, 0};
    ck_assert_int_eq(raftcheck_new_leader(c, 1, 1, MANY, fake_term_at, &empty, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "leader completeness"));
    ck_assert_uint_eq(raftcheck_unchecked(c), 0);
    raftcheck_destroy(c);
}
END_TEST

/* Exactly RAFTCHECK_ENTRIES_MAX entries are remembered and checked; the next is counted, not
 * checked; the remembered ones stay checked. */
START_TEST(entries_beyond_the_bound_are_counted_not_checked) {
    struct raftcheck *c = raftcheck_create(1);
    char why[RAFTCHECK_WHY_MAX];
    uint64_t fired = 0;
    for (uint64_t i = 1; i <= RAFTCHECK_ENTRIES_MAX; i++)
        fired += raftcheck_entry(c, 1, i, 1, 1, i, why) != 0;
    ck_assert_uint_eq(fired, 0);
    ck_assert_uint_eq(raftcheck_unchecked(c), 0);
    uint64_t beyond = (uint64_t)RAFTCHECK_ENTRIES_MAX + 1;
    ck_assert_int_eq(raftcheck_entry(c, 1, beyond, 1, 1, 1, why), 0);
    ck_assert_uint_eq(raftcheck_unchecked(c), 1);
    ck_assert_int_eq(raftcheck_entry(c, 1, beyond, 1, 1, 2, why), 0); /* not remembered */
    ck_assert_uint_eq(raftcheck_unchecked(c), 2);
    ck_assert_int_eq(raftcheck_entry(c, 1, RAFTCHECK_ENTRIES_MAX, 1, 1, RAFTCHECK_ENTRIES_MAX, why),
                     0);
    ck_assert_int_eq(raftcheck_entry(c, 1, 1, 1, 1, 2, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "log matching"));
    ck_assert_uint_eq(raftcheck_unchecked(c), 2);
    raftcheck_destroy(c);
}
END_TEST

/* Leaders have the same bound: RAFTCHECK_ENTRIES_MAX (group, term) pairs. */
START_TEST(leaders_beyond_the_bound_are_counted_not_checked) {
    struct raftcheck *c = raftcheck_create(1);
    char why[RAFTCHECK_WHY_MAX];
    uint64_t fired = 0;
    for (uint64_t term = 1; term <= RAFTCHECK_ENTRIES_MAX; term++)
        fired += raftcheck_leader(c, 1, term, (uint32_t)(term % 3) + 1, why) != 0;
    ck_assert_uint_eq(fired, 0);
    ck_assert_uint_eq(raftcheck_unchecked(c), 0);
    uint64_t beyond = (uint64_t)RAFTCHECK_ENTRIES_MAX + 1;
    ck_assert_int_eq(raftcheck_leader(c, 1, beyond, 1, why), 0);
    ck_assert_int_eq(raftcheck_leader(c, 1, beyond, 2, why), 0); /* not remembered */
    ck_assert_uint_eq(raftcheck_unchecked(c), 2);
    ck_assert_int_eq(raftcheck_leader(c, 1, 1, 3, why), -1); /* term 1 was n2's */
    ck_assert_ptr_nonnull(strstr(why, "election safety"));
    raftcheck_destroy(c);
}
END_TEST

/* Exactly RAFTCHECK_INDEX_MAX applied indexes are remembered per group; the next is counted. */
START_TEST(applies_up_to_the_bound_are_checked) {
    struct raftcheck *c = raftcheck_create(1);
    char why[RAFTCHECK_WHY_MAX];
    uint64_t fired = 0;
    for (uint64_t i = 1; i <= RAFTCHECK_INDEX_MAX; i++)
        fired += raftcheck_applied(c, 1, 1, i, 1, i, 1, why) != 0;
    ck_assert_uint_eq(fired, 0);
    ck_assert_uint_eq(raftcheck_unchecked(c), 0);
    ck_assert_uint_eq(raftcheck_applied_last(c, 1), RAFTCHECK_INDEX_MAX);
    ck_assert_int_eq(raftcheck_applied(c, 1, 2, RAFTCHECK_INDEX_MAX, 1, 0, 0, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "state machine safety"));
    ck_assert_int_eq(raftcheck_applied(c, 1, 1, (uint64_t)RAFTCHECK_INDEX_MAX + 1, 1, 7, 1, why),
                     0);
    ck_assert_uint_eq(raftcheck_unchecked(c), 1);
    ck_assert_uint_eq(raftcheck_applied_last(c, 1), RAFTCHECK_INDEX_MAX);
    raftcheck_destroy(c);
}
END_TEST

/* ---- regressions for the bugs found while writing this suite (need the raftcheck.c fix) ---- */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Was: the type was only XORed into the FNV offset basis, so (t, b...) and (t', b'...) with
 * t ^ b == t' ^ b' collided, e.g. (NORMAL=1, "a") and (NOOP=2, "b"). */
START_TEST(digest_of_every_type_and_byte_is_distinct) {
    static uint64_t d[256 * 256];
    for (uint32_t t = 0; t < 256; t++) {
        for (uint32_t b = 0; b < 256; b++) {
            uint8_t p = (uint8_t)b;
            d[t * 256 + b] = raftcheck_digest((uint8_t)t, &p, 1);
        }
    }
    qsort(d, 256 * 256, sizeof d[0], cmp_u64);
    uint32_t equal = 0;
    for (uint32_t i = 1; i < 256 * 256; i++)
        equal += d[i] == d[i - 1];
    ck_assert_uint_eq(equal, 0);
    uint8_t a = 'a', b = 'b';
    ck_assert_uint_ne(raftcheck_digest(1, &a, 1), raftcheck_digest(2, &b, 1));
}
END_TEST

/* Was: beyond RAFTCHECK_INDEX_MAX the first apply was counted, but the next index fired
 * "state machine safety ... applied MAX+2 before MAX+1", and acks there fired "durability". */
START_TEST(applies_beyond_the_bound_are_counted_not_checked) {
    struct raftcheck *c = raftcheck_create(1);
    char why[RAFTCHECK_WHY_MAX];
    uint64_t max = RAFTCHECK_INDEX_MAX, fired = 0;
    for (uint64_t i = 1; i <= max; i++)
        fired += raftcheck_applied(c, 1, 1, i, 1, i, 1, why) != 0;
    ck_assert_uint_eq(fired, 0);
    for (uint64_t i = max + 1; i <= max + 3; i++)
        ck_assert_msg(raftcheck_applied(c, 1, 1, i, 1, i, 1, why) == 0, "%s", why);
    ck_assert_msg(raftcheck_applied(c, 1, 2, max + 2, 1, 5, 0, why) == 0, "%s", why);
    ck_assert_msg(raftcheck_acked(c, 1, max + 2, 1, max + 2, why) == 0, "%s", why);
    ck_assert_uint_eq(raftcheck_unchecked(c), 5);
    ck_assert_int_eq(raftcheck_acked(c, 1, max, 1, 0, why), -1); /* below: still checked */
    raftcheck_destroy(c);
    c = raftcheck_create(1);
    ck_assert_int_eq(raftcheck_applied(c, 1, 1, max + 1, 1, 1, 1, why), -1); /* out of order */
    ck_assert_ptr_nonnull(strstr(why, "before"));
    raftcheck_destroy(c);
}
END_TEST

/* Was: an ack for index 0 read term[-1]: a NULL dereference on a fresh checker. */
START_TEST(an_ack_for_index_0_fires) {
    struct raftcheck *c = raftcheck_create(1);
    char why[RAFTCHECK_WHY_MAX];
    ck_assert_int_eq(raftcheck_acked(c, 1, 0, 1, digest_of('a'), why), -1);
    ck_assert_ptr_nonnull(strstr(why, "no node applied it"));
    ck_assert_int_eq(raftcheck_applied(c, 1, 1, 1, 1, digest_of('a'), 1, why), 0);
    ck_assert_int_eq(raftcheck_acked(c, 1, 0, 1, digest_of('a'), why), -1);
    raftcheck_destroy(c);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("raftcheck");
    TCase *tc = tcase_create("histories");
    tcase_add_loop_test(tc, table, 0, CASE_COUNT);
    tcase_add_test(tc, every_property_has_a_row_that_fires);
    tcase_add_test(tc, new_leader_reads_the_log_only_where_required);
    tcase_add_test(tc, applied_last_is_the_highest_index_applied_per_group);
    tcase_add_test(tc, the_last_group_is_usable);
    suite_add_tcase(suite, tc);
    TCase *digest = tcase_create("digest");
    tcase_add_test(digest, digest_is_a_function_of_type_and_data);
    tcase_add_test(digest, digest_distinguishes_type_and_data);
    suite_add_tcase(suite, digest);
    TCase *bounds = tcase_create("bounds");
    tcase_set_timeout(bounds, 600); /* a generous bound for sanitizer builds, not a timing test */
    tcase_add_test(bounds, many_distinct_observations_stay_checked);
    tcase_add_test(bounds, entries_beyond_the_bound_are_counted_not_checked);
    tcase_add_test(bounds, leaders_beyond_the_bound_are_counted_not_checked);
    tcase_add_test(bounds, applies_up_to_the_bound_are_checked);
    tcase_add_test(bounds, digest_of_every_type_and_byte_is_distinct);
    tcase_add_test(bounds, applies_beyond_the_bound_are_counted_not_checked);
    tcase_add_test(bounds, an_ack_for_index_0_fires);
    suite_add_tcase(suite, bounds);
    return run_suites(srunner_create(suite));
}
