/* A server hosting many Raft groups over one store; see host.h. */
#include "node/host.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "raft/msg.h"
#include "node/host_internal.h"
#include "store/hardstate.h"

void host_config_default(struct host_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->tick_ns = 10 * 1000 * 1000;
    raft_config_default(&cfg->raft);
    store_config_default(&cfg->store);
}

void host_halt(struct host *h, const char *why, int err) {
    if (h->halted) return;
    h->halted = 1;
    RQ_ERROR("host: %s: %s: fail-stop", why, rq_strerror(err));
    h->io->halt(h->io->env, why);
}

static struct host_group *group_of(const struct host *h, uint64_t id) {
    return id < HOST_GROUP_ID_LIMIT ? h->by_id[id] : NULL;
}

/* ---- sending: one batch per peer per event --------------------------------------------------- */

static void flush_peer(struct host *h, uint32_t peer) {
    struct peer_batch *pb = &h->peers[peer];
    if (pb->count == 0) return;
    uint8_t header[BATCH_RESERVE];
    size_t hl = raft_batch_header(header, h->io->node_id, pb->count);
    uint8_t *start = pb->buf + BATCH_RESERVE - hl;
    memcpy(start, header, hl);
    h->io->send(h->io->env, peer, start, hl + pb->len);
    h->stats.batches_sent++;
    pb->count = 0;
    pb->len = 0;
}

void host_flush(struct host *h) {
    if (h->halted) return;
    for (uint32_t i = 0; i < h->dirty_count; i++) {
        flush_peer(h, h->dirty[i]);
        h->peers[h->dirty[i]].dirty = 0;
    }
    h->dirty_count = 0;
}

static void queue_message(struct host *h, const struct raft_msg *m) {
    RQ_ASSERT(m->to >= 1 && m->to <= RQ_NODE_ID_MAX);
    struct peer_batch *pb = &h->peers[m->to];
    if (pb->buf == NULL) {
        pb->buf = malloc(PEER_BATCH_BYTES);
        if (pb->buf == NULL) return;   /* dropped, like a lost message */
    }
    size_t cap = PEER_BATCH_BYTES - BATCH_RESERVE;
    if (pb->count == RAFT_BATCH_MSGS_MAX || pb->len + raft_msg_encoded_size(m) > cap)
        flush_peer(h, m->to);
    int err = raft_msg_encode(m, pb->buf + BATCH_RESERVE, cap, &pb->len);
    RQ_ASSERT(err == 0);
    pb->count++;
    /* Listed once per event, even when a full batch was sent early above. */
    if (!pb->dirty) {
        for (uint32_t i = 0; i < h->dirty_count; i++) RQ_ASSERT(h->dirty[i] != m->to);
        RQ_ASSERT(h->dirty_count < RQ_NODE_ID_MAX);
        pb->dirty = 1;
        h->dirty[h->dirty_count++] = m->to;
    }
    h->stats.messages_sent++;
    if (m->type == RAFT_MSG_HEARTBEAT) h->stats.heartbeats_sent++;
}

/* ---- one group's outputs (raft.h's order) ---------------------------------------------------- */

static int persist_hardstate(struct host *h, struct host_group *g) {
    uint64_t term;
    uint32_t vote;
    if (!raft_hardstate_pending(g->raft, &term, &vote)) return 0;
    int err = store_hardstate_save(&g->hs, term, vote, NULL);
    if (err != 0) host_halt(h, "hard state save refused", err);
    return err;
}

static int store_entry_of(struct host *h, const struct raft_entry *e, struct store_entry *se) {
    h->entry_buf[0] = e->type;
    if (e->data_size) memcpy(h->entry_buf + 1, e->data, e->data_size);
    memset(se, 0, sizeof *se);
    se->index = e->index;
    se->term = e->term;
    se->payload_size = e->data_size + 1;
    se->payload = h->entry_buf;
    return 0;
}

