/* group.c — a client's membership in one consumer group; see client.h ("Consumer group").
 *
 * The member is two small state machines driven by the client's pump:
 *   - the membership: JOINING (a JOIN_GROUP to send) -> MEMBER (a HEARTBEAT every session / 3,
 *     each answer carrying the generation and this member's partitions) -> LEAVING (commit
 *     everything, then LEAVE_GROUP) -> gone; FAILED when the coordinator refused it for good;
 *   - per assigned partition: UNCLAIMED (a CLAIM to send to its leader, for the member's
 *     generation) -> FETCHING (a grouped subscription, and a COMMIT of its position now and then).
 * A new generation drops every subscription and claims every partition again under it (a
 * partition kept resumes at its position, or the committed offset if another member got further
 * in a generation this member missed): until its claim applies, a fetch under the new generation
 * would be fenced. One request at a time for the membership and for each partition. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "client/client_internal.h"

enum {
    GROUP_PARTS_MAX = CLIENT_SUBSCRIPTIONS_MAX,   /* partitions one member consumes */
    JOIN_FAILURES_MAX = 16,   /* retriable join refusals (e.g. a topic not known yet) before
                                 the member gives up */
    LEAVE_ATTEMPTS_MAX = 3,
};

enum member_state { JOINING = 1, MEMBER, LEAVING, FAILED };
enum part_state { UNCLAIMED = 1, FETCHING };

struct group_part {
    uint32_t partition;
    enum part_state state;
    uint32_t sub;                 /* FETCHING: the subscription, else NONE */
    uint32_t request;             /* the CLAIM or COMMIT under way, or NONE */
    uint64_t committed;           /* what the partition holds for the cursor (PROTO_NO_OFFSET) */
    uint64_t resume;              /* where to start after a re-claim, PROTO_NO_OFFSET: committed */
    uint32_t failures;
    uint64_t retry_ns;
    uint8_t final_sent;           /* LEAVING: its last commit went (once: leaving is bounded) */
};

struct client_group {
    enum member_state state;
    uint8_t group[PROTO_GROUP_NAME_MAX];
    uint32_t group_size;
    uint8_t member_name[PROTO_MEMBER_NAME_MAX];
    uint32_t member_name_size;
    uint8_t cursor[PROTO_CURSOR_MAX];
    uint32_t cursor_size;
    uint32_t topic;               /* the client's topic table index */
    struct rq_group_config cfg;   /* names point into the arrays above */
    uint64_t member_id;           /* 0: none yet */
    uint64_t generation;          /* 0: none yet */
    uint32_t hint;                /* the coordinator a refusal named */
    uint32_t request;             /* JOIN / HEARTBEAT / LEAVE under way, or NONE */
    uint32_t failures;
    uint64_t due_ns;              /* the next JOIN / HEARTBEAT / LEAVE */
    uint64_t commit_ns;           /* the next round of commits */
    uint32_t leave_attempts;
    uint32_t part_count;
    struct group_part parts[GROUP_PARTS_MAX];   /* partition ascending */
};

static struct proto_bytes bytes_of(const uint8_t *data, uint32_t size) {
    return (struct proto_bytes){size ? data : NULL, size};
}

static struct proto_bytes cursor_of(const struct client_group *g) {
    return bytes_of(g->cursor, g->cursor_size);
}

uint8_t group_answer_type(const struct request *r) {
    if (r->kind == REQ_CURSOR) return PROTO_OFFSET_RESP;
    return r->type == PROTO_LEAVE_GROUP_REQ ? PROTO_LEAVE_GROUP_RESP : PROTO_ASSIGNMENT_RESP;
}

void group_fetch_fill(const struct rq_client *c, struct proto_fetch_req *m) {
    const struct client_group *g = c->group;
    RQ_ASSERT(g != NULL);
    m->cursor = cursor_of(g);
    m->generation = g->generation;
    m->member_id = g->member_id;
}

/* ---- partitions ------------------------------------------------------------------------------ */

static void part_stop(struct rq_client *c, struct group_part *p) {
    if (p->sub != NONE) {
        p->resume = c->subs[p->sub].position;
        client_sub_stop(c, p->sub);
    }
    p->sub = NONE;
    p->state = UNCLAIMED;
}

