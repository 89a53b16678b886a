/* A partition as a Raft group (src/node/partition_group.c) in the simulator: three servers host
 * it with a snapshot every 4 entries; an idempotent producer's batches get dense offsets, a
 * retried batch gets the offset it got the first time, an out-of-order one RQ_ESEQUENCE, acks=0
 * is never answered yet takes its offsets; every replica ends with the same state, also one that
 * lost power and restarted from its snapshot and log. Group commit: batches that reach the leader
 * while its previous append is not durable share one SHARED entry, each answered with its own
 * batch's result (acks=1 and acks=all alike, acks=0 never), read back from memory, from loaded
 * entries and after a restore's scan; an open entry whose leader lost its term is dropped with
 * RQ_ENOTLEADER; a full one is proposed at once. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "broker/ttl.h"
#include "node/partition_group.h"
#include "raft/msg.h"
#include "sim/sim.h"
#include "tests/unit/host_server.h"
#include "tests/unit/suite_main.h"

enum { COOKIES = 64, BIG_VALUE = 70000 };

struct server {
    struct host *host;            /* first: host_server.h finds it there */
    const struct rq_io *io;
    struct part_group *pg;
    uint32_t answers;
    struct part_group_result last;
    uint32_t answered[COOKIES];       /* per cookie: answers */
    struct part_group_result by_cookie[COOKIES];
};

static void done(void *arg, uint64_t cookie, const struct part_group_result *r) {
    struct server *n = arg;
    if (n == NULL) return;
    n->answers++;
    n->last = *r;
    n->answered[cookie % COOKIES]++;
    n->by_cookie[cookie % COOKIES] = *r;
}

static void durable(void *arg, uint32_t group, uint64_t index) {
    (void)group;
    struct server *n = arg;
    part_group_durable(n->pg, n->host, index);
}

static void apply(void *arg, uint32_t group, const struct raft_entry *e) {
    (void)group;
    part_group_apply(((struct server *)arg)->pg, e, NULL);
}

static size_t image(void *arg, uint32_t group, uint8_t *buf, size_t cap) {
    (void)group;
    return part_group_snapshot(((struct server *)arg)->pg, buf, cap);
}

static void restore(void *arg, uint32_t group, uint64_t index, const uint8_t *img, size_t size) {
    (void)group;
    part_group_restore(((struct server *)arg)->pg, index, img, size);
}

static void *server_create(const struct rq_io *io, const void *config) {
    (void)config;
    struct server *n = calloc(1, sizeof *n);
    RQ_ASSERT(n != NULL);
    n->io = io;
    n->pg = part_group_create(1, 2000000000ull, done, n);
    struct host_config hc;
    host_server_host_config(&hc, 1, 3, 4, 1);
    static const struct host_callbacks cb = {.apply = apply, .snapshot = image, .restore = restore,
                                             .durable = durable};
    n->host = host_create(io, &hc, &cb, n);
    RQ_ASSERT(n->pg != NULL && n->host != NULL);
    return n;
}

static void server_destroy(void *node) {
    struct server *n = node;
    host_destroy(n->host);
    part_group_destroy(n->pg);
    free(n);
}

static void on_timer(void *node) {
    struct server *n = node;
    host_on_timer(n->host);
    part_group_tick(n->pg, n->host, n->io->now(n->io->env));
}

static const struct rq_node_ops ops = {
    .name = "partition-test", .create = server_create, .destroy = server_destroy,
    .on_start = host_server_start, .on_timer = on_timer, .on_peer_message = host_server_peer,
    .on_client_message = host_server_client, .on_disk_done = host_server_disk,
    .on_conn_closed = host_server_closed,
};

static const struct sim_workload workload = {.name = "partition-test", .server_ops = &ops,
                                             .init = host_server_world_init,
                                             .fini = host_server_world_fini};

static struct server *server(struct sim *s, uint32_t id) { return sim_node(s, id); }

static uint32_t leader(struct sim *s) { return host_server_leader(s, 3, 1); }

/* Produces two records as producer 7 from sequence seq with acks, at the leader; runs until it
 * is answered (acks 0: for 200 ms) and returns the answer. */
static struct part_group_result produce(struct sim *s, uint64_t *now, uint64_t seq, uint8_t acks) {
    static uint8_t buf[512];
    struct proto_record_in recs[2] = {{.value = {(const uint8_t *)"one", 3}},
                                      {.value = {(const uint8_t *)"two", 3}}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = acks,
                                    .producer_id = 7, .base_sequence = seq,
                                    .records = {.count = 2}};
    size_t n = proto_encode_produce_req(buf, sizeof buf, &req, recs);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, buf, n, &m), 0);
    uint32_t l = leader(s);
    ck_assert_uint_ne(l, 0);
    struct server *ls = server(s, l);
    uint32_t before = ls->answers;
    ck_assert_int_eq(part_group_produce(ls->pg, ls->host, &m.u.produce_req, seq,
                                        ls->io->now(ls->io->env)), 0);   /* the node's clock */
    for (int i = 0; i < 100 && (ls->answers == before || acks == 0); i++) {
        *now += 10000000ull;
        sim_run_until(s, *now);
        if (acks == 0 && i == 20) break;
    }
    ck_assert_uint_eq(ls->answers, before + (acks != 0));
    return ls->last;
}

