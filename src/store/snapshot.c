/* snapshot.c — Raft snapshot files; see snapshot.h for the format and the contract.
 * The store and each reader own one disk request each; the next step always starts from their
 * on_disk_done, so every callback runs from there. */
#include "store/snapshot.h"

#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"

_Static_assert(STORE_SNAPSHOT_HEADER_SIZE == 64, "the header is 64 bytes, as documented");
_Static_assert(STORE_SNAPSHOT_HEADER_CRC_OFFSET + 4 == STORE_SNAPSHOT_HEADER_SIZE,
               "the header CRC is its last field");
_Static_assert(STORE_SNAPSHOT_TRAILER_SIZE == 8, "the trailer is body CRC + end magic");
_Static_assert((int)STORE_SNAPSHOT_PATH_SIZE <= (int)RQ_DISK_PATH_MAX, "paths fit a request");
_Static_assert(STORE_SNAPSHOT_PATH_SIZE == 1 + 16 + 1 + 20 + 5 + 1, "s<16>-<20>.snap + NUL");
_Static_assert(STORE_SNAPSHOT_CONFIG_MAX + STORE_SNAPSHOT_HEADER_SIZE <= STORE_SNAPSHOT_CHUNK_MAX,
               "header and config fit one chunk");
_Static_assert(STORE_SNAPSHOT_DATA_MAX + STORE_SNAPSHOT_CONFIG_MAX + 72 < ((uint64_t)1 << 40),
               "every file offset stays below 2^40");

enum { NAME_SNAP_LEN = 43, NAME_TMP_LEN = 42, NAME_INDEX_AT = 18, NAME_SUFFIX_AT = 38 };

/* ---- pure: header, trailer, names ------------------------------------------------------------ */

uint64_t store_snapshot_file_size(const struct store_snapshot_header *h) {
    RQ_ASSERT(h->config_size <= STORE_SNAPSHOT_CONFIG_MAX);
    RQ_ASSERT(h->data_size <= STORE_SNAPSHOT_DATA_MAX);
    return (uint64_t)STORE_SNAPSHOT_HEADER_SIZE + h->config_size + h->data_size +
           STORE_SNAPSHOT_TRAILER_SIZE;
}

void store_snapshot_encode_header(uint8_t *out, const struct store_snapshot_header *h) {
    memset(out, 0, STORE_SNAPSHOT_HEADER_SIZE);
    rq_put_u32(out + 0, (uint32_t)STORE_SNAPSHOT_MAGIC);
    rq_put_u16(out + 4, STORE_SNAPSHOT_VERSION);
    rq_put_u64(out + 8, h->group_id);
    rq_put_u64(out + 16, h->index);
    rq_put_u64(out + 24, h->term);
    rq_put_u32(out + 32, h->config_size);
    rq_put_u64(out + 40, h->data_size);
    uint32_t crc = rq_crc32c(0, out, STORE_SNAPSHOT_HEADER_CRC_OFFSET);
    rq_put_u32(out + STORE_SNAPSHOT_HEADER_CRC_OFFSET, crc);
}

static int all_zero(const uint8_t *p, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) return 0;
    }
    return 1;
}

static int header_problem(uint64_t *bad_offset, const char **why, uint64_t offset,
                          const char *what) {
    if (bad_offset != NULL) *bad_offset = offset;
    if (why != NULL) *why = what;
    return RQ_ECORRUPT;
}

int store_snapshot_decode_header(const uint8_t *buf, size_t len, struct store_snapshot_header *h,
                                 uint64_t *bad_offset, const char **why) {
    memset(h, 0, sizeof *h);
    if (len < STORE_SNAPSHOT_HEADER_SIZE) {
        header_problem(bad_offset, why, len, "file ends inside the header");
        return RQ_ETRUNC;
    }
    h->group_id = rq_get_u64(buf + 8);
    h->index = rq_get_u64(buf + 16);
    h->term = rq_get_u64(buf + 24);
    h->config_size = rq_get_u32(buf + 32);
    h->data_size = rq_get_u64(buf + 40);
    uint32_t crc = rq_crc32c(0, buf, STORE_SNAPSHOT_HEADER_CRC_OFFSET);
    if (crc != rq_get_u32(buf + STORE_SNAPSHOT_HEADER_CRC_OFFSET))
        return header_problem(bad_offset, why, 0, "header checksum (bytes 0..59) does not match");
    if (rq_get_u32(buf + 0) != (uint32_t)STORE_SNAPSHOT_MAGIC)
        return header_problem(bad_offset, why, 0, "not a snapshot: wrong magic");
    if (rq_get_u16(buf + 4) != STORE_SNAPSHOT_VERSION)
        return header_problem(bad_offset, why, 4, "unknown format version");
    if (!all_zero(buf + 6, 2)) return header_problem(bad_offset, why, 6, "reserved bytes not 0");
    if (h->index == 0) return header_problem(bad_offset, why, 16, "index 0");
    if (h->term == 0) return header_problem(bad_offset, why, 24, "term 0");
    if (h->config_size > STORE_SNAPSHOT_CONFIG_MAX)
        return header_problem(bad_offset, why, 32, "config size above the maximum");
    if (!all_zero(buf + 36, 4)) return header_problem(bad_offset, why, 36, "reserved bytes not 0");
    if (h->data_size > STORE_SNAPSHOT_DATA_MAX)
        return header_problem(bad_offset, why, 40, "data size above the maximum");
    if (!all_zero(buf + 48, 12)) return header_problem(bad_offset, why, 48, "reserved bytes not 0");
    return 0;
}

void store_snapshot_encode_trailer(uint8_t *out, uint32_t body_crc) {
    rq_put_u32(out + 0, body_crc);
    rq_put_u32(out + 4, (uint32_t)STORE_SNAPSHOT_TRAILER_MAGIC);
}

int store_snapshot_decode_trailer(const uint8_t *buf, size_t len, uint32_t *body_crc) {
    *body_crc = 0;
    if (len < STORE_SNAPSHOT_TRAILER_SIZE) return RQ_ETRUNC;
    *body_crc = rq_get_u32(buf + 0);
    if (rq_get_u32(buf + 4) != (uint32_t)STORE_SNAPSHOT_TRAILER_MAGIC) return RQ_ECORRUPT;
    return 0;
}

static void make_path(uint64_t group_id, uint64_t index, const char *suffix, char *path) {
    int n = snprintf(path, STORE_SNAPSHOT_PATH_SIZE, "s%016llx-%020llu%s",
                     (unsigned long long)group_id, (unsigned long long)index, suffix);
    RQ_ASSERT(n == NAME_SUFFIX_AT + (int)strlen(suffix));
    RQ_ASSERT(n < STORE_SNAPSHOT_PATH_SIZE);
}

void store_snapshot_path(uint64_t group_id, uint64_t index, char *path) {
    make_path(group_id, index, ".snap", path);
}

