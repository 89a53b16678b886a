/* wal.h — the node write-ahead log ("node log"): one per node, shared by every Raft group on it.
 *
 * Raft entries (and Raft's truncations of a conflicting suffix) from all groups of a node go into
 * one log, so that one pwrite and one fdatasync make a whole batch of them durable (group commit,
 * DESIGN.md "Storage"). Each record gets a log sequence number (LSN): 1, 2, 3, ... strictly
 * increasing over the node's life and continuing after recovery (after the last record recovery
 * found: the LSNs of records lost in a crash, never reported durable, are given again). The
 * caller later copies entries into per-group segments and then trims the log (store_wal_trim).
 *
 * ---- On-disk format (version 1) -------------------------------------------------------------
 *
 * Directory "wal" in the data directory; files "wal/<LSN as 16 lowercase hex digits>.log", the
 * LSN being that of the first record in the file (e.g. "wal/0000000000000001.log"). LSNs run on
 * without a gap from one file to the next: the first LSN of a file is the last LSN of the previous
 * file plus 1. Anything else in "wal" is a foreign file (recovery refuses it).
 *
 * A file is a sequence of batches, back to back from byte 0, with no file header and no padding.
 * One batch = one PWRITE. All integers are little-endian (src/base/codec.h).
 *
 *   batch header, STORE_WAL_BATCH_HEADER_SIZE = 32 bytes:
 *     offset size field
 *          0    4 magic        0x4C575152 (the bytes "RQWL")
 *          4    2 version      1
 *          6    2 reserved     0
 *          8    4 crc32c       CRC32C (Castagnoli) of header bytes 0..7, then header bytes
 *                              12..31, then the whole body: everything in the batch but itself
 *         12    4 body size    bytes of records after the header; >= 32 * record count and
 *                              32 + body size <= STORE_WAL_BATCH_BYTES_LIMIT
 *         16    8 first LSN    LSN of the first record; >= 1; the batch's records have LSNs
 *                              first, first + 1, ..., first + count - 1
 *         24    4 record count >= 1 and <= STORE_WAL_BATCH_RECORDS_LIMIT
 *         28    4 reserved     0
 *   then `record count` records, back to back, exactly filling `body size` bytes:
 *     offset size field
 *          0    8 group id     the Raft group
 *          8    8 term
 *         16    8 index        ENTRY: the entry's index. TRUNCATE: the group's entries with
 *                              index >= this are void
 *         24    1 kind         1 = ENTRY, 2 = TRUNCATE
 *         25    3 reserved     0
 *         28    4 payload size ENTRY: the entry's bytes; TRUNCATE: 0
 *         32    n payload
 *
 * A batch is valid when its magic, version and reserved fields are right, its sizes and count are
 * within the bounds above, its first LSN is the one expected (the file name's for the first batch
 * of a file, then the previous batch's first + count), its CRC matches, and its body parses into
 * exactly `record count` well-formed records. A batch whose CRC matches but whose body or LSN is
 * wrong is foreign, never torn.
 *
 * ---- Writing ------------------------------------------------------------------------------------
 *
 * Requests are issued in this order of priority when none is in flight: a due trim (UNLINK +
 * FSYNC_DIR "wal", see store_wal_trim), then the next batch. A batch is written by ONE PWRITE at
 * the end of the current file and made durable by ONE FSYNC, submitted back to back (the
 * environment completes them in that order, io.h), so at most STORE_WAL_REQS_MAX = 2 requests are
 * in flight, and two only as such a pair; every other request runs alone. Everything appended
 * meanwhile accumulates in the fill buffer and forms the next batch, so batches grow with the
 * load; a fill batch that refuses an append for lack of room is sealed (its header and CRC
 * computed) at once, takes nothing more, and waits ready for the disk. When a batch's FSYNC (and
 * for a new file its FSYNC_DIR) succeeds, the next batch's write is submitted FIRST and only then
 * are the finished batch's records reported durable, from its own buffer: three batch buffers
 * (finished and being reported, on the disk, filling), so appends made from the `durable`
 * callbacks still work. Before a batch is written, if the current file has reached
 * config.file_bytes_max bytes (so a file exceeds it by less than one batch), the file is rolled:
 * CLOSE, OPEN "wal/<first LSN of this batch>.log" with RQ_DISK_CREATE, PWRITE + FSYNC, and then
 * FSYNC_DIR "wal" so that the new name is durable before any record in it is reported. (With
 * STORE_WAL_FILES_MAX files present the roll waits for a trim, and the current file grows.) Files
 * are never rewritten, except that recovery truncates a torn tail (below). A batch's write is
 * submitted only after the previous batch's FSYNC succeeded, so at most one batch write is ever
 * unsynced, and it is always the last batch of the last file. A write or create refused with
 * RQ_ENOSPC wrote nothing (io.h): the batch is kept, appends get RQ_EBUSY, the FSYNC queued behind
 * such a write covers nothing new (its success is ignored; its failure still fails the WAL), and
 * store_wal_tick retries the write (with its FSYNC) once nothing is in flight.
 *
 * ---- Recovery (store_wal_recover) -------------------------------------------------------------
 *
 * LIST "wal" (missing: MKDIR "wal", FSYNC_DIR "" and the WAL is empty); FSYNC_DIR "" and "wal"
 * (after a kill -9 the names may be only in the page cache); then each file in LSN order: OPEN,
 * FSYNC (its data may be only in the page cache too: after this, everything replayed from it is
 * durable), PREAD in chunks of at most the WAL's memory (mem_size bytes: recovery never holds more
 * than that of a file), validate batch after batch and replay every record of every valid batch,
 * CLOSE (the last file stays open: appends continue at its valid end).
 *   - A torn tail — the end of the LAST file is a strict prefix of one batch, cut short as a crash
 *     cuts an unsynced write (io.h: a prefix of its sectors), or is all zero bytes — is truncated
 *     (TRUNCATE + FSYNC) and reported (torn_bytes): those records were never reported durable.
 *   - Everything else is corruption or a foreign file, and recovery fails with RQ_ECORRUPT, logging
 *     (RQ_ERROR) the file name and the byte offset: an invalid batch in any file but the last; in
 *     the last file, a COMPLETE batch that fails its CRC or structure (under io.h's rules a crash
 *     never leaves one: latent corruption of synced data — so even the last batch, which was
 *     reported durable, is never silently dropped), an incomplete batch followed by a valid batch
 *     with a later LSN, or one whose bytes up to the end of the file are a valid batch but for its
 *     size field; a name that is not 16 lowercase hex digits + ".log", or LSN 0; a first batch
 *     whose LSN is not the file name's; an LSN gap or overlap between files (a missing file); an
 *     empty file that is not the last.
 *   - A batch larger than mem_size (possible only if a previous run used a larger batch_bytes_max
 *     and this one gave less memory than store_wal_memory_size) fails with RQ_ETOOBIG.
 * Caveat: a torn batch whose payload happens to contain a complete valid batch image with a later
 * LSN (payloads are user bytes) is reported as corruption: a refusal to start, never a loss.
 *
 * ---- Contract -----------------------------------------------------------------------------------
 *
 * Callbacks run only from inside store_wal_on_disk_done, never from another store_wal_* call. All
 * errors are sticky: after the first failure the WAL is FAILED, reports the error once (through
 * `recovered` during recovery, else through `durable`), and every later call returns it; the
 * caller must fail-stop (io->halt) — the WAL never halts by itself. Memory: everything lives in
 * struct store_wal (which the caller embeds) and in the caller's `mem`; the WAL never allocates. */
