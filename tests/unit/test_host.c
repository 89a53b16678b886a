/* The node host (src/node/host.c) in the simulator: many idle Raft groups on a few servers cost no
 * more network messages than one group (heartbeats are coalesced into one batch per peer per
 * interval), every group elects a leader, and what a node says about its groups survives a restart
 * of the whole cluster; a leadership transfer through the host moves a group's leader; snapshots
 * are taken, compact the log, reach a follower that missed the log, and survive a restart. */
#include <check.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "node/host.h"
#include "sim/sim.h"
#include "tests/unit/host_server.h"
#include "tests/unit/suite_main.h"

struct world {
    struct sim *sim;
    uint32_t groups;
    uint32_t snapshot_entries;    /* 0: no snapshots */
    int stored_log;               /* group 1 is added as HOST_GROUP_STORED_LOG */
    uint64_t segment_bytes;       /* the stores' segment size; 0: the default */
};

/* The state machine: how many entries were applied and a running digest of them. */
struct server {
    struct host *host;
    uint64_t applied;
    uint64_t digest;
    uint32_t restores;
    uint64_t last_index;          /* the last entry applied (group 1) */
    uint32_t calls_back;          /* apply proposes "pong" after each "ping" (reentrancy test) */
    /* host_read_log answers: the last one's cookie, error and entries (copied). */
    uint32_t log_reads;
    uint64_t read_cookie;
    int read_err;
    uint32_t read_count;
    struct raft_entry read_entries[HOST_LOG_READ_ENTRIES_MAX];
    uint8_t *read_data;           /* HOST_LOG_READ_BYTES_MAX + RAFT_ENTRY_DATA_MAX */
};

static void log_read(void *arg, uint32_t group, uint64_t cookie, int err,
                     const struct raft_entry *entries, uint32_t count) {
    struct server *n = arg;
    ck_assert_uint_eq(group, 1);
    ck_assert_uint_le(count, HOST_LOG_READ_ENTRIES_MAX);
    n->log_reads++;
    n->read_cookie = cookie;
    n->read_err = err;
    n->read_count = count;
    size_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        n->read_entries[i] = entries[i];
        ck_assert_uint_le(at + entries[i].data_size, HOST_LOG_READ_BYTES_MAX + RAFT_ENTRY_DATA_MAX);
        if (entries[i].data_size) memcpy(n->read_data + at, entries[i].data, entries[i].data_size);
        n->read_entries[i].data = n->read_data + at;
        at += entries[i].data_size;
    }
}

static void count_apply(void *arg, uint32_t group, const struct raft_entry *e) {
    struct server *n = arg;
    n->applied++;
    n->digest = n->digest * 1000003u + e->index * 31u + e->data_size;
    if (group == 1) {
        ck_assert_uint_gt(e->index, n->last_index);   /* each entry once, in order */
        n->last_index = e->index;
    }
    uint64_t index, term;
    if (n->calls_back && e->data_size == 4 && memcmp(e->data, "ping", 4) == 0 &&
        host_raft(n->host, group) != NULL && raft_role(host_raft(n->host, group)) == RAFT_LEADER)
        ck_assert_int_eq(host_propose(n->host, group, "pong", 4, &index, &term), 0);
}

static size_t image(void *arg, uint32_t group, uint8_t *buf, size_t cap) {
    struct server *n = arg;
    (void)group;
    if (cap < 16) return 16;
    memcpy(buf, &n->applied, 8);
    memcpy(buf + 8, &n->digest, 8);
    return 16;
}

static void restore(void *arg, uint32_t group, uint64_t index, const uint8_t *img, size_t size) {
    struct server *n = arg;
    (void)group;
    (void)index;
    ck_assert_uint_eq(size, 16);
    memcpy(&n->applied, img, 8);
    memcpy(&n->digest, img + 8, 8);
    n->restores++;
}

