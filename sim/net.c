/* The simulated network: per-message latency (with a long tail, hence reordering), loss,
 * duplication, a bound on messages in flight to one process, and partitions. A message is
 * dropped if its link is cut when it is sent or when it would arrive. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "sim/sim_internal.h"

enum { PARTITION_SPLIT, PARTITION_ISOLATE, PARTITION_ISOLATE_LEADER, PARTITION_ONE_WAY,
       PARTITION_BRIDGE, PARTITION_FLAP, PARTITION_KINDS };

static uint64_t net_latency(struct sim *s) {
    uint64_t lat = rq_rng_range(&s->rng_net, s->latency_min_ns, s->latency_max_ns);
    if (rq_rng_chance(&s->rng_net, s->tail_ppm)) lat += rq_rng_range(&s->rng_net, 0, s->tail_max_ns);
    return lat;
}

static void net_drop(struct sim *s, const struct sim_proc *from, const struct sim_proc *to, const char *why) {
    s->stats.messages_dropped++;
    sim_hash(s, 0xD809 ^ ((uint64_t)from->id << 32) ^ to->id);
    if (s->cfg.trace) sim_trace(s, "n%u -> n%u dropped: %s", from->id, to->id, why);
}

static void net_enqueue(struct sim *s, struct sim_proc *from, struct sim_proc *to, int is_client_msg,
                        uint64_t conn, const void *buf, size_t len) {
    if (to->inflight >= SIM_INFLIGHT_PER_DEST_MAX) {
        net_drop(s, from, to, "receive buffer full");
        return;
    }
    struct sim_event *ev = sim_event_new(s, EV_DELIVER, to->index);
    ev->from = from->index;
    ev->is_client_msg = (uint8_t)is_client_msg;
    ev->conn = conn;
    ev->len = (uint32_t)len;
    ev->data = malloc(len ? len : 1);
    RQ_ASSERT(ev->data != NULL);
    if (len) memcpy(ev->data, buf, len);
    to->inflight++;
    sim_event_push(s, s->now_ns + net_latency(s), ev);
}

void net_transmit(struct sim *s, struct sim_proc *from, struct sim_proc *to, int is_client_msg,
                  uint64_t conn, const void *buf, size_t len) {
    if (s->cut[from->index][to->index]) {
        net_drop(s, from, to, "partitioned");
        return;
    }
    if (rq_rng_chance(&s->rng_net, s->loss_ppm)) {
        net_drop(s, from, to, "lost");
        return;
    }
    net_enqueue(s, from, to, is_client_msg, conn, buf, len);
    if (rq_rng_chance(&s->rng_net, s->dup_ppm)) {
        s->stats.messages_duplicated++;
        net_enqueue(s, from, to, is_client_msg, conn, buf, len);
    }
}

void net_deliver(struct sim *s, struct sim_event *ev) {
    struct sim_proc *to = &s->procs[ev->proc];
    struct sim_proc *from = &s->procs[ev->from];
    RQ_ASSERT(to->inflight > 0);
    to->inflight--;
    if (!to->up) {
        net_drop(s, from, to, "destination down");
        return;
    }
    if (s->cut[from->index][to->index]) {
        net_drop(s, from, to, "partitioned in flight");
        return;
    }
    /* A client message belongs to one connection, which died if the client restarted; so does
     * a server's reply on it (conn names the client's incarnation): a reply in flight when the
     * client restarted must not reach the new process, whose requests reuse the old one's
     * correlation ids (mq seed 19610: a late answer acknowledged the wrong message). */
    if (ev->is_client_msg && from->incarnation != (uint32_t)ev->conn) {
        net_drop(s, from, to, "connection closed");
        return;
    }
    if (!ev->is_client_msg && ev->conn != 0 && to->incarnation != (uint32_t)ev->conn) {
        net_drop(s, from, to, "connection closed");
        return;
    }
    s->stats.messages_delivered++;
    sim_hash(s, ((uint64_t)from->id << 32) ^ ((uint64_t)ev->len << 8) ^ to->id);
    if (s->cfg.trace) sim_trace(s, "n%u <- n%u %uB", to->id, from->id, ev->len);
    rq_ctx_set(&to->ctx);
    if (ev->is_client_msg) to->ops->on_client_message(to->node, ev->conn, ev->data, ev->len);
    else to->ops->on_peer_message(to->node, from->id, ev->data, ev->len);
    rq_ctx_set(NULL);
}

/* ---- partitions (servers only; clients stay reachable unless a server is isolated) --------- */

static void cut_both(struct sim *s, uint32_t a, uint32_t b) {
    s->cut[a][b] = 1;
    s->cut[b][a] = 1;
}

/* Cuts every link between a server in `side` (bitmask over server indexes) and one outside it. */
static void cut_sides(struct sim *s, uint32_t side) {
    for (uint32_t a = 0; a < s->cfg.servers; a++) {
        for (uint32_t b = 0; b < s->cfg.servers; b++) {
            if (((side >> a) & 1) && !((side >> b) & 1)) cut_both(s, a, b);
        }
    }
}

static uint32_t random_server(struct sim *s) { return (uint32_t)rq_rng_below(&s->rng_faults, s->cfg.servers); }

static uint32_t random_side(struct sim *s) {
    uint32_t all = (1u << s->cfg.servers) - 1;
    uint32_t side;
    do side = (uint32_t)rq_rng_below(&s->rng_faults, all + 1);
    while (side == 0 || side == all);
    return side;
}

