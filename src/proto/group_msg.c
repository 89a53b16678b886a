/* The consumer-group messages; see group_msg.h and docs/protocol.md.
 *
 * Decoded as strictly as msg.c decodes the rest, with its field readers (codec_internal.h): every
 * name checked, every enum byte one of its values, every count and list within its maximum,
 * partition lists strictly increasing, ids and generations non-zero where the header requires it.
 * Each rule a decoder refuses is asserted by the matching encoder, so the two cannot drift: a
 * message we send is one we would take. */
#include "proto/group_msg.h"

#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "proto/codec_internal.h"
#include "proto/msg.h"

_Static_assert(PROTO_CURSOR_MAX == PROTO_GROUP_NAME_MAX + 1 + PROTO_MEMBER_NAME_MAX,
               "a cursor is GROUP/MEMBER at most");
_Static_assert(PROTO_SESSION_MS_MIN >= 1 && PROTO_SESSION_MS_MIN < PROTO_SESSION_MS_MAX,
               "a session range that is not empty");
_Static_assert((int)PROTO_GROUP_PARTITIONS_MAX <= (int)PROTO_PARTITIONS_MAX,
               "a group consumes the partitions of one topic");
_Static_assert(PROTO_LEAVE_GROUP_REQ + 1 == PROTO_LEAVE_GROUP_RESP, "the group types in order");
_Static_assert(PROTO_JOIN_GROUP_REQ == 18 && PROTO_DESCRIBE_GROUP_RESP == 32,
               "the group types are 18..32 (msg.c hands them here)");

/* ---- names ------------------------------------------------------------------------------------
 */

static int name_char_valid(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

int proto_group_name_valid(const uint8_t *name, size_t size, size_t max) {
    if (size == 0 || size > max) return 0;
    RQ_ASSERT(name != NULL);
    for (size_t i = 0; i < size; i++)
        if (!name_char_valid(name[i])) return 0;
    return 1;
}

int proto_cursor_valid(const uint8_t *name, size_t size) {
    if (size == 0 || size > PROTO_CURSOR_MAX) return 0;
    RQ_ASSERT(name != NULL);
    const uint8_t *slash = memchr(name, '/', size);
    if (slash == NULL) return proto_group_name_valid(name, size, PROTO_GROUP_NAME_MAX);
    size_t group_size = (size_t)(slash - name);
    return proto_group_name_valid(name, group_size, PROTO_GROUP_NAME_MAX) &&
           proto_group_name_valid(slash + 1, size - group_size - 1, PROTO_MEMBER_NAME_MAX);
}

static int member_name_valid(struct proto_bytes b) {
    return b.size == 0 || proto_group_name_valid(b.data, b.size, PROTO_MEMBER_NAME_MAX);
}

static int mode_valid(uint8_t mode) {
    return mode == PROTO_MODE_QUEUE || mode == PROTO_MODE_PUBSUB;
}

static int strategy_valid(uint8_t strategy) {
    return strategy == PROTO_STRATEGY_RANGE || strategy == PROTO_STRATEGY_STICKY;
}

static int session_valid(uint32_t session_ms) {
    return session_ms >= PROTO_SESSION_MS_MIN && session_ms <= PROTO_SESSION_MS_MAX;
}

/* Which of generation, member_id and offset each offset request carries (group_msg.h). */
static int offset_req_valid(uint8_t type, const struct proto_offset_req *m) {
    switch (type) {
    case PROTO_CLAIM_REQ: return m->generation >= 1 && m->member_id >= 1 && m->offset == 0;
    case PROTO_COMMIT_REQ: return m->generation >= 1 && m->member_id >= 1;
    case PROTO_OFFSET_FETCH_REQ: return m->generation == 0 && m->member_id == 0 && m->offset == 0;
    case PROTO_RESET_OFFSET_REQ: return m->generation == 0 && m->member_id == 0;
    default: return 0;
    }
}

/* ---- reading ----------------------------------------------------------------------------------
 */

/* A group name (or a member name that may not be empty): 1..max valid bytes. */
static struct proto_bytes read_name(struct rq_reader *r, size_t max) {
    struct proto_bytes b = read_field(r, max);
    if (r->err == 0 && !proto_group_name_valid(b.data, b.size, max)) bad(r, RQ_ECORRUPT);
    return b;
}

/* A member name that may be empty. */
static struct proto_bytes read_member_name(struct rq_reader *r) {
    struct proto_bytes b = read_field(r, PROTO_MEMBER_NAME_MAX);
    if (r->err == 0 && !member_name_valid(b)) bad(r, RQ_ECORRUPT);
    return b;
}

static struct proto_bytes read_cursor(struct rq_reader *r) {
    struct proto_bytes b = read_field(r, PROTO_CURSOR_MAX);
    if (r->err == 0 && !proto_cursor_valid(b.data, b.size)) bad(r, RQ_ECORRUPT);
    return b;
}

/* A member id or generation that must be given: >= 1. */
static uint64_t read_id(struct rq_reader *r) {
    uint64_t v = read_num(r, UINT64_MAX);
    if (r->err == 0 && v == 0) bad(r, RQ_ECORRUPT);
    return v;
}

static uint32_t read_session(struct rq_reader *r) {
    uint32_t v = (uint32_t)read_num(r, PROTO_SESSION_MS_MAX);
    if (r->err == 0 && !session_valid(v)) bad(r, RQ_ECORRUPT);
    return v;
}

static uint8_t read_mode(struct rq_reader *r) {
    uint8_t v = 0;
    rq_read_u8(r, &v);
    if (r->err == 0 && !mode_valid(v)) bad(r, RQ_ECORRUPT);
    return v;
}

static uint8_t read_strategy(struct rq_reader *r) {
    uint8_t v = 0;
    rq_read_u8(r, &v);
    if (r->err == 0 && !strategy_valid(v)) bad(r, RQ_ECORRUPT);
    return v;
}

/* count partition indexes, each below PROTO_PARTITIONS_MAX, strictly increasing. */
static void read_partition_list(struct rq_reader *r, uint32_t count, const uint8_t **data,
                                size_t *size) {
    RQ_ASSERT(count <= PROTO_GROUP_PARTITIONS_MAX);
    size_t start = r->pos;
    uint64_t prev = 0;
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        uint64_t p = read_num(r, PROTO_PARTITIONS_MAX - 1);
        if (r->err == 0 && i > 0 && p <= prev) bad(r, RQ_ECORRUPT);
        prev = p;
    }
    *data = r->err ? NULL : at(r, start);
    *size = r->err ? 0 : r->pos - start;
}