#ifndef RQ_STORE_WAL_H
#define RQ_STORE_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

enum {
    STORE_WAL_MAGIC = 0x4C575152, /* "RQWL" as little-endian bytes */
    STORE_WAL_VERSION = 1,
    STORE_WAL_BATCH_HEADER_SIZE = 32,
    STORE_WAL_RECORD_HEADER_SIZE = 32,
    STORE_WAL_BATCH_BYTES_LIMIT = 2 << 20,   /* format: the largest batch, header included */
    STORE_WAL_BATCH_RECORDS_LIMIT = 1 << 16, /* format: the most records in one batch */
    STORE_WAL_FILES_MAX = 128,               /* files in "wal" at once (see store_wal_trim) */
    STORE_WAL_TAIL_CANDIDATES_MAX = 256,     /* see store_wal_tail_check */
    STORE_WAL_BUFFERS = 3,                   /* batch buffers: reported, on the disk, filling */
    STORE_WAL_REQS_MAX = 2,                  /* requests in flight: a batch's PWRITE + FSYNC */
    STORE_WAL_NAME_SIZE = 21,                /* 16 hex digits + ".log" + NUL */
    STORE_WAL_PATH_SIZE = 25,                /* "wal/" + name */
};

enum store_wal_kind {
    STORE_WAL_ENTRY = 1,
    STORE_WAL_TRUNCATE = 2, /* this group's entries with index >= `index` are void */
};

