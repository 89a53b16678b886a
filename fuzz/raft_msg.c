/* Fuzz target: the Raft message codec (src/raft/msg.h), the first code to read bytes from the
 * network. The input is decoded as a batch and as one message. Decoding must never crash or read
 * past the input (ASan), must fail only with RQ_ETRUNC, RQ_ECORRUPT or RQ_ETOOBIG, and everything
 * it accepts must be well formed: raft_msg_encode (which asserts well-formedness) takes it, its
 * canonical encoding is no longer than the input's, and decoding that gives the same message,
 * field by field and byte by byte. The messages of a batch are re-encoded into a new batch too,
 * which is then read in step with the input. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "raft/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Inputs above this are only decoded, not rebuilt as a batch (libFuzzer runs with -max_len=65536;
 * the replay driver allows 1 MiB). */
enum { REBUILT_INPUT_MAX = 1 << 20 };

static uint8_t reencoded[RAFT_MSG_BYTES_MAX];
static uint8_t rebuilt[REBUILT_INPUT_MAX + RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE];
static struct raft_entry entries_a[RAFT_MSG_ENTRIES_MAX];
static struct raft_entry entries_b[RAFT_MSG_ENTRIES_MAX];

static void assert_error(int err) {
    RQ_ASSERT(err == RQ_ETRUNC || err == RQ_ECORRUPT || err == RQ_ETOOBIG);
}

static void assert_entry_eq(const struct raft_entry *a, const struct raft_entry *b) {
    RQ_ASSERT(a->index == b->index);
    RQ_ASSERT(a->term == b->term);
    RQ_ASSERT(a->type == b->type);
    RQ_ASSERT(a->data_size == b->data_size);
    RQ_ASSERT((a->data == NULL) == (a->data_size == 0));
    RQ_ASSERT((b->data == NULL) == (b->data_size == 0));
    if (a->data_size > 0) RQ_ASSERT(memcmp(a->data, b->data, a->data_size) == 0);
}

static void assert_msg_eq(const struct raft_msg *a, const struct raft_msg *b) {
    RQ_ASSERT(a->type == b->type);
    RQ_ASSERT(a->group == b->group);
    RQ_ASSERT(a->from == b->from);
    RQ_ASSERT(a->to == b->to);
    RQ_ASSERT(a->term == b->term);
    RQ_ASSERT(a->last_index == b->last_index);
    RQ_ASSERT(a->last_term == b->last_term);
    RQ_ASSERT(a->reject == b->reject);
    RQ_ASSERT(a->prev_index == b->prev_index);
    RQ_ASSERT(a->prev_term == b->prev_term);
    RQ_ASSERT(a->commit == b->commit);
    RQ_ASSERT(a->entry_count == b->entry_count);
    for (uint32_t i = 0; i < a->entry_count; i++) assert_entry_eq(&a->entries[i], &b->entries[i]);
    RQ_ASSERT(a->index == b->index);
    RQ_ASSERT(a->hint_index == b->hint_index);
    RQ_ASSERT(a->hint_term == b->hint_term);
    RQ_ASSERT(a->context == b->context);
}

/* m was decoded from input_size bytes: it re-encodes into at most as many, and decodes back. */
static void check_reencode(const struct raft_msg *m, size_t input_size) {
    size_t pos = 0;
    RQ_ASSERT(raft_msg_encode(m, reencoded, sizeof reencoded, &pos) == 0);
    RQ_ASSERT(pos <= raft_msg_encoded_size(m));
    RQ_ASSERT(pos <= input_size);  /* varints are re-encoded minimally */
    struct raft_msg again;
    RQ_ASSERT(raft_msg_decode(reencoded, pos, &again, entries_b) == 0);
    again.from = m->from;  /* only a batch carries it */
    assert_msg_eq(&again, m);
}

/* Decodes the input as a batch; re-encodes each message alone and into `rebuilt`. Returns the
 * messages decoded, and the rebuilt body's size in *body_size (0 when it was not rebuilt). */
static uint32_t fuzz_batch(const uint8_t *data, size_t size, size_t *body_size) {
    struct raft_batch_reader br;
    *body_size = 0;
    int err = raft_batch_open(&br, data, size);
    if (err) {
        assert_error(err);
        return 0;
    }
    RQ_ASSERT(br.from >= 1);
    RQ_ASSERT(br.count >= 1);
    RQ_ASSERT(br.count <= RAFT_BATCH_MSGS_MAX);
    int rebuild = size <= REBUILT_INPUT_MAX;
    size_t pos = RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE;  /* the header goes in front later */
    uint32_t decoded = 0;
    struct raft_msg m;
    for (;;) {
        size_t before = br.pos;
        err = raft_batch_next(&br, &m, entries_a);
        if (err <= 0) break;
        RQ_ASSERT(m.from == br.from);
        check_reencode(&m, br.pos - before);
        if (rebuild) RQ_ASSERT(raft_msg_encode(&m, rebuilt, sizeof rebuilt, &pos) == 0);
        decoded++;
    }
    if (err) assert_error(err);
    if (err == 0) RQ_ASSERT(decoded == br.count);
    if (err == 0) RQ_ASSERT(br.pos == size);
    RQ_ASSERT(decoded <= br.count);
    if (rebuild) *body_size = pos - (RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE);
    return decoded;
}

/* Reads the rebuilt batch in step with the input: the same messages, from the same node. */
static void check_rebuilt(const uint8_t *data, size_t size, uint32_t count, size_t body_size) {
    uint8_t header[RAFT_BATCH_HEADER_SIZE + RQ_VARINT_MAX_SIZE];
    struct raft_batch_reader in, out;
    RQ_ASSERT(raft_batch_open(&in, data, size) == 0);
    size_t header_size = raft_batch_header(header, in.from, count);
    uint8_t *start = rebuilt + sizeof header - header_size;
    memcpy(start, header, header_size);
    RQ_ASSERT(header_size + body_size <= size);
    RQ_ASSERT(raft_batch_open(&out, start, header_size + body_size) == 0);
    RQ_ASSERT(out.from == in.from);
    RQ_ASSERT(out.count == count);
    struct raft_msg a, b;
    for (uint32_t i = 0; i < count; i++) {
        RQ_ASSERT(raft_batch_next(&in, &a, entries_a) == 1);
        RQ_ASSERT(raft_batch_next(&out, &b, entries_b) == 1);
        assert_msg_eq(&b, &a);
    }
    RQ_ASSERT(raft_batch_next(&out, &b, entries_b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t body_size;
    uint32_t count = fuzz_batch(data, size, &body_size);
    if (count > 0 && body_size > 0) check_rebuilt(data, size, count, body_size);

    struct raft_msg m;
    int err = raft_msg_decode(data, size, &m, entries_a);
    if (err) assert_error(err);
    else check_reencode(&m, size);
    return 0;
}
