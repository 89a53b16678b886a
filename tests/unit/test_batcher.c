/* A producer's batching (src/client/batcher.c): batches close on count, bytes or linger; the
 * in-flight bound per partition; FIFO per partition; retriable errors retried with doubling
 * back-off up to the limit; other errors fail at once; idempotent sequences fixed at the first
 * send and kept by retries, the first batch under an id alone, the window from the oldest
 * unresolved batch; RQ_ESEQUENCE behind an unresolved batch waiting uncounted, and at the
 * head wanting a new producer id that restarts the partition's sequences; the buffer bound
 * pushes back; records are copied (the caller's memory may change). Time is a number the test
 * advances. */
#include <check.h>
#include <string.h>

#include "base/errors.h"
#include "broker/partition.h"
#include "client/batcher.h"
#include "proto/msg.h"
#include "raft/msg.h"
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

START_TEST(full_batches_go_at_once_and_partial_ones_linger_while_others_are_out) {
    struct batcher *b = make(2, 5, 0);
    struct proto_record_in r = rec("a");
    struct batcher_batch bt;
    uint64_t wake;
    ck_assert_int_eq(batcher_add(b, 0, &r, 0), 0);
    ck_assert_int_eq(batcher_next(b, 0, &bt, &wake), 1); /* nothing out: no linger */
    ck_assert_uint_eq(bt.record_count, 1);
    ck_assert_int_eq(batcher_add(b, 0, &r, 1), 0);
    ck_assert_int_eq(batcher_next(b, 1, &bt, &wake), 0);
    ck_assert_uint_eq(wake, 101); /* one in flight: the next lingers */
    ck_assert_int_eq(batcher_add(b, 0, &r, 2), 0); /* full: it goes at once */
    ck_assert_int_eq(batcher_next(b, 2, &bt, &wake), 1);
    ck_assert_uint_eq(bt.record_count, 2);
    ck_assert_uint_eq(bt.attempt, 1);
    ck_assert_int_eq(batcher_add(b, 0, &r, 3), 0); /* a third batch opens */
    ck_assert_int_eq(batcher_next(b, 102, &bt, &wake), 0);
    ck_assert_uint_eq(wake, 103); /* its linger */
    ck_assert_int_eq(batcher_next(b, 103, &bt, &wake), 1);
    ck_assert_uint_eq(bt.record_count, 1);
    ck_assert_int_eq(batcher_add(b, 1, &r, 104), 0); /* another partition: lingers too, as */
    ck_assert_int_eq(batcher_next(b, 104, &bt, &wake), 0); /* the producer has batches out */
    ck_assert_uint_eq(wake, 204);
    batcher_destroy(b);
    b = make(2, 5, 0); /* a producer with nothing out sends any partition's batch at once */
    ck_assert_int_eq(batcher_add(b, 1, &r, 0), 0);
    ck_assert_int_eq(batcher_next(b, 0, &bt, &wake), 1);
    ck_assert_uint_eq(bt.partition, 1);
    ck_assert_int_eq(batcher_done(b, bt.id, 0, 5), BATCHER_ACKED);
    ck_assert_int_eq(batcher_add(b, 0, &r, 6), 0); /* answered: nothing out again */
    ck_assert_int_eq(batcher_next(b, 6, &bt, &wake), 1);
    ck_assert_uint_eq(bt.partition, 0);
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
    ck_assert_uint_eq(a1.base_sequence, 0);
    ck_assert_uint_eq(a1.producer_id, 7);
    /* The first batch under a producer id goes alone: a broker takes a producer it does not know
     * at any sequence, so a later batch must not land first. */
    ck_assert_int_eq(batcher_next(b, 100, &a2, &wake), 0);
    ck_assert_uint_eq(wake, UINT64_MAX);
    ck_assert_int_eq(batcher_done(b, a1.id, 0, 100), BATCHER_ACKED);
    ck_assert_int_eq(batcher_next(b, 100, &a2, &wake), 1);
    ck_assert_int_eq(batcher_next(b, 100, &a3, &wake), 1);
    ck_assert_uint_eq(a2.base_sequence, 2);
    ck_assert_uint_eq(a3.base_sequence, 4);
    ck_assert_int_eq(batcher_done(b, a2.id, RQ_EBUSY, 100), BATCHER_RETRY);
    ck_assert_int_eq(batcher_next(b, 200, &again, &wake), 1);
    ck_assert_uint_eq(again.id, a2.id);
    ck_assert_uint_eq(again.base_sequence, 2);   /* the same sequence: the broker deduplicates */
    ck_assert_uint_eq(again.attempt, 2);
    batcher_destroy(b);
}
END_TEST

