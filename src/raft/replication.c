/* Log replication (paper 5.3), commitment (paper 5.4.2) and heartbeats.
 *
 * The leader streams AppendEntries to each follower according to its Progress (progress.h): one
 * probe at a time until it knows where their logs match, then a pipeline of at most inflight_max
 * appends. A follower checks that its log holds prev_index with prev_term, drops a conflicting
 * suffix (never a committed entry), appends, and acknowledges once its storage says the entries
 * are durable. A rejection carries the conflicting term and the first index the follower holds
 * for it, so the leader skips a whole term per round trip instead of one entry (paper 5.3, the
 * optimization at the end). An entry is committed when a majority holds it durably and it is of
 * the leader's own term (paper 5.4.2 and figure 8); earlier entries commit with it. */
#include <string.h>

#include "base/assert.h"
#include "raft/internal.h"

/* The leader's progress for member id, or NULL for a node not in the configuration (an answer
 * from a removed node, or from a node we never sent to). */
static struct raft_progress *progress_of(struct raft *r, uint32_t id) {
    uint32_t slot = raft_member_slot(r, id);
    return slot < r->conf.count ? &r->progress[slot] : NULL;
}

/* How many entries from `from` one append carries: bounded by count and bytes (one entry always
 * fits), and by the ring's wrap, so that the entries are contiguous in memory. */
static uint32_t append_batch(const struct raft *r, uint64_t from) {
    uint64_t last = raft_log_last(&r->log);
    uint32_t n = 0;
    uint64_t bytes = 0;
    const struct raft_entry *first = raft_log_get(&r->log, from);
    while (from + n <= last && n < r->cfg.msg_entries_max) {
        const struct raft_entry *e = raft_log_get(&r->log, from + n);
        if (n > 0 && (e != first + n || bytes + e->data_size > r->cfg.msg_bytes_max)) break;
        bytes += e->data_size;
        n++;
    }
    return n;
}

/* Sends the follower its next append, unless its progress is paused. In REPLICATE an empty append
 * is sent only when allow_empty (to carry news of the commit index); in PROBE one always goes. */
static void send_append(struct raft *r, struct raft_progress *pr, int allow_empty) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    if (pr->id == r->cfg.id || progress_is_paused(pr, r->cfg.inflight_max)) return;
    /* A leader that won alone (the only voter) may not have its term and vote on disk yet, and an
     * append cannot wait in `held`: it goes once they are durable (raft_persisted_hardstate). */
    if (!raft_hardstate_durable(r)) return;
    uint64_t prev = pr->next - 1;
    if (prev < r->log.base_index) {   /* compacted: storage or the snapshot has it */
        if (r->cfg.stored_log) load_send_to(r, pr);
        else snapshot_send_to(r, pr);
        return;
    }
    uint64_t last = raft_log_last(&r->log);
    uint32_t n = pr->next <= last ? append_batch(r, pr->next) : 0;
    if (n == 0 && pr->state == RAFT_PROGRESS_REPLICATE && !allow_empty) return;
    uint64_t prev_term = raft_log_term(&r->log, prev);
    RQ_ASSERT(prev_term != UINT64_MAX);
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .to = pr->id, .term = r->term,
                         .prev_index = prev, .prev_term = prev_term, .commit = r->commit,
                         .entry_count = n, .entries = n ? raft_log_get(&r->log, pr->next) : NULL};
    raft_send(r, &m);
    progress_sent(pr, prev + n, n);
    r->stats.appends_sent++;
    r->stats.entries_sent += n;
}

void replication_send_append(struct raft *r, struct raft_progress *pr) { send_append(r, pr, 1); }

void replication_broadcast(struct raft *r) {
    for (uint32_t i = 0; i < r->conf.count; i++) send_append(r, &r->progress[i], 0);
}

void replication_tick(struct raft *r) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    if (r->ticks % r->cfg.heartbeat_ticks == 0) replication_heartbeat(r);
}

