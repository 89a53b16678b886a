/* The node write-ahead log (src/store/wal.c), driven against the simulator's disk through
 * sim/diskrunner.h: requests queue, the test executes them one at a time, and can crash (power loss
 * or kill -9) after any number of completed operations, then start a new life on the same disk.
 *
 * A model of every record ever appended (by LSN) judges each life: a record reported durable must
 * already be in the durable image of a file with a durable name; recovery must replay every record
 * reported durable (unless trimmed), byte for byte and in LSN order, nothing that was never
 * appended, and continue LSNs after the last record it replayed. Everything is seeded. */
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
#include "store/wal.h"
#include "sim/logcapture.h"
#include "tests/unit/suite_main.h"

enum {
    MODEL_MAX = 4096,   /* records per run, across lives */
    PAYLOAD_MAX = 4096, /* largest payload the tests append */
    CRASH_SEEDS = 2000,
    CORRUPT_SEEDS = 300,
};

/* Check's ck_assert marks its location with a write() every time: in the hot paths of the crash
 * runs (millions of checks) a plain test that reports only on failure is used instead. */
#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg("failed: " #cond " " __VA_ARGS__);                               \
    } while (0)


/* ---- the model ------------------------------------------------------------------------------- */

struct model_rec {
    uint64_t group_id;
    uint64_t term;
    uint64_t index;
    enum store_wal_kind kind;
    uint32_t payload_size;
    uint64_t payload_seed;
};

static void payload_fill(uint8_t *out, uint32_t size, uint64_t seed) {
    uint64_t s = seed;
    for (uint32_t i = 0; i < size; i += 8) {
        uint64_t v = rq_splitmix64(&s);
        for (uint32_t j = 0; j < 8 && i + j < size; j++)
            out[i + j] = (uint8_t)(v >> (8 * j));
    }
}

/* What the crash runs went through, so the test can show it exercised each path. */
static struct {
    uint64_t torn_tails;    /* recoveries that cut a torn tail */
    uint64_t files_deleted; /* by trims */
    uint64_t files_created;
    uint64_t enospc;  /* stalled writes */
    uint64_t busy;    /* appends refused */
    uint64_t replays; /* records replayed */
} seen;

/* ---- the harness ----------------------------------------------------------------------------- */

struct harness {
    struct diskrunner dr;
    struct store_wal wal;
    struct store_wal_config config;
    uint8_t *mem;
    size_t mem_size;
    /* every record appended, by LSN (recs[lsn - 1]); count = the highest LSN appended */
    struct model_rec recs[MODEL_MAX];
    uint64_t count;
    uint64_t durable_lsn; /* every LSN <= this was reported durable or replayed */
    uint64_t trim_lsn;    /* the highest trim asked for, over all lives */
    /* this life */
    int recovered;
    struct store_wal_recovery result;
    uint64_t replay_first, replay_last, replay_count;
    int failed; /* `durable` reported an error */
    struct store_wal_durable fail_event;
    uint64_t durable_events;
    int expect_recovery_error; /* skip the model checks of a recovery meant to fail */
    uint64_t enc_below;        /* LSNs below this were written by enc_simple, not appended */
    /* durable callbacks may append (the reentrancy test) */
    uint32_t append_from_durable;
    /* disk operations completed, by op, and the largest PREAD */
    uint64_t ops[RQ_DISK_MKDIR + 1];
    size_t pread_len_max;
    /* the next completed request of this op gets this result instead of its own (0: none) */
    enum rq_disk_op force_op;
    int64_t force_result;
    /* `durable` checks that the next batch's write was submitted before the callbacks */
    int expect_write_queued;
    uint64_t write_queued_seen;
};

/* At most STORE_WAL_REQS_MAX requests in flight, and two only as a batch's PWRITE then FSYNC of
 * the same file. */
static void check_in_flight(const struct harness *h) {
    REQUIRE(h->dr.queue_count <= STORE_WAL_REQS_MAX, "%u requests in flight",
            (unsigned)h->dr.queue_count);
    if (h->dr.queue_count == 2) {
        REQUIRE(h->dr.queue[0]->op == RQ_DISK_PWRITE);
        REQUIRE(h->dr.queue[1]->op == RQ_DISK_FSYNC);
        REQUIRE(h->dr.queue[0]->file == h->dr.queue[1]->file);
    }
}

static void h_complete(void *arg, struct rq_disk_req *req) {
    struct harness *h = arg;
    if (req->op >= 1 && req->op <= RQ_DISK_MKDIR) h->ops[req->op]++;
    if (req->op == RQ_DISK_PREAD && req->len > h->pread_len_max) h->pread_len_max = req->len;
    if (h->force_op != 0 && req->op == h->force_op) {
        req->result = h->force_result;
        h->force_op = 0;
    }
    REQUIRE(store_wal_on_disk_done(&h->wal, req) == 1);
    check_in_flight(h);
}

static int model_matches(const struct harness *h, const struct store_wal_record *rec) {
    if (rec->lsn == 0 || rec->lsn > h->count) return 0;
    const struct model_rec *m = &h->recs[rec->lsn - 1];
    if (rec->group_id != m->group_id || rec->term != m->term || rec->index != m->index) return 0;
    if (rec->kind != m->kind || rec->payload_size != m->payload_size) return 0;
    static uint8_t want[PAYLOAD_MAX];
    payload_fill(want, m->payload_size, m->payload_seed);
    return m->payload_size == 0 || memcmp(want, rec->payload, m->payload_size) == 0;
}

static int enc_simple_matches(const struct store_wal_record *rec);

static void on_replay(void *arg, const struct store_wal_record *rec) {
    struct harness *h = arg;
    REQUIRE(!h->recovered);
    /* In LSN order, without a gap; nothing invented, nothing half-present. */
    if (h->replay_count > 0) REQUIRE(rec->lsn == h->replay_last + 1);
    if (rec->lsn < h->enc_below) {
        REQUIRE(enc_simple_matches(rec), "replayed LSN %llu is not the one written",
                (unsigned long long)rec->lsn);
    } else {
        REQUIRE(model_matches(h, rec), "replayed LSN %llu differs from what was appended",
                (unsigned long long)rec->lsn);
    }
    if (h->replay_count == 0) h->replay_first = rec->lsn;
    h->replay_last = rec->lsn;
    h->replay_count++;
}

/* Judges a successful recovery against the model: every record reported durable is back unless
 * trimmed (the log may start at LSN 1 or anywhere up to the trim point), nothing beyond what was
 * appended, and LSNs continue right after the last record replayed. */
static void judge_recovery(struct harness *h, const struct store_wal_recovery *res) {
    REQUIRE(res->err == 0, "recovery failed: %s (%s)", rq_strerror(res->err), last_error_line);
    REQUIRE(res->records == h->replay_count);
    uint64_t next = res->next_lsn;
    REQUIRE(next >= 1);
    if (h->replay_count > 0) {
        REQUIRE(res->first_lsn == h->replay_first);
        REQUIRE(next == h->replay_last + 1); /* LSNs continue after the last replayed */
    }
    /* Nothing lost: every record reported durable and not trimmed is back. */
    REQUIRE(next > h->durable_lsn, "recovery lost LSN %llu..%llu, reported durable",
            (unsigned long long)next, (unsigned long long)h->durable_lsn);
    uint64_t first_on_disk = h->replay_count > 0 ? h->replay_first : next;
    uint64_t floor = h->trim_lsn > 1 ? h->trim_lsn : 1;
    REQUIRE(first_on_disk <= floor || first_on_disk == 1,
            "recovery starts at LSN %llu but only LSNs below %llu were trimmed",
            (unsigned long long)first_on_disk, (unsigned long long)floor);
    if (h->replay_count > 0 && h->durable_lsn >= floor) REQUIRE(h->replay_first <= floor);
    /* Nothing invented. */
    REQUIRE(next - 1 <= h->count);
    /* What was not replayed is gone for good: its LSNs will be given again. */
    h->count = next - 1;
    h->durable_lsn = next - 1;
}

static void on_recovered(void *arg, const struct store_wal_recovery *res) {
    struct harness *h = arg;
    REQUIRE(!h->recovered);
    h->recovered = 1;
    h->result = *res;
    seen.torn_tails += res->torn_bytes > 0;
    seen.replays += res->records;
    if (!h->expect_recovery_error) judge_recovery(h, res);
}

/* Reported durable: it must already be in the durable image, under a durable name. */
static void check_in_durable_image(struct harness *h, const struct store_wal_record *rec) {
    REQUIRE(sim_disk_exists(h->dr.disk, "wal", 1));
    uint64_t file_lsn = 0;
    for (uint32_t i = 0; i < h->wal.file_count; i++) {
        if (h->wal.files[i] <= rec->lsn) file_lsn = h->wal.files[i];
    }
    REQUIRE(file_lsn > 0);
    char path[STORE_WAL_PATH_SIZE];
    store_wal_path(file_lsn, path);
    const uint8_t *data;
    uint64_t size;
    REQUIRE(sim_disk_image(h->dr.disk, path, 1, &data, &size) == 0,
            "LSN %llu reported durable but %s has no durable name", (unsigned long long)rec->lsn,
            path);
    struct store_wal_file_scan fs;
    REQUIRE(store_wal_scan_file(data, (size_t)size, file_lsn, 1, NULL, NULL, &fs) == 0);
    REQUIRE(fs.next_lsn > rec->lsn, "LSN %llu reported durable but not in durable %s",
            (unsigned long long)rec->lsn, path);
}

static int h_append(struct harness *h, uint64_t group, uint64_t term, uint64_t index,
                    enum store_wal_kind kind, uint32_t payload_size, uint64_t *lsn_out);

static void on_durable(void *arg, const struct store_wal_durable *ev) {
    struct harness *h = arg;
    REQUIRE(!h->failed); /* an error is reported once, and nothing after it */
    if (ev->err != 0) {
        h->failed = 1;
        h->fail_event = *ev;
        REQUIRE(ev->lsn_first == h->durable_lsn + 1);
        REQUIRE(ev->lsn_last == h->count);
        return;
    }
    h->durable_events++;
    REQUIRE(ev->record.lsn == h->durable_lsn + 1); /* in append order */
    REQUIRE(model_matches(h, &ev->record));
    check_in_durable_image(h, &ev->record);
    check_in_flight(h);
    if (h->expect_write_queued && h->dr.queue_count == 2) { /* the next batch, already queued */
        const uint8_t *batch = h->dr.queue[0]->buf;
        REQUIRE(rq_get_u32(batch) == STORE_WAL_MAGIC);
        REQUIRE(rq_get_u64(batch + 16) > ev->record.lsn); /* its first LSN */
        h->write_queued_seen++;
    }
    h->durable_lsn = ev->record.lsn;
    if (h->append_from_durable > 0) {
        h->append_from_durable--;
        REQUIRE(h_append(h, 9, 1, ev->record.lsn, STORE_WAL_ENTRY, 40, NULL) == 0);
    }
}

static const struct store_wal_callbacks callbacks = {on_replay, on_recovered, on_durable};

static void config_small(struct store_wal_config *c) {
    c->batch_bytes_max = 4096;
    c->batch_records_max = 6;
    c->payload_bytes_max = 1200;
    c->file_bytes_max = 1400;
}

static struct harness *h_new(uint64_t seed, const struct store_wal_config *config,
                             size_t mem_size) {
    struct harness *h = calloc(1, sizeof *h);
    REQUIRE(h != NULL);
    diskrunner_init(&h->dr, seed, h_complete, h);
    if (config != NULL)
        h->config = *config;
    else
        config_small(&h->config);
    h->mem_size = mem_size ? mem_size : store_wal_memory_size(&h->config);
    h->mem = malloc(h->mem_size);
    REQUIRE(h->mem != NULL);
    return h;
}

