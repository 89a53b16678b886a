/* The wire protocol (src/proto/): frames byte for byte, every truncation, every flipped byte, the
 * length bound checked before the rest arrives, unknown versions and types answered rather than
 * fatal; every payload type round-tripped, every truncation of every sample refused, and a table
 * of malformed payloads, each refused with the error that names it. Buffers handed to the decoders
 * are heap blocks of exactly their size, so AddressSanitizer catches any read past the end. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "tests/unit/suite_main.h"

static uint8_t *dup_exact(const void *src, size_t len) {
    uint8_t *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    if (len) memcpy(p, src, len);
    return p;
}

static struct proto_bytes str(const char *s) {
    return (struct proto_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* ---- frames ----------------------------------------------------------------------------------- */

START_TEST(frame_known_bytes) {
    uint8_t buf[64];
    size_t n = proto_frame_encode(buf, sizeof buf, PROTO_FETCH_REQ, 0x01020304, "ab", 2);
    ck_assert_uint_eq(n, 18);
    static const uint8_t head[] = {14, 0, 0, 0};
    ck_assert_mem_eq(buf, head, 4);
    static const uint8_t tail[] = {1, 5, 0, 0, 4, 3, 2, 1, 'a', 'b'};
    ck_assert_mem_eq(buf + 8, tail, sizeof tail);
    ck_assert_uint_eq(rq_get_u32(buf + 4), rq_crc32c(0, buf + 8, 10));
    struct proto_frame f;
    size_t size;
    uint8_t *exact = dup_exact(buf, n);
    ck_assert_int_eq(proto_frame_decode(exact, n, PROTO_FRAME_MAX, &f, &size), 0);
    ck_assert_uint_eq(size, n);
    ck_assert_uint_eq(f.type, PROTO_FETCH_REQ);
    ck_assert_uint_eq(f.correlation, 0x01020304);
    ck_assert_uint_eq(f.payload_size, 2);
    ck_assert_mem_eq(f.payload, "ab", 2);
    free(exact);
}
END_TEST

START_TEST(frame_empty_payload_and_two_in_a_row) {
    uint8_t buf[64];
    size_t a = proto_frame_encode(buf, sizeof buf, PROTO_INIT_PRODUCER_REQ, 7, NULL, 0);
    size_t b = proto_frame_encode(buf + a, sizeof buf - a, PROTO_RAFT, 8, "xyz", 3);
    ck_assert_uint_eq(a, PROTO_FRAME_HEADER);
    struct proto_frame f;
    size_t size;
    ck_assert_int_eq(proto_frame_decode(buf, a + b, PROTO_FRAME_MAX, &f, &size), 0);
    ck_assert_uint_eq(size, a);
    ck_assert_ptr_null(f.payload);
    ck_assert_int_eq(proto_frame_decode(buf + a, b, PROTO_FRAME_MAX, &f, &size), 0);
    ck_assert_uint_eq(f.correlation, 8);
    ck_assert_uint_eq(proto_frame_encode(buf, PROTO_FRAME_HEADER + 2, PROTO_RAFT, 1, "xyz", 3), 0);
}
END_TEST

START_TEST(frame_every_truncation_waits) {
    uint8_t buf[64];
    size_t n = proto_frame_encode(buf, sizeof buf, PROTO_RAFT, 9, "hello", 5);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *p = dup_exact(buf, cut);
        struct proto_frame f;
        size_t size = 99;
        ck_assert_int_eq(proto_frame_decode(p, cut, PROTO_FRAME_MAX, &f, &size), RQ_ETRUNC);
        ck_assert_uint_eq(size, cut < 4 ? 0 : n);
        free(p);
    }
}
END_TEST

/* Every single flipped byte is caught: the length one way or another, the rest by the CRC. */
START_TEST(frame_every_flipped_byte_is_refused) {
    uint8_t buf[64];
    size_t n = proto_frame_encode(buf, sizeof buf, PROTO_RAFT, 9, "hello", 5);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t copy[64];
            memcpy(copy, buf, n);
            copy[i] ^= (uint8_t)(1 << bit);
            struct proto_frame f;
            size_t size;
            int rc = proto_frame_decode(copy, n, 1024, &f, &size);
            ck_assert_msg(rc != 0 && rc != RQ_EVERSION && rc != RQ_ETYPE,
                          "byte %zu bit %d: %d", i, bit, rc);
        }
    }
}
END_TEST

