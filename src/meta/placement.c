/* Consistent hashing with virtual nodes and bounded loads; see placement.h for the contract.
 *
 * Why the replica bound can always be met. Let m partitions remain, broker b have room
 * c_b = replica_bound - replicas_b, and S = Σ_b min(c_b, m). The remaining partitions (each
 * needing R distinct brokers) fit iff S >= m·R: Gale–Ryser for a complete bipartite graph with
 * equal row sums; the concave Σ_b min(c_b, k) minus the line k·R is smallest at k = 0 or k = m.
 * It holds at the start (n·replica_bound >= P·R, and when replica_bound > P, Σ = n·P >= P·R).
 * Placing one partition lowers S by R plus the number u of "tight" brokers (c_b >= m) it did not
 * take, so S >= m·R survives iff u <= slack = S - m·R. The walk therefore never lets a non-tight
 * broker take a slot that a tight one still needs (need = untaken tight - slack); it always takes
 * a tight one. One lap of the ring then always finds R brokers (assert_walk_complete).
 *
 * Why the leader bound can always be met. Any set X of placed partitions has its replicas on a
 * set B of brokers with |X|·R <= |B|·replica_bound <= |B|·R·leader_bound, since
 * ⌈R·x⌉ <= R·⌈x⌉. So |B|·leader_bound >= |X|: Hall's condition for giving each partition a
 * leader among its replicas, no broker above leader_bound. When a partition's replicas all lead
 * leader_bound partitions already, an augmenting path exists (Hall), and is found by a
 * breadth-first search over brokers: u -> v when some partition led by u has v as a replica. */
#include "meta/placement.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"

enum {
    SLOT_NONE = 0xFF,
};

/* splitmix64's finalizer (Steele, Lea and Flood, 2014): a bijection on 64 bits with full
 * avalanche. The seeds keep the vnode and partition hash families apart. */
static uint64_t placement_mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

uint64_t placement_vnode_hash(uint32_t broker_id, uint32_t vnode_index) {
    uint64_t key = ((uint64_t)broker_id << 32) | vnode_index;
    return placement_mix(placement_mix(key ^ 0x7261667471766E6FULL) + 0x9E3779B97F4A7C15ULL);
}

uint64_t placement_partition_hash(uint64_t topic_key, uint32_t partition_index) {
    return placement_mix(placement_mix(topic_key ^ 0x7261667471707274ULL) + partition_index);
}

static uint32_t ceil_div(uint64_t a, uint64_t b) {
    RQ_ASSERT(b > 0);
    uint64_t q = (a + b - 1) / b;
    RQ_ASSERT(q <= UINT32_MAX);
    return (uint32_t)q;
}

uint32_t placement_replica_bound(uint32_t partition_count, uint32_t replication_factor,
                                 uint32_t broker_count, uint32_t epsilon_permille) {
    RQ_ASSERT(broker_count > 0);
    RQ_ASSERT(epsilon_permille <= PLACEMENT_EPSILON_PERMILLE_MAX);
    uint64_t load = (uint64_t)partition_count * replication_factor;
    return ceil_div((1000 + (uint64_t)epsilon_permille) * load, 1000 * (uint64_t)broker_count);
}

uint32_t placement_leader_bound(uint32_t partition_count, uint32_t broker_count,
                                uint32_t epsilon_permille) {
    return placement_replica_bound(partition_count, 1, broker_count, epsilon_permille);
}

static uint32_t popcount64(uint64_t x) {
    uint32_t n = 0;
    for (; x != 0; x &= x - 1)
        n++;
    return n;
}

/* ---- the ring ------------------------------------------------------------------------------ */

static int point_compare(const void *a, const void *b) {
    const struct placement_point *p = a, *q = b;
    if (p->hash != q->hash) return p->hash < q->hash ? -1 : 1;
    if (p->broker_slot != q->broker_slot) return p->broker_slot < q->broker_slot ? -1 : 1;
    if (p->vnode_index != q->vnode_index) return p->vnode_index < q->vnode_index ? -1 : 1;
    return 0;
}

static int ring_ids_valid(const uint32_t *ids, uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        if (ids[i] == 0) return 0;
        for (uint32_t j = i + 1; j < count; j++)
            if (ids[i] == ids[j]) return 0;
    }
    return 1;
}