static void *server_create(const struct rq_io *io, const void *config) {
    const struct world *w = config;
    struct server *n = calloc(1, sizeof *n);
    RQ_ASSERT(n != NULL);
    struct host_config hc;
    host_server_host_config(&hc, w->groups, sim_servers(w->sim), w->snapshot_entries, 0);
    if (w->segment_bytes) hc.store.segment_bytes_max = w->segment_bytes;
    static const struct host_callbacks plain = {.apply = count_apply};
    static const struct host_callbacks snapshots = {.apply = count_apply, .snapshot = image,
                                                    .restore = restore, .log_read = log_read};
    n->host = host_create(io, &hc, w->snapshot_entries ? &snapshots : &plain, n);
    RQ_ASSERT(n->host != NULL);
    if (w->stored_log) {
        n->read_data = malloc(HOST_LOG_READ_BYTES_MAX + RAFT_ENTRY_DATA_MAX);
        RQ_ASSERT(n->read_data != NULL);
        int err = host_group_add(n->host, 1, hc.raft.voters, hc.raft.voter_count,
                                 HOST_GROUP_STORED_LOG);
        RQ_ASSERT(err == 0);
    }
    return n;
}

static void server_destroy(void *node) {
    struct server *n = node;
    host_destroy(n->host);
    free(n->read_data);
    free(n);
}

static void on_timer(void *node) { host_on_timer(host_of(node)); }

static const struct rq_node_ops server_ops = {
    .name = "host-test", .create = server_create, .destroy = server_destroy,
    .on_start = host_server_start, .on_timer = on_timer, .on_peer_message = host_server_peer,
    .on_client_message = host_server_client, .on_disk_done = host_server_disk,
    .on_conn_closed = host_server_closed,
};

static uint32_t next_groups;   /* init reads the group count the test chose */
static uint32_t next_snapshot_entries;
static int next_stored_log;
static uint64_t next_segment_bytes;

static void *world_init(struct sim *s) {
    struct world *w = calloc(1, sizeof *w);
    RQ_ASSERT(w != NULL);
    w->sim = s;
    w->groups = next_groups;
    w->snapshot_entries = next_snapshot_entries;
    w->stored_log = next_stored_log;
    w->segment_bytes = next_segment_bytes;
    return w;
}

static void world_fini(void *w) { free(w); }

static const struct sim_workload host_workload = {
    .name = "host-test", .server_ops = &server_ops, .init = world_init, .fini = world_fini,
};

/* Runs an idle cluster of `servers` nodes hosting `groups` groups for `seconds`, no faults;
 * returns the messages sent between second 2 and the end (elections are over by then), and how
 * many groups have a leader at the end. */
static uint64_t idle_messages(uint32_t servers, uint32_t groups, uint32_t seconds, uint32_t *led) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &host_workload, servers, 11, (uint64_t)seconds * 1000000000u);
    next_groups = groups;
    struct sim *s = sim_create(&cfg);
    sim_run_until(s, 2000000000ull);
    uint64_t before = sim_stats(s)->messages_sent;
    sim_run_until(s, cfg.duration_ns);
    uint64_t sent = sim_stats(s)->messages_sent - before;
    *led = 0;
    for (uint32_t g = 1; g <= groups; g++) {
        uint32_t leaders = 0;
        for (uint32_t id = 1; id <= servers; id++) {
            struct server *n = sim_node(s, id);
            const struct raft *r = n ? host_raft(n->host, g) : NULL;
            if (r != NULL && raft_role(r) == RAFT_LEADER) leaders++;
        }
        ck_assert_uint_le(leaders, 1);
        *led += leaders;
    }
    sim_destroy(s);
    return sent;
}

START_TEST(idle_groups_cost_no_messages_of_their_own) {
    uint32_t led1, led32;
    uint64_t one = idle_messages(3, 1, 6, &led1);
    uint64_t many = idle_messages(3, 32, 6, &led32);
    ck_assert_uint_eq(led1, 1);
    ck_assert_uint_eq(led32, 32);
    /* One group: its leader sends a heartbeat batch to 2 peers every 20 ms and each answers, about
     * 200 messages per second. 32 groups, led by all 3 nodes, at most 3 times that (every node
     * now heartbeats its peers), never 32 times. */
    ck_assert_uint_gt(one, 3 * 100);
    ck_assert_uint_le(many, 3 * one + one / 4);
}
END_TEST

