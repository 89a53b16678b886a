/* The controller's state machine (src/meta/controller.c): brokers registering, heartbeating and
 * expiring, topics placed over the live brokers and deleted, leadership moving off brokers that
 * are down, leader reports ordered by term, producer ids; every malformed command a no-op on every
 * replica alike; the image deterministic, round-tripping, and strictly refused when cut or bent. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/errors.h"
#include "meta/controller.h"
#include "tests/unit/suite_main.h"

enum { TIMEOUT = 1000 };

static struct controller_result run(struct controller *c, const uint8_t *cmd, size_t n) {
    struct controller_result res;
    controller_apply(c, cmd, n, &res);
    return res;
}

static struct controller_result reg(struct controller *c, uint32_t id, uint64_t now) {
    uint8_t cmd[CONTROLLER_CMD_MAX];
    return run(c, cmd, controller_cmd_register(cmd, id, "127.0.0.1:7000", now));
}

static struct controller_result beat(struct controller *c, uint32_t id, uint64_t now) {
    uint8_t cmd[CONTROLLER_CMD_MAX];
    return run(c, cmd, controller_cmd_heartbeat(cmd, id, now));
}

static struct controller_result create(struct controller *c, const char *name, uint32_t parts,
                                       uint32_t rf) {
    struct proto_create_topic_req req = {.name = {(const uint8_t *)name, (uint32_t)strlen(name)},
                                         .partitions = parts, .replication = rf,
                                         .max_message_bytes = 1 << 20};
    uint8_t cmd[CONTROLLER_CMD_MAX];
    return run(c, cmd, controller_cmd_create_topic(cmd, &req));
}

static const struct controller_topic *topic(const struct controller *c, const char *name) {
    return controller_topic(c, (const uint8_t *)name, strlen(name));
}

/* A controller with brokers 1..n registered at time 0, and topic "t" of 12 partitions, RF 3. */
static struct controller *cluster(uint32_t n) {
    struct controller *c = controller_create(TIMEOUT);
    ck_assert_ptr_nonnull(c);
    for (uint32_t id = 1; id <= n; id++) ck_assert_int_eq(reg(c, id, 0).error, 0);
    ck_assert_int_eq(create(c, "t", 12, 3).error, 0);
    return c;
}

static uint8_t *image_of(const struct controller *c, size_t *n) {
    size_t cap = controller_image_size(c);
    uint8_t *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    *n = controller_image(c, buf, cap);
    ck_assert_uint_gt(*n, 0);
    return buf;
}

static void assert_same_image(const struct controller *a, const struct controller *b) {
    size_t na, nb;
    uint8_t *ia = image_of(a, &na), *ib = image_of(b, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_mem_eq(ia, ib, na);
    free(ia);
    free(ib);
}

/* c's image restores into a fresh controller that writes it back the same. */
static void assert_restores(const struct controller *c) {
    size_t n;
    uint8_t *img = image_of(c, &n);
    struct controller *d = controller_create(TIMEOUT);
    ck_assert_int_eq(controller_restore(d, img, n), 0);
    assert_same_image(c, d);
    free(img);
    controller_destroy(d);
}

START_TEST(topics_are_placed_over_live_brokers) {
    struct controller *c = cluster(5);
    const struct controller_topic *t = topic(c, "t");
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->id, 1);
    uint32_t held[6] = {0};
    for (uint32_t p = 0; p < 12; p++) {
        const struct controller_partition *part = &t->partitions[p];
        ck_assert_uint_eq(part->replica_count, 3);
        ck_assert_uint_eq(part->leader, part->replicas[0]);
        for (uint32_t k = 0; k < 3; k++) {
            ck_assert(part->replicas[k] >= 1 && part->replicas[k] <= 5);
            held[part->replicas[k]]++;
            for (uint32_t j = 0; j < k; j++) ck_assert_uint_ne(part->replicas[j], part->replicas[k]);
        }
    }
    /* Bounded loads: at most ceil(1.25 * 36 / 5) = 9 replicas per broker. */
    for (uint32_t id = 1; id <= 5; id++) ck_assert_uint_le(held[id], 9);
    ck_assert_int_eq(create(c, "t", 3, 1).error, RQ_ETOPICEXISTS);
    ck_assert_int_eq(create(c, "six", 3, 6).error, RQ_EINVAL);   /* only 5 brokers */
    ck_assert_uint_eq(controller_topic_count(c), 1);
    ck_assert_int_eq(create(c, "u", 1, 1).error, 0);
    ck_assert_uint_eq(topic(c, "u")->id, 2);   /* the refused topic used no id */
    controller_destroy(c);
}
END_TEST

