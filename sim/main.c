/* raftq-sim: runs one seed of a workload in the deterministic simulator.
 *
 *   raftq-sim --seed N [--workload NAME] [--nodes K] [--clients C] [--duration SECONDS]
 *             [--faults LIST] [--no-swarm] [--max-drift PPM] [--clock-break] [--trace] [--stats]
 *
 * Last line: seed=N result=ok|FAIL events=E sim_time=Ts trace_hash=HEX; exit 0 ok, 1 FAIL,
 * 2 bad usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "shim/wallclock.h"
#include "sim/sim.h"

struct options {
    struct sim_config cfg;
    const char *workload_name;
    const char *faults_text;
    double duration_s;
    int stats;
    int trace;
};

static void usage(FILE *out) {
    fprintf(out,
            "usage: raftq-sim --seed N [--workload NAME] [--nodes K] [--clients C]\n"
            "                 [--duration SECONDS] [--faults LIST] [--no-swarm]\n"
            "                 [--max-drift PPM] [--clock-break] [--events-max N] [--trace] [--stats]\n"
            "  --workload     raft-kv (default): a replicated key-value map on multi-raft, checked\n"
            "                 for Raft's safety properties, linearizability and liveness\n"
            "                 selftest: the simulator's own check of its models\n"
            "                 store: crash consistency of a node's storage (WAL, segments, hard state)\n"
            "                 mq: the message queue (brokers, controller, clients) checked for lost\n"
            "                 writes, inconsistent offsets, order, duplicates and liveness\n"
            "  --nodes        servers, 1..%d (default 3)\n"
            "  --faults       all | none | comma list of: loss,dup,delay,partition,crash,pause,\n"
            "                 enospc,eio,corrupt,clock (default all; swarm draws a subset per seed)\n"
            "  --no-swarm     every allowed fault class on, instead of a per-seed draw\n"
            "  --max-drift    clock drift bound in ppm that the nodes may assume (default 200)\n"
            "  --clock-break  let clocks drift far beyond --max-drift, and stop a paused process's\n"
            "                 clock while it is paused (to show what a lease read then risks)\n"
            "  --trace        print every event and every node's log lines\n"
            "  --stats        print the simulator's speed\n",
            SIM_SERVERS_MAX);
}

static int parse_u64(const char *text, uint64_t *out) {
    if (text == NULL || *text == '\0') return RQ_EINVAL;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0' || text[0] == '-') return RQ_EINVAL;
    *out = v;
    return 0;
}

static int bad(const char *flag, const char *value) {
    fprintf(stderr, "raftq-sim: invalid value for %s: '%s'\n", flag, value ? value : "(missing)");
    usage(stderr);
    return 2;
}

static int parse_args(int argc, char **argv, struct options *o) {
    sim_config_default(&o->cfg);
    o->workload_name = "raft-kv";
    o->faults_text = "all";
    o->duration_s = 20;
    int have_seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (strcmp(a, "--trace") == 0) o->trace = 1;
        else if (strcmp(a, "--stats") == 0) o->stats = 1;
        else if (strcmp(a, "--no-swarm") == 0) o->cfg.swarm = 0;
        else if (strcmp(a, "--clock-break") == 0) o->cfg.clock_break = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        }
        else if (strcmp(a, "--seed") == 0) {
            if (parse_u64(v, &o->cfg.seed)) return bad(a, v);
            have_seed = 1;
            i++;
        } else if (strcmp(a, "--workload") == 0) {
            if (v == NULL || sim_workload_find(v) == NULL) return bad(a, v);
            o->workload_name = v;
            i++;
        } else if (strcmp(a, "--nodes") == 0) {
            if (parse_u64(v, &n) || n < 1 || n > SIM_SERVERS_MAX) return bad(a, v);
            o->cfg.servers = (uint32_t)n;
            i++;
        } else if (strcmp(a, "--clients") == 0) {
            if (parse_u64(v, &n) || n > SIM_CLIENTS_MAX) return bad(a, v);
            o->cfg.clients = (uint32_t)n;
            i++;
        } else if (strcmp(a, "--duration") == 0) {
            char *end;
            if (v == NULL) return bad(a, v);
            o->duration_s = strtod(v, &end);
            if (*end != '\0' || !(o->duration_s > 0) || o->duration_s > 1e6) return bad(a, v);
            i++;
        } else if (strcmp(a, "--faults") == 0) {
            uint32_t mask;
            if (v == NULL || sim_faults_parse(v, &mask)) return bad(a, v);
            o->faults_text = v;
            o->cfg.faults = mask;
            i++;
        } else if (strcmp(a, "--max-drift") == 0) {
            if (parse_u64(v, &n) || n > 100000) return bad(a, v);
            o->cfg.max_drift_ppm = (uint32_t)n;
            i++;
        } else if (strcmp(a, "--events-max") == 0) {
            if (parse_u64(v, &o->cfg.events_max)) return bad(a, v);
            i++;
        } else {
            fprintf(stderr, "raftq-sim: unknown flag '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!have_seed) {
        fprintf(stderr, "raftq-sim: --seed is required\n");
        usage(stderr);
        return 2;
    }
    o->cfg.workload = sim_workload_find(o->workload_name);
    o->cfg.duration_ns = (uint64_t)(o->duration_s * 1e9);
    /* Faults stop for the last quarter of the run (at most 10 s): the liveness window. */
    o->cfg.heal_ns = o->cfg.duration_ns / 4 < 10000000000ull ? o->cfg.duration_ns / 4 : 10000000000ull;
    o->cfg.trace = o->trace ? stdout : NULL;
    return 0;
}