int placement_ring_build(struct placement_ring *ring, const uint32_t *broker_ids,
                         uint32_t broker_count, uint32_t vnodes) {
    RQ_ASSERT(ring != NULL);
    if (broker_count == 0 || broker_count > PLACEMENT_BROKERS_MAX) return RQ_EINVAL;
    if (vnodes == 0 || vnodes > PLACEMENT_VNODES_MAX) return RQ_EINVAL;
    RQ_ASSERT(broker_ids != NULL);
    if (!ring_ids_valid(broker_ids, broker_count)) return RQ_EINVAL;

    ring->broker_count = broker_count;
    ring->vnodes = vnodes;
    ring->point_count = broker_count * vnodes;
    /* Insertion sort: at most 64 ids. */
    for (uint32_t i = 0; i < broker_count; i++) {
        uint32_t id = broker_ids[i], j = i;
        for (; j > 0 && ring->broker_ids[j - 1] > id; j--)
            ring->broker_ids[j] = ring->broker_ids[j - 1];
        ring->broker_ids[j] = id;
    }
    uint32_t p = 0;
    for (uint32_t slot = 0; slot < broker_count; slot++) {
        for (uint32_t v = 0; v < vnodes; v++) {
            ring->points[p].hash = placement_vnode_hash(ring->broker_ids[slot], v);
            ring->points[p].broker_slot = slot;
            ring->points[p].vnode_index = v;
            p++;
        }
    }
    RQ_ASSERT(p == ring->point_count);
    qsort(ring->points, p, sizeof ring->points[0], point_compare);
    return 0;
}

/* The first point at or after hash, wrapping to 0 past the last. */
static uint32_t ring_lower_bound(const struct placement_ring *ring, uint64_t hash) {
    uint32_t lo = 0, hi = ring->point_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].hash < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == ring->point_count ? 0 : lo;
}

/* ---- assignment state ---------------------------------------------------------------------- */

struct assign_state {
    const struct placement_ring *ring;
    uint32_t replication_factor;
    uint32_t replica_bound;
    uint32_t leader_bound;
    uint32_t remaining; /* partitions not yet placed, including the one being placed */
    uint32_t replica_count[PLACEMENT_BROKERS_MAX];
    uint32_t leader_count[PLACEMENT_BROKERS_MAX];
    /* pair_count[u][v]: placed partitions led by u with v as another replica. */
    uint32_t pair_count[PLACEMENT_BROKERS_MAX][PLACEMENT_BROKERS_MAX];
    struct placement_stats stats;
};

static int item_compare(const void *a, const void *b) {
    const struct placement_item *p = a, *q = b;
    if (p->hash != q->hash) return p->hash < q->hash ? -1 : 1;
    if (p->topic_key != q->topic_key) return p->topic_key < q->topic_key ? -1 : 1;
    if (p->index != q->index) return p->index < q->index ? -1 : 1;
    return 0;
}

/* The tight brokers (room >= remaining) and the slack S - m·R of the Gale–Ryser check. */
static uint64_t capacity_tight(const struct assign_state *st, uint64_t *slack) {
    uint64_t m = st->remaining, sum = 0, tight = 0;
    RQ_ASSERT(m > 0);
    for (uint32_t b = 0; b < st->ring->broker_count; b++) {
        RQ_ASSERT(st->replica_count[b] <= st->replica_bound);
        uint64_t room = st->replica_bound - st->replica_count[b];
        sum += room < m ? room : m;
        if (room >= m) tight |= 1ULL << b;
    }
    RQ_ASSERT(sum >= m * st->replication_factor); /* the invariant the walk keeps */
    *slack = sum - m * st->replication_factor;
    return tight;
}

/* Walks clockwise from hash, writing R distinct broker slots into row in ring order. */
static void walk_replicas(struct assign_state *st, uint64_t hash, uint32_t *row) {
    const struct placement_ring *ring = st->ring;
    uint64_t slack;
    uint64_t tight = capacity_tight(st, &slack);
    uint64_t taken = 0;
    uint32_t chosen = 0, start = ring_lower_bound(ring, hash);
    for (uint32_t step = 0; step < ring->point_count && chosen < st->replication_factor; step++) {
        uint32_t slot = ring->points[(start + step) % ring->point_count].broker_slot;
        uint64_t bit = 1ULL << slot;
        st->stats.points_walked++;
        if (taken & bit) continue;
        if (st->replica_count[slot] >= st->replica_bound) {
            st->stats.full_skips++;
            continue;
        }
        if (!(tight & bit)) {
            int64_t need = (int64_t)popcount64(tight & ~taken) - (int64_t)slack;
            if ((int64_t)(st->replication_factor - chosen) <= need) {
                st->stats.reserve_skips++;
                continue;
            }
        }
        taken |= bit;
        row[chosen++] = slot;
    }
    RQ_ASSERT(chosen == st->replication_factor); /* one lap suffices: see the top of this file */
    RQ_ASSERT(popcount64(tight & ~taken) <= slack);
}

