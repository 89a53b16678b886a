#include "sim/logcapture.h"

#include <string.h>

char last_error_line[RQ_LOG_LINE_MAX];
char last_warn_line[RQ_LOG_LINE_MAX];
int error_lines;
int warn_lines;

static void capture(void *arg, enum rq_log_level level, const char *line, size_t len) {
    (void)arg;
    if (level < RQ_LOG_WARN) return;
    char *dst = level == RQ_LOG_ERROR ? last_error_line : last_warn_line;
    if (level == RQ_LOG_ERROR) error_lines++;
    else warn_lines++;
    size_t n = len < RQ_LOG_LINE_MAX - 1 ? len : RQ_LOG_LINE_MAX - 1;
    memcpy(dst, line, n);
    dst[n] = '\0';
}

void logcapture_start(void) {
    last_error_line[0] = '\0';
    last_warn_line[0] = '\0';
    error_lines = 0;
    warn_lines = 0;
    rq_log_set_sink(capture, NULL);
    rq_log_set_level(RQ_LOG_WARN);
}

void logcapture_stop(void) { rq_log_set_sink(NULL, NULL); }
