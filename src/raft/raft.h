/* raft.h — one Raft group as a pure state machine (DESIGN.md, "Raft"; the model is etcd's raft).
 *
 * Inputs:  raft_step (a message from a peer), raft_tick (the node's shared clock tick),
 *          raft_propose (a client's entry), raft_persisted_* (the node's storage reports that what
 *          it was handed is durable), raft_applied (the state machine caught up).
 * Outputs: the caller drains them after every input, in this order:
 *          1. raft_hardstate_pending  -> save (term, vote) (store/hardstate.h)
 *          2. raft_persist_pending    -> truncate the stored log, then append entries (store.h);
 *                                        report how far with raft_persist_handed
 *          3. raft_outbox             -> send these messages, then raft_outbox_clear
 *          4. raft_apply_pending      -> apply committed entries, then raft_applied
 *          5. raft_reads_ready        -> serve reads once applied reaches their index
 *
 * Persist-before-send is enforced here, not left to the caller: a message that depends on state
 * not yet durable is never put in the outbox. Every message waits until the current (term, vote)
 * is reported durable (paper figure 2: "updated on stable storage before responding to RPCs");
 * a follower acknowledges entries only up to the index its storage reported durable; a leader
 * counts itself toward a majority only up to its own durable index (dissertation 10.2.1: the
 * leader's append may run in parallel with the sends). So a caller may send the outbox as soon as
 * it has handed the hard state and entries to storage.
 *
 * Memory: the group keeps its log in memory (entries and copies of their data), bounded by
 * raft_config.log_entries_max and log_bytes_max; proposals beyond the bound get RQ_EBUSY. Snapshots
 * (below, "snapshots") compact it. Pointers into entries (raft_entry_at, entries in outbox
 * messages, an incoming snapshot chunk) stay valid until the next input.
 *
 * Nothing here does I/O or reads a clock; randomness (the election timeout) comes from a seeded
 * generator in the config. Every decision that changes state is logged at INFO with its reason;
 * in the simulator those lines are the trace. */
#ifndef RQ_RAFT_RAFT_H
#define RQ_RAFT_RAFT_H

#include <stdint.h>

#include "raft/membership.h"
#include "raft/msg.h"

enum {
    RAFT_VOTERS_MAX = RAFT_MEMBERS_MAX,   /* of the bootstrap configuration */
    RAFT_INFLIGHT_MAX = 64,   /* appends in flight to one follower, upper bound of the window */
    RAFT_OUTBOX_MAX = 128,    /* messages one input may produce; beyond it they are dropped */
    RAFT_HELD_MAX = 32,       /* messages waiting for the hard state to become durable */
    RAFT_READS_MAX = 64,      /* reads waiting for confirmation, and confirmed reads not taken */
};

