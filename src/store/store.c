/* The node store: the WAL in front, per-group segments behind, memory tails in between.
 *
 * Per group the log is   segments[first .. seg_view_last] ++ tail[...]
 * where seg_view_last = min(segment last index, void_from - 1): a truncation that reaches into
 * entries already flushed to segments voids them at once in memory (void_from) and removes them
 * from the segment files once the TRUNCATE record is durable in the WAL.
 *
 * Replay after a crash must not re-apply what the segments already reflect. Every entry the store
 * writes to a segment therefore carries its WAL LSN as an 8-byte prefix of the payload; at
 * recovery the LSN of each group's last segment entry is read back, and WAL records of that group
 * at or below it are skipped. Everything else is re-applied in order, which is idempotent: a
 * truncation of entries the segments no longer hold voids nothing.
 *
 * WAL trimming: a WAL record is needed until its effect is in the segments: a tail entry until it
 * is flushed, a truncation until the segment files are cut. The trim point is the lowest LSN any
 * group still needs. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"
#include "base/log.h"
#include "store/segment.h"
#include "store/wal.h"

enum {
    LSN_PREFIX = 8,                  /* bytes of WAL LSN before each segment entry's payload */
    WAL_META = 12,                   /* u32 message count + u64 timestamp before each WAL payload */
    FLUSH_ENTRIES_MAX = 256,         /* entries handed to one segment append */
    PENDING_MAX = 1 << 16,           /* WAL records accepted but not yet reported durable */
    LIST_BUF = 32 * 1024,
    SEGMENT_BLOCK_SIZE = 128 * 1024, /* a block holds at least one entry of STORE_PAYLOAD_MAX */
    FLUSH_BUF = 1 << 20,             /* LSN-prefixed payloads handed to one segment append */
    /* Less than FLUSH_MIN_BYTES is flushed once the group went quiet (no entry for
     * FLUSH_QUIET_NS) or its oldest entry waited FLUSH_LINGER_MAX_NS. A fixed 20 ms linger made
     * a group receiving 3 MB/s flush 60 KiB every 20 ms: with 16 such partitions, 800 segment
     * fsyncs a second on a node, queued in the disk worker ahead of WAL fsyncs. */
    FLUSH_QUIET_NS = 20 * 1000 * 1000,
    FLUSH_LINGER_MAX_NS = 200 * 1000 * 1000,
    /* A segment append costs an fsync; under load a group flushes once it has this much, so
     * that segment fsyncs stay few next to the WAL's (they were half of a node's fsyncs when a
     * group flushed every half block). Memory stays bounded: the tails' bounds press a flush. */
    FLUSH_MIN_BYTES = 4 * SEGMENT_BLOCK_SIZE,
    SEGMENT_ROLL_BLOCKS = STORE_SEGMENT_BLOCKS_MAX / 16,   /* a segment holds at most this many */
};
_Static_assert(STORE_SEGMENT_BLOCKS_MAX / SEGMENT_ROLL_BLOCKS < STORE_SEGMENT_FILES_MAX,
               "the block budget fills before the segment count runs out");
_Static_assert(STORE_PAYLOAD_MAX + LSN_PREFIX + 16 + 64 <= SEGMENT_BLOCK_SIZE,
               "an entry of the largest payload fits one segment block");
_Static_assert(STORE_PAYLOAD_MAX + LSN_PREFIX <= FLUSH_BUF, "the flush buffer holds any entry");
_Static_assert(FLUSH_MIN_BYTES <= FLUSH_BUF, "a flush of FLUSH_MIN_BYTES fits the flush buffer");

enum store_state { ST_NEW, ST_LISTING, ST_OPENING, ST_LSNS, ST_WAL, ST_CUTTING, ST_READY, ST_FAILED };
enum seg_op { SEG_IDLE, SEG_OPEN, SEG_LSN, SEG_FLUSH, SEG_CUT, SEG_DROP, SEG_READ };

struct tail_entry {
    uint64_t appended_ns;       /* node clock at append: the flush lingers for fuller blocks */
    uint64_t index;
    uint64_t term;
    uint64_t lsn;
    uint64_t timestamp;
    uint32_t message_count;
    uint32_t payload_size;
    uint8_t *payload;
};

struct group {
    struct store *store;
    uint64_t id;
    struct store_segment seg;
    uint8_t *seg_buf;
    enum seg_op op;
    int seg_open;               /* the segment store has been opened */
    uint64_t seg_first;         /* as the segment store reports */
    uint64_t seg_last;          /* seg_first - 1 when it holds nothing */
    uint64_t seg_lsn;           /* WAL LSN of the last entry in the segments (0: none) */
    uint64_t void_from;         /* entries >= this in the segments are void (UINT64_MAX: none) */
    uint64_t void_lsn;          /* the TRUNCATE record that voided them */
    uint64_t cutting_from;      /* the segment truncation in flight cuts from here */
    /* Tail entries a truncation freed stay needed in the WAL until that truncation is durable:
     * a crash before then undoes it, and they are part of the log again. */
    uint64_t victim_lsn;        /* lowest LSN of such entries (0: none) */
    uint64_t victim_until;      /* the newest truncation that freed some */
    uint64_t compact_below;     /* drop whole segments below this */
    int retention_due;          /* a retention pass waits for the segment store */
    struct store_segment_retention retention;
    uint64_t next_index;        /* the index the next append must have; 0 = any (empty, unknown) */
    struct tail_entry *tail;    /* ring of tail_cap */
    uint32_t tail_head;
    uint32_t tail_count;
    uint32_t tail_cap;
    uint32_t flushing;          /* tail entries handed to the segment append in flight */
    uint64_t flush_last;        /* last index of that append */
    int detached;               /* replay only: the tail does not (yet) follow the segments */
    /* a read waiting for or using the segment store */
    int read_pending;
    uint64_t read_from;
    uint32_t read_max;
    uint64_t read_cookie;
    struct store_entry *read_out;  /* STORE_READ_ENTRIES_MAX, allocated at the first read */
};

