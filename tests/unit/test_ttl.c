/* Per-message TTL (src/broker/ttl.c): the TTL header read strictly (a number of milliseconds in
 * range, at most one, no other reserved "raftq-" header), expiry at exactly the TTL after the
 * batch became visible, and the placeholder an expired record is read as: recognised, carrying
 * the original's timestamp and nothing else. */
#include <check.h>
#include <string.h>

#include "base/errors.h"
#include "broker/ttl.h"
#include "proto/msg.h"
#include "tests/unit/suite_main.h"

/* Decodes one record with the given headers into *out (pointing into buf). */
static void record_with(uint8_t *buf, size_t cap, const struct proto_header *h, uint32_t n,
                        struct proto_record *out) {
    struct proto_record_in in = {.timestamp = 9, .value = {(const uint8_t *)"v", 1},
                                 .header_count = n, .headers = h};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = PROTO_ACKS_ALL,
                                    .records = {.count = 1}};
    size_t size = proto_encode_produce_req(buf, cap, &req, &in);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, buf, size, &m), 0);
    size_t cursor = 0;
    ck_assert(proto_record_next(&m.u.produce_req.records, &cursor, out));
    ck_assert_int_eq(ttl_check_records(&m.u.produce_req.records) == 0,
                     ttl_of(out, &(uint64_t){0}) >= 0);
}

static struct proto_header header(const char *name, const char *value) {
    return (struct proto_header){{(const uint8_t *)name, (uint32_t)strlen(name)},
                                 {(const uint8_t *)value, (uint32_t)strlen(value)}};
}

START_TEST(the_ttl_header_is_read_strictly) {
    static const struct {
        const char *name, *value;
        int want;
        uint64_t ms;
    } rows[] = {
        {RQ_HEADER_TTL, "1500", 1, 1500},
        {RQ_HEADER_TTL, "31622400000", 1, 31622400000ull},   /* 366 days */
        {"other", "x", 0, 0},
        {RQ_HEADER_TTL, "0", RQ_EINVAL, 0},
        {RQ_HEADER_TTL, "", RQ_EINVAL, 0},
        {RQ_HEADER_TTL, "12a", RQ_EINVAL, 0},
        {RQ_HEADER_TTL, "-5", RQ_EINVAL, 0},
        {RQ_HEADER_TTL, "31622400001", RQ_EINVAL, 0},
        {RQ_HEADER_TTL, "99999999999999999999999", RQ_EINVAL, 0},
        {RQ_HEADER_EXPIRED, "", RQ_EINVAL, 0},   /* only brokers write placeholders */
        {"raftq-anything", "1", RQ_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint8_t buf[256];
        struct proto_header h = header(rows[i].name, rows[i].value);
        struct proto_record r;
        record_with(buf, sizeof buf, &h, 1, &r);
        uint64_t ms = 7;
        ck_assert_msg(ttl_of(&r, &ms) == rows[i].want, "row %zu", i);
        if (rows[i].want == 1) ck_assert_uint_eq(ms, rows[i].ms);
    }
    uint8_t buf[256];
    struct proto_header two[2] = {header(RQ_HEADER_TTL, "5"), header(RQ_HEADER_TTL, "6")};
    struct proto_record r;
    record_with(buf, sizeof buf, two, 2, &r);
    uint64_t ms;
    ck_assert_int_eq(ttl_of(&r, &ms), RQ_EINVAL);   /* twice */
}
END_TEST

START_TEST(expiry_is_exactly_the_ttl_after_visibility) {
    uint8_t buf[256];
    struct proto_header h = header(RQ_HEADER_TTL, "2");
    struct proto_record r;
    record_with(buf, sizeof buf, &h, 1, &r);
    ck_assert(!ttl_expired(&r, 1000, 1000));
    ck_assert(!ttl_expired(&r, 1000, 1000 + 1999999));
    ck_assert(ttl_expired(&r, 1000, 1000 + 2000000));
    ck_assert(!ttl_expired(&r, 5000, 1000));   /* a reader's clock behind the stamp: not yet */
    struct proto_record plain;
    record_with(buf, sizeof buf, NULL, 0, &plain);
    ck_assert(!ttl_expired(&plain, 0, UINT64_MAX));
}
END_TEST

START_TEST(placeholders) {
    uint8_t ph[TTL_PLACEHOLDER_MAX];
    size_t n = ttl_placeholder(ph, UINT64_MAX);   /* the longest timestamp fits */
    ck_assert_uint_le(n, TTL_PLACEHOLDER_MAX);
    n = ttl_placeholder(ph, 123);
    struct proto_records rs;
    ck_assert_int_eq(proto_records_decode(ph, n, 1, 0, &rs), 0);
    size_t cursor = 0;
    struct proto_record r;
    ck_assert(proto_record_next(&rs, &cursor, &r));
    ck_assert(ttl_is_placeholder(&r));
    ck_assert_uint_eq(r.timestamp, 123);
    ck_assert_uint_eq(r.key.size + r.value.size, 0);
    uint8_t buf[256];
    struct proto_header h = header(RQ_HEADER_TTL, "5");
    record_with(buf, sizeof buf, &h, 1, &r);
    ck_assert(!ttl_is_placeholder(&r));
}
END_TEST

int main(void) {
    Suite *s = suite_create("ttl");
    TCase *tc = tcase_create("ttl");
    tcase_add_test(tc, the_ttl_header_is_read_strictly);
    tcase_add_test(tc, expiry_is_exactly_the_ttl_after_visibility);
    tcase_add_test(tc, placeholders);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