/* Builds a frame whose header fields are given as is (with a correct CRC). */
static size_t raw_frame(uint8_t *buf, uint8_t version, uint8_t type, uint16_t flags) {
    rq_put_u32(buf, PROTO_FRAME_LENGTH_MIN);
    buf[8] = version;
    buf[9] = type;
    rq_put_u16(buf + 10, flags);
    rq_put_u32(buf + 12, 77);
    rq_put_u32(buf + 4, rq_crc32c(0, buf + 8, PROTO_FRAME_TAIL));
    return PROTO_FRAME_HEADER;
}

START_TEST(frame_header_fields_checked) {
    uint8_t buf[PROTO_FRAME_HEADER];
    struct proto_frame f;
    size_t size;
    raw_frame(buf, PROTO_VERSION + 1, PROTO_RAFT, 0);
    ck_assert_int_eq(proto_frame_decode(buf, sizeof buf, PROTO_FRAME_MAX, &f, &size), RQ_EVERSION);
    ck_assert_uint_eq(f.correlation, 77);   /* intact: the receiver can answer it */
    raw_frame(buf, PROTO_VERSION_MIN - 1, PROTO_RAFT, 0);
    ck_assert_int_eq(proto_frame_decode(buf, sizeof buf, PROTO_FRAME_MAX, &f, &size), RQ_EVERSION);
    ck_assert_uint_eq(size, PROTO_FRAME_HEADER);
    raw_frame(buf, 1, 0, 0);
    ck_assert_int_eq(proto_frame_decode(buf, sizeof buf, PROTO_FRAME_MAX, &f, &size), RQ_ETYPE);
    raw_frame(buf, 1, PROTO_TYPE_MAX + 1, 0);
    ck_assert_int_eq(proto_frame_decode(buf, sizeof buf, PROTO_FRAME_MAX, &f, &size), RQ_ETYPE);
    ck_assert_uint_eq(f.correlation, 77);
    raw_frame(buf, 1, PROTO_RAFT, 1);
    ck_assert_int_eq(proto_frame_decode(buf, sizeof buf, PROTO_FRAME_MAX, &f, &size), RQ_ECORRUPT);
    raw_frame(buf, 1, PROTO_RAFT, 0);
    rq_put_u32(buf, PROTO_FRAME_LENGTH_MIN - 1);
    ck_assert_int_eq(proto_frame_decode(buf, sizeof buf, PROTO_FRAME_MAX, &f, &size), RQ_ECORRUPT);
}
END_TEST

/* Every version from PROTO_VERSION_MIN to PROTO_VERSION is taken; frames are written at the
 * oldest unless asked otherwise (a version-1 node understands them). */
START_TEST(frame_versions_in_range_are_taken) {
    ck_assert_uint_eq(PROTO_VERSION_MIN, 1);
    ck_assert_uint_eq(PROTO_VERSION, 2);
    uint8_t buf[PROTO_FRAME_HEADER + 3];
    struct proto_frame f;
    size_t size;
    for (uint8_t v = PROTO_VERSION_MIN; v <= PROTO_VERSION; v++) {
        proto_frame_header_version(buf, v, PROTO_METADATA_REQ, 9, "abc", 3);
        memcpy(buf + PROTO_FRAME_HEADER, "abc", 3);
        ck_assert_int_eq(proto_frame_decode(buf, sizeof buf, PROTO_FRAME_MAX, &f, &size), 0);
        ck_assert_uint_eq(f.version, v);
        ck_assert_uint_eq(f.correlation, 9);
    }
    proto_frame_header(buf, PROTO_METADATA_REQ, 9, "abc", 3);
    ck_assert_uint_eq(buf[8], PROTO_VERSION_MIN);
}
END_TEST

/* A length beyond the bound is refused from its 4 bytes alone: nothing more is buffered. */
START_TEST(frame_length_bound_before_the_rest) {
    uint8_t buf[4];
    struct proto_frame f;
    size_t size;
    rq_put_u32(buf, 1024 - 4 + 1);
    ck_assert_int_eq(proto_frame_decode(buf, 4, 1024, &f, &size), RQ_ETOOBIG);
    rq_put_u32(buf, 1024 - 4);
    ck_assert_int_eq(proto_frame_decode(buf, 4, 1024, &f, &size), RQ_ETRUNC);
    ck_assert_uint_eq(size, 1024);
    rq_put_u32(buf, UINT32_MAX);
    ck_assert_int_eq(proto_frame_decode(buf, 4, PROTO_FRAME_MAX, &f, &size), RQ_ETOOBIG);
}
END_TEST

