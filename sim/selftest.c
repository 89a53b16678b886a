/* The selftest workload: the simulator's check of its own models, through io.h only.
 *
 * Each server keeps a journal of records (seq, payload) appended in batches and made durable by
 * fsync, and a small "meta" file (version, base seq) replaced atomically by write-temp + fsync +
 * rename + directory fsync whenever it compacts the journal. It pings its peers and answers
 * clients. After every (re)start it recovers: lists its directory, reads meta, scans the journal
 * (CRC32C per record), truncates a torn tail, and hands every recovered record to the checker.
 *
 * The checker (this file's struct st_checker) knows what each node was told was durable, and
 * fails the run if recovery ever returns less, returns bytes that differ from what was written,
 * finds a file it cannot explain, or loses a meta version that was reported durable. Latent
 * corruption of synced journal bytes may cost records only if the simulator reports it injected
 * some into that journal. After the heal, every node must make new records durable (liveness);
 * at the end every server crashes once more and must recover everything. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "sim/selftest.h"
#include "sim/sim.h"

enum {
    ST_RECORD_HEADER = 16,          /* u32 payload_len, u64 seq, u32 crc32c(seq, payload) */
    ST_PAYLOAD_MAX = 96,
    ST_BATCH_MAX = 8,
    ST_WRITE_BUF = ST_BATCH_MAX * (ST_RECORD_HEADER + ST_PAYLOAD_MAX),
    ST_COMPACT_BYTES = 8 * 1024,    /* compact the journal once it is this large */
    ST_JOURNAL_MAX = 256 * 1024,    /* a journal larger than this is a bug */
    ST_META_SIZE = 28,              /* u32 magic, u64 version, u64 base, u32 crc, u32 pad */
    ST_META_MAGIC = 0x4154454d,     /* "META" */
    ST_LIST_BUF = 1024,
    ST_PENDING_QUERIES = 8,
    ST_VERSIONS_MAX = 1 << 16,
};

/* ---- the checker ---------------------------------------------------------------------------- */

struct st_node_truth {
    uint64_t durable_seq;        /* highest seq reported durable, over all incarnations */
    uint64_t meta_durable_version;
    uint64_t meta_written_version;
    uint64_t *meta_base;         /* version -> base seq, for every version written */
    uint64_t durable_at_heal;
    uint64_t recoveries;
    uint64_t excused_corruptions;
    int recovered;               /* the current incarnation finished recovery */
};

struct st_checker {
    struct sim *sim;
    uint32_t bugs;              /* enum selftest_bug: deliberate bugs, for the checker's own tests */
    struct st_node_truth nodes[SIM_SERVERS_MAX + 1];
    uint64_t pongs;
    uint64_t answers;
};

/* The payload of record seq on node: deterministic, so the checker can recompute it. */
static size_t st_payload(uint32_t node, uint64_t seq, uint8_t *out) {
    uint64_t h = rq_mix64(((uint64_t)node << 48) ^ seq);
    size_t len = 1 + (size_t)(h % ST_PAYLOAD_MAX);
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) h = rq_mix64(h + i);
        out[i] = (uint8_t)(h >> (8 * (i % 8)));
    }
    return len;
}

static void *st_init(struct sim *s) {
    struct st_checker *c = calloc(1, sizeof *c);
    RQ_ASSERT(c != NULL);
    c->sim = s;
    for (uint32_t i = 0; i <= SIM_SERVERS_MAX; i++) {
        c->nodes[i].meta_base = calloc(ST_VERSIONS_MAX, sizeof(uint64_t));
        RQ_ASSERT(c->nodes[i].meta_base != NULL);
        c->nodes[i].meta_base[0] = 1;
    }
    return c;
}

static void st_fini(void *w) {
    struct st_checker *c = w;
    for (uint32_t i = 0; i <= SIM_SERVERS_MAX; i++) free(c->nodes[i].meta_base);
    free(c);
}

static void st_check_durable(struct st_checker *c, uint32_t node, uint64_t seq) {
    struct st_node_truth *t = &c->nodes[node];
    if (seq > t->durable_seq) t->durable_seq = seq;
}

