#include "sim/sim_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"

enum {
    EVENT_CHUNK = 4096,
    HEAP_INITIAL = 4096,
    STREAM_NET = 0, STREAM_DISK, STREAM_FAULTS, STREAM_WORKLOAD, STREAM_CLOCK, STREAM_PROC_FIRST,
};

void sim_config_default(struct sim_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    cfg->workload = &sim_workload_raftkv;
    cfg->servers = 3;
    cfg->clients = UINT32_MAX;
    cfg->duration_ns = 20ull * 1000000000u;
    cfg->heal_ns = 5ull * 1000000000u;
    cfg->faults = SIM_FAULT_ALL;
    cfg->swarm = 1;
    cfg->max_drift_ppm = 200;
}

/* ---- events ---------------------------------------------------------------------------------- */

struct sim_event *sim_event_new(struct sim *s, uint8_t type, uint32_t proc) {
    if (s->free_events == NULL) {
        RQ_ASSERT(s->events_allocated < SIM_EVENTS_MAX);
        struct sim_event *chunk = calloc(EVENT_CHUNK, sizeof *chunk);
        RQ_ASSERT(chunk != NULL);
        struct sim_event **chunks = realloc(s->event_chunks, (s->event_chunk_count + 1) * sizeof *chunks);
        RQ_ASSERT(chunks != NULL);
        s->event_chunks = chunks;
        s->event_chunks[s->event_chunk_count++] = chunk;
        for (uint32_t i = 0; i < EVENT_CHUNK; i++) {
            chunk[i].next_free = s->free_events;
            s->free_events = &chunk[i];
        }
        s->events_allocated += EVENT_CHUNK;
    }
    struct sim_event *ev = s->free_events;
    s->free_events = ev->next_free;
    memset(ev, 0, sizeof *ev);
    ev->type = type;
    ev->proc = proc;
    return ev;
}

void sim_event_free(struct sim *s, struct sim_event *ev) {
    free(ev->data);
    ev->data = NULL;
    ev->next_free = s->free_events;
    s->free_events = ev;
}

void sim_event_push(struct sim *s, uint64_t at_ns, struct sim_event *ev) {
    RQ_ASSERT(at_ns >= s->now_ns);
    if (s->heap.count == s->heap.cap) {
        size_t cap = s->heap.cap * 2;
        RQ_ASSERT(cap <= SIM_EVENTS_MAX);
        struct rq_heap_entry *grown = realloc(s->heap.entries, cap * sizeof *grown);
        RQ_ASSERT(grown != NULL);
        s->heap.entries = grown;
        s->heap.cap = cap;
    }
    int rc = rq_heap_push(&s->heap, at_ns, s->seq++, ev);
    RQ_ASSERT(rc == 0);
}

/* ---- trace and hash -------------------------------------------------------------------------- */

void sim_hash(struct sim *s, uint64_t v) {
    s->trace_hash = rq_mix64(s->trace_hash ^ v) + 0x9E3779B97F4A7C15ull;
}

void sim_trace(struct sim *s, const char *fmt, ...) {
    if (s->cfg.trace == NULL) return;
    fprintf(s->cfg.trace, "t=%llu.%06llus sim  ", (unsigned long long)(s->now_ns / 1000000000u),
            (unsigned long long)(s->now_ns % 1000000000u / 1000u));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->cfg.trace, fmt, ap);
    va_end(ap);
    fputc('\n', s->cfg.trace);
}

void sim_note(struct sim *s, uint64_t v, const char *fmt, ...) {
    sim_hash(s, v);
    if (s->cfg.trace == NULL) return;
    char line[RQ_LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    sim_trace(s, "%s", line);
}

void sim_fail(struct sim *s, const char *fmt, ...) {
    if (s->failed) return;
    s->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->failure, sizeof s->failure, fmt, ap);
    va_end(ap);
    sim_trace(s, "CHECK FAILED: %s", s->failure);
}

int sim_failed(const struct sim *s) { return s->failed; }

/* Node log lines arrive stamped "t=<node clock> nN ..."; the trace leads with simulated time so
 * lines sort, and keeps the node's own (drifting) clock as "clock=". */
