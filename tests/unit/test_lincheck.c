/* The register linearizability checker judged on hand-written histories (a table: one row per
 * scenario), on long histories generated from a sequential run (valid, then corrupted), and
 * against a brute-force search on many small random histories. A checker that never fires
 * proves nothing, so every kind of violation has a row. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "sim/lincheck.h"
#include "tests/unit/suite_main.h"

#define NEVER UINT64_MAX
#define W(cl, op_id, inv, comp, val)                                                               \
    {                                                                                              \
        .invoke_ns = (inv), .complete_ns = (comp), .is_write = 1, .value = (val), .client = (cl),  \
        .id = (op_id)                                                                              \
    }
#define R(cl, op_id, inv, comp, val)                                                               \
    {                                                                                              \
        .invoke_ns = (inv), .complete_ns = (comp), .is_write = 0, .value = (val), .client = (cl),  \
        .id = (op_id)                                                                              \
    }

enum { CASE_OPS_MAX = 8, BUDGET = 1000000 };

struct lc_case {
    const char *name;
    uint64_t initial;
    uint32_t count;
    struct lincheck_op ops[CASE_OPS_MAX];
    enum lincheck_result expect;
};

/* One scenario per row: name; initial value, op count, ops, verdict. */
/* clang-format off */
static const struct lc_case cases[] = {
    {"empty history",
     0, 0, {{0}}, LINCHECK_OK},
    {"write then read",
     0, 2, {W(1, 1, 0, 10, 1), R(2, 1, 20, 30, 1)}, LINCHECK_OK},
    {"read of the initial value",
     7, 1, {R(1, 1, 0, 10, 7)}, LINCHECK_OK},
    {"read of a never-written value",
     0, 1, {R(1, 1, 0, 10, 5)}, LINCHECK_VIOLATION},
    {"stale read after a completed write",
     0, 2, {W(1, 1, 0, 10, 1), R(2, 1, 20, 30, 0)}, LINCHECK_VIOLATION},
    {"read concurrent with a write sees the new value",
     0, 2, {W(1, 1, 0, 100, 1), R(2, 1, 10, 50, 1)}, LINCHECK_OK},
    {"read concurrent with a write sees the old value",
     0, 2, {W(1, 1, 0, 100, 1), R(2, 1, 10, 50, 0)}, LINCHECK_OK},
    {"times that touch are concurrent",
     0, 2, {W(1, 1, 0, 10, 1), R(2, 1, 10, 20, 0)}, LINCHECK_OK},
    {"unknown write observed later",
     0, 2, {W(1, 1, 0, NEVER, 1), R(2, 1, 50, 60, 1)}, LINCHECK_OK},
    {"unknown write never observed",
     0, 2, {W(1, 1, 0, NEVER, 1), R(2, 1, 50, 60, 0)}, LINCHECK_OK},
    {"unknown write takes effect late",
     0, 3, {W(1, 1, 0, NEVER, 1), R(2, 1, 10, 20, 0), R(2, 2, 30, 40, 1)}, LINCHECK_OK},
    {"unknown write observed, then the older value comes back",
     0, 4, {W(1, 1, 0, 10, 1), W(2, 1, 20, NEVER, 2), R(3, 1, 30, 40, 2), R(3, 2, 50, 60, 1)},
     LINCHECK_VIOLATION},
    {"unknown write observed, then the initial value comes back",
     0, 3, {W(1, 1, 0, NEVER, 1), R(2, 1, 10, 20, 1), R(2, 2, 30, 40, 0)}, LINCHECK_VIOLATION},
    {"unknown write cannot act before its invocation",
     0, 2, {R(2, 1, 0, 10, 1), W(1, 1, 20, NEVER, 1)}, LINCHECK_VIOLATION},
    {"unanswered read is ignored",
     0, 2, {R(1, 1, 0, NEVER, 99), R(2, 1, 5, 10, 0)}, LINCHECK_OK},
    /* Herlihy & Wing: two reads, both concurrent with the second of two writes, see 2 then 1;
     * the first write finished before the first read began, so 1 cannot come back. */
    {"two reads see two writes in an impossible order",
     0, 4, {W(1, 1, 0, 20, 1), W(2, 1, 10, 100, 2), R(3, 1, 30, 40, 2), R(3, 2, 50, 60, 1)},
     LINCHECK_VIOLATION},
    {"two reads see two concurrent writes in either order",
     0, 4, {W(1, 1, 0, 100, 1), W(2, 1, 0, 100, 2), R(3, 1, 30, 40, 2), R(3, 2, 50, 60, 1)},
     LINCHECK_OK},
    {"readers disagree on the order of two concurrent writes",
     0, 6, {W(1, 1, 0, 100, 1), W(2, 1, 0, 100, 2), R(3, 1, 10, 20, 1), R(3, 2, 30, 40, 2),
            R(4, 1, 10, 20, 2), R(4, 2, 30, 40, 1)},
     LINCHECK_VIOLATION},
    /* The same set of ops placed in two orders leaves two values: the cache must tell them
     * apart (the search tries the first-invoked write first). */
    {"two concurrent writes, the later-invoked one took effect first",
     0, 3, {W(1, 1, 0, 10, 1), W(2, 1, 1, 10, 2), R(3, 1, 20, 30, 1)}, LINCHECK_OK},
    {"a value written twice may be read after the second write",
     0, 4, {W(1, 1, 0, 10, 1), W(1, 2, 20, 30, 2), W(1, 3, 40, 50, 1), R(2, 1, 60, 70, 1)},
     LINCHECK_OK},
    {"unknown write repeating an older value",
     0, 4, {W(1, 1, 0, 10, 1), W(1, 2, 20, 30, 2), W(2, 1, 40, NEVER, 1), R(3, 1, 60, 70, 1)},
     LINCHECK_OK},
    {"ops given out of order",
     0, 3, {R(2, 2, 50, 60, 2), W(1, 1, 0, 10, 1), W(1, 2, 20, 30, 2)}, LINCHECK_OK},
};
/* clang-format on */

