/* broker_internal.h — the state of a broker (broker.h), shared by broker.c (groups, the cluster,
 * servers' messages) and broker_client.c (clients' requests). Not for use outside src/node/. */
#ifndef RQ_NODE_BROKER_INTERNAL_H
#define RQ_NODE_BROKER_INTERNAL_H

#include "broker/coordinator.h"
#include "node/broker.h"
#include "node/controller_group.h"
#include "node/partition_group.h"
#include "proto/frame.h"

/* A partition replica on this node. */
struct broker_part {
    uint32_t group;
    struct part_group *pg;
    char topic[PROTO_TOPIC_NAME_MAX + 1];
    uint32_t partition;
    int32_t waiting_first;           /* its fetches in the request table, oldest first (slots; */
    int32_t waiting_last;            /*   -1: none), so new records wake only them */
    uint64_t retained_below;         /* what host_retain_log was last told */
    uint64_t handoff_after_ns;       /* rebalancing: the next leadership hand-off, not before */
    uint32_t handoffs;               /*   and how many were tried (each to the next voter) */
    uint8_t shrunk;                  /* no longer placed here: host_group_shrink asked */
    /* Observability only (broker_group_metrics), never read by the broker's decisions: record
     * bytes as produced (proto_records.size, what retention counts) ... */
    uint64_t bytes_in;               /* ... in produce requests this replica accepted as leader */
    uint64_t bytes_out;              /* ... in fetch answers this replica sent */
};

enum request_kind { REQ_FREE = 0, REQ_ADMIN, REQ_PRODUCE, REQ_FETCH, REQ_CURSOR };

/* A client request waiting for its answer. Known to the state machines by a cookie: slot index
 * and a generation, so that an answer for a slot reused since is recognised and dropped. */
struct broker_request {
    enum request_kind kind;
    uint8_t answer_type;             /* the proto type of the answer */
    uint32_t generation;
    uint64_t conn;
    uint32_t correlation;
    uint64_t since_ns;               /* when it arrived */
    uint64_t deadline_ns;
    uint64_t confirm_until_ns;       /* REQ_FETCH at a follower: how long its read index may take */
    /* REQ_FETCH: the parked fetch, linked into its partition's list */
    int32_t wait_prev;
    int32_t wait_next;
    uint8_t confirming;              /* a follower waits for its read index (ReadIndex) */
    uint8_t loading;                 /* its entries are being read back from the store */
    uint32_t group;
    uint64_t offset;
    uint32_t max_records;
    uint32_t max_bytes;
    /* REQ_FETCH for a consumer group (GROUP_FETCH_REQ): served only while the cursor's claim is
     * (cursor_generation, cursor_member), checked when it arrives and again when it is answered;
     * cursor_size 0: a plain fetch. REQ_CURSOR: the partition's group, for the answer's bounds. */
    uint8_t cursor[PROTO_CURSOR_MAX];
    uint32_t cursor_size;
    uint64_t cursor_generation;
    uint64_t cursor_member;
};

struct broker {
    const struct rq_io *io;
    struct broker_config cfg;
    struct broker_observer obs;
    struct host *host;
    struct ctl_group *ctl;
    struct broker_part *parts[HOST_GROUP_ID_LIMIT];   /* by group id */
    uint64_t next_heartbeat_ns;
    uint64_t next_move_ns;           /* rebalancing steps (broker_moves.c) */
    uint64_t next_retention_ns;      /* retention checks (retain_parts) */
    int placement_changed;           /* the controller's state changed: partitions to add? */
    struct broker_request requests[BROKER_REQUESTS_MAX];
    uint32_t next_generation;
    struct broker_stats stats;
    struct coord *coord;             /* consumer groups, while this node leads the controller */
    uint64_t coord_epoch;            /* the controller term it was set for; 0: none */
    uint8_t answer[PROTO_FRAME_HEADER + BROKER_ANSWER_MAX];
    uint8_t records[BROKER_ANSWER_MAX];   /* a fetch answer's records, before the answer */
};

/* broker.c */
uint64_t broker_now(const struct broker *b);
/* The partition replica for (topic, partition) on this node, or NULL with *err: RQ_ENOTOPIC. */
struct broker_part *broker_part_find(struct broker *b, struct proto_bytes topic, uint32_t p,
                                     int *err);

/* broker_moves.c: each partition this node leads steps its membership towards its target. */
void broker_move_parts(struct broker *b);

/* broker_groups.c: consumer groups (coordinator requests, cursors, group fetches' check) */
/* Serves a consumer-group request (types PROTO_JOIN_GROUP_REQ .. PROTO_DESCRIBE_GROUP_REQ but
 * GROUP_FETCH, which broker_client.c serves as a fetch); returns 0 when f->type is not one. */
int broker_groups_serve(struct broker *b, uint64_t conn, const struct proto_frame *f,
                        const struct proto_msg *m);
/* A cursor proposal was applied (or failed): answers its OFFSET_RESP. */
void broker_cursor_done(struct broker *b, struct broker_request *r, const struct part_group_result *res);
/* Keeps the coordinator's epoch on the controller's term and expires silent members. */
void broker_groups_tick(struct broker *b, uint64_t now_ns);
/* Whether a group fetch may still be served: its cursor's claim is its own. */
int broker_fetch_owns(const struct broker *b, const struct broker_request *w);

/* broker_client.c */
/* The partition replica this node leads for (topic, p), or NULL with *err: RQ_ENOTOPIC,
 * RQ_ECLOSED (it is recovering) or RQ_ENOTLEADER with *hint the leader it knows (0: none).
 * *raft: the group's Raft state (NULL when there is no replica or it is recovering). */
struct broker_part *broker_part_led(struct broker *b, struct proto_bytes topic, uint32_t p,
                                    int *err, uint32_t *hint, const struct raft **raft);
/* The request table, for broker_groups.c. */
struct broker_request *broker_request_new(struct broker *b, enum request_kind kind, uint64_t conn,
                                          uint32_t correlation, uint8_t answer_type);
void broker_request_free(struct broker *b, struct broker_request *r);
uint64_t broker_request_cookie(const struct broker *b, const struct broker_request *r);
void broker_answer(struct broker *b, uint64_t conn, uint8_t type, uint32_t correlation,
                   size_t payload_size);   /* the payload is at b->answer + PROTO_FRAME_HEADER */
void broker_ctl_done(void *arg, uint64_t cookie, const struct controller_result *res);
void broker_part_done(void *arg, uint64_t cookie, const struct part_group_result *res);
/* The store read for the fetch `cookie` finished (host cb.log_read). */
void broker_fetch_loaded(struct broker *b, uint64_t cookie, int err,
                         const struct raft_entry *entries, uint32_t count);
/* A follower's read index for the fetch `cookie` is applied: it may be served now. */
void broker_fetch_confirmed(struct broker *b, uint64_t cookie);
/* The group applied entries: parked fetches for it may be served now. */
void broker_fetch_wake(struct broker *b, struct broker_part *part);
/* Answers requests past their deadline (parked fetches: with what there is). */
void broker_requests_tick(struct broker *b, uint64_t now_ns);

#endif