static void log_sink(void *arg, enum rq_log_level level, const char *line, size_t len) {
    struct sim *s = arg;
    (void)level;
    if (s->cfg.trace == NULL) return;
    if (len > 2 && line[0] == 't' && line[1] == '=') {
        line += 2;
        len -= 2;
    }
    fprintf(s->cfg.trace, "t=%llu.%06llus clock=%.*s\n", (unsigned long long)(s->now_ns / 1000000000u),
            (unsigned long long)(s->now_ns % 1000000000u / 1000u), (int)len, line);
}

static const char *disk_op_name(enum rq_disk_op op) {
    static const char *names[] = {"?", "open", "close", "pwrite", "pread", "fsync", "truncate",
                                  "rename", "unlink", "list", "fsync-dir", "mkdir"};
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "?";
}

static void recent_record(struct sim *s, const struct sim_event *ev) {
    struct recent_event *r = &s->recent[s->recent_count++ % SIM_RECENT_EVENTS];
    r->time_ns = s->now_ns;
    r->type = ev->type;
    r->action = ev->action;
    r->proc_id = ev->type == EV_FAULT || ev->type == EV_HEAL ? 0 : s->procs[ev->proc].id;
    r->from_id = ev->type == EV_DELIVER ? s->procs[ev->from].id : 0;
    r->len = ev->len;
}

void sim_print_recent(const struct sim *s, FILE *out) {
    static const char *names[] = {"?", "start", "deliver", "timer", "disk", "conn-closed", "fault", "heal"};
    uint64_t n = s->recent_count < SIM_RECENT_EVENTS ? s->recent_count : SIM_RECENT_EVENTS;
    fprintf(out, "last %llu events:\n", (unsigned long long)n);
    for (uint64_t i = s->recent_count - n; i < s->recent_count; i++) {
        const struct recent_event *r = &s->recent[i % SIM_RECENT_EVENTS];
        fprintf(out, "  t=%llu.%06llus %-11s", (unsigned long long)(r->time_ns / 1000000000u),
                (unsigned long long)(r->time_ns % 1000000000u / 1000u),
                names[r->type < 8 ? r->type : 0]);
        if (r->proc_id) fprintf(out, " n%u", r->proc_id);
        if (r->type == EV_DELIVER) fprintf(out, " <- n%u %uB", r->from_id, r->len);
        if (r->type == EV_FAULT) fprintf(out, " action=%u", r->action);
        fputc('\n', out);
    }
}

/* ---- processes ------------------------------------------------------------------------------- */

struct sim_proc *sim_proc_by_id(struct sim *s, uint32_t id) {
    if (id >= 1 && id <= s->cfg.servers) return &s->procs[id - 1];
    if (id >= SIM_CLIENT_ID_BASE && id - SIM_CLIENT_ID_BASE < s->cfg.clients) {
        return &s->procs[s->cfg.servers + (id - SIM_CLIENT_ID_BASE)];
    }
    return NULL;
}

static const struct sim_proc *proc_const(const struct sim *s, uint32_t id) {
    return sim_proc_by_id((struct sim *)s, id);
}

/* The process's clock now. With --clock-break a pause also stops the clock, like a VM whose
 * monotonic clock does not count the time it was suspended: when the process runs again, its
 * clock goes on from where it stood, and it cannot tell that time passed. */
static void proc_unfreeze(struct sim_proc *p, uint64_t at_true_ns) {
    if (!p->clock_frozen) return;
    sim_clock_init(&p->clock, at_true_ns, p->frozen_local_ns, p->clock.drift_ppm);
    p->clock_frozen = 0;
}

static uint64_t proc_clock_now(struct sim_proc *p) {
    struct sim *s = p->sim;
    if (p->clock_frozen) {
        if (s->now_ns < p->paused_until) return p->frozen_local_ns;
        proc_unfreeze(p, p->paused_until);
    }
    return sim_clock_local(&p->clock, s->now_ns);
}

static uint64_t io_now(void *env) { return proc_clock_now(env); }

static void io_set_timer(void *env, uint64_t at_ns) {
    struct sim_proc *p = env;
    struct sim *s = p->sim;
    uint64_t at = sim_clock_true_at(&p->clock, at_ns);
    if (at < s->now_ns) at = s->now_ns;
    p->timer_local_ns = at_ns;
    struct sim_event *ev = sim_event_new(s, EV_TIMER, p->index);
    ev->gen = ++p->timer_gen;
    ev->incarnation = p->incarnation;
    sim_event_push(s, at, ev);
}

