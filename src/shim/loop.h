/* shim/loop.h — a minimal single-threaded event loop that runs one node (struct rq_node_ops) on
 * the real machine, in the manner of Redis's ae.c but smaller.
 *
 * One thread calls every handler of the node, one at a time, run to completion (io.h's execution
 * model). The loop waits in epoll_wait on:
 *   - the disk's eventfd (shim/disk.h): completions go to on_disk_done, in submission order;
 *   - the node's one timer: set_timer(at) becomes epoll_wait's timeout, computed from
 *     CLOCK_MONOTONIC and rounded UP to whole milliseconds; on_timer runs only once now() >= at
 *     (an early wake-up just waits again), so a timer never fires early, and typically fires
 *     within about a millisecond late (more when the machine is loaded);
 *   - later (issue 7), the node's sockets.
 *
 * What the node's struct rq_io does here:
 *   now        CLOCK_MONOTONIC in ns (never goes back while the machine is up).
 *   set_timer  one deadline, replacing the previous one (as io.h says).
 *   disk       shim_disk_submit: real files in data_dir, on the disk's worker thread.
 *   halt       logs the reason with RQ_ERROR; the loop calls no handler after the current one
 *              returns, and shim_loop_run returns RQ_EIO. Disk completions not yet delivered are
 *              dropped, as at a crash.
 *   send/reply NETWORKING IS NOT BUILT (issue 7): both count the message in stats and drop it,
 *              which io.h's best-effort delivery allows, so a node still runs (alone).
 *   seed, node_id as given to shim_loop_init.
 *
 * All functions are called from the loop thread. Nothing here is shared with another thread except
 * through shim/disk. */
#ifndef RQ_SHIM_LOOP_H
#define RQ_SHIM_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "base/ctx.h"
#include "base/log.h"
#include "io/io.h"
#include "shim/disk.h"

enum {
    SHIM_LOOP_EVENTS_MAX = 64,              /* epoll events taken per wait */
    SHIM_LOOP_WAIT_MS_MAX = 60 * 60 * 1000, /* one epoll_wait sleeps at most this long */
    SHIM_LOOP_HALT_REASON_MAX = 256,
};

struct shim_loop_stats {
    uint64_t waits;            /* epoll_wait calls */
    uint64_t timer_fires;      /* on_timer calls */
    uint64_t disk_done;        /* on_disk_done calls */
    uint64_t sends_dropped;    /* send() calls: networking is issue 7 */
    uint64_t replies_dropped;  /* reply() calls */
    uint64_t bytes_dropped;    /* their payload bytes */
};

struct shim_loop {
    struct shim_disk disk;
    int epoll_fd;
    struct rq_io io;
    struct rq_ctx ctx;         /* set around every call into the node (logger stamps, asserts) */
    const struct rq_node_ops *ops;
    void *node;                /* what ops->create returned */
    int started;               /* on_start has run */
    int timer_armed;
    uint64_t timer_at_ns;
    int stop_requested;
    int halted;
    char halt_reason[SHIM_LOOP_HALT_REASON_MAX];
    struct shim_loop_stats stats;
};

/* Opens data_dir with shim_disk_open (it must exist: see there), creates the epoll instance and
 * the node (ops->create(&l->io, config)). Returns 0, a shim_disk_open error, RQ_EIO (epoll) or
 * RQ_ENOMEM (create returned NULL); on failure everything is released. */
int shim_loop_init(struct shim_loop *l, const char *data_dir, const struct rq_node_ops *ops,
                   const void *config, uint32_t node_id, uint64_t seed);

/* Runs the node: on_start (first call only), then timers and disk completions, until a handler
 * calls shim_loop_stop (returns 0) or io->halt (returns RQ_EIO; l->halt_reason says why), or
 * epoll fails (RQ_EIO, logged). May be called again after a stop to continue. */
int shim_loop_run(struct shim_loop *l);

/* Asks shim_loop_run to return once the current handler returns. From the loop thread (inside a
 * handler, typically). Signal handling (SIGTERM) comes with the daemon, issue 7. */
void shim_loop_stop(struct shim_loop *l);

/* Closes the disk (requests in flight finish executing; their completions are not delivered, as
 * at a crash, so the node may free them), then destroys the node and closes the epoll instance. */
void shim_loop_free(struct shim_loop *l);

/* A log sink (base/log.h) that writes each line to stderr. */
void shim_log_stderr(void *arg, enum rq_log_level level, const char *line, size_t len);

#endif
