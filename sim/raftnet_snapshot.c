/* Snapshots in the raftnet world (raftnet.h): a node's state machine is the list of entries it
 * applied, so its snapshot file is the group's configuration blob (u8 size, then the bytes) and
 * that list, encoded (per entry: u64 index, u64 term, u8 type, u32 size, then the data, host byte
 * order). Taking one, serving its chunks to followers,
 * receiving one in order, installing it and restarting from it follow what a real node does
 * (src/node/host.c), synchronously: a snapshot is durable the moment it is complete. */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "sim/raftnet_internal.h"

enum { ENTRY_HEADER = 8 + 8 + 1 + 4 };

static uint8_t *grow(uint8_t *buf, size_t size) {
    uint8_t *p = realloc(buf, size ? size : 1);
    RQ_ASSERT(p != NULL);
    return p;
}

/* The snapshot file for the applied entries 1..upto, in a new buffer. */
static uint8_t *encode_applied(const struct raftnet_node *nd, uint64_t upto, size_t *size) {
    uint8_t config[RAFT_MEMBERSHIP_SIZE_MAX];
    size_t config_size = raft_snapshot_config(nd->raft, upto, config);
    size_t total = 1 + config_size;
    for (uint64_t i = 0; i < upto; i++) total += ENTRY_HEADER + nd->applied[i].data_size;
    uint8_t *buf = grow(NULL, total), *p = buf;
    *p++ = (uint8_t)config_size;
    memcpy(p, config, config_size);
    p += config_size;
    for (uint64_t i = 0; i < upto; i++) {
        const struct raftnet_stored *a = &nd->applied[i];
        memcpy(p, &a->index, 8);
        memcpy(p + 8, &a->term, 8);
        p[16] = a->type;
        memcpy(p + 17, &a->data_size, 4);
        if (a->data_size) memcpy(p + ENTRY_HEADER, a->data, a->data_size);
        p += ENTRY_HEADER + a->data_size;
    }
    *size = total;
    return buf;
}

/* The state machine becomes the snapshot's entries; each is checked against what the others
 * applied at its index (state machine safety holds for installed snapshots too). */
static void load_applied(struct raftnet *net, uint32_t id, const uint8_t *file, size_t size) {
    struct raftnet_node *nd = &net->nodes[id];
    for (uint64_t i = 0; i < nd->applied_count; i++) raftnet_stored_free(&nd->applied[i]);
    nd->applied_count = 0;
    RQ_ASSERT(size >= 1 && size >= 1 + (size_t)file[0]);
    for (size_t at = 1 + file[0]; at < size;) {
        RQ_ASSERT(size - at >= ENTRY_HEADER);
        struct raft_entry e;
        memcpy(&e.index, file + at, 8);
        memcpy(&e.term, file + at + 8, 8);
        e.type = file[at + 16];
        memcpy(&e.data_size, file + at + 17, 4);
        RQ_ASSERT(size - at - ENTRY_HEADER >= e.data_size);
        e.data = e.data_size ? file + at + ENTRY_HEADER : NULL;
        raftnet_apply(net, id, &e);
        at += ENTRY_HEADER + e.data_size;
    }
}

void raftnet_snapshot(struct raftnet *net, uint32_t id) {
    struct raftnet_node *nd = &net->nodes[id];
    struct raft *r = nd->raft;
    if (r == NULL || nd->applied_count <= nd->snap_index) return;
    uint64_t index = nd->applied_count;
    free(nd->snap_file);
    nd->snap_file = encode_applied(nd, index, &nd->snap_size);
    nd->snap_index = index;
    nd->snap_term = raft_term_at(r, index);
    raft_snapshot_taken(r, index, nd->snap_term);
    if (net->cfg.stored_log) return;   /* the durable log keeps every entry */
    /* The durable log below the raft's first index is compacted too. */
    uint64_t first = raft_first_index(r);
    for (uint64_t i = nd->log_first; i < first && i <= nd->log_count; i++)
        raftnet_stored_free(&nd->log[i - 1]);
    if (first > nd->log_first) nd->log_first = first;
    RQ_ASSERT(nd->log_first <= nd->log_count + 1);
}

