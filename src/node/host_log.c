/* Reads of a group's stored log (host.h, "Stored logs"): the entries a leader's Raft asks for to
 * send a follower that is behind its in-memory log (raft_load_requests -> raft_send_loaded), and
 * the owner's host_read_log.
 *
 *   queue:  load requests (from the drain) and host_read_log calls join the group's FIFO; a load
 *           already queued for the same follower is replaced, one being read is not repeated.
 *   read:   the head is read with store_read (one read per group at a time, the store's rule),
 *           as many times as it takes: a read returns at most one segment block, or what the
 *           store's memory tail holds (then inline, before store_read returns).
 *   answer: a load -> raft_send_loaded (the outbox is taken at once: the entries live in the
 *           group's buffer), or raft_load_unavailable when the store no longer has them; a
 *           caller's read -> cb.log_read.
 *
 * Stored entries carry their Raft type in the first payload byte (host.c, store_entry_of). */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "node/host_internal.h"

/* keep_min (<= 2) entries of any size, then at most bytes_max (<= HOST_LOG_READ_BYTES_MAX). */
enum { LOG_DATA_CAP = HOST_LOG_READ_BYTES_MAX + 2 * RAFT_ENTRY_DATA_MAX };
_Static_assert(RAFT_MSG_ENTRIES_MAX + 1 <= HOST_LOG_READ_ENTRIES_MAX + 1,
               "a load (one entry more than an append) fits the read buffer");

void host_log_free(struct host_group *g) {
    free(g->log.entries);
    free(g->log.data);
    g->log.entries = NULL;
    g->log.data = NULL;
}

static void log_pump(struct host *h, struct host_group *g);

/* Queues a read; returns 0 or RQ_EBUSY (queue full: never for loads, by LOG_QUEUE_MAX). */
static int log_enqueue(struct host_group *g, const struct host_log_read *q) {
    struct host_log_reads *lr = &g->log;
    if (lr->count == LOG_QUEUE_MAX) return RQ_EBUSY;
    lr->queue[lr->count++] = *q;
    return 0;
}

/* A load request from raft: at most one queued per follower besides the one being read. */
static void log_add_load(struct host *h, struct host_group *g, const struct raft_load_request *req) {
    struct host_log_reads *lr = &g->log;
    uint64_t first = req->first;
    struct host_log_read q = {.kind = LOG_READ_LOAD, .to = req->to, .first = first,
                              .from = first > 1 ? first - 1 : 1,
                              .want = req->count_max + (first > 1),
                              .keep_min = 1 + (first > 1),
                              .bytes_max = h->cfg.raft.msg_bytes_max < HOST_LOG_READ_BYTES_MAX
                                               ? h->cfg.raft.msg_bytes_max
                                               : HOST_LOG_READ_BYTES_MAX};
    RQ_ASSERT(req->count_max >= 1 && req->count_max <= RAFT_MSG_ENTRIES_MAX);
    for (uint32_t i = 0; i < lr->count; i++) {
        struct host_log_read *o = &lr->queue[i];
        if (o->kind != LOG_READ_LOAD || o->to != req->to) continue;
        int head_busy = i == 0 && (lr->in_store || lr->got > 0 || lr->done);
        if (head_busy && o->first == first) return;   /* being read: its answer comes */
        if (head_busy) continue;
        *o = q;
        return;
    }
    int err = log_enqueue(g, &q);
    RQ_ASSERT(err == 0);
}

void host_log_serve(struct host *h, struct host_group *g) {
    const struct raft_load_request *reqs;
    uint32_t n = raft_load_requests(g->raft, &reqs);
    for (uint32_t i = 0; i < n; i++) log_add_load(h, g, &reqs[i]);
    raft_load_requests_clear(g->raft);
    if (n > 0) log_pump(h, g);
}

/* ---- answers ------------------------------------------------------------------------------- */

