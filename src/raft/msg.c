/* msg.c — the byte encoding of Raft messages and batches (format and contract: msg.h).
 *
 * Encoding asserts that the message is well formed: a malformed outgoing message is a bug in our
 * own Raft, never something to put on the wire. Decoding trusts nothing: every field is read
 * through the bounds-checked rq_reader and checked against its limit before it is used, so any
 * byte string gives either a well-formed message (one raft_msg_encode would accept) or an error. */
#include "raft/msg.h"

#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "io/io.h"

/* Per entry: varint index, varint term, u8 type, varint data_size. */
enum { MSG_ENTRY_HEADER_SIZE_MAX = 3 * RQ_VARINT_MAX_SIZE + 1 };
/* Type, group, term and the largest fixed part of any type (APPEND's four varints). */
enum { MSG_HEADER_SIZE_MAX = 1 + 2 * RQ_VARINT_MAX_SIZE + 4 * RQ_VARINT_MAX_SIZE };

_Static_assert(RAFT_BATCH_HEADER_SIZE == 4 + 1 + 4, "magic u32, version u8, from u32");
_Static_assert(RAFT_MSG_TYPE_MAX == RAFT_MSG_TIMEOUT_NOW, "the last type is the maximum");
_Static_assert(RAFT_ENTRY_TYPE_MAX == RAFT_ENTRY_CONFIG, "the last entry type is the maximum");
/* raft.h promises that one entry of the largest size always fits in one APPEND. */
/* An INSTALL_SNAPSHOT's fixed part is within MSG_HEADER_SIZE_MAX + MSG_ENTRY_HEADER_SIZE_MAX. */
_Static_assert(MSG_HEADER_SIZE_MAX + MSG_ENTRY_HEADER_SIZE_MAX + RAFT_SNAPSHOT_CHUNK_MAX <=
                   RAFT_MSG_BYTES_MAX,
               "a full snapshot chunk fits in a message");
_Static_assert(MSG_HEADER_SIZE_MAX + MSG_ENTRY_HEADER_SIZE_MAX + RAFT_ENTRY_DATA_MAX <=
                   RAFT_MSG_BYTES_MAX,
               "one entry of RAFT_ENTRY_DATA_MAX bytes fits in an APPEND");

const char *raft_msg_type_name(uint8_t type) {
    switch (type) {
    case RAFT_MSG_PREVOTE: return "prevote";
    case RAFT_MSG_PREVOTE_RESP: return "prevote-resp";
    case RAFT_MSG_VOTE: return "vote";
    case RAFT_MSG_VOTE_RESP: return "vote-resp";
    case RAFT_MSG_APPEND: return "append";
    case RAFT_MSG_APPEND_RESP: return "append-resp";
    case RAFT_MSG_HEARTBEAT: return "heartbeat";
    case RAFT_MSG_HEARTBEAT_RESP: return "heartbeat-resp";
    case RAFT_MSG_READ_INDEX: return "read-index";
    case RAFT_MSG_READ_INDEX_RESP: return "read-index-resp";
    case RAFT_MSG_INSTALL_SNAPSHOT: return "install-snapshot";
    case RAFT_MSG_SNAPSHOT_RESP: return "snapshot-resp";
    case RAFT_MSG_TIMEOUT_NOW: return "timeout-now";
    default: return "unknown";
    }
}

static int msg_type_valid(uint64_t type) { return type >= 1 && type <= RAFT_MSG_TYPE_MAX; }

/* Entry i of an APPEND must have index prev_index + 1 + i. Returns 0 when that index does not
 * exist (it would wrap past UINT64_MAX), which no real log reaches and the decoder rejects. */
static int entry_index_expected(uint64_t prev_index, uint32_t i, uint64_t *index) {
    if (prev_index >= UINT64_MAX - i) return 0;
    *index = prev_index + 1 + i;
    return 1;
}

/* ---- encoding -------------------------------------------------------------------------------- */

