/* Brokers (src/node/broker.c) in the simulator, fault-free, three servers and one probe client
 * that speaks raw frames: brokers register through the controller, a topic is created through
 * the controller's leader (others answer RQ_ENOTLEADER with its id), its partitions' groups start
 * on the replicas the controller placed them on, produce with acks=all is answered with dense
 * offsets, a retried idempotent batch gets its original offset, fetch returns exactly what was
 * produced with the valid range, a fetch past the end waits, a long-poll fetch is answered
 * when a record arrives, a follower serves everything committed before the fetch (ReadIndex),
 * malformed frames get an ERROR frame
 * and the broker goes on; a broker restarted from its disk finds its partitions again. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/rng.h"
#include "meta/controller.h"
#include "node/broker.h"
#include "proto/frame.h"
#include "sim/brokernode.h"
#include "sim/sim.h"
#include "tests/unit/host_server.h"
#include "tests/unit/suite_main.h"

enum { SERVERS = 3, PROBE = SIM_CLIENT_ID_BASE, ANSWERS_MAX = 64, MS = 1000000 };

/* ---- the servers: brokers (sim/brokernode.h), every one a controller node ---- */

static struct sim_broker_setup setup = {.controllers = SERVERS};
static uint32_t servers = SERVERS;   /* of the next start(); one test runs four */
static void *world_init(struct sim *s) {
    (void)s;
    return &setup;
}
static void world_fini(void *w) { (void)w; }

/* ---- the probe: keeps the frames it receives (the latest ANSWERS_MAX) ---- */

struct answer {
    uint32_t from;
    uint8_t version;
    uint8_t type;
    uint32_t correlation;
    uint8_t *payload;
    uint32_t size;
};

struct probe {
    const struct rq_io *io;
    struct answer answers[ANSWERS_MAX];
    uint32_t count;
};

static void *probe_create(const struct rq_io *io, const void *config) {
    (void)config;
    struct probe *p = calloc(1, sizeof *p);
    RQ_ASSERT(p != NULL);
    p->io = io;
    return p;
}
static void probe_destroy(void *n) {
    struct probe *p = n;
    for (uint32_t i = 0; i < p->count; i++) free(p->answers[i].payload);
    free(p);
}
static void probe_nothing(void *n) { (void)n; }
static void probe_message(void *n, uint32_t from, const void *buf, size_t len) {
    struct probe *p = n;
    struct proto_frame f;
    size_t used;
    ck_assert_int_eq(proto_frame_decode(buf, len, PROTO_FRAME_MAX, &f, &used), 0);
    ck_assert_uint_eq(used, len);   /* a broker's answer is one intact frame */
    if (p->count == ANSWERS_MAX) {   /* keep the latest */
        free(p->answers[0].payload);
        memmove(p->answers, p->answers + 1, (ANSWERS_MAX - 1) * sizeof p->answers[0]);
        p->count--;
    }
    struct answer *a = &p->answers[p->count++];
    *a = (struct answer){from, f.version, f.type, f.correlation, malloc(f.payload_size + 1),
                         f.payload_size};
    if (f.payload_size) memcpy(a->payload, f.payload, f.payload_size);
}

static const struct rq_node_ops probe_ops = {
    .name = "probe", .create = probe_create, .destroy = probe_destroy, .on_start = probe_nothing,
    .on_timer = probe_nothing, .on_peer_message = probe_message,
};

static const struct sim_workload workload = {
    .name = "broker-test", .server_ops = &sim_broker_ops, .client_ops = &probe_ops,
    .default_clients = 1, .init = world_init, .fini = world_fini,
};

/* ---- driving it ---- */

static struct sim *sim;
static uint32_t next_correlation = 1;

static struct probe *probe(void) { return sim_node(sim, PROBE); }

static uint8_t request_version = PROTO_VERSION;   /* of the frames the probe sends */

/* Sends a request (a payload of type) to server `to`; returns its correlation id. */
static uint32_t send_req(uint32_t to, uint8_t type, const uint8_t *payload, size_t n) {
    static uint8_t frame[PROTO_FRAME_HEADER + 65536];
    uint32_t corr = next_correlation++;
    ck_assert_uint_le(n, sizeof frame - PROTO_FRAME_HEADER);
    if (n) memcpy(frame + PROTO_FRAME_HEADER, payload, n);
    proto_frame_header_version(frame, request_version, type, corr,
                               n ? frame + PROTO_FRAME_HEADER : NULL, (uint32_t)n);
    probe()->io->send(probe()->io->env, to, frame, PROTO_FRAME_HEADER + n);
    return corr;
}

/* Runs the simulation until the answer to corr arrives (at most 5 simulated seconds); decodes it. */
static struct proto_msg await(uint32_t corr) {
    uint64_t until = sim_now(sim) + 5000ull * MS;
    while (sim_now(sim) < until) {
        struct probe *p = probe();
        for (uint32_t i = 0; i < p->count; i++) {
            if (p->answers[i].correlation != corr) continue;
            struct proto_msg m;
            /* Answered at the request's version (METADATA), else at the oldest. */
            ck_assert_uint_eq(p->answers[i].version, p->answers[i].type == PROTO_METADATA_RESP
                                                         ? request_version
                                                         : PROTO_VERSION_MIN);
            ck_assert_int_eq(proto_decode_version(p->answers[i].version, p->answers[i].type,
                                                  p->answers[i].payload, p->answers[i].size, &m),
                             0);
            return m;
        }
        sim_run_until(sim, sim_now(sim) + 5 * MS);
    }
    ck_abort_msg("no answer to request %u", corr);
    return (struct proto_msg){0};
}

static struct proto_msg call(uint32_t to, uint8_t type, const uint8_t *payload, size_t n) {
    return await(send_req(to, type, payload, n));
}

static uint32_t controller_leader(void) {
    for (int tries = 0; tries < 100; tries++) {
        struct proto_msg m = call(1, PROTO_METADATA_REQ, (const uint8_t *)"\0", 1);
        ck_assert_uint_eq(m.type, PROTO_METADATA_RESP);
        if (m.u.metadata_resp.controller != 0 && m.u.metadata_resp.broker_count == servers)
            return m.u.metadata_resp.controller;
        sim_run_until(sim, sim_now(sim) + 100 * MS);
    }
    ck_abort_msg("no controller leader, or brokers not registered");
    return 0;
}

static const struct proto_bytes TOPIC = {(const uint8_t *)"orders", 6};

static int create_topic_as(uint32_t to, const struct proto_create_topic_req *req, uint32_t *hint) {
    uint8_t buf[256];
    struct proto_msg m = call(to, PROTO_CREATE_TOPIC_REQ, buf,
                              proto_encode_create_topic_req(buf, sizeof buf, req));
    ck_assert_uint_eq(m.type, PROTO_CREATE_TOPIC_RESP);
    *hint = m.u.status_resp.leader_hint;
    return m.u.status_resp.error;
}

