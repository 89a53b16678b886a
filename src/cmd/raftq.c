/* raftq — the command-line client: topics, produce, consume, cluster status, decommission.
 *
 * The process is a CLIENT node (cmd/client_node.h) that owns one rq_client (client/client.h), run
 * by the shim's event loop (shim/loop.h) with networking and no data
 * directory. main drives the loop one turn at a time (shim_loop_run_once) so that it can stop when
 * the command is done, when --timeout passes without progress, or at SIGINT/SIGTERM.
 *
 * The node's machinery (provisional ids for the bootstrap addresses, brokers' addresses learnt
 * from every METADATA_RESP before the library reads it, the timer shared between the library and
 * the process's tick) is in client_node.h, shared with raftq-bench. The command starts only once
 * our describe has answered (it needs the broker count, the topic's partitions, or is the answer
 * itself). At each tick (CLI_TICK_MS) the process reads standard input (produce) and checks its
 * deadline, as sim/mq.c's clients do.
 *
 * Output goes to stdout (results; --json: JSON), diagnostics to stderr. Exit codes: cli_args.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "broker/ttl.h"
#include "client/client.h"
#include "cmd/cli_args.h"
#include "cmd/client_node.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "shim/loop.h"
#include "shim/net.h"
#include "shim/wallclock.h"

#include "cmd/raftq_internal.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

uint64_t now_ns(const struct cli *p) { return client_node_now_ns(&p->node); }

struct proto_bytes bytes_of(const char *s) {
    size_t n = s ? strlen(s) : 0;
    return (struct proto_bytes){n ? (const uint8_t *)s : NULL, (uint32_t)n};
}

/* ---- finishing and errors -------------------------------------------------------------------- */

void finish(struct cli *p, int exit_code) {
    if (p->phase == PHASE_DONE || p->phase == PHASE_LEAVING) return;
    if (p->grouped) return group_consume_leave(p, exit_code);
    p->phase = PHASE_DONE;
    p->exit_code = exit_code;
}

/* An operation failed with `error`: named on stderr (and as JSON on stdout with --json). */
void fail_op(struct cli *p, int error, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fprintf(stderr, "raftq: %s: %s (%s)\n", what, cli_error_name(error), rq_strerror(error));
    if (p->args->json)
        printf("{\"error\":\"%s\",\"message\":\"%s\"}\n", cli_error_name(error),
               rq_strerror(error));
    finish(p, CLI_EXIT_FAILED);
}

void progress(struct cli *p) { p->progress_ns = now_ns(p); }

/* ---- reading the answers of describe --------------------------------------------------------- */

int topic_find(const struct proto_metadata_resp *m, const char *name,
                      struct proto_topic *out) {
    size_t cursor = 0;
    struct proto_bytes want = bytes_of(name);
    while (proto_topic_next(m, &cursor, out))
        if (out->error == 0 && out->name.size == want.size &&
            memcmp(out->name.data, want.data, want.size) == 0)
            return 1;
    return 0;
}

void print_json_string(const uint8_t *s, size_t n) {
    char buf[2 * PROTO_TOPIC_NAME_MAX * 6];
    size_t need = cli_json_escape(s, n, buf, sizeof buf);
    printf("\"%.*s\"", (int)(need < sizeof buf ? need : sizeof buf), buf);
}

static void print_replicas(const struct proto_partition *pt, int json) {
    for (uint32_t r = 0; r < pt->replica_count; r++)
        printf("%s%u", r ? "," : "", pt->replicas[r]);
    if (pt->replica_count == 0 && !json) printf("-");
}

static void print_partition(const struct proto_partition *pt, int json, int first) {
    if (json) {
        printf("%s{\"partition\":%u,\"leader\":", first ? "" : ",", pt->index);
        if (pt->leader)
            printf("%u", pt->leader);
        else
            printf("null");
        printf(",\"replicas\":[");
        print_replicas(pt, 1);
        printf("]}");
        return;
    }
    printf("  partition %u  leader ", pt->index);
    if (pt->leader)
        printf("%u", pt->leader);
    else
        printf("none");
    printf("  replicas ");
    print_replicas(pt, 0);
    printf("\n");
}

static void topic_describe(struct cli *p, const struct proto_metadata_resp *m) {
    struct proto_topic t;
    if (!topic_find(m, p->args->topic, &t)) {
        fail_op(p, RQ_ENOTOPIC, "topic describe %s", p->args->topic);
        return;
    }
    if (p->args->json) {
        printf("{\"topic\":");
        print_json_string(t.name.data, t.name.size);
        printf(",\"partitions\":[");
    } else {
        printf("topic %s: %u partitions\n", p->args->topic, t.partition_count);
    }
    size_t cursor = 0;
    struct proto_partition pt;
    for (int first = 1; proto_partition_next(&t, &cursor, &pt); first = 0)
        print_partition(&pt, p->args->json, first);
    if (p->args->json) printf("]}\n");
    finish(p, CLI_EXIT_OK);
}

static void topic_list(struct cli *p, const struct proto_metadata_resp *m) {
    size_t cursor = 0;
    struct proto_topic t;
    if (p->args->json) printf("{\"topics\":[");
    for (int first = 1; proto_topic_next(m, &cursor, &t);) {
        if (t.error != 0) continue;
        if (p->args->json) {
            printf("%s{\"name\":", first ? "" : ",");
            print_json_string(t.name.data, t.name.size);
            printf(",\"partitions\":%u}", t.partition_count);
        } else {
            printf("%.*s\n", (int)t.name.size, (const char *)t.name.data);
        }
        first = 0;
    }
    if (p->args->json) printf("]}\n");
    finish(p, CLI_EXIT_OK);
}

