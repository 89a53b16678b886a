/* The Raft safety checkers; see raftcheck.h. */
#include "sim/raftcheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/rng.h"
#include "sim/checkmap.h"

struct applied_log {
    uint64_t *term;      /* by index - 1 */
    uint64_t *digest;
    uint64_t *commit_term;   /* the term of the first leader seen applying it (0: none seen) */
    uint64_t *state;     /* digest of a snapshot image as of the index (0: none seen) */
    uint64_t count;
    uint64_t cap;
};

struct raftcheck {
    uint32_t groups;
    struct checkmap leaders;   /* (group, term) -> node */
    struct checkmap entries;   /* (group, index, term) -> digest, prev_term */
    struct applied_log applied[RAFTCHECK_GROUPS_MAX + 1];
    uint64_t unchecked;
};

struct raftcheck *raftcheck_create(uint32_t groups) {
    RQ_ASSERT(groups >= 1 && groups <= RAFTCHECK_GROUPS_MAX);
    struct raftcheck *c = calloc(1, sizeof *c);
    RQ_ASSERT(c != NULL);
    c->groups = groups;
    checkmap_init(&c->leaders, 1 << 10);
    checkmap_init(&c->entries, 1 << 14);
    return c;
}

void raftcheck_destroy(struct raftcheck *c) {
    if (c == NULL) return;
    checkmap_free(&c->leaders);
    checkmap_free(&c->entries);
    for (uint32_t g = 0; g <= RAFTCHECK_GROUPS_MAX; g++) {
        free(c->applied[g].term);
        free(c->applied[g].digest);
        free(c->applied[g].commit_term);
        free(c->applied[g].state);
    }
    free(c);
}

