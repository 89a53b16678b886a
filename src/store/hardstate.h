/* hardstate.h — the durable Raft "hard state" of one group: current term and vote.
 *
 * Raft (paper, figure 2) requires currentTerm and votedFor to be on stable storage before the node
 * answers an RPC. This store keeps them in one small file per group, written so that a crash at any
 * point leaves either the old or the new value, never a mix, and reports a save only once an
 * fdatasync made it durable.
 *
 * File: "hs-<group id as 16 lowercase hex digits>.dat" in the data directory, exactly
 * STORE_HARDSTATE_FILE_SIZE (1024) bytes: two slots, each one 512-byte sector.
 *
 *   slot 0 at byte 0, slot 1 at byte 512; inside a slot (all integers little-endian):
 *     offset size field
 *          0    4 magic       0x53485152 (the bytes "RQHS")
 *          4    2 version     1
 *          6    2 reserved    0
 *          8    8 group id    must equal the group being loaded
 *         16    8 sequence    >= 1; the slot with the higher valid sequence is the current state
 *         24    8 term
 *         32    4 vote        node id voted for in `term`, 0 = none
 *         36    4 crc32c      CRC32C (Castagnoli) of bytes 0..35 of the slot
 *     40..511     padding     written as zeros, not read
 *
 * A slot is valid when its CRC matches. A valid slot whose magic, version, reserved field, group
 * id or sequence (0) is wrong is not torn but foreign: the file is reported corrupt. When both
 * slots are valid their sequences differ by exactly 1, and the newer one's (term, vote) must
 * follow from the older one's by the Raft rules below, else the file is reported corrupt.
 *
 * Writing (one save at a time, never two requests in flight):
 *   - Steady state: the new state goes into the slot NOT holding the current state, with
 *     sequence = current + 1 (one 512-byte PWRITE, one sector), then FSYNC; then into the other
 *     slot with sequence = current + 2, then FSYNC; only then is the save reported. A crash can
 *     only damage the slot being written; the other holds either the new state or the last one
 *     reported durable. After a reported save BOTH slots hold it, so latent corruption of either
 *     slot never rolls the state back below a reported save (for Raft: never a lost vote). Two
 *     fdatasyncs per save are cheap: hard state changes only with terms and votes.
 *   - First save (no file, or an empty one): the full 1024-byte file is written to
 *     "hs-<group>.tmp" (OPEN with RQ_DISK_CREATE, TRUNCATE 0, PWRITE, FSYNC), renamed over the
 *     ".dat" name, and the data directory is FSYNC_DIR'd; only then is the save reported. Both
 *     slots of that first image hold the first state (slot 0 sequence 1, slot 1 sequence 2), so a
 *     single bad slot still leaves it readable. The ".dat" name therefore only ever names a file
 *     whose full content was durable before the name appeared, on any POSIX file system (where an
 *     unsynced create may survive a crash with torn contents). A leftover ".tmp" from a crash is
 *     ignored and overwritten by the next first save.
 *
 * Loading:
 *   - no ".dat" file, or an empty one (size 0)      -> term 0, vote 0 (a fresh node);
 *   - size other than 0 or 1024, no valid slot, a foreign slot or an inconsistent pair
 *                                                   -> RQ_ECORRUPT, logged with RQ_ERROR naming the
 *                                                      file and the byte offset;
 *   - one valid slot (the other torn or rotted)      -> that slot's state, with slot_ignored = 1
 *                                                      (logged with RQ_WARN);
 *   - two valid slots                                -> the one with the higher sequence.
 *   A successful load then FSYNCs the file and FSYNC_DIRs the data directory before reporting,
 *   so the state it reports is durable (see store_hardstate_load). When the two slots do not both
 *   hold the loaded state (a crash between a save's two writes), the other slot is rewritten with
 *   it (sequence + 1, FSYNC) before the load is reported: otherwise a later rot of the slot that
 *   holds it would bring back the older state, which a node may have reported durable past.
 *   Whichever single slot is torn or rotted, the other holds a state at least as new as the last
 *   one reported durable (see the steady-state rule above), so slot_ignored is informational.
 *
 * Raft invariants, asserted (RQ_ASSERT) against the newest state requested so far (durable, in
 * flight or pending): the term never decreases; within one term the vote may only go from 0 to a
 * node, and never changes after that (Raft paper, 5.2 and 5.4.1: at most one vote per term).
 *
 * Errors are sticky: after any failed disk request (notably RQ_EIO from an FSYNC, whose data's
 * fate is unknown — io.h) the store enters a failed state, reports the error once through the
 * callback, and refuses further saves; the caller must fail-stop (io->halt).
 *
 * Memory: everything (the disk request, its 1024-byte buffer, the paths) lives inside struct
 * store_hardstate, which the caller embeds; the store never allocates. */
#ifndef RQ_STORE_HARDSTATE_H
#define RQ_STORE_HARDSTATE_H

#include <stdint.h>

