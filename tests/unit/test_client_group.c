/* The client's consumer-group member (src/client/group.c) and its delayed produce, driven through
 * a fake io (a clock the test moves, the one timer, a queue of sent frames) by a coordinator and
 * partition leaders scripted inside each test: each decodes what the client sent and answers it
 * by hand. Joining at the controller and following an RQ_ENOTLEADER hint; the assignment, claims
 * at each partition's leader (queue and pub/sub cursors); group fetches from the committed offset,
 * the log start or the end; commits every commit_every_ns; heartbeats and a rebalance (dropped,
 * kept and new partitions, resuming at the position or a committed offset ahead of it);
 * RQ_EFENCED and RQ_ENOMEMBER; leaving (final commits, then LEAVE_GROUP) without spinning the
 * timer; a join refused for good and invalid configs; expired placeholders; delayed produce.
 * The fake io is a trimmed copy of tests/unit/test_client.c's, with the group callbacks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/log.h"
#include "broker/ttl.h"
#include "client/client.h"
#include "proto/frame.h"
#include "proto/group_msg.h"
#include "tests/unit/suite_main.h"

enum {
    SENT_MAX = 64,
    KEPT_MAX = 256,
    LOG_MAX = 64,
    CLIENT_ID = 1000,
    CONTROLLER = 4, /* brokers 1..4; "orders" partition p is led by broker p + 1 */
    MEMBER = 7,
};
#define MS           (UINT64_C(1000) * 1000)
#define TIMEOUT      (10000 * MS) /* request timeout: no test waits that long for an answer */
#define SESSION_MS   3000         /* heartbeats every 1000 ms */
#define HEARTBEAT    (1000 * MS)
#define COMMIT_EVERY (200 * MS)

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
    uint8_t *kept[KEPT_MAX]; /* frames taken off the queue (decoded messages point into them) */
    uint32_t kept_count;
    /* what the callbacks saw */
    uint32_t assigned;
    uint64_t as_generation, as_member;
    uint32_t as_partitions[16], as_count;
    uint32_t committed;
    uint32_t co_partition;
    uint64_t co_generation, co_offset;
    uint32_t group_errors;
    int group_error;
    uint32_t fetched;
    uint32_t fe_partitions[LOG_MAX];
    uint64_t fe_offsets[LOG_MAX];
    char fe_values[LOG_MAX][8];
    uint32_t fetch_errors;
    uint32_t produced;
    uint64_t pr_token, pr_offset;
    uint32_t pr_partition;
    int pr_error;
};

static uint64_t fake_now(void *env) { return ((struct fake *)env)->now; }
static void fake_set_timer(void *env, uint64_t at) { ((struct fake *)env)->timer = at; }
static void fake_send(void *env, uint32_t to, const void *buf, size_t len) {
    struct fake *f = env;
    ck_assert_uint_lt(f->sent_count, SENT_MAX);
    struct sent *s = &f->sent[f->sent_count++];
    s->to = to;
    s->buf = malloc(len);
    ck_assert_ptr_nonnull(s->buf);
    memcpy(s->buf, buf, len);
    s->len = len;
}

static void on_assigned(void *arg, uint64_t generation, uint64_t member_id,
                        const uint32_t *partitions, uint32_t count) {
    struct fake *f = arg;
    ck_assert_uint_le(count, 16);
    f->assigned++;
    f->as_generation = generation;
    f->as_member = member_id;
    f->as_count = count;
    if (count > 0) memcpy(f->as_partitions, partitions, count * sizeof partitions[0]);
}
static void on_committed(void *arg, uint32_t partition, uint64_t generation, uint64_t offset) {
    struct fake *f = arg;
    f->committed++;
    f->co_partition = partition;
    f->co_generation = generation;
    f->co_offset = offset;
}
static void on_group_error(void *arg, int error) {
    struct fake *f = arg;
    f->group_errors++;
    f->group_error = error;
}
static void on_fetched(void *arg, struct proto_bytes topic, uint32_t partition,
                       const struct proto_record *r) {
    struct fake *f = arg;
    ck_assert_uint_eq(topic.size, 6);
    ck_assert_int_eq(memcmp(topic.data, "orders", 6), 0);
    ck_assert_uint_lt(f->fetched, LOG_MAX);
    ck_assert_uint_lt(r->value.size, 8);
    memcpy(f->fe_values[f->fetched], r->value.data, r->value.size);
    f->fe_values[f->fetched][r->value.size] = '\0';
    f->fe_partitions[f->fetched] = partition;
    f->fe_offsets[f->fetched++] = r->offset;
}
static void on_fetch_error(void *arg, struct proto_bytes topic, uint32_t partition, int error,
                           uint64_t position, uint64_t log_start, uint64_t hw) {
    struct fake *f = arg;
    (void)topic;
    (void)partition;
    (void)error;
    (void)position;
    (void)log_start;
    (void)hw;
    f->fetch_errors++;
}
static void on_produced(void *arg, uint64_t token, uint32_t partition, int error, uint64_t off) {
    struct fake *f = arg;
    f->produced++;
    f->pr_token = token;
    f->pr_partition = partition;
    f->pr_error = error;
    f->pr_offset = off;
}

static const struct rq_client_callbacks callbacks = {.produced = on_produced,
                                                     .fetched = on_fetched,
                                                     .fetch_error = on_fetch_error,
                                                     .assigned = on_assigned,
                                                     .committed = on_committed,
                                                     .group_error = on_group_error};

static void config(struct rq_client_config *cfg) {
    rq_client_config_default(cfg);
    cfg->bootstrap[0] = 1;
    cfg->bootstrap[1] = 2;
    cfg->bootstrap_count = 2;
    cfg->request_timeout_ns = TIMEOUT;
    cfg->metadata_max_age_ns = 100000 * MS;
    cfg->backoff_ns = 10 * MS;
    cfg->backoff_max_ns = 40 * MS;
    cfg->fetch_max_wait_ms = 50;
}

static struct rq_client *make(struct fake *f) {
    struct rq_client_config cfg;
    config(&cfg);
    memset(f, 0, sizeof *f);
    f->io = (struct rq_io){.env = f,
                           .node_id = CLIENT_ID,
                           .seed = 11,
                           .now = fake_now,
                           .set_timer = fake_set_timer,
                           .send = fake_send};
    f->now = 1000 * MS;
    f->timer = UINT64_MAX;
    struct rq_client *c = rq_client_create(&f->io, &cfg, &callbacks, f);
    ck_assert_ptr_nonnull(c);
    rq_client_start(c);
    return c;
}

static void finish(struct fake *f, struct rq_client *c) {
    rq_client_destroy(c);
    for (uint32_t i = 0; i < f->sent_count; i++)
        free(f->sent[i].buf);
    for (uint32_t i = 0; i < f->kept_count; i++)
        free(f->kept[i]);
    f->sent_count = f->kept_count = 0;
}

/* Moves the clock to `to`, firing the timer each time it falls due on the way; a timer that
 * keeps asking for "now" without anything to do fails the bound (a busy loop). */
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

/* A message the client sent, decoded (pointing into a frame the fake keeps until finish). */
struct taken {
    uint32_t to;
    uint32_t correlation;
    struct proto_msg m;
};

