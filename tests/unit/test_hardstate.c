/* The Raft hard-state store (src/store/hardstate.c), driven directly against the simulator's disk
 * (sim/disk.h) through a tiny fake struct rq_io: its disk() only queues requests, and the test
 * decides when each one executes, so a run can be stopped and crashed after any number of
 * completed disk operations. Everything is seeded; nothing reads the wall clock. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "base/log.h"
#include "base/rng.h"
#include "sim/disk.h"
#include "store/hardstate.h"
#include "sim/logcapture.h"
#include "tests/unit/suite_main.h"

enum {
    GROUP = 7,
    QUEUE_MAX = 4,     /* the store keeps at most one request in flight */
    TICKETS_MAX = 64,  /* saves per life */
    SAVED_MAX = 64,    /* completions per life */
    HISTORY_MAX = 256, /* values ever requested in one run, across lives */
    CRASH_SEEDS = 500,
};

struct value {
    uint64_t term;
    uint32_t vote;
};

static int value_eq(struct value a, struct value b) { return a.term == b.term && a.vote == b.vote; }

/* Hard states requested in a run, in order. Each is greater than the one before (term, then vote
 * going from 0 to a node), so "at least as new" is a comparison of positions. */
struct history {
    struct value values[HISTORY_MAX];
    uint32_t count;         /* values[0] is the fresh state (0, 0) */
    uint32_t durable_index; /* newest value the store reported durable (or loaded) */
};

struct harness {
    struct sim_disk *disk;
    struct rq_rng disk_rng; /* injected faults and crash tearing */
    struct sim_disk_faults faults;
    struct rq_io io;
    struct rq_disk_req *queue[QUEUE_MAX];
    uint32_t queue_count;
    uint64_t executed; /* disk requests completed over the whole run */
    struct store_hardstate hs;
    char path[STORE_HARDSTATE_PATH_SIZE];
    /* this life: what was asked and what the store reported */
    struct value tickets[TICKETS_MAX + 1]; /* by ticket */
    uint32_t ticket_history_index[TICKETS_MAX + 1];
    uint64_t ticket_count;
    int loaded;
    struct store_hardstate_result load_result;
    struct store_hardstate_result saved[SAVED_MAX];
    uint32_t saved_count;
    uint64_t reported_last_ticket;
    /* across lives */
    int track_history;
    struct history history;
    /* optional: called after every SAVED (the reentrancy test saves from inside the callback) */
    void (*on_saved)(struct harness *h, const struct store_hardstate_result *res);
    int on_saved_budget;
};


/* ---- the fake environment -------------------------------------------------------------------- */

static uint64_t fake_now(void *env) {
    (void)env;
    return 0;
}
static void fake_set_timer(void *env, uint64_t at_ns) {
    (void)env;
    (void)at_ns;
}
static void fake_send(void *env, uint32_t to, const void *buf, size_t len) {
    (void)env;
    (void)to;
    (void)buf;
    (void)len;
}
static void fake_reply(void *env, uint64_t conn, const void *buf, size_t len) {
    (void)env;
    (void)conn;
    (void)buf;
    (void)len;
}
static void fake_halt(void *env, const char *reason) {
    (void)env;
    (void)reason;
    ck_abort_msg("the store must not halt the node itself");
}

static void fake_disk(void *env, struct rq_disk_req *req) {
    struct harness *h = env;
    ck_assert_uint_lt(h->queue_count, QUEUE_MAX);
    /* The store keeps one request in flight. */
    ck_assert_uint_eq(h->queue_count, 0);
    h->queue[h->queue_count++] = req;
}

static void on_done(void *arg, const struct store_hardstate_result *res);

static void harness_init(struct harness *h, uint64_t seed) {
    memset(h, 0, sizeof *h);
    h->disk = sim_disk_create();
    rq_rng_stream(&h->disk_rng, seed, 0);
    h->io.env = h;
    h->io.node_id = 1;
    h->io.seed = seed;
    h->io.now = fake_now;
    h->io.set_timer = fake_set_timer;
    h->io.send = fake_send;
    h->io.reply = fake_reply;
    h->io.disk = fake_disk;
    h->io.halt = fake_halt;
    store_hardstate_path(GROUP, h->path);
    h->history.count = 1; /* the fresh state (0, 0) */
}

static void harness_free(struct harness *h) { sim_disk_destroy(h->disk); }

/* A new process: fresh memory, a new store, and load started. */
static void life_start(struct harness *h) {
    h->queue_count = 0; /* requests in flight died with the old process */
    h->ticket_count = 0;
    h->loaded = 0;
    h->saved_count = 0;
    h->reported_last_ticket = 0;
    store_hardstate_init(&h->hs, &h->io, GROUP, on_done, h);
    store_hardstate_load(&h->hs);
}

/* Executes the oldest queued request and hands it back to the store. */
static void step(struct harness *h) {
    ck_assert_uint_gt(h->queue_count, 0);
    struct rq_disk_req *req = h->queue[0];
    memmove(&h->queue[0], &h->queue[1], (h->queue_count - 1) * sizeof h->queue[0]);
    h->queue_count--;
    sim_disk_execute(h->disk, req, &h->faults, &h->disk_rng);
    h->executed++;
    ck_assert_int_eq(store_hardstate_on_disk_done(&h->hs, req), 1);
}

static void run_idle(struct harness *h) {
    for (uint32_t i = 0; i < 10000 && h->queue_count > 0; i++)
        step(h);
    ck_assert_uint_eq(h->queue_count, 0);
}

static void power_loss(struct harness *h) {
    h->queue_count = 0;
    sim_disk_crash(h->disk, &h->disk_rng);
}

static void process_exit(struct harness *h) {
    h->queue_count = 0;
    sim_disk_process_exit(h->disk);
}

