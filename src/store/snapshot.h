/* snapshot.h — Raft snapshot files of one group: write one locally, receive one from a leader
 * (InstallSnapshot), open the latest at start, and read one back in chunks at offsets.
 *
 * A snapshot is the state machine's image at (last included index, last included term), plus an
 * opaque configuration blob (the Raft membership at that index; at most STORE_SNAPSHOT_CONFIG_MAX
 * bytes) and the data (any size up to STORE_SNAPSHOT_DATA_MAX, produced and consumed in chunks of
 * at most STORE_SNAPSHOT_CHUNK_MAX bytes). Raft dissertation 5.1-5.3: the snapshot replaces the
 * log up to its index, so the newest snapshot reported durable must never be lost or silently
 * replaced by an older one.
 *
 * File: "s<group id as 16 lowercase hex digits>-<index as 20 decimal digits>.snap" in the data
 * directory, e.g. "s0000000000000007-00000000000000000042.snap". All integers little-endian:
 *
 *   header, STORE_SNAPSHOT_HEADER_SIZE (64) bytes at byte 0:
 *     offset size field
 *          0    4 magic        0x4E535152 (the bytes "RQSN")
 *          4    2 version      1
 *          6    2 reserved     0
 *          8    8 group id     must match the file name
 *         16    8 index        last included index, >= 1; must match the file name
 *         24    8 term         last included term, >= 1
 *         32    4 config size  C, 0 .. STORE_SNAPSHOT_CONFIG_MAX (4096) inclusive
 *         36    4 reserved     0
 *         40    8 data size    D, 0 .. STORE_SNAPSHOT_DATA_MAX (2^39) inclusive
 *         48   12 reserved     0
 *         60    4 header crc   CRC32C (Castagnoli) of bytes 0..59
 *   config, C bytes at byte 64: the opaque configuration blob
 *   data,   D bytes at byte 64 + C
 *   trailer, STORE_SNAPSHOT_TRAILER_SIZE (8) bytes at byte 64 + C + D:
 *          0    4 body crc     CRC32C of the C + D bytes of config and data (0 when both empty)
 *          4    4 end magic    0x45535152 (the bytes "RQSE")
 *   The file is exactly 72 + C + D bytes long.
 *
 * A file verifies when it is exactly that long, its header CRC matches, every header field is in
 * range (magic, version, reserved zero, index and term >= 1, sizes within their maxima), its
 * group and index match its name, and the trailer's magic and body CRC match. Verification reads
 * the whole file once, in STORE_SNAPSHOT_CHUNK_MAX-byte PREADs. Every single-bit flip anywhere in
 * the file is detected (CRC32C catches all of them over these lengths).
 *
 * Writing (local snapshot, or one received from the leader), one at a time per group:
 *   the content goes to "s<group>-<index>.tmp" (OPEN with RQ_DISK_CREATE, TRUNCATE 0, PWRITEs),
 *   then FSYNC, CLOSE, RENAME over the ".snap" name, FSYNC_DIR of the data directory; only then is
 *   the previous snapshot UNLINKed, followed by another FSYNC_DIR; then FINISHED is reported.
 *   So the ".snap" name only ever names a complete, synced file, and the previous snapshot stays
 *   until the new one's name is durable: a crash at any point leaves the previous snapshot
 *   loadable, and the new one either absent or complete and valid. At most one snapshot per
 *   group remains once FINISHED is reported (or once open has completed).
 *
 * Opening (at start): LIST the data directory, take the highest index among this group's ".snap"
 * names, verify that file, FSYNC it and FSYNC_DIR the data directory (after a kill -9 the bytes
 * read and the name itself may be only in the page cache: the node must not act on a snapshot a
 * later power loss could take away), then delete this group's leftover ".tmp" files and older
 * ".snap" files (UNLINK each, then FSYNC_DIR), then report OPENED.
 * If the highest ".snap" does not verify, open fails with RQ_ECORRUPT (logged with RQ_ERROR
 * naming the file and the byte offset of the region that failed) and nothing is deleted. It does
 * NOT fall back to an older snapshot: that is safe for Raft only if the log still covers the
 * entries between the two indexes, which this store cannot know; the caller decides (e.g. fetch
 * a snapshot from the leader, or halt). A crash alone never makes the newest ".snap" fail
 * verification (its content was synced before it got its name), so this takes media corruption
 * or a file someone else put there. Names that are not exactly this group's pattern are ignored.
 *
 * Errors. Sticky (the store becomes FAILED, reports the error once with fatal = 1 and refuses
 * everything after; the node must halt, see io.h): a failed FSYNC (RQ_EIO: the data's fate is
 * unknown), any failed request whose effect is not known, any error of open (including
 * RQ_ECORRUPT, and RQ_ETOOBIG when the directory listing does not fit STORE_SNAPSHOT_CHUNK_MAX
 * bytes, about 1,400 names). Not sticky (the write or receive is abandoned: the ".tmp" is closed
 * and unlinked, then FINISHED reports the error with fatal = 0 and the previous snapshot is
 * still current and intact): RQ_ENOSPC from a PWRITE, RQ_EMFILE or RQ_ENOSPC from the OPEN of the
 * ".tmp", a received chunk that fails verification (RQ_ECORRUPT), and abort (RQ_ECLOSED).
 *
 * A FAILED store may still hold one file handle: the node halts, or discards the store.
 *
 * Memory: everything lives inside the structs, which the caller embeds; nothing is allocated.
 * struct store_snapshot is about 73 KiB (one 64 KiB chunk buffer); a reader about 4.5 KiB. */
