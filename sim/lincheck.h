/* lincheck: the judge of a client history of one read/write register, for the raft-kv workload
 * (each key of the map is a register of its own and is judged alone).
 *
 * A history is linearizable (Herlihy & Wing 1990) when every operation can be given a point in
 * time between its invocation and its completion such that, taken in the order of those points,
 * the operations behave like a single register that starts at `initial`: every read returns the
 * value of the last write before it.
 *
 * The checker is Wing & Gong's search as improved by Lowe ("Testing for linearizability", 2017)
 * and used by Knossos and Porcupine: a depth-first search that repeatedly picks a "minimal"
 * operation (one invoked before every pending answered operation completed), applies it to the
 * register, and backtracks when stuck; a cache of visited (set of linearized ops, register value)
 * states stops it from exploring the same state twice.
 *
 * Outcomes the client never learned:
 *   - a write that was never answered (complete_ns == UINT64_MAX) may have taken effect at any
 *     time after its invocation, or never;
 *   - a read that was never answered is ignored.
 *
 * Real-time order: op a precedes op b only when a.complete_ns < b.invoke_ns (strictly); ops whose
 * times touch are concurrent.
 *
 * Bounded: at most LINCHECK_OPS_MAX ops (more -> LINCHECK_UNDECIDED), and at most `budget`
 * distinct search states (each costs about 32 bytes plus 2 bytes per boundary between linearized
 * and pending ops in the state's op set; running out -> LINCHECK_UNDECIDED). Memory is taken with
 * malloc and freed before returning; if it cannot be had, the answer is LINCHECK_UNDECIDED.
 * Deterministic: the same history and budget give the same answer and explanation. */
#ifndef RQ_SIM_LINCHECK_H
#define RQ_SIM_LINCHECK_H

#include <stddef.h>
#include <stdint.h>

enum { LINCHECK_OPS_MAX = 4096, LINCHECK_WHY_MAX = 256 };

struct lincheck_op {
    uint64_t invoke_ns;   /* when the client sent it (simulator true time) */
    uint64_t complete_ns; /* when the client got the answer; UINT64_MAX = never answered */
    uint8_t is_write;     /* 1 write, 0 read */
    uint64_t value;       /* write: the value written; read: the value returned (if answered) */
    uint32_t client;      /* for messages only */
    uint64_t id;          /* for messages only */
};

enum lincheck_result { LINCHECK_OK = 0, LINCHECK_VIOLATION = 1, LINCHECK_UNDECIDED = 2 };

/* Decides whether the history `ops[0..count)` of one register (initial value `initial`) is
 * linearizable. The ops may come in any order. Every answered op must have
 * invoke_ns <= complete_ns (asserted: the simulator's clock never runs backwards).
 *
 * `why` (if not NULL) receives a one-line, NUL-terminated sentence of at most why_cap bytes
 * (LINCHECK_WHY_MAX is enough): on LINCHECK_VIOLATION it names the op that cannot be placed
 * (client, id, value, times) at the deepest point the search reached; on LINCHECK_UNDECIDED it
 * says which bound was hit; on LINCHECK_OK it is the empty string. */
enum lincheck_result lincheck_register(const struct lincheck_op *ops, uint32_t count,
                                       uint64_t initial, uint64_t budget, char *why,
                                       size_t why_cap);

#endif
