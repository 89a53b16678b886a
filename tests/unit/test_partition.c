/* The partition state machine (src/broker/partition.c): the entry format byte for byte; dense
 * offsets; an idempotent producer's duplicates answered with their original offsets for each of the
 * last PARTITION_BATCHES_KEPT batches, gaps and overlaps refused without consuming offsets, a new
 * producer taken at any sequence, producer 0 never deduplicated; least-recently-used eviction at
 * the table's bound; malformed entries (every truncation, unknown kinds, counts that do not match
 * the records, non-minimal varints, random bytes) applied as counted no-ops; the image round trip,
 * every truncation and every flipped byte of an image refused, a table of well-checksummed but
 * structurally wrong images refused; replicas (one restored from a snapshot midway) ending
 * byte-identical after a seeded random history; and the leader's preview on its tip agreeing with
 * the later apply, across log truncations; SHARED entries (group commit) byte for byte, every
 * malformed one a single counted no-op, their batches applied in order each with its own result
 * (two producers, a duplicate, an out-of-order batch, a mismatch) exactly as the tip built part by
 * part foresaw, and random histories of them deterministic across replicas and images. Entries
 * and images handed to decoders are heap blocks of
 * exactly their size, so AddressSanitizer catches any read past the end. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/rng.h"
#include "broker/partition.h"
#include "node/host.h"
#include "proto/msg.h"
#include "tests/unit/suite_main.h"

enum { ENTRY_CAP = 1024, RECORDS_PER_ENTRY_MAX = 8 };

_Static_assert((size_t)PARTITION_IMAGE_MAX <= (size_t)HOST_SNAPSHOT_DATA_MAX,
               "the largest partition image fits a host snapshot");

static struct partition_sm *sm_new(void) {
    struct partition_sm *sm = malloc(sizeof *sm);
    ck_assert_ptr_nonnull(sm);
    partition_sm_init(sm);
    return sm;
}

static uint8_t *dup_exact(const void *src, size_t len) {
    uint8_t *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    if (len) memcpy(p, src, len);
    return p;
}

/* count records encoded as a produce request carries them, decoded into *out (pointing into
 * req). */
static void make_records(uint8_t *req, size_t cap, uint64_t pid, uint64_t seq, uint32_t count,
                         uint64_t tag, struct proto_records *out) {
    ck_assert_uint_ge(count, 1);
    ck_assert_uint_le(count, RECORDS_PER_ENTRY_MAX);
    char values[RECORDS_PER_ENTRY_MAX][32];
    struct proto_header header = {{(const uint8_t *)"h", 1}, {(const uint8_t *)"x", 1}};
    struct proto_record_in recs[RECORDS_PER_ENTRY_MAX];
    for (uint32_t i = 0; i < count; i++) {
        int n = snprintf(values[i], sizeof values[i], "v%llu-%u", (unsigned long long)tag, i);
        recs[i] = (struct proto_record_in){.timestamp = tag * 10 + i,
                                           .key = {(const uint8_t *)"k", 1},
                                           .value = {(const uint8_t *)values[i], (uint32_t)n},
                                           .header_count = i % 2,
                                           .headers = &header};
    }
    struct proto_produce_req m = {.topic = {(const uint8_t *)"t", 1}, .acks = PROTO_ACKS_ALL,
                                  .producer_id = pid, .base_sequence = seq,
                                  .records = {.count = count}};
    size_t n = proto_encode_produce_req(req, cap, &m, recs);
    ck_assert_uint_gt(n, 0);
    struct proto_msg msg;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, req, n, &msg), 0);
    *out = msg.u.produce_req.records;
}

/* An entry whose leader assigned it base offset `at`. */
static size_t make_entry_at(uint8_t *buf, size_t cap, uint64_t at, uint64_t pid, uint64_t seq,
                            uint32_t count, uint64_t tag) {
    uint8_t req[ENTRY_CAP];
    struct proto_records rs;
    make_records(req, sizeof req, pid, seq, count, tag, &rs);
    size_t n = partition_entry_encode(buf, cap, at, pid, seq, tag, &rs);
    ck_assert_uint_gt(n, 0);
    return n;
}

/* Results compared field by field (a struct copy need not copy padding). */
static void assert_same_result(const struct partition_apply_result *a,
                               const struct partition_apply_result *b) {
    ck_assert_int_eq(a->outcome, b->outcome);
    ck_assert_int_eq(a->error, b->error);
    ck_assert_uint_eq(a->base_offset, b->base_offset);
    ck_assert_uint_eq(a->record_count, b->record_count);
    ck_assert_uint_eq(a->producer_id, b->producer_id);
    ck_assert_uint_eq(a->evicted_producer, b->evicted_producer);
}

/* Applies a batch entry at raft_index (copied to an exact-size heap block). */
static struct partition_apply_result apply_batch(struct partition_sm *sm, uint64_t raft_index,
                                                 uint64_t pid, uint64_t seq, uint32_t count) {
    uint8_t buf[ENTRY_CAP];
    size_t n = make_entry_at(buf, sizeof buf, sm->next_offset, pid, seq, count, raft_index);
    uint8_t *exact = dup_exact(buf, n);
    struct partition_apply_result preview, res;
    partition_sm_preview(sm, exact, n, &preview);
    partition_sm_apply(sm, raft_index, exact, n, &res);
    assert_same_result(&preview, &res);
    free(exact);
    return res;
}

static struct partition_apply_result apply_bytes(struct partition_sm *sm, uint64_t raft_index,
                                                 const uint8_t *data, size_t size) {
    uint8_t *exact = dup_exact(data, size);
    struct partition_apply_result res;
    partition_sm_apply(sm, raft_index, size ? exact : NULL, size, &res);
    free(exact);
    return res;
}

static struct partition_apply_result apply_retain(struct partition_sm *sm, uint64_t raft_index,
                                                  uint64_t log_start) {
    uint8_t buf[PARTITION_RETAIN_ENTRY_MAX];
    size_t n = partition_retain_encode(buf, sizeof buf, log_start);
    struct partition_apply_result preview;
    partition_sm_preview(sm, buf, n, &preview);
    struct partition_apply_result res = apply_bytes(sm, raft_index, buf, n);
    assert_same_result(&preview, &res);
    return res;
}

static size_t image_of(const struct partition_sm *sm, uint8_t *buf) {
    size_t n = partition_sm_image(sm, buf, PARTITION_IMAGE_MAX);
    ck_assert_uint_gt(n, 0);
    return n;
}

static void assert_same_image(const struct partition_sm *a, const struct partition_sm *b) {
    uint8_t *ia = malloc(PARTITION_IMAGE_MAX), *ib = malloc(PARTITION_IMAGE_MAX);
    ck_assert_ptr_nonnull(ia);
    ck_assert_ptr_nonnull(ib);
    size_t na = image_of(a, ia), nb = image_of(b, ib);
    ck_assert_uint_eq(na, nb);
    ck_assert_int_eq(memcmp(ia, ib, na), 0);
    free(ia);
    free(ib);
}

/* ---- the entry format ------------------------------------------------------------------------ */

START_TEST(entry_format_byte_for_byte) {
    uint8_t req[ENTRY_CAP], buf[ENTRY_CAP];
    struct proto_records rs;
    make_records(req, sizeof req, 300, 5, 2, 7, &rs);
    size_t n = partition_entry_encode(buf, sizeof buf, 9, 300, 5, 7, &rs);
    static const uint8_t head[] = {PARTITION_ENTRY_BATCH, 9, 0xac, 0x02, 5, 2, 7};
    ck_assert_uint_eq(n, sizeof head + rs.size);
    ck_assert_mem_eq(buf, head, sizeof head);
    ck_assert_mem_eq(buf + sizeof head, rs.data, rs.size);   /* the records, verbatim */
    uint8_t *exact = dup_exact(buf, n);
    struct partition_entry e;
    ck_assert_int_eq(partition_entry_decode(exact, n, &e), 0);
    ck_assert_uint_eq(e.kind, PARTITION_ENTRY_BATCH);
    ck_assert_uint_eq(e.base_offset, 9);
    ck_assert_uint_eq(e.producer_id, 300);
    ck_assert_uint_eq(e.base_sequence, 5);
    ck_assert_uint_eq(e.timestamp_ns, 7);
    ck_assert_uint_eq(e.records.count, 2);
    ck_assert_ptr_eq(e.records.data, exact + sizeof head);
    ck_assert_uint_eq(e.records.size, rs.size);
    ck_assert_uint_eq(e.records.with_offsets, 0);
    size_t cursor = 0;
    struct proto_record r;
    ck_assert_int_eq(proto_record_next(&e.records, &cursor, &r), 1);
    ck_assert_mem_eq(r.value.data, "v7-0", 4);
    ck_assert_int_eq(proto_record_next(&e.records, &cursor, &r), 1);
    ck_assert_uint_eq(r.header_count, 1);
    ck_assert_int_eq(proto_record_next(&e.records, &cursor, &r), 0);
    /* Too small a buffer: nothing, never a partial entry. */
    for (size_t cap = 0; cap < n; cap++) {
        ck_assert_uint_eq(partition_entry_encode(buf, cap, 9, 300, 5, 7, &rs), 0);
    }
    free(exact);
}
END_TEST

