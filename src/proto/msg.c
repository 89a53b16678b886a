/* The payloads of raftq's frames; see msg.h and docs/protocol.md.
 *
 * Decoding reads through base's rq_reader, whose error is sticky: a structural problem found here
 * (a count over its maximum, a bad flag byte, an invalid name, offsets out of order) is recorded
 * in the same field, so each decoder reads its whole message and checks the error once. The field
 * readers and writers are shared with the consumer-group messages (group_msg.c) through
 * codec_internal.h. */
#include "proto/msg.h"

#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "proto/codec_internal.h"
#include "proto/frame.h"

enum { BYTES_MAX = PROTO_FRAME_MAX };   /* any one key, value or payload field */

/* ---- names ------------------------------------------------------------------------------------ */

int proto_topic_name_valid(const uint8_t *name, size_t size) {
    if (size == 0 || size > PROTO_TOPIC_NAME_MAX) return 0;
    if ((size == 1 && name[0] == '.') || (size == 2 && name[0] == '.' && name[1] == '.')) return 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        if (!ok) return 0;
    }
    return 1;
}

const char *proto_type_name(uint8_t type) {
    static const char *const names[] = {
        "unknown", "error", "raft", "produce-req", "produce-resp", "fetch-req", "fetch-resp",
        "metadata-req", "metadata-resp", "create-topic-req", "create-topic-resp",
        "delete-topic-req", "delete-topic-resp", "init-producer-req", "init-producer-resp",
        "forward", "decommission-req", "decommission-resp", "join-group-req", "assignment-resp",
        "heartbeat-req", "leave-group-req", "leave-group-resp", "claim-req", "commit-req",
        "offset-fetch-req", "reset-offset-req", "offset-resp", "group-fetch-req",
        "list-groups-req", "list-groups-resp", "describe-group-req", "describe-group-resp",
        "delayed-produce-req"};
    _Static_assert(sizeof names / sizeof names[0] == PROTO_TYPE_MAX + 1, "a name per type");
    return type <= PROTO_TYPE_MAX ? names[type] : names[0];
}

/* ---- reading ---------------------------------------------------------------------------------- */

/* One record at r (after its offset, for fetch answers). */
static void read_record(struct rq_reader *r, struct proto_record *out) {
    memset(out, 0, sizeof *out);
    out->timestamp = read_num(r, UINT64_MAX);
    out->key = read_field(r, BYTES_MAX);
    out->value = read_field(r, BYTES_MAX);
    out->header_count = (uint32_t)read_num(r, PROTO_HEADERS_MAX);
    size_t start = r->pos;
    for (uint32_t i = 0; i < out->header_count && r->err == 0; i++) {
        read_field(r, PROTO_HEADER_NAME_MAX);
        read_field(r, BYTES_MAX);
    }
    out->headers = r->err ? NULL : at(r, start);
    out->headers_size = r->err ? 0 : r->pos - start;
}

/* A run of count records; with offsets, strictly increasing and below `below`. */
static void read_records(struct rq_reader *r, uint32_t count, int with_offsets, uint64_t below,
                         struct proto_records *out) {
    size_t start = r->pos;
    uint64_t prev = 0;
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        if (with_offsets) {
            uint64_t offset = read_num(r, UINT64_MAX);
            if (r->err == 0 && ((i > 0 && offset <= prev) || offset >= below)) bad(r, RQ_ECORRUPT);
            prev = offset;
        }
        struct proto_record rec;
        read_record(r, &rec);
    }
    out->data = at(r, start);
    out->size = r->pos - start;
    out->count = count;
    out->with_offsets = (uint8_t)with_offsets;
}

static void decode_produce_req(struct rq_reader *r, struct proto_produce_req *m);

/* A produce request and, after its records, its delay: acks=all, no producer id. */
static void decode_delayed_produce_req(struct rq_reader *r, struct proto_produce_req *m) {
    decode_produce_req(r, m);
    m->delay_ms = read_num(r, PROTO_DELAY_MS_MAX);
    if (r->err == 0 && (m->delay_ms == 0 || m->acks != PROTO_ACKS_ALL || m->producer_id != 0 ||
                        m->base_sequence != 0))
        bad(r, RQ_ECORRUPT);
}

