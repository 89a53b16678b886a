/* The simulator's models, tested: network, disk, clock, determinism, and the selftest checker.
 * Everything here is deterministic (seeded); no test depends on wall-clock time. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/rng.h"
#include "sim/clock.h"
#include "sim/disk.h"
#include "sim/selftest.h"
#include "sim/sim.h"
#include "tests/unit/suite_main.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* ---- a probe workload: servers that count what they receive and expose their io -------------- */

struct probe_node {
    const struct rq_io *io;
};

static struct {
    const struct rq_io *io[SIM_PROCS_MAX + 1];   /* by server id, or SIM_SERVERS_MAX + client index */
    uint64_t received[SIM_PROCS_MAX + 1];        /* messages delivered, by receiver */
    uint64_t last_seq[SIM_PROCS_MAX + 1];
    uint64_t inversions[SIM_PROCS_MAX + 1];      /* a message arrived after a later-sent one */
    uint64_t conn_closed;
    uint64_t timer_fired_local_ns;
} probe;

static uint32_t probe_slot(uint32_t node_id) {
    return node_id >= SIM_CLIENT_ID_BASE ? SIM_SERVERS_MAX + 1 + (node_id - SIM_CLIENT_ID_BASE) : node_id;
}

static void *probe_create(const struct rq_io *io, const void *config) {
    (void)config;
    struct probe_node *n = calloc(1, sizeof *n);
    n->io = io;
    probe.io[probe_slot(io->node_id)] = io;
    return n;
}
static void probe_destroy(void *node) {
    struct probe_node *n = node;
    probe.io[probe_slot(n->io->node_id)] = NULL;
    free(n);
}
static void probe_start(void *node) { (void)node; }
static void probe_timer(void *node) {
    struct probe_node *n = node;
    probe.timer_fired_local_ns = n->io->now(n->io->env);
}
static void probe_count(uint32_t to, const void *buf, size_t len) {
    uint32_t slot = probe_slot(to);
    probe.received[slot]++;
    if (len == 8) {
        uint64_t seq;
        memcpy(&seq, buf, 8);
        if (seq < probe.last_seq[slot]) probe.inversions[slot]++;
        else probe.last_seq[slot] = seq;
    }
}
static void probe_peer(void *node, uint32_t from, const void *buf, size_t len) {
    struct probe_node *n = node;
    (void)from;
    probe_count(n->io->node_id, buf, len);
}
static void probe_client_msg(void *node, uint64_t conn, const void *buf, size_t len) {
    struct probe_node *n = node;
    probe_count(n->io->node_id, buf, len);
    n->io->reply(n->io->env, conn, buf, len);  /* echo */
}
static void probe_disk(void *node, struct rq_disk_req *req) {
    (void)node;
    (void)req;
}
static void probe_closed(void *node, uint64_t conn) {
    (void)node;
    (void)conn;
    probe.conn_closed++;
}

static const struct rq_node_ops probe_ops = {
    "probe", probe_create, probe_destroy, probe_start, probe_timer, probe_peer, probe_client_msg,
    probe_disk, probe_closed,
};
static const struct sim_workload probe_workload = {
    .name = "probe", .server_ops = &probe_ops, .client_ops = &probe_ops, .default_clients = 1,
};

/* A calm simulation of the probe workload: no faults, fixed latency 1 ms. */
static struct sim *probe_sim(uint64_t seed, uint32_t servers) {
    memset(&probe, 0, sizeof probe);
    struct sim_config cfg;
    sim_config_default(&cfg);
    cfg.workload = &sim_workload_selftest;
    cfg.seed = seed;
    cfg.workload = &probe_workload;
    cfg.servers = servers;
    cfg.faults = 0;
    cfg.duration_ns = 3600ull * SEC;
    cfg.heal_ns = cfg.duration_ns;  /* never heal: nothing to heal */
    struct sim *s = sim_create(&cfg);
    sim_net_set(s, 0, 0, 1 * MS, 1 * MS, 0, 0);
    sim_run_until(s, 10 * MS);  /* every process has started */
    return s;
}

static void send_many(struct sim *s, uint32_t from, uint32_t to, uint64_t count) {
    const struct rq_io *io = probe.io[probe_slot(from)];
    ck_assert_ptr_nonnull(io);
    for (uint64_t i = 1; i <= count; i++) {
        io->send(io->env, to, &i, sizeof i);
        if (i % 1000 == 0) sim_run_until(s, sim_now(s) + 1 * MS);  /* keep the buffer unsaturated */
    }
    sim_run_until(s, sim_now(s) + 2 * SEC);
}

/* ---- network ------------------------------------------------------------------------------- */