static void st_check_meta_written(struct st_checker *c, uint32_t node, uint64_t version, uint64_t base) {
    struct st_node_truth *t = &c->nodes[node];
    if (version >= ST_VERSIONS_MAX) {
        sim_fail(c->sim, "selftest: n%u wrote more than %d meta versions", node, ST_VERSIONS_MAX);
        return;
    }
    /* A version lost at a crash before it was durable is written again, maybe with a new base;
     * a version reported durable never is. */
    if (version <= t->meta_durable_version || version > t->meta_written_version + 1) {
        sim_fail(c->sim, "selftest: n%u meta version %llu written; durable %llu, written %llu", node,
                 (unsigned long long)version, (unsigned long long)t->meta_durable_version,
                 (unsigned long long)t->meta_written_version);
    }
    t->meta_written_version = version;
    t->meta_base[version] = base;
}

static void st_check_meta_durable(struct st_checker *c, uint32_t node, uint64_t version) {
    struct st_node_truth *t = &c->nodes[node];
    if (version > t->meta_durable_version) t->meta_durable_version = version;
}

/* Called at the end of a node's recovery with what it found. */
static void st_check_recovery(struct st_checker *c, uint32_t node, uint64_t version, uint64_t base,
                              uint64_t last) {
    struct st_node_truth *t = &c->nodes[node];
    struct sim_disk *disk = sim_disk(c->sim, node);
    int journal_corrupted = sim_disk_was_corrupted(disk, "journal");
    sim_disk_clear_corrupted(disk, "journal");
    t->recoveries++;
    t->recovered = 1;
    if (version < t->meta_durable_version || version > t->meta_written_version) {
        sim_fail(c->sim, "selftest: n%u recovered meta version %llu; durable %llu, written %llu", node,
                 (unsigned long long)version, (unsigned long long)t->meta_durable_version,
                 (unsigned long long)t->meta_written_version);
        return;
    }
    if (base != t->meta_base[version]) {
        sim_fail(c->sim, "selftest: n%u meta version %llu has base %llu, was written with %llu", node,
                 (unsigned long long)version, (unsigned long long)base,
                 (unsigned long long)t->meta_base[version]);
        return;
    }
    if (base > t->durable_seq + 1) {
        sim_fail(c->sim, "selftest: n%u compacted past its durable records (base %llu, durable %llu)",
                 node, (unsigned long long)base, (unsigned long long)t->durable_seq);
        return;
    }
    if (last + 1 < base) last = base - 1;
    if (last < t->durable_seq) {
        if (!journal_corrupted) {
            sim_fail(c->sim, "selftest: n%u lost durable records: recovered up to %llu, %llu was durable",
                     node, (unsigned long long)last, (unsigned long long)t->durable_seq);
            return;
        }
        /* Latent corruption destroyed synced records: detected, not served. */
        t->excused_corruptions++;
        t->durable_seq = last;
    }
}

/* Each recovered record's bytes must be exactly what was written. */
static void st_check_record(struct st_checker *c, uint32_t node, uint64_t seq, const uint8_t *payload,
                            size_t len) {
    uint8_t expect[ST_PAYLOAD_MAX];
    size_t expect_len = st_payload(node, seq, expect);
    if (len != expect_len || memcmp(payload, expect, len) != 0) {
        sim_fail(c->sim, "selftest: n%u record %llu recovered with different bytes", node,
                 (unsigned long long)seq);
    }
}

static void st_on_heal(struct sim *s, void *w) {
    struct st_checker *c = w;
    for (uint32_t n = 1; n <= sim_servers(s); n++) c->nodes[n].durable_at_heal = c->nodes[n].durable_seq;
}

/* ---- the server node ------------------------------------------------------------------------ */

enum st_phase {
    PH_LIST = 1, PH_UNLINK_TMP, PH_OPEN_META, PH_READ_META, PH_CLOSE_META, PH_OPEN_JOURNAL,
    PH_READ_JOURNAL, PH_TRUNCATE_TAIL, PH_FSYNC_TAIL, PH_SYNC_DIR, PH_RUN,
    PH_CMP_OPEN, PH_CMP_WRITE, PH_CMP_FSYNC, PH_CMP_CLOSE, PH_CMP_RENAME, PH_CMP_SYNC_DIR,
    PH_CMP_TRUNCATE,
};