START_TEST(brokers_expire_and_leadership_moves) {
    struct controller *c = cluster(3);
    ck_assert_int_eq(beat(c, 2, 900).error, 0);
    ck_assert_int_eq(beat(c, 3, 900).error, 0);
    ck_assert_int_eq(beat(c, 9, 900).error, RQ_ENOENT);
    uint8_t cmd[CONTROLLER_CMD_MAX];
    ck_assert_int_eq(run(c, cmd, controller_cmd_expire(cmd, 999)).error, 0);
    ck_assert(controller_broker(c, 1)->alive);   /* deadline 1000 not reached */
    ck_assert_int_eq(run(c, cmd, controller_cmd_expire(cmd, 1000)).error, 0);
    ck_assert(!controller_broker(c, 1)->alive);
    ck_assert(controller_broker(c, 2)->alive);
    const struct controller_topic *t = topic(c, "t");
    for (uint32_t p = 0; p < t->partition_count; p++) ck_assert_uint_ne(t->partitions[p].leader, 1);
    ck_assert_int_eq(create(c, "three", 1, 3).error, RQ_EINVAL);   /* 2 live brokers */
    ck_assert_uint_eq(controller_broker(c, 1)->epoch, 1);
    ck_assert_int_eq(reg(c, 1, 2000).error, 0);   /* it restarted: a new epoch */
    ck_assert_uint_eq(controller_broker(c, 1)->epoch, 2);
    ck_assert(controller_broker(c, 1)->alive);
    ck_assert_int_eq(run(c, cmd, controller_cmd_expire(cmd, 2500)).error, 0);
    ck_assert(!controller_broker(c, 2)->alive && !controller_broker(c, 3)->alive);
    for (uint32_t p = 0; p < t->partition_count; p++) ck_assert_uint_eq(t->partitions[p].leader, 1);
    controller_destroy(c);
}
END_TEST

START_TEST(leader_reports_follow_terms) {
    struct controller *c = cluster(3);
    const struct controller_partition *part = &topic(c, "t")->partitions[4];
    uint32_t other = part->replicas[1];
    uint8_t cmd[CONTROLLER_CMD_MAX];
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "t", 4, other, 7)).error, 0);
    ck_assert_uint_eq(part->leader, other);
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "t", 4, part->replicas[0], 6)).error, 0);
    ck_assert_uint_eq(part->leader, other);   /* an older term changes nothing */
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "t", 4, 77, 9)).error, RQ_EINVAL);
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "t", 12, other, 9)).error, RQ_ENOTOPIC);
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "x", 0, other, 9)).error, RQ_ENOTOPIC);
    controller_destroy(c);
}
END_TEST

START_TEST(producer_ids_and_deletion) {
    struct controller *c = cluster(3);
    uint8_t cmd[CONTROLLER_CMD_MAX];
    for (uint64_t want = 1; want <= 3; want++)
        ck_assert_uint_eq(run(c, cmd, controller_cmd_init_producer(cmd)).producer_id, want);
    ck_assert_int_eq(create(c, "u", 2, 2).error, 0);
    ck_assert_int_eq(run(c, cmd, controller_cmd_delete_topic(cmd, "t")).error, 0);
    ck_assert_ptr_null(topic(c, "t"));
    ck_assert_ptr_nonnull(topic(c, "u"));
    ck_assert_int_eq(run(c, cmd, controller_cmd_delete_topic(cmd, "t")).error, RQ_ENOTOPIC);
    ck_assert_int_eq(create(c, "t", 1, 1).error, 0);
    ck_assert_uint_eq(topic(c, "t")->id, 3);   /* ids are never reused */
    controller_destroy(c);
}
END_TEST