START_TEST(net_partition_blocks_both_ways_and_heal_restores) {
    struct sim *s = probe_sim(1, 3);
    sim_net_cut(s, 1, 2);
    sim_net_cut(s, 2, 1);
    send_many(s, 1, 2, 100);
    send_many(s, 2, 1, 100);
    ck_assert_uint_eq(probe.received[2], 0);
    ck_assert_uint_eq(probe.received[1], 0);
    send_many(s, 1, 3, 100);  /* other links are untouched */
    ck_assert_uint_eq(probe.received[3], 100);
    sim_net_heal(s);
    send_many(s, 1, 2, 100);
    ck_assert_uint_eq(probe.received[2], 100);
    sim_destroy(s);
}
END_TEST

START_TEST(net_asymmetric_partition_blocks_one_way) {
    struct sim *s = probe_sim(2, 2);
    sim_net_cut(s, 1, 2);
    send_many(s, 1, 2, 50);
    send_many(s, 2, 1, 50);
    ck_assert_uint_eq(probe.received[2], 0);
    ck_assert_uint_eq(probe.received[1], 50);
    ck_assert(sim_net_is_cut(s, 1, 2));
    ck_assert(!sim_net_is_cut(s, 2, 1));
    sim_destroy(s);
}
END_TEST

START_TEST(net_cut_drops_messages_already_in_flight) {
    struct sim *s = probe_sim(3, 2);
    const struct rq_io *io = probe.io[1];
    uint64_t v = 1;
    io->send(io->env, 2, &v, sizeof v);
    sim_net_cut(s, 1, 2);  /* after send, before arrival (latency is 1 ms) */
    sim_run_until(s, sim_now(s) + 10 * MS);
    ck_assert_uint_eq(probe.received[2], 0);
    sim_destroy(s);
}
END_TEST

START_TEST(net_loss_rate_is_close_to_configured) {
    struct sim *s = probe_sim(4, 2);
    sim_net_set(s, 100000, 0, 1 * MS, 1 * MS, 0, 0);  /* 10% loss */
    send_many(s, 1, 2, 100000);
    ck_assert_uint_ge(probe.received[2], 89000);
    ck_assert_uint_le(probe.received[2], 91000);
    sim_destroy(s);
}
END_TEST

START_TEST(net_dup_rate_is_close_to_configured) {
    struct sim *s = probe_sim(5, 2);
    sim_net_set(s, 0, 50000, 1 * MS, 1 * MS, 0, 0);  /* 5% duplicated */
    send_many(s, 1, 2, 100000);
    ck_assert_uint_ge(probe.received[2], 104000);
    ck_assert_uint_le(probe.received[2], 106000);
    ck_assert_uint_ge(sim_stats(s)->messages_duplicated, 4000);
    sim_destroy(s);
}
END_TEST

START_TEST(net_reorders_only_with_variable_latency) {
    struct sim *s = probe_sim(6, 2);
    send_many(s, 1, 2, 10000);  /* fixed latency: FIFO, ties broken by send order */
    ck_assert_uint_eq(probe.inversions[2], 0);
    sim_destroy(s);

    s = probe_sim(6, 2);
    sim_net_set(s, 0, 0, 1 * MS, 3 * MS, 100000, 50 * MS);  /* jitter and a 10% long tail */
    send_many(s, 1, 2, 10000);
    ck_assert_uint_eq(probe.received[2], 10000);
    ck_assert_uint_ge(probe.inversions[2], 500);
    sim_destroy(s);
}
END_TEST

START_TEST(net_nothing_is_delivered_to_a_crashed_node) {
    struct sim *s = probe_sim(7, 2);
    const struct rq_io *io = probe.io[1];
    for (uint64_t i = 1; i <= 100; i++) io->send(io->env, 2, &i, sizeof i);
    sim_crash(s, 2, 0);  /* the 100 are in flight */
    sim_run_until(s, sim_now(s) + 10 * MS);
    ck_assert_uint_eq(probe.received[2], 0);
    ck_assert(!sim_is_up(s, 2));
    sim_restart(s, 2);
    send_many(s, 1, 2, 10);
    ck_assert_uint_eq(probe.received[2], 10);
    sim_destroy(s);
}
END_TEST

