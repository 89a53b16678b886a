/* Raft snapshot files (src/store/snapshot.c), driven against the simulator's disk through
 * sim/diskrunner.h: requests queue in submission order and the test executes them one at a time,
 * so a run can be stopped and crashed — power loss (unsynced data torn at sectors, names back to
 * their durable state) or process exit (page cache kept) — after any number of completed
 * operations. Expected files are built here, independently, from the documented byte layout.
 * Everything is seeded; nothing reads the wall clock. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/rng.h"
#include "sim/disk.h"
#include "sim/diskrunner.h"
#include "store/snapshot.h"
#include "sim/logcapture.h"
#include "tests/unit/suite_main.h"

enum {
    GROUP = 7,
    CH = STORE_SNAPSHOT_CHUNK_MAX,
    HDR = STORE_SNAPSHOT_HEADER_SIZE,
    TRL = STORE_SNAPSHOT_TRAILER_SIZE,
    CRASH_SEEDS_WRITE = 1000,
    CRASH_SEEDS_RECEIVE = 600,
    STEPS_MAX = 1000000,
};

/* Check records a checkpoint for every passing ck_assert; the crash loops make millions of
 * checks, so these call into Check only when they fail. */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) ck_abort_msg("%s:%d: check failed: %s", __FILE__, __LINE__, #c);                 \
    } while (0)
#define CHECK_MSG(c, ...)                                                                          \
    do {                                                                                           \
        if (!(c)) ck_abort_msg(__VA_ARGS__);                                                       \
    } while (0)
