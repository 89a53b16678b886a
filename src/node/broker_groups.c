/* Consumer groups on a broker (README, "Consumer groups"): the coordinator's requests, served
 * by the node that leads the controller from its in-memory coordinator (broker/coordinator.h),
 * and the cursors' requests, served by a partition's leader through CURSOR entries of the
 * partition's own log (broker/cursor.h). A group member's fetch is broker_client.c's fetch with
 * one more check, broker_fetch_owns. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "node/broker_internal.h"

static uint8_t *payload_buf(struct broker *b) { return b->answer + PROTO_FRAME_HEADER; }

/* The controller's Raft state when this node leads it, else NULL with *hint the leader known. */
static const struct raft *controller_led(const struct broker *b, uint32_t *hint) {
    const struct raft *r = host_raft(b->host, CONTROLLER_GROUP);
    *hint = r ? raft_leader(r) : 0;
    return r != NULL && raft_role(r) == RAFT_LEADER ? r : NULL;
}

void broker_groups_tick(struct broker *b, uint64_t now_ns) {
    uint32_t hint;
    const struct raft *r = controller_led(b, &hint);
    if (r == NULL || b->coord == NULL) return;
    if (b->coord_epoch != raft_term(r)) {   /* took office: the groups join again */
        coord_set_epoch(b->coord, raft_term(r));
        b->coord_epoch = raft_term(r);
        RQ_INFO("group coordinator: this node leads the controller at term %llu: groups start "
                "over", (unsigned long long)b->coord_epoch);
    }
    coord_tick(b->coord, now_ns);
}

/* ---- the coordinator's requests ------------------------------------------------------------- */

static void answer_assignment(struct broker *b, uint64_t conn, uint32_t correlation, int error,
                              uint32_t hint, const struct coord_answer *a) {
    struct proto_assignment_resp m = {.error = error, .leader_hint = hint};
    if (error == 0) {
        m.member_id = a->member_id;
        m.generation = a->generation;
        m.partition_count = a->partition_count;
    }
    size_t n = proto_encode_assignment_resp(payload_buf(b), BROKER_ANSWER_MAX, &m,
                                            error == 0 ? a->partitions : NULL);
    RQ_ASSERT(n > 0);
    broker_answer(b, conn, PROTO_ASSIGNMENT_RESP, correlation, n);
}

/* The coordinator when this node is it (its epoch set for the current term), else NULL with the
 * error to answer: RQ_ENOTLEADER (with *hint) or RQ_ENOMEM (no coordinator: out of memory). */
static struct coord *coordinator(struct broker *b, uint32_t *hint, int *err) {
    const struct raft *r = controller_led(b, hint);
    *err = RQ_ENOTLEADER;
    if (r == NULL) return NULL;
    if (b->coord == NULL && (b->coord = coord_create()) == NULL) {
        *err = RQ_ENOMEM;
        return NULL;
    }
    broker_groups_tick(b, broker_now(b));
    *err = 0;
    return b->coord;
}

static void join_group(struct broker *b, uint64_t conn, uint32_t correlation,
                       const struct proto_join_group_req *m) {
    uint32_t hint;
    int err;
    struct coord *c = coordinator(b, &hint, &err);
    struct coord_answer a;
    if (c != NULL) {
        const struct controller_topic *t =
            controller_topic(broker_controller(b), m->topic.data, m->topic.size);
        struct coord_join j = {.group = m->group, .topic = m->topic,
                               .member_name = m->member_name, .mode = m->mode,
                               .strategy = m->strategy, .session_ms = m->session_ms,
                               .member_id = m->member_id,
                               .partition_count = t ? t->partition_count : 0};
        err = t == NULL ? RQ_ENOTOPIC : coord_join(c, &j, broker_now(b), &a);
        if (err == 0)
            RQ_DEBUG("group %.*s: member %llu in generation %llu holds %u partitions",
                     (int)m->group.size, (const char *)m->group.data,
                     (unsigned long long)a.member_id, (unsigned long long)a.generation,
                     a.partition_count);
    }
    answer_assignment(b, conn, correlation, err, hint, &a);
}

