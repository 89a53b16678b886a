/* A producer's batching, in-flight bound and retries; see batcher.h. */
#include "client/batcher.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"

enum batch_state { FREE = 0, OPEN, READY, IN_FLIGHT };

struct batch {
    enum batch_state state;
    uint32_t partition;
    uint32_t next;                    /* the next batch of its partition, or NONE */
    uint64_t first_ns;                /* when its first record came */
    uint64_t bytes;
    uint64_t base_sequence;
    uint8_t sequenced;
    uint64_t ordinal;                 /* its queue's ordinal_next when it was sequenced */
    uint32_t attempt;
    uint32_t attempts_free;           /* sends whose answer did not count against retries_max */
    uint8_t behind;                   /* RQ_ESEQUENCE behind an earlier batch: waits to be head */
    uint8_t sent_as_head;             /* its last send was while no earlier batch was unresolved */
    uint64_t retry_ns;                /* may not be sent before */
    uint32_t count;
    struct proto_record_in *records;  /* batch_records_max */
    uint64_t *tokens;                 /* batch_records_max: the caller's token per record */
    uint8_t **blocks;                 /* each record's bytes and headers, one block apiece */
};

struct queue {
    uint32_t head, tail;              /* NONE when empty */
    uint32_t in_flight;
    uint64_t next_sequence;
    uint64_t ordinal_next;            /* batches given sequences under producer_id */
    uint64_t producer_id;             /* this partition's (idempotent producers) */
    uint8_t producer_wanted;          /* its sequences broke: no send until a new id comes */
    uint8_t producer_known;           /* a batch under producer_id was acknowledged here */
};

enum { NONE = UINT32_MAX };

struct batcher {
    struct batcher_config cfg;
    uint32_t partitions;
    uint64_t producer_id;
    struct queue *queues;
    struct batch *batches;            /* BATCHER_BATCHES_MAX */
    uint32_t cursor;                  /* round-robin start over partitions */
    uint32_t producers_wanted;        /* partitions with producer_wanted set */
    uint32_t in_flight;               /* batches out, over all partitions */
    struct batcher_stats stats;
};

void batcher_config_default(struct batcher_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->batch_records_max = 256;
    /* A batch is one Raft entry at the broker (RAFT_ENTRY_DATA_MAX, 64 KiB): 56 KiB of record
     * bytes and the framing of at most 256 records fit it; a larger default made every full batch
     * fail with RQ_ETOOBIG (found by the cluster benchmark). */
    cfg->batch_bytes_max = 56u << 10;
    cfg->linger_ns = 5 * 1000 * 1000;
    cfg->in_flight_max = 5;
    cfg->buffer_bytes_max = 32u << 20;
    cfg->backoff_ns = 10 * 1000 * 1000;
    cfg->backoff_max_ns = 1000 * 1000 * 1000;
    cfg->retries_max = 10;
}

struct batcher *batcher_create(const struct batcher_config *cfg, uint32_t partitions,
                               uint64_t producer_id) {
    RQ_ASSERT(cfg->batch_records_max >= 1 && cfg->batch_records_max <= PROTO_RECORDS_MAX);
    RQ_ASSERT(cfg->batch_bytes_max >= 1 && cfg->in_flight_max >= 1);
    RQ_ASSERT(partitions >= 1 && partitions <= BATCHER_PARTITIONS_MAX);
    RQ_ASSERT(!cfg->idempotent || producer_id != 0);
    struct batcher *b = calloc(1, sizeof *b);
    if (b == NULL) return NULL;
    b->cfg = *cfg;
    b->partitions = partitions;
    b->producer_id = producer_id;
    b->queues = calloc(partitions, sizeof *b->queues);
    b->batches = calloc(BATCHER_BATCHES_MAX, sizeof *b->batches);
    if (b->queues == NULL || b->batches == NULL) {
        batcher_destroy(b);
        return NULL;
    }
    for (uint32_t p = 0; p < partitions; p++) {
        b->queues[p].head = b->queues[p].tail = NONE;
        b->queues[p].producer_id = producer_id;
    }
    return b;
}

static void batch_free(struct batcher *b, struct batch *bt) {
    for (uint32_t i = 0; i < bt->count; i++) free(bt->blocks[i]);
    free(bt->records);
    free(bt->blocks);
    free(bt->tokens);
    b->stats.records_held -= bt->count;
    b->stats.bytes_held -= bt->bytes;
    memset(bt, 0, sizeof *bt);
}

void batcher_destroy(struct batcher *b) {
    if (b == NULL) return;
    for (uint32_t i = 0; b->batches && i < BATCHER_BATCHES_MAX; i++)
        if (b->batches[i].state != FREE) batch_free(b, &b->batches[i]);
    free(b->batches);
    free(b->queues);
    free(b);
}

