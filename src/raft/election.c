/* Leader election (paper 5.2), pre-vote (dissertation 9.6) and check-quorum (dissertation 6.2).
 *
 * A follower that hears nothing from a leader for its randomized election timeout first runs a
 * pre-vote: it asks whether the others would vote for it in term + 1, without changing its term.
 * Only if a majority would does it start the real election. A node partitioned away therefore
 * does not inflate its term and cannot depose a healthy leader when it returns. With
 * check-quorum, a node that heard from a leader within the election timeout refuses both kinds of
 * votes (the leader's "lease"), and a leader that has not heard from a majority within an election
 * timeout steps down. A leadership transfer (transfer.c) is the exception: its candidate skips
 * pre-vote, and its vote requests (transfer = 1) are granted inside the lease, since the leader
 * asked for the election itself; one vote per term and the log rule still apply. */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "raft/internal.h"

void election_reset_timeout(struct raft *r) {
    /* Paper 5.2: randomized timeouts make split votes rare. */
    uint32_t e = r->cfg.election_ticks;
    r->election_timeout = e + (uint32_t)rq_rng_below(&r->rng, e);
}

int election_in_lease(const struct raft *r) {
    if (!r->cfg.check_quorum || r->election_elapsed >= r->cfg.election_ticks) return 0;
    return r->leader != 0 || r->restart_guard;
}

/* Answers from voters of the configuration in use (a learner's vote does not count). */
static uint32_t count(const struct raft *r, const uint32_t *flags) {
    uint32_t c = 0;
    for (uint32_t i = 0; i < r->conf.count; i++) c += flags[i] != 0 && r->conf.voter[i];
    return c;
}

/* Counts the answers of the current campaign; wins or gives up when a majority decided. */
static void tally(struct raft *r) {
    uint32_t yes = count(r, r->granted);
    uint32_t no = count(r, r->rejected);
    uint32_t voters = raft_membership_voters(&r->conf);
    if (yes >= r->quorum) {
        if (r->role == RAFT_PRECANDIDATE) {
            RAFT_TRACE(r, "pre-vote won (%" PRIu32 " of %" PRIu32 "): start the election",
                       yes, voters);
            election_start(r, 0, 0);
        } else {
            RAFT_TRACE(r, "election won (%" PRIu32 " of %" PRIu32 " votes)", yes, voters);
            raft_become_leader(r);
        }
    } else if (no >= r->quorum) {
        raft_become_follower(r, r->term, 0, r->role == RAFT_PRECANDIDATE
                                                ? "pre-vote lost: a majority would not vote for me"
                                                : "election lost: a majority rejected me");
    }
}

void election_start(struct raft *r, int pre_vote, int transfer) {
    RQ_ASSERT(r->role != RAFT_LEADER);
    if (transfer) RQ_ASSERT(!pre_vote);
    r->campaign_transfer = (uint8_t)(transfer != 0);
    read_forget_forwarded(r);
    r->election_elapsed = 0;
    election_reset_timeout(r);
    memset(r->granted, 0, sizeof r->granted);
    memset(r->rejected, 0, sizeof r->rejected);
    r->leader = 0;
    uint8_t type;
    uint64_t term;
    if (pre_vote) {
        r->role = RAFT_PRECANDIDATE;
        r->stats.prevotes_started++;
        type = RAFT_MSG_PREVOTE;
        term = r->term + 1;
        RAFT_TRACE(r, "no leader heard for %" PRIu32 " ticks: pre-vote for term %" PRIu64,
                   r->election_timeout, term);
    } else {
        /* Paper 5.2: increment the term, vote for self, ask everyone. The requests wait in `held`
         * until the new term and vote are durable. */
        r->role = RAFT_CANDIDATE;
        r->term++;
        r->vote = r->cfg.id;
        r->hardstate_dirty = 1;
        r->stats.elections_started++;
        type = RAFT_MSG_VOTE;
        term = r->term;
        RAFT_TRACE(r, "start %selection with log (%" PRIu64 ",%" PRIu64 ")",
                   transfer ? "transfer " : "", raft_log_last_term(&r->log),
                   raft_log_last(&r->log));
    }
    RQ_ASSERT(conf_is_voter(r, r->cfg.id));   /* only voters campaign */
    r->granted[raft_member_slot(r, r->cfg.id)] = 1;
    for (uint32_t i = 0; i < r->conf.count; i++) {
        if (r->conf.ids[i] == r->cfg.id || !r->conf.voter[i]) continue;
        struct raft_msg m = {.type = type, .to = r->conf.ids[i], .term = term,
                             .last_index = raft_log_last(&r->log),
                             .last_term = raft_log_last_term(&r->log),
                             .transfer = r->campaign_transfer};
        raft_send(r, &m);
    }
    tally(r);
}

