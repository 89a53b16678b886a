/* raftnet.h — a tiny, synchronous world for Raft groups, for table-driven tests and fuzzing.
 *
 * N nodes (ids 1..N) each run one struct raft of group 1. Messages go to one FIFO queue and are
 * delivered by raftnet_deliver*; links can be cut. Each node has a model of stable storage: the
 * durable (term, vote) and the durable log. By default what a node hands to storage becomes
 * durable at once; with raftnet_set_manual_persist it stays pending until raftnet_persist, so a
 * test can look at what the node sent before its storage answered. A crash drops everything not
 * durable, and the restart rebuilds the group from the storage model, as a real node would.
 *
 * With raft_config.stored_log the durable log keeps every entry (snapshots compact the raft's
 * memory only) and a leader's load requests are answered from it (raftnet_snapshot.c).
 *
 * Snapshots are modelled too: a node's snapshot is its list of applied entries, sent in small
 * chunks (chunk_size) through the queue like every other message, so tables can lose, duplicate
 * and reorder them.
 *
 * Every applied entry is recorded per node, and raftnet_check verifies the Raft safety properties
 * over all nodes (election safety over the whole history, log matching, state machine safety,
 * committed entries present in every leader of a later term). Not used by the servers: tests
 * only. */
#ifndef RQ_SIM_RAFTNET_H
#define RQ_SIM_RAFTNET_H

#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

enum {
    RAFTNET_NODES_MAX = RAFT_VOTERS_MAX,
    RAFTNET_QUEUE_MAX = 1024,        /* messages in flight */
    RAFTNET_LOG_MAX = 4096,          /* entries in one durable log */
    RAFTNET_TERMS_MAX = 1024,        /* terms remembered for election safety */
    RAFTNET_WHY_MAX = 256,
    RAFTNET_READS_MAX = 64,          /* confirmed reads remembered per node */
};
_Static_assert(RAFTNET_NODES_MAX < 32, "raftnet.truth_voters has a bit per node");

struct raftnet_msg {
    struct raft_msg m;
    struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    uint8_t *data;                   /* one buffer for every entry's data */
    uint8_t *chunk;                  /* a copy of an INSTALL_SNAPSHOT's chunk */
};

struct raftnet_stored {              /* an entry in a storage model or an apply record */
    uint64_t index;
    uint64_t term;
    uint8_t type;
    uint32_t data_size;
    uint8_t *data;
};

struct raftnet_node {
    struct raft *raft;               /* NULL while crashed */
    uint32_t starts;                 /* process starts: each gets its own seed, as io.h promises */
    uint64_t hs_term;                /* durable hard state */
    uint32_t hs_vote;
    int manual_persist;
    int hs_pending;                  /* manual: a save is pending */
    uint64_t pending_term;
    uint32_t pending_vote;
    struct raftnet_stored log[RAFTNET_LOG_MAX];   /* durable log: indexes 1..log_count */
    uint64_t log_count;
    uint64_t pending_last;           /* manual: entries handed up to here, not yet durable */
    struct raftnet_stored applied[RAFTNET_LOG_MAX];
    uint64_t applied_count;
    struct raft_read_ready reads[RAFTNET_READS_MAX];   /* confirmed reads, oldest first */
    uint32_t read_count;
    /* Snapshots (sim/raftnet_snapshot.c). The durable log holds log_first..log_count; entries
     * below log_first were compacted into the durable snapshot (snap_index, snap_term), whose
     * file is the applied entries it covers, encoded. A snapshot being received from the leader
     * grows in recv_file, in order. */
    uint64_t log_first;
    uint64_t snap_index;
    uint64_t snap_term;
    uint8_t *snap_file;
    size_t snap_size;
    uint64_t recv_index;
    uint64_t recv_term;
    uint8_t *recv_file;
    size_t recv_size;
};

