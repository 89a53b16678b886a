/* segment.c — the per-group segment store; see segment.h for the files, the contract and the
 * crash-safety argument, and block.h for the block format.
 *
 * How it runs: every operation builds a short PLAN of disk requests (open this, write that, fsync,
 * ...) and executes it one request at a time through the single struct rq_disk_req the store
 * owns; when the plan is done, the operation's PHASE decides what comes next (commit to the
 * in-memory index and report, or plan the next step: recovery reads a segment chunk by chunk).
 * The in-memory index changes only when a plan has completed, i.e. once what it describes is
 * durable. */
#include "store/segment.h"

#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"

_Static_assert((int)STORE_SEGMENT_CUT_HEADER_SIZE == (int)STORE_BLOCK_HEADER_SIZE,
               "the intent header has the block header's size (see segment.h)");
_Static_assert((int)STORE_SEGMENT_PATH_SIZE <= (int)RQ_DISK_PATH_MAX, "paths fit a disk request");
_Static_assert(STORE_SEGMENT_SIZE_MAX <= UINT32_MAX, "positions in a segment fit u32");
_Static_assert(STORE_SEGMENT_BUF_SIZE_MAX >= STORE_BLOCK_SIZE_MAX + STORE_SEGMENT_CUT_HEADER_SIZE,
               "the largest block fits the largest buffer");
_Static_assert(STORE_SEGMENT_BUF_SIZE_MAX <= UINT32_MAX, "buffer offsets fit u32");
_Static_assert(STORE_SEGMENT_PLAN_MAX >= STORE_SEGMENT_FILES_MAX + 16, "a truncation fits a plan");
_Static_assert(sizeof(struct store_segment_block) == 48, "index entries stay small");

enum name_kind { NAME_NONE = 0, NAME_SEG, NAME_CUT, NAME_DIR, NAME_ROOT };

enum step_flag {
    STEP_CREATE = 1,       /* OPEN with RQ_DISK_CREATE */
    STEP_EXPECT_EMPTY = 2, /* OPEN: the file must be new (size 0), else RQ_EEXIST */
    STEP_CHECKED = 4,      /* a failure goes to the phase handler (last step of its plan) */
};

enum phase {
    PHASE_NONE = 0,
    PHASE_OPEN_LIST,
    PHASE_OPEN_MKDIR,
    PHASE_OPEN_CUT_OPEN,
    PHASE_OPEN_CUT_READ,
    PHASE_OPEN_CUT_DONE,
    PHASE_OPEN_SEG_OPEN,
    PHASE_OPEN_SEG_READ,
    PHASE_OPEN_SEG_DONE,
    PHASE_OPEN_SYNC,
    PHASE_APPEND,
    PHASE_READ,
    PHASE_FIND,
    PHASE_TRUNCATE_READ,
    PHASE_TRUNCATE,
    PHASE_DROP,
};

enum intent_status { INTENT_OK = 0, INTENT_TORN, INTENT_BAD };

struct intent {
    uint64_t index;
    uint64_t cut_segment;
    uint64_t cut_position;
    uint32_t tail_size;
};

/* ---- names ----------------------------------------------------------------------------------- */

void store_segment_dir(uint64_t group_id, char *dir) {
    int n = snprintf(dir, STORE_SEGMENT_DIR_SIZE, "g%016llx", (unsigned long long)group_id);
    RQ_ASSERT(n == STORE_SEGMENT_DIR_SIZE - 1);
}

static void file_path(uint64_t group_id, uint64_t index, const char *suffix, char *path) {
    int n = snprintf(path, STORE_SEGMENT_PATH_SIZE, "g%016llx/%020llu.%s",
                     (unsigned long long)group_id, (unsigned long long)index, suffix);
    RQ_ASSERT(n == STORE_SEGMENT_PATH_SIZE - 1);
}

void store_segment_path(uint64_t group_id, uint64_t first_index, char *path) {
    file_path(group_id, first_index, "seg", path);
}

static void name_path(const struct store_segment *s, uint8_t kind, uint64_t index, char *path) {
    switch (kind) {
    case NAME_SEG: file_path(s->group_id, index, "seg", path); break;
    case NAME_CUT: file_path(s->group_id, index, "cut", path); break;
    case NAME_DIR: store_segment_dir(s->group_id, path); break;
    default: path[0] = '\0'; break;
    }
}

/* "<20 digits>.seg" or "<20 digits>.cut" with a value in 1 .. UINT64_MAX; else NAME_NONE. */
static enum name_kind parse_name(const char *name, size_t len, uint64_t *index) {
    if (len != 24) return NAME_NONE;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') return NAME_NONE;
        uint64_t digit = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - digit) / 10) return NAME_NONE;
        v = v * 10 + digit;
    }
    if (v == 0) return NAME_NONE;
    *index = v;
    if (memcmp(name + 20, ".seg", 4) == 0) return NAME_SEG;
    if (memcmp(name + 20, ".cut", 4) == 0) return NAME_CUT;
    return NAME_NONE;
}

/* ---- pure scan of a segment image -------------------------------------------------------------
 */

enum store_segment_scan_status store_segment_scan(const uint8_t *buf, size_t len,
                                                  struct store_segment_scan *scan,
                                                  store_segment_scan_fn visit, void *arg) {
    scan->valid_size = 0;
    scan->block_count = 0;
    scan->problem = NULL;
    size_t pos = 0;
    /* Each turn consumes a whole valid block (>= 80 bytes) or returns: at most len / 80 turns. */
    while (pos < len) {
        struct store_block_header h;
        uint64_t messages = 0;
        const char *problem = NULL;
        enum store_block_status st = store_block_check(buf + pos, len - pos, scan->block_size_limit,
                                                       &h, &messages, &problem);
        scan->problem = problem;
        if (st == STORE_BLOCK_SHORT) return STORE_SEGMENT_SCAN_SHORT;
        if (st != STORE_BLOCK_OK) return STORE_SEGMENT_SCAN_INVALID;
        if (scan->next_index != 0 && h.first_index != scan->next_index) {
            scan->problem = "block does not continue the index sequence (or match the file name)";
            return STORE_SEGMENT_SCAN_INVALID;
        }
        if (scan->have_offset && h.first_offset != scan->next_offset) {
            scan->problem = "block's first message offset does not continue the one before";
            return STORE_SEGMENT_SCAN_INVALID;
        }
        if (h.term < scan->last_term) {
            scan->problem = "block term is below the term before it";
            return STORE_SEGMENT_SCAN_INVALID;
        }
        scan->problem = NULL;
        if (visit != NULL && visit(arg, pos, buf + pos, &h, messages) != 0) {
            return STORE_SEGMENT_SCAN_STOPPED;
        }
        scan->next_index = h.last_index + 1;
        scan->have_offset = 1;
        scan->next_offset = h.first_offset + messages;
        scan->last_term = h.term;
        pos += store_block_size(&h);
        scan->valid_size = pos;
        scan->block_count++;
    }
    return STORE_SEGMENT_SCAN_END;
}

/* ---- the intent record ------------------------------------------------------------------------
 */

static uint32_t intent_header_crc(const uint8_t *p) { return rq_crc32c(0, p + 16, 48); }

static uint32_t intent_crc(const uint8_t *p, uint32_t tail_size) {
    uint32_t crc = rq_crc32c(0, p + 12, STORE_SEGMENT_CUT_HEADER_SIZE - 12);
    return rq_crc32c(crc, p + STORE_SEGMENT_CUT_HEADER_SIZE, tail_size);
}

/* Writes the intent header at p; the tail (tail_size bytes) must already be at p + 64. */
static void intent_encode(uint8_t *p, uint64_t group_id, const struct intent *in) {
    memset(p, 0, STORE_SEGMENT_CUT_HEADER_SIZE);
    rq_put_u32(p, (uint32_t)STORE_SEGMENT_CUT_MAGIC);
    rq_put_u16(p + 4, STORE_SEGMENT_CUT_VERSION);
    rq_put_u64(p + 16, group_id);
    rq_put_u64(p + 24, in->index);
    rq_put_u64(p + 32, in->cut_segment);
    rq_put_u64(p + 40, in->cut_position);
    rq_put_u32(p + 48, in->tail_size);
    rq_put_u32(p + 12, intent_header_crc(p));
    rq_put_u32(p + 8, intent_crc(p, in->tail_size));
}

static int all_zero(const uint8_t *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) return 0;
    }
    return 1;
}

