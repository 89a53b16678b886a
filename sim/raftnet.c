/* A synchronous in-memory world for Raft groups; see raftnet.h. */
#define _POSIX_C_SOURCE 200809L  /* strtok_r */
#include "sim/raftnet.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "sim/raftnet_internal.h"

static uint8_t *dup_bytes(const uint8_t *p, uint32_t n) {
    if (n == 0) return NULL;
    uint8_t *c = malloc(n);
    RQ_ASSERT(c != NULL);
    memcpy(c, p, n);
    return c;
}

void raftnet_stored_set(struct raftnet_stored *s, const struct raft_entry *e) {
    free(s->data);
    s->index = e->index;
    s->term = e->term;
    s->type = e->type;
    s->data_size = e->data_size;
    s->data = dup_bytes(e->data, e->data_size);
}

void raftnet_stored_free(struct raftnet_stored *s) {
    free(s->data);
    memset(s, 0, sizeof *s);
}

/* ---- the message queue ----------------------------------------------------------------------- */

static struct raftnet_msg *queue_at(const struct raftnet *net, uint32_t i) {
    return &net->queue[(net->queue_head + i) % RAFTNET_QUEUE_MAX];
}

void raftnet_inject(struct raftnet *net, const struct raft_msg *m) {
    if (net->queue_count == RAFTNET_QUEUE_MAX) return;   /* a full network drops */
    struct raftnet_msg *q = queue_at(net, net->queue_count++);
    q->m = *m;
    size_t bytes = 0;
    for (uint32_t i = 0; i < m->entry_count; i++) bytes += m->entries[i].data_size;
    q->data = bytes ? malloc(bytes) : NULL;
    size_t at = 0;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        q->entries[i] = m->entries[i];
        if (m->entries[i].data_size) memcpy(q->data + at, m->entries[i].data, m->entries[i].data_size);
        q->entries[i].data = m->entries[i].data_size ? q->data + at : NULL;
        at += m->entries[i].data_size;
    }
    q->m.entries = q->entries;
    q->chunk = NULL;
    if (m->chunk_size > 0) {
        q->chunk = malloc(m->chunk_size);
        RQ_ASSERT(q->chunk != NULL);
        memcpy(q->chunk, m->chunk, m->chunk_size);
    }
    q->m.chunk = q->chunk;
}

static void queue_free(struct raftnet_msg *q) {
    free(q->data);
    free(q->chunk);
}

/* Points a moved message's entries at its own array (their data is on the heap and stays). */
static void queue_fix(struct raftnet_msg *q) {
    q->m.entries = q->entries;
}

/* Removes the k-th queued message into *out, keeping the others in order: the shorter side of the
 * ring moves by one. The caller frees out->data. */
static void queue_take(struct raftnet *net, uint32_t k, struct raftnet_msg *out) {
    RQ_ASSERT(k < net->queue_count);
    *out = *queue_at(net, k);
    queue_fix(out);
    if (k < net->queue_count / 2) {
        for (uint32_t i = k; i > 0; i--) {
            *queue_at(net, i) = *queue_at(net, i - 1);
            queue_fix(queue_at(net, i));
        }
        net->queue_head = (net->queue_head + 1) % RAFTNET_QUEUE_MAX;
    } else {
        for (uint32_t i = k; i + 1 < net->queue_count; i++) {
            *queue_at(net, i) = *queue_at(net, i + 1);
            queue_fix(queue_at(net, i));
        }
    }
    net->queue_count--;
}

static int matches(const struct raft_msg *m, uint8_t type, uint32_t from, uint32_t to) {
    return (type == 0 || m->type == type) && (from == 0 || m->from == from) &&
           (to == 0 || m->to == to);
}

uint32_t raftnet_queued(const struct raftnet *net, uint8_t type, uint32_t from, uint32_t to) {
    uint32_t c = 0;
    for (uint32_t i = 0; i < net->queue_count; i++) c += matches(&queue_at(net, i)->m, type, from, to);
    return c;
}

const struct raft_msg *raftnet_peek(const struct raftnet *net, uint8_t type, uint32_t from,
                                    uint32_t to) {
    for (uint32_t i = 0; i < net->queue_count; i++)
        if (matches(&queue_at(net, i)->m, type, from, to)) return &queue_at(net, i)->m;
    return NULL;
}

uint32_t raftnet_drop(struct raftnet *net, uint8_t type, uint32_t from, uint32_t to) {
    uint32_t kept = 0, dropped = 0, n = net->queue_count;
    for (uint32_t i = 0; i < n; i++) {
        struct raftnet_msg tmp = *queue_at(net, i);
        if (matches(&tmp.m, type, from, to)) {
            queue_free(&tmp);
            dropped++;
            continue;
        }
        struct raftnet_msg *dst = queue_at(net, kept++);
        *dst = tmp;
        dst->m.entries = dst->entries;
        for (uint32_t k = 0; k < tmp.m.entry_count; k++) {
            size_t off = (size_t)(tmp.entries[k].data - tmp.data);
            dst->entries[k].data = tmp.entries[k].data_size ? tmp.data + off : NULL;
        }
    }
    net->queue_count = kept;
    return dropped;
}