void store_snapshot_tmp_path(uint64_t group_id, uint64_t index, char *path) {
    make_path(group_id, index, ".tmp", path);
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

enum store_snapshot_name_kind store_snapshot_parse_name(const char *name, uint64_t *group_id,
                                                        uint64_t *index) {
    *group_id = 0;
    *index = 0;
    size_t len = 0;
    while (len < STORE_SNAPSHOT_PATH_SIZE && name[len] != '\0')
        len++;
    if (len != NAME_SNAP_LEN && len != NAME_TMP_LEN) return STORE_SNAPSHOT_NAME_OTHER;
    if (name[0] != 's' || name[NAME_INDEX_AT - 1] != '-') return STORE_SNAPSHOT_NAME_OTHER;
    uint64_t group = 0;
    for (size_t i = 1; i < NAME_INDEX_AT - 1; i++) {
        int d = hex_digit(name[i]);
        if (d < 0) return STORE_SNAPSHOT_NAME_OTHER;
        group = group << 4 | (uint64_t)d;
    }
    uint64_t value = 0;
    for (size_t i = NAME_INDEX_AT; i < NAME_SUFFIX_AT; i++) {
        if (name[i] < '0' || name[i] > '9') return STORE_SNAPSHOT_NAME_OTHER;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (value > (UINT64_MAX - d) / 10) return STORE_SNAPSHOT_NAME_OTHER; /* > 2^64 - 1 */
        value = value * 10 + d;
    }
    if (value == 0) return STORE_SNAPSHOT_NAME_OTHER;
    enum store_snapshot_name_kind kind = STORE_SNAPSHOT_NAME_OTHER;
    if (len == NAME_SNAP_LEN && memcmp(name + NAME_SUFFIX_AT, ".snap", 5) == 0)
        kind = STORE_SNAPSHOT_NAME_SNAP;
    if (len == NAME_TMP_LEN && memcmp(name + NAME_SUFFIX_AT, ".tmp", 4) == 0)
        kind = STORE_SNAPSHOT_NAME_TMP;
    if (kind != STORE_SNAPSHOT_NAME_OTHER) {
        *group_id = group;
        *index = value;
    }
    return kind;
}

/* ---- pure: the streaming verifier ------------------------------------------------------------ */

void store_snapshot_verifier_init(struct store_snapshot_verifier *v, uint64_t group_id,
                                  uint8_t *config_out) {
    memset(v, 0, sizeof *v);
    v->group_id = group_id;
    v->config_out = config_out;
}

static int verifier_fail(struct store_snapshot_verifier *v, uint64_t offset, const char *why) {
    RQ_ASSERT(v->err == 0);
    v->err = RQ_ECORRUPT;
    v->err_offset = offset;
    v->err_why = why;
    return v->err;
}

/* Consumes header bytes; decodes the header once all 64 are in. Returns bytes taken or -1. */
static int64_t verifier_head(struct store_snapshot_verifier *v, const uint8_t *data, size_t len) {
    size_t n = STORE_SNAPSHOT_HEADER_SIZE - (size_t)v->pos;
    if (n > len) n = len;
    memcpy(v->head + v->pos, data, n);
    v->pos += n;
    if (v->pos < STORE_SNAPSHOT_HEADER_SIZE) return (int64_t)n;
    uint64_t bad = 0;
    const char *why = NULL;
    if (store_snapshot_decode_header(v->head, sizeof v->head, &v->header, &bad, &why) != 0) {
        verifier_fail(v, bad, why);
        return -1;
    }
    if (v->header.group_id != v->group_id) {
        verifier_fail(v, 8, "group id is not the expected group's");
        return -1;
    }
    v->have_header = 1;
    v->body_end =
        STORE_SNAPSHOT_HEADER_SIZE + (uint64_t)v->header.config_size + v->header.data_size;
    v->file_size = v->body_end + STORE_SNAPSHOT_TRAILER_SIZE;
    return (int64_t)n;
}

/* Consumes config and data bytes into the running CRC (and the config into config_out). */
static size_t verifier_body(struct store_snapshot_verifier *v, const uint8_t *data, size_t len) {
    uint64_t n = v->body_end - v->pos;
    if (n > len) n = len;
    uint64_t config_end = STORE_SNAPSHOT_HEADER_SIZE + (uint64_t)v->header.config_size;
    if (v->config_out != NULL && v->pos < config_end) {
        uint64_t c = config_end - v->pos < n ? config_end - v->pos : n;
        memcpy(v->config_out + (v->pos - STORE_SNAPSHOT_HEADER_SIZE), data, (size_t)c);
    }
    v->crc = rq_crc32c(v->crc, data, (size_t)n);
    v->pos += n;
    return (size_t)n;
}

/* Consumes trailer bytes; checks the trailer once all 8 are in. Returns bytes taken or -1. */
static int64_t verifier_tail(struct store_snapshot_verifier *v, const uint8_t *data, size_t len) {
    uint64_t n = v->file_size - v->pos;
    if (n > len) n = len;
    memcpy(v->tail + (v->pos - v->body_end), data, (size_t)n);
    v->pos += n;
    if (v->pos < v->file_size) return (int64_t)n;
    uint32_t body_crc = 0;
    if (store_snapshot_decode_trailer(v->tail, sizeof v->tail, &body_crc) != 0) {
        verifier_fail(v, v->body_end + 4, "trailer end magic is wrong");
        return -1;
    }
    if (body_crc != v->crc) {
        verifier_fail(v, STORE_SNAPSHOT_HEADER_SIZE,
                      "CRC32C of config and data does not match the trailer's");
        return -1;
    }
    return (int64_t)n;
}

int store_snapshot_verifier_feed(struct store_snapshot_verifier *v, const uint8_t *data,
                                 size_t len) {
    if (v->err != 0) return v->err;
    size_t at = 0;
    /* Each pass consumes at least one byte or fails, so at most len passes. */
    while (at < len) {
        int64_t n;
        if (v->pos < STORE_SNAPSHOT_HEADER_SIZE) {
            n = verifier_head(v, data + at, len - at);
        } else if (v->pos < v->body_end) {
            n = (int64_t)verifier_body(v, data + at, len - at);
        } else if (v->pos < v->file_size) {
            n = verifier_tail(v, data + at, len - at);
        } else {
            return verifier_fail(v, v->file_size, "bytes past the end the header declares");
        }
        if (n < 0) return v->err;
        RQ_ASSERT(n > 0);
        at += (size_t)n;
    }
    return 0;
}

int store_snapshot_verifier_finish(const struct store_snapshot_verifier *v) {
    if (v->err != 0) return v->err;
    if (!v->have_header || v->pos < v->file_size) return RQ_ETRUNC;
    RQ_ASSERT(v->pos == v->file_size);
    return 0;
}

/* ---- store: plumbing ------------------------------------------------------------------------- */

static void submit(struct store_snapshot *s, enum store_snapshot_step step, enum rq_disk_op op) {
    RQ_ASSERT(s->step == STORE_SNAPSHOT_STEP_NONE);
    RQ_ASSERT(step != STORE_SNAPSHOT_STEP_NONE);
    memset(&s->req, 0, sizeof s->req);
    s->req.op = op;
    s->req.file = s->file;
    s->req.user = s->group_id;
    s->step = step;
}

static void submit_go(struct store_snapshot *s) { s->io->disk(s->io->env, &s->req); }

static void submit_path(struct store_snapshot *s, enum store_snapshot_step step, enum rq_disk_op op,
                        const char *path, uint32_t flags) {
    submit(s, step, op);
    size_t n = strlen(path);
    RQ_ASSERT(n < RQ_DISK_PATH_MAX);
    memcpy(s->req.path, path, n + 1);
    s->req.flags = flags;
    submit_go(s);
}

static void submit_file(struct store_snapshot *s, enum store_snapshot_step step, enum rq_disk_op op,
                        uint64_t offset, const void *buf, size_t len) {
    RQ_ASSERT(s->file >= 0);
    RQ_ASSERT(len <= STORE_SNAPSHOT_CHUNK_MAX);
    submit(s, step, op);
    s->req.offset = offset;
    s->req.buf = (void *)buf;
    s->req.len = len;
    submit_go(s);
}

static void submit_list(struct store_snapshot *s, enum store_snapshot_step step) {
    submit(s, step, RQ_DISK_LIST);
    s->req.path[0] = '\0';
    s->req.buf = s->buf;
    s->req.len = sizeof s->buf;
    submit_go(s);
}

static const char *step_name(enum store_snapshot_step step) {
    switch (step) {
    case STORE_SNAPSHOT_STEP_OPEN_LIST:
    case STORE_SNAPSHOT_STEP_CLEAN_LIST: return "list of the data directory for";
    case STORE_SNAPSHOT_STEP_OPEN_OPEN:
    case STORE_SNAPSHOT_STEP_JOB_OPEN: return "open";
    case STORE_SNAPSHOT_STEP_OPEN_READ: return "read";
    case STORE_SNAPSHOT_STEP_OPEN_FSYNC:
    case STORE_SNAPSHOT_STEP_JOB_FSYNC: return "fsync";
    case STORE_SNAPSHOT_STEP_OPEN_CLOSE:
    case STORE_SNAPSHOT_STEP_JOB_CLOSE:
    case STORE_SNAPSHOT_STEP_ABORT_CLOSE: return "close";
    case STORE_SNAPSHOT_STEP_OPEN_FSYNC_DIR:
    case STORE_SNAPSHOT_STEP_CLEAN_FSYNC_DIR:
    case STORE_SNAPSHOT_STEP_JOB_FSYNC_DIR:
    case STORE_SNAPSHOT_STEP_JOB_FSYNC_DIR_OLD: return "fsync of the data directory for";
    case STORE_SNAPSHOT_STEP_CLEAN_UNLINK:
    case STORE_SNAPSHOT_STEP_JOB_UNLINK_OLD:
    case STORE_SNAPSHOT_STEP_ABORT_UNLINK: return "unlink";
    case STORE_SNAPSHOT_STEP_JOB_TRUNCATE: return "truncate";
    case STORE_SNAPSHOT_STEP_JOB_CONFIG:
    case STORE_SNAPSHOT_STEP_JOB_CHUNK:
    case STORE_SNAPSHOT_STEP_JOB_TRAILER:
    case STORE_SNAPSHOT_STEP_JOB_HEADER: return "write";
    case STORE_SNAPSHOT_STEP_JOB_RENAME: return "rename";
    default: return "?";
    }
}

static int result_error(int64_t result) {
    RQ_ASSERT(result < 0);
    return result >= RQ_ERROR_MIN ? (int)result : RQ_EIO;
}

static void fill_current(const struct store_snapshot *s, struct store_snapshot_result *res) {
    res->found = s->have_current;
    if (!s->have_current) return;
    res->meta = s->current;
    res->file_size = store_snapshot_file_size(&s->current);
    res->config = s->config;
}

/* The store cannot go on: report err once (sticky). */
static void fail(struct store_snapshot *s, int err) {
    RQ_ASSERT(err < 0);
    RQ_ASSERT(s->state == STORE_SNAPSHOT_OPENING || s->state == STORE_SNAPSHOT_READY);
    struct store_snapshot_result res = {0};
    res.err = err;
    res.fatal = 1;
    if (s->state == STORE_SNAPSHOT_OPENING) {
        res.event = STORE_SNAPSHOT_OPENED; /* nothing found is to be trusted: found = 0 */
    } else {
        RQ_ASSERT(s->job != STORE_SNAPSHOT_JOB_NONE);
        res.event = STORE_SNAPSHOT_FINISHED;
        fill_current(s, &res);
    }
    s->state = STORE_SNAPSHOT_FAILED;
    s->err = err;
    s->job = STORE_SNAPSHOT_JOB_NONE;
    s->done(s->done_arg, &res);
}

static const char *step_path(const struct store_snapshot *s, enum store_snapshot_step step) {
    if (step == STORE_SNAPSHOT_STEP_JOB_UNLINK_OLD) return s->old_path;
    if (step >= STORE_SNAPSHOT_STEP_JOB_OPEN && step <= STORE_SNAPSHOT_STEP_JOB_RENAME)
        return s->tmp_path;
    if (step == STORE_SNAPSHOT_STEP_ABORT_CLOSE || step == STORE_SNAPSHOT_STEP_ABORT_UNLINK)
        return s->tmp_path;
    if (step == STORE_SNAPSHOT_STEP_CLEAN_UNLINK) return s->req.path;
    return s->path;
}

static void fail_request(struct store_snapshot *s, enum store_snapshot_step step, int err) {
    RQ_ERROR("snapshot: %s %s failed: %s -> snapshot store failed, node must fail-stop",
             step_name(step), step_path(s, step), rq_strerror(err));
    fail(s, err);
}

static void fail_corrupt(struct store_snapshot *s, uint64_t offset, const char *why) {
    RQ_ERROR("snapshot: %s is corrupt at byte offset %llu: %s -> refusing to load it", s->path,
             (unsigned long long)offset, why);
    fail(s, RQ_ECORRUPT);
}

/* ---- store: init and open -------------------------------------------------------------------- */

void store_snapshot_init(struct store_snapshot *s, const struct rq_io *io, uint64_t group_id,
                         store_snapshot_done_fn done, void *done_arg) {
    RQ_ASSERT(io != NULL);
    RQ_ASSERT(done != NULL);
    memset(s, 0, sizeof *s);
    s->io = io;
    s->group_id = group_id;
    s->done = done;
    s->done_arg = done_arg;
    s->state = STORE_SNAPSHOT_NEW;
    s->file = -1;
}

int store_snapshot_current(const struct store_snapshot *s, struct store_snapshot_header *meta) {
    if (s->have_current && meta != NULL) *meta = s->current;
    return s->have_current;
}

void store_snapshot_open(struct store_snapshot *s) {
    RQ_ASSERT(s->state == STORE_SNAPSHOT_NEW);
    s->state = STORE_SNAPSHOT_OPENING;
    submit_list(s, STORE_SNAPSHOT_STEP_OPEN_LIST);
}

/* The next name of the listing in buf, or NULL when all were scanned. */
static const char *list_next(struct store_snapshot *s) {
    if (s->list_done == s->list_count) return NULL;
    RQ_ASSERT(s->list_cursor < sizeof s->buf);
    const char *name = (const char *)s->buf + s->list_cursor;
    const char *end = memchr(name, '\0', sizeof s->buf - s->list_cursor);
    RQ_ASSERT(end != NULL); /* io.h: LIST fills buf with NUL-terminated names */
    s->list_cursor += (size_t)(end - name) + 1;
    s->list_done++;
    return name;
}

static void list_start(struct store_snapshot *s, int64_t count) {
    RQ_ASSERT(count >= 0);
    s->list_count = (uint64_t)count;
    s->list_done = 0;
    s->list_cursor = 0;
}

static void clean_next(struct store_snapshot *s);
static void open_finish(struct store_snapshot *s);

static void on_open_list(struct store_snapshot *s, const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(s, STORE_SNAPSHOT_STEP_OPEN_LIST, result_error(req->result));
        return;
    }
    list_start(s, req->result);
    uint64_t best = 0;
    for (const char *name = list_next(s); name != NULL; name = list_next(s)) {
        uint64_t group = 0, index = 0;
        if (store_snapshot_parse_name(name, &group, &index) != STORE_SNAPSHOT_NAME_SNAP) continue;
        if (group == s->group_id && index > best) best = index;
    }
    if (best == 0) {
        RQ_INFO("snapshot: group %llu has no snapshot", (unsigned long long)s->group_id);
        submit_list(s, STORE_SNAPSHOT_STEP_CLEAN_LIST);
        return;
    }
    s->open_index = best;
    store_snapshot_path(s->group_id, best, s->path);
    submit_path(s, STORE_SNAPSHOT_STEP_OPEN_OPEN, RQ_DISK_OPEN, s->path, 0);
}

