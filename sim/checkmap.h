/* checkmap.h — the checkers' map: open addressing from a (group, index, term) key to two 64-bit
 * values. Keys are compared whole, so no two observations are ever confused (a hash collision only
 * costs a probe). Grows by doubling, kept at most 3/4 full, up to a caller's bound. Used by
 * sim/raftcheck.c and sim/mqcheck.c (tests only; not in the servers). */
#ifndef RQ_SIM_CHECKMAP_H
#define RQ_SIM_CHECKMAP_H

#include <stdint.h>

struct checkmap_key {
    uint32_t group;
    uint64_t index;
    uint64_t term;
};

struct checkmap_slot {
    uint8_t used;
    struct checkmap_key key;
    uint64_t a;
    uint64_t b;
};

struct checkmap {
    struct checkmap_slot *slots;
    uint64_t cap;      /* power of two */
    uint64_t count;
};

void checkmap_init(struct checkmap *m, uint64_t cap);
void checkmap_free(struct checkmap *m);
/* The slot of key, inserting it if absent (then *fresh = 1), or NULL when absent and the map
 * already holds max_count keys. */
struct checkmap_slot *checkmap_put(struct checkmap *m, uint32_t group, uint64_t index,
                                   uint64_t term, uint64_t max_count, int *fresh);
/* The slot of key, or NULL. */
const struct checkmap_slot *checkmap_get(const struct checkmap *m, uint32_t group, uint64_t index,
                                         uint64_t term);

#endif
