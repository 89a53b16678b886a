/* codec_internal.h — what the payload codecs (proto/msg.c, proto/group_msg.c) share, and nothing
 * outside src/proto/ includes: the strict readers and the writers of the field kinds msg.h
 * describes, and the entry points each file offers the other.
 *
 * The readers work through base's rq_reader, whose error is sticky: a structural problem found
 * here (a count over its maximum, a bad flag byte, an invalid name) is recorded in the same field,
 * so a decoder reads its whole message and checks the error once. Each returns 0 (or an empty
 * field) once the reader has failed. */
#ifndef RQ_PROTO_CODEC_INTERNAL_H
#define RQ_PROTO_CODEC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "proto/msg.h"

/* ---- reading ----------------------------------------------------------------------------------
 */

/* Where pos is in r's buffer (NULL for an empty payload, which has no buffer). */
static inline const uint8_t *at(const struct rq_reader *r, size_t pos) {
    return r->buf ? r->buf + pos : NULL;
}

/* Records a structural error (sticky, like the reader's own). */
static inline void bad(struct rq_reader *r, int err) {
    if (r->err == 0) r->err = err;
}

/* A varint of at most max (above: RQ_ETOOBIG). */
static inline uint64_t read_num(struct rq_reader *r, uint64_t max) {
    uint64_t v = 0;
    if (rq_read_varint(r, &v) == 0 && v > max) bad(r, RQ_ETOOBIG);
    return r->err ? 0 : v;
}

/* A u8 of at most max (above: RQ_ECORRUPT). */
static inline uint8_t read_flag(struct rq_reader *r, uint8_t max) {
    uint8_t v = 0;
    if (rq_read_u8(r, &v) == 0 && v > max) bad(r, RQ_ECORRUPT);
    return r->err ? 0 : v;
}

static inline int read_err(struct rq_reader *r) {
    uint8_t v = 0;
    rq_read_u8(r, &v);
    return -(int)v;
}

/* A length-prefixed field of at most max bytes (above: RQ_ETOOBIG). */
static inline struct proto_bytes read_field(struct rq_reader *r, uint64_t max) {
    struct proto_bytes b = {NULL, 0};
    uint64_t size = read_num(r, max);
    if (size > 0 && rq_read_bytes(r, (size_t)size, &b.data) == 0) b.size = (uint32_t)size;
    return b;
}

static inline struct proto_bytes read_topic(struct rq_reader *r) {
    struct proto_bytes b = read_field(r, PROTO_TOPIC_NAME_MAX);
    if (r->err == 0 && !proto_topic_name_valid(b.data, b.size)) bad(r, RQ_ECORRUPT);
    return b;
}

/* A status answer (CREATE_TOPIC_RESP, ..., LEAVE_GROUP_RESP). */
static inline void read_status_resp(struct rq_reader *r, struct proto_status_resp *m) {
    m->error = read_err(r);
    m->leader_hint = (uint32_t)read_num(r, UINT32_MAX);
}

/* A reader over data[0..size) at cursor, for an iterator over a decoded (hence valid) list. */
static inline void iter_open(struct rq_reader *r, const uint8_t *data, size_t size, size_t cursor) {
    RQ_ASSERT(cursor <= size);
    rq_reader_init(r, data, size);
    r->pos = cursor;
}

/* ---- writing ----------------------------------------------------------------------------------
 */

static inline void write_err(struct rq_writer *w, int error) {
    RQ_ASSERT(error <= 0);
    RQ_ASSERT(error >= -255);
    rq_write_u8(w, (uint8_t)-error);
}

static inline void write_field(struct rq_writer *w, struct proto_bytes b) {
    RQ_ASSERT(b.size == 0 || b.data != NULL);
    rq_write_varint(w, b.size);
    rq_write_bytes(w, b.data, b.size);
}

static inline void write_topic(struct rq_writer *w, struct proto_bytes name) {
    RQ_ASSERT(proto_topic_name_valid(name.data, name.size));
    write_field(w, name);
}

/* The size written, or 0 when it did not fit. */
static inline size_t finish(const struct rq_writer *w) { return w->err ? 0 : w->len; }

/* ---- between msg.c and group_msg.c ------------------------------------------------------------
 */

/* msg.c: a FETCH_REQ's fields (a GROUP_FETCH_REQ begins with them). */
void proto_read_fetch_req(struct rq_reader *r, struct proto_fetch_req *m);
void proto_write_fetch_req(struct rq_writer *w, const struct proto_fetch_req *m);

/* group_msg.c: the body of a consumer-group message, type PROTO_JOIN_GROUP_REQ ..
 * PROTO_DESCRIBE_GROUP_RESP (any other: RQ_ETYPE), into out's union; errors recorded in r. */
void proto_group_decode_body(struct rq_reader *r, uint8_t type, struct proto_msg *out);

#endif