static void h_free(struct harness *h) {
    diskrunner_free(&h->dr);
    free(h->mem);
    free(h);
}

/* A new process: fresh memory, a new WAL, recovery started. */
static void life_start(struct harness *h) {
    h->recovered = 0;
    h->replay_first = h->replay_last = h->replay_count = 0;
    h->failed = 0;
    h->durable_events = 0;
    store_wal_init(&h->wal, &h->dr.io, &h->config, h->mem, h->mem_size, &callbacks, h);
    store_wal_recover(&h->wal);
}

static void run_idle(struct harness *h) {
    for (uint32_t i = 0; i < 1000000 && diskrunner_step(&h->dr); i++)
        continue;
    REQUIRE(h->dr.queue_count == 0);
}

static struct store_wal_recovery h_recover(struct harness *h) {
    life_start(h);
    run_idle(h);
    REQUIRE(h->recovered);
    return h->result;
}

static void h_crash(struct harness *h, int power_loss) {
    const struct store_wal_stats *st = store_wal_stats(&h->wal);
    seen.files_deleted += st->files_deleted;
    seen.files_created += st->files_created;
    seen.enospc += st->enospc;
    seen.busy += st->busy;
    diskrunner_crash(&h->dr, power_loss);
}

static int h_append(struct harness *h, uint64_t group, uint64_t term, uint64_t index,
                    enum store_wal_kind kind, uint32_t payload_size, uint64_t *lsn_out) {
    REQUIRE(payload_size <= PAYLOAD_MAX);
    static uint8_t payload[PAYLOAD_MAX];
    uint64_t seed = h->count * 0x9e3779b97f4a7c15ull + group * 31 + index;
    payload_fill(payload, payload_size, seed);
    struct store_wal_record rec = {.group_id = group,
                                   .term = term,
                                   .index = index,
                                   .kind = kind,
                                   .payload = payload,
                                   .payload_size = payload_size};
    uint64_t lsn = 0;
    int rc = store_wal_append(&h->wal, &rec, &lsn);
    memset(payload, 0xEE, payload_size); /* the WAL copied it */
    check_in_flight(h);
    if (rc != 0) return rc;
    REQUIRE(lsn == h->count + 1); /* strictly increasing, no gap */
    REQUIRE(h->count < MODEL_MAX);
    h->recs[h->count++] = (struct model_rec){group, term, index, kind, payload_size, seed};
    if (lsn_out != NULL) *lsn_out = lsn;
    return 0;
}

/* A record a Raft node might log: mostly small entries, some spanning sectors, some truncations. */
static int h_append_random(struct harness *h, struct rq_rng *rng) {
    uint64_t group = rq_rng_range(rng, 1, 5);
    uint64_t term = rq_rng_range(rng, 1, 9);
    uint64_t index = rq_rng_range(rng, 1, 1000);
    if (rq_rng_chance(rng, RQ_PPM / 10))
        return h_append(h, group, term, index, STORE_WAL_TRUNCATE, 0, NULL);
    uint32_t size = (uint32_t)rq_rng_range(rng, 0, 100);
    if (rq_rng_chance(rng, RQ_PPM / 5)) size = (uint32_t)rq_rng_range(rng, 300, 1200);
    return h_append(h, group, term, index, STORE_WAL_ENTRY, size, NULL);
}

/* Appends a random record, letting the disk work while the log pushes back. */
static void h_append_random_patiently(struct harness *h, struct rq_rng *rng) {
    for (int tries = 0; tries < 1000; tries++) {
        int rc = h_append_random(h, rng);
        if (rc == 0) return;
        REQUIRE(rc == RQ_EBUSY);
        REQUIRE(diskrunner_step(&h->dr));
    }
    ck_abort_msg("append never accepted");
}

/* ---- raw file access, bypassing the WAL ------------------------------------------------------ */

static int64_t raw(struct harness *h, struct rq_disk_req *req) {
    struct sim_disk_faults none = {0};
    sim_disk_execute(h->dr.disk, req, &none, &h->dr.rng);
    return req->result;
}

/* Makes path hold exactly data[0..size), durably (file and name; "wal" created if needed). */
static void raw_put(struct harness *h, const char *path, const void *data, size_t size) {
    ck_assert_int_eq(sim_disk_put_durable(h->dr.disk, path, data, size), 0);
}

static void raw_unlink(struct harness *h, const char *path) {
    struct rq_disk_req req = {.op = RQ_DISK_UNLINK};
    strcpy(req.path, path);
    ck_assert_int_eq(raw(h, &req), 0);
}

/* The durable bytes of a file, copied (at most cap). */
static size_t durable_copy(struct harness *h, const char *path, uint8_t *out, size_t cap) {
    const uint8_t *data;
    uint64_t size;
    ck_assert_int_eq(sim_disk_image(h->dr.disk, path, 1, &data, &size), 0);
    ck_assert_uint_le(size, cap);
    memcpy(out, data, (size_t)size);
    return (size_t)size;
}

/* ---- an independent encoder, written from the format table in wal.h -------------------------- */

struct enc_rec {
    uint64_t group, term, index;
    uint8_t kind;
    uint32_t payload_size;
    uint8_t fill; /* payload bytes */
};

/* Encodes one batch of n records at out; returns its size. */
static size_t enc_batch(uint8_t *out, uint64_t first_lsn, const struct enc_rec *recs, uint32_t n) {
    size_t at = 32;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *p = out + at;
        rq_put_u64(p, recs[i].group);
        rq_put_u64(p + 8, recs[i].term);
        rq_put_u64(p + 16, recs[i].index);
        p[24] = recs[i].kind;
        p[25] = p[26] = p[27] = 0;
        rq_put_u32(p + 28, recs[i].payload_size);
        memset(p + 32, recs[i].fill, recs[i].payload_size);
        at += 32 + recs[i].payload_size;
    }
    uint32_t body = (uint32_t)(at - 32);
    rq_put_u32(out, 0x4C575152);
    rq_put_u16(out + 4, 1);
    rq_put_u16(out + 6, 0);
    rq_put_u32(out + 12, body);
    rq_put_u64(out + 16, first_lsn);
    rq_put_u32(out + 24, n);
    rq_put_u32(out + 28, 0);
    uint32_t crc = rq_crc32c(0, out, 8);
    crc = rq_crc32c(crc, out + 12, 20 + (size_t)body);
    rq_put_u32(out + 8, crc);
    return at;
}

/* A batch of n entries with payload_size bytes each, for LSNs first_lsn.. */
static size_t enc_simple(uint8_t *out, uint64_t first_lsn, uint32_t n, uint32_t payload_size) {
    struct enc_rec recs[16];
    REQUIRE(n <= 16);
    for (uint32_t i = 0; i < n; i++) {
        recs[i] = (struct enc_rec){7, 2, first_lsn + i, 1, payload_size, (uint8_t)(first_lsn + i)};
    }
    return enc_batch(out, first_lsn, recs, n);
}

/* Whether rec is what enc_simple wrote for its LSN (the hand-made files' batches). */
static int enc_simple_matches(const struct store_wal_record *rec) {
    if (rec->group_id != 7 || rec->term != 2 || rec->index != rec->lsn) return 0;
    if (rec->kind != STORE_WAL_ENTRY) return 0;
    for (uint32_t i = 0; i < rec->payload_size; i++) {
        if (rec->payload[i] != (uint8_t)rec->lsn) return 0;
    }
    return 1;
}

/* ---- basic behaviour ------------------------------------------------------------------------- */

