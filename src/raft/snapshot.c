/* Snapshots: log compaction and InstallSnapshot (dissertation chapter 5; paper section 7).
 *
 * The group never holds snapshot bytes. The caller owns the state machine and the snapshot file;
 * the group decides when one is wanted, which follower needs which chunk, and what an installed
 * snapshot does to the log:
 *
 *   local:     applied - snap_index >= snapshot_entries (or the log's bytes >= snapshot_bytes)
 *              -> raft_snapshot_wanted -> the caller writes one durably -> raft_snapshot_taken
 *              -> the log keeps snapshot_trailing entries below it (a follower a little behind
 *              still catches up from the log, which is cheaper than a whole snapshot).
 *   leader:    a follower's next entry is below the log's first -> progress SNAPSHOT -> a request
 *              for the chunk at the offset the follower wants -> raft_snapshot_send ->
 *              INSTALL_SNAPSHOT -> the follower's SNAPSHOT_RESP names the next offset -> ... ->
 *              the follower acknowledges snap_index with an APPEND_RESP -> progress PROBE.
 *   follower:  INSTALL_SNAPSHOT beyond its commit index -> raft_snapshot_incoming -> the caller
 *              stores the chunk at its offset -> raft_snapshot_received -> SNAPSHOT_RESP; after
 *              the last chunk, once the file is durable and the state machine restored from it,
 *              raft_snapshot_installed.
 *
 * Chunks are stop-and-wait per follower, and the follower's storage takes bytes only in order at
 * the offset it expects (store/snapshot.h), answering every chunk with that offset: a duplicated,
 * reordered or stale chunk changes nothing and tells the leader where to resume. A chunk or answer
 * lost is asked for again when a heartbeat round passes with no answer. */
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "raft/internal.h"

/* ---- local snapshots ------------------------------------------------------------------------- */

int raft_snapshot_wanted(const struct raft *r) {
    if (r->applied <= r->snap_index) return 0;
    if (r->cfg.snapshot_entries > 0 && r->applied - r->snap_index >= r->cfg.snapshot_entries)
        return 1;
    return r->cfg.snapshot_bytes > 0 && r->log.bytes >= r->cfg.snapshot_bytes;
}

/* Drops log entries up to `upto` but never one not yet durable (storage may still read it from
 * the log) and never past the snapshot. */
static void compact_log(struct raft *r, uint64_t upto) {
    if (upto > r->durable_index) upto = r->durable_index;
    if (upto > r->snap_index) upto = r->snap_index;
    if (upto <= r->log.base_index) return;
    RAFT_TRACE(r, "compact log %" PRIu64 "..%" PRIu64 ": covered by the snapshot at %" PRIu64,
               raft_log_first(&r->log), upto, r->snap_index);
    conf_on_compact(r, upto);
    raft_log_compact(&r->log, upto);
}

/* How many entries at and below a new snapshot at `index` the log keeps: snapshot_trailing, but
 * no more than half of snapshot_bytes of data. Without the byte bound a log of large entries kept
 * more than snapshot_bytes below the snapshot, so the next snapshot was wanted at once, and again
 * after every entry applied (seen on a real disk: a snapshot every few entries). */
static uint64_t trailing_kept(const struct raft *r, uint64_t index) {
    uint64_t keep = 0, bytes = 0;
    while (keep < r->cfg.snapshot_trailing && index - keep > r->log.base_index) {
        const struct raft_entry *e = raft_log_get(&r->log, index - keep);
        if (r->cfg.snapshot_bytes > 0 && bytes + e->data_size > r->cfg.snapshot_bytes / 2) break;
        bytes += e->data_size;
        keep++;
    }
    return keep;
}

void raft_snapshot_taken(struct raft *r, uint64_t index, uint64_t term) {
    RQ_ASSERT(index <= r->applied);
    RQ_ASSERT(index >= r->log.base_index);
    RQ_ASSERT(raft_log_term(&r->log, index) == term);
    if (index <= r->snap_index) return;
    r->snap_index = index;
    r->snap_term = term;
    r->stats.snapshots_taken++;
    RAFT_TRACE(r, "snapshot at (%" PRIu64 ",%" PRIu64 ") is durable", term, index);
    compact_log(r, index - trailing_kept(r, index));
}

void raft_snapshot_shrink(struct raft *r) {
    RAFT_TRACE(r, "shrink: a snapshot after every entry applied, %s", "none kept below it");
    r->cfg.snapshot_entries = 1;
    r->cfg.snapshot_trailing = 0;
    compact_log(r, r->snap_index);
}