/* Every partition is dropped: their answers under way are ignored (request slots still end). */
static void parts_drop_all(struct rq_client *c, struct client_group *g) {
    for (uint32_t i = 0; i < g->part_count; i++) part_stop(c, &g->parts[i]);
    g->part_count = 0;
}

static struct group_part *part_by_request(struct client_group *g, uint32_t slot) {
    for (uint32_t i = 0; i < g->part_count; i++)
        if (g->parts[i].request == slot) return &g->parts[i];
    return NULL;
}

/* A new generation: partitions kept are claimed again (resuming where they were), the others
 * dropped, new ones added. */
static void assignment_take(struct rq_client *c, struct client_group *g,
                            const struct proto_assignment_resp *m) {
    struct group_part kept[GROUP_PARTS_MAX];
    uint32_t n = 0;
    size_t cursor = 0;
    uint32_t p;
    uint32_t list[GROUP_PARTS_MAX];
    while (n < GROUP_PARTS_MAX && proto_assignment_next(m, &cursor, &p)) {
        struct group_part np = {.partition = p, .state = UNCLAIMED, .sub = NONE,
                                .request = NONE, .committed = PROTO_NO_OFFSET,
                                .resume = PROTO_NO_OFFSET};
        for (uint32_t i = 0; i < g->part_count; i++) {
            if (g->parts[i].partition != p) continue;
            part_stop(c, &g->parts[i]);
            np.resume = g->parts[i].resume;
            np.committed = g->parts[i].committed;
        }
        list[n] = p;
        kept[n++] = np;
    }
    parts_drop_all(c, g);
    memcpy(g->parts, kept, n * sizeof kept[0]);
    g->part_count = n;
    g->generation = m->generation;
    g->member_id = m->member_id;
    if (m->partition_count > GROUP_PARTS_MAX)
        RQ_WARN("client: group member given %u partitions, consumes the first %d",
                m->partition_count, GROUP_PARTS_MAX);
    if (c->cb.assigned) c->cb.assigned(c->arg, g->generation, g->member_id, list, n);
}

static void claim_send(struct rq_client *c, struct client_group *g, struct group_part *p,
                       uint64_t now) {
    struct proto_bytes topic = client_topic_name(c, g->topic);
    uint32_t to = metadata_leader(c->md, topic, p->partition);
    if (to < 1 || to > RQ_NODE_ID_MAX) {
        metadata_mark_stale(c->md);
        p->retry_ns = now + client_backoff(c, ++p->failures);
        return;
    }
    struct proto_offset_req m = {.topic = topic, .partition = p->partition,
                                 .cursor = cursor_of(g), .generation = g->generation,
                                 .member_id = g->member_id};
    size_t size = proto_encode_offset_req(client_payload(c), client_payload_cap(),
                                          PROTO_CLAIM_REQ, &m);
    RQ_ASSERT(size > 0);
    RQ_DEBUG("client: group %.*s: claims partition %u at %u for generation %llu",
             (int)g->group_size, (const char *)g->group, p->partition, to,
             (unsigned long long)g->generation);
    p->request = client_request_open(c, REQ_CURSOR, to, now + c->cfg.request_timeout_ns);
    c->requests[p->request].type = PROTO_CLAIM_REQ;
    c->requests[p->request].value = g->generation;
    client_send_frame(c, to, PROTO_CLAIM_REQ, client_correlation(c, p->request), size);
}

/* The position to commit for a fetching partition, or PROTO_NO_OFFSET when nothing is new. */
static uint64_t commit_wanted(const struct rq_client *c, const struct group_part *p) {
    if (p->state != FETCHING || p->sub == NONE) return PROTO_NO_OFFSET;
    uint64_t position = c->subs[p->sub].position;
    if (p->committed != PROTO_NO_OFFSET && position <= p->committed) return PROTO_NO_OFFSET;
    return position;
}

