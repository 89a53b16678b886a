#include "base/arena.h"

#include <string.h>

#include "base/assert.h"

int rq_slice_equal(struct rq_slice a, struct rq_slice b) {
    if (a.len != b.len) return 0;
    return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
}

void rq_arena_init(struct rq_arena *a, void *buf, size_t cap) {
    RQ_ASSERT(buf != NULL || cap == 0);
    a->buf = buf;
    a->cap = cap;
    a->used = 0;
}

void *rq_arena_alloc(struct rq_arena *a, size_t size, size_t align) {
    RQ_ASSERT(align > 0 && align <= 64);
    RQ_ASSERT((align & (align - 1)) == 0);
    uintptr_t base = (uintptr_t)a->buf;
    uintptr_t at = (base + a->used + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t offset = (size_t)(at - base);
    if (offset > a->cap || size > a->cap - offset) return NULL;
    a->used = offset + size;
    return a->buf ? a->buf + offset : NULL;  /* NULL + 0 is undefined in C11 */
}

struct rq_slice rq_arena_copy(struct rq_arena *a, struct rq_slice s) {
    uint8_t *p = rq_arena_alloc(a, s.len ? s.len : 1, 1);
    if (p == NULL) return rq_slice_make(NULL, 0);
    if (s.len) memcpy(p, s.ptr, s.len);
    return rq_slice_make(p, s.len);
}

void rq_arena_reset(struct rq_arena *a) { a->used = 0; }