/* An idempotent partition's sequences are handed out only while fewer than in_flight_max batches
 * were sequenced since its oldest unresolved one, acknowledged ones included: a broker recognises
 * a retry only among a producer's last few batches. */
START_TEST(idempotent_window_counts_from_the_oldest_unresolved_batch) {
    struct batcher *b = make(1, 3, 1);
    struct proto_record_in r = rec("w");
    for (int i = 0; i < 5; i++) ck_assert_int_eq(batcher_add(b, 0, &r, 0), 0);
    struct batcher_batch first, slow, x, y, z;
    uint64_t wake;
    ck_assert_int_eq(batcher_next(b, 100, &first, &wake), 1);
    ck_assert_int_eq(batcher_done(b, first.id, 0, 100), BATCHER_ACKED);
    ck_assert_int_eq(batcher_next(b, 100, &slow, &wake), 1);
    ck_assert_int_eq(batcher_next(b, 100, &x, &wake), 1);
    ck_assert_int_eq(batcher_next(b, 100, &y, &wake), 1);
    ck_assert_int_eq(batcher_done(b, x.id, 0, 100), BATCHER_ACKED);
    ck_assert_int_eq(batcher_done(b, y.id, 0, 100), BATCHER_ACKED);
    ck_assert_int_eq(batcher_next(b, 100, &z, &wake), 0);   /* only slow is out, yet: 3 since it */
    ck_assert_uint_eq(wake, UINT64_MAX);
    ck_assert_int_eq(batcher_done(b, slow.id, 0, 100), BATCHER_ACKED);
    ck_assert_int_eq(batcher_next(b, 100, &z, &wake), 1);
    ck_assert_uint_eq(z.base_sequence, 4);
    batcher_destroy(b);
}
END_TEST

/* Sends a one-record batch on partition p and acknowledges it: the producer id is known there. */
static void establish(struct batcher *b, uint32_t p, uint64_t now) {
    struct proto_record_in r = rec("e");
    struct batcher_batch bt;
    uint64_t wake;
    ck_assert_int_eq(batcher_add(b, p, &r, now), 0);
    ck_assert_int_eq(batcher_next(b, now + 1000, &bt, &wake), 1);
    ck_assert_int_eq(batcher_done(b, bt.id, 0, now + 1000), BATCHER_ACKED);
}

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

/* RQ_ESEQUENCE for a batch behind an unresolved one (Kafka's rule): not one of its retries; it
 * waits, unsent, until it is the head, and nothing behind it overtakes it. */