static size_t entries_size(const struct raft_msg *m) {
    size_t size = 0;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        const struct raft_entry *e = &m->entries[i];
        size += rq_varint_size(e->index) + rq_varint_size(e->term) + 1;
        size += rq_varint_size(e->data_size) + e->data_size;
    }
    return size;
}

/* The exact encoded size; m's type must be valid (the other fields are not checked here). */
static size_t msg_size(const struct raft_msg *m) {
    size_t size = 1 + rq_varint_size(m->group) + rq_varint_size(m->term);
    switch (m->type) {
    case RAFT_MSG_PREVOTE: return size + rq_varint_size(m->last_index) + rq_varint_size(m->last_term);
    case RAFT_MSG_VOTE: return size + rq_varint_size(m->last_index) + rq_varint_size(m->last_term) + 1;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: return size + 1;
    case RAFT_MSG_APPEND:
        size += rq_varint_size(m->prev_index) + rq_varint_size(m->prev_term);
        size += rq_varint_size(m->commit) + rq_varint_size(m->entry_count);
        return size + entries_size(m);
    case RAFT_MSG_APPEND_RESP:
        size += 1 + rq_varint_size(m->index);
        return size + rq_varint_size(m->hint_index) + rq_varint_size(m->hint_term);
    case RAFT_MSG_HEARTBEAT: return size + rq_varint_size(m->commit) + rq_varint_size(m->context);
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX: return size + rq_varint_size(m->context);
    case RAFT_MSG_READ_INDEX_RESP: return size + rq_varint_size(m->context) + rq_varint_size(m->index);
    case RAFT_MSG_INSTALL_SNAPSHOT:
        size += rq_varint_size(m->snap_index) + rq_varint_size(m->snap_term);
        size += rq_varint_size(m->offset) + 1 + rq_varint_size(m->chunk_size);
        return size + m->chunk_size;
    case RAFT_MSG_SNAPSHOT_RESP: return size + rq_varint_size(m->snap_index) + rq_varint_size(m->offset);
    case RAFT_MSG_TIMEOUT_NOW: return size + rq_varint_size(m->last_index);
    default: RQ_UNREACHABLE();
    }
}

/* The same rules the decoder enforces, as assertions: we never send what we would reject. */
static void append_check(const struct raft_msg *m) {
    RQ_ASSERT(m->entry_count <= RAFT_MSG_ENTRIES_MAX);
    if (m->entry_count > 0) RQ_ASSERT(m->entries != NULL);
    uint64_t term_min = m->prev_term;  /* terms never decrease, from prev_term on */
    for (uint32_t i = 0; i < m->entry_count; i++) {
        const struct raft_entry *e = &m->entries[i];
        uint64_t index = 0;
        RQ_ASSERT(entry_index_expected(m->prev_index, i, &index));
        RQ_ASSERT(e->index == index);
        RQ_ASSERT(e->term >= term_min);
        term_min = e->term;
        RQ_ASSERT(e->type >= 1);
        RQ_ASSERT(e->type <= RAFT_ENTRY_TYPE_MAX);
        RQ_ASSERT(e->data_size <= RAFT_ENTRY_DATA_MAX);
        if (e->data_size > 0) RQ_ASSERT(e->data != NULL);
    }
    RQ_ASSERT(msg_size(m) <= RAFT_MSG_BYTES_MAX);
}

static void msg_check(const struct raft_msg *m) {
    RQ_ASSERT(m != NULL);
    RQ_ASSERT(msg_type_valid(m->type));
    RQ_ASSERT(m->group < RAFT_GROUP_ID_LIMIT);
    switch (m->type) {
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_APPEND_RESP: RQ_ASSERT(m->reject <= 1); break;
    case RAFT_MSG_VOTE: RQ_ASSERT(m->transfer <= 1); break;
    case RAFT_MSG_APPEND: append_check(m); break;
    case RAFT_MSG_INSTALL_SNAPSHOT:
        RQ_ASSERT(m->chunk_last <= 1);
        RQ_ASSERT(m->chunk_size <= RAFT_SNAPSHOT_CHUNK_MAX);
        if (m->chunk_size > 0) RQ_ASSERT(m->chunk != NULL);
        break;
    default: break;
    }
}