/* ---- offsets and idempotence ----------------------------------------------------------------- */

START_TEST(offsets_are_dense) {
    static const struct { uint64_t pid, seq; uint32_t count; uint64_t base_offset; } rows[] = {
        {0, 0, 1, 0}, {0, 0, 3, 1}, {9, 0, 7, 4}, {0, 0, 2, 11}, {9, 7, 1, 13}, {4, 100, 5, 14},
        {0, 9, 1, 19},
    };
    struct partition_sm *sm = sm_new();
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct partition_apply_result res = apply_batch(sm, i + 1, rows[i].pid, rows[i].seq,
                                                        rows[i].count);
        ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
        ck_assert_int_eq(res.error, 0);
        ck_assert_uint_eq(res.base_offset, rows[i].base_offset);
        ck_assert_uint_eq(res.record_count, rows[i].count);
        ck_assert_uint_eq(sm->next_offset, rows[i].base_offset + rows[i].count);
    }
    ck_assert_uint_eq(sm->stats.batches, 7);
    ck_assert_uint_eq(sm->stats.records, 20);
    ck_assert_uint_eq(sm->applied_index, 7);
    free(sm);
}
END_TEST

START_TEST(duplicates_of_kept_batches_get_original_offsets) {
    static const uint32_t counts[] = {2, 1, 3, 1, 4, 2, 1};
    enum { BATCHES = sizeof counts / sizeof counts[0] };
    _Static_assert(BATCHES == PARTITION_BATCHES_KEPT + 2, "two batches older than those kept");
    struct partition_sm *sm = sm_new();
    uint64_t index = 0, seq = 10, base_seq[BATCHES], offsets[BATCHES];
    for (int i = 0; i < BATCHES; i++) {
        apply_batch(sm, ++index, 0, 0, 1);   /* someone else's records between */
        struct partition_apply_result res = apply_batch(sm, ++index, 5, seq, counts[i]);
        ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
        base_seq[i] = seq;
        offsets[i] = res.base_offset;
        seq += counts[i];
    }
    uint64_t next = sm->next_offset;
    for (int i = BATCHES - 1; i >= 0; i--) {
        struct partition_apply_result res = apply_batch(sm, ++index, 5, base_seq[i], counts[i]);
        if (i >= BATCHES - PARTITION_BATCHES_KEPT) {
            ck_assert_int_eq(res.outcome, PARTITION_DUPLICATE);
            ck_assert_int_eq(res.error, 0);
            ck_assert_uint_eq(res.base_offset, offsets[i]);
        } else {   /* older than the kept batches: no longer known, refused */
            ck_assert_int_eq(res.outcome, PARTITION_OUT_OF_ORDER);
            ck_assert_int_eq(res.error, RQ_ESEQUENCE);
        }
        ck_assert_uint_eq(sm->next_offset, next);
    }
    ck_assert_uint_eq(sm->stats.duplicates, PARTITION_BATCHES_KEPT);
    ck_assert_uint_eq(sm->stats.out_of_order, 2);
    struct partition_apply_result res = apply_batch(sm, ++index, 5, seq, 1);
    ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
    ck_assert_uint_eq(res.base_offset, next);
    free(sm);
}
END_TEST

/* After batches [0..4] at offset 0 and [5..9] at offset 5 of producer 5, each row's batch. */
START_TEST(sequences_out_of_order_take_no_offsets) {
    static const struct {
        uint64_t seq;
        uint32_t count;
        int outcome;
        uint64_t base_offset;
    } rows[] = {
        {11, 1, PARTITION_OUT_OF_ORDER, 0},   /* a gap */
        {12, 3, PARTITION_OUT_OF_ORDER, 0},
        {9, 2, PARTITION_OUT_OF_ORDER, 0},    /* overlaps the last batch */
        {5, 3, PARTITION_OUT_OF_ORDER, 0},    /* a part of a kept batch */
        {4, 2, PARTITION_OUT_OF_ORDER, 0},    /* straddles two kept batches */
        {0, 1, PARTITION_OUT_OF_ORDER, 0},
        {UINT64_MAX, 1, PARTITION_OUT_OF_ORDER, 0},
        {UINT64_MAX - 1, 3, PARTITION_OUT_OF_ORDER, 0},   /* past 2^64 - 1 */
        {0, 5, PARTITION_DUPLICATE, 0},
        {5, 5, PARTITION_DUPLICATE, 5},
        {10, 1, PARTITION_APPENDED, 10},
        {10, 4, PARTITION_APPENDED, 10},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct partition_sm *sm = sm_new();
        apply_batch(sm, 1, 5, 0, 5);
        apply_batch(sm, 2, 5, 5, 5);
        struct partition_producer before;
        memcpy(&before, partition_sm_producer(sm, 5), sizeof before);
        struct partition_apply_result res = apply_batch(sm, 3, 5, rows[i].seq, rows[i].count);
        ck_assert_int_eq(res.outcome, rows[i].outcome);
        if (rows[i].outcome == PARTITION_OUT_OF_ORDER) {
            ck_assert_int_eq(res.error, RQ_ESEQUENCE);
            ck_assert_uint_eq(sm->next_offset, 10);
            ck_assert_mem_eq(partition_sm_producer(sm, 5), &before, sizeof before);
            ck_assert_uint_eq(sm->stats.out_of_order, 1);
        } else {
            ck_assert_int_eq(res.error, 0);
            ck_assert_uint_eq(res.base_offset, rows[i].base_offset);
            uint64_t next = rows[i].outcome == PARTITION_APPENDED ? 10 + rows[i].count : 10;
            ck_assert_uint_eq(sm->next_offset, next);
        }
        free(sm);
    }
}
END_TEST

START_TEST(new_producer_at_any_sequence) {
    static const struct { uint64_t seq; uint32_t count; int then_next; } rows[] = {
        {0, 1, 1}, {1, 2, 1}, {41, 3, 1}, {UINT64_C(1) << 40, 1, 1},
        {UINT64_MAX - 2, 3, 0},   /* ends at 2^64 - 1: nothing can follow */
        {UINT64_MAX, 1, 0},
    };
    struct partition_sm *sm = sm_new();
    uint64_t index = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t pid = 100 + i, offset = sm->next_offset;
        struct partition_apply_result res =
            apply_batch(sm, ++index, pid, rows[i].seq, rows[i].count);
        ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
        ck_assert_uint_eq(res.base_offset, offset);
        ck_assert_uint_eq(res.producer_id, pid);
        const struct partition_producer *p = partition_sm_producer(sm, pid);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq(p->batch_count, 1);
        ck_assert_uint_eq(p->batches[0].last_sequence, rows[i].seq + rows[i].count - 1);
        res = apply_batch(sm, ++index, pid, rows[i].seq + rows[i].count, 1);
        int want = rows[i].then_next ? PARTITION_APPENDED : PARTITION_OUT_OF_ORDER;
        ck_assert_int_eq(res.outcome, want);
    }
    ck_assert_uint_eq(sm->producer_count, sizeof rows / sizeof rows[0]);
    free(sm);
}
END_TEST

/* A batch that would be appended at an offset other than the one its leader assigned is refused
 * whole (its leader foresaw another log); a duplicate is still recognised whatever it says. */
START_TEST(a_batch_at_another_offset_than_assigned_is_refused) {
    struct partition_sm *sm = sm_new();
    ck_assert_int_eq(apply_batch(sm, 1, 5, 0, 2).outcome, PARTITION_APPENDED);   /* offsets 0, 1 */
    uint8_t buf[ENTRY_CAP];
    for (uint64_t at = 0; at < 4; at++) {
        if (at == 2) continue;
        size_t n = make_entry_at(buf, sizeof buf, at, 5, 2, 1, 9);
        struct partition_apply_result res = apply_bytes(sm, 2 + at, buf, n);
        ck_assert_int_eq(res.outcome, PARTITION_MISMATCH);
        ck_assert_int_eq(res.error, RQ_ENOTLEADER);
        ck_assert_uint_eq(res.base_offset, 0);
        ck_assert_uint_eq(sm->next_offset, 2);
    }
    /* One its leader foresaw as taking no offsets, that would take some. */
    size_t n = make_entry_at(buf, sizeof buf, PARTITION_NO_OFFSET, 5, 2, 1, 9);
    ck_assert_int_eq(apply_bytes(sm, 6, buf, n).outcome, PARTITION_MISMATCH);
    ck_assert_uint_eq(sm->stats.mismatched, 4);
    n = make_entry_at(buf, sizeof buf, PARTITION_NO_OFFSET, 5, 0, 2, 1);   /* the first again */
    struct partition_apply_result res = apply_bytes(sm, 10, buf, n);
    ck_assert_int_eq(res.outcome, PARTITION_DUPLICATE);
    ck_assert_uint_eq(res.base_offset, 0);
    n = make_entry_at(buf, sizeof buf, 2, 5, 2, 1, 9);
    ck_assert_int_eq(apply_bytes(sm, 11, buf, n).outcome, PARTITION_APPENDED);
    free(sm);
}
END_TEST

