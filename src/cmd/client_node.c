/* client_node.c — see client_node.h. How: the node wraps the library's io (set_timer, send), reads
 * metadata answers on their way in, and multiplexes one loop timer between the library and the
 * owner's tick. */
#define _GNU_SOURCE
#include "cmd/client_node.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/errors.h"
#include "proto/msg.h"
#include "shim/wallclock.h"

#define MS ((uint64_t)1000 * 1000)

static uint64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t client_node_now_ns(const struct client_node *n) { return n->io->now(n->io->env); }

/* ---- learning the brokers' addresses (see client_node.h) ------------------------------------- */

static void learn_broker(struct client_node *n, const struct proto_broker *b) {
    if (b->id < 1 || b->id > RQ_NODE_ID_MAX || b->address.size == 0) return;
    char address[CLIENT_NODE_ADDRESS_MAX];
    if (b->address.size >= sizeof address) return;
    memcpy(address, b->address.data, b->address.size);
    address[b->address.size] = '\0';
    if (strcmp(n->peer_address[b->id], address) == 0) return; /* a change closes the link */
    if (shim_net_set_peer(shim_loop_net(&n->loop), b->id, address) != 0) {
        fprintf(stderr, "%s: broker %u advertises an unusable address '%s'\n", n->cfg.name, b->id,
                address);
        return;
    }
    snprintf(n->peer_address[b->id], CLIENT_NODE_ADDRESS_MAX, "%s", address);
}

static void learn_brokers(struct client_node *n, const struct proto_frame *f) {
    struct proto_msg m;
    if (proto_decode_version(f->version, f->type, f->payload, f->payload_size, &m) != 0)
        return; /* the library counts it */
    size_t cursor = 0;
    struct proto_broker b;
    while (proto_broker_next(&m.u.metadata_resp, &cursor, &b))
        learn_broker(n, &b);
}

/* ---- the library's io ------------------------------------------------------------------------ */

static void arm(struct client_node *n) {
    uint64_t at = n->lib_deadline_ns < n->tick_ns ? n->lib_deadline_ns : n->tick_ns;
    n->io->set_timer(n->io->env, at);
}

static uint64_t lib_now(void *env) { return client_node_now_ns(env); }
static void lib_set_timer(void *env, uint64_t at_ns) {
    struct client_node *n = env;
    n->lib_deadline_ns = at_ns;
    arm(n);
}
static void lib_send(void *env, uint32_t to, const void *buf, size_t len) {
    struct client_node *n = env;
    if (n->cfg.hooks->sent) n->cfg.hooks->sent(n->cfg.arg, to, buf, len);
    n->io->send(n->io->env, to, buf, len);
}
static void lib_reply(void *env, uint64_t conn, const void *buf, size_t len) {
    struct client_node *n = env;
    n->io->reply(n->io->env, conn, buf, len);
}
static void lib_disk(void *env, struct rq_disk_req *req) {
    struct client_node *n = env;
    n->io->disk(n->io->env, req); /* the loop halts the node: a client has no disk */
}
static void lib_halt(void *env, const char *why) {
    struct client_node *n = env;
    n->io->halt(n->io->env, why);
}

/* ---- the node -------------------------------------------------------------------------------- */

static void *node_create(const struct rq_io *io, const void *config) {
    struct client_node *n = (struct client_node *)config; /* client_node_open's: outlives it */
    n->io = io;
    n->lib_io = (struct rq_io){.env = n,
                               .node_id = io->node_id,
                               .seed = io->seed,
                               .now = lib_now,
                               .set_timer = lib_set_timer,
                               .send = lib_send,
                               .reply = lib_reply,
                               .disk = lib_disk,
                               .halt = lib_halt};
    n->lib_deadline_ns = UINT64_MAX;
    n->tick_ns = UINT64_MAX;
    n->c = rq_client_create(&n->lib_io, &n->cfg.client, n->cfg.callbacks, n->cfg.arg);
    return n->c ? n : NULL;
}

static void node_destroy(void *node) {
    struct client_node *n = node;
    rq_client_destroy(n->c);
    n->c = NULL;
}

static void tick(struct client_node *n) {
    n->tick_ns = client_node_now_ns(n) + n->cfg.tick_ms * MS;
    n->cfg.hooks->tick(n->cfg.arg);
}

static void node_start(void *node) {
    struct client_node *n = node;
    rq_client_start(n->c);
    n->cfg.hooks->start(n->cfg.arg);
    tick(n);
    arm(n);
}

static void node_timer(void *node) {
    struct client_node *n = node;
    if (client_node_now_ns(n) >= n->lib_deadline_ns) {
        n->lib_deadline_ns = UINT64_MAX;
        rq_client_on_timer(n->c);
    }
    tick(n);
    arm(n);
}

static void node_message(void *node, uint32_t from, const void *buf, size_t len) {
    struct client_node *n = node;
    n->answers++;
    struct proto_frame f;
    size_t frame_size = 0;
    if (proto_frame_decode(buf, len, PROTO_FRAME_MAX, &f, &frame_size) == 0) {
        /* Read before the library can act on what the answer names (see client_node.h). */
        if (f.type == PROTO_METADATA_RESP) learn_brokers(n, &f);
        if (n->cfg.hooks->frame) n->cfg.hooks->frame(n->cfg.arg, from, &f);
    }
    rq_client_on_message(n->c, from, buf, len);
}

static void node_client_message(void *node, uint64_t conn, const void *buf, size_t len) {
    (void)node, (void)conn, (void)buf, (void)len; /* a client accepts no connections */
}
static void node_disk_done(void *node, struct rq_disk_req *req) { (void)node, (void)req; }
static void node_conn_closed(void *node, uint64_t conn) { (void)node, (void)conn; }