/* The partition a request is about (ANY_PARTITION for the membership's requests). */
#define ANY_PARTITION UINT32_MAX
static uint32_t partition_of(const struct proto_msg *m) {
    switch (m->type) {
    case PROTO_FETCH_REQ:
    case PROTO_GROUP_FETCH_REQ: return m->u.fetch_req.partition;
    case PROTO_CLAIM_REQ:
    case PROTO_COMMIT_REQ: return m->u.offset_req.partition;
    case PROTO_PRODUCE_REQ:
    case PROTO_DELAYED_PRODUCE_REQ: return m->u.produce_req.partition;
    default: return ANY_PARTITION;
    }
}

/* Decodes sent[i] into *out; returns its type. */
static uint8_t decode_sent(const struct fake *f, uint32_t i, struct taken *out) {
    struct proto_frame fr;
    size_t size;
    ck_assert_int_eq(
        proto_frame_decode(f->sent[i].buf, f->sent[i].len, PROTO_FRAME_MAX, &fr, &size), 0);
    ck_assert_uint_eq(size, f->sent[i].len); /* exactly one frame per message */
    out->to = f->sent[i].to;
    out->correlation = fr.correlation;
    ck_assert_int_eq(proto_decode(fr.type, fr.payload, fr.payload_size, &out->m), 0);
    ck_assert_uint_eq(out->m.type, fr.type);
    return fr.type;
}

/* The first message of that type (and partition, unless ANY_PARTITION) taken off the queue. */
static int take(struct fake *f, uint8_t type, uint32_t partition, struct taken *out) {
    for (uint32_t i = 0; i < f->sent_count; i++) {
        if (decode_sent(f, i, out) != type) continue;
        if (partition != ANY_PARTITION && partition_of(&out->m) != partition) continue;
        ck_assert_uint_lt(f->kept_count, KEPT_MAX);
        f->kept[f->kept_count++] = f->sent[i].buf;
        memmove(&f->sent[i], &f->sent[i + 1], (f->sent_count - i - 1) * sizeof f->sent[0]);
        f->sent_count--;
        return 1;
    }
    return 0;
}

static struct taken expect_part(struct fake *f, uint8_t type, uint32_t partition) {
    struct taken t;
    ck_assert_msg(take(f, type, partition, &t), "no %s for partition %u sent",
                  proto_type_name(type), partition);
    return t;
}

static struct taken expect(struct fake *f, uint8_t type) {
    return expect_part(f, type, ANY_PARTITION);
}

static uint32_t count_part(const struct fake *f, uint8_t type, uint32_t partition) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < f->sent_count; i++) {
        struct taken t;
        if (decode_sent(f, i, &t) == type &&
            (partition == ANY_PARTITION || partition_of(&t.m) == partition))
            n++;
    }
    return n;
}

static uint32_t count_type(const struct fake *f, uint8_t type) {
    return count_part(f, type, ANY_PARTITION);
}

/* Drops every message still queued (requests the scripted servers never answer). */
static void drop_sent(struct fake *f) {
    for (uint32_t i = 0; i < f->sent_count; i++)
        free(f->sent[i].buf);
    f->sent_count = 0;
}

/* ---- the scripted servers' answers ----------------------------------------------------------- */

static uint8_t payload[1 << 16], frame[1 << 17];

static struct proto_bytes s(const char *text) {
    return (struct proto_bytes){(const uint8_t *)text, (uint32_t)strlen(text)};
}

static int bytes_are(struct proto_bytes b, const char *text) {
    return b.size == strlen(text) && (b.size == 0 || memcmp(b.data, text, b.size) == 0);
}

static void deliver(struct rq_client *c, uint32_t from, uint8_t type, uint32_t corr, size_t n) {
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_le(n, sizeof frame - PROTO_FRAME_HEADER);
    memcpy(frame + PROTO_FRAME_HEADER, payload, n);
    proto_frame_header_version(frame, PROTO_VERSION_MIN, type, corr, frame + PROTO_FRAME_HEADER,
                               (uint32_t)n);
    rq_client_on_message(c, from, frame, PROTO_FRAME_HEADER + n);
}

/* Brokers 1..4, controller CONTROLLER; "orders" with three partitions, p led by p + 1. */
static void answer_metadata(struct rq_client *c, const struct taken *t) {
    struct proto_broker brokers[] = {
        {1, s("a:1"), 0}, {2, s("b:1"), 0}, {3, s("c:1"), 0}, {4, s("d:1"), 0}};
    struct proto_topic topics[] = {{.name = s("orders"), .partition_count = 3}};
    struct proto_partition parts[] = {
        {0, 1, 3, {1, 2, 3}}, {1, 2, 3, {1, 2, 3}}, {2, 3, 3, {1, 2, 3}}};
    size_t n = proto_encode_metadata_resp_version(payload, sizeof payload, PROTO_VERSION_MIN,
                                                  CONTROLLER, brokers, 4, topics, 1, parts);
    deliver(c, t->to, PROTO_METADATA_RESP, t->correlation, n);
}

static void bootstrap(struct fake *f, struct rq_client *c) {
    struct taken t = expect(f, PROTO_METADATA_REQ);
    answer_metadata(c, &t);
}

static void answer_assignment(struct rq_client *c, const struct taken *t, int error, uint32_t hint,
                              uint64_t member, uint64_t generation, const uint32_t *parts,
                              uint32_t count) {
    struct proto_assignment_resp m = {.error = error,
                                      .leader_hint = hint,
                                      .member_id = member,
                                      .generation = generation,
                                      .partition_count = count};
    deliver(c, t->to, PROTO_ASSIGNMENT_RESP, t->correlation,
            proto_encode_assignment_resp(payload, sizeof payload, &m, parts));
}

static void answer_offset(struct rq_client *c, const struct taken *t, int error, uint64_t committed,
                          uint64_t log_start, uint64_t hw) {
    struct proto_offset_resp m = {
        .error = error, .committed = committed, .log_start = log_start, .high_watermark = hw};
    deliver(c, t->to, PROTO_OFFSET_RESP, t->correlation,
            proto_encode_offset_resp(payload, sizeof payload, &m));
}

static void answer_status(struct rq_client *c, const struct taken *t, uint8_t type, int error) {
    struct proto_status_resp m = {.error = error};
    deliver(c, t->to, type, t->correlation, proto_encode_status_resp(payload, sizeof payload, &m));
}

static void answer_produce(struct rq_client *c, const struct taken *t, int error, uint32_t hint) {
    struct proto_produce_resp m = {.error = error, .base_offset = 0, .leader_hint = hint};
    deliver(c, t->to, PROTO_PRODUCE_RESP, t->correlation,
            proto_encode_produce_resp(payload, sizeof payload, &m));
}

/* A fetch answer with the records at offsets[0..count) (value "v<offset>"), those flagged in
 * expired (a bit per index) sent as TTL placeholders (broker/ttl.h). */
static void answer_fetch_expired(struct rq_client *c, const struct taken *t, int error, uint64_t hw,
                                 const uint64_t *offsets, uint32_t count, uint32_t expired) {
    static char values[8][8];
    static const struct proto_header placeholder = {
        {(const uint8_t *)RQ_HEADER_EXPIRED, sizeof RQ_HEADER_EXPIRED - 1}, {NULL, 0}};
    struct proto_record_in recs[8];
    ck_assert_uint_le(count, 8);
    for (uint32_t i = 0; i < count; i++) {
        ck_assert_uint_lt(offsets[i], 1000000);
        int len = snprintf(values[i], sizeof values[i], "v%u", (unsigned)offsets[i]);
        recs[i] = (struct proto_record_in){.offset = offsets[i],
                                           .timestamp = 42,
                                           .value = {(const uint8_t *)values[i], (uint32_t)len}};
        if (expired & (1u << i)) /* what ttl_placeholder writes: no key, no value, one header */
            recs[i] = (struct proto_record_in){
                .offset = offsets[i], .timestamp = 42, .header_count = 1, .headers = &placeholder};
    }
    struct proto_fetch_resp m = {.error = error,
                                 .log_start = 0,
                                 .high_watermark = hw,
                                 .records = {.count = count, .with_offsets = 1}};
    deliver(c, t->to, PROTO_FETCH_RESP, t->correlation,
            proto_encode_fetch_resp(payload, sizeof payload, &m, recs));
}