static void open_read_next(struct store_snapshot *s) {
    if (s->open_read_offset == s->open_size) {
        /* Whole file read: it must have been exactly the file the header declares. */
        int rc = store_snapshot_verifier_finish(&s->verifier);
        if (rc != 0) {
            fail_corrupt(s, s->open_size, "file ends before the size its header declares");
            return;
        }
        s->current = s->verifier.header;
        s->have_current = 1;
        /* What was read may be only in the page cache (kill -9 before a sync): make it durable. */
        submit_file(s, STORE_SNAPSHOT_STEP_OPEN_FSYNC, RQ_DISK_FSYNC, 0, NULL, 0);
        return;
    }
    uint64_t n = s->open_size - s->open_read_offset;
    if (n > sizeof s->buf) n = sizeof s->buf;
    submit_file(s, STORE_SNAPSHOT_STEP_OPEN_READ, RQ_DISK_PREAD, s->open_read_offset, s->buf,
                (size_t)n);
}

static void on_open_open(struct store_snapshot *s, const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(s, STORE_SNAPSHOT_STEP_OPEN_OPEN, result_error(req->result));
        return;
    }
    s->file = (int32_t)req->result;
    s->open_size = req->size;
    s->open_read_offset = 0;
    store_snapshot_verifier_init(&s->verifier, s->group_id, s->config);
    open_read_next(s);
}

