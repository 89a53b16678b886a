/* The message queue's checkers (sim/mqcheck.c) judged on hand-written histories, one table row
 * each: every property has rows that break it and legal rows that come close and must pass (a
 * checker that never fires proves nothing). Messages are named by a letter (their digest). */
#include <check.h>
#include <string.h>

#include "sim/mqcheck.h"
#include "tests/unit/suite_main.h"

enum ev_kind { ACK, SEEK, READ, REPLICA, RETAINED, SKIP, FINISH };

struct ev {
    enum ev_kind kind;
    uint32_t partition;
    uint64_t who;          /* session (SEEK, READ) or node (REPLICA) */
    uint64_t offset;
    char msg;              /* the message's letter (ACK, READ, REPLICA) */
    uint64_t producer;     /* 0: not idempotent */
    uint64_t sequence;
};

#define ACKD(p, o, m) {ACK, p, 0, o, m, 0, 0}
#define SEEKTO(p, s, o) {SEEK, p, s, o, 0, 0, 0}
#define RD(p, s, o, m) {READ, p, s, o, m, 0, 0}
#define RDI(p, s, o, m, pr, sq) {READ, p, s, o, m, pr, sq}
#define REP(p, n, o, m) {REPLICA, p, n, o, m, 0, 0}
#define REPI(p, n, o, m, pr, sq) {REPLICA, p, n, o, m, pr, sq}
#define RET(p, o) {RETAINED, p, 0, o, 0, 0, 0}
#define SKIPTO(p, s, o) {SKIP, p, s, o, 0, 0, 0}
#define END {FINISH, 0, 0, 0, 0, 0, 0}

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
    /* inconsistent offsets and replica agreement */
    {"two consumers see two messages at one offset", 2, {RD(0, 1, 0, 'a'), RD(0, 2, 0, 'b')}, 1,
     "inconsistent offsets"},
    {"a replica holds another message than a consumer read", 2, {RD(0, 1, 0, 'a'), REP(0, 3, 0, 'x')},
     1, "inconsistent offsets"},
    {"two replicas disagree", 2, {REP(1, 1, 5, 'a'), REP(1, 2, 5, 'b')}, 1, "inconsistent offsets"},
    {"two acknowledgements at one offset", 2, {ACKD(0, 4, 'a'), ACKD(0, 4, 'b')}, 1,
     "inconsistent offsets"},
    {"the same offset in two partitions is two places", 2, {RD(0, 1, 0, 'a'), RD(1, 2, 0, 'b')}, NEVER,
     NULL},
    {"replicas and consumers agree", 4, {REP(0, 1, 0, 'a'), REP(0, 2, 0, 'a'), RD(0, 1, 0, 'a'),
     RD(0, 2, 0, 'a')}, NEVER, NULL},
    /* order */
    {"a session goes backward", 3, {SEEKTO(0, 1, 0), RD(0, 1, 0, 'a'), RD(0, 1, 0, 'a')}, 2,
     "non-monotonic"},
    {"a session skips a committed offset", 3, {SEEKTO(0, 1, 0), RD(0, 1, 0, 'a'), RD(0, 1, 2, 'c')},
     2, "poll-skip"},
    {"a session's first read skips from its seek", 2, {SEEKTO(0, 1, 3), RD(0, 1, 4, 'e')}, 1,
     "poll-skip"},
    {"a seek then reads in order", 4, {SEEKTO(0, 1, 7), RD(0, 1, 7, 'h'), RD(0, 1, 8, 'i'),
     RD(0, 1, 9, 'j')}, NEVER, NULL},
    {"a deliberate seek backward, then in order", 4, {RD(0, 1, 5, 'f'), SEEKTO(0, 1, 2),
     RD(0, 1, 2, 'c'), RD(0, 1, 3, 'd')}, NEVER, NULL},
    {"sessions and partitions have their own positions", 4, {RD(0, 1, 5, 'f'), RD(0, 2, 0, 'a'),
     RD(1, 1, 0, 'x'), RD(0, 1, 6, 'g')}, NEVER, NULL},
    /* idempotent producers */
    {"one producer sequence at two offsets", 2, {RDI(0, 1, 0, 'a', 7, 1), REPI(0, 2, 1, 'b', 7, 1)},
     1, "duplicate"},
    {"a retry of an idempotent write landed twice", 3, {SEEKTO(0, 1, 0), RDI(0, 1, 0, 'a', 9, 4),
     RDI(0, 1, 1, 'b', 9, 4)}, 2, "duplicate"},
    {"the same sequence of two producers is two messages", 2, {RDI(0, 1, 0, 'a', 7, 1),
     RDI(0, 1, 1, 'b', 8, 1)}, NEVER, NULL},
    {"non-idempotent messages are never duplicates", 2, {RD(0, 1, 0, 'a'), RD(0, 1, 1, 'b')}, NEVER,
     NULL},
    /* lost writes */
    {"an acknowledged write is never read", 3, {ACKD(0, 0, 'a'), RD(0, 1, 1, 'b'), END}, 2,
     "lost write"},
    {"an acknowledged write is replaced", 3, {ACKD(0, 0, 'a'), REP(0, 1, 0, 'z'), END}, 2,
     "replaced"},
    {"every acknowledged write is read", 4, {ACKD(0, 0, 'a'), ACKD(1, 3, 'b'), RD(0, 1, 0, 'a'),
     RD(1, 1, 3, 'b')}, NEVER, NULL},
    {"an acknowledgement read before it arrives", 3, {RD(0, 1, 0, 'a'), ACKD(0, 0, 'a'), END}, NEVER,
     NULL},
    /* retention */
    {"a consumer skips to a log start no replica applied", 3, {SEEKTO(0, 1, 0), RD(0, 1, 0, 'a'),
     SKIPTO(0, 2, 5)}, 2, "retention"},
    {"a skip past the furthest log start", 3, {RET(0, 3), RET(0, 2), SKIPTO(0, 2, 4)}, 2,
     "retention"},
    {"the log start is per partition", 2, {RET(1, 9), SKIPTO(0, 2, 4)}, 1, "retention"},
    {"a skip to a replica's log start, then in order", 5, {RET(0, 2), RET(0, 5), SKIPTO(0, 2, 5),
     RD(0, 2, 5, 'f'), RD(0, 2, 6, 'g')}, NEVER, NULL},
    {"after a skip, the new session still may not skip", 3, {RET(0, 5), SKIPTO(0, 2, 5),
     RD(0, 2, 6, 'g')}, 2, "poll-skip"},
    {"an acknowledged write retention deleted was applied", 4, {ACKD(0, 0, 'a'), REP(0, 1, 0, 'a'),
     RET(0, 1), END}, NEVER, NULL},
};
/* clang-format on */