static void io_send(void *env, uint32_t to_node, const void *buf, size_t len) {
    struct sim_proc *p = env;
    struct sim *s = p->sim;
    struct sim_proc *to = sim_proc_by_id(s, to_node);
    s->stats.messages_sent++;
    /* Servers talk to servers; clients talk to servers over their connection. */
    if (to == NULL || to->is_client || to == p || len > RQ_MSG_MAX) {
        s->stats.messages_dropped++;
        sim_note(s, 0xBAD, "n%u -> n%u: %zu bytes dropped: no such peer or too long", p->id, to_node, len);
        return;
    }
    uint64_t conn = 0;
    if (p->is_client) {
        conn = (uint64_t)p->id << 32 | p->incarnation;
        p->servers_contacted |= 1u << to->index;
    }
    net_transmit(s, p, to, p->is_client, conn, buf, len);
}

static void io_reply(void *env, uint64_t conn, const void *buf, size_t len) {
    struct sim_proc *p = env;
    struct sim *s = p->sim;
    struct sim_proc *to = sim_proc_by_id(s, (uint32_t)(conn >> 32));
    s->stats.messages_sent++;
    /* The connection died with the client's incarnation. */
    if (p->is_client || to == NULL || !to->is_client || to->incarnation != (uint32_t)conn ||
        len > RQ_MSG_MAX) {
        s->stats.messages_dropped++;
        return;
    }
    net_transmit(s, p, to, 0, conn, buf, len);
}

static uint64_t disk_latency_ns(struct sim *s, const struct rq_disk_req *req) {
    switch (req->op) {
    case RQ_DISK_FSYNC:
    case RQ_DISK_FSYNC_DIR: return rq_rng_range(&s->rng_disk, 100000, 2000000);
    case RQ_DISK_PWRITE:
    case RQ_DISK_PREAD: return rq_rng_range(&s->rng_disk, 2000, 20000) + req->len / 2;  /* ~500 MB/s */
    default: return rq_rng_range(&s->rng_disk, 2000, 30000);
    }
}

static void io_disk(void *env, struct rq_disk_req *req) {
    struct sim_proc *p = env;
    struct sim *s = p->sim;
    RQ_ASSERT(p->disk != NULL);  /* clients have no disk */
    RQ_ASSERT(p->up);
    /* One worker per node: requests complete in submission order. */
    uint64_t start = p->disk_busy_until > s->now_ns ? p->disk_busy_until : s->now_ns;
    uint64_t done = start + disk_latency_ns(s, req);
    p->disk_busy_until = done;
    struct sim_event *ev = sim_event_new(s, EV_DISK, p->index);
    ev->req = req;
    ev->incarnation = p->incarnation;
    sim_event_push(s, done, ev);
}

static void io_halt(void *env, const char *reason) {
    struct sim_proc *p = env;
    sim_note(p->sim, 0x4A17 ^ p->id, "n%u halts: %s", p->id, reason);
    p->halt_requested = 1;
}

static void proc_enter(struct sim_proc *p) { rq_ctx_set(&p->ctx); }
static void proc_leave(void) { rq_ctx_set(NULL); }

static void proc_boot(struct sim *s, struct sim_proc *p) {
    RQ_ASSERT(!p->up);
    p->io.seed = rq_mix64(s->cfg.seed ^ ((uint64_t)p->id << 40) ^ ((uint64_t)p->incarnation << 20));
    rq_rng_seed(&p->rng, p->io.seed);
    p->up = 1;
    p->restart_pending = 0;
    p->halt_requested = 0;
    proc_unfreeze(p, s->now_ns);
    p->paused_until = 0;
    p->servers_contacted = 0;
    proc_enter(p);
    p->node = p->ops->create(&p->io, s->workload);
    RQ_ASSERT(p->node != NULL);
    p->ops->on_start(p->node);
    proc_leave();
}

