/* The client's event-driven core; see client.h.
 *
 * How it runs: every entry point changes state (a record queued, an answer taken) and then, at
 * the outermost level only, calls client_pump, which does all work that is due — expire requests,
 * ask for metadata or a producer id, send batches, fetches and admin requests — and arms the one
 * timer for the earliest thing that will be due next. Calls made from inside a callback only
 * change state and mark the client dirty; the pump they run under picks the work up. */
#include "client/client.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/rng.h"
#include "client/metadata.h"
#include "broker/ttl.h"
#include "client/client_internal.h"
#include "proto/frame.h"

/* a + b, capped (a configured age or timeout may be "forever"). */
static uint64_t add_sat(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

static int bytes_eq(struct proto_bytes a, const char *b, uint32_t b_size) {
    return a.size == b_size && (a.size == 0 || memcmp(a.data, b, a.size) == 0);
}

static struct proto_bytes topic_name(const struct topic *t) {
    return (struct proto_bytes){(const uint8_t *)t->name, t->name_size};
}

void rq_client_config_default(struct rq_client_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->request_timeout_ns = 5ull * 1000 * 1000 * 1000;
    cfg->metadata_max_age_ns = 30ull * 1000 * 1000 * 1000;
    cfg->backoff_ns = 10 * 1000 * 1000;
    cfg->backoff_max_ns = 1000 * 1000 * 1000;
    batcher_config_default(&cfg->batcher);
    cfg->acks = PROTO_ACKS_ALL;
    cfg->fetch_max_records = 256;
    cfg->fetch_max_bytes = 1u << 20;
    cfg->fetch_max_wait_ms = 500;
}

static void config_check(const struct rq_client_config *cfg) {
    RQ_ASSERT(cfg->bootstrap_count >= 1);
    RQ_ASSERT(cfg->bootstrap_count <= CLIENT_BOOTSTRAP_MAX);
    for (uint32_t i = 0; i < cfg->bootstrap_count; i++) {
        RQ_ASSERT(cfg->bootstrap[i] >= 1);
        RQ_ASSERT(cfg->bootstrap[i] <= RQ_NODE_ID_MAX);
    }
    RQ_ASSERT(cfg->request_timeout_ns > 0);
    RQ_ASSERT(cfg->backoff_ns <= cfg->backoff_max_ns);
    RQ_ASSERT(cfg->acks <= PROTO_ACKS_ALL);
    RQ_ASSERT(cfg->idempotent <= 1);
    if (cfg->idempotent) RQ_ASSERT(cfg->acks == PROTO_ACKS_ALL); /* as Kafka: dedup needs acks */
    /* A retry is recognised only among a producer's last batches (broker/partition.h). */
    if (cfg->idempotent) RQ_ASSERT(cfg->batcher.in_flight_max <= CLIENT_IDEMPOTENT_IN_FLIGHT_MAX);
    RQ_ASSERT(cfg->fetch_max_records >= 1);
    RQ_ASSERT(cfg->fetch_max_records <= PROTO_RECORDS_MAX);
    RQ_ASSERT(cfg->fetch_max_bytes >= 1);
    RQ_ASSERT(cfg->fetch_max_bytes <= PROTO_FRAME_MAX);
    RQ_ASSERT(cfg->fetch_max_wait_ms <= PROTO_WAIT_MS_MAX);
    /* A full batch must fit one frame: a batch that cannot be encoded fails with RQ_ETOOBIG. */
    RQ_ASSERT(cfg->batcher.batch_bytes_max < CLIENT_SEND_MAX / 2);
}

struct rq_client *rq_client_create(const struct rq_io *io, const struct rq_client_config *cfg,
                                   const struct rq_client_callbacks *cb, void *arg) {
    config_check(cfg);
    RQ_ASSERT(io->node_id > RQ_NODE_ID_MAX);
    struct rq_client *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->io = io;
    c->cfg = *cfg;
    c->cfg.batcher.idempotent = cfg->idempotent;
    c->cb = *cb;
    c->arg = arg;
    rq_rng_seed(&c->rng, io->seed);
    c->md = metadata_create(cfg->metadata_max_age_ns);
    c->send_buf = malloc(CLIENT_SEND_MAX);
    if (c->md == NULL || c->send_buf == NULL) {
        rq_client_destroy(c);
        return NULL;
    }
    c->md_request = NONE;
    c->md_version = PROTO_VERSION;
    c->pid_request = NONE;
    c->timer_ns = UINT64_MAX;
    for (uint32_t i = 0; i < CLIENT_SUBSCRIPTIONS_MAX; i++)
        c->subs[i].request = NONE;
    for (uint32_t i = 0; i < CLIENT_ADMIN_MAX; i++)
        c->admins[i].request = NONE;
    return c;
}

void rq_client_destroy(struct rq_client *c) {
    if (c == NULL) return;
    RQ_ASSERT(c->depth == 0); /* never from inside a callback */
    for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++)
        batcher_destroy(c->topics[i].batcher);
    group_destroy(c);
    for (uint32_t i = 0; i < CLIENT_ADMIN_MAX; i++) free(c->admins[i].payload);
    metadata_destroy(c->md);
    free(c->send_buf);
    free(c);
}

/* ---- requests -------------------------------------------------------------------------------- */

static uint64_t backoff(struct rq_client *c, uint32_t failures) {
    uint32_t shift = failures == 0 ? 0 : failures - 1;
    if (shift > BACKOFF_SHIFT_MAX) shift = BACKOFF_SHIFT_MAX;
    uint64_t wait = c->cfg.backoff_ns << shift;
    if (wait > c->cfg.backoff_max_ns || wait < c->cfg.backoff_ns) wait = c->cfg.backoff_max_ns;
    /* Seeded jitter, so clients that failed together do not all come back together. */
    return wait + rq_rng_below(&c->rng, wait / 4 + 1);
}

static int request_free_slot(const struct rq_client *c) {
    return c->requests_used < CLIENT_REQUESTS_MAX;
}

/* Takes a free slot for a request to to_node; returns its index (the caller checked there is one).
 */
static uint32_t request_open(struct rq_client *c, enum req_kind kind, uint32_t to_node,
                             uint64_t deadline_ns) {
    RQ_ASSERT(request_free_slot(c));
    RQ_ASSERT(to_node >= 1);
    RQ_ASSERT(to_node <= RQ_NODE_ID_MAX);
    for (uint32_t i = 0; i < CLIENT_REQUESTS_MAX; i++) {
        struct request *r = &c->requests[i];
        if (r->kind != REQ_FREE) continue;
        uint32_t generation = r->generation == GENERATION_MAX ? 1 : r->generation + 1;
        memset(r, 0, sizeof *r);
        r->kind = kind;
        r->generation = generation;
        r->to_node = to_node;
        r->deadline_ns = deadline_ns;
        r->slot = i;
        c->requests_used++;
        return i;
    }
    RQ_UNREACHABLE();
}

/* Frees slot i and returns what it held. */
static struct request request_close(struct rq_client *c, uint32_t i) {
    RQ_ASSERT(i < CLIENT_REQUESTS_MAX);
    RQ_ASSERT(c->requests[i].kind != REQ_FREE);
    RQ_ASSERT(c->requests_used > 0);
    struct request r = c->requests[i];
    c->requests[i].kind = REQ_FREE; /* the generation stays: the next use bumps it */
    c->requests_used--;
    return r;
}

static uint32_t correlation_of(const struct rq_client *c, uint32_t slot) {
    return c->requests[slot].generation << SLOT_BITS | slot;
}

/* Sends the payload already encoded at send_buf + PROTO_FRAME_HEADER as one frame: at version 1,
 * but for METADATA_REQ, whose version chooses its answer's layout (proto/frame.h). */
