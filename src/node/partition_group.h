/* partition_group.h — a partition's state machine (broker/partition.h) as one Raft group of a
 * node's host: the partition log is the group's log, one produce batch an entry.
 *
 *   part_group_produce(request) -> the batch becomes an entry (its records as they came) proposed
 *                                  to the group; acks=0 is not waited for; acks=1 and acks=all are
 *                                  answered once the entry is applied: APPENDED with its base
 *                                  offset, a DUPLICATE with the original batch's offset (so a
 *                                  retried idempotent batch gets the offset it got the first
 *                                  time), RQ_ESEQUENCE for an out-of-order batch, RQ_ENOTLEADER
 *                                  when another leader's entry took the index
 *   part_group_apply/snapshot/restore -> partition_sm_apply / image / restore
 *
 * acks=1 is answered at commit, as acks=all: stronger than promised (a message acknowledged with
 * acks=1 is then never lost), and slower than it could be. Answering at the leader's own durable
 * append, which the host does not report yet, is not built. The fetch path is not built either. */
#ifndef RQ_NODE_PARTITION_GROUP_H
#define RQ_NODE_PARTITION_GROUP_H

#include <stdint.h>

#include "broker/partition.h"
#include "node/host.h"
#include "proto/msg.h"

struct part_group_result {
    int error;                    /* 0, or what to answer the producer */
    uint64_t base_offset;         /* with error 0 */
};

typedef void (*part_group_done_fn)(void *arg, uint64_t cookie, const struct part_group_result *r);

struct part_group;

struct part_group *part_group_create(uint32_t group, uint64_t pending_timeout_ns,
                                     part_group_done_fn done, void *done_arg);
void part_group_destroy(struct part_group *pg);

/* Proposes req's batch. Returns 0 (done follows once, unless acks=0), RQ_ETOOBIG (the batch does
 * not fit one entry), RQ_EBUSY (too many proposals wait), or host_propose's error. */
int part_group_produce(struct part_group *pg, struct host *h, const struct proto_produce_req *req,
                       uint64_t cookie, uint64_t now_ns);

void part_group_apply(struct part_group *pg, const struct raft_entry *e);
size_t part_group_snapshot(struct part_group *pg, uint8_t *buf, size_t cap);
/* Restores an image taken at Raft index `index`; an image that does not decode or claims an
 * applied index beyond `index` is refused and counted (the node should halt). */
void part_group_restore(struct part_group *pg, uint64_t index, const uint8_t *image, size_t size);
void part_group_tick(struct part_group *pg, uint64_t now_ns);

const struct partition_sm *part_group_state(const struct part_group *pg);
uint64_t part_group_bad_images(const struct part_group *pg);

#endif
