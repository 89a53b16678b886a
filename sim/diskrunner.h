/* A synchronous stand-in for the environment, for unit tests of storage components.
 *
 * A component under test submits disk requests through diskrunner.io; they queue in submission
 * order. The test executes them one at a time against a sim_disk (sim/disk.h) with
 * diskrunner_step(), each completion going to the test's `complete` function (which hands it to
 * the component). So a test can stop after ANY number of completed operations and crash — with
 * power loss (unsynced data torn) or as a process exit (page cache kept) — then start a new
 * "life" of the component on the same disk. The io clock is diskrunner.now_ns, set by the test.
 * send/reply/set_timer are accepted and ignored; halt is recorded in `halted`. */
#ifndef RQ_SIM_DISKRUNNER_H
#define RQ_SIM_DISKRUNNER_H

#include <stdint.h>

#include "base/rng.h"
#include "io/io.h"
#include "sim/disk.h"

enum { DISKRUNNER_QUEUE_MAX = 1024 };

typedef void (*diskrunner_complete_fn)(void *arg, struct rq_disk_req *req);

struct diskrunner {
    struct sim_disk *disk;
    struct rq_rng rng;                /* injected faults and crash tearing */
    struct sim_disk_faults faults;    /* in force for every executed request; the test may change it */
    struct rq_io io;                  /* hand this to the component */
    struct rq_disk_req *queue[DISKRUNNER_QUEUE_MAX];
    uint32_t queue_count;
    uint64_t executed;                /* requests completed since init */
    uint64_t now_ns;                  /* what io.now returns */
    uint64_t timer_at_ns;             /* the last set_timer request (0 = none) */
    int halted;                       /* io.halt was called */
    char halt_reason[128];
    diskrunner_complete_fn complete;
    void *complete_arg;
};

void diskrunner_init(struct diskrunner *r, uint64_t seed, diskrunner_complete_fn complete, void *arg);
void diskrunner_free(struct diskrunner *r);
/* Executes the oldest queued request and passes it to `complete`. Returns 0 when the queue was
 * empty, else 1. */
int diskrunner_step(struct diskrunner *r);
/* Steps until the queue is empty or max_steps ran; returns the number of steps. */
uint64_t diskrunner_run(struct diskrunner *r, uint64_t max_steps);
/* The process dies: queued requests vanish with its memory (they never happened). With
 * power_loss the disk also loses power (sim_disk_crash), else only handles close
 * (sim_disk_process_exit). The test then starts a new life of the component. */
void diskrunner_crash(struct diskrunner *r, int power_loss);

#endif