static void send_frame(struct rq_client *c, uint32_t to_node, uint8_t type, uint32_t correlation,
                       size_t payload_size) {
    RQ_ASSERT(payload_size <= CLIENT_SEND_MAX - PROTO_FRAME_HEADER);
    uint8_t *payload = c->send_buf + PROTO_FRAME_HEADER;
    uint8_t version = type == PROTO_METADATA_REQ ? c->md_version : PROTO_VERSION_MIN;
    if (correlation != 0) {   /* 0: an acks=0 produce, which holds no request */
        uint32_t slot = correlation & (CLIENT_REQUESTS_MAX - 1);
        RQ_ASSERT(c->requests[slot].kind != REQ_FREE);
        RQ_ASSERT(correlation == correlation_of(c, slot));
        c->requests[slot].version = version;
    }
    proto_frame_header_version(c->send_buf, version, type, correlation,
                               payload_size ? payload : NULL, (uint32_t)payload_size);
    c->io->send(c->io->env, to_node, c->send_buf, PROTO_FRAME_HEADER + payload_size);
    c->stats.requests_sent++;
}

static uint8_t *payload_buf(struct rq_client *c) { return c->send_buf + PROTO_FRAME_HEADER; }
static size_t payload_cap(void) { return CLIENT_SEND_MAX - PROTO_FRAME_HEADER; }

/* For group.c (client_internal.h). */
int client_request_free_slot(const struct rq_client *c) { return request_free_slot(c); }
uint32_t client_request_open(struct rq_client *c, enum req_kind kind, uint32_t to_node,
                             uint64_t deadline_ns) {
    return request_open(c, kind, to_node, deadline_ns);
}
uint32_t client_correlation(const struct rq_client *c, uint32_t slot) {
    return correlation_of(c, slot);
}
void client_send_frame(struct rq_client *c, uint32_t to_node, uint8_t type, uint32_t correlation,
                       size_t payload_size) {
    send_frame(c, to_node, type, correlation, payload_size);
}
uint8_t *client_payload(struct rq_client *c) { return payload_buf(c); }
size_t client_payload_cap(void) { return payload_cap(); }
uint64_t client_backoff(struct rq_client *c, uint32_t failures) { return backoff(c, failures); }

/* The server a controller-bound request goes to: the last hint, the metadata's controller, or
 * the next bootstrap server (which answers RQ_ENOTLEADER with a hint when it is not the one). */
static uint32_t controller_target(struct rq_client *c, uint32_t hint) {
    if (hint != 0) return hint;
    uint32_t controller = metadata_controller(c->md);
    if (controller >= 1 && controller <= RQ_NODE_ID_MAX) return controller;
    uint32_t id = c->cfg.bootstrap[c->md_bootstrap % c->cfg.bootstrap_count];
    c->md_bootstrap = (c->md_bootstrap + 1) % c->cfg.bootstrap_count;
    return id;
}

uint32_t client_controller_target(struct rq_client *c, uint32_t hint) {
    return controller_target(c, hint);
}

/* ---- metadata -------------------------------------------------------------------------------- */

/* Whether an answer told us about the topic: one to a request naming it (it may not exist), or
 * any answer that named it (one asking for every topic). */
static int topic_resolved(const struct rq_client *c, const struct topic *t) {
    return t->resolved || metadata_topic_error(c->md, topic_name(t)) != 1;
}

static int metadata_wanted(const struct rq_client *c, uint64_t now) {
    if (metadata_stale(c->md, now)) return 1;
    for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++)
        if (c->topics[i].used && !topic_resolved(c, &c->topics[i])) return 1;
    return 0;
}

static void metadata_send(struct rq_client *c, uint64_t now) {
    struct proto_bytes names[CLIENT_TOPICS_MAX];
    uint32_t count = 0;
    for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++) {
        struct topic *t = &c->topics[i];
        if (!t->used) continue;
        t->asked = 1;
        names[count++] = topic_name(t);
    }
    /* No topic of ours yet: ask for every topic (the answer names the controller either way). */
    size_t size = proto_encode_metadata_req(payload_buf(c), payload_cap(), names, count);
    RQ_ASSERT(size > 0);
    uint32_t to = c->cfg.bootstrap[c->md_bootstrap % c->cfg.bootstrap_count];
    c->md_request = request_open(c, REQ_METADATA, to, add_sat(now, c->cfg.request_timeout_ns));
    send_frame(c, to, PROTO_METADATA_REQ, correlation_of(c, c->md_request), size);
}

/* error: 0 with m, or why it failed (RQ_ETIMEOUT, an ERROR frame's code). */
static void metadata_answer(struct rq_client *c, int error, const struct proto_metadata_resp *m,
                            uint64_t now) {
    c->md_request = NONE;
    if (error != 0) {
        /* Another server may answer: rotate. A timeout already waited; an error backs off. */
        c->md_bootstrap = (c->md_bootstrap + 1) % c->cfg.bootstrap_count;
        c->md_failures++;
        RQ_INFO("client: metadata request failed (%s) -> asking server %u next", rq_strerror(error),
                c->cfg.bootstrap[c->md_bootstrap]);
        c->md_retry_ns = error == RQ_ETIMEOUT ? now : now + backoff(c, c->md_failures);
        for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++)
            c->topics[i].asked = 0;
        return;
    }
    metadata_update(c->md, m, now);
    c->stats.metadata_answers++;
    c->md_failures = 0;
    c->md_answer_ns = now;
    /* At most one refresh per back-off, even while answers keep showing the view wrong (a
     * partition without a leader during an election). */
    c->md_retry_ns = now + c->cfg.backoff_ns;
    for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++) {
        struct topic *t = &c->topics[i];
        if (t->asked) t->resolved = 1;
        t->asked = 0;
    }
}

static void pump_metadata(struct rq_client *c, uint64_t now) {
    if (c->md_request != NONE || now < c->md_retry_ns || !request_free_slot(c)) return;
    if (metadata_wanted(c, now)) metadata_send(c, now);
}

/* ---- the idempotent producer's id ------------------------------------------------------------ */

/* Whether a producer id is wanted: the client's first (*topic NONE), or a new one for a partition
 * whose sequences broke (client/batcher.h, batcher_producer_wanted). */
static int producer_id_wanted(const struct rq_client *c, uint32_t *topic, uint32_t *partition) {
    *topic = NONE;
    *partition = NONE;
    if (!c->cfg.idempotent) return 0;
    if (c->producer_id == 0) return 1;
    for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++) {
        const struct topic *t = &c->topics[i];
        if (t->used && t->batcher != NULL && batcher_producer_wanted(t->batcher, partition)) {
            *topic = i;
            return 1;
        }
    }
    return 0;
}

static void pump_producer_id(struct rq_client *c, uint64_t now) {
    if (c->pid_request != NONE || now < c->pid_retry_ns || !request_free_slot(c)) return;
    uint32_t topic, partition;
    if (!producer_id_wanted(c, &topic, &partition)) return;
    uint32_t to = controller_target(c, c->pid_hint);
    c->pid_topic = topic;
    c->pid_partition = partition;
    c->pid_request =
        request_open(c, REQ_INIT_PRODUCER, to, add_sat(now, c->cfg.request_timeout_ns));
    send_frame(c, to, PROTO_INIT_PRODUCER_REQ, correlation_of(c, c->pid_request), 0);
}

/* A new id for the partition the request was for (KIP-360): its unacknowledged batches are sent
 * again under it, sequences from 0. */
static void producer_id_renew(struct rq_client *c, uint64_t producer_id) {
    RQ_ASSERT(c->pid_topic < CLIENT_TOPICS_MAX);
    struct topic *t = &c->topics[c->pid_topic];
    RQ_ASSERT(t->used);
    RQ_ASSERT(t->batcher != NULL);
    RQ_INFO("client: %.*s/%u sequences broke -> producer id %llu, sequences from 0",
            (int)t->name_size, t->name, c->pid_partition, (unsigned long long)producer_id);
    batcher_producer_set(t->batcher, c->pid_partition, producer_id);
}

