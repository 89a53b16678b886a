/* The raft-kv workload: a replicated key-value map on multi-raft, attacked by every fault.
 *
 * Servers: each runs a node host (src/node/host.h) with RAFTKV_GROUPS Raft groups over one store;
 * key k belongs to group k % RAFTKV_GROUPS + 1. A client request (write a value, or read) becomes
 * a Raft entry; the leader that proposed it answers once it has applied it. Reads go through the
 * log too, so every answer is linearizable. The state machine keeps one session per client (the
 * last op id applied and its result, dissertation 6.3), so a request the network duplicated is
 * applied once.
 *
 * Clients: each has one request outstanding; it sends to the server it believes leads the group,
 * follows "not leader" hints, and gives up after RAFTKV_OP_TIMEOUT_NS (the outcome is then
 * unknown). Every written value is unique.
 *
 * Checks (sim/raftcheck.h, sim/lincheck.h): whenever a node's role or term changes (the host
 * looks after every input, so this is after every event that could change it), a new leader is
 * checked for election safety and leader completeness; every entry that enters any node's log is checked for log matching; every applied
 * entry for state machine safety; every acknowledged write for durability. At the heal every
 * server loses power and restarts; the groups must then elect leaders and commit a new write within
 * RAFTKV_LIVENESS_NS. At the end each key's history must be linearizable. Now and then a leader
 * that receives a request hands its group to another server (leadership transfer). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "base/log.h"
#include "node/host.h"
#include "sim/lincheck.h"
#include "sim/raftcheck.h"
#include "sim/raftkv.h"
#include "sim/sim.h"

enum {
    RAFTKV_GROUPS = 2,
    RAFTKV_KEYS = 6,
    RAFTKV_REQ_SIZE = 25,    /* kind u8, client u32, op u64, key u32, value u64 */
    RAFTKV_REPLY_SIZE = 38,  /* status u8, op u64, value u64, leader u32, index u64, term u64, group u8 */
    RAFTKV_PENDING_MAX = 64,
    RAFTKV_RETRIES_MAX = 40,
    RAFTKV_LINCHECK_BUDGET = 4u << 20,
    RAFTKV_CHANGE_PPM = 5000,   /* per server timer (10 ms): an attempt about every second */
    RAFTKV_TRANSFER_PPM = 5000,   /* per request a leader receives: hand the group on */
};

static const uint64_t RAFTKV_OP_TIMEOUT_NS = 500ull * 1000 * 1000;
static const uint64_t RAFTKV_LIVENESS_NS = 3ull * 1000 * 1000 * 1000;  /* 10 x max election timeout + restart */

enum kv_kind {
    KV_WRITE = 1,
    KV_READ = 2,         /* through the log: a Raft entry like a write */
    KV_READ_INDEX = 3,   /* ReadIndex at whichever server gets it: the leader, or a follower that
                            asks the leader for the read index (raft_read_index) */
    KV_READ_LEASE = 4,   /* the leader's lease (raft_read_lease; ReadIndex when it does not hold) */
};
enum kv_status { KV_OK = 0, KV_NOT_LEADER = 1, KV_FAILED = 2, KV_BUSY = 3 };

struct kv_request {
    uint8_t kind;
    uint32_t client;
    uint64_t op;
    uint32_t key;
    uint64_t value;
};

static void request_encode(const struct kv_request *q, uint8_t *p) {
    p[0] = q->kind;
    rq_put_u32(p + 1, q->client);
    rq_put_u64(p + 5, q->op);
    rq_put_u32(p + 13, q->key);
    rq_put_u64(p + 17, q->value);
}

static int request_decode(const uint8_t *p, size_t len, struct kv_request *q) {
    if (len != RAFTKV_REQ_SIZE) return RQ_ECORRUPT;
    q->kind = p[0];
    q->client = rq_get_u32(p + 1);
    q->op = rq_get_u64(p + 5);
    q->key = rq_get_u32(p + 13);
    q->value = rq_get_u64(p + 17);
    if (q->kind < KV_WRITE || q->kind > KV_READ_LEASE || q->key >= RAFTKV_KEYS ||
        q->client >= SIM_CLIENTS_MAX || q->op == 0)
        return RQ_ECORRUPT;
    return 0;
}

static uint32_t group_of_key(uint32_t key) { return key % RAFTKV_GROUPS + 1; }

/* ---- the workload's shared state: checkers and the client history ------------------------------ */

struct kv_history {
    struct lincheck_op ops[LINCHECK_OPS_MAX];
    uint32_t count;
};

