/* The mq workload: raftq as a message queue, under every fault the simulator injects.
 *
 * Servers are brokers (node/broker.h), every one a controller node. Clients run the client
 * library (client/client.h) unchanged: client 0 creates the topic "mq" (1..4 partitions,
 * replication min(3, servers)); even clients produce, odd clients consume. Each producer draws
 * its acks (0, 1 or all) and, with acks=all, idempotence; each consumer draws whether it reads
 * from followers, and every 1..4 s goes back to an earlier offset of one partition and reads on
 * from there in a new session. A message is known by its content: its value names its producer, the
 * producer's incarnation and its number, padded to a drawn length, and its digest covers key and
 * value. One seed in three gives the topic retention (a size limit of 4..32 KiB per partition, a
 * time limit of 0.5..4 s, or both) and the servers 128 KiB segments, so that records are deleted
 * and stored logs compacted while consumers read: a consumer told it is below the log start
 * moves there in a new session. With 4 or more servers, one seed in two decommissions a broker
 * (client 0 asks the controller, at a drawn moment): its replicas move to the others while
 * records are produced and read; brokers that register after the topic exists join the same way.
 * By the end every partition's replica set must be its target, and the decommissioned broker in
 * none.
 * One seed in two adds consumer group members after the first four clients (sim/mq_group.c).
 *
 * Checkers (sim/mqcheck.h), on the whole history:
 *   - every replica's applied records (the broker's observer) and every consumer's reads must put
 *     one message at each offset (inconsistent offsets, replicas agreeing byte for byte);
 *   - each consumer session reads each partition in offset order, without skipping;
 *   - an idempotent producer's message sits at one offset only (no duplicates);
 *   - every acks=all acknowledgement is found at its offset by the end (no lost write);
 *   - a consumer sent to the log start skips only what some replica's RETAIN deleted, and no log
 *     start moves in a run without retention.
 * Liveness after the heal: every server restarts from its disk (power loss), and then every
 * producer with acks gets a new acknowledgement and every consumer reads a new message; producers
 * stop halfway through the heal window, and by the end every consumer has read every partition
 * to the end of the committed log. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/rng.h"
#include "broker/partition.h"
#include "client/client.h"
#include "meta/controller.h"
#include "node/broker.h"
#include "sim/brokernode.h"
#include "sim/mq.h"
#include "sim/mq_internal.h"

/* ---- messages: content from (client, incarnation, number) ------------------------------------- */

uint64_t mq_digest_of(struct proto_bytes key, struct proto_bytes value) {
    uint32_t a = rq_crc32c(0, key.data, key.size);
    a = rq_crc32c(a, value.data, value.size);
    uint32_t b = rq_crc32c(0x9E3779B9u, value.data, value.size);
    return ((uint64_t)a << 32 | b) | 1;   /* never 0: mqcheck's "nothing seen" */
}

/* The message's key (empty for one in four: round-robin) and value. */
static void message_of(uint32_t client, uint32_t incarnation, uint64_t n, char *key,
                       uint32_t *key_size, char *value, uint32_t *value_size) {
    uint64_t h = (uint64_t)rq_crc32c(client * 31 + incarnation, &n, sizeof n);
    *key_size = h % 4 == 0 ? 0 : (uint32_t)snprintf(key, 16, "k%" PRIu64, h % 37);
    int len = snprintf(value, MQ_VALUE_MAX, "c%" PRIu32 "-i%" PRIu32 "-m%" PRIu64 "-", client,
                       incarnation, n);
    uint32_t pad = (uint32_t)(h >> 8) % MQ_PAD_MAX;
    for (uint32_t i = 0; i < pad; i++) value[len + (int)i] = (char)('a' + (h + i) % 26);
    *value_size = (uint32_t)len + pad;
}

/* Who produced a read message, for the duplicate check: (client, incarnation) and its number, or
 * producer 0 for a non-idempotent producer (whose retries may duplicate, as documented). */
void mq_origin_of(const struct mq_world *w, struct proto_bytes value, uint64_t *producer,
                      uint64_t *sequence) {
    char text[MQ_VALUE_MAX + 1];
    uint32_t n = value.size < MQ_VALUE_MAX ? value.size : MQ_VALUE_MAX;
    memcpy(text, value.data, n);
    text[n] = '\0';
    uint32_t client, incarnation;
    uint64_t number;
    *producer = 0;
    *sequence = 0;
    if (sscanf(text, "c%" SCNu32 "-i%" SCNu32 "-m%" SCNu64 "-", &client, &incarnation, &number) != 3 ||
        client >= SIM_CLIENTS_MAX || !w->plans[client].idempotent)
        return;
    *producer = (uint64_t)(client + 1) << 32 | incarnation;
    *sequence = number;
}