START_TEST(names_are_fixed_width_lowercase_hex) {
    char path[STORE_WAL_PATH_SIZE], name[STORE_WAL_NAME_SIZE];
    store_wal_path(1, path);
    ck_assert_str_eq(path, "wal/0000000000000001.log");
    store_wal_name(0xabcdef0123ull, name);
    ck_assert_str_eq(name, "000000abcdef0123.log");
    store_wal_path(UINT64_MAX, path);
    ck_assert_str_eq(path, "wal/ffffffffffffffff.log");
    ck_assert_int_eq(sim_disk_path_valid(path), 0);
    uint64_t lsn = 0;
    ck_assert_int_eq(store_wal_parse_name("000000abcdef0123.log", &lsn), 0);
    ck_assert_uint_eq(lsn, 0xabcdef0123ull);
    const char *bad[] = {"000000ABCDEF0123.log",
                         "0000000000000000.log",
                         "000000000000001.log",
                         "00000000000000001.log",
                         "0000000000000001.lo",
                         "0000000000000001.log.tmp",
                         "000000000000000g.log",
                         "hello.txt",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(store_wal_parse_name(bad[i], &lsn) == RQ_EINVAL, "%s accepted", bad[i]);
}
END_TEST

START_TEST(config_bounds) {
    struct store_wal_config c;
    store_wal_config_default(&c);
    ck_assert_int_eq(store_wal_config_check(&c), 0);
    ck_assert_uint_eq(store_wal_memory_size(&c), 3 * (size_t)c.batch_bytes_max);
    config_small(&c);
    ck_assert_int_eq(store_wal_config_check(&c), 0);
    ck_assert_uint_eq(store_wal_memory_size(&c), STORE_WAL_BATCH_BYTES_LIMIT);
    c.payload_bytes_max = c.batch_bytes_max - 63; /* one record no longer fits a batch */
    ck_assert_int_eq(store_wal_config_check(&c), RQ_EINVAL);
    config_small(&c);
    c.batch_records_max = 0;
    ck_assert_int_eq(store_wal_config_check(&c), RQ_EINVAL);
    config_small(&c);
    c.batch_bytes_max = STORE_WAL_BATCH_BYTES_LIMIT + 1;
    ck_assert_int_eq(store_wal_config_check(&c), RQ_EINVAL);
    config_small(&c);
    c.file_bytes_max = 0;
    ck_assert_int_eq(store_wal_config_check(&c), RQ_EINVAL);
}
END_TEST

START_TEST(fresh_start_creates_the_directory_durably) {
    struct harness *h = h_new(1, NULL, 0);
    struct store_wal_recovery res = h_recover(h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.next_lsn, 1);
    ck_assert_uint_eq(res.records, 0);
    ck_assert_uint_eq(res.files, 0);
    ck_assert(sim_disk_exists(h->dr.disk, "wal", 1));
    ck_assert_uint_eq(h->ops[RQ_DISK_MKDIR], 1);
    /* and a second start finds it, empty */
    h_crash(h, 1);
    res = h_recover(h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.next_lsn, 1);
    ck_assert_uint_eq(h->ops[RQ_DISK_MKDIR], 1);
    h_free(h);
}
END_TEST

/* What the WAL writes is exactly the documented layout (checked with an encoder written from the
 * table in wal.h, not from wal.c). */
START_TEST(file_bytes_match_the_documented_layout) {
    struct harness *h = h_new(2, NULL, 0);
    h_recover(h);
    ck_assert_int_eq(h_append(h, 7, 2, 1, STORE_WAL_ENTRY, 0, NULL), 0); /* batch 1 */
    ck_assert_int_eq(h_append(h, 7, 2, 2, STORE_WAL_ENTRY, 0, NULL), 0); /* batch 2 ... */
    ck_assert_int_eq(h_append(h, 7, 2, 3, STORE_WAL_TRUNCATE, 0, NULL), 0);
    run_idle(h);
    uint8_t got[4096], want[4096];
    size_t got_size = durable_copy(h, "wal/0000000000000001.log", got, sizeof got);
    struct enc_rec r1[] = {{7, 2, 1, 1, 0, 0}};
    struct enc_rec r2[] = {{7, 2, 2, 1, 0, 0}, {7, 2, 3, 2, 0, 0}};
    size_t n = enc_batch(want, 1, r1, 1);
    n += enc_batch(want + n, 2, r2, 2);
    ck_assert_uint_eq(got_size, n);
    ck_assert_uint_eq(got_size, 32 + 32 + 32 + 64);
    ck_assert_mem_eq(got, want, n);
    ck_assert_mem_eq(got, "RQWL\x01\x00\x00\x00", 8);
    /* and with payloads */
    ck_assert_int_eq(h_append(h, 3, 4, 5, STORE_WAL_ENTRY, 20, NULL), 0);
    run_idle(h);
    got_size = durable_copy(h, "wal/0000000000000001.log", got, sizeof got);
    ck_assert_uint_eq(got_size, n + 32 + 32 + 20);
    const uint8_t *rec = got + n + 32;
    ck_assert_uint_eq(rq_get_u64(rec), 3);
    ck_assert_uint_eq(rq_get_u64(rec + 8), 4);
    ck_assert_uint_eq(rq_get_u64(rec + 16), 5);
    ck_assert_uint_eq(rec[24], 1);
    ck_assert_uint_eq(rq_get_u32(rec + 28), 20);
    ck_assert_uint_eq(rq_get_u64(got + n + 16), 4); /* first LSN */
    h_free(h);
}
END_TEST

START_TEST(round_trip_several_groups_lsns_continue_truncates_replay) {
    struct harness *h = h_new(3, NULL, 0);
    h_recover(h);
    struct rq_rng rng;
    rq_rng_stream(&rng, 3, 1);
    for (int i = 0; i < 60; i++) {
        ck_assert_int_eq(h_append_random(h, &rng), 0);
        if (i % 4 == 3) run_idle(h);
    }
    run_idle(h);
    ck_assert_uint_eq(h->durable_lsn, 60);
    uint32_t truncates = 0, groups_seen = 0;
    for (uint64_t i = 0; i < h->count; i++) {
        truncates += h->recs[i].kind == STORE_WAL_TRUNCATE;
        groups_seen |= 1u << h->recs[i].group_id;
    }
    ck_assert_uint_gt(truncates, 0);
    ck_assert_uint_ge(__builtin_popcount(groups_seen), 4);
    for (int life = 0; life < 4; life++) {
        h_crash(h, life % 2); /* process exit, then power loss, ... */
        struct store_wal_recovery res = h_recover(h);
        ck_assert_uint_eq(res.records, 60 + 10 * (uint64_t)life);
        ck_assert_uint_eq(res.first_lsn, 1);
        ck_assert_uint_eq(res.next_lsn, 61 + 10 * (uint64_t)life);
        ck_assert_uint_eq(res.torn_bytes, 0);
        for (int i = 0; i < 10; i++) {
            ck_assert_int_eq(h_append_random(h, &rng), 0);
            if (i % 5 == 4) run_idle(h);
        }
    }
    ck_assert_uint_gt(h->wal.file_count, 3); /* it rolled */
    h_free(h);
}
END_TEST

START_TEST(foreign_requests_are_not_claimed) {
    struct harness *h = h_new(4, NULL, 0);
    h_recover(h);
    struct rq_disk_req other = {.op = RQ_DISK_FSYNC};
    ck_assert_int_eq(store_wal_on_disk_done(&h->wal, &other), 0);
    h_free(h);
}
END_TEST

/* ---- group commit ---------------------------------------------------------------------------- */

START_TEST(appends_during_a_write_form_exactly_one_more_batch) {
    struct store_wal_config c = {65536, 1000, 1000, 1 << 20};
    struct harness *h = h_new(5, &c, 0);
    h_recover(h);
    for (int round = 0; round < 2; round++) { /* creating the file, then appending to it */
        uint64_t writes = h->ops[RQ_DISK_PWRITE], fsyncs = h->ops[RQ_DISK_FSYNC];
        uint64_t batches = store_wal_stats(&h->wal)->batches;
        ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 10, NULL), 0);
        while (h->ops[RQ_DISK_PWRITE] == writes)
            diskrunner_step(&h->dr); /* the write ran */
        for (int i = 0; i < 50; i++)
            ck_assert_int_eq(
                h_append(h, (uint64_t)i % 3, 1, (uint64_t)i, STORE_WAL_ENTRY, 30, NULL), 0);
        ck_assert_uint_eq(h->dr.queue_count, 1); /* only its fsync: nothing more in flight */
        run_idle(h);
        ck_assert_uint_eq(h->ops[RQ_DISK_PWRITE] - writes, 2);
        ck_assert_uint_eq(h->ops[RQ_DISK_FSYNC] - fsyncs, 2);
        ck_assert_uint_eq(store_wal_stats(&h->wal)->batches - batches, 2);
        ck_assert_uint_eq(store_wal_stats(&h->wal)->batch_records_largest, 50);
    }
    ck_assert_uint_eq(h->durable_lsn, 102);
    ck_assert_uint_eq(store_wal_stats(&h->wal)->records, 102);
    ck_assert_uint_eq(store_wal_stats(&h->wal)->fsyncs, 4);
    h_free(h);
}
END_TEST

/* Under a steady load (more appends whenever the log lets us), far fewer fsyncs than records. */
START_TEST(fsyncs_stay_far_below_records_under_load) {
    struct store_wal_config c = {256 << 10, 4096, 4096, 4 << 20};
    struct harness *h = h_new(6, &c, 0);
    h_recover(h);
    struct rq_rng rng;
    rq_rng_stream(&rng, 6, 1);
    uint64_t appended = 0;
    while (appended < 3000) {
        uint32_t burst = (uint32_t)rq_rng_range(&rng, 1, 40); /* arrivals per disk operation */
        for (uint32_t i = 0; i < burst && appended < 3000; i++) {
            if (h_append_random(h, &rng) != 0) break;
            appended++;
        }
        diskrunner_step(&h->dr);
    }
    run_idle(h);
    const struct store_wal_stats *s = store_wal_stats(&h->wal);
    ck_assert_uint_eq(s->records, 3000);
    ck_assert_uint_eq(s->fsyncs, s->batches);
    ck_assert_msg(s->fsyncs * 20 < s->records, "%llu fsyncs for %llu records",
                  (unsigned long long)s->fsyncs, (unsigned long long)s->records);
    ck_assert_uint_gt(s->batch_records_largest, 20);
    ck_assert_uint_eq(h->durable_lsn, 3000);
    h_free(h);
}
END_TEST

START_TEST(batch_limits_give_ebusy_then_recover) {
    struct store_wal_config c = {1024, 4, 900, 1 << 20};
    struct harness *h = h_new(7, &c, 0);
    h_recover(h);
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 0, NULL), 0); /* in flight */
    ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 901, NULL), RQ_ETOOBIG);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(h_append(h, 1, 1, 3 + (uint64_t)i, STORE_WAL_ENTRY, 0, NULL), 0);
    ck_assert_int_eq(h_append(h, 1, 1, 7, STORE_WAL_ENTRY, 0, NULL), RQ_EBUSY); /* records */
    ck_assert_uint_eq(store_wal_stats(&h->wal)->busy, 1);
    while (h->durable_lsn < 1)
        diskrunner_step(&h->dr);
    /* the first batch is done: the 4 are in flight and the fill buffer is empty again */
    ck_assert_int_eq(h_append(h, 1, 1, 7, STORE_WAL_ENTRY, 900, NULL), 0); /* 32+32+900 bytes */
    ck_assert_int_eq(h_append(h, 1, 1, 8, STORE_WAL_ENTRY, 0, NULL), 0);   /* 996 */
    ck_assert_int_eq(h_append(h, 1, 1, 9, STORE_WAL_ENTRY, 0, NULL), RQ_EBUSY); /* 1028 > 1024 */
    run_idle(h);
    ck_assert_uint_eq(h->durable_lsn, 7);
    ck_assert_uint_le(store_wal_stats(&h->wal)->batch_bytes_largest, 1024);
    ck_assert_uint_le(store_wal_stats(&h->wal)->batch_records_largest, 4);
    ck_assert_int_eq(h_append(h, 1, 1, 9, STORE_WAL_ENTRY, 0, NULL), 0);
    run_idle(h);
    h_crash(h, 1);
    ck_assert_uint_eq(h_recover(h).records, 8);
    h_free(h);
}
END_TEST

START_TEST(appends_from_the_durable_callback_queue_behind) {
    struct harness *h = h_new(8, NULL, 0);
    h_recover(h);
    h->append_from_durable = 25;
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 10, NULL), 0);
    run_idle(h); /* h_complete checks one request at a time throughout */
    ck_assert_uint_eq(h->append_from_durable, 0);
    ck_assert_uint_eq(h->durable_lsn, 26);
    h_crash(h, 1);
    ck_assert_uint_eq(h_recover(h).records, 26);
    h_free(h);
}
END_TEST

/* A batch's PWRITE and FSYNC go to the disk together; its records are reported only once the
 * FSYNC completed, never after the PWRITE alone. */
START_TEST(write_and_fsync_are_queued_together_durable_only_after_the_fsync) {
    struct store_wal_config c = {65536, 1000, 1000, 1 << 20};
    struct harness *h = h_new(30, &c, 0);
    h_recover(h);
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 10, NULL), 0);
    run_idle(h); /* the first batch: a new file */
    ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 10, NULL), 0);
    ck_assert_uint_eq(h->dr.queue_count, 2);
    ck_assert_int_eq(h->dr.queue[0]->op, RQ_DISK_PWRITE);
    ck_assert_int_eq(h->dr.queue[1]->op, RQ_DISK_FSYNC);
    ck_assert(diskrunner_step(&h->dr)); /* the PWRITE */
    ck_assert_uint_eq(h->durable_lsn, 1);
    ck_assert_uint_eq(h->dr.queue_count, 1); /* nothing new joins the FSYNC */
    ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 10, NULL), 0);
    ck_assert_uint_eq(h->dr.queue_count, 1);
    ck_assert(diskrunner_step(&h->dr)); /* the FSYNC: LSN 2 is durable, LSN 3's write queued */
    ck_assert_uint_eq(h->durable_lsn, 2);
    ck_assert_uint_eq(h->dr.queue_count, 2);
    run_idle(h);
    ck_assert_uint_eq(h->durable_lsn, 3);
    ck_assert_uint_eq(store_wal_stats(&h->wal)->fsyncs, 3);
    h_free(h);
}
END_TEST

/* Under load the next batch's PWRITE + FSYNC are queued before the finished batch's records are
 * reported (the disk does not wait for the callbacks), and appends from those callbacks go to a
 * third buffer: the reported batch's bytes stay intact while they run (on_durable compares every
 * record with the model). */
START_TEST(the_next_write_is_queued_before_the_callbacks_run) {
    struct store_wal_config c = {8192, 64, 1200, 1 << 20};
    struct harness *h = h_new(31, &c, 0);
    h_recover(h);
    h->expect_write_queued = 1;
    h->append_from_durable = 400;
    struct rq_rng rng;
    rq_rng_stream(&rng, 31, 1);
    for (int i = 0; i < 300; i++) {
        int rc = h_append_random(h, &rng);
        ck_assert(rc == 0 || rc == RQ_EBUSY);
        if (rc != 0 || rq_rng_chance(&rng, RQ_PPM / 4)) diskrunner_step(&h->dr);
    }
    run_idle(h);
    ck_assert_uint_eq(h->append_from_durable, 0);
    ck_assert_uint_eq(h->durable_lsn, h->count);
    ck_assert_uint_gt(h->write_queued_seen, 100);
    h_crash(h, 1);
    ck_assert_uint_eq(h_recover(h).records, h->count);
    h_free(h);
}
END_TEST

/* A fill batch that refused an append for lack of room is sealed: it takes nothing more, not even
 * a record that would still fit, and is written as it was. */
