/* Replica and leader placement (src/meta/placement.c): the bounds hold over a grid of cluster
 * sizes, partition counts and replication factors and over seeded random inputs; the result is a
 * pure function of the sets (not their order); a broker joining or leaving moves close to the
 * minimum; every invalid input is refused. The movement cases print their figures. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/errors.h"
#include "meta/placement.h"
#include "tests/unit/suite_main.h"

enum {
    TOPIC_PARTITIONS = 100, /* the inputs' topics have up to this many partitions each */
    SLOTS_MAX = PLACEMENT_PARTITIONS_MAX * PLACEMENT_REPLICAS_MAX,
};

static struct placement_ring ring_a, ring_b;
static struct placement_partition parts[PLACEMENT_PARTITIONS_MAX];
static struct placement_partition parts_shuffled[PLACEMENT_PARTITIONS_MAX];
static struct placement_item work[PLACEMENT_PARTITIONS_MAX];
static uint32_t rows_a[SLOTS_MAX], rows_b[SLOTS_MAX];

/* A seeded generator for the tests' inputs (xorshift64*). */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Broker ids: scattered, not sorted, not dense. */
static void make_brokers(uint32_t *ids, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        ids[i] = 1000 + ((i * 37) % 101) * 13 + i;
}

static void make_partitions(uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        parts[i].topic_key = 0xABC0000ULL + i / TOPIC_PARTITIONS;
        parts[i].index = i % TOPIC_PARTITIONS;
    }
}

/* The slot of id in the ring's ascending broker_ids, or broker_count. */
static uint32_t ring_slot(const struct placement_ring *ring, uint32_t id) {
    uint32_t lo = 0, hi = ring->broker_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring->broker_ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ring->broker_count && ring->broker_ids[lo] == id ? lo : ring->broker_count;
}

/* Checks every row of a placement against the ring and the bounds. */
static void check_placement(const struct placement_ring *ring, const uint32_t *rows, uint32_t p,
                            uint32_t r, uint32_t eps, const struct placement_stats *st) {
    uint32_t n = ring->broker_count;
    uint32_t replica_bound = placement_replica_bound(p, r, n, eps);
    uint32_t leader_bound = placement_leader_bound(p, n, eps);
    ck_assert_uint_eq(st->replica_bound, replica_bound);
    ck_assert_uint_eq(st->leader_bound, leader_bound);
    uint32_t replicas[PLACEMENT_BROKERS_MAX] = {0}, leaders[PLACEMENT_BROKERS_MAX] = {0};
    for (uint32_t i = 0; i < p; i++) {
        uint64_t seen = 0;
        for (uint32_t j = 0; j < r; j++) {
            uint32_t slot = ring_slot(ring, rows[(uint64_t)i * r + j]);
            /* Plain ifs in the loops: every ck_assert records its location, and that is slow. */
            if (slot >= n) ck_abort_msg("partition %u replica %u: not a broker", i, j);
            if (seen & (1ULL << slot)) ck_abort_msg("partition %u: a broker twice", i);
            seen |= 1ULL << slot;
            replicas[slot]++;
            if (j == 0) leaders[slot]++;
        }
    }
    uint64_t total = 0, lead_total = 0;
    for (uint32_t b = 0; b < n; b++) {
        ck_assert_msg(replicas[b] <= replica_bound, "broker %u holds %u > %u", b, replicas[b],
                      replica_bound);
        ck_assert_msg(leaders[b] <= leader_bound, "broker %u leads %u > %u", b, leaders[b],
                      leader_bound);
        total += replicas[b];
        lead_total += leaders[b];
    }
    ck_assert_uint_eq(total, (uint64_t)p * r);
    ck_assert_uint_eq(lead_total, p);
}

/* ---- balance: the grid --------------------------------------------------------------------- */

static const uint32_t grid_brokers[] = {3, 4, 5, 7, 16, 33, 64};
static const uint32_t grid_partitions[] = {1, 7, 100, 1000, 10000};
static const uint32_t grid_replicas[] = {1, 3};
enum {
    GRID_B = sizeof grid_brokers / sizeof grid_brokers[0],
    GRID_P = sizeof grid_partitions / sizeof grid_partitions[0],
    GRID_R = sizeof grid_replicas / sizeof grid_replicas[0],
};

