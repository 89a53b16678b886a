/* The store workload: crash consistency of a node's storage, in the simulator.
 *
 * Each server runs a store (src/store/store.h) holding STORETEST_GROUPS Raft groups and the hard
 * state of each (src/store/hardstate.h). On its timer it performs random operations: appends of
 * batches of entries, truncations of a suffix (with a new term, as after a Raft conflict),
 * compactions below an index (as after a snapshot), retention passes (TTL and size, never above a
 * snapshot index), and hard-state saves. The simulator crashes
 * it at random points — as a process (page cache kept) or with power loss (unsynced writes
 * torn) — and injects disk faults. After every recovery, every group's whole log is read back and
 * judged by sim/logcheck.h: every durable append present and byte-identical, nothing invented or
 * half-present, no durably truncated suffix back. Each hard state must be one that was saved and
 * at least the last one reported durable. After the heal every server must make progress; at the
 * end every server loses power once more and must recover everything. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "sim/logcheck.h"
#include "sim/sim.h"
#include "base/codec.h"
#include "store/hardstate.h"
#include "store/snapshot.h"
#include "store/store.h"

enum {
    STORETEST_GROUPS = 4,
    STORETEST_BATCH_MAX = 8,
    STORETEST_PAYLOAD_MAX = 600,
    STORETEST_VERIFY_MAX = 1 << 16,    /* entries of one group read back at recovery */
    STORETEST_PENDING_TRUNCS = 64,
    STORETEST_HS_HISTORY = 1 << 12,
    STORETEST_SNAPS_MAX = 1 << 10,          /* snapshots written per group in one run */
    STORETEST_SNAP_DATA_MAX = 200 * 1024,
    STORETEST_SNAP_CHUNK = 64 * 1024,
    STORETEST_SNAP_CONFIG = 32,             /* group, index, term, digest of the data */
};

/* The data of a snapshot: deterministic, so the checker can recompute its digest. */
static uint8_t snap_byte(uint32_t group, uint64_t index, uint64_t term, uint64_t at) {
    return (uint8_t)(rq_mix64(((uint64_t)group << 56) ^ (index << 16) ^ term ^ (at / 8) * 0x9E37u) >> (8 * (at % 8)));
}

static uint64_t snap_digest(uint32_t group, uint64_t index, uint64_t term, uint64_t size) {
    uint64_t h = size;
    for (uint64_t at = 0; at < size; at += 997) h = rq_mix64(h ^ snap_byte(group, index, term, at));
    return h;
}

static void snap_config(uint8_t *out, uint32_t group, uint64_t index, uint64_t term, uint64_t size) {
    rq_put_u64(out, group);
    rq_put_u64(out + 8, index);
    rq_put_u64(out + 16, term);
    rq_put_u64(out + 24, snap_digest(group, index, term, size));
}

/* ---- the checker (lives across node incarnations) --------------------------------------------- */

struct st_hs_truth {
    uint64_t terms[STORETEST_HS_HISTORY];   /* every (term, vote) saved, in order */
    uint32_t votes[STORETEST_HS_HISTORY];
    uint32_t count;
    uint32_t durable;                        /* index into the history of the newest durable one */
};

struct st_snap_truth {
    uint64_t index[STORETEST_SNAPS_MAX];   /* every snapshot begun, in order */
    uint64_t term[STORETEST_SNAPS_MAX];
    uint64_t size[STORETEST_SNAPS_MAX];
    uint32_t count;
    uint64_t durable_index;                 /* newest reported durable (0: none) */
};

struct st_server_truth {
    struct logcheck *log;
    struct st_snap_truth snaps[STORETEST_GROUPS];
    uint64_t compact_below[STORETEST_GROUPS];   /* highest compaction ever requested */
    struct st_hs_truth hs[STORETEST_GROUPS];
    uint64_t pending_trunc_seq[STORETEST_PENDING_TRUNCS];
    uint32_t pending_trunc_group[STORETEST_PENDING_TRUNCS];
    uint32_t pending_truncs;
    uint64_t durable_appends;
    uint64_t durable_at_heal;
    int recovered;
    int retired;     /* found corruption the simulator injected: refuses to serve, for good */
};

struct storetest {
    struct sim *sim;
    struct st_server_truth servers[SIM_SERVERS_MAX + 1];
};