static const struct options *replay_options;

static void print_replay(FILE *out, const struct options *o) {
    fprintf(out, "replay: build/raftq-sim --seed %" PRIu64 " --workload %s --nodes %u", o->cfg.seed,
            o->workload_name, o->cfg.servers);
    if (o->cfg.clients != UINT32_MAX) fprintf(out, " --clients %u", o->cfg.clients);
    fprintf(out, " --duration %g --faults %s%s --max-drift %u%s", o->duration_s, o->faults_text,
            o->cfg.swarm ? "" : " --no-swarm", o->cfg.max_drift_ppm,
            o->cfg.clock_break ? " --clock-break" : "");
    if (o->cfg.events_max) fprintf(out, " --events-max %" PRIu64, o->cfg.events_max);
    fprintf(out, " --trace\n");
}

static void on_assert(void *arg) {
    (void)arg;
    if (replay_options == NULL) return;
    fprintf(stderr, "seed=%" PRIu64 " result=FAIL (assertion)\n", replay_options->cfg.seed);
    print_replay(stderr, replay_options);
}

int main(int argc, char **argv) {
    struct options o;
    memset(&o, 0, sizeof o);
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    replay_options = &o;
    rq_assert_set_hook(on_assert, NULL);

    uint64_t wall_start = rq_shim_monotonic_ns();
    struct sim *s = sim_create(&o.cfg);
    struct sim_result r;
    sim_run(s, &r);
    uint64_t wall_ns = rq_shim_monotonic_ns() - wall_start;

    if (r.failed) {
        char swarm[512];
        sim_swarm_describe(s, swarm, sizeof swarm);
        printf("FAILED CHECK: %s\n%s\n", r.failure, swarm);
        sim_print_recent(s, stdout);
        print_replay(stdout, &o);
    }
    if (o.stats) {
        const struct sim_stats *st = sim_stats(s);
        double wall_s = (double)wall_ns / 1e9;
        printf("stats: events=%" PRIu64 " wall=%.3fs events_per_sec=%.0f sim_seconds_per_wall_second=%.1f "
               "messages=%" PRIu64 " delivered=%" PRIu64 " dropped=%" PRIu64 " duplicated=%" PRIu64
               " disk_ops=%" PRIu64 " crashes=%" PRIu64 " pauses=%" PRIu64 " partitions=%" PRIu64
               " halts=%" PRIu64 "\n",
               r.events, wall_s, wall_s > 0 ? (double)r.events / wall_s : 0.0,
               wall_s > 0 ? ((double)r.sim_time_ns / 1e9) / wall_s : 0.0, st->messages_sent,
               st->messages_delivered, st->messages_dropped, st->messages_duplicated, st->disk_ops,
               st->crashes, st->pauses, st->partitions, st->halts);
    }
    printf("seed=%" PRIu64 " result=%s events=%" PRIu64 " sim_time=%.3fs trace_hash=%016" PRIx64 "\n",
           o.cfg.seed, r.failed ? "FAIL" : "ok", r.events, (double)r.sim_time_ns / 1e9, r.trace_hash);
    sim_destroy(s);
    return r.failed ? 1 : 0;
}
