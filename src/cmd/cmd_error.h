/* cmd_error.h — how the command-line parsers (cli_args.c, daemon_config.c) report a bad input: a
 * message naming it in err, and RQ_EINVAL. */
#ifndef RQ_CMD_CMD_ERROR_H
#define RQ_CMD_CMD_ERROR_H

#include <stddef.h>

/* Writes the message (printf-style) into err[0..cap) and returns RQ_EINVAL. */
int cmd_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
