/* A raftq server: the controller group, partition groups and the cluster; see broker.h. Clients'
 * requests are in broker_client.c. */
#include "node/broker.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "base/log.h"
#include "node/broker_internal.h"
#include "raft/msg.h"

_Static_assert((int)CONTROLLER_GROUP_LIMIT <= (int)HOST_GROUP_ID_LIMIT, "partition group ids fit the host");

void broker_config_default(struct broker_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    host_config_default(&cfg->host);
    cfg->heartbeat_every_ns = 200 * 1000 * 1000ull;
    cfg->heartbeat_timeout_ns = 2 * 1000 * 1000 * 1000ull;
    cfg->expire_every_ns = 500 * 1000 * 1000ull;
    cfg->request_timeout_ns = 10 * 1000 * 1000 * 1000ull;
}

uint64_t broker_now(const struct broker *b) { return b->io->now(b->io->env); }
struct host *broker_host(const struct broker *b) { return b->host; }
const struct controller *broker_controller(const struct broker *b) { return ctl_group_state(b->ctl); }
void broker_stats_get(const struct broker *b, struct broker_stats *out) {
    *out = b->stats;
    for (uint32_t g = 0; g < HOST_GROUP_ID_LIMIT; g++) {   /* what this node proposed as a leader */
        if (b->parts[g] == NULL) continue;
        const struct part_group_stats *ps = part_group_stats(b->parts[g]->pg);
        out->entries_proposed += ps->entries_proposed;
        out->batches_proposed += ps->batches_proposed;
        out->shared_entries += ps->shared_entries;
        out->shared_batches += ps->shared_batches;
    }
}

int broker_partition_of_group(const struct broker *b, uint32_t group, const char **topic,
                              uint32_t *partition) {
    const struct broker_part *part = group < HOST_GROUP_ID_LIMIT ? b->parts[group] : NULL;
    if (part == NULL) return 0;
    *topic = part->topic;
    *partition = part->partition;
    return 1;
}

int broker_group_metrics(const struct broker *b, uint32_t group, struct broker_group_metrics *out) {
    const struct raft *r = group < HOST_GROUP_ID_LIMIT ? host_raft(b->host, group) : NULL;
    if (r == NULL) return 0;
    memset(out, 0, sizeof *out);
    out->group = group;
    out->role = raft_role(r);
    out->term = raft_term(r);
    out->leader = raft_leader(r);
    out->commit_index = raft_commit(r);
    out->applied_index = raft_applied_index(r);
    const struct broker_part *part = group != CONTROLLER_GROUP ? b->parts[group] : NULL;
    if (part != NULL) {
        out->topic = part->topic;
        out->partition = part->partition;
        out->high_watermark = part_group_state(part->pg)->next_offset;
        out->log_start = part_group_log_start(part->pg);
        out->bytes_in = part->bytes_in;
        out->bytes_out = part->bytes_out;
    }
    return 1;
}

struct broker_part *broker_part_find(struct broker *b, struct proto_bytes topic, uint32_t p,
                                     int *err) {
    *err = host_is_ready(b->host) ? RQ_ENOTOPIC : RQ_ECLOSED;
    if (*err == RQ_ECLOSED) return NULL;
    const struct controller_topic *t = controller_topic(broker_controller(b), topic.data, topic.size);
    if (t == NULL || p >= t->partition_count) return NULL;
    /* NULL: no replica here, or one that moved away (its group may still run: not removed). */
    if (!controller_partition_has(&t->partitions[p], b->io->node_id)) return NULL;
    struct broker_part *part = b->parts[t->partitions[p].group];
    if (part != NULL) *err = 0;
    return part;
}

/* ---- the host's callbacks: each group's state machine ------------------------------------------ */

static struct broker_part *part_of(struct broker *b, uint32_t group) {
    struct broker_part *part = group < HOST_GROUP_ID_LIMIT ? b->parts[group] : NULL;
    RQ_ASSERT(part != NULL);   /* the host runs only the groups the broker added */
    return part;
}

