/* The Raft message codec (src/raft/msg.c), tested: known encodings, round trips of every message
 * type and of a full batch of mixed messages, every decode error as a row of a table, every
 * truncation of valid encodings, the APPEND size limit, encoding into buffers that are too small,
 * and the assertions that refuse to encode a malformed message. Random messages come from rq_rng
 * with a fixed seed, so a failure reproduces exactly. Buffers handed to the decoder or encoder are
 * allocated at their exact size, so AddressSanitizer reports any access past their end. */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/errors.h"
#include "base/rng.h"
#include "io/io.h"
#include "raft/msg.h"
#include "tests/unit/suite_main.h"

enum { TEST_TIMEOUT_S = 60, RANDOM_ENTRIES_MAX = 8, RANDOM_DATA_MAX = 64 };

/* A copy of len bytes in a heap block of exactly that size (one byte when len is 0). */
static uint8_t *dup_exact(const void *src, size_t len) {
    uint8_t *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    if (len) memcpy(p, src, len);
    return p;
}

/* m encoded into a heap block of exactly its size. */
static uint8_t *encode_exact(const struct raft_msg *m, size_t *len) {
    size_t size = raft_msg_encoded_size(m);
    uint8_t *buf = malloc(size);
    ck_assert_ptr_nonnull(buf);
    size_t pos = 0;
    ck_assert_int_eq(raft_msg_encode(m, buf, size, &pos), 0);
    ck_assert_uint_le(pos, size);
    *len = pos;
    return buf;
}

static void check_entry_eq(const struct raft_entry *got, const struct raft_entry *want) {
    ck_assert_uint_eq(got->index, want->index);
    ck_assert_uint_eq(got->term, want->term);
    ck_assert_uint_eq(got->type, want->type);
    ck_assert_uint_eq(got->data_size, want->data_size);
    if (want->data_size == 0) ck_assert_ptr_null(got->data);
    else ck_assert_mem_eq(got->data, want->data, want->data_size);
}

/* Every encoded field equal; `to` is never encoded and `from` only through a batch. */
static void check_msg_eq(const struct raft_msg *got, const struct raft_msg *want, uint32_t from) {
    ck_assert_uint_eq(got->type, want->type);
    ck_assert_uint_eq(got->group, want->group);
    ck_assert_uint_eq(got->from, from);
    ck_assert_uint_eq(got->to, 0);
    ck_assert_uint_eq(got->term, want->term);
    ck_assert_uint_eq(got->last_index, want->last_index);
    ck_assert_uint_eq(got->last_term, want->last_term);
    ck_assert_uint_eq(got->reject, want->reject);
    ck_assert_uint_eq(got->prev_index, want->prev_index);
    ck_assert_uint_eq(got->prev_term, want->prev_term);
    ck_assert_uint_eq(got->commit, want->commit);
    ck_assert_uint_eq(got->entry_count, want->entry_count);
    for (uint32_t i = 0; i < want->entry_count; i++) {
        check_entry_eq(&got->entries[i], &want->entries[i]);
    }
    ck_assert_uint_eq(got->index, want->index);
    ck_assert_uint_eq(got->hint_index, want->hint_index);
    ck_assert_uint_eq(got->hint_term, want->hint_term);
    ck_assert_uint_eq(got->context, want->context);
    ck_assert_uint_eq(got->transfer, want->transfer);
    ck_assert_uint_eq(got->snap_index, want->snap_index);
    ck_assert_uint_eq(got->snap_term, want->snap_term);
    ck_assert_uint_eq(got->offset, want->offset);
    ck_assert_uint_eq(got->chunk_last, want->chunk_last);
    ck_assert_uint_eq(got->chunk_size, want->chunk_size);
    if (want->chunk_size == 0) ck_assert_ptr_null(got->chunk);
    else ck_assert_mem_eq(got->chunk, want->chunk, want->chunk_size);
}

/* ---- sample messages: every type, with small, large and boundary values ---------------------- */

static const uint8_t data_abc[] = {'a', 'b', 'c'};
static const struct raft_entry entries_three[] = {
    {11, 4, RAFT_ENTRY_NORMAL, 3, data_abc},
    {12, 4, RAFT_ENTRY_NOOP, 0, NULL},
    {13, 5, RAFT_ENTRY_NORMAL, 1, data_abc},
};
static const struct raft_entry entries_top[] = {
    {UINT64_MAX - 1, UINT64_MAX, RAFT_ENTRY_NORMAL, 2, data_abc},
    {UINT64_MAX, UINT64_MAX, RAFT_ENTRY_NOOP, 0, NULL},
};

