/* raftq-bench cluster — producers and consumers against a running cluster.
 *
 *   raftq-bench cluster --bootstrap HOST:PORT[,...] [--producers N] [--consumers N] [--size BYTES]
 *                       [--messages N | --duration S] [--acks all|1|0] [--partitions P]
 *                       [--rate R] [--inflight N] [--idempotent] [--group] [--timeout S] [--json]
 *
 * One process, one thread. Every producer and every consumer is its own client node
 * (cmd/client_node.h: its own rq_client, connections and node id, as separate processes would
 * have), and all of them are driven by client_node_run_many: a turn of each loop, then one poll
 * over all their epoll instances until a socket, a timer or unwritten output needs one. One
 * rq_client per node because a node's connections carry one client's correlation ids: several
 * clients cannot share them. An extra node (the admin) makes the topic and deletes it at the end.
 *
 * The run:
 *   1. The admin asks the metadata (again from the controller's leader, as raftq does), creates
 *      a topic of its own (bench-<pid>-<ms>, P partitions, replication min(3, brokers)) and asks
 *      again every BENCH_POLL_MS until every partition has a leader, so that elections are not
 *      measured.
 *   2. The producers and consumers start. Producer i sends its share of --messages (or for
 *      --duration seconds) with no key (round-robin over partitions); consumer j reads the
 *      partitions p with p % consumers == j from offset 0, as a consumer group would split them
 *      (no fan-out: each message is consumed once; consumers beyond P read nothing). With
 *      --group the consumers are instead members of one queue consumer group (client/group.c,
 *      sticky assignment) starting at the beginning: the coordinator splits the partitions, and
 *      joining, claiming and committing are part of what is measured.
 *      --inflight N bounds each producer's messages sent and not yet answered; --inflight 1 is a
 *      synchronous producer (each message waits for the previous one's acknowledgement).
 *   3. Production ends; the consumers drain until they have read every acknowledged message (or
 *      BENCH_DRAIN_IDLE_MS passes with nothing read: acks=0 may lose messages).
 *
 * Time of a message. Its value starts with its send time (CLOCK_MONOTONIC, this process's clock
 * for producers and consumers alike), and its produce token is that time too. With --rate the
 * send time is its SCHEDULED time (start + k / per-producer rate), not the moment the library took
 * it, so that a producer held back by backpressure counts the wait in its latency instead of
 * hiding it (coordinated omission). Without --rate it is the moment rq_client_produce took it.
 *   produce-to-ack latency = produced() callback time - send time (acks=0: until it was sent),
 *   end-to-end latency     = fetched() callback time - send time.
 * Throughput: acknowledged messages (and their value bytes, MB = 10^6) over the time from the
 * first message taken to the last acknowledgement.
 * Percentiles are exact: samples are kept (at most BENCH_SAMPLES_MAX of each kind; later ones
 * are counted, not kept), sorted, and the p-th is the sample of rank ceil(p * count) (nearest
 * rank). Speeds are measurements, never pass/fail. */
#define _GNU_SOURCE
#include "cmd/bench_cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "cmd/client_node.h"
#include "proto/msg.h"
#include "raft/msg.h"
#include "shim/wallclock.h"

enum {
    BENCH_AGENTS_MAX = 64,      /* --producers, --consumers, each */
    BENCH_PARTITIONS_MAX = 256, /* CLIENT_SUBSCRIPTIONS_MAX: one consumer may read them all */
    BENCH_SIZE_MIN = 8,         /* the send time */
    BENCH_SIZE_MAX = 32 * 1024, /* a batch of one must fit BENCH_ENTRY_BUDGET */
    /* A batch becomes one Raft entry at the leader (RAFT_ENTRY_DATA_MAX, 64 KiB), but the
     * library's default batch_bytes_max is 256 KiB: a batch over the entry's size fails with
     * RQ_ETOOBIG. So batches are kept under this budget, counting each record's encoding
     * overhead at RECORD_OVERHEAD_MAX (varint lengths and deltas; generous). */
    BENCH_ENTRY_BUDGET = 56 * 1024,
    RECORD_OVERHEAD_MAX = 40,
    BENCH_SAMPLES_MAX = 4 * 1000 * 1000,
    BENCH_MESSAGES_MAX = 1000 * 1000 * 1000,
    BENCH_DURATION_MAX_S = 3600,
    BENCH_RATE_MAX = 10 * 1000 * 1000,
    BENCH_INFLIGHT_MAX = 1000 * 1000,
    BENCH_PRODUCE_PER_TURN_MAX = 4096, /* messages one producer offers per tick or ack */
    BENCH_TICK_MS = 10,                /* as fast as possible: the acks pace the producers */
    BENCH_TICK_MS_RATE = 1,            /* --rate: the schedule's granularity */
    BENCH_POLL_MS = 100,               /* the admin's metadata questions while setting up */
    BENCH_WAIT_MS_MAX = 100,           /* one wait of the driver (signal latency) */
    BENCH_DRAIN_IDLE_MS = 5000,
    BENCH_DELETE_WAIT_MS = 3000,
    BENCH_TIMEOUT_S_DEFAULT = 30,
    BENCH_NODES_MAX = 2 * BENCH_AGENTS_MAX + 1,
    TOKEN_DESCRIBE = 1,
    TOKEN_CREATE = 2,
    TOKEN_DELETE = 3,
};
_Static_assert((int)BENCH_NODES_MAX <= (int)CLIENT_NODE_MANY_MAX, "one driver for all nodes");
_Static_assert((int)BENCH_PARTITIONS_MAX <= (int)CLIENT_SUBSCRIPTIONS_MAX, "a consumer reads all");
_Static_assert((int)BENCH_ENTRY_BUDGET < (int)RAFT_ENTRY_DATA_MAX, "a batch fits one entry");
_Static_assert((int)BENCH_SIZE_MAX + (int)RECORD_OVERHEAD_MAX <= (int)BENCH_ENTRY_BUDGET,
               "a batch of one record fits");