void mq_fail(struct mq_world *w, const char *what) {
    sim_fail(w->sim, "mq: %s: %s", what, w->why);
}

/* ---- servers ----------------------------------------------------------------------------------- */

static void on_partition_applied(void *arg, uint32_t node, uint32_t group,
                                 const struct raft_entry *e, const struct partition_apply_result *res) {
    struct mq_world *w = arg;
    int cursor_op = res->outcome == PARTITION_CURSOR_DONE || res->outcome == PARTITION_CURSOR_REFUSED;
    if (res->outcome != PARTITION_APPENDED && res->outcome != PARTITION_RETAINED && !cursor_op) return;
    struct broker *b = sim_node(w->sim, node);
    const char *topic;
    uint32_t p;
    RQ_ASSERT(b != NULL && broker_partition_of_group(b, group, &topic, &p));
    RQ_ASSERT(strcmp(topic, "mq") == 0 && p < w->partitions);
    if (cursor_op) {
        mq_groups_applied(w, node, p, e, res);
        return;
    }
    if (res->outcome == PARTITION_RETAINED) {
        w->retains++;
        if (w->retention_bytes == 0 && w->retention_ms == 0) {
            snprintf(w->why, sizeof w->why, "n%" PRIu32 " partition %" PRIu32 ": log start moved to %"
                     PRIu64, node, p, res->base_offset);
            mq_fail(w, "records deleted without retention");
        }
        mqcheck_retained(w->check, p, res->base_offset);
        if (res->base_offset > w->log_starts[p]) w->log_starts[p] = res->base_offset;
        return;
    }
    struct partition_entry pe;
    RQ_ASSERT(partition_entry_decode(e->data, e->data_size, &pe) == 0);
    size_t cursor = 0;
    struct proto_record r;
    for (uint64_t o = res->base_offset; proto_record_next(&pe.records, &cursor, &r); o++) {
        uint64_t producer, sequence;
        mq_origin_of(w, r.value, &producer, &sequence);
        w->replica_records++;
        uint64_t digest = mq_digest_of(r.key, r.value);
        if ((w->bugs & MQ_BUG_REPLICA_SKEW) && node == 1 && o == 2) digest ^= 2;
        if (mqcheck_replica(w->check, p, node, o, digest, producer, sequence, w->why) != 0)
            mq_fail(w, "replicas");
        if (o + 1 > w->ends[p]) w->ends[p] = o + 1;
    }
}

/* ---- clients ----------------------------------------------------------------------------------- *
 *
 * A client process owns one rq_client and its own pace (producing, creating the topic). The
 * process has one timer: the client library's wrapped io records the library's deadline, and the
 * process asks for the earlier of that and its own. */


static void arm(struct mq_client *n) {
    uint64_t at = n->lib_deadline_ns < n->next_action_ns ? n->lib_deadline_ns : n->next_action_ns;
    if (at != UINT64_MAX) n->io->set_timer(n->io->env, at);
}

static uint64_t lib_now(void *env) {
    struct mq_client *n = env;
    return n->io->now(n->io->env);
}
static void lib_set_timer(void *env, uint64_t at_ns) {
    struct mq_client *n = env;
    n->lib_deadline_ns = at_ns;
    arm(n);
}
static void lib_send(void *env, uint32_t to, const void *buf, size_t len) {
    struct mq_client *n = env;
    n->io->send(n->io->env, to, buf, len);
}
static void lib_reply(void *env, uint64_t conn, const void *buf, size_t len) {
    struct mq_client *n = env;
    n->io->reply(n->io->env, conn, buf, len);
}
static void lib_disk(void *env, struct rq_disk_req *req) {
    struct mq_client *n = env;
    n->io->disk(n->io->env, req);
}
static void lib_halt(void *env, const char *why) {
    struct mq_client *n = env;
    n->io->halt(n->io->env, why);
}

static void on_produced(void *arg, uint64_t token, uint32_t partition, int error, uint64_t offset) {
    struct mq_client *n = arg;
    struct mq_world *w = n->w;
    const struct mq_plan *plan = &w->plans[n->index];
    if (error != 0) {
        w->unacked_failures++;
        return;
    }
    if (offset == UINT64_MAX && plan->acks != PROTO_ACKS_NONE) {   /* a delayed one, held */
        w->delayed_held++;
        return;
    }
    if (plan->acks == PROTO_ACKS_NONE) return;
    w->acked++;
    if (w->heal_ns && sim_now(w->sim) >= w->heal_ns) w->acked_after_heal[n->index] = 1;
    if (plan->acks != PROTO_ACKS_ALL) return;   /* acks=1 may be lost on fail-over */
    char key[16], value[MQ_VALUE_MAX];
    uint32_t ks, vs;
    message_of(n->index, n->incarnation, token, key, &ks, value, &vs);
    struct proto_bytes k = {ks ? (const uint8_t *)key : NULL, ks}, v = {(const uint8_t *)value, vs};
    if (w->bugs & MQ_BUG_ACK_WRONG_OFFSET) offset++;
    if (mqcheck_acked(w->check, partition, offset, mq_digest_of(k, v), w->why) != 0)
        mq_fail(w, "acknowledgements");
}