START_TEST(net_client_connection_dies_with_the_client) {
    struct sim *s = probe_sim(8, 2);
    uint32_t client = SIM_CLIENT_ID_BASE;
    const struct rq_io *io = probe.io[probe_slot(client)];
    uint64_t v = 7;
    io->send(io->env, 1, &v, sizeof v);
    sim_run_until(s, sim_now(s) + 10 * MS);
    ck_assert_uint_eq(probe.received[1], 1);               /* the server got it ... */
    ck_assert_uint_eq(probe.received[probe_slot(client)], 1);  /* ... and its echo came back */
    io->send(io->env, 1, &v, sizeof v);
    sim_crash(s, client, 0);                                /* request in flight, client gone */
    sim_run_until(s, sim_now(s) + 10 * MS);
    ck_assert_uint_eq(probe.received[1], 1);               /* the dead connection's bytes dropped */
    ck_assert_uint_eq(probe.conn_closed, 1);               /* and the server was told */
    /* A reply in flight when the client restarts is not delivered to the new process (whose
     * requests reuse the old one's correlation ids: mq seed 19610). */
    sim_restart(s, client);
    sim_run_until(s, sim_now(s) + 10 * MS);
    io = probe.io[probe_slot(client)];
    uint64_t server_had = probe.received[1], client_had = probe.received[probe_slot(client)];
    io->send(io->env, 1, &v, sizeof v);
    for (int i = 0; i < 100000 && probe.received[1] == server_had; i++)
        sim_run_until(s, sim_now(s) + 1000);   /* 1 us steps: stop as the server echoes */
    ck_assert_uint_eq(probe.received[1], server_had + 1);
    ck_assert_uint_eq(probe.received[probe_slot(client)], client_had);   /* echo in flight */
    sim_crash(s, client, 0);
    sim_restart(s, client);
    sim_run_until(s, sim_now(s) + 10 * MS);
    ck_assert_uint_eq(probe.received[probe_slot(client)], client_had);   /* never delivered */
    sim_destroy(s);
}
END_TEST

START_TEST(net_timer_fires_at_or_after_local_deadline) {
    struct sim *s = probe_sim(9, 1);
    sim_clock_set(s, 1, 5 * SEC, 150);
    const struct rq_io *io = probe.io[1];
    uint64_t deadline = io->now(io->env) + 250 * MS;
    io->set_timer(io->env, deadline);
    io->set_timer(io->env, deadline + 1 * MS);  /* replaces the first */
    sim_run_until(s, sim_now(s) + 1 * SEC);
    ck_assert_uint_ge(probe.timer_fired_local_ns, deadline + 1 * MS);
    ck_assert_uint_le(probe.timer_fired_local_ns, deadline + 1 * MS + 1000);
    sim_destroy(s);
}
END_TEST

/* ---- disk ---------------------------------------------------------------------------------- */

static const struct sim_disk_faults no_faults = {0, 0, 0};

static int64_t disk_do(struct sim_disk *d, struct rq_rng *rng, enum rq_disk_op op, const char *path,
                       int32_t file, uint64_t offset, void *buf, size_t len, uint32_t flags) {
    struct rq_disk_req req;
    memset(&req, 0, sizeof req);
    req.op = op;
    req.file = file;
    req.offset = offset;
    req.buf = buf;
    req.len = len;
    req.flags = flags;
    if (path) strcpy(req.path, path);
    sim_disk_execute(d, &req, &no_faults, rng);
    return req.result;
}

static int32_t disk_open(struct sim_disk *d, struct rq_rng *rng, const char *path, uint32_t flags) {
    return (int32_t)disk_do(d, rng, RQ_DISK_OPEN, path, 0, 0, NULL, 0, flags);
}

static void fill_pattern(uint8_t *buf, size_t len, uint8_t salt) {
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(i * 31 + salt + (i >> 8));
}

/* A durable, named, empty file "f" on a fresh disk. */
static struct sim_disk *disk_with_file(struct rq_rng *rng, int32_t *fd) {
    struct sim_disk *d = sim_disk_create();
    *fd = disk_open(d, rng, "f", RQ_DISK_CREATE);
    ck_assert_int_ge(*fd, 0);
    ck_assert_int_eq(disk_do(d, rng, RQ_DISK_FSYNC_DIR, "", 0, 0, NULL, 0, 0), 0);
    return d;
}

START_TEST(disk_unsynced_write_is_lost_or_torn_at_sectors_never_changed) {
    uint8_t data[4096 + 100];
    fill_pattern(data, sizeof data, 1);
    int saw_none = 0, saw_all = 0, saw_torn = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct rq_rng rng;
        rq_rng_seed(&rng, seed);
        int32_t fd;
        struct sim_disk *d = disk_with_file(&rng, &fd);
        ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, data, sizeof data, 0), 0);
        sim_disk_crash(d, &rng);
        const uint8_t *img;
        uint64_t size;
        ck_assert_int_eq(sim_disk_image(d, "f", 1, &img, &size), 0);
        /* What survives is a prefix ending at a sector boundary, or all of it. */
        ck_assert(size == sizeof data || size % RQ_DISK_SECTOR_SIZE == 0);
        ck_assert(size == 0 || memcmp(img, data, size) == 0);
        saw_none |= size == 0;
        saw_all |= size == sizeof data;
        saw_torn |= size > 0 && size < sizeof data;
        sim_disk_destroy(d);
    }
    ck_assert(saw_none && saw_all && saw_torn);
}
END_TEST