static void decode_join_group_req(struct rq_reader *r, struct proto_join_group_req *m) {
    m->group = read_name(r, PROTO_GROUP_NAME_MAX);
    m->topic = read_topic(r);
    m->member_name = read_member_name(r);
    m->mode = read_mode(r);
    m->strategy = read_strategy(r);
    m->session_ms = read_session(r);
    m->member_id = read_num(r, UINT64_MAX);
    /* A pub/sub member's name is its cursor's second half: it must have one. */
    if (r->err == 0 && m->mode == PROTO_MODE_PUBSUB && m->member_name.size == 0)
        bad(r, RQ_ECORRUPT);
}

static void decode_assignment_resp(struct rq_reader *r, struct proto_assignment_resp *m) {
    m->error = read_err(r);
    m->leader_hint = (uint32_t)read_num(r, UINT32_MAX);
    m->member_id = read_num(r, UINT64_MAX);
    m->generation = read_num(r, UINT64_MAX);
    if (r->err == 0 && m->error == 0 && (m->member_id == 0 || m->generation == 0))
        bad(r, RQ_ECORRUPT);
    m->partition_count = (uint32_t)read_num(r, PROTO_GROUP_PARTITIONS_MAX);
    read_partition_list(r, m->partition_count, &m->partitions, &m->partitions_size);
}

static void decode_offset_req(struct rq_reader *r, uint8_t type, struct proto_offset_req *m) {
    m->topic = read_topic(r);
    m->partition = (uint32_t)read_num(r, PROTO_PARTITIONS_MAX - 1);
    m->cursor = read_cursor(r);
    m->generation = read_num(r, UINT64_MAX);
    m->member_id = read_num(r, UINT64_MAX);
    m->offset = read_num(r, UINT64_MAX);
    if (r->err == 0 && !offset_req_valid(type, m)) bad(r, RQ_ECORRUPT);
}

static void decode_offset_resp(struct rq_reader *r, struct proto_offset_resp *m) {
    m->error = read_err(r);
    m->leader_hint = (uint32_t)read_num(r, UINT32_MAX);
    m->committed = read_num(r, UINT64_MAX);
    m->log_start = read_num(r, UINT64_MAX);
    m->high_watermark = read_num(r, UINT64_MAX);
    if (r->err == 0 && m->log_start > m->high_watermark) bad(r, RQ_ECORRUPT);
}