static void producer_id_answer(struct rq_client *c, int error,
                               const struct proto_init_producer_resp *m, uint64_t now) {
    c->pid_request = NONE;
    /* An id we hold already would not restart the broker's sequences: asked again. */
    if (error == 0 && m->error == 0 && m->producer_id != 0 && m->producer_id != c->producer_id) {
        if (c->pid_topic != NONE)
            producer_id_renew(c, m->producer_id);
        else
            RQ_INFO("client: producer id %llu -> idempotent batches may go",
                    (unsigned long long)m->producer_id);
        c->producer_id = m->producer_id;
        c->pid_failures = 0;
        return;
    }
    int why = error != 0 ? error : m->error != 0 ? m->error : RQ_EINVAL;
    c->pid_failures++;
    c->pid_hint = 0;
    c->pid_retry_ns = now + backoff(c, c->pid_failures);
    if (why == RQ_ENOTLEADER && m != NULL && m->leader_hint >= 1 &&
        m->leader_hint <= RQ_NODE_ID_MAX) {
        c->pid_hint = m->leader_hint; /* follow the hint at once */
        c->pid_retry_ns = now;
    }
    if (why == RQ_ENOTLEADER || why == RQ_ETIMEOUT) metadata_mark_stale(c->md);
}

/* ---- topics ---------------------------------------------------------------------------------- */

/* The topic's index, registering it when new; NONE when the table is full. */
static uint32_t topic_index(struct rq_client *c, struct proto_bytes name) {
    uint32_t free_index = NONE;
    for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++) {
        struct topic *t = &c->topics[i];
        if (t->used && bytes_eq(name, t->name, t->name_size)) return i;
        if (!t->used && free_index == NONE) free_index = i;
    }
    if (free_index == NONE) return NONE;
    struct topic *t = &c->topics[free_index];
    memset(t, 0, sizeof *t);
    t->used = 1;
    t->name_size = (uint8_t)name.size;
    memcpy(t->name, name.data, name.size);
    t->wake_ns = UINT64_MAX;
    c->dirty = 1; /* a topic to ask metadata about */
    return free_index;
}

uint32_t client_topic_index(struct rq_client *c, struct proto_bytes name) {
    return topic_index(c, name);
}

struct proto_bytes client_topic_name(const struct rq_client *c, uint32_t topic) {
    return topic_name(&c->topics[topic]);
}

/* ---- producer -------------------------------------------------------------------------------- */

/* What a produce answer's error means for the batch: worth a retry with back-off. RQ_ENOTOPIC is
 * retried too, because the broker may know a topic our metadata does not yet agree on (or the
 * other way round); the batcher's retries_max bounds it. */
static int produce_retriable(int error) {
    return error == RQ_ENOTLEADER || error == RQ_EBUSY || error == RQ_ETIMEOUT ||
           error == RQ_ECLOSED || error == RQ_ESEQUENCE || error == RQ_ENOTOPIC;
}

/* The answer (or a local verdict) for an in-flight batch; reports its records unless it retries.
 * base_offset UINT64_MAX: no offsets known (acks=0). */
static void batch_answer(struct rq_client *c, uint32_t topic, uint32_t batch_id, uint32_t partition,
                         uint32_t count, const uint64_t *tokens, int error, uint64_t base_offset,
                         int retriable, uint64_t now) {
    struct topic *t = &c->topics[topic];
    RQ_ASSERT(t->used);
    RQ_ASSERT(t->batcher != NULL);
    RQ_ASSERT(count >= 1);
    RQ_ASSERT(count <= PROTO_RECORDS_MAX);
    /* The batcher frees the batch (and its tokens) once it is acked or failed. */
    memcpy(c->tokens, tokens, count * sizeof *tokens);
    enum batcher_outcome outcome =
        batcher_done_retriable(t->batcher, batch_id, error, retriable, now);
    if (outcome == BATCHER_RETRY) {
        RQ_DEBUG("client: batch of %u records to %.*s/%u: %s -> retried after back-off", count,
                 (int)t->name_size, t->name, partition, rq_strerror(error));
        return;
    }
    if (outcome == BATCHER_FAILED)
        RQ_INFO("client: batch of %u records to %.*s/%u failed: %s", count, (int)t->name_size,
                t->name, partition, rq_strerror(error));
    for (uint32_t i = 0; i < count; i++) {
        int ok = outcome == BATCHER_ACKED;
        uint64_t offset = ok && base_offset != UINT64_MAX ? base_offset + i : UINT64_MAX;
        if (ok)
            c->stats.records_produced++;
        else
            c->stats.records_failed++;
        if (c->cb.produced) c->cb.produced(c->arg, c->tokens[i], partition, ok ? 0 : error, offset);
    }
}

static void batch_send(struct rq_client *c, uint32_t topic, const struct batcher_batch *b,
                       uint64_t now) {
    struct topic *t = &c->topics[topic];
    struct proto_bytes name = topic_name(t);
    uint32_t leader = metadata_leader(c->md, name, b->partition);
    if (leader < 1 || leader > RQ_NODE_ID_MAX) {
        /* Nobody to send to: counts as a not-leader attempt, backs off, and asks again. */
        metadata_mark_stale(c->md);
        batch_answer(c, topic, b->id, b->partition, b->record_count, b->tokens, RQ_ENOTLEADER, 0, 1,
                     now);
        return;
    }
    if (metadata_sticky_partition(c->md, name) == (int64_t)b->partition)
        metadata_next_partition(c->md, name); /* keyless records fill the next partition */
    struct proto_produce_req m = {.topic = name,
                                  .partition = b->partition,
                                  .acks = c->cfg.acks,
                                  .producer_id = b->producer_id,
                                  .base_sequence = b->base_sequence,
                                  .records = {.count = b->record_count}};
    size_t size = proto_encode_produce_req(payload_buf(c), payload_cap(), &m, b->records);
    if (size == 0) {
        batch_answer(c, topic, b->id, b->partition, b->record_count, b->tokens, RQ_ETOOBIG, 0, 0,
                     now);
        return;
    }
    if (c->cfg.acks == PROTO_ACKS_NONE) { /* nothing will answer: done once sent */
        send_frame(c, leader, PROTO_PRODUCE_REQ, 0, size);
        batch_answer(c, topic, b->id, b->partition, b->record_count, b->tokens, 0, UINT64_MAX, 0,
                     now);
        return;
    }
    RQ_DEBUG("client: batch of %u records to %.*s/%u (producer %llu sequence %llu, attempt %u) -> "
             "sent to leader %u",
             b->record_count, (int)t->name_size, t->name, b->partition,
             (unsigned long long)b->producer_id, (unsigned long long)b->base_sequence, b->attempt,
             leader);
    uint32_t slot = request_open(c, REQ_PRODUCE, leader, add_sat(now, c->cfg.request_timeout_ns));
    struct request *r = &c->requests[slot];
    r->owner = topic;
    r->batch_id = b->id;
    r->partition = b->partition;
    r->record_count = b->record_count;
    r->tokens = b->tokens;
    send_frame(c, leader, PROTO_PRODUCE_REQ, correlation_of(c, slot), size);
}

static void produce_answer(struct rq_client *c, const struct request *r, int error,
                           const struct proto_produce_resp *m, uint64_t now) {
    struct topic *t = &c->topics[r->owner];
    struct proto_bytes name = topic_name(t);
    int why = error != 0 ? error : m->error;
    if (why == RQ_ENOTLEADER) {
        uint32_t hint = m != NULL ? m->leader_hint : 0;
        metadata_not_leader(c->md, name, r->partition, hint); /* corrected at once */
    } else if (why == RQ_ENOTOPIC || why == RQ_ETIMEOUT) {
        metadata_mark_stale(c->md);
    }
    /* An ERROR frame means the broker could not read our request: resending cannot help. */
    int retriable = error == 0 ? produce_retriable(why) : error == RQ_ETIMEOUT;
    batch_answer(c, r->owner, r->batch_id, r->partition, r->record_count, r->tokens, why,
                 m != NULL ? m->base_offset : 0, retriable, now);
}

