/* shim/net.c — non-blocking TCP for io.h's send/reply: hellos, envelopes, bounded buffers,
 * lazy reconnect with back-off. The contract and the bounds are in net.h; the format in
 * docs/protocol.md ("Transport: hello and envelope"). */
#define _GNU_SOURCE
#include "shim/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/rng.h"
#include "shim/wallclock.h"

enum {
    POOL = SHIM_NET_CONNS_MAX + RQ_NODE_ID_MAX + 1, /* accepted slots, then one per node id */
    SLOT_MASK = SHIM_NET_TAG_CONN_MIN - 1,
    LISTEN_BACKLOG = 128,
    FLUSH_ROUNDS_MAX = 8,   /* flush <-> conn_closed handlers sending again */
    EINTR_RETRIES_MAX = 16, /* a signal storm must not pin the loop */
    ROLE_ACCEPTED = 1,
    ROLE_LINK = 2,
    ST_CONNECTING = 1, /* link: non-blocking connect in progress */
    ST_HELLO = 2,      /* accepted: waiting for the hello */
    ST_OPEN = 3,
};

struct net_conn {
    uint64_t id; /* serial << SLOT_BITS | slot; 0 = free slot */
    int fd;      /* -1 once closed (a dead connection keeps its slot until reaped) */
    uint8_t role, state, kind, dead, dirty, want_out, connected;
    uint32_t node_id; /* accepted: the sender named by the hello; link: the destination */
    uint64_t dial_ns;
    uint64_t opened_ns;  /* accepted or dialed */
    uint64_t last_in_ns; /* bytes last received (opened_ns before any) */
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_head, out_tail, out_cap, out_max;
};

struct net_link {
    char address[SHIM_NET_ADDRESS_MAX]; /* "" = unknown */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint64_t conn_id; /* 0 = none */
    uint32_t failures;
    uint64_t next_dial_ns;
    int dialed_before;
};

struct shim_net {
    uint32_t node_id;
    int is_client;
    int epoll_fd;
    int listen_fd;
    uint16_t listen_port;
    int listener_paused;
    size_t peer_out_max, client_out_max;
    uint32_t conns_max, accepted_open;
    uint64_t hello_timeout_ns, idle_timeout_ns;
    uint64_t next_tick_ns;
    uint64_t serial;
    struct rq_rng rng;
    struct shim_net_handlers h;
    struct shim_net_stats stats;
    uint64_t dirty[POOL]; /* ids of connections with output to write */
    uint32_t dirty_count;
    uint64_t dead[POOL]; /* ids of connections closed and not yet reaped */
    uint32_t dead_count;
    struct net_conn conns[POOL];
    struct net_link links[RQ_NODE_ID_MAX + 1];
};

static uint64_t now_ns(void) { return rq_shim_monotonic_ns(); }

static struct net_conn *conn_get(struct shim_net *n, uint64_t id) {
    if (id < SHIM_NET_TAG_CONN_MIN) return NULL;
    uint64_t slot = id & SLOT_MASK;
    if (slot >= POOL) return NULL;
    struct net_conn *c = &n->conns[slot];
    return c->id == id ? c : NULL;
}

/* ---- addresses ------------------------------------------------------------------------------- */

/* "host:port" or "[v6]:port" -> sockaddr. Resolved once, at configuration (getaddrinfo may block
 * on DNS, which is acceptable only then). */
