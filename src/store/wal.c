/* wal.c — the node write-ahead log; see wal.h for the format and the contract.
 *
 * Layout of this file: pure decoding (scan, tail check) first, then the state machine: one disk
 * request in flight at a time, except a batch's PWRITE + FSYNC pair, every next step started from
 * store_wal_on_disk_done. */
#include "store/wal.h"

#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"

_Static_assert(STORE_WAL_BATCH_HEADER_SIZE == 32, "batch header layout in wal.h");
_Static_assert(STORE_WAL_RECORD_HEADER_SIZE == 32, "record header layout in wal.h");
_Static_assert((int)STORE_WAL_PATH_SIZE <= (int)RQ_DISK_PATH_MAX, "paths fit a disk request");
_Static_assert(STORE_WAL_PATH_SIZE == 4 + STORE_WAL_NAME_SIZE, "path = \"wal/\" + name");
_Static_assert((uint64_t)STORE_WAL_BATCH_RECORDS_LIMIT *STORE_WAL_RECORD_HEADER_SIZE <
                   (uint64_t)STORE_WAL_BATCH_BYTES_LIMIT * 16,
               "record count bound is sane");
_Static_assert(STORE_WAL_BATCH_BYTES_LIMIT <= UINT32_MAX / 2, "batch sizes fit in u32");
_Static_assert(STORE_WAL_BUFFERS == 3, "reported, on the disk, filling: see batch_durable");
_Static_assert(STORE_WAL_REQS_MAX == 2, "a batch's PWRITE and its FSYNC, and nothing more");

enum {
    CRC_OFFSET = 8,
    BATCH_BYTES_MIN = 1024, /* config: smallest batch_bytes_max */
};

#define WAL_DIR "wal"

/* ---- names --------------------------------------------------------------------------------- */

void store_wal_name(uint64_t first_lsn, char *name) {
    snprintf(name, STORE_WAL_NAME_SIZE, "%016llx.log", (unsigned long long)first_lsn);
}

void store_wal_path(uint64_t first_lsn, char *path) {
    snprintf(path, STORE_WAL_PATH_SIZE, WAL_DIR "/%016llx.log", (unsigned long long)first_lsn);
}

int store_wal_parse_name(const char *name, uint64_t *first_lsn) {
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        uint64_t digit;
        if (c >= '0' && c <= '9')
            digit = (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (uint64_t)(c - 'a' + 10);
        else
            return RQ_EINVAL;
        v = v << 4 | digit;
    }
    if (strcmp(name + 16, ".log") != 0) return RQ_EINVAL;
    if (v == 0) return RQ_EINVAL;
    *first_lsn = v;
    return 0;
}

/* ---- batches (pure) ------------------------------------------------------------------------- */

struct header {
    uint32_t magic;
    uint16_t version;
    uint16_t reserved16;
    uint32_t crc;
    uint32_t body_size;
    uint64_t first_lsn;
    uint32_t count;
    uint32_t reserved32;
};

static void header_decode(const uint8_t *p, struct header *h) {
    h->magic = rq_get_u32(p);
    h->version = rq_get_u16(p + 4);
    h->reserved16 = rq_get_u16(p + 6);
    h->crc = rq_get_u32(p + 8);
    h->body_size = rq_get_u32(p + 12);
    h->first_lsn = rq_get_u64(p + 16);
    h->count = rq_get_u32(p + 24);
    h->reserved32 = rq_get_u32(p + 28);
}

/* Why the header cannot start a batch with first LSN `want` (0: any), or NULL if it can. */
static const char *header_problem(const struct header *h, uint64_t want) {
    if (h->magic != STORE_WAL_MAGIC) return "bad magic";
    if (h->version != STORE_WAL_VERSION) return "unknown format version";
    if (h->reserved16 != 0 || h->reserved32 != 0) return "reserved header field is not zero";
    if (h->count == 0 || h->count > STORE_WAL_BATCH_RECORDS_LIMIT)
        return "record count out of range";
    if (h->body_size > STORE_WAL_BATCH_BYTES_LIMIT - STORE_WAL_BATCH_HEADER_SIZE)
        return "body size above the format limit";
    if ((uint64_t)h->count * STORE_WAL_RECORD_HEADER_SIZE > h->body_size)
        return "body too small for its record count";
    if (h->first_lsn == 0 || h->first_lsn > UINT64_MAX - h->count) return "first LSN out of range";
    if (want != 0 && h->first_lsn != want) return "first LSN is not the one expected";
    return NULL;
}

/* CRC32C of the batch at p with body size body_size, over everything but the CRC field, taking
 * the body size field to be `size_field` (so a damaged size field can be tried with another). */
static uint32_t batch_crc(const uint8_t *p, uint32_t body_size, uint32_t size_field) {
    uint8_t size_bytes[4];
    rq_put_u32(size_bytes, size_field);
    uint32_t crc = rq_crc32c(0, p, CRC_OFFSET);
    crc = rq_crc32c(crc, size_bytes, 4);
    return rq_crc32c(crc, p + 16, (size_t)STORE_WAL_BATCH_HEADER_SIZE - 16 + body_size);
}

/* Walks the body's records; with fn, replays them. Returns NULL or why the body is malformed. */
static const char *body_walk(const uint8_t *body, uint32_t body_size, const struct header *h,
                             store_wal_record_fn fn, void *arg) {
    struct rq_reader r;
    rq_reader_init(&r, body, body_size);
    for (uint32_t i = 0; i < h->count; i++) {
        struct store_wal_record rec = {0};
        uint8_t kind = 0, reserved[3] = {0, 0, 0};
        const uint8_t *reserved_bytes = reserved;
        rq_read_u64(&r, &rec.group_id);
        rq_read_u64(&r, &rec.term);
        rq_read_u64(&r, &rec.index);
        rq_read_u8(&r, &kind);
        rq_read_bytes(&r, 3, &reserved_bytes);
        rq_read_u32(&r, &rec.payload_size);
        if (r.err != 0) return "record header runs past the body";
        if (reserved_bytes[0] | reserved_bytes[1] | reserved_bytes[2])
            return "reserved record field is not zero";
        if (kind != STORE_WAL_ENTRY && kind != STORE_WAL_TRUNCATE) return "unknown record kind";
        if (kind == STORE_WAL_TRUNCATE && rec.payload_size != 0) return "TRUNCATE with a payload";
        if (rq_read_bytes(&r, rec.payload_size, &rec.payload) != 0)
            return "record payload runs past the body";
        if (fn != NULL) {
            rec.kind = (enum store_wal_kind)kind;
            rec.lsn = h->first_lsn + i;
            fn(arg, &rec);
        }
    }
    if (rq_reader_remaining(&r) != 0) return "body longer than its records";
    return NULL;
}

