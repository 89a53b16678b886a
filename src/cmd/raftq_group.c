/* raftq_group.c — raftq's consumer-group commands: consume --group, group list, group describe,
 * group reset-offsets (README, "Consumer groups").
 *
 * consume --group joins the group through the library (client.h, "Consumer group"), prints what
 * it is given like a plain consume, and on its way out (--count reached, the end without
 * --follow, Ctrl-C or SIGTERM) commits its positions and leaves, so the group's next member
 * starts after what this one printed. Without --follow it stops once every partition it was
 * assigned reached the end it had at the member's first fetch of it.
 *
 * describe and reset-offsets read or move the group's cursor on each partition of its topic,
 * one partition after the other (an OFFSET_FETCH, then for a reset the RESET_OFFSET). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/errors.h"
#include "cmd/raftq_internal.h"

enum {
    LEAVE_WAIT_MS = 3000,   /* the longest a member waits to commit and leave on its way out */
    TOKEN_OFFSET = 3,       /* describe / reset: an OFFSET_FETCH */
    TOKEN_RESET = 4,        /* reset: the RESET_OFFSET */
};

#define MS ((uint64_t)1000 * 1000)

static const char *mode_name(uint8_t mode) { return mode == PROTO_MODE_PUBSUB ? "pubsub" : "queue"; }
static const char *strategy_name(uint8_t s) { return s == PROTO_STRATEGY_RANGE ? "range" : "sticky"; }

/* The cursor the commands read: the group, or GROUP/MEMBER for a pub/sub member. */
static struct proto_bytes cursor_of(const struct cli *p, char *buf, size_t cap) {
    const struct cli_args *a = p->args;
    int n = a->member ? snprintf(buf, cap, "%s/%s", a->group, a->member)
                      : snprintf(buf, cap, "%s", a->group);
    RQ_ASSERT(n > 0 && (size_t)n < cap);
    return (struct proto_bytes){(const uint8_t *)buf, (uint32_t)n};
}

/* The topic whose offsets describe and reset-offsets read. */
static const char *topic_of(const struct cli *p) {
    return p->args->topic ? p->args->topic : p->group_topic;
}

/* ---- consume --group ------------------------------------------------------------------------ */

void group_consume_start(struct cli *p, const struct proto_metadata_resp *m) {
    const struct cli_args *a = p->args;
    struct proto_topic t;
    int found = topic_find(m, a->topic, &t);
    RQ_ASSERT(found);   /* consume_start checked */
    p->partition_count = t.partition_count;
    p->parts = calloc(t.partition_count ? t.partition_count : 1, sizeof *p->parts);
    if (p->parts == NULL) return fail_op(p, RQ_ENOMEM, "consume %s", a->topic);
    static char name[32];   /* queue mode without --member: named after this process */
    if (a->member == NULL) snprintf(name, sizeof name, "raftq-%d", (int)getpid());
    struct rq_group_config g = {.group = bytes_of(a->group), .topic = bytes_of(a->topic),
                                .member_name = bytes_of(a->member ? a->member : name),
                                .mode = a->mode,
                                .strategy = a->strategy, .session_ms = (uint32_t)a->session_ms,
                                .commit_every_ns = 1000 * MS,
                                .from_latest = a->start != CLI_START_BEGINNING};
    int rc = rq_client_join_group(p->c, &g);
    if (rc != 0) return fail_op(p, rc, "consume %s --group %s", a->topic, a->group);
    p->grouped = 1;
}

void on_assigned(void *arg, uint64_t generation, uint64_t member_id, const uint32_t *partitions,
                 uint32_t count) {
    struct cli *p = arg;
    if (p->phase != PHASE_WORK || p->parts == NULL) return;
    progress(p);
    p->group_generation = generation;
    for (uint32_t i = 0; i < p->partition_count; i++) p->parts[i].used = 0;
    for (uint32_t i = 0; i < count; i++)
        if (partitions[i] < p->partition_count) p->parts[partitions[i]].used = 1;
    if (!p->args->json) {
        fprintf(stderr, "raftq: member %" PRIu64 " of group %s, generation %" PRIu64 ":",
                member_id, p->args->group, generation);
        for (uint32_t i = 0; i < count; i++) fprintf(stderr, "%s%u", i ? "," : " partitions ", partitions[i]);
        fprintf(stderr, "%s\n", count ? "" : " no partitions");
    }
    /* Without --follow: done once each partition reaches its end (or at once with none). */
    if (!p->args->follow && count == 0) finish(p, CLI_EXIT_OK);
}