/* ---- payloads: samples of every type ------------------------------------------------------------ */

static const struct proto_header hdrs[] = {{{(const uint8_t *)"trace", 5}, {(const uint8_t *)"x1", 2}},
                                           {{(const uint8_t *)"empty", 5}, {NULL, 0}}};
static const struct proto_record_in recs[] = {
    {.offset = 10, .timestamp = 1700000000000000000ull, .key = {(const uint8_t *)"k1", 2},
     .value = {(const uint8_t *)"value one", 9}, .header_count = 2, .headers = hdrs},
    {.offset = 11, .timestamp = 0, .key = {NULL, 0}, .value = {NULL, 0}},
    {.offset = 99, .timestamp = UINT64_MAX, .key = {(const uint8_t *)"k3", 2},
     .value = {(const uint8_t *)"v", 1}},
};
enum { SAMPLES = 17 };

/* Encodes sample k into buf; returns its type and size. */
static size_t sample(int k, uint8_t *buf, size_t cap, uint8_t *type) {
    switch (k) {
    case 0: *type = PROTO_ERROR; return proto_encode_error(buf, cap, RQ_ETYPE, "unknown type 99");
    case 1: {
        struct proto_produce_req m = {.topic = str("orders"), .partition = 3, .acks = PROTO_ACKS_ALL,
                                      .producer_id = 42, .base_sequence = 1000,
                                      .records = {.count = 3}};
        *type = PROTO_PRODUCE_REQ;
        return proto_encode_produce_req(buf, cap, &m, recs);
    }
    case 2: {
        struct proto_produce_resp m = {.error = RQ_ENOTLEADER, .base_offset = 0, .leader_hint = 3};
        *type = PROTO_PRODUCE_RESP;
        return proto_encode_produce_resp(buf, cap, &m);
    }
    case 3: {
        struct proto_fetch_req m = {.topic = str("a.b_c-9"), .partition = 9999, .offset = 12345,
                                    .max_records = 100, .max_bytes = 1 << 20, .max_wait_ms = 500,
                                    .from_follower = 1};
        *type = PROTO_FETCH_REQ;
        return proto_encode_fetch_req(buf, cap, &m);
    }
    case 4: {
        struct proto_fetch_resp m = {.leader_hint = 2, .log_start = 5, .high_watermark = 100,
                                     .records = {.count = 3}};
        *type = PROTO_FETCH_RESP;
        return proto_encode_fetch_resp(buf, cap, &m, recs);
    }
    case 5: {
        struct proto_bytes topics[] = {str("orders"), str("payments")};
        *type = PROTO_METADATA_REQ;
        return proto_encode_metadata_req(buf, cap, topics, 2);
    }
    case 6: {
        struct proto_broker brokers[] = {{1, str("10.0.0.1:7000"), 0},
                                         {2, str("10.0.0.2:7000"), PROTO_BROKER_DECOMMISSIONED}};
        struct proto_topic topics[] = {{.name = str("orders"), .partition_count = 2},
                                       {.name = str("gone"), .error = RQ_ENOTOPIC}};
        struct proto_partition parts[] = {{0, 1, 2, {1, 2}}, {1, 0, 0, {0}}};
        *type = PROTO_METADATA_RESP;
        return proto_encode_metadata_resp(buf, cap, 1, brokers, 2, topics, 2, parts);
    }
    case 7: {
        struct proto_create_topic_req m = {.name = str("t"), .partitions = 12, .replication = 3,
                                           .retention_ms = 86400000, .retention_bytes = 0,
                                           .max_message_bytes = 1 << 20};
        *type = PROTO_CREATE_TOPIC_REQ;
        return proto_encode_create_topic_req(buf, cap, &m);
    }
    case 8: {
        struct proto_status_resp m = {.error = RQ_ETOPICEXISTS};
        *type = PROTO_CREATE_TOPIC_RESP;
        return proto_encode_status_resp(buf, cap, &m);
    }
    case 9: {
        struct proto_delete_topic_req m = {.name = str("orders")};
        *type = PROTO_DELETE_TOPIC_REQ;
        return proto_encode_delete_topic_req(buf, cap, &m);
    }
    case 10: {
        struct proto_status_resp m = {.error = 0, .leader_hint = 0};
        *type = PROTO_DELETE_TOPIC_RESP;
        return proto_encode_status_resp(buf, cap, &m);
    }
    case 11: *type = PROTO_INIT_PRODUCER_REQ; return 0;
    case 12: {
        struct proto_init_producer_resp m = {.producer_id = 1ull << 40, .leader_hint = 1};
        *type = PROTO_INIT_PRODUCER_RESP;
        return proto_encode_init_producer_resp(buf, cap, &m);
    }
    case 13:
        *type = PROTO_RAFT;
        memcpy(buf, "RQFB raft batch", 15);
        return 15;
    case 14:
        *type = PROTO_FORWARD;
        memcpy(buf, "\x02controller", 11);
        return 11;
    case 15: {
        struct proto_decommission_req m = {.broker = 300};
        *type = PROTO_DECOMMISSION_REQ;
        return proto_encode_decommission_req(buf, cap, &m);
    }
    case 16: {
        struct proto_status_resp m = {.error = RQ_ENOTLEADER, .leader_hint = 2};
        *type = PROTO_DECOMMISSION_RESP;
        return proto_encode_status_resp(buf, cap, &m);
    }
    }
    ck_abort_msg("no sample %d", k);
    return 0;
}

