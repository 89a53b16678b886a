/* A partition's state machine as a Raft group of the node's host; see partition_group.h. */
#include "node/partition_group.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "base/log.h"
#include "broker/ttl.h"
#include "node/proposals.h"

/* An applied batch: where its records are, and what retention needs to know of it. */
struct batch_pos {
    uint64_t index;               /* its Raft entry */
    uint64_t base_offset;
    uint64_t timestamp_ns;        /* its leader's clock at append */
    uint64_t bytes_before;        /* record bytes of the batches before it, from an arbitrary
                                     origin (only differences count; modulo 2^64) */
    uint32_t count;
    uint32_t bytes;               /* its records' bytes */
};

/* A request waiting in the open entry (not proposed yet: no proposals slot, but one kept free). */
struct open_waiter {
    uint64_t cookie;
    uint64_t since_ns;
    uint8_t acks;
};

/* A leader's SHARED entry being filled while its previous append is not durable (group commit).
 * Its batches are already applied to the tip, at the index it is foreseen to get. */
struct open_entry {
    uint32_t count;               /* batches, 0..PARTITION_SHARED_MAX */
    uint32_t used;                /* bytes of data: the batches' BATCH entries back to back */
    uint32_t framing;             /* the varint sizes of the batches, in bytes */
    uint32_t waiting;             /* requests that wait for an answer (acks != 0) */
    uint64_t index;               /* the Raft index the tip applied the batches at */
    uint64_t term;
    uint32_t sizes[PARTITION_SHARED_MAX];
    struct open_waiter waiters[PARTITION_SHARED_MAX];
    struct partition_apply_result foreseen[PARTITION_SHARED_MAX];
    uint8_t data[RAFT_ENTRY_DATA_MAX];
    uint8_t encoded[RAFT_ENTRY_DATA_MAX];   /* the SHARED entry, encoded to be proposed */
};

struct part_group {
    uint32_t group;
    uint64_t pending_timeout_ns;
    part_group_done_fn done;
    void *done_arg;
    struct partition_sm *sm;      /* about 144 KiB */
    struct partition_sm *tip;     /* a leader's foresight for acks=1 (allocated at first use) */
    uint64_t tip_term;            /* the term the tip was built in; 0: none */
    struct proposals pending;
    uint64_t bad_images;
    struct batch_pos *batches;    /* applied batches in offset order, [0, batch_count) */
    uint32_t batch_count;
    uint32_t batch_cap;
    uint64_t readable_from;       /* the first offset whose batch is indexed */
    uint64_t unindexed;           /* batches not indexed for want of memory: not readable */
    uint64_t given_up;            /* records it proposed to delete because it could not serve them */
    /* Rebuilding the index below a restored image (part_group_scan_*). */
    uint64_t scan_to;             /* the image's Raft index; 0: no scan */
    uint64_t scan_next;
    int scan_busy;
    uint32_t scan_generation;     /* +1 at every restore */
    struct batch_pos *prefix;
    uint32_t prefix_count;
    uint32_t prefix_cap;
    uint64_t own_index;           /* the newest entry this leader proposed, in own_term */
    uint64_t own_term;
    struct open_entry *open;      /* allocated when a batch first has to wait (about 135 KiB) */
    struct part_group_stats stats;
    uint8_t entry[RAFT_ENTRY_DATA_MAX];   /* a batch being encoded */
};

struct part_group *part_group_create(uint32_t group, uint64_t pending_timeout_ns,
                                     part_group_done_fn done, void *done_arg) {
    RQ_ASSERT(done != NULL);
    struct part_group *pg = calloc(1, sizeof *pg);
    if (pg == NULL) return NULL;
    pg->sm = calloc(1, sizeof *pg->sm);
    if (pg->sm == NULL) {
        free(pg);
        return NULL;
    }
    partition_sm_init(pg->sm);
    pg->group = group;
    pg->pending_timeout_ns = pending_timeout_ns;
    pg->done = done;
    pg->done_arg = done_arg;
    return pg;
}

void part_group_destroy(struct part_group *pg) {
    if (pg == NULL) return;
    free(pg->batches);
    free(pg->prefix);
    free(pg->tip);
    free(pg->open);
    free(pg->sm);
    free(pg);
}

const struct partition_sm *part_group_state(const struct part_group *pg) { return pg->sm; }
uint64_t part_group_bad_images(const struct part_group *pg) { return pg->bad_images; }
const struct part_group_stats *part_group_stats(const struct part_group *pg) { return &pg->stats; }

/* The tip of a leader in term `term`: the applied state plus every entry of its log after it. */
static int tip_build(struct part_group *pg, const struct raft *r) {
    if (pg->tip == NULL && (pg->tip = calloc(1, sizeof *pg->tip)) == NULL) return RQ_ENOMEM;
    partition_sm_copy(pg->tip, pg->sm);
    for (uint64_t i = raft_applied_index(r) + 1; i <= raft_last_index(r); i++) {
        const struct raft_entry *e = raft_entry_at(r, i);
        RQ_ASSERT(e != NULL);   /* entries not applied yet are in memory */
        struct partition_apply_result res;
        if (e->type == RAFT_ENTRY_NORMAL) partition_sm_apply(pg->tip, i, e->data, e->data_size, &res);
    }
    pg->tip_term = raft_term(r);
    return 0;
}