#ifndef RQ_STORE_SNAPSHOT_H
#define RQ_STORE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

enum {
    STORE_SNAPSHOT_MAGIC = 0x4E535152,         /* "RQSN" as little-endian bytes */
    STORE_SNAPSHOT_TRAILER_MAGIC = 0x45535152, /* "RQSE" */
    STORE_SNAPSHOT_VERSION = 1,
    STORE_SNAPSHOT_HEADER_SIZE = 64,
    STORE_SNAPSHOT_HEADER_CRC_OFFSET = 60, /* the header CRC covers bytes [0, 60) */
    STORE_SNAPSHOT_TRAILER_SIZE = 8,
    STORE_SNAPSHOT_CONFIG_MAX = 4096,
    STORE_SNAPSHOT_CHUNK_MAX = 64 * 1024, /* per PWRITE/PREAD, per chunk given or read */
    STORE_SNAPSHOT_PATH_SIZE = 44,        /* "s" + 16 + "-" + 20 + ".snap" + NUL */
};
/* Largest data size a header may declare: keeps every file offset far from overflow. */
#define STORE_SNAPSHOT_DATA_MAX ((uint64_t)1 << 39)

/* The header's fields (what a snapshot is, without its bytes). */
struct store_snapshot_header {
    uint64_t group_id;
    uint64_t index;
    uint64_t term;
    uint32_t config_size;
    uint64_t data_size;
};

/* ---- pure functions (no I/O; safe on any input; used by the fuzz target) ------------------- */

/* 72 + config_size + data_size. */
uint64_t store_snapshot_file_size(const struct store_snapshot_header *h);

/* Encodes h into out (STORE_SNAPSHOT_HEADER_SIZE bytes), reserved bytes zero, CRC last. */
void store_snapshot_encode_header(uint8_t *out, const struct store_snapshot_header *h);

/* Decodes a header from buf[0, len). Returns 0, RQ_ETRUNC (len < STORE_SNAPSHOT_HEADER_SIZE) or
 * RQ_ECORRUPT (CRC mismatch, or a field out of range; *bad_offset, if not NULL, gets the offset
 * of the offending field, 0 for a CRC mismatch, and *why a static description). Reads at most
 * STORE_SNAPSHOT_HEADER_SIZE bytes. Fills *h with what the bytes say even on RQ_ECORRUPT. */
int store_snapshot_decode_header(const uint8_t *buf, size_t len, struct store_snapshot_header *h,
                                 uint64_t *bad_offset, const char **why);