static int persist_entries(struct host *h, struct host_group *g) {
    uint64_t tfrom, first, last;
    if (!raft_persist_pending(g->raft, &tfrom, &first, &last)) return 0;
    uint64_t stored_first, stored_last;
    store_range(h->store, g->id, &stored_first, &stored_last);
    if (tfrom != 0 && tfrom <= stored_last && stored_last >= stored_first) {
        int err = store_truncate(h->store, g->id, tfrom);
        if (err == RQ_EBUSY) { h->stats.store_busy++; return 0; }
        if (err != 0) { host_halt(h, "log truncation refused", err); return err; }
    }
    uint64_t handed = first - 1;
    for (uint64_t i = first; i <= last; i++) {
        const struct raft_entry *e = raft_entry_at(g->raft, i);
        struct store_entry se;
        store_entry_of(h, e, &se);
        int err = store_append(h->store, g->id, &se, e->term);
        if (err == RQ_EBUSY) { h->stats.store_busy++; break; }
        if (err != 0) { host_halt(h, "log append refused", err); return err; }
        if (h->cb.appended) h->cb.appended(h->cb_arg, g->id, e, raft_term_at(g->raft, i - 1));
        handed = i;
    }
    raft_persist_handed(g->raft, handed);
    return 0;
}

static void apply_committed(struct host *h, struct host_group *g) {
    uint64_t first, last;
    if (!raft_apply_pending(g->raft, &first, &last)) return;
    for (uint64_t i = first; i <= last; i++) {
        const struct raft_entry *e = raft_entry_at(g->raft, i);
        RQ_ASSERT(e != NULL);
        h->cb.apply(h->cb_arg, g->id, e);
    }
    raft_applied(g->raft, last);
}

/* Confirmed reads wait until the state machine has applied their read index. */
static void serve_reads(struct host *h, struct host_group *g) {
    const struct raft_read_ready *ready;
    uint32_t n = raft_reads_ready(g->raft, &ready);
    for (uint32_t i = 0; i < n; i++) {
        if (g->read_count == HOST_READS_MAX) {
            RQ_WARN("host: group %" PRIu32 ": %u reads wait for the apply; read dropped", g->id,
                    HOST_READS_MAX);
            continue;
        }
        g->reads[g->read_count++] = ready[i];
    }
    raft_reads_clear(g->raft);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < g->read_count; i++) {
        if (g->reads[i].index <= raft_applied_index(g->raft) && h->cb.read != NULL)
            h->cb.read(h->cb_arg, g->id, g->reads[i].ctx);
        else
            g->reads[kept++] = g->reads[i];
    }
    g->read_count = kept;
}

void host_take_outbox(struct host *h, struct host_group *g) {
    const struct raft_msg *msgs;
    uint32_t n = raft_outbox(g->raft, &msgs);
    for (uint32_t i = 0; i < n; i++) queue_message(h, &msgs[i]);
    raft_outbox_clear(g->raft);
}

static void drain_once(struct host *h, struct host_group *g) {
    host_snapshot_take_chunk(h, g);
    if (persist_hardstate(h, g) != 0) return;
    if (persist_entries(h, g) != 0) return;
    host_snapshot_serve(h, g);
    host_log_serve(h, g);
    host_take_outbox(h, g);
    if (!g->snap.restoring) apply_committed(h, g);
    host_snapshot_maybe_take(h, g);
    serve_reads(h, g);
    if (h->cb.role_changed && (raft_role(g->raft) != g->seen_role || raft_term(g->raft) != g->seen_term)) {
        g->seen_role = raft_role(g->raft);
        g->seen_term = raft_term(g->raft);
        h->cb.role_changed(h->cb_arg, g->id, g->seen_role, g->seen_term, g->raft);
    }
}

/* Not reentrant per group: a callback that calls back into the host for the group it is being
 * called for (host_propose or host_read from apply, read or role_changed) would otherwise drain
 * it again in the middle, applying the entries being applied a second time (the applied index
 * moves only after the loop) and compacting the reads being served. Such a nested drain is
 * deferred to the end of the running one. Bounded: each round follows a call back, and what
 * those add (proposals, reads) is bounded by Raft. */
