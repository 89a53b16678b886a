/* host.h — a server process hosting many Raft groups over one store (multi-raft).
 *
 * The host owns the node's store (one WAL for every group, store/store.h), one hard-state file per
 * group (store/hardstate.h) and one struct raft per group (raft/raft.h). It drives them all from
 * one timer: every tick_ns each group ticks. It wires each group's outputs to the world in the
 * order raft.h prescribes (hard state and entries handed to storage, then messages, then applies)
 * and feeds storage completions back.
 *
 * Messages: everything the groups on this node have for one peer during one event handler (a tick,
 * a received batch, a disk completion, a proposal) leaves as ONE network message, a batch
 * (raft/msg.h). Heartbeats of all groups to that peer are thereby coalesced: an idle group costs a
 * few bytes in the per-peer batch, never a message of its own (as Redpanda and CockroachDB do).
 * A batch that would exceed RQ_MSG_MAX is split.
 *
 * Start: host_start opens the store, loads every group's hard state, opens its snapshot files and
 * restores the state machine from the newest snapshot (cb.restore), reads the group's log after
 * the snapshot back into memory (raft_restore) and only then starts ticking and accepting
 * messages (messages that arrive before are dropped: Raft retries). Entries are stored with their
 * Raft type in the first payload byte.
 *
 * Snapshots (host_snapshot.c; raft.h explains the protocol): when a group wants one, the state
 * machine's image (cb.snapshot) is written to the group's snapshot file (store/snapshot.h) and the
 * stored log is compacted below the group's log (not for HOST_GROUP_STORED_LOG: see below); a leader reads the chunks followers ask for from
 * that file; a follower writes the chunks it receives, in order, to a new file and, once it is
 * durable, restores its state machine from it (cb.restore) and drops its old log.
 *
 * Stored logs (HOST_GROUP_STORED_LOG, host_log.c): a group whose log is its data takes
 * snapshots, which compact its in-memory log only; the stored log keeps every entry until retention
 * deletes it (host_retain_log). Its Raft runs with raft_config.stored_log: the host
 * answers a leader's load requests by reading the entries from the store (store_read, one read per
 * group at a time), so a follower that is behind gets the old entries, not the snapshot (the
 * snapshot only when the store no longer has them). host_read_log reads old entries for the
 * owner (a partition's fetch below the in-memory log).
 *
 * Fail-stop: a failed fsync or corrupt durable data (the store or a hard state reports it) halts
 * the process through io->halt (DESIGN.md, "Storage"); it recovers from disk on restart. */
#ifndef RQ_NODE_HOST_H
#define RQ_NODE_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"
#include "raft/raft.h"
#include "store/store.h"

enum {
    HOST_GROUPS_MAX = 256,                 /* groups on one node */
    HOST_GROUP_ID_LIMIT = STORE_GROUPS_MAX,   /* group ids are below this (they index the store) */
    HOST_SNAPSHOT_DATA_MAX = 4u << 20,     /* a state machine image, in bytes */
    HOST_READS_MAX = 2 * RAFT_READS_MAX,   /* confirmed reads per group waiting to be applied */
    HOST_LOG_READS_MAX = 16,               /* host_read_log reads in flight per host */
    HOST_LOG_READ_ENTRIES_MAX = 256,       /* entries one host_read_log returns */
    HOST_LOG_READ_BYTES_MAX = 1u << 20,    /* entry data bytes one host_read_log returns (at
                                              least one entry, whatever its size) */
};

/* The replicated state machine and observers. All optional except apply. A callback may call the
 * host's request functions (host_propose, host_read, host_group_add, ...), also for its own
 * group: what they make a group do is handled once the running drain of that group ends. It must
 * not call host_destroy. */