START_TEST(producer_zero_is_never_deduplicated) {
    struct partition_sm *sm = sm_new();
    uint8_t buf[ENTRY_CAP];
    for (uint64_t i = 0; i < 4; i++) {   /* the same batch again, each time a new append */
        size_t n = make_entry_at(buf, sizeof buf, 2 * i, 0, 3, 2, 1);
        struct partition_apply_result res = apply_bytes(sm, i + 1, buf, n);
        ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
        ck_assert_uint_eq(res.base_offset, 2 * i);
    }
    ck_assert_uint_eq(sm->producer_count, 0);
    ck_assert_uint_eq(sm->stats.duplicates, 0);
    free(sm);
}
END_TEST

/* The table full of producers 1..MAX (producer i stamped at index i); then producer 1 appends and
 * producer 2 repeats a batch, so 3 is the least recently used. */
static struct partition_sm *full_table(uint64_t *index) {
    struct partition_sm *sm = sm_new();
    for (uint64_t id = 1; id <= PARTITION_PRODUCERS_MAX; id++) apply_batch(sm, id, id, 0, 1);
    *index = PARTITION_PRODUCERS_MAX;
    ck_assert_uint_eq(sm->producer_count, PARTITION_PRODUCERS_MAX);
    ck_assert_int_eq(apply_batch(sm, ++*index, 1, 1, 1).outcome, PARTITION_APPENDED);
    ck_assert_int_eq(apply_batch(sm, ++*index, 2, 0, 1).outcome, PARTITION_DUPLICATE);
    ck_assert_uint_eq(sm->stats.evictions, 0);
    return sm;
}

START_TEST(eviction_is_least_recently_used) {
    uint64_t index;
    struct partition_sm *sm = full_table(&index);
    struct partition_apply_result res = apply_batch(sm, ++index, 5000, 7, 1);
    ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
    ck_assert_uint_eq(res.evicted_producer, 3);
    ck_assert_uint_eq(sm->stats.evictions, 1);
    ck_assert_uint_eq(sm->producer_count, PARTITION_PRODUCERS_MAX);
    ck_assert_ptr_null(partition_sm_producer(sm, 3));
    ck_assert_ptr_nonnull(partition_sm_producer(sm, 1));
    ck_assert_ptr_nonnull(partition_sm_producer(sm, 2));
    ck_assert_ptr_nonnull(partition_sm_producer(sm, 5000));
    for (uint32_t i = 1; i < sm->producer_count; i++) {
        ck_assert_uint_lt(sm->producers[i - 1].id, sm->producers[i].id);
    }
    /* Producer 3 is forgotten: its retry is taken as a new producer's batch (documented), and
     * evicts the next least recently used, 4. Producer 1's retry is still a duplicate. */
    uint64_t next = sm->next_offset;
    res = apply_batch(sm, ++index, 3, 0, 1);
    ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
    ck_assert_uint_eq(res.base_offset, next);
    ck_assert_uint_eq(res.evicted_producer, 4);
    res = apply_batch(sm, ++index, 1, 0, 1);
    ck_assert_int_eq(res.outcome, PARTITION_DUPLICATE);
    ck_assert_uint_eq(res.base_offset, 0);
    /* A second table given the same entries evicts the same producers. */
    uint64_t index2;
    struct partition_sm *again = full_table(&index2);
    apply_batch(again, ++index2, 5000, 7, 1);
    apply_batch(again, ++index2, 3, 0, 1);
    apply_batch(again, ++index2, 1, 0, 1);
    assert_same_image(sm, again);
    free(again);
    free(sm);
}
END_TEST

/* Offsets end at PARTITION_OFFSET_LIMIT: a batch past it is refused, never asserted on (a restored
 * image may start a partition near it). */
START_TEST(offsets_end_at_the_limit) {
    struct partition_sm *sm = sm_new();
    sm->next_offset = PARTITION_OFFSET_LIMIT - 2;
    struct partition_apply_result res = apply_batch(sm, 1, 6, 0, 3);
    ck_assert_int_eq(res.outcome, PARTITION_FULL);
    ck_assert_int_eq(res.error, RQ_ERANGE);
    ck_assert_ptr_null(partition_sm_producer(sm, 6));
    res = apply_batch(sm, 2, 6, 0, 2);
    ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
    ck_assert_uint_eq(res.base_offset, PARTITION_OFFSET_LIMIT - 2);
    ck_assert_uint_eq(sm->next_offset, PARTITION_OFFSET_LIMIT);
    ck_assert_int_eq(apply_batch(sm, 3, 0, 0, 1).outcome, PARTITION_FULL);
    ck_assert_int_eq(apply_batch(sm, 4, 6, 2, 1).outcome, PARTITION_FULL);
    res = apply_batch(sm, 5, 6, 0, 2);   /* a duplicate takes no offsets: still answered */
    ck_assert_int_eq(res.outcome, PARTITION_DUPLICATE);
    ck_assert_uint_eq(res.base_offset, PARTITION_OFFSET_LIMIT - 2);
    ck_assert_uint_eq(sm->stats.full, 3);
    struct partition_sm *back = sm_new();
    uint8_t *img = malloc(PARTITION_IMAGE_MAX);
    ck_assert_ptr_nonnull(img);
    size_t n = image_of(sm, img);
    ck_assert_int_eq(partition_sm_restore(back, img, n), 0);
    assert_same_image(sm, back);
    free(img);
    free(back);
    free(sm);
}
END_TEST

/* ---- malformed entries ----------------------------------------------------------------------- */

/* A BATCH header with the given fields (varints written minimally) and the given bytes after it. */
static size_t raw_entry(uint8_t *buf, size_t cap, uint8_t kind, uint64_t pid, uint64_t seq,
                        uint64_t count, const uint8_t *tail, size_t tail_size) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, kind);
    rq_write_varint(&w, 0);   /* base offset */
    rq_write_varint(&w, pid);
    rq_write_varint(&w, seq);
    rq_write_varint(&w, count);
    rq_write_varint(&w, 1);
    rq_write_bytes(&w, tail, tail_size);
    ck_assert_int_eq(w.err, 0);
    return w.len;
}

START_TEST(malformed_entries_are_counted_noops) {
    struct partition_sm *sm = sm_new();
    uint64_t index = 0, malformed = 0, unknown = 0;
    uint8_t good[ENTRY_CAP];
    size_t good_size = make_entry_at(good, sizeof good, 0, 77, 3, 3, 9);
    /* Every truncation. */
    for (size_t n = 0; n < good_size; n++) {
        struct partition_apply_result res = apply_bytes(sm, ++index, good, n);
        ck_assert_int_eq(res.outcome, PARTITION_MALFORMED);
        ck_assert_int_ne(res.error, 0);
        ck_assert_uint_eq(sm->stats.malformed, ++malformed);
    }
    /* Unknown kinds, even followed by a well-formed batch body. */
    static const uint8_t kinds[] = {0, 7, 127, 255};   /* 4..6: CURSOR, DELAYED, RELEASE */
    for (size_t i = 0; i < sizeof kinds; i++) {
        uint8_t bad[ENTRY_CAP];
        memcpy(bad, good, good_size);
        bad[0] = kinds[i];
        struct partition_apply_result res = apply_bytes(sm, ++index, bad, good_size);
        ck_assert_int_eq(res.outcome, PARTITION_UNKNOWN_KIND);
        ck_assert_int_eq(res.error, RQ_ETYPE);
        ck_assert_uint_eq(sm->stats.unknown_kinds, ++unknown);
    }
    /* Counts that do not match the records, and other header damage. */
    uint8_t req[ENTRY_CAP];
    struct proto_records rs;
    make_records(req, sizeof req, 77, 3, 3, 9, &rs);
    static const struct { uint64_t count; int trailing; int error; } rows[] = {
        {2, 0, RQ_ECORRUPT},   /* a record left over */
        {4, 0, RQ_ETRUNC},     /* a record missing */
        {0, 0, RQ_ECORRUPT},
        {PROTO_RECORDS_MAX + 1, 0, RQ_ETOOBIG},
        {3, 1, RQ_ECORRUPT},   /* a trailing byte */
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint8_t bad[ENTRY_CAP];
        size_t n = raw_entry(bad, sizeof bad, PARTITION_ENTRY_BATCH, 77, 3, rows[i].count, rs.data,
                             rs.size);
        if (rows[i].trailing) bad[n++] = 0;
        struct partition_apply_result res = apply_bytes(sm, ++index, bad, n);
        ck_assert_int_eq(res.outcome, PARTITION_MALFORMED);
        ck_assert_int_eq(res.error, rows[i].error);
        ck_assert_uint_eq(sm->stats.malformed, ++malformed);
    }
    /* A non-minimal varint (producer id 77 as 0xcd 0x80 0x00). */
    uint8_t bad[ENTRY_CAP] = {PARTITION_ENTRY_BATCH, 0, 0xcd, 0x80, 0x00, 3, 3, 1};
    memcpy(bad + 8, rs.data, rs.size);
    struct partition_apply_result res = apply_bytes(sm, ++index, bad, 8 + rs.size);
    ck_assert_int_eq(res.outcome, PARTITION_MALFORMED);
    ck_assert_int_eq(res.error, RQ_ECORRUPT);
    /* Random bytes never crash, and what does not decode consumes nothing. */
    struct rq_rng rng;
    rq_rng_seed(&rng, 6);
    for (int i = 0; i < 2000; i++) {
        uint8_t junk[64];
        size_t n = (size_t)rq_rng_below(&rng, sizeof junk + 1);
        for (size_t k = 0; k < n; k++) junk[k] = (uint8_t)rq_rng_next(&rng);
        if (n > 0 && rq_rng_chance(&rng, 500000)) junk[0] = PARTITION_ENTRY_BATCH;
        uint64_t next = sm->next_offset;
        res = apply_bytes(sm, ++index, junk, n);
        if (res.outcome != PARTITION_APPENDED) ck_assert_uint_eq(sm->next_offset, next);
    }
    /* None of it took an offset or a producer slot: the good entry still lands at 0 ... */
    uint64_t junk_records = sm->stats.records;
    ck_assert_uint_eq(sm->next_offset, junk_records);
    ck_assert_ptr_null(partition_sm_producer(sm, 77));
    res = apply_bytes(sm, ++index, good, good_size);
    ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
    ck_assert_uint_eq(res.base_offset, junk_records);
    free(sm);
}
END_TEST