void host_drain(struct host *h, struct host_group *g) {
    if (h->halted || g->raft == NULL || !g->restored) return;
    if (g->draining) {
        g->drain_again = 1;
        return;
    }
    g->draining = 1;
    do {
        g->drain_again = 0;
        drain_once(h, g);
    } while (g->drain_again && !h->halted);
    g->draining = 0;
}

/* ---- start: store, then per group its hard state, snapshot and log ------------------------------
 *
 * Every group recovers on its own: group_start loads its hard state (on_hardstate creates its
 * raft), host_snapshot_open restores its newest snapshot, group_restore_log reads its stored log
 * back, and group_restored lets it serve. The host is ready once the store is open and every group
 * added before that has recovered; a group added later serves as soon as it has. */

static void restore_next_chunk(struct host *h, struct host_group *g);

static void maybe_ready(struct host *h) {
    if (h->phase != PHASE_RESTORING) return;
    for (uint32_t i = 0; i < h->group_count; i++)
        if (!h->groups[i]->restored) return;
    h->phase = PHASE_READY;
    RQ_INFO("host: ready: %" PRIu32 " groups recovered", h->group_count);
    h->next_tick_ns = h->io->now(h->io->env) + h->cfg.tick_ns;
    h->io->set_timer(h->io->env, h->next_tick_ns);
    for (uint32_t i = 0; i < h->group_count; i++) host_drain(h, h->groups[i]);
    if (h->cb.ready) h->cb.ready(h->cb_arg);
}

static void group_start(struct host_group *g) {
    RQ_ASSERT(!g->started);
    g->started = 1;
    store_hardstate_load(&g->hs);
}

static void group_restored(struct host *h, struct host_group *g) {
    RQ_ASSERT(!g->restored);
    g->restored = 1;
    if (h->phase != PHASE_READY) {
        maybe_ready(h);
        return;
    }
    RQ_INFO("host: group %" PRIu32 " recovered", g->id);
    host_drain(h, g);
}

/* The stored log does not continue the snapshot: a crash came after a received snapshot was
 * installed and before the truncation of the log it replaced was durable. What is left is either
 * an old log ending below the snapshot, or entries just after it of an older term than the
 * snapshot's last entry (an entry of its term or later would have come from a leader holding the
 * snapshot's entries), never committed. The snapshot covers everything below it, so the whole
 * stored log goes, as the install would have done. Returns 0 when the host halted. */
static int drop_stored_log(struct host *h, struct host_group *g, const char *why) {
    RQ_INFO("host: group %" PRIu32 ": %s: the stored log is dropped", g->id, why);
    int err = store_truncate(h->store, g->id, 1);
    if (err != 0) host_halt(h, "dropping a log the snapshot replaced", err);
    return err == 0;
}

/* Reads the group's stored log after its snapshot back into its raft. */
static void group_restore_log(struct host *h, struct host_group *g) {
    uint64_t first, last, snap_index, snap_term;
    store_range(h->store, g->id, &first, &last);
    raft_snapshot_last(g->raft, &snap_index, &snap_term);
    /* The log continues the snapshot: entries it covers are not restored. */
    if (snap_index > 0 && first > snap_index + 1 && last >= first) {
        host_halt(h, "stored log starts after a gap above the snapshot", RQ_ECORRUPT);
        return;
    }
    if (last >= first && last < snap_index &&
        !drop_stored_log(h, g, "the stored log ends below the snapshot"))
        return;
    g->restore_next = first > snap_index + 1 ? first : snap_index + 1;
    /* A stored log keeps the entries the snapshot covers, and serves them to followers: its
     * entry at the snapshot's index is read too, to check that they are the snapshot's. */
    if (g->kind == HOST_GROUP_STORED_LOG && snap_index > 0 && first <= snap_index &&
        last >= snap_index)
        g->restore_next = snap_index;
    g->restore_last = last;
    restore_next_chunk(h, g);
}