static void *storetest_init(struct sim *s) {
    struct storetest *t = calloc(1, sizeof *t);
    RQ_ASSERT(t != NULL);
    t->sim = s;
    for (uint32_t n = 1; n <= sim_servers(s); n++) {
        t->servers[n].log = logcheck_create(STORETEST_GROUPS);
        for (uint32_t g = 0; g < STORETEST_GROUPS; g++) t->servers[n].hs[g].count = 1;  /* (0, 0) */
    }
    return t;
}

static void storetest_fini(void *w) {
    struct storetest *t = w;
    for (uint32_t n = 0; n <= SIM_SERVERS_MAX; n++) logcheck_destroy(t->servers[n].log);
    free(t);
}

/* A durable record with logcheck sequence `seq` makes every earlier truncation durable too: the
 * store puts appends and truncations through one WAL, in order. */
static void truth_durable(struct st_server_truth *v, uint32_t group, uint64_t seq) {
    logcheck_durable(v->log, group, seq);
    v->durable_appends++;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < v->pending_truncs; i++) {
        if (v->pending_trunc_seq[i] < seq) {
            logcheck_durable(v->log, v->pending_trunc_group[i], v->pending_trunc_seq[i]);
        } else {
            v->pending_trunc_seq[kept] = v->pending_trunc_seq[i];
            v->pending_trunc_group[kept] = v->pending_trunc_group[i];
            kept++;
        }
    }
    v->pending_truncs = kept;
}

/* ---- the node ---------------------------------------------------------------------------------- */

struct st_entry_copy {
    uint64_t index;
    uint64_t term;
    uint8_t *payload;
    uint32_t size;
};

struct st_node {
    const struct rq_io *io;
    struct storetest *t;
    struct st_server_truth *truth;
    struct rq_rng rng;
    struct store *store;
    struct store_hardstate hs[STORETEST_GROUPS];
    struct store_snapshot snap[STORETEST_GROUPS];
    uint64_t snap_written[STORETEST_GROUPS];   /* data bytes handed to the snapshot being written */
    int snap_writing[STORETEST_GROUPS];
    uint32_t snap_entry[STORETEST_GROUPS];     /* its position in the truth */
    uint8_t snap_chunk[STORETEST_SNAP_CHUNK];
    int opened;                 /* store recovered */
    uint32_t hs_loaded;         /* hard states and snapshots loaded */
    int running;
    uint64_t term[STORETEST_GROUPS];       /* the term new entries get */
    uint32_t hs_vote[STORETEST_GROUPS];
    /* verification of one group at a time */
    uint32_t verify_group;
    uint64_t verify_first;
    uint64_t verify_last;
    struct st_entry_copy *verify;
    uint64_t verify_count;
    uint8_t payload[STORETEST_PAYLOAD_MAX];
    /* the census of files after recovery: directories still to list */
    struct rq_disk_req list_req;
    char list_buf[16384];
    char dirs[STORETEST_GROUPS + 2][RQ_DISK_PATH_MAX];
    uint32_t dir_count;
    uint32_t dir_next;
};

static uint32_t node_id(const struct st_node *n) { return n->io->node_id; }

/* Errors a correct store may report under injected faults: the node must fail-stop (and the
 * simulator restarts it). EIO: a failed fsync. ENOSPC: the disk filled during recovery or a
 * background flush to the segments (appends only ever see it as RQ_EBUSY). */
static int fatal_but_legal(int err) { return err == RQ_EIO || err == RQ_ENOSPC; }

/* Every other error fails the run — except corruption the simulator really injected into this
 * server's disk: detecting it and refusing to serve is the correct answer. The server retires. */
static void node_fail(struct st_node *n, const char *what, int err) {
    if (err == RQ_ECORRUPT && sim_disk_any_corrupted(sim_disk(n->t->sim, node_id(n)))) {
        RQ_WARN("store: %s found the injected corruption: this server retires", what);
        n->truth->retired = 1;
        n->running = 0;
        return;
    }
    sim_fail(n->t->sim, "store: n%u %s: %s", node_id(n), what, rq_strerror(err));
}

static void verify_next_group(struct st_node *n);

static void verify_entry(void *arg, uint64_t k, uint64_t *index, uint64_t *term, const uint8_t **payload,
                         size_t *len) {
    const struct st_node *n = arg;
    *index = n->verify[k].index;
    *term = n->verify[k].term;
    *payload = n->verify[k].payload;
    *len = n->verify[k].size;
}