size_t raft_msg_encoded_size(const struct raft_msg *m) {
    msg_check(m);
    return msg_size(m);
}

static void write_entries(struct rq_writer *w, const struct raft_msg *m) {
    for (uint32_t i = 0; i < m->entry_count; i++) {
        const struct raft_entry *e = &m->entries[i];
        rq_write_varint(w, e->index);
        rq_write_varint(w, e->term);
        rq_write_u8(w, e->type);
        rq_write_varint(w, e->data_size);
        rq_write_bytes(w, e->data, e->data_size);
    }
}

static void write_msg(struct rq_writer *w, const struct raft_msg *m) {
    rq_write_u8(w, m->type);
    rq_write_varint(w, m->group);
    rq_write_varint(w, m->term);
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
    case RAFT_MSG_VOTE:
        rq_write_varint(w, m->last_index);
        rq_write_varint(w, m->last_term);
        if (m->type == RAFT_MSG_VOTE) rq_write_u8(w, m->transfer);
        break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: rq_write_u8(w, m->reject); break;
    case RAFT_MSG_APPEND:
        rq_write_varint(w, m->prev_index);
        rq_write_varint(w, m->prev_term);
        rq_write_varint(w, m->commit);
        rq_write_varint(w, m->entry_count);
        write_entries(w, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        rq_write_u8(w, m->reject);
        rq_write_varint(w, m->index);
        rq_write_varint(w, m->hint_index);
        rq_write_varint(w, m->hint_term);
        break;
    case RAFT_MSG_HEARTBEAT:
        rq_write_varint(w, m->commit);
        rq_write_varint(w, m->context);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX: rq_write_varint(w, m->context); break;
    case RAFT_MSG_READ_INDEX_RESP:
        rq_write_varint(w, m->context);
        rq_write_varint(w, m->index);
        break;
    case RAFT_MSG_INSTALL_SNAPSHOT:
        rq_write_varint(w, m->snap_index);
        rq_write_varint(w, m->snap_term);
        rq_write_varint(w, m->offset);
        rq_write_u8(w, m->chunk_last);
        rq_write_varint(w, m->chunk_size);
        rq_write_bytes(w, m->chunk, m->chunk_size);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        rq_write_varint(w, m->snap_index);
        rq_write_varint(w, m->offset);
        break;
    case RAFT_MSG_TIMEOUT_NOW: rq_write_varint(w, m->last_index); break;
    default: RQ_UNREACHABLE();
    }
}

int raft_msg_encode(const struct raft_msg *m, uint8_t *buf, size_t cap, size_t *pos) {
    RQ_ASSERT(pos != NULL);
    RQ_ASSERT(*pos <= cap);
    RQ_ASSERT(buf != NULL || cap == 0);
    size_t size = raft_msg_encoded_size(m);
    /* Checked up front, so a message that does not fit leaves no partial bytes behind. */
    if (size > cap - *pos) return RQ_ETOOBIG;
    struct rq_writer w;
    rq_writer_init(&w, buf + *pos, size);
    write_msg(&w, m);
    RQ_ASSERT(w.err == 0);
    RQ_ASSERT(w.len == size);
    *pos += size;
    return 0;
}

size_t raft_batch_header(uint8_t *buf, uint32_t from, uint32_t count) {
    RQ_ASSERT(buf != NULL);
    RQ_ASSERT(from >= 1);
    RQ_ASSERT(from <= RQ_NODE_ID_MAX);
    RQ_ASSERT(count >= 1);
    RQ_ASSERT(count <= RAFT_BATCH_MSGS_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE);
    rq_write_u32(&w, RAFT_BATCH_MAGIC);
    rq_write_u8(&w, RAFT_BATCH_VERSION);
    rq_write_u32(&w, from);
    rq_write_varint(&w, count);
    RQ_ASSERT(w.err == 0);
    return w.len;
}

/* ---- decoding -------------------------------------------------------------------------------- */

/* Reads one entry of an APPEND that started at msg_start in r's buffer; *term_min is the lowest
 * term it may have, and becomes its term. */
