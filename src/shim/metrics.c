/* The metrics endpoint; see metrics.h. */
#define _GNU_SOURCE
#include "shim/metrics.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"

enum { HEADER_MAX = 256 };

struct metrics_conn {
    int fd;                          /* -1: free */
    size_t got;                      /* request bytes read */
    char request[SHIM_METRICS_REQUEST_MAX];
    char *buffer;                    /* the answer's allocation, once the request is complete */
    const char *answer;              /* header + body, inside buffer */
    size_t answer_len, answer_sent;
};

struct shim_metrics {
    int epoll_fd;
    int listen_fd;
    uint16_t port;
    shim_metrics_render_fn render;
    void *arg;
    uint64_t served;
    struct metrics_conn conns[SHIM_METRICS_CONNS_MAX];
};

int shim_metrics_owns_tag(uint64_t tag) {
    return tag == SHIM_METRICS_TAG_LISTENER ||
           (tag >= SHIM_METRICS_TAG_CONN_MIN &&
            tag < SHIM_METRICS_TAG_CONN_MIN + SHIM_METRICS_CONNS_MAX);
}

uint16_t shim_metrics_port(const struct shim_metrics *m) { return m->port; }
uint64_t shim_metrics_served(const struct shim_metrics *m) { return m->served; }

static void conn_close(struct shim_metrics *m, struct metrics_conn *c) {
    epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buffer);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* ---- the listener ----------------------------------------------------------------------------- */

/* Splits "host:port" (the last ':'; "[v6]" brackets removed) and resolves it for bind. */
static int resolve(const char *address, struct addrinfo **out) {
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || colon[1] == '\0') return RQ_EINVAL;
    char host[256];
    size_t n = (size_t)(colon - address);
    if (n >= sizeof host) return RQ_EINVAL;
    memcpy(host, address, n);
    host[n] = '\0';
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    return getaddrinfo(host, colon + 1, &hints, out) == 0 ? 0 : RQ_EINVAL;
}

static int listen_on(struct shim_metrics *m, const char *address) {
    struct addrinfo *ai = NULL;
    if (resolve(address, &ai) != 0) {
        RQ_ERROR("metrics: bad address \"%s\" (HOST:PORT expected)", address);
        return RQ_EINVAL;
    }
    int one = 1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                     bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0
                 ? 0
                 : RQ_EIO;
    if (rc != 0) RQ_ERROR("metrics: listen on %s: %s", address, strerror(errno));
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (rc == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        m->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = SHIM_METRICS_TAG_LISTENER};
    if (rc == 0 && epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) rc = RQ_EIO;
    freeaddrinfo(ai);
    if (rc != 0 && fd >= 0) close(fd);
    m->listen_fd = rc == 0 ? fd : -1;
    return rc;
}

int shim_metrics_open(struct shim_metrics **out, const char *address, int epoll_fd,
                      shim_metrics_render_fn render, void *arg) {
    struct shim_metrics *m = calloc(1, sizeof *m);
    if (m == NULL) return RQ_ENOMEM;
    m->epoll_fd = epoll_fd;
    m->render = render;
    m->arg = arg;
    for (int i = 0; i < SHIM_METRICS_CONNS_MAX; i++) m->conns[i].fd = -1;
    int rc = listen_on(m, address);
    if (rc != 0) {
        free(m);
        return rc;
    }
    RQ_INFO("metrics: serving http://%s/metrics", address);
    *out = m;
    return 0;
}

void shim_metrics_close(struct shim_metrics *m) {
    if (m == NULL) return;
    for (int i = 0; i < SHIM_METRICS_CONNS_MAX; i++)
        if (m->conns[i].fd >= 0) conn_close(m, &m->conns[i]);
    epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, m->listen_fd, NULL);
    close(m->listen_fd);
    free(m);
}

