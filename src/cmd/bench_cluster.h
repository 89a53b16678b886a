/* raftq-bench cluster: producers and consumers against a running cluster (bench_cluster.c). */
#ifndef RQ_CMD_BENCH_CLUSTER_H
#define RQ_CMD_BENCH_CLUSTER_H

/* argv[1] is "cluster". Returns the process exit code (0 measured, 1 failed, 2 bad usage). */
int bench_cluster_main(int argc, char **argv);

#endif
