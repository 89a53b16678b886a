/* histogram.h — a latency histogram with fixed bucket bounds, for the metrics endpoint.
 *
 * One set of bounds for every latency the project measures (produce requests, fsyncs, event-loop
 * turns), from 100 µs to 1 s, so that they read alike in Prometheus. Pure: the caller measures
 * the duration; nothing here reads a clock. */
#ifndef RQ_BASE_HISTOGRAM_H
#define RQ_BASE_HISTOGRAM_H

#include <stdint.h>

enum { RQ_HIST_BUCKETS = 13 };

/* Upper bounds in µs of the first RQ_HIST_BUCKETS - 1 buckets; the last takes everything longer. */
extern const uint64_t RQ_HIST_BOUNDS_US[RQ_HIST_BUCKETS - 1];

struct rq_hist {
    uint64_t le[RQ_HIST_BUCKETS]; /* le[i]: samples in bucket i (not cumulative) */
    uint64_t ns_total;            /* sum of the samples */
    uint64_t ns_max;              /* the longest */
};

/* Counts one sample of ns nanoseconds. */
void rq_hist_add(struct rq_hist *h, uint64_t ns);

#endif
