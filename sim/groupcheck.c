/* Consumer groups' checkers; see groupcheck.h.
 *
 * Per (cursor, partition) a TIMELINE holds the CURSOR entries that applied (CURSOR_DONE), sorted by
 * Raft index, each once: the first replica to report an index puts it there, every later report
 * of that index must agree with it (the outcomes map). Replicas apply in index order, so an entry
 * almost always lands at the timeline's end and is judged against the state the entries before it
 * left (tl_step); one that lands before the end (which would take a replica reporting an index
 * that no replica reported before, while a later one was) has the whole timeline judged again. */
#include "sim/groupcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "sim/checkmap.h"

struct tl_entry {
    uint64_t index;
    uint64_t generation;
    uint64_t member;
    uint64_t committed;        /* after the entry; PROTO_NO_OFFSET: none */
    uint8_t op;
};

/* What the entries of a timeline so far left. */
struct tl_state {
    int claimed;               /* some CLAIM applied */
    int owned;                 /* ... and no RESET since: (generation, member) holds the cursor */
    uint64_t generation;       /* the last claim's */
    uint64_t member;
    int any;                   /* some entry applied: committed is known */
    uint64_t committed;
};

struct timeline {
    struct tl_entry *entries;
    uint32_t count;
    uint32_t cap;
    struct tl_state state;     /* after entries[0..count) */
};

/* The offsets delivered to a cursor in one partition. */
struct bits {
    uint64_t *words;
    uint64_t cap;              /* bits */
};

struct cursor_rec {
    uint8_t name[PROTO_CURSOR_MAX];
    uint32_t size;
    int expected;
    struct timeline *timelines;   /* by partition */
    struct bits *delivered;       /* by partition */
};

struct groupcheck {
    uint32_t partitions;
    uint32_t cursor_count;
    struct cursor_rec cursors[GROUPCHECK_CURSORS_MAX];
    struct checkmap outcomes;     /* (partition, raft index, 0) -> a: committed, b: node << 32 |
                                     the entry's fingerprint */
    struct checkmap holders;      /* (cursor * PARTITIONS_MAX + partition, generation, 0) -> a:
                                     the member delivered it */
    uint64_t deliveries;
    uint64_t entries;
    uint64_t unchecked;
};

_Static_assert((uint64_t)GROUPCHECK_CURSORS_MAX * GROUPCHECK_PARTITIONS_MAX <= UINT32_MAX,
               "holders keys fit a checkmap group");

struct groupcheck *groupcheck_create(uint32_t partitions) {
    RQ_ASSERT(partitions >= 1 && partitions <= GROUPCHECK_PARTITIONS_MAX);
    struct groupcheck *c = calloc(1, sizeof *c);
    RQ_ASSERT(c != NULL);
    c->partitions = partitions;
    checkmap_init(&c->outcomes, 1 << 8);
    checkmap_init(&c->holders, 1 << 6);
    return c;
}

void groupcheck_destroy(struct groupcheck *c) {
    if (c == NULL) return;
    for (uint32_t i = 0; i < c->cursor_count; i++) {
        struct cursor_rec *r = &c->cursors[i];
        for (uint32_t p = 0; p < c->partitions; p++) {
            free(r->timelines[p].entries);
            free(r->delivered[p].words);
        }
        free(r->timelines);
        free(r->delivered);
    }
    checkmap_free(&c->outcomes);
    checkmap_free(&c->holders);
    free(c);
}

uint64_t groupcheck_deliveries(const struct groupcheck *c) { return c->deliveries; }
uint64_t groupcheck_entries(const struct groupcheck *c) { return c->entries; }
uint64_t groupcheck_unchecked(const struct groupcheck *c) { return c->unchecked; }

/* The cursor's record, made on first sight; NULL when GROUPCHECK_CURSORS_MAX are known. */
static struct cursor_rec *cursor_of(struct groupcheck *c, struct proto_bytes name) {
    RQ_ASSERT(name.size >= 1 && name.size <= PROTO_CURSOR_MAX);
    for (uint32_t i = 0; i < c->cursor_count; i++) {
        struct cursor_rec *r = &c->cursors[i];
        if (r->size == name.size && memcmp(r->name, name.data, name.size) == 0) return r;
    }
    if (c->cursor_count == GROUPCHECK_CURSORS_MAX) return NULL;
    struct cursor_rec *r = &c->cursors[c->cursor_count++];
    memcpy(r->name, name.data, name.size);
    r->size = name.size;
    r->timelines = calloc(c->partitions, sizeof *r->timelines);
    r->delivered = calloc(c->partitions, sizeof *r->delivered);
    RQ_ASSERT(r->timelines != NULL && r->delivered != NULL);
    return r;
}

static uint32_t cursor_index(const struct groupcheck *c, const struct cursor_rec *r) {
    return (uint32_t)(r - c->cursors);
}

void groupcheck_expect(struct groupcheck *c, struct proto_bytes cursor) {
    struct cursor_rec *r = cursor_of(c, cursor);
    if (r == NULL) {
        c->unchecked++;
        return;
    }
    r->expected = 1;
}