static void assert_replicas_agree(struct sim *s) {
    static uint8_t a[PARTITION_IMAGE_MAX], b[PARTITION_IMAGE_MAX];
    size_t na = partition_sm_image(part_group_state(server(s, 1)->pg), a, sizeof a);
    ck_assert_uint_gt(na, 0);
    for (uint32_t id = 2; id <= 3; id++) {
        size_t nb = partition_sm_image(part_group_state(server(s, id)->pg), b, sizeof b);
        ck_assert_uint_eq(na, nb);
        ck_assert_mem_eq(a, b, na);
        ck_assert_uint_eq(part_group_bad_images(server(s, id)->pg), 0);
    }
}

START_TEST(offsets_duplicates_and_replicas) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &workload, 3, 3, 30000000000ull);
    struct sim *s = sim_create(&cfg);
    uint64_t now = 2000000000ull;
    sim_run_until(s, now);
    for (uint64_t k = 0; k < 5; k++) {
        struct part_group_result r = produce(s, &now, 2 * k, PROTO_ACKS_ALL);
        ck_assert_int_eq(r.error, 0);
        ck_assert_uint_eq(r.base_offset, 2 * k);   /* dense offsets */
    }
    struct part_group_result dup = produce(s, &now, 4, PROTO_ACKS_LEADER);   /* a retry */
    ck_assert_int_eq(dup.error, 0);
    ck_assert_uint_eq(dup.base_offset, 4);
    ck_assert_int_eq(produce(s, &now, 100, PROTO_ACKS_ALL).error, RQ_ESEQUENCE);
    produce(s, &now, 10, PROTO_ACKS_NONE);   /* not answered, still applied */
    struct part_group_result after = produce(s, &now, 12, PROTO_ACKS_ALL);
    ck_assert_uint_eq(after.base_offset, 12);
    assert_replicas_agree(s);
    uint32_t f = leader(s) % 3 + 1;
    sim_crash(s, f, 1);
    sim_restart(s, f);
    ck_assert_uint_eq(produce(s, &now, 14, PROTO_ACKS_ALL).base_offset, 14);
    now += 2000000000ull;
    sim_run_until(s, now);
    assert_replicas_agree(s);
    ck_assert_uint_eq(part_group_state(server(s, f)->pg)->next_offset, 16);
    sim_destroy(s);
}
END_TEST

/* A replica restored from an image finds the batches below it again in its stored log (each
 * entry says where its records are): until the scan is done reads below wait (RQ_EBUSY); after
 * it they are found, or, when the stored log no longer has them (a snapshot installed from the
 * leader), are out of range. Reads from the image's next offset on are served (none yet). */
START_TEST(reads_below_a_restored_image) {
    struct proto_record_in recs[3] = {{.value = {(const uint8_t *)"a", 1}},
                                      {.value = {(const uint8_t *)"b", 1}},
                                      {.value = {(const uint8_t *)"c", 1}}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = PROTO_ACKS_ALL,
                                    .records = {.count = 3}};
    uint8_t buf[256], entry[512];
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, buf,
                                  proto_encode_produce_req(buf, sizeof buf, &req, recs), &m), 0);
    size_t n = partition_entry_encode(entry, sizeof entry, 0, 0, 0, 1, &m.u.produce_req.records);
    struct partition_sm *sm = calloc(1, sizeof *sm);
    partition_sm_init(sm);
    struct partition_apply_result res;
    partition_sm_apply(sm, 1, entry, n, &res);
    ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
    uint8_t *image = malloc(PARTITION_IMAGE_MAX);
    size_t size = partition_sm_image(sm, image, PARTITION_IMAGE_MAX);
    struct part_group *pg = part_group_create(1, 1, done, NULL);
    struct proto_fetch_builder b;
    uint8_t scratch[256];
    uint64_t from, load_from = 0;
    uint32_t gen;
    /* The stored log holds the entry: found again. */
    part_group_restore(pg, 1, image, size);
    ck_assert_uint_eq(part_group_bad_images(pg), 0);
    ck_assert_uint_eq(part_group_readable_from(pg), 3);
    ck_assert_uint_eq(part_group_log_start(pg), 0);
    ck_assert_uint_eq(part_group_retain_below(pg), 0);   /* nothing known below the image yet */
    proto_fetch_builder_init(&b, scratch, sizeof scratch);
    ck_assert_int_eq(part_group_read(pg, NULL, 2, 10, 100, 0, &b, &load_from), RQ_EBUSY);
    ck_assert(part_group_scan_wanted(pg, &from, &gen));
    ck_assert_uint_eq(from, 1);
    part_group_scan_started(pg);
    ck_assert(!part_group_scan_wanted(pg, &from, &gen));   /* one read at a time */
    struct raft_entry stored = {.index = 1, .term = 1, .type = RAFT_ENTRY_NORMAL,
                                .data_size = (uint32_t)n, .data = entry};
    part_group_scan_loaded(pg, gen + 1, 0, &stored, 1);   /* a stale scan's answer: ignored */
    part_group_scan_loaded(pg, gen, 0, &stored, 1);
    ck_assert(!part_group_scan_wanted(pg, &from, &gen));
    ck_assert_uint_eq(part_group_readable_from(pg), 0);
    ck_assert_uint_eq(part_group_retain_below(pg), 1);
    part_group_read_loaded(pg, &stored, 1, 1, 10, 100, 0, &b);   /* what a store read gives back */
    ck_assert_uint_eq(b.count, 2);
    ck_assert_uint_eq(b.last_offset, 2);
    /* The stored log starts above 1: nothing below the image here. */
    part_group_restore(pg, 1, image, size);
    ck_assert(part_group_scan_wanted(pg, &from, &gen));
    part_group_scan_started(pg);
    part_group_scan_loaded(pg, gen, RQ_EBUSY, NULL, 0);   /* the store was busy: again */
    ck_assert(part_group_scan_wanted(pg, &from, &gen));
    part_group_scan_started(pg);
    part_group_scan_loaded(pg, gen, RQ_ERANGE, NULL, 0);
    ck_assert(!part_group_scan_wanted(pg, &from, &gen));
    /* Not deleted (the log start is 0), only not here: busy, until a RETAIN gives them up. */
    proto_fetch_builder_init(&b, scratch, sizeof scratch);
    ck_assert_int_eq(part_group_read(pg, NULL, 2, 10, 100, 0, &b, &load_from), RQ_EBUSY);
    ck_assert_uint_eq(part_group_retain_below(pg), 0);
    ck_assert_int_eq(part_group_read(pg, NULL, 3, 10, 100, 0, &b, &load_from), 0);
    ck_assert_int_eq(part_group_read(pg, NULL, 9, 10, 100, 0, &b, &load_from), 0);   /* waits */
    ck_assert_uint_eq(b.count, 0);
    part_group_destroy(pg);
    free(image);
    free(sm);
}
END_TEST

