/* Fuzz target: a Raft group (src/raft/) whose network and crash schedule are the fuzzer.
 *
 * The input is a program over a raftnet (sim/raftnet.h). Byte 0 is the configuration:
 *   bit 0  5 nodes (else 3)            bit 4  inflight_max 1 (else the default window)
 *   bit 1  pre-vote off                bit 5  short timeouts: election 4 ticks, heartbeat 1
 *   bit 2  check-quorum off            bit 6  small in-memory log: log_entries_max 8
 *   bit 3  msg_entries_max 1           bit 7  another seed for the election timeouts and,
 *                                             with check-quorum on, lease reads: lease_ticks =
 *                                             raft_lease_ticks(election_ticks, 0)
 * Snapshots are always on with small thresholds (SNAPSHOT_ENTRIES applied entries, keeping
 * SNAPSHOT_TRAILING below; InstallSnapshot chunks of raftnet's 40 bytes), so a log compacts
 * every few entries and a follower a little behind needs the snapshot: every input, old seeds
 * too, exercises compaction. The configuration byte has no bit left, so operation 25 ("spares")
 * shapes the bootstrap configuration instead: when it is the first operation, only nodes
 * 1..N-2 are voters (3 of 5, or 1 of 3) and the others are spares, outside the configuration
 * until a membership change adds them; anywhere else it does nothing. A run of them at the start
 * counts: one is spares, two is raft_config.stored_log (snapshots compact only the memory, and a
 * follower behind it gets entries raftnet reads from the leader's durable log), three is both.
 * Every following byte is one operation, picked by its value modulo OP_COUNT; its operand bytes
 * follow it (a missing operand reads as 0). NODE is the operand modulo the node count, plus 1; K
 * is the operand modulo the number of queued messages (the operation does nothing on an empty
 * queue); PAIR is two distinct nodes taken from one byte.
 *    0 tick NODE                  9 propose at the leader of the highest term
 *    1 ticks NODE COUNT (1..16)  10 crash NODE
 *    2 tick every node           11 restart NODE (if crashed)
 *    3 deliver the oldest        12 toggle manual persistence of NODE (off: persist now)
 *    4 deliver K (reordering)    13 persist NODE's pending storage
 *    5 deliver oldest, COUNT     14 cut PAIR (both ways)
 *      (1..32) times             15 heal PAIR
 *    6 duplicate K               16 heal every link
 *    7 drop K                    17 isolate NODE
 *    8 propose at NODE            18 persist only NODE's pending hard state
 *                                19 persist only NODE's pending log
 *                                20 ReadIndex read at NODE
 *                                21 lease read at NODE (ReadIndex when the lease does not hold)
 *                                22 the leader of the highest term transfers leadership to NODE
 *                                23 NODE takes a snapshot now (raftnet_snapshot) and compacts
 *                                24 membership change at the leader of the highest term: KIND
 *                                   (operand modulo 3: add as a learner, promote, remove) of
 *                                   NODE (any answer is fine: the leader refuses what is not
 *                                   allowed)
 *                                25 spares / stored log (see above; first operations only)
 * Only messages the nodes sent travel (Raft does not tolerate forged ones), but they may be
 * dropped, duplicated, reordered and delayed without limit, and a node may crash at any moment,
 * losing what its storage had not made durable. The hard state and the log are separate files,
 * so either may become durable without the other.
 *
 * Ticks are the clock. With leases on (a config with lease_ticks) the clock must not drift, so
 * every tick operation ticks every live node once per tick (a crashed node's time passes too: a
 * restarted node waits out its restart guard before it votes); otherwise a node may tick alone.
 *
 * A run ends after OPS_MAX operations, or earlier when a log or a term nears raftnet's bounds.
 * After every step (a delivery, a tick, ...) raftnet_check must pass (election safety, log
 * matching, state machine safety, leader completeness), and so must what this file adds: every
 * entry any node applied is held durably (in its durable log, or below its durable snapshot) by
 * a majority of the voters of the configuration that committed it, and each live node keeps
 * applied <= commit <= last and durable <= last, durable within its storage; and reads are
 * linearizable: each read gets a unique context, and when a node reports it confirmed with read
 * index I, every entry applied anywhere before the read was issued (net->truth_count then) is at
 * or below I.
 * A violation prints the step and the reason, then traps; Raft's own RQ_ASSERTs abort too. With
 * RAFT_NET_TRACE set in the environment every step and Raft's trace lines go to stderr (for
 * diagnosing a replayed input). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ctx.h"
#include "base/log.h"
#include "raft/raft.h"
#include "sim/raftnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    OPS_MAX = 2000,           /* operations run from one input; the rest is ignored */
    TICKS_MAX = 16,           /* ticks of one "ticks" operation */
    DELIVER_MANY_MAX = 32,    /* deliveries of one "deliver oldest, COUNT times" operation */
    PROPOSAL_BYTES_MAX = 16,
    SNAPSHOT_ENTRIES = 6,     /* raft_config.snapshot_entries */
    SNAPSHOT_TRAILING = 2,    /* raft_config.snapshot_trailing */
    SPARES = 2,               /* nodes outside the bootstrap configuration with OP_SPARES */
    /* The world's bounds. One operation lengthens a log by at most DELIVER_MANY_MAX entries (a
     * no-op per delivery that elects a leader; appends copy entries that exist already) and
     * raises a term by at most TICKS_MAX (an election per tick). Proposals stop while a log is
     * within 2 * LOG_MARGIN of the storage model's bound, and the run ends (the rest of the
     * input is ignored) within LOG_MARGIN of it, or within TERM_MARGIN of the last term whose
     * leader raftnet remembers for election safety. */
    LOG_MARGIN = 2 * DELIVER_MANY_MAX,
    TERM_MARGIN = 2 * TICKS_MAX,
};
_Static_assert(RAFTNET_LOG_MAX > 4 * LOG_MARGIN, "room for the log margins");
_Static_assert(RAFTNET_TERMS_MAX > 4 * TERM_MARGIN, "room for the term margin");