struct host_callbacks {
    /* A committed entry, in log order per group (NOOP entries included). After a restart the log
     * is applied again from its start: the state machine is rebuilt from it. */
    void (*apply)(void *arg, uint32_t group, const struct raft_entry *e);
    /* An entry is handed to storage, i.e. it is now in this node's log (for checkers). */
    void (*appended)(void *arg, uint32_t group, const struct raft_entry *e, uint64_t prev_term);
    /* A read asked for with host_read may be served now: the state machine has applied its read
     * index (optional; needed only by callers of host_read). */
    void (*read)(void *arg, uint32_t group, uint64_t ctx);
    /* This node's own log now holds the group's entries up to index durably (optional; a
     * leader answers acks=1 with it). */
    void (*durable)(void *arg, uint32_t group, uint64_t index);
    /* The group's role or term changed (checked after every input the group handles). */
    void (*role_changed)(void *arg, uint32_t group, enum raft_role role, uint64_t term,
                         const struct raft *r);
    /* The host finished recovery and serves. */
    void (*ready)(void *arg);
    /* Snapshots (optional: without them the log is never compacted, and a group stops taking
     * proposals once its log fills the memory bound). snapshot writes the state machine's image
     * of group as of the last entry applied into buf (cap = HOST_SNAPSHOT_DATA_MAX bytes) and
     * returns its size (more than cap: it does not fit; snapshots of the group stop, with a
     * warning). restore replaces the group's state machine with an image, as of entry index:
     * at start before any apply, or when the leader sent a snapshot (applying waits meanwhile). */
    size_t (*snapshot)(void *arg, uint32_t group, uint8_t *buf, size_t cap);
    void (*restore)(void *arg, uint32_t group, uint64_t index, const uint8_t *image, size_t size);
    /* A host_read_log finished: err 0 with entries from..from+count-1 (count >= 1; valid only
     * during the call), or RQ_ERANGE (the stored log no longer holds from: retention), RQ_EIO /
     * RQ_ECORRUPT (the store failed; the host halts) or RQ_ENOMEM, with no entries. */
    void (*log_read)(void *arg, uint32_t group, uint64_t cookie, int err,
                     const struct raft_entry *entries, uint32_t count);
};

struct host_config {
    uint32_t groups;                      /* groups present from the start: ids 1..groups, each
                                             with the template's voters; 0..HOST_GROUPS_MAX
                                             (more are added with host_group_add) */
    uint64_t tick_ns;                     /* the shared Raft tick */
    struct raft_config raft;              /* template: voters, timeouts, bounds; id and group set
                                             per group by the host */
    struct store_config store;
};

/* Fills defaults: 10 ms tick, raft_config_default, store_config_default. The caller sets groups
 * and raft.voters / raft.voter_count. */
void host_config_default(struct host_config *cfg);

struct host;

struct host *host_create(const struct rq_io *io, const struct host_config *cfg,
                         const struct host_callbacks *cb, void *cb_arg);
void host_destroy(struct host *h);

/* The node's io entry points, forwarded by whoever owns the host. */
void host_start(struct host *h);
void host_on_timer(struct host *h);
void host_on_peer_message(struct host *h, uint32_t from, const void *buf, size_t len);
void host_on_disk_done(struct host *h, struct rq_disk_req *req);

/* Proposes data to group. Returns 0 with *index and *term of the new entry, RQ_ENOTLEADER, RQ_EBUSY,
 * RQ_ETOOBIG, RQ_ERANGE (no such group) or RQ_ECLOSED (still recovering). */
int host_propose(struct host *h, uint32_t group, const void *data, uint32_t size, uint64_t *index,
                 uint64_t *term);

/* Hands the leadership of group to the voter target (raft_transfer_leader, dissertation 3.10):
 * the group refuses proposals (RQ_EBUSY) until the target takes over or an election timeout
 * passes. Returns 0, RQ_ENOTLEADER, RQ_EINVAL (target is this node or not a voter), RQ_EBUSY (a
 * transfer to another target is under way), RQ_ERANGE (no such group) or RQ_ECLOSED. */
int host_transfer_leader(struct host *h, uint32_t group, uint32_t target);

/* Gives back the memory of a group that gets no more entries (raft_snapshot_shrink): a snapshot
 * once anything more is applied, and none of the log kept in memory. The group keeps running.
 * Returns 0, RQ_ERANGE (no such group) or RQ_ECLOSED. */
int host_group_shrink(struct host *h, uint32_t group);

/* A linearizable read of group without a log entry (raft_read_index: on the leader or, through
 * it, on a follower): cb->read(ctx) follows once it may be served, or never (leader lost; the
 * caller times out). Returns 0, RQ_ENOTLEADER, RQ_EBUSY, RQ_ERANGE or RQ_ECLOSED. */
int host_read(struct host *h, uint32_t group, uint64_t ctx);

/* The same through the leader's lease when it holds (raft_read_lease), else ReadIndex. The
 * group's ticks are brought up to the clock first. */
int host_read_lease(struct host *h, uint32_t group, uint64_t ctx);

/* A membership change of group (raft_change_membership; the leader only). Returns its result, or
 * RQ_ERANGE / RQ_ECLOSED as host_propose. */
int host_change_membership(struct host *h, uint32_t group, enum raft_change kind, uint32_t node);

