/* partition_group.h — a partition's state machine (broker/partition.h) as one Raft group of a
 * node's host: the partition log is the group's log, one produce batch an entry.
 *
 *   part_group_produce(request) -> the batch becomes an entry (its records as they came) proposed
 *                                  to the group, alone or shared with other producers' batches
 *                                  (group commit, below); acks=0 is not waited for; acks=1 is
 *                                  answered once the leader's own log holds it durably
 *                                  (part_group_durable),
 *                                  with the outcome the leader's tip foresees (below); acks=all is
 *                                  answered once the entry is applied: APPENDED with its base
 *                                  offset, a DUPLICATE with the original batch's offset (so a
 *                                  retried idempotent batch gets the offset it got the first
 *                                  time), RQ_ESEQUENCE for an out-of-order batch, RQ_ENOTLEADER
 *                                  when another leader's entry took the index
 *   part_group_apply/snapshot/restore -> partition_sm_apply / image / restore
 *   part_group_read(offset)       -> committed records from offset on, read from the group's Raft
 *                                  log (the partition's log is its Raft log): an index of applied
 *                                  batches (Raft index, base offset, count) finds the entry that
 *                                  holds an offset, and the records are copied out as stored
 *
 * The tip (partition.h, "Leader-side preview"): a leader keeps a second state machine, its
 * applied state plus every entry of its log not applied yet, built at its first produce of a term
 * and fed every proposal it makes in that term. Each entry carries the base offset the tip
 * foresees (the leader assigns offsets at append), which every replica then assigns: the entry
 * is committed only with the log its leader's tip applied. acks=1 is answered with it. An
 * acks=1 answer is therefore lost only with its entry: when the leader fails before a majority
 * holds it (then the entry's index is answered again at apply, with RQ_ENOTLEADER, to nobody:
 * the client was answered already).
 *
 * Group commit (broker/partition.h, SHARED entries): a batch that arrives while the leader has
 * no proposal of its own waiting for its local append to become durable is proposed at once, as
 * a BATCH entry (no added latency when idle). Otherwise it joins the group's OPEN entry, which is
 * proposed when that append becomes durable (part_group_durable), when it is full
 * (PARTITION_SHARED_MAX batches or RAFT_ENTRY_DATA_MAX bytes), or at the next part_group_tick at
 * the latest; an open entry of one batch is proposed as a BATCH entry. Each batch joining it is
 * applied to the tip as the entry's next part, so it carries the base offset the tip foresees
 * after the batches before it, and each request is answered with its own batch's result. An open
 * entry whose leader lost its term is dropped, its requests answered RQ_ENOTLEADER.
 *
 * Reads come from the entries Raft holds in memory, and from the store below them (the node runs
 * partition groups as host HOST_GROUP_STORED_LOG: snapshots bound Raft's memory, the store keeps
 * the log). */
#ifndef RQ_NODE_PARTITION_GROUP_H
#define RQ_NODE_PARTITION_GROUP_H

#include <stdint.h>

#include "broker/partition.h"
#include "node/host.h"
#include "proto/msg.h"

struct part_group_result {
    int error;                    /* 0, or what to answer the producer */
    uint64_t base_offset;         /* with error 0 */
    uint64_t committed;           /* a cursor's proposal: its committed offset after the entry
                                     (before it, when refused); PROTO_NO_OFFSET: none */
};

typedef void (*part_group_done_fn)(void *arg, uint64_t cookie, const struct part_group_result *r);

struct part_group;

struct part_group_stats {         /* this replica's, while it led */
    uint64_t entries_proposed;    /* BATCH and SHARED entries */
    uint64_t batches_proposed;    /* the batches in them */
    uint64_t shared_entries;      /* SHARED entries proposed */
    uint64_t shared_batches;      /* the batches in those */
    uint64_t open_dropped;        /* batches of open entries dropped (leadership lost, propose
                                     refused) */
    uint64_t releases_proposed;   /* RELEASE entries of delayed messages proposed */
};

struct part_group *part_group_create(uint32_t group, uint64_t pending_timeout_ns,
                                     part_group_done_fn done, void *done_arg);
void part_group_destroy(struct part_group *pg);

/* Proposes req's batch. Returns 0 (done follows once, unless acks=0), RQ_ETOOBIG (the batch does
 * not fit one entry), RQ_EBUSY (too many proposals wait), or host_propose's error. */
int part_group_produce(struct part_group *pg, struct host *h, const struct proto_produce_req *req,
                       uint64_t cookie, uint64_t now_ns);

