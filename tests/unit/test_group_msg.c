/* The consumer-group messages (src/proto/group_msg.c): every type 18..32 round-tripped through
 * proto_decode and walked with its iterators, the wire layout pinned byte for byte where the
 * docs spell it out, every truncation of every sample refused, a trailing byte refused, the
 * largest lists taken, and a table of malformed payloads, each refused with the error that names
 * it. Buffers handed to the decoders are heap blocks of exactly their size, so AddressSanitizer
 * catches any read past the end. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "proto/group_msg.h"
#include "proto/msg.h"
#include "tests/unit/suite_main.h"

static uint8_t *dup_exact(const void *src, size_t len) {
    uint8_t *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    if (len) memcpy(p, src, len);
    return p;
}

static struct proto_bytes str(const char *s) {
    size_t n = strlen(s);
    return (struct proto_bytes){n ? (const uint8_t *)s : NULL, (uint32_t)n};
}

/* Decodes buf[0..n) from an exact heap copy, freed at once: for outcomes only (what decoded
 * points into the freed copy). */
static int decode(uint8_t type, const uint8_t *buf, size_t n, struct proto_msg *m) {
    uint8_t *exact = dup_exact(buf, n);
    int rc = proto_decode(type, n ? exact : NULL, n, m);
    free(exact);
    return rc;
}

/* ---- samples of every type ------------------------------------------------------------------- */

static const uint32_t parts_a[] = {0, 3, PROTO_PARTITIONS_MAX - 1};
static const uint32_t parts_b[] = {1, 2};
static const struct proto_group_summary summaries[] = {
    {.group = {(const uint8_t *)"billing", 7},
     .topic = {(const uint8_t *)"orders", 6},
     .mode = PROTO_MODE_QUEUE,
     .strategy = PROTO_STRATEGY_STICKY,
     .generation = (7ull << 32) | 3,
     .member_count = 2},
    {.group = {(const uint8_t *)"audit.v2", 8},
     .topic = {(const uint8_t *)"orders", 6},
     .mode = PROTO_MODE_PUBSUB,
     .strategy = PROTO_STRATEGY_RANGE,
     .generation = 1,
     .member_count = 0},
};
static const struct proto_group_member_in members[] = {
    {.member_id = 1,
     .member_name = {NULL, 0},
     .session_ms = PROTO_SESSION_MS_MIN,
     .partition_count = 3,
     .partitions = parts_a},
    {.member_id = 1ull << 40,
     .member_name = {(const uint8_t *)"worker-2", 8},
     .session_ms = PROTO_SESSION_MS_MAX,
     .partition_count = 0,
     .partitions = NULL},
};
enum { SAMPLES = 18 };

