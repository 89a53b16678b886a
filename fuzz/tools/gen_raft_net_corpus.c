/* Writes the seed corpus of fuzz/raft_net.c: small programs over a Raft group, each a story the
 * fuzzer can mutate — elections in 3 and 5 nodes under each configuration, a split vote,
 * proposals committed, proposals under a partition and their truncation, a stale leader in a
 * minority, leaders, candidates and followers crashing with and without durable storage, every
 * node crashing, figure 8 of the paper, reordered, duplicated and dropped messages, the hard
 * state or the log alone made durable, ReadIndex reads at the leader and a follower, lease reads
 * inside and outside the lease, leadership transfers, log compaction by snapshots (automatic and
 * by hand), a follower behind the leader's snapshot receiving it in chunks that are dropped,
 * duplicated and reordered, membership changes (spares added as learners and promoted, voters
 * removed, the leader removing itself, a single voter growing its group).
 *
 * Each program is run here, operation by operation, on a raftnet configured as the target
 * configures it, so the story can steer (tick a node until it leads, drop exactly the messages a
 * node sent) and is checked: the safety properties after every operation, and at the end the
 * outcome the story is about. A story that does not end as it should is an error.
 * Usage: gen_raft_net_corpus OUTPUT_DIR (which must exist) */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"
#include "sim/raftnet.h"

/* The operations of fuzz/raft_net.c, in its order (its header comment is the reference). */
enum op {
    OP_TICK, OP_TICKS, OP_TICK_ALL, OP_DELIVER, OP_DELIVER_AT, OP_DELIVER_MANY, OP_DUPLICATE_AT,
    OP_DROP_AT, OP_PROPOSE, OP_PROPOSE_LEADER, OP_CRASH, OP_RESTART, OP_MANUAL, OP_PERSIST,
    OP_CUT, OP_HEAL_LINK, OP_HEAL_ALL, OP_ISOLATE, OP_PERSIST_HS, OP_PERSIST_LOG, OP_READ,
    OP_READ_LEASE, OP_TRANSFER, OP_SNAPSHOT, OP_CHANGE, OP_SPARES, OP_COUNT
};
_Static_assert(OP_COUNT == 26, "the operations of fuzz/raft_net.c");

/* The configuration byte's bits. */
enum {
    FIVE = 0x01, NO_PREVOTE = 0x02, NO_CHECK_QUORUM = 0x04, ONE_ENTRY = 0x08, WINDOW_ONE = 0x10,
    SHORT_TIMEOUTS = 0x20, SMALL_LOG = 0x40, SEED_B = 0x80,   /* with check-quorum: leases */
};

enum {
    INPUT_BYTES_MAX = 2048,   /* a seed stays small */
    TICKS_MAX = 16,
    DELIVER_MANY_MAX = 32,
    SETTLE_ROUNDS_MAX = 64,   /* deliver-many operations one settle may emit */
    ELECT_TICKS_MAX = 200,
    SNAPSHOT_ENTRIES = 6,     /* as fuzz/raft_net.c configures snapshots */
    SNAPSHOT_TRAILING = 2,
    SPARES = 2,               /* nodes outside the bootstrap configuration with OP_SPARES */
};

static const char *out_dir;
static int written;

/* A program being written, and the world it has built so far. */
struct prog {
    uint8_t buf[INPUT_BYTES_MAX];
    size_t len;
    struct raftnet *net;
    uint32_t proposals;       /* the target names proposals v1, v2, ... */
    uint32_t election_ticks;
    uint32_t heartbeat_ticks;
    int lease;                /* lease reads on: every tick operation ticks every node */
    uint32_t reads_issued;    /* the target numbers read contexts 1, 2, ... */
    const char *name;
};

static _Noreturn void story_failed(const struct prog *p, const char *why) {
    fprintf(stderr, "gen_raft_net_corpus: %s: %s\n", p->name, why);
    exit(1);
}

static void emit(struct prog *p, uint8_t byte) {
    if (p->len == sizeof p->buf) story_failed(p, "over INPUT_BYTES_MAX bytes");
    p->buf[p->len++] = byte;
}

static void check(struct prog *p) {
    if (raftnet_check(p->net) != 0) story_failed(p, p->net->why);
}

/* As fuzz/raft_net.c's create(); with spares the program starts with OP_SPARES, which keeps the
 * last SPARES nodes out of the bootstrap configuration; two of them turn on stored_log. */