/* host_transfer_leader: refused where raft_transfer_leader refuses, and on the leader it hands
 * the group to the target within a few election timeouts (no faults). */
START_TEST(a_transfer_moves_the_leader_to_the_target) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &host_workload, 3, 11, 4000000000ull);
    next_groups = 2;
    struct sim *s = sim_create(&cfg);
    sim_run_until(s, 2000000000ull);
    uint32_t leader = host_server_leader(s, 3, 1);
    ck_assert_uint_ne(leader, 0);
    uint32_t target = leader % 3 + 1, other = target % 3 + 1;
    struct host *lh = ((struct server *)sim_node(s, leader))->host;
    struct host *th = ((struct server *)sim_node(s, target))->host;
    ck_assert_int_eq(host_transfer_leader(th, 1, other), RQ_ENOTLEADER);
    ck_assert_int_eq(host_transfer_leader(lh, 9, target), RQ_ERANGE);
    ck_assert_int_eq(host_transfer_leader(lh, 1, leader), RQ_EINVAL);
    ck_assert_int_eq(host_transfer_leader(lh, 1, 7), RQ_EINVAL);
    ck_assert_int_eq(host_transfer_leader(lh, 1, target), 0);
    ck_assert_int_eq(host_transfer_leader(lh, 1, other), RQ_EBUSY);
    uint64_t index, term;
    ck_assert_int_eq(host_propose(lh, 1, "x", 1, &index, &term), RQ_EBUSY);
    sim_run_until(s, 3000000000ull);
    ck_assert_uint_eq(host_server_leader(s, 3, 1), target);
    struct raft_stats st;
    raft_stats_get(host_raft(lh, 1), &st);
    ck_assert_uint_eq(st.timeouts_now_sent, 1);
    ck_assert_uint_eq(st.transfers_aborted, 0);
    sim_destroy(s);
}
END_TEST

static struct server *server_of(struct sim *s, uint32_t id) { return sim_node(s, id); }

/* Proposes count entries at the leader, letting the cluster run 10 ms after each. */
static void propose_many(struct sim *s, uint32_t leader, int count, uint64_t *now) {
    for (int i = 0; i < count; i++) {
        uint64_t index, term;
        ck_assert_int_eq(host_propose(server_of(s, leader)->host, 1, "entry", 5, &index, &term), 0);
        *now += 10000000ull;
        sim_run_until(s, *now);
    }
}

/* A state machine may call back into the host from its apply callback: an entry proposed there
 * is appended after the one being applied, and no entry is applied twice. */
START_TEST(a_proposal_from_inside_apply_applies_nothing_twice) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &host_workload, 3, 11, 4000000000ull);
    next_groups = 1;
    struct sim *s = sim_create(&cfg);
    sim_run_until(s, 2000000000ull);
    uint32_t leader = host_server_leader(s, 3, 1);
    ck_assert_uint_ne(leader, 0);
    for (uint32_t id = 1; id <= 3; id++) server_of(s, id)->calls_back = 1;
    uint64_t index, term;
    ck_assert_int_eq(host_propose(server_of(s, leader)->host, 1, "ping", 4, &index, &term), 0);
    sim_run_until(s, 3000000000ull);
    for (uint32_t id = 1; id <= 3; id++)
        ck_assert_uint_eq(server_of(s, id)->last_index, index + 1);   /* the ping, then its pong */
    sim_destroy(s);
}
END_TEST

/* A follower cut off while the leader snapshots and compacts gets the snapshot when it returns,
 * restores its state machine from it, and catches up; after a crash it restarts from its own
 * snapshot. The state machines agree throughout. */