/* Decides what an intent file of `size` bytes (all in p) is: torn (never made durable: nothing
 * was applied), bad (complete but wrong: corruption), or ok. */
static enum intent_status intent_decode(const uint8_t *p, uint64_t size, uint64_t group_id,
                                        uint64_t name_index, struct intent *in,
                                        const char **problem) {
    *problem = NULL;
    if (size < STORE_SEGMENT_CUT_HEADER_SIZE || all_zero(p, size)) return INTENT_TORN;
    if (rq_get_u32(p) != (uint32_t)STORE_SEGMENT_CUT_MAGIC || rq_get_u16(p + 4) != 1 ||
        rq_get_u16(p + 6) != 0 || rq_get_u32(p + 12) != intent_header_crc(p)) {
        *problem = "intent header is not valid (magic, version, flags or header checksum)";
        return INTENT_BAD;
    }
    in->index = rq_get_u64(p + 24);
    in->cut_segment = rq_get_u64(p + 32);
    in->cut_position = rq_get_u64(p + 40);
    in->tail_size = rq_get_u32(p + 48);
    if (rq_get_u64(p + 16) != group_id || in->index != name_index) {
        *problem = "intent belongs to another group or file name";
        return INTENT_BAD;
    }
    if (in->tail_size > STORE_BLOCK_SIZE_MAX) {
        *problem = "intent tail larger than a block";
        return INTENT_BAD;
    }
    uint64_t full = (uint64_t)STORE_SEGMENT_CUT_HEADER_SIZE + in->tail_size;
    if (size < full) return INTENT_TORN;
    if (size > full) {
        *problem = "intent longer than its header says";
        return INTENT_BAD;
    }
    if (rq_get_u32(p + 8) != intent_crc(p, in->tail_size) || !all_zero(p + 52, 12)) {
        *problem = "intent checksum mismatch";
        return INTENT_BAD;
    }
    if (in->cut_segment >= in->index || in->cut_position > STORE_SEGMENT_SIZE_MAX ||
        (in->cut_segment == 0 && (in->cut_position != 0 || in->tail_size != 0)) ||
        (in->cut_segment != 0 && in->cut_position == 0 && in->tail_size == 0)) {
        *problem = "intent fields are inconsistent";
        return INTENT_BAD;
    }
    if (in->tail_size > 0) {
        struct store_block_header h;
        uint64_t messages;
        const char *why;
        if (store_block_check(p + STORE_SEGMENT_CUT_HEADER_SIZE, in->tail_size,
                              STORE_BLOCK_SIZE_MAX, &h, &messages, &why) != STORE_BLOCK_OK ||
            store_block_size(&h) != in->tail_size || h.last_index + 1 != in->index) {
            *problem = "intent tail is not the block ending just before the truncate index";
            return INTENT_BAD;
        }
    }
    return INTENT_OK;
}

/* ---- the in-memory index ----------------------------------------------------------------------
 */

uint64_t store_segment_first_index(const struct store_segment *s) {
    return s->file_count > 0 ? s->files[0].first_index : s->next_index;
}

uint64_t store_segment_last_index(const struct store_segment *s) { return s->next_index - 1; }

int store_segment_busy(const struct store_segment *s) { return s->busy; }

uint64_t store_segment_size(const struct store_segment *s) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->file_count; i++)
        total += s->files[i].size;
    return total;
}

/* The last index held by file n. */
static uint64_t file_last_index(const struct store_segment *s, uint32_t n) {
    RQ_ASSERT(n < s->file_count);
    return n + 1 < s->file_count ? s->files[n + 1].first_index - 1 : s->next_index - 1;
}

static uint64_t block_last_index(const struct store_segment *s, uint32_t b) {
    RQ_ASSERT(b < s->block_count);
    return b + 1 < s->block_count ? s->blocks[b + 1].first_index - 1 : s->next_index - 1;
}

static uint64_t block_end_offset(const struct store_segment *s, uint32_t b) {
    return b + 1 < s->block_count ? s->blocks[b + 1].first_offset : s->next_offset;
}

/* The block holding index (which must be in the store). */
static uint32_t block_find_index(const struct store_segment *s, uint64_t index) {
    RQ_ASSERT(s->block_count > 0);
    RQ_ASSERT(index >= s->blocks[0].first_index && index < s->next_index);
    uint32_t lo = 0, hi = s->block_count; /* the answer is in [lo, hi) */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->blocks[mid].first_index <= index)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The file holding block b. */
static uint32_t file_of_block(const struct store_segment *s, uint32_t b) {
    uint32_t lo = 0, hi = s->file_count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->files[mid].block_first <= b)
            lo = mid;
        else
            hi = mid;
    }
    RQ_ASSERT(b >= s->files[lo].block_first &&
              b < s->files[lo].block_first + s->files[lo].block_count);
    return lo;
}

int store_segment_term(const struct store_segment *s, uint64_t index, uint64_t *term) {
    if (s->block_count == 0 || index < s->blocks[0].first_index || index >= s->next_index) {
        return RQ_ERANGE;
    }
    *term = s->blocks[block_find_index(s, index)].term;
    return 0;
}

/* Running timestamp maxima from block `from` on, and every file's newest timestamp. */
/* Recomputes the running timestamps from block `from` on, and the timestamp of every file holding a
 * block at or above it. When the blocks from `from` on were only appended (nothing removed), a
 * file's old maximum still holds for its older blocks, so only the new ones are looked at: an
 * append costs its own blocks, not the whole segment's. */
static void index_refresh(struct store_segment *s, uint32_t from, int appended_only) {
    uint64_t running = from > 0 ? s->blocks[from - 1].timestamp_running : 0;
    for (uint32_t b = from; b < s->block_count; b++) {
        if (s->blocks[b].timestamp > running) running = s->blocks[b].timestamp;
        s->blocks[b].timestamp_running = running;
    }
    for (uint32_t n = 0; n < s->file_count; n++) {
        struct store_segment_file *f = &s->files[n];
        uint32_t end = f->block_first + f->block_count;
        if (from > 0 && end <= from) continue;  /* unchanged */
        uint32_t start = f->block_first;
        if (appended_only && from > start) start = from;
        uint64_t ts = start > f->block_first ? f->timestamp : 0;
        for (uint32_t b = start; b < end; b++)
            if (s->blocks[b].timestamp > ts) ts = s->blocks[b].timestamp;
        f->timestamp = ts;
    }
}

/* Adds a block at the end of the index, in file n (the file being scanned). */
static void index_push(struct store_segment *s, uint32_t n, uint64_t position,
                       const struct store_block_header *h, uint64_t message_count) {
    RQ_ASSERT(s->block_count < STORE_SEGMENT_BLOCKS_MAX);
    RQ_ASSERT(n < s->file_count);
    struct store_segment_file *f = &s->files[n];
    RQ_ASSERT(f->block_first + f->block_count == s->block_count);
    RQ_ASSERT(position == f->size);
    struct store_segment_block *b = &s->blocks[s->block_count];
    uint64_t running = s->block_count > 0 ? s->blocks[s->block_count - 1].timestamp_running : 0;
    b->first_index = h->first_index;
    b->first_offset = h->first_offset;
    b->term = h->term;
    b->timestamp = h->timestamp;
    b->timestamp_running = h->timestamp > running ? h->timestamp : running;
    b->position = (uint32_t)position;
    b->size = store_block_size(h);
    s->block_count++;
    f->block_count++;
    f->size = position + b->size;
    if (h->timestamp > f->timestamp) f->timestamp = h->timestamp;
    s->next_index = h->last_index + 1;
    s->next_offset = h->first_offset + message_count;
    s->last_term = h->term;
}

/* ---- the plan executor ------------------------------------------------------------------------
 */

static const char *op_name(uint8_t op) {
    switch (op) {
    case RQ_DISK_OPEN: return "open";
    case RQ_DISK_CLOSE: return "close";
    case RQ_DISK_PWRITE: return "pwrite";
    case RQ_DISK_PREAD: return "pread";
    case RQ_DISK_FSYNC: return "fsync";
    case RQ_DISK_TRUNCATE: return "truncate";
    case RQ_DISK_RENAME: return "rename";
    case RQ_DISK_UNLINK: return "unlink";
    case RQ_DISK_LIST: return "list";
    case RQ_DISK_FSYNC_DIR: return "fsync_dir";
    case RQ_DISK_MKDIR: return "mkdir";
    default: return "?";
    }
}

static void plan_reset(struct store_segment *s, enum phase phase) {
    s->plan_count = 0;
    s->plan_at = 0;
    s->phase = phase;
}

