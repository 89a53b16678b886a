/* The selftest workload's test hooks: deliberate bugs a test switches on to show that the
 * selftest checker catches them (a checker that never fires proves nothing). */
#ifndef RQ_SIM_SELFTEST_H
#define RQ_SIM_SELFTEST_H

#include <stdint.h>

#include "sim/sim.h"

enum selftest_bug {
    SELFTEST_BUG_ACK_BEFORE_FSYNC = 1u << 0,  /* report records durable when written, not synced */
    SELFTEST_BUG_SKIP_DIR_FSYNC = 1u << 1,    /* never fsync the directory (names may vanish) */
    SELFTEST_BUG_IGNORE_CRC = 1u << 2,        /* recovery accepts records whose CRC is wrong */
};

/* s must run the selftest workload; call before sim_run. */
void selftest_inject_bugs(struct sim *s, uint32_t bugs);

#endif