/* Whether this leader's newest proposal is not durable in its own log yet: a batch arriving now
 * waits in the open entry instead of becoming an entry of its own. */
static int append_pending(const struct part_group *pg, const struct raft *r) {
    return pg->own_term == raft_term(r) && pg->own_index > raft_durable_index(r);
}

static void proposed(struct part_group *pg, uint64_t index, uint64_t term, uint32_t batches) {
    pg->own_index = index;
    pg->own_term = term;
    pg->stats.entries_proposed++;
    pg->stats.batches_proposed += batches;
    if (batches > 1) {
        pg->stats.shared_entries++;
        pg->stats.shared_batches += batches;
    }
}

/* The request behind batch `part` of the entry (index, term) now waits for its answer: acks=1
 * at the durable append with what the tip foresaw, acks=all at the apply, acks=0 not at all. */
static void wait_for(struct part_group *pg, uint64_t index, uint64_t term, uint32_t part,
                     const struct open_waiter *w, const struct partition_apply_result *foreseen) {
    if (w->acks == PROTO_ACKS_LEADER) {
        proposals_add_early_part(&pg->pending, index, term, part, w->cookie, w->since_ns,
                                 foreseen->error, foreseen->base_offset);
    } else if (w->acks != PROTO_ACKS_NONE) {
        proposals_add_part(&pg->pending, index, term, part, w->cookie, w->since_ns);
    }
}

static uint32_t open_count(const struct part_group *pg) { return pg->open ? pg->open->count : 0; }

/* Forgets the open entry, answering its waiting requests with err. Its batches are in the tip,
 * which is therefore rebuilt at the next produce. */
static void open_drop(struct part_group *pg, int err) {
    struct open_entry *o = pg->open;
    for (uint32_t k = 0; k < o->count; k++) {
        if (o->waiters[k].acks == PROTO_ACKS_NONE) continue;
        struct part_group_result out = {.error = err};
        pg->done(pg->done_arg, o->waiters[k].cookie, &out);
    }
    RQ_INFO("partition group %" PRIu32 ": %" PRIu32 " batches waiting to share an entry dropped: %s",
            pg->group, o->count, rq_strerror(err));
    pg->stats.open_dropped += o->count;
    o->count = o->used = o->framing = o->waiting = 0;
    pg->tip_term = 0;
}

/* Proposes the open entry (why: what made it go, for the trace): one batch as a BATCH entry, more
 * as a SHARED one. Returns 0, or the reason it was dropped instead (leadership lost or
 * host_propose's error; its requests get it). */
static int open_flush(struct part_group *pg, struct host *h, const char *why) {
    struct open_entry *o = pg->open;
    RQ_ASSERT(o->count > 0);
    const struct raft *r = host_raft(h, pg->group);
    if (r == NULL || raft_role(r) != RAFT_LEADER || raft_term(r) != o->term) {
        open_drop(pg, RQ_ENOTLEADER);   /* the next term's tip is built from its log */
        return RQ_ENOTLEADER;
    }
    const uint8_t *data = o->data;
    size_t n = o->used;
    if (o->count > 1) {
        n = partition_shared_encode(o->encoded, sizeof o->encoded, o->data, o->sizes, o->count);
        RQ_ASSERT(n > 0);
        RQ_ASSERT(n == partition_shared_size(o->sizes, o->count));
        data = o->encoded;
    }
    uint64_t index, term;
    int err = host_propose(h, pg->group, data, (uint32_t)n, &index, &term);
    if (err != 0) {
        open_drop(pg, err);
        return err;
    }
    RQ_ASSERT(term == o->term);
    RQ_ASSERT(index >= o->index);   /* the leader's log only grows within its term */
    if (o->count == 1)
        RQ_DEBUG("partition group %" PRIu32 ": the batch that waited is entry %" PRIu64 " (%s)",
                 pg->group, index, why);
    else
        RQ_DEBUG("partition group %" PRIu32 ": %" PRIu32 " batches share entry %" PRIu64 " (%s)",
                 pg->group, o->count, index, why);
    proposed(pg, index, term, o->count);
    for (uint32_t k = 0; k < o->count; k++)
        wait_for(pg, index, term, k, &o->waiters[k], &o->foreseen[k]);
    o->count = o->used = o->framing = o->waiting = 0;
    /* Another entry (a membership change) took the foreseen index: the tip decided alike (its
     * stamps kept their order) but holds the wrong index; rebuilt from the log, which now holds
     * the entry. */
    if (index != o->index) {
        int built = tip_build(pg, r);   /* the tip is allocated: cannot fail */
        RQ_ASSERT(built == 0);
    }
    return 0;
}

/* Whether a batch of n bytes fits the open entry (in count and in RAFT_ENTRY_DATA_MAX). */
static int open_fits(const struct open_entry *o, size_t n) {
    if (o->count == PARTITION_SHARED_MAX) return 0;
    size_t size = 1 + rq_varint_size(o->count + 1) + o->framing + o->used + rq_varint_size(n) + n;
    return size <= RAFT_ENTRY_DATA_MAX;
}

