/* batcher.h — a producer's batching, in-flight bound and retries, per partition, as a pure state
 * machine: the client's event loop (or the simulator's client) feeds it records and the clock,
 * asks it which batch to send, and reports each answer. No I/O, no clock of its own.
 *
 *   batcher_add(record)  -> the partition's open batch grows; it may be sent at once when the
 *                           producer has no batch in flight (any partition), else once it holds
 *                           batch_records_max records, once a record would take it past
 *                           batch_bytes_max (a new batch opens), or once its first record
 *                           waited linger_ns (an idle producer adds no wait; a busy one gathers
 *                           what arrives while its batches are out, as Nagle's rule does)
 *   batcher_next(now)    -> a closed batch of a partition with fewer than in_flight_max batches
 *                           out and not backing off (idempotence adds the rules below): it is
 *                           now in flight
 *   batcher_done(answer) -> acknowledged: gone (its records are the caller's outcome); a retriable
 *                           error (RQ_ENOTLEADER, RQ_EBUSY, RQ_ETIMEOUT): it goes back to the
 *                           front of its partition's queue with exponential back-off, at most
 *                           retries_max times; any other error, or too many retries: it fails
 *
 * Idempotence: a batch's base sequence is fixed the first time it is sent and kept by every retry,
 * so a broker recognises a retried batch it already has (the partition's producer table, which
 * remembers a producer's last PARTITION_BATCHES_KEPT batches). Per partition:
 *   - the queue is in sequence order, and a retry goes before any batch not yet sent;
 *   - the first batch under a producer id goes alone until acknowledged (a broker takes the first
 *     batch of a producer it does not know at any sequence: a later one must not land first);
 *   - a batch gets its sequence only while fewer than in_flight_max batches got one since the
 *     oldest unresolved batch (acknowledged ones count), so that batch's retry stays recognisable
 *     (in_flight_max <= PARTITION_BATCHES_KEPT is the caller's to keep);
 *   - RQ_ESEQUENCE (passed as retriable) for a batch sent while an earlier one was unresolved
 *     does not count against retries_max (its answer may even come after the earlier one's
 *     acknowledgement): it waits, unsent, until it is the oldest, and nothing behind it overtakes
 *     it (Kafka's rule). That happens at most once per producer id for a batch;
 *   - RQ_ESEQUENCE for a batch sent as the oldest counts as a retry, and the partition's
 *     sequences are broken: nothing more is sent there, and once nothing is in flight
 *     batcher_producer_wanted names it; batcher_producer_set gives it a new id, and every batch
 *     it holds is numbered again from 0 at its next send (KIP-360).
 * With in_flight_max > 1 a non-idempotent producer may reorder on retries: one that needs order
 * uses in_flight_max 1.
 *
 * Memory is bounded by buffer_bytes_max over every record held (batcher_add returns RQ_EBUSY
 * beyond it: backpressure) and by BATCHER_PARTITIONS_MAX and BATCHER_BATCHES_MAX. Records are
 * copied in; a batch's records stay valid until batcher_done for it. */
#ifndef RQ_CLIENT_BATCHER_H
#define RQ_CLIENT_BATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

enum {
    BATCHER_PARTITIONS_MAX = 1024,
    BATCHER_BATCHES_MAX = 4096,       /* batches open, closed or in flight, over all partitions */
};

struct batcher_config {
    uint32_t batch_records_max;       /* 1..PROTO_RECORDS_MAX */
    uint32_t batch_bytes_max;         /* record bytes (key + value + headers) per batch, >= 1 */
    uint64_t linger_ns;               /* how long a partly filled batch waits for more while
                                       * the producer has batches in flight */
    uint32_t in_flight_max;           /* batches of one partition out at once, >= 1 */
    uint64_t buffer_bytes_max;        /* record bytes held over all batches */
    uint64_t backoff_ns;              /* the first retry's wait; doubles, capped at backoff_max */
    uint64_t backoff_max_ns;
    uint32_t retries_max;
    uint8_t idempotent;               /* sequences are assigned (producer id given at create) */
};

void batcher_config_default(struct batcher_config *cfg);

struct batcher;

/* A batch handed out by batcher_next: the caller encodes a PRODUCE_REQ from it. */
struct batcher_batch {
    uint32_t id;                      /* for batcher_done */
    uint32_t partition;
    uint64_t producer_id;             /* idempotent producers: the partition's producer id */
    uint64_t base_sequence;           /* idempotent producers: fixed at its first send */
    uint32_t attempt;                 /* 1 for the first send */
    uint32_t record_count;
    const struct proto_record_in *records;
    const uint64_t *tokens;           /* the caller's token of each record (batcher_add_token) */
};

/* Returns NULL without memory; asserts a valid config. producer_id is 0 unless idempotent. */
struct batcher *batcher_create(const struct batcher_config *cfg, uint32_t partitions,
                               uint64_t producer_id);
void batcher_destroy(struct batcher *b);

/* Copies the record into its partition's open batch. Returns 0, RQ_EBUSY (the buffer or the batch
 * table is full: try again after answers), RQ_ETOOBIG (one record over batch_bytes_max) or
 * RQ_EINVAL (no such partition, or too many headers). */
int batcher_add(struct batcher *b, uint32_t partition, const struct proto_record_in *record,
                uint64_t now_ns);
/* batcher_add with a caller's token kept alongside the record (batcher_batch.tokens), so that the
 * caller can report each record's outcome (batcher_add uses token 0). */
int batcher_add_token(struct batcher *b, uint32_t partition, const struct proto_record_in *record,
                      uint64_t token, uint64_t now_ns);

/* The next batch to send now, or 0 when none may go; *wake_ns is then when one may (UINT64_MAX:
 * nothing waits on time). */
int batcher_next(struct batcher *b, uint64_t now_ns, struct batcher_batch *out, uint64_t *wake_ns);

enum batcher_outcome { BATCHER_ACKED = 0, BATCHER_RETRY = 1, BATCHER_FAILED = 2 };

/* The answer to batch id: error 0 (acknowledged), or an RQ_E*. Returns what became of it; with
 * BATCHER_FAILED the records are dropped and their error is the caller's to report. */
enum batcher_outcome batcher_done(struct batcher *b, uint32_t id, int error, uint64_t now_ns);
/* batcher_done where the caller decides whether error is retriable (a client knows more errors
 * that are worth a retry, e.g. RQ_ECLOSED or RQ_ESEQUENCE); the retries_max bound still holds. */
enum batcher_outcome batcher_done_retriable(struct batcher *b, uint32_t id, int error,
                                            int retriable, uint64_t now_ns);

/* Idempotent producers: a partition whose sequences broke (its head batch was refused
 * RQ_ESEQUENCE) and has nothing in flight any more, which now waits for a new producer id.
 * Returns 1 and *partition, or 0. */
int batcher_producer_wanted(const struct batcher *b, uint32_t *partition);
/* Gives that partition its new producer id (asserted: it wanted one, nothing is in flight): its
 * sequences start again at 0, and every batch it holds is numbered again at its next send. */
void batcher_producer_set(struct batcher *b, uint32_t partition, uint64_t producer_id);

struct batcher_stats {
    uint64_t records_held;
    uint64_t bytes_held;
    uint64_t batches_sent;
    uint64_t retries;
    uint64_t failures;
    uint64_t producer_resets;         /* batcher_producer_set calls */
};
void batcher_stats_get(const struct batcher *b, struct batcher_stats *out);

#endif