static struct store_segment_step *plan_add(struct store_segment *s, enum rq_disk_op op,
                                           uint8_t kind, uint64_t index) {
    RQ_ASSERT(s->plan_count < STORE_SEGMENT_PLAN_MAX);
    struct store_segment_step *st = &s->plan[s->plan_count++];
    memset(st, 0, sizeof *st);
    st->op = (uint8_t)op;
    st->name_kind = kind;
    st->name_index = index;
    return st;
}

/* A request on the file open in slot. */
static void plan_io(struct store_segment *s, enum rq_disk_op op, uint8_t slot, uint64_t offset,
                    uint32_t buf_at, uint32_t len) {
    RQ_ASSERT(s->slot_kind[slot] != NAME_NONE);
    struct store_segment_step *st = plan_add(s, op, NAME_NONE, 0);
    st->slot = slot;
    st->offset = offset;
    st->buf_at = buf_at;
    st->len = len;
    if (op == RQ_DISK_PREAD || op == RQ_DISK_PWRITE) {
        RQ_ASSERT((uint64_t)buf_at + len <= s->buf_size);
    }
}

static struct store_segment_step *plan_path(struct store_segment *s, enum rq_disk_op op,
                                            uint8_t kind, uint64_t index) {
    return plan_add(s, op, kind, index);
}

static void plan_open(struct store_segment *s, uint8_t slot, uint8_t kind, uint64_t index,
                      uint8_t flags) {
    RQ_ASSERT(s->slot_kind[slot] == NAME_NONE);
    struct store_segment_step *st = plan_add(s, RQ_DISK_OPEN, kind, index);
    st->slot = slot;
    st->flags = flags;
    s->slot_kind[slot] = kind;
    s->slot_index[slot] = index;
}

static void plan_close(struct store_segment *s, uint8_t slot) {
    if (s->slot_kind[slot] == NAME_NONE) return;
    plan_io(s, RQ_DISK_CLOSE, slot, 0, 0, 0);
    s->slot_kind[slot] = NAME_NONE;
    s->slot_index[slot] = 0;
}

/* A slot holding file (kind, index): one already planned open, or `prefer` (re)opened. */
static uint8_t plan_file(struct store_segment *s, uint8_t kind, uint64_t index, uint8_t prefer) {
    for (uint8_t slot = 0; slot < 2; slot++) {
        if (s->slot_kind[slot] == kind && s->slot_index[slot] == index) return slot;
    }
    plan_close(s, prefer);
    plan_open(s, prefer, kind, index, 0);
    return prefer;
}

/* Closes whatever slot holds (kind, index), before it is unlinked. */
static void plan_forget(struct store_segment *s, uint8_t kind, uint64_t index) {
    for (uint8_t slot = 0; slot < 2; slot++) {
        if (s->slot_kind[slot] == kind && s->slot_index[slot] == index) plan_close(s, slot);
    }
}

static int op_uses_file(uint8_t op) {
    return op == RQ_DISK_CLOSE || op == RQ_DISK_PWRITE || op == RQ_DISK_PREAD ||
           op == RQ_DISK_FSYNC || op == RQ_DISK_TRUNCATE;
}

static void plan_submit(struct store_segment *s) {
    RQ_ASSERT(s->plan_at < s->plan_count);
    const struct store_segment_step *st = &s->plan[s->plan_at];
    if (st->flags & STEP_CHECKED) RQ_ASSERT(s->plan_at + 1 == s->plan_count);
    struct rq_disk_req *req = &s->req;
    memset(req, 0, sizeof *req);
    req->op = (enum rq_disk_op)st->op;
    req->flags = (st->flags & STEP_CREATE) ? RQ_DISK_CREATE : 0;
    req->file = -1;
    if (op_uses_file(st->op)) {
        RQ_ASSERT(s->slot_file[st->slot] >= 0);
        req->file = s->slot_file[st->slot];
    }
    req->offset = st->offset;
    if (st->op == RQ_DISK_LIST) {
        req->buf = s->buf;
        req->len = s->buf_size;
    } else if (st->len > 0) {
        req->buf = s->buf + st->buf_at;
        req->len = st->len;
    }
    name_path(s, st->name_kind, st->name_index, req->path);
    req->user = s->group_id;
    s->stats.requests++;
    if (st->op == RQ_DISK_PREAD) s->stats.reads++;
    if (st->op == RQ_DISK_PWRITE) {
        s->stats.writes++;
        s->stats.bytes_written += st->len;
    }
    if (st->op == RQ_DISK_FSYNC || st->op == RQ_DISK_FSYNC_DIR) s->stats.fsyncs++;
    s->io->disk(s->io->env, req);
}

static void plan_run(struct store_segment *s) {
    RQ_ASSERT(s->busy);
    RQ_ASSERT(s->plan_count > 0);
    s->plan_at = 0;
    plan_submit(s);
}

/* ---- completions and failures -----------------------------------------------------------------
 */

static void result_fill(const struct store_segment *s, struct store_segment_result *res) {
    res->first_index = store_segment_first_index(s);
    res->last_index = store_segment_last_index(s);
    res->next_offset = s->next_offset;
    res->segment_count = s->file_count;
}

/* Ends the current operation and reports res (event and bounds filled here). */
static void report(struct store_segment *s, struct store_segment_result *res) {
    RQ_ASSERT(s->busy);
    res->event = s->op_event;
    result_fill(s, res);
    s->busy = 0;
    s->phase = PHASE_NONE;
    s->done(s->done_arg, res);
}

static void fail(struct store_segment *s, int err) {
    RQ_ASSERT(err < 0);
    s->state = STORE_SEGMENT_FAILED;
    s->err = err;
    struct store_segment_result res = {0};
    res.err = err;
    report(s, &res);
}

static void fail_request(struct store_segment *s, const struct store_segment_step *st,
                         int64_t result) {
    int err = result < 0 && result >= RQ_ERROR_MIN ? (int)result : RQ_EIO;
    char path[RQ_DISK_PATH_MAX];
    if (st->name_kind != NAME_NONE)
        name_path(s, st->name_kind, st->name_index, path);
    else
        name_path(s, s->slot_kind[st->slot], s->slot_index[st->slot], path);
    RQ_ERROR("segment: %s %s failed: %s -> group %016llx store failed", op_name(st->op),
             path[0] ? path : "\"\"", rq_strerror(err), (unsigned long long)s->group_id);
    fail(s, err);
}

static void fail_corrupt(struct store_segment *s, uint8_t kind, uint64_t index, uint64_t position,
                         const char *problem) {
    char path[RQ_DISK_PATH_MAX];
    name_path(s, kind, index, path);
    RQ_ERROR("segment: %s is corrupt at byte %llu: %s -> group %016llx failed", path,
             (unsigned long long)position, problem, (unsigned long long)s->group_id);
    fail(s, RQ_ECORRUPT);
}

static void fail_too_big(struct store_segment *s, uint8_t kind, uint64_t index, uint64_t position,
                         const char *problem) {
    char path[RQ_DISK_PATH_MAX];
    name_path(s, kind, index, path);
    RQ_ERROR("segment: %s at byte %llu: %s -> group %016llx failed", path,
             (unsigned long long)position, problem, (unsigned long long)s->group_id);
    fail(s, RQ_ETOOBIG);
}

static void phase_done(struct store_segment *s);

int store_segment_on_disk_done(struct store_segment *s, struct rq_disk_req *req) {
    if (req != &s->req) return 0;
    RQ_ASSERT(s->busy);
    RQ_ASSERT(s->plan_at < s->plan_count);
    const struct store_segment_step *st = &s->plan[s->plan_at];
    s->last_result = req->result;
    if (req->result < 0) {
        if (!(st->flags & STEP_CHECKED)) {
            fail_request(s, st, req->result);
            return 1;
        }
        s->plan_at = s->plan_count;
        phase_done(s);
        return 1;
    }
    if (st->op == RQ_DISK_OPEN) {
        s->slot_file[st->slot] = (int32_t)req->result;
        s->opened_size = req->size;
        if ((st->flags & STEP_EXPECT_EMPTY) && req->size != 0) {
            fail_request(s, st, RQ_EEXIST);
            return 1;
        }
    } else if (st->op == RQ_DISK_CLOSE) {
        s->slot_file[st->slot] = -1;
    } else if (st->op == RQ_DISK_PREAD) {
        s->read_result = req->result;
    }
    s->plan_at++;
    if (s->plan_at < s->plan_count)
        plan_submit(s);
    else
        phase_done(s);
    return 1;
}