/* Adds the batch in pg->entry[0..n) to the open entry (proposing the open one first when it does
 * not fit) and applies it to the tip as the entry's next part; proposes the entry once full. */
static int open_join(struct part_group *pg, struct host *h, const struct raft *r, size_t n,
                     const struct open_waiter *w) {
    struct open_entry *o = pg->open;
    if (o->count > 0 && !open_fits(o, n)) {
        int err = open_flush(pg, h, "the next batch does not fit");
        if (err != 0) return err;
    }
    if (o->count == 0) {
        o->index = raft_last_index(r) + 1;
        o->term = raft_term(r);
    }
    RQ_ASSERT(o->term == pg->tip_term);
    RQ_ASSERT(o->used + n <= sizeof o->data);
    uint8_t *batch = o->data + o->used;
    memcpy(batch, pg->entry, n);
    partition_sm_apply_part(pg->tip, o->index, o->count, batch, n, &o->foreseen[o->count]);
    RQ_ASSERT(o->foreseen[o->count].outcome != PARTITION_MISMATCH);
    o->sizes[o->count] = (uint32_t)n;
    o->waiters[o->count] = *w;
    o->used += (uint32_t)n;
    o->framing += (uint32_t)rq_varint_size(n);
    o->waiting += w->acks != PROTO_ACKS_NONE;
    o->count++;
    if (o->count == PARTITION_SHARED_MAX) (void)open_flush(pg, h, "full");   /* answers its own */
    return 0;
}

/* Proposes the batch in pg->entry[0..n) as an entry of its own (nothing waits before it). */
static int propose_alone(struct part_group *pg, struct host *h, size_t n,
                         const struct open_waiter *w) {
    uint64_t index, term;
    int err = host_propose(h, pg->group, pg->entry, (uint32_t)n, &index, &term);
    if (err != 0) return err;
    RQ_ASSERT(term == pg->tip_term);
    struct partition_apply_result res;
    partition_sm_apply(pg->tip, index, pg->entry, n, &res);
    RQ_ASSERT(res.outcome != PARTITION_MISMATCH);
    proposed(pg, index, term, 1);
    wait_for(pg, index, term, 0, w, &res);
    return 0;
}

/* Encodes req's batch into pg->entry with the offsets the tip foresees (none for a batch it
 * foresees as a duplicate or out of order: the entry says so, and the apply decides as foreseen).
 * Returns its size, 0 when it does not fit one entry. */
static size_t batch_encode(struct part_group *pg, const struct proto_produce_req *req,
                           uint64_t now_ns) {
    size_t n = partition_entry_encode(pg->entry, sizeof pg->entry, pg->tip->next_offset,
                                      req->producer_id, req->base_sequence, now_ns, &req->records);
    if (n == 0) return 0;
    struct partition_apply_result foresight;
    partition_sm_preview(pg->tip, pg->entry, n, &foresight);
    if (foresight.outcome == PARTITION_APPENDED) return n;
    return partition_entry_encode(pg->entry, sizeof pg->entry, PARTITION_NO_OFFSET,
                                  req->producer_id, req->base_sequence, now_ns, &req->records);
}

int part_group_produce(struct part_group *pg, struct host *h, const struct proto_produce_req *req,
                       uint64_t cookie, uint64_t now_ns) {
    const struct raft *r = host_raft(h, pg->group);
    if (r == NULL) return RQ_ECLOSED;
    if (raft_role(r) != RAFT_LEADER) return RQ_ENOTLEADER;
    if (open_count(pg) > 0 && pg->open->term != raft_term(r)) open_drop(pg, RQ_ENOTLEADER);
    struct open_waiter w = {.cookie = cookie, .since_ns = now_ns, .acks = req->acks};
    /* One slot for every request the open entry holds, and one for this one. */
    uint32_t held = pg->open ? pg->open->waiting : 0;
    if (w.acks != PROTO_ACKS_NONE && proposals_free(&pg->pending) <= held) return RQ_EBUSY;
    if (pg->tip_term != raft_term(r) && tip_build(pg, r) != 0) return RQ_EBUSY;
    size_t n = batch_encode(pg, req, now_ns);
    if (n == 0) return RQ_ETOOBIG;
    /* Group commit: while this leader's previous append is not durable, batches gather in the
     * open entry, proposed once it is (part_group_durable), full, or at the next tick. */
    if (open_count(pg) == 0 && !append_pending(pg, r)) return propose_alone(pg, h, n, &w);
    if (pg->open == NULL && (pg->open = calloc(1, sizeof *pg->open)) == NULL)
        return propose_alone(pg, h, n, &w);   /* no memory to wait in: an entry of its own */
    return open_join(pg, h, r, n, &w);
}

/* A control entry (cursor, delayed, release) is about to be encoded into pg->entry and proposed
 * alone: the open entry goes first (the log keeps the order requests came in), and the tip must
 * be this term's. Returns 0, RQ_ECLOSED, RQ_ENOTLEADER, RQ_EBUSY or open_flush's error. */