static uint64_t save(struct harness *h, uint64_t term, uint32_t vote) {
    uint64_t ticket = 0;
    ck_assert_int_eq(store_hardstate_save(&h->hs, term, vote, &ticket), 0);
    ck_assert_uint_eq(ticket, h->ticket_count + 1);
    ck_assert_uint_le(ticket, TICKETS_MAX);
    h->ticket_count = ticket;
    h->tickets[ticket] = (struct value){term, vote};
    if (h->track_history) {
        ck_assert_uint_lt(h->history.count, HISTORY_MAX);
        h->ticket_history_index[ticket] = h->history.count;
        h->history.values[h->history.count++] = (struct value){term, vote};
    }
    return ticket;
}

/* Starts a new life and runs its load to completion. */
static struct store_hardstate_result load(struct harness *h) {
    life_start(h);
    run_idle(h);
    ck_assert(h->loaded);
    return h->load_result;
}

/* ---- an independent reading of the durable file ---------------------------------------------- */

/* The state the durable image of the file holds (newest valid slot), as a crash would leave it
 * with nothing unsynced. Returns 0, or RQ_ENOENT / RQ_ECORRUPT. */
static int durable_state(const struct harness *h, struct value *v) {
    const uint8_t *data;
    uint64_t size;
    if (sim_disk_image(h->disk, h->path, 1, &data, &size) != 0) return RQ_ENOENT;
    if (size != STORE_HARDSTATE_FILE_SIZE) return RQ_ECORRUPT;
    uint64_t best_sequence = 0;
    for (int i = 0; i < 2; i++) {
        struct store_hardstate_slot s;
        if (store_hardstate_decode_slot(data + i * 512, GROUP, &s) != STORE_HARDSTATE_SLOT_VALID)
            continue;
        if (s.sequence > best_sequence) {
            best_sequence = s.sequence;
            *v = (struct value){s.term, s.vote};
        }
    }
    return best_sequence ? 0 : RQ_ECORRUPT;
}

static int history_find(const struct history *hist, struct value v) {
    for (uint32_t i = 0; i < hist->count; i++) {
        if (value_eq(hist->values[i], v)) return (int)i;
    }
    return -1;
}

static void on_loaded(struct harness *h, const struct store_hardstate_result *res) {
    ck_assert(!h->loaded);
    h->loaded = 1;
    h->load_result = *res;
    if (!h->track_history) return;
    /* Crashes never make the file unreadable. */
    ck_assert_msg(res->err == 0, "load failed after a crash: %s", rq_strerror(res->err));
    struct value v = {res->term, res->vote};
    int at = history_find(&h->history, v);
    ck_assert_msg(at >= 0, "loaded term %llu vote %u was never written", (unsigned long long)v.term,
                  (unsigned)v.vote);
    ck_assert_msg((uint32_t)at >= h->history.durable_index,
                  "loaded term %llu vote %u is older than a state reported durable",
                  (unsigned long long)v.term, (unsigned)v.vote);
    /* What was asked after it and is not on disk is gone for good; what was loaded is durable. */
    h->history.count = (uint32_t)at + 1;
    h->history.durable_index = (uint32_t)at;
    struct value on_disk;
    if (at > 0) {
        ck_assert_int_eq(durable_state(h, &on_disk), 0);
        ck_assert(value_eq(on_disk, v));
    }
}

static void on_saved(struct harness *h, const struct store_hardstate_result *res) {
    ck_assert_uint_lt(h->saved_count, SAVED_MAX);
    h->saved[h->saved_count++] = *res;
    /* In ticket order, each completion following on from the previous one. */
    ck_assert_uint_eq(res->save_first, h->reported_last_ticket + 1);
    ck_assert_uint_ge(res->save_last, res->save_first);
    ck_assert_uint_le(res->save_last, h->ticket_count);
    h->reported_last_ticket = res->save_last;
    if (res->err != 0) return;
    struct value v = {res->term, res->vote};
    ck_assert(value_eq(v, h->tickets[res->save_last]));
    /* Reported only once durable: the durable image (and durable name) already holds it. */
    struct value on_disk;
    ck_assert_int_eq(durable_state(h, &on_disk), 0);
    ck_assert(value_eq(on_disk, v));
    if (h->track_history) {
        uint32_t at = h->ticket_history_index[res->save_last];
        ck_assert_uint_ge(at, h->history.durable_index);
        h->history.durable_index = at;
    }
    if (h->on_saved) h->on_saved(h, res);
}

static void on_done(void *arg, const struct store_hardstate_result *res) {
    struct harness *h = arg;
    if (res->event == STORE_HARDSTATE_LOADED) {
        on_loaded(h, res);
    } else {
        ck_assert_int_eq(res->event, STORE_HARDSTATE_SAVED);
        on_saved(h, res);
    }
}

/* ---- raw file access, bypassing the store ---------------------------------------------------- */

/* Makes path hold exactly data[0..size), durably (file and name). */
static void raw_put(struct harness *h, const char *path, const void *data, size_t size) {
    ck_assert_int_eq(sim_disk_put_durable(h->disk, path, data, size), 0);
}

/* Rewrites the file with byte `offset` xor-ed with mask, durably: latent corruption, made by hand
 * so the test chooses exactly which byte rots. */
static void raw_flip(struct harness *h, uint64_t offset, uint8_t mask) {
    const uint8_t *data;
    uint64_t size;
    ck_assert_int_eq(sim_disk_image(h->disk, h->path, 1, &data, &size), 0);
    ck_assert_uint_eq(size, STORE_HARDSTATE_FILE_SIZE);
    ck_assert_uint_lt(offset, size);
    uint8_t copy[STORE_HARDSTATE_FILE_SIZE];
    memcpy(copy, data, sizeof copy);
    copy[offset] ^= mask;
    raw_put(h, h->path, copy, sizeof copy);
}

