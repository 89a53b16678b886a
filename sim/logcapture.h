/* Log capture for tests: a log sink that counts warnings and errors and keeps the last line of
 * each, so a test can assert that a failure was reported and that the report names the file and
 * position. logcapture_start() installs it (level WARN) and clears it; logcapture_stop() removes
 * it. Both fit Check's fixture signature. */
#ifndef RQ_SIM_LOGCAPTURE_H
#define RQ_SIM_LOGCAPTURE_H

#include "base/log.h"

extern char last_error_line[RQ_LOG_LINE_MAX];
extern char last_warn_line[RQ_LOG_LINE_MAX];
extern int error_lines;
extern int warn_lines;

void logcapture_start(void);
void logcapture_stop(void);

#endif
