/* segment.h — the per-group segment store: the long-term, verifiable log of one Raft group.
 *
 * The node's write-ahead log makes Raft entries durable first; the node then appends them here in
 * the background, and trims its WAL once an append is reported durable. So an append here is one
 * write and one fsync for a whole batch, and nothing is acknowledged before it is durable.
 *
 * Files (paths relative to the node's data directory; io.h):
 *   g<group id as 16 lowercase hex digits>/                    the group's directory
 *   g<group>/<first index as 20 decimal digits>.seg            a segment: a sequence of blocks
 *   g<group>/<truncate index as 20 decimal digits>.cut         a truncation intent (transient)
 * Any other name in the group directory is foreign: open fails with RQ_ECORRUPT.
 *
 * Blocks: see store/block.h for the byte layout (64-byte self-checking header + entries). One term
 * per block; a block is cut at a term change and at config.block_size_max. A segment is cut (a new
 * file started, "roll") when the next block would take it past config.segment_size_max, so a
 * segment never exceeds it. Within a group, blocks are contiguous: each starts at the index and
 * message offset where the one before ended, and terms never decrease. The first block of a
 * segment starts at the index in the file's name.
 *
 * The .cut intent (present only while a truncation is in progress), integers little-endian:
 *     offset size field
 *          0    4 magic          0x43535152 (the bytes "RQSC")
 *          4    2 version        1
 *          6    2 flags          0
 *          8    4 crc            CRC32C of bytes 12..63 and the tail
 *         12    4 header crc     CRC32C of bytes 16..63
 *         16    8 group id
 *         24    8 truncate index the first index removed (= the number in the file name)
 *         32    8 cut segment    first index of the segment that keeps a prefix, 0 = none
 *         40    8 cut position   byte size that segment is truncated to before the tail
 *         48    4 tail size      bytes of the tail (0, or one block)
 *         52   12 reserved       0
 *         64    n tail           the block that held (truncate index - 1), rewritten without its
 *                                later entries; written at the cut position
 *
 * Memory: struct store_segment is embedded by the caller (about 200 KiB: its index is a fixed
 * array). Disk buffers are one caller-provided buffer of buf_size bytes, lent to the store from
 * store_segment_init until the caller stops using the store; it bounds every read and write
 * ("max read size"). Nothing is allocated.
 *
 * Index: for every block, in memory: first index, first message offset, term, newest timestamp,
 * the running maximum of timestamps, file position and size. Lookups by index, message offset or
 * timestamp are a binary search over it plus ONE read (PREAD) of one block; stats.reads counts
 * every PREAD this store ever issued. At most two file handles per group are open: one for
 * appends, one for reads (a read of another segment closes and reopens it, which is not a read).
 *
 * One operation at a time: an asynchronous call made while another is in progress returns
 * RQ_EBUSY and does nothing. Within an operation, one disk request is in flight at a time. Every
 * accepted asynchronous call produces exactly one completion, delivered through the callback from
 * inside store_segment_on_disk_done — never from the call itself.
 *
 * Errors: any failed disk request (notably RQ_EIO from an FSYNC, whose data's fate is unknown,
 * io.h), and any corruption found, put the store in a sticky FAILED state: the error is reported
 * once through the completion of the operation that met it, and every later call returns it. The
 * caller must then fail-stop (io->halt) or at least stop serving this group. Calls that are
 * refused synchronously (RQ_EBUSY, RQ_EINVAL, RQ_ERANGE, RQ_ENOMEM) change nothing and are not
 * sticky.
 *
 * Crash safety (exactly the io.h rules, no more):
 *   - append: blocks are written at the end of the last segment in ONE PWRITE, then FSYNC; a new
 *     segment file is created (OPEN with RQ_DISK_CREATE), written, FSYNCed, and its directory
 *     FSYNC_DIRed before its entries are reported durable. A crash leaves a prefix of the write
 *     (torn at sectors), which recovery cuts off. Appends always go to a durable end of file.
 *   - truncate suffix from index i: 1. if i falls inside a block, that block is read and cut to
 *     the entries before i; 2. the .cut intent (with the cut block as its tail) is written,
 *     FSYNCed and its name FSYNC_DIRed; 3. the segment holding i - 1 is TRUNCATEd to the cut
 *     position, the tail written there, FSYNCed; 4. every later segment is UNLINKed, FSYNC_DIR;
 *     5. the intent is UNLINKed, FSYNC_DIR; then reported. A crash before the intent is durable
 *     leaves the old log untouched (recovery discards a torn intent); after it, recovery redoes
 *     steps 3–5 (they are idempotent). So a crash shows the old or the truncated log, never a mix,
 *     and once reported a truncated suffix never reappears.
 *   - drop prefix / retention: whole segments are UNLINKed oldest first, each followed by an
 *     FSYNC_DIR, so a crash leaves a suffix of the segments, never a hole.
 *
 * Recovery (store_segment_open):
 *   1. LIST the group directory (MKDIR it and FSYNC_DIR the data directory when missing: an empty
 *      group). Names that are not "<20 digits>.seg" / "<20 digits>.cut", more than one intent, or
 *      more than STORE_SEGMENT_FILES_MAX segments fail the open.
 *   2. An intent: complete and valid -> FSYNC it and FSYNC_DIR (after a process crash it may be
 *      in the page cache only, and a redo must not outlive its intent), then redo the truncation
 *      (steps 3–5 above); torn (shorter than its header says, or empty or all zeros) -> UNLINK
 *      it, FSYNC_DIR; complete but failing a check -> RQ_ECORRUPT.
 *   3. Every segment in index order: OPEN, read in chunks of at most buf_size bytes, check every
 *      block completely (header, crcs, entries, continuity with the block before, first block =
 *      file name; no gap or overlap between segments), record it in the index, FSYNC, CLOSE.
 *      In the LAST segment, the first block that is not valid is a torn tail — the file is
 *      truncated there (or UNLINKed when nothing valid precedes it) and the open reports it with
 *      RQ_WARN — when a torn write could have made it: the file ends inside its 64-byte header,
 *      or its header is valid and announces a block extending past the end of the file, or
 *      everything from it to the end of the file is zeros. Any other invalid block — one that is
 *      complete (so rot or a foreign write, even if it is the last block), or in a segment that is
 *      not the last — is corruption: the open fails with RQ_ECORRUPT, logged with RQ_ERROR naming
 *      the file and the byte position.
 *   4. FSYNC_DIR the group directory and the data directory, and only then report: after a
 *      process crash (kill -9) what was read may be only in the page cache, and every segment
 *      was FSYNCed in step 3, so what the open reports is durable.
 *
 * Timestamps are only roughly monotonic (clock drift, leader changes). find_timestamp(t) returns
 * exactly the FIRST entry in log order whose timestamp is >= t: the index keeps, per block, the
 * running maximum of block timestamps, which never decreases, so the first block whose running
 * maximum reaches t is the first block holding an entry >= t. Entries after it may still have
 * timestamps below t. Retention by age uses each segment's newest timestamp.
 *
 * Bounds: STORE_SEGMENT_FILES_MAX segments and STORE_SEGMENT_BLOCKS_MAX blocks per group (an
 * append that would exceed either returns RQ_ENOMEM: drop a prefix first), blocks of at most
 * config.block_size_max (<= STORE_BLOCK_SIZE_MAX) bytes, segments of at most
 * config.segment_size_max (<= STORE_SEGMENT_SIZE_MAX), reads and writes of at most buf_size
 * (<= STORE_SEGMENT_BUF_SIZE_MAX). */
