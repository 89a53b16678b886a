/* The controller's replicated state machine; see controller.h. */
#include "meta/controller.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "proto/frame.h"

enum { IMAGE_VERSION = 3 };

struct controller {
    uint64_t heartbeat_timeout_ns;
    uint32_t broker_count;
    struct controller_broker brokers[CONTROLLER_BROKERS_MAX];   /* in registration order */
    uint32_t topic_count;
    struct controller_topic topics[CONTROLLER_TOPICS_MAX];      /* in creation order */
    uint32_t partitions_total;
    uint64_t next_topic_id;
    uint64_t next_producer_id;
    uint32_t next_group;          /* the next partition's Raft group id */
    uint64_t malformed;
    struct placement_ring ring;   /* scratch for placement */
};

struct controller *controller_create(uint64_t heartbeat_timeout_ns) {
    struct controller *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->heartbeat_timeout_ns = heartbeat_timeout_ns;
    c->next_topic_id = 1;
    c->next_producer_id = 1;
    c->next_group = CONTROLLER_GROUP_FIRST;
    return c;
}

static void free_topics(struct controller *c) {
    for (uint32_t i = 0; i < c->topic_count; i++) free(c->topics[i].partitions);
    c->topic_count = 0;
    c->partitions_total = 0;
}

void controller_destroy(struct controller *c) {
    if (c == NULL) return;
    free_topics(c);
    free(c);
}

/* ---- lookups ---------------------------------------------------------------------------------- */

static struct controller_broker *find_broker(struct controller *c, uint32_t id) {
    for (uint32_t i = 0; i < c->broker_count; i++)
        if (c->brokers[i].id == id) return &c->brokers[i];
    return NULL;
}

static int32_t find_topic(const struct controller *c, const uint8_t *name, size_t size) {
    for (uint32_t i = 0; i < c->topic_count; i++) {
        const struct controller_topic *t = &c->topics[i];
        if (t->name_size == size && memcmp(t->name, name, size) == 0) return (int32_t)i;
    }
    return -1;
}

const struct controller_topic *controller_topic(const struct controller *c, const uint8_t *name,
                                                size_t size) {
    int32_t i = find_topic(c, name, size);
    return i < 0 ? NULL : &c->topics[i];
}

const struct controller_topic *controller_topic_at(const struct controller *c, uint32_t i) {
    return i < c->topic_count ? &c->topics[i] : NULL;
}

uint32_t controller_topic_count(const struct controller *c) { return c->topic_count; }

const struct controller_broker *controller_broker(const struct controller *c, uint32_t id) {
    return find_broker((struct controller *)c, id);
}

const struct controller_broker *controller_broker_at(const struct controller *c, uint32_t i) {
    return i < c->broker_count ? &c->brokers[i] : NULL;
}

uint32_t controller_broker_count(const struct controller *c) { return c->broker_count; }
uint64_t controller_malformed(const struct controller *c) { return c->malformed; }

static int set_has(const uint32_t *ids, uint32_t n, uint32_t id) {
    for (uint32_t k = 0; k < n; k++)
        if (ids[k] == id) return 1;
    return 0;
}

int controller_partition_has(const struct controller_partition *p, uint32_t node) {
    return set_has(p->replicas, p->replica_count, node) || set_has(p->target, p->target_count, node);
}

int controller_partition_moving(const struct controller_partition *p) {
    if (p->target_count != p->replica_count) return 1;
    for (uint32_t k = 0; k < p->target_count; k++)
        if (!set_has(p->replicas, p->replica_count, p->target[k])) return 1;
    return 0;
}

int controller_broker_in_use(const struct controller *c, uint32_t id) {
    RQ_ASSERT(id != 0);
    for (uint32_t i = 0; i < c->topic_count; i++) {
        const struct controller_topic *t = &c->topics[i];
        for (uint32_t p = 0; p < t->partition_count; p++)
            if (t->partitions[p].leader == id || controller_partition_has(&t->partitions[p], id))
                return 1;
    }
    return 0;
}

uint32_t controller_member_count(const struct controller *c) {
    uint32_t members = 0;
    for (uint32_t i = 0; i < c->broker_count; i++) members += !c->brokers[i].decommissioned;
    return members;
}

