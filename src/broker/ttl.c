/* ttl.c — per-message time to live; ttl.h gives the contract. */
#include "broker/ttl.h"

#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"

static int name_is(struct proto_bytes name, const char *s) {
    size_t n = strlen(s);
    return name.size == n && memcmp(name.data, s, n) == 0;
}

static int reserved(struct proto_bytes name) {
    size_t n = strlen(RQ_HEADER_PREFIX);
    return name.size >= n && memcmp(name.data, RQ_HEADER_PREFIX, n) == 0;
}

/* A decimal number of milliseconds in 1..PROTO_TTL_MS_MAX, or 0. */
static uint64_t parse_ms(struct proto_bytes v) {
    if (v.size == 0 || v.size > 20) return 0;
    uint64_t n = 0;
    for (uint32_t i = 0; i < v.size; i++) {
        if (v.data[i] < '0' || v.data[i] > '9') return 0;
        n = n * 10 + (uint64_t)(v.data[i] - '0');
        if (n > PROTO_TTL_MS_MAX) return 0;
    }
    return n;
}

int ttl_of(const struct proto_record *r, uint64_t *ttl_ms) {
    *ttl_ms = 0;
    size_t cursor = 0;
    struct proto_header h;
    int found = 0;
    while (proto_header_next(r, &cursor, &h)) {
        if (!reserved(h.name)) continue;
        if (!name_is(h.name, RQ_HEADER_TTL) || found) return RQ_EINVAL;
        *ttl_ms = parse_ms(h.value);
        if (*ttl_ms == 0) return RQ_EINVAL;
        found = 1;
    }
    return found;
}

int ttl_check_records(const struct proto_records *rs) {
    size_t cursor = 0;
    struct proto_record r;
    uint64_t ttl;
    while (proto_record_next(rs, &cursor, &r))
        if (r.header_count > 0 && ttl_of(&r, &ttl) < 0) return RQ_EINVAL;
    return 0;
}

int ttl_expired(const struct proto_record *r, uint64_t visible_ns, uint64_t now_ns) {
    uint64_t ttl = 0;
    if (r->header_count == 0 || ttl_of(r, &ttl) != 1) return 0;
    uint64_t ns = ttl * 1000000u;   /* <= 366 days: no overflow */
    return now_ns >= visible_ns && now_ns - visible_ns >= ns;
}

size_t ttl_placeholder(uint8_t buf[TTL_PLACEHOLDER_MAX], uint64_t timestamp) {
    struct rq_writer w;
    rq_writer_init(&w, buf, TTL_PLACEHOLDER_MAX);
    rq_write_varint(&w, timestamp);
    rq_write_varint(&w, 0);   /* no key */
    rq_write_varint(&w, 0);   /* no value */
    rq_write_varint(&w, 1);   /* one header */
    rq_write_varint(&w, strlen(RQ_HEADER_EXPIRED));
    rq_write_bytes(&w, RQ_HEADER_EXPIRED, strlen(RQ_HEADER_EXPIRED));
    rq_write_varint(&w, 0);   /* an empty value */
    RQ_ASSERT(w.err == 0);
    return w.len;
}

int ttl_is_placeholder(const struct proto_record *r) {
    if (r->header_count != 1) return 0;
    size_t cursor = 0;
    struct proto_header h;
    return proto_header_next(r, &cursor, &h) && name_is(h.name, RQ_HEADER_EXPIRED);
}