START_TEST(balance_grid) {
    uint32_t n = grid_brokers[_i / (GRID_P * GRID_R)];
    uint32_t p = grid_partitions[(_i / GRID_R) % GRID_P];
    uint32_t r = grid_replicas[_i % GRID_R];
    uint32_t ids[PLACEMENT_BROKERS_MAX];
    make_brokers(ids, n);
    make_partitions(p);
    ck_assert_int_eq(placement_ring_build(&ring_a, ids, n, PLACEMENT_VNODES_DEFAULT), 0);
    struct placement_input in = {parts, p, r, PLACEMENT_EPSILON_PERMILLE_DEFAULT};
    struct placement_stats st;
    ck_assert_int_eq(placement_assign(&ring_a, &in, work, rows_a, &st), 0);
    check_placement(&ring_a, rows_a, p, r, in.epsilon_permille, &st);

    /* Same sets, other orders: brokers reversed, partitions rotated. Same rows per partition. */
    uint32_t reversed[PLACEMENT_BROKERS_MAX];
    for (uint32_t i = 0; i < n; i++)
        reversed[i] = ids[n - 1 - i];
    ck_assert_int_eq(placement_ring_build(&ring_b, reversed, n, PLACEMENT_VNODES_DEFAULT), 0);
    ck_assert_int_eq(memcmp(&ring_a, &ring_b, sizeof ring_a), 0);
    uint32_t shift = p / 3 + 1;
    for (uint32_t i = 0; i < p; i++)
        parts_shuffled[i] = parts[(i + shift) % p];
    struct placement_input in2 = {parts_shuffled, p, r, in.epsilon_permille};
    ck_assert_int_eq(placement_assign(&ring_b, &in2, work, rows_b, NULL), 0);
    for (uint32_t i = 0; i < p; i++) {
        const uint32_t *a = &rows_a[(uint64_t)((i + shift) % p) * r], *b = &rows_b[(uint64_t)i * r];
        if (memcmp(a, b, r * sizeof(uint32_t)) != 0) ck_abort_msg("partition %u differs", i);
    }
}
END_TEST

/* ---- balance: tight and random cases ------------------------------------------------------- */

/* Mostly ε = 0, R up to 9 and one virtual node each (a lopsided ring): the bounds are tightest
 * and both feasibility rules (reserve skips, leader repairs) have work to do. */
struct tight_case {
    uint32_t brokers, partitions, replicas, vnodes, epsilon_permille;
};

static const struct tight_case tight_cases[] = {
    {3, 10000, 3, 1, 0}, {4, 10000, 3, 1, 0},  {5, 999, 4, 1, 0},    {9, 5000, 9, 1, 0},
    {10, 5000, 9, 1, 0}, {11, 4999, 8, 2, 0},  {64, 10000, 9, 1, 0}, {64, 63, 9, 1, 0},
    {7, 3, 5, 1, 0},     {33, 10000, 1, 1, 0}, {16, 10000, 3, 1, 1}, {64, 100000, 3, 16, 250},
};

static uint64_t tight_reserve_skips, tight_leader_repairs;

static void run_tight(const struct tight_case *c, uint32_t id_offset) {
    uint32_t ids[PLACEMENT_BROKERS_MAX];
    for (uint32_t i = 0; i < c->brokers; i++)
        ids[i] = id_offset + i * 7 + 1;
    make_partitions(c->partitions);
    ck_assert_int_eq(placement_ring_build(&ring_a, ids, c->brokers, c->vnodes), 0);
    struct placement_input in = {parts, c->partitions, c->replicas, c->epsilon_permille};
    struct placement_stats st;
    ck_assert_int_eq(placement_assign(&ring_a, &in, work, rows_a, &st), 0);
    check_placement(&ring_a, rows_a, c->partitions, c->replicas, c->epsilon_permille, &st);
    tight_reserve_skips += st.reserve_skips;
    tight_leader_repairs += st.leader_repairs;
}

