/* host_internal.h — the state of a host (host.h), shared by host.c (groups, messages, start-up)
 * and host_snapshot.c (snapshots: taking, sending, receiving and restoring them). Not for use
 * outside src/node/. */
#ifndef RQ_NODE_HOST_INTERNAL_H
#define RQ_NODE_HOST_INTERNAL_H

#include "node/host.h"
#include "store/hardstate.h"
#include "store/snapshot.h"

enum {
    PEER_BATCH_BYTES = RQ_MSG_MAX,   /* one network message */
    RESTORE_CHUNK = 256,             /* entries per store_read at start */
    /* Reads of a group's stored log queued at once (host_log.c): per follower a load being read
     * and one waiting, and the caller's reads (at most HOST_LOG_READS_MAX per host). */
    LOG_QUEUE_MAX = 2 * RAFT_MEMBERS_MAX + HOST_LOG_READS_MAX,
};

/* store_read cookies: a group id (start-up restore), or this bit with it (host_log.c). */
#define HOST_COOKIE_LOG (UINT64_C(1) << 32)

enum host_log_read_kind { LOG_READ_LOAD = 1, LOG_READ_CALLER = 2 };

/* One read of a group's stored log: entries from..from+want-1, at most bytes_max data bytes past
 * the first keep_min entries. A load (for raft_send_loaded) starts one entry early, at first - 1,
 * for its term. */
struct host_log_read {
    enum host_log_read_kind kind;
    uint32_t to;                      /* load: the follower */
    uint64_t first;                   /* load: the first entry it needs */
    uint64_t from;
    uint32_t want;
    uint32_t keep_min;
    uint64_t bytes_max;
    uint64_t cookie;                  /* caller: for cb.log_read */
};

/* A group's log reads (host_log.c): a FIFO, the head read into `entries`/`data` (allocated while
 * the queue is not empty), one store_read at a time (the store's rule per group). */
struct host_log_reads {
    struct host_log_read queue[LOG_QUEUE_MAX];
    uint32_t count;
    int in_store;                     /* a store_read of the head is in flight */
    int pumping;                      /* inside log_pump (reads from memory complete inline) */
    int done;                         /* the head has all it will get */
    int err;
    struct raft_entry *entries;       /* HOST_LOG_READ_ENTRIES_MAX + 1 */
    uint8_t *data;                    /* HOST_LOG_READ_BYTES_MAX + 2 * RAFT_ENTRY_DATA_MAX */
    uint32_t got;
    uint64_t bytes;
};

enum host_phase { PHASE_NEW = 0, PHASE_OPENING, PHASE_RESTORING, PHASE_READY };

/* One group's snapshot work (host_snapshot.c). The store and the readers are allocated once
 * (about 73 KiB and 2 x 9 KiB); the data buffers only while a snapshot is written or restored. */
struct host_snap {
    struct store_snapshot *files;     /* the group's snapshot files */
    int opened;                       /* files opened at start (and restored from) */
    int disabled;                     /* the state machine's image did not fit: no more tries */
    /* A local snapshot being written: the image, and how much was handed to the store. */
    uint8_t *image;
    size_t image_size;
    size_t image_written;
    uint64_t image_index;
    uint64_t image_term;
    int writing;
    /* A snapshot being received from the leader. */
    int receiving;
    uint64_t recv_index;
    uint64_t recv_term;
    int recv_chunk_given;             /* a chunk was handed to the store, not yet written */
    int recv_chunk_last;
    int recv_finishing;               /* every byte is in; the install is under way */
    /* Chunks followers asked for (leader), read one at a time with `sender`. */
    struct store_snapshot_reader *sender;
    uint64_t sender_index;            /* the snapshot `sender` has open (0: none) */
    int sender_busy;                  /* an open, read or close is in flight */
    struct raft_snapshot_request sends[RAFT_VOTERS_MAX];
    uint32_t send_count;
    struct raft_snapshot_request sending;   /* the chunk being read */
    uint8_t *chunk;                   /* RAFT_SNAPSHOT_CHUNK_MAX bytes */
    /* Restoring the state machine from a snapshot (at start, or once one is received): the
     * data is read whole with `restorer`, then handed to the state machine. */
    struct store_snapshot_reader *restorer;
    int restoring;                    /* applying is paused meanwhile */
    uint64_t restore_index;
    uint64_t restore_term;
    uint8_t *restore_data;
    uint64_t restore_size;
    uint64_t restore_done;
    uint8_t restore_config[RAFT_MEMBERSHIP_SIZE_MAX];   /* the snapshot's membership */
    size_t restore_config_size;
};

