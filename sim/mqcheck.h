/* mqcheck.h — the message queue's properties, judged over a whole simulated run, Jepsen-style
 * (the anomalies Jepsen found in Kafka-like systems: lost acknowledged writes, one offset holding
 * two messages, consumers skipping or going backwards, duplicates despite idempotence).
 *
 * The workload reports what it observes as it happens; each call returns 0, or -1 with a
 * one-line explanation in `why` the first time a property is broken. A message is known by its
 * digest (of its key, value and headers: unique per message in the workload) and, for idempotent
 * producers, by (producer id, sequence).
 *   - inconsistent offsets: no offset of a partition ever holds two different messages, as seen
 *     by any consumer or in any replica's committed log (mqcheck_read, mqcheck_replica);
 *   - replicas agree: every replica's committed entry at an offset is the message every other
 *     replica and every consumer saw there (the same map);
 *   - order: within one consumer session a partition is read in offset order, each read the
 *     offset after the previous one: no going backward (non-monotonic poll), no committed offset
 *     skipped (poll-skip); a session starts, or moves deliberately, with mqcheck_seek;
 *   - no duplicates from idempotent producers: one (producer, sequence) at one offset only;
 *   - no lost write: every message acknowledged with acks=all is, at the end, found at the offset
 *     it was acknowledged with (mqcheck_acked, checked by mqcheck_finish after the workload has
 *     read every partition to its end). Replicas report every record they apply, also those
 *     retention deletes later, so the check holds with retention too;
 *   - retention skips only deleted records: a consumer told that its position is below the log
 *     start moves there (mqcheck_seek_log_start) only if some replica applied a log start at
 *     least that far (mqcheck_retained): a broker that invents a log start makes it skip
 *     committed records.
 * Bounded: at most MQCHECK_OFFSETS_MAX offsets per partition and MQCHECK_KEYS_MAX remembered
 * (producer, sequence) pairs and acknowledgements; beyond, observations are counted, not checked
 * (mqcheck_unchecked), never silently. */
#ifndef RQ_SIM_MQCHECK_H
#define RQ_SIM_MQCHECK_H

#include <stdint.h>

enum {
    MQCHECK_PARTITIONS_MAX = 1024,
    MQCHECK_OFFSETS_MAX = 1 << 20,
    MQCHECK_KEYS_MAX = 1 << 20,
    MQCHECK_WHY_MAX = 256,
};

struct mqcheck;

struct mqcheck *mqcheck_create(uint32_t partitions);
void mqcheck_destroy(struct mqcheck *c);

/* A producer got an acknowledgement with acks=all: message digest is at offset. */
int mqcheck_acked(struct mqcheck *c, uint32_t partition, uint64_t offset, uint64_t digest,
                  char *why);
/* Consumer session `session` now reads partition from offset `next` (a new session, or a seek). */
void mqcheck_seek(struct mqcheck *c, uint32_t partition, uint64_t session, uint64_t next);
/* A replica applied a RETAIN: partition's log start is now log_start. */
void mqcheck_retained(struct mqcheck *c, uint32_t partition, uint64_t log_start);
/* Consumer session `session` was told its position is below the log start and reads on from
 * log_start (a new session starting there): -1 when no replica's log start reached it. */
int mqcheck_seek_log_start(struct mqcheck *c, uint32_t partition, uint64_t session,
                           uint64_t log_start, char *why);
/* Consumer session read the message digest at offset; producer 0 when not idempotent. */
int mqcheck_read(struct mqcheck *c, uint32_t partition, uint64_t session, uint64_t offset,
                 uint64_t digest, uint64_t producer, uint64_t sequence, char *why);
/* A replica's committed log holds digest at offset (producer/sequence as for mqcheck_read). */
int mqcheck_replica(struct mqcheck *c, uint32_t partition, uint32_t node, uint64_t offset,
                    uint64_t digest, uint64_t producer, uint64_t sequence, char *why);
/* The end: every acks=all acknowledgement must have been observed at its offset. */
int mqcheck_finish(struct mqcheck *c, char *why);

uint64_t mqcheck_unchecked(const struct mqcheck *c);

#endif
