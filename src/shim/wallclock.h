/* The wall clock, for measuring speed only (never for decisions): lives in the shim because it is
 * an OS call. */
#ifndef RQ_SHIM_WALLCLOCK_H
#define RQ_SHIM_WALLCLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t rq_shim_monotonic_ns(void);

#endif