/* ---- a node's outputs ------------------------------------------------------------------------ */

static void record_leader(struct raftnet *net, uint32_t id) {
    struct raft *r = net->nodes[id].raft;
    if (raft_role(r) != RAFT_LEADER) return;
    uint64_t t = raft_term(r);
    if (t >= RAFTNET_TERMS_MAX) return;
    if (net->leader_of_term[t] != 0 && net->leader_of_term[t] != id && net->why[0] == 0)
        snprintf(net->why, sizeof net->why, "election safety: n%u and n%u both led term %" PRIu64,
                 net->leader_of_term[t], id, t);
    net->leader_of_term[t] = id;
}

static void make_durable(struct raftnet_node *nd, uint64_t last, int stored_log) {
    struct raft *r = nd->raft;
    /* A follower applies committed entries its log has not made durable yet, and may snapshot
     * them: entries up to the durable snapshot are durable in it (raft may have compacted them
     * away, or restarted above them), so a durable log that ends below the snapshot resumes
     * after it. With a stored log the entries are stored anyway (raft keeps them in memory until
     * they are durable). */
    if (!stored_log && nd->log_count < nd->snap_index) {
        nd->log_count = nd->snap_index;
        if (nd->log_first <= nd->snap_index) nd->log_first = nd->snap_index + 1;
    }
    for (uint64_t i = nd->log_count + 1; i <= last; i++) {
        const struct raft_entry *e = raft_entry_at(r, i);
        RQ_ASSERT(e != NULL && i <= RAFTNET_LOG_MAX);
        raftnet_stored_set(&nd->log[i - 1], e);
    }
    if (last > nd->log_count) {
        nd->log_count = last;
        raft_persisted_entry(r, last, nd->log[last - 1].term);
    }
}

static int same_entry(const struct raftnet_stored *a, const struct raftnet_stored *b) {
    return a->index == b->index && a->term == b->term && a->type == b->type &&
           a->data_size == b->data_size &&
           (a->data_size == 0 || memcmp(a->data, b->data, a->data_size) == 0);
}

/* State machine safety (paper figure 3): no two nodes apply different entries at one index. */
void raftnet_apply(struct raftnet *net, uint32_t id, const struct raft_entry *e) {
    struct raftnet_node *nd = &net->nodes[id];
    RQ_ASSERT(e != NULL && nd->applied_count < RAFTNET_LOG_MAX);
    RQ_ASSERT(e->index == nd->applied_count + 1);
    struct raftnet_stored *a = &nd->applied[nd->applied_count++];
    raftnet_stored_set(a, e);
    if (e->index > net->truth_count) {
        RQ_ASSERT(e->index == net->truth_count + 1);
        net->truth_commit_term[net->truth_count] = raft_term(nd->raft);
        struct raft_membership conf;
        raft_membership_get(nd->raft, &conf);
        uint32_t voters = 0;
        for (uint32_t k = 0; k < conf.count; k++)
            if (conf.voter[k] && conf.ids[k] <= net->n) voters |= 1u << conf.ids[k];
        net->truth_voters[net->truth_count] = voters;
        net->truth_voter_count[net->truth_count] = (uint8_t)raft_membership_voters(&conf);
        raftnet_stored_set(&net->truth[net->truth_count++], e);
    } else if (!same_entry(a, &net->truth[e->index - 1]) && net->why[0] == 0) {
        snprintf(net->why, sizeof net->why, "state machine safety: n%u applied (%" PRIu64
                 ",%" PRIu64 ") where another node applied term %" PRIu64, id, e->index, e->term,
                 net->truth[e->index - 1].term);
    }
}