/* ---- cluster status: brokers, leaders, and each replica's lag --------------------------------
 *
 * The metadata gives the brokers and each partition's leader and replicas; the lag comes from the
 * replicas themselves: each is sent a FETCH at the end of its partition (max_wait 0, from_follower
 * PROTO_FOLLOWER_AS_IS: answered at once, without ReadIndex) and answers with its high watermark,
 * the next offset it has applied. A replica's lag is the leader's high watermark minus its own
 * (records it has not applied yet); one that does not answer within CLI_PROBE_WAIT_MS is shown as
 * unknown. These requests bypass the library. */

static void probe_send(struct cli *p, uint32_t i) {
    const struct probe *pr = &p->probes[i];
    struct proto_fetch_req req = {.topic = bytes_of(pr->topic), .partition = pr->partition,
                                  .offset = UINT64_C(1) << 62, .max_records = 1, .max_bytes = 1,
                                  .max_wait_ms = 0, .from_follower = PROTO_FOLLOWER_AS_IS};
    static uint8_t frame[PROTO_FRAME_HEADER + 512];
    uint8_t payload[512];
    size_t n = proto_encode_fetch_req(payload, sizeof payload, &req);
    RQ_ASSERT(n > 0);
    size_t len = proto_frame_encode(frame, sizeof frame, PROTO_FETCH_REQ, PROBE_CORRELATION | i,
                                    payload, (uint32_t)n);
    RQ_ASSERT(len > 0);
    p->node.io->send(p->node.io->env, pr->replica, frame, len);
}

static void probe_answer(struct cli *p, uint32_t from, const struct proto_frame *f) {
    uint32_t i = f->correlation & ~PROBE_CORRELATION;
    struct proto_msg m;
    if (i >= p->probe_count || p->probes[i].answered || p->probes[i].replica != from ||
        f->type != PROTO_FETCH_RESP || proto_decode(f->type, f->payload, f->payload_size, &m) != 0)
        return;
    p->probes[i].answered = 1;
    p->probes[i].error = m.u.fetch_resp.error;
    p->probes[i].high_watermark = m.u.fetch_resp.high_watermark;
    p->probes_answered++;
    progress(p);
}

/* The leader's answer among the probes of partition (topic, partition) starting at first. */
static const struct probe *leader_probe(const struct cli *p, uint32_t first) {
    for (uint32_t i = first; i < p->probe_count && strcmp(p->probes[i].topic, p->probes[first].topic) == 0 &&
                             p->probes[i].partition == p->probes[first].partition; i++)
        if (p->probes[i].replica == p->probes[i].leader) return p->probes[i].answered ? &p->probes[i] : NULL;
    return NULL;
}

static void print_replica(const struct probe *pr, const struct probe *leader, int json, int first) {
    int known = pr->answered && pr->error == 0 && leader != NULL && leader->error == 0;
    uint64_t lag = known && leader->high_watermark > pr->high_watermark
                       ? leader->high_watermark - pr->high_watermark : 0;
    if (json) {
        printf("%s{\"id\":%u,", first ? "" : ",", pr->replica);
        if (known) printf("\"high_watermark\":%llu,\"lag\":%llu}", (unsigned long long)pr->high_watermark, (unsigned long long)lag);
        else printf("\"high_watermark\":null,\"lag\":null}");
        return;
    }
    if (known) printf("  n%u:%llu (lag %llu)", pr->replica, (unsigned long long)pr->high_watermark, (unsigned long long)lag);
    else printf("  n%u:? (no answer)", pr->replica);
}

/* Every probe answered or the wait is over: the report. */
static void status_print(struct cli *p) {
    int json = p->args->json;
    if (json) printf(",\"topics\":%u,\"partitions\":%u,\"partitions_without_leader\":%u,\"replicas\":[",
                     p->status_topics, p->status_partitions, p->status_leaderless);
    else printf("topics: %u (%u partitions, %u without a leader)\n", p->status_topics,
                p->status_partitions, p->status_leaderless);
    for (uint32_t i = 0; i < p->probe_count;) {
        const struct probe *leader = leader_probe(p, i);
        if (json) printf("%s{\"topic\":\"%s\",\"partition\":%u,\"leader\":%u,\"replicas\":[", i ? "," : "",
                         p->probes[i].topic, p->probes[i].partition, p->probes[i].leader);
        else printf("  %s/%u  leader n%u:", p->probes[i].topic, p->probes[i].partition, p->probes[i].leader);
        uint32_t j = i;
        for (; j < p->probe_count && strcmp(p->probes[j].topic, p->probes[i].topic) == 0 &&
               p->probes[j].partition == p->probes[i].partition; j++)
            print_replica(&p->probes[j], leader, json, j == i);
        printf(json ? "]}" : "\n");
        i = j;
    }
    if (json) printf("]}\n");
    finish(p, CLI_EXIT_OK);
}

static void status_check_done(struct cli *p) {
    if (p->probes_answered == p->probe_count || now_ns(p) >= p->probe_deadline_ns) status_print(p);
}

