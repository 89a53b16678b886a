/* The command-line parsers' error report; see cmd_error.h. */
#include "cmd/cmd_error.h"

#include <stdarg.h>
#include <stdio.h>

#include "base/errors.h"

int cmd_fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return RQ_EINVAL;
}
