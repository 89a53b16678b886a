/* Writes the seed corpus of fuzz/partition_apply.c: scripts of u16-length-prefixed chunks, the
 * first an image (empty: refused) and the rest entries. One script of batches of every outcome
 * from an empty state, one continuing from a real image, and one that fills the producer table
 * and evicts, and one of SHARED entries (mixed outcomes in one entry, a full one, malformed
 * ones). Usage: gen_partition_corpus OUTPUT_DIR (which must exist) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/errors.h"
#include "broker/partition.h"
#include "proto/msg.h"

enum { SCRIPT_MAX = 60000, ENTRY_MAX = 512 };

static const char *out_dir;
static uint8_t script[SCRIPT_MAX];
static size_t script_size;
static struct partition_sm sm;
static uint64_t sm_index;

static void write_file(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(script, 1, script_size, f) != script_size || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    script_size = 0;
}

static void chunk(const uint8_t *data, size_t size) {
    if (size > UINT16_MAX || script_size + 2 + size > SCRIPT_MAX) {
        fprintf(stderr, "gen_partition_corpus: script too long\n");
        exit(1);
    }
    rq_put_u16(script + script_size, (uint16_t)size);
    if (size) memcpy(script + script_size + 2, data, size);
    script_size += 2 + size;
}

/* A batch entry of count records at base offset `at` (checked to decode). */
static size_t encode_batch(uint8_t *entry, uint64_t at, uint64_t pid, uint64_t seq,
                           uint32_t count) {
    struct proto_record_in recs[4];
    for (uint32_t i = 0; i < count && i < 4; i++) {
        recs[i] = (struct proto_record_in){.timestamp = 1000 + i,
                                           .key = {(const uint8_t *)"k", 1},
                                           .value = {(const uint8_t *)"value", 5}};
    }
    struct proto_produce_req m = {.topic = {(const uint8_t *)"t", 1}, .producer_id = pid,
                                  .base_sequence = seq, .records = {.count = count}};
    uint8_t req[ENTRY_MAX];
    struct proto_msg msg;
    size_t n = proto_encode_produce_req(req, sizeof req, &m, recs);
    if (n == 0 || proto_decode(PROTO_PRODUCE_REQ, req, n, &msg) != 0) exit(1);
    size_t size = partition_entry_encode(entry, ENTRY_MAX, at, pid, seq, 77,
                                         &msg.u.produce_req.records);
    struct partition_entry e;
    if (size == 0 || partition_entry_decode(entry, size, &e) != 0) exit(1);
    return size;
}

/* A batch entry of count records, added to the script and applied to sm. */
static size_t batch(uint8_t *entry, uint64_t pid, uint64_t seq, uint32_t count) {
    size_t size = encode_batch(entry, sm.next_offset, pid, seq, count);
    struct partition_apply_result res;
    partition_sm_apply(&sm, ++sm_index, entry, size, &res);
    return size;
}

static void add(uint64_t pid, uint64_t seq, uint32_t count) {
    uint8_t entry[ENTRY_MAX];
    size_t n = batch(entry, pid, seq, count);
    chunk(entry, n);
}

/* A SHARED entry as a leader builds it: each batch (pid, seq, count) gets the offsets sm
 * foresees after the ones before it (none when it foresees no append) and is applied to sm as the
 * entry's next part. Returns its size in shared_buf. */
struct row { uint64_t pid, seq; uint32_t count; };
static uint8_t shared_buf[SCRIPT_MAX], parts[SCRIPT_MAX];

static size_t shared(const struct row *rows, uint32_t n) {
    uint32_t sizes[PARTITION_SHARED_MAX];
    size_t used = 0;
    sm_index++;
    for (uint32_t k = 0; k < n; k++) {
        uint8_t *at = parts + used;
        size_t size = encode_batch(at, sm.next_offset, rows[k].pid, rows[k].seq, rows[k].count);
        struct partition_apply_result res;
        partition_sm_preview(&sm, at, size, &res);
        if (res.outcome != PARTITION_APPENDED)
            size = encode_batch(at, PARTITION_NO_OFFSET, rows[k].pid, rows[k].seq, rows[k].count);
        partition_sm_apply_part(&sm, sm_index, k, at, size, &res);
        sizes[k] = (uint32_t)size;
        used += size;
    }
    size_t size = partition_shared_encode(shared_buf, sizeof shared_buf, parts, sizes, n);
    if (size == 0) exit(1);
    return size;
}

/* SHARED entries: mixed outcomes in one entry, a full one, and malformed ones. */
static void shared_script(void) {
    partition_sm_init(&sm);
    sm_index = 0;
    chunk(NULL, 0);
    add(0, 0, 2);
    static const struct row mixed[] = {{5, 0, 2}, {6, 0, 1}, {5, 0, 2}, {6, 7, 1}, {0, 0, 3},
                                       {5, 2, 1}};
    chunk(shared_buf, shared(mixed, 6));
    static const struct row pair[] = {{7, 0, 1}, {7, 1, 2}};
    size_t n = shared(pair, 2);
    chunk(shared_buf, n);
    chunk(shared_buf, n - 1);   /* truncated */
    shared_buf[1] = 1;          /* a count of one */
    chunk(shared_buf, n);
    struct row full[PARTITION_SHARED_MAX];
    for (uint32_t k = 0; k < PARTITION_SHARED_MAX; k++) full[k] = (struct row){8, k, 1};
    chunk(shared_buf, shared(full, PARTITION_SHARED_MAX));
    write_file("shared");
}