/* Fields a type does not encode stay 0: the decoder zeroes them, and check_msg_eq compares all. */
static const struct raft_msg samples[] = {
    {.type = RAFT_MSG_PREVOTE, .group = 1, .term = 5, .last_index = 10, .last_term = 4},
    {.type = RAFT_MSG_PREVOTE_RESP, .group = 1, .term = 5, .reject = 1},
    {.type = RAFT_MSG_VOTE, .group = 0, .term = 0, .last_index = 0, .last_term = 0},
    {.type = RAFT_MSG_VOTE, .group = RAFT_GROUP_ID_LIMIT - 1, .term = UINT64_MAX,
     .last_index = UINT64_MAX, .last_term = UINT64_MAX},
    {.type = RAFT_MSG_VOTE_RESP, .group = 300, .term = 1u << 20, .reject = 0},
    {.type = RAFT_MSG_APPEND, .group = 1, .term = 5, .prev_index = 10, .prev_term = 4, .commit = 9},
    {.type = RAFT_MSG_APPEND, .group = 2, .term = 5, .prev_index = 10, .prev_term = 4, .commit = 9,
     .entry_count = 1, .entries = entries_three},
    {.type = RAFT_MSG_APPEND, .group = 3, .term = 6, .prev_index = 10, .prev_term = 4, .commit = 12,
     .entry_count = 3, .entries = entries_three},
    {.type = RAFT_MSG_APPEND, .group = 4, .term = UINT64_MAX, .prev_index = UINT64_MAX - 2,
     .prev_term = UINT64_MAX, .commit = UINT64_MAX, .entry_count = 2, .entries = entries_top},
    {.type = RAFT_MSG_APPEND_RESP, .group = 1, .term = 5, .reject = 0, .index = 13},
    {.type = RAFT_MSG_APPEND_RESP, .group = 1, .term = 5, .reject = 1, .index = 10,
     .hint_index = 7, .hint_term = 3},
    {.type = RAFT_MSG_HEARTBEAT, .group = 9, .term = 5, .commit = 12, .context = 42},
    {.type = RAFT_MSG_HEARTBEAT, .group = 9, .term = 5, .commit = 0, .context = UINT64_MAX},
    {.type = RAFT_MSG_HEARTBEAT_RESP, .group = 9, .term = 5, .context = 42},
    {.type = RAFT_MSG_READ_INDEX, .group = 3, .term = 5, .context = 77},
    {.type = RAFT_MSG_READ_INDEX_RESP, .group = 3, .term = 5, .context = 77, .index = 1234},
    {.type = RAFT_MSG_VOTE, .group = 1, .term = 6, .last_index = 10, .last_term = 4, .transfer = 1},
    {.type = RAFT_MSG_INSTALL_SNAPSHOT, .group = 2, .term = 5, .snap_index = 300, .snap_term = 4,
     .offset = 64, .chunk_last = 1, .chunk_size = 3, .chunk = data_abc},
    {.type = RAFT_MSG_INSTALL_SNAPSHOT, .group = 2, .term = 5, .snap_index = 1, .snap_term = 1},
    {.type = RAFT_MSG_SNAPSHOT_RESP, .group = 2, .term = 5, .snap_index = 300, .offset = 131072},
    {.type = RAFT_MSG_TIMEOUT_NOW, .group = 7, .term = 5, .last_index = 99},
};
enum { SAMPLES = sizeof samples / sizeof samples[0] };

/* ---- known encodings: the format in msg.h, byte for byte ------------------------------------- */

struct known {
    const struct raft_msg *m;
    uint8_t bytes[32];
    size_t len;
};

static const struct known knowns[] = {
    {&samples[0], {1, 1, 5, 10, 4}, 5},
    {&samples[2], {3, 0, 0, 0, 0, 0}, 6},
    {&samples[16], {3, 1, 6, 10, 4, 1}, 6},
    {&samples[17], {11, 2, 5, 0xAC, 0x02, 4, 64, 1, 3, 'a', 'b', 'c'}, 12},
    {&samples[18], {11, 2, 5, 1, 1, 0, 0, 0}, 8},
    {&samples[19], {12, 2, 5, 0xAC, 0x02, 0x80, 0x80, 0x08}, 8},
    {&samples[20], {13, 7, 5, 99}, 4},
    {&samples[1], {2, 1, 5, 1}, 4},
    {&samples[4], {4, 0xAC, 0x02, 0x80, 0x80, 0x40, 0}, 7},
    {&samples[5], {5, 1, 5, 10, 4, 9, 0}, 7},
    {&samples[7],
     {5, 3, 6, 10, 4, 12, 3, 11, 4, 1, 3, 'a', 'b', 'c', 12, 4, 2, 0, 13, 5, 1, 1, 'a'},
     23},
    {&samples[10], {6, 1, 5, 1, 10, 7, 3}, 7},
    {&samples[11], {7, 9, 5, 12, 42}, 5},
    {&samples[13], {8, 9, 5, 42}, 4},
    {&samples[14], {9, 3, 5, 77}, 4},
    {&samples[15], {10, 3, 5, 77, 0xD2, 0x09}, 6},
};
enum { KNOWNS = sizeof knowns / sizeof knowns[0] };

START_TEST(test_known_encodings) {
    const struct known *k = &knowns[_i];
    size_t len;
    uint8_t *buf = encode_exact(k->m, &len);
    ck_assert_uint_eq(len, k->len);
    ck_assert_mem_eq(buf, k->bytes, k->len);
    free(buf);
}
END_TEST

START_TEST(test_batch_header_bytes) {
    uint8_t buf[RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE];
    static const uint8_t one[] = {'R', 'Q', 'F', 'B', 1, 3, 0, 0, 0, 1};
    ck_assert_uint_eq(raft_batch_header(buf, 3, 1), sizeof one);
    ck_assert_mem_eq(buf, one, sizeof one);
    static const uint8_t most[] = {'R', 'Q', 'F', 'B', 1, 255, 0, 0, 0, 0x80, 0x20};
    ck_assert_uint_eq(raft_batch_header(buf, RQ_NODE_ID_MAX, RAFT_BATCH_MSGS_MAX), sizeof most);
    ck_assert_mem_eq(buf, most, sizeof most);
}
END_TEST

/* ---- round trips ----------------------------------------------------------------------------- */

