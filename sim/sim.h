/* raftq-sim: a discrete-event simulator that runs a whole cluster — servers and clients, each an
 * unmodified struct rq_node_ops behind struct rq_io — in one thread, from one seed.
 *
 * Events sit on a heap keyed by (virtual time, sequence number); the sequence number makes the
 * order of simultaneous events total, so a seed determines the whole run. One seed is split into
 * independent PRNG streams (network, disk, faults, workload, and one per process) so that a draw
 * added in one place does not reshuffle the others.
 *
 * Fault models: network (latency, loss, duplication, reordering, partitions), disk (sim/disk.h:
 * torn unsynced writes, names durable only after a directory fsync, ENOSPC, EIO on fsync, latent
 * corruption), processes (crash, restart, pause) and clocks (offset and bounded drift). With
 * swarm testing each seed draws its own mix and rates. Faults stop at the "heal" point of every
 * run: the network heals, every node restarts, and the workload checks liveness.
 *
 * Every event is folded into a 64-bit trace hash; the same seed and flags give the same hash on
 * any machine. */
#ifndef RQ_SIM_SIM_H
#define RQ_SIM_SIM_H

#include <stdint.h>
#include <stdio.h>

#include "base/rng.h"
#include "io/io.h"
#include "sim/disk.h"

enum {
    SIM_SERVERS_MAX = 9,
    SIM_CLIENTS_MAX = 16,
    SIM_PROCS_MAX = SIM_SERVERS_MAX + SIM_CLIENTS_MAX,
    SIM_CLIENT_ID_BASE = 1000,             /* client process i has node id 1000 + i */
    SIM_EVENTS_MAX = 1 << 20,              /* events pending at once */
    SIM_INFLIGHT_PER_DEST_MAX = 8192,      /* messages in flight to one process (a full buffer) */
    SIM_FAILURE_MAX = 512,
    SIM_RECENT_EVENTS = 48,                /* printed after a failure */
};

/* Fault classes, for --faults and for swarm testing. */
enum sim_fault {
    SIM_FAULT_LOSS = 1u << 0,       /* messages dropped */
    SIM_FAULT_DUP = 1u << 1,        /* messages delivered twice */
    SIM_FAULT_DELAY = 1u << 2,      /* long-tailed latency, hence reordering */
    SIM_FAULT_PARTITION = 1u << 3,  /* split, isolate, one-way, bridge, flapping */
    SIM_FAULT_CRASH = 1u << 4,      /* process crash + restart, torn unsynced writes */
    SIM_FAULT_PAUSE = 1u << 5,      /* stop-the-world pause, then resume */
    SIM_FAULT_ENOSPC = 1u << 6,     /* disk full for a while */
    SIM_FAULT_EIO = 1u << 7,        /* fsync fails */
    SIM_FAULT_CORRUPT = 1u << 8,    /* latent bit flips in synced data */
    SIM_FAULT_CLOCK = 1u << 9,      /* clock offsets and drift within --max-drift */
    SIM_FAULT_ALL = (1u << 10) - 1,
};

struct sim;
struct sim_config;

/* A workload: the program the cluster runs and the checks that judge it. */
struct sim_workload {
    const char *name;
    const struct rq_node_ops *server_ops;
    const struct rq_node_ops *client_ops;   /* NULL: no client processes */
    uint32_t default_clients;
    /* The client count for this config when none is given (NULL: default_clients); it may
     * depend on the seed, so that a workload draws how many client processes it runs. */
    uint32_t (*clients_for)(const struct sim_config *cfg);
    /* Files (by name prefix) whose synced bytes latent corruption may hit: the ones the workload's
     * nodes verify with checksums. NULL: no corruption is injected. */
    const char *corrupt_prefix;
    /* Creates the workload's state (its checker); it is also the config handed to every node. */
    void *(*init)(struct sim *s);
    void (*fini)(void *w);
    /* Called after every event (NULL: nothing to check so often). */
    void (*after_event)(struct sim *s, void *w);
    /* Called once when faults stop (everything healed and restarted). */
    void (*on_heal)(struct sim *s, void *w);
    /* Called at the end of the run, after the last event; final checks. */
    void (*on_end)(struct sim *s, void *w);
};

struct sim_config {
    uint64_t seed;
    const struct sim_workload *workload;
    uint32_t servers;            /* 1..SIM_SERVERS_MAX */
    uint32_t clients;            /* 0..SIM_CLIENTS_MAX; UINT32_MAX = workload default */
    uint64_t duration_ns;        /* simulated time of the run */
    uint64_t heal_ns;            /* faults stop this long before the end (liveness window) */
    uint32_t faults;             /* allowed fault classes (enum sim_fault); swarm draws a subset */
    int swarm;                   /* 1: each class on with chance 1/2 and random rates; 0: all on */
    uint32_t max_drift_ppm;      /* clock drift bound that lease reads may assume */
    int clock_break;             /* 1: drift exceeds the bound (opt-in, to show stale reads) */
    uint64_t events_max;         /* stop after this many events (0 = no limit) */
    FILE *trace;                 /* NULL: no readable trace */
};

void sim_config_default(struct sim_config *cfg);

/* The swarm's draw for one seed: which faults are on and how often. */
struct sim_swarm {
    uint32_t faults;
    uint32_t loss_ppm;
    uint32_t dup_ppm;
    uint64_t latency_min_ns;
    uint64_t latency_max_ns;       /* typical upper end */
    uint32_t delay_tail_ppm;       /* chance of a long delay (reorders) */
    uint64_t delay_tail_max_ns;
    uint64_t partition_every_ns;   /* mean time between partition events */
    uint64_t crash_every_ns;
    uint64_t pause_every_ns;
    uint64_t enospc_every_ns;
    uint32_t fsync_eio_ppm;
    uint64_t corrupt_every_ns;
};

