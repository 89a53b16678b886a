/* lincheck: Wing & Gong's linearizability search with Lowe's improvements, for one register.
 *
 * The history becomes a list of events ordered by time: one "call" per op and one "return" per
 * answered op (an unknown write has no return: it may take effect at any time after its call).
 * Scanning the list from its head, every call met before the first return belongs to an op that
 * may be linearized next (Lowe's "minimal" ops); the first return met belongs to an op that must
 * be linearized before anything invoked after it, so the scan stops there. Linearizing an op
 * "lifts" its call and return out of the list; backtracking puts them back (dancing links, in
 * reverse order). The search ends when every answered op is lifted: unknown writes may stay out.
 *
 * The cache holds every (set of lifted ops, register value) state seen: from a given state the
 * search always does the same thing, so a state seen once and left is a dead end. A set is stored
 * as the positions where its bitset changes between 0 and 1: lifted ops form long runs in invoke
 * order, so a state costs a few bytes however long the history is.
 *
 * Prunings, each correct whatever the values (the workload's unique values are not assumed):
 *   - an unknown write whose value no answered read returned is dropped: a linearization that
 *     places it stays one without it, since no read can sit between it and the next write;
 *   - for the same reason an unknown write is not placed once every answered read returning its
 *     value is already placed;
 *   - a minimal read returning the register's current value is placed at once, and no other op is
 *     tried from that state: in any linearization from the state, moving that read to the front
 *     keeps it valid (the read changes nothing, and being minimal, no pending op must precede
 *     it). This removes most of the backtracking over reads that race with writes. */
#include "sim/lincheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/rng.h"

#define LC_NIL       UINT32_MAX       /* no event */
#define LC_FRESH     (UINT32_MAX - 1) /* scan position: a state just entered */
#define LC_EXHAUSTED (UINT32_MAX - 2) /* scan position: nothing left to try anywhere */
#define LC_VID_NONE  UINT32_MAX       /* a value no answered read returned */
enum {
    LC_HEAD = 0,             /* the event list's sentinel */
    LC_STATES_MAX = 1 << 29, /* the budget is clamped here: slot counts stay 32-bit */
    LC_SLOTS_MIN = 1024,     /* first size of the cache's hash table */
};
_Static_assert(LINCHECK_OPS_MAX < UINT16_MAX, "state boundaries are stored as uint16_t");
_Static_assert(LINCHECK_WHY_MAX >= 200, "an explanation needs room for five 64-bit numbers");

/* One op the search considers; its position in invoke order is its bit in a state. */
struct lc_item {
    uint64_t invoke_ns;
    uint64_t complete_ns;
    uint32_t op_index; /* into the caller's array */
    uint32_t vid;      /* its value's index among the answered reads' values, or LC_VID_NONE */
    uint32_t call_ev;
    uint32_t ret_ev; /* LC_NIL for an unknown write */
    uint8_t is_write;
    uint8_t unknown; /* a write never answered: it may be left out */
};

/* A call or a return, in the time-ordered doubly linked list. */
struct lc_event {
    uint64_t time_ns;
    uint32_t item;
    uint32_t prev;
    uint32_t next;
    uint8_t is_return;
};

/* One step taken by the search: the op linearized and the register's value before it. A forced
 * step was the only one worth trying from its state. */
struct lc_frame {
    uint32_t item;
    uint8_t forced;
    uint64_t value_before;
};

struct lc_state {
    uint64_t hash;
    uint64_t value;
    size_t bounds_offset; /* into lc_cache.bounds */
    uint32_t bounds_count;
};

/* The set of visited states: open addressing over `states`, boundaries in one arena. */
struct lc_cache {
    uint32_t *slots;     /* 0 empty, else state index + 1 */
    uint32_t slot_count; /* a power of two, at least twice state_count */
    struct lc_state *states;
    uint32_t state_count;
    uint32_t state_cap;
    uint16_t *bounds;
    size_t bounds_used;
    size_t bounds_cap;
};