/* m alone, and m as the only message of a batch from node 7. */
static void check_roundtrip(const struct raft_msg *m) {
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    struct raft_msg got;
    size_t len;
    uint8_t *buf = encode_exact(m, &len);
    ck_assert_uint_ge(raft_msg_encoded_size(m), len);
    ck_assert_int_eq(raft_msg_decode(buf, len, &got, entries), 0);
    check_msg_eq(&got, m, 0);
    for (uint32_t i = 0; i < got.entry_count; i++) {
        if (got.entries[i].data_size == 0) continue;  /* entry data points into the input */
        ck_assert(got.entries[i].data >= buf);
        ck_assert(got.entries[i].data + got.entries[i].data_size <= buf + len);
    }

    size_t batch_len = RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE + len;
    uint8_t *batch = malloc(batch_len);
    ck_assert_ptr_nonnull(batch);
    size_t header_len = raft_batch_header(batch, 7, 1);
    memcpy(batch + header_len, buf, len);
    uint8_t *exact = dup_exact(batch, header_len + len);
    struct raft_batch_reader br;
    ck_assert_int_eq(raft_batch_open(&br, exact, header_len + len), 0);
    ck_assert_uint_eq(br.from, 7);
    ck_assert_uint_eq(br.count, 1);
    ck_assert_int_eq(raft_batch_next(&br, &got, entries), 1);
    check_msg_eq(&got, m, 7);
    ck_assert_int_eq(raft_batch_next(&br, &got, entries), 0);
    ck_assert_int_eq(raft_batch_next(&br, &got, entries), 0);  /* the end stays the end */
    free(exact);
    free(batch);
    free(buf);
}

START_TEST(test_roundtrip_samples) { check_roundtrip(&samples[_i]); }
END_TEST

START_TEST(test_roundtrip_every_type) {
    for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
        struct raft_msg m = {.type = type, .group = type, .term = 100u + type};
        check_roundtrip(&m);
    }
}
END_TEST

static uint8_t big_data[RAFT_ENTRY_DATA_MAX + 1];

static void fill_big_data(void) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 41);
    for (size_t i = 0; i < sizeof big_data; i++) big_data[i] = (uint8_t)rq_rng_next(&rng);
}

/* An APPEND of entry_count consecutive entries after index 100, entry i with data_size(i) bytes
 * of big_data and term 7 + i / 3 (non-decreasing, with repeats). */
static struct raft_msg append_of(struct raft_entry *entries, uint32_t entry_count,
                                 uint32_t (*data_size)(uint32_t i)) {
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .group = 5, .term = 30, .prev_index = 100,
                         .prev_term = 7, .commit = 99, .entry_count = entry_count,
                         .entries = entries};
    for (uint32_t i = 0; i < entry_count; i++) {
        uint32_t size = data_size(i);
        entries[i] = (struct raft_entry){.index = 101 + i, .term = 7 + i / 3,
                                         .type = i % 5 == 4 ? RAFT_ENTRY_NOOP : RAFT_ENTRY_NORMAL,
                                         .data_size = size, .data = size ? big_data + i % 2 : NULL};
    }
    return m;
}

static uint32_t size_empty(uint32_t i) { return (void)i, 0; }
static uint32_t size_small(uint32_t i) { return i % 7 == 0 ? 0 : i * 13; }
static uint32_t size_max(uint32_t i) { return (void)i, RAFT_ENTRY_DATA_MAX; }

START_TEST(test_roundtrip_append_sizes) {
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    fill_big_data();
    uint32_t counts[] = {0, 1, 2, RAFT_MSG_ENTRIES_MAX - 1, RAFT_MSG_ENTRIES_MAX};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        struct raft_msg m = append_of(entries, counts[c], size_empty);
        check_roundtrip(&m);
        m = append_of(entries, counts[c], size_small);
        check_roundtrip(&m);
    }
    /* One entry of the largest size, and as many as one APPEND holds (7 of 64 KiB in 512 KiB;
     * test_append_size_limit fills it to the last byte). */
    struct raft_msg m = append_of(entries, 1, size_max);
    check_roundtrip(&m);
    m = append_of(entries, RAFT_MSG_BYTES_MAX / RAFT_ENTRY_DATA_MAX - 1, size_max);
    check_roundtrip(&m);
}
END_TEST

/* The largest APPEND the format allows: data filling exactly RAFT_MSG_BYTES_MAX. Returns it with
 * entry_count entries, the last one's data_size chosen to make the size exact. */
static struct raft_msg append_at_limit(struct raft_entry *entries) {
    uint32_t count = RAFT_MSG_BYTES_MAX / RAFT_ENTRY_DATA_MAX;
    struct raft_msg m = append_of(entries, count, size_max);
    entries[count - 1].data_size = 0;
    entries[count - 1].data = NULL;
    size_t rest = RAFT_MSG_BYTES_MAX - raft_msg_encoded_size(&m);
    /* data_size d costs d bytes and its varint grows from 1 to 3 bytes in this range. */
    entries[count - 1].data_size = (uint32_t)(rest - 2);
    entries[count - 1].data = big_data;
    ck_assert_uint_eq(raft_msg_encoded_size(&m), RAFT_MSG_BYTES_MAX);
    return m;
}

START_TEST(test_append_size_limit) {
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    fill_big_data();
    struct raft_msg m = append_at_limit(entries);
    check_roundtrip(&m);

    /* One byte more in the last entry's data: the decoder refuses it as too big, and still does so
     * when the data is cut short (data_size is the first field that breaks the limit). */
    size_t len;
    uint8_t *buf = encode_exact(&m, &len);
    uint32_t last_size = entries[m.entry_count - 1].data_size;
    ck_assert_uint_eq(rq_varint_size(last_size), 3);
    size_t prefix = len - last_size - 3;
    uint8_t *over = malloc(len + 1);
    ck_assert_ptr_nonnull(over);
    memcpy(over, buf, prefix);
    rq_varint_put(over + prefix, last_size + 1);
    memcpy(over + prefix + 3, big_data, last_size + 1);
    struct raft_msg got;
    ck_assert_int_eq(raft_msg_decode(over, len + 1, &got, entries), RQ_ETOOBIG);
    uint8_t *cut = dup_exact(over, prefix + 3);
    ck_assert_int_eq(raft_msg_decode(cut, prefix + 3, &got, entries), RQ_ETOOBIG);
    free(cut);
    free(over);
    free(buf);
}
END_TEST