/* Encodes sample k into buf; returns its type and size. */
static size_t sample(int k, uint8_t *buf, size_t cap, uint8_t *type) {
    switch (k) {
    case 0: {
        struct proto_join_group_req m = {.group = str("billing"),
                                         .topic = str("orders"),
                                         .mode = PROTO_MODE_QUEUE,
                                         .strategy = PROTO_STRATEGY_RANGE,
                                         .session_ms = 10000};
        *type = PROTO_JOIN_GROUP_REQ;
        return proto_encode_join_group_req(buf, cap, &m);
    }
    case 1: {
        struct proto_join_group_req m = {.group = str("audit.v2"),
                                         .topic = str("orders"),
                                         .member_name = str("node-7_a"),
                                         .mode = PROTO_MODE_PUBSUB,
                                         .strategy = PROTO_STRATEGY_STICKY,
                                         .session_ms = PROTO_SESSION_MS_MAX,
                                         .member_id = 9};
        *type = PROTO_JOIN_GROUP_REQ;
        return proto_encode_join_group_req(buf, cap, &m);
    }
    case 2: {
        struct proto_assignment_resp m = {
            .member_id = 5, .generation = (2ull << 32) | 1, .partition_count = 3};
        *type = PROTO_ASSIGNMENT_RESP;
        return proto_encode_assignment_resp(buf, cap, &m, parts_a);
    }
    case 3: {
        struct proto_assignment_resp m = {.error = RQ_ENOTLEADER, .leader_hint = 3};
        *type = PROTO_ASSIGNMENT_RESP;
        return proto_encode_assignment_resp(buf, cap, &m, NULL);
    }
    case 4: {
        struct proto_heartbeat_req m = {.group = str("billing"), .member_id = 5, .generation = 4};
        *type = PROTO_HEARTBEAT_REQ;
        return proto_encode_heartbeat_req(buf, cap, &m);
    }
    case 5: {
        struct proto_leave_group_req m = {.group = str("billing"), .member_id = UINT64_MAX};
        *type = PROTO_LEAVE_GROUP_REQ;
        return proto_encode_leave_group_req(buf, cap, &m);
    }
    case 6: {
        struct proto_status_resp m = {.error = RQ_ENOMEMBER, .leader_hint = 1};
        *type = PROTO_LEAVE_GROUP_RESP;
        return proto_encode_status_resp(buf, cap, &m);
    }
    case 7: {
        struct proto_offset_req m = {.topic = str("orders"),
                                     .partition = 7,
                                     .cursor = str("billing"),
                                     .generation = 4,
                                     .member_id = 5};
        *type = PROTO_CLAIM_REQ;
        return proto_encode_offset_req(buf, cap, *type, &m);
    }
    case 8: {
        struct proto_offset_req m = {.topic = str("orders"),
                                     .partition = 7,
                                     .cursor = str("audit.v2/node-7_a"),
                                     .generation = 4,
                                     .member_id = 5,
                                     .offset = 1234567};
        *type = PROTO_COMMIT_REQ;
        return proto_encode_offset_req(buf, cap, *type, &m);
    }
    case 9: {
        struct proto_offset_req m = {
            .topic = str("orders"), .partition = 0, .cursor = str("billing")};
        *type = PROTO_OFFSET_FETCH_REQ;
        return proto_encode_offset_req(buf, cap, *type, &m);
    }
    case 10: {
        struct proto_offset_req m = {
            .topic = str("orders"), .partition = 9999, .cursor = str("billing"), .offset = 42};
        *type = PROTO_RESET_OFFSET_REQ;
        return proto_encode_offset_req(buf, cap, *type, &m);
    }
    case 11: {
        struct proto_offset_resp m = {
            .committed = PROTO_NO_OFFSET, .log_start = 10, .high_watermark = 20};
        *type = PROTO_OFFSET_RESP;
        return proto_encode_offset_resp(buf, cap, &m);
    }
    case 12: {
        struct proto_fetch_req m = {.topic = str("orders"),
                                    .partition = 2,
                                    .offset = 99,
                                    .max_records = 100,
                                    .max_bytes = 1 << 20,
                                    .max_wait_ms = 500,
                                    .cursor = str("billing"),
                                    .generation = 4,
                                    .member_id = 5};
        *type = PROTO_GROUP_FETCH_REQ;
        return proto_encode_group_fetch_req(buf, cap, &m);
    }
    case 13: *type = PROTO_LIST_GROUPS_REQ; return 0;
    case 14:
        *type = PROTO_LIST_GROUPS_RESP;
        return proto_encode_list_groups_resp(buf, cap, 0, 0, summaries, 2);
    case 15: {
        struct proto_describe_group_req m = {.group = str("billing")};
        *type = PROTO_DESCRIBE_GROUP_REQ;
        return proto_encode_describe_group_req(buf, cap, &m);
    }
    case 16: {
        struct proto_describe_group_resp m = {.summary = summaries[0]};
        *type = PROTO_DESCRIBE_GROUP_RESP;
        return proto_encode_describe_group_resp(buf, cap, &m, members);
    }
    case 17: {
        /* An error: the summary is not written, whatever it holds. */
        struct proto_describe_group_resp m = {.error = RQ_ENOENT, .summary = summaries[0]};
        *type = PROTO_DESCRIBE_GROUP_RESP;
        return proto_encode_describe_group_resp(buf, cap, &m, NULL);
    }
    }
    ck_abort_msg("no sample %d", k);
    return 0;
}

static void check_bytes(struct proto_bytes got, const char *want) {
    ck_assert_uint_eq(got.size, strlen(want));
    if (got.size) ck_assert_mem_eq(got.data, want, got.size);
}

static void check_partitions_a(const uint8_t *data, size_t size, uint32_t count) {
    ck_assert_uint_eq(count, 3);
    struct proto_group_member g = {
        .partition_count = count, .partitions = data, .partitions_size = size};
    size_t cur = 0;
    uint32_t p;
    for (uint32_t i = 0; i < 3; i++) {
        ck_assert(proto_member_partition_next(&g, &cur, &p));
        ck_assert_uint_eq(p, parts_a[i]);
    }
    ck_assert(!proto_member_partition_next(&g, &cur, &p));
}

static void check_summary(const struct proto_group_summary *got,
                          const struct proto_group_summary *want) {
    ck_assert_uint_eq(got->group.size, want->group.size);
    ck_assert_mem_eq(got->group.data, want->group.data, want->group.size);
    ck_assert_uint_eq(got->topic.size, want->topic.size);
    ck_assert_uint_eq(got->mode, want->mode);
    ck_assert_uint_eq(got->strategy, want->strategy);
    ck_assert_uint_eq(got->generation, want->generation);
    ck_assert_uint_eq(got->member_count, want->member_count);
}

static void check_describe(const struct proto_describe_group_resp *d) {
    ck_assert_int_eq(d->error, 0);
    check_summary(&d->summary, &summaries[0]);
    size_t cur = 0;
    struct proto_group_member mb;
    ck_assert(proto_member_next(d, &cur, &mb));
    ck_assert_uint_eq(mb.member_id, 1);
    ck_assert_uint_eq(mb.member_name.size, 0);
    ck_assert_uint_eq(mb.session_ms, PROTO_SESSION_MS_MIN);
    check_partitions_a(mb.partitions, mb.partitions_size, mb.partition_count);
    ck_assert(proto_member_next(d, &cur, &mb));
    ck_assert_uint_eq(mb.member_id, 1ull << 40);
    check_bytes(mb.member_name, "worker-2");
    ck_assert_uint_eq(mb.session_ms, PROTO_SESSION_MS_MAX);
    ck_assert_uint_eq(mb.partition_count, 0);
    size_t pc = 0;
    uint32_t p;
    ck_assert(!proto_member_partition_next(&mb, &pc, &p));
    ck_assert(!proto_member_next(d, &cur, &mb));
}