static void on_open_read(struct store_snapshot *s, const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(s, STORE_SNAPSHOT_STEP_OPEN_READ, result_error(req->result));
        return;
    }
    if ((uint64_t)req->result != req->len) {
        fail_corrupt(s, s->open_read_offset + (uint64_t)req->result,
                     "short read: the file shrank while being read");
        return;
    }
    struct store_snapshot_verifier *v = &s->verifier;
    /* The header first, so that a size or name mismatch is reported as such. */
    size_t head = 0;
    if (v->pos < STORE_SNAPSHOT_HEADER_SIZE) {
        head = STORE_SNAPSHOT_HEADER_SIZE - (size_t)v->pos;
        if (head > req->len) head = req->len;
    }
    if (store_snapshot_verifier_feed(v, s->buf, head) != 0) {
        fail_corrupt(s, v->err_offset, v->err_why);
        return;
    }
    if (v->have_header && v->file_size != s->open_size) {
        uint64_t at = v->file_size < s->open_size ? v->file_size : s->open_size;
        fail_corrupt(s, at, "file size differs from the size its header declares");
        return;
    }
    if (v->have_header && v->header.index != s->open_index) {
        fail_corrupt(s, 16, "index in the header differs from the one in the file name");
        return;
    }
    if (store_snapshot_verifier_feed(v, s->buf + head, req->len - head) != 0) {
        fail_corrupt(s, v->err_offset, v->err_why);
        return;
    }
    s->open_read_offset += req->len;
    open_read_next(s);
}

static void on_open_sync(struct store_snapshot *s, enum store_snapshot_step step,
                         const struct rq_disk_req *req) {
    if (req->result < 0) {
        fail_request(s, step, result_error(req->result));
        return;
    }
    switch (step) {
    case STORE_SNAPSHOT_STEP_OPEN_FSYNC:
        submit_file(s, STORE_SNAPSHOT_STEP_OPEN_CLOSE, RQ_DISK_CLOSE, 0, NULL, 0);
        break;
    case STORE_SNAPSHOT_STEP_OPEN_CLOSE:
        s->file = -1;
        /* ... and so may its name (a rename whose FSYNC_DIR never ran). */
        submit_path(s, STORE_SNAPSHOT_STEP_OPEN_FSYNC_DIR, RQ_DISK_FSYNC_DIR, "", 0);
        break;
    case STORE_SNAPSHOT_STEP_OPEN_FSYNC_DIR:
        RQ_INFO("snapshot: %s verified and durable: index %llu term %llu, config %u bytes, data "
                "%llu bytes",
                s->path, (unsigned long long)s->current.index, (unsigned long long)s->current.term,
                (unsigned)s->current.config_size, (unsigned long long)s->current.data_size);
        /* Only now, with the newest durable, may anything older go. */
        submit_list(s, STORE_SNAPSHOT_STEP_CLEAN_LIST);
        break;
    default: RQ_UNREACHABLE();
    }
}

/* Deletes this group's .tmp files and .snap files other than the current one, one at a time. */
static void clean_next(struct store_snapshot *s) {
    for (const char *name = list_next(s); name != NULL; name = list_next(s)) {
        uint64_t group = 0, index = 0;
        enum store_snapshot_name_kind kind = store_snapshot_parse_name(name, &group, &index);
        if (kind == STORE_SNAPSHOT_NAME_OTHER || group != s->group_id) continue;
        if (kind == STORE_SNAPSHOT_NAME_SNAP && s->have_current && index >= s->current.index) {
            /* The current one; a newer one can only have appeared behind our back: keep it. */
            if (index > s->current.index) RQ_WARN("snapshot: %s appeared during open: kept", name);
            continue;
        }
        RQ_INFO("snapshot: deleting %s (%s)", name,
                kind == STORE_SNAPSHOT_NAME_TMP ? "leftover of an unfinished write"
                                                : "older than the current snapshot");
        submit_path(s, STORE_SNAPSHOT_STEP_CLEAN_UNLINK, RQ_DISK_UNLINK, name, 0);
        return;
    }
    if (s->clean_count > 0) {
        submit_path(s, STORE_SNAPSHOT_STEP_CLEAN_FSYNC_DIR, RQ_DISK_FSYNC_DIR, "", 0);
        return;
    }
    open_finish(s);
}

static void on_clean_step(struct store_snapshot *s, enum store_snapshot_step step,
                          const struct rq_disk_req *req) {
    if (req->result < 0 &&
        !(step == STORE_SNAPSHOT_STEP_CLEAN_UNLINK && req->result == RQ_ENOENT)) {
        fail_request(s, step, result_error(req->result));
        return;
    }
    switch (step) {
    case STORE_SNAPSHOT_STEP_CLEAN_LIST:
        list_start(s, req->result);
        s->clean_count = 0;
        clean_next(s);
        break;
    case STORE_SNAPSHOT_STEP_CLEAN_UNLINK:
        s->clean_count++;
        clean_next(s);
        break;
    case STORE_SNAPSHOT_STEP_CLEAN_FSYNC_DIR: open_finish(s); break;
    default: RQ_UNREACHABLE();
    }
}

static void open_finish(struct store_snapshot *s) {
    RQ_ASSERT(s->state == STORE_SNAPSHOT_OPENING);
    RQ_ASSERT(s->file < 0);
    s->state = STORE_SNAPSHOT_READY;
    struct store_snapshot_result res = {0};
    res.event = STORE_SNAPSHOT_OPENED;
    fill_current(s, &res);
    s->done(s->done_arg, &res);
}

/* ---- store: writing and receiving ------------------------------------------------------------ */

static void job_start(struct store_snapshot *s, enum store_snapshot_job job, uint64_t index,
                      uint64_t term, const void *config, uint32_t config_size) {
    RQ_ASSERT(s->state == STORE_SNAPSHOT_READY);
    RQ_ASSERT(s->job == STORE_SNAPSHOT_JOB_NONE);
    RQ_ASSERT(s->step == STORE_SNAPSHOT_STEP_NONE);
    RQ_ASSERT(s->file < 0);
    s->job = job;
    s->job_opened = 0;
    s->job_setup_done = 0;
    s->chunk_given = 0;
    s->next_offset = 0;
    s->finish_requested = 0;
    s->abort_requested = 0;
    s->job_err = 0;
    memset(&s->job_header, 0, sizeof s->job_header);
    s->job_header.group_id = s->group_id;
    s->job_header.index = index;
    s->job_header.term = term;
    s->job_header.config_size = config_size;
    if (config_size > 0) memcpy(s->job_config, config, config_size);
    s->job_crc = rq_crc32c(0, s->job_config, config_size);
    store_snapshot_verifier_init(&s->verifier, s->group_id, s->job_config);
    store_snapshot_path(s->group_id, index, s->path);
    store_snapshot_tmp_path(s->group_id, index, s->tmp_path);
    s->old_path[0] = '\0';
    if (s->have_current) store_snapshot_path(s->group_id, s->current.index, s->old_path);
    RQ_INFO("snapshot: %s %s: index %llu term %llu",
            job == STORE_SNAPSHOT_JOB_WRITE ? "writing" : "receiving", s->tmp_path,
            (unsigned long long)index, (unsigned long long)term);
    submit_path(s, STORE_SNAPSHOT_STEP_JOB_OPEN, RQ_DISK_OPEN, s->tmp_path, RQ_DISK_CREATE);
}