/* ---- commands: encoding ------------------------------------------------------------------------- */

static void put_string(struct rq_writer *w, const void *s, size_t n) {
    rq_write_varint(w, n);
    rq_write_bytes(w, s, n);
}

/* Every command starts with its kind; CONTROLLER_CMD_MAX bytes hold any of them. */
static void start(struct rq_writer *w, uint8_t *buf, uint8_t kind) {
    rq_writer_init(w, buf, CONTROLLER_CMD_MAX);
    rq_write_u8(w, kind);
}

static size_t done(const struct rq_writer *w) {
    RQ_ASSERT(w->err == 0);
    return w->len;
}

size_t controller_cmd_register(uint8_t *buf, uint32_t broker, const char *address,
                               uint64_t now_ns) {
    size_t n = strlen(address);
    RQ_ASSERT(broker != 0 && n <= PROTO_TEXT_MAX);
    struct rq_writer w;
    start(&w, buf, CONTROLLER_REGISTER);
    rq_write_varint(&w, broker);
    put_string(&w, address, n);
    rq_write_varint(&w, now_ns);
    return done(&w);
}

size_t controller_cmd_heartbeat(uint8_t *buf, uint32_t broker, uint64_t now_ns) {
    struct rq_writer w;
    start(&w, buf, CONTROLLER_HEARTBEAT);
    rq_write_varint(&w, broker);
    rq_write_varint(&w, now_ns);
    return done(&w);
}

size_t controller_cmd_expire(uint8_t *buf, uint64_t now_ns) {
    struct rq_writer w;
    start(&w, buf, CONTROLLER_EXPIRE);
    rq_write_varint(&w, now_ns);
    return done(&w);
}

size_t controller_cmd_create_topic(uint8_t *buf, const struct proto_create_topic_req *req) {
    RQ_ASSERT(proto_topic_name_valid(req->name.data, req->name.size));
    struct rq_writer w;
    start(&w, buf, CONTROLLER_CREATE_TOPIC);
    put_string(&w, req->name.data, req->name.size);
    rq_write_varint(&w, req->partitions);
    rq_write_varint(&w, req->replication);
    rq_write_varint(&w, req->retention_ms);
    rq_write_varint(&w, req->retention_bytes);
    rq_write_varint(&w, req->max_message_bytes);
    return done(&w);
}

size_t controller_cmd_delete_topic(uint8_t *buf, const char *name) {
    size_t n = strlen(name);
    RQ_ASSERT(proto_topic_name_valid((const uint8_t *)name, n));
    struct rq_writer w;
    start(&w, buf, CONTROLLER_DELETE_TOPIC);
    put_string(&w, name, n);
    return done(&w);
}

size_t controller_cmd_init_producer(uint8_t *buf) {
    buf[0] = CONTROLLER_INIT_PRODUCER;
    return 1;
}

size_t controller_cmd_leader(uint8_t *buf, const char *topic, uint32_t partition, uint32_t leader,
                             uint64_t term) {
    size_t n = strlen(topic);
    RQ_ASSERT(proto_topic_name_valid((const uint8_t *)topic, n));
    struct rq_writer w;
    start(&w, buf, CONTROLLER_LEADER);
    put_string(&w, topic, n);
    rq_write_varint(&w, partition);
    rq_write_varint(&w, leader);
    rq_write_varint(&w, term);
    return done(&w);
}

size_t controller_cmd_decommission(uint8_t *buf, uint32_t broker) {
    RQ_ASSERT(broker != 0);
    struct rq_writer w;
    start(&w, buf, CONTROLLER_DECOMMISSION);
    rq_write_varint(&w, broker);
    return done(&w);
}

size_t controller_cmd_replicas(uint8_t *buf, const char *topic, uint32_t partition, uint64_t term,
                               uint64_t config_index, const uint32_t *voters, uint32_t count) {
    size_t n = strlen(topic);
    RQ_ASSERT(proto_topic_name_valid((const uint8_t *)topic, n));
    RQ_ASSERT(count >= 1 && count <= PLACEMENT_REPLICAS_MAX);
    struct rq_writer w;
    start(&w, buf, CONTROLLER_REPLICAS);
    put_string(&w, topic, n);
    rq_write_varint(&w, partition);
    rq_write_varint(&w, term);
    rq_write_varint(&w, config_index);
    rq_write_varint(&w, count);
    for (uint32_t k = 0; k < count; k++) {
        RQ_ASSERT(voters[k] != 0 && !set_has(voters, k, voters[k]));
        rq_write_varint(&w, voters[k]);
    }
    return done(&w);
}