/* The index of batches is bounded (PART_GROUP_BATCHES_MAX): past the bound the newest batches are
 * still served (the entry part_group_read sends the reader to, below Raft's memory, here an empty
 * log, holds the record), and the older half is below the log start. Before, batches past the
 * bound were not indexed: a reader at the tail was sent to the last indexed entry, 100 entries
 * below its offset, and got empty answers for ever. */
START_TEST(records_past_the_index_bound_are_served) {
    struct proto_record_in rec = {.value = {(const uint8_t *)"v", 1}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = PROTO_ACKS_ALL,
                                    .records = {.count = 1}};
    uint8_t buf[256];
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, buf,
                                  proto_encode_produce_req(buf, sizeof buf, &req, &rec), &m), 0);
    enum { PAST = 100, COUNT = PART_GROUP_BATCHES_MAX + PAST };
    struct part_group *pg = part_group_create(1, 1, done, NULL);
    static uint8_t entries[PAST + 64][64];
    static struct raft_entry stored[PAST + 64];
    const uint32_t kept_from = PART_GROUP_BATCHES_MAX - 64;   /* entries kept as "the store" */
    for (uint32_t i = 0; i < COUNT; i++) {
        uint8_t e[64];
        uint8_t *data = i >= kept_from ? entries[i - kept_from] : e;
        size_t n = partition_entry_encode(data, 64, i, 0, 0, 1, &m.u.produce_req.records);
        struct raft_entry re = {.index = i + 1, .term = 1, .type = RAFT_ENTRY_NORMAL,
                                .data_size = (uint32_t)n, .data = data};
        part_group_apply(pg, &re, NULL);
        if (i >= kept_from) stored[i - kept_from] = re;
    }
    ck_assert_uint_eq(part_group_state(pg)->next_offset, COUNT);
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.group = 1;
    cfg.voters[0] = 1;
    cfg.voter_count = 1;
    struct raft *r = raft_create(&cfg, 0, 0);   /* an empty log: every entry is in the store */
    struct proto_fetch_builder b;
    uint8_t scratch[256];
    uint64_t load_from = 0, offset = COUNT - 1;
    proto_fetch_builder_init(&b, scratch, sizeof scratch);
    ck_assert_int_eq(part_group_read(pg, r, offset, 10, 100, 0, &b, &load_from), PART_GROUP_NEED_LOAD);
    /* What the broker reads back: 64 entries from load_from (here, from those kept above). */
    uint64_t first = stored[0].index;
    ck_assert_uint_ge(load_from, first);
    ck_assert_uint_le(load_from, stored[PAST + 63].index);
    uint32_t at = (uint32_t)(load_from - first);
    uint32_t count = PAST + 64 - at < 64 ? PAST + 64 - at : 64;
    part_group_read_loaded(pg, &stored[at], count, offset, 10, 100, 0, &b);
    ck_assert_uint_eq(b.count, 1);
    ck_assert_uint_eq(b.last_offset, offset);
    ck_assert_uint_eq(part_group_readable_from(pg), PART_GROUP_BATCHES_MAX / 2);
    proto_fetch_builder_init(&b, scratch, sizeof scratch);
    ck_assert_int_eq(part_group_read(pg, r, 0, 10, 100, 0, &b, &load_from), RQ_EBUSY);
    ck_assert_int_eq(part_group_read(pg, r, PART_GROUP_BATCHES_MAX / 2, 10, 100, 0, &b, &load_from),
                     PART_GROUP_NEED_LOAD);
    ck_assert_uint_eq(load_from, PART_GROUP_BATCHES_MAX / 2 + 1);
    raft_destroy(r);
    part_group_destroy(pg);
}
END_TEST

/* Retention's arithmetic on a replica's index: ten batches of 2 records (17 bytes each as
 * encoded), batch k stamped at k seconds, at Raft indexes 2k + 1. */
