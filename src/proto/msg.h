/* msg.h — the payloads of raftq's frames (proto/frame.h): the client protocol and the node-to-node
 * carrier for Raft batches. docs/protocol.md describes them field by field.
 *
 * Integers are unsigned LEB128 varints unless marked (u8); a string or byte field is a varint
 * length followed by that many bytes. An error is one byte: 0, or the negated RQ_E* code
 * (base/errors.h), so a client learns exactly what the broker meant.
 *
 * Decoding is strict and zero-copy: proto_decode checks the whole payload against the frame and
 * against the maxima below (every count, every length, every flag byte, topic names, offsets in
 * order, nothing trailing) before it fills in anything, so a decoded message is one the encoder
 * could have written, and its strings and records point into the frame's buffer. Variable-length
 * lists (records, headers, brokers, topics, partitions) are walked afterwards with the iterators
 * at the end, which cannot fail on a decoded message. */
#ifndef RQ_PROTO_MSG_H
#define RQ_PROTO_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/bytes.h"
#include "proto/group_msg.h"

enum proto_type {
    PROTO_ERROR = 1,              /* the answer to a frame that could not be served at all */
    PROTO_RAFT = 2,               /* node to node: one Raft batch (raft/msg.h), opaque here */
    PROTO_PRODUCE_REQ = 3,
    PROTO_PRODUCE_RESP = 4,
    PROTO_FETCH_REQ = 5,
    PROTO_FETCH_RESP = 6,
    PROTO_METADATA_REQ = 7,
    PROTO_METADATA_RESP = 8,
    PROTO_CREATE_TOPIC_REQ = 9,
    PROTO_CREATE_TOPIC_RESP = 10,
    PROTO_DELETE_TOPIC_REQ = 11,
    PROTO_DELETE_TOPIC_RESP = 12,
    PROTO_INIT_PRODUCER_REQ = 13,
    PROTO_INIT_PRODUCER_RESP = 14,
    PROTO_FORWARD = 15,           /* node to node: a controller command for the controller's
                                     leader to propose (opaque here), never answered */
    PROTO_DECOMMISSION_REQ = 16,  /* a broker leaves the cluster for good: its replicas move */
    PROTO_DECOMMISSION_RESP = 17,
    /* consumer groups (proto/group_msg.h) */
    PROTO_JOIN_GROUP_REQ = 18,
    PROTO_ASSIGNMENT_RESP = 19,   /* the answer to JOIN_GROUP and HEARTBEAT */
    PROTO_HEARTBEAT_REQ = 20,
    PROTO_LEAVE_GROUP_REQ = 21,
    PROTO_LEAVE_GROUP_RESP = 22,  /* a proto_status_resp */
    PROTO_CLAIM_REQ = 23,         /* CLAIM .. RESET_OFFSET: proto_offset_req, answered by */
    PROTO_COMMIT_REQ = 24,        /*   OFFSET_RESP */
    PROTO_OFFSET_FETCH_REQ = 25,
    PROTO_RESET_OFFSET_REQ = 26,
    PROTO_OFFSET_RESP = 27,
    PROTO_GROUP_FETCH_REQ = 28,   /* a FETCH_REQ for a cursor; answered by FETCH_RESP */
    PROTO_LIST_GROUPS_REQ = 29,   /* carries nothing */
    PROTO_LIST_GROUPS_RESP = 30,
    PROTO_DESCRIBE_GROUP_REQ = 31,
    PROTO_DESCRIBE_GROUP_RESP = 32,
    PROTO_DELAYED_PRODUCE_REQ = 33, /* a PRODUCE_REQ held until delay_ms has passed (acks=all,
                                       not idempotent); answered by PRODUCE_RESP */
    PROTO_TYPE_MAX = 33,
};

enum {
    PROTO_TOPIC_NAME_MAX = 200,       /* bytes; [A-Za-z0-9._-], not "." or ".." */
    PROTO_TEXT_MAX = 255,             /* an ERROR frame's message, a broker's address */
    PROTO_RECORDS_MAX = 4096,         /* records in one produce or fetch */
    PROTO_HEADERS_MAX = 32,           /* headers of one record */
    PROTO_HEADER_NAME_MAX = 255,
    PROTO_PARTITIONS_MAX = 10000,     /* partitions of one topic */
    PROTO_REPLICAS_MAX = 9,
    PROTO_BROKERS_MAX = 255,
    PROTO_TOPICS_MAX = 1024,          /* topics in one metadata request or answer */
    PROTO_WAIT_MS_MAX = 60000,        /* a fetch's long-poll */
    PROTO_FORWARD_MAX = 1024,         /* a FORWARD payload, bytes */
};

