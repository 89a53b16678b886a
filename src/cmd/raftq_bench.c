/* raftq-bench — measurements on the real machine, through the POSIX shim (src/shim/).
 *
 *   raftq-bench store [--dir DIR] [--groups G[,G...]] [--entries N] [--size BYTES] [--json]
 *   raftq-bench lookup ...   (bench_lookup.c)
 *   raftq-bench cluster ...  producers and consumers against a running cluster (bench_cluster.c)
 *
 * For each G (default: 1, 16 and 256, one after the other):
 *   (b) the node WAL (src/store/wal.h), run as a node on the shim's event loop (src/shim/loop.h)
 *       in a fresh data directory: after recovery (of nothing), G groups append N entries of
 *       SIZE bytes in total, round robin over the groups, each counted once `durable` reports
 *       it, keeping as many appends outstanding as the WAL accepts (on RQ_EBUSY — its batch
 *       buffer is full — it appends again after the next disk completion or `durable` callback,
 *       so the buffer being filled refills while the other batch is on the disk). Reported:
 *       entries/s, MB/s of payload (N * SIZE / elapsed), FSYNCs/s, records per FSYNC, and
 *       p50/p99 (p99.9 in --json) of the latency from store_wal_append to its `durable`.
 *   (a) a BASELINE in the same run, in its own directory: for every batch (b) wrote, the same
 *       number of bytes (record headers included) as ONE sequential pwrite at the end of one
 *       file, then one fdatasync — no record format, no CRC, no event loop, requests queued back
 *       to back to the shim's worker, so the disk never waits for the benchmark: the ceiling
 *       for (b) on this disk with these batch sizes. "base MB/s" is bytes the baseline wrote per
 *       second; "WAL/base" is baseline time / WAL time for the same batches (1.00: the WAL costs
 *       nothing over raw writes; it pays for encoding and CRC, and for the round trip worker ->
 *       eventfd -> loop -> next request after every PWRITE and FSYNC).
 * sync(2) runs, untimed, before each phase, so write-back left by one phase is not charged to the
 * next. Latency percentiles are exact, not estimated: every sample is kept (N <= ENTRIES_MAX) and
 * sorted; the p-th percentile is the sample of rank ceil(p/100 * count) (nearest rank).
 *
 * Files live in a fresh directory made under DIR (default ./build/bench-tmp), removed at the end.
 * Speeds are measurements, never pass/fail: nothing here compares against a threshold. */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/log.h"
#include "io/io.h"
#include "shim/disk.h"
#include "shim/loop.h"
#include "shim/wallclock.h"
#include "cmd/bench_cluster.h"
#include "cmd/bench_lookup.h"
#include "store/wal.h"

enum {
    GROUPS_LIST_MAX = 8,
    ENTRIES_MAX = 10 * 1000 * 1000,
    SIZE_MAX_BYTES = 1 << 20,
    BASE_INFLIGHT_MAX = 64,     /* baseline requests queued ahead (pwrite, fsync pairs) */
    BASE_CHUNK_BYTES = 4 << 20, /* the baseline's write buffer: larger than any WAL batch */
    BENCH_GROUPS_MAX = 256,     /* --groups bound (STORE_GROUPS_MAX of the node store) */
};
_Static_assert((int)STORE_WAL_BATCH_BYTES_LIMIT <= (int)BASE_CHUNK_BYTES,
               "one pwrite per baseline batch");

struct options {
    const char *parent_dir;
    uint32_t groups[GROUPS_LIST_MAX];
    uint32_t groups_count;
    uint64_t entries;
    uint32_t size;
    int json;
};

/* The batches one run produced: bytes made durable by each fsync, in order. */
struct plan {
    uint64_t *batch_bytes;
    uint64_t count;
    uint64_t cap;
};

struct result {
    int ran;
    double seconds;
    uint64_t entries;
    uint64_t payload_bytes;
    uint64_t fsyncs;
    uint64_t batches;
    uint64_t latency_p50_ns;
    uint64_t latency_p99_ns;
    uint64_t latency_p999_ns;
};

/* ---- small helpers --------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static char run_dir[512]; /* the fresh directory of this run, once made */

/* Reports, removes the run's directory, and exits: 2 before the run started (bad arguments), 1
 * after (a failure while measuring). */