/* ---- retention ------------------------------------------------------------------------------- */

START_TEST(retain_moves_the_log_start_forward_only) {
    struct partition_sm *sm = sm_new();
    uint64_t index = 1;
    apply_batch(sm, index++, 0, 0, 4);
    apply_batch(sm, index++, 5, 0, 3);   /* offsets 4..6 */
    uint8_t buf[PARTITION_RETAIN_ENTRY_MAX];
    size_t n = partition_retain_encode(buf, sizeof buf, 300);
    static const uint8_t exact[] = {PARTITION_ENTRY_RETAIN, 0xac, 0x02};
    ck_assert_uint_eq(n, sizeof exact);
    ck_assert_mem_eq(buf, exact, n);
    struct partition_entry e;
    ck_assert_int_eq(partition_entry_decode(buf, n, &e), 0);
    ck_assert_uint_eq(e.kind, PARTITION_ENTRY_RETAIN);
    ck_assert_uint_eq(e.log_start, 300);
    /* Forward within the log: moved; the same again, backward or past the end: refused. */
    static const struct { uint64_t to; int outcome; uint64_t log_start; } rows[] = {
        {4, PARTITION_RETAINED, 4},        {4, PARTITION_RETAIN_REFUSED, 4},
        {3, PARTITION_RETAIN_REFUSED, 4},  {8, PARTITION_RETAIN_REFUSED, 4},
        {7, PARTITION_RETAINED, 7},        {0, PARTITION_RETAIN_REFUSED, 7},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        struct partition_apply_result res = apply_retain(sm, index++, rows[i].to);
        ck_assert_int_eq(res.outcome, rows[i].outcome);
        ck_assert_int_eq(res.error, rows[i].outcome == PARTITION_RETAINED ? 0 : RQ_ERANGE);
        ck_assert_uint_eq(sm->log_start_offset, rows[i].log_start);
        ck_assert_uint_eq(sm->applied_index, index - 1);
    }
    ck_assert_uint_eq(sm->stats.retains, 2);
    ck_assert_uint_eq(sm->stats.retains_refused, 4);
    /* Offsets and the producer table are untouched: a retry of a deleted batch still gets its
     * original offset. */
    ck_assert_uint_eq(sm->next_offset, 7);
    struct partition_apply_result dup = apply_batch(sm, index++, 5, 0, 3);
    ck_assert_int_eq(dup.outcome, PARTITION_DUPLICATE);
    ck_assert_uint_eq(dup.base_offset, 4);
    /* Damaged RETAIN entries are counted no-ops. */
    static const uint8_t bad[][3] = {{PARTITION_ENTRY_RETAIN, 0x80, 0x00},   /* not minimal */
                                     {PARTITION_ENTRY_RETAIN, 0x80, 0x80},   /* truncated */
                                     {PARTITION_ENTRY_RETAIN, 0x01, 0x00}};  /* trailing */
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(apply_bytes(sm, index++, bad[i], 3).outcome, PARTITION_MALFORMED);
        ck_assert_uint_eq(sm->log_start_offset, 7);
    }
    ck_assert_int_eq(apply_bytes(sm, index++, bad[0], 1).outcome, PARTITION_MALFORMED);
    /* A RETAIN is never part of a SHARED entry: one that holds one is malformed as a whole. */
    uint8_t one[ENTRY_CAP], shared[2 * ENTRY_CAP];
    size_t b1 = make_entry_at(one, sizeof one, sm->next_offset, 0, 0, 1, 1);
    size_t at = 0;
    shared[at++] = PARTITION_ENTRY_SHARED;
    shared[at++] = 2;
    shared[at++] = (uint8_t)b1;   /* a one-byte varint: the batch is short */
    ck_assert_uint_lt(b1, 128);
    memcpy(shared + at, one, b1);
    at += b1;
    shared[at++] = 2;
    at += partition_retain_encode(shared + at, sizeof shared - at, 8);
    struct partition_split split;
    ck_assert_int_eq(partition_entry_split(shared, at, &split), RQ_ECORRUPT);
    ck_assert_int_eq(partition_entry_split(buf, n, &split), RQ_ETYPE);   /* a RETAIN alone */
    ck_assert_int_eq(apply_bytes(sm, index++, shared, at).outcome, PARTITION_MALFORMED);
    ck_assert_uint_eq(sm->next_offset, 7);
    ck_assert_uint_eq(sm->log_start_offset, 7);
    free(sm);
}
END_TEST

/* ---- images ---------------------------------------------------------------------------------- */

static struct partition_sm *sample_state(void) {
    struct partition_sm *sm = sm_new();
    uint64_t index = 3;
    apply_batch(sm, index++, 0, 0, 2);
    apply_batch(sm, index++, 42, 7, 3);
    apply_batch(sm, index++, 9, 0, 1);
    for (uint64_t s = 10; s < 30; s += 2) apply_batch(sm, index++, 42, s, 2);
    apply_batch(sm, index++, UINT64_MAX, 1u << 30, 4);
    ck_assert_int_eq(apply_retain(sm, index++, 3).outcome, PARTITION_RETAINED);
    ck_assert_int_eq(apply_retain(sm, index++, 2).outcome, PARTITION_RETAIN_REFUSED);
    return sm;
}

START_TEST(image_round_trips_and_refuses_damage) {
    struct partition_sm *a = sample_state(), *b = sm_new(), *other = sm_new();
    uint8_t *img = malloc(PARTITION_IMAGE_MAX), *img2 = malloc(PARTITION_IMAGE_MAX);
    ck_assert_ptr_nonnull(img);
    ck_assert_ptr_nonnull(img2);
    size_t n = image_of(a, img);
    ck_assert_uint_eq(partition_sm_image(a, img2, n - 1), 0);
    uint8_t *exact = dup_exact(img, n);
    ck_assert_int_eq(partition_sm_restore(b, exact, n), 0);
    ck_assert_uint_eq(image_of(b, img2), n);
    ck_assert_mem_eq(img, img2, n);
    ck_assert_uint_eq(b->next_offset, a->next_offset);
    ck_assert_uint_eq(b->log_start_offset, 3);
    ck_assert_uint_eq(b->producer_count, 3);
    free(exact);
    /* The damaged are refused and the target keeps its state. */
    apply_batch(other, 1, 8, 0, 1);
    size_t other_size = image_of(other, img2);
    uint8_t *other_img = dup_exact(img2, other_size);
    for (size_t cut = 0; cut < n; cut++) {
        exact = dup_exact(img, cut);
        ck_assert_int_eq(partition_sm_restore(other, cut ? exact : NULL, cut), RQ_ECORRUPT);
        free(exact);
    }
    for (size_t at = 0; at < n; at++) {
        for (int bit = 0; bit < 8; bit++) {
            exact = dup_exact(img, n);
            exact[at] ^= (uint8_t)(1u << bit);
            ck_assert_int_eq(partition_sm_restore(other, exact, n), RQ_ECORRUPT);
            free(exact);
        }
    }
    ck_assert_uint_eq(image_of(other, img2), other_size);
    ck_assert_mem_eq(img2, other_img, other_size);
    free(other_img);
    free(img);
    free(img2);
    free(a);
    free(b);
    free(other);
}
END_TEST

