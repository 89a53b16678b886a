/* Writes the seed corpus of fuzz/raft_msg.c: valid batches of every message type (one type per
 * batch, coalesced heartbeats, a mixed batch, boundary values), bare messages (the target also
 * decodes its input as one message), and a few malformed batches, each made from a valid encoding
 * with one field broken. Every input is checked here: the valid ones must decode, the malformed
 * ones must fail. Usage: gen_raft_msg_corpus OUTPUT_DIR (which must exist) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/errors.h"
#include "io/io.h"
#include "raft/msg.h"

enum { INPUT_BYTES_MAX = 4096 };

static const char *out_dir;
static int written;

/* A batch under construction: the body starts after room for the longest header. */
struct batch {
    uint8_t buf[RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE + INPUT_BYTES_MAX];
    size_t pos;
    uint32_t count;
};

static void batch_begin(struct batch *b) {
    b->pos = RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE;
    b->count = 0;
}

static void batch_add(struct batch *b, const struct raft_msg *m) {
    if (raft_msg_encode(m, b->buf, sizeof b->buf, &b->pos) != 0) {
        fprintf(stderr, "gen_raft_msg_corpus: batch over %d bytes\n", INPUT_BYTES_MAX);
        exit(1);
    }
    b->count++;
}

/* Puts the header in front of the body; returns the start of the whole batch, its size in *len. */
static uint8_t *batch_finish(struct batch *b, uint32_t from, size_t *len) {
    uint8_t header[RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE];
    size_t header_len = raft_batch_header(header, from, b->count);
    uint8_t *start = b->buf + sizeof header - header_len;
    memcpy(start, header, header_len);
    *len = b->pos - (size_t)(start - b->buf);
    return start;
}

/* The result of decoding data as a batch (0 when every message decoded) or as one message. */
static int decode_result(const uint8_t *data, size_t len, int as_batch) {
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    struct raft_msg m;
    if (!as_batch) return raft_msg_decode(data, len, &m, entries);
    struct raft_batch_reader br;
    int err = raft_batch_open(&br, data, len);
    while (err == 0) {
        err = raft_batch_next(&br, &m, entries);
        if (err == 0) return 0;
        if (err == 1) err = 0;
    }
    return err;
}

/* Writes one input after checking that it decodes (want == 0) or fails with want. */
static void emit(const char *name, const uint8_t *data, size_t len, int as_batch, int want) {
    int got = decode_result(data, len, as_batch);
    if (got != want || len >= INPUT_BYTES_MAX) {
        fprintf(stderr, "gen_raft_msg_corpus: %s: %zu bytes, decodes to %d, want %d\n", name, len,
                got, want);
        exit(1);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    written++;
}

/* Finishes b as a batch from node `from` and writes it; it must decode. */
static void emit_batch(const char *name, struct batch *b, uint32_t from) {
    size_t len;
    uint8_t *data = batch_finish(b, from, &len);
    emit(name, data, len, 1, 0);
}

static const uint8_t text[] = "enqueue orders 42: {\"sku\": 1017, \"qty\": 3}";

/* count entries after prev_index 20 (term 3), terms 3, 3, 4, 4, ..., every fourth a no-op. */
static struct raft_msg append_msg(struct raft_entry *entries, uint32_t count) {
    struct raft_msg m = {.type = RAFT_MSG_APPEND, .group = 4, .term = 5, .prev_index = 20,
                         .prev_term = 3, .commit = 19, .entry_count = count, .entries = entries};
    for (uint32_t i = 0; i < count; i++) {
        uint32_t size = i % 4 == 3 ? 0 : (uint32_t)(i * 7 % sizeof text);
        entries[i] = (struct raft_entry){.index = 21 + i, .term = 3 + i / 2,
                                         .type = size ? RAFT_ENTRY_NORMAL : RAFT_ENTRY_NOOP,
                                         .data_size = size, .data = size ? text : NULL};
    }
    return m;
}

/* One message of each type, group g, with small values. */
static struct raft_msg sample(uint8_t type, uint32_t g, struct raft_entry *entries) {
    struct raft_msg m = {.type = type, .group = g, .term = 5};
    switch (type) {
    case RAFT_MSG_PREVOTE: m.term = 6, m.last_index = 20, m.last_term = 3; break;
    case RAFT_MSG_VOTE: m.last_index = 20, m.last_term = 3, m.transfer = g % 2; break;
    case RAFT_MSG_INSTALL_SNAPSHOT:
        m.snap_index = 300 + g, m.snap_term = 4, m.offset = 64 * g, m.chunk_last = g % 2;
        m.chunk = text, m.chunk_size = sizeof text - 1;
        break;
    case RAFT_MSG_SNAPSHOT_RESP: m.snap_index = 300 + g, m.offset = 128; break;
    case RAFT_MSG_TIMEOUT_NOW: m.last_index = 20 + g; break;
    case RAFT_MSG_PREVOTE_RESP:
    case RAFT_MSG_VOTE_RESP: m.reject = g % 2; break;
    case RAFT_MSG_APPEND: m = append_msg(entries, 3), m.group = g; break;
    case RAFT_MSG_APPEND_RESP:
        m.reject = g % 2, m.index = 23, m.hint_index = 11, m.hint_term = 2;
        break;
    case RAFT_MSG_HEARTBEAT: m.commit = 19, m.context = 1000 + g; break;
    case RAFT_MSG_READ_INDEX_RESP: m.context = 2000 + g, m.index = 19; break;
    default: m.context = 1000 + g; break;
    }
    return m;
}

static void emit_one_type_batches(void) {
    static const char *const names[] = {NULL, "batch-prevote", "batch-prevote-resp", "batch-vote",
                                        "batch-vote-resp", "batch-append", "batch-append-resp",
                                        "batch-heartbeat", "batch-heartbeat-resp",
                                        "batch-read-index", "batch-read-index-resp",
                                        "batch-install-snapshot", "batch-snapshot-resp",
                                        "batch-timeout-now"};
    _Static_assert(sizeof names / sizeof names[0] == RAFT_MSG_TYPE_MAX + 1, "a name per type");
    static struct batch b;
    struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
        batch_begin(&b);
        for (uint32_t g = 0; g < 2; g++) {
            struct raft_msg m = sample(type, g, entries);
            batch_add(&b, &m);
        }
        emit_batch(names[type], &b, 2);
    }
}