#define CHECK_CMP(a, op, b, type, fmt)                                                             \
    do {                                                                                           \
        type a_ = (type)(a), b_ = (type)(b);                                                       \
        if (!(a_ op b_))                                                                           \
            ck_abort_msg("%s:%d: check failed: %s %s %s (" fmt " vs " fmt ")", __FILE__, __LINE__, \
                         #a, #op, #b, a_, b_);                                                     \
    } while (0)
#define CHECK_UEQ(a, b)   CHECK_CMP(a, ==, b, unsigned long long, "%llu")
#define CHECK_ULT(a, b)   CHECK_CMP(a, <, b, unsigned long long, "%llu")
#define CHECK_ULE(a, b)   CHECK_CMP(a, <=, b, unsigned long long, "%llu")
#define CHECK_UGT(a, b)   CHECK_CMP(a, >, b, unsigned long long, "%llu")
#define CHECK_UGE(a, b)   CHECK_CMP(a, >=, b, unsigned long long, "%llu")
#define CHECK_IEQ(a, b)   CHECK_CMP(a, ==, b, long long, "%lld")
#define CHECK_IGE(a, b)   CHECK_CMP(a, >=, b, long long, "%lld")
#define CHECK_NONNULL(p)  CHECK((p) != NULL)
#define CHECK_NULL(p)     CHECK((p) == NULL)
#define CHECK_STREQ(a, b) CHECK_MSG(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))

/* A snapshot a test writes: its bytes are a pure function of key. */
struct spec {
    uint64_t index;
    uint64_t term;
    uint32_t config_size;
    uint64_t data_size;
    uint64_t key;
};


/* The "byte offset N" of the last error line, or UINT64_MAX. */
static uint64_t logged_offset(void) {
    const char *at = strstr(last_error_line, "byte offset ");
    if (at == NULL) return UINT64_MAX;
    return strtoull(at + strlen("byte offset "), NULL, 10);
}

/* ---- expected files, built from the documented layout ---------------------------------------- */

static uint8_t content_byte(uint64_t key, uint64_t i) {
    return (uint8_t)(rq_mix64(key * 0x9e3779b97f4a7c15ull + i / 8) >> (8 * (i % 8)));
}

static uint64_t spec_file_size(const struct spec *sp) {
    return 72 + (uint64_t)sp->config_size + sp->data_size;
}

/* The whole file, malloc'ed. */
static uint8_t *build_file(const struct spec *sp) {
    uint64_t size = spec_file_size(sp);
    uint8_t *f = calloc(1, (size_t)size);
    CHECK_NONNULL(f);
    memcpy(f, "RQSN", 4);
    rq_put_u16(f + 4, 1);
    rq_put_u64(f + 8, GROUP);
    rq_put_u64(f + 16, sp->index);
    rq_put_u64(f + 24, sp->term);
    rq_put_u32(f + 32, sp->config_size);
    rq_put_u64(f + 40, sp->data_size);
    rq_put_u32(f + 60, rq_crc32c(0, f, 60));
    for (uint64_t i = 0; i < sp->config_size; i++)
        f[64 + i] = content_byte(sp->key ^ 0xc0ffee, i);
    uint8_t *data = f + 64 + sp->config_size;
    for (uint64_t i = 0; i < sp->data_size; i++)
        data[i] = content_byte(sp->key, i);
    uint64_t body_end = 64 + sp->config_size + sp->data_size;
    rq_put_u32(f + body_end, rq_crc32c(0, f + 64, (size_t)(body_end - 64)));
    memcpy(f + body_end + 4, "RQSE", 4);
    return f;
}

static void snap_path(uint64_t index, char *path) {
    snprintf(path, RQ_DISK_PATH_MAX, "s%016llx-%020llu.snap", (unsigned long long)GROUP,
             (unsigned long long)index);
}

static void tmp_path(uint64_t index, char *path) {
    snprintf(path, RQ_DISK_PATH_MAX, "s%016llx-%020llu.tmp", (unsigned long long)GROUP,
             (unsigned long long)index);
}

/* ---- the harness ----------------------------------------------------------------------------- */

enum job_kind { JOB_NONE = 0, JOB_WRITE, JOB_RECEIVE };

struct harness {
    struct diskrunner dr;
    struct store_snapshot s;
    struct store_snapshot_reader rd;
    struct rq_rng work;
    /* store events of this life */
    int opened;
    struct store_snapshot_result opened_res;
    uint8_t opened_config[STORE_SNAPSHOT_CONFIG_MAX];
    int finished;
    struct store_snapshot_result finished_res;
    uint32_t chunk_events;
    /* reader events */
    int rd_opened;
    struct store_snapshot_result rd_open_res;
    int rd_read_done;
    struct store_snapshot_result rd_read_res;
    int rd_closed;
    /* the job driver: gives chunks of job_file as they are acknowledged */
    enum job_kind job;
    struct spec job_spec;
    uint8_t *job_file;
    uint64_t job_given;    /* write: data bytes; receive: file bytes */
    int chunk_outstanding; /* given, not acknowledged */
    int finish_called;
    int hold_finish; /* the test calls finish (or abort) itself */
    int manual;      /* the test gives every chunk itself */
    uint32_t chunk_max;
    int chunk_fixed; /* every chunk chunk_max bytes (but the last), else 1..chunk_max */
    int noise;       /* receive: also send duplicates, stale and early chunks */
    uint32_t noise_rejected;
    /* checked after every step while a job runs (when prev_index != 0) */
    uint64_t prev_index;
};

static void on_event(void *arg, const struct store_snapshot_result *res);

static void on_complete(void *arg, struct rq_disk_req *req) {
    struct harness *h = arg;
    if (store_snapshot_on_disk_done(&h->s, req)) return;
    if (store_snapshot_reader_on_disk_done(&h->rd, req)) return;
    ck_abort_msg("a request nobody claims");
}

static struct harness *harness_new(uint64_t seed) {
    struct harness *h = calloc(1, sizeof *h);
    CHECK_NONNULL(h);
    diskrunner_init(&h->dr, seed, on_complete, h);
    rq_rng_stream(&h->work, seed, 1);
    h->chunk_max = 1000;
    return h;
}

static void harness_free(struct harness *h) {
    diskrunner_free(&h->dr);
    free(h->job_file);
    free(h);
}

/* A new process: fresh memory for the store and the reader. */
static void life_start(struct harness *h) {
    h->opened = 0;
    h->finished = 0;
    h->chunk_events = 0;
    h->rd_opened = 0;
    h->rd_read_done = 0;
    h->rd_closed = 0;
    h->job = JOB_NONE;
    h->chunk_outstanding = 0;
    h->finish_called = 0;
    h->hold_finish = 0;
    h->manual = 0;
    h->prev_index = 0;
    store_snapshot_init(&h->s, &h->dr.io, GROUP, on_event, h);
    store_snapshot_reader_init(&h->rd, &h->dr.io, GROUP, on_event, h);
}

static void crash(struct harness *h, int power_loss) {
    diskrunner_crash(&h->dr, power_loss);
    h->job = JOB_NONE;
}

/* Gives the next chunk, or finishes, when the store is ready for it. */
static void give_noise(struct harness *h, uint64_t total);

static void poke(struct harness *h) {
    if (h->job == JOB_NONE || h->manual || h->finished || h->chunk_outstanding || h->finish_called)
        return;
    const struct spec *sp = &h->job_spec;
    uint64_t total = h->job == JOB_WRITE ? sp->data_size : spec_file_size(sp);
    if (h->job_given == total) {
        if (h->hold_finish) return;
        int rc = h->job == JOB_WRITE ? store_snapshot_write_finish(&h->s)
                                     : store_snapshot_receive_finish(&h->s);
        CHECK_IEQ(rc, 0);
        h->finish_called = 1;
        return;
    }
    uint64_t n = h->chunk_fixed ? h->chunk_max : rq_rng_range(&h->work, 1, h->chunk_max);
    if (n > total - h->job_given) n = total - h->job_given;
    int rc;
    if (h->job == JOB_WRITE) {
        const uint8_t *data = h->job_file + 64 + sp->config_size;
        rc = store_snapshot_write(&h->s, data + h->job_given, (size_t)n);
    } else {
        if (h->noise) give_noise(h, total);
        CHECK_UEQ(store_snapshot_receive_next_offset(&h->s), h->job_given);
        rc = store_snapshot_receive(&h->s, h->job_given, h->job_file + h->job_given, (size_t)n);
    }
    CHECK_IEQ(rc, 0);
    h->job_given += n;
    h->chunk_outstanding = 1;
    if (h->noise && rq_rng_chance(&h->work, RQ_PPM / 3)) {
        /* While it is being written: the next chunk is refused as busy, a repeat as stale. */
        if (h->job_given < total) {
            CHECK_IEQ(store_snapshot_receive(&h->s, h->job_given, h->job_file, 1), RQ_EBUSY);
        }
        CHECK_IEQ(store_snapshot_receive(&h->s, h->job_given - n, h->job_file + h->job_given - n,
                                         (size_t)n),
                  RQ_ERANGE);
        h->noise_rejected += 2;
    }
}

/* Duplicates, stale and early chunks, with garbage bytes: all rejected, nothing written. */
static void give_noise(struct harness *h, uint64_t total) {
    static const uint8_t garbage[16] = {0xde, 0xad, 0xbe, 0xef};
    if (h->job_given > 0 && rq_rng_chance(&h->work, RQ_PPM / 4)) {
        uint64_t back = rq_rng_range(&h->work, 1, h->job_given);
        uint64_t len = back < 16 ? back : 16;
        CHECK_IEQ(store_snapshot_receive(&h->s, h->job_given - back, garbage, len), RQ_ERANGE);
        h->noise_rejected++;
    }
    if (h->job_given + 1 < total && rq_rng_chance(&h->work, RQ_PPM / 8)) {
        CHECK_IEQ(store_snapshot_receive(&h->s, h->job_given + 1, garbage, 1), RQ_ERANGE);
        h->noise_rejected++;
    }
}

/* Checked after every step of a job that replaces prev_index: nothing older is deleted before the
 * new snapshot is durable, and the final name never holds anything but the complete file. */
static void check_step_invariants(struct harness *h) {
    if (h->job == JOB_NONE) return;
    char new_path[RQ_DISK_PATH_MAX];
    snap_path(h->job_spec.index, new_path);
    const uint8_t *data;
    uint64_t size;
    uint64_t expected_size = spec_file_size(&h->job_spec);
    if (sim_disk_image(h->dr.disk, new_path, 0, &data, &size) == 0) {
        CHECK_UEQ(size, expected_size);
        CHECK(memcmp(data, h->job_file, (size_t)size) == 0);
    }
    if (h->prev_index == 0) return;
    char prev_path[RQ_DISK_PATH_MAX];
    snap_path(h->prev_index, prev_path);
    if (sim_disk_exists(h->dr.disk, prev_path, 0)) return;
    CHECK_MSG(sim_disk_image(h->dr.disk, new_path, 1, &data, &size) == 0,
              "the previous snapshot was deleted before the new one's name was durable");
    CHECK_UEQ(size, expected_size);
    CHECK_MSG(memcmp(data, h->job_file, (size_t)size) == 0,
              "the previous snapshot was deleted before the new one's data was durable");
}

/* Steps until nothing is queued or `stop_at` requests have run in all; returns 1 if stopped. */
static int run_to(struct harness *h, uint64_t stop_at) {
    for (uint32_t i = 0; i < STEPS_MAX; i++) {
        poke(h);
        if (h->dr.executed >= stop_at) return 1;
        if (!diskrunner_step(&h->dr)) return 0;
        check_step_invariants(h);
    }
    ck_abort_msg("run did not finish");
    return 0;
}

static void run_idle(struct harness *h) { run_to(h, UINT64_MAX); }

static void job_prepare(struct harness *h, enum job_kind job, const struct spec *sp) {
    free(h->job_file);
    h->job_file = build_file(sp);
    h->job = job;
    h->job_spec = *sp;
    h->job_given = 0;
    h->chunk_outstanding = 0;
    h->finish_called = 0;
    h->finished = 0;
    h->noise_rejected = 0;
    struct store_snapshot_header cur;
    h->prev_index = store_snapshot_current(&h->s, &cur) ? cur.index : 0;
}

static void start_write(struct harness *h, const struct spec *sp) {
    job_prepare(h, JOB_WRITE, sp);
    CHECK_IEQ(
        store_snapshot_write_begin(&h->s, sp->index, sp->term, h->job_file + 64, sp->config_size),
        0);
}

static void start_receive(struct harness *h, const struct spec *sp) {
    job_prepare(h, JOB_RECEIVE, sp);
    CHECK_IEQ(store_snapshot_receive_begin(&h->s, sp->index, sp->term), 0);
}

static struct store_snapshot_result open_store(struct harness *h) {
    life_start(h);
    store_snapshot_open(&h->s);
    run_idle(h);
    CHECK(h->opened);
    return h->opened_res;
}

static struct store_snapshot_result write_snapshot(struct harness *h, const struct spec *sp) {
    start_write(h, sp);
    run_idle(h);
    CHECK(h->finished);
    h->job = JOB_NONE;
    return h->finished_res;
}

/* ---- events ---------------------------------------------------------------------------------- */

/* On FINISHED with err 0: the new snapshot is durable (data and name) and the old one's
 * deletion too; no .tmp name is durable. */
static void check_finished_durable(struct harness *h, const struct store_snapshot_result *res) {
    const struct spec *sp = &h->job_spec;
    CHECK_IEQ(res->found, 1);
    CHECK_UEQ(res->meta.index, sp->index);
    CHECK_UEQ(res->meta.term, sp->term);
    CHECK_UEQ(res->meta.config_size, sp->config_size);
    CHECK_UEQ(res->meta.data_size, sp->data_size);
    CHECK_UEQ(res->file_size, spec_file_size(sp));
    CHECK(memcmp(res->config, h->job_file + 64, sp->config_size) == 0);
    char path[RQ_DISK_PATH_MAX];
    snap_path(sp->index, path);
    const uint8_t *data;
    uint64_t size;
    CHECK_IEQ(sim_disk_image(h->dr.disk, path, 1, &data, &size), 0);
    CHECK_UEQ(size, spec_file_size(sp));
    CHECK(memcmp(data, h->job_file, (size_t)size) == 0);
    tmp_path(sp->index, path);
    CHECK(!sim_disk_exists(h->dr.disk, path, 1));
    if (h->prev_index != 0) {
        snap_path(h->prev_index, path);
        CHECK_MSG(!sim_disk_exists(h->dr.disk, path, 1), "older snapshot still durable");
    }
}

static void on_store_event(struct harness *h, const struct store_snapshot_result *res) {
    switch (res->event) {
    case STORE_SNAPSHOT_OPENED:
        CHECK(!h->opened);
        h->opened = 1;
        h->opened_res = *res;
        if (res->found) {
            memcpy(h->opened_config, res->config, res->meta.config_size);
            h->opened_res.config = h->opened_config;
        }
        break;
    case STORE_SNAPSHOT_CHUNK_DONE:
        CHECK(h->chunk_outstanding);
        CHECK(!h->finished);
        h->chunk_outstanding = 0;
        h->chunk_events++;
        CHECK_UEQ(res->offset + res->len, res->next_offset);
        CHECK_UEQ(res->next_offset, h->job_given);
        break;
    case STORE_SNAPSHOT_FINISHED:
        CHECK(!h->finished);
        h->finished = 1;
        h->finished_res = *res;
        h->finished_res.config = NULL;
        if (res->err == 0) check_finished_durable(h, res);
        break;
    default: ck_abort_msg("unexpected store event %d", (int)res->event);
    }
}

static void on_event(void *arg, const struct store_snapshot_result *res) {
    struct harness *h = arg;
    switch (res->event) {
    case STORE_SNAPSHOT_READER_OPENED:
        CHECK(!h->rd_opened);
        h->rd_opened = 1;
        h->rd_open_res = *res;
        break;
    case STORE_SNAPSHOT_READ_DONE:
        h->rd_read_done = 1;
        h->rd_read_res = *res;
        break;
    case STORE_SNAPSHOT_READER_CLOSED: h->rd_closed = 1; break;
    default: on_store_event(h, res); break;
    }
}

/* ---- raw disk access, bypassing the store ---------------------------------------------------- */

static int64_t raw(struct harness *h, struct rq_disk_req *req) {
    struct sim_disk_faults none = {0};
    sim_disk_execute(h->dr.disk, req, &none, &h->dr.rng);
    return req->result;
}

/* Makes path hold exactly data[0..size), its data durable if sync_data, its name if sync_name. */
static void raw_put_ex(struct harness *h, const char *path, const void *data, size_t size,
                       int sync_data, int sync_name) {
    struct rq_disk_req req = {.op = RQ_DISK_OPEN, .flags = RQ_DISK_CREATE};
    snprintf(req.path, sizeof req.path, "%s", path);
    int64_t file = raw(h, &req);
    CHECK_IGE(file, 0);
    req = (struct rq_disk_req){.op = RQ_DISK_TRUNCATE, .file = (int32_t)file, .offset = 0};
    CHECK_IEQ(raw(h, &req), 0);
    if (size > 0) {
        req = (struct rq_disk_req){
            .op = RQ_DISK_PWRITE, .file = (int32_t)file, .buf = (void *)data, .len = size};
        CHECK_IEQ(raw(h, &req), 0);
    }
    req = (struct rq_disk_req){.op = RQ_DISK_FSYNC, .file = (int32_t)file};
    if (sync_data) CHECK_IEQ(raw(h, &req), 0);
    req = (struct rq_disk_req){.op = RQ_DISK_CLOSE, .file = (int32_t)file};
    CHECK_IEQ(raw(h, &req), 0);
    req = (struct rq_disk_req){.op = RQ_DISK_FSYNC_DIR};
    if (sync_name) CHECK_IEQ(raw(h, &req), 0);
}

static void raw_put(struct harness *h, const char *path, const void *data, size_t size) {
    raw_put_ex(h, path, data, size, 1, 1);
}

/* Counts this group's .snap and .tmp names in the data directory (what LIST shows). */
static void group_files(struct harness *h, uint32_t *snaps, uint32_t *tmps, uint64_t *snap_index) {
    static char names[STORE_SNAPSHOT_CHUNK_MAX];
    struct rq_disk_req req = {.op = RQ_DISK_LIST, .buf = names, .len = sizeof names};
    int64_t count = raw(h, &req);
    CHECK_IGE(count, 0);
    *snaps = 0;
    *tmps = 0;
    *snap_index = 0;
    const char *name = names;
    for (int64_t i = 0; i < count; i++) {
        uint64_t g, index;
        enum store_snapshot_name_kind kind = store_snapshot_parse_name(name, &g, &index);
        if (kind != STORE_SNAPSHOT_NAME_OTHER && g == GROUP) {
            if (kind == STORE_SNAPSHOT_NAME_SNAP) {
                (*snaps)++;
                *snap_index = index;
            } else {
                (*tmps)++;
            }
        }
        name += strlen(name) + 1;
    }
}

/* ---- reading back ---------------------------------------------------------------------------- */

static void reader_open(struct harness *h, uint64_t index) {
    h->rd_opened = 0;
    store_snapshot_reader_open(&h->rd, index);
    run_idle(h);
    CHECK(h->rd_opened);
}

/* One read (file offsets, or data offsets); returns the bytes read and sets *verified. */
static uint64_t reader_read(struct harness *h, int data_mode, uint64_t offset, uint8_t *buf,
                            size_t len, int *verified) {
    h->rd_read_done = 0;
    int rc = data_mode ? store_snapshot_reader_read_data(&h->rd, offset, buf, len)
                       : store_snapshot_reader_read(&h->rd, offset, buf, len);
    CHECK_IEQ(rc, 0);
    CHECK_IEQ(store_snapshot_reader_read(&h->rd, offset, buf, len), RQ_EBUSY);
    run_idle(h);
    CHECK(h->rd_read_done);
    CHECK_IEQ(h->rd_read_res.err, 0);
    CHECK_UEQ(h->rd_read_res.offset, offset);
    if (verified != NULL) *verified = h->rd_read_res.verified;
    return h->rd_read_res.len;
}

static void reader_close(struct harness *h) {
    h->rd_closed = 0;
    CHECK_IEQ(store_snapshot_reader_close(&h->rd), 0);
    run_idle(h);
    CHECK(h->rd_closed);
    CHECK_IEQ(store_snapshot_reader_close(&h->rd), RQ_EBADF);
}

/* Reads snapshot sp back through a reader — the data in order (which re-checks the CRC), then the
 * whole file — in chunks of random sizes up to max_chunk, and compares with `file`. */
static void read_back(struct harness *h, const struct spec *sp, const uint8_t *file,
                      uint32_t max_chunk) {
    reader_open(h, sp->index);
    const struct store_snapshot_result *o = &h->rd_open_res;
    CHECK_IEQ(o->err, 0);
    CHECK_UEQ(o->meta.index, sp->index);
    CHECK_UEQ(o->meta.term, sp->term);
    CHECK_UEQ(o->meta.data_size, sp->data_size);
    CHECK_UEQ(o->file_size, spec_file_size(sp));
    CHECK(memcmp(o->config, file + 64, sp->config_size) == 0);
    uint64_t size = spec_file_size(sp);
    uint8_t *got = malloc((size_t)size);
    CHECK_NONNULL(got);
    int verified = h->rd.verified;
    CHECK_IEQ(verified, sp->data_size == 0);
    for (uint64_t off = 0; off < sp->data_size;) {
        CHECK(!verified);
        size_t n = (size_t)rq_rng_range(&h->work, 1, max_chunk);
        uint64_t got_n = reader_read(h, 1, off, got + off, n, &verified);
        CHECK_UGT(got_n, 0);
        CHECK_ULE(got_n, n);
        off += got_n;
        CHECK_ULE(off, sp->data_size);
    }
    CHECK(verified);
    CHECK(memcmp(got, file + 64 + sp->config_size, (size_t)sp->data_size) == 0);
    for (uint64_t off = 0; off < size;) {
        size_t n = (size_t)rq_rng_range(&h->work, 1, max_chunk);
        off += reader_read(h, 0, off, got + off, n, NULL);
    }
    CHECK(memcmp(got, file, (size_t)size) == 0);
    CHECK_IEQ(store_snapshot_reader_read(&h->rd, size, got, 1), RQ_ERANGE);
    free(got);
    reader_close(h);
}

/* After a successful open: it reports exactly sp (NULL: none), byte for byte, durable, and the
 * group's files are that one .snap and nothing else. */
static void check_loaded(struct harness *h, const struct store_snapshot_result *res,
                         const struct spec *sp) {
    CHECK_IEQ(res->err, 0);
    uint32_t snaps, tmps;
    uint64_t on_disk;
    group_files(h, &snaps, &tmps, &on_disk);
    CHECK_UEQ(tmps, 0);
    if (sp == NULL) {
        CHECK_IEQ(res->found, 0);
        CHECK_UEQ(snaps, 0);
        return;
    }
    CHECK_IEQ(res->found, 1);
    CHECK_UEQ(snaps, 1);
    CHECK_UEQ(on_disk, sp->index);
    CHECK_UEQ(res->meta.group_id, GROUP);
    CHECK_UEQ(res->meta.index, sp->index);
    CHECK_UEQ(res->meta.term, sp->term);
    CHECK_UEQ(res->meta.config_size, sp->config_size);
    CHECK_UEQ(res->meta.data_size, sp->data_size);
    uint8_t *file = build_file(sp);
    CHECK(memcmp(res->config, file + 64, sp->config_size) == 0);
    char path[RQ_DISK_PATH_MAX];
    snap_path(sp->index, path);
    const uint8_t *data;
    uint64_t size;
    CHECK_IEQ(sim_disk_image(h->dr.disk, path, 1, &data, &size), 0); /* durable */
    CHECK_UEQ(size, spec_file_size(sp));
    CHECK(memcmp(data, file, (size_t)size) == 0);
    read_back(h, sp, file, 700);
    free(file);
}

static struct spec random_spec(struct rq_rng *rng, uint64_t min_index, uint64_t min_term) {
    struct spec sp;
    sp.index = min_index + rq_rng_below(rng, 100);
    sp.term = min_term + rq_rng_below(rng, 3);
    sp.config_size = (uint32_t)rq_rng_below(rng, 300);
    sp.data_size = rq_rng_chance(rng, RQ_PPM / 8) ? 0 : rq_rng_below(rng, 4000);
    sp.key = rq_rng_next(rng);
    return sp;
}

/* ---- pure functions -------------------------------------------------------------------------- */

START_TEST(names_are_fixed_width_and_parsed_strictly) {
    char path[STORE_SNAPSHOT_PATH_SIZE];
    store_snapshot_path(GROUP, 42, path);
    CHECK_STREQ(path, "s0000000000000007-00000000000000000042.snap");
    store_snapshot_tmp_path(UINT64_MAX, UINT64_MAX, path);
    CHECK_STREQ(path, "sffffffffffffffff-18446744073709551615.tmp");
    CHECK_IEQ(sim_disk_path_valid(path), 0);
    uint64_t g, i;
    CHECK_IEQ(store_snapshot_parse_name(path, &g, &i), STORE_SNAPSHOT_NAME_TMP);
    CHECK_UEQ(g, UINT64_MAX);
    CHECK_UEQ(i, UINT64_MAX);
    CHECK_IEQ(store_snapshot_parse_name("s00000000000000a7-00000000000000000042.snap", &g, &i),
              STORE_SNAPSHOT_NAME_SNAP);
    CHECK_UEQ(g, 0xa7);
    CHECK_UEQ(i, 42);
    static const char *const others[] = {
        "",
        "hs-0000000000000007.dat",
        "S0000000000000007-00000000000000000042.snap",
        "s00000000000000A7-00000000000000000042.snap", /* uppercase hex */
        "s000000000000007-00000000000000000042.snap",  /* 15 hex digits */
        "s0000000000000007-0000000000000000042.snap",  /* 19 digits */
        "s0000000000000007-00000000000000000000.snap", /* index 0 */
        "s0000000000000007-18446744073709551616.snap", /* 2^64 */
        "s0000000000000007-99999999999999999999.snap",
        "s0000000000000007-00000000000000000042.snap.x",
        "s0000000000000007-00000000000000000042.snaq",
        "s0000000000000007-00000000000000000042.tmpx",
        "s0000000000000007_00000000000000000042.snap",
        "s0000000000000007-0000000000000000004x.snap",
        "s0000000000000007-00000000000000000042.tm",
    };
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
        CHECK_MSG(store_snapshot_parse_name(others[k], &g, &i) == STORE_SNAPSHOT_NAME_OTHER, "%s",
                  others[k]);
    }
}
END_TEST

