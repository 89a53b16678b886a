/* A partition's state machine as a Raft group of the node's host; see partition_group.h. */
#include "node/partition_group.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
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
    uint64_t retention_due_ns;    /* a leader's next retention check */
    uint64_t given_up;            /* records it proposed to delete because it could not serve them */
    /* Rebuilding the index below a restored image (part_group_scan_*). */
    uint64_t scan_to;             /* the image's Raft index; 0: no scan */
    uint64_t scan_next;
    int scan_busy;
    uint32_t scan_generation;     /* +1 at every restore */
    struct batch_pos *prefix;
    uint32_t prefix_count;
    uint32_t prefix_cap;
    uint8_t entry[RAFT_ENTRY_DATA_MAX];
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
    free(pg->sm);
    free(pg);
}

const struct partition_sm *part_group_state(const struct part_group *pg) { return pg->sm; }
uint64_t part_group_bad_images(const struct part_group *pg) { return pg->bad_images; }

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

int part_group_produce(struct part_group *pg, struct host *h, const struct proto_produce_req *req,
                       uint64_t cookie, uint64_t now_ns) {
    int wait = req->acks != PROTO_ACKS_NONE;
    if (wait && !proposals_room(&pg->pending)) return RQ_EBUSY;
    const struct raft *r = host_raft(h, pg->group);
    if (r == NULL) return RQ_ECLOSED;
    if (raft_role(r) != RAFT_LEADER) return RQ_ENOTLEADER;
    if (pg->tip_term != raft_term(r) && tip_build(pg, r) != 0) return RQ_EBUSY;
    /* The leader assigns the offsets: those its tip foresees (none for a batch it foresees as a
     * duplicate or out of order; the entry says so, and the apply decides as foreseen). */
    size_t n = partition_entry_encode(pg->entry, sizeof pg->entry, pg->tip->next_offset,
                                      req->producer_id, req->base_sequence, now_ns, &req->records);
    if (n == 0) return RQ_ETOOBIG;
    struct partition_apply_result foresight;
    partition_sm_preview(pg->tip, pg->entry, n, &foresight);
    if (foresight.outcome != PARTITION_APPENDED) {
        n = partition_entry_encode(pg->entry, sizeof pg->entry, PARTITION_NO_OFFSET,
                                   req->producer_id, req->base_sequence, now_ns, &req->records);
        if (n == 0) return RQ_ETOOBIG;
    }
    uint64_t index, term;
    int err = host_propose(h, pg->group, pg->entry, (uint32_t)n, &index, &term);
    if (err != 0) return err;
    RQ_ASSERT(term == pg->tip_term);
    struct partition_apply_result res;
    partition_sm_apply(pg->tip, index, pg->entry, n, &res);
    RQ_ASSERT(res.outcome != PARTITION_MISMATCH);
    if (req->acks == PROTO_ACKS_LEADER) {
        proposals_add_early(&pg->pending, index, term, cookie, now_ns, res.error, res.base_offset);
    } else if (wait) {
        proposals_add(&pg->pending, index, term, cookie, now_ns);
    }
    return 0;
}

