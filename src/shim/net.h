/* shim/net.h — io.h's send/reply and the node's message handlers over real, non-blocking TCP.
 *
 * One struct shim_net serves one node (one process, one loop thread: shim/loop.c drives it). Its
 * sockets live in the loop's epoll instance; every call below is made from the loop thread.
 *
 * Who talks to whom (io.h's rules):
 *   - A SERVER (node_id 1..RQ_NODE_ID_MAX) listens on one address and knows its peers' addresses.
 *     send(to) goes over ONE connection this server dials to that peer ("outbound link"); a server
 *     receives only over connections it accepts. So two servers never race to set up one shared
 *     connection, and a restarted peer simply dials again. The peer's accepted side delivers
 *     on_peer_message(from = the id in the dialer's hello). Bytes arriving on an outbound link are
 *     a protocol violation (the link is closed).
 *   - A CLIENT (node_id > RQ_NODE_ID_MAX) has no listener. send(to) goes over its connection to
 *     that server, dialed on demand. The server sees on_client_message(conn) where conn is unique
 *     for the life of the server process; reply(conn) travels back on that connection and reaches
 *     the client as on_peer_message(from = the server it dialed). When a client connection goes
 *     away for any reason (either side closed it, an error, a reset, a bad envelope, an output
 *     overflow), the server's node gets on_conn_closed(conn) exactly once — and only for
 *     connections whose client hello it accepted (the node never heard of the others).
 *   Whether this process is a client follows from its node id, as io.h defines it.
 *
 * Wire format (docs/protocol.md, "Transport: hello and envelope"): the dialer first sends a
 * 16-byte hello (magic "RQNH", version, kind peer/client, flags 0, sender id, CRC32C of the first
 * 12 bytes); then each message is an envelope: u32 length | u32 CRC32C of the bytes | the bytes,
 * little-endian, length <= RQ_MSG_MAX. A bad magic, version, kind, id, CRC or length closes that
 * connection (logged with RQ_WARN, counted); nothing on the wire can crash the process.
 *
 * Delivery is best effort, as io.h allows: a message to a peer that is unreachable (no connection
 * and within its reconnect back-off), to an unknown node, or that does not fit the link's output
 * bound is dropped and counted. Bytes still buffered when a connection dies are discarded and
 * counted. Raft and the client retry.
 *
 * Bounds (named below; none can be exceeded by anything a remote sends):
 *   - output per connection: peer links SHIM_NET_PEER_OUT_BYTES_MAX (then new messages are
 *     dropped), accepted client connections SHIM_NET_CLIENT_OUT_BYTES_MAX (then the connection is
 *     closed: a client that does not read its answers loses them). Both configurable, but never
 *     below SHIM_NET_OUT_BYTES_MIN so a message of RQ_MSG_MAX always fits an idle connection;
 *   - input per connection: one envelope at most, SHIM_NET_IN_BYTES_MAX; the buffer grows to the
 *     size announced by the envelope's length;
 *   - idle memory: an empty input or output buffer larger than SHIM_NET_BUF_IDLE_BYTES is freed
 *     by the next shim_net_tick (every SHIM_NET_TICK_MS), so a quiet connection holds little
 *     memory while a busy one keeps its buffers instead of reallocating them per message;
 *   - time: an accepted connection that sends no valid hello within hello_timeout_ms, or
 *     receives nothing for idle_timeout_ms, is closed by shim_net_tick (counted). A server's
 *     peers send Raft heartbeats and clients their requests, so only a stuck or abandoned
 *     connection goes quiet that long. Every socket has TCP keep-alive (SHIM_NET_KEEPALIVE_*),
 *     which notices a remote host that vanished without closing;
 *   - accepted connections: at most conns_max (default SHIM_NET_CONNS_MAX) at once; more are
 *     accepted and closed at once (counted as refused);
 *   - per wake-up: at most SHIM_NET_READ_BYTES_MAX bytes read from one connection and
 *     SHIM_NET_ACCEPTS_MAX accepts, so one busy socket cannot starve the others. epoll is used
 *     LEVEL-triggered: whatever a wake-up leaves unread wakes the loop again, which is what makes
 *     these per-wake-up bounds safe (edge-triggered would need our own ready list). EPOLLOUT is
 *     asked for only while a connection has output the kernel did not take.
 *
 * Output is batched: send and reply only append to the connection's buffer; shim_net_flush
 * (called by the loop before it waits) writes every such connection once, so all the messages a
 * handler sends to one peer leave in one write.
 *
 * Reconnect. Outbound links are dialed when a message is sent and no connection exists (lazily:
 * a server that sends heartbeats redials within one heartbeat, and no timer is needed here). After
 * a dial fails or a connection dies, the link waits a jittered exponential back-off before the
 * next dial: base SHIM_NET_BACKOFF_MIN_MS doubling per consecutive failure up to
 * SHIM_NET_BACKOFF_MAX_MS, the delay drawn uniformly from [base/2, base] with an rq_rng seeded
 * from the node's seed (no rand()). A connection that reached "connected" resets the count. A dial
 * still not connected after SHIM_NET_CONNECT_TIMEOUT_MS fails at the next send to it.
 *
 * Sockets are non-blocking and close-on-exec, TCP_NODELAY (writes are already batched), written
 * with MSG_NOSIGNAL so a closed peer is an EPIPE, never a SIGPIPE. EINTR is retried, EAGAIN waits
 * for epoll. Addresses are "host:port" ("[v6]:port" for IPv6), resolved once when configured. */
