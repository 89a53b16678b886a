/* raftcheck.h — the Raft safety properties (paper figure 3), judged over a whole simulated run.
 *
 * The raft-kv workload reports what it observes, as it happens, across every node and every
 * restart; each call returns 0, or -1 with a one-line explanation in `why` the first time a
 * property is broken:
 *   - election safety: at most one node leads a group in a term, over the whole history
 *     (raftcheck_leader, called whenever a node is seen leading);
 *   - log matching: two logs holding an entry with the same index and term hold the same entry
 *     and the same entries before it (raftcheck_entry, for every entry that enters any node's log:
 *     it records each (index, term) once with its data digest and its predecessor's term; the
 *     whole-prefix property follows by induction, since every log's predecessor at index-1 then
 *     has the same term, hence the same entry, and so on down);
 *   - state machine safety: no two nodes apply different entries at one index (raftcheck_applied);
 *   - leader completeness: a node that becomes leader of term T holds every entry committed by a
 *     leader of an earlier term (raftcheck_new_leader; a leader reports the entries it applies,
 *     which are the ones it committed);
 *   - snapshots: every snapshot image of a group at one index is the same, taken or restored
 *     (raftcheck_snapshot);
 *   - durability: a write acknowledged to a client is, at its index, the entry every node applies,
 *     forever, including after every node lost power (raftcheck_acked: checked against what was
 *     applied, and later applies and leaders are checked against it by the rules above).
 * Bounded: at most RAFTCHECK_ENTRIES_MAX distinct (group, index, term) entries and as many
 * leaders are remembered; beyond that new ones are counted but not checked (reported by the
 * workload's stats, never silently). */
#ifndef RQ_SIM_RAFTCHECK_H
#define RQ_SIM_RAFTCHECK_H

#include <stddef.h>
#include <stdint.h>

enum {
    RAFTCHECK_ENTRIES_MAX = 1 << 20,
    RAFTCHECK_INDEX_MAX = 1 << 20,   /* per group: applied entries remembered */
    RAFTCHECK_GROUPS_MAX = 64,
    RAFTCHECK_WHY_MAX = 256,
};

struct raftcheck;

struct raftcheck *raftcheck_create(uint32_t groups);
void raftcheck_destroy(struct raftcheck *c);

/* The digest of an entry as the checker compares it: type and data. */
uint64_t raftcheck_digest(uint8_t type, const void *data, uint32_t size);

int raftcheck_leader(struct raftcheck *c, uint32_t group, uint64_t term, uint32_t node, char *why);
int raftcheck_entry(struct raftcheck *c, uint32_t group, uint64_t index, uint64_t term,
                    uint64_t prev_term, uint64_t digest, char *why);
/* leader_term: the applying node's term if it leads the group (it committed the entry), else 0. */
int raftcheck_applied(struct raftcheck *c, uint32_t group, uint32_t node, uint64_t index,
                      uint64_t term, uint64_t digest, uint64_t leader_term, char *why);
/* term_at(arg, index) gives the new leader's term at index (UINT64_MAX when it has none). */
int raftcheck_new_leader(struct raftcheck *c, uint32_t group, uint32_t node, uint64_t term,
                         uint64_t (*term_at)(const void *arg, uint64_t index), const void *arg,
                         char *why);
int raftcheck_acked(struct raftcheck *c, uint32_t group, uint64_t index, uint64_t term,
                    uint64_t digest, char *why);

/* A snapshot image of group as of index (taken, or restored): every image at one index must be the
 * same (the state machine is deterministic, and restoring gives back what was written), and no
 * node may hold a snapshot of entries nobody applied. digest != 0. */
int raftcheck_snapshot(struct raftcheck *c, uint32_t group, uint32_t node, uint64_t index,
                       uint64_t digest, char *why);

/* Highest index applied anywhere in group (the committed prefix the checker knows). */
uint64_t raftcheck_applied_last(const struct raftcheck *c, uint32_t group);
/* Observations beyond the bounds, not checked. */
uint64_t raftcheck_unchecked(const struct raftcheck *c);

#endif
