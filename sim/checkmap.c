/* The checkers' map; see checkmap.h. */
#include "sim/checkmap.h"

#include <stdlib.h>

#include "base/assert.h"
#include "base/rng.h"

void checkmap_init(struct checkmap *m, uint64_t cap) {
    m->slots = calloc(cap, sizeof *m->slots);
    RQ_ASSERT(m->slots != NULL);
    m->cap = cap;
    m->count = 0;
}

static int key_eq(const struct checkmap_key *x, const struct checkmap_key *y) {
    return x->group == y->group && x->index == y->index && x->term == y->term;
}

/* The slot holding key, or the empty one where it would go (the map is never full). */
static struct checkmap_slot *find(struct checkmap *m, const struct checkmap_key *key) {
    uint64_t h = rq_mix64(((uint64_t)key->group << 48) ^ key->index) ^
                 rq_mix64(key->term * 0x9E3779B97F4A7C15ull + 1);
    for (uint64_t probes = 0; probes < m->cap; probes++) {
        struct checkmap_slot *s = &m->slots[(h + probes) & (m->cap - 1)];
        if (!s->used || key_eq(&s->key, key)) return s;
    }
    RQ_UNREACHABLE();
}

static void grow(struct checkmap *m) {
    struct checkmap old = *m;
    checkmap_init(m, old.cap * 2);
    for (uint64_t i = 0; i < old.cap; i++) {
        if (!old.slots[i].used) continue;
        *find(m, &old.slots[i].key) = old.slots[i];
        m->count++;
    }
    free(old.slots);
}

/* Inserts key if absent, growing the table (kept at most 3/4 full) up to max_count keys. Returns
 * the slot and sets *fresh, or NULL when the map is at its bound. */
struct checkmap_slot *checkmap_put(struct checkmap *m, uint32_t group, uint64_t index, uint64_t term,
                                uint64_t max_count, int *fresh) {
    struct checkmap_key key = {.group = group, .index = index, .term = term};
    struct checkmap_slot *s = find(m, &key);
    *fresh = 0;
    if (s->used) return s;
    if (m->count >= max_count) return NULL;
    if (m->count + 1 > m->cap / 4 * 3) {
        grow(m);
        s = find(m, &key);
    }
    s->used = 1;
    s->key = key;
    m->count++;
    *fresh = 1;
    return s;
}


void checkmap_free(struct checkmap *m) {
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

const struct checkmap_slot *checkmap_get(const struct checkmap *m, uint32_t group, uint64_t index,
                                         uint64_t term) {
    struct checkmap_key key = {.group = group, .index = index, .term = term};
    const struct checkmap_slot *s = find((struct checkmap *)m, &key);
    return s->used ? s : NULL;
}