void raft_snapshot_last(const struct raft *r, uint64_t *index, uint64_t *term) {
    *index = r->snap_index;
    *term = r->snap_term;
}

int raft_restore_snapshot(struct raft *r, uint64_t index, uint64_t term, const uint8_t *config,
                          size_t config_size) {
    RQ_ASSERT(r->role == RAFT_FOLLOWER && r->outbox_count == 0);
    RQ_ASSERT(raft_log_last(&r->log) == 0 && index >= 1 && term >= 1);
    if (conf_set_base(r, config, config_size) != 0) return RQ_ECORRUPT;
    raft_log_reset(&r->log, index, term);
    r->snap_index = index;
    r->snap_term = term;
    r->commit = r->applied = r->durable_index = index;
    r->persist_next = index + 1;
    if (term > r->term) {   /* as raft_restore: the save of that term may have been lost */
        RAFT_TRACE(r, "snapshot holds term %" PRIu64 ": adopt it", term);
        r->term = term;
        r->vote = 0;
        r->hardstate_dirty = 1;
    }
    return 0;
}

/* ---- the leader: sending ----------------------------------------------------------------------- */

static void request_chunk(struct raft *r, const struct raft_progress *pr) {
    struct raft_snapshot_request req = {.to = pr->id, .index = pr->snap_index,
                                        .term = pr->snap_term, .offset = pr->snap_offset};
    for (uint32_t i = 0; i < r->snap_request_count; i++) {
        if (r->snap_requests[i].to == pr->id) {
            r->snap_requests[i] = req;
            return;
        }
    }
    RQ_ASSERT(r->snap_request_count < RAFT_MEMBERS_MAX);
    r->snap_requests[r->snap_request_count++] = req;
}

/* The follower needs entries below the log's first: send it the snapshot instead. */
void snapshot_send_to(struct raft *r, struct raft_progress *pr) {
    RQ_ASSERT(r->role == RAFT_LEADER && r->snap_index >= r->log.base_index);
    RQ_ASSERT(r->snap_index > 0);
    RAFT_TRACE(r, "n%" PRIu32 " needs entry %" PRIu64 ", compacted: send snapshot (%" PRIu64
               ",%" PRIu64 ")", pr->id, pr->next, r->snap_term, r->snap_index);
    progress_become_snapshot(pr, r->snap_index, r->snap_term);
    request_chunk(r, pr);
}

static struct raft_progress *snapshot_progress(struct raft *r, uint32_t to, uint64_t index) {
    if (r->role != RAFT_LEADER) return NULL;
    uint32_t slot = raft_member_slot(r, to);
    if (slot >= r->conf.count) return NULL;
    struct raft_progress *pr = &r->progress[slot];
    if (pr->state != RAFT_PROGRESS_SNAPSHOT || pr->snap_index != index) return NULL;
    return pr;
}

void raft_snapshot_send(struct raft *r, uint32_t to, uint64_t index, uint64_t offset,
                        const void *data, uint32_t size, int last) {
    RQ_ASSERT(size <= RAFT_SNAPSHOT_CHUNK_MAX && (size == 0 || data != NULL));
    struct raft_progress *pr = snapshot_progress(r, to, index);
    if (pr == NULL || !raft_hardstate_durable(r)) return;   /* asked for again later */
    struct raft_msg m = {.type = RAFT_MSG_INSTALL_SNAPSHOT, .to = to, .term = r->term,
                         .snap_index = index, .snap_term = pr->snap_term, .offset = offset,
                         .chunk_last = last != 0, .chunk_size = size, .chunk = size ? data : NULL};
    raft_send(r, &m);
    r->stats.snapshot_chunks_sent++;
}

void raft_snapshot_unavailable(struct raft *r, uint32_t to, uint64_t index) {
    struct raft_progress *pr = snapshot_progress(r, to, index);
    if (pr == NULL) return;
    RAFT_TRACE(r, "snapshot %" PRIu64 " for n%" PRIu32 " cannot be read: start over with %" PRIu64,
               index, to, r->snap_index);
    progress_become_snapshot(pr, r->snap_index, r->snap_term);
    request_chunk(r, pr);
}

uint32_t raft_snapshot_requests(const struct raft *r, const struct raft_snapshot_request **reqs) {
    *reqs = r->snap_requests;
    return r->snap_request_count;
}

void raft_snapshot_requests_clear(struct raft *r) { r->snap_request_count = 0; }