/* Whether the n < 32 bytes at p can be the start of a header for a batch at `want` (0: any):
 * every byte of magic, version, reserved fields and (when want != 0) first LSN that is present
 * must be what such a header holds. */
static int header_prefix_plausible(const uint8_t *p, size_t n, uint64_t want) {
    RQ_ASSERT(n < STORE_WAL_BATCH_HEADER_SIZE);
    uint8_t expect[STORE_WAL_BATCH_HEADER_SIZE] = {0};
    uint8_t known[STORE_WAL_BATCH_HEADER_SIZE] = {0};
    rq_put_u32(expect, STORE_WAL_MAGIC);
    rq_put_u16(expect + 4, STORE_WAL_VERSION);
    memset(known, 1, 8);      /* magic, version, reserved16 */
    memset(known + 28, 1, 4); /* reserved32 */
    if (want != 0) {
        rq_put_u64(expect + 16, want);
        memset(known + 16, 1, 8);
    }
    for (size_t i = 0; i < n; i++) {
        if (known[i] && p[i] != expect[i]) return 0;
    }
    return 1;
}

enum batch_verdict { BATCH_VALID, BATCH_INCOMPLETE, BATCH_INVALID };

/* Judges the batch at p (rest > 0 bytes available) that should start at LSN want (0: any). VALID:
 * *h holds its header. INCOMPLETE: *batch_size is what it claims (0 if the header itself is cut).
 */
static enum batch_verdict batch_judge(const uint8_t *p, size_t rest, uint64_t want,
                                      struct header *h, size_t *batch_size, const char **why) {
    *batch_size = 0;
    if (rest < STORE_WAL_BATCH_HEADER_SIZE) {
        if (header_prefix_plausible(p, rest, want)) {
            *why = "batch header cut short";
            return BATCH_INCOMPLETE;
        }
        *why = "bytes that cannot start a batch header";
        return BATCH_INVALID;
    }
    header_decode(p, h);
    *why = header_problem(h, want);
    if (*why != NULL) return BATCH_INVALID;
    size_t size = (size_t)STORE_WAL_BATCH_HEADER_SIZE + h->body_size;
    if (size > rest) {
        *batch_size = size;
        *why = "batch cut short";
        return BATCH_INCOMPLETE;
    }
    if (batch_crc(p, h->body_size, h->body_size) != h->crc) {
        *why = "batch checksum mismatch";
        return BATCH_INVALID;
    }
    *why = body_walk(p + STORE_WAL_BATCH_HEADER_SIZE, h->body_size, h, NULL, NULL);
    if (*why != NULL) return BATCH_INVALID;
    *batch_size = size;
    return BATCH_VALID;
}

void store_wal_scan(const uint8_t *buf, size_t len, uint64_t expected_lsn, store_wal_record_fn fn,
                    void *arg, struct store_wal_scan *out) {
    memset(out, 0, sizeof *out);
    out->next_lsn = expected_lsn;
    size_t pos = 0;
    /* Each iteration consumes one whole batch of at least 64 bytes: at most len / 64 of them. */
    while (pos < len) {
        struct header h;
        size_t batch_size;
        const char *why;
        enum batch_verdict v =
            batch_judge(buf + pos, len - pos, out->next_lsn, &h, &batch_size, &why);
        if (v != BATCH_VALID) {
            out->stop = v == BATCH_INCOMPLETE ? STORE_WAL_SCAN_INCOMPLETE : STORE_WAL_SCAN_INVALID;
            out->why = why;
            out->batch_size = v == BATCH_INCOMPLETE ? batch_size : 0;
            out->valid_size = pos;
            return;
        }
        body_walk(buf + pos + STORE_WAL_BATCH_HEADER_SIZE, h.body_size, &h, fn, arg);
        out->batches++;
        out->records += h.count;
        out->next_lsn = h.first_lsn + h.count;
        pos += batch_size;
    }
    out->stop = STORE_WAL_SCAN_END;
    out->valid_size = pos;
}

/* Whether a complete valid batch with a first LSN above `above` starts at p (rest bytes). */
static int valid_batch_at(const uint8_t *p, size_t rest, uint64_t above) {
    struct header h;
    size_t batch_size;
    const char *why;
    if (batch_judge(p, rest, 0, &h, &batch_size, &why) != BATCH_VALID) return 0;
    return h.first_lsn > above;
}

int store_wal_tail_check(const uint8_t *tail, size_t len, uint64_t expected_lsn, const char **why) {
    RQ_ASSERT(len > 0);
    size_t zeros = 0;
    while (zeros < len && tail[zeros] == 0)
        zeros++;
    if (zeros == len) return 0; /* a file system that extended the file with zeros */
    if (len < STORE_WAL_BATCH_HEADER_SIZE) {
        if (header_prefix_plausible(tail, len, expected_lsn)) return 0;
        *why = "tail bytes cannot start a batch header";
        return RQ_ECORRUPT;
    }
    struct header h;
    header_decode(tail, &h);
    const char *problem = header_problem(&h, expected_lsn);
    if (problem != NULL) {
        *why = problem;
        return RQ_ECORRUPT;
    }
    if ((size_t)STORE_WAL_BATCH_HEADER_SIZE + h.body_size <= len) {
        *why = "a complete batch fails its checksum or structure (a crash cannot cause this)";
        return RQ_ECORRUPT;
    }
    uint32_t body_to_end = (uint32_t)(len - STORE_WAL_BATCH_HEADER_SIZE);
    if ((uint64_t)h.count * STORE_WAL_RECORD_HEADER_SIZE <= body_to_end &&
        batch_crc(tail, body_to_end, body_to_end) == h.crc) {
        *why = "the batch's size field is damaged: up to the end of the file it is a valid batch";
        return RQ_ECORRUPT;
    }
    /* Is a valid batch hiding behind it? (Its size field may be what rotted.) Bounded: payloads
     * are user bytes and could hold many batch-like headers, each costing a CRC. */
    uint32_t candidates = 0;
    for (size_t q = 1; q + STORE_WAL_BATCH_HEADER_SIZE <= len; q++) {
        if (rq_get_u32(tail + q) != STORE_WAL_MAGIC) continue;
        if (++candidates > STORE_WAL_TAIL_CANDIDATES_MAX) {
            *why = "too many batch-like headers after an incomplete batch to judge it torn";
            return RQ_ECORRUPT;
        }
        if (valid_batch_at(tail + q, len - q, expected_lsn)) {
            *why = "an invalid batch is followed by a valid batch with a later LSN";
            return RQ_ECORRUPT;
        }
    }
    return 0;
}