#define MS       ((uint64_t)1000 * 1000)
#define NS_PER_S 1000000000.0

enum phase {
    PHASE_DESCRIBE = 0, /* waiting for brokers and the controller's leader */
    PHASE_CREATE,       /* the topic's creation asked */
    PHASE_LEADERS,      /* waiting until every partition has a leader */
    PHASE_START,        /* the driver opens the producers and consumers */
    PHASE_RUN,
    PHASE_DRAIN, /* production over, consumers reading what is left */
    PHASE_DELETE,
    PHASE_DONE,
};

struct options {
    char bootstrap[CLIENT_NODE_BOOTSTRAP_MAX][CLIENT_NODE_ADDRESS_MAX];
    uint32_t bootstrap_count;
    uint32_t producers, consumers, size, partitions;
    uint64_t messages;   /* 0: --duration */
    uint64_t duration_s; /* 0: --messages */
    uint64_t rate;       /* messages/s over all producers, 0: as fast as possible */
    uint64_t inflight;   /* per producer, messages taken and not yet answered; 0: no bound */
    uint64_t timeout_s;  /* no progress for this long: the run fails */
    uint8_t acks;
    int idempotent, json, group;
};

struct samples {
    uint64_t *ns;
    uint64_t count, cap, dropped;
};

struct bench;

struct agent {
    struct bench *b;
    struct client_node node;
    int producer;
    uint32_t index;
    /* producer */
    uint64_t quota; /* messages to send (UINT64_MAX with --duration) */
    uint64_t taken, reported, acked, failed;
    double per_ns; /* messages per ns of this producer with --rate, else 0 */
    uint64_t start_ns;
    /* consumer */
    uint64_t consumed;
};

struct bench {
    struct options o;
    enum phase phase;
    int exit_code;
    int first_error; /* of a message */
    const char *failure;
    char topic[64];
    uint32_t broker_count, replication;
    int described_by_leader;
    struct agent admin;
    struct agent *agents; /* producers, then consumers */
    uint32_t agent_count;
    uint8_t *payload;
    struct samples ack, e2e;
    uint64_t first_taken_ns, last_ack_ns, run_end_ns; /* run_end_ns: --duration */
    uint64_t progress_ns, phase_ns;
};

static volatile sig_atomic_t stop_signal;
static void on_signal(int sig) { stop_signal = sig; }

static uint64_t now(void) { return rq_shim_monotonic_ns(); }

static struct proto_bytes topic_bytes(const struct bench *b) {
    return (struct proto_bytes){(const uint8_t *)b->topic, (uint32_t)strlen(b->topic)};
}

static void fail(struct bench *b, const char *what, int error) {
    if (b->phase == PHASE_DONE) return;
    fprintf(stderr, "raftq-bench cluster: %s: %s\n", what, error ? rq_strerror(error) : "failed");
    b->failure = what;
    b->exit_code = 1;
    b->phase = PHASE_DONE;
}

static void set_phase(struct bench *b, enum phase p) {
    b->phase = p;
    b->phase_ns = now();
    b->progress_ns = b->phase_ns;
}

static void sample_add(struct samples *s, uint64_t ns) {
    if (s->count == s->cap) {
        s->dropped++;
        return;
    }
    s->ns[s->count++] = ns;
}

