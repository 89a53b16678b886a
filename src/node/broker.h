/* broker.h — a raftq server: one host (node/host.h) running the controller's Raft group and a
 * Raft group per partition replica placed on this node, serving clients over the wire protocol
 * (proto/msg.h). The simulator's mq workload and raftqd run this same code through rq_io.
 *
 * Groups. Group 1 is the controller (meta/controller.h, on the nodes listed in
 * broker_config.controllers: every node of a small cluster). Every node follows the controller's
 * state through its own replica of it (brokers outside the controller group, which would follow
 * it some other way, are not built). Whenever that state shows a partition placed on this node,
 * the broker adds the partition's group (group id from the controller, bootstrap voters = the
 * partition's replica set) to its host; at a restart the groups come back the same way as the
 * controller's state is recovered, each finding its files by its id. A partition's log is its
 * data: its snapshots bound only Raft's memory, the store keeps the log (HOST_GROUP_STORED_LOG;
 * fetches below Raft's memory read the store, node/partition_group.h).
 *
 * Membership in the cluster. Each broker registers with the controller (REGISTER, a new epoch per
 * process start) and then heartbeats every heartbeat_every_ns; the controller's leader marks
 * brokers it has not heard from within heartbeat_timeout_ns as down (EXPIRE), which moves the
 * recorded leadership of their partitions. A broker also reports each partition it starts to lead
 * (LEADER, with the Raft term) so metadata answers name the real leaders. These commands travel
 * to the controller's leader as FORWARD frames between servers and are proposed there; nothing
 * answers them: they are repeated until the broker's own controller replica shows their effect
 * (registration) or periodically (heartbeats), and a lost one costs nothing.
 *
 * Between servers a message is either a Raft batch (raft/msg.h; it begins with the magic "RQFB")
 * or one proto frame (whose first four bytes are its length, at most PROTO_FRAME_MAX, which can
 * never read as the magic).
 *
 * Clients. Each message from a client holds whole frames (the shim reassembles a TCP stream).
 *   METADATA      answered by any broker from its controller replica
 *   CREATE_TOPIC, DELETE_TOPIC, INIT_PRODUCER
 *                 proposed to the controller if this node leads it, else RQ_ENOTLEADER with the
 *                 controller's leader as hint; answered once applied
 *   PRODUCE       to the partition's leader; RQ_ENOTLEADER with the Raft leader as hint elsewhere,
 *                 RQ_ENOTOPIC when this node holds no replica of it, RQ_ETOOBIG for a record
 *                 over the topic's max_message_bytes; acks=1 answered once the leader's own log
 *                 holds the batch durably, acks=all once it is applied (committed) — see
 *                 partition_group.h; acks=0 never answered
 *   FETCH         committed records from an offset, on the leader, or on any replica with
 *                 from_follower (a follower first confirms the leader's commit index with
 *                 ReadIndex and applies that far); waits up to
 *                 max_wait_ms for records when there are none (long-poll), also at an offset
 *                 past the end (see part_group_read); RQ_ERANGE with the valid range for an
 *                 offset below the log start
 * A request that cannot be decoded gets an ERROR frame naming what was wrong; the connection and
 * the broker go on. Requests waiting for an answer are bounded (BROKER_REQUESTS_MAX: beyond, an
 * immediate RQ_EBUSY); each is answered RQ_ETIMEOUT after request_timeout_ns (a parked fetch is
 * answered with what there is at its max_wait_ms, at most PROTO_WAIT_MS_MAX), and forgotten when
 * its connection closes.
 * A follower whose read index is never confirmed (no leader reachable) answers at the fetch's
 * deadline with what it has: its applied records are committed ones, only possibly older. */
#ifndef RQ_NODE_BROKER_H
#define RQ_NODE_BROKER_H

#include <stdint.h>

#include "base/histogram.h"

#include "broker/partition.h"
#include "io/io.h"
#include "node/host.h"
#include "proto/msg.h"

enum {
    BROKER_REQUESTS_MAX = 1024,      /* client requests waiting for an answer, per broker */
    BROKER_ANSWER_MAX = RQ_MSG_MAX - 16,   /* one answer's payload: its frame is one message */
};

struct broker_config {
    uint32_t controllers[RAFT_VOTERS_MAX];   /* the controller group's voters */
    uint32_t controller_count;
    char address[PROTO_TEXT_MAX + 1];        /* advertised to clients, NUL-terminated */
    struct host_config host;                 /* timeouts, bounds; groups and voters are set here */
    uint64_t heartbeat_every_ns;
    uint64_t heartbeat_timeout_ns;           /* the controller marks a silent broker down */
    uint64_t expire_every_ns;                /* how often the controller's leader checks */
    uint64_t request_timeout_ns;             /* a waiting request is forgotten after this */
    int moves_paused;                        /* 1: the partitions this broker leads change no
                                                membership (rebalancing waits; an operator's
                                                switch, and the simulator's test hook) */
};