static void die(const char *fmt, const char *arg) {
    fprintf(stderr, "raftq-bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    if (run_dir[0] == '\0') exit(2);
    nftw(run_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    exit(1);
}

static void plan_add(struct plan *p, uint64_t bytes) {
    if (p->count == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 1024;
        p->batch_bytes = realloc(p->batch_bytes, p->cap * sizeof *p->batch_bytes);
        if (p->batch_bytes == NULL) die("%s", "out of memory");
    }
    p->batch_bytes[p->count++] = bytes;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the sample of rank ceil(p/1000 * count), 1-based, with p in tenths of a percent
 * (500: the median, 990: p99, 999: p99.9); samples sorted ascending. */
static uint64_t percentile(const uint64_t *sorted, uint64_t count, uint32_t p) {
    if (count == 0) return 0;
    uint64_t rank = (count * p + 999) / 1000;
    if (rank == 0) rank = 1;
    return sorted[rank - 1];
}

static void make_dir(const char *path) {
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die("cannot make directory %s", path);
}

/* Hands every waiting completion to done; blocks until there is at least one. */
static void wait_completions(struct shim_disk *d, shim_disk_done_fn done, void *arg) {
    while (shim_disk_poll(d, done, arg) == 0) {
        struct pollfd p = {.fd = shim_disk_eventfd(d), .events = POLLIN, .revents = 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) die("poll: %s", strerror(errno));
    }
}

/* ---- (a) the baseline: raw sequential pwrite + fdatasync ------------------------------------- */

struct baseline {
    struct shim_disk disk;
    const uint8_t *chunk;
    int32_t file;
    int failed;
    struct rq_disk_req reqs[BASE_INFLIGHT_MAX];
    uint32_t free_list[BASE_INFLIGHT_MAX];
    uint32_t free_count;
    uint64_t fsyncs;
};

static void baseline_done(void *arg, struct rq_disk_req *req) {
    struct baseline *b = arg;
    if (req->result < 0) {
        fprintf(stderr, "raftq-bench: baseline: %s failed: %s\n",
                req->op == RQ_DISK_FSYNC ? "fdatasync" : "pwrite", rq_strerror((int)req->result));
        b->failed = 1;
    }
    if (req->op == RQ_DISK_FSYNC && req->result == 0) b->fsyncs++;
    b->free_list[b->free_count++] = (uint32_t)(req - b->reqs);
}

static void baseline_submit(struct baseline *b, enum rq_disk_op op, uint64_t offset, size_t len) {
    while (b->free_count == 0)
        wait_completions(&b->disk, baseline_done, b);
    struct rq_disk_req *r = &b->reqs[b->free_list[--b->free_count]];
    memset(r, 0, sizeof *r);
    r->op = op;
    r->file = b->file;
    r->offset = offset;
    r->buf = (void *)b->chunk;
    r->len = len;
    shim_disk_submit(&b->disk, r);
}

/* Runs the plan's batches in dir: per batch one pwrite (in BASE_CHUNK_BYTES pieces if larger)
 * at the end of one file, then one fdatasync; up to BASE_INFLIGHT_MAX requests queued. */
static void baseline_run(const char *dir, const struct plan *plan, uint64_t entries,
                         struct result *out) {
    static struct baseline b;
    memset(&b, 0, sizeof b);
    uint8_t *chunk = malloc(BASE_CHUNK_BYTES);
    if (chunk == NULL) die("%s", "out of memory");
    for (size_t i = 0; i < BASE_CHUNK_BYTES; i++)
        chunk[i] = (uint8_t)(i * 131 + 7);
    b.chunk = chunk;
    if (shim_disk_open(&b.disk, dir) != 0) die("cannot open %s", dir);
    for (uint32_t i = 0; i < BASE_INFLIGHT_MAX; i++)
        b.free_list[b.free_count++] = i;
    struct rq_disk_req *open_req = &b.reqs[b.free_list[--b.free_count]];
    memset(open_req, 0, sizeof *open_req);
    open_req->op = RQ_DISK_OPEN;
    open_req->flags = RQ_DISK_CREATE;
    snprintf(open_req->path, sizeof open_req->path, "baseline.dat");
    shim_disk_submit(&b.disk, open_req);
    shim_disk_drain(&b.disk, baseline_done, &b);
    if (open_req->result < 0) die("%s", "baseline: cannot create baseline.dat");
    b.file = (int32_t)open_req->result;

    uint64_t offset = 0, payload = 0;
    uint64_t start_ns = rq_shim_monotonic_ns();
    for (uint64_t i = 0; i < plan->count && !b.failed; i++) {
        uint64_t left = plan->batch_bytes[i];
        while (left > 0) {
            size_t n = left < BASE_CHUNK_BYTES ? (size_t)left : BASE_CHUNK_BYTES;
            baseline_submit(&b, RQ_DISK_PWRITE, offset, n);
            offset += n;
            left -= n;
        }
        payload += plan->batch_bytes[i];
        baseline_submit(&b, RQ_DISK_FSYNC, 0, 0);
    }
    shim_disk_drain(&b.disk, baseline_done, &b);
    uint64_t end_ns = rq_shim_monotonic_ns();
    shim_disk_close(&b.disk);
    free(chunk);
    if (b.failed) die("%s", "baseline: a disk request failed (see above)");
    memset(out, 0, sizeof *out);
    out->ran = 1;
    out->seconds = (double)(end_ns - start_ns) / 1e9;
    out->entries = entries;
    out->payload_bytes = payload;
    out->fsyncs = b.fsyncs;
}

/* ---- (b) the node WAL, as a node on the shim's event loop ------------------------------------ */

struct wal_bench {
    const struct rq_io *io; /* the loop's */
    struct rq_io io_wrap;   /* what the WAL gets: the loop's, with disk() recording batches */
    struct shim_loop *loop;
    struct store_wal wal;
    struct store_wal_config config;
    void *mem;
    uint32_t groups;
    uint64_t entries;
    uint32_t size;
    uint8_t *payload;
    uint64_t next_index[BENCH_GROUPS_MAX];
    uint64_t base_lsn; /* LSN of the first append */
    uint64_t appended;
    uint64_t durable;
    uint64_t *append_ns;  /* by append number */
    uint64_t *latency_ns; /* by append number */
    uint64_t start_ns, end_ns;
    struct plan *plan;
    uint64_t batch_bytes; /* PWRITE bytes since the last FSYNC */
    const char *failure;
};

static uint64_t wrap_now(void *env) {
    struct wal_bench *b = env;
    return b->io->now(b->io->env);
}
static void wrap_set_timer(void *env, uint64_t at_ns) {
    struct wal_bench *b = env;
    b->io->set_timer(b->io->env, at_ns);
}
static void wrap_send(void *env, uint32_t to, const void *buf, size_t len) {
    struct wal_bench *b = env;
    b->io->send(b->io->env, to, buf, len);
}
static void wrap_reply(void *env, uint64_t conn, const void *buf, size_t len) {
    struct wal_bench *b = env;
    b->io->reply(b->io->env, conn, buf, len);
}
static void wrap_halt(void *env, const char *reason) {
    struct wal_bench *b = env;
    b->io->halt(b->io->env, reason);
}

/* Records the batches for the baseline: the bytes written before each file FSYNC. */
static void wrap_disk(void *env, struct rq_disk_req *req) {
    struct wal_bench *b = env;
    if (req->op == RQ_DISK_PWRITE) b->batch_bytes += req->len;
    if (req->op == RQ_DISK_FSYNC && b->batch_bytes > 0) {
        plan_add(b->plan, b->batch_bytes);
        b->batch_bytes = 0;
    }
    b->io->disk(b->io->env, req);
}

static void wal_fail(struct wal_bench *b, const char *why, int err) {
    fprintf(stderr, "raftq-bench: WAL: %s: %s\n", why, rq_strerror(err));
    b->failure = why;
    b->io->halt(b->io->env, why);
}

/* Appends until the WAL says RQ_EBUSY or every entry is in. */
static void wal_pump(struct wal_bench *b) {
    while (b->appended < b->entries && b->failure == NULL) {
        uint64_t group = b->appended % b->groups;
        struct store_wal_record rec = {
            .group_id = group,
            .term = 1,
            .index = b->next_index[group],
            .kind = STORE_WAL_ENTRY,
            .payload = b->payload,
            .payload_size = b->size,
        };
        uint64_t lsn;
        uint64_t now = b->io->now(b->io->env);
        int rc = store_wal_append(&b->wal, &rec, &lsn);
        if (rc == RQ_EBUSY) return; /* the next `durable` callback calls again */
        if (rc != 0) {
            wal_fail(b, "append", rc);
            return;
        }
        if (b->appended == 0) b->base_lsn = lsn;
        if (lsn != b->base_lsn + b->appended) {
            wal_fail(b, "LSNs not consecutive", RQ_ECORRUPT);
            return;
        }
        b->append_ns[b->appended++] = now;
        b->next_index[group]++;
    }
}

static void wal_on_replay(void *arg, const struct store_wal_record *rec) {
    (void)rec;
    wal_fail(arg, "a fresh directory replayed a record", RQ_ECORRUPT);
}

static void wal_on_recovered(void *arg, const struct store_wal_recovery *result) {
    struct wal_bench *b = arg;
    if (result->err != 0) {
        wal_fail(b, "recovery", result->err);
        return;
    }
    b->start_ns = b->io->now(b->io->env);
    wal_pump(b);
}

static void wal_on_durable(void *arg, const struct store_wal_durable *ev) {
    struct wal_bench *b = arg;
    if (ev->err != 0) {
        wal_fail(b, "write or fsync", ev->err);
        return;
    }
    uint64_t i = ev->record.lsn - b->base_lsn;
    if (ev->record.lsn < b->base_lsn || i >= b->appended || i != b->durable) {
        wal_fail(b, "durable out of order", RQ_ECORRUPT);
        return;
    }
    uint64_t now = b->io->now(b->io->env);
    b->latency_ns[i] = now - b->append_ns[i];
    b->durable++;
    if (b->durable == b->entries) {
        b->end_ns = now;
        shim_loop_stop(b->loop);
        return;
    }
    wal_pump(b);
}

static void *wal_node_create(const struct rq_io *io, const void *config) {
    struct wal_bench *b = (struct wal_bench *)config;
    b->io = io;
    b->io_wrap = (struct rq_io){
        .env = b,
        .node_id = io->node_id,
        .seed = io->seed,
        .now = wrap_now,
        .set_timer = wrap_set_timer,
        .send = wrap_send,
        .reply = wrap_reply,
        .disk = wrap_disk,
        .halt = wrap_halt,
    };
    static const struct store_wal_callbacks cb = {wal_on_replay, wal_on_recovered, wal_on_durable};
    store_wal_init(&b->wal, &b->io_wrap, &b->config, b->mem, store_wal_memory_size(&b->config), &cb,
                   b);
    return b;
}

static void wal_node_destroy(void *node) { (void)node; }
static void wal_node_start(void *node) {
    struct wal_bench *b = node;
    store_wal_recover(&b->wal);
}
static void wal_node_timer(void *node) {
    struct wal_bench *b = node;
    store_wal_tick(&b->wal);
}
static void wal_node_disk_done(void *node, struct rq_disk_req *req) {
    struct wal_bench *b = node;
    if (!store_wal_on_disk_done(&b->wal, req)) {
        wal_fail(b, "a disk completion not the WAL's", RQ_EIO);
        return;
    }
    /* Any completion may have freed batch room (the WAL starts the next batch's write after its
     * `durable` callbacks, and only then is the other buffer empty): refill it now, while the
     * disk works, as a node receiving a steady stream of appends would. */
    if (b->start_ns != 0 && b->durable < b->entries) wal_pump(b);
}
static void wal_node_peer(void *node, uint32_t from, const void *buf, size_t len) {
    (void)node, (void)from, (void)buf, (void)len;
}
static void wal_node_client(void *node, uint64_t conn, const void *buf, size_t len) {
    (void)node, (void)conn, (void)buf, (void)len;
}
static void wal_node_closed(void *node, uint64_t conn) { (void)node, (void)conn; }

static const struct rq_node_ops wal_node_ops = {
    .name = "bench-wal",
    .create = wal_node_create,
    .destroy = wal_node_destroy,
    .on_start = wal_node_start,
    .on_timer = wal_node_timer,
    .on_peer_message = wal_node_peer,
    .on_client_message = wal_node_client,
    .on_disk_done = wal_node_disk_done,
    .on_conn_closed = wal_node_closed,
};

static void *alloc_or_die(size_t size) {
    void *p = calloc(1, size);
    if (p == NULL) die("%s", "out of memory");
    return p;
}

/* Runs (b) in dir; fills out, and plan with the bytes of every batch. */
static void wal_run(const char *dir, uint32_t groups, uint64_t entries, uint32_t size,
                    struct result *out, struct plan *plan) {
    static struct wal_bench b;
    static struct shim_loop loop;
    memset(&b, 0, sizeof b);
    b.groups = groups;
    b.entries = entries;
    b.size = size;
    b.plan = plan;
    b.loop = &loop;
    store_wal_config_default(&b.config);
    if (store_wal_config_check(&b.config) != 0) die("%s", "WAL: bad default config");
    b.mem = alloc_or_die(store_wal_memory_size(&b.config));
    b.payload = alloc_or_die(size);
    for (uint32_t i = 0; i < size; i++)
        b.payload[i] = (uint8_t)(i * 31 + 1);
    b.append_ns = alloc_or_die(entries * sizeof *b.append_ns);
    b.latency_ns = alloc_or_die(entries * sizeof *b.latency_ns);
    for (uint32_t g = 0; g < groups; g++)
        b.next_index[g] = 1;

    int rc = shim_loop_init(&loop, dir, &wal_node_ops, &b, 1, 1);
    if (rc != 0) die("cannot run the WAL in %s", dir);
    rc = shim_loop_run(&loop);
    const struct store_wal_stats *st = store_wal_stats(&b.wal);
    memset(out, 0, sizeof *out);
    if (rc == 0 && b.failure == NULL && b.durable == entries) {
        out->ran = 1;
        out->seconds = (double)(b.end_ns - b.start_ns) / 1e9;
        out->entries = entries;
        out->payload_bytes = entries * size;
        out->fsyncs = st->fsyncs;
        out->batches = st->batches;
        qsort(b.latency_ns, entries, sizeof *b.latency_ns, compare_u64);
        out->latency_p50_ns = percentile(b.latency_ns, entries, 500);
        out->latency_p99_ns = percentile(b.latency_ns, entries, 990);
        out->latency_p999_ns = percentile(b.latency_ns, entries, 999);
    }
    shim_loop_free(&loop);
    free(b.mem);
    free(b.payload);
    free(b.append_ns);
    free(b.latency_ns);
    if (!out->ran) die("%s", "the WAL run failed (see above): no numbers");
    if (b.batch_bytes != 0 || plan->count != out->fsyncs) {
        die("%s", "the WAL wrote bytes no FSYNC covered, or FSYNCs without writes: bench bug");
    }
}

/* ---- output ---------------------------------------------------------------------------------- */

static double mb_per_s(const struct result *r) {
    return r->seconds > 0 ? (double)r->payload_bytes / 1e6 / r->seconds : 0;
}
static double per_s(uint64_t n, const struct result *r) {
    return r->seconds > 0 ? (double)n / r->seconds : 0;
}
static double ratio(const struct result *w, const struct result *b) {
    return w->seconds > 0 ? b->seconds / w->seconds : 0;
}

static void print_header(const struct options *o, const char *dir) {
    printf("raftq-bench store: %" PRIu64 " entries of %u B per run, files in %s\n", o->entries,
           o->size, dir);
    printf("%6s | %10s %8s %9s %9s %9s %9s | %9s %9s | %8s\n", "groups", "entries/s", "MB/s",
           "fsyncs/s", "rec/fsync", "p50 us", "p99 us", "base MB/s", "base fs/s", "WAL/base");
}

static void print_row(uint32_t groups, const struct result *w, const struct result *b) {
    printf("%6u | %10.0f %8.1f %9.0f %9.1f %9.1f %9.1f | %9.1f %9.0f | %8.2f\n", groups,
           per_s(w->entries, w), mb_per_s(w), per_s(w->fsyncs, w),
           w->fsyncs ? (double)w->entries / (double)w->fsyncs : 0, (double)w->latency_p50_ns / 1e3,
           (double)w->latency_p99_ns / 1e3, mb_per_s(b), per_s(b->fsyncs, b), ratio(w, b));
}

static void print_json(const struct options *o, uint32_t groups, const struct result *w,
                       const struct result *b) {
    printf("{\"bench\":\"store\",\"groups\":%u,\"entries\":%" PRIu64 ",\"size\":%u,", groups,
           o->entries, o->size);
    printf("\"wal\":{\"seconds\":%.6f,\"entries_per_s\":%.1f,\"mb_per_s\":%.3f,"
           "\"fsyncs\":%" PRIu64 ",\"fsyncs_per_s\":%.1f,\"records_per_fsync\":%.3f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f},",
           w->seconds, per_s(w->entries, w), mb_per_s(w), w->fsyncs, per_s(w->fsyncs, w),
           w->fsyncs ? (double)w->entries / (double)w->fsyncs : 0, (double)w->latency_p50_ns / 1e3,
           (double)w->latency_p99_ns / 1e3, (double)w->latency_p999_ns / 1e3);
    printf("\"baseline\":{\"seconds\":%.6f,\"bytes\":%" PRIu64 ",\"mb_per_s\":%.3f,"
           "\"fsyncs\":%" PRIu64 ",\"fsyncs_per_s\":%.1f},",
           b->seconds, b->payload_bytes, mb_per_s(b), b->fsyncs, per_s(b->fsyncs, b));
    printf("\"wal_over_baseline\":%.4f}\n", ratio(w, b));
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: raftq-bench store [--dir DIR] [--groups G[,G...]] [--entries N]\n"
            "                         [--size BYTES] [--json]\n"
            "  --dir DIR      a fresh directory is made in DIR (default build/bench-tmp)\n"
            "  --groups LIST  Raft groups appending at once, 1..%d each (default 1,16,256)\n"
            "  --entries N    entries appended per run, over all groups (default 20000)\n"
            "  --size BYTES   payload of one entry (default 1024)\n"
            "  --json         one JSON object per line instead of the table\n",
            BENCH_GROUPS_MAX);
    exit(2);
}

static uint64_t parse_u64(const char *s, uint64_t lo, uint64_t hi, const char *what) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
        die("bad %s", what);
    }
    return v;
}