struct raftnet {
    uint32_t n;
    struct raft_config cfg;          /* template; id set per node */
    struct raftnet_node nodes[RAFTNET_NODES_MAX + 1];
    uint8_t cut[RAFTNET_NODES_MAX + 1][RAFTNET_NODES_MAX + 1];
    struct raftnet_msg *queue;       /* ring of RAFTNET_QUEUE_MAX */
    uint32_t queue_head, queue_count;
    uint32_t leader_of_term[RAFTNET_TERMS_MAX];
    struct raftnet_stored truth[RAFTNET_LOG_MAX];   /* the first entry applied at each index */
    /* The term of the node that first applied truth[i]: the entry was committed in it or
     * earlier, so every leader of a later term must hold it (leader completeness). */
    uint64_t truth_commit_term[RAFTNET_LOG_MAX];
    /* The voters of the configuration in use at the node that first applied truth[i]: their
     * count, and as bits (1 << id) those that are nodes of this world (ids 1..n). Apply follows
     * commit in the same drain, so that node is the leader that committed it (raft commits by a
     * majority of these voters), or one that stepped down in that step: a leader that removed
     * itself keeps the configuration it counted with. For checks (fuzz/raft_net.c). */
    uint32_t truth_voters[RAFTNET_LOG_MAX];
    uint8_t truth_voter_count[RAFTNET_LOG_MAX];
    uint64_t truth_count;
    char why[RAFTNET_WHY_MAX];       /* first violation raftnet_check found */
    uint32_t chunk_size;             /* bytes per INSTALL_SNAPSHOT chunk (small: many chunks) */
    /* raft_config.stored_log: how a leader's load requests (raft_load_requests) are served from
     * its durable log, which its snapshots then do not compact. */
    enum raftnet_loads { RAFTNET_LOADS_ANSWER = 0, RAFTNET_LOADS_IGNORE, RAFTNET_LOADS_UNAVAILABLE }
        loads;
    uint64_t loads_ignored;          /* requests taken and never answered */
    /* What raft_send_loaded was handed, one slot per request: it must outlive the outbox. */
    struct raft_entry loaded[RAFT_MEMBERS_MAX][RAFT_MSG_ENTRIES_MAX];
};

/* cfg: the template (id set per node); NULL for defaults. Its voters are the bootstrap
 * configuration; with voter_count 0 they are set to 1..n (nodes beyond the voters are spares,
 * to be added by a membership change). */
struct raftnet *raftnet_create(uint32_t n, const struct raft_config *cfg);
void raftnet_destroy(struct raftnet *net);

struct raft *raftnet_raft(struct raftnet *net, uint32_t id);
void raftnet_tick(struct raftnet *net, uint32_t id);
void raftnet_tick_all(struct raftnet *net);
/* Delivers queued messages (those on cut links are dropped) until none are left or max have
 * been delivered; returns how many were delivered. */
uint32_t raftnet_deliver(struct raftnet *net, uint32_t max);
/* Removes queued messages matching type (0: any) from `from` to `to` (0: any); returns count. */
uint32_t raftnet_drop(struct raftnet *net, uint8_t type, uint32_t from, uint32_t to);
/* Number of queued messages of type (0: any) from `from` (0: any) to `to` (0: any). */
uint32_t raftnet_queued(const struct raftnet *net, uint8_t type, uint32_t from, uint32_t to);
/* The oldest queued message matching, or NULL. */
const struct raft_msg *raftnet_peek(const struct raftnet *net, uint8_t type, uint32_t from,
                                    uint32_t to);
/* Injects a message as if node m->from had sent it (entries copied). */
void raftnet_inject(struct raftnet *net, const struct raft_msg *m);
/* The network as an adversary (fuzzing): k counts from the oldest queued message (0) and must be
 * below raftnet_queued(net, 0, 0, 0). deliver_at removes the k-th message and delivers it (a
 * message on a cut link or to a crashed node is dropped); returns 1 when it was delivered.
 * duplicate_at queues a copy of it at the back; returns 0 when the queue is full. drop_at loses
 * it. The other messages keep their order. */
uint32_t raftnet_deliver_at(struct raftnet *net, uint32_t k);
uint32_t raftnet_duplicate_at(struct raftnet *net, uint32_t k);
void raftnet_drop_at(struct raftnet *net, uint32_t k);

void raftnet_cut(struct raftnet *net, uint32_t a, uint32_t b);      /* both ways */
void raftnet_isolate(struct raftnet *net, uint32_t id);
void raftnet_heal(struct raftnet *net);
void raftnet_heal_link(struct raftnet *net, uint32_t a, uint32_t b);   /* both ways */

void raftnet_set_manual_persist(struct raftnet *net, uint32_t id, int manual);
void raftnet_persist(struct raftnet *net, uint32_t id);   /* pending storage becomes durable */
/* Only the pending hard state, or only the pending log, becomes durable (separate files). */
void raftnet_persist_part(struct raftnet *net, uint32_t id, int hardstate, int log);

