/* Per-follower replication state; see progress.h. */
#include "raft/progress.h"

#include <string.h>

#include "base/assert.h"

void progress_reset(struct raft_progress *pr, uint32_t id, uint64_t last_index) {
    memset(pr, 0, sizeof *pr);
    pr->id = id;
    pr->state = RAFT_PROGRESS_PROBE;
    pr->next = last_index + 1;
}

static void inflight_clear(struct raft_progress *pr) {
    pr->inflight_count = 0;
    pr->inflight_head = 0;
    pr->loaded_upto = 0;
}

void progress_become_probe(struct raft_progress *pr) {
    pr->state = RAFT_PROGRESS_PROBE;
    pr->next = pr->match + 1;
    pr->probe_sent = 0;
    inflight_clear(pr);
}

void progress_become_replicate(struct raft_progress *pr) {
    pr->state = RAFT_PROGRESS_REPLICATE;
    pr->next = pr->match + 1;
    pr->probe_sent = 0;
    inflight_clear(pr);
}

void progress_become_snapshot(struct raft_progress *pr, uint64_t snap_index, uint64_t snap_term) {
    pr->state = RAFT_PROGRESS_SNAPSHOT;
    pr->probe_sent = 0;
    pr->snap_index = snap_index;
    pr->snap_term = snap_term;
    pr->snap_offset = 0;
    pr->snap_heard = 0;
    inflight_clear(pr);
}

void progress_become_load(struct raft_progress *pr) {
    pr->state = RAFT_PROGRESS_LOAD;
    pr->probe_sent = 0;
    pr->load_rounds = 0;
    inflight_clear(pr);
}

void progress_loaded_sent(struct raft_progress *pr, uint64_t last) {
    RQ_ASSERT(pr->state == RAFT_PROGRESS_LOAD);
    RQ_ASSERT(last >= pr->next);
    pr->state = RAFT_PROGRESS_PROBE;
    pr->probe_sent = 1;
    pr->loaded_upto = last;
}

int progress_is_paused(const struct raft_progress *pr, uint32_t window) {
    RQ_ASSERT(window >= 1 && window <= RAFT_INFLIGHT_MAX);
    if (pr->state == RAFT_PROGRESS_SNAPSHOT || pr->state == RAFT_PROGRESS_LOAD) return 1;
    if (pr->state == RAFT_PROGRESS_PROBE) return pr->probe_sent;
    return pr->inflight_count >= window;
}

void progress_sent(struct raft_progress *pr, uint64_t last_index, uint32_t entry_count) {
    if (pr->state == RAFT_PROGRESS_PROBE) {
        pr->probe_sent = 1;
        return;
    }
    if (entry_count == 0) return;  /* an empty append (commit news) holds no window slot */
    RQ_ASSERT(last_index >= pr->next);
    RQ_ASSERT(pr->inflight_count < RAFT_INFLIGHT_MAX);
    pr->next = last_index + 1;
    pr->inflight_last[(pr->inflight_head + pr->inflight_count) % RAFT_INFLIGHT_MAX] = last_index;
    pr->inflight_count++;
}

int progress_ack(struct raft_progress *pr, uint64_t index) {
    while (pr->inflight_count > 0 && pr->inflight_last[pr->inflight_head] <= index) {
        pr->inflight_head = (pr->inflight_head + 1) % RAFT_INFLIGHT_MAX;
        pr->inflight_count--;
    }
    if (index <= pr->match) return 0;
    pr->match = index;
    if (pr->next <= index) pr->next = index + 1;
    pr->probe_sent = 0;
    return 1;
}

int progress_reject(struct raft_progress *pr, uint64_t rejected, uint64_t next) {
    if (rejected <= pr->match) return 0;                       /* already known to match there */
    if (pr->state == RAFT_PROGRESS_SNAPSHOT || pr->state == RAFT_PROGRESS_LOAD)
        return 0;                                              /* answers an append from before */
    if (pr->state == RAFT_PROGRESS_PROBE && rejected != pr->next - 1) return 0;
    RQ_ASSERT(next > pr->match && next <= rejected);
    pr->state = RAFT_PROGRESS_PROBE;
    pr->next = next;
    pr->probe_sent = 0;
    inflight_clear(pr);
    return 1;
}