static void answer_fetch(struct rq_client *c, const struct taken *t, uint64_t hw,
                         const uint64_t *offsets, uint32_t count) {
    answer_fetch_expired(c, t, 0, hw, offsets, count, 0);
}

static void answer_fetch_error(struct rq_client *c, const struct taken *t, int error) {
    answer_fetch_expired(c, t, error, 0, NULL, 0, 0);
}

/* ---- the member's scripted life -------------------------------------------------------------- */

static struct rq_group_config group_config(void) {
    return (struct rq_group_config){.group = s("workers"),
                                    .topic = s("orders"),
                                    .member_name = s("w1"),
                                    .mode = PROTO_MODE_QUEUE,
                                    .strategy = PROTO_STRATEGY_STICKY,
                                    .session_ms = SESSION_MS,
                                    .commit_every_ns = COMMIT_EVERY};
}

/* A claim as the client must send it: to the partition's leader, for the member's generation,
 * with the cursor. */
static struct taken expect_claim(struct fake *f, uint32_t partition, uint64_t generation,
                                 uint64_t member, const char *cursor) {
    struct taken t = expect_part(f, PROTO_CLAIM_REQ, partition);
    ck_assert_uint_eq(t.to, partition + 1);
    ck_assert(bytes_are(t.m.u.offset_req.topic, "orders"));
    ck_assert(bytes_are(t.m.u.offset_req.cursor, cursor));
    ck_assert_uint_eq(t.m.u.offset_req.generation, generation);
    ck_assert_uint_eq(t.m.u.offset_req.member_id, member);
    ck_assert_uint_eq(t.m.u.offset_req.offset, 0);
    return t;
}

/* A group fetch as the client must send it: to the leader, at `offset`, with the claim's
 * identity. */
static struct taken expect_fetch(struct fake *f, uint32_t partition, uint64_t offset,
                                 uint64_t generation, uint64_t member, const char *cursor) {
    struct taken t = expect_part(f, PROTO_GROUP_FETCH_REQ, partition);
    ck_assert_uint_eq(t.to, partition + 1);
    ck_assert(bytes_are(t.m.u.fetch_req.topic, "orders"));
    ck_assert_uint_eq(t.m.u.fetch_req.offset, offset);
    ck_assert_uint_eq(t.m.u.fetch_req.from_follower, 0);
    ck_assert(bytes_are(t.m.u.fetch_req.cursor, cursor));
    ck_assert_uint_eq(t.m.u.fetch_req.generation, generation);
    ck_assert_uint_eq(t.m.u.fetch_req.member_id, member);
    ck_assert_uint_eq(count_part(f, PROTO_GROUP_FETCH_REQ, partition), 0); /* one at a time */
    return t;
}

static struct taken expect_commit(struct fake *f, uint32_t partition, uint64_t offset,
                                  uint64_t generation) {
    struct taken t = expect_part(f, PROTO_COMMIT_REQ, partition);
    ck_assert_uint_eq(t.to, partition + 1);
    ck_assert(bytes_are(t.m.u.offset_req.cursor, "workers"));
    ck_assert_uint_eq(t.m.u.offset_req.offset, offset);
    ck_assert_uint_eq(t.m.u.offset_req.generation, generation);
    ck_assert_uint_eq(t.m.u.offset_req.member_id, MEMBER);
    return t;
}

/* Bootstraps, joins "workers" as MEMBER in `generation` with parts[0..count), and answers each
 * claim with committed[i] (log 0..100): the group fetches are left queued. */
static void join_member(struct fake *f, struct rq_client *c, const struct rq_group_config *g,
                        uint64_t generation, const uint32_t *parts, uint32_t count,
                        const uint64_t *committed) {
    bootstrap(f, c);
    ck_assert_int_eq(rq_client_join_group(c, g), 0);
    struct taken join = expect(f, PROTO_JOIN_GROUP_REQ);
    answer_assignment(c, &join, 0, 0, MEMBER, generation, parts, count);
    ck_assert_uint_eq(f->assigned, 1);
    for (uint32_t i = 0; i < count; i++) {
        struct taken claim = expect_claim(f, parts[i], generation, MEMBER, "workers");
        answer_offset(c, &claim, 0, committed[i], 0, 100);
    }
    ck_assert_uint_eq(f->sent_count, count); /* one group fetch per partition, nothing else */
    ck_assert_uint_eq(count_type(f, PROTO_GROUP_FETCH_REQ), count);
}

/* ---- joining --------------------------------------------------------------------------------- */

/* The JOIN goes to the metadata's controller with the config's fields, follows an RQ_ENOTLEADER
 * hint at once; the assignment is reported and each partition claimed at its leader; heartbeats
 * then go where the hint said, every session / 3. */
START_TEST(join_follows_the_hint_and_claims_each_partition_at_its_leader) {
    struct fake f;
    struct rq_client *c = make(&f);
    bootstrap(&f, c);
    struct rq_group_config g = group_config();
    ck_assert_int_eq(rq_client_join_group(c, &g), 0);
    struct taken join = expect(&f, PROTO_JOIN_GROUP_REQ);
    ck_assert_uint_eq(f.sent_count, 0);
    ck_assert_uint_eq(join.to, CONTROLLER);
    const struct proto_join_group_req *j = &join.m.u.join_group_req;
    ck_assert(bytes_are(j->group, "workers"));
    ck_assert(bytes_are(j->topic, "orders"));
    ck_assert(bytes_are(j->member_name, "w1"));
    ck_assert_uint_eq(j->mode, PROTO_MODE_QUEUE);
    ck_assert_uint_eq(j->strategy, PROTO_STRATEGY_STICKY);
    ck_assert_uint_eq(j->session_ms, SESSION_MS);
    ck_assert_uint_eq(j->member_id, 0);
    ck_assert_uint_eq(rq_client_group_generation(c), 0);

    /* Not the coordinator: the hinted one is asked at once, with no back-off. */
    answer_assignment(c, &join, RQ_ENOTLEADER, 1, 0, 0, NULL, 0);
    struct taken join2 = expect(&f, PROTO_JOIN_GROUP_REQ);
    ck_assert_uint_eq(join2.to, 1);
    ck_assert_uint_eq(join2.m.u.join_group_req.member_id, 0);
    ck_assert_uint_eq(f.assigned, 0);

    const uint32_t parts[] = {0, 2};
    answer_assignment(c, &join2, 0, 0, MEMBER, 5, parts, 2);
    ck_assert_uint_eq(f.assigned, 1);
    ck_assert_uint_eq(f.as_generation, 5);
    ck_assert_uint_eq(f.as_member, MEMBER);
    ck_assert_uint_eq(f.as_count, 2);
    ck_assert_uint_eq(f.as_partitions[0], 0);
    ck_assert_uint_eq(f.as_partitions[1], 2);
    ck_assert_uint_eq(rq_client_group_generation(c), 5);
    ck_assert_uint_eq(rq_client_group_member(c), MEMBER);
    expect_claim(&f, 0, 5, MEMBER, "workers"); /* the queue's cursor: the group's name */
    expect_claim(&f, 2, 5, MEMBER, "workers");
    ck_assert_uint_eq(f.sent_count, 0); /* partition 1 is someone else's */

    /* A heartbeat every session / 3, to the coordinator the hint named. */
    advance(&f, c, HEARTBEAT - 1);
    ck_assert_uint_eq(count_type(&f, PROTO_HEARTBEAT_REQ), 0);
    advance(&f, c, 1);
    struct taken hb = expect(&f, PROTO_HEARTBEAT_REQ);
    ck_assert_uint_eq(hb.to, 1);
    ck_assert(bytes_are(hb.m.u.heartbeat_req.group, "workers"));
    ck_assert_uint_eq(hb.m.u.heartbeat_req.member_id, MEMBER);
    ck_assert_uint_eq(hb.m.u.heartbeat_req.generation, 5);
    ck_assert_uint_eq(f.sent_count, 0);
    /* The same generation again: nothing is reported or claimed again. */
    answer_assignment(c, &hb, 0, 0, MEMBER, 5, parts, 2);
    ck_assert_uint_eq(f.assigned, 1);
    ck_assert_uint_eq(f.sent_count, 0);
    finish(&f, c);
}
END_TEST