static int addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len) {
    char host[SHIM_NET_ADDRESS_MAX];
    size_t text_len = strnlen(text, SHIM_NET_ADDRESS_MAX);
    const char *colon = strrchr(text, ':');
    if (text_len == 0 || text_len >= SHIM_NET_ADDRESS_MAX || colon == NULL) return RQ_EINVAL;
    const char *h = text;
    size_t host_len = (size_t)(colon - text);
    if (host_len >= 2 && text[0] == '[' && text[host_len - 1] == ']') {
        h = text + 1;
        host_len -= 2;
    }
    if (host_len == 0 || colon[1] == '\0') return RQ_EINVAL;
    memcpy(host, h, host_len);
    host[host_len] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL) return RQ_EINVAL;
    RQ_ASSERT(res->ai_addrlen <= sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* ---- connections: creation, death, reaping --------------------------------------------------- */

static void epoll_update(struct shim_net *n, struct net_conn *c) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (c->want_out || c->state == ST_CONNECTING ? EPOLLOUT : 0u);
    ev.data.u64 = c->id;
    if (epoll_ctl(n->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        RQ_ERROR("net: epoll_ctl: %s", strerror(errno)); /* cannot happen with a valid fd */
    }
}

/* Takes fd into slot and epoll. 0, or RQ_EIO (fd is then closed). */
static int conn_new(struct shim_net *n, uint32_t slot, int fd, uint8_t role, uint8_t state) {
    struct net_conn *c = &n->conns[slot];
    RQ_ASSERT(c->id == 0);
    memset(c, 0, sizeof *c);
    c->id = (++n->serial << SHIM_NET_SLOT_BITS) | slot;
    c->fd = fd;
    c->role = role;
    c->state = state;
    c->out_max = role == ROLE_ACCEPTED ? n->client_out_max : n->peer_out_max;
    c->opened_ns = c->last_in_ns = now_ns();
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (state == ST_CONNECTING ? EPOLLOUT : 0u);
    ev.data.u64 = c->id;
    if (epoll_ctl(n->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        RQ_ERROR("net: epoll_ctl add: %s", strerror(errno));
        close(fd);
        c->id = 0;
        return RQ_EIO;
    }
    n->stats.conns_open++;
    return 0;
}

/* Closes the socket now; the slot, buffers and the node's on_conn_closed wait for conn_reap (in
 * flush), because this may run inside a handler that is still reading this connection's input. */
static void conn_fail(struct shim_net *n, struct net_conn *c, enum rq_log_level level,
                      const char *why) {
    if (c->dead) return;
    if (rq_log_enabled(level)) {
        rq_log(level, "net: closing %s connection %llu (node %u): %s",
               c->role == ROLE_LINK ? "outbound" : "accepted", (unsigned long long)c->id,
               c->node_id, why);
    }
    c->dead = 1;
    epoll_ctl(n->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    RQ_ASSERT(n->dead_count < POOL); /* each slot is dead at most once until reaped */
    n->dead[n->dead_count++] = c->id;
}

/* Jittered exponential back-off: the next dial of this link waits a delay drawn from
 * [base/2, base], base = 2 * MIN doubling per consecutive failure, capped at MAX. */
static void link_backoff(struct shim_net *n, struct net_link *link) {
    uint64_t base = 2u * SHIM_NET_BACKOFF_MIN_MS;
    for (uint32_t i = 0; i < link->failures && base < SHIM_NET_BACKOFF_MAX_MS; i++)
        base *= 2;
    if (base > SHIM_NET_BACKOFF_MAX_MS) base = SHIM_NET_BACKOFF_MAX_MS;
    uint64_t delay_ms = rq_rng_range(&n->rng, base / 2, base);
    link->next_dial_ns = now_ns() + delay_ms * 1000000u;
    if (link->failures < 64) link->failures++;
}

static void listener_pause(struct shim_net *n) {
    struct epoll_event ev = {.events = 0, .data.u64 = SHIM_NET_TAG_LISTENER};
    if (epoll_ctl(n->epoll_fd, EPOLL_CTL_MOD, n->listen_fd, &ev) == 0) n->listener_paused = 1;
}

static void listener_resume(struct shim_net *n) {
    if (!n->listener_paused) return;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = SHIM_NET_TAG_LISTENER};
    if (epoll_ctl(n->epoll_fd, EPOLL_CTL_MOD, n->listen_fd, &ev) == 0) n->listener_paused = 0;
}

static void conn_reap(struct shim_net *n, struct net_conn *c) {
    RQ_ASSERT(c->dead);
    uint64_t id = c->id;
    int tell_node =
        c->role == ROLE_ACCEPTED && c->kind == SHIM_NET_KIND_CLIENT && c->state == ST_OPEN;
    n->stats.bytes_discarded += c->out_tail - c->out_head;
    if (c->role == ROLE_LINK) {
        struct net_link *link = &n->links[c->node_id];
        RQ_ASSERT(link->conn_id == id);
        link->conn_id = 0;
        if (c->connected) link->failures = 0; /* it worked: start the back-off over */
        link_backoff(n, link);
    } else {
        RQ_ASSERT(n->accepted_open > 0);
        n->accepted_open--;
    }
    listener_resume(n); /* a descriptor is free again (see accept_ready) */
    n->stats.buffer_bytes -= c->in_cap + c->out_cap;
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->fd = -1;
    n->stats.conns_open--;
    n->stats.conns_closed++;
    if (tell_node) n->h.conn_closed(n->h.arg, id); /* after the slot is free: it may send */
}

/* ---- output ---------------------------------------------------------------------------------- */

static void mark_dirty(struct shim_net *n, struct net_conn *c) {
    if (c->dirty) return;
    c->dirty = 1;
    RQ_ASSERT(n->dirty_count < POOL);
    n->dirty[n->dirty_count++] = c->id;
}

/* Appends head and body to c's output. 0, or RQ_EBUSY (over the bound; nothing appended) or
 * RQ_ENOMEM. The buffer grows only as far as out_max. */
static int out_append(struct shim_net *n, struct net_conn *c, const uint8_t *head, size_t head_len,
                      const void *body, size_t body_len) {
    size_t need = head_len + body_len;
    size_t used = c->out_tail - c->out_head;
    if (used + need > c->out_max) return RQ_EBUSY;
    if (c->out_cap - c->out_tail < need && c->out_head > 0) { /* compact */
        memmove(c->out, c->out + c->out_head, used);
        c->out_head = 0;
        c->out_tail = used;
    }
    if (c->out_cap - c->out_tail < need) {
        size_t cap = c->out_cap * 2;
        if (cap < used + need) cap = used + need;
        if (cap < SHIM_NET_BUF_IDLE_BYTES) cap = SHIM_NET_BUF_IDLE_BYTES;
        if (cap > c->out_max) cap = c->out_max;
        uint8_t *p = realloc(c->out, cap);
        if (p == NULL) return RQ_ENOMEM;
        n->stats.buffer_bytes += cap - c->out_cap;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_tail, head, head_len);
    if (body_len > 0) memcpy(c->out + c->out_tail + head_len, body, body_len);
    c->out_tail += need;
    if (c->out_tail - c->out_head > n->stats.out_buffered_max)
        n->stats.out_buffered_max = c->out_tail - c->out_head;
    mark_dirty(n, c);
    return 0;
}

static int append_message(struct shim_net *n, struct net_conn *c, const void *buf, size_t len) {
    uint8_t head[SHIM_NET_ENVELOPE_SIZE];
    rq_put_u32(head, (uint32_t)len);
    rq_put_u32(head + 4, rq_crc32c(0, buf, len));
    return out_append(n, c, head, sizeof head, buf, len);
}

/* Writes until the kernel says EAGAIN (then EPOLLOUT is asked for) or the buffer is empty. */
static void conn_write(struct shim_net *n, struct net_conn *c) {
    RQ_ASSERT(!c->dead);
    RQ_ASSERT(c->state != ST_CONNECTING);
    int interrupts = 0;
    while (c->out_head < c->out_tail) {
        ssize_t r = send(c->fd, c->out + c->out_head, c->out_tail - c->out_head, MSG_NOSIGNAL);
        if (r > 0) {
            c->out_head += (size_t)r;
            n->stats.bytes_written += (uint64_t)r;
        } else if (r < 0 && errno == EINTR && ++interrupts < EINTR_RETRIES_MAX) {
            continue;
        } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            if (!c->want_out) {
                c->want_out = 1;
                epoll_update(n, c);
            }
            return;
        } else {
            conn_fail(n, c, RQ_LOG_INFO, r < 0 ? strerror(errno) : "send returned 0");
            return;
        }
    }
    c->out_head = c->out_tail = 0; /* the memory stays for the next burst; see buffers_trim */
    if (c->want_out) {
        c->want_out = 0;
        epoll_update(n, c);
    }
}

/* ---- dialing --------------------------------------------------------------------------------- */

static void put_hello(uint8_t *p, uint8_t kind, uint32_t node_id) {
    rq_put_u32(p, SHIM_NET_MAGIC);
    rq_put_u16(p + 4, SHIM_NET_VERSION);
    p[6] = kind;
    p[7] = 0; /* flags */
    rq_put_u32(p + 8, node_id);
    rq_put_u32(p + 12, rq_crc32c(0, p, 12));
}

/* Nagle off (writes are already batched) and TCP keep-alive, so a peer that vanished without a
 * FIN or RST (power loss, a dropped route) is noticed even on a connection we only read from. */
static int socket_options(int fd) {
    int one = 1, idle = SHIM_NET_KEEPALIVE_IDLE_S, interval = SHIM_NET_KEEPALIVE_INTERVAL_S,
        count = SHIM_NET_KEEPALIVE_PROBES;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0) return -1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0) return -1;
    return setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