static void pump_batches(struct rq_client *c, uint64_t now) {
    for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++) {
        struct topic *t = &c->topics[i];
        if (!t->used || t->batcher == NULL) continue;
        t->wake_ns = UINT64_MAX;
        for (uint32_t n = 0; n < SENDS_PER_TOPIC_MAX; n++) {
            /* No slot: the answers that free one pump again. acks=0 needs none. */
            if (c->cfg.acks != PROTO_ACKS_NONE && !request_free_slot(c)) break;
            struct batcher_batch b;
            uint64_t wake;
            if (!batcher_next(t->batcher, now, &b, &wake)) {
                t->wake_ns = wake;
                break;
            }
            batch_send(c, i, &b, now);
            if (n + 1 == SENDS_PER_TOPIC_MAX) t->wake_ns = now; /* more may be ready */
        }
    }
}

/* Whether the topic can take records now; 0, RQ_EBUSY (not known yet) or RQ_ENOTOPIC. */
static int topic_ready(struct rq_client *c, uint32_t ti) {
    struct topic *t = &c->topics[ti];
    struct proto_bytes name = topic_name(t);
    if (!topic_resolved(c, t)) return RQ_EBUSY; /* the metadata request is on its way */
    uint32_t partitions = metadata_partitions(c->md, name);
    if (partitions == 0) {
        /* Not there (yet): it may be created at any moment, so the view is refreshed (at most
         * once per back-off) for as long as the caller keeps producing to it. */
        metadata_mark_stale(c->md);
        c->dirty = 1;
        return metadata_topic_error(c->md, name) == 0 ? RQ_EBUSY : RQ_ENOTOPIC;
    }
    if (c->cfg.idempotent && c->producer_id == 0) return RQ_EBUSY;
    if (t->batcher != NULL) return 0;
    if (partitions > BATCHER_PARTITIONS_MAX) return RQ_EINVAL;
    t->batcher = batcher_create(&c->cfg.batcher, partitions, c->producer_id);
    if (t->batcher == NULL) return RQ_ENOMEM;
    t->partitions = partitions;
    return 0;
}

/* ---- consumer -------------------------------------------------------------------------------- */

static void sub_backoff(struct rq_client *c, struct subscription *s, uint64_t now) {
    s->failures++;
    s->retry_ns = now + backoff(c, s->failures);
}

static void sub_pause(struct rq_client *c, struct subscription *s, int error, uint64_t log_start,
                      uint64_t high_watermark) {
    s->paused = 1;
    struct proto_bytes name = topic_name(&c->topics[s->topic]);
    RQ_INFO("client: fetch %.*s/%u at %llu paused: %s (log %llu..%llu) -> waits for a seek",
            (int)name.size, (const char *)name.data, s->partition, (unsigned long long)s->position,
            rq_strerror(error), (unsigned long long)log_start, (unsigned long long)high_watermark);
    if (c->cb.fetch_error)
        c->cb.fetch_error(c->arg, name, s->partition, error, s->position, log_start,
                          high_watermark);
}

/* The server a fetch goes to: the leader, or with from_follower any replica (seeded choice, so
 * the load spreads and the run replays). 0 when none is known. */
static uint32_t fetch_target(struct rq_client *c, const struct subscription *s) {
    struct proto_bytes name = topic_name(&c->topics[s->topic]);
    if (c->cfg.from_follower && !s->grouped) {
        uint32_t replicas[PROTO_REPLICAS_MAX];
        uint32_t count = metadata_replicas(c->md, name, s->partition, replicas);
        if (count > 0) return replicas[rq_rng_below(&c->rng, count)];
    }
    return metadata_leader(c->md, name, s->partition);
}

static void fetch_send(struct rq_client *c, uint32_t si, uint64_t now) {
    struct subscription *s = &c->subs[si];
    uint32_t to = fetch_target(c, s);
    if (to < 1 || to > RQ_NODE_ID_MAX) {
        metadata_mark_stale(c->md);
        sub_backoff(c, s, now);
        return;
    }
    struct proto_fetch_req m = {.topic = topic_name(&c->topics[s->topic]),
                                .partition = s->partition,
                                .offset = s->position,
                                .max_records = c->cfg.fetch_max_records,
                                .max_bytes = c->cfg.fetch_max_bytes,
                                .max_wait_ms = c->cfg.fetch_max_wait_ms,
                                .from_follower = s->grouped ? 0 : c->cfg.from_follower};
    if (s->grouped) group_fetch_fill(c, &m);
    size_t size = s->grouped ? proto_encode_group_fetch_req(payload_buf(c), payload_cap(), &m)
                             : proto_encode_fetch_req(payload_buf(c), payload_cap(), &m);
    RQ_ASSERT(size > 0);
    uint64_t wait_ns = (uint64_t)c->cfg.fetch_max_wait_ms * 1000 * 1000;
    s->request =
        request_open(c, REQ_FETCH, to, add_sat(add_sat(now, c->cfg.request_timeout_ns), wait_ns));
    c->requests[s->request].owner = si;
    c->requests[s->request].epoch = s->epoch;
    send_frame(c, to, s->grouped ? PROTO_GROUP_FETCH_REQ : PROTO_FETCH_REQ,
               correlation_of(c, s->request), size);
}

/* Delivers an answer's records from the position on, one at a time; stops at a gap, or when a
 * callback moved the subscription (seek, unsubscribe). */
static void fetch_deliver(struct rq_client *c, uint32_t si, const struct proto_fetch_resp *m) {
    struct subscription *s = &c->subs[si];
    uint32_t epoch = s->epoch;
    size_t cursor = 0;
    struct proto_record r;
    for (uint32_t n = 0; n < m->records.count && proto_record_next(&m->records, &cursor, &r); n++) {
        if (r.offset < s->position) { /* already delivered: a retried or duplicated answer */
            c->stats.records_dropped++;
            continue;
        }
        if (r.offset > s->position) { /* a gap: never skipped silently */
            sub_pause(c, s, RQ_ECORRUPT, m->log_start, m->high_watermark);
            return;
        }
        s->position++;
        if (r.header_count > 0 && ttl_is_placeholder(&r)) { /* expired: never delivered */
            c->stats.records_expired++;
            continue;
        }
        c->stats.records_fetched++;
        struct proto_bytes name = topic_name(&c->topics[s->topic]);
        if (c->cb.fetched) c->cb.fetched(c->arg, name, s->partition, &r);
        if (!s->used || s->epoch != epoch) return;
    }
}

static void fetch_answer(struct rq_client *c, const struct request *r, int error,
                         const struct proto_fetch_resp *m, uint64_t now) {
    struct subscription *s = &c->subs[r->owner];
    RQ_ASSERT(s->request != NONE);
    s->request = NONE;
    if (!s->used || s->epoch != r->epoch) return; /* seek or unsubscribe since: stale answer */
    int why = error != 0 ? error : m->error;
    struct proto_bytes name = topic_name(&c->topics[s->topic]);
    if (why == 0) {
        s->failures = 0;
        fetch_deliver(c, r->owner, m);
    } else if (why == RQ_EFENCED && s->grouped) {
        group_fenced(c, r->owner, now);   /* another member claimed it: the group decides */
    } else if (why == RQ_ERANGE && m != NULL && c->cfg.from_follower &&
               s->position > m->high_watermark) {
        /* A lagging follower's high watermark is behind the leader's: ask another replica. */
        sub_backoff(c, s, now);
    } else if (why == RQ_ERANGE && m != NULL) {
        sub_pause(c, s, RQ_ERANGE, m->log_start, m->high_watermark);
    } else if (why == RQ_ENOTLEADER) {
        metadata_not_leader(c->md, name, s->partition, m != NULL ? m->leader_hint : 0);
        sub_backoff(c, s, now);
    } else if (error == 0 && (why == RQ_EBUSY || why == RQ_ECLOSED || why == RQ_ENOTOPIC)) {
        if (why == RQ_ENOTOPIC) metadata_mark_stale(c->md);
        sub_backoff(c, s, now);
    } else if (why == RQ_ETIMEOUT) {
        metadata_mark_stale(c->md);
        sub_backoff(c, s, now);
    } else {
        sub_pause(c, s, why, 0, 0); /* an ERROR frame or an error a retry cannot fix */
    }
}

