/* hardstate.c — two CRC'd sector slots, written alternately; see hardstate.h for the format and
 * the contract. Every disk request goes through io->disk with the one request the store owns,
 * and the next step starts from store_hardstate_on_disk_done. */
#include "store/hardstate.h"

#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"

_Static_assert(STORE_HARDSTATE_RECORD_SIZE <= STORE_HARDSTATE_SLOT_SIZE, "a record fits a slot");
_Static_assert(STORE_HARDSTATE_CRC_OFFSET + 4 == STORE_HARDSTATE_RECORD_SIZE, "crc ends record");
_Static_assert(STORE_HARDSTATE_SLOT_SIZE == 512, "one slot = one sector, written atomically-ish");
_Static_assert(STORE_HARDSTATE_FILE_SIZE == 1024, "two slots");
_Static_assert((int)STORE_HARDSTATE_PATH_SIZE <= (int)RQ_DISK_PATH_MAX, "paths fit a disk request");

/* ---- slots (pure) ---------------------------------------------------------------------------- */

void store_hardstate_encode_slot(uint8_t *slot_bytes, const struct store_hardstate_slot *slot) {
    memset(slot_bytes, 0, STORE_HARDSTATE_SLOT_SIZE);
    rq_put_u32(slot_bytes + 0, (uint32_t)STORE_HARDSTATE_MAGIC);
    rq_put_u16(slot_bytes + 4, STORE_HARDSTATE_VERSION);
    rq_put_u16(slot_bytes + 6, 0);
    rq_put_u64(slot_bytes + 8, slot->group_id);
    rq_put_u64(slot_bytes + 16, slot->sequence);
    rq_put_u64(slot_bytes + 24, slot->term);
    rq_put_u32(slot_bytes + 32, slot->vote);
    uint32_t crc = rq_crc32c(0, slot_bytes, STORE_HARDSTATE_CRC_OFFSET);
    rq_put_u32(slot_bytes + STORE_HARDSTATE_CRC_OFFSET, crc);
}

enum store_hardstate_slot_status store_hardstate_decode_slot(const uint8_t *slot_bytes,
                                                             uint64_t group_id,
                                                             struct store_hardstate_slot *slot) {
    slot->group_id = rq_get_u64(slot_bytes + 8);
    slot->sequence = rq_get_u64(slot_bytes + 16);
    slot->term = rq_get_u64(slot_bytes + 24);
    slot->vote = rq_get_u32(slot_bytes + 32);
    uint32_t crc = rq_crc32c(0, slot_bytes, STORE_HARDSTATE_CRC_OFFSET);
    if (crc != rq_get_u32(slot_bytes + STORE_HARDSTATE_CRC_OFFSET)) {
        return STORE_HARDSTATE_SLOT_INVALID;
    }
    if (rq_get_u32(slot_bytes + 0) != (uint32_t)STORE_HARDSTATE_MAGIC)
        return STORE_HARDSTATE_SLOT_FOREIGN;
    if (rq_get_u16(slot_bytes + 4) != STORE_HARDSTATE_VERSION) return STORE_HARDSTATE_SLOT_FOREIGN;
    if (rq_get_u16(slot_bytes + 6) != 0) return STORE_HARDSTATE_SLOT_FOREIGN;
    if (slot->group_id != group_id) return STORE_HARDSTATE_SLOT_FOREIGN;
    if (slot->sequence == 0) return STORE_HARDSTATE_SLOT_FOREIGN;
    return STORE_HARDSTATE_SLOT_VALID;
}

void store_hardstate_path(uint64_t group_id, char *path) {
    int n =
        snprintf(path, STORE_HARDSTATE_PATH_SIZE, "hs-%016llx.dat", (unsigned long long)group_id);
    RQ_ASSERT(n == STORE_HARDSTATE_PATH_SIZE - 1);
}

/* Whether `next` may follow `prev` as Raft hard state: the term never decreases; within a term
 * the vote only goes from none to a node (Raft paper 5.2: one vote per term, first come). */
static int raft_transition_ok(uint64_t prev_term, uint32_t prev_vote, uint64_t next_term,
                              uint32_t next_vote) {
    if (next_term < prev_term) return 0;
    if (next_term > prev_term) return 1;
    return prev_vote == 0 || next_vote == prev_vote;
}