static void check_records(const struct proto_records *rs, int with_offsets) {
    size_t cur = 0;
    struct proto_record r;
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert(proto_record_next(rs, &cur, &r));
        ck_assert_uint_eq(r.offset, with_offsets ? recs[i].offset : 0);
        ck_assert_uint_eq(r.timestamp, recs[i].timestamp);
        ck_assert_uint_eq(r.key.size, recs[i].key.size);
        ck_assert_uint_eq(r.value.size, recs[i].value.size);
        if (r.value.size) ck_assert_mem_eq(r.value.data, recs[i].value.data, r.value.size);
        ck_assert_uint_eq(r.header_count, recs[i].header_count);
        size_t hc = 0;
        struct proto_header h;
        for (uint32_t k = 0; k < r.header_count; k++) {
            ck_assert(proto_header_next(&r, &hc, &h));
            ck_assert_uint_eq(h.name.size, hdrs[k].name.size);
            ck_assert_uint_eq(h.value.size, hdrs[k].value.size);
        }
        ck_assert(!proto_header_next(&r, &hc, &h));
    }
    ck_assert(!proto_record_next(rs, &cur, &r));
}

/* What each decoded sample must say (the parts a round trip could get wrong). */
static void check_sample(int k, const struct proto_msg *m) {
    switch (k) {
    case 0:
        ck_assert_int_eq(m->u.error.error, RQ_ETYPE);
        ck_assert_uint_eq(m->u.error.text.size, 15);
        break;
    case 1:
        ck_assert_uint_eq(m->u.produce_req.partition, 3);
        ck_assert_uint_eq(m->u.produce_req.producer_id, 42);
        ck_assert_uint_eq(m->u.produce_req.base_sequence, 1000);
        check_records(&m->u.produce_req.records, 0);
        break;
    case 2: ck_assert_int_eq(m->u.produce_resp.error, RQ_ENOTLEADER); break;
    case 3:
        ck_assert_uint_eq(m->u.fetch_req.partition, 9999);
        ck_assert_uint_eq(m->u.fetch_req.from_follower, 1);
        break;
    case 4:
        ck_assert_uint_eq(m->u.fetch_resp.high_watermark, 100);
        check_records(&m->u.fetch_resp.records, 1);
        break;
    case 5: {
        size_t cur = 0;
        struct proto_bytes name;
        ck_assert(proto_name_next(&m->u.metadata_req, &cur, &name));
        ck_assert(proto_name_next(&m->u.metadata_req, &cur, &name));
        ck_assert_mem_eq(name.data, "payments", 8);
        ck_assert(!proto_name_next(&m->u.metadata_req, &cur, &name));
        break;
    }
    case 6: {
        const struct proto_metadata_resp *md = &m->u.metadata_resp;
        size_t cur = 0, pc = 0;
        struct proto_broker b;
        while (proto_broker_next(md, &cur, &b)) ck_assert_uint_ge(b.id, 1);
        cur = 0;
        struct proto_topic t;
        struct proto_partition p;
        ck_assert(proto_topic_next(md, &cur, &t));
        ck_assert(proto_partition_next(&t, &pc, &p));
        ck_assert_uint_eq(p.replica_count, 2);
        ck_assert_uint_eq(p.replicas[1], 2);
        ck_assert(proto_partition_next(&t, &pc, &p));
        ck_assert(!proto_partition_next(&t, &pc, &p));
        ck_assert(proto_topic_next(md, &cur, &t));
        ck_assert_int_eq(t.error, RQ_ENOTOPIC);
        ck_assert(!proto_topic_next(md, &cur, &t));
        break;
    }
    case 7: ck_assert_uint_eq(m->u.create_topic_req.retention_ms, 86400000); break;
    case 8: ck_assert_int_eq(m->u.status_resp.error, RQ_ETOPICEXISTS); break;
    case 12: ck_assert_uint_eq(m->u.init_producer_resp.producer_id, 1ull << 40); break;
    case 13: ck_assert_uint_eq(m->u.raft.size, 15); break;
    case 14: ck_assert_mem_eq(m->u.forward.data, "\x02controller", 11); break;
    case 15: ck_assert_uint_eq(m->u.decommission_req.broker, 300); break;
    case 16: ck_assert_uint_eq(m->u.status_resp.leader_hint, 2); break;
    default: break;
    }
}

