/* The shim's TCP networking (src/shim/net.c) through the event loop, on 127.0.0.1 only.
 *
 * Every node runs in its own shim_loop, and ONE thread drives all of them round robin with
 * shim_loop_run_once (pump). Not threads: the logger and base/ctx are process-global, so two loop
 * threads would race on them; not fork: the test could not look into the nodes' state and the
 * loops' stats. One thread also keeps each test a plain sequence of steps. The sockets are real,
 * so the kernel still decides when bytes arrive: every wait is "pump until a condition holds", with
 * a generous bound on rounds (WAIT_ROUNDS_MAX), and nothing asserts how long anything took.
 *
 * Ports are ephemeral (port 0, then shim_net_listen_port), except for the peer that starts late,
 * whose port is reserved by binding port 0 once and closing it. "Garbage" connections are raw
 * sockets that speak a broken protocol. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "shim/loop.h"
#include "shim/net.h"

enum {
    LOOPS_MAX = 4,
    GOT_MAX = 64,
    WAIT_ROUNDS_MAX = 30000, /* each round waits at most 1 ms per loop when idle */
    CLIENT_ID = 1000,
    SLOW_REPLY_BYTES = 256 * 1024,
};

static char root_dir[64]; /* made by main(), removed by main() */

/* ---- the test node: records what it receives; a server echoes client messages ------------- */

struct got {
    uint32_t from;
    uint64_t conn;
    size_t len;
    uint32_t crc;
};

struct tnode_config {
    uint32_t reply_bytes; /* 0: echo a client's message; else reply with this many bytes */
};

struct tnode {
    const struct rq_io *io;
    struct tnode_config cfg;
    struct got got[GOT_MAX];
    uint32_t got_count;
    uint64_t client_msgs, conn_closed, last_conn, closed_conn;
    uint8_t *reply_buf;
};

static void *tn_create(const struct rq_io *io, const void *config) {
    struct tnode *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->io = io;
    if (config != NULL) t->cfg = *(const struct tnode_config *)config;
    if (t->cfg.reply_bytes > 0) t->reply_buf = calloc(1, t->cfg.reply_bytes);
    return t;
}

static void tn_destroy(void *node) {
    struct tnode *t = node;
    free(t->reply_buf);
    free(t);
}

static void tn_start(void *node) { (void)node; }
static void tn_timer(void *node) { (void)node; }
static void tn_disk_done(void *node, struct rq_disk_req *req) { (void)node, (void)req; }

static void tn_record(struct tnode *t, uint32_t from, uint64_t conn, const void *buf, size_t len) {
    if (t->got_count >= GOT_MAX) return;
    t->got[t->got_count++] = (struct got){from, conn, len, rq_crc32c(0, buf, len)};
}

static void tn_peer(void *node, uint32_t from, const void *buf, size_t len) {
    tn_record(node, from, 0, buf, len);
}

static void tn_client(void *node, uint64_t conn, const void *buf, size_t len) {
    struct tnode *t = node;
    tn_record(t, 0, conn, buf, len);
    t->client_msgs++;
    t->last_conn = conn;
    if (t->cfg.reply_bytes > 0) {
        t->io->reply(t->io->env, conn, t->reply_buf, t->cfg.reply_bytes);
    } else {
        t->io->reply(t->io->env, conn, buf, len);
    }
}

static void tn_closed(void *node, uint64_t conn) {
    struct tnode *t = node;
    t->conn_closed++;
    t->closed_conn = conn;
}

static const struct rq_node_ops tnode_ops = {
    .name = "net-test",
    .create = tn_create,
    .destroy = tn_destroy,
    .on_start = tn_start,
    .on_timer = tn_timer,
    .on_peer_message = tn_peer,
    .on_client_message = tn_client,
    .on_disk_done = tn_disk_done,
    .on_conn_closed = tn_closed,
};

/* ---- loops ----------------------------------------------------------------------------------- */

static struct shim_loop loops[LOOPS_MAX];
static int loop_live[LOOPS_MAX];

static struct tnode *node_of(int i) { return loops[i].node; }
static const struct shim_net_stats *stats_of(int i) { return shim_net_stats(loops[i].net); }

