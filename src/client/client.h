/* client.h — one client process's producer, consumer and admin, as a pure event-driven object over
 * io.h (the same code runs in the simulator and over the POSIX shim). Its owner is a node with an
 * id above RQ_NODE_ID_MAX: it forwards its on_timer and on_peer_message calls here, and hears back
 * through the callbacks below. No clock, no randomness, no I/O of its own: io->now, io->set_timer,
 * io->send and io->seed (through base/rng.h) are all it uses.
 *
 * Requests. Every request is one frame whose correlation id names a slot of a bounded table
 * (CLIENT_REQUESTS_MAX) and the slot's generation, so an answer is matched to the request it
 * answers, from the server it was sent to, with the answer type that request expects. Anything else
 * (a frame that does not decode, an unknown correlation, a wrong type or sender) is counted in
 * rq_client_stats and ignored. A request unanswered after its timeout is RQ_ETIMEOUT: its outcome
 * is unknown, and its slot is taken back (a late answer then no longer matches).
 *
 * Metadata (client/metadata.h). One METADATA_REQ at a time, to a bootstrap server (any server
 * answers from its replica of the controller), rotating to the next one after a timeout or an ERROR
 * answer. The client asks again when the view is older than metadata_max_age_ns, when an answer
 * showed it wrong (RQ_ENOTLEADER, RQ_ENOTOPIC, a timeout), or when a topic it has not asked about
 * yet comes up. RQ_ENOTLEADER hints correct the view at once.
 *
 * Producer. rq_client_produce queues a record in the topic's batcher (client/batcher.h), which
 * batches per partition, bounds what is in flight and backs off retries. Produce sends nothing
 * itself: it asks for the timer at once, and the next on_timer sends what is ready, so a burst of
 * records costs one pass over the client's state. A topic is usable once a metadata answer named
 * it: until then (and, for an idempotent producer, until INIT_PRODUCER gave it a producer id)
 * produce returns RQ_EBUSY and asks for what is missing — the caller retries after a while, as for
 * backpressure. RQ_ENOTOPIC means an answer said the topic does not exist. Each record's outcome is
 * reported exactly once through produced(): error 0 with its offset (the batch's base offset + its
 * index), or the error that failed its batch. Retriable answers (RQ_ENOTLEADER, RQ_EBUSY,
 * RQ_ETIMEOUT, RQ_ECLOSED, RQ_ESEQUENCE, RQ_ENOTOPIC) go back to the batcher, which resends the
 * same batch with the same base sequence after its back-off; with idempotence a resent batch the
 * broker already has is answered with its original offset. acks=0: nothing answers, so a batch is
 * done once sent (error 0, offset UINT64_MAX). A topic's partition count is taken from the first
 * answer that names it (later growth is not followed).
 *
 * Idempotent producer (client/batcher.h has the rules in full). Per partition, sequences are handed
 * out in order and kept by retries; the first batch under a producer id goes alone (a broker takes
 * an unknown producer's first batch at any sequence), and no more than batcher.in_flight_max (<=
 * CLIENT_IDEMPOTENT_IN_FLIGHT_MAX, the batches a broker remembers per producer) are sequenced from
 * the oldest unresolved batch on, so that a retry of it is always recognised. RQ_ESEQUENCE for a
 * batch sent while an earlier batch of its partition was unresolved is not one of its retries: it
 * waits, unsent, until it is the partition's oldest, and is sent again then (Kafka's rule).
 * RQ_ESEQUENCE for a batch sent as the oldest (every earlier one acknowledged or failed) means the
 * partition's sequences broke: an earlier batch failed for good and was never written (one whose
 * outcome was unknown but did land leaves no gap, and nothing is renewed). Nothing under the old id
 * can land after a batch that never did, so the partition renews its producer identity as KIP-360
 * does: once nothing of it is in flight the client asks INIT_PRODUCER for a new id, and every batch
 * of that partition not yet acknowledged is sent again under it, sequences from 0; other partitions
 * and acknowledged batches are unaffected, and each record is still reported once. Renewing per
 * partition, and only on that proof of a gap rather than at every batch that fails for good, is
 * what keeps it from writing a batch twice (once under each id): deduplication holds per producer
 * id. What it does not cover: an attempt of the old id still on the way after its request timed out
 * (a network holding a message longer than the request timeout) may land after the renewal, and a
 * producer the broker evicted from a full table (broker/partition.h) is taken as new.
 * rq_client_producer_id is the last id received.
 *
 * Consumer. rq_client_subscribe starts a fetch loop for one partition (records whose TTL passed
 * come as placeholders, which move the position but are never delivered: broker/ttl.h): one FETCH_REQ at a time to
 * the leader (any replica with from_follower), long-polling fetch_max_wait_ms. Records are
 * delivered in offset order through fetched(); the position is the next offset to deliver and only
 * moves forward, one delivered record at a time: records below it are dropped (a retried or
 * duplicated answer), and a record above it (a gap) stops delivery and is reported through
 * fetch_error(RQ_ECORRUPT), never skipped. RQ_ERANGE (the position is below the log start or past
 * the high watermark) is reported through fetch_error with both bounds (with from_follower, past
 * the high watermark of a lagging follower is retried at another replica instead). Either report
 * pauses the subscription until the owner calls rq_client_seek. Retriable errors back off and
 * re-discover.
 *
 * Admin. create_topic, delete_topic and describe go to the controller's leader (the last hint, else
 * the metadata's controller, else a bootstrap server), follow RQ_ENOTLEADER hints, and retry
 * RQ_EBUSY / RQ_ECLOSED / RQ_ETIMEOUT with back-off, at most CLIENT_ADMIN_ATTEMPTS_MAX sends.
 * Outcomes come through admin_done (describe: described, with the decoded METADATA_RESP). A create
 * whose first answer was lost may be answered RQ_ETOPICEXISTS by its retry.
 *
 * Consumer group (client/group.c; README, "Consumer groups"). rq_client_join_group makes the
 * client a member of one group. It joins at the coordinator (the controller's leader: hints are
 * followed), heartbeats every session / 3 (each answer carries the current generation and this
 * member's partitions: a new generation is a rebalance), and for each partition it is given,
 * CLAIMS it at the partition's leader for its generation (which fences the older owner) and
 * starts at the committed offset the claim answers (never committed: the log start, or the end
 * with from_latest). Those partitions are then fetched as GROUP_FETCH_REQs and delivered through
 * fetched() like any subscription; RQ_EFENCED on one means a newer generation took it: it is
 * dropped and the member heartbeats at once. Positions are committed (COMMIT, a control record in
 * each partition's log) every commit_every_ns and when the member leaves, so delivery is at least
 * once: what was delivered after the last commit is delivered again after a rebalance or a
 * crash. A member the coordinator forgot (RQ_ENOMEMBER: its session expired, or the coordinator
 * moved) drops every partition and joins again. group_error reports what no retry fixes (an
 * unknown topic, a group of another topic or mode); assigned reports every generation.
 *
 * Callbacks run inside the client's entry points. They may call produce, subscribe, seek,
 * unsubscribe and the admin calls (the work they start is taken up before the entry point returns,
 * or at the timer it asks for), but never rq_client_destroy. Memory: everything is bounded by the
 * constants below and the batcher's buffer; records are copied at produce, buffers passed to
 * callbacks are valid only during the call. */