static size_t retention_entry(uint8_t *entry, size_t cap, uint64_t k) {
    static uint8_t buf[256];
    struct proto_record_in recs[2] = {{.value = {(const uint8_t *)"0123456789", 10}},
                                      {.value = {(const uint8_t *)"abcdefghij", 10}}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = PROTO_ACKS_ALL,
                                    .records = {.count = 2}};
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, buf,
                                  proto_encode_produce_req(buf, sizeof buf, &req, recs), &m), 0);
    return partition_entry_encode(entry, cap, 2 * k, 0, 0, k * 1000000000ull,
                                  &m.u.produce_req.records);
}

static void apply_at(struct part_group *pg, uint64_t index, const uint8_t *data, size_t n) {
    struct raft_entry e = {.index = index, .term = 1, .type = RAFT_ENTRY_NORMAL,
                           .data_size = (uint32_t)n, .data = data};
    part_group_apply(pg, &e, NULL);
}

/* Records whose TTL has passed (broker/ttl.h) are read as placeholders at their own offsets, by
 * the reader's clock against the batch's visible time; the others as stored. */
START_TEST(expired_records_are_read_as_placeholders) {
    struct part_group *pg = part_group_create(1, 1, done, NULL);
    static uint8_t buf[256], entry[512];
    struct proto_header ttl = {{(const uint8_t *)RQ_HEADER_TTL, 12}, {(const uint8_t *)"1000", 4}};
    struct proto_record_in recs[3] = {{.value = {(const uint8_t *)"a", 1}},
                                      {.timestamp = 77, .value = {(const uint8_t *)"b", 1},
                                       .header_count = 1, .headers = &ttl},
                                      {.value = {(const uint8_t *)"c", 1}}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = PROTO_ACKS_ALL,
                                    .records = {.count = 3}};
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, buf,
                                  proto_encode_produce_req(buf, sizeof buf, &req, recs), &m), 0);
    size_t n = partition_entry_encode(entry, sizeof entry, 0, 0, 0, 5000000000ull,
                                      &m.u.produce_req.records);
    apply_at(pg, 1, entry, n);
    struct raft_entry stored = {.index = 1, .term = 1, .type = RAFT_ENTRY_NORMAL,
                                .data_size = (uint32_t)n, .data = entry};
    static const uint64_t clocks[] = {5000000000ull + 999999999ull, 6000000000ull};
    for (int k = 0; k < 2; k++) {   /* 1 ns before the TTL, then exactly at it */
        uint8_t scratch[1024];
        struct proto_fetch_builder b;
        proto_fetch_builder_init(&b, scratch, sizeof scratch);
        part_group_read_loaded(pg, &stored, 1, 0, 10, 1000, clocks[k], &b);
        ck_assert_uint_eq(b.count, 3);   /* dense offsets either way */
        struct proto_records rs;
        ck_assert_int_eq(proto_records_decode(b.buf, b.len, b.count, 1, &rs), 0);
        size_t cursor = 0;
        struct proto_record r;
        for (uint64_t o = 0; proto_record_next(&rs, &cursor, &r); o++) {
            ck_assert_uint_eq(r.offset, o);
            ck_assert_int_eq(ttl_is_placeholder(&r), k == 1 && o == 1);
            if (o == 1 && k == 1) {
                ck_assert_uint_eq(r.value.size, 0);
                ck_assert_uint_eq(r.timestamp, 77);   /* the original's */
            }
        }
    }
    part_group_destroy(pg);
}
END_TEST