START_TEST(a_follower_behind_the_log_gets_the_snapshot) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &host_workload, 3, 11, 20000000000ull);
    next_groups = 1;
    next_snapshot_entries = 5;
    struct sim *s = sim_create(&cfg);
    uint64_t now = 2000000000ull;
    sim_run_until(s, now);
    uint32_t leader = host_server_leader(s, 3, 1), lag = leader % 3 + 1, other = lag % 3 + 1;
    ck_assert_uint_ne(leader, 0);
    for (uint32_t id = 1; id <= 3; id++) {
        if (id != lag) sim_net_cut(s, id, lag);
        if (id != lag) sim_net_cut(s, lag, id);
    }
    propose_many(s, leader, 30, &now);
    const struct raft *lr = host_raft(server_of(s, leader)->host, 1);
    uint64_t snap_index, snap_term;
    raft_snapshot_last(lr, &snap_index, &snap_term);
    ck_assert_uint_ge(snap_index, 25);
    ck_assert_uint_gt(raft_first_index(lr), raft_last_index(host_raft(server_of(s, lag)->host, 1)));
    sim_net_heal(s);
    now += 2000000000ull;
    sim_run_until(s, now);
    ck_assert_uint_ge(server_of(s, lag)->restores, 1);   /* it installed the leader's snapshot */
    ck_assert_uint_eq(server_of(s, lag)->applied, server_of(s, leader)->applied);
    ck_assert_uint_eq(server_of(s, lag)->digest, server_of(s, leader)->digest);
    ck_assert_uint_eq(host_server_leader(s, 3, 1), leader);
    sim_crash(s, lag, 1);
    sim_restart(s, lag);
    propose_many(s, leader, 3, &now);
    now += 2000000000ull;
    sim_run_until(s, now);
    ck_assert_uint_ge(server_of(s, lag)->restores, 1);   /* restarted from its own snapshot */
    ck_assert_uint_eq(server_of(s, lag)->digest, server_of(s, leader)->digest);
    ck_assert_uint_eq(server_of(s, other)->digest, server_of(s, leader)->digest);
    sim_destroy(s);
    next_snapshot_entries = 0;
}
END_TEST

/* The data of the i-th entry proposed by the stored-log test: its size and bytes vary with i. */
static uint32_t stored_entry(uint32_t i, uint8_t *buf) {
    uint32_t size = 200 + (i * 37) % 900;
    for (uint32_t k = 0; k < size; k++) buf[k] = (uint8_t)(i * 13 + k);
    return size;
}

/* Reads entries from..from+count-1 of group 1 on server id with host_read_log, running the
 * simulation until the answer came. */
static void read_log(struct sim *s, uint32_t id, uint64_t from, uint32_t count) {
    struct server *n = server_of(s, id);
    uint32_t before = n->log_reads;
    ck_assert_int_eq(host_read_log(n->host, 1, from, count, from * 7), 0);
    for (int i = 0; i < 100 && n->log_reads == before; i++)
        sim_run_until(s, sim_now(s) + 1000000ull);
    ck_assert_uint_eq(n->log_reads, before + 1);
    ck_assert_uint_eq(n->read_cookie, from * 7);
    ck_assert_int_eq(n->read_err, 0);
    ck_assert_uint_ge(n->read_count, 1);
    ck_assert_uint_eq(n->read_entries[0].index, from);
}

/* Checks that server id's stored log holds every NORMAL entry at proposed[index] (0: none proposed
 * there) byte for byte, reading from index 1 to last in reads of up to 64 entries. */