START_TEST(a_full_batch_is_sealed_at_once) {
    struct store_wal_config c = {1024, 8, 900, 1 << 20};
    struct harness *h = h_new(32, &c, 0);
    h_recover(h);
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 0, NULL), 0);          /* in flight */
    ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 800, NULL), 0);        /* 32+32+800 */
    ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 200, NULL), RQ_EBUSY); /* no room */
    struct store_wal_batch *fill = &h->wal.batches[h->wal.fill_index];
    ck_assert(fill->sealed);
    ck_assert_uint_eq(rq_get_u32(fill->buf), STORE_WAL_MAGIC); /* header and CRC written now */
    ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 0, NULL), RQ_EBUSY); /* would fit */
    ck_assert_uint_eq(store_wal_stats(&h->wal)->busy, 2);
    run_idle(h);
    ck_assert_uint_eq(h->durable_lsn, 2);
    ck_assert_uint_eq(store_wal_stats(&h->wal)->batch_bytes_largest, 32 + 32 + 800);
    ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 200, NULL), 0);
    run_idle(h);
    h_crash(h, 1);
    ck_assert_uint_eq(h_recover(h).records, 3);
    h_free(h);
}
END_TEST

/* ---- files: roll, trim ----------------------------------------------------------------------- */

START_TEST(rolls_to_files_named_by_their_first_lsn) {
    struct store_wal_config c = {4096, 8, 1000, 1024};
    struct harness *h = h_new(9, &c, 0);
    h_recover(h);
    for (int i = 0; i < 40; i++) {
        ck_assert_int_eq(h_append(h, 1, 1, (uint64_t)i, STORE_WAL_ENTRY, 100, NULL), 0);
        if (i % 3 == 2) run_idle(h); /* batches of 1 and 2 */
    }
    run_idle(h);
    ck_assert_uint_ge(h->wal.file_count, 5);
    ck_assert_uint_eq(store_wal_stats(&h->wal)->files_created, h->wal.file_count);
    uint64_t expect_lsn = 1;
    for (uint32_t i = 0; i < h->wal.file_count; i++) {
        char path[STORE_WAL_PATH_SIZE];
        store_wal_path(h->wal.files[i], path);
        ck_assert(sim_disk_exists(h->dr.disk, path, 1));
        ck_assert_uint_eq(h->wal.files[i], expect_lsn);
        static uint8_t image[1 << 16];
        size_t size = durable_copy(h, path, image, sizeof image);
        ck_assert_uint_eq(rq_get_u64(image + 16), expect_lsn); /* first batch = name */
        struct store_wal_file_scan fs;
        ck_assert_int_eq(store_wal_scan_file(image, size, expect_lsn, 0, NULL, NULL, &fs), 0);
        if (i + 1 < h->wal.file_count) ck_assert_uint_ge(size, c.file_bytes_max);
        ck_assert_uint_lt(size, c.file_bytes_max + c.batch_bytes_max);
        expect_lsn = fs.next_lsn;
    }
    ck_assert_uint_eq(expect_lsn, 41);
    /* one FSYNC_DIR per new file, on top of recovery's */
    ck_assert_uint_eq(store_wal_stats(&h->wal)->dir_fsyncs, h->wal.file_count);
    h_crash(h, 1);
    struct store_wal_recovery res = h_recover(h);
    ck_assert_uint_eq(res.records, 40);
    ck_assert_uint_eq(res.files, h->wal.file_count);
    h_free(h);
}
END_TEST

/* Makes about `files` files of single-record batches; returns nothing, fills h. */
static void make_files(struct harness *h, uint32_t files) {
    while (h->wal.file_count < files || store_wal_busy(&h->wal)) {
        if (!store_wal_busy(&h->wal))
            ck_assert_int_eq(h_append(h, 2, 1, h->count, STORE_WAL_ENTRY, 200, NULL), 0);
        diskrunner_step(&h->dr);
    }
}

START_TEST(trim_deletes_only_files_wholly_below_and_never_the_current_one) {
    struct store_wal_config c = {4096, 8, 1000, 1000};
    struct harness *h = h_new(10, &c, 0);
    h_recover(h);
    make_files(h, 7);
    uint64_t first[STORE_WAL_FILES_MAX];
    uint32_t n = h->wal.file_count;
    memcpy(first, h->wal.files, n * sizeof first[0]);
    /* LSN just below file 3's first: file 2 still holds a needed record */
    ck_assert_int_eq(store_wal_trim(&h->wal, first[3] - 1), 0);
    h->trim_lsn = first[3] - 1;
    run_idle(h);
    ck_assert_uint_eq(h->wal.file_count, n - 2);
    ck_assert_uint_eq(h->wal.files[0], first[2]);
    for (uint32_t i = 0; i < n; i++) {
        char path[STORE_WAL_PATH_SIZE];
        store_wal_path(first[i], path);
        ck_assert_int_eq(sim_disk_exists(h->dr.disk, path, 1), i >= 2); /* durably deleted */
    }
    ck_assert_uint_eq(store_wal_stats(&h->wal)->files_deleted, 2);
    /* exactly at file 3's first LSN: file 2 goes too */
    ck_assert_int_eq(store_wal_trim(&h->wal, first[3]), 0);
    h->trim_lsn = first[3];
    run_idle(h);
    ck_assert_uint_eq(h->wal.files[0], first[3]);
    /* trimming everything keeps the current file, whose name carries the LSN on */
    ck_assert_int_eq(store_wal_trim(&h->wal, UINT64_MAX), 0);
    run_idle(h);
    ck_assert_uint_eq(h->wal.file_count, 1);
    ck_assert_uint_eq(h->wal.files[0], first[n - 1]);
    h->trim_lsn = first[n - 1];
    uint64_t next = h->count + 1;
    h_crash(h, 1);
    struct store_wal_recovery res = h_recover(h);
    ck_assert_uint_eq(res.first_lsn, first[n - 1]);
    ck_assert_uint_eq(res.next_lsn, next);
    ck_assert_uint_eq(res.files, 1);
    h_free(h);
}
END_TEST

/* A crash at every point of a trim (deletes in flight, appends interleaved) loses nothing needed;
 * an undone deletion only brings back old records, which recovery replays again. */
START_TEST(a_crash_that_undoes_a_deletion_is_harmless) {
    uint32_t undone = 0;
    for (uint64_t k = 0; k < 24; k++) {
        struct store_wal_config c = {4096, 8, 1000, 1000};
        struct harness *h = h_new(11 + k, &c, 0);
        h_recover(h);
        make_files(h, 6);
        uint64_t oldest = h->wal.files[0];
        uint64_t trim = h->wal.files[4];
        ck_assert_int_eq(store_wal_trim(&h->wal, trim), 0);
        h->trim_lsn = trim;
        ck_assert_int_eq(h_append(h, 2, 1, 0, STORE_WAL_ENTRY, 10, NULL), 0);
        for (uint64_t i = 0; i < k && diskrunner_step(&h->dr); i++)
            continue;
        h_crash(h, k % 3 != 0);
        struct store_wal_recovery res = h_recover(h); /* judged against the model */
        if (res.first_lsn < trim && h->wal.files[0] != oldest) undone++;
        if (h->wal.files[0] != trim) ck_assert_uint_lt(res.first_lsn, trim);
        /* the trim goes on after the restart when asked again */
        ck_assert_int_eq(store_wal_trim(&h->wal, trim), 0);
        run_idle(h);
        ck_assert_uint_eq(h->wal.files[0], trim);
        h_free(h);
    }
    ck_assert_uint_gt(undone, 0); /* some crash did bring a deleted file back */
}
END_TEST

/* ---- failures: EIO, ENOSPC ------------------------------------------------------------------- */

START_TEST(fsync_eio_is_reported_once_and_sticky) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
        logcapture_start();
        struct harness *h = h_new(seed, NULL, 0);
        h_recover(h);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 50, NULL), 0);
        run_idle(h);
        h->dr.faults.fsync_eio_ppm = RQ_PPM;
        ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 50, NULL), 0);
        while (h->ops[RQ_DISK_PWRITE] < 3)
            diskrunner_step(&h->dr);
        ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 50, NULL), 0); /* waiting */
        run_idle(h);
        ck_assert(h->failed);
        ck_assert_int_eq(h->fail_event.err, RQ_EIO);
        ck_assert_uint_eq(h->fail_event.lsn_first, 3 + 1); /* after the two batches: 1, 2..3 */
        ck_assert_uint_eq(h->fail_event.lsn_last, 5);
        ck_assert_int_eq(h->wal.state, STORE_WAL_FAILED);
        ck_assert_int_eq(h_append(h, 1, 1, 4, STORE_WAL_ENTRY, 0, NULL), RQ_EIO);
        ck_assert_int_eq(store_wal_trim(&h->wal, 2), RQ_EIO);
        store_wal_tick(&h->wal);
        ck_assert_uint_eq(h->dr.queue_count, 0);
        ck_assert_msg(error_lines == 1, "%d: %s", error_lines, last_error_line);
        /* The failed batch may or may not be there; never half, never the one never written. */
        h->dr.faults.fsync_eio_ppm = 0;
        h_crash(h, seed % 2);
        struct store_wal_recovery res = h_recover(h);
        ck_assert(res.next_lsn == 4 || res.next_lsn == 5);
        h_free(h);
    }
}
END_TEST

START_TEST(fsync_eio_during_recovery_fails_it) {
    struct harness *h = h_new(12, NULL, 0);
    h_recover(h);
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 50, NULL), 0);
    run_idle(h);
    h_crash(h, 0);
    h->dr.faults.fsync_eio_ppm = RQ_PPM;
    h->expect_recovery_error = 1;
    ck_assert_int_eq(h_recover(h).err, RQ_EIO);
    ck_assert_int_eq(h->wal.state, STORE_WAL_FAILED);
    ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 0, NULL), RQ_EIO);
    h_free(h);
}
END_TEST

START_TEST(enospc_gives_backpressure_then_writes_everything) {
    struct harness *h = h_new(13, NULL, 0);
    h_recover(h);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 50, NULL), 0);
    run_idle(h);
    h->dr.faults.full = 1;
    ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 50, NULL), 0);
    ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 50, NULL), 0);
    run_idle(h);
    ck_assert(h->wal.disk_full);
    ck_assert(store_wal_busy(&h->wal));
    ck_assert_uint_eq(h->durable_lsn, 3);
    ck_assert_int_eq(h_append(h, 1, 1, 4, STORE_WAL_ENTRY, 50, NULL), RQ_EBUSY);
    store_wal_tick(&h->wal); /* still full */
    run_idle(h);
    ck_assert(h->wal.disk_full);
    ck_assert_uint_ge(store_wal_stats(&h->wal)->enospc, 2);
    h->dr.faults.full = 0;
    store_wal_tick(&h->wal);
    run_idle(h);
    ck_assert(!h->wal.disk_full);
    ck_assert_uint_eq(h->durable_lsn, 5);
    ck_assert_int_eq(h_append(h, 1, 1, 4, STORE_WAL_ENTRY, 50, NULL), 0);
    run_idle(h);
    ck_assert_int_eq(h->failed, 0);
    h_crash(h, 1);
    ck_assert_uint_eq(h_recover(h).records, 6);
    h_free(h);
}
END_TEST

/* The PWRITE fails with ENOSPC while its FSYNC is queued behind it: that FSYNC's success makes
 * nothing durable (nothing is reported), the retry waits until it is back, and then the batch is
 * written whole; nothing lost, nothing reported early. */