/* One slot's bytes, with every field chosen (CRC computed over whatever they are). */
static void craft_slot(uint8_t *at, uint32_t magic, uint16_t version, uint64_t group,
                       uint64_t sequence, uint64_t term, uint32_t vote) {
    memset(at, 0, STORE_HARDSTATE_SLOT_SIZE);
    rq_put_u32(at, magic);
    rq_put_u16(at + 4, version);
    rq_put_u64(at + 8, group);
    rq_put_u64(at + 16, sequence);
    rq_put_u64(at + 24, term);
    rq_put_u32(at + 32, vote);
    rq_put_u32(at + 36, rq_crc32c(0, at, 36));
}

static void good_slot(uint8_t *at, uint64_t sequence, uint64_t term, uint32_t vote) {
    craft_slot(at, STORE_HARDSTATE_MAGIC, STORE_HARDSTATE_VERSION, GROUP, sequence, term, vote);
}

/* ---- basic behaviour ------------------------------------------------------------------------- */

START_TEST(fresh_directory_loads_term_0_vote_0_without_writing) {
    struct harness h;
    harness_init(&h, 1);
    struct store_hardstate_result res = load(&h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.term, 0);
    ck_assert_uint_eq(res.vote, 0);
    ck_assert_int_eq(res.slot_ignored, 0);
    ck_assert_uint_eq(h.executed, 1); /* one OPEN, which found nothing */
    ck_assert(!sim_disk_exists(h.disk, h.path, 0));
    ck_assert_uint_eq(sim_disk_stats(h.disk)->bytes_written, 0);
    harness_free(&h);
}
END_TEST

START_TEST(path_is_valid_and_fixed_width) {
    char path[STORE_HARDSTATE_PATH_SIZE];
    store_hardstate_path(GROUP, path);
    ck_assert_str_eq(path, "hs-0000000000000007.dat");
    store_hardstate_path(UINT64_MAX, path);
    ck_assert_str_eq(path, "hs-ffffffffffffffff.dat");
    ck_assert_int_eq(sim_disk_path_valid(path), 0);
}
END_TEST

