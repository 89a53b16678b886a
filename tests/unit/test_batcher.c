/* A producer's batching (src/client/batcher.c): batches close on count, bytes or linger; the
 * in-flight bound per partition; FIFO per partition; retriable errors retried with doubling
 * back-off up to the limit; other errors fail at once; idempotent sequences fixed at the first
 * send and kept by retries; the buffer bound pushes back; records are copied (the caller's memory
 * may change). Time is a number the test advances. */
#include <check.h>
#include <string.h>

#include "base/errors.h"
#include "client/batcher.h"
#include "tests/unit/suite_main.h"

static struct proto_record_in rec(const char *value) {
    return (struct proto_record_in){.value = {(const uint8_t *)value, (uint32_t)strlen(value)}};
}

static struct batcher *make(uint32_t records_max, uint32_t in_flight, int idempotent) {
    struct batcher_config cfg;
    batcher_config_default(&cfg);
    cfg.batch_records_max = records_max;
    cfg.in_flight_max = in_flight;
    cfg.linger_ns = 100;
    cfg.backoff_ns = 10;
    cfg.backoff_max_ns = 35;
    cfg.retries_max = 3;
    cfg.buffer_bytes_max = 64;
    cfg.idempotent = (uint8_t)idempotent;
    struct batcher *b = batcher_create(&cfg, 2, idempotent ? 7 : 0);
    ck_assert_ptr_nonnull(b);
    return b;
}

START_TEST(full_batches_go_at_once_and_partial_ones_linger) {
    struct batcher *b = make(2, 5, 0);
    struct proto_record_in r = rec("a");
    struct batcher_batch bt;
    uint64_t wake;
    ck_assert_int_eq(batcher_add(b, 0, &r, 0), 0);
    ck_assert_int_eq(batcher_next(b, 0, &bt, &wake), 0);
    ck_assert_uint_eq(wake, 100);   /* lingers */
    ck_assert_int_eq(batcher_add(b, 0, &r, 1), 0);   /* full: it goes at once */
    ck_assert_int_eq(batcher_next(b, 1, &bt, &wake), 1);
    ck_assert_uint_eq(bt.record_count, 2);
    ck_assert_uint_eq(bt.attempt, 1);
    ck_assert_int_eq(batcher_add(b, 0, &r, 2), 0);   /* a second batch opens */
    ck_assert_int_eq(batcher_next(b, 101, &bt, &wake), 0);
    ck_assert_uint_eq(wake, 102);   /* the second batch's linger */
    ck_assert_int_eq(batcher_next(b, 102, &bt, &wake), 1);
    ck_assert_uint_eq(bt.record_count, 1);
    batcher_destroy(b);
}
END_TEST

START_TEST(in_flight_bound_and_fifo) {
    struct batcher *b = make(1, 2, 0);
    const char *values[] = {"1", "2", "3"};
    for (int i = 0; i < 3; i++) {
        struct proto_record_in r = rec(values[i]);
        ck_assert_int_eq(batcher_add(b, 1, &r, 0), 0);
    }
    struct batcher_batch x, y, z;
    uint64_t wake;
    ck_assert_int_eq(batcher_next(b, 100, &x, &wake), 1);
    ck_assert_int_eq(batcher_next(b, 100, &y, &wake), 1);
    ck_assert_int_eq(batcher_next(b, 100, &z, &wake), 0);   /* two out already */
    ck_assert_mem_eq(x.records[0].value.data, "1", 1);
    ck_assert_mem_eq(y.records[0].value.data, "2", 1);
    ck_assert_int_eq(batcher_done(b, y.id, 0, 100), BATCHER_ACKED);
    ck_assert_int_eq(batcher_next(b, 100, &z, &wake), 1);
    ck_assert_mem_eq(z.records[0].value.data, "3", 1);
    batcher_destroy(b);
}
END_TEST