static const struct rq_node_ops CLIENT_NODE_OPS = {
    .name = "client",
    .create = node_create,
    .destroy = node_destroy,
    .on_start = node_start,
    .on_timer = node_timer,
    .on_peer_message = node_message,
    .on_client_message = node_client_message,
    .on_disk_done = node_disk_done,
    .on_conn_closed = node_conn_closed,
};

/* ---- opening and running --------------------------------------------------------------------- */

/* The provisional ids (see client_node.h) as the library's bootstrap list. */
static void bootstrap_ids(struct rq_client_config *cfg, uint32_t count) {
    cfg->bootstrap_count = count;
    for (uint32_t i = 0; i < count; i++)
        cfg->bootstrap[i] = RQ_NODE_ID_MAX - i;
    /* The library's metadata refresh and its admin operations step ONE rotation over the
     * bootstrap list (client.c, md_bootstrap), one step each per failed attempt: with an even
     * count the two can stay in step so that both keep asking the same dead server (seen with
     * "--bootstrap dead:1,live:2"). An odd count makes every server's turn come: repeat the
     * first. */
    if (cfg->bootstrap_count % 2 == 0) cfg->bootstrap[cfg->bootstrap_count++] = RQ_NODE_ID_MAX;
    RQ_ASSERT(cfg->bootstrap_count <= CLIENT_BOOTSTRAP_MAX);
}

/* One seed per process, so that the nodes of one process get distinct ids (base + index). */
static uint64_t process_seed(void) {
    static uint64_t seed;
    if (seed == 0) seed = (wall_ns() ^ ((uint64_t)getpid() << 32) ^ rq_shim_monotonic_ns()) | 1;
    return seed;
}

int client_node_open(struct client_node *n, const struct client_node_config *cfg) {
    RQ_ASSERT(cfg->bootstrap_count >= 1);
    RQ_ASSERT(cfg->bootstrap_count <= CLIENT_NODE_BOOTSTRAP_MAX);
    RQ_ASSERT(cfg->tick_ms >= 1);
    RQ_ASSERT(cfg->hooks != NULL && cfg->callbacks != NULL);
    RQ_ASSERT(cfg->index < CLIENT_NODE_ID_SPREAD);
    memset(n, 0, sizeof *n);
    n->cfg = *cfg;
    bootstrap_ids(&n->cfg.client, cfg->bootstrap_count);
    struct shim_net_peer peers[CLIENT_NODE_BOOTSTRAP_MAX];
    for (uint32_t i = 0; i < cfg->bootstrap_count; i++) {
        peers[i] = (struct shim_net_peer){RQ_NODE_ID_MAX - i, n->cfg.bootstrap[i]};
        snprintf(n->peer_address[RQ_NODE_ID_MAX - i], CLIENT_NODE_ADDRESS_MAX, "%s",
                 cfg->bootstrap[i]);
    }
    struct shim_net_config net = {.peers = peers, .peer_count = cfg->bootstrap_count};
    uint64_t seed = process_seed();
    struct shim_loop_config c = {
        .data_dir = NULL, /* a client keeps nothing on disk */
        .ops = &CLIENT_NODE_OPS,
        .node_config = n,
        .node_id = CLIENT_NODE_ID_BASE +
                   (uint32_t)((seed % CLIENT_NODE_ID_SPREAD + cfg->index) % CLIENT_NODE_ID_SPREAD),
        .seed = seed ^ ((uint64_t)cfg->index * 0x9E3779B97F4A7C15ull),
        .net = &net,
    };
    return shim_loop_init_config(&n->loop, &c);
}

void client_node_close(struct client_node *n) { shim_loop_free(&n->loop); }

int client_node_run_once(struct client_node *n, int wait_ms_max) {
    return shim_loop_run_once(&n->loop, wait_ms_max);
}

/* How long the nodes may all sleep: until the earliest timer, 0 with output left to write. */
static int many_timeout_ms(struct client_node *const *nodes, uint32_t count, int wait_ms_max) {
    uint64_t now = rq_shim_monotonic_ns();
    int timeout_ms = wait_ms_max;
    for (uint32_t i = 0; i < count; i++) {
        const struct shim_loop *l = &nodes[i]->loop;
        if (l->net != NULL && shim_net_pending(l->net)) return 0;
        if (!l->timer_armed) continue;
        if (now >= l->timer_at_ns) return 0;
        uint64_t ms = (l->timer_at_ns - now + MS - 1) / MS; /* rounded up: never early */
        if (ms < (uint64_t)timeout_ms) timeout_ms = (int)ms;
    }
    return timeout_ms;
}

int client_node_run_many(struct client_node *const *nodes, uint32_t count, int wait_ms_max,
                         uint32_t *failed) {
    RQ_ASSERT(count >= 1 && count <= CLIENT_NODE_MANY_MAX);
    RQ_ASSERT(wait_ms_max >= 0);
    for (uint32_t i = 0; i < count; i++) {
        if (shim_loop_run_once(&nodes[i]->loop, 0) != 0) {
            *failed = i;
            return RQ_EIO;
        }
    }
    /* Each loop's epoll instance is itself pollable: readable when one of its sockets is. */
    struct pollfd fds[CLIENT_NODE_MANY_MAX];
    for (uint32_t i = 0; i < count; i++)
        fds[i] = (struct pollfd){.fd = nodes[i]->loop.epoll_fd, .events = POLLIN};
    int timeout_ms = many_timeout_ms(nodes, count, wait_ms_max);
    if (timeout_ms > 0) (void)poll(fds, count, timeout_ms); /* EINTR: a turn with nothing */
    return 0;
}
