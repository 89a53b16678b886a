/* A broker's clients: decoding their frames, serving or routing each request, and the table of
 * requests waiting for an answer; see broker.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "broker/ttl.h"
#include "node/broker_internal.h"

/* ---- answers ----------------------------------------------------------------------------------- */

static uint8_t *payload_buf(struct broker *b) { return b->answer + PROTO_FRAME_HEADER; }

static void answer_at(struct broker *b, uint64_t conn, uint8_t version, uint8_t type,
                      uint32_t correlation, size_t payload_size) {
    RQ_ASSERT(payload_size <= BROKER_ANSWER_MAX);
    proto_frame_header_version(b->answer, version, type, correlation, payload_buf(b),
                               (uint32_t)payload_size);
    b->io->reply(b->io->env, conn, b->answer, PROTO_FRAME_HEADER + payload_size);
}

/* Every answer but METADATA_RESP has one layout at every version: written at the oldest. */
void broker_answer(struct broker *b, uint64_t conn, uint8_t type, uint32_t correlation,
                   size_t payload_size) {
    answer_at(b, conn, PROTO_VERSION_MIN, type, correlation, payload_size);
}

static void answer_error_frame(struct broker *b, uint64_t conn, uint32_t correlation, int error,
                               const char *text) {
    b->stats.bad_requests++;
    size_t n = proto_encode_error(payload_buf(b), BROKER_ANSWER_MAX, error, text);
    broker_answer(b, conn, PROTO_ERROR, correlation, n);
}

static void answer_status(struct broker *b, uint64_t conn, uint8_t type, uint32_t correlation,
                          int error, uint32_t hint) {
    size_t n;
    if (type == PROTO_INIT_PRODUCER_RESP) {
        struct proto_init_producer_resp m = {.error = error, .leader_hint = hint};
        n = proto_encode_init_producer_resp(payload_buf(b), BROKER_ANSWER_MAX, &m);
    } else if (type == PROTO_OFFSET_RESP) {
        struct proto_offset_resp m = {.error = error, .leader_hint = hint,
                                      .committed = PROTO_NO_OFFSET};
        n = proto_encode_offset_resp(payload_buf(b), BROKER_ANSWER_MAX, &m);
    } else if (type == PROTO_PRODUCE_RESP) {
        struct proto_produce_resp m = {.error = error, .leader_hint = hint};
        n = proto_encode_produce_resp(payload_buf(b), BROKER_ANSWER_MAX, &m);
    } else {
        RQ_ASSERT(type == PROTO_CREATE_TOPIC_RESP || type == PROTO_DELETE_TOPIC_RESP ||
                  type == PROTO_DECOMMISSION_RESP);
        struct proto_status_resp m = {.error = error, .leader_hint = hint};
        n = proto_encode_status_resp(payload_buf(b), BROKER_ANSWER_MAX, &m);
    }
    broker_answer(b, conn, type, correlation, n);
}

/* ---- the waiting requests ---------------------------------------------------------------------- */

static uint64_t cookie_of(const struct broker *b, const struct broker_request *r) {
    return (uint64_t)r->generation << 16 | (uint64_t)(r - b->requests);
}

uint64_t broker_request_cookie(const struct broker *b, const struct broker_request *r) {
    return cookie_of(b, r);
}

static struct broker_request *request_of(struct broker *b, uint64_t cookie) {
    uint64_t slot = cookie & 0xFFFF;
    if (cookie == 0 || slot >= BROKER_REQUESTS_MAX) return NULL;
    struct broker_request *r = &b->requests[slot];
    return r->kind != REQ_FREE && r->generation == cookie >> 16 ? r : NULL;
}

