/* Fuzz target: the wire protocol's decoders (src/proto/), every frame and payload type.
 *
 * The input is read two ways. First, byte 0 is a payload type and the rest its payload, straight
 * into proto_decode (so the payload decoders are reached without the fuzzer having to forge
 * CRCs). Then the whole input is a stream of frames, decoded one after another as a connection
 * would, each intact frame's payload decoded by its type; an intact frame of an unknown version or
 * type is skipped, as a broker answers it and goes on. Nothing may read past the input (ASan), and
 * a payload that decodes must hold what msg.h promises: its lists walk to exactly their counts,
 * topic names are valid, a fetch answer's offsets increase below its high watermark, the
 * consumer-group lists (partitions, groups, members) walk to their counts in order, and the
 * simple messages re-encode to bytes that decode to the same fields. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "proto/frame.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk_records(const struct proto_records *rs) {
    size_t cur = 0;
    uint32_t n = 0;
    uint64_t prev = 0;
    struct proto_record r;
    while (proto_record_next(rs, &cur, &r)) {
        RQ_ASSERT(!rs->with_offsets || n == 0 || r.offset > prev);
        prev = r.offset;
        size_t hc = 0;
        uint32_t h = 0;
        struct proto_header hd;
        while (proto_header_next(&r, &hc, &hd)) h++;
        RQ_ASSERT(h == r.header_count && hc == r.headers_size);
        n++;
    }
    RQ_ASSERT(n == rs->count && cur == rs->size);
}

static void walk_metadata(const struct proto_metadata_resp *m) {
    size_t cur = 0;
    uint32_t n = 0;
    struct proto_broker b;
    while (proto_broker_next(m, &cur, &b)) {
        RQ_ASSERT(b.id != 0 && ++n <= m->broker_count);
        RQ_ASSERT((b.flags & ~PROTO_BROKER_FLAGS_ALL) == 0);
        if (m->version < 2) RQ_ASSERT(b.flags == 0);
    }
    RQ_ASSERT(n == m->broker_count);
    cur = 0;
    n = 0;
    struct proto_topic t;
    while (proto_topic_next(m, &cur, &t)) {
        RQ_ASSERT(proto_topic_name_valid(t.name.data, t.name.size));
        size_t pc = 0;
        uint32_t p = 0;
        struct proto_partition part;
        while (proto_partition_next(&t, &pc, &part)) RQ_ASSERT(part.replica_count <= 9 && ++p);
        RQ_ASSERT(p == t.partition_count);
        n++;
    }
    RQ_ASSERT(n == m->topic_count);
}

/* A decoded partition list: strictly increasing, below PROTO_PARTITIONS_MAX, exactly count. */
static void walk_partition_list(const struct proto_group_member *g) {
    size_t cur = 0;
    uint32_t n = 0, p = 0, prev = 0;
    while (proto_member_partition_next(g, &cur, &p)) {
        RQ_ASSERT(p < PROTO_PARTITIONS_MAX);
        if (n > 0) RQ_ASSERT(p > prev);
        prev = p;
        n++;
    }
    RQ_ASSERT(n == g->partition_count && cur == g->partitions_size);
}

