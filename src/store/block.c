/* block.c — encode, check and walk blocks; see block.h for the format. Pure: no I/O, no
 * allocation, every read bounded by the length given. */
#include "store/block.h"

#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"

_Static_assert(STORE_BLOCK_HEADER_SIZE == 64, "the block header is 64 bytes (see block.h)");
_Static_assert(STORE_BLOCK_ENTRY_HEADER_SIZE == 16, "an entry header is 16 bytes (see block.h)");
_Static_assert(STORE_BLOCK_HEADER_CRC_OFFSET + 4 == 16, "header crc covers bytes 16..63");
_Static_assert(STORE_BLOCK_SIZE_MIN >= STORE_BLOCK_HEADER_SIZE + STORE_BLOCK_ENTRY_HEADER_SIZE,
               "the smallest block holds one empty entry");
_Static_assert(STORE_BLOCK_SIZE_MAX <= (1 << 30), "block sizes fit u32 arithmetic with room");

static uint32_t header_crc(const uint8_t *p) { return rq_crc32c(0, p + 16, 48); }

static uint32_t block_crc(const uint8_t *p, uint32_t payload_size) {
    uint32_t crc = rq_crc32c(0, p + 12, STORE_BLOCK_HEADER_SIZE - 12);
    return rq_crc32c(crc, p + STORE_BLOCK_HEADER_SIZE, payload_size);
}

enum store_block_status store_block_check_header(const uint8_t *p, size_t len, uint32_t limit,
                                                 struct store_block_header *h,
                                                 const char **problem) {
    RQ_ASSERT(limit >= STORE_BLOCK_SIZE_MIN && limit <= STORE_BLOCK_SIZE_MAX);
    *problem = NULL;
    if (len < STORE_BLOCK_HEADER_SIZE) {
        *problem = "block header cut short";
        return STORE_BLOCK_SHORT;
    }
    if (rq_get_u32(p) != (uint32_t)STORE_BLOCK_MAGIC) {
        *problem = "bad block magic";
        return STORE_BLOCK_BAD;
    }
    if (rq_get_u16(p + 4) != STORE_BLOCK_VERSION) {
        *problem = "unknown block version";
        return STORE_BLOCK_BAD;
    }
    if (rq_get_u16(p + 6) != 0) {
        *problem = "unknown block flags";
        return STORE_BLOCK_BAD;
    }
    if (rq_get_u32(p + STORE_BLOCK_HEADER_CRC_OFFSET) != header_crc(p)) {
        *problem = "block header checksum mismatch";
        return STORE_BLOCK_BAD;
    }
    h->term = rq_get_u64(p + 16);
    h->first_index = rq_get_u64(p + 24);
    h->last_index = rq_get_u64(p + 32);
    h->first_offset = rq_get_u64(p + 40);
    h->entry_count = rq_get_u32(p + 48);
    h->payload_size = rq_get_u32(p + 52);
    h->timestamp = rq_get_u64(p + 56);
    if (h->term == 0 || h->first_index == 0 || h->entry_count == 0) {
        *problem = "block term, first index or entry count is 0";
        return STORE_BLOCK_BAD;
    }
    if (h->last_index == UINT64_MAX) {
        *problem = "block last index is the largest index";
        return STORE_BLOCK_BAD;
    }
    if (h->last_index < h->first_index || h->last_index - h->first_index != h->entry_count - 1) {
        *problem = "block last index does not match first index and entry count";
        return STORE_BLOCK_BAD;
    }
    if ((uint64_t)h->payload_size + STORE_BLOCK_HEADER_SIZE > limit) {
        *problem = "block larger than the block size limit";
        return STORE_BLOCK_BAD;
    }
    if ((uint64_t)h->entry_count * STORE_BLOCK_ENTRY_HEADER_SIZE > h->payload_size) {
        *problem = "block payload too small for its entry count";
        return STORE_BLOCK_BAD;
    }
    if (len < (size_t)store_block_size(h)) {
        *problem = "block cut short";
        return STORE_BLOCK_SHORT;
    }
    return STORE_BLOCK_OK;
}

enum store_block_status store_block_check(const uint8_t *p, size_t len, uint32_t limit,
                                          struct store_block_header *h, uint64_t *message_count,
                                          const char **problem) {
    enum store_block_status st = store_block_check_header(p, len, limit, h, problem);
    if (st != STORE_BLOCK_OK) return st;
    if (rq_get_u32(p + STORE_BLOCK_CRC_OFFSET) != block_crc(p, h->payload_size)) {
        *problem = "block checksum mismatch";
        return STORE_BLOCK_BAD;
    }
    /* Walk the entries: exactly entry_count of them, exactly filling the payload. */
    const uint8_t *at = p + STORE_BLOCK_HEADER_SIZE;
    const uint8_t *end = at + h->payload_size;
    uint64_t messages = 0;
    uint64_t newest = 0;
    for (uint32_t k = 0; k < h->entry_count; k++) {
        if ((size_t)(end - at) < STORE_BLOCK_ENTRY_HEADER_SIZE) {
            *problem = "entry header runs past the block payload";
            return STORE_BLOCK_BAD;
        }
        uint32_t count = rq_get_u32(at);
        uint32_t size = rq_get_u32(at + 4);
        uint64_t timestamp = rq_get_u64(at + 8);
        at += STORE_BLOCK_ENTRY_HEADER_SIZE;
        if ((size_t)(end - at) < size) {
            *problem = "entry payload runs past the block payload";
            return STORE_BLOCK_BAD;
        }
        at += size;
        messages += count; /* < 2^17 entries (limit / 16) of < 2^32: no overflow */
        if (timestamp > newest) newest = timestamp;
    }
    if (at != end) {
        *problem = "block payload longer than its entries";
        return STORE_BLOCK_BAD;
    }
    if (newest != h->timestamp) {
        *problem = "block timestamp is not its newest entry's";
        return STORE_BLOCK_BAD;
    }
    if (h->first_offset > UINT64_MAX - messages) {
        *problem = "message offsets overflow";
        return STORE_BLOCK_BAD;
    }
    *message_count = messages;
    return STORE_BLOCK_OK;
}