static struct broker_request *request_new(struct broker *b, enum request_kind kind, uint64_t conn,
                                          uint32_t correlation, uint8_t answer_type) {
    for (uint32_t i = 0; i < BROKER_REQUESTS_MAX; i++) {
        struct broker_request *r = &b->requests[i];
        if (r->kind != REQ_FREE) continue;
        memset(r, 0, sizeof *r);
        r->kind = kind;
        r->generation = b->next_generation++;
        if (b->next_generation == 0 || b->next_generation >= 1u << 31) b->next_generation = 1;
        r->conn = conn;
        r->correlation = correlation;
        r->answer_type = answer_type;
        r->since_ns = broker_now(b);
        r->deadline_ns = r->since_ns + b->cfg.request_timeout_ns;
        return r;
    }
    b->stats.busy++;
    return NULL;
}

/* A fetch joins (at the end) or leaves its partition's list of fetches. */
static void waiting_add(struct broker *b, struct broker_part *part, struct broker_request *w) {
    int32_t slot = (int32_t)(w - b->requests);
    w->wait_prev = part->waiting_last;
    w->wait_next = -1;
    if (part->waiting_last >= 0) b->requests[part->waiting_last].wait_next = slot;
    else part->waiting_first = slot;
    part->waiting_last = slot;
}

static void waiting_remove(struct broker *b, struct broker_part *part, struct broker_request *w) {
    RQ_ASSERT(part->waiting_first >= 0);
    if (w->wait_prev >= 0) b->requests[w->wait_prev].wait_next = w->wait_next;
    else part->waiting_first = w->wait_next;
    if (w->wait_next >= 0) b->requests[w->wait_next].wait_prev = w->wait_prev;
    else part->waiting_last = w->wait_prev;
}

static void request_free(struct broker *b, struct broker_request *r) {
    if (r->kind == REQ_FETCH) {
        struct broker_part *part = b->parts[r->group];
        RQ_ASSERT(part != NULL);
        waiting_remove(b, part, r);
    }
    r->kind = REQ_FREE;
}

struct broker_request *broker_request_new(struct broker *b, enum request_kind kind, uint64_t conn,
                                          uint32_t correlation, uint8_t answer_type) {
    return request_new(b, kind, conn, correlation, answer_type);
}

void broker_request_free(struct broker *b, struct broker_request *r) { request_free(b, r); }

void broker_ctl_done(void *arg, uint64_t cookie, const struct controller_result *res) {
    struct broker *b = arg;
    struct broker_request *r = request_of(b, cookie);
    if (r == NULL) return;   /* an internal command, or the client was answered already */
    if (r->answer_type == PROTO_INIT_PRODUCER_RESP && res->error == 0) {
        struct proto_init_producer_resp m = {.producer_id = res->producer_id};
        size_t n = proto_encode_init_producer_resp(payload_buf(b), BROKER_ANSWER_MAX, &m);
        broker_answer(b, r->conn, r->answer_type, r->correlation, n);
    } else {
        answer_status(b, r->conn, r->answer_type, r->correlation, res->error, 0);
    }
    request_free(b, r);
}

static void count_produce(struct broker *b, int error, uint64_t latency_ns) {
    if (error != 0) {
        b->stats.produce_failed++;
        return;
    }
    rq_hist_add(&b->stats.produce_latency, latency_ns);
    b->stats.produce_answered++;
}

void broker_part_done(void *arg, uint64_t cookie, const struct part_group_result *res) {
    struct broker *b = arg;
    struct broker_request *r = request_of(b, cookie);
    if (r == NULL) return;
    if (r->kind == REQ_CURSOR) {
        broker_cursor_done(b, r, res);
        return;
    }
    count_produce(b, res->error, broker_now(b) - r->since_ns);
    struct proto_produce_resp m = {.error = res->error, .base_offset = res->base_offset};
    size_t n = proto_encode_produce_resp(payload_buf(b), BROKER_ANSWER_MAX, &m);
    broker_answer(b, r->conn, PROTO_PRODUCE_RESP, r->correlation, n);
    request_free(b, r);
}

/* ---- fetch ------------------------------------------------------------------------------------- *
 *
 * Every fetch is a request in the table while it is served: it may wait for its read index (a
 * follower), for records (long-poll), or for entries read back from the store (an offset below
 * what Raft keeps in memory). */

enum { FETCH_LOAD_ENTRIES = 64 };   /* entries one store read brings back for a fetch */