#ifndef RQ_CLIENT_CLIENT_H
#define RQ_CLIENT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "client/batcher.h"
#include "io/io.h"
#include "proto/msg.h"

enum {
    CLIENT_BOOTSTRAP_MAX = 16,
    CLIENT_REQUESTS_MAX = 256,      /* requests awaiting an answer */
    CLIENT_TOPICS_MAX = 64,         /* topics produced to or subscribed to */
    CLIENT_SUBSCRIPTIONS_MAX = 256, /* partitions being fetched */
    CLIENT_ADMIN_MAX = 16,          /* admin operations under way */
    CLIENT_ADMIN_ATTEMPTS_MAX = 8,  /* sends of one admin operation */
    CLIENT_SEND_MAX = RQ_MSG_MAX,   /* the largest frame the client sends */
    /* batcher.in_flight_max of an idempotent producer: at most the batches a broker remembers
     * per producer and partition (PARTITION_BATCHES_KEPT in broker/partition.h). */
    CLIENT_IDEMPOTENT_IN_FLIGHT_MAX = 5,
};

struct rq_client_config {
    uint32_t bootstrap[CLIENT_BOOTSTRAP_MAX]; /* server ids, 1..RQ_NODE_ID_MAX */
    uint32_t bootstrap_count;                 /* >= 1 */
    uint64_t request_timeout_ns;              /* > 0; a fetch also waits its max_wait_ms */
    uint64_t metadata_max_age_ns;
    uint64_t backoff_ns;           /* metadata, fetch and admin retries: doubles, */
    uint64_t backoff_max_ns;       /*   capped, plus up to 1/4 seeded jitter */
    struct batcher_config batcher; /* its idempotent flag is set from below */
    uint8_t acks;                  /* enum proto_acks */
    uint8_t idempotent;            /* requires acks = PROTO_ACKS_ALL */
    uint32_t fetch_max_records;    /* 1..PROTO_RECORDS_MAX */
    uint32_t fetch_max_bytes;      /* >= 1 */
    uint32_t fetch_max_wait_ms;    /* 0..PROTO_WAIT_MS_MAX */
    uint8_t from_follower;
};

/* Defaults for everything but the bootstrap list. */
void rq_client_config_default(struct rq_client_config *cfg);