static void decode_produce_req(struct rq_reader *r, struct proto_produce_req *m) {
    m->topic = read_topic(r);
    m->partition = (uint32_t)read_num(r, PROTO_PARTITIONS_MAX - 1);
    m->acks = read_flag(r, PROTO_ACKS_ALL);
    m->producer_id = read_num(r, UINT64_MAX);
    m->base_sequence = read_num(r, UINT64_MAX);
    uint32_t count = (uint32_t)read_num(r, PROTO_RECORDS_MAX);
    if (r->err == 0 && count == 0) bad(r, RQ_ECORRUPT);
    read_records(r, count, 0, 0, &m->records);
}

void proto_read_fetch_req(struct rq_reader *r, struct proto_fetch_req *m) {
    m->topic = read_topic(r);
    m->partition = (uint32_t)read_num(r, PROTO_PARTITIONS_MAX - 1);
    m->offset = read_num(r, UINT64_MAX);
    m->max_records = (uint32_t)read_num(r, PROTO_RECORDS_MAX);
    m->max_bytes = (uint32_t)read_num(r, PROTO_FRAME_MAX);
    m->max_wait_ms = (uint32_t)read_num(r, PROTO_WAIT_MS_MAX);
    m->from_follower = read_flag(r, PROTO_FOLLOWER_AS_IS);
    if (r->err == 0 && (m->max_records == 0 || m->max_bytes == 0)) bad(r, RQ_ECORRUPT);
}

static void decode_fetch_resp(struct rq_reader *r, struct proto_fetch_resp *m) {
    m->error = read_err(r);
    m->leader_hint = (uint32_t)read_num(r, UINT32_MAX);
    m->log_start = read_num(r, UINT64_MAX);
    m->high_watermark = read_num(r, UINT64_MAX);
    if (r->err == 0 && m->log_start > m->high_watermark) bad(r, RQ_ECORRUPT);
    uint32_t count = (uint32_t)read_num(r, PROTO_RECORDS_MAX);
    read_records(r, count, 1, m->high_watermark, &m->records);
}

static void read_partition(struct rq_reader *r, struct proto_partition *p) {
    memset(p, 0, sizeof *p);
    p->index = (uint32_t)read_num(r, PROTO_PARTITIONS_MAX - 1);
    p->leader = (uint32_t)read_num(r, UINT32_MAX);
    p->replica_count = (uint32_t)read_num(r, PROTO_REPLICAS_MAX);
    for (uint32_t k = 0; k < p->replica_count && r->err == 0; k++)
        p->replicas[k] = (uint32_t)read_num(r, UINT32_MAX);
}

static void read_topic_entry(struct rq_reader *r, struct proto_topic *t) {
    memset(t, 0, sizeof *t);
    t->name = read_topic(r);
    t->error = read_err(r);
    t->partition_count = (uint32_t)read_num(r, PROTO_PARTITIONS_MAX);
    size_t start = r->pos;
    for (uint32_t i = 0; i < t->partition_count && r->err == 0; i++) {
        struct proto_partition p;
        read_partition(r, &p);
    }
    t->partitions = at(r, start);
    t->partitions_size = r->err ? 0 : r->pos - start;
}

/* Version 2 added a u8 of flags after the address. */
static void read_broker(struct rq_reader *r, uint8_t version, struct proto_broker *b) {
    b->id = (uint32_t)read_num(r, UINT32_MAX);
    b->address = read_field(r, PROTO_TEXT_MAX);
    b->flags = 0;
    if (version >= 2) rq_read_u8(r, &b->flags);
    if (r->err == 0 && b->id == 0) bad(r, RQ_ECORRUPT);
    if (r->err == 0 && (b->flags & ~PROTO_BROKER_FLAGS_ALL) != 0) bad(r, RQ_ECORRUPT);
}

