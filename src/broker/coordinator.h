/* coordinator.h — consumer-group membership and partition assignment: a pure state machine.
 *
 * The node that leads the controller's Raft group runs one coordinator (README, "Consumer
 * groups"). It holds every group's members in memory, and nothing it holds is replicated: when
 * the controller's leadership moves, the new leader's coordinator starts empty
 * (coord_set_epoch) and the members, whose heartbeats now fail with RQ_ENOTLEADER or
 * RQ_ENOMEMBER, join it again. Correctness does not rest on this memory: a member consumes a
 * partition only after CLAIMING it in the partition's own log for its generation, and a claim of
 * a higher generation fences every lower one (broker/partition.h). What the coordinator must give
 * is generations that only grow, across coordinators too, and it does without writing anything:
 *
 *     generation = (epoch << 32) | count       epoch: the controller's Raft term at which this
 *                                              coordinator took office; count: its rebalances
 *                                              (all groups', 1 .. 2^32 - 1; it never wraps)
 *
 * Two coordinators of one term cannot exist (one Raft leader per term), and a later term's
 * generations are above every earlier term's. Member ids are made the same way, so an id from an
 * old coordinator is never taken for a new one's.
 *
 * A group consumes one topic, in one mode:
 *   - PROTO_MODE_QUEUE: each partition is assigned to exactly one member (none when the group has
 *     none); every member has at least floor(P / members) partitions and at most one more;
 *   - PROTO_MODE_PUBSUB: every member is assigned every partition (each member consumes with its
 *     own cursor, "GROUP/MEMBER"; see proto/group_msg.h).
 * The group's first member fixes its topic, mode and strategy; a join that names others is refused
 * (RQ_EINVAL). A group with no members is forgotten (its cursors live on in the partitions).
 *
 * The generation moves (a REBALANCE) when a member joins, leaves, or is expired: silent for longer
 * than its session (coord_tick). The rebalance computes every member's partitions at once
 * (Kafka's newer broker-side assignment); members learn theirs from their next heartbeat. Two
 * strategies, both deterministic (members are ordered by id):
 *   - PROTO_STRATEGY_RANGE: member k of n, in id order, gets a contiguous range of partitions:
 *     the first P % n members get ceil(P / n), the rest floor(P / n);
 *   - PROTO_STRATEGY_STICKY: each partition stays with its owner if that member is still in the
 *     group and holds fewer than its quota (quotas as for range: the first P % n members in id
 *     order may hold ceil(P / n)); the partitions left go, lowest first, to the member with the
 *     fewest partitions below its quota (ties: the lower id). A rebalance therefore moves no
 *     partition that balance does not require to move.
 *
 * Bounded: PROTO_GROUPS_MAX groups, PROTO_GROUP_MEMBERS_MAX members each, topics of at most
 * PROTO_GROUP_PARTITIONS_MAX partitions. Nothing here reads a clock: times are arguments. */
#ifndef RQ_BROKER_COORDINATOR_H
#define RQ_BROKER_COORDINATOR_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

enum { COORD_NO_OWNER = 0xFF };   /* coord_group.owner[p] of a partition no member holds */

struct coord_member {
    uint64_t id;
    uint8_t name[PROTO_MEMBER_NAME_MAX];
    uint32_t name_size;
    uint32_t session_ms;
    uint64_t deadline_ns;         /* expired once now passes this (coord_tick: deadline < now) */
};

struct coord_group {
    uint8_t name[PROTO_GROUP_NAME_MAX];
    uint32_t name_size;
    uint8_t topic[PROTO_TOPIC_NAME_MAX];
    uint32_t topic_size;
    uint8_t mode;                 /* enum proto_group_mode */
    uint8_t strategy;             /* enum proto_group_strategy */
    uint32_t partition_count;     /* 1..PROTO_GROUP_PARTITIONS_MAX */
    uint64_t generation;          /* >= 1 */
    uint32_t member_count;        /* 1..PROTO_GROUP_MEMBERS_MAX: members[0..count), id ascending */
    struct coord_member members[PROTO_GROUP_MEMBERS_MAX];
    uint8_t owner[PROTO_GROUP_PARTITIONS_MAX];   /* QUEUE: index into members, or
                                                    COORD_NO_OWNER; PUBSUB: unused */
};