START_TEST(enospc_on_the_write_voids_the_queued_fsync) {
    for (int crash = 0; crash <= 2; crash++) {
        logcapture_start();
        struct harness *h = h_new(33 + (uint64_t)crash, NULL, 0);
        h_recover(h);
        ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 50, NULL), 0);
        run_idle(h);
        h->dr.faults.full = 1;
        ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 700, NULL), 0);
        ck_assert_uint_eq(h->dr.queue_count, 2);
        ck_assert(diskrunner_step(&h->dr)); /* PWRITE: RQ_ENOSPC */
        ck_assert(h->wal.disk_full);
        ck_assert(h->wal.write_voided);
        ck_assert_uint_eq(h->dr.queue_count, 1); /* its FSYNC, still queued */
        h->dr.faults.full = 0;
        store_wal_tick(&h->wal); /* too early: the FSYNC is in flight */
        ck_assert_uint_eq(h->dr.queue_count, 1);
        ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 10, NULL), RQ_EBUSY);
        if (crash == 1) { /* both lives' worth of nothing: the batch was never written */
            h_crash(h, 1);
            ck_assert_uint_eq(h_recover(h).records, 1);
            h_free(h);
            continue;
        }
        ck_assert(diskrunner_step(&h->dr)); /* the FSYNC succeeds, but covers nothing */
        ck_assert_uint_eq(h->durable_lsn, 1);
        ck_assert(!h->failed);
        ck_assert(h->wal.disk_full);
        ck_assert(!h->wal.write_voided);
        ck_assert_uint_eq(h->dr.queue_count, 0);
        store_wal_tick(&h->wal); /* the retry: PWRITE + FSYNC again */
        ck_assert_uint_eq(h->dr.queue_count, 2);
        if (crash == 2) { /* a crash with both in flight */
            h_crash(h, 1);
            ck_assert_uint_eq(h_recover(h).records, 1);
            h_free(h);
            continue;
        }
        run_idle(h);
        ck_assert(!h->wal.disk_full);
        ck_assert_uint_eq(h->durable_lsn, 2);
        ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 10, NULL), 0);
        run_idle(h);
        ck_assert_int_eq(error_lines, 0);
        h_crash(h, 1);
        ck_assert_uint_eq(h_recover(h).records, 3);
        h_free(h);
    }
}
END_TEST

/* The FSYNC queued behind a write refused with ENOSPC fails: the WAL fails (fail-stop), even though
 * that FSYNC covered no new data. */
START_TEST(enospc_then_a_failed_fsync_fails_the_wal) {
    struct harness *h = h_new(36, NULL, 0);
    h_recover(h);
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 50, NULL), 0);
    run_idle(h);
    h->dr.faults.full = 1;
    ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 50, NULL), 0);
    ck_assert(diskrunner_step(&h->dr)); /* PWRITE: RQ_ENOSPC */
    ck_assert(h->wal.disk_full);
    h->dr.faults.full = 0;
    h->dr.faults.fsync_eio_ppm = RQ_PPM;
    run_idle(h);
    ck_assert(h->failed);
    ck_assert_int_eq(h->fail_event.err, RQ_EIO);
    ck_assert_uint_eq(h->fail_event.lsn_first, 2);
    ck_assert_uint_eq(h->fail_event.lsn_last, 2);
    ck_assert_int_eq(h->wal.state, STORE_WAL_FAILED);
    store_wal_tick(&h->wal); /* no retry once failed */
    ck_assert_uint_eq(h->dr.queue_count, 0);
    ck_assert_int_eq(error_lines, 1);
    h->dr.faults.fsync_eio_ppm = 0;
    h_crash(h, 1);
    ck_assert_uint_eq(h_recover(h).records, 1);
    h_free(h);
}
END_TEST

/* The PWRITE fails with RQ_EIO while its FSYNC is queued: the failure is reported at once, once;
 * the FSYNC's completion, arriving after, is taken and does nothing (no report, no request). */
START_TEST(write_eio_fails_at_once_and_the_queued_fsync_is_absorbed) {
    for (int fsync_fails = 0; fsync_fails <= 1; fsync_fails++) {
        logcapture_start();
        struct harness *h = h_new(37 + (uint64_t)fsync_fails, NULL, 0);
        h_recover(h);
        ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 50, NULL), 0);
        run_idle(h);
        ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 50, NULL), 0);
        ck_assert_uint_eq(h->dr.queue_count, 2);
        h->force_op = RQ_DISK_PWRITE;
        h->force_result = RQ_EIO;
        ck_assert(diskrunner_step(&h->dr));
        ck_assert(h->failed);
        ck_assert_int_eq(h->fail_event.err, RQ_EIO);
        ck_assert_uint_eq(h->fail_event.lsn_first, 2);
        ck_assert_uint_eq(h->fail_event.lsn_last, 2);
        ck_assert_uint_eq(h->dr.queue_count, 1);
        ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 50, NULL), RQ_EIO);
        if (fsync_fails) h->dr.faults.fsync_eio_ppm = RQ_PPM;
        run_idle(h); /* on_durable REQUIREs that nothing more is reported */
        ck_assert_uint_eq(h->wal.req_count, 0);
        ck_assert_int_eq(error_lines, 1);
        h->dr.faults.fsync_eio_ppm = 0;
        h_crash(h, fsync_fails);
        struct store_wal_recovery res = h_recover(h);
        ck_assert(res.next_lsn == 2 || res.next_lsn == 3);
        h_free(h);
    }
}
END_TEST

/* A crash at every point of a batch in a new file (CLOSE, OPEN, PWRITE + FSYNC, FSYNC_DIR), and
 * of an ordinary one (PWRITE + FSYNC), by power loss or kill -9: judged against the model. */
START_TEST(a_crash_with_write_and_fsync_in_flight) {
    struct store_wal_config c = {4096, 8, 1000, 600};
    uint32_t both_in_flight = 0;
    for (uint64_t k = 0; k < 7; k++) {
        for (int power_loss = 0; power_loss <= 1; power_loss++) {
            struct harness *h = h_new(40 + k, &c, 0);
            h_recover(h);
            ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 300, NULL), 0);
            run_idle(h);
            ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 400, NULL), 0);
            run_idle(h); /* the file now exceeds 600 bytes: the next batch rolls */
            ck_assert_int_eq(h_append(h, 1, 1, 3, STORE_WAL_ENTRY, 500, NULL), 0);
            ck_assert_int_eq(h_append(h, 1, 1, 4, STORE_WAL_ENTRY, 20, NULL), 0);
            for (uint64_t i = 0; i < k && diskrunner_step(&h->dr); i++)
                continue;
            both_in_flight += h->dr.queue_count == 2;
            h_crash(h, power_loss);
            h_recover(h); /* judged: everything reported durable is back */
            run_idle(h);
            ck_assert_int_eq(h_append(h, 1, 1, 5, STORE_WAL_ENTRY, 20, NULL), 0);
            run_idle(h);
            ck_assert_uint_eq(h->durable_lsn, h->count);
            h_crash(h, 1);
            ck_assert_uint_eq(h_recover(h).next_lsn, h->count + 1);
            h_free(h);
        }
    }
    ck_assert_uint_ge(both_in_flight, 4);
}
END_TEST

/* The simulator refuses to create a name when its table is full (RQ_ENOSPC): a roll stalls too,
 * and a trim may run meanwhile. */
START_TEST(enospc_on_roll_stalls_then_retries) {
    struct store_wal_config c = {4096, 8, 1000, 500};
    struct harness *h = h_new(14, &c, 0);
    h_recover(h);
    make_files(h, 3);
    char dummy[RQ_DISK_PATH_MAX];
    uint32_t dummies = 0;
    for (;; dummies++) { /* fill the disk's name table */
        struct rq_disk_req req = {.op = RQ_DISK_OPEN, .flags = RQ_DISK_CREATE};
        snprintf(req.path, sizeof req.path, "d%u", (unsigned)dummies);
        if (raw(h, &req) < 0) break;
        req = (struct rq_disk_req){.op = RQ_DISK_CLOSE, .file = (int32_t)req.result};
        raw(h, &req);
    }
    for (int i = 0; i < 10 && !h->wal.disk_full; i++) { /* until a roll is due */
        ck_assert_int_eq(h_append(h, 2, 1, 1, STORE_WAL_ENTRY, 600, NULL), 0);
        run_idle(h);
    }
    ck_assert(h->wal.disk_full);
    ck_assert_int_eq(h->wal.stalled_step, STORE_WAL_STEP_W_OPEN);
    ck_assert_int_eq(store_wal_trim(&h->wal, h->wal.files[1]), 0); /* runs while stalled */
    h->trim_lsn = h->wal.files[1];
    run_idle(h);
    ck_assert_uint_eq(store_wal_stats(&h->wal)->files_deleted, 1);
    snprintf(dummy, sizeof dummy, "d%u", 0u);
    raw_unlink(h, dummy);
    store_wal_tick(&h->wal);
    run_idle(h);
    ck_assert(!h->wal.disk_full);
    ck_assert_uint_eq(h->durable_lsn, h->count);
    h_crash(h, 1);
    ck_assert_uint_eq(h_recover(h).next_lsn, h->count + 1);
    h_free(h);
}
END_TEST

/* ---- crash consistency ----------------------------------------------------------------------- */

struct crash_knobs {
    int enospc; /* disk-full windows during the run */
};

/* One life: recovery, then `appends` random appends in random bursts, trims and (with knobs)
 * disk-full windows, until done or `crash_at` requests have completed in total. Returns 1 if
 * stopped by the crash point. */
static int run_life(struct harness *h, struct rq_rng *work, uint32_t appends, uint64_t crash_at,
                    const struct crash_knobs *knobs) {
    life_start(h);
    uint32_t full_left = 0;
    for (uint32_t i = 0; i < 100000; i++) {
        if (h->dr.executed == crash_at) return 1;
        h->dr.faults.full = full_left > 0;
        if (!h->recovered) {
            REQUIRE(diskrunner_step(&h->dr));
            continue;
        }
        if (knobs->enospc && full_left == 0 && rq_rng_chance(work, RQ_PPM / 30))
            full_left = (uint32_t)rq_rng_range(work, 1, 5);
        if (appends > 0 && (h->dr.queue_count == 0 || rq_rng_chance(work, RQ_PPM / 2))) {
            uint32_t burst = (uint32_t)rq_rng_range(work, 1, 8);
            for (uint32_t b = 0; b < burst && appends > 0; b++) {
                int rc = h_append_random(h, work);
                REQUIRE(rc == 0 || rc == RQ_EBUSY);
                if (rc != 0) break;
                appends--;
            }
            if (rq_rng_chance(work, RQ_PPM / 8) && h->durable_lsn > 0) {
                uint64_t lsn = rq_rng_range(work, 1, h->durable_lsn + 1);
                REQUIRE(store_wal_trim(&h->wal, lsn) == 0);
                if (lsn > h->trim_lsn) h->trim_lsn = lsn;
            }
            if (h->dr.queue_count > 0 || !h->wal.disk_full) continue;
        }
        if (h->dr.queue_count == 0) {
            if (!h->wal.disk_full) {
                if (appends == 0) return 0;
                continue;
            }
            if (full_left > 0) full_left--;
            h->dr.faults.full = full_left > 0;
            store_wal_tick(&h->wal);
            continue;
        }
        diskrunner_step(&h->dr);
        if (full_left > 0) full_left--;
    }
    ck_abort_msg("life did not finish");
    return 0;
}

/* Life 1 stops after crash_at requests (power loss, or a kill -9 whose page cache a later power
 * loss may tear); life 2 recovers, appends and stops at a random point; life 3 recovers and runs
 * to completion; a final power loss and recovery must bring back everything. Every recovery and
 * every durable report is judged by the callbacks. Returns the requests life 1 ran. */
