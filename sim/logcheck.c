#include "sim/logcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/rng.h"

enum { EV_APPEND = 1, EV_TRUNCATE = 2 };

struct event {
    uint64_t seq;
    uint64_t index;      /* append: its index; truncate: the first voided index */
    uint64_t term;
    uint64_t hash;
    uint32_t len;
    uint8_t kind;
    uint8_t durable;
};

struct group_log {
    struct event *events;
    uint32_t count;
    uint32_t cap;
};

struct logcheck {
    struct group_log groups[LOGCHECK_GROUPS_MAX];
    uint32_t group_count;
    uint64_t next_seq;
};

static uint64_t payload_hash(const void *payload, size_t len) {
    const uint8_t *p = payload;
    uint64_t h = 0xcbf29ce484222325ull ^ len;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return rq_mix64(h);
}

struct logcheck *logcheck_create(uint32_t groups) {
    RQ_ASSERT(groups >= 1 && groups <= LOGCHECK_GROUPS_MAX);
    struct logcheck *c = calloc(1, sizeof *c);
    RQ_ASSERT(c != NULL);
    c->group_count = groups;
    c->next_seq = 1;
    return c;
}

void logcheck_destroy(struct logcheck *c) {
    if (c == NULL) return;
    for (uint32_t g = 0; g < c->group_count; g++) free(c->groups[g].events);
    free(c);
}

static struct event *event_add(struct logcheck *c, uint32_t group) {
    RQ_ASSERT(group < c->group_count);
    struct group_log *gl = &c->groups[group];
    if (gl->count == LOGCHECK_EVENTS_MAX) return NULL;
    if (gl->count == gl->cap) {
        uint32_t cap = gl->cap ? gl->cap * 2 : 256;
        struct event *grown = realloc(gl->events, cap * sizeof *grown);
        RQ_ASSERT(grown != NULL);
        gl->events = grown;
        gl->cap = cap;
    }
    struct event *e = &gl->events[gl->count++];
    memset(e, 0, sizeof *e);
    e->seq = c->next_seq++;
    return e;
}

uint64_t logcheck_append(struct logcheck *c, uint32_t group, uint64_t index, uint64_t term,
                         const void *payload, size_t len) {
    struct event *e = event_add(c, group);
    if (e == NULL) return 0;
    e->kind = EV_APPEND;
    e->index = index;
    e->term = term;
    e->len = (uint32_t)len;
    e->hash = payload_hash(payload, len);
    return e->seq;
}

uint64_t logcheck_truncate(struct logcheck *c, uint32_t group, uint64_t from_index) {
    struct event *e = event_add(c, group);
    if (e == NULL) return 0;
    e->kind = EV_TRUNCATE;
    e->index = from_index;
    return e->seq;
}

uint64_t logcheck_next_seq(const struct logcheck *c) { return c->next_seq; }

void logcheck_durable(struct logcheck *c, uint32_t group, uint64_t seq) {
    RQ_ASSERT(group < c->group_count);
    struct group_log *gl = &c->groups[group];
    /* Events are in seq order: binary search. */
    uint32_t lo = 0, hi = gl->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (gl->events[mid].seq < seq) lo = mid + 1;
        else hi = mid;
    }
    RQ_ASSERT(lo < gl->count && gl->events[lo].seq == seq);
    gl->events[lo].durable = 1;
}

/* Per-event verdicts, computed by one backward pass over the group's events. */
struct verdict {
    uint8_t superseded;      /* a later event (durable or not) may have replaced this append */
    uint8_t dead;            /* a later DURABLE event certainly replaced it */
};

static struct verdict *verdicts_compute(const struct group_log *gl) {
    struct verdict *v = calloc(gl->count ? gl->count : 1, sizeof *v);
    RQ_ASSERT(v != NULL);
    uint64_t min_trunc_any = UINT64_MAX, min_trunc_durable = UINT64_MAX;
    uint64_t index_lo = UINT64_MAX, index_hi = 0;
    for (uint32_t i = 0; i < gl->count; i++) {
        if (gl->events[i].kind != EV_APPEND) continue;
        if (gl->events[i].index < index_lo) index_lo = gl->events[i].index;
        if (gl->events[i].index > index_hi) index_hi = gl->events[i].index;
    }
    size_t span = index_lo <= index_hi ? (size_t)(index_hi - index_lo + 1) : 1;
    uint8_t *later_append = calloc(span, 1);  /* bit 1: any later append; bit 2: a durable one */
    RQ_ASSERT(later_append != NULL);
    for (uint32_t i = gl->count; i-- > 0;) {
        const struct event *e = &gl->events[i];
        if (e->kind == EV_TRUNCATE) {
            if (e->index < min_trunc_any) min_trunc_any = e->index;
            if (e->durable && e->index < min_trunc_durable) min_trunc_durable = e->index;
            continue;
        }
        uint8_t *slot = &later_append[e->index - index_lo];
        v[i].superseded = min_trunc_any <= e->index || (*slot & 1);
        v[i].dead = min_trunc_durable <= e->index || (*slot & 2);
        *slot |= (uint8_t)(1 | (e->durable ? 2 : 0));
    }
    free(later_append);
    return v;
}