enum op {
    OP_TICK, OP_TICKS, OP_TICK_ALL, OP_DELIVER, OP_DELIVER_AT, OP_DELIVER_MANY, OP_DUPLICATE_AT,
    OP_DROP_AT, OP_PROPOSE, OP_PROPOSE_LEADER, OP_CRASH, OP_RESTART, OP_MANUAL, OP_PERSIST,
    OP_CUT, OP_HEAL_LINK, OP_HEAL_ALL, OP_ISOLATE, OP_PERSIST_HS, OP_PERSIST_LOG, OP_READ,
    OP_READ_LEASE, OP_TRANSFER, OP_SNAPSHOT, OP_CHANGE, OP_SPARES, OP_COUNT
};

_Static_assert(OP_COUNT == 26, "fuzz/tools/gen_raft_net_corpus.c writes these operations");

static const char *const op_names[OP_COUNT] = {
    "tick", "ticks", "tick-all", "deliver", "deliver-at", "deliver-many", "duplicate-at",
    "drop-at", "propose", "propose-leader", "crash", "restart", "manual", "persist", "cut",
    "heal-link", "heal-all", "isolate", "persist-hs", "persist-log", "read", "read-lease",
    "transfer", "snapshot", "change", "spares",
};

/* One run: the world, the program's cursor and what the checks need to name a failure. */
struct run {
    struct raftnet *net;
    const uint8_t *data;
    size_t size, pos;
    uint32_t op_index;
    uint8_t op;
    uint32_t proposals;
    int trace;
    int lease;                     /* lease reads on: every tick operation ticks every node */
    uint32_t reads_issued;         /* read contexts are 1..reads_issued */
    /* net->truth_count when the read with context c was issued, at [c - 1] */
    uint64_t read_floor[OPS_MAX];
};

static int trace_enabled = -1;   /* -1: not read from the environment yet */

static void trace_sink(void *arg, enum rq_log_level level, const char *line, size_t len) {
    (void)arg;
    (void)level;
    fprintf(stderr, "%.*s\n", (int)len, line);
}

static uint8_t operand(struct run *run) {
    return run->pos < run->size ? run->data[run->pos++] : 0;
}

