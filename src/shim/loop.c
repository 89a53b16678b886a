/* shim/loop.c — epoll over the disk's eventfd plus one timer, running one node. See loop.h. */
#define _GNU_SOURCE
#include "shim/loop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/errors.h"
#include "shim/wallclock.h"

/* ---- the node's io --------------------------------------------------------------------------- */

static uint64_t loop_now(void *env) {
    (void)env;
    return rq_shim_node_clock_ns();
}

static void loop_set_timer(void *env, uint64_t at_ns) {
    struct shim_loop *l = env;
    l->timer_armed = 1;
    l->timer_at_ns = at_ns;
}

static void loop_send(void *env, uint32_t to_node, const void *buf, size_t len) {
    struct shim_loop *l = env;
    if (l->net != NULL) {
        shim_net_send(l->net, to_node, buf, len);
        return;
    }
    l->stats.sends_dropped++; /* networking off: io.h's best effort allows the loss */
    l->stats.bytes_dropped += len;
}

static void loop_reply(void *env, uint64_t conn, const void *buf, size_t len) {
    struct shim_loop *l = env;
    if (l->net != NULL) {
        shim_net_reply(l->net, conn, buf, len);
        return;
    }
    l->stats.replies_dropped++;
    l->stats.bytes_dropped += len;
}

static void loop_halt(void *env, const char *reason);

static void loop_disk(void *env, struct rq_disk_req *req) {
    struct shim_loop *l = env;
    if (!l->has_disk) { /* a client without a data directory: its state cannot be what it thinks */
        loop_halt(l, "disk request on a node without a data directory");
        return;
    }
    shim_disk_submit(&l->disk, req);
}

static void loop_halt(void *env, const char *reason) {
    struct shim_loop *l = env;
    if (l->halted) return;
    l->halted = 1;
    snprintf(l->halt_reason, sizeof l->halt_reason, "%s", reason ? reason : "(no reason)");
    RQ_ERROR("halt: %s", l->halt_reason);
}

/* ---- calling into the node ------------------------------------------------------------------- */

static void on_disk_done(void *arg, struct rq_disk_req *req) {
    struct shim_loop *l = arg;
    if (l->halted) return; /* a halted node is gone: its completions are dropped, as at a crash */
    l->stats.disk_done++;
    l->ops->on_disk_done(l->node, req);
}

/* The net's handlers. A halted node is gone: what arrives after halt is dropped, as at a crash. */
static void net_peer_message(void *arg, uint32_t from_node, const void *buf, size_t len) {
    struct shim_loop *l = arg;
    if (!l->halted) l->ops->on_peer_message(l->node, from_node, buf, len);
}

static void net_client_message(void *arg, uint64_t conn, const void *buf, size_t len) {
    struct shim_loop *l = arg;
    if (!l->halted) l->ops->on_client_message(l->node, conn, buf, len);
}

static void net_conn_closed(void *arg, uint64_t conn) {
    struct shim_loop *l = arg;
    if (!l->halted) l->ops->on_conn_closed(l->node, conn);
}

static void fire_timer_if_due(struct shim_loop *l) {
    if (!l->timer_armed || l->halted) return;
    if (rq_shim_node_clock_ns() < l->timer_at_ns) return;
    l->timer_armed = 0; /* on_timer may set the next one */
    l->stats.timer_fires++;
    l->ops->on_timer(l->node);
}

/* epoll_wait's timeout: -1 without a timer, else the time to the deadline rounded up to whole
 * milliseconds (so the wait never ends early on our account), at most SHIM_LOOP_WAIT_MS_MAX. */
static int wait_timeout_ms(const struct shim_loop *l) {
    if (!l->timer_armed) return -1;
    uint64_t now = rq_shim_node_clock_ns();   /* timers are on the node's clock */
    if (now >= l->timer_at_ns) return 0;
    uint64_t ms = (l->timer_at_ns - now + 999999u) / 1000000u;
    return ms > SHIM_LOOP_WAIT_MS_MAX ? SHIM_LOOP_WAIT_MS_MAX : (int)ms;
}