START_TEST(slot_encoding_matches_the_documented_layout) {
    uint8_t bytes[STORE_HARDSTATE_SLOT_SIZE];
    struct store_hardstate_slot in = {.group_id = GROUP, .sequence = 9, .term = 5, .vote = 3};
    store_hardstate_encode_slot(bytes, &in);
    uint8_t expected[STORE_HARDSTATE_SLOT_SIZE];
    good_slot(expected, 9, 5, 3);
    ck_assert_mem_eq(bytes, expected, sizeof bytes);
    ck_assert_mem_eq(bytes, "RQHS\x01\x00\x00\x00", 8);
    for (int i = STORE_HARDSTATE_RECORD_SIZE; i < STORE_HARDSTATE_SLOT_SIZE; i++)
        ck_assert_uint_eq(bytes[i], 0);
    struct store_hardstate_slot out;
    ck_assert_int_eq(store_hardstate_decode_slot(bytes, GROUP, &out), STORE_HARDSTATE_SLOT_VALID);
    ck_assert_uint_eq(out.sequence, 9);
    ck_assert_uint_eq(out.term, 5);
    ck_assert_uint_eq(out.vote, 3);
    ck_assert_int_eq(store_hardstate_decode_slot(bytes, GROUP + 1, &out),
                     STORE_HARDSTATE_SLOT_FOREIGN);
    /* Every single-bit flip in the record is caught; the padding is not read. */
    for (int bit = 0; bit < STORE_HARDSTATE_RECORD_SIZE * 8; bit++) {
        bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ck_assert_int_eq(store_hardstate_decode_slot(bytes, GROUP, &out),
                         STORE_HARDSTATE_SLOT_INVALID);
        bytes[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    bytes[STORE_HARDSTATE_RECORD_SIZE] = 0xff;
    ck_assert_int_eq(store_hardstate_decode_slot(bytes, GROUP, &out), STORE_HARDSTATE_SLOT_VALID);
}
END_TEST

START_TEST(save_then_load_round_trips_across_process_exit_and_power_loss) {
    struct harness h;
    harness_init(&h, 2);
    ck_assert_int_eq(load(&h).err, 0);
    save(&h, 3, 2);
    run_idle(&h);
    ck_assert_uint_eq(h.saved_count, 1);
    ck_assert_int_eq(h.saved[0].err, 0);
    ck_assert_uint_eq(h.saved[0].term, 3);
    ck_assert_uint_eq(h.saved[0].vote, 2);
    ck_assert(!sim_disk_exists(h.disk, "hs-0000000000000007.tmp", 0));

    process_exit(&h);
    struct store_hardstate_result res = load(&h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.term, 3);
    ck_assert_uint_eq(res.vote, 2);

    save(&h, 4, 0);
    run_idle(&h);
    save(&h, 4, 1);
    run_idle(&h);
    power_loss(&h);
    res = load(&h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.term, 4);
    ck_assert_uint_eq(res.vote, 1);
    ck_assert_int_eq(res.slot_ignored, 0);
    harness_free(&h);
}
END_TEST

START_TEST(every_save_leaves_both_slots_holding_it_with_increasing_sequence) {
    struct harness h;
    harness_init(&h, 3);
    ck_assert_int_eq(load(&h).err, 0);
    for (uint32_t i = 1; i <= 6; i++) {
        save(&h, i, i % 3);
        run_idle(&h);
        const uint8_t *data;
        uint64_t size;
        ck_assert_int_eq(sim_disk_image(h.disk, h.path, 1, &data, &size), 0);
        ck_assert_uint_eq(size, STORE_HARDSTATE_FILE_SIZE);
        struct store_hardstate_slot s[2];
        for (int k = 0; k < 2; k++) {
            ck_assert_int_eq(store_hardstate_decode_slot(data + k * 512, GROUP, &s[k]),
                             STORE_HARDSTATE_SLOT_VALID);
        }
        /* The first save fills both slots (sequences 1 and 2); each later save writes slot 0
         * then slot 1: after save i they hold it with sequences 2i - 1 and 2i. */
        ck_assert_uint_eq(s[0].sequence, 2 * i - 1);
        ck_assert_uint_eq(s[1].sequence, 2 * i);
        for (int k = 0; k < 2; k++) {
            ck_assert_uint_eq(s[k].term, i);
            ck_assert_uint_eq(s[k].vote, i % 3);
        }
    }
    harness_free(&h);
}
END_TEST

/* ---- coalescing ------------------------------------------------------------------------------ */

START_TEST(saves_while_one_is_in_flight_coalesce_and_complete_in_order) {
    struct harness h;
    harness_init(&h, 4);
    ck_assert_int_eq(load(&h).err, 0);
    for (int round = 0; round < 2;
         round++) { /* the first save (creating the file), then in place */
        uint64_t base = (uint64_t)round * 10;
        uint32_t first = h.saved_count;
        uint64_t t1 = save(&h, base + 1, 0);
        step(&h); /* the save is in flight */
        ck_assert(store_hardstate_busy(&h.hs));
        uint64_t t2 = save(&h, base + 2, 0);
        uint64_t t3 = save(&h, base + 2, 4);
        uint64_t t4 = save(&h, base + 3, 0);
        ck_assert_uint_eq(t4, t1 + 3);
        ck_assert_uint_eq(h.queue_count, 1); /* still one request at a time */
        run_idle(&h);
        ck_assert(!store_hardstate_busy(&h.hs));
        ck_assert_uint_eq(h.saved_count, first + 2);
        const struct store_hardstate_result *a = &h.saved[first], *b = &h.saved[first + 1];
        ck_assert_int_eq(a->err, 0);
        ck_assert_uint_eq(a->save_first, t1);
        ck_assert_uint_eq(a->save_last, t1);
        ck_assert_uint_eq(a->term, base + 1);
        ck_assert_int_eq(b->err, 0);
        ck_assert_uint_eq(b->save_first, t2);
        ck_assert_uint_eq(b->save_last, t4);
        ck_assert_uint_eq(b->term, base + 3);
        ck_assert_uint_eq(b->vote, 0);
        (void)t3;
    }
    process_exit(&h);
    struct store_hardstate_result res = load(&h);
    ck_assert_uint_eq(res.term, 13);
    ck_assert_uint_eq(res.vote, 0);
    harness_free(&h);
}
END_TEST

static void save_again_from_callback(struct harness *h, const struct store_hardstate_result *res) {
    if (h->on_saved_budget == 0) return;
    (void)res;
    h->on_saved_budget--;
    struct value latest = h->tickets[h->ticket_count]; /* may be newer than res: in flight */
    save(h, latest.term + 1, (uint32_t)(latest.term % 5));
    if (h->on_saved_budget % 2 == 0) save(h, latest.term + 2, 0); /* and one to coalesce */
}

START_TEST(a_save_from_inside_the_callback_queues_behind_the_next_write) {
    struct harness h;
    harness_init(&h, 5);
    ck_assert_int_eq(load(&h).err, 0);
    h.on_saved = save_again_from_callback;
    h.on_saved_budget = 6;
    save(&h, 1, 0);
    run_idle(&h); /* fake_disk asserts one request at a time throughout */
    ck_assert_uint_eq(h.on_saved_budget, 0);
    ck_assert_uint_eq(h.reported_last_ticket, h.ticket_count);
    struct value last = h.tickets[h.ticket_count];
    const struct store_hardstate_result *r = &h.saved[h.saved_count - 1];
    ck_assert(value_eq((struct value){r->term, r->vote}, last));
    process_exit(&h);
    struct store_hardstate_result res = load(&h);
    ck_assert(value_eq((struct value){res.term, res.vote}, last));
    harness_free(&h);
}
END_TEST

/* ---- crash consistency ----------------------------------------------------------------------- */

/* The next hard state a Raft node might persist: a vote in the current term, or a newer term. */
static struct value next_value(struct rq_rng *rng, struct value v) {
    if (v.vote == 0 && rq_rng_chance(rng, RQ_PPM / 2)) {
        v.vote = (uint32_t)rq_rng_range(rng, 1, 5);
        return v;
    }
    v.term += rq_rng_range(rng, 1, 3);
    v.vote = rq_rng_chance(rng, RQ_PPM / 2) ? (uint32_t)rq_rng_range(rng, 1, 5) : 0;
    return v;
}

/* Runs one life: load, then `saves` saves at random moments (often while one is in flight), until
 * everything completed or `crash_at` disk requests have run in total. Returns 1 if stopped. */
static int run_life(struct harness *h, struct rq_rng *work, uint32_t saves, uint64_t crash_at) {
    life_start(h);
    for (uint32_t i = 0; i < 100000; i++) {
        if (h->executed == crash_at) return 1;
        if (!h->loaded) {
            step(h);
            continue;
        }
        if (saves > 0 && (h->queue_count == 0 || rq_rng_chance(work, RQ_PPM / 3))) {
            struct value last = h->history.values[h->history.count - 1];
            struct value v = next_value(work, last);
            save(h, v.term, v.vote);
            saves--;
            continue;
        }
        if (h->queue_count == 0) return 0;
        step(h);
    }
    ck_abort_msg("life did not finish");
    return 0;
}

/* One run of seed: life 1 is stopped after crash_at requests (a power loss, or a kill -9 whose page
 * cache a later power loss tears); life 2 recovers, saves more and loses power at a random point;
 * life 3 recovers, saves once and restarts. Every load is checked by on_loaded against the history.
 * Returns the number of requests life 1 ran. */
static uint64_t crash_run(uint64_t seed, uint64_t crash_at, uint64_t *stats_lost) {
    struct harness h;
    harness_init(&h, seed);
    h.track_history = 1;
    struct rq_rng work, chaos;
    rq_rng_stream(&work, seed, 1);
    rq_rng_stream(&chaos, seed * 1000003u + crash_at, 2);

    uint32_t saves = (uint32_t)rq_rng_range(&work, 1, 8);
    int stopped = run_life(&h, &work, saves, crash_at);
    uint64_t life1_ops = h.executed;
    if (!stopped || rq_rng_chance(&chaos, RQ_PPM * 3 / 4))
        power_loss(&h);
    else
        process_exit(&h);

    uint32_t saves2 = (uint32_t)rq_rng_range(&work, 0, 5);
    run_life(&h, &work, saves2, h.executed + rq_rng_below(&chaos, 24));
    power_loss(&h);

    run_life(&h, &work, 1, UINT64_MAX);
    struct value last = h.history.values[h.history.count - 1];
    ck_assert_uint_eq(h.history.durable_index, h.history.count - 1);
    process_exit(&h);
    struct store_hardstate_result res = load(&h);
    ck_assert(value_eq((struct value){res.term, res.vote}, last));

    *stats_lost += sim_disk_stats(h.disk)->lost_writes + sim_disk_stats(h.disk)->torn_writes;
    harness_free(&h);
    return life1_ops;
}

START_TEST(crash_after_every_disk_operation_never_loses_or_mixes_state) {
    uint64_t runs = 0;
    uint64_t lost = 0;
    for (uint64_t seed = 1; seed <= CRASH_SEEDS; seed++) {
        uint64_t total = crash_run(seed, UINT64_MAX, &lost);
        ck_assert_uint_gt(total, 0);
        for (uint64_t k = 0; k <= total; k++) {
            crash_run(seed, k, &lost);
            runs++;
        }
    }
    ck_assert_uint_ge(runs, 5000);
    ck_assert_uint_gt(lost, 0); /* the crashes did drop or tear unsynced writes */
}
END_TEST

/* ---- failed fsync ---------------------------------------------------------------------------- */

START_TEST(fsync_eio_on_the_first_save_is_reported_and_never_durable) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct harness h;
        harness_init(&h, seed);
        ck_assert_int_eq(load(&h).err, 0);
        h.faults.fsync_eio_ppm = RQ_PPM;
        save(&h, 1, 1);
        run_idle(&h);
        ck_assert_uint_eq(h.saved_count, 1);
        ck_assert_int_eq(h.saved[0].err, RQ_EIO);
        ck_assert_uint_eq(h.saved[0].save_last, 1);
        ck_assert_int_eq(store_hardstate_save(&h.hs, 2, 0, NULL), RQ_EIO); /* sticky */
        ck_assert_uint_eq(h.queue_count, 0);
        /* Never renamed into place: after any crash the group is still fresh. */
        power_loss(&h);
        h.faults.fsync_eio_ppm = 0;
        struct store_hardstate_result res = load(&h);
        ck_assert_int_eq(res.err, 0);
        ck_assert_uint_eq(res.term, 0);
        harness_free(&h);
    }
}
END_TEST

