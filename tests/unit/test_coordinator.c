/* The consumer-group coordinator (src/broker/coordinator.c): scripts of joins, rejoins,
 * heartbeats, leaves and ticks with the generation and the owner of every partition expected after
 * each step (range, sticky, pub/sub); range's contiguous runs for a table of sizes; every refused
 * join leaving the state as it was; a new epoch forgetting every group, its generations above the
 * old ones and member ids never reused across epochs; expiry exactly at the deadline (alive) and
 * one nanosecond past it (gone), one rebalance for many expiries; the bounds (members per group,
 * groups, the end of an epoch's count); and a seeded random history of 10,000 steps over groups of
 * every mode and strategy, checking after each step: one owner per partition and exact quotas,
 * generations that only grow and move exactly when membership does, and sticky moving only the
 * partitions balance requires. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/rng.h"
#include "broker/coordinator.h"
#include "tests/unit/suite_main.h"

enum { MS = 1000000 };   /* nanoseconds */

/* ck_assert_* in the hot loops: Check records the place of every passing ck_assert (a write), so
 * the random history would spend its time there. */
#define EXPECT(cond)                                                                    \
    do {                                                                                \
        if (!(cond)) ck_abort_msg("%s:%d: failed: %s", __FILE__, __LINE__, #cond);      \
    } while (0)

static struct proto_bytes bytes_of(const char *s) {
    return (struct proto_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static uint64_t gen_of(uint64_t epoch, uint32_t count) {
    return (epoch << 32) | count;
}

static struct coord *coord_at(uint64_t epoch) {
    struct coord *c = coord_create();
    ck_assert_ptr_nonnull(c);
    if (epoch > 0) coord_set_epoch(c, epoch);
    return c;
}

static struct coord_join join_of(const char *group, uint8_t mode, uint8_t strategy,
                                 uint32_t partition_count, const char *member_name) {
    return (struct coord_join){.group = bytes_of(group), .topic = bytes_of("t"),
                               .member_name = bytes_of(member_name), .mode = mode,
                               .strategy = strategy, .session_ms = 1000,
                               .partition_count = partition_count};
}

/* The checks every group passes between calls, from the outside. */
static void check_group(const struct coord_group *g) {
    EXPECT(g->member_count >= 1);
    EXPECT(g->member_count <= PROTO_GROUP_MEMBERS_MAX);
    for (uint32_t k = 1; k < g->member_count; k++) {
        EXPECT(g->members[k - 1].id < g->members[k].id);
    }
    static uint32_t parts[PROTO_GROUP_PARTITIONS_MAX];
    uint32_t total = 0;
    for (uint32_t k = 0; k < g->member_count; k++) {
        uint32_t n = coord_member_partitions(g, k, parts);
        for (uint32_t i = 1; i < n; i++) EXPECT(parts[i - 1] < parts[i]);
        if (g->mode == PROTO_MODE_PUBSUB) {
            EXPECT(n == g->partition_count);
            continue;
        }
        uint32_t quota = g->partition_count / g->member_count +
                         (k < g->partition_count % g->member_count ? 1 : 0);
        EXPECT(n == quota);
        total += n;
    }
    if (g->mode == PROTO_MODE_QUEUE) {
        EXPECT(total == g->partition_count);
        for (uint32_t p = 0; p < g->partition_count; p++) {
            EXPECT(g->owner[p] < g->member_count);
        }
    }
}

/* ---- scripts --------------------------------------------------------------------------------- */

enum op { END, JOIN, REJOIN, HEARTBEAT, LEAVE, TICK };

/* One step on group "g". Members are letters, in the order they first joined (so in id order).
 * gen: the expected generation's count (epoch SCRIPT_EPOCH). owners: queue mode, the expected
 * owner of each partition ("" when the group is forgotten); pub/sub, the members present. */
struct step {
    enum op op;
    char member;
    uint64_t now_ms;
    int err;
    uint32_t gen;
    const char *owners;
};

struct script {
    const char *name;
    uint8_t mode;
    uint8_t strategy;
    uint32_t partition_count;
    struct step steps[16];
};

enum { SCRIPT_EPOCH = 3, LETTERS = 26 };

static const struct script scripts[] = {
    {"range: joins, a heartbeat, leaves", PROTO_MODE_QUEUE, PROTO_STRATEGY_RANGE, 7,
     {{JOIN, 'a', 0, 0, 1, "aaaaaaa"},
      {JOIN, 'b', 0, 0, 2, "aaaabbb"},
      {JOIN, 'c', 0, 0, 3, "aaabbcc"},
      {HEARTBEAT, 'b', 10, 0, 3, "aaabbcc"},
      {LEAVE, 'b', 10, 0, 4, "aaaaccc"},
      {LEAVE, 'b', 10, RQ_ENOMEMBER, 4, "aaaaccc"},
      {LEAVE, 'a', 10, 0, 5, "ccccccc"},
      {LEAVE, 'c', 10, 0, 0, ""},
      {END, 0, 0, 0, 0, NULL}}},
    {"sticky: a leaver's partitions alone move", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 6,
     {{JOIN, 'a', 0, 0, 1, "aaaaaa"},
      {JOIN, 'b', 0, 0, 2, "aaabbb"},
      {JOIN, 'c', 0, 0, 3, "aacbbc"},
      {LEAVE, 'a', 0, 0, 4, "bccbbc"},
      {JOIN, 'd', 0, 0, 5, "bccbdd"},
      {END, 0, 0, 0, 0, NULL}}},
    {"sticky: quotas fixed by id order", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 3,
     {{JOIN, 'a', 0, 0, 1, "aaa"},
      {JOIN, 'b', 0, 0, 2, "aab"},
      {JOIN, 'c', 0, 0, 3, "acb"},
      {LEAVE, 'a', 0, 0, 4, "bcb"},
      {JOIN, 'd', 0, 0, 5, "bcd"},
      {JOIN, 'e', 0, 0, 6, "bcd"},   /* more members than partitions: e holds none */
      {LEAVE, 'c', 0, 0, 7, "bed"},
      {END, 0, 0, 0, 0, NULL}}},
    {"expiry at the deadline and one past it", PROTO_MODE_QUEUE, PROTO_STRATEGY_RANGE, 4,
     {{JOIN, 'a', 0, 0, 1, "aaaa"},
      {JOIN, 'b', 500, 0, 2, "aabb"},
      {TICK, 0, 1000, 0, 2, "aabb"},   /* a's deadline itself: alive */
      {HEARTBEAT, 'a', 1000, 0, 2, "aabb"},
      {TICK, 0, 1501, 0, 3, "aaaa"},   /* past b's: gone, one rebalance */
      {HEARTBEAT, 'b', 1501, RQ_ENOMEMBER, 3, "aaaa"},
      {REJOIN, 'a', 1600, 0, 3, "aaaa"},   /* no rebalance; deadline 2600 */
      {TICK, 0, 2600, 0, 3, "aaaa"},
      {TICK, 0, 2601, 0, 0, ""},
      {HEARTBEAT, 'a', 2601, RQ_ENOMEMBER, 0, ""},
      {END, 0, 0, 0, 0, NULL}}},
    {"many expire at once: one rebalance", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 4,
     {{JOIN, 'a', 0, 0, 1, "aaaa"},
      {JOIN, 'b', 0, 0, 2, "aabb"},
      {JOIN, 'c', 0, 0, 3, "aabc"},
      {JOIN, 'd', 600, 0, 4, "adbc"},
      {HEARTBEAT, 'b', 600, 0, 4, "adbc"},
      {TICK, 0, 1200, 0, 5, "bdbd"},
      {END, 0, 0, 0, 0, NULL}}},
    {"pub/sub: everyone has everything", PROTO_MODE_PUBSUB, PROTO_STRATEGY_RANGE, 5,
     {{JOIN, 'a', 0, 0, 1, "a"},
      {JOIN, 'b', 0, 0, 2, "ab"},
      {JOIN, 'c', 0, 0, 3, "abc"},
      {REJOIN, 'b', 0, 0, 3, "abc"},
      {LEAVE, 'a', 0, 0, 4, "bc"},
      {HEARTBEAT, 'c', 0, 0, 4, "bc"},
      {TICK, 0, 1001, 0, 0, ""},
      {END, 0, 0, 0, 0, NULL}}},
};

/* The member letter of a partition's owner in g, from the ids the script gave its letters. */
static char owner_letter(const struct coord_group *g, uint32_t p, const uint64_t ids[LETTERS]) {
    ck_assert_uint_lt(g->owner[p], g->member_count);
    for (int l = 0; l < LETTERS; l++) {
        if (ids[l] == g->members[g->owner[p]].id) return (char)('a' + l);
    }
    ck_abort_msg("partition %u owned by an unknown member", p);
    return '?';
}

static void check_step_state(const struct script *s, const struct step *st, const struct coord *c,
                             const uint64_t ids[LETTERS]) {
    const struct coord_group *g = coord_find(c, bytes_of("g"));
    if (st->owners[0] == '\0') {
        ck_assert_ptr_null(g);
        ck_assert_uint_eq(coord_group_count(c), 0);
        return;
    }
    ck_assert_ptr_nonnull(g);
    check_group(g);
    ck_assert_uint_eq(g->generation, gen_of(SCRIPT_EPOCH, st->gen));
    if (s->mode == PROTO_MODE_PUBSUB) {
        ck_assert_uint_eq(g->member_count, strlen(st->owners));
        for (uint32_t k = 0; k < g->member_count; k++) {
            ck_assert_uint_eq(g->members[k].id, ids[st->owners[k] - 'a']);
        }
        return;
    }
    char got[PROTO_GROUP_PARTITIONS_MAX + 1] = {0};
    for (uint32_t p = 0; p < g->partition_count; p++) got[p] = owner_letter(g, p, ids);
    ck_assert_msg(strcmp(got, st->owners) == 0, "%s: owners %s, expected %s", s->name, got,
                  st->owners);
}

/* An answer agrees with group `group`: the generation, and the member's partitions. */
static void check_answer_in(const struct coord *c, const char *group, const struct coord_answer *a,
                            uint64_t id) {
    const struct coord_group *g = coord_find(c, bytes_of(group));
    EXPECT(g != NULL);
    EXPECT(a->member_id == id);
    EXPECT(a->generation == g->generation);
    uint32_t parts[PROTO_GROUP_PARTITIONS_MAX];
    uint32_t k = 0;
    while (k < g->member_count && g->members[k].id != id) k++;
    EXPECT(k < g->member_count);
    uint32_t n = coord_member_partitions(g, k, parts);
    EXPECT(a->partition_count == n);
    for (uint32_t i = 0; i < n; i++) EXPECT(a->partitions[i] == parts[i]);
}

static void run_step(const struct script *s, const struct step *st, struct coord *c,
                     uint64_t ids[LETTERS]) {
    int l = st->member ? st->member - 'a' : 0;
    uint64_t now_ns = st->now_ms * MS;
    struct coord_join j = join_of("g", s->mode, s->strategy, s->partition_count, "m");
    struct coord_answer a;
    int err = 0;
    switch (st->op) {
    case JOIN:
        ck_assert_uint_eq(ids[l], 0);
        err = coord_join(c, &j, now_ns, &a);
        if (err == 0) ids[l] = a.member_id;
        break;
    case REJOIN:
        j.member_id = ids[l];
        err = coord_join(c, &j, now_ns, &a);
        break;
    case HEARTBEAT: err = coord_heartbeat(c, bytes_of("g"), ids[l], now_ns, &a); break;
    case LEAVE: err = coord_leave(c, bytes_of("g"), ids[l]); break;
    case TICK: coord_tick(c, now_ns); break;
    case END: ck_abort(); break;
    }
    ck_assert_msg(err == st->err, "%s: error %d, expected %d", s->name, err, st->err);
    if (err == 0 && (st->op == JOIN || st->op == REJOIN || st->op == HEARTBEAT)) {
        check_answer_in(c, "g", &a, ids[l]);
    }
    check_step_state(s, st, c, ids);
}

START_TEST(scripts_give_the_expected_generations_and_owners) {
    for (size_t i = 0; i < sizeof scripts / sizeof scripts[0]; i++) {
        const struct script *s = &scripts[i];
        struct coord *c = coord_at(SCRIPT_EPOCH);
        uint64_t ids[LETTERS] = {0};
        for (const struct step *st = s->steps; st->op != END; st++) run_step(s, st, c, ids);
        coord_destroy(c);
    }
}
END_TEST

/* ---- range ----------------------------------------------------------------------------------- */

/* Member k's partitions, members separated by '|', partitions as digits. */
static const struct {
    uint32_t partition_count;
    uint32_t member_count;
    const char *expected;
} ranges[] = {
    {7, 3, "012|34|56"}, {6, 3, "01|23|45"}, {8, 3, "012|345|67"}, {2, 3, "0|1|"},
    {1, 1, "0"},         {5, 2, "012|34"},   {4, 4, "0|1|2|3"},    {10, 4, "012|345|67|89"},
};

START_TEST(range_gives_contiguous_runs) {
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        struct coord *c = coord_at(1);
        struct coord_join j = join_of("g", PROTO_MODE_QUEUE, PROTO_STRATEGY_RANGE,
                                      ranges[i].partition_count, "");
        struct coord_answer a;
        for (uint32_t k = 0; k < ranges[i].member_count; k++) {
            ck_assert_int_eq(coord_join(c, &j, 0, &a), 0);
        }
        const struct coord_group *g = coord_find(c, bytes_of("g"));
        check_group(g);
        char got[64] = {0};
        size_t at = 0;
        for (uint32_t k = 0; k < g->member_count; k++) {
            uint32_t parts[PROTO_GROUP_PARTITIONS_MAX];
            uint32_t n = coord_member_partitions(g, k, parts);
            if (k > 0) got[at++] = '|';
            for (uint32_t p = 0; p < n; p++) got[at++] = (char)('0' + parts[p]);
        }
        ck_assert_msg(strcmp(got, ranges[i].expected) == 0, "P=%u n=%u: %s, expected %s",
                      ranges[i].partition_count, ranges[i].member_count, got,
                      ranges[i].expected);
        coord_destroy(c);
    }
}
END_TEST

/* ---- errors ---------------------------------------------------------------------------------- */

static const char long_name[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

enum bad {
    BAD_TOPIC, BAD_MODE_OTHER, BAD_STRATEGY_OTHER, BAD_PARTITIONS_OTHER, BAD_PARTITIONS_ZERO,
    BAD_PARTITIONS_MANY, BAD_PUBSUB_NO_NAME, BAD_ID_UNKNOWN, BAD_ID_OTHER_GROUP,
    BAD_SESSION_SHORT, BAD_SESSION_LONG, BAD_MODE, BAD_STRATEGY, BAD_GROUP_EMPTY,
    BAD_GROUP_LONG, BAD_TOPIC_LONG, BAD_MEMBER_LONG, BAD_REJOIN_PUBSUB_NO_NAME,
};

static const struct {
    enum bad bad;
    int err;
} bad_joins[] = {
    {BAD_TOPIC, RQ_EINVAL},           {BAD_MODE_OTHER, RQ_EINVAL},
    {BAD_STRATEGY_OTHER, RQ_EINVAL},  {BAD_PARTITIONS_OTHER, RQ_EINVAL},
    {BAD_PARTITIONS_ZERO, RQ_EINVAL}, {BAD_PARTITIONS_MANY, RQ_ETOOBIG},
    {BAD_PUBSUB_NO_NAME, RQ_EINVAL},  {BAD_ID_UNKNOWN, RQ_ENOMEMBER},
    {BAD_ID_OTHER_GROUP, RQ_ENOMEMBER}, {BAD_SESSION_SHORT, RQ_EINVAL},
    {BAD_SESSION_LONG, RQ_EINVAL},    {BAD_MODE, RQ_EINVAL},
    {BAD_STRATEGY, RQ_EINVAL},        {BAD_GROUP_EMPTY, RQ_EINVAL},
    {BAD_GROUP_LONG, RQ_EINVAL},      {BAD_TOPIC_LONG, RQ_EINVAL},
    {BAD_MEMBER_LONG, RQ_EINVAL},     {BAD_REJOIN_PUBSUB_NO_NAME, RQ_EINVAL},
};

/* A join of group "g" (queue, range, 4 partitions: the group there is) or "p" (pub/sub, sticky,
 * 4 partitions), spoiled one way. */
static struct coord_join bad_join(enum bad bad, uint64_t g_member, uint64_t p_member) {
    struct coord_join j = join_of("g", PROTO_MODE_QUEUE, PROTO_STRATEGY_RANGE, 4, "");
    switch (bad) {
    case BAD_TOPIC: j.topic = bytes_of("u"); break;
    case BAD_MODE_OTHER: j.mode = PROTO_MODE_PUBSUB; j.member_name = bytes_of("m"); break;
    case BAD_STRATEGY_OTHER: j.strategy = PROTO_STRATEGY_STICKY; break;
    case BAD_PARTITIONS_OTHER: j.partition_count = 5; break;
    case BAD_PARTITIONS_ZERO: j.group = bytes_of("h"); j.partition_count = 0; break;
    case BAD_PARTITIONS_MANY:
        j.group = bytes_of("h");
        j.partition_count = PROTO_GROUP_PARTITIONS_MAX + 1;
        break;
    case BAD_PUBSUB_NO_NAME: j.group = bytes_of("h"); j.mode = PROTO_MODE_PUBSUB; break;
    case BAD_ID_UNKNOWN: j.member_id = g_member + 1000; break;
    case BAD_ID_OTHER_GROUP: j.member_id = p_member; break;
    case BAD_SESSION_SHORT: j.session_ms = PROTO_SESSION_MS_MIN - 1; break;
    case BAD_SESSION_LONG: j.session_ms = PROTO_SESSION_MS_MAX + 1; break;
    case BAD_MODE: j.group = bytes_of("h"); j.mode = 0; break;
    case BAD_STRATEGY: j.group = bytes_of("h"); j.strategy = 3; break;
    case BAD_GROUP_EMPTY: j.group = bytes_of(""); break;
    case BAD_GROUP_LONG:
        j.group = (struct proto_bytes){(const uint8_t *)long_name, PROTO_GROUP_NAME_MAX + 1};
        break;
    case BAD_TOPIC_LONG:
        j.group = bytes_of("h");
        j.topic = (struct proto_bytes){(const uint8_t *)long_name, PROTO_TOPIC_NAME_MAX + 1};
        break;
    case BAD_MEMBER_LONG:
        j.member_name = (struct proto_bytes){(const uint8_t *)long_name, PROTO_MEMBER_NAME_MAX + 1};
        break;
    case BAD_REJOIN_PUBSUB_NO_NAME:
        j = join_of("p", PROTO_MODE_PUBSUB, PROTO_STRATEGY_STICKY, 4, "");
        j.member_id = p_member;
        break;
    }
    return j;
}

START_TEST(refused_joins_change_nothing) {
    _Static_assert(sizeof long_name - 1 > PROTO_TOPIC_NAME_MAX, "long_name is too long a topic");
    struct coord *c = coord_at(2);
    struct coord_answer a;
    struct coord_join ok = join_of("g", PROTO_MODE_QUEUE, PROTO_STRATEGY_RANGE, 4, "");
    ck_assert_int_eq(coord_join(c, &ok, 0, &a), 0);
    uint64_t g_member = a.member_id;
    struct coord_join okp = join_of("p", PROTO_MODE_PUBSUB, PROTO_STRATEGY_STICKY, 4, "m");
    ck_assert_int_eq(coord_join(c, &okp, 0, &a), 0);
    uint64_t p_member = a.member_id;
    for (size_t i = 0; i < sizeof bad_joins / sizeof bad_joins[0]; i++) {
        struct coord_join j = bad_join(bad_joins[i].bad, g_member, p_member);
        a.member_id = 77;
        int err = coord_join(c, &j, 0, &a);
        ck_assert_msg(err == bad_joins[i].err, "row %zu: error %d, expected %d", i, err,
                      bad_joins[i].err);
        ck_assert_uint_eq(a.member_id, 0);   /* nothing half-filled */
        ck_assert_uint_eq(coord_group_count(c), 2);
        ck_assert_uint_eq(coord_group_at(c, 0)->member_count, 1);
        ck_assert_uint_eq(coord_group_at(c, 0)->generation, gen_of(2, 1));
        ck_assert_uint_eq(coord_group_at(c, 1)->member_count, 1);
        ck_assert_uint_eq(coord_group_at(c, 1)->generation, gen_of(2, 2));
        ck_assert_uint_eq(coord_stats(c)->joins, 2);
        ck_assert_uint_eq(coord_stats(c)->rebalances, 2);
    }
    ck_assert_int_eq(coord_heartbeat(c, bytes_of("h"), g_member, 0, &a), RQ_ENOMEMBER);
    ck_assert_int_eq(coord_heartbeat(c, bytes_of("g"), p_member, 0, &a), RQ_ENOMEMBER);
    ck_assert_int_eq(coord_heartbeat(c, bytes_of("g"), 0, 0, &a), RQ_ENOMEMBER);
    ck_assert_int_eq(coord_leave(c, bytes_of("h"), g_member), RQ_ENOMEMBER);
    ck_assert_int_eq(coord_leave(c, bytes_of("p"), g_member), RQ_ENOMEMBER);
    ck_assert_uint_eq(coord_stats(c)->leaves, 0);
    coord_destroy(c);

    struct coord *idle = coord_at(0);   /* no epoch: not the coordinator */
    ck_assert_int_eq(coord_join(idle, &ok, 0, &a), RQ_ECLOSED);
    ck_assert_int_eq(coord_heartbeat(idle, bytes_of("g"), 1, 0, &a), RQ_ENOMEMBER);
    ck_assert_int_eq(coord_leave(idle, bytes_of("g"), 1), RQ_ENOMEMBER);
    coord_tick(idle, 1);
    ck_assert_uint_eq(coord_group_count(idle), 0);
    coord_destroy(idle);
}
END_TEST

START_TEST(a_rejoin_updates_name_and_session_without_a_rebalance) {
    struct coord *c = coord_at(1);
    struct coord_join j = join_of("g", PROTO_MODE_PUBSUB, PROTO_STRATEGY_RANGE, 3, "first");
    struct coord_answer a;
    ck_assert_int_eq(coord_join(c, &j, 0, &a), 0);
    j.member_id = a.member_id;
    j.member_name = bytes_of("second");
    j.session_ms = 5000;
    struct coord_answer b;
    ck_assert_int_eq(coord_join(c, &j, 100 * MS, &b), 0);
    ck_assert_uint_eq(b.member_id, a.member_id);
    ck_assert_uint_eq(b.generation, a.generation);
    ck_assert_uint_eq(b.partition_count, 3);
    const struct coord_group *g = coord_find(c, bytes_of("g"));
    ck_assert_uint_eq(g->members[0].name_size, 6);
    ck_assert_mem_eq(g->members[0].name, "second", 6);
    ck_assert_uint_eq(g->members[0].session_ms, 5000);
    ck_assert_uint_eq(g->members[0].deadline_ns, 5100 * (uint64_t)MS);
    ck_assert_uint_eq(coord_stats(c)->joins, 1);
    ck_assert_uint_eq(coord_stats(c)->rebalances, 1);
    coord_tick(c, 5100 * (uint64_t)MS);
    ck_assert_uint_eq(coord_group_count(c), 1);
    coord_tick(c, 5100 * (uint64_t)MS + 1);
    ck_assert_uint_eq(coord_group_count(c), 0);
    ck_assert_uint_eq(coord_stats(c)->expired, 1);
    coord_destroy(c);
}
END_TEST

/* ---- epochs ---------------------------------------------------------------------------------- */

START_TEST(a_new_epoch_forgets_groups_and_generations_keep_growing) {
    struct coord *c = coord_create();
    ck_assert_ptr_nonnull(c);
    struct coord_join j = join_of("g", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 5, "");
    struct coord_join k = join_of("k", PROTO_MODE_QUEUE, PROTO_STRATEGY_RANGE, 2, "");
    enum { EPOCHS = 3, PER_EPOCH = 6 };
    static const uint64_t epochs[EPOCHS] = {1, 2, 9};
    uint64_t ids[EPOCHS * PER_EPOCH];
    uint32_t id_count = 0;
    uint64_t last_generation = 0;
    for (uint32_t e = 0; e < EPOCHS; e++) {
        coord_set_epoch(c, epochs[e]);
        ck_assert_uint_eq(coord_group_count(c), 0);
        for (uint32_t i = 0; i < id_count; i++) {   /* no old member is known */
            struct coord_answer a;
            ck_assert_int_eq(coord_heartbeat(c, bytes_of("g"), ids[i], 0, &a), RQ_ENOMEMBER);
            struct coord_join r = j;
            r.member_id = ids[i];
            ck_assert_int_eq(coord_join(c, &r, 0, &a), RQ_ENOMEMBER);
        }
        for (uint32_t n = 0; n < PER_EPOCH; n++) {
            struct coord_answer a;
            ck_assert_int_eq(coord_join(c, n % 2 ? &k : &j, 0, &a), 0);
            ck_assert_uint_eq(a.member_id, gen_of(epochs[e], n + 1));
            ck_assert_uint_eq(a.generation, gen_of(epochs[e], n + 1));
            ck_assert_uint_gt(a.generation, last_generation);
            last_generation = a.generation;
            for (uint32_t i = 0; i < id_count; i++) ck_assert_uint_ne(ids[i], a.member_id);
            ids[id_count++] = a.member_id;
        }
        ck_assert_uint_eq(coord_group_count(c), 2);
    }
    ck_assert_uint_eq(coord_stats(c)->joins, EPOCHS * PER_EPOCH);
    coord_destroy(c);
}
END_TEST

/* ---- bounds ---------------------------------------------------------------------------------- */

START_TEST(members_per_group_are_bounded) {
    struct coord *c = coord_at(1);
    struct coord_join j = join_of("g", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY,
                                  PROTO_GROUP_PARTITIONS_MAX, "");
    struct coord_answer a;
    uint64_t first = 0;
    for (uint32_t n = 0; n < PROTO_GROUP_MEMBERS_MAX; n++) {
        ck_assert_int_eq(coord_join(c, &j, 0, &a), 0);
        ck_assert_uint_eq(a.partition_count, PROTO_GROUP_PARTITIONS_MAX / (n + 1));
        if (n == 0) first = a.member_id;
    }
    check_group(coord_find(c, bytes_of("g")));
    ck_assert_int_eq(coord_join(c, &j, 0, &a), RQ_ENOMEM);
    struct coord_join other = join_of("h", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 1, "");
    ck_assert_int_eq(coord_join(c, &other, 0, &a), 0);   /* another group has room */
    ck_assert_int_eq(coord_leave(c, bytes_of("g"), first), 0);
    ck_assert_int_eq(coord_join(c, &j, 0, &a), 0);
    ck_assert_uint_eq(coord_find(c, bytes_of("g"))->member_count, PROTO_GROUP_MEMBERS_MAX);
    check_group(coord_find(c, bytes_of("g")));
    coord_destroy(c);
}
END_TEST

START_TEST(groups_are_bounded_and_kept_in_creation_order) {
    struct coord *c = coord_at(1);
    char names[PROTO_GROUPS_MAX + 1][8];
    uint64_t ids[PROTO_GROUPS_MAX + 1];
    struct coord_answer a;
    for (uint32_t i = 0; i <= PROTO_GROUPS_MAX; i++) {
        snprintf(names[i], sizeof names[i], "g%u", i);
        struct coord_join j = join_of(names[i], PROTO_MODE_QUEUE, PROTO_STRATEGY_RANGE, 1, "");
        int err = coord_join(c, &j, 0, &a);
        ck_assert_int_eq(err, i < PROTO_GROUPS_MAX ? 0 : RQ_ENOMEM);
        ids[i] = a.member_id;
    }
    ck_assert_uint_eq(coord_group_count(c), PROTO_GROUPS_MAX);
    ck_assert_int_eq(coord_leave(c, bytes_of(names[3]), ids[3]), 0);   /* forgotten */
    ck_assert_uint_eq(coord_group_count(c), PROTO_GROUPS_MAX - 1);
    ck_assert_ptr_null(coord_find(c, bytes_of(names[3])));
    struct coord_join last = join_of(names[PROTO_GROUPS_MAX], PROTO_MODE_QUEUE,
                                     PROTO_STRATEGY_RANGE, 1, "");
    ck_assert_int_eq(coord_join(c, &last, 0, &a), 0);
    for (uint32_t i = 0; i < PROTO_GROUPS_MAX; i++) {
        uint32_t name_index = i < 3 ? i : i + 1;
        const struct coord_group *g = coord_group_at(c, i);
        ck_assert_uint_eq(g->name_size, strlen(names[name_index]));
        ck_assert_mem_eq(g->name, names[name_index], g->name_size);
    }
    coord_tick(c, 1001 * (uint64_t)MS);   /* everyone expires: every group forgotten */
    ck_assert_uint_eq(coord_group_count(c), 0);
    ck_assert_uint_eq(coord_stats(c)->expired, PROTO_GROUPS_MAX);
    coord_destroy(c);
}
END_TEST

/* A join needs a generation for itself and keeps one for each member's leave or expiry: at the
 * end of an epoch's count, joins are refused (RQ_ENOMEM) and leaves and expiries still get their
 * generations. */
START_TEST(the_end_of_an_epochs_count_refuses_joins_not_leaves) {
    struct coord *c = coord_at(4);
    struct coord_join j = join_of("g", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 3, "");
    struct coord_join h = join_of("h", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 3, "");
    struct coord_answer a;
    ck_assert_int_eq(coord_join(c, &j, 0, &a), 0);
    uint64_t first = a.member_id;
    coord_skip_count(c, UINT32_MAX - 5);
    ck_assert_int_eq(coord_join(c, &j, 0, &a), 0);   /* 5 left, 1 member: takes 1, keeps 2 */
    ck_assert_uint_eq(a.generation, gen_of(4, UINT32_MAX - 4));
    uint64_t second = a.member_id;
    ck_assert_int_eq(coord_join(c, &j, 0, &a), 0);   /* 4 left, 2 members: takes 1, keeps 3 */
    uint64_t third = a.member_id;
    ck_assert_int_eq(coord_join(c, &j, 0, &a), RQ_ENOMEM);   /* 3 left, 3 members */
    ck_assert_int_eq(coord_join(c, &h, 0, &a), RQ_ENOMEM);
    ck_assert_uint_eq(coord_group_count(c), 1);
    ck_assert_uint_eq(coord_stats(c)->joins, 3);
    struct coord_join r = j;   /* a rejoin costs nothing */
    r.member_id = second;
    ck_assert_int_eq(coord_join(c, &r, 500 * MS, &a), 0);
    ck_assert_uint_eq(a.generation, gen_of(4, UINT32_MAX - 3));
    ck_assert_int_eq(coord_leave(c, bytes_of("g"), third), 0);
    ck_assert_uint_eq(coord_find(c, bytes_of("g"))->generation, gen_of(4, UINT32_MAX - 2));
    ck_assert_int_eq(coord_join(c, &j, 0, &a), RQ_ENOMEM);   /* 2 left, 2 members */
    coord_tick(c, 1001 * (uint64_t)MS);   /* first expires, second (rejoined) lives */
    const struct coord_group *g = coord_find(c, bytes_of("g"));
    ck_assert_uint_eq(g->generation, gen_of(4, UINT32_MAX - 1));
    ck_assert_uint_eq(g->member_count, 1);
    ck_assert_uint_eq(g->members[0].id, second);
    ck_assert_int_eq(coord_heartbeat(c, bytes_of("g"), first, 0, &a), RQ_ENOMEMBER);
    ck_assert_int_eq(coord_leave(c, bytes_of("g"), second), 0);   /* the last: forgotten */
    ck_assert_uint_eq(coord_group_count(c), 0);
    ck_assert_int_eq(coord_join(c, &j, 0, &a), RQ_ENOMEM);   /* 1 left, 0 members */
    coord_set_epoch(c, 5);   /* a new term, a new count */
    ck_assert_int_eq(coord_join(c, &j, 0, &a), 0);
    ck_assert_uint_eq(a.generation, gen_of(5, 1));
    ck_assert_uint_gt(a.generation, gen_of(4, UINT32_MAX));
    coord_destroy(c);
}
END_TEST

/* ---- a random history ------------------------------------------------------------------------ */

static const struct {
    const char *name;
    uint8_t mode;
    uint8_t strategy;
    uint32_t partition_count;
} random_groups[] = {
    {"r7", PROTO_MODE_QUEUE, PROTO_STRATEGY_RANGE, 7},
    {"s13", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 13},
    {"s3", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, 3},   /* often more members than partitions */
    {"p5", PROTO_MODE_PUBSUB, PROTO_STRATEGY_STICKY, 5},
    {"sbig", PROTO_MODE_QUEUE, PROTO_STRATEGY_STICKY, PROTO_GROUP_PARTITIONS_MAX},
};
enum { RANDOM_GROUPS = sizeof random_groups / sizeof random_groups[0], RANDOM_STEPS = 10000 };

/* What the test expects of one group (the model), and what the coordinator showed of it. */
struct model_group {
    uint32_t member_count;
    uint64_t ids[PROTO_GROUP_MEMBERS_MAX];
    uint32_t session_ms[PROTO_GROUP_MEMBERS_MAX];
    uint64_t deadline_ns[PROTO_GROUP_MEMBERS_MAX];
};

struct seen_group {
    int present;
    uint64_t generation;
    uint32_t member_count;
    uint64_t ids[PROTO_GROUP_MEMBERS_MAX];
    uint64_t owner_ids[PROTO_GROUP_PARTITIONS_MAX];
};

struct history {
    struct coord *c;
    struct rq_rng rng;
    uint64_t epoch;
    uint64_t now_ns;
    uint64_t last_id;
    uint64_t last_generation[RANDOM_GROUPS];   /* never reset: generations only grow */
    uint64_t joins, leaves, expired, rebalances;
    uint64_t moved_required;   /* sticky: partitions moved from a member still there */
    struct model_group model[RANDOM_GROUPS];
    struct seen_group before[RANDOM_GROUPS];
    struct seen_group after[RANDOM_GROUPS];
};

static void seen_take(const struct coord *c, uint32_t gi, struct seen_group *out) {
    const struct coord_group *g = coord_find(c, bytes_of(random_groups[gi].name));
    out->present = g != NULL;
    if (g == NULL) return;
    out->generation = g->generation;
    out->member_count = g->member_count;
    for (uint32_t k = 0; k < g->member_count; k++) out->ids[k] = g->members[k].id;
    for (uint32_t p = 0; p < g->partition_count; p++) {
        out->owner_ids[p] = g->mode == PROTO_MODE_QUEUE ? g->members[g->owner[p]].id : 0;
    }
}

static uint32_t seen_index(const struct seen_group *s, uint64_t id) {
    uint32_t k = 0;
    while (k < s->member_count && s->ids[k] != id) k++;
    return k;
}

static int same_members(const struct seen_group *a, const struct seen_group *b) {
    if (a->present != b->present) return 0;
    if (!a->present) return 1;
    if (a->member_count != b->member_count) return 0;
    return memcmp(a->ids, b->ids, a->member_count * sizeof a->ids[0]) == 0;
}

/* Sticky: walking the partitions lowest first, one whose previous owner is still there and under
 * its quota stays with it. Counts the moves balance required. */
static void check_sticky(struct history *h, uint32_t gi) {
    const struct seen_group *b = &h->before[gi];
    const struct seen_group *a = &h->after[gi];
    uint32_t n = a->member_count, partition_count = random_groups[gi].partition_count;
    uint32_t kept[PROTO_GROUP_MEMBERS_MAX] = {0};
    for (uint32_t p = 0; p < partition_count; p++) {
        uint32_t k = seen_index(a, b->owner_ids[p]);
        if (k == n) continue;   /* its owner left: it had to move */
        uint32_t quota = partition_count / n + (k < partition_count % n ? 1 : 0);
        if (kept[k] < quota) {
            if (a->owner_ids[p] != b->owner_ids[p])
                ck_abort_msg("%s: partition %u moved from a member under its quota",
                             random_groups[gi].name, p);
            kept[k]++;
        } else {
            EXPECT(a->owner_ids[p] != b->owner_ids[p]);
            h->moved_required++;
        }
    }
}

/* After each step: the coordinator holds the model's members and deadlines, every invariant
 * holds, the generation moved exactly when membership did, and only upward. */
static void check_history(struct history *h) {
    for (uint32_t gi = 0; gi < RANDOM_GROUPS; gi++) {
        const struct model_group *m = &h->model[gi];
        struct seen_group *b = &h->before[gi], *a = &h->after[gi];
        seen_take(h->c, gi, a);
        EXPECT(a->present == (m->member_count > 0));
        if (!a->present) continue;
        const struct coord_group *g = coord_find(h->c, bytes_of(random_groups[gi].name));
        check_group(g);
        EXPECT(g->member_count == m->member_count);
        for (uint32_t k = 0; k < m->member_count; k++) {
            EXPECT(g->members[k].id == m->ids[k]);
            EXPECT(g->members[k].session_ms == m->session_ms[k]);
            EXPECT(g->members[k].deadline_ns == m->deadline_ns[k]);
        }
        if (g->mode == PROTO_MODE_QUEUE && g->strategy == PROTO_STRATEGY_RANGE) {
            for (uint32_t p = 1; p < g->partition_count; p++) {
                EXPECT(g->owner[p - 1] <= g->owner[p]);
            }
        }
        if (same_members(a, b)) {
            EXPECT(a->generation == b->generation);
            size_t owners_size = g->partition_count * sizeof a->owner_ids[0];
            EXPECT(memcmp(a->owner_ids, b->owner_ids, owners_size) == 0);
            continue;
        }
        EXPECT(a->generation > h->last_generation[gi]);
        EXPECT(a->generation >> 32 == h->epoch);
        h->last_generation[gi] = a->generation;
        h->rebalances++;
        if (b->present && g->mode == PROTO_MODE_QUEUE && g->strategy == PROTO_STRATEGY_STICKY) {
            check_sticky(h, gi);
        }
    }
    const struct coord_stats *st = coord_stats(h->c);
    EXPECT(st->joins == h->joins);
    EXPECT(st->leaves == h->leaves);
    EXPECT(st->expired == h->expired);
    EXPECT(st->rebalances == h->rebalances);
}

static void model_remove(struct model_group *m, uint32_t k) {
    for (uint32_t i = k + 1; i < m->member_count; i++) {
        m->ids[i - 1] = m->ids[i];
        m->session_ms[i - 1] = m->session_ms[i];
        m->deadline_ns[i - 1] = m->deadline_ns[i];
    }
    m->member_count--;
}

static void step_join(struct history *h, uint32_t gi) {
    struct model_group *m = &h->model[gi];
    struct coord_join j = join_of(random_groups[gi].name, random_groups[gi].mode,
                                  random_groups[gi].strategy, random_groups[gi].partition_count,
                                  "m");
    j.session_ms = (uint32_t)rq_rng_range(&h->rng, 100, 1000);
    struct coord_answer a;
    int err = coord_join(h->c, &j, h->now_ns, &a);
    if (m->member_count == PROTO_GROUP_MEMBERS_MAX) {
        EXPECT(err == RQ_ENOMEM);
        return;
    }
    EXPECT(err == 0);
    EXPECT(a.member_id > h->last_id);   /* ids are never given twice */
    h->last_id = a.member_id;
    m->ids[m->member_count] = a.member_id;
    m->session_ms[m->member_count] = j.session_ms;
    m->deadline_ns[m->member_count] = h->now_ns + j.session_ms * (uint64_t)MS;
    m->member_count++;
    h->joins++;
    check_answer_in(h->c, random_groups[gi].name, &a, a.member_id);
}

/* A heartbeat or a rejoin (same id, perhaps another session) of member k, or of an unknown id. */
static void step_renew(struct history *h, uint32_t gi, uint32_t k, int rejoin) {
    struct model_group *m = &h->model[gi];
    uint64_t id = k < m->member_count ? m->ids[k] : h->last_id + 1 + k;
    struct coord_answer a;
    int err;
    uint32_t session_ms = k < m->member_count ? m->session_ms[k] : 0;
    if (rejoin) {
        struct coord_join j = join_of(random_groups[gi].name, random_groups[gi].mode,
                                      random_groups[gi].strategy,
                                      random_groups[gi].partition_count, "n");
        j.member_id = id;
        j.session_ms = session_ms = (uint32_t)rq_rng_range(&h->rng, 100, 1000);
        err = coord_join(h->c, &j, h->now_ns, &a);
    } else {
        err = coord_heartbeat(h->c, bytes_of(random_groups[gi].name), id, h->now_ns, &a);
    }
    if (k >= m->member_count) {
        EXPECT(err == RQ_ENOMEMBER);
        return;
    }
    EXPECT(err == 0);
    m->session_ms[k] = session_ms;
    m->deadline_ns[k] = h->now_ns + session_ms * (uint64_t)MS;
    check_answer_in(h->c, random_groups[gi].name, &a, id);
}

static void step_leave(struct history *h, uint32_t gi, uint32_t k) {
    struct model_group *m = &h->model[gi];
    uint64_t id = k < m->member_count ? m->ids[k] : h->last_id + 1 + k;
    int err = coord_leave(h->c, bytes_of(random_groups[gi].name), id);
    if (k >= m->member_count) {
        EXPECT(err == RQ_ENOMEMBER);
        return;
    }
    EXPECT(err == 0);
    model_remove(m, k);
    h->leaves++;
}

static void step_tick(struct history *h) {
    h->now_ns += rq_rng_below(&h->rng, 300 * (uint64_t)MS);
    coord_tick(h->c, h->now_ns);
    for (uint32_t gi = 0; gi < RANDOM_GROUPS; gi++) {
        struct model_group *m = &h->model[gi];
        for (uint32_t k = m->member_count; k > 0; k--) {
            if (m->deadline_ns[k - 1] < h->now_ns) {
                model_remove(m, k - 1);
                h->expired++;
            }
        }
    }
}

static void step_epoch(struct history *h) {
    h->epoch += rq_rng_range(&h->rng, 1, 3);
    coord_set_epoch(h->c, h->epoch);
    memset(h->model, 0, sizeof h->model);
    h->last_id = h->epoch << 32;
}

static void random_step(struct history *h) {
    uint32_t gi = (uint32_t)rq_rng_below(&h->rng, RANDOM_GROUPS);
    /* mostly a member there, sometimes one that is not */
    uint32_t k = (uint32_t)rq_rng_below(&h->rng, h->model[gi].member_count + 1);
    uint64_t roll = rq_rng_below(&h->rng, 1000);
    if (roll < 400) step_join(h, gi);
    else if (roll < 550) step_renew(h, gi, k, 0);
    else if (roll < 600) step_renew(h, gi, k, 1);
    else if (roll < 800) step_leave(h, gi, k);
    else if (roll < 999) step_tick(h);
    else step_epoch(h);
}

START_TEST(random_histories_keep_the_invariants) {
    struct history *h = calloc(1, sizeof *h);
    ck_assert_ptr_nonnull(h);
    h->c = coord_at(0);
    rq_rng_seed(&h->rng, 0xC00Du + (uint64_t)_i);
    step_epoch(h);
    for (uint32_t i = 0; i < RANDOM_STEPS; i++) {
        for (uint32_t gi = 0; gi < RANDOM_GROUPS; gi++) seen_take(h->c, gi, &h->before[gi]);
        random_step(h);
        check_history(h);
    }
    ck_assert_uint_gt(h->joins, RANDOM_STEPS / 4);
    ck_assert_uint_gt(h->leaves, 0);
    ck_assert_uint_gt(h->expired, 0);
    ck_assert_uint_gt(h->moved_required, 0);
    coord_destroy(h->c);
    free(h);
}
END_TEST

int main(void) {
    Suite *s = suite_create("coordinator");
    TCase *tc = tcase_create("state machine");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, scripts_give_the_expected_generations_and_owners);
    tcase_add_test(tc, range_gives_contiguous_runs);
    tcase_add_test(tc, refused_joins_change_nothing);
    tcase_add_test(tc, a_rejoin_updates_name_and_session_without_a_rebalance);
    tcase_add_test(tc, a_new_epoch_forgets_groups_and_generations_keep_growing);
    tcase_add_test(tc, members_per_group_are_bounded);
    tcase_add_test(tc, groups_are_bounded_and_kept_in_creation_order);
    tcase_add_test(tc, the_end_of_an_epochs_count_refuses_joins_not_leaves);
    tcase_add_loop_test(tc, random_histories_keep_the_invariants, 0, 3);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
