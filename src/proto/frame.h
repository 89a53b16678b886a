/* frame.h — the frame every raftq connection carries, node to node and client to broker
 * (DESIGN.md: `proto` owns the frame; docs/protocol.md describes every field).
 *
 * A frame, all integers little-endian:
 *     u32 length       bytes after this field: 12 + payload size (PROTO_FRAME_LENGTH_MIN..)
 *     u32 crc          CRC32C (Castagnoli) of every byte after this field
 *     u8  version      PROTO_VERSION_MIN..PROTO_VERSION (1..2; see below)
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
 * with an ERROR frame naming what it did not understand.
 *
 * Versions: a receiver takes every version from PROTO_VERSION_MIN to PROTO_VERSION. A frame is
 * written at PROTO_VERSION_MIN (1), which every node speaks, unless its payload's layout depends on
 * the version: today only METADATA_RESP does (version 2 adds each broker's flags, proto/msg.h).
 * A client asks METADATA_REQ at the newest version it speaks and the broker answers at the
 * request's version, so a version-1 client keeps working with a version-2 broker and a version-2
 * client with a version-1 broker (answered RQ_EVERSION, it asks again at version 1). */
#ifndef RQ_PROTO_FRAME_H
#define RQ_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    PROTO_VERSION = 2,                   /* the newest version spoken */
    PROTO_VERSION_MIN = 1,               /* the oldest version taken, and the one written */
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
 * (PROTO_FRAME_HEADER bytes), at PROTO_VERSION_MIN; the payload itself follows it on the wire.
 * Asserts that the frame fits PROTO_FRAME_MAX and that type is not 0. */
void proto_frame_header(uint8_t *hdr, uint8_t type, uint32_t correlation, const void *payload,
                        uint32_t payload_size);
/* The same at a given version (PROTO_VERSION_MIN..PROTO_VERSION, asserted): the metadata pair. */
void proto_frame_header_version(uint8_t *hdr, uint8_t version, uint8_t type, uint32_t correlation,
                                const void *payload, uint32_t payload_size);

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
 *   RQ_EVERSION  an intact frame of a version outside PROTO_VERSION_MIN..PROTO_VERSION,
 *   RQ_ETYPE     one of an unknown type: *f has its version, type and correlation and
 *                *frame_size is set, so the receiver can answer with an ERROR frame and go on
 *                with the next frame. */
int proto_frame_decode(const uint8_t *buf, size_t len, size_t max_frame, struct proto_frame *f,
                       size_t *frame_size);

#endif