/* Moves row[pos] to the front, keeping the others in order. */
static void row_rotate_to_front(uint32_t *row, uint32_t pos) {
    uint32_t leader = row[pos];
    for (uint32_t j = pos; j > 0; j--)
        row[j] = row[j - 1];
    row[0] = leader;
}

/* Adds (delta = +1) or removes (-1) a placed row's leader counts; row[0] leads. */
static void count_leader(struct assign_state *st, const uint32_t *row, int delta) {
    uint32_t lead = row[0];
    st->leader_count[lead] += (uint32_t)delta;
    for (uint32_t j = 1; j < st->replication_factor; j++)
        st->pair_count[lead][row[j]] += (uint32_t)delta;
}

/* Breadth-first search from the brokers of row (all at leader_bound) to one below it. Fills
 * path[0..len-1] (path[0] in row, path[len-1] has room) and returns len. */
static uint32_t leader_path(const struct assign_state *st, const uint32_t *row, uint32_t *path) {
    uint32_t n = st->ring->broker_count;
    uint8_t parent[PLACEMENT_BROKERS_MAX];
    uint32_t queue[PLACEMENT_BROKERS_MAX], head = 0, tail = 0;
    uint64_t seen = 0;
    memset(parent, SLOT_NONE, sizeof parent);
    for (uint32_t j = 0; j < st->replication_factor; j++) {
        RQ_ASSERT(st->leader_count[row[j]] >= st->leader_bound);
        seen |= 1ULL << row[j];
        queue[tail++] = row[j];
    }
    uint32_t target = SLOT_NONE;
    while (head < tail && target == SLOT_NONE) {
        uint32_t u = queue[head++];
        for (uint32_t v = 0; v < n && target == SLOT_NONE; v++) {
            if ((seen & (1ULL << v)) || st->pair_count[u][v] == 0) continue;
            seen |= 1ULL << v;
            parent[v] = (uint8_t)u;
            queue[tail++] = v;
            if (st->leader_count[v] < st->leader_bound) target = v;
        }
    }
    RQ_ASSERT(target != SLOT_NONE); /* Hall's condition: see the top of this file */
    uint32_t len = 0;
    for (uint32_t v = target; v != SLOT_NONE; v = parent[v]) {
        RQ_ASSERT(len < PLACEMENT_BROKERS_MAX);
        path[len++] = v;
    }
    for (uint32_t i = 0; i < len / 2; i++) { /* reverse: source first */
        uint32_t t = path[i];
        path[i] = path[len - 1 - i];
        path[len - 1 - i] = t;
    }
    RQ_ASSERT(len >= 2);
    return len;
}

static uint32_t row_find(const uint32_t *row, uint32_t r, uint32_t slot) {
    for (uint32_t j = 0; j < r; j++)
        if (row[j] == slot) return j;
    return r;
}

/* The current partition's replicas all lead leader_bound partitions: shift leadership along an
 * augmenting path among the placed partitions items[0..placed-1], then give row path[0]. */
static void leader_repair(struct assign_state *st, const struct placement_item *items,
                          uint32_t placed, uint32_t *replicas, uint32_t *row) {
    uint32_t r = st->replication_factor;
    uint32_t path[PLACEMENT_BROKERS_MAX];
    uint32_t len = leader_path(st, row, path);
    /* One scan finds, for each edge path[i] -> path[i+1], a partition led by path[i] that has
     * path[i+1] as a replica. The path's brokers are distinct, so the partitions are too. */
    uint32_t edge_row[PLACEMENT_BROKERS_MAX];
    uint32_t found = 0;
    for (uint32_t i = 0; i + 1 < len; i++)
        edge_row[i] = UINT32_MAX;
    for (uint32_t k = 0; k < placed && found + 1 < len; k++) {
        const uint32_t *other = replicas + (uint64_t)items[k].position * r;
        for (uint32_t i = 0; i + 1 < len; i++) {
            if (edge_row[i] != UINT32_MAX || other[0] != path[i]) continue;
            if (row_find(other, r, path[i + 1]) == r) continue;
            edge_row[i] = items[k].position;
            found++;
        }
    }
    RQ_ASSERT(found + 1 == len);
    for (uint32_t i = 0; i + 1 < len; i++) {
        uint32_t *other = replicas + (uint64_t)edge_row[i] * r;
        count_leader(st, other, -1);
        row_rotate_to_front(other, row_find(other, r, path[i + 1]));
        count_leader(st, other, +1);
        st->stats.leader_shifts++;
    }
    RQ_ASSERT(st->leader_count[path[0]] == st->leader_bound - 1);
    row_rotate_to_front(row, row_find(row, r, path[0]));
    st->stats.leader_repairs++;
}