/* ---- init and open ----------------------------------------------------------------------------
 */

void store_segment_init(struct store_segment *s, const struct rq_io *io, uint64_t group_id,
                        const struct store_segment_config *config, uint8_t *buf, size_t buf_size,
                        store_segment_done_fn done, void *done_arg) {
    RQ_ASSERT(io != NULL);
    RQ_ASSERT(done != NULL);
    RQ_ASSERT(buf != NULL);
    RQ_ASSERT(config->block_size_max >= STORE_BLOCK_SIZE_MIN);
    RQ_ASSERT(config->block_size_max <= STORE_BLOCK_SIZE_MAX);
    RQ_ASSERT(config->segment_size_max >= config->block_size_max);
    RQ_ASSERT(config->segment_size_max <= STORE_SEGMENT_SIZE_MAX);
    RQ_ASSERT(buf_size >= store_segment_buf_size_min(config));
    RQ_ASSERT(buf_size <= STORE_SEGMENT_BUF_SIZE_MAX);
    memset(s, 0, sizeof *s);
    s->io = io;
    s->group_id = group_id;
    s->config = *config;
    s->buf = buf;
    s->buf_size = (uint32_t)buf_size;
    s->done = done;
    s->done_arg = done_arg;
    s->state = STORE_SEGMENT_NEW;
    s->slot_file[0] = -1;
    s->slot_file[1] = -1;
    s->next_index = 1;
}

void store_segment_open(struct store_segment *s) {
    RQ_ASSERT(s->state == STORE_SEGMENT_NEW);
    s->state = STORE_SEGMENT_OPENING;
    s->busy = 1;
    s->op_event = STORE_SEGMENT_OPENED;
    memset(&s->open_result, 0, sizeof s->open_result);
    plan_reset(s, PHASE_OPEN_LIST);
    plan_path(s, RQ_DISK_LIST, NAME_DIR, 0)->flags = STEP_CHECKED;
    plan_run(s);
}

static void open_finish(struct store_segment *s) {
    RQ_ASSERT(s->state == STORE_SEGMENT_OPENING);
    RQ_ASSERT(s->slot_kind[0] == NAME_NONE && s->slot_kind[1] == NAME_NONE);
    s->state = STORE_SEGMENT_READY;
    if (s->file_count == 0) {
        s->next_index = 1; /* an empty group: the caller says where to start (set_next) */
        s->next_offset = 0;
        s->last_term = 0;
    }
    struct store_segment_result res = s->open_result;
    char dir[STORE_SEGMENT_DIR_SIZE];
    store_segment_dir(s->group_id, dir);
    RQ_INFO("segment: %s opened: %u segments, %u blocks, index %llu..%llu, next offset %llu", dir,
            (unsigned)s->file_count, (unsigned)s->block_count,
            (unsigned long long)store_segment_first_index(s),
            (unsigned long long)store_segment_last_index(s), (unsigned long long)s->next_offset);
    report(s, &res);
}

static void open_sync(struct store_segment *s) {
    plan_reset(s, PHASE_OPEN_SYNC);
    plan_path(s, RQ_DISK_FSYNC_DIR, NAME_DIR, 0);
    plan_path(s, RQ_DISK_FSYNC_DIR, NAME_ROOT, 0);
    plan_run(s);
}

static void open_segment(struct store_segment *s, uint32_t n);

/* LIST done: sort the names into segments and at most one intent. */
static void on_open_list(struct store_segment *s) {
    if (s->last_result == RQ_ENOENT) {
        /* A new group: its directory, made durable in the data directory. */
        plan_reset(s, PHASE_OPEN_MKDIR);
        plan_path(s, RQ_DISK_MKDIR, NAME_DIR, 0);
        plan_path(s, RQ_DISK_FSYNC_DIR, NAME_ROOT, 0);
        plan_run(s);
        return;
    }
    if (s->last_result < 0) {
        if (s->last_result == RQ_ETOOBIG) {
            fail_too_big(s, NAME_DIR, 0, 0, "more names than the buffer holds");
            return;
        }
        fail_request(s, &s->plan[0], s->last_result);
        return;
    }
    size_t at = 0;
    s->cut_index = 0;
    for (int64_t k = 0; k < s->last_result; k++) {
        const char *name = (const char *)s->buf + at;
        size_t len = 0;
        while (at + len < s->buf_size && name[len] != '\0')
            len++;
        RQ_ASSERT(at + len < s->buf_size); /* LIST terminates every name */
        at += len + 1;
        uint64_t index = 0;
        enum name_kind kind = parse_name(name, len, &index);
        char what[96];
        snprintf(what, sizeof what, "foreign file \"%.48s\" in the group directory", name);
        if (kind == NAME_NONE) {
            fail_corrupt(s, NAME_DIR, 0, 0, what);
            return;
        }
        if (kind == NAME_CUT) {
            if (s->cut_index != 0) {
                fail_corrupt(s, NAME_CUT, index, 0, "a second truncation intent");
                return;
            }
            s->cut_index = index;
            continue;
        }
        if (s->file_count == STORE_SEGMENT_FILES_MAX) {
            fail_too_big(s, NAME_SEG, index, 0, "more segments than STORE_SEGMENT_FILES_MAX");
            return;
        }
        /* LIST is sorted bytewise and the names have a fixed width: index order. */
        RQ_ASSERT(s->file_count == 0 || s->files[s->file_count - 1].first_index < index);
        memset(&s->files[s->file_count], 0, sizeof s->files[0]);
        s->files[s->file_count++].first_index = index;
    }
    if (s->cut_index != 0) {
        plan_reset(s, PHASE_OPEN_CUT_OPEN);
        plan_open(s, 1, NAME_CUT, s->cut_index, 0);
        plan_run(s);
        return;
    }
    open_segment(s, 0);
}

static void plan_apply(struct store_segment *s, const struct intent *in);

static void on_open_cut_open(struct store_segment *s) {
    uint64_t size = s->opened_size;
    if (size > s->buf_size) {
        plan_reset(s, PHASE_NONE);
        fail_corrupt(s, NAME_CUT, s->cut_index, 0, "intent larger than any this store writes");
        return;
    }
    s->read_result = 0;
    plan_reset(s, PHASE_OPEN_CUT_READ);
    if (size > 0) plan_io(s, RQ_DISK_PREAD, 1, 0, 0, (uint32_t)size);
    /* After a process crash the intent may be in the page cache only: a redo must not start
     * from an intent a power loss could still take away (with it, the only record that later
     * segments are to go). Its content is made durable here, its name below. */
    plan_io(s, RQ_DISK_FSYNC, 1, 0, 0, 0);
    plan_close(s, 1);
    plan_run(s);
}

static void on_open_cut_read(struct store_segment *s) {
    uint64_t size = s->opened_size;
    if ((uint64_t)s->read_result != size) {
        fail_corrupt(s, NAME_CUT, s->cut_index, (uint64_t)s->read_result, "short read");
        return;
    }
    struct intent in;
    const char *problem;
    enum intent_status st = intent_decode(s->buf, size, s->group_id, s->cut_index, &in, &problem);
    if (st == INTENT_BAD) {
        fail_corrupt(s, NAME_CUT, s->cut_index, 0, problem);
        return;
    }
    plan_reset(s, PHASE_OPEN_CUT_DONE);
    if (st == INTENT_TORN) {
        /* Never made durable, so never applied: the old log stands. */
        RQ_WARN("segment: discarding torn truncation intent at index %llu (%llu bytes): the "
                "truncation never started",
                (unsigned long long)s->cut_index, (unsigned long long)size);
        s->open_result.intent_discarded = 1;
        plan_path(s, RQ_DISK_UNLINK, NAME_CUT, s->cut_index);
        plan_path(s, RQ_DISK_FSYNC_DIR, NAME_DIR, 0);
        plan_run(s);
        return;
    }
    int found = in.cut_segment == 0;
    for (uint32_t n = 0; n < s->file_count && !found; n++)
        found = s->files[n].first_index == in.cut_segment;
    if (!found) {
        fail_corrupt(s, NAME_CUT, s->cut_index, 32, "intent names a segment that does not exist");
        return;
    }
    RQ_WARN("segment: completing the truncation from index %llu interrupted by a crash",
            (unsigned long long)in.index);
    s->open_result.intent_redone = 1;
    plan_path(s, RQ_DISK_FSYNC_DIR, NAME_DIR, 0);
    plan_apply(s, &in);
    plan_close(s, 0);
    plan_close(s, 1);
    plan_run(s);
}