/* The observer sees every batch: once per entry, or once per batch of a SHARED entry with e's
 * data narrowed to that batch (a BATCH entry of its own). */
static void observe_applied(struct broker *b, uint32_t group, const struct raft_entry *e,
                            const struct partition_apply_result *res, uint32_t n) {
    struct partition_split split;
    if (n == 1 || e->type != RAFT_ENTRY_NORMAL ||
        partition_entry_split(e->data, e->data_size, &split) != 0 || split.count != n) {
        b->obs.partition_applied(b->obs.arg, b->io->node_id, group, e, &res[0]);
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        struct raft_entry part = *e;
        part.data = split.data[k];
        part.data_size = (uint32_t)split.size[k];
        b->obs.partition_applied(b->obs.arg, b->io->node_id, group, &part, &res[k]);
    }
}

static void on_apply(void *arg, uint32_t group, const struct raft_entry *e) {
    struct broker *b = arg;
    if (group == CONTROLLER_GROUP) {
        ctl_group_apply(b->ctl, e);
        b->placement_changed = 1;
        return;
    }
    struct broker_part *part = part_of(b, group);
    struct partition_apply_result res[PARTITION_SHARED_MAX];
    uint32_t n = part_group_apply(part->pg, e, res);
    if (b->obs.partition_applied) observe_applied(b, group, e, res, n);
    int appended = 0;
    for (uint32_t k = 0; k < n; k++) appended |= res[k].outcome == PARTITION_APPENDED;
    if (appended && part->waiting_first >= 0) broker_fetch_wake(b, part);
}

static size_t on_snapshot(void *arg, uint32_t group, uint8_t *buf, size_t cap) {
    struct broker *b = arg;
    if (group == CONTROLLER_GROUP) return ctl_group_snapshot(b->ctl, buf, cap);
    return part_group_snapshot(part_of(b, group)->pg, buf, cap);
}

static void on_restore(void *arg, uint32_t group, uint64_t index, const uint8_t *image,
                       size_t size) {
    struct broker *b = arg;
    if (group == CONTROLLER_GROUP) {
        ctl_group_restore(b->ctl, image, size);
        b->placement_changed = 1;
        if (ctl_group_bad_images(b->ctl) > 0) host_fail(b->host, "controller image does not restore");
        return;
    }
    struct broker_part *part = part_of(b, group);
    part_group_restore(part->pg, index, image, size);
    if (part_group_bad_images(part->pg) > 0) host_fail(b->host, "partition image does not restore");
}

/* ---- partition replicas: added as the controller's state places them here --------------------- */

static void add_part(struct broker *b, const struct controller_topic *t, uint32_t p) {
    const struct controller_partition *cp = &t->partitions[p];
    struct broker_part *part = calloc(1, sizeof *part);
    if (part == NULL) {   /* tried again at the next tick */
        b->placement_changed = 1;
        return;
    }
    part->group = cp->group;
    part->partition = p;
    part->waiting_first = part->waiting_last = -1;
    memcpy(part->topic, t->name, t->name_size);
    part->pg = part_group_create(cp->group, b->cfg.request_timeout_ns, broker_part_done, b);
    /* Listed before the group exists, so that its callbacks find it however early they come. */
    b->parts[cp->group] = part;
    int err = part->pg ? host_group_add(b->host, cp->group, cp->replicas, cp->replica_count,
                                        HOST_GROUP_STORED_LOG)
                       : RQ_ENOMEM;
    if (err != 0) {
        b->parts[cp->group] = NULL;
        b->placement_changed = 1;   /* try again */
        RQ_WARN("broker: partition %s/%" PRIu32 " (group %" PRIu32 "): %s", part->topic, p,
                cp->group, rq_strerror(err));
        part_group_destroy(part->pg);
        free(part);
        return;
    }
    RQ_INFO("broker: replica of %s/%" PRIu32 " (group %" PRIu32 ")", part->topic, p, cp->group);
}