/* Starts a non-blocking connect to node `to` with the hello queued. NULL when it failed at once
 * (the link then backs off). */
static struct net_conn *dial(struct shim_net *n, uint32_t to) {
    struct net_link *link = &n->links[to];
    uint32_t slot = SHIM_NET_CONNS_MAX + to;
    n->stats.dials++;
    if (link->dialed_before) n->stats.reconnects++;
    link->dialed_before = 1;
    int fd = socket(link->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -1 : socket_options(fd);
    if (rc == 0) rc = connect(fd, (const struct sockaddr *)&link->addr, link->addr_len);
    if (rc != 0 && errno != EINPROGRESS) {
        RQ_DEBUG("net: dial node %u at %s: %s", to, link->address, strerror(errno));
        if (fd >= 0) close(fd);
        n->stats.dial_failures++;
        link_backoff(n, link);
        return NULL;
    }
    if (conn_new(n, slot, fd, ROLE_LINK, rc == 0 ? ST_OPEN : ST_CONNECTING) != 0) {
        n->stats.dial_failures++;
        link_backoff(n, link);
        return NULL;
    }
    struct net_conn *c = &n->conns[slot];
    c->node_id = to;
    c->connected = rc == 0;
    c->dial_ns = now_ns();
    link->conn_id = c->id;
    uint8_t hello[SHIM_NET_HELLO_SIZE];
    put_hello(hello, n->is_client ? SHIM_NET_KIND_CLIENT : SHIM_NET_KIND_PEER, n->node_id);
    if (out_append(n, c, hello, sizeof hello, NULL, 0) != 0) {
        conn_fail(n, c, RQ_LOG_ERROR, "out of memory for the hello");
        return NULL;
    }
    return c;
}

/* The connection to send to `to` over: the current one, or a new dial once the back-off allows. */
static struct net_conn *link_conn(struct shim_net *n, uint32_t to) {
    struct net_link *link = &n->links[to];
    struct net_conn *c = conn_get(n, link->conn_id);
    if (c != NULL && c->dead) return NULL; /* reaped (and backed off) at the next flush */
    if (c != NULL && c->state == ST_CONNECTING &&
        now_ns() - c->dial_ns > (uint64_t)SHIM_NET_CONNECT_TIMEOUT_MS * 1000000u) {
        n->stats.connect_timeouts++;
        conn_fail(n, c, RQ_LOG_INFO, "connect timed out");
        return NULL;
    }
    if (c != NULL) return c;
    if (now_ns() < link->next_dial_ns) return NULL;
    return dial(n, to);
}

static void connect_done(struct shim_net *n, struct net_conn *c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return; /* spurious wake-up */
    if (err != 0) {
        n->stats.dial_failures++;
        conn_fail(n, c, RQ_LOG_DEBUG, strerror(err));
        return;
    }
    c->state = ST_OPEN;
    c->connected = 1; /* its death will restart the back-off from the bottom */
    RQ_DEBUG("net: connected to node %u at %s", c->node_id, n->links[c->node_id].address);
    epoll_update(n, c); /* EPOLLOUT only while output waits */
    conn_write(n, c);
}

/* ---- input ----------------------------------------------------------------------------------- */

/* NULL if the hello is acceptable (kind and id filled), else why not. */
static const char *hello_check(const struct shim_net *n, const uint8_t *p, uint8_t *kind,
                               uint32_t *id) {
    if (rq_get_u32(p) != SHIM_NET_MAGIC) return "bad hello magic";
    if (rq_get_u32(p + 12) != rq_crc32c(0, p, 12)) return "bad hello CRC";
    if (rq_get_u16(p + 4) != SHIM_NET_VERSION) return "unsupported hello version";
    if (p[7] != 0) return "hello flags not 0";
    *kind = p[6];
    *id = rq_get_u32(p + 8);
    if (*kind == SHIM_NET_KIND_PEER) {
        if (*id == 0 || *id > RQ_NODE_ID_MAX) return "peer hello with an id out of range";
        if (*id == n->node_id) return "peer hello with our own id";
        return NULL;
    }
    if (*kind == SHIM_NET_KIND_CLIENT) {
        if (*id <= RQ_NODE_ID_MAX) return "client hello with a server's id";
        return NULL;
    }
    return "unknown hello kind";
}

static void deliver(struct shim_net *n, struct net_conn *c, const uint8_t *body, uint32_t len) {
    n->stats.msgs_in++;
    n->stats.bytes_in += len;
    if (c->role == ROLE_ACCEPTED && c->kind == SHIM_NET_KIND_CLIENT) {
        n->h.client_message(n->h.arg, c->id, body, len);
    } else {
        n->h.peer_message(n->h.arg, c->node_id, body, len);
    }
}

/* Consumes the hello (accepted connections) and every whole envelope in c->in, delivering each
 * (the handler may reply, send, or even close c: closing is deferred, so c->in stays valid).
 * What is left is one incomplete unit, whose length field (if present) has been checked. */
static void conn_parse(struct shim_net *n, struct net_conn *c) {
    size_t pos = 0;
    if (c->state == ST_HELLO) {
        if (c->in_len < SHIM_NET_HELLO_SIZE) return;
        const char *why = hello_check(n, c->in, &c->kind, &c->node_id);
        if (why != NULL) {
            n->stats.bad_hello++;
            conn_fail(n, c, RQ_LOG_WARN, why);
            return;
        }
        c->state = ST_OPEN;
        pos = SHIM_NET_HELLO_SIZE;
        RQ_DEBUG("net: connection %llu: hello from %s %u", (unsigned long long)c->id,
                 c->kind == SHIM_NET_KIND_PEER ? "peer" : "client", c->node_id);
    }
    while (!c->dead) {
        size_t avail = c->in_len - pos;
        if (avail < SHIM_NET_ENVELOPE_SIZE) break;
        uint32_t len = rq_get_u32(c->in + pos);
        if (len > RQ_MSG_MAX) { /* checked first: a sender can never make us buffer more */
            n->stats.bad_envelope++;
            conn_fail(n, c, RQ_LOG_WARN, "envelope length over RQ_MSG_MAX");
            return;
        }
        if (avail < SHIM_NET_ENVELOPE_SIZE + (size_t)len) break;
        const uint8_t *body = c->in + pos + SHIM_NET_ENVELOPE_SIZE;
        if (rq_get_u32(c->in + pos + 4) != rq_crc32c(0, body, len)) {
            n->stats.bad_envelope++;
            conn_fail(n, c, RQ_LOG_WARN, "bad envelope CRC");
            return;
        }
        pos += SHIM_NET_ENVELOPE_SIZE + (size_t)len;
        deliver(n, c, body, len);
    }
    if (c->dead) return;
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
}

/* The size of the unit (hello or envelope) c->in holds the beginning of, once complete. */
static size_t unit_need(const struct net_conn *c) {
    if (c->state == ST_HELLO) return SHIM_NET_HELLO_SIZE;
    if (c->in_len < SHIM_NET_ENVELOPE_SIZE) return SHIM_NET_ENVELOPE_SIZE;
    return SHIM_NET_ENVELOPE_SIZE + (size_t)rq_get_u32(c->in); /* checked by conn_parse */
}

/* Makes room for a unit of `need` bytes in total (need > in_len). 0 or RQ_ENOMEM. */
static int in_reserve(struct shim_net *n, struct net_conn *c, size_t need) {
    RQ_ASSERT(need <= SHIM_NET_IN_BYTES_MAX);
    RQ_ASSERT(c->in_len < need);
    size_t cap = need > SHIM_NET_BUF_IDLE_BYTES ? need : SHIM_NET_BUF_IDLE_BYTES;
    if (c->in_cap >= cap) return 0;
    uint8_t *p = realloc(c->in, cap);
    if (p == NULL) return RQ_ENOMEM;
    n->stats.buffer_bytes += cap - c->in_cap;
    c->in = p;
    c->in_cap = cap;
    return 0;
}

static void conn_closed_by_remote(struct shim_net *n, struct net_conn *c) {
    if (c->in_len > 0) {
        n->stats.truncated++;
        conn_fail(n, c, RQ_LOG_WARN, "closed in the middle of a hello or an envelope");
    } else {
        conn_fail(n, c, RQ_LOG_DEBUG, "closed by the other side");
    }
}

/* Reads at most SHIM_NET_READ_BYTES_MAX (level-triggered epoll brings us back for the rest). */
static void conn_read(struct shim_net *n, struct net_conn *c) {
    size_t budget = SHIM_NET_READ_BYTES_MAX;
    int interrupts = 0;
    while (!c->dead && budget > 0) {
        if (in_reserve(n, c, unit_need(c)) != 0) {
            conn_fail(n, c, RQ_LOG_ERROR, "out of memory for input");
            return;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t r = recv(c->fd, c->in + c->in_len, room < budget ? room : budget, 0);
        if (r > 0 && c->role == ROLE_LINK && !n->is_client) {
            n->stats.protocol_errors++;
            conn_fail(n, c, RQ_LOG_WARN, "bytes received on an outbound peer link");
            return;
        }
        if (r > 0) {
            c->last_in_ns = now_ns();
            c->in_len += (size_t)r;
            budget -= (size_t)r;
            conn_parse(n, c);
        } else if (r == 0) {
            conn_closed_by_remote(n, c);
        } else if (errno == EINTR && ++interrupts < EINTR_RETRIES_MAX) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            return;
        } else {
            conn_fail(n, c, RQ_LOG_INFO, strerror(errno));
        }
    }
}

/* ---- accepting ------------------------------------------------------------------------------- */

static uint32_t free_accept_slot(const struct shim_net *n) {
    for (uint32_t slot = 0; slot < n->conns_max; slot++) {
        if (n->conns[slot].id == 0) return slot;
    }
    RQ_UNREACHABLE(); /* accepted_open < conns_max, and only accepted connections use these */
}

static void accept_ready(struct shim_net *n) {
    for (int i = 0; i < SHIM_NET_ACCEPTS_MAX; i++) {
        int fd = accept4(n->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED)) continue;
        if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (fd < 0) { /* EMFILE, ENOBUFS...: level-triggered, the listener would spin */
            n->stats.accept_errors++;
            RQ_WARN("net: accept: %s; not accepting until a connection closes", strerror(errno));
            listener_pause(n);
            return;
        }
        if (n->accepted_open >= n->conns_max) {
            close(fd);
            n->stats.conns_refused++;
            RQ_INFO("net: refused a connection: %u accepted already", n->accepted_open);
            continue;
        }
        (void)socket_options(fd); /* optimisations and a safety net, not requirements */
        if (conn_new(n, free_accept_slot(n), fd, ROLE_ACCEPTED, ST_HELLO) != 0) continue;
        n->accepted_open++;
        n->stats.conns_accepted++;
    }
}