void sim_crash(struct sim *s, uint32_t id, int power_loss) {
    struct sim_proc *p = sim_proc_by_id(s, id);
    RQ_ASSERT(p != NULL);
    if (!p->up) return;
    sim_note(s, 0xC7A5 ^ id ^ ((uint64_t)power_loss << 32), "crash n%u%s", id,
             power_loss ? " with power loss" : " (process only)");
    s->stats.crashes++;
    proc_enter(p);
    p->ops->destroy(p->node);
    proc_leave();
    p->node = NULL;
    p->up = 0;
    p->incarnation++;  /* orphans this incarnation's timers and disk completions */
    p->timer_gen++;
    proc_unfreeze(p, s->now_ns);
    p->paused_until = 0;
    p->disk_busy_until = s->now_ns;
    if (p->disk && power_loss) sim_disk_crash(p->disk, &s->rng_disk);
    else if (p->disk) sim_disk_process_exit(p->disk);
    if (p->is_client) {
        for (uint32_t i = 0; i < s->cfg.servers; i++) {
            if (!(p->servers_contacted & (1u << i))) continue;
            struct sim_event *ev = sim_event_new(s, EV_CONN_CLOSED, i);
            ev->conn = (uint64_t)p->id << 32 | (p->incarnation - 1);
            sim_event_push(s, s->now_ns + s->latency_min_ns, ev);
        }
    }
}

void sim_restart(struct sim *s, uint32_t id) {
    struct sim_proc *p = sim_proc_by_id(s, id);
    RQ_ASSERT(p != NULL);
    if (p->up) return;
    sim_note(s, 0x5747 ^ id, "restart n%u", id);
    s->stats.restarts++;
    proc_boot(s, p);
}

void sim_power_cycle_servers(struct sim *s) {
    for (uint32_t id = 1; id <= sim_servers(s); id++) {
        if (sim_is_up(s, id)) sim_crash(s, id, 1);
        sim_restart(s, id);
    }
}

void sim_isolate_servers(struct sim *s) {
    for (uint32_t a = 1; a <= sim_servers(s); a++)
        for (uint32_t b = 1; b <= sim_servers(s); b++)
            if (a != b) sim_net_cut(s, a, b);
}

void sim_crash_restart(struct sim *s, uint32_t id, int power_loss, uint64_t down_ns) {
    struct sim_proc *p = sim_proc_by_id(s, id);
    RQ_ASSERT(p != NULL);
    sim_crash(s, id, power_loss);
    if (p->restart_pending) return;
    p->restart_pending = 1;
    struct sim_event *ev = sim_event_new(s, EV_START, p->index);
    sim_event_push(s, s->now_ns + down_ns, ev);
}

void sim_pause(struct sim *s, uint32_t id, uint64_t pause_ns) {
    struct sim_proc *p = sim_proc_by_id(s, id);
    RQ_ASSERT(p != NULL);
    if (!p->up) return;
    s->stats.pauses++;
    uint64_t until = s->now_ns + pause_ns;
    if (s->cfg.clock_break && !p->clock_frozen) {
        p->frozen_local_ns = proc_clock_now(p);
        p->clock_frozen = 1;
    }
    if (until > p->paused_until) p->paused_until = until;
    sim_note(s, 0xBA05 ^ id, "pause n%u for %llu.%03llus", id, (unsigned long long)(pause_ns / 1000000000u),
             (unsigned long long)(pause_ns % 1000000000u / 1000000u));
}

/* ---- dispatch -------------------------------------------------------------------------------- */

static void dispatch_timer(struct sim *s, struct sim_proc *p, struct sim_event *ev) {
    if (!p->up || ev->incarnation != p->incarnation || ev->gen != p->timer_gen) return;
    if (proc_clock_now(p) < p->timer_local_ns) {
        /* The clock stood still during a pause (--clock-break): not due yet on this clock. */
        struct sim_event *again = sim_event_new(s, EV_TIMER, p->index);
        again->gen = p->timer_gen;
        again->incarnation = p->incarnation;
        sim_event_push(s, sim_clock_true_at(&p->clock, p->timer_local_ns), again);
        return;
    }
    sim_hash(s, 0x71AE ^ p->id);
    proc_enter(p);
    p->ops->on_timer(p->node);
    proc_leave();
}

static void dispatch_disk(struct sim *s, struct sim_proc *p, struct sim_event *ev) {
    /* After a crash the request's memory belongs to a node that no longer exists: never touch it. */
    if (!p->up || ev->incarnation != p->incarnation) return;
    struct rq_disk_req *req = ev->req;
    struct sim_disk_faults faults = {p->disk_full, p->fsync_eio_ppm, 0};
    sim_disk_execute(p->disk, req, &faults, &s->rng_disk);
    s->stats.disk_ops++;
    sim_hash(s, ((uint64_t)req->op << 56) ^ ((uint64_t)p->id << 48) ^ (uint64_t)req->result ^ req->offset);
    if (s->cfg.trace) {
        sim_trace(s, "n%u disk %s file=%d path=%s off=%llu len=%zu -> %lld", p->id, disk_op_name(req->op),
                  req->file, req->path, (unsigned long long)req->offset, req->len,
                  (long long)req->result);
    }
    proc_enter(p);
    p->ops->on_disk_done(p->node, req);
    proc_leave();
}

