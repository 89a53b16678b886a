/* partition.h — a partition's replicated state machine (DESIGN.md, "The queue").
 *
 * A partition's log IS its Raft log: the data of each NORMAL Raft entry is one partition entry,
 * and this pure, deterministic code applies them in log order. Every replica that applies the same
 * entries reaches byte-identical state (partition_sm_image). Nothing here reads a clock or
 * allocates: times come inside entries, stamped by the leader that proposed them.
 *
 * Entry format (varints are unsigned LEB128 and must be minimal, so decode(encode(x)) == x):
 *     u8     kind              PARTITION_ENTRY_BATCH (1), PARTITION_ENTRY_RETAIN (2),
 *                              PARTITION_ENTRY_SHARED (3) or PARTITION_ENTRY_CURSOR (4: a
 *                              consumer group's claim, commit or reset, broker/cursor.h),
 *                              PARTITION_ENTRY_DELAYED (5) or PARTITION_ENTRY_RELEASE (6) (a
 *                              delayed message held, then appended: broker/delay.h; a RELEASE
 *                              reads as a BATCH of producer 0); other kinds are reserved and
 *                              apply as counted no-ops on every replica alike
 *   BATCH:
 *     varint base_offset       the offset the proposing leader assigned to its first record (the
 *                              leader's tip, below, foresees it), or PARTITION_NO_OFFSET when it
 *                              foresaw that the batch takes none (a duplicate, out of order):
 *                              offsets are assigned at append, and an entry read back from
 *                              storage says where its records are, or that it has none
 *     varint producer_id       0: not idempotent (never deduplicated)
 *     varint base_sequence     the sequence of the first record; record i has base_sequence + i
 *     varint record_count      1..PROTO_RECORDS_MAX
 *     varint timestamp_ns      the leader's clock at append; informational, never interpreted
 *     bytes  records           exactly record_count records as proto encodes a produce request's
 *                              records (proto_records_decode, no offsets), stored VERBATIM: the
 *                              broker never re-encodes a message, and a fetch reads them back
 *   SHARED (group commit: the batches of many producers that reached the leader while its previous
 *   append was not durable yet share one Raft entry, partition_group.c):
 *     varint batch_count       2..PARTITION_SHARED_MAX
 *     batch_count times:
 *       varint size            1..what remains
 *       bytes  batch           one complete BATCH entry (kind byte included) exactly as
 *                              partition_entry_encode writes it
 *   Its batches apply in order, each with exactly the BATCH rules below, as if they were
 *   consecutive entries at the same Raft index: each base_offset is what the leader's tip foresaw
 *   after the batches before it in the same entry, and each gets its own result.
 *   RETAIN (retention, proposed by the leader):
 *     varint log_start         the new first offset held: the records below it are deleted
 * An entry that does not decode (any truncation, a non-minimal varint, a count that does not match
 * the records, anything trailing; for SHARED also a count out of range, a size past the end, or
 * any batch that does not decode as a BATCH) applies as ONE no-op and is counted (stats.malformed).
 *
 * Offsets are dense: a batch of n records applied at next_offset takes next_offset ..
 * next_offset + n - 1; one that would pass PARTITION_OFFSET_LIMIT (2^62) is refused (FULL). A batch
 * that would be appended but whose base_offset is not next_offset is refused (MISMATCH, no
 * offsets): its leader foresaw another log. A committed entry never mismatches — its leader's log
 * up to it is the committed log, and the leader's tip applied exactly that — so the check guards
 * the rule rather than deciding anything in a correct cluster.
 * log_start_offset is the first offset still held. A RETAIN entry moves it forward (RETAINED); one
 * that would move it backward or past next_offset changes nothing (RETAIN_REFUSED, RQ_ERANGE: its
 * leader's tip foresaw another log, as for MISMATCH). The producer table is not touched: a retry
 * of a batch that retention deleted is still answered with its original offset.
 *
 * Idempotent producers (producer_id != 0), Kafka's rules:
 *   - the first batch of a producer the table does not know is accepted at any base_sequence;
 *   - a batch with base_sequence == the producer's last applied sequence + 1 is accepted;
 *   - a batch whose sequence range equals one of the producer's last PARTITION_BATCHES_KEPT
 *     accepted batches is a DUPLICATE: it takes no offsets, and the result carries the ORIGINAL
 *     base offset (the retry of a lost acknowledgement gets the answer the first attempt got);
 *   - any other batch (a gap, a partial overlap, a duplicate older than the last
 *     PARTITION_BATCHES_KEPT batches, or a range past 2^64 - 1) is OUT_OF_ORDER: no offsets,
 *     RQ_ESEQUENCE.
 * The table holds at most PARTITION_PRODUCERS_MAX producers. Each carries a recency stamp: the
 * Raft index of the last entry that was appended for it or recognized as its duplicate. A new
 * producer arriving at a full table evicts the least recently used one (smallest stamp, ties to
 * the smaller id: the batches of one SHARED entry share its Raft index, so stamps are not
 * distinct), so eviction is deterministic. An evicted producer is forgotten: its next batch is
 * accepted as a new producer's, and its retry of an old batch is NOT recognized as a duplicate
 * (Kafka expires idle producers the same way, after transactional.id.expiration.ms).
 *
 * Leader-side preview (acks=1 answers and refusing duplicates before proposing): the leader keeps a
 * second partition_sm, the TIP = the applied state + every entry appended to its log but not yet
 * applied, applied in order with the same partition_sm_apply. Before proposing, it asks
 * partition_sm_preview(tip, entry) — the very decision partition_sm_apply will take on the tip,
 * without changing it — proposes only an APPENDED outcome, and then applies the entry to the tip
 * at the index the proposal got, so the offsets it answers are the offsets every replica will
 * assign. A SHARED entry is built batch by batch: each batch is previewed on the tip and applied
 * to it as the next part of the entry (partition_sm_apply_part) before the next one joins; the
 * tip then holds what partition_sm_apply_entry of the whole entry gives. When the log is
 * truncated (a new leader overwrote uncommitted entries) or leadership is gained, the node
 * rebuilds the tip: partition_sm_copy(tip, applied), then partition_sm_apply of
 * every entry of its log after the applied index, in order. A partition_sm holds no pointers, so
 * a copy is one memcpy of sizeof(struct partition_sm) (about 144 KiB, bounded).
 *
 * Snapshots: partition_sm_image writes next_offset, log_start_offset, the applied index, the
 * producer table sorted by producer id, the cursor table (image version 2) and the delay table
 * (version 3), with a CRC32C; images of versions 1 and 2 are still read; partition_sm_restore decodes one strictly
 * (RQ_ECORRUPT on any malformation, leaving the state untouched). The image of the largest table
 * is at most PARTITION_IMAGE_MAX bytes, far below the host's HOST_SNAPSHOT_DATA_MAX (4 MiB).
 * The counters in stats are this replica's observations and are not part of the image. */