/* ---- random messages, for batches and size checks -------------------------------------------- */

static const uint8_t random_data[RANDOM_DATA_MAX] = "the quick brown fox jumps over the lazy dog";

/* A value whose varint takes 1 to 10 bytes. */
static uint64_t random_value(struct rq_rng *rng) {
    uint64_t v = rq_rng_next(rng);
    return v >> rq_rng_below(rng, 64);
}

static void random_append(struct rq_rng *rng, struct raft_msg *m, struct raft_entry *entries) {
    m->prev_index = random_value(rng) >> 1;  /* leaves room for the entries' indexes */
    m->prev_term = random_value(rng) >> 2;
    m->commit = random_value(rng);
    m->entry_count = (uint32_t)rq_rng_below(rng, RANDOM_ENTRIES_MAX + 1);
    m->entries = entries;
    uint64_t term = m->prev_term;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        term += rq_rng_below(rng, 3);
        uint32_t size = (uint32_t)rq_rng_below(rng, RANDOM_DATA_MAX + 1);
        uint8_t type = (uint8_t)rq_rng_range(rng, 1, RAFT_ENTRY_TYPE_MAX);
        entries[i] = (struct raft_entry){.index = m->prev_index + 1 + i, .term = term,
                                         .type = type, .data_size = size,
                                         .data = size ? random_data : NULL};
    }
}

static void random_msg(struct rq_rng *rng, struct raft_msg *m, struct raft_entry *entries) {
    memset(m, 0, sizeof *m);
    m->type = (uint8_t)rq_rng_range(rng, 1, RAFT_MSG_TYPE_MAX);
    m->group = (uint32_t)rq_rng_below(rng, RAFT_GROUP_ID_LIMIT);
    m->term = random_value(rng);
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        m->last_index = random_value(rng);
        m->last_term = random_value(rng);
        if (m->type == RAFT_MSG_VOTE) m->transfer = (uint8_t)rq_rng_below(rng, 2);
        break;
    case RAFT_MSG_INSTALL_SNAPSHOT: {
        static const uint8_t bytes[RANDOM_DATA_MAX] = {1, 2, 3};
        m->snap_index = random_value(rng);
        m->snap_term = random_value(rng);
        m->offset = random_value(rng);
        m->chunk_last = (uint8_t)rq_rng_below(rng, 2);
        m->chunk_size = (uint32_t)rq_rng_below(rng, RANDOM_DATA_MAX + 1);
        m->chunk = m->chunk_size ? bytes : NULL;
        break;
    }
    case RAFT_MSG_SNAPSHOT_RESP:
        m->snap_index = random_value(rng);
        m->offset = random_value(rng);
        break;
    case RAFT_MSG_TIMEOUT_NOW: m->last_index = random_value(rng); break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: m->reject = (uint8_t)rq_rng_below(rng, 2); break;
    case RAFT_MSG_APPEND: random_append(rng, m, entries); break;
    case RAFT_MSG_APPEND_RESP:
        m->reject = (uint8_t)rq_rng_below(rng, 2);
        m->index = random_value(rng);
        m->hint_index = random_value(rng);
        m->hint_term = random_value(rng);
        break;
    case RAFT_MSG_HEARTBEAT:
        m->commit = random_value(rng);
        m->context = random_value(rng);
        break;
    case RAFT_MSG_READ_INDEX_RESP:
        m->context = random_value(rng);
        m->index = random_value(rng);
        break;
    default: m->context = random_value(rng); break;
    }
}

START_TEST(test_encoded_size_is_enough) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 7);
    struct raft_entry entries[RANDOM_ENTRIES_MAX];
    static uint8_t buf[4096];
    for (int n = 0; n < 20000; n++) {
        struct raft_msg m;
        random_msg(&rng, &m, entries);
        size_t pos = (size_t)n % 5;
        ck_assert_int_eq(raft_msg_encode(&m, buf, sizeof buf, &pos), 0);
        ck_assert_uint_ge(raft_msg_encoded_size(&m), pos - (size_t)n % 5);
    }
}
END_TEST

/* A full batch (RAFT_BATCH_MSGS_MAX mixed messages) from node 200 round-trips. The messages are
 * not stored: the same seed makes them again, once to size, once to encode and once to compare. */