void election_tick(struct raft *r) {
    RQ_ASSERT(r->role != RAFT_LEADER);
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) r->restart_guard = 0;
    if (r->election_elapsed < r->election_timeout) return;
    if (!conf_is_voter(r, r->cfg.id)) {   /* a learner, a spare or a removed node waits */
        r->election_elapsed = 0;
        election_reset_timeout(r);
        return;
    }
    election_start(r, r->cfg.pre_vote, 0);
}

/* Paper 5.4.1: grant only to a candidate whose log is at least as up to date as ours: a later
 * last term, or the same last term and at least as long. */
static int log_up_to_date(const struct raft *r, const struct raft_msg *m, char *why, size_t cap) {
    uint64_t my_term = raft_log_last_term(&r->log), my_index = raft_log_last(&r->log);
    if (m->last_term > my_term || (m->last_term == my_term && m->last_index >= my_index))
        return 1;
    snprintf(why, cap, "my log (%" PRIu64 ",%" PRIu64 ") is more up to date than (%" PRIu64
             ",%" PRIu64 ")", my_term, my_index, m->last_term, m->last_index);
    return 0;
}

void election_on_request(struct raft *r, const struct raft_msg *m) {
    int pre = m->type == RAFT_MSG_PREVOTE;
    int transfer = !pre && m->transfer;   /* started by the leader's TIMEOUT_NOW (transfer.c) */
    char why[160] = "";
    int grant = 0;
    if (pre && m->term <= r->term) {
        snprintf(why, sizeof why, "its term %" PRIu64 " is not above mine", m->term);
    } else if (!transfer && election_in_lease(r)) {
        snprintf(why, sizeof why, "leader n%" PRIu32 " heard %" PRIu32 " ticks ago", r->leader,
                 r->election_elapsed);
    } else if (!pre && r->vote != 0 && r->vote != m->from) {
        snprintf(why, sizeof why, "already voted for n%" PRIu32, r->vote);
    } else if (!pre && r->vote == 0 && r->leader != 0) {
        snprintf(why, sizeof why, "n%" PRIu32 " leads this term", r->leader);
    } else {
        grant = log_up_to_date(r, m, why, sizeof why);
    }
    if (transfer && election_in_lease(r))
        RAFT_TRACE(r, "vote request from n%" PRIu32 " is a leadership transfer: the lease of n%"
                   PRIu32 " does not apply (dissertation 4.2.3)", m->from, r->leader);
    if (grant && !pre) {
        r->vote = m->from;
        r->hardstate_dirty = 1;
        r->election_elapsed = 0;   /* paper 5.2: granting a vote resets the timer */
    }
    if (grant) {
        RAFT_TRACE(r, "grant %s to n%" PRIu32 " for term %" PRIu64, pre ? "pre-vote" : "vote",
                   m->from, m->term);
    } else {
        RAFT_TRACE(r, "reject %s for n%" PRIu32 " (term %" PRIu64 "): %s",
                   pre ? "pre-vote" : "vote", m->from, m->term, why);
    }
    struct raft_msg resp = {.to = m->from, .reject = !grant};
    resp.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    /* A granted pre-vote answers in the candidate's hypothetical term; anything else in ours. */
    resp.term = pre && grant ? m->term : r->term;
    raft_send(r, &resp);
}

void election_on_response(struct raft *r, const struct raft_msg *m) {
    int pre = m->type == RAFT_MSG_PREVOTE_RESP;
    if (pre && (r->role != RAFT_PRECANDIDATE || (!m->reject && m->term != r->term + 1))) return;
    if (!pre && (r->role != RAFT_CANDIDATE || m->term != r->term)) return;
    uint32_t slot = raft_member_slot(r, m->from);
    if (slot >= r->conf.count || !r->conf.voter[slot]) return;   /* not a voter's answer */
    if (m->reject) {
        r->rejected[slot] = 1;
        r->granted[slot] = 0;
    } else {
        r->granted[slot] = 1;
        r->rejected[slot] = 0;
    }
    tally(r);
}

/* Dissertation 6.2: a leader steps down when an election timeout passes without it hearing from
 * a majority; clients then find the real leader instead of waiting on a deposed one. */
void election_check_quorum(struct raft *r) {
    RQ_ASSERT(r->role == RAFT_LEADER);
    r->election_elapsed++;
    if (r->election_elapsed < r->cfg.election_ticks) return;
    r->election_elapsed = 0;
    if (!r->cfg.check_quorum) return;
    uint32_t active = 0;
    for (uint32_t i = 0; i < r->conf.count; i++) {
        struct raft_progress *pr = &r->progress[i];
        if (r->conf.voter[i] && (pr->id == r->cfg.id || pr->recent_active)) active++;
        pr->recent_active = 0;
    }
    if (active < r->quorum) {
        r->stats.stepped_down_check_quorum++;
        char why[96];
        snprintf(why, sizeof why, "check-quorum: heard from %" PRIu32 " of %" PRIu32
                 " voters in the last election timeout", active,
                 raft_membership_voters(&r->conf));
        raft_become_follower(r, r->term, 0, why);
    }
}