/* ---- the admin: topic, leaders, deletion ----------------------------------------------------- */

static int topic_ready(const struct bench *b, const struct proto_metadata_resp *m) {
    size_t cursor = 0;
    struct proto_topic t;
    struct proto_bytes want = topic_bytes(b);
    while (proto_topic_next(m, &cursor, &t)) {
        if (t.error != 0 || t.name.size != want.size || memcmp(t.name.data, want.data, want.size))
            continue;
        if (t.partition_count != b->o.partitions) return 0;
        size_t pc = 0;
        struct proto_partition p;
        uint32_t led = 0;
        while (proto_partition_next(&t, &pc, &p))
            led += p.leader != 0;
        return led == b->o.partitions;
    }
    return 0;
}

static void topic_create(struct bench *b) {
    b->replication = b->broker_count < 3 ? b->broker_count : 3;
    struct proto_create_topic_req req = {
        .name = topic_bytes(b),
        .partitions = b->o.partitions,
        .replication = b->replication,
        .retention_ms = 0, /* forever: the run's own data, deleted at the end */
        .max_message_bytes = b->o.size < 1024 * 1024 ? 1024 * 1024 : b->o.size,
    };
    int rc = rq_client_create_topic(b->admin.node.c, &req, TOKEN_CREATE);
    if (rc != 0) return fail(b, "topic create", rc);
    set_phase(b, PHASE_CREATE);
}

static void on_described(void *arg, uint64_t token, const struct proto_metadata_resp *m) {
    struct agent *a = arg;
    struct bench *b = a->b;
    RQ_ASSERT(token == TOKEN_DESCRIBE);
    b->progress_ns = now();
    if (b->phase == PHASE_DESCRIBE && m->broker_count > 0) {
        b->broker_count = m->broker_count;
        /* Any server answers from its replica of the controller's state; ask its leader once
         * more (its address was learnt from this answer), as raftq does. */
        if (!b->described_by_leader && m->controller != 0) {
            b->described_by_leader = 1;
            if (rq_client_describe(a->node.c, TOKEN_DESCRIBE) == 0) return;
        }
        return topic_create(b);
    }
    if (b->phase == PHASE_LEADERS && topic_ready(b, m)) set_phase(b, PHASE_START);
}

static void on_admin_done(void *arg, uint64_t token, int error) {
    struct agent *a = arg;
    struct bench *b = a->b;
    b->progress_ns = now();
    if (token == TOKEN_CREATE && b->phase == PHASE_CREATE) {
        if (error != 0) return fail(b, "topic create", error);
        return set_phase(b, PHASE_LEADERS);
    }
    if (token == TOKEN_DELETE && b->phase == PHASE_DELETE) {
        if (error != 0) fprintf(stderr, "raftq-bench cluster: topic %s not deleted\n", b->topic);
        b->phase = PHASE_DONE;
    }
    /* A describe that failed: the admin's tick asks again. */
}

static void admin_start(void *arg) {
    struct agent *a = arg;
    int rc = rq_client_describe(a->node.c, TOKEN_DESCRIBE);
    RQ_ASSERT(rc == 0); /* the first admin operation always finds a free slot */
}

/* Asks the metadata again while setting up (a describe under way makes this RQ_EBUSY, fine). */
static void admin_tick(void *arg) {
    struct agent *a = arg;
    struct bench *b = a->b;
    if (b->phase != PHASE_DESCRIBE && b->phase != PHASE_LEADERS) return;
    if (now() - b->phase_ns < BENCH_POLL_MS * MS) return;
    b->phase_ns = now();
    (void)rq_client_describe(a->node.c, TOKEN_DESCRIBE);
}

/* ---- producers ------------------------------------------------------------------------------- */

/* The send time of the producer's next message: its scheduled time with --rate (see the top). */
static uint64_t send_time(const struct agent *a, uint64_t t) {
    if (a->per_ns == 0) return t;
    return a->start_ns + (uint64_t)((double)a->taken / a->per_ns);
}

static int may_send(const struct agent *a, uint64_t t) {
    const struct bench *b = a->b;
    if (b->phase != PHASE_RUN || a->taken >= a->quota) return 0;
    if (b->run_end_ns != 0 && t >= b->run_end_ns) return 0;
    if (b->o.inflight != 0 && a->taken - a->reported >= b->o.inflight) return 0;
    if (a->per_ns == 0) return 1;
    return (double)(t - a->start_ns) * a->per_ns >= (double)a->taken; /* due by the schedule */
}