static uint64_t record_bytes(const struct proto_record_in *r) {
    uint64_t n = (uint64_t)r->key.size + r->value.size;
    for (uint32_t i = 0; i < r->header_count; i++) n += r->headers[i].name.size + r->headers[i].value.size;
    return n;
}

/* A new OPEN batch at the tail of partition p's queue, or NONE when the table is full. */
static uint32_t batch_open(struct batcher *b, uint32_t p, uint64_t now_ns) {
    uint32_t id = 0;
    while (id < BATCHER_BATCHES_MAX && b->batches[id].state != FREE) id++;
    if (id == BATCHER_BATCHES_MAX) return NONE;
    struct batch *bt = &b->batches[id];
    bt->records = calloc(b->cfg.batch_records_max, sizeof *bt->records);
    bt->blocks = calloc(b->cfg.batch_records_max, sizeof *bt->blocks);
    bt->tokens = calloc(b->cfg.batch_records_max, sizeof *bt->tokens);
    if (bt->records == NULL || bt->blocks == NULL || bt->tokens == NULL) {
        free(bt->records);
        free(bt->blocks);
        free(bt->tokens);
        memset(bt, 0, sizeof *bt);
        return NONE;
    }
    bt->state = OPEN;
    bt->partition = p;
    bt->next = NONE;
    bt->first_ns = now_ns;
    struct queue *q = &b->queues[p];
    if (q->tail == NONE) q->head = id;
    else b->batches[q->tail].next = id;
    q->tail = id;
    return id;
}

/* Copies bytes into *at and returns where they now are (NULL when empty). */
static const uint8_t *take(uint8_t **at, struct proto_bytes from) {
    if (from.size == 0) return NULL;
    memcpy(*at, from.data, from.size);
    const uint8_t *here = *at;
    *at += from.size;
    return here;
}

/* One block holds the record's header structs, then its key, value and header bytes. */
static uint8_t *copy_record(const struct proto_record_in *r, uint64_t bytes,
                            struct proto_record_in *out) {
    size_t size = (size_t)bytes + r->header_count * sizeof(struct proto_header) + 1;
    uint8_t *block = malloc(size);
    if (block == NULL) return NULL;
    struct proto_header *h = (struct proto_header *)block;
    uint8_t *at = block + r->header_count * sizeof *h;
    *out = *r;
    out->key.data = take(&at, r->key);
    out->value.data = take(&at, r->value);
    for (uint32_t i = 0; i < r->header_count; i++) {
        h[i] = r->headers[i];
        h[i].name.data = take(&at, r->headers[i].name);
        h[i].value.data = take(&at, r->headers[i].value);
    }
    out->headers = r->header_count ? h : NULL;
    return block;
}

int batcher_add(struct batcher *b, uint32_t partition, const struct proto_record_in *record,
                uint64_t now_ns) {
    return batcher_add_token(b, partition, record, 0, now_ns);
}

int batcher_add_token(struct batcher *b, uint32_t partition, const struct proto_record_in *record,
                      uint64_t token, uint64_t now_ns) {
    if (partition >= b->partitions || record->header_count > PROTO_HEADERS_MAX) return RQ_EINVAL;
    uint64_t bytes = record_bytes(record);
    if (bytes > b->cfg.batch_bytes_max) return RQ_ETOOBIG;
    if (b->stats.bytes_held + bytes > b->cfg.buffer_bytes_max) return RQ_EBUSY;
    struct queue *q = &b->queues[partition];
    uint32_t id = q->tail;
    struct batch *bt = id == NONE ? NULL : &b->batches[id];
    if (bt != NULL && bt->state == OPEN &&
        (bt->count == b->cfg.batch_records_max || bt->bytes + bytes > b->cfg.batch_bytes_max))
        bt->state = READY;   /* full: it closes, and a new one opens */
    if (bt == NULL || bt->state != OPEN) {
        id = batch_open(b, partition, now_ns);
        if (id == NONE) return RQ_EBUSY;
        bt = &b->batches[id];
    }
    bt->blocks[bt->count] = copy_record(record, bytes, &bt->records[bt->count]);
    if (bt->blocks[bt->count] == NULL) return RQ_EBUSY;
    bt->tokens[bt->count] = token;
    bt->count++;
    bt->bytes += bytes;
    b->stats.records_held++;
    b->stats.bytes_held += bytes;
    return 0;
}

/* How many batches were given sequences since the partition's oldest unresolved one (it
 * included), 0 when that one has none yet. Idempotent producers keep it within in_flight_max, not
 * just the batches in flight: a broker recognises a retry only among a producer's last
 * PARTITION_BATCHES_KEPT batches, so a batch whose answer is slow must not be overtaken by more
 * than that while it is unresolved (the acknowledged batches behind it count too). */