enum image_fault {
    FAULT_NONE, FAULT_MAGIC, FAULT_VERSION, FAULT_LOG_START, FAULT_OFFSET_LIMIT, FAULT_TOO_MANY,
    FAULT_ORDER, FAULT_ID_ZERO, FAULT_STAMP, FAULT_NO_BATCH, FAULT_BATCHES, FAULT_SEQ_GAP,
    FAULT_SEQ_BACKWARD, FAULT_OFFSET_PAST, FAULT_OFFSET_OVERLAP, FAULT_TOO_LONG, FAULT_VARINT,
    FAULT_TRAILING, FAULT_COUNT,
};

/* A hand-written image with a correct checksum: next offset 12, log start 2, applied 20; producer 4
 * (stamp 5) with batches [0..1] at 0 and [2..4] at 2; producer 9 (stamp 20) with [7..7] at 9. */
static size_t fault_image(uint8_t *buf, size_t cap, enum image_fault f) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u32(&w, f == FAULT_MAGIC ? 0x53505153 : 0x53505152);
    rq_write_u8(&w, f == FAULT_VERSION ? 4 : 3);
    rq_write_varint(&w, f == FAULT_OFFSET_LIMIT ? PARTITION_OFFSET_LIMIT + 1 : 12);
    rq_write_varint(&w, f == FAULT_LOG_START ? 13 : 2);
    rq_write_varint(&w, 20);
    if (f == FAULT_VARINT) {
        rq_write_u8(&w, 0x82);
        rq_write_u8(&w, 0x00);
    } else {
        uint64_t count = f == FAULT_TOO_MANY ? PARTITION_PRODUCERS_MAX + 1
                         : f == FAULT_COUNT   ? 3
                                              : 2;
        rq_write_varint(&w, count);
    }
    rq_write_varint(&w, f == FAULT_ID_ZERO ? 0 : f == FAULT_ORDER ? 10 : 4);
    rq_write_varint(&w, 5);
    rq_write_u8(&w, f == FAULT_NO_BATCH ? 0 : f == FAULT_BATCHES ? PARTITION_BATCHES_KEPT + 1 : 2);
    static const uint64_t batches[2][3] = {{0, 1, 0}, {2, 4, 2}};
    for (int k = 0; k < 2; k++) {
        uint64_t base = batches[k][0], last = batches[k][1], offset = batches[k][2];
        if (k == 1 && f == FAULT_SEQ_GAP) base = 3;
        if (k == 1 && f == FAULT_SEQ_BACKWARD) base = 1;
        if (k == 1 && f == FAULT_OFFSET_OVERLAP) offset = 1;
        if (k == 0 && f == FAULT_TOO_LONG) base = 0, last = PROTO_RECORDS_MAX, offset = 0;
        rq_write_varint(&w, base);
        rq_write_varint(&w, last);
        rq_write_varint(&w, offset);
    }
    rq_write_varint(&w, 9);
    rq_write_varint(&w, f == FAULT_STAMP ? 21 : 20);
    rq_write_u8(&w, 1);
    rq_write_varint(&w, 7);
    rq_write_varint(&w, 7);
    rq_write_varint(&w, f == FAULT_OFFSET_PAST ? 12 : 9);
    rq_write_varint(&w, 0);   /* no cursors (version 2) */
    rq_write_varint(&w, 0);   /* nothing delayed (version 3) */
    if (f == FAULT_TRAILING) rq_write_u8(&w, 0);
    rq_write_u32(&w, rq_crc32c(0, buf, w.len));
    ck_assert_int_eq(w.err, 0);
    return w.len;
}

START_TEST(image_structure_is_checked) {
    struct partition_sm *sm = sm_new();
    uint8_t buf[512];
    for (int f = FAULT_NONE; f <= FAULT_COUNT; f++) {
        size_t n = fault_image(buf, sizeof buf, (enum image_fault)f);
        uint8_t *exact = dup_exact(buf, n);
        int want = f == FAULT_NONE ? 0 : RQ_ECORRUPT;
        ck_assert_msg(partition_sm_restore(sm, exact, n) == want, "fault %d", f);
        free(exact);
    }
    /* The valid one was restored, and writes itself back byte for byte. */
    size_t n = fault_image(buf, sizeof buf, FAULT_NONE);
    uint8_t img[512];
    ck_assert_uint_eq(partition_sm_image(sm, img, sizeof img), n);
    ck_assert_mem_eq(img, buf, n);
    ck_assert_uint_eq(sm->next_offset, 12);
    ck_assert_uint_eq(sm->applied_index, 20);
    /* And it goes on from there: producer 4's next batch, producer 9's duplicate. */
    ck_assert_uint_eq(apply_batch(sm, 21, 4, 5, 1).base_offset, 12);
    struct partition_apply_result res = apply_batch(sm, 22, 9, 7, 1);
    ck_assert_int_eq(res.outcome, PARTITION_DUPLICATE);
    ck_assert_uint_eq(res.base_offset, 9);
    free(sm);
}
END_TEST

START_TEST(largest_table_image_fits_a_snapshot) {
    struct partition_sm *sm = sm_new(), *back = sm_new();
    uint64_t index = 0, big = UINT64_C(1) << 62;
    for (uint64_t id = 0; id < PARTITION_PRODUCERS_MAX; id++) {
        for (uint64_t k = 0; k < PARTITION_BATCHES_KEPT; k++) {
            struct partition_apply_result res =
                apply_batch(sm, big + ++index, UINT64_MAX - id, big + k * 8, 8);
            ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
        }
    }
    ck_assert_uint_eq(sm->producer_count, PARTITION_PRODUCERS_MAX);
    uint8_t *img = malloc(PARTITION_IMAGE_MAX);
    ck_assert_ptr_nonnull(img);
    size_t n = image_of(sm, img);
    ck_assert_uint_le(n, PARTITION_IMAGE_MAX);
    ck_assert_uint_le(PARTITION_IMAGE_MAX, HOST_SNAPSHOT_DATA_MAX);
    printf("partition: largest image %zu bytes here, bound %d, struct %zu bytes\n", n,
           (int)PARTITION_IMAGE_MAX, sizeof(struct partition_sm));
    ck_assert_int_eq(partition_sm_restore(back, img, n), 0);
    assert_same_image(sm, back);
    free(img);
    free(sm);
    free(back);
}
END_TEST

/* ---- replicas and the leader's tip ----------------------------------------------------------- */

/* A random entry against state sm: mostly the producer's next batch, else a kept batch again, a
 * sequence out of the blue, producer 0, a truncated entry or an unknown kind. */
static size_t random_entry(struct rq_rng *rng, const struct partition_sm *sm, uint64_t ids,
                           uint64_t tag, uint8_t *buf, size_t cap) {
    uint32_t count = (uint32_t)rq_rng_range(rng, 1, 4);
    uint64_t pid = rq_rng_chance(rng, 150000) ? 0 : rq_rng_range(rng, 1, ids);
    const struct partition_producer *p = partition_sm_producer(sm, pid);
    uint64_t seq = rq_rng_below(rng, 1000);
    uint32_t roll = (uint32_t)rq_rng_below(rng, 100);
    if (p != NULL && roll < 70) {
        seq = p->batches[p->batch_count - 1].last_sequence + 1;
    } else if (p != NULL && roll < 85) {
        const struct partition_batch *b = &p->batches[rq_rng_below(rng, p->batch_count)];
        seq = b->base_sequence;
        count = (uint32_t)(b->last_sequence - b->base_sequence + 1);
    }
    if (rq_rng_chance(rng, 30000)) {   /* retention: forward, or (refused) back or past the end */
        uint64_t to = rq_rng_range(rng, 0, sm->next_offset + 1);
        return partition_retain_encode(buf, cap, to);
    }
    /* Now and then an entry whose leader foresaw another log: refused, on every replica. */
    uint64_t at = sm->next_offset + (rq_rng_chance(rng, 20000) ? 1 : 0);
    size_t n = make_entry_at(buf, cap, at, pid, seq, count, tag);
    roll = (uint32_t)rq_rng_below(rng, 100);
    if (roll < 3) n = (size_t)rq_rng_below(rng, n);
    else if (roll < 5) buf[0] = (uint8_t)rq_rng_range(rng, 2, 255);
    return n;
}