START_TEST(fsync_eio_in_place_fails_every_outstanding_save) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct harness h;
        harness_init(&h, seed);
        ck_assert_int_eq(load(&h).err, 0);
        save(&h, 1, 0);
        run_idle(&h);
        h.faults.fsync_eio_ppm = RQ_PPM;
        save(&h, 2, 3);
        step(&h);       /* the write */
        save(&h, 3, 0); /* pending */
        run_idle(&h);
        ck_assert_uint_eq(h.saved_count, 2);
        ck_assert_int_eq(h.saved[1].err, RQ_EIO);
        ck_assert_uint_eq(h.saved[1].save_first, 2);
        ck_assert_uint_eq(h.saved[1].save_last, 3);
        ck_assert_uint_eq(h.saved[1].term, 1); /* still the last state reported durable */
        ck_assert_int_eq(store_hardstate_save(&h.hs, 4, 0, NULL), RQ_EIO);
        /* The failed write's fate is unknown: old or new, never the pending one, never a mix. */
        if (seed % 2)
            power_loss(&h);
        else
            process_exit(&h);
        h.faults.fsync_eio_ppm = 0;
        struct store_hardstate_result res = load(&h);
        ck_assert_int_eq(res.err, 0);
        ck_assert_msg((res.term == 1 && res.vote == 0) || (res.term == 2 && res.vote == 3),
                      "seed %llu: loaded term %llu vote %u", (unsigned long long)seed,
                      (unsigned long long)res.term, (unsigned)res.vote);
        harness_free(&h);
    }
}
END_TEST

START_TEST(fsync_eio_during_load_fails_the_load) {
    struct harness h;
    harness_init(&h, 6);
    ck_assert_int_eq(load(&h).err, 0);
    save(&h, 1, 0);
    run_idle(&h);
    process_exit(&h);
    h.faults.fsync_eio_ppm = RQ_PPM;
    struct store_hardstate_result res = load(&h);
    ck_assert_int_eq(res.err, RQ_EIO);
    ck_assert_int_eq(h.hs.state, STORE_HARDSTATE_FAILED);
    ck_assert_int_eq(store_hardstate_save(&h.hs, 2, 0, NULL), RQ_EIO);
    ck_assert_int_eq(error_lines, 1);
    harness_free(&h);
}
END_TEST

/* ---- corruption ------------------------------------------------------------------------------ */

