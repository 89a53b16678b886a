/* Raft's rules, one table row each: a cluster, a script of events (sim/raftnet.h explains the
 * commands) and the state expected along the way. A bug report becomes a test by adding a row. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "raft/raft.h"
#include "sim/raftnet.h"
#include "tests/unit/suite_main.h"

enum {
    NO_PREVOTE = 1,
    NO_CHECK_QUORUM = 2,
    ONE_ENTRY_PER_APPEND = 4,
    SMALL_LOG = 8,
    LEASE = 16,
    SNAPSHOTS = 32,   /* a snapshot every 4 applied entries, 2 entries kept below it */
    SPARE = 64,       /* the last node is a spare, outside the bootstrap configuration */
    SNAPSHOTS6 = 128, /* a snapshot every 6 applied entries, 2 entries kept below it */
    STORED_LOG = 256, /* raft_config.stored_log: storage keeps every entry, loads serve them */
    SNAPSHOT_BYTES = 512, /* a snapshot once the log holds 4 bytes, 8 entries kept below it */
};

struct scenario {
    const char *name;
    uint32_t nodes;
    uint32_t flags;
    const char *script;
};

static const struct scenario scenarios[] = {
    /* ---- election ---- */
    {"a leader is elected and commits its no-op", 3, 0,
     "elect 1; expect role 1 leader; expect term 1 1; deliver; expect commit 1 1; tick 2;"
     "expect commit 2 1; expect leader 3 1; check"},
    {"a single node elects itself and commits alone", 1, 0,
     "elect 1; expect commit 1 1; propose 1 x; expect commit 1 2; expect applied 1 2; check"},
    {"one vote per term: a second candidate of the same term is refused", 3, 0,
     "inject vote 2 1 1 0 0; deliver; expect vote 1 2; inject vote 3 1 1 0 0; deliver;"
     "expect vote 1 2; expect term 1 1"},
    {"the vote is remembered across a restart", 3, 0,
     "inject vote 2 1 1 0 0; deliver; crash 1; restart 1; inject vote 3 1 1 0 0; deliver;"
     "expect vote 1 2"},
    {"a candidate with an older last term is refused (5.4.1)", 3, NO_CHECK_QUORUM,
     "elect 1; propose 1 x; tick 2; inject vote 3 2 5 1 0; deliver; expect term 2 5;"
     "expect vote 2 0"},
    {"a candidate with a shorter log of the same term is refused (5.4.1)", 3, NO_CHECK_QUORUM,
     "elect 1; propose 1 x; tick 2; inject vote 3 2 5 1 1; deliver; expect vote 2 0"},
    {"a candidate with a longer log of the same term gets the vote", 3, NO_CHECK_QUORUM,
     "elect 1; propose 1 x; tick 2; inject vote 3 2 5 9 1; deliver; expect vote 2 3"},
    {"pre-vote: a partitioned node does not raise its term", 3, 0,
     "elect 1; tick 3; isolate 3; ticks 3 60; expect term 3 1; expect role 3 pre-candidate;"
     "expect elections 3 0"},
    {"pre-vote: a returning node does not disturb a healthy leader", 3, 0,
     "elect 1; tick 3; isolate 3; ticks 3 60; heal; tick 6; expect role 1 leader;"
     "expect term 1 1; expect leader 3 1; expect role 3 follower; check"},
    {"without pre-vote a returning node deposes the leader", 3, NO_PREVOTE | NO_CHECK_QUORUM,
     "elect 1; tick 3; isolate 3; ticks 3 60; expect-min term 3 3; heal; tick 3;"
     "expect-min term 1 3; check"},
    {"pre-vote is refused while a leader is heard (check-quorum lease)", 3, 0,
     "elect 1; tick 2; inject prevote 3 2 2 9 9; deliver; expect term 2 1;"
     "expect role 1 leader"},
    {"a vote request inside the lease is ignored, term unchanged", 3, NO_PREVOTE,
     "elect 1; tick 2; inject vote 3 2 2 9 9; deliver; expect term 2 1; expect vote 2 1"},
    {"check-quorum: an isolated leader steps down within an election timeout", 3, 0,
     "elect 1; tick 2; isolate 1; ticks 1 25; expect role 1 follower; expect term 1 1"},
    {"without check-quorum an isolated leader stays leader", 3, NO_CHECK_QUORUM,
     "elect 1; tick 2; isolate 1; ticks 1 25; expect role 1 leader"},
    {"the majority side elects a new leader while the old one is cut off", 5, 0,
     "elect 1; tick 2; isolate 1; tick 40; expect-min term 2 2; heal; tick 10;"
     "expect role 1 follower; check"},
    {"a stale leader learns the new term from an append answer", 3, NO_CHECK_QUORUM,
     "elect 1; tick 2; isolate 1; elect 2; propose 2 y; tick 2; heal; propose 1 stale; tick 4;"
     "expect role 1 follower; expect term 1 2; check"},
    /* ---- persistence before messages ---- */
    {"a vote is not sent before it is durable", 3, 0,
     "manual 2; ticks 3 30; deliver; expect vote 2 3; expect-queued vote-resp 2 3 0;"
     "persist 2; expect-queued vote-resp 2 3 1"},
    {"a candidate's requests wait for its term and vote to be durable", 3, 0,
     "manual 3; ticks 3 30; deliver; expect role 3 candidate; expect-queued vote 3 0 0;"
     "persist 3; expect-queued vote 3 0 2"},
    {"a follower acknowledges an entry only once durable", 3, 0,
     "elect 1; tick 2; manual 2; propose 1 x; deliver; expect last 2 2; expect durable 2 1;"
     "expect-queued append-resp 2 1 0; persist 2; expect-queued append-resp 2 1 1;"
     "deliver; expect commit 1 2; check"},
    {"a leader counts itself only once its own append is durable", 3, 0,
     "elect 1; tick 2; manual 1; manual 2; propose 1 x; deliver; expect commit 1 1; persist 1;"
     "deliver; expect commit 1 2"},
    {"entries not durable are lost by a crash and replaced", 3, 0,
     "elect 1; tick 2; manual 2; propose 1 x; deliver; crash 2; restart 2; expect last 2 1;"
     "tick 4; expect last 2 2; expect commit 2 2; check"},
    {"a log entry of a term whose save was lost: restart adopts the term, with no vote", 3,
     NO_CHECK_QUORUM,
     "elect 1; tick 2; manual 2; elect 3; propose 3 x; deliver; expect term 2 2; expect vote 2 3;"
     "expect last 2 2; persist-log 2; crash 2; restart 2; expect term 2 2; expect vote 2 0;"
     "expect last 2 2; persist 2; tick 4; persist 2; tick 4; expect commit 2 3; check"},
    {"a vote saved but its entries lost: restart keeps the vote", 3, NO_CHECK_QUORUM,
     "elect 1; tick 2; manual 2; isolate 1; ticks 3 30; deliver; expect vote 2 3;"
     "persist-hs 2; crash 2; restart 2; expect vote 2 3; expect term 2 2"},
    {"restart recovers term, vote and log", 3, 0,
     "elect 1; propose 1 a; tick 2; crash 2; restart 2; expect term 2 1; expect vote 2 1;"
     "expect last 2 2; tick 3; expect commit 2 2; check"},
    {"a whole cluster restart keeps every committed entry", 3, 0,
     "elect 1; propose 1 a; propose 1 b; tick 2; crash 1; crash 2; crash 3; restart 1;"
     "restart 2; restart 3; tick 40; expect-min commit 1 3; check"},
    /* ---- replication ---- */
    {"a follower that missed entries catches up by probing", 3, 0,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; tick 2; heal; tick 4;"
     "expect last 3 4; expect commit 3 4; check"},
    {"conflict back-off: a divergent suffix is replaced in few round trips", 3, 0,
     "elect 1; tick 2; isolate 1; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; ticks 3 10; elect 2; propose 2 x; tick 2; heal; tick 8;"
     "expect leader 1 2; expect last 1 3; expect commit 1 3; check"},
    /* n1 holds 1..7 of term 1; n3 leads term 3 holding 2..5 of term 2. Its first probe (prev 5)
     * is rejected with "term 1 from 1"; it resumes after its own last term-1 entry (1) at once:
     * one rejection, where stepping back one entry at a time would take four. */
    {"the rejection hint skips a whole conflicting term", 3,
     ONE_ENTRY_PER_APPEND | NO_CHECK_QUORUM,
     "elect 1; tick 2; isolate 1; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; elect 2; propose 2 x; propose 2 y; propose 2 z; tick 2;"
     "crash 2; heal; elect 3; tick 6; expect last 1 6; expect rejections 3 1; check"},
    {"the pipeline streams entries one per append", 3, ONE_ENTRY_PER_APPEND,
     "elect 1; tick 2; propose 1 a; propose 1 b; propose 1 c; propose 1 d; deliver;"
     "expect commit 1 5; expect last 3 5; check"},
    {"a lost append is repaired by the rejection of the next one", 3, 0,
     "elect 1; tick 2; propose 1 a; drop append 1 3; propose 1 b; deliver; expect last 3 3;"
     "expect-min rejections 1 1; check"},
    {"appends lost to everyone are resent after heartbeats", 3, 0,
     "elect 1; tick 2; propose 1 a; drop append 1 0; deliver; expect last 3 1; expect commit 1 1;"
     "tick 6; expect last 3 2; expect commit 1 2; check"},
    {"proposals to a follower are refused", 3, 0,
     "elect 1; tick 2; reject 2 x; expect leader 2 1"},
    {"proposals beyond the memory bound are refused", 1, SMALL_LOG,
     "elect 1; propose 1 a; propose 1 b; propose 1 c; reject 1 d"},
    /* ---- reads (ReadIndex) ---- */
    {"a read is confirmed by a majority's answers to a heartbeat sent after it", 3, 0,
     "elect 1; tick 2; propose 1 x; deliver; read 1 7; expect-read 1 7 none; deliver;"
     "expect-read 1 7 2; check"},
    {"a new leader's reads wait for the first commit of its term", 3, 0,
     "elect 1; read 1 5; expect-read 1 5 none; deliver; expect-read 1 5 1"},
    {"answers to an earlier heartbeat do not confirm a later read", 3, 0,
     "elect 1; tick 2; ticks 1 2; deliver-one; deliver-one; read 1 9; deliver-one; deliver-one;"
     "expect-read 1 9 none; deliver; expect-read 1 9 1"},
    {"one follower answering many heartbeats is not a majority", 5, 0,
     "elect 1; tick 2; cut 1 3; cut 1 4; cut 1 5; read 1 4; ticks 1 8; deliver; expect-read 1 4 none"},
    {"a deposed leader confirms no read and drops it", 3, NO_CHECK_QUORUM,
     "elect 1; tick 2; isolate 1; elect 2; heal; read 1 3; deliver; expect-read 1 3 none;"
     "expect role 1 follower"},
    {"a follower read is confirmed by the leader and served by the follower", 3, 0,
     "elect 1; tick 2; propose 1 x; tick 2; read 2 11; deliver; expect-read 2 11 2; check"},
    {"a single node confirms its reads alone", 1, 0, "elect 1; read 1 5; expect-read 1 5 1"},
    /* Seed 106686 (5 servers): a follower restarted, its caller reused a read's ctx, and the
     * leader's late answer to the read of the follower's earlier life confirmed the new one. */
    {"an answer to a read from before a restart does not confirm a new read", 3, 0,
     "elect 1; tick 2; read 2 5; deliver-one; deliver-one; deliver-one; deliver-one; crash 2;"
     "restart 2; ticks 1 2; deliver-at 2; read 2 5; deliver-at 1; expect-read 2 5 none; deliver;"
     "expect-read 2 5 1; check"},
    /* ---- lease reads ---- */
    {"a lease read is served by the leader alone, at once", 3, LEASE,
     "ticks 2 10; ticks 3 10; drop any 0 0; elect 1; tick 2; read-lease 1 4; expect-read 1 4 1;"
     "expect-queued any 0 0 0"},
    {"without answers the lease runs out and the read waits for a majority", 3, LEASE,
     "ticks 2 10; ticks 3 10; drop any 0 0; elect 1; tick 2; isolate 1; ticks 1 8; read-lease 1 4;"
     "expect-read 1 4 none; heal; deliver; expect-read 1 4 1"},
    {"a restarted node does not vote while a lease may be live", 3, LEASE | NO_PREVOTE,
     "ticks 2 10; ticks 3 10; drop any 0 0; elect 1; tick 2; crash 2; restart 2; drop any 0 0;"
     "inject vote 3 2 2 9 9; deliver-one; expect term 2 1; expect vote 2 1; ticks 2 10;"
     "drop any 0 0; inject vote 3 2 2 9 9; deliver-one; expect vote 2 3"},
    /* ---- commitment ---- */
    {"figure 8: a majority on an older-term entry does not commit it", 3, NO_CHECK_QUORUM,
     "elect 1; tick 2; isolate 1; propose 1 x; crash 1; restart 1; heal; elect 1;"
     "expect term 1 2; drop any 0 0; inject append-resp 2 1 2 2; deliver-one; expect commit 1 0;"
     "drop any 0 0; inject append-resp 2 1 2 3; deliver-one; expect commit 1 3"},
    {"figure 8 replayed: the entry is committed only with one of the new term", 5,
     NO_CHECK_QUORUM,
     "elect 1; tick 2; cut 1 3; cut 1 4; cut 1 5; propose 1 x; tick 1; crash 1; heal;"
     "cut 2 5; elect 5; propose 5 y; drop any 5 0; crash 5; restart 1; heal; cut 1 5; elect 1; tick 6;"
     "heal; restart 5; tick 20; check"},
    {"a stale leader in a minority is not held to what a later term committed", 5, NO_CHECK_QUORUM,
     "elect 1; tick 2; cut 1 3; cut 1 4; cut 1 5; cut 2 3; cut 2 4; cut 2 5; elect 3; propose 3 x;"
     "tick 2; expect commit 3 3; crash 3; expect role 1 leader; expect term 1 1; check"},
    {"a follower's commit never passes what it holds from this leader", 3, 0,
     "elect 1; tick 2; isolate 3; propose 1 a; tick 2; heal; inject heartbeat 1 3 1 9;"
     "deliver-one; expect commit 3 1"},
    /* ---- snapshots and log compaction ---- */
    {"a snapshot compacts the log and keeps the trailing entries", 3, SNAPSHOTS,
     "elect 1; propose 1 a; propose 1 b; propose 1 c; tick 4; expect snap 1 4; expect first 1 3;"
     "expect snap 2 4; expect first 2 3; expect applied 2 4; check"},
    /* The trailing entries kept below a snapshot hold at most half of snapshot_bytes; keeping 8
     * 1-byte entries (more than the 4 bytes that want a snapshot) took one after every entry. */
    {"the entries kept below a snapshot do not want the next one at once", 3, SNAPSHOT_BYTES,
     "elect 1; propose 1 a; propose 1 b; propose 1 c; propose 1 d; propose 1 e; propose 1 f;"
     "propose 1 g; propose 1 h; tick 2; expect snap 1 9; expect first 1 8; expect snapshots 1 2;"
     "check"},
    {"a shrunk group snapshots what it applied and keeps no entries in memory", 3, SNAPSHOTS6,
     "elect 1; propose 1 a; propose 1 b; tick 2; expect snap 1 0; expect first 1 1; shrink 1;"
     "tick 2; expect snap 1 3; expect first 1 4; expect last 1 3; propose 1 c; tick 2;"
     "expect snap 1 4; expect first 1 5; tick 4; expect applied 2 4; check"},
    {"a snapshot is taken by hand at the applied index", 3, 0,
     "elect 1; propose 1 a; propose 1 b; tick 2; snapshot 1; expect snap 1 3; expect first 1 1;"
     "check"},
    {"a follower behind the log's start gets the snapshot in chunks", 3, SNAPSHOTS,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; expect snap 1 8;"
     "expect first 1 7; heal; tick 6; expect installed 3 1; expect-min chunks 1 3;"
     "expect snap 3 8; expect applied 3 9; expect commit 3 9; propose 1 i; tick 4;"
     "expect applied 3 10; check"},
    {"a follower a little behind catches up from the trailing entries", 3, SNAPSHOTS,
     "elect 1; propose 1 a; propose 1 b; propose 1 c; tick 2; isolate 3; propose 1 d; tick 2;"
     "expect first 1 3; heal; tick 4; expect applied 3 5; expect installed 3 0; check"},
    {"a lost chunk is asked for again after a heartbeat round", 3, SNAPSHOTS,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; heal; drop any 0 0; ticks 1 2;"
     "deliver-one; deliver-one; deliver-one; deliver-one; deliver-one; deliver-one;"
     "expect-queued install-snapshot 1 3 1;"
     "drop install-snapshot 1 3; deliver; expect installed 3 0; tick 6; expect installed 3 1;"
     "expect applied 3 9; check"},
    {"a duplicated chunk changes nothing", 3, SNAPSHOTS,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; heal; drop any 0 0; ticks 1 2;"
     "deliver-one; deliver-one; deliver-one; deliver-one; deliver-one; deliver-one;"
     "expect-queued install-snapshot 1 3 1;"
     "duplicate 0; duplicate 0; deliver; expect installed 3 1; expect applied 3 9; check"},
    /* A chunk from the future (offset 32 while 16 is expected) is refused with "16 next". */
    {"a chunk out of order is refused and the leader resumes where the follower is", 3,
     SNAPSHOTS,
     "chunk-size 16; elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c;"
     "propose 1 d; propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; heal;"
     "drop any 0 0; ticks 1 2; deliver-one; deliver-one; deliver-one; deliver-one; deliver-one;"
     "deliver-one; expect-queued install-snapshot 1 3 1; deliver-one; deliver-one;"
     "expect-queued install-snapshot 1 3 1; inject snapshot-resp 3 1 1 8 32; deliver-at 1;"
     "expect-queued install-snapshot 1 3 2; deliver-at 1; expect-queued snapshot-resp 3 1 1;"
     "deliver; tick 8; expect installed 3 1; expect applied 3 9; check"},
    {"a follower restarted in the middle of a snapshot starts over", 3, SNAPSHOTS,
     "chunk-size 16; elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c;"
     "propose 1 d; propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; heal;"
     "drop any 0 0; ticks 1 2; deliver-one; deliver-one; deliver-one; deliver-one;"
     "deliver-one; deliver-one; deliver-one; deliver-one; expect-queued"
     " install-snapshot 1 3 1; crash 3; drop any 0 0; restart 3; tick 10;"
     "expect installed 3 1; expect applied 3 9; check"},
    /* ---- stored log (raft_config.stored_log, load.c) ---- */
    {"stored log: a follower behind the leader's memory gets the entries read from storage", 3,
     SNAPSHOTS | STORED_LOG,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; expect snap 1 8;"
     "expect first 1 7; heal; tick 6; expect-min loads 1 1; expect-min loaded 1 5;"
     "expect installed 3 0; expect chunks 1 0; expect applied 3 9; expect commit 3 9;"
     "propose 1 i; tick 4; expect applied 3 10; expect installed 3 0; check"},
    {"stored log: one entry per append takes one load per entry below the memory", 3,
     SNAPSHOTS | STORED_LOG | ONE_ENTRY_PER_APPEND,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; expect first 1 7; heal;"
     "tick 20; expect-min loads 1 5; expect-min loaded 1 5; expect installed 3 0;"
     "expect chunks 1 0; expect applied 3 9; check"},
    {"stored log: a follower restarted from its own snapshot and log catches up by loads", 3,
     SNAPSHOTS | STORED_LOG,
     "elect 1; propose 1 a; propose 1 b; propose 1 c; propose 1 d; tick 4; expect snap 3 5;"
     "crash 3; propose 1 e; propose 1 f; propose 1 g; propose 1 h; propose 1 i; tick 2;"
     "expect-min snap 1 8; expect-min first 1 7; restart 3; tick 10; expect installed 3 0;"
     "expect-min loaded 1 1; expect applied 3 10;"
     "expect chunks 1 0; check"},
    {"stored log: an unanswered load request is asked again after a heartbeat round", 3,
     SNAPSHOTS | STORED_LOG,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; loads ignore; heal; tick 2;"
     "expect-min loads-ignored 1 1; expect applied 3 1; tick 6; expect-min loads-ignored 1 2;"
     "expect applied 3 1; loads answer; tick 6; expect applied 3 9; expect installed 3 0;"
     "expect chunks 1 0; check"},
    {"stored log: entries storage no longer has fall back to the snapshot", 3,
     SNAPSHOTS | STORED_LOG,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 2; loads unavailable; heal;"
     "tick 6; expect-min loads 1 1; expect loaded 1 0; expect installed 3 1;"
     "expect-min chunks 1 3; expect applied 3 9; check"},
    {"a snapshot at or below the commit index is acknowledged, not installed", 3, 0,
     "elect 1; propose 1 a; tick 4; drop any 0 0; inject install-snapshot 1 2 1 2 1 0 1;"
     "deliver-one; expect installed 2 0; expect-queued append-resp 2 1 1; check"},
    {"a restart rebuilds the state machine from the snapshot and the log after it", 3, SNAPSHOTS,
     "elect 1; propose 1 a; propose 1 b; propose 1 c; propose 1 d; propose 1 e; tick 6;"
     "expect snap 2 6; crash 1; crash 2; crash 3; restart 1; restart 2; restart 3;"
     "expect applied 2 6; expect first 2 7; expect last 2 6; tick 40; expect-min applied 2 7;"
     "check"},
    /* Found by the raft_net fuzzer: n1's log (to 11, term 1) is replaced by n3's snapshot at 7;
     * its durable index stayed at 11, so it acknowledged entry 8 before storing it and n3
     * committed 8 with one copy on disk (n2 down). */
    {"a snapshot that replaces the log leaves nothing beyond it durable", 3, SNAPSHOTS6,
     "elect 1; tick 3; isolate 1; propose 1 a; propose 1 b; propose 1 c; propose 1 d; propose 1 e;"
     "propose 1 f; propose 1 g; propose 1 h; propose 1 i; propose 1 j; expect durable 1 11;"
     "ticks 2 30; ticks 3 30; elect 3; propose 3 x1; propose 3 x2; propose 3 x3; propose 3 x4;"
     "propose 3 x5; tick 2; expect commit 3 7; expect snap 3 7; crash 2; heal; manual 1; tick 3;"
     "persist 1; tick 3; persist 1; tick 3; expect installed 1 1; expect last 1 7;"
     "expect durable 1 7; propose 3 y; deliver; expect commit 3 7; persist 1; deliver;"
     "expect commit 3 8; check"},
    /* ---- membership change ---- */
    {"a learner is added, catches up and is promoted", 4, SPARE,
     "elect 1; propose 1 x; tick 2; change 1 add 4 ok; tick 4; expect members 4 4;"
     "expect voters 4 3; expect applied 4 3; change 1 promote 4 ok; tick 4; expect voters 1 4;"
     "expect voters 4 4; propose 1 y; tick 4; expect applied 4 5; check"},
    {"a spare outside the configuration never campaigns", 4, SPARE,
     "isolate 4; ticks 4 100; expect elections 4 0; expect role 4 follower"},
    {"a learner neither votes nor counts toward commitment", 4, SPARE,
     "elect 1; tick 2; change 1 add 4 ok; tick 4; cut 1 2; cut 1 3; propose 1 y; tick 4;"
     "expect commit 1 2; expect last 4 3; ticks 4 60; expect elections 4 0; check"},
    {"a learner that has not caught up is not promoted", 4, SPARE,
     "elect 1; tick 2; isolate 4; change 1 add 4 ok; tick 4; change 1 promote 4 ebusy; heal;"
     "tick 4; change 1 promote 4 ok; tick 4; expect voters 4 4; check"},
    {"one change at a time", 4, SPARE,
     "elect 1; tick 2; change 1 add 4 ok; change 1 remove 3 ebusy; tick 2; change 1 remove 3 ok;"
     "tick 4; expect voters 1 2; expect members 1 3; check"},
    {"a new leader changes nothing before it commits an entry of its term", 4, SPARE,
     "elect 1; change 1 add 4 ebusy; deliver; change 1 add 4 ok; check"},
    {"changes that make no sense are refused", 4, SPARE,
     "elect 1; tick 2; change 1 add 2 einval; change 1 promote 2 einval; change 1 remove 4 einval;"
     "change 1 promote 4 einval; change 2 add 4 enotleader; change 1 add 0 einval; check"},
    /* The leader stops sending to n3 once the change is appended: n3 may never learn of it
     * (dissertation 4.2.3). It campaigns when it hears nothing, and pre-vote keeps it harmless. */
    {"a removed follower no longer counts and does not disturb", 3, 0,
     "elect 1; tick 2; change 1 remove 3 ok; tick 4; expect voters 1 2; isolate 3; propose 1 x;"
     "tick 4; expect commit 1 3; ticks 3 60; heal; tick 20; expect role 1 leader; expect term 1 1;"
     "expect term 2 1; check"},
    {"a leader that removes itself steps down once the change commits", 3, 0,
     "elect 1; tick 2; change 1 remove 1 ok; expect role 1 leader; tick 2; expect role 1 follower;"
     "tick 30; expect voters 2 2; expect-min term 2 2; propose 2 x; tick 4; check"},
    {"the last voter cannot be removed", 1, 0, "elect 1; change 1 remove 1 einval"},
    /* Found by the raft_net fuzzer: a lone voter wins without sending a vote request, before its
     * term and vote are durable, and its first appends (to the learner) could not be held. */
    {"a lone voter sends entries to a learner only once its vote is durable", 3, 0,
     "elect 1; tick 2; change 1 remove 3 ok; tick 2; change 1 remove 2 ok; tick 2;"
     "change 1 add 2 ok; tick 2; crash 1; restart 1; ticks 1 30; tick 4; expect role 1 leader;"
     "expect commit 1 5; tick 4; expect commit 2 5; check"},
    {"a configuration entry that is truncated is no longer in use", 3, NO_CHECK_QUORUM,
     "elect 1; tick 2; isolate 1; change 1 remove 3 ok; expect voters 1 2; elect 2; propose 2 x;"
     "tick 2; heal; tick 6; expect voters 1 3; expect leader 1 2; check"},
    {"a learner behind the log's start gets a snapshot", 4, SPARE | SNAPSHOTS,
     "elect 1; propose 1 a; propose 1 b; propose 1 c; propose 1 d; propose 1 e; propose 1 f;"
     "propose 1 g; tick 4; expect-min first 1 3; change 1 add 4 ok; tick 8; expect installed 4 1;"
     "expect members 4 4; change 1 promote 4 ok; tick 4; expect voters 4 4; check"},
    {"the configuration is part of the snapshot and survives a restart", 4, SPARE | SNAPSHOTS,
     "elect 1; tick 2; change 1 add 4 ok; tick 4; change 1 promote 4 ok; tick 2; propose 1 a;"
     "propose 1 b; propose 1 c; propose 1 d; propose 1 e; tick 4; expect-min first 2 4;"
     "crash 1; crash 2; crash 3; crash 4; restart 1; restart 2; restart 3; restart 4;"
     "expect voters 2 4; expect voters 4 4; tick 40; check"},
    {"a new leader sends its own snapshot to a node that missed everything", 3, SNAPSHOTS,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; propose 1 c; propose 1 d;"
     "propose 1 e; propose 1 f; propose 1 g; propose 1 h; tick 4; expect snap 2 9; crash 1; heal;"
     "tick 30;"
     "expect installed 3 1; restart 1; tick 20; expect-min applied 3 10; check"},
    /* ---- leadership transfer (dissertation 3.10) ---- */
    {"transfer to an up-to-date follower: it leads the next term, the old leader follows", 3, 0,
     "elect 1; propose 1 a; tick 2; expect last 2 2; transfer 1 2; expect timeouts-now 1 1;"
     "expect transferring 1 2; reject 1 b; deliver; expect role 2 leader; expect term 2 2;"
     "expect elections 2 1; expect role 1 follower; expect leader 1 2; expect transferring 1 0;"
     "tick 2; expect commit 1 3; expect commit 3 3; propose 2 c; tick 2; expect commit 1 4; check"},
    {"transfer to a lagging follower: it catches up first, then gets timeout-now", 3, 0,
     "elect 1; tick 2; isolate 3; propose 1 a; propose 1 b; tick 2; heal; expect last 3 1;"
     "transfer 1 3; expect timeouts-now 1 0; expect transferring 1 3; deliver-one; deliver-one;"
     "expect timeouts-now 1 0; deliver; expect timeouts-now 1 1; expect role 3 leader;"
     "expect term 3 2; expect role 1 follower; tick 2; expect commit 1 4; check"},
    {"a transfer whose target is cut off aborts after an election timeout, with a no-op", 3, 0,
     "elect 1; tick 2; isolate 2; transfer 1 2; expect timeouts-now 1 1; reject 1 x; tick 9;"
     "expect transferring 1 2; expect last 1 1; tick 1; expect transferring 1 0;"
     "expect transfers-aborted 1 1; expect role 1 leader; expect term 1 1; expect last 1 2;"
     "expect commit 1 2; propose 1 y; deliver; expect commit 1 3; heal; tick 4;"
     "expect commit 2 3; expect role 2 follower; expect term 2 1; check"},
    {"a stale timeout-now delivered after the abort (and its no-op) changes nothing", 3, 0,
     "elect 1; tick 2; cut 1 2; transfer 1 2; tick 10; expect transfers-aborted 1 1; heal;"
     "tick 4; expect last 2 2; inject timeout-now 1 2 1 1; deliver; expect role 2 follower;"
     "expect term 2 1; expect elections 2 0; expect role 1 leader; check"},
    {"a timeout-now matching the target's log is obeyed (control for the row above)", 3, 0,
     "elect 1; tick 2; inject timeout-now 1 2 1 1; deliver; expect role 2 leader;"
     "expect term 2 2; check"},
    {"a timeout-now from a node that is not the leader is ignored", 3, 0,
     "elect 1; tick 2; inject timeout-now 3 2 1 1; deliver; expect role 2 follower;"
     "expect elections 2 0; expect term 2 1"},
    {"a timeout-now of an older term is dropped", 3, 0,
     "elect 1; tick 2; transfer 1 2; deliver; expect role 2 leader; tick 2;"
     "inject timeout-now 2 3 1 3; deliver; expect role 3 follower; expect term 3 2;"
     "expect elections 3 0; check"},
    {"during a transfer proposals are refused and reads still served", 3, 0,
     "elect 1; tick 2; cut 1 2; transfer 1 2; reject 1 x; read 1 7; deliver; expect-read 1 7 1;"
     "expect last 1 1; check"},
    {"transfers refused: to self, to a non-member, by a follower, to another target", 3, 0,
     "elect 1; tick 2; transfer 1 1 einval; transfer 1 7 einval; transfer 2 3 enotleader;"
     "expect transfers 1 0; cut 1 2; transfer 1 2; transfer 1 2; transfer 1 3 ebusy;"
     "expect transferring 1 2; expect transfers 1 1; check"},
    {"a transfer wins although the other followers are inside the leader's lease", 3, 0,
     "elect 1; tick 2; expect role 3 follower; transfer 1 2; deliver-one; expect role 2 candidate;"
     "deliver; expect vote 3 2; expect term 3 2; expect role 2 leader; check"},
    {"a transfer vote is granted inside the lease, but only one vote per term", 3, NO_PREVOTE,
     "elect 1; tick 2; inject vote 3 2 2 9 9 0; deliver-one; expect term 2 1;"
     "inject vote 3 2 2 9 9 1; deliver-one; expect term 2 2; expect vote 2 3;"
     "drop any 0 0; inject vote 1 2 2 9 9 1; deliver-one; expect vote 2 3;"
     "expect-queued vote-resp 2 1 1"},
    {"a transfer vote still needs an up-to-date log", 3, NO_PREVOTE,
     "elect 1; propose 1 a; tick 2; inject vote 3 2 2 1 1 1; deliver-one; expect term 2 2;"
     "expect vote 2 0"},
    {"a node restarted inside a lease grants a transfer vote", 3, LEASE,
     "ticks 2 10; ticks 3 10; drop any 0 0; elect 1; tick 2; crash 3; restart 3; tick 1;"
     "transfer 1 2; deliver; expect vote 3 2; expect role 2 leader; check"},
    {"a leader that sent timeout-now serves no more lease reads in its term", 3, LEASE,
     "ticks 2 10; ticks 3 10; drop any 0 0; elect 1; tick 2; read-lease 1 4; expect-read 1 4 1;"
     "cut 1 2; transfer 1 2; expect timeouts-now 1 1; read-lease 1 5; expect-read 1 5 none;"
     "deliver; expect-read 1 5 1; tick 10; expect transfers-aborted 1 1; expect role 1 leader;"
     "read-lease 1 6; expect-read 1 6 none; deliver; expect-read 1 6 2; check"},
};

