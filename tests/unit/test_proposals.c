/* The table of proposals waiting for their entry (src/node/proposals.c): answered at apply, own
 * entry or not; two waiting at one index (a replaced entry's and the new one's) both answered;
 * early (acks=1) proposals answered at the durable append only while their entry is still in the
 * log; timeouts; the bound. */
#include <check.h>
#include <stdlib.h>

#include "node/proposals.h"
#include "raft/raft.h"
#include "tests/unit/suite_main.h"

START_TEST(two_waiting_at_one_index_are_both_answered) {
    static struct proposals p;
    proposals_add(&p, 5, 2, 100, 0);   /* a proposal of term 2, its entry later replaced */
    proposals_add(&p, 5, 3, 200, 0);   /* the next leader's at the same index */
    uint64_t cookie;
    int own, seen = 0;
    while (proposals_applied(&p, 5, 3, &cookie, &own)) {
        ck_assert(cookie == 100 || cookie == 200);
        ck_assert_int_eq(own, cookie == 200);
        seen++;
    }
    ck_assert_int_eq(seen, 2);
    ck_assert(!proposals_applied(&p, 5, 3, &cookie, &own));
}
END_TEST

START_TEST(timeouts_and_the_bound) {
    static struct proposals p;
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        ck_assert(proposals_room(&p));
        proposals_add(&p, i + 1, 1, i, i < 10 ? 0 : 1000);
    }
    ck_assert(!proposals_room(&p));
    uint64_t cookie;
    int expired = 0;
    while (proposals_expired(&p, 1200, 500, &cookie)) {
        ck_assert_uint_lt(cookie, 10);
        expired++;
    }
    ck_assert_int_eq(expired, 10);
    ck_assert(proposals_room(&p));
}
END_TEST

/* A one-voter raft whose log holds entries 1.. of term 1 (after its election). */
static struct raft *single(uint32_t entries) {
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.voters[0] = 1;
    cfg.voter_count = 1;
    struct raft *r = raft_create(&cfg, 0, 0);
    ck_assert_ptr_nonnull(r);
    for (uint32_t t = 0; t < 4 * cfg.election_ticks && raft_role(r) != RAFT_LEADER; t++) {
        raft_tick(r);
        uint64_t term;
        uint32_t vote;
        if (raft_hardstate_pending(r, &term, &vote)) raft_persisted_hardstate(r, term, vote);
    }
    ck_assert_int_eq(raft_role(r), RAFT_LEADER);
    for (uint32_t i = 0; i < entries; i++) {
        uint64_t index;
        ck_assert_int_eq(raft_propose(r, "x", 1, &index), 0);
    }
    return r;
}

START_TEST(early_proposals_answered_at_the_durable_append) {
    static struct proposals p;
    struct raft *r = single(3);   /* index 1: the leader's no-op; 2..4: term-1 entries */
    uint64_t term = raft_term(r);
    proposals_add_early(&p, 3, term, 30, 0, 0, 7);
    proposals_add_early(&p, 4, term + 1, 40, 0, 0, 8);   /* not the entry in the log */
    proposals_add(&p, 2, term, 20, 0);                    /* acks=all: never early */
    uint64_t cookie, value;
    int error;
    ck_assert(!proposals_durable(&p, r, 2, &cookie, &error, &value));   /* 3 not durable yet */
    ck_assert(proposals_durable(&p, r, 4, &cookie, &error, &value));
    ck_assert_uint_eq(cookie, 30);
    ck_assert_uint_eq(value, 7);
    ck_assert(!proposals_durable(&p, r, 4, &cookie, &error, &value));   /* 40's entry is not its */
    int own;
    ck_assert(proposals_applied(&p, 4, term, &cookie, &own));   /* answered at its apply instead */
    ck_assert_uint_eq(cookie, 40);
    ck_assert_int_eq(own, 0);
    raft_destroy(r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("proposals");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, two_waiting_at_one_index_are_both_answered);
    tcase_add_test(tc, timeouts_and_the_bound);
    tcase_add_test(tc, early_proposals_answered_at_the_durable_append);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
