/* raftq-bench lookup [--dir DIR] [--gb N] [--lookups N] [--cold]
 *
 * Builds one partition of N GiB (default 2) of segment files on real files through the shim — 64 KiB
 * entries of 100 messages each, 1 MiB blocks, 1 GiB segments — then opens it afresh, which rebuilds
 * the sparse in-memory index from the files, and times random message-offset lookups
 * (store_segment_find_offset). Prints the partition size, the index build time, the median and p99
 * lookup time, and the PREADs per lookup (goal: one). With --cold the page cache is dropped before
 * the lookups (needs root: /proc/sys/vm/drop_caches); without it the files are likely cached. */
#define _GNU_SOURCE
#include "cmd/bench_lookup.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/rng.h"
#include "shim/disk.h"
#include "shim/wallclock.h"
#include "store/segment.h"

enum {
    LOOKUP_ENTRY_BYTES = 64 * 1024,
    LOOKUP_MESSAGES_PER_ENTRY = 100,
    LOOKUP_BLOCK_BYTES = 1 << 20,
    LOOKUP_BATCH = 64,
    LOOKUP_MAX = 1000000,
};

struct lookup_bench {
    struct shim_disk disk;
    struct rq_io io;
    struct store_segment seg;
    uint8_t *buf;
    size_t buf_size;
    struct store_segment_config config;
    int done;
    int err;
    struct store_entry found;
};

static void lookup_die(const char *what, int err) {
    fprintf(stderr, "raftq-bench lookup: %s: %s\n", what, rq_strerror(err));
    exit(1);
}

static uint64_t lookup_now(void *env) {
    (void)env;
    return rq_shim_monotonic_ns();
}
static void lookup_set_timer(void *env, uint64_t at) { (void)env, (void)at; }
static void lookup_send(void *env, uint32_t to, const void *b, size_t n) { (void)env, (void)to, (void)b, (void)n; }
static void lookup_reply(void *env, uint64_t c, const void *b, size_t n) { (void)env, (void)c, (void)b, (void)n; }
static void lookup_disk(void *env, struct rq_disk_req *req) {
    struct lookup_bench *b = env;
    shim_disk_submit(&b->disk, req);
}
static void lookup_halt(void *env, const char *reason) {
    (void)env;
    fprintf(stderr, "raftq-bench lookup: halt: %s\n", reason);
    exit(1);
}

static void on_segment(void *arg, const struct store_segment_result *r) {
    struct lookup_bench *b = arg;
    b->done = 1;
    b->err = r->err;
}

static void on_completion(void *arg, struct rq_disk_req *req) {
    struct lookup_bench *b = arg;
    if (!store_segment_on_disk_done(&b->seg, req)) lookup_die("a completion nobody asked for", RQ_EINVAL);
}

/* Runs completions until the segment store's operation finished. */
static void wait_done(struct lookup_bench *b, const char *what) {
    while (!b->done) {
        if (shim_disk_poll(&b->disk, on_completion, b) > 0) continue;
        struct pollfd p = {.fd = shim_disk_eventfd(&b->disk), .events = POLLIN, .revents = 0};
        if (poll(&p, 1, -1) < 0 && errno != EINTR) lookup_die("poll", RQ_EIO);
    }
    b->done = 0;
    if (b->err) lookup_die(what, b->err);
}

static void segment_start(struct lookup_bench *b) {
    store_segment_init(&b->seg, &b->io, 1, &b->config, b->buf, b->buf_size, on_segment, b);
    store_segment_open(&b->seg);
    wait_done(b, "open");
}

static int compare_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

static void build_partition(struct lookup_bench *b, uint64_t entries) {
    uint8_t *payload = malloc(LOOKUP_ENTRY_BYTES);
    if (payload == NULL) lookup_die("memory", RQ_ENOMEM);
    for (uint32_t i = 0; i < LOOKUP_ENTRY_BYTES; i++) payload[i] = (uint8_t)(i * 131 + 7);
    struct store_entry batch[LOOKUP_BATCH];
    uint64_t next = 1;
    while (next <= entries) {
        uint32_t n = 0;
        for (; n < LOOKUP_BATCH && next + n <= entries; n++) {
            memset(&batch[n], 0, sizeof batch[n]);
            batch[n].index = next + n;
            batch[n].term = 1;
            batch[n].timestamp = next + n;
            batch[n].message_count = LOOKUP_MESSAGES_PER_ENTRY;
            batch[n].payload = payload;
            batch[n].payload_size = LOOKUP_ENTRY_BYTES;
        }
        uint32_t accepted = 0;
        int rc = store_segment_append(&b->seg, batch, n, &accepted);
        if (rc != 0) lookup_die("append", rc);
        wait_done(b, "append");
        next += accepted;
    }
    free(payload);
}