#ifndef RQ_STORE_SEGMENT_H
#define RQ_STORE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"
#include "store/block.h"

enum {
    STORE_SEGMENT_FILES_MAX = 64,         /* segments per group */
    /* Index entries (blocks) per group: a partition holds at most this many blocks (about
     * 3.5 GiB of 1 KiB records; with 4,096 it filled in 5 s of a benchmark, at 450 MB). The index
     * is part of the group's struct (1.5 MiB of address space; pages are touched as it fills). */
    STORE_SEGMENT_BLOCKS_MAX = 32768,
    STORE_SEGMENT_SIZE_MAX = 1 << 30,     /* largest configurable segment (positions fit u32) */
    STORE_SEGMENT_BUF_SIZE_MAX = 8 << 20, /* largest buffer: max read and write size */
    STORE_SEGMENT_CUT_MAGIC = 0x43535152, /* "RQSC" */
    STORE_SEGMENT_CUT_VERSION = 1,
    STORE_SEGMENT_CUT_HEADER_SIZE = 64,
    STORE_SEGMENT_PATH_SIZE = 43, /* "g" + 16 hex + "/" + 20 digits + ".seg" + NUL */
    STORE_SEGMENT_DIR_SIZE = 18,  /* "g" + 16 hex + NUL */
    /* disk requests one operation may plan: a truncation is ~16 plus one UNLINK per segment */
    STORE_SEGMENT_PLAN_MAX = STORE_SEGMENT_FILES_MAX + 24,
};