START_TEST(one_rotten_slot_keeps_the_newest_state_and_both_rotten_is_corrupt) {
    struct harness h;
    harness_init(&h, 7);
    ck_assert_int_eq(load(&h).err, 0);
    save(&h, 1, 0);
    run_idle(&h);
    save(&h, 2, 5); /* slot 0 (sequence 3), then slot 1 (sequence 4): both hold term 2 */
    run_idle(&h);
    power_loss(&h);
    raw_flip(&h, 1 * 512 + 24, 0x04); /* the newest slot's term */
    struct store_hardstate_result res = load(&h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.term, 2); /* never rolled back below a reported save */
    ck_assert_uint_eq(res.vote, 5);
    ck_assert_int_eq(res.slot_ignored, 1);
    ck_assert_int_eq(warn_lines, 1);

    process_exit(&h);
    raw_flip(&h, 0 * 512 + 36, 0x80); /* and now both slots' CRCs, with no load in between */
    raw_flip(&h, 1 * 512 + 36, 0x80);
    res = load(&h);
    ck_assert_int_eq(res.err, RQ_ECORRUPT);
    ck_assert_int_eq(error_lines, 1);
    ck_assert_ptr_nonnull(strstr(last_error_line, "hs-0000000000000007.dat"));
    ck_assert_ptr_nonnull(strstr(last_error_line, "offset 0"));
    harness_free(&h);
}
END_TEST

/* A crash between a save's two writes leaves one slot new and one old. The load must bring the old
 * slot up to date before it reports, or a later rot of the new slot brings the old state back. */
START_TEST(load_repairs_a_slot_left_behind_by_a_crash_mid_save) {
    struct harness h;
    harness_init(&h, 9);
    ck_assert_int_eq(load(&h).err, 0);
    save(&h, 1, 0);
    run_idle(&h);
    save(&h, 2, 5);
    run_idle(&h);
    save(&h, 3, 0);
    step(&h); /* slot 0 written */
    step(&h); /* and fsynced: term 3 is durable there; slot 1 still holds term 2 */
    process_exit(&h);
    struct store_hardstate_result res = load(&h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.term, 3);
    process_exit(&h);
    raw_flip(&h, 0 * 512 + 24, 0x01); /* slot 0 rots after the load reported term 3 */
    res = load(&h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.term, 3); /* never term 2 again */
    ck_assert_uint_eq(res.vote, 0);
    harness_free(&h);
}
END_TEST

START_TEST(a_rewritten_slot_after_fallback_is_used_again) {
    struct harness h;
    harness_init(&h, 8);
    ck_assert_int_eq(load(&h).err, 0);
    save(&h, 1, 0);
    run_idle(&h);
    save(&h, 2, 0);
    run_idle(&h);
    process_exit(&h);
    raw_flip(&h, 1 * 512 + 3, 0x01); /* slot 1 rots */
    struct store_hardstate_result res = load(&h);
    ck_assert_uint_eq(res.term, 2);
    ck_assert_int_eq(res.slot_ignored, 1);
    save(&h, 3, 1); /* rewrites both slots, the rotten one included */
    run_idle(&h);
    process_exit(&h);
    res = load(&h);
    ck_assert_uint_eq(res.term, 3);
    ck_assert_uint_eq(res.vote, 1);
    ck_assert_int_eq(res.slot_ignored, 0);
    harness_free(&h);
}
END_TEST

/* sim_disk_corrupt flips one random synced bit of the file: the load always returns the newest
 * state (both slots hold it); never an error, never another value. */
START_TEST(random_latent_bit_flips_never_yield_a_wrong_value) {
    uint32_t ignored = 0, padding = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct harness h;
        harness_init(&h, seed);
        ck_assert_int_eq(load(&h).err, 0);
        struct rq_rng work;
        rq_rng_stream(&work, seed, 1);
        uint32_t saves = (uint32_t)rq_rng_range(&work, 1, 5);
        struct value v = {0, 0}, prev = {0, 0};
        for (uint32_t i = 0; i < saves; i++) {
            prev = v;
            v = next_value(&work, v);
            save(&h, v.term, v.vote);
            run_idle(&h);
        }
        if (saves == 1) prev = v; /* the first save fills both slots */
        power_loss(&h);
        char path[RQ_DISK_PATH_MAX];
        uint64_t offset;
        ck_assert_int_eq(sim_disk_corrupt(h.disk, &h.disk_rng, "hs-", path, &offset), 0);
        ck_assert_str_eq(path, h.path);
        struct store_hardstate_result res = load(&h);
        ck_assert_int_eq(res.err, 0);
        int hit_record = offset % 512 < STORE_HARDSTATE_RECORD_SIZE;
        struct value got = {res.term, res.vote};
        ck_assert(value_eq(got, v));
        (void)prev;
        ck_assert_int_eq(res.slot_ignored, hit_record);
        ignored += (uint32_t)hit_record;
        padding += (uint32_t)!hit_record;
        harness_free(&h);
    }
    ck_assert_uint_gt(ignored, 0);
    ck_assert_uint_gt(padding, 0);
}
END_TEST

/* ---- files the store did not write: a table ----------------------------------------------------
 */

enum file_kind {
    FILE_EMPTY,
    FILE_GARBAGE,
    FILE_TEXT,
    FILE_ZEROS,
    FILE_TOO_LONG,
    FILE_PAIR, /* two slots from the row's fields */
};

struct load_case {
    const char *name;
    enum file_kind kind;
    /* FILE_PAIR: each slot; valid = 0 leaves it zeroed (never written) */
    struct {
        int valid;
        uint32_t magic;
        uint16_t version;
        uint64_t group;
        uint64_t sequence;
        uint64_t term;
        uint32_t vote;
    } slot[2];
    int err;
    uint64_t term;
    uint32_t vote;
    int slot_ignored;
};

#define OK_SLOT(seq, t, v)                                                                         \
    { 1, STORE_HARDSTATE_MAGIC, STORE_HARDSTATE_VERSION, GROUP, seq, t, v }
#define NO_SLOT                                                                                    \
    { 0, 0, 0, 0, 0, 0, 0 }