/* ---- commands: applying ------------------------------------------------------------------------- */

/* A varint of at most max, or the reader's sticky error. */
static uint64_t get_num(struct rq_reader *r, uint64_t max) {
    uint64_t v = 0;
    if (rq_read_varint(r, &v) == 0 && v > max && r->err == 0) r->err = RQ_ETOOBIG;
    return r->err ? 0 : v;
}

static const uint8_t *get_string(struct rq_reader *r, size_t max, size_t *size) {
    const uint8_t *p = NULL;
    *size = (size_t)get_num(r, max);
    if (*size > 0) rq_read_bytes(r, *size, &p);
    return r->err ? NULL : p;
}

static const uint8_t *get_topic(struct rq_reader *r, size_t *size) {
    const uint8_t *p = get_string(r, PROTO_TOPIC_NAME_MAX, size);
    if (r->err == 0 && !proto_topic_name_valid(p, *size)) r->err = RQ_ECORRUPT;
    return p;
}

static void rebalance(struct controller *c);

static void apply_register(struct controller *c, struct rq_reader *r,
                           struct controller_result *res) {
    uint32_t id = (uint32_t)get_num(r, UINT32_MAX);
    size_t n;
    const uint8_t *address = get_string(r, PROTO_TEXT_MAX, &n);
    uint64_t now = get_num(r, UINT64_MAX);
    if (r->err != 0 || rq_reader_remaining(r) != 0) return;
    if (id == 0) { res->error = RQ_EINVAL; return; }
    struct controller_broker *b = find_broker(c, id);
    int joined = b == NULL;
    if (b == NULL) {
        if (c->broker_count == CONTROLLER_BROKERS_MAX) {
            res->error = RQ_ENOMEM;
            return;
        }
        b = &c->brokers[c->broker_count++];
        memset(b, 0, sizeof *b);
        b->id = id;
    }
    b->epoch++;
    b->alive = 1;
    b->deadline_ns = now + c->heartbeat_timeout_ns;
    b->address_size = (uint8_t)n;
    if (n) memcpy(b->address, address, n);
    if (joined) rebalance(c);
}

/* A broker leaves for good: refused (RQ_EINVAL) when the members left would be fewer than some
 * topic's replication factor, so that every topic can still be placed. */
static void apply_decommission(struct controller *c, struct rq_reader *r,
                               struct controller_result *res) {
    uint32_t id = (uint32_t)get_num(r, UINT32_MAX);
    if (r->err != 0 || rq_reader_remaining(r) != 0) return;
    struct controller_broker *b = find_broker(c, id);
    if (b == NULL) { res->error = RQ_ENOENT; return; }
    if (b->decommissioned) return;
    uint32_t members = controller_member_count(c), needed = 0;
    for (uint32_t i = 0; i < c->topic_count; i++)
        if (c->topics[i].replication > needed) needed = c->topics[i].replication;
    if (members - 1 < needed) { res->error = RQ_EINVAL; return; }
    b->decommissioned = 1;
    rebalance(c);
}

/* A recorded leader that is in neither the replica set nor the target (a REPLICAS report or a new
 * placement left it out) is no one's: the next LEADER report names the new one. Without this the
 * image would hold a leader outside the partition, which its decoder refuses (mq seeds 201, 438,
 * 622 with 5 servers; the controller_apply fuzzer, after a new placement). */
static void forget_stray_leader(struct controller_partition *part) {
    if (part->leader != 0 && !controller_partition_has(part, part->leader)) part->leader = 0;
}

/* Orders ids like ref (the preferred leader first), those not in ref after, in their order. */
static void order_like(uint32_t *ids, uint32_t n, const uint32_t *ref, uint32_t ref_n) {
    uint32_t out[PLACEMENT_REPLICAS_MAX], k = 0;
    for (uint32_t i = 0; i < ref_n; i++)
        if (set_has(ids, n, ref[i])) out[k++] = ref[i];
    for (uint32_t i = 0; i < n; i++)
        if (!set_has(ref, ref_n, ids[i])) out[k++] = ids[i];
    RQ_ASSERT(k == n);
    memcpy(ids, out, n * sizeof *ids);
}