/* ---- plumbing -------------------------------------------------------------------------------- */

static void submit(struct store_hardstate *hs, enum store_hardstate_step step, enum rq_disk_op op) {
    RQ_ASSERT(hs->step == STORE_HARDSTATE_STEP_NONE);
    RQ_ASSERT(step != STORE_HARDSTATE_STEP_NONE);
    struct rq_disk_req *req = &hs->req;
    memset(req, 0, sizeof *req);
    req->op = op;
    req->file = hs->file;
    req->user = hs->group_id;
    hs->step = step;
    /* The caller fills the op's own fields, then submit_go hands the request to the environment. */
}

static void submit_go(struct store_hardstate *hs) { hs->io->disk(hs->io->env, &hs->req); }

static void submit_path(struct store_hardstate *hs, enum store_hardstate_step step,
                        enum rq_disk_op op, const char *path, uint32_t flags) {
    submit(hs, step, op);
    memcpy(hs->req.path, path, strlen(path) + 1);
    hs->req.flags = flags;
    submit_go(hs);
}

static void submit_file(struct store_hardstate *hs, enum store_hardstate_step step,
                        enum rq_disk_op op, uint64_t offset, size_t len) {
    RQ_ASSERT(hs->file >= 0);
    RQ_ASSERT(len <= sizeof hs->buf);
    submit(hs, step, op);
    hs->req.offset = offset;
    hs->req.buf = len ? hs->buf : NULL;
    hs->req.len = len;
    submit_go(hs);
}

static const char *step_name(enum store_hardstate_step step) {
    switch (step) {
    case STORE_HARDSTATE_STEP_LOAD_OPEN: return "open";
    case STORE_HARDSTATE_STEP_LOAD_READ: return "read";
    case STORE_HARDSTATE_STEP_LOAD_CLOSE: return "close";
    case STORE_HARDSTATE_STEP_LOAD_FSYNC: return "fsync";
    case STORE_HARDSTATE_STEP_LOAD_FSYNC_DIR: return "fsync of the data directory for";
    case STORE_HARDSTATE_STEP_LOAD_REPAIR_WRITE: return "repair write of";
    case STORE_HARDSTATE_STEP_LOAD_REPAIR_FSYNC: return "repair fsync of";
    case STORE_HARDSTATE_STEP_CREATE_OPEN: return "create";
    case STORE_HARDSTATE_STEP_CREATE_TRUNCATE: return "truncate";
    case STORE_HARDSTATE_STEP_CREATE_WRITE: return "write";
    case STORE_HARDSTATE_STEP_CREATE_FSYNC: return "fsync";
    case STORE_HARDSTATE_STEP_CREATE_RENAME: return "rename";
    case STORE_HARDSTATE_STEP_CREATE_FSYNC_DIR: return "fsync of the data directory for";
    case STORE_HARDSTATE_STEP_SAVE_WRITE: return "write";
    case STORE_HARDSTATE_STEP_SAVE_FSYNC: return "fsync";
    case STORE_HARDSTATE_STEP_SAVE_WRITE_OTHER: return "write";
    case STORE_HARDSTATE_STEP_SAVE_FSYNC_OTHER: return "fsync";
    default: return "?";
    }
}

/* The store cannot go on: report err once, covering every outstanding save (or the load). */
static void fail(struct store_hardstate *hs, int err) {
    RQ_ASSERT(err < 0);
    RQ_ASSERT(hs->state == STORE_HARDSTATE_LOADING || hs->state == STORE_HARDSTATE_READY);
    struct store_hardstate_result res = {0};
    res.err = err;
    res.term = hs->durable_term;
    res.vote = hs->durable_vote;
    if (hs->state == STORE_HARDSTATE_LOADING) {
        res.event = STORE_HARDSTATE_LOADED;
        res.term = 0; /* nothing was loaded: what may have been read is not to be trusted */
        res.vote = 0;
    } else {
        RQ_ASSERT(hs->in_flight);
        res.event = STORE_HARDSTATE_SAVED;
        res.save_first = hs->flight.ticket_first;
        res.save_last = hs->pending ? hs->next.ticket_last : hs->flight.ticket_last;
    }
    hs->state = STORE_HARDSTATE_FAILED;
    hs->err = err;
    hs->in_flight = 0;
    hs->pending = 0;
    hs->done(hs->done_arg, &res);
}

