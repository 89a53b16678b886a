/* A stored log (raft_config.stored_log): a follower behind the in-memory log gets the old entries
 * read back from the leader's storage, not the snapshot.
 *
 * Dissertation chapter 5 compacts the log because the state machine holds everything the log did.
 * A queue partition's state machine does not: its log is its data, so a snapshot that replaced a
 * follower's log would leave it without the messages below the snapshot. Its storage keeps every
 * entry anyway, and only the in-memory log is compacted (so memory stays bounded); a follower
 * whose next entry is below it is served from storage:
 *
 *   leader:  follower's next below the log's base -> progress LOAD -> raft_load_requests
 *            -> the caller reads first.. from storage -> raft_send_loaded -> APPEND (prev first-1)
 *            -> progress PROBE at first; the follower acknowledges the entries as its storage
 *            makes them durable, and once it holds the last one progress moves on (more loads,
 *            or the log in memory once it reaches the base). A heartbeat round with no ack
 *            sends again from the follower's match. Storage has them no longer (retention):
 *            raft_load_unavailable -> the snapshot (snapshot.c).
 *
 * The entries are below the base, so below the snapshot, so committed (paper 5.4: a committed
 * entry is in every later leader's log): any durable copy is the right one. No answer for a
 * heartbeat round: asked again (a read the caller dropped, or a follower that was asked for while
 * the caller was busy). */
#include "base/assert.h"
#include "raft/internal.h"

static void request_load(struct raft *r, const struct raft_progress *pr) {
    uint64_t upto = r->log.base_index - pr->next + 1;   /* entries below the memory */
    uint32_t count = upto < r->cfg.msg_entries_max ? (uint32_t)upto : r->cfg.msg_entries_max;
    struct raft_load_request req = {.to = pr->id, .first = pr->next, .count_max = count};
    r->stats.loads_requested++;
    for (uint32_t i = 0; i < r->load_request_count; i++) {
        if (r->load_requests[i].to == pr->id) {
            r->load_requests[i] = req;
            return;
        }
    }
    RQ_ASSERT(r->load_request_count < RAFT_MEMBERS_MAX);
    r->load_requests[r->load_request_count++] = req;
}

/* The follower needs entries below the log's first: ask the caller to read them. */
void load_send_to(struct raft *r, struct raft_progress *pr) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    RQ_ASSERT(r->cfg.stored_log);
    RQ_ASSERT(pr->next >= 1 && pr->next <= r->log.base_index);
    RAFT_TRACE(r, "n%" PRIu32 " needs entry %" PRIu64 ", below my log (first %" PRIu64
               "): read it from storage", pr->id, pr->next, raft_log_first(&r->log));
    progress_become_load(pr);
    request_load(r, pr);
}

/* The progress of a follower that still waits for the entries from first, else NULL. */
static struct raft_progress *load_progress(struct raft *r, uint32_t to, uint64_t first) {
    if (r->role != RAFT_LEADER) return NULL;
    uint32_t slot = raft_member_slot(r, to);
    if (slot >= r->conf.count) return NULL;
    struct raft_progress *pr = &r->progress[slot];
    if (pr->state != RAFT_PROGRESS_LOAD || pr->next != first) return NULL;
    return pr;
}

/* How many of the loaded entries one append carries: msg_entries_max, msg_bytes_max (one always
 * fits) and the log's base (above it the memory has them). */
static uint32_t loaded_batch(const struct raft *r, uint64_t first, const struct raft_entry *entries,
                             uint32_t count) {
    uint32_t n = 0;
    uint64_t bytes = 0;
    while (n < count && n < r->cfg.msg_entries_max && first + n <= r->log.base_index) {
        if (n > 0 && bytes + entries[n].data_size > r->cfg.msg_bytes_max) break;
        bytes += entries[n].data_size;
        n++;
    }
    return n;
}

void raft_send_loaded(struct raft *r, uint32_t to, uint64_t first, uint64_t prev_term,
                      const struct raft_entry *entries, uint32_t count) {
    RQ_ASSERT(count >= 1 && entries != NULL && first >= 1);
    for (uint32_t i = 0; i < count; i++) RQ_ASSERT(entries[i].index == first + i);
    if (first == 1) RQ_ASSERT(prev_term == 0);
    struct raft_progress *pr = load_progress(r, to, first);
    if (pr == NULL || !raft_hardstate_durable(r)) return;   /* stale, or asked for again later */
    uint32_t n = loaded_batch(r, first, entries, count);
    RQ_ASSERT(n >= 1);   /* LOAD means next <= base */
    /* The entry at the base is the one the snapshot ends at: storage agrees with memory there. */
    if (first + n - 1 == r->log.base_index) RQ_ASSERT(entries[n - 1].term == r->log.base_term);
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .to = to, .term = r->term,
                         .prev_index = first - 1, .prev_term = prev_term, .commit = r->commit,
                         .entry_count = n, .entries = entries};
    RAFT_TRACE(r, "send n%" PRIu32 " entries %" PRIu64 "..%" PRIu64 " read from storage", to,
               first, first + n - 1);
    raft_send(r, &m);
    progress_loaded_sent(pr, first + n - 1);
    r->stats.appends_sent++;
    r->stats.entries_sent += n;
    r->stats.loaded_entries_sent += n;
}

void raft_load_unavailable(struct raft *r, uint32_t to, uint64_t first) {
    struct raft_progress *pr = load_progress(r, to, first);
    if (pr == NULL) return;
    RAFT_TRACE(r, "entry %" PRIu64 " for n%" PRIu32 " is no longer stored: send the snapshot",
               first, to);
    snapshot_send_to(r, pr);
}

uint32_t raft_load_requests(const struct raft *r, const struct raft_load_request **reqs) {
    *reqs = r->load_requests;
    return r->load_request_count;
}

void raft_load_requests_clear(struct raft *r) { r->load_request_count = 0; }

/* A heartbeat answer while the follower waits for a read: after a whole round (two answers) with
 * no raft_send_loaded, the request (or the caller's answer) was lost: ask again. */
void load_on_heartbeat_response(struct raft *r, struct raft_progress *pr) {
    RQ_ASSERT(pr->state == RAFT_PROGRESS_LOAD);
    if (++pr->load_rounds < 2) return;
    pr->load_rounds = 0;
    RAFT_TRACE(r, "n%" PRIu32 " still waits for entry %" PRIu64 " from storage: ask again", pr->id,
               pr->next);
    request_load(r, pr);
}
