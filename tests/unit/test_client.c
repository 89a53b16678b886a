/* The client's event-driven core (src/client/client.c), driven through a fake io (a clock the test
 * moves, the one timer, a queue of sent frames) by a broker scripted inside each test: it decodes
 * what the client sent and answers with encoded frames. Metadata bootstrap, rotation on timeout and
 * ERROR, refresh by age; produce with acks=all end to end with per-record offsets, keyed
 * partitioning and headers; RQ_ENOTLEADER hints followed; a lost answer timed out and retried with
 * the same base sequence; RQ_ECLOSED retried; RQ_ESEQUENCE behind an unresolved batch waiting
 * for it without using retries, and at the head renewing the producer id (sequences from 0);
 * retries running out, ERROR frames
 * failing a batch; backpressure; acks=0; the consumer's fetch loop (order, drops below the
 * position, gaps, RQ_ERANGE, seek, timeouts, follower reads); admin following the controller hint,
 * describe, attempts running out; callbacks calling back in; malformed and seeded-garbage answers
 * counted and ignored. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/rng.h"
#include "client/client.h"
#include "proto/frame.h"
#include "tests/unit/suite_main.h"

enum { SENT_MAX = 64, CLIENT_ID = 1000, MS = 1000 * 1000, TIMEOUT = 100 * MS, LOG_MAX = 64 };

/* ---- the fake io ----------------------------------------------------------------------------- */

struct sent {
    uint32_t to;
    uint8_t *buf;
    size_t len;
};

struct fake {
    struct rq_io io;
    uint64_t now;
    uint64_t timer; /* UINT64_MAX: none asked */
    struct sent sent[SENT_MAX];
    uint32_t sent_count;
    /* what the callbacks saw */
    uint64_t tokens[LOG_MAX], offsets[LOG_MAX];
    int errors[LOG_MAX];
    uint32_t partitions[LOG_MAX];
    uint32_t produced;
    uint64_t fetched_offsets[LOG_MAX];
    char fetched_values[LOG_MAX][8];
    uint32_t fetched;
    int fetch_error;
    uint64_t fe_position, fe_log_start, fe_hw;
    uint32_t fetch_errors;
    uint64_t admin_token;
    int admin_error;
    uint32_t admin_dones;
    uint32_t described_topics;
    uint32_t describes;
    /* callbacks that call back into the client */
    struct rq_client *client;
    uint32_t reproduce;  /* produced(): queue this many more records, one per call */
    uint64_t seek_after; /* fetched(): seek to seek_to after this offset (0: never) */
    uint64_t seek_to;
};

static uint64_t fake_now(void *env) { return ((struct fake *)env)->now; }
static void fake_set_timer(void *env, uint64_t at) { ((struct fake *)env)->timer = at; }
static void fake_send(void *env, uint32_t to, const void *buf, size_t len) {
    struct fake *f = env;
    ck_assert_uint_lt(f->sent_count, SENT_MAX);
    struct sent *s = &f->sent[f->sent_count++];
    s->to = to;
    s->buf = malloc(len);
    memcpy(s->buf, buf, len);
    s->len = len;
}

static void on_produced(void *arg, uint64_t token, uint32_t partition, int error, uint64_t off) {
    struct fake *f = arg;
    ck_assert_uint_lt(f->produced, LOG_MAX);
    f->tokens[f->produced] = token;
    f->partitions[f->produced] = partition;
    f->errors[f->produced] = error;
    f->offsets[f->produced++] = off;
    if (f->reproduce > 0) {
        f->reproduce--;
        struct proto_bytes empty = {NULL, 0}, value = {(const uint8_t *)"again", 5};
        ck_assert_int_eq(rq_client_produce(f->client,
                                           (struct proto_bytes){(const uint8_t *)"orders", 6},
                                           empty, value, NULL, 0, 0, 500 + f->reproduce),
                         0);
    }
}
static void on_fetched(void *arg, struct proto_bytes topic, uint32_t partition,
                       const struct proto_record *r) {
    struct fake *f = arg;
    ck_assert_uint_lt(f->fetched, LOG_MAX);
    ck_assert_uint_lt(r->value.size, 8);
    memcpy(f->fetched_values[f->fetched], r->value.data, r->value.size);
    f->fetched_values[f->fetched][r->value.size] = '\0';
    f->fetched_offsets[f->fetched++] = r->offset;
    if (f->seek_after != 0 && r->offset == f->seek_after)
        ck_assert_int_eq(rq_client_seek(f->client, topic, partition, f->seek_to), 0);
}
static void on_fetch_error(void *arg, struct proto_bytes topic, uint32_t partition, int error,
                           uint64_t position, uint64_t log_start, uint64_t hw) {
    struct fake *f = arg;
    (void)topic;
    (void)partition;
    f->fetch_errors++;
    f->fetch_error = error;
    f->fe_position = position;
    f->fe_log_start = log_start;
    f->fe_hw = hw;
}
static void on_admin_done(void *arg, uint64_t token, int error) {
    struct fake *f = arg;
    f->admin_dones++;
    f->admin_token = token;
    f->admin_error = error;
}
static void on_described(void *arg, uint64_t token, const struct proto_metadata_resp *m) {
    struct fake *f = arg;
    f->describes++;
    f->admin_token = token;
    f->described_topics = m->topic_count;
}

static const struct rq_client_callbacks callbacks = {.produced = on_produced,
                                                     .fetched = on_fetched,
                                                     .fetch_error = on_fetch_error,
                                                     .admin_done = on_admin_done,
                                                     .described = on_described};

static void config(struct rq_client_config *cfg) {
    rq_client_config_default(cfg);
    cfg->bootstrap[0] = 1;
    cfg->bootstrap[1] = 2;
    cfg->bootstrap[2] = 3;
    cfg->bootstrap_count = 3;
    cfg->request_timeout_ns = TIMEOUT;
    cfg->metadata_max_age_ns = 100000ull * MS;
    cfg->backoff_ns = 10 * MS;
    cfg->backoff_max_ns = 40 * MS;
    cfg->batcher.linger_ns = 5 * MS;
    cfg->batcher.backoff_ns = 10 * MS;
    cfg->batcher.backoff_max_ns = 40 * MS;
    cfg->fetch_max_wait_ms = 50;
}

static struct rq_client *make(struct fake *f, const struct rq_client_config *cfg) {
    memset(f, 0, sizeof *f);
    f->io = (struct rq_io){.env = f,
                           .node_id = CLIENT_ID,
                           .seed = 7,
                           .now = fake_now,
                           .set_timer = fake_set_timer,
                           .send = fake_send};
    f->now = 1000 * MS;
    f->timer = UINT64_MAX;
    struct rq_client *c = rq_client_create(&f->io, cfg, &callbacks, f);
    ck_assert_ptr_nonnull(c);
    f->client = c;
    rq_client_start(c);
    return c;
}

static void drop_all(struct fake *f) {
    for (uint32_t i = 0; i < f->sent_count; i++)
        free(f->sent[i].buf);
    f->sent_count = 0;
}

static void finish(struct fake *f, struct rq_client *c) {
    rq_client_destroy(c);
    drop_all(f);
}

/* Moves the clock to `to`, firing the timer each time it falls due on the way. */
static void run_until(struct fake *f, struct rq_client *c, uint64_t to) {
    for (int n = 0; n < 1000 && f->timer <= to; n++) {
        if (f->timer > f->now) f->now = f->timer;
        f->timer = UINT64_MAX;
        rq_client_on_timer(c);
    }
    ck_assert_uint_gt(f->timer, to);
    f->now = to;
}

static void advance(struct fake *f, struct rq_client *c, uint64_t ns) {
    run_until(f, c, f->now + ns);
}

/* A message the client sent: the first of that type, taken off the queue; its frame decoded into
 * *m (pointing into *keep, which the caller frees). Returns the server it went to. */
struct taken {
    uint32_t to;
    uint8_t version; /* of its frame */
    uint32_t correlation;
    struct proto_msg m;
    uint8_t *keep;
};