/* A request failed (result < 0 where success was required). */
static void fail_request(struct store_hardstate *hs, enum store_hardstate_step step,
                         int64_t result) {
    int err = result < 0 && result >= RQ_ERROR_MIN ? (int)result : RQ_EIO;
    int on_tmp =
        step >= STORE_HARDSTATE_STEP_CREATE_OPEN && step <= STORE_HARDSTATE_STEP_CREATE_RENAME;
    const char *path = on_tmp ? hs->tmp_path : hs->path;
    RQ_ERROR("hardstate: %s %s failed: %s -> store failed, node must fail-stop", step_name(step),
             path, rq_strerror(err));
    fail(hs, err);
}

static void fail_corrupt(struct store_hardstate *hs, uint64_t offset, const char *why) {
    RQ_ERROR("hardstate: %s is corrupt at byte offset %llu: %s -> refusing to load", hs->path,
             (unsigned long long)offset, why);
    fail(hs, RQ_ECORRUPT);
}

/* ---- init and load --------------------------------------------------------------------------- */

void store_hardstate_init(struct store_hardstate *hs, const struct rq_io *io, uint64_t group_id,
                          store_hardstate_done_fn done, void *done_arg) {
    RQ_ASSERT(io != NULL);
    RQ_ASSERT(done != NULL);
    memset(hs, 0, sizeof *hs);
    hs->io = io;
    hs->group_id = group_id;
    hs->done = done;
    hs->done_arg = done_arg;
    hs->state = STORE_HARDSTATE_NEW;
    hs->file = -1;
    store_hardstate_path(group_id, hs->path);
    memcpy(hs->tmp_path, hs->path, sizeof hs->path);
    memcpy(hs->tmp_path + STORE_HARDSTATE_PATH_SIZE - 5, ".tmp", 5);
}

void store_hardstate_load(struct store_hardstate *hs) {
    RQ_ASSERT(hs->state == STORE_HARDSTATE_NEW);
    hs->state = STORE_HARDSTATE_LOADING;
    submit_path(hs, STORE_HARDSTATE_STEP_LOAD_OPEN, RQ_DISK_OPEN, hs->path, 0);
}

static void load_finish(struct store_hardstate *hs, int slot_ignored) {
    RQ_ASSERT(hs->state == STORE_HARDSTATE_LOADING);
    hs->state = STORE_HARDSTATE_READY;
    hs->latest_term = hs->durable_term;
    hs->latest_vote = hs->durable_vote;
    RQ_INFO("hardstate: %s loaded: term %llu vote %u (sequence %llu)", hs->path,
            (unsigned long long)hs->durable_term, (unsigned)hs->durable_vote,
            (unsigned long long)hs->durable_sequence);
    struct store_hardstate_result res = {0};
    res.event = STORE_HARDSTATE_LOADED;
    res.term = hs->durable_term;
    res.vote = hs->durable_vote;
    res.slot_ignored = slot_ignored;
    hs->done(hs->done_arg, &res);
}

/* No usable file: a fresh group. The first save creates the file. */
static void load_fresh(struct store_hardstate *hs, const char *why) {
    RQ_INFO("hardstate: %s %s -> fresh state, term 0 vote 0", hs->path, why);
    hs->file = -1;
    hs->file_valid = 0;
    hs->durable_sequence = 0;
    hs->durable_slot = STORE_HARDSTATE_SLOT_COUNT - 1; /* so the first slot written is slot 0 */
    load_finish(hs, 0);
}