static void produce_some(struct agent *a) {
    struct bench *b = a->b;
    uint64_t t = now();
    if (a->start_ns == 0) a->start_ns = t;
    for (uint32_t i = 0; i < BENCH_PRODUCE_PER_TURN_MAX && may_send(a, t); i++) {
        uint64_t sent_ns = send_time(a, t);
        memcpy(b->payload, &sent_ns, sizeof sent_ns); /* copied by produce */
        struct proto_bytes value = {b->payload, b->o.size};
        int rc = rq_client_produce(a->node.c, topic_bytes(b), (struct proto_bytes){NULL, 0}, value,
                                   NULL, 0, sent_ns, sent_ns);
        if (rc == RQ_EBUSY) return; /* backpressure (or no metadata yet): at the next ack/tick */
        if (rc != 0) return fail(b, "produce", rc);
        if (b->first_taken_ns == 0) b->first_taken_ns = t;
        a->taken++;
    }
}

static void on_produced(void *arg, uint64_t token, uint32_t partition, int error, uint64_t offset) {
    struct agent *a = arg;
    struct bench *b = a->b;
    (void)partition, (void)offset;
    uint64_t t = now();
    a->reported++;
    b->progress_ns = t;
    if (error != 0) {
        if (b->first_error == 0) /* the rest are counted: one line, not thousands */
            fprintf(stderr, "raftq-bench cluster: a message failed: %s\n", rq_strerror(error));
        if (b->first_error == 0) b->first_error = error;
        a->failed++;
    } else {
        a->acked++;
        b->last_ack_ns = t;
        sample_add(&b->ack, t - token);
    }
    produce_some(a); /* room in the batcher again */
}

static void producer_tick(void *arg) { produce_some(arg); }

/* ---- consumers ------------------------------------------------------------------------------- */

static void consumer_start(void *arg) {
    struct agent *a = arg;
    struct bench *b = a->b;
    if (b->o.group) {   /* the coordinator splits the partitions */
        struct rq_group_config g = {.group = topic_bytes(b), .topic = topic_bytes(b),
                                    .mode = PROTO_MODE_QUEUE, .strategy = PROTO_STRATEGY_STICKY,
                                    .session_ms = 10000, .commit_every_ns = 1000 * MS};
        int rc = rq_client_join_group(a->node.c, &g);
        if (rc != 0) fail(b, "join the group", rc);
        return;
    }
    for (uint32_t p = a->index; p < b->o.partitions; p += b->o.consumers) {
        int rc = rq_client_subscribe(a->node.c, topic_bytes(b), p, 0);
        if (rc != 0) return fail(b, "subscribe", rc);
    }
}

static void consumer_tick(void *arg) { (void)arg; }

static void on_fetched(void *arg, struct proto_bytes topic, uint32_t partition,
                       const struct proto_record *r) {
    struct agent *a = arg;
    struct bench *b = a->b;
    (void)topic, (void)partition;
    uint64_t t = now(), sent_ns;
    if (r->value.size < sizeof sent_ns) return fail(b, "consume: a message not of this run", 0);
    memcpy(&sent_ns, r->value.data, sizeof sent_ns);
    a->consumed++;
    b->progress_ns = t;
    sample_add(&b->e2e, t - sent_ns);
}

static void on_group_error(void *arg, int error) {
    struct agent *a = arg;
    if (error != 0) fail(a->b, "consumer group", error);
}

static void on_fetch_error(void *arg, struct proto_bytes topic, uint32_t partition, int error,
                           uint64_t position, uint64_t log_start, uint64_t high_watermark) {
    struct agent *a = arg;
    (void)high_watermark;
    if (error == RQ_ERANGE && position < log_start) {
        rq_client_seek(a->node.c, topic, partition, log_start);
        return;
    }
    fail(a->b, "consume", error);
}

/* ---- the nodes ------------------------------------------------------------------------------- */

static const struct rq_client_callbacks CALLBACKS = {.produced = on_produced,
                                                     .fetched = on_fetched,
                                                     .fetch_error = on_fetch_error,
                                                     .admin_done = on_admin_done,
                                                     .described = on_described,
                                                     .group_error = on_group_error};
static const struct client_node_hooks ADMIN_HOOKS = {.start = admin_start, .tick = admin_tick};
static void nothing(void *arg) { (void)arg; }
static const struct client_node_hooks PRODUCER_HOOKS = {.start = nothing, .tick = producer_tick};
static const struct client_node_hooks CONSUMER_HOOKS = {.start = consumer_start,
                                                        .tick = consumer_tick};