struct store_segment_config {
    uint32_t block_size_max;   /* STORE_BLOCK_SIZE_MIN .. STORE_BLOCK_SIZE_MAX, header included */
    uint64_t segment_size_max; /* block_size_max .. STORE_SEGMENT_SIZE_MAX */
};

/* buf_size must be at least this (and at most STORE_SEGMENT_BUF_SIZE_MAX): a whole block plus the
 * intent header, and the names LIST returns. It must not shrink across restarts below the largest
 * write made before (a torn tail is at most one write). */
static inline size_t store_segment_buf_size_min(const struct store_segment_config *config) {
    size_t need = (size_t)config->block_size_max + STORE_SEGMENT_CUT_HEADER_SIZE;
    size_t list = (size_t)(STORE_SEGMENT_FILES_MAX + 2) * 32;
    return need > list ? need : list;
}

/* ---- pure decoding of a segment image (no I/O; for recovery and fuzzing) ----------------------
 */

enum store_segment_scan_status {
    STORE_SEGMENT_SCAN_END = 0,     /* every byte belongs to a valid block */
    STORE_SEGMENT_SCAN_SHORT = 1,   /* the block at valid_size runs past len (store_block SHORT) */
    STORE_SEGMENT_SCAN_INVALID = 2, /* the block at valid_size is complete but fails a check */
    STORE_SEGMENT_SCAN_STOPPED =
        3, /* the visitor asked to stop after the block before valid_size */
};

struct store_segment_scan {
    /* in */
    uint32_t block_size_limit; /* STORE_BLOCK_SIZE_MIN .. STORE_BLOCK_SIZE_MAX */
    /* in, updated past every valid block: what the next block must continue from */
    uint64_t next_index;  /* its first index must equal this (0: any) */
    int have_offset;      /* 0: its first message offset may be anything */
    uint64_t next_offset; /* else it must equal this */
    uint64_t last_term;   /* its term must be >= this */
    /* out */
    size_t valid_size;    /* bytes of valid blocks from the start of buf */
    uint32_t block_count; /* valid blocks */
    const char *problem;  /* SHORT / INVALID: why (static string) */
};

/* Called for each valid block, in order, with its position in buf and the block's bytes; return 0
 * to continue or nonzero to stop. */
typedef int (*store_segment_scan_fn)(void *arg, size_t position, const uint8_t *block,
                                     const struct store_block_header *h, uint64_t message_count);

/* Checks the blocks in buf[0..len) one after the other, stopping at the first that is short,
 * invalid or does not continue from the one before. Never reads outside buf, never allocates,
 * takes time linear in len. visit may be NULL. */
enum store_segment_scan_status store_segment_scan(const uint8_t *buf, size_t len,
                                                  struct store_segment_scan *scan,
                                                  store_segment_scan_fn visit, void *arg);

