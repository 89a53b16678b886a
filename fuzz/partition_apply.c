/* Fuzz target: the partition state machine (src/broker/partition.c).
 *
 * The input is a script of chunks, each a u16 little-endian length and that many bytes (a chunk
 * cut short ends the script). The first chunk is an image: two replicas restore it (both refuse it
 * or both take it; a taken image must write itself back byte for byte). Every later chunk is an
 * entry, previewed on replica A and then applied to A and B at the next Raft index: the preview,
 * both applies (one result per batch) and every counter must agree, a batch that decodes must
 * re-encode to its very bytes (a SHARED entry that splits, too), offsets only grow by what was
 * appended, and a SHARED entry's batches applied one by one to a copy (a leader's tip, each
 * previewed first) must give the same results and state as the entry applied whole. At the end
 * A and B must have the same image, and that image must restore into a third replica that writes
 * it back unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "broker/partition.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { CHUNKS_MAX = 4096 };

static struct partition_sm a, b, c;
static uint8_t image_a[PARTITION_IMAGE_MAX], image_b[PARTITION_IMAGE_MAX];
static uint8_t scratch[1 << 17], packed[1 << 17];
static struct partition_sm tip;
static struct partition_split split;

static void same_result(const struct partition_apply_result *x,
                        const struct partition_apply_result *y) {
    RQ_ASSERT(x->outcome == y->outcome);
    RQ_ASSERT(x->error == y->error);
    RQ_ASSERT(x->base_offset == y->base_offset);
    RQ_ASSERT(x->record_count == y->record_count);
    RQ_ASSERT(x->producer_id == y->producer_id);
    RQ_ASSERT(x->evicted_producer == y->evicted_producer);
}

/* A batch that decodes has exactly one encoding: its own bytes; so has a SHARED entry. */
static void check_canonical(const uint8_t *entry, size_t size) {
    RQ_ASSERT(size <= sizeof scratch);
    if (size > 0 && entry[0] == PARTITION_ENTRY_SHARED) {
        if (partition_entry_split(entry, size, &split) != 0) return;
        uint32_t sizes[PARTITION_SHARED_MAX];
        size_t at = 0;
        for (uint32_t k = 0; k < split.count; k++) {   /* the batches packed back to back */
            sizes[k] = (uint32_t)split.size[k];
            memcpy(packed + at, split.data[k], split.size[k]);
            at += split.size[k];
        }
        size_t n = partition_shared_encode(scratch, sizeof scratch, packed, sizes, split.count);
        RQ_ASSERT(n == size);
        RQ_ASSERT(memcmp(scratch, entry, size) == 0);
        return;
    }
    if (size > 0 && entry[0] == PARTITION_ENTRY_CURSOR) {
        struct cursor_entry c;
        if (cursor_entry_decode(entry, size, &c) != 0) return;
        RQ_ASSERT(cursor_entry_encode(scratch, sizeof scratch, &c) == size);
        RQ_ASSERT(memcmp(scratch, entry, size) == 0);
        return;
    }
    if (size > 0 && (entry[0] == PARTITION_ENTRY_DELAYED || entry[0] == PARTITION_ENTRY_RELEASE)) {
        struct delayed_entry d;
        if (delay_entry_decode(entry, size, &d) != 0) return;
        struct rq_writer w;   /* the layout of delay.h, written back */
        rq_writer_init(&w, scratch, sizeof scratch);
        rq_write_u8(&w, d.kind);
        if (d.kind == PARTITION_ENTRY_DELAYED) rq_write_varint(&w, d.due_ns);
        if (d.kind == PARTITION_ENTRY_RELEASE) rq_write_varint(&w, d.delayed_index);
        if (d.kind == PARTITION_ENTRY_RELEASE) rq_write_varint(&w, d.base_offset);
        rq_write_varint(&w, d.timestamp_ns);
        rq_write_varint(&w, d.records.count);
        rq_write_bytes(&w, d.records.data, d.records.size);
        RQ_ASSERT(w.err == 0 && w.len == size);
        RQ_ASSERT(memcmp(scratch, entry, size) == 0);
        return;
    }
    struct partition_entry e;
    if (partition_entry_decode(entry, size, &e) != 0) return;
    RQ_ASSERT(size <= sizeof scratch);
    size_t n = e.kind == PARTITION_ENTRY_RETAIN
                   ? partition_retain_encode(scratch, sizeof scratch, e.log_start)
                   : partition_entry_encode(scratch, sizeof scratch, e.base_offset, e.producer_id,
                                            e.base_sequence, e.timestamp_ns, &e.records);
    RQ_ASSERT(n == size);
    RQ_ASSERT(memcmp(scratch, entry, size) == 0);
}