/* A delayed message's longest delay: 366 days, in milliseconds. */
#define PROTO_DELAY_MS_MAX (UINT64_C(366) * 24 * 60 * 60 * 1000)

enum { PROTO_FOLLOWER_READ_INDEX = 1, PROTO_FOLLOWER_AS_IS = 2 };

enum proto_acks { PROTO_ACKS_NONE = 0, PROTO_ACKS_LEADER = 1, PROTO_ACKS_ALL = 2 };

/* A run of encoded records: walk it with proto_record_next. */
struct proto_records {
    const uint8_t *data;
    size_t size;
    uint32_t count;
    uint8_t with_offsets;         /* fetch answers: each record is preceded by its offset */
};

struct proto_record {
    uint64_t offset;              /* fetch answers only */
    uint64_t timestamp;           /* ns since the epoch, as the producer set it */
    struct proto_bytes key;
    struct proto_bytes value;
    uint32_t header_count;
    const uint8_t *headers;       /* encoded: walk with proto_header_next */
    size_t headers_size;
};

struct proto_header {
    struct proto_bytes name;
    struct proto_bytes value;
};

/* One record to encode. */
struct proto_record_in {
    uint64_t offset;              /* fetch answers only */
    uint64_t timestamp;
    struct proto_bytes key;
    struct proto_bytes value;
    uint32_t header_count;
    const struct proto_header *headers;
};

struct proto_error {              /* PROTO_ERROR */
    int error;
    struct proto_bytes text;
};

struct proto_produce_req {
    struct proto_bytes topic;
    uint32_t partition;
    uint8_t acks;                 /* enum proto_acks */
    uint64_t producer_id;         /* 0: not idempotent */
    uint64_t base_sequence;       /* of the first record; the others follow it */
    struct proto_records records; /* at least one, no offsets */
    /* DELAYED_PRODUCE_REQ only (0 in a PRODUCE_REQ), written after the records: the records
     * become visible to consumers no earlier than this long after the leader appends them,
     * 1..PROTO_DELAY_MS_MAX; acks is then PROTO_ACKS_ALL and producer_id and base_sequence 0. */
    uint64_t delay_ms;
};

struct proto_produce_resp {
    int error;
    uint64_t base_offset;         /* of the first record (a duplicate: its original offset) */
    uint32_t leader_hint;         /* with RQ_ENOTLEADER: the leader, 0 when unknown */
};

struct proto_fetch_req {
    struct proto_bytes topic;
    uint32_t partition;
    uint64_t offset;
    uint32_t max_records;         /* 1..PROTO_RECORDS_MAX */
    uint32_t max_bytes;           /* >= 1 */
    uint32_t max_wait_ms;         /* 0..PROTO_WAIT_MS_MAX: wait this long for new records */
    uint8_t from_follower;        /* 0: the leader only; 1: a follower may answer, once it has
                                     applied what the leader had committed (ReadIndex);
                                     PROTO_FOLLOWER_AS_IS (2): a follower answers at once with
                                     what it has applied (possibly older: to measure its lag) */
    /* GROUP_FETCH_REQ only (zero in a FETCH_REQ); from_follower is then 0: the leader answers
     * only while the cursor's claim is (generation, member_id), else RQ_EFENCED. */
    struct proto_bytes cursor;
    uint64_t generation;
    uint64_t member_id;
};

struct proto_fetch_resp {
    int error;
    uint32_t leader_hint;
    uint64_t log_start;           /* the first offset still held */
    uint64_t high_watermark;      /* one past the last committed offset */
    struct proto_records records; /* with offsets, strictly increasing, below high_watermark */
};

struct proto_metadata_req {
    uint32_t topic_count;         /* 0: every topic */
    const uint8_t *topics;        /* encoded names: walk with proto_name_next */
    size_t topics_size;
};

/* A broker's flags in a METADATA_RESP of version 2 or later (a version-1 answer has none). */
enum {
    PROTO_BROKER_DECOMMISSIONED = 1,   /* it left for good: no placement or default counts it */
    PROTO_BROKER_FLAGS_ALL = PROTO_BROKER_DECOMMISSIONED,
};

struct proto_broker {
    uint32_t id;
    struct proto_bytes address;
    uint8_t flags;                /* PROTO_BROKER_*; written and read at version 2 or later */
};

struct proto_partition {
    uint32_t index;
    uint32_t leader;              /* 0: none known */
    uint32_t replica_count;
    uint32_t replicas[PROTO_REPLICAS_MAX];
};