static int control_ready(struct part_group *pg, struct host *h, int waits) {
    const struct raft *r = host_raft(h, pg->group);
    if (r == NULL) return RQ_ECLOSED;
    if (raft_role(r) != RAFT_LEADER) return RQ_ENOTLEADER;
    if (open_count(pg) > 0) {
        int err = open_flush(pg, h, "a control entry follows");
        if (err != 0) return err;
    }
    uint32_t held = pg->open ? pg->open->waiting : 0;
    if (waits && proposals_free(&pg->pending) <= held) return RQ_EBUSY;
    if (pg->tip_term != raft_term(r) && tip_build(pg, r) != 0) return RQ_EBUSY;
    return 0;
}

/* Proposes pg->entry[0..n) (control_ready said yes), applies it to the tip and, with waits,
 * answers cookie once it is applied. */
static int control_propose(struct part_group *pg, struct host *h, size_t n, int waits,
                           uint64_t cookie, uint64_t now_ns, struct partition_apply_result *res) {
    uint64_t index, term;
    int err = host_propose(h, pg->group, pg->entry, (uint32_t)n, &index, &term);
    if (err != 0) return err;
    RQ_ASSERT(term == pg->tip_term);
    partition_sm_apply(pg->tip, index, pg->entry, n, res);   /* the tip holds the whole log */
    proposed(pg, index, term, 0);
    if (waits) proposals_add(&pg->pending, index, term, cookie, now_ns);
    return 0;
}

int part_group_cursor(struct part_group *pg, struct host *h, const struct cursor_entry *e,
                      uint64_t cookie, uint64_t now_ns) {
    int err = control_ready(pg, h, 1);
    if (err != 0) return err;
    size_t n = cursor_entry_encode(pg->entry, sizeof pg->entry, e);
    RQ_ASSERT(n > 0);
    struct partition_apply_result res;
    return control_propose(pg, h, n, 1, cookie, now_ns, &res);
}

int part_group_delayed(struct part_group *pg, struct host *h, const struct proto_produce_req *req,
                       uint64_t cookie, uint64_t now_ns) {
    RQ_ASSERT(req->delay_ms >= 1 && req->delay_ms <= PROTO_DELAY_MS_MAX);
    int err = control_ready(pg, h, 1);
    if (err != 0) return err;
    if (!delay_table_fits(&pg->tip->delays, req->records.size)) return RQ_EBUSY;
    size_t n = delay_entry_encode(pg->entry, sizeof pg->entry, now_ns + req->delay_ms * 1000000u,
                                  now_ns, &req->records);
    if (n == 0) return RQ_ETOOBIG;
    struct partition_apply_result res;
    return control_propose(pg, h, n, 1, cookie, now_ns, &res);
}

/* The leader's releases: every item its tip holds whose time has come on this leader's clock
 * (the earliest due first, at most PART_GROUP_RELEASES_PER_TICK a tick) becomes a RELEASE entry
 * at the offsets the tip foresees. An item already released in the tip (its RELEASE proposed, not yet applied) is no
 * longer there, so nothing is released twice. */
static void release_due(struct part_group *pg, struct host *h, uint64_t now_ns) {
    const struct raft *r = host_raft(h, pg->group);
    if (r == NULL || raft_role(r) != RAFT_LEADER) return;
    if (pg->sm->delays.count == 0 && (pg->tip == NULL || pg->tip->delays.count == 0)) return;
    for (uint32_t k = 0; k < PART_GROUP_RELEASES_PER_TICK; k++) {
        if (control_ready(pg, h, 0) != 0) return;
        const struct delay_table *t = &pg->tip->delays;
        const struct delay_item *due = NULL;   /* the earliest due (ties: the first held) */
        for (uint32_t i = 0; i < t->count; i++)
            if (t->items[i].due_ns <= now_ns && (due == NULL || t->items[i].due_ns < due->due_ns))
                due = &t->items[i];
        if (due == NULL) return;
        size_t n = delay_release_encode(pg->entry, sizeof pg->entry, t, due, pg->tip->next_offset,
                                        now_ns);
        RQ_ASSERT(n > 0);   /* a DELAYED entry's records fitted an entry: so do they again */
        struct partition_apply_result res;
        if (control_propose(pg, h, n, 0, 0, now_ns, &res) != 0) return;
        RQ_ASSERT(res.outcome == PARTITION_APPENDED || res.outcome == PARTITION_FULL);
        pg->stats.releases_proposed++;
    }
}

void part_group_durable(struct part_group *pg, struct host *h, uint64_t index) {
    const struct raft *r = host_raft(h, pg->group);
    if (r == NULL) return;
    uint64_t cookie, offset;
    int error;
    while (proposals_durable(&pg->pending, r, index, &cookie, &error, &offset)) {
        struct part_group_result out = {.error = error, .base_offset = offset};
        pg->done(pg->done_arg, cookie, &out);
    }
    if (open_count(pg) > 0 && !append_pending(pg, r)) (void)open_flush(pg, h, "append durable");
}