/* Partitions get Raft group ids from CONTROLLER_GROUP_FIRST up, in creation order, never reused;
 * a topic that would pass CONTROLLER_GROUP_LIMIT is refused with RQ_ENOSPC and takes none. */
START_TEST(partitions_get_group_ids_never_reused) {
    struct controller *c = cluster(3);   /* "t": groups 2..13 */
    const struct controller_topic *t = topic(c, "t");
    for (uint32_t p = 0; p < 12; p++) ck_assert_uint_eq(t->partitions[p].group, CONTROLLER_GROUP_FIRST + p);
    uint8_t cmd[CONTROLLER_CMD_MAX];
    ck_assert_int_eq(run(c, cmd, controller_cmd_delete_topic(cmd, "t")).error, 0);
    ck_assert_int_eq(create(c, "u", 2, 3).error, 0);
    ck_assert_uint_eq(topic(c, "u")->partitions[0].group, CONTROLLER_GROUP_FIRST + 12);
    uint32_t left = CONTROLLER_GROUP_LIMIT - (CONTROLLER_GROUP_FIRST + 14);
    ck_assert_int_eq(create(c, "big", left + 1, 1).error, RQ_ENOSPC);
    ck_assert_ptr_null(topic(c, "big"));
    ck_assert_int_eq(create(c, "fits", left, 1).error, 0);
    ck_assert_uint_eq(topic(c, "fits")->partitions[left - 1].group, CONTROLLER_GROUP_LIMIT - 1);
    ck_assert_int_eq(create(c, "more", 1, 1).error, RQ_ENOSPC);
    /* The counter survives an image: a restored replica goes on where it stopped. */
    size_t n;
    uint8_t *image = image_of(c, &n);
    struct controller *twin = controller_create(TIMEOUT);
    ck_assert_int_eq(controller_restore(twin, image, n), 0);
    ck_assert_uint_eq(topic(twin, "u")->partitions[1].group, CONTROLLER_GROUP_FIRST + 13);
    ck_assert_int_eq(create(twin, "more", 1, 1).error, RQ_ENOSPC);
    free(image);
    controller_destroy(twin);
    controller_destroy(c);
}
END_TEST

/* An image whose topic's groups lie at or past its next group id is refused: restored, the
 * counter would hand those ids out again, and ids past CONTROLLER_GROUP_LIMIT index past the
 * host's and the broker's tables. */
static size_t image_with_groups(uint8_t *buf, size_t cap, uint32_t next_group, uint32_t base,
                                uint32_t partitions) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u8(&w, 3);                      /* version */
    rq_write_varint(&w, 2);                  /* next topic id */
    rq_write_varint(&w, 1);                  /* next producer id */
    rq_write_varint(&w, next_group);
    rq_write_varint(&w, 1);                  /* one broker: 1, alive, a member, epoch 1, deadline 0, "a" */
    rq_write_varint(&w, 1);
    rq_write_u8(&w, 1);
    rq_write_u8(&w, 0);
    rq_write_varint(&w, 1);
    rq_write_varint(&w, 0);
    rq_write_varint(&w, 1);
    rq_write_bytes(&w, "a", 1);
    rq_write_varint(&w, 1);                  /* one topic: id 1, "x", RF 1, 100-byte messages */
    rq_write_varint(&w, 1);
    rq_write_varint(&w, 1);
    rq_write_bytes(&w, "x", 1);
    rq_write_varint(&w, partitions);
    rq_write_varint(&w, 1);
    rq_write_varint(&w, 0);
    rq_write_varint(&w, 0);
    rq_write_varint(&w, 100);
    rq_write_varint(&w, base);
    for (uint32_t p = 0; p < partitions; p++) {
        rq_write_varint(&w, 1);              /* replicas: broker 1 */
        rq_write_varint(&w, 1);
        rq_write_varint(&w, 1);              /* target: the same */
        rq_write_varint(&w, 1);
        rq_write_varint(&w, 0);              /* no leader */
        rq_write_varint(&w, 0);
        rq_write_varint(&w, 0);              /* no replicas report */
        rq_write_varint(&w, 0);
    }
    ck_assert_int_eq(w.err, 0);
    return w.len;
}

