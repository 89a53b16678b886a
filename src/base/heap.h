/* A binary min-heap of (key, tiebreak, value), with a fixed capacity chosen at init.
 * Ordered by key, then tiebreak; the simulator uses (virtual time, sequence number), which makes
 * the order of simultaneous events total and therefore deterministic. */
#ifndef RQ_BASE_HEAP_H
#define RQ_BASE_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct rq_heap_entry {
    uint64_t key;
    uint64_t tiebreak;
    void *value;
};

struct rq_heap {
    struct rq_heap_entry *entries;  /* caller-provided array of `cap` entries */
    size_t count;
    size_t cap;
};

void rq_heap_init(struct rq_heap *h, struct rq_heap_entry *storage, size_t cap);
/* Returns 0, or RQ_ENOMEM when the heap is full (nothing is inserted). */
int rq_heap_push(struct rq_heap *h, uint64_t key, uint64_t tiebreak, void *value);
/* Removes the smallest entry into *out; returns 0, or RQ_ERANGE when empty. */
int rq_heap_pop(struct rq_heap *h, struct rq_heap_entry *out);
/* The smallest entry, or NULL when empty. */
const struct rq_heap_entry *rq_heap_peek(const struct rq_heap *h);

#endif