static int take(struct fake *f, uint8_t type, struct taken *out) {
    for (uint32_t i = 0; i < f->sent_count; i++) {
        struct proto_frame fr;
        size_t size;
        ck_assert_int_eq(
            proto_frame_decode(f->sent[i].buf, f->sent[i].len, PROTO_FRAME_MAX, &fr, &size), 0);
        ck_assert_uint_eq(size, f->sent[i].len); /* exactly one frame per message */
        if (fr.type != type) continue;
        out->to = f->sent[i].to;
        out->version = fr.version;
        out->correlation = fr.correlation;
        out->keep = f->sent[i].buf;
        ck_assert_int_eq(proto_decode(fr.type, fr.payload, fr.payload_size, &out->m), 0);
        memmove(&f->sent[i], &f->sent[i + 1], (f->sent_count - i - 1) * sizeof f->sent[0]);
        f->sent_count--;
        return 1;
    }
    return 0;
}

static struct taken expect(struct fake *f, uint8_t type) {
    struct taken t;
    ck_assert_msg(take(f, type, &t), "no %s sent", proto_type_name(type));
    return t;
}

static int count_type(struct fake *f, uint8_t type) {
    int n = 0;
    for (uint32_t i = 0; i < f->sent_count; i++) {
        struct proto_frame fr;
        size_t size;
        if (proto_frame_decode(f->sent[i].buf, f->sent[i].len, PROTO_FRAME_MAX, &fr, &size) == 0 &&
            fr.type == type)
            n++;
    }
    return n;
}

/* ---- the scripted broker's answers -------------------------------------------------------------
 */

static uint8_t payload[1 << 16], frame[1 << 17];

static struct proto_bytes s(const char *text) {
    return (struct proto_bytes){(const uint8_t *)text, (uint32_t)strlen(text)};
}

static void deliver_at(struct rq_client *c, uint32_t from, uint8_t version, uint8_t type,
                       uint32_t corr, size_t n) {
    ck_assert_uint_le(n, sizeof frame - PROTO_FRAME_HEADER);
    memcpy(frame + PROTO_FRAME_HEADER, payload, n);
    proto_frame_header_version(frame, version, type, corr, n ? frame + PROTO_FRAME_HEADER : NULL,
                               (uint32_t)n);
    rq_client_on_message(c, from, frame, PROTO_FRAME_HEADER + n);
}

static void deliver(struct rq_client *c, uint32_t from, uint8_t type, uint32_t corr, size_t n) {
    deliver_at(c, from, PROTO_VERSION_MIN, type, corr, n);
}

/* "orders" with two partitions led by leader0 and leader1, replicas {1, 2, 3}; "gone" does not
 * exist; controller as given. */
static void answer_metadata(struct rq_client *c, const struct taken *t, uint32_t controller,
                            uint32_t leader0, uint32_t leader1) {
    struct proto_broker brokers[] = {{1, s("a:1"), 0}, {2, s("b:1"), 0}, {3, s("c:1"), 0}};
    struct proto_topic topics[] = {{.name = s("orders"), .partition_count = 2},
                                   {.name = s("gone"), .error = RQ_ENOTOPIC}};
    struct proto_partition parts[] = {{0, leader0, 3, {1, 2, 3}}, {1, leader1, 3, {1, 2, 3}}};
    /* A broker answers at the request's version. */
    size_t n = proto_encode_metadata_resp_version(payload, sizeof payload, t->version, controller,
                                                  brokers, 3, topics, 2, parts);
    deliver_at(c, t->to, t->version, PROTO_METADATA_RESP, t->correlation, n);
}

static void answer_produce(struct rq_client *c, const struct taken *t, int error, uint64_t base,
                           uint32_t hint) {
    struct proto_produce_resp m = {.error = error, .base_offset = base, .leader_hint = hint};
    deliver(c, t->to, PROTO_PRODUCE_RESP, t->correlation,
            proto_encode_produce_resp(payload, sizeof payload, &m));
}

static void answer_fetch(struct rq_client *c, const struct taken *t, int error, uint64_t log_start,
                         uint64_t hw, const uint64_t *offsets, uint32_t count) {
    struct proto_record_in recs[8];
    static char values[8][8];
    for (uint32_t i = 0; i < count; i++) {
        int len = 0;
        for (uint64_t v = offsets[i];; v /= 10) { /* the value is the offset in decimal */
            values[i][len++] = (char)('0' + v % 10);
            if (v < 10) break;
        }
        for (int a = 0, b = len - 1; a < b; a++, b--) {
            char x = values[i][a];
            values[i][a] = values[i][b];
            values[i][b] = x;
        }
        recs[i] = (struct proto_record_in){.offset = offsets[i],
                                           .value = {(const uint8_t *)values[i], (uint32_t)len}};
    }
    struct proto_fetch_resp m = {.error = error,
                                 .log_start = log_start,
                                 .high_watermark = hw,
                                 .records = {.count = count, .with_offsets = 1}};
    deliver(c, t->to, PROTO_FETCH_RESP, t->correlation,
            proto_encode_fetch_resp(payload, sizeof payload, &m, recs));
}

static void answer_status(struct rq_client *c, const struct taken *t, uint8_t type, int error,
                          uint32_t hint) {
    struct proto_status_resp m = {.error = error, .leader_hint = hint};
    deliver(c, t->to, type, t->correlation, proto_encode_status_resp(payload, sizeof payload, &m));
}

static void answer_init_producer(struct rq_client *c, const struct taken *t, int error, uint64_t id,
                                 uint32_t hint) {
    struct proto_init_producer_resp m = {.error = error, .producer_id = id, .leader_hint = hint};
    deliver(c, t->to, PROTO_INIT_PRODUCER_RESP, t->correlation,
            proto_encode_init_producer_resp(payload, sizeof payload, &m));
}

/* The client's first metadata request, answered: controller 1, orders led by 1 and 2. */
static void bootstrap(struct fake *f, struct rq_client *c) {
    struct taken t = expect(f, PROTO_METADATA_REQ);
    answer_metadata(c, &t, 1, 1, 2);
    free(t.keep);
}

static int produce(struct rq_client *c, const char *topic, const char *key, const char *value,
                   uint64_t token) {
    return rq_client_produce(c, s(topic), s(key), s(value), NULL, 0, 0, token);
}

/* ---- metadata -------------------------------------------------------------------------------- */

START_TEST(metadata_bootstrap_rotates_on_timeout_and_error) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    struct taken t = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(t.to, 1);
    ck_assert_uint_eq(t.m.u.metadata_req.topic_count, 0); /* no topic yet: all of them */
    ck_assert_uint_eq(f.sent_count, 0);
    advance(&f, c, TIMEOUT); /* lost: the next server */
    struct taken t2 = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(t2.to, 2);
    answer_metadata(c, &t, 1, 1, 2); /* the first, too late */
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.unmatched, 1);
    ck_assert_uint_eq(st.metadata_answers, 0);
    ck_assert_uint_eq(st.timeouts, 1);
    /* An ERROR frame (server 2 could not read it): the next server, after a back-off. */
    size_t n = proto_encode_error(payload, sizeof payload, RQ_ECORRUPT, "bad");
    deliver(c, 2, PROTO_ERROR, t2.correlation, n);
    ck_assert_uint_eq(f.sent_count, 0);
    advance(&f, c, cfg.backoff_max_ns * 2);
    struct taken t3 = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(t3.to, 3);
    answer_metadata(c, &t3, 1, 1, 2);
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.metadata_answers, 1);
    /* Fresh: nothing more is asked until something is needed. */
    advance(&f, c, 1000 * MS);
    ck_assert_uint_eq(f.sent_count, 0);
    /* A topic the client has not asked about is asked by name; produce waits for it. */
    ck_assert_int_eq(produce(c, "other", "k", "v", 1), RQ_EBUSY);
    advance(&f, c, cfg.backoff_ns);
    struct taken t4 = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(t4.m.u.metadata_req.topic_count, 1);
    free(t.keep);
    free(t2.keep);
    free(t3.keep);
    free(t4.keep);
    finish(&f, c);
}
END_TEST