static void answer_load(struct host *h, struct host_group *g, const struct host_log_read *q) {
    struct host_log_reads *lr = &g->log;
    uint32_t skip = q->first > 1;
    if (lr->err != 0 && lr->err != RQ_ERANGE) {
        /* A passing failure (no memory, the store busy): Raft asks again after a heartbeat round.
         * Only entries the store no longer has send the follower the snapshot, which would
         * replace its stored history. */
        RQ_INFO("host: group %" PRIu32 ": entry %" PRIu64 " for n%" PRIu32 " could not be read "
                "(%s): asked again later", g->id, q->first, q->to, rq_strerror(lr->err));
        return;
    }
    if (lr->err != 0 || lr->got <= skip || lr->entries[0].index != q->from) {
        RQ_INFO("host: group %" PRIu32 ": entry %" PRIu64 " for n%" PRIu32 " is not in the "
                "stored log (%s): the snapshot instead", g->id, q->first, q->to,
                rq_strerror(lr->err ? lr->err : RQ_ERANGE));
        raft_load_unavailable(g->raft, q->to, q->first);
        host_drain(h, g);   /* the snapshot requests (deferred when inside a drain) */
        return;
    }
    uint64_t prev_term = skip ? lr->entries[0].term : 0;
    raft_send_loaded(g->raft, q->to, q->first, prev_term, lr->entries + skip, lr->got - skip);
    host_take_outbox(h, g);   /* the append's entries point into lr->data */
}

static void answer(struct host *h, struct host_group *g) {
    struct host_log_reads *lr = &g->log;
    RQ_ASSERT(lr->count > 0 && lr->done && !lr->in_store);
    struct host_log_read q = lr->queue[0];
    if (q.kind == LOG_READ_LOAD && g->raft != NULL) {
        answer_load(h, g, &q);
    } else if (q.kind == LOG_READ_CALLER) {
        RQ_ASSERT(h->log_reads > 0);
        h->log_reads--;
        int err = lr->err == 0 && lr->got == 0 ? RQ_ERANGE : lr->err;
        if (h->cb.log_read)
            h->cb.log_read(h->cb_arg, g->id, q.cookie, err, err ? NULL : lr->entries,
                           err ? 0 : lr->got);
    }
    memmove(&lr->queue[0], &lr->queue[1], (lr->count - 1) * sizeof lr->queue[0]);
    lr->count--;
    lr->done = 0;
    lr->err = 0;
    lr->got = 0;
    lr->bytes = 0;
}

/* ---- reading ------------------------------------------------------------------------------- */

/* Starts the head's next store_read; a read served from memory completes inside it. */
static void read_head(struct host *h, struct host_group *g) {
    struct host_log_reads *lr = &g->log;
    if (lr->entries == NULL) lr->entries = malloc((HOST_LOG_READ_ENTRIES_MAX + 1) * sizeof *lr->entries);
    if (lr->data == NULL) lr->data = malloc(LOG_DATA_CAP);
    if (lr->entries == NULL || lr->data == NULL) {
        lr->err = RQ_ENOMEM;
        lr->done = 1;
        return;
    }
    const struct host_log_read *q = &lr->queue[0];
    uint32_t left = q->want - lr->got;
    uint32_t n = left < STORE_READ_ENTRIES_MAX ? left : STORE_READ_ENTRIES_MAX;
    lr->in_store = 1;
    int err = store_read(h->store, g->id, q->from + lr->got, n, HOST_COOKIE_LOG | g->id);
    if (err == 0) return;
    lr->in_store = 0;
    /* Past the end after some entries: the stored log ends there. */
    lr->err = err == RQ_ERANGE && lr->got > 0 ? 0 : err;
    lr->done = 1;
    if (err == RQ_EBUSY) RQ_WARN("host: group %" PRIu32 ": a log read is already in flight", g->id);
}

/* Reads and answers the queue's reads in order until one waits for the disk. Not reentrant: the
 * answers and the reads served from memory call back into it. */
static void log_pump(struct host *h, struct host_group *g) {
    struct host_log_reads *lr = &g->log;
    if (lr->pumping) return;
    lr->pumping = 1;
    while (!h->halted && lr->count > 0 && !lr->in_store) {
        if (lr->done) answer(h, g);
        else read_head(h, g);
    }
    if (lr->count == 0) host_log_free(g);
    lr->pumping = 0;
}