static void apply_replicas(struct controller *c, struct rq_reader *r,
                           struct controller_result *res) {
    size_t n;
    const uint8_t *name = get_topic(r, &n);
    uint32_t p = (uint32_t)get_num(r, PROTO_PARTITIONS_MAX - 1);
    uint64_t term = get_num(r, UINT64_MAX), index = get_num(r, UINT64_MAX);
    uint32_t count = (uint32_t)get_num(r, PLACEMENT_REPLICAS_MAX);
    uint32_t voters[PLACEMENT_REPLICAS_MAX];
    for (uint32_t k = 0; k < count && r->err == 0; k++) {
        voters[k] = (uint32_t)get_num(r, UINT32_MAX);
        if (r->err == 0 && (voters[k] == 0 || set_has(voters, k, voters[k]))) r->err = RQ_ECORRUPT;
    }
    if (r->err == 0 && count == 0) r->err = RQ_ECORRUPT;
    if (r->err != 0 || rq_reader_remaining(r) != 0) return;
    int32_t i = find_topic(c, name, n);
    if (i < 0 || p >= c->topics[i].partition_count) { res->error = RQ_ENOTOPIC; return; }
    struct controller_partition *part = &c->topics[i].partitions[p];
    if (term < part->replicas_term || (term == part->replicas_term && index <= part->replicas_index))
        return;   /* not newer than what is recorded */
    part->replicas_term = term;
    part->replicas_index = index;
    order_like(voters, count, part->target, part->target_count);
    part->replica_count = count;
    memcpy(part->replicas, voters, count * sizeof voters[0]);
    forget_stray_leader(part);
}

static void apply_heartbeat(struct controller *c, struct rq_reader *r,
                            struct controller_result *res) {
    uint32_t id = (uint32_t)get_num(r, UINT32_MAX);
    uint64_t now = get_num(r, UINT64_MAX);
    if (r->err != 0 || rq_reader_remaining(r) != 0) return;
    struct controller_broker *b = find_broker(c, id);
    if (b == NULL) {
        res->error = RQ_ENOENT;   /* register first */
        return;
    }
    b->alive = 1;
    b->deadline_ns = now + c->heartbeat_timeout_ns;
}

static int broker_alive(struct controller *c, uint32_t id) {
    const struct controller_broker *b = find_broker(c, id);
    return b != NULL && b->alive;
}

/* Partitions led by a broker that is down get their first live replica as leader. */
static void move_leaders(struct controller *c) {
    for (uint32_t t = 0; t < c->topic_count; t++) {
        for (uint32_t p = 0; p < c->topics[t].partition_count; p++) {
            struct controller_partition *part = &c->topics[t].partitions[p];
            if (part->leader != 0 && broker_alive(c, part->leader)) continue;
            part->leader = 0;
            for (uint32_t k = 0; k < part->replica_count && part->leader == 0; k++)
                if (broker_alive(c, part->replicas[k])) part->leader = part->replicas[k];
        }
    }
}

static void apply_expire(struct controller *c, struct rq_reader *r) {
    uint64_t now = get_num(r, UINT64_MAX);
    if (r->err != 0 || rq_reader_remaining(r) != 0) return;
    for (uint32_t i = 0; i < c->broker_count; i++)
        if (c->brokers[i].alive && c->brokers[i].deadline_ns <= now) c->brokers[i].alive = 0;
    move_leaders(c);
}

/* Places topic t's partitions over brokers ids[0..n): rows gets replication ids per partition,
 * the preferred leader first. Returns 0, RQ_EINVAL (fewer brokers than replicas) or RQ_ENOMEM. */