START_TEST(table) {
    const struct lc_case *c = &cases[_i];
    char why[LINCHECK_WHY_MAX];
    enum lincheck_result r =
        lincheck_register(c->ops, c->count, c->initial, BUDGET, why, sizeof why);
    ck_assert_msg(r == c->expect, "%s: got %d, expected %d (%s)", c->name, r, c->expect, why);
    if (r == LINCHECK_OK) ck_assert_str_eq(why, "");
    if (r == LINCHECK_VIOLATION) ck_assert_uint_gt(strlen(why), 0);
}
END_TEST

START_TEST(why_names_the_op) {
    struct lincheck_op ops[] = {W(4, 17, 100, 200, 1), R(3, 42, 300, 400, 0)};
    char why[LINCHECK_WHY_MAX];
    ck_assert_int_eq(lincheck_register(ops, 2, 0, BUDGET, why, sizeof why), LINCHECK_VIOLATION);
    ck_assert_msg(strstr(why, "read by client 3 id 42 returning 0") != NULL, "%s", why);
    ck_assert_msg(strstr(why, "invoked 300 ns, completed 400 ns") != NULL, "%s", why);
    ck_assert_int_eq(lincheck_register(ops, 2, 0, BUDGET, why, 16), LINCHECK_VIOLATION);
    ck_assert_uint_eq(strlen(why), 15); /* truncated, terminated */
    ck_assert_int_eq(lincheck_register(ops, 2, 0, BUDGET, NULL, 0), LINCHECK_VIOLATION);
}
END_TEST

/* ---- generated histories ---------------------------------------------------------------- */

enum { GEN_OPS_MAX = 2000, GEN_CLIENTS = 8 };

struct lin_point {
    uint64_t at_ns;
    uint32_t op;
};

static int cmp_point(const void *a, const void *b) {
    const struct lin_point *x = a, *y = b;
    if (x->at_ns != y->at_ns) return x->at_ns < y->at_ns ? -1 : 1;
    return (x->op > y->op) - (x->op < y->op);
}