int store_wal_scan_file(const uint8_t *buf, size_t len, uint64_t first_lsn, int is_last,
                        store_wal_record_fn fn, void *arg, struct store_wal_file_scan *out) {
    memset(out, 0, sizeof *out);
    struct store_wal_scan s;
    store_wal_scan(buf, len, first_lsn, fn, arg, &s);
    out->valid_size = s.valid_size;
    out->next_lsn = s.next_lsn;
    out->records = s.records;
    if (s.stop == STORE_WAL_SCAN_END) return 0;
    out->why = s.why;
    if (!is_last) return RQ_ECORRUPT;
    if (store_wal_tail_check(buf + s.valid_size, len - s.valid_size, s.next_lsn, &out->why) != 0)
        return RQ_ECORRUPT;
    out->why = NULL;
    out->torn_size = len - s.valid_size;
    return 0;
}

/* ---- configuration ------------------------------------------------------------------------- */

void store_wal_config_default(struct store_wal_config *config) {
    config->batch_bytes_max = STORE_WAL_BATCH_BYTES_LIMIT;
    config->batch_records_max = 4096;
    config->payload_bytes_max = RQ_MSG_MAX;
    config->file_bytes_max = 64u << 20;
}

int store_wal_config_check(const struct store_wal_config *config) {
    if (config->batch_bytes_max < BATCH_BYTES_MIN) return RQ_EINVAL;
    if (config->batch_bytes_max > STORE_WAL_BATCH_BYTES_LIMIT) return RQ_EINVAL;
    if (config->batch_records_max == 0) return RQ_EINVAL;
    if (config->batch_records_max > STORE_WAL_BATCH_RECORDS_LIMIT) return RQ_EINVAL;
    uint64_t one_record = (uint64_t)config->payload_bytes_max + STORE_WAL_BATCH_HEADER_SIZE +
                          STORE_WAL_RECORD_HEADER_SIZE;
    if (one_record > config->batch_bytes_max) return RQ_EINVAL;
    if (config->file_bytes_max == 0) return RQ_EINVAL;
    return 0;
}

size_t store_wal_memory_size(const struct store_wal_config *config) {
    size_t buffers = STORE_WAL_BUFFERS * (size_t)config->batch_bytes_max;
    return buffers > STORE_WAL_BATCH_BYTES_LIMIT ? buffers : STORE_WAL_BATCH_BYTES_LIMIT;
}

/* ---- requests and failure ------------------------------------------------------------------ */

static const char *step_name(enum store_wal_step step) {
    switch (step) {
    case STORE_WAL_STEP_LIST: return "LIST";
    case STORE_WAL_STEP_MKDIR: return "MKDIR";
    case STORE_WAL_STEP_FSYNC_ROOT:
    case STORE_WAL_STEP_FSYNC_WAL:
    case STORE_WAL_STEP_W_FSYNC_DIR:
    case STORE_WAL_STEP_T_FSYNC_DIR: return "FSYNC_DIR";
    case STORE_WAL_STEP_R_OPEN:
    case STORE_WAL_STEP_W_OPEN: return "OPEN";
    case STORE_WAL_STEP_R_FSYNC:
    case STORE_WAL_STEP_R_TRUNC_FSYNC:
    case STORE_WAL_STEP_W_FSYNC: return "FSYNC";
    case STORE_WAL_STEP_R_READ: return "PREAD";
    case STORE_WAL_STEP_R_TRUNCATE: return "TRUNCATE";
    case STORE_WAL_STEP_R_CLOSE:
    case STORE_WAL_STEP_W_CLOSE: return "CLOSE";
    case STORE_WAL_STEP_W_WRITE: return "PWRITE";
    case STORE_WAL_STEP_T_UNLINK: return "UNLINK";
    default: return "none";
    }
}

/* Prepares the next free request slot for step; the caller fills the op's fields, then
 * submit_go. Only an FSYNC of the batch may join a request in flight: its PWRITE. */
static struct rq_disk_req *submit(struct store_wal *w, enum store_wal_step step,
                                  enum rq_disk_op op) {
    RQ_ASSERT(!w->reporting);
    RQ_ASSERT(w->req_count < STORE_WAL_REQS_MAX);
    if (w->req_count > 0) { /* never two requests but a batch's PWRITE + FSYNC */
        RQ_ASSERT(w->req_count == 1);
        RQ_ASSERT(step == STORE_WAL_STEP_W_FSYNC);
        RQ_ASSERT(w->req_steps[w->req_head] == STORE_WAL_STEP_W_WRITE);
    }
    uint32_t slot = (w->req_head + w->req_count) % STORE_WAL_REQS_MAX;
    struct rq_disk_req *req = &w->reqs[slot];
    memset(req, 0, sizeof *req);
    req->op = op;
    req->file = -1;
    w->req_steps[slot] = step;
    w->req_count++;
    return req;
}

static void submit_go(struct store_wal *w, struct rq_disk_req *req) {
    w->io->disk(w->io->env, req);
}

static void submit_path(struct store_wal *w, enum store_wal_step step, enum rq_disk_op op,
                        const char *path, uint32_t flags) {
    struct rq_disk_req *req = submit(w, step, op);
    snprintf(req->path, sizeof req->path, "%s", path);
    req->flags = flags;
    submit_go(w, req);
}

static void submit_file(struct store_wal *w, enum store_wal_step step, enum rq_disk_op op,
                        int32_t file, uint64_t offset, void *buf, size_t len) {
    struct rq_disk_req *req = submit(w, step, op);
    req->file = file;
    req->offset = offset;
    req->buf = buf;
    req->len = len;
    submit_go(w, req);
}

static struct store_wal_batch *fill_batch(struct store_wal *w) {
    return &w->batches[w->fill_index];
}
/* The batch written before the fill batch: on the disk while w->flight, then being reported. */
static struct store_wal_batch *flight_batch(struct store_wal *w) {
    return &w->batches[(w->fill_index + STORE_WAL_BUFFERS - 1) % STORE_WAL_BUFFERS];
}