static void start_loop(int i, uint32_t node_id, const struct shim_net_config *net,
                       const struct tnode_config *cfg) {
    char dir[128];
    snprintf(dir, sizeof dir, "%s/n-XXXXXX", root_dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct shim_loop_config c = {
        .data_dir = dir,
        .ops = &tnode_ops,
        .node_config = cfg,
        .node_id = node_id,
        .seed = 7 + node_id,
        .net = net,
    };
    ck_assert_int_eq(shim_loop_init_config(&loops[i], &c), 0);
    loop_live[i] = 1;
}

static void start_server(int i, uint32_t node_id, const char *listen,
                         const struct tnode_config *cfg, size_t client_out_bytes_max) {
    struct shim_net_config net = {.listen_address = listen,
                                  .client_out_bytes_max = client_out_bytes_max};
    start_loop(i, node_id, &net, cfg);
}

static void stop_loop(int i) {
    if (!loop_live[i]) return;
    shim_loop_free(&loops[i]);
    loop_live[i] = 0;
}

static void teardown(void) {
    for (int i = 0; i < LOOPS_MAX; i++)
        stop_loop(i);
}

static void pump(void) {
    for (int i = 0; i < LOOPS_MAX; i++) {
        if (loop_live[i]) ck_assert_int_eq(shim_loop_run_once(&loops[i], 1), 0);
    }
}

#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        for (int round_ = 0; round_ < WAIT_ROUNDS_MAX && !(cond); round_++)                        \
            pump();                                                                                \
        ck_assert_msg((cond), "still false after %d rounds: %s", WAIT_ROUNDS_MAX, #cond);          \
    } while (0)

static void address_of(int i, char *out, size_t cap) {
    snprintf(out, cap, "127.0.0.1:%u", shim_net_listen_port(loops[i].net));
}

/* Tells loop i where node `id` (served by loop j) listens. */
static void introduce(int i, uint32_t id, int j) {
    char address[SHIM_NET_ADDRESS_MAX];
    address_of(j, address, sizeof address);
    ck_assert_int_eq(shim_net_set_peer(loops[i].net, id, address), 0);
}

static void send_from(int i, uint32_t to, const void *buf, size_t len) {
    loops[i].io.send(loops[i].io.env, to, buf, len);
}

static uint8_t *pattern(size_t len, uint32_t seed) {
    uint8_t *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    for (size_t k = 0; k < len; k++)
        p[k] = (uint8_t)((k * 2654435761u + seed) >> 7);
    return p;
}

static void check_got(int i, uint32_t index, uint32_t from, size_t len, uint32_t seed) {
    struct tnode *t = node_of(i);
    ck_assert_uint_gt(t->got_count, index);
    uint8_t *p = pattern(len, seed);
    ck_assert_uint_eq(t->got[index].from, from);
    ck_assert_uint_eq(t->got[index].len, len);
    ck_assert_uint_eq(t->got[index].crc, rq_crc32c(0, p, len));
    free(p);
}

/* ---- servers ----------------------------------------------------------------------------------
 */

START_TEST(servers_exchange_messages_both_ways_with_boundaries_kept) {
    for (int i = 0; i < 3; i++)
        start_server(i, (uint32_t)i + 1, "127.0.0.1:0", NULL, 0);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            if (i != j) introduce(i, (uint32_t)j + 1, j);
        }
    }
    static const size_t sizes[] = {1, 100, RQ_MSG_MAX, 0, 70000, 1};
    enum { SIZES = sizeof sizes / sizeof sizes[0] };
    for (uint32_t k = 0; k < SIZES; k++) {
        uint8_t *a = pattern(sizes[k], k), *b = pattern(sizes[k], 100 + k);
        send_from(0, 2, a, sizes[k]); /* 1 -> 2 */
        send_from(1, 1, b, sizes[k]); /* 2 -> 1 */
        free(a);
        free(b);
    }
    uint8_t *c = pattern(5, 55);
    send_from(2, 1, c, 5); /* 3 -> 1: a second inbound connection on node 1 */
    free(c);
    uint8_t *big = pattern(RQ_MSG_MAX + 1, 9);
    send_from(0, 2, big, RQ_MSG_MAX + 1);
    free(big);
    ck_assert_uint_eq(stats_of(0)->drop_too_big, 1);

    WAIT_FOR(node_of(1)->got_count == SIZES && node_of(0)->got_count == SIZES + 1);
    for (uint32_t k = 0; k < SIZES; k++) /* one connection per direction: in order */
        check_got(1, k, 1, sizes[k], k);
    uint32_t from_2 = 0;
    for (uint32_t k = 0; k < SIZES + 1; k++) {
        struct got *g = &node_of(0)->got[k];
        if (g->from == 3) {
            ck_assert_uint_eq(g->len, 5);
            continue;
        }
        check_got(0, k, 2, sizes[from_2], 100 + from_2);
        from_2++;
    }
    ck_assert_uint_eq(from_2, SIZES);
    ck_assert_uint_eq(stats_of(1)->msgs_in, SIZES);
    ck_assert_uint_eq(stats_of(0)->msgs_out, SIZES);
    ck_assert_uint_eq(stats_of(0)->bad_envelope + stats_of(1)->bad_envelope, 0);
    send_from(0, 1, "x", 1); /* to itself, and to an unknown node: dropped and counted */
    send_from(0, 9, "x", 1);
    ck_assert_uint_eq(stats_of(0)->drop_unknown_node, 2);
}
END_TEST

