/* Fuzz target: the wire protocol's decoders (src/proto/), every frame and payload type.
 *
 * The input is read two ways. First, byte 0 is a payload type and the rest its payload, straight
 * into proto_decode (so the payload decoders are reached without the fuzzer having to forge
 * CRCs). Then the whole input is a stream of frames, decoded one after another as a connection
 * would, each intact frame's payload decoded by its type; an intact frame of an unknown version or
 * type is skipped, as a broker answers it and goes on. Nothing may read past the input (ASan), and
 * a payload that decodes must hold what msg.h promises: its lists walk to exactly their counts,
 * topic names are valid, a fetch answer's offsets increase below its high watermark, and the
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
        n = proto_encode_status_resp(buf, sizeof buf, &m->u.status_resp);
        break;
    default: return;
    }
    RQ_ASSERT(n > 0);
    RQ_ASSERT(proto_decode(m->type, buf, n, &again) == 0);
    switch (m->type) {
    case PROTO_FETCH_REQ:
        RQ_ASSERT(again.u.fetch_req.offset == m->u.fetch_req.offset);
        RQ_ASSERT(again.u.fetch_req.max_bytes == m->u.fetch_req.max_bytes);
        RQ_ASSERT(again.u.fetch_req.topic.size == m->u.fetch_req.topic.size);
        break;
    case PROTO_PRODUCE_RESP:
        RQ_ASSERT(again.u.produce_resp.error == m->u.produce_resp.error);
        RQ_ASSERT(again.u.produce_resp.base_offset == m->u.produce_resp.base_offset);
        break;
    case PROTO_CREATE_TOPIC_REQ:
        RQ_ASSERT(again.u.create_topic_req.partitions == m->u.create_topic_req.partitions);
        RQ_ASSERT(again.u.create_topic_req.retention_bytes ==
                  m->u.create_topic_req.retention_bytes);
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
    default: break;
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
