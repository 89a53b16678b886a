/* internal.h — the state of one Raft group, shared by the files that implement it (raft.c: inputs,
 * outputs and role changes; election.c: timeouts, pre-vote, votes, check-quorum; replication.c:
 * appends, acknowledgements, commitment; read.c: ReadIndex and leases; transfer.c: leadership
 * transfer). Not for use outside src/raft/ (tests excepted). */
#ifndef RQ_RAFT_INTERNAL_H
#define RQ_RAFT_INTERNAL_H

#include <inttypes.h>
#include <stdint.h>

#include "base/log.h"
#include "base/rng.h"
#include "raft/log.h"
#include "raft/progress.h"
#include "raft/raft.h"

enum { RAFT_ROUNDS = 8 };          /* heartbeat rounds remembered (read.c) */

struct raft {
    struct raft_config cfg;
    /* Membership (reconfig.c): the configuration in use (the newest in the log, committed or
     * not), the entry it comes from (0: the base), and the one as of the log's base (from the
     * snapshot, or raft_config's voters). Per-member arrays below are indexed by conf slot. */
    struct raft_membership conf;
    uint64_t conf_index;
    struct raft_membership base_conf;
    uint32_t quorum;              /* voters in conf / 2 + 1 */
    enum raft_role role;
    uint64_t term;
    uint32_t vote;
    uint32_t leader;              /* 0: unknown */
    struct raft_log log;
    uint64_t commit;
    uint64_t applied;

    /* Persistence (see raft.h). */
    uint8_t hardstate_dirty;      /* (term, vote) changed since last handed */
    uint64_t durable_term;        /* newest (term, vote) storage reported durable */
    uint32_t durable_vote;
    uint64_t durable_index;       /* every entry <= it is durable */
    uint64_t persist_next;        /* first entry not yet handed to storage */
    uint64_t truncate_from;       /* 0, or a truncation of handed entries still to hand */

    /* Timers, in ticks. */
    uint32_t election_elapsed;    /* since the last valid leader contact / own election start;
                                     a leader: since the last check-quorum round */
    uint64_t ticks;               /* since creation: heartbeats go out when it is a multiple of
                                     heartbeat_ticks, so every group created on one tick of a
                                     node heartbeats on the same ticks (one batch per peer) */
    uint32_t election_timeout;    /* randomized, [election_ticks, 2 * election_ticks) */
    uint8_t restart_guard;        /* just created: refuse votes for election_ticks (a leader's
                                     lease may be live, and we forgot hearing from it) */
    struct rq_rng rng;

    /* Elections: who granted / rejected in the current (pre-)campaign. */
    uint32_t granted[RAFT_MEMBERS_MAX];
    uint32_t rejected[RAFT_MEMBERS_MAX];

    /* Leader: one per member, self included (its match is the durable index). */
    struct raft_progress progress[RAFT_MEMBERS_MAX];
    uint64_t heartbeat_context;

    /* Follower: highest index known to agree with the current leader's log, and the highest
     * acknowledged to it (acks go out as durability catches up). */
    uint64_t leader_match;
    uint64_t acked;

    /* ReadIndex (read.c). Leader: reads waiting for a majority, in registration order; a read
     * with context 0 waits for the first commit of this term. */
    struct raft_pending_read {
        uint64_t ctx;
        uint32_t from;            /* the node that asked (this one, or a follower) */
        uint64_t index;           /* the commit index when its round started */
        uint64_t context;         /* the heartbeat context of its round; 0: not started */
    } reads[RAFT_READS_MAX];
    uint32_t read_count;
    struct raft_read_ready ready[RAFT_READS_MAX];
    uint32_t ready_count;
    /* Follower: reads forwarded to the leader, each under a random token (the caller's ctx may
     * repeat across restarts, and an answer to a read of an earlier life must not count). */
    struct raft_forwarded_read {
        uint64_t token;
        uint64_t ctx;
        uint32_t leader;
    } forwarded[RAFT_READS_MAX];
    uint32_t forwarded_count;
    /* The last 8 heartbeat rounds, their send ticks and who answered (read.c): a round a majority
     * answers confirms the reads registered before it, and starts the lease. */
    struct raft_lease_round {
        uint64_t context;
        uint64_t sent_tick;
        uint8_t acks[RAFT_MEMBERS_MAX];
    } rounds[RAFT_ROUNDS];
    uint64_t lease_start_tick;    /* send tick of the newest round a majority answered; valid
                                     only when lease_valid */
    uint8_t lease_valid;

