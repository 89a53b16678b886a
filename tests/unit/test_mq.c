/* The mq workload's end-to-end checks fire when what it observes is wrong (a checker that never
 * fires proves nothing), and stay quiet on a correct cluster. Each run is a whole simulated
 * cluster of brokers and client-library clients. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/mq.h"
#include "sim/sim.h"
#include "tests/unit/suite_main.h"

static void inject(struct sim *s, void *arg) { mq_inject_bugs(s, *(const uint32_t *)arg); }

static void with_retention(struct sim *s, void *arg) {
    (void)arg;
    mq_force_retention(s, 4u << 10, 1000);
}

/* A 12-second mq run on `servers` servers with these faults (no swarm). */
static void mq_config(struct sim_config *cfg, uint32_t servers, uint32_t faults) {
    sim_config_default(cfg);
    cfg->workload = &sim_workload_mq;
    cfg->servers = servers;
    cfg->faults = faults;
    cfg->swarm = 0;
    cfg->duration_ns = 12ull * 1000000000u;
    cfg->heal_ns = 4ull * 1000000000u;
}

/* Runs seeds 1..seeds with bugs injected; returns how many failed, the first in `failure`. */
static int failures_with_bug(uint32_t bugs, uint32_t faults, int seeds, char *failure, size_t cap) {
    struct sim_config cfg;
    mq_config(&cfg, 3, faults);
    return sim_run_seeds(&cfg, 1, seeds, inject, &bugs, failure, cap);
}

/* Five servers, the first decommissioned at 2 s: its replicas move while records flow, under
 * faults, and every check holds. */
static void decommission_first(struct sim *s, void *arg) {
    (void)arg;
    mq_force_decommission(s, 1);
}

START_TEST(passes_with_a_broker_decommissioned) {
    struct sim_config cfg;
    mq_config(&cfg, 5, SIM_FAULT_CRASH | SIM_FAULT_PARTITION | SIM_FAULT_LOSS);
    char failure[SIM_FAILURE_MAX] = "";
    int failed = sim_run_seeds(&cfg, 1, 2, decommission_first, NULL, failure, sizeof failure);
    ck_assert_msg(failed == 0, "%s", failure);
}
END_TEST

/* The same with moves paused: the check that every partition reaches its target fires. */
START_TEST(fires_when_replicas_never_move) {
    struct sim_config cfg;
    mq_config(&cfg, 5, 0);
    uint32_t bugs = MQ_BUG_MOVES_PAUSED;
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(sim_run_seeds(&cfg, 1, 1, inject, &bugs, failure, sizeof failure), 0);
    ck_assert_msg(strstr(failure, "liveness: partition") != NULL, "%s", failure);
}
END_TEST

static void expect_failure(uint32_t bug, const char *what) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(bug, 0, 1, failure, sizeof failure), 0);
    ck_assert_msg(strstr(failure, what) != NULL, "%s", failure);
}

START_TEST(passes_without_bugs) {
    char failure[SIM_FAILURE_MAX] = "";
    int failed = failures_with_bug(0, SIM_FAULT_CRASH | SIM_FAULT_PARTITION | SIM_FAULT_LOSS, 2,
                                   failure, sizeof failure);
    ck_assert_msg(failed == 0, "%s", failure);
}
END_TEST

/* With retention (4 KiB per partition, 1 s) records are deleted while consumers read, under
 * faults: consumers sent to the log start skip only deleted records, and nothing else fires. */
START_TEST(passes_with_retention) {
    struct sim_config cfg;
    mq_config(&cfg, 3, SIM_FAULT_CRASH | SIM_FAULT_PARTITION | SIM_FAULT_LOSS);
    char failure[SIM_FAILURE_MAX] = "";
    int failed = sim_run_seeds(&cfg, 1, 2, with_retention, NULL, failure, sizeof failure);
    ck_assert_msg(failed == 0, "%s", failure);
}
END_TEST

START_TEST(fires_on_a_consumer_skipping_past_the_log_start) { expect_failure(MQ_BUG_SKIP_TO_END, "retention"); }
END_TEST

START_TEST(fires_on_a_delayed_message_read_early) {
    expect_failure(MQ_BUG_DELAY_EARLY, "delayed message delivered early");
}
END_TEST

/* Every third message of the producers delayed 20..1,500 ms, under faults: none is read before
 * its time allows, and every one is read by the end (the consumers' liveness). */
static void with_delays(struct sim *s, void *arg) {
    (void)arg;
    mq_force_delays(s, 3);
}

