/* bytes.h — a borrowed run of bytes, the type of every string and byte field the protocol
 * decodes (proto/msg.h, proto/group_msg.h): it points into the frame it came in. */
#ifndef RQ_PROTO_BYTES_H
#define RQ_PROTO_BYTES_H

#include <stdint.h>

struct proto_bytes {
    const uint8_t *data;          /* NULL when size is 0 */
    uint32_t size;
};

#endif