void raftnet_snapshot_maybe_take(struct raftnet *net, uint32_t id) {
    if (raft_snapshot_wanted(net->nodes[id].raft)) raftnet_snapshot(net, id);
}

void raftnet_snapshot_serve(struct raftnet *net, uint32_t id) {
    struct raftnet_node *nd = &net->nodes[id];
    struct raft *r = nd->raft;
    /* Twice: a follower told "unavailable" is asked for again at once. */
    for (int pass = 0; pass < 2; pass++) {
        const struct raft_snapshot_request *reqs;
        struct raft_snapshot_request asked[RAFT_VOTERS_MAX];
        uint32_t n = raft_snapshot_requests(r, &reqs);
        if (n == 0) return;
        memcpy(asked, reqs, n * sizeof *reqs);
        raft_snapshot_requests_clear(r);
        for (uint32_t i = 0; i < n; i++) {
            const struct raft_snapshot_request *q = &asked[i];
            if (q->index != nd->snap_index) {   /* replaced by a newer one */
                raft_snapshot_unavailable(r, q->to, q->index);
                continue;
            }
            if (q->offset >= nd->snap_size) continue;   /* the follower has every byte */
            size_t len = nd->snap_size - q->offset;
            if (len > net->chunk_size) len = net->chunk_size;
            raft_snapshot_send(r, q->to, q->index, q->offset, nd->snap_file + q->offset,
                               (uint32_t)len, q->offset + len == nd->snap_size);
        }
    }
}

/* The term of the durable entry at index (0 at 0), or UINT64_MAX when it is not stored. */
static uint64_t stored_term(const struct raftnet_node *nd, uint64_t index) {
    if (index == 0) return 0;
    if (index == nd->snap_index) return nd->snap_term;
    if (index < nd->log_first || index > nd->log_count) return UINT64_MAX;
    return nd->log[index - 1].term;
}

/* One load request: the entries from q->first, read from the durable log, or "unavailable". */
static void load_answer(struct raftnet *net, uint32_t id, const struct raft_load_request *q,
                        struct raft_entry *entries) {
    struct raftnet_node *nd = &net->nodes[id];
    uint64_t prev_term = stored_term(nd, q->first - 1);
    if (net->loads == RAFTNET_LOADS_UNAVAILABLE || prev_term == UINT64_MAX ||
        q->first < nd->log_first || q->first > nd->log_count) {
        raft_load_unavailable(nd->raft, q->to, q->first);
        return;
    }
    uint32_t n = 0;
    while (n < q->count_max && n < RAFT_MSG_ENTRIES_MAX && q->first + n <= nd->log_count) {
        const struct raftnet_stored *s = &nd->log[q->first + n - 1];
        entries[n++] = (struct raft_entry){s->index, s->term, s->type, s->data_size, s->data};
    }
    raft_send_loaded(nd->raft, q->to, q->first, prev_term, entries, n);
}

/* The entries are copied when the caller takes the outbox, right after. */
void raftnet_loads_serve(struct raftnet *net, uint32_t id) {
    struct raft *r = net->nodes[id].raft;
    const struct raft_load_request *reqs;
    struct raft_load_request asked[RAFT_MEMBERS_MAX];
    uint32_t n = raft_load_requests(r, &reqs);
    memcpy(asked, reqs, n * sizeof *reqs);
    raft_load_requests_clear(r);
    for (uint32_t i = 0; i < n; i++) {
        if (net->loads == RAFTNET_LOADS_IGNORE) net->loads_ignored++;
        else load_answer(net, id, &asked[i], net->loaded[i]);
    }
}