/* A group that is no longer placed here (its topic was deleted, or this replica moved away) gives
 * its memory back: host_group_shrink. It keeps running (removing a group from the store is not
 * built), but an idle group costs little beyond its files. */
static void shrink_unplaced(struct broker *b, const uint8_t *placed) {
    for (uint32_t g = 0; g < HOST_GROUP_ID_LIMIT; g++) {
        struct broker_part *part = b->parts[g];
        if (part == NULL || part->shrunk || placed[g]) continue;
        if (host_group_shrink(b->host, g) != 0) continue; /* not ready: at the next change */
        part->shrunk = 1;
        RQ_INFO("broker: %s/%" PRIu32 " (group %" PRIu32 ") is no longer placed here: shrunk",
                part->topic, part->partition, g);
    }
}

/* Adds the groups of every partition the controller's state places on this node (in its replica
 * set or its target: a replica moving here starts with the current replica set as its bootstrap
 * voters, so it never campaigns, and learns its membership from the leader), once that state
 * changed (a replica that could not be added is tried again at the next tick), and shrinks those
 * no longer placed here. */
static void reconcile_parts(struct broker *b) {
    if (!b->placement_changed) return;
    b->placement_changed = 0;
    const struct controller *c = broker_controller(b);
    uint8_t placed[HOST_GROUP_ID_LIMIT] = {0};
    for (uint32_t i = 0; i < controller_topic_count(c); i++) {
        const struct controller_topic *t = controller_topic_at(c, i);
        for (uint32_t p = 0; p < t->partition_count; p++) {
            const struct controller_partition *cp = &t->partitions[p];
            if (!controller_partition_has(cp, b->io->node_id)) continue;
            RQ_ASSERT(cp->group < HOST_GROUP_ID_LIMIT);
            placed[cp->group] = 1;
            if (b->parts[cp->group] == NULL) add_part(b, t, p);
        }
    }
    shrink_unplaced(b, placed);
}

/* ---- the cluster: registration, heartbeats and leader reports, forwarded to the controller ----- *
 *
 * FORWARD payload: u8 kind (CONTROLLER_REGISTER, _HEARTBEAT, _LEADER or _REPLICAS), varint
 * broker, then REGISTER: string address; LEADER: string topic, varint partition, varint term;
 * REPLICAS: string topic, varint partition, varint term, varint config_index, varint count, count
 * varint voters. The controller's leader turns it into the command, stamped with its own clock
 * (the controller's times are its leader's, never a broker's). */

static void put_string(struct rq_writer *w, const void *s, size_t n) {
    rq_write_varint(w, n);
    rq_write_bytes(w, s, n);
}

/* Proposes the command locally when this node leads the controller, else sends it there. */
static void to_controller(struct broker *b, const uint8_t *fwd, size_t size);

/* The voters of a partition group this node leads, for a REPLICAS report. */
struct voters {
    uint64_t config_index;
    uint32_t count;
    uint32_t ids[RAFT_MEMBERS_MAX];
};

static void send_forward(struct broker *b, uint8_t kind, const char *topic, uint32_t partition,
                         uint64_t term, const struct voters *v) {
    uint8_t payload[PROTO_FORWARD_MAX];
    struct rq_writer w;
    rq_writer_init(&w, payload, sizeof payload);
    rq_write_u8(&w, kind);
    rq_write_varint(&w, b->io->node_id);
    if (kind == CONTROLLER_REGISTER) put_string(&w, b->cfg.address, strlen(b->cfg.address));
    if (kind == CONTROLLER_LEADER || kind == CONTROLLER_REPLICAS) {
        put_string(&w, topic, strlen(topic));
        rq_write_varint(&w, partition);
        rq_write_varint(&w, term);
    }
    if (kind == CONTROLLER_REPLICAS) {
        rq_write_varint(&w, v->config_index);
        rq_write_varint(&w, v->count);
        for (uint32_t k = 0; k < v->count; k++) rq_write_varint(&w, v->ids[k]);
    }
    RQ_ASSERT(w.err == 0);
    to_controller(b, payload, w.len);
}

