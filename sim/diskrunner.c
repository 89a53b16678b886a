#include "sim/diskrunner.h"

#include <stdio.h>
#include <string.h>

#include "base/assert.h"

static uint64_t runner_now(void *env) { return ((struct diskrunner *)env)->now_ns; }

static void runner_set_timer(void *env, uint64_t at_ns) { ((struct diskrunner *)env)->timer_at_ns = at_ns; }

static void runner_send(void *env, uint32_t to, const void *buf, size_t len) {
    (void)env;
    (void)to;
    (void)buf;
    (void)len;
}

static void runner_reply(void *env, uint64_t conn, const void *buf, size_t len) {
    (void)env;
    (void)conn;
    (void)buf;
    (void)len;
}

static void runner_disk(void *env, struct rq_disk_req *req) {
    struct diskrunner *r = env;
    RQ_ASSERT(r->queue_count < DISKRUNNER_QUEUE_MAX);
    r->queue[r->queue_count++] = req;
}

static void runner_halt(void *env, const char *reason) {
    struct diskrunner *r = env;
    r->halted = 1;
    snprintf(r->halt_reason, sizeof r->halt_reason, "%s", reason);
}

void diskrunner_init(struct diskrunner *r, uint64_t seed, diskrunner_complete_fn complete, void *arg) {
    memset(r, 0, sizeof *r);
    r->disk = sim_disk_create();
    rq_rng_seed(&r->rng, seed);
    r->io.env = r;
    r->io.node_id = 1;
    r->io.seed = seed;
    r->io.now = runner_now;
    r->io.set_timer = runner_set_timer;
    r->io.send = runner_send;
    r->io.reply = runner_reply;
    r->io.disk = runner_disk;
    r->io.halt = runner_halt;
    r->complete = complete;
    r->complete_arg = arg;
}

void diskrunner_free(struct diskrunner *r) {
    sim_disk_destroy(r->disk);
    r->disk = NULL;
}

int diskrunner_step(struct diskrunner *r) {
    if (r->queue_count == 0) return 0;
    struct rq_disk_req *req = r->queue[0];
    memmove(&r->queue[0], &r->queue[1], (r->queue_count - 1) * sizeof r->queue[0]);
    r->queue_count--;
    sim_disk_execute(r->disk, req, &r->faults, &r->rng);
    r->executed++;
    r->complete(r->complete_arg, req);
    return 1;
}

uint64_t diskrunner_run(struct diskrunner *r, uint64_t max_steps) {
    uint64_t steps = 0;
    while (steps < max_steps && diskrunner_step(r)) steps++;
    return steps;
}

void diskrunner_crash(struct diskrunner *r, int power_loss) {
    r->queue_count = 0;
    r->halted = 0;
    r->timer_at_ns = 0;
    if (power_loss) sim_disk_crash(r->disk, &r->rng);
    else sim_disk_process_exit(r->disk);
}
