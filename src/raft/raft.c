/* A Raft group: inputs, outputs, the term rules every message goes through, and role changes.
 * Elections live in election.c, log replication and commitment in replication.c. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "raft/internal.h"

void raft_config_default(struct raft_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 2;
    cfg->inflight_max = 16;
    cfg->msg_entries_max = 32;
    cfg->msg_bytes_max = 256u << 10;
    cfg->log_entries_max = 1u << 16;
    cfg->log_bytes_max = 64u << 20;
    cfg->uncommitted_max = 4096;
    cfg->pre_vote = 1;
    cfg->check_quorum = 1;
    cfg->snapshot_entries = 8192;
    cfg->snapshot_bytes = 16u << 20;
    cfg->snapshot_trailing = 512;
}

static int config_fail(const char *what) {
    RQ_ERROR("raft config: %s", what);
    return RQ_EINVAL;
}

int raft_config_check(const struct raft_config *cfg) {
    if (cfg->voter_count < 1 || cfg->voter_count > RAFT_VOTERS_MAX)
        return config_fail("voter_count must be 1..RAFT_VOTERS_MAX");
    if (cfg->group >= RAFT_GROUP_ID_LIMIT) return config_fail("group id too large");
    if (cfg->id == 0) return config_fail("id 0");
    for (uint32_t i = 0; i < cfg->voter_count; i++) {
        if (cfg->voters[i] == 0) return config_fail("voter id 0");
        for (uint32_t j = 0; j < i; j++)
            if (cfg->voters[j] == cfg->voters[i]) return config_fail("duplicate voter");
    }
    if (cfg->heartbeat_ticks < 1 || cfg->heartbeat_ticks >= cfg->election_ticks)
        return config_fail("need 1 <= heartbeat_ticks < election_ticks");
    if (cfg->inflight_max < 1 || cfg->inflight_max > RAFT_INFLIGHT_MAX)
        return config_fail("inflight_max must be 1..RAFT_INFLIGHT_MAX");
    if (cfg->msg_entries_max < 1 || cfg->msg_entries_max > RAFT_MSG_ENTRIES_MAX)
        return config_fail("msg_entries_max must be 1..RAFT_MSG_ENTRIES_MAX");
    if (cfg->msg_bytes_max < 1 || cfg->msg_bytes_max > RAFT_MSG_BYTES_MAX / 2)
        return config_fail("msg_bytes_max must be 1..RAFT_MSG_BYTES_MAX/2");
    if (cfg->lease_ticks > 0 && (!cfg->check_quorum || cfg->lease_ticks >= cfg->election_ticks))
        return config_fail("lease_ticks needs check_quorum and must be below election_ticks");
    if (cfg->log_entries_max < 2 || cfg->uncommitted_max < 1)
        return config_fail("log_entries_max >= 2 and uncommitted_max >= 1");
    return 0;
}

struct raft *raft_create(const struct raft_config *cfg, uint64_t term, uint32_t vote) {
    RQ_ASSERT(raft_config_check(cfg) == 0);
    struct raft *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    if (raft_log_init(&r->log, cfg->log_entries_max, cfg->log_bytes_max) != 0) {
        free(r);
        return NULL;
    }
    r->cfg = *cfg;
    conf_init(r);
    r->term = term;
    r->vote = vote;
    r->durable_term = term;   /* loaded from the hard state: durable by definition */
    r->durable_vote = vote;
    r->persist_next = 1;
    r->restart_guard = cfg->lease_ticks > 0;
    rq_rng_seed(&r->rng, cfg->seed ^ ((uint64_t)cfg->group << 32) ^ cfg->id);
    election_reset_timeout(r);
    return r;
}

void raft_destroy(struct raft *r) {
    if (r == NULL) return;
    raft_log_free(&r->log);
    free(r);
}

int raft_restore(struct raft *r, const struct raft_entry *e) {
    RQ_ASSERT(r->role == RAFT_FOLLOWER && r->outbox_count == 0);
    if (e->index != raft_log_last(&r->log) + 1) return RQ_EINVAL;
    if (e->term < raft_log_last_term(&r->log)) return RQ_EINVAL;
    if (e->type < 1 || e->type > RAFT_ENTRY_TYPE_MAX) return RQ_EINVAL;
    if (e->term > r->term) {
        /* The log and the hard state are separate files: an entry of a new term can be durable
         * while the save of that term was lost in a crash. We never voted in that term (votes
         * wait for the save), so adopting it with no vote is safe. */
        RAFT_TRACE(r, "log holds term %" PRIu64 ": adopt it", e->term);
        r->term = e->term;
        r->vote = 0;
        r->hardstate_dirty = 1;
    }
    int err = raft_log_append(&r->log, e);
    if (err != 0) return err;
    conf_on_append(r, e);
    r->durable_index = e->index;
    r->persist_next = e->index + 1;
    return 0;
}