START_TEST(disk_fsynced_data_always_survives_and_overwrites_mix_only_by_sector) {
    uint8_t old[2048], neu[2048];
    fill_pattern(old, sizeof old, 2);
    fill_pattern(neu, sizeof neu, 99);
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct rq_rng rng;
        rq_rng_seed(&rng, seed);
        int32_t fd;
        struct sim_disk *d = disk_with_file(&rng, &fd);
        ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, old, sizeof old, 0), 0);
        ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC, NULL, fd, 0, NULL, 0, 0), 0);
        /* An unsynced overwrite of the middle, unaligned. */
        ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 300, neu, 1200, 0), 0);
        sim_disk_crash(d, &rng);
        const uint8_t *img;
        uint64_t size;
        ck_assert_int_eq(sim_disk_image(d, "f", 1, &img, &size), 0);
        ck_assert_uint_eq(size, sizeof old);
        for (uint64_t i = 0; i < size; i++) {
            int in_write = i >= 300 && i < 1500;
            if (!in_write) ck_assert_uint_eq(img[i], old[i]);
            else ck_assert(img[i] == old[i] || img[i] == neu[i - 300]);
        }
        /* Torn only at sector boundaries: within a sector, bytes of the write are all new or all old. */
        for (uint64_t sector = 0; sector < 4; sector++) {
            uint64_t lo = sector * RQ_DISK_SECTOR_SIZE < 300 ? 300 : sector * RQ_DISK_SECTOR_SIZE;
            uint64_t hi = (sector + 1) * RQ_DISK_SECTOR_SIZE > 1500 ? 1500 : (sector + 1) * RQ_DISK_SECTOR_SIZE;
            int any_new = 0, any_old = 0;
            for (uint64_t i = lo; i < hi; i++) {
                if (neu[i - 300] == old[i]) continue;
                any_new |= img[i] == neu[i - 300];
                any_old |= img[i] == old[i];
            }
            ck_assert(!(any_new && any_old));
        }
        sim_disk_destroy(d);
    }
}
END_TEST

START_TEST(disk_created_file_needs_directory_fsync) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 11);
    struct sim_disk *d = sim_disk_create();
    int32_t fd = disk_open(d, &rng, "a", RQ_DISK_CREATE);
    uint8_t data[100] = {1, 2, 3};
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, data, sizeof data, 0), 0);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC, NULL, fd, 0, NULL, 0, 0), 0);  /* data, not name */
    sim_disk_crash(d, &rng);
    ck_assert(!sim_disk_exists(d, "a", 0));
    ck_assert_int_eq(disk_open(d, &rng, "a", 0), RQ_ENOENT);

    fd = disk_open(d, &rng, "a", RQ_DISK_CREATE);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, data, sizeof data, 0), 0);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC, NULL, fd, 0, NULL, 0, 0), 0);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC_DIR, "", 0, 0, NULL, 0, 0), 0);
    sim_disk_crash(d, &rng);
    const uint8_t *img;
    uint64_t size;
    ck_assert_int_eq(sim_disk_image(d, "a", 1, &img, &size), 0);
    ck_assert_uint_eq(size, sizeof data);
    sim_disk_destroy(d);
}
END_TEST

START_TEST(disk_rename_and_unlink_need_directory_fsync) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 12);
    int32_t fd;
    struct sim_disk *d = disk_with_file(&rng, &fd);  /* "f", durable */
    struct rq_disk_req req;
    memset(&req, 0, sizeof req);
    req.op = RQ_DISK_RENAME;
    strcpy(req.path, "f");
    strcpy(req.path2, "g");
    sim_disk_execute(d, &req, &no_faults, &rng);
    ck_assert_int_eq(req.result, 0);
    ck_assert(sim_disk_exists(d, "g", 0) && !sim_disk_exists(d, "f", 0));
    sim_disk_crash(d, &rng);  /* the rename was never made durable */
    ck_assert(sim_disk_exists(d, "f", 0) && !sim_disk_exists(d, "g", 0));

    sim_disk_execute(d, &req, &no_faults, &rng);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC_DIR, "", 0, 0, NULL, 0, 0), 0);
    sim_disk_crash(d, &rng);
    ck_assert(sim_disk_exists(d, "g", 0) && !sim_disk_exists(d, "f", 0));

    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_UNLINK, "g", 0, 0, NULL, 0, 0), 0);
    sim_disk_crash(d, &rng);  /* the unlink was never made durable: back */
    ck_assert(sim_disk_exists(d, "g", 0));
    sim_disk_destroy(d);
}
END_TEST