static const struct load_case load_cases[] = {
    {"empty file is a fresh group", FILE_EMPTY, {NO_SLOT, NO_SLOT}, 0, 0, 0, 0},
    {"random garbage (foreign file)", FILE_GARBAGE, {NO_SLOT, NO_SLOT}, RQ_ECORRUPT, 0, 0, 0},
    {"short text file", FILE_TEXT, {NO_SLOT, NO_SLOT}, RQ_ECORRUPT, 0, 0, 0},
    {"1024 zero bytes", FILE_ZEROS, {NO_SLOT, NO_SLOT}, RQ_ECORRUPT, 0, 0, 0},
    {"valid slots but 2048 bytes",
     FILE_TOO_LONG,
     {OK_SLOT(1, 1, 0), OK_SLOT(2, 1, 0)},
     RQ_ECORRUPT,
     0,
     0,
     0},
    {"newest in slot 1", FILE_PAIR, {OK_SLOT(5, 7, 2), OK_SLOT(6, 8, 0)}, 0, 8, 0, 0},
    {"newest in slot 0", FILE_PAIR, {OK_SLOT(6, 8, 0), OK_SLOT(5, 7, 2)}, 0, 8, 0, 0},
    {"vote granted within a term", FILE_PAIR, {OK_SLOT(5, 4, 0), OK_SLOT(6, 4, 3)}, 0, 4, 3, 0},
    {"only slot 0 valid", FILE_PAIR, {OK_SLOT(5, 7, 2), NO_SLOT}, 0, 7, 2, 1},
    {"only slot 1 valid", FILE_PAIR, {NO_SLOT, OK_SLOT(9, 3, 1)}, 0, 3, 1, 1},
    {"other group",
     FILE_PAIR,
     {{1, STORE_HARDSTATE_MAGIC, 1, GROUP + 1, 1, 1, 0}, NO_SLOT},
     RQ_ECORRUPT,
     0,
     0,
     0},
    {"other group in the older slot",
     FILE_PAIR,
     {OK_SLOT(2, 1, 0), {1, STORE_HARDSTATE_MAGIC, 1, GROUP + 1, 1, 1, 0}},
     RQ_ECORRUPT,
     0,
     0,
     0},
    {"unknown version",
     FILE_PAIR,
     {OK_SLOT(1, 1, 0), {1, STORE_HARDSTATE_MAGIC, 2, GROUP, 2, 1, 0}},
     RQ_ECORRUPT,
     0,
     0,
     0},
    {"wrong magic", FILE_PAIR, {{1, 0x12345678, 1, GROUP, 1, 1, 0}, NO_SLOT}, RQ_ECORRUPT, 0, 0, 0},
    {"sequence 0", FILE_PAIR, {OK_SLOT(0, 1, 0), NO_SLOT}, RQ_ECORRUPT, 0, 0, 0},
    {"equal sequences", FILE_PAIR, {OK_SLOT(4, 1, 0), OK_SLOT(4, 2, 0)}, RQ_ECORRUPT, 0, 0, 0},
    {"sequence gap", FILE_PAIR, {OK_SLOT(4, 1, 0), OK_SLOT(6, 2, 0)}, RQ_ECORRUPT, 0, 0, 0},
    {"term went back", FILE_PAIR, {OK_SLOT(4, 5, 0), OK_SLOT(5, 4, 0)}, RQ_ECORRUPT, 0, 0, 0},
    {"vote changed within a term",
     FILE_PAIR,
     {OK_SLOT(4, 5, 1), OK_SLOT(5, 5, 2)},
     RQ_ECORRUPT,
     0,
     0,
     0},
};

static size_t build_file(const struct load_case *c, struct rq_rng *rng, uint8_t *buf) {
    memset(buf, 0, 2 * STORE_HARDSTATE_FILE_SIZE);
    switch (c->kind) {
    case FILE_EMPTY: return 0;
    case FILE_TEXT: memcpy(buf, "hello, world\n", 13); return 13;
    case FILE_ZEROS: return STORE_HARDSTATE_FILE_SIZE;
    case FILE_GARBAGE:
        for (size_t i = 0; i < STORE_HARDSTATE_FILE_SIZE; i++)
            buf[i] = (uint8_t)rq_rng_next(rng);
        return STORE_HARDSTATE_FILE_SIZE;
    case FILE_TOO_LONG:
    case FILE_PAIR:
        for (int k = 0; k < 2; k++) {
            if (!c->slot[k].valid) continue;
            craft_slot(buf + k * 512, c->slot[k].magic, c->slot[k].version, c->slot[k].group,
                       c->slot[k].sequence, c->slot[k].term, c->slot[k].vote);
        }
        return c->kind == FILE_PAIR ? STORE_HARDSTATE_FILE_SIZE : 2 * STORE_HARDSTATE_FILE_SIZE;
    }
    return 0;
}

START_TEST(load_table) {
    const struct load_case *c = &load_cases[_i];
    struct harness h;
    harness_init(&h, 9 + (uint64_t)_i);
    uint8_t buf[2 * STORE_HARDSTATE_FILE_SIZE];
    size_t size = build_file(c, &h.disk_rng, buf);
    raw_put(&h, h.path, buf, size);
    struct store_hardstate_result res = load(&h);
    ck_assert_msg(res.err == c->err, "%s: err %d, expected %d", c->name, res.err, c->err);
    if (c->err != 0) {
        ck_assert_int_eq(h.hs.state, STORE_HARDSTATE_FAILED);
        ck_assert_uint_eq(res.term, 0);
        ck_assert_uint_eq(res.vote, 0);
        ck_assert_msg(strstr(last_error_line, h.path) && strstr(last_error_line, "offset"),
                      "%s: error log line names no file and offset: %s", c->name, last_error_line);
        harness_free(&h);
        return;
    }
    ck_assert_msg(res.term == c->term && res.vote == c->vote, "%s: term %llu vote %u", c->name,
                  (unsigned long long)res.term, (unsigned)res.vote);
    ck_assert_int_eq(res.slot_ignored, c->slot_ignored);
    ck_assert_int_eq(error_lines, 0);
    /* The store carries on from what it loaded, and a restart reads back the new state. */
    save(&h, c->term + 1, 0);
    run_idle(&h);
    ck_assert_int_eq(h.saved[0].err, 0);
    power_loss(&h);
    res = load(&h);
    ck_assert_int_eq(res.err, 0);
    ck_assert_uint_eq(res.term, c->term + 1);
    ck_assert_uint_eq(res.vote, 0);
    ck_assert_int_eq(res.slot_ignored, 0);
    harness_free(&h);
}
END_TEST