/* The client that is free first (lowest index on ties). */
static uint32_t next_client(const uint64_t *free_ns, uint32_t clients) {
    uint32_t best = 0;
    for (uint32_t c = 1; c < clients; c++) {
        if (free_ns[c] < free_ns[best]) best = c;
    }
    return best;
}

/* One op of client c: an interval, a linearization point inside it (or, for a write whose
 * answer is lost, anywhere after its invocation, or never: effect = 0). */
static void gen_op(struct rq_rng *rng, uint32_t c, uint64_t *free_ns, uint32_t k,
                   struct lincheck_op *op, struct lin_point *lp, int *effect) {
    uint64_t invoke = free_ns[c] + rq_rng_below(rng, 20);
    uint64_t latency = rq_rng_range(rng, 1, 100);
    *op = (struct lincheck_op){
        .invoke_ns = invoke, .complete_ns = invoke + latency, .client = c, .id = k};
    op->is_write = (uint8_t)rq_rng_chance(rng, 400000);
    op->value = op->is_write ? k + 1 : 0; /* unique, never the initial value 0 */
    *lp = (struct lin_point){.at_ns = invoke + rq_rng_below(rng, latency + 1), .op = k};
    *effect = 1;
    free_ns[c] = op->complete_ns;
    if (!rq_rng_chance(rng, 50000)) return;
    op->complete_ns = NEVER; /* the answer is lost; the client times out and moves on */
    free_ns[c] = invoke + 100;
    *effect = op->is_write && rq_rng_chance(rng, 500000);
    lp->at_ns = invoke + rq_rng_below(rng, 1000);
}

/* A valid history: ops on `clients` clients, values from running them in linearization order. */
static void gen_history(uint64_t seed, uint32_t count, struct lincheck_op *ops) {
    static struct lin_point points[GEN_OPS_MAX];
    static int effect[GEN_OPS_MAX];
    ck_assert_uint_le(count, GEN_OPS_MAX);
    struct rq_rng rng;
    rq_rng_seed(&rng, seed);
    uint64_t free_ns[GEN_CLIENTS] = {0};
    for (uint32_t k = 0; k < count; k++) {
        uint32_t c = next_client(free_ns, GEN_CLIENTS);
        gen_op(&rng, c, free_ns, k, &ops[k], &points[k], &effect[k]);
    }
    qsort(points, count, sizeof *points, cmp_point);
    uint64_t value = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct lincheck_op *op = &ops[points[i].op];
        if (op->is_write && effect[points[i].op]) value = op->value;
        if (!op->is_write && op->complete_ns != NEVER) op->value = value;
    }
}

/* An answered read about halfway through the history. */
static uint32_t middle_read(const struct lincheck_op *ops, uint32_t count) {
    for (uint32_t k = count / 2; k < count; k++) {
        if (!ops[k].is_write && ops[k].complete_ns != NEVER) return k;
    }
    ck_abort_msg("no answered read");
    return 0;
}

/* The latest answered write that finished before `before_ns`, or count if none. */
static uint32_t last_write_before(const struct lincheck_op *ops, uint32_t count,
                                  uint64_t before_ns) {
    uint32_t best = count;
    for (uint32_t k = 0; k < count; k++) {
        if (!ops[k].is_write || ops[k].complete_ns >= before_ns) continue;
        if (best == count || ops[k].complete_ns > ops[best].complete_ns) best = k;
    }
    return best;
}

/* The value of a write w1 that finished before a write w2 began, which finished before ops[r]
 * began (both answered, the latest such): with unique values, ops[r] cannot return it. */
static uint64_t overwritten_value(const struct lincheck_op *ops, uint32_t count, uint32_t r) {
    uint32_t w2 = last_write_before(ops, count, ops[r].invoke_ns);
    ck_assert_uint_lt(w2, count);
    uint32_t w1 = last_write_before(ops, count, ops[w2].invoke_ns);
    ck_assert_uint_lt(w1, count);
    return ops[w1].value;
}

