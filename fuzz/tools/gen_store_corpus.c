/* Writes the seed corpus of fuzz/store_recover.c from real files: runs the node store on the
 * simulated disk (sim/diskrunner.h) through appends, a truncation and a crash, then packs pairs of
 * (WAL file, segment file) images — whole, torn, and with a flipped bit — as fuzz inputs:
 * [flags][u16 WAL length][WAL image][segment image]. Usage: gen_store_corpus OUTPUT_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "sim/diskrunner.h"
#include "store/store.h"

static struct store *store;
static int opened;

static void on_opened(void *arg, int err) {
    (void)arg;
    opened = err == 0 ? 1 : -1;
}
static void on_durable(void *arg, uint64_t group, uint64_t index, uint64_t cookie, int err) {
    (void)arg, (void)group, (void)index, (void)cookie, (void)err;
}
static void on_read(void *arg, uint64_t cookie, int err, const struct store_entry *e, uint32_t n) {
    (void)arg, (void)cookie, (void)err, (void)e, (void)n;
}
static void on_failed(void *arg, int err) {
    (void)arg;
    fprintf(stderr, "gen_store_corpus: the store failed: %d\n", err);
    exit(1);
}
static void complete(void *arg, struct rq_disk_req *req) {
    (void)arg;
    if (!store_on_disk_done(store, req)) abort();
}

/* The durable image of the first file in dir whose name ends with suffix. */
static int find_image(struct diskrunner *r, const char *dir, const char *suffix, const uint8_t **data,
                      uint64_t *size) {
    char names[4096];
    struct rq_disk_req req;
    memset(&req, 0, sizeof req);
    req.op = RQ_DISK_LIST;
    snprintf(req.path, sizeof req.path, "%s", dir);
    req.buf = names;
    req.len = sizeof names;
    struct sim_disk_faults none = {0, 0, 0};
    sim_disk_execute(r->disk, &req, &none, &r->rng);
    const char *name = names;
    for (int64_t i = 0; i < req.result; i++, name += strlen(name) + 1) {
        size_t n = strlen(name), m = strlen(suffix);
        if (n < m || strcmp(name + n - m, suffix) != 0) continue;
        char path[RQ_DISK_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        return sim_disk_image(r->disk, path, 1, data, size);
    }
    return -1;
}

static void emit(const char *dir, const char *name, uint8_t flags, const uint8_t *wal, size_t wal_len,
                 const uint8_t *seg, size_t seg_len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    uint8_t head[3] = {flags, 0, 0};
    rq_put_u16(head + 1, (uint16_t)wal_len);
    fwrite(head, 1, 3, f);
    fwrite(wal, 1, wal_len, f);
    fwrite(seg, 1, seg_len, f);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_store_corpus OUTPUT_DIR\n");
        return 2;
    }
    struct diskrunner r;
    diskrunner_init(&r, 42, complete, NULL);
    struct store_config cfg;
    store_config_default(&cfg);
    cfg.block_bytes_max = 1024;
    cfg.segment_bytes_max = 4096;
    static const struct store_callbacks cb = {on_opened, on_durable, on_read, on_failed};
    store = store_create(&r.io, &cfg, &cb, NULL);
    store_open(store);
    diskrunner_run(&r, 100000);
    if (opened != 1) return 1;
    uint8_t payload[200];
    /* 1..30 in term 1, a conflict truncates from 25, then 25..40 in term 2 */
    for (uint64_t k = 1; k <= 46; k++) {
        uint64_t index = k <= 30 ? k : k - 6;
        if (k == 31) store_truncate(store, 0, 25);
        memset(payload, (int)k, sizeof payload);
        struct store_entry e = {.index = index, .term = k <= 30 ? 1 : 2, .message_count = 1,
                                .timestamp = k * 1000, .payload = payload, .payload_size = (uint32_t)(k * 7 % 200)};
        store_append(store, 0, &e, k);
        if (k % 4 == 0) diskrunner_run(&r, 100000);
        store_tick(store);
    }
    diskrunner_run(&r, 100000);
    const uint8_t *wal, *seg;
    uint64_t wal_len, seg_len;
    if (find_image(&r, "wal", ".log", &wal, &wal_len) || find_image(&r, "g0000000000000000", ".seg", &seg, &seg_len)) {
        fprintf(stderr, "gen_store_corpus: no WAL or segment file was written\n");
        return 1;
    }
    if (wal_len > 60000) wal_len = 60000;
    uint8_t *w = malloc(wal_len + 1), *s = malloc(seg_len + 1);
    memcpy(w, wal, wal_len);
    memcpy(s, seg, seg_len);
    emit(argv[1], "real-whole", 1, w, wal_len, s, seg_len);
    emit(argv[1], "real-torn", 1, w, wal_len * 2 / 3, s, seg_len * 2 / 3);
    emit(argv[1], "real-not-last", 0, w, wal_len * 2 / 3, s, seg_len);
    emit(argv[1], "real-expect-continuation", 3, w, wal_len, s, seg_len);
    w[wal_len / 2] ^= 0x10;
    s[seg_len / 3] ^= 0x01;
    emit(argv[1], "real-bitflip", 1, w, wal_len, s, seg_len);
    printf("gen_store_corpus: WAL %llu bytes, segment %llu bytes -> 5 inputs in %s\n",
           (unsigned long long)wal_len, (unsigned long long)seg_len, argv[1]);
    free(w);
    free(s);
    store_destroy(store);
    diskrunner_free(&r);
    return 0;
}
