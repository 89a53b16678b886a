/* cursor.c — consumer groups' cursors in a partition: the CURSOR entry, its rules, the table in
 * the image. cursor.h gives the contract. */
#include "broker/cursor.h"

#include <string.h>

#include "base/assert.h"
#include "base/errors.h"

static int op_valid(const struct cursor_entry *e) {
    switch (e->op) {
    case CURSOR_CLAIM: return e->generation >= 1 && e->member >= 1 && e->offset == 0;
    case CURSOR_COMMIT: return e->generation >= 1 && e->member >= 1;
    case CURSOR_RESET: return e->generation == 0 && e->member == 0;
    default: return 0;
    }
}

size_t cursor_entry_encode(uint8_t *buf, size_t cap, const struct cursor_entry *e) {
    RQ_ASSERT(op_valid(e));
    RQ_ASSERT(proto_cursor_valid(e->name.data, e->name.size));
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, PARTITION_ENTRY_CURSOR);
    rq_write_u8(&w, e->op);
    rq_write_varint(&w, e->name.size);
    rq_write_bytes(&w, e->name.data, e->name.size);
    rq_write_varint(&w, e->generation);
    rq_write_varint(&w, e->member);
    rq_write_varint(&w, e->offset);
    if (cap >= CURSOR_ENTRY_MAX) RQ_ASSERT(w.err == 0);
    return w.err ? 0 : w.len;
}

/* A name field: a varint length (1..max) and the bytes, pointed at in place. */
static struct proto_bytes read_name(struct rq_reader *r, size_t max) {
    struct proto_bytes name = {0};
    uint64_t n = rq_read_varint_min(r);
    if (r->err == 0 && (n == 0 || n > max)) r->err = n ? RQ_ETOOBIG : RQ_ECORRUPT;
    if (r->err == 0 && rq_read_bytes(r, (size_t)n, &name.data) == 0) name.size = (uint32_t)n;
    return name;
}

int cursor_entry_decode(const uint8_t *data, size_t size, struct cursor_entry *out) {
    memset(out, 0, sizeof *out);
    struct rq_reader r;
    rq_reader_init(&r, data, size);
    uint8_t kind = 0;
    rq_read_u8(&r, &kind);
    rq_read_u8(&r, &out->op);
    if (r.err == 0 && kind != PARTITION_ENTRY_CURSOR) r.err = RQ_ECORRUPT;
    out->name = read_name(&r, PROTO_CURSOR_MAX);
    out->generation = rq_read_varint_min(&r);
    out->member = rq_read_varint_min(&r);
    out->offset = rq_read_varint_min(&r);
    int err = r.err;
    if (err == 0 && rq_reader_remaining(&r) != 0) err = RQ_ECORRUPT;
    if (err == 0 && (!op_valid(out) || !proto_cursor_valid(out->name.data, out->name.size)))
        err = RQ_ECORRUPT;
    if (err != 0) memset(out, 0, sizeof *out);
    return err;
}

/* ---- the table -------------------------------------------------------------------------------- */

static int name_compare(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0) return c;
    return an < bn ? -1 : an > bn;
}

/* The slot of name, or where it would go; *known says which. */
static uint32_t table_slot(const struct cursor_table *t, struct proto_bytes name, int *known) {
    uint32_t lo = 0, hi = t->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct partition_cursor *c = &t->cursors[mid];
        if (name_compare(c->name, c->name_size, name.data, name.size) < 0) lo = mid + 1;
        else hi = mid;
    }
    *known = lo < t->count &&
             name_compare(t->cursors[lo].name, t->cursors[lo].name_size, name.data, name.size) == 0;
    return lo;
}

const struct partition_cursor *cursor_table_find(const struct cursor_table *t,
                                                 struct proto_bytes name) {
    int known;
    uint32_t slot = table_slot(t, name, &known);
    return known ? &t->cursors[slot] : NULL;
}

int cursor_table_owns(const struct cursor_table *t, struct proto_bytes name, uint64_t generation,
                      uint64_t member) {
    const struct partition_cursor *c = cursor_table_find(t, name);
    return c != NULL && member != 0 && c->owner == member && c->generation == generation;
}

