/* Fuzz target: recovery's decoders on arbitrary bytes — a WAL file image and a segment file image.
 *
 * Input: byte 0 = flags (bit 0: the WAL image is the last file, so a torn tail may be accepted;
 * bit 1: the segment scan must continue an expected index/offset/term), bytes 1..2 = where the
 * WAL image ends (little-endian, clamped), then the WAL image, then the segment image. Both
 * decoders must stay inside their buffers (ASan), allocate nothing, and report consistent
 * results; every record and block they accept is walked and checked against its buffer. */
#include <stddef.h>
#include <stdint.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "store/block.h"
#include "store/segment.h"
#include "store/wal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct span {
    const uint8_t *lo;
    const uint8_t *hi;
    uint64_t records;
    uint64_t last_lsn;
};

static void on_record(void *arg, const struct store_wal_record *rec) {
    struct span *sp = arg;
    RQ_ASSERT(rec->kind == STORE_WAL_ENTRY || rec->kind == STORE_WAL_TRUNCATE);
    if (rec->payload_size) RQ_ASSERT(rec->payload >= sp->lo && rec->payload + rec->payload_size <= sp->hi);
    RQ_ASSERT(rec->lsn > sp->last_lsn);  /* LSNs strictly increase */
    sp->last_lsn = rec->lsn;
    sp->records++;
}

static int on_block(void *arg, size_t position, const uint8_t *block, const struct store_block_header *h,
                    uint64_t message_count) {
    struct span *sp = arg;
    RQ_ASSERT(block == sp->lo + position);
    RQ_ASSERT(h->first_index <= h->last_index);
    struct store_block_cursor c;
    store_block_cursor_init(&c, block, h);
    struct store_entry e;
    uint64_t entries = 0, messages = 0;
    while (store_block_cursor_next(&c, &e)) {
        RQ_ASSERT(e.index == h->first_index + entries);
        RQ_ASSERT(e.term == h->term);
        if (e.payload_size) RQ_ASSERT(e.payload >= block && e.payload + e.payload_size <= sp->hi);
        messages += e.message_count;
        entries++;
    }
    RQ_ASSERT(entries == h->entry_count);
    RQ_ASSERT(messages == message_count);
    sp->records += entries;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    uint8_t flags = data[0];
    size_t wal_len = rq_get_u16(data + 1);
    const uint8_t *body = data + 3;
    size_t body_len = size - 3;
    if (wal_len > body_len) wal_len = body_len;

    struct span wal = {body, body + wal_len, 0, 0};
    struct store_wal_file_scan ws;
    int rc = store_wal_scan_file(body, wal_len, 0, flags & 1, on_record, &wal, &ws);
    RQ_ASSERT(rc == 0 || rc == RQ_ECORRUPT);
    RQ_ASSERT(ws.valid_size <= wal_len);
    if (rc == 0) RQ_ASSERT(ws.valid_size + ws.torn_size == wal_len);
    if (rc == 0 && ws.torn_size) RQ_ASSERT(flags & 1);  /* only the last file may be torn */
    if (rc != 0) RQ_ASSERT(ws.why != NULL);
    RQ_ASSERT(ws.records == wal.records);

    const uint8_t *seg = body + wal_len;
    size_t seg_len = body_len - wal_len;
    struct span sp = {seg, seg + seg_len, 0, 0};
    struct store_segment_scan scan = {0};
    scan.block_size_limit = STORE_BLOCK_SIZE_MAX;
    if (flags & 2) {
        scan.next_index = 1;
        scan.have_offset = 1;
        scan.next_offset = 0;
        scan.last_term = 1;
    }
    enum store_segment_scan_status st = store_segment_scan(seg, seg_len, &scan, on_block, &sp);
    RQ_ASSERT(scan.valid_size <= seg_len);
    if (st == STORE_SEGMENT_SCAN_END) RQ_ASSERT(scan.valid_size == seg_len);
    if (st == STORE_SEGMENT_SCAN_SHORT || st == STORE_SEGMENT_SCAN_INVALID) RQ_ASSERT(scan.problem != NULL);
    return 0;
}