static int create_topic(uint32_t to, uint32_t partitions, uint32_t *hint) {
    struct proto_create_topic_req req = {.name = TOPIC, .partitions = partitions,
                                         .replication = 3, .max_message_bytes = 100};
    return create_topic_as(to, &req, hint);
}

/* The leader of partition p as the metadata of server 1 says (waits for one). */
static uint32_t partition_leader(uint32_t p) {
    for (int tries = 0; tries < 100; tries++) {
        uint8_t buf[256];
        size_t n = proto_encode_metadata_req(buf, sizeof buf, &TOPIC, 1);
        struct proto_msg m = call(1, PROTO_METADATA_REQ, buf, n);
        size_t cur = 0, pc = 0;
        struct proto_topic t;
        struct proto_partition part;
        ck_assert(proto_topic_next(&m.u.metadata_resp, &cur, &t));
        while (t.error == 0 && proto_partition_next(&t, &pc, &part))
            if (part.index == p && part.leader != 0) return part.leader;
        sim_run_until(sim, sim_now(sim) + 100 * MS);
    }
    ck_abort_msg("partition %u has no leader", p);
    return 0;
}

static uint32_t send_produce(uint32_t to, uint32_t p, uint8_t acks, uint64_t producer,
                             uint64_t seq, const char *const *values, uint32_t count) {
    struct proto_record_in recs[8];
    ck_assert_uint_le(count, 8);
    for (uint32_t i = 0; i < count; i++)
        recs[i] = (struct proto_record_in){
            .timestamp = 7, .value = {(const uint8_t *)values[i], (uint32_t)strlen(values[i])}};
    struct proto_produce_req req = {.topic = TOPIC, .partition = p, .acks = acks,
                                    .producer_id = producer, .base_sequence = seq,
                                    .records = {.count = count}};
    uint8_t buf[4096];
    return send_req(to, PROTO_PRODUCE_REQ, buf, proto_encode_produce_req(buf, sizeof buf, &req, recs));
}

static struct proto_msg produce_once(uint32_t to, uint32_t p, uint64_t producer, uint64_t seq,
                                     const char *const *values, uint32_t count) {
    struct proto_record_in recs[8];
    ck_assert_uint_le(count, 8);
    for (uint32_t i = 0; i < count; i++)
        recs[i] = (struct proto_record_in){
            .timestamp = 7, .value = {(const uint8_t *)values[i], (uint32_t)strlen(values[i])}};
    struct proto_produce_req req = {.topic = TOPIC, .partition = p, .acks = PROTO_ACKS_ALL,
                                    .producer_id = producer, .base_sequence = seq,
                                    .records = {.count = count}};
    uint8_t buf[4096];
    struct proto_msg m = call(to, PROTO_PRODUCE_REQ, buf,
                              proto_encode_produce_req(buf, sizeof buf, &req, recs));
    ck_assert_uint_eq(m.type, PROTO_PRODUCE_RESP);
    return m;
}

/* Produces as a client would: following leader hints, waiting while the partition's replica is
 * not there yet. Returns the first other answer. */
static struct proto_msg produce(uint32_t to, uint32_t p, uint64_t producer, uint64_t seq,
                                const char *const *values, uint32_t count) {
    for (int tries = 0; tries < 50; tries++) {
        struct proto_msg m = produce_once(to, p, producer, seq, values, count);
        int err = m.u.produce_resp.error;
        if (err != RQ_ENOTLEADER && err != RQ_ENOTOPIC && err != RQ_ECLOSED) return m;
        if (err == RQ_ENOTLEADER && m.u.produce_resp.leader_hint != 0) {
            to = m.u.produce_resp.leader_hint;
            continue;
        }
        sim_run_until(sim, sim_now(sim) + 100 * MS);
    }
    ck_abort_msg("produce never reached the leader");
    return (struct proto_msg){0};
}

static uint32_t send_fetch(uint32_t to, uint32_t p, uint64_t offset, uint32_t wait_ms,
                           uint8_t from_follower) {
    struct proto_fetch_req req = {.topic = TOPIC, .partition = p, .offset = offset,
                                  .max_records = 100, .max_bytes = 1 << 20,
                                  .max_wait_ms = wait_ms, .from_follower = from_follower};
    uint8_t buf[256];
    return send_req(to, PROTO_FETCH_REQ, buf, proto_encode_fetch_req(buf, sizeof buf, &req));
}

/* The server whose replica of p serves fetches as leader now (0: none). */
static uint32_t actual_leader(uint32_t p) {
    for (uint32_t id = 1; id <= SERVERS; id++)
        if (await(send_fetch(id, p, 0, 0, 0)).u.fetch_resp.error == 0) return id;
    return 0;
}

/* The values of a fetch answer's records, checked to start at `first` and be dense. */
static uint32_t fetched(const struct proto_msg *m, uint64_t first, const char **values) {
    ck_assert_uint_eq(m->type, PROTO_FETCH_RESP);
    ck_assert_int_eq(m->u.fetch_resp.error, 0);
    size_t cur = 0;
    struct proto_record r;
    uint32_t n = 0;
    while (proto_record_next(&m->u.fetch_resp.records, &cur, &r)) {
        ck_assert_uint_eq(r.offset, first + n);
        ck_assert_uint_eq(r.timestamp, 7);
        char *copy = malloc(r.value.size + 1);
        memcpy(copy, r.value.data, r.value.size);
        copy[r.value.size] = '\0';
        values[n++] = copy;
    }
    return n;
}

static void start(uint64_t seed) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &workload, servers, seed, 600000ull * MS);
    cfg.clients = 1;
    sim = sim_create(&cfg);
    sim_start(sim);
    for (int i = 0; i < 1000 && sim_node(sim, PROBE) == NULL; i++) sim_run_until(sim, sim_now(sim) + MS);
    ck_assert_ptr_nonnull(sim_node(sim, PROBE));
    next_correlation = 1;
}

static void free_values(const char **v, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) free((char *)v[i]);
}