/* Pub/sub: the cursor is GROUP/MEMBER in claims and fetches; a partition never committed starts
 * at its log start, or with from_latest at its end. */
START_TEST(pubsub_cursor_and_where_an_uncommitted_partition_starts) {
    for (int from_latest = 0; from_latest <= 1; from_latest++) {
        struct fake f;
        struct rq_client *c = make(&f);
        bootstrap(&f, c);
        struct rq_group_config g = group_config();
        g.group = s("feed");
        g.member_name = s("alice");
        g.mode = PROTO_MODE_PUBSUB;
        g.strategy = PROTO_STRATEGY_RANGE;
        g.from_latest = (uint8_t)from_latest;
        ck_assert_int_eq(rq_client_join_group(c, &g), 0);
        struct taken join = expect(&f, PROTO_JOIN_GROUP_REQ);
        ck_assert_uint_eq(join.m.u.join_group_req.mode, PROTO_MODE_PUBSUB);
        ck_assert_uint_eq(join.m.u.join_group_req.strategy, PROTO_STRATEGY_RANGE);
        ck_assert(bytes_are(join.m.u.join_group_req.member_name, "alice"));
        const uint32_t parts[] = {1};
        answer_assignment(c, &join, 0, 0, MEMBER, 3, parts, 1);
        struct taken claim = expect_claim(&f, 1, 3, MEMBER, "feed/alice");
        answer_offset(c, &claim, 0, PROTO_NO_OFFSET, 4, 9);
        expect_fetch(&f, 1, from_latest ? 9 : 4, 3, MEMBER, "feed/alice");
        ck_assert_uint_eq(f.sent_count, 0);
        finish(&f, c);
    }
}
END_TEST

/* ---- fetching and committing ----------------------------------------------------------------- */

/* A claim's committed offset is where group fetches start; records come through fetched() in
 * order and the next fetch asks from the position. */
START_TEST(claim_answer_starts_group_fetches_at_the_committed_offset) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct rq_group_config g = group_config();
    const uint32_t parts[] = {0, 1};
    const uint64_t committed[] = {5, PROTO_NO_OFFSET};
    join_member(&f, c, &g, 5, parts, 2, committed);
    struct taken f0 = expect_fetch(&f, 0, 5, 5, MEMBER, "workers");
    expect_fetch(&f, 1, 0, 5, MEMBER, "workers"); /* never committed: the log start (0) */
    const uint64_t recs[] = {5, 6, 7};
    answer_fetch(c, &f0, 20, recs, 3);
    ck_assert_uint_eq(f.fetched, 3);
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(f.fe_partitions[i], 0);
        ck_assert_uint_eq(f.fe_offsets[i], 5 + i);
    }
    ck_assert_str_eq(f.fe_values[0], "v5");
    ck_assert_str_eq(f.fe_values[2], "v7");
    uint64_t position = 0;
    ck_assert_int_eq(rq_client_position(c, s("orders"), 0, &position), 0);
    ck_assert_uint_eq(position, 8);
    /* A grouped subscription is the group's: it cannot be unsubscribed on its own. */
    ck_assert_int_eq(rq_client_unsubscribe(c, s("orders"), 0), RQ_EINVAL);
    struct taken f0b = expect_fetch(&f, 0, 8, 5, MEMBER, "workers");
    /* A duplicated answer is not delivered twice. */
    answer_fetch(c, &f0b, 20, recs, 3);
    ck_assert_uint_eq(f.fetched, 3);
    ck_assert_uint_eq(f.fetch_errors, 0);
    finish(&f, c);
}
END_TEST

/* Every commit_every_ns a partition whose position moved past its committed offset is committed;
 * an accepted commit is reported; nothing new, nothing sent. */
START_TEST(positions_are_committed_every_commit_every_ns) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct rq_group_config g = group_config();
    const uint32_t parts[] = {0, 1};
    const uint64_t committed[] = {5, 3};
    uint64_t joined_ns = f.now;
    join_member(&f, c, &g, 5, parts, 2, committed);
    struct taken f0 = expect_fetch(&f, 0, 5, 5, MEMBER, "workers");
    const uint64_t recs[] = {5, 6};
    answer_fetch(c, &f0, 20, recs, 2);
    run_until(&f, c, joined_ns + COMMIT_EVERY - 1);
    ck_assert_uint_eq(count_type(&f, PROTO_COMMIT_REQ), 0);
    advance(&f, c, 1);
    struct taken cm = expect_commit(&f, 0, 7, 5);
    ck_assert_uint_eq(count_type(&f, PROTO_COMMIT_REQ), 0); /* partition 1: nothing new */
    ck_assert_uint_eq(f.committed, 0);
    answer_offset(c, &cm, 0, 7, 0, 20);
    ck_assert_uint_eq(f.committed, 1);
    ck_assert_uint_eq(f.co_partition, 0);
    ck_assert_uint_eq(f.co_generation, 5);
    ck_assert_uint_eq(f.co_offset, 7);
    /* Nothing delivered since: the next round sends nothing. */
    advance(&f, c, COMMIT_EVERY);
    ck_assert_uint_eq(count_type(&f, PROTO_COMMIT_REQ), 0);
    /* One more record: the round after commits it. */
    struct taken f0b = expect_fetch(&f, 0, 7, 5, MEMBER, "workers");
    const uint64_t more[] = {7};
    answer_fetch(c, &f0b, 20, more, 1);
    advance(&f, c, COMMIT_EVERY);
    expect_commit(&f, 0, 8, 5);
    ck_assert_uint_eq(count_type(&f, PROTO_COMMIT_REQ), 0);
    finish(&f, c);
}
END_TEST

/* Records whose TTL passed come as placeholders: they move the position (and so the commit) but
 * never reach fetched(). */