static void answer_fetch(struct broker *b, struct broker_request *w, int err,
                         struct proto_fetch_builder *fb) {
    struct broker_part *part = b->parts[w->group];
    struct proto_fetch_resp m = {.error = err, .log_start = part_group_log_start(part->pg),
                                 .high_watermark = part_group_state(part->pg)->next_offset};
    if (err != 0) fb->count = 0, fb->len = 0, fb->record_bytes = 0;
    size_t n = proto_encode_fetch_resp_raw(payload_buf(b), BROKER_ANSWER_MAX, &m, fb);
    RQ_ASSERT(n > 0);   /* the records were bounded to leave room for the rest */
    RQ_ASSERT(fb->record_bytes <= fb->len);
    part->bytes_out += fb->record_bytes;
    broker_answer(b, w->conn, PROTO_FETCH_RESP, w->correlation, n);
    request_free(b, w);
}

/* Answers w with what the replica has from its offset on, unless there is nothing yet and it may
 * still wait (final 0), or its entries must first be read back from the store. */
static void fetch_progress(struct broker *b, struct broker_request *w, int final) {
    RQ_ASSERT(w->kind == REQ_FETCH && !w->confirming && !w->loading);
    struct broker_part *part = b->parts[w->group];
    const struct raft *r = host_raft(b->host, w->group);
    RQ_ASSERT(r != NULL);
    struct proto_fetch_builder fb;
    proto_fetch_builder_init(&fb, b->records, BROKER_ANSWER_MAX - 64);
    if (!broker_fetch_owns(b, w)) {   /* a newer claim took the cursor while it waited */
        answer_fetch(b, w, RQ_EFENCED, &fb);
        return;
    }
    uint64_t load_from = 0;
    int err = part_group_read(part->pg, r, w->offset, w->max_records, w->max_bytes, broker_now(b),
                              &fb, &load_from);
    if (err == PART_GROUP_NEED_LOAD) {
        uint64_t cookie = cookie_of(b, w);
        w->loading = 1;   /* before the read: its answer may come inside host_read_log */
        if (host_read_log(b->host, w->group, load_from, FETCH_LOAD_ENTRIES, cookie) == 0) return;
        w->loading = 0;
        err = RQ_EBUSY;   /* too many store reads: the consumer asks again */
    }
    if (err == 0 && fb.count == 0 && !final) return;
    answer_fetch(b, w, err, &fb);
}

void broker_fetch_loaded(struct broker *b, uint64_t cookie, int err,
                         const struct raft_entry *entries, uint32_t count) {
    struct broker_request *w = request_of(b, cookie);
    if (w == NULL || w->kind != REQ_FETCH || !w->loading) return;
    w->loading = 0;
    b->stats.fetch_loads++;
    struct proto_fetch_builder fb;
    proto_fetch_builder_init(&fb, b->records, BROKER_ANSWER_MAX - 64);
    if (err == 0)
        part_group_read_loaded(b->parts[w->group]->pg, entries, count, w->offset, w->max_records,
                               w->max_bytes, broker_now(b), &fb);
    answer_fetch(b, w, err == 0 ? 0 : RQ_EBUSY, &fb);
}

void broker_fetch_wake(struct broker *b, struct broker_part *part) {
    for (int32_t i = part->waiting_first, next; i >= 0; i = next) {
        struct broker_request *w = &b->requests[i];
        RQ_ASSERT(w->kind == REQ_FETCH && w->group == part->group);
        next = w->wait_next;   /* w may be answered and freed: only w */
        if (!w->confirming && !w->loading) fetch_progress(b, w, 0);
    }
}

void broker_fetch_confirmed(struct broker *b, uint64_t cookie) {
    struct broker_request *w = request_of(b, cookie);
    if (w == NULL || w->kind != REQ_FETCH || !w->confirming) return;
    w->confirming = 0;
    fetch_progress(b, w, w->deadline_ns <= broker_now(b));
}