static void commit_send(struct rq_client *c, struct client_group *g, struct group_part *p,
                        uint64_t offset, uint64_t now) {
    struct proto_bytes topic = client_topic_name(c, g->topic);
    uint32_t to = metadata_leader(c->md, topic, p->partition);
    if (to < 1 || to > RQ_NODE_ID_MAX) return;   /* the next round tries again */
    struct proto_offset_req m = {.topic = topic, .partition = p->partition,
                                 .cursor = cursor_of(g), .generation = g->generation,
                                 .member_id = g->member_id, .offset = offset};
    size_t size = proto_encode_offset_req(client_payload(c), client_payload_cap(),
                                          PROTO_COMMIT_REQ, &m);
    RQ_ASSERT(size > 0);
    p->request = client_request_open(c, REQ_CURSOR, to, now + c->cfg.request_timeout_ns);
    c->requests[p->request].type = PROTO_COMMIT_REQ;
    c->requests[p->request].value = offset;
    client_send_frame(c, to, PROTO_COMMIT_REQ, client_correlation(c, p->request), size);
}

/* A new generation is about to replace this one: each partition's position is committed under
 * the old generation first, so that the next owner starts after what this member delivered (the
 * partition takes the commit until the new owner's claim applies; after, it is fenced, and the
 * next owner redelivers from the last commit, as without this). Nothing waits for the answers:
 * the partitions are rebuilt at once and their answers find none. Kafka's revocation, without
 * the wait. */
static void commit_before_rebalance(struct rq_client *c, struct client_group *g, uint64_t now) {
    for (uint32_t i = 0; i < g->part_count && client_request_free_slot(c); i++) {
        struct group_part *p = &g->parts[i];
        uint64_t offset = commit_wanted(c, p);
        if (p->request == NONE && offset != PROTO_NO_OFFSET) commit_send(c, g, p, offset, now);
    }
}

/* The first offset of a partition claimed: where it was, what was committed, or an end. */
static uint64_t start_of(const struct client_group *g, const struct group_part *p,
                         const struct proto_offset_resp *m) {
    uint64_t start = p->resume;
    if (m->committed != PROTO_NO_OFFSET && (start == PROTO_NO_OFFSET || m->committed > start))
        start = m->committed;
    if (start == PROTO_NO_OFFSET) start = g->cfg.from_latest ? m->high_watermark : m->log_start;
    return start;
}

/* A fetch, claim or commit was fenced: a newer generation exists. Ask the coordinator now. */
static void fenced(struct rq_client *c, struct client_group *g, struct group_part *p,
                   uint64_t now) {
    p->resume = PROTO_NO_OFFSET;   /* another member may have gone on: its commit counts */
    p->state = UNCLAIMED;
    /* Claimed again after a back-off: by then the heartbeat sent now has most likely brought the
     * generation that fenced it (claims under the old one would only bounce). */
    p->retry_ns = now + client_backoff(c, ++p->failures);
    if (g->state == MEMBER) g->due_ns = now;
}

static void cursor_answer(struct rq_client *c, struct client_group *g, const struct request *r,
                          int error, const struct proto_offset_resp *m, uint64_t now) {
    struct group_part *p = part_by_request(g, r->slot);
    if (p == NULL) return;   /* dropped since */
    p->request = NONE;
    int why = error ? error : m->error;
    RQ_DEBUG("client: group %.*s: %s of partition %u: %s, committed %llu", (int)g->group_size,
             (const char *)g->group, proto_type_name(r->type), p->partition, rq_strerror(why),
             (unsigned long long)(m ? m->committed : 0));
    struct proto_bytes topic = client_topic_name(c, g->topic);
    if (r->value != g->generation && r->type == PROTO_CLAIM_REQ) return;   /* a stale claim */
    if (why == 0 && r->type == PROTO_CLAIM_REQ && g->state == LEAVING) return;   /* too late */
    if (why == 0 && r->type == PROTO_CLAIM_REQ) {
        p->failures = 0;
        p->committed = m->committed;
        uint64_t start = start_of(g, p, m);
        p->sub = client_sub_start(c, g->topic, p->partition, start, 1);
        if (p->sub == NONE) {   /* every subscription slot taken: try again later */
            p->retry_ns = now + client_backoff(c, ++p->failures);
            return;
        }
        p->state = FETCHING;
        p->resume = PROTO_NO_OFFSET;
        return;
    }
    if (why == 0) {   /* a commit */
        p->committed = m->committed;
        if (c->cb.committed) c->cb.committed(c->arg, p->partition, g->generation, m->committed);
        return;
    }
    if (why == RQ_EFENCED) {
        if (p->state == FETCHING) part_stop(c, p);
        fenced(c, g, p, now);
        return;
    }
    if (why == RQ_ENOTLEADER)
        metadata_not_leader(c->md, topic, p->partition, m != NULL ? m->leader_hint : 0);
    else
        metadata_mark_stale(c->md);
    if (r->type == PROTO_CLAIM_REQ) p->retry_ns = now + client_backoff(c, ++p->failures);
}

