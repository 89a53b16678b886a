/* Swarm testing and the fault schedule. Each seed draws which fault classes are on and how often
 * they strike (some seeds calm, some storms); the schedule then fires each class at exponentially
 * distributed intervals until the heal point, when everything is repaired and restarted. */
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "sim/sim_internal.h"

enum { MS = 1000000, SEC = 1000000000 };

static const struct {
    const char *name;
    uint32_t bit;
} fault_names[] = {
    {"loss", SIM_FAULT_LOSS},         {"dup", SIM_FAULT_DUP},         {"delay", SIM_FAULT_DELAY},
    {"partition", SIM_FAULT_PARTITION}, {"crash", SIM_FAULT_CRASH},   {"pause", SIM_FAULT_PAUSE},
    {"enospc", SIM_FAULT_ENOSPC},     {"eio", SIM_FAULT_EIO},         {"corrupt", SIM_FAULT_CORRUPT},
    {"clock", SIM_FAULT_CLOCK},
};
enum { FAULT_NAME_COUNT = sizeof fault_names / sizeof fault_names[0] };

int sim_faults_parse(const char *list, uint32_t *mask) {
    *mask = 0;
    if (strcmp(list, "all") == 0) {
        *mask = SIM_FAULT_ALL;
        return 0;
    }
    if (strcmp(list, "none") == 0) return 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < FAULT_NAME_COUNT; i++) {
            if (strlen(fault_names[i].name) == n && strncmp(p, fault_names[i].name, n) == 0) {
                *mask |= fault_names[i].bit;
                found = 1;
            }
        }
        if (!found) return RQ_EINVAL;
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

void sim_faults_format(uint32_t mask, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < FAULT_NAME_COUNT; i++) {
        if (!(mask & fault_names[i].bit)) continue;
        int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", fault_names[i].name);
        if (n < 0 || (size_t)n >= cap - len) break;
        len += (size_t)n;
    }
    if (len == 0) snprintf(buf, cap, "none");
}

/* An exponentially distributed interval with the given mean, in integer arithmetic: the sum of
 * a geometric number of uniform steps would do, but inverse-CDF on a 2^-32 grid is simpler. */
uint64_t faults_exp(struct rq_rng *rng, uint64_t mean_ns) {
    /* -ln(u) for u uniform in (0,1], approximated by the bit length of a 32-bit uniform draw:
     * P(k leading zeros) = 2^-(k+1), i.e. exp-like with mean ~ln2 scaled; jitter within the step. */
    uint32_t u = (uint32_t)rq_rng_next(rng);
    uint32_t zeros = u ? (uint32_t)__builtin_clz(u) : 32;
    uint64_t step = mean_ns * 10 / 14;  /* ln 2 ~ 0.69: mean of k is 1, plus the uniform half */
    return step * zeros + rq_rng_below(rng, step ? step : 1) + 1;
}

static uint32_t rate_on(struct sim *s, uint32_t bit) {
    if (!(s->cfg.faults & bit)) return 0;
    if (!s->cfg.swarm) return 1;
    return (uint32_t)rq_rng_below(&s->rng_faults, 2);
}