struct lc_search {
    const struct lincheck_op *ops;
    struct lc_item *items;
    uint32_t item_count;
    struct lc_event *events; /* events[LC_HEAD] is the sentinel */
    uint32_t event_count;
    uint64_t *bits; /* the lifted items */
    uint32_t word_count;
    uint16_t *scratch;     /* the current state's boundaries, item_count + 1 at most */
    uint64_t *read_values; /* sorted distinct values returned by answered reads */
    uint32_t *reads_left;  /* per value: answered reads returning it not yet lifted */
    uint32_t read_value_count;
    struct lc_frame *stack;
    uint32_t depth;
    uint32_t answered_left;
    uint64_t value;
    uint64_t budget;
    struct lc_cache cache;
    /* The deepest dead end, for the explanation. */
    uint32_t best_item;
    uint32_t best_depth;
    uint64_t best_value;
    uint8_t has_best;
    const char *undecided_reason;
};

enum lc_step { LC_STEP_TAKEN, LC_STEP_REFUSED, LC_STEP_OUT };

/* ---- setup ----------------------------------------------------------------------------------- */

static int op_answered(const struct lincheck_op *op) { return op->complete_ns != UINT64_MAX; }

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Items by invoke time, then completion, then the caller's order: a total order, so the result
 * does not depend on qsort's stability. */
static int cmp_item(const void *a, const void *b) {
    const struct lc_item *x = a, *y = b;
    if (x->invoke_ns != y->invoke_ns) return x->invoke_ns < y->invoke_ns ? -1 : 1;
    if (x->complete_ns != y->complete_ns) return x->complete_ns < y->complete_ns ? -1 : 1;
    return (x->op_index > y->op_index) - (x->op_index < y->op_index);
}

/* Events by time; at equal times calls before returns (touching ops are concurrent). */
static int cmp_event(const void *a, const void *b) {
    const struct lc_event *x = a, *y = b;
    if (x->time_ns != y->time_ns) return x->time_ns < y->time_ns ? -1 : 1;
    if (x->is_return != y->is_return) return x->is_return < y->is_return ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* Index of `value` among the answered reads' values, or LC_VID_NONE. */
static uint32_t value_id(const struct lc_search *s, uint64_t value) {
    const uint64_t *hit =
        bsearch(&value, s->read_values, s->read_value_count, sizeof value, cmp_u64);
    return hit ? (uint32_t)(hit - s->read_values) : LC_VID_NONE;
}

/* The distinct values answered reads returned, sorted, each with its count of reads. */
static int setup_read_values(struct lc_search *s, const struct lincheck_op *ops, uint32_t count) {
    s->read_values = malloc((count + 1) * sizeof *s->read_values);
    s->reads_left = calloc(count + 1, sizeof *s->reads_left);
    if (s->read_values == NULL || s->reads_left == NULL) return -1;
    uint32_t n = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (!ops[i].is_write && op_answered(&ops[i])) s->read_values[n++] = ops[i].value;
    }
    qsort(s->read_values, n, sizeof *s->read_values, cmp_u64);
    uint32_t distinct = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (distinct == 0 || s->read_values[distinct - 1] != s->read_values[i]) {
            s->read_values[distinct++] = s->read_values[i];
        }
    }
    s->read_value_count = distinct;
    return 0;
}

/* The ops the search considers, in invoke order: answered ops and observable unknown writes. */
static int setup_items(struct lc_search *s, const struct lincheck_op *ops, uint32_t count) {
    s->items = malloc((count + 1) * sizeof *s->items);
    if (s->items == NULL) return -1;
    for (uint32_t i = 0; i < count; i++) {
        const struct lincheck_op *op = &ops[i];
        int answered = op_answered(op);
        uint32_t vid = value_id(s, op->value);
        if (!answered && (!op->is_write || vid == LC_VID_NONE)) continue;
        if (answered) RQ_ASSERT(op->invoke_ns <= op->complete_ns);
        struct lc_item *it = &s->items[s->item_count++];
        memset(it, 0, sizeof *it);
        it->invoke_ns = op->invoke_ns;
        it->complete_ns = op->complete_ns;
        it->op_index = i;
        it->vid = vid;
        it->is_write = op->is_write ? 1 : 0;
        it->unknown = answered ? 0 : 1;
        if (answered) s->answered_left++;
        if (answered && !op->is_write) s->reads_left[vid]++;
    }
    qsort(s->items, s->item_count, sizeof *s->items, cmp_item);
    return 0;
}

