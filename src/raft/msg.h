/* msg.h — the messages Raft groups exchange, and their byte encoding.
 *
 * A message belongs to one group. The node (src/node/host.c) packs every message a node has for
 * one peer at the end of one event into a single network datagram (a "batch"), heartbeats of all
 * groups coalesced (DESIGN.md, "Raft": heartbeat coalescing); this file encodes and decodes one
 * message and one batch. The encoding is the project's little-endian varint codec (base/codec.h).
 *
 * Batch (one network message between two servers):
 *     u32  magic        0x42465152 (the bytes "RQFB")
 *     u8   version      1
 *     u32  from         sending node id (1..RQ_NODE_ID_MAX)
 *     varint count      number of messages that follow, 1..RAFT_BATCH_MSGS_MAX
 *     count x message
 *
 * Message:
 *     u8     type       enum raft_msg_type
 *     varint group      group id (< RAFT_GROUP_ID_LIMIT)
 *     varint term
 *     then by type:
 *       PREVOTE:                   varint last_index, varint last_term
 *       VOTE:                      varint last_index, varint last_term, u8 transfer (0 or 1:
 *                                  the campaign was started by the leader's TIMEOUT_NOW)
 *       PREVOTE_RESP, VOTE_RESP:   u8 reject (0 or 1)
 *       APPEND:                    varint prev_index, varint prev_term, varint commit,
 *                                  varint entry_count (<= RAFT_MSG_ENTRIES_MAX), then per entry:
 *                                  varint index, varint term, u8 type, varint data_size
 *                                  (<= RAFT_ENTRY_DATA_MAX), data_size bytes.
 *                                  Entries are consecutive: entry i has index prev_index + 1 + i,
 *                                  and terms never decrease.
 *       APPEND_RESP:               u8 reject, varint index, varint hint_index, varint hint_term
 *       HEARTBEAT:                 varint commit, varint context
 *       HEARTBEAT_RESP:            varint context
 *       READ_INDEX:                varint context   (a follower asks the leader for a read index)
 *       READ_INDEX_RESP:           varint context, varint index
 *       INSTALL_SNAPSHOT:          varint snap_index, varint snap_term, varint offset,
 *                                  u8 chunk_last (0 or 1), varint chunk_size
 *                                  (<= RAFT_SNAPSHOT_CHUNK_MAX), chunk_size bytes: the bytes of
 *                                  the leader's snapshot file at that file offset
 *       SNAPSHOT_RESP:             varint snap_index, varint offset (the next file offset the
 *                                  follower needs; the leader resumes there)
 *       TIMEOUT_NOW:               varint last_index (the leader's last index: the target
 *                                  campaigns only if its log ends exactly there)
 *
 * Decoding is strict: every field is bounds-checked against the buffer and the maxima above, an
 * unknown type or version, a zero or over-limit count, trailing bytes, non-consecutive entries or
 * a flag byte other than 0/1 are errors (RQ_ECORRUPT, RQ_ETRUNC or RQ_ETOOBIG), never a crash.
 * Decoded entries point into the caller's buffer (no copy). */
#ifndef RQ_RAFT_MSG_H
#define RQ_RAFT_MSG_H

#include <stddef.h>
#include <stdint.h>

enum {
    RAFT_BATCH_MAGIC = 0x42465152u,
    RAFT_BATCH_VERSION = 1,
    RAFT_MSG_ENTRIES_MAX = 64,             /* entries in one APPEND */
    RAFT_ENTRY_DATA_MAX = 64u << 10,       /* one entry's data */
    RAFT_MSG_BYTES_MAX = 512u << 10,       /* one encoded APPEND, entries included */
    RAFT_BATCH_MSGS_MAX = 4096,            /* messages in one batch */
    RAFT_GROUP_ID_LIMIT = 1u << 20,        /* group ids are below this */
    RAFT_BATCH_HEADER_SIZE = 9,            /* magic, version, from */
    RAFT_SNAPSHOT_CHUNK_MAX = 64u << 10,   /* snapshot bytes in one INSTALL_SNAPSHOT */
};

enum raft_msg_type {
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP = 2,
    RAFT_MSG_VOTE = 3,
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_APPEND = 5,
    RAFT_MSG_APPEND_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7,
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_READ_INDEX = 9,
    RAFT_MSG_READ_INDEX_RESP = 10,
    RAFT_MSG_INSTALL_SNAPSHOT = 11,
    RAFT_MSG_SNAPSHOT_RESP = 12,
    RAFT_MSG_TIMEOUT_NOW = 13,
    RAFT_MSG_TYPE_MAX = 13,
};

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1,  /* data for the state machine */
    RAFT_ENTRY_NOOP = 2,    /* appended by a new leader (paper 8: commit an entry of its term) */
    RAFT_ENTRY_CONFIG = 3,  /* a membership change: the new configuration (raft/membership.h) */
    RAFT_ENTRY_TYPE_MAX = 3,
};

