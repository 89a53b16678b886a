/* mq_internal.h — the mq workload's state, shared by sim/mq.c (the cluster, producers, plain
 * consumers) and sim/mq_group.c (consumer group members). Not for other users. */
#ifndef RQ_SIM_MQ_INTERNAL_H
#define RQ_SIM_MQ_INTERNAL_H

#include <stdint.h>

#include "broker/partition.h"
#include "client/client.h"
#include "raft/msg.h"
#include "sim/brokernode.h"
#include "sim/groupcheck.h"
#include "sim/mqcheck.h"
#include "sim/sim.h"

enum {
    MQ_PARTITIONS_MAX = 4,
    MQ_VALUE_MAX = 96,
    MQ_PAD_MAX = 48,
    MQ_BASE_CLIENTS = 4,             /* producers and plain consumers; group members come after */
};

_Static_assert((int)MQCHECK_WHY_MAX == (int)GROUPCHECK_WHY_MAX, "one why buffer for both checkers");

static const struct proto_bytes MQ_TOPIC = {(const uint8_t *)"mq", 2};

struct mq_plan {                     /* what a client does, drawn per seed */
    int producer;
    uint8_t acks;
    uint8_t idempotent;
    uint8_t from_follower;
    uint8_t member;                  /* 0, or the mode of the group it is a member of */
    uint64_t every_ns;               /* a producer's pace */
    uint32_t delay_every;            /* a non-idempotent producer: every n-th message is
                                        delayed (broker/delay.h); 0: none */
};

/* The seed's consumer groups (mq_group.c): a queue group "q" and a pub/sub group "p". */
struct mq_groups {
    uint32_t queue_members;          /* clients MQ_BASE_CLIENTS.. in "q" */
    uint32_t pubsub_members;         /* the clients after them, in "p" */
    uint8_t strategy;                /* "q"'s (enum proto_group_strategy) */
    uint32_t session_ms;
    uint64_t commit_every_ns;
    uint64_t joins, leaves, assignments, commits, group_errors, reads;
    uint64_t cursor_refused;         /* CURSOR entries replicas applied as refused (fenced) */
};

struct mq_world {
    struct sim_broker_setup setup;   /* first: every node's config is the world (brokernode.h) */
    struct sim *sim;
    struct mqcheck *check;
    struct groupcheck *groupcheck;
    uint32_t partitions;
    uint32_t replication;
    uint64_t retention_bytes;        /* the topic's; 0: none */
    uint64_t retention_ms;
    uint64_t delayed_sent, delayed_held, delayed_read;   /* delayed messages (mq.c) */
    uint32_t decommission;           /* the broker client 0 decommissions; 0: none */
    uint64_t decommission_at_ns;
    int decommissioned;              /* the controller took it */
    struct mq_plan plans[SIM_CLIENTS_MAX];
    struct mq_groups groups;
    uint64_t heal_ns;                /* 0 until the heal */
    uint64_t stop_producing_ns;
    /* liveness after the heal, per client */
    uint8_t acked_after_heal[SIM_CLIENTS_MAX];
    uint8_t read_after_heal[SIM_CLIENTS_MAX];
    uint8_t assigned_after_heal[SIM_CLIENTS_MAX];   /* group members */
    uint64_t positions[SIM_CLIENTS_MAX][MQ_PARTITIONS_MAX];   /* consumers' next offsets */
    uint64_t ends[MQ_PARTITIONS_MAX];   /* the largest next offset any replica applied */
    uint64_t log_starts[MQ_PARTITIONS_MAX];   /* the furthest any replica applied */
    uint64_t acked, unacked_failures, produced, reads, replica_records, rereads;
    uint64_t retains, skips_to_log_start;
    uint32_t bugs;                   /* enum mq_bug: test hooks */
    char why[MQCHECK_WHY_MAX];
};

/* A group member's reads of one partition, as mqcheck sessions: a new session whenever the
 * member's (generation, id) changes or it reads an earlier offset again (it (re)claimed the
 * partition and starts over from the committed offset). */
struct mq_member_part {
    uint64_t session;                /* 0: none yet */
    uint64_t generation;
    uint64_t member;
    uint64_t next;                   /* the offset the session reads next */
};

struct mq_client {
    struct mq_world *w;
    const struct rq_io *io;          /* the environment's */
    struct rq_io lib_io;             /* what the library sees: set_timer wrapped */
    struct rq_client *c;
    uint32_t index;
    uint32_t incarnation;
    uint64_t sessions[MQ_PARTITIONS_MAX];   /* per partition: a new one at every seek */
    uint32_t seeks;
    uint64_t next_seek_ns;
    uint64_t lib_deadline_ns;
    uint64_t next_action_ns;
    uint64_t next_message;
    int topic_created;
    int topic_asked;                 /* a create_topic is under way */
    int decommission_asked;          /* a decommission is under way or done */
    int subscribed;
    /* a group member (plan->member) */
    int joined;                      /* rq_client_join_group in effect (until group_error) */
    uint64_t join_at_ns;             /* the next join, UINT64_MAX: none planned */
    uint64_t leave_at_ns;            /* the next leave, UINT64_MAX: none planned */
    uint32_t group_sessions;
    struct mq_member_part parts[MQ_PARTITIONS_MAX];
};

/* mq.c */
uint64_t mq_digest_of(struct proto_bytes key, struct proto_bytes value);
void mq_origin_of(const struct mq_world *w, struct proto_bytes value, uint64_t *producer,
                  uint64_t *sequence);
void mq_fail(struct mq_world *w, const char *what);

/* mq_group.c */
/* The client count a seed asks for (struct sim_workload.clients_for): MQ_BASE_CLIENTS, plus
 * the group members when the seed draws groups. */
uint32_t mq_clients_for(const struct sim_config *cfg);
/* Draws the seed's groups (a generator of its own: seeds without groups run as before) and
 * makes clients MQ_BASE_CLIENTS.. members. Groups turn retention off. */
void mq_groups_draw(struct mq_world *w, const struct sim_config *cfg);
/* A member's own work: joining, leaving now and then, joining again. */
void mq_member_act(struct mq_client *n, uint64_t now);
void mq_member_fetched(struct mq_client *n, uint32_t partition, const struct proto_record *r);
void mq_member_assigned(void *arg, uint64_t generation, uint64_t member_id,
                        const uint32_t *partitions, uint32_t count);
void mq_member_committed(void *arg, uint32_t partition, uint64_t generation, uint64_t offset);
void mq_member_group_error(void *arg, int error);
/* A replica applied a CURSOR entry (outcome PARTITION_CURSOR_DONE or _REFUSED). */
void mq_groups_applied(struct mq_world *w, uint32_t node, uint32_t partition,
                       const struct raft_entry *e, const struct partition_apply_result *res);
/* The end (after the heal): at least once. Returns 0, or -1 having failed the run. */
int mq_groups_finish(struct mq_world *w);
void mq_groups_note(struct mq_world *w);

#endif