static void begin_world_stored(struct prog *p, const char *name, uint8_t config, int spares,
                               int stored_log) {
    raftnet_destroy(p->net);
    p->name = name;
    p->len = 0;
    p->proposals = 0;
    p->reads_issued = 0;
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = config & SEED_B ? 0x9E3779B97F4A7C15u : 42;
    if (config & NO_PREVOTE) cfg.pre_vote = 0;
    if (config & NO_CHECK_QUORUM) cfg.check_quorum = 0;
    if (config & ONE_ENTRY) cfg.msg_entries_max = 1;
    if (config & WINDOW_ONE) cfg.inflight_max = 1;
    if (config & SHORT_TIMEOUTS) {
        cfg.election_ticks = 4;
        cfg.heartbeat_ticks = 1;
    }
    if (config & SMALL_LOG) cfg.log_entries_max = 8;
    if ((config & SEED_B) && cfg.check_quorum)
        cfg.lease_ticks = raft_lease_ticks(cfg.election_ticks, 0);
    p->lease = cfg.lease_ticks > 0;
    p->election_ticks = cfg.election_ticks;
    p->heartbeat_ticks = cfg.heartbeat_ticks;
    cfg.snapshot_entries = SNAPSHOT_ENTRIES;
    cfg.snapshot_trailing = SNAPSHOT_TRAILING;
    cfg.stored_log = stored_log != 0;
    uint32_t n = config & FIVE ? 5 : 3;
    if (spares) {
        cfg.voter_count = n - SPARES;
        for (uint32_t i = 0; i < cfg.voter_count; i++) cfg.voters[i] = i + 1;
    }
    p->net = raftnet_create(n, &cfg);
    emit(p, config);
    /* Leading OP_SPARES: one for spares, two for a stored log, three for both. */
    uint32_t lead = (spares ? 1u : 0u) + (stored_log ? 2u : 0u);
    for (uint32_t i = 0; i < lead; i++) emit(p, OP_SPARES);
}

static void begin_world(struct prog *p, const char *name, uint8_t config, int spares) {
    begin_world_stored(p, name, config, spares, 0);
}

static void begin(struct prog *p, const char *name, uint8_t config) {
    begin_world(p, name, config, 0);
}

static struct raft *node(const struct prog *p, uint32_t id) { return raftnet_raft(p->net, id); }
static uint32_t queued(const struct prog *p) { return raftnet_queued(p->net, 0, 0, 0); }

/* The k-th queued message (0: the oldest). */
static const struct raft_msg *queued_at(const struct prog *p, uint32_t k) {
    return &p->net->queue[(p->net->queue_head + k) % RAFTNET_QUEUE_MAX].m;
}

/* ---- the operations, written and run ------------------------------------------------------- */

/* As the target: with leases, one tick of the clock ticks every node. */
static void run_tick(struct prog *p, uint32_t id) {
    if (p->lease) raftnet_tick_all(p->net);
    else raftnet_tick(p->net, id);
}

static void tick(struct prog *p, uint32_t id) {
    emit(p, OP_TICK);
    emit(p, (uint8_t)(id - 1));
    run_tick(p, id);
    check(p);
}

static void ticks(struct prog *p, uint32_t id, uint32_t count) {
    while (count > 0) {
        uint32_t c = count < TICKS_MAX ? count : TICKS_MAX;
        emit(p, OP_TICKS);
        emit(p, (uint8_t)(id - 1));
        emit(p, (uint8_t)(c - 1));
        for (uint32_t i = 0; i < c; i++) run_tick(p, id);
        check(p);
        count -= c;
    }
}

static void tick_all(struct prog *p) {
    emit(p, OP_TICK_ALL);
    raftnet_tick_all(p->net);
    check(p);
}

static void deliver_at(struct prog *p, uint32_t k) {
    if (k >= queued(p) || k > UINT8_MAX) story_failed(p, "deliver_at beyond the queue");
    emit(p, OP_DELIVER_AT);
    emit(p, (uint8_t)k);
    raftnet_deliver_at(p->net, k);
    check(p);
}

static void deliver_many(struct prog *p, uint32_t count) {
    emit(p, OP_DELIVER_MANY);
    emit(p, (uint8_t)(count - 1));
    for (uint32_t i = 0; i < count && queued(p) > 0; i++) raftnet_deliver_at(p->net, 0);
    check(p);
}

static void duplicate_at(struct prog *p, uint32_t k) {
    if (k >= queued(p) || k > UINT8_MAX) story_failed(p, "duplicate_at beyond the queue");
    emit(p, OP_DUPLICATE_AT);
    emit(p, (uint8_t)k);
    raftnet_duplicate_at(p->net, k);
    check(p);
}

static void drop_at(struct prog *p, uint32_t k) {
    if (k >= queued(p) || k > UINT8_MAX) story_failed(p, "drop_at beyond the queue");
    emit(p, OP_DROP_AT);
    emit(p, (uint8_t)k);
    raftnet_drop_at(p->net, k);
    check(p);
}


/* As the target: nothing at a crashed node; the value is v<number of the proposal>. Returns
 * raft_propose's result (0: accepted), -1 at a crashed node. */
static int run_propose(struct prog *p, uint32_t id) {
    if (id == 0 || node(p, id) == NULL) return -1;
    char value[16];
    snprintf(value, sizeof value, "v%u", ++p->proposals);
    int rc = raftnet_propose(p->net, id, value);
    check(p);
    return rc;
}

static int propose(struct prog *p, uint32_t id) {
    emit(p, OP_PROPOSE);
    emit(p, (uint8_t)(id - 1));
    return run_propose(p, id);
}

static void propose_leader(struct prog *p, uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        emit(p, OP_PROPOSE_LEADER);
        run_propose(p, raftnet_leader(p->net));
    }
}

static void op_node(struct prog *p, enum op o, uint32_t id) {
    emit(p, (uint8_t)o);
    emit(p, (uint8_t)(id - 1));
}

static void crash(struct prog *p, uint32_t id) {
    op_node(p, OP_CRASH, id);
    raftnet_crash(p->net, id);
    check(p);
}

