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
    return rq_shim_monotonic_ns();
}

static void loop_set_timer(void *env, uint64_t at_ns) {
    struct shim_loop *l = env;
    l->timer_armed = 1;
    l->timer_at_ns = at_ns;
}

static void loop_send(void *env, uint32_t to_node, const void *buf, size_t len) {
    struct shim_loop *l = env;
    (void)to_node;
    (void)buf;
    l->stats.sends_dropped++; /* networking: issue 7 */
    l->stats.bytes_dropped += len;
}

static void loop_reply(void *env, uint64_t conn, const void *buf, size_t len) {
    struct shim_loop *l = env;
    (void)conn;
    (void)buf;
    l->stats.replies_dropped++; /* networking: issue 7 */
    l->stats.bytes_dropped += len;
}

static void loop_disk(void *env, struct rq_disk_req *req) {
    struct shim_loop *l = env;
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

static void fire_timer_if_due(struct shim_loop *l) {
    if (!l->timer_armed || l->halted) return;
    if (rq_shim_monotonic_ns() < l->timer_at_ns) return;
    l->timer_armed = 0; /* on_timer may set the next one */
    l->stats.timer_fires++;
    l->ops->on_timer(l->node);
}

/* epoll_wait's timeout: -1 without a timer, else the time to the deadline rounded up to whole
 * milliseconds (so the wait never ends early on our account), at most SHIM_LOOP_WAIT_MS_MAX. */
static int wait_timeout_ms(const struct shim_loop *l) {
    if (!l->timer_armed) return -1;
    uint64_t now = rq_shim_monotonic_ns();
    if (now >= l->timer_at_ns) return 0;
    uint64_t ms = (l->timer_at_ns - now + 999999u) / 1000000u;
    return ms > SHIM_LOOP_WAIT_MS_MAX ? SHIM_LOOP_WAIT_MS_MAX : (int)ms;
}

static int loop_turn(struct shim_loop *l) {
    struct epoll_event events[SHIM_LOOP_EVENTS_MAX];
    l->stats.waits++;
    int n = epoll_wait(l->epoll_fd, events, SHIM_LOOP_EVENTS_MAX, wait_timeout_ms(l));
    if (n < 0 && errno == EINTR) return 0;
    if (n < 0) {
        RQ_ERROR("loop: epoll_wait: %s", strerror(errno));
        return RQ_EIO;
    }
    for (int i = 0; i < n && !l->halted; i++) {
        if (events[i].data.fd == shim_disk_eventfd(&l->disk))
            shim_disk_poll(&l->disk, on_disk_done, l);
    }
    if (!l->stop_requested) fire_timer_if_due(l);
    return 0;
}

int shim_loop_run(struct shim_loop *l) {
    RQ_ASSERT(l->node != NULL);
    if (l->halted) return RQ_EIO;
    const struct rq_ctx *saved = rq_ctx_get();
    rq_ctx_set(&l->ctx);
    l->stop_requested = 0;
    int rc = 0;
    if (!l->started) {
        l->started = 1;
        l->ops->on_start(l->node);
    }
    while (rc == 0 && !l->stop_requested && !l->halted)
        rc = loop_turn(l);
    rq_ctx_set(saved);
    if (rc == 0 && l->halted) rc = RQ_EIO;
    return rc;
}

void shim_loop_stop(struct shim_loop *l) { l->stop_requested = 1; }

/* ---- setup ----------------------------------------------------------------------------------- */

int shim_loop_init(struct shim_loop *l, const char *data_dir, const struct rq_node_ops *ops,
                   const void *config, uint32_t node_id, uint64_t seed) {
    RQ_ASSERT(ops != NULL);
    memset(l, 0, sizeof *l);
    l->epoll_fd = -1;
    int rc = shim_disk_open(&l->disk, data_dir);
    if (rc != 0) return rc;
    l->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = shim_disk_eventfd(&l->disk);
    if (l->epoll_fd < 0 || epoll_ctl(l->epoll_fd, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0) {
        RQ_ERROR("loop: epoll: %s", strerror(errno));
        shim_loop_free(l);
        return RQ_EIO;
    }
    l->ops = ops;
    l->io = (struct rq_io){
        .env = l,
        .node_id = node_id,
        .seed = seed,
        .now = loop_now,
        .set_timer = loop_set_timer,
        .send = loop_send,
        .reply = loop_reply,
        .disk = loop_disk,
        .halt = loop_halt,
    };
    l->ctx = (struct rq_ctx){.node_id = node_id, .now_ns = loop_now, .env = l};
    l->node = ops->create(&l->io, config);
    if (l->node == NULL) {
        shim_loop_free(l);
        return RQ_ENOMEM;
    }
    return 0;
}

void shim_loop_free(struct shim_loop *l) {
    shim_disk_close(&l->disk); /* first: the worker must be done with the node's requests */
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
