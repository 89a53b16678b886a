/* A group's configuration and its encoding; see membership.h. */
#include "raft/membership.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"

uint32_t raft_membership_slot(const struct raft_membership *m, uint32_t id) {
    for (uint32_t i = 0; i < m->count; i++)
        if (m->ids[i] == id) return i;
    return RAFT_MEMBERS_MAX;
}

int raft_membership_is_voter(const struct raft_membership *m, uint32_t id) {
    uint32_t slot = raft_membership_slot(m, id);
    return slot < m->count && m->voter[slot];
}

uint32_t raft_membership_voters(const struct raft_membership *m) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->count; i++) n += m->voter[i];
    return n;
}

size_t raft_membership_encode(const struct raft_membership *m, uint8_t *buf) {
    RQ_ASSERT(m->count >= 1 && m->count <= RAFT_MEMBERS_MAX);
    buf[0] = RAFT_MEMBERSHIP_VERSION;
    buf[1] = (uint8_t)m->count;
    for (uint32_t i = 0; i < m->count; i++) {
        RQ_ASSERT(m->ids[i] != 0 && m->voter[i] <= 1);
        rq_put_u32(buf + 2 + 5 * i, m->ids[i]);
        buf[2 + 5 * i + 4] = m->voter[i];
    }
    return 2 + 5 * (size_t)m->count;
}

int raft_membership_decode(const uint8_t *buf, size_t len, struct raft_membership *m) {
    if (len < 2 || buf[0] != RAFT_MEMBERSHIP_VERSION) return RQ_ECORRUPT;
    uint32_t count = buf[1];
    if (count < 1 || count > RAFT_MEMBERS_MAX || len != 2 + 5 * (size_t)count) return RQ_ECORRUPT;
    struct raft_membership out = {.count = count};
    for (uint32_t i = 0; i < count; i++) {
        out.ids[i] = rq_get_u32(buf + 2 + 5 * i);
        out.voter[i] = buf[2 + 5 * i + 4];
        if (out.ids[i] == 0 || out.voter[i] > 1) return RQ_ECORRUPT;
        for (uint32_t j = 0; j < i; j++)
            if (out.ids[j] == out.ids[i]) return RQ_ECORRUPT;
    }
    if (raft_membership_voters(&out) == 0) return RQ_ECORRUPT;
    *m = out;
    return 0;
}

const char *raft_membership_describe(const struct raft_membership *m, char *buf, size_t cap) {
    size_t at = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < m->count && at < cap; i++) {
        int n = snprintf(buf + at, cap - at, "%s%sn%" PRIu32, i ? " " : "", m->voter[i] ? "" : "+",
                         m->ids[i]);
        if (n < 0) break;
        at += (size_t)n;
    }
    return buf;
}