/* The intent is gone: so are the segments it removed. */
static void on_open_cut_done(struct store_segment *s) {
    uint32_t keep = 0;
    while (keep < s->file_count && s->files[keep].first_index < s->cut_index)
        keep++;
    if (!s->open_result.intent_redone) keep = s->file_count;
    s->file_count = keep;
    s->cut_index = 0;
    open_segment(s, 0);
}

/* Segment n: open it, then read it chunk by chunk. */
static void open_segment(struct store_segment *s, uint32_t n) {
    if (n == s->file_count) {
        open_sync(s);
        return;
    }
    struct store_segment_file *f = &s->files[n];
    if (n == 0) {
        s->next_index = f->first_index;
    } else if (f->first_index != s->next_index) {
        fail_corrupt(s, NAME_SEG, f->first_index, 0,
                     "segment does not start where the one before it ends (gap or overlap)");
        return;
    }
    f->block_first = s->block_count;
    f->block_count = 0;
    f->size = 0;
    f->timestamp = 0;
    s->scan_file = n;
    s->scan_pos = 0;
    s->scan_torn = 0;
    plan_reset(s, PHASE_OPEN_SEG_OPEN);
    plan_open(s, 0, NAME_SEG, f->first_index, 0);
    plan_run(s);
}

static void segment_read_chunk(struct store_segment *s);
static void segment_end(struct store_segment *s, const char *problem);

static void on_open_seg_open(struct store_segment *s) {
    s->scan_size = s->opened_size;
    if (s->scan_size > STORE_SEGMENT_SIZE_MAX) {
        fail_too_big(s, NAME_SEG, s->files[s->scan_file].first_index, STORE_SEGMENT_SIZE_MAX,
                     "segment larger than STORE_SEGMENT_SIZE_MAX");
        return;
    }
    segment_read_chunk(s);
}

static void segment_read_chunk(struct store_segment *s) {
    if (s->scan_pos == s->scan_size) {
        segment_end(s, NULL);
        return;
    }
    uint64_t len = s->scan_size - s->scan_pos;
    if (len > s->buf_size) len = s->buf_size;
    plan_reset(s, PHASE_OPEN_SEG_READ);
    plan_io(s, RQ_DISK_PREAD, 0, s->scan_pos, 0, (uint32_t)len);
    plan_run(s);
}

struct scan_visit {
    struct store_segment *s;
    uint64_t chunk_pos;
};

static int scan_record(void *arg, size_t position, const uint8_t *block,
                       const struct store_block_header *h, uint64_t message_count) {
    (void)block;
    struct scan_visit *v = arg;
    if (v->s->block_count == STORE_SEGMENT_BLOCKS_MAX) return 1;
    index_push(v->s, v->s->scan_file, v->chunk_pos + position, h, message_count);
    return 0;
}

static void on_open_seg_read(struct store_segment *s) {
    uint64_t want = s->plan[0].len;
    uint64_t first = s->files[s->scan_file].first_index;
    if ((uint64_t)s->read_result != want) {
        fail_corrupt(s, NAME_SEG, first, s->scan_pos + (uint64_t)s->read_result, "short read");
        return;
    }
    int last_file = s->scan_file + 1 == s->file_count;
    struct store_segment_scan scan = {0};
    scan.block_size_limit = STORE_BLOCK_SIZE_MAX;
    scan.next_index = s->next_index;
    scan.have_offset = s->block_count > 0;
    scan.next_offset = s->next_offset;
    scan.last_term = s->last_term;
    struct scan_visit visit = {s, s->scan_pos};
    enum store_segment_scan_status st =
        store_segment_scan(s->buf, want, &scan, scan_record, &visit);
    int reaches_end = s->scan_pos + want == s->scan_size;
    if (st == STORE_SEGMENT_SCAN_STOPPED) {
        fail_too_big(s, NAME_SEG, first, s->scan_pos + scan.valid_size,
                     "more blocks than STORE_SEGMENT_BLOCKS_MAX");
        return;
    }
    if (st == STORE_SEGMENT_SCAN_END) {
        s->scan_pos += want;
        segment_read_chunk(s);
        return;
    }
    if (scan.valid_size > 0) {
        /* Read again from the block that stopped the scan, so it starts a chunk. */
        s->scan_pos += scan.valid_size;
        segment_read_chunk(s);
        return;
    }
    if (st == STORE_SEGMENT_SCAN_SHORT && !reaches_end) {
        fail_too_big(s, NAME_SEG, first, s->scan_pos, "block larger than the read buffer");
        return;
    }
    /* A torn write leaves the file ending inside the block, or (on file systems that extend a
     * file before writing it) zeros to the end. Anything else is not a tear. */
    int torn = st == STORE_SEGMENT_SCAN_SHORT || (reaches_end && all_zero(s->buf, want));
    if (!torn || !last_file) {
        const char *problem = scan.problem;
        if (torn) problem = "segment that is not the last ends inside a block";
        fail_corrupt(s, NAME_SEG, first, s->scan_pos, problem);
        return;
    }
    s->scan_torn = 1;
    segment_end(s, scan.problem);
}

/* The segment was read to its end or its torn tail: cut the tail, fsync, close. */
static void segment_end(struct store_segment *s, const char *problem) {
    struct store_segment_file *f = &s->files[s->scan_file];
    int last_file = s->scan_file + 1 == s->file_count;
    if (f->block_count == 0 && !s->scan_torn) {
        if (!last_file) {
            fail_corrupt(s, NAME_SEG, f->first_index, 0, "segment holds no block");
            return;
        }
        s->scan_torn = 1; /* created, never written */
        problem = "empty segment";
    }
    plan_reset(s, PHASE_OPEN_SEG_DONE);
    if (s->scan_torn) {
        RQ_ASSERT(last_file);
        RQ_ASSERT(s->scan_pos == f->size);
        struct store_segment_result *r = &s->open_result;
        r->torn_bytes = s->scan_size - s->scan_pos;
        r->torn_position = s->scan_pos;
        r->torn_segment = f->first_index;
        char path[RQ_DISK_PATH_MAX];
        name_path(s, NAME_SEG, f->first_index, path);
        RQ_WARN("segment: %s: torn tail of %llu bytes at byte %llu (%s) -> %s", path,
                (unsigned long long)r->torn_bytes, (unsigned long long)s->scan_pos,
                problem ? problem : "?", f->block_count ? "truncated" : "file removed");
        if (f->block_count == 0) {
            plan_close(s, 0);
            plan_path(s, RQ_DISK_UNLINK, NAME_SEG, f->first_index);
            plan_run(s);
            return;
        }
        plan_io(s, RQ_DISK_TRUNCATE, 0, s->scan_pos, 0, 0);
    }
    /* What was read may be only in the page cache (a process crash): make it durable. */
    plan_io(s, RQ_DISK_FSYNC, 0, 0, 0, 0);
    plan_close(s, 0);
    plan_run(s);
}

static void on_open_seg_done(struct store_segment *s) {
    struct store_segment_file *f = &s->files[s->scan_file];
    if (f->block_count == 0) {
        RQ_ASSERT(s->scan_file + 1 == s->file_count);
        s->file_count--; /* it was the last: removed */
        open_segment(s, s->file_count);
        return;
    }
    open_segment(s, s->scan_file + 1);
}

/* ---- truncation intent: write, apply ----------------------------------------------------------
 */

/* Steps 3–5 of a truncation (segment.h), for a durable intent: cut the segment holding
 * in->index - 1 and write the tail (at buf + 64), unlink every later segment, then the intent. */
static void plan_apply(struct store_segment *s, const struct intent *in) {
    if (in->cut_segment != 0) {
        uint8_t slot = plan_file(s, NAME_SEG, in->cut_segment, 0);
        plan_io(s, RQ_DISK_TRUNCATE, slot, in->cut_position, 0, 0);
        if (in->tail_size > 0) {
            plan_io(s, RQ_DISK_PWRITE, slot, in->cut_position, STORE_SEGMENT_CUT_HEADER_SIZE,
                    in->tail_size);
        }
        plan_io(s, RQ_DISK_FSYNC, slot, 0, 0, 0);
    }
    uint32_t deleted = 0;
    for (uint32_t n = 0; n < s->file_count; n++) {
        if (s->files[n].first_index < in->index) continue;
        plan_forget(s, NAME_SEG, s->files[n].first_index);
        plan_path(s, RQ_DISK_UNLINK, NAME_SEG, s->files[n].first_index);
        deleted++;
    }
    /* The unlinks must be durable before the intent goes, or a crash could bring back a segment
     * with no intent left to remove it again. */
    if (deleted > 0) plan_path(s, RQ_DISK_FSYNC_DIR, NAME_DIR, 0);
    plan_path(s, RQ_DISK_UNLINK, NAME_CUT, in->index);
    plan_path(s, RQ_DISK_FSYNC_DIR, NAME_DIR, 0);
}

