/* group_msg.h — the consumer-group messages of the client protocol (proto/msg.h holds the rest;
 * proto_decode decodes these too). docs/protocol.md describes them field by field.
 *
 * Two parties serve them (README, "Consumer groups"):
 *   - the group COORDINATOR, which is the controller's leader: JOIN_GROUP, HEARTBEAT,
 *     LEAVE_GROUP, LIST_GROUPS, DESCRIBE_GROUP. Membership lives in its memory; a generation is
 *     (controller term << 32) | count, so a new coordinator's generations are above every one an
 *     old coordinator gave out, with nothing written;
 *   - each PARTITION's leader, for a cursor (a queue group's name, or "GROUP/MEMBER" for a
 *     pub/sub member): CLAIM (take the partition for a generation: fences older ones), COMMIT,
 *     GROUP_FETCH (a fetch that is refused unless the cursor's claim is this member's),
 *     OFFSET_FETCH (read the committed offset) and RESET_OFFSET. Each is a control record in
 *     the partition's own log, or a read of what those records left (broker/partition.h).
 *
 * Names (group, member) use the topic names' characters ([A-Za-z0-9._-]); a cursor is a group
 * name, or a group name, '/', and a member name. */
#ifndef RQ_PROTO_GROUP_MSG_H
#define RQ_PROTO_GROUP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/bytes.h"

enum {
    PROTO_GROUP_NAME_MAX = 128,       /* bytes */
    PROTO_MEMBER_NAME_MAX = 64,       /* bytes; may be empty in queue mode */
    PROTO_CURSOR_MAX = PROTO_GROUP_NAME_MAX + 1 + PROTO_MEMBER_NAME_MAX,
    PROTO_SESSION_MS_MIN = 100,
    PROTO_SESSION_MS_MAX = 300000,
    PROTO_GROUP_MEMBERS_MAX = 64,     /* members of one group */
    PROTO_GROUP_PARTITIONS_MAX = 1024,/* partitions of the topic a group consumes */
    PROTO_GROUPS_MAX = 256,           /* groups one coordinator holds, and one LIST answer */
};

enum proto_group_mode { PROTO_MODE_QUEUE = 1, PROTO_MODE_PUBSUB = 2 };
enum proto_group_strategy { PROTO_STRATEGY_RANGE = 1, PROTO_STRATEGY_STICKY = 2 };

/* A committed offset that does not exist (the cursor never committed on this partition). */
#define PROTO_NO_OFFSET UINT64_MAX

struct proto_join_group_req {     /* PROTO_JOIN_GROUP_REQ */
    struct proto_bytes group;      /* 1..PROTO_GROUP_NAME_MAX */
    struct proto_bytes topic;      /* a valid topic name */
    struct proto_bytes member_name;/* 0..PROTO_MEMBER_NAME_MAX; pub/sub: 1.. (its cursor) */
    uint8_t mode;                 /* enum proto_group_mode */
    uint8_t strategy;             /* enum proto_group_strategy */
    uint32_t session_ms;          /* PROTO_SESSION_MS_MIN..PROTO_SESSION_MS_MAX */
    uint64_t member_id;           /* 0: a new member; else a rejoin keeping its id */
};

/* The answer to JOIN_GROUP and HEARTBEAT: the member's generation and partitions. A heartbeat is
 * also Kafka's "sync": its answer carries the assignment of the current generation. */
struct proto_assignment_resp {    /* PROTO_ASSIGNMENT_RESP */
    int error;
    uint32_t leader_hint;         /* with RQ_ENOTLEADER: the controller's leader, 0: unknown */
    uint64_t member_id;           /* error 0: >= 1 */
    uint64_t generation;          /* error 0: >= 1 */
    uint32_t partition_count;     /* 0..PROTO_GROUP_PARTITIONS_MAX */
    const uint8_t *partitions;    /* varints, strictly increasing: walk with proto_assignment_next */
    size_t partitions_size;
};

struct proto_heartbeat_req {      /* PROTO_HEARTBEAT_REQ */
    struct proto_bytes group;
    uint64_t member_id;           /* >= 1 */
    uint64_t generation;          /* the member's; the answer carries the current one */
};

struct proto_leave_group_req {    /* PROTO_LEAVE_GROUP_REQ; answered by PROTO_LEAVE_GROUP_RESP */
    struct proto_bytes group;
    uint64_t member_id;           /* >= 1 */
};

/* CLAIM, COMMIT, OFFSET_FETCH and RESET_OFFSET: one cursor on one partition. */
struct proto_offset_req {
    struct proto_bytes topic;
    uint32_t partition;           /* < PROTO_PARTITIONS_MAX */
    struct proto_bytes cursor;     /* 1..PROTO_CURSOR_MAX */
    uint64_t generation;          /* CLAIM, COMMIT: >= 1; others 0 */
    uint64_t member_id;           /* CLAIM, COMMIT: >= 1; others 0 */
    uint64_t offset;              /* COMMIT, RESET_OFFSET: the next offset to consume; others 0 */
};