struct proto_topic {
    struct proto_bytes name;
    int error;                    /* RQ_ENOTOPIC for a name asked for that does not exist */
    uint32_t partition_count;
    const uint8_t *partitions;    /* encoded: walk with proto_partition_next */
    size_t partitions_size;
};

struct proto_metadata_resp {
    uint8_t version;              /* of the frame it came in: the brokers' layout depends on it */
    uint32_t controller;          /* the controller's leader, 0: none known */
    uint32_t broker_count;
    const uint8_t *brokers;       /* walk with proto_broker_next */
    size_t brokers_size;
    uint32_t topic_count;
    const uint8_t *topics;        /* walk with proto_topic_next */
    size_t topics_size;
};

struct proto_create_topic_req {
    struct proto_bytes name;
    uint32_t partitions;          /* 1..PROTO_PARTITIONS_MAX */
    uint32_t replication;         /* 1..PROTO_REPLICAS_MAX */
    uint64_t retention_ms;        /* 0: keep forever */
    uint64_t retention_bytes;     /* per partition; 0: no limit */
    uint32_t max_message_bytes;   /* >= 1 */
};

struct proto_delete_topic_req {
    struct proto_bytes name;
};

struct proto_decommission_req {
    uint32_t broker;              /* >= 1 */
};

struct proto_status_resp {        /* CREATE_TOPIC_RESP, DELETE_TOPIC_RESP, DECOMMISSION_RESP */
    int error;
    uint32_t leader_hint;         /* the controller's leader, with RQ_ENOTLEADER */
};

struct proto_init_producer_resp {
    int error;
    uint64_t producer_id;         /* >= 1 */
    uint32_t leader_hint;
};

/* A decoded payload of any type (GROUP_FETCH_REQ in fetch_req, LEAVE_GROUP_RESP in status_resp).
 * INIT_PRODUCER_REQ and LIST_GROUPS_REQ carry nothing; RAFT and FORWARD carry raw
 * bytes. */
struct proto_msg {
    uint8_t type;
    union {
        struct proto_error error;
        struct proto_bytes raft;
        struct proto_bytes forward;
        struct proto_produce_req produce_req;
        struct proto_produce_resp produce_resp;
        struct proto_fetch_req fetch_req;
        struct proto_fetch_resp fetch_resp;
        struct proto_metadata_req metadata_req;
        struct proto_metadata_resp metadata_resp;
        struct proto_create_topic_req create_topic_req;
        struct proto_delete_topic_req delete_topic_req;
        struct proto_decommission_req decommission_req;
        struct proto_status_resp status_resp;
        struct proto_init_producer_resp init_producer_resp;
        struct proto_join_group_req join_group_req;
        struct proto_assignment_resp assignment_resp;
        struct proto_heartbeat_req heartbeat_req;
        struct proto_leave_group_req leave_group_req;
        struct proto_offset_req offset_req;       /* CLAIM, COMMIT, OFFSET_FETCH, RESET_OFFSET */
        struct proto_offset_resp offset_resp;
        struct proto_list_groups_resp list_groups_resp;
        struct proto_describe_group_req describe_group_req;
        struct proto_describe_group_resp describe_group_resp;
    } u;
};

/* Whether name is a valid topic name. */
int proto_topic_name_valid(const uint8_t *name, size_t size);

/* Checks that data[0..size) is exactly `count` records (1..PROTO_RECORDS_MAX; with offsets: strictly
 * increasing) and describes them in *out: a produce request's records, kept as they came, are
 * what a partition stores. Returns 0, RQ_ETRUNC, RQ_ETOOBIG or RQ_ECORRUPT. */
int proto_records_decode(const uint8_t *data, size_t size, uint32_t count, int with_offsets,
                         struct proto_records *out);

/* Decodes a payload of the given type (from a frame that decoded). Returns 0, RQ_ETYPE,
 * RQ_ETRUNC (cut short), RQ_ETOOBIG (a count or length over its maximum) or RQ_ECORRUPT
 * (anything else malformed). */
int proto_decode(uint8_t type, const uint8_t *payload, size_t size, struct proto_msg *out);
/* The same for a frame of the given version (PROTO_VERSION_MIN..PROTO_VERSION, asserted): only a
 * METADATA_RESP's layout depends on it; proto_decode decodes at PROTO_VERSION. */
int proto_decode_version(uint8_t version, uint8_t type, const uint8_t *payload, size_t size,
                         struct proto_msg *out);

/* ---- encoding: each writes a payload into buf[0..cap) and returns its size, or 0 when it does
 * not fit; the message must be valid (asserted: we never send what we would refuse). ---- */
