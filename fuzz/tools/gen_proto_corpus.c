/* Writes the seed corpus of fuzz/proto_decode.c: one input per payload type, each twice: as the
 * type byte followed by the payload (the target's direct path), and as a frame (its stream path);
 * plus a stream of several frames with one of an unknown version in the middle. The consumer-group
 * messages (types 18..32) are among them. Every input is checked here to decode. Usage: gen_proto_corpus OUTPUT_DIR (which must exist) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "proto/frame.h"
#include "proto/msg.h"

enum { CAP = 4096 };

static const char *out_dir;

static void write_file(const char *name, const uint8_t *data, size_t len) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Writes "NAME.payload" (type byte + payload) and "NAME.frame", after checking both decode. */
static void emit(const char *name, uint8_t type, const uint8_t *payload, size_t size) {
    static uint8_t buf[CAP + PROTO_FRAME_HEADER];
    struct proto_msg m;
    if (proto_decode(type, size ? payload : NULL, size, &m) != 0) {
        fprintf(stderr, "gen_proto_corpus: %s does not decode\n", name);
        exit(1);
    }
    char file[128];
    buf[0] = type;
    memcpy(buf + 1, payload, size);
    snprintf(file, sizeof file, "%s.payload", name);
    write_file(file, buf, size + 1);
    size_t n = proto_frame_encode(buf, sizeof buf, type, 1, payload, (uint32_t)size);
    snprintf(file, sizeof file, "%s.frame", name);
    write_file(file, buf, n);
}

static struct proto_bytes s(const char *text) {
    return (struct proto_bytes){(const uint8_t *)text, (uint32_t)strlen(text)};
}

