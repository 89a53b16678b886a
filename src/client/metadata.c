/* A client's view of the cluster; see metadata.h. */
#include "client/metadata.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/errors.h"

struct md_broker {
    uint32_t id;
    uint8_t address_size;
    char address[PROTO_TEXT_MAX + 1];
};

struct md_partition {
    uint32_t leader;
    uint32_t replica_count;
    uint32_t replicas[PROTO_REPLICAS_MAX];
};

struct md_topic {
    uint8_t name_size;
    char name[PROTO_TOPIC_NAME_MAX];
    int error;
    uint32_t partition_count;
    struct md_partition *partitions;
    uint32_t sticky;              /* the keyless records' current partition */
};

struct metadata {
    uint64_t max_age_ns;
    uint64_t updated_ns;
    int have;                     /* an answer came */
    int wrong;                    /* an answer showed the view wrong: refresh */
    uint32_t controller;
    uint32_t broker_count;
    struct md_broker brokers[METADATA_BROKERS_MAX];
    uint32_t topic_count;
    struct md_topic topics[METADATA_TOPICS_MAX];
    uint32_t partitions_total;
};

struct metadata *metadata_create(uint64_t max_age_ns) {
    struct metadata *md = calloc(1, sizeof *md);
    if (md != NULL) md->max_age_ns = max_age_ns;
    return md;
}

void metadata_destroy(struct metadata *md) {
    if (md == NULL) return;
    for (uint32_t i = 0; i < md->topic_count; i++) free(md->topics[i].partitions);
    free(md);
}

static struct md_topic *find(const struct metadata *md, struct proto_bytes name) {
    for (uint32_t i = 0; i < md->topic_count; i++) {
        const struct md_topic *t = &md->topics[i];
        if (t->name_size == name.size && memcmp(t->name, name.data, name.size) == 0)
            return (struct md_topic *)t;
    }
    return NULL;
}

static struct md_broker *broker(const struct metadata *md, uint32_t id) {
    for (uint32_t i = 0; i < md->broker_count; i++)
        if (md->brokers[i].id == id) return (struct md_broker *)&md->brokers[i];
    return NULL;
}

/* Resizes t's partitions to count (all unknown), within the bound. Returns 0 or -1. */
static int resize(struct metadata *md, struct md_topic *t, uint32_t count) {
    if (md->partitions_total - t->partition_count + count > METADATA_PARTITIONS_MAX) return -1;
    struct md_partition *p = count ? calloc(count, sizeof *p) : NULL;
    if (count && p == NULL) return -1;
    free(t->partitions);
    md->partitions_total = md->partitions_total - t->partition_count + count;
    t->partitions = p;
    t->partition_count = count;
    if (t->sticky >= count) t->sticky = 0;
    return 0;
}

static uint32_t take_topic(struct metadata *md, const struct proto_topic *in) {
    struct md_topic *t = find(md, in->name);
    if (t == NULL) {
        if (md->topic_count == METADATA_TOPICS_MAX) return 1;
        t = &md->topics[md->topic_count++];
        memset(t, 0, sizeof *t);
        t->name_size = (uint8_t)in->name.size;
        memcpy(t->name, in->name.data, in->name.size);
    }
    t->error = in->error;
    if (resize(md, t, in->error == 0 ? in->partition_count : 0) != 0) {
        resize(md, t, 0);
        return 1;
    }
    size_t cursor = 0;
    struct proto_partition p;
    while (proto_partition_next(in, &cursor, &p)) {
        if (p.index >= t->partition_count) continue;   /* a malformed answer: ignored */
        struct md_partition *dst = &t->partitions[p.index];
        dst->leader = p.leader;
        dst->replica_count = p.replica_count;
        memcpy(dst->replicas, p.replicas, sizeof dst->replicas);
    }
    return 0;
}