struct st_node {
    const struct rq_io *io;
    struct st_checker *chk;
    struct rq_rng rng;
    enum st_phase phase;
    struct rq_disk_req step;      /* the one recovery or compaction request in flight */
    struct rq_disk_req write;     /* a journal append */
    struct rq_disk_req sync;      /* a journal fsync */
    int write_inflight;
    int sync_inflight;
    int32_t journal;
    int32_t meta_file;
    uint64_t journal_size;
    uint64_t base;                /* first seq of the journal's live records */
    uint64_t written_seq;         /* last seq written (not necessarily durable) */
    uint64_t durable_seq;
    uint64_t batch_last_seq;
    uint64_t meta_version;
    uint64_t ping_seq;
    uint8_t write_buf[ST_WRITE_BUF];
    uint8_t meta_buf[ST_META_SIZE];
    char list_buf[ST_LIST_BUF];
    uint8_t *journal_buf;
};

static uint32_t st_id(const struct st_node *n) { return n->io->node_id; }

static void st_submit(struct st_node *n, enum st_phase phase, enum rq_disk_op op) {
    n->phase = phase;
    n->step.op = op;
    n->io->disk(n->io->env, &n->step);
}

static void st_submit_path(struct st_node *n, enum st_phase phase, enum rq_disk_op op, const char *path,
                           uint32_t flags) {
    memset(&n->step, 0, sizeof n->step);
    if (op == RQ_DISK_FSYNC_DIR && (n->chk->bugs & SELFTEST_BUG_SKIP_DIR_FSYNC)) {
        op = RQ_DISK_LIST;  /* harmless stand-in that leaves names undurable */
        path = "";
        n->step.buf = n->list_buf;
        n->step.len = sizeof n->list_buf;
    }
    snprintf(n->step.path, sizeof n->step.path, "%s", path);
    n->step.flags = flags;
    st_submit(n, phase, op);
}

static void st_submit_file(struct st_node *n, enum st_phase phase, enum rq_disk_op op, int32_t file,
                           uint64_t offset, void *buf, size_t len) {
    memset(&n->step, 0, sizeof n->step);
    n->step.file = file;
    n->step.offset = offset;
    n->step.buf = buf;
    n->step.len = len;
    st_submit(n, phase, op);
}

static void st_arm_timer(struct st_node *n) {
    n->io->set_timer(n->io->env, n->io->now(n->io->env) + rq_rng_range(&n->rng, 1000000, 4000000));
}

static void *st_create(const struct rq_io *io, const void *config) {
    struct st_node *n = calloc(1, sizeof *n);
    if (n == NULL) return NULL;
    n->io = io;
    n->chk = (struct st_checker *)config;
    rq_rng_seed(&n->rng, io->seed);
    n->journal = -1;
    n->meta_file = -1;
    n->base = 1;
    return n;
}

static void st_destroy(void *node) {
    struct st_node *n = node;
    free(n->journal_buf);
    free(n);
}

static void st_on_start(void *node) {
    struct st_node *n = node;
    n->chk->nodes[st_id(n)].recovered = 0;
    RQ_INFO("selftest: recovering");
    memset(&n->step, 0, sizeof n->step);
    n->step.buf = n->list_buf;
    n->step.len = sizeof n->list_buf;
    st_submit(n, PH_LIST, RQ_DISK_LIST);
}

/* Every name in the data directory must be one recovery can explain. */
static void st_after_list(struct st_node *n) {
    int has_tmp = 0;
    const char *p = n->list_buf;
    for (int64_t i = 0; i < n->step.result; i++) {
        if (strcmp(p, "meta.tmp") == 0) has_tmp = 1;
        else if (strcmp(p, "meta") != 0 && strcmp(p, "journal") != 0) {
            sim_fail(n->chk->sim, "selftest: n%u found a file recovery cannot explain: %s", st_id(n), p);
        }
        p += strlen(p) + 1;
    }
    if (has_tmp) st_submit_path(n, PH_UNLINK_TMP, RQ_DISK_UNLINK, "meta.tmp", 0);
    else st_submit_path(n, PH_OPEN_META, RQ_DISK_OPEN, "meta", 0);
}