static int read_entry(struct rq_reader *r, size_t msg_start, uint64_t index_expected,
                      uint64_t *term_min, struct raft_entry *e) {
    uint64_t index, term, data_size;
    uint8_t type;
    if (rq_read_varint(r, &index)) return r->err;
    if (index != index_expected) return RQ_ECORRUPT;
    if (rq_read_varint(r, &term)) return r->err;
    if (term < *term_min) return RQ_ECORRUPT;
    if (rq_read_u8(r, &type)) return r->err;
    if (type < 1 || type > RAFT_ENTRY_TYPE_MAX) return RQ_ECORRUPT;
    if (rq_read_varint(r, &data_size)) return r->err;
    if (data_size > RAFT_ENTRY_DATA_MAX) return RQ_ETOOBIG;
    /* Before the data is read, so an over-long APPEND is ETOOBIG even if it is also cut short. */
    if (r->pos - msg_start + data_size > RAFT_MSG_BYTES_MAX) return RQ_ETOOBIG;
    const uint8_t *data = NULL;
    if (data_size > 0 && rq_read_bytes(r, (size_t)data_size, &data)) return r->err;
    e->index = index;
    e->term = term;
    e->type = type;
    e->data_size = (uint32_t)data_size;
    e->data = data;  /* NULL when empty, as msg.h promises */
    *term_min = term;
    return 0;
}

static int read_append(struct rq_reader *r, size_t msg_start, struct raft_msg *m,
                       struct raft_entry *entries) {
    uint64_t entry_count;
    rq_read_varint(r, &m->prev_index);
    rq_read_varint(r, &m->prev_term);
    rq_read_varint(r, &m->commit);
    if (rq_read_varint(r, &entry_count)) return r->err;
    if (entry_count > RAFT_MSG_ENTRIES_MAX) return RQ_ETOOBIG;
    m->entries = entries;
    uint64_t term_min = m->prev_term;
    for (uint32_t i = 0; i < entry_count; i++) {
        uint64_t index;
        if (!entry_index_expected(m->prev_index, i, &index)) return RQ_ECORRUPT;
        int err = read_entry(r, msg_start, index, &term_min, &entries[i]);
        if (err) return err;
        m->entry_count = i + 1;  /* only ever counts entries that were filled in */
    }
    return 0;
}

/* A byte that must be 0 or 1. */
static int read_flag(struct rq_reader *r, uint8_t *flag) {
    if (rq_read_u8(r, flag)) return r->err;
    return *flag <= 1 ? 0 : RQ_ECORRUPT;
}

static int read_reject(struct rq_reader *r, struct raft_msg *m) { return read_flag(r, &m->reject); }

static int read_chunk(struct rq_reader *r, struct raft_msg *m) {
    uint64_t size;
    rq_read_varint(r, &m->snap_index);
    rq_read_varint(r, &m->snap_term);
    rq_read_varint(r, &m->offset);
    int err = read_flag(r, &m->chunk_last);
    if (err) return err;
    if (rq_read_varint(r, &size)) return r->err;
    if (size > RAFT_SNAPSHOT_CHUNK_MAX) return RQ_ETOOBIG;
    if (size > 0 && rq_read_bytes(r, (size_t)size, &m->chunk)) return r->err;
    m->chunk_size = (uint32_t)size;
    return 0;
}