static uint64_t crash_run(uint64_t seed, uint64_t crash_at, uint64_t *torn_total) {
    struct store_wal_config config;
    config_small(&config);
    /* the least memory allowed: recovery reads files in chunks of 12 KiB */
    struct harness *h = h_new(seed, &config, 3 * (size_t)config.batch_bytes_max);
    struct rq_rng work, chaos;
    rq_rng_stream(&work, seed, 1);
    rq_rng_stream(&chaos, seed * 1000003u + crash_at, 2);
    struct crash_knobs knobs = {.enospc = seed % 3 == 0};
    int stopped = run_life(h, &work, (uint32_t)rq_rng_range(&work, 10, 40), crash_at, &knobs);
    uint64_t life1_ops = h->dr.executed;
    h->dr.faults.full = 0;
    h_crash(h, !stopped || rq_rng_chance(&chaos, RQ_PPM * 3 / 4));
    run_life(h, &work, (uint32_t)rq_rng_range(&work, 0, 20),
             h->dr.executed + rq_rng_below(&chaos, 60), &knobs);
    h->dr.faults.full = 0;
    h_crash(h, rq_rng_chance(&chaos, RQ_PPM / 2));
    knobs.enospc = 0;
    run_life(h, &work, 10, UINT64_MAX, &knobs);
    REQUIRE(h->durable_lsn == h->count); /* a calm life gets everything durable */
    h_crash(h, 1);
    struct store_wal_recovery res = h_recover(h);
    REQUIRE(res.torn_bytes == 0);
    *torn_total += sim_disk_stats(h->dr.disk)->torn_writes;
    h_free(h);
    return life1_ops;
}

START_TEST(crash_after_every_disk_operation_loses_nothing_durable) {
    uint64_t runs = 0, torn = 0;
    memset(&seen, 0, sizeof seen);
    for (uint64_t seed = 1; seed <= CRASH_SEEDS; seed++) {
        uint64_t total = crash_run(seed, UINT64_MAX, &torn);
        ck_assert_uint_gt(total, 0);
        for (uint64_t k = 0; k <= total; k++) {
            crash_run(seed, k, &torn);
            runs++;
        }
    }
    ck_assert_uint_ge(runs, 40000);
    ck_assert_uint_gt(torn, 0);              /* the crashes did tear unsynced batches ... */
    ck_assert_uint_gt(seen.torn_tails, 100); /* ... which recovery cut */
    ck_assert_uint_gt(seen.files_created, runs);
    ck_assert_uint_gt(seen.files_deleted, 100);
    ck_assert_uint_gt(seen.enospc, 100);
    ck_assert_uint_gt(seen.busy, 100);
    printf("wal crash runs: %llu (3 lives + a check each), torn tails cut %llu, files created "
           "%llu, deleted %llu, ENOSPC stalls %llu, EBUSY %llu, records replayed %llu\n",
           (unsigned long long)runs, (unsigned long long)seen.torn_tails,
           (unsigned long long)seen.files_created, (unsigned long long)seen.files_deleted,
           (unsigned long long)seen.enospc, (unsigned long long)seen.busy,
           (unsigned long long)seen.replays);
}
END_TEST

/* ---- corruption and foreign files ------------------------------------------------------------ */

/* Parses "offset N" out of the last error line. */
static uint64_t logged_offset(void) {
    const char *at = strstr(last_error_line, "offset ");
    ck_assert_ptr_nonnull(at);
    return strtoull(at + 7, NULL, 10);
}

/* One random bit of synced WAL data flips: recovery must refuse (RQ_ECORRUPT, naming the file and a
 * batch start at or before the bit) — even when the bit is in the last batch, which was reported
 * durable — and everything it replayed before refusing is genuine (on_replay checks). */
START_TEST(latent_corruption_is_always_detected_never_served) {
    uint32_t in_last_batch = 0, in_last_file = 0;
    for (uint64_t seed = 1; seed <= CORRUPT_SEEDS; seed++) {
        struct harness *h = h_new(seed, NULL, 0);
        struct rq_rng work;
        rq_rng_stream(&work, seed, 1);
        h_recover(h);
        uint32_t n = (uint32_t)rq_rng_range(&work, 1, 40);
        for (uint32_t i = 0; i < n; i++) {
            h_append_random_patiently(h, &work);
            if (rq_rng_chance(&work, RQ_PPM / 3)) run_idle(h);
        }
        run_idle(h);
        h_crash(h, 1);
        char path[RQ_DISK_PATH_MAX];
        uint64_t offset;
        ck_assert_int_eq(sim_disk_corrupt(h->dr.disk, &h->dr.rng, "wal/", path, &offset), 0);
        char last[STORE_WAL_PATH_SIZE];
        store_wal_path(h->wal.files[h->wal.file_count - 1], last);
        in_last_file += strcmp(path, last) == 0;
        logcapture_start();
        h->expect_recovery_error = 1;
        struct store_wal_recovery res = h_recover(h);
        ck_assert_msg(res.err == RQ_ECORRUPT, "seed %llu: bit at %s:%llu: %s",
                      (unsigned long long)seed, path, (unsigned long long)offset,
                      rq_strerror(res.err));
        ck_assert_msg(strstr(last_error_line, path) != NULL, "%s", last_error_line);
        uint64_t at = logged_offset();
        ck_assert_uint_le(at, offset);
        /* the bad batch is the file's last one: the case a torn-tail rule would have dropped */
        const uint8_t *data;
        uint64_t size;
        ck_assert_int_eq(sim_disk_image(h->dr.disk, path, 1, &data, &size), 0);
        if (strcmp(path, last) == 0 && at + 32 <= size &&
            at + 32 + rq_get_u32(data + at + 12) == size)
            in_last_batch++;
        h_free(h);
    }
    ck_assert_uint_gt(in_last_file, 10);
    ck_assert_uint_gt(in_last_batch, 10);
}
END_TEST

/* The pure decoder, exhaustively on one image: every single-bit flip is corruption, whether or not
 * the file is the last; every cut (a tear at any byte, a superset of sector tears) is a torn tail
 * of the last file, replaying exactly the batches before it. */