static int place_rows(struct controller *c, const struct controller_topic *t, const uint32_t *ids,
                      uint32_t n, uint32_t *rows) {
    if (n < t->replication) return RQ_EINVAL;
    if (placement_ring_build(&c->ring, ids, n, PLACEMENT_VNODES_DEFAULT) != 0) return RQ_EINVAL;
    struct placement_partition *parts = calloc(t->partition_count, sizeof *parts);
    struct placement_item *work = calloc(t->partition_count, sizeof *work);
    int err = parts && work ? 0 : RQ_ENOMEM;
    for (uint32_t p = 0; err == 0 && p < t->partition_count; p++)
        parts[p] = (struct placement_partition){.topic_key = t->id, .index = p};
    struct placement_input in = {.partitions = parts, .partition_count = t->partition_count,
                                 .replication_factor = t->replication,
                                 .epsilon_permille = PLACEMENT_EPSILON_PERMILLE_DEFAULT};
    if (err == 0) err = placement_assign(&c->ring, &in, work, rows, NULL);
    free(parts);
    free(work);
    return err;
}

/* Places a new topic's partitions over the live brokers. Returns 0 or an RQ_E* for the client. */
static int place(struct controller *c, struct controller_topic *t) {
    uint32_t live[CONTROLLER_BROKERS_MAX], n = 0;
    for (uint32_t i = 0; i < c->broker_count; i++)
        if (c->brokers[i].alive && !c->brokers[i].decommissioned) live[n++] = c->brokers[i].id;
    uint32_t *rows = calloc((size_t)t->partition_count * t->replication, sizeof *rows);
    t->partitions = calloc(t->partition_count, sizeof *t->partitions);
    int err = rows && t->partitions ? place_rows(c, t, live, n, rows) : RQ_ENOMEM;
    for (uint32_t p = 0; err == 0 && p < t->partition_count; p++) {
        struct controller_partition *part = &t->partitions[p];
        part->group = t->group_base + p;
        part->replica_count = part->target_count = t->replication;
        memcpy(part->replicas, rows + (size_t)p * t->replication,
               t->replication * sizeof part->replicas[0]);
        memcpy(part->target, part->replicas, sizeof part->target);
        part->leader = part->replicas[0];
    }
    free(rows);
    if (err != 0) {
        free(t->partitions);
        t->partitions = NULL;
    }
    return err;
}

/* The members changed: every topic placed again over them (registered, not decommissioned, live
 * or not); each partition's row becomes its target. A topic with more replicas than members keeps
 * its targets (a decommission is refused before it gets there; see apply_decommission). */
static void rebalance(struct controller *c) {
    uint32_t members[CONTROLLER_BROKERS_MAX], n = 0;
    for (uint32_t i = 0; i < c->broker_count; i++)
        if (!c->brokers[i].decommissioned) members[n++] = c->brokers[i].id;
    for (uint32_t i = 0; i < c->topic_count; i++) {
        struct controller_topic *t = &c->topics[i];
        uint32_t *rows = calloc((size_t)t->partition_count * t->replication, sizeof *rows);
        /* Without memory the targets stay; the next change of members places again. */
        if (rows == NULL || place_rows(c, t, members, n, rows) != 0) {
            free(rows);
            continue;
        }
        for (uint32_t p = 0; p < t->partition_count; p++) {
            struct controller_partition *part = &t->partitions[p];
            part->target_count = t->replication;
            memcpy(part->target, rows + (size_t)p * t->replication,
                   t->replication * sizeof part->target[0]);
            forget_stray_leader(part);
        }
        free(rows);
    }
}

static void apply_create(struct controller *c, struct rq_reader *r, struct controller_result *res) {
    size_t n;
    const uint8_t *name = get_topic(r, &n);
    uint32_t partitions = (uint32_t)get_num(r, PROTO_PARTITIONS_MAX);
    uint32_t replication = (uint32_t)get_num(r, PLACEMENT_REPLICAS_MAX);
    uint64_t retention_ms = get_num(r, UINT64_MAX);
    uint64_t retention_bytes = get_num(r, UINT64_MAX);
    uint32_t max_message = (uint32_t)get_num(r, PROTO_FRAME_MAX);
    if (r->err != 0 || rq_reader_remaining(r) != 0) return;
    if (partitions == 0 || replication == 0 || max_message == 0) { res->error = RQ_EINVAL; return; }
    if (find_topic(c, name, n) >= 0) { res->error = RQ_ETOPICEXISTS; return; }
    if (c->topic_count == CONTROLLER_TOPICS_MAX ||
        c->partitions_total + partitions > CONTROLLER_PARTITIONS_MAX) {
        res->error = RQ_ENOMEM;
        return;
    }
    if (partitions > CONTROLLER_GROUP_LIMIT - c->next_group) { res->error = RQ_ENOSPC; return; }
    struct controller_topic *t = &c->topics[c->topic_count];
    memset(t, 0, sizeof *t);
    t->id = c->next_topic_id;
    t->name_size = (uint8_t)n;
    memcpy(t->name, name, n);
    t->partition_count = partitions;
    t->replication = replication;
    t->retention_ms = retention_ms;
    t->retention_bytes = retention_bytes;
    t->max_message_bytes = max_message;
    t->group_base = c->next_group;
    res->error = place(c, t);
    if (res->error != 0) return;
    c->next_group += partitions;
    c->next_topic_id++;
    c->topic_count++;
    c->partitions_total += partitions;
    res->topic = t;
}