static void pump_fetches(struct rq_client *c, uint64_t now) {
    for (uint32_t i = 0; i < CLIENT_SUBSCRIPTIONS_MAX; i++) {
        struct subscription *s = &c->subs[i];
        if (!s->used || s->paused || s->request != NONE || now < s->retry_ns) continue;
        if (!request_free_slot(c)) return;
        fetch_send(c, i, now);
    }
}

/* ---- admin ----------------------------------------------------------------------------------- */

static void admin_finish(struct rq_client *c, struct admin_op *op, int error,
                         const struct proto_msg *m) {
    uint64_t token = op->token;
    enum admin_kind kind = op->kind;
    RQ_ASSERT(kind != ADMIN_FREE);
    op->kind = ADMIN_FREE; /* free before the callback, which may start another */
    if (kind == ADMIN_DELAYED) {   /* reported like a record: held, offsets come at release */
        free(op->payload);
        op->payload = NULL;
        if (error == 0) c->stats.records_produced++;
        else c->stats.records_failed++;
        if (c->cb.produced) c->cb.produced(c->arg, token, op->partition, error, UINT64_MAX);
        return;
    }
    int group_kind = kind == ADMIN_LIST_GROUPS || kind == ADMIN_DESCRIBE_GROUP || kind == ADMIN_OFFSET;
    if (error == 0 && kind != ADMIN_DESCRIBE && !group_kind) metadata_mark_stale(c->md);
    if (kind == ADMIN_DESCRIBE && error == 0) {
        if (c->cb.described) c->cb.described(c->arg, token, &m->u.metadata_resp);
        return;
    }
    if (group_kind && error == 0) {
        if (c->cb.group_admin) c->cb.group_admin(c->arg, token, m);
        return;
    }
    if (c->cb.admin_done) c->cb.admin_done(c->arg, token, error);
}

/* The server an admin op goes to: a partition's leader for ADMIN_OFFSET, else the controller's;
 * a hint first. 0 when no leader is known. */
static uint32_t admin_target(struct rq_client *c, const struct admin_op *op) {
    if (op->kind != ADMIN_OFFSET && op->kind != ADMIN_DELAYED) return controller_target(c, op->hint);
    if (op->hint != 0) return op->hint;
    return metadata_leader(c->md, (struct proto_bytes){op->name, op->name_size}, op->partition);
}

/* Encodes a group admin op's request; returns its size and *type. */
static size_t admin_group_encode(struct rq_client *c, const struct admin_op *op, uint8_t *type) {
    struct proto_bytes name = {op->name, op->name_size};
    if (op->kind == ADMIN_LIST_GROUPS) {
        *type = PROTO_LIST_GROUPS_REQ;
        return 0;   /* an empty payload */
    }
    if (op->kind == ADMIN_DELAYED) {
        *type = PROTO_DELAYED_PRODUCE_REQ;
        memcpy(payload_buf(c), op->payload, op->payload_size);
        return op->payload_size;
    }
    if (op->kind == ADMIN_DESCRIBE_GROUP) {
        struct proto_describe_group_req m = {.group = name};
        *type = PROTO_DESCRIBE_GROUP_REQ;
        return proto_encode_describe_group_req(payload_buf(c), payload_cap(), &m);
    }
    RQ_ASSERT(op->kind == ADMIN_OFFSET);
    struct proto_offset_req m = {.topic = name, .partition = op->partition,
                                 .cursor = {op->cursor, op->cursor_size}, .offset = op->offset};
    *type = op->offset_type;
    return proto_encode_offset_req(payload_buf(c), payload_cap(), op->offset_type, &m);
}

static void admin_send(struct rq_client *c, uint32_t ai, uint64_t now) {
    struct admin_op *op = &c->admins[ai];
    uint32_t to = admin_target(c, op);
    if (to < 1 || to > RQ_NODE_ID_MAX) {   /* no leader known for the partition yet */
        metadata_mark_stale(c->md);
        op->retry_ns = now + backoff(c, ++op->attempts);
        if (op->attempts >= CLIENT_ADMIN_ATTEMPTS_MAX) admin_finish(c, op, RQ_ENOTLEADER, NULL);
        return;
    }
    size_t size = 0;
    uint8_t type = 0;
    struct proto_bytes name = {op->name, op->name_size};
    if (op->kind == ADMIN_CREATE) {
        op->create.name = name;
        size = proto_encode_create_topic_req(payload_buf(c), payload_cap(), &op->create);
        type = PROTO_CREATE_TOPIC_REQ;
    } else if (op->kind == ADMIN_DELETE) {
        struct proto_delete_topic_req m = {.name = name};
        size = proto_encode_delete_topic_req(payload_buf(c), payload_cap(), &m);
        type = PROTO_DELETE_TOPIC_REQ;
    } else if (op->kind == ADMIN_DECOMMISSION) {
        struct proto_decommission_req m = {.broker = op->broker};
        size = proto_encode_decommission_req(payload_buf(c), payload_cap(), &m);
        type = PROTO_DECOMMISSION_REQ;
    } else if (op->kind == ADMIN_DESCRIBE) {
        size = proto_encode_metadata_req(payload_buf(c), payload_cap(), NULL, 0);
        type = PROTO_METADATA_REQ;
    } else {
        size = admin_group_encode(c, op, &type);
    }
    RQ_ASSERT(size > 0 || type == PROTO_LIST_GROUPS_REQ);
    op->attempts++;
    op->request = request_open(c, REQ_ADMIN, to, add_sat(now, c->cfg.request_timeout_ns));
    c->requests[op->request].owner = ai;
    send_frame(c, to, type, correlation_of(c, op->request), size);
}

static int admin_retriable(int error) {
    return error == RQ_ENOTLEADER || error == RQ_EBUSY || error == RQ_ECLOSED ||
           error == RQ_ETIMEOUT;
}

/* An answer's error and leader hint, whatever its type. */
static int answer_error(const struct proto_msg *m, uint32_t *hint) {
    *hint = 0;
    switch (m->type) {
    case PROTO_METADATA_RESP: return 0;
    case PROTO_LIST_GROUPS_RESP:
        *hint = m->u.list_groups_resp.leader_hint;
        return m->u.list_groups_resp.error;
    case PROTO_DESCRIBE_GROUP_RESP:
        *hint = m->u.describe_group_resp.leader_hint;
        return m->u.describe_group_resp.error;
    case PROTO_OFFSET_RESP:
        *hint = m->u.offset_resp.leader_hint;
        return m->u.offset_resp.error;
    case PROTO_PRODUCE_RESP:
        *hint = m->u.produce_resp.leader_hint;
        return m->u.produce_resp.error;
    default:   /* CREATE/DELETE_TOPIC_RESP, DECOMMISSION_RESP */
        *hint = m->u.status_resp.leader_hint;
        return m->u.status_resp.error;
    }
}