static void check_stored_log(struct sim *s, uint32_t id, const uint32_t *proposed, uint64_t last) {
    static uint8_t want[1200];
    struct server *n = server_of(s, id);
    uint32_t normal = 0;
    for (uint64_t from = 1; from <= last;) {
        read_log(s, id, from, 64);
        for (uint32_t k = 0; k < n->read_count; k++) {
            const struct raft_entry *e = &n->read_entries[k];
            ck_assert_uint_eq(e->index, from + k);
            if (e->type != RAFT_ENTRY_NORMAL) continue;
            ck_assert_uint_ne(proposed[e->index], 0);
            uint32_t size = stored_entry(proposed[e->index], want);
            ck_assert_uint_eq(e->data_size, size);
            ck_assert_int_eq(memcmp(e->data, want, size), 0);
            normal++;
        }
        from += n->read_count;
    }
    ck_assert_uint_ge(normal, 1);
}

/* HOST_GROUP_STORED_LOG: a snapshot every 5 entries compacts the leader's memory, not its stored
 * log. A follower down while 200 entries are committed comes back and catches up by entries read
 * from the leader's store (never a snapshot: its state machine is never restored), its own stored
 * log starting at 1; every replica's state machine is the same, and host_read_log returns every
 * entry byte for byte, also those below the leader's in-memory log. */
START_TEST(a_stored_log_follower_catches_up_by_stored_entries) {
    enum { COUNT = 200 };
    struct sim_config cfg;
    host_server_sim_config(&cfg, &host_workload, 3, 11, 60ull * 1000000000u);
    next_groups = 0;
    next_snapshot_entries = 5;
    next_stored_log = 1;
    struct sim *s = sim_create(&cfg);
    sim_run_until(s, 2000000000ull);
    uint32_t leader = host_server_leader(s, 3, 1), lag = leader % 3 + 1, other = lag % 3 + 1;
    ck_assert_uint_ne(leader, 0);
    sim_crash(s, lag, 0);
    static uint32_t proposed[1024];   /* index -> i + 1 of the entry proposed there */
    static uint8_t data[1200];
    struct host *lh = server_of(s, leader)->host;
    uint64_t index = 0, term;
    for (uint32_t i = 0; i < COUNT; i++) {
        uint32_t size = stored_entry(i + 1, data);
        ck_assert_int_eq(host_propose(lh, 1, data, size, &index, &term), 0);
        ck_assert_uint_lt(index, 1024);
        proposed[index] = i + 1;
        sim_run_until(s, sim_now(s) + 5000000ull);
    }
    sim_run_until(s, sim_now(s) + 500000000ull);
    const struct raft *lr = host_raft(lh, 1);
    ck_assert_uint_eq(raft_commit(lr), index);
    ck_assert_uint_gt(raft_first_index(lr), 100);   /* the memory was compacted */
    uint64_t leader_first = raft_first_index(lr);
    sim_restart(s, lag);
    sim_run_until(s, sim_now(s) + 3000000000ull);
    ck_assert_uint_eq(host_server_leader(s, 3, 1), leader);
    struct raft_stats st;
    raft_stats_get(lr, &st);
    ck_assert_uint_ge(st.loads_requested, 1);
    ck_assert_uint_ge(st.loaded_entries_sent, leader_first - 2);
    ck_assert_uint_eq(st.snapshot_chunks_sent, 0);
    for (uint32_t id = 1; id <= 3; id++) {
        const struct server *n = server_of(s, id);
        ck_assert_uint_eq(n->last_index, index);
        ck_assert_uint_eq(n->applied, server_of(s, leader)->applied);
        ck_assert_uint_eq(n->digest, server_of(s, leader)->digest);
    }
    ck_assert_uint_eq(server_of(s, lag)->restores, 0);   /* caught up by entries, not an image */
    struct raft_stats lst;
    raft_stats_get(host_raft(server_of(s, lag)->host, 1), &lst);
    ck_assert_uint_eq(lst.snapshots_installed, 0);
    ck_assert_uint_ge(lst.snapshots_taken, 1);           /* it compacts its own memory */
    /* Every replica's stored log starts at 1 and holds every entry, byte for byte; on the leader
     * from below its in-memory log. */
    check_stored_log(s, leader, proposed, index);
    check_stored_log(s, lag, proposed, index);
    check_stored_log(s, other, proposed, index);
    read_log(s, leader, 2, 3);
    ck_assert_uint_eq(server_of(s, leader)->read_count, 3);
    ck_assert_uint_lt(2, raft_first_index(lr));
    /* The bounds. */
    ck_assert_int_eq(host_read_log(lh, 1, 1, 0, 0), RQ_EINVAL);
    ck_assert_int_eq(host_read_log(lh, 1, 1, HOST_LOG_READ_ENTRIES_MAX + 1, 0), RQ_EINVAL);
    ck_assert_int_eq(host_read_log(lh, 1, 0, 1, 0), RQ_ERANGE);
    ck_assert_int_eq(host_read_log(lh, 1, index + 1, 1, 0), RQ_ERANGE);
    ck_assert_int_eq(host_read_log(lh, 2, 1, 1, 0), RQ_ERANGE);
    /* A restart of the follower: its snapshot, then the stored log after it; the rest stays. */
    sim_crash(s, lag, 0);
    sim_restart(s, lag);
    sim_run_until(s, sim_now(s) + 2000000000ull);
    ck_assert_uint_eq(server_of(s, lag)->restores, 1);
    ck_assert_uint_eq(server_of(s, lag)->digest, server_of(s, leader)->digest);
    check_stored_log(s, lag, proposed, index);
    sim_destroy(s);
    next_snapshot_entries = 0;
    next_stored_log = 0;
}
END_TEST

