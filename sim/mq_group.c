/* The mq workload's consumer groups (README, "The mq workload"): in one seed in two, client
 * processes after the first MQ_BASE_CLIENTS are members of consumer groups of the topic instead
 * of plain consumers: 2..3 members of the queue group "q" (strategy range or sticky) and 1..2
 * pub/sub members of "p", each with its own cursor "p/mN"; one session (300 ms..2 s) and one
 * commit pace (50..500 ms) per seed. A member joins, now and then leaves (committing) and joins
 * again a little later, and is crashed and restarted like every process; after the heal members
 * only join, and each must be given a generation again (every coordinator lost its memory in
 * the heal's power loss). Everything it is delivered, and every CURSOR entry every replica applies, go to the
 * groups' checkers (sim/groupcheck.h); its reads go to mqcheck too, in sessions that start over
 * wherever the member starts over. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/rng.h"
#include "broker/cursor.h"
#include "sim/mq.h"
#include "sim/mq_internal.h"

static const struct proto_bytes QUEUE_GROUP = {(const uint8_t *)"q", 1};
static const struct proto_bytes PUBSUB_GROUP = {(const uint8_t *)"p", 1};

enum {
    MEMBER_TICK_NS = 100 * 1000 * 1000,   /* a member's own pace (joins, leaves) */
    MEMBER_NAME_MAX = 16,
};

/* ---- the draw ---------------------------------------------------------------------------------- */

/* The seed's groups, from a generator of its own, so that seeds without them run as before. */
static int groups_drawn(const struct sim_config *cfg, struct mq_groups *g) {
    struct rq_rng rng;
    rq_rng_seed(&rng, cfg->seed ^ 0x67726f7570732121ull);
    memset(g, 0, sizeof *g);
    if (!rq_rng_chance(&rng, 500000)) return 0;
    g->queue_members = (uint32_t)rq_rng_range(&rng, 2, 3);
    g->pubsub_members = (uint32_t)rq_rng_range(&rng, 1, 2);
    g->strategy = rq_rng_chance(&rng, 500000) ? PROTO_STRATEGY_STICKY : PROTO_STRATEGY_RANGE;
    g->session_ms = (uint32_t)rq_rng_range(&rng, 300, 2000);
    g->commit_every_ns = rq_rng_range(&rng, 50, 500) * 1000 * 1000ull;
    return 1;
}

uint32_t mq_clients_for(const struct sim_config *cfg) {
    struct mq_groups g;
    uint32_t clients = MQ_BASE_CLIENTS;
    if (groups_drawn(cfg, &g)) clients += g.queue_members + g.pubsub_members;
    return clients < SIM_CLIENTS_MAX ? clients : SIM_CLIENTS_MAX;
}

/* The member's name ("mN") and its cursor ("q", or "p/mN"). */
static struct proto_bytes member_name(uint32_t index, char buf[MEMBER_NAME_MAX]) {
    int n = snprintf(buf, MEMBER_NAME_MAX, "m%" PRIu32, index);
    return (struct proto_bytes){(const uint8_t *)buf, (uint32_t)n};
}

static struct proto_bytes cursor_of(const struct mq_world *w, uint32_t index,
                                    char buf[PROTO_CURSOR_MAX]) {
    if (w->plans[index].member == PROTO_MODE_QUEUE) return QUEUE_GROUP;
    int n = snprintf(buf, PROTO_CURSOR_MAX, "p/m%" PRIu32, index);
    return (struct proto_bytes){(const uint8_t *)buf, (uint32_t)n};
}

/* Clients MQ_BASE_CLIENTS.. become the members `drawn` asks for (as many as there are). */
static void groups_take(struct mq_world *w, const struct mq_groups drawn) {
    struct mq_groups *g = &w->groups;
    *g = drawn;
    g->queue_members = g->pubsub_members = 0;
    for (uint32_t i = MQ_BASE_CLIENTS; i < sim_clients(w->sim); i++) {
        uint32_t k = i - MQ_BASE_CLIENTS;
        struct mq_plan *plan = &w->plans[i];
        if (k >= drawn.queue_members + drawn.pubsub_members) break;
        plan->producer = 0;
        plan->member = k < drawn.queue_members ? PROTO_MODE_QUEUE : PROTO_MODE_PUBSUB;
        if (plan->member == PROTO_MODE_QUEUE) g->queue_members++;
        else g->pubsub_members++;
        char buf[PROTO_CURSOR_MAX];
        groupcheck_expect(w->groupcheck, cursor_of(w, i, buf));
    }
    if (g->queue_members + g->pubsub_members == 0) return;
    /* At least once is checked from offset 0: no retention in seeds with groups. */
    w->retention_bytes = w->retention_ms = 0;
    w->setup.segment_bytes = 0;
}

