/* A partition's state machine as a Raft group of the node's host; see partition_group.h. */
#include "node/partition_group.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "node/proposals.h"

/* An applied batch: where its records are. */
struct batch_pos {
    uint64_t index;               /* its Raft entry */
    uint64_t base_offset;
    uint32_t count;
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

/* Indexes an applied batch. The index holds the newest PART_GROUP_BATCHES_MAX batches: when it is
 * full the older half is dropped, and the records it indexed fall below part_group_log_start on
 * this replica (RQ_ERANGE), so that the newest records are always readable (a full index that
 * refused new batches left a reader at the tail with empty answers for ever). Without memory to
 * grow, a batch is not indexed and neither is any later one (counted: unindexed). */
static void index_batch(struct part_group *pg, uint64_t index, uint64_t base_offset,
                        uint32_t count) {
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
    RQ_ASSERT(pg->batch_count == 0 ||
              pg->batches[pg->batch_count - 1].base_offset + pg->batches[pg->batch_count - 1].count ==
                  base_offset);
    pg->batches[pg->batch_count++] = (struct batch_pos){index, base_offset, count};
}

void part_group_apply(struct part_group *pg, const struct raft_entry *e,
                      struct partition_apply_result *applied) {
    struct part_group_result out = {.error = RQ_ENOTLEADER};
    struct partition_apply_result res = {0};
    if (e->type == RAFT_ENTRY_NORMAL) {
        partition_sm_apply(pg->sm, e->index, e->data, e->data_size, &res);
        if (res.outcome == PARTITION_APPENDED && pg->unindexed == 0)
            index_batch(pg, e->index, res.base_offset, res.record_count);
        else if (res.outcome == PARTITION_APPENDED)
            pg->unindexed++;
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

void part_group_tick(struct part_group *pg, uint64_t now_ns) {
    uint64_t cookie;
    while (proposals_expired(&pg->pending, now_ns, pg->pending_timeout_ns, &cookie)) {
        struct part_group_result timed_out = {.error = RQ_ETIMEOUT};
        pg->done(pg->done_arg, cookie, &timed_out);
    }
}

uint64_t part_group_log_start(const struct part_group *pg) {
    return pg->readable_from > pg->sm->log_start_offset ? pg->readable_from
                                                         : pg->sm->log_start_offset;
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
           pe->base_offset != PARTITION_NO_OFFSET;
}

int part_group_read(const struct part_group *pg, const struct raft *r, uint64_t offset,
                    uint32_t max_records, uint32_t max_bytes, struct proto_fetch_builder *b,
                    uint64_t *load_from) {
    if (offset < part_group_log_start(pg)) return pg->scan_to ? RQ_EBUSY : RQ_ERANGE;
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

static int prefix_push(struct part_group *pg, uint64_t index, uint64_t base_offset, uint32_t count) {
    if (pg->prefix_count == pg->prefix_cap) {
        uint32_t cap = pg->prefix_cap ? 2 * pg->prefix_cap : 64;
        struct batch_pos *p = cap <= PART_GROUP_BATCHES_MAX ? realloc(pg->prefix, cap * sizeof *p)
                                                            : NULL;
        if (p == NULL) return RQ_ENOMEM;
        pg->prefix = p;
        pg->prefix_cap = cap;
    }
    pg->prefix[pg->prefix_count++] = (struct batch_pos){index, base_offset, count};
    return 0;
}

void part_group_scan_loaded(struct part_group *pg, uint32_t generation, int err,
                            const struct raft_entry *entries, uint32_t count) {
    if (generation != pg->scan_generation || !pg->scan_busy) return;   /* a restore started over */
    pg->scan_busy = 0;
    if (err == RQ_EBUSY) return;   /* the store was busy: part_group_scan_wanted asks again */
    for (uint32_t i = 0; err == 0 && i < count && entries[i].index <= pg->scan_to; i++) {
        struct partition_entry pe;
        if (records_of(&entries[i], &pe))
            err = prefix_push(pg, entries[i].index, pe.base_offset, pe.records.count);
        pg->scan_next = entries[i].index + 1;
    }
    if (err != 0 || count == 0 || pg->scan_next > pg->scan_to) {
        if (err != 0) pg->prefix_count = 0;   /* nothing below the image is readable here */
        scan_finish(pg);
    }
}