struct pending {
    uint64_t group;
    uint64_t index;
    uint64_t cookie;
    uint64_t lsn;
    int is_entry;
};

struct store {
    const struct rq_io *io;
    struct store_config cfg;
    struct store_callbacks cb;
    void *cb_arg;
    enum store_state state;
    int err;
    struct store_wal wal;
    void *wal_mem;
    struct store_wal_config wal_cfg;
    struct store_segment_config seg_cfg;
    size_t seg_buf_size;
    uint8_t *wal_payload;       /* WAL_META + payload of one append */
    /* a flush is encoded here; the segment store copies it before append returns */
    struct store_entry flush_in[FLUSH_ENTRIES_MAX];
    uint8_t *flush_buf;
    struct group *groups[STORE_GROUPS_MAX];
    struct pending *pending;    /* ring of PENDING_MAX */
    uint32_t pending_head;
    uint32_t pending_count;
    uint64_t durable_lsn;       /* every WAL record <= this is durable */
    uint64_t tail_bytes;
    uint32_t outstanding;       /* recovery steps in flight */
    struct rq_disk_req list_req;
    char list_buf[LIST_BUF];
    struct store_stats stats;
};

void store_config_default(struct store_config *cfg) {
    cfg->tail_entries_max = 4096;
    cfg->tail_bytes_max = 64ull << 20;
    /* Small WAL files: trimming one is an unlink, and the disk worker runs one request at a time.
     * Unlinking a 64 MiB file took up to 75 ms on ext4 (freeing its extents), stalling every
     * append behind it: the p99 of produce latency at 30,000 msg/s was 65 ms. With 4 MiB files
     * an unlink takes under 10 ms and the p99 was 8 ms. */
    cfg->wal_file_bytes_max = 4ull << 20;
    cfg->segment_bytes_max = 256ull << 20;
    cfg->block_bytes_max = SEGMENT_BLOCK_SIZE;
}

/* Per-entry overhead inside a block beyond the payload: block header share, entry header, LSN. */
enum { BLOCK_OVERHEAD = STORE_BLOCK_HEADER_SIZE + STORE_BLOCK_ENTRY_HEADER_SIZE + LSN_PREFIX };

/* ---- small helpers ------------------------------------------------------------------------------ */

static struct tail_entry *tail_at(struct group *g, uint32_t k) {
    RQ_ASSERT(k < g->tail_count);
    return &g->tail[(g->tail_head + k) % g->tail_cap];
}

static uint64_t seg_view_last(const struct group *g) {
    uint64_t last = g->seg_last;
    if (g->void_from != UINT64_MAX && g->void_from - 1 < last) last = g->void_from - 1;
    return last;
}

static uint64_t log_last(struct group *g) {
    if (g->tail_count) return tail_at(g, g->tail_count - 1)->index;
    return seg_view_last(g);
}

static uint64_t log_first(struct group *g) {
    if (seg_view_last(g) >= g->seg_first && g->seg_last >= g->seg_first) return g->seg_first;
    if (g->tail_count) return tail_at(g, 0)->index;
    return log_last(g) + 1;
}

static void tail_pop_front(struct store *s, struct group *g) {
    struct tail_entry *e = tail_at(g, 0);
    s->tail_bytes -= e->payload_size;
    free(e->payload);
    g->tail_head = (g->tail_head + 1) % g->tail_cap;
    g->tail_count--;
}

static void tail_pop_back(struct store *s, struct group *g) {
    struct tail_entry *e = tail_at(g, g->tail_count - 1);
    s->tail_bytes -= e->payload_size;
    free(e->payload);
    g->tail_count--;
}

enum { REPLAY_TAIL_MAX = 1 << 20 };

/* Doubles the ring (replay only: records a later truncation voids pass through the tail). */
static int tail_grow(struct group *g) {
    if (g->tail_cap >= REPLAY_TAIL_MAX) return RQ_ETOOBIG;
    uint32_t cap = g->tail_cap * 2;
    struct tail_entry *ring = calloc(cap, sizeof *ring);
    RQ_ASSERT(ring != NULL);
    for (uint32_t k = 0; k < g->tail_count; k++) ring[k] = g->tail[(g->tail_head + k) % g->tail_cap];
    free(g->tail);
    g->tail = ring;
    g->tail_cap = cap;
    g->tail_head = 0;
    return 0;
}