START_TEST(expired_placeholders_move_the_position_but_are_not_delivered) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct rq_group_config g = group_config();
    const uint32_t parts[] = {0};
    const uint64_t committed[] = {5};
    uint64_t joined_ns = f.now;
    join_member(&f, c, &g, 5, parts, 1, committed);
    struct taken f0 = expect_fetch(&f, 0, 5, 5, MEMBER, "workers");
    /* sanity: the placeholder the test encodes is the one a broker writes */
    uint8_t ph[TTL_PLACEHOLDER_MAX];
    ck_assert_uint_gt(ttl_placeholder(ph, 42), 0);
    const uint64_t recs[] = {5, 6, 7, 8};
    answer_fetch_expired(c, &f0, 0, 20, recs, 4, 1u << 1 | 1u << 3); /* 6 and 8 expired */
    ck_assert_uint_eq(f.fetched, 2);
    ck_assert_uint_eq(f.fe_offsets[0], 5);
    ck_assert_uint_eq(f.fe_offsets[1], 7);
    struct rq_client_stats st;
    rq_client_stats_get(c, &st);
    ck_assert_uint_eq(st.records_expired, 2);
    ck_assert_uint_eq(st.records_fetched, 2);
    expect_fetch(&f, 0, 9, 5, MEMBER, "workers");
    run_until(&f, c, joined_ns + COMMIT_EVERY);
    expect_commit(&f, 0, 9, 5);
    finish(&f, c);
}
END_TEST

/* ---- rebalances ------------------------------------------------------------------------------ */

/* A heartbeat answer with a new generation: every position is first committed under the old
 * generation (so the next owner starts after it), then a partition no longer assigned is dropped
 * (its answer under way ignored, no more fetches), the new one claimed, a kept one claimed again
 * under the new generation and resumed at its position — unless the committed offset is ahead. */
START_TEST(rebalance_drops_claims_and_resumes_kept_partitions) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct rq_group_config g = group_config();
    g.commit_every_ns = 100000 * MS; /* no commits here: claims answer the committed offsets */
    const uint32_t parts[] = {0, 1};
    const uint64_t committed[] = {5, 10};
    uint64_t joined_ns = f.now;
    join_member(&f, c, &g, 5, parts, 2, committed);
    struct taken f0 = expect_fetch(&f, 0, 5, 5, MEMBER, "workers");
    struct taken f1 = expect_fetch(&f, 1, 10, 5, MEMBER, "workers");
    const uint64_t r0[] = {5, 6, 7}, r1[] = {10, 11};
    answer_fetch(c, &f0, 20, r0, 3);
    answer_fetch(c, &f1, 20, r1, 2);
    ck_assert_uint_eq(f.fetched, 5);
    struct taken f0b = expect_fetch(&f, 0, 8, 5, MEMBER, "workers");
    struct taken f1b = expect_fetch(&f, 1, 12, 5, MEMBER, "workers");

    run_until(&f, c, joined_ns + HEARTBEAT);
    struct taken hb = expect(&f, PROTO_HEARTBEAT_REQ);
    ck_assert_uint_eq(hb.to, CONTROLLER);
    ck_assert_uint_eq(f.sent_count, 0);
    const uint32_t next[] = {1, 2};
    answer_assignment(c, &hb, 0, 0, MEMBER, 6, next, 2);
    ck_assert_uint_eq(f.assigned, 2);
    ck_assert_uint_eq(f.as_generation, 6);
    ck_assert_uint_eq(f.as_count, 2);
    ck_assert_uint_eq(f.as_partitions[0], 1);
    ck_assert_uint_eq(f.as_partitions[1], 2);
    struct taken k0 = expect_commit(&f, 0, 8, 5);   /* the old generation's positions */
    struct taken k1 = expect_commit(&f, 1, 12, 5);
    struct taken c1 = expect_claim(&f, 1, 6, MEMBER, "workers");
    struct taken c2 = expect_claim(&f, 2, 6, MEMBER, "workers");
    ck_assert_uint_eq(f.sent_count, 0); /* partition 0 is not claimed, nor fetched */
    answer_offset(c, &k0, 0, 8, 0, 20);   /* answers nobody waits for: nothing follows */
    answer_offset(c, &k1, RQ_EFENCED, 10, 0, 20);
    ck_assert_uint_eq(f.sent_count, 0);

    /* The answers to the fetches of the old generation are not delivered. */
    const uint64_t late0[] = {8, 9}, late1[] = {12};
    answer_fetch(c, &f0b, 20, late0, 2);
    answer_fetch(c, &f1b, 20, late1, 1);
    ck_assert_uint_eq(f.fetched, 5);
    ck_assert_uint_eq(f.sent_count, 0);

    /* Kept: resumes at its position 12, not at the committed 10. New: at its committed 4. */
    answer_offset(c, &c1, 0, 10, 0, 30);
    answer_offset(c, &c2, 0, 4, 0, 30);
    struct taken f1c = expect_fetch(&f, 1, 12, 6, MEMBER, "workers");
    struct taken f2 = expect_fetch(&f, 2, 4, 6, MEMBER, "workers");
    ck_assert_uint_eq(f.sent_count, 0);
    advance(&f, c, 100 * MS);
    ck_assert_uint_eq(count_part(&f, PROTO_GROUP_FETCH_REQ, 0), 0);
    ck_assert_int_eq(rq_client_position(c, s("orders"), 0, &(uint64_t){0}), RQ_ENOENT);

    /* Another generation with the same partitions: both claimed again; partition 1's committed
     * offset (20) is now ahead of its position (12): another member got further. Partition 2
     * was never fetched past 4 and has nothing committed any more: its position. */
    run_until(&f, c, joined_ns + 2 * HEARTBEAT);
    struct taken hb2 = expect(&f, PROTO_HEARTBEAT_REQ);
    ck_assert_uint_eq(hb2.m.u.heartbeat_req.generation, 6);
    answer_assignment(c, &hb2, 0, 0, MEMBER, 7, next, 2);
    ck_assert_uint_eq(f.assigned, 3);
    expect_commit(&f, 1, 12, 6);   /* partition 2's position is its committed offset */
    struct taken c1b = expect_claim(&f, 1, 7, MEMBER, "workers");
    struct taken c2b = expect_claim(&f, 2, 7, MEMBER, "workers");
    answer_offset(c, &c1b, 0, 20, 0, 30);
    answer_offset(c, &c2b, 0, PROTO_NO_OFFSET, 0, 30);
    expect_fetch(&f, 1, 20, 7, MEMBER, "workers");
    expect_fetch(&f, 2, 4, 7, MEMBER, "workers");
    /* The generation-6 fetches' answers are ignored. */
    const uint64_t old[] = {12};
    answer_fetch(c, &f1c, 30, old, 1);
    answer_fetch(c, &f2, 30, (const uint64_t[]){4}, 1);
    ck_assert_uint_eq(f.fetched, 5);
    finish(&f, c);
}
END_TEST

/* RQ_EFENCED on a group fetch: that partition stops and the member heartbeats at once; RQ_ENOMEMBER
 * on the heartbeat: every partition is dropped and the member joins anew (member id 0). */