/* One probe per replica of every partition (at most CLI_PROBES_MAX; beyond, not shown). */
static void status_probes(struct cli *p, const struct proto_metadata_resp *m) {
    size_t cursor = 0, pc;
    struct proto_topic t;
    struct proto_partition pt;
    while (proto_topic_next(m, &cursor, &t)) {
        if (t.error != 0) continue;
        p->status_topics++;
        for (pc = 0; proto_partition_next(&t, &pc, &pt); p->status_partitions++) {
            p->status_leaderless += pt.leader == 0;
            for (uint32_t k = 0; k < pt.replica_count && p->probe_count < CLI_PROBES_MAX; k++) {
                struct probe *pr = &p->probes[p->probe_count];
                memset(pr, 0, sizeof *pr);
                memcpy(pr->topic, t.name.data, t.name.size);
                pr->partition = pt.index;
                pr->replica = pt.replicas[k];
                pr->leader = pt.leader;
                probe_send(p, p->probe_count++);
            }
        }
    }
}

static void cluster_status(struct cli *p, const struct proto_metadata_resp *m) {
    int json = p->args->json;
    if (json)
        printf("{\"controller\":%u,\"brokers\":[", m->controller);
    else
        printf("controller leader: %u%s\nbrokers: %u (%u decommissioned)\n", m->controller,
               m->controller ? "" : " (none known)", m->broker_count,
               m->broker_count - cli_members(m));
    struct proto_broker b;
    size_t cursor = 0;
    for (int first = 1; proto_broker_next(m, &cursor, &b); first = 0) {
        int gone = (b.flags & PROTO_BROKER_DECOMMISSIONED) != 0;
        if (!json) {
            printf("  %u  %.*s%s\n", b.id, (int)b.address.size, (const char *)b.address.data,
                   gone ? "  (decommissioned)" : "");
            continue;
        }
        printf("%s{\"id\":%u,\"address\":", first ? "" : ",", b.id);
        print_json_string(b.address.data, b.address.size);
        printf(",\"decommissioned\":%s}", gone ? "true" : "false");
    }
    if (json) printf("]");
    p->probes = calloc(CLI_PROBES_MAX, sizeof *p->probes);
    if (p->probes == NULL) return fail_op(p, RQ_ENOMEM, "cluster status");
    status_probes(p, m);
    p->probe_deadline_ns = now_ns(p) + CLI_PROBE_WAIT_MS * MS;
    status_check_done(p);
}

/* ---- admin commands -------------------------------------------------------------------------- */

static void topic_create(struct cli *p) {
    const struct cli_args *a = p->args;
    struct proto_create_topic_req req = {
        .name = bytes_of(a->topic),
        .partitions = a->partitions ? a->partitions : cli_default_partitions(p->broker_count),
        .replication = a->replication ? a->replication : cli_default_replication(p->broker_count),
        .retention_ms = a->retention_ms,
        .retention_bytes = a->retention_bytes,
        .max_message_bytes = a->max_message_bytes,
    };
    p->created_partitions = req.partitions;
    p->created_replication = req.replication;
    int rc = rq_client_create_topic(p->c, &req, TOKEN_COMMAND);
    if (rc != 0) fail_op(p, rc, "topic create %s", a->topic);
}

static void admin_result(struct cli *p, int error) {
    const struct cli_args *a = p->args;
    const char *t = a->topic;
    if (a->command == CLI_TOPIC_CREATE) {
        if (error == RQ_EINVAL)   /* the controller's one reason left after the CLI's checks */
            return fail_op(p, error, "topic create %s: replication %u is more than the live "
                           "brokers (a broker just restarted counts once it has rejoined)", t,
                           p->created_replication);
        if (error != 0) return fail_op(p, error, "topic create %s", t);
        if (a->json)
            printf("{\"created\":\"%s\",\"partitions\":%u,\"replication\":%u}\n", t,
                   p->created_partitions, p->created_replication);
        else
            printf("created topic %s: %u partitions, replication %u\n", t, p->created_partitions,
                   p->created_replication);
    } else if (a->command == CLI_TOPIC_DELETE) {
        if (error != 0) return fail_op(p, error, "topic delete %s", t);
        if (a->json)
            printf("{\"deleted\":\"%s\"}\n", t);
        else
            printf("deleted topic %s\n", t);
    } else {
        RQ_ASSERT(a->command == CLI_BROKER_DECOMMISSION);
        if (error != 0) return fail_op(p, error, "broker decommission %u", a->broker);
        if (a->json)
            printf("{\"decommissioned\":%u}\n", a->broker);
        else
            printf("broker %u decommissioned: its replicas move to the other brokers\n", a->broker);
    }
    finish(p, CLI_EXIT_OK);
}

/* ---- produce --------------------------------------------------------------------------------- */

static uint64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A message that was never taken by the library: counted and reported as produced() would. */
static void fail_message(struct cli *p, int error) {
    fprintf(stderr, "raftq: message %" PRIu64 ": %s (%s)\n", p->queued, cli_error_name(error),
            rq_strerror(error));
    p->queued++;
    p->reported++;
    p->failed++;
    if (p->first_error == 0) p->first_error = error;
}

/* Queues one message. 1: taken (or failed for good, reported); 0: the library is busy (or does
 * not know the topic yet): the same message is offered again at the next tick. */