/* The consumer-group answers' lists walk to exactly their counts, every name valid. */
static void walk_groups(const struct proto_msg *m) {
    switch (m->type) {
    case PROTO_ASSIGNMENT_RESP: {
        const struct proto_assignment_resp *a = &m->u.assignment_resp;
        struct proto_group_member g = {.partition_count = a->partition_count,
                                       .partitions = a->partitions,
                                       .partitions_size = a->partitions_size};
        walk_partition_list(&g);
        size_t cur = 0;
        uint32_t n = 0, p;
        while (proto_assignment_next(a, &cur, &p)) n++;
        RQ_ASSERT(n == a->partition_count);
        if (a->error == 0) RQ_ASSERT(a->member_id >= 1 && a->generation >= 1);
        break;
    }
    case PROTO_LIST_GROUPS_RESP: {
        size_t cur = 0;
        uint32_t n = 0;
        struct proto_group_summary s;
        while (proto_group_summary_next(&m->u.list_groups_resp, &cur, &s)) {
            RQ_ASSERT(proto_group_name_valid(s.group.data, s.group.size, PROTO_GROUP_NAME_MAX));
            RQ_ASSERT(s.member_count <= PROTO_GROUP_MEMBERS_MAX);
            n++;
        }
        RQ_ASSERT(n == m->u.list_groups_resp.group_count);
        break;
    }
    case PROTO_DESCRIBE_GROUP_RESP: {
        size_t cur = 0;
        uint32_t n = 0;
        struct proto_group_member g;
        while (proto_member_next(&m->u.describe_group_resp, &cur, &g)) {
            RQ_ASSERT(g.member_id >= 1);
            RQ_ASSERT(g.session_ms >= PROTO_SESSION_MS_MIN && g.session_ms <= PROTO_SESSION_MS_MAX);
            walk_partition_list(&g);
            n++;
        }
        RQ_ASSERT(n == m->u.describe_group_resp.summary.member_count);
        break;
    }
    case PROTO_CLAIM_REQ:
    case PROTO_COMMIT_REQ:
    case PROTO_OFFSET_FETCH_REQ:
    case PROTO_RESET_OFFSET_REQ:
        RQ_ASSERT(proto_cursor_valid(m->u.offset_req.cursor.data, m->u.offset_req.cursor.size));
        break;
    case PROTO_GROUP_FETCH_REQ:
        RQ_ASSERT(proto_cursor_valid(m->u.fetch_req.cursor.data, m->u.fetch_req.cursor.size));
        RQ_ASSERT(m->u.fetch_req.from_follower == 0);
        break;
    default: break;
    }
}

/* Re-encodes the fixed-field messages and checks they decode to the same fields. */
static void reencode(const struct proto_msg *m) {
    static uint8_t buf[1024];
    struct proto_msg again;
    size_t n = 0;
    switch (m->type) {
    case PROTO_FETCH_REQ: n = proto_encode_fetch_req(buf, sizeof buf, &m->u.fetch_req); break;
    case PROTO_PRODUCE_RESP:
        n = proto_encode_produce_resp(buf, sizeof buf, &m->u.produce_resp);
        break;
    case PROTO_CREATE_TOPIC_REQ:
        n = proto_encode_create_topic_req(buf, sizeof buf, &m->u.create_topic_req);
        break;
    case PROTO_CREATE_TOPIC_RESP:
    case PROTO_DELETE_TOPIC_RESP:
    case PROTO_LEAVE_GROUP_RESP:
        n = proto_encode_status_resp(buf, sizeof buf, &m->u.status_resp);
        break;
    case PROTO_JOIN_GROUP_REQ:
        n = proto_encode_join_group_req(buf, sizeof buf, &m->u.join_group_req);
        break;
    case PROTO_CLAIM_REQ:
    case PROTO_COMMIT_REQ:
    case PROTO_OFFSET_FETCH_REQ:
    case PROTO_RESET_OFFSET_REQ:
        n = proto_encode_offset_req(buf, sizeof buf, m->type, &m->u.offset_req);
        break;
    case PROTO_GROUP_FETCH_REQ:
        n = proto_encode_group_fetch_req(buf, sizeof buf, &m->u.fetch_req);
        break;
    default: return;
    }
    RQ_ASSERT(n > 0);
    RQ_ASSERT(proto_decode(m->type, buf, n, &again) == 0);
    switch (m->type) {
    case PROTO_PRODUCE_RESP:
        RQ_ASSERT(again.u.produce_resp.error == m->u.produce_resp.error);
        RQ_ASSERT(again.u.produce_resp.base_offset == m->u.produce_resp.base_offset);
        break;
    case PROTO_CREATE_TOPIC_REQ:
        RQ_ASSERT(again.u.create_topic_req.partitions == m->u.create_topic_req.partitions);
        RQ_ASSERT(again.u.create_topic_req.retention_bytes ==
                  m->u.create_topic_req.retention_bytes);
        break;
    case PROTO_JOIN_GROUP_REQ:
        RQ_ASSERT(again.u.join_group_req.session_ms == m->u.join_group_req.session_ms);
        RQ_ASSERT(again.u.join_group_req.member_id == m->u.join_group_req.member_id);
        break;
    case PROTO_CLAIM_REQ:
    case PROTO_COMMIT_REQ:
    case PROTO_OFFSET_FETCH_REQ:
    case PROTO_RESET_OFFSET_REQ:
        RQ_ASSERT(again.u.offset_req.offset == m->u.offset_req.offset);
        RQ_ASSERT(again.u.offset_req.cursor.size == m->u.offset_req.cursor.size);
        break;
    case PROTO_FETCH_REQ:
    case PROTO_GROUP_FETCH_REQ:
        RQ_ASSERT(again.u.fetch_req.offset == m->u.fetch_req.offset);
        RQ_ASSERT(again.u.fetch_req.max_bytes == m->u.fetch_req.max_bytes);
        RQ_ASSERT(again.u.fetch_req.topic.size == m->u.fetch_req.topic.size);
        RQ_ASSERT(again.u.fetch_req.member_id == m->u.fetch_req.member_id);
        break;
    default: RQ_ASSERT(again.u.status_resp.error == m->u.status_resp.error); break;
    }
}

