/* The frame codec; see frame.h. */
#include "proto/frame.h"

#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "proto/msg.h"

_Static_assert(PROTO_FRAME_HEADER == 8 + PROTO_FRAME_TAIL, "length and CRC, then the tail");

/* The CRC covers the tail of the header and the payload. */
static uint32_t frame_crc(const uint8_t *tail, const void *payload, uint32_t payload_size) {
    uint32_t crc = rq_crc32c(0, tail, PROTO_FRAME_TAIL);
    return payload_size ? rq_crc32c(crc, payload, payload_size) : crc;
}

void proto_frame_header(uint8_t *hdr, uint8_t type, uint32_t correlation, const void *payload,
                        uint32_t payload_size) {
    proto_frame_header_version(hdr, PROTO_VERSION_MIN, type, correlation, payload, payload_size);
}

void proto_frame_header_version(uint8_t *hdr, uint8_t version, uint8_t type, uint32_t correlation,
                                const void *payload, uint32_t payload_size) {
    RQ_ASSERT(version >= PROTO_VERSION_MIN);
    RQ_ASSERT(version <= PROTO_VERSION);
    RQ_ASSERT(type != 0);
    RQ_ASSERT(payload_size <= PROTO_FRAME_MAX - PROTO_FRAME_HEADER);
    RQ_ASSERT(payload_size == 0 || payload != NULL);
    rq_put_u32(hdr, PROTO_FRAME_LENGTH_MIN + payload_size);
    uint8_t *tail = hdr + 8;
    tail[0] = version;
    tail[1] = type;
    rq_put_u16(tail + 2, 0);
    rq_put_u32(tail + 4, correlation);
    rq_put_u32(hdr + 4, frame_crc(tail, payload, payload_size));
}

size_t proto_frame_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t correlation,
                          const void *payload, uint32_t payload_size) {
    if (cap < PROTO_FRAME_HEADER || cap - PROTO_FRAME_HEADER < payload_size) return 0;
    proto_frame_header(buf, type, correlation, payload, payload_size);
    if (payload_size) memmove(buf + PROTO_FRAME_HEADER, payload, payload_size);
    return PROTO_FRAME_HEADER + (size_t)payload_size;
}

int proto_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, struct proto_frame *f,
                       size_t *frame_size) {
    RQ_ASSERT(max_frame >= PROTO_FRAME_HEADER && max_frame <= PROTO_FRAME_MAX);
    memset(f, 0, sizeof *f);
    *frame_size = 0;
    if (len < 4) return RQ_ETRUNC;
    uint32_t length = rq_get_u32(buf);
    if (length > max_frame - 4) return RQ_ETOOBIG;   /* before waiting for the rest of it */
    if (length < PROTO_FRAME_LENGTH_MIN) return RQ_ECORRUPT;
    *frame_size = 4 + (size_t)length;
    if (len < *frame_size) return RQ_ETRUNC;
    const uint8_t *tail = buf + 8;
    uint32_t payload_size = length - PROTO_FRAME_LENGTH_MIN;
    const uint8_t *payload = buf + PROTO_FRAME_HEADER;
    if (rq_get_u32(buf + 4) != frame_crc(tail, payload, payload_size)) return RQ_ECORRUPT;
    f->version = tail[0];
    f->type = tail[1];
    f->flags = rq_get_u16(tail + 2);
    f->correlation = rq_get_u32(tail + 4);
    f->payload = payload_size ? payload : NULL;
    f->payload_size = payload_size;
    if (f->flags != 0) return RQ_ECORRUPT;
    if (f->version < PROTO_VERSION_MIN || f->version > PROTO_VERSION) return RQ_EVERSION;
    if (f->type < 1 || f->type > PROTO_TYPE_MAX) return RQ_ETYPE;
    return 0;
}
