/* partition.c — the partition state machine: entries, offsets, idempotent producers, images.
 * partition.h gives the contract and the formats; this file is how.
 *
 * Applying is split in two: decide() reads the state and the entry and says what happens
 * (partition_sm_preview is decide alone), commit() makes it happen. The leader's preview and
 * every replica's apply therefore run the very same decision. */
#include "broker/partition.h"

#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"

enum {
    IMAGE_MAGIC = 0x53505152,   /* "RQPS" little-endian */
    IMAGE_VERSION = PARTITION_IMAGE_VERSION,   /* 2 added the cursor table, 3 the delay table */
    IMAGE_MIN = 4 + 1 + 4 + 4,  /* magic, version, four one-byte varints, CRC */
};

/* node/host.h's HOST_SNAPSHOT_DATA_MAX (the node sits above the broker, so it is not included
 * here; tests/unit/test_partition.c asserts the two agree). */
_Static_assert(PARTITION_IMAGE_MAX <= (4 << 20),
               "the largest partition image must fit a host snapshot");
_Static_assert(PARTITION_BATCHES_KEPT >= 1 && PARTITION_BATCHES_KEPT <= 255,
               "a batch count is one byte in the image");
_Static_assert(PARTITION_PRODUCERS_MAX >= 1, "the table holds at least one producer");

/* Minimal varints only: entries and images have exactly one encoding. */
static uint64_t get_num(struct rq_reader *r) { return rq_read_varint_min(r); }

/* ---- entries --------------------------------------------------------------------------------- */

size_t partition_entry_encode(uint8_t *buf, size_t cap, uint64_t base_offset,
                              uint64_t producer_id, uint64_t base_sequence, uint64_t timestamp_ns,
                              const struct proto_records *records) {
    RQ_ASSERT(records->count >= 1);
    RQ_ASSERT(records->count <= PROTO_RECORDS_MAX);
    RQ_ASSERT(!records->with_offsets);
    RQ_ASSERT(records->data != NULL || records->size == 0);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, PARTITION_ENTRY_BATCH);
    rq_write_varint(&w, base_offset);
    rq_write_varint(&w, producer_id);
    rq_write_varint(&w, base_sequence);
    rq_write_varint(&w, records->count);
    rq_write_varint(&w, timestamp_ns);
    rq_write_bytes(&w, records->data, records->size);
    return w.err ? 0 : w.len;
}

size_t partition_retain_encode(uint8_t *buf, size_t cap, uint64_t log_start) {
    RQ_ASSERT(cap >= PARTITION_RETAIN_ENTRY_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, PARTITION_ENTRY_RETAIN);
    rq_write_varint(&w, log_start);
    RQ_ASSERT(w.err == 0);
    return w.len;
}

static int retain_decode(struct rq_reader *r, struct partition_entry *out) {
    uint64_t log_start = get_num(r);
    if (r->err != 0) return r->err;
    if (rq_reader_remaining(r) != 0) return RQ_ECORRUPT;
    out->kind = PARTITION_ENTRY_RETAIN;
    out->log_start = log_start;
    return 0;
}

/* A RELEASE reads as a BATCH of producer 0 at the offsets its leader foresaw (delay.h). */
static int release_decode(const uint8_t *data, size_t size, struct partition_entry *out) {
    struct delayed_entry d;
    int err = delay_entry_decode(data, size, &d);
    if (err != 0) return err;
    out->kind = PARTITION_ENTRY_RELEASE;
    out->base_offset = d.base_offset;
    out->timestamp_ns = d.timestamp_ns;
    out->records = d.records;
    return 0;
}