void store_snapshot_encode_trailer(uint8_t *out, uint32_t body_crc);
/* Returns 0 with *body_crc, RQ_ETRUNC (len < 8) or RQ_ECORRUPT (wrong end magic). */
int store_snapshot_decode_trailer(const uint8_t *buf, size_t len, uint32_t *body_crc);

/* File names: path gets STORE_SNAPSHOT_PATH_SIZE bytes. */
void store_snapshot_path(uint64_t group_id, uint64_t index, char *path);
void store_snapshot_tmp_path(uint64_t group_id, uint64_t index, char *path);

enum store_snapshot_name_kind {
    STORE_SNAPSHOT_NAME_OTHER = 0, /* not a snapshot file name (or index 0, or index > 2^64-1) */
    STORE_SNAPSHOT_NAME_SNAP = 1,
    STORE_SNAPSHOT_NAME_TMP = 2,
};
/* Parses a NUL-terminated name of exactly the pattern above (lowercase hex, 20 digits); reads
 * at most STORE_SNAPSHOT_PATH_SIZE bytes of it. */
enum store_snapshot_name_kind store_snapshot_parse_name(const char *name, uint64_t *group_id,
                                                        uint64_t *index);

/* Streaming verification of a file's bytes, fed in order from byte 0 in pieces of any size.
 * Detects each problem as soon as the bytes that show it have been fed: the header at byte 64,
 * the body CRC and end magic when the trailer is complete, bytes past the declared end at once. */
struct store_snapshot_verifier {
    uint64_t group_id;   /* expected */
    uint8_t *config_out; /* if not NULL: receives the config blob (STORE_SNAPSHOT_CONFIG_MAX) */
    uint64_t pos;        /* bytes fed so far */
    int have_header;
    struct store_snapshot_header header; /* valid once have_header */
    uint64_t body_end;                   /* 64 + C + D */
    uint64_t file_size;                  /* body_end + 8 */
    uint32_t crc;                        /* running CRC32C of the body bytes fed */
    uint8_t head[STORE_SNAPSHOT_HEADER_SIZE];
    uint8_t tail[STORE_SNAPSHOT_TRAILER_SIZE];
    int err;             /* 0 or RQ_ECORRUPT, sticky */
    uint64_t err_offset; /* the byte offset where the failing region or field starts */
    const char *err_why; /* static */
};

void store_snapshot_verifier_init(struct store_snapshot_verifier *v, uint64_t group_id,
                                  uint8_t *config_out);
/* Returns 0 or the sticky RQ_ECORRUPT. */
int store_snapshot_verifier_feed(struct store_snapshot_verifier *v, const uint8_t *data,
                                 size_t len);
/* 0 when the whole file was fed and verified; the sticky error; or RQ_ETRUNC (not sticky) when
 * fewer bytes than the file's size were fed. */
int store_snapshot_verifier_finish(const struct store_snapshot_verifier *v);

/* ---- events ------------------------------------------------------------------------------- */

enum store_snapshot_event {
    STORE_SNAPSHOT_OPENED = 1,    /* store: open ended */
    STORE_SNAPSHOT_CHUNK_DONE,    /* store: the chunk given to write/receive is written */
    STORE_SNAPSHOT_FINISHED,      /* store: a write or receive ended (installed, or not) */
    STORE_SNAPSHOT_READER_OPENED, /* reader: open ended */
    STORE_SNAPSHOT_READ_DONE,     /* reader: a read ended */
    STORE_SNAPSHOT_READER_CLOSED, /* reader: its handle is closed */
};