static void decode_metadata_resp(struct rq_reader *r, uint8_t version,
                                 struct proto_metadata_resp *m) {
    m->version = version;
    m->controller = (uint32_t)read_num(r, UINT32_MAX);
    m->broker_count = (uint32_t)read_num(r, PROTO_BROKERS_MAX);
    size_t start = r->pos;
    for (uint32_t i = 0; i < m->broker_count && r->err == 0; i++) {
        struct proto_broker b;
        read_broker(r, version, &b);
    }
    m->brokers = at(r, start);
    m->brokers_size = r->pos - start;
    m->topic_count = (uint32_t)read_num(r, PROTO_TOPICS_MAX);
    start = r->pos;
    for (uint32_t i = 0; i < m->topic_count && r->err == 0; i++) {
        struct proto_topic t;
        read_topic_entry(r, &t);
    }
    m->topics = at(r, start);
    m->topics_size = r->pos - start;
}

static void decode_metadata_req(struct rq_reader *r, struct proto_metadata_req *m) {
    m->topic_count = (uint32_t)read_num(r, PROTO_TOPICS_MAX);
    size_t start = r->pos;
    for (uint32_t i = 0; i < m->topic_count && r->err == 0; i++) read_topic(r);
    m->topics = at(r, start);
    m->topics_size = r->pos - start;
}

static void decode_create_topic_req(struct rq_reader *r, struct proto_create_topic_req *m) {
    m->name = read_topic(r);
    m->partitions = (uint32_t)read_num(r, PROTO_PARTITIONS_MAX);
    m->replication = (uint32_t)read_num(r, PROTO_REPLICAS_MAX);
    m->retention_ms = read_num(r, UINT64_MAX);
    m->retention_bytes = read_num(r, UINT64_MAX);
    m->max_message_bytes = (uint32_t)read_num(r, PROTO_FRAME_MAX);
    if (r->err == 0 && (m->partitions == 0 || m->replication == 0 || m->max_message_bytes == 0))
        bad(r, RQ_ECORRUPT);
}

static void decode_body(struct rq_reader *r, uint8_t version, uint8_t type,
                        struct proto_msg *out) {
    switch (type) {
    case PROTO_ERROR:
        out->u.error.error = read_err(r);
        out->u.error.text = read_field(r, PROTO_TEXT_MAX);
        break;
    case PROTO_RAFT:
        out->u.raft.size = (uint32_t)r->len;
        out->u.raft.data = r->len ? r->buf : NULL;
        r->pos = r->len;
        break;
    case PROTO_FORWARD:
        if (r->len == 0 || r->len > PROTO_FORWARD_MAX) {
            bad(r, r->len ? RQ_ETOOBIG : RQ_ECORRUPT);
            break;
        }
        out->u.forward = (struct proto_bytes){.data = r->buf, .size = (uint32_t)r->len};
        r->pos = r->len;
        break;
    case PROTO_PRODUCE_REQ: decode_produce_req(r, &out->u.produce_req); break;
    case PROTO_DELAYED_PRODUCE_REQ: decode_delayed_produce_req(r, &out->u.produce_req); break;
    case PROTO_PRODUCE_RESP:
        out->u.produce_resp.error = read_err(r);
        out->u.produce_resp.base_offset = read_num(r, UINT64_MAX);
        out->u.produce_resp.leader_hint = (uint32_t)read_num(r, UINT32_MAX);
        break;
    case PROTO_FETCH_REQ: proto_read_fetch_req(r, &out->u.fetch_req); break;
    case PROTO_FETCH_RESP: decode_fetch_resp(r, &out->u.fetch_resp); break;
    case PROTO_METADATA_REQ: decode_metadata_req(r, &out->u.metadata_req); break;
    case PROTO_METADATA_RESP: decode_metadata_resp(r, version, &out->u.metadata_resp); break;
    case PROTO_CREATE_TOPIC_REQ: decode_create_topic_req(r, &out->u.create_topic_req); break;
    case PROTO_DELETE_TOPIC_REQ: out->u.delete_topic_req.name = read_topic(r); break;
    case PROTO_DECOMMISSION_REQ:
        out->u.decommission_req.broker = (uint32_t)read_num(r, UINT32_MAX);
        if (r->err == 0 && out->u.decommission_req.broker == 0) bad(r, RQ_ECORRUPT);
        break;
    case PROTO_CREATE_TOPIC_RESP:
    case PROTO_DELETE_TOPIC_RESP:
    case PROTO_DECOMMISSION_RESP: read_status_resp(r, &out->u.status_resp); break;
    case PROTO_INIT_PRODUCER_REQ: break;
    case PROTO_INIT_PRODUCER_RESP:
        out->u.init_producer_resp.error = read_err(r);
        out->u.init_producer_resp.producer_id = read_num(r, UINT64_MAX);
        out->u.init_producer_resp.leader_hint = (uint32_t)read_num(r, UINT32_MAX);
        if (r->err == 0 && out->u.init_producer_resp.error == 0 &&
            out->u.init_producer_resp.producer_id == 0)
            bad(r, RQ_ECORRUPT);
        break;
    default: proto_group_decode_body(r, type, out); break;   /* consumer groups: group_msg.c */
    }
}