static int produce_one(struct cli *p, const char *value, size_t size) {
    struct proto_bytes v = {size ? (const uint8_t *)value : NULL, (uint32_t)size};
    const struct cli_args *a = p->args;
    char ttl[24];
    struct proto_header h = {bytes_of(RQ_HEADER_TTL), {(const uint8_t *)ttl, 0}};
    h.value.size = (uint32_t)snprintf(ttl, sizeof ttl, "%" PRIu64, a->ttl_ms);
    uint32_t hc = a->ttl_ms ? 1 : 0;   /* --ttl: the message's time to live (broker/ttl.h) */
    int rc = a->delay_ms ? rq_client_produce_delayed(p->c, bytes_of(a->topic), bytes_of(a->key), v,
                                                     &h, hc, wall_ns(), a->delay_ms, p->queued)
                         : rq_client_produce(p->c, bytes_of(a->topic), bytes_of(a->key), v, &h,
                                             hc, wall_ns(), p->queued);
    if (rc == RQ_EBUSY) return 0;
    if (rc != 0)
        fail_message(p, rc);
    else
        p->queued++;
    return 1;
}

/* Reads what standard input has now (never blocks: poll with no wait) into p->line. */
static void read_stdin(struct cli *p) {
    if (p->input_done || p->line_used == CLI_LINE_MAX) return;
    struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0) return;
    ssize_t n = read(STDIN_FILENO, p->line + p->line_used, CLI_LINE_MAX - p->line_used);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) { /* end of input (or an error, which ends it too) */
        p->input_done = 1;
        return;
    }
    p->line_used += (size_t)n;
}

/* Offers the complete lines in p->line (and, at end of input, the last unterminated one). Empty
 * lines are skipped. Returns 0 when the library pushed back. */
static int produce_lines(struct cli *p, uint32_t *budget) {
    while (*budget > 0) {
        char *nl = memchr(p->line, '\n', p->line_used);
        size_t len = nl ? (size_t)(nl - p->line) : p->line_used;
        if (nl == NULL && p->line_used == CLI_LINE_MAX) { /* no newline in a full buffer */
            if (!p->discarding) fail_message(p, RQ_ETOOBIG);
            p->discarding = 1;
            p->line_used = 0;
            return 1;
        }
        if (nl == NULL && !(p->input_done && len > 0)) return 1;
        if (!p->discarding && len > 0 && !produce_one(p, p->line, len)) return 0;
        p->discarding = 0;
        size_t used = nl ? len + 1 : len;
        memmove(p->line, p->line + used, p->line_used - used);
        p->line_used -= used;
        (*budget)--;
    }
    return 1;
}

static void produce_more(struct cli *p) {
    const struct cli_args *a = p->args;
    uint32_t budget = CLI_PRODUCE_PER_TICK_MAX;
    if (a->message_count > 0) {
        while (budget-- > 0 && p->next_word < a->message_count) {
            const char *m = a->messages[p->next_word];
            if (!produce_one(p, m, strlen(m))) break;
            p->next_word++;
        }
        p->input_done = p->next_word == a->message_count;
        return;
    }
    for (int rounds = 0; rounds < 2; rounds++) { /* what is buffered, then what came since */
        if (!produce_lines(p, &budget)) return;
        read_stdin(p);
    }
    produce_lines(p, &budget);
}

static void produce_check_done(struct cli *p) {
    if (!p->input_done || p->reported < p->queued || p->line_used > 0) return;
    if (p->args->acks == PROTO_ACKS_NONE && p->linger_until_ns == 0) {
        p->linger_until_ns = now_ns(p) + CLI_LINGER_MS * MS; /* let the last sends leave */
        return;
    }
    if (p->linger_until_ns != 0 && now_ns(p) < p->linger_until_ns) return;
    if (!p->args->json)
        printf("%" PRIu64 " of %" PRIu64 " messages %s to %s\n", p->acked, p->queued,
               p->args->acks == PROTO_ACKS_NONE ? "sent (acks=0, not acknowledged)"
               : p->args->delay_ms              ? "held for later delivery"
                                                : "acknowledged",
               p->args->topic);
    if (p->failed > 0) {
        fail_op(p, p->first_error, "produce %s: %" PRIu64 " of %" PRIu64 " messages failed",
                p->args->topic, p->failed, p->queued);
        return;
    }
    finish(p, CLI_EXIT_OK);
}

static void on_produced(void *arg, uint64_t token, uint32_t partition, int error, uint64_t offset) {
    struct cli *p = arg;
    p->reported++;
    progress(p);
    if (error != 0) {
        p->failed++;
        if (p->first_error == 0) p->first_error = error;
        fprintf(stderr, "raftq: message %" PRIu64 ": %s (%s)\n", token, cli_error_name(error),
                rq_strerror(error));
    } else {
        p->acked++;
    }
    if (!p->args->json) return;
    printf("{\"message\":%" PRIu64 ",\"partition\":%u,", token, partition);
    if (error != 0)
        printf("\"error\":\"%s\"}\n", cli_error_name(error));
    else if (offset == UINT64_MAX)
        printf("\"offset\":null}\n");
    else
        printf("\"offset\":%" PRIu64 "}\n", offset);
}

/* ---- consume ----------------------------------------------------------------------------------
 *
 * Where to stop without --follow, and where "the end" is, need each partition's high watermark,
 * which every FETCH answer carries but the library does not pass on. So the process watches the
 * library's fetches go by (client_node shows it the library's sends and every answer first):
 * on_sent notes each FETCH_REQ's correlation, partition and offset, and on_frame reads the
 * FETCH_RESP with that correlation before the library does (watch_fetch_*). Nothing is changed
 * on the way. From the first answer of a partition:
 *   - `end` is its high watermark then: without --follow the partition is done once the
 *     position reaches it (Kafka's console consumer stops at the end offsets it saw at its start
 *     in the same way), at once when the range is empty;
 *   - starting at the end (no --from-beginning, no --offset), the subscription (made at 0, to
 *     get that answer) is moved to the high watermark with rq_client_seek before the library
 *     sees the answer, so none of its records are delivered.
 * A start below the log start is answered RQ_ERANGE with the bounds (fetch_error): the
 * subscription moves to the log start. */