START_TEST(image_with_groups_past_its_counter_is_refused) {
    uint8_t buf[256];
    struct controller *c = controller_create(TIMEOUT);
    /* The well-formed case restores: groups 2..4, next 5. */
    ck_assert_int_eq(controller_restore(c, buf, image_with_groups(buf, sizeof buf, 5, 2, 3)), 0);
    ck_assert_uint_eq(topic(c, "x")->partitions[2].group, 4);
    controller_destroy(c);
    /* Groups 255..257 with next group 2: past the limit. */
    c = controller_create(TIMEOUT);
    ck_assert_int_eq(controller_restore(c, buf, image_with_groups(buf, sizeof buf, 2, 255, 3)),
                     RQ_ECORRUPT);
    ck_assert_ptr_null(topic(c, "x"));
    controller_destroy(c);
    /* Groups 200..201 with next group 100: the counter would give them out again. */
    c = controller_create(TIMEOUT);
    ck_assert_int_eq(controller_restore(c, buf, image_with_groups(buf, sizeof buf, 100, 200, 2)),
                     RQ_ECORRUPT);
    controller_destroy(c);
}
END_TEST

/* Every proper prefix of every command, an unknown kind and a bad name: no-ops, counted. */
START_TEST(malformed_commands_change_nothing) {
    struct controller *c = cluster(3), *twin = cluster(3);
    uint8_t cmds[9][CONTROLLER_CMD_MAX];
    static const uint32_t voters[] = {1, 2, 3};
    struct proto_create_topic_req req = {.name = {(const uint8_t *)"new", 3}, .partitions = 2,
                                         .replication = 2, .max_message_bytes = 10};
    size_t sizes[9] = {
        controller_cmd_register(cmds[0], 4, "h:1", 5), controller_cmd_heartbeat(cmds[1], 1, 5),
        controller_cmd_expire(cmds[2], 5000), controller_cmd_create_topic(cmds[3], &req),
        controller_cmd_delete_topic(cmds[4], "t"), controller_cmd_init_producer(cmds[5]),
        controller_cmd_leader(cmds[6], "t", 0, 2, 1), controller_cmd_decommission(cmds[7], 2),
        controller_cmd_replicas(cmds[8], "t", 0, 1, 1, voters, 3)};
    uint64_t expected = 0;
    for (int k = 0; k < 9; k++) {
        for (size_t cut = 0; cut < sizes[k]; cut++) {
            struct controller_result res;
            controller_apply(c, cmds[k], cut, &res);
            ck_assert_int_eq(res.error, RQ_ECORRUPT);
            expected++;
        }
        uint8_t longer[CONTROLLER_CMD_MAX + 1];
        memcpy(longer, cmds[k], sizes[k]);
        longer[sizes[k]] = 0;
        ck_assert_int_eq(run(c, longer, sizes[k] + 1).error, RQ_ECORRUPT);
        expected++;
    }
    static const uint8_t unknown[] = {CONTROLLER_KIND_MAX + 1, 0};
    static const uint8_t bad_name[] = {CONTROLLER_DELETE_TOPIC, 2, 'a', '/'};
    /* REPLICAS with no voters, a voter 0, a voter twice, more than the bound. */
    static const uint8_t bad_voters[][16] = {
        {CONTROLLER_REPLICAS, 1, 't', 0, 1, 1, 0},
        {CONTROLLER_REPLICAS, 1, 't', 0, 1, 1, 2, 1, 0},
        {CONTROLLER_REPLICAS, 1, 't', 0, 1, 1, 2, 1, 1},
        {CONTROLLER_REPLICAS, 1, 't', 0, 1, 1, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9}};
    static const size_t bad_sizes[] = {7, 9, 9, 16};
    ck_assert_int_eq(run(c, unknown, sizeof unknown).error, RQ_ECORRUPT);
    ck_assert_int_eq(run(c, bad_name, sizeof bad_name).error, RQ_ECORRUPT);
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(run(c, bad_voters[k], bad_sizes[k]).error, RQ_ECORRUPT);
    ck_assert_uint_eq(controller_malformed(c), expected + 6);
    assert_same_image(c, twin);
    controller_destroy(c);
    controller_destroy(twin);
}
END_TEST