/* m: the answer; error: a timeout or an ERROR frame's code (m NULL). */
static void admin_answer(struct rq_client *c, const struct request *r, int error,
                         const struct proto_msg *m, uint64_t now) {
    struct admin_op *op = &c->admins[r->owner];
    RQ_ASSERT(op->kind != ADMIN_FREE);
    op->request = NONE;
    uint32_t hint = 0;
    int why = error != 0 ? error : answer_error(m, &hint);
    if (why == 0 && m->type == PROTO_METADATA_RESP) metadata_update(c->md, &m->u.metadata_resp, now);
    /* A partition's leader may not know a topic the metadata named a moment ago (its replica of
     * the controller lags): as for produce, worth another try. */
    int partition_op = op->kind == ADMIN_OFFSET || op->kind == ADMIN_DELAYED;
    int retriable = (error == 0 || error == RQ_ETIMEOUT) &&
                    (admin_retriable(why) || (partition_op && why == RQ_ENOTOPIC));
    if (!retriable || op->attempts >= CLIENT_ADMIN_ATTEMPTS_MAX) {
        admin_finish(c, op, why, m);
        return;
    }
    op->hint = 0;
    op->retry_ns = now + backoff(c, op->attempts);
    if (why == RQ_ENOTLEADER && (op->kind == ADMIN_OFFSET || op->kind == ADMIN_DELAYED))
        metadata_not_leader(c->md, (struct proto_bytes){op->name, op->name_size}, op->partition,
                            hint);
    if (why == RQ_ENOTLEADER && hint >= 1 && hint <= RQ_NODE_ID_MAX) {
        op->hint = hint; /* follow the hint at once */
        RQ_DEBUG("client: admin op not at the controller leader -> resent to hinted %u", op->hint);
        op->retry_ns = now;
    } else if (why == RQ_ENOTLEADER || why == RQ_ETIMEOUT || why == RQ_ENOTOPIC) {
        metadata_mark_stale(c->md);
    }
}

static void pump_admin(struct rq_client *c, uint64_t now) {
    for (uint32_t i = 0; i < CLIENT_ADMIN_MAX; i++) {
        struct admin_op *op = &c->admins[i];
        if (op->kind == ADMIN_FREE || op->request != NONE || now < op->retry_ns) continue;
        if (!request_free_slot(c)) return;
        admin_send(c, i, now);
    }
}

static struct admin_op *admin_open(struct rq_client *c, enum admin_kind kind, uint64_t token) {
    for (uint32_t i = 0; i < CLIENT_ADMIN_MAX; i++) {
        struct admin_op *op = &c->admins[i];
        if (op->kind != ADMIN_FREE) continue;
        RQ_ASSERT(op->request == NONE);
        memset(op, 0, sizeof *op);
        op->kind = kind;
        op->token = token;
        op->request = NONE;
        c->dirty = 1;
        return op;
    }
    return NULL;
}

/* ---- dispatch of answers and timeouts -------------------------------------------------------- */

/* A request ended: m is its decoded answer (NULL with error: RQ_ETIMEOUT or an ERROR frame's). */
static void request_done(struct rq_client *c, const struct request *r, int error,
                         const struct proto_msg *m, uint64_t now) {
    switch (r->kind) {
    case REQ_METADATA: metadata_answer(c, error, m ? &m->u.metadata_resp : NULL, now); break;
    case REQ_INIT_PRODUCER:
        producer_id_answer(c, error, m ? &m->u.init_producer_resp : NULL, now);
        break;
    case REQ_PRODUCE: produce_answer(c, r, error, m ? &m->u.produce_resp : NULL, now); break;
    case REQ_FETCH: fetch_answer(c, r, error, m ? &m->u.fetch_resp : NULL, now); break;
    case REQ_GROUP:
    case REQ_CURSOR: group_answer(c, r, error, m, now); break;
    case REQ_ADMIN: admin_answer(c, r, error, m, now); break;
    case REQ_FREE: RQ_UNREACHABLE();
    }
}

static uint8_t answer_type(const struct rq_client *c, const struct request *r) {
    switch (r->kind) {
    case REQ_METADATA: return PROTO_METADATA_RESP;
    case REQ_INIT_PRODUCER: return PROTO_INIT_PRODUCER_RESP;
    case REQ_PRODUCE: return PROTO_PRODUCE_RESP;
    case REQ_FETCH: return PROTO_FETCH_RESP;
    case REQ_GROUP:
    case REQ_CURSOR: return group_answer_type(r);
    case REQ_ADMIN: {
        enum admin_kind kind = c->admins[r->owner].kind;
        return kind == ADMIN_DESCRIBE         ? PROTO_METADATA_RESP
               : kind == ADMIN_CREATE         ? PROTO_CREATE_TOPIC_RESP
               : kind == ADMIN_DECOMMISSION   ? PROTO_DECOMMISSION_RESP
               : kind == ADMIN_LIST_GROUPS    ? PROTO_LIST_GROUPS_RESP
               : kind == ADMIN_DESCRIBE_GROUP ? PROTO_DESCRIBE_GROUP_RESP
               : kind == ADMIN_OFFSET         ? PROTO_OFFSET_RESP
               : kind == ADMIN_DELAYED        ? PROTO_PRODUCE_RESP
                                              : PROTO_DELETE_TOPIC_RESP;
    }
    case REQ_FREE: break;
    }
    RQ_UNREACHABLE();
}

static void expire_requests(struct rq_client *c, uint64_t now) {
    for (uint32_t i = 0; i < CLIENT_REQUESTS_MAX; i++) {
        if (c->requests[i].kind == REQ_FREE || c->requests[i].deadline_ns > now) continue;
        c->stats.timeouts++;
        struct request r = request_close(c, i);
        request_done(c, &r, RQ_ETIMEOUT, NULL, now);
    }
}

/* An acks=0 batch (sent with correlation 0, which no request ever has: generations start at 1)
 * was refused: nothing waits for it, but the refusal says the metadata is wrong (the broker is
 * not the leader, or does not know the topic), which nothing else would ever tell an acks=0
 * producer: every later batch would go to the same broker and be lost. */
static void acks0_refused(struct rq_client *c, const struct proto_frame *f) {
    struct proto_msg m;
    if (f->type != PROTO_PRODUCE_RESP || proto_decode(f->type, f->payload, f->payload_size, &m) != 0) {
        c->stats.malformed++;
        return;
    }
    c->stats.acks0_refused++;
    metadata_mark_stale(c->md);
}

static void handle_frame(struct rq_client *c, uint32_t from, const struct proto_frame *f,
                         uint64_t now) {
    if (f->correlation == 0) {
        acks0_refused(c, f);
        return;
    }
    uint32_t slot = f->correlation & (CLIENT_REQUESTS_MAX - 1);
    const struct request *r = &c->requests[slot];
    if (r->kind == REQ_FREE || r->generation != f->correlation >> SLOT_BITS || r->to_node != from) {
        c->stats.unmatched++; /* late (timed out), duplicated, or not ours */
        RQ_DEBUG("client: answer %s from %u matches no request -> ignored",
                 proto_type_name(f->type), from);
        return;
    }
    struct proto_msg m;
    if (f->type == PROTO_ERROR) {
        if (proto_decode(f->type, f->payload, f->payload_size, &m) != 0 || m.u.error.error >= 0) {
            c->stats.malformed++;
            return;
        }
        int error = m.u.error.error;
        if (error == RQ_EVERSION && r->version > PROTO_VERSION_MIN) {
            /* Only a METADATA_REQ goes above version 1: a broker older than this client refused
             * it (and any other one in flight at that version). Asked again at version 1 at
             * once, as after a lost answer; a refusal of version 1 is an error. */
            RQ_INFO("client: server %u does not speak metadata version %u -> asking at %u", from,
                    r->version, PROTO_VERSION_MIN);
            c->md_version = PROTO_VERSION_MIN;
            error = RQ_ETIMEOUT;
        }
        struct request done = request_close(c, slot);
        request_done(c, &done, error, NULL, now);
        return;
    }
    if (f->type != answer_type(c, r) ||
        proto_decode_version(f->version, f->type, f->payload, f->payload_size, &m)) {
        c->stats.malformed++; /* the request still waits for its answer or its timeout */
        return;
    }
    struct request done = request_close(c, slot);
    request_done(c, &done, 0, &m, now);
}

/* ---- the pump and the entry points ----------------------------------------------------------- */

static void earlier(uint64_t *wake, uint64_t t) {
    if (t < *wake) *wake = t;
}