uint32_t metadata_update(struct metadata *md, const struct proto_metadata_resp *resp,
                         uint64_t now_ns) {
    uint32_t left_out = 0;
    size_t cursor = 0;
    struct proto_broker b;
    while (proto_broker_next(resp, &cursor, &b)) {
        struct md_broker *dst = broker(md, b.id);
        if (dst == NULL) {
            if (md->broker_count == METADATA_BROKERS_MAX) { left_out++; continue; }
            dst = &md->brokers[md->broker_count++];
            dst->id = b.id;
        }
        dst->address_size = (uint8_t)b.address.size;
        if (b.address.size) memcpy(dst->address, b.address.data, b.address.size);
        dst->address[b.address.size] = '\0';
    }
    cursor = 0;
    struct proto_topic t;
    while (proto_topic_next(resp, &cursor, &t)) left_out += take_topic(md, &t);
    md->controller = resp->controller;
    md->updated_ns = now_ns;
    md->have = 1;
    md->wrong = 0;
    return left_out;
}

uint32_t metadata_leader(const struct metadata *md, struct proto_bytes topic, uint32_t partition) {
    const struct md_topic *t = find(md, topic);
    return t != NULL && partition < t->partition_count ? t->partitions[partition].leader : 0;
}

const char *metadata_address(const struct metadata *md, uint32_t id, size_t *size) {
    const struct md_broker *b = broker(md, id);
    if (b == NULL) return NULL;
    *size = b->address_size;
    return b->address;
}

uint32_t metadata_partitions(const struct metadata *md, struct proto_bytes topic) {
    const struct md_topic *t = find(md, topic);
    return t != NULL ? t->partition_count : 0;
}

uint32_t metadata_controller(const struct metadata *md) { return md->controller; }

void metadata_not_leader(struct metadata *md, struct proto_bytes topic, uint32_t partition,
                         uint32_t leader_hint) {
    md->wrong = 1;
    struct md_topic *t = find(md, topic);
    if (t == NULL || partition >= t->partition_count) return;
    struct md_partition *p = &t->partitions[partition];
    /* A hint names a replica; anything else is not believed (the next refresh decides). */
    uint32_t next = 0;
    for (uint32_t k = 0; k < p->replica_count; k++)
        if (p->replicas[k] == leader_hint) next = leader_hint;
    p->leader = next;
}

void metadata_mark_stale(struct metadata *md) { md->wrong = 1; }

uint32_t metadata_replicas(const struct metadata *md, struct proto_bytes topic, uint32_t partition,
                           uint32_t *out) {
    const struct md_topic *t = find(md, topic);
    if (t == NULL || partition >= t->partition_count) return 0;
    const struct md_partition *p = &t->partitions[partition];
    RQ_ASSERT(p->replica_count <= PROTO_REPLICAS_MAX);
    memcpy(out, p->replicas, p->replica_count * sizeof *out);
    return p->replica_count;
}

int metadata_topic_error(const struct metadata *md, struct proto_bytes topic) {
    const struct md_topic *t = find(md, topic);
    return t == NULL ? 1 : t->error;
}

int metadata_stale(const struct metadata *md, uint64_t now_ns) {
    return !md->have || md->wrong || now_ns - md->updated_ns >= md->max_age_ns;
}

int64_t metadata_partition_for_key(const struct metadata *md, struct proto_bytes topic,
                                   struct proto_bytes key) {
    const struct md_topic *t = find(md, topic);
    if (t == NULL || t->partition_count == 0) return RQ_ENOTOPIC;
    if (key.size == 0) return RQ_EINVAL;
    return rq_crc32c(0, key.data, key.size) % t->partition_count;
}

int64_t metadata_sticky_partition(const struct metadata *md, struct proto_bytes topic) {
    const struct md_topic *t = find(md, topic);
    if (t == NULL || t->partition_count == 0) return RQ_ENOTOPIC;
    return t->sticky;
}

void metadata_next_partition(struct metadata *md, struct proto_bytes topic) {
    struct md_topic *t = find(md, topic);
    if (t != NULL && t->partition_count > 0) t->sticky = (t->sticky + 1) % t->partition_count;
}
