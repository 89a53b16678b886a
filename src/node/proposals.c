/* Proposals waiting for their entry; see proposals.h. */
#include "node/proposals.h"

#include "base/assert.h"

int proposals_room(const struct proposals *p) { return p->count < PROPOSALS_MAX; }

uint32_t proposals_free(const struct proposals *p) { return PROPOSALS_MAX - p->count; }

static void release(struct proposals *p, struct proposal *s) {
    RQ_ASSERT(s->used && p->count > 0);
    s->used = 0;
    p->count--;
}

static void put(struct proposals *p, const struct proposal *s) {
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        if (p->slots[i].used) continue;
        p->slots[i] = *s;
        p->count++;
        return;
    }
    RQ_UNREACHABLE();
}

void proposals_add_part(struct proposals *p, uint64_t index, uint64_t term, uint32_t part,
                        uint64_t cookie, uint64_t now_ns) {
    put(p, &(struct proposal){.used = 1, .part = part, .index = index, .term = term,
                              .cookie = cookie, .since_ns = now_ns});
}

void proposals_add(struct proposals *p, uint64_t index, uint64_t term, uint64_t cookie,
                   uint64_t now_ns) {
    proposals_add_part(p, index, term, 0, cookie, now_ns);
}

int proposals_applied_part(struct proposals *p, uint64_t index, uint64_t term, uint64_t *cookie,
                           int *own, uint32_t *part) {
    if (p->count == 0) return 0;
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        struct proposal *s = &p->slots[i];
        if (!s->used || s->index != index) continue;
        release(p, s);
        *cookie = s->cookie;
        *own = s->term == term;
        *part = s->part;
        return 1;
    }
    return 0;
}

int proposals_applied(struct proposals *p, uint64_t index, uint64_t term, uint64_t *cookie,
                      int *own) {
    uint32_t part;
    return proposals_applied_part(p, index, term, cookie, own, &part);
}

int proposals_expired(struct proposals *p, uint64_t now_ns, uint64_t timeout_ns, uint64_t *cookie) {
    if (p->count == 0) return 0;
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        struct proposal *s = &p->slots[i];
        if (!s->used || now_ns - s->since_ns < timeout_ns) continue;
        release(p, s);
        *cookie = s->cookie;
        return 1;
    }
    return 0;
}

void proposals_add_early_part(struct proposals *p, uint64_t index, uint64_t term, uint32_t part,
                              uint64_t cookie, uint64_t now_ns, int error, uint64_t value) {
    put(p, &(struct proposal){.used = 1, .early = 1, .error = error, .part = part, .value = value,
                              .index = index, .term = term, .cookie = cookie, .since_ns = now_ns});
}

void proposals_add_early(struct proposals *p, uint64_t index, uint64_t term, uint64_t cookie,
                         uint64_t now_ns, int error, uint64_t value) {
    proposals_add_early_part(p, index, term, 0, cookie, now_ns, error, value);
}

int proposals_durable(struct proposals *p, const struct raft *r, uint64_t durable_index,
                      uint64_t *cookie, int *error, uint64_t *value) {
    if (p->count == 0) return 0;
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        struct proposal *s = &p->slots[i];
        if (!s->used || !s->early || s->index > durable_index) continue;
        if (raft_term_at(r, s->index) != s->term) continue;   /* replaced: answered at its apply */
        release(p, s);
        *cookie = s->cookie;
        *error = s->error;
        *value = s->value;
        return 1;
    }
    return 0;
}