void broker_requests_tick(struct broker *b, uint64_t now_ns) {
    for (uint32_t i = 0; i < BROKER_REQUESTS_MAX; i++) {
        struct broker_request *w = &b->requests[i];
        if (w->kind == REQ_FREE || now_ns < w->deadline_ns) continue;
        if (w->kind == REQ_FETCH) {
            if (w->loading) continue;   /* its store read always completes */
            /* A follower's read index normally comes within a round trip to the leader: a fetch
             * with a short wait still gets what was committed before it arrived, and serves what
             * this replica has (possibly older) only when no leader answers in time. */
            if (w->confirming && now_ns < w->confirm_until_ns) continue;
            w->confirming = 0;          /* no read index came: what this replica has */
            fetch_progress(b, w, 1);
        } else {
            b->stats.timeouts++;
            answer_status(b, w->conn, w->answer_type, w->correlation, RQ_ETIMEOUT, 0);
            request_free(b, w);
        }
    }
}

/* A fetch, or (m->cursor set: GROUP_FETCH_REQ) a consumer group member's fetch, which only the
 * leader serves, and only while the cursor's claim is the member's. */
static void fetch(struct broker *b, uint64_t conn, uint32_t correlation,
                  const struct proto_fetch_req *m) {
    int err;
    struct broker_part *part = broker_part_find(b, m->topic, m->partition, &err);
    const struct raft *r = part ? host_raft(b->host, part->group) : NULL;
    if (part != NULL && r == NULL) err = RQ_ECLOSED;   /* the replica is recovering */
    if (r != NULL && !m->from_follower && raft_role(r) != RAFT_LEADER) err = RQ_ENOTLEADER;
    if (r != NULL && err == 0 && m->cursor.size > 0 &&
        !cursor_table_owns(&part_group_state(part->pg)->cursors, m->cursor, m->generation,
                           m->member_id))
        err = RQ_EFENCED;
    struct broker_request *w = NULL;
    if (r != NULL && err != RQ_ENOTLEADER && err != RQ_EFENCED) {
        w = request_new(b, REQ_FETCH, conn, correlation, PROTO_FETCH_RESP);
        if (w == NULL) err = RQ_EBUSY;
    }
    if (w == NULL) {
        struct proto_fetch_resp a = {.error = err, .leader_hint = r ? raft_leader(r) : 0};
        struct proto_fetch_builder none;
        proto_fetch_builder_init(&none, NULL, 0);
        broker_answer(b, conn, PROTO_FETCH_RESP, correlation,
                      proto_encode_fetch_resp_raw(payload_buf(b), BROKER_ANSWER_MAX, &a, &none));
        return;
    }
    w->group = part->group;
    if (m->cursor.size > 0) memcpy(w->cursor, m->cursor.data, m->cursor.size);
    w->cursor_size = m->cursor.size;
    w->cursor_generation = m->generation;
    w->cursor_member = m->member_id;
    w->offset = m->offset;
    w->max_records = m->max_records;
    w->max_bytes = m->max_bytes;
    w->deadline_ns = broker_now(b) + (uint64_t)m->max_wait_ms * 1000000u;
    w->confirm_until_ns = w->deadline_ns > broker_now(b) + BROKER_CONFIRM_WAIT_NS
                              ? w->deadline_ns
                              : broker_now(b) + BROKER_CONFIRM_WAIT_NS;
    waiting_add(b, part, w);
    /* A follower first learns the leader's commit index (ReadIndex) and applies that far, so that
     * it answers with everything committed before the fetch arrived, as the leader would; unless
     * asked for what it has as it is (a lag probe). */
    if (raft_role(r) == RAFT_LEADER || m->from_follower == PROTO_FOLLOWER_AS_IS) {
        fetch_progress(b, w, m->max_wait_ms == 0);
        return;
    }
    uint64_t cookie = cookie_of(b, w);
    w->confirming = 1;   /* the read may be confirmed (and served) inside host_read */
    if (host_read(b->host, part->group, cookie) != 0 && request_of(b, cookie) == w) {
        w->confirming = 0;   /* no leader known, or too many reads: what this replica has */
        fetch_progress(b, w, m->max_wait_ms == 0);
    }
}

