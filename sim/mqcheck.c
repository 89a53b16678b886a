/* The message queue's checkers; see mqcheck.h. */
#include "sim/mqcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/assert.h"
#include "sim/checkmap.h"

/* The message seen at each offset of one partition (0: none seen yet). */
struct offsets {
    uint64_t *digest;
    uint64_t cap;
};

struct mqcheck {
    uint32_t partitions;
    struct offsets *seen;       /* by partition */
    struct checkmap sessions;   /* (partition, session, 0) -> a: the next offset it must read */
    struct checkmap producers;  /* (partition, producer, sequence) -> a: its offset */
    struct checkmap acks;       /* (partition, offset, 0) -> a: the acknowledged digest */
    uint64_t *log_starts;       /* by partition: the furthest any replica applied */
    uint64_t unchecked;
};

struct mqcheck *mqcheck_create(uint32_t partitions) {
    RQ_ASSERT(partitions >= 1 && partitions <= MQCHECK_PARTITIONS_MAX);
    struct mqcheck *c = calloc(1, sizeof *c);
    RQ_ASSERT(c != NULL);
    c->partitions = partitions;
    c->seen = calloc(partitions, sizeof *c->seen);
    c->log_starts = calloc(partitions, sizeof *c->log_starts);
    RQ_ASSERT(c->seen != NULL && c->log_starts != NULL);
    checkmap_init(&c->sessions, 1 << 6);
    checkmap_init(&c->producers, 1 << 10);
    checkmap_init(&c->acks, 1 << 10);
    return c;
}

void mqcheck_destroy(struct mqcheck *c) {
    if (c == NULL) return;
    for (uint32_t p = 0; p < c->partitions; p++) free(c->seen[p].digest);
    free(c->seen);
    free(c->log_starts);
    checkmap_free(&c->sessions);
    checkmap_free(&c->producers);
    checkmap_free(&c->acks);
    free(c);
}

uint64_t mqcheck_unchecked(const struct mqcheck *c) { return c->unchecked; }

/* The slot for offset in partition p's map, growing it; NULL beyond the bound. */
static uint64_t *slot(struct mqcheck *c, uint32_t p, uint64_t offset) {
    struct offsets *o = &c->seen[p];
    if (offset >= MQCHECK_OFFSETS_MAX) return NULL;
    if (offset >= o->cap) {
        uint64_t cap = o->cap ? o->cap : 1024;
        while (cap <= offset) cap *= 2;
        uint64_t *d = realloc(o->digest, cap * sizeof *d);
        RQ_ASSERT(d != NULL);
        for (uint64_t i = o->cap; i < cap; i++) d[i] = 0;
        o->digest = d;
        o->cap = cap;
    }
    return &o->digest[offset];
}

/* One observation of (offset, digest) by `who`: the offset's message must never change, and an
 * idempotent producer's (producer, sequence) must sit at one offset only. */
static int observe(struct mqcheck *c, uint32_t p, uint64_t offset, uint64_t digest,
                   uint64_t producer, uint64_t sequence, const char *who, uint64_t who_id,
                   char *why) {
    RQ_ASSERT(p < c->partitions && digest != 0);
    uint64_t *d = slot(c, p, offset);
    if (d == NULL) {
        c->unchecked++;
    } else if (*d == 0) {
        *d = digest;
    } else if (*d != digest) {
        snprintf(why, MQCHECK_WHY_MAX, "inconsistent offsets: partition %" PRIu32 " offset %"
                 PRIu64 " holds two different messages (the second seen by %s %" PRIu64 ")", p,
                 offset, who, who_id);
        return -1;
    }
    if (producer == 0) return 0;
    int fresh;
    struct checkmap_slot *s = checkmap_put(&c->producers, p, producer, sequence, MQCHECK_KEYS_MAX,
                                           &fresh);
    if (s == NULL) {
        c->unchecked++;
        return 0;
    }
    if (fresh) s->a = offset;
    if (s->a == offset) return 0;
    snprintf(why, MQCHECK_WHY_MAX, "duplicate: producer %" PRIu64 " sequence %" PRIu64
             " of partition %" PRIu32 " is at offsets %" PRIu64 " and %" PRIu64, producer,
             sequence, p, s->a, offset);
    return -1;
}