/* What each decoded sample must say. */
static void check_sample(int k, const struct proto_msg *m) {
    switch (k) {
    case 0:
        check_bytes(m->u.join_group_req.group, "billing");
        check_bytes(m->u.join_group_req.topic, "orders");
        ck_assert_uint_eq(m->u.join_group_req.member_name.size, 0);
        ck_assert_uint_eq(m->u.join_group_req.mode, PROTO_MODE_QUEUE);
        ck_assert_uint_eq(m->u.join_group_req.strategy, PROTO_STRATEGY_RANGE);
        ck_assert_uint_eq(m->u.join_group_req.session_ms, 10000);
        ck_assert_uint_eq(m->u.join_group_req.member_id, 0);
        break;
    case 1:
        check_bytes(m->u.join_group_req.member_name, "node-7_a");
        ck_assert_uint_eq(m->u.join_group_req.mode, PROTO_MODE_PUBSUB);
        ck_assert_uint_eq(m->u.join_group_req.strategy, PROTO_STRATEGY_STICKY);
        ck_assert_uint_eq(m->u.join_group_req.session_ms, PROTO_SESSION_MS_MAX);
        ck_assert_uint_eq(m->u.join_group_req.member_id, 9);
        break;
    case 2: {
        const struct proto_assignment_resp *a = &m->u.assignment_resp;
        ck_assert_int_eq(a->error, 0);
        ck_assert_uint_eq(a->member_id, 5);
        ck_assert_uint_eq(a->generation, (2ull << 32) | 1);
        size_t cur = 0;
        uint32_t p;
        for (uint32_t i = 0; i < 3; i++) {
            ck_assert(proto_assignment_next(a, &cur, &p));
            ck_assert_uint_eq(p, parts_a[i]);
        }
        ck_assert(!proto_assignment_next(a, &cur, &p));
        break;
    }
    case 3: {
        ck_assert_int_eq(m->u.assignment_resp.error, RQ_ENOTLEADER);
        ck_assert_uint_eq(m->u.assignment_resp.leader_hint, 3);
        size_t cur = 0;
        uint32_t p;
        ck_assert(!proto_assignment_next(&m->u.assignment_resp, &cur, &p));
        break;
    }
    case 4:
        check_bytes(m->u.heartbeat_req.group, "billing");
        ck_assert_uint_eq(m->u.heartbeat_req.member_id, 5);
        ck_assert_uint_eq(m->u.heartbeat_req.generation, 4);
        break;
    case 5: ck_assert_uint_eq(m->u.leave_group_req.member_id, UINT64_MAX); break;
    case 6:
        ck_assert_int_eq(m->u.status_resp.error, RQ_ENOMEMBER);
        ck_assert_uint_eq(m->u.status_resp.leader_hint, 1);
        break;
    case 7:
        ck_assert_uint_eq(m->u.offset_req.partition, 7);
        check_bytes(m->u.offset_req.cursor, "billing");
        ck_assert_uint_eq(m->u.offset_req.generation, 4);
        ck_assert_uint_eq(m->u.offset_req.member_id, 5);
        break;
    case 8:
        check_bytes(m->u.offset_req.cursor, "audit.v2/node-7_a");
        ck_assert_uint_eq(m->u.offset_req.offset, 1234567);
        break;
    case 9: ck_assert_uint_eq(m->u.offset_req.offset, 0); break;
    case 10:
        ck_assert_uint_eq(m->u.offset_req.partition, 9999);
        ck_assert_uint_eq(m->u.offset_req.offset, 42);
        break;
    case 11:
        ck_assert_uint_eq(m->u.offset_resp.committed, PROTO_NO_OFFSET);
        ck_assert_uint_eq(m->u.offset_resp.log_start, 10);
        ck_assert_uint_eq(m->u.offset_resp.high_watermark, 20);
        break;
    case 12:
        check_bytes(m->u.fetch_req.topic, "orders");
        ck_assert_uint_eq(m->u.fetch_req.offset, 99);
        ck_assert_uint_eq(m->u.fetch_req.max_records, 100);
        ck_assert_uint_eq(m->u.fetch_req.from_follower, 0);
        check_bytes(m->u.fetch_req.cursor, "billing");
        ck_assert_uint_eq(m->u.fetch_req.generation, 4);
        ck_assert_uint_eq(m->u.fetch_req.member_id, 5);
        break;
    case 14: {
        const struct proto_list_groups_resp *l = &m->u.list_groups_resp;
        ck_assert_uint_eq(l->group_count, 2);
        size_t cur = 0;
        struct proto_group_summary s;
        for (int i = 0; i < 2; i++) {
            ck_assert(proto_group_summary_next(l, &cur, &s));
            check_summary(&s, &summaries[i]);
        }
        ck_assert(!proto_group_summary_next(l, &cur, &s));
        break;
    }
    case 15: check_bytes(m->u.describe_group_req.group, "billing"); break;
    case 16: check_describe(&m->u.describe_group_resp); break;
    case 17: {
        const struct proto_describe_group_resp *d = &m->u.describe_group_resp;
        ck_assert_int_eq(d->error, RQ_ENOENT);
        ck_assert_uint_eq(d->summary.member_count, 0);
        ck_assert_uint_eq(d->summary.group.size, 0);
        size_t cur = 0;
        struct proto_group_member mb;
        ck_assert(!proto_member_next(d, &cur, &mb));
        break;
    }
    default: break;
    }
}