static void consume_start(struct cli *p, const struct proto_metadata_resp *m) {
    const struct cli_args *a = p->args;
    struct proto_topic t;
    if (!topic_find(m, a->topic, &t)) return fail_op(p, RQ_ENOTOPIC, "consume %s", a->topic);
    if (a->group != NULL) return group_consume_start(p, m);
    if (a->partition_set && a->partition >= t.partition_count)
        return fail_op(p, RQ_ENOTOPIC, "consume %s: no partition %u (the topic has %u)", a->topic,
                       a->partition, t.partition_count);
    if (!a->partition_set && t.partition_count > CLI_SUBSCRIPTIONS_MAX)
        return fail_op(p, RQ_EBUSY, "consume %s: more than %d partitions (use --partition)",
                       a->topic, CLI_SUBSCRIPTIONS_MAX);
    p->partition_count = t.partition_count;
    p->parts = calloc(t.partition_count ? t.partition_count : 1, sizeof *p->parts);
    if (p->parts == NULL) return fail_op(p, RQ_ENOMEM, "consume %s", a->topic);
    uint64_t start = a->start == CLI_START_OFFSET ? a->offset : 0;
    for (uint32_t i = 0; i < t.partition_count; i++) {
        if (a->partition_set && i != a->partition) continue;
        int rc = rq_client_subscribe(p->c, bytes_of(a->topic), i, start);
        if (rc != 0) return fail_op(p, rc, "consume %s: partition %u", a->topic, i);
        p->parts[i] = (struct part){.used = 1, .probing = a->start == CLI_START_END};
    }
    if (t.partition_count == 0) finish(p, CLI_EXIT_OK);
}

static void consume_check_done(struct cli *p) {
    if (p->args->count != 0 && p->printed >= p->args->count) return finish(p, CLI_EXIT_OK);
    if (p->args->follow) return;
    if (p->grouped && p->group_generation == 0) return;   /* no assignment yet */
    for (uint32_t i = 0; i < p->partition_count; i++)
        if (p->parts[i].used && !p->parts[i].done) return;
    finish(p, CLI_EXIT_OK);
}

static void part_done(struct cli *p, uint32_t partition) {
    p->parts[partition].done = 1;
    if (!p->grouped) rq_client_unsubscribe(p->c, bytes_of(p->args->topic), partition);
    consume_check_done(p);
}

static int part_live(const struct cli *p, uint32_t partition) {
    return p->phase == PHASE_WORK && p->args->command == CLI_CONSUME && p->parts != NULL &&
           partition < p->partition_count && p->parts[partition].used && !p->parts[partition].done;
}

/* A fetch of `partition` at `offset` was answered (before the library handles the answer). */
static void fetch_observed(struct cli *p, uint32_t partition, uint64_t offset,
                           const struct proto_fetch_resp *m) {
    if (!part_live(p, partition)) return;
    struct part *pt = &p->parts[partition];
    if (!pt->end_known) {
        pt->end_known = 1;
        pt->end = m->high_watermark;
    }
    if (pt->probing) { /* starting at the end: move there before any record is delivered */
        pt->probing = 0;
        if (!p->args->follow) return part_done(p, partition);
        rq_client_seek(p->c, bytes_of(p->args->topic), partition, m->high_watermark);
        return;
    }
    if (!p->args->follow && m->error == 0 && offset >= pt->end) part_done(p, partition);
}

static void on_fetch_error(void *arg, struct proto_bytes topic, uint32_t partition, int error,
                           uint64_t position, uint64_t log_start, uint64_t high_watermark) {
    struct cli *p = arg;
    (void)topic;
    (void)high_watermark;
    if (!part_live(p, partition)) return;
    progress(p);
    if (error == RQ_ERANGE && position < log_start) { /* before the log start (or retention) */
        if (p->args->start != CLI_START_BEGINNING)
            fprintf(stderr,
                    "raftq: partition %u: offsets below %" PRIu64 " are gone, reading "
                    "from there\n",
                    partition, log_start);
        const struct part *pt = &p->parts[partition];
        if (!p->args->follow && pt->end_known && log_start >= pt->end)
            return part_done(p, partition);
        rq_client_seek(p->c, bytes_of(p->args->topic), partition, log_start);
        return;
    }
    fail_op(p, error, "consume %s: partition %u at offset %" PRIu64, p->args->topic, partition,
            position);
}

/* The table of fetches under way, filled by on_sent and read by on_frame: bounded like the
 * library's own requests (a correlation that comes back replaces its old entry). */