START_TEST(topic_produce_fetch) {
    start(11);
    uint32_t ctl = controller_leader();
    uint32_t other = ctl % SERVERS + 1, hint = 0;
    ck_assert_int_eq(create_topic(other, 2, &hint), RQ_ENOTLEADER);
    ck_assert_uint_eq(hint, ctl);
    ck_assert_int_eq(create_topic(ctl, 2, &hint), 0);
    ck_assert_int_eq(create_topic(ctl, 2, &hint), RQ_ETOPICEXISTS);
    uint32_t leader = partition_leader(0);

    /* Produce: dense offsets; a follower refuses with the leader as hint. */
    const char *first[] = {"a", "bb", "ccc"}, *second[] = {"dddd"};
    struct proto_msg m = produce(leader, 0, 0, 0, first, 3);
    ck_assert_int_eq(m.u.produce_resp.error, 0);
    ck_assert_uint_eq(m.u.produce_resp.base_offset, 0);
    m = produce(leader, 0, 0, 0, second, 1);
    ck_assert_uint_eq(m.u.produce_resp.base_offset, 3);
    leader = actual_leader(0);
    ck_assert_uint_ne(leader, 0);
    m = produce_once(leader % SERVERS + 1, 0, 0, 0, second, 1);
    ck_assert_int_eq(m.u.produce_resp.error, RQ_ENOTLEADER);
    ck_assert_uint_eq(m.u.produce_resp.leader_hint, leader);
    /* acks=0 too: its refusal is answered (so the producer learns where the leader is). */
    m = await(send_produce(leader % SERVERS + 1, 0, PROTO_ACKS_NONE, 0, 0, second, 1));
    ck_assert_int_eq(m.u.produce_resp.error, RQ_ENOTLEADER);
    ck_assert_uint_eq(m.u.produce_resp.leader_hint, leader);
    const char *const big[] = {"this value is longer than the topic's max_message_bytes of one hundred "
                         "bytes, so the broker refuses it...."};
    ck_assert_int_eq(produce(leader, 0, 0, 0, big, 1).u.produce_resp.error, RQ_ETOOBIG);

    /* Fetch: everything from 1; nothing at the end; out of range above it. */
    const char *v[8];
    m = await(send_fetch(leader, 0, 1, 0, 0));
    ck_assert_uint_eq(fetched(&m, 1, v), 3);
    ck_assert_str_eq(v[0], "bb");
    ck_assert_str_eq(v[2], "dddd");
    free_values(v, 3);
    ck_assert_uint_eq(m.u.fetch_resp.high_watermark, 4);
    m = await(send_fetch(leader, 0, 4, 0, 0));
    ck_assert_uint_eq(fetched(&m, 4, v), 0);
    m = await(send_fetch(leader, 0, 5, 0, 0));   /* past the end: waited for, not refused */
    ck_assert_uint_eq(fetched(&m, 5, v), 0);
    ck_assert_uint_eq(m.u.fetch_resp.log_start, 0);
    ck_assert_uint_eq(m.u.fetch_resp.high_watermark, 4);

    /* A follower serves committed records when asked to, at once as fresh as the leader: it
     * first learns the leader's commit index (ReadIndex) and applies that far. Without the flag
     * it sends the consumer to the leader. */
    uint32_t follower = leader % SERVERS + 1;
    const char *fresh[] = {"f"};
    ck_assert_int_eq(produce_once(leader, 0, 0, 0, fresh, 1).u.produce_resp.error, 0);
    m = await(send_fetch(follower, 0, 0, 0, 1));
    ck_assert_uint_eq(fetched(&m, 0, v), 5);
    ck_assert_str_eq(v[4], "f");
    free_values(v, 5);
    m = await(send_fetch(follower, 0, 0, 0, 0));
    ck_assert_int_eq(m.u.fetch_resp.error, RQ_ENOTLEADER);
    ck_assert_uint_eq(m.u.fetch_resp.leader_hint, leader);
    /* As it is (a lag probe): at once, what it has applied, never more than the leader. */
    m = await(send_fetch(follower, 0, 1u << 30, 0, PROTO_FOLLOWER_AS_IS));
    ck_assert_int_eq(m.u.fetch_resp.error, 0);
    ck_assert_uint_eq(m.u.fetch_resp.records.count, 0);
    ck_assert_uint_le(m.u.fetch_resp.high_watermark, 5);

    /* Long-poll: a fetch at the end waits, and is answered when a record arrives. */
    uint32_t waiting = send_fetch(leader, 0, 5, 3000, 0);
    sim_run_until(sim, sim_now(sim) + 300 * MS);
    for (uint32_t i = 0; i < probe()->count; i++) ck_assert_uint_ne(probe()->answers[i].correlation, waiting);
    const char *third[] = {"e"};
    ck_assert_int_eq(produce(leader, 0, 0, 0, third, 1).u.produce_resp.error, 0);
    m = await(waiting);
    ck_assert_uint_eq(fetched(&m, 5, v), 1);
    ck_assert_str_eq(v[0], "e");
    free_values(v, 1);
    sim_destroy(sim);
}
END_TEST

START_TEST(idempotent_producer_gets_original_offsets) {
    start(12);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 1, &hint), 0);
    struct proto_msg m = call(ctl, PROTO_INIT_PRODUCER_REQ, NULL, 0);
    ck_assert_uint_eq(m.type, PROTO_INIT_PRODUCER_RESP);
    uint64_t pid = m.u.init_producer_resp.producer_id;
    ck_assert_uint_ge(pid, 1);
    uint32_t leader = partition_leader(0);
    const char *a[] = {"x", "y"}, *b[] = {"z"};
    m = produce(leader, 0, pid, 0, a, 2);
    ck_assert_int_eq(m.u.produce_resp.error, 0);
    ck_assert_uint_eq(m.u.produce_resp.base_offset, 0);
    leader = actual_leader(0);
    m = produce(leader, 0, pid, 2, b, 1);
    ck_assert_int_eq(m.u.produce_resp.error, 0);
    ck_assert_uint_eq(m.u.produce_resp.base_offset, 2);
    m = produce(leader, 0, pid, 0, a, 2);   /* a retry of the first batch */
    ck_assert_int_eq(m.u.produce_resp.error, 0);
    ck_assert_uint_eq(m.u.produce_resp.base_offset, 0);
    ck_assert_int_eq(produce(leader, 0, pid, 9, b, 1).u.produce_resp.error, RQ_ESEQUENCE);
    const char *v[8];
    m = await(send_fetch(leader, 0, 0, 0, 0));
    ck_assert_uint_eq(fetched(&m, 0, v), 3);   /* no duplicate */
    free_values(v, 3);
    sim_destroy(sim);
}
END_TEST

