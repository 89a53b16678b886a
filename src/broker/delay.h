/* delay.h — delayed messages in a partition: held in its replicated state until their time, then
 * appended to its log by the leader (README, "Delayed messages").
 *
 * A delayed produce becomes a DELAYED entry of the partition's Raft log. It takes no offsets:
 * applying it puts its records, as the producer encoded them, into the partition's DELAY TABLE,
 * replicated state like the producer table (every replica alike, in the image), with its due
 * time. Once the leader's clock passes the due time, the leader proposes a RELEASE entry carrying
 * the same records; applying it removes them from the table and appends them at the partition's
 * next offsets, exactly as a BATCH of producer 0: from then on they are ordinary records, read by
 * every consumer and group at their offsets. So a delayed message is never visible before its
 * RELEASE, and a RELEASE is proposed only by a leader whose clock says the time has come: the
 * "no earlier than" is the leader's clock's, bounded by how far apart the nodes' clocks are
 * (README). A leader change loses nothing: the table is replicated, and the new leader releases
 * what is due by its own clock.
 *
 *   DELAYED:  u8 kind (PARTITION_ENTRY_DELAYED, 5), varint due_ns, varint timestamp_ns (the
 *             leader's clock at append), varint record_count (1..PROTO_RECORDS_MAX), records
 *   RELEASE:  u8 kind (PARTITION_ENTRY_RELEASE, 6), varint delayed_index (the Raft index of the
 *             DELAYED entry), varint base_offset (what the proposing leader's tip foresaw),
 *             varint timestamp_ns (the release time), varint record_count, records
 * Varints minimal, the records exactly record_count of them (proto_records_decode), nothing
 * trailing. A RELEASE reads like a BATCH (partition_entry_decode gives kind RELEASE, producer 0,
 * its base offset and records), so every reader of records handles it unchanged.
 *
 * Bounded: the table holds at most PARTITION_DELAYED_MAX entries and PARTITION_DELAYED_BYTES_MAX
 * bytes of records; a DELAYED entry that does not fit is refused (RQ_EBUSY: the producer is told,
 * and nothing is held). The table lives inside struct partition_sm (no pointers: a copy is a
 * memcpy), so its bound is kept small; see README for what that means. Delayed messages are not
 * deduplicated: a producer's retry of one whose answer was lost is held twice. */
#ifndef RQ_BROKER_DELAY_H
#define RQ_BROKER_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include "base/codec.h"
#include "proto/msg.h"

enum {
    PARTITION_ENTRY_DELAYED = 5,
    PARTITION_ENTRY_RELEASE = 6,
    PARTITION_DELAYED_MAX = 64,                 /* delayed entries held at once per partition */
    PARTITION_DELAYED_BYTES_MAX = 64 * 1024,    /* their records, bytes */
    DELAY_HEADER_MAX = 1 + 5 * 10,              /* kind + five varints at their longest */
    /* the table in an image: a count, then per entry four varints, a size and the records */
    DELAY_IMAGE_MAX = 10 + PARTITION_DELAYED_MAX * (5 * 10) + PARTITION_DELAYED_BYTES_MAX,
};

struct delayed_entry {            /* a decoded DELAYED or RELEASE entry */
    uint8_t kind;
    uint64_t due_ns;              /* DELAYED */
    uint64_t delayed_index;       /* RELEASE */
    uint64_t base_offset;         /* RELEASE */
    uint64_t timestamp_ns;
    struct proto_records records; /* no offsets; points into the entry */
};

struct delay_item {
    uint64_t raft_index;          /* of its DELAYED entry: the item's name */
    uint64_t due_ns;
    uint64_t timestamp_ns;
    uint32_t record_count;
    uint32_t at;                  /* its records: bytes[at .. at + size) */
    uint32_t size;
};

struct delay_table {
    uint32_t count;
    uint32_t used;                /* bytes of records held */
    struct delay_item items[PARTITION_DELAYED_MAX];   /* raft_index ascending */
    uint8_t bytes[PARTITION_DELAYED_BYTES_MAX];       /* items' records, in item order */
};

/* Writes a DELAYED entry (records: a produce request's, 1..PROTO_RECORDS_MAX, no offsets) into
 * buf[0..cap); returns its size, or 0 when it does not fit. */
size_t delay_entry_encode(uint8_t *buf, size_t cap, uint64_t due_ns, uint64_t timestamp_ns,
                          const struct proto_records *records);
/* Writes the RELEASE entry of item `it` of t, foreseen at base_offset; 0 when it does not fit. */
size_t delay_release_encode(uint8_t *buf, size_t cap, const struct delay_table *t,
                            const struct delay_item *it, uint64_t base_offset,
                            uint64_t timestamp_ns);
/* Decodes a DELAYED or RELEASE entry strictly: 0, or RQ_ETRUNC / RQ_ECORRUPT / RQ_ETOOBIG. */
int delay_entry_decode(const uint8_t *data, size_t size, struct delayed_entry *out);

/* The item of a DELAYED entry at raft_index, or NULL. */
const struct delay_item *delay_table_find(const struct delay_table *t, uint64_t raft_index);
/* Whether a DELAYED entry's records of `size` bytes fit the table. */
int delay_table_fits(const struct delay_table *t, size_t size);
/* Holds a DELAYED entry applied at raft_index (it fits: asserted). */
void delay_table_add(struct delay_table *t, uint64_t raft_index, const struct delayed_entry *e);
/* Drops the item of raft_index (present: asserted). */
void delay_table_remove(struct delay_table *t, uint64_t raft_index);
/* The earliest due time held (UINT64_MAX: none). */
uint64_t delay_table_next_due(const struct delay_table *t);

void delay_table_write(const struct delay_table *t, struct rq_writer *w);
/* Reads a table written by delay_table_write, strictly (indexes ascending and at most
 * applied_index, records that decode, bounds); RQ_ECORRUPT in r->err otherwise. out may be NULL. */
void delay_table_read(struct rq_reader *r, uint64_t applied_index, struct delay_table *out);

#endif