void snapshot_on_response(struct raft *r, const struct raft_msg *m) {
    struct raft_progress *pr = snapshot_progress(r, m->from, m->snap_index);
    if (pr == NULL) return;
    pr->recent_active = 1;
    pr->snap_heard = 1;
    pr->snap_offset = m->offset;
    request_chunk(r, pr);
}

/* A heartbeat round passed: if no chunk was answered since the previous one, the chunk or its
 * answer was lost, or the follower restarted: ask for the chunk again. */
void snapshot_on_heartbeat_response(struct raft *r, struct raft_progress *pr) {
    RQ_ASSERT(pr->state == RAFT_PROGRESS_SNAPSHOT);
    if (!pr->snap_heard) request_chunk(r, pr);
    pr->snap_heard = 0;
}

/* ---- the follower: receiving ------------------------------------------------------------------- */

void snapshot_on_install(struct raft *r, const struct raft_msg *m) {
    raft_follow(r, m->from);
    if (m->snap_index <= r->commit) {
        /* Nothing new: our log already agrees with the leader up to there (committed entries are
         * in every leader's log). Acknowledge it, so that the leader stops sending. */
        replication_ack(r, m->from, m->snap_index);
        return;
    }
    r->snap_incoming = 1;
    r->snap_chunk = (struct raft_snapshot_chunk){
        .from = m->from, .index = m->snap_index, .term = m->snap_term, .offset = m->offset,
        .data = m->chunk, .size = m->chunk_size, .last = m->chunk_last};
}

int raft_snapshot_incoming(const struct raft *r, struct raft_snapshot_chunk *chunk) {
    if (!r->snap_incoming) return 0;
    *chunk = r->snap_chunk;
    return 1;
}

void raft_snapshot_received(struct raft *r, uint64_t index, uint64_t next_offset) {
    r->snap_incoming = 0;
    if (r->role != RAFT_FOLLOWER || r->leader == 0) return;
    struct raft_msg resp = {.type = RAFT_MSG_SNAPSHOT_RESP, .to = r->leader, .term = r->term,
                            .snap_index = index, .offset = next_offset};
    raft_send(r, &resp);
}

int raft_snapshot_installed(struct raft *r, uint64_t index, uint64_t term, const uint8_t *config,
                            size_t config_size) {
    RQ_ASSERT(index > r->applied && term >= 1);
    struct raft_membership check;
    if (config_size > 0 && raft_membership_decode(config, config_size, &check) != 0) {
        RAFT_TRACE(r, "snapshot (%" PRIu64 ",%" PRIu64 ") has a malformed configuration: not "
                   "installed", term, index);
        return RQ_ECORRUPT;
    }
    r->stats.snapshots_installed++;
    if (raft_log_term(&r->log, index) == term) {
        /* Dissertation 5.3: the log holds the snapshot's last entry: what follows it stays. */
        RAFT_TRACE(r, "installed snapshot (%" PRIu64 ",%" PRIu64 "): my log agrees there, keep "
                   "entries after it", term, index);
        r->snap_index = index;
        r->snap_term = term;
        if (r->persist_next <= index) {
            /* Storage lacks some entries the snapshot covers: it cannot continue its log after
             * the snapshot, so it starts over there (the entries after it are handed anew). */
            r->truncate_from = 1;
            r->persist_next = index + 1;
        }
        if (r->durable_index < index) r->durable_index = index;
        compact_log(r, index);
    } else {
        RAFT_TRACE(r, "installed snapshot (%" PRIu64 ",%" PRIu64 "): my log (last %" PRIu64
                   ") is replaced by it", term, index, raft_log_last(&r->log));
        raft_log_reset(&r->log, index, term);
        int err = conf_set_base(r, config, config_size);
        RQ_ASSERT(err == 0);   /* checked above */
        r->snap_index = index;
        r->snap_term = term;
        r->truncate_from = 1;     /* the stored log goes too */
        r->persist_next = index + 1;
        /* Entries above the snapshot are gone: nothing beyond it is durable or acknowledgeable
         * any more (found by the raft_net fuzzer: a stale durable index let a follower
         * acknowledge entries before they were on disk, and a leader committed on one copy). */
        r->durable_index = index;
        if (r->acked > index) r->acked = index;
        if (r->leader_match > index) r->leader_match = index;
    }
    if (r->durable_index < index) r->durable_index = index;
    if (r->commit < index) r->commit = index;
    r->applied = index;
    if (r->role == RAFT_FOLLOWER && r->leader != 0) {
        if (r->leader_match < index) r->leader_match = index;
        replication_maybe_ack(r);
    }
    return 0;
}