static void heartbeat_group(struct broker *b, uint64_t conn, uint32_t correlation,
                            const struct proto_heartbeat_req *m) {
    uint32_t hint;
    int err;
    struct coord *c = coordinator(b, &hint, &err);
    struct coord_answer a;
    if (c != NULL) err = coord_heartbeat(c, m->group, m->member_id, broker_now(b), &a);
    answer_assignment(b, conn, correlation, err, hint, &a);
}

static void leave_group(struct broker *b, uint64_t conn, uint32_t correlation,
                        const struct proto_leave_group_req *m) {
    uint32_t hint;
    int err;
    struct coord *c = coordinator(b, &hint, &err);
    if (c != NULL) err = coord_leave(c, m->group, m->member_id);
    struct proto_status_resp s = {.error = err, .leader_hint = hint};
    size_t n = proto_encode_status_resp(payload_buf(b), BROKER_ANSWER_MAX, &s);
    broker_answer(b, conn, PROTO_LEAVE_GROUP_RESP, correlation, n);
}

static struct proto_group_summary summary_of(const struct coord_group *g) {
    return (struct proto_group_summary){.group = {g->name, g->name_size},
                                        .topic = {g->topic, g->topic_size},
                                        .mode = g->mode, .strategy = g->strategy,
                                        .generation = g->generation,
                                        .member_count = g->member_count};
}

static void list_groups(struct broker *b, uint64_t conn, uint32_t correlation) {
    uint32_t hint;
    int err;
    struct coord *c = coordinator(b, &hint, &err);
    struct proto_group_summary groups[PROTO_GROUPS_MAX];
    uint32_t count = c ? coord_group_count(c) : 0;
    for (uint32_t i = 0; i < count; i++) groups[i] = summary_of(coord_group_at(c, i));
    size_t n = proto_encode_list_groups_resp(payload_buf(b), BROKER_ANSWER_MAX, err, hint, groups,
                                             count);
    RQ_ASSERT(n > 0);   /* PROTO_GROUPS_MAX summaries fit an answer */
    broker_answer(b, conn, PROTO_LIST_GROUPS_RESP, correlation, n);
}

static void describe_group(struct broker *b, uint64_t conn, uint32_t correlation,
                           const struct proto_describe_group_req *m) {
    uint32_t hint;
    int err;
    struct coord *c = coordinator(b, &hint, &err);
    const struct coord_group *g = c ? coord_find(c, m->group) : NULL;
    if (c != NULL && g == NULL) err = RQ_ENOENT;
    struct proto_describe_group_resp resp = {.error = err, .leader_hint = hint};
    struct proto_group_member_in members[PROTO_GROUP_MEMBERS_MAX];
    uint32_t (*partitions)[PROTO_GROUP_PARTITIONS_MAX] =   /* 256 KiB at most: not the stack */
        g ? calloc(g->member_count, sizeof *partitions) : NULL;
    if (g != NULL && partitions == NULL) g = NULL, resp.error = RQ_ENOMEM;
    if (g != NULL) {
        resp.summary = summary_of(g);
        for (uint32_t i = 0; i < g->member_count; i++) {
            const struct coord_member *cm = &g->members[i];
            members[i] = (struct proto_group_member_in){
                .member_id = cm->id, .member_name = {cm->name, cm->name_size},
                .session_ms = cm->session_ms,
                .partition_count = coord_member_partitions(g, i, partitions[i]),
                .partitions = partitions[i]};
        }
    }
    size_t n = proto_encode_describe_group_resp(payload_buf(b), BROKER_ANSWER_MAX, &resp, members);
    free(partitions);
    RQ_ASSERT(n > 0);
    broker_answer(b, conn, PROTO_DESCRIBE_GROUP_RESP, correlation, n);
}

/* ---- cursors: claims, commits, resets, and reading the committed offset --------------------- */

static void answer_offset(struct broker *b, uint64_t conn, uint32_t correlation, int error,
                          uint32_t hint, uint64_t committed, const struct broker_part *part) {
    struct proto_offset_resp m = {.error = error, .leader_hint = hint, .committed = committed};
    if (part != NULL) {
        m.log_start = part_group_log_start(part->pg);
        m.high_watermark = part_group_state(part->pg)->next_offset;
    }
    size_t n = proto_encode_offset_resp(payload_buf(b), BROKER_ANSWER_MAX, &m);
    RQ_ASSERT(n > 0);
    broker_answer(b, conn, PROTO_OFFSET_RESP, correlation, n);
}