/* The time-ordered event list, linked behind the sentinel. */
static int setup_events(struct lc_search *s) {
    s->events = calloc(2 * (size_t)s->item_count + 1, sizeof *s->events);
    if (s->events == NULL) return -1;
    uint32_t n = 1;
    for (uint32_t i = 0; i < s->item_count; i++) {
        const struct lc_item *it = &s->items[i];
        s->events[n++] = (struct lc_event){.time_ns = it->invoke_ns, .item = i, .is_return = 0};
        if (it->unknown) continue;
        s->events[n++] = (struct lc_event){.time_ns = it->complete_ns, .item = i, .is_return = 1};
    }
    s->event_count = n;
    qsort(s->events + 1, n - 1, sizeof *s->events, cmp_event);
    for (uint32_t e = 0; e < n; e++) {
        s->events[e].prev = e == 0 ? LC_NIL : e - 1;
        s->events[e].next = e + 1 < n ? e + 1 : LC_NIL;
        if (e == 0) continue;
        struct lc_item *it = &s->items[s->events[e].item];
        if (s->events[e].is_return) {
            it->ret_ev = e;
        } else {
            it->call_ev = e;
        }
    }
    for (uint32_t i = 0; i < s->item_count; i++) {
        if (s->items[i].unknown) s->items[i].ret_ev = LC_NIL;
    }
    return 0;
}

/* Everything the search needs; -1 when memory cannot be had. */
static int search_init(struct lc_search *s, const struct lincheck_op *ops, uint32_t count) {
    s->ops = ops;
    if (setup_read_values(s, ops, count) != 0) return -1;
    if (setup_items(s, ops, count) != 0) return -1;
    if (setup_events(s) != 0) return -1;
    s->word_count = (s->item_count + 63) / 64 + 1;
    s->bits = calloc(s->word_count, sizeof *s->bits);
    s->scratch = malloc(((size_t)s->item_count + 2) * sizeof *s->scratch);
    s->stack = malloc(((size_t)s->item_count + 1) * sizeof *s->stack);
    if (s->bits == NULL || s->scratch == NULL || s->stack == NULL) return -1;
    return 0;
}

static void search_free(struct lc_search *s) {
    free(s->read_values);
    free(s->reads_left);
    free(s->items);
    free(s->events);
    free(s->bits);
    free(s->scratch);
    free(s->stack);
    free(s->cache.slots);
    free(s->cache.states);
    free(s->cache.bounds);
}

/* ---- the cache of visited states ------------------------------------------------------------- */

/* The current state's boundaries (bit positions where the lifted set turns on or off, counting
 * from an implicit 0 before bit 0) into s->scratch; returns their count. */
static uint32_t state_encode(const struct lc_search *s) {
    uint32_t n = 0;
    uint64_t carry = 0;
    for (uint32_t w = 0; w < s->word_count; w++) {
        uint64_t x = s->bits[w];
        uint64_t flips = x ^ ((x << 1) | carry);
        carry = x >> 63;
        while (flips != 0) { /* at most 64 rounds: one bit cleared each */
            s->scratch[n++] = (uint16_t)(w * 64 + (uint32_t)__builtin_ctzll(flips));
            flips &= flips - 1;
        }
    }
    RQ_ASSERT(n <= s->item_count + 1);
    return n;
}

static uint64_t state_hash(const uint16_t *bounds, uint32_t count, uint64_t value) {
    uint64_t h = rq_mix64(value ^ 0x6c696e636865636bull);
    for (uint32_t i = 0; i < count; i++) {
        h = rq_mix64(h ^ bounds[i]);
    }
    return h;
}