static int agent_open(struct bench *b, struct agent *a, const struct client_node_hooks *hooks,
                      uint32_t node_index) {
    static struct client_node_config c;
    memset(&c, 0, sizeof c);
    c.name = "raftq-bench";
    memcpy(c.bootstrap, b->o.bootstrap, sizeof c.bootstrap);
    c.bootstrap_count = b->o.bootstrap_count;
    rq_client_config_default(&c.client);
    c.client.acks = b->o.acks;
    c.client.idempotent = (uint8_t)b->o.idempotent;
    uint32_t records = BENCH_ENTRY_BUDGET / (b->o.size + RECORD_OVERHEAD_MAX);
    if (records > c.client.batcher.batch_records_max) records = c.client.batcher.batch_records_max;
    RQ_ASSERT(records >= 1);
    c.client.batcher.batch_records_max = records;
    c.client.batcher.batch_bytes_max = records * b->o.size;
    if (b->o.idempotent && c.client.batcher.in_flight_max > CLIENT_IDEMPOTENT_IN_FLIGHT_MAX)
        c.client.batcher.in_flight_max = CLIENT_IDEMPOTENT_IN_FLIGHT_MAX;
    c.callbacks = &CALLBACKS;
    c.hooks = hooks;
    c.arg = a;
    c.tick_ms = a->producer && b->o.rate ? BENCH_TICK_MS_RATE : BENCH_TICK_MS;
    c.index = node_index;
    a->b = b;
    return client_node_open(&a->node, &c);
}

/* Opens the producers and consumers (between turns of the driver, not inside a callback). */
static int agents_open(struct bench *b) {
    uint32_t np = b->o.producers, count = np + b->o.consumers;
    b->agents = calloc(count, sizeof *b->agents);
    if (b->agents == NULL) return RQ_ENOMEM;
    uint64_t total = b->o.messages;
    for (uint32_t i = 0; i < count; i++) {
        struct agent *a = &b->agents[i];
        a->producer = i < np;
        a->index = a->producer ? i : i - np;
        a->quota = total == 0 ? UINT64_MAX : total / np + (i < total % np);
        if (a->producer && b->o.rate) a->per_ns = (double)b->o.rate / np / NS_PER_S;
        int rc = agent_open(b, a, a->producer ? &PRODUCER_HOOKS : &CONSUMER_HOOKS, i + 1);
        if (rc != 0) return rc;
        b->agent_count++; /* opened: closed at the end */
    }
    if (b->o.duration_s) b->run_end_ns = now() + b->o.duration_s * 1000 * MS;
    return 0;
}

/* ---- the run --------------------------------------------------------------------------------- */

struct totals {
    uint64_t taken, reported, acked, failed, consumed;
};

static void totals_get(const struct bench *b, struct totals *t) {
    memset(t, 0, sizeof *t);
    for (uint32_t i = 0; i < b->agent_count; i++) {
        const struct agent *a = &b->agents[i];
        t->taken += a->taken;
        t->reported += a->reported;
        t->acked += a->acked;
        t->failed += a->failed;
        t->consumed += a->consumed;
    }
}

static int producers_done(const struct bench *b) {
    for (uint32_t i = 0; i < b->o.producers; i++) {
        const struct agent *a = &b->agents[i];
        int more = a->taken < a->quota && !(b->run_end_ns != 0 && now() >= b->run_end_ns);
        if (more || a->reported < a->taken) return 0;
    }
    return 1;
}

static void start_delete(struct bench *b) {
    set_phase(b, PHASE_DELETE);
    if (rq_client_delete_topic(b->admin.node.c, topic_bytes(b), TOKEN_DELETE) != 0)
        b->phase = PHASE_DONE;
}

/* The phase changes the driver makes between turns. */
static void advance(struct bench *b) {
    if (b->phase == PHASE_START) {
        int rc = agents_open(b);
        if (rc != 0) return fail(b, "opening the producers and consumers", rc);
        return set_phase(b, PHASE_RUN);
    }
    if (b->phase == PHASE_RUN && producers_done(b)) set_phase(b, PHASE_DRAIN);
    if (b->phase == PHASE_DRAIN) {
        struct totals t;
        totals_get(b, &t);
        int idle = now() - b->progress_ns >= BENCH_DRAIN_IDLE_MS * MS;
        if (b->o.consumers == 0 || t.consumed >= t.acked || idle) start_delete(b);
        return;
    }
    if (b->phase == PHASE_DELETE && now() - b->phase_ns >= BENCH_DELETE_WAIT_MS * MS)
        b->phase = PHASE_DONE; /* not deleted in time: the topic stays, which harms nothing */
    if (b->phase < PHASE_DELETE && now() - b->progress_ns >= b->o.timeout_s * 1000 * MS) {
        static const char *const stuck[] = {
            [PHASE_DESCRIBE] = "no progress asking for the metadata",
            [PHASE_CREATE] = "no progress creating the topic",
            [PHASE_LEADERS] = "no progress waiting for the partitions' leaders",
            [PHASE_START] = "no progress starting",
            [PHASE_RUN] = "no progress producing",
            [PHASE_DRAIN] = "no progress consuming what was produced"};
        fail(b, b->admin.node.answers == 0 ? "no server answered" : stuck[b->phase], RQ_ETIMEOUT);
    }
}