struct sim_stats {
    uint64_t events;
    uint64_t messages_sent;
    uint64_t messages_delivered;
    uint64_t messages_dropped;     /* loss, partition, down destination, full buffer */
    uint64_t messages_duplicated;
    uint64_t crashes;
    uint64_t restarts;
    uint64_t pauses;
    uint64_t partitions;
    uint64_t halts;
    uint64_t disk_ops;
};

struct sim_result {
    int failed;
    char failure[SIM_FAILURE_MAX];
    uint64_t events;
    uint64_t sim_time_ns;
    uint64_t trace_hash;
};

struct sim *sim_create(const struct sim_config *cfg);
void sim_destroy(struct sim *s);

/* Runs to the end (duration, events_max or the first failure); fills *out. Returns out->failed. */
int sim_run(struct sim *s, struct sim_result *out);
/* Runs seeds first..first+count-1 of base (its seed is replaced), calling prepare (if not NULL)
 * on each sim before it runs (to inject a bug, say). Returns how many failed; the first failure's
 * message goes to failure (cap bytes, may be NULL). For tests that show a checker fires. */
int sim_run_seeds(const struct sim_config *base, uint64_t first, int count,
                  void (*prepare)(struct sim *s, void *arg), void *arg, char *failure, size_t cap);
/* Runs events up to virtual time t (for tests that drive the simulation step by step). */
void sim_run_until(struct sim *s, uint64_t t_ns);
/* Starts all processes (sim_run does this itself). */
void sim_start(struct sim *s);

/* ---- for workloads, checkers and tests ------------------------------------------------------ */
uint64_t sim_now(const struct sim *s);                  /* true virtual time, ns */
uint32_t sim_servers(const struct sim *s);
uint32_t sim_clients(const struct sim *s);
const struct sim_config *sim_config(const struct sim *s);
const struct sim_swarm *sim_swarm(const struct sim *s);
const struct sim_stats *sim_stats(const struct sim *s);
struct rq_rng *sim_workload_rng(struct sim *s);
void *sim_workload_state(struct sim *s);                 /* what workload->init returned */
int sim_healed(const struct sim *s);                     /* faults have stopped */

/* Records the first failure (a violated invariant); the run stops after the current event. */
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sim_failed(const struct sim *s);
/* Adds a line to the readable trace (when tracing) and folds v into the trace hash. */
void sim_note(struct sim *s, uint64_t v, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sim_hash(struct sim *s, uint64_t v);

/* Process ids: servers 1..servers, clients SIM_CLIENT_ID_BASE + 0..clients-1. */
int sim_is_up(const struct sim *s, uint32_t id);
uint32_t sim_incarnation(const struct sim *s, uint32_t id);
void *sim_node(const struct sim *s, uint32_t id);        /* the node's state, or NULL when down */
struct sim_disk *sim_disk(const struct sim *s, uint32_t server_id);
uint64_t sim_local_time(const struct sim *s, uint32_t id);  /* the process's clock */

/* Fault actions (the fault scheduler uses them; tests call them directly). */
/* A crash loses the process's memory. With power_loss the machine loses power too: unsynced
 * data is torn (sim/disk.h); without, the page cache survives (kill -9). */
void sim_crash(struct sim *s, uint32_t id, int power_loss);
void sim_restart(struct sim *s, uint32_t id);
void sim_crash_restart(struct sim *s, uint32_t id, int power_loss, uint64_t down_ns);
void sim_pause(struct sim *s, uint32_t id, uint64_t pause_ns);
void sim_net_cut(struct sim *s, uint32_t from, uint32_t to);    /* one way */
void sim_net_heal(struct sim *s);
int sim_net_is_cut(const struct sim *s, uint32_t from, uint32_t to);
void sim_net_set(struct sim *s, uint32_t loss_ppm, uint32_t dup_ppm, uint64_t latency_min_ns,
                 uint64_t latency_max_ns, uint32_t tail_ppm, uint64_t tail_max_ns);
void sim_disk_set_full(struct sim *s, uint32_t server_id, int full);
void sim_disk_set_eio(struct sim *s, uint32_t server_id, uint32_t fsync_eio_ppm);
void sim_clock_set(struct sim *s, uint32_t id, int64_t offset_ns, int32_t drift_ppm);

/* Every server loses power (if up) and restarts: what survives is what its disk made durable. */
void sim_power_cycle_servers(struct sim *s);
/* Cuts every link between two servers, both ways (clients still reach them). */
void sim_isolate_servers(struct sim *s);

/* Called by the workload to tell partitions "isolate the leader" which node that is (0: none). */
void sim_set_leader_hint(struct sim *s, uint32_t id);

/* Prints the swarm draw as one line. */
void sim_swarm_describe(const struct sim *s, char *buf, size_t cap);
/* Prints the last events (for failure reports). */
void sim_print_recent(const struct sim *s, FILE *out);

/* Parses a --faults list ("all", "none", or names joined by ','); returns 0 or RQ_EINVAL. */
int sim_faults_parse(const char *list, uint32_t *mask);
void sim_faults_format(uint32_t mask, char *buf, size_t cap);

/* Workloads known to raftq-sim, looked up by name (NULL if unknown). */
const struct sim_workload *sim_workload_find(const char *name);
extern const struct sim_workload sim_workload_selftest;
extern const struct sim_workload sim_workload_store;
extern const struct sim_workload sim_workload_raftkv;
extern const struct sim_workload sim_workload_mq;

#endif