static void watch_fetch_sent(struct cli *p, uint32_t to, const void *buf, size_t len) {
    struct proto_frame f;
    size_t frame_size = 0;
    struct proto_msg m;
    if (proto_frame_decode(buf, len, PROTO_FRAME_MAX, &f, &frame_size) != 0) return;
    if ((f.type != PROTO_FETCH_REQ && f.type != PROTO_GROUP_FETCH_REQ) ||
        proto_decode(f.type, f.payload, f.payload_size, &m) != 0)
        return;
    uint32_t slot = CLI_FETCHES_MAX;
    for (uint32_t i = 0; i < CLI_FETCHES_MAX && slot == CLI_FETCHES_MAX; i++)
        if (p->fetches[i].used && p->fetches[i].correlation == f.correlation) slot = i;
    for (uint32_t i = 0; i < CLI_FETCHES_MAX && slot == CLI_FETCHES_MAX; i++)
        if (!p->fetches[i].used) slot = i;
    if (slot ==
        CLI_FETCHES_MAX) { /* full: answers lost on the way leave entries; drop the oldest */
        slot = 0;
        for (uint32_t i = 1; i < CLI_FETCHES_MAX; i++)
            if (p->fetches[i].sent_seq < p->fetches[slot].sent_seq) slot = i;
    }
    p->fetches[slot] = (struct fetch_seen){.used = 1,
                                           .correlation = f.correlation,
                                           .to = to,
                                           .partition = m.u.fetch_req.partition,
                                           .offset = m.u.fetch_req.offset,
                                           .sent_seq = ++p->fetch_seq};
}

static void watch_fetch_answer(struct cli *p, uint32_t from, const struct proto_frame *f) {
    struct proto_msg m;
    if (proto_decode(f->type, f->payload, f->payload_size, &m) != 0) return;
    for (uint32_t i = 0; i < CLI_FETCHES_MAX; i++) {
        struct fetch_seen *s = &p->fetches[i];
        if (!s->used || s->correlation != f->correlation || s->to != from) continue;
        s->used = 0;
        fetch_observed(p, s->partition, s->offset, &m.u.fetch_resp);
        return;
    }
}

static void print_json_record(const struct cli_record_view *r, char *buf, size_t cap) {
    printf("{\"topic\":\"%s\",\"partition\":%u,\"offset\":%" PRIu64 ",\"timestamp_ms\":%" PRIu64
           ",\"key\":",
           r->topic, r->partition, r->offset, r->timestamp_ns / MS);
    if (r->key_size == 0) {
        printf("null");
    } else {
        size_t n = cli_json_escape(r->key, r->key_size, buf, cap);
        printf("\"%.*s\"", (int)n, buf);
    }
    size_t n = cli_json_escape(r->value, r->value_size, buf, cap);
    printf(",\"value\":\"%.*s\"}\n", (int)n, buf);
}

/* Grows p->out to hold `need` bytes. 0 or RQ_ENOMEM. */
static int out_reserve(struct cli *p, size_t need) {
    if (need <= p->out_cap) return 0;
    char *b = realloc(p->out, need);
    if (b == NULL) return RQ_ENOMEM;
    p->out = b;
    p->out_cap = need;
    return 0;
}

void print_record(struct cli *p, const struct cli_record_view *v) {
    size_t escaped_max = 6 * (v->key_size > v->value_size ? v->key_size : v->value_size);
    size_t need = p->args->json ? escaped_max : cli_format_render(&p->args->format, v, NULL, 0);
    if (out_reserve(p, need + 1) != 0) return fail_op(p, RQ_ENOMEM, "consume");
    if (p->args->json) return print_json_record(v, p->out, p->out_cap);
    size_t n = cli_format_render(&p->args->format, v, p->out, p->out_cap);
    RQ_ASSERT(n <= p->out_cap);
    fwrite(p->out, 1, n, stdout);
}

static void on_fetched(void *arg, struct proto_bytes topic, uint32_t partition,
                       const struct proto_record *r) {
    struct cli *p = arg;
    (void)topic;
    if (p->phase != PHASE_WORK || partition >= p->partition_count) return;
    struct part *pt = &p->parts[partition];
    if (p->grouped && p->args->count != 0 && p->printed >= p->args->count) return;
    /* A group member prints every record the library delivers: its position, which it
     * commits, has moved past them, so one skipped here would be lost to the group. */
    if (!p->grouped && (!pt->used || pt->done || pt->probing)) return;
    progress(p);
    if (!p->grouped && !p->args->follow && pt->end_known && r->offset >= pt->end)
        return part_done(p, partition);
    struct cli_record_view v = {
        .topic = p->args->topic,
        .partition = partition,
        .offset = r->offset,
        .timestamp_ns = r->timestamp,
        .key = r->key.data,
        .key_size = r->key.size,
        .value = r->value.data,
        .value_size = r->value.size,
    };
    print_record(p, &v);
    p->printed++;
    if (!p->args->follow && pt->used && !pt->done && pt->end_known && r->offset + 1 >= pt->end)
        return part_done(p, partition);
    consume_check_done(p);
}

/* ---- the command, once describe has answered ------------------------------------------------- */

static void command_start(struct cli *p, const struct proto_metadata_resp *m) {
    p->broker_count = cli_members(m);   /* a decommissioned broker counts for no default */
    p->phase = PHASE_WORK;
    const struct cli_args *a = p->args;
    switch (a->command) {
    case CLI_TOPIC_LIST: return topic_list(p, m);
    case CLI_TOPIC_DESCRIBE: return topic_describe(p, m);
    case CLI_CLUSTER_STATUS: return cluster_status(p, m);
    case CLI_TOPIC_CREATE: return topic_create(p);
    case CLI_TOPIC_DELETE: {
        int rc = rq_client_delete_topic(p->c, bytes_of(a->topic), TOKEN_COMMAND);
        if (rc != 0) fail_op(p, rc, "topic delete %s", a->topic);
        return;
    }
    case CLI_BROKER_DECOMMISSION: {
        int rc = rq_client_decommission(p->c, a->broker, TOKEN_COMMAND);
        if (rc != 0) fail_op(p, rc, "broker decommission %u", a->broker);
        return;
    }
    case CLI_PRODUCE: {
        struct proto_topic t;
        if (!topic_find(m, a->topic, &t)) fail_op(p, RQ_ENOTOPIC, "produce %s", a->topic);
        return; /* the messages go at the next tick */
    }
    case CLI_CONSUME: return consume_start(p, m);
    case CLI_GROUP_LIST:
    case CLI_GROUP_DESCRIBE:
    case CLI_GROUP_RESET: return group_command_start(p, m);
    case CLI_NONE: break;
    }
    RQ_UNREACHABLE();
}

