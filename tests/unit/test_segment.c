/* The per-group segment store (src/store/segment.c, src/store/block.c), driven against the
 * simulator's disk through sim/diskrunner.h: the test decides when each disk request executes, so
 * a run can crash (power loss or process exit) after any number of completed requests and start a
 * new life of the store on the same disk. Everything is seeded; nothing reads the wall clock. */
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
#include "store/block.h"
#include "store/segment.h"
#include "sim/logcapture.h"
#include "tests/unit/suite_main.h"

enum {
    GROUPS_MAX = 4,
    INDEX_MAX = STORE_SEGMENT_BLOCKS_MAX + 4096, /* indexes a test uses */
    PAYLOAD_MAX = 160, /* bytes of payload per test entry */
    OUT_MAX = 64,      /* entries per read */
    NAMES_SIZE = 8192,
};


/* ---- entries the tests write: a model of what the log must hold ------------------------------ */

struct mentry {
    uint64_t term;
    uint64_t offset;
    uint64_t timestamp;
    uint32_t count;
    uint32_t size;
    uint8_t payload[PAYLOAD_MAX];
};

/* A log: entries [first, next) by index. */
struct model {
    uint64_t first;
    uint64_t next;
    uint64_t next_offset;
    struct mentry e[INDEX_MAX];
};

static void model_reset(struct model *m, uint64_t next, uint64_t next_offset) {
    m->first = next;
    m->next = next;
    m->next_offset = next_offset;
}

static const struct mentry *model_at(const struct model *m, uint64_t index) {
    ck_assert_uint_ge(index, m->first);
    ck_assert_uint_lt(index, m->next);
    ck_assert_uint_lt(index, INDEX_MAX);
    return &m->e[index];
}

static void entry_fill(struct rq_rng *rng, struct mentry *e, uint64_t term, uint64_t timestamp,
                       uint32_t size_max) {
    e->term = term;
    e->timestamp = timestamp;
    e->count = rq_rng_chance(rng, RQ_PPM / 7) ? 0 : (uint32_t)rq_rng_range(rng, 1, 5);
    e->size = rq_rng_chance(rng, RQ_PPM / 10) ? 0 : (uint32_t)rq_rng_below(rng, size_max + 1);
    for (uint32_t i = 0; i < e->size; i++)
        e->payload[i] = (uint8_t)rq_rng_next(rng);
}

static struct store_entry entry_view(uint64_t index, const struct mentry *e) {
    struct store_entry v = {
        .index = index,
        .term = e->term,
        .timestamp = e->timestamp,
        .message_count = e->count,
        .payload_size = e->size,
        .payload = e->payload,
    };
    return v;
}

static void entry_expect(uint64_t index, const struct mentry *want, const struct store_entry *got,
                         const char *what) {
    ck_assert_msg(got->index == index, "%s: index %llu, expected %llu", what,
                  (unsigned long long)got->index, (unsigned long long)index);
    ck_assert_msg(got->term == want->term && got->timestamp == want->timestamp &&
                      got->message_count == want->count && got->payload_size == want->size &&
                      got->first_offset == want->offset,
                  "%s: entry %llu differs (term %llu/%llu ts %llu/%llu count %u/%u size %u/%u "
                  "offset %llu/%llu)",
                  what, (unsigned long long)index, (unsigned long long)got->term,
                  (unsigned long long)want->term, (unsigned long long)got->timestamp,
                  (unsigned long long)want->timestamp, got->message_count, want->count,
                  got->payload_size, want->size, (unsigned long long)got->first_offset,
                  (unsigned long long)want->offset);
    ck_assert_msg(want->size == 0 || memcmp(got->payload, want->payload, want->size) == 0,
                  "%s: entry %llu payload differs", what, (unsigned long long)index);
}

/* ---- the harness: one diskrunner, up to GROUPS_MAX stores ------------------------------------ */

struct harness;

struct group {
    struct harness *h;
    uint64_t id;
    struct store_segment *s;
    uint8_t *buf;
    size_t buf_size;
    struct store_segment_config config;
    uint32_t done_count;
    struct store_segment_result res; /* the last completion */
    /* copies of the entries the last READ / FOUND delivered */
    struct store_entry got[OUT_MAX];
    uint8_t got_payload[OUT_MAX][PAYLOAD_MAX];
    struct store_entry out[OUT_MAX]; /* lent to the store */
};

struct harness {
    struct diskrunner r;
    struct group groups[GROUPS_MAX];
    uint32_t group_count;
    struct rq_rng raw_rng;
};

static void on_done(void *arg, const struct store_segment_result *res) {
    struct group *g = arg;
    g->done_count++;
    g->res = *res;
    ck_assert_uint_le(res->entry_count, OUT_MAX);
    for (uint32_t k = 0; k < res->entry_count; k++) {
        g->got[k] = res->entries[k];
        ck_assert_uint_le(res->entries[k].payload_size, PAYLOAD_MAX);
        if (res->entries[k].payload_size > 0) {
            memcpy(g->got_payload[k], res->entries[k].payload, res->entries[k].payload_size);
        }
        g->got[k].payload = g->got_payload[k];
    }
    if (res->err == 0) {
        ck_assert_uint_eq(res->first_index, store_segment_first_index(g->s));
        ck_assert_uint_eq(res->last_index, store_segment_last_index(g->s));
    }
}

static void complete(void *arg, struct rq_disk_req *req) {
    struct harness *h = arg;
    for (uint32_t i = 0; i < h->group_count; i++) {
        if (store_segment_on_disk_done(h->groups[i].s, req)) return;
    }
    ck_abort_msg("a completed request belongs to no store");
}

static const struct store_segment_config small_config = {.block_size_max = 256,
                                                         .segment_size_max = 1024};

static struct harness *harness_new(uint64_t seed, uint32_t groups,
                                   const struct store_segment_config *config) {
    struct harness *h = calloc(1, sizeof *h);
    ck_assert_ptr_nonnull(h);
    diskrunner_init(&h->r, seed, complete, h);
    rq_rng_stream(&h->raw_rng, seed, 9);
    h->group_count = groups;
    for (uint32_t i = 0; i < groups; i++) {
        struct group *g = &h->groups[i];
        g->h = h;
        g->id = 0x10 + i * 0x1111;
        g->config = *config;
        g->buf_size = store_segment_buf_size_min(config);
        g->buf = calloc(1, g->buf_size);
        g->s = calloc(1, sizeof *g->s);
        ck_assert_ptr_nonnull(g->buf);
        ck_assert_ptr_nonnull(g->s);
    }
    return h;
}

static void harness_free(struct harness *h) {
    for (uint32_t i = 0; i < h->group_count; i++) {
        free(h->groups[i].buf);
        free(h->groups[i].s);
    }
    diskrunner_free(&h->r);
    free(h);
}

/* Runs requests until g reports one more completion. */
static void wait_done(struct group *g, uint32_t before) {
    for (uint32_t i = 0; i < 100000 && g->done_count == before; i++) {
        ck_assert_msg(diskrunner_step(&g->h->r), "no request queued but no completion yet");
    }
    ck_assert_uint_eq(g->done_count, before + 1);
}

static void start_open(struct group *g) {
    store_segment_init(g->s, &g->h->r.io, g->id, &g->config, g->buf, g->buf_size, on_done, g);
    store_segment_open(g->s);
}

static struct store_segment_result open_group(struct group *g) {
    uint32_t before = g->done_count;
    start_open(g);
    wait_done(g, before);
    ck_assert_int_eq(g->res.event, STORE_SEGMENT_OPENED);
    return g->res;
}

static void crash(struct harness *h, int power_loss) { diskrunner_crash(&h->r, power_loss); }

/* Appends m's entries [from, to) (already in m), all of them, in as many calls as it takes. */
static void append_range(struct group *g, const struct model *m, uint64_t from, uint64_t to) {
    static struct store_entry views[INDEX_MAX];
    uint32_t n = (uint32_t)(to - from);
    for (uint32_t k = 0; k < n; k++)
        views[k] = entry_view(from + k, &m->e[from + k]);
    uint32_t done = 0;
    while (done < n) {
        uint32_t accepted = 0;
        uint32_t before = g->done_count;
        ck_assert_int_eq(store_segment_append(g->s, views + done, n - done, &accepted), 0);
        ck_assert_uint_ge(accepted, 1);
        wait_done(g, before);
        ck_assert_int_eq(g->res.event, STORE_SEGMENT_APPENDED);
        ck_assert_int_eq(g->res.err, 0);
        done += accepted;
        ck_assert_uint_eq(g->res.durable_index, from + done - 1);
    }
}

/* Adds n new entries to m (term `term`, timestamps from *clock) and appends them. */
static void append_new(struct group *g, struct model *m, struct rq_rng *rng, uint32_t n,
                       uint64_t term, uint64_t *clock, uint32_t size_max) {
    uint64_t from = m->next;
    for (uint32_t k = 0; k < n; k++) {
        ck_assert_uint_lt(m->next, INDEX_MAX);
        struct mentry *e = &m->e[m->next];
        *clock += rq_rng_below(rng, 20);
        entry_fill(rng, e, term, *clock, size_max);
        e->offset = m->next_offset;
        m->next_offset += e->count;
        m->next++;
    }
    append_range(g, m, from, m->next);
}

/* Reads the whole log through the store and checks it equals m. */
static void expect_log(struct group *g, const struct model *m, const char *what) {
    ck_assert_msg(store_segment_first_index(g->s) == m->first &&
                      store_segment_last_index(g->s) + 1 == m->next,
                  "%s: store holds %llu..%llu, model %llu..%llu", what,
                  (unsigned long long)store_segment_first_index(g->s),
                  (unsigned long long)store_segment_last_index(g->s), (unsigned long long)m->first,
                  (unsigned long long)(m->next - 1));
    ck_assert_uint_eq(g->s->next_offset, m->next_offset);
    uint64_t at = m->first;
    while (at < m->next) {
        uint32_t before = g->done_count;
        ck_assert_int_eq(store_segment_read(g->s, at, OUT_MAX, UINT64_MAX, g->out, OUT_MAX), 0);
        wait_done(g, before);
        ck_assert_int_eq(g->res.err, 0);
        ck_assert_uint_ge(g->res.entry_count, 1);
        for (uint32_t k = 0; k < g->res.entry_count; k++) {
            entry_expect(at + k, model_at(m, at + k), &g->got[k], what);
        }
        at += g->res.entry_count;
    }
}

static int64_t raw(struct harness *h, struct rq_disk_req *req) {
    struct sim_disk_faults none = {0};
    sim_disk_execute(h->r.disk, req, &none, &h->raw_rng);
    return req->result;
}

/* The names in g's directory (volatile view): count, and each checked by `check`. */
static int64_t list_names(struct group *g, char *names, size_t cap) {
    struct rq_disk_req req = {.op = RQ_DISK_LIST, .buf = names, .len = cap};
    store_segment_dir(g->id, req.path);
    return raw(g->h, &req);
}

/* Every file in the group directory is one of the store's segments, each durable (name and
 * content), and the directory itself is durable: nothing recovery cannot explain. */
static void expect_files_explained(struct group *g) {
    static char names[NAMES_SIZE];
    char dir[STORE_SEGMENT_DIR_SIZE];
    store_segment_dir(g->id, dir);
    ck_assert(sim_disk_exists(g->h->r.disk, dir, 1));
    int64_t count = list_names(g, names, sizeof names);
    ck_assert_int_eq(count, g->s->file_count);
    const char *name = names;
    for (uint32_t n = 0; n < g->s->file_count; n++) {
        char path[STORE_SEGMENT_PATH_SIZE];
        store_segment_path(g->id, g->s->files[n].first_index, path);
        ck_assert_str_eq(name, path + STORE_SEGMENT_DIR_SIZE);
        name += strlen(name) + 1;
        ck_assert(sim_disk_exists(g->h->r.disk, path, 1));
        const uint8_t *vol, *dur;
        uint64_t vol_size, dur_size;
        ck_assert_int_eq(sim_disk_image(g->h->r.disk, path, 0, &vol, &vol_size), 0);
        ck_assert_uint_eq(vol_size, g->s->files[n].size);
        ck_assert_int_eq(sim_disk_image(g->h->r.disk, path, 1, &dur, &dur_size), 0);
        ck_assert_uint_eq(dur_size, vol_size);
        ck_assert(memcmp(vol, dur, vol_size) == 0);
    }
}

/* Makes path hold exactly data[0..size), durably (file and name). */
static void raw_put(struct harness *h, const char *path, const void *data, size_t size) {
    ck_assert_int_eq(sim_disk_put_durable(h->r.disk, path, data, size), 0);
}