void mq_groups_draw(struct mq_world *w, const struct sim_config *cfg) {
    struct mq_groups drawn;
    if (groups_drawn(cfg, &drawn)) groups_take(w, drawn);
}

void mq_force_groups(struct sim *s) {
    RQ_ASSERT(sim_config(s)->workload == &sim_workload_mq);
    RQ_ASSERT(sim_clients(s) >= MQ_BASE_CLIENTS + 3);
    struct mq_world *w = sim_workload_state(s);
    struct mq_groups forced = {.queue_members = 2, .pubsub_members = 1,
                               .strategy = PROTO_STRATEGY_STICKY, .session_ms = 500,
                               .commit_every_ns = 100 * 1000 * 1000ull};
    groups_take(w, forced);
}

/* ---- a member's life --------------------------------------------------------------------------- */

static void join(struct mq_client *n, uint64_t now) {
    struct mq_world *w = n->w;
    const struct mq_plan *plan = &w->plans[n->index];
    char name[MEMBER_NAME_MAX];
    struct rq_group_config cfg = {
        .group = plan->member == PROTO_MODE_QUEUE ? QUEUE_GROUP : PUBSUB_GROUP,
        .topic = MQ_TOPIC, .member_name = member_name(n->index, name), .mode = plan->member,
        .strategy = w->groups.strategy, .session_ms = w->groups.session_ms,
        .commit_every_ns = w->groups.commit_every_ns};
    int err = rq_client_join_group(n->c, &cfg);
    RQ_ASSERT(err == 0);
    n->joined = 1;
    n->join_at_ns = UINT64_MAX;
    n->leave_at_ns = now + rq_rng_range(sim_workload_rng(w->sim), 2000, 8000) * 1000 * 1000ull;
    w->groups.joins++;
    RQ_INFO("mq: client %" PRIu32 " joins group %.*s", n->index, (int)cfg.group.size,
            (const char *)cfg.group.data);
}

void mq_member_act(struct mq_client *n, uint64_t now) {
    struct mq_world *w = n->w;
    n->next_action_ns = now + MEMBER_TICK_NS;
    if (!n->joined && now >= n->join_at_ns) {
        join(n, now);
        return;
    }
    /* Leaves only while faults go on: after the heal every member reads to the end. */
    if (n->joined && now >= n->leave_at_ns && w->heal_ns == 0 &&
        rq_client_leave_group(n->c) == 0) {
        n->leave_at_ns = UINT64_MAX;
        w->groups.leaves++;
        RQ_INFO("mq: client %" PRIu32 " leaves its group", n->index);
    }
}

void mq_member_group_error(void *arg, int error) {
    struct mq_client *n = arg;
    struct mq_world *w = n->w;
    uint64_t now = n->io->now(n->io->env);
    /* Left (error 0), or refused for good (the topic not there yet): join again later. */
    n->joined = 0;
    n->leave_at_ns = UINT64_MAX;
    if (error != 0) w->groups.group_errors++;
    n->join_at_ns = now + rq_rng_range(sim_workload_rng(w->sim), 200, 1500) * 1000 * 1000ull;
}

void mq_member_assigned(void *arg, uint64_t generation, uint64_t member_id,
                        const uint32_t *partitions, uint32_t count) {
    struct mq_client *n = arg;
    struct mq_world *w = n->w;
    (void)partitions;
    w->groups.assignments++;
    if (w->heal_ns && sim_now(w->sim) >= w->heal_ns) w->assigned_after_heal[n->index] = 1;
    RQ_INFO("mq: client %" PRIu32 " is member %" PRIu64 " in generation %" PRIu64
            " with %" PRIu32 " partitions", n->index, member_id, generation, count);
}

void mq_member_committed(void *arg, uint32_t partition, uint64_t generation, uint64_t offset) {
    struct mq_client *n = arg;
    (void)partition, (void)generation, (void)offset;
    n->w->groups.commits++;
}