START_TEST(every_bit_flip_is_corrupt_every_cut_is_torn) {
    static uint8_t image[4096];
    size_t ends[8];
    size_t n = 0;
    uint32_t batches = 0;
    uint64_t lsn = 5;
    for (uint32_t k = 1; k <= 4; k++) {
        n += enc_simple(image + n, lsn, k, 17 * k);
        lsn += k;
        ends[batches++] = n;
    }
    struct store_wal_file_scan fs;
    REQUIRE(store_wal_scan_file(image, n, 5, 0, NULL, NULL, &fs) == 0);
    REQUIRE(fs.records == 10);
    REQUIRE(fs.next_lsn == 15);
    for (size_t bit = 0; bit < n * 8; bit++) {
        image[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        for (int last = 0; last <= 1; last++) {
            int rc = store_wal_scan_file(image, n, 5, last, NULL, NULL, &fs);
            REQUIRE(rc == RQ_ECORRUPT, "flip of bit %zu (last=%d) not detected", bit, last);
        }
        image[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t cut = 0; cut < n; cut++) {
        size_t valid = 0;
        uint64_t records = 0;
        for (uint32_t b = 0; b < batches && ends[b] <= cut; b++) {
            valid = ends[b];
            records += b + 1;
        }
        REQUIRE(store_wal_scan_file(image, cut, 5, 1, NULL, NULL, &fs) == 0);
        REQUIRE(fs.valid_size == valid);
        REQUIRE(fs.torn_size == cut - valid);
        REQUIRE(fs.records == records);
        if (cut != valid)
            REQUIRE(store_wal_scan_file(image, cut, 5, 0, NULL, NULL, &fs) == RQ_ECORRUPT);
    }
}
END_TEST

/* Batches with a valid CRC but a malformed body are foreign, never torn; and a tail crowded with
 * batch-like headers is refused rather than searched without bound. */
START_TEST(malformed_bodies_and_crowded_tails) {
    static uint8_t b[8192];
    struct store_wal_file_scan fs;
    struct enc_rec r = {7, 2, 1, 1, 10, 0};
    size_t n = enc_batch(b, 1, &r, 1);
    b[32 + 25] = 1; /* a reserved record byte, then the CRC made right again */
    uint32_t crc = rq_crc32c(rq_crc32c(0, b, 8), b + 12, n - 12);
    rq_put_u32(b + 8, crc);
    ck_assert_int_eq(store_wal_scan_file(b, n, 1, 1, NULL, NULL, &fs), RQ_ECORRUPT);
    ck_assert_str_eq(fs.why, "a complete batch fails its checksum or structure (a crash cannot "
                             "cause this)");
    struct store_wal_scan sc;
    store_wal_scan(b, n, 1, NULL, NULL, &sc);
    ck_assert_str_eq(sc.why, "reserved record field is not zero");
    n = enc_batch(b, 1, &r, 1);
    rq_put_u32(b + 32 + 28, 11); /* the payload runs one byte past the body */
    rq_put_u32(b + 8, rq_crc32c(rq_crc32c(0, b, 8), b + 12, n - 12));
    store_wal_scan(b, n, 1, NULL, NULL, &sc);
    ck_assert_str_eq(sc.why, "record payload runs past the body");
    /* an incomplete batch, then 300 magic numbers */
    n = enc_simple(b, 1, 1, 4000);
    size_t cut = 3000;
    for (size_t at = 100; at + 4 <= cut && (at - 100) / 8 < 300; at += 8)
        rq_put_u32(b + at, STORE_WAL_MAGIC);
    const char *why = NULL;
    ck_assert_int_eq(store_wal_tail_check(b, cut, 1, &why), RQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(why, "too many"));
}
END_TEST

static void count_records(void *arg, const struct store_wal_record *rec) {
    uint64_t *count = arg;
    REQUIRE(rec->payload_size <= STORE_WAL_BATCH_BYTES_LIMIT);
    (*count)++;
}

/* Random bytes, and random damage to valid images: never a crash (ASan), results consistent. */
START_TEST(the_decoder_survives_arbitrary_input) {
    static uint8_t buf[8192];
    struct rq_rng rng;
    rq_rng_stream(&rng, 99, 0);
    for (uint32_t iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        uint64_t lsn = rq_rng_range(&rng, 1, 5);
        uint64_t first = lsn;
        while (len < 3000) {
            uint32_t k = (uint32_t)rq_rng_range(&rng, 1, 5);
            len += enc_simple(buf + len, lsn, k, (uint32_t)rq_rng_range(&rng, 0, 200));
            lsn += k;
        }
        uint32_t damage = (uint32_t)rq_rng_range(&rng, 0, 4);
        for (uint32_t d = 0; d < damage; d++) {
            if (len == 0) break;
            switch (rq_rng_below(&rng, 4)) {
            case 0: buf[rq_rng_below(&rng, len)] ^= (uint8_t)rq_rng_range(&rng, 1, 255); break;
            case 1: len = (size_t)rq_rng_below(&rng, len + 1); break;
            case 2: /* copy a run of bytes over another place: misplaced batches */
            {
                size_t from = (size_t)rq_rng_below(&rng, len), to = (size_t)rq_rng_below(&rng, len);
                size_t run = (size_t)rq_rng_below(&rng, 300);
                if (from + run > len) run = len - from;
                if (to + run > len) run = len - to;
                memmove(buf + to, buf + from, run);
                break;
            }
            default:
                for (size_t i = 0; i < len; i++)
                    buf[i] = (uint8_t)rq_rng_next(&rng);
            }
        }
        for (int last = 0; last <= 1; last++) {
            uint64_t expect = rq_rng_chance(&rng, RQ_PPM / 2) ? first : 0;
            uint64_t replayed = 0;
            struct store_wal_file_scan fs;
            int rc = store_wal_scan_file(buf, len, expect, last, count_records, &replayed, &fs);
            REQUIRE(rc == 0 || rc == RQ_ECORRUPT);
            REQUIRE(fs.valid_size <= len);
            REQUIRE(replayed == fs.records);
            if (rc == 0) REQUIRE(fs.valid_size + fs.torn_size == len);
            if (rc == 0 && !last) REQUIRE(fs.torn_size == 0);
            if (expect != 0) REQUIRE(fs.next_lsn == expect + fs.records);
        }
    }
}
END_TEST

/* ---- a table of files the WAL did not write -------------------------------------------------- */

enum piece_kind {
    P_END = 0,
    P_BATCH,    /* a valid batch: lsn, count, payload */
    P_CUT,      /* the previous piece cut to `arg` bytes */
    P_BAD_CRC,  /* a complete batch whose CRC is wrong */
    P_SIZE_ROT, /* a batch whose body size field says `arg` bytes more */
    P_ZEROS,    /* `arg` zero bytes */
    P_GARBAGE,  /* `arg` random bytes */
    P_BAD_KIND, /* a batch with a record of kind 7 and a valid CRC */
    P_VERSION2, /* a valid batch but format version 2 */
};

struct piece {
    enum piece_kind kind;
    uint64_t lsn;
    uint32_t count;
    uint32_t arg;
};

struct tfile {
    const char *name; /* in "wal" */
    struct piece pieces[5];
};

struct table_case {
    const char *what;
    struct tfile files[3];
    int err;
    uint64_t records;
    uint64_t next_lsn;
    uint64_t torn_bytes;
    const char *named; /* the error line names this file */
};

#define F1 "0000000000000001.log"
#define F4 "0000000000000004.log"
#define F5 "0000000000000005.log"
#define F6 "0000000000000006.log"
#define B(lsn, n)                                                                                  \
    { P_BATCH, lsn, n, 50 } /* a valid batch of n 50-byte entries */
#define EMPTY                                                                                      \
    {                                                                                              \
        { P_END, 0, 0, 0 }                                                                         \
    } /* a file with no bytes */
#define CUT(n)                                                                                     \
    { P_CUT, 0, 0, n } /* the previous batch cut to n bytes */
#define OK(records, next, torn) 0, records, next, torn, NULL
#define BAD(records, file)      RQ_ECORRUPT, records, 0, 0, file

/* clang-format off */
static const struct table_case table[] = {
    {"two valid files", {{F1, {B(1, 3)}}, {F4, {B(4, 2), B(6, 1)}}}, OK(6, 7, 0)},
    {"only an empty file: LSNs go on from its name", {{F5, EMPTY}}, OK(0, 5, 0)},
    {"empty last file after a full one", {{F1, {B(1, 3)}}, {F4, EMPTY}}, OK(3, 4, 0)},
    {"torn batch body", {{F1, {B(1, 3), B(4, 2), CUT(100)}}}, OK(3, 4, 100)},
    {"torn batch header", {{F1, {B(1, 3), B(4, 2), CUT(10)}}}, OK(3, 4, 10)},
    {"torn first batch of the last file", {{F1, {B(1, 3)}}, {F4, {B(4, 2), CUT(70)}}},
     OK(3, 4, 70)},
    {"zero-filled tail", {{F1, {B(1, 3), {P_ZEROS, 0, 0, 3000}}}}, OK(3, 4, 3000)},
    {"foreign name", {{F1, {B(1, 3)}}, {"hello.txt", {B(1, 1)}}}, BAD(0, "wal/hello.txt")},
    {"uppercase hex name", {{"000000000000000A.log", {B(10, 1)}}}, BAD(0, "000000000000000A.log")},
    {"LSN 0 name", {{"0000000000000000.log", {B(1, 1)}}}, BAD(0, "0000000000000000.log")},
    {"first batch does not match the name", {{F5, {B(1, 3)}}}, BAD(0, "wal/" F5)},
    {"LSN gap between files (a missing file)", {{F1, {B(1, 3)}}, {F6, {B(6, 1)}}},
     BAD(3, "wal/" F6)},
    {"LSN gap before an empty last file", {{F1, {B(1, 3)}}, {F6, EMPTY}}, BAD(3, "wal/" F6)},
    {"LSN overlap between files", {{F1, {B(1, 5)}}, {F4, {B(4, 1)}}}, BAD(5, "wal/" F4)},
    {"empty file before the last", {{F1, EMPTY}, {F4, {B(4, 1)}}}, BAD(0, "wal/" F1)},
    {"torn batch in a file before the last", {{F1, {B(1, 3), B(4, 1), CUT(60)}}, {F4, {B(4, 1)}}},
     BAD(3, "wal/" F1)},
    {"garbage file", {{F1, {{P_GARBAGE, 0, 0, 2000}}}}, BAD(0, "wal/" F1)},
    {"garbage after valid batches", {{F1, {B(1, 3), {P_GARBAGE, 0, 0, 700}}}}, BAD(3, "wal/" F1)},
    {"complete last batch with a bad CRC", {{F1, {B(1, 3), {P_BAD_CRC, 4, 2, 0}}}},
     BAD(3, "wal/" F1)},
    {"bad CRC in the middle", {{F1, {B(1, 3), {P_BAD_CRC, 4, 2, 0}, B(6, 1)}}}, BAD(3, "wal/" F1)},
    {"last batch's size field rotted upward", {{F1, {B(1, 3), {P_SIZE_ROT, 4, 2, 4096}}}},
     BAD(3, "wal/" F1)},
    {"middle batch's size field rotted past the end",
     {{F1, {B(1, 3), {P_SIZE_ROT, 4, 2, 100000}, B(6, 2), B(8, 1)}}}, BAD(3, "wal/" F1)},
    {"valid CRC, unknown record kind", {{F1, {B(1, 3), {P_BAD_KIND, 4, 1, 0}}}},
     BAD(3, "wal/" F1)},
    {"valid batch with an unexpected LSN", {{F1, {B(1, 3), B(9, 1)}}}, BAD(3, "wal/" F1)},
    {"unknown format version", {{F1, {B(1, 3), {P_VERSION2, 4, 1, 0}}}}, BAD(3, "wal/" F1)},
    {"torn header with the wrong LSN", {{F1, {B(1, 3), B(9, 1), CUT(24)}}}, BAD(3, "wal/" F1)},
};
/* clang-format on */

/* Builds one file's bytes from its pieces. */
static size_t build_file(const struct tfile *f, struct rq_rng *rng, uint8_t *buf) {
    size_t n = 0, last_start = 0;
    for (int i = 0; i < 5 && f->pieces[i].kind != P_END; i++) {
        const struct piece *p = &f->pieces[i];
        size_t start = n;
        switch (p->kind) {
        case P_BATCH: n += enc_simple(buf + n, p->lsn, p->count, p->arg); break;
        case P_CUT:
            n = last_start + p->arg;
            start = last_start;
            break;
        case P_BAD_CRC:
            n += enc_simple(buf + n, p->lsn, p->count, 50);
            buf[start + 8] ^= 0x10;
            break;
        case P_SIZE_ROT:
            n += enc_simple(buf + n, p->lsn, p->count, 50);
            rq_put_u32(buf + start + 12, rq_get_u32(buf + start + 12) + p->arg);
            break;
        case P_ZEROS:
            memset(buf + n, 0, p->arg);
            n += p->arg;
            break;
        case P_GARBAGE:
            for (uint32_t k = 0; k < p->arg; k++)
                buf[n + k] = (uint8_t)rq_rng_next(rng);
            n += p->arg;
            break;
        case P_BAD_KIND: {
            struct enc_rec r = {7, 2, 1, 7, 0, 0};
            n += enc_batch(buf + n, p->lsn, &r, 1);
            break;
        }
        case P_VERSION2:
            n += enc_simple(buf + n, p->lsn, p->count, 50);
            rq_put_u16(buf + start + 4, 2);
            rq_put_u32(buf + start + 8, 0);
            {
                uint32_t body = rq_get_u32(buf + start + 12);
                uint32_t crc = rq_crc32c(0, buf + start, 8);
                rq_put_u32(buf + start + 8, rq_crc32c(crc, buf + start + 12, 20 + (size_t)body));
            }
            break;
        case P_END: break;
        }
        last_start = start;
    }
    return n;
}

START_TEST(foreign_and_damaged_files_table) {
    const struct table_case *c = &table[_i];
    struct harness *h = h_new(50 + (uint64_t)_i, NULL, 0);
    static uint8_t buf[1 << 17];
    for (int f = 0; f < 3 && c->files[f].name != NULL; f++) {
        size_t size = build_file(&c->files[f], &h->dr.rng, buf);
        char path[RQ_DISK_PATH_MAX];
        snprintf(path, sizeof path, "wal/%s", c->files[f].name);
        raw_put(h, path, buf, size);
    }
    h->enc_below = UINT64_MAX;
    h->expect_recovery_error = 1;
    struct store_wal_recovery res = h_recover(h);
    ck_assert_msg(res.err == c->err, "%s: err %s, expected %s (%s)", c->what, rq_strerror(res.err),
                  rq_strerror(c->err), last_error_line);
    ck_assert_msg(h->replay_count == c->records, "%s: %llu records replayed", c->what,
                  (unsigned long long)h->replay_count);
    if (c->err != 0) {
        ck_assert_msg(strstr(last_error_line, c->named) != NULL &&
                          strstr(last_error_line, "offset"),
                      "%s: error line names no file/offset: %s", c->what, last_error_line);
        ck_assert_int_eq(h->wal.state, STORE_WAL_FAILED);
        h_free(h);
        return;
    }
    ck_assert_uint_eq(res.next_lsn, c->next_lsn);
    ck_assert_uint_eq(res.torn_bytes, c->torn_bytes);
    ck_assert_int_eq(error_lines, 0);
    ck_assert_int_eq(warn_lines, c->torn_bytes > 0);
    /* The log goes on from there (the torn tail durably cut), and a restart reads it all back. */
    h->enc_below = res.next_lsn;
    h->trim_lsn = res.next_lsn; /* the files were made by hand: the log may start anywhere */
    h->count = res.next_lsn - 1;
    h->durable_lsn = h->count;
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 30, NULL), 0);
    run_idle(h);
    ck_assert_uint_eq(h->durable_lsn, res.next_lsn);
    h_crash(h, 1);
    h->expect_recovery_error = 0;
    res = h_recover(h);
    ck_assert_uint_eq(res.records, c->records + 1);
    ck_assert_uint_eq(res.torn_bytes, 0);
    h_free(h);
}
END_TEST

/* ---- bounded recovery memory ----------------------------------------------------------------- */

START_TEST(recovery_reads_in_chunks_of_at_most_its_memory) {
    struct store_wal_config c = {1024, 16, 900, 1 << 20};
    struct harness *h = h_new(15, &c, 3072); /* the minimum: three batch buffers */
    h_recover(h);
    struct rq_rng rng;
    rq_rng_stream(&rng, 15, 1);
    while (h->wal.file_size < 40000) {
        if (h_append(h, 1, 1, h->count, STORE_WAL_ENTRY, (uint32_t)rq_rng_range(&rng, 0, 900),
                     NULL) != 0)
            diskrunner_step(&h->dr);
    }
    run_idle(h);
    h_crash(h, 1);
    memset(h->ops, 0, sizeof h->ops);
    h->pread_len_max = 0;
    struct store_wal_recovery res = h_recover(h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.records, h->count);
    ck_assert_uint_le(h->pread_len_max, 3072);
    ck_assert_uint_ge(h->ops[RQ_DISK_PREAD], 40000 / 3072);
    ck_assert_uint_eq(res.bytes_read, h->wal.file_size);
    h_free(h);
}
END_TEST

