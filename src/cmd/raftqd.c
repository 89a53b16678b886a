/* raftqd — the raftq broker daemon: one broker (src/node/broker.h: the controller replica and its
 * partition replicas) run for real by the POSIX shim (src/shim/loop.h, net.h, disk.h).
 *
 *   raftqd --id N --listen HOST:PORT --peers 1=HOST:PORT,2=... --data-dir DIR [--config FILE]
 *          [--log-level error|warn|info|debug] [tuning: see src/cmd/daemon_config.h]
 *
 * Every server of a cluster is listed in --peers, this one included: its entry is the address it
 * advertises to clients and peers (--listen may be 0.0.0.0:PORT). Every broker is a controller
 * node (the first RAFT_VOTERS_MAX ids of the peers). The data directory is created if its parent
 * exists, and locked (DIR/LOCK, flock): one process per data directory.
 *
 * Exit codes: 0 stopped by SIGTERM or SIGINT (in-flight disk writes and fsyncs finish first; the
 * answers they would have given are not sent, and clients retry); 1 could not start (the error is
 * printed: a data directory in use, a port in use, ...) or halted (fail-stop on a failed fsync or
 * corrupt durable data: restart it, it recovers from its disk); 2 bad flags or configuration.
 * A restart after kill -9 recovers from what the disk made durable (io.h's rules). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/log.h"
#include "cmd/daemon_config.h"
#include "node/broker.h"
#include "shim/loop.h"

static const char USAGE[] =
    "usage: raftqd --id N --listen HOST:PORT --peers 1=HOST:PORT,2=HOST:PORT,... --data-dir DIR\n"
    "              [--config FILE] [--log-level error|warn|info|debug]\n"
    "              [--tick-ms N] [--election-ticks N] [--heartbeat-ms N]\n"
    "              [--heartbeat-timeout-ms N] [--request-timeout-ms N]\n"
    "              [--snapshot-entries N] [--segment-bytes N]\n"
    "--peers lists every server, this one included (its address is the one it advertises).\n"
    "exit: 0 stopped by a signal, 1 could not start or halted, 2 bad flags or configuration\n";

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

/* ---- settings -------------------------------------------------------------------------------- */

static int read_file(const char *path, char *buf, size_t cap, size_t *len, char *err, size_t ecap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, ecap, "--config %s: %s", path, strerror(errno));
        return -1;
    }
    *len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + *len, cap - *len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) snprintf(err, ecap, "--config %s: %s", path, strerror(errno));
        if (n <= 0 || (*len += (size_t)n) == cap) break;
    }
    close(fd);
    if (*len == cap) snprintf(err, ecap, "--config %s: over %d bytes", path, DAEMON_CONFIG_TEXT_MAX);
    return *len == cap || err[0] != '\0' ? -1 : 0;
}

/* Flags and the file into *c; 0, or -1 with err. */
static int settings(struct daemon_config *c, int argc, char **argv, char *err, size_t cap) {
    static char text[DAEMON_CONFIG_TEXT_MAX + 1];
    daemon_config_default(c);
    err[0] = '\0';
    if (daemon_config_find_file(c, argc, argv, err, cap) != 0) return -1;
    size_t len = 0;
    if (c->config_file[0] != '\0' && (read_file(c->config_file, text, sizeof text, &len, err, cap) != 0 ||
                                      daemon_config_apply_text(c, text, len, err, cap) != 0))
        return -1;
    if (daemon_config_apply_args(c, argc, argv, err, cap) != 0) return -1;
    return daemon_config_validate(c, err, cap) == 0 ? 0 : -1;
}

static void addr_text(const struct daemon_addr *a, char *buf, size_t cap) {
    snprintf(buf, cap, "%s:%u", a->host, (unsigned)a->port);
}

/* The broker's configuration from the daemon's settings. */
static void broker_settings(const struct daemon_config *d, struct broker_config *b) {
    broker_config_default(b);
    for (uint32_t i = 0; i < d->peer_count && b->controller_count < RAFT_VOTERS_MAX; i++)
        b->controllers[b->controller_count++] = d->peers[i].id;
    for (uint32_t i = 0; i < d->peer_count; i++)
        if (d->peers[i].id == d->id) addr_text(&d->peers[i].addr, b->address, sizeof b->address);
    b->host.tick_ns = (uint64_t)d->tick_ms * 1000000u;
    b->host.raft.election_ticks = d->election_ticks;
    b->host.raft.snapshot_entries = d->snapshot_entries;
    b->host.store.segment_bytes_max = d->segment_bytes;
    b->heartbeat_every_ns = (uint64_t)d->heartbeat_ms * 1000000u;
    b->heartbeat_timeout_ns = (uint64_t)d->heartbeat_timeout_ms * 1000000u;
    b->request_timeout_ns = (uint64_t)d->request_timeout_ms * 1000000u;
}

/* ---- the data directory ---------------------------------------------------------------------- */