START_TEST(malformed_requests_get_errors) {
    start(13);
    uint32_t ctl = controller_leader();
    /* A payload that does not decode, an unknown type, a frame cut short, a client sending a
     * server's message: each an ERROR frame; the broker then still answers. */
    struct proto_msg m = call(ctl, PROTO_FETCH_REQ, (const uint8_t *)"\x01", 1);
    ck_assert_uint_eq(m.type, PROTO_ERROR);
    ck_assert_int_eq(m.u.error.error, RQ_ETRUNC);
    m = call(ctl, PROTO_FORWARD, (const uint8_t *)"\x02\x01", 2);
    ck_assert_uint_eq(m.type, PROTO_ERROR);
    ck_assert_int_eq(m.u.error.error, RQ_ETYPE);
    uint8_t frame[64];
    size_t n = proto_frame_encode(frame, sizeof frame, PROTO_METADATA_REQ, 99, "\0", 1);
    frame[PROTO_FRAME_HEADER - 2] = 77;   /* the type, after the CRC was computed */
    probe()->io->send(probe()->io->env, ctl, frame, n - 1);
    sim_run_until(sim, sim_now(sim) + 50 * MS);
    m = call(ctl, PROTO_METADATA_REQ, (const uint8_t *)"\0", 1);
    ck_assert_uint_eq(m.type, PROTO_METADATA_RESP);
    ck_assert_uint_eq(m.u.metadata_resp.broker_count, SERVERS);
    sim_destroy(sim);
}
END_TEST

/* Garbage from a client — random bytes, and intact frames of every type with random payloads,
 * some of them well-formed requests — never stops a broker: each is answered or dropped, and the
 * broker then still serves metadata, produce and fetch. */
START_TEST(garbage_never_stops_a_broker) {
    start(15);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 1, &hint), 0);
    const char *first[] = {"before"};
    ck_assert_int_eq(produce(ctl, 0, 0, 0, first, 1).u.produce_resp.error, 0);
    struct rq_rng rng;
    rq_rng_seed(&rng, 15);
    static uint8_t buf[4096], frame[4096 + PROTO_FRAME_HEADER];
    for (int i = 0; i < 3000; i++) {
        size_t n = (size_t)rq_rng_below(&rng, sizeof buf);
        for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)rq_rng_next(&rng);
        /* A valid topic name at the front makes many payloads reach past the name checks. */
        if (n > 8 && rq_rng_below(&rng, 2)) memcpy(buf, "\x06orders", 7);
        uint32_t to = (uint32_t)rq_rng_range(&rng, 1, SERVERS);
        size_t len = n;
        const uint8_t *msg = buf;
        if (rq_rng_below(&rng, 4) != 0) {   /* an intact frame of a random type */
            uint8_t type = (uint8_t)rq_rng_range(&rng, 0, PROTO_TYPE_MAX + 1);
            len = proto_frame_encode(frame, sizeof frame, type ? type : 1, (uint32_t)i, buf,
                                     (uint32_t)n);
            msg = frame;
        }
        probe()->io->send(probe()->io->env, to, msg, len);
        if (i % 100 == 0) sim_run_until(sim, sim_now(sim) + 10 * MS);
    }
    sim_run_until(sim, sim_now(sim) + 2000 * MS);
    uint64_t bad = 0, requests = 0;
    for (uint32_t id = 1; id <= SERVERS; id++) {
        struct broker_stats st;
        broker_stats_get(sim_node(sim, id), &st);
        bad += st.bad_requests;
        requests += st.requests;
    }
    ck_assert_uint_gt(bad, 1000);   /* the garbage was taken, and refused */
    ck_assert_uint_gt(requests, 2000);
    ck_assert_uint_eq(controller_leader(), controller_leader());   /* still answering */
    const char *after[] = {"after"};
    struct proto_msg m = produce(partition_leader(0), 0, 0, 0, after, 1);
    ck_assert_int_eq(m.u.produce_resp.error, 0);
    uint64_t at = m.u.produce_resp.base_offset;
    const char *v[8];
    m = await(send_fetch(actual_leader(0), 0, at, 0, 0));
    ck_assert_uint_eq(fetched(&m, at, v), 1);
    ck_assert_str_eq(v[0], "after");
    free_values(v, 1);
    sim_destroy(sim);
}
END_TEST

static int answered(uint32_t corr) {
    for (uint32_t i = 0; i < probe()->count; i++)
        if (probe()->answers[i].correlation == corr) return 1;
    return 0;
}

/* acks=1 is answered once the leader's own log holds the batch durably, with the offset every
 * replica will give it; acks=all waits for a majority. With both followers down, only the first
 * is answered; once they are back, the second is too, and both records are there. */
START_TEST(acks_one_is_answered_at_the_leaders_durable_append) {
    start(16);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 1, &hint), 0);
    const char *warm[] = {"w0", "w1"};
    ck_assert_int_eq(produce(partition_leader(0), 0, 0, 0, warm, 2).u.produce_resp.error, 0);
    uint32_t leader = actual_leader(0);
    for (uint32_t id = 1; id <= SERVERS; id++)
        if (id != leader) sim_crash(sim, id, 0);
    const char *one[] = {"acks-1"}, *all[] = {"acks-all"};
    uint32_t c1 = send_produce(leader, 0, PROTO_ACKS_LEADER, 0, 0, one, 1);
    struct proto_msg m = await(c1);
    ck_assert_int_eq(m.u.produce_resp.error, 0);
    ck_assert_uint_eq(m.u.produce_resp.base_offset, 2);
    uint32_t call_ = send_produce(leader, 0, PROTO_ACKS_ALL, 0, 0, all, 1);
    sim_run_until(sim, sim_now(sim) + 1000 * MS);
    ck_assert(!answered(call_));
    for (uint32_t id = 1; id <= SERVERS; id++)
        if (id != leader) sim_restart(sim, id);
    m = await(call_);
    ck_assert_int_eq(m.u.produce_resp.error, 0);
    ck_assert_uint_eq(m.u.produce_resp.base_offset, 3);
    const char *v[8];
    m = await(send_fetch(leader, 0, 2, 0, 0));
    ck_assert_uint_eq(fetched(&m, 2, v), 2);
    ck_assert_str_eq(v[0], "acks-1");
    ck_assert_str_eq(v[1], "acks-all");
    free_values(v, 2);
    sim_destroy(sim);
}
END_TEST

/* A deleted topic's groups give their memory back: every replica snapshots what it applied and
 * its Raft log holds no entries afterwards (the groups keep running). */
START_TEST(a_deleted_topics_groups_keep_no_log_in_memory) {
    start(17);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 1, &hint), 0);
    const char *v[] = {"a", "b", "c", "d"};
    ck_assert_int_eq(produce(partition_leader(0), 0, 0, 0, v, 4).u.produce_resp.error, 0);
    const struct controller_topic *t =
        controller_topic(broker_controller(sim_node(sim, ctl)), TOPIC.data, TOPIC.size);
    ck_assert_ptr_nonnull(t);
    uint32_t group = t->partitions[0].group;
    for (uint32_t id = 1; id <= SERVERS; id++) { /* before: entries in memory */
        const struct raft *r = host_raft(broker_host(sim_node(sim, id)), group);
        ck_assert_ptr_nonnull(r);
        ck_assert_uint_le(raft_first_index(r), raft_last_index(r));
    }
    uint8_t buf[128];
    struct proto_delete_topic_req del = {.name = TOPIC};
    struct proto_msg m = call(ctl, PROTO_DELETE_TOPIC_REQ, buf,
                              proto_encode_delete_topic_req(buf, sizeof buf, &del));
    ck_assert_uint_eq(m.type, PROTO_DELETE_TOPIC_RESP);
    ck_assert_int_eq(m.u.status_resp.error, 0);
    sim_run_until(sim, sim_now(sim) + 2000 * MS);
    for (uint32_t id = 1; id <= SERVERS; id++) {
        const struct raft *r = host_raft(broker_host(sim_node(sim, id)), group);
        ck_assert_ptr_nonnull(r); /* still running */
        ck_assert_uint_eq(raft_first_index(r), raft_last_index(r) + 1);
    }
    sim_destroy(sim);
}
END_TEST