/* The WAL failed with err: sticky, reported once. */
static void fail(struct store_wal *w, int err) {
    RQ_ASSERT(err < 0);
    enum store_wal_state was = w->state;
    w->state = STORE_WAL_FAILED;
    w->err = err;
    w->disk_full = 0;
    if (was == STORE_WAL_RECOVERING) {
        struct store_wal_recovery res = w->reader.result;
        res.err = err;
        w->cb.recovered(w->cb_arg, &res);
        return;
    }
    RQ_ASSERT(was == STORE_WAL_READY);
    struct store_wal_durable ev = {0};
    ev.err = err;
    ev.lsn_first = w->durable_lsn + 1;
    ev.lsn_last = w->next_lsn - 1;
    w->cb.durable(w->cb_arg, &ev);
}

/* A request failed where success was required. */
static void fail_request(struct store_wal *w, enum store_wal_step step, const char *path,
                         int64_t result) {
    int err = result < 0 && result >= RQ_ERROR_MIN ? (int)result : RQ_EIO;
    RQ_ERROR("wal: %s %s failed: %s -> WAL failed, node must fail-stop", step_name(step), path,
             rq_strerror(err));
    fail(w, err);
}

static void fail_corrupt(struct store_wal *w, uint64_t file_lsn, uint64_t offset, const char *why) {
    char path[STORE_WAL_PATH_SIZE];
    store_wal_path(file_lsn, path);
    RQ_ERROR("wal: %s is corrupt at byte offset %llu: %s -> refusing to recover", path,
             (unsigned long long)offset, why);
    fail(w, RQ_ECORRUPT);
}

/* ---- init ---------------------------------------------------------------------------------- */

void store_wal_init(struct store_wal *w, const struct rq_io *io,
                    const struct store_wal_config *config, void *mem, size_t mem_size,
                    const struct store_wal_callbacks *cb, void *cb_arg) {
    RQ_ASSERT(io != NULL);
    RQ_ASSERT(store_wal_config_check(config) == 0);
    RQ_ASSERT(mem != NULL);
    RQ_ASSERT(mem_size >= STORE_WAL_BUFFERS * (size_t)config->batch_bytes_max);
    RQ_ASSERT(cb->replay != NULL);
    RQ_ASSERT(cb->recovered != NULL);
    RQ_ASSERT(cb->durable != NULL);
    memset(w, 0, sizeof *w);
    w->io = io;
    w->config = *config;
    w->cb = *cb;
    w->cb_arg = cb_arg;
    w->state = STORE_WAL_NEW;
    w->mem = mem;
    w->mem_size = mem_size;
    for (int i = 0; i < STORE_WAL_BUFFERS; i++) {
        w->batches[i].buf = w->mem + (size_t)i * config->batch_bytes_max;
        w->batches[i].size = STORE_WAL_BATCH_HEADER_SIZE;
    }
    w->file = -1;
    w->next_lsn = 1;
    w->reader.handle = -1;
}

/* ---- recovery ------------------------------------------------------------------------------ */

void store_wal_recover(struct store_wal *w) {
    RQ_ASSERT(w->state == STORE_WAL_NEW);
    w->state = STORE_WAL_RECOVERING;
    struct rq_disk_req *req = submit(w, STORE_WAL_STEP_LIST, RQ_DISK_LIST);
    snprintf(req->path, sizeof req->path, WAL_DIR);
    req->buf = w->mem;
    req->len = w->mem_size;
    submit_go(w, req);
}

/* The names LIST returned: every one must be a WAL file; they come sorted, so in LSN order. */
static void on_list(struct store_wal *w, const struct rq_disk_req *req) {
    if (req->result == RQ_ENOENT) {
        RQ_INFO("wal: no " WAL_DIR " directory -> creating it, empty log");
        submit_path(w, STORE_WAL_STEP_MKDIR, RQ_DISK_MKDIR, WAL_DIR, 0);
        return;
    }
    if (req->result < 0) {
        fail_request(w, STORE_WAL_STEP_LIST, WAL_DIR, req->result);
        return;
    }
    size_t at = 0;
    for (int64_t i = 0; i < req->result; i++) {
        const char *name = (const char *)w->mem + at;
        size_t n = 0;
        while (at + n < w->mem_size && name[n] != '\0')
            n++;
        if (at + n == w->mem_size) { /* io.h promises NUL-terminated names inside len */
            RQ_ERROR("wal: LIST " WAL_DIR " returned a name without its NUL -> WAL failed");
            fail(w, RQ_EIO);
            return;
        }
        uint64_t lsn;
        if (store_wal_parse_name(name, &lsn) != 0) {
            RQ_ERROR("wal: " WAL_DIR "/%s at byte offset 0: not a WAL file name (16 lowercase hex "
                     "digits of an LSN >= 1, then .log) -> refusing to recover",
                     name);
            fail(w, RQ_ECORRUPT);
            return;
        }
        if (w->file_count == STORE_WAL_FILES_MAX) {
            RQ_ERROR("wal: more than %d files in " WAL_DIR " -> refusing to recover",
                     STORE_WAL_FILES_MAX);
            fail(w, RQ_ETOOBIG);
            return;
        }
        if (w->file_count > 0 && lsn <= w->files[w->file_count - 1]) { /* io.h: sorted */
            RQ_ERROR("wal: LIST " WAL_DIR " returned names out of order -> WAL failed");
            fail(w, RQ_EIO);
            return;
        }
        w->files[w->file_count++] = lsn;
        at += n + 1;
    }
    w->reader.result.files = w->file_count;
    submit_path(w, STORE_WAL_STEP_FSYNC_ROOT, RQ_DISK_FSYNC_DIR, "", 0);
}

static void recovery_finish(struct store_wal *w) {
    struct store_wal_reader *rd = &w->reader;
    w->next_lsn = w->file_count > 0 ? rd->expected_lsn : 1;
    w->durable_lsn = w->next_lsn - 1;
    rd->result.next_lsn = w->next_lsn;
    w->state = STORE_WAL_READY;
    RQ_INFO("wal: recovered %llu records (LSN %llu..%llu) from %u files, next LSN %llu",
            (unsigned long long)rd->result.records, (unsigned long long)rd->result.first_lsn,
            (unsigned long long)(w->next_lsn - 1), (unsigned)w->file_count,
            (unsigned long long)w->next_lsn);
    struct store_wal_recovery res = rd->result;
    w->cb.recovered(w->cb_arg, &res);
}