START_TEST(payload_round_trip) {
    uint8_t buf[1024];
    uint8_t type;
    size_t n = sample(_i, buf, sizeof buf, &type);
    ck_assert(n > 0 || type == PROTO_INIT_PRODUCER_REQ);
    uint8_t *exact = dup_exact(buf, n);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(type, n ? exact : NULL, n, &m), 0);
    ck_assert_uint_eq(m.type, type);
    check_sample(_i, &m);
    free(exact);
    /* Too small a buffer: nothing is claimed written. */
    if (n > 0 && type != PROTO_RAFT && type != PROTO_FORWARD) ck_assert_uint_eq(sample(_i, buf, n - 1, &type), 0);
}
END_TEST

/* Every proper prefix of a sample is refused (no payload type is a prefix of itself). */
START_TEST(payload_every_truncation_refused) {
    uint8_t buf[1024];
    uint8_t type;
    size_t n = sample(_i, buf, sizeof buf, &type);
    if (type == PROTO_RAFT || type == PROTO_FORWARD) return;   /* opaque here: checked by
                                                                  raft/msg.c, meta/controller.c */
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *p = dup_exact(buf, cut);
        struct proto_msg m;
        int rc = proto_decode(type, cut ? p : NULL, cut, &m);
        ck_assert_msg(rc != 0, "sample %d cut at %zu decoded", _i, cut);
        ck_assert_uint_eq(m.type, 0);   /* nothing is filled in */
        free(p);
    }
    /* And a trailing byte is refused too. */
    buf[n] = 0;
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(type, buf, n + 1, &m), RQ_ECORRUPT);
}
END_TEST

/* ---- malformed payloads, one broken field each ---------------------------------------------------- */

struct bad {
    const char *name;
    uint8_t type;
    uint8_t bytes[40];
    size_t len;
    int want;
};

#define T6 6, 'o', 'r', 'd', 'e', 'r', 's'   /* the topic "orders" */