static int state_equal(const struct lc_cache *c, const struct lc_state *st, uint64_t hash,
                       uint64_t value, const uint16_t *bounds, uint32_t count) {
    if (st->hash != hash || st->value != value || st->bounds_count != count) return 0;
    return memcmp(c->bounds + st->bounds_offset, bounds, count * sizeof *bounds) == 0;
}

/* The slot holding the state, or the empty slot where it would go. */
static uint32_t cache_slot(const struct lc_cache *c, uint64_t hash, uint64_t value,
                           const uint16_t *bounds, uint32_t count) {
    uint32_t mask = c->slot_count - 1;
    uint32_t slot = (uint32_t)hash & mask;
    for (uint32_t probe = 0; probe < c->slot_count; probe++) {
        uint32_t ref = c->slots[slot];
        if (ref == 0) return slot;
        if (state_equal(c, &c->states[ref - 1], hash, value, bounds, count)) return slot;
        slot = (slot + 1) & mask;
    }
    RQ_UNREACHABLE(); /* the table is never more than half full */
}

/* Doubles the hash table (or makes the first one); -1 without memory. */
static int cache_grow_slots(struct lc_cache *c) {
    uint32_t count = c->slot_count ? c->slot_count * 2 : LC_SLOTS_MIN;
    uint32_t *slots = calloc(count, sizeof *slots);
    if (slots == NULL) return -1;
    for (uint32_t i = 0; i < c->state_count; i++) {
        uint32_t slot = (uint32_t)c->states[i].hash & (count - 1);
        while (slots[slot] != 0) { /* bounded: the table is half empty */
            slot = (slot + 1) & (count - 1);
        }
        slots[slot] = i + 1;
    }
    free(c->slots);
    c->slots = slots;
    c->slot_count = count;
    return 0;
}

/* Room for one more state with `count` boundaries; -1 without memory. */
static int cache_reserve(struct lc_cache *c, uint32_t count) {
    if (c->state_count == c->state_cap) {
        uint32_t cap = c->state_cap ? c->state_cap * 2 : LC_SLOTS_MIN / 2;
        struct lc_state *states = realloc(c->states, cap * sizeof *states);
        if (states == NULL) return -1;
        c->states = states;
        c->state_cap = cap;
    }
    if (c->bounds_used + count > c->bounds_cap) {
        size_t cap = c->bounds_cap ? c->bounds_cap * 2 : 4096;
        while (cap < c->bounds_used + count) { /* a few rounds: count <= LINCHECK_OPS_MAX + 1 */
            cap *= 2;
        }
        uint16_t *bounds = realloc(c->bounds, cap * sizeof *bounds);
        if (bounds == NULL) return -1;
        c->bounds = bounds;
        c->bounds_cap = cap;
    }
    if (2 * ((uint64_t)c->state_count + 1) > c->slot_count) return cache_grow_slots(c);
    return 0;
}

/* Records the current lifted set with register value `value`. LC_STEP_TAKEN if it is new,
 * LC_STEP_REFUSED if it was seen before, LC_STEP_OUT if the budget or memory ran out. */
static enum lc_step cache_visit(struct lc_search *s, uint64_t value) {
    struct lc_cache *c = &s->cache;
    uint32_t count = state_encode(s);
    uint64_t hash = state_hash(s->scratch, count, value);
    if (c->slot_count != 0) {
        uint32_t ref = c->slots[cache_slot(c, hash, value, s->scratch, count)];
        if (ref != 0) return LC_STEP_REFUSED;
    }
    if (c->state_count >= s->budget) {
        s->undecided_reason = "search budget exhausted";
        return LC_STEP_OUT;
    }
    if (cache_reserve(c, count) != 0) {
        s->undecided_reason = "out of memory";
        return LC_STEP_OUT;
    }
    struct lc_state *st = &c->states[c->state_count];
    *st = (struct lc_state){
        .hash = hash, .value = value, .bounds_offset = c->bounds_used, .bounds_count = count};
    memcpy(c->bounds + c->bounds_used, s->scratch, count * sizeof *s->scratch);
    c->bounds_used += count;
    c->slots[cache_slot(c, hash, value, s->scratch, count)] = ++c->state_count;
    return LC_STEP_TAKEN;
}

