/* A partition's state machine as a Raft group of the node's host; see partition_group.h. */
#include "node/partition_group.h"

#include <stdlib.h>

#include "base/assert.h"
#include "base/errors.h"
#include "node/proposals.h"

struct part_group {
    uint32_t group;
    uint64_t pending_timeout_ns;
    part_group_done_fn done;
    void *done_arg;
    struct partition_sm *sm;      /* about 144 KiB */
    struct proposals pending;
    uint64_t bad_images;
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
    free(pg->sm);
    free(pg);
}

const struct partition_sm *part_group_state(const struct part_group *pg) { return pg->sm; }
uint64_t part_group_bad_images(const struct part_group *pg) { return pg->bad_images; }

int part_group_produce(struct part_group *pg, struct host *h, const struct proto_produce_req *req,
                       uint64_t cookie, uint64_t now_ns) {
    int wait = req->acks != PROTO_ACKS_NONE;
    if (wait && !proposals_room(&pg->pending)) return RQ_EBUSY;
    size_t n = partition_entry_encode(pg->entry, sizeof pg->entry, req->producer_id,
                                      req->base_sequence, now_ns, &req->records);
    if (n == 0) return RQ_ETOOBIG;
    uint64_t index, term;
    int err = host_propose(h, pg->group, pg->entry, (uint32_t)n, &index, &term);
    if (err != 0) return err;
    if (wait) proposals_add(&pg->pending, index, term, cookie, now_ns);
    return 0;
}

void part_group_apply(struct part_group *pg, const struct raft_entry *e) {
    struct part_group_result out = {.error = RQ_ENOTLEADER};
    struct partition_apply_result res = {0};
    if (e->type == RAFT_ENTRY_NORMAL) {
        partition_sm_apply(pg->sm, e->index, e->data, e->data_size, &res);
    }
    uint64_t cookie;
    int own;
    if (!proposals_applied(&pg->pending, e->index, e->term, &cookie, &own)) return;
    if (own) out = (struct part_group_result){.error = res.error, .base_offset = res.base_offset};
    pg->done(pg->done_arg, cookie, &out);
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