uint64_t raftcheck_digest(uint8_t type, const void *data, uint32_t size) {
    /* FNV-1a over the type byte, then the data: folding the type into the offset basis alone made
     * (type t, first byte b) collide with every (t', b') where t ^ b == t' ^ b'. */
    uint64_t h = (0xcbf29ce484222325ull ^ type) * 0x100000001b3ull;
    const uint8_t *p = data;
    for (uint32_t i = 0; i < size; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return rq_mix64(h ^ size);
}

int raftcheck_leader(struct raftcheck *c, uint32_t group, uint64_t term, uint32_t node, char *why) {
    int fresh;
    struct checkmap_slot *s = checkmap_put(&c->leaders, group, 0, term, RAFTCHECK_ENTRIES_MAX, &fresh);
    if (s == NULL) { c->unchecked++; return 0; }
    if (fresh) { s->a = node; return 0; }
    if (s->a == node) return 0;
    snprintf(why, RAFTCHECK_WHY_MAX, "election safety: group %" PRIu32 " term %" PRIu64
             " has two leaders, n%" PRIu64 " and n%" PRIu32, group, term, s->a, node);
    return -1;
}

int raftcheck_entry(struct raftcheck *c, uint32_t group, uint64_t index, uint64_t term,
                    uint64_t prev_term, uint64_t digest, char *why) {
    int fresh;
    struct checkmap_slot *s = checkmap_put(&c->entries, group, index, term, RAFTCHECK_ENTRIES_MAX, &fresh);
    if (s == NULL) { c->unchecked++; return 0; }
    if (fresh) {
        s->a = digest;
        s->b = prev_term;
        return 0;
    }
    if (s->a == digest && s->b == prev_term) return 0;
    snprintf(why, RAFTCHECK_WHY_MAX, "log matching: group %" PRIu32 " entry (%" PRIu64 ",%" PRIu64
             ") seen with %s (%s)", group, index, term,
             s->a != digest ? "two different contents" : "two different predecessors",
             s->a != digest ? "digests differ" : "previous terms differ");
    return -1;
}

static int applied_grow(struct applied_log *l, uint64_t index) {
    if (index <= l->cap) return 0;
    if (index > RAFTCHECK_INDEX_MAX) return -1;
    uint64_t cap = l->cap ? l->cap : 1024;
    while (cap < index) cap *= 2;
    l->term = realloc(l->term, cap * sizeof *l->term);
    l->digest = realloc(l->digest, cap * sizeof *l->digest);
    l->commit_term = realloc(l->commit_term, cap * sizeof *l->commit_term);
    l->state = realloc(l->state, cap * sizeof *l->state);
    RQ_ASSERT(l->term != NULL && l->digest != NULL && l->commit_term != NULL && l->state != NULL);
    for (uint64_t i = l->cap; i < cap; i++) l->state[i] = 0;
    l->cap = cap;
    return 0;
}

int raftcheck_applied(struct raftcheck *c, uint32_t group, uint32_t node, uint64_t index,
                      uint64_t term, uint64_t digest, uint64_t leader_term, char *why) {
    RQ_ASSERT(group >= 1 && group <= c->groups && index >= 1);
    struct applied_log *l = &c->applied[group];
    if (index <= l->count) {
        if (l->term[index - 1] == term && l->digest[index - 1] == digest) {
            uint64_t *ct = &l->commit_term[index - 1];
            if (leader_term != 0 && (*ct == 0 || leader_term < *ct)) *ct = leader_term;
            return 0;
        }
        snprintf(why, RAFTCHECK_WHY_MAX, "state machine safety: group %" PRIu32 " n%" PRIu32
                 " applied (%" PRIu64 ",%" PRIu64 ") where (%" PRIu64 ",%" PRIu64 ") was applied%s",
                 group, node, index, term, index, l->term[index - 1],
                 l->term[index - 1] == term ? " with other contents" : "");
        return -1;
    }
    /* Beyond the bound, once every remembered index is applied: counted, not checked. */
    if (index > RAFTCHECK_INDEX_MAX && l->count == RAFTCHECK_INDEX_MAX) {
        c->unchecked++;
        return 0;
    }
    if (index != l->count + 1) {
        snprintf(why, RAFTCHECK_WHY_MAX, "state machine safety: group %" PRIu32 " n%" PRIu32
                 " applied %" PRIu64 " before %" PRIu64, group, node, index, l->count + 1);
        return -1;
    }
    if (applied_grow(l, index) != 0) { c->unchecked++; return 0; }
    l->term[index - 1] = term;
    l->digest[index - 1] = digest;
    l->commit_term[index - 1] = leader_term;
    l->count = index;
    return 0;
}

/* Paper figure 3: an entry committed in a term is in the log of every leader of a later term. A
 * leader of an older term may still win late (its vote answers were delayed) and lacks entries
 * committed since: that is allowed, so only entries first committed by a leader of an earlier
 * term are required. Commit terms grow with the index, so the newest such entry is enough: log
 * matching (checked separately) covers everything below it. */
int raftcheck_new_leader(struct raftcheck *c, uint32_t group, uint32_t node, uint64_t term,
                         uint64_t (*term_at)(const void *arg, uint64_t index), const void *arg,
                         char *why) {
    const struct applied_log *l = &c->applied[group];
    uint64_t i = l->count;
    while (i >= 1 && (l->commit_term[i - 1] == 0 || l->commit_term[i - 1] >= term)) i--;
    if (i == 0) return 0;
    uint64_t t = term_at(arg, i);
    if (t == l->term[i - 1]) return 0;
    snprintf(why, RAFTCHECK_WHY_MAX, "leader completeness: n%" PRIu32 " leads group %" PRIu32
             " in term %" PRIu64 " without (%" PRIu64 ",%" PRIu64 "), committed in term %" PRIu64
             "%s", node, group, term, i, l->term[i - 1], l->commit_term[i - 1],
             t == UINT64_MAX ? ": its log is shorter" : "");
    return -1;
}

int raftcheck_acked(struct raftcheck *c, uint32_t group, uint64_t index, uint64_t term,
                    uint64_t digest, char *why) {
    RQ_ASSERT(group >= 1);
    RQ_ASSERT(group <= c->groups);
    const struct applied_log *l = &c->applied[group];
    if (index > RAFTCHECK_INDEX_MAX && l->count == RAFTCHECK_INDEX_MAX) {
        c->unchecked++;
        return 0;
    }
    /* index 0 (never an entry's) fires too, rather than reading before the arrays */
    int applied = index >= 1 && index <= l->count;
    if (applied && l->term[index - 1] == term && l->digest[index - 1] == digest) return 0;
    snprintf(why, RAFTCHECK_WHY_MAX, "durability: group %" PRIu32 " acknowledged (%" PRIu64
             ",%" PRIu64 ") but %s", group, index, term,
             applied ? "another entry was applied there" : "no node applied it");
    return -1;
}

uint64_t raftcheck_applied_last(const struct raftcheck *c, uint32_t group) {
    return c->applied[group].count;
}

uint64_t raftcheck_unchecked(const struct raftcheck *c) { return c->unchecked; }

int raftcheck_snapshot(struct raftcheck *c, uint32_t group, uint32_t node, uint64_t index,
                       uint64_t digest, char *why) {
    RQ_ASSERT(group >= 1 && group <= c->groups && digest != 0);
    struct applied_log *l = &c->applied[group];
    if (index > RAFTCHECK_INDEX_MAX) {
        c->unchecked++;
        return 0;
    }
    if (index == 0 || index > l->count) {
        snprintf(why, RAFTCHECK_WHY_MAX, "snapshot: n%" PRIu32 " holds a snapshot of group %"
                 PRIu32 " at %" PRIu64 ", beyond every applied entry (%" PRIu64 ")", node, group,
                 index, l->count);
        return -1;
    }
    uint64_t *seen = &l->state[index - 1];
    if (*seen == 0) *seen = digest;
    if (*seen == digest) return 0;
    snprintf(why, RAFTCHECK_WHY_MAX, "snapshot: n%" PRIu32 "'s image of group %" PRIu32 " at %"
             PRIu64 " differs from another node's at the same index", node, group, index);
    return -1;
}
