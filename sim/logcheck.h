/* logcheck: the judge of a recovered Raft log, for crash-consistency tests of the store.
 *
 * It records, per group, every event the store was asked to perform, in order, each with a
 * global sequence number: appends of an entry (index, term, payload) and truncations ("entries
 * with index >= from are void", what Raft does on a conflict); and it records which of those the
 * store reported durable. After a crash and recovery it judges the log the store presents:
 *
 *   present    every durable append is still there, byte for byte — unless a later truncation
 *              (durable or not: an unacknowledged one may have happened) or a later append at
 *              that index replaced it;
 *   genuine    every recovered entry is byte-identical to some append at that index (nothing
 *              invented, nothing half-present);
 *   final      no recovered entry predates a durable truncation that covers its index (a
 *              truncated suffix never reappears), nor a durable later append at that index;
 *   contiguous the recovered indexes have no holes.
 *
 * Entries below the log's first index (compacted after a snapshot) are not judged; the caller
 * passes the first index it recovered, and checks it against its snapshots itself.
 *
 * Memory is bounded by LOGCHECK_EVENTS_MAX events per group; payloads are kept as a length and
 * a 64-bit hash plus the first bytes, enough to tell any two different payloads apart in a test. */
#ifndef RQ_SIM_LOGCHECK_H
#define RQ_SIM_LOGCHECK_H

#include <stddef.h>
#include <stdint.h>

enum { LOGCHECK_GROUPS_MAX = 64, LOGCHECK_EVENTS_MAX = 1 << 16, LOGCHECK_WHY_MAX = 256 };

struct logcheck;

struct logcheck *logcheck_create(uint32_t groups);
void logcheck_destroy(struct logcheck *c);

/* Records an event; returns its sequence number (> 0), or 0 when the group's table is full. */
uint64_t logcheck_append(struct logcheck *c, uint32_t group, uint64_t index, uint64_t term,
                         const void *payload, size_t len);
uint64_t logcheck_truncate(struct logcheck *c, uint32_t group, uint64_t from_index);
/* The sequence number the next event will get (so a caller can hand it to the store as a cookie
 * before it knows whether the store accepts the event). */
uint64_t logcheck_next_seq(const struct logcheck *c);
/* The store reported the event durable. */
void logcheck_durable(struct logcheck *c, uint32_t group, uint64_t seq);

/* Judges a recovered log: first_index..first_index+count-1, entry k given by get(arg, k, ...).
 * Returns 0, or -1 with a sentence in why (LOGCHECK_WHY_MAX bytes). */
typedef void (*logcheck_entry_fn)(void *arg, uint64_t k, uint64_t *index, uint64_t *term,
                                  const uint8_t **payload, size_t *len);
int logcheck_judge(const struct logcheck *c, uint32_t group, uint64_t first_index, uint64_t count,
                   logcheck_entry_fn get, void *arg, char *why);

/* After a successful judgement the recovered log becomes the truth the next life builds on:
 * events that can no longer matter are forgotten (bounded memory over long runs). */
void logcheck_settle(struct logcheck *c, uint32_t group, uint64_t first_index, uint64_t count,
                     logcheck_entry_fn get, void *arg);

#endif
