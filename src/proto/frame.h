/* frame.h — the frame every raftq connection carries, node to node and client to broker
 * (DESIGN.md: `proto` owns the frame; docs/protocol.md describes every field).
 *
 * A frame, all integers little-endian:
 *     u32 length       bytes after this field: 12 + payload size (PROTO_FRAME_LENGTH_MIN..)
 *     u32 crc          CRC32C (Castagnoli) of every byte after this field
 *     u8  version      PROTO_VERSION (1)
 *     u8  type         enum proto_type (proto/msg.h)
 *     u16 flags        0 (reserved: a frame with any bit set is refused)
 *     u32 correlation  chosen by the sender of a request, echoed by its answer
 *     payload          length - PROTO_FRAME_TAIL bytes, laid out by type (proto/msg.h)
 *
 * A frame of length L occupies 4 + L bytes. Receivers bound L by their own maximum (a broker's
 * frame limit, at most PROTO_FRAME_MAX) before they read the rest, so a peer can never make them
 * buffer more. Decoding checks, in this order: the length against the bounds, that all of it has
 * arrived, the CRC, the flags, then the version and type; a frame that fails the version or type
 * check is intact (its CRC matched), so its correlation id is reported and the receiver can answer
 * with an ERROR frame naming what it did not understand. */
#ifndef RQ_PROTO_FRAME_H
#define RQ_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    PROTO_VERSION = 1,
    PROTO_FRAME_HEADER = 16,             /* length, crc, version, type, flags, correlation */
    PROTO_FRAME_TAIL = 8,                /* the header after the length and CRC fields */
    PROTO_FRAME_LENGTH_MIN = PROTO_FRAME_HEADER - 4,   /* an empty payload's length field */
    PROTO_FRAME_MAX = 8u << 20,          /* the largest frame any node accepts (4 + length) */
};

struct proto_frame {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint32_t correlation;
    const uint8_t *payload;              /* inside the decoded buffer; NULL when empty */
    uint32_t payload_size;
};

/* Writes the header of a frame carrying payload (payload_size bytes) into hdr
 * (PROTO_FRAME_HEADER bytes); the payload itself follows it on the wire. Asserts that the frame
 * fits PROTO_FRAME_MAX and that type is not 0. */
void proto_frame_header(uint8_t *hdr, uint8_t type, uint32_t correlation, const void *payload,
                        uint32_t payload_size);

/* Encodes a whole frame into buf[0..cap). Returns its size, or 0 when it does not fit. */
size_t proto_frame_encode(uint8_t *buf, size_t cap, uint8_t type, uint32_t correlation,
                          const void *payload, uint32_t payload_size);

/* Decodes the frame at the start of buf[0..len), frames no longer than max_frame bytes (4 +
 * length; at most PROTO_FRAME_MAX). Returns:
 *   0            *f filled, *frame_size = the bytes it occupies (more may follow in buf);
 *   RQ_ETRUNC    not all of it is here yet: *frame_size = the bytes the whole frame needs, or 0
 *                while even the length is incomplete;
 *   RQ_ETOOBIG   its length exceeds max_frame (the connection cannot continue: close it);
 *   RQ_ECORRUPT  a length below PROTO_FRAME_LENGTH_MIN, a CRC mismatch, or flags set (close it);
 *   RQ_EVERSION  an intact frame of another version, RQ_ETYPE one of an unknown type: *f has its
 *                version, type and correlation and *frame_size is set, so the receiver can
 *                answer with an ERROR frame and go on with the next frame. */
int proto_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, struct proto_frame *f,
                       size_t *frame_size);

#endif
