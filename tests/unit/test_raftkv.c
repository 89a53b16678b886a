/* The raft-kv workload's end-to-end checks fire on real bugs (a checker that never fires proves
 * nothing), and stay quiet on a correct cluster. Each run is a whole simulated cluster. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/raftkv.h"
#include "sim/sim.h"
#include "tests/unit/suite_main.h"

static void inject(struct sim *s, void *arg) { raftkv_inject_bugs(s, *(const uint32_t *)arg); }

/* Runs seeds 1..seeds with bugs injected; returns how many failed, the first in `failure`. */
static int failures_with_bug(uint32_t bugs, uint32_t faults, uint32_t nodes, int seeds,
                             char *failure, size_t cap) {
    struct sim_config cfg;
    sim_config_default(&cfg);
    cfg.workload = &sim_workload_raftkv;
    cfg.servers = nodes;
    cfg.faults = faults;
    cfg.swarm = 0;
    cfg.duration_ns = 12ull * 1000000000u;
    cfg.heal_ns = 4ull * 1000000000u;
    return sim_run_seeds(&cfg, 1, seeds, inject, &bugs, failure, cap);
}

START_TEST(passes_without_bugs) {
    char failure[SIM_FAILURE_MAX] = "";
    int failed = failures_with_bug(0, SIM_FAULT_ALL & ~SIM_FAULT_CORRUPT, 3, 4, failure, sizeof failure);
    ck_assert_msg(failed == 0, "%s", failure);
}
END_TEST

START_TEST(durability_fires_on_ack_before_commit) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(RAFTKV_BUG_ACK_BEFORE_COMMIT, 0, 3, 1, failure, sizeof failure), 0);
    ck_assert_ptr_nonnull(strstr(failure, "durability"));
}
END_TEST

/* An old leader cut off by a partition keeps answering reads from its own state until
 * check-quorum deposes it, while the majority side moves on: a stale read. */
START_TEST(linearizability_fires_on_local_reads) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(RAFTKV_BUG_LOCAL_READS, SIM_FAULT_PARTITION, 5, 40, failure,
                                       sizeof failure), 0);
    ck_assert_ptr_nonnull(strstr(failure, "not linearizable"));
}
END_TEST

/* A follower that answers reads from its own state lags the leader: a stale read, even without
 * faults. With ReadIndex (the follower asks the leader, then waits to apply that far) it is not. */
START_TEST(linearizability_fires_on_follower_local_reads) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(RAFTKV_BUG_FOLLOWER_LOCAL_READS, 0, 3, 3, failure,
                                       sizeof failure), 0);
    ck_assert_ptr_nonnull(strstr(failure, "not linearizable"));
}
END_TEST

/* One server's snapshot images differ from the others' at the same index: the state machine would
 * diverge after a restart or an install from it. */
START_TEST(snapshot_check_fires_on_a_skewed_image) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(RAFTKV_BUG_SNAPSHOT_SKEW, 0, 3, 2, failure, sizeof failure),
                     0);
    ck_assert_ptr_nonnull(strstr(failure, "snapshot"));
}
END_TEST

START_TEST(liveness_fires_when_the_cluster_never_heals) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(RAFTKV_BUG_NO_HEAL, 0, 3, 1, failure, sizeof failure), 0);
    ck_assert_ptr_nonnull(strstr(failure, "liveness"));
}
END_TEST

int main(void) {
    Suite *suite = suite_create("raftkv");
    TCase *tc = tcase_create("end-to-end");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, passes_without_bugs);
    tcase_add_test(tc, durability_fires_on_ack_before_commit);
    tcase_add_test(tc, linearizability_fires_on_local_reads);
    tcase_add_test(tc, linearizability_fires_on_follower_local_reads);
    tcase_add_test(tc, liveness_fires_when_the_cluster_never_heals);
    tcase_add_test(tc, snapshot_check_fires_on_a_skewed_image);
    suite_add_tcase(suite, tc);
    return run_suites(srunner_create(suite));
}