static int st_parse_meta(struct st_node *n, size_t len) {
    if (len != ST_META_SIZE || rq_get_u32(n->meta_buf) != ST_META_MAGIC) return RQ_ECORRUPT;
    if (rq_crc32c(0, n->meta_buf, 20) != rq_get_u32(n->meta_buf + 20)) return RQ_ECORRUPT;
    n->meta_version = rq_get_u64(n->meta_buf + 4);
    n->base = rq_get_u64(n->meta_buf + 12);
    return 0;
}

/* Scans the journal: records before base are compacted leftovers; from base on, seqs must be
 * consecutive. Stops at the first record that fails its length, CRC or sequence check. */
static uint64_t st_scan_journal(struct st_node *n, uint64_t size, uint64_t *last_out) {
    uint64_t pos = 0;
    uint64_t expect = n->base;
    uint64_t prev = 0;
    while (size - pos >= ST_RECORD_HEADER) {
        const uint8_t *r = n->journal_buf + pos;
        uint32_t len = rq_get_u32(r);
        uint64_t seq = rq_get_u64(r + 4);
        if (len == 0 || len > ST_PAYLOAD_MAX || len > size - pos - ST_RECORD_HEADER) break;
        uint32_t crc = rq_crc32c(rq_crc32c(0, r + 4, 8), r + ST_RECORD_HEADER, len);
        if (crc != rq_get_u32(r + 12) && !(n->chk->bugs & SELFTEST_BUG_IGNORE_CRC)) break;
        if (seq < n->base) {
            if (seq <= prev) break;
            prev = seq;
        } else if (seq == expect) {
            st_check_record(n->chk, st_id(n), seq, r + ST_RECORD_HEADER, len);
            expect++;
        } else {
            break;
        }
        pos += ST_RECORD_HEADER + len;
    }
    *last_out = expect - 1;
    return pos;
}

static void st_after_read_journal(struct st_node *n) {
    uint64_t size = (uint64_t)n->step.result;
    uint64_t last;
    uint64_t valid = st_scan_journal(n, size, &last);
    RQ_INFO("selftest: recovered meta v%llu base %llu, records up to %llu, dropped %llu bytes",
            (unsigned long long)n->meta_version, (unsigned long long)n->base, (unsigned long long)last,
            (unsigned long long)(size - valid));
    st_check_recovery(n->chk, st_id(n), n->meta_version, n->base, last);
    n->written_seq = last;
    n->journal_size = valid;
    free(n->journal_buf);
    n->journal_buf = NULL;
    /* What was read may still be only in the page cache (the process died, the machine did not):
     * make it durable before relying on it. */
    if (valid < size) st_submit_file(n, PH_TRUNCATE_TAIL, RQ_DISK_TRUNCATE, n->journal, valid, NULL, 0);
    else st_submit_file(n, PH_FSYNC_TAIL, RQ_DISK_FSYNC, n->journal, 0, NULL, 0);
}

/* ---- running: appends, fsyncs, compaction, pings ---------------------------------------------- */

static void st_append_batch(struct st_node *n) {
    uint32_t count = (uint32_t)rq_rng_range(&n->rng, 1, ST_BATCH_MAX);
    size_t len = 0;
    uint64_t seq = n->written_seq;
    for (uint32_t i = 0; i < count; i++) {
        seq++;
        uint8_t *r = n->write_buf + len;
        size_t plen = st_payload(st_id(n), seq, r + ST_RECORD_HEADER);
        rq_put_u32(r, (uint32_t)plen);
        rq_put_u64(r + 4, seq);
        rq_put_u32(r + 12, rq_crc32c(rq_crc32c(0, r + 4, 8), r + ST_RECORD_HEADER, plen));
        len += ST_RECORD_HEADER + plen;
    }
    n->batch_last_seq = seq;
    memset(&n->write, 0, sizeof n->write);
    n->write.op = RQ_DISK_PWRITE;
    n->write.file = n->journal;
    n->write.offset = n->journal_size;
    n->write.buf = n->write_buf;
    n->write.len = len;
    n->write_inflight = 1;
    n->io->disk(n->io->env, &n->write);
}

static void st_start_sync(struct st_node *n) {
    memset(&n->sync, 0, sizeof n->sync);
    n->sync.op = RQ_DISK_FSYNC;
    n->sync.file = n->journal;
    n->sync_inflight = 1;
    n->io->disk(n->io->env, &n->sync);
}

