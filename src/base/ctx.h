/* The execution context: which node is running and what its clock says.
 *
 * raftq runs one node's handler at a time (the simulator runs many nodes in one thread; the shim
 * runs one node per process). Before it calls into a node, the environment sets the current context
 * so that the logger and RQ_ASSERT can stamp their output with the node id and the node's own
 * (possibly drifting) clock, without every function having to carry them. */
#ifndef RQ_BASE_CTX_H
#define RQ_BASE_CTX_H

#include <stdint.h>

struct rq_ctx {
    uint32_t node_id;                  /* 0 = not inside a node (the simulator itself) */
    uint64_t (*now_ns)(void *env);     /* NULL = no clock yet */
    void *env;
};

/* Set by the environment around every call into a node; never NULL (a default context exists). */
void rq_ctx_set(const struct rq_ctx *ctx);
const struct rq_ctx *rq_ctx_get(void);
/* The current node's clock in ns, or 0 when the context has none. */
uint64_t rq_ctx_now_ns(void);

#endif
