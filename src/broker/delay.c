/* delay.c — delayed messages' entries and table; delay.h gives the contract. */
#include "broker/delay.h"

#include <string.h>

#include "base/assert.h"
#include "base/errors.h"

size_t delay_entry_encode(uint8_t *buf, size_t cap, uint64_t due_ns, uint64_t timestamp_ns,
                          const struct proto_records *records) {
    RQ_ASSERT(records->count >= 1 && records->count <= PROTO_RECORDS_MAX);
    RQ_ASSERT(!records->with_offsets);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, PARTITION_ENTRY_DELAYED);
    rq_write_varint(&w, due_ns);
    rq_write_varint(&w, timestamp_ns);
    rq_write_varint(&w, records->count);
    rq_write_bytes(&w, records->data, records->size);
    return w.err ? 0 : w.len;
}

size_t delay_release_encode(uint8_t *buf, size_t cap, const struct delay_table *t,
                            const struct delay_item *it, uint64_t base_offset,
                            uint64_t timestamp_ns) {
    RQ_ASSERT(it >= t->items && it < t->items + t->count);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, PARTITION_ENTRY_RELEASE);
    rq_write_varint(&w, it->raft_index);
    rq_write_varint(&w, base_offset);
    rq_write_varint(&w, timestamp_ns);
    rq_write_varint(&w, it->record_count);
    rq_write_bytes(&w, t->bytes + it->at, it->size);
    return w.err ? 0 : w.len;
}

int delay_entry_decode(const uint8_t *data, size_t size, struct delayed_entry *out) {
    memset(out, 0, sizeof *out);
    struct rq_reader r;
    rq_reader_init(&r, data, size);
    rq_read_u8(&r, &out->kind);
    if (r.err == 0 && out->kind != PARTITION_ENTRY_DELAYED && out->kind != PARTITION_ENTRY_RELEASE)
        r.err = RQ_ECORRUPT;
    if (out->kind == PARTITION_ENTRY_DELAYED) {
        out->due_ns = rq_read_varint_min(&r);
    } else {
        out->delayed_index = rq_read_varint_min(&r);
        out->base_offset = rq_read_varint_min(&r);
    }
    out->timestamp_ns = rq_read_varint_min(&r);
    uint64_t count = rq_read_varint_min(&r);
    int err = r.err;
    if (err == 0 && count == 0) err = RQ_ECORRUPT;
    if (err == 0 && count > PROTO_RECORDS_MAX) err = RQ_ETOOBIG;
    if (err == 0 && out->kind == PARTITION_ENTRY_RELEASE && out->delayed_index == 0)
        err = RQ_ECORRUPT;
    if (err == 0)
        err = proto_records_decode(data + r.pos, size - r.pos, (uint32_t)count, 0, &out->records);
    if (err != 0) memset(out, 0, sizeof *out);
    return err;
}

/* ---- the table -------------------------------------------------------------------------------- */

const struct delay_item *delay_table_find(const struct delay_table *t, uint64_t raft_index) {
    for (uint32_t i = 0; i < t->count; i++)
        if (t->items[i].raft_index == raft_index) return &t->items[i];
    return NULL;
}

int delay_table_fits(const struct delay_table *t, size_t size) {
    return t->count < PARTITION_DELAYED_MAX && size <= PARTITION_DELAYED_BYTES_MAX - t->used;
}

void delay_table_add(struct delay_table *t, uint64_t raft_index, const struct delayed_entry *e) {
    RQ_ASSERT(e->kind == PARTITION_ENTRY_DELAYED);
    RQ_ASSERT(delay_table_fits(t, e->records.size));
    RQ_ASSERT(t->count == 0 || t->items[t->count - 1].raft_index < raft_index);
    struct delay_item *it = &t->items[t->count++];
    *it = (struct delay_item){.raft_index = raft_index, .due_ns = e->due_ns,
                              .timestamp_ns = e->timestamp_ns, .record_count = e->records.count,
                              .at = t->used, .size = (uint32_t)e->records.size};
    memcpy(t->bytes + t->used, e->records.data, e->records.size);
    t->used += it->size;
}

void delay_table_remove(struct delay_table *t, uint64_t raft_index) {
    const struct delay_item *found = delay_table_find(t, raft_index);
    RQ_ASSERT(found != NULL);
    uint32_t i = (uint32_t)(found - t->items);
    struct delay_item gone = *found;
    memmove(t->bytes + gone.at, t->bytes + gone.at + gone.size, t->used - gone.at - gone.size);
    t->used -= gone.size;
    memmove(&t->items[i], &t->items[i + 1], (t->count - i - 1) * sizeof t->items[0]);
    t->count--;
    for (uint32_t k = i; k < t->count; k++) t->items[k].at -= gone.size;
}

uint64_t delay_table_next_due(const struct delay_table *t) {
    uint64_t due = UINT64_MAX;
    for (uint32_t i = 0; i < t->count; i++)
        if (t->items[i].due_ns < due) due = t->items[i].due_ns;
    return due;
}

/* ---- the image -------------------------------------------------------------------------------- */

void delay_table_write(const struct delay_table *t, struct rq_writer *w) {
    rq_write_varint(w, t->count);
    for (uint32_t i = 0; i < t->count; i++) {
        const struct delay_item *it = &t->items[i];
        rq_write_varint(w, it->raft_index);
        rq_write_varint(w, it->due_ns);
        rq_write_varint(w, it->timestamp_ns);
        rq_write_varint(w, it->record_count);
        rq_write_varint(w, it->size);
        rq_write_bytes(w, t->bytes + it->at, it->size);
    }
}

void delay_table_read(struct rq_reader *r, uint64_t applied_index, struct delay_table *out) {
    uint64_t count = rq_read_varint_min(r);
    if (r->err == 0 && count > PARTITION_DELAYED_MAX) r->err = RQ_ECORRUPT;
    uint64_t prev = 0, used = 0;
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        struct delay_item it = {.raft_index = rq_read_varint_min(r),
                                .due_ns = rq_read_varint_min(r),
                                .timestamp_ns = rq_read_varint_min(r)};
        uint64_t records = rq_read_varint_min(r), size = rq_read_varint_min(r);
        const uint8_t *data = NULL;
        struct proto_records rs;
        if (r->err == 0 && (it.raft_index <= prev || it.raft_index > applied_index ||
                            records == 0 || records > PROTO_RECORDS_MAX ||
                            size > PARTITION_DELAYED_BYTES_MAX - used))
            r->err = RQ_ECORRUPT;
        if (r->err == 0) rq_read_bytes(r, (size_t)size, &data);
        if (r->err == 0 && proto_records_decode(data, (size_t)size, (uint32_t)records, 0, &rs) != 0)
            r->err = RQ_ECORRUPT;
        if (r->err != 0) break;
        it.record_count = (uint32_t)records;
        it.at = (uint32_t)used;
        it.size = (uint32_t)size;
        if (out != NULL) {
            out->items[i] = it;
            memcpy(out->bytes + used, data, (size_t)size);
        }
        prev = it.raft_index;
        used += size;
    }
    if (r->err == 0 && out != NULL) {
        out->count = (uint32_t)count;
        out->used = (uint32_t)used;
    }
}