/* The most two servers' clocks disagree now (true time `now`). */
static uint64_t clock_spread(const struct mq_world *w) {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint32_t id = 1; id <= sim_servers(w->sim); id++) {
        uint64_t t = sim_local_time(w->sim, id);
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    return hi - lo;
}

/* A delayed message (the header mq-delay-ms; its timestamp is the true time it was sent) is read
 * no earlier than its delay allows. Its leader released it when its clock passed the accepting
 * leader's clock at append plus the delay: in true time, at least (delay - D) / (1 + rho) after
 * the send, where D is how far the two clocks disagreed and rho the drift bound. D is taken now,
 * so it is widened by how far drift can have moved it since the send (2 rho elapsed). Not
 * judged with --clock-break, whose clocks break the bound on purpose. */
static void check_delayed(struct mq_world *w, const struct proto_record *r) {
    size_t cursor = 0;
    struct proto_header h;
    uint64_t delay_ms = 0;
    while (proto_header_next(r, &cursor, &h))
        if (h.name.size == 11 && memcmp(h.name.data, "mq-delay-ms", 11) == 0)
            for (uint32_t i = 0; i < h.value.size; i++) delay_ms = delay_ms * 10 + (h.value.data[i] - '0');
    if (delay_ms == 0) return;
    w->delayed_read++;
    const struct sim_config *cfg = sim_config(w->sim);
    if (cfg->clock_break) return;
    uint64_t now = sim_now(w->sim), rho = cfg->max_drift_ppm;
    uint64_t elapsed = now > r->timestamp ? now - r->timestamp : 0;
    uint64_t delay = delay_ms * 1000000u;
    if (w->bugs & MQ_BUG_DELAY_EARLY) delay += 10ull * 1000000000u;   /* judged against 10 s more */
    uint64_t slack = clock_spread(w) + 2 * rho * (elapsed / 1000000u) / 1000u + 1000000u;
    uint64_t allowed = delay > slack ? (delay - slack) / (1000000u + rho) * 1000000u : 0;
    if (elapsed >= allowed) return;
    snprintf(w->why, sizeof w->why, "a message delayed %" PRIu64 " ms read %" PRIu64 " ms after it "
             "was sent (clocks %" PRIu64 " us apart)", delay / 1000000u, elapsed / 1000000u,
             clock_spread(w) / 1000u);
    mq_fail(w, "delayed message delivered early");
}

static void on_fetched(void *arg, struct proto_bytes topic, uint32_t partition,
                       const struct proto_record *r) {
    struct mq_client *n = arg;
    struct mq_world *w = n->w;
    RQ_ASSERT(topic.size == MQ_TOPIC.size && partition < w->partitions);
    if (r->header_count > 0) check_delayed(w, r);
    if (w->plans[n->index].member) {
        mq_member_fetched(n, partition, r);
        return;
    }
    uint64_t producer, sequence;
    mq_origin_of(w, r->value, &producer, &sequence);
    w->reads++;
    if ((w->bugs & MQ_BUG_CONSUMER_SKIPS) && r->offset % 20 == 19) return;
    if (w->heal_ns && sim_now(w->sim) >= w->heal_ns) w->read_after_heal[n->index] = 1;
    w->positions[n->index][partition] = r->offset + 1;
    if (mqcheck_read(w->check, partition, n->sessions[partition], r->offset, mq_digest_of(r->key, r->value),
                     producer, sequence, w->why) != 0)
        mq_fail(w, "consumer");
}

/* Moves a consumer's position in partition p to `to`, in a new session. */
static int new_session(struct mq_client *n, uint32_t p, uint64_t to) {
    if (rq_client_seek(n->c, MQ_TOPIC, p, to) != 0) return -1;
    n->seeks++;
    n->sessions[p] = (uint64_t)(n->index + 1) << 32 | (uint64_t)n->incarnation << 16 | n->seeks;
    n->w->positions[n->index][p] = to;
    return 0;
}