/* One heartbeat to every follower, with a new context: its answers prove that the follower still
 * took us for its leader after every read registered before it (read.c). */
void replication_heartbeat(struct raft *r) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    r->heartbeat_context++;
    read_on_heartbeat_sent(r);
    for (uint32_t i = 0; i < r->conf.count; i++) {
        struct raft_progress *pr = &r->progress[i];
        if (pr->id == r->cfg.id) continue;
        /* etcd: never tell a follower to commit beyond what it is known to hold. */
        uint64_t commit = pr->match < r->commit ? pr->match : r->commit;
        struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .to = pr->id, .term = r->term,
                             .commit = commit, .context = r->heartbeat_context};
        raft_send(r, &m);
    }
}

/* ---- commitment ------------------------------------------------------------------------------ */

void replication_maybe_commit(struct raft *r) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    uint64_t match[RAFT_MEMBERS_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->conf.count; i++) {   /* voters only, self when it is one */
        if (!r->conf.voter[i]) continue;
        const struct raft_progress *pr = &r->progress[i];
        match[n++] = pr->id == r->cfg.id ? raft_self_match(r) : pr->match;
    }
    if (n < r->quorum) return;
    for (uint32_t i = 1; i < n; i++) {   /* insertion sort, descending: n <= 9 */
        uint64_t v = match[i];
        uint32_t j = i;
        while (j > 0 && match[j - 1] < v) { match[j] = match[j - 1]; j--; }
        match[j] = v;
    }
    uint64_t q = match[r->quorum - 1];   /* held durably by a majority */
    if (q <= r->commit) return;
    /* Paper 5.4.2 / figure 8: counting replicas commits only entries of the current term. */
    if (raft_log_term(&r->log, q) != r->term) return;
    RAFT_TRACE(r, "commit %" PRIu64 " -> %" PRIu64 ": held durably by a majority", r->commit, q);
    /* Followers learn the new commit index with the next append or heartbeat (at most
     * heartbeat_ticks later): no message of its own, which would cost a round trip per commit. */
    r->commit = q;
    read_on_commit(r);
    conf_on_commit(r);
}

/* ---- the leader's side ----------------------------------------------------------------------- */

/* Where to resume after a rejection (paper 5.3's optimization): the follower told us the term of
 * its conflicting entry and the first index it holds for that term. If we hold entries of that
 * term too, the logs agree up to our last one of it; otherwise skip the follower's whole term. */
static uint64_t resume_index(const struct raft *r, const struct raft_msg *m) {
    uint64_t next = m->hint_index;
    if (m->hint_term != 0) {
        uint64_t j = raft_log_last_of_term(&r->log, m->hint_term, m->index);
        if (j > r->log.base_index && raft_log_term(&r->log, j) == m->hint_term) next = j + 1;
    }
    if (next > m->index) next = m->index;
    return next;
}