static struct lincheck_op gen_ops[GEN_OPS_MAX];

START_TEST(generated_valid_history_is_ok) {
    char why[LINCHECK_WHY_MAX];
    gen_history(1000 + (uint64_t)_i, 500, gen_ops);
    ck_assert_msg(lincheck_register(gen_ops, 500, 0, BUDGET, why, sizeof why) == LINCHECK_OK,
                  "seed %d: %s", 1000 + _i, why);
}
END_TEST

START_TEST(generated_history_with_a_garbage_read_is_a_violation) {
    char why[LINCHECK_WHY_MAX];
    gen_history(1000 + (uint64_t)_i, 500, gen_ops);
    uint32_t r = middle_read(gen_ops, 500);
    gen_ops[r].value = 0xdeadbeef; /* never written */
    ck_assert_int_eq(lincheck_register(gen_ops, 500, 0, BUDGET, why, sizeof why),
                     LINCHECK_VIOLATION);
    ck_assert_msg(strstr(why, "returning 3735928559") != NULL, "%s", why);
}
END_TEST

START_TEST(generated_history_with_a_stale_read_is_a_violation) {
    char why[LINCHECK_WHY_MAX];
    gen_history(1000 + (uint64_t)_i, 500, gen_ops);
    uint32_t r = middle_read(gen_ops, 500);
    gen_ops[r].value = overwritten_value(gen_ops, 500, r);
    ck_assert_int_eq(lincheck_register(gen_ops, 500, 0, BUDGET, why, sizeof why),
                     LINCHECK_VIOLATION);
}
END_TEST

START_TEST(long_history_is_ok) {
    char why[LINCHECK_WHY_MAX];
    gen_history(7, GEN_OPS_MAX, gen_ops);
    ck_assert_msg(lincheck_register(gen_ops, GEN_OPS_MAX, 0, BUDGET, why, sizeof why) ==
                      LINCHECK_OK,
                  "%s", why);
}
END_TEST

START_TEST(budget_of_one_is_undecided) {
    char why[LINCHECK_WHY_MAX];
    gen_history(1000, 500, gen_ops);
    ck_assert_int_eq(lincheck_register(gen_ops, 500, 0, 1, why, sizeof why), LINCHECK_UNDECIDED);
    ck_assert_msg(strstr(why, "budget") != NULL, "%s", why);
    ck_assert_int_eq(lincheck_register(gen_ops, 500, 0, 0, why, sizeof why), LINCHECK_UNDECIDED);
    ck_assert_int_eq(lincheck_register(NULL, 0, 0, 0, why, sizeof why), LINCHECK_OK);
}
END_TEST

START_TEST(too_many_ops_is_undecided) {
    static struct lincheck_op ops[LINCHECK_OPS_MAX + 1];
    char why[LINCHECK_WHY_MAX];
    ck_assert_int_eq(lincheck_register(ops, LINCHECK_OPS_MAX + 1, 0, BUDGET, why, sizeof why),
                     LINCHECK_UNDECIDED);
    ck_assert_ptr_nonnull(strstr(why, "LINCHECK_OPS_MAX"));
}
END_TEST

START_TEST(same_answer_whatever_the_order_of_ops) {
    struct lincheck_op shuffled[500];
    char why[LINCHECK_WHY_MAX], why2[LINCHECK_WHY_MAX];
    gen_history(1001, 500, gen_ops);
    gen_ops[middle_read(gen_ops, 500)].value = 0xdeadbeef;
    struct rq_rng rng;
    rq_rng_seed(&rng, 5);
    memcpy(shuffled, gen_ops, sizeof shuffled);
    for (uint32_t i = 499; i > 0; i--) {
        uint32_t j = (uint32_t)rq_rng_below(&rng, i + 1);
        struct lincheck_op t = shuffled[i];
        shuffled[i] = shuffled[j];
        shuffled[j] = t;
    }
    ck_assert_int_eq(lincheck_register(gen_ops, 500, 0, BUDGET, why, sizeof why),
                     LINCHECK_VIOLATION);
    ck_assert_int_eq(lincheck_register(shuffled, 500, 0, BUDGET, why2, sizeof why2),
                     LINCHECK_VIOLATION);
    ck_assert_str_eq(why, why2);
}
END_TEST