/* ---- sticky checks for every call --------------------------------------------------------------
 */

static int call_check(const struct store_segment *s) {
    if (s->state == STORE_SEGMENT_FAILED) return s->err;
    RQ_ASSERT(s->state == STORE_SEGMENT_READY);
    if (s->busy) return RQ_EBUSY;
    return 0;
}

static void op_start(struct store_segment *s, enum store_segment_event event) {
    s->busy = 1;
    s->op_event = event;
}

int store_segment_set_next(struct store_segment *s, uint64_t next_index, uint64_t next_offset) {
    int err = call_check(s);
    if (err != 0) return err;
    if (s->file_count != 0 || next_index == 0 || next_index == UINT64_MAX) return RQ_EINVAL;
    s->next_index = next_index;
    s->next_offset = next_offset;
    s->last_term = 0;
    return 0;
}

int store_segment_roll(struct store_segment *s) {
    if (s->state == STORE_SEGMENT_FAILED) return s->err;
    RQ_ASSERT(s->state == STORE_SEGMENT_READY);
    s->roll_requested = 1;
    return 0;
}

/* ---- append -----------------------------------------------------------------------------------
 */

static int entries_valid(const struct store_segment *s, const struct store_entry *entries,
                         uint32_t count) {
    uint64_t term = s->last_term;
    uint64_t offset = s->next_offset;
    uint32_t payload_max =
        s->config.block_size_max - STORE_BLOCK_HEADER_SIZE - STORE_BLOCK_ENTRY_HEADER_SIZE;
    for (uint32_t k = 0; k < count; k++) {
        const struct store_entry *e = &entries[k];
        if (e->index != s->next_index + k || e->index == UINT64_MAX) return 0;
        if (e->term == 0 || e->term < term) return 0;
        if (e->payload_size > payload_max) return 0;
        if (e->payload_size > 0 && e->payload == NULL) return 0;
        if (offset > UINT64_MAX - e->message_count) return 0; /* offsets would overflow */
        offset += e->message_count;
        term = e->term;
    }
    return 1;
}

/* Encodes the leading entries that fit `room` bytes (and the block bound) into the buffer as
 * blocks; records them after the index's last block (uncommitted). Returns the entries taken. */
static uint32_t append_encode(struct store_segment *s, const struct store_entry *entries,
                              uint32_t count, uint64_t room, uint64_t position) {
    uint32_t blocks_free = STORE_SEGMENT_BLOCKS_MAX - s->block_count;
    uint32_t taken = 0;
    uint32_t blocks = 0;
    uint64_t written = 0;
    uint64_t offset = s->next_offset;
    struct store_block_writer w;
    int open_block = 0;
    while (taken < count) {
        const struct store_entry *e = &entries[taken];
        if (open_block && store_block_writer_fits(&w, e)) {
            store_block_writer_add(&w, e);
            offset += e->message_count;
            taken++;
            continue;
        }
        if (open_block) {
            written += store_block_writer_finish(&w);
            open_block = 0;
        }
        uint64_t need = STORE_BLOCK_HEADER_SIZE + store_block_entry_size(e->payload_size);
        if (blocks == blocks_free || written + need > room) break;
        uint64_t cap = room - written;
        if (cap > s->config.block_size_max) cap = s->config.block_size_max;
        store_block_writer_start(&w, s->buf + written, (uint32_t)cap, e->term, e->index, offset);
        open_block = 1;
        blocks++;
        /* The index entry, completed when the block is finished (below). */
        struct store_segment_block *b = &s->blocks[s->block_count + blocks - 1];
        memset(b, 0, sizeof *b);
        b->position = (uint32_t)(position + written);
    }
    if (open_block) written += store_block_writer_finish(&w);
    /* Fill the uncommitted index entries from the encoded headers. */
    const char *problem;
    uint64_t at = 0;
    for (uint32_t k = 0; k < blocks; k++) {
        struct store_block_header h;
        uint64_t messages;
        enum store_block_status st = store_block_check(
            s->buf + at, written - at, STORE_BLOCK_SIZE_MAX, &h, &messages, &problem);
        RQ_ASSERT(st == STORE_BLOCK_OK);
        struct store_segment_block *b = &s->blocks[s->block_count + k];
        RQ_ASSERT(b->position == position + at);
        b->first_index = h.first_index;
        b->first_offset = h.first_offset;
        b->term = h.term;
        b->timestamp = h.timestamp;
        b->size = store_block_size(&h);
        at += b->size;
    }
    RQ_ASSERT(at == written);
    s->op_count = blocks;
    s->op_max_bytes = written; /* append: the bytes to write */
    s->op_next_offset = offset;
    return taken;
}

int store_segment_append(struct store_segment *s, const struct store_entry *entries, uint32_t count,
                         uint32_t *accepted) {
    *accepted = 0;
    int err = call_check(s);
    if (err != 0) return err;
    if (count == 0 || !entries_valid(s, entries, count)) return RQ_EINVAL;
    if (s->block_count == STORE_SEGMENT_BLOCKS_MAX) return RQ_ENOMEM;
    uint64_t first_block =
        STORE_BLOCK_HEADER_SIZE + store_block_entry_size(entries[0].payload_size);
    struct store_segment_file *last = s->file_count > 0 ? &s->files[s->file_count - 1] : NULL;
    int new_file =
        last == NULL || s->roll_requested || last->size + first_block > s->config.segment_size_max;
    if (new_file && s->file_count == STORE_SEGMENT_FILES_MAX) return RQ_ENOMEM;
    uint64_t position = new_file ? 0 : last->size;
    uint64_t room = s->config.segment_size_max - position;
    if (room > s->buf_size) room = s->buf_size;
    uint32_t taken = append_encode(s, entries, count, room, position);
    RQ_ASSERT(taken >= 1);
    *accepted = taken;
    op_start(s, STORE_SEGMENT_APPENDED);
    if (new_file) s->roll_requested = 0; /* consumed by this append */
    s->op_new_file = new_file;
    s->op_last_index = entries[taken - 1].index;
    uint64_t first_index = entries[0].index;
    plan_reset(s, PHASE_APPEND);
    uint8_t slot = 0;
    if (new_file) {
        plan_close(s, 0);
        plan_open(s, 0, NAME_SEG, first_index, STEP_CREATE | STEP_EXPECT_EMPTY);
    } else {
        slot = plan_file(s, NAME_SEG, last->first_index, 0);
    }
    plan_io(s, RQ_DISK_PWRITE, slot, position, 0, (uint32_t)s->op_max_bytes);
    plan_io(s, RQ_DISK_FSYNC, slot, 0, 0, 0);
    /* A new file's name is durable only once its directory is synced. */
    if (new_file) plan_path(s, RQ_DISK_FSYNC_DIR, NAME_DIR, 0);
    RQ_DEBUG("segment: group %016llx: appending %llu..%llu (%u blocks, %llu bytes)%s",
             (unsigned long long)s->group_id, (unsigned long long)first_index,
             (unsigned long long)s->op_last_index, (unsigned)s->op_count,
             (unsigned long long)s->op_max_bytes, new_file ? " to a new segment" : "");
    plan_run(s);
    return 0;
}

static void on_append(struct store_segment *s) {
    if (s->op_new_file) {
        RQ_ASSERT(s->file_count < STORE_SEGMENT_FILES_MAX);
        struct store_segment_file *f = &s->files[s->file_count++];
        memset(f, 0, sizeof *f);
        f->first_index = s->blocks[s->block_count].first_index;
        f->block_first = s->block_count;
    }
    struct store_segment_file *f = &s->files[s->file_count - 1];
    uint32_t from = s->block_count;
    for (uint32_t k = 0; k < s->op_count; k++) {
        struct store_segment_block *b = &s->blocks[s->block_count];
        RQ_ASSERT(b->position == f->size);
        s->block_count++;
        f->block_count++;
        f->size += b->size;
        s->last_term = b->term;
    }
    s->next_index = s->op_last_index + 1;
    s->next_offset = s->op_next_offset;
    index_refresh(s, from, 1);
    struct store_segment_result res = {0};
    res.durable_index = s->op_last_index;
    report(s, &res);
}