/* ---- names ---------------------------------------------------------------------------------- */

/* "g<16 hex>" into dir (STORE_SEGMENT_DIR_SIZE); "g<16 hex>/<20 digits>.seg" into path
 * (STORE_SEGMENT_PATH_SIZE). */
void store_segment_dir(uint64_t group_id, char *dir);
void store_segment_path(uint64_t group_id, uint64_t first_index, char *path);

/* ---- the store ------------------------------------------------------------------------------ */

enum store_segment_event {
    STORE_SEGMENT_OPENED = 1,
    STORE_SEGMENT_APPENDED,
    STORE_SEGMENT_READ,  /* store_segment_read */
    STORE_SEGMENT_FOUND, /* store_segment_find_offset / find_timestamp */
    STORE_SEGMENT_TRUNCATED,
    STORE_SEGMENT_DROPPED, /* store_segment_drop_prefix / store_segment_retention */
};

/* Delivered to the callback; valid only during the call (entry payloads point into the buffer). */
struct store_segment_result {
    enum store_segment_event event;
    int err; /* 0, or the negative RQ_E* code that failed the operation (the store is FAILED) */
    /* the log after the operation (all events; on error: the last state known good) */
    uint64_t first_index; /* first entry present; = next_index when empty */
    uint64_t last_index;  /* last entry present; = first_index - 1 when empty */
    uint64_t next_offset; /* first message offset of the next entry appended */
    /* OPENED */
    uint64_t torn_bytes;    /* bytes cut off the last segment's torn tail (0: none) */
    uint64_t torn_position; /*   at this byte position */
    uint64_t torn_segment;  /*   of the segment with this first index */
    int intent_redone;      /* a truncation interrupted by a crash was completed */
    int intent_discarded;   /* a torn truncation intent was removed (old log kept) */
    uint32_t segment_count;
    /* APPENDED: entries up to this index are durable */
    uint64_t durable_index;
    /* READ, FOUND: the caller's out array, filled with entry_count entries */
    struct store_entry *entries;
    uint32_t entry_count;
    /* DROPPED */
    uint32_t segments_deleted;
};

/* Called only from inside store_segment_on_disk_done. The store is idle when it is called, so it
 * may start the next operation. */
typedef void (*store_segment_done_fn)(void *arg, const struct store_segment_result *result);

enum store_segment_state {
    STORE_SEGMENT_NEW = 0, /* initialised; open not called */
    STORE_SEGMENT_OPENING,
    STORE_SEGMENT_READY,
    STORE_SEGMENT_FAILED, /* sticky */
};

struct store_segment_stats {
    uint64_t reads;  /* PREADs issued (recovery chunks, lookups, reads, truncation) */
    uint64_t writes; /* PWRITEs issued */
    uint64_t fsyncs; /* FSYNC and FSYNC_DIR issued */
    uint64_t requests;
    uint64_t bytes_written;
};

/* One segment file, in memory. */
struct store_segment_file {
    uint64_t first_index;
    uint64_t size;        /* bytes of valid blocks */
    uint64_t timestamp;   /* newest block timestamp in it */
    uint32_t block_first; /* its blocks are blocks[block_first .. block_first + block_count) */
    uint32_t block_count;
};

/* One block, in memory: the sparse index. */
struct store_segment_block {
    uint64_t first_index;
    uint64_t first_offset;
    uint64_t term;
    uint64_t timestamp;         /* the block's newest entry */
    uint64_t timestamp_running; /* max over this block and every block before it in the group */
    uint32_t position;          /* byte position in its segment */
    uint32_t size;              /* header included */
};

/* One planned disk request (private). */
struct store_segment_step {
    uint8_t op;
    uint8_t name_kind;
    uint8_t slot;
    uint8_t flags;
    uint32_t len;
    uint32_t buf_at;
    uint64_t name_index;
    uint64_t offset;
};