/* Drains one node's outputs in the order raft.h prescribes. */
static void drain(struct raftnet *net, uint32_t id) {
    struct raftnet_node *nd = &net->nodes[id];
    struct raft *r = nd->raft;
    for (int round = 0; round < 8; round++) {
        record_leader(net, id);
        raftnet_snapshot_receive(net, id);
        uint64_t term, tfrom, first, last;
        uint32_t vote;
        int hs = raft_hardstate_pending(r, &term, &vote);
        int entries = raft_persist_pending(r, &tfrom, &first, &last);
        if (hs) {
            nd->pending_term = term;
            nd->pending_vote = vote;
            nd->hs_pending = 1;
        }
        if (entries) {
            /* The model holds handed entries in the raft's own log until they are durable; a
             * truncation drops the durable suffix at once (it is ordered before later appends). */
            uint64_t from = tfrom > nd->log_first ? tfrom : nd->log_first;
            if (tfrom != 0 && nd->log_count >= from) {
                for (uint64_t i = from; i <= nd->log_count; i++) raftnet_stored_free(&nd->log[i - 1]);
                nd->log_count = from - 1;
            }
            if (nd->pending_last >= first || tfrom != 0) nd->pending_last = first - 1;
            raft_persist_handed(r, last);
            nd->pending_last = last;
        }
        raftnet_snapshot_serve(net, id);
        raftnet_loads_serve(net, id);
        const struct raft_msg *msgs;
        uint32_t n = raft_outbox(r, &msgs);
        for (uint32_t i = 0; i < n; i++) raftnet_inject(net, &msgs[i]);
        raft_outbox_clear(r);
        uint64_t a0, a1;
        if (raft_apply_pending(r, &a0, &a1)) {
            for (uint64_t i = a0; i <= a1; i++) raftnet_apply(net, id, raft_entry_at(r, i));
            raft_applied(r, a1);
        }
        raftnet_snapshot_maybe_take(net, id); /* as the host: each drain (raft_snapshot_shrink) */
        const struct raft_read_ready *reads;
        uint32_t nr = raft_reads_ready(r, &reads);
        for (uint32_t i = 0; i < nr && nd->read_count < RAFTNET_READS_MAX; i++)
            nd->reads[nd->read_count++] = reads[i];
        raft_reads_clear(r);
        if (nd->manual_persist) return;
        if (!nd->hs_pending && nd->pending_last <= nd->log_count) return;
        raftnet_persist(net, id);   /* may produce more output: go round again */
        return;
    }
}

/* The hard state and the log are separate files in a real node (store/hardstate.h, store.h): a
 * crash can keep either without the other, so each can be made durable alone. */
void raftnet_persist_part(struct raftnet *net, uint32_t id, int hardstate, int log) {
    struct raftnet_node *nd = &net->nodes[id];
    if (nd->raft == NULL) return;
    if (hardstate && nd->hs_pending) {
        nd->hs_pending = 0;
        nd->hs_term = nd->pending_term;
        nd->hs_vote = nd->pending_vote;
        raft_persisted_hardstate(nd->raft, nd->hs_term, nd->hs_vote);
    }
    if (log && nd->pending_last > nd->log_count) make_durable(nd, nd->pending_last, net->cfg.stored_log);
    drain(net, id);
}

void raftnet_persist(struct raftnet *net, uint32_t id) { raftnet_persist_part(net, id, 1, 1); }

/* ---- world ----------------------------------------------------------------------------------- */

static void start_node(struct raftnet *net, uint32_t id) {
    struct raftnet_node *nd = &net->nodes[id];
    struct raft_config c = net->cfg;
    c.id = id;
    /* A seed of its own per node and per start (io.h): a restarted node must not repeat its
     * earlier life's random choices, such as the tokens of its forwarded reads. */
    c.seed = net->cfg.seed + id * 7919u + nd->hs_term + (uint64_t)nd->starts++ * 104729u;
    nd->raft = raft_create(&c, nd->hs_term, nd->hs_vote);
    RQ_ASSERT(nd->raft != NULL);
    if (nd->log_first == 0) nd->log_first = 1;
    /* The state machine is rebuilt from the snapshot and then the log. */
    raftnet_snapshot_restore(net, id);
    nd->pending_last = nd->log_count;
    drain(net, id);
}

struct raftnet *raftnet_create(uint32_t n, const struct raft_config *cfg) {
    RQ_ASSERT(n >= 1 && n <= RAFTNET_NODES_MAX);
    struct raftnet *net = calloc(1, sizeof *net);
    RQ_ASSERT(net != NULL);
    net->queue = calloc(RAFTNET_QUEUE_MAX, sizeof *net->queue);
    RQ_ASSERT(net->queue != NULL);
    net->n = n;
    if (cfg != NULL) net->cfg = *cfg;
    else raft_config_default(&net->cfg);
    net->cfg.group = 1;
    net->chunk_size = 40;
    if (net->cfg.voter_count == 0 || net->cfg.voter_count > n) {
        net->cfg.voter_count = n;
        for (uint32_t i = 0; i < n; i++) net->cfg.voters[i] = i + 1;
    }
    for (uint32_t id = 1; id <= n; id++) start_node(net, id);
    return net;
}

static void free_node(struct raftnet_node *nd) {
    raft_destroy(nd->raft);
    nd->raft = NULL;
    /* Records beyond the counts hold nothing: truncations and restarts free what they drop (and
     * a fuzzer creating thousands of worlds a second does not touch the untouched pages). */
    for (uint64_t i = 0; i < nd->log_count; i++) raftnet_stored_free(&nd->log[i]);
    for (uint64_t i = 0; i < nd->applied_count; i++) raftnet_stored_free(&nd->applied[i]);
    free(nd->snap_file);
    free(nd->recv_file);
}