static void st_start_compaction(struct st_node *n) {
    uint64_t version = n->meta_version + 1;
    uint64_t base = n->written_seq + 1;
    rq_put_u32(n->meta_buf, ST_META_MAGIC);
    rq_put_u64(n->meta_buf + 4, version);
    rq_put_u64(n->meta_buf + 12, base);
    rq_put_u32(n->meta_buf + 20, rq_crc32c(0, n->meta_buf, 20));
    rq_put_u32(n->meta_buf + 24, 0);
    st_check_meta_written(n->chk, st_id(n), version, base);
    RQ_DEBUG("selftest: compacting: meta v%llu base %llu", (unsigned long long)version,
             (unsigned long long)base);
    st_submit_path(n, PH_CMP_OPEN, RQ_DISK_OPEN, "meta.tmp", RQ_DISK_CREATE);
}

static void st_send_ping(struct st_node *n) {
    uint32_t servers = sim_servers(n->chk->sim);
    if (servers < 2) return;
    uint32_t to = (uint32_t)rq_rng_range(&n->rng, 1, servers);
    if (to == st_id(n)) return;
    uint8_t msg[17];
    msg[0] = 'P';
    rq_put_u64(msg + 1, ++n->ping_seq);
    rq_put_u32(msg + 9, st_id(n));
    rq_put_u32(msg + 13, rq_crc32c(0, msg, 13));
    n->io->send(n->io->env, to, msg, sizeof msg);
}

static void st_on_timer(void *node) {
    struct st_node *n = node;
    if (n->phase != PH_RUN) return;
    st_arm_timer(n);
    if (rq_rng_chance(&n->rng, 250000)) st_send_ping(n);
    if (n->write_inflight || n->sync_inflight) return;
    if (n->durable_seq == n->written_seq && n->journal_size > ST_COMPACT_BYTES) {
        st_start_compaction(n);
        return;
    }
    if (n->written_seq > n->durable_seq && rq_rng_chance(&n->rng, 400000)) st_start_sync(n);
    else st_append_batch(n);
}

static void st_after_write(struct st_node *n) {
    n->write_inflight = 0;
    if (n->write.result == RQ_ENOSPC) {
        RQ_DEBUG("selftest: journal append: disk full, will retry");  /* backpressure */
        return;
    }
    if (n->write.result != 0) {
        sim_fail(n->chk->sim, "selftest: n%u journal append failed: %s", st_id(n),
                 rq_strerror((int)n->write.result));
        return;
    }
    n->journal_size += n->write.len;
    n->written_seq = n->batch_last_seq;
    if (n->chk->bugs & SELFTEST_BUG_ACK_BEFORE_FSYNC) st_check_durable(n->chk, st_id(n), n->written_seq);
    if (n->journal_size > ST_JOURNAL_MAX) sim_fail(n->chk->sim, "selftest: n%u journal grew unbounded", st_id(n));
}

static void st_after_sync(struct st_node *n) {
    n->sync_inflight = 0;
    if (n->sync.result != 0) {
        /* The data's fate is unknown: never carry on as if it were safe. */
        n->io->halt(n->io->env, "journal fsync failed");
        return;
    }
    /* Requests complete in order, so every append that completed before now is covered. */
    n->durable_seq = n->written_seq;
    st_check_durable(n->chk, st_id(n), n->durable_seq);
}

/* Fail-stop on EIO from an fsync; a failure of anything else is a bug of the model or node. */
static int st_step_ok(struct st_node *n, int64_t result) {
    if (result >= 0) return 1;
    if (result == RQ_EIO) {
        n->io->halt(n->io->env, "fsync failed during recovery or compaction");
        return 0;
    }
    sim_fail(n->chk->sim, "selftest: n%u phase %d op %d failed: %s", st_id(n), n->phase, n->step.op,
             rq_strerror((int)result));
    return 0;
}

static void st_enter_run(struct st_node *n) {
    n->phase = PH_RUN;
    st_arm_timer(n);
}