/* ---- reads ------------------------------------------------------------------------------------
 */

/* Checks block b, read into p: complete, valid, and the block the index says. */
static int block_verify(struct store_segment *s, uint32_t b, const uint8_t *p,
                        struct store_block_header *h) {
    const struct store_segment_block *ref = &s->blocks[b];
    uint64_t messages = 0;
    const char *problem = NULL;
    enum store_block_status st =
        store_block_check(p, ref->size, STORE_BLOCK_SIZE_MAX, h, &messages, &problem);
    if (st == STORE_BLOCK_OK &&
        (h->first_index != ref->first_index || h->first_offset != ref->first_offset ||
         h->term != ref->term || h->timestamp != ref->timestamp ||
         store_block_size(h) != ref->size || h->last_index != block_last_index(s, b) ||
         h->first_offset + messages != block_end_offset(s, b))) {
        st = STORE_BLOCK_BAD;
        problem = "block differs from the one indexed at open";
    }
    if (st != STORE_BLOCK_OK) {
        uint32_t n = file_of_block(s, b);
        fail_corrupt(s, NAME_SEG, s->files[n].first_index, ref->position,
                     problem ? problem : "block cut short");
        return -1;
    }
    return 0;
}

/* Plans one PREAD of blocks [b, end) (all in one segment) into the buffer. */
static void plan_read_blocks(struct store_segment *s, uint32_t b, uint32_t end, enum phase phase) {
    uint32_t n = file_of_block(s, b);
    RQ_ASSERT(end > b && end <= s->files[n].block_first + s->files[n].block_count);
    uint64_t len =
        (uint64_t)s->blocks[end - 1].position + s->blocks[end - 1].size - s->blocks[b].position;
    RQ_ASSERT(len <= s->buf_size);
    s->op_block = b;
    s->op_block_end = end;
    plan_reset(s, phase);
    uint8_t slot = plan_file(s, NAME_SEG, s->files[n].first_index, 1);
    plan_io(s, RQ_DISK_PREAD, slot, s->blocks[b].position, 0, (uint32_t)len);
    plan_run(s);
}

static int read_complete(struct store_segment *s) {
    uint32_t b = s->op_block;
    if ((uint64_t)s->read_result != s->plan[s->plan_count - 1].len) {
        uint32_t n = file_of_block(s, b);
        fail_corrupt(s, NAME_SEG, s->files[n].first_index,
                     s->blocks[b].position + (uint64_t)s->read_result,
                     "segment shorter than its index says");
        return -1;
    }
    return 0;
}

int store_segment_read(struct store_segment *s, uint64_t from_index, uint32_t max_entries,
                       uint64_t max_bytes, struct store_entry *out, uint32_t out_cap) {
    int err = call_check(s);
    if (err != 0) return err;
    if (max_entries == 0 || out == NULL || out_cap == 0) return RQ_EINVAL;
    if (s->block_count == 0 || from_index < s->blocks[0].first_index ||
        from_index >= s->next_index) {
        return RQ_ERANGE;
    }
    uint32_t want = max_entries < out_cap ? max_entries : out_cap;
    uint32_t b = block_find_index(s, from_index);
    const struct store_segment_file *f = &s->files[file_of_block(s, b)];
    uint32_t file_end = f->block_first + f->block_count;
    uint64_t entries = block_last_index(s, b) - from_index + 1;
    uint64_t bytes = s->blocks[b].size;
    uint32_t end = b + 1;
    while (end < file_end && entries < want && bytes < max_bytes &&
           bytes + s->blocks[end].size <= s->buf_size) {
        entries += block_last_index(s, end) - s->blocks[end].first_index + 1;
        bytes += s->blocks[end].size;
        end++;
    }
    op_start(s, STORE_SEGMENT_READ);
    s->out = out;
    s->out_cap = want;
    s->op_index = from_index;
    s->op_max_bytes = max_bytes;
    plan_read_blocks(s, b, end, PHASE_READ);
    return 0;
}

static void on_read(struct store_segment *s) {
    if (read_complete(s) != 0) return;
    uint32_t count = 0;
    uint64_t bytes = 0;
    int full = 0;
    for (uint32_t b = s->op_block; b < s->op_block_end && !full; b++) {
        const uint8_t *p = s->buf + (s->blocks[b].position - s->blocks[s->op_block].position);
        struct store_block_header h;
        if (block_verify(s, b, p, &h) != 0) return;
        struct store_block_cursor c;
        store_block_cursor_init(&c, p, &h);
        struct store_entry e;
        while (store_block_cursor_next(&c, &e)) {
            if (e.index < s->op_index) continue;
            if (count > 0 && bytes + e.payload_size > s->op_max_bytes) {
                full = 1;
                break;
            }
            s->out[count++] = e;
            bytes += e.payload_size;
            if (count == s->out_cap) {
                full = 1;
                break;
            }
        }
    }
    struct store_segment_result res = {0};
    res.entries = s->out;
    res.entry_count = count;
    report(s, &res);
}

int store_segment_find_offset(struct store_segment *s, uint64_t offset, struct store_entry *out) {
    int err = call_check(s);
    if (err != 0) return err;
    if (out == NULL) return RQ_EINVAL;
    if (s->block_count == 0 || offset < s->blocks[0].first_offset || offset >= s->next_offset) {
        return RQ_ERANGE;
    }
    /* The last block starting at or before offset holds it (blocks may hold no message). */
    uint32_t lo = 0, hi = s->block_count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->blocks[mid].first_offset <= offset)
            lo = mid;
        else
            hi = mid;
    }
    RQ_ASSERT(offset < block_end_offset(s, lo));
    op_start(s, STORE_SEGMENT_FOUND);
    s->out = out;
    s->op_index = offset;
    s->op_max_entries = 0; /* by offset */
    plan_read_blocks(s, lo, lo + 1, PHASE_FIND);
    return 0;
}

int store_segment_find_timestamp(struct store_segment *s, uint64_t timestamp,
                                 struct store_entry *out) {
    int err = call_check(s);
    if (err != 0) return err;
    if (out == NULL) return RQ_EINVAL;
    if (s->block_count == 0 || s->blocks[s->block_count - 1].timestamp_running < timestamp) {
        return RQ_ERANGE;
    }
    /* The first block whose running maximum reaches timestamp (running maxima never decrease). */
    uint32_t lo = 0, hi = s->block_count - 1; /* the answer is in [lo, hi] */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->blocks[mid].timestamp_running >= timestamp)
            hi = mid;
        else
            lo = mid + 1;
    }
    RQ_ASSERT(s->blocks[lo].timestamp >= timestamp);
    op_start(s, STORE_SEGMENT_FOUND);
    s->out = out;
    s->op_index = timestamp;
    s->op_max_entries = 1; /* by timestamp */
    plan_read_blocks(s, lo, lo + 1, PHASE_FIND);
    return 0;
}

static void on_find(struct store_segment *s) {
    if (read_complete(s) != 0) return;
    struct store_block_header h;
    if (block_verify(s, s->op_block, s->buf, &h) != 0) return;
    struct store_block_cursor c;
    store_block_cursor_init(&c, s->buf, &h);
    struct store_entry e;
    int found = 0;
    while (!found && store_block_cursor_next(&c, &e)) {
        if (s->op_max_entries == 0) {
            found = e.first_offset <= s->op_index && s->op_index - e.first_offset < e.message_count;
        } else {
            found = e.timestamp >= s->op_index;
        }
    }
    /* The block passed its checks and the index led here, so the entry is in it. */
    RQ_ASSERT(found);
    *s->out = e;
    struct store_segment_result res = {0};
    res.entries = s->out;
    res.entry_count = 1;
    report(s, &res);
}

/* ---- truncate suffix --------------------------------------------------------------------------
 */

/* Writes the intent (header + the tail already at buf + 64), then applies it. */
static void truncate_plan(struct store_segment *s, const struct intent *in) {
    intent_encode(s->buf, s->group_id, in);
    plan_reset(s, PHASE_TRUNCATE);
    plan_close(s, 1);
    plan_open(s, 1, NAME_CUT, in->index, STEP_CREATE | STEP_EXPECT_EMPTY);
    plan_io(s, RQ_DISK_PWRITE, 1, 0, 0, STORE_SEGMENT_CUT_HEADER_SIZE + in->tail_size);
    plan_io(s, RQ_DISK_FSYNC, 1, 0, 0, 0);
    plan_close(s, 1);
    plan_path(s, RQ_DISK_FSYNC_DIR, NAME_DIR, 0);
    /* From here on the truncation is decided: a crash is followed by its redo. */
    plan_apply(s, in);
    plan_run(s);
}