static void on_described(void *arg, uint64_t token, const struct proto_metadata_resp *m) {
    struct cli *p = arg;
    RQ_ASSERT(token == TOKEN_DESCRIBE);
    if (p->phase != PHASE_DISCOVER) return;
    if (m->broker_count == 0) { /* a cluster just started: no broker registered yet. Ask again
                                   (the deadline still runs) rather than size topics for none. */
        p->describe_again_ns = now_ns(p) + CLI_DESCRIBE_AGAIN_MS * MS;
        return;
    }
    progress(p);
    /* Any server answers from its replica of the controller's state, which may lag: a topic
     * created or deleted a moment ago (by the previous command) may not show there yet. The
     * first answer names the controller's leader (and learn_brokers mapped its address); ask it
     * once more, so that commands read what the controller has applied. */
    if (!p->described_by_leader && m->controller != 0) {
        p->described_by_leader = 1;
        int rc = rq_client_describe(p->c, TOKEN_DESCRIBE);
        if (rc == 0) return;
    }
    command_start(p, m);
}

static int a_group_command(const struct cli *p) {
    enum cli_command c = p->args->command;
    return c == CLI_GROUP_LIST || c == CLI_GROUP_DESCRIBE || c == CLI_GROUP_RESET;
}

static void on_admin_done(void *arg, uint64_t token, int error) {
    struct cli *p = arg;
    if (p->phase == PHASE_DONE) return;
    progress(p);
    if (token != TOKEN_DESCRIBE && a_group_command(p)) return group_admin_failed(p, error);
    if (token == TOKEN_COMMAND) return admin_result(p, error);
    RQ_ASSERT(token == TOKEN_DESCRIBE);
    RQ_ASSERT(error != 0);
    /* No server answered yet: keep asking until the deadline (then: unreachable). */
    if (p->node.answers == 0 && rq_client_describe(p->c, TOKEN_DESCRIBE) == 0) return;
    fail_op(p, error, "asking the cluster for its metadata");
}

/* ---- the node (cmd/client_node.h) ----------------------------------------------------------- */

static void on_sent(void *arg, uint32_t to, const void *buf, size_t len) {
    struct cli *p = arg;
    if (p->args->command == CLI_CONSUME) watch_fetch_sent(p, to, buf, len);
}

static void on_frame(void *arg, uint32_t from, const struct proto_frame *f) {
    struct cli *p = arg;
    if ((f->correlation & PROBE_CORRELATION) && p->args->command == CLI_CLUSTER_STATUS &&
        p->phase == PHASE_WORK) {
        probe_answer(p, from, f);
        status_check_done(p);
        return;
    }
    if (f->type == PROTO_FETCH_RESP && p->args->command == CLI_CONSUME)
        watch_fetch_answer(p, from, f);
}

static void client_config(const struct cli *p, struct rq_client_config *cfg) {
    const struct cli_args *a = p->args;
    rq_client_config_default(cfg);
    /* Several attempts fit in one --timeout, each at most the library's default. */
    uint64_t request_ns = a->timeout_ms * MS / 3;
    if (request_ns < 200 * MS) request_ns = 200 * MS;
    if (request_ns > cfg->request_timeout_ns) request_ns = cfg->request_timeout_ns;
    cfg->request_timeout_ns = request_ns;
    cfg->acks = a->acks;
    cfg->idempotent = (uint8_t)a->idempotent;
    /* Without --follow an empty partition's first answer is what ends it: no long wait. */
    if (a->command == CLI_CONSUME && !a->follow) cfg->fetch_max_wait_ms = CLI_FETCH_WAIT_MS_ONCE;
    if (a->idempotent && cfg->batcher.in_flight_max > CLIENT_IDEMPOTENT_IN_FLIGHT_MAX)
        cfg->batcher.in_flight_max = CLIENT_IDEMPOTENT_IN_FLIGHT_MAX;
}

/* The process's own work at each tick. */
static void act(void *arg) {
    struct cli *p = arg;
    uint64_t now = now_ns(p);
    if (p->phase == PHASE_DISCOVER && p->describe_again_ns != 0 && now >= p->describe_again_ns &&
        rq_client_describe(p->c, TOKEN_DESCRIBE) == 0)
        p->describe_again_ns = 0;
    if (p->phase == PHASE_WORK && p->args->command == CLI_CLUSTER_STATUS) status_check_done(p);
    group_tick(p);
    if (p->phase == PHASE_WORK && p->args->command == CLI_PRODUCE) {
        produce_more(p);
        /* Nothing to wait for from the cluster: waiting for input is not the cluster's delay. */
        if (p->reported == p->queued && !p->pushed_back) progress(p);
        produce_check_done(p);
    }
}

