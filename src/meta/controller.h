/* controller.h — the controller's replicated state machine: brokers, topics, replica sets, leaders
 * and producer ids (DESIGN.md, "Controller"). It runs on a Raft group of the controller nodes:
 * every command is a log entry, applied in log order by this pure, deterministic code, so every
 * controller replica holds the same state. Nothing here reads a clock: times come inside the
 * commands, stamped by the leader that proposed them.
 *
 * Commands (an entry's data; varints, strings as varint length + bytes):
 *     u8 kind, then by kind:
 *     REGISTER        varint broker, string address (<= 255), varint now_ns
 *     HEARTBEAT       varint broker, varint now_ns
 *     EXPIRE          varint now_ns: every live broker whose deadline passed is marked down, and
 *                     each partition it led gets its first live replica as leader
 *     CREATE_TOPIC    string name, varint partitions, varint replication, varint retention_ms,
 *                     varint retention_bytes, varint max_message_bytes
 *     DELETE_TOPIC    string name
 *     INIT_PRODUCER   nothing: hands out the next producer id
 *     LEADER          string topic, varint partition, varint leader, varint term: a partition's
 *                     Raft leader, as reported; an older term than the one recorded is ignored
 *     DECOMMISSION    varint broker: the broker leaves the cluster for good; its replicas move
 *     REPLICAS        string topic, varint partition, varint term, varint config_index, varint
 *                     count, count varints: the voters of the partition's Raft group, as its
 *                     leader in `term` reports them once the configuration entry at config_index
 *                     (0: from a snapshot or the bootstrap) is committed; a report not newer in
 *                     (term, config_index) than the one recorded is ignored
 * A command that does not decode is a no-op on every replica alike (counted); a command that
 * decodes but cannot be done (an unknown topic, a name taken, too few live brokers, group ids
 * used up: RQ_ENOSPC) leaves the
 * state unchanged and reports its error in the result, for the leader to answer the client.
 *
 * Placement: a topic's replica sets are placed when it is created, over the brokers live at that
 * moment (meta/placement.h: consistent hashing with bounded loads, per topic; the topic's id is
 * its ring key), the preferred leader first. Brokers going down move leadership within the
 * replica sets, never replicas: a broker that is down may come back, and moving its data for a
 * 2-second silence would cost more than it saves.
 *
 * Rebalancing: when the cluster's MEMBERS change — a broker registers for the first time (joins),
 * or is decommissioned (leaves) — every topic is placed again over the members (registered, not
 * decommissioned, live or not), and each partition's result becomes its TARGET replica set.
 * Consistent hashing moves few replicas (about 1/n of them when one of n brokers joins or
 * leaves). The controller moves nothing itself: each partition's Raft leader changes its group's
 * membership one server at a time towards the target (node/broker_moves.c) and reports the
 * voters it reaches (REPLICAS); `replicas` is what the group is, `target` what it should be. A
 * broker runs a partition's group while it is in either.
 *
 * Bounds: CONTROLLER_BROKERS_MAX brokers, CONTROLLER_TOPICS_MAX topics, CONTROLLER_PARTITIONS_MAX
 * partitions over all topics. The image (for snapshots) is deterministic and strictly decoded. */
#ifndef RQ_META_CONTROLLER_H
#define RQ_META_CONTROLLER_H

#include <stddef.h>
#include <stdint.h>

#include "meta/placement.h"
#include "proto/msg.h"

enum {
    CONTROLLER_BROKERS_MAX = PLACEMENT_BROKERS_MAX,
    CONTROLLER_TOPICS_MAX = 1024,
    CONTROLLER_PARTITIONS_MAX = PLACEMENT_PARTITIONS_MAX,
    /* one command, bytes: the longest is REPLICAS (a topic name and 14 varints) */
    CONTROLLER_CMD_MAX = 1 + 2 * 10 + 2 + PROTO_TEXT_MAX + (5 + PLACEMENT_REPLICAS_MAX) * 10,
    /* Raft group ids: the controller's own group is 1; partitions take the ids from 2 up, one
     * each, in topic creation order, never reused (a node may still hold a deleted partition's
     * files). The bound is the store's (STORE_GROUPS_MAX: group ids index a node's store). */
    CONTROLLER_GROUP = 1,
    CONTROLLER_GROUP_FIRST = 2,
    CONTROLLER_GROUP_LIMIT = 256,
};

enum controller_kind {
    CONTROLLER_REGISTER = 1,
    CONTROLLER_HEARTBEAT = 2,
    CONTROLLER_EXPIRE = 3,
    CONTROLLER_CREATE_TOPIC = 4,
    CONTROLLER_DELETE_TOPIC = 5,
    CONTROLLER_INIT_PRODUCER = 6,
    CONTROLLER_LEADER = 7,
    CONTROLLER_DECOMMISSION = 8,
    CONTROLLER_REPLICAS = 9,
    CONTROLLER_KIND_MAX = 9,
};