    /* Snapshots (snapshot.c). */
    uint64_t snap_index;          /* newest durable snapshot (0: none) */
    uint64_t snap_term;
    struct raft_snapshot_request snap_requests[RAFT_MEMBERS_MAX];   /* chunks the caller should
                                                                      read, one per follower */
    uint32_t snap_request_count;
    struct raft_load_request load_requests[RAFT_MEMBERS_MAX];   /* stored_log (load.c): entries
                                                                  the caller should read */
    uint32_t load_request_count;
    uint8_t snap_incoming;        /* follower: snap_chunk holds a chunk for the caller */
    struct raft_snapshot_chunk snap_chunk;
    /* Leadership transfer (transfer.c, dissertation 3.10). Leader: the voter it hands off to
     * (0: none; proposals are refused meanwhile) and the leader ticks since the transfer began
     * (it aborts at election_ticks). Any role: the term in which this node, as leader, sent a
     * TIMEOUT_NOW (0: never); its lease is forfeited for the rest of that term. Candidate: the
     * current campaign was started by TIMEOUT_NOW, so its vote requests carry transfer = 1. */
    uint32_t transfer_target;
    uint32_t transfer_elapsed;
    uint64_t timeout_now_term;
    uint8_t campaign_transfer;

    struct raft_msg outbox[RAFT_OUTBOX_MAX];
    uint32_t outbox_count;
    struct raft_msg held[RAFT_HELD_MAX];   /* waiting for the hard state (no entries) */
    uint32_t held_count;

    struct raft_stats stats;
};

/* Trace: one line per decision, "g<group> t<term> <role>: <what>: <why>". */
#define RAFT_TRACE(r, fmt, ...)                                                               \
    RQ_INFO("g%" PRIu32 " t%" PRIu64 " %s: " fmt, (r)->cfg.group, (r)->term,                 \
            raft_role_name((r)->role), __VA_ARGS__)

/* raft.c */
uint32_t raft_member_slot(const struct raft *r, uint32_t id);   /* RAFT_MEMBERS_MAX if none */
void raft_send(struct raft *r, struct raft_msg *m);
void raft_become_follower(struct raft *r, uint64_t term, uint32_t leader, const char *why);
void raft_become_leader(struct raft *r);
void raft_follow(struct raft *r, uint32_t leader);
int raft_hardstate_durable(const struct raft *r);
uint64_t raft_self_match(const struct raft *r);

/* election.c */
void election_reset_timeout(struct raft *r);
void election_tick(struct raft *r);
int election_in_lease(const struct raft *r);
/* pre_vote: a pre-vote round (dissertation 9.6); transfer: a real election started by TIMEOUT_NOW
 * (never with pre_vote). */
void election_start(struct raft *r, int pre_vote, int transfer);
void election_on_request(struct raft *r, const struct raft_msg *m);
void election_on_response(struct raft *r, const struct raft_msg *m);
void election_check_quorum(struct raft *r);

/* read.c */
void read_on_request(struct raft *r, const struct raft_msg *m);
void read_on_response(struct raft *r, const struct raft_msg *m);
void read_on_heartbeat_response(struct raft *r, const struct raft_msg *m);
void read_on_heartbeat_sent(struct raft *r);
void read_on_commit(struct raft *r);
void read_on_step_down(struct raft *r);
void read_forget_forwarded(struct raft *r);
void replication_heartbeat(struct raft *r);

/* reconfig.c */
void conf_init(struct raft *r);
int conf_is_voter(const struct raft *r, uint32_t id);
void conf_on_append(struct raft *r, const struct raft_entry *e);
void conf_on_truncate(struct raft *r, uint64_t from);
void conf_on_compact(struct raft *r, uint64_t upto);
void conf_on_commit(struct raft *r);
int conf_set_base(struct raft *r, const uint8_t *blob, size_t size);

/* snapshot.c */
void snapshot_send_to(struct raft *r, struct raft_progress *pr);
void snapshot_on_install(struct raft *r, const struct raft_msg *m);
void snapshot_on_response(struct raft *r, const struct raft_msg *m);
void snapshot_on_heartbeat_response(struct raft *r, struct raft_progress *pr);
/* load.c */
void load_send_to(struct raft *r, struct raft_progress *pr);
void load_on_heartbeat_response(struct raft *r, struct raft_progress *pr);

/* transfer.c */
void transfer_tick(struct raft *r);
void transfer_on_match(struct raft *r, const struct raft_progress *pr);
void transfer_clear(struct raft *r, const char *why);
void transfer_on_timeout_now(struct raft *r, const struct raft_msg *m);

/* replication.c */
void replication_tick(struct raft *r);
void replication_send_append(struct raft *r, struct raft_progress *pr);
void replication_broadcast(struct raft *r);
void replication_on_append(struct raft *r, const struct raft_msg *m);
void replication_on_append_response(struct raft *r, const struct raft_msg *m);
void replication_on_heartbeat(struct raft *r, const struct raft_msg *m);
void replication_on_heartbeat_response(struct raft *r, const struct raft_msg *m);
void replication_maybe_commit(struct raft *r);
void replication_maybe_ack(struct raft *r);
/* Follower: tells the leader how far our log is durable and agrees with its own, after raising
 * leader_match to `agreed` (always sent: the leader may be probing because an answer was lost). */
void replication_ack(struct raft *r, uint32_t leader, uint64_t agreed);

#endif