static void on_fetch_error(void *arg, struct proto_bytes topic, uint32_t partition, int error,
                           uint64_t position, uint64_t log_start, uint64_t high_watermark) {
    struct mq_client *n = arg;
    struct mq_world *w = n->w;
    (void)topic;
    /* Below the log start: retention deleted the records, the consumer reads on from the log
     * start (as a Kafka consumer with auto.offset.reset=earliest). */
    if (error == RQ_ERANGE && position < log_start) {
        uint64_t to = (w->bugs & MQ_BUG_SKIP_TO_END) ? high_watermark : log_start;
        if (new_session(n, partition, to) == 0) {
            w->skips_to_log_start++;
            if (mqcheck_seek_log_start(w->check, partition, n->sessions[partition], to, w->why) != 0)
                mq_fail(w, "consumer");
            return;
        }
    }
    /* Positions never pass the end, so any other report is a broker's or the client library's
     * fault. */
    snprintf(n->w->why, sizeof n->w->why,
             "client %" PRIu32 " partition %" PRIu32 ": %s at position %" PRIu64
             " (log start %" PRIu64 ", high watermark %" PRIu64 ")",
             n->index, partition, rq_strerror(error), position, log_start, high_watermark);
    mq_fail(n->w, "fetch");
}

enum { TOKEN_CREATE = 1, TOKEN_DECOMMISSION = 2 };

static void on_admin_done(void *arg, uint64_t token, int error) {
    struct mq_client *n = arg;
    if (token == TOKEN_DECOMMISSION) {
        if (error == 0) n->w->decommissioned = 1;
        else n->decommission_asked = 0;   /* asked again */
        return;
    }
    n->topic_asked = 0;

    if (error == 0 || error == RQ_ETOPICEXISTS) n->topic_created = 1;
}

static void *client_create(const struct rq_io *io, const void *config) {
    struct mq_world *w = (struct mq_world *)config;
    struct mq_client *n = calloc(1, sizeof *n);
    RQ_ASSERT(n != NULL);
    n->w = w;
    n->io = io;
    n->index = io->node_id - SIM_CLIENT_ID_BASE;
    RQ_ASSERT(n->index < SIM_CLIENTS_MAX);
    n->incarnation = sim_incarnation(w->sim, io->node_id);
    for (uint32_t p = 0; p < MQ_PARTITIONS_MAX; p++)
        n->sessions[p] = (uint64_t)(n->index + 1) << 32 | (uint64_t)n->incarnation << 16;
    n->lib_io = (struct rq_io){.env = n, .node_id = io->node_id, .seed = io->seed, .now = lib_now,
                               .set_timer = lib_set_timer, .send = lib_send, .reply = lib_reply,
                               .disk = lib_disk, .halt = lib_halt};
    n->lib_deadline_ns = UINT64_MAX;
    n->next_action_ns = UINT64_MAX;
    const struct mq_plan *plan = &w->plans[n->index];
    struct rq_client_config cfg;
    rq_client_config_default(&cfg);
    cfg.bootstrap_count = sim_servers(w->sim);
    for (uint32_t i = 0; i < cfg.bootstrap_count; i++) cfg.bootstrap[i] = i + 1;
    /* Servers crash without closing connections here: an answer that never comes is found by
     * the timeout alone, which must be well inside the liveness window after the heal. */
    cfg.request_timeout_ns = 1000 * 1000 * 1000ull;
    cfg.acks = plan->acks;
    cfg.idempotent = plan->idempotent;
    cfg.from_follower = plan->from_follower;
    static const struct rq_client_callbacks cb = {.produced = on_produced, .fetched = on_fetched,
                                                  .fetch_error = on_fetch_error,
                                                  .admin_done = on_admin_done,
                                                  .assigned = mq_member_assigned,
                                                  .committed = mq_member_committed,
                                                  .group_error = mq_member_group_error};
    n->c = rq_client_create(&n->lib_io, &cfg, &cb, n);
    RQ_ASSERT(n->c != NULL);
    return n;
}

static void client_destroy(void *node) {
    struct mq_client *n = node;
    rq_client_destroy(n->c);
    free(n);
}

static void create_topic(struct mq_client *n) {
    struct proto_create_topic_req req = {.name = MQ_TOPIC, .partitions = n->w->partitions,
                                         .replication = n->w->replication,
                                         .retention_ms = n->w->retention_ms,
                                         .retention_bytes = n->w->retention_bytes,
                                         .max_message_bytes = 1024};
    if (rq_client_create_topic(n->c, &req, TOKEN_CREATE) == 0) n->topic_asked = 1;
}

/* A delayed message's delay, in milliseconds: 20..1,500, from its number (the producer needs no
 * state to know it, and the consumer reads it in the header). */
static uint64_t delay_ms_of(uint64_t number) { return 20 + (number * 7919) % 1481; }