START_TEST(group_round_trip) {
    uint8_t buf[1024];
    uint8_t type;
    size_t n = sample(_i, buf, sizeof buf, &type);
    ck_assert(n > 0 || type == PROTO_LIST_GROUPS_REQ);
    uint8_t *exact = dup_exact(buf, n);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(type, n ? exact : NULL, n, &m), 0);
    ck_assert_uint_eq(m.type, type);
    check_sample(_i, &m);
    free(exact);
    /* Too small a buffer: nothing is claimed written. */
    if (n > 0) ck_assert_uint_eq(sample(_i, buf, n - 1, &type), 0);
}
END_TEST

/* Every proper prefix of a sample is refused, nothing filled in; a trailing byte too. */
START_TEST(group_every_truncation_refused) {
    uint8_t buf[1024];
    uint8_t type;
    size_t n = sample(_i, buf, sizeof buf, &type);
    for (size_t cut = 0; cut < n; cut++) {
        struct proto_msg m;
        int rc = decode(type, buf, cut, &m);
        ck_assert_msg(rc == RQ_ETRUNC, "sample %d cut at %zu: %d", _i, cut, rc);
        ck_assert_uint_eq(m.type, 0);
    }
    buf[n] = 0;
    struct proto_msg m;
    ck_assert_int_eq(decode(type, buf, n + 1, &m), RQ_ECORRUPT);
    ck_assert_uint_eq(m.type, 0);
}
END_TEST

/* The layouts docs/protocol.md spells out, byte for byte. */
START_TEST(group_wire_layout) {
    uint8_t buf[256];
    uint8_t type;
    size_t n = sample(7, buf, sizeof buf, &type); /* CLAIM orders/7 billing g4 m5 */
    const uint8_t claim[] = {6,   'o', 'r', 'd', 'e', 'r', 's', 7, 7, 'b',
                             'i', 'l', 'l', 'i', 'n', 'g', 4,   5, 0};
    ck_assert_uint_eq(n, sizeof claim);
    ck_assert_mem_eq(buf, claim, n);
    n = sample(12, buf, sizeof buf, &type); /* GROUP_FETCH: a FETCH_REQ, then the claim */
    const uint8_t fetch[] = {6,    'o',  'r', 'd', 'e', 'r', 's', 2,   99,  100, 0x80, 0x80, 0x40,
                             0xF4, 0x03, 0,   7,   'b', 'i', 'l', 'l', 'i', 'n', 'g',  4,    5};
    ck_assert_uint_eq(n, sizeof fetch);
    ck_assert_mem_eq(buf, fetch, n);
    n = sample(11, buf, sizeof buf, &type); /* PROTO_NO_OFFSET: a 10-byte varint */
    ck_assert_uint_eq(n, 1 + 1 + 10 + 1 + 1);
    n = sample(0, buf, sizeof buf, &type); /* JOIN: mode and strategy are single bytes */
    const uint8_t join[] = {7,
                            'b',
                            'i',
                            'l',
                            'l',
                            'i',
                            'n',
                            'g',
                            6,
                            'o',
                            'r',
                            'd',
                            'e',
                            'r',
                            's',
                            0,
                            PROTO_MODE_QUEUE,
                            PROTO_STRATEGY_RANGE,
                            0x90,
                            0x4E,
                            0};
    ck_assert_uint_eq(n, sizeof join);
    ck_assert_mem_eq(buf, join, n);
    n = sample(17, buf, sizeof buf, &type); /* a DESCRIBE error: error and hint only */
    const uint8_t describe_error[] = {3, 0};
    ck_assert_uint_eq(n, sizeof describe_error);
    ck_assert_mem_eq(buf, describe_error, n);
}
END_TEST

/* The largest lists are taken: PROTO_GROUP_PARTITIONS_MAX partitions, PROTO_GROUPS_MAX groups,
 * PROTO_GROUP_MEMBERS_MAX members. */