int partition_entry_decode(const uint8_t *data, size_t size, struct partition_entry *out) {
    memset(out, 0, sizeof *out);
    if (size == 0) return RQ_ETRUNC;
    RQ_ASSERT(data != NULL);
    if (data[0] == PARTITION_ENTRY_RELEASE) return release_decode(data, size, out);
    if (data[0] != PARTITION_ENTRY_BATCH && data[0] != PARTITION_ENTRY_RETAIN) {
        out->kind = data[0];
        return RQ_ETYPE;
    }
    struct rq_reader r;
    rq_reader_init(&r, data, size);
    uint8_t kind = 0;
    rq_read_u8(&r, &kind);
    if (kind == PARTITION_ENTRY_RETAIN) return retain_decode(&r, out);
    uint64_t base_offset = get_num(&r);
    uint64_t producer_id = get_num(&r);
    uint64_t base_sequence = get_num(&r);
    uint64_t count = get_num(&r);
    uint64_t timestamp_ns = get_num(&r);
    if (r.err != 0) return r.err;
    if (count == 0) return RQ_ECORRUPT;
    if (count > PROTO_RECORDS_MAX) return RQ_ETOOBIG;
    struct proto_records records;
    int err = proto_records_decode(data + r.pos, rq_reader_remaining(&r), (uint32_t)count, 0,
                                   &records);
    if (err != 0) return err;
    out->kind = kind;
    out->base_offset = base_offset;
    out->producer_id = producer_id;
    out->base_sequence = base_sequence;
    out->timestamp_ns = timestamp_ns;
    out->records = records;
    return 0;
}

size_t partition_shared_size(const uint32_t *sizes, uint32_t count) {
    RQ_ASSERT(count <= PARTITION_SHARED_MAX);
    size_t n = 1 + rq_varint_size(count);
    for (uint32_t k = 0; k < count; k++) n += rq_varint_size(sizes[k]) + sizes[k];
    return n;
}

size_t partition_shared_encode(uint8_t *buf, size_t cap, const uint8_t *data,
                               const uint32_t *sizes, uint32_t count) {
    RQ_ASSERT(count >= 2);
    RQ_ASSERT(count <= PARTITION_SHARED_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, PARTITION_ENTRY_SHARED);
    rq_write_varint(&w, count);
    size_t at = 0;
    for (uint32_t k = 0; k < count; k++) {
        struct partition_entry e;
        RQ_ASSERT(partition_entry_decode(data + at, sizes[k], &e) == 0);   /* a whole BATCH */
        rq_write_varint(&w, sizes[k]);
        rq_write_bytes(&w, data + at, sizes[k]);
        at += sizes[k];
    }
    return w.err ? 0 : w.len;
}

/* The batches of a SHARED entry (its kind byte already checked), strictly: a count in range,
 * minimal varints, sizes within what remains, every batch a BATCH entry, nothing trailing. */
static int split_shared(const uint8_t *data, size_t size, struct partition_split *out) {
    struct rq_reader r;
    rq_reader_init(&r, data, size);
    uint8_t kind = 0;
    rq_read_u8(&r, &kind);
    uint64_t count = get_num(&r);
    if (r.err != 0) return r.err;
    if (count < 2) return RQ_ECORRUPT;   /* one batch is a BATCH entry: one encoding each */
    if (count > PARTITION_SHARED_MAX) return RQ_ETOOBIG;
    for (uint32_t k = 0; k < count; k++) {
        uint64_t n = get_num(&r);
        if (r.err != 0) return r.err;
        if (n > rq_reader_remaining(&r)) return RQ_ETRUNC;
        const uint8_t *batch = NULL;
        if (rq_read_bytes(&r, n, &batch) != 0) return RQ_ETRUNC;
        int err = partition_entry_decode(n ? batch : NULL, n, &out->batches[k]);
        if (err == RQ_ETYPE || (err == 0 && out->batches[k].kind != PARTITION_ENTRY_BATCH))
            return RQ_ECORRUPT;   /* only BATCH entries are shared (no RETAIN inside) */
        if (err != 0) return err;
        out->data[k] = batch;
        out->size[k] = n;
    }
    if (rq_reader_remaining(&r) != 0) return RQ_ECORRUPT;
    out->count = (uint32_t)count;
    return 0;
}

int partition_entry_split(const uint8_t *data, size_t size, struct partition_split *out) {
    out->count = 0;
    if (size == 0) return RQ_ETRUNC;
    RQ_ASSERT(data != NULL);
    if (data[0] == PARTITION_ENTRY_SHARED) {
        int err = split_shared(data, size, out);
        if (err != 0) out->count = 0;
        return err;
    }
    int err = partition_entry_decode(data, size, &out->batches[0]);
    if (err != 0) return err;
    if (out->batches[0].kind == PARTITION_ENTRY_RETAIN) return RQ_ETYPE;   /* no batches */
    out->data[0] = data;
    out->size[0] = size;
    out->count = 1;
    return 0;
}