START_TEST(header_and_trailer_match_the_documented_layout) {
    struct spec sp = {
        .index = 0x0102030405060708ull, .term = 9, .config_size = 3, .data_size = 5, .key = 1};
    uint8_t *file = build_file(&sp);
    struct store_snapshot_header h = {GROUP, sp.index, sp.term, 3, 5};
    uint8_t bytes[HDR];
    store_snapshot_encode_header(bytes, &h);
    CHECK(memcmp(bytes, file, HDR) == 0);
    CHECK(memcmp(bytes, "RQSN\x01\x00\x00\x00\x07\x00", 10) == 0);
    CHECK_UEQ(store_snapshot_file_size(&h), 72 + 3 + 5);
    uint8_t trailer[TRL];
    store_snapshot_encode_trailer(trailer, rq_crc32c(0, file + 64, 8));
    CHECK(memcmp(trailer, file + 72, TRL) == 0);
    uint32_t crc;
    CHECK_IEQ(store_snapshot_decode_trailer(trailer, TRL, &crc), 0);
    CHECK_IEQ(store_snapshot_decode_trailer(trailer, TRL - 1, &crc), RQ_ETRUNC);
    struct store_snapshot_header out;
    CHECK_IEQ(store_snapshot_decode_header(bytes, HDR, &out, NULL, NULL), 0);
    CHECK_UEQ(out.group_id, GROUP);
    CHECK_UEQ(out.index, sp.index);
    CHECK_UEQ(out.term, sp.term);
    CHECK_UEQ(out.config_size, 3);
    CHECK_UEQ(out.data_size, 5);
    CHECK_IEQ(store_snapshot_decode_header(bytes, HDR - 1, &out, NULL, NULL), RQ_ETRUNC);
    /* Every single-bit flip of the header is caught, reported at byte 0 (the CRC). */
    for (int bit = 0; bit < HDR * 8; bit++) {
        bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint64_t bad = 99;
        const char *why = NULL;
        CHECK_IEQ(store_snapshot_decode_header(bytes, HDR, &out, &bad, &why), RQ_ECORRUPT);
        CHECK_UEQ(bad, 0);
        CHECK_NONNULL(why);
        bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    free(file);
}
END_TEST

/* The verifier accepts a file fed in pieces of any size, rejects every single-bit flip at the
 * right region, bytes past the end, and reports a short file as truncated. */
START_TEST(verifier_streams_and_catches_every_bit_flip) {
    struct spec sp = {.index = 3, .term = 2, .config_size = 11, .data_size = 150, .key = 5};
    uint8_t *file = build_file(&sp);
    uint64_t size = spec_file_size(&sp);
    uint8_t config[STORE_SNAPSHOT_CONFIG_MAX];
    struct store_snapshot_verifier v;
    for (size_t piece = 1; piece <= size + 1; piece++) {
        store_snapshot_verifier_init(&v, GROUP, config);
        for (uint64_t at = 0; at < size; at += piece) {
            size_t n = at + piece > size ? (size_t)(size - at) : piece;
            CHECK_IEQ(store_snapshot_verifier_feed(&v, file + at, n), 0);
            if (at + n < size) CHECK_IEQ(store_snapshot_verifier_finish(&v), RQ_ETRUNC);
        }
        CHECK_IEQ(store_snapshot_verifier_finish(&v), 0);
        CHECK(memcmp(config, file + 64, 11) == 0);
    }
    CHECK_IEQ(store_snapshot_verifier_feed(&v, file, 1), RQ_ECORRUPT);
    CHECK_UEQ(v.err_offset, size);
    uint64_t body_end = size - TRL;
    for (uint64_t bit = 0; bit < size * 8; bit++) {
        file[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        store_snapshot_verifier_init(&v, GROUP, NULL);
        int rc = store_snapshot_verifier_feed(&v, file, (size_t)size);
        CHECK_IEQ(rc, RQ_ECORRUPT);
        uint64_t at = bit / 8;
        uint64_t expected = at < 64 ? 0 : at < body_end + 4 ? 64 : body_end + 4;
        CHECK_MSG(v.err_offset == expected, "flip at byte %llu reported at %llu",
                  (unsigned long long)at, (unsigned long long)v.err_offset);
        file[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    store_snapshot_verifier_init(&v, GROUP + 1, NULL);
    CHECK_IEQ(store_snapshot_verifier_feed(&v, file, (size_t)size), RQ_ECORRUPT);
    CHECK_UEQ(v.err_offset, 8);
    free(file);
}
END_TEST

/* ---- basic behaviour ------------------------------------------------------------------------- */

START_TEST(fresh_directory_opens_with_no_snapshot_and_writes_nothing) {
    struct harness *h = harness_new(1);
    struct store_snapshot_result res = open_store(h);
    CHECK_IEQ(res.err, 0);
    CHECK_IEQ(res.found, 0);
    CHECK_IEQ(res.fatal, 0);
    CHECK_UEQ(h->dr.executed, 2); /* LIST, LIST */
    CHECK_UEQ(sim_disk_stats(h->dr.disk)->bytes_written, 0);
    CHECK(!store_snapshot_current(&h->s, NULL));
    harness_free(h);
}
END_TEST

static const uint32_t round_trip_configs[] = {0, 1, STORE_SNAPSHOT_CONFIG_MAX};
static const uint64_t round_trip_sizes[] = {
    0,           1,           CH - 1,  CH,          CH + 1,
    5 * CH + 17, CH - 72 - 1, CH - 72, CH - 72 + 1, /* with config 0: a file of CH - 1, CH, CH + 1
                                                       bytes */
};
enum { ROUND_TRIP_SIZES = sizeof round_trip_sizes / sizeof round_trip_sizes[0] };

/* Write, crash, open, read back: every data size around the chunk size, three config sizes. */
START_TEST(round_trip_sizes_and_configs) {
    uint32_t config_size = round_trip_configs[_i / ROUND_TRIP_SIZES];
    uint64_t data_size = round_trip_sizes[_i % ROUND_TRIP_SIZES];
    struct harness *h = harness_new(100 + (uint64_t)_i);
    CHECK_IEQ(open_store(h).err, 0);
    struct spec sp = {.index = 10,
                      .term = 3,
                      .config_size = config_size,
                      .data_size = data_size,
                      .key = 77 + (uint64_t)_i};
    h->chunk_max = _i % 2 ? CH : (uint32_t)rq_rng_range(&h->work, 1, CH);
    h->chunk_fixed = _i % 2;
    struct store_snapshot_result res = write_snapshot(h, &sp);
    CHECK_IEQ(res.err, 0);
    if (_i % 2) CHECK_UEQ(h->chunk_events, (data_size + CH - 1) / CH);
    if (_i % 2 == 0) CHECK_UGE(h->chunk_events, (data_size + CH - 1) / CH);
    crash(h, _i % 3 == 0);
    res = open_store(h);
    check_loaded(h, &res, &sp);
    CHECK(memcmp(h->s.config, h->job_file + 64, config_size) == 0);
    harness_free(h);
}
END_TEST

START_TEST(chunk_and_config_limits_and_misuse_are_refused) {
    struct harness *h = harness_new(2);
    CHECK_IEQ(open_store(h).err, 0);
    static uint8_t big[CH + 1];
    CHECK_IEQ(store_snapshot_write(&h->s, big, 1), RQ_EINVAL); /* no write begun */
    CHECK_IEQ(store_snapshot_write_finish(&h->s), RQ_EINVAL);
    CHECK_IEQ(store_snapshot_abort(&h->s), RQ_EINVAL);
    CHECK_IEQ(store_snapshot_receive(&h->s, 0, big, 1), RQ_EINVAL);
    CHECK_IEQ(store_snapshot_write_begin(&h->s, 5, 1, big, STORE_SNAPSHOT_CONFIG_MAX + 1),
              RQ_ETOOBIG);
    CHECK_IEQ(store_snapshot_receive_begin(&h->s, 0, 1), RQ_EINVAL);
    CHECK_IEQ(store_snapshot_receive_begin(&h->s, 1, 0), RQ_EINVAL);
    struct spec sp = {.index = 5, .term = 1, .config_size = 0, .data_size = CH, .key = 3};
    job_prepare(h, JOB_WRITE, &sp);
    h->manual = 1;
    CHECK_IEQ(store_snapshot_write_begin(&h->s, 5, 1, big, 0), 0);
    CHECK_IEQ(store_snapshot_write_begin(&h->s, 6, 1, big, 0), RQ_EBUSY);
    CHECK_IEQ(store_snapshot_receive_begin(&h->s, 6, 1), RQ_EBUSY);
    CHECK_IEQ(store_snapshot_receive(&h->s, 0, big, 1), RQ_EINVAL); /* not receiving */
    CHECK_IEQ(store_snapshot_write(&h->s, big, 0), RQ_EINVAL);
    CHECK_IEQ(store_snapshot_write(&h->s, big, CH + 1), RQ_EINVAL);
    CHECK_IEQ(store_snapshot_write(&h->s, h->job_file + 64, CH), 0);
    h->chunk_outstanding = 1;
    h->job_given = CH;
    CHECK_IEQ(store_snapshot_write(&h->s, big, 1), RQ_EBUSY); /* not acknowledged yet */
    CHECK_IEQ(store_snapshot_write_finish(&h->s), RQ_EBUSY);
    CHECK_UEQ(h->dr.queue_count, 1); /* one request at a time */
    run_idle(h);
    CHECK_UEQ(h->chunk_events, 1);
    CHECK_IEQ(store_snapshot_write_finish(&h->s), 0);
    CHECK_IEQ(store_snapshot_write_finish(&h->s), RQ_EINVAL);
    CHECK_IEQ(store_snapshot_abort(&h->s), RQ_EINVAL); /* too late to abort */
    run_idle(h);
    CHECK(h->finished);
    CHECK_IEQ(h->finished_res.err, 0);
    CHECK_UEQ(h->finished_res.meta.data_size, CH);
    CHECK_IEQ(store_snapshot_receive_begin(&h->s, 5, 1), RQ_ERANGE); /* not newer */
    struct rq_disk_req other = {.op = RQ_DISK_FSYNC, .user = GROUP};
    CHECK_IEQ(store_snapshot_on_disk_done(&h->s, &other), 0);
    CHECK_IEQ(store_snapshot_reader_on_disk_done(&h->rd, &other), 0);
    harness_free(h);
}
END_TEST

START_TEST(latest_wins_and_only_one_snapshot_remains) {
    struct harness *h = harness_new(3);
    CHECK_IEQ(open_store(h).err, 0);
    struct spec specs[4];
    for (int k = 0; k < 4; k++) {
        specs[k] = (struct spec){.index = 10 + 7 * (uint64_t)k,
                                 .term = 1 + (uint64_t)k,
                                 .config_size = 20,
                                 .data_size = 900 + 100 * (uint64_t)k,
                                 .key = 40 + (uint64_t)k};
        CHECK_IEQ(write_snapshot(h, &specs[k]).err, 0);
        uint32_t snaps, tmps;
        uint64_t index;
        group_files(h, &snaps, &tmps, &index);
        CHECK_UEQ(snaps, 1);
        CHECK_UEQ(tmps, 0);
        CHECK_UEQ(index, specs[k].index);
        struct store_snapshot_header cur;
        CHECK(store_snapshot_current(&h->s, &cur));
        CHECK_UEQ(cur.index, specs[k].index);
    }
    crash(h, 1);
    struct store_snapshot_result res = open_store(h);
    check_loaded(h, &res, &specs[3]);
    harness_free(h);
}
END_TEST

/* Files left by other lives: two complete snapshots and two .tmp files. Open takes the newest,
 * makes it durable, and deletes the rest only after that. */
START_TEST(open_picks_the_highest_index_and_deletes_older_and_tmp_files) {
    struct harness *h = harness_new(4);
    struct spec older = {.index = 9, .term = 2, .config_size = 5, .data_size = 700, .key = 1};
    struct spec newer = {.index = 12, .term = 3, .config_size = 6, .data_size = 800, .key = 2};
    struct spec oldest = {.index = 2, .term = 1, .config_size = 0, .data_size = 10, .key = 3};
    const struct spec *all[3] = {&older, &newer, &oldest};
    char path[RQ_DISK_PATH_MAX];
    for (int k = 0; k < 3; k++) {
        uint8_t *f = build_file(all[k]);
        snap_path(all[k]->index, path);
        raw_put(h, path, f, (size_t)spec_file_size(all[k]));
        free(f);
    }
    tmp_path(13, path);
    raw_put(h, path, "half", 4);
    tmp_path(5, path);
    raw_put(h, path, "", 0);
    raw_put(h, "s0000000000000008-00000000000000000099.snap", "other group", 11);
    raw_put(h, "s0000000000000008-00000000000000000099.tmp", "other group", 11);
    struct store_snapshot_result res = open_store(h);
    check_loaded(h, &res, &newer);
    CHECK(sim_disk_exists(h->dr.disk, "s0000000000000008-00000000000000000099.snap", 1));
    CHECK(sim_disk_exists(h->dr.disk, "s0000000000000008-00000000000000000099.tmp", 1));
    for (int k = 0; k < 3; k += 2) {
        snap_path(all[k]->index, path);
        CHECK(!sim_disk_exists(h->dr.disk, path, 1)); /* deletion made durable */
    }
    harness_free(h);
}
END_TEST

/* The order of the write's requests, one by one: the older snapshot goes only after the new
 * name's FSYNC_DIR; the FINISHED report only after the deletion's FSYNC_DIR. */
START_TEST(older_is_deleted_only_after_the_new_one_is_durable) {
    struct harness *h = harness_new(5);
    CHECK_IEQ(open_store(h).err, 0);
    struct spec a = {.index = 4, .term = 1, .config_size = 10, .data_size = 2000, .key = 8};
    struct spec b = {.index = 8, .term = 2, .config_size = 12, .data_size = 1500, .key = 9};
    CHECK_IEQ(write_snapshot(h, &a).err, 0);
    h->chunk_max = 1000;
    h->chunk_fixed = 1;
    start_write(h, &b);
    enum rq_disk_op ops[64];
    uint32_t count = 0;
    for (;;) {
        poke(h);
        if (h->dr.queue_count == 0) break;
        CHECK_ULT(count, 64);
        ops[count++] = h->dr.queue[0]->op;
        CHECK(!h->finished);
        diskrunner_step(&h->dr);
        check_step_invariants(h);
    }
    CHECK(h->finished);
    CHECK_IEQ(h->finished_res.err, 0);
    static const enum rq_disk_op expected[] = {
        RQ_DISK_OPEN,      RQ_DISK_TRUNCATE, RQ_DISK_PWRITE, /* config */
        RQ_DISK_PWRITE,    RQ_DISK_PWRITE,                   /* two data chunks */
        RQ_DISK_PWRITE,    RQ_DISK_PWRITE,                   /* trailer, header */
        RQ_DISK_FSYNC,     RQ_DISK_CLOSE,    RQ_DISK_RENAME,
        RQ_DISK_FSYNC_DIR, RQ_DISK_UNLINK,   RQ_DISK_FSYNC_DIR,
    };
    CHECK_UEQ(count, sizeof expected / sizeof expected[0]);
    for (uint32_t k = 0; k < count; k++)
        CHECK_IEQ(ops[k], expected[k]);
    harness_free(h);
}
END_TEST

/* ---- crash consistency ----------------------------------------------------------------------- */

struct crash_stats {
    uint64_t runs;
    uint64_t torn_or_lost;
    uint64_t got_new;
    uint64_t got_prev;
    uint64_t got_none;
    uint64_t noise;
};

/* Opens in a new life and checks it returns one of {prev, new} (or none when there was no prev),
 * new whenever new was reported durable. Returns 1 (new), 0 (prev) or -1 (none). */
static int open_and_check(struct harness *h, const struct spec *prev, const struct spec *next,
                          int must) {
    struct store_snapshot_result res = open_store(h);
    CHECK_MSG(res.err == 0, "open failed after a crash: %s", rq_strerror(res.err));
    int got = !res.found ? -1 : res.meta.index == next->index ? 1 : 0;
    if (got == 0) CHECK_MSG(prev != NULL && res.meta.index == prev->index, "unknown index");
    if (got == -1) CHECK_MSG(prev == NULL, "the previous snapshot vanished");
    if (must != 2) CHECK_MSG(got == must, "open returned %d, must be %d", got, must);
    check_loaded(h, &res, got == 1 ? next : got == 0 ? prev : NULL);
    char path[RQ_DISK_PATH_MAX];
    tmp_path(next->index, path);
    CHECK(!sim_disk_exists(h->dr.disk, path, 1));
    return got;
}

/* One run: life 1 (maybe writes prev, then) writes or receives new, stopped after crash_at
 * requests of that job; a power loss or a kill -9; maybe a life that crashes during open; then a
 * life that opens (checked), a power loss, and a last life whose open must agree (so the open
 * made what it reported durable). Returns the number of requests the job takes in all. */
static uint64_t crash_run(uint64_t seed, int receive, uint64_t crash_at, struct crash_stats *st) {
    struct harness *h = harness_new(seed);
    struct rq_rng spec_rng, chaos;
    rq_rng_stream(&spec_rng, seed, 3);
    rq_rng_stream(&chaos, seed * 1000003u + crash_at, 2);
    int have_prev = seed % 4 != 0;
    struct spec prev = random_spec(&spec_rng, 1, 1);
    struct spec next = random_spec(&spec_rng, prev.index + 1, prev.term);
    const struct spec *prevp = have_prev ? &prev : NULL;

    CHECK_IEQ(open_store(h).err, 0);
    h->chunk_max = (uint32_t)rq_rng_range(&spec_rng, 200, 1500);
    if (have_prev) CHECK_IEQ(write_snapshot(h, &prev).err, 0);
    h->noise = receive;
    if (receive)
        start_receive(h, &next);
    else
        start_write(h, &next);
    uint64_t base = h->dr.executed; /* the job's OPEN is queued, not run yet */
    CHECK_UEQ(h->dr.queue_count, 1);
    int stopped = run_to(h, crash_at == UINT64_MAX ? UINT64_MAX : base + crash_at);
    uint64_t job_ops = h->dr.executed - base;
    CHECK(!h->finished || h->finished_res.err == 0);
    int must = h->finished ? 1 : 2;
    st->noise += h->noise_rejected;
    h->noise = 0;
    crash(h, !stopped || rq_rng_chance(&chaos, RQ_PPM * 3 / 4));

    if (rq_rng_chance(&chaos, RQ_PPM / 2)) {
        /* A life that dies while opening: if it reported, the next must find the same. */
        life_start(h);
        store_snapshot_open(&h->s);
        run_to(h, h->dr.executed + rq_rng_below(&chaos, 14));
        if (h->opened) {
            CHECK_IEQ(h->opened_res.err, 0);
            int got = !h->opened_res.found ? -1 : h->opened_res.meta.index == next.index ? 1 : 0;
            if (must != 2) CHECK_IEQ(got, must);
            if (got == -1) CHECK_NULL(prevp);
            must = got;
        }
        crash(h, rq_rng_chance(&chaos, RQ_PPM / 2));
    }
    int got = open_and_check(h, prevp, &next, must);
    crash(h, 1);
    CHECK_IEQ(open_and_check(h, prevp, &next, got), got);
    crash(h, 0);
    CHECK_IEQ(open_and_check(h, prevp, &next, got), got);

    st->runs++;
    st->got_new += got == 1;
    st->got_prev += got == 0;
    st->got_none += got == -1;
    st->torn_or_lost +=
        sim_disk_stats(h->dr.disk)->torn_writes + sim_disk_stats(h->dr.disk)->lost_writes;
    harness_free(h);
    return job_ops;
}

static void crash_every_op(int receive, uint64_t seeds) {
    struct crash_stats st = {0};
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        uint64_t total = crash_run(seed, receive, UINT64_MAX, &st);
        CHECK_UGT(total, 0);
        for (uint64_t k = 0; k < total; k++)
            crash_run(seed, receive, k, &st);
    }
    CHECK_UGE(st.runs, seeds * 12);
    CHECK_UGT(st.torn_or_lost, 0);
    CHECK_UGT(st.got_new, 0);
    CHECK_UGT(st.got_prev, 0);
    CHECK_UGT(st.got_none, 0);
    if (receive) CHECK_UGT(st.noise, 0);
}

START_TEST(crash_after_every_op_of_a_write_leaves_previous_or_new) {
    crash_every_op(0, CRASH_SEEDS_WRITE);
}
END_TEST

START_TEST(crash_after_every_op_of_a_receive_leaves_previous_or_new) {
    crash_every_op(1, CRASH_SEEDS_RECEIVE);
}
END_TEST

/* ---- corruption ------------------------------------------------------------------------------ */

/* sim_disk_corrupt flips one synced bit of the snapshot: open refuses it, naming the file and the
 * region, and a reader never reports it verified. */
START_TEST(latent_corruption_is_detected_with_its_position_and_never_served) {
    uint32_t regions[3] = {0, 0, 0};
    for (uint64_t seed = 1; seed <= 1000; seed++) {
        logcapture_start();
        struct harness *h = harness_new(seed);
        CHECK_IEQ(open_store(h).err, 0);
        struct rq_rng spec_rng;
        rq_rng_stream(&spec_rng, seed, 3);
        struct spec sp = random_spec(&spec_rng, 1, 1);
        if (seed % 3 == 0) sp.data_size = 0;
        CHECK_IEQ(write_snapshot(h, &sp).err, 0);
        crash(h, seed % 2);
        char path[RQ_DISK_PATH_MAX], expected_path[RQ_DISK_PATH_MAX];
        uint64_t off;
        CHECK_IEQ(sim_disk_corrupt(h->dr.disk, &h->dr.rng, "s0000000000000007-", path, &off), 0);
        snap_path(sp.index, expected_path);
        CHECK_STREQ(path, expected_path);
        struct store_snapshot_result res = open_store(h);
        CHECK_IEQ(res.err, RQ_ECORRUPT);
        CHECK_IEQ(res.fatal, 1);
        CHECK_IEQ(res.found, 0);
        CHECK_IEQ(h->s.state, STORE_SNAPSHOT_FAILED);
        CHECK_NONNULL(strstr(last_error_line, path));
        uint64_t body_end = spec_file_size(&sp) - TRL;
        uint64_t region = off < 64 ? 0 : off < body_end + 4 ? 64 : body_end + 4;
        CHECK_MSG(logged_offset() == region, "flip at %llu, logged: %s", (unsigned long long)off,
                  last_error_line);
        regions[off < 64 ? 0 : off < body_end ? 1 : 2]++;
        CHECK(sim_disk_exists(h->dr.disk, path, 1)); /* nothing deleted */
        CHECK_IEQ(store_snapshot_write_begin(&h->s, sp.index + 1, sp.term, NULL, 0), RQ_ECORRUPT);
        /* A reader refuses it at open (header, trailer) or at the end of an in-order read. */
        reader_open(h, sp.index);
        if (h->rd_open_res.err == 0) {
            uint8_t *buf = malloc((size_t)sp.data_size + 1);
            CHECK(off >= 64 && off < body_end + 4);
            CHECK_UGT(sp.data_size, 0);
            int failed = 0;
            for (uint64_t at = 0; at < sp.data_size && !failed;) {
                h->rd_read_done = 0;
                CHECK_IEQ(store_snapshot_reader_read_data(&h->rd, at, buf, 500), 0);
                run_idle(h);
                CHECK(!h->rd_read_res.verified);
                failed = h->rd_read_res.err != 0;
                at += h->rd_read_res.len;
            }
            CHECK(failed);
            CHECK_IEQ(h->rd_read_res.err, RQ_ECORRUPT);
            CHECK_IEQ(store_snapshot_reader_read_data(&h->rd, 0, buf, 1), RQ_ECORRUPT);
            free(buf);
            reader_close(h);
        } else {
            CHECK_IEQ(h->rd_open_res.err, RQ_ECORRUPT);
            CHECK_IEQ(store_snapshot_reader_close(&h->rd), RQ_EBADF); /* none held */
        }
        harness_free(h);
    }
    CHECK_UGT(regions[0], 0);
    CHECK_UGT(regions[1], 0);
    CHECK_UGT(regions[2], 0);
}
END_TEST

/* The newest file is corrupt and an older valid one is there: no fallback, nothing deleted. */
START_TEST(a_corrupt_newest_snapshot_is_reported_not_skipped) {
    struct harness *h = harness_new(6);
    struct spec old = {.index = 3, .term = 1, .config_size = 4, .data_size = 300, .key = 1};
    struct spec bad = {.index = 5, .term = 2, .config_size = 4, .data_size = 300, .key = 2};
    char old_path[RQ_DISK_PATH_MAX], bad_path[RQ_DISK_PATH_MAX];
    snap_path(old.index, old_path);
    snap_path(bad.index, bad_path);
    uint8_t *f = build_file(&old);
    raw_put(h, old_path, f, (size_t)spec_file_size(&old));
    free(f);
    f = build_file(&bad);
    f[64 + 4 + 100] ^= 0x10; /* a data byte */
    raw_put(h, bad_path, f, (size_t)spec_file_size(&bad));
    free(f);
    raw_put(h, "s0000000000000007-00000000000000000006.tmp", "x", 1);
    struct store_snapshot_result res = open_store(h);
    CHECK_IEQ(res.err, RQ_ECORRUPT);
    CHECK_IEQ(res.found, 0);
    CHECK_IEQ(error_lines, 1);
    CHECK_NONNULL(strstr(last_error_line, bad_path));
    CHECK_UEQ(logged_offset(), 64);
    CHECK(sim_disk_exists(h->dr.disk, old_path, 1));
    CHECK(sim_disk_exists(h->dr.disk, bad_path, 1));
    harness_free(h);
}
END_TEST

/* ---- files the store did not write: a table -------------------------------------------------- */

enum craft {
    CRAFT_EMPTY,
    CRAFT_TEXT,
    CRAFT_ZEROS,
    CRAFT_GARBAGE,
    CRAFT_FIELD,    /* a valid file with one header field changed and the CRC recomputed */
    CRAFT_APPEND,   /* one byte too many */
    CRAFT_CUT,      /* one byte too few */
    CRAFT_TRAILER,  /* end magic changed */
    CRAFT_BODY_CRC, /* trailer CRC changed */
};

struct craft_case {
    const char *name;
    enum craft kind;
    uint32_t field_offset; /* CRAFT_FIELD */
    uint32_t field_size;
    uint64_t field_value;
    int64_t logged; /* expected logged offset; -1: the file size; -2: body end + 4 */
};

static const struct craft_case craft_cases[] = {
    {"empty file", CRAFT_EMPTY, 0, 0, 0, 0},
    {"text file", CRAFT_TEXT, 0, 0, 0, -1},
    {"72 zero bytes", CRAFT_ZEROS, 0, 0, 0, 0},
    {"random garbage", CRAFT_GARBAGE, 0, 0, 0, 0},
    {"wrong magic", CRAFT_FIELD, 0, 4, 0x4e535153, 0},
    {"version 2", CRAFT_FIELD, 4, 2, 2, 4},
    {"reserved at 6", CRAFT_FIELD, 6, 2, 1, 6},
    {"other group", CRAFT_FIELD, 8, 8, GROUP + 1, 8},
    {"index differs from the name", CRAFT_FIELD, 16, 8, 6, 16},
    {"index 0", CRAFT_FIELD, 16, 8, 0, 16},
    {"term 0", CRAFT_FIELD, 24, 8, 0, 24},
    {"config size above the maximum", CRAFT_FIELD, 32, 4, STORE_SNAPSHOT_CONFIG_MAX + 1, 32},
    {"reserved at 36", CRAFT_FIELD, 36, 4, 1, 36},
    {"data size above the maximum", CRAFT_FIELD, 40, 8, ((uint64_t)1 << 39) + 1, 40},
    {"data size larger than the file", CRAFT_FIELD, 40, 8, (uint64_t)1 << 30, -1},
    {"data size smaller than the file", CRAFT_FIELD, 40, 8, 10, 64 + 7 + 10 + 8},
    {"reserved at 48", CRAFT_FIELD, 48, 8, 1, 48},
    {"reserved at 56", CRAFT_FIELD, 56, 4, 1, 48},
    {"one byte appended", CRAFT_APPEND, 0, 0, 0, -3},
    {"last byte cut", CRAFT_CUT, 0, 0, 0, -1},
    {"trailer end magic", CRAFT_TRAILER, 0, 0, 0, -2},
    {"trailer CRC", CRAFT_BODY_CRC, 0, 0, 0, 64},
};

static uint8_t *craft_file(const struct craft_case *c, struct rq_rng *rng, uint64_t *size) {
    struct spec sp = {.index = 5, .term = 2, .config_size = 7, .data_size = 200, .key = 11};
    uint8_t *f = build_file(&sp);
    *size = spec_file_size(&sp);
    f = realloc(f, (size_t)*size + 1);
    switch (c->kind) {
    case CRAFT_EMPTY: *size = 0; break;
    case CRAFT_TEXT:
        memcpy(f, "snapshot?\n", 10);
        *size = 10;
        break;
    case CRAFT_ZEROS:
        memset(f, 0, 72);
        *size = 72;
        break;
    case CRAFT_GARBAGE:
        for (uint64_t i = 0; i < *size; i++)
            f[i] = (uint8_t)rq_rng_next(rng);
        break;
    case CRAFT_FIELD:
        for (uint32_t i = 0; i < c->field_size; i++)
            f[c->field_offset + i] = (uint8_t)(c->field_value >> (8 * i));
        rq_put_u32(f + 60, rq_crc32c(0, f, 60));
        break;
    case CRAFT_APPEND: f[(*size)++] = 0; break;
    case CRAFT_CUT: (*size)--; break;
    case CRAFT_TRAILER: f[*size - 1] ^= 1; break;
    case CRAFT_BODY_CRC: f[*size - TRL] ^= 0x80; break;
    }
    return f;
}

START_TEST(foreign_and_broken_files_are_rejected_with_file_and_offset) {
    const struct craft_case *c = &craft_cases[_i];
    struct harness *h = harness_new(200 + (uint64_t)_i);
    uint64_t size;
    uint8_t *f = craft_file(c, &h->work, &size);
    char path[RQ_DISK_PATH_MAX];
    snap_path(5, path);
    raw_put(h, path, f, (size_t)size);
    struct store_snapshot_result res = open_store(h);
    CHECK_MSG(res.err == RQ_ECORRUPT, "%s: err %d", c->name, res.err);
    CHECK_IEQ(res.found, 0);
    CHECK_MSG(strstr(last_error_line, path) != NULL, "%s: %s", c->name, last_error_line);
    uint64_t expected = c->logged == -1   ? size
                        : c->logged == -2 ? size - 4
                        : c->logged == -3 ? size - 1
                                          : (uint64_t)c->logged;
    CHECK_MSG(logged_offset() == expected, "%s: expected offset %llu: %s", c->name,
              (unsigned long long)expected, last_error_line);
    CHECK(sim_disk_exists(h->dr.disk, path, 1));
    /* A reader refuses it too (at open, or — the body CRC — at the end of its reads). */
    logcapture_start();
    reader_open(h, 5);
    if (h->rd_open_res.err == 0) {
        CHECK_IEQ(c->kind, CRAFT_BODY_CRC);
        uint8_t buf[256];
        h->rd_read_done = 0;
        CHECK_IEQ(store_snapshot_reader_read_data(&h->rd, 0, buf, sizeof buf), 0);
        run_idle(h);
        CHECK_IEQ(h->rd_read_res.err, RQ_ECORRUPT);
        reader_close(h);
    } else {
        CHECK_IEQ(h->rd_open_res.err, RQ_ECORRUPT);
    }
    CHECK_NONNULL(strstr(last_error_line, path));
    free(f);
    harness_free(h);
}
END_TEST

START_TEST(names_not_of_this_group_are_ignored_and_kept) {
    struct harness *h = harness_new(7);
    static const char *const others[] = {
        "s0000000000000008-00000000000000000099.snap",
        "S0000000000000007-00000000000000000099.snap",
        "s0000000000000007-00000000000000000099.snap.bak",
        "s000000000000007-00000000000000000099.snap",
        "s0000000000000007-00000000000000000000.snap",
        "s0000000000000007-99999999999999999999.snap",
        "hs-0000000000000007.dat",
    };
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
        raw_put(h, others[k], "junk", 4);
    struct spec sp = {.index = 3, .term = 1, .config_size = 2, .data_size = 50, .key = 4};
    uint8_t *f = build_file(&sp);
    char path[RQ_DISK_PATH_MAX];
    snap_path(3, path);
    raw_put(h, path, f, (size_t)spec_file_size(&sp));
    free(f);
    struct store_snapshot_result res = open_store(h);
    check_loaded(h, &res, &sp);
    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
        CHECK(sim_disk_exists(h->dr.disk, others[k], 1));
    harness_free(h);
}
END_TEST

/* A .snap whose bytes, or whose name, are only in the page cache — what a kill -9 leaves of a
 * writer that had not synced them: open reports it only once a power loss can no longer take it
 * away. (This store's own writer never leaves that state; the test plants it with raw requests.) */
START_TEST(open_makes_what_it_reports_durable) {
    for (int sync_data = 0; sync_data <= 1; sync_data++) {
        for (uint64_t seed = 1; seed <= 20; seed++) {
            struct harness *h = harness_new(seed);
            struct spec sp = {.index = 4,
                              .term = 2,
                              .config_size = 9,
                              .data_size = 100 * seed * seed,
                              .key = seed};
            uint8_t *f = build_file(&sp);
            char path[RQ_DISK_PATH_MAX];
            snap_path(sp.index, path);
            raw_put_ex(h, path, f, (size_t)spec_file_size(&sp), sync_data, !sync_data);
            free(f);
            crash(h, 0);
            struct store_snapshot_result res = open_store(h);
            check_loaded(h, &res, &sp);
            crash(h, 1);
            res = open_store(h);
            check_loaded(h, &res, &sp);
            harness_free(h);
        }
    }
}
END_TEST

/* ---- failed fsync, full disk, abort ---------------------------------------------------------- */

START_TEST(fsync_eio_during_a_write_is_sticky_and_the_previous_survives) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct harness *h = harness_new(seed);
        CHECK_IEQ(open_store(h).err, 0);
        struct spec a = {.index = 2, .term = 1, .config_size = 3, .data_size = 1000, .key = seed};
        struct spec b = {.index = 9, .term = 2, .config_size = 3, .data_size = 1500, .key = ~seed};
        CHECK_IEQ(write_snapshot(h, &a).err, 0);
        h->dr.faults.fsync_eio_ppm = RQ_PPM;
        struct store_snapshot_result res = write_snapshot(h, &b);
        CHECK_IEQ(res.err, RQ_EIO);
        CHECK_IEQ(res.fatal, 1);
        CHECK_UEQ(res.meta.index, a.index); /* still the durable one */
        CHECK_IEQ(h->s.state, STORE_SNAPSHOT_FAILED);
        CHECK_IEQ(store_snapshot_write_begin(&h->s, 10, 2, NULL, 0), RQ_EIO);
        CHECK_IEQ(store_snapshot_receive_begin(&h->s, 10, 2), RQ_EIO);
        CHECK_IEQ(store_snapshot_write(&h->s, "x", 1), RQ_EIO);
        CHECK_IEQ(store_snapshot_abort(&h->s), RQ_EIO);
        CHECK_UEQ(h->dr.queue_count, 0);
        crash(h, seed % 2);
        h->dr.faults.fsync_eio_ppm = 0;
        res = open_store(h);
        check_loaded(h, &res, &a); /* never renamed into place */
        harness_free(h);
    }
}
END_TEST

START_TEST(fsync_eio_during_open_fails_the_open) {
    struct harness *h = harness_new(8);
    CHECK_IEQ(open_store(h).err, 0);
    struct spec a = {.index = 2, .term = 1, .config_size = 3, .data_size = 100, .key = 1};
    CHECK_IEQ(write_snapshot(h, &a).err, 0);
    crash(h, 0);
    h->dr.faults.fsync_eio_ppm = RQ_PPM;
    struct store_snapshot_result res = open_store(h);
    CHECK_IEQ(res.err, RQ_EIO);
    CHECK_IEQ(res.fatal, 1);
    CHECK_IEQ(res.found, 0);
    CHECK_IEQ(error_lines, 1);
    h->dr.faults.fsync_eio_ppm = 0;
    crash(h, 1);
    res = open_store(h);
    check_loaded(h, &res, &a);
    harness_free(h);
}
END_TEST

/* A full disk at every point of a write (config, each chunk, trailer, header) and of a receive:
 * reported, not sticky, the .tmp removed, the previous snapshot intact and still current. */
START_TEST(enospc_abandons_the_write_and_keeps_the_previous) {
    struct spec a = {.index = 2, .term = 1, .config_size = 30, .data_size = 1000, .key = 5};
    struct spec b = {.index = 9, .term = 2, .config_size = 40, .data_size = 2500, .key = 6};
    uint64_t b_size = spec_file_size(&b);
    uint32_t failures = 0;
    for (int receive = 0; receive <= 1; receive++) {
        for (uint64_t room = 0; room <= b_size; room += 37) {
            struct harness *h = harness_new(room + 1);
            CHECK_IEQ(open_store(h).err, 0);
            CHECK_IEQ(write_snapshot(h, &a).err, 0);
            h->dr.faults.capacity_bytes = spec_file_size(&a) + room;
            h->chunk_max = 600;
            if (receive)
                start_receive(h, &b);
            else
                start_write(h, &b);
            run_idle(h);
            CHECK(h->finished);
            struct store_snapshot_result res = h->finished_res;
            h->job = JOB_NONE;
            CHECK(res.err == 0 || res.err == RQ_ENOSPC);
            if (res.err == RQ_ENOSPC) {
                failures++;
                CHECK_IEQ(res.fatal, 0);
                CHECK_UEQ(res.meta.index, a.index);
                uint32_t snaps, tmps;
                uint64_t index;
                group_files(h, &snaps, &tmps, &index);
                CHECK_UEQ(tmps, 0);
                CHECK_UEQ(snaps, 1);
                /* Not sticky: with room again, the same write succeeds in this life. */
                h->dr.faults.capacity_bytes = 0;
                CHECK_IEQ(write_snapshot(h, &b).err, 0);
                crash(h, 1);
                res = open_store(h);
                check_loaded(h, &res, &b);
            }
            harness_free(h);
        }
    }
    CHECK_UGE(failures, 2 * (b_size / 37));
}
END_TEST

START_TEST(enospc_from_a_full_disk_on_the_first_write) {
    struct harness *h = harness_new(9);
    CHECK_IEQ(open_store(h).err, 0);
    h->dr.faults.full = 1;
    struct spec b = {.index = 9, .term = 2, .config_size = 0, .data_size = 10, .key = 6};
    struct store_snapshot_result res = write_snapshot(h, &b);
    CHECK_IEQ(res.err, RQ_ENOSPC);
    CHECK_IEQ(res.found, 0);
    h->dr.faults.full = 0;
    crash(h, 0);
    res = open_store(h);
    check_loaded(h, &res, NULL);
    harness_free(h);
}
END_TEST

/* Abort after every number of completed requests before finish: FINISHED(aborted), no .tmp, the
 * previous current; then a new write succeeds. */
START_TEST(abort_at_every_point_removes_the_tmp_and_keeps_the_previous) {
    struct spec a = {.index = 2, .term = 1, .config_size = 30, .data_size = 1000, .key = 5};
    struct spec b = {.index = 9, .term = 2, .config_size = 40, .data_size = 2500, .key = 6};
    struct spec c = {.index = 11, .term = 2, .config_size = 1, .data_size = 3, .key = 7};
    for (int receive = 0; receive <= 1; receive++) {
        for (uint64_t k = 0; k <= 12; k++) {
            struct harness *h = harness_new(k + 1);
            CHECK_IEQ(open_store(h).err, 0);
            CHECK_IEQ(write_snapshot(h, &a).err, 0);
            h->chunk_max = 600;
            if (receive)
                start_receive(h, &b);
            else
                start_write(h, &b);
            h->hold_finish = 1;
            run_to(h, h->dr.executed + k);
            CHECK(!h->finished);
            CHECK_IEQ(store_snapshot_abort(&h->s), 0);
            CHECK_IEQ(store_snapshot_abort(&h->s), RQ_EINVAL);
            uint32_t chunks = h->chunk_events;
            run_idle(h);
            CHECK(h->finished);
            CHECK_UEQ(h->chunk_events, chunks); /* no CHUNK_DONE after abort */
            CHECK_IEQ(h->finished_res.err, RQ_ECLOSED);
            CHECK_IEQ(h->finished_res.aborted, 1);
            CHECK_IEQ(h->finished_res.fatal, 0);
            CHECK_UEQ(h->finished_res.meta.index, a.index);
            uint32_t snaps, tmps;
            uint64_t index;
            group_files(h, &snaps, &tmps, &index);
            CHECK_UEQ(tmps, 0);
            CHECK_UEQ(index, a.index);
            h->hold_finish = 0;
            CHECK_IEQ(write_snapshot(h, &c).err, 0);
            crash(h, 1);
            struct store_snapshot_result res = open_store(h);
            check_loaded(h, &res, &c);
            harness_free(h);
        }
    }
}
END_TEST

/* ---- reading and receiving ------------------------------------------------------------------- */

/* InstallSnapshot end to end: the leader's reader sends its file in chunks, interrupted halfway
 * and resumed by a new reader from an earlier offset (a retransmission the follower rejects as
 * stale); the follower receives it with duplicates; both end byte-identical. */
START_TEST(transfer_resumes_by_offset_and_installs_identically) {
    for (uint64_t seed = 1; seed <= 30; seed++) {
        struct harness *leader = harness_new(seed);
        struct harness *follower = harness_new(seed + 1000);
        CHECK_IEQ(open_store(leader).err, 0);
        CHECK_IEQ(open_store(follower).err, 0);
        struct spec old = {.index = 3, .term = 1, .config_size = 9, .data_size = 99, .key = seed};
        CHECK_IEQ(write_snapshot(follower, &old).err, 0);
        struct spec sp = {.index = 40,
                          .term = 4,
                          .config_size = (uint32_t)(seed * 37 % 300),
                          .data_size = 3 * CH + seed * 101,
                          .key = seed * 7};
        leader->chunk_max = CH;
        CHECK_IEQ(write_snapshot(leader, &sp).err, 0);
        uint64_t size = spec_file_size(&sp);
        uint8_t *buf = malloc(CH);
        CHECK_IEQ(store_snapshot_receive_begin(&follower->s, sp.index, sp.term), 0);
        job_prepare(follower, JOB_RECEIVE, &sp); /* for the event checks */
        follower->manual = 1;
        uint64_t stop = size / 2 + seed;
        reader_open(leader, sp.index);
        CHECK_IEQ(leader->rd_open_res.err, 0);
        CHECK_UEQ(leader->rd_open_res.file_size, size);
        uint64_t sent = 0;
        for (int pass = 0; pass < 2; pass++) {
            while (sent < (pass == 0 ? stop : size)) {
                size_t n = (size_t)rq_rng_range(&leader->work, 1, CH);
                uint64_t got = reader_read(leader, 0, sent, buf, n, NULL);
                CHECK_IEQ(store_snapshot_receive(&follower->s, sent, buf, (size_t)got), 0);
                follower->chunk_outstanding = 1;
                follower->job_given = sent + got;
                CHECK_IEQ(store_snapshot_receive(&follower->s, sent, buf, (size_t)got),
                          RQ_ERANGE); /* a duplicate while in flight */
                run_idle(follower);
                CHECK(!follower->chunk_outstanding);
                sent += got;
            }
            if (pass == 0) {
                /* The leader restarts the transfer with a new reader a bit before where it
                 * stopped: the follower rejects the overlap, the leader skips to its offset. */
                reader_close(leader);
                store_snapshot_reader_init(&leader->rd, &leader->dr.io, GROUP, on_event, leader);
                reader_open(leader, sp.index);
                uint64_t back = sent > 100 ? sent - 100 : 0;
                uint64_t got = reader_read(leader, 0, back, buf, 200, NULL);
                CHECK_ULT(back, sent);
                CHECK_IEQ(store_snapshot_receive(&follower->s, back, buf, (size_t)got), RQ_ERANGE);
                CHECK_UEQ(store_snapshot_receive_next_offset(&follower->s), sent);
            }
        }
        reader_close(leader);
        CHECK_IEQ(store_snapshot_receive_finish(&follower->s), 0);
        CHECK_UEQ(follower->prev_index, old.index);
        run_idle(follower);
        CHECK(follower->finished);
        CHECK_IEQ(follower->finished_res.err, 0);
        crash(follower, 1);
        struct store_snapshot_result res = open_store(follower);
        check_loaded(follower, &res, &sp);
        free(buf);
        harness_free(leader);
        harness_free(follower);
    }
}
END_TEST

/* A reader keeps reading the snapshot it opened after the store replaced and unlinked it. */
START_TEST(a_reader_survives_the_replacement_of_its_snapshot) {
    struct harness *h = harness_new(10);
    CHECK_IEQ(open_store(h).err, 0);
    struct spec a = {.index = 2, .term = 1, .config_size = 5, .data_size = 5000, .key = 1};
    struct spec b = {.index = 7, .term = 1, .config_size = 5, .data_size = 10, .key = 2};
    CHECK_IEQ(write_snapshot(h, &a).err, 0);
    uint8_t *fa = build_file(&a);
    reader_open(h, a.index);
    uint8_t got[5000];
    uint64_t off = reader_read(h, 1, 0, got, 1000, NULL);
    CHECK_IEQ(write_snapshot(h, &b).err, 0);
    char path[RQ_DISK_PATH_MAX];
    snap_path(a.index, path);
    CHECK(!sim_disk_exists(h->dr.disk, path, 0));
    int verified = 0;
    while (off < a.data_size)
        off += reader_read(h, 1, off, got + off, 1300, &verified);
    CHECK(verified);
    CHECK(memcmp(got, fa + 64 + 5, 5000) == 0);
    reader_close(h);
    reader_open(h, a.index);
    CHECK_IEQ(h->rd_open_res.err, RQ_ENOENT);
    CHECK_IEQ(store_snapshot_reader_close(&h->rd), RQ_EBADF);
    free(fa);
    harness_free(h);
}
END_TEST

/* Received bytes are verified as they arrive: a flipped bit, a header for another index or term,
 * or bytes past the end end the receive with RQ_ECORRUPT; a short transfer cannot finish. */
START_TEST(a_bad_transfer_is_refused_and_the_previous_kept) {
    struct spec a = {.index = 2, .term = 1, .config_size = 5, .data_size = 700, .key = 1};
    struct spec b = {.index = 9, .term = 3, .config_size = 6, .data_size = 1800, .key = 2};
    uint64_t size = spec_file_size(&b);
    for (int variant = 0; variant < 6; variant++) {
        struct harness *h = harness_new(20 + (uint64_t)variant);
        CHECK_IEQ(open_store(h).err, 0);
        CHECK_IEQ(write_snapshot(h, &a).err, 0);
        job_prepare(h, JOB_RECEIVE, &b);
        h->manual = 1;
        uint8_t *f = h->job_file;
        uint64_t announced_index = b.index, announced_term = b.term;
        if (variant == 0) f[500] ^= 0x01;                /* data */
        if (variant == 1) f[10] ^= 0x01;                 /* header */
        if (variant == 2) announced_index = b.index + 1; /* not what was announced */
        if (variant == 3) announced_term = b.term + 1;
        CHECK_IEQ(store_snapshot_receive_begin(&h->s, announced_index, announced_term), 0);
        int rc = 0;
        uint64_t sent = 0;
        while (sent < size) {
            uint64_t n = size - sent < 600 ? size - sent : 600;
            rc = store_snapshot_receive(&h->s, sent, f + sent, (size_t)n);
            if (rc != 0) break;
            h->chunk_outstanding = 1;
            sent += n;
            h->job_given = sent;
            run_idle(h);
        }
        if (variant == 4) {
            /* Everything arrived; one more byte past the end is corrupt. */
            CHECK_IEQ(rc, 0);
            rc = store_snapshot_receive(&h->s, sent, f, 1);
        }
        if (variant == 5) { /* the control: the same transfer, unharmed, installs */
            CHECK_IEQ(rc, 0);
            CHECK_IEQ(store_snapshot_receive_finish(&h->s), 0);
            run_idle(h);
            CHECK(h->finished);
            CHECK_IEQ(h->finished_res.err, 0);
            harness_free(h);
            continue;
        }
        CHECK_IEQ(rc, RQ_ECORRUPT);
        CHECK_IEQ(store_snapshot_receive(&h->s, sent, f, 1), RQ_ECORRUPT); /* ending */
        run_idle(h);
        CHECK(h->finished);
        CHECK_IEQ(h->finished_res.err, RQ_ECORRUPT);
        CHECK_IEQ(h->finished_res.fatal, 0);
        CHECK_IEQ(h->finished_res.aborted, 0);
        CHECK_UEQ(h->finished_res.meta.index, a.index);
        CHECK_IGE(error_lines, 1);
        CHECK_NONNULL(strstr(last_error_line, "offset"));
        uint32_t snaps, tmps;
        uint64_t index;
        group_files(h, &snaps, &tmps, &index);
        CHECK_UEQ(tmps, 0);
        CHECK_UEQ(index, a.index);
        /* A short transfer: finish refuses, the receive goes on (here: until aborted). */
        job_prepare(h, JOB_RECEIVE, &b);
        CHECK_IEQ(store_snapshot_receive_begin(&h->s, b.index, b.term), 0);
        CHECK_IEQ(store_snapshot_receive_finish(&h->s), RQ_ETRUNC);
        CHECK_IEQ(store_snapshot_receive(&h->s, 0, h->job_file, 100), 0);
        h->chunk_outstanding = 1;
        h->job_given = 100;
        run_idle(h);
        CHECK_IEQ(store_snapshot_receive_finish(&h->s), RQ_ETRUNC);
        CHECK_IEQ(store_snapshot_abort(&h->s), 0);
        run_idle(h);
        CHECK(h->finished);
        CHECK_IEQ(h->finished_res.aborted, 1);
        crash(h, 1);
        struct store_snapshot_result res = open_store(h);
        check_loaded(h, &res, &a);
        harness_free(h);
    }
}
END_TEST

/* ---- invariants are asserted ----------------------------------------------------------------- */

START_TEST(a_write_not_newer_than_the_current_aborts) {
    struct harness *h = harness_new(11);
    open_store(h);
    struct spec a = {.index = 5, .term = 1, .config_size = 0, .data_size = 1, .key = 1};
    write_snapshot(h, &a);
    store_snapshot_write_begin(&h->s, 5, 1, NULL, 0);
}
END_TEST

START_TEST(a_write_before_open_aborts) {
    struct harness *h = harness_new(12);
    life_start(h);
    store_snapshot_write_begin(&h->s, 5, 1, NULL, 0);
}
END_TEST

START_TEST(a_read_before_the_reader_opened_aborts) {
    struct harness *h = harness_new(13);
    life_start(h);
    uint8_t b[4];
    store_snapshot_reader_read(&h->rd, 0, b, sizeof b);
}
END_TEST

START_TEST(index_0_aborts) {
    struct harness *h = harness_new(14);
    open_store(h);
    store_snapshot_write_begin(&h->s, 0, 1, NULL, 0);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("snapshot");

    TCase *pure = tcase_create("pure");
    tcase_add_test(pure, names_are_fixed_width_and_parsed_strictly);
    tcase_add_test(pure, header_and_trailer_match_the_documented_layout);
    tcase_add_test(pure, verifier_streams_and_catches_every_bit_flip);
    suite_add_tcase(suite, pure);

    TCase *basic = tcase_create("basic");
    tcase_set_timeout(basic, 600); /* a generous bound for sanitizer builds, not a timing test */
    tcase_add_checked_fixture(basic, logcapture_start, logcapture_stop);
    tcase_add_test(basic, fresh_directory_opens_with_no_snapshot_and_writes_nothing);
    tcase_add_loop_test(
        basic, round_trip_sizes_and_configs, 0,
        (int)(ROUND_TRIP_SIZES * (sizeof round_trip_configs / sizeof round_trip_configs[0])));
    tcase_add_test(basic, chunk_and_config_limits_and_misuse_are_refused);
    tcase_add_test(basic, latest_wins_and_only_one_snapshot_remains);
    tcase_add_test(basic, open_picks_the_highest_index_and_deletes_older_and_tmp_files);
    tcase_add_test(basic, older_is_deleted_only_after_the_new_one_is_durable);
    suite_add_tcase(suite, basic);

    TCase *crashes = tcase_create("crash");
    tcase_set_timeout(crashes, 600);
    tcase_add_checked_fixture(crashes, logcapture_start, logcapture_stop);
    tcase_add_test(crashes, crash_after_every_op_of_a_write_leaves_previous_or_new);
    tcase_add_test(crashes, crash_after_every_op_of_a_receive_leaves_previous_or_new);
    suite_add_tcase(suite, crashes);

    TCase *corrupt = tcase_create("corruption");
    tcase_set_timeout(corrupt, 600);
    tcase_add_checked_fixture(corrupt, logcapture_start, logcapture_stop);
    tcase_add_test(corrupt, latent_corruption_is_detected_with_its_position_and_never_served);
    tcase_add_test(corrupt, a_corrupt_newest_snapshot_is_reported_not_skipped);
    tcase_add_loop_test(corrupt, foreign_and_broken_files_are_rejected_with_file_and_offset, 0,
                        (int)(sizeof craft_cases / sizeof craft_cases[0]));
    tcase_add_test(corrupt, names_not_of_this_group_are_ignored_and_kept);
    tcase_add_test(corrupt, open_makes_what_it_reports_durable);
    suite_add_tcase(suite, corrupt);

    TCase *faults = tcase_create("faults");
    tcase_set_timeout(faults, 600);
    tcase_add_checked_fixture(faults, logcapture_start, logcapture_stop);
    tcase_add_test(faults, fsync_eio_during_a_write_is_sticky_and_the_previous_survives);
    tcase_add_test(faults, fsync_eio_during_open_fails_the_open);
    tcase_add_test(faults, enospc_abandons_the_write_and_keeps_the_previous);
    tcase_add_test(faults, enospc_from_a_full_disk_on_the_first_write);
    tcase_add_test(faults, abort_at_every_point_removes_the_tmp_and_keeps_the_previous);
    suite_add_tcase(suite, faults);

    TCase *transfer = tcase_create("transfer");
    tcase_set_timeout(transfer, 600);
    tcase_add_checked_fixture(transfer, logcapture_start, logcapture_stop);
    tcase_add_test(transfer, transfer_resumes_by_offset_and_installs_identically);
    tcase_add_test(transfer, a_reader_survives_the_replacement_of_its_snapshot);
    tcase_add_test(transfer, a_bad_transfer_is_refused_and_the_previous_kept);
    suite_add_tcase(suite, transfer);

    TCase *inv = tcase_create("invariants");
    tcase_add_test_raise_signal(inv, a_write_not_newer_than_the_current_aborts, SIGABRT);
    tcase_add_test_raise_signal(inv, a_write_before_open_aborts, SIGABRT);
    tcase_add_test_raise_signal(inv, a_read_before_the_reader_opened_aborts, SIGABRT);
    tcase_add_test_raise_signal(inv, index_0_aborts, SIGABRT);
    suite_add_tcase(suite, inv);

    return run_suites(srunner_create(suite));
}