/* A record. To store_wal_append: every field but lsn. From the WAL: all, payload valid only during
 * the callback. */
struct store_wal_record {
    uint64_t lsn;
    uint64_t group_id;
    uint64_t term;
    uint64_t index;
    enum store_wal_kind kind;
    const uint8_t *payload;
    uint32_t payload_size;
};

typedef void (*store_wal_record_fn)(void *arg, const struct store_wal_record *rec);

/* ---- pure decoding (no I/O, no allocation; safe on any input: the fuzz targets call these) ----
 */

enum store_wal_scan_stop {
    STORE_WAL_SCAN_END = 0,    /* every byte belongs to a valid batch */
    STORE_WAL_SCAN_INCOMPLETE, /* at valid_size: a plausible batch that the buffer cuts short */
    STORE_WAL_SCAN_INVALID,    /* at valid_size: a batch that is not valid (why says how) */
};

struct store_wal_scan {
    enum store_wal_scan_stop stop;
    size_t valid_size; /* bytes of complete valid batches from the start of the buffer */
    uint64_t next_lsn; /* the LSN after the last valid record (expected_lsn if none) */
    uint64_t batches;  /* valid batches */
    uint64_t records;  /* records replayed */
    size_t batch_size; /* INCOMPLETE with a whole header: the size the batch claims; else 0 */
    const char *why;   /* INCOMPLETE, INVALID: a static sentence; END: NULL */
};

/* Decodes consecutive batches from buf[0..len), calling fn (if not NULL) for every record of every
 * valid batch, in order, only once its batch's CRC and structure have been verified. The first
 * batch must start with expected_lsn (0: any LSN >= 1); each later one continues from the previous.
 * Stops at the end, or at the first batch that is cut short or invalid (see out->stop). */
void store_wal_scan(const uint8_t *buf, size_t len, uint64_t expected_lsn, store_wal_record_fn fn,
                    void *arg, struct store_wal_scan *out);

/* Judges the tail of the LAST file: tail[0..len) are the bytes from where store_wal_scan stopped
 * (not at END) to the end of the file, expected_lsn the LSN the batch there should start with.
 * Returns 0 when the tail is torn (a strict, plausible prefix of one batch with no valid batch of a
 * later LSN after it, or all zero bytes): safe to truncate. Else RQ_ECORRUPT, with *why set.
 * Work is bounded: at most STORE_WAL_TAIL_CANDIDATES_MAX magic numbers after the first byte are
 * examined (more -> RQ_ECORRUPT), each costing at most one CRC over the tail. */
int store_wal_tail_check(const uint8_t *tail, size_t len, uint64_t expected_lsn, const char **why);

struct store_wal_file_scan {
    size_t valid_size; /* bytes of valid batches from the start */
    size_t torn_size;  /* err == 0: bytes after them to truncate (a torn tail; last file only) */
    uint64_t next_lsn;
    uint64_t records;
    const char *why; /* err != 0 */
};

/* The whole decision recovery makes about one file image: store_wal_scan from first_lsn, then, if
 * it stopped early, RQ_ECORRUPT unless is_last and store_wal_tail_check says torn. Returns 0 or
 * RQ_ECORRUPT (the bad batch at out->valid_size). Records are passed to fn as in store_wal_scan:
 * on RQ_ECORRUPT those before the bad batch have been passed. */
int store_wal_scan_file(const uint8_t *buf, size_t len, uint64_t first_lsn, int is_last,
                        store_wal_record_fn fn, void *arg, struct store_wal_file_scan *out);

