/* raftq-bench lookup: message-offset lookups in a multi-GB partition of segment files. */
#ifndef RQ_CMD_BENCH_LOOKUP_H
#define RQ_CMD_BENCH_LOOKUP_H

/* argv[1] is "lookup". Returns the process exit code. */
int bench_lookup_main(int argc, char **argv);

#endif
