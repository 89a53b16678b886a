/* The raft-kv workload's test hooks: deliberate bugs a test switches on to show that the
 * workload's checks catch them end to end (a checker that never fires proves nothing). */
#ifndef RQ_SIM_RAFTKV_H
#define RQ_SIM_RAFTKV_H

#include <stdint.h>

#include "sim/sim.h"

enum raftkv_bug {
    RAFTKV_BUG_ACK_BEFORE_COMMIT = 1u << 0,  /* answer a write when proposed, not when applied */
    RAFTKV_BUG_LOCAL_READS = 1u << 1,        /* a node that believes it leads answers reads from
                                                its own state, bypassing the log */
    RAFTKV_BUG_NO_HEAL = 1u << 2,            /* the servers stay cut off from each other after
                                                the heal */
    RAFTKV_BUG_FOLLOWER_LOCAL_READS = 1u << 3, /* a follower answers a ReadIndex read from its own
                                                state without asking the leader */
    RAFTKV_BUG_SNAPSHOT_SKEW = 1u << 4,      /* server 1's snapshot images misstate a value */
};

/* s must run the raft-kv workload; call before sim_run. */
void raftkv_inject_bugs(struct sim *s, uint32_t bugs);

#endif