/* The controller command a FORWARD asks for, or 0 when it does not decode. */
static size_t command_of(const struct broker *b, const uint8_t *fwd, size_t size, uint8_t *cmd) {
    struct rq_reader r;
    rq_reader_init(&r, fwd, size);
    uint8_t kind = 0;
    uint64_t broker = 0, n = 0, partition = 0, term = 0, config_index = 0, count = 0;
    uint32_t voters[PLACEMENT_REPLICAS_MAX] = {0};
    rq_read_u8(&r, &kind);
    rq_read_varint(&r, &broker);
    char text[PROTO_TEXT_MAX + 1] = {0};
    int has_topic = kind == CONTROLLER_LEADER || kind == CONTROLLER_REPLICAS;
    if (kind == CONTROLLER_REGISTER || has_topic) {
        size_t max = kind == CONTROLLER_REGISTER ? PROTO_TEXT_MAX : PROTO_TOPIC_NAME_MAX;
        const uint8_t *bytes = NULL;
        if (rq_read_varint(&r, &n) == 0 && n <= max && n < sizeof text &&
            rq_read_bytes(&r, n, &bytes) == 0)
            memcpy(text, bytes, n);
        else if (r.err == 0)
            r.err = RQ_ECORRUPT;
    }
    if (has_topic) {
        rq_read_varint(&r, &partition);
        rq_read_varint(&r, &term);
    }
    if (kind == CONTROLLER_REPLICAS) {
        rq_read_varint(&r, &config_index);
        rq_read_varint(&r, &count);
        if (r.err == 0 && (count < 1 || count > PLACEMENT_REPLICAS_MAX)) r.err = RQ_ECORRUPT;
        for (uint64_t k = 0; k < count && r.err == 0; k++) {
            uint64_t id = 0;
            rq_read_varint(&r, &id);
            voters[k] = id >= 1 && id <= RQ_NODE_ID_MAX ? (uint32_t)id : 0;
            for (uint64_t j = 0; j < k; j++) if (voters[j] == voters[k]) voters[k] = 0;
            if (r.err == 0 && voters[k] == 0) r.err = RQ_ECORRUPT;
        }
    }
    if (r.err != 0 || rq_reader_remaining(&r) != 0 || broker < 1 || broker > RQ_NODE_ID_MAX)
        return 0;
    if (has_topic && (!proto_topic_name_valid((const uint8_t *)text, n) ||
                      partition >= PROTO_PARTITIONS_MAX))
        return 0;
    uint64_t now = broker_now(b);
    switch (kind) {
    case CONTROLLER_REGISTER: return controller_cmd_register(cmd, (uint32_t)broker, text, now);
    case CONTROLLER_HEARTBEAT: return controller_cmd_heartbeat(cmd, (uint32_t)broker, now);
    case CONTROLLER_LEADER:
        return controller_cmd_leader(cmd, text, (uint32_t)partition, (uint32_t)broker, term);
    case CONTROLLER_REPLICAS:
        return controller_cmd_replicas(cmd, text, (uint32_t)partition, term, config_index, voters,
                                       (uint32_t)count);
    default: return 0;
    }
}

static void propose_forward(struct broker *b, const uint8_t *fwd, size_t size) {
    uint8_t cmd[CONTROLLER_CMD_MAX];
    size_t n = command_of(b, fwd, size, cmd);
    if (n == 0) {
        b->stats.bad_requests++;
        RQ_WARN("broker: a forwarded controller command does not decode (%zu bytes)", size);
        return;
    }
    if (ctl_group_propose(b->ctl, b->host, cmd, n, 0, broker_now(b)) == 0)
        b->stats.forwards_proposed++;
}