void store_block_cursor_init(struct store_block_cursor *c, const uint8_t *block,
                             const struct store_block_header *h) {
    c->next = block + STORE_BLOCK_HEADER_SIZE;
    c->end = c->next + h->payload_size;
    c->index = h->first_index;
    c->offset = h->first_offset;
    c->term = h->term;
}

int store_block_cursor_next(struct store_block_cursor *c, struct store_entry *e) {
    if (c->next == c->end) return 0;
    RQ_ASSERT(c->end - c->next >= STORE_BLOCK_ENTRY_HEADER_SIZE);
    e->index = c->index;
    e->term = c->term;
    e->first_offset = c->offset;
    e->message_count = rq_get_u32(c->next);
    e->payload_size = rq_get_u32(c->next + 4);
    e->timestamp = rq_get_u64(c->next + 8);
    e->payload = c->next + STORE_BLOCK_ENTRY_HEADER_SIZE;
    RQ_ASSERT((size_t)(c->end - e->payload) >= e->payload_size);
    c->next = e->payload + e->payload_size;
    c->index++;
    c->offset += e->message_count;
    return 1;
}

void store_block_writer_start(struct store_block_writer *w, uint8_t *block, uint32_t cap,
                              uint64_t term, uint64_t first_index, uint64_t first_offset) {
    RQ_ASSERT(cap >= STORE_BLOCK_HEADER_SIZE + STORE_BLOCK_ENTRY_HEADER_SIZE);
    RQ_ASSERT(cap <= STORE_BLOCK_SIZE_MAX);
    RQ_ASSERT(term >= 1);
    RQ_ASSERT(first_index >= 1);
    memset(w, 0, sizeof *w);
    w->block = block;
    w->cap = cap;
    w->size = STORE_BLOCK_HEADER_SIZE;
    w->h.term = term;
    w->h.first_index = first_index;
    w->h.first_offset = first_offset;
}

int store_block_writer_fits(const struct store_block_writer *w, const struct store_entry *e) {
    if (e->term != w->h.term) return 0;
    if (w->h.entry_count == UINT32_MAX) return 0;
    if (w->message_count + e->message_count > UINT32_MAX) return 0; /* keeps sums small */
    return (uint64_t)w->size + store_block_entry_size(e->payload_size) <= w->cap;
}

void store_block_writer_add(struct store_block_writer *w, const struct store_entry *e) {
    RQ_ASSERT(store_block_writer_fits(w, e));
    RQ_ASSERT(e->index == w->h.first_index + w->h.entry_count);
    uint8_t *at = w->block + w->size;
    rq_put_u32(at, e->message_count);
    rq_put_u32(at + 4, e->payload_size);
    rq_put_u64(at + 8, e->timestamp);
    if (e->payload_size > 0)
        memcpy(at + STORE_BLOCK_ENTRY_HEADER_SIZE, e->payload, e->payload_size);
    w->size += store_block_entry_size(e->payload_size);
    w->h.entry_count++;
    w->h.last_index = e->index;
    w->h.payload_size = w->size - STORE_BLOCK_HEADER_SIZE;
    if (e->timestamp > w->h.timestamp) w->h.timestamp = e->timestamp;
    w->message_count += e->message_count;
}

static void write_header(uint8_t *p, const struct store_block_header *h) {
    rq_put_u32(p, (uint32_t)STORE_BLOCK_MAGIC);
    rq_put_u16(p + 4, STORE_BLOCK_VERSION);
    rq_put_u16(p + 6, 0);
    rq_put_u64(p + 16, h->term);
    rq_put_u64(p + 24, h->first_index);
    rq_put_u64(p + 32, h->last_index);
    rq_put_u64(p + 40, h->first_offset);
    rq_put_u32(p + 48, h->entry_count);
    rq_put_u32(p + 52, h->payload_size);
    rq_put_u64(p + 56, h->timestamp);
    rq_put_u32(p + STORE_BLOCK_HEADER_CRC_OFFSET, header_crc(p));
    rq_put_u32(p + STORE_BLOCK_CRC_OFFSET, block_crc(p, h->payload_size));
}

uint32_t store_block_writer_finish(struct store_block_writer *w) {
    RQ_ASSERT(w->h.entry_count >= 1);
    write_header(w->block, &w->h);
    return w->size;
}

uint32_t store_block_cut(uint8_t *block, struct store_block_header *h, uint32_t keep_count) {
    RQ_ASSERT(keep_count >= 1 && keep_count < h->entry_count);
    struct store_block_cursor c;
    store_block_cursor_init(&c, block, h);
    struct store_entry e;
    uint64_t newest = 0;
    for (uint32_t k = 0; k < keep_count; k++) {
        int more = store_block_cursor_next(&c, &e);
        RQ_ASSERT(more);
        if (e.timestamp > newest) newest = e.timestamp;
    }
    h->entry_count = keep_count;
    h->last_index = h->first_index + keep_count - 1;
    h->payload_size = (uint32_t)(c.next - (block + STORE_BLOCK_HEADER_SIZE));
    h->timestamp = newest;
    write_header(block, h);
    return store_block_size(h);
}
