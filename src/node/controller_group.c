/* The controller's state machine as a Raft group of the node's host; see controller_group.h. */
#include "node/controller_group.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "node/proposals.h"

struct ctl_group {
    struct ctl_group_config cfg;
    ctl_group_done_fn done;
    void *done_arg;
    struct controller *state;
    struct proposals pending;
    uint64_t next_expire_ns;
    uint64_t bad_images;
};

struct ctl_group *ctl_group_create(const struct ctl_group_config *cfg, ctl_group_done_fn done,
                                   void *done_arg) {
    RQ_ASSERT(done != NULL && cfg->expire_every_ns > 0);
    struct ctl_group *cg = calloc(1, sizeof *cg);
    if (cg == NULL) return NULL;
    cg->cfg = *cfg;
    cg->done = done;
    cg->done_arg = done_arg;
    cg->state = controller_create(cfg->heartbeat_timeout_ns);
    if (cg->state == NULL) {
        free(cg);
        return NULL;
    }
    return cg;
}

void ctl_group_destroy(struct ctl_group *cg) {
    if (cg == NULL) return;
    controller_destroy(cg->state);
    free(cg);
}

const struct controller *ctl_group_state(const struct ctl_group *cg) { return cg->state; }
uint64_t ctl_group_bad_images(const struct ctl_group *cg) { return cg->bad_images; }

int ctl_group_propose(struct ctl_group *cg, struct host *h, const uint8_t *cmd, size_t size,
                      uint64_t cookie, uint64_t now_ns) {
    if (!proposals_room(&cg->pending)) return RQ_EBUSY;
    uint64_t index, term;
    /* Nothing is applied inside host_propose (commitment waits for the disk), so the proposal is
     * recorded before its entry can be applied. */
    int err = host_propose(h, cg->cfg.group, cmd, (uint32_t)size, &index, &term);
    if (err != 0) return err;
    proposals_add(&cg->pending, index, term, cookie, now_ns);
    return 0;
}

void ctl_group_apply(struct ctl_group *cg, const struct raft_entry *e) {
    struct controller_result res = {0};
    if (e->type == RAFT_ENTRY_NORMAL) controller_apply(cg->state, e->data, e->data_size, &res);
    uint64_t cookie;
    int own;
    struct controller_result lost = {.error = RQ_ENOTLEADER};
    /* More than one may wait at an index (one of an older term whose entry was replaced): each
     * is answered. */
    while (proposals_applied(&cg->pending, e->index, e->term, &cookie, &own))
        cg->done(cg->done_arg, cookie, own ? &res : &lost);
}

size_t ctl_group_snapshot(struct ctl_group *cg, uint8_t *buf, size_t cap) {
    size_t need = controller_image_size(cg->state);
    if (need > cap) return need;   /* too big: the host stops taking snapshots, and says so */
    return controller_image(cg->state, buf, cap);
}

void ctl_group_restore(struct ctl_group *cg, const uint8_t *image, size_t size) {
    if (controller_restore(cg->state, image, size) != 0) cg->bad_images++;
}

void ctl_group_tick(struct ctl_group *cg, struct host *h, uint64_t now_ns) {
    uint64_t cookie;
    while (proposals_expired(&cg->pending, now_ns, cg->cfg.pending_timeout_ns, &cookie)) {
        struct controller_result timed_out = {.error = RQ_ETIMEOUT};
        cg->done(cg->done_arg, cookie, &timed_out);
    }
    const struct raft *r = host_raft(h, cg->cfg.group);
    if (r == NULL || raft_role(r) != RAFT_LEADER || now_ns < cg->next_expire_ns) return;
    cg->next_expire_ns = now_ns + cg->cfg.expire_every_ns;
    uint8_t cmd[CONTROLLER_CMD_MAX];
    uint64_t index, term;
    host_propose(h, cg->cfg.group, cmd, (uint32_t)controller_cmd_expire(cmd, now_ns), &index, &term);
}