static void restart(struct prog *p, uint32_t id) {
    op_node(p, OP_RESTART, id);
    if (node(p, id) == NULL) raftnet_restart(p->net, id);
    check(p);
}

/* Toggles manual persistence; turning it off persists what is pending, as the target does. */
static void manual(struct prog *p, uint32_t id) {
    op_node(p, OP_MANUAL, id);
    raftnet_set_manual_persist(p->net, id, !p->net->nodes[id].manual_persist);
    if (!p->net->nodes[id].manual_persist) raftnet_persist(p->net, id);
    check(p);
}

static void persist(struct prog *p, uint32_t id) {
    op_node(p, OP_PERSIST, id);
    raftnet_persist(p->net, id);
    check(p);
}

static void persist_hs(struct prog *p, uint32_t id) {
    op_node(p, OP_PERSIST_HS, id);
    raftnet_persist_part(p->net, id, 1, 0);
    check(p);
}

static void persist_log(struct prog *p, uint32_t id) {
    op_node(p, OP_PERSIST_LOG, id);
    raftnet_persist_part(p->net, id, 0, 1);
    check(p);
}

/* A read at id, as the target issues it; returns its context (0: the node is down). */
static uint64_t read_at(struct prog *p, uint32_t id, int lease) {
    op_node(p, lease ? OP_READ_LEASE : OP_READ, id);
    if (node(p, id) == NULL) return 0;
    uint64_t ctx = ++p->reads_issued;
    if (lease) raft_read_lease(node(p, id), ctx);
    else raft_read_index(node(p, id), ctx);
    raftnet_persist_part(p->net, id, 0, 0);   /* drains the node's output */
    check(p);
    return ctx;
}

/* The leader of the highest term transfers leadership to target, as the target program does;
 * returns raft_transfer_leader's answer (1: no leader). */
static int transfer(struct prog *p, uint32_t target) {
    op_node(p, OP_TRANSFER, target);
    uint32_t id = raftnet_leader(p->net);
    if (id == 0) return 1;
    int rc = raft_transfer_leader(node(p, id), target);
    raftnet_persist_part(p->net, id, 0, 0);   /* drains the node's output */
    check(p);
    return rc;
}

/* Node id snapshots its applied state now, as the target's OP_SNAPSHOT. */
static void snapshot(struct prog *p, uint32_t id) {
    op_node(p, OP_SNAPSHOT, id);
    raftnet_snapshot(p->net, id);
    check(p);
}

/* A membership change at the leader of the highest term, as the target's OP_CHANGE; returns
 * raft_change_membership's answer (1: no leader). */
static int change(struct prog *p, enum raft_change kind, uint32_t target) {
    emit(p, OP_CHANGE);
    emit(p, (uint8_t)(kind - RAFT_CHANGE_ADD_LEARNER));
    emit(p, (uint8_t)(target - 1));
    uint32_t id = raftnet_leader(p->net);
    if (id == 0) return 1;
    uint64_t index;
    int rc = raft_change_membership(node(p, id), kind, target, &index);
    raftnet_persist_part(p->net, id, 0, 0);   /* drains the node's output */
    check(p);
    return rc;
}

/* The read index node id confirmed read ctx with, or UINT64_MAX when it did not. */
static uint64_t confirmed(const struct prog *p, uint32_t id, uint64_t ctx) {
    const struct raftnet_node *nd = &p->net->nodes[id];
    for (uint32_t i = 0; i < nd->read_count; i++)
        if (nd->reads[i].ctx == ctx) return nd->reads[i].index;
    return UINT64_MAX;
}

/* The operand byte naming the link a-b, as the target's pair() decodes it. */
static void op_pair(struct prog *p, enum op o, uint32_t a, uint32_t b) {
    uint32_t n = p->net->n;
    uint32_t off = (b + n - a - 1) % n;   /* b = (a - 1 + 1 + off) % n + 1 */
    emit(p, (uint8_t)o);
    emit(p, (uint8_t)((a - 1) + n * off));
}

static void cut(struct prog *p, uint32_t a, uint32_t b) {
    op_pair(p, OP_CUT, a, b);
    raftnet_cut(p->net, a, b);
}

static void heal_link(struct prog *p, uint32_t a, uint32_t b) {
    op_pair(p, OP_HEAL_LINK, a, b);
    raftnet_heal_link(p->net, a, b);
}

static void heal_all(struct prog *p) {
    emit(p, OP_HEAL_ALL);
    raftnet_heal(p->net);
}

static void isolate(struct prog *p, uint32_t id) {
    op_node(p, OP_ISOLATE, id);
    raftnet_isolate(p->net, id);
}

/* ---- steps of a story ---------------------------------------------------------------------- */

/* Delivers until nothing is queued (what is delivered may queue more). */
static void settle(struct prog *p) {
    for (int i = 0; i < SETTLE_ROUNDS_MAX && queued(p) > 0; i++) deliver_many(p, DELIVER_MANY_MAX);
    if (queued(p) > 0) story_failed(p, "the network does not settle");
}

/* Drops every queued message node id sent, newest first so that the indexes stay put. */
static void drop_from(struct prog *p, uint32_t id) {
    for (uint32_t k = queued(p); k-- > 0;)
        if (queued_at(p, k)->from == id) drop_at(p, k);
}