struct raftkv {
    struct sim *sim;
    struct raftcheck *check;
    char why[RAFTCHECK_WHY_MAX];
    struct kv_history keys[RAFTKV_KEYS];
    uint64_t heal_ns;                       /* 0 until the heal */
    uint64_t first_write_after_heal_ns[RAFTKV_GROUPS + 1];   /* completion time, 0 = none */
    uint64_t acked;
    uint64_t unknown;
    uint64_t reads;
    uint64_t reads_by_index;                /* of reads: by ReadIndex at any server */
    uint64_t reads_by_lease;                /*   by the leader's lease (or ReadIndex) */
    uint64_t transfers;                     /* leadership transfers begun (kv_maybe_transfer) */
    uint32_t bugs;                          /* enum raftkv_bug, for the checks' own tests */
    uint32_t snapshot_entries;              /* drawn per seed: small, so snapshots happen often */
    uint32_t snapshot_trailing;
    int reconfigure;                        /* membership changes on (drawn per seed) */
    uint64_t changes;                       /* membership changes started */
    uint64_t snapshots;                     /* images taken */
    uint64_t restores;                      /* images restored (at start, or from the leader) */
};

static void fail_if(struct raftkv *w, int rc) {
    if (rc != 0) sim_fail(w->sim, "raft-kv: %s", w->why);
}

/* ---- server ----------------------------------------------------------------------------------- */

struct kv_session {
    uint64_t op;
    uint64_t result;
};

struct kv_pending {
    uint8_t used;
    uint32_t group;
    uint64_t index;          /* the proposed entry (0 for a ReadIndex read) */
    uint64_t term;
    uint64_t conn;
    uint32_t client;
    uint64_t op;
    uint64_t ctx;            /* a ReadIndex read's context (0 for a proposal) */
    uint32_t key;
    uint64_t since_ns;       /* local clock: requests left unanswered this long are forgotten */
};

struct kv_server {
    const struct rq_io *io;
    struct raftkv *w;
    struct host *host;
    uint64_t values[RAFTKV_KEYS];
    struct kv_session sessions[RAFTKV_GROUPS + 1][SIM_CLIENTS_MAX];
    struct kv_pending pending[RAFTKV_PENDING_MAX];
    uint32_t pending_count;
    uint64_t next_ctx;
};

static void reply(struct kv_server *n, uint64_t conn, uint8_t status, uint64_t op, uint64_t value,
                  uint32_t group, uint64_t index, uint64_t term) {
    uint8_t p[RAFTKV_REPLY_SIZE];
    p[0] = status;
    rq_put_u64(p + 1, op);
    rq_put_u64(p + 9, value);
    const struct raft *r = host_raft(n->host, group);
    rq_put_u32(p + 17, r ? raft_leader(r) : 0);
    rq_put_u64(p + 21, index);
    rq_put_u64(p + 29, term);
    p[37] = (uint8_t)group;
    n->io->reply(n->io->env, conn, p, sizeof p);
}

/* Executes a request on the state machine, once per (client, op): a duplicate gets the result
 * of the first execution. */
static uint64_t execute(struct kv_server *n, uint32_t group, const struct kv_request *q) {
    struct kv_session *s = &n->sessions[group][q->client];
    if (q->op <= s->op) return s->result;
    uint64_t result = q->kind == KV_WRITE ? q->value : n->values[q->key];
    if (q->kind == KV_WRITE) n->values[q->key] = q->value;
    s->op = q->op;
    s->result = result;
    return result;
}

static void kv_apply(void *arg, uint32_t group, const struct raft_entry *e) {
    struct kv_server *n = arg;
    struct raftkv *w = n->w;
    uint64_t digest = raftcheck_digest(e->type, e->data, e->data_size);
    const struct raft *r = host_raft(n->host, group);
    uint64_t leader_term = r != NULL && raft_role(r) == RAFT_LEADER ? raft_term(r) : 0;
    fail_if(w, raftcheck_applied(w->check, group, n->io->node_id, e->index, e->term, digest,
                                 leader_term, w->why));
    struct kv_request q;
    int have = e->type == RAFT_ENTRY_NORMAL && request_decode(e->data, e->data_size, &q) == 0;
    if (e->type == RAFT_ENTRY_NORMAL && !have) {
        sim_fail(w->sim, "raft-kv: n%u applied a malformed entry at %" PRIu64, n->io->node_id, e->index);
        return;
    }
    uint64_t result = have ? execute(n, group, &q) : 0;
    for (uint32_t i = 0; i < RAFTKV_PENDING_MAX && n->pending_count > 0; i++) {
        struct kv_pending *p = &n->pending[i];
        if (!p->used || p->group != group || p->index != e->index) continue;
        int mine = have && p->term == e->term && p->client == q.client && p->op == q.op;
        reply(n, p->conn, mine ? KV_OK : KV_FAILED, p->op, result, group, e->index, e->term);
        p->used = 0;
        n->pending_count--;
    }
}