/* Reads all of partition 0 from `from` at server `to`, one fetch after another (at most 200
 * records); returns how many, checking the values are "r<offset>". */
static uint32_t read_all_as(uint32_t to, uint64_t from, uint64_t end, uint8_t from_follower) {
    uint64_t next = from;
    for (int tries = 0; tries < 200 && next < end; tries++) {
        struct proto_msg m = await(send_fetch(to, 0, next, 0, from_follower));
        if (m.u.fetch_resp.error == RQ_EBUSY || m.u.fetch_resp.error == RQ_ECLOSED) {
            sim_run_until(sim, sim_now(sim) + 50 * MS);
            continue;
        }
        ck_assert_int_eq(m.u.fetch_resp.error, 0);
        size_t cur = 0;
        struct proto_record r;
        while (proto_record_next(&m.u.fetch_resp.records, &cur, &r)) {
            char want[16];
            snprintf(want, sizeof want, "r%llu", (unsigned long long)r.offset);
            ck_assert_uint_eq(r.offset, next);
            ck_assert_uint_eq(r.value.size, strlen(want));
            ck_assert_mem_eq(r.value.data, want, r.value.size);
            next++;
        }
    }
    return (uint32_t)(next - from);
}

static uint32_t read_all(uint32_t to, uint64_t from, uint64_t end) {
    return read_all_as(to, from, end, 0);
}

/* With a snapshot every 8 entries, Raft keeps only the last few entries in memory: older records
 * are read back from the store (the entries say where their records are), also after every
 * broker restarted from its snapshot and found its offsets again in its stored log. */
START_TEST(old_records_are_read_back_from_the_store) {
    setup.snapshot_entries = 8;
    setup.snapshot_trailing = 0;
    start(17);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 1, &hint), 0);
    uint32_t leader = partition_leader(0);
    for (uint32_t i = 0; i < 60; i++) {
        char value[16];
        snprintf(value, sizeof value, "r%u", i);
        const char *one[] = {value};
        struct proto_msg m = produce(leader, 0, 0, 0, one, 1);
        ck_assert_int_eq(m.u.produce_resp.error, 0);
        ck_assert_uint_eq(m.u.produce_resp.base_offset, i);
    }
    leader = actual_leader(0);
    ck_assert_uint_eq(read_all(leader, 0, 60), 60);
    struct broker_stats st;
    broker_stats_get(sim_node(sim, leader), &st);
    ck_assert_uint_gt(st.fetch_loads, 0);
    for (uint32_t id = 1; id <= SERVERS; id++) sim_crash_restart(sim, id, 1, 50 * MS);
    sim_run_until(sim, sim_now(sim) + 2000 * MS);
    leader = partition_leader(0);
    for (int tries = 0; tries < 50 && actual_leader(0) == 0; tries++)
        sim_run_until(sim, sim_now(sim) + 100 * MS);
    leader = actual_leader(0);
    ck_assert_uint_eq(read_all(leader, 0, 60), 60);
    uint64_t scans = 0;
    for (uint32_t id = 1; id <= SERVERS; id++) {
        broker_stats_get(sim_node(sim, id), &st);
        scans += st.scans;
    }
    ck_assert_uint_gt(scans, 0);
    setup.snapshot_entries = 0;
    sim_destroy(sim);
}
END_TEST

/* Entries every server's partition groups sent from what the store read back (raft load.c). */
static uint64_t loaded_entries_sent(void) {
    uint64_t sum = 0;
    for (uint32_t id = 1; id <= SERVERS; id++) {
        for (uint32_t g = CONTROLLER_GROUP_FIRST; g < CONTROLLER_GROUP_LIMIT; g++) {
            const struct raft *r = host_raft(broker_host(sim_node(sim, id)), g);
            struct raft_stats st;
            if (r == NULL) continue;
            raft_stats_get(r, &st);
            sum += st.loaded_entries_sent;
        }
    }
    return sum;
}

/* A follower down while 60 records commit (a snapshot every 8 entries) catches up from the
 * leader's stored log, not its snapshot; it then serves every record as a follower, also after
 * its own restart (found again by its index scan). */
START_TEST(a_follower_behind_catches_up_from_the_store_and_serves_it) {
    setup.snapshot_entries = 8;
    setup.snapshot_trailing = 0;
    start(23);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 1, &hint), 0);
    uint32_t leader = partition_leader(0);
    uint32_t behind = leader % SERVERS + 1;
    if (behind == ctl) behind = behind % SERVERS + 1;
    if (behind == leader) behind = behind % SERVERS + 1;
    sim_crash(sim, behind, 0);
    for (uint32_t i = 0; i < 60; i++) {
        char value[16];
        snprintf(value, sizeof value, "r%u", i);
        const char *one[] = {value};
        leader = partition_leader(0);
        struct proto_msg m = produce(leader, 0, 0, 0, one, 1);
        ck_assert_int_eq(m.u.produce_resp.error, 0);
        ck_assert_uint_eq(m.u.produce_resp.base_offset, i);
    }
    sim_restart(sim, behind);
    sim_run_until(sim, sim_now(sim) + 3000ull * MS);
    ck_assert_uint_gt(loaded_entries_sent(), 0);
    ck_assert_uint_eq(read_all_as(behind, 0, 60, 1), 60);
    sim_crash_restart(sim, behind, 1, 50 * MS);
    sim_run_until(sim, sim_now(sim) + 3000ull * MS);
    ck_assert_uint_eq(read_all_as(behind, 0, 60, 1), 60);
    setup.snapshot_entries = 0;
    sim_destroy(sim);
}
END_TEST

/* ---- retention ---- */

enum { BIG = 1000 };   /* a record value's bytes in the retention tests */

