/* The in-memory Raft log: a ring of entries with owned copies of their data. */
#include "raft/log.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"

enum { RING_CAP_MIN = 64 };

int raft_log_init(struct raft_log *log, uint32_t entries_max, uint64_t bytes_max) {
    RQ_ASSERT(entries_max > 0);
    memset(log, 0, sizeof *log);
    log->ring_cap = entries_max < RING_CAP_MIN ? entries_max : RING_CAP_MIN;
    log->ring = calloc(log->ring_cap, sizeof *log->ring);
    if (log->ring == NULL) return RQ_ENOMEM;
    log->entries_max = entries_max;
    log->bytes_max = bytes_max;
    return 0;
}

static struct raft_entry *slot(const struct raft_log *log, uint64_t index) {
    uint64_t at = index - raft_log_first(log);
    RQ_ASSERT(at < log->count);
    return &log->ring[(log->head + at) % log->ring_cap];
}

/* Doubles the ring (up to entries_max), moving the entries to its start. */
static int ring_grow(struct raft_log *log) {
    uint64_t cap = (uint64_t)log->ring_cap * 2;
    if (cap > log->entries_max) cap = log->entries_max;
    struct raft_entry *ring = calloc(cap, sizeof *ring);
    if (ring == NULL) return RQ_EBUSY;
    for (uint32_t i = 0; i < log->count; i++) ring[i] = log->ring[(log->head + i) % log->ring_cap];
    free(log->ring);
    log->ring = ring;
    log->ring_cap = (uint32_t)cap;
    log->head = 0;
    return 0;
}

void raft_log_free(struct raft_log *log) {
    if (log->ring == NULL) return;
    raft_log_truncate(log, raft_log_first(log));
    free(log->ring);
    log->ring = NULL;
}

uint64_t raft_log_term(const struct raft_log *log, uint64_t index) {
    if (index == log->base_index) return log->base_term;
    if (index < log->base_index || index > raft_log_last(log)) return UINT64_MAX;
    return slot(log, index)->term;
}

uint64_t raft_log_last_term(const struct raft_log *log) {
    return raft_log_term(log, raft_log_last(log));
}

const struct raft_entry *raft_log_get(const struct raft_log *log, uint64_t index) {
    if (index < raft_log_first(log) || index > raft_log_last(log)) return NULL;
    return slot(log, index);
}

int raft_log_has_room(const struct raft_log *log, uint32_t data_size) {
    return log->count < log->entries_max && log->bytes + data_size <= log->bytes_max;
}

int raft_log_append(struct raft_log *log, const struct raft_entry *e) {
    RQ_ASSERT(e->index == raft_log_last(log) + 1);
    RQ_ASSERT(e->term >= raft_log_last_term(log));
    RQ_ASSERT(e->data_size <= RAFT_ENTRY_DATA_MAX);
    if (!raft_log_has_room(log, e->data_size)) return RQ_EBUSY;
    if (log->count == log->ring_cap && ring_grow(log) != 0) return RQ_EBUSY;
    uint8_t *copy = NULL;
    if (e->data_size > 0) {
        copy = malloc(e->data_size);
        if (copy == NULL) return RQ_EBUSY;
        memcpy(copy, e->data, e->data_size);
    }
    struct raft_entry *s = &log->ring[(log->head + log->count) % log->ring_cap];
    *s = *e;
    s->data = copy;
    log->count++;
    log->bytes += e->data_size;
    return 0;
}

void raft_log_truncate(struct raft_log *log, uint64_t from) {
    RQ_ASSERT(from >= raft_log_first(log));
    RQ_ASSERT(from <= raft_log_last(log) + 1);
    while (raft_log_last(log) >= from) {
        struct raft_entry *s = slot(log, raft_log_last(log));
        log->bytes -= s->data_size;
        free((void *)s->data);
        memset(s, 0, sizeof *s);
        log->count--;
    }
}

void raft_log_compact(struct raft_log *log, uint64_t upto) {
    RQ_ASSERT(upto >= log->base_index && upto <= raft_log_last(log));
    while (log->base_index < upto) {
        struct raft_entry *s = slot(log, raft_log_first(log));
        log->bytes -= s->data_size;
        log->base_term = s->term;
        log->base_index++;
        free((void *)s->data);
        memset(s, 0, sizeof *s);
        log->head = (log->head + 1) % log->ring_cap;
        log->count--;
    }
}

void raft_log_reset(struct raft_log *log, uint64_t index, uint64_t term) {
    raft_log_truncate(log, raft_log_first(log));
    log->head = 0;
    log->base_index = index;
    log->base_term = term;
}

uint64_t raft_log_term_start(const struct raft_log *log, uint64_t index) {
    RQ_ASSERT(index >= raft_log_first(log) && index <= raft_log_last(log));
    uint64_t term = slot(log, index)->term;
    while (index > raft_log_first(log) && slot(log, index - 1)->term == term) index--;
    return index;
}

uint64_t raft_log_last_of_term(const struct raft_log *log, uint64_t term, uint64_t upto) {
    if (upto > raft_log_last(log)) upto = raft_log_last(log);
    while (upto > log->base_index && slot(log, upto)->term > term) upto--;
    return upto;
}
