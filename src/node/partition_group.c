/* A partition's state machine as a Raft group of the node's host; see partition_group.h. */
#include "node/partition_group.h"

#include <stdlib.h>

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
    uint64_t unindexed;           /* batches past PART_GROUP_BATCHES_MAX: not readable */
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

/* Indexes an applied batch (bounded: beyond the bound its records cannot be read, counted). */
static void index_batch(struct part_group *pg, uint64_t index, uint64_t base_offset,
                        uint32_t count) {
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
        pg->batch_count = 0;   /* the records below the image are not in this log */
        pg->unindexed = 0;
        pg->readable_from = tmp->next_offset;
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

/* Copies one batch's records from `offset` on into b; returns 0 to go on, 1 when full. */
static int read_batch(const struct batch_pos *pos, const struct raft_entry *e, uint64_t offset,
                      uint32_t max_records, uint32_t max_bytes, struct proto_fetch_builder *b) {
    struct partition_entry pe;
    int err = partition_entry_decode(e->data, e->data_size, &pe);
    RQ_ASSERT(err == 0 && pe.records.count == pos->count);   /* it was applied as a batch */
    size_t cursor = 0, start = 0;
    struct proto_record rec;
    for (uint64_t o = pos->base_offset; proto_record_next(&pe.records, &cursor, &rec);
         o++, start = cursor) {
        if (o < offset) continue;
        size_t size = cursor - start;
        if (b->count == max_records || (b->count > 0 && b->len + size > max_bytes)) return 1;
        if (proto_fetch_add(b, o, pe.records.data + start, size) != 0) return 1;
    }
    return 0;
}

int part_group_read(const struct part_group *pg, const struct raft *r, uint64_t offset,
                    uint32_t max_records, uint32_t max_bytes, struct proto_fetch_builder *b) {
    if (offset < part_group_log_start(pg)) return RQ_ERANGE;
    if (offset >= pg->sm->next_offset || pg->batch_count == 0) return 0;
    for (uint32_t i = batch_of(pg, offset); i < pg->batch_count; i++) {
        const struct raft_entry *e = raft_entry_at(r, pg->batches[i].index);
        RQ_ASSERT(e != NULL);   /* a group whose log is its data keeps every entry */
        if (read_batch(&pg->batches[i], e, offset, max_records, max_bytes, b)) break;
    }
    return 0;
}