/* The job is over: installed (err 0) or abandoned with its .tmp gone. Reports FINISHED. */
static void job_end(struct store_snapshot *s, int err) {
    RQ_ASSERT(s->job != STORE_SNAPSHOT_JOB_NONE);
    RQ_ASSERT(s->step == STORE_SNAPSHOT_STEP_NONE);
    RQ_ASSERT(s->file < 0);
    struct store_snapshot_result res = {0};
    res.event = STORE_SNAPSHOT_FINISHED;
    res.err = err;
    res.aborted = s->abort_requested && s->job_err == 0;
    if (err == 0) {
        s->current = s->job_header;
        s->have_current = 1;
        memcpy(s->config, s->job_config, s->current.config_size);
        RQ_INFO("snapshot: %s installed: index %llu term %llu", s->path,
                (unsigned long long)s->current.index, (unsigned long long)s->current.term);
    } else {
        RQ_WARN("snapshot: %s abandoned: %s; the previous snapshot stays current", s->tmp_path,
                rq_strerror(err));
    }
    s->job = STORE_SNAPSHOT_JOB_NONE;
    fill_current(s, &res);
    s->done(s->done_arg, &res);
}

/* Abandoning: close the .tmp, unlink it, report. */
static void abort_next(struct store_snapshot *s) {
    if (s->file >= 0) {
        submit_file(s, STORE_SNAPSHOT_STEP_ABORT_CLOSE, RQ_DISK_CLOSE, 0, NULL, 0);
        return;
    }
    if (s->job_opened) {
        submit_path(s, STORE_SNAPSHOT_STEP_ABORT_UNLINK, RQ_DISK_UNLINK, s->tmp_path, 0);
        return;
    }
    job_end(s, s->job_err != 0 ? s->job_err : RQ_ECLOSED);
}

/* Starts the job's next request when none is in flight. */
static void job_pump(struct store_snapshot *s) {
    RQ_ASSERT(s->state == STORE_SNAPSHOT_READY);
    RQ_ASSERT(s->job != STORE_SNAPSHOT_JOB_NONE);
    if (s->step != STORE_SNAPSHOT_STEP_NONE) return; /* its completion pumps again */
    if (s->job_err != 0 || s->abort_requested) {
        abort_next(s);
        return;
    }
    RQ_ASSERT(s->job_setup_done); /* setup always has a request in flight until it is done */
    if (s->chunk_given) {
        submit_file(s, STORE_SNAPSHOT_STEP_JOB_CHUNK, RQ_DISK_PWRITE, s->chunk_offset, s->buf,
                    s->chunk_len);
        return;
    }
    if (!s->finish_requested) return; /* waiting for the caller */
    if (s->job == STORE_SNAPSHOT_JOB_WRITE) {
        uint64_t at = STORE_SNAPSHOT_HEADER_SIZE + (uint64_t)s->job_header.config_size +
                      s->job_header.data_size;
        submit_file(s, STORE_SNAPSHOT_STEP_JOB_TRAILER, RQ_DISK_PWRITE, at, s->trailer_bytes,
                    sizeof s->trailer_bytes);
    } else {
        submit_file(s, STORE_SNAPSHOT_STEP_JOB_FSYNC, RQ_DISK_FSYNC, 0, NULL, 0);
    }
}

/* Errors after which the disk is known to hold nothing that matters: the job is abandoned. */
static int error_is_clean(enum store_snapshot_step step, int err) {
    if (step == STORE_SNAPSHOT_STEP_JOB_OPEN) return err == RQ_EMFILE || err == RQ_ENOSPC;
    if (step == STORE_SNAPSHOT_STEP_JOB_CONFIG || step == STORE_SNAPSHOT_STEP_JOB_CHUNK ||
        step == STORE_SNAPSHOT_STEP_JOB_TRAILER || step == STORE_SNAPSHOT_STEP_JOB_HEADER) {
        return err == RQ_ENOSPC;
    }
    return 0;
}

static void on_job_setup(struct store_snapshot *s, enum store_snapshot_step step,
                         const struct rq_disk_req *req) {
    switch (step) {
    case STORE_SNAPSHOT_STEP_JOB_OPEN:
        s->file = (int32_t)req->result;
        s->job_opened = 1;
        if (s->abort_requested || s->job_err != 0) break;
        submit_file(s, STORE_SNAPSHOT_STEP_JOB_TRUNCATE, RQ_DISK_TRUNCATE, 0, NULL, 0);
        return;
    case STORE_SNAPSHOT_STEP_JOB_TRUNCATE:
        if (s->abort_requested || s->job_err != 0) break;
        if (s->job == STORE_SNAPSHOT_JOB_WRITE && s->job_header.config_size > 0) {
            submit_file(s, STORE_SNAPSHOT_STEP_JOB_CONFIG, RQ_DISK_PWRITE,
                        STORE_SNAPSHOT_HEADER_SIZE, s->job_config, s->job_header.config_size);
            return;
        }
        s->job_setup_done = 1;
        break;
    case STORE_SNAPSHOT_STEP_JOB_CONFIG: s->job_setup_done = 1; break;
    default: RQ_UNREACHABLE();
    }
    job_pump(s);
}

static void on_job_chunk(struct store_snapshot *s) {
    RQ_ASSERT(s->chunk_given);
    s->chunk_given = 0;
    if (s->abort_requested || s->job_err != 0) {
        job_pump(s);
        return;
    }
    struct store_snapshot_result res = {0};
    res.event = STORE_SNAPSHOT_CHUNK_DONE;
    res.offset = s->chunk_reported;
    res.len = s->chunk_len;
    res.next_offset = s->next_offset;
    fill_current(s, &res);
    s->done(s->done_arg, &res);
}

/* After the data: (trailer, header,) fsync, close, rename, fsync dir, unlink the old one, fsync
 * dir. Nothing older is touched before the new name is durable. */
static void on_job_finishing(struct store_snapshot *s, enum store_snapshot_step step) {
    switch (step) {
    case STORE_SNAPSHOT_STEP_JOB_TRAILER:
        submit_file(s, STORE_SNAPSHOT_STEP_JOB_HEADER, RQ_DISK_PWRITE, 0, s->header_bytes,
                    sizeof s->header_bytes);
        break;
    case STORE_SNAPSHOT_STEP_JOB_HEADER:
        submit_file(s, STORE_SNAPSHOT_STEP_JOB_FSYNC, RQ_DISK_FSYNC, 0, NULL, 0);
        break;
    case STORE_SNAPSHOT_STEP_JOB_FSYNC:
        submit_file(s, STORE_SNAPSHOT_STEP_JOB_CLOSE, RQ_DISK_CLOSE, 0, NULL, 0);
        break;
    case STORE_SNAPSHOT_STEP_JOB_CLOSE:
        s->file = -1;
        submit(s, STORE_SNAPSHOT_STEP_JOB_RENAME, RQ_DISK_RENAME);
        memcpy(s->req.path, s->tmp_path, sizeof s->tmp_path);
        memcpy(s->req.path2, s->path, sizeof s->path);
        submit_go(s);
        break;
    case STORE_SNAPSHOT_STEP_JOB_RENAME:
        s->job_opened = 0; /* the .tmp name is gone */
        submit_path(s, STORE_SNAPSHOT_STEP_JOB_FSYNC_DIR, RQ_DISK_FSYNC_DIR, "", 0);
        break;
    case STORE_SNAPSHOT_STEP_JOB_FSYNC_DIR:
        RQ_INFO("snapshot: %s durable", s->path);
        if (s->old_path[0] == '\0') {
            job_end(s, 0);
            break;
        }
        RQ_INFO("snapshot: deleting %s (replaced by %s)", s->old_path, s->path);
        submit_path(s, STORE_SNAPSHOT_STEP_JOB_UNLINK_OLD, RQ_DISK_UNLINK, s->old_path, 0);
        break;
    case STORE_SNAPSHOT_STEP_JOB_UNLINK_OLD:
        submit_path(s, STORE_SNAPSHOT_STEP_JOB_FSYNC_DIR_OLD, RQ_DISK_FSYNC_DIR, "", 0);
        break;
    case STORE_SNAPSHOT_STEP_JOB_FSYNC_DIR_OLD: job_end(s, 0); break;
    default: RQ_UNREACHABLE();
    }
}