START_TEST(replicas_end_byte_identical) {
    enum { STEPS = 4000, SNAPSHOT_AT = 1800 };
    struct partition_sm *a = sm_new(), *b = sm_new(), *c = sm_new();
    uint8_t *img = malloc(PARTITION_IMAGE_MAX);
    ck_assert_ptr_nonnull(img);
    struct rq_rng rng;
    rq_rng_seed(&rng, 20261124);
    uint64_t index = 0;
    for (int step = 0; step < STEPS; step++) {
        uint8_t buf[ENTRY_CAP];
        size_t n = random_entry(&rng, a, PARTITION_PRODUCERS_MAX + 300, (uint64_t)step, buf,
                                sizeof buf);
        index += rq_rng_range(&rng, 1, 3);   /* NOOP and configuration entries are not applied */
        struct partition_apply_result ra = apply_bytes(a, index, buf, n);
        struct partition_apply_result rb = apply_bytes(b, index, buf, n);
        assert_same_result(&ra, &rb);
        if (step >= SNAPSHOT_AT) {
            struct partition_apply_result rc = apply_bytes(c, index, buf, n);
            assert_same_result(&ra, &rc);
        }
        if (step == SNAPSHOT_AT - 1) {
            size_t size = image_of(a, img);
            ck_assert_int_eq(partition_sm_restore(c, img, size), 0);
        }
        ck_assert_uint_eq(a->next_offset, a->stats.records);   /* dense, from 0 */
    }
    assert_same_image(a, b);
    assert_same_image(a, c);
    /* The history exercised every path. */
    ck_assert_uint_gt(a->stats.duplicates, 0);
    ck_assert_uint_gt(a->stats.out_of_order, 0);
    ck_assert_uint_gt(a->stats.evictions, 0);
    ck_assert_uint_gt(a->stats.malformed, 0);
    ck_assert_uint_gt(a->stats.unknown_kinds, 0);
    ck_assert_uint_gt(a->stats.retains, 0);
    ck_assert_uint_gt(a->stats.retains_refused, 0);
    printf("partition: %d entries: %llu batches, %llu duplicates, %llu out of order, %llu "
           "evictions, %llu malformed, %llu unknown\n", STEPS,
           (unsigned long long)a->stats.batches, (unsigned long long)a->stats.duplicates,
           (unsigned long long)a->stats.out_of_order, (unsigned long long)a->stats.evictions,
           (unsigned long long)a->stats.malformed, (unsigned long long)a->stats.unknown_kinds);
    free(img);
    free(a);
    free(b);
    free(c);
}
END_TEST

enum { LOG_MAX = 48 };

struct log_entry {
    uint8_t data[ENTRY_CAP];
    size_t size;
    uint64_t index;
    struct partition_apply_result expect;   /* what the tip said when it was appended */
};

/* A leader: entries are previewed on the tip, proposed only when APPENDED, applied to the tip at
 * their index; commits apply them to the applied state; truncations drop an uncommitted suffix
 * and rebuild the tip from the applied state and the entries left. Every apply must say what the
 * preview said. */
START_TEST(preview_on_the_tip_matches_apply) {
    struct partition_sm *applied = sm_new(), *tip = sm_new();
    struct log_entry *log = calloc(LOG_MAX, sizeof *log);
    ck_assert_ptr_nonnull(log);
    struct rq_rng rng;
    rq_rng_seed(&rng, 77);
    uint32_t first = 0, count = 0;   /* the uncommitted entries: log[first .. first + count) mod */
    uint64_t last_index = 0, proposed = 0, refused = 0, truncations = 0, rebuilt = 0;
    for (int step = 0; step < 3000; step++) {
        uint32_t roll = (uint32_t)rq_rng_below(&rng, 100);
        if (roll < 60 && count < LOG_MAX) {
            struct log_entry *e = &log[(first + count) % LOG_MAX];
            e->size = random_entry(&rng, tip, 40, (uint64_t)step, e->data, sizeof e->data);
            struct partition_apply_result preview;
            partition_sm_preview(tip, e->data, e->size, &preview);
            if (preview.outcome != PARTITION_APPENDED) {
                refused++;
                continue;
            }
            e->index = last_index += rq_rng_range(&rng, 1, 2);
            partition_sm_apply(tip, e->index, e->data, e->size, &e->expect);
            assert_same_result(&preview, &e->expect);
            count++;
            proposed++;
        } else if (roll < 90 && count > 0) {
            uint32_t commits = (uint32_t)rq_rng_range(&rng, 1, count);
            for (uint32_t i = 0; i < commits; i++) {
                struct log_entry *e = &log[first];
                struct partition_apply_result res;
                partition_sm_apply(applied, e->index, e->data, e->size, &res);
                assert_same_result(&res, &e->expect);
                first = (first + 1) % LOG_MAX;
                count--;
            }
        } else if (count > 0) {   /* a new leader overwrote a suffix: rebuild the tip */
            count -= (uint32_t)rq_rng_range(&rng, 1, count);
            last_index = count ? log[(first + count - 1) % LOG_MAX].index : applied->applied_index;
            partition_sm_copy(tip, applied);
            for (uint32_t i = 0; i < count; i++) {
                struct log_entry *e = &log[(first + i) % LOG_MAX];
                struct partition_apply_result res;
                partition_sm_apply(tip, e->index, e->data, e->size, &res);
                assert_same_result(&res, &e->expect);
                rebuilt++;
            }
            truncations++;
        }
    }
    while (count > 0) {
        struct log_entry *e = &log[first];
        struct partition_apply_result res;
        partition_sm_apply(applied, e->index, e->data, e->size, &res);
        assert_same_result(&res, &e->expect);
        first = (first + 1) % LOG_MAX;
        count--;
    }
    assert_same_image(applied, tip);
    ck_assert_uint_gt(truncations, 0);
    ck_assert_uint_gt(refused, 0);
    printf("partition: tip: %llu proposed, %llu refused by preview, %llu truncations, %llu "
           "re-applied\n", (unsigned long long)proposed, (unsigned long long)refused,
           (unsigned long long)truncations, (unsigned long long)rebuilt);
    free(log);
    free(applied);
    free(tip);
}
END_TEST

/* ---- shared entries (group commit) ----------------------------------------------------------- */

enum { SHARED_CAP = 8192 };

/* A leader building a SHARED entry batch by batch: each batch previewed on the tip, given the
 * offsets it foresees (none when it foresees no append), and applied to the tip as the entry's
 * next part at index. */
struct shared_builder {
    uint8_t data[SHARED_CAP];     /* the batches back to back */
    uint32_t sizes[PARTITION_SHARED_MAX];
    uint32_t count;
    size_t used;
    struct partition_apply_result foreseen[PARTITION_SHARED_MAX];
};

static void shared_add(struct shared_builder *sb, struct partition_sm *tip, uint64_t index,
                       uint64_t pid, uint64_t seq, uint32_t count, uint64_t tag) {
    uint8_t *at = sb->data + sb->used;
    size_t n = make_entry_at(at, SHARED_CAP - sb->used, tip->next_offset, pid, seq, count, tag);
    struct partition_apply_result preview;
    partition_sm_preview(tip, at, n, &preview);
    if (preview.outcome != PARTITION_APPENDED)
        n = make_entry_at(at, SHARED_CAP - sb->used, PARTITION_NO_OFFSET, pid, seq, count, tag);
    partition_sm_apply_part(tip, index, sb->count, at, n, &sb->foreseen[sb->count]);
    assert_same_result(&preview, &sb->foreseen[sb->count]);
    sb->sizes[sb->count++] = (uint32_t)n;
    sb->used += n;
}

/* The entry, encoded into an exact-size heap block. */
static uint8_t *shared_entry(const struct shared_builder *sb, size_t *size) {
    uint8_t buf[SHARED_CAP + 256];
    size_t n = partition_shared_encode(buf, sizeof buf, sb->data, sb->sizes, sb->count);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(n, partition_shared_size(sb->sizes, sb->count));
    *size = n;
    return dup_exact(buf, n);
}

START_TEST(shared_entry_format_byte_for_byte) {
    uint8_t batches[3][ENTRY_CAP];
    uint32_t sizes[3];
    uint8_t data[3 * ENTRY_CAP];
    size_t used = 0;
    for (uint32_t k = 0; k < 3; k++) {
        sizes[k] = (uint32_t)make_entry_at(batches[k], ENTRY_CAP, 10 * k, 5 + k, k, k + 1, k);
        memcpy(data + used, batches[k], sizes[k]);
        used += sizes[k];
    }
    uint8_t buf[4 * ENTRY_CAP];
    size_t n = partition_shared_encode(buf, sizeof buf, data, sizes, 3);
    ck_assert_uint_eq(n, 2 + 3 + used);   /* kind, count, one-byte sizes */
    ck_assert_uint_eq(n, partition_shared_size(sizes, 3));
    ck_assert_uint_eq(buf[0], PARTITION_ENTRY_SHARED);
    ck_assert_uint_eq(buf[1], 3);
    size_t at = 2;
    for (uint32_t k = 0; k < 3; k++) {   /* each size, then the batch verbatim */
        ck_assert_uint_eq(buf[at], sizes[k]);
        ck_assert_mem_eq(buf + at + 1, batches[k], sizes[k]);
        at += 1 + sizes[k];
    }
    uint8_t *exact = dup_exact(buf, n);
    struct partition_split *split = malloc(sizeof *split);
    ck_assert_int_eq(partition_entry_split(exact, n, split), 0);
    ck_assert_uint_eq(split->count, 3);
    at = 2;
    for (uint32_t k = 0; k < 3; k++) {
        ck_assert_ptr_eq(split->data[k], exact + at + 1);
        ck_assert_uint_eq(split->size[k], sizes[k]);
        ck_assert_uint_eq(split->batches[k].base_offset, 10 * k);
        ck_assert_uint_eq(split->batches[k].producer_id, 5 + k);
        ck_assert_uint_eq(split->batches[k].records.count, k + 1);
        at += 1 + sizes[k];
    }
    /* A SHARED entry is not a BATCH; a BATCH entry splits into itself. */
    struct partition_entry e;
    ck_assert_int_eq(partition_entry_decode(exact, n, &e), RQ_ETYPE);
    ck_assert_uint_eq(e.kind, PARTITION_ENTRY_SHARED);
    ck_assert_int_eq(partition_entry_split(batches[1], sizes[1], split), 0);
    ck_assert_uint_eq(split->count, 1);
    ck_assert_ptr_eq(split->data[0], batches[1]);
    for (size_t cap = 0; cap < n; cap++)   /* too small a buffer: nothing */
        ck_assert_uint_eq(partition_shared_encode(buf, cap, data, sizes, 3), 0);
    free(split);
    free(exact);
}
END_TEST