/* One turn; the wait is also capped by wait_ms_max (-1: no cap). */
static int loop_turn(struct shim_loop *l, int wait_ms_max) {
    struct epoll_event events[SHIM_LOOP_EVENTS_MAX];
    uint64_t began = rq_shim_monotonic_ns();
    if (l->net != NULL) shim_net_tick(l->net);  /* timeouts and idle buffers, every 250 ms */
    if (l->net != NULL) shim_net_flush(l->net); /* what handlers sent since the last turn */
    int timeout_ms = wait_timeout_ms(l);
    if (l->net != NULL && shim_net_pending(l->net)) timeout_ms = 0;
    if (l->net != NULL && (timeout_ms < 0 || timeout_ms > SHIM_NET_TICK_MS))
        timeout_ms = SHIM_NET_TICK_MS; /* the net's tick runs even on a loop without a timer */
    if (wait_ms_max >= 0 && (timeout_ms < 0 || timeout_ms > wait_ms_max)) timeout_ms = wait_ms_max;
    l->stats.waits++;
    uint64_t waited = rq_shim_monotonic_ns();
    int n = epoll_wait(l->epoll_fd, events, SHIM_LOOP_EVENTS_MAX, timeout_ms);
    uint64_t woke = rq_shim_monotonic_ns();
    if (n < 0 && errno == EINTR) return 0;
    if (n < 0) {
        RQ_ERROR("loop: epoll_wait: %s", strerror(errno));
        return RQ_EIO;
    }
    for (int i = 0; i < n && !l->halted && !l->stop_requested; i++) {
        uint64_t tag = events[i].data.u64;
        if (tag == SHIM_LOOP_TAG_DISK) {
            shim_disk_poll(&l->disk, on_disk_done, l);
        } else {
            if (l->metrics != NULL && shim_metrics_owns_tag(tag)) {
                shim_metrics_event(l->metrics, tag, events[i].events);
                continue;
            }
            RQ_ASSERT(l->net != NULL && shim_net_owns_tag(tag));
            shim_net_event(l->net, tag, events[i].events);
        }
    }
    if (!l->stop_requested) fire_timer_if_due(l);
    rq_hist_add(&l->stats.turn, (waited - began) + (rq_shim_monotonic_ns() - woke));
    return 0;
}

/* on_start, the first time; with the node's context set by the caller. */
static void start_once(struct shim_loop *l) {
    if (l->started) return;
    l->started = 1;
    l->ops->on_start(l->node);
}

int shim_loop_run(struct shim_loop *l) {
    RQ_ASSERT(l->node != NULL);
    if (l->halted) return RQ_EIO;
    const struct rq_ctx *saved = rq_ctx_get();
    rq_ctx_set(&l->ctx);
    l->stop_requested = 0;
    int rc = 0;
    start_once(l);
    while (rc == 0 && !l->stop_requested && !l->halted)
        rc = loop_turn(l, -1);
    if (l->net != NULL && !l->halted) shim_net_flush(l->net); /* what the last handler sent */
    rq_ctx_set(saved);
    if (rc == 0 && l->halted) rc = RQ_EIO;
    return rc;
}

int shim_loop_run_once(struct shim_loop *l, int wait_ms_max) {
    RQ_ASSERT(l->node != NULL);
    RQ_ASSERT(wait_ms_max >= 0);
    if (l->halted) return RQ_EIO;
    const struct rq_ctx *saved = rq_ctx_get();
    rq_ctx_set(&l->ctx);
    start_once(l);
    int rc = l->halted ? 0 : loop_turn(l, wait_ms_max);
    if (rc == 0 && l->net != NULL && !l->halted) shim_net_flush(l->net);
    rq_ctx_set(saved);
    if (rc == 0 && l->halted) rc = RQ_EIO;
    return rc;
}