/* Produces record i (value "r<i>" padded with dots to BIG bytes) to partition 0. */
static void produce_big(uint32_t i) {
    static char value[BIG + 1];
    memset(value, '.', BIG);
    value[BIG] = '\0';
    int n = snprintf(value, sizeof value, "r%u", i);
    value[n] = '.';
    const char *one[] = {value};
    struct proto_msg m = produce(partition_leader(0), 0, 0, 0, one, 1);
    ck_assert_int_eq(m.u.produce_resp.error, 0);
    ck_assert_uint_eq(m.u.produce_resp.base_offset, i);
}

/* A fetch of partition 0 at offset from `to` that is not busy (retried a while). */
static struct proto_msg fetch_settled(uint32_t to, uint64_t offset, uint8_t from_follower) {
    struct proto_msg m;
    for (int tries = 0; tries < 100; tries++) {
        m = await(send_fetch(to, 0, offset, 0, from_follower));
        int err = m.u.fetch_resp.error;
        if (err != RQ_EBUSY && err != RQ_ECLOSED && err != RQ_ENOTLEADER) return m;
        sim_run_until(sim, sim_now(sim) + 50 * MS);
    }
    ck_abort_msg("fetch at %llu from n%u stays busy", (unsigned long long)offset, to);
    return m;
}

/* Reads partition 0 from `from` to `end` at server `to`: every record is record i. */
static void read_big(uint32_t to, uint64_t from, uint64_t end, uint8_t from_follower) {
    for (uint64_t next = from; next < end;) {
        struct proto_msg m = fetch_settled(to, next, from_follower);
        ck_assert_int_eq(m.u.fetch_resp.error, 0);
        size_t cur = 0;
        struct proto_record r;
        while (proto_record_next(&m.u.fetch_resp.records, &cur, &r)) {
            char want[16];
            int n = snprintf(want, sizeof want, "r%llu.", (unsigned long long)r.offset);
            ck_assert_uint_eq(r.offset, next);
            ck_assert_uint_eq(r.value.size, BIG);
            ck_assert_mem_eq(r.value.data, want, (size_t)n);
            next++;
        }
    }
}

static uint32_t group_of_partition0(uint32_t server) {
    const struct controller_topic *t =
        controller_topic(broker_controller(sim_node(sim, server)), TOPIC.data, TOPIC.size);
    ck_assert_ptr_nonnull(t);
    return t->partitions[0].group;
}

/* The log start every replica reports, checked equal; records below it get RQ_ERANGE. */
static uint64_t log_start_everywhere(uint64_t end) {
    uint64_t start = UINT64_MAX;
    for (uint32_t id = 1; id <= SERVERS; id++) {
        struct proto_msg m = fetch_settled(id, 0, 1);
        if (start == UINT64_MAX) start = m.u.fetch_resp.log_start;
        ck_assert_int_eq(m.u.fetch_resp.error, start > 0 ? RQ_ERANGE : 0);
        ck_assert_uint_eq(m.u.fetch_resp.log_start, start);
        ck_assert_uint_eq(m.u.fetch_resp.high_watermark, end);
    }
    return start;
}

/* A size limit of 64 KiB: the leader moves the log start so that the newest 64 KiB of records
 * stay, every replica agrees, the stores delete whole segments below it (128 KiB segments), reads
 * below get RQ_ERANGE with the valid range and reads above get every record, also after every
 * broker restarted (its index found again from what its store kept). A follower that was down
 * meanwhile catches up from the leader's snapshot (the entries it needed are deleted) and, once
 * the log start passes what it lacks, serves every record. */
START_TEST(retention_by_size_deletes_the_oldest_records_everywhere) {
    setup.snapshot_entries = 8;
    setup.snapshot_trailing = 0;
    setup.segment_bytes = 128 << 10;
    start(41);
    uint32_t ctl = controller_leader(), hint;
    struct proto_create_topic_req req = {.name = TOPIC, .partitions = 1, .replication = 3,
                                         .retention_bytes = 64 << 10, .max_message_bytes = 2048};
    ck_assert_int_eq(create_topic_as(ctl, &req, &hint), 0);
    for (uint32_t i = 0; i < 400; i++) produce_big(i);
    sim_run_until(sim, sim_now(sim) + 1000 * MS);
    uint64_t start = log_start_everywhere(400);
    /* Each record is a little more than BIG bytes as stored: 64 KiB hold 60 to 65 of them. */
    ck_assert_uint_ge(400 - start, 55);
    ck_assert_uint_le(400 - start, 66);
    printf("broker: retention by size: log start %llu of 400\n", (unsigned long long)start);
    read_big(partition_leader(0), start, 400, 0);
    uint32_t g = group_of_partition0(1);
    for (uint32_t id = 1; id <= SERVERS; id++)
        ck_assert_uint_gt(host_stored_first(broker_host(sim_node(sim, id)), g), 100);
    for (uint32_t id = 1; id <= SERVERS; id++) sim_crash_restart(sim, id, 1, 50 * MS);
    sim_run_until(sim, sim_now(sim) + 2000 * MS);
    ck_assert_uint_eq(log_start_everywhere(400), start);
    for (uint32_t id = 1; id <= SERVERS; id++) read_big(id, start, 400, 1);
    /* A follower down while 200 more records come (not server 1: partition_leader asks it). */
    uint32_t lead = partition_leader(0), behind = lead % SERVERS + 1;
    if (behind == 1) behind = behind % SERVERS + 1;
    if (behind == lead) behind = behind % SERVERS + 1;
    sim_crash(sim, behind, 0);
    for (uint32_t i = 400; i < 600; i++) produce_big(i);
    sim_restart(sim, behind);
    sim_run_until(sim, sim_now(sim) + 3000ull * MS);
    for (uint32_t i = 600; i < 700; i++) produce_big(i);
    sim_run_until(sim, sim_now(sim) + 1000 * MS);
    start = log_start_everywhere(700);
    ck_assert_uint_ge(start, 600);
    read_big(behind, start, 700, 1);
    struct raft_stats rs;
    raft_stats_get(host_raft(broker_host(sim_node(sim, behind)), g), &rs);
    ck_assert_uint_gt(rs.snapshots_installed, 0);
    setup.snapshot_entries = 0;
    setup.segment_bytes = 0;
    sim_destroy(sim);
}
END_TEST

/* A time limit of 300 ms: a while after the last record, every record is deleted (the log start
 * is the end) and the next record is served from there. */
START_TEST(retention_by_time_deletes_old_records) {
    start(43);
    uint32_t ctl = controller_leader(), hint;
    struct proto_create_topic_req req = {.name = TOPIC, .partitions = 1, .replication = 3,
                                         .retention_ms = 300, .max_message_bytes = 2048};
    ck_assert_int_eq(create_topic_as(ctl, &req, &hint), 0);
    for (uint32_t i = 0; i < 10; i++) produce_big(i);
    sim_run_until(sim, sim_now(sim) + 2000 * MS);
    ck_assert_uint_eq(log_start_everywhere(10), 10);
    produce_big(10);
    read_big(partition_leader(0), 10, 11, 0);
    sim_destroy(sim);
}
END_TEST