START_TEST(group_maxima_taken) {
    static uint32_t parts[PROTO_GROUP_PARTITIONS_MAX];
    for (uint32_t i = 0; i < PROTO_GROUP_PARTITIONS_MAX; i++)
        parts[i] = i * 9;
    static uint8_t buf[1 << 16];
    struct proto_assignment_resp a = {
        .member_id = 1, .generation = 1, .partition_count = PROTO_GROUP_PARTITIONS_MAX};
    size_t n = proto_encode_assignment_resp(buf, sizeof buf, &a, parts);
    struct proto_msg m;
    ck_assert_int_eq(proto_decode(PROTO_ASSIGNMENT_RESP, buf, n, &m), 0);
    size_t cur = 0;
    uint32_t p, count = 0;
    while (proto_assignment_next(&m.u.assignment_resp, &cur, &p))
        ck_assert_uint_eq(p, 9 * count++);
    ck_assert_uint_eq(count, PROTO_GROUP_PARTITIONS_MAX);

    static struct proto_group_summary groups[PROTO_GROUPS_MAX];
    for (uint32_t i = 0; i < PROTO_GROUPS_MAX; i++)
        groups[i] = summaries[i % 2];
    n = proto_encode_list_groups_resp(buf, sizeof buf, 0, 0, groups, PROTO_GROUPS_MAX);
    ck_assert_int_eq(proto_decode(PROTO_LIST_GROUPS_RESP, buf, n, &m), 0);
    struct proto_group_summary s;
    cur = 0;
    count = 0;
    while (proto_group_summary_next(&m.u.list_groups_resp, &cur, &s))
        count++;
    ck_assert_uint_eq(count, PROTO_GROUPS_MAX);

    static struct proto_group_member_in many[PROTO_GROUP_MEMBERS_MAX];
    for (uint32_t i = 0; i < PROTO_GROUP_MEMBERS_MAX; i++)
        many[i] = (struct proto_group_member_in){
            .member_id = i + 1, .session_ms = 30000, .partition_count = 2, .partitions = parts_b};
    struct proto_describe_group_resp d = {.summary = summaries[0]};
    d.summary.member_count = PROTO_GROUP_MEMBERS_MAX;
    n = proto_encode_describe_group_resp(buf, sizeof buf, &d, many);
    ck_assert_int_eq(proto_decode(PROTO_DESCRIBE_GROUP_RESP, buf, n, &m), 0);
    struct proto_group_member mb;
    cur = 0;
    count = 0;
    while (proto_member_next(&m.u.describe_group_resp, &cur, &mb))
        ck_assert_uint_eq(mb.member_id, ++count);
    ck_assert_uint_eq(count, PROTO_GROUP_MEMBERS_MAX);
}
END_TEST

START_TEST(group_and_cursor_names) {
    const uint8_t *ok = (const uint8_t *)"a.B_9-z";
    ck_assert(proto_group_name_valid(ok, 7, PROTO_GROUP_NAME_MAX));
    ck_assert(!proto_group_name_valid(ok, 7, 6));
    ck_assert(!proto_group_name_valid(NULL, 0, PROTO_GROUP_NAME_MAX));
    ck_assert(!proto_group_name_valid((const uint8_t *)"a b", 3, PROTO_GROUP_NAME_MAX));
    ck_assert(!proto_group_name_valid((const uint8_t *)"a/b", 3, PROTO_GROUP_NAME_MAX));
    ck_assert(!proto_group_name_valid((const uint8_t *)"a\0b", 3, PROTO_GROUP_NAME_MAX));
    ck_assert(!proto_group_name_valid((const uint8_t *)"\xc3\xa9", 2, PROTO_GROUP_NAME_MAX));
    uint8_t longest[PROTO_CURSOR_MAX + 1];
    memset(longest, 'g', sizeof longest);
    ck_assert(proto_group_name_valid(longest, PROTO_GROUP_NAME_MAX, PROTO_GROUP_NAME_MAX));
    ck_assert(!proto_group_name_valid(longest, PROTO_GROUP_NAME_MAX + 1, PROTO_GROUP_NAME_MAX));
    /* Cursors: GROUP, or GROUP/MEMBER with both halves valid and within their maxima. */
    ck_assert(proto_cursor_valid(longest, PROTO_GROUP_NAME_MAX));
    ck_assert(!proto_cursor_valid(longest, PROTO_GROUP_NAME_MAX + 1));
    longest[PROTO_GROUP_NAME_MAX] = '/';
    ck_assert(proto_cursor_valid(longest, PROTO_CURSOR_MAX));
    ck_assert(!proto_cursor_valid(longest, PROTO_CURSOR_MAX + 1));
    ck_assert(!proto_cursor_valid(longest, PROTO_GROUP_NAME_MAX + 1)); /* "GROUP/" */
    longest[PROTO_GROUP_NAME_MAX] = 'g';
    longest[PROTO_GROUP_NAME_MAX + 1] = '/'; /* a group of 129 bytes, a member of 63 */
    ck_assert(!proto_cursor_valid(longest, PROTO_CURSOR_MAX));
    ck_assert(proto_cursor_valid((const uint8_t *)"g/m", 3));
    ck_assert(!proto_cursor_valid((const uint8_t *)"/m", 2));
    ck_assert(!proto_cursor_valid((const uint8_t *)"g/m/x", 5));
    ck_assert(!proto_cursor_valid((const uint8_t *)"g/m x", 5));
    ck_assert(!proto_cursor_valid(NULL, 0));
    ck_assert_str_eq(proto_type_name(PROTO_JOIN_GROUP_REQ), "join-group-req");
    ck_assert_str_eq(proto_type_name(PROTO_DESCRIBE_GROUP_RESP), "describe-group-resp");
}
END_TEST

/* ---- malformed payloads, one broken field each --------------------------------------------------
 */

struct bad {
    const char *name;
    uint8_t type;
    uint8_t bytes[48];
    size_t len;
    int want;
};

