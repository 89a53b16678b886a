/* host_server.h — what the tests of node hosts in the simulator share (tests/unit/test_host.c,
 * test_controller_group.c, test_partition_group.c): the node callbacks of a test server, each
 * forwarding to the host found as the first member of the test's server struct; the simulator and
 * host configurations of a fault-free cluster; and finding a group's leader. Header-only. */
#ifndef RQ_TESTS_HOST_SERVER_H
#define RQ_TESTS_HOST_SERVER_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "node/host.h"
#include "sim/sim.h"

/* A test's server struct begins with its host. */
static inline struct host *host_of(void *node) { return *(struct host **)node; }

static inline void host_server_start(void *node) { host_start(host_of(node)); }
static inline void host_server_peer(void *node, uint32_t from, const void *buf, size_t len) {
    host_on_peer_message(host_of(node), from, buf, len);
}
static inline void host_server_client(void *node, uint64_t conn, const void *buf, size_t len) {
    (void)node, (void)conn, (void)buf, (void)len;
}
static inline void host_server_disk(void *node, struct rq_disk_req *req) {
    host_on_disk_done(host_of(node), req);
}
static inline void host_server_closed(void *node, uint64_t conn) { (void)node, (void)conn; }

/* A fault-free run of `servers` servers of workload w (HOST_TRACE in the environment: traced). */
static inline void host_server_sim_config(struct sim_config *cfg, const struct sim_workload *w,
                                          uint32_t servers, uint64_t seed, uint64_t duration_ns) {
    sim_config_default(cfg);
    cfg->workload = w;
    cfg->servers = servers;
    cfg->faults = 0;
    cfg->duration_ns = duration_ns;
    cfg->heal_ns = 0;
    cfg->seed = seed;
    if (getenv("HOST_TRACE")) cfg->trace = stderr;
}

/* groups groups, every one on servers 1..voters, a snapshot every snapshot_entries entries. */
static inline void host_server_host_config(struct host_config *hc, uint32_t groups,
                                           uint32_t voters, uint32_t snapshot_entries,
                                           uint32_t snapshot_trailing) {
    host_config_default(hc);
    hc->groups = groups;
    hc->raft.voter_count = voters;
    for (uint32_t i = 0; i < voters; i++) hc->raft.voters[i] = i + 1;
    hc->raft.snapshot_entries = snapshot_entries;
    hc->raft.snapshot_trailing = snapshot_trailing;
}

/* The one server leading group among 1..servers (asserted: at most one), or 0. */
static inline uint32_t host_server_leader(struct sim *s, uint32_t servers, uint32_t group) {
    uint32_t leader = 0;
    for (uint32_t id = 1; id <= servers; id++) {
        void *n = sim_node(s, id);
        const struct raft *r = n ? host_raft(host_of(n), group) : NULL;
        if (r != NULL && raft_role(r) == RAFT_LEADER) {
            ck_assert_uint_eq(leader, 0);
            leader = id;
        }
    }
    return leader;
}

/* A workload whose state is the simulator itself. */
static inline void *host_server_world_init(struct sim *s) { return s; }
static inline void host_server_world_fini(void *w) { (void)w; }

#endif
