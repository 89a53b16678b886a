/* brokernode.h — a broker (node/broker.h) as a simulated server process, for the mq workload and
 * the broker's tests: the node ops forward every call to the broker. Server n advertises the
 * address "nN:9092"; servers 1..controllers (at most RAFT_VOTERS_MAX) run the controller. */
#ifndef RQ_SIM_BROKERNODE_H
#define RQ_SIM_BROKERNODE_H

#include <stdint.h>

#include "io/io.h"
#include "node/broker.h"

/* What sim_broker_ops.create takes: the workload's state (the config every node is given) must
 * begin with one. */
struct sim_broker_setup {
    uint32_t controllers;
    struct broker_observer obs;
    uint32_t snapshot_entries;   /* every group's snapshot policy (raft_config); 0: the default */
    uint32_t snapshot_trailing;
    uint64_t segment_bytes;      /* the stores' segment roll size; 0: the default (256 MiB: a
                                    simulated log never rolls one, so retention deletes none) */
    int moves_paused;            /* broker_config.moves_paused */
};

extern const struct rq_node_ops sim_broker_ops;

#endif