static int tail_push(struct store *s, struct group *g, const struct store_entry *e, uint64_t lsn) {
    if (g->tail_count == g->tail_cap && (s->state != ST_WAL || tail_grow(g) != 0)) return RQ_EBUSY;
    uint8_t *copy = malloc(e->payload_size ? e->payload_size : 1);
    RQ_ASSERT(copy != NULL);
    if (e->payload_size) memcpy(copy, e->payload, e->payload_size);
    struct tail_entry *t = &g->tail[(g->tail_head + g->tail_count) % g->tail_cap];
    g->tail_count++;
    t->index = e->index;
    t->term = e->term;
    t->lsn = lsn;
    t->timestamp = e->timestamp;
    t->message_count = e->message_count;
    t->payload_size = e->payload_size;
    t->payload = copy;
    t->appended_ns = s->io->now(s->io->env);
    s->tail_bytes += e->payload_size;
    s->stats.tail_entries = s->tail_bytes;
    return 0;
}

static void store_fail(struct store *s, int err, const char *why) {
    if (s->state == ST_FAILED) return;
    RQ_ERROR("store: failed: %s: %s", why, rq_strerror(err));
    enum store_state was = s->state;
    s->state = ST_FAILED;
    s->err = err;
    if (was != ST_READY) {
        s->cb.opened(s->cb_arg, err);
        return;
    }
    /* Every append not yet reported durable will never be known to be. */
    while (s->pending_count) {
        struct pending *p = &s->pending[s->pending_head];
        s->pending_head = (s->pending_head + 1) % PENDING_MAX;
        s->pending_count--;
        if (p->is_entry) s->cb.durable(s->cb_arg, p->group, p->index, p->cookie, err);
    }
    for (uint32_t i = 0; i < STORE_GROUPS_MAX; i++) {
        struct group *g = s->groups[i];
        if (g == NULL || !g->read_pending) continue;
        g->read_pending = 0;
        s->cb.read_done(s->cb_arg, g->read_cookie, err, NULL, 0);
    }
    s->cb.failed(s->cb_arg, err);
}

/* ---- groups and their segment stores ------------------------------------------------------------- */

static void on_segment(void *arg, const struct store_segment_result *r);

static struct group *group_get(struct store *s, uint64_t id, int create) {
    if (id >= STORE_GROUPS_MAX) return NULL;
    if (s->groups[id] || !create) return s->groups[id];
    struct group *g = calloc(1, sizeof *g);
    RQ_ASSERT(g != NULL);
    g->store = s;
    g->id = id;
    g->seg_first = 1;
    g->seg_last = 0;
    g->void_from = UINT64_MAX;
    g->tail_cap = s->cfg.tail_entries_max;
    g->tail = calloc(g->tail_cap, sizeof *g->tail);
    g->seg_buf = malloc(s->seg_buf_size);
    RQ_ASSERT(g->tail != NULL && g->seg_buf != NULL);
    store_segment_init(&g->seg, s->io, id, &s->seg_cfg, g->seg_buf, s->seg_buf_size, on_segment, g);
    s->groups[id] = g;
    return g;
}

static void group_free(struct store *s, struct group *g) {
    while (g->tail_count) tail_pop_front(s, g);
    free(g->tail);
    free(g->seg_buf);
    free(g->read_out);
    free(g);
}

/* The lowest WAL LSN some group still needs; records below it may go. */
static void wal_trim_now(struct store *s) {
    uint64_t need = s->durable_lsn + 1;
    for (uint32_t i = 0; i < STORE_GROUPS_MAX; i++) {
        struct group *g = s->groups[i];
        if (g == NULL) continue;
        if (g->tail_count && tail_at(g, 0)->lsn < need) need = tail_at(g, 0)->lsn;
        if (g->void_from != UINT64_MAX && g->void_lsn < need) need = g->void_lsn;
        if (g->victim_lsn && g->victim_until <= s->durable_lsn) g->victim_lsn = 0;
        if (g->victim_lsn && g->victim_lsn < need) need = g->victim_lsn;
    }
    int rc = store_wal_trim(&s->wal, need);
    if (rc != 0) store_fail(s, rc, "WAL trim");
}