static void dispatch_conn_closed(struct sim *s, struct sim_proc *p, struct sim_event *ev) {
    if (!p->up) return;
    sim_hash(s, 0xC105 ^ ev->conn);
    proc_enter(p);
    p->ops->on_conn_closed(p->node, ev->conn);
    proc_leave();
}

/* Whether the event targets a paused process, in which case it waits until the pause ends. */
static int deferred_by_pause(struct sim *s, struct sim_event *ev) {
    if (ev->type == EV_FAULT || ev->type == EV_HEAL || ev->type == EV_START) return 0;
    struct sim_proc *p = &s->procs[ev->proc];
    if (!p->up || p->paused_until <= s->now_ns) return 0;
    sim_event_push(s, p->paused_until, ev);
    return 1;
}

static void dispatch(struct sim *s, struct sim_event *ev) {
    struct sim_proc *p = &s->procs[ev->proc];
    switch (ev->type) {
    case EV_START:
        p->restart_pending = 0;
        if (!p->up) sim_restart(s, p->id);
        break;
    case EV_DELIVER: net_deliver(s, ev); break;
    case EV_TIMER: dispatch_timer(s, p, ev); break;
    case EV_DISK: dispatch_disk(s, p, ev); break;
    case EV_CONN_CLOSED: dispatch_conn_closed(s, p, ev); break;
    case EV_FAULT: faults_act(s, ev); break;
    case EV_HEAL: faults_heal(s); break;
    default: RQ_UNREACHABLE();
    }
    /* A node that called io->halt stops now, after its handler returned. */
    if (p->halt_requested && ev->type != EV_FAULT && ev->type != EV_HEAL) {
        p->halt_requested = 0;
        s->stats.halts++;
        /* Two draws, two statements: argument evaluation order differs between compilers. */
        int power_loss = rq_rng_chance(&s->rng_faults, RQ_PPM / 2);
        uint64_t down_ns = rq_rng_range(&s->rng_faults, 50000000, 1000000000);
        sim_crash_restart(s, p->id, power_loss, down_ns);
    }
}

/* Runs one event; returns 0 when there is none left before `until`. */
static int step(struct sim *s, uint64_t until) {
    const struct rq_heap_entry *top = rq_heap_peek(&s->heap);
    if (top == NULL || top->key > until) return 0;
    struct rq_heap_entry e;
    rq_heap_pop(&s->heap, &e);
    RQ_ASSERT(e.key >= s->now_ns);
    s->now_ns = e.key;
    struct sim_event *ev = e.value;
    if (deferred_by_pause(s, ev)) return 1;
    s->stats.events++;
    sim_hash(s, s->now_ns);
    sim_hash(s, ((uint64_t)ev->type << 32) | ev->proc);
    recent_record(s, ev);
    dispatch(s, ev);
    sim_event_free(s, ev);
    if (s->cfg.workload->after_event && !s->failed) s->cfg.workload->after_event(s, s->workload);
    return 1;
}

void sim_start(struct sim *s) {
    if (s->started) return;
    s->started = 1;
    char line[256];
    sim_swarm_describe(s, line, sizeof line);
    sim_note(s, 0, "seed=%llu workload=%s servers=%u clients=%u %s", (unsigned long long)s->cfg.seed,
             s->cfg.workload->name, s->cfg.servers, s->cfg.clients, line);
    for (uint32_t i = 0; i < s->proc_count; i++) {
        struct sim_event *ev = sim_event_new(s, EV_START, i);
        s->procs[i].restart_pending = 1;
        sim_event_push(s, rq_rng_range(&s->rng_faults, 0, 1000000), ev);
    }
    faults_schedule_all(s);
    if (s->cfg.heal_ns < s->cfg.duration_ns) {
        sim_event_push(s, s->cfg.duration_ns - s->cfg.heal_ns, sim_event_new(s, EV_HEAL, 0));
    }
}