static const struct bad bads[] = {
    {"valid fetch", PROTO_FETCH_REQ, {T6, 3, 5, 10, 100, 0, 0}, 13, 0},
    {"topic of 0 bytes", PROTO_FETCH_REQ, {0, 3, 5, 10, 100, 0, 0}, 7, RQ_ECORRUPT},
    {"topic with a space", PROTO_FETCH_REQ, {2, 'a', ' ', 3, 5, 10, 100, 0, 0}, 9, RQ_ECORRUPT},
    {"topic \"..\"", PROTO_FETCH_REQ, {2, '.', '.', 3, 5, 10, 100, 0, 0}, 9, RQ_ECORRUPT},
    {"topic over its maximum", PROTO_FETCH_REQ, {0xC9, 0x01}, 2, RQ_ETOOBIG},
    {"partition 10000", PROTO_FETCH_REQ, {T6, 0x90, 0x4E, 5, 10, 100, 0, 0}, 14, RQ_ETOOBIG},
    {"max_records 0", PROTO_FETCH_REQ, {T6, 3, 5, 0, 100, 0, 0}, 13, RQ_ECORRUPT},
    {"max_records 4097", PROTO_FETCH_REQ, {T6, 3, 5, 0x81, 0x20, 100, 0, 0}, 14, RQ_ETOOBIG},
    {"max_wait 60001 ms", PROTO_FETCH_REQ, {T6, 3, 5, 10, 100, 0xE1, 0xD4, 0x03, 0}, 15, RQ_ETOOBIG},
    {"from_follower 3", PROTO_FETCH_REQ, {T6, 3, 5, 10, 100, 0, 3}, 13, RQ_ECORRUPT},
    {"overlong varint", PROTO_FETCH_REQ,
     {T6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 18, RQ_ECORRUPT},
    {"produce with no record", PROTO_PRODUCE_REQ, {T6, 0, 2, 0, 0, 0}, 12, RQ_ECORRUPT},
    {"acks 3", PROTO_PRODUCE_REQ, {T6, 0, 3, 0, 0, 1, 0, 0, 0, 0}, 16, RQ_ECORRUPT},
    {"valid produce", PROTO_PRODUCE_REQ, {T6, 0, 2, 0, 0, 1, 0, 0, 0, 0}, 16, 0},
    {"record with 33 headers", PROTO_PRODUCE_REQ, {T6, 0, 2, 0, 0, 1, 0, 0, 0, 33}, 16, RQ_ETOOBIG},
    {"record value cut short", PROTO_PRODUCE_REQ, {T6, 0, 2, 0, 0, 1, 0, 0, 5, 'a'}, 16, RQ_ETRUNC},
    {"fetch answer offsets not increasing", PROTO_FETCH_RESP,
     {0, 0, 0, 50, 2, 7, 0, 0, 0, 0, 7, 0, 0, 0, 0}, 15, RQ_ECORRUPT},
    {"fetch answer offset at the high watermark", PROTO_FETCH_RESP,
     {0, 0, 0, 50, 1, 50, 0, 0, 0, 0}, 10, RQ_ECORRUPT},
    {"fetch answer log start past the high watermark", PROTO_FETCH_RESP, {0, 0, 9, 8, 0}, 5,
     RQ_ECORRUPT},
    {"valid fetch answer", PROTO_FETCH_RESP, {0, 0, 0, 50, 2, 7, 0, 0, 0, 0, 8, 0, 0, 0, 0}, 15, 0},
    {"broker id 0", PROTO_METADATA_RESP, {1, 1, 0, 0, 0}, 5, RQ_ECORRUPT},
    {"10 replicas", PROTO_METADATA_RESP, {0, 0, 1, T6, 0, 1, 0, 1, 10}, 16, RQ_ETOOBIG},
    {"create with 0 partitions", PROTO_CREATE_TOPIC_REQ, {T6, 0, 3, 0, 0, 1}, 12, RQ_ECORRUPT},
    {"create with replication 10", PROTO_CREATE_TOPIC_REQ, {T6, 1, 10, 0, 0, 1}, 12, RQ_ETOOBIG},
    {"producer id 0 without an error", PROTO_INIT_PRODUCER_RESP, {0, 0, 0}, 3, RQ_ECORRUPT},
    {"init producer request with a byte", PROTO_INIT_PRODUCER_REQ, {0}, 1, RQ_ECORRUPT},
    {"error text over 255 bytes", PROTO_ERROR, {16, 0x80, 0x02}, 3, RQ_ETOOBIG},
    {"unknown type 0", 0, {0}, 0, RQ_ETYPE},
    {"empty forward", PROTO_FORWARD, {0}, 0, RQ_ECORRUPT},
    {"unknown type PROTO_TYPE_MAX + 1", PROTO_TYPE_MAX + 1, {0}, 0, RQ_ETYPE},
};

START_TEST(malformed_payload_refused) {
    const struct bad *b = &bads[_i];
    uint8_t *p = dup_exact(b->bytes, b->len);
    struct proto_msg m;
    int rc = proto_decode(b->type, b->len ? p : NULL, b->len, &m);
    ck_assert_msg(rc == b->want, "%s: got %d (%s), want %d", b->name, rc, rq_strerror(rc), b->want);
    free(p);
}
END_TEST

/* METADATA_RESP's brokers carry flags from version 2 (decommissioned); version 1 is the old
 * layout, byte for byte, and has none. Each version decodes only its own layout. */
START_TEST(metadata_broker_flags_by_version) {
    struct proto_broker brokers[] = {{1, str("a:1"), 0},
                                     {2, str("b:2"), PROTO_BROKER_DECOMMISSIONED}};
    uint8_t v1[64], v2[64];
    size_t n1 = proto_encode_metadata_resp_version(v1, sizeof v1, 1, 1, brokers, 2, NULL, 0, NULL);
    size_t n2 = proto_encode_metadata_resp_version(v2, sizeof v2, 2, 1, brokers, 2, NULL, 0, NULL);
    const uint8_t want1[] = {1, 2, 1, 3, 'a', ':', '1', 2, 3, 'b', ':', '2', 0};
    const uint8_t want2[] = {1, 2, 1, 3, 'a', ':', '1', 0, 2, 3, 'b', ':', '2', 1, 0};
    ck_assert_uint_eq(n1, sizeof want1);
    ck_assert_mem_eq(v1, want1, n1);
    ck_assert_uint_eq(n2, sizeof want2);
    ck_assert_mem_eq(v2, want2, n2);
    ck_assert_uint_eq(proto_encode_metadata_resp(v1, sizeof v1, 1, brokers, 2, NULL, 0, NULL), n2);
    struct proto_msg m;
    struct proto_broker b;
    size_t cur = 0;
    ck_assert_int_eq(proto_decode_version(2, PROTO_METADATA_RESP, v2, n2, &m), 0);
    ck_assert_uint_eq(m.u.metadata_resp.version, 2);
    ck_assert(proto_broker_next(&m.u.metadata_resp, &cur, &b));
    ck_assert_uint_eq(b.flags, 0);
    ck_assert(proto_broker_next(&m.u.metadata_resp, &cur, &b));
    ck_assert_uint_eq(b.id, 2);
    ck_assert_uint_eq(b.flags, PROTO_BROKER_DECOMMISSIONED);
    ck_assert(!proto_broker_next(&m.u.metadata_resp, &cur, &b));
    ck_assert_int_eq(proto_decode_version(1, PROTO_METADATA_RESP, want1, sizeof want1, &m), 0);
    cur = 0;
    while (proto_broker_next(&m.u.metadata_resp, &cur, &b)) ck_assert_uint_eq(b.flags, 0);
    ck_assert_int_ne(proto_decode_version(1, PROTO_METADATA_RESP, want2, sizeof want2, &m), 0);
    ck_assert_int_ne(proto_decode_version(2, PROTO_METADATA_RESP, want1, sizeof want1, &m), 0);
    uint8_t bad[sizeof want2];
    memcpy(bad, want2, sizeof bad);
    bad[13] = 2;   /* an unknown flag */
    ck_assert_int_eq(proto_decode_version(2, PROTO_METADATA_RESP, bad, sizeof bad, &m),
                     RQ_ECORRUPT);
}
END_TEST

/* A produce request's records, kept as they came, decode on their own (what a partition stores). */
START_TEST(records_decode_alone) {
    uint8_t buf[1024];
    uint8_t type;
    size_t n = sample(1, buf, sizeof buf, &type);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(type, buf, n, &m), 0);
    const struct proto_records *rs = &m.u.produce_req.records;
    uint8_t *copy = dup_exact(rs->data, rs->size);
    struct proto_records again;
    ck_assert_int_eq(proto_records_decode(copy, rs->size, 3, 0, &again), 0);
    check_records(&again, 0);
    ck_assert_int_eq(proto_records_decode(copy, rs->size, 2, 0, &again), RQ_ECORRUPT);
    ck_assert_int_eq(proto_records_decode(copy, rs->size - 1, 3, 0, &again), RQ_ETRUNC);
    ck_assert_int_eq(proto_records_decode(copy, rs->size, 0, 0, &again), RQ_ETOOBIG);
    free(copy);
}
END_TEST