/* The state machine's image of one group: its keys' values, then its client sessions, each a
 * u64 (little-endian). Deterministic: equal states give equal bytes (raftcheck compares them). */
enum { KV_IMAGE_SIZE = (RAFTKV_KEYS / RAFTKV_GROUPS + SIM_CLIENTS_MAX * 2) * 8 };

static size_t kv_image(const struct kv_server *n, uint32_t group, uint8_t *buf) {
    size_t at = 0;
    for (uint32_t k = 0; k < RAFTKV_KEYS; k++) {
        if (group_of_key(k) != group) continue;
        rq_put_u64(buf + at, n->values[k]);
        at += 8;
    }
    for (uint32_t c = 0; c < SIM_CLIENTS_MAX; c++) {
        rq_put_u64(buf + at, n->sessions[group][c].op);
        rq_put_u64(buf + at + 8, n->sessions[group][c].result);
        at += 16;
    }
    RQ_ASSERT(at == KV_IMAGE_SIZE);
    return at;
}

static uint64_t image_digest(const uint8_t *image, size_t size) {
    uint64_t d = raftcheck_digest(0, image, (uint32_t)size);
    return d != 0 ? d : 1;
}

static size_t kv_snapshot(void *arg, uint32_t group, uint8_t *buf, size_t cap) {
    struct kv_server *n = arg;
    if (cap < KV_IMAGE_SIZE) return KV_IMAGE_SIZE;
    size_t size = kv_image(n, group, buf);
    if ((n->w->bugs & RAFTKV_BUG_SNAPSHOT_SKEW) && n->io->node_id == 1) buf[0] ^= 1;
    const struct raft *r = host_raft(n->host, group);
    fail_if(n->w, raftcheck_snapshot(n->w->check, group, n->io->node_id, raft_applied_index(r),
                                     image_digest(buf, size), n->w->why));
    n->w->snapshots++;
    return size;
}

static void kv_restore(void *arg, uint32_t group, uint64_t index, const uint8_t *image,
                       size_t size) {
    struct kv_server *n = arg;
    if (size != KV_IMAGE_SIZE) {
        sim_fail(n->w->sim, "raft-kv: n%u restored an image of %zu bytes, not %d", n->io->node_id,
                 size, KV_IMAGE_SIZE);
        return;
    }
    fail_if(n->w, raftcheck_snapshot(n->w->check, group, n->io->node_id, index,
                                     image_digest(image, size), n->w->why));
    size_t at = 0;
    for (uint32_t k = 0; k < RAFTKV_KEYS; k++) {
        if (group_of_key(k) != group) continue;
        n->values[k] = rq_get_u64(image + at);
        at += 8;
    }
    for (uint32_t c = 0; c < SIM_CLIENTS_MAX; c++) {
        n->sessions[group][c].op = rq_get_u64(image + at);
        n->sessions[group][c].result = rq_get_u64(image + at + 8);
        at += 16;
    }
    n->w->restores++;
}

static uint64_t leader_term_at(const void *arg, uint64_t index) {
    return raft_term_at((const struct raft *)arg, index);
}

/* Whenever a node's role or term changes (the host reports it after every input a group handles):
 * a leader is the only one of its term, and holds every entry committed in earlier terms. */
static void kv_role_changed(void *arg, uint32_t group, enum raft_role role, uint64_t term,
                            const struct raft *r) {
    struct kv_server *n = arg;
    struct raftkv *w = n->w;
    if (role != RAFT_LEADER) return;
    if (group == 1) sim_set_leader_hint(w->sim, n->io->node_id);   /* partitions may isolate it */
    fail_if(w, raftcheck_leader(w->check, group, term, n->io->node_id, w->why));
    fail_if(w, raftcheck_new_leader(w->check, group, n->io->node_id, term, leader_term_at, r, w->why));
}

static void kv_read(void *arg, uint32_t group, uint64_t ctx) {
    struct kv_server *n = arg;
    for (uint32_t i = 0; i < RAFTKV_PENDING_MAX && n->pending_count > 0; i++) {
        struct kv_pending *p = &n->pending[i];
        if (!p->used || p->ctx != ctx || p->group != group) continue;
        reply(n, p->conn, KV_OK, p->op, n->values[p->key], group, 0, 0);
        p->used = 0;
        n->pending_count--;
        return;
    }
}