/* The whole file is in: it becomes the durable snapshot, the state machine, and the log's start. */
static void install(struct raftnet *net, uint32_t id) {
    struct raftnet_node *nd = &net->nodes[id];
    struct raft *r = nd->raft;
    uint64_t index = nd->recv_index, term = nd->recv_term;
    int keep = raft_term_at(r, index) == term;   /* raft keeps the entries after it */
    uint64_t drop_to = keep ? index : nd->log_count;
    for (uint64_t i = nd->log_first; i <= drop_to && i <= nd->log_count; i++)
        raftnet_stored_free(&nd->log[i - 1]);
    nd->log_first = index + 1;
    if (!keep || nd->log_count < index) nd->log_count = index;
    if (nd->pending_last < nd->log_count) nd->pending_last = nd->log_count;
    free(nd->snap_file);
    nd->snap_file = nd->recv_file;
    nd->snap_size = nd->recv_size;
    nd->snap_index = index;
    nd->snap_term = term;
    nd->recv_file = NULL;
    nd->recv_size = 0;
    nd->recv_index = 0;
    load_applied(net, id, nd->snap_file, nd->snap_size);
    int err = raft_snapshot_installed(r, index, term, nd->snap_file + 1, nd->snap_file[0]);
    RQ_ASSERT(err == 0);
}

void raftnet_snapshot_receive(struct raftnet *net, uint32_t id) {
    struct raftnet_node *nd = &net->nodes[id];
    struct raft *r = nd->raft;
    struct raft_snapshot_chunk c;
    if (!raft_snapshot_incoming(r, &c)) return;
    if (c.index != nd->recv_index) {
        /* Only offset 0 starts a snapshot (a new leader's may be older than one half received). */
        if (c.offset != 0 || c.index <= nd->snap_index) {
            raft_snapshot_received(r, c.index, 0);
            return;
        }
        nd->recv_index = c.index;
        nd->recv_term = c.term;
        nd->recv_size = 0;
    }
    if (c.offset != nd->recv_size) {   /* a duplicate, a stale or a future chunk: changes nothing */
        raft_snapshot_received(r, c.index, nd->recv_size);
        return;
    }
    nd->recv_file = grow(nd->recv_file, nd->recv_size + c.size);
    if (c.size) memcpy(nd->recv_file + nd->recv_size, c.data, c.size);
    nd->recv_size += c.size;
    uint64_t next = nd->recv_size;
    if (c.last) install(net, id);
    raft_snapshot_received(r, c.index, next);
}

void raftnet_snapshot_restore(struct raftnet *net, uint32_t id) {
    struct raftnet_node *nd = &net->nodes[id];
    for (uint64_t i = 0; i < nd->applied_count; i++) raftnet_stored_free(&nd->applied[i]);
    nd->applied_count = 0;
    free(nd->recv_file);   /* a receive in progress is lost in a crash: the leader starts over */
    nd->recv_file = NULL;
    nd->recv_size = 0;
    nd->recv_index = 0;
    uint64_t next = nd->log_first;
    if (nd->snap_index > 0) {
        int err = raft_restore_snapshot(nd->raft, nd->snap_index, nd->snap_term,
                                        nd->snap_file + 1, nd->snap_file[0]);
        RQ_ASSERT(err == 0);
        load_applied(net, id, nd->snap_file, nd->snap_size);
        if (next <= nd->snap_index) next = nd->snap_index + 1;
        /* A durable log that ends below the snapshot is dropped, as the host drops it: the log
         * goes on from the snapshot (else the model's log would have a hole at the next append,
         * found by the raft_net fuzzer). */
        if (nd->log_count < nd->snap_index) {
            for (uint64_t i = nd->log_first; i <= nd->log_count; i++)
                raftnet_stored_free(&nd->log[i - 1]);
            nd->log_first = nd->snap_index + 1;
            nd->log_count = nd->snap_index;
        }
    }
    for (uint64_t i = next; i <= nd->log_count; i++) {
        const struct raftnet_stored *s = &nd->log[i - 1];
        struct raft_entry e = {s->index, s->term, s->type, s->data_size, s->data};
        RQ_ASSERT(raft_restore(nd->raft, &e) == 0);
    }
}
