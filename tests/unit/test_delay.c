/* Delayed messages in the partition state machine (src/broker/delay.c through partition.c): the
 * DELAYED and RELEASE entries byte for byte; a DELAYED entry takes no offsets and holds its records
 * in the table, a RELEASE appends exactly them at the next offsets (and reads like a BATCH for
 * every reader of records), a RELEASE of nothing held is a counted no-op, one at the wrong offset
 * a mismatch; the table's bounds refuse what does not fit and keep the rest; every truncation of
 * an entry is a counted no-op; the table round-trips in the image, a damaged one is refused.
 * Entries handed to decoders are heap blocks of exactly their size (AddressSanitizer). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "broker/partition.h"
#include "tests/unit/suite_main.h"

enum { ENTRY_CAP = 4096 };

static struct partition_sm *sm_new(void) {
    struct partition_sm *sm = malloc(sizeof *sm);
    ck_assert_ptr_nonnull(sm);
    partition_sm_init(sm);
    return sm;
}

/* One record of value `value`, as a produce request carries it. */
static size_t one_record(uint8_t *buf, size_t cap, const char *value, struct proto_records *out) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_varint(&w, 7);   /* timestamp */
    rq_write_varint(&w, 0);   /* no key */
    rq_write_varint(&w, strlen(value));
    rq_write_bytes(&w, value, strlen(value));
    rq_write_varint(&w, 0);   /* no headers */
    ck_assert_int_eq(w.err, 0);
    ck_assert_int_eq(proto_records_decode(buf, w.len, 1, 0, out), 0);
    return w.len;
}

static struct partition_apply_result apply_exact(struct partition_sm *sm, const uint8_t *data,
                                                 size_t n) {
    uint8_t *exact = malloc(n);
    memcpy(exact, data, n);
    struct partition_apply_result res;
    partition_sm_apply(sm, sm->applied_index + 1, exact, n, &res);
    free(exact);
    return res;
}

static struct partition_apply_result delay(struct partition_sm *sm, const char *value,
                                           uint64_t due) {
    uint8_t rec[256], entry[ENTRY_CAP];
    struct proto_records rs;
    one_record(rec, sizeof rec, value, &rs);
    size_t n = delay_entry_encode(entry, sizeof entry, due, 5, &rs);
    ck_assert_uint_gt(n, 0);
    return apply_exact(sm, entry, n);
}

/* The RELEASE a leader would propose for the item of raft_index, at the next offset. */
static struct partition_apply_result release(struct partition_sm *sm, uint64_t raft_index,
                                             uint64_t base_offset) {
    const struct delay_item *it = delay_table_find(&sm->delays, raft_index);
    ck_assert_ptr_nonnull(it);
    uint8_t entry[ENTRY_CAP];
    size_t n = delay_release_encode(entry, sizeof entry, &sm->delays, it, base_offset, 99);
    ck_assert_uint_gt(n, 0);
    return apply_exact(sm, entry, n);
}

static void append_plain(struct partition_sm *sm, const char *value) {
    uint8_t rec[256], entry[ENTRY_CAP];
    struct proto_records rs;
    one_record(rec, sizeof rec, value, &rs);
    size_t n = partition_entry_encode(entry, sizeof entry, sm->next_offset, 0, 0, 1, &rs);
    ck_assert_int_eq(apply_exact(sm, entry, n).outcome, PARTITION_APPENDED);
}

START_TEST(entries_byte_for_byte) {
    uint8_t rec[64], entry[ENTRY_CAP];
    struct proto_records rs;
    size_t rn = one_record(rec, sizeof rec, "ab", &rs);
    size_t n = delay_entry_encode(entry, sizeof entry, 300, 5, &rs);
    static const uint8_t head[] = {PARTITION_ENTRY_DELAYED, 0xAC, 0x02, 5, 1};
    ck_assert_uint_eq(n, sizeof head + rn);
    ck_assert_mem_eq(entry, head, sizeof head);
    ck_assert_mem_eq(entry + sizeof head, rec, rn);
    struct delayed_entry d;
    ck_assert_int_eq(delay_entry_decode(entry, n, &d), 0);
    ck_assert_uint_eq(d.due_ns, 300);
    ck_assert_uint_eq(d.records.count, 1);
    for (size_t cut = 0; cut < n; cut++) ck_assert_int_ne(delay_entry_decode(entry, cut, &d), 0);
    entry[n] = 0;   /* a trailing byte */
    ck_assert_int_ne(delay_entry_decode(entry, n + 1, &d), 0);
    ck_assert_uint_eq(delay_entry_encode(entry, n - 1, 300, 5, &rs), 0);   /* does not fit */
}
END_TEST