/* Hands the longest run of durable tail entries (from the front) to the segment store. */
static int group_flush(struct store *s, struct group *g) {
    uint32_t n = 0;
    size_t used = 0;
    /* new entries follow a truncation only once the segments are cut */
    if (g->void_from != UINT64_MAX) return 0;
    while (n < g->tail_count && n < FLUSH_ENTRIES_MAX) {
        struct tail_entry *t = tail_at(g, n);
        if (t->lsn > s->durable_lsn) break;
        if (used + LSN_PREFIX + t->payload_size > FLUSH_BUF) break;
        rq_put_u64(s->flush_buf + used, t->lsn);
        if (t->payload_size) memcpy(s->flush_buf + used + LSN_PREFIX, t->payload, t->payload_size);
        struct store_entry *e = &s->flush_in[n];
        e->index = t->index;
        e->term = t->term;
        e->message_count = t->message_count;
        e->timestamp = t->timestamp;
        e->payload = s->flush_buf + used;
        e->payload_size = LSN_PREFIX + t->payload_size;
        used += LSN_PREFIX + t->payload_size;
        n++;
    }
    if (n == 0) return 0;
    /* Every segment append makes at least one block, and a group's index holds a bounded number
     * of blocks: wait for a block's worth, unless entries have lingered or memory is filling. */
    int full_block = used >= FLUSH_MIN_BYTES || used + STORE_PAYLOAD_MAX + LSN_PREFIX > FLUSH_BUF ||
                     n == FLUSH_ENTRIES_MAX;
    uint64_t now = s->io->now(s->io->env);
    int lingered = now - tail_at(g, 0)->appended_ns >= FLUSH_LINGER_MAX_NS ||
                   now - tail_at(g, g->tail_count - 1)->appended_ns >= FLUSH_QUIET_NS;
    int pressed = g->tail_count >= g->tail_cap / 2 || s->tail_bytes >= s->cfg.tail_bytes_max / 2;
    if (!full_block && !lingered && !pressed) return 0;
    if (g->seg_last < g->seg_first && store_segment_last_index(&g->seg) + 1 != s->flush_in[0].index) {
        /* an empty segment store starts where the log does (after a snapshot or a restart) */
        int rc = store_segment_set_next(&g->seg, s->flush_in[0].index, 0);
        if (rc != 0) {
            store_fail(s, rc, "segment set_next");
            return 0;
        }
    }
    /* Roll by blocks as well as by bytes: a group's block index is bounded and compaction frees
     * whole segments, so a segment of small entries must not take the whole budget alone (it did:
     * a group stalled once its only segment held STORE_SEGMENT_BLOCKS_MAX blocks). */
    if (g->seg.file_count > 0 &&
        g->seg.files[g->seg.file_count - 1].block_count >= SEGMENT_ROLL_BLOCKS) {
        int rc = store_segment_roll(&g->seg);
        if (rc != 0) {
            store_fail(s, rc, "segment roll");
            return 0;
        }
    }
    uint32_t accepted = 0;
    int rc = store_segment_append(&g->seg, s->flush_in, n, &accepted);
    if (rc == RQ_EBUSY || rc == RQ_ENOMEM) return 0;  /* retried later; ENOMEM waits for a compaction */
    if (rc != 0) {
        store_fail(s, rc, "segment append");
        return 0;
    }
    RQ_ASSERT(accepted >= 1 && accepted <= n);
    g->op = SEG_FLUSH;
    g->flushing = accepted;
    g->flush_last = s->flush_in[accepted - 1].index;
    s->stats.segment_flushes++;
    return 1;
}

static void read_from_memory(struct store *s, struct group *g, uint64_t from_index, uint32_t max_entries,
                             uint64_t cookie);

/* Starts cutting the void part of the segments (entries >= void_from). Returns 1 if a cut is in
 * flight, 0 if the segments hold nothing void (a compaction may have dropped it already). A
 * compaction can also have dropped the segment holding void_from itself while later, void ones
 * remain: then the cut starts at the first entry the segments hold. */
static int group_cut(struct store *s, struct group *g) {
    if (!g->seg_open || g->seg_last < g->seg_first || g->void_from > g->seg_last) {
        g->void_from = UINT64_MAX;
        return 0;
    }
    uint64_t from = g->void_from > g->seg_first ? g->void_from : g->seg_first;
    int rc = store_segment_truncate(&g->seg, from);
    if (rc != 0) {
        store_fail(s, rc, "segment truncate");
        return 1;
    }
    g->op = SEG_CUT;
    g->cutting_from = g->void_from;
    return 1;
}

/* Starts the group's next segment operation, if any: a waiting read first, then a durable
 * truncation, a compaction, and last a flush. */
static void group_advance(struct store *s, struct group *g) {
    if (s->state != ST_READY || g->op != SEG_IDLE) return;
    if (!g->seg_open) {
        g->op = SEG_OPEN;
        store_segment_open(&g->seg);
        return;
    }
    if (g->read_pending == 1 && g->read_from > seg_view_last(g)) {
        /* a truncation moved the range into the tail meanwhile */
        g->read_pending = 0;
        read_from_memory(s, g, g->read_from, g->read_max, g->read_cookie);
        if (s->state != ST_READY || g->op != SEG_IDLE) return;
    }
    if (g->read_pending == 1) {
        uint32_t max = g->read_max;
        uint64_t view_last = seg_view_last(g);
        if (g->read_from + max - 1 > view_last) max = (uint32_t)(view_last - g->read_from + 1);
        int rc = store_segment_read(&g->seg, g->read_from, max, 4ull << 20, g->read_out, STORE_READ_ENTRIES_MAX);
        if (rc != 0) {
            g->read_pending = 0;
            s->cb.read_done(s->cb_arg, g->read_cookie, rc, NULL, 0);
        } else {
            g->read_pending = 2;
            g->op = SEG_READ;
            s->stats.reads_from_segments++;
            return;
        }
    }
    if (g->void_from != UINT64_MAX && g->void_lsn <= s->durable_lsn && group_cut(s, g)) return;
    if (g->retention_due) {
        g->retention_due = 0;
        uint32_t deleting = 0;
        int rc = store_segment_retention(&g->seg, &g->retention, &deleting);
        if (rc != 0) {
            store_fail(s, rc, "segment retention");
            return;
        }
        if (deleting) {
            g->op = SEG_DROP;
            return;
        }
    }
    if (g->compact_below > g->seg_first && g->seg_last >= g->seg_first) {
        /* The segment holding the last flushed entry always stays: after a restart its last
         * entry's LSN tells which WAL records the segments already reflect. */
        uint64_t below = g->compact_below < g->seg_last ? g->compact_below : g->seg_last;
        uint32_t deleting = 0;
        int rc = store_segment_drop_prefix(&g->seg, below, &deleting);
        if (rc != 0) {
            store_fail(s, rc, "segment drop prefix");
            return;
        }
        if (deleting) {
            g->op = SEG_DROP;
            return;
        }
    }
    group_flush(s, g);
}

/* ---- segment completions ------------------------------------------------------------------------- */