/* Metadata is asked at the newest version (its answer marks decommissioned brokers), every other
 * request at version 1; a broker that does not speak version 2 (answers RQ_EVERSION) is asked
 * again at once at version 1, and its answer is taken — also for a describe that was in flight at
 * version 2 when the client fell back (the CLI's first describe goes with the library's first
 * refresh). A refusal of version 1 is an error, not a loop. */
START_TEST(metadata_asked_at_version_2_falls_back_to_1_for_an_old_broker) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    ck_assert_int_eq(rq_client_describe(c, 81), 0);
    advance(&f, c, 0);
    struct taken t = expect(&f, PROTO_METADATA_REQ);
    struct taken d = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(t.version, PROTO_VERSION);
    ck_assert_uint_eq(d.version, PROTO_VERSION);
    ck_assert_uint_eq(PROTO_VERSION, 2);
    size_t n = proto_encode_error(payload, sizeof payload, RQ_EVERSION, "version");
    deliver(c, t.to, PROTO_ERROR, t.correlation, n);
    n = proto_encode_error(payload, sizeof payload, RQ_EVERSION, "version");
    deliver(c, d.to, PROTO_ERROR, d.correlation, n);
    ck_assert_uint_eq(f.admin_dones, 0); /* not failed: asked again */
    advance(&f, c, cfg.backoff_max_ns * 2);
    struct taken t2 = expect(&f, PROTO_METADATA_REQ);
    struct taken d2 = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(t2.version, PROTO_VERSION_MIN);
    ck_assert_uint_eq(d2.version, PROTO_VERSION_MIN);
    answer_metadata(c, &t2, 1, 1, 2);
    answer_metadata(c, &d2, 1, 1, 2);
    ck_assert_uint_eq(f.describes, 1);
    ck_assert_uint_eq(f.admin_token, 81);
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_ge(st.metadata_answers, 1);
    ck_assert_uint_eq(st.malformed, 0);
    /* Other requests go at version 1 always. */
    ck_assert_int_eq(produce(c, "orders", "", "x", 1), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken p = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(p.version, PROTO_VERSION_MIN);
    /* A broker refusing version 1 too: the describe fails with RQ_EVERSION. */
    ck_assert_int_eq(count_type(&f, PROTO_METADATA_REQ), 0);
    ck_assert_int_eq(rq_client_describe(c, 82), 0);
    ck_assert_int_eq(count_type(&f, PROTO_METADATA_REQ), 1);
    struct taken d3 = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(d3.version, PROTO_VERSION_MIN);
    n = proto_encode_error(payload, sizeof payload, RQ_EVERSION, "version");
    deliver(c, d3.to, PROTO_ERROR, d3.correlation, n);
    ck_assert_uint_eq(f.admin_dones, 1);
    ck_assert_uint_eq(f.admin_token, 82);
    ck_assert_int_eq(f.admin_error, RQ_EVERSION);
    free(t.keep);
    free(d.keep);
    free(t2.keep);
    free(d2.keep);
    free(p.keep);
    free(d3.keep);
    finish(&f, c);
}
END_TEST

/* ---- producer -------------------------------------------------------------------------------- */

START_TEST(produce_acks_all_reports_each_record_offset) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    ck_assert_int_eq(produce(c, "orders", "", "x", 1), RQ_EBUSY); /* metadata not here yet */
    bootstrap(&f, c);
    ck_assert_int_eq(produce(c, "gone", "", "x", 1), RQ_ENOTOPIC); /* the answer named it */
    ck_assert_int_eq(produce(c, "later", "", "x", 1), RQ_EBUSY);   /* not asked about yet */
    advance(&f, c, cfg.backoff_ns);
    struct taken md = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(md.m.u.metadata_req.topic_count, 3); /* orders, gone, later */
    answer_metadata(c, &md, 1, 1, 2);                      /* later: not there */
    ck_assert_int_eq(produce(c, "later", "", "x", 1), RQ_ENOTOPIC);
    /* Three keyless records fill one batch of the sticky partition 0, led by 1. */
    ck_assert_int_eq(produce(c, "orders", "", "a", 10), 0);
    ck_assert_int_eq(produce(c, "orders", "", "b", 11), 0);
    ck_assert_int_eq(produce(c, "orders", "", "c", 12), 0);
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0); /* lingers */
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t.to, 1);
    ck_assert_uint_eq(t.m.u.produce_req.partition, 0);
    ck_assert_uint_eq(t.m.u.produce_req.acks, PROTO_ACKS_ALL);
    ck_assert_uint_eq(t.m.u.produce_req.producer_id, 0);
    ck_assert_uint_eq(t.m.u.produce_req.records.count, 3);
    ck_assert_uint_eq(f.produced, 0);
    answer_produce(c, &t, 0, 100, 0);
    ck_assert_uint_eq(f.produced, 3);
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(f.tokens[i], 10 + i);
        ck_assert_int_eq(f.errors[i], 0);
        ck_assert_uint_eq(f.offsets[i], 100 + i);
        ck_assert_uint_eq(f.partitions[i], 0);
    }
    answer_produce(c, &t, 0, 100, 0); /* a duplicated answer: reported once only */
    ck_assert_uint_eq(f.produced, 3);
    /* A non-retriable error fails the batch's records with it. */
    ck_assert_int_eq(produce(c, "orders", "", "d", 13), 0); /* sticky moved on: partition 1 */
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t2 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t2.m.u.produce_req.partition, 1);
    ck_assert_uint_eq(t2.to, 2);
    answer_produce(c, &t2, RQ_ETOOBIG, 0, 0);
    ck_assert_uint_eq(f.produced, 4);
    ck_assert_uint_eq(f.tokens[3], 13);
    ck_assert_int_eq(f.errors[3], RQ_ETOOBIG);
    ck_assert_uint_eq(f.offsets[3], UINT64_MAX);
    free(md.keep);
    free(t.keep);
    free(t2.keep);
    finish(&f, c);
}
END_TEST

START_TEST(not_leader_hint_resends_to_the_hinted_leader) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    ck_assert_int_eq(produce(c, "orders", "", "a", 7), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t.to, 1);
    answer_produce(c, &t, RQ_ENOTLEADER, 0, 3);
    ck_assert_uint_eq(f.produced, 0); /* retried, not reported */
    advance(&f, c, cfg.batcher.backoff_ns);
    struct taken t2 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t2.to, 3);
    ck_assert_uint_eq(t2.m.u.produce_req.partition, 0);
    ck_assert_uint_eq(t2.m.u.produce_req.records.count, 1);
    ck_assert_uint_ne(t2.correlation, t.correlation);
    answer_produce(c, &t2, 0, 5, 0);
    ck_assert_uint_eq(f.produced, 1);
    ck_assert_uint_eq(f.tokens[0], 7);
    ck_assert_uint_eq(f.offsets[0], 5);
    /* The view was found wrong: a refresh is asked for. */
    ck_assert_int_ge(count_type(&f, PROTO_METADATA_REQ), 1);
    free(t.keep);
    free(t2.keep);
    finish(&f, c);
}
END_TEST