#ifndef RQ_SHIM_NET_H
#define RQ_SHIM_NET_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

#define SHIM_NET_MAGIC 0x484E5152u /* "RQNH" as little-endian bytes */

enum {
    SHIM_NET_VERSION = 1,
    SHIM_NET_KIND_PEER = 1,   /* hello from a server's outbound link */
    SHIM_NET_KIND_CLIENT = 2, /* hello from a client process */
    SHIM_NET_HELLO_SIZE = 16,
    SHIM_NET_ENVELOPE_SIZE = 8,
    SHIM_NET_IN_BYTES_MAX = SHIM_NET_ENVELOPE_SIZE + RQ_MSG_MAX,
    SHIM_NET_OUT_BYTES_MIN = SHIM_NET_HELLO_SIZE + SHIM_NET_ENVELOPE_SIZE + RQ_MSG_MAX,
    SHIM_NET_PEER_OUT_BYTES_MAX = 8 << 20,
    SHIM_NET_CLIENT_OUT_BYTES_MAX = 4 << 20,
    SHIM_NET_BUF_IDLE_BYTES = 64 * 1024,
    SHIM_NET_CONNS_MAX = 1024,            /* accepted connections at once (default and ceiling) */
    SHIM_NET_READ_BYTES_MAX = 256 * 1024, /* per connection per wake-up */
    SHIM_NET_ACCEPTS_MAX = 64,            /* per wake-up */
    SHIM_NET_BACKOFF_MIN_MS = 50,
    SHIM_NET_BACKOFF_MAX_MS = 2000,
    SHIM_NET_CONNECT_TIMEOUT_MS = 2000,
    SHIM_NET_ADDRESS_MAX = 128, /* "host:port", with its NUL */
    SHIM_NET_TICK_MS = 250,                /* shim_net_tick's pace */
    SHIM_NET_HELLO_TIMEOUT_MS = 10 * 1000, /* default; accepted connection to its hello */
    SHIM_NET_IDLE_TIMEOUT_MS = 10 * 60 * 1000, /* default; Kafka's connections.max.idle.ms */
    SHIM_NET_TIMEOUT_MS_MAX = 24 * 60 * 60 * 1000,
    SHIM_NET_KEEPALIVE_IDLE_S = 60,
    SHIM_NET_KEEPALIVE_INTERVAL_S = 10,
    SHIM_NET_KEEPALIVE_PROBES = 3,
    /* epoll tags (epoll_event.data.u64): the net's are SHIM_NET_TAG_LISTENER and every value >=
     * SHIM_NET_TAG_CONN_MIN; the caller may use any other value for its own descriptors. */
    SHIM_NET_TAG_LISTENER = 1,
    SHIM_NET_SLOT_BITS = 12,
    SHIM_NET_TAG_CONN_MIN = 1 << SHIM_NET_SLOT_BITS,
};

_Static_assert(SHIM_NET_PEER_OUT_BYTES_MAX >= SHIM_NET_OUT_BYTES_MIN, "a max message must fit");
_Static_assert(SHIM_NET_CLIENT_OUT_BYTES_MAX >= SHIM_NET_OUT_BYTES_MIN, "a max message must fit");
_Static_assert(SHIM_NET_CONNS_MAX + RQ_NODE_ID_MAX + 1 <= SHIM_NET_TAG_CONN_MIN,
               "every connection slot (accepted + one link per node id) fits the slot bits");
_Static_assert(SHIM_NET_BACKOFF_MIN_MS * 2 <= SHIM_NET_BACKOFF_MAX_MS, "back-off can grow");

struct shim_net_peer {
    uint32_t node_id;    /* 1..RQ_NODE_ID_MAX */
    const char *address; /* "host:port" */
};

struct shim_net_config {
    const char *listen_address;        /* servers: "host:port" (port 0: any); clients: NULL */
    const struct shim_net_peer *peers; /* servers: the other servers; clients: the servers */
    uint32_t peer_count;
    size_t peer_out_bytes_max; /* 0: SHIM_NET_PEER_OUT_BYTES_MAX; else >= SHIM_NET_OUT_BYTES_MIN */
    size_t client_out_bytes_max; /* 0: SHIM_NET_CLIENT_OUT_BYTES_MAX; same floor */
    uint32_t conns_max;          /* 0: SHIM_NET_CONNS_MAX; else 1..SHIM_NET_CONNS_MAX */
    uint32_t hello_timeout_ms;   /* 0: SHIM_NET_HELLO_TIMEOUT_MS; <= SHIM_NET_TIMEOUT_MS_MAX */
    uint32_t idle_timeout_ms;    /* 0: SHIM_NET_IDLE_TIMEOUT_MS; <= SHIM_NET_TIMEOUT_MS_MAX */
};