/* Creates dir if missing (its parent must exist) and locks dir/LOCK; returns the lock's fd, or -1
 * with err. The lock goes with the process, also at kill -9. */
static int lock_data_dir(const char *dir, char *err, size_t cap) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, cap, "data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    char path[DAEMON_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, cap, "data directory %s: %s: %s", dir, path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, cap, "data directory %s is in use by another raftqd (%s is locked)", dir,
                 errno == EWOULDBLOCK ? path : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the broker as the loop's node ----------------------------------------------------------- */

static void *node_create(const struct rq_io *io, const void *config) {
    return broker_create(io, config, NULL);
}
static void node_destroy(void *n) { broker_destroy(n); }
static void node_start(void *n) { broker_start(n); }
static void node_timer(void *n) { broker_on_timer(n); }
static void node_peer(void *n, uint32_t from, const void *buf, size_t len) {
    broker_on_peer_message(n, from, buf, len);
}
static void node_client(void *n, uint64_t conn, const void *buf, size_t len) {
    broker_on_client_message(n, conn, buf, len);
}
static void node_disk(void *n, struct rq_disk_req *req) { broker_on_disk_done(n, req); }
static void node_closed(void *n, uint64_t conn) { broker_on_conn_closed(n, conn); }

static const struct rq_node_ops BROKER_OPS = {
    .name = "raftqd", .create = node_create, .destroy = node_destroy, .on_start = node_start,
    .on_timer = node_timer, .on_peer_message = node_peer, .on_client_message = node_client,
    .on_disk_done = node_disk, .on_conn_closed = node_closed,
};

/* ---- main ------------------------------------------------------------------------------------ */

static enum rq_log_level log_level(enum daemon_log_level l) {
    switch (l) {
    case DAEMON_LOG_ERROR: return RQ_LOG_ERROR;
    case DAEMON_LOG_WARN: return RQ_LOG_WARN;
    case DAEMON_LOG_INFO: return RQ_LOG_INFO;
    case DAEMON_LOG_DEBUG: return RQ_LOG_DEBUG;
    }
    return RQ_LOG_INFO;
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;   /* no SA_RESTART: epoll_wait returns EINTR at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Runs the broker until a signal (0) or a halt (1). */
static int serve(const struct daemon_config *d, const struct broker_config *bc) {
    char listen[DAEMON_HOST_MAX + 8];
    static char addrs[DAEMON_PEERS_MAX][DAEMON_HOST_MAX + 8];
    struct shim_net_peer peers[DAEMON_PEERS_MAX];
    uint32_t n = 0;
    addr_text(&d->listen, listen, sizeof listen);
    for (uint32_t i = 0; i < d->peer_count; i++) {
        if (d->peers[i].id == d->id) continue;
        addr_text(&d->peers[i].addr, addrs[n], sizeof addrs[n]);
        peers[n] = (struct shim_net_peer){.node_id = d->peers[i].id, .address = addrs[n]};
        n++;
    }
    struct shim_net_config net = {.listen_address = listen, .peers = peers, .peer_count = n};
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    struct shim_loop_config lc = {.data_dir = d->data_dir, .ops = &BROKER_OPS, .node_config = bc,
                                  .node_id = d->id, .seed = seed, .net = &net};
    static struct shim_loop loop;
    int rc = shim_loop_init_config(&loop, &lc);
    if (rc != 0) {
        fprintf(stderr, "raftqd: cannot start node %u: %s (see the log above)\n", (unsigned)d->id,
                rq_strerror(rc));
        return 1;
    }
    RQ_INFO("raftqd: node %u listening on %s, data in %s, %u peers", (unsigned)d->id, listen,
            d->data_dir, (unsigned)n);
    while (rc == 0 && stop_signal == 0) rc = shim_loop_run_once(&loop, 1000);
    if (stop_signal != 0)
        RQ_INFO("raftqd: signal %d: stopping (disk requests in flight finish first)", (int)stop_signal);
    else
        fprintf(stderr, "raftqd: halted: %s\n", loop.halt_reason[0] ? loop.halt_reason : rq_strerror(rc));
    shim_loop_free(&loop);
    return stop_signal != 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    static struct daemon_config d;
    char err[4 * DAEMON_PATH_MAX];   /* room for two paths and a reason */
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (settings(&d, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "raftqd: %s\n%s", err, USAGE);
        return 2;
    }
    if (d.metrics.host[0] != '\0') {   /* not built: refused rather than silently ignored */
        fprintf(stderr, "raftqd: --metrics: the metrics endpoint is not built yet\n");
        return 2;
    }
    rq_log_set_sink(shim_log_stderr, NULL);
    rq_log_set_level(log_level(d.log_level));
    int lock = lock_data_dir(d.data_dir, err, sizeof err);
    if (lock < 0) {
        fprintf(stderr, "raftqd: %s\n", err);
        return 1;
    }
    static struct broker_config bc;
    broker_settings(&d, &bc);
    install_signals();
    int code = serve(&d, &bc);
    close(lock);
    return code;
}