struct controller_broker {
    uint32_t id;
    uint8_t alive;
    uint8_t decommissioned;   /* for good: no placement counts it again */
    uint64_t epoch;           /* +1 at each registration: a restart is a new epoch */
    uint64_t deadline_ns;     /* marked down by an EXPIRE at or after this */
    uint8_t address_size;
    char address[PROTO_TEXT_MAX];
};

struct controller_partition {
    uint32_t group;           /* the partition's Raft group id */
    uint32_t replica_count;   /* 1..PLACEMENT_REPLICAS_MAX: the group's voters as last reported */
    uint32_t replicas[PLACEMENT_REPLICAS_MAX];   /* the preferred leader first */
    uint32_t target_count;    /* what placement wants (= replicas when nothing moves) */
    uint32_t target[PLACEMENT_REPLICAS_MAX];     /* the preferred leader first */
    uint32_t leader;          /* 0: none live */
    uint64_t leader_term;     /* of the last LEADER report taken */
    uint64_t replicas_term;   /* of the last REPLICAS report taken, and its configuration index */
    uint64_t replicas_index;
};

struct controller_topic {
    uint64_t id;              /* >= 1, never reused */
    uint8_t name_size;
    char name[PROTO_TOPIC_NAME_MAX];
    uint32_t partition_count;
    uint32_t replication;
    uint64_t retention_ms;
    uint64_t retention_bytes;
    uint32_t max_message_bytes;
    uint32_t group_base;      /* partition p is Raft group group_base + p */
    struct controller_partition *partitions;
};

struct controller;

struct controller_result {
    int error;                /* 0 or RQ_E*: what to answer the client */
    uint64_t producer_id;     /* INIT_PRODUCER */
    const struct controller_topic *topic;   /* CREATE_TOPIC: the new topic */
};

/* heartbeat_timeout_ns: a broker not heard for this long is marked down by the next EXPIRE.
 * Returns NULL only without memory. */
struct controller *controller_create(uint64_t heartbeat_timeout_ns);
void controller_destroy(struct controller *c);

/* Applies one command (an entry's data). Never fails on bad input: see above. */
void controller_apply(struct controller *c, const uint8_t *data, size_t size,
                      struct controller_result *res);

/* ---- command encoders: each returns the size written into buf (CONTROLLER_CMD_MAX bytes
 * suffice), asserting valid arguments (a name of the topic alphabet, an address <= 255 bytes). */
size_t controller_cmd_register(uint8_t *buf, uint32_t broker, const char *address, uint64_t now_ns);
size_t controller_cmd_heartbeat(uint8_t *buf, uint32_t broker, uint64_t now_ns);
size_t controller_cmd_expire(uint8_t *buf, uint64_t now_ns);
size_t controller_cmd_create_topic(uint8_t *buf, const struct proto_create_topic_req *req);
size_t controller_cmd_delete_topic(uint8_t *buf, const char *name);
size_t controller_cmd_init_producer(uint8_t *buf);
size_t controller_cmd_leader(uint8_t *buf, const char *topic, uint32_t partition, uint32_t leader,
                             uint64_t term);
size_t controller_cmd_decommission(uint8_t *buf, uint32_t broker);
/* voters: 1..PLACEMENT_REPLICAS_MAX distinct non-zero ids (asserted). */
size_t controller_cmd_replicas(uint8_t *buf, const char *topic, uint32_t partition, uint64_t term,
                               uint64_t config_index, const uint32_t *voters, uint32_t count);

/* ---- queries ---- */
const struct controller_topic *controller_topic(const struct controller *c, const uint8_t *name,
                                                size_t size);
const struct controller_topic *controller_topic_at(const struct controller *c, uint32_t i);
uint32_t controller_topic_count(const struct controller *c);
const struct controller_broker *controller_broker(const struct controller *c, uint32_t id);
const struct controller_broker *controller_broker_at(const struct controller *c, uint32_t i);
uint32_t controller_broker_count(const struct controller *c);
uint64_t controller_malformed(const struct controller *c);   /* commands that did not decode */
/* Whether node is in the partition's replica set or its target (it should run the group). */
int controller_partition_has(const struct controller_partition *p, uint32_t node);
/* Whether the target differs from the replica set (as sets). */
int controller_partition_moving(const struct controller_partition *p);
/* Whether some partition has broker id in its replica set or its target, or as its leader: a
 * decommissioned broker is still in use while its partitions move away (clients must reach it). */
int controller_broker_in_use(const struct controller *c, uint32_t id);
/* The brokers registered and not decommissioned: those a placement, and a default, counts. */
uint32_t controller_member_count(const struct controller *c);

/* ---- snapshots: a deterministic image, and its strict decoder ---- */
/* The image's size (to size a buffer), then the image itself; returns the bytes written. */
size_t controller_image_size(const struct controller *c);
size_t controller_image(const struct controller *c, uint8_t *buf, size_t cap);
/* Replaces c's state with an image. Returns 0, or RQ_ECORRUPT / RQ_ETRUNC / RQ_ETOOBIG with c
 * unchanged. */
int controller_restore(struct controller *c, const uint8_t *image, size_t size);

#endif