/* A SHARED entry with a raw count and raw (size, bytes) parts; minimal varints unless told. */
static size_t raw_shared(uint8_t *buf, size_t cap, uint64_t count, const uint8_t *parts,
                         size_t parts_size) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, PARTITION_ENTRY_SHARED);
    rq_write_varint(&w, count);
    rq_write_bytes(&w, parts, parts_size);
    ck_assert_int_eq(w.err, 0);
    return w.len;
}

/* Appends (varint size, bytes) to parts. */
static size_t put_part(uint8_t *parts, size_t at, const uint8_t *batch, size_t size) {
    struct rq_writer w;
    rq_writer_init(&w, parts + at, 4 * ENTRY_CAP - at);
    rq_write_varint(&w, size);
    rq_write_bytes(&w, batch, size);
    ck_assert_int_eq(w.err, 0);
    return at + w.len;
}

/* One counted no-op, decided alike by preview and apply, taking nothing. */
static void assert_shared_malformed(struct partition_sm *sm, uint64_t *index, const uint8_t *data,
                                    size_t size, int error) {
    uint8_t *exact = dup_exact(data, size);
    uint64_t malformed = sm->stats.malformed, next = sm->next_offset;
    struct partition_apply_result preview, res[PARTITION_SHARED_MAX];
    partition_sm_preview(sm, size ? exact : NULL, size, &preview);
    ck_assert_uint_eq(partition_sm_apply_entry(sm, ++*index, size ? exact : NULL, size, res), 1);
    assert_same_result(&preview, &res[0]);
    ck_assert_int_eq(res[0].outcome, PARTITION_MALFORMED);
    if (error != 0) ck_assert_int_eq(res[0].error, error);
    ck_assert_int_ne(res[0].error, 0);
    ck_assert_uint_eq(sm->stats.malformed, malformed + 1);
    ck_assert_uint_eq(sm->next_offset, next);
    ck_assert_uint_eq(sm->applied_index, *index);
    free(exact);
}

START_TEST(malformed_shared_entries_are_one_counted_noop) {
    struct partition_sm *sm = sm_new();
    uint64_t index = 0;
    uint8_t b0[ENTRY_CAP], b1[ENTRY_CAP], parts[4 * ENTRY_CAP], buf[8 * ENTRY_CAP];
    size_t n0 = make_entry_at(b0, sizeof b0, 0, 5, 0, 2, 1);
    size_t n1 = make_entry_at(b1, sizeof b1, 2, 6, 0, 1, 2);
    size_t two = put_part(parts, put_part(parts, 0, b0, n0), b1, n1);
    size_t good = raw_shared(buf, sizeof buf, 2, parts, two);
    for (size_t n = 1; n < good; n++)   /* every truncation */
        assert_shared_malformed(sm, &index, buf, n, 0);
    static const struct { uint64_t count; int error; } counts[] = {
        {0, RQ_ECORRUPT}, {1, RQ_ECORRUPT},   /* one batch is a BATCH entry */
        {3, RQ_ETRUNC},                       /* a batch missing */
        {PARTITION_SHARED_MAX + 1, RQ_ETOOBIG},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        size_t n = raw_shared(buf, sizeof buf, counts[i].count, parts,
                              counts[i].count == 1 ? two - n1 - 1 : two);
        assert_shared_malformed(sm, &index, buf, n, counts[i].error);
    }
    size_t n = raw_shared(buf, sizeof buf, 2, parts, two);
    buf[n] = 0;   /* a trailing byte */
    assert_shared_malformed(sm, &index, buf, n + 1, RQ_ECORRUPT);
    uint8_t lax[] = {PARTITION_ENTRY_SHARED, 0x82, 0x00};   /* count 2, not minimal */
    memcpy(buf, lax, sizeof lax);
    memcpy(buf + sizeof lax, parts, two);
    assert_shared_malformed(sm, &index, buf, sizeof lax + two, RQ_ECORRUPT);
    /* A size not minimal, a size past the end, an empty batch. */
    size_t at = raw_shared(buf, sizeof buf, 2, NULL, 0);
    buf[at] = (uint8_t)(n0 | 0x80);
    buf[at + 1] = 0;
    ck_assert_uint_lt(n0, 128);
    memcpy(buf + at + 2, parts + 1, two - 1);
    assert_shared_malformed(sm, &index, buf, at + 1 + two, RQ_ECORRUPT);
    size_t past = put_part(parts, 0, b0, n0);
    parts[past] = (uint8_t)(n1 + 1);
    assert_shared_malformed(sm, &index, buf, raw_shared(buf, sizeof buf, 2, parts, two), RQ_ETRUNC);
    size_t empty = put_part(parts, past, b1, 0);
    n = raw_shared(buf, sizeof buf, 2, parts, empty);
    assert_shared_malformed(sm, &index, buf, n, RQ_ETRUNC);
    /* A batch that is not a BATCH: another kind, a SHARED inside, a damaged batch. */
    uint8_t other[ENTRY_CAP];
    memcpy(other, b1, n1);
    static const uint8_t kinds[] = {0, 2, PARTITION_ENTRY_SHARED, 200};
    for (size_t i = 0; i < sizeof kinds; i++) {
        other[0] = kinds[i];
        size_t m = put_part(parts, past, other, n1);
        assert_shared_malformed(sm, &index, buf, raw_shared(buf, sizeof buf, 2, parts, m),
                                kinds[i] == PARTITION_ENTRY_SHARED ? 0 : RQ_ECORRUPT);
    }
    size_t cut = put_part(parts, past, b1, n1 - 1);   /* a record cut short */
    assert_shared_malformed(sm, &index, buf, raw_shared(buf, sizeof buf, 2, parts, cut), 0);
    /* Random bytes after the kind never crash and take nothing. */
    struct rq_rng rng;
    rq_rng_seed(&rng, 33);
    for (int i = 0; i < 2000; i++) {
        uint8_t junk[96] = {PARTITION_ENTRY_SHARED};
        size_t len = (size_t)rq_rng_range(&rng, 1, sizeof junk);
        for (size_t k = 1; k < len; k++) junk[k] = (uint8_t)rq_rng_next(&rng);
        assert_shared_malformed(sm, &index, junk, len, 0);
    }
    /* The good entry still lands at 0 with both batches. */
    good = raw_shared(buf, sizeof buf, 2, parts, put_part(parts, past, b1, n1));
    struct partition_apply_result res[PARTITION_SHARED_MAX];
    uint8_t *exact = dup_exact(buf, good);
    ck_assert_uint_eq(partition_sm_apply_entry(sm, ++index, exact, good, res), 2);
    ck_assert_int_eq(res[0].outcome, PARTITION_APPENDED);
    ck_assert_uint_eq(res[0].base_offset, 0);
    ck_assert_uint_eq(res[1].base_offset, 2);
    ck_assert_uint_eq(sm->next_offset, 3);
    free(exact);
    free(sm);
}
END_TEST

/* Two producers, a duplicate, an out-of-order batch, producer 0 and a batch that depends on an
 * earlier one of the same entry, in one SHARED entry: each batch gets its own result, offsets
 * dense across them, exactly what the leader's tip foresaw; the producers share the entry's
 * index as their stamp; a replica restored from an image before the entry ends identical. */