uint32_t raft_member_slot(const struct raft *r, uint32_t id) {
    return raft_membership_slot(&r->conf, id);
}

/* ---- messages out ---------------------------------------------------------------------------- */

int raft_hardstate_durable(const struct raft *r) {
    return r->durable_term == r->term && r->durable_vote == r->vote;
}

static void outbox_push(struct raft *r, const struct raft_msg *m) {
    if (r->outbox_count == RAFT_OUTBOX_MAX) {
        r->stats.outbox_dropped++;   /* best effort, like the network: Raft retries */
        return;
    }
    r->outbox[r->outbox_count++] = *m;
}

/* Every message carries the current term, so none leaves before (term, vote) is durable (paper
 * figure 2). A message produced earlier waits in `held`; it carries no entries: only a leader
 * sends entries, and a leader's term and vote were durable before its first vote request left. */
void raft_send(struct raft *r, struct raft_msg *m) {
    m->group = r->cfg.group;
    m->from = r->cfg.id;
    RQ_ASSERT(m->to != r->cfg.id);
    if (raft_hardstate_durable(r)) {
        outbox_push(r, m);
        return;
    }
    RQ_ASSERT(m->entry_count == 0 && m->chunk_size == 0);
    if (r->held_count == RAFT_HELD_MAX) {
        r->stats.held_dropped++;
        return;
    }
    r->held[r->held_count++] = *m;
}

static void release_held(struct raft *r) {
    for (uint32_t i = 0; i < r->held_count; i++) {
        /* A message held for an older term no longer speaks for this node. */
        if (r->held[i].term == r->term || r->held[i].type == RAFT_MSG_PREVOTE ||
            r->held[i].type == RAFT_MSG_PREVOTE_RESP)
            outbox_push(r, &r->held[i]);
    }
    r->held_count = 0;
}

/* ---- role changes ---------------------------------------------------------------------------- */

void raft_become_follower(struct raft *r, uint64_t term, uint32_t leader, const char *why) {
    RQ_ASSERT(term >= r->term);
    if (r->role == RAFT_LEADER) {
        read_on_step_down(r);
        transfer_clear(r, why);
    }
    if (term > r->term) {
        read_forget_forwarded(r);
        RAFT_TRACE(r, "term %" PRIu64 " -> %" PRIu64 " as follower: %s", r->term, term, why);
        r->term = term;
        r->vote = 0;
        r->hardstate_dirty = 1;
    } else if (r->role != RAFT_FOLLOWER) {
        RAFT_TRACE(r, "became follower: %s", why);
    }
    r->role = RAFT_FOLLOWER;
    if (leader != 0 && leader != r->leader) RAFT_TRACE(r, "leader is n%" PRIu32, leader);
    r->leader = leader;
    r->leader_match = 0;
    r->acked = 0;
    r->election_elapsed = 0;
    election_reset_timeout(r);
}

uint32_t raft_lease_ticks(uint32_t election_ticks, uint32_t drift_ppm) {
    if (election_ticks < 3 || drift_ppm >= 1000000) return 0;
    /* largest L with (L + 1) * (1e6 + d) < (election_ticks - 1) * (1e6 - d) */
    uint64_t rhs = (uint64_t)(election_ticks - 1) * (1000000 - drift_ppm);
    uint64_t rate = 1000000 + (uint64_t)drift_ppm;
    uint64_t l_plus_1 = (rhs - 1) / rate;   /* largest x with x * rate < rhs */
    return l_plus_1 >= 2 ? (uint32_t)(l_plus_1 - 1) : 0;
}

/* A message from the leader of our term: follow it, and its contact resets the election timer. */
void raft_follow(struct raft *r, uint32_t leader) {
    if (r->role != RAFT_FOLLOWER) raft_become_follower(r, r->term, leader, "leader of my term");
    if (r->leader != leader) {
        RAFT_TRACE(r, "leader is n%" PRIu32, leader);
        r->leader = leader;
    }
    r->election_elapsed = 0;
}

void raft_become_leader(struct raft *r) {
    RQ_ASSERT(r->role == RAFT_CANDIDATE);
    RQ_ASSERT(r->transfer_target == 0);   /* cleared when it last stepped down */
    r->role = RAFT_LEADER;
    r->lease_valid = 0;
    memset(r->rounds, 0, sizeof r->rounds);
    r->leader = r->cfg.id;
    r->election_elapsed = 0;
    r->stats.became_leader++;
    uint64_t last = raft_log_last(&r->log);
    for (uint32_t i = 0; i < r->conf.count; i++) {
        progress_reset(&r->progress[i], r->conf.ids[i], last);
        r->progress[i].recent_active = r->conf.ids[i] == r->cfg.id;
    }
    RAFT_TRACE(r, "became leader with log (%" PRIu64 ",%" PRIu64 "), commit %" PRIu64,
               raft_log_last_term(&r->log), last, r->commit);
    /* Paper section 8 / dissertation 6.4: a leader does not know which earlier-term entries are
     * committed until it commits one of its own term; the no-op makes that happen at once. */
    struct raft_entry noop = {.index = last + 1, .term = r->term, .type = RAFT_ENTRY_NOOP};
    if (raft_log_append(&r->log, &noop) != 0) {
        RAFT_TRACE(r, "no room for the no-op of the new term (%" PRIu32 " entries in memory)",
                   r->log.count);
    }
    replication_broadcast(r);
    replication_maybe_commit(r);   /* a single-voter group */
}