/* A delayed message carries its delay in the header "mq-delay-ms"; its timestamp is the true time
 * it was sent (as for every message). */
static int produce_delayed(struct mq_client *n, struct proto_bytes k, struct proto_bytes v) {
    char ms[24];
    uint64_t delay = delay_ms_of(n->next_message);
    struct proto_header h = {{(const uint8_t *)"mq-delay-ms", 11},
                             {(const uint8_t *)ms, (uint32_t)snprintf(ms, sizeof ms, "%" PRIu64,
                                                                      delay)}};
    int err = rq_client_produce_delayed(n->c, MQ_TOPIC, k, v, &h, 1, sim_now(n->w->sim), delay,
                                        n->next_message);
    if (err == 0) n->w->delayed_sent++;
    return err;
}

/* Whether a delayed message sent now is released, by any leader's clock, with time left for the
 * consumers to read it before the run ends (their liveness is judged then): its delay, plus how
 * far the servers' clocks disagree (a leader behind the accepting one releases that much later),
 * plus 2 s. Near the end a producer sends its messages undelayed instead. */
static int delay_fits(struct mq_world *w, uint64_t number) {
    uint64_t release = sim_now(w->sim) + delay_ms_of(number) * 1000000u + clock_spread(w);
    return release + 2000000000ull < sim_config(w->sim)->duration_ns;
}

static void produce_one(struct mq_client *n) {
    char key[16], value[MQ_VALUE_MAX];
    uint32_t ks, vs;
    message_of(n->index, n->incarnation, n->next_message, key, &ks, value, &vs);
    struct proto_bytes k = {ks ? (const uint8_t *)key : NULL, ks}, v = {(const uint8_t *)value, vs};
    uint32_t every = n->w->plans[n->index].delay_every;
    if (every != 0 && n->next_message % every == every - 1 && delay_fits(n->w, n->next_message)) {
        if (produce_delayed(n, k, v) == 0) n->next_message++, n->w->produced++;
        return;
    }
    int err = rq_client_produce(n->c, MQ_TOPIC, k, v, NULL, 0, sim_now(n->w->sim), n->next_message);
    if (err == 0 && (n->w->bugs & MQ_BUG_PRODUCER_REPEATS) && n->next_message % 20 == 5)
        err = rq_client_produce(n->c, MQ_TOPIC, k, v, NULL, 0, sim_now(n->w->sim), n->next_message);
    if (err == 0) {
        n->next_message++;
        n->w->produced++;
    }
}

/* Now and then a consumer goes back to an earlier offset of one partition and reads on from there
 * in a new session: what it reads again must be what every replica holds there. */
static void reread(struct mq_client *n, uint64_t now) {
    struct mq_world *w = n->w;
    struct rq_rng *rng = sim_workload_rng(w->sim);
    n->next_seek_ns = now + rq_rng_range(rng, 1000, 4000) * 1000 * 1000ull;
    uint32_t p = (uint32_t)rq_rng_below(rng, w->partitions);
    uint64_t to = rq_rng_below(rng, w->positions[n->index][p] + 1);
    if (new_session(n, p, to) != 0) return;
    w->rereads++;
    mqcheck_seek(w->check, p, n->sessions[p], to);
}

/* The process's own work: the topic (client 0, until created), subscriptions, producing. */
static void act(struct mq_client *n) {
    struct mq_world *w = n->w;
    const struct mq_plan *plan = &w->plans[n->index];
    uint64_t now = n->io->now(n->io->env);
    if (now < n->next_action_ns) return;
    n->next_action_ns = now + (plan->producer ? plan->every_ns : 200 * 1000 * 1000ull);
    if (n->index == 0 && !n->topic_created && !n->topic_asked) create_topic(n);
    if (n->index == 0 && n->topic_created && w->decommission && !n->decommission_asked &&
        !w->decommissioned && sim_now(w->sim) >= w->decommission_at_ns &&
        rq_client_decommission(n->c, w->decommission, TOKEN_DECOMMISSION) == 0)
        n->decommission_asked = 1;
    if (plan->member) {
        mq_member_act(n, now);
        return;
    }
    if (!plan->producer && !n->subscribed) {
        n->subscribed = 1;
        n->next_seek_ns = now + rq_rng_range(sim_workload_rng(w->sim), 1000, 4000) * 1000 * 1000ull;
        for (uint32_t p = 0; p < w->partitions; p++) {
            RQ_ASSERT(rq_client_subscribe(n->c, MQ_TOPIC, p, 0) == 0);
            mqcheck_seek(w->check, p, n->sessions[p], 0);
        }
    }
    if (plan->producer && sim_now(w->sim) < w->stop_producing_ns) produce_one(n);
    if (!plan->producer && n->subscribed && now >= n->next_seek_ns) reread(n, now);
    if (!plan->producer && w->stop_producing_ns <= sim_now(w->sim)) n->next_action_ns = UINT64_MAX;
}