START_TEST(image_round_trips_and_refuses_damage) {
    struct controller *c = cluster(4);
    ck_assert_int_eq(create(c, "second", 7, 2).error, 0);
    uint8_t cmd[CONTROLLER_CMD_MAX];
    run(c, cmd, controller_cmd_init_producer(cmd));
    run(c, cmd, controller_cmd_expire(cmd, 5000));
    ck_assert_int_eq(reg(c, 5, 6000).error, 0);   /* a join: targets differ from replicas */
    ck_assert_int_eq(run(c, cmd, controller_cmd_decommission(cmd, 1)).error, 0);
    static const uint32_t voters[] = {4, 2};
    run(c, cmd, controller_cmd_replicas(cmd, "second", 1, 3, 9, voters, 2));
    ck_assert_uint_eq(topic(c, "second")->partitions[1].replica_count, 2);
    size_t n;
    uint8_t *img = image_of(c, &n);
    struct controller *d = controller_create(TIMEOUT);
    ck_assert_int_eq(controller_restore(d, img, n), 0);
    assert_same_image(c, d);
    ck_assert_uint_eq(run(d, cmd, controller_cmd_init_producer(cmd)).producer_id, 2);
    /* Every truncation, and a trailing byte, is refused and leaves the state as it was. */
    struct controller *e = cluster(3);
    size_t before_n;
    uint8_t *before = image_of(e, &before_n);
    for (size_t cut = 0; cut < n; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        memcpy(p, img, cut);
        ck_assert_int_ne(controller_restore(e, p, cut), 0);
        free(p);
    }
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, img, n);
    longer[n] = 0;
    ck_assert_int_eq(controller_restore(e, longer, n + 1), RQ_ECORRUPT);
    longer[0] = 2;   /* another version (the image is version 3) */
    ck_assert_int_eq(controller_restore(e, longer, n), RQ_ECORRUPT);
    size_t after_n;
    uint8_t *after = image_of(e, &after_n);
    ck_assert_uint_eq(before_n, after_n);
    ck_assert_mem_eq(before, after, before_n);
    free(longer);
    free(before);
    free(after);
    free(img);
    controller_destroy(c);
    controller_destroy(d);
    controller_destroy(e);
}
END_TEST