/* A free slot for a request, forgetting requests left unanswered for 2 s (their clients gave up
 * long ago: a proposal that lost its leader, a read whose leader stepped down). */
static struct kv_pending *pending_slot(struct kv_server *n) {
    uint64_t now = n->io->now(n->io->env);
    struct kv_pending *free_slot = NULL;
    for (uint32_t i = 0; i < RAFTKV_PENDING_MAX; i++) {
        struct kv_pending *p = &n->pending[i];
        if (p->used && now - p->since_ns > 2000000000ull) {
            p->used = 0;
            n->pending_count--;
        }
        if (!p->used && free_slot == NULL) free_slot = p;
    }
    return free_slot;
}

static void kv_appended(void *arg, uint32_t group, const struct raft_entry *e, uint64_t prev_term) {
    struct kv_server *n = arg;
    uint64_t digest = raftcheck_digest(e->type, e->data, e->data_size);
    fail_if(n->w, raftcheck_entry(n->w->check, group, e->index, e->term, prev_term, digest, n->w->why));
}

static void *kv_create(const struct rq_io *io, const void *config) {
    struct kv_server *n = calloc(1, sizeof *n);
    if (n == NULL) return NULL;
    n->io = io;
    n->w = (struct raftkv *)config;
    struct host_config hc;
    host_config_default(&hc);
    hc.groups = RAFTKV_GROUPS;
    hc.raft.voter_count = sim_servers(n->w->sim);
    if (n->w->reconfigure && hc.raft.voter_count >= 5) hc.raft.voter_count -= 2;
    /* The lease assumes the drift bound the simulator promises (--max-drift); --clock-break
     * breaks the promise, to show what a lease read then risks. */
    hc.raft.lease_ticks = raft_lease_ticks(hc.raft.election_ticks,
                                           sim_config(n->w->sim)->max_drift_ppm);
    for (uint32_t i = 0; i < hc.raft.voter_count; i++) hc.raft.voters[i] = i + 1;
    hc.raft.snapshot_entries = n->w->snapshot_entries;
    hc.raft.snapshot_trailing = n->w->snapshot_trailing;
    static const struct host_callbacks cb = {.apply = kv_apply, .appended = kv_appended,
                                             .read = kv_read, .role_changed = kv_role_changed,
                                             .snapshot = kv_snapshot, .restore = kv_restore};
    n->host = host_create(io, &hc, &cb, n);
    if (n->host == NULL) {
        free(n);
        return NULL;
    }
    return n;
}

static void kv_destroy(void *node) {
    struct kv_server *n = node;
    host_destroy(n->host);
    free(n);
}

static void kv_start(void *node) { host_start(((struct kv_server *)node)->host); }
/* ---- the operator: membership changes during the run --------------------------------------- */

/* A server that leads a group sometimes changes the group's membership, as an operator would:
 * it promotes a learner (refused until the learner caught up), replaces a voter that is down
 * (removes it; a spare is added next), removes a random voter (the leader itself too), or adds
 * a server that is not a member as a learner. Voters stay between 2 and every server. Drawn from
 * the workload's generator, so a seed replays exactly. */
static void kv_operate(struct kv_server *n) {
    struct raftkv *w = n->w;
    struct rq_rng *rng = sim_workload_rng(w->sim);
    if (!w->reconfigure || !rq_rng_chance(rng, RAFTKV_CHANGE_PPM)) return;
    uint32_t group = (uint32_t)rq_rng_range(rng, 1, RAFTKV_GROUPS);
    const struct raft *r = host_raft(n->host, group);
    if (r == NULL || raft_role(r) != RAFT_LEADER) return;
    struct raft_membership m;
    raft_membership_get(r, &m);
    uint32_t servers = sim_servers(w->sim), voters = raft_membership_voters(&m);
    enum raft_change kind = 0;
    uint32_t node = 0;
    for (uint32_t i = 0; i < m.count && kind == 0; i++) {
        if (!m.voter[i]) kind = RAFT_CHANGE_PROMOTE, node = m.ids[i];
    }
    for (uint32_t i = 0; i < m.count && kind == 0 && voters > 2; i++) {
        if (!sim_is_up(w->sim, m.ids[i])) kind = RAFT_CHANGE_REMOVE, node = m.ids[i];
    }
    if (kind == 0 && m.count < servers && (voters <= 2 || rq_rng_chance(rng, 500000))) {
        node = (uint32_t)rq_rng_range(rng, 1, servers);
        while (raft_membership_slot(&m, node) < m.count) node = node % servers + 1;
        kind = RAFT_CHANGE_ADD_LEARNER;
    }
    if (kind == 0 && voters > 2) {
        kind = RAFT_CHANGE_REMOVE;
        node = m.ids[rq_rng_below(rng, m.count)];
    }
    if (kind == 0) return;
    int err = host_change_membership(n->host, group, kind, node);
    if (err == 0) w->changes++;
}

