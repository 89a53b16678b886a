/* The logger. Every line is stamped with the current node and that node's clock (base/ctx.h):
 *   t=1.204000s n2 INFO  election: term 4: became leader
 * Lines go to a sink set by the environment (the simulator's trace, or stderr in the shim), so this
 * file never touches the OS. Formatting is skipped entirely below the configured level. */
#ifndef RQ_BASE_LOG_H
#define RQ_BASE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum rq_log_level { RQ_LOG_DEBUG = 0, RQ_LOG_INFO = 1, RQ_LOG_WARN = 2, RQ_LOG_ERROR = 3, RQ_LOG_OFF = 4 };

enum { RQ_LOG_LINE_MAX = 512 };

/* Receives one formatted line (no trailing newline); the buffer is valid only during the call. */
typedef void (*rq_log_sink_fn)(void *arg, enum rq_log_level level, const char *line, size_t len);

/* Nothing is logged until both a sink and a level below RQ_LOG_OFF (the initial level) are set. */
void rq_log_set_sink(rq_log_sink_fn sink, void *arg);
void rq_log_set_level(enum rq_log_level level);
int rq_log_enabled(enum rq_log_level level);
const char *rq_log_level_name(enum rq_log_level level);

void rq_log(enum rq_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rq_vlog(enum rq_log_level level, const char *fmt, va_list ap);

#define RQ_DEBUG(...) do { if (rq_log_enabled(RQ_LOG_DEBUG)) rq_log(RQ_LOG_DEBUG, __VA_ARGS__); } while (0)
#define RQ_INFO(...) do { if (rq_log_enabled(RQ_LOG_INFO)) rq_log(RQ_LOG_INFO, __VA_ARGS__); } while (0)
#define RQ_WARN(...) do { if (rq_log_enabled(RQ_LOG_WARN)) rq_log(RQ_LOG_WARN, __VA_ARGS__); } while (0)
#define RQ_ERROR(...) do { if (rq_log_enabled(RQ_LOG_ERROR)) rq_log(RQ_LOG_ERROR, __VA_ARGS__); } while (0)

/* Formats the stamp "t=S.UUUUUUs nN " for the current context into buf; returns its length. */
size_t rq_log_stamp(char *buf, size_t cap);

#endif
