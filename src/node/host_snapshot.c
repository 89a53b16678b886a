/* A host's snapshots (host.h, "Snapshots"): the glue between a group's Raft (raft.h, snapshots),
 * its snapshot files (store/snapshot.h) and the state machine (host_callbacks.snapshot/restore).
 *
 *   take:     raft_snapshot_wanted -> cb.snapshot (the image, in memory) -> write it to a new file
 *             -> FINISHED -> raft_snapshot_taken -> store_compact below the group's log
 *   send:     raft_snapshot_requests -> a queue -> `sender` reads each chunk -> raft_snapshot_send
 *   receive:  raft_snapshot_incoming -> store_snapshot_receive (in order only) -> CHUNK_DONE ->
 *             raft_snapshot_received; after the last -> receive_finish -> FINISHED (durable) ->
 *             restore
 *   restore:  `restorer` reads the whole image -> cb.restore -> raft_snapshot_installed (after a
 *             receive) or raft_restore_snapshot (at start)
 *
 * One write or receive at a time per group (the snapshot store's rule): a chunk that arrives while
 * a local snapshot is being written is answered "from 0", and the leader retries. Applying waits
 * while a received snapshot is restored, so the state machine never applies an entry the image
 * already holds. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"
#include "node/host_internal.h"

static void on_files(void *arg, const struct store_snapshot_result *res);
static void on_sender(void *arg, const struct store_snapshot_result *res);
static void on_restorer(void *arg, const struct store_snapshot_result *res);

int host_snapshot_init(struct host *h, struct host_group *g) {
    struct host_snap *s = &g->snap;
    s->files = calloc(1, sizeof *s->files);
    s->sender = calloc(1, sizeof *s->sender);
    s->restorer = calloc(1, sizeof *s->restorer);
    s->chunk = malloc(RAFT_SNAPSHOT_CHUNK_MAX);
    if (s->files == NULL || s->sender == NULL || s->restorer == NULL || s->chunk == NULL)
        return RQ_ENOMEM;
    store_snapshot_init(s->files, h->io, g->id, on_files, g);
    store_snapshot_reader_init(s->sender, h->io, g->id, on_sender, g);
    store_snapshot_reader_init(s->restorer, h->io, g->id, on_restorer, g);
    return 0;
}

void host_snapshot_free(struct host_group *g) {
    struct host_snap *s = &g->snap;
    free(s->files);
    free(s->sender);
    free(s->restorer);
    free(s->chunk);
    free(s->image);
    free(s->restore_data);
    memset(s, 0, sizeof *s);
}

int host_snapshot_on_disk_done(struct host_group *g, struct rq_disk_req *req) {
    struct host_snap *s = &g->snap;
    if (s->files == NULL) return 0;
    return store_snapshot_on_disk_done(s->files, req) ||
           store_snapshot_reader_on_disk_done(s->sender, req) ||
           store_snapshot_reader_on_disk_done(s->restorer, req);
}

static int fatal(struct host *h, const struct store_snapshot_result *res, const char *why) {
    if (!res->fatal && res->err != RQ_EIO) return 0;
    host_halt(h, why, res->err ? res->err : RQ_EIO);
    return 1;
}

/* The stored log below the group's in-memory log is covered by its snapshot. A stored log is the
 * data: only what retention deleted goes (host_retain_log), and never past the in-memory log,
 * whose entries a restart reads back after the snapshot. */
void host_compact_stored_log(struct host *h, struct host_group *g) {
    uint64_t below = raft_first_index(g->raft);
    if (g->kind == HOST_GROUP_STORED_LOG && g->retain_below < below) below = g->retain_below;
    if (below <= 1) return;
    int err = store_compact(h->store, g->id, below);
    if (err != 0 && err != RQ_ERANGE) host_halt(h, "log compaction refused", err);   /* ERANGE: no log */
}

/* ---- restoring the state machine from a snapshot file ------------------------------------------ */

static void restore_begin(struct host *h, struct host_group *g, uint64_t index, uint64_t term) {
    struct host_snap *s = &g->snap;
    RQ_ASSERT(!s->restoring);
    s->restoring = 1;
    s->restore_index = index;
    s->restore_term = term;
    s->restore_done = 0;
    store_snapshot_reader_open(s->restorer, index);
    (void)h;
}