START_TEST(shared_batches_apply_in_order_with_their_own_results) {
    struct partition_sm *sm = sm_new(), *tip = sm_new(), *replica = sm_new();
    apply_batch(sm, 1, 5, 0, 2);   /* offsets 0, 1 */
    uint8_t *img = malloc(PARTITION_IMAGE_MAX);
    ck_assert_int_eq(partition_sm_restore(replica, img, image_of(sm, img)), 0);
    partition_sm_copy(tip, sm);
    struct shared_builder *sb = calloc(1, sizeof *sb);
    static const struct {
        uint64_t pid, seq;
        uint32_t count;
        int outcome;
        uint64_t base;
    } rows[] = {
        {5, 2, 1, PARTITION_APPENDED, 2},
        {6, 10, 2, PARTITION_APPENDED, 3},      /* a new producer */
        {5, 0, 2, PARTITION_DUPLICATE, 0},      /* a retry: the original offset */
        {6, 20, 1, PARTITION_OUT_OF_ORDER, 0},  /* a gap */
        {0, 0, 3, PARTITION_APPENDED, 5},
        {5, 3, 1, PARTITION_APPENDED, 8},       /* after the first batch of this entry */
        {6, 12, 1, PARTITION_APPENDED, 9},
    };
    enum { ROWS = sizeof rows / sizeof rows[0] };
    for (uint32_t i = 0; i < ROWS; i++)
        shared_add(sb, tip, 3, rows[i].pid, rows[i].seq, rows[i].count, 100 + i);
    size_t n;
    uint8_t *entry = shared_entry(sb, &n);
    struct partition_apply_result preview, res[PARTITION_SHARED_MAX], again[PARTITION_SHARED_MAX];
    partition_sm_preview(sm, entry, n, &preview);
    assert_same_result(&preview, &sb->foreseen[0]);
    ck_assert_uint_eq(partition_sm_apply_entry(sm, 3, entry, n, res), ROWS);
    ck_assert_uint_eq(partition_sm_apply_entry(replica, 3, entry, n, again), ROWS);
    for (uint32_t i = 0; i < ROWS; i++) {
        ck_assert_int_eq(res[i].outcome, rows[i].outcome);
        ck_assert_uint_eq(res[i].base_offset, rows[i].base);
        assert_same_result(&res[i], &sb->foreseen[i]);   /* preview == apply */
        assert_same_result(&res[i], &again[i]);
    }
    ck_assert_int_eq(res[3].error, RQ_ESEQUENCE);
    ck_assert_uint_eq(sm->next_offset, 10);
    ck_assert_uint_eq(sm->applied_index, 3);
    ck_assert_uint_eq(sm->stats.duplicates, 1);
    ck_assert_uint_eq(sm->stats.out_of_order, 1);
    ck_assert_uint_eq(partition_sm_producer(sm, 5)->stamp, 3);   /* the entry's index, shared */
    ck_assert_uint_eq(partition_sm_producer(sm, 6)->stamp, 3);
    assert_same_image(sm, tip);
    assert_same_image(sm, replica);
    free(entry);
    free(sb);
    free(img);
    free(replica);
    free(tip);
    free(sm);
}
END_TEST

/* A batch inside a SHARED entry whose leader foresaw another offset is refused alone (MISMATCH);
 * the batches around it apply; partition_sm_apply reports the first batch. */
START_TEST(a_mismatched_batch_in_a_shared_entry_is_refused_alone) {
    struct partition_sm *sm = sm_new(), *other = sm_new();
    struct shared_builder *sb = calloc(1, sizeof *sb);
    struct partition_sm *tip = sm_new();
    shared_add(sb, tip, 1, 0, 0, 2, 1);
    size_t at = sb->used;
    sb->sizes[sb->count++] = (uint32_t)make_entry_at(sb->data + at, SHARED_CAP - at, 7, 0, 0, 1, 2);
    sb->used += sb->sizes[sb->count - 1];
    at = sb->used;
    sb->sizes[sb->count++] = (uint32_t)make_entry_at(sb->data + at, SHARED_CAP - at, 2, 9, 0, 1, 3);
    sb->used += sb->sizes[sb->count - 1];
    size_t n;
    uint8_t *entry = shared_entry(sb, &n);
    struct partition_apply_result res[PARTITION_SHARED_MAX], first;
    ck_assert_uint_eq(partition_sm_apply_entry(sm, 1, entry, n, res), 3);
    ck_assert_int_eq(res[0].outcome, PARTITION_APPENDED);
    ck_assert_int_eq(res[1].outcome, PARTITION_MISMATCH);
    ck_assert_int_eq(res[2].outcome, PARTITION_APPENDED);
    ck_assert_uint_eq(res[2].base_offset, 2);
    ck_assert_uint_eq(sm->stats.mismatched, 1);
    partition_sm_apply(other, 1, entry, n, &first);
    assert_same_result(&first, &res[0]);
    assert_same_image(sm, other);
    free(entry);
    free(tip);
    free(sb);
    free(other);
    free(sm);
}
END_TEST

/* Seeded random histories of BATCH and SHARED entries (up to PARTITION_SHARED_MAX batches, some
 * damaged): a leader's tip built part by part foresees every result, replicas (one restored from
 * an image midway) end byte-identical. */
START_TEST(shared_histories_are_deterministic) {
    enum { STEPS = 600, SNAPSHOT_AT = 300 };
    struct partition_sm *a = sm_new(), *b = sm_new(), *c = sm_new(), *tip = sm_new();
    struct shared_builder *sb = malloc(sizeof *sb);
    uint8_t *img = malloc(PARTITION_IMAGE_MAX);
    struct rq_rng rng;
    rq_rng_seed(&rng, 4242);
    uint64_t index = 0, shared = 0;
    for (int step = 0; step < STEPS; step++) {
        index += rq_rng_range(&rng, 1, 2);
        partition_sm_copy(tip, a);
        memset(sb, 0, sizeof *sb);
        uint32_t batches = (uint32_t)rq_rng_range(&rng, 2, PARTITION_SHARED_MAX);
        for (uint32_t k = 0; k < batches && sb->used + ENTRY_CAP <= SHARED_CAP; k++) {
            uint8_t *at = sb->data + sb->used;
            size_t n = random_entry(&rng, tip, 80, (uint64_t)step, at, ENTRY_CAP);
            struct partition_entry e;
            if (n == 0 || partition_entry_decode(at, n, &e) != 0 || e.kind != PARTITION_ENTRY_BATCH)
                continue;   /* damaged, or a RETAIN: never shared */
            partition_sm_apply_part(tip, index, sb->count, at, n, &sb->foreseen[sb->count]);
            sb->sizes[sb->count++] = (uint32_t)n;
            sb->used += n;
        }
        if (sb->count < 2) continue;
        size_t n;
        uint8_t *entry = shared_entry(sb, &n);
        if (rq_rng_chance(&rng, 50000)) n = (size_t)rq_rng_below(&rng, n);   /* a damaged one */
        struct partition_apply_result ra[PARTITION_SHARED_MAX], rb[PARTITION_SHARED_MAX];
        uint32_t na = partition_sm_apply_entry(a, index, entry, n, ra);
        ck_assert_uint_eq(partition_sm_apply_entry(b, index, entry, n, rb), na);
        if (step >= SNAPSHOT_AT)
            ck_assert_uint_eq(partition_sm_apply_entry(c, index, entry, n, rb), na);
        for (uint32_t k = 0; k < na; k++) assert_same_result(&ra[k], &rb[k]);
        if (na == sb->count) {   /* whole: as the tip foresaw */
            for (uint32_t k = 0; k < na; k++) assert_same_result(&ra[k], &sb->foreseen[k]);
            assert_same_image(a, tip);
            shared++;
        }
        if (step == SNAPSHOT_AT - 1)
            ck_assert_int_eq(partition_sm_restore(c, img, image_of(a, img)), 0);
        free(entry);
    }
    assert_same_image(a, b);
    assert_same_image(a, c);
    ck_assert_uint_gt(shared, STEPS / 2);
    ck_assert_uint_gt(a->stats.duplicates, 0);
    ck_assert_uint_gt(a->stats.out_of_order, 0);
    ck_assert_uint_gt(a->stats.mismatched, 0);
    free(img);
    free(sb);
    free(tip);
    free(a);
    free(b);
    free(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("partition");
    TCase *tc = tcase_create("state machine");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, entry_format_byte_for_byte);
    tcase_add_test(tc, offsets_are_dense);
    tcase_add_test(tc, duplicates_of_kept_batches_get_original_offsets);
    tcase_add_test(tc, sequences_out_of_order_take_no_offsets);
    tcase_add_test(tc, new_producer_at_any_sequence);
    tcase_add_test(tc, producer_zero_is_never_deduplicated);
    tcase_add_test(tc, a_batch_at_another_offset_than_assigned_is_refused);
    tcase_add_test(tc, eviction_is_least_recently_used);
    tcase_add_test(tc, offsets_end_at_the_limit);
    tcase_add_test(tc, malformed_entries_are_counted_noops);
    tcase_add_test(tc, retain_moves_the_log_start_forward_only);
    tcase_add_test(tc, image_round_trips_and_refuses_damage);
    tcase_add_test(tc, image_structure_is_checked);
    tcase_add_test(tc, largest_table_image_fits_a_snapshot);
    tcase_add_test(tc, replicas_end_byte_identical);
    tcase_add_test(tc, preview_on_the_tip_matches_apply);
    tcase_add_test(tc, shared_entry_format_byte_for_byte);
    tcase_add_test(tc, malformed_shared_entries_are_one_counted_noop);
    tcase_add_test(tc, shared_batches_apply_in_order_with_their_own_results);
    tcase_add_test(tc, a_mismatched_batch_in_a_shared_entry_is_refused_alone);
    tcase_add_test(tc, shared_histories_are_deterministic);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