START_TEST(fenced_fetch_heartbeats_at_once_and_a_forgotten_member_joins_again) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct rq_group_config g = group_config();
    const uint32_t parts[] = {0, 1};
    const uint64_t committed[] = {5, 10};
    join_member(&f, c, &g, 5, parts, 2, committed);
    struct taken f0 = expect_fetch(&f, 0, 5, 5, MEMBER, "workers");
    struct taken f1 = expect_fetch(&f, 1, 10, 5, MEMBER, "workers");
    answer_fetch_error(c, &f0, RQ_EFENCED);
    struct taken hb = expect(&f, PROTO_HEARTBEAT_REQ); /* at once: the clock did not move */
    ck_assert_uint_eq(hb.m.u.heartbeat_req.generation, 5);
    ck_assert_uint_eq(f.sent_count, 0); /* no fetch for partition 0 */
    ck_assert_uint_eq(f.fetch_errors, 0);

    answer_assignment(c, &hb, RQ_ENOMEMBER, 0, 0, 0, NULL, 0);
    struct taken join = expect(&f, PROTO_JOIN_GROUP_REQ);
    ck_assert_uint_eq(join.to, CONTROLLER);
    ck_assert_uint_eq(join.m.u.join_group_req.member_id, 0);
    ck_assert_uint_eq(rq_client_group_generation(c), 0);
    ck_assert_uint_eq(f.sent_count, 0);
    /* Partition 1 was dropped too: its answer under way is not delivered, nothing follows. */
    const uint64_t recs[] = {10};
    answer_fetch(c, &f1, 20, recs, 1);
    ck_assert_uint_eq(f.fetched, 0);
    advance(&f, c, 100 * MS);
    ck_assert_uint_eq(count_type(&f, PROTO_GROUP_FETCH_REQ), 0);
    ck_assert_uint_eq(count_type(&f, PROTO_CLAIM_REQ), 0);

    const uint32_t again[] = {0};
    answer_assignment(c, &join, 0, 0, 9, 8, again, 1);
    ck_assert_uint_eq(f.assigned, 2);
    ck_assert_uint_eq(f.as_generation, 8);
    ck_assert_uint_eq(f.as_member, 9);
    expect_claim(&f, 0, 8, 9, "workers");
    finish(&f, c);
}
END_TEST

/* RQ_EFENCED with no new generation (an admin moved the cursor: RESET_OFFSET fences its holder):
 * the heartbeat brings the same generation, and the partition is claimed again under it,
 * starting from the committed offset the claim answers (not the position it had). */
START_TEST(fenced_without_a_new_generation_claims_again_from_the_committed_offset) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct rq_group_config g = group_config();
    const uint32_t parts[] = {0};
    const uint64_t committed[] = {5};
    join_member(&f, c, &g, 5, parts, 1, committed);
    struct taken f0 = expect_fetch(&f, 0, 5, 5, MEMBER, "workers");
    const uint64_t recs[] = {5, 6, 7};
    answer_fetch(c, &f0, 20, recs, 3);
    struct taken f0b = expect_fetch(&f, 0, 8, 5, MEMBER, "workers");
    answer_fetch_error(c, &f0b, RQ_EFENCED);
    struct taken hb = expect(&f, PROTO_HEARTBEAT_REQ);
    ck_assert_uint_eq(f.sent_count, 0);
    answer_assignment(c, &hb, 0, 0, MEMBER, 5, parts, 1);
    ck_assert_uint_eq(f.assigned, 1); /* not a new generation */
    advance(&f, c, 1 * MS);
    ck_assert_uint_eq(count_type(&f, PROTO_CLAIM_REQ), 0);   /* a fenced claim waits a back-off */
    advance(&f, c, 20 * MS);
    struct taken claim = expect_claim(&f, 0, 5, MEMBER, "workers");
    ck_assert_uint_eq(f.sent_count, 0);
    answer_offset(c, &claim, 0, 2, 0, 20); /* reset to 2 */
    expect_fetch(&f, 0, 2, 5, MEMBER, "workers");
    finish(&f, c);
}
END_TEST

/* A JOIN refused as retriable (RQ_ENOTOPIC: the topic may not be known yet) is retried with
 * back-off, and given up after its bound with group_error. */
START_TEST(join_retries_an_unknown_topic_then_gives_up) {
    struct fake f;
    struct rq_client *c = make(&f);
    bootstrap(&f, c);
    struct rq_group_config g = group_config();
    ck_assert_int_eq(rq_client_join_group(c, &g), 0);
    uint32_t joins = 0;
    for (uint32_t i = 0; i < 100 && f.group_errors == 0; i++) {
        struct taken join;
        if (take(&f, PROTO_JOIN_GROUP_REQ, ANY_PARTITION, &join)) {
            joins++;
            ck_assert_uint_eq(count_type(&f, PROTO_JOIN_GROUP_REQ), 0);
            answer_assignment(c, &join, RQ_ENOTOPIC, 0, 0, 0, NULL, 0);
            ck_assert_uint_eq(count_type(&f, PROTO_JOIN_GROUP_REQ), 0); /* not at once */
        }
        advance(&f, c, 100 * MS);
    }
    ck_assert_uint_eq(joins, 17); /* 16 retries */
    ck_assert_uint_eq(f.group_errors, 1);
    ck_assert_int_eq(f.group_error, RQ_ENOTOPIC);
    advance(&f, c, 10 * HEARTBEAT);
    ck_assert_uint_eq(count_type(&f, PROTO_JOIN_GROUP_REQ), 0);
    finish(&f, c);
}
END_TEST

/* ---- leaving and failing --------------------------------------------------------------------- */

/* Leave commits each partition with new deliveries, then (and only then) sends LEAVE_GROUP;
 * while it waits for the commits the timer is not asked for "now" over and over. The answer ends
 * the membership (group_error(0)): nothing more is sent, and a second leave is RQ_ENOENT. */
START_TEST(leave_commits_positions_then_leaves) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct rq_group_config g = group_config();
    g.commit_every_ns = 100000 * MS;
    const uint32_t parts[] = {0, 1};
    const uint64_t committed[] = {5, 3};
    join_member(&f, c, &g, 5, parts, 2, committed);
    struct taken f0 = expect_fetch(&f, 0, 5, 5, MEMBER, "workers");
    const uint64_t recs[] = {5, 6};
    answer_fetch(c, &f0, 20, recs, 2);
    drop_sent(&f); /* the fetches under way are never answered */

    ck_assert_int_eq(rq_client_leave_group(c), 0);
    struct taken cm = expect_commit(&f, 0, 7, 5);
    ck_assert_uint_eq(f.sent_count, 0); /* partition 1: nothing new; no LEAVE before the commit */
    ck_assert_int_eq(rq_client_leave_group(c), RQ_ENOENT);
    ck_assert_uint_gt(f.timer, f.now); /* nothing to do until an answer or a timeout */
    advance(&f, c, 10 * MS);
    ck_assert_uint_eq(f.sent_count, 0);

    answer_offset(c, &cm, 0, 7, 0, 20);
    ck_assert_uint_eq(f.committed, 1);
    ck_assert_uint_eq(f.co_offset, 7);
    struct taken lv = expect(&f, PROTO_LEAVE_GROUP_REQ);
    ck_assert_uint_eq(lv.to, CONTROLLER);
    ck_assert(bytes_are(lv.m.u.leave_group_req.group, "workers"));
    ck_assert_uint_eq(lv.m.u.leave_group_req.member_id, MEMBER);
    ck_assert_uint_eq(f.sent_count, 0);
    ck_assert_uint_eq(f.group_errors, 0);

    answer_status(c, &lv, PROTO_LEAVE_GROUP_RESP, 0);
    ck_assert_uint_eq(f.group_errors, 1);
    ck_assert_int_eq(f.group_error, 0);
    ck_assert_int_eq(rq_client_leave_group(c), RQ_ENOENT);
    advance(&f, c, 10 * HEARTBEAT);
    ck_assert_uint_eq(f.sent_count, 0); /* no heartbeat, fetch or commit after leaving */
    ck_assert_uint_eq(f.group_errors, 1);
    finish(&f, c);
}
END_TEST