/* Retention of a stored log: entries host_retain_log gives up leave the store in whole segments
 * (128 KiB here), never past the in-memory log (a restart reads it back after the snapshot), and
 * only once a snapshot covers them; host_read_log then answers RQ_ERANGE below the stored log; a
 * restarted leader recovers from what is left, and a follower that was down catches up from the
 * snapshot, since the entries it needs are gone. */
START_TEST(retained_entries_leave_the_store_never_past_the_snapshot) {
    enum { COUNT = 300 };
    struct sim_config cfg;
    host_server_sim_config(&cfg, &host_workload, 3, 13, 60ull * 1000000000u);
    next_groups = 0;
    next_snapshot_entries = 100;
    next_stored_log = 1;
    next_segment_bytes = 128u << 10;
    struct sim *s = sim_create(&cfg);
    sim_run_until(s, 2000000000ull);
    uint32_t leader = host_server_leader(s, 3, 1), lag = leader % 3 + 1;
    ck_assert_uint_ne(leader, 0);
    sim_crash(s, lag, 0);
    struct host *lh = server_of(s, leader)->host;
    static uint8_t data[1200];
    uint64_t index = 0, term;
    for (uint32_t i = 0; i < 50; i++) {
        ck_assert_int_eq(host_propose(lh, 1, data, stored_entry(i + 1, data), &index, &term), 0);
        sim_run_until(s, sim_now(s) + 5000000ull);
    }
    /* No snapshot yet: nothing may go. */
    const struct raft *lr = host_raft(lh, 1);
    ck_assert_uint_eq(raft_first_index(lr), 1);
    ck_assert_int_eq(host_retain_log(lh, 1, 40), 0);
    sim_run_until(s, sim_now(s) + 100000000ull);
    ck_assert_uint_eq(host_stored_first(lh, 1), 1);
    for (uint32_t i = 50; i < COUNT; i++) {
        ck_assert_int_eq(host_propose(lh, 1, data, stored_entry(i + 1, data), &index, &term), 0);
        sim_run_until(s, sim_now(s) + 5000000ull);
    }
    sim_run_until(s, sim_now(s) + 500000000ull);
    ck_assert_uint_gt(raft_first_index(lr), 200);   /* snapshots compacted the memory */
    /* The snapshots let the retained segments go, up to 40: none is wholly below 40 yet. */
    ck_assert_uint_eq(host_stored_first(lh, 1), 1);
    ck_assert_int_eq(host_retain_log(lh, 1, 250), 0);
    ck_assert_int_eq(host_retain_log(lh, 1, 100), 0);   /* never back */
    sim_run_until(s, sim_now(s) + 100000000ull);
    uint64_t first = host_stored_first(lh, 1);
    ck_assert_uint_gt(first, 100);
    ck_assert_uint_le(first, 250);
    ck_assert_int_eq(host_read_log(lh, 1, first - 1, 1, 0), RQ_ERANGE);
    read_log(s, leader, first, 2);
    ck_assert_int_eq(server_of(s, leader)->read_err, 0);
    ck_assert_uint_eq(server_of(s, leader)->read_count, 2);
    /* Asking for more than the snapshot covers deletes no more than it covers. */
    ck_assert_int_eq(host_retain_log(lh, 1, UINT64_MAX), 0);
    sim_run_until(s, sim_now(s) + 100000000ull);
    ck_assert_uint_le(host_stored_first(lh, 1), raft_first_index(lr));
    ck_assert_int_eq(host_retain_log(lh, 9, 10), RQ_ERANGE);
    /* The follower that was down gets the snapshot; the leader restarts from what is left. */
    sim_restart(s, lag);
    sim_run_until(s, sim_now(s) + 3000000000ull);
    const struct server *ln = server_of(s, lag);
    ck_assert_uint_ge(ln->restores, 1);
    ck_assert_uint_eq(ln->digest, server_of(s, leader)->digest);
    sim_crash(s, leader, 0);
    sim_restart(s, leader);
    sim_run_until(s, sim_now(s) + 3000000000ull);
    ck_assert_uint_eq(server_of(s, leader)->digest, ln->digest);
    ck_assert_uint_ge(server_of(s, leader)->last_index, index);   /* and a new leader's NOOP */
    sim_destroy(s);
    next_snapshot_entries = 0;
    next_stored_log = 0;
    next_segment_bytes = 0;
}
END_TEST