void group_consume_leave(struct cli *p, int exit_code) {
    p->grouped = 0;   /* once */
    p->leave_code = exit_code;
    p->phase = PHASE_LEAVING;
    p->leave_deadline_ns = now_ns(p) + LEAVE_WAIT_MS * MS;
    if (rq_client_leave_group(p->c) != 0) {   /* the member had stopped already */
        p->phase = PHASE_DONE;
        p->exit_code = exit_code;
    }
}

void on_group_error(void *arg, int error) {
    struct cli *p = arg;
    if (p->phase == PHASE_LEAVING) {   /* left: committed what it printed */
        p->phase = PHASE_DONE;
        p->exit_code = p->leave_code;
        return;
    }
    p->grouped = 0;   /* the member stopped: nothing to leave */
    fail_op(p, error, "consume %s --group %s", p->args->topic, p->args->group);
}

void group_tick(struct cli *p) {
    if (p->phase != PHASE_LEAVING || now_ns(p) < p->leave_deadline_ns) return;
    fprintf(stderr, "raftq: group %s: could not commit and leave within %d ms; its last "
                    "messages may be delivered again\n", p->args->group, LEAVE_WAIT_MS);
    p->phase = PHASE_DONE;
    p->exit_code = p->leave_code;
}

/* ---- group list ----------------------------------------------------------------------------- */

static void print_list(struct cli *p, const struct proto_list_groups_resp *m) {
    int json = p->args->json;
    if (json) printf("{\"groups\":[");
    else if (m->group_count == 0) printf("no groups with live members\n");
    size_t cursor = 0;
    struct proto_group_summary g;
    for (int first = 1; proto_group_summary_next(m, &cursor, &g); first = 0) {
        if (json) {
            printf("%s{\"group\":", first ? "" : ",");
            print_json_string(g.group.data, g.group.size);
            printf(",\"topic\":");
            print_json_string(g.topic.data, g.topic.size);
            printf(",\"mode\":\"%s\",\"strategy\":\"%s\",\"generation\":%" PRIu64
                   ",\"members\":%u}", mode_name(g.mode), strategy_name(g.strategy),
                   g.generation, g.member_count);
        } else {
            printf("%.*s  topic %.*s  %s  %s  generation %" PRIu64 "  %u member%s\n",
                   (int)g.group.size, (const char *)g.group.data, (int)g.topic.size,
                   (const char *)g.topic.data, mode_name(g.mode), strategy_name(g.strategy),
                   g.generation, g.member_count, g.member_count == 1 ? "" : "s");
        }
    }
    if (json) printf("]}\n");
    finish(p, CLI_EXIT_OK);
}

/* ---- group describe and reset-offsets: one partition after the other ------------------------- */

static void offset_next(struct cli *p) {
    char buf[PROTO_CURSOR_MAX + 1];
    if (p->group_partition >= p->group_partitions) {
        if (p->args->json) printf("]}\n");
        return finish(p, CLI_EXIT_OK);
    }
    int rc = rq_client_offset(p->c, PROTO_OFFSET_FETCH_REQ, bytes_of(topic_of(p)),
                              p->group_partition, cursor_of(p, buf, sizeof buf), 0, TOKEN_OFFSET);
    if (rc != 0) fail_op(p, rc, "group %s: partition %u", p->args->group, p->group_partition);
}