START_TEST(retries_back_off_then_fail) {
    struct batcher *b = make(1, 1, 0);
    struct proto_record_in r = rec("x");
    ck_assert_int_eq(batcher_add(b, 0, &r, 0), 0);
    struct batcher_batch bt;
    uint64_t wake, now = 100;
    static const uint64_t waits[] = {10, 20, 35};   /* doubling, capped at 35 */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(batcher_next(b, now, &bt, &wake), 1);
        ck_assert_uint_eq(bt.attempt, (uint32_t)i + 1);
        ck_assert_int_eq(batcher_done(b, bt.id, RQ_ENOTLEADER, now), BATCHER_RETRY);
        ck_assert_int_eq(batcher_next(b, now, &bt, &wake), 0);
        ck_assert_uint_eq(wake, now + waits[i]);
        now = wake;
    }
    ck_assert_int_eq(batcher_next(b, now, &bt, &wake), 1);
    ck_assert_int_eq(batcher_done(b, bt.id, RQ_ETIMEOUT, now), BATCHER_FAILED);   /* 4th attempt */
    struct batcher_stats st;
    batcher_stats_get(b, &st);
    ck_assert_uint_eq(st.retries, 3);
    ck_assert_uint_eq(st.failures, 1);
    ck_assert_uint_eq(st.records_held, 0);
    ck_assert_uint_eq(st.bytes_held, 0);
    ck_assert_int_eq(batcher_add(b, 0, &r, now), 0);
    ck_assert_int_eq(batcher_next(b, now + 100, &bt, &wake), 1);
    ck_assert_int_eq(batcher_done(b, bt.id, RQ_ETOOBIG, now), BATCHER_FAILED);   /* not retriable */
    batcher_destroy(b);
}
END_TEST

START_TEST(idempotent_sequences_are_kept_by_retries) {
    struct batcher *b = make(2, 5, 1);
    struct proto_record_in r = rec("s");
    for (int i = 0; i < 5; i++) ck_assert_int_eq(batcher_add(b, 0, &r, 0), 0);
    struct batcher_batch a1, a2, a3, again;
    uint64_t wake;
    ck_assert_int_eq(batcher_next(b, 100, &a1, &wake), 1);
    ck_assert_int_eq(batcher_next(b, 100, &a2, &wake), 1);
    ck_assert_int_eq(batcher_next(b, 100, &a3, &wake), 1);
    ck_assert_uint_eq(a1.base_sequence, 0);
    ck_assert_uint_eq(a2.base_sequence, 2);
    ck_assert_uint_eq(a3.base_sequence, 4);
    ck_assert_int_eq(batcher_done(b, a1.id, RQ_EBUSY, 100), BATCHER_RETRY);
    ck_assert_int_eq(batcher_next(b, 200, &again, &wake), 1);
    ck_assert_uint_eq(again.id, a1.id);
    ck_assert_uint_eq(again.base_sequence, 0);   /* the same sequence: the broker deduplicates */
    ck_assert_uint_eq(again.attempt, 2);
    batcher_destroy(b);
}
END_TEST

START_TEST(bounds_and_copies) {
    struct batcher *b = make(8, 1, 0);
    char value[40];
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    struct proto_header h[] = {{{(const uint8_t *)"k", 1}, {(const uint8_t *)"vv", 2}}};
    struct proto_record_in r = rec(value);
    r.header_count = 1;
    r.headers = h;
    ck_assert_int_eq(batcher_add(b, 0, &r, 0), 0);   /* 39 + 3 bytes of 64 */
    ck_assert_int_eq(batcher_add(b, 1, &r, 0), RQ_EBUSY);   /* the buffer is full */
    ck_assert_int_eq(batcher_add(b, 2, &r, 0), RQ_EINVAL);  /* no partition 2 */
    memset(value, 'w', 5);   /* the batch holds a copy */
    struct batcher_batch bt;
    uint64_t wake;
    ck_assert_int_eq(batcher_next(b, 100, &bt, &wake), 1);
    ck_assert_uint_eq(bt.records[0].value.size, 39);
    ck_assert_uint_eq(bt.records[0].value.data[0], 'v');
    ck_assert_uint_eq(bt.records[0].header_count, 1);
    ck_assert_mem_eq(bt.records[0].headers[0].value.data, "vv", 2);
    ck_assert_int_eq(batcher_done(b, bt.id, 0, 100), BATCHER_ACKED);
    ck_assert_int_eq(batcher_add(b, 1, &r, 100), 0);   /* room again */
    struct batcher_config cfg;
    batcher_config_default(&cfg);
    cfg.batch_bytes_max = 10;
    struct batcher *small = batcher_create(&cfg, 1, 0);
    ck_assert_int_eq(batcher_add(small, 0, &r, 0), RQ_ETOOBIG);
    batcher_destroy(small);
    batcher_destroy(b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("batcher");
    TCase *tc = tcase_create("producer");
    tcase_add_test(tc, full_batches_go_at_once_and_partial_ones_linger);
    tcase_add_test(tc, in_flight_bound_and_fifo);
    tcase_add_test(tc, retries_back_off_then_fail);
    tcase_add_test(tc, idempotent_sequences_are_kept_by_retries);
    tcase_add_test(tc, bounds_and_copies);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