void mq_member_fetched(struct mq_client *n, uint32_t p, const struct proto_record *r) {
    struct mq_world *w = n->w;
    const struct mq_plan *plan = &w->plans[n->index];
    uint64_t generation = rq_client_group_generation(n->c);
    uint64_t member = rq_client_group_member(n->c);
    char buf[PROTO_CURSOR_MAX];
    w->groups.reads++;
    if (w->heal_ns && sim_now(w->sim) >= w->heal_ns) w->read_after_heal[n->index] = 1;
    /* A new mqcheck session where the member starts over: a new generation or member id, or an
     * earlier offset again (the partition claimed again, from its committed offset). */
    struct mq_member_part *mp = &n->parts[p];
    if (mp->session == 0 || mp->generation != generation || mp->member != member ||
        r->offset < mp->next) {
        mp->session = 1ull << 63 | (uint64_t)n->index << 48 |
                      (uint64_t)(n->incarnation & 0xFFFF) << 32 | ++n->group_sessions;
        mp->generation = generation;
        mp->member = member;
        mqcheck_seek(w->check, p, mp->session, r->offset);
        if (w->bugs & MQ_BUG_MEMBER_LOSES) {   /* starts one past where it should */
            mp->next = r->offset + 1;
            mqcheck_seek(w->check, p, mp->session, mp->next);
            return;
        }
    }
    mp->next = r->offset + 1;
    uint64_t holder = (w->bugs & MQ_BUG_TWO_HOLDERS) && r->offset % 2 == 1 ? member + 1000 : member;
    if (groupcheck_delivered(w->groupcheck, cursor_of(w, n->index, buf),
                             plan->member == PROTO_MODE_QUEUE, p, generation, holder, r->offset,
                             w->why) != 0) {
        mq_fail(w, "group");
        return;
    }
    uint64_t producer, sequence;
    mq_origin_of(w, r->value, &producer, &sequence);
    if (mqcheck_read(w->check, p, mp->session, r->offset, mq_digest_of(r->key, r->value),
                     producer, sequence, w->why) != 0)
        mq_fail(w, "group member");
}

/* ---- replicas and the end ---------------------------------------------------------------------- */

void mq_groups_applied(struct mq_world *w, uint32_t node, uint32_t partition,
                       const struct raft_entry *e, const struct partition_apply_result *res) {
    struct cursor_entry ce;
    RQ_ASSERT(cursor_entry_decode(e->data, e->data_size, &ce) == 0);   /* else MALFORMED */
    if ((w->bugs & MQ_BUG_STALE_COMMIT) && ce.op == CURSOR_COMMIT && ce.generation > 1)
        ce.generation--;   /* a commit of the generation before, accepted */
    if (res->outcome == PARTITION_CURSOR_REFUSED) w->groups.cursor_refused++;
    if (groupcheck_applied(w->groupcheck, partition, node, e->index, &ce,
                           res->outcome == PARTITION_CURSOR_DONE, res->committed, w->why) != 0)
        mq_fail(w, "group cursors");
}

int mq_groups_finish(struct mq_world *w) {
    if (w->groups.queue_members + w->groups.pubsub_members == 0) return 0;
    for (uint32_t i = 0; i < sim_clients(w->sim); i++) {
        if (!w->plans[i].member || w->assigned_after_heal[i]) continue;
        snprintf(w->why, sizeof w->why, "member client %" PRIu32 " was given no generation after"
                 " the heal", i);
        mq_fail(w, "group liveness");
        return -1;
    }
    if (groupcheck_finish(w->groupcheck, w->log_starts, w->ends, w->why) == 0) return 0;
    mq_fail(w, "group liveness");
    return -1;
}

void mq_groups_note(struct mq_world *w) {
    const struct mq_groups *g = &w->groups;
    if (g->queue_members + g->pubsub_members == 0) return;
    sim_note(w->sim, 0, "mq: groups: %" PRIu32 " queue members (%s, session %" PRIu32
             " ms, commits every %" PRIu64 " ms), %" PRIu32 " pub/sub members: %" PRIu64
             " joins, %" PRIu64 " leaves, %" PRIu64 " generations taken, %" PRIu64
             " commits, %" PRIu64 " refusals; %" PRIu64 " records delivered, %" PRIu64
             " cursor entries judged (%" PRIu64 " refusals applied), %" PRIu64 " unchecked",
             g->queue_members,
             g->strategy == PROTO_STRATEGY_STICKY ? "sticky" : "range", g->session_ms,
             g->commit_every_ns / 1000000, g->pubsub_members, g->joins, g->leaves,
             g->assignments, g->commits, g->group_errors, g->reads,
             groupcheck_entries(w->groupcheck), g->cursor_refused,
             groupcheck_unchecked(w->groupcheck));
}