/* The whole image is in memory and verified: hand it to the state machine. */
static void restore_apply(struct host *h, struct host_group *g) {
    struct host_snap *s = &g->snap;
    if (!s->opened) {   /* at start: the group's log follows */
        if (raft_restore_snapshot(g->raft, s->restore_index, s->restore_term, s->restore_config,
                                  s->restore_config_size) != 0) {
            host_halt(h, "snapshot configuration does not decode", RQ_ECORRUPT);
            return;
        }
        if (h->cb.restore) h->cb.restore(h->cb_arg, g->id, s->restore_index, s->restore_data,
                                         s->restore_size);
        RQ_INFO("host: group %" PRIu32 ": state restored from the snapshot at %" PRIu64, g->id,
                s->restore_index);
        s->opened = 1;
        host_snapshot_loaded(h, g);
        return;
    }
    if (s->restore_index > raft_applied_index(g->raft)) {
        if (raft_snapshot_installed(g->raft, s->restore_index, s->restore_term, s->restore_config,
                                    s->restore_config_size) != 0) {
            host_halt(h, "received snapshot's configuration does not decode", RQ_ECORRUPT);
            return;
        }
        if (h->cb.restore) h->cb.restore(h->cb_arg, g->id, s->restore_index, s->restore_data,
                                         s->restore_size);
    } else {
        /* We applied that far meanwhile (from the log): the file is just a snapshot we hold. */
        raft_snapshot_taken(g->raft, s->restore_index, s->restore_term);
    }
    host_compact_stored_log(h, g);
}

static void restore_read_next(struct host *h, struct host_group *g) {
    struct host_snap *s = &g->snap;
    uint64_t left = s->restore_size - s->restore_done;
    if (left == 0) {
        int err = store_snapshot_reader_close(s->restorer);
        if (err != 0) host_halt(h, "snapshot reader close refused", err);
        return;
    }
    size_t len = left < RAFT_SNAPSHOT_CHUNK_MAX ? (size_t)left : RAFT_SNAPSHOT_CHUNK_MAX;
    int err = store_snapshot_reader_read_data(s->restorer, s->restore_done,
                                              s->restore_data + s->restore_done, len);
    if (err != 0) host_halt(h, "snapshot read refused", err);
}

static void on_restorer(void *arg, const struct store_snapshot_result *res) {
    struct host_group *g = arg;
    struct host *h = g->host;
    struct host_snap *s = &g->snap;
    if (h->halted) return;
    switch (res->event) {
    case STORE_SNAPSHOT_READER_OPENED:
        /* The file is the current snapshot, verified and durable: failing to read it is fatal. */
        if (res->err != 0) { host_halt(h, "snapshot open for restore failed", res->err); return; }
        if (res->meta.data_size > HOST_SNAPSHOT_DATA_MAX) {
            host_halt(h, "snapshot image larger than HOST_SNAPSHOT_DATA_MAX", RQ_ETOOBIG);
            return;
        }
        if (res->meta.config_size > sizeof s->restore_config) {
            host_halt(h, "snapshot configuration larger than a membership", RQ_ECORRUPT);
            return;
        }
        s->restore_config_size = res->meta.config_size;
        if (res->meta.config_size > 0)
            memcpy(s->restore_config, res->config, res->meta.config_size);
        s->restore_size = res->meta.data_size;
        s->restore_data = malloc(s->restore_size ? s->restore_size : 1);
        if (s->restore_data == NULL) { host_halt(h, "no memory for a snapshot", RQ_ENOMEM); return; }
        restore_read_next(h, g);
        return;
    case STORE_SNAPSHOT_READ_DONE:
        if (res->err != 0) { host_halt(h, "snapshot read for restore failed", res->err); return; }
        s->restore_done += res->len;
        restore_read_next(h, g);
        return;
    case STORE_SNAPSHOT_READER_CLOSED:
        restore_apply(h, g);
        free(s->restore_data);
        s->restore_data = NULL;
        s->restoring = 0;
        if (g->restored) {
            host_drain(h, g);
            host_flush(h);
        }
        return;
    default: RQ_UNREACHABLE();
    }
}