/* Reads served from memory complete inside store_read, so the last chunk may be taken (and the
 * group restored) before this returns. */
static void restore_next_chunk(struct host *h, struct host_group *g) {
    if (g->restore_next > g->restore_last) {
        group_restored(h, g);
        return;
    }
    uint64_t left = g->restore_last - g->restore_next + 1;
    uint32_t n = left < RESTORE_CHUNK ? (uint32_t)left : RESTORE_CHUNK;
    int err = store_read(h->store, g->id, g->restore_next, n, g->id);
    if (err != 0) host_halt(h, "log read at start refused", err);
}

/* Entries right after the snapshot of an older term than its last entry: see drop_stored_log.
 * Returns 1 when restoring the log ends here. */
static int stale_after_snapshot(struct host *h, struct host_group *g, const struct raft_entry *e) {
    uint64_t snap_index, snap_term;
    raft_snapshot_last(g->raft, &snap_index, &snap_term);
    if (snap_index == 0) return 0;
    if (e->index == snap_index && e->term != snap_term) {
        /* A stored log (above): its entries up to the snapshot are another log's (log matching,
         * paper 5.3), left by a crash before the install's truncation was durable. */
        if (!drop_stored_log(h, g, "the stored entry at the snapshot is not the snapshot's")) return 1;
    } else if (e->index != snap_index + 1 || e->term >= snap_term) {
        return 0;
    } else if (!drop_stored_log(h, g, "the stored entries after the snapshot predate it")) {
        return 1;
    }
    g->restore_next = g->restore_last + 1;
    group_restored(h, g);
    return 1;
}

static void on_read_done(void *arg, uint64_t cookie, int err, const struct store_entry *entries,
                         uint32_t count) {
    struct host *h = arg;
    if (cookie & HOST_COOKIE_LOG) {   /* a read of the stored log (host_log.c) */
        struct host_group *lg = group_of(h, cookie & ~HOST_COOKIE_LOG);
        RQ_ASSERT(lg != NULL && lg->restored);
        if (!h->halted) host_log_on_read_done(h, lg, err, entries, count);
        return;
    }
    struct host_group *g = group_of(h, cookie);
    RQ_ASSERT(g != NULL && !g->restored);
    if (err != 0) { host_halt(h, "log read at start failed", err); return; }
    for (uint32_t i = 0; i < count; i++) {
        const struct store_entry *se = &entries[i];
        if (se->payload_size < 1 || se->payload_size - 1 > RAFT_ENTRY_DATA_MAX) {
            host_halt(h, "stored entry has no room for its type", RQ_ECORRUPT);
            return;
        }
        struct raft_entry e = {.index = se->index, .term = se->term, .type = se->payload[0],
                               .data_size = se->payload_size - 1, .data = se->payload + 1};
        if (stale_after_snapshot(h, g, &e)) return;
        if (e.index <= raft_last_index(g->raft)) continue;   /* the snapshot's own, checked */
        err = raft_restore(g->raft, &e);
        if (err != 0) { host_halt(h, "stored log does not restore", err); return; }
    }
    if (count == 0) { host_halt(h, "log read at start returned nothing", RQ_ECORRUPT); return; }
    g->restore_next += count;
    restore_next_chunk(h, g);
}

static void on_opened(void *arg, int err) {
    struct host *h = arg;
    if (err != 0) { host_halt(h, "store recovery failed", err); return; }
    h->phase = PHASE_RESTORING;
    for (uint32_t i = 0; i < h->group_count && !h->halted; i++) group_start(h->groups[i]);
    maybe_ready(h);   /* no groups at all */
}