START_TEST(test_batch_roundtrip_mixed) {
    enum { SEED = 2024, FROM = 200 };
    struct raft_entry entries[RANDOM_ENTRIES_MAX];
    static struct raft_entry got_entries[RAFT_MSG_ENTRIES_MAX];
    struct raft_msg m, got;
    struct rq_rng rng;
    rq_rng_seed(&rng, SEED);
    size_t body_len = 0;
    for (int n = 0; n < RAFT_BATCH_MSGS_MAX; n++) {
        random_msg(&rng, &m, entries);
        body_len += raft_msg_encoded_size(&m);
    }
    size_t cap = RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE + body_len;
    uint8_t *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t pos = raft_batch_header(buf, FROM, RAFT_BATCH_MSGS_MAX);
    rq_rng_seed(&rng, SEED);
    for (int n = 0; n < RAFT_BATCH_MSGS_MAX; n++) {
        random_msg(&rng, &m, entries);
        ck_assert_int_eq(raft_msg_encode(&m, buf, cap, &pos), 0);
    }
    uint8_t *exact = dup_exact(buf, pos);
    struct raft_batch_reader br;
    ck_assert_int_eq(raft_batch_open(&br, exact, pos), 0);
    ck_assert_uint_eq(br.count, RAFT_BATCH_MSGS_MAX);
    rq_rng_seed(&rng, SEED);
    int types_seen = 0;
    for (int n = 0; n < RAFT_BATCH_MSGS_MAX; n++) {
        random_msg(&rng, &m, entries);
        ck_assert_int_eq(raft_batch_next(&br, &got, got_entries), 1);
        check_msg_eq(&got, &m, FROM);
        types_seen |= 1 << got.type;
    }
    ck_assert_int_eq(raft_batch_next(&br, &got, got_entries), 0);
    ck_assert_int_eq(types_seen, 0x3FFE);  /* every type 1..13 */
    free(exact);
    free(buf);
}
END_TEST

/* ---- every truncation of a valid encoding is ETRUNC, alone and in a batch -------------------- */

static void check_every_truncation(const struct raft_msg *m) {
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    struct raft_msg got;
    size_t len;
    uint8_t *msg = encode_exact(m, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *prefix = dup_exact(msg, cut);
        ck_assert_int_eq(raft_msg_decode(prefix, cut, &got, entries), RQ_ETRUNC);
        free(prefix);
    }
    /* A batch of two copies: cut anywhere, the first copy comes back only if it is whole. */
    uint8_t batch[RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE + 2 * 128];
    ck_assert_uint_le(len, 128);
    size_t header_len = raft_batch_header(batch, 1, 2);
    memcpy(batch + header_len, msg, len);
    memcpy(batch + header_len + len, msg, len);
    for (size_t cut = 0; cut < header_len + 2 * len; cut++) {
        uint8_t *prefix = dup_exact(batch, cut);
        struct raft_batch_reader br;
        int err = raft_batch_open(&br, prefix, cut);
        size_t whole = 0;
        while (err == 0 && (err = raft_batch_next(&br, &got, entries)) == 1) {
            check_msg_eq(&got, m, 1);
            whole++;
            err = 0;
        }
        ck_assert_int_eq(err, RQ_ETRUNC);
        ck_assert_uint_eq(whole, cut >= header_len + len ? 1 : 0);
        free(prefix);
    }
    free(msg);
}

START_TEST(test_every_truncation) { check_every_truncation(&samples[_i]); }
END_TEST

START_TEST(test_every_truncation_large_append) {
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    fill_big_data();
    struct raft_msg m = append_of(entries, 2, size_max);
    size_t len;
    uint8_t *buf = encode_exact(&m, &len);
    struct raft_msg got;
    static struct raft_entry got_entries[RAFT_MSG_ENTRIES_MAX];
    for (size_t cut = 0; cut < len; cut++) {
        /* Every cut in the headers, and a spread of cuts through the data. */
        if (cut > 40 && cut < len - 40 && cut % 997 != 0) continue;
        uint8_t *prefix = dup_exact(buf, cut);
        ck_assert_int_eq(raft_msg_decode(prefix, cut, &got, got_entries), RQ_ETRUNC);
        free(prefix);
    }
    free(buf);
}
END_TEST

/* ---- decode errors, one row each ------------------------------------------------------------- */

/* A batch header from node 3 with count c (one byte). */
#define HDR(c) 'R', 'Q', 'F', 'B', 1, 3, 0, 0, 0, c
/* A valid VOTE: group 1, term 5, last_index 10, last_term 4, not a transfer. */
#define VOTE 3, 1, 5, 10, 4, 0
/* APPEND header: group 1, term 5, prev_index 10, prev_term 4, commit 9, then entry_count. */
#define APPEND 5, 1, 5, 10, 4, 9

struct bad {
    const char *name;
    int batch;          /* decoded as a batch (else as one message) */
    uint8_t bytes[48];
    size_t len;
    int want;           /* the result: an RQ_E* code, or 0 when the input is valid */
    uint32_t msgs_ok;   /* messages a batch returns before the result */
};