void raftnet_destroy(struct raftnet *net) {
    if (net == NULL) return;
    for (uint32_t id = 1; id <= net->n; id++) free_node(&net->nodes[id]);
    for (uint64_t i = 0; i < net->truth_count; i++) raftnet_stored_free(&net->truth[i]);
    raftnet_drop(net, 0, 0, 0);
    free(net->queue);
    free(net);
}

struct raft *raftnet_raft(struct raftnet *net, uint32_t id) { return net->nodes[id].raft; }

void raftnet_tick(struct raftnet *net, uint32_t id) {
    if (net->nodes[id].raft == NULL) return;
    raft_tick(net->nodes[id].raft);
    drain(net, id);
}

void raftnet_tick_all(struct raftnet *net) {
    for (uint32_t id = 1; id <= net->n; id++) raftnet_tick(net, id);
}

/* Hands a message taken off the queue to its node, unless the link is cut or the node is down;
 * frees it. Returns 1 when it was delivered. */
static uint32_t step_taken(struct raftnet *net, struct raftnet_msg *q) {
    struct raftnet_node *to = &net->nodes[q->m.to];
    uint32_t delivered = 0;
    if (!net->cut[q->m.from][q->m.to] && to->raft != NULL) {
        raft_step(to->raft, &q->m);
        drain(net, q->m.to);
        delivered = 1;
    }
    queue_free(q);
    return delivered;
}

uint32_t raftnet_deliver(struct raftnet *net, uint32_t max) {
    uint32_t done = 0;
    while (net->queue_count > 0 && done < max) {
        struct raftnet_msg q;
        queue_take(net, 0, &q);
        done += step_taken(net, &q);
    }
    return done;
}

uint32_t raftnet_deliver_at(struct raftnet *net, uint32_t k) {
    struct raftnet_msg q;
    queue_take(net, k, &q);
    return step_taken(net, &q);
}

uint32_t raftnet_duplicate_at(struct raftnet *net, uint32_t k) {
    RQ_ASSERT(k < net->queue_count);
    if (net->queue_count == RAFTNET_QUEUE_MAX) return 0;
    struct raft_msg m = queue_at(net, k)->m;   /* inject copies the entries and their data */
    raftnet_inject(net, &m);
    return 1;
}

void raftnet_drop_at(struct raftnet *net, uint32_t k) {
    struct raftnet_msg q;
    queue_take(net, k, &q);
    queue_free(&q);
}

void raftnet_cut(struct raftnet *net, uint32_t a, uint32_t b) {
    net->cut[a][b] = 1;
    net->cut[b][a] = 1;
}

void raftnet_isolate(struct raftnet *net, uint32_t id) {
    for (uint32_t o = 1; o <= net->n; o++)
        if (o != id) raftnet_cut(net, id, o);
}

void raftnet_heal(struct raftnet *net) { memset(net->cut, 0, sizeof net->cut); }

void raftnet_heal_link(struct raftnet *net, uint32_t a, uint32_t b) {
    net->cut[a][b] = 0;
    net->cut[b][a] = 0;
}

void raftnet_set_manual_persist(struct raftnet *net, uint32_t id, int manual) {
    net->nodes[id].manual_persist = manual;
}

int raftnet_propose(struct raftnet *net, uint32_t id, const char *data) {
    uint64_t index;
    int err = raft_propose(net->nodes[id].raft, data, (uint32_t)strlen(data), &index);
    drain(net, id);
    return err;
}

void raftnet_crash(struct raftnet *net, uint32_t id) {
    struct raftnet_node *nd = &net->nodes[id];
    raft_destroy(nd->raft);
    nd->raft = NULL;
    nd->hs_pending = 0;
    nd->pending_last = nd->log_count;
}

void raftnet_restart(struct raftnet *net, uint32_t id) {
    RQ_ASSERT(net->nodes[id].raft == NULL);
    start_node(net, id);
}

uint32_t raftnet_leader(const struct raftnet *net) {
    uint32_t best = 0;
    uint64_t best_term = 0;
    for (uint32_t id = 1; id <= net->n; id++) {
        struct raft *r = net->nodes[id].raft;
        if (r != NULL && raft_role(r) == RAFT_LEADER && raft_term(r) >= best_term) {
            best = id;
            best_term = raft_term(r);
        }
    }
    return best;
}

uint32_t raftnet_elect(struct raftnet *net, uint32_t max_ticks) {
    for (uint32_t t = 0; t < max_ticks; t++) {
        raftnet_tick_all(net);
        raftnet_deliver(net, 100000);
        uint32_t l = raftnet_leader(net);
        if (l != 0) return l;
    }
    return 0;
}

/* Log matching (paper figure 3): two logs holding an entry with the same index and term are
 * identical up to it. */