/* ---- brute force on small histories ------------------------------------------------------- */

enum { SMALL_OPS_MAX = 7, SMALL_HISTORIES = 4000 };

/* Straight from the definition: some op may go next if no unplaced answered op completed before
 * it was invoked; done when every answered op is placed (unknown writes are optional). */
static int brute_force(const struct lincheck_op *ops, uint32_t n, uint32_t placed, uint64_t value) {
    int all_placed = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(placed & (1u << i)) && ops[i].complete_ns != NEVER) all_placed = 0;
    }
    if (all_placed) return 1;
    for (uint32_t x = 0; x < n; x++) {
        if (placed & (1u << x)) continue;
        if (!ops[x].is_write && ops[x].complete_ns == NEVER) continue;
        int blocked = 0;
        for (uint32_t y = 0; y < n; y++) {
            if (!(placed & (1u << y)) && ops[y].complete_ns < ops[x].invoke_ns) blocked = 1;
        }
        if (blocked || (!ops[x].is_write && ops[x].value != value)) continue;
        if (brute_force(ops, n, placed | (1u << x), ops[x].is_write ? ops[x].value : value)) {
            return 1;
        }
    }
    return 0;
}

static void small_history(struct rq_rng *rng, struct lincheck_op *ops, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        uint64_t invoke = rq_rng_below(rng, 20);
        ops[i] = (struct lincheck_op){.invoke_ns = invoke,
                                      .complete_ns = invoke + rq_rng_below(rng, 8),
                                      .client = i,
                                      .id = i};
        ops[i].is_write = (uint8_t)rq_rng_chance(rng, 500000);
        ops[i].value = rq_rng_below(rng, 3);
        if (rq_rng_chance(rng, 150000)) ops[i].complete_ns = NEVER;
    }
}

START_TEST(agrees_with_brute_force_on_small_histories) {
    struct rq_rng rng;
    rq_rng_seed(&rng, 42);
    struct lincheck_op ops[SMALL_OPS_MAX];
    uint32_t verdicts[2] = {0, 0};
    char why[LINCHECK_WHY_MAX];
    for (uint32_t h = 0; h < SMALL_HISTORIES; h++) {
        uint32_t n = (uint32_t)rq_rng_range(&rng, 1, SMALL_OPS_MAX);
        small_history(&rng, ops, n);
        uint64_t initial = rq_rng_below(&rng, 2);
        int expect_ok = brute_force(ops, n, 0, initial);
        enum lincheck_result r = lincheck_register(ops, n, initial, BUDGET, why, sizeof why);
        ck_assert_msg(r == (expect_ok ? LINCHECK_OK : LINCHECK_VIOLATION),
                      "history %u: checker %d, brute force %d (%s)", h, r, expect_ok, why);
        verdicts[expect_ok]++;
    }
    ck_assert_uint_gt(verdicts[0], SMALL_HISTORIES / 10); /* both verdicts well exercised */
    ck_assert_uint_gt(verdicts[1], SMALL_HISTORIES / 10);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("lincheck");
    TCase *tc = tcase_create("register");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, table, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, why_names_the_op);
    tcase_add_loop_test(tc, generated_valid_history_is_ok, 0, 10);
    tcase_add_loop_test(tc, generated_history_with_a_garbage_read_is_a_violation, 0, 5);
    tcase_add_loop_test(tc, generated_history_with_a_stale_read_is_a_violation, 0, 5);
    tcase_add_test(tc, long_history_is_ok);
    tcase_add_test(tc, budget_of_one_is_undecided);
    tcase_add_test(tc, too_many_ops_is_undecided);
    tcase_add_test(tc, same_answer_whatever_the_order_of_ops);
    tcase_add_test(tc, agrees_with_brute_force_on_small_histories);
    suite_add_tcase(suite, tc);
    return run_suites(srunner_create(suite));
}