static void verify_free(struct st_node *n) {
    for (uint64_t k = 0; k < n->verify_count; k++) free(n->verify[k].payload);
    n->verify_count = 0;
}

/* The whole log of verify_group has been read: judge it. */
static void verify_judge(struct st_node *n) {
    uint32_t g = n->verify_group;
    struct st_server_truth *v = n->truth;
    char why[LOGCHECK_WHY_MAX];
    uint64_t limit = v->compact_below[g] > 1 ? v->compact_below[g] : 1;
    if (n->verify_first > limit) {
        sim_fail(n->t->sim, "store: n%u group %u starts at %llu, but nothing was compacted past %llu",
                 node_id(n), g, (unsigned long long)n->verify_first, (unsigned long long)limit);
    } else if (logcheck_judge(v->log, g, n->verify_first, n->verify_count, verify_entry, n, why) != 0) {
        sim_fail(n->t->sim, "store: n%u: %s", node_id(n), why);
    } else {
        logcheck_settle(v->log, g, n->verify_first, n->verify_count, verify_entry, n);
    }
    n->term[g] = n->verify_count ? n->verify[n->verify_count - 1].term + 1 : 1;
    verify_free(n);
    n->verify_group++;
    verify_next_group(n);
}

static void verify_read_more(struct st_node *n) {
    uint64_t next = n->verify_first + n->verify_count;
    if (next > n->verify_last) {
        verify_judge(n);
        return;
    }
    int rc = store_read(n->store, n->verify_group, next, STORE_READ_ENTRIES_MAX, n->verify_group);
    if (rc == 0) return;
    if (fatal_but_legal(rc)) n->io->halt(n->io->env, "the store failed during verification");
    else node_fail(n, "store_read during verification", rc);
}

static int all_hex(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    }
    return 1;
}

static int all_digits(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
    }
    return 1;
}

/* Whether recovery can explain a file named `name` in directory `dir` ("" = the data directory). */
static int name_explained(const char *dir, const char *name) {
    size_t len = strlen(name);
    if (dir[0] == '\0') {
        if (strcmp(name, "wal") == 0) return 1;
        if (len == 17 && name[0] == 'g' && all_hex(name + 1, 16)) return 1;
        if (len == 43 && name[0] == 's' && all_hex(name + 1, 16) && name[17] == '-' && all_digits(name + 18, 20) &&
            (strcmp(name + 38, ".snap") == 0 || strcmp(name + 38, ".tmp") == 0)) {
            return 1;
        }
        return len == 23 && strncmp(name, "hs-", 3) == 0 && all_hex(name + 3, 16) &&
               (strcmp(name + 19, ".dat") == 0 || strcmp(name + 19, ".tmp") == 0);
    }
    if (strcmp(dir, "wal") == 0) return len == 20 && all_hex(name, 16) && strcmp(name + 16, ".log") == 0;
    return len == 24 && all_digits(name, 20) && (strcmp(name + 20, ".seg") == 0 || strcmp(name + 20, ".cut") == 0);
}

static void census_next(struct st_node *n) {
    if (n->dir_next == n->dir_count) {
        n->truth->recovered = 1;
        n->running = 1;
        RQ_INFO("store: recovered and verified %u groups; every file explained", STORETEST_GROUPS);
        n->io->set_timer(n->io->env, n->io->now(n->io->env) + 1000000);
        return;
    }
    memset(&n->list_req, 0, sizeof n->list_req);
    n->list_req.op = RQ_DISK_LIST;
    snprintf(n->list_req.path, sizeof n->list_req.path, "%s", n->dirs[n->dir_next]);
    n->list_req.buf = n->list_buf;
    n->list_req.len = sizeof n->list_buf;
    n->io->disk(n->io->env, &n->list_req);
}