static void on_job_step(struct store_snapshot *s, enum store_snapshot_step step,
                        const struct rq_disk_req *req) {
    if (req->result < 0) {
        int err = result_error(req->result);
        if (err == RQ_ENOENT && (step == STORE_SNAPSHOT_STEP_ABORT_UNLINK ||
                                 step == STORE_SNAPSHOT_STEP_JOB_UNLINK_OLD)) {
            RQ_WARN("snapshot: %s was already gone", step_path(s, step));
        } else if (error_is_clean(step, err)) {
            RQ_WARN("snapshot: %s %s failed: %s -> abandoning it", step_name(step), s->tmp_path,
                    rq_strerror(err));
            if (s->job_err == 0) s->job_err = err;
            if (step == STORE_SNAPSHOT_STEP_JOB_CHUNK) s->chunk_given = 0;
            job_pump(s);
            return;
        } else {
            fail_request(s, step, err);
            return;
        }
    }
    switch (step) {
    case STORE_SNAPSHOT_STEP_JOB_OPEN:
    case STORE_SNAPSHOT_STEP_JOB_TRUNCATE:
    case STORE_SNAPSHOT_STEP_JOB_CONFIG: on_job_setup(s, step, req); break;
    case STORE_SNAPSHOT_STEP_JOB_CHUNK: on_job_chunk(s); break;
    case STORE_SNAPSHOT_STEP_ABORT_CLOSE:
        s->file = -1;
        abort_next(s);
        break;
    case STORE_SNAPSHOT_STEP_ABORT_UNLINK:
        s->job_opened = 0;
        abort_next(s);
        break;
    default: on_job_finishing(s, step); break;
    }
}

/* Common checks of the calls that feed a job; 0 when the call may go on. */
static int job_check(const struct store_snapshot *s, enum store_snapshot_job job) {
    RQ_ASSERT(s->state == STORE_SNAPSHOT_READY || s->state == STORE_SNAPSHOT_FAILED);
    if (s->state == STORE_SNAPSHOT_FAILED) return s->err;
    if (s->job != job || s->finish_requested || s->abort_requested) return RQ_EINVAL;
    if (s->job_err != 0) return s->job_err; /* ending: FINISHED is on its way */
    return 0;
}

int store_snapshot_write_begin(struct store_snapshot *s, uint64_t index, uint64_t term,
                               const void *config, uint32_t config_size) {
    RQ_ASSERT(s->state == STORE_SNAPSHOT_READY || s->state == STORE_SNAPSHOT_FAILED);
    if (s->state == STORE_SNAPSHOT_FAILED) return s->err;
    if (s->job != STORE_SNAPSHOT_JOB_NONE) return RQ_EBUSY;
    if (config_size > STORE_SNAPSHOT_CONFIG_MAX) return RQ_ETOOBIG;
    RQ_ASSERT(config_size == 0 || config != NULL);
    /* A new local snapshot covers more of the log than the current one. */
    RQ_ASSERT(index >= 1);
    RQ_ASSERT(term >= 1);
    if (s->have_current) RQ_ASSERT(index > s->current.index);
    if (s->have_current) RQ_ASSERT(term >= s->current.term);
    job_start(s, STORE_SNAPSHOT_JOB_WRITE, index, term, config, config_size);
    return 0;
}

int store_snapshot_write(struct store_snapshot *s, const void *data, size_t len) {
    int rc = job_check(s, STORE_SNAPSHOT_JOB_WRITE);
    if (rc != 0) return rc;
    if (len == 0 || len > STORE_SNAPSHOT_CHUNK_MAX) return RQ_EINVAL;
    if (s->chunk_given) return RQ_EBUSY;
    if (len > STORE_SNAPSHOT_DATA_MAX - s->next_offset) return RQ_ETOOBIG;
    memcpy(s->buf, data, len);
    s->chunk_given = 1;
    s->chunk_len = len;
    s->chunk_reported = s->next_offset;
    s->chunk_offset =
        STORE_SNAPSHOT_HEADER_SIZE + (uint64_t)s->job_header.config_size + s->next_offset;
    s->next_offset += len;
    s->job_crc = rq_crc32c(s->job_crc, s->buf, len);
    job_pump(s);
    return 0;
}

int store_snapshot_write_finish(struct store_snapshot *s) {
    int rc = job_check(s, STORE_SNAPSHOT_JOB_WRITE);
    if (rc != 0) return rc;
    if (s->chunk_given) return RQ_EBUSY;
    s->finish_requested = 1;
    s->job_header.data_size = s->next_offset;
    store_snapshot_encode_header(s->header_bytes, &s->job_header);
    store_snapshot_encode_trailer(s->trailer_bytes, s->job_crc);
    job_pump(s);
    return 0;
}

int store_snapshot_receive_begin(struct store_snapshot *s, uint64_t index, uint64_t term) {
    RQ_ASSERT(s->state == STORE_SNAPSHOT_READY || s->state == STORE_SNAPSHOT_FAILED);
    if (s->state == STORE_SNAPSHOT_FAILED) return s->err;
    if (s->job != STORE_SNAPSHOT_JOB_NONE) return RQ_EBUSY;
    if (index == 0 || term == 0) return RQ_EINVAL;
    if (s->have_current && index <= s->current.index) return RQ_ERANGE;
    job_start(s, STORE_SNAPSHOT_JOB_RECEIVE, index, term, NULL, 0);
    return 0;
}

uint64_t store_snapshot_receive_next_offset(const struct store_snapshot *s) {
    return s->job == STORE_SNAPSHOT_JOB_RECEIVE ? s->next_offset : 0;
}

/* Feeds a received chunk to the verifier; 0, or ends the receive with RQ_ECORRUPT. */
static int receive_verify(struct store_snapshot *s, const void *data, size_t len) {
    struct store_snapshot_verifier *v = &s->verifier;
    uint64_t at = 0;
    const char *why = NULL;
    if (store_snapshot_verifier_feed(v, data, len) != 0) {
        at = v->err_offset;
        why = v->err_why;
    } else if (v->have_header && v->header.index != s->job_header.index) {
        at = 16;
        why = "index differs from the one InstallSnapshot announced";
    } else if (v->have_header && v->header.term != s->job_header.term) {
        at = 24;
        why = "term differs from the one InstallSnapshot announced";
    } else {
        return 0;
    }
    RQ_ERROR("snapshot: received %s is corrupt at byte offset %llu: %s -> abandoning it",
             s->tmp_path, (unsigned long long)at, why);
    s->job_err = RQ_ECORRUPT;
    job_pump(s);
    return RQ_ECORRUPT;
}