/* ---- inputs ---------------------------------------------------------------------------------- */

void raft_tick(struct raft *r) {
    r->ticks++;
    if (r->role == RAFT_LEADER) {
        replication_tick(r);
        transfer_tick(r);
        election_check_quorum(r);
    } else {
        election_tick(r);
    }
}

/* Paper figure 2, "Rules for all servers": a higher term makes us a follower of that term; a lower
 * term is stale. The exceptions are pre-vote (its term is hypothetical, dissertation 9.6) and a
 * vote request that arrives while we believe a leader is alive (dissertation 4.2.3), unless that
 * leader asked for the election by a leadership transfer (transfer = 1, dissertation 3.10). A
 * TIMEOUT_NOW of an older term is simply dropped here, like any stale message. Returns 1
 * when the message should be handled further. */
static int step_term(struct raft *r, const struct raft_msg *m) {
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_PREVOTE) return 1;
        if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject) return 1;
        if (m->type == RAFT_MSG_VOTE && m->transfer && election_in_lease(r)) {
            RAFT_TRACE(r, "vote request from n%" PRIu32 " for term %" PRIu64 " is a leadership "
                       "transfer: heed it inside the check-quorum lease of n%" PRIu32
                       " (the leader asked for this election)", m->from, m->term, r->leader);
        } else if (m->type == RAFT_MSG_VOTE && election_in_lease(r)) {
            RAFT_TRACE(r, "ignore vote request from n%" PRIu32 " for term %" PRIu64
                       ": leader n%" PRIu32 " heard %" PRIu32 " ticks ago (check-quorum lease)",
                       m->from, m->term, r->leader, r->election_elapsed);
            return 0;
        }
        int from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                          m->type == RAFT_MSG_INSTALL_SNAPSHOT;
        raft_become_follower(r, m->term, from_leader ? m->from : 0, "message with a newer term");
        return 1;
    }
    if (m->term < r->term) {
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
            m->type == RAFT_MSG_INSTALL_SNAPSHOT || m->type == RAFT_MSG_PREVOTE) {
            /* Tell a stale leader or pre-candidate our term, so it steps down (with check-quorum a
             * partitioned old leader would otherwise never learn it, etcd raft.go). */
            struct raft_msg resp = {.to = m->from, .term = r->term, .reject = 1};
            resp.type = m->type == RAFT_MSG_PREVOTE ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_APPEND_RESP;
            resp.index = m->prev_index;
            raft_send(r, &resp);
        }
        return 0;
    }
    return 1;
}

void raft_step(struct raft *r, const struct raft_msg *m) {
    r->snap_incoming = 0;   /* a chunk not taken by now is gone, like a lost message */
    if (m->group != r->cfg.group || m->to != r->cfg.id || m->from == r->cfg.id || m->from == 0) {
        RAFT_TRACE(r, "drop %s from n%" PRIu32 ": not for this node and group",
                   raft_msg_type_name(m->type), m->from);
        return;
    }
    /* A leader or candidate not in our configuration is heard (dissertation 4.1: a new member
     * learns it is one from a leader it does not know); answers to a leader count only from
     * members, and are dropped in the handlers. */
    if (!step_term(r, m)) return;
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE: election_on_request(r, m); break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: election_on_response(r, m); break;
    case RAFT_MSG_APPEND: replication_on_append(r, m); break;
    case RAFT_MSG_APPEND_RESP: replication_on_append_response(r, m); break;
    case RAFT_MSG_HEARTBEAT: replication_on_heartbeat(r, m); break;
    case RAFT_MSG_HEARTBEAT_RESP: replication_on_heartbeat_response(r, m); break;
    case RAFT_MSG_READ_INDEX: read_on_request(r, m); break;
    case RAFT_MSG_READ_INDEX_RESP: read_on_response(r, m); break;
    case RAFT_MSG_INSTALL_SNAPSHOT: snapshot_on_install(r, m); break;
    case RAFT_MSG_SNAPSHOT_RESP: snapshot_on_response(r, m); break;
    case RAFT_MSG_TIMEOUT_NOW: transfer_on_timeout_now(r, m); break;
    default: RAFT_TRACE(r, "drop message of unknown type %u", m->type); break;
    }
}