int logcheck_judge(const struct logcheck *c, uint32_t group, uint64_t first_index, uint64_t count,
                   logcheck_entry_fn get, void *arg, char *why) {
    RQ_ASSERT(group < c->group_count);
    const struct group_log *gl = &c->groups[group];
    struct verdict *v = verdicts_compute(gl);
    int rc = 0;
    /* genuine, final, contiguous: each recovered entry matches a live-able append at its index */
    for (uint64_t k = 0; k < count && rc == 0; k++) {
        uint64_t index, term;
        const uint8_t *payload;
        size_t len;
        get(arg, k, &index, &term, &payload, &len);
        if (index != first_index + k) {
            snprintf(why, LOGCHECK_WHY_MAX, "group %u: hole: entry %llu where %llu was expected", group,
                     (unsigned long long)index, (unsigned long long)(first_index + k));
            rc = -1;
            break;
        }
        uint64_t hash = payload_hash(payload, len);
        int matched = 0, matched_dead = 0;
        for (uint32_t i = 0; i < gl->count && !matched; i++) {
            const struct event *e = &gl->events[i];
            if (e->kind != EV_APPEND || e->index != index) continue;
            if (e->term != term || e->len != len || e->hash != hash) continue;
            if (v[i].dead) matched_dead = 1;
            else matched = 1;
        }
        if (!matched) {
            snprintf(why, LOGCHECK_WHY_MAX, "group %u: entry %llu (term %llu, %zu bytes) %s", group,
                     (unsigned long long)index, (unsigned long long)term, len,
                     matched_dead ? "was durably truncated or overwritten, yet reappeared"
                                  : "matches no append at that index (invented or half-present)");
            rc = -1;
        }
    }
    /* present: every durable append not superseded by a later event is there, byte for byte */
    for (uint32_t i = 0; i < gl->count && rc == 0; i++) {
        const struct event *e = &gl->events[i];
        if (e->kind != EV_APPEND || !e->durable || v[i].superseded || e->index < first_index) continue;
        if (e->index >= first_index + count) {
            snprintf(why, LOGCHECK_WHY_MAX, "group %u: durable entry %llu (term %llu) is lost: the log ends at %llu",
                     group, (unsigned long long)e->index, (unsigned long long)e->term,
                     (unsigned long long)(first_index + count - 1));
            rc = -1;
            break;
        }
        uint64_t index, term;
        const uint8_t *payload;
        size_t len;
        get(arg, e->index - first_index, &index, &term, &payload, &len);
        if (term != e->term || len != e->len || payload_hash(payload, len) != e->hash) {
            snprintf(why, LOGCHECK_WHY_MAX, "group %u: durable entry %llu (term %llu) came back different (term %llu, %zu bytes)",
                     group, (unsigned long long)e->index, (unsigned long long)e->term,
                     (unsigned long long)term, len);
            rc = -1;
        }
    }
    free(v);
    return rc;
}

void logcheck_settle(struct logcheck *c, uint32_t group, uint64_t first_index, uint64_t count,
                     logcheck_entry_fn get, void *arg) {
    RQ_ASSERT(group < c->group_count);
    struct group_log *gl = &c->groups[group];
    gl->count = 0;
    for (uint64_t k = 0; k < count; k++) {
        uint64_t index, term;
        const uint8_t *payload;
        size_t len;
        get(arg, k, &index, &term, &payload, &len);
        RQ_ASSERT(index == first_index + k);
        uint64_t seq = logcheck_append(c, group, index, term, payload, len);
        RQ_ASSERT(seq != 0);
        gl->events[gl->count - 1].durable = 1;
    }
}