/* Opens files[reader.file_index], or finishes. */
static void recovery_next_file(struct store_wal *w) {
    struct store_wal_reader *rd = &w->reader;
    if (rd->file_index == w->file_count) {
        recovery_finish(w);
        return;
    }
    uint64_t lsn = w->files[rd->file_index];
    if (rd->file_index == 0) {
        rd->expected_lsn = lsn;
    } else if (lsn != rd->expected_lsn) {
        fail_corrupt(w, lsn, 0,
                     lsn > rd->expected_lsn
                         ? "LSN gap: the previous file ends before this file's first LSN "
                           "(a file is missing)"
                         : "LSN overlap: the previous file ends after this file's first LSN");
        return;
    }
    char path[STORE_WAL_PATH_SIZE];
    store_wal_path(lsn, path);
    submit_path(w, STORE_WAL_STEP_R_OPEN, RQ_DISK_OPEN, path, 0);
}

static int reading_last_file(const struct store_wal *w) {
    return w->reader.file_index + 1 == w->file_count;
}

/* The current file is read up to valid_end, which is all of it now. */
static void recovery_file_done(struct store_wal *w, uint64_t valid_end) {
    struct store_wal_reader *rd = &w->reader;
    if (reading_last_file(w)) {
        w->file = rd->handle;
        w->file_size = valid_end;
        rd->handle = -1;
        rd->file_index++;
        recovery_finish(w);
        return;
    }
    submit_file(w, STORE_WAL_STEP_R_CLOSE, RQ_DISK_CLOSE, rd->handle, 0, NULL, 0);
}

static void recovery_read_more(struct store_wal *w) {
    struct store_wal_reader *rd = &w->reader;
    uint64_t unread = rd->size - rd->base - rd->fill;
    RQ_ASSERT(unread > 0);
    RQ_ASSERT(rd->fill < w->mem_size);
    size_t len = w->mem_size - rd->fill;
    if (len > unread) len = (size_t)unread;
    submit_file(w, STORE_WAL_STEP_R_READ, RQ_DISK_PREAD, rd->handle, rd->base + rd->fill,
                w->mem + rd->fill, len);
}

static void replay_one(void *arg, const struct store_wal_record *rec) {
    struct store_wal *w = arg;
    struct store_wal_reader *rd = &w->reader;
    if (rd->result.records == 0) rd->result.first_lsn = rec->lsn;
    rd->result.records++;
    w->cb.replay(w->cb_arg, rec);
}

/* The whole rest of the last file, from rd->base, is in mem and is not a valid batch. */
static void recovery_tail(struct store_wal *w) {
    struct store_wal_reader *rd = &w->reader;
    uint64_t lsn = w->files[rd->file_index];
    const char *why = NULL;
    if (store_wal_tail_check(w->mem, rd->fill, rd->expected_lsn, &why) != 0) {
        fail_corrupt(w, lsn, rd->base, why);
        return;
    }
    char path[STORE_WAL_PATH_SIZE];
    store_wal_path(lsn, path);
    RQ_WARN("wal: %s: torn tail of %llu bytes at byte offset %llu (an unsynced batch cut by a "
            "crash) -> truncating",
            path, (unsigned long long)rd->fill, (unsigned long long)rd->base);
    rd->result.torn_bytes = rd->fill;
    rd->result.torn_offset = rd->base;
    submit_file(w, STORE_WAL_STEP_R_TRUNCATE, RQ_DISK_TRUNCATE, rd->handle, rd->base, NULL, 0);
}

/* Validates what mem holds, replays it, and decides the next step. */
static void recovery_scan(struct store_wal *w) {
    struct store_wal_reader *rd = &w->reader;
    uint64_t lsn = w->files[rd->file_index];
    struct store_wal_scan s;
    store_wal_scan(w->mem, rd->fill, rd->expected_lsn, replay_one, w, &s);
    rd->expected_lsn = s.next_lsn;
    if (s.valid_size > 0) { /* keep only what is not yet validated */
        memmove(w->mem, w->mem + s.valid_size, rd->fill - s.valid_size);
        rd->base += s.valid_size;
        rd->fill -= s.valid_size;
    }
    int at_end = rd->base + rd->fill == rd->size;
    switch (s.stop) {
    case STORE_WAL_SCAN_END:
        if (at_end)
            recovery_file_done(w, rd->base);
        else
            recovery_read_more(w);
        return;
    case STORE_WAL_SCAN_INCOMPLETE:
        if (s.batch_size > w->mem_size) {
            char path[STORE_WAL_PATH_SIZE];
            store_wal_path(lsn, path);
            RQ_ERROR("wal: %s: batch at byte offset %llu claims %zu bytes, more than the %zu "
                     "bytes of memory recovery was given -> refusing to recover",
                     path, (unsigned long long)rd->base, s.batch_size, w->mem_size);
            fail(w, RQ_ETOOBIG);
        } else if (!at_end) {
            recovery_read_more(w);
        } else if (!reading_last_file(w)) {
            fail_corrupt(w, lsn, rd->base, "a file before the last ends inside a batch");
        } else {
            recovery_tail(w);
        }
        return;
    case STORE_WAL_SCAN_INVALID:
        /* Only a tail of zero bytes could still be torn; that needs the whole rest in memory. */
        if (!reading_last_file(w) || rd->size - rd->base > w->mem_size) {
            fail_corrupt(w, lsn, rd->base, s.why);
        } else if (!at_end) {
            recovery_read_more(w);
        } else {
            recovery_tail(w);
        }
        return;
    }
    RQ_UNREACHABLE();
}