/* Proposes data at node id; returns raft_propose's result. */
int raftnet_propose(struct raftnet *net, uint32_t id, const char *data);
void raftnet_crash(struct raftnet *net, uint32_t id);
void raftnet_restart(struct raftnet *net, uint32_t id);

/* Ticks every node until one is leader and delivers; returns the leader id or 0 after max_ticks. */
uint32_t raftnet_elect(struct raftnet *net, uint32_t max_ticks);
/* The unique leader of the highest term among live nodes, or 0. */
uint32_t raftnet_leader(const struct raftnet *net);

/* Checks the safety properties; returns 0, or -1 with net->why set. */
int raftnet_check(struct raftnet *net);

/* Node id takes a snapshot at its applied index now (it is durable at once) and compacts its log.
 * Nodes also do this on their own whenever raft_snapshot_wanted says so. */
void raftnet_snapshot(struct raftnet *net, uint32_t id);

/* Runs a script of commands separated by ';' (so that a table row is one string):
 *   tick N               every node ticks N times, messages delivered after each round
 *   ticks ID N           node ID alone ticks N times (nothing delivered)
 *   deliver              delivers every queued message (and what they cause)
 *   deliver-one          delivers the oldest queued message only
 *   deliver-at K         delivers the K-th queued message (0 = oldest) only
 *   duplicate K          queues a copy of the K-th queued message at the back
 *   inject TYPE FROM TO TERM A B C D   queues a message: votes A=last_index B=last_term
 *                        (vote: C=transfer flag); vote answers A=reject; append A=prev_index
 *                        B=prev_term C=commit (no entries); append-resp A=index B=reject
 *                        C=hint_index D=hint_term; heartbeat A=commit; timeout-now A=last_index;
 *                        install-snapshot A=snap_index B=snap_term C=offset D=last (no bytes);
 *                        snapshot-resp A=snap_index B=offset
 *   elect ID             ticks node ID alone until it campaigns, delivering, until it leads
 *   propose ID DATA      proposes DATA at ID (must be accepted)
 *   reject ID DATA       proposes DATA at ID and expects a refusal
 *   transfer A B [RESULT]   leader A transfers leadership to B (raft_transfer_leader); RESULT is
 *                        what it must return: ok (the default), einval, ebusy or enotleader
 *   isolate ID | cut A B | heal
 *   crash ID | restart ID | manual ID (storage answers only on persist) | persist ID
 *   persist-hs ID | persist-log ID   only the hard state, or only the log, becomes durable
 *   drop TYPE FROM TO    drops queued messages (TYPE a raft_msg_type_name or "any"; ids or 0)
 *   change ID KIND NODE RESULT   membership change at ID: KIND add (as a learner), promote or
 *                        remove NODE; RESULT (as for transfer) is what it must return
 *   snapshot ID          ID snapshots its applied state now and compacts its log
 *   chunk-size N         snapshot chunks of N bytes from now on
 *   loads MODE           stored_log: load requests are answered from the leader's durable log
 *                        (answer, the default), taken and never answered (ignore), or answered
 *                        raft_load_unavailable (unavailable)
 *   expect WHAT ID VALUE WHAT: role (follower, pre-candidate, candidate, leader), term, vote,
 *                        leader, commit, last, durable, applied, rejections (leader's count of
 *                        append rejections), elections (real elections started), first (first
 *                        index in the log), snap (snapshot index), chunks (chunks sent),
 *                        installed (snapshots installed), voters and members (of the
 *                        configuration ID uses), transferring (a leader's transfer target, 0:
 *                        none), transfers, timeouts-now, transfers-aborted (leadership transfer
 *                        counters), loads (load requests made), loaded (entries sent from
 *                        storage), loads-ignored (requests the world took and dropped)
 *   expect-min WHAT ID VALUE   the same, at least VALUE
 *   read ID CTX          a ReadIndex read at ID (must be accepted)
 *   read-lease ID CTX    a lease read at ID (ReadIndex when the lease does not hold)
 *   expect-read ID CTX INDEX   ID has a confirmed read CTX with read index INDEX (INDEX "none":
 *                        no confirmed read CTX)
 *   expect-queued TYPE FROM TO N
 *   check                the safety properties (raftnet_check) hold
 * Returns 0, or -1 with a message naming the failing command in err. */
int raftnet_script(struct raftnet *net, const char *script, char *err, size_t cap);

#endif