static void apply_delete(struct controller *c, struct rq_reader *r, struct controller_result *res) {
    size_t n;
    const uint8_t *name = get_topic(r, &n);
    if (r->err != 0 || rq_reader_remaining(r) != 0) return;
    int32_t i = find_topic(c, name, n);
    if (i < 0) { res->error = RQ_ENOTOPIC; return; }
    c->partitions_total -= c->topics[i].partition_count;
    free(c->topics[i].partitions);
    memmove(&c->topics[i], &c->topics[i + 1], (c->topic_count - (uint32_t)i - 1) * sizeof c->topics[0]);
    c->topic_count--;
}

static void apply_leader(struct controller *c, struct rq_reader *r, struct controller_result *res) {
    size_t n;
    const uint8_t *name = get_topic(r, &n);
    uint32_t p = (uint32_t)get_num(r, PROTO_PARTITIONS_MAX - 1);
    uint32_t leader = (uint32_t)get_num(r, UINT32_MAX);
    uint64_t term = get_num(r, UINT64_MAX);
    if (r->err != 0 || rq_reader_remaining(r) != 0) return;
    int32_t i = find_topic(c, name, n);
    if (i < 0 || p >= c->topics[i].partition_count) { res->error = RQ_ENOTOPIC; return; }
    struct controller_partition *part = &c->topics[i].partitions[p];
    if (!controller_partition_has(part, leader)) { res->error = RQ_EINVAL; return; }
    if (term < part->leader_term) return;   /* an older report: the newer one stands */
    part->leader = leader;
    part->leader_term = term;
}

void controller_apply(struct controller *c, const uint8_t *data, size_t size,
                      struct controller_result *res) {
    memset(res, 0, sizeof *res);
    struct rq_reader r;
    rq_reader_init(&r, data, size);
    uint8_t kind = 0;
    rq_read_u8(&r, &kind);
    switch (r.err ? 0 : kind) {
    case CONTROLLER_REGISTER: apply_register(c, &r, res); break;
    case CONTROLLER_HEARTBEAT: apply_heartbeat(c, &r, res); break;
    case CONTROLLER_EXPIRE: apply_expire(c, &r); break;
    case CONTROLLER_CREATE_TOPIC: apply_create(c, &r, res); break;
    case CONTROLLER_DELETE_TOPIC: apply_delete(c, &r, res); break;
    case CONTROLLER_INIT_PRODUCER:
        if (rq_reader_remaining(&r) == 0) res->producer_id = c->next_producer_id++;
        else r.err = RQ_ECORRUPT;
        break;
    case CONTROLLER_LEADER: apply_leader(c, &r, res); break;
    case CONTROLLER_DECOMMISSION: apply_decommission(c, &r, res); break;
    case CONTROLLER_REPLICAS: apply_replicas(c, &r, res); break;
    default: r.err = RQ_ECORRUPT; break;
    }
    /* A command that did not decode (each apply_* checks before it changes anything) changed
     * nothing, on every replica alike. */
    if (r.err != 0 || rq_reader_remaining(&r) != 0) {
        c->malformed++;
        res->error = RQ_ECORRUPT;
    }
}

/* ---- the image ---------------------------------------------------------------------------------- */