START_TEST(sequence_refusal_behind_an_earlier_batch_waits_uncounted) {
    struct batcher *b = make(1, 5, 1);   /* retries_max 3, back-off 10..35 */
    establish(b, 0, 0);                  /* sequence 0 */
    struct proto_record_in r = rec("s");
    for (int i = 0; i < 3; i++) ck_assert_int_eq(batcher_add(b, 0, &r, 0), 0);
    struct batcher_batch a, x, y;
    uint64_t wake, now = 2000;
    ck_assert_int_eq(batcher_next(b, now, &a, &wake), 1);
    ck_assert_int_eq(batcher_next(b, now, &x, &wake), 1);
    ck_assert_int_eq(batcher_next(b, now, &y, &wake), 1);
    ck_assert_uint_eq(a.base_sequence, 1);
    ck_assert_int_eq(batcher_done_retriable(b, x.id, RQ_ESEQUENCE, 1, now), BATCHER_RETRY);
    ck_assert_int_eq(batcher_done_retriable(b, y.id, RQ_ESEQUENCE, 1, now), BATCHER_RETRY);
    for (int i = 0; i < 3; i++) {   /* a times out again and again; x and y wait behind it */
        ck_assert_int_eq(batcher_done(b, a.id, RQ_ETIMEOUT, now), BATCHER_RETRY);
        ck_assert_int_eq(batcher_next(b, now, &a, &wake), 0);
        now = wake;
        ck_assert_int_eq(batcher_next(b, now, &a, &wake), 1);
        ck_assert_uint_eq(a.base_sequence, 1);
        ck_assert_int_eq(batcher_next(b, now, &x, &wake), 0);
        ck_assert_uint_eq(wake, UINT64_MAX);   /* only an answer moves them */
    }
    ck_assert_int_eq(batcher_done(b, a.id, 0, now), BATCHER_ACKED);
    ck_assert_int_eq(batcher_next(b, now, &x, &wake), 1);   /* the head now: at once */
    ck_assert_uint_eq(x.base_sequence, 2);
    ck_assert_uint_eq(x.attempt, 2);
    ck_assert_int_eq(batcher_next(b, now, &y, &wake), 0);   /* y stays behind x */
    /* x still has its retries_max: attempts 2..4 retry, the 5th (its 4th counted) fails. */
    for (uint32_t attempt = 2; attempt <= 5; attempt++) {
        ck_assert_uint_eq(x.attempt, attempt);
        enum batcher_outcome o = batcher_done(b, x.id, RQ_EBUSY, now);
        ck_assert_int_eq(o, attempt < 5 ? BATCHER_RETRY : BATCHER_FAILED);
        if (attempt == 2) {
            ck_assert_int_eq(batcher_next(b, now, &x, &wake), 0);
            ck_assert_uint_eq(wake, now + 10);   /* its first counted retry's back-off */
        }
        now += 100;
        if (attempt < 5) ck_assert_int_eq(batcher_next(b, now, &x, &wake), 1);
    }
    ck_assert_int_eq(batcher_next(b, now, &y, &wake), 1);   /* y is the head */
    ck_assert_uint_eq(y.base_sequence, 3);
    /* y's refusal comes after x's answer: y was sent behind x, so it still waits uncounted. */
    ck_assert_int_eq(batcher_add(b, 0, &r, now), 0);
    struct batcher_batch z;
    ck_assert_int_eq(batcher_next(b, now + 100, &z, &wake), 1);
    ck_assert_int_eq(batcher_done(b, y.id, 0, now), BATCHER_ACKED);
    ck_assert_int_eq(batcher_done_retriable(b, z.id, RQ_ESEQUENCE, 1, now), BATCHER_RETRY);
    ck_assert_int_eq(batcher_next(b, now + 100, &z, &wake), 1);   /* the head: at once */
    ck_assert_uint_eq(z.base_sequence, 4);
    ck_assert_int_eq(batcher_done(b, z.id, 0, now), BATCHER_ACKED);
    uint32_t partition;
    ck_assert_int_eq(batcher_producer_wanted(b, &partition), 0);
    batcher_destroy(b);
}
END_TEST

/* RQ_ESEQUENCE at the head: the partition's sequences broke. Nothing more is sent there; once
 * nothing is in flight it wants a new producer id, and batcher_producer_set numbers every batch it
 * holds again from 0 under that id. The other partition is untouched. */
START_TEST(sequence_refusal_at_the_head_wants_a_new_producer_id) {
    struct batcher *b = make(1, 5, 1);
    establish(b, 0, 0);
    struct proto_record_in r = rec("s");
    for (int i = 0; i < 4; i++) ck_assert_int_eq(batcher_add(b, 0, &r, 0), 0);
    struct batcher_batch a, x, y, z, other;
    uint64_t wake, now = 2000;
    uint32_t partition = 99;
    ck_assert_int_eq(batcher_next(b, now, &a, &wake), 1);
    ck_assert_int_eq(batcher_next(b, now, &x, &wake), 1);
    ck_assert_int_eq(batcher_done(b, a.id, RQ_ETOOBIG, now), BATCHER_FAILED);   /* a gap */
    /* x was sent while a was unresolved: not conclusive. It goes again, now as the head. */
    ck_assert_int_eq(batcher_done_retriable(b, x.id, RQ_ESEQUENCE, 1, now), BATCHER_RETRY);
    ck_assert_int_eq(batcher_producer_wanted(b, &partition), 0);
    ck_assert_int_eq(batcher_next(b, now, &x, &wake), 1);
    ck_assert_uint_eq(x.attempt, 2);
    ck_assert_uint_eq(x.base_sequence, 2);
    ck_assert_int_eq(batcher_done_retriable(b, x.id, RQ_ESEQUENCE, 1, now), BATCHER_RETRY);
    ck_assert_int_eq(batcher_producer_wanted(b, &partition), 1);
    ck_assert_uint_eq(partition, 0);
    ck_assert_int_eq(batcher_add(b, 1, &r, now), 0);
    ck_assert_int_eq(batcher_next(b, now + 1000, &other, &wake), 1);   /* partition 1 only */
    ck_assert_uint_eq(other.partition, 1);
    ck_assert_int_eq(batcher_next(b, now + 1000, &y, &wake), 0);
    batcher_producer_set(b, 0, 8);
    ck_assert_int_eq(batcher_producer_wanted(b, &partition), 0);
    now += 1000;
    ck_assert_int_eq(batcher_next(b, now, &x, &wake), 1);
    ck_assert_uint_eq(x.producer_id, 8);
    ck_assert_uint_eq(x.base_sequence, 0);
    ck_assert_int_eq(batcher_next(b, now, &y, &wake), 0);   /* the first under 8 goes alone */
    ck_assert_int_eq(batcher_done(b, x.id, 0, now), BATCHER_ACKED);
    ck_assert_int_eq(batcher_next(b, now, &y, &wake), 1);   /* never sent before */
    ck_assert_uint_eq(y.producer_id, 8);
    ck_assert_uint_eq(y.base_sequence, 1);
    ck_assert_int_eq(batcher_next(b, now, &z, &wake), 1);
    ck_assert_uint_eq(z.base_sequence, 2);
    ck_assert_int_eq(batcher_done(b, other.id, 0, now), BATCHER_ACKED);
    ck_assert_int_eq(batcher_add(b, 1, &r, now), 0);
    ck_assert_int_eq(batcher_next(b, now + 1000, &other, &wake), 1);
    ck_assert_uint_eq(other.producer_id, 7);
    ck_assert_uint_eq(other.base_sequence, 1);
    /* In flight when the head is refused: the id is wanted only once they are answered. */
    ck_assert_int_eq(batcher_done_retriable(b, y.id, RQ_ESEQUENCE, 1, now), BATCHER_RETRY);
    ck_assert_int_eq(batcher_producer_wanted(b, &partition), 0);   /* z is still out */
    ck_assert_int_eq(batcher_done_retriable(b, z.id, RQ_ESEQUENCE, 1, now), BATCHER_RETRY);
    ck_assert_int_eq(batcher_producer_wanted(b, &partition), 1);
    struct batcher_stats st;
    batcher_stats_get(b, &st);
    ck_assert_uint_eq(st.producer_resets, 1);
    ck_assert_uint_eq(st.failures, 1);
    batcher_destroy(b);
}
END_TEST