int store_snapshot_receive(struct store_snapshot *s, uint64_t offset, const void *data,
                           size_t len) {
    int rc = job_check(s, STORE_SNAPSHOT_JOB_RECEIVE);
    if (rc != 0) return rc;
    if (len == 0 || len > STORE_SNAPSHOT_CHUNK_MAX) return RQ_EINVAL;
    if (offset != s->next_offset) return RQ_ERANGE; /* duplicate, stale or early: ignored */
    if (s->chunk_given) return RQ_EBUSY;
    rc = receive_verify(s, data, len);
    if (rc != 0) return rc;
    memcpy(s->buf, data, len);
    s->chunk_given = 1;
    s->chunk_len = len;
    s->chunk_reported = offset;
    s->chunk_offset = offset;
    s->next_offset += len;
    job_pump(s);
    return 0;
}

int store_snapshot_receive_finish(struct store_snapshot *s) {
    int rc = job_check(s, STORE_SNAPSHOT_JOB_RECEIVE);
    if (rc != 0) return rc;
    if (s->chunk_given) return RQ_EBUSY;
    rc = store_snapshot_verifier_finish(&s->verifier);
    if (rc == RQ_ETRUNC) return RQ_ETRUNC;
    RQ_ASSERT(rc == 0); /* a chunk that failed verification ended the receive already */
    s->job_header = s->verifier.header;
    s->finish_requested = 1;
    job_pump(s);
    return 0;
}

int store_snapshot_abort(struct store_snapshot *s) {
    RQ_ASSERT(s->state == STORE_SNAPSHOT_READY || s->state == STORE_SNAPSHOT_FAILED);
    if (s->state == STORE_SNAPSHOT_FAILED) return s->err;
    if (s->job == STORE_SNAPSHOT_JOB_NONE || s->finish_requested || s->abort_requested)
        return RQ_EINVAL;
    RQ_INFO("snapshot: aborting %s", s->tmp_path);
    s->abort_requested = 1;
    job_pump(s);
    return 0;
}

int store_snapshot_on_disk_done(struct store_snapshot *s, struct rq_disk_req *req) {
    if (req != &s->req) return 0;
    enum store_snapshot_step step = s->step;
    RQ_ASSERT(step != STORE_SNAPSHOT_STEP_NONE);
    s->step = STORE_SNAPSHOT_STEP_NONE;
    switch (step) {
    case STORE_SNAPSHOT_STEP_OPEN_LIST: on_open_list(s, req); break;
    case STORE_SNAPSHOT_STEP_OPEN_OPEN: on_open_open(s, req); break;
    case STORE_SNAPSHOT_STEP_OPEN_READ: on_open_read(s, req); break;
    case STORE_SNAPSHOT_STEP_OPEN_FSYNC:
    case STORE_SNAPSHOT_STEP_OPEN_CLOSE:
    case STORE_SNAPSHOT_STEP_OPEN_FSYNC_DIR: on_open_sync(s, step, req); break;
    case STORE_SNAPSHOT_STEP_CLEAN_LIST:
    case STORE_SNAPSHOT_STEP_CLEAN_UNLINK:
    case STORE_SNAPSHOT_STEP_CLEAN_FSYNC_DIR: on_clean_step(s, step, req); break;
    default: on_job_step(s, step, req); break;
    }
    return 1;
}

/* ---- reader ---------------------------------------------------------------------------------- */

void store_snapshot_reader_init(struct store_snapshot_reader *r, const struct rq_io *io,
                                uint64_t group_id, store_snapshot_done_fn done, void *done_arg) {
    RQ_ASSERT(io != NULL);
    RQ_ASSERT(done != NULL);
    memset(r, 0, sizeof *r);
    r->io = io;
    r->group_id = group_id;
    r->done = done;
    r->done_arg = done_arg;
    r->state = STORE_SNAPSHOT_READER_NEW;
    r->file = -1;
}

static void reader_submit(struct store_snapshot_reader *r, enum store_snapshot_reader_step step,
                          enum rq_disk_op op, uint64_t offset, void *buf, size_t len) {
    RQ_ASSERT(r->step == STORE_SNAPSHOT_READER_STEP_NONE);
    memset(&r->req, 0, sizeof r->req);
    r->req.op = op;
    r->req.file = r->file;
    r->req.user = r->group_id;
    r->req.offset = offset;
    r->req.buf = buf;
    r->req.len = len;
    if (op == RQ_DISK_OPEN) memcpy(r->req.path, r->path, sizeof r->path);
    r->step = step;
    r->io->disk(r->io->env, &r->req);
}

void store_snapshot_reader_open(struct store_snapshot_reader *r, uint64_t index) {
    RQ_ASSERT(r->state == STORE_SNAPSHOT_READER_NEW);
    RQ_ASSERT(r->file < 0);
    RQ_ASSERT(index >= 1);
    r->state = STORE_SNAPSHOT_READER_OPENING;
    r->index = index;
    r->err = 0;
    r->verified = 0;
    store_snapshot_path(r->group_id, index, r->path);
    reader_submit(r, STORE_SNAPSHOT_READER_STEP_OPEN, RQ_DISK_OPEN, 0, NULL, 0);
}

static void reader_report(struct store_snapshot_reader *r, enum store_snapshot_event event,
                          int err) {
    struct store_snapshot_result res = {0};
    res.event = event;
    res.err = err;
    if (event == STORE_SNAPSHOT_READER_OPENED && err == 0) {
        res.found = 1;
        res.meta = r->header;
        res.file_size = r->file_size;
        res.config = r->head + STORE_SNAPSHOT_HEADER_SIZE;
    }
    r->done(r->done_arg, &res);
}

/* The open failed: close the handle if there is one, then report. */
static void reader_open_fail(struct store_snapshot_reader *r, int err) {
    r->err = err;
    if (r->file >= 0) {
        reader_submit(r, STORE_SNAPSHOT_READER_STEP_CLOSE, RQ_DISK_CLOSE, 0, NULL, 0);
        return;
    }
    r->state = STORE_SNAPSHOT_READER_NEW;
    reader_report(r, STORE_SNAPSHOT_READER_OPENED, err);
}

static void reader_corrupt(struct store_snapshot_reader *r, uint64_t offset, const char *why) {
    RQ_ERROR("snapshot: %s is corrupt at byte offset %llu: %s -> not serving it", r->path,
             (unsigned long long)offset, why);
}

static void on_reader_open(struct store_snapshot_reader *r, const struct rq_disk_req *req) {
    if (req->result < 0) {
        reader_open_fail(r, result_error(req->result));
        return;
    }
    r->file = (int32_t)req->result;
    r->file_size = req->size;
    if (r->file_size < STORE_SNAPSHOT_HEADER_SIZE + STORE_SNAPSHOT_TRAILER_SIZE) {
        reader_corrupt(r, r->file_size, "file is shorter than a header and a trailer");
        reader_open_fail(r, RQ_ECORRUPT);
        return;
    }
    uint64_t n = r->file_size < sizeof r->head ? r->file_size : sizeof r->head;
    reader_submit(r, STORE_SNAPSHOT_READER_STEP_HEAD, RQ_DISK_PREAD, 0, r->head, (size_t)n);
}

static void on_reader_head(struct store_snapshot_reader *r, const struct rq_disk_req *req) {
    if (req->result < 0) {
        reader_open_fail(r, result_error(req->result));
        return;
    }
    uint64_t bad = 0;
    const char *why = "short read";
    size_t got = (size_t)req->result;
    int rc = got == req->len ? store_snapshot_decode_header(r->head, got, &r->header, &bad, &why)
                             : RQ_ECORRUPT;
    if (rc == 0 && r->header.group_id != r->group_id) {
        rc = RQ_ECORRUPT;
        bad = 8;
        why = "group id differs from the one in the file name";
    } else if (rc == 0 && r->header.index != r->index) {
        rc = RQ_ECORRUPT;
        bad = 16;
        why = "index differs from the one in the file name";
    } else if (rc == 0 && store_snapshot_file_size(&r->header) != r->file_size) {
        rc = RQ_ECORRUPT;
        uint64_t declared = store_snapshot_file_size(&r->header);
        bad = declared < r->file_size ? declared : r->file_size;
        why = "file size differs from the size its header declares";
    }
    if (rc != 0) {
        reader_corrupt(r, bad, why);
        reader_open_fail(r, RQ_ECORRUPT);
        return;
    }
    r->crc = rq_crc32c(0, r->head + STORE_SNAPSHOT_HEADER_SIZE, r->header.config_size);
    r->crc_next = STORE_SNAPSHOT_HEADER_SIZE + (uint64_t)r->header.config_size;
    reader_submit(r, STORE_SNAPSHOT_READER_STEP_TAIL, RQ_DISK_PREAD,
                  r->file_size - STORE_SNAPSHOT_TRAILER_SIZE, r->tail, sizeof r->tail);
}

