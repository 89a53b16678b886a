/* membership.h — a Raft group's configuration: who votes, who only follows (learners).
 *
 * Encoded (a CONFIG entry's data, and a snapshot's configuration blob), little-endian:
 *     u8  version        1
 *     u8  count          members, 1..RAFT_MEMBERS_MAX
 *     count x { u32 id (1..), u8 voter (0 or 1) }
 * at least one voter, no id twice. Decoding is strict: anything else is RQ_ECORRUPT (a wrong
 * version, a zero or duplicate id, a flag byte other than 0/1, no voter, a length that is not
 * exactly 2 + 5 * count). */
#ifndef RQ_RAFT_MEMBERSHIP_H
#define RQ_RAFT_MEMBERSHIP_H

#include <stddef.h>
#include <stdint.h>

enum {
    RAFT_MEMBERS_MAX = 9,                          /* voters and learners of one group */
    RAFT_MEMBERSHIP_VERSION = 1,
    RAFT_MEMBERSHIP_SIZE_MAX = 2 + 5 * RAFT_MEMBERS_MAX,
};

struct raft_membership {
    uint32_t count;
    uint32_t ids[RAFT_MEMBERS_MAX];
    uint8_t voter[RAFT_MEMBERS_MAX];   /* 0: a learner (receives the log, never votes) */
};

/* The slot of id, or RAFT_MEMBERS_MAX when it is not a member. */
uint32_t raft_membership_slot(const struct raft_membership *m, uint32_t id);
int raft_membership_is_voter(const struct raft_membership *m, uint32_t id);
uint32_t raft_membership_voters(const struct raft_membership *m);

/* Writes m's encoding into buf (RAFT_MEMBERSHIP_SIZE_MAX bytes suffice); returns its size. */
size_t raft_membership_encode(const struct raft_membership *m, uint8_t *buf);
/* Returns 0 or RQ_ECORRUPT (m untouched). */
int raft_membership_decode(const uint8_t *buf, size_t len, struct raft_membership *m);

/* "n1 n2 n3 +n4" (learners marked '+') into buf, for traces. */
const char *raft_membership_describe(const struct raft_membership *m, char *buf, size_t cap);

#endif
