/* Little-endian fixed-width and varint codecs: every integer on disk or on the wire goes through
 * here. Writers never write past their capacity; readers never read past their end and report
 * truncation (RQ_ETRUNC) or a malformed varint (RQ_ECORRUPT: more than 10 bytes, or a 10th byte
 * above 1) instead. Non-minimal varints ("80 00" for 0) are accepted; formats that need canonical
 * encodings must check rq_varint_size themselves. Both are sticky: after the
 * first error every later call fails the same way, so a decoder can read a whole structure and
 * check the error once. */
#ifndef RQ_BASE_CODEC_H
#define RQ_BASE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { RQ_VARINT_MAX_SIZE = 10 };

static inline void rq_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void rq_put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void rq_put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t rq_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rq_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rq_get_u64(const uint8_t *p) {
    return (uint64_t)rq_get_u32(p) | (uint64_t)rq_get_u32(p + 4) << 32;
}

/* Encodes v as an unsigned LEB128 varint into p (room for RQ_VARINT_MAX_SIZE); returns its size. */
size_t rq_varint_put(uint8_t *p, uint64_t v);
size_t rq_varint_size(uint64_t v);

struct rq_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;  /* 0, or RQ_ETOOBIG once a write did not fit (nothing of it was written) */
};

void rq_writer_init(struct rq_writer *w, void *buf, size_t cap);
void rq_write_u8(struct rq_writer *w, uint8_t v);
void rq_write_u16(struct rq_writer *w, uint16_t v);
void rq_write_u32(struct rq_writer *w, uint32_t v);
void rq_write_u64(struct rq_writer *w, uint64_t v);
void rq_write_varint(struct rq_writer *w, uint64_t v);
void rq_write_bytes(struct rq_writer *w, const void *data, size_t len);

struct rq_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int err;  /* 0, RQ_ETRUNC (ran past the end) or RQ_ECORRUPT (overlong varint) */
};

void rq_reader_init(struct rq_reader *r, const void *buf, size_t len);
size_t rq_reader_remaining(const struct rq_reader *r);
/* Each returns 0 and stores the value, or returns the (sticky) error and stores 0. */
int rq_read_u8(struct rq_reader *r, uint8_t *v);
int rq_read_u16(struct rq_reader *r, uint16_t *v);
int rq_read_u32(struct rq_reader *r, uint32_t *v);
int rq_read_u64(struct rq_reader *r, uint64_t *v);
int rq_read_varint(struct rq_reader *r, uint64_t *v);
/* A varint in its minimal encoding, returned (0 on any error): a longer encoding of the same
 * value sets RQ_ECORRUPT, so a format read with it has exactly one encoding per value. */
uint64_t rq_read_varint_min(struct rq_reader *r);
/* Points *data at len bytes inside the reader's buffer (no copy) and advances past them. */
int rq_read_bytes(struct rq_reader *r, size_t len, const uint8_t **data);

#endif