static void on_recovery_step(struct store_wal *w, enum store_wal_step step,
                             const struct rq_disk_req *req) {
    struct store_wal_reader *rd = &w->reader;
    char path[STORE_WAL_PATH_SIZE] = WAL_DIR;
    if (rd->file_index < w->file_count) store_wal_path(w->files[rd->file_index], path);
    if (req->result < 0) {
        const char *what = req->path[0] ? req->path : path;
        if (step == STORE_WAL_STEP_FSYNC_ROOT) what = "the data directory";
        fail_request(w, step, what, req->result);
        return;
    }
    switch (step) {
    case STORE_WAL_STEP_MKDIR:
        submit_path(w, STORE_WAL_STEP_FSYNC_ROOT, RQ_DISK_FSYNC_DIR, "", 0);
        break;
    case STORE_WAL_STEP_FSYNC_ROOT:
        submit_path(w, STORE_WAL_STEP_FSYNC_WAL, RQ_DISK_FSYNC_DIR, WAL_DIR, 0);
        break;
    case STORE_WAL_STEP_FSYNC_WAL: recovery_next_file(w); break;
    case STORE_WAL_STEP_R_OPEN:
        rd->handle = (int32_t)req->result;
        rd->size = req->size;
        rd->base = 0;
        rd->fill = 0;
        /* What the reads below see may be only in the page cache: make it durable first. */
        submit_file(w, STORE_WAL_STEP_R_FSYNC, RQ_DISK_FSYNC, rd->handle, 0, NULL, 0);
        break;
    case STORE_WAL_STEP_R_FSYNC:
        if (rd->size == 0 && !reading_last_file(w)) {
            fail_corrupt(w, w->files[rd->file_index], 0, "an empty file that is not the last");
        } else if (rd->size == 0) {
            recovery_file_done(w, 0);
        } else {
            recovery_read_more(w);
        }
        break;
    case STORE_WAL_STEP_R_READ:
        if ((size_t)req->result != req->len) { /* the file shrank under us */
            RQ_ERROR("wal: %s: short read at byte offset %llu -> WAL failed", path,
                     (unsigned long long)(rd->base + rd->fill));
            fail(w, RQ_EIO);
            return;
        }
        rd->fill += req->len;
        rd->result.bytes_read += req->len;
        recovery_scan(w);
        break;
    case STORE_WAL_STEP_R_TRUNCATE:
        submit_file(w, STORE_WAL_STEP_R_TRUNC_FSYNC, RQ_DISK_FSYNC, rd->handle, 0, NULL, 0);
        break;
    case STORE_WAL_STEP_R_TRUNC_FSYNC: recovery_file_done(w, rd->base); break;
    case STORE_WAL_STEP_R_CLOSE:
        rd->handle = -1;
        rd->file_index++;
        recovery_next_file(w);
        break;
    default: RQ_UNREACHABLE();
    }
}

/* ---- appends and batches ------------------------------------------------------------------- */

static int trim_due(const struct store_wal *w) {
    return w->file_count >= 2 && w->files[1] <= w->trim_lsn;
}

static void start_unlink(struct store_wal *w) {
    char path[STORE_WAL_PATH_SIZE];
    store_wal_path(w->files[0], path);
    RQ_INFO("wal: deleting %s: every record in it is below the trim LSN %llu", path,
            (unsigned long long)w->trim_lsn);
    submit_path(w, STORE_WAL_STEP_T_UNLINK, RQ_DISK_UNLINK, path, 0);
}

/* Seals a batch's header (count, size, LSN, CRC): from now on it takes no more appends. */
static void batch_seal(struct store_wal_batch *b) {
    RQ_ASSERT(b->count > 0);
    RQ_ASSERT(!b->sealed);
    uint8_t *p = b->buf;
    uint32_t body_size = b->size - STORE_WAL_BATCH_HEADER_SIZE;
    rq_put_u32(p, STORE_WAL_MAGIC);
    rq_put_u16(p + 4, STORE_WAL_VERSION);
    rq_put_u16(p + 6, 0);
    rq_put_u32(p + 12, body_size);
    rq_put_u64(p + 16, b->first_lsn);
    rq_put_u32(p + 24, b->count);
    rq_put_u32(p + 28, 0);
    rq_put_u32(p + CRC_OFFSET, batch_crc(p, body_size, body_size));
    b->sealed = 1;
}

/* The flight batch's PWRITE at the end of the file and its FSYNC, back to back: the environment
 * runs them in this order (io.h), so the disk goes from the write to the sync without waiting
 * for this node. */
static void start_write(struct store_wal *w) {
    struct store_wal_batch *b = flight_batch(w);
    RQ_ASSERT(w->flight);
    RQ_ASSERT(b->sealed);
    RQ_ASSERT(w->req_count == 0);
    RQ_ASSERT(!w->write_voided);
    submit_file(w, STORE_WAL_STEP_W_WRITE, RQ_DISK_PWRITE, w->file, w->file_size, b->buf, b->size);
    submit_file(w, STORE_WAL_STEP_W_FSYNC, RQ_DISK_FSYNC, w->file, 0, NULL, 0);
}

static void start_create(struct store_wal *w) {
    char path[STORE_WAL_PATH_SIZE];
    store_wal_path(flight_batch(w)->first_lsn, path);
    submit_path(w, STORE_WAL_STEP_W_OPEN, RQ_DISK_OPEN, path, RQ_DISK_CREATE);
}

/* The fill batch becomes the flight batch and its write starts, rolling the file if due. The
 * buffer after it, which held the batch before the previous one (reported and emptied), fills. */
static void start_batch(struct store_wal *w) {
    struct store_wal_batch *b = fill_batch(w);
    RQ_ASSERT(!w->flight);
    RQ_ASSERT(b->count > 0);
    RQ_ASSERT(b->size <= w->config.batch_bytes_max);
    RQ_ASSERT(b->count <= w->config.batch_records_max);
    RQ_ASSERT(b->first_lsn == w->durable_lsn + 1);
    if (!b->sealed) batch_seal(b);
    w->fill_index = (w->fill_index + 1) % STORE_WAL_BUFFERS;
    w->flight = 1;
    RQ_ASSERT(flight_batch(w) == b);
    RQ_ASSERT(fill_batch(w)->count == 0); /* three buffers: never the one being reported */
    RQ_ASSERT(!fill_batch(w)->sealed);
    int roll = w->file >= 0 && w->file_size >= w->config.file_bytes_max;
    if (roll && w->file_count == STORE_WAL_FILES_MAX) {
        if (!w->roll_postponed) {
            RQ_WARN("wal: %d files exist -> not rolling; the current file grows until a trim",
                    STORE_WAL_FILES_MAX);
        }
        w->roll_postponed = 1;
        roll = 0;
    }
    RQ_DEBUG("wal: writing batch LSN %llu..%llu (%u records, %u bytes)%s",
             (unsigned long long)b->first_lsn, (unsigned long long)(b->first_lsn + b->count - 1),
             (unsigned)b->count, (unsigned)b->size, roll || w->file < 0 ? " to a new file" : "");
    if (roll) {
        submit_file(w, STORE_WAL_STEP_W_CLOSE, RQ_DISK_CLOSE, w->file, 0, NULL, 0);
    } else if (w->file < 0) {
        start_create(w);
    } else {
        start_write(w);
    }
}

/* Starts the next request if none is in flight: a due trim first, then the next batch. */
static void pump(struct store_wal *w) {
    if (w->state != STORE_WAL_READY || w->req_count != 0 || w->reporting) return;
    if (trim_due(w)) {
        start_unlink(w);
        return;
    }
    if (w->disk_full) return; /* the stalled request waits for store_wal_tick */
    RQ_ASSERT(!w->flight);    /* a batch in flight has a request in flight, or is stalled */
    if (fill_batch(w)->count == 0) return;
    start_batch(w);
}