static void census_listed(struct st_node *n) {
    const char *dir = n->dirs[n->dir_next++];
    if (n->list_req.result < 0) {
        if (fatal_but_legal((int)n->list_req.result)) n->io->halt(n->io->env, "listing failed");
        else node_fail(n, "listing the data directory", (int)n->list_req.result);
        return;
    }
    const char *name = n->list_buf;
    for (int64_t i = 0; i < n->list_req.result; i++, name += strlen(name) + 1) {
        if (!name_explained(dir, name)) {
            sim_fail(n->t->sim, "store: n%u: recovery left a file it cannot explain: %s%s%s", node_id(n), dir,
                     dir[0] ? "/" : "", name);
            return;
        }
        int is_dir = dir[0] == '\0' && (strcmp(name, "wal") == 0 || name[0] == 'g');
        size_t len = strlen(name);
        if (is_dir && n->dir_count < STORETEST_GROUPS + 2 && len < RQ_DISK_PATH_MAX) {
            memcpy(n->dirs[n->dir_count++], name, len + 1);
        }
    }
    census_next(n);
}

/* Logs judged; the hard states were judged as they loaded: take the census, then run. */
static void verify_done(struct st_node *n) {
    n->dir_count = 1;
    n->dir_next = 0;
    n->dirs[0][0] = '\0';
    census_next(n);
}

static void verify_next_group(struct st_node *n) {
    if (n->verify_group == STORETEST_GROUPS) {
        if (n->hs_loaded == 2 * STORETEST_GROUPS) verify_done(n);
        return;
    }
    store_range(n->store, n->verify_group, &n->verify_first, &n->verify_last);
    uint64_t count = n->verify_last + 1 - n->verify_first;
    if (count > STORETEST_VERIFY_MAX) {
        sim_fail(n->t->sim, "store: n%u group %u holds %llu entries, more than the test reads back",
                 node_id(n), n->verify_group, (unsigned long long)count);
        return;
    }
    n->verify_count = 0;
    verify_read_more(n);
}

static void on_opened(void *arg, int err) {
    struct st_node *n = arg;
    if (err != 0) {
        if (fatal_but_legal(err)) n->io->halt(n->io->env, "store recovery hit an I/O error");
        else node_fail(n, "recovery", err);
        return;
    }
    n->opened = 1;
    n->verify_group = 0;
    verify_next_group(n);
}

static void on_read_done(void *arg, uint64_t cookie, int err, const struct store_entry *e, uint32_t count) {
    struct st_node *n = arg;
    if (err != 0) {
        if (fatal_but_legal(err)) n->io->halt(n->io->env, "store read hit an I/O error");
        else node_fail(n, "store_read", err);
        return;
    }
    RQ_ASSERT(cookie == n->verify_group);
    if (count == 0) {
        sim_fail(n->t->sim, "store: n%u group %u: read at %llu returned nothing inside the range", node_id(n),
                 n->verify_group, (unsigned long long)(n->verify_first + n->verify_count));
        return;
    }
    for (uint32_t i = 0; i < count; i++) {
        struct st_entry_copy *c = &n->verify[n->verify_count++];
        c->index = e[i].index;
        c->term = e[i].term;
        c->size = e[i].payload_size;
        c->payload = malloc(c->size ? c->size : 1);
        RQ_ASSERT(c->payload != NULL);
        if (c->size) memcpy(c->payload, e[i].payload, c->size);
    }
    verify_read_more(n);
}

static void on_durable(void *arg, uint64_t group, uint64_t index, uint64_t cookie, int err) {
    struct st_node *n = arg;
    (void)index;
    if (err != 0) {
        if (fatal_but_legal(err)) n->io->halt(n->io->env, "the store failed (fsync or disk full)");
        else node_fail(n, "append", err);
        return;
    }
    truth_durable(n->truth, (uint32_t)group, cookie);
}

static void on_failed(void *arg, int err) {
    struct st_node *n = arg;
    if (fatal_but_legal(err)) n->io->halt(n->io->env, "the store failed (fsync or disk full)");
    else node_fail(n, "the store", err);
}

/* ---- hard state -------------------------------------------------------------------------------- */

struct st_hs_ctx {
    struct st_node *node;
    uint32_t group;
};
static struct st_hs_ctx hs_ctx[SIM_SERVERS_MAX + 1][STORETEST_GROUPS];