/* ---- clients ----------------------------------------------------------------------------------
 */

static void start_client(int i, int server_loop, uint32_t server_id) {
    char address[SHIM_NET_ADDRESS_MAX];
    address_of(server_loop, address, sizeof address);
    struct shim_net_peer peer = {server_id, address};
    struct shim_net_config net = {.listen_address = NULL, .peers = &peer, .peer_count = 1};
    start_loop(i, CLIENT_ID + (uint32_t)i, &net, NULL);
}

/* A client at loop i asks server `server_id` (loop s) and gets its echo back. */
static void client_round_trip(int i, int s, uint32_t server_id) {
    struct tnode *server = node_of(s), *client = node_of(i);
    uint64_t before = server->client_msgs;
    uint32_t got_before = client->got_count;
    uint8_t *q = pattern(300, 77);
    send_from(i, server_id, q, 300);
    free(q);
    WAIT_FOR(client->got_count == got_before + 1);
    ck_assert_uint_eq(server->client_msgs, before + 1);
    check_got(i, got_before, server_id, 300, 77);
}

START_TEST(a_client_gets_replies_and_its_close_is_reported_once) {
    start_server(0, 1, "127.0.0.1:0", NULL, 0);
    start_client(1, 0, 1);
    client_round_trip(1, 0, 1);
    client_round_trip(1, 0, 1); /* the same connection again */
    struct tnode *server = node_of(0);
    uint64_t conn = server->last_conn;
    ck_assert_uint_ne(conn, 0);
    ck_assert_uint_eq(server->got[0].conn, conn);
    ck_assert_uint_eq(stats_of(0)->conns_accepted, 1);

    stop_loop(1); /* the client goes away */
    WAIT_FOR(server->conn_closed == 1);
    ck_assert_uint_eq(server->closed_conn, conn);
    for (int k = 0; k < 50; k++)
        pump();
    ck_assert_uint_eq(server->conn_closed, 1);
    loops[0].io.reply(loops[0].io.env, conn, "late", 4);
    ck_assert_uint_eq(stats_of(0)->drop_unknown_conn, 1);

    start_client(2, 0, 1); /* a new connection gets a new id */
    client_round_trip(2, 0, 1);
    ck_assert_uint_ne(server->last_conn, conn);
}
END_TEST

/* ---- a peer that is down, then up ----------------------------------------------------------- */

static uint16_t reserve_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

START_TEST(sends_to_a_down_peer_are_dropped_and_it_is_reached_once_up) {
    char address[SHIM_NET_ADDRESS_MAX];
    snprintf(address, sizeof address, "127.0.0.1:%u", reserve_port());
    start_server(0, 1, "127.0.0.1:0", NULL, 0);
    ck_assert_int_eq(shim_net_set_peer(loops[0].net, 2, address), 0);
    const struct shim_net_stats *st = stats_of(0);
    for (int round = 0; round < WAIT_ROUNDS_MAX && st->drop_unreachable < 3; round++) {
        send_from(0, 2, "lost", 4);
        pump();
    }
    ck_assert_uint_ge(st->drop_unreachable, 3);
    ck_assert_uint_ge(st->dial_failures, 1);

    start_server(1, 2, address, NULL, 0);
    struct tnode *peer = node_of(1);
    for (int round = 0; round < WAIT_ROUNDS_MAX && peer->got_count == 0; round++) {
        send_from(0, 2, "found", 5);
        pump();
    }
    ck_assert_uint_ge(peer->got_count, 1);
    ck_assert_uint_eq(peer->got[0].from, 1);
    ck_assert_uint_eq(peer->got[0].len, 5);
    ck_assert_uint_ge(st->reconnects, 1);
}
END_TEST