static int check_log_matching(struct raftnet *net, uint32_t a, uint32_t b) {
    struct raft *ra = net->nodes[a].raft, *rb = net->nodes[b].raft;
    uint64_t last = raft_last_index(ra) < raft_last_index(rb) ? raft_last_index(ra)
                                                               : raft_last_index(rb);
    /* Only entries both still hold (or remember as their log's base) can be compared. */
    uint64_t lo = raft_first_index(ra) > raft_first_index(rb) ? raft_first_index(ra)
                                                               : raft_first_index(rb);
    lo--;
    uint64_t i = last;
    while (i > lo && raft_term_at(ra, i) != raft_term_at(rb, i)) i--;
    /* No index both hold with one term (possible once lo, a compacted log's base, is above 0):
     * the logs have nothing in common to match. */
    if (raft_term_at(ra, i) != raft_term_at(rb, i)) return 0;
    for (; i > 0 && i >= lo; i--) {
        if (raft_term_at(ra, i) == raft_term_at(rb, i)) continue;
        snprintf(net->why, sizeof net->why, "log matching: n%u and n%u agree above %" PRIu64
                 " but differ at it", a, b, i);
        return -1;
    }
    return 0;
}

/* Leader completeness (paper figure 3): an entry committed in a term is held by the leaders of
 * every later term. A leader of an older term may still run cut off from the majority (without
 * check-quorum it never steps down), so it is not held to entries committed after its term. */
static int check_leader_completeness(struct raftnet *net, uint32_t l) {
    struct raft *r = net->nodes[l].raft;
    /* Entries below the log's base are in the leader's snapshot, which holds applied (so
     * committed) entries only: they are checked when the snapshot is loaded. */
    for (uint64_t i = raft_first_index(r) - 1; i <= net->truth_count; i++) {
        if (i == 0 || net->truth_commit_term[i - 1] >= raft_term(r)) continue;
        if (raft_term_at(r, i) == net->truth[i - 1].term) continue;
        snprintf(net->why, sizeof net->why, "leader completeness: leader n%u of term %" PRIu64
                 " lacks (%" PRIu64 ",%" PRIu64 "), committed by term %" PRIu64, l, raft_term(r),
                 i, net->truth[i - 1].term, net->truth_commit_term[i - 1]);
        return -1;
    }
    return 0;
}

int raftnet_check(struct raftnet *net) {
    if (net->why[0] != 0) return -1;
    for (uint32_t a = 1; a <= net->n; a++) {
        if (net->nodes[a].raft == NULL) continue;
        record_leader(net, a);
        for (uint32_t b = a + 1; b <= net->n; b++)
            if (net->nodes[b].raft != NULL && check_log_matching(net, a, b) != 0) return -1;
    }
    if (net->why[0] != 0) return -1;
    for (uint32_t l = 1; l <= net->n; l++) {
        struct raft *r = net->nodes[l].raft;
        if (r != NULL && raft_role(r) == RAFT_LEADER && check_leader_completeness(net, l) != 0)
            return -1;
    }
    return 0;
}

/* ---- scripts --------------------------------------------------------------------------------- */

static uint8_t type_by_name(const char *name) {
    if (strcmp(name, "any") == 0) return 0;
    for (uint8_t t = 1; t <= RAFT_MSG_TYPE_MAX; t++)
        if (strcmp(raft_msg_type_name(t), name) == 0) return t;
    return 0xFF;
}

static uint64_t observe(struct raftnet *net, const char *what, uint32_t id, int *ok) {
    struct raft *r = net->nodes[id].raft;
    *ok = r != NULL;
    if (r == NULL) return 0;
    if (strcmp(what, "term") == 0) return raft_term(r);
    if (strcmp(what, "vote") == 0) return raft_vote(r);
    if (strcmp(what, "leader") == 0) return raft_leader(r);
    if (strcmp(what, "commit") == 0) return raft_commit(r);
    if (strcmp(what, "last") == 0) return raft_last_index(r);
    if (strcmp(what, "durable") == 0) return raft_durable_index(r);
    if (strcmp(what, "applied") == 0) return net->nodes[id].applied_count;
    if (strcmp(what, "first") == 0) return raft_first_index(r);
    struct raft_membership conf;
    raft_membership_get(r, &conf);
    if (strcmp(what, "voters") == 0) return raft_membership_voters(&conf);
    if (strcmp(what, "members") == 0) return conf.count;
    if (strcmp(what, "snap") == 0) return net->nodes[id].snap_index;
    if (strcmp(what, "transferring") == 0) return raft_transfer_target(r);
    struct raft_stats st;
    raft_stats_get(r, &st);
    if (strcmp(what, "rejections") == 0) return st.rejections_received;
    if (strcmp(what, "snapshots") == 0) return st.snapshots_taken;
    if (strcmp(what, "elections") == 0) return st.elections_started;
    if (strcmp(what, "chunks") == 0) return st.snapshot_chunks_sent;
    if (strcmp(what, "installed") == 0) return st.snapshots_installed;
    if (strcmp(what, "transfers") == 0) return st.transfers_started;
    if (strcmp(what, "timeouts-now") == 0) return st.timeouts_now_sent;
    if (strcmp(what, "transfers-aborted") == 0) return st.transfers_aborted;
    if (strcmp(what, "loads") == 0) return st.loads_requested;
    if (strcmp(what, "loaded") == 0) return st.loaded_entries_sent;
    if (strcmp(what, "loads-ignored") == 0) return net->loads_ignored;
    *ok = 0;
    return 0;
}