/* Compaction steps; ENOSPC abandons the compaction (retried later), nothing else may fail. */
static void st_compaction_step(struct st_node *n) {
    int64_t result = n->step.result;
    if (result == RQ_ENOSPC) {
        if (n->phase == PH_CMP_WRITE) {
            st_submit_file(n, PH_CMP_CLOSE, RQ_DISK_CLOSE, n->meta_file, 0, NULL, 0);
            n->meta_file = -2;  /* close, then resume running without renaming */
            return;
        }
        st_enter_run(n);
        return;
    }
    if (!st_step_ok(n, result)) return;
    switch (n->phase) {
    case PH_CMP_OPEN:
        n->meta_file = (int32_t)result;
        st_submit_file(n, PH_CMP_WRITE, RQ_DISK_PWRITE, n->meta_file, 0, n->meta_buf, ST_META_SIZE);
        break;
    case PH_CMP_WRITE: st_submit_file(n, PH_CMP_FSYNC, RQ_DISK_FSYNC, n->meta_file, 0, NULL, 0); break;
    case PH_CMP_FSYNC: st_submit_file(n, PH_CMP_CLOSE, RQ_DISK_CLOSE, n->meta_file, 0, NULL, 0); break;
    case PH_CMP_CLOSE:
        if (n->meta_file == -2) {
            n->meta_file = -1;
            st_enter_run(n);
            break;
        }
        n->meta_file = -1;
        memset(&n->step, 0, sizeof n->step);
        strcpy(n->step.path, "meta.tmp");
        strcpy(n->step.path2, "meta");
        st_submit(n, PH_CMP_RENAME, RQ_DISK_RENAME);
        break;
    case PH_CMP_RENAME: st_submit_path(n, PH_CMP_SYNC_DIR, RQ_DISK_FSYNC_DIR, "", 0); break;
    case PH_CMP_SYNC_DIR:
        n->meta_version++;
        n->base = n->written_seq + 1;
        st_check_meta_durable(n->chk, st_id(n), n->meta_version);
        st_submit_file(n, PH_CMP_TRUNCATE, RQ_DISK_TRUNCATE, n->journal, 0, NULL, 0);
        break;
    case PH_CMP_TRUNCATE:
        n->journal_size = 0;
        st_enter_run(n);
        break;
    default: RQ_UNREACHABLE();
    }
}

static void st_recovery_step(struct st_node *n) {
    int64_t result = n->step.result;
    if (n->phase == PH_OPEN_META && result == RQ_ENOENT) {
        n->meta_version = 0;
        n->base = 1;
        st_submit_path(n, PH_OPEN_JOURNAL, RQ_DISK_OPEN, "journal", RQ_DISK_CREATE);
        return;
    }
    if (!st_step_ok(n, result)) return;
    switch (n->phase) {
    case PH_LIST: st_after_list(n); break;
    case PH_UNLINK_TMP: st_submit_path(n, PH_OPEN_META, RQ_DISK_OPEN, "meta", 0); break;
    case PH_OPEN_META:
        n->meta_file = (int32_t)result;
        st_submit_file(n, PH_READ_META, RQ_DISK_PREAD, n->meta_file, 0, n->meta_buf, ST_META_SIZE);
        break;
    case PH_READ_META:
        /* meta is only ever installed whole (fsynced before its rename): a bad one is corrupt. */
        if (st_parse_meta(n, (size_t)result) != 0) {
            sim_fail(n->chk->sim, "selftest: n%u meta is corrupt (%lld bytes)", st_id(n), (long long)result);
            return;
        }
        st_submit_file(n, PH_CLOSE_META, RQ_DISK_CLOSE, n->meta_file, 0, NULL, 0);
        break;
    case PH_CLOSE_META:
        n->meta_file = -1;
        st_submit_path(n, PH_OPEN_JOURNAL, RQ_DISK_OPEN, "journal", RQ_DISK_CREATE);
        break;
    case PH_OPEN_JOURNAL:
        n->journal = (int32_t)result;
        if (n->step.size > ST_JOURNAL_MAX) {
            sim_fail(n->chk->sim, "selftest: n%u journal is %llu bytes", st_id(n), (unsigned long long)n->step.size);
            return;
        }
        n->journal_buf = malloc(n->step.size + 1);
        RQ_ASSERT(n->journal_buf != NULL);
        st_submit_file(n, PH_READ_JOURNAL, RQ_DISK_PREAD, n->journal, 0, n->journal_buf, n->step.size);
        break;
    case PH_READ_JOURNAL: st_after_read_journal(n); break;
    case PH_TRUNCATE_TAIL: st_submit_file(n, PH_FSYNC_TAIL, RQ_DISK_FSYNC, n->journal, 0, NULL, 0); break;
    case PH_FSYNC_TAIL:
        n->durable_seq = n->written_seq;
        st_check_durable(n->chk, st_id(n), n->durable_seq);
        st_submit_path(n, PH_SYNC_DIR, RQ_DISK_FSYNC_DIR, "", 0);
        break;
    case PH_SYNC_DIR: st_enter_run(n); break;
    default: RQ_UNREACHABLE();
    }
}