void replication_on_append_response(struct raft *r, const struct raft_msg *m) {
    struct raft_progress *pr = r->role == RAFT_LEADER ? progress_of(r, m->from) : NULL;
    if (pr == NULL) return;
    pr->recent_active = 1;
    if (m->index > raft_log_last(&r->log)) {
        RAFT_TRACE(r, "drop append answer from n%" PRIu32 ": index %" PRIu64 " beyond my log",
                   m->from, m->index);
        return;
    }
    if (m->reject) {
        r->stats.rejections_received++;
        uint64_t next = resume_index(r, m);
        if (next <= pr->match) next = pr->match + 1;
        if (m->index <= pr->match || !progress_reject(pr, m->index, next)) return;
        RAFT_TRACE(r, "n%" PRIu32 " has no (%" PRIu64 ",%" PRIu64 ") match: conflict term %"
                   PRIu64 " from %" PRIu64 ", retry from %" PRIu64,
                   m->from, raft_log_term(&r->log, m->index), m->index, m->hint_term,
                   m->hint_index, next);
        send_append(r, pr, 1);
        return;
    }
    if (progress_ack(pr, m->index)) {
        if (pr->state == RAFT_PROGRESS_PROBE && pr->loaded_upto > pr->match) {
            /* Part of an append of stored entries (load.c): the rest is on its way. */
            pr->probe_sent = 1;
            replication_maybe_commit(r);
            return;
        }
        if (pr->state == RAFT_PROGRESS_SNAPSHOT && pr->match >= pr->snap_index) {
            RAFT_TRACE(r, "n%" PRIu32 " installed the snapshot, matches at %" PRIu64 ": replicate",
                       m->from, m->index);
            progress_become_replicate(pr);
        } else if (pr->state == RAFT_PROGRESS_PROBE) {
            RAFT_TRACE(r, "n%" PRIu32 " matches at %" PRIu64 ": replicate", m->from, m->index);
            progress_become_replicate(pr);
        } else if (pr->state == RAFT_PROGRESS_LOAD) {
            /* A late answer moved it past what was asked of storage: start from its match. */
            progress_become_probe(pr);
        }
        replication_maybe_commit(r);
        if (r->role != RAFT_LEADER) return;   /* it committed our own removal */
        transfer_on_match(r, pr);   /* a transfer's target caught up: TIMEOUT_NOW */
    }
    send_append(r, pr, 0);
}

void replication_on_heartbeat_response(struct raft *r, const struct raft_msg *m) {
    struct raft_progress *pr = r->role == RAFT_LEADER ? progress_of(r, m->from) : NULL;
    if (pr == NULL) return;
    pr->recent_active = 1;
    read_on_heartbeat_response(r, m);
    if (pr->state == RAFT_PROGRESS_SNAPSHOT) {
        snapshot_on_heartbeat_response(r, pr);
        return;
    }
    if (pr->state == RAFT_PROGRESS_LOAD) {
        load_on_heartbeat_response(r, pr);
        return;
    }
    if (pr->match >= raft_log_last(&r->log)) return;
    if (pr->state == RAFT_PROGRESS_PROBE) {
        if (pr->loaded_upto > pr->match && pr->match != pr->heartbeat_match) {
            pr->heartbeat_match = pr->match;   /* stored entries still arriving (load.c) */
            return;
        }
        pr->loaded_upto = 0;
        pr->probe_sent = 0;   /* the probe or its answer may have been lost: probe again */
    } else if (pr->match == pr->heartbeat_match) {
        RAFT_TRACE(r, "n%" PRIu32 " made no progress since the last heartbeat (match %" PRIu64
                   "): probe", m->from, pr->match);
        progress_become_probe(pr);
    }
    pr->heartbeat_match = pr->match;
    send_append(r, pr, 1);
}

/* ---- the follower's side --------------------------------------------------------------------- */

static void advance_commit(struct raft *r, uint64_t commit, uint64_t known_match) {
    if (commit > known_match) commit = known_match;
    if (commit <= r->commit) return;
    RQ_DEBUG("g%" PRIu32 " t%" PRIu64 ": commit -> %" PRIu64, r->cfg.group, r->term, commit);
    r->commit = commit;
}

void replication_maybe_ack(struct raft *r) {
    if (r->role != RAFT_FOLLOWER || r->leader == 0 || !raft_hardstate_durable(r)) return;
    uint64_t ack = r->durable_index < r->leader_match ? r->durable_index : r->leader_match;
    if (ack <= r->acked) return;
    r->acked = ack;
    struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = r->leader, .term = r->term,
                            .index = ack};
    raft_send(r, &resp);
}