int store_segment_truncate(struct store_segment *s, uint64_t index) {
    int err = call_check(s);
    if (err != 0) return err;
    if (s->block_count == 0 || index < s->blocks[0].first_index || index >= s->next_index) {
        return RQ_ERANGE;
    }
    uint32_t b = block_find_index(s, index);
    uint32_t n = file_of_block(s, b);
    op_start(s, STORE_SEGMENT_TRUNCATED);
    s->op_index = index;
    s->op_block = b;
    RQ_INFO("segment: group %016llx: truncating the log from index %llu (was %llu..%llu)",
            (unsigned long long)s->group_id, (unsigned long long)index,
            (unsigned long long)store_segment_first_index(s),
            (unsigned long long)store_segment_last_index(s));
    if (s->blocks[b].first_index == index) {
        /* At a block boundary: no block to rewrite. */
        struct intent in = {.index = index};
        if (b != s->files[n].block_first) {
            in.cut_segment = s->files[n].first_index;
            in.cut_position = s->blocks[b].position;
        }
        s->op_next_offset = s->blocks[b].first_offset;
        truncate_plan(s, &in);
        return 0;
    }
    /* Inside block b: read it (after room for the intent header) to rewrite it shorter. */
    s->op_block_end = b + 1;
    plan_reset(s, PHASE_TRUNCATE_READ);
    uint8_t slot = plan_file(s, NAME_SEG, s->files[n].first_index, 1);
    plan_io(s, RQ_DISK_PREAD, slot, s->blocks[b].position, STORE_SEGMENT_CUT_HEADER_SIZE,
            s->blocks[b].size);
    plan_run(s);
    return 0;
}

static void on_truncate_read(struct store_segment *s) {
    if (read_complete(s) != 0) return;
    uint32_t b = s->op_block;
    uint8_t *block = s->buf + STORE_SEGMENT_CUT_HEADER_SIZE;
    struct store_block_header h;
    if (block_verify(s, b, block, &h) != 0) return;
    uint32_t keep = (uint32_t)(s->op_index - h.first_index);
    uint32_t size = store_block_cut(block, &h, keep);
    /* The offset where the removed entries began. */
    struct store_block_cursor c;
    store_block_cursor_init(&c, block, &h);
    struct store_entry e;
    while (store_block_cursor_next(&c, &e)) {
    }
    s->op_next_offset = c.offset;
    struct intent in = {
        .index = s->op_index,
        .cut_segment = s->files[file_of_block(s, b)].first_index,
        .cut_position = s->blocks[b].position,
        .tail_size = size,
    };
    s->op_count = size; /* truncate: the cut block's new size */
    s->op_timestamp = h.timestamp;
    truncate_plan(s, &in);
}

static void on_truncate(struct store_segment *s) {
    uint32_t b = s->op_block;
    uint32_t n = file_of_block(s, b);
    struct store_segment_file *f = &s->files[n];
    if (s->blocks[b].first_index == s->op_index) {
        /* Blocks from b on are gone; so is file n if b was its first. */
        if (b == f->block_first) {
            s->file_count = n;
        } else {
            s->file_count = n + 1;
            f->block_count = b - f->block_first;
            f->size = s->blocks[b].position;
        }
        s->block_count = b;
    } else {
        s->blocks[b].size = s->op_count;
        s->blocks[b].timestamp = s->op_timestamp;
        s->block_count = b + 1;
        s->file_count = n + 1;
        f->block_count = b + 1 - f->block_first;
        f->size = (uint64_t)s->blocks[b].position + s->blocks[b].size;
    }
    s->next_index = s->op_index;
    s->next_offset = s->op_next_offset;
    s->last_term = s->block_count > 0 ? s->blocks[s->block_count - 1].term : 0;
    index_refresh(s, b < s->block_count ? b : s->block_count, 0);
    RQ_INFO("segment: group %016llx: log truncated to %llu..%llu (durable)",
            (unsigned long long)s->group_id, (unsigned long long)store_segment_first_index(s),
            (unsigned long long)store_segment_last_index(s));
    struct store_segment_result res = {0};
    report(s, &res);
}

/* ---- drop prefix and retention ----------------------------------------------------------------
 */

/* Unlinks the n oldest segments, each made durable before the next, so a crash never leaves a
 * hole in the log. */
static void drop_plan(struct store_segment *s, uint32_t n) {
    RQ_ASSERT(n >= 1 && n <= s->file_count);
    op_start(s, STORE_SEGMENT_DROPPED);
    s->op_count = n;
    plan_reset(s, PHASE_DROP);
    for (uint32_t k = 0; k < n; k++) {
        plan_forget(s, NAME_SEG, s->files[k].first_index);
        plan_path(s, RQ_DISK_UNLINK, NAME_SEG, s->files[k].first_index);
        plan_path(s, RQ_DISK_FSYNC_DIR, NAME_DIR, 0);
    }
    RQ_INFO("segment: group %016llx: deleting %u oldest segments (index %llu..%llu)",
            (unsigned long long)s->group_id, (unsigned)n,
            (unsigned long long)s->files[0].first_index,
            (unsigned long long)file_last_index(s, n - 1));
    plan_run(s);
}

int store_segment_drop_prefix(struct store_segment *s, uint64_t index, uint32_t *deleting) {
    *deleting = 0;
    int err = call_check(s);
    if (err != 0) return err;
    uint32_t n = 0;
    while (n < s->file_count && file_last_index(s, n) < index)
        n++;
    *deleting = n;
    if (n > 0) drop_plan(s, n);
    return 0;
}

int store_segment_retention(struct store_segment *s, const struct store_segment_retention *r,
                            uint32_t *deleting) {
    *deleting = 0;
    int err = call_check(s);
    if (err != 0) return err;
    uint64_t total = store_segment_size(s);
    uint32_t n = 0;
    while (n + 1 < s->file_count && file_last_index(s, n) < r->snapshot_index) {
        int expired = r->ttl != 0 && r->now > r->ttl && s->files[n].timestamp < r->now - r->ttl;
        int over = r->size_limit != 0 && total > r->size_limit;
        if (!expired && !over) break;
        total -= s->files[n].size;
        n++;
    }
    *deleting = n;
    if (n > 0) drop_plan(s, n);
    return 0;
}

static void on_drop(struct store_segment *s) {
    uint32_t n = s->op_count;
    uint32_t blocks = n < s->file_count ? s->files[n].block_first : s->block_count;
    memmove(&s->blocks[0], &s->blocks[blocks], (s->block_count - blocks) * sizeof s->blocks[0]);
    s->block_count -= blocks;
    memmove(&s->files[0], &s->files[n], (s->file_count - n) * sizeof s->files[0]);
    s->file_count -= n;
    for (uint32_t k = 0; k < s->file_count; k++)
        s->files[k].block_first -= blocks;
    index_refresh(s, 0, 0);
    struct store_segment_result res = {0};
    res.segments_deleted = n;
    report(s, &res);
}

/* ---- phase dispatch ---------------------------------------------------------------------------
 */

static void phase_done(struct store_segment *s) {
    enum phase phase = (enum phase)s->phase;
    switch (phase) {
    case PHASE_OPEN_LIST: on_open_list(s); break;
    case PHASE_OPEN_MKDIR: open_finish(s); break;
    case PHASE_OPEN_CUT_OPEN: on_open_cut_open(s); break;
    case PHASE_OPEN_CUT_READ: on_open_cut_read(s); break;
    case PHASE_OPEN_CUT_DONE: on_open_cut_done(s); break;
    case PHASE_OPEN_SEG_OPEN: on_open_seg_open(s); break;
    case PHASE_OPEN_SEG_READ: on_open_seg_read(s); break;
    case PHASE_OPEN_SEG_DONE: on_open_seg_done(s); break;
    case PHASE_OPEN_SYNC: open_finish(s); break;
    case PHASE_APPEND: on_append(s); break;
    case PHASE_READ: on_read(s); break;
    case PHASE_FIND: on_find(s); break;
    case PHASE_TRUNCATE_READ: on_truncate_read(s); break;
    case PHASE_TRUNCATE: on_truncate(s); break;
    case PHASE_DROP: on_drop(s); break;
    case PHASE_NONE:
    default: RQ_UNREACHABLE();
    }
}