static void on_hardstate(void *arg, const struct store_hardstate_result *r) {
    struct st_hs_ctx *ctx = arg;
    struct st_node *n = ctx->node;
    struct st_hs_truth *h = &n->truth->hs[ctx->group];
    if (r->err != 0) {
        if (fatal_but_legal(r->err)) n->io->halt(n->io->env, "hard state fsync failed");
        else node_fail(n, "hard state", r->err);
        return;
    }
    /* The value must be one saved, no older than the newest reported durable. */
    uint32_t at = h->count;
    for (uint32_t i = h->durable; i < h->count; i++) {
        if (h->terms[i] == r->term && h->votes[i] == r->vote) at = i;
    }
    if (at == h->count) {
        sim_fail(n->t->sim, "store: n%u group %u hard state (%llu, %u) was never saved or is older than a durable one",
                 node_id(n), ctx->group, (unsigned long long)r->term, (unsigned)r->vote);
        return;
    }
    h->durable = at;
    if (r->event == STORE_HARDSTATE_LOADED) {
        n->hs_vote[ctx->group] = r->vote;
        h->count = at + 1;  /* saves after it in the history were lost: forget them */
        n->hs_loaded++;
        if (n->hs_loaded == 2 * STORETEST_GROUPS && n->opened && n->verify_group == STORETEST_GROUPS) verify_done(n);
    }
}

static void hs_save_random(struct st_node *n, uint32_t g) {
    struct st_hs_truth *h = &n->truth->hs[g];
    if (h->count == STORETEST_HS_HISTORY || store_hardstate_busy(&n->hs[g])) return;
    uint64_t term = h->terms[h->count - 1];
    uint32_t vote = h->votes[h->count - 1];
    if (vote == 0 && rq_rng_chance(&n->rng, RQ_PPM / 2)) vote = (uint32_t)rq_rng_range(&n->rng, 1, 5);
    else {
        term++;
        vote = rq_rng_chance(&n->rng, RQ_PPM / 2) ? (uint32_t)rq_rng_range(&n->rng, 1, 5) : 0;
    }
    if (store_hardstate_save(&n->hs[g], term, vote, NULL) != 0) return;  /* failed: sticky, halting */
    h->terms[h->count] = term;
    h->votes[h->count] = vote;
    h->count++;
}

/* ---- snapshots ------------------------------------------------------------------------------------ */

static void snap_write_next(struct st_node *n, uint32_t g) {
    struct st_snap_truth *t = &n->truth->snaps[g];
    uint32_t e = n->snap_entry[g];
    uint64_t left = t->size[e] - n->snap_written[g];
    if (left == 0) {
        int rc = store_snapshot_write_finish(&n->snap[g]);
        if (rc != 0 && !fatal_but_legal(rc)) node_fail(n, "snapshot finish", rc);
        return;
    }
    size_t len = left < STORETEST_SNAP_CHUNK ? (size_t)left : STORETEST_SNAP_CHUNK;
    for (size_t i = 0; i < len; i++) n->snap_chunk[i] = snap_byte(g, t->index[e], t->term[e], n->snap_written[g] + i);
    int rc = store_snapshot_write(&n->snap[g], n->snap_chunk, len);
    if (rc != 0) {
        if (!fatal_but_legal(rc)) node_fail(n, "snapshot write", rc);
        return;
    }
    n->snap_written[g] += len;
}

/* A snapshot at an index of the log, then compaction behind it (as Raft does). */
static void op_snapshot(struct st_node *n, uint32_t g) {
    struct st_snap_truth *t = &n->truth->snaps[g];
    uint64_t first, last;
    store_range(n->store, g, &first, &last);
    struct store_snapshot_header cur = {0};
    int have = store_snapshot_current(&n->snap[g], &cur);
    if (n->snap_writing[g] || last < first || t->count == STORETEST_SNAPS_MAX) return;
    uint64_t lo = have && cur.index + 1 > first ? cur.index + 1 : first;
    if (lo > last) return;
    uint64_t index = rq_rng_range(&n->rng, lo, last);
    uint64_t term = n->term[g] > cur.term ? n->term[g] : cur.term;
    uint64_t size = rq_rng_range(&n->rng, 0, STORETEST_SNAP_DATA_MAX);
    uint8_t config[STORETEST_SNAP_CONFIG];
    snap_config(config, g, index, term, size);
    int rc = store_snapshot_write_begin(&n->snap[g], index, term, config, sizeof config);
    if (rc == RQ_EBUSY) return;
    if (rc != 0) {
        if (!fatal_but_legal(rc)) node_fail(n, "snapshot begin", rc);
        return;
    }
    t->index[t->count] = index;
    t->term[t->count] = term;
    t->size[t->count] = size;
    n->snap_entry[g] = t->count++;
    n->snap_writing[g] = 1;
    n->snap_written[g] = 0;
    snap_write_next(n, g);
}