/* Delivered to the callback; valid only during the call. */
struct store_snapshot_result {
    enum store_snapshot_event event;
    int err;     /* 0, or the negative RQ_E* code */
    int fatal;   /* store: it is FAILED (sticky err): the node must halt */
    int found;   /* OPENED, FINISHED, READER_OPENED: meta/config describe a snapshot */
    int aborted; /* FINISHED: ended by store_snapshot_abort (err RQ_ECLOSED) */
    /* OPENED and FINISHED: the group's current snapshot afterwards (FINISHED with an error: still
     * the previous one); READER_OPENED: the reader's snapshot. */
    struct store_snapshot_header meta;
    uint64_t file_size;
    const uint8_t *config; /* meta.config_size bytes */
    /* CHUNK_DONE: where the chunk went (write: data offset; receive: file offset) and the offset
     * the next chunk must have. READ_DONE: the offset asked for (file or data offset, as asked)
     * and the bytes read into the caller's buffer. */
    uint64_t offset;
    uint64_t len;
    uint64_t next_offset;
    int verified; /* READ_DONE: the reads so far covered the whole body in order and the trailer
                     CRC matched (see store_snapshot_reader_read) */
};

/* Called only from inside *_on_disk_done, never from the calls that start work. It may call any
 * function of the same store or reader (its state is consistent at that point). */
typedef void (*store_snapshot_done_fn)(void *arg, const struct store_snapshot_result *result);

/* ---- the store: one per group ------------------------------------------------------------- */

enum store_snapshot_state {
    STORE_SNAPSHOT_NEW = 0,
    STORE_SNAPSHOT_OPENING,
    STORE_SNAPSHOT_READY,  /* opened: writes and receives accepted */
    STORE_SNAPSHOT_FAILED, /* a sticky error was reported */
};

enum store_snapshot_job {
    STORE_SNAPSHOT_JOB_NONE = 0,
    STORE_SNAPSHOT_JOB_WRITE,
    STORE_SNAPSHOT_JOB_RECEIVE,
};

/* The disk request in flight, if any (one at a time). */
enum store_snapshot_step {
    STORE_SNAPSHOT_STEP_NONE = 0,
    STORE_SNAPSHOT_STEP_OPEN_LIST,  /* open: find the newest ... */
    STORE_SNAPSHOT_STEP_OPEN_OPEN,  /* ... open it ... */
    STORE_SNAPSHOT_STEP_OPEN_READ,  /* ... verify it chunk by chunk ... */
    STORE_SNAPSHOT_STEP_OPEN_FSYNC, /* ... make what was read durable ... */
    STORE_SNAPSHOT_STEP_OPEN_CLOSE,
    STORE_SNAPSHOT_STEP_OPEN_FSYNC_DIR, /* ... and its name */
    STORE_SNAPSHOT_STEP_CLEAN_LIST,     /* open: then delete leftovers */
    STORE_SNAPSHOT_STEP_CLEAN_UNLINK,
    STORE_SNAPSHOT_STEP_CLEAN_FSYNC_DIR,
    STORE_SNAPSHOT_STEP_JOB_OPEN, /* write/receive: the .tmp ... */
    STORE_SNAPSHOT_STEP_JOB_TRUNCATE,
    STORE_SNAPSHOT_STEP_JOB_CONFIG, /* (write only) */
    STORE_SNAPSHOT_STEP_JOB_CHUNK,
    STORE_SNAPSHOT_STEP_JOB_TRAILER, /* (write only) */
    STORE_SNAPSHOT_STEP_JOB_HEADER,  /* (write only) */
    STORE_SNAPSHOT_STEP_JOB_FSYNC,
    STORE_SNAPSHOT_STEP_JOB_CLOSE,
    STORE_SNAPSHOT_STEP_JOB_RENAME,
    STORE_SNAPSHOT_STEP_JOB_FSYNC_DIR,
    STORE_SNAPSHOT_STEP_JOB_UNLINK_OLD,
    STORE_SNAPSHOT_STEP_JOB_FSYNC_DIR_OLD,
    STORE_SNAPSHOT_STEP_ABORT_CLOSE,
    STORE_SNAPSHOT_STEP_ABORT_UNLINK,
};

