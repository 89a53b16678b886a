/* raftqd — the raftq broker daemon: one broker (src/node/broker.h: the controller replica and its
 * partition replicas) run for real by the POSIX shim (src/shim/loop.h, net.h, disk.h).
 *
 *   raftqd --id N --listen HOST:PORT --peers 1=HOST:PORT,2=... --data-dir DIR [--config FILE]
 *          [--log-level error|warn|info|debug] [--metrics HOST:PORT]
 *          [tuning: see src/cmd/daemon_config.h]
 *
 * --metrics serves GET /metrics over HTTP in Prometheus's text format: per Raft group its role,
 * term and commit index; per partition its high watermark and log start; a histogram of produce
 * latency (arrival to answer) and one of fsync time; WAL appends and fsyncs (their ratio is the
 * batch size); network bytes and messages in and out, open connections, drops; request counters.
 *
 * Every server of a cluster is listed in --peers, this one included: its entry is the address it
 * advertises to clients and peers (--listen may be 0.0.0.0:PORT). Every broker is a controller
 * node (the first RAFT_VOTERS_MAX ids of the peers). The data directory is created if its parent
 * exists, and locked by the shim (flock on the directory): one process per data directory.
 *
 * Exit codes: 0 stopped by SIGTERM or SIGINT (in-flight disk writes and fsyncs finish first; the
 * answers they would have given are not sent, and clients retry); 1 could not start (the error is
 * printed: a data directory in use, a port in use, ...) or halted (fail-stop on a failed fsync or
 * corrupt durable data: restart it, it recovers from its disk); 2 bad flags or configuration.
 * A restart after kill -9 recovers from what the disk made durable (io.h's rules). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/log.h"
#include "cmd/daemon_config.h"
#include "meta/controller.h"
#include "node/broker.h"
#include "shim/loop.h"

static const char USAGE[] =
    "usage: raftqd --id N --listen HOST:PORT --peers 1=HOST:PORT,2=HOST:PORT,... --data-dir DIR\n"
    "              [--config FILE] [--log-level error|warn|info|debug] [--metrics HOST:PORT]\n"
    "              [--tick-ms N] [--election-ticks N] [--heartbeat-ms N]\n"
    "              [--heartbeat-timeout-ms N] [--request-timeout-ms N]\n"
    "              [--snapshot-entries N] [--segment-bytes N] [--max-connections N]\n"
    "              [--hello-timeout-ms N] [--idle-timeout-ms N]\n"
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

/* Creates dir if missing (its parent must exist). The shim locks it (flock on the directory
 * itself, shim/disk.h): one process per data directory, and no lock file among the node's. */
static int make_data_dir(const char *dir, char *err, size_t cap) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, cap, "data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
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

/* ---- the metrics endpoint (Prometheus text format) ------------------------------------------- */