static int drive(struct bench *b) {
    struct client_node *nodes[BENCH_NODES_MAX];
    while (b->phase != PHASE_DONE) {
        if (stop_signal) {
            fail(b, "interrupted", 0);
            break;
        }
        uint32_t count = 0, failed = 0;
        nodes[count++] = &b->admin.node;
        for (uint32_t i = 0; i < b->agent_count; i++)
            nodes[count++] = &b->agents[i].node;
        if (client_node_run_many(nodes, count, BENCH_WAIT_MS_MAX, &failed) != 0) {
            fprintf(stderr, "raftq-bench cluster: %s\n", nodes[failed]->loop.halt_reason);
            fail(b, "a client node stopped", 0);
            break;
        }
        advance(b);
    }
    return b->exit_code;
}

/* ---- the report ------------------------------------------------------------------------------ */

static int compare_u64(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* Nearest rank in tenths of a percent (500: median, 999: p99.9), samples sorted ascending. */
static double percentile_us(const struct samples *s, uint32_t p) {
    if (s->count == 0) return 0;
    uint64_t rank = (s->count * p + 999) / 1000;
    if (rank == 0) rank = 1;
    return (double)s->ns[rank - 1] / 1e3;
}

static void print_latency_json(const char *name, const struct samples *s) {
    printf(",\"%s\":{\"samples\":%" PRIu64 ",\"dropped\":%" PRIu64
           ",\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}",
           name, s->count, s->dropped, percentile_us(s, 500), percentile_us(s, 990),
           percentile_us(s, 999), s->count ? (double)s->ns[s->count - 1] / 1e3 : 0);
}

static void print_latency(const char *name, const struct samples *s) {
    printf("  %-14s p50 %9.0f us  p99 %9.0f us  p99.9 %9.0f us  max %9.0f us  (%" PRIu64
           " samples%s)\n",
           name, percentile_us(s, 500), percentile_us(s, 990), percentile_us(s, 999),
           s->count ? (double)s->ns[s->count - 1] / 1e3 : 0, s->count,
           s->dropped ? ", more not kept" : "");
}

static const char *acks_name(uint8_t acks) {
    return acks == PROTO_ACKS_ALL ? "all" : acks == PROTO_ACKS_LEADER ? "1" : "0";
}

static void report(struct bench *b) {
    struct totals t;
    totals_get(b, &t);
    double s = b->last_ack_ns > b->first_taken_ns
                   ? (double)(b->last_ack_ns - b->first_taken_ns) / NS_PER_S
                   : 0;
    double rate = s > 0 ? (double)t.acked / s : 0;
    double mb = s > 0 ? (double)t.acked * b->o.size / 1e6 / s : 0;
    qsort(b->ack.ns, b->ack.count, sizeof *b->ack.ns, compare_u64);
    qsort(b->e2e.ns, b->e2e.count, sizeof *b->e2e.ns, compare_u64);
    const struct options *o = &b->o;
    if (o->json) {
        printf("{\"bench\":\"cluster\",\"topic\":\"%s\",\"brokers\":%u,\"partitions\":%u,"
               "\"replication\":%u,\"producers\":%u,\"consumers\":%u,\"size\":%u,\"acks\":\"%s\","
               "\"idempotent\":%s,\"group\":%s,\"rate\":%" PRIu64 ",\"inflight\":%" PRIu64
               ",\"seconds\":%.3f,\"acked\":%" PRIu64
               ",\"failed\":%" PRIu64 ",\"consumed\":%" PRIu64 ",\"msgs_per_s\":%.1f,"
               "\"mb_per_s\":%.3f",
               b->topic, b->broker_count, o->partitions, b->replication, o->producers, o->consumers,
               o->size, acks_name(o->acks), o->idempotent ? "true" : "false",
               o->group ? "true" : "false", o->rate,
               o->inflight, s, t.acked, t.failed, t.consumed, rate, mb);
        print_latency_json("produce_ack", &b->ack);
        print_latency_json("end_to_end", &b->e2e);
        printf("}\n");
        return;
    }
    printf("raftq-bench cluster: topic %s (%u partitions, replication %u of %u brokers), %u "
           "producers, %u consumers%s, %u B messages, acks=%s%s, rate %" PRIu64 " msg/s%s, "
           "in flight per producer %" PRIu64 "%s\n",
           b->topic, o->partitions, b->replication, b->broker_count, o->producers, o->consumers,
           o->group ? " (one consumer group)" : "", o->size, acks_name(o->acks),
           o->idempotent ? " idempotent" : "", o->rate,
           o->rate ? "" : " (as fast as possible)", o->inflight,
           o->inflight == 0 ? " (no bound)" : "");
    printf("  produced %" PRIu64 " acknowledged (%" PRIu64 " failed) in %.2f s: %.0f msg/s, %.1f "
           "MB/s; consumed %" PRIu64 "\n",
           t.acked, t.failed, s, rate, mb, t.consumed);
    print_latency("produce->ack", &b->ack);
    print_latency("end-to-end", &b->e2e);
}

/* ---- arguments ------------------------------------------------------------------------------- */

static int usage(void) {
    fprintf(stderr,
            "usage: raftq-bench cluster --bootstrap HOST:PORT[,HOST:PORT...] [--producers N]\n"
            "         [--consumers N] [--size BYTES] [--messages N | --duration S]\n"
            "         [--acks all|1|0] [--partitions P] [--rate R] [--inflight N]\n"
            "         [--idempotent] [--group] [--timeout S] [--json]\n"
            "  --producers N, --consumers N  client nodes, 0..%d each (default 1, 1; >= 1 "
            "producer)\n"
            "  --size BYTES     value of a message, %d..%d (default 1024)\n"
            "  --messages N     messages over all producers (default 100000), or\n"
            "  --duration S     produce for S seconds\n"
            "  --acks           default all; --idempotent needs all\n"
            "  --partitions P   of the run's own topic, 1..%d (default 1)\n"
            "  --rate R         messages/s over all producers, 0 = as fast as possible (default)\n"
            "  --inflight N     per producer, messages sent and not yet answered, 0..%d; 0 = no\n"
            "                   bound (default); 1 = a synchronous producer\n"
            "  --group          consumers are members of one queue consumer group (the\n"
            "                   coordinator assigns partitions; claims and commits included)\n"
            "  --timeout S      no progress for S seconds fails the run (default %d)\n"
            "  --json           one JSON object instead of the text\n",
            BENCH_AGENTS_MAX, BENCH_SIZE_MIN, BENCH_SIZE_MAX, BENCH_PARTITIONS_MAX,
            BENCH_INFLIGHT_MAX, BENCH_TIMEOUT_S_DEFAULT);
    return 2;
}

/* 0, or -1 after naming the flag on stderr. */
static int parse_u64(const char *s, uint64_t lo, uint64_t hi, const char *what, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "raftq-bench cluster: %s takes %" PRIu64 "..%" PRIu64 "\n", what, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bootstrap(struct options *o, const char *arg) {
    char buf[CLIENT_NODE_BOOTSTRAP_MAX * CLIENT_NODE_ADDRESS_MAX];
    if (strlen(arg) >= sizeof buf) return -1;
    strcpy(buf, arg);
    o->bootstrap_count = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->bootstrap_count == CLIENT_NODE_BOOTSTRAP_MAX) return -1;
        if (strlen(tok) >= CLIENT_NODE_ADDRESS_MAX || strchr(tok, ':') == NULL) return -1;
        strcpy(o->bootstrap[o->bootstrap_count++], tok);
    }
    return o->bootstrap_count > 0 ? 0 : -1;
}