/* Embedded by the caller. The fields are private to snapshot.c; tests may read them. */
struct store_snapshot {
    const struct rq_io *io;
    uint64_t group_id;
    store_snapshot_done_fn done;
    void *done_arg;
    enum store_snapshot_state state;
    enum store_snapshot_step step;
    int err; /* sticky, once FAILED */
    int32_t file;
    /* the current snapshot */
    int have_current;
    struct store_snapshot_header current;
    uint8_t config[STORE_SNAPSHOT_CONFIG_MAX];
    /* open */
    uint64_t open_index;
    uint64_t open_size;
    uint64_t open_read_offset;
    uint64_t list_count;  /* names in buf */
    uint64_t list_done;   /* names scanned so far */
    size_t list_cursor;   /* byte offset of the next name in buf */
    uint32_t clean_count; /* files unlinked by this cleanup */
    /* the write or receive in progress */
    enum store_snapshot_job job;
    int job_opened;        /* the .tmp was created */
    int job_setup_done;    /* created, truncated (and config written) */
    int chunk_given;       /* buf holds a chunk not yet written */
    uint64_t chunk_offset; /* its file offset */
    size_t chunk_len;
    uint64_t chunk_reported; /* its offset as the caller sees it */
    uint64_t next_offset;    /* write: data bytes accepted; receive: file bytes accepted */
    int finish_requested;
    int abort_requested;
    int job_err; /* a non-sticky error that ends the job: clean up, then report it */
    struct store_snapshot_header job_header;
    uint32_t job_crc; /* write: running CRC32C of config and data */
    uint8_t job_config[STORE_SNAPSHOT_CONFIG_MAX];
    struct store_snapshot_verifier verifier; /* open: the file read; receive: the bytes received */
    uint8_t header_bytes[STORE_SNAPSHOT_HEADER_SIZE];
    uint8_t trailer_bytes[STORE_SNAPSHOT_TRAILER_SIZE];
    char path[STORE_SNAPSHOT_PATH_SIZE];     /* the file being opened, or the job's .snap */
    char tmp_path[STORE_SNAPSHOT_PATH_SIZE]; /* the job's .tmp */
    char old_path[STORE_SNAPSHOT_PATH_SIZE]; /* the job's predecessor, unlinked at the end */
    struct rq_disk_req req;
    uint8_t buf[STORE_SNAPSHOT_CHUNK_MAX]; /* LIST names, verification reads, a given chunk */
};

/* Prepares s for group_id. io outlives s; done (not NULL) receives every event. No disk I/O. */
void store_snapshot_init(struct store_snapshot *s, const struct rq_io *io, uint64_t group_id,
                         store_snapshot_done_fn done, void *done_arg);

/* Starts opening (state NEW, asserted). Exactly one OPENED follows: err 0 with found = 0 (no
 * snapshot) or found = 1 and the snapshot's meta and config, verified and durable; or an error
 * (sticky: RQ_ECORRUPT, RQ_ETOOBIG, RQ_EIO, ...). Requests: LIST; for the newest .snap OPEN,
 * PREAD (file size / 64 KiB, rounded up), FSYNC, CLOSE, FSYNC_DIR; then LIST, an UNLINK per
 * leftover, and FSYNC_DIR if anything was unlinked. */
void store_snapshot_open(struct store_snapshot *s);

/* Whether a snapshot is current (then *meta, if not NULL, gets it); its config is s->config. */
int store_snapshot_current(const struct store_snapshot *s, struct store_snapshot_header *meta);

/* Starts writing the local snapshot (index, term) with config (config_size bytes, copied).
 * Requires state READY or FAILED (asserted). Raft (5.3 of the dissertation): a new local
 * snapshot covers more of the log than the current one, so index > the current index, term >=
 * the current term, index >= 1 and term >= 1 are asserted. Returns 0 (exactly one FINISHED
 * follows), the sticky error, RQ_EBUSY (a write or receive is in progress) or RQ_ETOOBIG
 * (config_size > CONFIG_MAX). */
int store_snapshot_write_begin(struct store_snapshot *s, uint64_t index, uint64_t term,
                               const void *config, uint32_t config_size);

/* Gives the next len (1 .. STORE_SNAPSHOT_CHUNK_MAX) bytes of data, copied: one chunk at a time,
 * each acknowledged by CHUNK_DONE (or ended by FINISHED) before the next may be given. Returns 0,
 * RQ_EBUSY (the previous chunk is not acknowledged yet), RQ_EINVAL (len out of range, no write in
 * progress, or finish already called), RQ_ETOOBIG (the data would exceed DATA_MAX), or the sticky
 * error. */
