/* groupcheck.h — consumer groups' properties, judged over a whole simulated run (the mq workload
 * feeds it; sim/mqcheck.h judges the records themselves).
 *
 * A CURSOR is what a group consumes under (broker/cursor.h): a queue group's name, or
 * "GROUP/MEMBER" for a pub/sub member. The workload reports what members are delivered and what
 * every replica applies; each call returns 0, or -1 with a one-line explanation in `why` the
 * first time a property breaks:
 *   - exclusivity (queue mode): no two different members of one group are delivered records of
 *     one partition under one generation (groupcheck_delivered);
 *   - committed offsets never go backward: per (partition, cursor), the committed offset each
 *     CURSOR entry leaves, taken in Raft index order, never decreases, except at a RESET (an
 *     operator's deliberate move). Every replica applies the log in index order, and every
 *     replica must report the same outcome at each index (replicas agree), so this is what every
 *     replica observes, across restarts and installed snapshots alike (groupcheck_applied);
 *   - fencing: per (partition, cursor), in index order, every COMMIT that applied must carry
 *     exactly the last CLAIM's (generation, member) — none after a RESET cleared the owner — and
 *     claims that applied have non-decreasing generations (and one generation is claimed by one
 *     member, but after a RESET);
 *   - at-least-once: at the end, every cursor the workload named (groupcheck_expect) was
 *     delivered every offset of every partition from the log start to the end of the committed
 *     log (groupcheck_finish).
 * Bounded: GROUPCHECK_CURSORS_MAX cursors, GROUPCHECK_TIMELINE_MAX cursor entries per (cursor,
 * partition), GROUPCHECK_KEYS_MAX remembered (partition, index) outcomes and (partition,
 * generation) holders, offsets below GROUPCHECK_OFFSETS_MAX; beyond, observations are counted
 * (groupcheck_unchecked), never silently dropped. */
#ifndef RQ_SIM_GROUPCHECK_H
#define RQ_SIM_GROUPCHECK_H

#include <stdint.h>

#include "broker/cursor.h"
#include "proto/msg.h"

enum {
    GROUPCHECK_PARTITIONS_MAX = 1024,
    GROUPCHECK_CURSORS_MAX = 64,
    GROUPCHECK_TIMELINE_MAX = 1 << 16,
    GROUPCHECK_KEYS_MAX = 1 << 20,
    GROUPCHECK_OFFSETS_MAX = 1 << 20,  /* per partition, as mqcheck's */
    GROUPCHECK_WHY_MAX = 256,
};

struct groupcheck;

struct groupcheck *groupcheck_create(uint32_t partitions);
void groupcheck_destroy(struct groupcheck *c);

/* At the end, cursor (a valid cursor name) must have been delivered every offset. */
void groupcheck_expect(struct groupcheck *c, struct proto_bytes cursor);

/* A member (id `member`, in `generation`) of the group consuming under `cursor` was delivered
 * `offset` of `partition`; queue: the group is in queue mode (exclusivity is checked). */
int groupcheck_delivered(struct groupcheck *c, struct proto_bytes cursor, int queue,
                         uint32_t partition, uint64_t generation, uint64_t member, uint64_t offset,
                         char *why);

/* Replica `node` applied the CURSOR entry e at Raft index raft_index of partition's log: done
 * (PARTITION_CURSOR_DONE) or refused, leaving the cursor's committed offset `committed`
 * (PROTO_NO_OFFSET: none). */
int groupcheck_applied(struct groupcheck *c, uint32_t partition, uint32_t node,
                       uint64_t raft_index, const struct cursor_entry *e, int done,
                       uint64_t committed, char *why);

/* The end: every expected cursor was delivered each offset in [log_starts[p], ends[p]) of every
 * partition p (the final log start: what retention deleted before anyone read it is exempt). */
int groupcheck_finish(struct groupcheck *c, const uint64_t *log_starts, const uint64_t *ends,
                      char *why);

/* Records delivered to a cursor, in all (for the run's summary). */
uint64_t groupcheck_deliveries(const struct groupcheck *c);
/* CURSOR entries judged (once each, whichever replica reported them first). */
uint64_t groupcheck_entries(const struct groupcheck *c);
uint64_t groupcheck_unchecked(const struct groupcheck *c);

#endif