START_TEST(balance_tight) {
    tight_reserve_skips = 0;
    tight_leader_repairs = 0;
    for (size_t i = 0; i < sizeof tight_cases / sizeof tight_cases[0]; i++)
        for (uint32_t offset = 0; offset < 3; offset++)
            run_tight(&tight_cases[i], offset * 1000);
    /* The rules that make the bounds unconditional were exercised, not just present. */
    ck_assert_uint_gt(tight_reserve_skips, 0);
    ck_assert_uint_gt(tight_leader_repairs, 0);
}
END_TEST

enum { RANDOM_ROUNDS = 400 };

START_TEST(balance_random) {
    uint64_t seed = 0x5EED0001;
    uint64_t repairs = 0;
    for (uint32_t round = 0; round < RANDOM_ROUNDS; round++) {
        uint32_t n = 1 + (uint32_t)(rng_next(&seed) % PLACEMENT_BROKERS_MAX);
        uint32_t rmax = n < PLACEMENT_REPLICAS_MAX ? n : PLACEMENT_REPLICAS_MAX;
        uint32_t r = 1 + (uint32_t)(rng_next(&seed) % rmax);
        uint32_t p = (uint32_t)(rng_next(&seed) % 600);
        uint32_t vnodes = 1 + (uint32_t)(rng_next(&seed) % 8);
        uint32_t eps = (uint32_t)(rng_next(&seed) % 4) * 100; /* 0, 100, 200, 300 */
        uint32_t ids[PLACEMENT_BROKERS_MAX];
        for (uint32_t i = 0; i < n; i++)
            ids[i] = (uint32_t)(rng_next(&seed) >> 40) * 64 + i + 1;
        for (uint32_t i = 0; i < p; i++) {
            parts[i].topic_key = rng_next(&seed) % 4;
            parts[i].index = i;
        }
        ck_assert_int_eq(placement_ring_build(&ring_a, ids, n, vnodes), 0);
        struct placement_input in = {parts, p, r, eps};
        struct placement_stats st;
        ck_assert_int_eq(placement_assign(&ring_a, &in, work, rows_a, &st), 0);
        check_placement(&ring_a, rows_a, p, r, eps, &st);
        repairs += st.leader_repairs;
    }
    ck_assert_uint_gt(repairs, 0);
}
END_TEST

/* ---- hashes and a known placement ---------------------------------------------------------- */

/* The hashes decide where every replica lives: changing them moves data in a running cluster.
 * Pinned so that a change is a decision, not an accident. */
START_TEST(hashes_are_pinned) {
    ck_assert_uint_eq(placement_vnode_hash(1, 0), 0x0ED4DF5E5762C671ULL);
    ck_assert_uint_eq(placement_vnode_hash(7, 63), 0xA51FDFC017FC83DBULL);
    ck_assert_uint_eq(placement_partition_hash(42, 0), 0x5BCA90ADEFFB37EEULL);
    ck_assert_uint_ne(placement_partition_hash(42, 1), placement_partition_hash(43, 0));
    ck_assert_uint_ne(placement_vnode_hash(1, 1), placement_vnode_hash(2, 0));
}
END_TEST

START_TEST(ring_is_sorted) {
    uint32_t ids[] = {9, 3, 5};
    ck_assert_int_eq(placement_ring_build(&ring_a, ids, 3, 4), 0);
    ck_assert_uint_eq(ring_a.point_count, 12);
    ck_assert_uint_eq(ring_a.broker_ids[0], 3);
    ck_assert_uint_eq(ring_a.broker_ids[2], 9);
    uint32_t per_broker[3] = {0};
    for (uint32_t i = 0; i < ring_a.point_count; i++) {
        if (i > 0) ck_assert(ring_a.points[i - 1].hash <= ring_a.points[i].hash);
        const struct placement_point *pt = &ring_a.points[i];
        ck_assert_uint_eq(
            pt->hash, placement_vnode_hash(ring_a.broker_ids[pt->broker_slot], pt->vnode_index));
        per_broker[pt->broker_slot]++;
    }
    for (uint32_t b = 0; b < 3; b++)
        ck_assert_uint_eq(per_broker[b], 4);
}
END_TEST