/* A snapshot found at open or just installed must be one that was written, whole, and no older
 * than the newest reported durable. */
static void snap_check(struct st_node *n, uint32_t g, const struct store_snapshot_result *r) {
    struct st_snap_truth *t = &n->truth->snaps[g];
    if (!r->found) {
        if (t->durable_index) sim_fail(n->t->sim, "store: n%u group %u lost its snapshot at %llu", node_id(n), g,
                                       (unsigned long long)t->durable_index);
        return;
    }
    uint8_t want[STORETEST_SNAP_CONFIG];
    snap_config(want, g, r->meta.index, r->meta.term, r->meta.data_size);
    int written = 0;
    for (uint32_t i = 0; i < t->count && !written; i++) {
        written = t->index[i] == r->meta.index && t->term[i] == r->meta.term && t->size[i] == r->meta.data_size;
    }
    if (!written || r->meta.config_size != sizeof want || memcmp(r->config, want, sizeof want) != 0) {
        sim_fail(n->t->sim, "store: n%u group %u has a snapshot at %llu that was never written as it is", node_id(n),
                 g, (unsigned long long)r->meta.index);
    } else if (r->meta.index < t->durable_index) {
        sim_fail(n->t->sim, "store: n%u group %u snapshot went back from %llu to %llu", node_id(n), g,
                 (unsigned long long)t->durable_index, (unsigned long long)r->meta.index);
    } else {
        t->durable_index = r->meta.index;
    }
}

struct st_snap_ctx {
    struct st_node *node;
    uint32_t group;
};
static struct st_snap_ctx snap_ctx[SIM_SERVERS_MAX + 1][STORETEST_GROUPS];

static void on_snapshot(void *arg, const struct store_snapshot_result *r) {
    struct st_snap_ctx *ctx = arg;
    struct st_node *n = ctx->node;
    uint32_t g = ctx->group;
    if (r->err != 0 && (r->fatal || r->event == STORE_SNAPSHOT_OPENED)) {
        if (fatal_but_legal(r->err)) n->io->halt(n->io->env, "snapshot store failed");
        else node_fail(n, "snapshot store", r->err);
        return;
    }
    switch (r->event) {
    case STORE_SNAPSHOT_OPENED:
        snap_check(n, g, r);
        n->hs_loaded++;
        if (n->hs_loaded == 2 * STORETEST_GROUPS && n->opened && n->verify_group == STORETEST_GROUPS) verify_done(n);
        break;
    case STORE_SNAPSHOT_CHUNK_DONE: snap_write_next(n, g); break;
    case STORE_SNAPSHOT_FINISHED:
        n->snap_writing[g] = 0;
        if (r->err != 0) break;  /* e.g. disk full: the previous snapshot stays current */
        snap_check(n, g, r);
        if (n->running && store_compact(n->store, g, r->meta.index) == 0 &&
            r->meta.index > n->truth->compact_below[g]) {
            n->truth->compact_below[g] = r->meta.index;
        }
        break;
    default: break;
    }
}

/* ---- operations ---------------------------------------------------------------------------------- */

static void op_append_batch(struct st_node *n, uint32_t g) {
    uint64_t first, last;
    store_range(n->store, g, &first, &last);
    uint32_t count = (uint32_t)rq_rng_range(&n->rng, 1, STORETEST_BATCH_MAX);
    for (uint32_t k = 0; k < count; k++) {
        uint32_t size = (uint32_t)rq_rng_range(&n->rng, 0, STORETEST_PAYLOAD_MAX);
        for (uint32_t i = 0; i < size; i++) n->payload[i] = (uint8_t)rq_rng_next(&n->rng);
        struct store_entry e = {
            .index = last + 1 + k,
            .term = n->term[g],
            .message_count = 1,
            .timestamp = n->io->now(n->io->env),
            .payload = n->payload,
            .payload_size = size,
        };
        uint64_t seq = logcheck_next_seq(n->truth->log);
        int rc = store_append(n->store, g, &e, seq);
        if (rc == RQ_EBUSY) return;  /* backpressure: try again on a later tick */
        if (rc != 0) {
            if (!fatal_but_legal(rc)) node_fail(n, "store_append", rc);
            return;
        }
        uint64_t got = logcheck_append(n->truth->log, g, e.index, e.term, e.payload, e.payload_size);
        RQ_ASSERT(got == seq);
    }
}