struct proto_offset_resp {        /* PROTO_OFFSET_RESP: the answer to the four above */
    int error;
    uint32_t leader_hint;
    uint64_t committed;           /* the cursor's committed offset, PROTO_NO_OFFSET: none */
    uint64_t log_start;
    uint64_t high_watermark;
};

struct proto_group_summary {      /* one group in LIST_GROUPS_RESP */
    struct proto_bytes group;
    struct proto_bytes topic;
    uint8_t mode;
    uint8_t strategy;
    uint64_t generation;
    uint32_t member_count;
};

struct proto_list_groups_resp {   /* PROTO_LIST_GROUPS_RESP; the request carries nothing */
    int error;
    uint32_t leader_hint;
    uint32_t group_count;         /* 0..PROTO_GROUPS_MAX */
    const uint8_t *groups;        /* walk with proto_group_summary_next */
    size_t groups_size;
};

struct proto_describe_group_req { /* PROTO_DESCRIBE_GROUP_REQ */
    struct proto_bytes group;
};

struct proto_group_member {       /* one member in DESCRIBE_GROUP_RESP */
    uint64_t member_id;
    struct proto_bytes member_name;
    uint32_t session_ms;
    uint32_t partition_count;
    const uint8_t *partitions;    /* varints, strictly increasing: walk with proto_member_partition_next */
    size_t partitions_size;
};

struct proto_describe_group_resp {/* PROTO_DESCRIBE_GROUP_RESP */
    int error;                    /* RQ_ENOENT: no such group (no live members) */
    uint32_t leader_hint;
    struct proto_group_summary summary; /* error 0 only: with an error neither the summary nor
                                           the members are written (decoded as zeros) */
    const uint8_t *members;       /* summary.member_count of them: walk with proto_member_next */
    size_t members_size;
};

struct proto_group_member_in {    /* one member to encode in DESCRIBE_GROUP_RESP */
    uint64_t member_id;
    struct proto_bytes member_name;
    uint32_t session_ms;
    uint32_t partition_count;
    const uint32_t *partitions;   /* strictly increasing */
};

/* Whether name[0..size) is a valid group or member name (1..max bytes of [A-Za-z0-9._-]). */
int proto_group_name_valid(const uint8_t *name, size_t size, size_t max);
/* Whether name is a valid cursor: a group name, or a group name, '/' and a member name. */
int proto_cursor_valid(const uint8_t *name, size_t size);

/* ---- encoding (as in msg.h: the size written, 0 when it does not fit; the message must be
 * valid, asserted) ---- */
size_t proto_encode_join_group_req(uint8_t *buf, size_t cap, const struct proto_join_group_req *m);
/* partitions: m->partition_count of them, strictly increasing. */
size_t proto_encode_assignment_resp(uint8_t *buf, size_t cap, const struct proto_assignment_resp *m,
                                    const uint32_t *partitions);
size_t proto_encode_heartbeat_req(uint8_t *buf, size_t cap, const struct proto_heartbeat_req *m);
size_t proto_encode_leave_group_req(uint8_t *buf, size_t cap,
                                    const struct proto_leave_group_req *m);
/* type: PROTO_CLAIM_REQ, PROTO_COMMIT_REQ, PROTO_OFFSET_FETCH_REQ or PROTO_RESET_OFFSET_REQ; the
 * fields that type does not carry must be 0 (asserted). */
size_t proto_encode_offset_req(uint8_t *buf, size_t cap, uint8_t type,
                               const struct proto_offset_req *m);
size_t proto_encode_offset_resp(uint8_t *buf, size_t cap, const struct proto_offset_resp *m);
/* A fetch for a cursor (m->cursor, generation, member_id set): PROTO_GROUP_FETCH_REQ. */
struct proto_fetch_req;
size_t proto_encode_group_fetch_req(uint8_t *buf, size_t cap, const struct proto_fetch_req *m);
size_t proto_encode_list_groups_resp(uint8_t *buf, size_t cap, int error, uint32_t leader_hint,
                                     const struct proto_group_summary *groups, uint32_t count);
size_t proto_encode_describe_group_req(uint8_t *buf, size_t cap,
                                       const struct proto_describe_group_req *m);
/* m->members is ignored: members[0..m->summary.member_count) are written; with m->error not 0,
 * only the error and the leader hint (the summary and members are ignored). */
size_t proto_encode_describe_group_resp(uint8_t *buf, size_t cap,
                                        const struct proto_describe_group_resp *m,
                                        const struct proto_group_member_in *members);

/* ---- iterators (1 with the next item, 0 at the end; *cursor starts at 0) ---- */
int proto_assignment_next(const struct proto_assignment_resp *m, size_t *cursor, uint32_t *out);
int proto_group_summary_next(const struct proto_list_groups_resp *m, size_t *cursor,
                             struct proto_group_summary *out);
int proto_member_next(const struct proto_describe_group_resp *m, size_t *cursor,
                      struct proto_group_member *out);
int proto_member_partition_next(const struct proto_group_member *m, size_t *cursor,
                                uint32_t *out);

#endif