START_TEST(replicas_apply_identically) {
    struct controller *a = cluster(6), *b = cluster(6);
    for (int round = 0; round < 20; round++) {
        char name[32];
        snprintf(name, sizeof name, "topic-%d", round);
        uint8_t cmd[CONTROLLER_CMD_MAX];
        size_t n = controller_cmd_expire(cmd, (uint64_t)round * 300);
        struct controller_result ra, rb;
        controller_apply(a, cmd, n, &ra);
        controller_apply(b, cmd, n, &rb);
        uint32_t id = (uint32_t)(round % 6 + 1);
        n = controller_cmd_register(cmd, id, "h", (uint64_t)round * 300);
        controller_apply(a, cmd, n, &ra);
        controller_apply(b, cmd, n, &rb);
        struct proto_create_topic_req req = {.name = {(const uint8_t *)name, (uint32_t)strlen(name)},
                                             .partitions = (uint32_t)round + 1, .replication = 2,
                                             .max_message_bytes = 1};
        n = controller_cmd_create_topic(cmd, &req);
        controller_apply(a, cmd, n, &ra);
        controller_apply(b, cmd, n, &rb);
        ck_assert_int_eq(ra.error, rb.error);
        if (round == 7 || round == 13) {   /* a join, then a broker leaving: targets move */
            n = round == 7 ? controller_cmd_register(cmd, 7, "h", 0)
                           : controller_cmd_decommission(cmd, 3);
            controller_apply(a, cmd, n, &ra);
            controller_apply(b, cmd, n, &rb);
            ck_assert_int_eq(ra.error, 0);
            ck_assert_int_eq(rb.error, 0);
        }
        const struct controller_partition *p0 = &controller_topic_at(a, 0)->partitions[0];
        n = controller_cmd_replicas(cmd, "t", 0, (uint64_t)round, (uint64_t)round % 3, p0->target,
                                    p0->target_count);
        controller_apply(a, cmd, n, &ra);
        controller_apply(b, cmd, n, &rb);
    }
    assert_same_image(a, b);
    controller_destroy(a);
    controller_destroy(b);
}
END_TEST

/* The replicas that differ between each partition's replica set and its target. */
static uint32_t moves(const struct controller_topic *t) {
    uint32_t n = 0;
    for (uint32_t p = 0; p < t->partition_count; p++) {
        const struct controller_partition *part = &t->partitions[p];
        for (uint32_t k = 0; k < part->target_count; k++) {
            int kept = 0;
            for (uint32_t j = 0; j < part->replica_count; j++) kept |= part->replicas[j] == part->target[k];
            n += !kept;
        }
    }
    return n;
}

/* Every target: `rf` distinct brokers, none of them `gone`; returns how many name `broker`. */
static uint32_t check_targets(const struct controller_topic *t, uint32_t rf, uint32_t gone,
                              uint32_t broker) {
    uint32_t holds = 0;
    for (uint32_t p = 0; p < t->partition_count; p++) {
        const struct controller_partition *part = &t->partitions[p];
        ck_assert_uint_eq(part->target_count, rf);
        for (uint32_t k = 0; k < rf; k++) {
            ck_assert_uint_ne(part->target[k], 0);
            ck_assert_uint_ne(part->target[k], gone);
            for (uint32_t j = 0; j < k; j++) ck_assert_uint_ne(part->target[j], part->target[k]);
            holds += part->target[k] == broker;
        }
    }
    return holds;
}

/* A broker joining (its first registration) and one decommissioned place every topic again over
 * the members: the targets change by few replicas (36 replicas over 4 brokers, then 5: about a
 * fifth move, most of them onto the new broker), the replica sets not at all (the partitions' leaders move them); a restart's
 * registration moves nothing; a decommission that would leave fewer members than a topic's
 * replicas is refused; REPLICAS reports set the replica set, in the target's order, newest
 * (term, configuration index) only. */
