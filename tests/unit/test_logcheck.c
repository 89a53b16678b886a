/* The log checker judged on hand-written histories: it must accept every outcome a correct store
 * may produce after a crash, and fire on every violation (a checker that never fires proves
 * nothing). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sim/logcheck.h"
#include "tests/unit/suite_main.h"

/* A recovered log for the judge: entries given as (index, term, payload string). */
struct rec {
    uint64_t index;
    uint64_t term;
    const char *payload;
};
struct recovered {
    const struct rec *entries;
    uint64_t count;
};

static void get_entry(void *arg, uint64_t k, uint64_t *index, uint64_t *term, const uint8_t **payload,
                      size_t *len) {
    const struct recovered *r = arg;
    *index = r->entries[k].index;
    *term = r->entries[k].term;
    *payload = (const uint8_t *)r->entries[k].payload;
    *len = strlen(r->entries[k].payload);
}

static uint64_t app(struct logcheck *c, uint64_t index, uint64_t term, const char *p, int durable) {
    uint64_t seq = logcheck_append(c, 0, index, term, p, strlen(p));
    ck_assert_uint_gt(seq, 0);
    if (durable) logcheck_durable(c, 0, seq);
    return seq;
}

static void cut_from(struct logcheck *c, uint64_t from, int durable) {
    uint64_t seq = logcheck_truncate(c, 0, from);
    if (durable) logcheck_durable(c, 0, seq);
}

static int judge(struct logcheck *c, uint64_t first, const struct rec *entries, uint64_t count, char *why) {
    struct recovered r = {entries, count};
    why[0] = '\0';
    return logcheck_judge(c, 0, first, count, get_entry, &r, why);
}

/* 1..3 appended (term 1), all durable */
static struct logcheck *three_durable(void) {
    struct logcheck *c = logcheck_create(1);
    app(c, 1, 1, "a", 1);
    app(c, 2, 1, "b", 1);
    app(c, 3, 1, "c", 1);
    return c;
}

START_TEST(accepts_the_exact_durable_log) {
    struct logcheck *c = three_durable();
    struct rec r[] = {{1, 1, "a"}, {2, 1, "b"}, {3, 1, "c"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 1, r, 3, why), 0);
    logcheck_destroy(c);
}
END_TEST

START_TEST(fires_on_a_lost_durable_entry) {
    struct logcheck *c = three_durable();
    struct rec r[] = {{1, 1, "a"}, {2, 1, "b"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 1, r, 2, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "lost"));
    ck_assert_int_eq(judge(c, 1, r, 0, why), -1);  /* an empty log loses all three */
    logcheck_destroy(c);
}
END_TEST

START_TEST(unacknowledged_entries_may_survive_or_vanish) {
    struct logcheck *c = logcheck_create(1);
    app(c, 1, 1, "a", 1);
    app(c, 2, 1, "b", 0);
    struct rec r[] = {{1, 1, "a"}, {2, 1, "b"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 1, r, 1, why), 0);
    ck_assert_int_eq(judge(c, 1, r, 2, why), 0);
    logcheck_destroy(c);
}
END_TEST

START_TEST(fires_on_changed_bytes_or_term) {
    struct logcheck *c = three_durable();
    struct rec bytes[] = {{1, 1, "a"}, {2, 1, "B"}, {3, 1, "c"}};
    struct rec term[] = {{1, 1, "a"}, {2, 2, "b"}, {3, 1, "c"}};
    struct rec shorter[] = {{1, 1, "a"}, {2, 1, ""}, {3, 1, "c"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 1, bytes, 3, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "matches no append"));
    ck_assert_int_eq(judge(c, 1, term, 3, why), -1);
    ck_assert_int_eq(judge(c, 1, shorter, 3, why), -1);  /* half-present */
    logcheck_destroy(c);
}
END_TEST

START_TEST(fires_on_an_invented_entry_and_on_a_hole) {
    struct logcheck *c = three_durable();
    struct rec extra[] = {{1, 1, "a"}, {2, 1, "b"}, {3, 1, "c"}, {4, 1, "d"}};
    struct rec hole[] = {{1, 1, "a"}, {3, 1, "c"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 1, extra, 4, why), -1);
    ck_assert_int_eq(judge(c, 1, hole, 2, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "hole"));
    logcheck_destroy(c);
}
END_TEST