/* Proposes a CURSOR entry (broker/cursor.h: a consumer group's claim, commit or reset); done
 * follows once it is applied, with its error (RQ_EFENCED, RQ_ERANGE, RQ_ENOMEM) and the cursor's
 * committed offset. The open entry, if any, is proposed first, so the log keeps the order the
 * requests came in. Returns 0, RQ_ENOTLEADER, RQ_ECLOSED, RQ_EBUSY (too many proposals wait), or
 * host_propose's error. */
int part_group_cursor(struct part_group *pg, struct host *h, const struct cursor_entry *e,
                      uint64_t cookie, uint64_t now_ns);

/* Proposes a delayed produce (req->delay_ms >= 1; broker/delay.h): a DELAYED entry due at
 * now_ns + delay, on this leader's clock. done follows once it is applied: error 0 (held; the
 * result's base_offset is then meaningless: offsets come at release) or RQ_EBUSY (the delay
 * table was full). Returns 0, RQ_ENOTLEADER, RQ_ECLOSED, RQ_EBUSY (the table as the leader
 * foresees it is full, or too many proposals wait), RQ_ETOOBIG or host_propose's error. The
 * leader releases due entries at part_group_tick. */
int part_group_delayed(struct part_group *pg, struct host *h, const struct proto_produce_req *req,
                       uint64_t cookie, uint64_t now_ns);

/* Applies e; returns n, the number of its batches (1 unless it is a SHARED entry: see
 * partition_sm_apply_entry), and out[0..n) (out may be NULL) says what the state machine did
 * with each. */
uint32_t part_group_apply(struct part_group *pg, const struct raft_entry *e,
                          struct partition_apply_result out[PARTITION_SHARED_MAX]);
size_t part_group_snapshot(struct part_group *pg, uint8_t *buf, size_t cap);
/* Restores an image taken at Raft index `index`; an image that does not decode or claims an
 * applied index beyond `index` is refused and counted (the node should halt). */
void part_group_restore(struct part_group *pg, uint64_t index, const uint8_t *image, size_t size);
/* Expires proposals waiting too long and proposes the open entry, if any (h: the group's host). */
void part_group_tick(struct part_group *pg, struct host *h, uint64_t now_ns);
/* This node's log holds the group's entries up to index durably (host durable callback): acks=1
 * proposals at or below it, still in the group's log, are answered, and the open entry is
 * proposed once no proposal of this leader waits for its append. */
void part_group_durable(struct part_group *pg, struct host *h, uint64_t index);

enum {
    PART_GROUP_BATCHES_MAX = 1 << 20,   /* batches indexed (40 bytes each): the newest; when
                                           full, the records of the older half are no longer
                                           readable here (below part_group_readable_from) */
    PART_GROUP_NEED_LOAD = 1,           /* part_group_read: the entries are in the store only */
    PART_GROUP_RELEASES_PER_TICK = 8,   /* delayed entries one tick releases, at most */
};

/* Appends to b the committed records from `offset` on (a record whose TTL has passed at now_ns,
 * this replica's clock, as its placeholder: broker/ttl.h), at most max_records of them and, after
 * the first, at most max_bytes of record bytes, from the entries r (the group's Raft state) holds
 * in memory. Returns 0 (no records at or past the high watermark), RQ_ERANGE when offset is below
 * the log start, RQ_EBUSY when it is above the log start but below part_group_readable_from
 * (the offsets below a restored image are being found again, see part_group_scan_wanted, or
 * this replica does not hold them: another replica may; a leader gives them up, see
 * part_group_retention), or PART_GROUP_NEED_LOAD with *load_from when the first entry wanted
 * is no longer in memory: read entries from there with host_read_log and hand them to
 * part_group_read_loaded. An offset past the end is not refused: a replica that has not applied
 * everything committed yet (a follower, or a new leader) cannot tell "past the end" from "not
 * here yet", so the reader waits as at the end. */
int part_group_read(const struct part_group *pg, const struct raft *r, uint64_t offset,
                    uint32_t max_records, uint32_t max_bytes, uint64_t now_ns,
                    struct proto_fetch_builder *b, uint64_t *load_from);
/* The same from committed entries read back from the stored log (each BATCH entry, alone or in a
 * SHARED one, says where its records are, partition.h), with the same bounds, and below the high
 * watermark (the replica's applied end, part_group_state's next_offset: entries committed but not
 * yet applied are left for the next fetch). */