struct rq_client_callbacks {
    /* One record's outcome: error 0 and its offset, or the error (offset UINT64_MAX). */
    void (*produced)(void *arg, uint64_t token, uint32_t partition, int error, uint64_t offset);
    /* One record, in offset order per partition. */
    void (*fetched)(void *arg, struct proto_bytes topic, uint32_t partition,
                    const struct proto_record *r);
    /* A subscription paused, and why: RQ_ERANGE (position outside [log_start, high_watermark]),
     * RQ_ECORRUPT (a gap in an answer), or an error no retry can fix (an ERROR frame's code; the
     * bounds are then 0). It resumes at rq_client_seek. */
    void (*fetch_error)(void *arg, struct proto_bytes topic, uint32_t partition, int error,
                        uint64_t position, uint64_t log_start, uint64_t high_watermark);
    /* create_topic / delete_topic / describe (error only) finished. */
    void (*admin_done)(void *arg, uint64_t token, int error);
    /* describe succeeded: the answer, valid during the call. */
    void (*described)(void *arg, uint64_t token, const struct proto_metadata_resp *m);
    /* The group gave this member a generation and its partitions (strictly increasing). */
    void (*assigned)(void *arg, uint64_t generation, uint64_t member_id,
                     const uint32_t *partitions, uint32_t count);
    /* A partition's commit was accepted: the group's committed offset there is now `offset`. */
    void (*committed)(void *arg, uint32_t partition, uint64_t generation, uint64_t offset);
    /* A group admin call succeeded (rq_client_list_groups, rq_client_describe_group,
     * rq_client_offset): its answer (LIST_GROUPS_RESP, DESCRIBE_GROUP_RESP, OFFSET_RESP), valid
     * during the call. Failures come through admin_done. */
    void (*group_admin)(void *arg, uint64_t token, const struct proto_msg *m);
    /* The group cannot be joined (RQ_ENOTOPIC, RQ_EINVAL, RQ_ETOOBIG, RQ_ENOMEM): the member
     * stops trying. Also after leave completes, with error 0. */
    void (*group_error)(void *arg, int error);
};

/* A consumer group membership (rq_client_join_group). */
struct rq_group_config {
    struct proto_bytes group;       /* a valid group name */
    struct proto_bytes topic;       /* the topic it consumes */
    struct proto_bytes member_name; /* pub/sub: required (the member's cursor); queue: optional */
    uint8_t mode;                   /* enum proto_group_mode */
    uint8_t strategy;               /* enum proto_group_strategy */
    uint32_t session_ms;            /* PROTO_SESSION_MS_MIN..PROTO_SESSION_MS_MAX */
    uint64_t commit_every_ns;       /* > 0 */
    uint8_t from_latest;            /* a partition never committed: start at its end */
};

struct rq_client_stats {
    uint64_t requests_sent;
    uint64_t timeouts;
    uint64_t malformed; /* frames or payloads that did not decode, wrong answer types */
    uint64_t unmatched; /* answers to no request of ours (late, duplicated, wrong) */
    uint64_t metadata_answers;
    uint64_t records_produced; /* reported with error 0 */
    uint64_t records_failed;
    uint64_t records_fetched;
    uint64_t records_dropped; /* fetched below the position */
    uint64_t records_expired; /* placeholders of expired records skipped (broker/ttl.h) */
    uint64_t acks0_refused;   /* acks=0 batches a broker refused (then the metadata is asked again) */
};

struct rq_client;

/* Returns NULL without memory; asserts a valid config. Does not call io. */
struct rq_client *rq_client_create(const struct rq_io *io, const struct rq_client_config *cfg,
                                   const struct rq_client_callbacks *cb, void *arg);
/* Frees everything; records not yet reported are not reported. */
void rq_client_destroy(struct rq_client *c);

/* Starts work (the first metadata request) and arms the timer; the owner's on_start calls it. */
void rq_client_start(struct rq_client *c);
void rq_client_on_timer(struct rq_client *c);
void rq_client_on_message(struct rq_client *c, uint32_t from_node, const void *buf, size_t len);

/* Queues a record; key may be empty (round-robin), headers NULL when header_count is 0,
 * timestamp is the caller's. Returns 0 (produced() reports it later), RQ_EBUSY (backpressure, or
 * the topic or the producer id is not known yet: try again later), RQ_ENOTOPIC, RQ_ETOOBIG (over
 * batch_bytes_max), RQ_EINVAL (bad name, too many headers, a topic of more than
 * BATCHER_PARTITIONS_MAX partitions) or RQ_ENOMEM (CLIENT_TOPICS_MAX topics known already: a name
 * produced to or subscribed to keeps its entry, asked about at every refresh). */