/* The earliest time something is due, for the one timer. */
static uint64_t next_wake(const struct rq_client *c, uint64_t now) {
    uint64_t wake = UINT64_MAX;
    for (uint32_t i = 0; i < CLIENT_REQUESTS_MAX; i++)
        if (c->requests[i].kind != REQ_FREE) earlier(&wake, c->requests[i].deadline_ns);
    if (request_free_slot(c)) { /* otherwise only answers and timeouts can move things */
        if (c->md_request == NONE) {
            if (metadata_wanted(c, now))
                earlier(&wake, c->md_retry_ns);
            else
                earlier(&wake, add_sat(c->md_answer_ns, c->cfg.metadata_max_age_ns));
        }
        uint32_t topic, partition;
        if (c->pid_request == NONE && producer_id_wanted(c, &topic, &partition))
            earlier(&wake, c->pid_retry_ns);
        for (uint32_t i = 0; i < CLIENT_TOPICS_MAX; i++)
            if (c->topics[i].batcher != NULL) earlier(&wake, c->topics[i].wake_ns);
        for (uint32_t i = 0; i < CLIENT_SUBSCRIPTIONS_MAX; i++) {
            const struct subscription *s = &c->subs[i];
            if (s->used && !s->paused && s->request == NONE) earlier(&wake, s->retry_ns);
        }
        for (uint32_t i = 0; i < CLIENT_ADMIN_MAX; i++) {
            const struct admin_op *op = &c->admins[i];
            if (op->kind != ADMIN_FREE && op->request == NONE) earlier(&wake, op->retry_ns);
        }
        earlier(&wake, group_next_wake(c));
    }
    return wake < now ? now : wake;
}

static void client_pump(struct rq_client *c) {
    RQ_ASSERT(c->depth == 1);
    uint64_t now = c->io->now(c->io->env);
    for (uint32_t round = 0; round < PUMP_ROUNDS_MAX; round++) {
        c->dirty = 0;
        expire_requests(c, now);
        pump_metadata(c, now);
        pump_producer_id(c, now);
        pump_batches(c, now);
        group_pump(c, now);
        pump_fetches(c, now);
        pump_admin(c, now);
        if (!c->dirty) break; /* a callback queued work: take it now, within the bound */
    }
    uint64_t wake = next_wake(c, now);
    c->timer_ns = wake;
    if (wake != UINT64_MAX) c->io->set_timer(c->io->env, wake);
}

/* Work was queued that the next pump takes: the timer is asked for now, once, so that a burst of
 * calls in one handler costs one pump (TigerBeetle: run at your own pace, not per event). */
static void pump_soon(struct rq_client *c, uint64_t now) {
    if (c->depth > 1) {
        c->dirty = 1; /* the pump this call runs under takes it */
        return;
    }
    if (c->timer_ns <= now) return;
    c->timer_ns = now;
    c->io->set_timer(c->io->env, now);
}

static void enter(struct rq_client *c) { c->depth++; }

static void leave(struct rq_client *c) {
    RQ_ASSERT(c->depth >= 1);
    if (c->depth == 1)
        client_pump(c);
    else
        c->dirty = 1;
    c->depth--;
}

void rq_client_start(struct rq_client *c) {
    enter(c);
    leave(c);
}

void rq_client_on_timer(struct rq_client *c) {
    enter(c);
    leave(c);
}

void rq_client_on_message(struct rq_client *c, uint32_t from_node, const void *buf, size_t len) {
    enter(c);
    const uint8_t *at = buf;
    uint64_t now = c->io->now(c->io->env);
    while (len > 0) { /* each turn consumes a frame (>= PROTO_FRAME_HEADER bytes) or stops */
        struct proto_frame f;
        size_t size = 0;
        int rc = proto_frame_decode(at, len, PROTO_FRAME_MAX, &f, &size);
        if (rc == RQ_EVERSION || rc == RQ_ETYPE) {
            c->stats.malformed++; /* intact but not for us: skip it, keep the rest */
        } else if (rc != 0) {
            c->stats.malformed++; /* the rest cannot be framed */
            break;
        } else {
            handle_frame(c, from_node, &f, now);
        }
        RQ_ASSERT(size >= PROTO_FRAME_HEADER - 4);
        RQ_ASSERT(size <= len);
        at += size;
        len -= size;
    }
    leave(c);
}

int rq_client_produce(struct rq_client *c, struct proto_bytes topic, struct proto_bytes key,
                      struct proto_bytes value, const struct proto_header *headers,
                      uint32_t header_count, uint64_t timestamp, uint64_t token) {
    if (!proto_topic_name_valid(topic.data, topic.size)) return RQ_EINVAL;
    if (header_count > PROTO_HEADERS_MAX) return RQ_EINVAL;
    enter(c);
    uint64_t now = c->io->now(c->io->env);
    int rc = RQ_ENOMEM; /* the topic table is full */
    uint32_t ti = topic_index(c, topic);
    if (ti != NONE) rc = topic_ready(c, ti);
    if (rc == 0) {
        struct topic *t = &c->topics[ti];
        int64_t p = key.size > 0 ? metadata_partition_for_key(c->md, topic, key)
                                 : metadata_sticky_partition(c->md, topic);
        RQ_ASSERT(p >= 0); /* topic_ready saw its partitions */
        struct proto_record_in r = {.timestamp = timestamp,
                                    .key = key,
                                    .value = value,
                                    .header_count = header_count,
                                    .headers = headers};
        rc = batcher_add_token(t->batcher, (uint32_t)p % t->partitions, &r, token, now);
    }
    /* Not pumped here: the batch lingers anyway, and a burst of records costs one pump. */
    pump_soon(c, now);
    c->depth--;
    return rc;
}

static int sub_find(const struct rq_client *c, struct proto_bytes topic, uint32_t partition) {
    for (uint32_t i = 0; i < CLIENT_SUBSCRIPTIONS_MAX; i++) {
        const struct subscription *s = &c->subs[i];
        const struct topic *t = &c->topics[s->topic];
        if (s->used && s->partition == partition && bytes_eq(topic, t->name, t->name_size))
            return (int)i;
    }
    return -1;
}

int rq_client_subscribe(struct rq_client *c, struct proto_bytes topic, uint32_t partition,
                        uint64_t start_offset) {
    if (!proto_topic_name_valid(topic.data, topic.size)) return RQ_EINVAL;
    if (partition >= PROTO_PARTITIONS_MAX) return RQ_EINVAL;
    if (sub_find(c, topic, partition) >= 0) return RQ_EEXIST;
    enter(c);
    uint32_t ti = topic_index(c, topic);
    uint32_t si = ti == NONE ? NONE : client_sub_start(c, ti, partition, start_offset, 0);
    leave(c);
    if (ti == NONE) return RQ_ENOMEM;
    return si == NONE ? RQ_EBUSY : 0;
}

uint32_t client_sub_start(struct rq_client *c, uint32_t topic, uint32_t partition,
                          uint64_t offset, int grouped) {
    /* A free entry whose last fetch has ended (an answer must not find a new subscription). */
    uint32_t si = 0;
    while (si < CLIENT_SUBSCRIPTIONS_MAX && (c->subs[si].used || c->subs[si].request != NONE))
        si++;
    if (si == CLIENT_SUBSCRIPTIONS_MAX) return NONE;
    struct subscription *s = &c->subs[si];
    uint32_t epoch = s->epoch + 1;
    *s = (struct subscription){.used = 1,
                               .grouped = (uint8_t)(grouped != 0),
                               .topic = topic,
                               .partition = partition,
                               .position = offset,
                               .request = NONE,
                               .epoch = epoch};
    c->dirty = 1;
    return si;
}

void client_sub_stop(struct rq_client *c, uint32_t si) {
    RQ_ASSERT(si < CLIENT_SUBSCRIPTIONS_MAX && c->subs[si].used);
    c->subs[si].used = 0;
    c->subs[si].epoch++; /* the slot is reused only after its fetch ended (request NONE) */
}