/* ---- the search ------------------------------------------------------------------------------ */

static void event_unlink(struct lc_search *s, uint32_t e) {
    struct lc_event *ev = &s->events[e];
    s->events[ev->prev].next = ev->next;
    if (ev->next != LC_NIL) s->events[ev->next].prev = ev->prev;
}

/* Undoes event_unlink; only valid in the reverse order of the unlinks. */
static void event_relink(struct lc_search *s, uint32_t e) {
    struct lc_event *ev = &s->events[e];
    s->events[ev->prev].next = e;
    if (ev->next != LC_NIL) s->events[ev->next].prev = e;
}

static void bit_flip(struct lc_search *s, uint32_t item) {
    s->bits[item / 64] ^= (uint64_t)1 << (item % 64);
}

/* Linearizes `item` next, if the register allows it and the resulting state is new. */
static enum lc_step try_item(struct lc_search *s, uint32_t item, uint8_t forced) {
    const struct lc_item *it = &s->items[item];
    const struct lincheck_op *op = &s->ops[it->op_index];
    if (it->unknown && s->reads_left[it->vid] == 0) return LC_STEP_REFUSED; /* cannot help */
    if (!it->is_write && op->value != s->value) return LC_STEP_REFUSED;
    uint64_t value = it->is_write ? op->value : s->value;
    bit_flip(s, item);
    enum lc_step step = cache_visit(s, value);
    if (step != LC_STEP_TAKEN) {
        bit_flip(s, item);
        return step;
    }
    s->stack[s->depth++] =
        (struct lc_frame){.item = item, .forced = forced, .value_before = s->value};
    s->value = value;
    event_unlink(s, it->call_ev);
    if (it->ret_ev != LC_NIL) event_unlink(s, it->ret_ev);
    if (!it->unknown) s->answered_left--;
    if (!it->is_write) s->reads_left[it->vid]--;
    return LC_STEP_TAKEN;
}

/* Takes back the last step. */
static struct lc_frame step_undo(struct lc_search *s) {
    RQ_ASSERT(s->depth > 0);
    struct lc_frame frame = s->stack[--s->depth];
    const struct lc_item *it = &s->items[frame.item];
    if (it->ret_ev != LC_NIL) event_relink(s, it->ret_ev);
    event_relink(s, it->call_ev);
    if (!it->unknown) s->answered_left++;
    if (!it->is_write) s->reads_left[it->vid]++;
    bit_flip(s, frame.item);
    s->value = frame.value_before;
    return frame;
}

/* Leaves a dead end: undoes forced steps (their states had nothing else to try) and one free
 * step, and returns the event after that step's call, where the scan resumes; LC_EXHAUSTED when
 * the first state has nothing left either. */
static uint32_t backtrack(struct lc_search *s) {
    while (s->depth > 0) { /* at most depth rounds */
        struct lc_frame frame = step_undo(s);
        if (!frame.forced) return s->events[s->items[frame.item].call_ev].next;
    }
    return LC_EXHAUSTED;
}

/* A minimal read returning the register's current value, or LC_NIL. */
static uint32_t forced_read(const struct lc_search *s) {
    for (uint32_t e = s->events[LC_HEAD].next; e != LC_NIL; e = s->events[e].next) {
        const struct lc_event *ev = &s->events[e];
        if (ev->is_return) break;
        const struct lc_item *it = &s->items[ev->item];
        if (!it->is_write && s->ops[it->op_index].value == s->value) return ev->item;
    }
    return LC_NIL;
}

/* Entering a state: takes its forced read if it has one. Returns the new scan position: LC_FRESH
 * after a forced step, the list's head if there is none, or where a backtrack leads. */