void cursor_decide(const struct cursor_table *t, const struct cursor_entry *e, uint64_t log_start,
                   uint64_t next_offset, struct cursor_decision *d) {
    memset(d, 0, sizeof *d);
    d->slot = table_slot(t, e->name, &d->known);
    const struct partition_cursor *c = d->known ? &t->cursors[d->slot] : NULL;
    d->committed = c ? c->committed : PROTO_NO_OFFSET;
    int held = c != NULL && c->owner == e->member && c->generation == e->generation;
    switch (e->op) {
    case CURSOR_CLAIM:   /* after a reset (no owner), its generation may claim again */
        if (c != NULL && !held && e->generation < c->generation) d->error = RQ_EFENCED;
        if (c != NULL && !held && e->generation == c->generation && c->owner != 0)
            d->error = RQ_EFENCED;
        break;
    case CURSOR_COMMIT:
        if (!held) d->error = RQ_EFENCED;
        else if (e->offset > next_offset) d->error = RQ_ERANGE;
        else if (c->committed == PROTO_NO_OFFSET || e->offset > c->committed)
            d->committed = e->offset;
        break;
    case CURSOR_RESET:
        if (e->offset < log_start || e->offset > next_offset) d->error = RQ_ERANGE;
        else d->committed = e->offset;
        break;
    default: RQ_UNREACHABLE();
    }
    if (d->error == 0 && c == NULL && t->count == PARTITION_CURSORS_MAX) d->error = RQ_ENOMEM;
}

void cursor_apply(struct cursor_table *t, const struct cursor_entry *e,
                  const struct cursor_decision *d) {
    RQ_ASSERT(d->error == 0);
    RQ_ASSERT(d->slot <= t->count);
    if (!d->known) {
        RQ_ASSERT(t->count < PARTITION_CURSORS_MAX && e->op != CURSOR_COMMIT);
        memmove(&t->cursors[d->slot + 1], &t->cursors[d->slot],
                (t->count - d->slot) * sizeof t->cursors[0]);
        t->count++;
        struct partition_cursor *n = &t->cursors[d->slot];
        memset(n, 0, sizeof *n);
        memcpy(n->name, e->name.data, e->name.size);
        n->name_size = e->name.size;
        n->committed = PROTO_NO_OFFSET;
    }
    struct partition_cursor *c = &t->cursors[d->slot];
    if (e->op == CURSOR_CLAIM) {
        c->generation = e->generation;
        c->owner = e->member;
    }
    if (e->op == CURSOR_RESET) c->owner = 0;   /* fences the holder: it must claim anew */
    c->committed = d->committed;
}

/* ---- the image -------------------------------------------------------------------------------- */

void cursor_table_write(const struct cursor_table *t, struct rq_writer *w) {
    RQ_ASSERT(t->count <= PARTITION_CURSORS_MAX);
    rq_write_varint(w, t->count);
    for (uint32_t i = 0; i < t->count; i++) {
        const struct partition_cursor *c = &t->cursors[i];
        rq_write_varint(w, c->name_size);
        rq_write_bytes(w, c->name, c->name_size);
        rq_write_varint(w, c->generation);
        rq_write_varint(w, c->owner);
        rq_write_varint(w, c->committed);
    }
}

void cursor_table_read(struct rq_reader *r, uint64_t next_offset, struct cursor_table *out) {
    uint64_t count = rq_read_varint_min(r);
    if (r->err == 0 && count > PARTITION_CURSORS_MAX) r->err = RQ_ECORRUPT;
    struct proto_bytes prev = {0};
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        struct proto_bytes name = read_name(r, PROTO_CURSOR_MAX);
        uint64_t generation = rq_read_varint_min(r);
        uint64_t owner = rq_read_varint_min(r);
        uint64_t committed = rq_read_varint_min(r);
        if (r->err != 0) break;
        int bad = !proto_cursor_valid(name.data, name.size) ||
                  (i > 0 && name_compare(prev.data, prev.size, name.data, name.size) >= 0) ||
                  (committed != PROTO_NO_OFFSET && committed > next_offset) ||
                  (owner != 0 && generation == 0);
        if (bad) r->err = RQ_ECORRUPT;
        prev = name;
        if (bad || out == NULL) continue;
        struct partition_cursor *c = &out->cursors[i];
        memset(c, 0, sizeof *c);
        memcpy(c->name, name.data, name.size);
        c->name_size = name.size;
        c->generation = generation;
        c->owner = owner;
        c->committed = committed;
    }
    if (r->err == 0 && out != NULL) out->count = (uint32_t)count;
}