int store_wal_append(struct store_wal *w, const struct store_wal_record *rec, uint64_t *lsn) {
    RQ_ASSERT(w->state == STORE_WAL_READY || w->state == STORE_WAL_FAILED);
    if (w->state == STORE_WAL_FAILED) return w->err;
    RQ_ASSERT(rec->kind == STORE_WAL_ENTRY || rec->kind == STORE_WAL_TRUNCATE);
    if (rec->kind == STORE_WAL_TRUNCATE) RQ_ASSERT(rec->payload_size == 0);
    if (rec->payload_size > 0) RQ_ASSERT(rec->payload != NULL);
    if (rec->payload_size > w->config.payload_bytes_max) return RQ_ETOOBIG;
    struct store_wal_batch *b = fill_batch(w);
    uint32_t need = STORE_WAL_RECORD_HEADER_SIZE + rec->payload_size;
    if (w->disk_full || b->sealed) {
        w->stats.busy++;
        return RQ_EBUSY;
    }
    if (b->count == w->config.batch_records_max || b->size + need > w->config.batch_bytes_max) {
        /* Full: seal it now, while the disk works, rather than when its turn comes. */
        batch_seal(b);
        w->stats.busy++;
        return RQ_EBUSY;
    }
    RQ_ASSERT(w->next_lsn < UINT64_MAX);
    if (b->count == 0) b->first_lsn = w->next_lsn;
    RQ_ASSERT(b->first_lsn + b->count == w->next_lsn); /* LSNs are consecutive in a batch */
    uint8_t *p = b->buf + b->size;
    rq_put_u64(p, rec->group_id);
    rq_put_u64(p + 8, rec->term);
    rq_put_u64(p + 16, rec->index);
    p[24] = (uint8_t)rec->kind;
    p[25] = p[26] = p[27] = 0;
    rq_put_u32(p + 28, rec->payload_size);
    if (rec->payload_size > 0) memcpy(p + 32, rec->payload, rec->payload_size);
    b->size += need;
    b->count++;
    if (lsn != NULL) *lsn = w->next_lsn;
    w->next_lsn++;
    pump(w);
    return 0;
}

/* Calls `durable` for each record of b, in order. */
static void batch_report(struct store_wal *w, const struct store_wal_batch *b) {
    struct rq_reader r;
    rq_reader_init(&r, b->buf + STORE_WAL_BATCH_HEADER_SIZE, b->size - STORE_WAL_BATCH_HEADER_SIZE);
    for (uint32_t i = 0; i < b->count; i++) {
        struct store_wal_durable ev = {0};
        uint8_t kind = 0;
        const uint8_t *skip;
        rq_read_u64(&r, &ev.record.group_id);
        rq_read_u64(&r, &ev.record.term);
        rq_read_u64(&r, &ev.record.index);
        rq_read_u8(&r, &kind);
        rq_read_bytes(&r, 3, &skip);
        rq_read_u32(&r, &ev.record.payload_size);
        rq_read_bytes(&r, ev.record.payload_size, &ev.record.payload);
        RQ_ASSERT(r.err == 0); /* we encoded it */
        ev.record.kind = (enum store_wal_kind)kind;
        ev.record.lsn = b->first_lsn + i;
        ev.lsn_first = ev.lsn_last = ev.record.lsn;
        w->cb.durable(w->cb_arg, &ev);
    }
}

/* The flight batch is durable: the next batch's write starts first (the disk need not wait for
 * the callbacks), then each record is reported, in order, from its buffer, which the three-buffer
 * ring keeps out of the way: the new flight batch and the new fill batch are in the other two. */
static void batch_durable(struct store_wal *w) {
    struct store_wal_batch *b = flight_batch(w);
    RQ_ASSERT(w->flight);
    RQ_ASSERT(w->req_count == 0); /* its FSYNC (and FSYNC_DIR) completed */
    RQ_ASSERT(!w->file_name_volatile);
    RQ_ASSERT(b->count > 0);
    RQ_ASSERT(b->sealed);
    RQ_ASSERT(b->first_lsn == w->durable_lsn + 1);
    w->flight = 0;
    w->file_size += b->size;
    w->durable_lsn = b->first_lsn + b->count - 1;
    w->stats.batches++;
    w->stats.records += b->count;
    w->stats.bytes += b->size;
    if (b->count > w->stats.batch_records_largest) w->stats.batch_records_largest = b->count;
    if (b->size > w->stats.batch_bytes_largest) w->stats.batch_bytes_largest = b->size;
    pump(w); /* the next batch (or a due trim), before the callbacks */
    RQ_ASSERT(b != fill_batch(w));
    if (w->flight) RQ_ASSERT(b != flight_batch(w));
    w->reporting = 1; /* appends from the callbacks go to the fill buffer and start nothing */
    batch_report(w, b);
    w->reporting = 0;
    b->count = 0;
    b->size = STORE_WAL_BATCH_HEADER_SIZE;
    b->sealed = 0;
    pump(w); /* what the callbacks appended, if nothing is in flight */
}

/* ENOSPC: nothing was written (io.h). Keep the batch; store_wal_tick retries. */
static void stall(struct store_wal *w, enum store_wal_step step) {
    if (!w->disk_full) {
        RQ_WARN("wal: disk full (%s) -> appends get RQ_EBUSY; retrying on tick", step_name(step));
    }
    w->stats.enospc++;
    w->disk_full = 1;
    w->stalled_step = step;
    pump(w); /* a due trim may free space meanwhile (once the voided FSYNC, if any, is back) */
}

/* The batch's FSYNC completed with success. */
static void on_batch_fsync(struct store_wal *w) {
    w->stats.fsyncs++;
    if (w->write_voided) { /* its PWRITE failed with ENOSPC: this FSYNC made nothing durable */
        RQ_ASSERT(w->disk_full);
        w->write_voided = 0;
        pump(w); /* a due trim may run while the write waits for store_wal_tick */
        return;
    }
    if (w->file_name_volatile) { /* a new file: its name must be durable too */
        submit_path(w, STORE_WAL_STEP_W_FSYNC_DIR, RQ_DISK_FSYNC_DIR, WAL_DIR, 0);
        return;
    }
    batch_durable(w);
}

