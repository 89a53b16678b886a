/* RQ_ASSERT: an invariant check that stays on in every build (TigerBeetle style).
 * On failure it prints file:line, the expression, the node and the node's clock, then aborts.
 * Only for internal invariants: external input is validated and answered with an error. */
#ifndef RQ_BASE_ASSERT_H
#define RQ_BASE_ASSERT_H

_Noreturn void rq_assert_fail(const char *expr, const char *file, int line);

/* A function run once, after the message and before abort (the simulator prints its replay
 * command from it). */
void rq_assert_set_hook(void (*hook)(void *arg), void *arg);

#define RQ_ASSERT(cond) \
    ((cond) ? (void)0 : rq_assert_fail(#cond, __FILE__, __LINE__))

/* Marks code that must never run. */
#define RQ_UNREACHABLE() rq_assert_fail("unreachable", __FILE__, __LINE__)

#endif
