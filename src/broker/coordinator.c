/* coordinator.c — consumer-group membership and partition assignment.
 * coordinator.h gives the contract (generations, strategies, bounds); this file is how.
 *
 * Every change of membership goes through member_append / member_remove, which keep owner[]
 * pointing at the same members while their indices shift; rebalance() then reads owner[] as the
 * previous assignment (sticky), computes the new one, gives the group the next generation and
 * checks the invariants.
 *
 * Decisions where the header is silent:
 *   - a member expires when deadline_ns < now_ns: at now_ns == deadline_ns it is still alive;
 *     members expire only in coord_tick (a heartbeat before the tick that would expire it extends
 *     the session);
 *   - the count in (epoch << 32) | count is the coordinator's, shared by all its groups (its
 *     rebalances), so a group's generations grow by at least one per rebalance;
 *   - the count never wraps: a join is refused (RQ_ENOMEM) unless the generations left in this
 *     epoch cover it and one more rebalance for every member present (each leave or expiry costs
 *     at most one), so leaves and expiries always find a generation. 2^32 - 1 rebalances in one
 *     term are not reachable in practice; tests reach it through coord_skip_count;
 *   - member ids take their count from a second counter of the epoch, starting at 1;
 *   - a join naming a partition count other than the group's is refused like one naming another
 *     topic (RQ_EINVAL): a topic deleted and created again under its name is another topic;
 *   - names and sizes out of their protocol ranges, unknown modes and strategies are RQ_EINVAL
 *     (the caller validates them first; nothing from the wire may trip an assert here). */
#include "broker/coordinator.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"

#define COUNT_MAX UINT32_MAX   /* the last count of an epoch (and the largest epoch) */
#define NS_PER_MS UINT64_C(1000000)

_Static_assert((int)PROTO_GROUP_MEMBERS_MAX <= (int)COORD_NO_OWNER,
               "a member index fits owner[]'s byte below COORD_NO_OWNER");
_Static_assert((uint64_t)PROTO_GROUPS_MAX * PROTO_GROUP_MEMBERS_MAX < COUNT_MAX / 2,
               "the generations reserved for leaves are a small part of an epoch's count");

struct coord {
    uint64_t epoch;               /* 0: no epoch set, this node does not coordinate */
    uint32_t generation_count;    /* rebalances given out in this epoch */
    uint32_t member_id_count;     /* member ids given out in this epoch */
    uint32_t member_total;        /* members of all groups */
    uint32_t group_count;
    struct coord_stats stats;
    struct coord_group groups[PROTO_GROUPS_MAX];   /* [0..group_count), in creation order */
};

struct coord *coord_create(void) {
    return calloc(1, sizeof(struct coord));
}

void coord_destroy(struct coord *c) {
    free(c);
}

void coord_set_epoch(struct coord *c, uint64_t epoch) {
    RQ_ASSERT(epoch >= 1);
    RQ_ASSERT(epoch <= COUNT_MAX);   /* the epoch is the high 32 bits of a generation */
    RQ_ASSERT(epoch > c->epoch);     /* generations only grow, across coordinators too */
    c->epoch = epoch;
    c->generation_count = 0;
    c->member_id_count = 0;
    c->member_total = 0;
    c->group_count = 0;
}

void coord_skip_count(struct coord *c, uint32_t count) {
    RQ_ASSERT(c->epoch >= 1);
    RQ_ASSERT(count >= c->generation_count);
    c->generation_count = count;
}

/* ---- members --------------------------------------------------------------------------------- */

static int bytes_eq(const uint8_t *data, uint32_t size, struct proto_bytes b) {
    return size == b.size && (size == 0 || memcmp(data, b.data, size) == 0);
}