static void to_controller(struct broker *b, const uint8_t *fwd, size_t size) {
    const struct raft *r = host_raft(b->host, CONTROLLER_GROUP);
    uint32_t leader = r ? raft_leader(r) : 0;
    if (leader == 0) return;   /* tried again at the next heartbeat */
    if (leader == b->io->node_id) {
        propose_forward(b, fwd, size);
        return;
    }
    uint8_t frame[PROTO_FRAME_HEADER + PROTO_FORWARD_MAX];
    size_t n = proto_frame_encode(frame, sizeof frame, PROTO_FORWARD, 0, fwd, (uint32_t)size);
    RQ_ASSERT(n > 0);
    b->io->send(b->io->env, leader, frame, n);
    b->stats.forwards_sent++;
}

/* Whether the group's committed voters differ (as a set) from the replica set the controller
 * records: then *v is what to report. A configuration not committed yet is not reported (it may
 * still be truncated away). */
static int voters_changed(const struct raft *r, const struct controller_partition *cp,
                          struct voters *v) {
    struct raft_membership m;
    raft_membership_get(r, &m);
    /* A configuration whose CONFIG entry was compacted into a snapshot holds as of the log's base:
     * report that index. Reported as 0 it was never newer than what the controller had recorded
     * (it keeps the newest by term and index), so a finished move stayed unrecorded for good
     * (mq seed 2090 with 5 nodes, once snapshots compacted more often). */
    v->config_index = raft_membership_index(r);
    if (v->config_index == 0) v->config_index = raft_first_index(r) - 1;
    if (v->config_index > raft_commit(r)) return 0;
    v->count = 0;
    int differs = 0;
    for (uint32_t k = 0; k < m.count; k++) {
        if (!m.voter[k]) continue;
        v->ids[v->count++] = m.ids[k];
        int known = 0;
        for (uint32_t j = 0; j < cp->replica_count; j++) known |= cp->replicas[j] == m.ids[k];
        differs |= !known;
    }
    return v->count >= 1 && v->count <= PLACEMENT_REPLICAS_MAX &&
           (differs || v->count != cp->replica_count);
}

/* Every heartbeat period: register (again) when the controller does not count this broker as
 * live, else heartbeat; report each partition this node leads that the controller does not
 * record as led by it in its current term, and each whose voters it records otherwise. */
static void heartbeat(struct broker *b, uint64_t now) {
    if (now < b->next_heartbeat_ns) return;
    b->next_heartbeat_ns = now + b->cfg.heartbeat_every_ns;
    const struct controller *c = broker_controller(b);
    const struct controller_broker *me = controller_broker(c, b->io->node_id);
    send_forward(b, me && me->alive ? CONTROLLER_HEARTBEAT : CONTROLLER_REGISTER, NULL, 0, 0,
                 NULL);
    for (uint32_t i = 0; i < controller_topic_count(c); i++) {
        const struct controller_topic *t = controller_topic_at(c, i);
        for (uint32_t p = 0; p < t->partition_count; p++) {
            const struct controller_partition *cp = &t->partitions[p];
            const struct raft *r = b->parts[cp->group] ? host_raft(b->host, cp->group) : NULL;
            if (r == NULL || raft_role(r) != RAFT_LEADER) continue;
            const char *topic = b->parts[cp->group]->topic;
            if (cp->leader != b->io->node_id || cp->leader_term < raft_term(r))
                send_forward(b, CONTROLLER_LEADER, topic, p, raft_term(r), NULL);
            struct voters v;
            if (voters_changed(r, cp, &v)) send_forward(b, CONTROLLER_REPLICAS, topic, p, raft_term(r), &v);
        }
    }
}

/* ---- lifecycle and the environment's entry points --------------------------------------------- */

static void on_ready(void *arg) {
    struct broker *b = arg;
    b->placement_changed = 1;
    reconcile_parts(b);
}