START_TEST(lost_answer_times_out_and_idempotent_retry_keeps_its_sequence) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.idempotent = 1;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    /* No controller known yet: INIT_PRODUCER goes to a bootstrap server, which points at 3. */
    struct taken ip = expect(&f, PROTO_INIT_PRODUCER_REQ);
    answer_init_producer(c, &ip, RQ_ENOTLEADER, 0, 3);
    struct taken ip2 = expect(&f, PROTO_INIT_PRODUCER_REQ);
    ck_assert_uint_eq(ip2.to, 3);
    bootstrap(&f, c);
    ck_assert_int_eq(produce(c, "orders", "", "a", 1), RQ_EBUSY); /* no producer id yet */
    answer_init_producer(c, &ip2, 0, 42, 0);
    ck_assert_uint_eq(rq_client_producer_id(c), 42);
    ck_assert_int_eq(produce(c, "orders", "", "a", 1), 0);
    ck_assert_int_eq(produce(c, "orders", "", "b", 2), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t.m.u.produce_req.producer_id, 42);
    uint64_t sequence = t.m.u.produce_req.base_sequence;
    advance(&f, c, TIMEOUT); /* no answer: RQ_ETIMEOUT, outcome unknown, retried */
    ck_assert_uint_eq(f.produced, 0);
    advance(&f, c, cfg.batcher.backoff_ns * 2);
    struct taken t2 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t2.m.u.produce_req.base_sequence, sequence);
    ck_assert_uint_eq(t2.m.u.produce_req.records.count, 2);
    answer_produce(c, &t, 0, 50, 0); /* the lost answer arrives late: not ours any more */
    ck_assert_uint_eq(f.produced, 0);
    answer_produce(c, &t2, 0, 50, 0); /* the broker saw a duplicate: the original offset */
    ck_assert_uint_eq(f.produced, 2);
    ck_assert_uint_eq(f.offsets[0], 50);
    ck_assert_uint_eq(f.offsets[1], 51);
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_ge(st.timeouts, 1);
    ck_assert_uint_eq(st.unmatched, 1);
    /* The next batch's sequence follows. */
    ck_assert_int_eq(produce(c, "orders", "", "c", 3), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t3 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t3.m.u.produce_req.base_sequence,
                      t3.m.u.produce_req.partition == t.m.u.produce_req.partition ? sequence + 2
                                                                                  : 0);
    free(ip.keep);
    free(ip2.keep);
    free(t.keep);
    free(t2.keep);
    free(t3.keep);
    finish(&f, c);
}
END_TEST

START_TEST(backpressure_then_room_after_the_answer) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.batcher.buffer_bytes_max = 8;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    ck_assert_int_eq(produce(c, "orders", "", "12345", 1), 0);
    ck_assert_int_eq(produce(c, "orders", "", "12345", 2), RQ_EBUSY);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_int_eq(produce(c, "orders", "", "12345", 2), RQ_EBUSY); /* still held */
    answer_produce(c, &t, 0, 0, 0);
    ck_assert_int_eq(produce(c, "orders", "", "12345", 2), 0);
    ck_assert_int_eq(rq_client_produce(c, s("bad name!"), s(""), s("x"), NULL, 0, 0, 3), RQ_EINVAL);
    free(t.keep);
    finish(&f, c);
}
END_TEST

START_TEST(acks_zero_is_done_when_sent) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.acks = PROTO_ACKS_NONE;
    cfg.batcher.linger_ns = 0;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    ck_assert_int_eq(produce(c, "orders", "key", "v", 9), 0);
    /* Produce only queues and asks for the timer now; the timer sends. */
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0);
    ck_assert_uint_eq(f.timer, f.now);
    run_until(&f, c, f.now);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t.m.u.produce_req.acks, PROTO_ACKS_NONE);
    ck_assert_uint_eq(f.produced, 1);
    ck_assert_uint_eq(f.tokens[0], 9);
    ck_assert_int_eq(f.errors[0], 0);
    ck_assert_uint_eq(f.offsets[0], UINT64_MAX);
    advance(&f, c, TIMEOUT * 3); /* nothing waits for an answer: no timeout, no resend */
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0);
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.timeouts, 0);
    /* A refusal (correlation 0: no request waits) says the metadata is wrong: asked again. */
    ck_assert_int_eq(count_type(&f, PROTO_METADATA_REQ), 0);
    answer_produce(c, &t, RQ_ENOTLEADER, 0, 2);
    run_until(&f, c, f.now);
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.acks0_refused, 1);
    ck_assert_uint_eq(st.unmatched, 0);
    struct taken md = expect(&f, PROTO_METADATA_REQ);
    free(md.keep);
    free(t.keep);
    finish(&f, c);
}
END_TEST

/* ---- consumer -------------------------------------------------------------------------------- */

START_TEST(fetch_loop_delivers_in_order_drops_below_and_stops_at_gaps) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    ck_assert_int_eq(rq_client_subscribe(c, s("orders"), 1, 5), 0);
    ck_assert_int_eq(rq_client_subscribe(c, s("orders"), 1, 5), RQ_EEXIST);
    bootstrap(&f, c);
    advance(&f, c, cfg.backoff_max_ns * 2); /* the fetch that found no leader backs off */
    struct taken t = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(t.to, 2);
    ck_assert_uint_eq(t.m.u.fetch_req.partition, 1);
    ck_assert_uint_eq(t.m.u.fetch_req.offset, 5);
    ck_assert_uint_eq(t.m.u.fetch_req.max_wait_ms, cfg.fetch_max_wait_ms);
    const uint64_t first[] = {3, 4, 5, 6};
    answer_fetch(c, &t, 0, 0, 10, first, 4);
    ck_assert_uint_eq(f.fetched, 2);
    ck_assert_uint_eq(f.fetched_offsets[0], 5);
    ck_assert_str_eq(f.fetched_values[0], "5");
    ck_assert_uint_eq(f.fetched_offsets[1], 6);
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.records_dropped, 2);
    uint64_t position;
    ck_assert_int_eq(rq_client_position(c, s("orders"), 1, &position), 0);
    ck_assert_uint_eq(position, 7);
    /* The next fetch goes at once, from the position; an empty long-poll answer loops. */
    struct taken t2 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(t2.m.u.fetch_req.offset, 7);
    answer_fetch(c, &t2, 0, 0, 7, NULL, 0);
    struct taken t3 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(t3.m.u.fetch_req.offset, 7);
    /* 7 then 9: 7 is delivered, the gap is reported, nothing is skipped. */
    const uint64_t gap[] = {7, 9};
    answer_fetch(c, &t3, 0, 0, 10, gap, 2);
    ck_assert_uint_eq(f.fetched, 3);
    ck_assert_uint_eq(f.fetched_offsets[2], 7);
    ck_assert_uint_eq(f.fetch_errors, 1);
    ck_assert_int_eq(f.fetch_error, RQ_ECORRUPT);
    ck_assert_uint_eq(f.fe_position, 8);
    advance(&f, c, 1000 * MS);
    ck_assert_int_eq(count_type(&f, PROTO_FETCH_REQ), 0); /* paused until seek */
    ck_assert_int_eq(rq_client_seek(c, s("orders"), 1, 8), 0);
    struct taken t4 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(t4.m.u.fetch_req.offset, 8);
    free(t.keep);
    free(t2.keep);
    free(t3.keep);
    free(t4.keep);
    finish(&f, c);
}
END_TEST

START_TEST(fetch_out_of_range_and_not_leader) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    ck_assert_int_eq(rq_client_subscribe(c, s("orders"), 0, 2), 0);
    struct taken t = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(t.to, 1);
    struct proto_fetch_resp nl = {.error = RQ_ENOTLEADER, .leader_hint = 3};
    deliver(c, 1, PROTO_FETCH_RESP, t.correlation,
            proto_encode_fetch_resp(payload, sizeof payload, &nl, NULL));
    advance(&f, c, cfg.backoff_max_ns * 2);
    struct taken t2 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(t2.to, 3); /* the hint */
    answer_fetch(c, &t2, RQ_ERANGE, 10, 20, NULL, 0);
    ck_assert_uint_eq(f.fetch_errors, 1);
    ck_assert_int_eq(f.fetch_error, RQ_ERANGE);
    ck_assert_uint_eq(f.fe_position, 2);
    ck_assert_uint_eq(f.fe_log_start, 10);
    ck_assert_uint_eq(f.fe_hw, 20);
    uint64_t position;
    ck_assert_int_eq(rq_client_position(c, s("orders"), 0, &position), 0);
    ck_assert_uint_eq(position, 2); /* never moved by itself */
    ck_assert_int_eq(rq_client_seek(c, s("orders"), 0, 10), 0);
    struct taken t3 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(t3.m.u.fetch_req.offset, 10);
    ck_assert_int_eq(rq_client_unsubscribe(c, s("orders"), 0), 0);
    const uint64_t recs[] = {10};
    answer_fetch(c, &t3, 0, 10, 20, recs, 1); /* after unsubscribe: not delivered */
    ck_assert_uint_eq(f.fetched, 0);
    ck_assert_int_eq(rq_client_position(c, s("orders"), 0, &position), RQ_ENOENT);
    free(t.keep);
    free(t2.keep);
    free(t3.keep);
    finish(&f, c);
}
END_TEST