/* The position of the batch holding offset (which is indexed). */
static uint32_t batch_of(const struct part_group *pg, uint64_t offset) {
    uint32_t lo = 0, hi = pg->batch_count;   /* the answer is in [lo, hi) */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (pg->batches[mid].base_offset <= offset) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* The first indexed batch holding log_start or after it (batch_count: none). */
static uint32_t first_kept(const struct part_group *pg, uint64_t log_start) {
    if (pg->batch_count == 0 || log_start < pg->batches[0].base_offset) return 0;
    uint32_t i = batch_of(pg, log_start);
    const struct batch_pos *b = &pg->batches[i];
    return log_start >= b->base_offset + b->count ? i + 1 : i;
}

/* Indexes an applied batch. The index holds the newest PART_GROUP_BATCHES_MAX batches: when it is
 * full the older half is dropped, and the records it indexed fall below part_group_log_start on
 * this replica (RQ_ERANGE), so that the newest records are always readable (a full index that
 * refused new batches left a reader at the tail with empty answers for ever). Without memory to
 * grow, a batch is not indexed and neither is any later one (counted: unindexed). */
static void index_batch(struct part_group *pg, const struct batch_pos *pos) {
    if (pg->batch_count == PART_GROUP_BATCHES_MAX) {
        uint32_t keep = PART_GROUP_BATCHES_MAX / 2;
        memmove(pg->batches, pg->batches + (pg->batch_count - keep), keep * sizeof *pg->batches);
        pg->batch_count = keep;
        pg->readable_from = pg->batches[0].base_offset;
    }
    if (pg->batch_count == pg->batch_cap) {
        uint32_t cap = pg->batch_cap ? 2 * pg->batch_cap : 64;
        if (cap > PART_GROUP_BATCHES_MAX) cap = PART_GROUP_BATCHES_MAX;
        struct batch_pos *b = cap > pg->batch_cap ? realloc(pg->batches, cap * sizeof *b) : NULL;
        if (b == NULL) {
            pg->unindexed++;
            return;
        }
        pg->batches = b;
        pg->batch_cap = cap;
    }
    struct batch_pos *last = pg->batch_count ? &pg->batches[pg->batch_count - 1] : NULL;
    RQ_ASSERT(last == NULL || last->base_offset + last->count == pos->base_offset);
    pg->batches[pg->batch_count] = *pos;
    pg->batches[pg->batch_count].bytes_before = last ? last->bytes_before + last->bytes : 0;
    pg->batch_count++;
}

/* A BATCH entry's place in the index (bytes_before is the indexer's business). */
static struct batch_pos pos_of(uint64_t index, const struct partition_entry *pe) {
    return (struct batch_pos){.index = index, .base_offset = pe->base_offset,
                              .timestamp_ns = pe->timestamp_ns, .count = pe->records.count,
                              .bytes = (uint32_t)pe->records.size};
}

/* The log start moved to log_start: the batches wholly below it are no longer read. They leave
 * the index once they are a quarter of it (a memmove per RETAIN would cost the whole index each
 * time); until then reads never reach them (part_group_read checks the log start first). */
static void index_trim(struct part_group *pg, uint64_t log_start) {
    uint32_t below = first_kept(pg, log_start);
    if (below == 0 || below < pg->batch_count / 4) return;
    pg->batch_count -= below;
    memmove(pg->batches, pg->batches + below, pg->batch_count * sizeof *pg->batches);
    if (pg->batch_count > 0) pg->readable_from = pg->batches[0].base_offset;
    else pg->readable_from = log_start;
}

/* Indexes the batches of an applied entry that took offsets (each batch of a SHARED entry has a
 * position of its own, at the entry's Raft index); a RETAIN trims the index instead. */
static void index_entry(struct part_group *pg, const struct raft_entry *e,
                        const struct partition_apply_result *res, uint32_t n) {
    if (n == 1 && res[0].outcome == PARTITION_RETAINED) {
        index_trim(pg, res[0].base_offset);
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        if (res[k].outcome != PARTITION_APPENDED) continue;
        struct batch_pos pos = {.index = e->index, .base_offset = res[k].base_offset,
                                .timestamp_ns = res[k].timestamp_ns, .count = res[k].record_count,
                                .bytes = (uint32_t)res[k].record_bytes};
        if (pg->unindexed == 0) index_batch(pg, &pos);
        else pg->unindexed++;
    }
}

uint32_t part_group_apply(struct part_group *pg, const struct raft_entry *e,
                          struct partition_apply_result applied[PARTITION_SHARED_MAX]) {
    struct partition_apply_result res[PARTITION_SHARED_MAX];
    uint32_t n = 1;
    memset(&res[0], 0, sizeof res[0]);
    if (e->type == RAFT_ENTRY_NORMAL) {
        n = partition_sm_apply_entry(pg->sm, e->index, e->data, e->data_size, res);
        index_entry(pg, e, res, n);
    }
    if (applied != NULL) memcpy(applied, res, n * sizeof res[0]);
    uint64_t cookie;
    int own;
    uint32_t part;
    /* More than one may wait at an index: one of an older term whose entry was replaced, and those
     * whose entry this is, each with its own batch. Each is answered. */
    while (proposals_applied_part(&pg->pending, e->index, e->term, &cookie, &own, &part)) {
        struct part_group_result out = {.error = RQ_ENOTLEADER};
        if (own && part < n)
            out = (struct part_group_result){res[part].error, res[part].base_offset,
                                             res[part].committed};
        pg->done(pg->done_arg, cookie, &out);
    }
    return n;
}

size_t part_group_snapshot(struct part_group *pg, uint8_t *buf, size_t cap) {
    if (cap < PARTITION_IMAGE_MAX) return PARTITION_IMAGE_MAX;
    return partition_sm_image(pg->sm, buf, cap);
}

void part_group_restore(struct part_group *pg, uint64_t index, const uint8_t *image, size_t size) {
    struct partition_sm *tmp = calloc(1, sizeof *tmp);
    RQ_ASSERT(tmp != NULL);
    partition_sm_init(tmp);
    /* Later applies come after the image's applied index: it must not claim more than the index
     * the snapshot was taken at. */
    if (partition_sm_restore(tmp, image, size) != 0 || tmp->applied_index > index) {
        pg->bad_images++;
    } else {
        tmp->stats = pg->sm->stats;
        partition_sm_copy(pg->sm, tmp);
        pg->batch_count = 0;   /* the batches below the image: found again in the store */
        pg->unindexed = 0;
        pg->readable_from = tmp->next_offset;
        pg->scan_to = index;
        pg->scan_next = 1;
        pg->scan_busy = 0;
        pg->scan_generation = (pg->scan_generation + 1) & 0x7FFFFFFFu;   /* 31 bits: a cookie's */
        pg->prefix_count = 0;
    }
    free(tmp);
}

/* ---- retention ---- */

/* Whether the batch is older than the time limit (by the clock of the leader asking). */
static int expired(const struct batch_pos *b, uint64_t limit_ns, uint64_t now_ns) {
    return now_ns >= limit_ns && b->timestamp_ns <= now_ns - limit_ns;
}

/* The first of batches [i, batch_count) whose records and all after them fit `bytes` (the newest
 * batch is always kept, however large). */
static uint32_t fitting_from(const struct part_group *pg, uint32_t i, uint64_t bytes) {
    const struct batch_pos *last = &pg->batches[pg->batch_count - 1];
    uint64_t end = last->bytes_before + last->bytes;
    if (end - pg->batches[i].bytes_before <= bytes) return i;
    uint32_t lo = i, hi = pg->batch_count - 1;   /* lo does not fit; hi is kept */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (end - pg->batches[mid].bytes_before <= bytes) hi = mid;
        else lo = mid;
    }
    return hi;
}