/* ---- the API --------------------------------------------------------------------------------- */

int shim_net_owns_tag(uint64_t tag) {
    return tag == SHIM_NET_TAG_LISTENER || tag >= SHIM_NET_TAG_CONN_MIN;
}

void shim_net_event(struct shim_net *n, uint64_t tag, uint32_t events) {
    if (tag == SHIM_NET_TAG_LISTENER) {
        accept_ready(n);
        return;
    }
    struct net_conn *c = conn_get(n, tag);
    if (c == NULL || c->dead) return; /* closed earlier in this batch of events */
    if (c->state == ST_CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) connect_done(n, c);
        return;
    }
    if (events & EPOLLOUT) conn_write(n, c);
    if (!c->dead && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) conn_read(n, c);
}

void shim_net_send(struct shim_net *n, uint32_t to_node, const void *buf, size_t len) {
    if (len > RQ_MSG_MAX) {
        n->stats.drop_too_big++;
        return;
    }
    if (to_node == 0 || to_node > RQ_NODE_ID_MAX || to_node == n->node_id ||
        n->links[to_node].addr_len == 0) {
        n->stats.drop_unknown_node++;
        return;
    }
    struct net_conn *c = link_conn(n, to_node);
    if (c == NULL) {
        n->stats.drop_unreachable++;
        return;
    }
    if (append_message(n, c, buf, len) != 0) {
        n->stats.drop_full++;
        return;
    }
    n->stats.msgs_out++;
    n->stats.bytes_out += len;
}