static struct raft_config config_for(uint32_t flags) {
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.seed = 42;
    if (flags & NO_PREVOTE) cfg.pre_vote = 0;
    if (flags & NO_CHECK_QUORUM) cfg.check_quorum = 0;
    if (flags & ONE_ENTRY_PER_APPEND) cfg.msg_entries_max = 1;
    if (flags & SMALL_LOG) cfg.log_entries_max = 4;
    if (flags & LEASE) cfg.lease_ticks = raft_lease_ticks(cfg.election_ticks, 200);
    if (flags & SNAPSHOTS) cfg.snapshot_entries = 4, cfg.snapshot_trailing = 2;
    if (flags & SNAPSHOTS6) cfg.snapshot_entries = 6, cfg.snapshot_trailing = 2;
    if (flags & STORED_LOG) cfg.stored_log = 1;
    if (flags & SNAPSHOT_BYTES)
        cfg.snapshot_entries = 1000, cfg.snapshot_bytes = 4, cfg.snapshot_trailing = 8;
    return cfg;
}

START_TEST(scenario) {
    const struct scenario *s = &scenarios[_i];
    struct raft_config cfg = config_for(s->flags);
    if (s->flags & SPARE) {
        cfg.voter_count = s->nodes - 1;
        for (uint32_t i = 0; i < cfg.voter_count; i++) cfg.voters[i] = i + 1;
    }
    struct raftnet *net = raftnet_create(s->nodes, &cfg);
    char err[512];
    int rc = raftnet_script(net, s->script, err, sizeof err);
    if (rc == 0) rc = raftnet_script(net, "check", err, sizeof err);
    raftnet_destroy(net);
    ck_assert_msg(rc == 0, "%s: %s", s->name, err);
}
END_TEST