#include "io/io.h"

enum {
    STORE_HARDSTATE_MAGIC = 0x53485152, /* "RQHS" as little-endian bytes */
    STORE_HARDSTATE_VERSION = 1,
    STORE_HARDSTATE_RECORD_SIZE = 40, /* the meaningful bytes at the start of each slot */
    STORE_HARDSTATE_CRC_OFFSET = 36,  /* the CRC covers bytes [0, CRC_OFFSET) */
    STORE_HARDSTATE_SLOT_SIZE = RQ_DISK_SECTOR_SIZE,
    STORE_HARDSTATE_SLOT_COUNT = 2,
    STORE_HARDSTATE_FILE_SIZE = STORE_HARDSTATE_SLOT_SIZE * STORE_HARDSTATE_SLOT_COUNT,
    STORE_HARDSTATE_PATH_SIZE = 24, /* "hs-" + 16 hex digits + ".dat" + NUL */
};

/* What a slot holds once decoded. */
struct store_hardstate_slot {
    uint64_t group_id;
    uint64_t sequence;
    uint64_t term;
    uint32_t vote;
};

enum store_hardstate_slot_status {
    STORE_HARDSTATE_SLOT_VALID = 0,
    STORE_HARDSTATE_SLOT_INVALID = 1, /* CRC mismatch: never written, torn, or rotted */
    STORE_HARDSTATE_SLOT_FOREIGN = 2, /* CRC matches but not one of ours: wrong magic, version,
                                         reserved field, group id, or sequence 0 */
};

/* Encodes one slot into slot_bytes (STORE_HARDSTATE_SLOT_SIZE bytes, padding zeroed). Pure. */
void store_hardstate_encode_slot(uint8_t *slot_bytes, const struct store_hardstate_slot *slot);

/* Decodes one slot (STORE_HARDSTATE_SLOT_SIZE bytes) expected to belong to group_id. Fills *slot
 * (with whatever the bytes say, even when not valid) and returns its status. Pure. */
enum store_hardstate_slot_status store_hardstate_decode_slot(const uint8_t *slot_bytes,
                                                             uint64_t group_id,
                                                             struct store_hardstate_slot *slot);

/* Writes the file name of group_id ("hs-" + 16 lowercase hex digits + ".dat") into path
 * (STORE_HARDSTATE_PATH_SIZE). */
void store_hardstate_path(uint64_t group_id, char *path);

enum store_hardstate_event {
    STORE_HARDSTATE_LOADED = 1,
    STORE_HARDSTATE_SAVED = 2,
};

/* Delivered to the callback; valid only during the call. */
struct store_hardstate_result {
    enum store_hardstate_event event;
    int err;          /* 0, or the negative RQ_E* code that failed the load or save */
    uint64_t term;    /* LOADED: the loaded state (0 on error). SAVED: the state now durable */
    uint32_t vote;    /*   (on error: the last state reported durable, or the loaded one) */
    int slot_ignored; /* LOADED: 1 when one slot was invalid and ignored (see the caveat above) */
    uint64_t save_first; /* SAVED: the save tickets this completion covers, save_first..save_last */
    uint64_t save_last;
};

/* Called only from inside store_hardstate_on_disk_done, never from load or save. It may call
 * store_hardstate_save (the store is consistent at that point). */
typedef void (*store_hardstate_done_fn)(void *arg, const struct store_hardstate_result *result);

enum store_hardstate_state {
    STORE_HARDSTATE_NEW = 0, /* initialised, load not called yet */
    STORE_HARDSTATE_LOADING,
    STORE_HARDSTATE_READY,  /* loaded: saves accepted */
    STORE_HARDSTATE_FAILED, /* an error was reported; only the sticky error remains */
};

/* The disk request in flight, if any (one at a time). */
enum store_hardstate_step {
    STORE_HARDSTATE_STEP_NONE = 0,
    STORE_HARDSTATE_STEP_LOAD_OPEN,
    STORE_HARDSTATE_STEP_LOAD_READ,
    STORE_HARDSTATE_STEP_LOAD_FSYNC,     /* what was read may be only in the page cache ... */
    STORE_HARDSTATE_STEP_LOAD_FSYNC_DIR, /* ... and so may the file's name */
    STORE_HARDSTATE_STEP_LOAD_CLOSE,     /* closing an empty .dat found at load */
    STORE_HARDSTATE_STEP_LOAD_REPAIR_WRITE, /* the slots differ: the other gets the loaded state, */
    STORE_HARDSTATE_STEP_LOAD_REPAIR_FSYNC, /*   durably, before the load is reported */
    STORE_HARDSTATE_STEP_CREATE_OPEN,    /* first save: the .tmp file ... */
    STORE_HARDSTATE_STEP_CREATE_TRUNCATE,
    STORE_HARDSTATE_STEP_CREATE_WRITE,
    STORE_HARDSTATE_STEP_CREATE_FSYNC,
    STORE_HARDSTATE_STEP_CREATE_RENAME,    /* ... renamed to .dat ... */
    STORE_HARDSTATE_STEP_CREATE_FSYNC_DIR, /* ... and the name made durable */
    STORE_HARDSTATE_STEP_SAVE_WRITE,       /* steady state: the slot not holding the newest ... */
    STORE_HARDSTATE_STEP_SAVE_FSYNC,       /* ... and its fdatasync, ... */
    STORE_HARDSTATE_STEP_SAVE_WRITE_OTHER, /* ... then the other slot, the same state ... */
    STORE_HARDSTATE_STEP_SAVE_FSYNC_OTHER, /* ... and its fdatasync: both slots hold it */
};