/* ---- rebalancing ---- */

/* Partition 0's replica set as server `from`'s metadata says, and its leader. */
static uint32_t replicas_of_0(uint32_t from, uint32_t *ids, uint32_t *leader) {
    uint8_t buf[256];
    size_t n = proto_encode_metadata_req(buf, sizeof buf, &TOPIC, 1);
    struct proto_msg m = call(from, PROTO_METADATA_REQ, buf, n);
    size_t cur = 0, pc = 0;
    struct proto_topic t;
    struct proto_partition part;
    ck_assert(proto_topic_next(&m.u.metadata_resp, &cur, &t));
    ck_assert(proto_partition_next(&t, &pc, &part));
    memcpy(ids, part.replicas, part.replica_count * sizeof ids[0]);
    *leader = part.leader;
    return part.replica_count;
}

static int decommission(uint32_t to, uint32_t broker) {
    struct proto_decommission_req req = {.broker = broker};
    uint8_t buf[64];
    struct proto_msg m = call(to, PROTO_DECOMMISSION_REQ, buf,
                              proto_encode_decommission_req(buf, sizeof buf, &req));
    ck_assert_uint_eq(m.type, PROTO_DECOMMISSION_RESP);
    return m.u.status_resp.error;
}

/* The brokers server `from` lists in a metadata answer at `version`: listed[id] is 0 (not
 * listed), 1 (a member) or 2 (marked decommissioned); returns how many it lists. */
static uint32_t listed_brokers(uint32_t from, uint8_t version, uint32_t listed[5]) {
    request_version = version;
    struct proto_msg m = call(from, PROTO_METADATA_REQ, (const uint8_t *)"\0", 1);
    request_version = PROTO_VERSION;
    ck_assert_uint_eq(m.type, PROTO_METADATA_RESP);
    ck_assert_uint_eq(m.u.metadata_resp.version, version);
    memset(listed, 0, 5 * sizeof listed[0]);
    size_t cur = 0;
    struct proto_broker b;
    while (proto_broker_next(&m.u.metadata_resp, &cur, &b)) {
        ck_assert_uint_ge(b.id, 1);
        ck_assert_uint_le(b.id, 4);
        listed[b.id] = b.flags & PROTO_BROKER_DECOMMISSIONED ? 2 : 1;
    }
    return m.u.metadata_resp.broker_count;
}

/* Four brokers, a partition on three of them: decommissioning its preferred leader moves it to
 * the fourth (joined as a learner, promoted once caught up, the old replica removed last, after
 * handing its leadership on); every record stays readable, from the new replica too, and
 * producing goes on. A second decommission would leave fewer brokers than replicas: refused. */
START_TEST(a_decommissioned_brokers_replicas_move_to_the_others) {
    servers = 4;
    setup.controllers = 4;
    setup.snapshot_entries = 8;
    setup.snapshot_trailing = 0;
    start(51);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 1, &hint), 0);
    uint32_t before[PLACEMENT_REPLICAS_MAX], leader;
    ck_assert_uint_eq(replicas_of_0(ctl, before, &leader), 3);
    uint32_t gone = before[0], spare = 0;
    for (uint32_t id = 1; id <= 4; id++)
        if (id != before[0] && id != before[1] && id != before[2]) spare = id;
    for (uint32_t i = 0; i < 50; i++) {
        char value[16];
        snprintf(value, sizeof value, "r%u", i);
        const char *one[] = {value};
        ck_assert_int_eq(produce(partition_leader(0), 0, 0, 0, one, 1).u.produce_resp.error, 0);
    }
    uint32_t listed[5];
    ck_assert_uint_eq(listed_brokers(ctl, PROTO_VERSION, listed), 4);
    ck_assert_uint_eq(listed[gone], 1);
    ck_assert_int_eq(decommission(controller_leader(), gone), 0);
    /* While it still holds the partition, every answer lists it (a client must reach it if it
     * leads), marked at version 2. */
    ck_assert_uint_eq(listed_brokers(ctl, PROTO_VERSION, listed), 4);
    ck_assert_uint_eq(listed[gone], 2);
    ck_assert_uint_eq(listed[spare], 1);
    ck_assert_uint_eq(listed_brokers(ctl, PROTO_VERSION_MIN, listed), 4);
    ck_assert_uint_eq(listed[gone], 1);   /* version 1 cannot mark it */
    sim_run_until(sim, sim_now(sim) + 5000ull * MS);
    /* Moved: version 1 no longer lists it (no client is sent there); version 2 marks it. */
    for (uint32_t id = 1; id <= 4; id++) {
        ck_assert_uint_eq(listed_brokers(id, PROTO_VERSION_MIN, listed), 3);
        ck_assert_uint_eq(listed[gone], 0);
        ck_assert_uint_eq(listed_brokers(id, PROTO_VERSION, listed), 4);
        ck_assert_uint_eq(listed[gone], 2);
        for (uint32_t other = 1; other <= 4; other++)
            if (other != gone) ck_assert_uint_eq(listed[other], 1);
    }
    uint32_t after[PLACEMENT_REPLICAS_MAX];
    ck_assert_uint_eq(replicas_of_0(controller_leader(), after, &leader), 3);
    int has_spare = 0;
    for (uint32_t k = 0; k < 3; k++) {
        ck_assert_uint_ne(after[k], gone);
        has_spare |= after[k] == spare;
    }
    ck_assert(has_spare);
    ck_assert_uint_ne(partition_leader(0), gone);
    ck_assert_uint_eq(read_all_as(spare, 0, 50, 1), 50);
    for (uint32_t i = 50; i < 60; i++) {
        char value[16];
        snprintf(value, sizeof value, "r%u", i);
        const char *one[] = {value};
        struct proto_msg m = produce(partition_leader(0), 0, 0, 0, one, 1);
        ck_assert_int_eq(m.u.produce_resp.error, 0);
        ck_assert_uint_eq(m.u.produce_resp.base_offset, i);
    }
    ck_assert_uint_eq(read_all_as(spare, 0, 60, 1), 60);
    ck_assert_uint_eq(read_all(partition_leader(0), 0, 60), 60);
    ck_assert_int_eq(decommission(controller_leader(), spare), RQ_EINVAL);
    ck_assert_int_eq(decommission(controller_leader(), 9), RQ_ENOENT);
    struct broker_stats st;
    uint64_t changes = 0;
    for (uint32_t id = 1; id <= 4; id++) {
        broker_stats_get(sim_node(sim, id), &st);
        changes += st.membership_changes;
    }
    ck_assert_uint_ge(changes, 3);   /* add, promote, remove (and perhaps a hand-off) */
    sim_destroy(sim);
    servers = SERVERS;
    setup.controllers = SERVERS;
    setup.snapshot_entries = 0;
}
END_TEST