void shim_net_reply(struct shim_net *n, uint64_t conn, const void *buf, size_t len) {
    if (len > RQ_MSG_MAX) {
        n->stats.drop_too_big++;
        return;
    }
    struct net_conn *c = conn_get(n, conn);
    if (c == NULL || c->dead || c->role != ROLE_ACCEPTED || c->kind != SHIM_NET_KIND_CLIENT ||
        c->state != ST_OPEN) {
        n->stats.drop_unknown_conn++;
        return;
    }
    if (append_message(n, c, buf, len) != 0) {
        /* A client that does not read its answers: closing it is the only bounded answer. */
        n->stats.client_overflows++;
        n->stats.bytes_discarded += len;
        conn_fail(n, c, RQ_LOG_WARN, "client output over its bound (client not reading)");
        return;
    }
    n->stats.msgs_out++;
    n->stats.bytes_out += len;
}

void shim_net_flush(struct shim_net *n) {
    for (int round = 0; round < FLUSH_ROUNDS_MAX && shim_net_pending(n); round++) {
        uint32_t count = n->dirty_count;
        for (uint32_t i = 0; i < count; i++) {
            struct net_conn *c = conn_get(n, n->dirty[i]);
            if (c == NULL) continue;
            c->dirty = 0;
            if (!c->dead && c->state != ST_CONNECTING) conn_write(n, c); /* calls no handler */
        }
        RQ_ASSERT(n->dirty_count == count);
        n->dirty_count = 0;
        while (n->dead_count > 0) { /* conn_closed handlers may send, fail or add more */
            struct net_conn *c = conn_get(n, n->dead[--n->dead_count]);
            RQ_ASSERT(c != NULL);
            conn_reap(n, c);
        }
    }
}