/* Stops delivering the moment id leads, so the script sees the new leader's first messages. */
static int elect(struct raftnet *net, uint32_t id) {
    for (uint32_t round = 0; round < 200; round++) {
        raftnet_tick(net, id);
        for (uint32_t k = 0; k < 100000 && net->queue_count > 0; k++) {
            if (raft_role(net->nodes[id].raft) == RAFT_LEADER) return 0;
            raftnet_deliver(net, 1);
        }
        if (raft_role(net->nodes[id].raft) == RAFT_LEADER) return 0;
    }
    return -1;
}

/* inject TYPE FROM TO TERM A B C D: A.. by type (see raftnet.h). */
static int inject(struct raftnet *net, int argc, char **argv) {
    uint64_t v[7] = {0};
    for (int i = 2; i < argc && i < 9; i++) v[i - 2] = strtoull(argv[i], NULL, 10);
    struct raft_msg m = {.type = type_by_name(argv[1]), .group = 1, .from = (uint32_t)v[0],
                         .to = (uint32_t)v[1], .term = v[2]};
    if (m.type == 0 || m.type == 0xFF || m.from < 1 || m.from > net->n || m.to < 1 ||
        m.to > net->n)
        return -1;
    switch (m.type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        m.last_index = v[3]; m.last_term = v[4];
        m.transfer = (uint8_t)(m.type == RAFT_MSG_VOTE && v[5] != 0);
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: m.reject = (uint8_t)(v[3] != 0); break;
    case RAFT_MSG_APPEND: m.prev_index = v[3]; m.prev_term = v[4]; m.commit = v[5]; break;
    case RAFT_MSG_APPEND_RESP:
        m.index = v[3]; m.reject = (uint8_t)(v[4] != 0); m.hint_index = v[5]; m.hint_term = v[6];
        break;
    case RAFT_MSG_HEARTBEAT: m.commit = v[3]; break;
    case RAFT_MSG_INSTALL_SNAPSHOT:   /* an empty chunk: enough to test what is refused */
        m.snap_index = v[3]; m.snap_term = v[4]; m.offset = v[5]; m.chunk_last = v[6] != 0;
        break;
    case RAFT_MSG_SNAPSHOT_RESP: m.snap_index = v[3]; m.offset = v[4]; break;
    case RAFT_MSG_TIMEOUT_NOW: m.last_index = v[3]; break;
    default: break;
    }
    raftnet_inject(net, &m);
    return 0;
}

/* expect, expect-min, expect-queued, check: returns 0, -1 (err set), or 1 when argv is another
 * command. */
static int expectation(struct raftnet *net, int argc, char **argv, char *err, size_t cap) {
    const char *c = argv[0];
    if (!strcmp(c, "check") && argc == 1) {
        if (raftnet_check(net) == 0) return 0;
        snprintf(err, cap, "%s", net->why);
        return -1;
    }
    if (!strcmp(c, "expect-queued") && argc == 5) {
        uint8_t t = type_by_name(argv[1]);
        uint32_t got = raftnet_queued(net, t, (uint32_t)strtoul(argv[2], NULL, 10),
                                      (uint32_t)strtoul(argv[3], NULL, 10));
        if (t != 0xFF && got == strtoul(argv[4], NULL, 10)) return 0;
        snprintf(err, cap, "%u queued", got);
        return -1;
    }
    if (!strcmp(c, "expect-read") && argc == 4) {
        uint32_t id = (uint32_t)strtoul(argv[1], NULL, 10);
        uint64_t ctx = strtoull(argv[2], NULL, 10);
        if (id < 1 || id > net->n) { snprintf(err, cap, "no node %u", id); return -1; }
        const struct raftnet_node *nd = &net->nodes[id];
        for (uint32_t i = 0; i < nd->read_count; i++) {
            if (nd->reads[i].ctx != ctx) continue;
            if (strcmp(argv[3], "none") != 0 && nd->reads[i].index == strtoull(argv[3], NULL, 10))
                return 0;
            snprintf(err, cap, "read %" PRIu64 " confirmed with index %" PRIu64, ctx,
                     nd->reads[i].index);
            return -1;
        }
        if (strcmp(argv[3], "none") == 0) return 0;
        snprintf(err, cap, "read %" PRIu64 " not confirmed", ctx);
        return -1;
    }
    if ((strcmp(c, "expect") && strcmp(c, "expect-min")) || argc != 4) return 1;
    uint32_t id = (uint32_t)strtoul(argv[2], NULL, 10);
    if (id < 1 || id > net->n || net->nodes[id].raft == NULL) {
        snprintf(err, cap, "n%u is not running", id);
        return -1;
    }
    if (!strcmp(argv[1], "role")) {
        const char *role = raft_role_name(raft_role(net->nodes[id].raft));
        if (strcmp(role, argv[3]) == 0) return 0;
        snprintf(err, cap, "role is %s", role);
        return -1;
    }
    int ok;
    uint64_t v = observe(net, argv[1], id, &ok);
    uint64_t want = strtoull(argv[3], NULL, 10);
    if (ok && (c[6] == '\0' ? v == want : v >= want)) return 0;
    snprintf(err, cap, "%s is %" PRIu64, argv[1], v);
    return -1;
}