static void client_start(void *node) {
    struct mq_client *n = node;
    n->next_action_ns = 0;
    rq_client_start(n->c);
    act(n);
    arm(n);
}

static void client_timer(void *node) {
    struct mq_client *n = node;
    uint64_t now = n->io->now(n->io->env);
    if (now >= n->lib_deadline_ns) {
        n->lib_deadline_ns = UINT64_MAX;
        rq_client_on_timer(n->c);
    }
    act(n);
    arm(n);
}

static void client_message(void *node, uint32_t from, const void *buf, size_t len) {
    struct mq_client *n = node;
    rq_client_on_message(n->c, from, buf, len);
}

static void client_unexpected(void *node, uint64_t conn, const void *buf, size_t len) {
    struct mq_client *n = node;
    (void)conn, (void)buf, (void)len;
    sim_fail(n->w->sim, "mq: client %" PRIu32 " received a client request", n->index);
}

static void client_disk(void *node, struct rq_disk_req *req) { (void)node, (void)req; }
static void client_closed(void *node, uint64_t conn) { (void)node, (void)conn; }

static const struct rq_node_ops mq_client_ops = {
    .name = "mq-client", .create = client_create, .destroy = client_destroy,
    .on_start = client_start, .on_timer = client_timer, .on_peer_message = client_message,
    .on_client_message = client_unexpected, .on_disk_done = client_disk,
    .on_conn_closed = client_closed,
};

/* ---- the run ----------------------------------------------------------------------------------- */

static void set_retention(struct mq_world *w, uint64_t bytes, uint64_t ms) {
    w->retention_bytes = bytes;
    w->retention_ms = ms;
    w->setup.segment_bytes = bytes || ms ? 128u << 10 : 0;   /* small enough to roll and delete */
}

/* Retention, one seed in three. Drawn from a generator of its own, so that the seeds without
 * retention run exactly as they did before it existed (the regression lists keep their meaning). */
static void draw_retention(struct mq_world *w, uint64_t seed) {
    struct rq_rng rng;
    rq_rng_seed(&rng, seed ^ 0x726574656e74696full);
    if (!rq_rng_chance(&rng, 333333)) return;
    uint32_t kind = (uint32_t)rq_rng_below(&rng, 3);   /* size, time, both */
    uint64_t bytes = kind != 1 ? rq_rng_range(&rng, 4, 32) << 10 : 0;
    uint64_t ms = kind != 0 ? rq_rng_range(&rng, 500, 4000) : 0;
    set_retention(w, bytes, ms);
}

/* A decommission, one seed in two with 4 or more servers (a generator of its own, as above), at a
 * moment before producers stop. */
static void draw_decommission(struct mq_world *w, const struct sim_config *cfg) {
    struct rq_rng rng;
    rq_rng_seed(&rng, cfg->seed ^ 0x6465636f6d6d6973ull);
    if (cfg->servers < 4 || !rq_rng_chance(&rng, 500000)) return;
    w->decommission = (uint32_t)rq_rng_range(&rng, 1, cfg->servers);
    w->decommission_at_ns = rq_rng_range(&rng, 1000, w->stop_producing_ns / 1000000) * 1000000ull;
}

/* Delayed messages, one seed in three (a generator of its own, as above): each producer that is
 * not idempotent delays every 3rd..8th message. */
static void draw_delays(struct mq_world *w, uint64_t seed) {
    struct rq_rng rng;
    rq_rng_seed(&rng, seed ^ 0x64656c6179656421ull);
    if (!rq_rng_chance(&rng, 333333)) return;
    for (uint32_t i = 0; i < MQ_BASE_CLIENTS; i++)
        if (w->plans[i].producer && !w->plans[i].idempotent)
            w->plans[i].delay_every = (uint32_t)rq_rng_range(&rng, 3, 8);
}

