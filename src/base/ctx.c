#include "base/ctx.h"

#include <stddef.h>

static const struct rq_ctx ctx_none = {0, NULL, NULL};
static const struct rq_ctx *ctx_current = &ctx_none;

void rq_ctx_set(const struct rq_ctx *ctx) { ctx_current = ctx ? ctx : &ctx_none; }

const struct rq_ctx *rq_ctx_get(void) { return ctx_current; }

uint64_t rq_ctx_now_ns(void) {
    if (ctx_current->now_ns == NULL) return 0;
    return ctx_current->now_ns(ctx_current->env);
}