int store_snapshot_write(struct store_snapshot *s, const void *data, size_t len);

/* Ends the data: the trailer and header are written and the snapshot is installed as described
 * above; FINISHED follows (err 0: durable and current, the previous one deleted). Returns 0,
 * RQ_EBUSY (a chunk is not acknowledged yet), RQ_EINVAL (no write in progress, or finish
 * already called) or the sticky error. */
int store_snapshot_write_finish(struct store_snapshot *s);

/* Starts receiving the snapshot (index, term) from the leader (InstallSnapshot): the bytes of its
 * file, exactly as store_snapshot_reader_read gives them on the leader. Returns 0 (exactly one
 * FINISHED follows), the sticky error, RQ_EBUSY (a write or receive is in progress), RQ_EINVAL
 * (index or term 0) or RQ_ERANGE (index <= the current snapshot's: nothing to install). */
int store_snapshot_receive_begin(struct store_snapshot *s, uint64_t index, uint64_t term);

/* Gives len (1 .. CHUNK_MAX) bytes of the file at file offset `offset`, copied. Chunks are taken
 * strictly in order: a chunk whose offset is not the next expected one (a duplicate, a stale
 * retransmission, or one from the future) is rejected with RQ_ERANGE and changes nothing: the
 * caller tells the leader the expected offset (store_snapshot_receive_next_offset), from which
 * the leader resumes. So duplicates are harmless and never rewrite anything. One chunk at a time,
 * as for write (RQ_EBUSY). The bytes are verified as they arrive (the header once its 64 bytes
 * are in: group, index and term must be the ones given to receive_begin; the CRCs at the end): a
 * chunk that fails returns RQ_ECORRUPT and ends the receive (FINISHED with RQ_ECORRUPT follows,
 * the .tmp removed). Other returns: RQ_EINVAL (len out of range, no receive in progress or finish
 * already called), the sticky error. */
int store_snapshot_receive(struct store_snapshot *s, uint64_t offset, const void *data, size_t len);

/* The file offset the next received chunk must have. */
uint64_t store_snapshot_receive_next_offset(const struct store_snapshot *s);

/* Ends a receive whose every byte arrived and verified, and installs it as a local write does;
 * FINISHED follows. Returns 0, RQ_ETRUNC (bytes are missing: nothing changes, the receive goes
 * on), RQ_EBUSY, RQ_EINVAL or the sticky error, as for write_finish. */
int store_snapshot_receive_finish(struct store_snapshot *s);

/* Abandons the write or receive in progress (allowed until its finish was accepted): no more
 * CHUNK_DONE; the .tmp is closed and unlinked; then FINISHED with err RQ_ECLOSED and aborted = 1.
 * Returns 0, RQ_EINVAL (nothing to abort, or finish already accepted) or the sticky error. */
int store_snapshot_abort(struct store_snapshot *s);

/* To be called by the node's on_disk_done for every completed request: returns 1 if req was this
 * store's (handled), else 0 and does nothing. */
int store_snapshot_on_disk_done(struct store_snapshot *s, struct rq_disk_req *req);

/* ---- the reader: reads one snapshot file at offsets --------------------------------------- */

/* For sending a snapshot to a lagging follower (file offsets; a transfer resumes at any offset,
 * also with a new reader) and for restoring the state machine (data offsets). Open a reader only
 * on the index the store reported (OPENED or FINISHED): that file is verified and durable. A
 * reader keeps its file handle until closed, so it may go on reading a snapshot the store has
 * meanwhile replaced and unlinked (POSIX keeps an open file's content). Several readers may be
 * open at once (each holds one handle). One read at a time per reader. */

enum store_snapshot_reader_state {
    STORE_SNAPSHOT_READER_NEW = 0, /* initialised or closed: holds no handle */
    STORE_SNAPSHOT_READER_OPENING,
    STORE_SNAPSHOT_READER_READY,
    STORE_SNAPSHOT_READER_FAILED, /* a read failed: only close is accepted */
    STORE_SNAPSHOT_READER_CLOSING,
};