/* The safety checker inside raftnet fires: a history in which n2 had led term 1 before n1. */
START_TEST(checker_fires_on_two_leaders_in_one_term) {
    struct raft_config cfg = config_for(0);
    struct raftnet *net = raftnet_create(3, &cfg);
    char err[512];
    ck_assert_int_eq(raftnet_script(net, "elect 1; tick 2; check", err, sizeof err), 0);
    net->leader_of_term[1] = 2;
    ck_assert_int_eq(raftnet_check(net), -1);
    ck_assert_ptr_nonnull(strstr(net->why, "election safety"));
    raftnet_destroy(net);
}
END_TEST

START_TEST(config_check_names_the_bad_setting) {
    struct raft_config cfg;
    raft_config_default(&cfg);
    cfg.id = 1;
    cfg.voter_count = 3;
    cfg.voters[0] = 1; cfg.voters[1] = 2; cfg.voters[2] = 3;
    ck_assert_int_eq(raft_config_check(&cfg), 0);
    cfg.voters[2] = 2;
    ck_assert_int_eq(raft_config_check(&cfg), RQ_EINVAL);
    cfg.voters[2] = 3;
    cfg.heartbeat_ticks = cfg.election_ticks;
    ck_assert_int_eq(raft_config_check(&cfg), RQ_EINVAL);
    cfg.heartbeat_ticks = 1;
    cfg.id = 4;   /* a spare outside the bootstrap configuration, to be added later */
    ck_assert_int_eq(raft_config_check(&cfg), 0);
    cfg.id = 0;
    ck_assert_int_eq(raft_config_check(&cfg), RQ_EINVAL);
    cfg.id = 1;
    cfg.lease_ticks = cfg.election_ticks;
    ck_assert_int_eq(raft_config_check(&cfg), RQ_EINVAL);
    cfg.lease_ticks = raft_lease_ticks(cfg.election_ticks, 200);
    ck_assert_int_eq(raft_config_check(&cfg), 0);
    cfg.check_quorum = 0;
    ck_assert_int_eq(raft_config_check(&cfg), RQ_EINVAL);
    /* (L + 1)(1 + d) < (E - 1)(1 - d): E = 10 gives 7 up to a drift of about 5.8% */
    ck_assert_uint_eq(raft_lease_ticks(10, 0), 7);
    ck_assert_uint_eq(raft_lease_ticks(10, 200), 7);
    ck_assert_uint_eq(raft_lease_ticks(10, 60000), 6);
    ck_assert_uint_eq(raft_lease_ticks(2, 0), 0);
    ck_assert_uint_eq(raft_lease_ticks(10, 1000000), 0);
}
END_TEST

int main(void) {
    Suite *suite = suite_create("raft");
    TCase *tc = tcase_create("scenarios");
    tcase_add_loop_test(tc, scenario, 0, (int)(sizeof scenarios / sizeof scenarios[0]));
    tcase_add_test(tc, checker_fires_on_two_leaders_in_one_term);
    tcase_add_test(tc, config_check_names_the_bad_setting);
    suite_add_tcase(suite, tc);
    return run_suites(srunner_create(suite));
}