static const struct bad bads[] = {
    /* one message */
    {"empty", 0, {0}, 0, RQ_ETRUNC, 0},
    {"valid vote", 0, {VOTE}, 6, 0, 1},
    {"type 0", 0, {0, 1, 5, 10, 4}, 5, RQ_ECORRUPT, 0},
    {"type 14", 0, {14, 1, 5, 10, 4}, 5, RQ_ECORRUPT, 0},
    {"type 255", 0, {255, 1, 5, 10, 4}, 5, RQ_ECORRUPT, 0},
    {"group at the limit", 0, {3, 0x80, 0x80, 0x40, 5, 10, 4}, 7, RQ_ECORRUPT, 0},
    {"group of 64 bits", 0, {3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 5},
     12, RQ_ECORRUPT, 0},
    {"group below the limit", 0, {3, 0xFF, 0xFF, 0x3F, 5, 10, 4, 0}, 8, 0, 1},
    {"vote transfer flag 2", 0, {3, 1, 5, 10, 4, 2}, 6, RQ_ECORRUPT, 0},
    {"vote without its transfer flag", 0, {3, 1, 5, 10, 4}, 5, RQ_ETRUNC, 0},
    {"valid snapshot chunk", 0, {11, 1, 5, 9, 2, 0, 0, 2, 'a', 'b'}, 10, 0, 1},
    {"snapshot chunk_last 2", 0, {11, 1, 5, 9, 2, 0, 2, 0}, 8, RQ_ECORRUPT, 0},
    {"snapshot chunk over the maximum", 0, {11, 1, 5, 9, 2, 0, 0, 0x81, 0x80, 0x04}, 10,
     RQ_ETOOBIG, 0},
    {"snapshot chunk runs past the end", 0, {11, 1, 5, 9, 2, 0, 0, 3, 'a', 'b'}, 10, RQ_ETRUNC, 0},
    {"trailing byte after a timeout-now", 0, {13, 1, 5, 9, 0}, 5, RQ_ECORRUPT, 0},
    {"term varint over 64 bits", 0,
     {3, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 10, 4}, 15,
     RQ_ECORRUPT, 0},
    {"prevote-resp reject 2", 0, {2, 1, 5, 2}, 4, RQ_ECORRUPT, 0},
    {"vote-resp reject 255", 0, {4, 1, 5, 255}, 4, RQ_ECORRUPT, 0},
    {"vote-resp reject 1", 0, {4, 1, 5, 1}, 4, 0, 1},
    {"append-resp reject 2", 0, {6, 1, 5, 2, 10, 0, 0}, 7, RQ_ECORRUPT, 0},
    {"entry count 65", 0, {APPEND, 65}, 7, RQ_ETOOBIG, 0},
    {"entry count of 64 bits", 0, {APPEND, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1},
     16, RQ_ETOOBIG, 0},
    {"entry count 64, no entries", 0, {APPEND, 64}, 7, RQ_ETRUNC, 0},
    {"valid append", 0, {APPEND, 2, 11, 4, 1, 1, 'x', 12, 5, 2, 0}, 16, 0, 1},
    {"first entry not prev_index + 1", 0, {APPEND, 1, 12, 4, 1, 0}, 11, RQ_ECORRUPT, 0},
    {"first entry at prev_index", 0, {APPEND, 1, 10, 4, 1, 0}, 11, RQ_ECORRUPT, 0},
    {"entry index repeats", 0, {APPEND, 2, 11, 4, 1, 0, 11, 4, 1, 0}, 15, RQ_ECORRUPT, 0},
    {"entry index skips", 0, {APPEND, 2, 11, 4, 1, 0, 13, 4, 1, 0}, 15, RQ_ECORRUPT, 0},
    {"entry index would pass 2^64", 0,
     {5, 1, 5, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 4, 9, 1, 0, 4, 1, 0}, 20,
     RQ_ECORRUPT, 0},
    {"entry term below prev_term", 0, {APPEND, 1, 11, 3, 1, 0}, 11, RQ_ECORRUPT, 0},
    {"entry terms decrease", 0, {APPEND, 2, 11, 5, 1, 0, 12, 4, 1, 0}, 15, RQ_ECORRUPT, 0},
    {"entry type 0", 0, {APPEND, 1, 11, 4, 0, 0}, 11, RQ_ECORRUPT, 0},
    {"entry type 4", 0, {APPEND, 1, 11, 4, 4, 0}, 11, RQ_ECORRUPT, 0},
    {"data_size over the maximum", 0, {APPEND, 1, 11, 4, 1, 0x81, 0x80, 0x04}, 13, RQ_ETOOBIG, 0},
    {"data_size at the maximum, no data", 0, {APPEND, 1, 11, 4, 1, 0x80, 0x80, 0x04}, 13, RQ_ETRUNC,
     0},
    {"data runs past the end", 0, {APPEND, 1, 11, 4, 1, 3, 'a', 'b'}, 13, RQ_ETRUNC, 0},
    {"trailing byte after a vote", 0, {VOTE, 0}, 7, RQ_ECORRUPT, 0},
    {"trailing byte after a heartbeat", 0, {7, 1, 5, 9, 42, 0}, 6, RQ_ECORRUPT, 0},
    {"trailing byte after an append", 0, {APPEND, 1, 11, 4, 1, 1, 'x', 'y'}, 13, RQ_ECORRUPT, 0},
    /* batches */
    {"batch: empty", 1, {0}, 0, RQ_ETRUNC, 0},
    {"batch: valid", 1, {HDR(2), VOTE, 8, 2, 9, 42}, 20, 0, 2},
    {"batch: bad magic", 1, {'R', 'Q', 'F', 'C', 1, 3, 0, 0, 0, 1, VOTE}, 16, RQ_ECORRUPT, 0},
    {"batch: magic big-endian", 1, {'B', 'F', 'Q', 'R', 1, 3, 0, 0, 0, 1, VOTE}, 16, RQ_ECORRUPT,
     0},
    {"batch: version 0", 1, {'R', 'Q', 'F', 'B', 0, 3, 0, 0, 0, 1, VOTE}, 16, RQ_ECORRUPT, 0},
    {"batch: version 2", 1, {'R', 'Q', 'F', 'B', 2, 3, 0, 0, 0, 1, VOTE}, 16, RQ_ECORRUPT, 0},
    {"batch: from 0", 1, {'R', 'Q', 'F', 'B', 1, 0, 0, 0, 0, 1, VOTE}, 16, RQ_ECORRUPT, 0},
    {"batch: from 256", 1, {'R', 'Q', 'F', 'B', 1, 0, 1, 0, 0, 1, VOTE}, 16, RQ_ECORRUPT, 0},
    {"batch: from 2^24 + 3", 1, {'R', 'Q', 'F', 'B', 1, 3, 0, 0, 1, 1, VOTE}, 16, RQ_ECORRUPT, 0},
    {"batch: from 255", 1, {'R', 'Q', 'F', 'B', 1, 255, 0, 0, 0, 1, VOTE}, 16, 0, 1},
    {"batch: header without count", 1, {'R', 'Q', 'F', 'B', 1, 3, 0, 0, 0}, 9, RQ_ETRUNC, 0},
    {"batch: count 0", 1, {HDR(0)}, 10, RQ_ECORRUPT, 0},
    {"batch: count 0 with a message", 1, {HDR(0), VOTE}, 16, RQ_ECORRUPT, 0},
    {"batch: count 4097", 1, {'R', 'Q', 'F', 'B', 1, 3, 0, 0, 0, 0x81, 0x20, VOTE}, 17, RQ_ECORRUPT,
     0},
    {"batch: count 2^64 - 1", 1, {'R', 'Q', 'F', 'B', 1, 3, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
     0xFF, 0xFF, 0xFF, 0xFF, 0x01, VOTE}, 25, RQ_ECORRUPT, 0},
    {"batch: count 4096, one message", 1, {'R', 'Q', 'F', 'B', 1, 3, 0, 0, 0, 0x80, 0x20, VOTE}, 17,
     RQ_ETRUNC, 1},
    {"batch: count 2, one message", 1, {HDR(2), VOTE}, 16, RQ_ETRUNC, 1},
    {"batch: count 1, two messages", 1, {HDR(1), VOTE, VOTE}, 22, RQ_ECORRUPT, 1},
    {"batch: trailing byte", 1, {HDR(1), VOTE, 0}, 17, RQ_ECORRUPT, 1},
    {"batch: second message type 14", 1, {HDR(2), VOTE, 14, 1, 5, 10, 4}, 21, RQ_ECORRUPT, 1},
    {"batch: second message entries skip", 1, {HDR(2), VOTE, APPEND, 2, 11, 4, 1, 0, 13, 4, 1, 0},
     31, RQ_ECORRUPT, 1},
    {"batch: second message too many entries", 1, {HDR(2), VOTE, APPEND, 65}, 23, RQ_ETOOBIG, 1},
};
enum { BADS = sizeof bads / sizeof bads[0] };