/* Writes "<16 lowercase hex digits>.log" (STORE_WAL_NAME_SIZE) and "wal/<that>" (PATH_SIZE). */
void store_wal_name(uint64_t first_lsn, char *name);
void store_wal_path(uint64_t first_lsn, char *path);
/* Parses a file name in "wal"; returns 0 and the LSN, or RQ_EINVAL (not ours, or LSN 0). */
int store_wal_parse_name(const char *name, uint64_t *first_lsn);

/* ---- the log -----------------------------------------------------------------------------------
 */

struct store_wal_config {
    uint32_t batch_bytes_max;   /* one batch, header included: 1 KiB .. BATCH_BYTES_LIMIT */
    uint32_t batch_records_max; /* 1 .. STORE_WAL_BATCH_RECORDS_LIMIT */
    uint32_t payload_bytes_max; /* per record; + 64 (two headers) <= batch_bytes_max */
    uint64_t file_bytes_max;    /* roll to a new file once the current one has this many bytes */
};

/* batch 2 MiB, 4096 records, payload 1 MiB (RQ_MSG_MAX), files 64 MiB. */
void store_wal_config_default(struct store_wal_config *config);
/* Returns 0, or RQ_EINVAL when a field is outside the ranges above. */
int store_wal_config_check(const struct store_wal_config *config);
/* Memory to give store_wal_init: max(3 * batch_bytes_max, STORE_WAL_BATCH_BYTES_LIMIT), enough for
 * three batch buffers (one reported, one on the disk, one filling: see "Writing") and for recovery
 * to read any batch the format allows. The minimum is 3 * batch_bytes_max (6 MiB by default, fixed:
 * nothing else is allocated); with less than the result, recovery fails (RQ_ETOOBIG) on a batch it
 * cannot hold. */
size_t store_wal_memory_size(const struct store_wal_config *config);

/* What recovery found; delivered once through `recovered`. */
struct store_wal_recovery {
    int err;            /* 0, RQ_ECORRUPT, RQ_ETOOBIG (see above), or a disk request's error */
    uint64_t next_lsn;  /* the LSN the next append gets (>= 1) */
    uint64_t first_lsn; /* the first LSN replayed; 0 when none */
    uint64_t records;   /* records replayed */
    uint32_t files;     /* files found */
    uint64_t bytes_read;
    uint64_t torn_bytes;  /* bytes truncated from the end of the last file (0: none) */
    uint64_t torn_offset; /* where that tail began in the last file */
};

/* Delivered through `durable`. */
struct store_wal_durable {
    int err;                        /* 0: `record` is durable. Else the WAL failed (see append) */
    struct store_wal_record record; /* err == 0 */
    uint64_t lsn_first, lsn_last;   /* err != 0: the records whose fate is unknown, accepted but
                                       not reported durable (none when lsn_first > lsn_last) */
};

struct store_wal_callbacks {
    /* Recovery: every valid record, in LSN order, from store_wal_on_disk_done. The record is
     * durable (its file was FSYNCed before it was read). On a failed recovery some records may
     * have been replayed before the failure; the caller must discard them. */
    store_wal_record_fn replay;
    /* Recovery is over (once). On err == 0 the WAL is READY: appends are accepted, from inside
     * this callback too. */
    void (*recovered)(void *arg, const struct store_wal_recovery *result);
    /* See store_wal_append. May call store_wal_append and store_wal_trim. */
    void (*durable)(void *arg, const struct store_wal_durable *event);
};

struct store_wal_stats {
    uint64_t batches;    /* batches made durable */
    uint64_t records;    /* records made durable */
    uint64_t bytes;      /* bytes made durable (batch headers included) */
    uint64_t fsyncs;     /* file FSYNCs by the write path */
    uint64_t dir_fsyncs; /* FSYNC_DIR by the write path (new files, trims) */
    uint32_t batch_records_largest;
    uint32_t batch_bytes_largest;
    uint64_t busy;   /* appends refused with RQ_EBUSY */
    uint64_t enospc; /* writes or creates refused with RQ_ENOSPC, then retried */
    uint64_t files_created;
    uint64_t files_deleted;
};

enum store_wal_state {
    STORE_WAL_NEW = 0, /* initialised; store_wal_recover not called yet */
    STORE_WAL_RECOVERING,
    STORE_WAL_READY,
    STORE_WAL_FAILED, /* an error was reported; only the sticky error remains */
};