START_TEST(members_joining_and_leaving_set_targets) {
    struct controller *c = cluster(4);
    const struct controller_topic *t = topic(c, "t");
    ck_assert_uint_eq(moves(t), 0);
    ck_assert_int_eq(reg(c, 5, 100).error, 0);
    uint32_t joined = moves(t);
    ck_assert_uint_ge(joined, 4);
    ck_assert_uint_le(joined, 14);
    uint32_t onto_new = check_targets(t, 3, 0, 5);   /* most moves are onto the new one */
    ck_assert_uint_ge(onto_new, 4);
    ck_assert_uint_le(onto_new, joined);
    uint32_t moving = 0;
    for (uint32_t p = 0; p < t->partition_count; p++) {
        ck_assert_uint_eq(t->partitions[p].replica_count, 3);
        moving += (uint32_t)controller_partition_moving(&t->partitions[p]);
    }
    ck_assert_uint_ge(moving, 4);
    ck_assert_int_eq(reg(c, 5, 200).error, 0);   /* a restart: not a join */
    ck_assert_uint_eq(moves(t), joined);
    /* Broker 2 leaves: no target names it. */
    uint8_t cmd[CONTROLLER_CMD_MAX];
    ck_assert_int_eq(run(c, cmd, controller_cmd_decommission(cmd, 2)).error, 0);
    ck_assert_uint_eq(check_targets(t, 3, 2, 0), 0);
    ck_assert_int_eq(run(c, cmd, controller_cmd_decommission(cmd, 2)).error, 0);   /* again */
    ck_assert_int_eq(run(c, cmd, controller_cmd_decommission(cmd, 9)).error, RQ_ENOENT);
    ck_assert_int_eq(run(c, cmd, controller_cmd_decommission(cmd, 1)).error, 0);
    ck_assert_int_eq(run(c, cmd, controller_cmd_decommission(cmd, 3)).error, RQ_EINVAL);
    ck_assert_uint_eq(check_targets(t, 3, 1, 0), 0);
    ck_assert_uint_eq(check_targets(t, 3, 2, 0), 0);
    ck_assert(!controller_broker(c, 3)->decommissioned);
    /* The new replica set of partition 0, as its leader reports it, ordered like its target. */
    const struct controller_partition *p0 = &t->partitions[0];
    uint32_t voters[3] = {p0->target[2], p0->target[0], p0->target[1]};
    ck_assert_int_eq(run(c, cmd, controller_cmd_replicas(cmd, "t", 0, 2, 10, voters, 3)).error, 0);
    ck_assert(!controller_partition_moving(p0));
    ck_assert_mem_eq(p0->replicas, p0->target, 3 * sizeof p0->replicas[0]);
    ck_assert_uint_eq(p0->replicas_term, 2);
    uint32_t old[2] = {1, 2};
    run(c, cmd, controller_cmd_replicas(cmd, "t", 0, 2, 9, old, 2));   /* older index */
    run(c, cmd, controller_cmd_replicas(cmd, "t", 0, 1, 50, old, 2));  /* older term */
    ck_assert(!controller_partition_moving(p0));
    ck_assert_int_eq(run(c, cmd, controller_cmd_replicas(cmd, "t", 0, 3, 0, old, 2)).error, 0);
    ck_assert_uint_eq(p0->replica_count, 2);
    ck_assert_int_eq(run(c, cmd, controller_cmd_replicas(cmd, "zz", 0, 3, 0, old, 2)).error,
                     RQ_ENOTOPIC);
    /* A leader report names a member of the replica set or the target. */
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "t", 0, p0->target[0], 9)).error, 0);
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "t", 0, 9, 9)).error, RQ_EINVAL);
    /* A report without the recorded leader, which the target has not either, leaves no leader
     * (a leader outside both would make the image refuse to restore: mq seed 201 --nodes 5). */
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "t", 0, 1, 10)).error, 0);
    uint32_t leader = p0->leader, without[2] = {p0->target[0], p0->target[1]};
    ck_assert_uint_eq(leader, 1);   /* decommissioned: in the replica set, not the target */
    ck_assert_int_eq(run(c, cmd, controller_cmd_replicas(cmd, "t", 0, 4, 0, without, 2)).error, 0);
    ck_assert_int_eq(controller_partition_has(p0, leader), 0);
    ck_assert_uint_eq(p0->leader, 0);
    assert_restores(c);
    controller_destroy(c);
}
END_TEST

/* A leader recorded from the target (a broker joining) that a later placement leaves out (it is
 * decommissioned before the move finished) is forgotten, so the image still restores (found by the
 * controller_apply fuzzer). */
