/* Linearizable reads without log entries: ReadIndex (dissertation 6.4).
 *
 * The leader serves a read once three things hold: (1) it has committed an entry of its own term,
 * so its commit index is at least every entry committed before it led; (2) it recorded that commit
 * index as the read's index; (3) a majority answered a heartbeat it sent after registering the read,
 * so no other leader could have committed anything newer in between (a newer leader would need a
 * vote from one of those followers, which then would have refused our heartbeat). The caller then
 * serves the read once its state machine has applied the read index.
 *
 * Each round of heartbeats carries a new context (a counter), and the leader remembers who
 * answered each of its last 8 rounds. A round that a majority answered confirms the reads whose
 * own round had a context <= its own; a duplicated or delayed answer to an older heartbeat counts
 * only for that older round, so it can never confirm a newer read. The same rounds start the
 * leader's lease (lease reads, below). Followers forward reads to the leader (READ_INDEX) and
 * serve them locally once the leader's answer arrives and they have applied that far (follower
 * reads, dissertation 6.4.1). */
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "raft/internal.h"

static int own_term_committed(const struct raft *r) {
    return raft_log_term(&r->log, r->commit) == r->term;
}

static void push_ready(struct raft *r, uint64_t ctx, uint64_t index) {
    if (r->ready_count == RAFT_READS_MAX) {
        RAFT_TRACE(r, "drop confirmed read %" PRIu64 ": %u confirmed reads not taken", ctx,
                   RAFT_READS_MAX);
        return;
    }
    r->ready[r->ready_count++] = (struct raft_read_ready){.ctx = ctx, .index = index};
}

/* A read confirmed by a majority: ready here, or answered to the follower that asked. */
static void confirm(struct raft *r, const struct raft_pending_read *p) {
    if (p->from == r->cfg.id) {
        push_ready(r, p->ctx, p->index);
        return;
    }
    struct raft_msg resp = {.type = RAFT_MSG_READ_INDEX_RESP, .to = p->from, .term = r->term,
                            .context = p->ctx, .index = p->index};
    raft_send(r, &resp);
}

/* The leader is the only voter: its own majority. */
static int sole_voter(const struct raft *r) {
    return r->quorum == 1 && conf_is_voter(r, r->cfg.id);
}

/* Starts the round of every read still waiting for one: one heartbeat broadcast serves them all.
 * A single voter is its own majority. */
static void start_rounds(struct raft *r) {
    if (!own_term_committed(r)) return;
    int waiting = 0;
    for (uint32_t i = 0; i < r->read_count; i++) waiting |= r->reads[i].context == 0;
    if (!waiting) return;
    int alone = sole_voter(r);
    if (!alone) replication_heartbeat(r);
    for (uint32_t i = 0; i < r->read_count; i++) {
        struct raft_pending_read *p = &r->reads[i];
        if (p->context != 0) continue;
        p->context = alone ? 1 : r->heartbeat_context;
        p->index = r->commit;
    }
    if (alone) {
        for (uint32_t i = 0; i < r->read_count; i++) confirm(r, &r->reads[i]);
        r->read_count = 0;
    }
}

static int register_read(struct raft *r, uint64_t ctx, uint32_t from) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    if (r->read_count == RAFT_READS_MAX) return RQ_EBUSY;
    struct raft_pending_read *p = &r->reads[r->read_count++];
    memset(p, 0, sizeof *p);
    p->ctx = ctx;
    p->from = from;
    start_rounds(r);
    return 0;
}

int raft_read_index(struct raft *r, uint64_t ctx) {
    if (r->role == RAFT_LEADER) return register_read(r, ctx, r->cfg.id);
    if (r->leader == 0) return RQ_ENOTLEADER;
    /* The leader answers with the context we send: a token of this life of this node, not the
     * caller's ctx, which a restarted caller may use again while an answer to its earlier read is
     * still on its way (found by seed 106686 with 5 servers). The oldest is forgotten when full. */
    if (r->forwarded_count == RAFT_READS_MAX) {
        memmove(&r->forwarded[0], &r->forwarded[1], (RAFT_READS_MAX - 1) * sizeof r->forwarded[0]);
        r->forwarded_count--;
    }
    uint64_t token = rq_rng_next(&r->rng) | 1;
    r->forwarded[r->forwarded_count++] =
        (struct raft_forwarded_read){.token = token, .ctx = ctx, .leader = r->leader};
    struct raft_msg m = {.type = RAFT_MSG_READ_INDEX, .to = r->leader, .term = r->term,
                         .context = token};
    raft_send(r, &m);
    return 0;
}