static void print_offset(struct cli *p, const struct proto_offset_resp *m) {
    int json = p->args->json;
    int known = m->committed != PROTO_NO_OFFSET;
    uint64_t lag = known && m->high_watermark > m->committed ? m->high_watermark - m->committed : 0;
    if (json) {
        printf("%s{\"partition\":%u,\"committed\":", p->group_first ? "" : ",", p->group_partition);
        if (known) printf("%" PRIu64 ",\"lag\":%" PRIu64, m->committed, lag);
        else printf("null,\"lag\":null");
        printf(",\"log_start\":%" PRIu64 ",\"end\":%" PRIu64 "}", m->log_start, m->high_watermark);
    } else if (known) {
        printf("  partition %u: committed %" PRIu64 "  end %" PRIu64 "  lag %" PRIu64 "\n",
               p->group_partition, m->committed, m->high_watermark, lag);
    } else {
        printf("  partition %u: nothing committed  (log %" PRIu64 "..%" PRIu64 ")\n",
               p->group_partition, m->log_start, m->high_watermark);
    }
    p->group_first = 0;
}

/* reset-offsets: the target offset of this partition, from its bounds. */
static uint64_t reset_target(const struct cli *p, const struct proto_offset_resp *m) {
    switch (p->args->reset) {
    case CLI_RESET_EARLIEST: return m->log_start;
    case CLI_RESET_LATEST: return m->high_watermark;
    default: return p->args->offset;
    }
}

static void offset_answer(struct cli *p, uint64_t token, const struct proto_offset_resp *m) {
    char buf[PROTO_CURSOR_MAX + 1];
    if (p->args->command == CLI_GROUP_DESCRIBE) {
        print_offset(p, m);
        p->group_partition++;
        return offset_next(p);
    }
    if (token == TOKEN_OFFSET) {   /* the bounds are known: now the reset */
        int rc = rq_client_offset(p->c, PROTO_RESET_OFFSET_REQ, bytes_of(topic_of(p)),
                                  p->group_partition, cursor_of(p, buf, sizeof buf),
                                  reset_target(p, m), TOKEN_RESET);
        if (rc != 0) fail_op(p, rc, "group %s: partition %u", p->args->group, p->group_partition);
        return;
    }
    if (p->args->json)
        printf("%s{\"partition\":%u,\"committed\":%" PRIu64 "}", p->group_first ? "" : ",",
               p->group_partition, m->committed);
    else
        printf("  partition %u: committed offset now %" PRIu64 "\n", p->group_partition,
               m->committed);
    p->group_first = 0;
    p->group_partition++;
    offset_next(p);
}

static void print_member(const struct proto_group_member *mb, int json, int first) {
    size_t cursor = 0;
    uint32_t part;
    if (json) {
        printf("%s{\"member\":%" PRIu64 ",\"name\":", first ? "" : ",", mb->member_id);
        print_json_string(mb->member_name.data, mb->member_name.size);
        printf(",\"session_ms\":%u,\"partitions\":[", mb->session_ms);
        for (int f = 1; proto_member_partition_next(mb, &cursor, &part); f = 0)
            printf("%s%u", f ? "" : ",", part);
        printf("]}");
        return;
    }
    printf("  member %" PRIu64 " %.*s  session %u ms  partitions", mb->member_id,
           (int)mb->member_name.size, (const char *)mb->member_name.data, mb->session_ms);
    for (int f = 1; proto_member_partition_next(mb, &cursor, &part); f = 0)
        printf("%s%u", f ? " " : ",", part);
    printf("%s\n", mb->partition_count ? "" : " none");
}

/* The members, then (its topic known) each partition's committed offset. */
static void print_described(struct cli *p, const struct proto_describe_group_resp *m) {
    const struct proto_group_summary *g = &m->summary;
    int json = p->args->json;
    if (json) {
        printf("{\"group\":\"%s\",\"topic\":", p->args->group);
        print_json_string(g->topic.data, g->topic.size);
        printf(",\"mode\":\"%s\",\"strategy\":\"%s\",\"generation\":%" PRIu64 ",\"members\":[",
               mode_name(g->mode), strategy_name(g->strategy), g->generation);
    } else {
        printf("group %s: topic %.*s, %s mode, %s, generation %" PRIu64 ", %u member%s\n",
               p->args->group, (int)g->topic.size, (const char *)g->topic.data,
               mode_name(g->mode), strategy_name(g->strategy), g->generation, g->member_count,
               g->member_count == 1 ? "" : "s");
    }
    size_t cursor = 0;
    struct proto_group_member mb;
    for (int first = 1; proto_member_next(m, &cursor, &mb); first = 0) print_member(&mb, json, first);
    if (json) printf("],\"offsets\":[");
}