/* ---- maintenance ----------------------------------------------------------------------------- */

/* Gives back an empty buffer that a burst grew past SHIM_NET_BUF_IDLE_BYTES. Done here, at most
 * once per SHIM_NET_TICK_MS, rather than each time a buffer empties: a busy connection empties
 * its buffers many times a millisecond, and freeing and allocating a large buffer each time costs
 * page faults (zeroed fresh pages) for every message. */
static void buffers_trim(struct shim_net *n, struct net_conn *c) {
    if (c->in_len == 0 && c->in_cap > SHIM_NET_BUF_IDLE_BYTES) {
        n->stats.buffer_bytes -= c->in_cap;
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    if (c->out_head == c->out_tail && c->out_cap > SHIM_NET_BUF_IDLE_BYTES) {
        n->stats.buffer_bytes -= c->out_cap;
        free(c->out);
        c->out = NULL;
        c->out_cap = c->out_head = c->out_tail = 0;
    }
}

void shim_net_tick(struct shim_net *n) {
    uint64_t now = now_ns();
    if (now < n->next_tick_ns) return;
    n->next_tick_ns = now + (uint64_t)SHIM_NET_TICK_MS * 1000000u;
    for (uint32_t slot = 0; slot < POOL; slot++) {
        struct net_conn *c = &n->conns[slot];
        if (c->id == 0 || c->dead) continue;
        if (c->role == ROLE_ACCEPTED && c->state == ST_HELLO &&
            now - c->opened_ns > n->hello_timeout_ns) {
            n->stats.hello_timeouts++;
            conn_fail(n, c, RQ_LOG_INFO, "no hello within the hello timeout");
            continue;
        }
        if (c->role == ROLE_ACCEPTED && now - c->last_in_ns > n->idle_timeout_ns) {
            n->stats.idle_closed++;
            conn_fail(n, c, RQ_LOG_INFO, "nothing received within the idle timeout");
            continue;
        }
        buffers_trim(n, c);
    }
}

int shim_net_pending(const struct shim_net *n) { return n->dirty_count > 0 || n->dead_count > 0; }

const struct shim_net_stats *shim_net_stats(const struct shim_net *n) { return &n->stats; }

uint16_t shim_net_listen_port(const struct shim_net *n) { return n->listen_port; }

int shim_net_set_peer(struct shim_net *n, uint32_t node_id, const char *address) {
    if (node_id == 0 || node_id > RQ_NODE_ID_MAX || node_id == n->node_id || address == NULL)
        return RQ_EINVAL;
    struct net_link *link = &n->links[node_id];
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (addr_parse(address, &ss, &len) != 0) {
        RQ_ERROR("net: node %u: bad address \"%s\"", node_id, address);
        return RQ_EINVAL;
    }
    struct net_conn *c = conn_get(n, link->conn_id);
    if (c != NULL && strcmp(link->address, address) != 0)
        conn_fail(n, c, RQ_LOG_INFO, "peer address changed");
    snprintf(link->address, sizeof link->address, "%s", address);
    link->addr = ss;
    link->addr_len = len;
    link->failures = 0;
    link->next_dial_ns = 0;
    return 0;
}

static int listen_open(struct shim_net *n, const char *address) {
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (addr_parse(address, &ss, &len) != 0) {
        RQ_ERROR("net: bad listen address \"%s\"", address);
        return RQ_EINVAL;
    }
    int one = 1;
    n->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = SHIM_NET_TAG_LISTENER};
    if (n->listen_fd < 0 ||
        setsockopt(n->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(n->listen_fd, (const struct sockaddr *)&ss, len) != 0 ||
        listen(n->listen_fd, LISTEN_BACKLOG) != 0 ||
        getsockname(n->listen_fd, (struct sockaddr *)&ss, &len) != 0 ||
        epoll_ctl(n->epoll_fd, EPOLL_CTL_ADD, n->listen_fd, &ev) != 0) {
        RQ_ERROR("net: listen on %s: %s", address, strerror(errno));
        return RQ_EIO;
    }
    n->listen_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                    : ((struct sockaddr_in *)&ss)->sin_port);
    RQ_INFO("net: node %u listening on %s (port %u)", n->node_id, address, n->listen_port);
    return 0;
}