START_TEST(held_without_offsets_then_released_at_the_end) {
    struct partition_sm *sm = sm_new();
    append_plain(sm, "a");
    struct partition_apply_result r = delay(sm, "later", 1000);
    uint64_t held_at = sm->applied_index;
    ck_assert_int_eq(r.outcome, PARTITION_DELAYED);
    ck_assert_uint_eq(sm->next_offset, 1);   /* no offsets while held */
    ck_assert_uint_eq(sm->delays.count, 1);
    ck_assert_uint_eq(delay_table_next_due(&sm->delays), 1000);
    append_plain(sm, "b");                   /* others go on meanwhile */
    r = release(sm, held_at, 2);
    ck_assert_int_eq(r.outcome, PARTITION_APPENDED);
    ck_assert_uint_eq(r.base_offset, 2);
    ck_assert_uint_eq(r.record_count, 1);
    ck_assert_uint_eq(sm->next_offset, 3);
    ck_assert_uint_eq(sm->delays.count, 0);
    ck_assert_uint_eq(sm->delays.used, 0);
    ck_assert_uint_eq(delay_table_next_due(&sm->delays), UINT64_MAX);
    ck_assert_uint_eq(sm->stats.delayed, 1);
    ck_assert_uint_eq(sm->stats.released, 1);
    free(sm);
}
END_TEST

START_TEST(a_release_reads_as_a_batch) {
    struct partition_sm *sm = sm_new();
    delay(sm, "xyz", 10);
    const struct delay_item *it = delay_table_find(&sm->delays, 1);
    uint8_t entry[ENTRY_CAP];
    size_t n = delay_release_encode(entry, sizeof entry, &sm->delays, it, 0, 99);
    struct partition_split split;
    ck_assert_int_eq(partition_entry_split(entry, n, &split), 0);
    ck_assert_uint_eq(split.count, 1);
    ck_assert_uint_eq(split.batches[0].base_offset, 0);
    ck_assert_uint_eq(split.batches[0].producer_id, 0);
    size_t cursor = 0;
    struct proto_record rec;
    ck_assert(proto_record_next(&split.batches[0].records, &cursor, &rec));
    ck_assert_uint_eq(rec.value.size, 3);
    ck_assert_mem_eq(rec.value.data, "xyz", 3);
    /* a DELAYED entry holds no batch a reader could see */
    uint8_t rb[64];
    struct proto_records rs;
    one_record(rb, sizeof rb, "q", &rs);
    n = delay_entry_encode(entry, sizeof entry, 1, 1, &rs);
    ck_assert_int_eq(partition_entry_split(entry, n, &split), RQ_ETYPE);
    free(sm);
}
END_TEST

START_TEST(stale_and_misplaced_releases_change_nothing) {
    struct partition_sm *sm = sm_new();
    delay(sm, "one", 10);
    const struct delay_item *it = delay_table_find(&sm->delays, 1);
    uint8_t entry[ENTRY_CAP];
    size_t n = delay_release_encode(entry, sizeof entry, &sm->delays, it, 5, 99);
    struct partition_apply_result r = apply_exact(sm, entry, n);   /* foresaw offset 5, not 0 */
    ck_assert_int_eq(r.outcome, PARTITION_MISMATCH);
    ck_assert_uint_eq(sm->delays.count, 1);
    n = delay_release_encode(entry, sizeof entry, &sm->delays, it, 0, 99);
    ck_assert_int_eq(apply_exact(sm, entry, n).outcome, PARTITION_APPENDED);
    r = apply_exact(sm, entry, n);   /* the same release again: nothing held */
    ck_assert_int_eq(r.outcome, PARTITION_RELEASE_STALE);
    ck_assert_int_eq(r.error, RQ_ENOENT);
    ck_assert_uint_eq(sm->next_offset, 1);
    ck_assert_uint_eq(sm->stats.release_stale, 1);
    free(sm);
}
END_TEST

START_TEST(the_table_is_bounded) {
    struct partition_sm *sm = sm_new();
    char value[16];
    for (int i = 0; i < PARTITION_DELAYED_MAX; i++) {
        snprintf(value, sizeof value, "v%d", i);
        ck_assert_int_eq(delay(sm, value, (uint64_t)(100 - i)).outcome, PARTITION_DELAYED);
    }
    struct partition_apply_result r = delay(sm, "over", 1);
    ck_assert_int_eq(r.outcome, PARTITION_DELAY_REFUSED);
    ck_assert_int_eq(r.error, RQ_EBUSY);
    ck_assert_uint_eq(delay_table_next_due(&sm->delays), 100 - PARTITION_DELAYED_MAX + 1);
    /* releasing one from the middle keeps the others' records intact */
    uint64_t middle = sm->delays.items[10].raft_index;
    ck_assert_int_eq(release(sm, middle, 0).outcome, PARTITION_APPENDED);
    ck_assert_int_eq(delay(sm, "fits-again", 1).outcome, PARTITION_DELAYED);
    for (uint32_t i = 0; i < sm->delays.count; i++) {
        const struct delay_item *it = &sm->delays.items[i];
        struct proto_records rs;
        ck_assert_int_eq(proto_records_decode(sm->delays.bytes + it->at, it->size, 1, 0, &rs), 0);
    }
    /* the byte bound: one big record */
    struct partition_sm *big = sm_new();
    static uint8_t rec[PARTITION_DELAYED_BYTES_MAX], entry[PARTITION_DELAYED_BYTES_MAX + 64];
    static char huge[PARTITION_DELAYED_BYTES_MAX / 2];
    memset(huge, 'x', sizeof huge - 1);
    struct proto_records rs;
    one_record(rec, sizeof rec, huge, &rs);
    size_t n = delay_entry_encode(entry, sizeof entry, 1, 1, &rs);
    ck_assert_int_eq(apply_exact(big, entry, n).outcome, PARTITION_DELAYED);
    ck_assert_int_eq(apply_exact(big, entry, n).outcome, PARTITION_DELAY_REFUSED);
    free(big);
    free(sm);
}
END_TEST