static void kv_timer(void *node) {
    struct kv_server *n = node;
    host_on_timer(n->host);
    kv_operate(n);
}
static void kv_peer(void *node, uint32_t from, const void *buf, size_t len) {
    host_on_peer_message(((struct kv_server *)node)->host, from, buf, len);
}
static void kv_disk(void *node, struct rq_disk_req *req) {
    host_on_disk_done(((struct kv_server *)node)->host, req);
}
static void kv_conn_closed(void *node, uint64_t conn) {
    struct kv_server *n = node;
    for (uint32_t i = 0; i < RAFTKV_PENDING_MAX; i++) {
        if (!n->pending[i].used || n->pending[i].conn != conn) continue;
        n->pending[i].used = 0;
        n->pending_count--;
    }
}

/* Now and then a leader hands its group to another voter (dissertation 3.10), at random, as an
 * operator moving leaders would: the group refuses proposals until the target takes over or an
 * election timeout passes, and the checks must still hold. Draws only from the workload's
 * seeded stream. */
static void kv_maybe_transfer(struct kv_server *n, uint32_t group) {
    struct raftkv *w = n->w;
    const struct raft *r = host_raft(n->host, group);
    if (r == NULL || raft_role(r) != RAFT_LEADER) return;
    struct rq_rng *rng = sim_workload_rng(w->sim);
    if (!rq_rng_chance(rng, RAFTKV_TRANSFER_PPM)) return;
    struct raft_membership m;   /* a voter other than us */
    raft_membership_get(r, &m);
    uint32_t others[RAFT_MEMBERS_MAX], count = 0;
    for (uint32_t i = 0; i < m.count; i++)
        if (m.voter[i] && m.ids[i] != n->io->node_id) others[count++] = m.ids[i];
    if (count == 0) return;
    uint32_t target = others[rq_rng_below(rng, count)];
    if (host_transfer_leader(n->host, group, target) == 0) w->transfers++;
}

static void kv_request(void *node, uint64_t conn, const void *buf, size_t len) {
    struct kv_server *n = node;
    struct kv_request q;
    if (request_decode(buf, len, &q) != 0) {
        RQ_WARN("raft-kv: malformed request of %zu bytes on connection %" PRIu64, len, conn);
        return;
    }
    uint32_t group = group_of_key(q.key);
    struct kv_pending *slot = pending_slot(n);
    if (slot == NULL) {
        reply(n, conn, KV_BUSY, q.op, 0, group, 0, 0);
        return;
    }
    const struct raft *r = host_raft(n->host, group);
    if ((n->w->bugs & RAFTKV_BUG_LOCAL_READS) && q.kind != KV_WRITE && r != NULL &&
        raft_role(r) == RAFT_LEADER) {
        reply(n, conn, KV_OK, q.op, n->values[q.key], group, raft_commit(r), 0);
        return;
    }
    if ((n->w->bugs & RAFTKV_BUG_FOLLOWER_LOCAL_READS) && q.kind == KV_READ_INDEX && r != NULL &&
        raft_role(r) != RAFT_LEADER) {
        reply(n, conn, KV_OK, q.op, n->values[q.key], group, 0, 0);
        return;
    }
    /* One pending slot per request, registered before the request is handed on: a read the
     * lease (or a single voter) confirms at once is served before host_read returns. A read is
     * found again by its ctx, a proposal by its index once host_propose has given it. */
    int is_read = q.kind == KV_READ_INDEX || q.kind == KV_READ_LEASE;
    *slot = (struct kv_pending){.used = 1, .group = group, .conn = conn, .client = q.client,
                                .op = q.op, .ctx = is_read ? ++n->next_ctx : 0, .key = q.key,
                                .since_ns = n->io->now(n->io->env)};
    n->pending_count++;
    uint64_t ctx = slot->ctx, index = 0, term = 0;
    int err = q.kind == KV_READ_INDEX   ? host_read(n->host, group, ctx)
              : q.kind == KV_READ_LEASE ? host_read_lease(n->host, group, ctx)
                                        : host_propose(n->host, group, buf, (uint32_t)len, &index, &term);
    int answered = is_read && !(slot->used && slot->ctx == ctx);
    if (err == 0 && !is_read && (n->w->bugs & RAFTKV_BUG_ACK_BEFORE_COMMIT) && q.kind == KV_WRITE) {
        reply(n, conn, KV_OK, q.op, q.value, group, index, term);
        err = 1;   /* answered already: forget the slot */
    }
    if (err != 0 && !answered) {
        slot->used = 0;
        n->pending_count--;
        if (err < 0)
            reply(n, conn, err == RQ_ENOTLEADER ? KV_NOT_LEADER : KV_BUSY, q.op, 0, group, 0, 0);
        return;
    }
    if (!is_read) {
        slot->index = index;
        slot->term = term;
    }
    kv_maybe_transfer(n, group);
}