#ifndef RQ_BROKER_PARTITION_H
#define RQ_BROKER_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#include "broker/cursor.h"
#include "broker/delay.h"
#include "proto/msg.h"

enum {
    PARTITION_IMAGE_VERSION = 3,      /* images of versions 1..3 are read, 3 written */
    PARTITION_ENTRY_BATCH = 1,
    PARTITION_ENTRY_RETAIN = 2,
    PARTITION_RETAIN_ENTRY_MAX = 1 + 10,   /* kind + one varint */
    PARTITION_ENTRY_SHARED = 3,
    PARTITION_SHARED_MAX = 64,        /* batches in one SHARED entry */
    PARTITION_PRODUCERS_MAX = 1024,   /* idempotent producers remembered per partition */
    PARTITION_BATCHES_KEPT = 5,       /* per producer, answered as duplicates (Kafka keeps 5) */
    PARTITION_ENTRY_HEADER_MAX = 1 + 5 * 10,   /* kind + five varints at their longest */
    /* magic, version, three varints, count; per producer: id, stamp, batch count, 3 varints per
     * batch; CRC32C. */
    PARTITION_IMAGE_MAX = 4 + 1 + 4 * 10 +
                          PARTITION_PRODUCERS_MAX * (2 * 10 + 1 + PARTITION_BATCHES_KEPT * 3 * 10) +
                          CURSOR_IMAGE_MAX + DELAY_IMAGE_MAX + 4,
};