static void on_load_open(struct store_hardstate *hs, const struct rq_disk_req *req) {
    if (req->result == RQ_ENOENT) {
        load_fresh(hs, "does not exist");
        return;
    }
    if (req->result < 0) {
        fail_request(hs, STORE_HARDSTATE_STEP_LOAD_OPEN, req->result);
        return;
    }
    hs->file = (int32_t)req->result;
    if (req->size == 0) {
        /* Close it: the first save replaces this name by renaming a complete file over it. */
        submit_file(hs, STORE_HARDSTATE_STEP_LOAD_CLOSE, RQ_DISK_CLOSE, 0, 0);
        return;
    }
    if (req->size != STORE_HARDSTATE_FILE_SIZE) {
        uint64_t at = req->size < STORE_HARDSTATE_FILE_SIZE ? req->size : STORE_HARDSTATE_FILE_SIZE;
        fail_corrupt(hs, at, "file size is not 0 or 1024 bytes");
        return;
    }
    submit_file(hs, STORE_HARDSTATE_STEP_LOAD_READ, RQ_DISK_PREAD, 0, STORE_HARDSTATE_FILE_SIZE);
}

static void on_load_close(struct store_hardstate *hs, const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(hs, STORE_HARDSTATE_STEP_LOAD_CLOSE, req->result);
        return;
    }
    load_fresh(hs, "is empty");
}

/* Checks a pair of valid slots; returns NULL or why they cannot both be ours. */
static const char *slot_pair_problem(const struct store_hardstate_slot *newer,
                                     const struct store_hardstate_slot *older) {
    if (newer->sequence == older->sequence) return "both slots have the same sequence";
    if (newer->sequence - older->sequence != 1) return "slot sequences are not consecutive";
    if (!raft_transition_ok(older->term, older->vote, newer->term, newer->vote)) {
        return "newer slot does not follow from the older one (term or vote went back)";
    }
    return NULL;
}

static void on_load_read(struct store_hardstate *hs, const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(hs, STORE_HARDSTATE_STEP_LOAD_READ, req->result);
        return;
    }
    if (req->result != STORE_HARDSTATE_FILE_SIZE) {
        fail_corrupt(hs, (uint64_t)req->result, "short read");
        return;
    }
    struct store_hardstate_slot slots[STORE_HARDSTATE_SLOT_COUNT];
    enum store_hardstate_slot_status status[STORE_HARDSTATE_SLOT_COUNT];
    uint32_t valid_count = 0;
    for (uint32_t i = 0; i < STORE_HARDSTATE_SLOT_COUNT; i++) {
        status[i] = store_hardstate_decode_slot(hs->buf + i * STORE_HARDSTATE_SLOT_SIZE,
                                                hs->group_id, &slots[i]);
        if (status[i] == STORE_HARDSTATE_SLOT_FOREIGN) {
            fail_corrupt(hs, (uint64_t)i * STORE_HARDSTATE_SLOT_SIZE,
                         "checksum matches but magic, version, group id or sequence is wrong");
            return;
        }
        if (status[i] == STORE_HARDSTATE_SLOT_VALID) valid_count++;
    }
    if (valid_count == 0) {
        fail_corrupt(hs, 0, "no slot has a valid checksum (slots at offsets 0 and 512)");
        return;
    }
    uint32_t pick = status[0] == STORE_HARDSTATE_SLOT_VALID ? 0 : 1;
    if (valid_count == 2) {
        pick = slots[0].sequence > slots[1].sequence ? 0 : 1;
        const char *problem = slot_pair_problem(&slots[pick], &slots[1 - pick]);
        if (problem != NULL) {
            fail_corrupt(hs, (uint64_t)pick * STORE_HARDSTATE_SLOT_SIZE, problem);
            return;
        }
    } else {
        RQ_WARN("hardstate: %s: slot at byte offset %u has a bad checksum (torn or rotted) -> "
                "using the other slot, sequence %llu",
                hs->path, (unsigned)((1 - pick) * STORE_HARDSTATE_SLOT_SIZE),
                (unsigned long long)slots[pick].sequence);
    }
    hs->file_valid = 1;
    hs->load_slot_ignored = valid_count == 1;
    hs->load_repair = valid_count == 1 || slots[0].term != slots[1].term || slots[0].vote != slots[1].vote;
    hs->durable_slot = pick;
    hs->durable_sequence = slots[pick].sequence;
    hs->durable_term = slots[pick].term;
    hs->durable_vote = slots[pick].vote;
    /* Only now is it the durable state: the page cache may hold what a crash would undo. */
    submit_file(hs, STORE_HARDSTATE_STEP_LOAD_FSYNC, RQ_DISK_FSYNC, 0, 0);
}