static void emit_special_batches(void) {
    static struct batch b;
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    /* One node's heartbeats to one peer, coalesced: 100 groups. */
    batch_begin(&b);
    for (uint32_t g = 0; g < 100; g++) {
        struct raft_msg m = sample(RAFT_MSG_HEARTBEAT, g * 37, entries);
        batch_add(&b, &m);
    }
    emit_batch("batch-heartbeats-coalesced", &b, 1);
    batch_begin(&b);
    for (uint32_t g = 0; g < 100; g++) {
        struct raft_msg m = sample(RAFT_MSG_HEARTBEAT_RESP, g * 37, entries);
        batch_add(&b, &m);
    }
    emit_batch("batch-heartbeat-resps-coalesced", &b, 3);
    /* APPENDs with no entries and with the most entries one message may carry. */
    batch_begin(&b);
    struct raft_msg m = append_msg(entries, 0);
    batch_add(&b, &m);
    m = append_msg(entries, RAFT_MSG_ENTRIES_MAX);
    batch_add(&b, &m);
    emit_batch("batch-append-empty-and-full", &b, 1);
    /* Every type, groups far apart. */
    batch_begin(&b);
    for (uint32_t k = 0; k < 3 * RAFT_MSG_TYPE_MAX; k++) {
        m = sample((uint8_t)(k % RAFT_MSG_TYPE_MAX + 1), k * 4099 % RAFT_GROUP_ID_LIMIT, entries);
        batch_add(&b, &m);
    }
    emit_batch("batch-mixed", &b, 5);
}