/* ---- garbage ------------------------------------------------------------------------------------
 */

static int raw_connect(int server_loop, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons(shim_net_listen_port(loops[server_loop].net))};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void raw_send(int fd, const void *buf, size_t len) {
    ck_assert_int_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void hello(uint8_t *p, uint8_t kind, uint32_t id) {
    rq_put_u32(p, SHIM_NET_MAGIC);
    rq_put_u16(p + 4, SHIM_NET_VERSION);
    p[6] = kind;
    p[7] = 0;
    rq_put_u32(p + 8, id);
    rq_put_u32(p + 12, rq_crc32c(0, p, 12));
}

static void envelope(uint8_t *p, uint32_t len, const void *body) {
    rq_put_u32(p, len);
    rq_put_u32(p + 4, rq_crc32c(0, body, len));
}

/* 1 once the server closed fd (EOF or reset); reads and discards what it sent. */
static int raw_closed(int fd) {
    uint8_t buf[4096];
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

enum { BAD_MAGIC, BAD_VERSION, BAD_CRC, OVERSIZED, HALF_ENVELOPE, GARBAGE_CASES };

START_TEST(garbage_connections_are_closed_and_the_server_keeps_serving) {
    int which = _i;
    start_server(0, 1, "127.0.0.1:0", NULL, 0);
    start_client(1, 0, 1);
    client_round_trip(1, 0, 1); /* a good client, connected before the garbage */
    int fd = raw_connect(0, 0);
    uint8_t buf[SHIM_NET_HELLO_SIZE + SHIM_NET_ENVELOPE_SIZE + 16];
    uint8_t body[16] = "0123456789abcdef";
    if (which == OVERSIZED) { /* from a "peer" this time */
        hello(buf, SHIM_NET_KIND_PEER, 7);
    } else {
        hello(buf, SHIM_NET_KIND_CLIENT, 4242);
    }
    uint8_t *env = buf + SHIM_NET_HELLO_SIZE;
    envelope(env, sizeof body, body);
    memcpy(env + SHIM_NET_ENVELOPE_SIZE, body, sizeof body);
    const struct shim_net_stats *st = stats_of(0);
    switch (which) {
    case BAD_MAGIC: buf[0] ^= 0xff; break;
    case BAD_VERSION:
        rq_put_u16(buf + 4, 99);
        rq_put_u32(buf + 12, rq_crc32c(0, buf, 12)); /* a well-formed hello of another version */
        break;
    case BAD_CRC: env[SHIM_NET_ENVELOPE_SIZE + 3] ^= 1; break;
    case OVERSIZED: rq_put_u32(env, RQ_MSG_MAX + 1); break;
    default: break;
    }
    if (which == HALF_ENVELOPE) {
        raw_send(fd, buf, SHIM_NET_HELLO_SIZE + SHIM_NET_ENVELOPE_SIZE + 5);
        close(fd); /* whether the server reads the bytes before or with the EOF, they are short */
        WAIT_FOR(st->truncated == 1);
        WAIT_FOR(node_of(0)->conn_closed == 1); /* its hello was a client's: the node knew it */
    } else {
        raw_send(fd, buf, sizeof buf);
        WAIT_FOR(raw_closed(fd));
        close(fd);
    }
    ck_assert_uint_eq(st->bad_hello, which == BAD_MAGIC || which == BAD_VERSION);
    ck_assert_uint_eq(st->bad_envelope, which == BAD_CRC || which == OVERSIZED);
    ck_assert_uint_eq(st->truncated, which == HALF_ENVELOPE);
    if (which == BAD_CRC) WAIT_FOR(node_of(0)->conn_closed == 1);
    ck_assert_uint_eq(node_of(0)->client_msgs, 1); /* nothing of the garbage was delivered */
    client_round_trip(1, 0, 1);                    /* the good client is still served */
    start_client(2, 0, 1);                         /* and new ones too */
    client_round_trip(2, 0, 1);
}
END_TEST

/* ---- a slow client -------------------------------------------------------------------------- */

START_TEST(a_client_that_never_reads_is_closed_at_the_output_bound) {
    struct tnode_config cfg = {.reply_bytes = SLOW_REPLY_BYTES};
    start_server(0, 1, "127.0.0.1:0", &cfg, SHIM_NET_OUT_BYTES_MIN);
    int fd = raw_connect(0, 4096);
    enum { REQUESTS = 64 }; /* 64 x 256 KiB answers: far beyond kernel buffers plus the bound */
    uint8_t buf[SHIM_NET_HELLO_SIZE + REQUESTS * (SHIM_NET_ENVELOPE_SIZE + 1)];
    hello(buf, SHIM_NET_KIND_CLIENT, 5000);
    for (int k = 0; k < REQUESTS; k++) {
        uint8_t *p = buf + SHIM_NET_HELLO_SIZE + k * (SHIM_NET_ENVELOPE_SIZE + 1);
        p[SHIM_NET_ENVELOPE_SIZE] = (uint8_t)k;
        envelope(p, 1, p + SHIM_NET_ENVELOPE_SIZE);
    }
    raw_send(fd, buf, sizeof buf);
    const struct shim_net_stats *st = stats_of(0);
    WAIT_FOR(node_of(0)->conn_closed == 1);
    ck_assert_uint_eq(st->client_overflows, 1);
    ck_assert_uint_le(st->out_buffered_max, SHIM_NET_OUT_BYTES_MIN);
    ck_assert_uint_lt(node_of(0)->client_msgs, REQUESTS); /* the rest was never read */
    close(fd);
    for (int k = 0; k < 20; k++)
        pump();
    ck_assert_uint_eq(node_of(0)->conn_closed, 1);
    ck_assert_uint_eq(st->conns_open, 0);
}
END_TEST

/* ---- time: hello and idle timeouts; idle memory ---------------------------------------------- */

START_TEST(silent_connections_are_closed_at_their_hello_and_idle_timeouts) {
    struct shim_net_config net = {.listen_address = "127.0.0.1:0",
                                  .hello_timeout_ms = 100,
                                  .idle_timeout_ms = 300};
    start_loop(0, 1, &net, NULL);
    const struct shim_net_stats *st = stats_of(0);
    int mute = raw_connect(0, 0); /* never says hello */
    int quiet = raw_connect(0, 0);
    uint8_t h[SHIM_NET_HELLO_SIZE];
    hello(h, SHIM_NET_KIND_CLIENT, 6000);
    raw_send(quiet, h, sizeof h); /* says hello, then nothing */
    WAIT_FOR(raw_closed(mute) && raw_closed(quiet));
    ck_assert_uint_eq(st->hello_timeouts, 1);
    ck_assert_uint_eq(st->idle_closed, 1);
    WAIT_FOR(node_of(0)->conn_closed == 1); /* the client the node knew is reported closed */
    ck_assert_uint_eq(st->conns_open, 0);
    close(mute);
    close(quiet);
    start_client(1, 0, 1); /* the server still serves */
    client_round_trip(1, 0, 1);
}
END_TEST

START_TEST(buffers_a_burst_grew_are_given_back_once_empty) {
    struct tnode_config cfg = {.reply_bytes = SLOW_REPLY_BYTES};
    start_server(0, 1, "127.0.0.1:0", &cfg, 0);
    start_client(1, 0, 1);
    uint8_t *q = pattern(SLOW_REPLY_BYTES, 5);
    for (uint32_t k = 0; k < 3; k++) { /* large both ways: both sides' buffers grow */
        send_from(1, 1, q, SLOW_REPLY_BYTES);
        WAIT_FOR(node_of(1)->got_count == k + 1);
    }
    free(q);
    const struct shim_net_stats *st = stats_of(0);
    ck_assert_uint_eq(node_of(0)->client_msgs, 3);
    /* Buffers grown by the burst are kept while it lasts (not asserted: when the tick runs is up
     * to the clock) and given back by the tick once they are empty. */
    WAIT_FOR(st->buffer_bytes <= 2u * SHIM_NET_BUF_IDLE_BYTES);
    WAIT_FOR(stats_of(1)->buffer_bytes <= 2u * SHIM_NET_BUF_IDLE_BYTES);
    ck_assert_uint_eq(st->conns_open, 1); /* trimmed, not closed: it still works */
    send_from(1, 1, "again", 5);
    WAIT_FOR(node_of(1)->got_count == 4);
}
END_TEST

/* ---- the bound on accepted connections ------------------------------------------------------ */

START_TEST(connections_beyond_the_bound_are_refused_and_a_close_makes_room) {
    struct shim_net_config net = {.listen_address = "127.0.0.1:0", .conns_max = 2};
    start_loop(0, 1, &net, NULL);
    const struct shim_net_stats *st = stats_of(0);
    int a = raw_connect(0, 0), b = raw_connect(0, 0);
    WAIT_FOR(st->conns_accepted == 2);
    int c = raw_connect(0, 0);
    WAIT_FOR(st->conns_refused == 1);
    WAIT_FOR(raw_closed(c));
    ck_assert(!raw_closed(a));
    close(a);
    WAIT_FOR(st->conns_closed == 1);
    int d = raw_connect(0, 0);
    WAIT_FOR(st->conns_accepted == 3);
    ck_assert_uint_eq(st->conns_refused, 1);
    ck_assert_uint_eq(st->conns_open, 2);
    close(b);
    close(c);
    close(d);
}
END_TEST

/* ---- configuration -------------------------------------------------------------------------- */

START_TEST(bad_configurations_are_refused) {
    struct shim_loop l;
    char dir[128];
    snprintf(dir, sizeof dir, "%s/c-XXXXXX", root_dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct shim_net_config bad_listen = {.listen_address = "127.0.0.1"};
    struct shim_net_config client_listens = {.listen_address = "127.0.0.1:0"};
    struct shim_net_config tiny = {.listen_address = "127.0.0.1:0", .peer_out_bytes_max = 10};
    struct shim_net_peer peer = {2, "nowhere"};
    struct shim_net_config bad_peer = {
        .listen_address = "127.0.0.1:0", .peers = &peer, .peer_count = 1};
    struct shim_loop_config c = {.data_dir = dir, .ops = &tnode_ops, .node_id = 1, .seed = 1};
    c.net = &bad_listen;
    ck_assert_int_eq(shim_loop_init_config(&l, &c), RQ_EINVAL);
    c.net = &tiny;
    ck_assert_int_eq(shim_loop_init_config(&l, &c), RQ_EINVAL);
    c.net = &bad_peer;
    ck_assert_int_eq(shim_loop_init_config(&l, &c), RQ_EINVAL);
    struct shim_net_config forever = {.listen_address = "127.0.0.1:0",
                                      .idle_timeout_ms = SHIM_NET_TIMEOUT_MS_MAX + 1};
    c.net = &forever;
    ck_assert_int_eq(shim_loop_init_config(&l, &c), RQ_EINVAL);
    c.net = &client_listens;
    c.node_id = CLIENT_ID;
    ck_assert_int_eq(shim_loop_init_config(&l, &c), RQ_EINVAL);
}
END_TEST

/* ---- main ----------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void quiet_log(void *arg, enum rq_log_level level, const char *line, size_t len) {
    (void)arg;
    if (level >= RQ_LOG_ERROR) fprintf(stderr, "%.*s\n", (int)len, line);
}

static void setup(void) {
    rq_log_set_sink(quiet_log, NULL);
    rq_log_set_level(RQ_LOG_DEBUG); /* formats every line: exercises the log statements */
}

int main(void) {
    snprintf(root_dir, sizeof root_dir, "/tmp/raftq-test-net-XXXXXX");
    if (mkdtemp(root_dir) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    Suite *suite = suite_create("shim_net");
    TCase *tc = tcase_create("net");
    tcase_set_timeout(tc, 120); /* generous for sanitizer builds; not a timing test */
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, servers_exchange_messages_both_ways_with_boundaries_kept);
    tcase_add_test(tc, a_client_gets_replies_and_its_close_is_reported_once);
    tcase_add_test(tc, sends_to_a_down_peer_are_dropped_and_it_is_reached_once_up);
    tcase_add_loop_test(tc, garbage_connections_are_closed_and_the_server_keeps_serving, 0,
                        GARBAGE_CASES);
    tcase_add_test(tc, a_client_that_never_reads_is_closed_at_the_output_bound);
    tcase_add_test(tc, silent_connections_are_closed_at_their_hello_and_idle_timeouts);
    tcase_add_test(tc, buffers_a_burst_grew_are_given_back_once_empty);
    tcase_add_test(tc, connections_beyond_the_bound_are_refused_and_a_close_makes_room);
    tcase_add_test(tc, bad_configurations_are_refused);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    nftw(root_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