static void *mq_init(struct sim *s) {
    struct mq_world *w = calloc(1, sizeof *w);
    RQ_ASSERT(w != NULL);
    w->sim = s;
    struct rq_rng *rng = sim_workload_rng(s);
    /* Snapshots every 8..256 entries, keeping 0..16 below: partitions read old records back from
     * the store, and followers far behind catch up from the leader's store, in every run. */
    w->setup = (struct sim_broker_setup){
        .controllers = sim_servers(s), .obs = {.arg = w, .partition_applied = on_partition_applied},
        .snapshot_entries = (uint32_t)rq_rng_range(rng, 8, 256),
        .snapshot_trailing = (uint32_t)rq_rng_range(rng, 0, 16)};
    w->partitions = (uint32_t)rq_rng_range(rng, 1, MQ_PARTITIONS_MAX);
    w->replication = sim_servers(s) < 3 ? sim_servers(s) : 3;
    w->check = mqcheck_create(w->partitions);
    w->groupcheck = groupcheck_create(w->partitions);
    const struct sim_config *cfg = sim_config(s);
    w->stop_producing_ns = cfg->duration_ns - cfg->heal_ns / 2;
    for (uint32_t i = 0; i < SIM_CLIENTS_MAX; i++) {
        struct mq_plan *p = &w->plans[i];
        p->producer = i % 2 == 0;
        p->acks = (uint8_t)rq_rng_range(rng, PROTO_ACKS_NONE, PROTO_ACKS_ALL);
        p->idempotent = p->acks == PROTO_ACKS_ALL && rq_rng_chance(rng, 500000);
        p->from_follower = rq_rng_chance(rng, 500000);
        p->every_ns = rq_rng_range(rng, 2, 20) * 1000 * 1000ull;
    }
    w->plans[0].acks = PROTO_ACKS_ALL;   /* at least one producer whose acks are checked */
    draw_retention(w, cfg->seed);
    draw_decommission(w, cfg);
    draw_delays(w, cfg->seed);
    mq_groups_draw(w, cfg);
    return w;
}

static void mq_fini(void *arg) {
    struct mq_world *w = arg;
    mqcheck_destroy(w->check);
    groupcheck_destroy(w->groupcheck);
    free(w);
}

/* Faults stop: every server loses power and restarts from what its disk made durable. */
static void mq_on_heal(struct sim *s, void *arg) {
    struct mq_world *w = arg;
    sim_power_cycle_servers(s);
    if (w->bugs & MQ_BUG_NO_HEAL) sim_isolate_servers(s);
    w->heal_ns = sim_now(s);
    memset(w->acked_after_heal, 0, sizeof w->acked_after_heal);
    memset(w->read_after_heal, 0, sizeof w->read_after_heal);
    memset(w->assigned_after_heal, 0, sizeof w->assigned_after_heal);
}

/* After the heal: every partition's replica set (as the controller's leader records it) is its
 * target, and a decommissioned broker is in none. Returns 0, or -1 having failed the run. */
static int check_moves(struct mq_world *w) {
    const struct controller *c = NULL;
    for (uint32_t id = 1; id <= sim_servers(w->sim) && c == NULL; id++) {
        struct broker *b = sim_node(w->sim, id);
        const struct raft *r = b ? host_raft(broker_host(b), CONTROLLER_GROUP) : NULL;
        if (r != NULL && raft_role(r) == RAFT_LEADER) c = broker_controller(b);
    }
    const struct controller_topic *t = c ? controller_topic(c, MQ_TOPIC.data, MQ_TOPIC.size) : NULL;
    for (uint32_t p = 0; t != NULL && p < t->partition_count; p++) {
        const struct controller_partition *cp = &t->partitions[p];
        int gone = w->decommissioned && controller_partition_has(cp, w->decommission);
        if (!controller_partition_moving(cp) && !gone) continue;
        sim_fail(w->sim, "mq: liveness: partition %" PRIu32 " has %" PRIu32 " replicas (n%" PRIu32
                 "...), its target %" PRIu32 " (n%" PRIu32 "...)%s", p, cp->replica_count,
                 cp->replicas[0], cp->target_count, cp->target[0],
                 gone ? ", and still holds the decommissioned broker" : "");
        return -1;
    }
    return 0;
}