void shim_loop_stop(struct shim_loop *l) { l->stop_requested = 1; }

struct shim_net *shim_loop_net(const struct shim_loop *l) { return l->net; }

int shim_loop_metrics_open(struct shim_loop *l, const char *address, shim_metrics_render_fn render,
                           void *arg) {
    RQ_ASSERT(l->metrics == NULL);
    return shim_metrics_open(&l->metrics, address, l->epoll_fd, render, arg);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int epoll_setup(struct shim_loop *l) {
    l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u64 = SHIM_LOOP_TAG_DISK;
    int bad = l->epoll_fd < 0;
    if (!bad && l->has_disk) /* without a disk (a client) there is no eventfd to wait on */
        bad = epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, shim_disk_eventfd(&l->disk), &ev) != 0;
    if (bad) {
        RQ_ERROR("loop: epoll: %s", strerror(errno));
        return RQ_EIO;
    }
    return 0;
}

int shim_loop_init_config(struct shim_loop *l, const struct shim_loop_config *c) {
    (void)rq_shim_node_clock_ns();   /* its offset is taken now, before any thread starts */
    RQ_ASSERT(c->ops != NULL);
    memset(l, 0, sizeof *l);
    l->epoll_fd = -1;
    int rc = 0;
    if (c->data_dir != NULL) {
        l->has_disk = 1; /* set before open: a failed open is closed (safely) like an open one */
        rc = shim_disk_open(&l->disk, c->data_dir);
        if (rc != 0) return rc;
    }
    rc = epoll_setup(l);
    l->ops = c->ops;
    l->io = (struct rq_io){
        .env = l,
        .node_id = c->node_id,
        .seed = c->seed,
        .now = loop_now,
        .set_timer = loop_set_timer,
        .send = loop_send,
        .reply = loop_reply,
        .disk = loop_disk,
        .halt = loop_halt,
    };
    l->ctx = (struct rq_ctx){.node_id = c->node_id, .now_ns = loop_now, .env = l};
    struct shim_net_handlers handlers = {
        .arg = l,
        .peer_message = net_peer_message,
        .client_message = net_client_message,
        .conn_closed = net_conn_closed,
    };
    if (rc == 0 && c->net != NULL)
        rc = shim_net_open(&l->net, c->net, c->node_id, c->seed, l->epoll_fd, &handlers);
    if (rc == 0) {
        l->node = c->ops->create(&l->io, c->node_config);
        if (l->node == NULL) rc = RQ_ENOMEM;
    }
    if (rc != 0) shim_loop_free(l);
    return rc;
}

int shim_loop_init(struct shim_loop *l, const char *data_dir, const struct rq_node_ops *ops,
                   const void *config, uint32_t node_id, uint64_t seed) {
    struct shim_loop_config c = {
        .data_dir = data_dir,
        .ops = ops,
        .node_config = config,
        .node_id = node_id,
        .seed = seed,
        .net = NULL,
    };
    return shim_loop_init_config(l, &c);
}

void shim_loop_free(struct shim_loop *l) {
    if (l->has_disk) shim_disk_close(&l->disk); /* first: the worker must be done with them */
    l->has_disk = 0;
    shim_net_close(l->net);    /* calls no handler; a send from destroy is then just dropped */
    l->net = NULL;
    shim_metrics_close(l->metrics);
    l->metrics = NULL;
    if (l->node != NULL) {
        const struct rq_ctx *saved = rq_ctx_get();
        rq_ctx_set(&l->ctx);
        l->ops->destroy(l->node);
        rq_ctx_set(saved);
        l->node = NULL;
    }
    if (l->epoll_fd >= 0) close(l->epoll_fd);
    l->epoll_fd = -1;
}

void shim_log_stderr(void *arg, enum rq_log_level level, const char *line, size_t len) {
    (void)arg;
    (void)level;
    fwrite(line, 1, len, stderr);
    fputc('\n', stderr);
}