/* Retention, see store_segment_retention. */
struct store_segment_retention {
    uint64_t now;            /* the caller's clock, same unit as entry timestamps */
    uint64_t ttl;            /* 0 = no age limit */
    uint64_t size_limit;     /* total bytes of segments; 0 = no size limit */
    uint64_t snapshot_index; /* no entry at or above this index is ever removed */
};

/* Embedded by the caller. Fields are private to segment.c; tests may read them. */
struct store_segment {
    const struct rq_io *io;
    uint64_t group_id;
    struct store_segment_config config;
    uint8_t *buf;
    uint32_t buf_size;
    store_segment_done_fn done;
    void *done_arg;
    enum store_segment_state state;
    int err;
    int busy; /* an operation is in progress */
    enum store_segment_event op_event;
    int phase; /* what finishes the current plan (segment.c) */
    struct store_segment_stats stats;
    /* the log */
    uint64_t next_index; /* last index + 1 */
    uint64_t next_offset;
    uint64_t last_term;
    uint32_t file_count;
    uint32_t block_count;
    int roll_requested;
    struct store_segment_file files[STORE_SEGMENT_FILES_MAX];
    struct store_segment_block blocks[STORE_SEGMENT_BLOCKS_MAX];
    /* handles: slot 0 for appends, slot 1 for reads and the intent */
    int32_t slot_file[2]; /* -1 = closed */
    uint8_t slot_kind[2]; /* planned: what the slot will hold once the plan ran */
    uint64_t slot_index[2];
    uint64_t opened_size; /* size from the last OPEN */
    int64_t read_result;  /* bytes from the last PREAD */
    int64_t last_result;  /* result of the last request */
    /* the plan being executed */
    struct store_segment_step plan[STORE_SEGMENT_PLAN_MAX];
    uint32_t plan_count;
    uint32_t plan_at;
    struct rq_disk_req req;
    /* per operation */
    struct store_entry *out;
    uint32_t out_cap;
    uint64_t op_index; /* read: from index; truncate: i; find: the offset or timestamp */
    uint32_t op_max_entries;
    uint64_t op_max_bytes;
    uint32_t op_block;      /* the first block read */
    uint32_t op_block_end;  /* one past the last block read */
    uint32_t op_count;      /* appended blocks / segments to delete */
    int op_new_file;        /* append: creates a new segment */
    uint64_t op_last_index; /* append: last index written */
    uint64_t op_next_offset;
    uint64_t op_timestamp; /* truncate: the cut block's newest timestamp */
    /* recovery */
    uint32_t scan_file;
    uint64_t scan_pos;
    uint64_t scan_size;
    int scan_torn;
    uint64_t cut_index; /* intent found at open: its index; 0 = none */
    struct store_segment_result open_result;
};

/* Prepares s. io outlives s; config is copied; buf (buf_size bytes, see store_segment_buf_size_min)
 * is lent for the store's lifetime; done (not NULL) receives every completion with done_arg.
 * Touches no disk. Asserts the config and buffer bounds. */
void store_segment_init(struct store_segment *s, const struct rq_io *io, uint64_t group_id,
                        const struct store_segment_config *config, uint8_t *buf, size_t buf_size,
                        store_segment_done_fn done, void *done_arg);

/* Recovers the group (see "Recovery" above; requires state NEW, asserted). Exactly one OPENED
 * completion follows: err 0 with the log's bounds (an empty or new group: first_index 1,
 * last_index 0, next_offset 0), or RQ_ECORRUPT / RQ_ETOOBIG (files this store cannot trust or
 * index: the node must not serve this group) or any error a disk request returned. */
void store_segment_open(struct store_segment *s);

/* Only while the log is empty (no segment): where the next append starts (after a snapshot, or
 * after a restart that found the group empty). Returns 0, RQ_EINVAL (not empty, or index 0), or
 * the sticky error. */
int store_segment_set_next(struct store_segment *s, uint64_t next_index, uint64_t next_offset);