int rq_client_seek(struct rq_client *c, struct proto_bytes topic, uint32_t partition,
                   uint64_t offset) {
    int si = sub_find(c, topic, partition);
    if (si < 0) return RQ_ENOENT;
    enter(c);
    struct subscription *s = &c->subs[si];
    s->position = offset;
    s->paused = 0;
    s->failures = 0;
    s->retry_ns = 0;
    s->epoch++; /* an answer to the fetch under way no longer counts */
    c->dirty = 1;
    leave(c);
    return 0;
}

int rq_client_unsubscribe(struct rq_client *c, struct proto_bytes topic, uint32_t partition) {
    int si = sub_find(c, topic, partition);
    if (si < 0) return RQ_ENOENT;
    if (c->subs[si].grouped) return RQ_EINVAL;   /* the group's: it leaves with the group */
    client_sub_stop(c, (uint32_t)si);
    return 0;
}

int rq_client_position(const struct rq_client *c, struct proto_bytes topic, uint32_t partition,
                       uint64_t *offset) {
    int si = sub_find(c, topic, partition);
    if (si < 0) return RQ_ENOENT;
    *offset = c->subs[si].position;
    return 0;
}

static int admin_start(struct rq_client *c, enum admin_kind kind, struct proto_bytes name,
                       const struct proto_create_topic_req *req, uint64_t token) {
    enter(c);
    struct admin_op *op = admin_open(c, kind, token);
    if (op != NULL) {
        if (req != NULL) op->create = *req;
        op->name_size = name.size;
        if (name.size) memcpy(op->name, name.data, name.size);
    }
    leave(c);
    return op == NULL ? RQ_EBUSY : 0;
}

int rq_client_create_topic(struct rq_client *c, const struct proto_create_topic_req *req,
                           uint64_t token) {
    if (!proto_topic_name_valid(req->name.data, req->name.size)) return RQ_EINVAL;
    if (req->partitions < 1 || req->partitions > PROTO_PARTITIONS_MAX) return RQ_EINVAL;
    if (req->replication < 1 || req->replication > PROTO_REPLICAS_MAX) return RQ_EINVAL;
    if (req->max_message_bytes < 1 || req->max_message_bytes > PROTO_FRAME_MAX) return RQ_EINVAL;
    return admin_start(c, ADMIN_CREATE, req->name, req, token);
}

int rq_client_delete_topic(struct rq_client *c, struct proto_bytes name, uint64_t token) {
    if (!proto_topic_name_valid(name.data, name.size)) return RQ_EINVAL;
    return admin_start(c, ADMIN_DELETE, name, NULL, token);
}

int rq_client_decommission(struct rq_client *c, uint32_t broker, uint64_t token) {
    if (broker < 1 || broker > RQ_NODE_ID_MAX) return RQ_EINVAL;
    enter(c);
    struct admin_op *op = admin_open(c, ADMIN_DECOMMISSION, token);
    if (op != NULL) op->broker = broker;
    leave(c);
    return op == NULL ? RQ_EBUSY : 0;
}

int rq_client_describe(struct rq_client *c, uint64_t token) {
    return admin_start(c, ADMIN_DESCRIBE, (struct proto_bytes){NULL, 0}, NULL, token);
}

int rq_client_list_groups(struct rq_client *c, uint64_t token) {
    return admin_start(c, ADMIN_LIST_GROUPS, (struct proto_bytes){NULL, 0}, NULL, token);
}

int rq_client_describe_group(struct rq_client *c, struct proto_bytes group, uint64_t token) {
    if (!proto_group_name_valid(group.data, group.size, PROTO_GROUP_NAME_MAX)) return RQ_EINVAL;
    return admin_start(c, ADMIN_DESCRIBE_GROUP, group, NULL, token);
}

int rq_client_offset(struct rq_client *c, uint8_t type, struct proto_bytes topic,
                     uint32_t partition, struct proto_bytes cursor, uint64_t offset,
                     uint64_t token) {
    if (type != PROTO_OFFSET_FETCH_REQ && type != PROTO_RESET_OFFSET_REQ) return RQ_EINVAL;
    if (!proto_topic_name_valid(topic.data, topic.size) || partition >= PROTO_PARTITIONS_MAX ||
        !proto_cursor_valid(cursor.data, cursor.size))
        return RQ_EINVAL;
    enter(c);
    struct admin_op *op = topic_index(c, topic) == NONE ? NULL   /* its leader: from metadata */
                                                        : admin_open(c, ADMIN_OFFSET, token);
    if (op != NULL) {
        op->name_size = topic.size;
        memcpy(op->name, topic.data, topic.size);
        op->offset_type = type;
        op->partition = partition;
        op->offset = type == PROTO_RESET_OFFSET_REQ ? offset : 0;
        op->cursor_size = cursor.size;
        memcpy(op->cursor, cursor.data, cursor.size);
    }
    leave(c);
    return op == NULL ? RQ_EBUSY : 0;
}

/* Encodes the DELAYED_PRODUCE_REQ of one record for partition p into a new buffer. */
static uint8_t *delayed_encode(struct proto_bytes topic, uint32_t p, const struct proto_record_in *r,
                               uint64_t delay_ms, uint32_t *size) {
    uint8_t *buf = malloc(CLIENT_SEND_MAX);
    if (buf == NULL) return NULL;
    struct proto_produce_req m = {.topic = topic, .partition = p, .acks = PROTO_ACKS_ALL,
                                  .records = {.count = 1}, .delay_ms = delay_ms};
    size_t n = proto_encode_delayed_produce_req(buf, payload_cap(), &m, r);
    uint8_t *exact = n ? realloc(buf, n) : NULL;
    if (exact == NULL) free(buf);
    *size = (uint32_t)n;
    return exact;
}

int rq_client_produce_delayed(struct rq_client *c, struct proto_bytes topic, struct proto_bytes key,
                              struct proto_bytes value, const struct proto_header *headers,
                              uint32_t header_count, uint64_t timestamp, uint64_t delay_ms,
                              uint64_t token) {
    if (!proto_topic_name_valid(topic.data, topic.size) || header_count > PROTO_HEADERS_MAX ||
        delay_ms < 1 || delay_ms > PROTO_DELAY_MS_MAX)
        return RQ_EINVAL;
    enter(c);
    int rc = RQ_ENOMEM;   /* the topic table is full */
    uint32_t ti = topic_index(c, topic);
    if (ti != NONE) rc = metadata_partitions(c->md, topic) == 0 ? RQ_EBUSY : 0;   /* not known yet */
    int64_t p = -1;
    if (rc == 0) p = key.size > 0 ? metadata_partition_for_key(c->md, topic, key)
                                  : metadata_sticky_partition(c->md, topic);
    struct proto_record_in r = {.timestamp = timestamp, .key = key, .value = value,
                                .header_count = header_count, .headers = headers};
    uint32_t size = 0;
    uint8_t *payload = rc == 0 ? delayed_encode(topic, (uint32_t)p, &r, delay_ms, &size) : NULL;
    if (rc == 0 && payload == NULL) rc = size == 0 ? RQ_ETOOBIG : RQ_ENOMEM;
    struct admin_op *op = rc == 0 ? admin_open(c, ADMIN_DELAYED, token) : NULL;
    if (rc == 0 && op == NULL) rc = RQ_EBUSY;
    if (op != NULL) {
        op->name_size = topic.size;
        memcpy(op->name, topic.data, topic.size);
        op->partition = (uint32_t)p;
        op->payload = payload;
        op->payload_size = size;
    } else {
        free(payload);
    }
    leave(c);
    return rc;
}

uint32_t rq_client_partitions(const struct rq_client *c, struct proto_bytes topic) {
    return metadata_partitions(c->md, topic);
}

uint64_t rq_client_producer_id(const struct rq_client *c) { return c->producer_id; }

void rq_client_stats_get(const struct rq_client *c, struct rq_client_stats *out) {
    *out = c->stats;
}