/* ---- produce ----------------------------------------------------------------------------------- */

/* RQ_ETOOBIG when a record is larger than the topic allows; RQ_EINVAL when one misuses a
 * reserved header (broker/ttl.h). */
static int check_records(const struct controller_topic *t, const struct proto_records *rs) {
    size_t cursor = 0, start = 0;
    struct proto_record rec;
    uint64_t ttl;
    while (proto_record_next(rs, &cursor, &rec)) {
        if (cursor - start > t->max_message_bytes) return RQ_ETOOBIG;
        if (rec.header_count > 0 && ttl_of(&rec, &ttl) < 0) return RQ_EINVAL;
        start = cursor;
    }
    return 0;
}

struct broker_part *broker_part_led(struct broker *b, struct proto_bytes topic, uint32_t p,
                                    int *err, uint32_t *hint, const struct raft **raft) {
    struct broker_part *part = broker_part_find(b, topic, p, err);
    const struct raft *r = part ? host_raft(b->host, part->group) : NULL;
    *hint = 0;
    *raft = r;
    if (part != NULL && r == NULL) *err = RQ_ECLOSED;   /* the replica is recovering */
    if (r != NULL && raft_role(r) != RAFT_LEADER) *err = RQ_ENOTLEADER, *hint = raft_leader(r);
    return *err == 0 ? part : NULL;
}

static void produce(struct broker *b, uint64_t conn, uint32_t correlation,
                    const struct proto_produce_req *m) {
    int err;
    uint32_t hint;
    const struct raft *r;
    struct broker_part *part = broker_part_led(b, m->topic, m->partition, &err, &hint, &r);
    if (part != NULL) {
        const struct controller_topic *t =
            controller_topic(broker_controller(b), m->topic.data, m->topic.size);
        err = check_records(t, &m->records);
    }
    struct broker_request *w = NULL;
    if (err == 0 && m->acks != PROTO_ACKS_NONE) {
        w = request_new(b, REQ_PRODUCE, conn, correlation, PROTO_PRODUCE_RESP);
        if (w == NULL) err = RQ_EBUSY;
    }
    if (err == 0) {
        uint64_t cookie = w ? cookie_of(b, w) : 0;
        err = m->delay_ms ? part_group_delayed(part->pg, b->host, m, cookie, broker_now(b))
                          : part_group_produce(part->pg, b->host, m, cookie, broker_now(b));
        if (err == RQ_ENOTLEADER) hint = raft_leader(r);
        if (err == 0) part->bytes_in += m->records.size;   /* accepted: proposed to the group */
    }
    if (err != 0 && w != NULL) request_free(b, w);
    /* Refused: answered also for acks=0 (whose success is never answered), so that its producer
     * learns its metadata is wrong instead of sending every batch to a broker that drops it. */
    if (err != 0) answer_status(b, conn, PROTO_PRODUCE_RESP, correlation, err, hint);
}

/* ---- the controller's requests ----------------------------------------------------------------- */

static void admin(struct broker *b, uint64_t conn, uint32_t correlation, uint8_t answer_type,
                  const uint8_t *cmd, size_t size) {
    const struct raft *r = host_raft(b->host, CONTROLLER_GROUP);
    if (r == NULL || raft_role(r) != RAFT_LEADER) {
        answer_status(b, conn, answer_type, correlation, r ? RQ_ENOTLEADER : RQ_ECLOSED,
                      r ? raft_leader(r) : 0);
        return;
    }
    struct broker_request *w = request_new(b, REQ_ADMIN, conn, correlation, answer_type);
    int err = w ? ctl_group_propose(b->ctl, b->host, cmd, size, cookie_of(b, w), broker_now(b))
                : RQ_EBUSY;
    if (err == 0) return;
    if (w) request_free(b, w);
    answer_status(b, conn, answer_type, correlation, err, err == RQ_ENOTLEADER ? raft_leader(r) : 0);
}

/* ---- metadata ---------------------------------------------------------------------------------- */