/* A copy of the durable image of path (at most cap bytes); returns its size. */
static size_t raw_get(struct harness *h, const char *path, uint8_t *out, size_t cap) {
    const uint8_t *data;
    uint64_t size;
    ck_assert_int_eq(sim_disk_image(h->r.disk, path, 1, &data, &size), 0);
    ck_assert_uint_le(size, cap);
    memcpy(out, data, size);
    return size;
}

/* ---- blocks ---------------------------------------------------------------------------------- */

/* Encodes entries [from, to) of m as one block into out; returns its size. */
static uint32_t encode_block(const struct model *m, uint64_t from, uint64_t to, uint8_t *out,
                             uint32_t cap) {
    struct store_block_writer w;
    store_block_writer_start(&w, out, cap, m->e[from].term, from, m->e[from].offset);
    for (uint64_t i = from; i < to; i++) {
        struct store_entry v = entry_view(i, &m->e[i]);
        ck_assert(store_block_writer_fits(&w, &v));
        store_block_writer_add(&w, &v);
    }
    return store_block_writer_finish(&w);
}

static struct model *model_new(void) {
    struct model *m = calloc(1, sizeof *m);
    ck_assert_ptr_nonnull(m);
    return m;
}

/* m gets n random entries of term `term` starting at m->next. */
static void model_add(struct model *m, struct rq_rng *rng, uint32_t n, uint64_t term,
                      uint64_t *clock, uint32_t size_max) {
    for (uint32_t k = 0; k < n; k++) {
        struct mentry *e = &m->e[m->next];
        *clock += rq_rng_below(rng, 20);
        entry_fill(rng, e, term, *clock, size_max);
        e->offset = m->next_offset;
        m->next_offset += e->count;
        m->next++;
    }
}

START_TEST(block_layout_matches_the_documentation) {
    struct model *m = model_new();
    model_reset(m, 7, 100);
    m->e[7] = (struct mentry){.term = 3, .timestamp = 500, .count = 2, .size = 3};
    memcpy(m->e[7].payload, "abc", 3);
    m->e[8] = (struct mentry){.term = 3, .timestamp = 450, .count = 0, .size = 0};
    m->e[7].offset = 100;
    m->e[8].offset = 102;
    m->next = 9;
    uint8_t block[256];
    uint32_t size = encode_block(m, 7, 9, block, sizeof block);
    ck_assert_uint_eq(size, 64 + 16 + 3 + 16);
    ck_assert(memcmp(block, "RQSB\x01\x00\x00\x00", 8) == 0);
    ck_assert_uint_eq(rq_get_u64(block + 16), 3);   /* term */
    ck_assert_uint_eq(rq_get_u64(block + 24), 7);   /* first index */
    ck_assert_uint_eq(rq_get_u64(block + 32), 8);   /* last index */
    ck_assert_uint_eq(rq_get_u64(block + 40), 100); /* first offset */
    ck_assert_uint_eq(rq_get_u32(block + 48), 2);   /* entry count */
    ck_assert_uint_eq(rq_get_u32(block + 52), 35);  /* payload size */
    ck_assert_uint_eq(rq_get_u64(block + 56), 500); /* newest timestamp, not the last one */
    ck_assert_uint_eq(rq_get_u32(block + 12), rq_crc32c(0, block + 16, 48));
    uint32_t crc = rq_crc32c(rq_crc32c(0, block + 12, 52), block + 64, 35);
    ck_assert_uint_eq(rq_get_u32(block + 8), crc);
    /* entries */
    ck_assert_uint_eq(rq_get_u32(block + 64), 2);
    ck_assert_uint_eq(rq_get_u32(block + 68), 3);
    ck_assert_uint_eq(rq_get_u64(block + 72), 500);
    ck_assert(memcmp(block + 80, "abc", 3) == 0);
    ck_assert_uint_eq(rq_get_u32(block + 83), 0);
    ck_assert_uint_eq(rq_get_u32(block + 87), 0);
    ck_assert_uint_eq(rq_get_u64(block + 91), 450);
    struct store_block_header h;
    uint64_t messages;
    const char *problem;
    ck_assert_int_eq(store_block_check(block, size, 256, &h, &messages, &problem), STORE_BLOCK_OK);
    ck_assert_uint_eq(messages, 2);
    struct store_block_cursor c;
    store_block_cursor_init(&c, block, &h);
    struct store_entry e;
    for (uint64_t i = 7; i < 9; i++) {
        ck_assert(store_block_cursor_next(&c, &e));
        entry_expect(i, &m->e[i], &e, "decode");
    }
    ck_assert(!store_block_cursor_next(&c, &e));
    free(m);
}
END_TEST