/* With room to spare (a huge ε), a partition's replicas are exactly the first R distinct
 * brokers clockwise from its hash: plain consistent hashing. */
START_TEST(unbounded_is_plain_ring_walk) {
    uint32_t ids[16];
    make_brokers(ids, 16);
    make_partitions(50);
    ck_assert_int_eq(placement_ring_build(&ring_a, ids, 16, 8), 0);
    struct placement_input in = {parts, 50, 3, PLACEMENT_EPSILON_PERMILLE_MAX};
    struct placement_stats st;
    ck_assert_int_eq(placement_assign(&ring_a, &in, work, rows_a, &st), 0);
    ck_assert_uint_eq(st.full_skips, 0);
    for (uint32_t i = 0; i < 50; i++) {
        uint64_t h = placement_partition_hash(parts[i].topic_key, parts[i].index);
        uint32_t start = 0;
        while (start < ring_a.point_count && ring_a.points[start].hash < h)
            start++;
        uint32_t want[3], got = 0;
        for (uint32_t s = 0; got < 3; s++) {
            uint32_t id =
                ring_a.broker_ids[ring_a.points[(start + s) % ring_a.point_count].broker_slot];
            int dup = 0;
            for (uint32_t k = 0; k < got; k++)
                dup |= want[k] == id;
            if (!dup) want[got++] = id;
        }
        /* The set matches; the leader is one of them (the leader bound may pick another). */
        for (uint32_t k = 0; k < 3; k++) {
            int present = 0;
            for (uint32_t j = 0; j < 3; j++)
                present |= rows_a[i * 3 + j] == want[k];
            ck_assert_msg(present, "partition %u: broker %u missing", i, want[k]);
        }
    }
}
END_TEST

START_TEST(no_partitions) {
    uint32_t ids[] = {1, 2, 3};
    ck_assert_int_eq(placement_ring_build(&ring_a, ids, 3, 4), 0);
    struct placement_input in = {NULL, 0, 3, 250};
    struct placement_stats st;
    ck_assert_int_eq(placement_assign(&ring_a, &in, NULL, NULL, &st), 0);
    ck_assert_uint_eq(st.replica_bound, 0);
}
END_TEST

/* ---- movement ------------------------------------------------------------------------------ */

enum {
    MOVE_PARTITIONS = 10000,
    MOVE_SLACK_PERCENT = 200, /* asserted: moved <= 2 x the ideal */
};

/* Places MOVE_PARTITIONS partitions on `before` and `after` brokers and returns the diff. */
static struct placement_diff move_between(const uint32_t *before, uint32_t nb,
                                          const uint32_t *after, uint32_t na, uint32_t r,
                                          uint32_t eps) {
    make_partitions(MOVE_PARTITIONS);
    struct placement_input in = {parts, MOVE_PARTITIONS, r, eps};
    ck_assert_int_eq(placement_ring_build(&ring_a, before, nb, PLACEMENT_VNODES_DEFAULT), 0);
    ck_assert_int_eq(placement_assign(&ring_a, &in, work, rows_a, NULL), 0);
    ck_assert_int_eq(placement_ring_build(&ring_b, after, na, PLACEMENT_VNODES_DEFAULT), 0);
    ck_assert_int_eq(placement_assign(&ring_b, &in, work, rows_b, NULL), 0);
    struct placement_diff d;
    placement_diff(rows_a, rows_b, MOVE_PARTITIONS, r, &d);
    return d;
}

static const uint32_t move_brokers[] = {3, 4, 8, 16, 32, 63};
static const uint32_t move_replicas[] = {1, 3};
enum {
    MOVE_B = sizeof move_brokers / sizeof move_brokers[0],
    MOVE_R = sizeof move_replicas / sizeof move_replicas[0],
};