/* Records this replica cannot serve (below a snapshot it installed, or dropped from a full
 * index) are given up as well: left in place they would leave readers waiting (RQ_EBUSY) for
 * records no one will ever serve them here. While the index below a restored image is being
 * found again nothing is known: the log start stays. */
uint64_t part_group_retention_target(const struct part_group *pg,
                                     const struct part_group_retention *policy, uint64_t now_ns) {
    uint64_t target = pg->sm->log_start_offset;
    if (pg->scan_to != 0 || pg->unindexed != 0) return target;   /* not known yet */
    target = part_group_readable_from(pg);
    if (pg->batch_count == 0) return target;
    uint32_t i = first_kept(pg, target);
    for (uint32_t walked = 0; policy->time_ns != 0 && i < pg->batch_count &&
                              walked < PART_GROUP_RETENTION_WALK_MAX; walked++, i++) {
        if (!expired(&pg->batches[i], policy->time_ns, now_ns)) break;
    }
    if (policy->bytes != 0 && i < pg->batch_count) i = fitting_from(pg, i, policy->bytes);
    const struct batch_pos *last = &pg->batches[pg->batch_count - 1];
    uint64_t at = i < pg->batch_count ? pg->batches[i].base_offset : last->base_offset + last->count;
    return at > target ? at : target;
}

int part_group_retention(struct part_group *pg, struct host *h,
                         const struct part_group_retention *policy, uint64_t now_ns) {
    const struct raft *r = host_raft(h, pg->group);
    if (r == NULL) return RQ_ECLOSED;
    if (raft_role(r) != RAFT_LEADER) return RQ_ENOTLEADER;
    uint64_t target = part_group_retention_target(pg, policy, now_ns);
    if (target <= pg->sm->log_start_offset) return 0;
    /* Batches waiting to share an entry are in the tip at the index that entry is to get: they go
     * first, so that the RETAIN follows them in the log as in the tip. */
    if (open_count(pg) > 0 && open_flush(pg, h, "retention") != 0) return RQ_EBUSY;
    if (pg->tip_term != raft_term(r) && tip_build(pg, r) != 0) return RQ_EBUSY;
    if (target <= pg->tip->log_start_offset) return 0;   /* asked for already */
    uint8_t entry[PARTITION_RETAIN_ENTRY_MAX];
    size_t n = partition_retain_encode(entry, sizeof entry, target);
    struct partition_apply_result res;
    partition_sm_preview(pg->tip, entry, n, &res);
    RQ_ASSERT(res.outcome == PARTITION_RETAINED);   /* applied <= the tip's end; above its start */
    uint64_t index, term;
    int err = host_propose(h, pg->group, entry, (uint32_t)n, &index, &term);
    if (err != 0) return err;
    RQ_ASSERT(term == pg->tip_term);
    partition_sm_apply(pg->tip, index, entry, n, &res);
    if (pg->readable_from > pg->sm->log_start_offset)
        pg->given_up += pg->readable_from - pg->sm->log_start_offset;
    return 0;
}