START_TEST(topic_names) {
    ck_assert(proto_topic_name_valid((const uint8_t *)"a", 1));
    ck_assert(proto_topic_name_valid((const uint8_t *)"...", 3));
    ck_assert(!proto_topic_name_valid((const uint8_t *)".", 1));
    ck_assert(!proto_topic_name_valid((const uint8_t *)"a/b", 3));
    ck_assert(!proto_topic_name_valid((const uint8_t *)"", 0));
    uint8_t longest[PROTO_TOPIC_NAME_MAX + 1];
    memset(longest, 'x', sizeof longest);
    ck_assert(proto_topic_name_valid(longest, PROTO_TOPIC_NAME_MAX));
    ck_assert(!proto_topic_name_valid(longest, PROTO_TOPIC_NAME_MAX + 1));
    ck_assert_str_eq(proto_type_name(PROTO_FETCH_RESP), "fetch-resp");
    ck_assert_str_eq(proto_type_name(0), "unknown");
    ck_assert_str_eq(proto_type_name(PROTO_TYPE_MAX + 1), "unknown");
}
END_TEST

/* A fetch answer built from raw stored records decodes to the same records at their offsets;
 * a record that does not fit is refused whole. */
START_TEST(fetch_answer_from_raw_records) {
    struct proto_record_in in[2] = {
        {.timestamp = 5, .key = {(const uint8_t *)"k", 1}, .value = {(const uint8_t *)"one", 3}},
        {.timestamp = 6, .value = {(const uint8_t *)"second", 6}}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = 2,
                                    .records = {.count = 2}};
    uint8_t produce[256], scratch[64], out[256];
    size_t n = proto_encode_produce_req(produce, sizeof produce, &req, in);
    struct proto_msg pm;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, produce, n, &pm), 0);
    struct proto_fetch_builder b;
    proto_fetch_builder_init(&b, scratch, sizeof scratch);
    size_t cur = 0, before = 0;
    struct proto_record r;
    uint64_t offset = 40;
    while (proto_record_next(&pm.u.produce_req.records, &cur, &r)) {
        ck_assert_int_eq(proto_fetch_add(&b, offset++, pm.u.produce_req.records.data + before,
                                         cur - before), 0);
        before = cur;
    }
    struct proto_fetch_builder tiny;
    uint8_t small[4];
    proto_fetch_builder_init(&tiny, small, sizeof small);
    ck_assert_int_eq(proto_fetch_add(&tiny, 1, pm.u.produce_req.records.data, 8), RQ_ETOOBIG);
    ck_assert_uint_eq(tiny.count, 0);
    struct proto_fetch_resp resp = {.log_start = 0, .high_watermark = 42};
    size_t m = proto_encode_fetch_resp_raw(out, sizeof out, &resp, &b);
    ck_assert_uint_gt(m, 0);
    struct proto_msg fm;
    ck_assert_int_eq(proto_decode(PROTO_FETCH_RESP, out, m, &fm), 0);
    ck_assert_uint_eq(fm.u.fetch_resp.records.count, 2);
    cur = 0;
    ck_assert(proto_record_next(&fm.u.fetch_resp.records, &cur, &r));
    ck_assert_uint_eq(r.offset, 40);
    ck_assert_mem_eq(r.value.data, "one", 3);
    ck_assert(proto_record_next(&fm.u.fetch_resp.records, &cur, &r));
    ck_assert_uint_eq(r.offset, 41);
    ck_assert_uint_eq(r.timestamp, 6);
    ck_assert_mem_eq(r.value.data, "second", 6);
    ck_assert_uint_eq(proto_encode_fetch_resp_raw(out, m - 1, &resp, &b), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("frame");
    tcase_add_test(tc, frame_known_bytes);
    tcase_add_test(tc, frame_empty_payload_and_two_in_a_row);
    tcase_add_test(tc, frame_every_truncation_waits);
    tcase_add_test(tc, frame_every_flipped_byte_is_refused);
    tcase_add_test(tc, frame_header_fields_checked);
    tcase_add_test(tc, frame_length_bound_before_the_rest);
    tcase_add_test(tc, frame_versions_in_range_are_taken);
    tcase_add_test(tc, metadata_broker_flags_by_version);
    suite_add_tcase(s, tc);
    tc = tcase_create("payload");
    tcase_add_loop_test(tc, payload_round_trip, 0, SAMPLES);
    tcase_add_loop_test(tc, payload_every_truncation_refused, 0, SAMPLES);
    tcase_add_loop_test(tc, malformed_payload_refused, 0, (int)(sizeof bads / sizeof bads[0]));
    tcase_add_test(tc, topic_names);
    tcase_add_test(tc, records_decode_alone);
    tcase_add_test(tc, fetch_answer_from_raw_records);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