int rq_client_produce(struct rq_client *c, struct proto_bytes topic, struct proto_bytes key,
                      struct proto_bytes value, const struct proto_header *headers,
                      uint32_t header_count, uint64_t timestamp, uint64_t token);

/* Fetches topic/partition from start_offset on. Returns 0, RQ_EEXIST (already subscribed),
 * RQ_EBUSY (CLIENT_SUBSCRIPTIONS_MAX taken), RQ_ENOMEM (the topic table is full) or RQ_EINVAL (bad
 * name or partition). */
int rq_client_subscribe(struct rq_client *c, struct proto_bytes topic, uint32_t partition,
                        uint64_t start_offset);
/* Moves a subscription's position (and resumes it after fetch_error); an answer to a fetch
 * already under way is then ignored. Returns 0 or RQ_ENOENT (not subscribed). */
int rq_client_seek(struct rq_client *c, struct proto_bytes topic, uint32_t partition,
                   uint64_t offset);
int rq_client_unsubscribe(struct rq_client *c, struct proto_bytes topic, uint32_t partition);
/* The next offset a subscription will deliver; RQ_ENOENT when not subscribed. */
int rq_client_position(const struct rq_client *c, struct proto_bytes topic, uint32_t partition,
                       uint64_t *offset);

/* Admin operations; each returns 0 (admin_done / described follows) or RQ_EBUSY (CLIENT_ADMIN_MAX
 * under way) or RQ_EINVAL (an invalid request). */
int rq_client_create_topic(struct rq_client *c, const struct proto_create_topic_req *req,
                           uint64_t token);
int rq_client_delete_topic(struct rq_client *c, struct proto_bytes name, uint64_t token);
/* The broker leaves the cluster for good: the controller places every topic again without it,
 * and the partitions' leaders move its replicas to the others (admin_done: RQ_ENOENT for a
 * broker never registered, RQ_EINVAL when too few brokers would remain). */
int rq_client_decommission(struct rq_client *c, uint32_t broker, uint64_t token);
int rq_client_describe(struct rq_client *c, uint64_t token);

/* Joins a consumer group (one per client). Returns 0, RQ_EEXIST (already a member), RQ_EINVAL
 * (an invalid config) or RQ_ENOMEM. */
int rq_client_join_group(struct rq_client *c, const struct rq_group_config *g);
/* Commits every position, then leaves the group (group_error(0) when done, or when the
 * coordinator could not be told within the retries). Returns 0 or RQ_ENOENT (not a member). */
int rq_client_leave_group(struct rq_client *c);
/* The member's generation (0: none yet) and id. */
uint64_t rq_client_group_generation(const struct rq_client *c);
uint64_t rq_client_group_member(const struct rq_client *c);

/* Group admin calls, retried like the others (group_admin or admin_done follows): the groups
 * the coordinator holds; one group's members and their partitions (admin_done RQ_ENOENT: no
 * such group, i.e. no live member); a cursor's committed offset on one partition (type
 * PROTO_OFFSET_FETCH_REQ), or moving it (PROTO_RESET_OFFSET_REQ: the holder is fenced and claims
 * again from there). Each returns 0, RQ_EBUSY or RQ_EINVAL. */
int rq_client_list_groups(struct rq_client *c, uint64_t token);
int rq_client_describe_group(struct rq_client *c, struct proto_bytes group, uint64_t token);
int rq_client_offset(struct rq_client *c, uint8_t type, struct proto_bytes topic,
                     uint32_t partition, struct proto_bytes cursor, uint64_t offset,
                     uint64_t token);

/* A delayed message (README, "Delayed messages"): sent alone, at once, to its partition's
 * leader (keyed as for produce), which holds it until delay_ms (1..PROTO_DELAY_MS_MAX) has passed
 * on its clock and then appends it. produced() reports it once held (error 0, offset UINT64_MAX:
 * its offset comes at release) or failed. Not deduplicated: a retry after a lost answer may hold
 * it twice. At most CLIENT_ADMIN_MAX at once with the admin calls. Returns 0, RQ_EBUSY (the
 * topic is not known yet, or too many under way: try again later), RQ_EINVAL, RQ_ETOOBIG or
 * RQ_ENOMEM. */
int rq_client_produce_delayed(struct rq_client *c, struct proto_bytes topic, struct proto_bytes key,
                              struct proto_bytes value, const struct proto_header *headers,
                              uint32_t header_count, uint64_t timestamp, uint64_t delay_ms,
                              uint64_t token);

/* The topic's partition count as the metadata last said (0: unknown). */
uint32_t rq_client_partitions(const struct rq_client *c, struct proto_bytes topic);

/* The producer id (0 until INIT_PRODUCER answered, always 0 when not idempotent). */
uint64_t rq_client_producer_id(const struct rq_client *c);
void rq_client_stats_get(const struct rq_client *c, struct rq_client_stats *out);

#endif