START_TEST(a_leader_placed_out_is_forgotten) {
    struct controller *c = cluster(4);
    ck_assert_int_eq(reg(c, 5, 100).error, 0);
    const struct controller_topic *t = topic(c, "t");
    int32_t moving = -1;
    for (uint32_t p = 0; p < t->partition_count && moving < 0; p++)
        if (controller_partition_has(&t->partitions[p], 5) && controller_partition_moving(&t->partitions[p]))
            moving = (int32_t)p;
    ck_assert_int_ge(moving, 0);
    const struct controller_partition *part = &t->partitions[moving];
    uint8_t cmd[CONTROLLER_CMD_MAX];
    ck_assert_int_eq(run(c, cmd, controller_cmd_leader(cmd, "t", (uint32_t)moving, 5, 7)).error, 0);
    ck_assert_uint_eq(part->leader, 5);
    ck_assert_int_eq(run(c, cmd, controller_cmd_decommission(cmd, 5)).error, 0);
    ck_assert(!controller_partition_has(part, 5));
    ck_assert_uint_eq(part->leader, 0);
    assert_restores(c);
    controller_destroy(c);
}
END_TEST

/* A decommissioned broker stops being a member at once (no default or placement counts it) but
 * stays in use — clients must still reach it — until no partition has it in its replica set, its
 * target or as its leader: each partition's leader reports the new voters as the move goes. */
START_TEST(a_decommissioned_broker_is_in_use_until_its_partitions_moved) {
    struct controller *c = cluster(4);
    const struct controller_topic *t = topic(c, "t");
    ck_assert_uint_eq(controller_member_count(c), 4);
    uint32_t gone = t->partitions[0].replicas[0];   /* partition 0's preferred leader */
    ck_assert(controller_broker_in_use(c, gone));
    uint8_t cmd[CONTROLLER_CMD_MAX];
    ck_assert_int_eq(run(c, cmd, controller_cmd_decommission(cmd, gone)).error, 0);
    ck_assert_uint_eq(controller_member_count(c), 3);
    ck_assert_uint_eq(controller_broker_count(c), 4);
    ck_assert(controller_broker_in_use(c, gone));   /* it still holds replicas */
    /* A new topic is placed over the 3 members only. */
    ck_assert_int_eq(create(c, "u", 6, 3).error, 0);
    ck_assert_uint_eq(check_targets(topic(c, "u"), 3, gone, 0), 0);
    t = topic(c, "t");
    for (uint32_t p = 0; p < t->partition_count; p++) {
        const struct controller_partition *part = &t->partitions[p];
        ck_assert(controller_broker_in_use(c, gone));
        if (!controller_partition_has(part, gone)) continue;
        ck_assert_int_eq(run(c, cmd, controller_cmd_replicas(cmd, "t", p, 5, 100 + p, part->target,
                                                             part->target_count)).error,
                         0);
    }
    ck_assert(!controller_broker_in_use(c, gone));
    ck_assert_uint_eq(controller_member_count(c), 3);
    for (uint32_t id = 1; id <= 4; id++) ck_assert(id == gone || controller_broker_in_use(c, id));
    assert_restores(c);
    controller_destroy(c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("controller");
    TCase *tc = tcase_create("state machine");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, topics_are_placed_over_live_brokers);
    tcase_add_test(tc, brokers_expire_and_leadership_moves);
    tcase_add_test(tc, leader_reports_follow_terms);
    tcase_add_test(tc, producer_ids_and_deletion);
    tcase_add_test(tc, partitions_get_group_ids_never_reused);
    tcase_add_test(tc, malformed_commands_change_nothing);
    tcase_add_test(tc, image_round_trips_and_refuses_damage);
    tcase_add_test(tc, image_with_groups_past_its_counter_is_refused);
    tcase_add_test(tc, replicas_apply_identically);
    tcase_add_test(tc, members_joining_and_leaving_set_targets);
    tcase_add_test(tc, a_leader_placed_out_is_forgotten);
    tcase_add_test(tc, a_decommissioned_broker_is_in_use_until_its_partitions_moved);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