START_TEST(test_decode_table) {
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    const struct bad *b = &bads[_i];
    uint8_t *buf = dup_exact(b->bytes, b->len);
    struct raft_msg m;
    int got;
    uint32_t msgs = 0;
    if (!b->batch) {
        got = raft_msg_decode(buf, b->len, &m, entries);
        msgs = got == 0;
    } else {
        struct raft_batch_reader br;
        got = raft_batch_open(&br, buf, b->len);
        while (got == 0 && (got = raft_batch_next(&br, &m, entries)) == 1) {
            ck_assert_uint_eq(m.from, br.from);
            msgs++;
            got = 0;
        }
    }
    ck_assert_msg(got == b->want, "%s: got %d (%s), want %d (%s)", b->name, got, rq_strerror(got),
                  b->want, rq_strerror(b->want));
    ck_assert_msg(msgs == b->msgs_ok, "%s: %u messages, want %u", b->name, msgs, b->msgs_ok);
    free(buf);
}
END_TEST

/* ---- encoding into a buffer that is too small ------------------------------------------------ */

enum { JUNK = 0xA5, POS0 = 5 };

static void check_too_small(const struct raft_msg *m) {
    size_t size = raft_msg_encoded_size(m);
    for (size_t room = 0; room <= size; room++) {
        size_t cap = POS0 + room;
        uint8_t *buf = malloc(cap);  /* exact: ASan sees a write past cap */
        ck_assert_ptr_nonnull(buf);
        memset(buf, JUNK, cap);
        size_t pos = POS0;
        int err = raft_msg_encode(m, buf, cap, &pos);
        if (room < size) {
            ck_assert_int_eq(err, RQ_ETOOBIG);
            ck_assert_uint_eq(pos, POS0);
            for (size_t i = 0; i < cap; i++) ck_assert_uint_eq(buf[i], JUNK);
        } else {
            ck_assert_int_eq(err, 0);
            ck_assert_uint_eq(pos, cap);
            for (size_t i = 0; i < POS0; i++) ck_assert_uint_eq(buf[i], JUNK);
        }
        free(buf);
    }
}

START_TEST(test_encode_too_small) { check_too_small(&samples[_i]); }
END_TEST

START_TEST(test_encode_too_small_null) {
    size_t pos = 0;
    ck_assert_int_eq(raft_msg_encode(&samples[0], NULL, 0, &pos), RQ_ETOOBIG);
    ck_assert_uint_eq(pos, 0);
}
END_TEST

/* ---- names ----------------------------------------------------------------------------------- */

START_TEST(test_type_names) {
    static const char *const names[] = {"unknown", "prevote", "prevote-resp", "vote", "vote-resp",
                                        "append", "append-resp", "heartbeat", "heartbeat-resp",
                                        "read-index", "read-index-resp", "install-snapshot",
                                        "snapshot-resp", "timeout-now"};
    for (uint8_t t = 0; t <= RAFT_MSG_TYPE_MAX; t++) {
        ck_assert_str_eq(raft_msg_type_name(t), names[t]);
    }
    ck_assert_str_eq(raft_msg_type_name(RAFT_MSG_TYPE_MAX + 1), "unknown");
    ck_assert_str_eq(raft_msg_type_name(255), "unknown");
}
END_TEST

/* ---- malformed outgoing messages abort (they are our bugs, not input) ------------------------ */

static struct raft_entry bad_entries[RAFT_MSG_ENTRIES_MAX + 1];