static int parse_acks(struct options *o, const char *v) {
    if (strcmp(v, "all") == 0 || strcmp(v, "-1") == 0)
        o->acks = PROTO_ACKS_ALL;
    else if (strcmp(v, "1") == 0)
        o->acks = PROTO_ACKS_LEADER;
    else if (strcmp(v, "0") == 0)
        o->acks = PROTO_ACKS_NONE;
    else
        return -1;
    return 0;
}

/* One flag with its value. 0, or -1 (bad value, named on stderr). */
static int parse_flag(struct options *o, const char *f, const char *v) {
    uint64_t n = 0;
    int rc = -1;
    if (strcmp(f, "--bootstrap") == 0)
        rc = parse_bootstrap(o, v);
    else if (strcmp(f, "--acks") == 0)
        rc = parse_acks(o, v);
    else if (strcmp(f, "--producers") == 0 && !(rc = parse_u64(v, 1, BENCH_AGENTS_MAX, f, &n)))
        o->producers = (uint32_t)n;
    else if (strcmp(f, "--consumers") == 0 && !(rc = parse_u64(v, 0, BENCH_AGENTS_MAX, f, &n)))
        o->consumers = (uint32_t)n;
    else if (strcmp(f, "--size") == 0 &&
             !(rc = parse_u64(v, BENCH_SIZE_MIN, BENCH_SIZE_MAX, f, &n)))
        o->size = (uint32_t)n;
    else if (strcmp(f, "--partitions") == 0 && !(rc = parse_u64(v, 1, BENCH_PARTITIONS_MAX, f, &n)))
        o->partitions = (uint32_t)n;
    else if (strcmp(f, "--messages") == 0)
        rc = parse_u64(v, 1, BENCH_MESSAGES_MAX, f, &o->messages);
    else if (strcmp(f, "--duration") == 0)
        rc = parse_u64(v, 1, BENCH_DURATION_MAX_S, f, &o->duration_s);
    else if (strcmp(f, "--rate") == 0)
        rc = parse_u64(v, 0, BENCH_RATE_MAX, f, &o->rate);
    else if (strcmp(f, "--inflight") == 0)
        rc = parse_u64(v, 0, BENCH_INFLIGHT_MAX, f, &o->inflight);
    else if (strcmp(f, "--timeout") == 0)
        rc = parse_u64(v, 1, BENCH_DURATION_MAX_S, f, &o->timeout_s);
    if (rc != 0) fprintf(stderr, "raftq-bench cluster: bad %s '%s'\n", f, v);
    return rc;
}