static void on_hardstate(void *arg, const struct store_hardstate_result *res) {
    struct host_group *g = arg;
    struct host *h = g->host;
    if (res->err != 0) { host_halt(h, "hard state failed", res->err); return; }
    if (res->event == STORE_HARDSTATE_SAVED) {
        raft_persisted_hardstate(g->raft, res->term, res->vote);
        host_drain(h, g);
        host_flush(h);
        return;
    }
    RQ_ASSERT(res->event == STORE_HARDSTATE_LOADED && !g->hs_loaded);
    g->hs_loaded = 1;
    struct raft_config rc = h->cfg.raft;
    rc.id = h->io->node_id;
    rc.group = g->id;
    rc.seed = h->io->seed;
    memcpy(rc.voters, g->voters, sizeof rc.voters);
    rc.voter_count = g->voter_count;
    if (g->kind == HOST_GROUP_LOG_IS_DATA) {
        rc.snapshot_entries = 0;
        rc.snapshot_bytes = 0;
    }
    /* The store keeps every entry: followers behind the memory get them from it (host_log.c). */
    rc.stored_log = g->kind == HOST_GROUP_STORED_LOG;
    g->raft = raft_create(&rc, res->term, res->vote);
    if (g->raft == NULL) { host_halt(h, "no memory for a group", RQ_ENOMEM); return; }
    host_snapshot_open(h, g);
}

void host_snapshot_loaded(struct host *h, struct host_group *g) {
    RQ_ASSERT(g->snap.opened && !g->restored);
    group_restore_log(h, g);
}

/* ---- storage callbacks ----------------------------------------------------------------------- */

static void on_durable(void *arg, uint64_t group, uint64_t index, uint64_t cookie, int err) {
    struct host *h = arg;
    if (err != 0) { host_halt(h, "log append not durable", err); return; }
    struct host_group *g = group_of(h, group);
    RQ_ASSERT(g != NULL && g->raft != NULL);
    raft_persisted_entry(g->raft, index, cookie);
    if (h->cb.durable) h->cb.durable(h->cb_arg, g->id, index);
    host_drain(h, g);
}

static void on_store_failed(void *arg, int err) { host_halt(arg, "store failed", err); }

/* ---- lifecycle ------------------------------------------------------------------------------- */

struct host *host_create(const struct rq_io *io, const struct host_config *cfg,
                         const struct host_callbacks *cb, void *cb_arg) {
    RQ_ASSERT(cfg->groups <= HOST_GROUPS_MAX && cfg->groups < HOST_GROUP_ID_LIMIT);
    RQ_ASSERT(cfg->tick_ns > 0 && cb->apply != NULL);
    struct host *h = calloc(1, sizeof *h);
    if (h == NULL) return NULL;
    h->io = io;
    h->cfg = *cfg;
    h->cb = *cb;
    h->cb_arg = cb_arg;
    static const struct store_callbacks scb = {
        .opened = on_opened, .durable = on_durable, .read_done = on_read_done,
        .failed = on_store_failed};
    h->store = store_create(io, &cfg->store, &scb, h);
    if (h->store == NULL) {
        free(h);
        return NULL;
    }
    for (uint32_t id = 1; id <= cfg->groups; id++) {
        if (host_group_add(h, id, cfg->raft.voters, cfg->raft.voter_count,
                           HOST_GROUP_SNAPSHOTS) != 0) {
            host_destroy(h);
            return NULL;
        }
    }
    return h;
}

static int voters_valid(const uint32_t *voters, uint32_t count) {
    if (count < 1 || count > RAFT_VOTERS_MAX) return 0;
    for (uint32_t i = 0; i < count; i++) {
        if (voters[i] < 1 || voters[i] > RQ_NODE_ID_MAX) return 0;
        for (uint32_t j = 0; j < i; j++)
            if (voters[j] == voters[i]) return 0;
    }
    return 1;
}