/* ---- the group's snapshot files: open at start, writes and receives ---------------------------- */

void host_snapshot_open(struct host *h, struct host_group *g) {
    (void)h;
    store_snapshot_open(g->snap.files);
}

static void answer_chunk(struct host *h, struct host_group *g, uint64_t index, uint64_t next) {
    raft_snapshot_received(g->raft, index, next);
    host_drain(h, g);
    host_flush(h);
}

/* The last chunk is written: install the file (FINISHED follows), or go on if bytes are missing. */
static void receive_chunk_done(struct host *h, struct host_group *g,
                               const struct store_snapshot_result *res) {
    struct host_snap *s = &g->snap;
    s->recv_chunk_given = 0;
    if (s->recv_chunk_last) {
        int err = store_snapshot_receive_finish(s->files);
        if (err == 0) {
            s->recv_finishing = 1;
            return;
        }
        if (err != RQ_ETRUNC) { host_halt(h, "snapshot install refused", err); return; }
    }
    answer_chunk(h, g, s->recv_index, res->next_offset);
}

static void write_next(struct host *h, struct host_group *g);

static void on_files(void *arg, const struct store_snapshot_result *res) {
    struct host_group *g = arg;
    struct host *h = g->host;
    struct host_snap *s = &g->snap;
    if (h->halted || fatal(h, res, "snapshot files failed")) return;
    switch (res->event) {
    case STORE_SNAPSHOT_OPENED:
        if (res->err != 0) { host_halt(h, "snapshot open failed", res->err); return; }
        if (res->found) {
            restore_begin(h, g, res->meta.index, res->meta.term);
            return;
        }
        s->opened = 1;
        host_snapshot_loaded(h, g);
        return;
    case STORE_SNAPSHOT_CHUNK_DONE:
        if (s->writing) write_next(h, g);
        else receive_chunk_done(h, g, res);
        return;
    case STORE_SNAPSHOT_FINISHED:
        break;
    default: RQ_UNREACHABLE();
    }
    if (s->writing) {
        s->writing = 0;
        free(s->image);
        s->image = NULL;
        if (res->err != 0) {
            RQ_WARN("host: group %" PRIu32 ": snapshot at %" PRIu64 " not written: %s", g->id,
                    s->image_index, rq_strerror(res->err));
            return;
        }
        raft_snapshot_taken(g->raft, s->image_index, s->image_term);
        host_compact_stored_log(h, g);
        return;
    }
    RQ_ASSERT(s->receiving);
    s->receiving = 0;
    s->recv_chunk_given = 0;
    s->recv_finishing = 0;
    if (res->err != 0) {   /* not installed (a corrupt chunk, no space, aborted): start over */
        RQ_WARN("host: group %" PRIu32 ": snapshot %" PRIu64 " from the leader not installed: %s",
                g->id, s->recv_index, rq_strerror(res->err));
        answer_chunk(h, g, s->recv_index, 0);
        return;
    }
    restore_begin(h, g, s->recv_index, s->recv_term);   /* first: applying pauses */
    answer_chunk(h, g, s->recv_index, res->file_size);
}

/* ---- taking a local snapshot ------------------------------------------------------------------- */

static void write_next(struct host *h, struct host_group *g) {
    struct host_snap *s = &g->snap;
    size_t left = s->image_size - s->image_written;
    int err;
    if (left == 0) {
        err = store_snapshot_write_finish(s->files);
    } else {
        size_t len = left < STORE_SNAPSHOT_CHUNK_MAX ? left : STORE_SNAPSHOT_CHUNK_MAX;
        err = store_snapshot_write(s->files, s->image + s->image_written, len);
        s->image_written += len;
    }
    if (err != 0) host_halt(h, "snapshot write refused", err);
}