enum raft_role { RAFT_FOLLOWER = 0, RAFT_PRECANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

struct raft_config {
    uint32_t id;                          /* this node */
    uint32_t group;                       /* < RAFT_GROUP_ID_LIMIT */
    /* The bootstrap configuration: the voters until the log or a snapshot says otherwise (node
     * ids, no duplicates). A node that is not among them (a spare, to be added later) starts as
     * a non-member: it never campaigns, and follows a leader that adds it. */
    uint32_t voters[RAFT_VOTERS_MAX];
    uint32_t voter_count;                 /* 1..RAFT_VOTERS_MAX */
    uint32_t election_ticks;              /* a follower's timeout is drawn from [e, 2e) ticks */
    uint32_t heartbeat_ticks;             /* < election_ticks; a leader heartbeats on every tick
                                             that is a multiple of it, counted from creation */
    uint32_t inflight_max;                /* 1..RAFT_INFLIGHT_MAX appends in flight per follower */
    uint32_t msg_entries_max;             /* 1..RAFT_MSG_ENTRIES_MAX entries per append */
    uint32_t msg_bytes_max;               /* entry data bytes per append (one entry always fits) */
    uint32_t log_entries_max;             /* entries held in memory */
    uint64_t log_bytes_max;               /* entry data bytes held in memory */
    uint32_t uncommitted_max;             /* proposals beyond commit + this get RQ_EBUSY */
    uint8_t pre_vote;                     /* dissertation 9.6 (on by default) */
    uint8_t check_quorum;                 /* dissertation 6.2 / 9.6 (on by default) */
    uint32_t lease_ticks;                 /* leader lease for raft_read_lease, in ticks; 0: no
                                             lease reads. Must be below what followers wait
                                             before voting, allowing for clock drift:
                                             raft_lease_ticks computes it. Needs check_quorum. */
    uint64_t seed;                        /* for election timeouts */
    /* Snapshots (dissertation 5): raft_snapshot_wanted says when the caller should take one. */
    uint32_t snapshot_entries;            /* entries applied since the last snapshot; 0: never */
    uint64_t snapshot_bytes;              /* or entry bytes in memory; 0: no byte threshold */
    uint32_t snapshot_trailing;           /* entries kept below a new snapshot (holding at most
                                             snapshot_bytes / 2 of data), so a follower a
                                             little behind still gets entries, not the snapshot */
    /* The caller's storage keeps every entry below the in-memory log (a queue partition: the log
     * is the data; see "stored log" below). A follower that needs entries the memory no longer
     * holds gets them read from storage (raft_load_requests), not the snapshot, as long as
     * storage still has them. 0: InstallSnapshot as before. */
    uint8_t stored_log;
};

/* Fills the defaults (pre-vote and check-quorum on, 10/1 ticks, window 16, ...); the caller sets
 * id, group and voters. */
void raft_config_default(struct raft_config *cfg);

/* The longest safe lease for election_ticks when clocks drift by at most drift_ppm: a follower
 * that heard the leader refuses votes for election_ticks of its ticks, at least
 * (election_ticks - 1) ticks of real time at its fastest; the leader's lease, counted from the
 * tick it sent the heartbeat a majority answered, must end before that at its slowest:
 * (lease + 1) * (1 + d) < (election_ticks - 1) * (1 - d). Returns 0 when no lease is safe. */
uint32_t raft_lease_ticks(uint32_t election_ticks, uint32_t drift_ppm);

/* Returns 0, or RQ_EINVAL naming (in the log) the first setting out of range. */
int raft_config_check(const struct raft_config *cfg);

struct raft;

/* Creates a group from its durable state: (term, vote) as loaded from the hard state, the log
 * restored with raft_restore next. Asserts a valid config. Returns NULL only without memory. */
struct raft *raft_create(const struct raft_config *cfg, uint64_t term, uint32_t vote);
void raft_destroy(struct raft *r);

/* Restart: hands the group the durable log, entry by entry in index order, before any other
 * input (the first may start above 1 once snapshots exist). Returns 0, RQ_EBUSY (over the memory
 * bound) or RQ_EINVAL (not the next index, or a term going backward). Copies the data. */
int raft_restore(struct raft *r, const struct raft_entry *e);

/* Restart with a snapshot: the newest durable snapshot ends at (index, term), with its
 * configuration blob (config_size 0: the bootstrap configuration), and the caller has restored the
 * state machine from it. Before raft_restore (which then continues at index + 1). Commit and
 * applied start at index. Returns 0, or RQ_ECORRUPT when the blob does not decode. */
int raft_restore_snapshot(struct raft *r, uint64_t index, uint64_t term, const uint8_t *config,
                          size_t config_size);

/* ---- inputs ---- */
void raft_tick(struct raft *r);
/* Ignores (and traces) messages from non-members, for another group, or malformed in ways the
 * codec cannot see (e.g. entries beyond what a leader of that term could send). */
void raft_step(struct raft *r, const struct raft_msg *m);
/* Leader only: appends a NORMAL entry (data copied). Returns 0 with *index set, RQ_ENOTLEADER
 * (with raft_leader() as the hint, 0 if unknown), RQ_EBUSY (memory bound, too many uncommitted
 * entries, or a leadership transfer in progress), or RQ_ETOOBIG (data_size > RAFT_ENTRY_DATA_MAX or > msg_bytes_max). */
int raft_propose(struct raft *r, const void *data, uint32_t data_size, uint64_t *index);
/* A linearizable read without a log entry (dissertation 6.4, ReadIndex). On the leader: it
 * records its commit index as the read index (once an entry of its own term is committed: before
 * that it does not know the commit index), confirms it is still the leader with a round of
 * heartbeats that a majority answers, and then reports the read ready with that index. On a
 * follower: the request goes to the leader (READ_INDEX), whose answer makes the read ready here.
 * The caller serves the read once its state machine has applied the ready read's index.
 * A heartbeat answer confirms only the reads registered before that heartbeat was sent (its
 * context), so a duplicated or delayed answer can never confirm a later read. Reads still
 * pending when the leader steps down are dropped (the caller times out). Returns 0,
 * RQ_ENOTLEADER (no leader known) or RQ_EBUSY (RAFT_READS_MAX reads pending). */
int raft_read_index(struct raft *r, uint64_t ctx);

/* A read served by the leader alone while its lease holds (dissertation 6.4.1): no message at
 * all. The lease runs from the tick the leader sent a round of heartbeats that a majority then
 * answered, for lease_ticks; followers refuse to vote for election_ticks after hearing from it,
 * and a node that restarts waits election_ticks before it votes, so no other leader can exist
 * while the lease holds — provided the clocks drift within the bound lease_ticks was computed
 * for, and ticks follow the node's clock (the host ticks as many times as tick periods passed,
 * so a process that was paused sees its lease expire). Outside the lease, or before the leader
 * committed an entry of its term, the read falls back to ReadIndex.
 * A leader that sent TIMEOUT_NOW (raft_transfer_leader) serves no lease reads for the rest of its
 * term, even if the transfer aborts: voters grant a transfer's vote inside the lease, so the lease
 * no longer excludes another leader. Its reads then all go through ReadIndex, which stays safe.
 * Same returns. */
int raft_read_lease(struct raft *r, uint64_t ctx);

/* Leadership transfer (dissertation 3.10): the leader hands its role to the voter `target`. It
 * refuses proposals from now on (RQ_EBUSY; reads still work), replicates to the target until the
 * target holds its whole log, then sends it TIMEOUT_NOW; the target campaigns at once, skipping
 * pre-vote, and voters grant it even inside this leader's lease. The leader steps down when it
 * sees the new term. If it is still leader election_ticks ticks later, the transfer aborts: it
 * appends a no-op (so a late TIMEOUT_NOW no longer matches the target's log and is ignored) and
 * takes proposals again. Stepping down for any reason ends the transfer. No proposal accepted
 * before is lost (the target holds them all); stepping down is the only sign of success.
 * Returns 0 (also when a transfer to the same target is already under way), RQ_ENOTLEADER,
 * RQ_EINVAL (target is this node or not a voter) or RQ_EBUSY (a transfer to another target is
 * under way). */
int raft_transfer_leader(struct raft *r, uint32_t target);

/* Storage reports (term, vote) durable (the newest state of the saves handed so far). */
void raft_persisted_hardstate(struct raft *r, uint64_t term, uint32_t vote);
/* Storage reports the entry (index, term) durable, with every entry before it. Reports of entries
 * since truncated (their term no longer matches) are ignored. */
void raft_persisted_entry(struct raft *r, uint64_t index, uint64_t term);
/* The state machine has applied every entry up to index (<= commit). */
void raft_applied(struct raft *r, uint64_t index);

/* ---- snapshots (dissertation 5.1-5.3) ----
 * Local: when raft_snapshot_wanted, the caller takes a snapshot of its state machine at the applied
 * index and makes it durable, then reports raft_snapshot_taken: the group compacts its log up to
 * the snapshot, keeping snapshot_trailing entries, and the caller compacts its stored log below
 * raft_first_index (not with stored_log: see "stored log" below).
 * Sending (leader): a follower that needs entries the log no longer holds gets the snapshot. The
 * group asks for chunks with raft_snapshot_requests (follower, snapshot, file offset); the caller
 * reads the bytes of its snapshot file there and hands them to raft_snapshot_send, which sends them
 * (INSTALL_SNAPSHOT), one chunk per follower at a time. The follower answers each with the offset
 * it wants next, so a lost, duplicated or stale chunk costs a resend, never a wrong byte; with no
 * answer for a heartbeat round the chunk is asked for again. If the snapshot cannot be read (it was
 * replaced by a newer one), raft_snapshot_unavailable starts that follower over with the current.
 * Receiving (follower): a chunk of a snapshot beyond the commit index comes out as
 * raft_snapshot_incoming; the caller writes it (at its offset, in order) and reports the offset it
 * wants next with raft_snapshot_received, which answers the leader. Once the whole file is durable
 * and the state machine restored from it, raft_snapshot_installed replaces the log (dissertation
 * 5.3: an existing entry at the snapshot's index and term keeps the entries after it) and the
 * follower acknowledges the snapshot's index to the leader; raft_persist_pending then asks to
 * truncate the stored log (everything, from truncate_from 1) unless it was kept. */
int raft_snapshot_wanted(const struct raft *r);
/* The caller's snapshot at (index, term) is durable: index <= applied, term the entry's. */
void raft_snapshot_taken(struct raft *r, uint64_t index, uint64_t term);
/* The configuration blob a snapshot at index (applied, not compacted) must carry: the membership
 * as of that index. buf has RAFT_MEMBERSHIP_SIZE_MAX bytes; returns the size. */
size_t raft_snapshot_config(const struct raft *r, uint64_t index, uint8_t *buf);
/* For a group that gets no more entries (its partition was deleted, or this node's replica moved
 * away): from now on a snapshot is wanted as soon as anything was applied since the last one, and
 * keeps no entries below it, so the log's memory goes back to the caller's snapshot (and, for a
 * stored log, to storage). Compacts what the current snapshot already covers at once. */
void raft_snapshot_shrink(struct raft *r);
/* The newest durable snapshot (0, 0: none). */
void raft_snapshot_last(const struct raft *r, uint64_t *index, uint64_t *term);

struct raft_snapshot_request {
    uint32_t to;
    uint64_t index;          /* the snapshot (the caller's current one when it was asked for) */
    uint64_t term;
    uint64_t offset;         /* file offset of the chunk wanted */
};
uint32_t raft_snapshot_requests(const struct raft *r, const struct raft_snapshot_request **reqs);
void raft_snapshot_requests_clear(struct raft *r);
/* Sends a chunk (size <= RAFT_SNAPSHOT_CHUNK_MAX bytes at file offset `offset`; last: it ends the
 * file) if `to` still waits for that snapshot; else does nothing. data must stay valid until the
 * outbox is taken. */
void raft_snapshot_send(struct raft *r, uint32_t to, uint64_t index, uint64_t offset,
                        const void *data, uint32_t size, int last);
void raft_snapshot_unavailable(struct raft *r, uint32_t to, uint64_t index);

/* ---- stored log (raft_config.stored_log) ----
 * Snapshots still compact the in-memory log, but the caller's stored log keeps every entry (until
 * its retention, not Raft's business). A leader whose follower needs entry `first` below the
 * in-memory log asks the caller to read them: raft_load_requests lists (follower, first, how many
 * at most), at most one per follower, and that follower's progress pauses (LOAD) until the answer.
 * The caller reads entries first.. from storage and hands them, with the term of entry first - 1
 * (0 when first is 1), to raft_send_loaded, which sends them as one APPEND (bounded by
 * msg_entries_max and msg_bytes_max, and never beyond the log's base) if the follower still waits
 * for exactly that; the follower's answer moves it on like any append. Storage no longer holding
 * them (retention deleted them): raft_load_unavailable, and the follower gets the snapshot as
 * without stored_log. A request that is never answered is asked again after a heartbeat round, so
 * a lost answer costs a round, never the follower. Entries below the log's base are committed, so
 * the caller may read them from any durable copy. */
struct raft_load_request {
    uint32_t to;
    uint64_t first;          /* the first entry wanted (below raft_first_index) */
    uint32_t count_max;      /* entries worth reading: up to the log's base, <= msg_entries_max */
};
uint32_t raft_load_requests(const struct raft *r, const struct raft_load_request **reqs);
void raft_load_requests_clear(struct raft *r);
/* The caller read entries first..first+count-1 (count >= 1, in order, committed) from storage, and
 * entry first - 1 has prev_term. Sends them if `to` still waits for first; else does nothing. The
 * entries array and their data must stay valid until the outbox is taken. */
void raft_send_loaded(struct raft *r, uint32_t to, uint64_t first, uint64_t prev_term,
                      const struct raft_entry *entries, uint32_t count);
/* Storage no longer holds entry first (or first - 1): if `to` still waits for it, it gets the
 * snapshot instead. */
void raft_load_unavailable(struct raft *r, uint32_t to, uint64_t first);

struct raft_snapshot_chunk {
    uint32_t from;           /* the leader */
    uint64_t index;
    uint64_t term;
    uint64_t offset;
    const uint8_t *data;
    uint32_t size;
    int last;
};
/* 1 with *chunk when the last input brought a chunk to store (valid until the next input). */
int raft_snapshot_incoming(const struct raft *r, struct raft_snapshot_chunk *chunk);
/* The caller took (or refused) the incoming chunk of snapshot index and wants next_offset next. */
void raft_snapshot_received(struct raft *r, uint64_t index, uint64_t next_offset);
/* The received snapshot (index, term) with its configuration blob is durable and the state
 * machine restored from it; index must be above the applied index (a snapshot at or below it is
 * nothing new: raft_snapshot_taken records it instead). Returns 0, or RQ_ECORRUPT when the blob
 * does not decode (nothing changed). */
int raft_snapshot_installed(struct raft *r, uint64_t index, uint64_t term, const uint8_t *config,
                            size_t config_size);

/* ---- membership change (reconfig.c: one server at a time, dissertation 4) ----
 * Leader only. ADD_LEARNER adds a node that receives the log but does not vote; PROMOTE makes a
 * learner that has caught up (its match reached the commit index) a voter; REMOVE removes a voter
 * or a learner (a leader that removes itself steps down once the change is committed). The change
 * is a CONFIG entry, in use as soon as it is appended. Returns 0 with *index of the entry,
 * RQ_ENOTLEADER, RQ_EBUSY (a change is not committed yet, no entry of this term is committed yet,
 * the learner has not caught up, a transfer is in progress, or the log is full) or RQ_EINVAL (the
 * change makes no sense: adding a member, promoting a voter, removing a non-member or the last
 * voter, more than RAFT_MEMBERS_MAX members, node 0). */
enum raft_change { RAFT_CHANGE_ADD_LEARNER = 1, RAFT_CHANGE_PROMOTE, RAFT_CHANGE_REMOVE };
int raft_change_membership(struct raft *r, enum raft_change kind, uint32_t node, uint64_t *index);
/* The configuration in use. */
void raft_membership_get(const struct raft *r, struct raft_membership *out);
/* The index of the CONFIG entry it comes from (0: from the snapshot or the bootstrap); it is
 * committed once the commit index reaches it. */
uint64_t raft_membership_index(const struct raft *r);

/* ---- outputs ---- */
/* 1 when (term, vote) changed since it was last handed: save them, the state is handed. */
int raft_hardstate_pending(struct raft *r, uint64_t *term, uint32_t *vote);
/* Entries to make durable: when *truncate_from != 0 the stored log must first drop every entry
 * >= it; then entries first..last (last < first: none). Returns 1 when there is anything. */
int raft_persist_pending(const struct raft *r, uint64_t *truncate_from, uint64_t *first,
                         uint64_t *last);
/* The caller handed storage the truncation (if any) and entries up to last_handed (>= first-1). */
void raft_persist_handed(struct raft *r, uint64_t last_handed);
uint32_t raft_outbox(const struct raft *r, const struct raft_msg **msgs);
void raft_outbox_clear(struct raft *r);
/* Reads confirmed since the last raft_reads_clear: serve each once applied >= its index. */
struct raft_read_ready {
    uint64_t ctx;
    uint64_t index;
};
uint32_t raft_reads_ready(const struct raft *r, const struct raft_read_ready **reads);
void raft_reads_clear(struct raft *r);
/* Committed entries not applied yet: first..last. Returns 1 when there are any. */
int raft_apply_pending(const struct raft *r, uint64_t *first, uint64_t *last);

/* ---- inspection ---- */
enum raft_role raft_role(const struct raft *r);
const char *raft_role_name(enum raft_role role);
uint64_t raft_term(const struct raft *r);
uint32_t raft_vote(const struct raft *r);
uint32_t raft_leader(const struct raft *r);     /* 0: unknown */
uint32_t raft_transfer_target(const struct raft *r);   /* leader: the transfer's target, 0: none */
uint64_t raft_commit(const struct raft *r);
uint64_t raft_applied_index(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
uint64_t raft_durable_index(const struct raft *r);
uint64_t raft_first_index(const struct raft *r);
/* The entry at index, or NULL outside first..last. Valid until the next input. */
const struct raft_entry *raft_entry_at(const struct raft *r, uint64_t index);
/* Term of the entry at index (0 for index 0), or UINT64_MAX when it is not in memory. */
uint64_t raft_term_at(const struct raft *r, uint64_t index);

struct raft_stats {
    uint64_t elections_started;
    uint64_t prevotes_started;
    uint64_t became_leader;
    uint64_t stepped_down_check_quorum;
    uint64_t appends_sent;
    uint64_t entries_sent;
    uint64_t rejections_received;
    uint64_t outbox_dropped;
    uint64_t held_dropped;
    uint64_t snapshots_taken;
    uint64_t snapshot_chunks_sent;
    uint64_t snapshots_installed;
    uint64_t loads_requested;       /* stored_log: reads of old entries asked of the caller */
    uint64_t loaded_entries_sent;   /* entries sent from what the caller read back */
    uint64_t transfers_started;     /* raft_transfer_leader began one (success is seen elsewhere:
                                       this node steps down and the target leads) */
    uint64_t timeouts_now_sent;
    uint64_t transfers_aborted;     /* the target did not take over within election_ticks */
};
void raft_stats_get(const struct raft *r, struct raft_stats *out);

#endif