START_TEST(retention_targets_and_what_the_store_may_drop) {
    struct part_group *pg = part_group_create(1, 1, done, NULL);
    uint8_t entry[512];
    size_t one = 0;
    for (uint64_t k = 0; k < 10; k++) {
        size_t n = retention_entry(entry, sizeof entry, k);
        apply_at(pg, 2 * k + 1, entry, n);
        struct partition_entry pe;
        ck_assert_int_eq(partition_entry_decode(entry, n, &pe), 0);
        one = pe.records.size;
    }
    const uint64_t s = 1000000000ull;
    struct part_group_retention none = {0}, time = {.time_ns = 3 * s},
                                size = {.bytes = 4 * one}, tiny = {.bytes = 1},
                                both = {.time_ns = 8 * s, .bytes = 4 * one};
    ck_assert_uint_eq(part_group_retention_target(pg, &none, 100 * s), 0);
    /* At 9.5 s batches 0..6 are older than 3 s: the log start is batch 7's first offset. */
    ck_assert_uint_eq(part_group_retention_target(pg, &time, 9 * s + s / 2), 14);
    ck_assert_uint_eq(part_group_retention_target(pg, &time, 2 * s), 0);   /* none yet */
    ck_assert_uint_eq(part_group_retention_target(pg, &time, 100 * s), 20);   /* all of them */
    ck_assert_uint_eq(part_group_retention_target(pg, &size, 0), 12);   /* the newest 4 stay */
    ck_assert_uint_eq(part_group_retention_target(pg, &tiny, 0), 18);   /* the newest stays */
    ck_assert_uint_eq(part_group_retention_target(pg, &both, 9 * s), 12);   /* size asks more */
    ck_assert_uint_eq(part_group_retention_target(pg, &both, 20 * s), 20);   /* time asks more */
    ck_assert_uint_eq(part_group_retain_below(pg), 1);
    /* A RETAIN to offset 12 (batch 6, Raft index 13) moves the log start: reads below get
     * RQ_ERANGE, the stored entries below index 13 may go, and the next target counts from it. */
    uint8_t retain[PARTITION_RETAIN_ENTRY_MAX];
    size_t rn = partition_retain_encode(retain, sizeof retain, 12);
    apply_at(pg, 21, retain, rn);
    ck_assert_uint_eq(part_group_log_start(pg), 12);
    ck_assert_uint_eq(part_group_retain_below(pg), 13);
    ck_assert_uint_eq(part_group_retention_target(pg, &none, 0), 12);
    ck_assert_uint_eq(part_group_retention_target(pg, &size, 0), 12);
    ck_assert_uint_eq(part_group_retention_target(pg, &time, 9 * s + s / 2), 14);
    struct proto_fetch_builder b;
    uint8_t scratch[256];
    uint64_t load_from = 0;
    proto_fetch_builder_init(&b, scratch, sizeof scratch);
    ck_assert_int_eq(part_group_read(pg, NULL, 11, 10, 100, 0, &b, &load_from), RQ_ERANGE);
    /* A RETAIN inside a batch keeps that batch's entry. */
    rn = partition_retain_encode(retain, sizeof retain, 15);
    apply_at(pg, 22, retain, rn);
    ck_assert_uint_eq(part_group_retain_below(pg), 15);   /* batch 7 at index 15 holds 15 */
    /* Restored from an image (its log start 15, next offset 20): until the index below it is
     * found again nothing is known, and the log start stays (the leader must not give up what
     * it is still looking for); a scan that finds nothing leaves [15, 20) unservable here, and
     * the target gives it up. */
    uint8_t *image = malloc(PARTITION_IMAGE_MAX);
    size_t size_img = part_group_snapshot(pg, image, PARTITION_IMAGE_MAX);
    part_group_restore(pg, 22, image, size_img);
    ck_assert_uint_eq(part_group_readable_from(pg), 20);
    ck_assert_uint_eq(part_group_retention_target(pg, &none, 0), 15);
    ck_assert_uint_eq(part_group_retain_below(pg), 0);
    uint64_t from;
    uint32_t gen;
    ck_assert(part_group_scan_wanted(pg, &from, &gen));
    part_group_scan_started(pg);
    part_group_scan_loaded(pg, gen, RQ_ERANGE, NULL, 0);
    ck_assert_uint_eq(part_group_retention_target(pg, &none, 0), 20);
    ck_assert_uint_eq(part_group_retain_below(pg), 0);
    free(image);
    part_group_destroy(pg);
}
END_TEST

/* ---- group commit: batches that arrive while an append is not durable share one entry ---- */

/* Hands leader l a batch of `count` records of producer pid from seq, without running the
 * simulation (so the append of an earlier one is not durable yet); returns part_group_produce's
 * answer. */
static int submit(struct sim *s, uint32_t l, uint64_t pid, uint64_t seq, uint32_t count,
                  uint8_t acks, uint64_t cookie) {
    static uint8_t buf[1024];
    struct proto_record_in recs[4];
    ck_assert_uint_le(count, 4);
    for (uint32_t i = 0; i < count; i++)
        recs[i] = (struct proto_record_in){.value = {(const uint8_t *)"shared", 6}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = acks,
                                    .producer_id = pid, .base_sequence = seq,
                                    .records = {.count = count}};
    size_t n = proto_encode_produce_req(buf, sizeof buf, &req, recs);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, buf, n, &m), 0);
    struct server *ls = server(s, l);
    /* The node's own clock: proposals wait from then (the simulation's time is not the node's). */
    return part_group_produce(ls->pg, ls->host, &m.u.produce_req, cookie, ls->io->now(ls->io->env));
}

/* Runs until leader l has given `answers` answers (at most 1 s). */
static void run_until_answered(struct sim *s, uint32_t l, uint64_t *now, uint32_t answers) {
    for (int i = 0; i < 100 && server(s, l)->answers < answers; i++) {
        *now += 10000000ull;
        sim_run_until(s, *now);
    }
    ck_assert_uint_eq(server(s, l)->answers, answers);
}

enum { ALL = PROTO_ACKS_ALL, ONE = PROTO_ACKS_LEADER, NONE = PROTO_ACKS_NONE };

static const struct {
    uint64_t pid, seq;
    uint32_t count;
    uint8_t acks;
    int error;
    uint64_t base;
} shared_rows[] = {
    {1, 0, 2, ALL, 0, 0},              /* alone: nothing waits before it */
    {2, 0, 2, ALL, 0, 2},              /* the rest wait for its append: one shared entry */
    {1, 2, 1, ONE, 0, 4},              /* acks=1: answered at the durable append */
    {2, 0, 2, ALL, 0, 2},              /* a retry of the second: its original offset */
    {3, 5, 2, NONE, 0, 5},             /* acks=0: never answered, takes offsets 5, 6 */
    {2, 9, 1, ALL, RQ_ESEQUENCE, 0},   /* a gap */
    {0, 0, 1, ONE, 0, 7},
};
enum { SHARED_ROWS = sizeof shared_rows / sizeof shared_rows[0] };

/* Reads from offset on r's in-memory entries: the count and the last offset. */
static void assert_read(const struct part_group *pg, const struct raft *r, uint64_t offset,
                        uint32_t max_records, uint32_t count, uint64_t last) {
    struct proto_fetch_builder b;
    uint8_t scratch[2048];
    uint64_t load_from = 0;
    proto_fetch_builder_init(&b, scratch, sizeof scratch);
    int err = part_group_read(pg, r, offset, max_records, sizeof scratch, 0, &b, &load_from);
    ck_assert_int_eq(err, 0);
    ck_assert_uint_eq(b.count, count);
    ck_assert_uint_eq(b.last_offset, last);
}