struct host_group {
    struct host *host;
    uint32_t id;
    uint32_t voters[RAFT_VOTERS_MAX]; /* the bootstrap configuration */
    uint32_t voter_count;
    enum host_group_kind kind;
    int started;                      /* its hard state load was asked for */
    int draining;                     /* inside host_drain (a callback calls back) */
    int drain_again;                  /* a nested host_drain was deferred */
    struct raft *raft;                /* NULL until its hard state is loaded */
    struct store_hardstate hs;
    int hs_loaded;
    uint64_t restore_next;            /* next index to read back at start */
    uint64_t restore_last;
    int restored;
    struct raft_read_ready reads[HOST_READS_MAX];   /* confirmed, waiting for the apply */
    uint32_t read_count;
    enum raft_role seen_role;         /* as last reported to cb.role_changed */
    uint64_t seen_term;
    struct host_snap snap;
    struct host_log_reads log;
    uint64_t retain_below;            /* HOST_GROUP_STORED_LOG: stored entries below it hold
                                         only deleted records (host_retain_log) */
};

struct peer_batch {
    int dirty;                        /* listed in host.dirty: flushed at the end of the event */
    uint32_t count;
    size_t len;                       /* body bytes, after the reserved header room */
    uint8_t *buf;                     /* RAFT_BATCH_HEADER_SIZE + 10 reserved, then messages */
};

struct host {
    const struct rq_io *io;
    struct host_config cfg;
    struct host_callbacks cb;
    void *cb_arg;
    enum host_phase phase;
    struct store *store;
    struct host_group *groups[HOST_GROUPS_MAX];   /* in the order they were added */
    uint32_t group_count;
    struct host_group *by_id[HOST_GROUP_ID_LIMIT];
    struct peer_batch peers[RQ_NODE_ID_MAX + 1];
    uint32_t dirty[RQ_NODE_ID_MAX];   /* peers with a batch being filled */
    uint32_t dirty_count;
    uint64_t next_tick_ns;
    int halted;
    struct host_stats stats;
    uint32_t log_reads;               /* host_read_log reads not answered yet */
    uint8_t entry_buf[RAFT_ENTRY_DATA_MAX + 1];
};

enum { BATCH_RESERVE = RAFT_BATCH_HEADER_SIZE + 10 };


/* host.c */
void host_halt(struct host *h, const char *why, int err);
void host_drain(struct host *h, struct host_group *g);
void host_flush(struct host *h);
/* The group's snapshot is loaded (or there is none): go on with its start-up. */
void host_snapshot_loaded(struct host *h, struct host_group *g);

/* Queues the group's outbox on the peers' batches now (raft_send_loaded's entries live only
 * until then). */
void host_take_outbox(struct host *h, struct host_group *g);

/* host_log.c: reads of the stored log, for load requests and for host_read_log */
void host_log_serve(struct host *h, struct host_group *g);   /* from the drain: load requests */
void host_log_on_read_done(struct host *h, struct host_group *g, int err,
                           const struct store_entry *entries, uint32_t count);
void host_log_free(struct host_group *g);
/* host_snapshot.c: compacts the stored log as far as the snapshot (and retention) allow. */
void host_compact_stored_log(struct host *h, struct host_group *g);

/* host_snapshot.c */
int host_snapshot_init(struct host *h, struct host_group *g);   /* 0 or RQ_ENOMEM */
void host_snapshot_free(struct host_group *g);
void host_snapshot_open(struct host *h, struct host_group *g);  /* start: then loaded */
/* From a group's drain: an incoming chunk first; chunk requests and a local snapshot after. */
void host_snapshot_take_chunk(struct host *h, struct host_group *g);
void host_snapshot_serve(struct host *h, struct host_group *g);
void host_snapshot_maybe_take(struct host *h, struct host_group *g);
/* Returns 1 when req belonged to one of the group's snapshot files or readers. */
int host_snapshot_on_disk_done(struct host_group *g, struct rq_disk_req *req);

#endif