/* Defaults: 10 ms tick, heartbeats every 200 ms, down after 2 s, requests forgotten after 10 s.
 * The caller sets controllers and address. */
void broker_config_default(struct broker_config *cfg);

/* What happens inside, for the simulator's checkers (all optional). */
struct broker_observer {
    void *arg;
    /* A partition replica applied a committed entry: res says what became of it (APPENDED: its
     * records got res->base_offset on); e is the Raft entry. A SHARED entry (broker/partition.h)
     * is reported once per batch, in order, e's data narrowed to that batch (a BATCH entry). */
    void (*partition_applied)(void *arg, uint32_t node, uint32_t group,
                              const struct raft_entry *e, const struct partition_apply_result *res);
};

struct broker;

struct broker *broker_create(const struct rq_io *io, const struct broker_config *cfg,
                             const struct broker_observer *obs);
void broker_destroy(struct broker *b);

/* rq_node_ops entry points. */
void broker_start(struct broker *b);
void broker_on_timer(struct broker *b);
void broker_on_peer_message(struct broker *b, uint32_t from, const void *buf, size_t len);
void broker_on_client_message(struct broker *b, uint64_t conn, const void *buf, size_t len);
void broker_on_disk_done(struct broker *b, struct rq_disk_req *req);
void broker_on_conn_closed(struct broker *b, uint64_t conn);

/* For checkers and tests. */
struct host *broker_host(const struct broker *b);
const struct controller *broker_controller(const struct broker *b);
/* The partition group id's topic and partition index (0 when this node does not know it). */
int broker_partition_of_group(const struct broker *b, uint32_t group, const char **topic,
                              uint32_t *partition);

enum {
    /* A follower's fetch waits this long at least for its read index (ReadIndex) before it
     * answers with what it has, even when its own max_wait_ms is shorter. */
    BROKER_CONFIRM_WAIT_NS = 1000 * 1000 * 1000,
};

struct broker_stats {
    uint64_t requests;
    uint64_t bad_requests;           /* answered with an ERROR frame */
    uint64_t busy;                   /* refused: too many waiting */
    uint64_t timeouts;
    uint64_t forwards_sent;
    uint64_t forwards_proposed;
    uint64_t fetch_loads;            /* fetches served from entries read back from the store */
    uint64_t scans;                  /* store reads rebuilding a partition's index after a restore */
    uint64_t retention_checks_failed;   /* a leader's RETAIN proposal refused (busy, ...) */
    uint64_t log_compactions;        /* a partition's stored log told to drop deleted entries */
    uint64_t records_given_up;       /* deleted early: this leader could not serve them */
    uint64_t membership_changes;     /* rebalancing: changes and leadership hand-offs started */
    uint64_t produce_answered;       /* produce requests answered without error */
    uint64_t produce_failed;         /* answered with an error (not leader, busy, ...) */
    /* the answered ones' latencies, from the request's arrival to its answer (this broker's
     * clock) */
    struct rq_hist produce_latency;
    /* Partition entries proposed while leading (group commit, partition_group.h): all, the batches
     * in them, the SHARED ones and the batches in those. */
    uint64_t entries_proposed;
    uint64_t batches_proposed;
    uint64_t shared_entries;
    uint64_t shared_batches;
};
void broker_stats_get(const struct broker *b, struct broker_stats *out);

/* One Raft group this broker runs, for the metrics endpoint. */
struct broker_group_metrics {
    uint32_t group;
    const char *topic;               /* NULL: the controller's group */
    uint32_t partition;
    enum raft_role role;
    uint64_t term;
    uint32_t leader;                 /* 0: none known */
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t high_watermark;         /* partitions: the next offset, and the log start */
    uint64_t log_start;
    /* Partitions: record bytes (as produced: each record's timestamp, key, value and headers,
     * encoded; what retention counts) since this replica was added on this node: bytes_in, in
     * produce requests it accepted as leader (proposed to the group; counted at acceptance, so
     * also acks=0, batches later lost with leadership and retried duplicates; refused requests
     * are not); bytes_out, in the fetch answers it sent (leader or follower; not Raft's own
     * replication). */
    uint64_t bytes_in;
    uint64_t bytes_out;
};
/* 1 with *out when this node runs group and it has recovered, else 0. */
int broker_group_metrics(const struct broker *b, uint32_t group, struct broker_group_metrics *out);

#endif