static void recovery_step_done(struct store *s);

static void on_segment_flushed(struct store *s, struct group *g, const struct store_segment_result *r) {
    g->seg_first = r->first_index;
    g->seg_last = r->last_index;
    RQ_ASSERT(g->seg_last == g->flush_last);
    /* The flushed entries leave the tail, unless a truncation already freed them. */
    while (g->tail_count && tail_at(g, 0)->index <= g->flush_last && tail_at(g, 0)->index < g->void_from) {
        tail_pop_front(s, g);
    }
    g->flushing = 0;
}

static void on_segment(void *arg, const struct store_segment_result *r) {
    struct group *g = arg;
    struct store *s = g->store;
    enum seg_op op = g->op;
    g->op = SEG_IDLE;
    if (r->err != 0) {
        if (op == SEG_READ) {
            g->read_pending = 0;
            s->cb.read_done(s->cb_arg, g->read_cookie, r->err, NULL, 0);
        }
        store_fail(s, r->err, "segment store");
        return;
    }
    switch (op) {
    case SEG_OPEN:
        g->seg_open = 1;
        g->seg_first = r->first_index;
        g->seg_last = r->last_index;
        if (s->state == ST_OPENING && g->seg_last >= g->seg_first) {
            /* recovery needs the WAL LSN of the last entry the segments hold */
            if (g->read_out == NULL) g->read_out = calloc(STORE_READ_ENTRIES_MAX, sizeof *g->read_out);
            RQ_ASSERT(g->read_out != NULL);
            int rc = store_segment_read(&g->seg, g->seg_last, 1, 1u << 30, g->read_out, 1);
            if (rc != 0) {
                store_fail(s, rc, "segment read of the last entry");
                return;
            }
            g->op = SEG_LSN;
            return;
        }
        break;
    case SEG_LSN:
        if (r->entry_count != 1 || r->entries[0].payload_size < LSN_PREFIX) {
            RQ_ERROR("store: group %llu: last segment entry %llu carries no WAL LSN", (unsigned long long)g->id,
                     (unsigned long long)g->seg_last);
            store_fail(s, RQ_ECORRUPT, "segment entry without LSN");
            return;
        }
        g->seg_lsn = rq_get_u64(r->entries[0].payload);
        break;
    case SEG_FLUSH: on_segment_flushed(s, g, r); break;
    case SEG_CUT:
        g->seg_first = r->first_index;
        g->seg_last = r->last_index;
        /* a truncation below the one just cut may have come meanwhile: it stays pending */
        if (g->void_from >= g->cutting_from) g->void_from = UINT64_MAX;
        break;
    case SEG_DROP:
        g->seg_first = r->first_index;
        g->seg_last = r->last_index;
        break;
    case SEG_READ: {
        g->read_pending = 0;
        for (uint32_t i = 0; i < r->entry_count; i++) {
            RQ_ASSERT(r->entries[i].payload_size >= LSN_PREFIX);
            r->entries[i].payload += LSN_PREFIX;
            r->entries[i].payload_size -= LSN_PREFIX;
        }
        s->cb.read_done(s->cb_arg, g->read_cookie, 0, r->entries, r->entry_count);
        break;
    }
    default: RQ_UNREACHABLE();
    }
    if (s->state == ST_FAILED) return;
    if (s->state != ST_READY) {
        recovery_step_done(s);
        return;
    }
    wal_trim_now(s);
    group_advance(s, g);
}

/* ---- recovery ------------------------------------------------------------------------------------ */

static void become_ready(struct store *s) {
    s->state = ST_READY;
    RQ_INFO("store: recovered; next WAL LSN %llu", (unsigned long long)(s->durable_lsn + 1));
    s->cb.opened(s->cb_arg, 0);
    for (uint32_t i = 0; i < STORE_GROUPS_MAX && s->state == ST_READY; i++) {
        if (s->groups[i]) group_advance(s, s->groups[i]);
    }
}

/* Truncations replayed from the WAL that reach into the segments are applied before serving. */
static void recovery_cut(struct store *s) {
    s->state = ST_CUTTING;
    s->outstanding = 0;
    for (uint32_t i = 0; i < STORE_GROUPS_MAX; i++) {
        struct group *g = s->groups[i];
        if (g == NULL || g->void_from == UINT64_MAX) continue;
        if (group_cut(s, g)) s->outstanding++;
        if (s->state == ST_FAILED) return;
    }
    if (s->outstanding == 0) become_ready(s);
}

static void recovery_step_done(struct store *s) {
    RQ_ASSERT(s->outstanding > 0);
    if (--s->outstanding > 0) return;
    if (s->state == ST_OPENING) {
        s->state = ST_WAL;
        store_wal_recover(&s->wal);
    } else if (s->state == ST_CUTTING) {
        become_ready(s);
    }
}

static void on_list_done(struct store *s) {
    if (s->list_req.result < 0) {
        store_fail(s, (int)s->list_req.result, "listing the data directory");
        return;
    }
    s->state = ST_OPENING;
    s->outstanding = 1;  /* held until every group's open is started */
    const char *name = s->list_buf;
    for (int64_t i = 0; i < s->list_req.result; i++, name += strlen(name) + 1) {
        unsigned long long id;
        char rest;
        if (strlen(name) != 17 || sscanf(name, "g%16llx%c", &id, &rest) != 1) continue;
        struct group *g = group_get(s, id, 1);
        if (g == NULL) {
            RQ_ERROR("store: group directory %s: group id beyond %d", name, STORE_GROUPS_MAX);
            store_fail(s, RQ_ECORRUPT, "foreign group directory");
            return;
        }
        g->op = SEG_OPEN;
        s->outstanding++;
        store_segment_open(&g->seg);
    }
    recovery_step_done(s);
}