static uint32_t operand_node(struct run *run) { return operand(run) % run->net->n + 1; }

/* Stamps Raft's trace lines with the node about to run. */
static void enter(uint32_t id) {
    static struct rq_ctx ctx;
    ctx.node_id = id;
    rq_ctx_set(&ctx);
}

static _Noreturn void fail(const struct run *run, const char *why) {
    fprintf(stderr, "raft_net: operation %u (%s, input byte %zu): %s\n", run->op_index,
            op_names[run->op], run->pos, why);
    __builtin_trap();
}

/* Node nd holds entry i (of the term in truth) durably: below its durable snapshot (a snapshot
 * holds only applied entries, each checked against truth when it was applied or loaded), or in
 * the part of its durable log not compacted away (log_first..log_count). */
static int holds_durably(const struct raftnet *net, const struct raftnet_node *nd, uint64_t i) {
    if (nd->snap_index >= i) return 1;
    if (i < nd->log_first || i > nd->log_count) return 0;
    return nd->log[i - 1].term == net->truth[i - 1].term;
}

/* Every entry applied anywhere was committed, so a majority of the voters of the configuration
 * that committed it holds it in durable storage: the guarantee a crash schedule attacks (only a
 * conflicting, hence uncommitted, suffix is ever truncated from storage, a snapshot install drops
 * only entries it covers or uncommitted ones, and compaction only entries below a durable
 * snapshot). That configuration is the one in use at the leader that committed it: raftnet
 * records it with the entry (truth_voters), and membership changes only ever shrink or grow the
 * voters of later configurations, never the storage of these. Crashed, removed and learner nodes
 * keep their storage, so they count when they were voters then. */
static void check_durable_majority(const struct run *run) {
    const struct raftnet *net = run->net;
    for (uint64_t i = 1; i <= net->truth_count; i++) {
        uint32_t voters = net->truth_voters[i - 1], holders = 0;
        uint32_t quorum = net->truth_voter_count[i - 1] / 2u + 1;
        for (uint32_t id = 1; id <= net->n; id++)
            holders += (voters >> id & 1u) && holds_durably(net, &net->nodes[id], i);
        if (holders >= quorum) continue;
        char why[RAFTNET_WHY_MAX];
        snprintf(why, sizeof why, "committed (%llu,%llu) is durable on %u of the %u voters "
                 "(mask 0x%x) that committed it", (unsigned long long)i,
                 (unsigned long long)net->truth[i - 1].term, holders,
                 net->truth_voter_count[i - 1], voters);
        fail(run, why);
    }
}

static void check_node(const struct run *run, uint32_t id) {
    const struct raftnet_node *nd = &run->net->nodes[id];
    const struct raft *r = nd->raft;
    const char *why = NULL;
    if (raft_commit(r) > raft_last_index(r)) why = "commit beyond the last index";
    else if (raft_applied_index(r) > raft_commit(r)) why = "applied beyond commit";
    else if (raft_durable_index(r) > raft_last_index(r)) why = "durable beyond the last index";
    /* Storage holds the durable log up to log_count and the durable snapshot up to snap_index,
     * which may be the higher: a follower applies committed entries its own log has not made
     * durable yet, and a snapshot at the applied index makes them durable (after a restart raft
     * counts the snapshot as durable). */
    else if (raft_durable_index(r) > nd->log_count && raft_durable_index(r) > nd->snap_index)
        why = "durable beyond what storage holds";
    else if (nd->applied_count > raft_commit(r)) why = "state machine beyond commit";
    if (why == NULL) return;
    char line[128];
    snprintf(line, sizeof line, "n%u: %s", id, why);
    fail(run, line);
}

/* Linearizable reads: a read confirmed with read index I must see every entry committed before it
 * was issued, and an entry applied anywhere was committed. raftnet keeps a node's confirmed reads
 * in a bounded array: each is checked once, then the array is emptied so that it never fills. */