/* next_offset never exceeds this (2^62): a batch that would pass it is refused (PARTITION_FULL),
 * an image claiming more is refused. Only a restored image can bring a partition near it. */
#define PARTITION_OFFSET_LIMIT (UINT64_C(1) << 62)
/* A BATCH entry's base_offset when its leader foresaw it takes no offsets. */
#define PARTITION_NO_OFFSET UINT64_MAX

/* A decoded entry; records point into the entry's buffer. RETAIN: kind and log_start only. */
struct partition_entry {
    uint8_t kind;
    uint64_t log_start;             /* RETAIN */
    uint64_t base_offset;
    uint64_t producer_id;
    uint64_t base_sequence;
    uint64_t timestamp_ns;
    struct proto_records records;   /* count = record_count, no offsets */
};

/* The batches of an entry (partition_entry_split): one for a BATCH entry, 2..PARTITION_SHARED_MAX
 * for a SHARED one. data/size are each batch's own complete BATCH entry; all point into the
 * entry's buffer. */
struct partition_split {
    uint32_t count;
    struct partition_entry batches[PARTITION_SHARED_MAX];
    const uint8_t *data[PARTITION_SHARED_MAX];
    size_t size[PARTITION_SHARED_MAX];
};

struct partition_batch {            /* one accepted batch of an idempotent producer */
    uint64_t base_sequence;
    uint64_t last_sequence;         /* base_sequence + record_count - 1 */
    uint64_t base_offset;
};

struct partition_producer {
    uint64_t id;                    /* >= 1 */
    uint64_t stamp;                 /* Raft index of its last append or recognized duplicate */
    uint32_t batch_count;           /* 1..PARTITION_BATCHES_KEPT */
    struct partition_batch batches[PARTITION_BATCHES_KEPT];   /* oldest first, sequences
                                                                 consecutive, offsets rising */
};

struct partition_stats {
    uint64_t batches;               /* appended */
    uint64_t records;               /* appended */
    uint64_t duplicates;
    uint64_t out_of_order;
    uint64_t malformed;
    uint64_t unknown_kinds;
    uint64_t full;                  /* batches refused: offsets exhausted */
    uint64_t evictions;
    uint64_t mismatched;            /* batches refused: base_offset was not next_offset */
    uint64_t retains;               /* RETAIN entries that moved the log start */
    uint64_t retains_refused;       /* RETAIN entries that would not move it forward */
    uint64_t cursor_ops;            /* CURSOR entries carried out */
    uint64_t cursor_refused;        /* CURSOR entries refused (fenced, out of range, full) */
    uint64_t delayed;               /* DELAYED entries held */
    uint64_t delay_refused;         /* DELAYED entries refused: the table was full */
    uint64_t released;              /* RELEASE entries that appended their records */
    uint64_t release_stale;         /* RELEASE entries of nothing held (never in a correct log) */
};

struct partition_sm {
    uint64_t next_offset;           /* <= PARTITION_OFFSET_LIMIT */
    uint64_t log_start_offset;      /* <= next_offset */
    uint64_t applied_index;         /* Raft index of the last entry applied (0: none) */
    uint32_t producer_count;
    struct partition_producer producers[PARTITION_PRODUCERS_MAX];   /* [0, count), id ascending */
    struct cursor_table cursors;    /* consumer groups' positions (broker/cursor.h) */
    struct delay_table delays;      /* delayed messages not yet released (broker/delay.h) */
    struct partition_stats stats;   /* not replicated state: not in the image */
};