/* Replay, ENTRY: continues the log, overwrites part of it (Raft semantics: an implicit truncation),
 * or, after a partly trimmed WAL, starts a detached tail that a later truncation must resolve. */
static void replay_entry(struct store *s, struct group *g, const struct store_wal_record *rec) {
    if (rec->payload_size < WAL_META) {
        store_fail(s, RQ_ECORRUPT, "WAL entry record without its metadata");
        return;
    }
    uint64_t last = log_last(g);
    int empty = g->tail_count == 0 && seg_view_last(g) < g->seg_first;
    if (!empty && rec->index <= last) {
        while (g->tail_count && tail_at(g, g->tail_count - 1)->index >= rec->index) tail_pop_back(s, g);
        if (rec->index <= seg_view_last(g)) {
            g->void_from = rec->index;
            g->void_lsn = rec->lsn;
        }
    } else if (!empty && rec->index > last + 1) {
        while (g->tail_count) tail_pop_back(s, g);
        g->detached = 1;
    }
    struct store_entry e = {
        .index = rec->index,
        .term = rec->term,
        .message_count = rq_get_u32(rec->payload),
        .timestamp = rq_get_u64(rec->payload + 4),
        .payload = rec->payload + WAL_META,
        .payload_size = rec->payload_size - WAL_META,
    };
    if (tail_push(s, g, &e, rec->lsn) != 0) store_fail(s, RQ_ETOOBIG, "WAL replay: a group's tail overflows its bound");
}

static void replay_truncate(struct store *s, struct group *g, const struct store_wal_record *rec) {
    while (g->tail_count && tail_at(g, g->tail_count - 1)->index >= rec->index) tail_pop_back(s, g);
    if (g->detached && g->tail_count == 0) g->detached = 0;
    if (rec->index <= seg_view_last(g)) {
        g->void_from = rec->index > g->seg_first ? rec->index : g->seg_first;
        g->void_lsn = rec->lsn;
        g->detached = 0;
    }
}

static void on_wal_replay(void *arg, const struct store_wal_record *rec) {
    struct store *s = arg;
    if (s->state != ST_WAL) return;  /* failed meanwhile */
    struct group *g = group_get(s, rec->group_id, 1);
    if (g == NULL) {
        RQ_ERROR("store: WAL record LSN %llu names group %llu, beyond %d", (unsigned long long)rec->lsn,
                 (unsigned long long)rec->group_id, STORE_GROUPS_MAX);
        store_fail(s, RQ_ECORRUPT, "WAL record of a foreign group");
        return;
    }
    if (rec->lsn <= g->seg_lsn) return;  /* the segments already reflect it */
    if (rec->kind == STORE_WAL_ENTRY) replay_entry(s, g, rec);
    else replay_truncate(s, g, rec);
}

static void on_wal_recovered(void *arg, const struct store_wal_recovery *result) {
    struct store *s = arg;
    if (s->state != ST_WAL) return;
    if (result->err != 0) {
        store_fail(s, result->err, "WAL recovery");
        return;
    }
    s->durable_lsn = result->next_lsn - 1;
    if (result->torn_bytes) {
        RQ_WARN("store: WAL: dropped a torn tail of %llu bytes (never acknowledged)",
                (unsigned long long)result->torn_bytes);
    }
    for (uint32_t i = 0; i < STORE_GROUPS_MAX; i++) {
        struct group *g = s->groups[i];
        if (g && g->detached) {
            RQ_ERROR("store: group %u: the WAL misses records between its segments (last %llu) and its "
                     "next WAL entry", i, (unsigned long long)seg_view_last(g));
            store_fail(s, RQ_ECORRUPT, "WAL does not continue a group's log");
            return;
        }
    }
    recovery_cut(s);
}

static void on_wal_durable(void *arg, const struct store_wal_durable *ev) {
    struct store *s = arg;
    if (ev->err != 0) {
        store_fail(s, ev->err, "WAL write or fsync");
        return;
    }
    if (s->state != ST_READY) return;
    RQ_ASSERT(s->pending_count > 0);
    struct pending p = s->pending[s->pending_head];
    s->pending_head = (s->pending_head + 1) % PENDING_MAX;
    s->pending_count--;
    RQ_ASSERT(p.lsn == ev->record.lsn);
    RQ_ASSERT(p.lsn > s->durable_lsn);
    s->durable_lsn = p.lsn;
    if (p.is_entry) s->cb.durable(s->cb_arg, p.group, p.index, p.cookie, 0);
    struct group *g = s->groups[p.group];
    if (g && s->state == ST_READY) group_advance(s, g);
}

/* ---- the API ------------------------------------------------------------------------------------- */