START_TEST(disk_subdirectory_names_need_their_own_fsync) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 13);
    struct sim_disk *d = sim_disk_create();
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_MKDIR, "wal", 0, 0, NULL, 0, 0), 0);
    ck_assert_int_ge(disk_open(d, &rng, "wal/1", RQ_DISK_CREATE), 0);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC_DIR, "wal", 0, 0, NULL, 0, 0), 0);
    sim_disk_crash(d, &rng);  /* "wal" itself was never made durable in "" */
    ck_assert(!sim_disk_exists(d, "wal", 0));
    ck_assert(!sim_disk_exists(d, "wal/1", 0));
    ck_assert_int_eq(disk_open(d, &rng, "wal/1", RQ_DISK_CREATE), RQ_ENOENT);
    sim_disk_destroy(d);
}
END_TEST

START_TEST(disk_process_exit_keeps_the_page_cache) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 14);
    int32_t fd;
    struct sim_disk *d = disk_with_file(&rng, &fd);
    uint8_t data[777];
    fill_pattern(data, sizeof data, 3);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, data, sizeof data, 0), 0);
    sim_disk_process_exit(d);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC, NULL, fd, 0, NULL, 0, 0), RQ_EBADF);  /* handle closed */
    const uint8_t *img;
    uint64_t size;
    ck_assert_int_eq(sim_disk_image(d, "f", 0, &img, &size), 0);
    ck_assert_uint_eq(size, sizeof data);  /* still readable ... */
    ck_assert_int_eq(sim_disk_image(d, "f", 1, &img, &size), 0);
    ck_assert_uint_eq(size, 0);            /* ... but not durable */
    sim_disk_destroy(d);
}
END_TEST

START_TEST(disk_fsync_eio_is_reported) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 15);
    int32_t fd;
    struct sim_disk *d = disk_with_file(&rng, &fd);
    uint8_t data[64] = {9};
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, data, sizeof data, 0), 0);
    struct sim_disk_faults eio = {0, RQ_PPM, 0};
    struct rq_disk_req req;
    memset(&req, 0, sizeof req);
    req.op = RQ_DISK_FSYNC;
    req.file = fd;
    sim_disk_execute(d, &req, &eio, &rng);
    ck_assert_int_eq(req.result, RQ_EIO);
    ck_assert_uint_eq(sim_disk_stats(d)->fsync_errors, 1);
    sim_disk_destroy(d);
}
END_TEST

START_TEST(disk_enospc_writes_nothing) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 16);
    int32_t fd;
    struct sim_disk *d = disk_with_file(&rng, &fd);
    uint8_t data[1000];
    fill_pattern(data, sizeof data, 4);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, data, sizeof data, 0), 0);
    struct sim_disk_faults full = {1, 0, 0};
    uint8_t more[100];
    fill_pattern(more, sizeof more, 5);
    struct rq_disk_req req;
    memset(&req, 0, sizeof req);
    req.op = RQ_DISK_PWRITE;
    req.file = fd;
    req.offset = 950;  /* overlaps the end: would grow the file */
    req.buf = more;
    req.len = sizeof more;
    sim_disk_execute(d, &req, &full, &rng);
    ck_assert_int_eq(req.result, RQ_ENOSPC);
    const uint8_t *img;
    uint64_t size;
    ck_assert_int_eq(sim_disk_image(d, "f", 0, &img, &size), 0);
    ck_assert_uint_eq(size, sizeof data);
    ck_assert_int_eq(memcmp(img, data, sizeof data), 0);  /* not even the overlapping part */
    req.offset = 0;  /* an overwrite inside the file needs no space */
    sim_disk_execute(d, &req, &full, &rng);
    ck_assert_int_eq(req.result, 0);
    /* a capacity limit works the same way */
    struct sim_disk_faults small = {0, 0, 1500};
    req.offset = 1000;
    req.len = 600;
    uint8_t big[600] = {0};
    req.buf = big;
    sim_disk_execute(d, &req, &small, &rng);
    ck_assert_int_eq(req.result, RQ_ENOSPC);
    sim_disk_destroy(d);
}
END_TEST

START_TEST(disk_latent_corruption_flips_one_synced_bit) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 17);
    int32_t fd;
    struct sim_disk *d = disk_with_file(&rng, &fd);
    uint8_t data[4096];
    fill_pattern(data, sizeof data, 6);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, data, sizeof data, 0), 0);
    char path[RQ_DISK_PATH_MAX];
    uint64_t offset;
    ck_assert_int_eq(sim_disk_corrupt(d, &rng, "", path, &offset), RQ_ENOENT);  /* nothing synced yet */
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC, NULL, fd, 0, NULL, 0, 0), 0);
    ck_assert_int_eq(sim_disk_corrupt(d, &rng, "", path, &offset), 0);
    ck_assert_str_eq(path, "f");
    ck_assert(sim_disk_was_corrupted(d, "f"));
    uint8_t back[4096];
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PREAD, NULL, fd, 0, back, sizeof back, 0), (int64_t)sizeof back);
    int bits = 0;
    for (size_t i = 0; i < sizeof back; i++) bits += __builtin_popcount(back[i] ^ data[i]);
    ck_assert_int_eq(bits, 1);
    ck_assert(back[offset] != data[offset]);
    sim_disk_destroy(d);
}
END_TEST