/* The result a command expects, by name (ok, einval, ebusy, enotleader); returns 0 with *rc, or
 * -1 for an unknown name. */
static int result_named(const char *name, int *rc) {
    static const struct { const char *name; int rc; } results[] = {
        {"ok", 0}, {"einval", RQ_EINVAL}, {"ebusy", RQ_EBUSY}, {"enotleader", RQ_ENOTLEADER}};
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
        if (strcmp(results[i].name, name) != 0) continue;
        *rc = results[i].rc;
        return 0;
    }
    return -1;
}

/* change ID KIND NODE RESULT: a membership change at ID (KIND add, promote or remove) must
 * return RESULT. */
static int change(struct raftnet *net, uint32_t id, const char *kind, uint32_t node,
                  const char *want_name, char *err, size_t cap) {
    static const char *const kinds[] = {NULL, "add", "promote", "remove"};
    int k = 1, want;
    while (k <= 3 && strcmp(kinds[k], kind) != 0) k++;
    if (k > 3 || result_named(want_name, &want) != 0 || net->nodes[id].raft == NULL) {
        snprintf(err, cap, "bad change");
        return -1;
    }
    uint64_t index;
    int rc = raft_change_membership(net->nodes[id].raft, (enum raft_change)k, node, &index);
    drain(net, id);
    if (rc == want) return 0;
    snprintf(err, cap, "change returned %d, not %s", rc, want_name);
    return -1;
}

/* transfer A B [RESULT]: raft_transfer_leader at A must return RESULT (default ok). */
static int transfer(struct raftnet *net, int argc, char **argv, char *err, size_t cap) {
    uint32_t a = (uint32_t)strtoul(argv[1], NULL, 10);
    uint32_t b = (uint32_t)strtoul(argv[2], NULL, 10);
    const char *want_name = argc == 4 ? argv[3] : "ok";
    int want;
    if (result_named(want_name, &want) != 0) {
        snprintf(err, cap, "unknown result %s", want_name);
        return -1;
    }
    int rc = raft_transfer_leader(net->nodes[a].raft, b);
    drain(net, a);
    if (rc == want) return 0;
    snprintf(err, cap, "transfer returned %d, not %s", rc, want_name);
    return -1;
}