static const struct rq_node_ops kv_server_ops = {
    .name = "raft-kv",
    .create = kv_create,
    .destroy = kv_destroy,
    .on_start = kv_start,
    .on_timer = kv_timer,
    .on_peer_message = kv_peer,
    .on_client_message = kv_request,
    .on_disk_done = kv_disk,
    .on_conn_closed = kv_conn_closed,
};

/* ---- client ----------------------------------------------------------------------------------- */

struct kv_client {
    const struct rq_io *io;
    struct raftkv *w;
    struct rq_rng rng;
    uint32_t index;                  /* 0..SIM_CLIENTS_MAX-1 */
    uint32_t leader[RAFTKV_GROUPS + 1];
    uint64_t next_op;
    /* The request outstanding (op != 0). */
    struct kv_request q;
    struct lincheck_op *hist;        /* its history record, NULL when not recorded */
    uint32_t target;
    uint32_t retries;
    uint64_t deadline_ns;            /* local clock: give up after this */
    uint64_t invoke_ns;              /* true time the current op started */
    int waiting;                     /* 1: sent, waiting for an answer; 0: a timer is due */
};

static uint64_t true_now(const struct kv_client *c) { return sim_now(c->w->sim); }
static uint64_t local_now(const struct kv_client *c) { return c->io->now(c->io->env); }

static void client_send(struct kv_client *c) {
    uint8_t p[RAFTKV_REQ_SIZE];
    request_encode(&c->q, p);
    c->io->send(c->io->env, c->target, p, sizeof p);
    c->waiting = 1;
    c->io->set_timer(c->io->env, c->deadline_ns);
}

/* Sleeps a little, then client_timer starts the next op or resends the current one. */
static void client_pause(struct kv_client *c, uint64_t lo_ns, uint64_t hi_ns) {
    c->waiting = 0;
    c->io->set_timer(c->io->env, local_now(c) + rq_rng_range(&c->rng, lo_ns, hi_ns));
}

static void client_new_op(struct kv_client *c) {
    struct raftkv *w = c->w;
    uint32_t key = (uint32_t)rq_rng_below(&c->rng, RAFTKV_KEYS);
    int write = rq_rng_chance(&c->rng, 500000);
    /* Reads: a quarter each through the log, by ReadIndex at the leader, by ReadIndex at a random
     * server (a follower read when it is not the leader), and by the leader's lease. */
    uint32_t read_mode = (uint32_t)rq_rng_below(&c->rng, 4);
    static const uint8_t read_kinds[4] = {KV_READ, KV_READ_INDEX, KV_READ_INDEX, KV_READ_LEASE};
    uint8_t kind = write ? KV_WRITE : read_kinds[read_mode];
    c->q = (struct kv_request){.kind = kind, .client = c->index, .op = ++c->next_op, .key = key};
    if (write) c->q.value = ((uint64_t)(c->index + 1) << 40) | c->next_op;
    struct kv_history *h = &w->keys[key];
    c->hist = NULL;
    c->invoke_ns = true_now(c);
    if (h->count < LINCHECK_OPS_MAX) {
        c->hist = &h->ops[h->count++];
        *c->hist = (struct lincheck_op){.invoke_ns = true_now(c), .complete_ns = UINT64_MAX,
                                        .is_write = (uint8_t)write, .value = c->q.value,
                                        .client = c->index, .id = c->q.op};
    }
    uint32_t g = group_of_key(key);
    uint32_t any = (uint32_t)rq_rng_range(&c->rng, 1, sim_servers(w->sim));
    c->target = c->leader[g] && !(kind == KV_READ_INDEX && read_mode == 2) ? c->leader[g] : any;
    c->retries = 0;
    c->deadline_ns = local_now(c) + RAFTKV_OP_TIMEOUT_NS;
    client_send(c);
}

/* The outcome will never be known: a write may or may not have happened (lincheck allows both),
 * an unanswered read says nothing. */
static void client_give_up(struct kv_client *c) {
    c->w->unknown++;
    c->q.op = 0;
    c->hist = NULL;
    uint32_t g = group_of_key(c->q.key);
    c->leader[g] = 0;
    client_pause(c, 1000000, 20000000);
}