static void check_reads(struct run *run) {
    for (uint32_t id = 1; id <= run->net->n; id++) {
        struct raftnet_node *nd = &run->net->nodes[id];
        for (uint32_t i = 0; i < nd->read_count; i++) {
            const struct raft_read_ready *rd = &nd->reads[i];
            char why[RAFTNET_WHY_MAX];
            if (rd->ctx == 0 || rd->ctx > run->reads_issued) {
                snprintf(why, sizeof why, "n%u: confirmed read %llu was never issued", id,
                         (unsigned long long)rd->ctx);
                fail(run, why);
            }
            uint64_t floor = run->read_floor[rd->ctx - 1];
            if (rd->index >= floor) continue;
            snprintf(why, sizeof why, "read linearizability: n%u confirmed read %llu with read "
                     "index %llu, but %llu entries were committed before it was issued", id,
                     (unsigned long long)rd->ctx, (unsigned long long)rd->index,
                     (unsigned long long)floor);
            fail(run, why);
        }
        nd->read_count = 0;
    }
}

/* Runs after every step. */
static void check(struct run *run) {
    if (raftnet_check(run->net) != 0) fail(run, run->net->why);
    for (uint32_t id = 1; id <= run->net->n; id++)
        if (run->net->nodes[id].raft != NULL) check_node(run, id);
    check_durable_majority(run);
    check_reads(run);
}

static int is_up(const struct run *run, uint32_t id) { return run->net->nodes[id].raft != NULL; }

static void tick(struct run *run, uint32_t id) {
    if (run->lease) {   /* no drift: one tick of the clock is one tick at every node */
        for (uint32_t i = 1; i <= run->net->n; i++) {
            enter(i);
            raftnet_tick(run->net, i);
            check(run);
        }
        return;
    }
    enter(id);
    raftnet_tick(run->net, id);
    check(run);
}

static uint32_t queued(const struct run *run) { return raftnet_queued(run->net, 0, 0, 0); }

static void deliver(struct run *run, uint32_t k) {
    const struct raftnet *net = run->net;
    const struct raft_msg *m = &net->queue[(net->queue_head + k) % RAFTNET_QUEUE_MAX].m;
    if (run->trace)
        fprintf(stderr, "   deliver #%u of %u: %s n%u -> n%u term %llu\n", k, queued(run),
                raft_msg_type_name(m->type), m->from, m->to, (unsigned long long)m->term);
    enter(m->to);
    raftnet_deliver_at(run->net, k);
    check(run);
}

/* The longest log, in memory or in a storage model, and the highest term. */
static void world_size(const struct run *run, uint64_t *log_last, uint64_t *term) {
    *log_last = 0;
    *term = 0;
    for (uint32_t id = 1; id <= run->net->n; id++) {
        const struct raftnet_node *nd = &run->net->nodes[id];
        if (nd->log_count > *log_last) *log_last = nd->log_count;
        if (nd->hs_term > *term) *term = nd->hs_term;
        if (nd->raft == NULL) continue;
        if (raft_last_index(nd->raft) > *log_last) *log_last = raft_last_index(nd->raft);
        if (raft_term(nd->raft) > *term) *term = raft_term(nd->raft);
    }
}

static int world_full(const struct run *run) {
    uint64_t log_last, term;
    world_size(run, &log_last, &term);
    return log_last + LOG_MARGIN >= RAFTNET_LOG_MAX || term + TERM_MARGIN >= RAFTNET_TERMS_MAX;
}

static void propose(struct run *run, uint32_t id) {
    if (id == 0 || !is_up(run, id)) return;
    uint64_t log_last, term;
    world_size(run, &log_last, &term);
    if (log_last + 2 * LOG_MARGIN >= RAFTNET_LOG_MAX) return;
    char value[PROPOSAL_BYTES_MAX];
    snprintf(value, sizeof value, "v%u", ++run->proposals);   /* unique: swaps are visible */
    enter(id);
    raftnet_propose(run->net, id, value);
    check(run);
}

/* A read with a new context at node id; the floor is what was committed before it was issued (a
 * lease read may be confirmed at once). */
