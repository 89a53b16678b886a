#define _POSIX_C_SOURCE 200809L
#include "shim/wallclock.h"

#include <time.h>

uint64_t rq_shim_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The offset from CLOCK_MONOTONIC to the wall clock, taken once, at the first call (the event loop
 * makes it at its start, before any other thread runs). */
static int64_t node_clock_offset_ns;
static int node_clock_set;

uint64_t rq_shim_node_clock_ns(void) {
    uint64_t mono = rq_shim_monotonic_ns();
    if (!node_clock_set) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wall = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        node_clock_offset_ns = (int64_t)(wall - mono);
        node_clock_set = 1;
    }
    return mono + (uint64_t)node_clock_offset_ns;
}