static uint64_t sequenced_since_head(const struct batcher *b, const struct queue *q) {
    if (q->head == NONE || !b->batches[q->head].sequenced) return 0;
    RQ_ASSERT(q->ordinal_next > b->batches[q->head].ordinal);
    return q->ordinal_next - b->batches[q->head].ordinal;
}

/* When partition p's first unsent batch may go (0: now), or UINT64_MAX (none may). */
static uint64_t sendable_at(const struct batcher *b, uint32_t p, uint32_t *which) {
    const struct queue *q = &b->queues[p];
    if (q->in_flight >= b->cfg.in_flight_max || q->producer_wanted) return UINT64_MAX;
    /* A broker takes the first batch of a producer it does not know at any sequence: were a later
     * batch to land first, the earlier one could never land under this id, and the batches after
     * it might have landed. Until one is acknowledged, one batch at a time. */
    if (b->cfg.idempotent && !q->producer_known && q->in_flight > 0) return UINT64_MAX;
    uint32_t id = q->head;
    while (id != NONE && b->batches[id].state == IN_FLIGHT) id = b->batches[id].next;
    if (id == NONE) return UINT64_MAX;
    const struct batch *bt = &b->batches[id];
    if (b->cfg.idempotent && !bt->sequenced && sequenced_since_head(b, q) >= b->cfg.in_flight_max)
        return UINT64_MAX;
    /* Refused for a gap while an earlier batch was unresolved: it goes once it is the head (every
     * earlier batch acknowledged or failed), and nothing behind it overtakes it. An answer to an
     * earlier batch wakes the caller. */
    if (bt->behind && id != q->head) return UINT64_MAX;
    *which = id;
    uint64_t at = bt->retry_ns;
    /* A full batch goes at once, and so does any batch while the producer has nothing in flight
     * (Nagle's rule): lingering then only adds latency. While batches are out, the records that
     * arrive meanwhile gather for up to linger_ns, so a busy producer sends few large batches
     * and an idle one waits for nothing. Over all partitions, not per partition: a producer
     * spreading records over many partitions would otherwise send each a batch of a few. */
    int full = bt->count == b->cfg.batch_records_max;
    if (bt->state == OPEN && !full && b->in_flight > 0 && bt->first_ns + b->cfg.linger_ns > at)
        at = bt->first_ns + b->cfg.linger_ns;
    return at;
}

int batcher_next(struct batcher *b, uint64_t now_ns, struct batcher_batch *out, uint64_t *wake_ns) {
    *wake_ns = UINT64_MAX;
    for (uint32_t k = 0; k < b->partitions; k++) {
        uint32_t p = (b->cursor + k) % b->partitions, id = NONE;
        uint64_t at = sendable_at(b, p, &id);
        if (at > now_ns) {
            if (at < *wake_ns) *wake_ns = at;
            continue;
        }
        struct batch *bt = &b->batches[id];
        struct queue *q = &b->queues[p];
        if (b->cfg.idempotent && !bt->sequenced) {   /* fixed at the first send, kept by retries */
            bt->base_sequence = q->next_sequence;
            q->next_sequence += bt->count;
            bt->sequenced = 1;
            bt->ordinal = q->ordinal_next++;
        }
        bt->state = IN_FLIGHT;
        bt->attempt++;
        q->in_flight++;
        b->in_flight++;
        b->stats.batches_sent++;
        b->cursor = (p + 1) % b->partitions;
        bt->behind = 0;
        bt->sent_as_head = id == q->head;
        *out = (struct batcher_batch){.id = id, .partition = p, .producer_id = q->producer_id,
                                      .base_sequence = bt->base_sequence,
                                      .attempt = bt->attempt, .record_count = bt->count,
                                      .records = bt->records, .tokens = bt->tokens};
        *wake_ns = 0;
        return 1;
    }
    return 0;
}

static int retriable(int error) {
    return error == RQ_ENOTLEADER || error == RQ_EBUSY || error == RQ_ETIMEOUT;
}

/* Takes batch id out of its partition's queue and frees it. */
static void batch_remove(struct batcher *b, uint32_t id) {
    struct batch *bt = &b->batches[id];
    struct queue *q = &b->queues[bt->partition];
    uint32_t prev = NONE, cur = q->head;
    while (cur != id) {
        RQ_ASSERT(cur != NONE);
        prev = cur;
        cur = b->batches[cur].next;
    }
    if (prev == NONE) q->head = bt->next;
    else b->batches[prev].next = bt->next;
    if (q->tail == id) q->tail = prev;
    batch_free(b, bt);
}

