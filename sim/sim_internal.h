/* Internals shared by sim.c (event loop, processes, io.h), net.c (network) and faults.c (swarm
 * and fault schedule). Not for workloads: they use sim.h. */
#ifndef RQ_SIM_INTERNAL_H
#define RQ_SIM_INTERNAL_H

#include "base/ctx.h"
#include "base/heap.h"
#include "sim/clock.h"
#include "sim/sim.h"

enum sim_ev_type {
    EV_START = 1,     /* a process starts (first time or after a crash) */
    EV_DELIVER,       /* a message arrives */
    EV_TIMER,         /* a process's timer fires */
    EV_DISK,          /* a disk request completes */
    EV_CONN_CLOSED,   /* a client's connection to a server closed (client crashed) */
    EV_FAULT,         /* the fault schedule acts */
    EV_HEAL,          /* faults stop */
};

enum sim_fault_action {
    FA_PARTITION = 1, FA_PARTITION_END, FA_FLAP, FA_CRASH, FA_PAUSE, FA_ENOSPC, FA_ENOSPC_END,
    FA_CORRUPT, FA_DRIFT,
};

struct sim_event {
    uint8_t type;
    uint8_t action;           /* EV_FAULT: enum sim_fault_action */
    uint8_t is_client_msg;    /* EV_DELIVER: client -> server over a connection */
    uint32_t proc;            /* index of the process it happens to */
    uint32_t from;            /* EV_DELIVER: index of the sender */
    uint32_t incarnation;     /* EV_TIMER/EV_DISK: the process incarnation it belongs to */
    uint32_t len;
    uint64_t gen;             /* EV_TIMER: timer generation; EV_FAULT: argument */
    uint64_t conn;
    uint8_t *data;            /* EV_DELIVER: owned copy of the message */
    struct rq_disk_req *req;  /* EV_DISK: owned by the node; never touched after a crash */
    struct sim_event *next_free;
};

struct sim_proc {
    struct sim *sim;
    uint32_t index;           /* 0..servers-1 servers, then clients */
    uint32_t id;              /* node id as the process sees it */
    int is_client;
    const struct rq_node_ops *ops;
    void *node;               /* NULL while down */
    int up;
    int halt_requested;
    uint64_t paused_until;    /* true time; paused while now < paused_until */
    uint32_t incarnation;     /* bumped at every crash */
    uint64_t timer_gen;
    uint64_t timer_local_ns;  /* the local deadline of the timer asked for last */
    struct sim_clock clock;
    int clock_frozen;         /* --clock-break: the clock stands still while paused */
    uint64_t frozen_local_ns; /*   at this local time */
    struct rq_io io;
    struct rq_ctx ctx;
    struct rq_rng rng;        /* this process's stream (its seed per incarnation) */
    struct sim_disk *disk;    /* servers only */
    uint64_t disk_busy_until;
    int disk_full;
    uint32_t fsync_eio_ppm;
    uint32_t inflight;        /* messages in flight to this process */
    uint32_t servers_contacted;  /* clients: bit i = has a connection to server index i */
    int restart_pending;
};

struct recent_event {
    uint64_t time_ns;
    uint8_t type;
    uint8_t action;
    uint32_t proc_id;
    uint32_t from_id;
    uint32_t len;
};

struct sim {
    struct sim_config cfg;
    struct sim_swarm swarm;
    void *workload;
    uint64_t now_ns;
    uint64_t seq;
    uint64_t trace_hash;
    int started;
    int healed;
    int failed;
    char failure[SIM_FAILURE_MAX];
    struct sim_stats stats;

    struct rq_heap heap;
    struct sim_event *free_events;
    struct sim_event **event_chunks;
    uint32_t event_chunk_count;
    uint32_t events_allocated;

    struct sim_proc procs[SIM_PROCS_MAX];
    uint32_t proc_count;

    struct rq_rng rng_net;
    struct rq_rng rng_disk;
    struct rq_rng rng_faults;
    struct rq_rng rng_workload;
    struct rq_rng rng_clock;

    /* network */
    uint8_t cut[SIM_PROCS_MAX][SIM_PROCS_MAX];  /* cut[a][b]: a -> b blocked */
    uint32_t loss_ppm;
    uint32_t dup_ppm;
    uint64_t latency_min_ns;
    uint64_t latency_max_ns;
    uint32_t tail_ppm;
    uint64_t tail_max_ns;
    int partition_active;
    uint8_t flap_cut[SIM_PROCS_MAX][SIM_PROCS_MAX];
    uint32_t flap_left;
    uint32_t leader_hint;

    struct recent_event recent[SIM_RECENT_EVENTS];
    uint64_t recent_count;
};

/* sim.c */
struct sim_event *sim_event_new(struct sim *s, uint8_t type, uint32_t proc);
void sim_event_push(struct sim *s, uint64_t at_ns, struct sim_event *ev);
void sim_event_free(struct sim *s, struct sim_event *ev);
struct sim_proc *sim_proc_by_id(struct sim *s, uint32_t id);
void sim_trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* net.c */
void net_transmit(struct sim *s, struct sim_proc *from, struct sim_proc *to, int is_client_msg,
                  uint64_t conn, const void *buf, size_t len);
void net_deliver(struct sim *s, struct sim_event *ev);
void net_partition(struct sim *s);
void net_partition_end(struct sim *s);
void net_flap(struct sim *s);

/* faults.c */
void faults_draw_swarm(struct sim *s);
void faults_schedule_all(struct sim *s);
void faults_act(struct sim *s, struct sim_event *ev);
void faults_heal(struct sim *s);
uint64_t faults_exp(struct rq_rng *rng, uint64_t mean_ns);

#endif