void host_snapshot_maybe_take(struct host *h, struct host_group *g) {
    struct host_snap *s = &g->snap;
    if (h->cb.snapshot == NULL || s->disabled || s->writing || s->receiving || s->restoring ||
        !raft_snapshot_wanted(g->raft))
        return;
    uint64_t index = raft_applied_index(g->raft);
    /* A stored log must not end below its snapshot (restart would drop it, and its entries would
     * have a hole): a follower that applied beyond what its log holds durably waits for it. */
    if (g->kind == HOST_GROUP_STORED_LOG && index > raft_durable_index(g->raft)) return;
    s->image = malloc(HOST_SNAPSHOT_DATA_MAX);
    if (s->image == NULL) return;   /* tried again after the next apply */
    s->image_size = h->cb.snapshot(h->cb_arg, g->id, s->image, HOST_SNAPSHOT_DATA_MAX);
    if (s->image_size > HOST_SNAPSHOT_DATA_MAX) {
        RQ_WARN("host: group %" PRIu32 ": state machine image of %zu bytes exceeds %u: no more "
                "snapshots (the log will fill)", g->id, s->image_size, HOST_SNAPSHOT_DATA_MAX);
        s->disabled = 1;
        free(s->image);
        s->image = NULL;
        return;
    }
    s->image_index = index;
    s->image_term = raft_term_at(g->raft, index);
    s->image_written = 0;
    uint8_t config[RAFT_MEMBERSHIP_SIZE_MAX];
    size_t config_size = raft_snapshot_config(g->raft, index, config);
    int err = store_snapshot_write_begin(s->files, index, s->image_term, config,
                                         (uint32_t)config_size);
    if (err != 0) {
        free(s->image);
        s->image = NULL;
        if (err != RQ_EBUSY) host_halt(h, "snapshot write refused", err);
        return;
    }
    s->writing = 1;
    write_next(h, g);
}

/* ---- receiving the leader's snapshot ----------------------------------------------------------- */

void host_snapshot_take_chunk(struct host *h, struct host_group *g) {
    struct host_snap *s = &g->snap;
    struct raft_snapshot_chunk c;
    if (!raft_snapshot_incoming(g->raft, &c)) return;
    /* Busy (a chunk being written, the install or the restore under way): the leader asks again. */
    if (s->restoring || s->recv_chunk_given || s->recv_finishing) return;
    if (!s->receiving || c.index != s->recv_index) {
        /* Only offset 0 starts a snapshot; one at a time, and never while writing our own. */
        if (c.offset != 0 || s->writing) {
            raft_snapshot_received(g->raft, c.index, 0);
            return;
        }
        if (s->receiving) {   /* the leader moved on to a newer snapshot */
            int err = store_snapshot_abort(s->files);
            if (err != 0) host_halt(h, "snapshot receive abort refused", err);
            return;           /* FINISHED (aborted) answers "from 0" */
        }
        int err = store_snapshot_receive_begin(s->files, c.index, c.term);
        if (err != 0) {
            if (err != RQ_EBUSY && err != RQ_ERANGE) host_halt(h, "snapshot receive refused", err);
            else raft_snapshot_received(g->raft, c.index, 0);
            return;
        }
        s->receiving = 1;
        s->recv_index = c.index;
        s->recv_term = c.term;
    }
    if (c.size == 0) {
        raft_snapshot_received(g->raft, c.index, store_snapshot_receive_next_offset(s->files));
        return;
    }
    int err = store_snapshot_receive(s->files, c.offset, c.data, c.size);
    if (err == 0) {
        s->recv_chunk_given = 1;
        s->recv_chunk_last = c.last;
    } else if (err == RQ_ERANGE) {   /* a duplicate, stale or future chunk: changes nothing */
        raft_snapshot_received(g->raft, c.index, store_snapshot_receive_next_offset(s->files));
    } else if (err != RQ_ECORRUPT) {  /* ECORRUPT ends the receive: FINISHED answers */
        host_halt(h, "snapshot chunk refused", err);
    }
}

/* ---- sending chunks to followers --------------------------------------------------------------- */

static void send_next(struct host *h, struct host_group *g);

void host_snapshot_serve(struct host *h, struct host_group *g) {
    struct host_snap *s = &g->snap;
    const struct raft_snapshot_request *reqs;
    uint32_t n = raft_snapshot_requests(g->raft, &reqs);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = 0;
        while (k < s->send_count && s->sends[k].to != reqs[i].to) k++;
        if (k == s->send_count) {
            RQ_ASSERT(s->send_count < RAFT_VOTERS_MAX);
            s->send_count++;
        }
        s->sends[k] = reqs[i];
    }
    raft_snapshot_requests_clear(g->raft);
    send_next(h, g);
}