static int config_check(const struct shim_net_config *config, uint32_t node_id) {
    int is_client = node_id > RQ_NODE_ID_MAX;
    if (node_id == 0) return RQ_EINVAL;
    if (is_client != (config->listen_address == NULL)) return RQ_EINVAL;
    if (config->peer_count > 0 && config->peers == NULL) return RQ_EINVAL;
    if (config->peer_out_bytes_max != 0 && config->peer_out_bytes_max < SHIM_NET_OUT_BYTES_MIN)
        return RQ_EINVAL;
    if (config->client_out_bytes_max != 0 && config->client_out_bytes_max < SHIM_NET_OUT_BYTES_MIN)
        return RQ_EINVAL;
    if (config->conns_max > SHIM_NET_CONNS_MAX) return RQ_EINVAL;
    if (config->hello_timeout_ms > SHIM_NET_TIMEOUT_MS_MAX) return RQ_EINVAL;
    if (config->idle_timeout_ms > SHIM_NET_TIMEOUT_MS_MAX) return RQ_EINVAL;
    return 0;
}

int shim_net_open(struct shim_net **out, const struct shim_net_config *config, uint32_t node_id,
                  uint64_t seed, int epoll_fd, const struct shim_net_handlers *handlers) {
    *out = NULL;
    if (config_check(config, node_id) != 0) {
        RQ_ERROR("net: bad configuration for node %u", node_id);
        return RQ_EINVAL;
    }
    struct shim_net *n = calloc(1, sizeof *n);
    if (n == NULL) return RQ_ENOMEM;
    n->node_id = node_id;
    n->is_client = node_id > RQ_NODE_ID_MAX;
    n->epoll_fd = epoll_fd;
    n->listen_fd = -1;
    n->h = *handlers;
    n->peer_out_max = config->peer_out_bytes_max ? config->peer_out_bytes_max
                                                 : (size_t)SHIM_NET_PEER_OUT_BYTES_MAX;
    n->client_out_max = config->client_out_bytes_max ? config->client_out_bytes_max
                                                     : (size_t)SHIM_NET_CLIENT_OUT_BYTES_MAX;
    n->conns_max = config->conns_max ? config->conns_max : SHIM_NET_CONNS_MAX;
    n->hello_timeout_ns = (uint64_t)(config->hello_timeout_ms ? config->hello_timeout_ms
                                                              : SHIM_NET_HELLO_TIMEOUT_MS) * 1000000u;
    n->idle_timeout_ns = (uint64_t)(config->idle_timeout_ms ? config->idle_timeout_ms
                                                            : SHIM_NET_IDLE_TIMEOUT_MS) * 1000000u;
    rq_rng_seed(&n->rng, rq_mix64(seed ^ 0x6e65742d6a697474ull)); /* its own stream: "net-jitt" */
    int rc = n->is_client ? 0 : listen_open(n, config->listen_address);
    for (uint32_t i = 0; rc == 0 && i < config->peer_count; i++)
        rc = shim_net_set_peer(n, config->peers[i].node_id, config->peers[i].address);
    if (rc != 0) {
        shim_net_close(n);
        return rc;
    }
    *out = n;
    return 0;
}

void shim_net_close(struct shim_net *n) {
    if (n == NULL) return;
    for (uint32_t slot = 0; slot < POOL; slot++) {
        struct net_conn *c = &n->conns[slot];
        if (c->id == 0) continue;
        if (c->fd >= 0) close(c->fd);
        free(c->in);
        free(c->out);
    }
    if (n->listen_fd >= 0) close(n->listen_fd);
    free(n);
}
