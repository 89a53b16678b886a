/* controller_group.h — the controller's state machine (meta/controller.h) as one Raft group of a
 * node's host (node/host.h): the node's host callbacks hand this module the group's committed
 * entries, snapshot requests and images; its callers propose commands and learn their results.
 *
 *   ctl_group_propose(command)  -> host_propose on the controller group; the caller's cookie
 *                                  waits for that (index, term) to be applied
 *   ctl_group_apply(entry)      -> controller_apply; a waiting proposal at that index gets the
 *                                  result if the entry is its own, else RQ_ENOTLEADER (another
 *                                  leader's entry took the index: the proposal is lost, retry)
 *   ctl_group_snapshot/restore  -> controller_image / controller_restore
 *   ctl_group_tick(now)         -> the leader proposes EXPIRE every expire_every_ns, stamped with
 *                                  its own clock (the state machine never reads one)
 * Waiting proposals are bounded (node/proposals.h); one the group never applies (its leader lost
 * the entry) is forgotten after pending_timeout_ns with RQ_ETIMEOUT. */
#ifndef RQ_NODE_CONTROLLER_GROUP_H
#define RQ_NODE_CONTROLLER_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "meta/controller.h"
#include "node/host.h"

typedef void (*ctl_group_done_fn)(void *arg, uint64_t cookie, const struct controller_result *res);

struct ctl_group_config {
    uint32_t group;                   /* the controller's group id in the host */
    uint64_t heartbeat_timeout_ns;    /* brokers: see controller_create */
    uint64_t expire_every_ns;         /* how often the leader proposes EXPIRE */
    uint64_t pending_timeout_ns;
};

struct ctl_group;

struct ctl_group *ctl_group_create(const struct ctl_group_config *cfg, ctl_group_done_fn done,
                                   void *done_arg);
void ctl_group_destroy(struct ctl_group *cg);

/* Proposes a command (controller_cmd_*). Returns 0 (done follows, once), or host_propose's error
 * (RQ_ENOTLEADER, RQ_EBUSY, ...) or RQ_EBUSY when PROPOSALS_MAX proposals wait. */
int ctl_group_propose(struct ctl_group *cg, struct host *h, const uint8_t *cmd, size_t size,
                      uint64_t cookie, uint64_t now_ns);

/* From the node's host callbacks, for the controller's group only. */
void ctl_group_apply(struct ctl_group *cg, const struct raft_entry *e);
size_t ctl_group_snapshot(struct ctl_group *cg, uint8_t *buf, size_t cap);
void ctl_group_restore(struct ctl_group *cg, const uint8_t *image, size_t size);

/* From the node's timer. */
void ctl_group_tick(struct ctl_group *cg, struct host *h, uint64_t now_ns);

const struct controller *ctl_group_state(const struct ctl_group *cg);
/* Images this replica could not restore (a corrupt snapshot: the node should halt). */
uint64_t ctl_group_bad_images(const struct ctl_group *cg);

#endif