/* The same from entries handed over as if read back from the store. */
static void assert_read_loaded(const struct part_group *pg, const struct raft_entry *entries,
                               uint32_t n, uint64_t offset, uint32_t count, uint64_t last) {
    struct proto_fetch_builder b;
    uint8_t scratch[2048];
    proto_fetch_builder_init(&b, scratch, sizeof scratch);
    part_group_read_loaded(pg, entries, n, offset, 100, sizeof scratch, 0, &b);
    ck_assert_uint_eq(b.count, count);
    ck_assert_uint_eq(b.last_offset, last);
}

/* A replica restored from the leader's image finds the shared entry's batches again by scanning
 * the log, and reads them. */
static void assert_scan_after_restore(struct part_group *leader_pg, const struct raft *r,
                                      const struct raft_entry *entries, uint32_t n) {
    uint8_t *img = malloc(PARTITION_IMAGE_MAX);
    size_t size = part_group_snapshot(leader_pg, img, PARTITION_IMAGE_MAX);
    ck_assert_uint_gt(size, 0);
    struct part_group *pg = part_group_create(1, 1, done, NULL);
    part_group_restore(pg, part_group_state(leader_pg)->applied_index, img, size);
    ck_assert_uint_eq(part_group_readable_from(pg), 8);
    uint64_t from;
    uint32_t gen;
    ck_assert(part_group_scan_wanted(pg, &from, &gen));
    ck_assert_uint_eq(from, 1);
    part_group_scan_started(pg);
    part_group_scan_loaded(pg, gen, 0, entries, n);
    ck_assert(!part_group_scan_wanted(pg, &from, &gen));
    ck_assert_uint_eq(part_group_readable_from(pg), 0);
    assert_read(pg, r, 0, 100, 8, 7);
    assert_read(pg, r, 3, 100, 5, 7);   /* from inside the shared entry */
    part_group_destroy(pg);
    free(img);
}

/* Three simulated servers after their first election (at 2 s): *now and the leader *l. */
static struct sim *cluster_with_leader(uint64_t *now, uint32_t *l) {
    struct sim_config cfg;
    host_server_sim_config(&cfg, &workload, 3, 3, 30000000000ull);
    struct sim *s = sim_create(&cfg);
    *now = 2000000000ull;
    sim_run_until(s, *now);
    *l = leader(s);
    ck_assert_uint_ne(*l, 0);
    return s;
}

/* Batches of several producers that reach the leader while its previous append is not durable
 * share one SHARED entry, proposed once that append is: each request gets its own batch's
 * result (offsets dense across the entry, a retry its original offset, a gap RQ_ESEQUENCE, acks=1
 * answered, acks=0 not), every replica agrees, and reads find every batch, from memory, from
 * loaded entries and after a restore's scan. */
START_TEST(concurrent_batches_share_one_entry) {
    uint64_t now;
    uint32_t l, waiting = 0;
    struct sim *s = cluster_with_leader(&now, &l);
    struct server *ls = server(s, l);
    for (uint32_t i = 0; i < SHARED_ROWS; i++) {
        ck_assert_int_eq(submit(s, l, shared_rows[i].pid, shared_rows[i].seq, shared_rows[i].count,
                                shared_rows[i].acks, i + 1), 0);
        waiting += shared_rows[i].acks != NONE;
    }
    const struct part_group_stats *st = part_group_stats(ls->pg);
    ck_assert_uint_eq(st->entries_proposed, 1);   /* the others wait in the open entry */
    run_until_answered(s, l, &now, waiting);
    ck_assert_uint_eq(st->entries_proposed, 2);
    ck_assert_uint_eq(st->shared_entries, 1);
    ck_assert_uint_eq(st->shared_batches, SHARED_ROWS - 1);
    for (uint32_t i = 0; i < SHARED_ROWS; i++) {
        ck_assert_uint_eq(ls->answered[i + 1], shared_rows[i].acks != NONE);
        if (shared_rows[i].acks == NONE) continue;
        ck_assert_int_eq(ls->by_cookie[i + 1].error, shared_rows[i].error);
        ck_assert_uint_eq(ls->by_cookie[i + 1].base_offset, shared_rows[i].base);
    }
    now += 1000000000ull;
    sim_run_until(s, now);
    assert_replicas_agree(s);
    ck_assert_uint_eq(part_group_state(ls->pg)->next_offset, 8);
    const struct raft *r = host_raft(ls->host, 1);
    ck_assert_uint_eq(raft_first_index(r), 1);   /* no snapshot yet: every entry in memory */
    assert_read(ls->pg, r, 0, 100, 8, 7);
    assert_read(ls->pg, r, 3, 100, 5, 7);
    assert_read(ls->pg, r, 5, 1, 1, 5);
    struct raft_entry entries[16];
    uint32_t n = 0;
    for (uint64_t i = 1; i <= raft_applied_index(r) && n < 16; i++)
        entries[n++] = *raft_entry_at(r, i);
    assert_read_loaded(ls->pg, entries, n, 0, 8, 7);
    assert_read_loaded(ls->pg, entries, n, 4, 4, 7);
    assert_scan_after_restore(ls->pg, r, entries, n);
    sim_destroy(s);
}
END_TEST