/* Every broker restarts from its disk: the partitions' groups come back and keep their records. */
START_TEST(restart_finds_partitions_again) {
    start(14);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 2, &hint), 0);
    const char *a[] = {"kept"};
    uint32_t leader = partition_leader(1);
    ck_assert_int_eq(produce(leader, 1, 0, 0, a, 1).u.produce_resp.error, 0);
    for (uint32_t id = 1; id <= SERVERS; id++) sim_crash_restart(sim, id, 1, 50 * MS);
    sim_run_until(sim, sim_now(sim) + 2000 * MS);
    leader = partition_leader(1);
    const char *v[8];
    struct proto_msg m;
    for (int tries = 0; tries < 50; tries++) {
        m = await(send_fetch(leader, 1, 0, 0, 0));
        if (m.u.fetch_resp.error == 0 && m.u.fetch_resp.records.count == 1) break;
        sim_run_until(sim, sim_now(sim) + 100 * MS);
        leader = partition_leader(1);
    }
    ck_assert_uint_eq(fetched(&m, 0, v), 1);
    ck_assert_str_eq(v[0], "kept");
    free_values(v, 1);
    sim_destroy(sim);
}
END_TEST

/* The per-partition byte counters of the metrics endpoint (broker_group_metrics): bytes in on the
 * leader that accepted a produce, nothing for a refused one; bytes out on the replica that sent
 * a fetch answer, the records' bytes as produced (without their offsets). */
static struct broker_group_metrics group_metrics(uint32_t server, uint32_t group) {
    struct broker_group_metrics m;
    ck_assert_int_eq(broker_group_metrics(sim_node(sim, server), group, &m), 1);
    ck_assert_ptr_nonnull(m.topic);
    return m;
}

START_TEST(partition_bytes_in_and_out_are_counted) {
    start(15);
    uint32_t ctl = controller_leader(), hint;
    ck_assert_int_eq(create_topic(ctl, 1, &hint), 0);
    partition_leader(0);
    uint32_t leader = 0;
    for (int tries = 0; tries < 50 && leader == 0; tries++) {   /* fetches of nothing: 0 bytes */
        leader = actual_leader(0);
        if (leader == 0) sim_run_until(sim, sim_now(sim) + 100 * MS);
    }
    ck_assert_uint_ne(leader, 0);
    uint32_t follower = leader % SERVERS + 1, group = group_of_partition0(leader);
    for (uint32_t id = 1; id <= SERVERS; id++) {
        ck_assert_uint_eq(group_metrics(id, group).bytes_in, 0);
        ck_assert_uint_eq(group_metrics(id, group).bytes_out, 0);
    }

    /* A record is varint timestamp (7: 1 byte) . bytes key (empty: 1) . bytes value (1 + its
     * size) . varint header count (1), docs/protocol.md: 4 + the value's size here. */
    const char *values[] = {"a", "bb", "ccc"};
    const uint64_t first_size = 4 + 1, all_size = (4 + 1) + (4 + 2) + (4 + 3);
    ck_assert_int_eq(produce_once(leader, 0, 0, 0, values, 3).u.produce_resp.error, 0);
    ck_assert_uint_eq(group_metrics(leader, group).bytes_in, all_size);
    /* Refused: at a follower (RQ_ENOTLEADER), and a record over max_message_bytes. */
    ck_assert_int_eq(produce_once(follower, 0, 0, 0, values, 3).u.produce_resp.error,
                     RQ_ENOTLEADER);
    const char *const big[] = {"this value is longer than the topic's max_message_bytes of one "
                               "hundred bytes, so the broker refuses it............"};
    ck_assert_int_eq(produce_once(leader, 0, 0, 0, big, 1).u.produce_resp.error, RQ_ETOOBIG);
    for (uint32_t id = 1; id <= SERVERS; id++) {
        ck_assert_uint_eq(group_metrics(id, group).bytes_in, id == leader ? all_size : 0);
        ck_assert_uint_eq(group_metrics(id, group).bytes_out, 0);   /* replication is not */
    }

    /* Fetches: everything, then from offset 1; at the end nothing is added. */
    struct proto_msg m = await(send_fetch(leader, 0, 0, 0, 0));
    ck_assert_uint_eq(m.u.fetch_resp.records.count, 3);
    ck_assert_uint_eq(group_metrics(leader, group).bytes_out, all_size);
    m = await(send_fetch(leader, 0, 1, 0, 0));
    ck_assert_uint_eq(m.u.fetch_resp.records.count, 2);
    ck_assert_uint_eq(group_metrics(leader, group).bytes_out, 2 * all_size - first_size);
    m = await(send_fetch(leader, 0, 3, 0, 0));
    ck_assert_uint_eq(m.u.fetch_resp.records.count, 0);
    ck_assert_uint_eq(group_metrics(leader, group).bytes_out, 2 * all_size - first_size);
    /* A follower's answer counts on the follower. */
    m = await(send_fetch(follower, 0, 0, 0, 1));
    ck_assert_int_eq(m.u.fetch_resp.error, 0);
    ck_assert_uint_eq(m.u.fetch_resp.records.count, 3);
    ck_assert_uint_eq(group_metrics(follower, group).bytes_out, all_size);
    ck_assert_uint_eq(group_metrics(follower, group).bytes_in, 0);
    ck_assert_uint_eq(group_metrics(leader, group).bytes_out, 2 * all_size - first_size);
    ck_assert_uint_eq(group_metrics(leader, group).bytes_in, all_size);
    sim_destroy(sim);
}
END_TEST

int main(void) {
    Suite *s = suite_create("broker");
    TCase *tc = tcase_create("simulated cluster");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, topic_produce_fetch);
    tcase_add_test(tc, idempotent_producer_gets_original_offsets);
    tcase_add_test(tc, malformed_requests_get_errors);
    tcase_add_test(tc, restart_finds_partitions_again);
    tcase_add_test(tc, garbage_never_stops_a_broker);
    tcase_add_test(tc, acks_one_is_answered_at_the_leaders_durable_append);
    tcase_add_test(tc, a_deleted_topics_groups_keep_no_log_in_memory);
    tcase_add_test(tc, old_records_are_read_back_from_the_store);
    tcase_add_test(tc, a_follower_behind_catches_up_from_the_store_and_serves_it);
    tcase_add_test(tc, retention_by_size_deletes_the_oldest_records_everywhere);
    tcase_add_test(tc, retention_by_time_deletes_old_records);
    tcase_add_test(tc, a_decommissioned_brokers_replicas_move_to_the_others);
    tcase_add_test(tc, partition_bytes_in_and_out_are_counted);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