/* Node id ticks alone, each tick followed by deliveries one at a time, until it leads; delivery
 * stops the moment it does, so its first appends are still queued. A follower that heard a
 * leader within election_ticks refuses votes (check-quorum): pass expire_leases to tick the other
 * live nodes that long first. With leases every node ticks: the first to time out wins, and its
 * id is returned. */
static uint32_t elect(struct prog *p, uint32_t id, int expire_leases) {
    if (p->lease) {
        for (uint32_t t = 0; t < ELECT_TICKS_MAX; t++) {
            tick(p, id);
            while (queued(p) > 0 && raftnet_leader(p->net) == 0) {
                emit(p, OP_DELIVER);
                raftnet_deliver_at(p->net, 0);
                check(p);
            }
            if (raftnet_leader(p->net) != 0) return raftnet_leader(p->net);
        }
        story_failed(p, "nobody won");
    }
    if (expire_leases)
        for (uint32_t other = 1; other <= p->net->n; other++)
            if (other != id && node(p, other) != NULL) ticks(p, other, p->election_ticks);
    for (uint32_t t = 0; t < ELECT_TICKS_MAX; t++) {
        tick(p, id);
        while (queued(p) > 0 && raft_role(node(p, id)) != RAFT_LEADER) {
            emit(p, OP_DELIVER);
            raftnet_deliver_at(p->net, 0);
            check(p);
        }
        if (raft_role(node(p, id)) == RAFT_LEADER) return id;
    }
    story_failed(p, "the candidate did not win");
}

/* The leader's heartbeats (and the commit index they carry) reach every follower. */
static void heartbeat(struct prog *p, uint32_t leader) {
    settle(p);
    ticks(p, leader, p->heartbeat_ticks);
    settle(p);
}

static void expect(struct prog *p, int ok, const char *what) {
    if (!ok) story_failed(p, what);
}

/* Every live node's commit index is at least min. */
static void expect_commit(struct prog *p, uint64_t min) {
    for (uint32_t id = 1; id <= p->net->n; id++)
        if (node(p, id) != NULL && raft_commit(node(p, id)) < min)
            story_failed(p, "a node's commit index is behind");
}

/* Node id is up and its commit index is at least min. */
static void expect_commit_at(struct prog *p, uint32_t id, uint64_t min) {
    expect(p, node(p, id) != NULL, "a node that should be up is down");
    if (raft_commit(node(p, id)) < min) story_failed(p, "a member's commit index is behind");
}

/* Voters of the configuration node id uses. */
static uint32_t voters_at(const struct prog *p, uint32_t id) {
    struct raft_membership m;
    raft_membership_get(node(p, id), &m);
    return raft_membership_voters(&m);
}

static struct raft_stats stats_of(const struct prog *p, uint32_t id) {
    struct raft_stats st;
    raft_stats_get(node(p, id), &st);
    return st;
}

/* The position of the oldest queued message of type, or UINT32_MAX. */
static uint32_t find_queued(const struct prog *p, uint8_t type) {
    for (uint32_t k = 0; k < queued(p) && k <= UINT8_MAX; k++)
        if (queued_at(p, k)->type == type) return k;
    return UINT32_MAX;
}

static void save(struct prog *p) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, p->name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p->buf, 1, p->len, f) != p->len || fclose(f) != 0)
        story_failed(p, "cannot write the file");
    printf("  %-36s %4zu bytes, commit %" PRIu64 "\n", p->name, p->len,
           raftnet_leader(p->net) ? raft_commit(node(p, raftnet_leader(p->net))) : 0);
    written++;
}

/* ---- the stories --------------------------------------------------------------------------- */

static void elections(struct prog *p) {
    static const struct { uint8_t config; const char *name; } configs[] = {
        {0, "elect-3"},
        {FIVE, "elect-5"},
        {NO_PREVOTE | NO_CHECK_QUORUM, "elect-3-no-prevote-no-check-quorum"},
        {FIVE | SHORT_TIMEOUTS | SEED_B, "elect-5-short-timeouts"},
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        begin(p, configs[i].name, configs[i].config);
        heartbeat(p, elect(p, 1, 0));
        expect_commit(p, 1);
        save(p);
    }
    /* Everyone times out together, without pre-vote: split votes until one wins. */
    begin(p, "split-vote-5", FIVE | NO_PREVOTE | SEED_B);
    for (int round = 0; round < 60 && raftnet_leader(p->net) == 0; round++) {
        tick_all(p);
        settle(p);
    }
    expect(p, raftnet_leader(p->net) != 0, "no leader");
    save(p);
}

static void proposals(struct prog *p) {
    begin(p, "propose-commit-3", 0);
    elect(p, 1, 0);
    propose_leader(p, 5);
    heartbeat(p, 1);
    expect_commit(p, 6);
    save(p);

    /* One entry per append and a window of one: followers are walked entry by entry. */
    begin(p, "propose-one-entry-window-one-5", FIVE | ONE_ENTRY | WINDOW_ONE);
    elect(p, 2, 0);
    propose_leader(p, 8);
    heartbeat(p, 2);
    expect_commit(p, 9);
    save(p);

    /* The in-memory log holds 8 entries: the no-op and 7 proposals; then proposals are refused. */
    begin(p, "small-log-full-3", SMALL_LOG);
    elect(p, 1, 0);
    propose_leader(p, 10);
    heartbeat(p, 1);
    expect(p, raft_last_index(node(p, 1)) == 8, "the log did not fill");
    expect_commit(p, 8);
    save(p);
}

