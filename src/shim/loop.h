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
 *   - the node's sockets (shim/net.h), when networking is configured.
 *
 * What the node's struct rq_io does here:
 *   now        CLOCK_MONOTONIC in ns (never goes back while the machine is up).
 *   set_timer  one deadline, replacing the previous one (as io.h says).
 *   disk       shim_disk_submit: real files in data_dir, on the disk's worker thread. Without a
 *              data directory (data_dir NULL: a client process, which keeps nothing on disk), a
 *              disk request halts the node ("disk request on a node without a data directory"):
 *              a node that needs a disk and has none must not go on as if it had one.
 *   halt       logs the reason with RQ_ERROR; the loop calls no handler after the current one
 *              returns, and shim_loop_run returns RQ_EIO. Disk completions not yet delivered are
 *              dropped, as at a crash.
 *   send/reply shim_net_send / shim_net_reply (non-blocking TCP, shim/net.h), whose received
 *              messages and closed client connections come back as on_peer_message,
 *              on_client_message and on_conn_closed. Without a network configuration (the
 *              storage benchmark, shim_loop_init) both count the message in stats and drop it,
 *              which io.h's best-effort delivery allows, so a node still runs (alone).
 *   seed, node_id as given to shim_loop_init.
 *
 * One turn of the loop: write the network's buffered output (one write per connection for all
 * that handlers sent since the last turn), wait, then handle the disk, the sockets and the timer.
 *
 * All functions are called from the loop thread. Nothing here is shared with another thread except
 * through shim/disk. */
#ifndef RQ_SHIM_LOOP_H
#define RQ_SHIM_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "base/ctx.h"
#include "base/histogram.h"
#include "base/log.h"
#include "io/io.h"
#include "shim/disk.h"
#include "shim/metrics.h"
#include "shim/net.h"

enum {
    SHIM_LOOP_EVENTS_MAX = 64,              /* epoll events taken per wait */
    SHIM_LOOP_WAIT_MS_MAX = 60 * 60 * 1000, /* one epoll_wait sleeps at most this long */
    SHIM_LOOP_HALT_REASON_MAX = 256,
    SHIM_LOOP_TAG_DISK = 0, /* epoll tag of the disk's eventfd; every other tag is the net's */
};

_Static_assert((int)SHIM_METRICS_TAG_LISTENER != (int)SHIM_NET_TAG_LISTENER &&
                   (int)SHIM_METRICS_TAG_LISTENER != (int)SHIM_LOOP_TAG_DISK &&
                   (int)SHIM_METRICS_TAG_CONN_MIN + (int)SHIM_METRICS_CONNS_MAX <=
                       (int)SHIM_NET_TAG_CONN_MIN,
               "the metrics endpoint's tags are neither the disk's nor the net's");
_Static_assert((int)SHIM_LOOP_TAG_DISK != (int)SHIM_NET_TAG_LISTENER &&
                   (int)SHIM_LOOP_TAG_DISK < (int)SHIM_NET_TAG_CONN_MIN,
               "the disk's tag is not one of the net's");

struct shim_loop_stats {
    uint64_t waits;            /* epoll_wait calls */
    uint64_t timer_fires;      /* on_timer calls */
    uint64_t disk_done;        /* on_disk_done calls */
    uint64_t sends_dropped;    /* send() calls without networking (the net counts its own) */
    uint64_t replies_dropped;  /* reply() calls without networking */
    uint64_t bytes_dropped;    /* their payload bytes */
    /* Busy time of a turn (all but the wait: flushing, events, the timer): a long one delays
     * everything behind it. */
    struct rq_hist turn;
};

/* Everything shim_loop_init_config needs. */
struct shim_loop_config {
    const char *data_dir;               /* must exist (shim_disk_open); NULL: no disk (clients) */
    const struct rq_node_ops *ops;
    const void *node_config;            /* passed to ops->create */
    uint32_t node_id;                   /* > RQ_NODE_ID_MAX: this process is a client (io.h) */
    uint64_t seed;
    const struct shim_net_config *net;  /* NULL: networking off (send/reply drop, counted) */
};

struct shim_loop {
    struct shim_disk disk;
    struct shim_net *net;      /* NULL without networking */
    struct shim_metrics *metrics;   /* NULL without a metrics endpoint */
    int has_disk;              /* data_dir was given (its open attempted) */
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

/* Opens data_dir with shim_disk_open (it must exist: see there; NULL: no disk), creates the epoll instance, the
 * network if c->net is set (shim_net_open: listener bound, peers resolved; nothing dialed yet) and
 * the node (ops->create(&l->io, node_config)). Returns 0, a shim_disk_open or shim_net_open error,
 * RQ_EIO (epoll) or RQ_ENOMEM (create returned NULL); on failure everything is released. */
int shim_loop_init_config(struct shim_loop *l, const struct shim_loop_config *c);

/* shim_loop_init_config without networking (the storage benchmark, disk tests). */
int shim_loop_init(struct shim_loop *l, const char *data_dir, const struct rq_node_ops *ops,
                   const void *config, uint32_t node_id, uint64_t seed);

/* Runs the node: on_start (first call only), then timers and disk completions, until a handler
 * calls shim_loop_stop (returns 0) or io->halt (returns RQ_EIO; l->halt_reason says why), or
 * epoll fails (RQ_EIO, logged). May be called again after a stop to continue. */
int shim_loop_run(struct shim_loop *l);

/* One turn of the loop (on_start first if it has not run), waiting at most wait_ms_max (0: do not
 * wait) for something to happen. Returns 0, or RQ_EIO (halted, or epoll failed). For a caller that
 * drives several loops from one thread (tests) or has its own outer loop. */
int shim_loop_run_once(struct shim_loop *l, int wait_ms_max);

/* Asks shim_loop_run to return once the current handler returns. From the loop thread (inside a
 * handler, typically). Signals: a process that wants to stop on SIGTERM drives the loop itself
 * with shim_loop_run_once and checks its flag between turns (a signal during epoll_wait ends the
 * wait: EINTR is a turn with nothing to do). */
void shim_loop_stop(struct shim_loop *l);

/* The loop's network (NULL without networking), for the code that owns the loop and its node:
 * a client process changes its peers' addresses with shim_net_set_peer as it learns them. */
struct shim_net *shim_loop_net(const struct shim_loop *l);

/* Serves the metrics endpoint (shim/metrics.h) on address from this loop; render is called in the
 * loop thread, between handlers. Returns shim_metrics_open's result. */
int shim_loop_metrics_open(struct shim_loop *l, const char *address, shim_metrics_render_fn render,
                           void *arg);

/* Closes the disk (requests in flight finish executing; their completions are not delivered, as
 * at a crash, so the node may free them) and the network (every socket closed, buffered output
 * discarded, no handler called), then destroys the node and closes the epoll instance. */
void shim_loop_free(struct shim_loop *l);

/* A log sink (base/log.h) that writes each line to stderr. */
void shim_log_stderr(void *arg, enum rq_log_level level, const char *line, size_t len);

#endif