START_TEST(no_leader_known_waits_for_a_refresh) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    struct taken md = expect(&f, PROTO_METADATA_REQ);
    answer_metadata(c, &md, 1, 0, 0); /* an election: no leaders */
    ck_assert_int_eq(produce(c, "orders", "", "a", 1), 0);
    ck_assert_int_eq(rq_client_subscribe(c, s("orders"), 1, 0), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0);
    ck_assert_int_eq(count_type(&f, PROTO_FETCH_REQ), 0);
    ck_assert_uint_eq(f.produced, 0);
    advance(&f, c, cfg.backoff_ns);
    struct taken md2 = expect(&f, PROTO_METADATA_REQ); /* found wrong: asked again */
    answer_metadata(c, &md2, 1, 2, 3);
    advance(&f, c, cfg.backoff_max_ns * 2);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t.to, 2);
    struct taken ft = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(ft.to, 3);
    /* Busy, then an ERROR frame: the first backs off and fetches again, the second pauses. */
    answer_fetch(c, &ft, RQ_EBUSY, 0, 0, NULL, 0);
    ck_assert_int_eq(count_type(&f, PROTO_FETCH_REQ), 0);
    advance(&f, c, cfg.backoff_max_ns * 2);
    struct taken ft2 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(ft2.m.u.fetch_req.offset, 0);
    size_t n = proto_encode_error(payload, sizeof payload, RQ_ETYPE, "unknown");
    deliver(c, ft2.to, PROTO_ERROR, ft2.correlation, n);
    ck_assert_uint_eq(f.fetch_errors, 1);
    ck_assert_int_eq(f.fetch_error, RQ_ETYPE);
    free(md.keep);
    free(md2.keep);
    free(t.keep);
    free(ft.keep);
    free(ft2.keep);
    finish(&f, c);
}
END_TEST

/* ---- admin ----------------------------------------------------------------------------------- */

START_TEST(admin_create_follows_the_controller_hint) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.bootstrap_count = 1;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    struct proto_create_topic_req req = {
        .name = s("new"), .partitions = 3, .replication = 3, .max_message_bytes = 1000};
    ck_assert_int_eq(rq_client_create_topic(c, &req, 77), 0);
    struct taken t = expect(&f, PROTO_CREATE_TOPIC_REQ);
    ck_assert_uint_eq(t.to, 1); /* no controller known: the bootstrap server */
    ck_assert_uint_eq(t.m.u.create_topic_req.partitions, 3);
    answer_status(c, &t, PROTO_CREATE_TOPIC_RESP, RQ_ENOTLEADER, 2);
    struct taken t2 = expect(&f, PROTO_CREATE_TOPIC_REQ);
    ck_assert_uint_eq(t2.to, 2);
    ck_assert_mem_eq(t2.m.u.create_topic_req.name.data, "new", 3);
    ck_assert_uint_eq(f.admin_dones, 0);
    answer_status(c, &t2, PROTO_CREATE_TOPIC_RESP, 0, 0);
    ck_assert_uint_eq(f.admin_dones, 1);
    ck_assert_uint_eq(f.admin_token, 77);
    ck_assert_int_eq(f.admin_error, 0);
    /* Delete: a timeout retries; a final error is reported. */
    ck_assert_int_eq(rq_client_delete_topic(c, s("new"), 78), 0);
    struct taken t3 = expect(&f, PROTO_DELETE_TOPIC_REQ);
    advance(&f, c, TIMEOUT + cfg.backoff_max_ns * 2);
    struct taken t4 = expect(&f, PROTO_DELETE_TOPIC_REQ);
    answer_status(c, &t4, PROTO_DELETE_TOPIC_RESP, RQ_ENOTOPIC, 0);
    ck_assert_uint_eq(f.admin_dones, 2);
    ck_assert_uint_eq(f.admin_token, 78);
    ck_assert_int_eq(f.admin_error, RQ_ENOTOPIC);
    /* Decommission: to the controller the last hint named; its refusal is reported. */
    ck_assert_int_eq(rq_client_decommission(c, 0, 80), RQ_EINVAL);
    ck_assert_int_eq(rq_client_decommission(c, 3, 80), 0);
    struct taken t5 = expect(&f, PROTO_DECOMMISSION_REQ);
    ck_assert_uint_eq(t5.m.u.decommission_req.broker, 3);
    answer_status(c, &t5, PROTO_DECOMMISSION_RESP, RQ_EINVAL, 0);
    ck_assert_uint_eq(f.admin_dones, 3);
    ck_assert_uint_eq(f.admin_token, 80);
    ck_assert_int_eq(f.admin_error, RQ_EINVAL);
    free(t.keep);
    free(t2.keep);
    free(t3.keep);
    free(t4.keep);
    free(t5.keep);
    finish(&f, c);
}
END_TEST

START_TEST(describe_hands_the_answer_over_and_gives_up_after_its_attempts) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    ck_assert_int_eq(rq_client_describe(c, 79), 0);
    struct taken t = expect(&f, PROTO_METADATA_REQ);
    ck_assert_uint_eq(t.to, 1); /* the controller the view names */
    ck_assert_uint_eq(t.m.u.metadata_req.topic_count, 0);
    ck_assert_uint_eq(f.sent_count, 0); /* the view is fresh: no refresh of our own */
    answer_metadata(c, &t, 1, 1, 2);
    ck_assert_uint_eq(f.describes, 1);
    ck_assert_uint_eq(f.admin_token, 79);
    ck_assert_uint_eq(f.described_topics, 2);
    ck_assert_uint_eq(f.admin_dones, 0);
    /* Nobody answers: CLIENT_ADMIN_ATTEMPTS_MAX sends, then RQ_ETIMEOUT. */
    ck_assert_int_eq(rq_client_describe(c, 80), 0);
    for (int i = 0; i < 100 && f.admin_dones == 0; i++) {
        drop_all(&f);
        advance(&f, c, TIMEOUT);
    }
    ck_assert_uint_eq(f.admin_dones, 1);
    ck_assert_uint_eq(f.admin_token, 80);
    ck_assert_int_eq(f.admin_error, RQ_ETIMEOUT);
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_ge(st.timeouts, CLIENT_ADMIN_ATTEMPTS_MAX);
    free(t.keep);
    finish(&f, c);
}
END_TEST

START_TEST(closed_answers_are_retried_and_a_sequence_gap_renews_the_producer_id) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.idempotent = 1;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    struct taken ip = expect(&f, PROTO_INIT_PRODUCER_REQ);
    answer_init_producer(c, &ip, 0, 9, 0);
    bootstrap(&f, c);
    ck_assert_int_eq(produce(c, "orders", "", "a", 1), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    answer_produce(c, &t, RQ_ECLOSED, 0, 0); /* the node is still recovering */
    advance(&f, c, cfg.batcher.backoff_max_ns * 2);
    struct taken t2 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t2.m.u.produce_req.base_sequence, t.m.u.produce_req.base_sequence);
    /* Refused for a gap with nothing earlier unresolved: no retry under id 9 can land. */
    answer_produce(c, &t2, RQ_ESEQUENCE, 0, 0);
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0);
    struct taken ip2 = expect(&f, PROTO_INIT_PRODUCER_REQ);
    answer_init_producer(c, &ip2, 0, 10, 0);
    ck_assert_uint_eq(rq_client_producer_id(c), 10);
    advance(&f, c, cfg.batcher.backoff_max_ns * 2);
    struct taken t3 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t3.m.u.produce_req.producer_id, 10);
    ck_assert_uint_eq(t3.m.u.produce_req.base_sequence, 0);
    ck_assert_uint_eq(f.produced, 0);
    answer_produce(c, &t3, 0, 70, 0);
    ck_assert_uint_eq(f.produced, 1);
    ck_assert_uint_eq(f.offsets[0], 70);
    free(ip.keep);
    free(ip2.keep);
    free(t.keep);
    free(t2.keep);
    free(t3.keep);
    finish(&f, c);
}
END_TEST