int host_group_add(struct host *h, uint32_t group, const uint32_t *voters, uint32_t voter_count,
                   enum host_group_kind kind) {
    if (h->halted) return RQ_ECLOSED;
    if (group < 1 || group >= HOST_GROUP_ID_LIMIT || !voters_valid(voters, voter_count))
        return RQ_EINVAL;
    if (kind != HOST_GROUP_SNAPSHOTS && kind != HOST_GROUP_LOG_IS_DATA &&
        kind != HOST_GROUP_STORED_LOG)
        return RQ_EINVAL;
    if (h->by_id[group] != NULL) return RQ_EEXIST;
    if (h->group_count == HOST_GROUPS_MAX) return RQ_ENOSPC;
    struct host_group *g = calloc(1, sizeof *g);
    if (g == NULL) return RQ_ENOMEM;
    g->host = h;
    g->id = group;
    memcpy(g->voters, voters, voter_count * sizeof *voters);
    g->voter_count = voter_count;
    g->kind = kind;
    store_hardstate_init(&g->hs, h->io, g->id, on_hardstate, g);
    if (host_snapshot_init(h, g) != 0) {
        host_snapshot_free(g);
        free(g);
        return RQ_ENOMEM;
    }
    h->groups[h->group_count++] = g;
    h->by_id[group] = g;
    if (h->phase >= PHASE_RESTORING) group_start(g);   /* else once the store is open */
    return 0;
}

void host_destroy(struct host *h) {
    if (h == NULL) return;
    for (uint32_t i = 0; i < h->group_count; i++) {
        raft_destroy(h->groups[i]->raft);
        host_snapshot_free(h->groups[i]);
        host_log_free(h->groups[i]);
        free(h->groups[i]);
    }
    for (uint32_t p = 0; p <= RQ_NODE_ID_MAX; p++) free(h->peers[p].buf);
    store_destroy(h->store);
    free(h);
}

void host_start(struct host *h) {
    RQ_ASSERT(h->phase == PHASE_NEW);
    h->phase = PHASE_OPENING;
    store_open(h->store);
}

/* Ticks every group once per tick period that has passed on this node's clock, so that ticks
 * measure the clock even when the process was stopped for a while (a paused leader must see its
 * lease run out, not resume where it stopped). Bounded: a long stop counts as TICKS_CATCH_UP_MAX
 * ticks, already past every timeout. */
static void catch_up_ticks(struct host *h) {
    uint64_t now = h->io->now(h->io->env);
    if (now < h->next_tick_ns) return;
    uint64_t due = 1 + (now - h->next_tick_ns) / h->cfg.tick_ns;
    uint64_t cap = 4 * (uint64_t)h->cfg.raft.election_ticks;
    uint32_t ticks = (uint32_t)(due < cap ? due : cap);
    store_tick(h->store);
    for (uint32_t i = 0; i < h->group_count && !h->halted; i++) {
        struct host_group *g = h->groups[i];
        if (!g->restored) continue;
        for (uint32_t t = 0; t < ticks; t++) raft_tick(g->raft);
        host_drain(h, g);
    }
    h->next_tick_ns += due * h->cfg.tick_ns;
}

/* The ticks due, then one batch per peer (heartbeats coalesced). */
void host_on_timer(struct host *h) {
    if (h->halted || h->phase != PHASE_READY) return;
    catch_up_ticks(h);
    if (h->halted) return;
    host_flush(h);
    h->io->set_timer(h->io->env, h->next_tick_ns);
}

void host_on_peer_message(struct host *h, uint32_t from, const void *buf, size_t len) {
    if (h->halted || h->phase != PHASE_READY) return;
    struct raft_batch_reader br;
    int rc = raft_batch_open(&br, buf, len);
    if (rc == 0 && br.from != from) rc = RQ_ECORRUPT;
    h->stats.batches_received++;
    struct raft_msg m;
    struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    while (rc == 0 && !h->halted) {
        rc = raft_batch_next(&br, &m, entries);
        if (rc != 1) break;
        rc = 0;
        m.to = h->io->node_id;
        struct host_group *g = group_of(h, m.group);
        if (g == NULL || !g->restored) {
            h->stats.unknown_group_messages++;   /* not (yet) here: its leader retries */
            continue;
        }
        raft_step(g->raft, &m);
        host_drain(h, g);
    }
    if (rc < 0) {
        h->stats.malformed_batches++;
        RQ_WARN("host: malformed batch from n%" PRIu32 " (%zu bytes): %s", from, len,
                rq_strerror(rc));
    }
    host_flush(h);
}