/* Adds group `group` (1..HOST_GROUP_ID_LIMIT - 1) with its bootstrap voters (the configuration
 * until its log or a snapshot says otherwise; raft_config.voters), at any time. The group starts
 * as the first groups do, on its own: its hard state, snapshot and stored log are read back
 * (files the node kept from an earlier run are found by the group's id), and only then does it
 * tick, take messages (those that arrive before are dropped: Raft retries) and serve. A host is
 * ready once every group added before its store opened has recovered; a group added later
 * serves once it has (host_raft says when). Returns 0, RQ_EEXIST, RQ_EINVAL (a bad id or voter
 * list), RQ_ENOSPC (HOST_GROUPS_MAX groups) or RQ_ENOMEM. Removing a group is not built.
 * The first groups (host_config.groups) are HOST_GROUP_SNAPSHOTS. */
enum host_group_kind {
    HOST_GROUP_SNAPSHOTS = 0,   /* the log is compacted below snapshots (raft_config's policy) */
    HOST_GROUP_LOG_IS_DATA = 1, /* never snapshotted, never compacted: the log is the data, and
                                   such a group holds at most raft log_entries_max entries in
                                   memory, refusing proposals beyond (RQ_EBUSY). For tests and
                                   small fixed logs; partitions are HOST_GROUP_STORED_LOG */
    HOST_GROUP_STORED_LOG = 2,  /* the log is the data, and memory stays bounded: snapshots (the
                                   raft_config policy, cb.snapshot) compact the in-memory log but
                                   never the stored log (retention does: host_retain_log);
                                   followers behind the memory get the old
                                   entries read from the store (raft_config.stored_log); a
                                   snapshot is taken only at an index this node holds durably, so
                                   the stored log never has a hole below it. A replica that
                                   restarts restores the snapshot, then the stored log after it;
                                   older entries stay in the store for host_read_log */
};
int host_group_add(struct host *h, uint32_t group, const uint32_t *voters, uint32_t voter_count,
                   enum host_group_kind kind);

/* Reads up to count (1..HOST_LOG_READ_ENTRIES_MAX) committed entries of group from the stored
 * log, from index `from` (also below the in-memory log: a HOST_GROUP_STORED_LOG group keeps them
 * in the store). Asynchronous: cb.log_read(cookie) follows once, possibly before this returns
 * (entries still in the store's memory); fewer entries than count come back at the commit index,
 * this node's durable index (above it the store may still hold entries a truncation has not
 * replaced yet), the end of the stored log or past HOST_LOG_READ_BYTES_MAX. Entries carry their
 * Raft type (NOOP and CONFIG entries included). Returns 0, RQ_EINVAL (count out of range),
 * RQ_EBUSY (HOST_LOG_READS_MAX reads in flight on this host, or a truncation of the
 * stored log still waits for the store), RQ_ERANGE (no such group, or from
 * outside the stored log or above the commit index or the durable index) or RQ_ECLOSED
 * (recovering or halted). */
int host_read_log(struct host *h, uint32_t group, uint64_t from, uint32_t count, uint64_t cookie);

/* Retention of a HOST_GROUP_STORED_LOG group: the stored entries below below_index are no longer
 * needed (their records were deleted). Whole segments below it are deleted in the background,
 * never past the group's in-memory log (a restart reads the log after the snapshot back from
 * the store): what a later snapshot allows is deleted then. A follower that needs deleted
 * entries gets the leader's snapshot instead (raft_load_unavailable). Returns 0, RQ_EINVAL (not
 * a stored log), RQ_ERANGE (no such group) or RQ_ECLOSED. */
int host_retain_log(struct host *h, uint32_t group, uint64_t below_index);
/* The first index of the group's stored log (0: unknown group, or recovering). */
uint64_t host_stored_first(const struct host *h, uint32_t group);

/* Fail-stop from the owner (a state machine found durable data it cannot trust, e.g. a snapshot
 * image that does not decode): the host stops doing anything and io->halt is called once. */
void host_fail(struct host *h, const char *why);

int host_is_ready(const struct host *h);
/* The group's Raft state (read-only), or NULL while it (or the host) recovers, or for an unknown
 * group. */
const struct raft *host_raft(const struct host *h, uint32_t group);

struct host_stats {
    uint64_t batches_sent;
    uint64_t messages_sent;
    uint64_t heartbeats_sent;
    uint64_t batches_received;
    uint64_t malformed_batches;
    uint64_t unknown_group_messages;      /* for a group this node does not have (yet) */
    uint64_t store_busy;
};
void host_stats_get(const struct host *h, struct host_stats *out);
/* The node store's counters (WAL appends and fsyncs: its batch sizes). */
void host_store_stats_get(const struct host *h, struct store_stats *out);

#endif
