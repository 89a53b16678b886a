/* Proposals waiting for their entry; see proposals.h. */
#include "node/proposals.h"

#include "base/assert.h"

int proposals_room(const struct proposals *p) {
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++)
        if (!p->slots[i].used) return 1;
    return 0;
}

void proposals_add(struct proposals *p, uint64_t index, uint64_t term, uint64_t cookie,
                   uint64_t now_ns) {
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        if (p->slots[i].used) continue;
        p->slots[i] = (struct proposal){.used = 1, .index = index, .term = term, .cookie = cookie,
                                        .since_ns = now_ns};
        return;
    }
    RQ_UNREACHABLE();
}

int proposals_applied(struct proposals *p, uint64_t index, uint64_t term, uint64_t *cookie,
                      int *own) {
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        struct proposal *s = &p->slots[i];
        if (!s->used || s->index != index) continue;
        s->used = 0;
        *cookie = s->cookie;
        *own = s->term == term;
        return 1;
    }
    return 0;
}

int proposals_expired(struct proposals *p, uint64_t now_ns, uint64_t timeout_ns, uint64_t *cookie) {
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        struct proposal *s = &p->slots[i];
        if (!s->used || now_ns - s->since_ns < timeout_ns) continue;
        s->used = 0;
        *cookie = s->cookie;
        return 1;
    }
    return 0;
}

void proposals_add_early(struct proposals *p, uint64_t index, uint64_t term, uint64_t cookie,
                         uint64_t now_ns, int error, uint64_t value) {
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        if (p->slots[i].used) continue;
        p->slots[i] = (struct proposal){.used = 1, .early = 1, .error = error, .value = value,
                                        .index = index, .term = term, .cookie = cookie,
                                        .since_ns = now_ns};
        return;
    }
    RQ_UNREACHABLE();
}

int proposals_durable(struct proposals *p, const struct raft *r, uint64_t durable_index,
                      uint64_t *cookie, int *error, uint64_t *value) {
    for (uint32_t i = 0; i < PROPOSALS_MAX; i++) {
        struct proposal *s = &p->slots[i];
        if (!s->used || !s->early || s->index > durable_index) continue;
        if (raft_term_at(r, s->index) != s->term) continue;   /* replaced: answered at its apply */
        s->used = 0;
        *cookie = s->cookie;
        *error = s->error;
        *value = s->value;
        return 1;
    }
    return 0;
}