static int parse(struct options *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->producers = 1, o->consumers = 1, o->size = 1024, o->partitions = 1;
    o->acks = PROTO_ACKS_ALL;
    o->timeout_s = BENCH_TIMEOUT_S_DEFAULT;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            o->json = 1;
        else if (strcmp(argv[i], "--idempotent") == 0)
            o->idempotent = 1;
        else if (strcmp(argv[i], "--group") == 0)
            o->group = 1;
        else if (i + 1 < argc && strncmp(argv[i], "--", 2) == 0) {
            if (parse_flag(o, argv[i], argv[i + 1]) != 0) return -1;
            i++;
        } else
            return -1;
    }
    const char *bad = o->bootstrap_count == 0        ? "--bootstrap is required"
                      : o->messages && o->duration_s ? "--messages or --duration, not both"
                      : o->idempotent && o->acks != PROTO_ACKS_ALL ? "--idempotent needs --acks all"
                                                                   : NULL;
    if (bad) fprintf(stderr, "raftq-bench cluster: %s\n", bad);
    if (bad) return -1;
    if (o->messages == 0 && o->duration_s == 0) o->messages = 100000;
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

static int setup(struct bench *b) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) return RQ_EIO;
    snprintf(b->topic, sizeof b->topic, "bench-%d-%" PRIu64, (int)getpid(), now() / MS);
    uint64_t cap = b->o.messages ? b->o.messages : BENCH_SAMPLES_MAX;
    if (cap > BENCH_SAMPLES_MAX) cap = BENCH_SAMPLES_MAX;
    b->ack = (struct samples){.ns = calloc(cap, sizeof(uint64_t)), .cap = cap};
    b->e2e = (struct samples){.ns = calloc(cap, sizeof(uint64_t)), .cap = cap};
    b->payload = calloc(1, b->o.size);
    if (!b->ack.ns || !b->e2e.ns || !b->payload) return RQ_ENOMEM;
    for (uint32_t i = 0; i < b->o.size; i++)
        b->payload[i] = (uint8_t)(i * 31 + 7); /* not all zeros: nothing is compressed anyway */
    set_phase(b, PHASE_DESCRIBE);
    b->admin.index = 0;
    return agent_open(b, &b->admin, &ADMIN_HOOKS, 0);
}

int bench_cluster_main(int argc, char **argv) {
    static struct bench b;
    if (parse(&b.o, argc, argv) != 0) return usage();
    rq_log_set_sink(shim_log_stderr, NULL);
    rq_log_set_level(RQ_LOG_ERROR);
    int rc = setup(&b);
    if (rc != 0) {
        fprintf(stderr, "raftq-bench cluster: cannot start: %s\n", rq_strerror(rc));
        return 1;
    }
    int code = drive(&b);
    if (code == 0) report(&b);
    for (uint32_t i = 0; i < b.agent_count; i++)
        client_node_close(&b.agents[i].node);
    client_node_close(&b.admin.node);
    free(b.agents);
    free(b.ack.ns);
    free(b.e2e.ns);
    free(b.payload);
    return code;
}