struct store *store_create(const struct rq_io *io, const struct store_config *cfg,
                           const struct store_callbacks *cb, void *cb_arg) {
    RQ_ASSERT(cfg->tail_entries_max >= 1);
    struct store *s = calloc(1, sizeof *s);
    RQ_ASSERT(s != NULL);
    s->io = io;
    s->cfg = *cfg;
    s->cb = *cb;
    s->cb_arg = cb_arg;
    store_wal_config_default(&s->wal_cfg);
    s->wal_cfg.payload_bytes_max = STORE_PAYLOAD_MAX + WAL_META;
    s->wal_cfg.file_bytes_max = cfg->wal_file_bytes_max;
    RQ_ASSERT(store_wal_config_check(&s->wal_cfg) == 0);
    size_t wal_mem_size = store_wal_memory_size(&s->wal_cfg);
    s->wal_mem = malloc(wal_mem_size);
    s->pending = calloc(PENDING_MAX, sizeof *s->pending);
    s->wal_payload = malloc(STORE_PAYLOAD_MAX + WAL_META);
    s->flush_buf = malloc(FLUSH_BUF);
    RQ_ASSERT(s->wal_mem && s->pending && s->wal_payload && s->flush_buf);
    static const struct store_wal_callbacks wal_cb = {on_wal_replay, on_wal_recovered, on_wal_durable};
    store_wal_init(&s->wal, io, &s->wal_cfg, s->wal_mem, wal_mem_size, &wal_cb, s);
    RQ_ASSERT(cfg->block_bytes_max >= STORE_BLOCK_SIZE_MIN && cfg->block_bytes_max <= SEGMENT_BLOCK_SIZE);
    RQ_ASSERT(cfg->segment_bytes_max >= cfg->block_bytes_max);
    s->seg_cfg.block_size_max = cfg->block_bytes_max;
    s->seg_cfg.segment_size_max = cfg->segment_bytes_max;
    s->seg_buf_size = 2 * store_segment_buf_size_min(&s->seg_cfg);
    return s;
}

void store_destroy(struct store *s) {
    if (s == NULL) return;
    for (uint32_t i = 0; i < STORE_GROUPS_MAX; i++) {
        if (s->groups[i]) group_free(s, s->groups[i]);
    }
    free(s->wal_mem);
    free(s->pending);
    free(s->wal_payload);
    free(s->flush_buf);
    free(s);
}

void store_open(struct store *s) {
    RQ_ASSERT(s->state == ST_NEW);
    s->state = ST_LISTING;
    memset(&s->list_req, 0, sizeof s->list_req);
    s->list_req.op = RQ_DISK_LIST;
    s->list_req.buf = s->list_buf;
    s->list_req.len = sizeof s->list_buf;
    s->io->disk(s->io->env, &s->list_req);
}

static int pending_push(struct store *s, uint64_t group, uint64_t index, uint64_t cookie, uint64_t lsn,
                        int is_entry) {
    RQ_ASSERT(s->pending_count < PENDING_MAX);
    struct pending *p = &s->pending[(s->pending_head + s->pending_count) % PENDING_MAX];
    s->pending_count++;
    p->group = group;
    p->index = index;
    p->cookie = cookie;
    p->lsn = lsn;
    p->is_entry = is_entry;
    return 0;
}

int store_append(struct store *s, uint64_t group, const struct store_entry *e, uint64_t cookie) {
    if (s->state == ST_FAILED) return s->err;
    RQ_ASSERT(s->state == ST_READY);
    if (e->payload_size > STORE_PAYLOAD_MAX || e->payload_size + BLOCK_OVERHEAD > s->cfg.block_bytes_max) {
        return RQ_ETOOBIG;
    }
    struct group *g = group_get(s, group, 1);
    if (g == NULL || e->index == 0 || e->term == 0) return RQ_EINVAL;
    int empty = g->tail_count == 0 && seg_view_last(g) < g->seg_first;
    if (!empty && e->index != log_last(g) + 1) return RQ_EINVAL;
    if (g->tail_count == g->tail_cap || s->pending_count == PENDING_MAX ||
        s->tail_bytes + e->payload_size > s->cfg.tail_bytes_max) {
        return RQ_EBUSY;
    }
    rq_put_u32(s->wal_payload, e->message_count);
    rq_put_u64(s->wal_payload + 4, e->timestamp);
    if (e->payload_size) memcpy(s->wal_payload + WAL_META, e->payload, e->payload_size);
    struct store_wal_record rec = {
        .group_id = group,
        .term = e->term,
        .index = e->index,
        .kind = STORE_WAL_ENTRY,
        .payload = s->wal_payload,
        .payload_size = e->payload_size + WAL_META,
    };
    uint64_t lsn;
    int rc = store_wal_append(&s->wal, &rec, &lsn);
    if (rc != 0) return rc;
    pending_push(s, group, e->index, cookie, lsn, 1);
    rc = tail_push(s, g, e, lsn);
    RQ_ASSERT(rc == 0);  /* room was checked above */
    s->stats.appends++;
    return 0;
}