static void on_start(void *arg) {
    struct cli *p = arg;
    progress(p);
    int rc = rq_client_describe(p->c, TOKEN_DESCRIBE);
    RQ_ASSERT(rc == 0); /* the first admin operation always finds a free slot */
}

/* ---- main ------------------------------------------------------------------------------------ */

static int signals_setup(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR at once */
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ? -1 : 0;
}

/* Whether --timeout bounds the current wait: always, except while consume --follow reads. */
static int deadline_applies(const struct cli *p) {
    if (p->phase == PHASE_LEAVING) return 0;   /* group_tick bounds it */
    return !(p->args->command == CLI_CONSUME && p->args->follow && p->phase == PHASE_WORK);
}

static void check_deadline(struct cli *p) {
    if (p->phase == PHASE_DONE || !deadline_applies(p)) return;
    if (now_ns(p) - p->progress_ns < p->args->timeout_ms * MS) return;
    if (p->node.answers == 0) {
        fprintf(stderr, "raftq: no server answered within %" PRIu64 " ms (bootstrap %s%s)\n",
                p->args->timeout_ms, p->args->bootstrap[0],
                p->args->bootstrap_count > 1 ? ", ..." : "");
        if (p->args->json) printf("{\"error\":\"unreachable\"}\n");
        finish(p, CLI_EXIT_UNREACHABLE);
        return;
    }
    if (p->args->command == CLI_PRODUCE && p->queued > p->reported)
        fprintf(stderr, "raftq: %" PRIu64 " messages not acknowledged\n", p->queued - p->reported);
    fail_op(p, RQ_ETIMEOUT, "no progress within %" PRIu64 " ms", p->args->timeout_ms);
}

static void on_interrupt(struct cli *p) {
    if (p->args->command == CLI_CONSUME) return finish(p, CLI_EXIT_OK); /* the way to stop it */
    fprintf(stderr, "raftq: interrupted\n");
    finish(p, CLI_EXIT_FAILED);
}

/* Runs the command to its end; returns the exit code. */
static int run(struct cli *p) {
    while (p->phase != PHASE_DONE) {
        if (stop_signal) {
            stop_signal = 0;
            if (p->phase == PHASE_LEAVING) {   /* a second signal: out without leaving */
                fprintf(stderr, "raftq: interrupted while leaving the group\n");
                p->phase = PHASE_DONE;
                p->exit_code = CLI_EXIT_FAILED;
                break;
            }
            on_interrupt(p);
            if (p->phase == PHASE_DONE) break;
        }
        int rc = client_node_run_once(&p->node, CLI_WAIT_MS_MAX);
        fflush(stdout);
        if (rc != 0) {
            const struct shim_loop *loop = &p->node.loop;
            fprintf(stderr, "raftq: stopped: %s\n", loop->halted ? loop->halt_reason : "epoll");
            return CLI_EXIT_FAILED;
        }
        check_deadline(p);
    }
    fflush(stdout);
    return p->exit_code;
}

static int start(struct cli *p) {
    static const struct rq_client_callbacks cb = {.produced = on_produced,
                                                  .fetched = on_fetched,
                                                  .fetch_error = on_fetch_error,
                                                  .admin_done = on_admin_done,
                                                  .described = on_described,
                                                  .group_admin = on_group_admin,
                                                  .assigned = on_assigned,
                                                  .group_error = on_group_error};
    static const struct client_node_hooks hooks = {
        .start = on_start, .tick = act, .sent = on_sent, .frame = on_frame};
    const struct cli_args *a = p->args;
    static struct client_node_config c;
    memset(&c, 0, sizeof c);
    c.name = "raftq";
    c.bootstrap_count = a->bootstrap_count;
    for (uint32_t i = 0; i < a->bootstrap_count; i++)
        snprintf(c.bootstrap[i], sizeof c.bootstrap[i], "%s", a->bootstrap[i]);
    client_config(p, &c.client);
    c.callbacks = &cb;
    c.hooks = &hooks;
    c.arg = p;
    c.tick_ms = CLI_TICK_MS;
    c.index = 0;
    int rc = client_node_open(&p->node, &c);
    p->c = p->node.c;
    return rc;
}

int main(int argc, char **argv) {
    static struct cli_args args;
    static char err[CLI_ERROR_MAX];
    if (cli_args_parse(&args, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "raftq: %s\n(raftq --help for usage)\n", err);
        return CLI_EXIT_USAGE;
    }
    if (args.help) {
        fputs(cli_usage(), stdout);
        return CLI_EXIT_OK;
    }
    rq_log_set_sink(shim_log_stderr, NULL);
    rq_log_set_level(getenv("RAFTQ_DEBUG") ? RQ_LOG_DEBUG : RQ_LOG_ERROR);
    static struct cli p;
    p.args = &args;
    p.line = malloc(CLI_LINE_MAX);
    if (p.line == NULL || signals_setup() != 0) {
        fprintf(stderr, "raftq: out of memory or signals\n");
        return CLI_EXIT_FAILED;
    }
    int rc = start(&p);
    if (rc != 0) { /* an address that does not resolve: nothing can be reached */
        fprintf(stderr, "raftq: cannot set up the client: %s\n", rq_strerror(rc));
        free(p.line);
        return rc == RQ_EINVAL ? CLI_EXIT_UNREACHABLE : CLI_EXIT_FAILED;
    }
    int code = run(&p);
    client_node_close(&p.node);
    free(p.parts);
    free(p.probes);
    free(p.out);
    free(p.line);
    return code;
}