/* Store reads: a fetch's (a request cookie), or a partition's index scan (SCAN_COOKIE | the
 * scan's generation << 32 | group). */
#define SCAN_COOKIE (UINT64_C(1) << 63)

static void on_log_read(void *arg, uint32_t group, uint64_t cookie, int err,
                        const struct raft_entry *entries, uint32_t count) {
    struct broker *b = arg;
    if (!(cookie & SCAN_COOKIE)) {
        broker_fetch_loaded(b, cookie, err, entries, count);
        return;
    }
    part_group_scan_loaded(part_of(b, group)->pg, (uint32_t)(cookie >> 32) & 0x7FFFFFFFu, err,
                           entries, count);
}

/* Drives each partition's index scan after a restore, one store read at a time. */
static void scan_parts(struct broker *b) {
    for (uint32_t g = CONTROLLER_GROUP_FIRST; g < CONTROLLER_GROUP_LIMIT; g++) {
        uint64_t from;
        uint32_t generation;
        struct broker_part *part = b->parts[g];
        if (part == NULL || host_raft(b->host, g) == NULL ||
            !part_group_scan_wanted(part->pg, &from, &generation))
            continue;
        uint64_t first = host_stored_first(b->host, g);   /* retention may have deleted the start */
        if (from < first) from = first;
        uint64_t cookie = SCAN_COOKIE | (uint64_t)(generation & 0x7FFFFFFFu) << 32 | g;
        part_group_scan_started(part->pg);   /* before: the answer may come inside the call */
        b->stats.scans++;
        int err = host_read_log(b->host, g, from, HOST_LOG_READ_ENTRIES_MAX, cookie);
        if (err != 0) part_group_scan_loaded(part->pg, generation, err, NULL, 0);
    }
}

/* Retention: each partition's leader applies its topic's policy (part_group_retention), and every
 * replica deletes the stored entries that hold only deleted records. */
static void retain_parts(struct broker *b, uint64_t now) {
    if (now < b->next_retention_ns) return;   /* not every tick: a topic lookup per partition */
    b->next_retention_ns = now + PART_GROUP_RETENTION_EVERY_NS;
    const struct controller *c = broker_controller(b);
    for (uint32_t g = CONTROLLER_GROUP_FIRST; g < CONTROLLER_GROUP_LIMIT; g++) {
        struct broker_part *part = b->parts[g];
        const struct raft *r = part ? host_raft(b->host, g) : NULL;
        if (r == NULL) continue;
        const struct controller_topic *t =
            controller_topic(c, (const uint8_t *)part->topic, strlen(part->topic));
        if (raft_role(r) == RAFT_LEADER && t != NULL) {
            struct part_group_retention policy = {
                .time_ns = t->retention_ms > UINT64_MAX / 1000000 ? 0 : t->retention_ms * 1000000,
                .bytes = t->retention_bytes};
            uint64_t given_up = part_group_given_up(part->pg);
            int err = part_group_retention(part->pg, b->host, &policy, now);
            if (err != 0 && err != RQ_ENOTLEADER) b->stats.retention_checks_failed++;
            b->stats.records_given_up += part_group_given_up(part->pg) - given_up;
        }
        uint64_t below = part_group_retain_below(part->pg);
        if (below > part->retained_below && host_retain_log(b->host, g, below) == 0) {
            part->retained_below = below;
            b->stats.log_compactions++;
        }
    }
}

static void on_durable(void *arg, uint32_t group, uint64_t index) {
    struct broker *b = arg;
    const struct raft *r = host_raft(b->host, group);
    if (group != CONTROLLER_GROUP && r != NULL)
        part_group_durable(part_of(b, group)->pg, b->host, index);
}

static void on_read(void *arg, uint32_t group, uint64_t ctx) {
    (void)group;
    broker_fetch_confirmed(arg, ctx);
}