static void fill_topic(struct broker *b, const struct controller_topic *t, struct proto_topic *out,
                       struct proto_partition *parts) {
    out->name = (struct proto_bytes){(const uint8_t *)t->name, t->name_size};
    out->partition_count = t->partition_count;
    for (uint32_t p = 0; p < t->partition_count; p++) {
        const struct controller_partition *cp = &t->partitions[p];
        struct proto_partition *pp = &parts[p];
        pp->index = p;
        pp->leader = cp->leader;
        /* A replica here knows its group's leader first hand: fresher than the controller's. */
        const struct raft *r = b->parts[cp->group] ? host_raft(b->host, cp->group) : NULL;
        if (r != NULL && raft_leader(r) != 0) pp->leader = raft_leader(r);
        pp->replica_count = cp->replica_count;
        memcpy(pp->replicas, cp->replicas, cp->replica_count * sizeof cp->replicas[0]);
    }
}

/* Whether parts[0..n) names broker id as a leader (a replica's own view may be fresher than the
 * controller's). */
static int named_leader(const struct proto_partition *parts, uint32_t n, uint32_t id) {
    for (uint32_t i = 0; i < n; i++)
        if (parts[i].leader == id) return 1;
    return 0;
}

/* The brokers an answer lists: every member; a decommissioned broker only while some partition
 * still has it (a client must reach a partition's leader during the move), or marked as such at
 * version 2, where the flag tells clients to count it for nothing. */
static uint32_t fill_brokers(const struct controller *c, uint8_t version,
                             const struct proto_partition *parts, uint32_t used,
                             struct proto_broker *brokers) {
    uint32_t nb = 0;
    for (uint32_t i = 0; i < controller_broker_count(c) && nb < PROTO_BROKERS_MAX; i++) {
        const struct controller_broker *cb = controller_broker_at(c, i);
        if (cb->decommissioned && version < 2 && !controller_broker_in_use(c, cb->id) &&
            !named_leader(parts, used, cb->id))
            continue;
        brokers[nb++] = (struct proto_broker){
            .id = cb->id,
            .address = {(const uint8_t *)cb->address, cb->address_size},
            .flags = cb->decommissioned ? PROTO_BROKER_DECOMMISSIONED : 0};
    }
    return nb;
}