static void st_on_disk_done(void *node, struct rq_disk_req *req) {
    struct st_node *n = node;
    if (req == &n->write) st_after_write(n);
    else if (req == &n->sync) st_after_sync(n);
    else if (n->phase >= PH_CMP_OPEN) st_compaction_step(n);
    else st_recovery_step(n);
}

static void st_on_peer_message(void *node, uint32_t from, const void *buf, size_t len) {
    struct st_node *n = node;
    const uint8_t *m = buf;
    if (len != 17 || (m[0] != 'P' && m[0] != 'O') || rq_crc32c(0, m, 13) != rq_get_u32(m + 13) ||
        rq_get_u32(m + 9) != from) {
        sim_fail(n->chk->sim, "selftest: n%u got a damaged message from n%u", st_id(n), from);
        return;
    }
    if (m[0] == 'O') {
        n->chk->pongs++;
        return;
    }
    uint8_t pong[17];
    memcpy(pong, m, sizeof pong);
    pong[0] = 'O';
    rq_put_u32(pong + 9, st_id(n));
    rq_put_u32(pong + 13, rq_crc32c(0, pong, 13));
    n->io->send(n->io->env, from, pong, sizeof pong);
}

/* A client asks "how far are you durable?" with a nonce; the answer echoes it. */
static void st_on_client_message(void *node, uint64_t conn, const void *buf, size_t len) {
    struct st_node *n = node;
    const uint8_t *m = buf;
    if (len != 9 || m[0] != 'Q') {
        sim_fail(n->chk->sim, "selftest: n%u got a damaged client request", st_id(n));
        return;
    }
    uint8_t answer[17];
    answer[0] = 'A';
    memcpy(answer + 1, m + 1, 8);
    rq_put_u64(answer + 9, n->durable_seq);
    n->io->reply(n->io->env, conn, answer, sizeof answer);
}

static void st_on_conn_closed(void *node, uint64_t conn) {
    (void)node;
    RQ_DEBUG("selftest: client connection %llx closed", (unsigned long long)conn);
}

static const struct rq_node_ops st_server_ops = {
    .name = "selftest-server",
    .create = st_create,
    .destroy = st_destroy,
    .on_start = st_on_start,
    .on_timer = st_on_timer,
    .on_peer_message = st_on_peer_message,
    .on_client_message = st_on_client_message,
    .on_disk_done = st_on_disk_done,
    .on_conn_closed = st_on_conn_closed,
};

/* ---- the client ------------------------------------------------------------------------------ */

struct st_client {
    const struct rq_io *io;
    struct st_checker *chk;
    struct rq_rng rng;
    uint64_t pending[ST_PENDING_QUERIES];  /* nonces awaiting an answer; 0 = free */
    uint32_t next_slot;
};

static void *st_client_create(const struct rq_io *io, const void *config) {
    struct st_client *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->io = io;
    c->chk = (struct st_checker *)config;
    rq_rng_seed(&c->rng, io->seed);
    return c;
}

static void st_client_destroy(void *node) { free(node); }

static void st_client_arm(struct st_client *c) {
    c->io->set_timer(c->io->env, c->io->now(c->io->env) + rq_rng_range(&c->rng, 20000000, 100000000));
}

static void st_client_start(void *node) { st_client_arm(node); }

static void st_client_timer(void *node) {
    struct st_client *c = node;
    st_client_arm(c);
    /* A bounded table of outstanding queries: the oldest slot is reused (its answer was lost). */
    uint64_t nonce = rq_rng_next(&c->rng) | 1;
    c->pending[c->next_slot] = nonce;
    c->next_slot = (c->next_slot + 1) % ST_PENDING_QUERIES;
    uint8_t q[9];
    q[0] = 'Q';
    rq_put_u64(q + 1, nonce);
    c->io->send(c->io->env, (uint32_t)rq_rng_range(&c->rng, 1, sim_servers(c->chk->sim)), q, sizeof q);
}