/* Whether the running CRC has covered the body; if so, checks it. 0 or RQ_ECORRUPT. */
static int reader_check_body(struct store_snapshot_reader *r) {
    uint64_t body_end = r->file_size - STORE_SNAPSHOT_TRAILER_SIZE;
    if (r->verified || r->crc_next < body_end) return 0;
    RQ_ASSERT(r->crc_next == body_end);
    if (r->crc != r->body_crc) {
        reader_corrupt(r, STORE_SNAPSHOT_HEADER_SIZE,
                       "CRC32C of config and data does not match the trailer's");
        return RQ_ECORRUPT;
    }
    r->verified = 1;
    return 0;
}

static void on_reader_tail(struct store_snapshot_reader *r, const struct rq_disk_req *req) {
    if (req->result < 0) {
        reader_open_fail(r, result_error(req->result));
        return;
    }
    if ((size_t)req->result != req->len ||
        store_snapshot_decode_trailer(r->tail, sizeof r->tail, &r->body_crc) != 0) {
        reader_corrupt(r, r->file_size - 4, "trailer end magic is wrong");
        reader_open_fail(r, RQ_ECORRUPT);
        return;
    }
    if (reader_check_body(r) != 0) { /* only when the data is empty */
        reader_open_fail(r, RQ_ECORRUPT);
        return;
    }
    r->state = STORE_SNAPSHOT_READER_READY;
    reader_report(r, STORE_SNAPSHOT_READER_OPENED, 0);
}

static int reader_start(struct store_snapshot_reader *r, uint64_t file_offset, uint64_t end,
                        uint64_t asked, int is_data, void *buf, size_t len) {
    RQ_ASSERT(file_offset < end);
    RQ_ASSERT(end <= r->file_size);
    if (len > end - file_offset) len = (size_t)(end - file_offset);
    r->read_offset = asked;
    r->read_file_offset = file_offset;
    r->read_is_data = is_data;
    reader_submit(r, STORE_SNAPSHOT_READER_STEP_READ, RQ_DISK_PREAD, file_offset, buf, len);
    return 0;
}

static int reader_check(const struct store_snapshot_reader *r, size_t len) {
    RQ_ASSERT(r->state == STORE_SNAPSHOT_READER_READY || r->state == STORE_SNAPSHOT_READER_FAILED);
    if (r->state == STORE_SNAPSHOT_READER_FAILED) return r->err;
    if (r->step != STORE_SNAPSHOT_READER_STEP_NONE) return RQ_EBUSY;
    if (len == 0 || len > STORE_SNAPSHOT_CHUNK_MAX) return RQ_EINVAL;
    return 0;
}

int store_snapshot_reader_read(struct store_snapshot_reader *r, uint64_t offset, void *buf,
                               size_t len) {
    int rc = reader_check(r, len);
    if (rc != 0) return rc;
    if (offset >= r->file_size) return RQ_ERANGE;
    return reader_start(r, offset, r->file_size, offset, 0, buf, len);
}

int store_snapshot_reader_read_data(struct store_snapshot_reader *r, uint64_t data_offset,
                                    void *buf, size_t len) {
    int rc = reader_check(r, len);
    if (rc != 0) return rc;
    if (data_offset >= r->header.data_size) return RQ_ERANGE;
    uint64_t start = STORE_SNAPSHOT_HEADER_SIZE + (uint64_t)r->header.config_size;
    return reader_start(r, start + data_offset, start + r->header.data_size, data_offset, 1, buf,
                        len);
}

static void on_reader_read(struct store_snapshot_reader *r, const struct rq_disk_req *req) {
    int err = 0;
    if (req->result < 0) {
        err = result_error(req->result);
        RQ_ERROR("snapshot: read of %s failed: %s", r->path, rq_strerror(err));
    } else if ((size_t)req->result != req->len) {
        reader_corrupt(r, r->read_file_offset + (uint64_t)req->result,
                       "short read: the file shrank");
        err = RQ_ECORRUPT;
    } else {
        /* Extend the running CRC by the part of this read that continues it. */
        uint64_t body_end = r->file_size - STORE_SNAPSHOT_TRAILER_SIZE;
        uint64_t from = r->read_file_offset, to = from + req->len;
        if (to > body_end) to = body_end;
        if (!r->verified && from <= r->crc_next && to > r->crc_next) {
            const uint8_t *bytes = (const uint8_t *)req->buf + (r->crc_next - from);
            r->crc = rq_crc32c(r->crc, bytes, (size_t)(to - r->crc_next));
            r->crc_next = to;
            err = reader_check_body(r);
        }
    }
    struct store_snapshot_result res = {0};
    res.event = STORE_SNAPSHOT_READ_DONE;
    res.err = err;
    res.offset = r->read_offset;
    res.len = err == 0 ? req->len : 0;
    res.verified = r->verified;
    if (err != 0) {
        r->state = STORE_SNAPSHOT_READER_FAILED;
        r->err = err;
    }
    r->done(r->done_arg, &res);
}

int store_snapshot_reader_close(struct store_snapshot_reader *r) {
    RQ_ASSERT(r->state != STORE_SNAPSHOT_READER_OPENING);
    RQ_ASSERT(r->state != STORE_SNAPSHOT_READER_CLOSING);
    if (r->file < 0) return RQ_EBADF;
    if (r->step != STORE_SNAPSHOT_READER_STEP_NONE) return RQ_EBUSY;
    r->state = STORE_SNAPSHOT_READER_CLOSING;
    reader_submit(r, STORE_SNAPSHOT_READER_STEP_CLOSE, RQ_DISK_CLOSE, 0, NULL, 0);
    return 0;
}

static void on_reader_close(struct store_snapshot_reader *r, const struct rq_disk_req *req) {
    r->file = -1; /* whatever the result: the handle is not ours any more */
    int was_opening = r->state == STORE_SNAPSHOT_READER_OPENING;
    r->state = STORE_SNAPSHOT_READER_NEW;
    if (was_opening) {
        reader_report(r, STORE_SNAPSHOT_READER_OPENED, r->err);
        return;
    }
    reader_report(r, STORE_SNAPSHOT_READER_CLOSED, req->result < 0 ? result_error(req->result) : 0);
}

int store_snapshot_reader_on_disk_done(struct store_snapshot_reader *r, struct rq_disk_req *req) {
    if (req != &r->req) return 0;
    enum store_snapshot_reader_step step = r->step;
    RQ_ASSERT(step != STORE_SNAPSHOT_READER_STEP_NONE);
    r->step = STORE_SNAPSHOT_READER_STEP_NONE;
    switch (step) {
    case STORE_SNAPSHOT_READER_STEP_OPEN: on_reader_open(r, req); break;
    case STORE_SNAPSHOT_READER_STEP_HEAD: on_reader_head(r, req); break;
    case STORE_SNAPSHOT_READER_STEP_TAIL: on_reader_tail(r, req); break;
    case STORE_SNAPSHOT_READER_STEP_READ: on_reader_read(r, req); break;
    case STORE_SNAPSHOT_READER_STEP_CLOSE: on_reader_close(r, req); break;
    default: RQ_UNREACHABLE();
    }
    return 1;
}