/* A FETCH_REQ with a cursor's claim after it; only the leader answers it. */
static void decode_group_fetch_req(struct rq_reader *r, struct proto_fetch_req *m) {
    proto_read_fetch_req(r, m);
    m->cursor = read_cursor(r);
    m->generation = read_id(r);
    m->member_id = read_id(r);
    if (r->err == 0 && m->from_follower != 0) bad(r, RQ_ECORRUPT);
}

static void read_summary(struct rq_reader *r, struct proto_group_summary *s) {
    s->group = read_name(r, PROTO_GROUP_NAME_MAX);
    s->topic = read_topic(r);
    s->mode = read_mode(r);
    s->strategy = read_strategy(r);
    s->generation = read_num(r, UINT64_MAX);
    s->member_count = (uint32_t)read_num(r, PROTO_GROUP_MEMBERS_MAX);
}

static void decode_list_groups_resp(struct rq_reader *r, struct proto_list_groups_resp *m) {
    m->error = read_err(r);
    m->leader_hint = (uint32_t)read_num(r, UINT32_MAX);
    m->group_count = (uint32_t)read_num(r, PROTO_GROUPS_MAX);
    size_t start = r->pos;
    for (uint32_t i = 0; i < m->group_count && r->err == 0; i++) {
        struct proto_group_summary s;
        read_summary(r, &s);
    }
    m->groups = r->err ? NULL : at(r, start);
    m->groups_size = r->err ? 0 : r->pos - start;
}

static void read_member(struct rq_reader *r, struct proto_group_member *out) {
    memset(out, 0, sizeof *out);
    out->member_id = read_id(r);
    out->member_name = read_member_name(r);
    out->session_ms = read_session(r);
    out->partition_count = (uint32_t)read_num(r, PROTO_GROUP_PARTITIONS_MAX);
    read_partition_list(r, out->partition_count, &out->partitions, &out->partitions_size);
}

/* The summary and the members follow only when error is 0 (an error names no group). */
static void decode_describe_group_resp(struct rq_reader *r, struct proto_describe_group_resp *m) {
    m->error = read_err(r);
    m->leader_hint = (uint32_t)read_num(r, UINT32_MAX);
    if (r->err != 0 || m->error != 0) return;
    read_summary(r, &m->summary);
    size_t start = r->pos;
    for (uint32_t i = 0; i < m->summary.member_count && r->err == 0; i++) {
        struct proto_group_member member;
        read_member(r, &member);
    }
    m->members = r->err ? NULL : at(r, start);
    m->members_size = r->err ? 0 : r->pos - start;
}

void proto_group_decode_body(struct rq_reader *r, uint8_t type, struct proto_msg *out) {
    switch (type) {
    case PROTO_JOIN_GROUP_REQ: decode_join_group_req(r, &out->u.join_group_req); break;
    case PROTO_ASSIGNMENT_RESP: decode_assignment_resp(r, &out->u.assignment_resp); break;
    case PROTO_HEARTBEAT_REQ:
        out->u.heartbeat_req.group = read_name(r, PROTO_GROUP_NAME_MAX);
        out->u.heartbeat_req.member_id = read_id(r);
        out->u.heartbeat_req.generation = read_num(r, UINT64_MAX);
        break;
    case PROTO_LEAVE_GROUP_REQ:
        out->u.leave_group_req.group = read_name(r, PROTO_GROUP_NAME_MAX);
        out->u.leave_group_req.member_id = read_id(r);
        break;
    case PROTO_LEAVE_GROUP_RESP: read_status_resp(r, &out->u.status_resp); break;
    case PROTO_CLAIM_REQ:
    case PROTO_COMMIT_REQ:
    case PROTO_OFFSET_FETCH_REQ:
    case PROTO_RESET_OFFSET_REQ: decode_offset_req(r, type, &out->u.offset_req); break;
    case PROTO_OFFSET_RESP: decode_offset_resp(r, &out->u.offset_resp); break;
    case PROTO_GROUP_FETCH_REQ: decode_group_fetch_req(r, &out->u.fetch_req); break;
    case PROTO_LIST_GROUPS_REQ: break;
    case PROTO_LIST_GROUPS_RESP: decode_list_groups_resp(r, &out->u.list_groups_resp); break;
    case PROTO_DESCRIBE_GROUP_REQ:
        out->u.describe_group_req.group = read_name(r, PROTO_GROUP_NAME_MAX);
        break;
    case PROTO_DESCRIBE_GROUP_RESP:
        decode_describe_group_resp(r, &out->u.describe_group_resp);
        break;
    default: bad(r, RQ_ETYPE); break;
    }
}