/* Copies what one store_read returned into the head's buffer. Returns 1 when the head is done. */
static int take_entries(struct host *h, struct host_group *g, const struct store_entry *entries,
                        uint32_t count) {
    struct host_log_reads *lr = &g->log;
    const struct host_log_read *q = &lr->queue[0];
    if (count == 0) return 1;
    for (uint32_t i = 0; i < count; i++) {
        const struct store_entry *se = &entries[i];
        if (lr->got == q->want) return 1;
        if (se->payload_size < 1 || se->payload_size - 1 > RAFT_ENTRY_DATA_MAX ||
            se->index != q->from + lr->got) {
            host_halt(h, "stored entry read back is malformed", RQ_ECORRUPT);
            return 1;
        }
        uint32_t size = se->payload_size - 1;
        if (lr->got >= q->keep_min && lr->bytes + size > q->bytes_max) return 1;
        RQ_ASSERT(lr->bytes + size <= LOG_DATA_CAP);
        uint8_t *data = lr->data + lr->bytes;
        if (size) memcpy(data, se->payload + 1, size);
        lr->entries[lr->got++] = (struct raft_entry){.index = se->index, .term = se->term,
                                                     .type = se->payload[0], .data_size = size,
                                                     .data = size ? data : NULL};
        lr->bytes += size;
    }
    return lr->got == q->want;
}

void host_log_on_read_done(struct host *h, struct host_group *g, int err,
                           const struct store_entry *entries, uint32_t count) {
    struct host_log_reads *lr = &g->log;
    RQ_ASSERT(lr->in_store && lr->count > 0);
    lr->in_store = 0;
    if (err != 0) {
        lr->err = err;
        lr->done = 1;
    } else if (take_entries(h, g, entries, count)) {
        lr->done = 1;
    }
    if (h->halted) return;
    log_pump(h, g);
}

/* ---- the owner's reads ---------------------------------------------------------------------- */

int host_read_log(struct host *h, uint32_t group, uint64_t from, uint32_t count, uint64_t cookie) {
    if (h->halted || h->phase != PHASE_READY) return RQ_ECLOSED;
    struct host_group *g = group < HOST_GROUP_ID_LIMIT ? h->by_id[group] : NULL;
    if (g == NULL) return RQ_ERANGE;
    if (!g->restored) return RQ_ECLOSED;
    if (count == 0 || count > HOST_LOG_READ_ENTRIES_MAX) return RQ_EINVAL;
    if (h->log_reads >= HOST_LOG_READS_MAX) return RQ_EBUSY;
    uint64_t first, last;
    store_range(h->store, g->id, &first, &last);
    /* Committed, and durable here: above its durable index this node's store may still hold old
     * entries that a truncation has not replaced yet, even below the commit index (a follower
     * learns the commit index from its leader before its own log is on disk). */
    uint64_t upto = raft_commit(g->raft) < last ? raft_commit(g->raft) : last;
    if (raft_durable_index(g->raft) < upto) upto = raft_durable_index(g->raft);
    /* A truncation not yet handed to the store (it was busy): the store still holds the log it
     * replaces (after an installed snapshot, even below the durable index). Asked again later. */
    uint64_t tfrom, pfirst, plast;
    if (raft_persist_pending(g->raft, &tfrom, &pfirst, &plast) && tfrom != 0 && tfrom <= upto)
        return RQ_EBUSY;
    if (from < first || from > upto) return RQ_ERANGE;
    uint64_t left = upto - from + 1;
    struct host_log_read q = {.kind = LOG_READ_CALLER, .from = from,
                              .want = left < count ? (uint32_t)left : count, .keep_min = 1,
                              .bytes_max = HOST_LOG_READ_BYTES_MAX, .cookie = cookie};
    if (log_enqueue(g, &q) != 0) return RQ_EBUSY;
    h->log_reads++;
    log_pump(h, g);
    host_flush(h);
    return 0;
}

/* ---- retention ------------------------------------------------------------------------------ */

int host_retain_log(struct host *h, uint32_t group, uint64_t below_index) {
    if (h->halted || h->phase != PHASE_READY) return RQ_ECLOSED;
    struct host_group *g = group < HOST_GROUP_ID_LIMIT ? h->by_id[group] : NULL;
    if (g == NULL) return RQ_ERANGE;
    if (!g->restored) return RQ_ECLOSED;
    if (g->kind != HOST_GROUP_STORED_LOG) return RQ_EINVAL;
    if (below_index <= g->retain_below) return 0;
    g->retain_below = below_index;
    host_compact_stored_log(h, g);
    return 0;
}

uint64_t host_stored_first(const struct host *h, uint32_t group) {
    const struct host_group *g = group < HOST_GROUP_ID_LIMIT ? h->by_id[group] : NULL;
    if (g == NULL || h->phase != PHASE_READY) return 0;
    uint64_t first, last;
    store_range(h->store, g->id, &first, &last);
    return first;
}