/* What a disk request in flight does (at most STORE_WAL_REQS_MAX; two only as W_WRITE, W_FSYNC). */
enum store_wal_step {
    STORE_WAL_STEP_NONE = 0,
    STORE_WAL_STEP_LIST,       /* recovery: the names in "wal" ... */
    STORE_WAL_STEP_MKDIR,      /* ... or create it ... */
    STORE_WAL_STEP_FSYNC_ROOT, /* ... and make its own name durable (FSYNC_DIR "") */
    STORE_WAL_STEP_FSYNC_WAL,  /* FSYNC_DIR "wal": the files' names */
    STORE_WAL_STEP_R_OPEN,     /* per file: open, */
    STORE_WAL_STEP_R_FSYNC,    /*   make durable what reads will see, */
    STORE_WAL_STEP_R_READ,     /*   read a chunk, */
    STORE_WAL_STEP_R_TRUNCATE, /*   cut a torn tail, */
    STORE_WAL_STEP_R_TRUNC_FSYNC,
    STORE_WAL_STEP_R_CLOSE,     /*   close all but the last */
    STORE_WAL_STEP_W_CLOSE,     /* roll: close the full file, */
    STORE_WAL_STEP_W_OPEN,      /*   create the next one */
    STORE_WAL_STEP_W_WRITE,     /* the batch: one PWRITE, */
    STORE_WAL_STEP_W_FSYNC,     /*   one FSYNC, */
    STORE_WAL_STEP_W_FSYNC_DIR, /*   and, in a new file, FSYNC_DIR "wal" */
    STORE_WAL_STEP_T_UNLINK,    /* trim: delete the oldest file, */
    STORE_WAL_STEP_T_FSYNC_DIR, /*   durably, before deleting the next (deletions stay a prefix) */
};

/* One of the STORE_WAL_BUFFERS batch buffers. */
struct store_wal_batch {
    uint8_t *buf;       /* batch_bytes_max bytes inside mem: header, then records */
    uint32_t size;      /* bytes used, header included (STORE_WAL_BATCH_HEADER_SIZE when empty) */
    uint32_t count;     /* records */
    uint64_t first_lsn; /* of the first record, when count > 0 */
    int sealed;         /* header and CRC final: it takes no more appends */
};

/* Recovery's position. */
struct store_wal_reader {
    uint32_t file_index; /* into files[] */
    int32_t handle;
    uint64_t size;         /* of the file being read */
    uint64_t base;         /* file offset of mem[0] */
    size_t fill;           /* bytes of mem holding file data from base */
    uint64_t expected_lsn; /* of the next batch */
    struct store_wal_recovery result;
};

/* Embedded by the caller. The fields are private to wal.c; tests may read them. */
struct store_wal {
    const struct rq_io *io;
    struct store_wal_config config;
    struct store_wal_callbacks cb;
    void *cb_arg;
    enum store_wal_state state;
    int err; /* sticky, once FAILED */
    uint8_t *mem;
    size_t mem_size;
    /* Batch k (in write order) lives in batches[k % STORE_WAL_BUFFERS]: the one before the fill
     * batch is the flight batch (when `flight`), the one before that is being reported (only
     * inside batch_durable) or empty. */
    struct store_wal_batch batches[STORE_WAL_BUFFERS];
    uint32_t fill_index; /* batches[fill_index] takes appends */
    int flight;          /* the batch before it is being written (or stalled, see disk_full) */
    int reporting;       /* inside `durable` callbacks: no request may start */
    int write_voided;    /* the flight batch's PWRITE failed with RQ_ENOSPC: its FSYNC covers
                            nothing (still in flight) */
    int disk_full;       /* an RQ_ENOSPC stalled `stalled_step`; store_wal_tick retries it */
    enum store_wal_step stalled_step;
    int roll_postponed;     /* STORE_WAL_FILES_MAX files exist: the current one keeps growing */
    int32_t file;           /* handle of the current (last) file, -1 when none is open */
    uint64_t file_size;     /* bytes of valid batches in it: where the next batch goes */
    int file_name_volatile; /* it was created and FSYNC_DIR "wal" has not run since */
    uint64_t files[STORE_WAL_FILES_MAX]; /* first LSN of each file, oldest first; last = current */
    uint32_t file_count;
    uint64_t next_lsn;    /* the next append's LSN */
    uint64_t durable_lsn; /* every LSN <= this was reported durable or replayed */
    uint64_t trim_lsn;    /* records below it may be deleted */
    struct store_wal_reader reader;
    struct store_wal_stats stats;
    /* Requests in flight, oldest first: reqs[(req_head + i) % REQS_MAX], i < req_count, doing
     * req_steps[] of the same slot. */
    struct rq_disk_req reqs[STORE_WAL_REQS_MAX];
    enum store_wal_step req_steps[STORE_WAL_REQS_MAX];
    uint32_t req_head;
    uint32_t req_count;
};