void faults_draw_swarm(struct sim *s) {
    struct sim_swarm *w = &s->swarm;
    struct rq_rng *r = &s->rng_faults;
    memset(w, 0, sizeof *w);
    for (int i = 0; i < FAULT_NAME_COUNT; i++) {
        if (rate_on(s, fault_names[i].bit)) w->faults |= fault_names[i].bit;
    }
    w->latency_min_ns = rq_rng_range(r, 20000, 500000);
    w->latency_max_ns = w->latency_min_ns + rq_rng_range(r, 0, 2 * MS);
    if (w->faults & SIM_FAULT_LOSS) w->loss_ppm = (uint32_t)rq_rng_range(r, 1000, 150000);
    if (w->faults & SIM_FAULT_DUP) w->dup_ppm = (uint32_t)rq_rng_range(r, 1000, 100000);
    if (w->faults & SIM_FAULT_DELAY) {
        w->delay_tail_ppm = (uint32_t)rq_rng_range(r, 10000, 200000);
        w->delay_tail_max_ns = rq_rng_range(r, 5 * MS, 500 * MS);
    }
    if (w->faults & SIM_FAULT_PARTITION) w->partition_every_ns = rq_rng_range(r, 300 * MS, 6ull * SEC);
    if (w->faults & SIM_FAULT_CRASH) w->crash_every_ns = rq_rng_range(r, 200 * MS, 6ull * SEC);
    if (w->faults & SIM_FAULT_PAUSE) w->pause_every_ns = rq_rng_range(r, 300 * MS, 8ull * SEC);
    if (w->faults & SIM_FAULT_ENOSPC) w->enospc_every_ns = rq_rng_range(r, 500 * MS, 8ull * SEC);
    if (w->faults & SIM_FAULT_EIO) w->fsync_eio_ppm = (uint32_t)rq_rng_range(r, 100, 20000);
    if (w->faults & SIM_FAULT_CORRUPT) w->corrupt_every_ns = rq_rng_range(r, 1ull * SEC, 10ull * SEC);

    sim_net_set(s, w->loss_ppm, w->dup_ppm, w->latency_min_ns, w->latency_max_ns,
                w->delay_tail_ppm, w->delay_tail_max_ns);
    for (uint32_t i = 0; i < s->cfg.servers; i++) s->procs[i].fsync_eio_ppm = w->fsync_eio_ppm;
    /* Clocks: every machine's clock starts at its own offset; drift only when the class is on. */
    uint32_t bound = s->cfg.max_drift_ppm;
    if (s->cfg.clock_break) bound = bound * 20 + 20000;
    if (bound >= SIM_DRIFT_PPM_MAX) bound = SIM_DRIFT_PPM_MAX - 1;
    for (uint32_t i = 0; i < s->proc_count; i++) {
        uint64_t offset = rq_rng_range(&s->rng_clock, 0, 10ull * SEC);
        int32_t drift = 0;
        if (w->faults & SIM_FAULT_CLOCK) drift = (int32_t)rq_rng_range(&s->rng_clock, 0, 2ull * bound) - (int32_t)bound;
        sim_clock_init(&s->procs[i].clock, 0, offset, drift);
    }
}

void sim_swarm_describe(const struct sim *s, char *buf, size_t cap) {
    const struct sim_swarm *w = &s->swarm;
    char names[160];
    sim_faults_format(w->faults, names, sizeof names);
    snprintf(buf, cap,
             "swarm: faults=%s loss=%uppm dup=%uppm latency=%llu-%lluus tail=%uppm/%llums "
             "partition/%llums crash/%llums pause/%llums enospc/%llums eio=%uppm corrupt/%llums "
             "drift<=%uppm%s",
             names, w->loss_ppm, w->dup_ppm, (unsigned long long)(w->latency_min_ns / 1000),
             (unsigned long long)(w->latency_max_ns / 1000), w->delay_tail_ppm,
             (unsigned long long)(w->delay_tail_max_ns / MS), (unsigned long long)(w->partition_every_ns / MS),
             (unsigned long long)(w->crash_every_ns / MS), (unsigned long long)(w->pause_every_ns / MS),
             (unsigned long long)(w->enospc_every_ns / MS), w->fsync_eio_ppm,
             (unsigned long long)(w->corrupt_every_ns / MS), s->cfg.max_drift_ppm,
             s->cfg.clock_break ? " (BROKEN: drift exceeds the bound)" : "");
}

static void schedule(struct sim *s, uint8_t action, uint64_t mean_ns) {
    if (mean_ns == 0) return;
    struct sim_event *ev = sim_event_new(s, EV_FAULT, 0);
    ev->action = action;
    sim_event_push(s, s->now_ns + faults_exp(&s->rng_faults, mean_ns), ev);
}

static void schedule_at(struct sim *s, uint8_t action, uint64_t at_ns, uint64_t arg) {
    struct sim_event *ev = sim_event_new(s, EV_FAULT, 0);
    ev->action = action;
    ev->gen = arg;
    sim_event_push(s, at_ns, ev);
}

void faults_schedule_all(struct sim *s) {
    const struct sim_swarm *w = &s->swarm;
    schedule(s, FA_PARTITION, w->partition_every_ns);
    schedule(s, FA_CRASH, w->crash_every_ns);
    schedule(s, FA_PAUSE, w->pause_every_ns);
    schedule(s, FA_ENOSPC, w->enospc_every_ns);
    schedule(s, FA_CORRUPT, w->corrupt_every_ns);
    if (w->faults & SIM_FAULT_CLOCK) schedule(s, FA_DRIFT, 2ull * SEC);
}

static uint32_t random_proc(struct sim *s, int servers_only) {
    uint32_t n = servers_only ? s->cfg.servers : s->proc_count;
    return (uint32_t)rq_rng_below(&s->rng_faults, n);
}

static void act_crash(struct sim *s) {
    /* Mostly servers; sometimes a client. */
    struct sim_proc *p = &s->procs[random_proc(s, rq_rng_chance(&s->rng_faults, 800000))];
    uint64_t down = rq_rng_range(&s->rng_faults, 10 * MS, 3ull * SEC);
    sim_crash_restart(s, p->id, rq_rng_chance(&s->rng_faults, RQ_PPM / 2), down);
    schedule(s, FA_CRASH, s->swarm.crash_every_ns);
}

