/* client_node.h — a client process's node on the shim's loop: one rq_client (client/client.h)
 * that reaches servers known only by HOST:PORT. Shared by raftq (one node) and raftq-bench
 * cluster (one node per producer and consumer, all driven by one thread).
 *
 * The node is a CLIENT node (io.h: an id above RQ_NODE_ID_MAX) with networking and no data
 * directory. Its owner drives the loop (client_node_run_once, client_node_run_many) so that it
 * can stop when its work is done, at a deadline, or at a signal.
 *
 * Addresses and node ids. The library addresses servers by node id and shim_net maps ids to
 * addresses, but the user gives only HOST:PORTs. So:
 *   1. The bootstrap addresses get PROVISIONAL ids from the top of the server range (255, 254,
 *      ...): the library's bootstrap list is those ids, and the net maps them to the addresses.
 *      Any server answers a metadata request, so a provisional id is as good as the real one for
 *      the first question.
 *   2. Every METADATA_RESP that arrives, whichever request it answers (the library's own
 *      refreshes or the owner's describe), is read here BEFORE the library sees it: each
 *      broker's real id is mapped to its advertised address (shim_net_set_peer, only when it
 *      changed, since a change closes the link). The library can only come to send to a real id
 *      (a partition leader, the controller) after an answer named it, and that answer has mapped
 *      it first; brokers that join later are mapped by the refresh that names them.
 * Should a real broker's id equal a provisional one, the real address replaces the bootstrap's
 * for that id: still a server, so the library's bootstrap questions still get answers.
 *
 * The node has one timer (io.h): the library's wrapped set_timer records its deadline, and the
 * node asks the loop for the earlier of that and the owner's tick (tick_ms); the owner's tick hook
 * runs at every timer the node gets (its tick, or the library's).
 *
 * The owner sees what the library sends (hooks.sent) and every decoded frame before the library
 * does (hooks.frame), so it can read what the library does not pass on (raftq: a fetch answer's
 * high watermark). Hooks and callbacks run on the loop thread, inside client_node_run_*. */
#ifndef RQ_CMD_CLIENT_NODE_H
#define RQ_CMD_CLIENT_NODE_H

#include <stddef.h>
#include <stdint.h>

#include "client/client.h"
#include "proto/frame.h"
#include "shim/loop.h"
#include "shim/net.h"

enum {
    CLIENT_NODE_BOOTSTRAP_MAX = CLIENT_BOOTSTRAP_MAX - 1, /* room to make the count odd */
    CLIENT_NODE_ADDRESS_MAX = SHIM_NET_ADDRESS_MAX,       /* "host:port" with its NUL */
    CLIENT_NODE_ID_BASE = 1000, /* a node's id: base + a little randomness + its index */
    CLIENT_NODE_ID_SPREAD = 1000000,
    CLIENT_NODE_MANY_MAX = 256, /* nodes one client_node_run_many call drives */
};

_Static_assert((int)CLIENT_NODE_BOOTSTRAP_MAX <= (int)RQ_NODE_ID_MAX,
               "a provisional id per bootstrap address");

struct client_node_hooks {
    void (*start)(void *arg); /* after rq_client_start, before the first tick: first requests */
    void (*tick)(void *arg);  /* at every timer of the node (at least every tick_ms) */
    /* NULL when not wanted: */
    void (*sent)(void *arg, uint32_t to, const void *buf, size_t len);
    void (*frame)(void *arg, uint32_t from, const struct proto_frame *f); /* before the library */
};

struct client_node_config {
    const char *name; /* for diagnostics: "raftq" */
    char bootstrap[CLIENT_NODE_BOOTSTRAP_MAX][CLIENT_NODE_ADDRESS_MAX];
    uint32_t bootstrap_count;       /* 1..CLIENT_NODE_BOOTSTRAP_MAX */
    struct rq_client_config client; /* its bootstrap list is filled by client_node_open */
    const struct rq_client_callbacks *callbacks;
    const struct client_node_hooks *hooks;
    void *arg;        /* of the callbacks and hooks */
    uint32_t tick_ms; /* >= 1 */
    uint32_t index;   /* distinct per node of one process: gives distinct ids and seeds */
};

struct client_node {
    struct client_node_config cfg;
    struct shim_loop loop;
    const struct rq_io *io; /* the loop's */
    struct rq_io lib_io;    /* the library's: set_timer and send wrapped */
    struct rq_client *c;    /* set by client_node_open */
    uint64_t lib_deadline_ns;
    uint64_t tick_ns;
    uint64_t answers; /* messages received from servers: 0 means none was ever reached */
    char peer_address[RQ_NODE_ID_MAX + 1][CLIENT_NODE_ADDRESS_MAX]; /* what the net was told */
};

/* Creates the loop (network to the bootstrap addresses under provisional ids, no disk) and the
 * client; nothing runs until client_node_run_*. `n` must stay where it is until
 * client_node_close. Returns 0, RQ_EINVAL (an address that does not resolve), or another
 * shim_loop_init_config error. */
int client_node_open(struct client_node *n, const struct client_node_config *cfg);
/* Frees the loop, the network and the client. */
void client_node_close(struct client_node *n);

uint64_t client_node_now_ns(const struct client_node *n);

/* One turn of n's loop, waiting at most wait_ms_max. 0, or RQ_EIO (halted: n->loop.halt_reason
 * says why, or epoll failed). */
int client_node_run_once(struct client_node *n, int wait_ms_max);
/* One turn of every node without waiting, then one wait (at most wait_ms_max) until any of them
 * has something to do: a socket, a timer due, output left to write. 0, or RQ_EIO when a node's
 * loop failed (its index in *failed). */
int client_node_run_many(struct client_node *const *nodes, uint32_t count, int wait_ms_max,
                         uint32_t *failed);

#endif