static void parse_groups(struct options *o, const char *arg) {
    char buf[128];
    if (strlen(arg) >= sizeof buf) die("bad %s", "--groups");
    strcpy(buf, arg);
    o->groups_count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->groups_count == GROUPS_LIST_MAX) die("bad %s: too many", "--groups");
        o->groups[o->groups_count++] = (uint32_t)parse_u64(tok, 1, BENCH_GROUPS_MAX, "--groups");
    }
    if (o->groups_count == 0) die("bad %s", "--groups");
}

static void parse(struct options *o, int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "store") != 0) usage();
    o->parent_dir = "build/bench-tmp";
    o->groups[0] = 1, o->groups[1] = 16, o->groups[2] = 256;
    o->groups_count = 3;
    o->entries = 20000;
    o->size = 1024;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--dir") == 0 && has_value) {
            o->parent_dir = argv[++i];
        } else if (strcmp(a, "--groups") == 0 && has_value) {
            parse_groups(o, argv[++i]);
        } else if (strcmp(a, "--entries") == 0 && has_value) {
            o->entries = parse_u64(argv[++i], 1, ENTRIES_MAX, "--entries");
        } else if (strcmp(a, "--size") == 0 && has_value) {
            o->size = (uint32_t)parse_u64(argv[++i], 1, SIZE_MAX_BYTES, "--size");
        } else {
            usage();
        }
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "lookup") == 0) return bench_lookup_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "cluster") == 0) return bench_cluster_main(argc, argv);
    struct options o;
    memset(&o, 0, sizeof o);
    parse(&o, argc, argv);
    rq_log_set_sink(shim_log_stderr, NULL);
    rq_log_set_level(RQ_LOG_WARN);

    if (strcmp(o.parent_dir, "build/bench-tmp") == 0) make_dir("build");
    make_dir(o.parent_dir);
    char dir_template[sizeof run_dir];
    snprintf(dir_template, sizeof dir_template, "%s/store-XXXXXX", o.parent_dir);
    if (mkdtemp(dir_template) == NULL) die("cannot make a directory under %s", o.parent_dir);
    memcpy(run_dir, dir_template, sizeof run_dir);

    if (!o.json) print_header(&o, run_dir);
    for (uint32_t gi = 0; gi < o.groups_count; gi++) {
        uint32_t g = o.groups[gi];
        char wal_dir[600], base_dir[600];
        snprintf(wal_dir, sizeof wal_dir, "%s/wal-g%u", run_dir, g);
        snprintf(base_dir, sizeof base_dir, "%s/base-g%u", run_dir, g);
        make_dir(wal_dir);
        make_dir(base_dir);
        struct plan plan;
        memset(&plan, 0, sizeof plan);
        struct result w, b;
        /* sync(2) before each timed phase (untimed): dirty pages left by the previous phase
         * must not be written back on the next one's account. */
        sync();
        wal_run(wal_dir, g, o.entries, o.size, &w, &plan);
        sync();
        baseline_run(base_dir, &plan, o.entries, &b);
        if (o.json) {
            print_json(&o, g, &w, &b);
        } else {
            print_row(g, &w, &b);
        }
        fflush(stdout);
        free(plan.batch_bytes);
    }
    nftw(run_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