/* Broker n+1 joins n: ideally exactly its share, R·P/(n+1), of the replicas move to it. */
static void join_case(uint32_t n, uint32_t r, uint32_t eps) {
    uint32_t ids[PLACEMENT_BROKERS_MAX];
    make_brokers(ids, n + 1);
    struct placement_diff d = move_between(ids, n, ids, n + 1, r, eps);
    double ideal = (double)r * MOVE_PARTITIONS / (n + 1);
    printf("placement: join  n=%2u->%2u R=%u P=%u eps=%3u: moved %6llu replicas, ideal %8.1f, "
           "ratio %.2f; leaders moved %u\n",
           n, n + 1, r, MOVE_PARTITIONS, eps, (unsigned long long)d.replicas_moved, ideal,
           (double)d.replicas_moved / ideal, d.leaders_moved);
    /* The newcomer gets a fair share: its 64 points cover about 1/(n+1) of the ring. */
    ck_assert_uint_ge(d.replicas_moved * 2, (uint64_t)ideal);
    ck_assert_msg(d.replicas_moved * 100 <= (uint64_t)(ideal * MOVE_SLACK_PERCENT),
                  "moved %llu, ideal %.1f", (unsigned long long)d.replicas_moved, ideal);
}

START_TEST(movement_join) {
    join_case(move_brokers[_i / MOVE_R], move_replicas[_i % MOVE_R],
              PLACEMENT_EPSILON_PERMILLE_DEFAULT);
}
END_TEST

/* ε = 0: the tightest bound, so the most cascading; still within the same slack. */
START_TEST(movement_join_tight) { join_case(move_brokers[_i], 3, 0); }
END_TEST

/* Broker k of n leaves: its replicas must move (the floor); the rest is reshuffle. */
START_TEST(movement_leave) {
    uint32_t n = move_brokers[_i / MOVE_R] + 1, r = move_replicas[_i % MOVE_R];
    uint32_t ids[PLACEMENT_BROKERS_MAX], rest[PLACEMENT_BROKERS_MAX];
    make_brokers(ids, n);
    uint32_t gone = ids[n / 2];
    for (uint32_t i = 0, j = 0; i < n; i++)
        if (ids[i] != gone) rest[j++] = ids[i];
    struct placement_diff d =
        move_between(ids, n, rest, n - 1, r, PLACEMENT_EPSILON_PERMILLE_DEFAULT);
    uint64_t must = 0;
    for (uint64_t i = 0; i < (uint64_t)MOVE_PARTITIONS * r; i++)
        must += rows_a[i] == gone;
    printf(
        "placement: leave n=%2u->%2u R=%u P=%u eps=250: moved %6llu replicas, departed held %6llu, "
        "ratio %.2f; leaders moved %u\n",
        n, n - 1, r, MOVE_PARTITIONS, (unsigned long long)d.replicas_moved,
        (unsigned long long)must, (double)d.replicas_moved / (double)must, d.leaders_moved);
    ck_assert_uint_ge(d.replicas_moved, must);
    ck_assert_msg(d.replicas_moved * 100 <= must * MOVE_SLACK_PERCENT, "moved %llu, must %llu",
                  (unsigned long long)d.replicas_moved, (unsigned long long)must);
}
END_TEST

