/* Latency histograms; see histogram.h. */
#include "base/histogram.h"

const uint64_t RQ_HIST_BOUNDS_US[RQ_HIST_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

void rq_hist_add(struct rq_hist *h, uint64_t ns) {
    uint32_t i = 0;
    while (i < RQ_HIST_BUCKETS - 1 && ns > RQ_HIST_BOUNDS_US[i] * 1000u) i++;
    h->le[i]++;
    h->ns_total += ns;
    if (ns > h->ns_max) h->ns_max = ns;
}