/* Case k: a message encode must refuse, or a batch header it must refuse (k >= 100). */
static void encode_malformed(int k) {
    struct raft_msg m = append_of(bad_entries, 3, size_small);
    switch (k) {
    case 0: m.type = 0; break;
    case 1: m.type = RAFT_MSG_TYPE_MAX + 1; break;
    case 2: m.group = RAFT_GROUP_ID_LIMIT; break;
    case 3: m.type = RAFT_MSG_VOTE_RESP, m.reject = 2; break;
    case 4: m.type = RAFT_MSG_APPEND_RESP, m.reject = 2; break;
    case 5: m = append_of(bad_entries, RAFT_MSG_ENTRIES_MAX + 1, size_empty); break;
    case 6: bad_entries[0].index = 100; break;
    case 7: bad_entries[2].index = 104; break;
    case 8: bad_entries[2].term = bad_entries[1].term - 1; break;
    case 9: m.prev_term = bad_entries[0].term + 1; break;
    case 10: bad_entries[1].type = 0; break;
    case 11: bad_entries[1].type = RAFT_ENTRY_TYPE_MAX + 1; break;
    case 12:
        bad_entries[1].data_size = RAFT_ENTRY_DATA_MAX + 1;
        bad_entries[1].data = big_data;
        break;
    case 13: bad_entries[1].data = NULL; break;
    case 14: m = append_of(bad_entries, RAFT_MSG_BYTES_MAX / RAFT_ENTRY_DATA_MAX, size_max); break;
    case 15: m.prev_index = UINT64_MAX, bad_entries[0].index = 0, m.entry_count = 1; break;
    case 16: m = (struct raft_msg){.type = RAFT_MSG_VOTE, .transfer = 2}; break;
    case 17: m = (struct raft_msg){.type = RAFT_MSG_INSTALL_SNAPSHOT, .chunk_last = 2}; break;
    case 18:
        m = (struct raft_msg){.type = RAFT_MSG_INSTALL_SNAPSHOT, .chunk = big_data,
                              .chunk_size = RAFT_SNAPSHOT_CHUNK_MAX + 1};
        break;
    case 19: m = (struct raft_msg){.type = RAFT_MSG_INSTALL_SNAPSHOT, .chunk_size = 1}; break;
    default: ck_abort_msg("no case %d", k);
    }
    uint8_t buf[64];
    size_t pos = 0;
    raft_msg_encode(&m, buf, sizeof buf, &pos);  /* must abort before it could return ETOOBIG */
}
enum { MALFORMED_CASES = 20 };

START_TEST(test_encode_malformed_aborts) {
    encode_malformed(_i);
    ck_abort_msg("case %d was encoded", _i);
}
END_TEST

START_TEST(test_batch_header_malformed_aborts) {
    uint8_t buf[RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE];
    static const uint32_t args[][2] = {{0, 1}, {RQ_NODE_ID_MAX + 1, 1}, {1, 0},
                                       {1, RAFT_BATCH_MSGS_MAX + 1}};
    raft_batch_header(buf, args[_i][0], args[_i][1]);
    ck_abort_msg("header %d was written", _i);
}
END_TEST

/* ---- suites ---------------------------------------------------------------------------------- */

static TCase *tcase_new(const char *name) {
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, TEST_TIMEOUT_S);
    return tc;
}

static Suite *encoding_suite(void) {
    Suite *s = suite_create("raft_msg encoding");
    TCase *tc = tcase_new("known");
    tcase_add_loop_test(tc, test_known_encodings, 0, KNOWNS);
    tcase_add_test(tc, test_batch_header_bytes);
    tcase_add_test(tc, test_type_names);
    suite_add_tcase(s, tc);
    tc = tcase_new("roundtrip");
    tcase_add_loop_test(tc, test_roundtrip_samples, 0, SAMPLES);
    tcase_add_test(tc, test_roundtrip_every_type);
    tcase_add_test(tc, test_roundtrip_append_sizes);
    tcase_add_test(tc, test_append_size_limit);
    tcase_add_test(tc, test_encoded_size_is_enough);
    tcase_add_test(tc, test_batch_roundtrip_mixed);
    suite_add_tcase(s, tc);
    tc = tcase_new("too small");
    tcase_add_loop_test(tc, test_encode_too_small, 0, SAMPLES);
    tcase_add_test(tc, test_encode_too_small_null);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *decoding_suite(void) {
    Suite *s = suite_create("raft_msg decoding");
    TCase *tc = tcase_new("errors");
    tcase_add_loop_test(tc, test_decode_table, 0, BADS);
    suite_add_tcase(s, tc);
    tc = tcase_new("truncation");
    tcase_add_loop_test(tc, test_every_truncation, 0, SAMPLES);
    tcase_add_test(tc, test_every_truncation_large_append);
    suite_add_tcase(s, tc);
    return s;
}

/* The aborting tests need Check's fork mode (the default; CK_FORK=no turns it off). */
static Suite *assert_suite(int forking) {
    Suite *s = suite_create("raft_msg asserts");
    TCase *tc = tcase_new("malformed");
    if (forking) {
        fill_big_data();
        tcase_add_loop_test_raise_signal(tc, test_encode_malformed_aborts, SIGABRT, 0,
                                         MALFORMED_CASES);
        tcase_add_loop_test_raise_signal(tc, test_batch_header_malformed_aborts, SIGABRT, 0, 4);
    }
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(encoding_suite());
    srunner_add_suite(sr, decoding_suite());
    int forking = srunner_fork_status(sr) == CK_FORK;
    if (!forking) fputs("test_raft_msg: CK_FORK=no, skipping the tests that abort\n", stderr);
    srunner_add_suite(sr, assert_suite(forking));
    return run_suites(sr);
}