START_TEST(every_single_bit_flip_in_a_block_is_caught) {
    struct rq_rng rng;
    rq_rng_stream(&rng, 1, 0);
    struct model *m = model_new();
    model_reset(m, 1, 0);
    uint64_t clock = 1000;
    model_add(m, &rng, 4, 2, &clock, 40);
    uint8_t block[512];
    uint32_t size = encode_block(m, 1, 5, block, sizeof block);
    struct store_block_header h;
    uint64_t messages;
    const char *problem;
    for (uint32_t bit = 0; bit < size * 8; bit++) {
        block[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        enum store_block_status st =
            store_block_check(block, size, STORE_BLOCK_SIZE_MAX, &h, &messages, &problem);
        ck_assert_msg(st != STORE_BLOCK_OK, "bit %u flipped and the block still checks", bit);
        /* Header bits: the header is never believed (a flip can never pass as a torn write). */
        if (bit < 64 * 8) ck_assert_int_eq(st, STORE_BLOCK_BAD);
        struct store_segment_scan scan = {.block_size_limit = STORE_BLOCK_SIZE_MAX};
        ck_assert_int_ne(store_segment_scan(block, size, &scan, NULL, NULL),
                         STORE_SEGMENT_SCAN_END);
        ck_assert_uint_eq(scan.valid_size, 0);
        block[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    ck_assert_int_eq(store_block_check(block, size, STORE_BLOCK_SIZE_MAX, &h, &messages, &problem),
                     STORE_BLOCK_OK);
    free(m);
}
END_TEST

/* Blocks whose checksums are right but whose structure is not (a writer bug, or a forged file)
 * are rejected too: each row changes one thing and recomputes both crcs. */
enum forge {
    FORGE_NONE,
    FORGE_TRAILING_BYTES,
    FORGE_ENTRY_OVERRUN,
    FORGE_TIMESTAMP_NOT_MAX,
    FORGE_LAST_INDEX,
    FORGE_ENTRY_COUNT_ZERO,
    FORGE_TERM_ZERO,
    FORGE_FIRST_INDEX_ZERO,
    FORGE_PAYLOAD_TOO_SMALL,
    FORGE_OFFSET_OVERFLOW,
    FORGE_FLAGS,
    FORGE_VERSION,
    FORGE_TOO_LARGE,
    FORGE_LAST_INDEX_MAX,
    FORGE_COUNT
};

static uint32_t forge_block(enum forge kind, uint8_t *b) {
    struct model *m = model_new();
    model_reset(m, 5, 10);
    m->e[5] = (struct mentry){.term = 2, .offset = 10, .timestamp = 70, .count = 1, .size = 4};
    m->e[6] = (struct mentry){.term = 2, .offset = 11, .timestamp = 60, .count = 2, .size = 6};
    m->next = 7;
    uint32_t size = encode_block(m, 5, 7, b, 512);
    free(m);
    switch (kind) {
    case FORGE_NONE: break;
    case FORGE_TRAILING_BYTES:
        size += 5;
        rq_put_u32(b + 52, rq_get_u32(b + 52) + 5);
        break;
    case FORGE_ENTRY_OVERRUN: rq_put_u32(b + 64 + 16 + 4 + 4, 7); break; /* 2nd entry's size */
    case FORGE_TIMESTAMP_NOT_MAX: rq_put_u64(b + 56, 60); break;
    case FORGE_LAST_INDEX: rq_put_u64(b + 32, 7); break;
    case FORGE_ENTRY_COUNT_ZERO: rq_put_u32(b + 48, 0); break;
    case FORGE_TERM_ZERO: rq_put_u64(b + 16, 0); break;
    case FORGE_FIRST_INDEX_ZERO:
        rq_put_u64(b + 24, 0);
        rq_put_u64(b + 32, 1);
        break;
    case FORGE_PAYLOAD_TOO_SMALL:
        rq_put_u32(b + 48, 100);
        rq_put_u64(b + 32, 104);
        break;
    case FORGE_OFFSET_OVERFLOW: rq_put_u64(b + 40, UINT64_MAX - 1); break;
    case FORGE_FLAGS: rq_put_u16(b + 6, 1); break;
    case FORGE_VERSION: rq_put_u16(b + 4, 2); break;
    case FORGE_TOO_LARGE: rq_put_u32(b + 52, STORE_BLOCK_SIZE_MAX); break;
    case FORGE_LAST_INDEX_MAX:
        rq_put_u64(b + 24, UINT64_MAX - 1);
        rq_put_u64(b + 32, UINT64_MAX);
        break;
    case FORGE_COUNT: break;
    }
    rq_put_u32(b + 12, rq_crc32c(0, b + 16, 48));
    uint32_t payload = rq_get_u32(b + 52) <= 512 - 64 ? rq_get_u32(b + 52) : 0;
    rq_put_u32(b + 8, rq_crc32c(rq_crc32c(0, b + 12, 52), b + 64, payload));
    return size;
}

START_TEST(checksummed_blocks_with_a_wrong_structure_are_rejected) {
    for (int kind = 0; kind < FORGE_COUNT; kind++) {
        uint8_t b[1024] = {0};
        uint32_t size = forge_block((enum forge)kind, b);
        struct store_block_header h;
        uint64_t messages;
        const char *problem = NULL;
        enum store_block_status st =
            store_block_check(b, size, STORE_BLOCK_SIZE_MAX, &h, &messages, &problem);
        if (kind == FORGE_NONE) {
            ck_assert_int_eq(st, STORE_BLOCK_OK);
            continue;
        }
        ck_assert_msg(st == STORE_BLOCK_BAD, "forgery %d: status %d", kind, st);
        ck_assert_ptr_nonnull(problem);
    }
}
END_TEST

START_TEST(cutting_a_block_keeps_a_valid_prefix) {
    struct rq_rng rng;
    rq_rng_stream(&rng, 2, 0);
    struct model *m = model_new();
    model_reset(m, 10, 50);
    uint64_t clock = 1000;
    model_add(m, &rng, 5, 4, &clock, 30);
    m->e[11].timestamp = 5000; /* the newest, then cut away */
    for (uint32_t keep = 1; keep < 5; keep++) {
        uint8_t block[512];
        encode_block(m, 10, 15, block, sizeof block);
        struct store_block_header h;
        uint64_t messages;
        const char *problem;
        ck_assert_int_eq(store_block_check(block, sizeof block, 512, &h, &messages, &problem),
                         STORE_BLOCK_OK);
        uint32_t size = store_block_cut(block, &h, keep);
        ck_assert_int_eq(store_block_check(block, size, 512, &h, &messages, &problem),
                         STORE_BLOCK_OK);
        ck_assert_uint_eq(h.entry_count, keep);
        ck_assert_uint_eq(h.last_index, 10 + keep - 1);
        uint64_t newest = 0;
        for (uint32_t k = 0; k < keep; k++) {
            if (m->e[10 + k].timestamp > newest) newest = m->e[10 + k].timestamp;
        }
        ck_assert_uint_eq(h.timestamp, newest);
    }
    free(m);
}
END_TEST

/* Builds an image of nblocks blocks (entries continuing m) into image; returns its size and the
 * block boundaries in ends[]. */
static size_t build_image(struct model *m, struct rq_rng *rng, uint32_t nblocks, uint8_t *image,
                          size_t cap, size_t *ends) {
    size_t size = 0;
    uint64_t clock = 100;
    for (uint32_t b = 0; b < nblocks; b++) {
        uint64_t from = m->next;
        model_add(m, rng, (uint32_t)rq_rng_range(rng, 1, 3), 1 + b / 2, &clock, 60);
        size += encode_block(m, from, m->next, image + size, (uint32_t)(cap - size));
        ends[b] = size;
    }
    return size;
}

START_TEST(scan_of_every_prefix_stops_at_a_block_boundary) {
    struct rq_rng rng;
    rq_rng_stream(&rng, 3, 0);
    struct model *m = model_new();
    model_reset(m, 1, 0);
    static uint8_t image[4096];
    size_t ends[8];
    size_t size = build_image(m, &rng, 8, image, sizeof image, ends);
    for (size_t len = 0; len <= size; len++) {
        struct store_segment_scan scan = {
            .block_size_limit = 512, .next_index = 1, .have_offset = 1, .next_offset = 0};
        enum store_segment_scan_status st = store_segment_scan(image, len, &scan, NULL, NULL);
        size_t boundary = 0;
        uint32_t blocks = 0;
        while (blocks < 8 && ends[blocks] <= len)
            boundary = ends[blocks++];
        ck_assert_uint_eq(scan.valid_size, boundary);
        ck_assert_uint_eq(scan.block_count, blocks);
        ck_assert_int_eq(st, len == boundary ? STORE_SEGMENT_SCAN_END : STORE_SEGMENT_SCAN_SHORT);
    }
    /* Continuity: the same image is rejected when it does not start where expected. */
    struct store_segment_scan scan = {.block_size_limit = 512, .next_index = 2};
    ck_assert_int_eq(store_segment_scan(image, size, &scan, NULL, NULL),
                     STORE_SEGMENT_SCAN_INVALID);
    scan = (struct store_segment_scan){.block_size_limit = 512, .have_offset = 1, .next_offset = 1};
    ck_assert_int_eq(store_segment_scan(image, size, &scan, NULL, NULL),
                     STORE_SEGMENT_SCAN_INVALID);
    scan = (struct store_segment_scan){.block_size_limit = 512, .last_term = 2};
    ck_assert_int_eq(store_segment_scan(image, size, &scan, NULL, NULL),
                     STORE_SEGMENT_SCAN_INVALID);
    free(m);
}
END_TEST

/* A small in-test fuzzer: mutated and random images never make the scan read out of bounds
 * (ASan), claim more than the buffer, or accept a block that does not check. */
static int visit_recheck(void *arg, size_t position, const uint8_t *block,
                         const struct store_block_header *h, uint64_t message_count) {
    size_t len = *(size_t *)arg;
    ck_assert_uint_le(position + store_block_size(h), len);
    struct store_block_header again;
    uint64_t messages;
    const char *problem;
    ck_assert_int_eq(store_block_check(block, store_block_size(h), STORE_BLOCK_SIZE_MAX, &again,
                                       &messages, &problem),
                     STORE_BLOCK_OK);
    ck_assert_uint_eq(messages, message_count);
    return 0;
}

START_TEST(scan_survives_mutated_and_random_images) {
    struct rq_rng rng;
    rq_rng_stream(&rng, 4, 0);
    struct model *m = model_new();
    static uint8_t image[4096];
    static uint8_t copy[4096];
    size_t ends[6];
    for (uint32_t round = 0; round < 3000; round++) {
        model_reset(m, 1 + rq_rng_below(&rng, 100), rq_rng_below(&rng, 1000));
        size_t size = build_image(m, &rng, 6, image, sizeof image, ends);
        size_t len = size;
        memcpy(copy, image, size);
        switch (round % 4) {
        case 0: /* a few random byte changes */
            for (int k = 0; k < 1 + (int)rq_rng_below(&rng, 4); k++) {
                copy[rq_rng_below(&rng, size)] = (uint8_t)rq_rng_next(&rng);
            }
            break;
        case 1: /* pure noise */
            len = rq_rng_below(&rng, sizeof copy);
            for (size_t i = 0; i < len; i++)
                copy[i] = (uint8_t)rq_rng_next(&rng);
            break;
        case 2: /* a header's length field changed, crcs recomputed: still must not overrun */
        {
            size_t at = ends[rq_rng_below(&rng, 5)];
            rq_put_u32(copy + at + 52, (uint32_t)rq_rng_next(&rng));
            rq_put_u32(copy + at + 12, rq_crc32c(0, copy + at + 16, 48));
            len = at + rq_rng_below(&rng, size - at + 1);
            break;
        }
        default: /* truncated at random */ len = rq_rng_below(&rng, size + 1); break;
        }
        struct store_segment_scan scan = {.block_size_limit = STORE_BLOCK_SIZE_MAX};
        enum store_segment_scan_status st =
            store_segment_scan(copy, len, &scan, visit_recheck, &len);
        ck_assert_uint_le(scan.valid_size, len);
        if (st == STORE_SEGMENT_SCAN_END)
            ck_assert_uint_eq(scan.valid_size, len);
        else
            ck_assert_ptr_nonnull(scan.problem);
    }
    free(m);
}
END_TEST

START_TEST(paths_are_valid_and_fixed_width) {
    char path[STORE_SEGMENT_PATH_SIZE];
    char dir[STORE_SEGMENT_DIR_SIZE];
    store_segment_path(7, 1, path);
    ck_assert_str_eq(path, "g0000000000000007/00000000000000000001.seg");
    store_segment_path(UINT64_MAX, UINT64_MAX, path);
    ck_assert_str_eq(path, "gffffffffffffffff/18446744073709551615.seg");
    ck_assert_int_eq(sim_disk_path_valid(path), 0);
    store_segment_dir(0xabc, dir);
    ck_assert_str_eq(dir, "g0000000000000abc");
}
END_TEST

/* ---- the store: basic behaviour -------------------------------------------------------------- */

START_TEST(a_new_group_creates_its_directory_durably) {
    struct harness *h = harness_new(1, 1, &small_config);
    struct group *g = &h->groups[0];
    struct store_segment_result res = open_group(g);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.first_index, 1);
    ck_assert_uint_eq(res.last_index, 0);
    ck_assert_uint_eq(res.segment_count, 0);
    char dir[STORE_SEGMENT_DIR_SIZE];
    store_segment_dir(g->id, dir);
    ck_assert(sim_disk_exists(h->r.disk, dir, 1));
    crash(h, 1);
    res = open_group(g);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.segment_count, 0);
    expect_files_explained(g);
    harness_free(h);
}
END_TEST

/* Appends n random entries in batches of 1..max_batch, with occasional term changes. */
static void fill(struct group *g, struct model *m, struct rq_rng *rng, uint32_t n,
                 uint32_t max_batch, uint64_t *term, uint64_t *clock) {
    uint32_t done = 0;
    while (done < n) {
        uint32_t batch = (uint32_t)rq_rng_range(rng, 1, max_batch);
        if (batch > n - done) batch = n - done;
        if (rq_rng_chance(rng, RQ_PPM / 5)) *term += 1;
        append_new(g, m, rng, batch, *term, clock, PAYLOAD_MAX - 40);
        done += batch;
    }
}

START_TEST(append_and_read_round_trip_across_segments_and_groups) {
    struct harness *h = harness_new(2, 3, &small_config);
    struct model *m[3];
    struct rq_rng rng;
    rq_rng_stream(&rng, 2, 1);
    uint64_t term[3] = {1, 1, 1}, clock[3] = {0, 0, 0};
    for (uint32_t i = 0; i < 3; i++) {
        m[i] = model_new();
        model_reset(m[i], 1, 0);
        ck_assert_int_eq(open_group(&h->groups[i]).err, 0);
    }
    /* group 2 starts later in the log, as after a snapshot */
    ck_assert_int_eq(store_segment_set_next(h->groups[2].s, 500, 9000), 0);
    model_reset(m[2], 500, 9000);
    for (uint32_t round = 0; round < 12; round++) {
        for (uint32_t i = 0; i < 3; i++)
            fill(&h->groups[i], m[i], &rng, 12, 6, &term[i], &clock[i]);
    }
    for (uint32_t i = 0; i < 3; i++) {
        struct group *g = &h->groups[i];
        expect_log(g, m[i], "after appends");
        ck_assert_uint_gt(g->s->file_count, 5);
        /* blocks: one term each, at most block_size_max; segments at most segment_size_max */
        for (uint32_t n = 0; n < g->s->file_count; n++) {
            ck_assert_uint_le(g->s->files[n].size, small_config.segment_size_max);
        }
        for (uint32_t b = 0; b < g->s->block_count; b++) {
            ck_assert_uint_le(g->s->blocks[b].size, small_config.block_size_max);
            uint64_t last =
                b + 1 < g->s->block_count ? g->s->blocks[b + 1].first_index - 1 : m[i]->next - 1;
            for (uint64_t x = g->s->blocks[b].first_index; x <= last; x++) {
                ck_assert_uint_eq(m[i]->e[x].term, g->s->blocks[b].term);
            }
        }
        expect_files_explained(g);
    }
    crash(h, 0);
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_int_eq(open_group(&h->groups[i]).err, 0);
        expect_log(&h->groups[i], m[i], "after process exit");
    }
    crash(h, 1);
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_int_eq(open_group(&h->groups[i]).err, 0);
        expect_log(&h->groups[i], m[i], "after power loss");
        expect_files_explained(&h->groups[i]);
        free(m[i]);
    }
    ck_assert_int_eq(error_lines, 0);
    ck_assert_int_eq(warn_lines, 0);
    harness_free(h);
}
END_TEST

/* The entry holding message offset `offset`, per the model. */
static uint64_t model_find_offset(const struct model *m, uint64_t offset) {
    for (uint64_t i = m->first; i < m->next; i++) {
        if (m->e[i].offset <= offset && offset - m->e[i].offset < m->e[i].count) return i;
    }
    return 0;
}

static uint64_t model_find_timestamp(const struct model *m, uint64_t t) {
    for (uint64_t i = m->first; i < m->next; i++) {
        if (m->e[i].timestamp >= t) return i;
    }
    return 0;
}

static void check_lookups(struct group *g, const struct model *m, struct rq_rng *rng,
                          uint32_t rounds) {
    for (uint32_t k = 0; k < rounds; k++) {
        /* by index */
        uint64_t index = rq_rng_range(rng, m->first, m->next - 1);
        uint64_t reads = g->s->stats.reads;
        uint32_t before = g->done_count;
        ck_assert_int_eq(store_segment_read(g->s, index, 1, 1, g->out, OUT_MAX), 0);
        wait_done(g, before);
        ck_assert_uint_eq(g->s->stats.reads, reads + 1);
        ck_assert_uint_eq(g->res.entry_count, 1);
        entry_expect(index, model_at(m, index), &g->got[0], "read by index");
        /* by offset */
        uint64_t first_offset = m->e[m->first].offset;
        if (m->next_offset > first_offset) {
            uint64_t offset = rq_rng_range(rng, first_offset, m->next_offset - 1);
            uint64_t want = model_find_offset(m, offset);
            reads = g->s->stats.reads;
            before = g->done_count;
            ck_assert_int_eq(store_segment_find_offset(g->s, offset, g->out), 0);
            wait_done(g, before);
            ck_assert_uint_eq(g->s->stats.reads, reads + 1);
            ck_assert_int_eq(g->res.event, STORE_SEGMENT_FOUND);
            ck_assert_uint_eq(g->res.entry_count, 1);
            entry_expect(want, model_at(m, want), &g->got[0], "find by offset");
        }
        /* by timestamp: anything from before the first to past the last */
        uint64_t t = rq_rng_below(rng, m->e[m->next - 1].timestamp + 60);
        uint64_t want = model_find_timestamp(m, t);
        reads = g->s->stats.reads;
        before = g->done_count;
        int rc = store_segment_find_timestamp(g->s, t, g->out);
        if (want == 0) {
            ck_assert_int_eq(rc, RQ_ERANGE);
            continue;
        }
        ck_assert_int_eq(rc, 0);
        wait_done(g, before);
        ck_assert_uint_eq(g->s->stats.reads, reads + 1);
        entry_expect(want, model_at(m, want), &g->got[0], "find by timestamp");
    }
}