/* Applies entry[0..size) to sm and adds it to the script. */
static void add_entry(const uint8_t *entry, size_t size) {
    struct partition_apply_result res;
    partition_sm_apply(&sm, ++sm_index, entry, size, &res);
    chunk(entry, size);
}

static void add_cursor(uint8_t op, const char *name, uint64_t generation, uint64_t member,
                       uint64_t offset) {
    uint8_t entry[CURSOR_ENTRY_MAX];
    struct cursor_entry e = {.op = op, .name = {(const uint8_t *)name, (uint32_t)strlen(name)},
                             .generation = generation, .member = member, .offset = offset};
    add_entry(entry, cursor_entry_encode(entry, sizeof entry, &e));
}

/* Consumer groups' cursors (claims, a fence, commits, a reset) and delayed messages (held, one
 * released, one refused release), ending in an image of them all. */
static void control_script(void) {
    partition_sm_init(&sm);
    sm_index = 0;
    chunk(NULL, 0);
    add(0, 0, 3);
    add_cursor(CURSOR_CLAIM, "g", 1, 1, 0);
    add_cursor(CURSOR_COMMIT, "g", 1, 1, 2);
    add_cursor(CURSOR_CLAIM, "g", 2, 7, 0);      /* fences member 1 */
    add_cursor(CURSOR_COMMIT, "g", 1, 1, 3);     /* refused */
    add_cursor(CURSOR_CLAIM, "p/m1", 1, 3, 0);
    add_cursor(CURSOR_RESET, "g", 0, 0, 1);
    uint8_t entry[ENTRY_MAX], rec[64];
    struct rq_writer w;
    rq_writer_init(&w, rec, sizeof rec);
    const uint8_t one[] = {9, 0, 3, 'd', 'u', 'e', 0};   /* ts 9, no key, "due", no headers */
    rq_write_bytes(&w, one, sizeof one);
    struct proto_records rs;
    if (proto_records_decode(rec, w.len, 1, 0, &rs) != 0) exit(1);
    add_entry(entry, delay_entry_encode(entry, sizeof entry, 500, 100, &rs));
    add_entry(entry, delay_entry_encode(entry, sizeof entry, 900, 100, &rs));
    const struct delay_item *it = &sm.delays.items[0];
    add_entry(entry, delay_release_encode(entry, sizeof entry, &sm.delays, it, sm.next_offset, 600));
    add(0, 0, 1);
    static uint8_t image[PARTITION_IMAGE_MAX];
    size_t size = partition_sm_image(&sm, image, sizeof image);
    if (size == 0 || sm.delays.count != 1 || sm.cursors.count != 2) exit(1);
    write_file("groups-and-delays");
    chunk(image, size);
    it = &sm.delays.items[0];
    add_entry(entry, delay_release_encode(entry, sizeof entry, &sm.delays, it, sm.next_offset, 999));
    add_cursor(CURSOR_CLAIM, "g", 3, 2, 0);
    write_file("groups-and-delays-image");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_partition_corpus OUTPUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    /* Every outcome from an empty state. */
    partition_sm_init(&sm);
    sm_index = 0;
    chunk(NULL, 0);
    add(0, 0, 2);
    add(5, 0, 2);
    add(5, 2, 1);
    add(5, 0, 2);   /* duplicate */
    add(5, 9, 1);   /* gap */
    add(0, 0, 4);
    uint8_t entry[ENTRY_MAX];
    size_t n = batch(entry, 6, 0, 3);
    chunk(entry, n - 1);   /* truncated */
    entry[0] = 4;
    chunk(entry, n);       /* unknown kind */
    write_file("outcomes");
    /* Retention: the log start forward, then refused (back, past the end), then damaged. */
    partition_sm_init(&sm);
    sm_index = 0;
    chunk(NULL, 0);
    add(0, 0, 3);
    add(7, 0, 2);
    static const uint64_t starts[] = {2, 1, 9, 5};
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++) {
        n = partition_retain_encode(entry, sizeof entry, starts[i]);
        chunk(entry, n);
    }
    add(7, 0, 2);          /* a duplicate of a deleted batch: its original offset */
    n = partition_retain_encode(entry, sizeof entry, 300);
    chunk(entry, n - 1);   /* truncated */
    write_file("retention");
    /* From a real image. */
    partition_sm_init(&sm);
    sm_index = 10;
    batch(entry, 5, 0, 2);
    batch(entry, 9, 100, 1);
    batch(entry, 5, 2, 3);
    static uint8_t image[PARTITION_IMAGE_MAX];
    size_t size = partition_sm_image(&sm, image, sizeof image);
    if (size == 0 || partition_sm_restore(&sm, image, size) != 0) exit(1);
    chunk(image, size);
    add(5, 5, 1);
    add(9, 100, 1);   /* duplicate */
    add(9, 102, 1);   /* gap */
    write_file("image");
    /* A full table, then one more producer. */
    partition_sm_init(&sm);
    sm_index = 0;
    chunk(NULL, 0);
    for (uint64_t id = 1; id <= PARTITION_PRODUCERS_MAX + 1; id++) add(id, 0, 1);
    add(1, 0, 1);   /* evicted: taken as new */
    write_file("eviction");
    if (sm.stats.evictions != 2) {
        fprintf(stderr, "gen_partition_corpus: expected two evictions\n");
        return 1;
    }
    shared_script();
    if (sm.stats.duplicates != 1 || sm.stats.out_of_order != 1) {
        fprintf(stderr, "gen_partition_corpus: expected a duplicate and a gap in a shared entry\n");
        return 1;
    }
    control_script();
    return 0;
}