static void on_write_step(struct store_wal *w, enum store_wal_step step,
                          const struct rq_disk_req *req) {
    RQ_ASSERT(w->flight);
    if (step == STORE_WAL_STEP_W_WRITE) { /* its FSYNC follows: both or neither in flight */
        RQ_ASSERT(w->req_count == 1);
        RQ_ASSERT(w->req_steps[w->req_head] == STORE_WAL_STEP_W_FSYNC);
    } else {
        RQ_ASSERT(w->req_count == 0);
    }
    if (step == STORE_WAL_STEP_W_FSYNC) RQ_ASSERT(!w->disk_full || w->write_voided);
    if (req->result == RQ_ENOSPC &&
        (step == STORE_WAL_STEP_W_WRITE || step == STORE_WAL_STEP_W_OPEN)) {
        if (step == STORE_WAL_STEP_W_WRITE) w->write_voided = 1;
        stall(w, step);
        return;
    }
    if (req->result < 0) { /* an FSYNC after a voided write too: fail-stop, never assume */
        char path[STORE_WAL_PATH_SIZE] = WAL_DIR;
        if (w->file_count > 0) store_wal_path(w->files[w->file_count - 1], path);
        fail_request(w, step, req->path[0] ? req->path : path, req->result);
        return;
    }
    if (step == STORE_WAL_STEP_W_WRITE || step == STORE_WAL_STEP_W_OPEN) w->disk_full = 0;
    switch (step) {
    case STORE_WAL_STEP_W_CLOSE:
        w->file = -1;
        start_create(w);
        break;
    case STORE_WAL_STEP_W_OPEN:
        if (req->size != 0) { /* next_lsn is above every LSN on disk: this name must be new */
            RQ_ERROR("wal: %s already exists with %llu bytes -> WAL failed", req->path,
                     (unsigned long long)req->size);
            w->file = (int32_t)req->result;
            fail(w, RQ_ECORRUPT);
            return;
        }
        RQ_ASSERT(w->file_count < STORE_WAL_FILES_MAX);
        RQ_ASSERT(w->file_count == 0 || w->files[w->file_count - 1] < flight_batch(w)->first_lsn);
        w->files[w->file_count++] = flight_batch(w)->first_lsn;
        w->file = (int32_t)req->result;
        w->file_size = 0;
        w->file_name_volatile = 1;
        w->stats.files_created++;
        RQ_INFO("wal: new file %s", req->path);
        start_write(w);
        break;
    case STORE_WAL_STEP_W_WRITE: break; /* its FSYNC, already queued, makes it durable */
    case STORE_WAL_STEP_W_FSYNC: on_batch_fsync(w); break;
    case STORE_WAL_STEP_W_FSYNC_DIR:
        w->stats.dir_fsyncs++;
        w->file_name_volatile = 0;
        batch_durable(w);
        break;
    default: RQ_UNREACHABLE();
    }
}

/* ---- trims --------------------------------------------------------------------------------- */

int store_wal_trim(struct store_wal *w, uint64_t lsn) {
    RQ_ASSERT(w->state == STORE_WAL_READY || w->state == STORE_WAL_FAILED);
    if (w->state == STORE_WAL_FAILED) return w->err;
    if (lsn > w->trim_lsn) w->trim_lsn = lsn;
    pump(w);
    return 0;
}

static void on_trim_step(struct store_wal *w, enum store_wal_step step,
                         const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(w, step, req->path, req->result);
        return;
    }
    if (step == STORE_WAL_STEP_T_UNLINK) {
        RQ_ASSERT(w->file_count >= 2); /* never the current file */
        memmove(&w->files[0], &w->files[1], (w->file_count - 1) * sizeof w->files[0]);
        w->file_count--;
        w->roll_postponed = 0;
        w->stats.files_deleted++;
        /* Durable before the next one goes, so a crash can only bring back the newest deleted. */
        submit_path(w, STORE_WAL_STEP_T_FSYNC_DIR, RQ_DISK_FSYNC_DIR, WAL_DIR, 0);
        return;
    }
    RQ_ASSERT(step == STORE_WAL_STEP_T_FSYNC_DIR);
    w->stats.dir_fsyncs++;
    pump(w);
}

/* ---- events -------------------------------------------------------------------------------- */

void store_wal_tick(struct store_wal *w) {
    if (w->state != STORE_WAL_READY || !w->disk_full || w->req_count != 0) return;
    RQ_ASSERT(w->flight);
    RQ_ASSERT(!w->write_voided);
    RQ_DEBUG("wal: retrying %s after disk full", step_name(w->stalled_step));
    if (w->stalled_step == STORE_WAL_STEP_W_OPEN) {
        start_create(w);
    } else {
        RQ_ASSERT(w->stalled_step == STORE_WAL_STEP_W_WRITE);
        start_write(w);
    }
}

int store_wal_on_disk_done(struct store_wal *w, struct rq_disk_req *req) {
    int ours = 0;
    for (uint32_t i = 0; i < STORE_WAL_REQS_MAX; i++)
        ours |= req == &w->reqs[i];
    if (!ours) return 0;
    RQ_ASSERT(w->req_count > 0);
    RQ_ASSERT(req == &w->reqs[w->req_head]); /* io.h: completed in submission order */
    enum store_wal_step step = w->req_steps[w->req_head];
    RQ_ASSERT(step != STORE_WAL_STEP_NONE);
    w->req_steps[w->req_head] = STORE_WAL_STEP_NONE;
    w->req_head = (w->req_head + 1) % STORE_WAL_REQS_MAX;
    w->req_count--;
    if (w->state == STORE_WAL_FAILED) {
        /* The FSYNC that followed a failed PWRITE: the failure was reported; nothing to do. */
        RQ_ASSERT(step == STORE_WAL_STEP_W_FSYNC);
        return 1;
    }
    if (step <= STORE_WAL_STEP_R_CLOSE) {
        RQ_ASSERT(w->state == STORE_WAL_RECOVERING);
        if (step == STORE_WAL_STEP_LIST)
            on_list(w, req);
        else
            on_recovery_step(w, step, req);
    } else if (step <= STORE_WAL_STEP_W_FSYNC_DIR) {
        RQ_ASSERT(w->state == STORE_WAL_READY);
        on_write_step(w, step, req);
    } else {
        RQ_ASSERT(w->state == STORE_WAL_READY);
        on_trim_step(w, step, req);
    }
    return 1;
}

int store_wal_busy(const struct store_wal *w) {
    int records = 0;
    for (uint32_t i = 0; i < STORE_WAL_BUFFERS; i++)
        records |= w->batches[i].count > 0;
    return w->req_count != 0 || w->disk_full || records || trim_due(w);
}

const struct store_wal_stats *store_wal_stats(const struct store_wal *w) { return &w->stats; }
