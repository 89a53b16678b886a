#include "sim/clock.h"

#include "base/assert.h"

enum { PPM = 1000000 };

void sim_clock_init(struct sim_clock *c, uint64_t true_ns, uint64_t local_ns, int32_t drift_ppm) {
    RQ_ASSERT(drift_ppm > -SIM_DRIFT_PPM_MAX && drift_ppm < SIM_DRIFT_PPM_MAX);
    c->base_true_ns = true_ns;
    c->base_local_ns = local_ns;
    c->drift_ppm = drift_ppm;
}

uint64_t sim_clock_local(const struct sim_clock *c, uint64_t true_ns) {
    RQ_ASSERT(true_ns >= c->base_true_ns);
    unsigned __int128 elapsed = true_ns - c->base_true_ns;
    unsigned __int128 scaled = elapsed * (unsigned)(PPM + c->drift_ppm) / PPM;
    return c->base_local_ns + (uint64_t)scaled;
}

uint64_t sim_clock_true_at(const struct sim_clock *c, uint64_t local_ns) {
    if (local_ns <= c->base_local_ns) return c->base_true_ns;
    unsigned __int128 need = local_ns - c->base_local_ns;
    /* smallest e with floor(e * rate / PPM) >= need  <=>  e >= ceil(need * PPM / rate) */
    unsigned rate = (unsigned)(PPM + c->drift_ppm);
    unsigned __int128 e = (need * PPM + rate - 1) / rate;
    uint64_t t = c->base_true_ns + (uint64_t)e;
    RQ_ASSERT(sim_clock_local(c, t) >= local_ns);
    RQ_ASSERT(t == c->base_true_ns || sim_clock_local(c, t - 1) < local_ns);
    return t;
}

void sim_clock_set_drift(struct sim_clock *c, uint64_t true_ns, int32_t drift_ppm) {
    uint64_t local = sim_clock_local(c, true_ns);
    sim_clock_init(c, true_ns, local, drift_ppm);
}
