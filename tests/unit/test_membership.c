/* A Raft group's configuration (src/raft/membership.c): its encoding byte for byte, round trips,
 * and every malformed encoding refused, as a table. The decoder reads a CONFIG entry's data and a
 * snapshot's configuration blob, so anything it accepts must be a configuration the encoder could
 * have written. */
#include <check.h>
#include <string.h>

#include "base/errors.h"
#include "raft/membership.h"
#include "tests/unit/suite_main.h"

START_TEST(known_encoding) {
    struct raft_membership m = {.count = 3, .ids = {1, 2, 300}, .voter = {1, 1, 0}};
    uint8_t buf[RAFT_MEMBERSHIP_SIZE_MAX];
    size_t n = raft_membership_encode(&m, buf);
    static const uint8_t want[] = {1, 3, 1, 0, 0, 0, 1, 2, 0, 0, 0, 1, 0x2C, 1, 0, 0, 0};
    ck_assert_uint_eq(n, sizeof want);
    ck_assert_mem_eq(buf, want, sizeof want);
    struct raft_membership got;
    ck_assert_int_eq(raft_membership_decode(buf, n, &got), 0);
    ck_assert_uint_eq(got.count, 3);
    ck_assert_uint_eq(got.ids[2], 300);
    ck_assert_uint_eq(got.voter[2], 0);
    ck_assert_uint_eq(raft_membership_voters(&got), 2);
    ck_assert(raft_membership_is_voter(&got, 2));
    ck_assert(!raft_membership_is_voter(&got, 300));
    ck_assert(!raft_membership_is_voter(&got, 4));
    ck_assert_uint_eq(raft_membership_slot(&got, 4), RAFT_MEMBERS_MAX);
    char desc[64];
    ck_assert_str_eq(raft_membership_describe(&got, desc, sizeof desc), "n1 n2 +n300");
}
END_TEST

START_TEST(largest_round_trips) {
    struct raft_membership m = {.count = RAFT_MEMBERS_MAX};
    for (uint32_t i = 0; i < m.count; i++) {
        m.ids[i] = UINT32_MAX - i;
        m.voter[i] = (uint8_t)(i % 2);
    }
    uint8_t buf[RAFT_MEMBERSHIP_SIZE_MAX];
    size_t n = raft_membership_encode(&m, buf);
    ck_assert_uint_eq(n, RAFT_MEMBERSHIP_SIZE_MAX);
    struct raft_membership got;
    ck_assert_int_eq(raft_membership_decode(buf, n, &got), 0);
    ck_assert_int_eq(memcmp(&got, &m, sizeof m), 0);
}
END_TEST

struct bad {
    const char *name;
    uint8_t bytes[24];
    size_t len;
};

/* One member: version 1, count 1, id 7, voter. Rows break one thing each. */
static const struct bad bads[] = {
    {"empty", {0}, 0},
    {"version only", {1}, 1},
    {"version 0", {0, 1, 7, 0, 0, 0, 1}, 7},
    {"version 2", {2, 1, 7, 0, 0, 0, 1}, 7},
    {"count 0", {1, 0}, 2},
    {"count 10", {1, 10, 7, 0, 0, 0, 1}, 7},
    {"a member cut short", {1, 1, 7, 0, 0, 0}, 6},
    {"a trailing byte", {1, 1, 7, 0, 0, 0, 1, 0}, 8},
    {"id 0", {1, 1, 0, 0, 0, 0, 1}, 7},
    {"voter flag 2", {1, 1, 7, 0, 0, 0, 2}, 7},
    {"no voter", {1, 1, 7, 0, 0, 0, 0}, 7},
    {"an id twice", {1, 2, 7, 0, 0, 0, 1, 7, 0, 0, 0, 0}, 12},
};

START_TEST(malformed_is_refused) {
    const struct bad *b = &bads[_i];
    struct raft_membership m = {.count = 1, .ids = {99}, .voter = {1}};
    ck_assert_msg(raft_membership_decode(b->bytes, b->len, &m) == RQ_ECORRUPT, "%s", b->name);
    ck_assert_msg(m.count == 1 && m.ids[0] == 99, "%s: the output was touched", b->name);
}
END_TEST

START_TEST(valid_single_member) {
    static const uint8_t bytes[] = {1, 1, 7, 0, 0, 0, 1};
    struct raft_membership m;
    ck_assert_int_eq(raft_membership_decode(bytes, sizeof bytes, &m), 0);
    ck_assert_uint_eq(m.count, 1);
    ck_assert_uint_eq(m.ids[0], 7);
}
END_TEST

int main(void) {
    Suite *s = suite_create("membership");
    TCase *tc = tcase_create("codec");
    tcase_add_test(tc, known_encoding);
    tcase_add_test(tc, largest_round_trips);
    tcase_add_test(tc, valid_single_member);
    tcase_add_loop_test(tc, malformed_is_refused, 0, (int)(sizeof bads / sizeof bads[0]));
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