void sim_run_until(struct sim *s, uint64_t t_ns) {
    sim_start(s);
    while (!s->failed) {
        if (s->cfg.events_max && s->stats.events >= s->cfg.events_max) break;
        if (!step(s, t_ns)) break;
    }
    if (!s->failed && s->now_ns < t_ns) s->now_ns = t_ns;
}

int sim_run(struct sim *s, struct sim_result *out) {
    sim_run_until(s, s->cfg.duration_ns);
    if (!s->failed && s->cfg.workload->on_end) s->cfg.workload->on_end(s, s->workload);
    memset(out, 0, sizeof *out);
    out->failed = s->failed;
    memcpy(out->failure, s->failure, sizeof out->failure);
    out->events = s->stats.events;
    out->sim_time_ns = s->now_ns;
    out->trace_hash = s->trace_hash;
    return out->failed;
}

int sim_run_seeds(const struct sim_config *base, uint64_t first, int count,
                  void (*prepare)(struct sim *s, void *arg), void *arg, char *failure, size_t cap) {
    int failed = 0;
    for (int k = 0; k < count; k++) {
        struct sim_config cfg = *base;
        cfg.seed = first + (uint64_t)k;
        struct sim *s = sim_create(&cfg);
        if (prepare != NULL) prepare(s, arg);
        struct sim_result r;
        if (sim_run(s, &r)) {
            if (failed == 0 && failure != NULL) snprintf(failure, cap, "%s", r.failure);
            failed++;
        }
        sim_destroy(s);
    }
    return failed;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void proc_init(struct sim *s, struct sim_proc *p, uint32_t index, uint32_t id, int is_client) {
    p->sim = s;
    p->index = index;
    p->id = id;
    p->is_client = is_client;
    p->ops = is_client ? s->cfg.workload->client_ops : s->cfg.workload->server_ops;
    p->io.env = p;
    p->io.node_id = id;
    p->io.now = io_now;
    p->io.set_timer = io_set_timer;
    p->io.send = io_send;
    p->io.reply = io_reply;
    p->io.disk = io_disk;
    p->io.halt = io_halt;
    p->ctx.node_id = id;
    p->ctx.now_ns = io_now;
    p->ctx.env = p;
    p->disk = is_client ? NULL : sim_disk_create();
    sim_clock_init(&p->clock, 0, 0, 0);
}

struct sim *sim_create(const struct sim_config *cfg) {
    RQ_ASSERT(cfg->workload != NULL);
    RQ_ASSERT(cfg->servers >= 1 && cfg->servers <= SIM_SERVERS_MAX);
    struct sim *s = calloc(1, sizeof *s);
    RQ_ASSERT(s != NULL);
    s->cfg = *cfg;
    const struct sim_workload *wl = cfg->workload;
    if (s->cfg.clients == UINT32_MAX)
        s->cfg.clients = wl->client_ops == NULL ? 0
                         : wl->clients_for  ? wl->clients_for(cfg)
                                            : wl->default_clients;
    if (s->cfg.workload->client_ops == NULL) s->cfg.clients = 0;
    RQ_ASSERT(s->cfg.clients <= SIM_CLIENTS_MAX);
    s->trace_hash = rq_mix64(cfg->seed);
    rq_heap_init(&s->heap, malloc(HEAP_INITIAL * sizeof(struct rq_heap_entry)), HEAP_INITIAL);
    rq_rng_stream(&s->rng_net, cfg->seed, STREAM_NET);
    rq_rng_stream(&s->rng_disk, cfg->seed, STREAM_DISK);
    rq_rng_stream(&s->rng_faults, cfg->seed, STREAM_FAULTS);
    rq_rng_stream(&s->rng_workload, cfg->seed, STREAM_WORKLOAD);
    rq_rng_stream(&s->rng_clock, cfg->seed, STREAM_CLOCK);
    for (uint32_t i = 0; i < s->cfg.servers; i++) proc_init(s, &s->procs[i], i, i + 1, 0);
    for (uint32_t i = 0; i < s->cfg.clients; i++) {
        uint32_t index = s->cfg.servers + i;
        proc_init(s, &s->procs[index], index, SIM_CLIENT_ID_BASE + i, 1);
    }
    s->proc_count = s->cfg.servers + s->cfg.clients;
    faults_draw_swarm(s);
    if (s->cfg.trace) {
        rq_log_set_sink(log_sink, s);
        rq_log_set_level(RQ_LOG_DEBUG);
    } else {
        rq_log_set_sink(NULL, NULL);
    }
    s->workload = s->cfg.workload->init ? s->cfg.workload->init(s) : NULL;
    return s;
}

void sim_destroy(struct sim *s) {
    if (s == NULL) return;
    for (uint32_t i = 0; i < s->proc_count; i++) {
        struct sim_proc *p = &s->procs[i];
        if (p->up) {
            proc_enter(p);
            p->ops->destroy(p->node);
            proc_leave();
        }
        sim_disk_destroy(p->disk);
    }
    struct rq_heap_entry e;
    while (rq_heap_pop(&s->heap, &e) == 0) free(((struct sim_event *)e.value)->data);
    for (uint32_t i = 0; i < s->event_chunk_count; i++) free(s->event_chunks[i]);
    free(s->event_chunks);
    free(s->heap.entries);
    if (s->cfg.workload->fini) s->cfg.workload->fini(s->workload);
    rq_log_set_sink(NULL, NULL);
    free(s);
}

/* ---- accessors ------------------------------------------------------------------------------- */

uint64_t sim_now(const struct sim *s) { return s->now_ns; }
uint32_t sim_servers(const struct sim *s) { return s->cfg.servers; }
uint32_t sim_clients(const struct sim *s) { return s->cfg.clients; }
const struct sim_config *sim_config(const struct sim *s) { return &s->cfg; }
const struct sim_swarm *sim_swarm(const struct sim *s) { return &s->swarm; }
const struct sim_stats *sim_stats(const struct sim *s) { return &s->stats; }
struct rq_rng *sim_workload_rng(struct sim *s) { return &s->rng_workload; }
void *sim_workload_state(struct sim *s) { return s->workload; }
int sim_healed(const struct sim *s) { return s->healed; }

int sim_is_up(const struct sim *s, uint32_t id) {
    const struct sim_proc *p = proc_const(s, id);
    return p != NULL && p->up;
}
uint32_t sim_incarnation(const struct sim *s, uint32_t id) {
    const struct sim_proc *p = proc_const(s, id);
    RQ_ASSERT(p != NULL);
    return p->incarnation;
}
void *sim_node(const struct sim *s, uint32_t id) {
    const struct sim_proc *p = proc_const(s, id);
    return p != NULL && p->up ? p->node : NULL;
}
struct sim_disk *sim_disk(const struct sim *s, uint32_t server_id) {
    const struct sim_proc *p = proc_const(s, server_id);
    RQ_ASSERT(p != NULL && !p->is_client);
    return p->disk;
}
uint64_t sim_local_time(const struct sim *s, uint32_t id) {
    const struct sim_proc *p = proc_const(s, id);
    RQ_ASSERT(p != NULL);
    if (p->clock_frozen && s->now_ns < p->paused_until) return p->frozen_local_ns;
    if (p->clock_frozen) return p->frozen_local_ns + sim_clock_local(&p->clock, s->now_ns) -
                                sim_clock_local(&p->clock, p->paused_until);
    return sim_clock_local(&p->clock, s->now_ns);
}

void sim_disk_set_full(struct sim *s, uint32_t server_id, int full) {
    struct sim_proc *p = sim_proc_by_id(s, server_id);
    RQ_ASSERT(p != NULL && !p->is_client);
    p->disk_full = full;
}
void sim_disk_set_eio(struct sim *s, uint32_t server_id, uint32_t fsync_eio_ppm) {
    struct sim_proc *p = sim_proc_by_id(s, server_id);
    RQ_ASSERT(p != NULL && !p->is_client);
    p->fsync_eio_ppm = fsync_eio_ppm;
}
void sim_clock_set(struct sim *s, uint32_t id, int64_t offset_ns, int32_t drift_ppm) {
    struct sim_proc *p = sim_proc_by_id(s, id);
    RQ_ASSERT(p != NULL);
    RQ_ASSERT(offset_ns >= 0 || (uint64_t)(-offset_ns) <= s->now_ns);
    uint64_t local = (uint64_t)((int64_t)s->now_ns + offset_ns);
    RQ_ASSERT(local >= sim_clock_local(&p->clock, s->now_ns));  /* clocks never go backward */
    sim_clock_init(&p->clock, s->now_ns, local, drift_ppm);
}
void sim_set_leader_hint(struct sim *s, uint32_t id) { s->leader_hint = id; }
