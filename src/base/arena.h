/* Byte slices and a bump arena over a caller-provided buffer.
 * The arena never grows: an allocation that does not fit returns NULL, so every use has a bound.
 * Memory is released all at once with rq_arena_reset(). */
#ifndef RQ_BASE_ARENA_H
#define RQ_BASE_ARENA_H

#include <stddef.h>
#include <stdint.h>

struct rq_slice {
    const uint8_t *ptr;
    size_t len;
};

static inline struct rq_slice rq_slice_make(const void *ptr, size_t len) {
    struct rq_slice s = {(const uint8_t *)ptr, len};
    return s;
}
int rq_slice_equal(struct rq_slice a, struct rq_slice b);

struct rq_arena {
    uint8_t *buf;
    size_t cap;
    size_t used;
};

void rq_arena_init(struct rq_arena *a, void *buf, size_t cap);
/* align is a power of two <= 64. Returns NULL (and allocates nothing) when it does not fit. */
void *rq_arena_alloc(struct rq_arena *a, size_t size, size_t align);
/* Copies the slice into the arena; returns a slice with ptr NULL when it does not fit. */
struct rq_slice rq_arena_copy(struct rq_arena *a, struct rq_slice s);
void rq_arena_reset(struct rq_arena *a);

#endif