static void on_load_sync(struct store_hardstate *hs, enum store_hardstate_step step,
                         const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(hs, step, req->result);
        return;
    }
    if (step == STORE_HARDSTATE_STEP_LOAD_FSYNC) {
        submit_path(hs, STORE_HARDSTATE_STEP_LOAD_FSYNC_DIR, RQ_DISK_FSYNC_DIR, "", 0);
        return;
    }
    if (step == STORE_HARDSTATE_STEP_LOAD_FSYNC_DIR && hs->load_repair) {
        /* Both slots must hold the loaded state before anyone relies on it. */
        struct store_hardstate_slot slot = {
            .group_id = hs->group_id,
            .sequence = hs->durable_sequence + 1,
            .term = hs->durable_term,
            .vote = hs->durable_vote,
        };
        store_hardstate_encode_slot(hs->buf, &slot);
        submit_file(hs, STORE_HARDSTATE_STEP_LOAD_REPAIR_WRITE, RQ_DISK_PWRITE,
                    (uint64_t)(1 - hs->durable_slot) * STORE_HARDSTATE_SLOT_SIZE, STORE_HARDSTATE_SLOT_SIZE);
        return;
    }
    if (step == STORE_HARDSTATE_STEP_LOAD_REPAIR_WRITE) {
        submit_file(hs, STORE_HARDSTATE_STEP_LOAD_REPAIR_FSYNC, RQ_DISK_FSYNC, 0, 0);
        return;
    }
    if (step == STORE_HARDSTATE_STEP_LOAD_REPAIR_FSYNC) {
        RQ_INFO("hardstate: %s: repaired slot %u with the loaded state", hs->path, (unsigned)(1 - hs->durable_slot));
        hs->durable_slot = 1 - hs->durable_slot;
        hs->durable_sequence++;
    }
    load_finish(hs, hs->load_slot_ignored);
}

/* ---- save ------------------------------------------------------------------------------------ */

static void fill_slot(struct store_hardstate *hs, uint8_t *at, uint64_t sequence) {
    struct store_hardstate_slot slot = {
        .group_id = hs->group_id,
        .sequence = sequence,
        .term = hs->flight.term,
        .vote = hs->flight.vote,
    };
    store_hardstate_encode_slot(at, &slot);
}

/* Starts writing hs->flight: in place when the file is valid, else by creating the file. */
static void save_start(struct store_hardstate *hs) {
    RQ_ASSERT(hs->state == STORE_HARDSTATE_READY);
    RQ_ASSERT(hs->in_flight);
    RQ_ASSERT(hs->step == STORE_HARDSTATE_STEP_NONE);
    RQ_DEBUG("hardstate: %s: writing term %llu vote %u (saves %llu..%llu)%s", hs->path,
             (unsigned long long)hs->flight.term, (unsigned)hs->flight.vote,
             (unsigned long long)hs->flight.ticket_first,
             (unsigned long long)hs->flight.ticket_last,
             hs->file_valid ? "" : " by creating the file");
    if (!hs->file_valid) {
        submit_path(hs, STORE_HARDSTATE_STEP_CREATE_OPEN, RQ_DISK_OPEN, hs->tmp_path,
                    RQ_DISK_CREATE);
        return;
    }
    /* Never overwrite the slot holding the newest durable state. */
    uint32_t slot = 1 - hs->durable_slot;
    fill_slot(hs, hs->buf, hs->durable_sequence + 1);
    submit_file(hs, STORE_HARDSTATE_STEP_SAVE_WRITE, RQ_DISK_PWRITE,
                (uint64_t)slot * STORE_HARDSTATE_SLOT_SIZE, STORE_HARDSTATE_SLOT_SIZE);
}

