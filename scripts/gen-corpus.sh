#!/usr/bin/env bash
# make fuzz-corpus: regenerates the fuzz seeds that come from real files (fuzz/tools/*.c run the
# store on the simulated disk and pack what it wrote). Hand-made seeds stay as they are.
set -euo pipefail
mkdir -p build/tools
core=$(ls src/*/*.c | grep -vE '^src/(shim|cmd)/')
cc=${CC:-cc}
$cc -std=c11 -O1 -g -Isrc -I. -fsanitize=address,undefined fuzz/tools/gen_store_corpus.c $core \
    sim/disk.c sim/diskrunner.c -o build/tools/gen_store_corpus
build/tools/gen_store_corpus fuzz/corpus/store_recover
# Raft messages: every type, batches as the node sends them, and a few malformed inputs.
$cc -std=c11 -O1 -g -Isrc -I. -fsanitize=address,undefined fuzz/tools/gen_raft_msg_corpus.c $core \
    -o build/tools/gen_raft_msg_corpus
mkdir -p fuzz/corpus/raft_msg
build/tools/gen_raft_msg_corpus fuzz/corpus/raft_msg
# Raft networks: programs for raft_net, each run here on a raftnet and checked to end as its story
# says.
$cc -std=c11 -O1 -g -Isrc -I. -fsanitize=address,undefined fuzz/tools/gen_raft_net_corpus.c $core \
    sim/raftnet.c sim/raftnet_snapshot.c -o build/tools/gen_raft_net_corpus
mkdir -p fuzz/corpus/raft_net
build/tools/gen_raft_net_corpus fuzz/corpus/raft_net
# The wire protocol: every payload type, bare and framed, and a stream of frames.
$cc -std=c11 -O1 -g -Isrc -I. -fsanitize=address,undefined fuzz/tools/gen_proto_corpus.c $core \
    -o build/tools/gen_proto_corpus
mkdir -p fuzz/corpus/proto_decode
build/tools/gen_proto_corpus fuzz/corpus/proto_decode
# The partition state machine: scripts of an image and entries of every outcome.
$cc -std=c11 -O1 -g -Isrc -I. -fsanitize=address,undefined fuzz/tools/gen_partition_corpus.c $core \
    -o build/tools/gen_partition_corpus
mkdir -p fuzz/corpus/partition_apply
build/tools/gen_partition_corpus fuzz/corpus/partition_apply