START_TEST(diff_counts) {
    const uint32_t a[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const uint32_t b[] = {2, 1, 3, 4, 5, 10, 9, 11, 12};
    struct placement_diff d;
    placement_diff(a, b, 3, 3, &d);
    ck_assert_uint_eq(d.replicas_moved, 0 + 1 + 2);
    ck_assert_uint_eq(d.sets_changed, 2);
    ck_assert_uint_eq(d.leaders_moved, 2);
    placement_diff(a, a, 3, 3, &d);
    ck_assert_uint_eq(d.replicas_moved + d.sets_changed + d.leaders_moved, 0);
}
END_TEST

/* ---- errors -------------------------------------------------------------------------------- */

struct bad_ring {
    const char *name;
    uint32_t ids[4];
    uint32_t count;
    uint32_t vnodes;
};

static const struct bad_ring bad_rings[] = {
    {"zero brokers", {1}, 0, 64},
    {"65 brokers", {1}, PLACEMENT_BROKERS_MAX + 1, 64},
    {"a duplicate id", {4, 5, 4}, 3, 64},
    {"id 0", {1, 0, 2}, 3, 64},
    {"zero vnodes", {1, 2, 3}, 3, 0},
    {"too many vnodes", {1, 2, 3}, 3, PLACEMENT_VNODES_MAX + 1},
};

START_TEST(bad_ring_is_refused) {
    const struct bad_ring *b = &bad_rings[_i];
    memset(&ring_a, 0x5A, sizeof ring_a);
    ck_assert_msg(placement_ring_build(&ring_a, b->ids, b->count, b->vnodes) == RQ_EINVAL, "%s",
                  b->name);
    ck_assert_msg(ring_a.broker_count == 0x5A5A5A5A, "%s: the ring was touched", b->name);
}
END_TEST

struct bad_input {
    const char *name;
    uint32_t brokers;
    uint32_t partitions;
    uint32_t replicas;
    uint32_t epsilon_permille;
    int duplicate;
};

static const struct bad_input bad_inputs[] = {
    {"R 0", 5, 10, 0, 250, 0},
    {"R above brokers", 2, 10, 3, 250, 0},
    {"R above 9", 12, 10, 10, 250, 0},
    {"too many partitions", 5, PLACEMENT_PARTITIONS_MAX + 1, 3, 250, 0},
    {"epsilon too large", 5, 10, 3, PLACEMENT_EPSILON_PERMILLE_MAX + 1, 0},
    {"a partition twice", 5, 10, 3, 250, 1},
};

START_TEST(bad_input_is_refused) {
    const struct bad_input *b = &bad_inputs[_i];
    uint32_t ids[PLACEMENT_BROKERS_MAX];
    make_brokers(ids, b->brokers);
    ck_assert_int_eq(placement_ring_build(&ring_a, ids, b->brokers, 8), 0);
    make_partitions(b->partitions < PLACEMENT_PARTITIONS_MAX ? b->partitions
                                                             : PLACEMENT_PARTITIONS_MAX);
    if (b->duplicate) parts[7] = parts[2];
    struct placement_input in = {parts, b->partitions, b->replicas, b->epsilon_permille};
    rows_a[0] = 0xDEAD;
    ck_assert_msg(placement_assign(&ring_a, &in, work, rows_a, NULL) == RQ_EINVAL, "%s", b->name);
    ck_assert_msg(rows_a[0] == 0xDEAD, "%s: the output was touched", b->name);
}
END_TEST

static TCase *tcase_new(Suite *s, const char *name) {
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void) {
    Suite *s = suite_create("placement");
    TCase *tc = tcase_new(s, "grid");
    tcase_add_loop_test(tc, balance_grid, 0, GRID_B * GRID_P * GRID_R);
    tc = tcase_new(s, "tight");
    tcase_add_test(tc, balance_tight);
    tc = tcase_new(s, "random");
    tcase_add_test(tc, balance_random);
    tc = tcase_new(s, "ring");
    tcase_add_test(tc, hashes_are_pinned);
    tcase_add_test(tc, ring_is_sorted);
    tcase_add_test(tc, unbounded_is_plain_ring_walk);
    tcase_add_test(tc, no_partitions);
    tc = tcase_new(s, "movement");
    tcase_add_loop_test(tc, movement_join, 0, MOVE_B * MOVE_R);
    tcase_add_loop_test(tc, movement_join_tight, 0, MOVE_B);
    tcase_add_loop_test(tc, movement_leave, 0, MOVE_B * MOVE_R);
    tcase_add_test(tc, diff_counts);
    tc = tcase_new(s, "errors");
    tcase_add_loop_test(tc, bad_ring_is_refused, 0, sizeof bad_rings / sizeof bad_rings[0]);
    tcase_add_loop_test(tc, bad_input_is_refused, 0, sizeof bad_inputs / sizeof bad_inputs[0]);
    return run_suites(srunner_create(s));
}
