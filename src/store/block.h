/* block.h — the block, unit of the per-group segment files (store/segment.h): encode, check and
 * decode, all pure (no I/O, no allocation), so the recovery scanner and a fuzzer can run on any
 * bytes.
 *
 * A block is a fixed 64-byte self-checking header followed by a payload of entries. All integers
 * are little-endian (base/codec.h).
 *
 *   header, STORE_BLOCK_HEADER_SIZE = 64 bytes:
 *     offset size field
 *          0    4 magic          0x42535152 (the bytes "RQSB")
 *          4    2 version        1
 *          6    2 flags          0 (reserved; any other value is rejected)
 *          8    4 crc            CRC32C of header bytes 12..63, then of the whole payload
 *         12    4 header crc     CRC32C of header bytes 16..63
 *         16    8 term           Raft term of every entry in the block (>= 1)
 *         24    8 first index    Raft index of the first entry (>= 1)
 *         32    8 last index     Raft index of the last entry = first index + entry count - 1
 *         40    8 first offset   message offset of the first message of the first entry
 *         48    4 entry count    >= 1
 *         52    4 payload size   bytes after the header; 64 + payload size <= the block limit
 *         56    8 timestamp      the newest (largest) timestamp of the block's entries
 *
 *   payload: entry count entries back to back, nothing else:
 *     offset size field
 *          0    4 message count  queue messages in the entry (0 for a control record)
 *          4    4 payload size   bytes of entry payload that follow
 *          8    8 timestamp      of the entry's newest message
 *         16    n payload
 *   An entry's index is the block's first index plus its position; its first message offset is
 *   the block's first offset plus the message counts of the entries before it (offsets are dense).
 *
 * Why two checksums: the header crc lets a reader trust the header (and so the block's length)
 * even when the payload is damaged. Recovery needs that to tell a torn write (the file ends before
 * the block the header announces) from rot inside synced data (the block is all there but its crc
 * fails): see "Recovery" in store/segment.h. Magic, version and flags are covered by neither crc
 * but must equal their constants exactly, so every single-bit flip anywhere in a block is caught.
 *
 * A block is checked completely before any of it is believed: header fields, both crcs, and the
 * payload walked entry by entry (sizes must add up exactly, the timestamp must be the maximum, the
 * message counts must not overflow the offsets). */
#ifndef RQ_STORE_BLOCK_H
#define RQ_STORE_BLOCK_H

#include <stddef.h>
#include <stdint.h>

enum {
    STORE_BLOCK_MAGIC = 0x42535152, /* "RQSB" as little-endian bytes */
    STORE_BLOCK_VERSION = 1,
    STORE_BLOCK_HEADER_SIZE = 64,
    STORE_BLOCK_ENTRY_HEADER_SIZE = 16,
    STORE_BLOCK_CRC_OFFSET = 8,         /* crc: header bytes [12, 64) + payload */
    STORE_BLOCK_HEADER_CRC_OFFSET = 12, /* header crc: header bytes [16, 64) */
    STORE_BLOCK_SIZE_MIN = 128,         /* smallest configurable block limit */
    STORE_BLOCK_SIZE_MAX = 1 << 21,     /* 2 MiB: largest block, header included, ever accepted */
};

/* One Raft entry as the store sees it. On append the caller fills index, term, timestamp,
 * message_count, payload and payload_size (first_offset is computed by the store). On read the
 * store fills all of them; payload then points into the store's buffer. */
struct store_entry {
    uint64_t index;
    uint64_t term;
    uint64_t first_offset;
    uint64_t timestamp;
    uint32_t message_count;
    uint32_t payload_size;
    const uint8_t *payload;
};

/* A block header, decoded. */
struct store_block_header {
    uint64_t term;
    uint64_t first_index;
    uint64_t last_index;
    uint64_t first_offset;
    uint64_t timestamp;
    uint32_t entry_count;
    uint32_t payload_size;
};

static inline uint32_t store_block_size(const struct store_block_header *h) {
    return (uint32_t)STORE_BLOCK_HEADER_SIZE + h->payload_size;
}

enum store_block_status {
    STORE_BLOCK_OK = 0,
    STORE_BLOCK_SHORT = 1, /* the bytes end before the block does: fewer than 64 header bytes, or
                              a valid header announcing a block longer than the bytes given */
    STORE_BLOCK_BAD = 2,   /* a complete header (or block) fails a check */
};

/* Checks the 64-byte header at p (len bytes available). limit (STORE_BLOCK_SIZE_MIN ..
 * STORE_BLOCK_SIZE_MAX) bounds the block size. Fills *h when the header is valid. Returns OK (the
 * header is valid and the whole block is within len), SHORT, or BAD with *problem set to a static
 * string. Never reads beyond p[len - 1]. */
enum store_block_status store_block_check_header(const uint8_t *p, size_t len, uint32_t limit,
                                                 struct store_block_header *h,
                                                 const char **problem);

/* Checks a whole block at p: header as above, the crc, and the payload's entries. On OK, fills *h
 * and *message_count (sum of the entries' message counts). */
enum store_block_status store_block_check(const uint8_t *p, size_t len, uint32_t limit,
                                          struct store_block_header *h, uint64_t *message_count,
                                          const char **problem);

/* Walks the entries of a block that store_block_check accepted. */
struct store_block_cursor {
    const uint8_t *next;
    const uint8_t *end;
    uint64_t index;
    uint64_t offset;
    uint64_t term;
};

void store_block_cursor_init(struct store_block_cursor *c, const uint8_t *block,
                             const struct store_block_header *h);
/* Fills *e with the next entry (payload pointing into the block); returns 1, or 0 at the end. */
int store_block_cursor_next(struct store_block_cursor *c, struct store_entry *e);

/* Encoding: a block is built in place in a caller's buffer of cap bytes (cap <= the block limit
 * the caller wants; at most STORE_BLOCK_SIZE_MAX). */
struct store_block_writer {
    uint8_t *block;
    uint32_t cap;
    uint32_t size; /* bytes so far, header included */
    struct store_block_header h;
    uint64_t message_count;
};

static inline uint32_t store_block_entry_size(uint32_t payload_size) {
    return (uint32_t)STORE_BLOCK_ENTRY_HEADER_SIZE + payload_size;
}

void store_block_writer_start(struct store_block_writer *w, uint8_t *block, uint32_t cap,
                              uint64_t term, uint64_t first_index, uint64_t first_offset);
/* Whether e (of the writer's term, index = next in sequence) still fits. */
int store_block_writer_fits(const struct store_block_writer *w, const struct store_entry *e);
/* Appends e; requires writer_fits and e->index == the next index (asserted). */
void store_block_writer_add(struct store_block_writer *w, const struct store_entry *e);
/* Writes the header and both crcs; returns the block size. Requires at least one entry. */
uint32_t store_block_writer_finish(struct store_block_writer *w);

/* Cuts a checked block in place so that it keeps only its first keep_count entries (1 <=
 * keep_count < entry_count): the header is rewritten, the payload prefix stays where it is.
 * Returns the new block size; *h is updated. */
uint32_t store_block_cut(uint8_t *block, struct store_block_header *h, uint32_t keep_count);

#endif