/* ---- deliveries: exclusivity and coverage ---------------------------------------------------- */

/* Marks offset delivered; 0, or -1 beyond the bound. */
static int bits_set(struct bits *b, uint64_t offset) {
    if (offset >= GROUPCHECK_OFFSETS_MAX) return -1;
    if (offset >= b->cap) {
        uint64_t cap = b->cap ? b->cap : 1024;
        while (cap <= offset) cap *= 2;
        uint64_t *w = realloc(b->words, cap / 64 * sizeof *w);
        RQ_ASSERT(w != NULL);
        memset(w + b->cap / 64, 0, (cap - b->cap) / 64 * sizeof *w);
        b->words = w;
        b->cap = cap;
    }
    b->words[offset / 64] |= 1ull << (offset % 64);
    return 0;
}

static int bits_get(const struct bits *b, uint64_t offset) {
    return offset < b->cap && (b->words[offset / 64] >> (offset % 64) & 1);
}

int groupcheck_delivered(struct groupcheck *c, struct proto_bytes cursor, int queue,
                         uint32_t partition, uint64_t generation, uint64_t member, uint64_t offset,
                         char *why) {
    RQ_ASSERT(partition < c->partitions);
    RQ_ASSERT(generation >= 1 && member >= 1);
    c->deliveries++;
    struct cursor_rec *r = cursor_of(c, cursor);
    if (r == NULL || bits_set(&r->delivered[partition], offset) != 0) {
        c->unchecked++;
        return 0;
    }
    if (!queue) return 0;
    int fresh;
    uint32_t key = cursor_index(c, r) * GROUPCHECK_PARTITIONS_MAX + partition;
    struct checkmap_slot *s =
        checkmap_put(&c->holders, key, generation, 0, GROUPCHECK_KEYS_MAX, &fresh);
    if (s == NULL) {
        c->unchecked++;
        return 0;
    }
    if (fresh) s->a = member;
    if (s->a == member) return 0;
    snprintf(why, GROUPCHECK_WHY_MAX, "exclusivity: members %" PRIu64 " and %" PRIu64
             " of group %.*s were both delivered partition %" PRIu32 " in generation %" PRIu64
             " (offset %" PRIu64 ")", s->a, member, (int)r->size, (const char *)r->name,
             partition, generation, offset);
    return -1;
}

/* ---- cursor entries: committed offsets forward only, and fencing ----------------------------- */

/* Committed offsets in order: none below every offset. */
static uint64_t rank(uint64_t committed) {
    return committed == PROTO_NO_OFFSET ? 0 : committed + 1;
}

static const char *op_name(uint8_t op) {
    return op == CURSOR_CLAIM ? "claim" : op == CURSOR_COMMIT ? "commit" : "reset";
}

/* Judges entry t after the state s the entries before it left, and moves s past it. */
static int tl_step(struct tl_state *s, const struct tl_entry *t, const struct cursor_rec *r,
                   uint32_t p, char *why) {
    const char *name = (const char *)r->name;
    int n = (int)r->size;
    if (t->op != CURSOR_RESET && s->any && rank(t->committed) < rank(s->committed)) {
        snprintf(why, GROUPCHECK_WHY_MAX, "committed offset: cursor %.*s partition %" PRIu32
                 " went back from %" PRIu64 " to %" PRIu64 " at index %" PRIu64 " (a %s)", n,
                 name, p, s->committed, t->committed, t->index, op_name(t->op));
        return -1;
    }
    if (t->op == CURSOR_COMMIT &&
        (!s->owned || t->generation != s->generation || t->member != s->member)) {
        snprintf(why, GROUPCHECK_WHY_MAX, "fencing: cursor %.*s partition %" PRIu32
                 " accepted a commit of generation %" PRIu64 " member %" PRIu64 " at index %"
                 PRIu64 " while %s", n, name, p, t->generation, t->member, t->index,
                 !s->claimed ? "nobody claimed it" : !s->owned ? "a reset left it unowned"
                                                            : "another claim held it");
        return -1;
    }
    if (t->op == CURSOR_CLAIM && s->claimed && t->generation < s->generation) {
        snprintf(why, GROUPCHECK_WHY_MAX, "fencing: cursor %.*s partition %" PRIu32
                 " accepted a claim of generation %" PRIu64 " at index %" PRIu64
                 " after one of generation %" PRIu64, n, name, p, t->generation, t->index,
                 s->generation);
        return -1;
    }
    if (t->op == CURSOR_CLAIM && s->owned && t->generation == s->generation &&
        t->member != s->member) {
        snprintf(why, GROUPCHECK_WHY_MAX, "fencing: cursor %.*s partition %" PRIu32
                 " accepted claims of generation %" PRIu64 " by members %" PRIu64 " and %"
                 PRIu64 " (index %" PRIu64 ")", n, name, p, t->generation, s->member, t->member,
                 t->index);
        return -1;
    }
    if (t->op == CURSOR_CLAIM) {
        s->claimed = s->owned = 1;
        s->generation = t->generation;
        s->member = t->member;
    }
    if (t->op == CURSOR_RESET) s->owned = 0;
    s->any = 1;
    s->committed = t->committed;
    return 0;
}