/* The default full batch — batch_records_max records holding batch_bytes_max bytes of keys and
 * values, with the largest timestamps — becomes one partition entry that fits one Raft entry
 * (RAFT_ENTRY_DATA_MAX). A 256 KiB default did not, and every full batch failed with RQ_ETOOBIG
 * at the broker (found by the cluster benchmark). */
START_TEST(a_default_full_batch_fits_one_raft_entry) {
    struct batcher_config cfg;
    batcher_config_default(&cfg);
    static uint8_t value[1 << 16], req_buf[RAFT_ENTRY_DATA_MAX * 2], entry[RAFT_ENTRY_DATA_MAX];
    static struct proto_record_in recs[PROTO_RECORDS_MAX];
    uint32_t n = cfg.batch_records_max, each = cfg.batch_bytes_max / n;
    memset(value, 'v', sizeof value);
    for (uint32_t i = 0; i < n; i++)
        recs[i] = (struct proto_record_in){.timestamp = UINT64_MAX, .key = {value, 8},
                                          .value = {value, each - 8}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = PROTO_ACKS_ALL,
                                    .producer_id = UINT64_MAX >> 1, .base_sequence = UINT64_MAX >> 2,
                                    .records = {.count = n}};
    size_t size = proto_encode_produce_req(req_buf, sizeof req_buf, &req, recs);
    ck_assert_uint_gt(size, 0);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, req_buf, size, &m), 0);
    size_t e = partition_entry_encode(entry, sizeof entry, UINT64_MAX >> 2, UINT64_MAX >> 1,
                                      UINT64_MAX >> 2, UINT64_MAX, &m.u.produce_req.records);
    ck_assert_uint_gt(e, 0);   /* 0: it did not fit */
    ck_assert_uint_le(e, RAFT_ENTRY_DATA_MAX);
}
END_TEST

int main(void) {
    Suite *s = suite_create("batcher");
    TCase *tc = tcase_create("producer");
    tcase_add_test(tc, full_batches_go_at_once_and_partial_ones_linger_while_others_are_out);
    tcase_add_test(tc, in_flight_bound_and_fifo);
    tcase_add_test(tc, retries_back_off_then_fail);
    tcase_add_test(tc, idempotent_sequences_are_kept_by_retries);
    tcase_add_test(tc, idempotent_window_counts_from_the_oldest_unresolved_batch);
    tcase_add_test(tc, bounds_and_copies);
    tcase_add_test(tc, sequence_refusal_behind_an_earlier_batch_waits_uncounted);
    tcase_add_test(tc, sequence_refusal_at_the_head_wants_a_new_producer_id);
    tcase_add_test(tc, a_default_full_batch_fits_one_raft_entry);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