static void partitions(struct prog *p) {
    /* The leader is cut off with entries it can never commit; the majority elects anew and, once
     * the partition heals, the old leader's suffix is truncated. */
    begin(p, "partitioned-leader-truncated-3", 0);
    elect(p, 1, 0);
    heartbeat(p, 1);
    isolate(p, 1);
    for (int i = 0; i < 3; i++) propose(p, 1);
    settle(p);
    elect(p, 2, 1);
    propose_leader(p, 2);
    heartbeat(p, 2);
    heal_all(p);
    ticks(p, 1, p->election_ticks);   /* check-quorum: the old leader steps down */
    heartbeat(p, 2);
    heartbeat(p, 2);
    expect(p, raft_role(node(p, 1)) == RAFT_FOLLOWER, "the old leader still leads");
    expect(p, raft_term_at(node(p, 1), 3) == raft_term(node(p, 2)), "no truncation");
    expect_commit(p, 4);
    save(p);

    /* Without check-quorum a stale leader keeps leading its old term in a minority while the
     * majority elects and commits; then the new leader crashes and the stale one is the only
     * leader left. */
    begin(p, "stale-leader-minority-5", FIVE | NO_CHECK_QUORUM);
    elect(p, 1, 0);
    heartbeat(p, 1);
    for (uint32_t a = 1; a <= 2; a++)
        for (uint32_t b = 3; b <= 5; b++) cut(p, a, b);
    elect(p, 3, 0);
    propose(p, 3);
    heartbeat(p, 3);
    expect(p, raft_commit(node(p, 3)) == 3, "the majority did not commit");
    crash(p, 3);
    propose(p, 1);
    settle(p);
    expect(p, raftnet_leader(p->net) == 1, "the stale leader is gone");
    save(p);

    /* A follower cut from the leader campaigns in vain (its peer still hears the leader), then the
     * link heals and it catches up. */
    begin(p, "cut-heal-follower-3", 0);
    elect(p, 1, 0);
    propose_leader(p, 2);
    cut(p, 1, 3);
    heartbeat(p, 1);
    ticks(p, 3, 2 * p->election_ticks);
    settle(p);
    heal_link(p, 1, 3);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect(p, raftnet_leader(p->net) == 1, "the leader was deposed");
    expect_commit(p, 3);
    save(p);
}

static void crashes(struct prog *p) {
    /* The leader crashes right after proposing; another is elected; the old one comes back. */
    begin(p, "leader-crash-restart-3", 0);
    elect(p, 1, 0);
    heartbeat(p, 1);
    propose_leader(p, 2);
    deliver_many(p, 2);
    crash(p, 1);
    settle(p);
    elect(p, 2, 1);
    propose_leader(p, 1);
    restart(p, 1);
    heartbeat(p, 2);
    heartbeat(p, 2);
    expect_commit(p, 3);
    save(p);

    /* Storage answers late: a follower's entries are still pending when it crashes. */
    begin(p, "manual-persist-follower-crash-3", 0);
    elect(p, 1, 0);
    heartbeat(p, 1);
    manual(p, 2);
    manual(p, 3);
    propose_leader(p, 3);
    settle(p);
    expect(p, raft_commit(node(p, 1)) == 1, "committed without durable followers");
    persist(p, 2);
    settle(p);
    crash(p, 3);
    restart(p, 3);
    manual(p, 2);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect_commit(p, 4);
    save(p);

    /* A candidate crashes before its (term, vote) is durable: its requests never left. */
    begin(p, "candidate-crash-before-persist-3", NO_PREVOTE);
    manual(p, 1);
    ticks(p, 1, 2 * p->election_ticks);
    expect(p, raft_role(node(p, 1)) == RAFT_CANDIDATE, "no candidate");
    expect(p, queued(p) == 0, "a vote request left before the vote was durable");
    crash(p, 1);
    restart(p, 1);
    manual(p, 1);
    expect(p, raft_term(node(p, 1)) == 0, "the term survived without being durable");
    elect(p, 2, 0);
    heartbeat(p, 2);
    expect_commit(p, 1);
    save(p);

    /* Every node crashes and restarts: the group recovers from storage alone. */
    begin(p, "crash-all-restart-5", FIVE);
    elect(p, 1, 0);
    propose_leader(p, 3);
    heartbeat(p, 1);
    for (uint32_t id = 1; id <= 5; id++) crash(p, id);
    for (uint32_t id = 1; id <= 5; id++) restart(p, id);
    elect(p, 4, 0);
    heartbeat(p, 4);
    expect_commit(p, 5);
    save(p);

    /* Figure 8 (paper 5.4.2), as tests/unit/test_raft.c replays it: n1 leads term 1 and gets its
     * entry to n2 only, then crashes; n5 leads term 2 with an entry nobody receives and crashes;
     * n1 returns, leads term 3 and must not commit its term-1 entry by counting replicas — only
     * with an entry of its own term. */
    begin(p, "figure-8-5", FIVE | NO_CHECK_QUORUM);
    elect(p, 1, 0);
    heartbeat(p, 1);
    cut(p, 1, 3);
    cut(p, 1, 4);
    cut(p, 1, 5);
    propose(p, 1);
    settle(p);
    crash(p, 1);
    heal_all(p);
    cut(p, 2, 5);
    elect(p, 5, 0);
    propose(p, 5);
    drop_from(p, 5);
    crash(p, 5);
    restart(p, 1);
    heal_all(p);
    cut(p, 1, 5);
    elect(p, 1, 0);
    for (int i = 0; i < 6; i++) {
        tick_all(p);
        settle(p);
    }
    heal_all(p);
    restart(p, 5);
    for (int i = 0; i < 20; i++) {
        tick_all(p);
        settle(p);
    }
    expect(p, raft_term_at(node(p, 1), 2) == 1, "the term-1 entry is gone");
    expect_commit(p, 3);
    save(p);
}