void group_fenced(struct rq_client *c, uint32_t si, uint64_t now) {
    struct client_group *g = c->group;
    RQ_ASSERT(g != NULL);
    for (uint32_t i = 0; i < g->part_count; i++) {
        struct group_part *p = &g->parts[i];
        if (p->sub != si) continue;
        part_stop(c, p);
        fenced(c, g, p, now);
    }
}

/* ---- the membership -------------------------------------------------------------------------- */

static void member_finish(struct rq_client *c, struct client_group *g, int error) {
    parts_drop_all(c, g);
    g->state = FAILED;
    if (error != 0)
        RQ_WARN("client: group %.*s: %s -> the member stops", (int)g->group_size,
                (const char *)g->group, rq_strerror(error));
    if (c->cb.group_error) c->cb.group_error(c->arg, error);
}

static void group_send(struct rq_client *c, struct client_group *g, uint8_t type, uint64_t now) {
    struct proto_bytes group = bytes_of(g->group, g->group_size);
    size_t size;
    if (type == PROTO_JOIN_GROUP_REQ) {
        struct proto_join_group_req m = {.group = group,
                                         .topic = client_topic_name(c, g->topic),
                                         .member_name = g->cfg.member_name,
                                         .mode = g->cfg.mode, .strategy = g->cfg.strategy,
                                         .session_ms = g->cfg.session_ms,
                                         .member_id = g->member_id};
        size = proto_encode_join_group_req(client_payload(c), client_payload_cap(), &m);
    } else if (type == PROTO_HEARTBEAT_REQ) {
        struct proto_heartbeat_req m = {.group = group, .member_id = g->member_id,
                                        .generation = g->generation};
        size = proto_encode_heartbeat_req(client_payload(c), client_payload_cap(), &m);
    } else {
        struct proto_leave_group_req m = {.group = group, .member_id = g->member_id};
        size = proto_encode_leave_group_req(client_payload(c), client_payload_cap(), &m);
    }
    RQ_ASSERT(size > 0);
    uint32_t to = client_controller_target(c, g->hint);
    RQ_DEBUG("client: group %.*s: %s to %u (member %llu, generation %llu)", (int)g->group_size,
             (const char *)g->group, proto_type_name(type), to, (unsigned long long)g->member_id,
             (unsigned long long)g->generation);
    g->request = client_request_open(c, REQ_GROUP, to, now + c->cfg.request_timeout_ns);
    c->requests[g->request].type = type;
    client_send_frame(c, to, type, client_correlation(c, g->request), size);
}

static uint64_t heartbeat_every(const struct client_group *g) {
    return (uint64_t)g->cfg.session_ms * 1000000u / 3;
}

/* A refusal the member retries: after a back-off, at the coordinator a hint named. */
static void membership_retry(struct rq_client *c, struct client_group *g, int why, uint32_t hint,
                             uint64_t now) {
    g->hint = why == RQ_ENOTLEADER ? hint : 0;
    g->due_ns = now + (why == RQ_ENOTLEADER && hint ? 0 : client_backoff(c, g->failures));
}

