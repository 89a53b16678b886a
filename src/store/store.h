/* store.h — a node's log storage: one write-ahead log shared by every Raft group on the node,
 * and per group a segment store that keeps the log for the long term (DESIGN.md, "Storage").
 *
 *   append ──► node WAL (group commit: one write + one fdatasync for every group's appends)
 *                 │ durable ──► the caller is told (Raft may now acknowledge the entry)
 *                 ▼
 *              in-memory tail of each group (recent entries are served from memory)
 *                 │ background flush, one group at a time
 *                 ▼
 *              the group's segments (blocks + sparse index), fsynced
 *                 │ every group's segments cover a WAL prefix
 *                 ▼
 *              WAL files wholly below it are deleted (trim)
 *
 * The hard state (store/hardstate.h) and snapshots (store/snapshot.h) of a group are separate
 * objects the node owns; compaction after a snapshot is store_compact().
 *
 * Recovery (store_open): every group's segments are opened (their directories are found by
 * listing the data directory), then the WAL is replayed: entries beyond a group's segments go to
 * its tail, TRUNCATE records cut it, entries the segments already hold are skipped. When it
 * reports success, everything it presents is durable (the components fsync what they read).
 *
 * Durability: an append is reported durable once its WAL batch is fsynced. A truncation is a WAL
 * record too: it is durable once any later append (or store_sync) is reported durable, and a
 * recovered log never shows entries it voided once it is durable.
 *
 * Errors: an fsync failure (RQ_EIO) or corruption of durable data found at recovery
 * (RQ_ECORRUPT, logged with file and position) is sticky; the node must fail-stop. A full disk
 * is backpressure to appends (RQ_EBUSY from the WAL; nothing lost). A full disk met by the
 * background flush to the segments, or during recovery, fails the store like EIO (the entries are
 * durable in the WAL): the node fail-stops and recovers once space is back. That is coarser than
 * it needs to be — the segment store could retry instead — and is listed as a known weakness. Everything is bounded by
 * struct store_config; memory for the tails is allocated per entry within those bounds.
 *
 * Callbacks run only from store_on_disk_done, except read_done for reads served from memory
 * (see store_read). */
#ifndef RQ_STORE_STORE_H
#define RQ_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"
#include "store/block.h" /* struct store_entry: index, term, first_offset, timestamp, message_count,
                            payload_size, payload */

enum {
    STORE_GROUPS_MAX = 256,           /* Raft groups on one node */
    STORE_PAYLOAD_MAX = (128u << 10) - 128,  /* one entry's payload: fits one segment block */
    STORE_READ_ENTRIES_MAX = 1024,    /* entries one store_read may return */
};

struct store_config {
    uint32_t tail_entries_max;     /* per group, entries durable in the WAL but not in segments */
    uint64_t tail_bytes_max;       /* per node, payload bytes in all tails together */
    uint64_t wal_file_bytes_max;   /* WAL file roll size */
    uint64_t segment_bytes_max;    /* segment roll size (>= block_bytes_max) */
    uint32_t block_bytes_max;      /* segment block size; an entry's payload must fit one block:
                                      payload_size <= block_bytes_max - 88 (and STORE_PAYLOAD_MAX) */
};

void store_config_default(struct store_config *cfg);

struct store_callbacks {
    /* Recovery finished: err 0, or RQ_ECORRUPT / RQ_EIO (fail-stop). */
    void (*opened)(void *arg, int err);
    /* The append with this cookie is durable (err 0), or will never be known to be (RQ_EIO). */
    void (*durable)(void *arg, uint64_t group, uint64_t index, uint64_t cookie, int err);
    /* A store_read finished: entries valid only during the call. */
    void (*read_done)(void *arg, uint64_t cookie, int err, const struct store_entry *entries,
                      uint32_t count);
    /* After opened(0): the store failed for good (err sticky, e.g. a background flush met RQ_EIO).
     * Outstanding appends and reads have been answered with err first. The node must fail-stop. */
    void (*failed)(void *arg, int err);
};

struct store;  /* defined in store.c; allocate with store_create */

struct store *store_create(const struct rq_io *io, const struct store_config *cfg,
                           const struct store_callbacks *cb, void *cb_arg);
void store_destroy(struct store *s);

/* Starts recovery; calls cb->opened once. No other call before it reports success. */
void store_open(struct store *s);

/* Appends entry to group (copied; the caller's buffer is free after return). e->index must be
 * the group's last index + 1 (its first append may start anywhere: after a snapshot). Returns 0,
 * RQ_EBUSY (backpressure: the WAL batch or the tails are full, or the disk is full; retry after
 * a durable callback or a tick), RQ_EINVAL (index not next, group id too large), RQ_ETOOBIG, or
 * the sticky error. */
int store_append(struct store *s, uint64_t group, const struct store_entry *e, uint64_t cookie);

/* Voids group's entries with index >= from_index (a Raft conflict; from_index 1: the whole log,
 * after a snapshot was installed). Returns 0, RQ_EBUSY, RQ_ERANGE (from_index 0 or beyond the
 * last index, or an empty log), or the sticky error. */
int store_truncate(struct store *s, uint64_t group, uint64_t from_index);

/* Entries below below_index are no longer needed (a snapshot covers them): whole segments below
 * it are deleted in the background. */
int store_compact(struct store *s, uint64_t group, uint64_t below_index);

/* Retention (a topic's time-to-live and size limit): deletes, in the background, whole segments
 * of group from the oldest while each is older than ttl_ns (its newest entry's timestamp + ttl_ns <
 * now_ns, on the same clock the timestamps came from) or the group's segments exceed size_limit
 * bytes (0: no limit) — never a segment holding an entry at or above snapshot_index, and never the
 * last segment. Returns 0, RQ_ERANGE (unknown group) or the sticky error. */
int store_retention(struct store *s, uint64_t group, uint64_t now_ns, uint64_t ttl_ns,
                    uint64_t size_limit, uint64_t snapshot_index);

/* Reads up to max_entries (<= STORE_READ_ENTRIES_MAX) entries of group from from_index; the
 * result arrives through cb->read_done with cookie — before store_read returns when the entries
 * are in the memory tail, else from store_on_disk_done after one segment read. Returns 0,
 * RQ_ERANGE (outside the log) or RQ_EBUSY (a read of this group is already in flight). */
int store_read(struct store *s, uint64_t group, uint64_t from_index, uint32_t max_entries,
               uint64_t cookie);

/* The group's log range: first..last index (last = first - 1 when empty). */
void store_range(const struct store *s, uint64_t group, uint64_t *first, uint64_t *last);

/* Retries after ENOSPC and drives the background flush; call from the node's timer. */
void store_tick(struct store *s);

/* Returns 1 if req was one of the store's own requests (and handles it), else 0. */
int store_on_disk_done(struct store *s, struct rq_disk_req *req);

struct store_stats {
    uint64_t appends;
    uint64_t wal_fsyncs;
    uint64_t segment_flushes;
    uint64_t wal_files_trimmed;
    uint64_t tail_entries;
    uint64_t reads_from_memory;
    uint64_t reads_from_segments;
};
void store_stats_get(const struct store *s, struct store_stats *out);

#endif