/* A follower back from a crash is sent many large appends in one event: more than one network
 * message holds, so the batch to it is split (and the peer listed once for the event). */
START_TEST(a_batch_over_the_message_limit_is_split) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &host_workload, 3, 12, 20ull * 1000000000u);
    next_groups = 1;
    next_snapshot_entries = 0;
    struct sim *s = sim_create(&cfg);
    sim_run_until(s, 2000000000ull);
    uint32_t leader = host_server_leader(s, 3, 1);
    ck_assert_uint_ne(leader, 0);
    uint32_t follower = leader % 3 + 1;
    sim_crash(s, follower, 0);
    static uint8_t data[60 << 10];
    for (uint32_t i = 0; i < 40; i++) {
        memset(data, (int)i, sizeof data);
        uint64_t index, term;
        ck_assert_int_eq(host_propose(host_of(sim_node(s, leader)), 1, data, sizeof data, &index,
                                      &term), 0);
        sim_run_until(s, sim_now(s) + 20000000ull);
    }
    ck_assert_uint_eq(host_server_leader(s, 3, 1), leader);
    sim_restart(s, follower);
    sim_run_until(s, sim_now(s) + 3000000000ull);
    const struct server *l = sim_node(s, leader), *f = sim_node(s, follower);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_ge(l->applied, 40);
    ck_assert_uint_eq(f->applied, l->applied);
    ck_assert_uint_eq(f->digest, l->digest);
    sim_destroy(s);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("host");
    TCase *tc = tcase_create("multi-raft");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, idle_groups_cost_no_messages_of_their_own);
    tcase_add_test(tc, a_transfer_moves_the_leader_to_the_target);
    tcase_add_test(tc, a_follower_behind_the_log_gets_the_snapshot);
    tcase_add_test(tc, a_stored_log_follower_catches_up_by_stored_entries);
    tcase_add_test(tc, retained_entries_leave_the_store_never_past_the_snapshot);
    tcase_add_test(tc, a_batch_over_the_message_limit_is_split);
    tcase_add_test(tc, a_proposal_from_inside_apply_applies_nothing_twice);
    suite_add_tcase(suite, tc);
    return run_suites(srunner_create(suite));
}