int proto_decode(uint8_t type, const uint8_t *payload, size_t size, struct proto_msg *out) {
    return proto_decode_version(PROTO_VERSION, type, payload, size, out);
}

int proto_decode_version(uint8_t version, uint8_t type, const uint8_t *payload, size_t size,
                         struct proto_msg *out) {
    RQ_ASSERT(version >= PROTO_VERSION_MIN && version <= PROTO_VERSION);
    memset(out, 0, sizeof *out);
    if (type < 1 || type > PROTO_TYPE_MAX) return RQ_ETYPE;
    if (size > PROTO_FRAME_MAX) return RQ_ETOOBIG;
    RQ_ASSERT(payload != NULL || size == 0);
    struct rq_reader r;
    rq_reader_init(&r, payload, size);
    out->type = type;
    decode_body(&r, version, type, out);
    if (r.err == 0 && rq_reader_remaining(&r) != 0) r.err = RQ_ECORRUPT;   /* trailing bytes */
    if (r.err != 0) {
        int err = r.err;
        memset(out, 0, sizeof *out);
        return err;
    }
    return 0;
}

int proto_records_decode(const uint8_t *data, size_t size, uint32_t count, int with_offsets,
                         struct proto_records *out) {
    memset(out, 0, sizeof *out);
    if (count == 0 || count > PROTO_RECORDS_MAX) return RQ_ETOOBIG;
    RQ_ASSERT(data != NULL || size == 0);
    struct rq_reader r;
    rq_reader_init(&r, data, size);
    struct proto_records rs;
    read_records(&r, count, with_offsets != 0, UINT64_MAX, &rs);
    if (r.err == 0 && rq_reader_remaining(&r) != 0) r.err = RQ_ECORRUPT;
    if (r.err != 0) return r.err;
    *out = rs;
    return 0;
}

/* ---- iterators (on decoded, hence valid, messages) ---------------------------------------------- */