uint64_t part_group_given_up(const struct part_group *pg) { return pg->given_up; }

uint64_t part_group_retain_below(const struct part_group *pg) {
    const struct partition_sm *sm = pg->sm;
    if (pg->scan_to != 0 || pg->batch_count == 0 || sm->log_start_offset < pg->readable_from)
        return 0;
    uint32_t i = first_kept(pg, sm->log_start_offset);
    if (i < pg->batch_count) return pg->batches[i].index;
    return pg->batches[pg->batch_count - 1].index + 1;
}

void part_group_tick(struct part_group *pg, struct host *h, uint64_t now_ns) {
    release_due(pg, h, now_ns);
    if (open_count(pg) > 0) (void)open_flush(pg, h, "tick");   /* at the latest; answers its own */
    uint64_t cookie;
    while (proposals_expired(&pg->pending, now_ns, pg->pending_timeout_ns, &cookie)) {
        struct part_group_result timed_out = {.error = RQ_ETIMEOUT};
        pg->done(pg->done_arg, cookie, &timed_out);
    }
}

uint64_t part_group_log_start(const struct part_group *pg) { return pg->sm->log_start_offset; }

uint64_t part_group_readable_from(const struct part_group *pg) {
    return pg->readable_from > pg->sm->log_start_offset ? pg->readable_from
                                                         : pg->sm->log_start_offset;
}

/* Copies the records of a batch at base_offset from `offset` on into b; returns 0 to go on, 1
 * when full. */
/* Appends pe's records from offset on to b within the bounds; one whose TTL has passed at now_ns
 * (broker/ttl.h) goes as a placeholder. Returns 1 when b is full. */
static int copy_records(const struct partition_entry *pe, uint64_t offset, uint32_t max_records,
                        uint32_t max_bytes, uint64_t now_ns, struct proto_fetch_builder *b) {
    const struct proto_records *rs = &pe->records;
    size_t cursor = 0, start = 0;
    struct proto_record rec;
    for (uint64_t o = pe->base_offset; proto_record_next(rs, &cursor, &rec); o++, start = cursor) {
        if (o < offset) continue;
        const uint8_t *data = rs->data + start;
        size_t size = cursor - start;
        uint8_t placeholder[TTL_PLACEHOLDER_MAX];
        if (rec.header_count > 0 && ttl_expired(&rec, pe->timestamp_ns, now_ns)) {
            size = ttl_placeholder(placeholder, rec.timestamp);
            data = placeholder;
        }
        if (b->count == max_records || (b->count > 0 && b->len + size > max_bytes)) return 1;
        if (proto_fetch_add(b, o, data, size) != 0) return 1;
    }
    return 0;
}

/* The batches of a committed entry that hold records (BATCH entries, alone or shared, that their
 * leader gave offsets), left in split->batches[0..n); returns n. */
static uint32_t records_of(const struct raft_entry *e, struct partition_split *split) {
    if (e->type != RAFT_ENTRY_NORMAL || partition_entry_split(e->data, e->data_size, split) != 0)
        return 0;
    uint32_t n = 0;
    for (uint32_t k = 0; k < split->count; k++)
        if (split->batches[k].base_offset != PARTITION_NO_OFFSET)
            split->batches[n++] = split->batches[k];
    return n;
}

/* The batch of n (records_of's) whose records start at base_offset, NULL if none. */
static const struct partition_entry *batch_from(const struct partition_split *split, uint32_t n,
                                                uint64_t base_offset) {
    for (uint32_t k = 0; k < n; k++)
        if (split->batches[k].base_offset == base_offset) return &split->batches[k];
    return NULL;
}

int part_group_read(const struct part_group *pg, const struct raft *r, uint64_t offset,
                    uint32_t max_records, uint32_t max_bytes, uint64_t now_ns,
                    struct proto_fetch_builder *b, uint64_t *load_from) {
    if (offset < pg->sm->log_start_offset) return RQ_ERANGE;
    /* Not deleted, but not readable here (yet): being found again after a restore, or below a
     * snapshot this replica installed, until a RETAIN moves the log start past them. */
    if (offset < part_group_readable_from(pg)) return RQ_EBUSY;
    if (offset >= pg->sm->next_offset || pg->batch_count == 0) return 0;
    struct partition_split split;   /* the entry of the positions being read (they share it) */
    uint64_t split_index = 0;
    uint32_t split_count = 0;
    for (uint32_t i = batch_of(pg, offset); i < pg->batch_count; i++) {
        const struct batch_pos *pos = &pg->batches[i];
        if (pos->index != split_index) {
            const struct raft_entry *e = raft_entry_at(r, pos->index);
            if (e == NULL) {   /* below Raft's memory: in the store */
                if (b->count > 0) return 0;   /* what memory had first; the reader asks again */
                *load_from = pos->index;
                return PART_GROUP_NEED_LOAD;
            }
            split_count = records_of(e, &split);
            split_index = pos->index;
        }
        const struct partition_entry *pe = batch_from(&split, split_count, pos->base_offset);
        RQ_ASSERT(pe != NULL);   /* the applied entry at that index holds the batch */
        RQ_ASSERT(pe->records.count == pos->count);
        if (copy_records(pe, offset, max_records, max_bytes, now_ns, b)) break;
    }
    return 0;
}