/* ---- Raft invariants are asserted ------------------------------------------------------------ */

START_TEST(term_decrease_aborts) {
    struct harness h;
    harness_init(&h, 10);
    load(&h);
    save(&h, 5, 1);
    store_hardstate_save(&h.hs, 4, 0, NULL);
}
END_TEST

START_TEST(term_decrease_against_a_pending_save_aborts) {
    struct harness h;
    harness_init(&h, 11);
    load(&h);
    save(&h, 1, 0);
    save(&h, 5, 0); /* pending */
    store_hardstate_save(&h.hs, 3, 0, NULL);
}
END_TEST

START_TEST(changing_the_vote_within_a_term_aborts) {
    struct harness h;
    harness_init(&h, 12);
    load(&h);
    save(&h, 5, 1);
    store_hardstate_save(&h.hs, 5, 2, NULL);
}
END_TEST

START_TEST(term_below_the_loaded_one_aborts) {
    struct harness h;
    harness_init(&h, 13);
    load(&h);
    save(&h, 5, 1);
    run_idle(&h);
    process_exit(&h);
    load(&h);
    store_hardstate_save(&h.hs, 4, 0, NULL);
}
END_TEST

START_TEST(save_before_load_aborts) {
    struct harness h;
    harness_init(&h, 14);
    store_hardstate_init(&h.hs, &h.io, GROUP, on_done, &h);
    store_hardstate_save(&h.hs, 1, 0, NULL);
}
END_TEST

START_TEST(foreign_requests_are_not_claimed) {
    struct harness h;
    harness_init(&h, 15);
    load(&h);
    struct rq_disk_req other = {.op = RQ_DISK_FSYNC, .user = GROUP};
    ck_assert_int_eq(store_hardstate_on_disk_done(&h.hs, &other), 0);
    harness_free(&h);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("hardstate");

    TCase *basic = tcase_create("basic");
    tcase_add_checked_fixture(basic, logcapture_start, logcapture_stop);
    tcase_add_test(basic, fresh_directory_loads_term_0_vote_0_without_writing);
    tcase_add_test(basic, path_is_valid_and_fixed_width);
    tcase_add_test(basic, slot_encoding_matches_the_documented_layout);
    tcase_add_test(basic, save_then_load_round_trips_across_process_exit_and_power_loss);
    tcase_add_test(basic, every_save_leaves_both_slots_holding_it_with_increasing_sequence);
    tcase_add_test(basic, saves_while_one_is_in_flight_coalesce_and_complete_in_order);
    tcase_add_test(basic, a_save_from_inside_the_callback_queues_behind_the_next_write);
    tcase_add_test(basic, foreign_requests_are_not_claimed);
    suite_add_tcase(suite, basic);

    TCase *crash = tcase_create("crash");
    tcase_set_timeout(crash,
                      600); /* a generous bound for slow sanitizer builds, not a timing test */
    tcase_add_checked_fixture(crash, logcapture_start, logcapture_stop);
    tcase_add_test(crash, crash_after_every_disk_operation_never_loses_or_mixes_state);
    suite_add_tcase(suite, crash);

    TCase *eio = tcase_create("eio");
    tcase_add_checked_fixture(eio, logcapture_start, logcapture_stop);
    tcase_add_test(eio, fsync_eio_on_the_first_save_is_reported_and_never_durable);
    tcase_add_test(eio, fsync_eio_in_place_fails_every_outstanding_save);
    tcase_add_test(eio, fsync_eio_during_load_fails_the_load);
    suite_add_tcase(suite, eio);

    TCase *corrupt = tcase_create("corruption");
    tcase_set_timeout(corrupt, 600);
    tcase_add_checked_fixture(corrupt, logcapture_start, logcapture_stop);
    tcase_add_test(corrupt, one_rotten_slot_keeps_the_newest_state_and_both_rotten_is_corrupt);
    tcase_add_test(corrupt, a_rewritten_slot_after_fallback_is_used_again);
    tcase_add_test(corrupt, load_repairs_a_slot_left_behind_by_a_crash_mid_save);
    tcase_add_test(corrupt, random_latent_bit_flips_never_yield_a_wrong_value);
    tcase_add_loop_test(corrupt, load_table, 0, (int)(sizeof load_cases / sizeof load_cases[0]));
    suite_add_tcase(suite, corrupt);

    TCase *inv = tcase_create("raft-invariants");
    tcase_add_test_raise_signal(inv, term_decrease_aborts, SIGABRT);
    tcase_add_test_raise_signal(inv, term_decrease_against_a_pending_save_aborts, SIGABRT);
    tcase_add_test_raise_signal(inv, changing_the_vote_within_a_term_aborts, SIGABRT);
    tcase_add_test_raise_signal(inv, term_below_the_loaded_one_aborts, SIGABRT);
    tcase_add_test_raise_signal(inv, save_before_load_aborts, SIGABRT);
    suite_add_tcase(suite, inv);

    return run_suites(srunner_create(suite));
}