/* A save's value and the tickets it stands for. */
struct store_hardstate_value {
    uint64_t term;
    uint32_t vote;
    uint64_t ticket_first;
    uint64_t ticket_last;
};

/* Embedded by the caller. The fields are private to hardstate.c; tests may read them. */
struct store_hardstate {
    const struct rq_io *io;
    uint64_t group_id;
    store_hardstate_done_fn done;
    void *done_arg;
    enum store_hardstate_state state;
    enum store_hardstate_step step;
    int err;                   /* sticky, once FAILED */
    int32_t file;              /* handle of the .dat file (or of the .tmp while creating); -1 */
    int file_valid;            /* the .dat file exists with a valid slot: save in place */
    int load_slot_ignored;     /* the load ignored an invalid slot */
    int load_repair;           /* the slots did not both hold the loaded state */
    uint64_t durable_sequence; /* sequence of the current (newest valid) slot; 0 = none */
    uint32_t durable_slot;     /* index of that slot */
    uint64_t durable_term;
    uint32_t durable_vote;
    int in_flight; /* a save is being written */
    struct store_hardstate_value flight;
    int pending; /* a save waits for the one in flight (at most one: the newest) */
    struct store_hardstate_value next;
    uint64_t tickets_issued; /* save calls accepted so far */
    uint64_t latest_term;    /* the newest state requested (for the Raft asserts) */
    uint32_t latest_vote;
    struct rq_disk_req req;
    uint8_t buf[STORE_HARDSTATE_FILE_SIZE];
    char path[STORE_HARDSTATE_PATH_SIZE];
    char tmp_path[STORE_HARDSTATE_PATH_SIZE];
};

/* Prepares hs for group_id. io outlives hs; done (not NULL) receives every completion with
 * done_arg. Touches no disk. */
void store_hardstate_init(struct store_hardstate *hs, const struct rq_io *io, uint64_t group_id,
                          store_hardstate_done_fn done, void *done_arg);

/* Starts loading (asynchronous; requires state NEW, asserted). Exactly one LOADED completion
 * follows: err 0 with (term, vote) — (0, 0) for a fresh group — or an error: RQ_ECORRUPT (file
 * not trustworthy, see above; the node must not serve this group), or any error a disk request
 * returned (RQ_EIO, RQ_EMFILE, ...). After an error the store is FAILED.
 * Requests: OPEN (no create); for a 1024-byte file PREAD, FSYNC, FSYNC_DIR; for an empty one
 * CLOSE. The FSYNC and FSYNC_DIR matter after a process restart without power loss: what was read
 * may still be only in the page cache (a save in flight when the process died, or a rename whose
 * FSYNC_DIR never ran), and the node must not act on a state a later power loss could undo. */
void store_hardstate_load(struct store_hardstate *hs);

/* Asks for (term, vote) to be made durable. Requires state READY or FAILED (asserted: never before
 * LOADED). Asserts the Raft invariants above against the newest state requested so far.
 * Returns 0 when accepted, with *ticket (if not NULL) set to this save's number (1, 2, ... in call
 * order), or the sticky error when the store has FAILED (nothing is written).
 *
 * At most one save is written at a time. A save called while one is in flight becomes the pending
 * save, replacing any earlier pending one (only the newest state matters): the pending save starts
 * when the one in flight completes. Completions (SAVED) come in ticket order, one per disk write:
 * each covers save_first..save_last, which follow on from the previous completion's, and reports
 * the state of its last ticket — a save replaced while pending completes together with the one
 * that replaced it, reporting that newer state. SAVED with err 0 means the state is durable. SAVED
 * with an error covers every outstanding ticket (in flight and pending), none of which may be
 * assumed durable or not durable: the caller must fail-stop. */
int store_hardstate_save(struct store_hardstate *hs, uint64_t term, uint32_t vote,
                         uint64_t *ticket);

/* To be called by the node's on_disk_done for every completed request: returns 1 if req was this
 * store's (handled: it may have submitted the next request and called the callback), else 0 and
 * does nothing. */
int store_hardstate_on_disk_done(struct store_hardstate *hs, struct rq_disk_req *req);

/* Whether a save is in flight or pending. */
int store_hardstate_busy(const struct store_hardstate *hs);

#endif