enum partition_outcome {
    PARTITION_APPENDED = 1,         /* offsets base_offset .. base_offset + record_count - 1 */
    PARTITION_DUPLICATE = 2,        /* base_offset: the original batch's */
    PARTITION_OUT_OF_ORDER = 3,     /* error RQ_ESEQUENCE */
    PARTITION_MALFORMED = 4,        /* error: the decoder's (RQ_ETRUNC, RQ_ECORRUPT, RQ_ETOOBIG) */
    PARTITION_UNKNOWN_KIND = 5,     /* error RQ_ETYPE */
    PARTITION_FULL = 6,             /* error RQ_ERANGE: offsets would pass PARTITION_OFFSET_LIMIT */
    PARTITION_MISMATCH = 7,         /* error RQ_ENOTLEADER: base_offset is not next_offset */
    PARTITION_RETAINED = 8,         /* RETAIN: base_offset is the new log start */
    PARTITION_RETAIN_REFUSED = 9,   /* error RQ_ERANGE: not above the log start, or past the end */
    PARTITION_CURSOR_DONE = 10,     /* CURSOR: claimed, committed or reset; see committed */
    PARTITION_CURSOR_REFUSED = 11,  /* error RQ_EFENCED, RQ_ERANGE or RQ_ENOMEM (cursor.h) */
    PARTITION_DELAYED = 12,         /* DELAYED: held until released (no offsets) */
    PARTITION_DELAY_REFUSED = 13,   /* error RQ_EBUSY: the delay table is full */
    PARTITION_RELEASE_STALE = 14,   /* error RQ_ENOENT: RELEASE of nothing held */
};

struct partition_apply_result {
    enum partition_outcome outcome;
    int error;                      /* 0 for APPENDED and DUPLICATE */
    uint64_t base_offset;           /* APPENDED, DUPLICATE; else 0 */
    uint32_t record_count;          /* of the batch (0 unless it decoded) */
    uint64_t producer_id;
    uint64_t evicted_producer;      /* APPENDED: the producer evicted to make room, 0: none */
    uint64_t timestamp_ns;          /* a batch that decoded: its leader's timestamp */
    uint64_t record_bytes;          /* ... and its records' bytes (what retention counts) */
    uint64_t committed;             /* CURSOR: the cursor's committed offset after it (or before,
                                       when refused); PROTO_NO_OFFSET: none */
};

/* ---- entries ---- */

/* Writes a BATCH entry into buf[0..cap) and returns its size, or 0 when it does not fit. records
 * must be a decoded produce request's records (1..PROTO_RECORDS_MAX, no offsets; asserted). */
size_t partition_entry_encode(uint8_t *buf, size_t cap, uint64_t base_offset, uint64_t producer_id,
                              uint64_t base_sequence, uint64_t timestamp_ns,
                              const struct proto_records *records);

/* Writes a RETAIN entry into buf[0..cap) (cap >= PARTITION_RETAIN_ENTRY_MAX) and returns its size. */
size_t partition_retain_encode(uint8_t *buf, size_t cap, uint64_t log_start);

/* Decodes a BATCH or RETAIN entry strictly. Returns 0; RQ_ETYPE for another kind (SHARED
 * included: see partition_entry_split; out->kind set, nothing else); RQ_ETRUNC, RQ_ECORRUPT or
 * RQ_ETOOBIG for a malformed one (out zeroed). */
int partition_entry_decode(const uint8_t *data, size_t size, struct partition_entry *out);

/* The size of a SHARED entry holding count batches of sizes[0..count) (count <=
 * PARTITION_SHARED_MAX; used by a leader deciding whether one more batch fits
 * RAFT_ENTRY_DATA_MAX). */
size_t partition_shared_size(const uint32_t *sizes, uint32_t count);

/* Writes a SHARED entry of count (2..PARTITION_SHARED_MAX, asserted) batches into buf[0..cap):
 * batch i is sizes[i] bytes of data, the batches back to back (each a BATCH entry as
 * partition_entry_encode wrote it; asserted to decode). Returns its size, or 0 when it does not
 * fit. */