int mqcheck_acked(struct mqcheck *c, uint32_t partition, uint64_t offset, uint64_t digest,
                  char *why) {
    RQ_ASSERT(partition < c->partitions && digest != 0);
    int fresh;
    struct checkmap_slot *s = offset < MQCHECK_OFFSETS_MAX
                                  ? checkmap_put(&c->acks, partition, offset, 0, MQCHECK_KEYS_MAX,
                                                 &fresh)
                                  : NULL;
    if (s == NULL) {
        c->unchecked++;
        return 0;
    }
    if (fresh) s->a = digest;
    if (s->a == digest) return 0;
    snprintf(why, MQCHECK_WHY_MAX, "inconsistent offsets: two messages acknowledged at partition %"
             PRIu32 " offset %" PRIu64, partition, offset);
    return -1;
}

void mqcheck_seek(struct mqcheck *c, uint32_t partition, uint64_t session, uint64_t next) {
    int fresh;
    struct checkmap_slot *s = checkmap_put(&c->sessions, partition, session, 0, MQCHECK_KEYS_MAX,
                                           &fresh);
    if (s == NULL) {
        c->unchecked++;
        return;
    }
    s->a = next;
    s->b = 1;   /* the session's position is known */
}

void mqcheck_retained(struct mqcheck *c, uint32_t partition, uint64_t log_start) {
    RQ_ASSERT(partition < c->partitions);
    if (log_start > c->log_starts[partition]) c->log_starts[partition] = log_start;
}

int mqcheck_seek_log_start(struct mqcheck *c, uint32_t partition, uint64_t session,
                           uint64_t log_start, char *why) {
    RQ_ASSERT(partition < c->partitions);
    if (log_start > c->log_starts[partition]) {
        snprintf(why, MQCHECK_WHY_MAX, "retention: session %" PRIu64 " of partition %" PRIu32
                 " was sent to log start %" PRIu64 ", but no replica deleted past %" PRIu64
                 " (committed records skipped)", session, partition, log_start,
                 c->log_starts[partition]);
        return -1;
    }
    mqcheck_seek(c, partition, session, log_start);
    return 0;
}

int mqcheck_read(struct mqcheck *c, uint32_t partition, uint64_t session, uint64_t offset,
                 uint64_t digest, uint64_t producer, uint64_t sequence, char *why) {
    if (observe(c, partition, offset, digest, producer, sequence, "consumer session", session,
                why) != 0)
        return -1;
    int fresh;
    struct checkmap_slot *s = checkmap_put(&c->sessions, partition, session, 0, MQCHECK_KEYS_MAX,
                                           &fresh);
    if (s == NULL) {
        c->unchecked++;
        return 0;
    }
    if (s->b && offset < s->a) {
        snprintf(why, MQCHECK_WHY_MAX, "order: consumer session %" PRIu64 " read partition %"
                 PRIu32 " offset %" PRIu64 " after %" PRIu64 " (non-monotonic poll)", session,
                 partition, offset, s->a - 1);
        return -1;
    }
    if (s->b && offset > s->a) {
        snprintf(why, MQCHECK_WHY_MAX, "order: consumer session %" PRIu64 " skipped partition %"
                 PRIu32 " offsets %" PRIu64 "..%" PRIu64 " (poll-skip)", session, partition, s->a,
                 offset - 1);
        return -1;
    }
    s->a = offset + 1;
    s->b = 1;
    return 0;
}

int mqcheck_replica(struct mqcheck *c, uint32_t partition, uint32_t node, uint64_t offset,
                    uint64_t digest, uint64_t producer, uint64_t sequence, char *why) {
    return observe(c, partition, offset, digest, producer, sequence, "node", node, why);
}

int mqcheck_finish(struct mqcheck *c, char *why) {
    for (uint64_t i = 0; i < c->acks.cap; i++) {
        const struct checkmap_slot *s = &c->acks.slots[i];
        if (!s->used) continue;
        uint32_t p = s->key.group;
        uint64_t offset = s->key.index;
        const struct offsets *o = &c->seen[p];
        uint64_t seen = offset < o->cap ? o->digest[offset] : 0;
        if (seen == s->a) continue;
        snprintf(why, MQCHECK_WHY_MAX, "lost write: the message acknowledged at partition %"
                 PRIu32 " offset %" PRIu64 " %s", p, offset,
                 seen == 0 ? "was never read" : "was replaced by another");
        return -1;
    }
    return 0;
}