static void storage(struct prog *p) {
    /* A candidate's vote is durable but its log is not: its vote requests leave (they depend on
     * the hard state only), it wins, crashes with its no-op lost, and comes back in its term. */
    begin(p, "persist-hs-only-candidate-3", NO_PREVOTE);
    manual(p, 1);
    ticks(p, 1, 2 * p->election_ticks);
    expect(p, raft_role(node(p, 1)) == RAFT_CANDIDATE, "no candidate");
    expect(p, queued(p) == 0, "a vote request left before the vote was durable");
    persist_hs(p, 1);
    expect(p, queued(p) > 0, "no vote request after the vote became durable");
    settle(p);
    expect(p, raft_role(node(p, 1)) == RAFT_LEADER, "the candidate did not win");
    uint64_t term = raft_term(node(p, 1));
    crash(p, 1);
    restart(p, 1);
    manual(p, 1);
    expect(p, raft_term(node(p, 1)) == term, "the durable term was lost");
    elect(p, 2, 1);
    heartbeat(p, 2);
    heartbeat(p, 2);
    expect_commit(p, 2);
    save(p);

    /* A follower's log is durable but not its hard state: it acknowledges, crashes, and keeps the
     * entries but not the term it learned them in. */
    begin(p, "persist-log-only-follower-3", 0);
    elect(p, 1, 0);
    heartbeat(p, 1);
    manual(p, 2);
    propose_leader(p, 2);
    settle(p);
    persist_log(p, 2);
    settle(p);
    expect(p, p->net->nodes[2].log_count == 3, "the follower's log is not durable");
    crash(p, 2);
    restart(p, 2);
    manual(p, 2);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect_commit(p, 3);
    save(p);
}

static void reads(struct prog *p) {
    /* ReadIndex at the leader (a round of heartbeats) and at a follower (through the leader). */
    begin(p, "read-index-3", 0);
    elect(p, 1, 0);
    propose_leader(p, 2);
    heartbeat(p, 1);
    uint64_t r1 = read_at(p, 1, 0);
    expect(p, confirmed(p, 1, r1) == UINT64_MAX, "a ReadIndex read confirmed without a round");
    settle(p);
    expect(p, confirmed(p, 1, r1) == 3, "the leader's read is not confirmed at 3");
    uint64_t r2 = read_at(p, 2, 0);
    settle(p);
    expect(p, confirmed(p, 2, r2) == 3, "the follower's read is not confirmed at 3");
    propose_leader(p, 1);
    uint64_t r3 = read_at(p, 3, 0);
    heartbeat(p, 1);
    expect(p, confirmed(p, 3, r3) >= 3 && confirmed(p, 3, r3) <= 4, "the third read is lost");
    save(p);

    /* Lease reads: served at once inside the lease, by ReadIndex after it ran out. */
    begin(p, "lease-read-3", SEED_B);
    expect(p, p->lease, "no lease in this configuration");
    uint32_t leader = elect(p, 1, 0);
    propose_leader(p, 2);
    heartbeat(p, leader);
    uint64_t l1 = read_at(p, leader, 1);
    expect(p, confirmed(p, leader, l1) == 3, "no read inside the lease");
    for (uint32_t id = 1; id <= 3; id++)
        if (id != leader) isolate(p, id);
    ticks(p, leader, p->election_ticks);   /* the lease runs out, and nobody answers */
    uint64_t l2 = read_at(p, leader, 1);
    expect(p, confirmed(p, leader, l2) == UINT64_MAX, "a read outside the lease");
    heal_all(p);
    settle(p);
    ticks(p, leader, p->heartbeat_ticks);
    settle(p);
    expect(p, raftnet_leader(p->net) != 0, "no leader");
    save(p);
}

static void transfers(struct prog *p) {
    /* Leadership transfer to an up-to-date follower: it leads the next term. */
    begin(p, "transfer-3", 0);
    elect(p, 1, 0);
    propose_leader(p, 2);
    heartbeat(p, 1);
    expect(p, transfer(p, 2) == 0, "the transfer is refused");
    settle(p);
    expect(p, raftnet_leader(p->net) == 2, "the target does not lead");
    propose_leader(p, 1);
    heartbeat(p, 2);
    expect_commit(p, 5);
    save(p);

    /* With leases: the target is cut off, the leader's lease reads fall back to ReadIndex, the
     * transfer aborts, and a later transfer to the other follower succeeds. */
    begin(p, "transfer-lease-abort-3", SEED_B);
    expect(p, p->lease, "no lease in this configuration");
    uint32_t leader = elect(p, 1, 0);
    uint32_t target = leader % 3 + 1, other = target % 3 + 1;
    propose_leader(p, 1);
    heartbeat(p, leader);
    cut(p, leader, target);
    expect(p, transfer(p, target) == 0, "the transfer is refused");
    uint64_t l1 = read_at(p, leader, 1);
    expect(p, confirmed(p, leader, l1) == UINT64_MAX, "a lease read after timeout-now");
    ticks(p, leader, p->election_ticks);
    settle(p);
    expect(p, raft_transfer_target(node(p, leader)) == 0, "the transfer did not abort");
    heal_all(p);
    expect(p, transfer(p, other) == 0, "the second transfer is refused");
    settle(p);
    expect(p, raftnet_leader(p->net) == other, "the second target does not lead");
    save(p);
}