static void mq_on_end(struct sim *s, void *arg) {
    struct mq_world *w = arg;
    uint64_t loads = 0, scans = 0, compactions = 0, given_up = 0, changes = 0;
    for (uint32_t id = 1; id <= sim_servers(s); id++) {
        struct broker_stats st;
        if (sim_node(s, id) == NULL) continue;
        broker_stats_get(sim_node(s, id), &st);
        loads += st.fetch_loads;
        scans += st.scans;
        compactions += st.log_compactions;
        given_up += st.records_given_up;
        changes += st.membership_changes;
    }
    if (sim_failed(s)) return;
    if (mqcheck_finish(w->check, w->why) != 0) {
        mq_fail(w, "lost write");
        return;
    }
    if (w->heal_ns != 0 && check_moves(w) != 0) return;
    if (w->heal_ns != 0 && mq_groups_finish(w) != 0) return;
    if (w->heal_ns != 0) {
        for (uint32_t i = 0; i < sim_clients(s); i++) {
            const struct mq_plan *plan = &w->plans[i];
            if (plan->producer && plan->acks != PROTO_ACKS_NONE && !w->acked_after_heal[i]) {
                sim_fail(s, "mq: liveness: producer %" PRIu32 " got no acknowledgement after the heal", i);
                return;
            }
            for (uint32_t p = 0; !plan->producer && !plan->member && p < w->partitions; p++) {
                if (w->positions[i][p] < w->ends[p]) {
                    sim_fail(s, "mq: liveness: consumer %" PRIu32 " read partition %" PRIu32
                             " to %" PRIu64 " of %" PRIu64 " by the end", i, p, w->positions[i][p],
                             w->ends[p]);
                    return;
                }
            }
        }
    }
    sim_note(s, 0, "mq: %" PRIu32 " partitions, %" PRIu64 " produced, %" PRIu64 " acknowledged, %"
             PRIu64 " failed, %" PRIu64 " read (%" PRIu64 " seeks back), %" PRIu64
             " replica records, %" PRIu64 " unchecked; since the last restart %" PRIu64
             " fetches from the store, %" PRIu64 " index scans",
             w->partitions, w->produced, w->acked, w->unacked_failures, w->reads, w->rereads,
             w->replica_records, mqcheck_unchecked(w->check), loads, scans);
    mq_groups_note(w);
    if (w->delayed_sent)
        sim_note(s, 0, "mq: delayed messages: %" PRIu64 " sent, %" PRIu64 " held, %" PRIu64
                 " reads of them, none early", w->delayed_sent, w->delayed_held, w->delayed_read);
    if (w->decommission || changes)
        sim_note(s, 0, "mq: decommission of n%" PRIu32 " %s; since the last restart %" PRIu64
                 " membership changes", w->decommission,
                 w->decommissioned ? "taken" : w->decommission ? "never taken" : "not drawn", changes);
    if (w->retention_bytes || w->retention_ms)
        sim_note(s, 0, "mq: retention %" PRIu64 " bytes, %" PRIu64 " ms: %" PRIu64
                 " log starts applied, %" PRIu64 " consumers sent to the log start; since the last"
                 " restart %" PRIu64 " stored logs compacted, %" PRIu64 " records given up early",
                 w->retention_bytes, w->retention_ms, w->retains, w->skips_to_log_start,
                 compactions, given_up);
}

const struct sim_workload sim_workload_mq = {
    .name = "mq",
    .server_ops = &sim_broker_ops,
    .client_ops = &mq_client_ops,
    .default_clients = MQ_BASE_CLIENTS,
    .clients_for = mq_clients_for,
    .corrupt_prefix = NULL,
    .init = mq_init,
    .fini = mq_fini,
    .on_heal = mq_on_heal,
    .on_end = mq_on_end,
};

void mq_inject_bugs(struct sim *s, uint32_t bugs) {
    RQ_ASSERT(sim_config(s)->workload == &sim_workload_mq);
    struct mq_world *w = sim_workload_state(s);
    w->bugs = bugs;
    if (bugs & MQ_BUG_PRODUCER_REPEATS) {   /* the first producer is idempotent */
        w->plans[0].acks = PROTO_ACKS_ALL;
        w->plans[0].idempotent = 1;
    }
    if ((bugs & MQ_BUG_SKIP_TO_END) && !w->retention_bytes) set_retention(w, 4u << 10, 0);
    if (bugs & MQ_BUG_DELAY_EARLY) {   /* delayed messages from every producer */
        for (uint32_t i = 0; i < MQ_BASE_CLIENTS; i++) w->plans[i].idempotent = 0;
        mq_force_delays(s, 3);
    }
    if (bugs & MQ_BUG_MOVES_PAUSED) {
        w->setup.moves_paused = 1;
        mq_force_decommission(s, 1);
    }
}

void mq_force_delays(struct sim *s, uint32_t every) {
    RQ_ASSERT(sim_config(s)->workload == &sim_workload_mq);
    struct mq_world *w = sim_workload_state(s);
    for (uint32_t i = 0; i < MQ_BASE_CLIENTS; i++)
        if (w->plans[i].producer && !w->plans[i].idempotent) w->plans[i].delay_every = every;
}

void mq_force_decommission(struct sim *s, uint32_t id) {
    RQ_ASSERT(sim_config(s)->workload == &sim_workload_mq);
    RQ_ASSERT(id >= 1 && id <= sim_servers(s) && sim_servers(s) >= 4);
    struct mq_world *w = sim_workload_state(s);
    w->decommission = id;
    w->decommission_at_ns = 2000000000ull;
}

void mq_force_retention(struct sim *s, uint64_t bytes, uint64_t ms) {
    RQ_ASSERT(sim_config(s)->workload == &sim_workload_mq);
    set_retention(sim_workload_state(s), bytes, ms);
}