size_t partition_shared_encode(uint8_t *buf, size_t cap, const uint8_t *data,
                               const uint32_t *sizes, uint32_t count);

/* Splits an entry into its batches, strictly (a BATCH entry is partition_entry_decode; a SHARED
 * one is checked as a whole, every batch included). Returns 0 with out->count >= 1; RQ_ETYPE for
 * a kind that holds no batches; RQ_ETRUNC, RQ_ECORRUPT or RQ_ETOOBIG for a malformed entry
 * (out->count 0). Reads, scans and observers use it to see every batch an entry holds. */
int partition_entry_split(const uint8_t *data, size_t size, struct partition_split *out);

/* ---- the state machine ---- */

void partition_sm_init(struct partition_sm *sm);

/* Applies the entry data[0..size) at Raft index raft_index (> the last applied index: entries come
 * in log order; asserted) and describes what it did with each of its batches in res[0..n),
 * returning n: 1 for a BATCH entry and for a malformed entry or an unknown kind (one counted
 * no-op), the batch count for a SHARED entry (its batches applied in order). Never fails: refused
 * batches (out of order, full) change nothing but applied_index. */
uint32_t partition_sm_apply_entry(struct partition_sm *sm, uint64_t raft_index,
                                  const uint8_t *data, size_t size,
                                  struct partition_apply_result res[PARTITION_SHARED_MAX]);

/* partition_sm_apply_entry, describing only the first batch in *res (all a caller needs for an
 * entry that is not SHARED). */
void partition_sm_apply(struct partition_sm *sm, uint64_t raft_index, const uint8_t *data,
                        size_t size, struct partition_apply_result *res);

/* Applies data[0..size) as batch `part` (< PARTITION_SHARED_MAX) of the entry at raft_index, with
 * the BATCH rules: part 0 must come after the last applied index, every later part at that same
 * index (asserted). Applying the parts 0..n-1 of a SHARED entry in order gives exactly
 * partition_sm_apply_entry of the entry (a leader's tip, built as batches join it). data that is
 * not a BATCH entry is a counted no-op, as in partition_sm_apply. */
void partition_sm_apply_part(struct partition_sm *sm, uint64_t raft_index, uint32_t part,
                             const uint8_t *data, size_t size, struct partition_apply_result *res);

/* What partition_sm_apply would do with the entry next, without doing it (the leader's check
 * before proposing, on its tip): for a SHARED entry, with its first batch. Batch k of a SHARED
 * entry is previewed as a BATCH entry on the state its parts 0..k-1 left (partition_sm_apply_part):
 * the same result partition_sm_apply_entry gives it. */
void partition_sm_preview(const struct partition_sm *sm, const uint8_t *data, size_t size,
                          struct partition_apply_result *res);

/* dst = src: a plain copy (no pointers inside), stats included. */
void partition_sm_copy(struct partition_sm *dst, const struct partition_sm *src);

/* The producer's entry, or NULL when the table does not hold it. */
const struct partition_producer *partition_sm_producer(const struct partition_sm *sm,
                                                       uint64_t producer_id);

/* ---- snapshots ---- */

/* Writes the image into buf[0..cap) and returns its size, or 0 when it does not fit (cap >=
 * PARTITION_IMAGE_MAX always fits). Deterministic: equal states give equal bytes. */
size_t partition_sm_image(const struct partition_sm *sm, uint8_t *buf, size_t cap);

/* Replaces sm's replicated state with the image's. Returns 0, or RQ_ECORRUPT (any truncation,
 * checksum or structural fault) with sm untouched. stats are kept. The image's applied index
 * (sm->applied_index after it) is at most the Raft index the image was taken at; the caller checks
 * it against the index it restores at, since later applies must come after it. */
int partition_sm_restore(struct partition_sm *sm, const uint8_t *image, size_t size);

#endif