enum store_snapshot_reader_step {
    STORE_SNAPSHOT_READER_STEP_NONE = 0,
    STORE_SNAPSHOT_READER_STEP_OPEN,
    STORE_SNAPSHOT_READER_STEP_HEAD, /* header and config */
    STORE_SNAPSHOT_READER_STEP_TAIL, /* trailer */
    STORE_SNAPSHOT_READER_STEP_READ,
    STORE_SNAPSHOT_READER_STEP_CLOSE, /* asked for, or after a failed open */
};

struct store_snapshot_reader {
    const struct rq_io *io;
    uint64_t group_id;
    store_snapshot_done_fn done;
    void *done_arg;
    enum store_snapshot_reader_state state;
    enum store_snapshot_reader_step step;
    int err; /* of a failed open (reported after its CLOSE) or read (sticky) */
    int32_t file;
    uint64_t index;
    uint64_t file_size;
    struct store_snapshot_header header;
    uint32_t body_crc; /* from the trailer */
    uint32_t crc;      /* running CRC32C of body bytes [64, crc_next) read so far */
    uint64_t crc_next;
    int verified;
    uint64_t read_offset; /* as asked (file or data offset) */
    uint64_t read_file_offset;
    int read_is_data;
    struct rq_disk_req req;
    uint8_t head[STORE_SNAPSHOT_HEADER_SIZE + STORE_SNAPSHOT_CONFIG_MAX];
    uint8_t tail[STORE_SNAPSHOT_TRAILER_SIZE];
    char path[STORE_SNAPSHOT_PATH_SIZE];
};

void store_snapshot_reader_init(struct store_snapshot_reader *r, const struct rq_io *io,
                                uint64_t group_id, store_snapshot_done_fn done, void *done_arg);

/* Opens the snapshot (group, index): OPEN, PREAD of the header and config, PREAD of the trailer.
 * Requires state NEW (asserted). READER_OPENED follows: err 0 with meta, file_size and config;
 * or RQ_ENOENT (no such snapshot: it was replaced), RQ_ECORRUPT (header, size or trailer
 * magic wrong; logged with file and offset) or a disk error, after which the reader holds no
 * handle (state NEW again). The data's CRC is not checked here (see read). */
void store_snapshot_reader_open(struct store_snapshot_reader *r, uint64_t index);

/* Reads len (1 .. CHUNK_MAX) bytes of the file from file offset `offset` (< file_size) into buf,
 * which the caller owns and must not touch until READ_DONE; len is clipped at the end of the
 * file. read_data does the same at a data offset (< data size), clipped at the end of the data.
 * Returns 0 (READ_DONE follows), RQ_EBUSY (a read in flight), RQ_ERANGE, RQ_EINVAL, or the
 * reader's error when it FAILED; asserts state READY or FAILED.
 * Reads re-check the body CRC on the way when they cover the body in order (each read starting
 * at or before the first body byte not yet covered, and reaching past it; the config is covered
 * at open): the read that covers the last body byte reports verified = 1, or fails with
 * RQ_ECORRUPT (logged with file and offset; the reader FAILED) — so a restore reading the whole
 * data in order learns at its last chunk whether what it read is what was written. */
int store_snapshot_reader_read(struct store_snapshot_reader *r, uint64_t offset, void *buf,
                               size_t len);
int store_snapshot_reader_read_data(struct store_snapshot_reader *r, uint64_t data_offset,
                                    void *buf, size_t len);

/* Closes the handle (state READY or FAILED, no read in flight): returns 0 and READER_CLOSED
 * follows, after which the reader is NEW again; RQ_EBUSY (a read in flight) or RQ_EBADF (no
 * handle held). */
int store_snapshot_reader_close(struct store_snapshot_reader *r);

/* As store_snapshot_on_disk_done, for a reader. */
int store_snapshot_reader_on_disk_done(struct store_snapshot_reader *r, struct rq_disk_req *req);

#endif