/* An idempotent partition's first batch under a producer id goes alone: one record under key "k",
 * acknowledged at offset 99 (sequence 0), reported as token 100. */
static void establish(struct fake *f, struct rq_client *c) {
    ck_assert_int_eq(produce(c, "orders", "k", "v", 100), 0);
    advance(f, c, 1);
    struct taken t = expect(f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(t.m.u.produce_req.base_sequence, 0);
    ck_assert_int_eq(count_type(f, PROTO_PRODUCE_REQ), 0);
    answer_produce(c, &t, 0, 99, 0);
    ck_assert_uint_eq(f->produced, 1);
    ck_assert_uint_eq(f->tokens[0], 100);
    free(t.keep);
}

/* (a) With three batches of one partition in flight, the first times out again and again while
 * the two behind it are refused RQ_ESEQUENCE: those refusals are not retries of theirs (Kafka's
 * rule); they are not resent while the first is unresolved, and go after it lands, in order. */
START_TEST(sequence_refusals_behind_an_unresolved_batch_wait_for_it) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.idempotent = 1;
    cfg.batcher.batch_records_max = 1; /* each record is a full batch: it goes at once */
    cfg.batcher.retries_max = 2;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    struct taken ip = expect(&f, PROTO_INIT_PRODUCER_REQ);
    answer_init_producer(c, &ip, 0, 9, 0);
    bootstrap(&f, c);
    establish(&f, c);
    for (uint64_t token = 1; token <= 3; token++)
        ck_assert_int_eq(produce(c, "orders", "k", "v", token), 0);
    advance(&f, c, 1);
    struct taken a = expect(&f, PROTO_PRODUCE_REQ), b = expect(&f, PROTO_PRODUCE_REQ),
                 x = expect(&f, PROTO_PRODUCE_REQ);
    uint32_t partition = a.m.u.produce_req.partition;
    ck_assert_uint_eq(b.m.u.produce_req.partition, partition);
    ck_assert_uint_eq(a.m.u.produce_req.base_sequence, 1);
    ck_assert_uint_eq(b.m.u.produce_req.base_sequence, 2);
    ck_assert_uint_eq(x.m.u.produce_req.base_sequence, 3);
    answer_produce(c, &b, RQ_ESEQUENCE, 0, 0); /* a has not landed yet */
    answer_produce(c, &x, RQ_ESEQUENCE, 0, 0);
    free(a.keep);
    for (int lost = 0; lost < 2; lost++) { /* a's answers are lost: it uses up its retries */
        advance(&f, c, TIMEOUT + cfg.batcher.backoff_max_ns);
        a = expect(&f, PROTO_PRODUCE_REQ);
        ck_assert_uint_eq(a.m.u.produce_req.base_sequence, 1);
        ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0); /* b and x wait behind it */
        if (lost == 0) free(a.keep);
    }
    ck_assert_uint_eq(f.produced, 1);
    answer_produce(c, &a, 0, 100, 0); /* its last attempt lands */
    ck_assert_uint_eq(f.produced, 2);
    struct taken b2 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(b2.m.u.produce_req.base_sequence, 2);
    ck_assert_uint_eq(b2.m.u.produce_req.producer_id, 9);
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0); /* x waits until b lands */
    answer_produce(c, &b2, 0, 101, 0);
    struct taken x2 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(x2.m.u.produce_req.base_sequence, 3);
    answer_produce(c, &x2, 0, 102, 0);
    ck_assert_uint_eq(f.produced, 4);
    for (uint32_t i = 1; i < 4; i++) {
        ck_assert_uint_eq(f.tokens[i], i);
        ck_assert_int_eq(f.errors[i], 0);
        ck_assert_uint_eq(f.offsets[i], 99 + i);
    }
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.records_failed, 0);
    free(ip.keep);
    free(a.keep);
    free(b.keep);
    free(x.keep);
    free(b2.keep);
    free(x2.keep);
    finish(&f, c);
}
END_TEST

/* (b) A batch fails for good: the next batch of its partition, sent as the oldest, meets the gap
 * (RQ_ESEQUENCE), the client asks INIT_PRODUCER for a new id, and the batches not yet acknowledged
 * go under it from sequence 0. Every record is reported once. */
START_TEST(a_batch_failing_for_good_leads_to_a_new_producer_id) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.idempotent = 1;
    cfg.batcher.batch_records_max = 1;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    struct taken ip = expect(&f, PROTO_INIT_PRODUCER_REQ);
    answer_init_producer(c, &ip, 0, 9, 0);
    bootstrap(&f, c);
    establish(&f, c);
    for (uint64_t token = 1; token <= 3; token++)
        ck_assert_int_eq(produce(c, "orders", "k", "v", token), 0);
    advance(&f, c, 1);
    struct taken a = expect(&f, PROTO_PRODUCE_REQ), b = expect(&f, PROTO_PRODUCE_REQ),
                 x = expect(&f, PROTO_PRODUCE_REQ);
    answer_produce(c, &a, RQ_ETOOBIG, 0, 0); /* not retriable: a fails, sequence 1 is a gap */
    ck_assert_uint_eq(f.produced, 2);
    ck_assert_int_eq(f.errors[1], RQ_ETOOBIG);
    /* b was sent behind a: its refusal proves nothing yet. It goes again, now as the oldest. */
    answer_produce(c, &b, RQ_ESEQUENCE, 0, 0);
    struct taken b1 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(b1.m.u.produce_req.base_sequence, 2);
    answer_produce(c, &x, RQ_ESEQUENCE, 0, 0); /* sent behind a too: waits behind b */
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0);
    ck_assert_int_eq(count_type(&f, PROTO_INIT_PRODUCER_REQ), 0);
    answer_produce(c, &b1, RQ_ESEQUENCE, 0, 0); /* sent as the oldest: the gap is real */
    struct taken ip2 = expect(&f, PROTO_INIT_PRODUCER_REQ);
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0);
    answer_init_producer(c, &ip2, 0, 11, 0);
    ck_assert_uint_eq(rq_client_producer_id(c), 11);
    advance(&f, c, cfg.batcher.backoff_max_ns * 2);
    struct taken b2 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(b2.m.u.produce_req.producer_id, 11);
    ck_assert_uint_eq(b2.m.u.produce_req.base_sequence, 0);
    ck_assert_mem_eq(b2.m.u.produce_req.records.data, b.m.u.produce_req.records.data,
                     b.m.u.produce_req.records.size);
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0); /* the first under 11 goes alone */
    answer_produce(c, &b2, 0, 40, 0);
    struct taken x2 = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(x2.m.u.produce_req.producer_id, 11);
    ck_assert_uint_eq(x2.m.u.produce_req.base_sequence, 1);
    answer_produce(c, &x2, 0, 41, 0);
    ck_assert_int_eq(produce(c, "orders", "k", "v", 4), 0); /* later records follow under 11 */
    advance(&f, c, 1);
    struct taken y = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(y.m.u.produce_req.producer_id, 11);
    ck_assert_uint_eq(y.m.u.produce_req.base_sequence, 2);
    answer_produce(c, &y, 0, 42, 0);
    ck_assert_uint_eq(f.produced, 5);
    for (uint32_t i = 2; i < 5; i++) {
        ck_assert_uint_eq(f.tokens[i], i);
        ck_assert_int_eq(f.errors[i], 0);
        ck_assert_uint_eq(f.offsets[i], 38 + i);
    }
    ck_assert_int_eq(count_type(&f, PROTO_INIT_PRODUCER_REQ), 0);
    free(ip.keep);
    free(ip2.keep);
    free(a.keep);
    free(b.keep);
    free(x.keep);
    free(b1.keep);
    free(b2.keep);
    free(x2.keep);
    free(y.keep);
    finish(&f, c);
}
END_TEST