static void op_truncate(struct st_node *n, uint32_t g) {
    struct st_server_truth *v = n->truth;
    uint64_t first, last;
    store_range(n->store, g, &first, &last);
    if (last < first || v->pending_truncs == STORETEST_PENDING_TRUNCS) return;
    uint64_t lo = last >= first + 12 ? last - 12 : first;
    uint64_t from = rq_rng_range(&n->rng, lo, last);
    int rc = store_truncate(n->store, g, from);
    if (rc == RQ_EBUSY) return;
    if (rc != 0) {
        if (!fatal_but_legal(rc)) node_fail(n, "store_truncate", rc);
        return;
    }
    v->pending_trunc_seq[v->pending_truncs] = logcheck_truncate(v->log, g, from);
    v->pending_trunc_group[v->pending_truncs] = g;
    v->pending_truncs++;
    n->term[g]++;  /* a new leader's entries follow */
}

static void op_compact(struct st_node *n, uint32_t g) {
    uint64_t first, last;
    store_range(n->store, g, &first, &last);
    if (last < first + 50) return;
    uint64_t below = rq_rng_range(&n->rng, first, last - 40);
    int rc = store_compact(n->store, g, below);
    if (rc == RQ_EBUSY) return;
    if (rc != 0) {
        if (!fatal_but_legal(rc)) node_fail(n, "store_compact", rc);
        return;
    }
    if (below > n->truth->compact_below[g]) n->truth->compact_below[g] = below;
}

/* Retention with a short TTL and a small size limit, guarded by a snapshot index. */
static void op_retention(struct st_node *n, uint32_t g) {
    uint64_t first, last;
    store_range(n->store, g, &first, &last);
    if (last < first + 50) return;
    uint64_t snapshot_index = rq_rng_range(&n->rng, first, last - 40);
    uint64_t ttl = rq_rng_range(&n->rng, 1, 500) * 1000000ull;
    uint64_t size_limit = rq_rng_chance(&n->rng, RQ_PPM / 2) ? rq_rng_range(&n->rng, 1, 200) * 1024 : 0;
    int rc = store_retention(n->store, g, n->io->now(n->io->env), ttl, size_limit, snapshot_index);
    if (rc != 0) {
        if (!fatal_but_legal(rc)) node_fail(n, "store_retention", rc);
        return;
    }
    if (snapshot_index > n->truth->compact_below[g]) n->truth->compact_below[g] = snapshot_index;
}