static void client_timer(void *node) {
    struct kv_client *c = node;
    if (c->q.op == 0) {
        client_new_op(c);
    } else if (c->waiting || local_now(c) >= c->deadline_ns) {
        client_give_up(c);
    } else {
        client_send(c);
    }
}

static void client_done(struct kv_client *c, uint64_t value, uint32_t group, uint64_t index,
                        uint64_t term) {
    struct raftkv *w = c->w;
    uint8_t p[RAFTKV_REQ_SIZE];
    request_encode(&c->q, p);
    w->why[0] = '\0';
    if (c->q.kind == KV_WRITE)
        fail_if(w, raftcheck_acked(w->check, group, index, term,
                                   raftcheck_digest(RAFT_ENTRY_NORMAL, p, sizeof p), w->why));
    if (c->hist != NULL) {
        c->hist->complete_ns = true_now(c);
        if (!c->hist->is_write) c->hist->value = value;
    }
    w->acked++;
    if (c->q.kind != KV_WRITE) w->reads++;
    if (c->q.kind == KV_READ_INDEX) w->reads_by_index++;
    if (c->q.kind == KV_READ_LEASE) w->reads_by_lease++;
    /* Not c->hist: in a long run the history is full, and liveness is still checked. */
    if (w->heal_ns != 0 && c->invoke_ns >= w->heal_ns &&
        c->q.kind == KV_WRITE && w->first_write_after_heal_ns[group] == 0)
        w->first_write_after_heal_ns[group] = true_now(c);
    c->q.op = 0;
    c->hist = NULL;
    client_pause(c, 0, 20000000);
}

static void client_answer(void *node, uint32_t from, const void *buf, size_t len) {
    struct kv_client *c = node;
    const uint8_t *p = buf;
    if (len != RAFTKV_REPLY_SIZE || from < 1 || from > sim_servers(c->w->sim)) {
        sim_fail(c->w->sim, "raft-kv: client %u got a malformed answer", c->index);
        return;
    }
    uint64_t op = rq_get_u64(p + 1);
    if (c->q.op == 0 || op != c->q.op || !c->waiting || from != c->target) return;  /* stale */
    uint32_t hint = rq_get_u32(p + 17);
    uint32_t group = p[37];
    if (group < 1 || group > RAFTKV_GROUPS || group != group_of_key(c->q.key)) {
        sim_fail(c->w->sim, "raft-kv: client %u got an answer for group %u", c->index, group);
        return;
    }
    if (p[0] == KV_OK) {
        if (c->q.kind != KV_READ_INDEX) c->leader[group] = from;   /* follower reads: anyone */
        client_done(c, rq_get_u64(p + 9), group, rq_get_u64(p + 21), rq_get_u64(p + 29));
        return;
    }
    /* Not leader, failed (the proposal lost its place) or busy: try again, same op id (the
     * session table makes a retried write apply once), at the hinted leader or the next server. */
    if (++c->retries > RAFTKV_RETRIES_MAX) {
        client_give_up(c);
        return;
    }
    uint32_t servers = sim_servers(c->w->sim);
    c->target = hint != 0 && hint != from && hint <= servers ? hint : from % servers + 1;
    c->leader[group] = c->target;
    client_pause(c, 2000000, 20000000);
}

static void *client_create(const struct rq_io *io, const void *config) {
    struct kv_client *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->io = io;
    c->w = (struct raftkv *)config;
    c->index = io->node_id - SIM_CLIENT_ID_BASE;
    RQ_ASSERT(c->index < SIM_CLIENTS_MAX);
    rq_rng_seed(&c->rng, io->seed);
    /* Op ids must grow across client restarts (the servers' sessions remember them). */
    c->next_op = (uint64_t)sim_incarnation(c->w->sim, io->node_id) << 32;
    return c;
}

static void client_destroy(void *node) {
    struct kv_client *c = node;
    if (c->q.op != 0) c->w->unknown++;
    free(c);
}

static void client_start(void *node) { client_pause(node, 1000000, 50000000); }

static void client_unexpected_request(void *node, uint64_t conn, const void *buf, size_t len) {
    struct kv_client *c = node;
    (void)conn;
    (void)buf;
    (void)len;
    sim_fail(c->w->sim, "raft-kv: client %u received a client request", c->index);
}

static void client_disk_done(void *node, struct rq_disk_req *req) {
    (void)node;
    (void)req;
    RQ_UNREACHABLE();
}

static void client_conn_closed(void *node, uint64_t conn) {
    (void)node;
    (void)conn;
}