/* The preferred leader: the first replica in ring order that leads fewer than leader_bound. */
static void choose_leader(struct assign_state *st, const struct placement_item *items,
                          uint32_t placed, uint32_t *replicas, uint32_t *row) {
    for (uint32_t j = 0; j < st->replication_factor; j++) {
        if (st->leader_count[row[j]] < st->leader_bound) {
            row_rotate_to_front(row, j);
            return;
        }
    }
    leader_repair(st, items, placed, replicas, row);
}

static int input_valid(const struct placement_ring *ring, const struct placement_input *in) {
    if (in->partition_count > PLACEMENT_PARTITIONS_MAX) return 0;
    if (in->replication_factor == 0 || in->replication_factor > PLACEMENT_REPLICAS_MAX) return 0;
    if (in->replication_factor > ring->broker_count) return 0;
    if (in->epsilon_permille > PLACEMENT_EPSILON_PERMILLE_MAX) return 0;
    return 1;
}

/* Fills and sorts work; returns 0, or RQ_EINVAL when a partition appears twice. */
static int order_partitions(const struct placement_input *in, struct placement_item *work) {
    for (uint32_t i = 0; i < in->partition_count; i++) {
        const struct placement_partition *p = &in->partitions[i];
        work[i].hash = placement_partition_hash(p->topic_key, p->index);
        work[i].topic_key = p->topic_key;
        work[i].index = p->index;
        work[i].position = i;
    }
    if (in->partition_count > 1) qsort(work, in->partition_count, sizeof work[0], item_compare);
    for (uint32_t i = 1; i < in->partition_count; i++)
        if (item_compare(&work[i - 1], &work[i]) == 0) return RQ_EINVAL;
    return 0;
}

int placement_assign(const struct placement_ring *ring, const struct placement_input *in,
                     struct placement_item *work, uint32_t *replicas,
                     struct placement_stats *stats) {
    RQ_ASSERT(ring != NULL);
    RQ_ASSERT(in != NULL);
    RQ_ASSERT(ring->broker_count >= 1 && ring->broker_count <= PLACEMENT_BROKERS_MAX);
    RQ_ASSERT(ring->point_count == ring->broker_count * ring->vnodes);
    if (!input_valid(ring, in)) return RQ_EINVAL;
    if (in->partition_count > 0) {
        RQ_ASSERT(in->partitions != NULL);
        RQ_ASSERT(work != NULL);
        RQ_ASSERT(replicas != NULL);
    }
    int rc = order_partitions(in, work);
    if (rc != 0) return rc;

    static const struct assign_state zero;
    struct assign_state st = zero;
    uint32_t n = ring->broker_count, r = in->replication_factor;
    st.ring = ring;
    st.replication_factor = r;
    st.replica_bound = placement_replica_bound(in->partition_count, r, n, in->epsilon_permille);
    st.leader_bound = placement_leader_bound(in->partition_count, n, in->epsilon_permille);
    RQ_ASSERT(st.replica_bound <= (uint64_t)r * st.leader_bound);
    st.stats.replica_bound = st.replica_bound;
    st.stats.leader_bound = st.leader_bound;

    for (uint32_t k = 0; k < in->partition_count; k++) {
        uint32_t *row = replicas + (uint64_t)work[k].position * r;
        st.remaining = in->partition_count - k;
        walk_replicas(&st, work[k].hash, row);
        choose_leader(&st, work, k, replicas, row);
        for (uint32_t j = 0; j < r; j++)
            st.replica_count[row[j]]++;
        count_leader(&st, row, +1);
        RQ_ASSERT(st.leader_count[row[0]] <= st.leader_bound);
    }
    /* Rows hold broker slots while placing; the caller gets ids. */
    for (uint64_t i = 0; i < (uint64_t)in->partition_count * r; i++) {
        RQ_ASSERT(replicas[i] < n);
        replicas[i] = ring->broker_ids[replicas[i]];
    }
    if (stats != NULL) *stats = st.stats;
    return 0;
}

/* ---- comparing placements ------------------------------------------------------------------ */

void placement_diff(const uint32_t *before, const uint32_t *after, uint32_t partition_count,
                    uint32_t replication_factor, struct placement_diff *diff) {
    RQ_ASSERT(diff != NULL);
    RQ_ASSERT(replication_factor >= 1 && replication_factor <= PLACEMENT_REPLICAS_MAX);
    uint32_t r = replication_factor;
    memset(diff, 0, sizeof *diff);
    for (uint64_t i = 0; i < partition_count; i++) {
        const uint32_t *a = before + i * r, *b = after + i * r;
        uint32_t moved = 0;
        for (uint32_t j = 0; j < r; j++)
            if (row_find(a, r, b[j]) == r) moved++;
        diff->replicas_moved += moved;
        diff->sets_changed += moved > 0;
        diff->leaders_moved += a[0] != b[0];
    }
}
