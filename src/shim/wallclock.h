/* The wall clock, for measuring speed only (never for decisions): lives in the shim because it is
 * an OS call. */
#ifndef RQ_SHIM_WALLCLOCK_H
#define RQ_SHIM_WALLCLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t rq_shim_monotonic_ns(void);

/* A node's clock (io->now): nanoseconds since the epoch as the wall clock said when the process
 * first asked, advanced since by CLOCK_MONOTONIC, so it never goes backward while the process runs
 * and is not moved by a wall-clock step. Leaders stamp entries with it and later leaders, on other
 * machines, compare their own against those stamps (retention, delayed messages), so nodes must
 * agree on it: on machines whose clocks NTP keeps within a few milliseconds they do, where
 * CLOCK_MONOTONIC (time since each machine's boot) would not. A restart takes the wall clock
 * again: if it was stepped back meanwhile, the node's clock is behind where it was (retention
 * and delays then act later, never earlier, by the step). */
uint64_t rq_shim_node_clock_ns(void);

#endif