void part_group_durable(struct part_group *pg, const struct raft *r, uint64_t index) {
    uint64_t cookie, offset;
    int error;
    while (proposals_durable(&pg->pending, r, index, &cookie, &error, &offset)) {
        struct part_group_result out = {.error = error, .base_offset = offset};
        pg->done(pg->done_arg, cookie, &out);
    }
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

void part_group_apply(struct part_group *pg, const struct raft_entry *e,
                      struct partition_apply_result *applied) {
    struct part_group_result out = {.error = RQ_ENOTLEADER};
    struct partition_apply_result res = {0};
    if (e->type == RAFT_ENTRY_NORMAL) {
        partition_sm_apply(pg->sm, e->index, e->data, e->data_size, &res);
        if (res.outcome == PARTITION_APPENDED && pg->unindexed == 0) {
            struct partition_entry pe;
            int ok = partition_entry_decode(e->data, e->data_size, &pe) == 0;
            RQ_ASSERT(ok && pe.base_offset == res.base_offset);
            struct batch_pos pos = pos_of(e->index, &pe);
            index_batch(pg, &pos);
        } else if (res.outcome == PARTITION_APPENDED) {
            pg->unindexed++;
        }
        if (res.outcome == PARTITION_RETAINED) index_trim(pg, res.base_offset);
    }
    if (applied != NULL) *applied = res;
    uint64_t cookie;
    int own;
    /* More than one may wait at an index: one of an older term whose entry was replaced, and the
     * one whose entry this is. Each is answered. */
    while (proposals_applied(&pg->pending, e->index, e->term, &cookie, &own)) {
        struct part_group_result mine = {.error = res.error, .base_offset = res.base_offset};
        pg->done(pg->done_arg, cookie, own ? &mine : &out);
    }
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
    if (now_ns < pg->retention_due_ns) return 0;
    pg->retention_due_ns = now_ns + PART_GROUP_RETENTION_EVERY_NS;
    const struct raft *r = host_raft(h, pg->group);
    if (r == NULL) return RQ_ECLOSED;
    if (raft_role(r) != RAFT_LEADER) return RQ_ENOTLEADER;
    uint64_t target = part_group_retention_target(pg, policy, now_ns);
    if (target <= pg->sm->log_start_offset) return 0;
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

void part_group_tick(struct part_group *pg, uint64_t now_ns) {
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
static int copy_records(const struct proto_records *rs, uint64_t base_offset, uint64_t offset,
                        uint32_t max_records, uint32_t max_bytes, struct proto_fetch_builder *b) {
    size_t cursor = 0, start = 0;
    struct proto_record rec;
    for (uint64_t o = base_offset; proto_record_next(rs, &cursor, &rec); o++, start = cursor) {
        if (o < offset) continue;
        size_t size = cursor - start;
        if (b->count == max_records || (b->count > 0 && b->len + size > max_bytes)) return 1;
        if (proto_fetch_add(b, o, rs->data + start, size) != 0) return 1;
    }
    return 0;
}

/* The records of a committed entry, if it holds any (a BATCH its leader gave offsets). */
static int records_of(const struct raft_entry *e, struct partition_entry *pe) {
    return e->type == RAFT_ENTRY_NORMAL && partition_entry_decode(e->data, e->data_size, pe) == 0 &&
           pe->kind == PARTITION_ENTRY_BATCH && pe->base_offset != PARTITION_NO_OFFSET;
}

int part_group_read(const struct part_group *pg, const struct raft *r, uint64_t offset,
                    uint32_t max_records, uint32_t max_bytes, struct proto_fetch_builder *b,
                    uint64_t *load_from) {
    if (offset < pg->sm->log_start_offset) return RQ_ERANGE;
    /* Not deleted, but not readable here (yet): being found again after a restore, or below a
     * snapshot this replica installed, until a RETAIN moves the log start past them. */
    if (offset < part_group_readable_from(pg)) return RQ_EBUSY;
    if (offset >= pg->sm->next_offset || pg->batch_count == 0) return 0;
    for (uint32_t i = batch_of(pg, offset); i < pg->batch_count; i++) {
        const struct batch_pos *pos = &pg->batches[i];
        const struct raft_entry *e = raft_entry_at(r, pos->index);
        if (e == NULL) {   /* below Raft's memory: in the store */
            if (b->count > 0) return 0;   /* what memory had first; the reader asks again */
            *load_from = pos->index;
            return PART_GROUP_NEED_LOAD;
        }
        struct partition_entry pe;
        int ok = records_of(e, &pe);
        RQ_ASSERT(ok && pe.base_offset == pos->base_offset && pe.records.count == pos->count);
        if (copy_records(&pe.records, pos->base_offset, offset, max_records, max_bytes, b)) break;
    }
    return 0;
}

void part_group_read_loaded(const struct part_group *pg, const struct raft_entry *entries,
                            uint32_t count, uint64_t offset, uint32_t max_records,
                            uint32_t max_bytes, struct proto_fetch_builder *b) {
    uint64_t end = pg->sm->next_offset;
    for (uint32_t i = 0; i < count; i++) {
        struct partition_entry pe;
        if (!records_of(&entries[i], &pe) || pe.base_offset + pe.records.count <= offset) continue;
        if (pe.base_offset + pe.records.count > end) return;   /* not applied here yet */
        if (copy_records(&pe.records, pe.base_offset, offset, max_records, max_bytes, b)) return;
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
    for (uint32_t i = 0; err == 0 && i < count && entries[i].index <= pg->scan_to; i++) {
        struct partition_entry pe;
        if (records_of(&entries[i], &pe)) err = prefix_push(pg, pos_of(entries[i].index, &pe));
        pg->scan_next = entries[i].index + 1;
    }
    if (err != 0 || count == 0 || pg->scan_next > pg->scan_to) {
        if (err != 0) pg->prefix_count = 0;   /* nothing below the image is readable here */
        scan_finish(pg);
    }
}