size_t proto_encode_error(uint8_t *buf, size_t cap, int error, const char *text);
size_t proto_encode_produce_req(uint8_t *buf, size_t cap, const struct proto_produce_req *m,
                                const struct proto_record_in *records);
/* A DELAYED_PRODUCE_REQ: m as for proto_encode_produce_req, with m->delay_ms set. */
size_t proto_encode_delayed_produce_req(uint8_t *buf, size_t cap,
                                        const struct proto_produce_req *m,
                                        const struct proto_record_in *records);
size_t proto_encode_produce_resp(uint8_t *buf, size_t cap, const struct proto_produce_resp *m);
size_t proto_encode_fetch_req(uint8_t *buf, size_t cap, const struct proto_fetch_req *m);
/* records: m->records.count of them, offsets strictly increasing and below high_watermark. */
size_t proto_encode_fetch_resp(uint8_t *buf, size_t cap, const struct proto_fetch_resp *m,
                               const struct proto_record_in *records);
size_t proto_encode_metadata_req(uint8_t *buf, size_t cap, const struct proto_bytes *topics,
                                 uint32_t count);
/* topics[i]'s partitions are partitions[first[i] .. first[i] + topics[i].partition_count).
 * At PROTO_VERSION; brokers' flags must be within PROTO_BROKER_FLAGS_ALL (asserted). */
size_t proto_encode_metadata_resp(uint8_t *buf, size_t cap, uint32_t controller,
                                  const struct proto_broker *brokers, uint32_t broker_count,
                                  const struct proto_topic *topics, uint32_t topic_count,
                                  const struct proto_partition *partitions);
/* The same at a given version: at version 1 the brokers' flags are not written. */
size_t proto_encode_metadata_resp_version(uint8_t *buf, size_t cap, uint8_t version,
                                          uint32_t controller, const struct proto_broker *brokers,
                                          uint32_t broker_count, const struct proto_topic *topics,
                                          uint32_t topic_count,
                                          const struct proto_partition *partitions);
size_t proto_encode_create_topic_req(uint8_t *buf, size_t cap,
                                     const struct proto_create_topic_req *m);
size_t proto_encode_delete_topic_req(uint8_t *buf, size_t cap,
                                     const struct proto_delete_topic_req *m);
size_t proto_encode_status_resp(uint8_t *buf, size_t cap, const struct proto_status_resp *m);
size_t proto_encode_decommission_req(uint8_t *buf, size_t cap,
                                     const struct proto_decommission_req *m);
size_t proto_encode_init_producer_resp(uint8_t *buf, size_t cap,
                                       const struct proto_init_producer_resp *m);

/* A fetch answer built from stored records without re-encoding them (a broker keeps records as
 * the producer encoded them): proto_fetch_add appends one record's bytes (one record as
 * proto_records_decode delimits it, no offset) at its offset into a scratch buffer, then
 * proto_encode_fetch_resp_raw writes the answer with them. */
struct proto_fetch_builder {
    uint8_t *buf;
    size_t cap;
    size_t len;
    uint32_t count;
    uint64_t last_offset;
    uint64_t record_bytes;        /* the records added, as produced: len less their offsets */
};
void proto_fetch_builder_init(struct proto_fetch_builder *b, uint8_t *buf, size_t cap);
/* Returns 0, RQ_ETOOBIG (it does not fit: nothing appended) or RQ_ERANGE (PROTO_RECORDS_MAX
 * records already). Offsets must be strictly increasing (asserted). */
int proto_fetch_add(struct proto_fetch_builder *b, uint64_t offset, const uint8_t *record,
                    size_t size);
/* m's records are ignored: the builder's are written (their offsets below m->high_watermark,
 * asserted). Returns the size, or 0 when it does not fit. */
size_t proto_encode_fetch_resp_raw(uint8_t *buf, size_t cap, const struct proto_fetch_resp *m,
                                   const struct proto_fetch_builder *b);

/* ---- iterators over a decoded message's lists: each returns 1 with the next item, 0 at the
 * end. *cursor starts at 0. ---- */
int proto_record_next(const struct proto_records *rs, size_t *cursor, struct proto_record *out);
int proto_header_next(const struct proto_record *r, size_t *cursor, struct proto_header *out);
int proto_name_next(const struct proto_metadata_req *m, size_t *cursor, struct proto_bytes *out);
int proto_broker_next(const struct proto_metadata_resp *m, size_t *cursor,
                      struct proto_broker *out);
int proto_topic_next(const struct proto_metadata_resp *m, size_t *cursor, struct proto_topic *out);
int proto_partition_next(const struct proto_topic *t, size_t *cursor, struct proto_partition *out);

const char *proto_type_name(uint8_t type);

#endif
