/* Rebalancing, the partition leader's part (meta/controller.h, "Rebalancing"): the controller
 * sets each partition's target replica set; the leader of the partition's group changes the
 * group's membership towards it, one server at a time (raft/reconfig.c), every MOVE_EVERY_NS:
 *
 *   1. a target broker that is not a member joins as a learner (it copies the log, or the
 *      snapshot when retention deleted what it needs, without voting or counting);
 *   2. a learner in the target is promoted once it has caught up (Raft refuses before);
 *   3. only then a member outside the target is removed; the leader removes itself last, by
 *      handing its leadership to a target voter first, whose turn it then is. A hand-off stops
 *      proposals until the target takes over or an election timeout passes, so one that fails
 *      (the target unreachable) is tried again only HANDOFF_EVERY_NS later, at the next voter.
 *
 * So the group never has fewer voters than it had, nor fewer than the target: a move costs
 * redundancy nothing, and one stuck (a target broker down) leaves the old replicas serving. The
 * voters reached are reported to the controller at the next heartbeat (broker.c, REPLICAS). */
#include <inttypes.h>

#include "base/errors.h"
#include "base/log.h"
#include "node/broker_internal.h"

enum {
    MOVE_EVERY_NS = 100 * 1000 * 1000,
    HANDOFF_EVERY_NS = 1000 * 1000 * 1000,
};

static int in_target(const struct controller_partition *cp, uint32_t id) {
    for (uint32_t k = 0; k < cp->target_count; k++)
        if (cp->target[k] == id) return 1;
    return 0;
}

/* Whether the group's members are exactly the target's, every one a voter. */
static int at_target(const struct raft_membership *m, const struct controller_partition *cp) {
    if (m->count != cp->target_count) return 0;
    for (uint32_t i = 0; i < m->count; i++)
        if (!m->voter[i] || !in_target(cp, m->ids[i])) return 0;
    return 1;
}

/* The next change towards the target: its kind and node (0: none, or a transfer in *handoff, to
 * the turn-th voter of the target, round robin). */
static enum raft_change next_change(const struct raft_membership *m,
                                    const struct controller_partition *cp, uint32_t me,
                                    uint32_t turn, uint32_t *node, uint32_t *handoff) {
    *handoff = 0;
    for (uint32_t k = 0; k < cp->target_count; k++) {
        uint32_t slot = raft_membership_slot(m, cp->target[k]);   /* >= count: not a member */
        *node = cp->target[k];
        if (slot >= m->count && m->count < RAFT_MEMBERS_MAX) return RAFT_CHANGE_ADD_LEARNER;
        if (slot < m->count && !m->voter[slot]) return RAFT_CHANGE_PROMOTE;
    }
    for (uint32_t i = 0; i < m->count; i++) {
        *node = m->ids[i];
        if (m->ids[i] != me && !in_target(cp, m->ids[i])) return RAFT_CHANGE_REMOVE;
    }
    for (uint32_t i = 0; i < cp->target_count && !in_target(cp, me); i++) {
        uint32_t id = cp->target[(turn + i) % cp->target_count];
        if (raft_membership_is_voter(m, id)) {
            *handoff = id;
            break;
        }
    }
    *node = 0;
    return 0;
}

static void move_part(struct broker *b, const struct controller_topic *t, uint32_t p, uint64_t now) {
    const struct controller_partition *cp = &t->partitions[p];
    struct broker_part *part = b->parts[cp->group];
    const struct raft *r = part ? host_raft(b->host, cp->group) : NULL;
    if (r == NULL || raft_role(r) != RAFT_LEADER || cp->target_count == 0) return;
    struct raft_membership m;
    raft_membership_get(r, &m);
    if (at_target(&m, cp)) return;
    uint32_t node, handoff;
    enum raft_change kind = next_change(&m, cp, b->io->node_id, part->handoffs, &node, &handoff);
    if (kind != 0) {
        int err = host_change_membership(b->host, cp->group, kind, node);
        if (err == 0) {
            b->stats.membership_changes++;
            RQ_INFO("broker: %.*s/%" PRIu32 ": %s n%" PRIu32 " (towards the target)",
                    (int)t->name_size, t->name, p,
                    kind == RAFT_CHANGE_ADD_LEARNER ? "adding learner"
                    : kind == RAFT_CHANGE_PROMOTE   ? "promoting"
                                                    : "removing",
                    node);
        }
    } else if (handoff != 0 && now >= part->handoff_after_ns &&
               host_transfer_leader(b->host, cp->group, handoff) == 0) {
        part->handoff_after_ns = now + HANDOFF_EVERY_NS;
        part->handoffs++;
        b->stats.membership_changes++;
        RQ_INFO("broker: %.*s/%" PRIu32 ": handing leadership to n%" PRIu32 " (leaving the group)",
                (int)t->name_size, t->name, p, handoff);
    }
}

void broker_move_parts(struct broker *b) {
    uint64_t now = broker_now(b);
    if (b->cfg.moves_paused || now < b->next_move_ns) return;
    b->next_move_ns = now + MOVE_EVERY_NS;
    const struct controller *c = broker_controller(b);
    for (uint32_t i = 0; i < controller_topic_count(c); i++) {
        const struct controller_topic *t = controller_topic_at(c, i);
        for (uint32_t p = 0; p < t->partition_count; p++) move_part(b, t, p, now);
    }
}