void broker_cursor_done(struct broker *b, struct broker_request *r,
                        const struct part_group_result *res) {
    RQ_ASSERT(r->kind == REQ_CURSOR);
    const struct broker_part *part = b->parts[r->group];
    answer_offset(b, r->conn, r->correlation, res->error, 0,
                  res->error == RQ_ETIMEOUT || res->error == RQ_ENOTLEADER ? PROTO_NO_OFFSET
                                                                            : res->committed,
                  part);
    broker_request_free(b, r);
}

static uint8_t cursor_op(uint8_t type) {
    switch (type) {
    case PROTO_CLAIM_REQ: return CURSOR_CLAIM;
    case PROTO_COMMIT_REQ: return CURSOR_COMMIT;
    case PROTO_RESET_OFFSET_REQ: return CURSOR_RESET;
    default: return 0;   /* OFFSET_FETCH: a read */
    }
}

/* CLAIM, COMMIT and RESET_OFFSET become a CURSOR entry the partition's leader proposes, answered
 * once applied; OFFSET_FETCH is answered from the leader's applied state. */
static void cursor_request(struct broker *b, uint64_t conn, uint32_t correlation, uint8_t type,
                           const struct proto_offset_req *m) {
    int err;
    uint32_t hint;
    const struct raft *r;
    struct broker_part *part = broker_part_led(b, m->topic, m->partition, &err, &hint, &r);
    if (err == 0 && cursor_op(type) == 0) {
        const struct partition_cursor *c =
            cursor_table_find(&part_group_state(part->pg)->cursors, m->cursor);
        answer_offset(b, conn, correlation, 0, 0, c ? c->committed : PROTO_NO_OFFSET, part);
        return;
    }
    struct broker_request *w = NULL;
    if (err == 0 && (w = broker_request_new(b, REQ_CURSOR, conn, correlation,
                                            PROTO_OFFSET_RESP)) == NULL)
        err = RQ_EBUSY;
    if (err == 0) {
        w->group = part->group;
        struct cursor_entry e = {.op = cursor_op(type), .name = m->cursor,
                                 .generation = m->generation, .member = m->member_id,
                                 .offset = m->offset};
        err = part_group_cursor(part->pg, b->host, &e, broker_request_cookie(b, w), broker_now(b));
        if (err == RQ_ENOTLEADER) hint = raft_leader(r);
        if (err != 0) broker_request_free(b, w);
    }
    if (err != 0) answer_offset(b, conn, correlation, err, hint, PROTO_NO_OFFSET, part);
}

int broker_fetch_owns(const struct broker *b, const struct broker_request *w) {
    if (w->cursor_size == 0) return 1;
    const struct broker_part *part = b->parts[w->group];
    struct proto_bytes name = {w->cursor, w->cursor_size};
    return cursor_table_owns(&part_group_state(part->pg)->cursors, name, w->cursor_generation,
                             w->cursor_member);
}

int broker_groups_serve(struct broker *b, uint64_t conn, const struct proto_frame *f,
                        const struct proto_msg *m) {
    switch (f->type) {
    case PROTO_JOIN_GROUP_REQ: join_group(b, conn, f->correlation, &m->u.join_group_req); break;
    case PROTO_HEARTBEAT_REQ:
        heartbeat_group(b, conn, f->correlation, &m->u.heartbeat_req);
        break;
    case PROTO_LEAVE_GROUP_REQ: leave_group(b, conn, f->correlation, &m->u.leave_group_req); break;
    case PROTO_LIST_GROUPS_REQ: list_groups(b, conn, f->correlation); break;
    case PROTO_DESCRIBE_GROUP_REQ:
        describe_group(b, conn, f->correlation, &m->u.describe_group_req);
        break;
    case PROTO_CLAIM_REQ:
    case PROTO_COMMIT_REQ:
    case PROTO_OFFSET_FETCH_REQ:
    case PROTO_RESET_OFFSET_REQ:
        cursor_request(b, conn, f->correlation, f->type, &m->u.offset_req);
        break;
    default: return 0;
    }
    return 1;
}