static void write_image(const struct controller *c, struct rq_writer *w) {
    rq_write_u8(w, IMAGE_VERSION);
    rq_write_varint(w, c->next_topic_id);
    rq_write_varint(w, c->next_producer_id);
    rq_write_varint(w, c->next_group);
    rq_write_varint(w, c->broker_count);
    for (uint32_t i = 0; i < c->broker_count; i++) {
        const struct controller_broker *b = &c->brokers[i];
        rq_write_varint(w, b->id);
        rq_write_u8(w, b->alive);
        rq_write_u8(w, b->decommissioned);
        rq_write_varint(w, b->epoch);
        rq_write_varint(w, b->deadline_ns);
        put_string(w, b->address, b->address_size);
    }
    rq_write_varint(w, c->topic_count);
    for (uint32_t i = 0; i < c->topic_count; i++) {
        const struct controller_topic *t = &c->topics[i];
        rq_write_varint(w, t->id);
        put_string(w, t->name, t->name_size);
        rq_write_varint(w, t->partition_count);
        rq_write_varint(w, t->replication);
        rq_write_varint(w, t->retention_ms);
        rq_write_varint(w, t->retention_bytes);
        rq_write_varint(w, t->max_message_bytes);
        rq_write_varint(w, t->group_base);
        for (uint32_t p = 0; p < t->partition_count; p++) {
            const struct controller_partition *part = &t->partitions[p];
            rq_write_varint(w, part->replica_count);
            for (uint32_t k = 0; k < part->replica_count; k++) rq_write_varint(w, part->replicas[k]);
            rq_write_varint(w, part->target_count);
            for (uint32_t k = 0; k < part->target_count; k++) rq_write_varint(w, part->target[k]);
            rq_write_varint(w, part->leader);
            rq_write_varint(w, part->leader_term);
            rq_write_varint(w, part->replicas_term);
            rq_write_varint(w, part->replicas_index);
        }
    }
}

size_t controller_image_size(const struct controller *c) {
    /* An upper bound: every varint at its longest. */
    return 1 + 4 * 10 + (size_t)c->broker_count * (3 * 10 + 2 + 10 + PROTO_TEXT_MAX) +
           (size_t)c->topic_count * (8 * 10 + PROTO_TOPIC_NAME_MAX) +
           (size_t)c->partitions_total * ((2 * PLACEMENT_REPLICAS_MAX + 6) * 10);
}

size_t controller_image(const struct controller *c, uint8_t *buf, size_t cap) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_image(c, &w);
    return w.err ? 0 : w.len;
}

/* A replica set: a count of 1..PLACEMENT_REPLICAS_MAX distinct non-zero ids. */
static uint32_t read_ids(struct rq_reader *r, uint32_t *ids) {
    uint32_t n = (uint32_t)get_num(r, PLACEMENT_REPLICAS_MAX);
    if (r->err == 0 && n == 0) r->err = RQ_ECORRUPT;
    for (uint32_t k = 0; k < n && r->err == 0; k++) {
        ids[k] = (uint32_t)get_num(r, UINT32_MAX);
        if (r->err == 0 && (ids[k] == 0 || set_has(ids, k, ids[k]))) r->err = RQ_ECORRUPT;
    }
    return r->err ? 0 : n;
}