void part_group_read_loaded(const struct part_group *pg, const struct raft_entry *entries,
                            uint32_t count, uint64_t offset, uint32_t max_records,
                            uint32_t max_bytes, uint64_t now_ns, struct proto_fetch_builder *b) {
    uint64_t end = pg->sm->next_offset;
    struct partition_split split;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t n = records_of(&entries[i], &split);
        for (uint32_t k = 0; k < n; k++) {
            const struct partition_entry *pe = &split.batches[k];
            if (pe->base_offset + pe->records.count <= offset) continue;
            if (pe->base_offset + pe->records.count > end) return;   /* not applied here yet */
            if (copy_records(pe, offset, max_records, max_bytes, now_ns, b)) return;
        }
    }
}

/* ---- the index below a restored image ---- */

int part_group_scan_wanted(const struct part_group *pg, uint64_t *from, uint32_t *generation) {
    if (pg->scan_to == 0 || pg->scan_busy) return 0;
    *from = pg->scan_next;
    *generation = pg->scan_generation;
    return 1;
}

void part_group_scan_started(struct part_group *pg) { pg->scan_busy = 1; }

/* The scan is over: the batches found go in front of those applied since (or are dropped, with
 * what is below the image left unreadable, if they do not meet them or memory runs out). */
static void scan_finish(struct part_group *pg) {
    uint32_t n = pg->prefix_count + pg->batch_count;
    uint64_t end = pg->prefix_count ? pg->prefix[pg->prefix_count - 1].base_offset +
                                          pg->prefix[pg->prefix_count - 1].count
                                    : 0;
    struct batch_pos *all = NULL;
    if (pg->prefix_count > 0 && end == pg->readable_from && n <= PART_GROUP_BATCHES_MAX)
        all = malloc((size_t)n * sizeof *all);
    if (all != NULL) {
        memcpy(all, pg->prefix, pg->prefix_count * sizeof *all);
        if (pg->batch_count) memcpy(all + pg->prefix_count, pg->batches, pg->batch_count * sizeof *all);
        /* The batches applied since counted their bytes from another origin. */
        const struct batch_pos *last = &pg->prefix[pg->prefix_count - 1];
        uint64_t shift = pg->batch_count ? last->bytes_before + last->bytes - pg->batches[0].bytes_before : 0;
        for (uint32_t i = pg->prefix_count; i < n; i++) all[i].bytes_before += shift;
        free(pg->batches);
        pg->batches = all;
        pg->batch_count = pg->batch_cap = n;
        pg->readable_from = pg->prefix[0].base_offset;
    }
    free(pg->prefix);
    pg->prefix = NULL;
    pg->prefix_count = pg->prefix_cap = 0;
    pg->scan_to = 0;
}

static int prefix_push(struct part_group *pg, struct batch_pos pos) {
    if (pg->prefix_count == pg->prefix_cap) {
        uint32_t cap = pg->prefix_cap ? 2 * pg->prefix_cap : 64;
        struct batch_pos *p = cap <= PART_GROUP_BATCHES_MAX ? realloc(pg->prefix, cap * sizeof *p)
                                                            : NULL;
        if (p == NULL) return RQ_ENOMEM;
        pg->prefix = p;
        pg->prefix_cap = cap;
    }
    const struct batch_pos *last = pg->prefix_count ? &pg->prefix[pg->prefix_count - 1] : NULL;
    pos.bytes_before = last ? last->bytes_before + last->bytes : 0;
    pg->prefix[pg->prefix_count++] = pos;
    return 0;
}

void part_group_scan_loaded(struct part_group *pg, uint32_t generation, int err,
                            const struct raft_entry *entries, uint32_t count) {
    if (generation != pg->scan_generation || !pg->scan_busy) return;   /* a restore started over */
    pg->scan_busy = 0;
    if (err == RQ_EBUSY) return;   /* the store was busy: part_group_scan_wanted asks again */
    /* The stored log starts after the image (a snapshot installed here): nothing below it. */
    if (err == 0 && count > 0 && entries[0].index > pg->scan_to) err = RQ_ERANGE;
    struct partition_split split;
    for (uint32_t i = 0; err == 0 && i < count && entries[i].index <= pg->scan_to; i++) {
        uint32_t n = records_of(&entries[i], &split);
        for (uint32_t k = 0; err == 0 && k < n; k++)   /* a SHARED entry: each batch */
            err = prefix_push(pg, pos_of(entries[i].index, &split.batches[k]));
        pg->scan_next = entries[i].index + 1;
    }
    if (err != 0 || count == 0 || pg->scan_next > pg->scan_to) {
        if (err != 0) pg->prefix_count = 0;   /* nothing below the image is readable here */
        scan_finish(pg);
    }
}

