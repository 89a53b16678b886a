/* Leadership transfer (Raft dissertation 3.10).
 *
 * The leader hands its role to a chosen voter (to take a server down for maintenance, or to move
 * leaders where clients are). It stops taking proposals, so its log stops growing; it brings the
 * target's log up to its own last index with ordinary appends; then it sends TIMEOUT_NOW, and the
 * target starts an election at once, without waiting for its timeout and without pre-vote. The
 * target's log is as up to date as any, so it wins unless something went wrong; the old leader
 * learns the new term from the target's vote request and steps down.
 *
 * If the target does not take over within an election timeout (it is cut off, slow, or the
 * TIMEOUT_NOW was lost), the leader aborts the transfer and takes proposals again. On the abort it
 * appends a no-op of its term: a TIMEOUT_NOW still in flight names the old last index, which then
 * no longer matches the target's log once the no-op reaches it, so a late TIMEOUT_NOW cannot make
 * the target depose the leader that gave up on the transfer (the target checks its last index).
 *
 * Check-quorum makes voters ignore vote requests while they hear from a leader (its "lease",
 * election.c). A transfer's election must win inside that lease, so its vote requests carry
 * transfer = 1 and voters do not apply the lease to them (dissertation 4.2.3: "a server could
 * disregard this check if the leader itself asked for the election"). The price: the old leader's
 * own lease no longer proves no other leader exists, so a leader that sent TIMEOUT_NOW serves no
 * more lease reads in that term (read.c falls back to ReadIndex). */
#include "base/assert.h"
#include "base/errors.h"
#include "raft/internal.h"

static void send_timeout_now(struct raft *r, uint32_t target) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    uint64_t last = raft_log_last(&r->log);
    /* From here on this term's lease is forfeited: the target's voters grant it inside it. */
    r->timeout_now_term = r->term;
    r->stats.timeouts_now_sent++;
    RAFT_TRACE(r, "transfer: n%" PRIu32 " holds my whole log (%" PRIu64
               "): send timeout-now, and serve no more lease reads this term", target, last);
    struct raft_msg m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = target, .term = r->term,
                         .last_index = last};
    raft_send(r, &m);
}

int raft_transfer_leader(struct raft *r, uint32_t target) {
    if (r->role != RAFT_LEADER) return RQ_ENOTLEADER;
    uint32_t slot = raft_member_slot(r, target);
    if (target == r->cfg.id || !conf_is_voter(r, target)) return RQ_EINVAL;
    if (r->transfer_target == target) return 0;   /* already under way: nothing more to do */
    if (r->transfer_target != 0) return RQ_EBUSY;
    r->transfer_target = target;
    r->transfer_elapsed = 0;
    r->stats.transfers_started++;
    struct raft_progress *pr = &r->progress[slot];
    uint64_t last = raft_log_last(&r->log);
    RQ_ASSERT(pr->match <= last);
    if (pr->match == last) {
        RAFT_TRACE(r, "transfer to n%" PRIu32 ": refuse proposals until it takes over", target);
        send_timeout_now(r, target);
        return 0;
    }
    RAFT_TRACE(r, "transfer to n%" PRIu32 ": refuse proposals; it holds %" PRIu64 " of %" PRIu64
               ": catch it up first", target, pr->match, last);
    replication_send_append(r, pr);
    return 0;
}

uint32_t raft_transfer_target(const struct raft *r) { return r->transfer_target; }

void transfer_on_match(struct raft *r, const struct raft_progress *pr) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    if (r->transfer_target == 0 || pr->id != r->transfer_target) return;
    if (pr->match != raft_log_last(&r->log)) return;
    send_timeout_now(r, pr->id);
}

void transfer_tick(struct raft *r) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    if (r->transfer_target == 0) return;
    r->transfer_elapsed++;
    if (r->transfer_elapsed < r->cfg.election_ticks) return;
    RAFT_TRACE(r, "transfer to n%" PRIu32 " aborted: it did not take over within %" PRIu32
               " ticks; take proposals again", r->transfer_target, r->transfer_elapsed);
    r->stats.transfers_aborted++;
    r->transfer_target = 0;
    r->transfer_elapsed = 0;
    /* A TIMEOUT_NOW still in flight names our last index; one more entry makes it stale. */
    uint64_t last = raft_log_last(&r->log);
    struct raft_entry noop = {.index = last + 1, .term = r->term, .type = RAFT_ENTRY_NOOP};
    if (raft_log_append(&r->log, &noop) != 0) {
        RAFT_TRACE(r, "no room for the no-op after the aborted transfer (%" PRIu32
                   " entries in memory): a late timeout-now may still start an election",
                   r->log.count);
        return;
    }
    replication_broadcast(r);
    replication_maybe_commit(r);
}

void transfer_clear(struct raft *r, const char *why) {
    if (r->transfer_target == 0) return;
    RAFT_TRACE(r, "transfer to n%" PRIu32 " ends: %s", r->transfer_target, why);
    r->transfer_target = 0;
    r->transfer_elapsed = 0;
}

/* The target's side: campaign at once, if the leader's log is exactly ours. */
void transfer_on_timeout_now(struct raft *r, const struct raft_msg *m) {
    RQ_ASSERT(m->type == RAFT_MSG_TIMEOUT_NOW);
    RQ_ASSERT(m->term == r->term);   /* step_term dropped older terms, a newer one made us follow */
    uint64_t last = raft_log_last(&r->log);
    if (r->role != RAFT_FOLLOWER || m->from != r->leader) {
        RAFT_TRACE(r, "ignore timeout-now from n%" PRIu32 ": it is not the leader I follow (n%"
                   PRIu32 ")", m->from, r->leader);
        return;
    }
    if (!conf_is_voter(r, r->cfg.id)) {
        RAFT_TRACE(r, "ignore timeout-now from n%" PRIu32 ": I am not a voter", m->from);
        return;
    }
    if (last != m->last_index) {
        RAFT_TRACE(r, "stale timeout-now: leader n%" PRIu32 " sent it at last index %" PRIu64
                   ", my log ends at %" PRIu64 ": ignore it", m->from, m->last_index, last);
        return;
    }
    RAFT_TRACE(r, "timeout-now from leader n%" PRIu32 ": my log matches its (%" PRIu64
               "): campaign at once, without pre-vote", m->from, last);
    election_start(r, 0, 1);
}