static void check_payload(uint8_t type, const uint8_t *payload, size_t size) {
    if (type == PROTO_METADATA_RESP) {   /* version 1's layout too (no broker flags) */
        struct proto_msg m1;
        int rc1 = proto_decode_version(PROTO_VERSION_MIN, type, payload, size, &m1);
        if (rc1 == 0) walk_metadata(&m1.u.metadata_resp);
        else RQ_ASSERT(rc1 == RQ_ETRUNC || rc1 == RQ_ETOOBIG || rc1 == RQ_ECORRUPT);
    }
    struct proto_msg m;
    int rc = proto_decode(type, payload, size, &m);
    if (rc != 0) {
        RQ_ASSERT(rc == RQ_ETYPE || rc == RQ_ETRUNC || rc == RQ_ETOOBIG || rc == RQ_ECORRUPT);
        return;
    }
    switch (type) {
    case PROTO_PRODUCE_REQ:
        RQ_ASSERT(m.u.produce_req.records.count >= 1);
        walk_records(&m.u.produce_req.records);
        break;
    case PROTO_FETCH_RESP:
        RQ_ASSERT(m.u.fetch_resp.log_start <= m.u.fetch_resp.high_watermark);
        walk_records(&m.u.fetch_resp.records);
        break;
    case PROTO_METADATA_RESP: walk_metadata(&m.u.metadata_resp); break;
    case PROTO_METADATA_REQ: {
        size_t cur = 0;
        uint32_t n = 0;
        struct proto_bytes name;
        while (proto_name_next(&m.u.metadata_req, &cur, &name)) n++;
        RQ_ASSERT(n == m.u.metadata_req.topic_count);
        break;
    }
    default: walk_groups(&m); break;
    }
    reencode(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 1) check_payload(data[0], size > 1 ? data + 1 : NULL, size - 1);
    size_t at = 0;
    while (at < size) {
        struct proto_frame f;
        size_t n;
        int rc = proto_frame_decode(data + at, size - at, PROTO_FRAME_MAX, &f, &n);
        if (rc == 0) check_payload(f.type, f.payload, f.payload_size);
        else if (rc != RQ_EVERSION && rc != RQ_ETYPE) break;   /* the connection would close */
        RQ_ASSERT(n >= PROTO_FRAME_HEADER && n <= size - at);
        at += n;
    }
    return 0;
}