START_TEST(passes_with_delayed_messages) {
    struct sim_config cfg;
    mq_config(&cfg, 3, SIM_FAULT_CRASH | SIM_FAULT_PARTITION | SIM_FAULT_LOSS | SIM_FAULT_CLOCK);
    char failure[SIM_FAILURE_MAX] = "";
    int failed = sim_run_seeds(&cfg, 1, 2, with_delays, NULL, failure, sizeof failure);
    ck_assert_msg(failed == 0, "%s", failure);
}
END_TEST

START_TEST(fires_on_an_acknowledgement_at_the_wrong_offset) { expect_failure(MQ_BUG_ACK_WRONG_OFFSET, "lost write"); }
END_TEST

START_TEST(fires_on_a_consumer_skipping_a_record) { expect_failure(MQ_BUG_CONSUMER_SKIPS, "poll-skip"); }
END_TEST

START_TEST(fires_on_replicas_disagreeing) { expect_failure(MQ_BUG_REPLICA_SKEW, "inconsistent offsets"); }
END_TEST

START_TEST(fires_on_a_message_written_twice) { expect_failure(MQ_BUG_PRODUCER_REPEATS, "duplicate"); }
END_TEST

START_TEST(liveness_fires_when_the_cluster_never_heals) { expect_failure(MQ_BUG_NO_HEAL, "liveness"); }
END_TEST

/* ---- consumer groups ---------------------------------------------------------------------- */

struct group_run {
    uint32_t bugs;
};

static void with_groups(struct sim *s, void *arg) {
    const struct group_run *g = arg;
    mq_inject_bugs(s, g->bugs);
    mq_force_groups(s);
}

/* Seven clients: two producers, two plain consumers, two members of the queue group "q" and a
 * pub/sub member of "p". */
static int failures_with_groups(uint32_t bugs, uint32_t faults, int seeds, char *failure,
                                size_t cap) {
    struct sim_config cfg;
    mq_config(&cfg, 3, faults);
    cfg.clients = 7;
    struct group_run g = {.bugs = bugs};
    return sim_run_seeds(&cfg, 1, seeds, with_groups, &g, failure, cap);
}

/* Members join, leave, join again, are crashed and restarted, under faults: every group check
 * holds. */
START_TEST(passes_with_consumer_groups) {
    char failure[SIM_FAILURE_MAX] = "";
    int failed = failures_with_groups(0, SIM_FAULT_CRASH | SIM_FAULT_PARTITION | SIM_FAULT_LOSS,
                                      2, failure, sizeof failure);
    ck_assert_msg(failed == 0, "%s", failure);
}
END_TEST

static void expect_group_failure(uint32_t bug, const char *what) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_groups(bug, 0, 1, failure, sizeof failure), 0);
    ck_assert_msg(strstr(failure, what) != NULL, "%s", failure);
}

START_TEST(fires_on_a_member_losing_records) { expect_group_failure(MQ_BUG_MEMBER_LOSES, "at-least-once"); }
END_TEST

START_TEST(fires_on_a_partition_held_twice) { expect_group_failure(MQ_BUG_TWO_HOLDERS, "exclusivity"); }
END_TEST

START_TEST(fires_on_a_commit_that_was_not_fenced) { expect_group_failure(MQ_BUG_STALE_COMMIT, "fencing"); }
END_TEST

int main(void) {
    Suite *suite = suite_create("mq");
    TCase *tc = tcase_create("workload");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, passes_without_bugs);
    tcase_add_test(tc, passes_with_delayed_messages);
    tcase_add_test(tc, fires_on_a_delayed_message_read_early);
    tcase_add_test(tc, fires_on_an_acknowledgement_at_the_wrong_offset);
    tcase_add_test(tc, fires_on_a_consumer_skipping_a_record);
    tcase_add_test(tc, fires_on_replicas_disagreeing);
    tcase_add_test(tc, fires_on_a_message_written_twice);
    tcase_add_test(tc, liveness_fires_when_the_cluster_never_heals);
    tcase_add_test(tc, passes_with_retention);
    tcase_add_test(tc, fires_on_a_consumer_skipping_past_the_log_start);
    tcase_add_test(tc, passes_with_a_broker_decommissioned);
    tcase_add_test(tc, fires_when_replicas_never_move);
    tcase_add_test(tc, passes_with_consumer_groups);
    tcase_add_test(tc, fires_on_a_member_losing_records);
    tcase_add_test(tc, fires_on_a_partition_held_twice);
    tcase_add_test(tc, fires_on_a_commit_that_was_not_fenced);
    suite_add_tcase(suite, tc);
    return run_suites(srunner_create(suite));
}