static uint32_t enter_state(struct lc_search *s, enum lc_step *step) {
    uint32_t item = forced_read(s);
    *step = LC_STEP_REFUSED;
    if (item == LC_NIL) return s->events[LC_HEAD].next;
    *step = try_item(s, item, 1);
    if (*step == LC_STEP_TAKEN) return LC_FRESH;
    if (*step == LC_STEP_OUT) return LC_EXHAUSTED;
    return backtrack(s); /* the state after the read was explored before: a dead end */
}

/* The scan stopped at the return of `item`: remember the deepest such dead end. */
static void note_dead_end(struct lc_search *s, uint32_t item) {
    if (s->has_best && s->depth <= s->best_depth) return;
    s->has_best = 1;
    s->best_item = item;
    s->best_depth = s->depth;
    s->best_value = s->value;
}

/* Lowe's loop. Terminates: every step either lifts an op into a state never seen before (at
 * most `budget` of them), advances the scan, or backtracks. */
static enum lincheck_result search_run(struct lc_search *s) {
    uint32_t e = LC_FRESH;
    for (;;) {
        if (s->answered_left == 0) return LINCHECK_OK;
        enum lc_step step = LC_STEP_REFUSED;
        if (e == LC_FRESH) e = enter_state(s, &step);
        if (step == LC_STEP_OUT) return LINCHECK_UNDECIDED;
        if (e == LC_EXHAUSTED) return LINCHECK_VIOLATION;
        if (e == LC_FRESH) continue;
        RQ_ASSERT(e != LC_NIL); /* a pending answered op's return is still ahead */
        const struct lc_event *ev = &s->events[e];
        if (!ev->is_return) {
            step = try_item(s, ev->item, 0);
            if (step == LC_STEP_OUT) return LINCHECK_UNDECIDED;
            e = step == LC_STEP_TAKEN ? LC_FRESH : ev->next;
            continue;
        }
        note_dead_end(s, ev->item);
        e = backtrack(s);
    }
}

/* ---- the API --------------------------------------------------------------------------------- */

static void explain_violation(const struct lc_search *s, char *why, size_t why_cap) {
    RQ_ASSERT(s->has_best);
    const struct lincheck_op *op = &s->ops[s->items[s->best_item].op_index];
    snprintf(why, why_cap,
             "%s by client %" PRIu32 " id %" PRIu64 " %s %" PRIu64 " (invoked %" PRIu64
             " ns, completed %" PRIu64 " ns) cannot be linearized; deepest search: %" PRIu32
             " ops placed, register = %" PRIu64,
             op->is_write ? "write" : "read", op->client, op->id, op->is_write ? "of" : "returning",
             op->value, op->invoke_ns, op->complete_ns, s->best_depth, s->best_value);
}

enum lincheck_result lincheck_register(const struct lincheck_op *ops, uint32_t count,
                                       uint64_t initial, uint64_t budget, char *why,
                                       size_t why_cap) {
    if (why_cap == 0) why = NULL;
    if (why != NULL) why[0] = '\0';
    if (count > LINCHECK_OPS_MAX) {
        if (why != NULL) {
            snprintf(why, why_cap, "history of %" PRIu32 " ops exceeds LINCHECK_OPS_MAX (%d)",
                     count, LINCHECK_OPS_MAX);
        }
        return LINCHECK_UNDECIDED;
    }
    RQ_ASSERT(count == 0 || ops != NULL);
    struct lc_search s;
    memset(&s, 0, sizeof s);
    s.value = initial;
    s.budget = budget < LC_STATES_MAX ? budget : LC_STATES_MAX;
    enum lincheck_result result = LINCHECK_UNDECIDED;
    if (search_init(&s, ops, count) != 0) {
        s.undecided_reason = "out of memory";
    } else {
        result = search_run(&s);
    }
    if (why != NULL && result == LINCHECK_VIOLATION) explain_violation(&s, why, why_cap);
    if (why != NULL && result == LINCHECK_UNDECIDED) {
        snprintf(why, why_cap, "undecided: %s after %" PRIu32 " states", s.undecided_reason,
                 s.cache.state_count);
    }
    search_free(&s);
    return result;
}