struct broker *broker_create(const struct rq_io *io, const struct broker_config *cfg,
                             const struct broker_observer *obs) {
    RQ_ASSERT(cfg->controller_count >= 1 && cfg->controller_count <= RAFT_VOTERS_MAX);
    RQ_ASSERT(strlen(cfg->address) <= PROTO_TEXT_MAX && cfg->heartbeat_every_ns > 0);
    struct broker *b = calloc(1, sizeof *b);
    if (b == NULL) return NULL;
    b->io = io;
    b->cfg = *cfg;
    if (obs) b->obs = *obs;
    b->next_generation = 1;
    struct host_config hc = cfg->host;
    hc.groups = CONTROLLER_GROUP;   /* the controller; partitions are added as placed */
    memcpy(hc.raft.voters, cfg->controllers, sizeof hc.raft.voters);
    hc.raft.voter_count = cfg->controller_count;
    struct ctl_group_config cc = {.group = CONTROLLER_GROUP,
                                  .heartbeat_timeout_ns = cfg->heartbeat_timeout_ns,
                                  .expire_every_ns = cfg->expire_every_ns,
                                  .pending_timeout_ns = cfg->request_timeout_ns};
    static const struct host_callbacks cb = {.apply = on_apply, .snapshot = on_snapshot,
                                             .restore = on_restore, .ready = on_ready,
                                             .read = on_read, .durable = on_durable,
                                             .log_read = on_log_read};
    b->ctl = ctl_group_create(&cc, broker_ctl_done, b);
    b->host = b->ctl ? host_create(io, &hc, &cb, b) : NULL;
    if (b->host == NULL) {
        broker_destroy(b);
        return NULL;
    }
    return b;
}

void broker_destroy(struct broker *b) {
    if (b == NULL) return;
    host_destroy(b->host);
    for (uint32_t g = 0; g < HOST_GROUP_ID_LIMIT; g++) {
        if (b->parts[g] == NULL) continue;
        part_group_destroy(b->parts[g]->pg);
        free(b->parts[g]);
    }
    ctl_group_destroy(b->ctl);
    coord_destroy(b->coord);
    free(b);
}

void broker_start(struct broker *b) { host_start(b->host); }

void broker_on_timer(struct broker *b) {
    host_on_timer(b->host);
    if (!host_is_ready(b->host)) return;
    uint64_t now = broker_now(b);
    reconcile_parts(b);
    scan_parts(b);
    retain_parts(b, now);
    broker_move_parts(b);
    heartbeat(b, now);
    ctl_group_tick(b->ctl, b->host, now);
    broker_groups_tick(b, now);
    for (uint32_t g = 0; g < HOST_GROUP_ID_LIMIT; g++)
        if (b->parts[g] != NULL) part_group_tick(b->parts[g]->pg, b->host, now);
    broker_requests_tick(b, now);
}

void broker_on_peer_message(struct broker *b, uint32_t from, const void *buf, size_t len) {
    const uint8_t *p = buf;
    if (len >= 4 && rq_get_u32(p) == RAFT_BATCH_MAGIC) {
        host_on_peer_message(b->host, from, buf, len);
        return;
    }
    struct proto_frame f;
    size_t used;
    struct proto_msg m;
    int err = proto_frame_decode(p, len, PROTO_FRAME_MAX, &f, &used);
    if (err == 0 && used == len && f.type == PROTO_FORWARD &&
        proto_decode(f.type, f.payload, f.payload_size, &m) == 0) {
        if (host_is_ready(b->host)) propose_forward(b, m.u.forward.data, m.u.forward.size);
        return;
    }
    b->stats.bad_requests++;
    RQ_WARN("broker: a message from n%" PRIu32 " (%zu bytes) is neither a Raft batch nor a "
            "forwarded command", from, len);
}

void broker_on_disk_done(struct broker *b, struct rq_disk_req *req) { host_on_disk_done(b->host, req); }