static void snapshots(struct prog *p) {
    /* Every node compacts its log on its own once SNAPSHOT_ENTRIES entries are applied; then a
     * follower snapshots by hand, crashes and restarts from its snapshot and the log after it. */
    begin(p, "snapshot-compaction-3", 0);
    elect(p, 1, 0);
    propose_leader(p, 8);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect_commit(p, 9);
    for (uint32_t id = 1; id <= 3; id++) {
        expect(p, p->net->nodes[id].snap_index >= SNAPSHOT_ENTRIES, "no automatic snapshot");
        expect(p, raft_first_index(node(p, id)) > 1, "the log was not compacted");
    }
    propose_leader(p, 2);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect_commit(p, 11);
    snapshot(p, 2);
    expect(p, p->net->nodes[2].snap_index == 11, "the snapshot by hand is not at applied");
    crash(p, 2);
    restart(p, 2);
    expect(p, p->net->nodes[2].applied_count == 11, "the restart lost the snapshot's entries");
    propose_leader(p, 1);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect_commit(p, 12);
    save(p);

    /* A follower cut off while the leader compacts past its log catches up by InstallSnapshot;
     * its chunks and their answers are dropped, duplicated and delivered newest first, and the
     * follower crashes in the middle of a receive, which starts it over. */
    begin(p, "snapshot-install-lossy-3", 0);
    elect(p, 1, 0);
    heartbeat(p, 1);
    isolate(p, 3);
    propose_leader(p, 12);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect(p, raft_first_index(node(p, 1)) > raft_last_index(node(p, 3)) + 1,
           "the leader's log still holds what the follower lacks");
    heal_all(p);
    int crashed = 0;
    uint32_t step = 0;
    for (int round = 0; round < 40 && raft_commit(node(p, 3)) < raft_commit(node(p, 1)); round++) {
        ticks(p, 1, p->heartbeat_ticks);
        for (int i = 0; i < 64 && queued(p) > 0; i++) {
            uint32_t k = find_queued(p, RAFT_MSG_INSTALL_SNAPSHOT);
            if (k == UINT32_MAX) k = find_queued(p, RAFT_MSG_SNAPSHOT_RESP);
            if (k == UINT32_MAX) k = 0;
            switch (step++ % 4) {
            case 0: drop_at(p, k); break;
            case 1: duplicate_at(p, k); deliver_at(p, k); break;
            case 2: deliver_at(p, queued(p) - 1 <= UINT8_MAX ? queued(p) - 1 : 0); break;
            default: deliver_at(p, k); break;
            }
            if (!crashed && p->net->nodes[3].recv_size > 0) {
                crash(p, 3);
                restart(p, 3);
                crashed = 1;
            }
        }
    }
    heartbeat(p, 1);
    expect(p, crashed, "the follower never received a chunk");
    expect(p, stats_of(p, 3).snapshots_installed >= 1, "no snapshot installed");
    expect(p, stats_of(p, 1).snapshot_chunks_sent > 2, "the snapshot went in fewer chunks");
    expect_commit(p, 13);   /* the no-op and 12 proposals */
    expect(p, p->net->nodes[3].applied_count == p->net->nodes[1].applied_count,
           "the follower's state machine is behind");
    save(p);
}

static void stored_logs(struct prog *p) {
    /* raft_config.stored_log: a follower cut off while the leader compacts its memory past the
     * follower's log catches up by entries read from the leader's durable log, no snapshot. */
    begin_world_stored(p, "stored-log-catch-up-3", 0, 0, 1);
    elect(p, 1, 0);
    heartbeat(p, 1);
    isolate(p, 3);
    propose_leader(p, 12);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect(p, raft_first_index(node(p, 1)) > raft_last_index(node(p, 3)) + 1,
           "the leader's memory still holds what the follower lacks");
    heal_all(p);
    for (int i = 0; i < 6; i++) heartbeat(p, 1);
    expect(p, stats_of(p, 1).loaded_entries_sent >= 1, "no entries were read from storage");
    expect(p, stats_of(p, 3).snapshots_installed == 0, "the follower got a snapshot");
    expect_commit(p, 13);   /* the no-op and 12 proposals */
    expect(p, p->net->nodes[3].applied_count == p->net->nodes[1].applied_count,
           "the follower's state machine is behind");
    save(p);
}