/* Prepares w. io outlives w; config must pass store_wal_config_check (asserted); mem (not NULL,
 * mem_size >= 3 * batch_bytes_max, asserted) is the WAL's until the caller stops using w; every
 * callback must be set. Touches no disk. */
void store_wal_init(struct store_wal *w, const struct rq_io *io,
                    const struct store_wal_config *config, void *mem, size_t mem_size,
                    const struct store_wal_callbacks *cb, void *cb_arg);

/* Starts recovery (asynchronous; requires state NEW, asserted): `replay` for every valid record,
 * then `recovered` once. Requests: see "Recovery" above. */
void store_wal_recover(struct store_wal *w);

/* Appends a copy of rec (rec->lsn is ignored; the caller's buffers are free on return). Requires
 * READY or FAILED (asserted: never before `recovered`), kind ENTRY or TRUNCATE, and a TRUNCATE
 * with no payload (asserted). Returns:
 *   0             accepted; *lsn (if not NULL) = its LSN, one more than the previous append's;
 *   RQ_ETOOBIG    payload_size > config.payload_bytes_max (nothing appended);
 *   RQ_EBUSY      the batch being filled has batch_records_max records or no room for this one
 *                 (or is sealed: it refused an earlier append for lack of room), or the disk
 *                 is full (an ENOSPC write waits for store_wal_tick): retry after the next
 *                 `durable` callback, disk completion or tick (backpressure; nothing appended);
 *   the sticky error once FAILED.
 * Then, from store_wal_on_disk_done: `durable` with err 0 for each accepted record, in LSN order,
 * once the FSYNC (and for a new file the FSYNC_DIR) covering it succeeded. If a write, fsync or
 * any other request fails (RQ_EIO from an FSYNC: the data's fate is unknown, io.h), `durable` is
 * called ONCE with that error and lsn_first..lsn_last covering every accepted record not yet
 * reported; they may or may not survive a crash. The WAL is then FAILED: the caller must halt.
 * LSNs of records that were never reported durable may be given again after a crash. */
int store_wal_append(struct store_wal *w, const struct store_wal_record *rec, uint64_t *lsn);

/* Records with LSN < lsn are no longer needed (the caller holds them durably elsewhere). Whole
 * files all of whose records are below it are deleted in the background, oldest first, each by
 * UNLINK then FSYNC_DIR "wal", one request at a time, before the next batch write when both are
 * due; the current (last) file is never deleted. Nothing is reported. A crash can undo the last
 * deletion: recovery then replays its records again, so callers must tolerate replays of records
 * they already hold (and recovery replays from the oldest file left, not from the trim point,
 * which is not stored). Requires READY or FAILED (asserted); returns 0 or the sticky error. */
int store_wal_trim(struct store_wal *w, uint64_t lsn);

/* Called on the node's timer: retries a write (or create) that failed with RQ_ENOSPC. */
void store_wal_tick(struct store_wal *w);

/* To be called by the node's on_disk_done for every completed request: returns 1 if req was this
 * WAL's (handled: it may have submitted the next request and called callbacks), else 0. */
int store_wal_on_disk_done(struct store_wal *w, struct rq_disk_req *req);

/* Whether a request is in flight or stalled, records wait to be written, or a trim is due. */
int store_wal_busy(const struct store_wal *w);

const struct store_wal_stats *store_wal_stats(const struct store_wal *w);

#endif