#define G2    2, 'g', '1'          /* the group (or cursor) "g1" */
#define T1    1, 't'               /* the topic "t" */
#define S100  0x64                 /* session_ms 100, the minimum */
#define FETCH T1, 3, 5, 10, 100, 0 /* FETCH_REQ up to from_follower (exclusive) */
/* A payload's bytes and their count, for the table below. */
#define B(...) {__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static const struct bad bads[] = {
    /* JOIN_GROUP_REQ: group · topic · member_name · u8 mode · u8 strategy · session · member_id */
    {"valid join", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 1, 1, S100, 0), 0},
    {"valid pub/sub join", PROTO_JOIN_GROUP_REQ, B(G2, T1, 1, 'm', 2, 2, S100, 3), 0},
    {"join: group of 0 bytes", PROTO_JOIN_GROUP_REQ, B(0, T1, 0, 1, 1, S100, 0), RQ_ECORRUPT},
    {"join: group with '/'", PROTO_JOIN_GROUP_REQ, B(2, 'g', '/', T1, 0, 1, 1, S100, 0),
     RQ_ECORRUPT},
    {"join: group with a space", PROTO_JOIN_GROUP_REQ, B(2, 'g', ' ', T1, 0, 1, 1, S100, 0),
     RQ_ECORRUPT},
    {"join: group of 129 bytes", PROTO_JOIN_GROUP_REQ, B(0x81, 0x01), RQ_ETOOBIG},
    {"join: topic \"..\"", PROTO_JOIN_GROUP_REQ, B(G2, 2, '.', '.', 0, 1, 1, S100, 0), RQ_ECORRUPT},
    {"join: member name of 65 bytes", PROTO_JOIN_GROUP_REQ, B(G2, T1, 65), RQ_ETOOBIG},
    {"join: member name with '*'", PROTO_JOIN_GROUP_REQ, B(G2, T1, 1, '*', 1, 1, S100, 0),
     RQ_ECORRUPT},
    {"join: member name with '/'", PROTO_JOIN_GROUP_REQ, B(G2, T1, 1, '/', 1, 1, S100, 0),
     RQ_ECORRUPT},
    {"join: mode 0", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 0, 1, S100, 0), RQ_ECORRUPT},
    {"join: mode 3", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 3, 1, S100, 0), RQ_ECORRUPT},
    {"join: strategy 0", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 1, 0, S100, 0), RQ_ECORRUPT},
    {"join: strategy 3", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 1, 3, S100, 0), RQ_ECORRUPT},
    {"join: session 99 ms", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 1, 1, 0x63, 0), RQ_ECORRUPT},
    {"join: session 300000 ms", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 1, 1, 0xE0, 0xA7, 0x12, 0), 0},
    {"join: session 300001 ms", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 1, 1, 0xE1, 0xA7, 0x12, 0),
     RQ_ETOOBIG},
    {"join: pub/sub without a member name", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 2, 1, S100, 0),
     RQ_ECORRUPT},
    {"join: trailing byte", PROTO_JOIN_GROUP_REQ, B(G2, T1, 0, 1, 1, S100, 0, 0), RQ_ECORRUPT},
    /* ASSIGNMENT_RESP: error · leader_hint · member_id · generation · count · partitions */
    {"valid assignment", PROTO_ASSIGNMENT_RESP, B(0, 0, 1, 1, 2, 3, 5), 0},
    {"assignment with an error and no member", PROTO_ASSIGNMENT_RESP, B(22, 0, 0, 0, 0), 0},
    {"assignment: member id 0", PROTO_ASSIGNMENT_RESP, B(0, 0, 0, 1, 0), RQ_ECORRUPT},
    {"assignment: generation 0", PROTO_ASSIGNMENT_RESP, B(0, 0, 1, 0, 0), RQ_ECORRUPT},
    {"assignment: partitions repeated", PROTO_ASSIGNMENT_RESP, B(0, 0, 1, 1, 2, 5, 5), RQ_ECORRUPT},
    {"assignment: partitions decreasing", PROTO_ASSIGNMENT_RESP, B(0, 0, 1, 1, 2, 5, 3),
     RQ_ECORRUPT},
    {"assignment: partition 10000", PROTO_ASSIGNMENT_RESP, B(0, 0, 1, 1, 1, 0x90, 0x4E),
     RQ_ETOOBIG},
    {"assignment: 1025 partitions", PROTO_ASSIGNMENT_RESP, B(0, 0, 1, 1, 0x81, 0x08), RQ_ETOOBIG},
    {"assignment: fewer partitions than counted", PROTO_ASSIGNMENT_RESP, B(0, 0, 1, 1, 2, 3),
     RQ_ETRUNC},
    /* HEARTBEAT_REQ, LEAVE_GROUP_REQ, LEAVE_GROUP_RESP */
    {"valid heartbeat", PROTO_HEARTBEAT_REQ, B(G2, 1, 1), 0},
    {"heartbeat: member id 0", PROTO_HEARTBEAT_REQ, B(G2, 0, 1), RQ_ECORRUPT},
    {"heartbeat: group with '!'", PROTO_HEARTBEAT_REQ, B(2, 'g', '!', 1, 1), RQ_ECORRUPT},
    {"valid leave", PROTO_LEAVE_GROUP_REQ, B(G2, 1), 0},
    {"leave: member id 0", PROTO_LEAVE_GROUP_REQ, B(G2, 0), RQ_ECORRUPT},
    {"leave answer cut short", PROTO_LEAVE_GROUP_RESP, B(23), RQ_ETRUNC},
    {"leave answer: trailing byte", PROTO_LEAVE_GROUP_RESP, B(23, 1, 0), RQ_ECORRUPT},
    /* offset requests: topic · partition · cursor · generation · member_id · offset */
    {"valid claim", PROTO_CLAIM_REQ, B(T1, 0, G2, 1, 1, 0), 0},
    {"claim with an offset", PROTO_CLAIM_REQ, B(T1, 0, G2, 1, 1, 5), RQ_ECORRUPT},
    {"claim: generation 0", PROTO_CLAIM_REQ, B(T1, 0, G2, 0, 1, 0), RQ_ECORRUPT},
    {"claim: member id 0", PROTO_CLAIM_REQ, B(T1, 0, G2, 1, 0, 0), RQ_ECORRUPT},
    {"valid commit", PROTO_COMMIT_REQ, B(T1, 0, 4, 'g', '1', '/', 'm', 1, 1, 5), 0},
    {"commit: member id 0", PROTO_COMMIT_REQ, B(T1, 0, G2, 1, 0, 5), RQ_ECORRUPT},
    {"commit: generation 0", PROTO_COMMIT_REQ, B(T1, 0, G2, 0, 1, 5), RQ_ECORRUPT},
    {"valid offset fetch", PROTO_OFFSET_FETCH_REQ, B(T1, 0, G2, 0, 0, 0), 0},
    {"offset fetch with a generation", PROTO_OFFSET_FETCH_REQ, B(T1, 0, G2, 1, 0, 0), RQ_ECORRUPT},
    {"offset fetch with a member", PROTO_OFFSET_FETCH_REQ, B(T1, 0, G2, 0, 1, 0), RQ_ECORRUPT},
    {"offset fetch with an offset", PROTO_OFFSET_FETCH_REQ, B(T1, 0, G2, 0, 0, 1), RQ_ECORRUPT},
    {"valid reset", PROTO_RESET_OFFSET_REQ, B(T1, 0, G2, 0, 0, 7), 0},
    {"reset with a member", PROTO_RESET_OFFSET_REQ, B(T1, 0, G2, 0, 1, 7), RQ_ECORRUPT},
    {"reset with a generation", PROTO_RESET_OFFSET_REQ, B(T1, 0, G2, 1, 0, 7), RQ_ECORRUPT},
    {"offset request: partition 10000", PROTO_OFFSET_FETCH_REQ, B(T1, 0x90, 0x4E, G2, 0, 0, 0),
     RQ_ETOOBIG},
    {"offset request: cursor of 0 bytes", PROTO_OFFSET_FETCH_REQ, B(T1, 0, 0, 0, 0, 0),
     RQ_ECORRUPT},
    {"offset request: cursor \"g1/\"", PROTO_OFFSET_FETCH_REQ, B(T1, 0, 3, 'g', '1', '/', 0, 0, 0),
     RQ_ECORRUPT},
    {"offset request: cursor \"/m\"", PROTO_OFFSET_FETCH_REQ, B(T1, 0, 2, '/', 'm', 0, 0, 0),
     RQ_ECORRUPT},
    {"offset request: cursor \"g/m/x\"", PROTO_OFFSET_FETCH_REQ,
     B(T1, 0, 5, 'g', '/', 'm', '/', 'x', 0, 0, 0), RQ_ECORRUPT},
    {"offset request: cursor of 194 bytes", PROTO_OFFSET_FETCH_REQ, B(T1, 0, 0xC2, 0x01),
     RQ_ETOOBIG},
    {"offset request: topic with '/'", PROTO_OFFSET_FETCH_REQ, B(2, 'a', '/', 0, G2, 0, 0, 0),
     RQ_ECORRUPT},
    /* OFFSET_RESP: error · leader_hint · committed · log_start · high_watermark */
    {"valid offset answer, nothing committed", PROTO_OFFSET_RESP,
     B(0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0, 5), 0},
    {"offset answer: log start past the high watermark", PROTO_OFFSET_RESP, B(0, 0, 0, 6, 5),
     RQ_ECORRUPT},
    {"offset answer: overlong varint", PROTO_OFFSET_RESP,
     B(0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 5), RQ_ECORRUPT},
    /* GROUP_FETCH_REQ: FETCH_REQ · cursor · generation · member_id */
    {"valid group fetch", PROTO_GROUP_FETCH_REQ, B(FETCH, 0, G2, 1, 1), 0},
    {"group fetch from a follower", PROTO_GROUP_FETCH_REQ, B(FETCH, 1, G2, 1, 1), RQ_ECORRUPT},
    {"group fetch: generation 0", PROTO_GROUP_FETCH_REQ, B(FETCH, 0, G2, 0, 1), RQ_ECORRUPT},
    {"group fetch: member id 0", PROTO_GROUP_FETCH_REQ, B(FETCH, 0, G2, 1, 0), RQ_ECORRUPT},
    {"group fetch without its cursor", PROTO_GROUP_FETCH_REQ, B(FETCH, 0), RQ_ETRUNC},
    {"group fetch: max_records 0", PROTO_GROUP_FETCH_REQ, B(T1, 3, 5, 0, 100, 0, 0, G2, 1, 1),
     RQ_ECORRUPT},
    {"fetch with a cursor after it", PROTO_FETCH_REQ, B(FETCH, 0, G2, 1, 1), RQ_ECORRUPT},
    /* LIST_GROUPS_REQ, LIST_GROUPS_RESP: error · leader_hint · count · summaries */
    {"list request with a byte", PROTO_LIST_GROUPS_REQ, B(0), RQ_ECORRUPT},
    {"valid list", PROTO_LIST_GROUPS_RESP, B(0, 0, 1, G2, T1, 1, 1, 3, 2), 0},
    {"list: 257 groups", PROTO_LIST_GROUPS_RESP, B(0, 0, 0x81, 0x02), RQ_ETOOBIG},
    {"list: mode 3", PROTO_LIST_GROUPS_RESP, B(0, 0, 1, G2, T1, 3, 1, 3, 2), RQ_ECORRUPT},
    {"list: strategy 0", PROTO_LIST_GROUPS_RESP, B(0, 0, 1, G2, T1, 1, 0, 3, 2), RQ_ECORRUPT},
    {"list: 65 members", PROTO_LIST_GROUPS_RESP, B(0, 0, 1, G2, T1, 1, 1, 3, 65), RQ_ETOOBIG},
    {"list: fewer groups than counted", PROTO_LIST_GROUPS_RESP, B(0, 0, 2, G2, T1, 1, 1, 3, 2),
     RQ_ETRUNC},
    /* DESCRIBE_GROUP_REQ, DESCRIBE_GROUP_RESP: error · hint [· summary · members] */
    {"describe: group of 0 bytes", PROTO_DESCRIBE_GROUP_REQ, B(0), RQ_ECORRUPT},
    {"valid describe answer", PROTO_DESCRIBE_GROUP_RESP,
     B(0, 0, G2, T1, 1, 1, 3, 1, 1, 0, S100, 2, 4, 6), 0},
    {"describe: member id 0", PROTO_DESCRIBE_GROUP_RESP, B(0, 0, G2, T1, 1, 1, 3, 1, 0, 0, S100, 0),
     RQ_ECORRUPT},
    {"describe: member name with ':'", PROTO_DESCRIBE_GROUP_RESP,
     B(0, 0, G2, T1, 1, 1, 3, 1, 1, 1, ':', S100, 0), RQ_ECORRUPT},
    {"describe: session 99 ms", PROTO_DESCRIBE_GROUP_RESP,
     B(0, 0, G2, T1, 1, 1, 3, 1, 1, 0, 0x63, 0), RQ_ECORRUPT},
    {"describe: member partitions repeated", PROTO_DESCRIBE_GROUP_RESP,
     B(0, 0, G2, T1, 1, 1, 3, 1, 1, 0, S100, 2, 4, 4), RQ_ECORRUPT},
    {"describe: member with 1025 partitions", PROTO_DESCRIBE_GROUP_RESP,
     B(0, 0, G2, T1, 1, 1, 3, 1, 1, 0, S100, 0x81, 0x08), RQ_ETOOBIG},
    {"describe: 65 members", PROTO_DESCRIBE_GROUP_RESP, B(0, 0, G2, T1, 1, 1, 3, 65), RQ_ETOOBIG},
    {"describe: fewer members than counted", PROTO_DESCRIBE_GROUP_RESP,
     B(0, 0, G2, T1, 1, 1, 3, 2, 1, 0, S100, 0), RQ_ETRUNC},
    {"describe: an error with a summary after it", PROTO_DESCRIBE_GROUP_RESP,
     B(3, 0, G2, T1, 1, 1, 3, 0), RQ_ECORRUPT},
    {"unknown type PROTO_TYPE_MAX + 1", PROTO_TYPE_MAX + 1, {0}, 0, RQ_ETYPE},
    {"unknown type 255", 255, B(G2), RQ_ETYPE},
};

START_TEST(group_malformed_refused) {
    const struct bad *b = &bads[_i];
    struct proto_msg m;
    int rc = decode(b->type, b->bytes, b->len, &m);
    ck_assert_msg(rc == b->want, "%s: got %d (%s), want %d", b->name, rc, rq_strerror(rc), b->want);
    if (rc != 0) ck_assert_uint_eq(m.type, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("group_msg");
    TCase *tc = tcase_create("group");
    tcase_add_loop_test(tc, group_round_trip, 0, SAMPLES);
    tcase_add_loop_test(tc, group_every_truncation_refused, 0, SAMPLES);
    tcase_add_loop_test(tc, group_malformed_refused, 0, (int)(sizeof bads / sizeof bads[0]));
    tcase_add_test(tc, group_wire_layout);
    tcase_add_test(tc, group_maxima_taken);
    tcase_add_test(tc, group_and_cursor_names);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