START_TEST(lookups_by_index_offset_and_timestamp_take_one_read_each) {
    struct harness *h = harness_new(3, 1, &small_config);
    struct group *g = &h->groups[0];
    struct model *m = model_new();
    model_reset(m, 1, 0);
    struct rq_rng rng;
    rq_rng_stream(&rng, 3, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t term = 1, clock = 1000;
    fill(g, m, &rng, 300, 8, &term, &clock);
    /* Timestamps only roughly monotonic: some entries jump back (and the jump is in the log). */
    uint64_t from = m->next;
    for (uint32_t k = 0; k < 40; k++) {
        struct mentry *e = &m->e[m->next];
        entry_fill(&rng, e, term, clock - rq_rng_below(&rng, 400), 60);
        if (k % 5 == 0) e->timestamp = clock + 100 + k;
        e->offset = m->next_offset;
        m->next_offset += e->count;
        m->next++;
    }
    append_range(g, m, from, m->next);
    fill(g, m, &rng, 60, 8, &term, &clock);
    check_lookups(g, m, &rng, 300);
    /* and after a restart, once the index is rebuilt */
    crash(h, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    check_lookups(g, m, &rng, 300);
    /* out of range */
    ck_assert_int_eq(store_segment_read(g->s, m->next, 1, 1, g->out, 1), RQ_ERANGE);
    ck_assert_int_eq(store_segment_read(g->s, 0, 1, 1, g->out, 1), RQ_ERANGE);
    ck_assert_int_eq(store_segment_find_offset(g->s, m->next_offset, g->out), RQ_ERANGE);
    free(m);
    harness_free(h);
}
END_TEST

START_TEST(reads_respect_entry_byte_and_buffer_bounds) {
    struct harness *h = harness_new(4, 1, &small_config);
    struct group *g = &h->groups[0];
    struct model *m = model_new();
    model_reset(m, 1, 0);
    struct rq_rng rng;
    rq_rng_stream(&rng, 4, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t term = 1, clock = 0;
    fill(g, m, &rng, 200, 8, &term, &clock);
    for (uint32_t k = 0; k < 300; k++) {
        uint64_t from = rq_rng_range(&rng, 1, m->next - 1);
        uint32_t max_entries = (uint32_t)rq_rng_range(&rng, 1, 40);
        uint64_t max_bytes = rq_rng_range(&rng, 0, 2000);
        uint32_t cap = (uint32_t)rq_rng_range(&rng, 1, OUT_MAX);
        uint64_t reads = g->s->stats.reads;
        uint32_t before = g->done_count;
        ck_assert_int_eq(store_segment_read(g->s, from, max_entries, max_bytes, g->out, cap), 0);
        /* one operation at a time */
        ck_assert_int_eq(store_segment_read(g->s, from, 1, 1, g->out, 1), RQ_EBUSY);
        wait_done(g, before);
        ck_assert_uint_eq(g->s->stats.reads, reads + 1);
        uint32_t n = g->res.entry_count;
        ck_assert_uint_ge(n, 1);
        ck_assert_uint_le(n, max_entries);
        ck_assert_uint_le(n, cap);
        uint64_t bytes = 0;
        for (uint32_t i = 0; i < n; i++) {
            entry_expect(from + i, model_at(m, from + i), &g->got[i], "bounded read");
            bytes += g->got[i].payload_size;
        }
        if (n > 1) ck_assert_uint_le(bytes, max_bytes);
    }
    free(m);
    harness_free(h);
}
END_TEST

START_TEST(appends_are_validated) {
    struct harness *h = harness_new(5, 1, &small_config);
    struct group *g = &h->groups[0];
    ck_assert_int_eq(open_group(g).err, 0);
    uint8_t payload[200] = {0};
    struct store_entry e = {.index = 1, .term = 2, .payload = payload, .payload_size = 10};
    uint32_t accepted;
    e.index = 2;
    ck_assert_int_eq(store_segment_append(g->s, &e, 1, &accepted), RQ_EINVAL); /* gap */
    e.index = 1;
    e.term = 0;
    ck_assert_int_eq(store_segment_append(g->s, &e, 1, &accepted), RQ_EINVAL); /* term 0 */
    e.term = 2;
    e.payload_size = 256 - 80 + 1;
    ck_assert_int_eq(store_segment_append(g->s, &e, 1, &accepted), RQ_EINVAL); /* too big */
    e.payload_size = 256 - 80;
    uint32_t before = g->done_count;
    ck_assert_int_eq(store_segment_append(g->s, &e, 1, &accepted), 0);
    ck_assert_int_eq(store_segment_append(g->s, &e, 1, &accepted), RQ_EBUSY);
    wait_done(g, before);
    ck_assert_int_eq(g->res.err, 0);
    e.index = 2;
    e.term = 1;
    ck_assert_int_eq(store_segment_append(g->s, &e, 1, &accepted), RQ_EINVAL); /* term back */
    ck_assert_int_eq(store_segment_set_next(g->s, 10, 0), RQ_EINVAL);          /* not empty */
    ck_assert_int_eq(store_segment_truncate(g->s, 2), RQ_ERANGE);
    ck_assert_int_eq(store_segment_truncate(g->s, 0), RQ_ERANGE);
    harness_free(h);
}
END_TEST

START_TEST(block_and_segment_limits_push_back) {
    /* Segments: at most STORE_SEGMENT_FILES_MAX. */
    struct harness *h = harness_new(6, 1, &small_config);
    struct group *g = &h->groups[0];
    struct model *m = model_new();
    model_reset(m, 1, 0);
    struct rq_rng rng;
    rq_rng_stream(&rng, 6, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t clock = 0;
    for (uint32_t n = 0; n < STORE_SEGMENT_FILES_MAX; n++) {
        ck_assert_int_eq(store_segment_roll(g->s), 0);
        append_new(g, m, &rng, 1, 1, &clock, 10);
    }
    ck_assert_uint_eq(g->s->file_count, STORE_SEGMENT_FILES_MAX);
    ck_assert_int_eq(store_segment_roll(g->s), 0);
    struct mentry *e = &m->e[m->next];
    entry_fill(&rng, e, 1, clock, 10);
    struct store_entry v = entry_view(m->next, e);
    uint32_t accepted;
    ck_assert_int_eq(store_segment_append(g->s, &v, 1, &accepted), RQ_ENOMEM);
    ck_assert_uint_eq(accepted, 0);
    /* Dropping a prefix makes room again. */
    uint32_t deleting = 0;
    uint32_t before = g->done_count;
    ck_assert_int_eq(store_segment_drop_prefix(g->s, 3, &deleting), 0);
    ck_assert_uint_eq(deleting, 2);
    wait_done(g, before);
    m->first = 3;
    append_new(g, m, &rng, 1, 1, &clock, 10);
    expect_log(g, m, "after dropping to make room");
    harness_free(h);

    /* Blocks: at most STORE_SEGMENT_BLOCKS_MAX per group. */
    struct store_segment_config big = {.block_size_max = 256, .segment_size_max = 1 << 20};
    h = harness_new(7, 1, &big);
    g = &h->groups[0];
    model_reset(m, 1, 0);
    ck_assert_int_eq(open_group(g).err, 0);
    for (uint32_t n = 0; n < STORE_SEGMENT_BLOCKS_MAX; n++)
        append_new(g, m, &rng, 1, 1, &clock, 0);
    ck_assert_uint_eq(g->s->block_count, STORE_SEGMENT_BLOCKS_MAX);
    e = &m->e[m->next];
    entry_fill(&rng, e, 1, clock, 0);
    v = entry_view(m->next, e);
    ck_assert_int_eq(store_segment_append(g->s, &v, 1, &accepted), RQ_ENOMEM);
    crash(h, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    ck_assert_uint_eq(g->s->block_count, STORE_SEGMENT_BLOCKS_MAX);
    free(m);
    harness_free(h);
}
END_TEST

START_TEST(roll_starts_a_new_segment) {
    struct store_segment_config config = {.block_size_max = 512, .segment_size_max = 8192};
    struct harness *h = harness_new(8, 1, &config);
    struct group *g = &h->groups[0];
    struct model *m = model_new();
    model_reset(m, 1, 0);
    struct rq_rng rng;
    rq_rng_stream(&rng, 8, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t clock = 0;
    append_new(g, m, &rng, 5, 1, &clock, 50);
    append_new(g, m, &rng, 5, 1, &clock, 50);
    ck_assert_uint_eq(g->s->file_count, 1);
    ck_assert_int_eq(store_segment_roll(g->s), 0);
    append_new(g, m, &rng, 5, 1, &clock, 50);
    ck_assert_uint_eq(g->s->file_count, 2);
    ck_assert_uint_eq(g->s->files[1].first_index, 11);
    append_new(g, m, &rng, 5, 1, &clock, 50);
    ck_assert_uint_eq(g->s->file_count, 2);
    /* and by size: segments stay within segment_size_max */
    for (uint32_t k = 0; k < 200; k++)
        append_new(g, m, &rng, 4, 1, &clock, 100);
    ck_assert_uint_gt(g->s->file_count, 4);
    for (uint32_t n = 0; n < g->s->file_count; n++) {
        ck_assert_uint_le(g->s->files[n].size, config.segment_size_max);
        if (n >= 1 && n + 1 < g->s->file_count) {
            ck_assert_uint_gt(g->s->files[n].size, config.segment_size_max - 600);
        }
    }
    crash(h, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    expect_log(g, m, "after rolls");
    expect_files_explained(g);
    free(m);
    harness_free(h);
}
END_TEST

static void truncate_sync(struct group *g, struct model *m, uint64_t index) {
    uint32_t before = g->done_count;
    ck_assert_int_eq(store_segment_truncate(g->s, index), 0);
    wait_done(g, before);
    ck_assert_int_eq(g->res.event, STORE_SEGMENT_TRUNCATED);
    ck_assert_int_eq(g->res.err, 0);
    m->next = index;
    m->next_offset = index < INDEX_MAX && index >= m->first ? m->e[index].offset : m->next_offset;
    if (m->first > index) m->first = index;
}

START_TEST(truncate_mid_block_at_a_boundary_and_across_segments) {
    struct harness *h = harness_new(9, 1, &small_config);
    struct group *g = &h->groups[0];
    struct model *m = model_new();
    model_reset(m, 1, 0);
    struct rq_rng rng;
    rq_rng_stream(&rng, 9, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t term = 1, clock = 0;
    fill(g, m, &rng, 150, 6, &term, &clock);
    ck_assert_uint_gt(g->s->file_count, 6);
    /* 1. inside a block of the last segment */
    uint32_t b = g->s->block_count - 1;
    while (b > 0 && g->s->blocks[b].first_index + 1 >= m->next)
        b--;
    uint64_t i = g->s->blocks[b].first_index + 1;
    truncate_sync(g, m, i);
    expect_log(g, m, "truncated inside a block");
    expect_files_explained(g);
    /* 2. at a block boundary (not a segment's first block) */
    uint32_t n = g->s->file_count - 1;
    while (g->s->files[n].block_count < 2)
        n--;
    i = g->s->blocks[g->s->files[n].block_first + 1].first_index;
    truncate_sync(g, m, i);
    expect_log(g, m, "truncated at a block boundary");
    /* 3. inside a block three segments back: later segments deleted */
    n = g->s->file_count - 3;
    uint32_t fb = g->s->files[n].block_first;
    for (b = fb; b < fb + g->s->files[n].block_count; b++) {
        uint64_t last =
            b + 1 < g->s->block_count ? g->s->blocks[b + 1].first_index - 1 : m->next - 1;
        if (last > g->s->blocks[b].first_index) break;
    }
    ck_assert_uint_lt(b, fb + g->s->files[n].block_count); /* this seed has such a block */
    i = g->s->blocks[b].first_index + 1;
    uint32_t files_before = g->s->file_count;
    truncate_sync(g, m, i);
    ck_assert_uint_eq(g->s->file_count, files_before - 2);
    expect_log(g, m, "truncated across segments");
    expect_files_explained(g);
    /* 4. at a segment's first index: that segment goes too */
    i = g->s->files[g->s->file_count - 2].first_index;
    truncate_sync(g, m, i);
    expect_log(g, m, "truncated at a segment start");
    /* The log continues with new entries at the truncated indexes (a new term). */
    term += 1;
    fill(g, m, &rng, 40, 6, &term, &clock);
    crash(h, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    expect_log(g, m, "after truncations and a restart");
    expect_files_explained(g);
    /* 5. everything */
    truncate_sync(g, m, m->first);
    ck_assert_uint_eq(g->s->file_count, 0);
    ck_assert_uint_eq(store_segment_first_index(g->s), m->next);
    append_new(g, m, &rng, 3, term + 1, &clock, 40);
    m->first = m->next - 3;
    expect_log(g, m, "after truncating everything");
    ck_assert_int_eq(error_lines, 0);
    free(m);
    harness_free(h);
}
END_TEST

static uint32_t drop_sync(struct group *g, struct model *m, uint64_t index) {
    uint32_t deleting = 0;
    uint32_t before = g->done_count;
    ck_assert_int_eq(store_segment_drop_prefix(g->s, index, &deleting), 0);
    if (deleting == 0) return 0;
    uint64_t new_first =
        deleting < g->s->file_count ? g->s->files[deleting].first_index : g->s->next_index;
    wait_done(g, before);
    ck_assert_int_eq(g->res.event, STORE_SEGMENT_DROPPED);
    ck_assert_int_eq(g->res.err, 0);
    ck_assert_uint_eq(g->res.segments_deleted, deleting);
    m->first = new_first;
    return deleting;
}

START_TEST(drop_prefix_deletes_whole_segments_below_the_index) {
    struct harness *h = harness_new(10, 1, &small_config);
    struct group *g = &h->groups[0];
    struct model *m = model_new();
    model_reset(m, 1, 0);
    struct rq_rng rng;
    rq_rng_stream(&rng, 10, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t term = 1, clock = 0;
    fill(g, m, &rng, 120, 6, &term, &clock);
    uint32_t files = g->s->file_count;
    /* an index inside segment 3: segments 0..2 go, 3 stays */
    uint64_t i = g->s->files[3].first_index + 1;
    ck_assert_uint_eq(drop_sync(g, m, i), 3);
    ck_assert_uint_eq(g->s->file_count, files - 3);
    ck_assert_uint_le(store_segment_first_index(g->s), i);
    expect_log(g, m, "after drop");
    /* nothing below the first segment's end: nothing to do, no completion */
    uint32_t deleting = 9;
    uint32_t before = g->done_count;
    ck_assert_int_eq(store_segment_drop_prefix(g->s, m->first, &deleting), 0);
    ck_assert_uint_eq(deleting, 0);
    ck_assert_uint_eq(diskrunner_run(&h->r, 100), 0);
    ck_assert_uint_eq(g->done_count, before);
    check_lookups(g, m, &rng, 50);
    crash(h, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    expect_log(g, m, "after drop and restart");
    expect_files_explained(g);
    /* dropping everything leaves an empty log that still continues where it was */
    drop_sync(g, m, m->next);
    ck_assert_uint_eq(g->s->file_count, 0);
    ck_assert_uint_eq(store_segment_first_index(g->s), m->next);
    append_new(g, m, &rng, 5, term, &clock, 40);
    m->first = m->next - 5;
    expect_log(g, m, "after dropping everything");
    free(m);
    harness_free(h);
}
END_TEST

static uint32_t retention_sync(struct group *g, struct model *m,
                               const struct store_segment_retention *r) {
    uint32_t deleting = 0;
    uint32_t before = g->done_count;
    ck_assert_int_eq(store_segment_retention(g->s, r, &deleting), 0);
    if (deleting == 0) return 0;
    uint64_t new_first = g->s->files[deleting].first_index;
    wait_done(g, before);
    ck_assert_int_eq(g->res.err, 0);
    m->first = new_first;
    return deleting;
}

START_TEST(retention_by_age_and_size_never_reaches_the_snapshot_index) {
    struct harness *h = harness_new(11, 1, &small_config);
    struct group *g = &h->groups[0];
    struct model *m = model_new();
    model_reset(m, 1, 0);
    struct rq_rng rng;
    rq_rng_stream(&rng, 11, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t term = 1, clock = 0;
    fill(g, m, &rng, 200, 6, &term, &clock);
    ck_assert_uint_gt(g->s->file_count, 8);
    /* By age: everything is old, but the snapshot protects index 60 and up. */
    struct store_segment_retention r = {.now = clock + 100000, .ttl = 10, .snapshot_index = 60};
    retention_sync(g, m, &r);
    ck_assert_uint_le(store_segment_first_index(g->s), 60);
    expect_log(g, m, "after age retention");
    /* By age with a TTL nothing has reached: nothing deleted. */
    r = (struct store_segment_retention){.now = clock, .ttl = clock, .snapshot_index = m->next};
    ck_assert_uint_eq(retention_sync(g, m, &r), 0);
    /* By age: segments whose newest entry is older than now - ttl, and only those. */
    uint64_t cut = g->s->files[3].timestamp;
    uint32_t older = 0;
    while (g->s->files[older].timestamp < cut)
        older++;
    ck_assert_uint_ge(older, 1);
    r = (struct store_segment_retention){.now = cut + 1000, .ttl = 1000, .snapshot_index = m->next};
    uint32_t deleted = retention_sync(g, m, &r);
    ck_assert_uint_eq(deleted, older); /* newest < now - ttl: expired; files[3] is not */
    /* By size: down to the limit, the last segment always kept. */
    uint64_t limit = 3 * small_config.segment_size_max;
    r = (struct store_segment_retention){.size_limit = limit, .snapshot_index = m->next};
    retention_sync(g, m, &r);
    ck_assert_uint_le(store_segment_size(g->s), limit);
    r = (struct store_segment_retention){.size_limit = 1, .snapshot_index = UINT64_MAX};
    retention_sync(g, m, &r);
    ck_assert_uint_eq(g->s->file_count, 1);
    expect_log(g, m, "after size retention");
    crash(h, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    expect_log(g, m, "after retention and restart");
    expect_files_explained(g);
    free(m);
    harness_free(h);
}
END_TEST

/* ---- crash consistency ----------------------------------------------------------------------- */

enum pending_kind { PENDING_NONE = 0, PENDING_APPEND, PENDING_TRUNCATE, PENDING_DROP };

/* One run: the log as acknowledged (A), the operation in flight when a crash may strike (P), and
 * what the test has seen across all runs. */
struct crash_run {
    struct harness *h;
    struct group *g;
    struct model *a; /* entries at and past a->next hold a pending append's entries */
    enum pending_kind pending;
    uint64_t pending_end;   /* APPEND: one past its last index */
    uint64_t pending_index; /* TRUNCATE: first index removed */
    uint64_t pending_first; /* DROP: first index once done */
    uint64_t term;
    uint64_t clock;
    struct rq_rng rng;
    uint64_t crash_at; /* crash when this many requests have executed (UINT64_MAX: never) */
    uint64_t seed;
    uint64_t k;
};

struct crash_stats {
    uint64_t runs;
    uint64_t crashes;
    uint64_t torn;
    uint64_t redone;
    uint64_t discarded;
    uint64_t appended_prefix; /* recoveries that kept part of an in-flight append */
    uint64_t truncated_old;   /* recoveries of an in-flight truncation showing the old log */
    uint64_t truncated_new;   /* ... showing the truncated log */
};

static struct crash_stats crash_stats;

/* The whole log through the store, into r (entries by index). */
static void read_all(struct group *g, struct model *r) {
    model_reset(r, store_segment_first_index(g->s), store_segment_first_index(g->s));
    uint64_t at = r->first;
    while (at <= store_segment_last_index(g->s)) {
        uint32_t before = g->done_count;
        ck_assert_int_eq(store_segment_read(g->s, at, OUT_MAX, UINT64_MAX, g->out, OUT_MAX), 0);
        wait_done(g, before);
        ck_assert_int_eq(g->res.err, 0);
        for (uint32_t k = 0; k < g->res.entry_count; k++) {
            const struct store_entry *e = &g->got[k];
            ck_assert_uint_eq(e->index, at + k);
            ck_assert_uint_lt(e->index, INDEX_MAX);
            struct mentry *m = &r->e[e->index];
            m->term = e->term;
            m->offset = e->first_offset;
            m->timestamp = e->timestamp;
            m->count = e->message_count;
            m->size = e->payload_size;
            memcpy(m->payload, e->payload, e->payload_size);
        }
        at += g->res.entry_count;
    }
    r->next = at;
    r->next_offset = g->s->next_offset;
}

static void expect_same_entries(const struct model *r, const struct model *a, uint64_t from,
                                uint64_t to, const char *what) {
    for (uint64_t i = from; i < to; i++) {
        struct store_entry v = entry_view(i, &r->e[i]);
        v.first_offset = r->e[i].offset;
        entry_expect(i, &a->e[i], &v, what);
    }
}

/* After a successful open: the recovered log must be one the acknowledged log and the operation
 * in flight allow — and then it is the acknowledged log. */
static void check_recovered(struct crash_run *run) {
    static struct model r;
    struct model *a = run->a;
    struct group *g = run->g;
    read_all(g, &r);
    int empty = g->s->file_count == 0;
    int a_empty = a->first == a->next;
    const char *what = "recovered";
    switch (run->pending) {
    case PENDING_NONE:
        ck_assert_msg(empty == a_empty, "recovered log empty=%d, acknowledged empty=%d", empty,
                      a_empty);
        if (!empty) {
            ck_assert_uint_eq(r.first, a->first);
            ck_assert_msg(r.next == a->next, "recovered up to %llu, acknowledged up to %llu",
                          (unsigned long long)r.next - 1, (unsigned long long)a->next - 1);
        }
        break;
    case PENDING_APPEND:
        if (empty) {
            ck_assert(a_empty);
            break;
        }
        ck_assert_uint_eq(r.first, a->first);
        ck_assert_msg(r.next >= a->next && r.next <= run->pending_end,
                      "recovered up to %llu; acknowledged %llu, in flight up to %llu",
                      (unsigned long long)r.next - 1, (unsigned long long)a->next - 1,
                      (unsigned long long)run->pending_end - 1);
        if (r.next > a->next && r.next < run->pending_end) crash_stats.appended_prefix++;
        break;
    case PENDING_TRUNCATE:
        if (empty) {
            ck_assert(run->pending_index == a->first);
            crash_stats.truncated_new++;
            break;
        }
        ck_assert_uint_eq(r.first, a->first);
        ck_assert_msg(r.next == a->next || r.next == run->pending_index,
                      "truncation from %llu of a log up to %llu recovered up to %llu: a mix",
                      (unsigned long long)run->pending_index, (unsigned long long)a->next - 1,
                      (unsigned long long)r.next - 1);
        if (r.next == a->next)
            crash_stats.truncated_old++;
        else
            crash_stats.truncated_new++;
        break;
    case PENDING_DROP:
        if (empty) {
            ck_assert(run->pending_first == a->next);
            break;
        }
        ck_assert_uint_eq(r.next, a->next);
        ck_assert_uint_ge(r.first, a->first);
        ck_assert_uint_le(r.first, run->pending_first);
        break;
    }
    if (!empty) {
        expect_same_entries(&r, a, r.first, r.next, what);
        if (r.next > a->next) {
            ck_assert_uint_eq(r.next_offset, a->e[r.next - 1].offset + a->e[r.next - 1].count);
        } else if (r.next < a->next) {
            ck_assert_uint_eq(r.next_offset, a->e[r.next].offset);
        } else {
            ck_assert_uint_eq(r.next_offset, a->next_offset);
        }
        a->first = r.first;
        a->next = r.next;
        a->next_offset = r.next_offset;
    } else {
        /* An empty group: the node (this test) says where the log continues. */
        uint64_t next = a->next, offset = a->next_offset;
        if (run->pending == PENDING_TRUNCATE) {
            next = run->pending_index;
            offset = a->e[next].offset;
        }
        model_reset(a, next, offset);
        ck_assert_int_eq(store_segment_set_next(g->s, next, offset), 0);
    }
    run->pending = PENDING_NONE;
    expect_files_explained(g);
}

/* Runs requests until g completes one more operation, or crashes at run->crash_at. Returns 1 on
 * a crash. */
static int wait_or_crash(struct crash_run *run, uint32_t before, struct rq_rng *crash_rng) {
    while (run->g->done_count == before) {
        if (run->h->r.executed == run->crash_at) {
            crash(run->h, rq_rng_chance(crash_rng, RQ_PPM / 2));
            crash_stats.crashes++;
            return 1;
        }
        ck_assert(diskrunner_step(&run->h->r));
    }
    return 0;
}

static void op_append(struct crash_run *run) {
    static struct store_entry views[8];
    struct model *a = run->a;
    uint32_t n = (uint32_t)rq_rng_range(&run->rng, 1, 6);
    if (rq_rng_chance(&run->rng, RQ_PPM * 15 / 100)) run->term++;
    uint64_t offset = a->next_offset;
    for (uint32_t k = 0; k < n; k++) {
        uint64_t index = a->next + k;
        ck_assert_uint_lt(index, INDEX_MAX);
        struct mentry *e = &a->e[index];
        run->clock += rq_rng_below(&run->rng, 20);
        uint64_t ts = run->clock;
        if (rq_rng_chance(&run->rng, RQ_PPM / 10)) ts -= rq_rng_below(&run->rng, 50);
        entry_fill(&run->rng, e, run->term, ts, 150);
        e->offset = offset;
        offset += e->count;
        views[k] = entry_view(index, e);
    }
    uint32_t accepted = 0;
    ck_assert_int_eq(store_segment_append(run->g->s, views, n, &accepted), 0);
    run->pending = PENDING_APPEND;
    run->pending_end = a->next + accepted;
}

static void op_truncate(struct crash_run *run) {
    uint64_t i = rq_rng_range(&run->rng, run->a->first, run->a->next - 1);
    ck_assert_int_eq(store_segment_truncate(run->g->s, i), 0);
    run->pending = PENDING_TRUNCATE;
    run->pending_index = i;
}

static int op_drop(struct crash_run *run, int retention) {
    struct store_segment *s = run->g->s;
    uint32_t deleting = 0;
    if (retention) {
        struct store_segment_retention r = {
            .now = run->clock + rq_rng_below(&run->rng, 200),
            .ttl = rq_rng_below(&run->rng, 300),
            .size_limit = rq_rng_chance(&run->rng, RQ_PPM / 2) ? rq_rng_below(&run->rng, 4000) : 0,
            .snapshot_index = rq_rng_range(&run->rng, run->a->first, run->a->next),
        };
        ck_assert_int_eq(store_segment_retention(s, &r, &deleting), 0);
        if (deleting > 0) {
            ck_assert_uint_lt(deleting, s->file_count); /* the last segment stays */
            uint64_t last_deleted = s->files[deleting].first_index - 1;
            ck_assert_uint_lt(last_deleted, r.snapshot_index);
        }
    } else {
        uint64_t i = rq_rng_range(&run->rng, run->a->first, run->a->next);
        ck_assert_int_eq(store_segment_drop_prefix(s, i, &deleting), 0);
    }
    if (deleting == 0) return 0;
    run->pending = PENDING_DROP;
    run->pending_first = deleting < s->file_count ? s->files[deleting].first_index : s->next_index;
    return 1;
}

/* A lookup, checked against the acknowledged log. Returns 1 on a crash. */
static int op_lookup(struct crash_run *run, struct rq_rng *crash_rng) {
    struct group *g = run->g;
    struct model *a = run->a;
    uint32_t before = g->done_count;
    uint64_t want = 0;
    uint64_t reads = g->s->stats.reads;
    int kind = (int)rq_rng_below(&run->rng, 3);
    if (kind == 1 && a->next_offset == a->e[a->first].offset) kind = 0; /* no message */
    if (kind == 0) {
        want = rq_rng_range(&run->rng, a->first, a->next - 1);
        ck_assert_int_eq(store_segment_read(g->s, want, 3, 200, g->out, OUT_MAX), 0);
    } else if (kind == 1) {
        uint64_t offset = rq_rng_range(&run->rng, a->e[a->first].offset, a->next_offset - 1);
        want = model_find_offset(a, offset);
        ck_assert_int_eq(store_segment_find_offset(g->s, offset, g->out), 0);
    } else {
        uint64_t t = rq_rng_below(&run->rng, run->clock + 10);
        want = model_find_timestamp(a, t);
        int rc = store_segment_find_timestamp(g->s, t, g->out);
        if (want == 0) {
            ck_assert_int_eq(rc, RQ_ERANGE);
            return 0;
        }
        ck_assert_int_eq(rc, 0);
    }
    if (wait_or_crash(run, before, crash_rng)) return 1;
    ck_assert_int_eq(g->res.err, 0);
    ck_assert_uint_eq(g->s->stats.reads, reads + 1);
    entry_expect(want, model_at(a, want), &g->got[0], "lookup");
    return 0;
}

/* The acknowledged log after the pending operation completed. */
static void pending_done(struct crash_run *run) {
    struct model *a = run->a;
    const struct store_segment_result *res = &run->g->res;
    ck_assert_int_eq(res->err, 0);
    switch (run->pending) {
    case PENDING_APPEND:
        ck_assert_uint_eq(res->durable_index, run->pending_end - 1);
        a->next_offset = a->e[run->pending_end - 1].offset + a->e[run->pending_end - 1].count;
        a->next = run->pending_end;
        break;
    case PENDING_TRUNCATE:
        a->next_offset = a->e[run->pending_index].offset;
        a->next = run->pending_index;
        if (a->first > a->next) a->first = a->next;
        break;
    case PENDING_DROP: a->first = run->pending_first; break;
    case PENDING_NONE: break;
    }
    run->pending = PENDING_NONE;
    ck_assert_uint_eq(store_segment_first_index(run->g->s), a->first);
    ck_assert_uint_eq(store_segment_last_index(run->g->s) + 1, a->next);
}

/* One life: open (recover), check, then `ops` random operations. Returns 1 if it crashed. */
static int life(struct crash_run *run, uint32_t ops, struct rq_rng *crash_rng) {
    struct group *g = run->g;
    uint32_t before = g->done_count;
    start_open(g);
    if (wait_or_crash(run, before, crash_rng)) return 1;
    ck_assert_msg(g->res.err == 0, "seed %llu k %llu: open after a crash failed: %s (%s)",
                  (unsigned long long)run->seed, (unsigned long long)run->k,
                  rq_strerror(g->res.err), last_error_line);
    crash_stats.torn += g->res.torn_segment != 0;
    crash_stats.redone += (uint64_t)g->res.intent_redone;
    crash_stats.discarded += (uint64_t)g->res.intent_discarded;
    check_recovered(run);
    for (uint32_t k = 0; k < ops; k++) {
        uint64_t roll = rq_rng_below(&run->rng, 100);
        int empty = run->a->first == run->a->next;
        before = g->done_count;
        int started = 1;
        if (empty || roll < 50) {
            op_append(run);
        } else if (roll < 62) {
            op_truncate(run);
        } else if (roll < 72) {
            started = op_drop(run, 0);
        } else if (roll < 80) {
            started = op_drop(run, 1);
        } else if (roll < 86) {
            ck_assert_int_eq(store_segment_roll(g->s), 0);
            started = 0;
        } else {
            if (op_lookup(run, crash_rng)) return 1;
            started = 0;
        }
        if (!started) continue;
        if (wait_or_crash(run, before, crash_rng)) return 1;
        pending_done(run);
    }
    return 0;
}

enum { CRASH_SEEDS = 40, CRASH_LIVES = 4, CRASH_OPS = 10 };

static struct crash_run *crash_run_new(uint64_t seed, uint64_t k, struct model *a) {
    struct crash_run *run = calloc(1, sizeof *run);
    ck_assert_ptr_nonnull(run);
    /* Odd seeds: small blocks and segments (many files). Even seeds: blocks up to 1 KiB, so
     * appends and intents span several sectors and tear in their middle. */
    static const struct store_segment_config wide = {.block_size_max = 1024,
                                                     .segment_size_max = 4096};
    run->h = harness_new(seed * 100003 + k, 1, seed % 2 ? &small_config : &wide);
    run->g = &run->h->groups[0];
    run->a = a;
    model_reset(a, 1 + (seed % 3) * 50, (seed % 2) * 1000);
    run->term = 1;
    run->clock = 1000;
    rq_rng_stream(&run->rng, seed, 1);
    run->crash_at = UINT64_MAX;
    run->seed = seed;
    run->k = k;
    return run;
}

static void crash_run_free(struct crash_run *run) {
    harness_free(run->h);
    free(run);
}

/* Each seed: life 1 crashed after k requests for EVERY k up to its length, then lives with
 * crashes at random points, then a last life without a crash followed by a power loss. The first
 * open of a fresh group sets where the log starts (set_next), as a node would after a snapshot. */
START_TEST(crash_after_every_disk_request_keeps_every_acknowledged_entry_and_nothing_else) {
    static struct model a;
    memset(&crash_stats, 0, sizeof crash_stats);
    for (uint64_t seed = 1; seed <= CRASH_SEEDS; seed++) {
        /* The length of life 1 without a crash. */
        struct crash_run *run = crash_run_new(seed, 0, &a);
        struct rq_rng crash_rng;
        rq_rng_stream(&crash_rng, seed, 2);
        ck_assert_int_eq(life(run, CRASH_OPS, &crash_rng), 0);
        uint64_t length = run->h->r.executed;
        crash_run_free(run);
        for (uint64_t k = 0; k <= length; k++) {
            run = crash_run_new(seed, k, &a);
            rq_rng_stream(&crash_rng, seed * 7919 + k, 3);
            run->crash_at = k;
            if (!life(run, CRASH_OPS, &crash_rng)) crash(run->h, (int)(k % 2));
            for (uint32_t l = 1; l < CRASH_LIVES; l++) {
                run->crash_at = run->h->r.executed + rq_rng_below(&crash_rng, 80);
                if (!life(run, CRASH_OPS, &crash_rng))
                    crash(run->h, (int)rq_rng_below(&crash_rng, 2));
            }
            run->crash_at = UINT64_MAX;
            ck_assert_int_eq(life(run, CRASH_OPS, &crash_rng), 0);
            crash(run->h, 1);
            ck_assert_int_eq(life(run, 0, &crash_rng), 0); /* nothing may be in flight now */
            ck_assert_int_eq(error_lines, 0);
            crash_stats.runs++;
            crash_run_free(run);
        }
    }
    /* The runs did crash in the interesting places. */
    fprintf(
        stderr,
        "segment crash test: %llu runs, %llu crashes, %llu torn tails, %llu truncations redone, "
        "%llu intents discarded, %llu partial appends kept, truncations seen old %llu / new "
        "%llu\n",
        (unsigned long long)crash_stats.runs, (unsigned long long)crash_stats.crashes,
        (unsigned long long)crash_stats.torn, (unsigned long long)crash_stats.redone,
        (unsigned long long)crash_stats.discarded, (unsigned long long)crash_stats.appended_prefix,
        (unsigned long long)crash_stats.truncated_old,
        (unsigned long long)crash_stats.truncated_new);
    ck_assert_uint_gt(crash_stats.torn, 0);
    ck_assert_uint_gt(crash_stats.redone, 0);
    ck_assert_uint_gt(crash_stats.discarded, 0);
    ck_assert_uint_gt(crash_stats.appended_prefix, 0);
    ck_assert_uint_gt(crash_stats.truncated_old, 0);
    ck_assert_uint_gt(crash_stats.truncated_new, 0);
}
END_TEST

/* ---- latent corruption ----------------------------------------------------------------------- */

/* A log of several segments, some truncated and dropped, then a power loss. */
static void build_log(struct group *g, struct model *m, struct rq_rng *rng) {
    model_reset(m, 1, 0);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t term = 1, clock = 0;
    fill(g, m, rng, 60 + (uint32_t)rq_rng_below(rng, 60), 6, &term, &clock);
    if (rq_rng_chance(rng, RQ_PPM / 2)) {
        truncate_sync(g, m, rq_rng_range(rng, m->next - 20, m->next - 1));
        term++;
        fill(g, m, rng, 10, 4, &term, &clock);
    }
    if (rq_rng_chance(rng, RQ_PPM / 2)) drop_sync(g, m, rq_rng_range(rng, 1, 30));
    crash(g->h, 1);
}

START_TEST(latent_corruption_is_detected_at_open) {
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct harness *h = harness_new(seed, 1, &small_config);
        struct group *g = &h->groups[0];
        struct model *m = model_new();
        struct rq_rng rng;
        rq_rng_stream(&rng, seed, 1);
        build_log(g, m, &rng);
        char dir[STORE_SEGMENT_DIR_SIZE];
        store_segment_dir(g->id, dir);
        char path[RQ_DISK_PATH_MAX];
        uint64_t offset;
        ck_assert_int_eq(sim_disk_corrupt(h->r.disk, &rng, dir, path, &offset), 0);
        error_lines = 0;
        struct store_segment_result res = open_group(g);
        /* Every byte of a segment is covered: a flip is never taken for a torn tail. */
        ck_assert_msg(res.err == RQ_ECORRUPT, "seed %llu: flip at %s byte %llu: open gave %s",
                      (unsigned long long)seed, path, (unsigned long long)offset,
                      rq_strerror(res.err));
        ck_assert_int_eq(error_lines, 1);
        ck_assert_ptr_nonnull(strstr(last_error_line, path));
        ck_assert_ptr_nonnull(strstr(last_error_line, "corrupt at byte"));
        /* Sticky: nothing is served. */
        uint32_t accepted;
        ck_assert_int_eq(store_segment_read(g->s, m->first, 1, 1, g->out, 1), RQ_ECORRUPT);
        ck_assert_int_eq(store_segment_append(g->s, NULL, 0, &accepted), RQ_ECORRUPT);
        free(m);
        harness_free(h);
    }
}
END_TEST

START_TEST(latent_corruption_is_detected_on_read_never_served) {
    uint32_t detected = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct harness *h = harness_new(seed, 1, &small_config);
        struct group *g = &h->groups[0];
        struct model *m = model_new();
        struct rq_rng rng;
        rq_rng_stream(&rng, seed, 1);
        build_log(g, m, &rng);
        ck_assert_int_eq(open_group(g).err, 0); /* the index is built from good data ... */
        char dir[STORE_SEGMENT_DIR_SIZE];
        store_segment_dir(g->id, dir);
        char path[RQ_DISK_PATH_MAX];
        uint64_t offset;
        ck_assert_int_eq(sim_disk_corrupt(h->r.disk, &rng, dir, path, &offset), 0);
        /* ... then a bit rots: reading everything must stop at it, serving only good entries. */
        uint64_t at = m->first;
        int failed = 0;
        while (at < m->next && !failed) {
            uint32_t before = g->done_count;
            uint32_t max = (uint32_t)rq_rng_range(&rng, 1, 8);
            ck_assert_int_eq(store_segment_read(g->s, at, max, UINT64_MAX, g->out, OUT_MAX), 0);
            wait_done(g, before);
            if (g->res.err != 0) {
                ck_assert_int_eq(g->res.err, RQ_ECORRUPT);
                ck_assert_ptr_nonnull(strstr(last_error_line, path));
                failed = 1;
                break;
            }
            for (uint32_t k = 0; k < g->res.entry_count; k++) {
                entry_expect(at + k, model_at(m, at + k), &g->got[k], "read of rotten log");
            }
            at += g->res.entry_count;
        }
        ck_assert_msg(failed, "seed %llu: flip at %s byte %llu never detected",
                      (unsigned long long)seed, path, (unsigned long long)offset);
        ck_assert_int_eq(store_segment_find_offset(g->s, 0, g->out), RQ_ECORRUPT);
        detected++;
        free(m);
        harness_free(h);
    }
    ck_assert_uint_eq(detected, 200);
}
END_TEST

/* ---- files the store did not write, or not like this: a table -------------------------------- */

/* The standard layout: 3 segments (first indexes 1, 7, 13) of 3 blocks of 2 entries each. */
struct layout {
    struct model *m;
    uint8_t image[3][2048];
    size_t size[3];
    size_t block_end[3][3];
    char path[3][STORE_SEGMENT_PATH_SIZE];
};

static void layout_build(struct layout *l, struct group *g, struct rq_rng *rng) {
    struct model *m = l->m;
    model_reset(m, 1, 0);
    uint64_t clock = 0;
    for (int n = 0; n < 3; n++) {
        store_segment_path(g->id, m->next, l->path[n]);
        l->size[n] = 0;
        for (int b = 0; b < 3; b++) {
            uint64_t from = m->next;
            model_add(m, rng, 2, 1 + (uint64_t)n, &clock, 50);
            l->size[n] += encode_block(m, from, m->next, l->image[n] + l->size[n], 256);
            l->block_end[n][b] = l->size[n];
        }
    }
}

static void layout_put(struct harness *h, const struct layout *l, int from, int to) {
    for (int n = from; n < to; n++)
        raw_put(h, l->path[n], l->image[n], l->size[n]);
}

static void put_in_dir(struct harness *h, struct group *g, const char *name, const void *data,
                       size_t size) {
    char path[RQ_DISK_PATH_MAX];
    char dir[STORE_SEGMENT_DIR_SIZE];
    store_segment_dir(g->id, dir);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    raw_put(h, path, data, size);
}

/* An intent, byte by byte as segment.h documents it. */
static size_t craft_intent(uint8_t *p, uint64_t group, uint64_t index, uint64_t cut_segment,
                           uint64_t cut_position, const uint8_t *tail, uint32_t tail_size) {
    memset(p, 0, 64);
    memcpy(p, "RQSC", 4);
    rq_put_u16(p + 4, 1);
    rq_put_u64(p + 16, group);
    rq_put_u64(p + 24, index);
    rq_put_u64(p + 32, cut_segment);
    rq_put_u64(p + 40, cut_position);
    rq_put_u32(p + 48, tail_size);
    if (tail_size > 0) memcpy(p + 64, tail, tail_size);
    rq_put_u32(p + 12, rq_crc32c(0, p + 16, 48));
    rq_put_u32(p + 8, rq_crc32c(rq_crc32c(0, p + 12, 52), p + 64, tail_size));
    return 64 + tail_size;
}

enum row_kind {
    ROW_FOREIGN_NAME,
    ROW_SHORT_NAME,
    ROW_NAME_MISMATCH,
    ROW_GARBAGE_SEGMENT,
    ROW_ROT_IN_LAST_BLOCK,
    ROW_GARBAGE_AFTER_LAST_BLOCK,
    ROW_TORN_HALF_BLOCK,
    ROW_TORN_HEADER,
    ROW_TORN_ZEROS,
    ROW_TORN_MIDDLE_SEGMENT,
    ROW_GAP,
    ROW_OVERLAP,
    ROW_OFFSET_JUMP,
    ROW_TERM_BACK,
    ROW_EMPTY_LAST,
    ROW_EMPTY_MIDDLE,
    ROW_TWO_INTENTS,
    ROW_INTENT_OTHER_GROUP,
    ROW_INTENT_TORN,
    ROW_INTENT_TORN_TAIL,
    ROW_INTENT_REDO_BOUNDARY,
    ROW_INTENT_REDO_MID_BLOCK,
    ROW_INTENT_MISSING_SEGMENT,
    ROW_DIR_IS_A_FILE,
};

struct open_case {
    const char *name;
    enum row_kind kind;
    int err;
    uint64_t last_index; /* when err == 0 */
    int torn;
    int intent; /* 1 redone, 2 discarded */
};

static const struct open_case open_cases[] = {
    {"foreign file name", ROW_FOREIGN_NAME, RQ_ECORRUPT, 0, 0, 0},
    {"segment name not 20 digits", ROW_SHORT_NAME, RQ_ECORRUPT, 0, 0, 0},
    {"first block does not match the name", ROW_NAME_MISMATCH, RQ_ECORRUPT, 0, 0, 0},
    {"random bytes as the only segment", ROW_GARBAGE_SEGMENT, RQ_ECORRUPT, 0, 0, 0},
    {"rot inside the last block", ROW_ROT_IN_LAST_BLOCK, RQ_ECORRUPT, 0, 0, 0},
    {"garbage after the last block", ROW_GARBAGE_AFTER_LAST_BLOCK, RQ_ECORRUPT, 0, 0, 0},
    {"torn: half a block at the end", ROW_TORN_HALF_BLOCK, 0, 16, 1, 0},
    {"torn: part of a header at the end", ROW_TORN_HEADER, 0, 16, 1, 0},
    {"torn: zeros at the end", ROW_TORN_ZEROS, 0, 16, 1, 0},
    {"a segment before the last ends in a block", ROW_TORN_MIDDLE_SEGMENT, RQ_ECORRUPT, 0, 0, 0},
    {"gap between segments", ROW_GAP, RQ_ECORRUPT, 0, 0, 0},
    {"overlapping segments", ROW_OVERLAP, RQ_ECORRUPT, 0, 0, 0},
    {"message offsets jump between segments", ROW_OFFSET_JUMP, RQ_ECORRUPT, 0, 0, 0},
    {"term goes back", ROW_TERM_BACK, RQ_ECORRUPT, 0, 0, 0},
    {"empty last segment", ROW_EMPTY_LAST, 0, 12, 1, 0},
    {"empty segment before the last", ROW_EMPTY_MIDDLE, RQ_ECORRUPT, 0, 0, 0},
    {"two truncation intents", ROW_TWO_INTENTS, RQ_ECORRUPT, 0, 0, 0},
    {"intent of another group", ROW_INTENT_OTHER_GROUP, RQ_ECORRUPT, 0, 0, 0},
    {"torn intent is discarded", ROW_INTENT_TORN, 0, 18, 0, 2},
    {"intent with a torn tail is discarded", ROW_INTENT_TORN_TAIL, 0, 18, 0, 2},
    {"intent at a block boundary is redone", ROW_INTENT_REDO_BOUNDARY, 0, 8, 0, 1},
    {"intent inside a block is redone", ROW_INTENT_REDO_MID_BLOCK, 0, 9, 0, 1},
    {"intent naming a missing segment", ROW_INTENT_MISSING_SEGMENT, RQ_ECORRUPT, 0, 0, 0},
    {"group directory is a file", ROW_DIR_IS_A_FILE, RQ_EEXIST, 0, 0, 0},
};

static void build_case(const struct open_case *c, struct harness *h, struct group *g,
                       struct layout *l, struct rq_rng *rng) {
    uint8_t buf[4096];
    layout_build(l, g, rng);
    switch (c->kind) {
    case ROW_FOREIGN_NAME:
        layout_put(h, l, 0, 3);
        put_in_dir(h, g, "hello.txt", "hi", 2);
        break;
    case ROW_SHORT_NAME: put_in_dir(h, g, "123.seg", l->image[0], l->size[0]); break;
    case ROW_NAME_MISMATCH:
        put_in_dir(h, g, "00000000000000000005.seg", l->image[0], l->size[0]);
        break;
    case ROW_GARBAGE_SEGMENT:
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (uint8_t)rq_rng_next(rng);
        raw_put(h, l->path[0], buf, 1000);
        break;
    case ROW_ROT_IN_LAST_BLOCK:
        layout_put(h, l, 0, 2);
        l->image[2][l->size[2] - 3] ^= 0x10;
        layout_put(h, l, 2, 3);
        break;
    case ROW_GARBAGE_AFTER_LAST_BLOCK:
        layout_put(h, l, 0, 2);
        memcpy(l->image[2] + l->size[2], l->image[2], 64); /* a valid-looking header, wrong place */
        l->size[2] += 64 + 100;
        layout_put(h, l, 2, 3);
        break;
    case ROW_TORN_HALF_BLOCK:
        layout_put(h, l, 0, 2);
        l->size[2] = l->block_end[2][1] + (l->block_end[2][2] - l->block_end[2][1]) / 2;
        layout_put(h, l, 2, 3);
        break;
    case ROW_TORN_HEADER:
        layout_put(h, l, 0, 2);
        l->size[2] = l->block_end[2][1] + 30;
        layout_put(h, l, 2, 3);
        break;
    case ROW_TORN_ZEROS:
        layout_put(h, l, 0, 2);
        memset(l->image[2] + l->block_end[2][1], 0, 300);
        l->size[2] = l->block_end[2][1] + 300;
        layout_put(h, l, 2, 3);
        break;
    case ROW_TORN_MIDDLE_SEGMENT:
        l->size[1] -= 10;
        layout_put(h, l, 0, 3);
        break;
    case ROW_GAP:
        layout_put(h, l, 0, 1);
        layout_put(h, l, 2, 3);
        break;
    case ROW_OVERLAP:
        layout_put(h, l, 0, 3);
        put_in_dir(h, g, "00000000000000000005.seg", l->image[1], l->size[1]);
        break;
    case ROW_OFFSET_JUMP: {
        layout_put(h, l, 0, 2);
        for (uint64_t i = 13; i < l->m->next; i++)
            l->m->e[i].offset += 1;
        size_t size = 0;
        for (uint64_t i = 13; i < l->m->next; i += 2) {
            size += encode_block(l->m, i, i + 2, buf + size, 256);
        }
        raw_put(h, l->path[2], buf, size);
        break;
    }
    case ROW_TERM_BACK: {
        layout_put(h, l, 0, 2);
        for (uint64_t i = 13; i < l->m->next; i++)
            l->m->e[i].term = 1;
        size_t size = 0;
        for (uint64_t i = 13; i < l->m->next; i += 2) {
            size += encode_block(l->m, i, i + 2, buf + size, 256);
        }
        raw_put(h, l->path[2], buf, size);
        break;
    }
    case ROW_EMPTY_LAST:
        layout_put(h, l, 0, 2);
        raw_put(h, l->path[2], NULL, 0);
        break;
    case ROW_EMPTY_MIDDLE:
        layout_put(h, l, 0, 3);
        raw_put(h, l->path[1], NULL, 0);
        break;
    case ROW_TWO_INTENTS:
        layout_put(h, l, 0, 3);
        put_in_dir(h, g, "00000000000000000009.cut", NULL, 0);
        put_in_dir(h, g, "00000000000000000010.cut", NULL, 0);
        break;
    case ROW_INTENT_OTHER_GROUP: {
        layout_put(h, l, 0, 3);
        size_t size = craft_intent(buf, g->id + 1, 13, 0, 0, NULL, 0);
        put_in_dir(h, g, "00000000000000000013.cut", buf, size);
        break;
    }
    case ROW_INTENT_TORN: {
        layout_put(h, l, 0, 3);
        size_t size = craft_intent(buf, g->id, 9, 7, l->block_end[1][0], NULL, 0);
        put_in_dir(h, g, "00000000000000000009.cut", buf, size - 20); /* cut short */
        break;
    }
    case ROW_INTENT_TORN_TAIL: {
        /* a whole header announcing a tail the file does not hold: the write was cut */
        layout_put(h, l, 0, 3);
        uint8_t tail[256];
        uint32_t tail_size = encode_block(l->m, 9, 10, tail, sizeof tail);
        size_t size = craft_intent(buf, g->id, 10, 7, l->block_end[1][0], tail, tail_size);
        put_in_dir(h, g, "00000000000000000010.cut", buf, size - 10);
        break;
    }
    case ROW_INTENT_REDO_BOUNDARY: {
        /* truncating from 9 = segment 7's second block: cut there, segment 13 goes */
        layout_put(h, l, 0, 3);
        size_t size = craft_intent(buf, g->id, 9, 7, l->block_end[1][0], NULL, 0);
        put_in_dir(h, g, "00000000000000000009.cut", buf, size);
        break;
    }
    case ROW_INTENT_REDO_MID_BLOCK: {
        /* truncating from 10: segment 7's second block (9, 10) becomes (9) */
        layout_put(h, l, 0, 3);
        uint8_t tail[256];
        uint32_t tail_size = encode_block(l->m, 9, 10, tail, sizeof tail);
        size_t size = craft_intent(buf, g->id, 10, 7, l->block_end[1][0], tail, tail_size);
        put_in_dir(h, g, "00000000000000000010.cut", buf, size);
        break;
    }
    case ROW_INTENT_MISSING_SEGMENT: {
        layout_put(h, l, 0, 1);
        size_t size = craft_intent(buf, g->id, 9, 7, l->block_end[1][0], NULL, 0);
        put_in_dir(h, g, "00000000000000000009.cut", buf, size);
        break;
    }
    case ROW_DIR_IS_A_FILE: {
        char dir[STORE_SEGMENT_DIR_SIZE];
        store_segment_dir(g->id, dir);
        raw_put(h, dir, "x", 1);
        break;
    }
    }
}

START_TEST(open_table) {
    const struct open_case *c = &open_cases[_i];
    struct harness *h = harness_new(20 + (uint64_t)_i, 1, &small_config);
    struct group *g = &h->groups[0];
    struct layout *l = calloc(1, sizeof *l);
    l->m = model_new();
    struct rq_rng rng;
    rq_rng_stream(&rng, 20 + (uint64_t)_i, 1);
    build_case(c, h, g, l, &rng);
    struct store_segment_result res = open_group(g);
    ck_assert_msg(res.err == c->err, "%s: open gave %s, expected %s (%s)", c->name,
                  rq_strerror(res.err), rq_strerror(c->err), last_error_line);
    if (c->err != 0) {
        ck_assert_int_eq(g->s->state, STORE_SEGMENT_FAILED);
        ck_assert_msg(error_lines == 1 && strstr(last_error_line, "g0000"),
                      "%s: the error line names no file: %s", c->name, last_error_line);
        if (c->err == RQ_ECORRUPT) ck_assert_ptr_nonnull(strstr(last_error_line, "byte"));
        if (c->kind == ROW_FOREIGN_NAME)
            ck_assert_ptr_nonnull(strstr(last_error_line, "hello.txt"));
    } else {
        ck_assert_msg(res.last_index == c->last_index, "%s: last index %llu, expected %llu",
                      c->name, (unsigned long long)res.last_index,
                      (unsigned long long)c->last_index);
        ck_assert_int_eq(res.torn_segment != 0, c->torn);
        ck_assert_int_eq(res.intent_redone, c->intent == 1);
        ck_assert_int_eq(res.intent_discarded, c->intent == 2);
        ck_assert_int_eq(error_lines, 0);
        if (c->torn || c->intent) ck_assert_int_ge(warn_lines, 1);
        if (c->torn) ck_assert_ptr_nonnull(strstr(last_warn_line, "torn tail"));
        /* What it kept is exactly the layout's log up to last_index, durably, and it goes on. */
        l->m->next = c->last_index + 1;
        l->m->next_offset = l->m->e[c->last_index].offset + l->m->e[c->last_index].count;
        expect_log(g, l->m, c->name);
        expect_files_explained(g);
        uint64_t clock = 10000;
        append_new(g, l->m, &rng, 3, 5, &clock, 30);
        crash(h, 1);
        ck_assert_int_eq(open_group(g).err, 0);
        expect_log(g, l->m, c->name);
    }
    free(l->m);
    free(l);
    harness_free(h);
}
END_TEST

/* A complete intent with any single bit flipped is corrupt: never redone, never discarded. */
START_TEST(every_single_bit_flip_in_an_intent_is_corruption) {
    struct rq_rng rng;
    rq_rng_stream(&rng, 50, 1);
    struct layout *l = calloc(1, sizeof *l);
    l->m = model_new();
    uint8_t intent[512];
    uint8_t tail[256];
    size_t size = 0;
    for (uint32_t bit = 0;; bit++) {
        struct harness *h = harness_new(50 + bit, 1, &small_config);
        struct group *g = &h->groups[0];
        rq_rng_stream(&rng, 50, 1);
        layout_build(l, g, &rng);
        layout_put(h, l, 0, 3);
        uint32_t tail_size = encode_block(l->m, 9, 10, tail, sizeof tail);
        size = craft_intent(intent, g->id, 10, 7, l->block_end[1][0], tail, tail_size);
        if (bit == size * 8) {
            harness_free(h);
            break;
        }
        intent[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        put_in_dir(h, g, "00000000000000000010.cut", intent, size);
        error_lines = 0;
        struct store_segment_result res = open_group(g);
        ck_assert_msg(res.err == RQ_ECORRUPT, "bit %u: open gave %s", bit, rq_strerror(res.err));
        ck_assert_ptr_nonnull(strstr(last_error_line, "00000000000000000010.cut"));
        harness_free(h);
    }
    ck_assert_uint_gt(size, 64);
    free(l->m);
    free(l);
}
END_TEST

/* ---- torn tails and failed fsyncs ------------------------------------------------------------ */

START_TEST(a_torn_tail_is_cut_reported_and_the_log_goes_on) {
    struct harness *h = harness_new(60, 1, &small_config);
    struct group *g = &h->groups[0];
    struct model *m = model_new();
    model_reset(m, 1, 0);
    struct rq_rng rng;
    rq_rng_stream(&rng, 60, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    uint64_t term = 1, clock = 0;
    fill(g, m, &rng, 30, 4, &term, &clock);
    /* An append whose write is in the page cache only, then torn by a power loss: here by hand,
     * the write's first 100 bytes. */
    char path[STORE_SEGMENT_PATH_SIZE];
    struct store_segment_file *last = &g->s->files[g->s->file_count - 1];
    store_segment_path(g->id, last->first_index, path);
    static uint8_t image[4096];
    size_t size = raw_get(h, path, image, sizeof image);
    ck_assert_uint_eq(size, last->size);
    uint64_t from = m->next;
    struct model *more = model_new();
    *more = *m;
    model_add(more, &rng, 2, term, &clock, 60);
    size_t block = encode_block(more, from, more->next, image + size, 512);
    ck_assert_uint_gt(block, 100);
    raw_put(h, path, image, size + 100);
    crash(h, 1);
    warn_lines = 0;
    struct store_segment_result res = open_group(g);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.torn_bytes, 100);
    ck_assert_uint_eq(res.torn_position, size);
    ck_assert_uint_eq(res.torn_segment, last->first_index);
    ck_assert_int_eq(warn_lines, 1);
    ck_assert_ptr_nonnull(strstr(last_warn_line, path));
    expect_log(g, m, "after torn tail");
    expect_files_explained(g); /* the cut is durable */
    fill(g, m, &rng, 10, 4, &term, &clock);
    crash(h, 1);
    ck_assert_int_eq(open_group(g).err, 0);
    expect_log(g, m, "after torn tail and more appends");
    free(more);
    free(m);
    harness_free(h);
}
END_TEST

START_TEST(a_failed_fsync_fails_the_store_and_the_batch_is_all_or_a_prefix) {
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct harness *h = harness_new(seed, 1, &small_config);
        struct group *g = &h->groups[0];
        struct model *m = model_new();
        model_reset(m, 1, 0);
        struct rq_rng rng;
        rq_rng_stream(&rng, seed, 1);
        ck_assert_int_eq(open_group(g).err, 0);
        uint64_t term = 1, clock = 0;
        fill(g, m, &rng, 20, 4, &term, &clock);
        uint64_t acked = m->next;
        h->r.faults.fsync_eio_ppm = RQ_PPM;
        model_add(m, &rng, 5, term, &clock, 60);
        static struct store_entry views[8];
        for (uint64_t i = acked; i < m->next; i++)
            views[i - acked] = entry_view(i, &m->e[i]);
        uint32_t accepted = 0, before = g->done_count;
        ck_assert_int_eq(store_segment_append(g->s, views, 5, &accepted), 0);
        wait_done(g, before);
        ck_assert_int_eq(g->res.err, RQ_EIO);
        ck_assert_int_eq(g->s->state, STORE_SEGMENT_FAILED);
        uint32_t refused = 0;
        ck_assert_int_eq(store_segment_append(g->s, views, 5, &refused), RQ_EIO);
        ck_assert_int_eq(store_segment_truncate(g->s, 1), RQ_EIO);
        ck_assert_int_eq(store_segment_roll(g->s), RQ_EIO);
        h->r.faults.fsync_eio_ppm = 0;
        crash(h, (int)(seed % 2));
        ck_assert_int_eq(open_group(g).err, 0);
        uint64_t last = store_segment_last_index(g->s);
        ck_assert_uint_ge(last + 1, acked);
        ck_assert_uint_le(last + 1, acked + accepted);
        m->next = last + 1;
        m->next_offset = m->e[last].offset + m->e[last].count;
        expect_log(g, m, "after fsync EIO");
        free(m);
        harness_free(h);
    }
}
END_TEST

START_TEST(foreign_requests_are_not_claimed) {
    struct harness *h = harness_new(70, 1, &small_config);
    struct group *g = &h->groups[0];
    ck_assert_int_eq(open_group(g).err, 0);
    struct rq_disk_req other = {.op = RQ_DISK_FSYNC, .user = g->id};
    ck_assert_int_eq(store_segment_on_disk_done(g->s, &other), 0);
    harness_free(h);
}
END_TEST

START_TEST(append_before_open_aborts) {
    struct harness *h = harness_new(71, 1, &small_config);
    struct group *g = &h->groups[0];
    store_segment_init(g->s, &h->r.io, g->id, &g->config, g->buf, g->buf_size, on_done, g);
    uint32_t accepted;
    struct store_entry e = {.index = 1, .term = 1};
    store_segment_append(g->s, &e, 1, &accepted);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("segment");

    TCase *block = tcase_create("block");
    tcase_add_checked_fixture(block, logcapture_start, logcapture_stop);
    tcase_add_test(block, block_layout_matches_the_documentation);
    tcase_add_test(block, every_single_bit_flip_in_a_block_is_caught);
    tcase_add_test(block, checksummed_blocks_with_a_wrong_structure_are_rejected);
    tcase_add_test(block, cutting_a_block_keeps_a_valid_prefix);
    tcase_add_test(block, scan_of_every_prefix_stops_at_a_block_boundary);
    tcase_add_test(block, scan_survives_mutated_and_random_images);
    tcase_add_test(block, paths_are_valid_and_fixed_width);
    suite_add_tcase(suite, block);

    TCase *basic = tcase_create("basic");
    tcase_set_timeout(basic, 600);
    tcase_add_checked_fixture(basic, logcapture_start, logcapture_stop);
    tcase_add_test(basic, a_new_group_creates_its_directory_durably);
    tcase_add_test(basic, append_and_read_round_trip_across_segments_and_groups);
    tcase_add_test(basic, lookups_by_index_offset_and_timestamp_take_one_read_each);
    tcase_add_test(basic, reads_respect_entry_byte_and_buffer_bounds);
    tcase_add_test(basic, appends_are_validated);
    tcase_add_test(basic, block_and_segment_limits_push_back);
    tcase_add_test(basic, roll_starts_a_new_segment);
    tcase_add_test(basic, truncate_mid_block_at_a_boundary_and_across_segments);
    tcase_add_test(basic, drop_prefix_deletes_whole_segments_below_the_index);
    tcase_add_test(basic, retention_by_age_and_size_never_reaches_the_snapshot_index);
    tcase_add_test(basic, foreign_requests_are_not_claimed);
    tcase_add_test_raise_signal(basic, append_before_open_aborts, SIGABRT);
    suite_add_tcase(suite, basic);

    TCase *crash_case = tcase_create("crash");
    tcase_set_timeout(crash_case, 600); /* a bound for slow sanitizer builds, not a timing test */
    tcase_add_checked_fixture(crash_case, logcapture_start, logcapture_stop);
    tcase_add_test(crash_case,
                   crash_after_every_disk_request_keeps_every_acknowledged_entry_and_nothing_else);
    tcase_add_test(crash_case, a_torn_tail_is_cut_reported_and_the_log_goes_on);
    tcase_add_test(crash_case, a_failed_fsync_fails_the_store_and_the_batch_is_all_or_a_prefix);
    suite_add_tcase(suite, crash_case);

    TCase *corrupt = tcase_create("corruption");
    tcase_set_timeout(corrupt, 600);
    tcase_add_checked_fixture(corrupt, logcapture_start, logcapture_stop);
    tcase_add_test(corrupt, latent_corruption_is_detected_at_open);
    tcase_add_test(corrupt, latent_corruption_is_detected_on_read_never_served);
    tcase_add_test(corrupt, every_single_bit_flip_in_an_intent_is_corruption);
    tcase_add_loop_test(corrupt, open_table, 0, (int)(sizeof open_cases / sizeof open_cases[0]));
    suite_add_tcase(suite, corrupt);

    return run_suites(srunner_create(suite));
}