static void accept_one(struct shim_metrics *m) {
    int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;   /* EAGAIN, or a connection already gone */
    int slot = 0;
    while (slot < SHIM_METRICS_CONNS_MAX && m->conns[slot].fd >= 0) slot++;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = SHIM_METRICS_TAG_CONN_MIN + (uint64_t)slot};
    if (slot == SHIM_METRICS_CONNS_MAX || epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);   /* too many at once: refused */
        return;
    }
    memset(&m->conns[slot], 0, sizeof m->conns[slot]);
    m->conns[slot].fd = fd;
}

/* ---- one connection ---------------------------------------------------------------------------- */

/* Writes what the socket takes; closes the connection once the answer is out (or on an error). */
static void send_more(struct shim_metrics *m, struct metrics_conn *c) {
    while (c->answer_sent < c->answer_len) {
        ssize_t n = send(c->fd, c->answer + c->answer_sent, c->answer_len - c->answer_sent,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct epoll_event ev = {.events = EPOLLOUT,
                                     .data.u64 = SHIM_METRICS_TAG_CONN_MIN + (uint64_t)(c - m->conns)};
            epoll_ctl(m->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        if (n <= 0) break;
        c->answer_sent += (size_t)n;
    }
    conn_close(m, c);
}

/* Builds the answer to a complete request: status and body. */
static void answer(struct shim_metrics *m, struct metrics_conn *c, int status, const char *reason) {
    char *buf = malloc(HEADER_MAX + SHIM_METRICS_BODY_MAX);
    if (buf == NULL) {
        conn_close(m, c);
        return;
    }
    char *body = buf + HEADER_MAX;
    size_t body_len = status == 200 ? m->render(m->arg, body, SHIM_METRICS_BODY_MAX)
                                    : (size_t)snprintf(body, SHIM_METRICS_BODY_MAX, "%s\n", reason);
    RQ_ASSERT(body_len <= SHIM_METRICS_BODY_MAX);
    char header[HEADER_MAX];
    int h = snprintf(header, sizeof header,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, body_len);
    RQ_ASSERT(h > 0 && (size_t)h < sizeof header);
    memcpy(body - h, header, (size_t)h);   /* right before the body: one buffer to send */
    c->buffer = buf;
    c->answer = body - h;
    c->answer_len = (size_t)h + body_len;
    if (status == 200) m->served++;
    send_more(m, c);
}

/* The request is complete: its first line says what to answer. */
static void serve(struct shim_metrics *m, struct metrics_conn *c) {
    if (strncmp(c->request, "GET ", 4) != 0) {
        answer(m, c, 405, "Method Not Allowed");
        return;
    }
    const char *path = c->request + 4;
    size_t n = strcspn(path, " \r\n");
    int ok = (n == 8 && memcmp(path, "/metrics", 8) == 0) || (n == 1 && path[0] == '/');
    answer(m, c, ok ? 200 : 404, ok ? "OK" : "Not Found");
}

static void read_request(struct shim_metrics *m, struct metrics_conn *c) {
    size_t room = sizeof c->request - 1 - c->got;
    if (room == 0) {
        answer(m, c, 400, "Bad Request");   /* a request line and headers past the bound */
        return;
    }
    ssize_t n = recv(c->fd, c->request + c->got, room, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
        conn_close(m, c);   /* closed before a whole request, or an error */
        return;
    }
    c->got += (size_t)n;
    c->request[c->got] = '\0';
    if (strstr(c->request, "\r\n\r\n") != NULL || strstr(c->request, "\n\n") != NULL) serve(m, c);
}

void shim_metrics_event(struct shim_metrics *m, uint64_t tag, uint32_t events) {
    RQ_ASSERT(shim_metrics_owns_tag(tag));
    if (tag == SHIM_METRICS_TAG_LISTENER) {
        for (int i = 0; i < SHIM_METRICS_CONNS_MAX; i++) accept_one(m);
        return;
    }
    struct metrics_conn *c = &m->conns[tag - SHIM_METRICS_TAG_CONN_MIN];
    if (c->fd < 0) return;   /* closed earlier in this wake-up */
    if (c->buffer != NULL) send_more(m, c);
    else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) read_request(m, c);
}