START_TEST(disk_list_is_sorted_and_bad_requests_fail_cleanly) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 18);
    struct sim_disk *d = sim_disk_create();
    const char *names[] = {"zeta", "alpha", "mid", "beta"};
    for (int i = 0; i < 4; i++) ck_assert_int_ge(disk_open(d, &rng, names[i], RQ_DISK_CREATE), 0);
    char buf[64];
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_LIST, "", 0, 0, buf, sizeof buf, 0), 4);
    ck_assert_str_eq(buf, "alpha");
    ck_assert_str_eq(buf + 6, "beta");
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_LIST, "", 0, 0, buf, 8, 0), RQ_ETOOBIG);
    ck_assert_int_eq(disk_open(d, &rng, "../x", RQ_DISK_CREATE), RQ_EINVAL);
    ck_assert_int_eq(disk_open(d, &rng, "/abs", RQ_DISK_CREATE), RQ_EINVAL);
    ck_assert_int_eq(disk_open(d, &rng, "a/b/c", RQ_DISK_CREATE), RQ_EINVAL);
    ck_assert_int_eq(disk_open(d, &rng, "nodir/x", RQ_DISK_CREATE), RQ_ENOENT);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, 63, 0, buf, 1, 0), RQ_EBADF);
    ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_CLOSE, NULL, -1, 0, NULL, 0, 0), RQ_EBADF);
    /* handles run out with a clear error */
    int opened = 4;
    while (disk_open(d, &rng, "alpha", 0) >= 0) opened++;
    ck_assert_int_eq(opened, SIM_DISK_HANDLES_MAX);
    ck_assert_int_eq(disk_open(d, &rng, "alpha", 0), RQ_EMFILE);
    sim_disk_destroy(d);
}
END_TEST

START_TEST(disk_truncate_unsynced_happens_or_not) {
    int saw_kept = 0, saw_cut = 0;
    uint8_t data[1024];
    fill_pattern(data, sizeof data, 8);
    for (uint64_t seed = 1; seed <= 64; seed++) {
        struct rq_rng rng;
        rq_rng_seed(&rng, seed);
        int32_t fd;
        struct sim_disk *d = disk_with_file(&rng, &fd);
        ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_PWRITE, NULL, fd, 0, data, sizeof data, 0), 0);
        ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_FSYNC, NULL, fd, 0, NULL, 0, 0), 0);
        ck_assert_int_eq(disk_do(d, &rng, RQ_DISK_TRUNCATE, NULL, fd, 100, NULL, 0, 0), 0);
        sim_disk_crash(d, &rng);
        const uint8_t *img;
        uint64_t size;
        ck_assert_int_eq(sim_disk_image(d, "f", 1, &img, &size), 0);
        ck_assert(size == 100 || size == sizeof data);
        ck_assert_int_eq(memcmp(img, data, size), 0);
        saw_cut |= size == 100;
        saw_kept |= size == sizeof data;
        sim_disk_destroy(d);
    }
    ck_assert(saw_cut && saw_kept);
}
END_TEST

/* ---- clock --------------------------------------------------------------------------------- */

START_TEST(clock_drift_stays_within_bound_over_long_runs) {
    const int32_t bound = 200;
    struct rq_rng rng;
    rq_rng_seed(&rng, 21);
    struct sim_clock c;
    sim_clock_init(&c, 0, 5ull * SEC, 0);
    /* 24 simulated hours, the drift re-drawn within the bound every few seconds. */
    enum { SAMPLES = 20000 };
    static uint64_t t_true[SAMPLES], t_local[SAMPLES];
    uint64_t t = 0;
    for (int i = 0; i < SAMPLES; i++) {
        t += rq_rng_range(&rng, 1, 8ull * SEC);
        if (rq_rng_chance(&rng, RQ_PPM / 2)) {
            sim_clock_set_drift(&c, t, (int32_t)rq_rng_range(&rng, 0, 2 * bound) - bound);
        }
        t_true[i] = t;
        t_local[i] = sim_clock_local(&c, t);
        if (i > 0) ck_assert_uint_ge(t_local[i], t_local[i - 1]);  /* monotonic */
    }
    for (int k = 0; k < 100000; k++) {
        int a = (int)rq_rng_below(&rng, SAMPLES), b = (int)rq_rng_below(&rng, SAMPLES);
        if (a > b) { int x = a; a = b; b = x; }
        uint64_t dt = t_true[b] - t_true[a];
        uint64_t dl = t_local[b] - t_local[a];
        uint64_t err = dl > dt ? dl - dt : dt - dl;
        ck_assert_uint_le(err, dt / 1000000 * bound + (uint64_t)(b - a) + 1);
    }
}
END_TEST