static void issue_read(struct run *run, uint32_t id, int lease) {
    if (!is_up(run, id) || run->reads_issued == OPS_MAX) return;
    uint64_t ctx = ++run->reads_issued;
    run->read_floor[ctx - 1] = run->net->truth_count;
    enter(id);
    struct raft *r = run->net->nodes[id].raft;
    int rc = lease ? raft_read_lease(r, ctx) : raft_read_index(r, ctx);
    if (run->trace)
        fprintf(stderr, "   read %llu at n%u (floor %llu): %d\n", (unsigned long long)ctx, id,
                (unsigned long long)run->read_floor[ctx - 1], rc);
    raftnet_persist_part(run->net, id, 0, 0);   /* drains the node's output */
    check(run);
}

/* raft_transfer_leader at the leader of the highest term (any answer is fine: the target may be
 * the leader itself, or another transfer under way). */
static void transfer(struct run *run, uint32_t target) {
    uint32_t id = raftnet_leader(run->net);
    if (id == 0) return;
    enter(id);
    int rc = raft_transfer_leader(run->net->nodes[id].raft, target);
    if (run->trace) fprintf(stderr, "   transfer n%u -> n%u: %d\n", id, target, rc);
    raftnet_persist_part(run->net, id, 0, 0);   /* drains the node's output */
    check(run);
}

/* raft_change_membership at the leader of the highest term (any answer is fine: a change not
 * allowed now is refused, and the checks judge what an accepted one does). */
static void change(struct run *run, enum raft_change kind, uint32_t node) {
    uint32_t id = raftnet_leader(run->net);
    if (id == 0) return;
    enter(id);
    uint64_t index = 0;
    int rc = raft_change_membership(run->net->nodes[id].raft, kind, node, &index);
    if (run->trace)
        fprintf(stderr, "   change at n%u: kind %d node n%u: %d (index %llu)\n", id, (int)kind,
                node, rc, (unsigned long long)index);
    raftnet_persist_part(run->net, id, 0, 0);   /* drains the node's output */
    check(run);
}

static void pair(struct run *run, uint32_t *a, uint32_t *b) {
    uint32_t n = run->net->n;
    uint8_t x = operand(run);
    *a = x % n + 1;
    *b = (*a + (uint32_t)(x / n) % (n - 1)) % n + 1;   /* never *a */
}

static void run_op(struct run *run) {
    struct raftnet *net = run->net;
    uint32_t id, a, b;
    switch (run->op) {
    case OP_TICK: tick(run, operand_node(run)); break;
    case OP_TICKS:
        id = operand_node(run);
        a = operand(run) % TICKS_MAX + 1;
        for (uint32_t i = 0; i < a; i++) tick(run, id);
        break;
    case OP_TICK_ALL:
        if (run->lease) tick(run, 1);
        else
            for (id = 1; id <= net->n; id++) tick(run, id);
        break;
    case OP_DELIVER:
        if (queued(run) > 0) deliver(run, 0);
        break;
    case OP_DELIVER_AT:
        a = operand(run);
        if (queued(run) > 0) deliver(run, a % queued(run));
        break;
    case OP_DELIVER_MANY:
        a = operand(run) % DELIVER_MANY_MAX + 1;
        for (uint32_t i = 0; i < a && queued(run) > 0; i++) deliver(run, 0);
        break;
    case OP_DUPLICATE_AT:
        a = operand(run);
        if (queued(run) > 0) raftnet_duplicate_at(net, a % queued(run));
        break;
    case OP_DROP_AT:
        a = operand(run);
        if (queued(run) > 0) raftnet_drop_at(net, a % queued(run));
        break;
    case OP_PROPOSE: propose(run, operand_node(run)); break;
    case OP_PROPOSE_LEADER: propose(run, raftnet_leader(net)); break;
    case OP_CRASH:
        id = operand_node(run);
        enter(id);
        raftnet_crash(net, id);
        break;
    case OP_RESTART:
        id = operand_node(run);
        enter(id);
        if (!is_up(run, id)) raftnet_restart(net, id);
        break;
    case OP_MANUAL:
        id = operand_node(run);
        enter(id);
        raftnet_set_manual_persist(net, id, !net->nodes[id].manual_persist);
        if (!net->nodes[id].manual_persist) raftnet_persist(net, id);
        break;
    case OP_PERSIST:
        id = operand_node(run);
        enter(id);
        raftnet_persist(net, id);
        break;
    case OP_CUT: pair(run, &a, &b); raftnet_cut(net, a, b); break;
    case OP_HEAL_LINK: pair(run, &a, &b); raftnet_heal_link(net, a, b); break;
    case OP_HEAL_ALL: raftnet_heal(net); break;
    case OP_ISOLATE: raftnet_isolate(net, operand_node(run)); break;
    case OP_PERSIST_HS:
        id = operand_node(run);
        enter(id);
        raftnet_persist_part(net, id, 1, 0);
        break;
    case OP_PERSIST_LOG:
        id = operand_node(run);
        enter(id);
        raftnet_persist_part(net, id, 0, 1);
        break;
    case OP_READ: issue_read(run, operand_node(run), 0); break;
    case OP_READ_LEASE: issue_read(run, operand_node(run), 1); break;
    case OP_TRANSFER: transfer(run, operand_node(run)); break;
    case OP_SNAPSHOT:
        id = operand_node(run);
        enter(id);
        raftnet_snapshot(net, id);
        break;
    case OP_CHANGE:
        a = operand(run) % 3;
        change(run, (enum raft_change)(RAFT_CHANGE_ADD_LEARNER + a), operand_node(run));
        break;
    case OP_SPARES: break;   /* read by create() when it is among the first operations */
    default: __builtin_trap();
    }
    check(run);
}