int bench_lookup_main(int argc, char **argv) {
    const char *parent = "build/bench-tmp";
    uint64_t gib = 2, lookups = 2000;
    int cold = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) parent = argv[++i];
        else if (strcmp(argv[i], "--gb") == 0 && i + 1 < argc) gib = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--lookups") == 0 && i + 1 < argc) lookups = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--cold") == 0) cold = 1;
        else {
            fprintf(stderr, "usage: raftq-bench lookup [--dir DIR] [--gb 1..6] [--lookups N] [--cold]\n");
            return 2;
        }
    }
    if (gib < 1 || gib > 6 || lookups < 1 || lookups > LOOKUP_MAX) {
        fprintf(stderr, "raftq-bench lookup: --gb must be 1..6 (4096 blocks of 1 MiB per group), --lookups 1..%d\n",
                LOOKUP_MAX);
        return 2;
    }
    mkdir("build", 0755);
    mkdir(parent, 0755);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/lookup-XXXXXX", parent);
    if (mkdtemp(dir) == NULL) lookup_die("mkdtemp", RQ_EIO);

    static struct lookup_bench b;
    b.io = (struct rq_io){.env = &b, .node_id = 1, .seed = 1, .now = lookup_now, .set_timer = lookup_set_timer,
                          .send = lookup_send, .reply = lookup_reply, .disk = lookup_disk, .halt = lookup_halt};
    b.config.block_size_max = LOOKUP_BLOCK_BYTES;
    b.config.segment_size_max = 1ull << 30;
    b.buf_size = store_segment_buf_size_min(&b.config);
    b.buf = malloc(b.buf_size);
    if (b.buf == NULL || shim_disk_open(&b.disk, dir) != 0) lookup_die("setup", RQ_EIO);

    uint64_t entries = gib * (1ull << 30) / LOOKUP_ENTRY_BYTES;
    segment_start(&b);
    uint64_t t0 = rq_shim_monotonic_ns();
    build_partition(&b, entries);
    double write_s = (double)(rq_shim_monotonic_ns() - t0) / 1e9;

    /* A fresh store over the same files: the index is rebuilt from them. */
    shim_disk_close(&b.disk);
    if (shim_disk_open(&b.disk, dir) != 0) lookup_die("reopen", RQ_EIO);
    t0 = rq_shim_monotonic_ns();
    segment_start(&b);
    double open_s = (double)(rq_shim_monotonic_ns() - t0) / 1e9;
    if (cold) {
        sync();
        FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
        if (f == NULL || fputs("3\n", f) < 0) cold = -1;
        if (f) fclose(f);
    }
    struct rq_rng rng;
    rq_rng_seed(&rng, 7);
    uint64_t messages = entries * LOOKUP_MESSAGES_PER_ENTRY;
    uint64_t *lat = malloc(lookups * sizeof *lat);
    if (lat == NULL) lookup_die("memory", RQ_ENOMEM);
    uint64_t reads_before = b.seg.stats.reads;
    for (uint64_t i = 0; i < lookups; i++) {
        uint64_t offset = rq_rng_below(&rng, messages);
        uint64_t start = rq_shim_monotonic_ns();
        int rc = store_segment_find_offset(&b.seg, offset, &b.found);
        if (rc != 0) lookup_die("find_offset", rc);
        wait_done(&b, "find_offset");
        lat[i] = rq_shim_monotonic_ns() - start;
        if (b.found.first_offset > offset || offset >= b.found.first_offset + b.found.message_count) {
            lookup_die("find_offset returned the wrong entry", RQ_ECORRUPT);
        }
    }
    uint64_t reads = b.seg.stats.reads - reads_before;
    qsort(lat, lookups, sizeof *lat, compare_u64);
    printf("raftq-bench lookup: partition %" PRIu64 " GiB = %" PRIu64 " entries, %" PRIu64
           " messages, in %s\n", gib, entries, messages, dir);
    printf("  write %.1f s (%.0f MB/s); index rebuilt at open in %.2f s\n", write_s,
           (double)gib * 1073.741824 / write_s, open_s);
    printf("  %" PRIu64 " random offset lookups (%s page cache): median %.1f us, p99 %.1f us, max %.1f us; "
           "%.3f PREADs per lookup\n",
           lookups, cold == 1 ? "dropped" : cold == -1 ? "could not drop the" : "warm",
           (double)lat[lookups / 2] / 1e3, (double)lat[lookups * 99 / 100] / 1e3, (double)lat[lookups - 1] / 1e3,
           (double)reads / (double)lookups);
    free(lat);
    free(b.buf);
    shim_disk_close(&b.disk);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "raftq-bench lookup: could not remove %s\n", dir);
    return 0;
}