enum batcher_outcome batcher_done(struct batcher *b, uint32_t id, int error, uint64_t now_ns) {
    return batcher_done_retriable(b, id, error, retriable(error), now_ns);
}

/* Whether batch id's refusal for a gap may be one that an earlier batch of its partition fills:
 * one was unresolved (in flight or waiting for its retry) when it was sent. Its answer may come
 * after the earlier one's acknowledgement, so whether it is the head now does not tell. */
static int sequence_gap_behind(const struct batcher *b, uint32_t id, int error) {
    return b->cfg.idempotent && error == RQ_ESEQUENCE && !b->batches[id].sent_as_head;
}

enum batcher_outcome batcher_done_retriable(struct batcher *b, uint32_t id, int error,
                                            int is_retriable, uint64_t now_ns) {
    RQ_ASSERT(id < BATCHER_BATCHES_MAX && b->batches[id].state == IN_FLIGHT);
    struct batch *bt = &b->batches[id];
    struct queue *q = &b->queues[bt->partition];
    RQ_ASSERT(q->in_flight > 0 && b->in_flight > 0);
    q->in_flight--;
    b->in_flight--;
    if (error == 0) {
        q->producer_known = 1;
        batch_remove(b, id);
        return BATCHER_ACKED;
    }
    if (is_retriable && sequence_gap_behind(b, id, error)) {
        /* Kafka's rule: not this batch's fault, so not one of its retries. It waits to be the
         * head (at most once per producer id: its next send is as the head). */
        RQ_ASSERT(bt->attempts_free < bt->attempt);
        bt->attempts_free++;
        bt->behind = 1;
        bt->state = READY;
        bt->retry_ns = now_ns;
        b->stats.retries++;
        return BATCHER_RETRY;
    }
    if (b->cfg.idempotent && error == RQ_ESEQUENCE) {
        /* Refused for a gap though sent as the head, every earlier batch acknowledged or failed:
         * one failed for good and was never written, so no batch of this partition sent under
         * this producer id was written after it (the window and first-batch rules above). The
         * partition's sequences cannot recover under this id (KIP-360): it waits for a new one. */
        if (!q->producer_wanted) b->producers_wanted++;
        q->producer_wanted = 1;
        RQ_ASSERT(b->producers_wanted <= b->partitions);
    }
    RQ_ASSERT(bt->attempt >= bt->attempts_free);
    if (is_retriable && bt->attempt - bt->attempts_free <= b->cfg.retries_max) {
        uint32_t counted = bt->attempt - bt->attempts_free;
        uint64_t wait = b->cfg.backoff_ns;
        for (uint32_t i = 1; i < counted && wait < b->cfg.backoff_max_ns; i++) wait *= 2;
        if (wait > b->cfg.backoff_max_ns) wait = b->cfg.backoff_max_ns;
        bt->state = READY;
        bt->retry_ns = now_ns + wait;
        b->stats.retries++;
        return BATCHER_RETRY;
    }
    b->stats.failures++;
    batch_remove(b, id);
    return BATCHER_FAILED;
}

int batcher_producer_wanted(const struct batcher *b, uint32_t *partition) {
    if (b->producers_wanted == 0) return 0; /* the common case, asked at every pump */
    for (uint32_t p = 0; p < b->partitions; p++) {
        const struct queue *q = &b->queues[p];
        if (q->producer_wanted && q->in_flight == 0) {
            *partition = p;
            return 1;
        }
    }
    return 0;
}

void batcher_producer_set(struct batcher *b, uint32_t partition, uint64_t producer_id) {
    RQ_ASSERT(b->cfg.idempotent);
    RQ_ASSERT(producer_id != 0);
    RQ_ASSERT(partition < b->partitions);
    struct queue *q = &b->queues[partition];
    RQ_ASSERT(q->producer_wanted);
    RQ_ASSERT(q->in_flight == 0);
    q->producer_id = producer_id;
    RQ_ASSERT(b->producers_wanted > 0);
    b->producers_wanted--;
    q->producer_wanted = 0;
    q->producer_known = 0;
    q->next_sequence = 0;
    q->ordinal_next = 0;
    uint32_t count = 0;
    for (uint32_t id = q->head; id != NONE; id = b->batches[id].next) {
        struct batch *bt = &b->batches[id];
        RQ_ASSERT(bt->state != IN_FLIGHT);
        RQ_ASSERT(count < BATCHER_BATCHES_MAX);
        bt->sequenced = 0; /* numbered again from 0 at its next send, in queue order */
        bt->base_sequence = 0;
        bt->behind = 0;
        count++;
    }
    b->stats.producer_resets++;
}

void batcher_stats_get(const struct batcher *b, struct batcher_stats *out) { *out = b->stats; }