void read_on_request(struct raft *r, const struct raft_msg *m) {
    if (r->role != RAFT_LEADER) return;   /* the follower asks again after its timeout */
    if (register_read(r, m->context, m->from) != 0)
        RAFT_TRACE(r, "drop read from n%" PRIu32 ": %u reads pending", m->from, RAFT_READS_MAX);
}

void read_on_response(struct raft *r, const struct raft_msg *m) {
    if (r->role != RAFT_FOLLOWER || m->from != r->leader) return;
    for (uint32_t i = 0; i < r->forwarded_count; i++) {
        const struct raft_forwarded_read *f = &r->forwarded[i];
        if (f->token != m->context || f->leader != m->from) continue;
        push_ready(r, f->ctx, m->index);
        r->forwarded[i] = r->forwarded[--r->forwarded_count];
        return;
    }
    RAFT_TRACE(r, "drop read answer from n%" PRIu32 ": not a read this node is waiting for",
               m->from);
}

/* A new term or a campaign: answers to reads forwarded so far would come from a leader we no
 * longer follow (and are dropped by the term rules); forget them. */
void read_forget_forwarded(struct raft *r) { r->forwarded_count = 0; }

/* Confirms, in order, every read whose round this answer (or earlier ones) completes. */
static uint64_t round_on_answer(struct raft *r, const struct raft_msg *m);

/* A round a majority answered confirms, in order, every read registered before it was sent. */
void read_on_heartbeat_response(struct raft *r, const struct raft_msg *m) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    uint64_t confirmed = round_on_answer(r, m);
    uint32_t done = 0;
    while (done < r->read_count && r->reads[done].context != 0 &&
           r->reads[done].context <= confirmed)
        confirm(r, &r->reads[done++]);
    if (done == 0) return;
    memmove(&r->reads[0], &r->reads[done], (r->read_count - done) * sizeof r->reads[0]);
    r->read_count -= done;
}

void read_on_commit(struct raft *r) { start_rounds(r); }

/* ---- the leader lease (dissertation 6.4.1) ----------------------------------------------------- */

enum { ROUNDS = RAFT_ROUNDS };

void read_on_heartbeat_sent(struct raft *r) {
    struct raft_lease_round *round = &r->rounds[r->heartbeat_context % ROUNDS];
    memset(round, 0, sizeof *round);
    round->context = r->heartbeat_context;
    round->sent_tick = r->ticks;
    uint32_t self = raft_member_slot(r, r->cfg.id);
    if (self < r->conf.count) round->acks[self] = 1;
}

/* Records m's answer to its round. When that round now has a majority, returns its context
 * and, from its send tick t, starts the lease: no other leader can be elected before the
 * followers' election timeouts, counted from when they answered (after t), run out. Else 0. */
static uint64_t round_on_answer(struct raft *r, const struct raft_msg *m) {
    struct raft_lease_round *round = &r->rounds[m->context % ROUNDS];
    if (round->context != m->context || m->context == 0) return 0;   /* too old to remember */
    uint32_t slot = raft_member_slot(r, m->from);
    if (slot < r->conf.count) round->acks[slot] = 1;
    uint32_t acks = 0;   /* voters only: a learner's answer proves nothing about elections */
    for (uint32_t k = 0; k < r->conf.count; k++) acks += round->acks[k] && r->conf.voter[k];
    if (acks < r->quorum) return 0;
    if (!r->lease_valid || round->sent_tick > r->lease_start_tick) {
        r->lease_start_tick = round->sent_tick;
        r->lease_valid = 1;
    }
    return round->context;
}

/* A leader that sent TIMEOUT_NOW in this term holds no lease (transfer.c): voters grant the
 * transfer's votes inside it, so it no longer excludes another leader. */
static int lease_holds(const struct raft *r) {
    return r->role == RAFT_LEADER && r->cfg.lease_ticks > 0 && r->lease_valid &&
           r->timeout_now_term != r->term &&
           own_term_committed(r) && r->ticks - r->lease_start_tick + 1 <= r->cfg.lease_ticks;
}

int raft_read_lease(struct raft *r, uint64_t ctx) {
    if (!lease_holds(r)) return raft_read_index(r, ctx);
    push_ready(r, ctx, r->commit);
    return 0;
}

void read_on_step_down(struct raft *r) {
    r->lease_valid = 0;
    if (r->read_count > 0)
        RAFT_TRACE(r, "drop %" PRIu32 " reads not confirmed: no longer leader", r->read_count);
    r->read_count = 0;
}