int store_truncate(struct store *s, uint64_t group, uint64_t from_index) {
    if (s->state == ST_FAILED) return s->err;
    RQ_ASSERT(s->state == ST_READY);
    struct group *g = group_get(s, group, 0);
    if (g == NULL) return RQ_ERANGE;
    uint64_t first = log_first(g), last = log_last(g);
    if (from_index == 0 || from_index > last || last < first) return RQ_ERANGE;
    if (s->pending_count == PENDING_MAX) return RQ_EBUSY;
    /* The record keeps from_index as given: below the first index it voids everything, also the
     * WAL records of segments compaction deleted, which a recovery with no segments left would
     * replay (then the log after a snapshot would not continue them). */
    struct store_wal_record rec = {
        .group_id = group, .term = 0, .index = from_index, .kind = STORE_WAL_TRUNCATE,
        .payload = NULL, .payload_size = 0,
    };
    if (from_index < first) from_index = first;
    uint64_t lsn;
    int rc = store_wal_append(&s->wal, &rec, &lsn);
    if (rc != 0) return rc;
    pending_push(s, group, from_index, 0, lsn, 0);
    /* Entries already in the segments (or on their way there) are voided now and cut once the
     * TRUNCATE record is durable. */
    if (from_index <= seg_view_last(g) || (g->op == SEG_FLUSH && from_index <= g->flush_last)) {
        if (from_index < g->void_from) g->void_from = from_index;
        g->void_lsn = lsn;
    }
    while (g->tail_count && tail_at(g, g->tail_count - 1)->index >= from_index) {
        uint64_t victim = tail_at(g, g->tail_count - 1)->lsn;
        if (g->victim_lsn == 0 || victim < g->victim_lsn) g->victim_lsn = victim;
        g->victim_until = lsn;
        tail_pop_back(s, g);
    }
    return 0;
}

int store_compact(struct store *s, uint64_t group, uint64_t below_index) {
    if (s->state == ST_FAILED) return s->err;
    RQ_ASSERT(s->state == ST_READY);
    struct group *g = group_get(s, group, 0);
    if (g == NULL) return RQ_ERANGE;
    if (below_index > g->compact_below) g->compact_below = below_index;
    group_advance(s, g);
    return 0;
}

/* Serves a read from the tail, calling read_done before returning. */
static void read_from_memory(struct store *s, struct group *g, uint64_t from_index, uint32_t max_entries,
                             uint64_t cookie) {
    uint32_t n = 0;
    if (g->tail_count && from_index >= tail_at(g, 0)->index) {
        for (uint64_t k = from_index - tail_at(g, 0)->index; k < g->tail_count && n < max_entries; k++) {
            struct tail_entry *t = tail_at(g, (uint32_t)k);
            struct store_entry *e = &g->read_out[n++];
            memset(e, 0, sizeof *e);
            e->index = t->index;
            e->term = t->term;
            e->message_count = t->message_count;
            e->timestamp = t->timestamp;
            e->payload = t->payload;
            e->payload_size = t->payload_size;
        }
    }
    s->stats.reads_from_memory++;
    s->cb.read_done(s->cb_arg, cookie, n ? 0 : RQ_ERANGE, g->read_out, n);
}

int store_retention(struct store *s, uint64_t group, uint64_t now_ns, uint64_t ttl_ns,
                    uint64_t size_limit, uint64_t snapshot_index) {
    if (s->state == ST_FAILED) return s->err;
    RQ_ASSERT(s->state == ST_READY);
    struct group *g = group_get(s, group, 0);
    if (g == NULL) return RQ_ERANGE;
    g->retention.now = now_ns;
    g->retention.ttl = ttl_ns;
    g->retention.size_limit = size_limit;
    g->retention.snapshot_index = snapshot_index;
    g->retention_due = 1;
    group_advance(s, g);
    return 0;
}

int store_read(struct store *s, uint64_t group, uint64_t from_index, uint32_t max_entries, uint64_t cookie) {
    if (s->state == ST_FAILED) return s->err;
    RQ_ASSERT(s->state == ST_READY);
    RQ_ASSERT(max_entries >= 1 && max_entries <= STORE_READ_ENTRIES_MAX);
    struct group *g = group_get(s, group, 0);
    if (g == NULL || from_index < log_first(g) || from_index > log_last(g)) return RQ_ERANGE;
    if (g->read_pending) return RQ_EBUSY;
    if (g->read_out == NULL) g->read_out = calloc(STORE_READ_ENTRIES_MAX, sizeof *g->read_out);
    RQ_ASSERT(g->read_out != NULL);
    if (g->tail_count && from_index >= tail_at(g, 0)->index) {
        read_from_memory(s, g, from_index, max_entries, cookie);
        return 0;
    }
    g->read_pending = 1;
    g->read_from = from_index;
    g->read_max = max_entries;
    g->read_cookie = cookie;
    group_advance(s, g);
    return 0;
}

void store_range(const struct store *s, uint64_t group, uint64_t *first, uint64_t *last) {
    struct group *g = group < STORE_GROUPS_MAX ? s->groups[group] : NULL;
    if (g == NULL) {
        *first = 1;
        *last = 0;
        return;
    }
    *first = log_first(g);
    *last = log_last(g);
}

void store_tick(struct store *s) {
    if (s->state != ST_READY) return;
    store_wal_tick(&s->wal);
    for (uint32_t i = 0; i < STORE_GROUPS_MAX && s->state == ST_READY; i++) {
        if (s->groups[i]) group_advance(s, s->groups[i]);
    }
}

int store_on_disk_done(struct store *s, struct rq_disk_req *req) {
    if (req == &s->list_req) {
        on_list_done(s);
        return 1;
    }
    if (store_wal_on_disk_done(&s->wal, req)) return 1;
    for (uint32_t i = 0; i < STORE_GROUPS_MAX; i++) {
        if (s->groups[i] && store_segment_on_disk_done(&s->groups[i]->seg, req)) return 1;
    }
    return 0;
}

void store_stats_get(const struct store *s, struct store_stats *out) {
    *out = s->stats;
    out->wal_fsyncs = store_wal_stats(&s->wal)->fsyncs;
}