static void membership_answer(struct rq_client *c, struct client_group *g, const struct request *r,
                              int error, const struct proto_msg *m, uint64_t now) {
    g->request = NONE;
    if (r->type == PROTO_LEAVE_GROUP_REQ) {
        int why = error ? error : m->u.status_resp.error;
        if (why == RQ_ENOTLEADER && ++g->leave_attempts < LEAVE_ATTEMPTS_MAX) {
            membership_retry(c, g, why, m ? m->u.status_resp.leader_hint : 0, now);
            return;
        }
        member_finish(c, g, 0);
        return;
    }
    /* Leaving while the JOIN was under way: the coordinator made us a member (and gave us
     * partitions it holds for us for a whole session): keep the id, so that the LEAVE goes. */
    if (g->state == LEAVING && r->type == PROTO_JOIN_GROUP_REQ && error == 0 &&
        m->u.assignment_resp.error == 0)
        g->member_id = m->u.assignment_resp.member_id;
    if (g->state != JOINING && g->state != MEMBER) return;
    const struct proto_assignment_resp *a = m ? &m->u.assignment_resp : NULL;
    int why = error ? error : a->error;
    if (why == 0) {
        g->failures = 0;
        g->state = MEMBER;
        g->due_ns = now + heartbeat_every(g);
        if (a->generation != g->generation || a->member_id != g->member_id) {
            commit_before_rebalance(c, g, now);
            assignment_take(c, g, a);
        }
        return;
    }
    g->failures++;
    if (why == RQ_ENOMEMBER) {   /* forgotten: every partition goes, and the member joins anew */
        parts_drop_all(c, g);
        g->member_id = g->generation = 0;
        g->state = JOINING;
        g->due_ns = now;
        return;
    }
    int retriable = why == RQ_ENOTLEADER || why == RQ_ETIMEOUT || why == RQ_EBUSY ||
                    why == RQ_ECLOSED || why == RQ_ENOTOPIC;
    if (!retriable || (g->state == JOINING && g->failures > JOIN_FAILURES_MAX)) {
        member_finish(c, g, why);
        return;
    }
    membership_retry(c, g, why, a ? a->leader_hint : 0, now);
}

void group_answer(struct rq_client *c, const struct request *r, int error,
                  const struct proto_msg *m, uint64_t now) {
    struct client_group *g = c->group;
    if (g == NULL) return;   /* left since */
    if (r->kind == REQ_CURSOR) {
        cursor_answer(c, g, r, error, m ? &m->u.offset_resp : NULL, now);
        return;
    }
    if (r->slot != g->request) return;
    membership_answer(c, g, r, error, m, now);
}

/* ---- the pump -------------------------------------------------------------------------------- */

static void pump_parts(struct rq_client *c, struct client_group *g, uint64_t now) {
    int commit_round = now >= g->commit_ns || g->state == LEAVING;
    for (uint32_t i = 0; i < g->part_count && client_request_free_slot(c); i++) {
        struct group_part *p = &g->parts[i];
        if (p->request != NONE) continue;
        if (p->state == UNCLAIMED && g->state == MEMBER && now >= p->retry_ns) {
            claim_send(c, g, p, now);
            continue;
        }
        uint64_t offset = commit_wanted(c, p);
        if (!commit_round || offset == PROTO_NO_OFFSET) continue;
        if (g->state == LEAVING && p->final_sent) continue;
        p->final_sent = g->state == LEAVING;
        commit_send(c, g, p, offset, now);
    }
    if (commit_round && g->state != LEAVING) g->commit_ns = now + g->cfg.commit_every_ns;
}

/* LEAVING: once no commit is under way and none is wanted, the LEAVE goes. */
static int leave_ready(const struct rq_client *c, const struct client_group *g) {
    for (uint32_t i = 0; i < g->part_count; i++) {
        const struct group_part *p = &g->parts[i];
        if (p->request != NONE) return 0;
    }
    (void)c;
    return 1;
}

void group_pump(struct rq_client *c, uint64_t now) {
    struct client_group *g = c->group;
    if (g == NULL || g->state == FAILED) return;
    pump_parts(c, g, now);
    if (g->request != NONE || now < g->due_ns || !client_request_free_slot(c)) return;
    if (g->state == JOINING) group_send(c, g, PROTO_JOIN_GROUP_REQ, now);
    else if (g->state == MEMBER) group_send(c, g, PROTO_HEARTBEAT_REQ, now);
    else if (leave_ready(c, g)) {
        if (g->member_id == 0) member_finish(c, g, 0);   /* never joined: nothing to tell */
        else group_send(c, g, PROTO_LEAVE_GROUP_REQ, now);
    }
}