/* Boundary values: the largest group, node and 64-bit fields. */
static void emit_limits(void) {
    static struct batch b;
    static const struct raft_entry top[] = {
        {UINT64_MAX - 1, UINT64_MAX, RAFT_ENTRY_NORMAL, 5, text},
        {UINT64_MAX, UINT64_MAX, RAFT_ENTRY_NOOP, 0, NULL},
    };
    struct raft_msg vote = {.type = RAFT_MSG_VOTE, .group = RAFT_GROUP_ID_LIMIT - 1,
                            .term = UINT64_MAX, .last_index = UINT64_MAX, .last_term = UINT64_MAX};
    struct raft_msg append = {.type = RAFT_MSG_APPEND, .group = RAFT_GROUP_ID_LIMIT - 1,
                              .term = UINT64_MAX, .prev_index = UINT64_MAX - 2,
                              .prev_term = UINT64_MAX - 1, .commit = UINT64_MAX,
                              .entry_count = 2, .entries = top};
    struct raft_msg resp = {.type = RAFT_MSG_APPEND_RESP, .term = UINT64_MAX, .reject = 1,
                            .index = UINT64_MAX, .hint_index = UINT64_MAX, .hint_term = UINT64_MAX};
    batch_begin(&b);
    batch_add(&b, &vote);
    batch_add(&b, &append);
    batch_add(&b, &resp);
    emit_batch("batch-limits", &b, RQ_NODE_ID_MAX);
}

/* Bare messages, decoded by the target as one message. */
static void emit_single_messages(void) {
    static const uint8_t types[] = {RAFT_MSG_VOTE, RAFT_MSG_APPEND, RAFT_MSG_APPEND_RESP,
                                    RAFT_MSG_HEARTBEAT};
    static const char *const names[] = {"msg-vote", "msg-append", "msg-append-resp",
                                        "msg-heartbeat"};
    struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    uint8_t buf[INPUT_BYTES_MAX];
    for (size_t k = 0; k < sizeof types; k++) {
        struct raft_msg m = sample(types[k], 7, entries);
        size_t len = 0;
        if (raft_msg_encode(&m, buf, sizeof buf, &len) != 0) exit(1);
        emit(names[k], buf, len, 0, 0);
    }
}

/* A valid batch of a VOTE-RESP and an APPEND of 3 entries (all values below 128, so every varint
 * is one byte and the offsets below are fixed), then the same with one field broken. */
static void emit_malformed(void) {
    static struct batch b;
    struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    batch_begin(&b);
    struct raft_msg m = sample(RAFT_MSG_VOTE_RESP, 1, entries);
    batch_add(&b, &m);
    m = append_msg(entries, 3);
    batch_add(&b, &m);
    size_t len;
    uint8_t *valid = batch_finish(&b, 2, &len);
    /* header 10 | vote-resp: type group term reject | append: 7 bytes, then entries */
    enum { HEADER = 10, REJECT = HEADER + 3, APPEND = HEADER + 4, ENTRY0 = APPEND + 7 };
    uint8_t buf[INPUT_BYTES_MAX + 1];
    struct { const char *name; size_t at; uint8_t value; int want; } breaks[] = {
        {"bad-magic", 3, 'X', RQ_ECORRUPT},
        {"bad-version", 4, 2, RQ_ECORRUPT},
        {"from-zero", 5, 0, RQ_ECORRUPT},
        {"count-zero", 9, 0, RQ_ECORRUPT},
        {"reject-2", REJECT, 2, RQ_ECORRUPT},
        {"unknown-type", APPEND, RAFT_MSG_TYPE_MAX + 1, RQ_ECORRUPT},
        {"entry-not-consecutive", ENTRY0, 22, RQ_ECORRUPT},
        {"entry-term-decreases", ENTRY0 + 1, 2, RQ_ECORRUPT},
        {"entry-count-65", APPEND + 6, RAFT_MSG_ENTRIES_MAX + 1, RQ_ETOOBIG},
    };
    for (size_t k = 0; k < sizeof breaks / sizeof breaks[0]; k++) {
        memcpy(buf, valid, len);
        buf[breaks[k].at] = breaks[k].value;
        emit(breaks[k].name, buf, len, 1, breaks[k].want);
    }
    memcpy(buf, valid, len);
    buf[len] = 0;
    emit("trailing-byte", buf, len + 1, 1, RQ_ECORRUPT);
    emit("truncated", valid, len - 5, 1, RQ_ETRUNC);
    /* count 4097, written by hand: raft_batch_header refuses it */
    memcpy(buf, valid, 9);
    buf[9] = 0x81, buf[10] = 0x20;
    memcpy(buf + 11, valid + 10, len - 10);
    emit("count-too-many", buf, len + 1, 1, RQ_ECORRUPT);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_raft_msg_corpus OUTPUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    emit_one_type_batches();
    emit_special_batches();
    emit_limits();
    emit_single_messages();
    emit_malformed();
    printf("gen_raft_msg_corpus: %d inputs in %s\n", written, out_dir);
    return 0;
}