static void st_client_message(void *node, uint32_t from, const void *buf, size_t len) {
    struct st_client *c = node;
    const uint8_t *m = buf;
    if (len != 17 || m[0] != 'A' || from < 1 || from > sim_servers(c->chk->sim)) {
        sim_fail(c->chk->sim, "selftest: client n%u got a damaged answer", c->io->node_id);
        return;
    }
    uint64_t nonce = rq_get_u64(m + 1);
    for (uint32_t i = 0; i < ST_PENDING_QUERIES; i++) {
        if (c->pending[i] == nonce) {
            c->pending[i] = 0;
            c->chk->answers++;
            return;
        }
    }
    /* Duplicated deliveries answer twice; an unknown nonce is fine only as such a duplicate. */
}

static void st_client_unexpected_request(void *node, uint64_t conn, const void *buf, size_t len) {
    struct st_client *c = node;
    (void)conn;
    (void)buf;
    (void)len;
    sim_fail(c->chk->sim, "selftest: client n%u received a client request", c->io->node_id);
}

static void st_client_disk_done(void *node, struct rq_disk_req *req) {
    (void)node;
    (void)req;
    RQ_UNREACHABLE();  /* clients submit no disk requests */
}

static void st_client_conn_closed(void *node, uint64_t conn) {
    (void)node;
    (void)conn;
}

static const struct rq_node_ops st_client_ops = {
    .name = "selftest-client",
    .create = st_client_create,
    .destroy = st_client_destroy,
    .on_start = st_client_start,
    .on_timer = st_client_timer,
    .on_peer_message = st_client_message,
    .on_client_message = st_client_unexpected_request,
    .on_disk_done = st_client_disk_done,
    .on_conn_closed = st_client_conn_closed,
};

/* ---- end of run ------------------------------------------------------------------------------ */

static void st_on_end(struct sim *s, void *w) {
    struct st_checker *c = w;
    /* Liveness: once faults stopped, every server made new records durable. */
    for (uint32_t n = 1; n <= sim_servers(s) && sim_healed(s); n++) {
        if (c->nodes[n].durable_seq <= c->nodes[n].durable_at_heal) {
            sim_fail(s, "selftest: n%u made no progress after the heal (durable %llu)", n,
                     (unsigned long long)c->nodes[n].durable_seq);
            return;
        }
    }
    /* A last power loss on every server: everything reported durable must come back. */
    for (uint32_t n = 1; n <= sim_servers(s); n++) sim_crash(s, n, 1);
    for (uint32_t n = 1; n <= sim_servers(s); n++) sim_restart(s, n);
    sim_run_until(s, sim_now(s) + 2000000000ull);
    for (uint32_t n = 1; n <= sim_servers(s) && !sim_failed(s); n++) {
        if (!c->nodes[n].recovered) sim_fail(s, "selftest: n%u did not finish recovery after the final crash", n);
    }
    sim_note(s, c->pongs ^ (c->answers << 32), "selftest: %llu pongs, %llu client answers",
             (unsigned long long)c->pongs, (unsigned long long)c->answers);
}

const struct sim_workload sim_workload_selftest = {
    .name = "selftest",
    .server_ops = &st_server_ops,
    .client_ops = &st_client_ops,
    .default_clients = 2,
    .corrupt_prefix = "journal",
    .init = st_init,
    .fini = st_fini,
    .on_heal = st_on_heal,
    .on_end = st_on_end,
};

const struct sim_workload *sim_workload_find(const char *name) {
    if (strcmp(name, "selftest") == 0) return &sim_workload_selftest;
    if (strcmp(name, "store") == 0) return &sim_workload_store;
    if (strcmp(name, "raft-kv") == 0) return &sim_workload_raftkv;
    if (strcmp(name, "mq") == 0) return &sim_workload_mq;
    return NULL;
}

void selftest_inject_bugs(struct sim *s, uint32_t bugs) {
    RQ_ASSERT(sim_config(s)->workload == &sim_workload_selftest);
    struct st_checker *c = sim_workload_state(s);
    c->bugs = bugs;
}
