/* Membership change, one server at a time (dissertation 4.1-4.3; paper section 6).
 *
 * A configuration is a CONFIG entry in the log. A server uses the newest configuration in its log
 * as soon as the entry is appended, committed or not (4.1); if that entry is truncated, the one
 * before it is in use again. Below the log's base the configuration comes from the snapshot (its
 * configuration blob) or, with no snapshot, from raft_config's voters (the bootstrap).
 *
 * Single-server changes keep every majority of the old configuration overlapping every majority
 * of the new one, so no joint consensus is needed, provided:
 *   - one change at a time: a leader starts none while one is uncommitted (4.1);
 *   - a new leader commits an entry of its own term first (the fix for the single-server change
 *     bug: a leader that starts a change before that may combine with a change of an earlier term
 *     that it does not know committed, and two disjoint majorities can then decide);
 *   - a new node joins as a learner (it receives the log or a snapshot but neither votes nor counts
 *     towards commitment) and is promoted to voter only once it has caught up, so adding it does
 *     not stall commitment while it copies the log (4.2.1);
 *   - a leader that removes itself keeps leading until the change is committed, without counting
 *     itself, and then steps down (4.2.2).
 * A server accepts appends and votes from servers that are not in its configuration (a new member
 * learns of its membership from a leader it does not know yet); only voters campaign, and only
 * voters' answers count. */
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "raft/internal.h"

static void describe(const struct raft_membership *m, char *buf, size_t cap) {
    raft_membership_describe(m, buf, cap);
}

/* The leader's per-member state follows the members by id; a new member starts probing. */
static void remap_progress(struct raft *r, const struct raft_membership *old) {
    struct raft_progress progress[RAFT_MEMBERS_MAX];
    uint8_t acks[RAFT_ROUNDS][RAFT_MEMBERS_MAX];
    memset(acks, 0, sizeof acks);
    for (uint32_t i = 0; i < r->conf.count; i++) {
        uint32_t id = r->conf.ids[i];
        uint32_t was = raft_membership_slot(old, id);
        if (was < old->count) {
            progress[i] = r->progress[was];
            for (uint32_t k = 0; k < RAFT_ROUNDS; k++) acks[k][i] = r->rounds[k].acks[was];
        } else {
            progress_reset(&progress[i], id, raft_log_last(&r->log));
            progress[i].recent_active = 1;   /* a grace period for check-quorum */
        }
    }
    memcpy(r->progress, progress, sizeof progress);
    for (uint32_t k = 0; k < RAFT_ROUNDS; k++) memcpy(r->rounds[k].acks, acks[k], sizeof acks[k]);
}

/* Puts m in use (from the entry at index; 0: from the base). */
static void use(struct raft *r, const struct raft_membership *m, uint64_t index, const char *why) {
    struct raft_membership old = r->conf;
    r->conf = *m;
    r->conf_index = index;
    r->quorum = raft_membership_voters(m) / 2 + 1;
    char desc[128];
    describe(m, desc, sizeof desc);
    RAFT_TRACE(r, "configuration %s (entry %" PRIu64 "): %s", desc, index, why);
    if (r->role == RAFT_LEADER) {
        remap_progress(r, &old);
        /* The lease rests on promises of the old voters; a new majority owes it nothing. */
        r->lease_valid = 0;
    }
}

static void bootstrap(const struct raft *r, struct raft_membership *m) {
    memset(m, 0, sizeof *m);
    m->count = r->cfg.voter_count;
    for (uint32_t i = 0; i < m->count; i++) {
        m->ids[i] = r->cfg.voters[i];
        m->voter[i] = 1;
    }
}

void conf_init(struct raft *r) {
    struct raft_membership m;
    bootstrap(r, &m);
    r->base_conf = m;
    r->conf = m;
    r->conf_index = 0;
    r->quorum = m.count / 2 + 1;
}

int conf_is_voter(const struct raft *r, uint32_t id) {
    return raft_membership_is_voter(&r->conf, id);
}

/* The configuration as of index (>= the log's base): the newest CONFIG entry at or below it that
 * decodes, else the base's. Returns the index of that entry (0: the base). */
static uint64_t conf_at(const struct raft *r, uint64_t index, struct raft_membership *out) {
    RQ_ASSERT(index >= r->log.base_index);
    if (index > raft_log_last(&r->log)) index = raft_log_last(&r->log);
    for (uint64_t i = index; i > r->log.base_index; i--) {
        const struct raft_entry *e = raft_log_get(&r->log, i);
        if (e->type == RAFT_ENTRY_CONFIG && raft_membership_decode(e->data, e->data_size, out) == 0)
            return i;
    }
    *out = r->base_conf;
    return 0;
}

void conf_on_append(struct raft *r, const struct raft_entry *e) {
    if (e->type != RAFT_ENTRY_CONFIG) return;
    struct raft_membership m;
    if (raft_membership_decode(e->data, e->data_size, &m) != 0) {
        /* Every server decodes the same bytes the same way: all ignore it alike. */
        RAFT_TRACE(r, "entry %" PRIu64 " holds a malformed configuration: ignored", e->index);
        return;
    }
    use(r, &m, e->index, "appended");
}

