/* The controller as a Raft group (src/node/controller_group.c) in the simulator: three servers
 * host it with a snapshot every 5 entries; brokers register and topics are created through the
 * leader; every proposal is answered once, with the state machine's result; every replica ends
 * with the same state, also one that lost power and restarted from its snapshot and log; brokers
 * that stop heartbeating are marked down by the leader's EXPIRE proposals. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "node/controller_group.h"
#include "sim/sim.h"
#include "tests/unit/host_server.h"
#include "tests/unit/suite_main.h"

struct server {
    struct host *host;            /* first: host_server.h finds it there */
    const struct rq_io *io;
    struct ctl_group *cg;
    uint32_t answers;
    int last_error;
};

static void done(void *arg, uint64_t cookie, const struct controller_result *res) {
    struct server *n = arg;
    (void)cookie;
    n->answers++;
    n->last_error = res->error;
}

static void apply(void *arg, uint32_t group, const struct raft_entry *e) {
    (void)group;
    ctl_group_apply(((struct server *)arg)->cg, e);
}

static size_t image(void *arg, uint32_t group, uint8_t *buf, size_t cap) {
    (void)group;
    return ctl_group_snapshot(((struct server *)arg)->cg, buf, cap);
}

static void restore(void *arg, uint32_t group, uint64_t index, const uint8_t *img, size_t size) {
    (void)group, (void)index;
    ctl_group_restore(((struct server *)arg)->cg, img, size);
}

static void *server_create(const struct rq_io *io, const void *config) {
    (void)config;
    struct server *n = calloc(1, sizeof *n);
    RQ_ASSERT(n != NULL);
    n->io = io;
    struct ctl_group_config cc = {.group = 1, .heartbeat_timeout_ns = 500000000ull,
                                  .expire_every_ns = 100000000ull,
                                  .pending_timeout_ns = 2000000000ull};
    n->cg = ctl_group_create(&cc, done, n);
    struct host_config hc;
    host_server_host_config(&hc, 1, 3, 5, 1);
    static const struct host_callbacks cb = {.apply = apply, .snapshot = image, .restore = restore};
    n->host = host_create(io, &hc, &cb, n);
    RQ_ASSERT(n->cg != NULL && n->host != NULL);
    return n;
}

static void server_destroy(void *node) {
    struct server *n = node;
    host_destroy(n->host);
    ctl_group_destroy(n->cg);
    free(n);
}

static void on_timer(void *node) {
    struct server *n = node;
    host_on_timer(n->host);
    ctl_group_tick(n->cg, n->host, n->io->now(n->io->env));
}

static const struct rq_node_ops ops = {
    .name = "controller-test", .create = server_create, .destroy = server_destroy,
    .on_start = host_server_start, .on_timer = on_timer, .on_peer_message = host_server_peer,
    .on_client_message = host_server_client, .on_disk_done = host_server_disk,
    .on_conn_closed = host_server_closed,
};

static const struct sim_workload workload = {.name = "controller-test", .server_ops = &ops,
                                             .init = host_server_world_init,
                                             .fini = host_server_world_fini};

static struct server *server(struct sim *s, uint32_t id) { return sim_node(s, id); }

static uint32_t leader(struct sim *s) { return host_server_leader(s, 3, 1); }

/* Proposes cmd at the leader and runs until it is answered; returns the result's error. */
static int propose(struct sim *s, uint64_t *now, const uint8_t *cmd, size_t n) {
    uint32_t l = leader(s);
    ck_assert_uint_ne(l, 0);
    struct server *ls = server(s, l);
    uint32_t before = ls->answers;
    ck_assert_int_eq(ctl_group_propose(ls->cg, ls->host, cmd, n, 1, *now), 0);
    for (int i = 0; i < 100 && ls->answers == before; i++) {
        *now += 10000000ull;
        sim_run_until(s, *now);
    }
    ck_assert_uint_eq(ls->answers, before + 1);
    return ls->last_error;
}

static void assert_replicas_agree(struct sim *s) {
    static uint8_t a[1 << 16], b[1 << 16];
    size_t na = controller_image(ctl_group_state(server(s, 1)->cg), a, sizeof a);
    ck_assert_uint_gt(na, 0);
    for (uint32_t id = 2; id <= 3; id++) {
        size_t nb = controller_image(ctl_group_state(server(s, id)->cg), b, sizeof b);
        ck_assert_uint_eq(na, nb);
        ck_assert_mem_eq(a, b, na);
        ck_assert_uint_eq(ctl_group_bad_images(server(s, id)->cg), 0);
    }
}

START_TEST(replicas_agree_through_snapshots_and_restarts) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &workload, 3, 5, 30000000000ull);
    struct sim *s = sim_create(&cfg);
    uint64_t now = 2000000000ull;
    sim_run_until(s, now);
    uint8_t cmd[CONTROLLER_CMD_MAX];
    for (uint32_t b = 1; b <= 4; b++)
        ck_assert_int_eq(propose(s, &now, cmd, controller_cmd_register(cmd, b, "h", now)), 0);
    struct proto_create_topic_req req = {.name = {(const uint8_t *)"orders", 6}, .partitions = 8,
                                         .replication = 3, .max_message_bytes = 100};
    ck_assert_int_eq(propose(s, &now, cmd, controller_cmd_create_topic(cmd, &req)), 0);
    ck_assert_int_eq(propose(s, &now, cmd, controller_cmd_create_topic(cmd, &req)),
                     RQ_ETOPICEXISTS);
    /* No heartbeats: the leader's EXPIRE marks every broker down after 500 ms. */
    now += 1000000000ull;
    sim_run_until(s, now);
    const struct controller *st = ctl_group_state(server(s, leader(s))->cg);
    for (uint32_t b = 1; b <= 4; b++) ck_assert(!controller_broker(st, b)->alive);
    assert_replicas_agree(s);
    /* A follower loses power and restarts from its snapshot and log. */
    uint32_t f = leader(s) % 3 + 1;
    sim_crash(s, f, 1);
    sim_restart(s, f);
    ck_assert_int_eq(propose(s, &now, cmd, controller_cmd_register(cmd, 2, "h2", now)), 0);
    now += 2000000000ull;
    sim_run_until(s, now);
    assert_replicas_agree(s);
    uint64_t snap, term;
    raft_snapshot_last(host_raft(server(s, f)->host, 1), &snap, &term);
    ck_assert_uint_gt(snap, 0);
    sim_destroy(s);
}
END_TEST

int main(void) {
    Suite *su = suite_create("controller_group");
    TCase *tc = tcase_create("controller on raft");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, replicas_agree_through_snapshots_and_restarts);
    suite_add_tcase(su, tc);
    return run_suites(srunner_create(su));
}
