/* metadata.h — a client's view of the cluster: brokers and their addresses, topics, each
 * partition's leader and replicas, filled from METADATA_RESP answers (proto/msg.h) and corrected by
 * the leader hints that come back with RQ_ENOTLEADER. A pure data structure: the client decides
 * when to ask for metadata (metadata_stale says when its view is too old or was found wrong).
 *
 * Partitioning: a record with a key goes to partition CRC32C(key) mod partition_count, the same on
 * every client and in every language that implements CRC32C (Castagnoli); a record without a key
 * goes round-robin, one partition per batch (the caller advances it with metadata_next_partition
 * when it opens a new batch, so that records without keys still fill batches).
 *
 * Bounds: METADATA_BROKERS_MAX brokers, METADATA_TOPICS_MAX topics, METADATA_PARTITIONS_MAX
 * partitions over all topics; an answer beyond them is taken up to them and counted. */
#ifndef RQ_CLIENT_METADATA_H
#define RQ_CLIENT_METADATA_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

enum {
    METADATA_BROKERS_MAX = PROTO_BROKERS_MAX,
    METADATA_TOPICS_MAX = 256,
    METADATA_PARTITIONS_MAX = 65536,
};

struct metadata;

/* max_age_ns: the view is stale this long after the last answer. */
struct metadata *metadata_create(uint64_t max_age_ns);
void metadata_destroy(struct metadata *md);

/* Takes a decoded METADATA_RESP (replacing what it says about its brokers and topics; topics it
 * does not mention are kept). Returns the number of topics or brokers left out for the bounds. */
uint32_t metadata_update(struct metadata *md, const struct proto_metadata_resp *resp,
                         uint64_t now_ns);

/* A partition's leader (0: unknown), and the address of a broker (NULL: unknown). */
uint32_t metadata_leader(const struct metadata *md, struct proto_bytes topic, uint32_t partition);
const char *metadata_address(const struct metadata *md, uint32_t broker, size_t *size);
/* Partitions of a topic, 0 when the topic is unknown (or reported with an error). */
uint32_t metadata_partitions(const struct metadata *md, struct proto_bytes topic);
uint32_t metadata_controller(const struct metadata *md);

/* An answer said RQ_ENOTLEADER with leader_hint (0: none): the view is corrected at once and
 * marked stale, so that the next refresh confirms it. */
void metadata_not_leader(struct metadata *md, struct proto_bytes topic, uint32_t partition,
                         uint32_t leader_hint);
/* Marks the view as possibly wrong without changing it (a request went unanswered): the next
 * refresh confirms or corrects it. */
void metadata_mark_stale(struct metadata *md);
/* A partition's replicas into out[PROTO_REPLICAS_MAX]; returns their count (0: unknown). */
uint32_t metadata_replicas(const struct metadata *md, struct proto_bytes topic, uint32_t partition,
                           uint32_t *out);
/* The error the last answer gave for a topic it named (RQ_ENOTOPIC: it does not exist), 0 when
 * it named it without error, or 1 when no answer has named it yet. */
int metadata_topic_error(const struct metadata *md, struct proto_bytes topic);
/* Whether the client should ask for metadata now. */
int metadata_stale(const struct metadata *md, uint64_t now_ns);

/* The partition for a record's key (size > 0), or RQ_ENOTOPIC / RQ_EINVAL as a negative value. */
int64_t metadata_partition_for_key(const struct metadata *md, struct proto_bytes topic,
                                   struct proto_bytes key);
/* Round-robin for records without a key: the topic's current partition, and the next one after
 * a batch was closed. Returns a negative RQ_E* for an unknown topic. */
int64_t metadata_sticky_partition(const struct metadata *md, struct proto_bytes topic);
void metadata_next_partition(struct metadata *md, struct proto_bytes topic);

#endif