void part_group_read_loaded(const struct part_group *pg, const struct raft_entry *entries,
                            uint32_t count, uint64_t offset, uint32_t max_records,
                            uint32_t max_bytes, uint64_t now_ns, struct proto_fetch_builder *b);

/* After the state machine is restored from an image, the index of the batches below it is
 * rebuilt from the stored log: while part_group_scan_wanted says so (1, with the Raft index to
 * read from; the owner starts at the stored log's first entry when that is later: retention
 * compacted it), the owner reads entries with host_read_log and hands them to
 * part_group_scan_loaded (err: host_read_log's; RQ_EBUSY: asked again later; any other, e.g.
 * RQ_ERANGE, or entries that start above the image, ends the scan: what is below the image is
 * then unreadable on this replica). part_group_scan_started marks a read as in flight. */
int part_group_scan_wanted(const struct part_group *pg, uint64_t *from, uint32_t *generation);
void part_group_scan_started(struct part_group *pg);
/* generation: part_group_scan_wanted's (an answer for a scan a later restore replaced is
 * ignored). */
void part_group_scan_loaded(struct part_group *pg, uint32_t generation, int err,
                            const struct raft_entry *entries, uint32_t count);
/* The partition's log start (the replicated one: what retention deleted is below it). */
uint64_t part_group_log_start(const struct part_group *pg);
/* The first offset part_group_read can serve here: the log start, or later when this replica
 * does not hold the records above it (below a snapshot it installed, or being found again after
 * a restore, or dropped from a full index). */
uint64_t part_group_readable_from(const struct part_group *pg);

/* ---- retention ----
 *
 * A topic's retention (a time limit, a size limit in record bytes per partition, or both) is
 * carried out by the partition's leader: every PART_GROUP_RETENTION_EVERY_NS it computes the log
 * start the policy asks for from its index of applied batches (each with its leader's timestamp
 * and its record bytes) and proposes a RETAIN entry (broker/partition.h) when that is past the
 * log start its tip foresees. Applying the entry moves the log start on every replica alike;
 * reads below it get RQ_ERANGE with the new log start. Then each replica deletes what it no
 * longer needs from its stored log: part_group_retain_below says below which Raft index that is,
 * and the owner hands it to host_retain_log (whole segments, never past the latest snapshot).
 *
 * Time is the leader's clock against the timestamps earlier leaders wrote: clocks that drift
 * apart move deletion earlier or later by their difference. A leader that cannot serve records
 * above the log start (part_group_readable_from) gives them up with the same entry: a replica
 * that installed a snapshot lacks the records below it, and readers would otherwise wait for
 * ever; those records are then deleted before the policy says (part_group_given_up counts them). */
struct part_group_retention {
    uint64_t time_ns;    /* records older than this are deleted; 0: no time limit */
    uint64_t bytes;      /* the oldest are deleted while the records exceed this; 0: no limit */
};

enum {
    PART_GROUP_RETENTION_EVERY_NS = 250 * 1000 * 1000,
    PART_GROUP_RETENTION_WALK_MAX = 4096,   /* batches one check looks at for the time limit */
};

/* The log start the policy asks for now, from the applied batches (at least the current one):
 * past every batch older than the time limit from the oldest on (Kafka's rule: it stops at the
 * first one still young, so a clock that went back keeps more, never less; at most
 * PART_GROUP_RETENTION_WALK_MAX batches a check), and past as many of the oldest as it takes for
 * the rest to fit the size limit (the newest batch always stays). */
uint64_t part_group_retention_target(const struct part_group *pg,
                                     const struct part_group_retention *policy, uint64_t now_ns);
/* The leader's check (its owner calls it every PART_GROUP_RETENTION_EVERY_NS): proposes a RETAIN entry when the policy (or an unservable
 * range) asks for a later log start. Returns 0 (nothing due, nothing to do, or proposed),
 * RQ_ENOTLEADER, RQ_ECLOSED (recovering), or host_propose's error. */
int part_group_retention(struct part_group *pg, struct host *h,
                         const struct part_group_retention *policy, uint64_t now_ns);
/* The stored entries below this Raft index hold only deleted records (0: none known, e.g. while
 * the index is being rebuilt or when this replica lacks records above the log start). */
uint64_t part_group_retain_below(const struct part_group *pg);
/* Records this replica, as leader, proposed to delete because it could not serve them. */
uint64_t part_group_given_up(const struct part_group *pg);

const struct partition_sm *part_group_state(const struct part_group *pg);
uint64_t part_group_bad_images(const struct part_group *pg);
const struct part_group_stats *part_group_stats(const struct part_group *pg);

#endif
