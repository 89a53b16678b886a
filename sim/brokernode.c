/* A broker as a simulated server process; see brokernode.h. */
#include "sim/brokernode.h"

#include <inttypes.h>
#include <stdio.h>

#include "base/assert.h"

static void *create(const struct rq_io *io, const void *config) {
    const struct sim_broker_setup *setup = config;
    struct broker_config cfg;
    broker_config_default(&cfg);
    cfg.controller_count = setup->controllers < RAFT_VOTERS_MAX ? setup->controllers : RAFT_VOTERS_MAX;
    RQ_ASSERT(cfg.controller_count >= 1);
    for (uint32_t i = 0; i < cfg.controller_count; i++) cfg.controllers[i] = i + 1;
    snprintf(cfg.address, sizeof cfg.address, "n%" PRIu32 ":9092", io->node_id);
    if (setup->snapshot_entries) {
        cfg.host.raft.snapshot_entries = setup->snapshot_entries;
        cfg.host.raft.snapshot_trailing = setup->snapshot_trailing;
    }
    if (setup->segment_bytes) cfg.host.store.segment_bytes_max = setup->segment_bytes;
    cfg.moves_paused = setup->moves_paused;
    return broker_create(io, &cfg, &setup->obs);
}

static void destroy(void *n) { broker_destroy(n); }
static void start(void *n) { broker_start(n); }
static void on_timer(void *n) { broker_on_timer(n); }
static void on_peer(void *n, uint32_t from, const void *buf, size_t len) {
    broker_on_peer_message(n, from, buf, len);
}
static void on_client(void *n, uint64_t conn, const void *buf, size_t len) {
    broker_on_client_message(n, conn, buf, len);
}
static void on_disk(void *n, struct rq_disk_req *req) { broker_on_disk_done(n, req); }
static void on_closed(void *n, uint64_t conn) { broker_on_conn_closed(n, conn); }

const struct rq_node_ops sim_broker_ops = {
    .name = "broker", .create = create, .destroy = destroy, .on_start = start,
    .on_timer = on_timer, .on_peer_message = on_peer, .on_client_message = on_client,
    .on_disk_done = on_disk, .on_conn_closed = on_closed,
};