/* ---- malformed answers ----------------------------------------------------------------------- */

START_TEST(malformed_answers_are_counted_and_ignored) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    struct taken t = expect(&f, PROTO_METADATA_REQ);
    struct rq_client_stats st;
    /* A frame with a broken CRC. */
    struct proto_produce_resp pr = {.base_offset = 1};
    size_t n = proto_encode_produce_resp(payload, sizeof payload, &pr);
    size_t len = proto_frame_encode(frame, sizeof frame, PROTO_METADATA_RESP, t.correlation,
                                    payload, (uint32_t)n);
    frame[len - 1] ^= 0xff;
    rq_client_on_message(c, 1, frame, len);
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.malformed, 1);
    /* Garbage shorter than a frame header, and zero bytes. */
    rq_client_on_message(c, 1, "\x01\x02", 2);
    rq_client_on_message(c, 1, "", 0);
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.malformed, 2);
    /* The wrong answer type for the request: a PRODUCE_RESP to a METADATA_REQ. */
    deliver(c, 1, PROTO_PRODUCE_RESP, t.correlation, n);
    /* The right type, a payload that does not decode. */
    deliver(c, 1, PROTO_METADATA_RESP, t.correlation, n);
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.malformed, 4);
    /* A correlation of no request, the right one from the wrong server. */
    deliver(c, 1, PROTO_METADATA_RESP, t.correlation + 1, n);
    deliver(c, 2, PROTO_METADATA_RESP, t.correlation, n);
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.unmatched, 2);
    ck_assert_uint_eq(st.metadata_answers, 0);
    /* An unknown type in an intact frame is skipped; the good frame after it in the same message
     * is taken (several frames back to back). */
    uint8_t both[4096];
    size_t a = proto_frame_encode(both, sizeof both, PROTO_METADATA_RESP, 0, "", 0);
    both[9] = 99; /* the type byte; fix the CRC so that the frame is intact */
    rq_put_u32(both + 4, rq_crc32c(0, both + 8, a - 8));
    struct proto_broker brokers[] = {{1, s("a:1"), 0}};
    struct proto_topic topics[] = {{.name = s("orders"), .partition_count = 1}};
    struct proto_partition parts[] = {{0, 1, 1, {1}}};
    n = proto_encode_metadata_resp_version(payload, sizeof payload, PROTO_VERSION_MIN, 1, brokers,
                                           1, topics, 1, parts);
    size_t b = proto_frame_encode(both + a, sizeof both - a, PROTO_METADATA_RESP, t.correlation,
                                  payload, (uint32_t)n);
    rq_client_on_message(c, 1, both, a + b);
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.malformed, 5);
    ck_assert_uint_eq(st.metadata_answers, 1);
    /* The client still works: it produces to the partition it learned. */
    ck_assert_int_eq(produce(c, "orders", "", "x", 1), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken p = expect(&f, PROTO_PRODUCE_REQ);
    ck_assert_uint_eq(p.to, 1);
    free(t.keep);
    free(p.keep);
    finish(&f, c);
}
END_TEST

START_TEST(keyed_records_go_to_their_partition_with_headers) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    struct proto_header h = {s("trace"), s("abc")};
    ck_assert_int_eq(rq_client_produce(c, s("orders"), s("k1"), s("v1"), &h, 1, 1234, 5), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    uint32_t partition = rq_crc32c(0, "k1", 2) % 2;
    ck_assert_uint_eq(t.m.u.produce_req.partition, partition);
    ck_assert_uint_eq(t.to, partition == 0 ? 1 : 2);
    size_t cursor = 0, hc = 0;
    struct proto_record r;
    ck_assert(proto_record_next(&t.m.u.produce_req.records, &cursor, &r));
    ck_assert_uint_eq(r.timestamp, 1234);
    ck_assert_mem_eq(r.key.data, "k1", 2);
    ck_assert_mem_eq(r.value.data, "v1", 2);
    struct proto_header got;
    ck_assert(proto_header_next(&r, &hc, &got));
    ck_assert_mem_eq(got.name.data, "trace", 5);
    ck_assert_mem_eq(got.value.data, "abc", 3);
    answer_produce(c, &t, 0, 9, 0);
    ck_assert_uint_eq(f.produced, 1);
    ck_assert_uint_eq(f.partitions[0], partition);
    ck_assert_uint_eq(f.offsets[0], 9);
    free(t.keep);
    finish(&f, c);
}
END_TEST

START_TEST(retries_run_out_and_the_error_is_reported_once) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.batcher.retries_max = 2;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    ck_assert_int_eq(produce(c, "orders", "", "a", 3), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    for (int attempt = 1; attempt <= 3; attempt++) {
        struct taken t = expect(&f, PROTO_PRODUCE_REQ);
        ck_assert_uint_eq(f.produced, 0);
        answer_produce(c, &t, RQ_EBUSY, 0, 0);
        free(t.keep);
        advance(&f, c, cfg.batcher.backoff_max_ns * 2);
    }
    ck_assert_uint_eq(f.produced, 1);
    ck_assert_int_eq(f.errors[0], RQ_EBUSY);
    ck_assert_uint_eq(f.tokens[0], 3);
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0);
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.records_failed, 1);
    finish(&f, c);
}
END_TEST

START_TEST(callbacks_may_call_back_into_the_client) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    /* produced() queues another record: it is batched and sent like any other. */
    f.reproduce = 1;
    ck_assert_int_eq(produce(c, "orders", "", "a", 1), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    answer_produce(c, &t, 0, 0, 0);
    ck_assert_uint_eq(f.produced, 1);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t2 = expect(&f, PROTO_PRODUCE_REQ);
    answer_produce(c, &t2, 0, 1, 0);
    ck_assert_uint_eq(f.produced, 2);
    ck_assert_uint_eq(f.tokens[1], 500);
    /* fetched() seeks: the rest of that answer is not delivered, the next fetch starts there. */
    f.seek_after = 2;
    f.seek_to = 40;
    ck_assert_int_eq(rq_client_subscribe(c, s("orders"), 0, 1), 0);
    struct taken ft = expect(&f, PROTO_FETCH_REQ);
    const uint64_t recs[] = {1, 2, 3};
    answer_fetch(c, &ft, 0, 0, 4, recs, 3);
    ck_assert_uint_eq(f.fetched, 2);
    struct taken ft2 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(ft2.m.u.fetch_req.offset, 40);
    free(t.keep);
    free(t2.keep);
    free(ft.keep);
    free(ft2.keep);
    finish(&f, c);
}
END_TEST

/* Seeded garbage: random bytes, and intact frames of every type with random payloads, some with
 * the correlation of a request under way, from any server, while time moves and requests are
 * retried. Nothing may crash (AddressSanitizer watches); all of it is counted. */
START_TEST(seeded_garbage_never_crashes) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.idempotent = 1;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    ck_assert_int_eq(rq_client_subscribe(c, s("orders"), 0, 0), 0);
    ck_assert_int_eq(rq_client_describe(c, 1), 0);
    struct rq_rng rng;
    rq_rng_seed(&rng, 42);
    uint32_t correlations[16] = {0};
    uint8_t junk[256];
    for (int i = 0; i < 3000; i++) {
        for (uint32_t k = 0; k < f.sent_count; k++) { /* remember what is under way */
            struct proto_frame fr;
            size_t size;
            ck_assert_int_eq(
                proto_frame_decode(f.sent[k].buf, f.sent[k].len, PROTO_FRAME_MAX, &fr, &size), 0);
            correlations[rq_rng_below(&rng, 16)] = fr.correlation;
        }
        drop_all(&f);
        uint32_t from = (uint32_t)rq_rng_range(&rng, 1, 3);
        size_t n = rq_rng_below(&rng, sizeof junk);
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t)rq_rng_next(&rng);
        if (rq_rng_chance(&rng, 500000)) {
            rq_client_on_message(c, from, junk, n);
        } else {
            uint8_t type = (uint8_t)rq_rng_range(&rng, 1, PROTO_TYPE_MAX);
            uint32_t corr = correlations[rq_rng_below(&rng, 16)];
            size_t len = proto_frame_encode(frame, sizeof frame, type, corr, junk, (uint32_t)n);
            rq_client_on_message(c, from, frame, len);
        }
        if (rq_rng_chance(&rng, 100000)) advance(&f, c, rq_rng_below(&rng, TIMEOUT * 2));
        if (rq_rng_chance(&rng, 50000)) produce(c, "orders", "", "x", (uint64_t)i);
    }
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_gt(st.malformed, 0);
    ck_assert_uint_gt(st.unmatched, 0);
    ck_assert_uint_gt(st.timeouts, 0);
    finish(&f, c);
}
END_TEST

