/* raftq_internal.h — the raftq process's state, shared by raftq.c (topics, produce, consume,
 * cluster status) and raftq_group.c (consumer groups). Not for use outside src/cmd/raftq*.c. */
#ifndef RQ_CMD_RAFTQ_INTERNAL_H
#define RQ_CMD_RAFTQ_INTERNAL_H

#include <stdint.h>

#include "client/client.h"
#include "cmd/cli_args.h"
#include "cmd/client_node.h"
#include "proto/msg.h"

enum {
    CLI_TICK_MS = 20,      /* the process's own timer: stdin, deadline */
    CLI_WAIT_MS_MAX = 100, /* one loop turn waits at most this long (signal latency) */
    CLI_PRODUCE_PER_TICK_MAX = 4096,
    CLI_LINE_MAX = 256 * 1024,   /* a line of stdin, bytes (longer: one failed message) */
    CLI_DESCRIBE_AGAIN_MS = 100, /* metadata named no broker yet: ask again after this */
    CLI_FETCH_WAIT_MS_ONCE = 50, /* consume without --follow: a fetch's long-poll */
    CLI_LINGER_MS = 500,         /* acks=0: time left for the last sends to leave */
    CLI_SUBSCRIPTIONS_MAX = CLIENT_SUBSCRIPTIONS_MAX,
    CLI_FETCHES_MAX = CLIENT_REQUESTS_MAX, /* fetches watched at once (see "consume") */
    TOKEN_DESCRIBE = 1,
    TOKEN_COMMAND = 2,
    CLI_PROBES_MAX = 1024,      /* cluster status: replicas asked for their high watermark */
    CLI_PROBE_WAIT_MS = 3000,   /* ... and how long their answers are waited for */
};

/* A probe's correlation: the top bit set, which no request of the library has (its correlations
 * are a generation below 2^31 shifted over a slot index: client.c), so their answers are told
 * apart in on_frame; the library, seeing them after, counts them as unmatched and ignores them. */
#define PROBE_CORRELATION (UINT32_C(1) << 31)

#define MS ((uint64_t)1000 * 1000)

_Static_assert((int)CLI_BOOTSTRAP_MAX <= (int)CLIENT_NODE_BOOTSTRAP_MAX,
               "room to make the bootstrap count odd");
_Static_assert((int)CLI_ADDRESS_MAX == (int)CLIENT_NODE_ADDRESS_MAX, "an address the net takes");

enum phase {
    PHASE_DISCOVER = 0,
    PHASE_WORK,
    PHASE_LEAVING,   /* consume --group: committing and leaving the group before exiting */
    PHASE_DONE,
};

struct part {
    uint8_t used;    /* subscribed */
    uint8_t probing; /* starting at the end, which the first answer tells */
    uint8_t end_known;
    uint8_t done;
    uint64_t end; /* the high watermark in the partition's first fetch answer */
};

/* A FETCH_REQ the library sent, until its answer comes (see "consume" below). */
struct fetch_seen {
    uint8_t used;
    uint32_t correlation;
    uint32_t to;
    uint32_t partition;
    uint64_t offset;
    uint64_t sent_seq; /* to replace the oldest when the table is full */
};

/* cluster status: one replica of one partition, asked for its high watermark. */
struct probe {
    char topic[PROTO_TOPIC_NAME_MAX + 1];
    uint32_t partition;
    uint32_t replica;
    uint32_t leader;          /* the partition's, as the metadata says */
    uint8_t answered;
    int error;
    uint64_t high_watermark;
};

struct cli {
    const struct cli_args *args;
    struct client_node node;
    struct rq_client *c; /* node.c */
    enum phase phase;
    int exit_code;
    uint64_t progress_ns; /* the last progress; the deadline is this + --timeout */
    uint32_t broker_count;
    uint64_t describe_again_ns; /* 0, or when to ask for the metadata again */
    int described_by_leader;    /* the second describe, to the controller leader, is asked */
    uint32_t created_partitions, created_replication; /* topic create, for its report */
    /* produce */
    uint64_t queued, reported, acked, failed;
    int first_error;
    int pushed_back; /* the last message offered was refused for now (RQ_EBUSY) */
    int input_done;
    uint32_t next_word;
    char *line;       /* stdin buffer, CLI_LINE_MAX */
    size_t line_used; /* bytes in line */
    int discarding;   /* a line longer than CLI_LINE_MAX: dropped up to its newline */
    uint64_t linger_until_ns;
    /* consume */
    struct part *parts;
    uint32_t partition_count;
    uint64_t printed;
    struct fetch_seen fetches[CLI_FETCHES_MAX];
    uint64_t fetch_seq;
    char *out; /* a rendered record */
    size_t out_cap;
    /* cluster status */
    struct probe *probes;
    uint32_t probe_count, probes_answered;
    uint64_t probe_deadline_ns;
    uint32_t status_controller, status_brokers, status_topics, status_partitions, status_leaderless;
    /* consumer groups (raftq_group.c) */
    int grouped;                  /* consume --group: joined */
    int leave_code;               /* PHASE_LEAVING: the exit code once left */
    uint64_t leave_deadline_ns;
    uint32_t group_partition;     /* describe / reset-offsets: the partition being asked */
    uint32_t group_partitions;    /* ... of this many */
    uint64_t group_generation;    /* describe: the summary, kept for the offsets' report */
    int group_first;              /* describe --json: no offset printed yet */
    char group_topic[PROTO_TOPIC_NAME_MAX + 1];   /* describe: the topic, as --topic or the
                                                     coordinator named it */
};


/* raftq.c */
uint64_t now_ns(const struct cli *p);
struct proto_bytes bytes_of(const char *s);
/* The command ends with exit_code (consume --group leaves its group first). */
void finish(struct cli *p, int exit_code);
/* An operation failed with `error`: named on stderr (and as JSON with --json); then finish. */
void fail_op(struct cli *p, int error, const char *fmt, ...);
void progress(struct cli *p);
int topic_find(const struct proto_metadata_resp *m, const char *name, struct proto_topic *out);
void print_json_string(const uint8_t *s, size_t n);
void print_record(struct cli *p, const struct cli_record_view *v);

/* raftq_group.c */
/* consume --group: joins (records then come through the library's fetched callback). */
void group_consume_start(struct cli *p, const struct proto_metadata_resp *m);
/* finish() of a grouped consume: commit, leave, and end when that is done (or LEAVE_WAIT_MS). */
void group_consume_leave(struct cli *p, int exit_code);
/* group list / describe / reset-offsets, once the metadata is known. */
void group_command_start(struct cli *p, const struct proto_metadata_resp *m);
/* The library's callbacks for groups. */
void on_group_admin(void *arg, uint64_t token, const struct proto_msg *m);
void on_assigned(void *arg, uint64_t generation, uint64_t member_id, const uint32_t *partitions,
                 uint32_t count);
void on_group_error(void *arg, int error);
/* An admin_done for a group command (an error: the command fails, or goes on without). */
void group_admin_failed(struct cli *p, int error);
/* A tick: a leave that takes too long ends anyway. */
void group_tick(struct cli *p);

#endif