/* Puts t into the timeline at its index and judges it (the whole timeline when it is not the
 * last). Returns 0, or -1 with why. */
static int tl_insert(struct groupcheck *c, struct cursor_rec *r, uint32_t p,
                     const struct tl_entry *t, char *why) {
    struct timeline *tl = &r->timelines[p];
    if (tl->count == GROUPCHECK_TIMELINE_MAX) {
        c->unchecked++;
        return 0;
    }
    if (tl->count == tl->cap) {
        uint32_t cap = tl->cap ? tl->cap * 2 : 64;
        struct tl_entry *e = realloc(tl->entries, cap * sizeof *e);
        RQ_ASSERT(e != NULL);
        tl->entries = e;
        tl->cap = cap;
    }
    uint32_t at = tl->count;
    while (at > 0 && tl->entries[at - 1].index > t->index) at--;
    RQ_ASSERT(at == 0 || tl->entries[at - 1].index < t->index);   /* the outcomes map had it */
    memmove(&tl->entries[at + 1], &tl->entries[at], (tl->count - at) * sizeof *t);
    tl->entries[at] = *t;
    tl->count++;
    if (at == tl->count - 1) return tl_step(&tl->state, t, r, p, why);
    memset(&tl->state, 0, sizeof tl->state);
    for (uint32_t i = 0; i < tl->count; i++)
        if (tl_step(&tl->state, &tl->entries[i], r, p, why) != 0) return -1;
    return 0;
}

/* The entry and its outcome, as 32 bits a second report of the index must match. */
static uint32_t fingerprint(const struct cursor_entry *e, int done) {
    uint64_t v[5] = {(uint64_t)e->op << 1 | (done != 0), e->generation, e->member, e->offset,
                     e->name.size};
    uint32_t h = rq_crc32c(0, e->name.data, e->name.size);
    return rq_crc32c(h, v, sizeof v);
}

int groupcheck_applied(struct groupcheck *c, uint32_t partition, uint32_t node,
                       uint64_t raft_index, const struct cursor_entry *e, int done,
                       uint64_t committed, char *why) {
    RQ_ASSERT(partition < c->partitions);
    int fresh;
    struct checkmap_slot *s =
        checkmap_put(&c->outcomes, partition, raft_index, 0, GROUPCHECK_KEYS_MAX, &fresh);
    if (s == NULL) {
        c->unchecked++;
        return 0;
    }
    uint32_t fp = fingerprint(e, done);
    if (!fresh) {
        if ((uint32_t)s->b == fp && s->a == committed) return 0;
        snprintf(why, GROUPCHECK_WHY_MAX, "replicas: partition %" PRIu32 " index %" PRIu64
                 ": node %" PRIu32 " applied the cursor entry (a %s of %.*s) %s, leaving %"
                 PRIu64 ", unlike node %" PRIu64, partition, raft_index, node, op_name(e->op),
                 (int)e->name.size, (const char *)e->name.data, done ? "done" : "refused",
                 committed, s->b >> 32);
        return -1;
    }
    s->a = committed;
    s->b = (uint64_t)node << 32 | fp;
    c->entries++;
    if (!done) return 0;
    struct cursor_rec *r = cursor_of(c, e->name);
    if (r == NULL) {
        c->unchecked++;
        return 0;
    }
    struct tl_entry t = {.index = raft_index, .generation = e->generation, .member = e->member,
                         .committed = committed, .op = e->op};
    return tl_insert(c, r, partition, &t, why);
}

/* ---- the end: at least once ------------------------------------------------------------------ */

int groupcheck_finish(struct groupcheck *c, const uint64_t *log_starts, const uint64_t *ends,
                      char *why) {
    for (uint32_t i = 0; i < c->cursor_count; i++) {
        const struct cursor_rec *r = &c->cursors[i];
        for (uint32_t p = 0; r->expected && p < c->partitions; p++) {
            uint64_t end = ends[p] < GROUPCHECK_OFFSETS_MAX ? ends[p] : GROUPCHECK_OFFSETS_MAX;
            uint64_t missing = 0, first = 0;
            for (uint64_t o = log_starts[p]; o < end; o++) {
                if (bits_get(&r->delivered[p], o)) continue;
                if (missing++ == 0) first = o;
            }
            if (missing == 0) continue;
            snprintf(why, GROUPCHECK_WHY_MAX, "at-least-once: cursor %.*s was never delivered %"
                     PRIu64 " offsets of partition %" PRIu32 " (the first %" PRIu64 ", of %"
                     PRIu64 "..%" PRIu64 ")", (int)r->size, (const char *)r->name, missing, p,
                     first, log_starts[p], ends[p]);
            return -1;
        }
    }
    return 0;
}