/* The consumer-group messages (proto/group_msg.h), one input per type. */
static void emit_groups(uint8_t *p) {
    struct proto_join_group_req jg = {.group = s("billing"), .topic = s("clicks"),
                                      .member_name = s("node-1"), .mode = PROTO_MODE_PUBSUB,
                                      .strategy = PROTO_STRATEGY_STICKY, .session_ms = 10000};
    emit("join-group-req", PROTO_JOIN_GROUP_REQ, p, proto_encode_join_group_req(p, CAP, &jg));
    static const uint32_t parts[] = {0, 2, 5};
    struct proto_assignment_resp as = {.member_id = 3, .generation = (1ull << 32) | 2,
                                       .partition_count = 3};
    emit("assignment-resp", PROTO_ASSIGNMENT_RESP, p,
         proto_encode_assignment_resp(p, CAP, &as, parts));
    struct proto_heartbeat_req hb = {.group = s("billing"), .member_id = 3, .generation = 2};
    emit("heartbeat-req", PROTO_HEARTBEAT_REQ, p, proto_encode_heartbeat_req(p, CAP, &hb));
    struct proto_leave_group_req lg = {.group = s("billing"), .member_id = 3};
    emit("leave-group-req", PROTO_LEAVE_GROUP_REQ, p, proto_encode_leave_group_req(p, CAP, &lg));
    struct proto_status_resp st = {.error = RQ_ENOMEMBER};
    emit("leave-group-resp", PROTO_LEAVE_GROUP_RESP, p, proto_encode_status_resp(p, CAP, &st));
    struct proto_offset_req off = {.topic = s("clicks"), .partition = 2, .cursor = s("billing"),
                                   .generation = 2, .member_id = 3};
    emit("claim-req", PROTO_CLAIM_REQ, p, proto_encode_offset_req(p, CAP, PROTO_CLAIM_REQ, &off));
    off.cursor = s("billing/node-1");
    off.offset = 17;
    emit("commit-req", PROTO_COMMIT_REQ, p,
         proto_encode_offset_req(p, CAP, PROTO_COMMIT_REQ, &off));
    off.generation = 0;
    off.member_id = 0;
    emit("reset-offset-req", PROTO_RESET_OFFSET_REQ, p,
         proto_encode_offset_req(p, CAP, PROTO_RESET_OFFSET_REQ, &off));
    off.offset = 0;
    emit("offset-fetch-req", PROTO_OFFSET_FETCH_REQ, p,
         proto_encode_offset_req(p, CAP, PROTO_OFFSET_FETCH_REQ, &off));
    struct proto_offset_resp ofr = {.committed = PROTO_NO_OFFSET, .high_watermark = 9};
    emit("offset-resp", PROTO_OFFSET_RESP, p, proto_encode_offset_resp(p, CAP, &ofr));
    struct proto_fetch_req gf = {.topic = s("clicks"), .partition = 2, .offset = 17,
                                 .max_records = 10, .max_bytes = 65536, .max_wait_ms = 100,
                                 .cursor = s("billing"), .generation = 2, .member_id = 3};
    emit("group-fetch-req", PROTO_GROUP_FETCH_REQ, p, proto_encode_group_fetch_req(p, CAP, &gf));
    emit("list-groups-req", PROTO_LIST_GROUPS_REQ, p, 0);
    struct proto_group_summary sum = {.group = s("billing"), .topic = s("clicks"),
                                      .mode = PROTO_MODE_QUEUE, .strategy = PROTO_STRATEGY_RANGE,
                                      .generation = 2, .member_count = 2};
    emit("list-groups-resp", PROTO_LIST_GROUPS_RESP, p,
         proto_encode_list_groups_resp(p, CAP, 0, 0, &sum, 1));
    struct proto_describe_group_req dg = {.group = s("billing")};
    emit("describe-group-req", PROTO_DESCRIBE_GROUP_REQ, p,
         proto_encode_describe_group_req(p, CAP, &dg));
    struct proto_group_member_in members[] = {
        {.member_id = 3, .session_ms = 10000, .partition_count = 2, .partitions = parts},
        {.member_id = 4, .member_name = s("node-2"), .session_ms = 10000, .partition_count = 1,
         .partitions = parts + 2}};
    struct proto_describe_group_resp dr = {.summary = sum};
    emit("describe-group-resp", PROTO_DESCRIBE_GROUP_RESP, p,
         proto_encode_describe_group_resp(p, CAP, &dr, members));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_proto_corpus OUTPUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    static uint8_t p[CAP];
    struct proto_header h[] = {{s("content-type"), s("json")}};
    struct proto_record_in recs[] = {
        {.offset = 0, .timestamp = 1, .key = s("user-17"), .value = s("{\"clicks\":3}"),
         .header_count = 1, .headers = h},
        {.offset = 1, .timestamp = 2, .value = s("second")},
    };
    struct proto_produce_req pr = {.topic = s("clicks"), .partition = 1, .acks = PROTO_ACKS_LEADER,
                                   .producer_id = 9, .base_sequence = 4, .records = {.count = 2}};
    emit("produce-req", PROTO_PRODUCE_REQ, p, proto_encode_produce_req(p, CAP, &pr, recs));
    struct proto_produce_req dpr = {.topic = s("later"), .acks = PROTO_ACKS_ALL,
                                    .records = {.count = 2}, .delay_ms = 30000};
    emit("delayed-produce-req", PROTO_DELAYED_PRODUCE_REQ, p,
         proto_encode_delayed_produce_req(p, CAP, &dpr, recs));
    struct proto_produce_resp prr = {.base_offset = 77};
    emit("produce-resp", PROTO_PRODUCE_RESP, p, proto_encode_produce_resp(p, CAP, &prr));
    struct proto_fetch_req fr = {.topic = s("clicks"), .offset = 0, .max_records = 10,
                                 .max_bytes = 65536, .max_wait_ms = 100};
    emit("fetch-req", PROTO_FETCH_REQ, p, proto_encode_fetch_req(p, CAP, &fr));
    struct proto_fetch_resp fa = {.log_start = 0, .high_watermark = 2, .records = {.count = 2}};
    emit("fetch-resp", PROTO_FETCH_RESP, p, proto_encode_fetch_resp(p, CAP, &fa, recs));
    struct proto_bytes names[] = {s("clicks")};
    emit("metadata-req", PROTO_METADATA_REQ, p, proto_encode_metadata_req(p, CAP, names, 1));
    struct proto_broker brokers[] = {{1, s("127.0.0.1:7001"), 0}, {2, s("127.0.0.1:7002"), 1}};
    struct proto_topic topics[] = {{.name = s("clicks"), .partition_count = 2}};
    struct proto_partition parts[] = {{0, 1, 2, {1, 2}}, {1, 2, 2, {2, 1}}};
    emit("metadata-resp", PROTO_METADATA_RESP, p,
         proto_encode_metadata_resp(p, CAP, 1, brokers, 2, topics, 1, parts));
    struct proto_create_topic_req ct = {.name = s("clicks"), .partitions = 2, .replication = 2,
                                        .max_message_bytes = 1024};
    emit("create-topic-req", PROTO_CREATE_TOPIC_REQ, p,
         proto_encode_create_topic_req(p, CAP, &ct));
    struct proto_status_resp st = {.error = RQ_ENOTLEADER, .leader_hint = 2};
    emit("create-topic-resp", PROTO_CREATE_TOPIC_RESP, p, proto_encode_status_resp(p, CAP, &st));
    struct proto_delete_topic_req dt = {.name = s("clicks")};
    emit("delete-topic-req", PROTO_DELETE_TOPIC_REQ, p, proto_encode_delete_topic_req(p, CAP, &dt));
    emit("delete-topic-resp", PROTO_DELETE_TOPIC_RESP, p, proto_encode_status_resp(p, CAP, &st));
    struct proto_decommission_req dc = {.broker = 4};
    emit("decommission-req", PROTO_DECOMMISSION_REQ, p, proto_encode_decommission_req(p, CAP, &dc));
    emit("decommission-resp", PROTO_DECOMMISSION_RESP, p, proto_encode_status_resp(p, CAP, &st));
    emit("init-producer-req", PROTO_INIT_PRODUCER_REQ, p, 0);
    struct proto_init_producer_resp ip = {.producer_id = 9};
    emit("init-producer-resp", PROTO_INIT_PRODUCER_RESP, p,
         proto_encode_init_producer_resp(p, CAP, &ip));
    emit("error", PROTO_ERROR, p, proto_encode_error(p, CAP, RQ_EVERSION, "version 2"));
    emit_groups(p);
    emit("raft", PROTO_RAFT, (const uint8_t *)"RQFB", 4);
    emit("forward", PROTO_FORWARD, (const uint8_t *)"\x02\x03", 2);
    /* A stream: a fetch, a frame of an unknown version (answered, skipped), a produce answer. */
    static uint8_t stream[CAP];
    size_t n = proto_frame_encode(stream, CAP, PROTO_FETCH_REQ, 5, p,
                                  (uint32_t)proto_encode_fetch_req(p, CAP, &fr));
    size_t at = n;
    n = proto_frame_encode(stream + at, CAP - at, PROTO_RAFT, 6, "x", 1);
    stream[at + 8] = PROTO_VERSION + 1;   /* unknown, intact: its CRC is recomputed */
    rq_put_u32(stream + at + 4, rq_crc32c(0, stream + at + 8, n - 8));
    struct proto_frame f;
    size_t size;
    if (proto_frame_decode(stream + at, n, PROTO_FRAME_MAX, &f, &size) != RQ_EVERSION) {
        fprintf(stderr, "gen_proto_corpus: the unknown-version frame is not intact\n");
        return 1;
    }
    at += n;
    n = proto_frame_encode(stream + at, CAP - at, PROTO_PRODUCE_RESP, 7, p,
                           (uint32_t)proto_encode_produce_resp(p, CAP, &prr));
    at += n;
    write_file("stream-three-frames", stream, at);
    return 0;
}