int proto_record_next(const struct proto_records *rs, size_t *cursor, struct proto_record *out) {
    if (*cursor >= rs->size) return 0;
    struct rq_reader r;
    iter_open(&r, rs->data, rs->size, *cursor);
    uint64_t offset = rs->with_offsets ? read_num(&r, UINT64_MAX) : 0;
    read_record(&r, out);
    out->offset = offset;
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

int proto_header_next(const struct proto_record *rec, size_t *cursor, struct proto_header *out) {
    if (*cursor >= rec->headers_size) return 0;
    struct rq_reader r;
    iter_open(&r, rec->headers, rec->headers_size, *cursor);
    out->name = read_field(&r, PROTO_HEADER_NAME_MAX);
    out->value = read_field(&r, BYTES_MAX);
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

int proto_name_next(const struct proto_metadata_req *m, size_t *cursor, struct proto_bytes *out) {
    if (*cursor >= m->topics_size) return 0;
    struct rq_reader r;
    iter_open(&r, m->topics, m->topics_size, *cursor);
    *out = read_topic(&r);
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

int proto_broker_next(const struct proto_metadata_resp *m, size_t *cursor,
                      struct proto_broker *out) {
    if (*cursor >= m->brokers_size) return 0;
    struct rq_reader r;
    iter_open(&r, m->brokers, m->brokers_size, *cursor);
    read_broker(&r, m->version, out);
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

int proto_topic_next(const struct proto_metadata_resp *m, size_t *cursor, struct proto_topic *out) {
    if (*cursor >= m->topics_size) return 0;
    struct rq_reader r;
    iter_open(&r, m->topics, m->topics_size, *cursor);
    read_topic_entry(&r, out);
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

int proto_partition_next(const struct proto_topic *t, size_t *cursor,
                         struct proto_partition *out) {
    if (*cursor >= t->partitions_size) return 0;
    struct rq_reader r;
    iter_open(&r, t->partitions, t->partitions_size, *cursor);
    read_partition(&r, out);
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

/* ---- writing ---------------------------------------------------------------------------------- */

static void write_record(struct rq_writer *w, const struct proto_record_in *rec) {
    RQ_ASSERT(rec->header_count <= PROTO_HEADERS_MAX);
    rq_write_varint(w, rec->timestamp);
    write_field(w, rec->key);
    write_field(w, rec->value);
    rq_write_varint(w, rec->header_count);
    for (uint32_t i = 0; i < rec->header_count; i++) {
        RQ_ASSERT(rec->headers[i].name.size <= PROTO_HEADER_NAME_MAX);
        write_field(w, rec->headers[i].name);
        write_field(w, rec->headers[i].value);
    }
}

size_t proto_encode_error(uint8_t *buf, size_t cap, int error, const char *text) {
    size_t n = strlen(text);
    if (n > PROTO_TEXT_MAX) n = PROTO_TEXT_MAX;   /* a message is cut, never refused */
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_err(&w, error);
    write_field(&w, (struct proto_bytes){(const uint8_t *)text, (uint32_t)n});
    return finish(&w);
}

size_t proto_encode_produce_req(uint8_t *buf, size_t cap, const struct proto_produce_req *m,
                                const struct proto_record_in *records) {
    RQ_ASSERT(m->records.count >= 1 && m->records.count <= PROTO_RECORDS_MAX);
    RQ_ASSERT(m->partition < PROTO_PARTITIONS_MAX && m->acks <= PROTO_ACKS_ALL);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_topic(&w, m->topic);
    rq_write_varint(&w, m->partition);
    rq_write_u8(&w, m->acks);
    rq_write_varint(&w, m->producer_id);
    rq_write_varint(&w, m->base_sequence);
    rq_write_varint(&w, m->records.count);
    for (uint32_t i = 0; i < m->records.count; i++) write_record(&w, &records[i]);
    return finish(&w);
}

size_t proto_encode_delayed_produce_req(uint8_t *buf, size_t cap,
                                        const struct proto_produce_req *m,
                                        const struct proto_record_in *records) {
    RQ_ASSERT(m->delay_ms >= 1 && m->delay_ms <= PROTO_DELAY_MS_MAX);
    RQ_ASSERT(m->acks == PROTO_ACKS_ALL && m->producer_id == 0 && m->base_sequence == 0);
    size_t n = proto_encode_produce_req(buf, cap, m, records);
    if (n == 0) return 0;
    struct rq_writer w;
    rq_writer_init(&w, buf + n, cap - n);
    rq_write_varint(&w, m->delay_ms);
    return w.err ? 0 : n + w.len;
}

size_t proto_encode_produce_resp(uint8_t *buf, size_t cap, const struct proto_produce_resp *m) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_err(&w, m->error);
    rq_write_varint(&w, m->base_offset);
    rq_write_varint(&w, m->leader_hint);
    return finish(&w);
}

void proto_write_fetch_req(struct rq_writer *w, const struct proto_fetch_req *m) {
    RQ_ASSERT(m->partition < PROTO_PARTITIONS_MAX && m->from_follower <= PROTO_FOLLOWER_AS_IS);
    RQ_ASSERT(m->max_records >= 1 && m->max_records <= PROTO_RECORDS_MAX);
    RQ_ASSERT(m->max_bytes >= 1 && m->max_bytes <= PROTO_FRAME_MAX);
    RQ_ASSERT(m->max_wait_ms <= PROTO_WAIT_MS_MAX);
    write_topic(w, m->topic);
    rq_write_varint(w, m->partition);
    rq_write_varint(w, m->offset);
    rq_write_varint(w, m->max_records);
    rq_write_varint(w, m->max_bytes);
    rq_write_varint(w, m->max_wait_ms);
    rq_write_u8(w, m->from_follower);
}

size_t proto_encode_fetch_req(uint8_t *buf, size_t cap, const struct proto_fetch_req *m) {
    /* A cursor's fields belong to a GROUP_FETCH_REQ: a plain fetch would drop them unseen. */
    RQ_ASSERT(m->cursor.size == 0);
    RQ_ASSERT(m->generation == 0);
    RQ_ASSERT(m->member_id == 0);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    proto_write_fetch_req(&w, m);
    return finish(&w);
}

/* A fetch answer up to its records. */
static void write_fetch_head(struct rq_writer *w, const struct proto_fetch_resp *m, uint32_t count) {
    RQ_ASSERT(count <= PROTO_RECORDS_MAX && m->log_start <= m->high_watermark);
    write_err(w, m->error);
    rq_write_varint(w, m->leader_hint);
    rq_write_varint(w, m->log_start);
    rq_write_varint(w, m->high_watermark);
    rq_write_varint(w, count);
}

size_t proto_encode_fetch_resp(uint8_t *buf, size_t cap, const struct proto_fetch_resp *m,
                               const struct proto_record_in *records) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_fetch_head(&w, m, m->records.count);
    for (uint32_t i = 0; i < m->records.count; i++) {
        RQ_ASSERT(records[i].offset < m->high_watermark);
        RQ_ASSERT(i == 0 || records[i].offset > records[i - 1].offset);
        rq_write_varint(&w, records[i].offset);
        write_record(&w, &records[i]);
    }
    return finish(&w);
}

void proto_fetch_builder_init(struct proto_fetch_builder *b, uint8_t *buf, size_t cap) {
    memset(b, 0, sizeof *b);
    b->buf = buf;
    b->cap = cap;
}

int proto_fetch_add(struct proto_fetch_builder *b, uint64_t offset, const uint8_t *record,
                    size_t size) {
    RQ_ASSERT(b->count == 0 || offset > b->last_offset);
    if (b->count == PROTO_RECORDS_MAX) return RQ_ERANGE;
    struct rq_writer w;
    rq_writer_init(&w, b->buf + b->len, b->cap - b->len);
    rq_write_varint(&w, offset);
    rq_write_bytes(&w, record, size);
    if (w.err) return RQ_ETOOBIG;
    b->len += w.len;
    b->count++;
    b->last_offset = offset;
    b->record_bytes += size;
    return 0;
}

size_t proto_encode_fetch_resp_raw(uint8_t *buf, size_t cap, const struct proto_fetch_resp *m,
                                   const struct proto_fetch_builder *b) {
    RQ_ASSERT(b->count == 0 || b->last_offset < m->high_watermark);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_fetch_head(&w, m, b->count);
    rq_write_bytes(&w, b->buf, b->len);
    return finish(&w);
}

size_t proto_encode_metadata_req(uint8_t *buf, size_t cap, const struct proto_bytes *topics,
                                 uint32_t count) {
    RQ_ASSERT(count <= PROTO_TOPICS_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_varint(&w, count);
    for (uint32_t i = 0; i < count; i++) write_topic(&w, topics[i]);
    return finish(&w);
}

static void write_partition(struct rq_writer *w, const struct proto_partition *p) {
    RQ_ASSERT(p->index < PROTO_PARTITIONS_MAX && p->replica_count <= PROTO_REPLICAS_MAX);
    rq_write_varint(w, p->index);
    rq_write_varint(w, p->leader);
    rq_write_varint(w, p->replica_count);
    for (uint32_t k = 0; k < p->replica_count; k++) rq_write_varint(w, p->replicas[k]);
}

size_t proto_encode_metadata_resp(uint8_t *buf, size_t cap, uint32_t controller,
                                  const struct proto_broker *brokers, uint32_t broker_count,
                                  const struct proto_topic *topics, uint32_t topic_count,
                                  const struct proto_partition *partitions) {
    return proto_encode_metadata_resp_version(buf, cap, PROTO_VERSION, controller, brokers,
                                              broker_count, topics, topic_count, partitions);
}

size_t proto_encode_metadata_resp_version(uint8_t *buf, size_t cap, uint8_t version,
                                          uint32_t controller, const struct proto_broker *brokers,
                                          uint32_t broker_count, const struct proto_topic *topics,
                                          uint32_t topic_count,
                                          const struct proto_partition *partitions) {
    RQ_ASSERT(version >= PROTO_VERSION_MIN && version <= PROTO_VERSION);
    RQ_ASSERT(broker_count <= PROTO_BROKERS_MAX && topic_count <= PROTO_TOPICS_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_varint(&w, controller);
    rq_write_varint(&w, broker_count);
    for (uint32_t i = 0; i < broker_count; i++) {
        RQ_ASSERT(brokers[i].id != 0 && brokers[i].address.size <= PROTO_TEXT_MAX);
        RQ_ASSERT((brokers[i].flags & ~PROTO_BROKER_FLAGS_ALL) == 0);
        rq_write_varint(&w, brokers[i].id);
        write_field(&w, brokers[i].address);
        if (version >= 2) rq_write_u8(&w, brokers[i].flags);
    }
    rq_write_varint(&w, topic_count);
    const struct proto_partition *p = partitions;
    for (uint32_t i = 0; i < topic_count; i++) {
        RQ_ASSERT(topics[i].partition_count <= PROTO_PARTITIONS_MAX);
        write_topic(&w, topics[i].name);
        write_err(&w, topics[i].error);
        rq_write_varint(&w, topics[i].partition_count);
        for (uint32_t k = 0; k < topics[i].partition_count; k++) write_partition(&w, p++);
    }
    return finish(&w);
}

size_t proto_encode_create_topic_req(uint8_t *buf, size_t cap,
                                     const struct proto_create_topic_req *m) {
    RQ_ASSERT(m->partitions >= 1 && m->partitions <= PROTO_PARTITIONS_MAX);
    RQ_ASSERT(m->replication >= 1 && m->replication <= PROTO_REPLICAS_MAX);
    RQ_ASSERT(m->max_message_bytes >= 1 && m->max_message_bytes <= PROTO_FRAME_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_topic(&w, m->name);
    rq_write_varint(&w, m->partitions);
    rq_write_varint(&w, m->replication);
    rq_write_varint(&w, m->retention_ms);
    rq_write_varint(&w, m->retention_bytes);
    rq_write_varint(&w, m->max_message_bytes);
    return finish(&w);
}

size_t proto_encode_delete_topic_req(uint8_t *buf, size_t cap,
                                     const struct proto_delete_topic_req *m) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_topic(&w, m->name);
    return finish(&w);
}

size_t proto_encode_status_resp(uint8_t *buf, size_t cap, const struct proto_status_resp *m) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_err(&w, m->error);
    rq_write_varint(&w, m->leader_hint);
    return finish(&w);
}

size_t proto_encode_decommission_req(uint8_t *buf, size_t cap,
                                     const struct proto_decommission_req *m) {
    RQ_ASSERT(m->broker != 0);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_varint(&w, m->broker);
    return finish(&w);
}

size_t proto_encode_init_producer_resp(uint8_t *buf, size_t cap,
                                       const struct proto_init_producer_resp *m) {
    RQ_ASSERT(m->error != 0 || m->producer_id != 0);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_err(&w, m->error);
    rq_write_varint(&w, m->producer_id);
    rq_write_varint(&w, m->leader_hint);
    return finish(&w);
}