int store_hardstate_save(struct store_hardstate *hs, uint64_t term, uint32_t vote,
                         uint64_t *ticket) {
    RQ_ASSERT(hs->state == STORE_HARDSTATE_READY || hs->state == STORE_HARDSTATE_FAILED);
    if (hs->state == STORE_HARDSTATE_FAILED) return hs->err;
    /* Raft: currentTerm only grows; votedFor is set at most once per term. */
    RQ_ASSERT(term >= hs->latest_term);
    if (term == hs->latest_term) RQ_ASSERT(hs->latest_vote == 0 || vote == hs->latest_vote);
    hs->latest_term = term;
    hs->latest_vote = vote;
    hs->tickets_issued++;
    if (ticket != NULL) *ticket = hs->tickets_issued;
    if (hs->in_flight) {
        /* Only the newest state matters: it replaces any save still waiting. */
        if (!hs->pending) hs->next.ticket_first = hs->tickets_issued;
        hs->pending = 1;
        hs->next.term = term;
        hs->next.vote = vote;
        hs->next.ticket_last = hs->tickets_issued;
        return 0;
    }
    RQ_ASSERT(!hs->pending);
    hs->in_flight = 1;
    hs->flight.term = term;
    hs->flight.vote = vote;
    hs->flight.ticket_first = hs->tickets_issued;
    hs->flight.ticket_last = hs->tickets_issued;
    save_start(hs);
    return 0;
}

int store_hardstate_busy(const struct store_hardstate *hs) { return hs->in_flight || hs->pending; }

/* hs->flight is durable in slot `slot` with `sequence`: record it, start the pending save if
 * any, then report (so a save from inside the callback queues behind the one just started). */
static void save_finish(struct store_hardstate *hs, uint32_t slot, uint64_t sequence) {
    RQ_ASSERT(hs->in_flight);
    RQ_ASSERT(sequence > hs->durable_sequence);
    hs->file_valid = 1;
    hs->durable_slot = slot;
    hs->durable_sequence = sequence;
    hs->durable_term = hs->flight.term;
    hs->durable_vote = hs->flight.vote;
    RQ_INFO("hardstate: %s: term %llu vote %u durable (slot %u, sequence %llu)", hs->path,
            (unsigned long long)hs->durable_term, (unsigned)hs->durable_vote, (unsigned)slot,
            (unsigned long long)sequence);
    struct store_hardstate_result res = {0};
    res.event = STORE_HARDSTATE_SAVED;
    res.term = hs->durable_term;
    res.vote = hs->durable_vote;
    res.save_first = hs->flight.ticket_first;
    res.save_last = hs->flight.ticket_last;
    hs->in_flight = 0;
    if (hs->pending) {
        RQ_ASSERT(hs->next.ticket_first == hs->flight.ticket_last + 1);
        hs->pending = 0;
        hs->in_flight = 1;
        hs->flight = hs->next;
        save_start(hs);
    }
    hs->done(hs->done_arg, &res);
}

/* First save, step by step: .tmp created, emptied, written whole, synced, renamed, dir synced. */
static void on_create_step(struct store_hardstate *hs, enum store_hardstate_step step,
                           const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(hs, step, req->result);
        return;
    }
    switch (step) {
    case STORE_HARDSTATE_STEP_CREATE_OPEN:
        hs->file = (int32_t)req->result;
        submit_file(hs, STORE_HARDSTATE_STEP_CREATE_TRUNCATE, RQ_DISK_TRUNCATE, 0, 0);
        break;
    case STORE_HARDSTATE_STEP_CREATE_TRUNCATE:
        /* Both slots hold the first state, so one bad slot still leaves it readable. */
        fill_slot(hs, hs->buf, 1);
        fill_slot(hs, hs->buf + STORE_HARDSTATE_SLOT_SIZE, 2);
        submit_file(hs, STORE_HARDSTATE_STEP_CREATE_WRITE, RQ_DISK_PWRITE, 0,
                    STORE_HARDSTATE_FILE_SIZE);
        break;
    case STORE_HARDSTATE_STEP_CREATE_WRITE:
        submit_file(hs, STORE_HARDSTATE_STEP_CREATE_FSYNC, RQ_DISK_FSYNC, 0, 0);
        break;
    case STORE_HARDSTATE_STEP_CREATE_FSYNC:
        submit(hs, STORE_HARDSTATE_STEP_CREATE_RENAME, RQ_DISK_RENAME);
        memcpy(hs->req.path, hs->tmp_path, sizeof hs->tmp_path);
        memcpy(hs->req.path2, hs->path, sizeof hs->path);
        submit_go(hs);
        break;
    case STORE_HARDSTATE_STEP_CREATE_RENAME:
        /* The handle stays valid across the rename: it now is the .dat file. */
        submit_path(hs, STORE_HARDSTATE_STEP_CREATE_FSYNC_DIR, RQ_DISK_FSYNC_DIR, "", 0);
        break;
    case STORE_HARDSTATE_STEP_CREATE_FSYNC_DIR: save_finish(hs, 1, 2); break;
    default: RQ_UNREACHABLE();
    }
}