/* Reads an image into fresh state c (empty). Returns 0 or an error; c may be partly filled. */
static int read_image(struct controller *c, struct rq_reader *r) {
    uint8_t version = 0;
    rq_read_u8(r, &version);
    if (r->err == 0 && version != IMAGE_VERSION) r->err = RQ_ECORRUPT;
    c->next_topic_id = get_num(r, UINT64_MAX);
    c->next_producer_id = get_num(r, UINT64_MAX);
    c->next_group = (uint32_t)get_num(r, CONTROLLER_GROUP_LIMIT);
    if (r->err == 0 && c->next_group < CONTROLLER_GROUP_FIRST) r->err = RQ_ECORRUPT;
    uint32_t groups_end = CONTROLLER_GROUP_FIRST;   /* topics' groups ascend, never overlap */
    uint32_t brokers = (uint32_t)get_num(r, CONTROLLER_BROKERS_MAX);
    for (uint32_t i = 0; i < brokers && r->err == 0; i++) {
        struct controller_broker *b = &c->brokers[c->broker_count];
        b->id = (uint32_t)get_num(r, UINT32_MAX);
        uint8_t alive = 0, decommissioned = 0;
        rq_read_u8(r, &alive);
        rq_read_u8(r, &decommissioned);
        b->alive = alive;
        b->decommissioned = decommissioned;
        b->epoch = get_num(r, UINT64_MAX);
        b->deadline_ns = get_num(r, UINT64_MAX);
        size_t n;
        const uint8_t *a = get_string(r, PROTO_TEXT_MAX, &n);
        if (r->err) break;
        if (b->id == 0 || alive > 1 || decommissioned > 1 || find_broker(c, b->id) != NULL)
            r->err = RQ_ECORRUPT;
        b->address_size = (uint8_t)n;
        if (n) memcpy(b->address, a, n);
        c->broker_count++;
    }
    uint32_t topics = (uint32_t)get_num(r, CONTROLLER_TOPICS_MAX);
    for (uint32_t i = 0; i < topics && r->err == 0; i++) {
        struct controller_topic *t = &c->topics[c->topic_count];
        memset(t, 0, sizeof *t);
        t->id = get_num(r, UINT64_MAX);
        size_t n;
        const uint8_t *name = get_topic(r, &n);
        t->partition_count = (uint32_t)get_num(r, PROTO_PARTITIONS_MAX);
        t->replication = (uint32_t)get_num(r, PLACEMENT_REPLICAS_MAX);
        t->retention_ms = get_num(r, UINT64_MAX);
        t->retention_bytes = get_num(r, UINT64_MAX);
        t->max_message_bytes = (uint32_t)get_num(r, PROTO_FRAME_MAX);
        t->group_base = (uint32_t)get_num(r, CONTROLLER_GROUP_LIMIT);
        if (r->err) break;
        /* Within [groups_end, next_group): below the counter, so never handed out again (and
         * below CONTROLLER_GROUP_LIMIT); group_base > next_group would wrap the subtraction. */
        if (t->group_base < groups_end || t->group_base > c->next_group ||
            t->partition_count > c->next_group - t->group_base) {
            r->err = RQ_ECORRUPT;
            break;
        }
        groups_end = t->group_base + t->partition_count;
        if (t->id == 0 || t->id >= c->next_topic_id || t->partition_count == 0 ||
            t->replication == 0 || t->max_message_bytes == 0 || find_topic(c, name, n) >= 0 ||
            c->partitions_total + t->partition_count > CONTROLLER_PARTITIONS_MAX) {
            r->err = RQ_ECORRUPT;
            break;
        }
        t->name_size = (uint8_t)n;
        memcpy(t->name, name, n);
        t->partitions = calloc(t->partition_count, sizeof *t->partitions);
        if (t->partitions == NULL) { r->err = RQ_ENOMEM; break; }
        c->topic_count++;
        c->partitions_total += t->partition_count;
        for (uint32_t p = 0; p < t->partition_count && r->err == 0; p++) {
            struct controller_partition *part = &t->partitions[p];
            part->group = t->group_base + p;
            part->replica_count = read_ids(r, part->replicas);
            part->target_count = read_ids(r, part->target);
            part->leader = (uint32_t)get_num(r, UINT32_MAX);
            part->leader_term = get_num(r, UINT64_MAX);
            part->replicas_term = get_num(r, UINT64_MAX);
            part->replicas_index = get_num(r, UINT64_MAX);
            if (r->err == 0 && part->leader != 0 && !controller_partition_has(part, part->leader))
                r->err = RQ_ECORRUPT;
        }
    }
    if (r->err == 0 && rq_reader_remaining(r) != 0) r->err = RQ_ECORRUPT;
    if (r->err == 0 && (c->next_topic_id == 0 || c->next_producer_id == 0)) r->err = RQ_ECORRUPT;
    return r->err;
}

int controller_restore(struct controller *c, const uint8_t *image, size_t size) {
    struct controller *fresh = controller_create(c->heartbeat_timeout_ns);
    if (fresh == NULL) return RQ_ENOMEM;
    struct rq_reader r;
    rq_reader_init(&r, image, size);
    int err = read_image(fresh, &r);
    if (err != 0) {
        controller_destroy(fresh);
        return err;
    }
    free_topics(c);
    fresh->malformed = c->malformed;
    memcpy(c, fresh, sizeof *c);
    free(fresh);   /* its topics' partitions now belong to c */
    return 0;
}