static const struct rq_node_ops kv_client_ops = {
    .name = "raft-kv-client",
    .create = client_create,
    .destroy = client_destroy,
    .on_start = client_start,
    .on_timer = client_timer,
    .on_peer_message = client_answer,
    .on_client_message = client_unexpected_request,
    .on_disk_done = client_disk_done,
    .on_conn_closed = client_conn_closed,
};

/* ---- the workload's hooks --------------------------------------------------------------------- */

static void *raftkv_init(struct sim *s) {
    struct raftkv *w = calloc(1, sizeof *w);
    RQ_ASSERT(w != NULL);
    w->sim = s;
    w->check = raftcheck_create(RAFTKV_GROUPS);
    /* Snapshots every 4..48 applied entries, keeping 0..16 below: followers behind a snapshot,
     * chunked transfers and restarts from snapshots happen in every run. */
    w->snapshot_entries = (uint32_t)rq_rng_range(sim_workload_rng(s), 4, 48);
    w->snapshot_trailing = (uint32_t)rq_rng_range(sim_workload_rng(s), 0, 16);
    /* Membership changes in three seeds of four; with 5 or more servers the last two start as
     * spares outside the bootstrap configuration. */
    w->reconfigure = rq_rng_chance(sim_workload_rng(s), 750000);
    return w;
}

static void raftkv_fini(void *arg) {
    struct raftkv *w = arg;
    raftcheck_destroy(w->check);
    free(w);
}

/* Faults stop: every server loses power and restarts, so that what survives is only what was
 * durable; the groups must then recover and make progress. */
static void raftkv_on_heal(struct sim *s, void *arg) {
    struct raftkv *w = arg;
    sim_power_cycle_servers(s);
    if (w->bugs & RAFTKV_BUG_NO_HEAL) sim_isolate_servers(s);
    w->heal_ns = sim_now(s);
    memset(w->first_write_after_heal_ns, 0, sizeof w->first_write_after_heal_ns);
}

static void raftkv_on_end(struct sim *s, void *arg) {
    struct raftkv *w = arg;
    if (w->heal_ns != 0 && sim_now(s) >= w->heal_ns + RAFTKV_LIVENESS_NS) {
        for (uint32_t g = 1; g <= RAFTKV_GROUPS; g++) {
            uint64_t t = w->first_write_after_heal_ns[g];
            if (t == 0 || t > w->heal_ns + RAFTKV_LIVENESS_NS) {
                sim_fail(s, "raft-kv: liveness: group %u committed no new write within %.1f s of "
                         "the heal", g, (double)RAFTKV_LIVENESS_NS / 1e9);
                return;
            }
        }
    }
    for (uint32_t k = 0; k < RAFTKV_KEYS; k++) {
        char why[LINCHECK_WHY_MAX];
        enum lincheck_result r = lincheck_register(w->keys[k].ops, w->keys[k].count, 0,
                                                   RAFTKV_LINCHECK_BUDGET, why, sizeof why);
        if (r == LINCHECK_VIOLATION) {
            sim_fail(s, "raft-kv: key %u is not linearizable: %s", k, why);
            return;
        }
        if (r == LINCHECK_UNDECIDED) sim_note(s, 0, "raft-kv: key %u undecided: %s", k, why);
    }
    sim_note(s, 0, "raft-kv: %" PRIu64 " acknowledged (%" PRIu64 " reads, %" PRIu64
             " by ReadIndex, %" PRIu64 " by lease), %" PRIu64 " unknown, committed %" PRIu64
             "/%" PRIu64 " entries, %" PRIu64 " unchecked, %" PRIu64 " snapshots (every %" PRIu32
             " entries) and %" PRIu64 " restores, %" PRIu64 " membership changes, %" PRIu64
             " leadership transfers", w->acked, w->reads, w->reads_by_index, w->reads_by_lease,
             w->unknown, raftcheck_applied_last(w->check, 1), raftcheck_applied_last(w->check, 2),
             raftcheck_unchecked(w->check), w->snapshots, w->snapshot_entries, w->restores,
             w->changes, w->transfers);
}

const struct sim_workload sim_workload_raftkv = {
    .name = "raft-kv",
    .server_ops = &kv_server_ops,
    .client_ops = &kv_client_ops,
    .default_clients = 4,
    .corrupt_prefix = NULL,
    .init = raftkv_init,
    .fini = raftkv_fini,
    .on_heal = raftkv_on_heal,
    .on_end = raftkv_on_end,
};

void raftkv_inject_bugs(struct sim *s, uint32_t bugs) {
    RQ_ASSERT(sim_config(s)->workload == &sim_workload_raftkv);
    struct raftkv *w = sim_workload_state(s);
    w->bugs = bugs;
}