/* The partitions the offsets are read for: --partition, or every partition of the topic. */
static int group_command_partitions(struct cli *p) {
    if (p->args->partition_set) {
        p->group_partition = p->args->partition;
        p->group_partitions = p->args->partition + 1;
        return 0;
    }
    p->group_partition = 0;
    p->group_partitions = rq_client_partitions(p->c, bytes_of(topic_of(p)));
    return p->group_partitions == 0 ? RQ_ENOTOPIC : 0;
}

static void describe_answer(struct cli *p, const struct proto_describe_group_resp *m) {
    print_described(p, m);
    if (p->args->topic == NULL) {   /* the topic the coordinator named */
        memcpy(p->group_topic, m->summary.topic.data, m->summary.topic.size);
        p->group_topic[m->summary.topic.size] = '\0';
    }
    p->group_first = 1;
    int rc = group_command_partitions(p);
    if (rc != 0) return fail_op(p, rc, "group describe %s: topic %s", p->args->group, topic_of(p));
    offset_next(p);
}

void group_command_start(struct cli *p, const struct proto_metadata_resp *m) {
    const struct cli_args *a = p->args;
    struct proto_topic t = {0};
    int rc = 0;
    if (a->topic != NULL && !topic_find(m, a->topic, &t))
        return fail_op(p, RQ_ENOTOPIC, "group %s: topic %s", a->group ? a->group : "", a->topic);
    if (a->partition_set && a->partition >= t.partition_count)
        return fail_op(p, RQ_ENOTOPIC, "group %s: no partition %u (topic %s has %u)", a->group,
                       a->partition, a->topic, t.partition_count);
    switch (a->command) {
    case CLI_GROUP_LIST: rc = rq_client_list_groups(p->c, TOKEN_COMMAND); break;
    case CLI_GROUP_DESCRIBE:
        rc = rq_client_describe_group(p->c, bytes_of(a->group), TOKEN_COMMAND);
        break;
    case CLI_GROUP_RESET:
        p->group_first = 1;
        if (a->json) printf("{\"group\":\"%s\",\"topic\":\"%s\",\"offsets\":[", a->group, a->topic);
        else printf("group %s, topic %s:\n", a->group, a->topic);
        rc = group_command_partitions(p);
        if (rc == 0) offset_next(p);
        break;
    default: RQ_UNREACHABLE();
    }
    if (rc != 0) fail_op(p, rc, "group %s", a->group ? a->group : "list");
}

/* describe of a group without live members (RQ_ENOENT): with --topic its offsets still show. */
void group_admin_failed(struct cli *p, int error) {
    const struct cli_args *a = p->args;
    if (a->command != CLI_GROUP_DESCRIBE || error != RQ_ENOENT || a->topic == NULL)
        return fail_op(p, error, "group %s", a->group ? a->group : "list");
    if (a->json) printf("{\"group\":\"%s\",\"topic\":\"%s\",\"members\":[],\"offsets\":[",
                        a->group, a->topic);
    else printf("group %s: no live members; topic %s\n", a->group, a->topic);
    p->group_first = 1;
    int rc = group_command_partitions(p);
    if (rc != 0) return fail_op(p, rc, "group describe %s", a->group);
    offset_next(p);
}

void on_group_admin(void *arg, uint64_t token, const struct proto_msg *m) {
    struct cli *p = arg;
    if (p->phase != PHASE_WORK) return;
    progress(p);
    switch (m->type) {
    case PROTO_LIST_GROUPS_RESP: return print_list(p, &m->u.list_groups_resp);
    case PROTO_DESCRIBE_GROUP_RESP: return describe_answer(p, &m->u.describe_group_resp);
    case PROTO_OFFSET_RESP: return offset_answer(p, token, &m->u.offset_resp);
    default: RQ_UNREACHABLE();
    }
}
