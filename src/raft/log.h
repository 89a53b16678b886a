/* log.h — a Raft group's log in memory: entries first..last with copies of their data, in a ring.
 *
 * Index 0 is the empty prefix (term 0). The entry before `first` is remembered as
 * (base_index, base_term) so that an append after it can still be checked (paper 5.3: the
 * consistency check needs prev_index's term). Bounded by entries and by data bytes. */
#ifndef RQ_RAFT_LOG_H
#define RQ_RAFT_LOG_H

#include <stdint.h>

#include "raft/msg.h"

struct raft_log {
    struct raft_entry *ring;     /* ring_cap slots, grown by doubling up to entries_max */
    uint32_t ring_cap;
    uint32_t entries_max;
    uint64_t bytes_max;
    uint32_t head;               /* slot of entry `first` */
    uint32_t count;
    uint64_t bytes;              /* data bytes held */
    uint64_t base_index;         /* first = base_index + 1 */
    uint64_t base_term;
};

/* Returns 0 or RQ_ENOMEM. */
int raft_log_init(struct raft_log *log, uint32_t entries_max, uint64_t bytes_max);
void raft_log_free(struct raft_log *log);

static inline uint64_t raft_log_first(const struct raft_log *log) { return log->base_index + 1; }
static inline uint64_t raft_log_last(const struct raft_log *log) {
    return log->base_index + log->count;
}
/* Term at index: base_term at base_index; UINT64_MAX when index is not in first-1..last. */
uint64_t raft_log_term(const struct raft_log *log, uint64_t index);
uint64_t raft_log_last_term(const struct raft_log *log);
/* The entry at index (first..last), else NULL. */
const struct raft_entry *raft_log_get(const struct raft_log *log, uint64_t index);

/* Whether one more entry of data_size bytes fits. */
int raft_log_has_room(const struct raft_log *log, uint32_t data_size);
/* Appends a copy of e; e->index must be last + 1 and e->term >= the last term (asserted).
 * Returns 0 or RQ_EBUSY (no room). */
int raft_log_append(struct raft_log *log, const struct raft_entry *e);
/* Drops every entry >= from (first <= from <= last + 1, asserted). */
void raft_log_truncate(struct raft_log *log, uint64_t from);
/* Drops every entry <= upto (first - 1 <= upto <= last, asserted): a snapshot covers them. The
 * entry at upto becomes the remembered base. */
void raft_log_compact(struct raft_log *log, uint64_t upto);
/* Drops every entry; the log continues after (index, term), the end of an installed snapshot. */
void raft_log_reset(struct raft_log *log, uint64_t index, uint64_t term);
/* First index of the run of entries with the same term as index, going back no further than
 * first (paper 5.3's "first index it stores for that term"). index in first..last. */
uint64_t raft_log_term_start(const struct raft_log *log, uint64_t index);
/* Last index <= upto whose term is <= term, or base_index if none: where a leader that was
 * told "conflict in term t" should resume (the follower's entries of term t it does not share). */
uint64_t raft_log_last_of_term(const struct raft_log *log, uint64_t term, uint64_t upto);

#endif