struct coord_join {
    struct proto_bytes group;     /* valid group name */
    struct proto_bytes topic;     /* valid topic name */
    struct proto_bytes member_name;
    uint8_t mode;
    uint8_t strategy;
    uint32_t session_ms;          /* PROTO_SESSION_MS_MIN..PROTO_SESSION_MS_MAX */
    uint64_t member_id;           /* 0: new; else a rejoin (RQ_ENOMEMBER when unknown) */
    uint32_t partition_count;     /* the topic's, looked up by the caller */
};

/* What a member is told: its id, the group's generation and the member's partitions. */
struct coord_answer {
    uint64_t member_id;
    uint64_t generation;
    uint32_t partition_count;
    uint32_t partitions[PROTO_GROUP_PARTITIONS_MAX];   /* strictly increasing */
};

struct coord_stats {
    uint64_t joins;               /* members that joined (new ids given) */
    uint64_t leaves;
    uint64_t expired;             /* members whose session ran out */
    uint64_t rebalances;          /* generations given out */
};

struct coord;

struct coord *coord_create(void);   /* NULL when out of memory */
void coord_destroy(struct coord *c);

/* This node took the controller's leadership at Raft term `epoch` (>= 1, and above any epoch
 * given before): every group is forgotten, and generations and member ids start over in it. */
void coord_set_epoch(struct coord *c, uint64_t epoch);

/* A member joins (j->member_id 0) or rejoins (j->member_id known: its name and session are
 * updated, its session extended to now_ns + session_ms, no rebalance). Returns 0 with *out
 * filled; RQ_EINVAL (the group consumes another topic, or in another mode or strategy, or a topic
 * of another partition count; a pub/sub member without a name; partition_count 0; a field out of
 * its protocol range), RQ_ENOMEMBER (member_id unknown), RQ_ENOMEM (PROTO_GROUPS_MAX groups or
 * PROTO_GROUP_MEMBERS_MAX members already; or this epoch's 2^32 - 1 generations are spent but
 * for those kept for the present members' leaves: wait for a new epoch), RQ_ETOOBIG
 * (partition_count over PROTO_GROUP_PARTITIONS_MAX), or RQ_ECLOSED (no epoch set: this node does
 * not coordinate). */
int coord_join(struct coord *c, const struct coord_join *j, uint64_t now_ns,
               struct coord_answer *out);

/* A member's heartbeat: its session is extended and *out holds the current generation and the
 * member's partitions in it. Returns 0, or RQ_ENOMEMBER (no such group or member). */
int coord_heartbeat(struct coord *c, struct proto_bytes group, uint64_t member_id, uint64_t now_ns,
                    struct coord_answer *out);

/* A member leaves (a rebalance follows). Returns 0 or RQ_ENOMEMBER. */
int coord_leave(struct coord *c, struct proto_bytes group, uint64_t member_id);

/* Expires every member whose deadline is past now_ns (deadline_ns < now_ns: at the deadline
 * itself a member lives), with one rebalance for each group that lost any, however many. Members
 * expire only here. */
void coord_tick(struct coord *c, uint64_t now_ns);

/* The groups, in the order they were created: i in 0..coord_group_count(). */
uint32_t coord_group_count(const struct coord *c);
const struct coord_group *coord_group_at(const struct coord *c, uint32_t i);
/* The group of that name, or NULL. */
const struct coord_group *coord_find(const struct coord *c, struct proto_bytes group);
/* The partitions member index m of g holds (strictly increasing); returns their count. */
uint32_t coord_member_partitions(const struct coord_group *g, uint32_t m,
                                 uint32_t out[PROTO_GROUP_PARTITIONS_MAX]);

const struct coord_stats *coord_stats(const struct coord *c);

/* For tests: moves this epoch's count of rebalances forward to `count` (>= the present one), so
 * the end of an epoch's generations can be reached without 2^32 joins. */
void coord_skip_count(struct coord *c, uint32_t count);

#endif