enum { ROWS = (int)(sizeof rows / sizeof rows[0]) };

static int run_event(struct mqcheck *c, const struct ev *e, char *why) {
    uint64_t digest = (uint64_t)(unsigned char)e->msg;
    switch (e->kind) {
    case ACK: return mqcheck_acked(c, e->partition, e->offset, digest, why);
    case SEEK: mqcheck_seek(c, e->partition, e->who, e->offset); return 0;
    case READ:
        return mqcheck_read(c, e->partition, e->who, e->offset, digest, e->producer, e->sequence,
                            why);
    case REPLICA:
        return mqcheck_replica(c, e->partition, (uint32_t)e->who, e->offset, digest, e->producer,
                               e->sequence, why);
    case RETAINED: mqcheck_retained(c, e->partition, e->offset); return 0;
    case SKIP: return mqcheck_seek_log_start(c, e->partition, e->who, e->offset, why);
    case FINISH: return mqcheck_finish(c, why);
    }
    return 0;
}

START_TEST(table) {
    const struct row *r = &rows[_i];
    struct mqcheck *c = mqcheck_create(4);
    char why[MQCHECK_WHY_MAX];
    int fired = NEVER;
    for (int i = 0; i < r->count && fired == NEVER; i++) {
        why[0] = '\0';
        if (run_event(c, &r->events[i], why) != 0) fired = i;
    }
    if (fired == NEVER && r->fires_at == NEVER) {
        why[0] = '\0';
        fired = mqcheck_finish(c, why) == 0 ? NEVER : r->count;
    }
    ck_assert_msg(fired == r->fires_at, "%s: fired at %d, want %d (%s)", r->name, fired,
                  r->fires_at, why);
    if (r->property != NULL)
        ck_assert_msg(strstr(why, r->property) != NULL, "%s: \"%s\" does not name %s", r->name,
                      why, r->property);
    ck_assert_uint_eq(mqcheck_unchecked(c), 0);
    mqcheck_destroy(c);
}
END_TEST

START_TEST(every_property_has_a_firing_row) {
    static const char *const properties[] = {"inconsistent offsets", "non-monotonic", "poll-skip",
                                             "duplicate", "lost write", "retention"};
    for (size_t p = 0; p < sizeof properties / sizeof properties[0]; p++) {
        int n = 0;
        for (int i = 0; i < ROWS; i++)
            n += rows[i].property != NULL && strstr(rows[i].property, properties[p]) != NULL;
        ck_assert_msg(n >= 1, "%s fires in no row", properties[p]);
    }
}
END_TEST

/* Offsets beyond the bound are counted, not checked. */
START_TEST(beyond_the_bound_is_counted) {
    struct mqcheck *c = mqcheck_create(1);
    char why[MQCHECK_WHY_MAX];
    ck_assert_int_eq(mqcheck_read(c, 0, 1, MQCHECK_OFFSETS_MAX, 'a', 0, 0, why), 0);
    ck_assert_int_eq(mqcheck_acked(c, 0, MQCHECK_OFFSETS_MAX + 1, 'b', why), 0);
    ck_assert_uint_eq(mqcheck_unchecked(c), 2);
    ck_assert_int_eq(mqcheck_finish(c, why), 0);
    mqcheck_destroy(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("mqcheck");
    TCase *tc = tcase_create("histories");
    tcase_add_loop_test(tc, table, 0, ROWS);
    tcase_add_test(tc, every_property_has_a_firing_row);
    tcase_add_test(tc, beyond_the_bound_is_counted);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