/* The member of the two leave tests below: queue group "g", partition 0 assigned at generation 1
 * to member 7; the claim is taken off the queue, not answered. */
static struct taken join_one_partition(struct fake *f, struct rq_client *c) {
    bootstrap(f, c);
    struct rq_group_config g = {.group = s("g"), .topic = s("orders"), .mode = PROTO_MODE_QUEUE,
                                .strategy = PROTO_STRATEGY_RANGE, .session_ms = 300,
                                .commit_every_ns = 50 * MS};
    ck_assert_int_eq(rq_client_join_group(c, &g), 0);
    struct taken j = expect(f, PROTO_JOIN_GROUP_REQ);
    static const uint32_t first[] = {0};
    answer_assignment(c, &j, 0, 0, 7, 1, first, 1);
    advance(f, c, 0);
    return expect(f, PROTO_CLAIM_REQ);
}

/* A member leaving (its last commit done, its LEAVE under way) whose partition is then fenced
 * (the coordinator took the leave and another member claimed it) has nothing left to do for the
 * partition: it must not ask for the timer in the past again and again (it did: the client
 * spun at one instant; found by mq seed 3). */
START_TEST(a_member_leaving_whose_partition_is_fenced_waits_quietly) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct taken cl = join_one_partition(&f, c);
    ck_assert_uint_eq(cl.m.u.offset_req.generation, 1);
    answer_offset(c, &cl, 0, PROTO_NO_OFFSET, 0, 2);
    advance(&f, c, 0);
    struct taken fe = expect(&f, PROTO_GROUP_FETCH_REQ);
    static const uint64_t offsets[] = {0, 1};
    answer_fetch(c, &fe, 2, offsets, 2);
    ck_assert_uint_eq(f.fetched, 2);
    struct taken fe2 = expect(&f, PROTO_GROUP_FETCH_REQ);   /* the next long-poll */
    ck_assert_int_eq(rq_client_leave_group(c), 0);
    struct taken co = expect(&f, PROTO_COMMIT_REQ);
    ck_assert_uint_eq(co.m.u.offset_req.offset, 2);
    answer_offset(c, &co, 0, 2, 0, 2);
    advance(&f, c, 0);
    expect(&f, PROTO_LEAVE_GROUP_REQ);
    answer_fetch_error(c, &fe2, RQ_EFENCED);
    advance(&f, c, 10 * MS);   /* fails on a timer that never moves past now */
    ck_assert_uint_eq(count_type(&f, PROTO_CLAIM_REQ), 0);   /* a leaving member claims nothing */
    finish(&f, c);
}
END_TEST

/* A member leaving while a claim is still unanswered waits for it (or its timeout) before its
 * LEAVE goes, without asking for the timer in the past meanwhile (it did: mq seed 3 again). */
START_TEST(a_member_leaving_waits_for_its_claims_quietly) {
    struct fake f;
    struct rq_client *c = make(&f);
    join_one_partition(&f, c);
    ck_assert_int_eq(rq_client_leave_group(c), 0);
    advance(&f, c, 10 * MS);   /* fails on a timer that never moves past now */
    ck_assert_uint_eq(count_type(&f, PROTO_LEAVE_GROUP_REQ), 0);
    advance(&f, c, TIMEOUT);   /* the claim times out: nothing is left to commit */
    expect(&f, PROTO_LEAVE_GROUP_REQ);
    finish(&f, c);
}
END_TEST

/* Leaving with a partition not claimed (its claim was fenced): the LEAVE goes, and while it is
 * under way the unclaimed partition does not keep the timer at "now". */
START_TEST(leave_with_an_unclaimed_partition_does_not_spin) {
    struct fake f;
    struct rq_client *c = make(&f);
    struct rq_group_config g = group_config();
    bootstrap(&f, c);
    ck_assert_int_eq(rq_client_join_group(c, &g), 0);
    struct taken join = expect(&f, PROTO_JOIN_GROUP_REQ);
    const uint32_t parts[] = {0};
    answer_assignment(c, &join, 0, 0, MEMBER, 5, parts, 1);
    struct taken claim = expect_claim(&f, 0, 5, MEMBER, "workers");
    answer_offset(c, &claim, RQ_EFENCED, PROTO_NO_OFFSET, 0, 0);
    struct taken hb = expect(&f, PROTO_HEARTBEAT_REQ); /* fenced: ask the coordinator now */
    ck_assert_uint_eq(f.sent_count, 0);
    ck_assert_int_eq(rq_client_leave_group(c), 0);
    ck_assert_uint_eq(f.sent_count, 0);                   /* the heartbeat is still under way */
    answer_assignment(c, &hb, 0, 0, MEMBER, 5, parts, 1); /* taken as leaving: ignored */
    struct taken lv = expect(&f, PROTO_LEAVE_GROUP_REQ);
    ck_assert_uint_eq(f.sent_count, 0); /* leaving: the partition is not claimed again */
    ck_assert_uint_gt(f.timer, f.now);
    advance(&f, c, 10 * MS);
    ck_assert_uint_eq(f.sent_count, 0);
    answer_status(c, &lv, PROTO_LEAVE_GROUP_RESP, 0);
    ck_assert_uint_eq(f.group_errors, 1);
    ck_assert_int_eq(f.group_error, 0);
    finish(&f, c);
}
END_TEST

/* Leaving while the JOIN is under way: its answer made this client a member at the coordinator,
 * which would hold its partitions for a whole session unless told: the LEAVE goes, with the id. */
START_TEST(leave_during_the_join_tells_the_coordinator) {
    struct fake f;
    struct rq_client *c = make(&f);
    bootstrap(&f, c);
    struct rq_group_config g = group_config();
    ck_assert_int_eq(rq_client_join_group(c, &g), 0);
    struct taken join = expect(&f, PROTO_JOIN_GROUP_REQ);
    ck_assert_int_eq(rq_client_leave_group(c), 0);
    ck_assert_uint_eq(f.sent_count, 0);
    const uint32_t parts[] = {0};
    answer_assignment(c, &join, 0, 0, MEMBER, 5, parts, 1);
    ck_assert_uint_eq(f.assigned, 0); /* leaving: nothing is consumed */
    ck_assert_uint_eq(count_type(&f, PROTO_CLAIM_REQ), 0);
    ck_assert_uint_eq(f.group_errors, 0);
    struct taken lv = expect(&f, PROTO_LEAVE_GROUP_REQ);
    ck_assert_uint_eq(lv.m.u.leave_group_req.member_id, MEMBER);
    answer_status(c, &lv, PROTO_LEAVE_GROUP_RESP, 0);
    ck_assert_uint_eq(f.group_errors, 1);
    ck_assert_int_eq(f.group_error, 0);
    finish(&f, c);
}
END_TEST

/* Invalid configs are refused up front; a second join while a member is RQ_EEXIST; a JOIN refused
 * for good (RQ_EINVAL) is reported through group_error and nothing more is sent. */