static void send_pop(struct host_snap *s) {
    RQ_ASSERT(s->send_count > 0);
    memmove(&s->sends[0], &s->sends[1], (s->send_count - 1) * sizeof s->sends[0]);
    s->send_count--;
}

/* Starts the next read the queue needs: the sender opened on the request's snapshot, then the
 * chunk. A request for a snapshot that is no longer the current one starts that follower over. */
static void send_next(struct host *h, struct host_group *g) {
    struct host_snap *s = &g->snap;
    while (!s->sender_busy && s->send_count > 0 && !h->halted) {
        struct raft_snapshot_request q = s->sends[0];
        struct store_snapshot_header cur;
        int current = store_snapshot_current(s->files, &cur) && cur.index == q.index;
        if (s->sender_index != q.index && s->sender_index != 0) {
            s->sender_busy = 1;
            int err = store_snapshot_reader_close(s->sender);
            if (err != 0) host_halt(h, "snapshot reader close refused", err);
            return;
        }
        if (s->sender_index == 0) {
            if (!current) {
                send_pop(s);
                raft_snapshot_unavailable(g->raft, q.to, q.index);
                continue;   /* its new request is taken at the next drain */
            }
            s->sender_busy = 1;
            s->sender_index = q.index;
            store_snapshot_reader_open(s->sender, q.index);
            return;
        }
        send_pop(s);
        if (q.offset >= s->sender->file_size) continue;   /* the follower has every byte */
        uint64_t left = s->sender->file_size - q.offset;
        size_t len = left < RAFT_SNAPSHOT_CHUNK_MAX ? (size_t)left : RAFT_SNAPSHOT_CHUNK_MAX;
        s->sending = q;
        s->sender_busy = 1;
        int err = store_snapshot_reader_read(s->sender, q.offset, s->chunk, len);
        if (err != 0) host_halt(h, "snapshot chunk read refused", err);
        return;
    }
}

static void on_sender(void *arg, const struct store_snapshot_result *res) {
    struct host_group *g = arg;
    struct host *h = g->host;
    struct host_snap *s = &g->snap;
    if (h->halted) return;
    s->sender_busy = 0;
    switch (res->event) {
    case STORE_SNAPSHOT_READER_OPENED:
        if (res->err != 0) {   /* replaced meanwhile (ENOENT), or unreadable: start over */
            RQ_WARN("host: group %" PRIu32 ": snapshot %" PRIu64 " cannot be sent: %s", g->id,
                    s->sender_index, rq_strerror(res->err));
            for (uint32_t i = 0; i < s->send_count; i++)
                raft_snapshot_unavailable(g->raft, s->sends[i].to, s->sends[i].index);
            s->send_count = 0;
            s->sender_index = 0;
        }
        break;
    case STORE_SNAPSHOT_READ_DONE:
        if (res->err != 0) {
            RQ_WARN("host: group %" PRIu32 ": snapshot chunk read failed: %s", g->id,
                    rq_strerror(res->err));
            raft_snapshot_unavailable(g->raft, s->sending.to, s->sending.index);
            s->sender_busy = 1;
            if (store_snapshot_reader_close(s->sender) != 0) host_halt(h, "reader close", RQ_EIO);
            break;
        }
        raft_snapshot_send(g->raft, s->sending.to, s->sending.index, s->sending.offset, s->chunk,
                           (uint32_t)res->len, s->sending.offset + res->len == s->sender->file_size);
        break;
    case STORE_SNAPSHOT_READER_CLOSED:
        s->sender_index = 0;
        break;
    default: RQ_UNREACHABLE();
    }
    /* The drain encodes the chunk into the peer's batch; no new read may fill the buffer before. */
    int busy = s->sender_busy;
    s->sender_busy = 1;
    host_drain(h, g);
    host_flush(h);
    s->sender_busy = busy;
    send_next(h, g);
}
