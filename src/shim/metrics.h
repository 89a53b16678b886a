/* shim/metrics.h — the metrics endpoint: a minimal HTTP/1.1 server answering `GET /metrics` with
 * the Prometheus text format (version 0.0.4) that its owner renders, in the loop's thread.
 *
 * One listener and at most SHIM_METRICS_CONNS_MAX connections at once (more are accepted and
 * closed). A request is read until its blank line, at most SHIM_METRICS_REQUEST_MAX bytes (more:
 * 400 and close). `GET /metrics` (or `GET /`) renders the body (at most SHIM_METRICS_BODY_MAX
 * bytes) and answers 200; another path 404; another method 405. Every answer closes the
 * connection (`Connection: close`); an answer the socket does not take at once is written as the
 * socket drains. Nothing a client sends can crash the process or grow memory past these bounds.
 * Non-blocking sockets in the loop's epoll instance, level-triggered, MSG_NOSIGNAL. */
#ifndef RQ_SHIM_METRICS_H
#define RQ_SHIM_METRICS_H

#include <stddef.h>
#include <stdint.h>

enum {
    SHIM_METRICS_CONNS_MAX = 8,
    SHIM_METRICS_REQUEST_MAX = 4096,
    SHIM_METRICS_BODY_MAX = 1 << 20,
    /* epoll tags (below the net's SHIM_NET_TAG_CONN_MIN, never its listener tag 1, nor the
     * loop's disk tag 0) */
    SHIM_METRICS_TAG_LISTENER = 2,
    SHIM_METRICS_TAG_CONN_MIN = 16,
};

/* Writes the body into buf[0..cap) and returns its length (at most cap). */
typedef size_t (*shim_metrics_render_fn)(void *arg, char *buf, size_t cap);

struct shim_metrics;

/* Listens on address ("host:port"; port 0: any) and adds the listener to epoll_fd. Returns 0 and
 * *out, or RQ_EINVAL (a bad address), RQ_EIO (socket, bind, listen, epoll; logged), RQ_ENOMEM. */
int shim_metrics_open(struct shim_metrics **out, const char *address, int epoll_fd,
                      shim_metrics_render_fn render, void *arg);
int shim_metrics_owns_tag(uint64_t tag);
/* Handles one epoll event whose tag is the endpoint's. */
void shim_metrics_event(struct shim_metrics *m, uint64_t tag, uint32_t events);
/* The bound port (useful with port 0). */
uint16_t shim_metrics_port(const struct shim_metrics *m);
uint64_t shim_metrics_served(const struct shim_metrics *m);   /* 200 answers written */
/* Closes everything. Safe with NULL. */
void shim_metrics_close(struct shim_metrics *m);

#endif