/* ---- iterators (on decoded, hence valid, messages) ----------------------------------------------
 */

/* The next partition of a list read_partition_list checked. */
static int partition_list_next(const uint8_t *data, size_t size, size_t *cursor, uint32_t *out) {
    if (*cursor >= size) return 0;
    struct rq_reader r;
    iter_open(&r, data, size, *cursor);
    *out = (uint32_t)read_num(&r, PROTO_PARTITIONS_MAX - 1);
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

int proto_assignment_next(const struct proto_assignment_resp *m, size_t *cursor, uint32_t *out) {
    return partition_list_next(m->partitions, m->partitions_size, cursor, out);
}

int proto_member_partition_next(const struct proto_group_member *m, size_t *cursor, uint32_t *out) {
    return partition_list_next(m->partitions, m->partitions_size, cursor, out);
}

int proto_group_summary_next(const struct proto_list_groups_resp *m, size_t *cursor,
                             struct proto_group_summary *out) {
    if (*cursor >= m->groups_size) return 0;
    struct rq_reader r;
    iter_open(&r, m->groups, m->groups_size, *cursor);
    read_summary(&r, out);
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

int proto_member_next(const struct proto_describe_group_resp *m, size_t *cursor,
                      struct proto_group_member *out) {
    if (*cursor >= m->members_size) return 0;
    struct rq_reader r;
    iter_open(&r, m->members, m->members_size, *cursor);
    read_member(&r, out);
    RQ_ASSERT(r.err == 0);
    *cursor = r.pos;
    return 1;
}

/* ---- writing ----------------------------------------------------------------------------------
 */

static void write_name(struct rq_writer *w, struct proto_bytes name, size_t max) {
    RQ_ASSERT(proto_group_name_valid(name.data, name.size, max));
    write_field(w, name);
}

static void write_member_name(struct rq_writer *w, struct proto_bytes name) {
    RQ_ASSERT(member_name_valid(name));
    write_field(w, name);
}

static void write_cursor(struct rq_writer *w, struct proto_bytes cursor) {
    RQ_ASSERT(proto_cursor_valid(cursor.data, cursor.size));
    write_field(w, cursor);
}

static void write_partition_list(struct rq_writer *w, uint32_t count, const uint32_t *partitions) {
    RQ_ASSERT(count <= PROTO_GROUP_PARTITIONS_MAX);
    rq_write_varint(w, count);
    for (uint32_t i = 0; i < count; i++) {
        RQ_ASSERT(partitions[i] < PROTO_PARTITIONS_MAX);
        if (i > 0) RQ_ASSERT(partitions[i] > partitions[i - 1]);
        rq_write_varint(w, partitions[i]);
    }
}

static void write_summary(struct rq_writer *w, const struct proto_group_summary *s) {
    RQ_ASSERT(mode_valid(s->mode));
    RQ_ASSERT(strategy_valid(s->strategy));
    RQ_ASSERT(s->member_count <= PROTO_GROUP_MEMBERS_MAX);
    write_name(w, s->group, PROTO_GROUP_NAME_MAX);
    write_topic(w, s->topic);
    rq_write_u8(w, s->mode);
    rq_write_u8(w, s->strategy);
    rq_write_varint(w, s->generation);
    rq_write_varint(w, s->member_count);
}

static void write_member(struct rq_writer *w, const struct proto_group_member_in *m) {
    RQ_ASSERT(m->member_id >= 1);
    RQ_ASSERT(session_valid(m->session_ms));
    rq_write_varint(w, m->member_id);
    write_member_name(w, m->member_name);
    rq_write_varint(w, m->session_ms);
    write_partition_list(w, m->partition_count, m->partitions);
}

size_t proto_encode_join_group_req(uint8_t *buf, size_t cap, const struct proto_join_group_req *m) {
    RQ_ASSERT(mode_valid(m->mode));
    RQ_ASSERT(strategy_valid(m->strategy));
    RQ_ASSERT(session_valid(m->session_ms));
    if (m->mode == PROTO_MODE_PUBSUB) RQ_ASSERT(m->member_name.size >= 1);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_name(&w, m->group, PROTO_GROUP_NAME_MAX);
    write_topic(&w, m->topic);
    write_member_name(&w, m->member_name);
    rq_write_u8(&w, m->mode);
    rq_write_u8(&w, m->strategy);
    rq_write_varint(&w, m->session_ms);
    rq_write_varint(&w, m->member_id);
    return finish(&w);
}

size_t proto_encode_assignment_resp(uint8_t *buf, size_t cap, const struct proto_assignment_resp *m,
                                    const uint32_t *partitions) {
    if (m->error == 0) RQ_ASSERT(m->member_id >= 1);
    if (m->error == 0) RQ_ASSERT(m->generation >= 1);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_err(&w, m->error);
    rq_write_varint(&w, m->leader_hint);
    rq_write_varint(&w, m->member_id);
    rq_write_varint(&w, m->generation);
    write_partition_list(&w, m->partition_count, partitions);
    return finish(&w);
}

size_t proto_encode_heartbeat_req(uint8_t *buf, size_t cap, const struct proto_heartbeat_req *m) {
    RQ_ASSERT(m->member_id >= 1);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_name(&w, m->group, PROTO_GROUP_NAME_MAX);
    rq_write_varint(&w, m->member_id);
    rq_write_varint(&w, m->generation);
    return finish(&w);
}

size_t proto_encode_leave_group_req(uint8_t *buf, size_t cap,
                                    const struct proto_leave_group_req *m) {
    RQ_ASSERT(m->member_id >= 1);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_name(&w, m->group, PROTO_GROUP_NAME_MAX);
    rq_write_varint(&w, m->member_id);
    return finish(&w);
}

size_t proto_encode_offset_req(uint8_t *buf, size_t cap, uint8_t type,
                               const struct proto_offset_req *m) {
    RQ_ASSERT(type >= PROTO_CLAIM_REQ);
    RQ_ASSERT(type <= PROTO_RESET_OFFSET_REQ);
    RQ_ASSERT(offset_req_valid(type, m));
    RQ_ASSERT(m->partition < PROTO_PARTITIONS_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_topic(&w, m->topic);
    rq_write_varint(&w, m->partition);
    write_cursor(&w, m->cursor);
    rq_write_varint(&w, m->generation);
    rq_write_varint(&w, m->member_id);
    rq_write_varint(&w, m->offset);
    return finish(&w);
}

size_t proto_encode_offset_resp(uint8_t *buf, size_t cap, const struct proto_offset_resp *m) {
    RQ_ASSERT(m->log_start <= m->high_watermark);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_err(&w, m->error);
    rq_write_varint(&w, m->leader_hint);
    rq_write_varint(&w, m->committed);
    rq_write_varint(&w, m->log_start);
    rq_write_varint(&w, m->high_watermark);
    return finish(&w);
}

size_t proto_encode_group_fetch_req(uint8_t *buf, size_t cap, const struct proto_fetch_req *m) {
    RQ_ASSERT(m->from_follower == 0);
    RQ_ASSERT(m->generation >= 1);
    RQ_ASSERT(m->member_id >= 1);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    proto_write_fetch_req(&w, m);
    write_cursor(&w, m->cursor);
    rq_write_varint(&w, m->generation);
    rq_write_varint(&w, m->member_id);
    return finish(&w);
}

size_t proto_encode_list_groups_resp(uint8_t *buf, size_t cap, int error, uint32_t leader_hint,
                                     const struct proto_group_summary *groups, uint32_t count) {
    RQ_ASSERT(count <= PROTO_GROUPS_MAX);
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_err(&w, error);
    rq_write_varint(&w, leader_hint);
    rq_write_varint(&w, count);
    for (uint32_t i = 0; i < count; i++)
        write_summary(&w, &groups[i]);
    return finish(&w);
}

size_t proto_encode_describe_group_req(uint8_t *buf, size_t cap,
                                       const struct proto_describe_group_req *m) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_name(&w, m->group, PROTO_GROUP_NAME_MAX);
    return finish(&w);
}

size_t proto_encode_describe_group_resp(uint8_t *buf, size_t cap,
                                        const struct proto_describe_group_resp *m,
                                        const struct proto_group_member_in *members) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    write_err(&w, m->error);
    rq_write_varint(&w, m->leader_hint);
    if (m->error == 0) { /* an error names no group: nothing more */
        write_summary(&w, &m->summary);
        for (uint32_t i = 0; i < m->summary.member_count; i++)
            write_member(&w, &members[i]);
    }
    return finish(&w);
}