struct text {
    char *buf;
    size_t cap, len;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...) {
    if (t->len >= t->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len = n < 0 || (size_t)n >= t->cap - t->len ? t->cap : t->len + (size_t)n;
}

/* A latency histogram in Prometheus's form (cumulative buckets, bounds in seconds). */
static void put_histogram(struct text *t, const char *name, const char *help,
                          const struct rq_hist *h) {
    put(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (uint32_t i = 0; i + 1 < RQ_HIST_BUCKETS; i++) {
        cumulative += h->le[i];
        put(t, "%s_bucket{le=\"%g\"} %llu\n", name, (double)RQ_HIST_BOUNDS_US[i] / 1e6,
            (unsigned long long)cumulative);
    }
    cumulative += h->le[RQ_HIST_BUCKETS - 1];
    put(t, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9f\n%s_count %llu\n", name,
        (unsigned long long)cumulative, name, (double)h->ns_total / 1e9, name,
        (unsigned long long)cumulative);
}

static void put_counter(struct text *t, const char *name, const char *help, uint64_t v) {
    put(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
        (unsigned long long)v);
}

/* One family (gauges, or counters) over every Raft group this node runs (Prometheus wants a
 * family's samples together): field picks the value; partitions_only skips the controller's
 * group. */
enum group_field {
    F_LEADER, F_TERM, F_COMMIT, F_HIGH_WATERMARK, F_LOG_START, F_BYTES_IN, F_BYTES_OUT
};

static uint64_t field_of(const struct broker_group_metrics *m, enum group_field f) {
    switch (f) {
    case F_LEADER: return m->role == RAFT_LEADER;
    case F_TERM: return m->term;
    case F_COMMIT: return m->commit_index;
    case F_HIGH_WATERMARK: return m->high_watermark;
    case F_LOG_START: return m->log_start;
    case F_BYTES_IN: return m->bytes_in;
    case F_BYTES_OUT: return m->bytes_out;
    }
    return 0;
}

static void put_family(struct text *t, const struct broker *b, const char *name, const char *help,
                       enum group_field f, int partitions_only) {
    const char *type = f == F_BYTES_IN || f == F_BYTES_OUT ? "counter" : "gauge";
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (uint32_t g = 1; g < HOST_GROUP_ID_LIMIT; g++) {
        struct broker_group_metrics m;
        if (!broker_group_metrics(b, g, &m) || (partitions_only && m.topic == NULL)) continue;
        put(t, "%s{group=\"%u\",topic=\"%s\",partition=\"", name, (unsigned)g,
            m.topic ? m.topic : "");
        if (m.topic != NULL) put(t, "%u", (unsigned)m.partition);
        put(t, "\"} %llu\n", (unsigned long long)field_of(&m, f));
    }
}

static void put_groups(struct text *t, const struct broker *b) {
    put_family(t, b, "raftq_raft_leader", "1 when this node leads the group", F_LEADER, 0);
    put_family(t, b, "raftq_raft_term", "the group's current term", F_TERM, 0);
    put_family(t, b, "raftq_raft_commit_index", "the group's commit index", F_COMMIT, 0);
    put_family(t, b, "raftq_partition_high_watermark", "the partition's next offset",
               F_HIGH_WATERMARK, 1);
    put_family(t, b, "raftq_partition_log_start", "the first offset retention kept", F_LOG_START, 1);
    put_family(t, b, "raftq_partition_bytes_in_total",
               "record bytes (as produced: timestamp, key, value, headers) in produce requests "
               "this replica accepted as leader, counted at acceptance (acks=0 too; refused ones "
               "not; a retried batch again), since it was added on this node",
               F_BYTES_IN, 1);
    put_family(t, b, "raftq_partition_bytes_out_total",
               "record bytes (as produced, without offsets) in fetch answers this replica sent "
               "(as leader or follower; not Raft replication), since it was added on this node",
               F_BYTES_OUT, 1);
}

static void put_net(struct text *t, const struct shim_net_stats *n) {
    put_counter(t, "raftq_net_bytes_in_total", "message bytes received", n->bytes_in);
    put_counter(t, "raftq_net_bytes_out_total", "message bytes sent", n->bytes_out);
    put_counter(t, "raftq_net_messages_in_total", "messages received", n->msgs_in);
    put_counter(t, "raftq_net_messages_out_total", "messages sent", n->msgs_out);
    put(t, "# HELP raftq_net_connections connections open (accepted and dialed)\n"
           "# TYPE raftq_net_connections gauge\nraftq_net_connections %u\n", (unsigned)n->conns_open);
    put_counter(t, "raftq_net_dropped_total", "messages dropped (unreachable, full, too big, ...)",
                n->drop_too_big + n->drop_unreachable + n->drop_unknown_node +
                    n->drop_unknown_conn + n->drop_full);
    put_counter(t, "raftq_net_bad_input_total", "connections closed for bad hellos or envelopes",
                n->bad_hello + n->bad_envelope + n->truncated + n->protocol_errors);
    put_counter(t, "raftq_net_timeouts_total", "connections closed for no hello or no input in time",
                n->hello_timeouts + n->idle_closed);
    put(t, "# HELP raftq_net_buffer_bytes memory held by connection buffers\n"
           "# TYPE raftq_net_buffer_bytes gauge\nraftq_net_buffer_bytes %llu\n",
        (unsigned long long)n->buffer_bytes);
    put_counter(t, "raftq_net_client_overflows_total",
                "client connections closed because their unsent answers passed the bound (the "
                "client does not read)",
                n->client_overflows);
}

/* Per disk operation: count, time and the longest (the disk worker runs one at a time, so the
 * longest delays everything queued behind it). */
static void put_disk_ops(struct text *t, const struct shim_disk_stats *d) {
    static const char *const families[][2] = {
        {"raftq_disk_ops_total", "disk requests done by the worker, by operation"},
        {"raftq_disk_op_seconds_total", "time the worker spent in them"},
        {"raftq_disk_op_seconds_max", "the longest one since the start"}};
    for (uint32_t f = 0; f < 3; f++) {
        put(t, "# HELP %s %s\n# TYPE %s %s\n", families[f][0], families[f][1], families[f][0],
            f == 2 ? "gauge" : "counter");
        for (uint32_t op = 1; op < SHIM_DISK_OPS; op++) {
            const char *name = shim_disk_op_name((enum rq_disk_op)op);
            if (f == 0) put(t, "%s{op=\"%s\"} %llu\n", families[f][0], name,
                            (unsigned long long)d->op_count[op]);
            else put(t, "%s{op=\"%s\"} %.6f\n", families[f][0], name,
                     (double)(f == 1 ? d->op_ns_total[op] : d->op_ns_max[op]) / 1e9);
        }
    }
}

static size_t render_metrics(void *arg, char *buf, size_t cap) {
    const struct shim_loop *loop = arg;
    const struct broker *b = loop->node;
    struct text t = {buf, cap, 0};
    struct broker_stats bs;
    struct store_stats ss;
    broker_stats_get(b, &bs);
    host_store_stats_get(broker_host(b), &ss);
    put_groups(&t, b);
    put_histogram(&t, "raftq_produce_latency_seconds",
                  "produce requests, arrival to answer (acks=all: commit; acks=1: leader fsync)",
                  &bs.produce_latency);
    put_counter(&t, "raftq_produce_errors_total", "produce requests answered with an error",
                bs.produce_failed);
    put_histogram(&t, "raftq_fsync_seconds", "fdatasync calls of the data files",
                  &loop->disk.stats.fsync);
    put_histogram(&t, "raftq_loop_turn_seconds",
                  "busy time of one event-loop turn (a long turn delays every request behind it)",
                  &loop->stats.turn);
    put_disk_ops(&t, &loop->disk.stats);
    put_counter(&t, "raftq_wal_appends_total", "entries appended to the node's WAL", ss.appends);
    put_counter(&t, "raftq_wal_fsyncs_total", "WAL fsyncs (appends / fsyncs: the batch size)",
                ss.wal_fsyncs);
    put_counter(&t, "raftq_disk_bytes_written_total", "bytes written to files",
                loop->disk.stats.bytes_written);
    put_counter(&t, "raftq_requests_total", "client requests", bs.requests);
    put_counter(&t, "raftq_bad_requests_total", "requests answered with an ERROR frame",
                bs.bad_requests);
    put_counter(&t, "raftq_busy_total", "requests refused: too many waiting", bs.busy);
    put_counter(&t, "raftq_timeouts_total", "requests answered RQ_ETIMEOUT", bs.timeouts);
    if (loop->net != NULL) put_net(&t, shim_net_stats(loop->net));
    return t.len;
}

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
    struct shim_net_config net = {.listen_address = listen, .peers = peers, .peer_count = n,
                                  .conns_max = d->max_connections,
                                  .hello_timeout_ms = d->hello_timeout_ms,
                                  .idle_timeout_ms = d->idle_timeout_ms};
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    struct shim_loop_config lc = {.data_dir = d->data_dir, .ops = &BROKER_OPS, .node_config = bc,
                                  .node_id = d->id, .seed = seed, .net = &net};
    static struct shim_loop loop;
    int rc = shim_loop_init_config(&loop, &lc);
    if (rc == RQ_EBUSY) {
        fprintf(stderr, "raftqd: data directory %s is in use by another raftqd (it is locked)\n",
                d->data_dir);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "raftqd: cannot start node %u: %s (see the log above)\n", (unsigned)d->id,
                rq_strerror(rc));
        return 1;
    }
    if (d->metrics.host[0] != '\0') {
        char metrics[DAEMON_HOST_MAX + 8];
        addr_text(&d->metrics, metrics, sizeof metrics);
        if (shim_loop_metrics_open(&loop, metrics, render_metrics, &loop) != 0) {
            fprintf(stderr, "raftqd: --metrics %s: cannot listen (see the log above)\n", metrics);
            shim_loop_free(&loop);
            return 1;
        }
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
    rq_log_set_sink(shim_log_stderr, NULL);
    rq_log_set_level(log_level(d.log_level));
    if (make_data_dir(d.data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "raftqd: %s\n", err);
        return 1;
    }
    static struct broker_config bc;
    broker_settings(&d, &bc);
    install_signals();
    return serve(&d, &bc);
}