struct raft_entry {
    uint64_t index;
    uint64_t term;
    uint8_t type;            /* enum raft_entry_type */
    uint32_t data_size;      /* <= RAFT_ENTRY_DATA_MAX */
    const uint8_t *data;     /* data_size bytes; NULL when data_size is 0 */
};

struct raft_msg {
    uint8_t type;            /* enum raft_msg_type */
    uint32_t group;
    uint32_t from;           /* set by the sender's raft, or by the batch decoder */
    uint32_t to;             /* not encoded: the batch goes to one node */
    uint64_t term;
    /* PREVOTE / VOTE: the candidate's last log entry. For PREVOTE, term is the term the candidate
     * would campaign in (its current term + 1); its own term is unchanged (dissertation 9.6).
     * TIMEOUT_NOW: last_index is the leader's last index. */
    uint64_t last_index;
    uint64_t last_term;
    uint8_t transfer;        /* VOTE: a leadership transfer; voters in a leader's lease grant it */
    /* *_RESP */
    uint8_t reject;
    /* APPEND */
    uint64_t prev_index;
    uint64_t prev_term;
    uint64_t commit;         /* also HEARTBEAT */
    uint32_t entry_count;
    const struct raft_entry *entries;  /* entry_count entries (see raft_msg_decode for storage) */
    /* APPEND_RESP: on success `index` is the highest index the follower now holds durably and in
     * agreement with the leader; on reject it is the prev_index that failed, and hint_index /
     * hint_term say where to retry (the conflict term's first index, paper 5.3's optimization). */
    uint64_t index;
    uint64_t hint_index;
    uint64_t hint_term;
    /* HEARTBEAT / HEARTBEAT_RESP: an opaque number the leader chooses and the follower echoes.
     * READ_INDEX / READ_INDEX_RESP: the follower's read context (READ_INDEX_RESP: with `index`,
     * the read index the leader confirmed). */
    uint64_t context;
    /* INSTALL_SNAPSHOT: the chunk of the snapshot (snap_index, snap_term) at file `offset`;
     * chunk_last when it ends the file. SNAPSHOT_RESP: snap_index and the next offset wanted. */
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t offset;
    uint8_t chunk_last;
    uint32_t chunk_size;     /* <= RAFT_SNAPSHOT_CHUNK_MAX */
    const uint8_t *chunk;    /* chunk_size bytes; NULL when 0 */
};

/* Bytes raft_msg_encode will write for m (an upper bound is fine for sizing a buffer). */
size_t raft_msg_encoded_size(const struct raft_msg *m);

/* Appends m's encoding to buf[*pos..cap). Returns 0 and advances *pos, or RQ_ETOOBIG if it does
 * not fit (buf is then unchanged beyond *pos). Asserts that m is well formed. */
int raft_msg_encode(const struct raft_msg *m, uint8_t *buf, size_t cap, size_t *pos);

/* Writes a batch header for `count` messages from node `from` into buf (cap >=
 * RAFT_BATCH_HEADER_SIZE + 10). Returns the bytes written (the count is a varint, written last).
 * A sender that does not know the count in advance encodes the messages into a body buffer and
 * writes the header in front of it when it flushes. */
size_t raft_batch_header(uint8_t *buf, uint32_t from, uint32_t count);

/* Incremental batch decoding. raft_batch_open checks the header and reads from and count;
 * raft_batch_next decodes the next message into *m, its entries into `entries` (capacity
 * RAFT_MSG_ENTRIES_MAX), with m->from set to the batch's sender. Returns 1 when a message was
 * decoded, 0 at the end (after checking nothing trails), or a negative RQ_E* code naming the first
 * malformed field (decoding stops there; messages already returned were well formed). */
struct raft_batch_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    uint32_t from;
    uint32_t count;
    uint32_t done;
};
int raft_batch_open(struct raft_batch_reader *br, const void *buf, size_t len);
int raft_batch_next(struct raft_batch_reader *br, struct raft_msg *m, struct raft_entry *entries);

/* Decodes exactly one message occupying buf[0..len) (no batch header). Same errors. */
int raft_msg_decode(const void *buf, size_t len, struct raft_msg *m, struct raft_entry *entries);

const char *raft_msg_type_name(uint8_t type);

#endif