/* Reads the fields that follow type, group and term. */
static int read_body(struct rq_reader *r, size_t msg_start, struct raft_msg *m,
                     struct raft_entry *entries) {
    switch (m->type) {
    case RAFT_MSG_PREVOTE:
        rq_read_varint(r, &m->last_index);
        return rq_read_varint(r, &m->last_term);
    case RAFT_MSG_VOTE:
        rq_read_varint(r, &m->last_index);
        rq_read_varint(r, &m->last_term);
        return read_flag(r, &m->transfer);
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: return read_reject(r, m);
    case RAFT_MSG_APPEND: return read_append(r, msg_start, m, entries);
    case RAFT_MSG_APPEND_RESP: {
        int err = read_reject(r, m);
        if (err) return err;
        rq_read_varint(r, &m->index);
        rq_read_varint(r, &m->hint_index);
        return rq_read_varint(r, &m->hint_term);
    }
    case RAFT_MSG_HEARTBEAT:
        rq_read_varint(r, &m->commit);
        return rq_read_varint(r, &m->context);
    case RAFT_MSG_HEARTBEAT_RESP:
    case RAFT_MSG_READ_INDEX: return rq_read_varint(r, &m->context);
    case RAFT_MSG_READ_INDEX_RESP:
        rq_read_varint(r, &m->context);
        return rq_read_varint(r, &m->index);
    case RAFT_MSG_INSTALL_SNAPSHOT: return read_chunk(r, m);
    case RAFT_MSG_SNAPSHOT_RESP:
        rq_read_varint(r, &m->snap_index);
        return rq_read_varint(r, &m->offset);
    case RAFT_MSG_TIMEOUT_NOW: return rq_read_varint(r, &m->last_index);
    default: RQ_UNREACHABLE();
    }
}

/* Reads one message at r's position; on error *m holds no promise. The reader's errors are sticky,
 * so a run of reads needs its error checked only before the first value is used. */
static int read_msg(struct rq_reader *r, struct raft_msg *m, struct raft_entry *entries) {
    RQ_ASSERT(entries != NULL);
    memset(m, 0, sizeof *m);
    size_t msg_start = r->pos;
    uint64_t group;
    if (rq_read_u8(r, &m->type)) return r->err;
    if (!msg_type_valid(m->type)) return RQ_ECORRUPT;
    if (rq_read_varint(r, &group)) return r->err;
    if (group >= RAFT_GROUP_ID_LIMIT) return RQ_ECORRUPT;
    m->group = (uint32_t)group;
    rq_read_varint(r, &m->term);
    return read_body(r, msg_start, m, entries);
}

int raft_msg_decode(const void *buf, size_t len, struct raft_msg *m, struct raft_entry *entries) {
    struct rq_reader r;
    rq_reader_init(&r, buf, len);
    int err = read_msg(&r, m, entries);
    if (err) return err;
    return rq_reader_remaining(&r) == 0 ? 0 : RQ_ECORRUPT;
}

int raft_batch_open(struct raft_batch_reader *br, const void *buf, size_t len) {
    memset(br, 0, sizeof *br);
    struct rq_reader r;
    rq_reader_init(&r, buf, len);
    uint32_t magic, from;
    uint8_t version;
    uint64_t count;
    if (rq_read_u32(&r, &magic)) return r.err;
    if (magic != RAFT_BATCH_MAGIC) return RQ_ECORRUPT;
    if (rq_read_u8(&r, &version)) return r.err;
    if (version != RAFT_BATCH_VERSION) return RQ_ECORRUPT;
    if (rq_read_u32(&r, &from)) return r.err;
    if (from == 0 || from > RQ_NODE_ID_MAX) return RQ_ECORRUPT;
    if (rq_read_varint(&r, &count)) return r.err;
    if (count == 0 || count > RAFT_BATCH_MSGS_MAX) return RQ_ECORRUPT;
    br->buf = buf;
    br->len = len;
    br->pos = r.pos;
    br->from = from;
    br->count = (uint32_t)count;
    return 0;
}

int raft_batch_next(struct raft_batch_reader *br, struct raft_msg *m, struct raft_entry *entries) {
    RQ_ASSERT(br->count >= 1);  /* zero only when raft_batch_open failed */
    RQ_ASSERT(br->done <= br->count);
    RQ_ASSERT(br->pos <= br->len);
    if (br->done == br->count) return br->pos == br->len ? 0 : RQ_ECORRUPT;
    struct rq_reader r;
    rq_reader_init(&r, br->buf + br->pos, br->len - br->pos);
    int err = read_msg(&r, m, entries);
    /* On error nothing advances: a second call fails at the same field again. */
    if (err) return err;
    m->from = br->from;
    br->pos += r.pos;
    br->done++;
    return 1;
}