/* A delayed message (broker/delay.h): held on every replica without offsets until its time, then
 * released at the end of the log by the leader of that moment, even when the leader that
 * accepted it crashed in between; replicas agree throughout. */
START_TEST(delayed_messages_are_released_after_their_time_across_a_leader_crash) {
    uint64_t now;
    uint32_t l;
    struct sim *s = cluster_with_leader(&now, &l);
    struct server *ls = server(s, l);
    static uint8_t buf[512];
    struct proto_record_in rec = {.value = {(const uint8_t *)"later", 5}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = PROTO_ACKS_ALL,
                                    .records = {.count = 1}, .delay_ms = 800};
    size_t n = proto_encode_delayed_produce_req(buf, sizeof buf, &req, &rec);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_DELAYED_PRODUCE_REQ, buf, n, &m), 0);
    uint64_t accepted_at = ls->io->now(ls->io->env);
    ck_assert_int_eq(part_group_delayed(ls->pg, ls->host, &m.u.produce_req, 9, accepted_at), 0);
    run_until_answered(s, l, &now, 1);
    ck_assert_int_eq(ls->by_cookie[9].error, 0);
    ck_assert_int_eq(produce(s, &now, 0, PROTO_ACKS_ALL).base_offset, 0);   /* offsets 0, 1 */
    now += 300000000ull;
    sim_run_until(s, now);
    for (uint32_t id = 1; id <= 3; id++) {   /* held everywhere, visible nowhere */
        const struct partition_sm *sm = part_group_state(server(s, id)->pg);
        ck_assert_uint_eq(sm->delays.count, 1);
        ck_assert_uint_eq(sm->next_offset, 2);
    }
    sim_crash(s, l, 1);
    now += 3000000000ull;   /* a new leader, and the time has come */
    sim_run_until(s, now);
    uint32_t l2 = leader(s);
    ck_assert_uint_ne(l2, 0);
    ck_assert_uint_ne(l2, l);
    const struct partition_sm *sm2 = part_group_state(server(s, l2)->pg);
    ck_assert_uint_eq(sm2->delays.count, 0);
    ck_assert_uint_eq(sm2->next_offset, 3);   /* appended after what was produced meanwhile */
    ck_assert_uint_eq(sm2->stats.released, 1);
    ck_assert_uint_ge(part_group_stats(server(s, l2)->pg)->releases_proposed, 1);
    sim_restart(s, l);
    now += 3000000000ull;
    sim_run_until(s, now);
    assert_replicas_agree(s);
    sim_destroy(s);
}
END_TEST

/* Makes server l step down: a heartbeat of a later term from another server. */
static void step_down(struct sim *s, uint32_t l) {
    const struct raft *r = host_raft(server(s, l)->host, 1);
    uint32_t other = l % 3 + 1;
    struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .group = 1, .from = other, .to = l,
                         .term = raft_term(r) + 1};
    uint8_t buf[256];
    size_t pos = raft_batch_header(buf, other, 1);
    ck_assert_int_eq(raft_msg_encode(&m, buf, sizeof buf, &pos), 0);
    host_on_peer_message(server(s, l)->host, other, buf, pos);
    ck_assert_int_ne(raft_role(r), RAFT_LEADER);
}

/* A leader that loses its term with an open entry drops it: its requests are answered
 * RQ_ENOTLEADER (acks=0 not at all), nothing of it is proposed, and the next leader's offsets
 * are right on every replica. */
START_TEST(leadership_lost_with_an_open_entry) {
    uint64_t now;
    uint32_t l;
    struct sim *s = cluster_with_leader(&now, &l);
    struct server *ls = server(s, l);
    ck_assert_int_eq(submit(s, l, 1, 0, 2, ALL, 1), 0);   /* alone */
    ck_assert_int_eq(submit(s, l, 2, 0, 2, ALL, 2), 0);   /* open */
    ck_assert_int_eq(submit(s, l, 1, 2, 1, ONE, 3), 0);
    ck_assert_int_eq(submit(s, l, 3, 0, 1, NONE, 4), 0);
    const struct part_group_stats *st = part_group_stats(ls->pg);
    ck_assert_uint_eq(st->entries_proposed, 1);
    step_down(s, l);
    ck_assert_int_eq(submit(s, l, 4, 0, 1, ALL, 5), RQ_ENOTLEADER);
    part_group_tick(ls->pg, ls->host, ls->io->now(ls->io->env));
    ck_assert_uint_eq(st->open_dropped, 3);
    ck_assert_uint_eq(st->entries_proposed, 1);
    for (uint32_t c = 2; c <= 3; c++) {
        ck_assert_uint_eq(ls->answered[c], 1);
        ck_assert_int_eq(ls->by_cookie[c].error, RQ_ENOTLEADER);
    }
    ck_assert_uint_eq(ls->answered[4], 0);
    for (int i = 0; i < 500 && ls->answered[1] == 0; i++) {   /* the first: applied or timed out */
        now += 10000000ull;
        sim_run_until(s, now);
    }
    ck_assert_uint_eq(ls->answered[1], 1);
    now += 1000000000ull;
    sim_run_until(s, now);
    uint32_t l2 = leader(s);
    ck_assert_uint_ne(l2, 0);
    uint64_t next = part_group_state(server(s, l2)->pg)->next_offset;
    struct part_group_result after = produce(s, &now, 0, PROTO_ACKS_ALL);
    ck_assert_int_eq(after.error, 0);
    ck_assert_uint_eq(after.base_offset, next);
    now += 1000000000ull;
    sim_run_until(s, now);
    assert_replicas_agree(s);
    ck_assert_uint_eq(part_group_state(ls->pg)->next_offset, next + 2);
    sim_destroy(s);
}
END_TEST