/* ---- the producer table ---------------------------------------------------------------------- */

/* The first slot whose id is >= id (binary search over the sorted table). */
static uint32_t producer_slot(const struct partition_sm *sm, uint64_t id) {
    uint32_t lo = 0, hi = sm->producer_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (sm->producers[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

const struct partition_producer *partition_sm_producer(const struct partition_sm *sm,
                                                       uint64_t producer_id) {
    uint32_t slot = producer_slot(sm, producer_id);
    if (slot < sm->producer_count && sm->producers[slot].id == producer_id) {
        return &sm->producers[slot];
    }
    return NULL;
}

/* The least recently used producer's slot: smallest stamp, ties to the smaller id. */
static uint32_t producer_lru(const struct partition_sm *sm) {
    RQ_ASSERT(sm->producer_count > 0);
    uint32_t victim = 0;
    for (uint32_t i = 1; i < sm->producer_count; i++) {
        if (sm->producers[i].stamp < sm->producers[victim].stamp) victim = i;
    }
    return victim;
}

static void producer_push(struct partition_producer *p, const struct partition_batch *b) {
    RQ_ASSERT(p->id != 0);
    RQ_ASSERT(p->batch_count <= PARTITION_BATCHES_KEPT);
    if (p->batch_count == PARTITION_BATCHES_KEPT) {
        memmove(&p->batches[0], &p->batches[1], (PARTITION_BATCHES_KEPT - 1) * sizeof *b);
        p->batch_count--;
    }
    if (p->batch_count > 0) {
        const struct partition_batch *last = &p->batches[p->batch_count - 1];
        RQ_ASSERT(b->base_sequence == last->last_sequence + 1);
        RQ_ASSERT(b->base_offset > last->base_offset);
    }
    p->batches[p->batch_count++] = *b;
}

/* ---- decide and commit ----------------------------------------------------------------------- */

struct decision {
    struct partition_apply_result res;
    int known;                /* the producer is in the table, at slot */
    uint32_t slot;            /* its slot, or where it goes */
    uint64_t base_sequence;
    uint64_t entry_base_offset;   /* what the proposing leader assigned */
    struct cursor_entry cursor;   /* a CURSOR entry: it, and what it does */
    struct cursor_decision cursor_decision;
    struct delayed_entry delayed; /* a DELAYED or RELEASE entry */
};

/* A known producer's batch [base, last]: next in line, a remembered batch again, or neither. */
static void decide_known(const struct partition_producer *p, uint64_t base, uint64_t last,
                         uint64_t next_offset, struct decision *d) {
    const struct partition_batch *newest = &p->batches[p->batch_count - 1];
    if (newest->last_sequence != UINT64_MAX && base == newest->last_sequence + 1) {
        d->res.outcome = PARTITION_APPENDED;
        d->res.base_offset = next_offset;
        return;
    }
    for (uint32_t i = 0; i < p->batch_count; i++) {
        if (p->batches[i].base_sequence == base && p->batches[i].last_sequence == last) {
            d->res.outcome = PARTITION_DUPLICATE;
            d->res.base_offset = p->batches[i].base_offset;
            return;
        }
    }
    d->res.outcome = PARTITION_OUT_OF_ORDER;
    d->res.error = RQ_ESEQUENCE;
}

static void decide_cursor(const struct partition_sm *sm, const uint8_t *data, size_t size,
                          struct decision *d) {
    int err = cursor_entry_decode(data, size, &d->cursor);
    if (err != 0) {
        d->res.outcome = PARTITION_MALFORMED;
        d->res.error = err;
        return;
    }
    cursor_decide(&sm->cursors, &d->cursor, sm->log_start_offset, sm->next_offset,
                  &d->cursor_decision);
    d->res.error = d->cursor_decision.error;
    d->res.outcome = d->res.error ? PARTITION_CURSOR_REFUSED : PARTITION_CURSOR_DONE;
    d->res.committed = d->cursor_decision.committed;
}

/* DELAYED: held if it fits. RELEASE: appended like a batch of producer 0 if its item is held
 * (decide() then checks its base offset and the offset limit as for a BATCH). */
static void decide_delay(const struct partition_sm *sm, const uint8_t *data, size_t size,
                         struct decision *d) {
    int err = delay_entry_decode(data, size, &d->delayed);
    if (err != 0) {
        d->res.outcome = PARTITION_MALFORMED;
        d->res.error = err;
        return;
    }
    const struct delayed_entry *e = &d->delayed;
    d->res.record_count = e->records.count;
    d->res.timestamp_ns = e->timestamp_ns;
    d->res.record_bytes = e->records.size;
    if (e->kind == PARTITION_ENTRY_DELAYED) {
        int fits = delay_table_fits(&sm->delays, e->records.size);
        d->res.outcome = fits ? PARTITION_DELAYED : PARTITION_DELAY_REFUSED;
        d->res.error = fits ? 0 : RQ_EBUSY;
        d->res.base_offset = PARTITION_NO_OFFSET;
        return;
    }
    if (delay_table_find(&sm->delays, e->delayed_index) == NULL) {
        d->res.outcome = PARTITION_RELEASE_STALE;
        d->res.error = RQ_ENOENT;
        return;
    }
    d->res.outcome = PARTITION_APPENDED;
    d->res.base_offset = sm->next_offset;
    d->entry_base_offset = e->base_offset;
}

static void decide_entry(const struct partition_sm *sm, const uint8_t *data, size_t size,
                         struct decision *d) {
    memset(d, 0, sizeof *d);
    if (size > 0 && data[0] == PARTITION_ENTRY_CURSOR) {
        decide_cursor(sm, data, size, d);
        return;
    }
    if (size > 0 && (data[0] == PARTITION_ENTRY_DELAYED || data[0] == PARTITION_ENTRY_RELEASE)) {
        decide_delay(sm, data, size, d);
        return;
    }
    struct partition_entry e;
    int err = partition_entry_decode(data, size, &e);
    if (err != 0) {
        d->res.outcome = err == RQ_ETYPE ? PARTITION_UNKNOWN_KIND : PARTITION_MALFORMED;
        d->res.error = err;
        return;
    }
    if (e.kind == PARTITION_ENTRY_RETAIN) {
        int forward = e.log_start > sm->log_start_offset && e.log_start <= sm->next_offset;
        d->res.outcome = forward ? PARTITION_RETAINED : PARTITION_RETAIN_REFUSED;
        d->res.error = forward ? 0 : RQ_ERANGE;
        d->res.base_offset = forward ? e.log_start : 0;
        return;
    }
    uint32_t count = e.records.count;
    d->res.record_count = count;
    d->res.producer_id = e.producer_id;
    d->base_sequence = e.base_sequence;
    d->entry_base_offset = e.base_offset;
    d->res.timestamp_ns = e.timestamp_ns;
    d->res.record_bytes = e.records.size;
    if (e.producer_id == 0) {
        d->res.outcome = PARTITION_APPENDED;
        d->res.base_offset = sm->next_offset;
        return;
    }
    if (e.base_sequence > UINT64_MAX - (count - 1)) {   /* the range would pass 2^64 - 1 */
        d->res.outcome = PARTITION_OUT_OF_ORDER;
        d->res.error = RQ_ESEQUENCE;
        return;
    }
    uint64_t last = e.base_sequence + (count - 1);
    d->slot = producer_slot(sm, e.producer_id);
    d->known = d->slot < sm->producer_count && sm->producers[d->slot].id == e.producer_id;
    if (d->known) {
        decide_known(&sm->producers[d->slot], e.base_sequence, last, sm->next_offset, d);
        return;
    }
    d->res.outcome = PARTITION_APPENDED;   /* a producer we do not know: any sequence */
    d->res.base_offset = sm->next_offset;
    if (sm->producer_count == PARTITION_PRODUCERS_MAX) {
        d->res.evicted_producer = sm->producers[producer_lru(sm)].id;
    }
}

/* decide_entry, and a batch that would take offsets past the limit refused (a duplicate, taking
 * none, is still answered). */
static void decide(const struct partition_sm *sm, const uint8_t *data, size_t size,
                   struct decision *d) {
    decide_entry(sm, data, size, d);
    if (d->res.outcome == PARTITION_APPENDED &&
        d->res.record_count > PARTITION_OFFSET_LIMIT - sm->next_offset) {
        d->res.outcome = PARTITION_FULL;
        d->res.error = RQ_ERANGE;
        d->res.base_offset = 0;
        d->res.evicted_producer = 0;
    }
    if (d->res.outcome == PARTITION_APPENDED && d->entry_base_offset != sm->next_offset) {
        d->res.outcome = PARTITION_MISMATCH;   /* its leader foresaw another log */
        d->res.error = RQ_ENOTLEADER;
        d->res.base_offset = 0;
        d->res.evicted_producer = 0;
    }
}

/* Puts a new producer at d->slot, evicting the least recently used one when the table is full. */
static struct partition_producer *producer_insert(struct partition_sm *sm, struct decision *d) {
    uint32_t slot = d->slot;
    if (sm->producer_count == PARTITION_PRODUCERS_MAX) {
        uint32_t victim = producer_lru(sm);
        RQ_ASSERT(sm->producers[victim].id == d->res.evicted_producer);
        memmove(&sm->producers[victim], &sm->producers[victim + 1],
                (sm->producer_count - victim - 1) * sizeof sm->producers[0]);
        sm->producer_count--;
        if (victim < slot) slot--;
        sm->stats.evictions++;
    }
    RQ_ASSERT(slot <= sm->producer_count);
    memmove(&sm->producers[slot + 1], &sm->producers[slot],
            (sm->producer_count - slot) * sizeof sm->producers[0]);
    sm->producer_count++;
    struct partition_producer *p = &sm->producers[slot];
    memset(p, 0, sizeof *p);
    p->id = d->res.producer_id;
    return p;
}

static void commit_append(struct partition_sm *sm, uint64_t raft_index, struct decision *d) {
    RQ_ASSERT(d->res.base_offset == sm->next_offset);
    RQ_ASSERT(d->res.record_count >= 1);
    RQ_ASSERT(d->res.record_count <= PARTITION_OFFSET_LIMIT - sm->next_offset);
    sm->next_offset += d->res.record_count;
    sm->stats.batches++;
    sm->stats.records += d->res.record_count;
    if (d->res.producer_id == 0) return;
    struct partition_producer *p =
        d->known ? &sm->producers[d->slot] : producer_insert(sm, d);
    RQ_ASSERT(p->id == d->res.producer_id);
    struct partition_batch b = {.base_sequence = d->base_sequence,
                                .last_sequence = d->base_sequence + (d->res.record_count - 1),
                                .base_offset = d->res.base_offset};
    producer_push(p, &b);
    p->stamp = raft_index;
}

void partition_sm_apply_part(struct partition_sm *sm, uint64_t raft_index, uint32_t part,
                             const uint8_t *data, size_t size, struct partition_apply_result *res) {
    RQ_ASSERT(part < PARTITION_SHARED_MAX);
    if (part == 0) RQ_ASSERT(raft_index > sm->applied_index);
    if (part > 0) RQ_ASSERT(raft_index == sm->applied_index);   /* the same entry's index */
    struct decision d;
    decide(sm, data, size, &d);
    sm->applied_index = raft_index;
    switch (d.res.outcome) {
    case PARTITION_APPENDED:
        if (d.delayed.kind == PARTITION_ENTRY_RELEASE) {   /* its records leave the table */
            delay_table_remove(&sm->delays, d.delayed.delayed_index);
            sm->stats.released++;
        }
        commit_append(sm, raft_index, &d);
        break;
    case PARTITION_DELAYED:
        delay_table_add(&sm->delays, raft_index, &d.delayed);
        sm->stats.delayed++;
        break;
    case PARTITION_DELAY_REFUSED: sm->stats.delay_refused++; break;
    case PARTITION_RELEASE_STALE: sm->stats.release_stale++; break;
    case PARTITION_DUPLICATE:
        RQ_ASSERT(d.known);
        sm->producers[d.slot].stamp = raft_index;
        sm->stats.duplicates++;
        break;
    case PARTITION_OUT_OF_ORDER: sm->stats.out_of_order++; break;
    case PARTITION_MALFORMED: sm->stats.malformed++; break;
    case PARTITION_UNKNOWN_KIND: sm->stats.unknown_kinds++; break;
    case PARTITION_FULL: sm->stats.full++; break;
    case PARTITION_MISMATCH: sm->stats.mismatched++; break;
    case PARTITION_RETAINED:
        sm->log_start_offset = d.res.base_offset;
        sm->stats.retains++;
        break;
    case PARTITION_RETAIN_REFUSED: sm->stats.retains_refused++; break;
    case PARTITION_CURSOR_DONE:
        cursor_apply(&sm->cursors, &d.cursor, &d.cursor_decision);
        sm->stats.cursor_ops++;
        break;
    case PARTITION_CURSOR_REFUSED: sm->stats.cursor_refused++; break;
    default: RQ_UNREACHABLE();
    }
    *res = d.res;
}

uint32_t partition_sm_apply_entry(struct partition_sm *sm, uint64_t raft_index,
                                  const uint8_t *data, size_t size,
                                  struct partition_apply_result res[PARTITION_SHARED_MAX]) {
    RQ_ASSERT(raft_index > sm->applied_index);
    if (size == 0 || data[0] != PARTITION_ENTRY_SHARED) {
        partition_sm_apply_part(sm, raft_index, 0, data, size, &res[0]);
        return 1;
    }
    struct partition_split split;
    int err = partition_entry_split(data, size, &split);
    if (err != 0) {   /* one no-op for the whole entry, on every replica alike */
        sm->applied_index = raft_index;
        sm->stats.malformed++;
        res[0] = (struct partition_apply_result){.outcome = PARTITION_MALFORMED, .error = err};
        return 1;
    }
    for (uint32_t k = 0; k < split.count; k++)
        partition_sm_apply_part(sm, raft_index, k, split.data[k], split.size[k], &res[k]);
    return split.count;
}

void partition_sm_apply(struct partition_sm *sm, uint64_t raft_index, const uint8_t *data,
                        size_t size, struct partition_apply_result *res) {
    struct partition_apply_result all[PARTITION_SHARED_MAX];
    partition_sm_apply_entry(sm, raft_index, data, size, all);
    *res = all[0];
}

void partition_sm_preview(const struct partition_sm *sm, const uint8_t *data, size_t size,
                          struct partition_apply_result *res) {
    struct decision d;
    if (size > 0 && data[0] == PARTITION_ENTRY_SHARED) {   /* decided by its first batch */
        struct partition_split split;
        int err = partition_entry_split(data, size, &split);
        if (err != 0) {
            *res = (struct partition_apply_result){.outcome = PARTITION_MALFORMED, .error = err};
            return;
        }
        decide(sm, split.data[0], split.size[0], &d);
    } else {
        decide(sm, data, size, &d);
    }
    *res = d.res;
}

void partition_sm_init(struct partition_sm *sm) { memset(sm, 0, sizeof *sm); }

void partition_sm_copy(struct partition_sm *dst, const struct partition_sm *src) {
    RQ_ASSERT(src->producer_count <= PARTITION_PRODUCERS_MAX);
    if (dst != src) memcpy(dst, src, sizeof *dst);
}

/* ---- the image ------------------------------------------------------------------------------- */

size_t partition_sm_image(const struct partition_sm *sm, uint8_t *buf, size_t cap) {
    RQ_ASSERT(sm->producer_count <= PARTITION_PRODUCERS_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u32(&w, IMAGE_MAGIC);
    rq_write_u8(&w, IMAGE_VERSION);
    rq_write_varint(&w, sm->next_offset);
    rq_write_varint(&w, sm->log_start_offset);
    rq_write_varint(&w, sm->applied_index);
    rq_write_varint(&w, sm->producer_count);
    for (uint32_t i = 0; i < sm->producer_count; i++) {
        const struct partition_producer *p = &sm->producers[i];
        RQ_ASSERT(i == 0 || p->id > sm->producers[i - 1].id);
        rq_write_varint(&w, p->id);
        rq_write_varint(&w, p->stamp);
        rq_write_u8(&w, (uint8_t)p->batch_count);
        for (uint32_t k = 0; k < p->batch_count; k++) {
            rq_write_varint(&w, p->batches[k].base_sequence);
            rq_write_varint(&w, p->batches[k].last_sequence);
            rq_write_varint(&w, p->batches[k].base_offset);
        }
    }
    cursor_table_write(&sm->cursors, &w);
    delay_table_write(&sm->delays, &w);
    if (w.err) return 0;
    rq_write_u32(&w, rq_crc32c(0, buf, w.len));
    if (w.err) return 0;
    RQ_ASSERT(w.len <= PARTITION_IMAGE_MAX);
    return w.len;
}

/* One batch of a producer; prev is the one before it (NULL for the first). */
static void read_batch(struct rq_reader *r, const struct partition_batch *prev,
                       uint64_t next_offset, struct partition_batch *b) {
    b->base_sequence = get_num(r);
    b->last_sequence = get_num(r);
    b->base_offset = get_num(r);
    if (r->err) return;
    int bad = b->last_sequence < b->base_sequence ||
              b->last_sequence - b->base_sequence >= PROTO_RECORDS_MAX ||
              b->base_offset >= next_offset ||
              next_offset - b->base_offset <= b->last_sequence - b->base_sequence;
    if (prev != NULL) {
        bad |= prev->last_sequence == UINT64_MAX ||
               b->base_sequence != prev->last_sequence + 1 ||
               b->base_offset - prev->base_offset <= prev->last_sequence - prev->base_sequence ||
               b->base_offset <= prev->base_offset;
    }
    if (bad) r->err = RQ_ECORRUPT;
}

static void read_producer(struct rq_reader *r, uint64_t prev_id, uint64_t applied_index,
                          uint64_t next_offset, struct partition_producer *p) {
    memset(p, 0, sizeof *p);
    p->id = get_num(r);
    p->stamp = get_num(r);
    uint8_t batch_count = 0;
    rq_read_u8(r, &batch_count);
    if (r->err) return;
    if (p->id <= prev_id || p->stamp == 0 || p->stamp > applied_index || batch_count == 0 ||
        batch_count > PARTITION_BATCHES_KEPT) {
        r->err = RQ_ECORRUPT;
        return;
    }
    p->batch_count = batch_count;
    for (uint32_t k = 0; k < batch_count && r->err == 0; k++) {
        read_batch(r, k ? &p->batches[k - 1] : NULL, next_offset, &p->batches[k]);
    }
}

/* Checks image[0..size) (its CRC trailer stripped) and, when sm is not NULL, fills sm's replicated
 * state from it. Returns 0 or RQ_ECORRUPT; after a 0 from a check, the fill cannot fail. */
static int read_image(const uint8_t *image, size_t size, struct partition_sm *sm) {
    struct rq_reader r;
    rq_reader_init(&r, image, size);
    uint32_t magic = 0;
    uint8_t version = 0;
    rq_read_u32(&r, &magic);
    rq_read_u8(&r, &version);
    uint64_t next_offset = get_num(&r), log_start = get_num(&r), applied = get_num(&r);
    uint64_t count = get_num(&r);
    if (r.err || magic != IMAGE_MAGIC || version < 1 || version > IMAGE_VERSION ||
        next_offset > PARTITION_OFFSET_LIMIT || log_start > next_offset ||
        count > PARTITION_PRODUCERS_MAX) {
        return RQ_ECORRUPT;
    }
    if (sm != NULL) {
        sm->next_offset = next_offset;
        sm->log_start_offset = log_start;
        sm->applied_index = applied;
        sm->producer_count = (uint32_t)count;
    }
    uint64_t prev_id = 0;
    for (uint32_t i = 0; i < count && r.err == 0; i++) {
        struct partition_producer p;
        read_producer(&r, prev_id, applied, next_offset, &p);
        prev_id = p.id;
        if (sm != NULL) sm->producers[i] = p;
    }
    if (version >= 2) cursor_table_read(&r, next_offset, sm ? &sm->cursors : NULL);
    if (version >= 3) delay_table_read(&r, applied, sm ? &sm->delays : NULL);
    if (r.err || rq_reader_remaining(&r) != 0) return RQ_ECORRUPT;
    return 0;
}

int partition_sm_restore(struct partition_sm *sm, const uint8_t *image, size_t size) {
    if (size < IMAGE_MIN) return RQ_ECORRUPT;
    RQ_ASSERT(image != NULL);
    size_t body = size - 4;
    if (rq_crc32c(0, image, body) != rq_get_u32(image + body)) return RQ_ECORRUPT;
    if (read_image(image, body, NULL) != 0) return RQ_ECORRUPT;
    struct partition_stats stats = sm->stats;
    memset(sm, 0, sizeof *sm);
    int err = read_image(image, body, sm);
    RQ_ASSERT(err == 0);
    sm->stats = stats;
    return 0;
}