static void act_pause(struct sim *s) {
    struct sim_proc *p = &s->procs[random_proc(s, 0)];
    uint64_t pause = rq_rng_range(&s->rng_faults, 10 * MS, 2ull * SEC);
    /* A pause ends by the heal point: its deferred events wait in the heap until its end. */
    uint64_t heal_at = s->cfg.duration_ns - s->cfg.heal_ns;
    if (s->now_ns + pause > heal_at) pause = heal_at > s->now_ns ? heal_at - s->now_ns : 0;
    if (pause > 0) sim_pause(s, p->id, pause);
    schedule(s, FA_PAUSE, s->swarm.pause_every_ns);
}

static void act_enospc(struct sim *s) {
    uint32_t i = random_proc(s, 1);
    s->procs[i].disk_full = 1;
    sim_note(s, 0xE05C ^ i, "disk full on n%u", i + 1);
    schedule_at(s, FA_ENOSPC_END, s->now_ns + rq_rng_range(&s->rng_faults, 20 * MS, 2ull * SEC), i);
    schedule(s, FA_ENOSPC, s->swarm.enospc_every_ns);
}

static void act_corrupt(struct sim *s) {
    uint32_t i = random_proc(s, 1);
    char path[RQ_DISK_PATH_MAX];
    uint64_t offset;
    const char *prefix = s->cfg.workload->corrupt_prefix;
    if (prefix && sim_disk_corrupt(s->procs[i].disk, &s->rng_disk, prefix, path, &offset) == 0) {
        sim_note(s, 0xC0AA ^ offset, "latent corruption on n%u: %s byte %llu", i + 1, path,
                 (unsigned long long)offset);
    }
    schedule(s, FA_CORRUPT, s->swarm.corrupt_every_ns);
}

static void act_drift(struct sim *s) {
    uint32_t bound = s->cfg.max_drift_ppm;
    if (s->cfg.clock_break) bound = bound * 20 + 20000;
    if (bound >= SIM_DRIFT_PPM_MAX) bound = SIM_DRIFT_PPM_MAX - 1;
    struct sim_proc *p = &s->procs[random_proc(s, 0)];
    int32_t drift = (int32_t)rq_rng_range(&s->rng_clock, 0, 2ull * bound) - (int32_t)bound;
    sim_clock_set_drift(&p->clock, s->now_ns, drift);
    sim_note(s, 0xD41F ^ (uint32_t)drift, "clock of n%u now drifts %+d ppm", p->id, drift);
    schedule(s, FA_DRIFT, 2ull * SEC);
}

void faults_act(struct sim *s, struct sim_event *ev) {
    if (s->healed) {
        /* Clocks keep drifting after the heal; every other fault has stopped. */
        if (ev->action == FA_DRIFT) act_drift(s);
        return;
    }
    switch (ev->action) {
    case FA_PARTITION:
        if (!s->partition_active) {
            net_partition(s);
            schedule_at(s, FA_PARTITION_END, s->now_ns + rq_rng_range(&s->rng_faults, 50 * MS, 5ull * SEC), 0);
        }
        schedule(s, FA_PARTITION, s->swarm.partition_every_ns);
        break;
    case FA_PARTITION_END: net_partition_end(s); break;
    case FA_FLAP: net_flap(s); break;
    case FA_CRASH: act_crash(s); break;
    case FA_PAUSE: act_pause(s); break;
    case FA_ENOSPC: act_enospc(s); break;
    case FA_ENOSPC_END:
        s->procs[ev->gen].disk_full = 0;
        sim_note(s, 0xE05D ^ ev->gen, "disk space back on n%llu", (unsigned long long)ev->gen + 1);
        break;
    case FA_CORRUPT: act_corrupt(s); break;
    case FA_DRIFT: act_drift(s); break;
    default: RQ_UNREACHABLE();
    }
}

void faults_heal(struct sim *s) {
    s->healed = 1;
    sim_note(s, 0x4EA7, "heal: faults stop; network healed, every process restarted");
    sim_net_heal(s);
    sim_net_set(s, 0, 0, s->swarm.latency_min_ns, s->swarm.latency_max_ns, 0, 0);
    for (uint32_t i = 0; i < s->proc_count; i++) {
        struct sim_proc *p = &s->procs[i];
        p->disk_full = 0;
        p->fsync_eio_ppm = 0;
        RQ_ASSERT(p->paused_until <= s->now_ns);  /* pauses are scheduled to end by now */
        if (!p->up) sim_restart(s, p->id);
    }
    if (s->cfg.workload->on_heal) s->cfg.workload->on_heal(s, s->workload);
}