START_TEST(malformed_entries_are_counted_noops) {
    struct partition_sm *sm = sm_new();
    uint8_t rec[64], entry[ENTRY_CAP];
    struct proto_records rs;
    one_record(rec, sizeof rec, "m", &rs);
    size_t n = delay_entry_encode(entry, sizeof entry, 3, 1, &rs);
    for (size_t cut = 1; cut < n; cut++)
        ck_assert_int_eq(apply_exact(sm, entry, cut).outcome, PARTITION_MALFORMED);
    static const uint8_t bad[][8] = {
        {PARTITION_ENTRY_DELAYED, 1, 1, 0},                  /* zero records */
        {PARTITION_ENTRY_DELAYED, 0x81, 0, 1, 1, 0, 0, 0},   /* a non-minimal varint */
        {PARTITION_ENTRY_RELEASE, 0, 0, 1, 1, 0, 0, 0},      /* release of index 0 */
    };
    static const size_t sizes[] = {4, 8, 8};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        ck_assert_int_eq(apply_exact(sm, bad[i], sizes[i]).outcome, PARTITION_MALFORMED);
    ck_assert_uint_eq(sm->delays.count, 0);
    ck_assert_uint_eq(sm->next_offset, 0);
    free(sm);
}
END_TEST

START_TEST(the_table_round_trips_in_the_image) {
    struct partition_sm *sm = sm_new();
    append_plain(sm, "a");
    delay(sm, "d1", 50);
    delay(sm, "d2", 40);
    release(sm, sm->delays.items[0].raft_index, 1);
    delay(sm, "d3", 30);
    uint8_t *img = malloc(PARTITION_IMAGE_MAX);
    size_t n = partition_sm_image(sm, img, PARTITION_IMAGE_MAX);
    ck_assert_uint_gt(n, 0);
    struct partition_sm *copy = sm_new();
    ck_assert_int_eq(partition_sm_restore(copy, img, n), 0);
    ck_assert_uint_eq(copy->delays.count, 2);
    ck_assert_uint_eq(copy->delays.used, sm->delays.used);
    ck_assert_mem_eq(copy->delays.items, sm->delays.items, 2 * sizeof sm->delays.items[0]);
    ck_assert_mem_eq(copy->delays.bytes, sm->delays.bytes, sm->delays.used);
    /* the restored replica releases alike */
    struct partition_apply_result a = release(sm, sm->delays.items[1].raft_index, 2);
    struct partition_apply_result b = release(copy, copy->delays.items[1].raft_index, 2);
    ck_assert_int_eq(a.outcome, PARTITION_APPENDED);
    ck_assert_int_eq(b.outcome, a.outcome);
    for (size_t i = 0; i + 4 < n; i++) {   /* every byte flipped: refused (the CRC) */
        img[i] ^= 0x40;
        struct partition_sm *t = sm_new();
        ck_assert_int_eq(partition_sm_restore(t, img, n), RQ_ECORRUPT);
        free(t);
        img[i] ^= 0x40;
    }
    /* a well-checksummed table naming an entry past the image's applied index is refused; the
     * same at the applied index is taken */
    for (uint8_t index = 4; index <= 5; index++) {
        uint8_t bad[64];
        struct rq_writer w;
        rq_writer_init(&w, bad, sizeof bad);
        rq_write_u32(&w, 0x53505152);
        rq_write_u8(&w, 3);
        rq_write_varint(&w, 0);   /* next offset */
        rq_write_varint(&w, 0);   /* log start */
        rq_write_varint(&w, 4);   /* applied index */
        rq_write_varint(&w, 0);   /* producers */
        rq_write_varint(&w, 0);   /* cursors */
        const uint8_t table[] = {1, index, 1, 1, 1, 5, 0, 0, 1, 'v', 0};
        rq_write_bytes(&w, table, sizeof table);
        rq_write_u32(&w, rq_crc32c(0, bad, w.len));
        ck_assert_int_eq(partition_sm_restore(copy, bad, w.len), index == 4 ? 0 : RQ_ECORRUPT);
    }
    free(img);
    free(copy);
    free(sm);
}
END_TEST

int main(void) {
    Suite *s = suite_create("delay");
    TCase *tc = tcase_create("delay");
    tcase_add_test(tc, entries_byte_for_byte);
    tcase_add_test(tc, held_without_offsets_then_released_at_the_end);
    tcase_add_test(tc, a_release_reads_as_a_batch);
    tcase_add_test(tc, stale_and_misplaced_releases_change_nothing);
    tcase_add_test(tc, the_table_is_bounded);
    tcase_add_test(tc, malformed_entries_are_counted_noops);
    tcase_add_test(tc, the_table_round_trips_in_the_image);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
