/* client_internal.h — the client's state, shared by client.c (metadata, producer, fetches,
 * admin) and group.c (a consumer group member). Not for use outside src/client/. */
#ifndef RQ_CLIENT_CLIENT_INTERNAL_H
#define RQ_CLIENT_CLIENT_INTERNAL_H

#include "base/rng.h"
#include "client/client.h"
#include "client/metadata.h"

enum {
    NONE = UINT32_MAX,
    SLOT_BITS = 8, /* correlation = generation << SLOT_BITS | slot */
    GENERATION_MAX = (1u << (32 - SLOT_BITS)) - 1,
    PUMP_ROUNDS_MAX = 4,      /* pump again when a callback queued work, this often */
    SENDS_PER_TOPIC_MAX = 64, /* batches one topic may send in one pump */
    BACKOFF_SHIFT_MAX = 20,
};
_Static_assert(CLIENT_REQUESTS_MAX == 1u << SLOT_BITS, "slot index fits the correlation's bits");
_Static_assert((int)CLIENT_TOPICS_MAX <= (int)PROTO_TOPICS_MAX,
               "one metadata request names every topic");
_Static_assert((long)CLIENT_SEND_MAX <= (long)RQ_MSG_MAX, "io->send drops longer messages");

enum req_kind {
    REQ_FREE = 0, REQ_METADATA, REQ_INIT_PRODUCER, REQ_PRODUCE, REQ_FETCH, REQ_ADMIN,
    REQ_GROUP,   /* JOIN_GROUP, HEARTBEAT or LEAVE_GROUP (client/group.c) */
    REQ_CURSOR,  /* CLAIM or COMMIT of one assigned partition (client/group.c) */
};

struct request {
    enum req_kind kind;
    uint32_t generation; /* 1..GENERATION_MAX, bumped at every use of the slot */
    uint32_t to_node;    /* an answer from anyone else is not ours */
    uint8_t version;     /* of the frame it went in */
    uint64_t deadline_ns;
    uint32_t owner;         /* topic (produce), subscription (fetch), admin op index */
    uint32_t batch_id;      /* produce */
    uint32_t partition;     /* produce */
    uint32_t record_count;  /* produce */
    const uint64_t *tokens; /* produce: the batch's tokens, valid until batcher_done */
    uint32_t epoch;         /* fetch: the subscription's epoch when sent */
    uint32_t slot;          /* its index in the table (answers are handled on a copy) */
    uint8_t type;           /* REQ_GROUP, REQ_CURSOR: the request's proto type */
    uint64_t value;         /* REQ_CURSOR: COMMIT's offset; REQ_GROUP: the generation sent */
};

struct topic {
    uint8_t used;
    uint8_t asked;    /* named by the metadata request under way */
    uint8_t resolved; /* a metadata answer to a request naming it came */
    uint8_t name_size;
    char name[PROTO_TOPIC_NAME_MAX];
    uint32_t partitions;     /* the batcher's, fixed at its creation */
    struct batcher *batcher; /* NULL until the first produce that can go */
    uint64_t wake_ns;        /* when the batcher has a batch to send */
};

struct subscription {
    uint8_t used;
    uint8_t paused; /* after fetch_error, until seek */
    uint8_t grouped; /* a partition assigned to this client's group: GROUP_FETCH_REQ */
    uint32_t topic;
    uint32_t partition;
    uint64_t position; /* the next offset to deliver */
    uint32_t request;  /* the fetch under way, or NONE */
    uint32_t epoch;    /* bumped by seek/unsubscribe: older answers are ignored */
    uint32_t failures; /* consecutive, for the back-off */
    uint64_t retry_ns;
};

enum admin_kind {
    ADMIN_FREE = 0, ADMIN_CREATE, ADMIN_DELETE, ADMIN_DESCRIBE, ADMIN_DECOMMISSION,
    ADMIN_LIST_GROUPS,     /* at the coordinator (the controller's leader) */
    ADMIN_DESCRIBE_GROUP,  /* name: the group */
    ADMIN_OFFSET,          /* at a partition's leader: name the topic, cursor/partition/offset */
    ADMIN_DELAYED,         /* a delayed produce, at a partition's leader: payload, partition */
};