void host_on_disk_done(struct host *h, struct rq_disk_req *req) {
    if (h->halted) return;
    if (!store_on_disk_done(h->store, req)) {
        int mine = 0;
        for (uint32_t i = 0; i < h->group_count && !mine; i++) {
            mine = store_hardstate_on_disk_done(&h->groups[i]->hs, req) ||
                   host_snapshot_on_disk_done(h->groups[i], req);
        }
        RQ_ASSERT(mine);
    }
    host_flush(h);
}

/* The group a caller's request is for, or NULL with *err: RQ_ECLOSED while it (or the host)
 * recovers or halted, RQ_ERANGE for an unknown group. */
static struct host_group *serving(struct host *h, uint32_t group, int *err) {
    struct host_group *g = group_of(h, group);
    *err = h->halted || h->phase != PHASE_READY || (g != NULL && !g->restored) ? RQ_ECLOSED
                                                                               : RQ_ERANGE;
    return *err == RQ_ECLOSED ? NULL : g;
}

/* What a caller's request made the group do goes out now. Returns err. */
static int served(struct host *h, struct host_group *g, int err) {
    if (err == 0) host_drain(h, g);
    host_flush(h);
    return err;
}

int host_propose(struct host *h, uint32_t group, const void *data, uint32_t size, uint64_t *index,
                 uint64_t *term) {
    int err;
    struct host_group *g = serving(h, group, &err);
    if (g == NULL) return err;
    err = raft_propose(g->raft, data, size, index);
    if (err == 0) *term = raft_term(g->raft);
    return served(h, g, err);
}

int host_transfer_leader(struct host *h, uint32_t group, uint32_t target) {
    int err;
    struct host_group *g = serving(h, group, &err);
    if (g == NULL) return err;
    return served(h, g, raft_transfer_leader(g->raft, target));   /* TIMEOUT_NOW or a catch-up */
}

int host_group_shrink(struct host *h, uint32_t group) {
    int err;
    struct host_group *g = serving(h, group, &err);
    if (g == NULL) return err;
    raft_snapshot_shrink(g->raft);
    return served(h, g, 0); /* the drain takes the snapshot */
}

int host_read(struct host *h, uint32_t group, uint64_t ctx) {
    int err;
    struct host_group *g = serving(h, group, &err);
    if (g == NULL) return err;
    return served(h, g, raft_read_index(g->raft, ctx));
}

int host_read_lease(struct host *h, uint32_t group, uint64_t ctx) {
    int err;
    struct host_group *g = serving(h, group, &err);
    if (g == NULL) return err;
    catch_up_ticks(h);   /* the lease is judged on the clock as it is now */
    if (h->halted) return RQ_ECLOSED;
    return served(h, g, raft_read_lease(g->raft, ctx));
}

int host_change_membership(struct host *h, uint32_t group, enum raft_change kind, uint32_t node) {
    int err;
    struct host_group *g = serving(h, group, &err);
    if (g == NULL) return err;
    uint64_t index;
    return served(h, g, raft_change_membership(g->raft, kind, node, &index));
}

void host_fail(struct host *h, const char *why) { host_halt(h, why, RQ_ECORRUPT); }

int host_is_ready(const struct host *h) { return h->phase == PHASE_READY && !h->halted; }

const struct raft *host_raft(const struct host *h, uint32_t group) {
    const struct host_group *g = group_of(h, group);
    return host_is_ready(h) && g != NULL && g->restored ? g->raft : NULL;
}

void host_stats_get(const struct host *h, struct host_stats *out) { *out = h->stats; }

void host_store_stats_get(const struct host *h, struct store_stats *out) {
    store_stats_get(h->store, out);
}
