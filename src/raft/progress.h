/* progress.h — what a leader knows about one follower's log (etcd's Progress).
 *
 * PROBE: the leader does not know where the follower's log matches its own. It sends one append
 * at a time (prev_index = next - 1) and waits for the answer or the next heartbeat response;
 * a rejection moves `next` back (fast back-off, paper 5.3).
 * REPLICATE: the follower matched at `match`; the leader streams appends optimistically, advancing
 * `next` as it sends, with at most `window` appends unacknowledged (pipelining with a bounded
 * in-flight window). A rejection or a gap falls back to PROBE.
 * SNAPSHOT: the entries the follower needs next were compacted away; the leader streams its
 * snapshot (snap_index) in chunks, one at a time (snap_offset: the file offset the follower asked
 * for last), and sends no appends until the follower acknowledges snap_index; then PROBE.
 * LOAD (raft_config.stored_log): the entries the follower needs next (from `next`) are below the
 * in-memory log; the leader asked the caller to read them from storage and sends nothing else
 * until they come (raft_send_loaded: one append, then PROBE at next) or do not (the snapshot). */
#ifndef RQ_RAFT_PROGRESS_H
#define RQ_RAFT_PROGRESS_H

#include <stdint.h>

#include "raft/raft.h"

enum raft_progress_state {
    RAFT_PROGRESS_PROBE = 0,
    RAFT_PROGRESS_REPLICATE = 1,
    RAFT_PROGRESS_SNAPSHOT = 2,
    RAFT_PROGRESS_LOAD = 3,
};

struct raft_progress {
    uint32_t id;
    enum raft_progress_state state;
    uint64_t match;             /* highest index known replicated (durably) on the follower */
    uint64_t next;              /* next index to send */
    uint8_t probe_sent;         /* PROBE: an append is out, wait for its answer */
    uint8_t recent_active;      /* heard from it since the last check-quorum round */
    uint64_t heartbeat_match;   /* match when the previous heartbeat answer came: no progress
                                   between two answers means an append was lost */
    uint32_t inflight_count;    /* REPLICATE: appends not yet acknowledged */
    uint32_t inflight_head;
    uint64_t inflight_last[RAFT_INFLIGHT_MAX];   /* last index carried by each, oldest first */
    uint64_t snap_index;        /* SNAPSHOT: the snapshot being sent (its term: snap_term) */
    uint64_t snap_term;
    uint64_t snap_offset;       /* the file offset the follower wants next */
    uint8_t snap_heard;         /* a SNAPSHOT_RESP came since the last heartbeat answer */
    uint8_t load_rounds;        /* LOAD: heartbeat answers since the entries were asked for */
    uint64_t loaded_upto;       /* PROBE after raft_send_loaded: the last entry it carried (0:
                                   none); the follower acknowledges it piecemeal as its storage
                                   makes the entries durable, and acks below it are not news */
};

void progress_reset(struct raft_progress *pr, uint32_t id, uint64_t last_index);
void progress_become_probe(struct raft_progress *pr);
void progress_become_replicate(struct raft_progress *pr);
void progress_become_snapshot(struct raft_progress *pr, uint64_t snap_index, uint64_t snap_term);
/* The caller was asked to read the entries from pr->next on. */
void progress_become_load(struct raft_progress *pr);
/* LOAD: entries next..last were sent: PROBE, waiting for the answers to that append. */
void progress_loaded_sent(struct raft_progress *pr, uint64_t last);
/* Whether the leader may send another append now. */
int progress_is_paused(const struct raft_progress *pr, uint32_t window);
/* An append carrying entries up to last_index (prev_index when empty) was sent. */
void progress_sent(struct raft_progress *pr, uint64_t last_index, uint32_t entry_count);
/* The follower holds everything up to index. Returns 1 when match advanced. */
int progress_ack(struct raft_progress *pr, uint64_t index);
/* The follower rejected prev_index `rejected`; resume at `next` (already clamped by the caller).
 * Returns 0 when the rejection is stale (answers an append sent before the state changed). */
int progress_reject(struct raft_progress *pr, uint64_t rejected, uint64_t next);

#endif