START_TEST(join_refused_for_good_and_invalid_configs) {
    struct fake f;
    struct rq_client *c = make(&f);
    bootstrap(&f, c);
    struct rq_group_config bad = group_config();
    bad.mode = PROTO_MODE_PUBSUB;
    bad.member_name = s(""); /* pub/sub needs a member name: its cursor */
    ck_assert_int_eq(rq_client_join_group(c, &bad), RQ_EINVAL);
    bad = group_config();
    bad.session_ms = PROTO_SESSION_MS_MIN - 1;
    ck_assert_int_eq(rq_client_join_group(c, &bad), RQ_EINVAL);
    bad = group_config();
    bad.commit_every_ns = 0;
    ck_assert_int_eq(rq_client_join_group(c, &bad), RQ_EINVAL);
    bad = group_config();
    bad.mode = 3;
    ck_assert_int_eq(rq_client_join_group(c, &bad), RQ_EINVAL);
    bad = group_config();
    bad.strategy = 0;
    ck_assert_int_eq(rq_client_join_group(c, &bad), RQ_EINVAL);
    bad = group_config();
    bad.group = s("a/b");
    ck_assert_int_eq(rq_client_join_group(c, &bad), RQ_EINVAL);
    bad = group_config();
    bad.topic = s("no such/topic");
    ck_assert_int_eq(rq_client_join_group(c, &bad), RQ_EINVAL);
    ck_assert_int_eq(rq_client_leave_group(c), RQ_ENOENT); /* never joined */
    ck_assert_uint_eq(f.sent_count, 0);

    struct rq_group_config g = group_config();
    g.member_name = s(""); /* queue: optional */
    ck_assert_int_eq(rq_client_join_group(c, &g), 0);
    ck_assert_int_eq(rq_client_join_group(c, &g), RQ_EEXIST);
    struct taken join = expect(&f, PROTO_JOIN_GROUP_REQ);
    ck_assert_uint_eq(join.m.u.join_group_req.member_name.size, 0);
    ck_assert_uint_eq(f.sent_count, 0);
    answer_assignment(c, &join, RQ_EINVAL, 0, 0, 0, NULL, 0);
    ck_assert_uint_eq(f.group_errors, 1);
    ck_assert_int_eq(f.group_error, RQ_EINVAL);
    ck_assert_uint_eq(f.assigned, 0);
    advance(&f, c, 10 * HEARTBEAT);
    ck_assert_uint_eq(f.sent_count, 0);
    ck_assert_int_eq(rq_client_leave_group(c), RQ_ENOENT);
    finish(&f, c);
}
END_TEST

/* ---- delayed produce ------------------------------------------------------------------------- */

/* One DELAYED_PRODUCE_REQ to the partition's leader; RQ_ENOTOPIC (a leader whose view lags) is
 * tried again; held: produced() with offset UINT64_MAX. */
START_TEST(delayed_produce_goes_to_the_leader_and_retries_an_unknown_topic) {
    struct fake f;
    struct rq_client *c = make(&f);
    /* The topic is not known yet: try again later. */
    ck_assert_int_eq(
        rq_client_produce_delayed(c, s("orders"), s("k"), s("later"), NULL, 0, 9, 1500, 77),
        RQ_EBUSY);
    ck_assert_int_eq(
        rq_client_produce_delayed(c, s("orders"), s("k"), s("later"), NULL, 0, 9, 0, 77),
        RQ_EINVAL);
    bootstrap(&f, c);
    ck_assert_uint_eq(f.sent_count, 0);
    ck_assert_int_eq(
        rq_client_produce_delayed(c, s("orders"), s("k"), s("later"), NULL, 0, 9, 1500, 77), 0);
    struct taken d = expect(&f, PROTO_DELAYED_PRODUCE_REQ);
    ck_assert_uint_eq(f.sent_count, 0);
    const struct proto_produce_req *p = &d.m.u.produce_req;
    uint32_t partition = p->partition;
    ck_assert_uint_lt(partition, 3);
    ck_assert_uint_eq(d.to, partition + 1);
    ck_assert(bytes_are(p->topic, "orders"));
    ck_assert_uint_eq(p->delay_ms, 1500);
    ck_assert_uint_eq(p->acks, PROTO_ACKS_ALL);
    ck_assert_uint_eq(p->records.count, 1);
    struct proto_record r;
    size_t cursor = 0;
    ck_assert(proto_record_next(&p->records, &cursor, &r));
    ck_assert(bytes_are(r.key, "k"));
    ck_assert(bytes_are(r.value, "later"));
    ck_assert_uint_eq(r.timestamp, 9);

    answer_produce(c, &d, RQ_ENOTOPIC, 0);
    ck_assert_uint_eq(f.produced, 0);
    ck_assert_uint_eq(count_type(&f, PROTO_DELAYED_PRODUCE_REQ), 0); /* after a back-off */
    advance(&f, c, 100 * MS);
    struct taken md;
    if (take(&f, PROTO_METADATA_REQ, ANY_PARTITION, &md)) answer_metadata(c, &md);
    advance(&f, c, 100 * MS);
    struct taken d2 = expect(&f, PROTO_DELAYED_PRODUCE_REQ);
    ck_assert_uint_eq(d2.to, partition + 1);
    ck_assert_uint_eq(d2.m.u.produce_req.partition, partition);
    ck_assert_uint_eq(count_type(&f, PROTO_DELAYED_PRODUCE_REQ), 0);
    answer_produce(c, &d2, 0, 0);
    ck_assert_uint_eq(f.produced, 1);
    ck_assert_uint_eq(f.pr_token, 77);
    ck_assert_uint_eq(f.pr_partition, partition);
    ck_assert_int_eq(f.pr_error, 0);
    ck_assert_uint_eq(f.pr_offset, UINT64_MAX);
    /* A late duplicate of the first answer is not a second report. */
    answer_produce(c, &d, 0, 0);
    ck_assert_uint_eq(f.produced, 1);
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
    Suite *su = suite_create("client_group");
    TCase *tc = tcase_create("client_group");
    tcase_add_test(tc, join_follows_the_hint_and_claims_each_partition_at_its_leader);
    tcase_add_test(tc, pubsub_cursor_and_where_an_uncommitted_partition_starts);
    tcase_add_test(tc, claim_answer_starts_group_fetches_at_the_committed_offset);
    tcase_add_test(tc, positions_are_committed_every_commit_every_ns);
    tcase_add_test(tc, expired_placeholders_move_the_position_but_are_not_delivered);
    tcase_add_test(tc, rebalance_drops_claims_and_resumes_kept_partitions);
    tcase_add_test(tc, fenced_fetch_heartbeats_at_once_and_a_forgotten_member_joins_again);
    tcase_add_test(tc, fenced_without_a_new_generation_claims_again_from_the_committed_offset);
    tcase_add_test(tc, join_retries_an_unknown_topic_then_gives_up);
    tcase_add_test(tc, leave_commits_positions_then_leaves);
    tcase_add_test(tc, a_member_leaving_whose_partition_is_fenced_waits_quietly);
    tcase_add_test(tc, a_member_leaving_waits_for_its_claims_quietly);
    tcase_add_test(tc, leave_with_an_unclaimed_partition_does_not_spin);
    tcase_add_test(tc, leave_during_the_join_tells_the_coordinator);
    tcase_add_test(tc, join_refused_for_good_and_invalid_configs);
    tcase_add_test(tc, delayed_produce_goes_to_the_leader_and_retries_an_unknown_topic);
    suite_add_tcase(su, tc);
    return run_suites(srunner_create(su));
}