static void node_on_timer(void *node) {
    struct st_node *n = node;
    if (!n->running) return;
    n->io->set_timer(n->io->env, n->io->now(n->io->env) + rq_rng_range(&n->rng, 500000, 3000000));
    store_tick(n->store);
    uint32_t g = (uint32_t)rq_rng_below(&n->rng, STORETEST_GROUPS);
    uint64_t dice = rq_rng_below(&n->rng, 100);
    if (dice < 70) op_append_batch(n, g);
    else if (dice < 78) op_truncate(n, g);
    else if (dice < 80) op_compact(n, g);
    else if (dice < 82) op_retention(n, g);
    else if (dice < 83) op_snapshot(n, g);
    else if (dice < 92) hs_save_random(n, g);
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

static void *node_create(const struct rq_io *io, const void *config) {
    struct st_node *n = calloc(1, sizeof *n);
    if (n == NULL) return NULL;
    n->io = io;
    n->t = (struct storetest *)config;
    n->truth = &n->t->servers[io->node_id];
    n->verify = calloc(STORETEST_VERIFY_MAX, sizeof *n->verify);
    RQ_ASSERT(n->verify != NULL);
    rq_rng_seed(&n->rng, io->seed);
    struct store_config cfg;
    store_config_default(&cfg);
    /* small files, so rolls, flushes and trims happen often */
    cfg.wal_file_bytes_max = 64 * 1024;
    cfg.segment_bytes_max = 48 * 1024;
    cfg.block_bytes_max = 4 * 1024;
    cfg.tail_entries_max = 256;
    static const struct store_callbacks cb = {on_opened, on_durable, on_read_done, on_failed};
    n->store = store_create(io, &cfg, &cb, n);
    for (uint32_t g = 0; g < STORETEST_GROUPS; g++) {
        hs_ctx[io->node_id][g].node = n;
        hs_ctx[io->node_id][g].group = g;
        store_hardstate_init(&n->hs[g], io, g, on_hardstate, &hs_ctx[io->node_id][g]);
        snap_ctx[io->node_id][g].node = n;
        snap_ctx[io->node_id][g].group = g;
        store_snapshot_init(&n->snap[g], io, g, on_snapshot, &snap_ctx[io->node_id][g]);
    }
    return n;
}

static void node_destroy(void *node) {
    struct st_node *n = node;
    verify_free(n);
    free(n->verify);
    store_destroy(n->store);
    free(n);
}

static void node_on_start(void *node) {
    struct st_node *n = node;
    if (n->truth->retired) return;  /* refuses to start on data it cannot verify */
    n->truth->recovered = 0;
    n->truth->pending_truncs = 0;  /* undecided truncations stay undecided (not durable) */
    store_open(n->store);
    for (uint32_t g = 0; g < STORETEST_GROUPS; g++) store_hardstate_load(&n->hs[g]);
    for (uint32_t g = 0; g < STORETEST_GROUPS; g++) store_snapshot_open(&n->snap[g]);
}

static void node_on_disk_done(void *node, struct rq_disk_req *req) {
    struct st_node *n = node;
    if (req == &n->list_req) {
        census_listed(n);
        return;
    }
    if (store_on_disk_done(n->store, req)) return;
    for (uint32_t g = 0; g < STORETEST_GROUPS; g++) {
        if (store_hardstate_on_disk_done(&n->hs[g], req)) return;
        if (store_snapshot_on_disk_done(&n->snap[g], req)) return;
    }
    RQ_UNREACHABLE();
}

static void node_on_peer_message(void *node, uint32_t from, const void *buf, size_t len) {
    (void)node;
    (void)from;
    (void)buf;
    (void)len;
}

static void node_on_client_message(void *node, uint64_t conn, const void *buf, size_t len) {
    (void)node;
    (void)conn;
    (void)buf;
    (void)len;
}

static void node_on_conn_closed(void *node, uint64_t conn) {
    (void)node;
    (void)conn;
}

static const struct rq_node_ops storetest_ops = {
    .name = "store",
    .create = node_create,
    .destroy = node_destroy,
    .on_start = node_on_start,
    .on_timer = node_on_timer,
    .on_peer_message = node_on_peer_message,
    .on_client_message = node_on_client_message,
    .on_disk_done = node_on_disk_done,
    .on_conn_closed = node_on_conn_closed,
};

static void storetest_on_heal(struct sim *s, void *w) {
    struct storetest *t = w;
    for (uint32_t n = 1; n <= sim_servers(s); n++) t->servers[n].durable_at_heal = t->servers[n].durable_appends;
}

static void storetest_on_end(struct sim *s, void *w) {
    struct storetest *t = w;
    for (uint32_t n = 1; n <= sim_servers(s) && sim_healed(s); n++) {
        if (t->servers[n].retired) continue;
        if (t->servers[n].durable_appends <= t->servers[n].durable_at_heal) {
            sim_fail(s, "store: n%u made no durable append after the heal", n);
            return;
        }
    }
    for (uint32_t n = 1; n <= sim_servers(s); n++) sim_crash(s, n, 1);
    for (uint32_t n = 1; n <= sim_servers(s); n++) sim_restart(s, n);
    sim_run_until(s, sim_now(s) + 5000000000ull);
    for (uint32_t n = 1; n <= sim_servers(s) && !sim_failed(s); n++) {
        if (t->servers[n].retired) continue;
        if (!t->servers[n].recovered) sim_fail(s, "store: n%u did not recover after the final power loss", n);
    }
}

const struct sim_workload sim_workload_store = {
    .name = "store",
    .server_ops = &storetest_ops,
    .client_ops = NULL,
    .default_clients = 0,
    .corrupt_prefix = "",  /* any file: every store format is checksummed */
    .init = storetest_init,
    .fini = storetest_fini,
    .on_heal = storetest_on_heal,
    .on_end = storetest_on_end,
};