void conf_on_truncate(struct raft *r, uint64_t from) {
    if (r->conf_index < from) return;
    struct raft_membership m;
    uint64_t index = conf_at(r, from - 1, &m);
    use(r, &m, index, "the newer one was truncated");
}

void conf_on_compact(struct raft *r, uint64_t upto) {
    conf_at(r, upto, &r->base_conf);
    if (r->conf_index <= upto) r->conf_index = 0;
}

int conf_set_base(struct raft *r, const uint8_t *blob, size_t size) {
    struct raft_membership m;
    if (size == 0) {   /* a snapshot taken without one: the bootstrap configuration */
        bootstrap(r, &m);
    } else if (raft_membership_decode(blob, size, &m) != 0) {
        return RQ_ECORRUPT;
    }
    r->base_conf = m;
    use(r, &m, 0, "from the snapshot");
    return 0;
}

size_t raft_snapshot_config(const struct raft *r, uint64_t index, uint8_t *buf) {
    struct raft_membership m;
    conf_at(r, index, &m);
    return raft_membership_encode(&m, buf);
}

void raft_membership_get(const struct raft *r, struct raft_membership *out) { *out = r->conf; }

uint64_t raft_membership_index(const struct raft *r) { return r->conf_index; }

/* ---- the leader's changes ---------------------------------------------------------------------- */

static int change_refused(struct raft *r, int err, const char *why) {
    RAFT_TRACE(r, "membership change refused: %s", why);
    return err;
}

/* The new configuration for kind applied to node, or an error naming why not. */
static int next_conf(struct raft *r, enum raft_change kind, uint32_t node,
                     struct raft_membership *m) {
    *m = r->conf;
    uint32_t slot = raft_membership_slot(m, node);
    int member = slot < m->count;
    switch (kind) {
    case RAFT_CHANGE_ADD_LEARNER:
        if (member) return change_refused(r, RQ_EINVAL, "already a member");
        if (m->count == RAFT_MEMBERS_MAX) return change_refused(r, RQ_EINVAL, "too many members");
        m->ids[m->count] = node;
        m->voter[m->count++] = 0;
        return 0;
    case RAFT_CHANGE_PROMOTE: {
        if (!member || m->voter[slot]) return change_refused(r, RQ_EINVAL, "not a learner");
        /* Dissertation 4.2.1: a voter that has to copy the log first would hold up commitment. */
        if (r->progress[slot].match < r->commit)
            return change_refused(r, RQ_EBUSY, "the learner has not caught up with the commit index");
        m->voter[slot] = 1;
        return 0;
    }
    case RAFT_CHANGE_REMOVE:
        if (!member) return change_refused(r, RQ_EINVAL, "not a member");
        if (m->voter[slot] && raft_membership_voters(m) == 1)
            return change_refused(r, RQ_EINVAL, "the last voter");
        m->ids[slot] = m->ids[m->count - 1];
        m->voter[slot] = m->voter[m->count - 1];
        m->count--;
        return 0;
    }
    return change_refused(r, RQ_EINVAL, "unknown change");
}

int raft_change_membership(struct raft *r, enum raft_change kind, uint32_t node, uint64_t *index) {
    if (r->role != RAFT_LEADER) return RQ_ENOTLEADER;
    if (node == 0) return change_refused(r, RQ_EINVAL, "node 0");
    if (r->transfer_target != 0) return change_refused(r, RQ_EBUSY, "a leadership transfer is under way");
    if (r->conf_index > r->commit)
        return change_refused(r, RQ_EBUSY, "the previous change is not committed yet");
    if (raft_log_term(&r->log, r->commit) != r->term)
        return change_refused(r, RQ_EBUSY, "no entry of this term is committed yet");
    struct raft_membership m;
    int err = next_conf(r, kind, node, &m);
    if (err != 0) return err;
    uint8_t data[RAFT_MEMBERSHIP_SIZE_MAX];
    uint32_t size = (uint32_t)raft_membership_encode(&m, data);
    if (!raft_log_has_room(&r->log, size)) return RQ_EBUSY;
    struct raft_entry e = {.index = raft_log_last(&r->log) + 1, .term = r->term,
                           .type = RAFT_ENTRY_CONFIG, .data_size = size, .data = data};
    err = raft_log_append(&r->log, &e);
    if (err != 0) return err;
    use(r, &m, e.index, "proposed");
    *index = e.index;
    replication_broadcast(r);
    replication_maybe_commit(r);   /* a single voter commits alone */
    return 0;
}

/* Called once the commit index moved: a leader no longer among the voters hands over. */
void conf_on_commit(struct raft *r) {
    if (r->role != RAFT_LEADER || r->conf_index > r->commit || conf_is_voter(r, r->cfg.id)) return;
    raft_become_follower(r, r->term, 0, "removed from the voters, and the change is committed");
}