START_TEST(a_durable_truncation_never_comes_undone) {
    struct logcheck *c = three_durable();
    cut_from(c, 2, 1);
    app(c, 2, 2, "B", 1);
    struct rec old[] = {{1, 1, "a"}, {2, 1, "b"}, {3, 1, "c"}};
    struct rec old_tail[] = {{1, 1, "a"}, {2, 2, "B"}, {3, 1, "c"}};
    struct rec now[] = {{1, 1, "a"}, {2, 2, "B"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 1, old, 3, why), -1);
    ck_assert_ptr_nonnull(strstr(why, "reappeared"));
    ck_assert_int_eq(judge(c, 1, old_tail, 3, why), -1);  /* entry 3 was truncated too */
    ck_assert_int_eq(judge(c, 1, now, 2, why), 0);
    logcheck_destroy(c);
}
END_TEST

START_TEST(an_unacknowledged_truncation_may_or_may_not_have_happened) {
    struct logcheck *c = three_durable();
    cut_from(c, 2, 0);
    app(c, 2, 2, "B", 0);
    struct rec before[] = {{1, 1, "a"}, {2, 1, "b"}, {3, 1, "c"}};
    struct rec cut[] = {{1, 1, "a"}};
    struct rec after[] = {{1, 1, "a"}, {2, 2, "B"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 1, before, 3, why), 0);
    ck_assert_int_eq(judge(c, 1, cut, 1, why), 0);
    ck_assert_int_eq(judge(c, 1, after, 2, why), 0);
    logcheck_destroy(c);
}
END_TEST

START_TEST(a_durable_overwrite_kills_the_older_entry_even_if_its_truncation_was_not_acked) {
    struct logcheck *c = three_durable();
    cut_from(c, 2, 0);
    app(c, 2, 2, "B", 1);  /* durable: the truncation must have happened */
    struct rec old[] = {{1, 1, "a"}, {2, 1, "b"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 1, old, 2, why), -1);
    logcheck_destroy(c);
}
END_TEST

START_TEST(a_compacted_prefix_is_not_judged_and_settle_bounds_memory) {
    struct logcheck *c = three_durable();
    struct rec tail[] = {{3, 1, "c"}};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(judge(c, 3, tail, 1, why), 0);
    struct recovered r = {tail, 1};
    logcheck_settle(c, 0, 3, 1, get_entry, &r);
    /* after settling, the recovered log is the durable truth */
    ck_assert_int_eq(judge(c, 3, tail, 0, why), -1);
    ck_assert_int_eq(judge(c, 3, tail, 1, why), 0);
    logcheck_destroy(c);
}
END_TEST

START_TEST(groups_are_independent) {
    struct logcheck *c = logcheck_create(2);
    uint64_t s = logcheck_append(c, 1, 1, 1, "x", 1);
    logcheck_durable(c, 1, s);
    struct rec r[] = {{1, 1, "x"}};
    struct recovered rr = {r, 1};
    char why[LOGCHECK_WHY_MAX];
    ck_assert_int_eq(logcheck_judge(c, 0, 1, 0, get_entry, &rr, why), 0);  /* group 0: nothing */
    ck_assert_int_eq(logcheck_judge(c, 1, 1, 0, get_entry, &rr, why), -1); /* group 1 lost x */
    ck_assert_int_eq(logcheck_judge(c, 1, 1, 1, get_entry, &rr, why), 0);
    logcheck_destroy(c);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("logcheck");
    TCase *tc = tcase_create("judge");
    tcase_add_test(tc, accepts_the_exact_durable_log);
    tcase_add_test(tc, fires_on_a_lost_durable_entry);
    tcase_add_test(tc, unacknowledged_entries_may_survive_or_vanish);
    tcase_add_test(tc, fires_on_changed_bytes_or_term);
    tcase_add_test(tc, fires_on_an_invented_entry_and_on_a_hole);
    tcase_add_test(tc, a_durable_truncation_never_comes_undone);
    tcase_add_test(tc, an_unacknowledged_truncation_may_or_may_not_have_happened);
    tcase_add_test(tc, a_durable_overwrite_kills_the_older_entry_even_if_its_truncation_was_not_acked);
    tcase_add_test(tc, a_compacted_prefix_is_not_judged_and_settle_bounds_memory);
    tcase_add_test(tc, groups_are_independent);
    suite_add_tcase(suite, tc);
    return run_suites(srunner_create(suite));
}
