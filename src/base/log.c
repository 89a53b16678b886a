#include "base/log.h"

#include <stdio.h>

#include "base/ctx.h"

static rq_log_sink_fn log_sink;
static void *log_sink_arg;
static enum rq_log_level log_level = RQ_LOG_OFF;

void rq_log_set_sink(rq_log_sink_fn sink, void *arg) {
    log_sink = sink;
    log_sink_arg = arg;
}

void rq_log_set_level(enum rq_log_level level) { log_level = level; }

int rq_log_enabled(enum rq_log_level level) { return log_sink != NULL && level >= log_level; }

const char *rq_log_level_name(enum rq_log_level level) {
    switch (level) {
    case RQ_LOG_DEBUG: return "DEBUG";
    case RQ_LOG_INFO: return "INFO";
    case RQ_LOG_WARN: return "WARN";
    case RQ_LOG_ERROR: return "ERROR";
    default: return "OFF";
    }
}

size_t rq_log_stamp(char *buf, size_t cap) {
    const struct rq_ctx *ctx = rq_ctx_get();
    uint64_t now_ns = rq_ctx_now_ns();
    int n = snprintf(buf, cap, "t=%llu.%06llus n%u ", (unsigned long long)(now_ns / 1000000000u),
                     (unsigned long long)(now_ns % 1000000000u / 1000u), (unsigned)ctx->node_id);
    if (n < 0 || cap == 0) return 0;
    return (size_t)n < cap ? (size_t)n : cap - 1;
}

void rq_vlog(enum rq_log_level level, const char *fmt, va_list ap) {
    if (!rq_log_enabled(level)) return;
    char line[RQ_LOG_LINE_MAX];
    size_t len = rq_log_stamp(line, sizeof line);
    int n = snprintf(line + len, sizeof line - len, "%-5s ", rq_log_level_name(level));
    if (n > 0) len += (size_t)n < sizeof line - len ? (size_t)n : sizeof line - len - 1;
    n = vsnprintf(line + len, sizeof line - len, fmt, ap);
    if (n > 0) len += (size_t)n < sizeof line - len ? (size_t)n : sizeof line - len - 1;
    log_sink(log_sink_arg, level, line, len);
}

void rq_log(enum rq_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rq_vlog(level, fmt, ap);
    va_end(ap);
}