/* The world of the configuration byte flags; with spares, nodes n-SPARES+1..n are outside the
 * bootstrap configuration. */
static struct raftnet *create(uint8_t flags, int spares, int stored_log) {
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = flags & 0x80 ? 0x9E3779B97F4A7C15u : 42;
    if (flags & 0x02) cfg.pre_vote = 0;
    if (flags & 0x04) cfg.check_quorum = 0;
    if (flags & 0x08) cfg.msg_entries_max = 1;
    if (flags & 0x10) cfg.inflight_max = 1;
    if (flags & 0x20) {
        cfg.election_ticks = 4;
        cfg.heartbeat_ticks = 1;
    }
    if (flags & 0x40) cfg.log_entries_max = 8;
    if ((flags & 0x80) && cfg.check_quorum)
        cfg.lease_ticks = raft_lease_ticks(cfg.election_ticks, 0);
    cfg.snapshot_entries = SNAPSHOT_ENTRIES;
    cfg.snapshot_trailing = SNAPSHOT_TRAILING;
    cfg.stored_log = stored_log != 0;
    uint32_t n = flags & 0x01 ? 5 : 3;
    if (spares) {
        cfg.voter_count = n - SPARES;
        for (uint32_t i = 0; i < cfg.voter_count; i++) cfg.voters[i] = i + 1;
    }
    return raftnet_create(n, &cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (trace_enabled < 0) {
        trace_enabled = getenv("RAFT_NET_TRACE") != NULL;
        if (trace_enabled) {
            rq_log_set_sink(trace_sink, NULL);
            rq_log_set_level(RQ_LOG_INFO);
        }
    }
    if (size < 1) return 0;
    static struct run run;   /* large: the read floors */
    memset(&run, 0, sizeof run);
    run.data = data;
    run.size = size;
    run.pos = 1;
    run.trace = trace_enabled;
    enter(0);
    uint32_t lead = 0;   /* leading OP_SPARES: 1 spares, 2 stored log, 3 both */
    while (lead < 3 && 1 + lead < size && data[1 + lead] % OP_COUNT == OP_SPARES) lead++;
    run.net = create(data[0], lead == 1 || lead == 3, lead >= 2);
    run.lease = run.net->cfg.lease_ticks > 0;
    check(&run);
    for (; run.pos < size && run.op_index < OPS_MAX && !world_full(&run); run.op_index++) {
        run.op = data[run.pos++] % OP_COUNT;
        if (run.trace) fprintf(stderr, "-- op %u: %s\n", run.op_index, op_names[run.op]);
        run_op(&run);
    }
    enter(0);
    raftnet_destroy(run.net);
    return 0;
}