/* Runs one command (argv[0..argc)); returns 0 or -1 with err set. */
static int command(struct raftnet *net, int argc, char **argv, char *err, size_t cap) {
    int rc = expectation(net, argc, argv, err, cap);
    if (rc != 1) return rc;
    const char *c = argv[0];
    uint32_t a = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 0;
    uint32_t b = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 0;
    int needs_node = strcmp(c, "tick") && strcmp(c, "deliver") && strcmp(c, "heal") &&
                     strcmp(c, "drop") && strcmp(c, "inject") && strcmp(c, "deliver-one") &&
                     strcmp(c, "deliver-at") && strcmp(c, "chunk-size") && strcmp(c, "duplicate") &&
                     strcmp(c, "loads");
    if (needs_node && (a < 1 || a > net->n)) {
        snprintf(err, cap, "no node %u", a);
        return -1;
    }
    if (!strcmp(c, "tick") && argc == 2) {
        for (uint32_t i = 0; i < a; i++) {
            raftnet_tick_all(net);
            raftnet_deliver(net, 100000);
        }
    } else if (!strcmp(c, "ticks") && argc == 3) {
        for (uint32_t i = 0; i < b; i++) raftnet_tick(net, a);
    } else if (!strcmp(c, "deliver") && argc == 1) {
        raftnet_deliver(net, 100000);
    } else if (!strcmp(c, "deliver-one") && argc == 1) {
        raftnet_deliver(net, 1);
    } else if (!strcmp(c, "deliver-at") && argc == 2) {
        raftnet_deliver_at(net, a);
    } else if (!strcmp(c, "duplicate") && argc == 2 && a < net->queue_count) {
        raftnet_duplicate_at(net, a);
    } else if (!strcmp(c, "inject") && argc >= 5) {
        if (inject(net, argc, argv) != 0) { snprintf(err, cap, "bad message"); return -1; }
    } else if (!strcmp(c, "elect") && argc == 2) {
        if (elect(net, a) != 0) { snprintf(err, cap, "n%u did not become leader", a); return -1; }
    } else if ((!strcmp(c, "propose") || !strcmp(c, "reject")) && argc == 3) {
        rc = raftnet_propose(net, a, argv[2]);
        if ((rc == 0) != (c[0] == 'p')) { snprintf(err, cap, "propose returned %d", rc); return -1; }
    } else if (!strcmp(c, "transfer") && (argc == 3 || argc == 4)) {
        if (net->nodes[a].raft == NULL) { snprintf(err, cap, "n%u is not running", a); return -1; }
        return transfer(net, argc, argv, err, cap);
    } else if ((!strcmp(c, "read") || !strcmp(c, "read-lease")) && argc == 3) {
        struct raft *r = net->nodes[a].raft;
        uint64_t ctx = strtoull(argv[2], NULL, 10);
        rc = c[4] == '\0' ? raft_read_index(r, ctx) : raft_read_lease(r, ctx);
        drain(net, a);
        if (rc != 0) { snprintf(err, cap, "read returned %d", rc); return -1; }
    } else if (!strcmp(c, "isolate") && argc == 2) {
        raftnet_isolate(net, a);
    } else if (!strcmp(c, "cut") && argc == 3) {
        raftnet_cut(net, a, b);
    } else if (!strcmp(c, "heal") && argc == 1) {
        raftnet_heal(net);
    } else if (!strcmp(c, "crash") && argc == 2) {
        raftnet_crash(net, a);
    } else if (!strcmp(c, "restart") && argc == 2) {
        raftnet_restart(net, a);
    } else if (!strcmp(c, "manual") && argc == 2) {
        raftnet_set_manual_persist(net, a, 1);
    } else if (!strcmp(c, "persist") && argc == 2) {
        raftnet_persist(net, a);
    } else if (!strcmp(c, "persist-hs") && argc == 2) {
        raftnet_persist_part(net, a, 1, 0);
    } else if (!strcmp(c, "persist-log") && argc == 2) {
        raftnet_persist_part(net, a, 0, 1);
    } else if (!strcmp(c, "change") && argc == 5) {
        if (change(net, a, argv[2], (uint32_t)strtoul(argv[3], NULL, 10), argv[4], err, cap) != 0)
            return -1;
    } else if (!strcmp(c, "snapshot") && argc == 2) {
        raftnet_snapshot(net, a);
    } else if (!strcmp(c, "shrink") && argc == 2 && net->nodes[a].raft != NULL) {
        raft_snapshot_shrink(net->nodes[a].raft);
        drain(net, a);
    } else if (!strcmp(c, "chunk-size") && argc == 2 && a >= 1 && a <= RAFT_SNAPSHOT_CHUNK_MAX) {
        net->chunk_size = a;
    } else if (!strcmp(c, "loads") && argc == 2) {
        if (!strcmp(argv[1], "answer")) net->loads = RAFTNET_LOADS_ANSWER;
        else if (!strcmp(argv[1], "ignore")) net->loads = RAFTNET_LOADS_IGNORE;
        else if (!strcmp(argv[1], "unavailable")) net->loads = RAFTNET_LOADS_UNAVAILABLE;
        else { snprintf(err, cap, "unknown loads mode %s", argv[1]); return -1; }
    } else if (!strcmp(c, "drop") && argc == 4) {
        uint8_t t = type_by_name(argv[1]);
        if (t == 0xFF) { snprintf(err, cap, "unknown message type %s", argv[1]); return -1; }
        raftnet_drop(net, t, b, (uint32_t)strtoul(argv[3], NULL, 10));
    } else {
        snprintf(err, cap, "bad command");
        return -1;
    }
    return 0;
}

int raftnet_script(struct raftnet *net, const char *script, char *err, size_t cap) {
    char buf[4096];
    RQ_ASSERT(strlen(script) < sizeof buf);
    strcpy(buf, script);
    char *save = NULL;
    for (char *cmd = strtok_r(buf, ";", &save); cmd != NULL; cmd = strtok_r(NULL, ";", &save)) {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", cmd);
        char *argv[10], *s2 = NULL;
        int argc = 0;
        for (char *w = strtok_r(cmd, " ", &s2); w != NULL && argc < 10; w = strtok_r(NULL, " ", &s2))
            argv[argc++] = w;
        if (argc == 0) continue;
        char why[RAFTNET_WHY_MAX + 64] = "";
        if (command(net, argc, argv, why, sizeof why) != 0) {
            snprintf(err, cap, "'%.200s': %.300s", copy, why);
            return -1;
        }
    }
    return 0;
}