uint64_t group_next_wake(const struct rq_client *c) {
    const struct client_group *g = c->group;
    if (g == NULL || g->state == FAILED) return UINT64_MAX;
    /* Only what group_pump would act on: LEAVING's due_ns (0) while its commits are under way,
     * or an unclaimed partition's retry_ns while not a MEMBER (only a member claims), would ask
     * for the timer at "now" on every pump until an answer came: a busy loop. The answers and
     * the requests' deadlines wake the client then. */
    uint64_t wake = UINT64_MAX;
    if (g->request == NONE && (g->state != LEAVING || leave_ready(c, g))) wake = g->due_ns;
    if (g->state == MEMBER && g->commit_ns < wake) wake = g->commit_ns;
    for (uint32_t i = 0; i < g->part_count && g->state == MEMBER; i++) {
        const struct group_part *p = &g->parts[i];
        if (p->state == UNCLAIMED && p->request == NONE && p->retry_ns < wake) wake = p->retry_ns;
    }
    return wake;
}

/* ---- the entry points ------------------------------------------------------------------------ */

static int config_valid(const struct rq_group_config *cfg) {
    int pubsub = cfg->mode == PROTO_MODE_PUBSUB;
    return proto_group_name_valid(cfg->group.data, cfg->group.size, PROTO_GROUP_NAME_MAX) &&
           proto_topic_name_valid(cfg->topic.data, cfg->topic.size) &&
           (cfg->member_name.size == 0 ? !pubsub
                                       : proto_group_name_valid(cfg->member_name.data,
                                                                cfg->member_name.size,
                                                                PROTO_MEMBER_NAME_MAX)) &&
           (cfg->mode == PROTO_MODE_QUEUE || pubsub) &&
           (cfg->strategy == PROTO_STRATEGY_RANGE || cfg->strategy == PROTO_STRATEGY_STICKY) &&
           cfg->session_ms >= PROTO_SESSION_MS_MIN && cfg->session_ms <= PROTO_SESSION_MS_MAX &&
           cfg->commit_every_ns > 0;
}

int rq_client_join_group(struct rq_client *c, const struct rq_group_config *cfg) {
    if (c->group != NULL && c->group->state != FAILED) return RQ_EEXIST;
    if (!config_valid(cfg)) return RQ_EINVAL;
    struct client_group *g = c->group ? c->group : calloc(1, sizeof *g);
    if (g == NULL) return RQ_ENOMEM;
    memset(g, 0, sizeof *g);
    c->group = g;
    uint32_t ti = client_topic_index(c, cfg->topic);
    if (ti == NONE) {
        g->state = FAILED;
        return RQ_ENOMEM;
    }
    g->topic = ti;
    memcpy(g->group, cfg->group.data, cfg->group.size);
    g->group_size = cfg->group.size;
    if (cfg->member_name.size > 0) memcpy(g->member_name, cfg->member_name.data, cfg->member_name.size);
    g->member_name_size = cfg->member_name.size;
    g->cfg = *cfg;
    g->cfg.group = bytes_of(g->group, g->group_size);
    g->cfg.member_name = bytes_of(g->member_name, g->member_name_size);
    g->cfg.topic = client_topic_name(c, ti);
    memcpy(g->cursor, g->group, g->group_size);   /* queue: the group; pub/sub: GROUP/MEMBER */
    g->cursor_size = g->group_size;
    if (cfg->mode == PROTO_MODE_PUBSUB) {
        g->cursor[g->cursor_size++] = '/';
        memcpy(g->cursor + g->cursor_size, g->member_name, g->member_name_size);
        g->cursor_size += g->member_name_size;
    }
    g->state = JOINING;
    g->request = NONE;
    rq_client_on_timer(c);   /* the pump sends the JOIN */
    return 0;
}

int rq_client_leave_group(struct rq_client *c) {
    struct client_group *g = c->group;
    if (g == NULL || g->state == FAILED || g->state == LEAVING) return RQ_ENOENT;
    g->state = LEAVING;
    g->due_ns = 0;
    rq_client_on_timer(c);
    return 0;
}

uint64_t rq_client_group_generation(const struct rq_client *c) {
    return c->group ? c->group->generation : 0;
}

uint64_t rq_client_group_member(const struct rq_client *c) {
    return c->group ? c->group->member_id : 0;
}

void group_destroy(struct rq_client *c) {
    free(c->group);
    c->group = NULL;
}