/* Appends entries[0 .. count): they must continue the log (entries[k].index = next index + k),
 * terms >= 1 and never decreasing, each payload at most block_size_max - 80 bytes. Encodes as many
 * leading entries as fit in one write (the buffer, the current segment or a new one, the index
 * bounds) — at least one — into *accepted; the caller keeps no ownership (entries are copied
 * before return) and appends the rest after the completion. One APPENDED completion follows, with
 * durable_index = the last accepted index once durable. Returns 0, RQ_EBUSY, RQ_EINVAL (bad
 * entries), RQ_ENOMEM (segment or block limit reached), or the sticky error. */
int store_segment_append(struct store_segment *s, const struct store_entry *entries, uint32_t count,
                         uint32_t *accepted);

/* The next append starts a new segment (no I/O, immediate). Returns 0 or the sticky error. */
int store_segment_roll(struct store_segment *s);

/* Reads entries from from_index (first_index <= from_index <= last_index, else RQ_ERANGE): at
 * most max_entries (>= 1) and out_cap, stopping before the entry that would take the payload
 * bytes past max_bytes (the first entry is always returned). One PREAD of consecutive blocks of
 * one segment, at most buf_size bytes. One READ completion follows with out[0 .. entry_count)
 * filled; payloads point into the buffer, valid during the callback. A block that fails its
 * checks fails the store (RQ_ECORRUPT, logged with file and position): nothing unverified is
 * served. out must stay valid until the completion. */
int store_segment_read(struct store_segment *s, uint64_t from_index, uint32_t max_entries,
                       uint64_t max_bytes, struct store_entry *out, uint32_t out_cap);

/* The entry whose messages include message offset `offset` (RQ_ERANGE when no entry does): one
 * FOUND completion with that one entry in *out. */
int store_segment_find_offset(struct store_segment *s, uint64_t offset, struct store_entry *out);

/* The first entry in log order whose timestamp >= timestamp (RQ_ERANGE when none): one FOUND
 * completion with it in *out. See "Timestamps" above. */
int store_segment_find_timestamp(struct store_segment *s, uint64_t timestamp,
                                 struct store_entry *out);

/* Removes every entry with index >= index (first_index <= index <= last_index, else RQ_ERANGE),
 * crash-safely (see "Crash safety"). One TRUNCATED completion follows once the truncation is
 * durable; next_index is then `index`. */
int store_segment_truncate(struct store_segment *s, uint64_t index);

/* Deletes every whole segment whose last index < index, oldest first (possibly all of them: the
 * log is then empty and the next append still continues from next_index, but after a restart the
 * caller must set_next). *deleting (not NULL) = how many; when 0, returns 0 and NO completion
 * follows. Otherwise one DROPPED completion. */
int store_segment_drop_prefix(struct store_segment *s, uint64_t index, uint32_t *deleting);

/* Deletes whole segments from the oldest, while each is older than the TTL (its newest timestamp
 * + ttl < now) or the total size exceeds size_limit, stopping at the first segment that is neither,
 * or whose last index >= snapshot_index, or that is the last segment (the one appends go to is
 * never deleted). *deleting as for drop_prefix. */
int store_segment_retention(struct store_segment *s, const struct store_segment_retention *r,
                            uint32_t *deleting);

/* To be called by the node's on_disk_done for every completed request: returns 1 if req was this
 * store's (handled), else 0 and does nothing. */
int store_segment_on_disk_done(struct store_segment *s, struct rq_disk_req *req);

/* Queries on the in-memory index (no I/O). */
int store_segment_busy(const struct store_segment *s);
uint64_t store_segment_first_index(const struct store_segment *s);
uint64_t store_segment_last_index(const struct store_segment *s);
/* The term of entry `index`: 0, or RQ_ERANGE when it is not in the store. */
int store_segment_term(const struct store_segment *s, uint64_t index, uint64_t *term);
uint64_t store_segment_size(const struct store_segment *s); /* bytes of all segments */

#endif