START_TEST(clock_true_at_inverts_local) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 22);
    for (int i = 0; i < 100000; i++) {
        struct sim_clock c;
        int32_t drift = (int32_t)rq_rng_range(&rng, 0, 200000) - 100000;
        sim_clock_init(&c, rq_rng_below(&rng, 1000ull * SEC), rq_rng_below(&rng, 1000ull * SEC), drift);
        uint64_t local = c.base_local_ns + rq_rng_below(&rng, 100ull * SEC);
        uint64_t t = sim_clock_true_at(&c, local);  /* asserts minimality itself */
        ck_assert_uint_ge(sim_clock_local(&c, t), local);
    }
}
END_TEST

START_TEST(clock_nodes_in_a_run_respect_max_drift) {
    struct sim_config cfg;
    sim_config_default(&cfg);
    cfg.workload = &sim_workload_selftest;
    cfg.seed = 23;
    cfg.faults = SIM_FAULT_CLOCK;
    cfg.swarm = 0;
    cfg.max_drift_ppm = 100;
    cfg.duration_ns = 600ull * SEC;
    cfg.heal_ns = 0;
    struct sim *s = sim_create(&cfg);
    uint64_t start_local[4], start_true = sim_now(s);
    for (uint32_t n = 1; n <= 3; n++) start_local[n] = sim_local_time(s, n);
    sim_run_until(s, cfg.duration_ns);
    uint64_t dt = sim_now(s) - start_true;
    for (uint32_t n = 1; n <= 3; n++) {
        uint64_t dl = sim_local_time(s, n) - start_local[n];
        uint64_t err = dl > dt ? dl - dt : dt - dl;
        ck_assert_uint_le(err, dt / 1000000 * 100 + 1000);
    }
    sim_destroy(s);
}
END_TEST

/* ---- determinism --------------------------------------------------------------------------- */

static uint64_t run_hash(uint64_t seed, uint64_t duration_ns, struct sim_result *out) {
    struct sim_config cfg;
    sim_config_default(&cfg);
    cfg.workload = &sim_workload_selftest;
    cfg.seed = seed;
    cfg.duration_ns = duration_ns;
    cfg.heal_ns = duration_ns / 4;
    struct sim *s = sim_create(&cfg);
    sim_run(s, out);
    sim_destroy(s);
    return out->trace_hash;
}

START_TEST(determinism_same_seed_same_hash) {
    struct sim_result a, b;
    run_hash(7, 20ull * SEC, &a);
    run_hash(7, 20ull * SEC, &b);
    ck_assert_int_eq(a.failed, 0);
    ck_assert_uint_eq(a.trace_hash, b.trace_hash);
    ck_assert_uint_eq(a.events, b.events);
    ck_assert_uint_gt(a.events, 1000);
}
END_TEST

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

START_TEST(determinism_different_seeds_different_hashes) {
    enum { SEEDS = 1000 };
    static uint64_t hashes[SEEDS];
    for (uint64_t seed = 0; seed < SEEDS; seed++) {
        struct sim_result r;
        hashes[seed] = run_hash(seed + 1, 2ull * SEC, &r);
        ck_assert_msg(!r.failed, "seed %llu failed: %s", (unsigned long long)seed + 1, r.failure);
    }
    qsort(hashes, SEEDS, sizeof hashes[0], cmp_u64);
    for (int i = 1; i < SEEDS; i++) ck_assert_uint_ne(hashes[i], hashes[i - 1]);
}
END_TEST

/* ---- the selftest checker fires on real bugs ------------------------------------------------- */

static void inject(struct sim *s, void *arg) { selftest_inject_bugs(s, *(const uint32_t *)arg); }

/* Runs seeds 1..seeds with the bug injected; returns how many failed, the first in `failure`. */
static int failures_with_bug(uint32_t bug, uint32_t faults, int seeds, char *failure, size_t cap) {
    struct sim_config cfg;
    sim_config_default(&cfg);
    cfg.workload = &sim_workload_selftest;
    cfg.faults = faults;
    cfg.swarm = 0;
    return sim_run_seeds(&cfg, 1, seeds, inject, &bug, failure, cap);
}

START_TEST(selftest_passes_without_bugs) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_eq(failures_with_bug(0, SIM_FAULT_CRASH | SIM_FAULT_CORRUPT | SIM_FAULT_ENOSPC, 10,
                                       failure, sizeof failure), 0);
}
END_TEST

START_TEST(selftest_catches_ack_before_fsync) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(SELFTEST_BUG_ACK_BEFORE_FSYNC, SIM_FAULT_CRASH, 10, failure,
                                       sizeof failure), 0);
    ck_assert_ptr_nonnull(strstr(failure, "lost durable records"));
}
END_TEST