/* Where received messages go: the loop's wrappers around the node's handlers. */
struct shim_net_handlers {
    void *arg;
    void (*peer_message)(void *arg, uint32_t from_node, const void *buf, size_t len);
    void (*client_message)(void *arg, uint64_t conn, const void *buf, size_t len);
    void (*conn_closed)(void *arg, uint64_t conn);
};

/* For the metrics endpoint. Messages and bytes count payloads (envelopes and hellos excluded). */
struct shim_net_stats {
    uint64_t msgs_out, bytes_out; /* accepted by send/reply into an output buffer */
    uint64_t msgs_in, bytes_in;   /* delivered to the node */
    uint64_t bytes_written;       /* to sockets, including hellos and envelopes */
    uint64_t drop_too_big;        /* send/reply longer than RQ_MSG_MAX */
    uint64_t drop_unreachable;    /* no connection and within the back-off (or dial failed) */
    uint64_t drop_unknown_node;   /* no address for that node, or not a valid destination */
    uint64_t drop_unknown_conn;   /* reply to a connection that is gone or is not a client's */
    uint64_t drop_full;           /* peer link output over its bound */
    uint64_t bytes_discarded;     /* buffered output lost when its connection died */
    uint64_t conns_accepted, conns_refused, conns_closed;
    uint64_t client_overflows; /* client connections closed for output over the bound */
    uint64_t dials, dial_failures, reconnects, connect_timeouts;
    uint64_t bad_hello, bad_envelope; /* bad magic/version/kind/id/CRC; bad length or CRC */
    uint64_t truncated;               /* closed in the middle of a hello or an envelope */
    uint64_t protocol_errors;         /* bytes on an outbound link */
    uint64_t accept_errors;    /* accept failed (EMFILE ...): listener paused until a close */
    uint64_t hello_timeouts;   /* accepted connections closed for no hello in time */
    uint64_t idle_closed;      /* accepted connections closed for receiving nothing in time */
    uint32_t conns_open;       /* accepted + dialed, now */
    uint64_t buffer_bytes;     /* input and output buffers of every connection, now */
    uint64_t out_buffered_max; /* high-water mark of one connection's output buffer, bytes */
};

struct shim_net; /* private to net.c */

/* Creates the net for node_id: binds and listens on config->listen_address (required for a
 * server, refused for a client), records the peers, adds the listener to epoll_fd. Returns 0 and
 * *out, or RQ_EINVAL (bad config or address; logged), RQ_EIO (socket, bind, listen, epoll; logged),
 * RQ_ENOMEM. handlers must outlive the net. */
int shim_net_open(struct shim_net **out, const struct shim_net_config *config, uint32_t node_id,
                  uint64_t seed, int epoll_fd, const struct shim_net_handlers *handlers);

/* Sets (or changes) the address of node_id (1..RQ_NODE_ID_MAX, not this node). A change closes
 * the current outbound link to it. 0, or RQ_EINVAL (bad id or address). */
int shim_net_set_peer(struct shim_net *n, uint32_t node_id, const char *address);

/* The port the listener is bound to (useful with port 0), or 0 without a listener. */
uint16_t shim_net_listen_port(const struct shim_net *n);

/* io.h's send and reply. Copy buf; never block; drop and count as described above. */
void shim_net_send(struct shim_net *n, uint32_t to_node, const void *buf, size_t len);
void shim_net_reply(struct shim_net *n, uint64_t conn, const void *buf, size_t len);

/* Handles one epoll event whose tag is the net's (see SHIM_NET_TAG_*). May call the handlers. */
void shim_net_event(struct shim_net *n, uint64_t tag, uint32_t events);
int shim_net_owns_tag(uint64_t tag);

/* Writes buffered output and finishes closing dead connections (calling conn_closed, whose
 * handler may send again). Call before waiting. */
void shim_net_flush(struct shim_net *n);

/* Closes accepted connections past their hello or idle timeout and frees idle buffers (see the
 * bounds above). Cheap: does its work at most every SHIM_NET_TICK_MS; the loop calls it each turn.
 * Closing is deferred as anywhere else: the next flush reaps. */
void shim_net_tick(struct shim_net *n);

/* Nonzero when flush has work left (the loop must then not sleep). */
int shim_net_pending(const struct shim_net *n);

const struct shim_net_stats *shim_net_stats(const struct shim_net *n);

/* Closes every socket and frees everything; no handler is called. Safe with NULL. */
void shim_net_close(struct shim_net *n);

#endif