int raft_propose(struct raft *r, const void *data, uint32_t data_size, uint64_t *index) {
    if (r->role != RAFT_LEADER) return RQ_ENOTLEADER;
    if (r->transfer_target != 0) return RQ_EBUSY;   /* the log must stop growing (transfer.c) */
    if (data_size > RAFT_ENTRY_DATA_MAX || data_size > r->cfg.msg_bytes_max) return RQ_ETOOBIG;
    uint64_t last = raft_log_last(&r->log);
    if (last - r->commit >= r->cfg.uncommitted_max) return RQ_EBUSY;
    if (!raft_log_has_room(&r->log, data_size)) return RQ_EBUSY;
    struct raft_entry e = {.index = last + 1, .term = r->term, .type = RAFT_ENTRY_NORMAL,
                           .data_size = data_size, .data = data};
    int err = raft_log_append(&r->log, &e);
    if (err != 0) return err;
    *index = e.index;
    replication_broadcast(r);
    return 0;
}

void raft_persisted_hardstate(struct raft *r, uint64_t term, uint32_t vote) {
    RQ_ASSERT(term <= r->term);
    r->durable_term = term;
    r->durable_vote = vote;
    if (raft_hardstate_durable(r)) {
        release_held(r);
        replication_maybe_ack(r);
        if (r->role == RAFT_LEADER) replication_broadcast(r);   /* appends held back */
    }
}

void raft_persisted_entry(struct raft *r, uint64_t index, uint64_t term) {
    if (index <= r->durable_index || index >= r->persist_next) return;
    if (raft_log_term(&r->log, index) != term) return;   /* since truncated */
    r->durable_index = index;
    if (r->role == RAFT_LEADER) replication_maybe_commit(r);
    else replication_maybe_ack(r);
}

void raft_applied(struct raft *r, uint64_t index) {
    RQ_ASSERT(index <= r->commit);
    if (index > r->applied) r->applied = index;
}

/* ---- outputs --------------------------------------------------------------------------------- */

int raft_hardstate_pending(struct raft *r, uint64_t *term, uint32_t *vote) {
    if (!r->hardstate_dirty) return 0;
    r->hardstate_dirty = 0;
    *term = r->term;
    *vote = r->vote;
    return 1;
}

int raft_persist_pending(const struct raft *r, uint64_t *truncate_from, uint64_t *first,
                         uint64_t *last) {
    *truncate_from = r->truncate_from;
    *first = r->persist_next;
    *last = raft_log_last(&r->log);
    return r->truncate_from != 0 || *last >= *first;
}

void raft_persist_handed(struct raft *r, uint64_t last_handed) {
    RQ_ASSERT(last_handed + 1 >= r->persist_next);
    RQ_ASSERT(last_handed <= raft_log_last(&r->log));
    r->truncate_from = 0;
    r->persist_next = last_handed + 1;
}

uint32_t raft_reads_ready(const struct raft *r, const struct raft_read_ready **reads) {
    *reads = r->ready;
    return r->ready_count;
}

void raft_reads_clear(struct raft *r) { r->ready_count = 0; }

uint32_t raft_outbox(const struct raft *r, const struct raft_msg **msgs) {
    *msgs = r->outbox;
    return r->outbox_count;
}

void raft_outbox_clear(struct raft *r) { r->outbox_count = 0; }

int raft_apply_pending(const struct raft *r, uint64_t *first, uint64_t *last) {
    *first = r->applied + 1;
    *last = r->commit;
    return *last >= *first;
}

/* ---- inspection ------------------------------------------------------------------------------ */

const char *raft_role_name(enum raft_role role) {
    switch (role) {
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PRECANDIDATE: return "pre-candidate";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    }
    return "unknown";
}

enum raft_role raft_role(const struct raft *r) { return r->role; }
uint64_t raft_term(const struct raft *r) { return r->term; }
uint32_t raft_vote(const struct raft *r) { return r->vote; }
uint32_t raft_leader(const struct raft *r) { return r->leader; }
uint64_t raft_commit(const struct raft *r) { return r->commit; }
uint64_t raft_applied_index(const struct raft *r) { return r->applied; }
uint64_t raft_last_index(const struct raft *r) { return raft_log_last(&r->log); }
uint64_t raft_durable_index(const struct raft *r) { return r->durable_index; }
uint64_t raft_first_index(const struct raft *r) { return raft_log_first(&r->log); }
const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index) {
    return raft_log_get(&r->log, index);
}
uint64_t raft_term_at(const struct raft *r, uint64_t index) {
    return raft_log_term(&r->log, index);
}
uint64_t raft_self_match(const struct raft *r) { return r->durable_index; }
void raft_stats_get(const struct raft *r, struct raft_stats *out) { *out = r->stats; }