void sim_net_cut(struct sim *s, uint32_t from, uint32_t to) {
    struct sim_proc *a = sim_proc_by_id(s, from);
    struct sim_proc *b = sim_proc_by_id(s, to);
    RQ_ASSERT(a != NULL && b != NULL);
    s->cut[a->index][b->index] = 1;
}

void sim_net_heal(struct sim *s) {
    memset(s->cut, 0, sizeof s->cut);
    s->partition_active = 0;
    s->flap_left = 0;
}

int sim_net_is_cut(const struct sim *s, uint32_t from, uint32_t to) {
    struct sim_proc *a = sim_proc_by_id((struct sim *)s, from);
    struct sim_proc *b = sim_proc_by_id((struct sim *)s, to);
    RQ_ASSERT(a != NULL && b != NULL);
    return s->cut[a->index][b->index];
}

void sim_net_set(struct sim *s, uint32_t loss_ppm, uint32_t dup_ppm, uint64_t latency_min_ns,
                 uint64_t latency_max_ns, uint32_t tail_ppm, uint64_t tail_max_ns) {
    RQ_ASSERT(latency_min_ns <= latency_max_ns);
    s->loss_ppm = loss_ppm;
    s->dup_ppm = dup_ppm;
    s->latency_min_ns = latency_min_ns;
    s->latency_max_ns = latency_max_ns;
    s->tail_ppm = tail_ppm;
    s->tail_max_ns = tail_max_ns;
}

void net_partition(struct sim *s) {
    if (s->cfg.servers < 2) return;
    memset(s->cut, 0, sizeof s->cut);
    s->partition_active = 1;
    s->stats.partitions++;
    uint32_t kind = (uint32_t)rq_rng_below(&s->rng_faults, PARTITION_KINDS);
    uint32_t n = random_server(s);
    switch (kind) {
    case PARTITION_SPLIT: {
        uint32_t side = random_side(s);
        cut_sides(s, side);
        sim_note(s, 0x5B17 ^ side, "partition: split servers by mask %#x", side);
        break;
    }
    case PARTITION_ISOLATE_LEADER:
        if (s->leader_hint >= 1 && s->leader_hint <= s->cfg.servers) n = s->leader_hint - 1;
        /* fall through */
    case PARTITION_ISOLATE:
        cut_sides(s, 1u << n);
        sim_note(s, 0x1501 ^ n, "partition: isolate n%u%s", n + 1,
                 kind == PARTITION_ISOLATE_LEADER ? " (the leader)" : "");
        break;
    case PARTITION_ONE_WAY: {
        int inbound = (int)rq_rng_below(&s->rng_faults, 2);
        for (uint32_t b = 0; b < s->cfg.servers; b++) {
            if (b == n) continue;
            if (inbound) s->cut[b][n] = 1;
            else s->cut[n][b] = 1;
        }
        sim_note(s, 0x0E3A ^ n, "partition: one-way, n%u can %s", n + 1,
                 inbound ? "send but not receive" : "receive but not send");
        break;
    }
    case PARTITION_BRIDGE: {
        /* Two sides that cannot talk, and one bridge node that talks to both. */
        uint32_t side = random_side(s) & ~(1u << n);
        uint32_t other = ((1u << s->cfg.servers) - 1) & ~side & ~(1u << n);
        for (uint32_t a = 0; a < s->cfg.servers; a++) {
            for (uint32_t b = 0; b < s->cfg.servers; b++) {
                if (((side >> a) & 1) && ((other >> b) & 1)) cut_both(s, a, b);
            }
        }
        sim_note(s, 0xB81D ^ n, "partition: bridge n%u between %#x and %#x", n + 1, side, other);
        break;
    }
    case PARTITION_FLAP: {
        uint32_t side = random_side(s);
        memset(s->flap_cut, 0, sizeof s->flap_cut);
        for (uint32_t a = 0; a < s->cfg.servers; a++) {
            for (uint32_t b = 0; b < s->cfg.servers; b++) {
                if (((side >> a) & 1) != ((side >> b) & 1)) s->flap_cut[a][b] = 1;
            }
        }
        s->flap_left = (uint32_t)rq_rng_range(&s->rng_faults, 4, 20);
        sim_note(s, 0xF1A9 ^ side, "partition: flapping split by mask %#x, %u flips", side, s->flap_left);
        net_flap(s);
        break;
    }
    default: RQ_UNREACHABLE();
    }
}

/* One flip of a flapping partition; schedules the next while flips remain. */
void net_flap(struct sim *s) {
    if (s->flap_left == 0 || !s->partition_active) return;
    s->flap_left--;
    int now_cut = s->cut[0][0] == 0 && memcmp(s->cut, s->flap_cut, sizeof s->cut) == 0;
    if (now_cut) memset(s->cut, 0, sizeof s->cut);
    else memcpy(s->cut, s->flap_cut, sizeof s->cut);
    sim_note(s, 0xF11F ^ s->flap_left, "partition: flap %s", now_cut ? "heal" : "cut");
    struct sim_event *ev = sim_event_new(s, EV_FAULT, 0);
    ev->action = FA_FLAP;
    sim_event_push(s, s->now_ns + rq_rng_range(&s->rng_faults, 20000000, 400000000), ev);
}

void net_partition_end(struct sim *s) {
    if (!s->partition_active) return;
    sim_net_heal(s);
    sim_note(s, 0x4EA1, "partition: healed");
}