static void on_save_step(struct store_hardstate *hs, enum store_hardstate_step step,
                         const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(hs, step, req->result);
        return;
    }
    switch (step) {
    case STORE_HARDSTATE_STEP_SAVE_WRITE:
        submit_file(hs, STORE_HARDSTATE_STEP_SAVE_FSYNC, RQ_DISK_FSYNC, 0, 0);
        break;
    case STORE_HARDSTATE_STEP_SAVE_FSYNC:
        /* The new state is durable in one slot; now overwrite the old state in the other, so a
         * later rot of either slot can never bring back a state older than this save. */
        fill_slot(hs, hs->buf, hs->durable_sequence + 2);
        submit_file(hs, STORE_HARDSTATE_STEP_SAVE_WRITE_OTHER, RQ_DISK_PWRITE,
                    (uint64_t)hs->durable_slot * STORE_HARDSTATE_SLOT_SIZE, STORE_HARDSTATE_SLOT_SIZE);
        break;
    case STORE_HARDSTATE_STEP_SAVE_WRITE_OTHER:
        submit_file(hs, STORE_HARDSTATE_STEP_SAVE_FSYNC_OTHER, RQ_DISK_FSYNC, 0, 0);
        break;
    case STORE_HARDSTATE_STEP_SAVE_FSYNC_OTHER:
        save_finish(hs, hs->durable_slot, hs->durable_sequence + 2);
        break;
    default: RQ_UNREACHABLE();
    }
}

int store_hardstate_on_disk_done(struct store_hardstate *hs, struct rq_disk_req *req) {
    if (req != &hs->req) return 0;
    enum store_hardstate_step step = hs->step;
    RQ_ASSERT(step != STORE_HARDSTATE_STEP_NONE);
    hs->step = STORE_HARDSTATE_STEP_NONE;
    switch (step) {
    case STORE_HARDSTATE_STEP_LOAD_OPEN: on_load_open(hs, req); break;
    case STORE_HARDSTATE_STEP_LOAD_READ: on_load_read(hs, req); break;
    case STORE_HARDSTATE_STEP_LOAD_CLOSE: on_load_close(hs, req); break;
    case STORE_HARDSTATE_STEP_LOAD_FSYNC:
    case STORE_HARDSTATE_STEP_LOAD_FSYNC_DIR:
    case STORE_HARDSTATE_STEP_LOAD_REPAIR_WRITE:
    case STORE_HARDSTATE_STEP_LOAD_REPAIR_FSYNC: on_load_sync(hs, step, req); break;
    case STORE_HARDSTATE_STEP_CREATE_OPEN:
    case STORE_HARDSTATE_STEP_CREATE_TRUNCATE:
    case STORE_HARDSTATE_STEP_CREATE_WRITE:
    case STORE_HARDSTATE_STEP_CREATE_FSYNC:
    case STORE_HARDSTATE_STEP_CREATE_RENAME:
    case STORE_HARDSTATE_STEP_CREATE_FSYNC_DIR: on_create_step(hs, step, req); break;
    case STORE_HARDSTATE_STEP_SAVE_WRITE:
    case STORE_HARDSTATE_STEP_SAVE_FSYNC:
    case STORE_HARDSTATE_STEP_SAVE_WRITE_OTHER:
    case STORE_HARDSTATE_STEP_SAVE_FSYNC_OTHER: on_save_step(hs, step, req); break;
    default: RQ_UNREACHABLE();
    }
    return 1;
}