/* A SHARED entry that splits, built part by part on a copy of the state before it (a leader's
 * tip): each part's preview, its apply and the whole entry's result agree, and so do the states. */
static void check_parts(uint64_t index, const uint8_t *entry, size_t size,
                        const struct partition_apply_result *whole, uint32_t n) {
    if (size == 0 || entry[0] != PARTITION_ENTRY_SHARED) return;
    if (partition_entry_split(entry, size, &split) != 0) return;
    RQ_ASSERT(split.count == n);
    for (uint32_t k = 0; k < n; k++) {
        struct partition_apply_result preview, part;
        partition_sm_preview(&tip, split.data[k], split.size[k], &preview);
        partition_sm_apply_part(&tip, index, k, split.data[k], split.size[k], &part);
        same_result(&preview, &part);
        same_result(&part, &whole[k]);
    }
    size_t na = partition_sm_image(&a, image_a, sizeof image_a);
    size_t nt = partition_sm_image(&tip, image_b, sizeof image_b);
    RQ_ASSERT(na > 0);
    RQ_ASSERT(na == nt);
    RQ_ASSERT(memcmp(image_a, image_b, na) == 0);
}

static void apply_one(uint64_t index, const uint8_t *entry, size_t size) {
    struct partition_apply_result preview, ra[PARTITION_SHARED_MAX], rb[PARTITION_SHARED_MAX];
    uint64_t next = a.next_offset, appended = 0;
    int shared = size > 0 && entry[0] == PARTITION_ENTRY_SHARED;
    if (shared) partition_sm_copy(&tip, &a);   /* the state before: check_parts' tip */
    partition_sm_preview(&a, entry, size, &preview);
    uint32_t n = partition_sm_apply_entry(&a, index, entry, size, ra);
    RQ_ASSERT(partition_sm_apply_entry(&b, index, entry, size, rb) == n);
    RQ_ASSERT(n >= 1);
    RQ_ASSERT(n <= PARTITION_SHARED_MAX);
    same_result(&preview, &ra[0]);
    for (uint32_t k = 0; k < n; k++) {
        same_result(&ra[k], &rb[k]);
        if (ra[k].outcome != PARTITION_APPENDED) continue;
        RQ_ASSERT(ra[k].base_offset == next + appended);   /* dense across the entry's batches */
        appended += ra[k].record_count;
    }
    RQ_ASSERT(a.next_offset == b.next_offset);
    RQ_ASSERT(a.next_offset == next + appended);
    RQ_ASSERT(a.applied_index == index);
    if (ra[0].outcome == PARTITION_RETAINED)   /* retention: forward, within the log */
        RQ_ASSERT(n == 1 && a.log_start_offset == ra[0].base_offset && a.log_start_offset <= next);
    RQ_ASSERT(a.log_start_offset == b.log_start_offset && a.log_start_offset <= a.next_offset);
    check_canonical(entry, size);
    if (shared) check_parts(index, entry, size, ra, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    partition_sm_init(&a);
    partition_sm_init(&b);
    partition_sm_init(&c);
    size_t at = 0;
    uint64_t index = 0;
    for (uint32_t chunk = 0; chunk < CHUNKS_MAX && size - at >= 2; chunk++) {
        size_t n = rq_get_u16(data + at);
        at += 2;
        if (n > size - at) break;
        const uint8_t *p = n ? data + at : NULL;
        at += n;
        if (chunk == 0) {
            int ea = partition_sm_restore(&a, p, n), eb = partition_sm_restore(&b, p, n);
            RQ_ASSERT(ea == eb);
            RQ_ASSERT(ea == 0 || ea == RQ_ECORRUPT);
            /* An image of the current version writes itself back byte for byte; an older one
             * (byte 4: version 1 without cursors, 2 without delays) is written at the current
             * version, which the end's round trip checks. */
            if (ea == 0 && p[4] == PARTITION_IMAGE_VERSION) {
                RQ_ASSERT(partition_sm_image(&a, image_a, sizeof image_a) == n);
                RQ_ASSERT(memcmp(image_a, p, n) == 0);
            }
            index = a.applied_index;
            continue;
        }
        if (index == UINT64_MAX) break;   /* an image at the last index: nothing can follow */
        apply_one(++index, p, n);
    }
    size_t na = partition_sm_image(&a, image_a, sizeof image_a);
    size_t nb = partition_sm_image(&b, image_b, sizeof image_b);
    RQ_ASSERT(na > 0 && na == nb && memcmp(image_a, image_b, na) == 0);
    RQ_ASSERT(partition_sm_restore(&c, image_a, na) == 0);
    RQ_ASSERT(partition_sm_image(&c, image_b, sizeof image_b) == na);
    RQ_ASSERT(memcmp(image_a, image_b, na) == 0);
    return 0;
}
