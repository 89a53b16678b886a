/* placement.h — which brokers hold a partition's replicas, and which of them is its preferred
 * leader: consistent hashing with virtual nodes and bounded loads (Mirrokni, Thorup and
 * Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018).
 *
 * The ring. Every live broker puts `vnodes` points on a 64-bit ring; point v of broker b sits at
 * placement_vnode_hash(b, v). A partition sits at placement_partition_hash(topic_key, index).
 * Points are ordered by (hash, broker id, vnode index), so even a hash collision is ordered the
 * same way everywhere. Both hashes are fixed functions (splitmix64's finalizer, see placement.c):
 * every controller replica computes the same placement from the same inputs, forever; changing
 * them is a format change.
 *
 * The walk. Partitions are placed one at a time in ascending (hash, topic_key, index) order. Each
 * walks the ring clockwise from its own hash and takes the first R distinct brokers that are not
 * full. With P partitions, R replicas each, n brokers and a slack ε (given in per mille):
 *     a broker holds at most  replica_bound = ⌈(1 + ε) · P·R / n⌉  replicas, and
 *     leads at most           leader_bound  = ⌈(1 + ε) · P / n⌉    partitions.
 * Both bounds always hold: placement_assign never fails on valid input. Two rules make that so
 * (proofs in placement.c): a broker that every remaining partition must use is never passed over
 * when skipping it would leave too little room (a Gale–Ryser check on the remaining capacity); and
 * when all R replicas of a partition already lead leader_bound partitions, leadership is shifted
 * along an augmenting path among the partitions already placed (Hall's condition holds because
 * replica_bound <= R · leader_bound).
 *
 * The result is a pure function of the broker set, the partition set, R, ε and vnodes: neither the
 * order of broker_ids nor the order of partitions changes which brokers a partition gets (the
 * order of the output rows follows the input).
 *
 * Memory: placement_assign allocates nothing. The ring (struct placement_ring, ~256 KiB) and the
 * work array (one struct placement_item per partition) are the caller's; the rest is bounded stack
 * (~17 KiB). Time: O(P log P + P·R·points_walked), plus O(P·R) per leadership repair (rare). */
#ifndef RQ_META_PLACEMENT_H
#define RQ_META_PLACEMENT_H

#include <stdint.h>

enum {
    PLACEMENT_BROKERS_MAX = 64, /* live brokers in one placement (a bit each in a u64) */
    PLACEMENT_VNODES_DEFAULT = 64,
    PLACEMENT_VNODES_MAX = 256,
    PLACEMENT_POINTS_MAX = PLACEMENT_BROKERS_MAX * PLACEMENT_VNODES_MAX,
    PLACEMENT_REPLICAS_MAX = 9,        /* = RAFT_MEMBERS_MAX: a replica set is one Raft group */
    PLACEMENT_PARTITIONS_MAX = 100000, /* partitions in one placement_assign call */
    PLACEMENT_EPSILON_PERMILLE_DEFAULT = 250,
    PLACEMENT_EPSILON_PERMILLE_MAX = 10000,
};

_Static_assert(PLACEMENT_BROKERS_MAX <= 64, "broker sets are u64 bit masks");
_Static_assert(PLACEMENT_BROKERS_MAX <= 255, "a broker slot fits in a u8");

struct placement_point {
    uint64_t hash;
    uint32_t broker_slot; /* index into placement_ring.broker_ids */
    uint32_t vnode_index;
};

/* The ring of one broker set. Built by placement_ring_build; read-only afterwards. */
struct placement_ring {
    uint32_t broker_count;
    uint32_t vnodes;                                     /* points per broker */
    uint32_t point_count;                                /* broker_count * vnodes */
    uint32_t broker_ids[PLACEMENT_BROKERS_MAX];          /* ascending */
    struct placement_point points[PLACEMENT_POINTS_MAX]; /* ascending (hash, slot, vnode) */
};

/* One partition: its topic (a topic id, or a hash of the topic's name: any stable 64-bit key)
 * and its index within the topic. */
struct placement_partition {
    uint64_t topic_key;
    uint32_t index;
};

/* placement_assign's work space: one per partition, contents undefined on return. */
struct placement_item {
    uint64_t hash;
    uint64_t topic_key;
    uint32_t index;
    uint32_t position; /* the partition's index in the caller's array */
};

struct placement_input {
    const struct placement_partition *partitions;
    uint32_t partition_count;    /* 0..PLACEMENT_PARTITIONS_MAX */
    uint32_t replication_factor; /* R: 1..min(broker_count, PLACEMENT_REPLICAS_MAX) */
    uint32_t epsilon_permille;   /* ε in 1/1000: 0..PLACEMENT_EPSILON_PERMILLE_MAX */
};

/* What one placement_assign did, for tests and traces. */
struct placement_stats {
    uint32_t replica_bound;
    uint32_t leader_bound;
    uint64_t points_walked;  /* ring points visited by all walks */
    uint32_t full_skips;     /* a broker passed over because it held replica_bound replicas */
    uint32_t reserve_skips;  /* ... because a broker every remaining partition needs came first */
    uint32_t leader_repairs; /* partitions whose leader needed an augmenting path */
    uint32_t leader_shifts;  /* leaderships moved by those paths */
};

/* Ring of point v = 0..vnodes-1 of every broker. Returns 0, or RQ_EINVAL (ring untouched) when
 * broker_count is 0 or above PLACEMENT_BROKERS_MAX, vnodes is 0 or above PLACEMENT_VNODES_MAX,
 * an id is 0, or an id appears twice. */
int placement_ring_build(struct placement_ring *ring, const uint32_t *broker_ids,
                         uint32_t broker_count, uint32_t vnodes);

/* Places every partition of in. replicas receives partition_count rows of R broker ids: row i is
 * in->partitions[i]'s replica set, R distinct ids of ring brokers, the preferred leader first and
 * the others in ring order. work holds partition_count items. stats may be NULL.
 * Returns 0, or RQ_EINVAL (replicas untouched) when partition_count, R or ε is out of its range
 * or a partition appears twice. */
int placement_assign(const struct placement_ring *ring, const struct placement_input *in,
                     struct placement_item *work, uint32_t *replicas,
                     struct placement_stats *stats);

/* ⌈(1000 + epsilon_permille) · partition_count · R / (1000 · broker_count)⌉: the most replicas
 * one broker gets. With R = 1 it is also the most partitions one broker leads. */
uint32_t placement_replica_bound(uint32_t partition_count, uint32_t replication_factor,
                                 uint32_t broker_count, uint32_t epsilon_permille);
uint32_t placement_leader_bound(uint32_t partition_count, uint32_t broker_count,
                                uint32_t epsilon_permille);

uint64_t placement_vnode_hash(uint32_t broker_id, uint32_t vnode_index);
uint64_t placement_partition_hash(uint64_t topic_key, uint32_t partition_index);

/* How two placements of the same partitions (rows of R ids each, same R) differ. */
struct placement_diff {
    uint64_t replicas_moved; /* Σ over partitions of |after's set \ before's set|: replica copies
                                that must be built on a broker that did not hold them */
    uint32_t leaders_moved;  /* partitions whose preferred leader differs */
    uint32_t sets_changed;   /* partitions whose replica set (as a set) differs */
};

void placement_diff(const uint32_t *before, const uint32_t *after, uint32_t partition_count,
                    uint32_t replication_factor, struct placement_diff *diff);

#endif