struct admin_op {
    enum admin_kind kind;
    uint64_t token;
    struct proto_create_topic_req create; /* create.name points into name */
    uint8_t name[PROTO_TOPIC_NAME_MAX];
    uint32_t name_size;
    uint32_t hint; /* the controller leader an answer named, 0: none */
    uint32_t broker; /* ADMIN_DECOMMISSION */
    /* ADMIN_OFFSET: OFFSET_FETCH_REQ or RESET_OFFSET_REQ of a cursor on one partition */
    uint8_t offset_type;
    uint32_t partition;
    uint64_t offset;
    uint8_t cursor[PROTO_CURSOR_MAX];
    uint32_t cursor_size;
    /* ADMIN_DELAYED: its DELAYED_PRODUCE_REQ, encoded once (allocated; freed when it ends) */
    uint8_t *payload;
    uint32_t payload_size;
    uint32_t attempts;
    uint64_t retry_ns;
    uint32_t request; /* or NONE */
};

struct rq_client {
    const struct rq_io *io;
    struct rq_client_config cfg;
    struct rq_client_callbacks cb;
    void *arg;
    struct rq_rng rng;
    struct metadata *md;
    struct request requests[CLIENT_REQUESTS_MAX];
    uint32_t requests_used;
    /* metadata */
    uint32_t md_request;
    uint32_t md_bootstrap; /* the bootstrap server asked next */
    uint32_t md_failures;
    uint64_t md_retry_ns;
    uint64_t md_answer_ns;
    uint8_t md_version;    /* METADATA_REQ's frame version: PROTO_VERSION, or 1 for an old broker */
    /* the idempotent producer's id */
    uint64_t producer_id;   /* the last one INIT_PRODUCER gave */
    uint32_t pid_topic;     /* the request under way is for this topic's partition, */
    uint32_t pid_partition; /*   or NONE: the client's first id */
    uint32_t pid_request;
    uint32_t pid_hint;
    uint32_t pid_failures;
    uint64_t pid_retry_ns;
    struct topic topics[CLIENT_TOPICS_MAX];
    struct subscription subs[CLIENT_SUBSCRIPTIONS_MAX];
    struct admin_op admins[CLIENT_ADMIN_MAX];
    uint8_t *send_buf;                  /* CLIENT_SEND_MAX: one frame at a time */
    uint64_t tokens[PROTO_RECORDS_MAX]; /* a finished batch's tokens, copied before it goes */
    uint32_t depth;                     /* entry points under way: only the outermost pumps */
    uint8_t dirty;                      /* a nested call queued work */
    uint64_t timer_ns;                  /* what the timer was last asked for (UINT64_MAX: none) */
    struct client_group *group;         /* the consumer group joined (client/group.c), or NULL */
    struct rq_client_stats stats;
};


/* ---- client.c, for group.c ---- */
int client_request_free_slot(const struct rq_client *c);
uint32_t client_request_open(struct rq_client *c, enum req_kind kind, uint32_t to_node,
                             uint64_t deadline_ns);
uint32_t client_correlation(const struct rq_client *c, uint32_t slot);
/* Sends the payload encoded at client_payload(c) as one frame of the given type. */
void client_send_frame(struct rq_client *c, uint32_t to_node, uint8_t type, uint32_t correlation,
                       size_t payload_size);
uint8_t *client_payload(struct rq_client *c);
size_t client_payload_cap(void);
uint32_t client_controller_target(struct rq_client *c, uint32_t hint);
uint64_t client_backoff(struct rq_client *c, uint32_t failures);
uint32_t client_topic_index(struct rq_client *c, struct proto_bytes name);
struct proto_bytes client_topic_name(const struct rq_client *c, uint32_t topic);
/* A subscription to (topic, partition) from offset, as rq_client_subscribe; grouped: fetched for
 * the group (GROUP_FETCH_REQ). Returns its index, or NONE when none is free. */
uint32_t client_sub_start(struct rq_client *c, uint32_t topic, uint32_t partition,
                          uint64_t offset, int grouped);
void client_sub_stop(struct rq_client *c, uint32_t si);

/* ---- group.c, for client.c ---- */
void group_destroy(struct rq_client *c);
void group_pump(struct rq_client *c, uint64_t now);
/* A REQ_GROUP or REQ_CURSOR request ended (m: its answer; NULL with error). */
void group_answer(struct rq_client *c, const struct request *r, int error,
                  const struct proto_msg *m, uint64_t now);
uint8_t group_answer_type(const struct request *r);
/* Fills a grouped subscription's fetch: the cursor, generation and member id. */
void group_fetch_fill(const struct rq_client *c, struct proto_fetch_req *m);
/* A grouped subscription's fetch was refused with RQ_EFENCED: another member owns it now. */
void group_fenced(struct rq_client *c, uint32_t si, uint64_t now);
/* The earliest time the group has work due (UINT64_MAX: none). */
uint64_t group_next_wake(const struct rq_client *c);

#endif