START_TEST(selftest_catches_missing_directory_fsync) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(SELFTEST_BUG_SKIP_DIR_FSYNC, SIM_FAULT_CRASH, 10, failure,
                                       sizeof failure), 0);
}
END_TEST

START_TEST(selftest_catches_serving_corrupt_records) {
    char failure[SIM_FAILURE_MAX] = "";
    ck_assert_int_gt(failures_with_bug(SELFTEST_BUG_IGNORE_CRC, SIM_FAULT_CRASH | SIM_FAULT_CORRUPT, 20,
                                       failure, sizeof failure), 0);
    ck_assert_ptr_nonnull(strstr(failure, "different bytes"));
}
END_TEST

START_TEST(config_parses_fault_lists) {
    uint32_t mask;
    ck_assert_int_eq(sim_faults_parse("all", &mask), 0);
    ck_assert_uint_eq(mask, SIM_FAULT_ALL);
    ck_assert_int_eq(sim_faults_parse("none", &mask), 0);
    ck_assert_uint_eq(mask, 0);
    ck_assert_int_eq(sim_faults_parse("crash,partition", &mask), 0);
    ck_assert_uint_eq(mask, SIM_FAULT_CRASH | SIM_FAULT_PARTITION);
    ck_assert_int_eq(sim_faults_parse("crash,bogus", &mask), RQ_EINVAL);
    char buf[64];
    sim_faults_format(SIM_FAULT_LOSS | SIM_FAULT_EIO, buf, sizeof buf);
    ck_assert_str_eq(buf, "loss,eio");
}
END_TEST

int main(void) {
    Suite *suite = suite_create("sim");
    TCase *net = tcase_create("network");
    tcase_add_test(net, net_partition_blocks_both_ways_and_heal_restores);
    tcase_add_test(net, net_asymmetric_partition_blocks_one_way);
    tcase_add_test(net, net_cut_drops_messages_already_in_flight);
    tcase_add_test(net, net_loss_rate_is_close_to_configured);
    tcase_add_test(net, net_dup_rate_is_close_to_configured);
    tcase_add_test(net, net_reorders_only_with_variable_latency);
    tcase_add_test(net, net_nothing_is_delivered_to_a_crashed_node);
    tcase_add_test(net, net_client_connection_dies_with_the_client);
    tcase_add_test(net, net_timer_fires_at_or_after_local_deadline);
    suite_add_tcase(suite, net);

    TCase *disk = tcase_create("disk");
    tcase_add_test(disk, disk_unsynced_write_is_lost_or_torn_at_sectors_never_changed);
    tcase_add_test(disk, disk_fsynced_data_always_survives_and_overwrites_mix_only_by_sector);
    tcase_add_test(disk, disk_created_file_needs_directory_fsync);
    tcase_add_test(disk, disk_rename_and_unlink_need_directory_fsync);
    tcase_add_test(disk, disk_subdirectory_names_need_their_own_fsync);
    tcase_add_test(disk, disk_process_exit_keeps_the_page_cache);
    tcase_add_test(disk, disk_fsync_eio_is_reported);
    tcase_add_test(disk, disk_enospc_writes_nothing);
    tcase_add_test(disk, disk_latent_corruption_flips_one_synced_bit);
    tcase_add_test(disk, disk_list_is_sorted_and_bad_requests_fail_cleanly);
    tcase_add_test(disk, disk_truncate_unsynced_happens_or_not);
    suite_add_tcase(suite, disk);

    TCase *clock = tcase_create("clock");
    tcase_add_test(clock, clock_drift_stays_within_bound_over_long_runs);
    tcase_add_test(clock, clock_true_at_inverts_local);
    tcase_add_test(clock, clock_nodes_in_a_run_respect_max_drift);
    suite_add_tcase(suite, clock);

    TCase *det = tcase_create("determinism");
    tcase_set_timeout(det, 600);  /* a generous bound for slow sanitizer builds, not a timing test */
    tcase_add_test(det, determinism_same_seed_same_hash);
    tcase_add_test(det, determinism_different_seeds_different_hashes);
    suite_add_tcase(suite, det);

    TCase *chk = tcase_create("selftest-checker");
    tcase_set_timeout(chk, 600);
    tcase_add_test(chk, selftest_passes_without_bugs);
    tcase_add_test(chk, selftest_catches_ack_before_fsync);
    tcase_add_test(chk, selftest_catches_missing_directory_fsync);
    tcase_add_test(chk, selftest_catches_serving_corrupt_records);
    tcase_add_test(chk, config_parses_fault_lists);
    suite_add_tcase(suite, chk);

    return run_suites(srunner_create(suite));
}