START_TEST(a_batch_larger_than_recovery_memory_is_etoobig) {
    struct store_wal_config big = {65536, 16, 60000, 1 << 20};
    struct harness *h = h_new(16, &big, 0);
    h_recover(h);
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 3100, NULL), 0);
    run_idle(h);
    h_crash(h, 1);
    struct store_wal_config small = {1024, 16, 900, 1 << 20};
    h->config = small;
    h->mem_size = 3072;
    h->expect_recovery_error = 1;
    ck_assert_int_eq(h_recover(h).err, RQ_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(last_error_line, "wal/0000000000000001.log"));
    h_free(h);
}
END_TEST

/* Chunks ending exactly on a batch boundary, and a zero-filled tail that straddles two chunks (cut
 * as torn) or is longer than the memory (refused: a torn tail is at most one batch). */
START_TEST(chunk_boundaries_and_long_zero_tails) {
    struct store_wal_config c = {1024, 16, 900, 1 << 20};
    static uint8_t image[16384];
    for (int variant = 0; variant < 3; variant++) {
        struct harness *h = h_new(21 + (uint64_t)variant, &c, 3072);
        size_t n = 0;
        for (uint64_t lsn = 1; lsn <= 5; lsn++) /* 5 batches of exactly 1024 bytes ... */
            n += enc_simple(image + n, lsn, 1, 1024 - 64);
        n += enc_simple(image + n, 6, 1, 512 - 64); /* ... and one of 512: zeros start mid-chunk */
        ck_assert_uint_eq(n, 5 * 1024 + 512);
        size_t zeros = variant == 0 ? 0 : variant == 1 ? 1500 : 4000;
        memset(image + n, 0, zeros);
        raw_put(h, "wal/0000000000000001.log", image, n + zeros);
        h->enc_below = UINT64_MAX;
        h->expect_recovery_error = 1;
        struct store_wal_recovery res = h_recover(h);
        if (variant < 2) {
            ck_assert_int_eq(res.err, 0);
            ck_assert_uint_eq(res.records, 6);
            ck_assert_uint_eq(res.torn_bytes, zeros);
        } else {
            ck_assert_int_eq(res.err, RQ_ECORRUPT);
            ck_assert_uint_eq(logged_offset(), 5 * 1024 + 512);
        }
        ck_assert_uint_le(h->pread_len_max, 3072);
        h_free(h);
    }
}
END_TEST

/* With STORE_WAL_FILES_MAX files the WAL stops rolling (once warned) until a trim; recovery refuses
 * a directory with more files than that. */
START_TEST(file_count_is_bounded) {
    struct store_wal_config c = {4096, 8, 1000, 1}; /* every batch rolls */
    struct harness *h = h_new(22, &c, 0);
    h_recover(h);
    for (int i = 0; i < STORE_WAL_FILES_MAX + 3; i++) {
        ck_assert_int_eq(h_append(h, 1, 1, (uint64_t)i, STORE_WAL_ENTRY, 10, NULL), 0);
        run_idle(h);
    }
    ck_assert_uint_eq(h->wal.file_count, STORE_WAL_FILES_MAX);
    ck_assert_int_eq(warn_lines, 1);
    ck_assert_uint_eq(h->durable_lsn, STORE_WAL_FILES_MAX + 3);
    h_crash(h, 1);
    struct store_wal_recovery res = h_recover(h);
    ck_assert_uint_eq(res.files, STORE_WAL_FILES_MAX);
    ck_assert_uint_eq(res.records, STORE_WAL_FILES_MAX + 3);
    ck_assert_int_eq(store_wal_trim(&h->wal, h->wal.files[2]), 0);
    h->trim_lsn = h->wal.files[2];
    ck_assert_int_eq(h_append(h, 1, 1, 0, STORE_WAL_ENTRY, 10, NULL), 0);
    run_idle(h);
    ck_assert_uint_eq(h->wal.file_count, STORE_WAL_FILES_MAX - 1); /* two gone, one new */
    h_free(h);

    h = h_new(23, &c, 0);
    static uint8_t batch[256];
    for (uint64_t lsn = 1; lsn <= STORE_WAL_FILES_MAX + 1; lsn++) {
        char path[STORE_WAL_PATH_SIZE];
        store_wal_path(lsn, path);
        raw_put(h, path, batch, enc_simple(batch, lsn, 1, 10));
    }
    h->enc_below = UINT64_MAX;
    h->expect_recovery_error = 1;
    ck_assert_int_eq(h_recover(h).err, RQ_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(last_error_line, "more than"));
    h_free(h);
}
END_TEST

/* Files the WAL did not expect, met while running: a non-empty file where the next file must be
 * created, and a file deleted behind its back before a trim. Both fail the WAL, reported once. */
START_TEST(surprises_while_running_fail_the_wal) {
    struct store_wal_config c = {4096, 8, 1000, 1};
    struct harness *h = h_new(24, &c, 0);
    h_recover(h);
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 10, NULL), 0);
    run_idle(h);
    raw_put(h, "wal/0000000000000002.log", "junk", 4);
    ck_assert_int_eq(h_append(h, 1, 1, 2, STORE_WAL_ENTRY, 10, NULL), 0); /* rolls into it */
    run_idle(h);
    ck_assert(h->failed);
    ck_assert_int_eq(h->fail_event.err, RQ_ECORRUPT);
    ck_assert_uint_eq(h->fail_event.lsn_first, 2);
    ck_assert_ptr_nonnull(strstr(last_error_line, "wal/0000000000000002.log"));
    h_free(h);

    logcapture_start();
    h = h_new(25, &c, 0);
    h_recover(h);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 10, NULL), 0);
        run_idle(h);
    }
    raw_unlink(h, "wal/0000000000000001.log");
    ck_assert_int_eq(store_wal_trim(&h->wal, 3), 0);
    run_idle(h);
    ck_assert(h->failed);
    ck_assert_int_eq(h->fail_event.err, RQ_ENOENT);
    ck_assert_uint_gt(h->fail_event.lsn_first, h->fail_event.lsn_last); /* nothing outstanding */
    ck_assert_int_eq(h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 10, NULL), RQ_ENOENT);
    h_free(h);
}
END_TEST

/* ---- asserted contract ----------------------------------------------------------------------- */

START_TEST(append_before_recovery_aborts) {
    struct harness *h = h_new(17, NULL, 0);
    store_wal_init(&h->wal, &h->dr.io, &h->config, h->mem, h->mem_size, &callbacks, h);
    h_append(h, 1, 1, 1, STORE_WAL_ENTRY, 0, NULL);
}
END_TEST

START_TEST(truncate_with_a_payload_aborts) {
    struct harness *h = h_new(18, NULL, 0);
    h_recover(h);
    h_append(h, 1, 1, 1, STORE_WAL_TRUNCATE, 5, NULL);
}
END_TEST

START_TEST(unknown_kind_aborts) {
    struct harness *h = h_new(19, NULL, 0);
    h_recover(h);
    h_append(h, 1, 1, 1, (enum store_wal_kind)3, 0, NULL);
}
END_TEST

START_TEST(recovering_twice_aborts) {
    struct harness *h = h_new(20, NULL, 0);
    h_recover(h);
    store_wal_recover(&h->wal);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("wal");

    TCase *basic = tcase_create("basic");
    tcase_add_checked_fixture(basic, logcapture_start, logcapture_stop);
    tcase_add_test(basic, names_are_fixed_width_lowercase_hex);
    tcase_add_test(basic, config_bounds);
    tcase_add_test(basic, fresh_start_creates_the_directory_durably);
    tcase_add_test(basic, file_bytes_match_the_documented_layout);
    tcase_add_test(basic, round_trip_several_groups_lsns_continue_truncates_replay);
    tcase_add_test(basic, foreign_requests_are_not_claimed);
    suite_add_tcase(suite, basic);

    TCase *commit = tcase_create("group-commit");
    tcase_add_checked_fixture(commit, logcapture_start, logcapture_stop);
    tcase_add_test(commit, appends_during_a_write_form_exactly_one_more_batch);
    tcase_add_test(commit, fsyncs_stay_far_below_records_under_load);
    tcase_add_test(commit, batch_limits_give_ebusy_then_recover);
    tcase_add_test(commit, appends_from_the_durable_callback_queue_behind);
    tcase_add_test(commit, write_and_fsync_are_queued_together_durable_only_after_the_fsync);
    tcase_add_test(commit, the_next_write_is_queued_before_the_callbacks_run);
    tcase_add_test(commit, a_full_batch_is_sealed_at_once);
    suite_add_tcase(suite, commit);

    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, logcapture_start, logcapture_stop);
    tcase_add_test(files, rolls_to_files_named_by_their_first_lsn);
    tcase_add_test(files, trim_deletes_only_files_wholly_below_and_never_the_current_one);
    tcase_add_test(files, a_crash_that_undoes_a_deletion_is_harmless);
    tcase_add_test(files, recovery_reads_in_chunks_of_at_most_its_memory);
    tcase_add_test(files, a_batch_larger_than_recovery_memory_is_etoobig);
    tcase_add_test(files, chunk_boundaries_and_long_zero_tails);
    tcase_add_test(files, file_count_is_bounded);
    suite_add_tcase(suite, files);

    TCase *faults = tcase_create("faults");
    tcase_add_checked_fixture(faults, logcapture_start, logcapture_stop);
    tcase_add_test(faults, fsync_eio_is_reported_once_and_sticky);
    tcase_add_test(faults, fsync_eio_during_recovery_fails_it);
    tcase_add_test(faults, enospc_gives_backpressure_then_writes_everything);
    tcase_add_test(faults, enospc_on_roll_stalls_then_retries);
    tcase_add_test(faults, enospc_on_the_write_voids_the_queued_fsync);
    tcase_add_test(faults, enospc_then_a_failed_fsync_fails_the_wal);
    tcase_add_test(faults, write_eio_fails_at_once_and_the_queued_fsync_is_absorbed);
    tcase_add_test(faults, a_crash_with_write_and_fsync_in_flight);
    tcase_add_test(faults, surprises_while_running_fail_the_wal);
    suite_add_tcase(suite, faults);

    TCase *crash = tcase_create("crash");
    tcase_set_timeout(crash,
                      900); /* a generous bound for slow sanitizer builds, not a timing test */
    tcase_add_checked_fixture(crash, logcapture_start, logcapture_stop);
    tcase_add_test(crash, crash_after_every_disk_operation_loses_nothing_durable);
    suite_add_tcase(suite, crash);

    TCase *corrupt = tcase_create("corruption");
    tcase_set_timeout(corrupt, 600);
    tcase_add_checked_fixture(corrupt, logcapture_start, logcapture_stop);
    tcase_add_test(corrupt, latent_corruption_is_always_detected_never_served);
    tcase_add_test(corrupt, every_bit_flip_is_corrupt_every_cut_is_torn);
    tcase_add_test(corrupt, the_decoder_survives_arbitrary_input);
    tcase_add_test(corrupt, malformed_bodies_and_crowded_tails);
    tcase_add_loop_test(corrupt, foreign_and_damaged_files_table, 0,
                        (int)(sizeof table / sizeof table[0]));
    suite_add_tcase(suite, corrupt);

    TCase *contract = tcase_create("contract");
    tcase_add_test_raise_signal(contract, append_before_recovery_aborts, SIGABRT);
    tcase_add_test_raise_signal(contract, truncate_with_a_payload_aborts, SIGABRT);
    tcase_add_test_raise_signal(contract, unknown_kind_aborts, SIGABRT);
    tcase_add_test_raise_signal(contract, recovering_twice_aborts, SIGABRT);
    suite_add_tcase(suite, contract);

    return run_suites(srunner_create(suite));
}