/* An open entry is proposed as soon as it holds PARTITION_SHARED_MAX batches, and a batch that
 * would make it pass RAFT_ENTRY_DATA_MAX bytes starts the next one. */
START_TEST(a_full_open_entry_is_proposed_at_once) {
    uint64_t now;
    uint32_t l;
    struct sim *s = cluster_with_leader(&now, &l);
    struct server *ls = server(s, l);
    const struct part_group_stats *st = part_group_stats(ls->pg);
    for (uint32_t i = 0; i <= PARTITION_SHARED_MAX + 1; i++)
        ck_assert_int_eq(submit(s, l, 0, 0, 1, ALL, i), 0);
    ck_assert_uint_eq(st->entries_proposed, 2);   /* alone, then a full shared entry */
    ck_assert_uint_eq(st->shared_batches, PARTITION_SHARED_MAX);
    run_until_answered(s, l, &now, PARTITION_SHARED_MAX + 2);
    ck_assert_uint_eq(st->entries_proposed, 3);   /* the last one, alone in its open entry */
    ck_assert_uint_eq(st->shared_entries, 1);
    ck_assert_uint_eq(part_group_state(ls->pg)->next_offset, PARTITION_SHARED_MAX + 2);
    for (uint32_t i = 0; i <= PARTITION_SHARED_MAX + 1; i++)
        ck_assert_uint_eq(ls->answered[i % COOKIES], i % COOKIES < 2 ? 2 : 1);
    sim_destroy(s);
}
END_TEST

/* Hands leader l one record of `size` bytes (acks=all) without running the simulation. */
static int submit_big(struct sim *s, uint32_t l, size_t size, uint64_t cookie) {
    static uint8_t value[BIG_VALUE], buf[BIG_VALUE + 256];
    ck_assert_uint_le(size, BIG_VALUE);
    memset(value, 'v', size);
    struct proto_record_in rec = {.value = {value, (uint32_t)size}};
    struct proto_produce_req req = {.topic = {(const uint8_t *)"t", 1}, .acks = ALL,
                                    .records = {.count = 1}};
    size_t n = proto_encode_produce_req(buf, sizeof buf, &req, &rec);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_PRODUCE_REQ, buf, n, &m), 0);
    struct server *ls = server(s, l);
    return part_group_produce(ls->pg, ls->host, &m.u.produce_req, cookie, ls->io->now(ls->io->env));
}

/* A batch that would make the open entry pass RAFT_ENTRY_DATA_MAX bytes has the open entry
 * proposed first and starts the next one; a batch too big for any entry is refused. */
START_TEST(an_open_entry_stays_within_an_entry_s_bytes) {
    uint64_t now;
    uint32_t l;
    struct sim *s = cluster_with_leader(&now, &l);
    struct server *ls = server(s, l);
    const struct part_group_stats *st = part_group_stats(ls->pg);
    size_t third = RAFT_ENTRY_DATA_MAX / 3;   /* two share an entry, a third does not fit */
    ck_assert_int_eq(submit_big(s, l, 100, 1), 0);     /* alone */
    ck_assert_int_eq(submit_big(s, l, third, 2), 0);   /* open */
    ck_assert_int_eq(submit_big(s, l, third, 3), 0);
    ck_assert_uint_eq(st->entries_proposed, 1);
    ck_assert_int_eq(submit_big(s, l, third, 4), 0);   /* the open entry goes first */
    ck_assert_uint_eq(st->entries_proposed, 2);
    ck_assert_uint_eq(st->shared_batches, 2);
    ck_assert_int_eq(submit_big(s, l, RAFT_ENTRY_DATA_MAX, 5), RQ_ETOOBIG);
    run_until_answered(s, l, &now, 4);
    ck_assert_uint_eq(st->entries_proposed, 3);
    for (uint64_t c = 1; c <= 4; c++) {
        ck_assert_int_eq(ls->by_cookie[c].error, 0);
        ck_assert_uint_eq(ls->by_cookie[c].base_offset, c - 1);
    }
    sim_destroy(s);
}
END_TEST

int main(void) {
    Suite *su = suite_create("partition_group");
    TCase *tc = tcase_create("partition on raft");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, offsets_duplicates_and_replicas);
    tcase_add_test(tc, reads_below_a_restored_image);
    tcase_add_test(tc, records_past_the_index_bound_are_served);
    tcase_add_test(tc, retention_targets_and_what_the_store_may_drop);
    tcase_add_test(tc, concurrent_batches_share_one_entry);
    tcase_add_test(tc, expired_records_are_read_as_placeholders);
    tcase_add_test(tc, delayed_messages_are_released_after_their_time_across_a_leader_crash);
    tcase_add_test(tc, leadership_lost_with_an_open_entry);
    tcase_add_test(tc, a_full_open_entry_is_proposed_at_once);
    tcase_add_test(tc, an_open_entry_stays_within_an_entry_s_bytes);
    suite_add_tcase(su, tc);
    return run_suites(srunner_create(su));
}
