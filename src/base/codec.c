#include "base/codec.h"

#include "base/assert.h"
#include "base/errors.h"

size_t rq_varint_put(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    RQ_ASSERT(n <= RQ_VARINT_MAX_SIZE);
    return n;
}

size_t rq_varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void rq_writer_init(struct rq_writer *w, void *buf, size_t cap) {
    RQ_ASSERT(buf != NULL || cap == 0);
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
}

static uint8_t *writer_claim(struct rq_writer *w, size_t n) {
    if (w->err) return NULL;
    if (n > w->cap - w->len) {
        w->err = RQ_ETOOBIG;
        return NULL;
    }
    uint8_t *p = w->buf ? w->buf + w->len : NULL;  /* NULL + 0 is undefined in C11 */
    w->len += n;
    return p;
}

void rq_write_u8(struct rq_writer *w, uint8_t v) {
    uint8_t *p = writer_claim(w, 1);
    if (p) p[0] = v;
}
void rq_write_u16(struct rq_writer *w, uint16_t v) {
    uint8_t *p = writer_claim(w, 2);
    if (p) rq_put_u16(p, v);
}
void rq_write_u32(struct rq_writer *w, uint32_t v) {
    uint8_t *p = writer_claim(w, 4);
    if (p) rq_put_u32(p, v);
}
void rq_write_u64(struct rq_writer *w, uint64_t v) {
    uint8_t *p = writer_claim(w, 8);
    if (p) rq_put_u64(p, v);
}
void rq_write_varint(struct rq_writer *w, uint64_t v) {
    uint8_t *p = writer_claim(w, rq_varint_size(v));
    if (p) rq_varint_put(p, v);
}
void rq_write_bytes(struct rq_writer *w, const void *data, size_t len) {
    uint8_t *p = writer_claim(w, len);
    if (p && len) memcpy(p, data, len);
}

void rq_reader_init(struct rq_reader *r, const void *buf, size_t len) {
    RQ_ASSERT(buf != NULL || len == 0);
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    r->err = 0;
}

size_t rq_reader_remaining(const struct rq_reader *r) { return r->err ? 0 : r->len - r->pos; }

static const uint8_t *reader_take(struct rq_reader *r, size_t n) {
    if (r->err) return NULL;
    if (n > r->len - r->pos) {
        r->err = RQ_ETRUNC;
        return NULL;
    }
    const uint8_t *p = r->buf ? r->buf + r->pos : NULL;  /* NULL + 0 is undefined in C11 */
    r->pos += n;
    return p;
}

int rq_read_u8(struct rq_reader *r, uint8_t *v) {
    const uint8_t *p = reader_take(r, 1);
    *v = p ? p[0] : 0;
    return r->err;
}
int rq_read_u16(struct rq_reader *r, uint16_t *v) {
    const uint8_t *p = reader_take(r, 2);
    *v = p ? rq_get_u16(p) : 0;
    return r->err;
}
int rq_read_u32(struct rq_reader *r, uint32_t *v) {
    const uint8_t *p = reader_take(r, 4);
    *v = p ? rq_get_u32(p) : 0;
    return r->err;
}
int rq_read_u64(struct rq_reader *r, uint64_t *v) {
    const uint8_t *p = reader_take(r, 8);
    *v = p ? rq_get_u64(p) : 0;
    return r->err;
}

uint64_t rq_read_varint_min(struct rq_reader *r) {
    size_t start = r->pos;
    uint64_t v = 0;
    if (rq_read_varint(r, &v) != 0) return 0;
    if (r->pos - start != rq_varint_size(v)) {
        r->err = RQ_ECORRUPT;
        return 0;
    }
    return v;
}

int rq_read_varint(struct rq_reader *r, uint64_t *v) {
    *v = 0;
    uint64_t value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        const uint8_t *p = reader_take(r, 1);
        if (!p) return r->err;
        uint64_t bits = *p & 0x7Fu;
        /* The tenth byte may carry only the top bit of a 64-bit value. */
        if (shift == 63 && (*p & 0xFEu) != 0) {
            r->err = RQ_ECORRUPT;
            return r->err;
        }
        value |= bits << shift;
        if ((*p & 0x80u) == 0) {
            *v = value;
            return 0;
        }
    }
    r->err = RQ_ECORRUPT;
    return r->err;
}

int rq_read_bytes(struct rq_reader *r, size_t len, const uint8_t **data) {
    const uint8_t *p = reader_take(r, len);
    *data = p;
    return r->err;
}