/* Answered at the request's version (proto/frame.h): a version-1 client gets no flags. */
static void metadata(struct broker *b, uint64_t conn, uint32_t correlation, uint8_t version,
                     const struct proto_metadata_req *m) {
    const struct controller *c = broker_controller(b);
    uint32_t nt = m->topic_count ? m->topic_count : controller_topic_count(c);
    uint32_t total = 0;
    for (uint32_t i = 0; i < controller_topic_count(c); i++)
        total += controller_topic_at(c, i)->partition_count;
    struct proto_topic *topics = calloc(nt ? nt : 1, sizeof *topics);
    struct proto_partition *parts = calloc(total ? total : 1, sizeof *parts);
    if (topics == NULL || parts == NULL) {
        answer_error_frame(b, conn, correlation, RQ_ENOMEM, "no memory for the metadata answer");
        free(topics);
        free(parts);
        return;
    }
    uint32_t used = 0;
    size_t cursor = 0;
    for (uint32_t i = 0; i < nt; i++) {
        const struct controller_topic *t;
        struct proto_bytes name = {0};
        if (m->topic_count) {
            int more = proto_name_next(m, &cursor, &name);
            RQ_ASSERT(more);
            t = controller_topic(c, name.data, name.size);
        } else {
            t = controller_topic_at(c, i);
        }
        if (t == NULL || (m->topic_count && used + t->partition_count > total)) {
            topics[i] = (struct proto_topic){.name = name, .error = RQ_ENOTOPIC};
            continue;
        }
        fill_topic(b, t, &topics[i], parts + used);   /* a name asked twice is answered twice */
        used += t->partition_count;
    }
    struct proto_broker brokers[PROTO_BROKERS_MAX];
    uint32_t nb = fill_brokers(c, version, parts, used, brokers);
    const struct raft *r = host_raft(b->host, CONTROLLER_GROUP);
    size_t n = proto_encode_metadata_resp_version(payload_buf(b), BROKER_ANSWER_MAX, version,
                                                  r ? raft_leader(r) : 0, brokers, nb, topics, nt,
                                                  parts);
    free(topics);
    free(parts);
    if (n == 0) {
        answer_error_frame(b, conn, correlation, RQ_ETOOBIG, "metadata answer too large");
        return;
    }
    answer_at(b, conn, version, PROTO_METADATA_RESP, correlation, n);
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

static void serve(struct broker *b, uint64_t conn, const struct proto_frame *f,
                  const struct proto_msg *m) {
    uint8_t cmd[CONTROLLER_CMD_MAX];
    switch (f->type) {
    case PROTO_METADATA_REQ:
        metadata(b, conn, f->correlation, f->version, &m->u.metadata_req);
        break;
    case PROTO_PRODUCE_REQ:
    case PROTO_DELAYED_PRODUCE_REQ: produce(b, conn, f->correlation, &m->u.produce_req); break;
    case PROTO_FETCH_REQ:
    case PROTO_GROUP_FETCH_REQ: fetch(b, conn, f->correlation, &m->u.fetch_req); break;
    case PROTO_CREATE_TOPIC_REQ:
        admin(b, conn, f->correlation, PROTO_CREATE_TOPIC_RESP, cmd,
              controller_cmd_create_topic(cmd, &m->u.create_topic_req));
        break;
    case PROTO_DELETE_TOPIC_REQ: {
        char name[PROTO_TOPIC_NAME_MAX + 1] = {0};
        memcpy(name, m->u.delete_topic_req.name.data, m->u.delete_topic_req.name.size);
        admin(b, conn, f->correlation, PROTO_DELETE_TOPIC_RESP, cmd,
              controller_cmd_delete_topic(cmd, name));
        break;
    }
    case PROTO_INIT_PRODUCER_REQ:
        admin(b, conn, f->correlation, PROTO_INIT_PRODUCER_RESP, cmd,
              controller_cmd_init_producer(cmd));
        break;
    case PROTO_DECOMMISSION_REQ:
        admin(b, conn, f->correlation, PROTO_DECOMMISSION_RESP, cmd,
              controller_cmd_decommission(cmd, m->u.decommission_req.broker));
        break;
    default:
        if (broker_groups_serve(b, conn, f, m)) break;
        answer_error_frame(b, conn, f->correlation, RQ_ETYPE,
                           "not a request a client may send to a broker");
        break;
    }
}

void broker_on_client_message(struct broker *b, uint64_t conn, const void *buf, size_t len) {
    const uint8_t *p = buf;
    size_t at = 0;
    while (at < len) {
        struct proto_frame f;
        size_t used;
        int err = proto_frame_decode(p + at, len - at, PROTO_FRAME_MAX, &f, &used);
        if (err == RQ_EVERSION || err == RQ_ETYPE) {
            answer_error_frame(b, conn, f.correlation, err, rq_strerror(err));
            at += used;
            continue;
        }
        if (err != 0) {   /* the rest cannot be delimited: drop it */
            answer_error_frame(b, conn, 0, err, "malformed frame; the rest of the message is dropped");
            return;
        }
        at += used;
        b->stats.requests++;
        struct proto_msg m;
        err = proto_decode_version(f.version, f.type, f.payload, f.payload_size, &m);
        if (err != 0) {
            char why[96];
            snprintf(why, sizeof why, "%s payload does not decode: %s", proto_type_name(f.type),
                     rq_strerror(err));
            answer_error_frame(b, conn, f.correlation, err, why);
        } else {
            serve(b, conn, &f, &m);
        }
    }
}

void broker_on_conn_closed(struct broker *b, uint64_t conn) {
    for (uint32_t i = 0; i < BROKER_REQUESTS_MAX; i++)
        if (b->requests[i].kind != REQ_FREE && b->requests[i].conn == conn)
            request_free(b, &b->requests[i]);
}
