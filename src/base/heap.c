#include "base/heap.h"

#include "base/assert.h"
#include "base/errors.h"

static int entry_less(const struct rq_heap_entry *a, const struct rq_heap_entry *b) {
    if (a->key != b->key) return a->key < b->key;
    return a->tiebreak < b->tiebreak;
}

void rq_heap_init(struct rq_heap *h, struct rq_heap_entry *storage, size_t cap) {
    RQ_ASSERT(storage != NULL);
    RQ_ASSERT(cap > 0);
    h->entries = storage;
    h->count = 0;
    h->cap = cap;
}

int rq_heap_push(struct rq_heap *h, uint64_t key, uint64_t tiebreak, void *value) {
    if (h->count == h->cap) return RQ_ENOMEM;
    struct rq_heap_entry e = {key, tiebreak, value};
    size_t i = h->count++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_less(&e, &h->entries[parent])) break;
        h->entries[i] = h->entries[parent];
        i = parent;
    }
    h->entries[i] = e;
    return 0;
}

int rq_heap_pop(struct rq_heap *h, struct rq_heap_entry *out) {
    if (h->count == 0) return RQ_ERANGE;
    *out = h->entries[0];
    struct rq_heap_entry last = h->entries[--h->count];
    size_t i = 0;
    size_t n = h->count;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && entry_less(&h->entries[child + 1], &h->entries[child])) child++;
        if (!entry_less(&h->entries[child], &last)) break;
        h->entries[i] = h->entries[child];
        i = child;
    }
    if (n > 0) h->entries[i] = last;
    return 0;
}

const struct rq_heap_entry *rq_heap_peek(const struct rq_heap *h) {
    return h->count ? &h->entries[0] : NULL;
}