/* The first member index whose id is >= id (binary search over the sorted members). */
static uint32_t member_slot(const struct coord_group *g, uint64_t id) {
    uint32_t lo = 0, hi = g->member_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->members[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The index of member id, or member_count. */
static uint32_t member_find(const struct coord_group *g, uint64_t id) {
    uint32_t slot = member_slot(g, id);
    if (slot < g->member_count && g->members[slot].id == id) return slot;
    return g->member_count;
}

static uint64_t deadline_of(uint64_t now_ns, uint32_t session_ms) {
    uint64_t session_ns = (uint64_t)session_ms * NS_PER_MS;
    return now_ns > UINT64_MAX - session_ns ? UINT64_MAX : now_ns + session_ns;
}

/* Adds m after the others: ids grow within an epoch, and a new epoch starts without groups, so a
 * new member's id is the group's highest and no index in owner[] shifts. */
static void member_append(struct coord_group *g, const struct coord_member *m) {
    RQ_ASSERT(g->member_count < PROTO_GROUP_MEMBERS_MAX);
    if (g->member_count > 0) RQ_ASSERT(g->members[g->member_count - 1].id < m->id);
    g->members[g->member_count++] = *m;
}

/* Removes member index m; its partitions lose their owner, owner[] keeps naming the others. */
static void member_remove(struct coord_group *g, uint32_t m) {
    RQ_ASSERT(m < g->member_count);
    memmove(&g->members[m], &g->members[m + 1], (g->member_count - m - 1) * sizeof g->members[0]);
    g->member_count--;
    memset(&g->members[g->member_count], 0, sizeof g->members[0]);
    for (uint32_t p = 0; p < g->partition_count; p++) {
        if (g->owner[p] == COORD_NO_OWNER) continue;
        if (g->owner[p] == m) g->owner[p] = COORD_NO_OWNER;
        else if (g->owner[p] > m) g->owner[p]--;
    }
}

/* ---- assignment ------------------------------------------------------------------------------ */

/* How many partitions member index k of n may hold: the first P % n hold ceil(P / n). */
static uint32_t quota_of(uint32_t partition_count, uint32_t n, uint32_t k) {
    RQ_ASSERT(k < n);
    return partition_count / n + (k < partition_count % n ? 1 : 0);
}

/* Member k gets the contiguous run after those of members 0..k-1. */
static void assign_range(struct coord_group *g) {
    uint32_t n = g->member_count;
    uint32_t p = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t quota = quota_of(g->partition_count, n, k);
        for (uint32_t i = 0; i < quota; i++) g->owner[p++] = (uint8_t)k;
    }
    RQ_ASSERT(p == g->partition_count);
}

/* The member below its quota holding the fewest partitions (ties: the lower id). */
static uint32_t sticky_taker(const uint32_t *held, uint32_t partition_count, uint32_t n) {
    uint32_t best = n;
    for (uint32_t k = 0; k < n; k++) {
        if (held[k] >= quota_of(partition_count, n, k)) continue;
        if (best == n || held[k] < held[best]) best = k;
    }
    RQ_ASSERT(best < n);   /* the quotas add up to P: someone has room for each partition left */
    return best;
}

/* Each partition stays with its previous owner while that member is under its quota (partitions
 * considered lowest first); the rest go, lowest first, to sticky_taker. */
static void assign_sticky(struct coord_group *g) {
    uint32_t n = g->member_count;
    uint32_t held[PROTO_GROUP_MEMBERS_MAX] = {0};
    for (uint32_t p = 0; p < g->partition_count; p++) {
        uint8_t o = g->owner[p];
        if (o == COORD_NO_OWNER) continue;
        RQ_ASSERT(o < n);
        if (held[o] < quota_of(g->partition_count, n, o)) held[o]++;
        else g->owner[p] = COORD_NO_OWNER;   /* over quota: balance requires the move */
    }
    for (uint32_t p = 0; p < g->partition_count; p++) {
        if (g->owner[p] != COORD_NO_OWNER) continue;
        uint32_t k = sticky_taker(held, g->partition_count, n);
        g->owner[p] = (uint8_t)k;
        held[k]++;
    }
}

/* The invariants of a group between calls. */
static void group_check(const struct coord_group *g, uint64_t epoch) {
    RQ_ASSERT(g->member_count >= 1);
    RQ_ASSERT(g->member_count <= PROTO_GROUP_MEMBERS_MAX);
    RQ_ASSERT(g->partition_count >= 1);
    RQ_ASSERT(g->partition_count <= PROTO_GROUP_PARTITIONS_MAX);
    RQ_ASSERT(g->generation >> 32 == epoch);
    RQ_ASSERT((g->generation & COUNT_MAX) >= 1);
    for (uint32_t k = 1; k < g->member_count; k++) {
        RQ_ASSERT(g->members[k - 1].id < g->members[k].id);
    }
    if (g->mode == PROTO_MODE_PUBSUB) {
        for (uint32_t p = 0; p < g->partition_count; p++) RQ_ASSERT(g->owner[p] == COORD_NO_OWNER);
        return;
    }
    RQ_ASSERT(g->mode == PROTO_MODE_QUEUE);
    uint32_t held[PROTO_GROUP_MEMBERS_MAX] = {0};
    for (uint32_t p = 0; p < g->partition_count; p++) {
        RQ_ASSERT(g->owner[p] < g->member_count);   /* exactly one owner: members > 0 */
        held[g->owner[p]]++;
    }
    uint32_t floor_count = g->partition_count / g->member_count;
    for (uint32_t k = 0; k < g->member_count; k++) {
        RQ_ASSERT(held[k] >= floor_count);
        RQ_ASSERT(held[k] <= floor_count + 1);
        RQ_ASSERT(held[k] == quota_of(g->partition_count, g->member_count, k));
    }
}

/* A new generation for g, and every member's partitions in it. */
static void rebalance(struct coord *c, struct coord_group *g) {
    RQ_ASSERT(c->epoch >= 1);
    RQ_ASSERT(g->member_count >= 1);
    RQ_ASSERT(c->generation_count < COUNT_MAX);   /* joins keep a generation for every leave */
    c->generation_count++;
    uint64_t generation = (c->epoch << 32) | c->generation_count;
    RQ_ASSERT(generation > g->generation);
    g->generation = generation;
    c->stats.rebalances++;
    if (g->mode == PROTO_MODE_PUBSUB) {
        memset(g->owner, COORD_NO_OWNER, sizeof g->owner);
    } else if (g->strategy == PROTO_STRATEGY_RANGE) {
        assign_range(g);
    } else {
        RQ_ASSERT(g->strategy == PROTO_STRATEGY_STICKY);
        assign_sticky(g);
    }
    group_check(g, c->epoch);
}

uint32_t coord_member_partitions(const struct coord_group *g, uint32_t m,
                                 uint32_t out[PROTO_GROUP_PARTITIONS_MAX]) {
    RQ_ASSERT(m < g->member_count);
    RQ_ASSERT(g->partition_count <= PROTO_GROUP_PARTITIONS_MAX);
    uint32_t count = 0;
    for (uint32_t p = 0; p < g->partition_count; p++) {
        if (g->mode == PROTO_MODE_PUBSUB || g->owner[p] == m) out[count++] = p;
    }
    return count;
}

static void answer_fill(const struct coord_group *g, uint32_t m, struct coord_answer *out) {
    out->member_id = g->members[m].id;
    out->generation = g->generation;
    out->partition_count = coord_member_partitions(g, m, out->partitions);
}

/* ---- groups ---------------------------------------------------------------------------------- */

static uint32_t group_index(const struct coord *c, struct proto_bytes name) {
    for (uint32_t i = 0; i < c->group_count; i++) {
        if (bytes_eq(c->groups[i].name, c->groups[i].name_size, name)) return i;
    }
    return c->group_count;
}

/* Forgets group i (it has no members); the later groups move down, keeping creation order. */
static void group_forget(struct coord *c, uint32_t i) {
    RQ_ASSERT(i < c->group_count);
    RQ_ASSERT(c->groups[i].member_count == 0);
    memmove(&c->groups[i], &c->groups[i + 1], (c->group_count - i - 1) * sizeof c->groups[0]);
    c->group_count--;
    memset(&c->groups[c->group_count], 0, sizeof c->groups[0]);
}

static struct coord_group *group_create(struct coord *c, const struct coord_join *j) {
    RQ_ASSERT(c->group_count < PROTO_GROUPS_MAX);
    struct coord_group *g = &c->groups[c->group_count++];
    memset(g, 0, sizeof *g);
    memcpy(g->name, j->group.data, j->group.size);
    g->name_size = j->group.size;
    memcpy(g->topic, j->topic.data, j->topic.size);
    g->topic_size = j->topic.size;
    g->mode = j->mode;
    g->strategy = j->strategy;
    g->partition_count = j->partition_count;
    memset(g->owner, COORD_NO_OWNER, sizeof g->owner);
    return g;
}

/* The request's own ranges, before any group is looked at. */
static int join_check(const struct coord_join *j) {
    if (j->partition_count > PROTO_GROUP_PARTITIONS_MAX) return RQ_ETOOBIG;
    if (j->partition_count == 0) return RQ_EINVAL;
    if (j->mode != PROTO_MODE_QUEUE && j->mode != PROTO_MODE_PUBSUB) return RQ_EINVAL;
    if (j->strategy != PROTO_STRATEGY_RANGE && j->strategy != PROTO_STRATEGY_STICKY)
        return RQ_EINVAL;
    if (j->session_ms < PROTO_SESSION_MS_MIN || j->session_ms > PROTO_SESSION_MS_MAX)
        return RQ_EINVAL;
    if (j->group.size == 0 || j->group.size > PROTO_GROUP_NAME_MAX) return RQ_EINVAL;
    if (j->topic.size == 0 || j->topic.size > PROTO_TOPIC_NAME_MAX) return RQ_EINVAL;
    if (j->member_name.size > PROTO_MEMBER_NAME_MAX) return RQ_EINVAL;
    if (j->member_name.size > 0 && j->member_name.data == NULL) return RQ_EINVAL;
    if (j->group.data == NULL || j->topic.data == NULL) return RQ_EINVAL;
    if (j->mode == PROTO_MODE_PUBSUB && j->member_name.size == 0) return RQ_EINVAL;   /* cursor */
    return 0;
}

static int group_matches(const struct coord_group *g, const struct coord_join *j) {
    return bytes_eq(g->topic, g->topic_size, j->topic) && g->mode == j->mode &&
           g->strategy == j->strategy && g->partition_count == j->partition_count;
}

static void member_set(struct coord_member *m, const struct coord_join *j, uint64_t now_ns) {
    memset(m->name, 0, sizeof m->name);
    if (j->member_name.size > 0) memcpy(m->name, j->member_name.data, j->member_name.size);
    m->name_size = j->member_name.size;
    m->session_ms = j->session_ms;
    m->deadline_ns = deadline_of(now_ns, j->session_ms);
}

/* A new member can join when an id is left and the generations left in this epoch cover its
 * join and one rebalance for every member there will then be (each may leave or expire). */
static int join_budget(const struct coord *c) {
    RQ_ASSERT(c->member_id_count <= c->generation_count);   /* each new member costs both */
    RQ_ASSERT(COUNT_MAX - c->generation_count >= c->member_total);
    return COUNT_MAX - c->generation_count >= (uint64_t)c->member_total + 2;
}

int coord_join(struct coord *c, const struct coord_join *j, uint64_t now_ns,
               struct coord_answer *out) {
    memset(out, 0, sizeof *out);
    if (c->epoch == 0) return RQ_ECLOSED;
    int err = join_check(j);
    if (err != 0) return err;
    uint32_t i = group_index(c, j->group);
    struct coord_group *g = i < c->group_count ? &c->groups[i] : NULL;
    if (g != NULL && !group_matches(g, j)) return RQ_EINVAL;
    if (j->member_id != 0) {   /* a rejoin: same id, no rebalance */
        uint32_t m = g != NULL ? member_find(g, j->member_id) : 0;
        if (g == NULL || m == g->member_count) return RQ_ENOMEMBER;
        member_set(&g->members[m], j, now_ns);
        answer_fill(g, m, out);
        return 0;
    }
    if (g == NULL && c->group_count == PROTO_GROUPS_MAX) return RQ_ENOMEM;
    if (g != NULL && g->member_count == PROTO_GROUP_MEMBERS_MAX) return RQ_ENOMEM;
    if (!join_budget(c)) return RQ_ENOMEM;   /* this epoch's count is spent */
    if (g == NULL) g = group_create(c, j);
    struct coord_member m = {0};
    c->member_id_count++;
    m.id = (c->epoch << 32) | c->member_id_count;
    member_set(&m, j, now_ns);
    member_append(g, &m);
    c->member_total++;
    c->stats.joins++;
    rebalance(c, g);
    answer_fill(g, member_find(g, m.id), out);
    return 0;
}

int coord_heartbeat(struct coord *c, struct proto_bytes group, uint64_t member_id, uint64_t now_ns,
                    struct coord_answer *out) {
    memset(out, 0, sizeof *out);
    uint32_t i = group_index(c, group);
    if (i == c->group_count) return RQ_ENOMEMBER;
    struct coord_group *g = &c->groups[i];
    uint32_t m = member_find(g, member_id);
    if (m == g->member_count) return RQ_ENOMEMBER;
    g->members[m].deadline_ns = deadline_of(now_ns, g->members[m].session_ms);
    answer_fill(g, m, out);
    return 0;
}

int coord_leave(struct coord *c, struct proto_bytes group, uint64_t member_id) {
    uint32_t i = group_index(c, group);
    if (i == c->group_count) return RQ_ENOMEMBER;
    struct coord_group *g = &c->groups[i];
    uint32_t m = member_find(g, member_id);
    if (m == g->member_count) return RQ_ENOMEMBER;
    member_remove(g, m);
    RQ_ASSERT(c->member_total >= 1);
    c->member_total--;
    c->stats.leaves++;
    if (g->member_count == 0) group_forget(c, i);
    else rebalance(c, g);
    return 0;
}

/* Removes g's members whose deadline is before now_ns; returns how many. */
static uint32_t group_expire(struct coord_group *g, uint64_t now_ns) {
    uint32_t expired = 0;
    for (uint32_t m = g->member_count; m > 0; m--) {
        if (g->members[m - 1].deadline_ns < now_ns) {
            member_remove(g, m - 1);
            expired++;
        }
    }
    return expired;
}

void coord_tick(struct coord *c, uint64_t now_ns) {
    uint32_t i = 0;
    while (i < c->group_count) {
        struct coord_group *g = &c->groups[i];
        uint32_t expired = group_expire(g, now_ns);
        RQ_ASSERT(c->member_total >= expired);
        c->member_total -= expired;
        c->stats.expired += expired;
        if (expired > 0 && g->member_count == 0) {
            group_forget(c, i);   /* the next group moved down into i */
            continue;
        }
        if (expired > 0) rebalance(c, g);   /* one generation for all it lost */
        i++;
    }
}

uint32_t coord_group_count(const struct coord *c) {
    return c->group_count;
}

const struct coord_group *coord_group_at(const struct coord *c, uint32_t i) {
    RQ_ASSERT(i < c->group_count);
    return &c->groups[i];
}

const struct coord_group *coord_find(const struct coord *c, struct proto_bytes group) {
    uint32_t i = group_index(c, group);
    return i < c->group_count ? &c->groups[i] : NULL;
}

const struct coord_stats *coord_stats(const struct coord *c) {
    return &c->stats;
}
