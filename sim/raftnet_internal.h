/* raftnet_internal.h — what raftnet.c and raftnet_snapshot.c share. Not for tests. */
#ifndef RQ_SIM_RAFTNET_INTERNAL_H
#define RQ_SIM_RAFTNET_INTERNAL_H

#include "sim/raftnet.h"

/* raftnet.c */
void raftnet_stored_set(struct raftnet_stored *s, const struct raft_entry *e);
void raftnet_stored_free(struct raftnet_stored *s);
/* Records that node id applied e (the next index), checking it against what others applied. */
void raftnet_apply(struct raftnet *net, uint32_t id, const struct raft_entry *e);

/* raftnet_snapshot.c, called from a node's drain and start */
void raftnet_snapshot_receive(struct raftnet *net, uint32_t id);   /* a chunk came in */
void raftnet_snapshot_serve(struct raftnet *net, uint32_t id);     /* chunks asked for */
void raftnet_loads_serve(struct raftnet *net, uint32_t id);        /* stored_log reads asked for */
void raftnet_snapshot_maybe_take(struct raftnet *net, uint32_t id);
/* Start: the state machine from the snapshot, then the durable log after it, into the raft. */
void raftnet_snapshot_restore(struct raftnet *net, uint32_t id);

#endif
