/* A simulated machine clock: local time = an offset plus true time scaled by (1 + drift),
 * piecewise, so the drift can change without the clock ever jumping or going backward.
 * All arithmetic is integer, so every machine computes the same local times. */
#ifndef RQ_SIM_CLOCK_H
#define RQ_SIM_CLOCK_H

#include <stdint.h>

enum { SIM_DRIFT_PPM_MAX = 500000 };  /* |drift| bound the model accepts at all */

struct sim_clock {
    uint64_t base_true_ns;   /* true time at the last change of drift */
    uint64_t base_local_ns;  /* local time then */
    int32_t drift_ppm;       /* local runs (1e6 + drift_ppm) / 1e6 as fast as true time */
};

void sim_clock_init(struct sim_clock *c, uint64_t true_ns, uint64_t local_ns, int32_t drift_ppm);
/* Local time at true time t (t >= base_true_ns). */
uint64_t sim_clock_local(const struct sim_clock *c, uint64_t true_ns);
/* The earliest true time t >= base_true_ns at which local time reaches local_ns. */
uint64_t sim_clock_true_at(const struct sim_clock *c, uint64_t local_ns);
/* Changes the drift from true time t on, keeping local time continuous. */
void sim_clock_set_drift(struct sim_clock *c, uint64_t true_ns, int32_t drift_ppm);

#endif