static void reject_append(struct raft *r, const struct raft_msg *m) {
    struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = m->from, .term = r->term,
                            .reject = 1, .index = m->prev_index};
    uint64_t last = raft_log_last(&r->log);
    if (m->prev_index > last) {
        resp.hint_index = last + 1;
        RAFT_TRACE(r, "reject append from n%" PRIu32 ": no entry at %" PRIu64 " (log ends at %"
                   PRIu64 ")", m->from, m->prev_index, last);
    } else {
        resp.hint_term = raft_log_term(&r->log, m->prev_index);
        resp.hint_index = raft_log_term_start(&r->log, m->prev_index);
        RAFT_TRACE(r, "reject append from n%" PRIu32 ": entry %" PRIu64 " has term %" PRIu64
                   ", not %" PRIu64 " (my term %" PRIu64 " starts at %" PRIu64 ")", m->from,
                   m->prev_index, resp.hint_term, m->prev_term, resp.hint_term, resp.hint_index);
    }
    raft_send(r, &resp);
}

/* Drops our entries from `from` on: they conflict with the leader's (paper 5.3). */
static void truncate_suffix(struct raft *r, uint64_t from) {
    /* Leader completeness: a committed entry is in every future leader's log, so it can never
     * conflict. Reaching this with from <= commit would mean the protocol is broken. */
    RQ_ASSERT(from > r->commit);
    RAFT_TRACE(r, "drop my entries %" PRIu64 "..%" PRIu64 ": they conflict with the leader's",
               from, raft_log_last(&r->log));
    raft_log_truncate(&r->log, from);
    conf_on_truncate(r, from);
    if (from < r->persist_next) {
        if (r->truncate_from == 0 || from < r->truncate_from) r->truncate_from = from;
        r->persist_next = from;
    }
    if (r->durable_index >= from) r->durable_index = from - 1;
}

void replication_ack(struct raft *r, uint32_t leader, uint64_t agreed) {
    if (agreed > r->leader_match) r->leader_match = agreed;
    uint64_t ack = r->durable_index < r->leader_match ? r->durable_index : r->leader_match;
    if (ack > r->acked) r->acked = ack;
    struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .to = leader, .term = r->term,
                            .index = ack};
    raft_send(r, &resp);
}

void replication_on_append(struct raft *r, const struct raft_msg *m) {
    raft_follow(r, m->from);
    if (m->prev_index < r->log.base_index) {
        /* It starts below our log (a snapshot compacted it), so below the commit index: it agrees
         * with every leader's log up to there (etcd raft does the same). */
        replication_ack(r, m->from, r->commit);
        return;
    }
    if (raft_log_term(&r->log, m->prev_index) != m->prev_term) {
        reject_append(r, m);
        return;
    }
    uint64_t matched = m->prev_index;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        const struct raft_entry *e = &m->entries[i];
        RQ_ASSERT(e->index == m->prev_index + 1 + i);
        if (e->index <= raft_log_last(&r->log)) {
            if (raft_log_term(&r->log, e->index) == e->term) {
                matched = e->index;
                continue;
            }
            truncate_suffix(r, e->index);
        }
        if (raft_log_append(&r->log, e) != 0) {
            RAFT_TRACE(r, "log full at %" PRIu64 ": accept the rest later", e->index);
            break;
        }
        conf_on_append(r, e);
        matched = e->index;
    }
    if (matched > r->leader_match) r->leader_match = matched;
    advance_commit(r, m->commit, matched);
    /* Everything this append asked about is durable: answer now, even if we answered before (the
     * leader may be probing because that answer was lost). */
    if (r->durable_index >= matched) replication_ack(r, m->from, matched);
}

void replication_on_heartbeat(struct raft *r, const struct raft_msg *m) {
    raft_follow(r, m->from);
    /* The leader sends min(its commit, our match): entries it knows we hold durably and that
     * agree with its log, so our log is trusted up to there even right after a restart. */
    advance_commit(r, m->commit, raft_log_last(&r->log));
    struct raft_msg resp = {.type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .term = r->term,
                            .context = m->context};
    raft_send(r, &resp);
}