START_TEST(fetch_from_followers_and_metadata_refresh_by_age) {
    struct rq_client_config cfg;
    config(&cfg);
    cfg.from_follower = 1;
    cfg.metadata_max_age_ns = 2000 * MS;
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    ck_assert_int_eq(rq_client_subscribe(c, s("orders"), 1, 0), 0);
    uint32_t seen[4] = {0};
    for (int i = 0; i < 12; i++) { /* seeded choice among the replicas {1, 2, 3} */
        struct taken t = expect(&f, PROTO_FETCH_REQ);
        ck_assert_uint_eq(t.m.u.fetch_req.from_follower, 1);
        ck_assert_uint_ge(t.to, 1);
        ck_assert_uint_le(t.to, 3);
        seen[t.to]++;
        answer_fetch(c, &t, 0, 0, 0, NULL, 0);
        free(t.keep);
    }
    /* The load spreads: more than one replica was asked. */
    ck_assert_uint_ge((seen[1] > 0) + (seen[2] > 0) + (seen[3] > 0), 2);
    /* A lagging follower is behind the position: retried elsewhere, not reported. */
    struct taken lag = expect(&f, PROTO_FETCH_REQ);
    answer_fetch(c, &lag, RQ_ERANGE, 0, 0, NULL, 0); /* position 0 is not past hw 0 */
    ck_assert_uint_eq(f.fetch_errors, 1);
    ck_assert_int_eq(rq_client_seek(c, s("orders"), 1, 5), 0);
    struct taken lag2 = expect(&f, PROTO_FETCH_REQ);
    answer_fetch(c, &lag2, RQ_ERANGE, 0, 3, NULL, 0); /* 5 past a follower's hw 3 */
    ck_assert_uint_eq(f.fetch_errors, 1);
    advance(&f, c, cfg.backoff_max_ns * 2);
    struct taken lag3 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(lag3.m.u.fetch_req.offset, 5);
    free(lag.keep);
    free(lag2.keep);
    free(lag3.keep);
    /* Unsubscribed, its last fetch unanswered: that timeout does not refresh the view. */
    ck_assert_int_eq(rq_client_unsubscribe(c, s("orders"), 1), 0);
    drop_all(&f);
    /* The view ages out: one refresh, not before. */
    advance(&f, c, 1000 * MS);
    ck_assert_int_eq(count_type(&f, PROTO_METADATA_REQ), 0);
    advance(&f, c, 1000 * MS);
    ck_assert_int_eq(count_type(&f, PROTO_METADATA_REQ), 1);
    finish(&f, c);
}
END_TEST

START_TEST(error_frame_fails_a_batch_and_fetch_timeouts_retry) {
    struct rq_client_config cfg;
    config(&cfg);
    struct fake f;
    struct rq_client *c = make(&f, &cfg);
    bootstrap(&f, c);
    ck_assert_int_eq(produce(c, "orders", "", "a", 4), 0);
    advance(&f, c, cfg.batcher.linger_ns);
    struct taken t = expect(&f, PROTO_PRODUCE_REQ);
    size_t n = proto_encode_error(payload, sizeof payload, RQ_ECORRUPT, "cannot read it");
    deliver(c, t.to, PROTO_ERROR, t.correlation, n);
    ck_assert_uint_eq(f.produced, 1); /* the broker could not read it: resending cannot help */
    ck_assert_int_eq(f.errors[0], RQ_ECORRUPT);
    advance(&f, c, 1000 * MS);
    ck_assert_int_eq(count_type(&f, PROTO_PRODUCE_REQ), 0);
    /* A fetch that times out (its timeout includes the long-poll) is resent from the same
     * position; its late answer is not delivered. */
    ck_assert_int_eq(rq_client_subscribe(c, s("orders"), 0, 3), 0);
    struct taken ft = expect(&f, PROTO_FETCH_REQ);
    advance(&f, c, TIMEOUT);
    ck_assert_int_eq(count_type(&f, PROTO_FETCH_REQ), 0); /* still long-polling */
    advance(&f, c, (uint64_t)cfg.fetch_max_wait_ms * MS + cfg.backoff_max_ns * 2);
    struct taken ft2 = expect(&f, PROTO_FETCH_REQ);
    ck_assert_uint_eq(ft2.m.u.fetch_req.offset, 3);
    const uint64_t recs[] = {3};
    answer_fetch(c, &ft, 0, 0, 4, recs, 1);
    ck_assert_uint_eq(f.fetched, 0);
    answer_fetch(c, &ft2, 0, 0, 4, recs, 1);
    ck_assert_uint_eq(f.fetched, 1);
    ck_assert_uint_eq(f.fetched_offsets[0], 3);
    free(t.keep);
    free(ft.keep);
    free(ft2.keep);
    finish(&f, c);
}
END_TEST

/* Trace lines are formatted (and so checked by the sanitizers) but not printed. */
static void quiet_sink(void *arg, enum rq_log_level level, const char *line, size_t len) {
    (void)arg;
    (void)level;
    ck_assert_uint_eq(strlen(line), len);
}

int main(void) {
    rq_log_set_sink(quiet_sink, NULL);
    rq_log_set_level(RQ_LOG_DEBUG);
    Suite *su = suite_create("client");
    TCase *tc = tcase_create("client");
    tcase_add_test(tc, metadata_bootstrap_rotates_on_timeout_and_error);
    tcase_add_test(tc, metadata_asked_at_version_2_falls_back_to_1_for_an_old_broker);
    tcase_add_test(tc, produce_acks_all_reports_each_record_offset);
    tcase_add_test(tc, not_leader_hint_resends_to_the_hinted_leader);
    tcase_add_test(tc, lost_answer_times_out_and_idempotent_retry_keeps_its_sequence);
    tcase_add_test(tc, backpressure_then_room_after_the_answer);
    tcase_add_test(tc, acks_zero_is_done_when_sent);
    tcase_add_test(tc, fetch_loop_delivers_in_order_drops_below_and_stops_at_gaps);
    tcase_add_test(tc, fetch_out_of_range_and_not_leader);
    tcase_add_test(tc, no_leader_known_waits_for_a_refresh);
    tcase_add_test(tc, admin_create_follows_the_controller_hint);
    tcase_add_test(tc, describe_hands_the_answer_over_and_gives_up_after_its_attempts);
    tcase_add_test(tc, closed_answers_are_retried_and_a_sequence_gap_renews_the_producer_id);
    tcase_add_test(tc, sequence_refusals_behind_an_unresolved_batch_wait_for_it);
    tcase_add_test(tc, a_batch_failing_for_good_leads_to_a_new_producer_id);
    tcase_add_test(tc, malformed_answers_are_counted_and_ignored);
    tcase_add_test(tc, keyed_records_go_to_their_partition_with_headers);
    tcase_add_test(tc, retries_run_out_and_the_error_is_reported_once);
    tcase_add_test(tc, callbacks_may_call_back_into_the_client);
    tcase_add_test(tc, seeded_garbage_never_crashes);
    tcase_add_test(tc, fetch_from_followers_and_metadata_refresh_by_age);
    tcase_add_test(tc, error_frame_fails_a_batch_and_fetch_timeouts_retry);
    suite_add_tcase(su, tc);
    return run_suites(srunner_create(su));
}