static void membership(struct prog *p) {
    /* 3 voters and 2 spares: the leader compacts, adds n4 as a learner (it gets the snapshot,
     * configuration included), promotes it, then adds and promotes n5: 5 voters. */
    begin_world(p, "membership-add-promote-5", FIVE, 1);
    expect(p, voters_at(p, 1) == 3, "not 3 voters");
    elect(p, 1, 0);
    propose_leader(p, 8);
    heartbeat(p, 1);
    expect(p, change(p, RAFT_CHANGE_ADD_LEARNER, 4) == 0, "adding n4 is refused");
    heartbeat(p, 1);
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect(p, stats_of(p, 4).snapshots_installed >= 1, "the learner got no snapshot");
    expect(p, change(p, RAFT_CHANGE_PROMOTE, 4) == 0, "promoting n4 is refused");
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect(p, change(p, RAFT_CHANGE_ADD_LEARNER, 5) == 0, "adding n5 is refused");
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect(p, change(p, RAFT_CHANGE_PROMOTE, 5) == 0, "promoting n5 is refused");
    heartbeat(p, 1);
    heartbeat(p, 1);
    propose_leader(p, 1);
    heartbeat(p, 1);
    heartbeat(p, 1);
    for (uint32_t id = 1; id <= 5; id++) {
        expect(p, voters_at(p, id) == 5, "a node does not use the 5-voter configuration");
        expect_commit_at(p, id, 14);
    }
    save(p);

    /* 5 voters: the leader removes a follower, then itself; once that commits it steps down and
     * the remaining 3 voters elect a leader and commit. */
    begin(p, "membership-remove-leader-5", FIVE);
    elect(p, 1, 0);
    propose_leader(p, 2);
    heartbeat(p, 1);
    expect(p, change(p, RAFT_CHANGE_REMOVE, 3) == 0, "removing n3 is refused");
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect(p, voters_at(p, 1) == 4, "n3 is still a voter");
    expect(p, change(p, RAFT_CHANGE_REMOVE, 1) == 0, "the leader's removal of itself is refused");
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect(p, raft_role(node(p, 1)) != RAFT_LEADER, "the removed leader still leads");
    uint32_t leader = 0;
    for (int round = 0; round < 60 && (leader = raftnet_leader(p->net)) == 0; round++) {
        tick_all(p);
        settle(p);
    }
    expect(p, leader == 2 || leader == 4 || leader == 5, "no leader among the remaining voters");
    propose_leader(p, 1);
    heartbeat(p, leader);
    heartbeat(p, leader);
    expect(p, voters_at(p, leader) == 3, "the new leader does not use the 3-voter configuration");
    expect_commit_at(p, 2, 7);   /* 2 proposals, 2 changes, the new leader's no-op, 1 proposal */
    expect_commit_at(p, 4, 7);
    expect_commit_at(p, 5, 7);
    save(p);

    /* One voter and 2 spares: n1 leads alone, grows the group to 3 voters one server at a time,
     * crashes; the two others elect one of them, and n1 returns as a follower. */
    begin_world(p, "membership-single-voter-grows-3", 0, 1);
    expect(p, voters_at(p, 1) == 1, "not a single voter");
    elect(p, 1, 0);
    propose_leader(p, 2);
    expect(p, raft_commit(node(p, 1)) == 3, "a single voter does not commit alone");
    for (uint32_t id = 2; id <= 3; id++) {
        expect(p, change(p, RAFT_CHANGE_ADD_LEARNER, id) == 0, "adding is refused");
        heartbeat(p, 1);
        heartbeat(p, 1);
        expect(p, change(p, RAFT_CHANGE_PROMOTE, id) == 0, "promoting is refused");
        heartbeat(p, 1);
        heartbeat(p, 1);
    }
    for (uint32_t id = 1; id <= 3; id++)
        expect(p, voters_at(p, id) == 3, "a node does not use the 3-voter configuration");
    crash(p, 1);
    elect(p, 2, 1);
    propose_leader(p, 1);
    restart(p, 1);
    heartbeat(p, 2);
    heartbeat(p, 2);
    expect_commit(p, 9);
    save(p);
}

static void network(struct prog *p) {
    /* Appends and their answers reordered and duplicated. */
    begin(p, "reorder-duplicate-3", ONE_ENTRY);
    elect(p, 1, 0);
    propose_leader(p, 4);
    for (uint32_t i = 0; i < 6 && queued(p) > 0; i++) {
        duplicate_at(p, (i * 3) % queued(p));
        deliver_at(p, (i * 5 + 1) % queued(p));
    }
    heartbeat(p, 1);
    heartbeat(p, 1);
    expect_commit(p, 5);
    save(p);

    /* A lossy network: every other message is lost, heartbeats repair. */
    begin(p, "lossy-3", 0);
    elect(p, 1, 0);
    propose_leader(p, 3);
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 8 && queued(p) > 0; i++) {
            drop_at(p, 0);
            if (queued(p) > 0) deliver_at(p, 0);
        }
        heartbeat(p, 1);
    }
    expect_commit(p, 4);
    save(p);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_raft_net_corpus OUTPUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    static struct prog p;
    elections(&p);
    proposals(&p);
    partitions(&p);
    crashes(&p);
    storage(&p);
    reads(&p);
    transfers(&p);
    snapshots(&p);
    stored_logs(&p);
    membership(&p);
    network(&p);
    raftnet_destroy(p.net);
    printf("gen_raft_net_corpus: %d inputs in %s\n", written, out_dir);
    return 0;
}
