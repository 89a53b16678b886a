/* A client's view of the cluster (src/client/metadata.c): filled from METADATA_RESP answers as
 * they come off the wire, corrected by leader hints, stale on time or when found wrong; the key
 * partitioner is a fixed function (pinned values), keyless records go round-robin per batch; the
 * bounds take what fits and count the rest. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/errors.h"
#include "client/metadata.h"
#include "tests/unit/suite_main.h"

static struct proto_bytes s(const char *text) {
    return (struct proto_bytes){(const uint8_t *)text, (uint32_t)strlen(text)};
}

/* Encodes and decodes a METADATA_RESP: brokers 1..3, topic "orders" of 3 partitions led by
 * 1, 2, 3 (replicas: the leader and the next broker), and topic "gone" with RQ_ENOTOPIC. */
static void apply_answer(struct metadata *md, uint64_t now, uint32_t leader_of_0) {
    static uint8_t buf[4096];
    struct proto_broker brokers[] = {{1, s("10.0.0.1:7000"), 0}, {2, s("10.0.0.2:7000"), 0},
                                     {3, s("10.0.0.3:7000"), 0}};
    struct proto_topic topics[] = {{.name = s("orders"), .partition_count = 3},
                                   {.name = s("gone"), .error = RQ_ENOTOPIC}};
    struct proto_partition parts[] = {{0, leader_of_0, 2, {1, 2}}, {1, 2, 2, {2, 3}},
                                      {2, 3, 2, {3, 1}}};
    size_t n = proto_encode_metadata_resp(buf, sizeof buf, 2, brokers, 3, topics, 2, parts);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_METADATA_RESP, buf, n, &m), 0);
    ck_assert_uint_eq(metadata_update(md, &m.u.metadata_resp, now), 0);
}

START_TEST(answers_fill_the_view) {
    struct metadata *md = metadata_create(1000);
    ck_assert(metadata_stale(md, 0));
    apply_answer(md, 10, 1);
    ck_assert(!metadata_stale(md, 10));
    ck_assert(metadata_stale(md, 1010));   /* max age */
    ck_assert_uint_eq(metadata_partitions(md, s("orders")), 3);
    ck_assert_uint_eq(metadata_partitions(md, s("gone")), 0);
    ck_assert_uint_eq(metadata_partitions(md, s("nope")), 0);
    ck_assert_uint_eq(metadata_leader(md, s("orders"), 1), 2);
    ck_assert_uint_eq(metadata_leader(md, s("orders"), 3), 0);
    ck_assert_uint_eq(metadata_controller(md), 2);
    size_t size;
    const char *a = metadata_address(md, 3, &size);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a, "10.0.0.3:7000");
    ck_assert_ptr_null(metadata_address(md, 9, &size));
    apply_answer(md, 20, 2);   /* a newer answer replaces the view */
    ck_assert_uint_eq(metadata_leader(md, s("orders"), 0), 2);
    metadata_destroy(md);
}
END_TEST

START_TEST(leader_hints_correct_the_view) {
    struct metadata *md = metadata_create(1000);
    apply_answer(md, 0, 1);
    metadata_not_leader(md, s("orders"), 0, 2);   /* a replica: believed */
    ck_assert_uint_eq(metadata_leader(md, s("orders"), 0), 2);
    ck_assert(metadata_stale(md, 1));               /* and confirmed by the next refresh */
    metadata_not_leader(md, s("orders"), 0, 3);   /* not a replica: unknown until refreshed */
    ck_assert_uint_eq(metadata_leader(md, s("orders"), 0), 0);
    metadata_not_leader(md, s("orders"), 7, 3);   /* no such partition: only stale */
    apply_answer(md, 2, 1);
    ck_assert(!metadata_stale(md, 2));
    metadata_destroy(md);
}
END_TEST

/* The key partitioner is CRC32C(key) mod n: pinned, since every client must agree forever. */
START_TEST(keys_and_round_robin) {
    struct metadata *md = metadata_create(1000);
    apply_answer(md, 0, 1);
    ck_assert_int_eq(metadata_partition_for_key(md, s("orders"), s("123456789")),
                     0xE3069283u % 3);   /* CRC32C's check value */
    ck_assert_int_eq(metadata_partition_for_key(md, s("orders"), s("user-17")),
                     metadata_partition_for_key(md, s("orders"), s("user-17")));
    ck_assert_int_eq(metadata_partition_for_key(md, s("gone"), s("k")), RQ_ENOTOPIC);
    ck_assert_int_eq(metadata_partition_for_key(md, s("orders"), s("")), RQ_EINVAL);
    for (int64_t want = 0; want < 7; want++) {
        ck_assert_int_eq(metadata_sticky_partition(md, s("orders")), want % 3);
        metadata_next_partition(md, s("orders"));
    }
    ck_assert_int_eq(metadata_sticky_partition(md, s("nope")), RQ_ENOTOPIC);
    metadata_destroy(md);
}
END_TEST

/* More topics than fit: the first METADATA_TOPICS_MAX are kept, the rest counted. */
START_TEST(bounds_take_what_fits) {
    enum { N = METADATA_TOPICS_MAX + 3 };
    static char names[N][16];
    static struct proto_topic topics[N];
    static struct proto_partition parts[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "t%d", i);
        topics[i] = (struct proto_topic){.name = s(names[i]), .partition_count = 1};
        parts[i] = (struct proto_partition){0, 1, 1, {1}};
    }
    static uint8_t buf[1 << 16];
    struct proto_broker b = {1, s("h"), 0};
    size_t n = proto_encode_metadata_resp(buf, sizeof buf, 1, &b, 1, topics, N, parts);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_METADATA_RESP, buf, n, &m), 0);
    struct metadata *md = metadata_create(1000);
    ck_assert_uint_eq(metadata_update(md, &m.u.metadata_resp, 0), 3);
    ck_assert_uint_eq(metadata_partitions(md, s("t0")), 1);
    ck_assert_uint_eq(metadata_partitions(md, s(names[N - 1])), 0);
    metadata_destroy(md);
}
END_TEST

int main(void) {
    Suite *su = suite_create("metadata");
    TCase *tc = tcase_create("client view");
    tcase_add_test(tc, answers_fill_the_view);
    tcase_add_test(tc, leader_hints_correct_the_view);
    tcase_add_test(tc, keys_and_round_robin);
    tcase_add_test(tc, bounds_take_what_fits);
    suite_add_tcase(su, tc);
    return run_suites(srunner_create(su));
}
