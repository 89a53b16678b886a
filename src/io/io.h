/* io.h — THE interface between a raftq node and the world.
 *
 * Everything nondeterministic enters a node through this file: its clock, its timer, messages from
 * peers and clients, completions of disk requests, and its random seed. The same node code runs on
 * two implementations of it:
 *   - sim/      a seeded, single-threaded, deterministic simulator that injects faults;
 *   - src/shim/ POSIX: epoll, TCP, files with pwrite + fdatasync on a worker thread.
 *
 * Execution model (both environments):
 *   - One thread, run to completion. The environment calls one handler of struct rq_node_ops at a
 *     time; a handler never blocks and never waits for I/O. Every call into io below returns at
 *     once; results of disk requests arrive later through on_disk_done.
 *   - Handlers may call any io function, including from on_start.
 *   - A crash (simulated, or kill -9) can happen between any two handler calls: the node loses all
 *     its memory, and only what the disk made durable (see "Disk" below) survives.
 */
#ifndef RQ_IO_H
#define RQ_IO_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------
 * Disk
 *
 * Requests name files by path relative to the node's data directory. A path is at most
 * RQ_DISK_PATH_MAX - 1 bytes of [A-Za-z0-9._-] with '/' separating at most one directory level
 * ("wal/00000001.log"); no "..", no leading '/'. A directory is the part before the last '/', or
 * "" for the data directory itself.
 *
 * What survives a crash — the guarantees of a real POSIX file system, which the simulator models
 * and no code may assume more than:
 *   - Data written by PWRITE (or a TRUNCATE) but not yet covered by a successful FSYNC of that file
 *     may be lost at a crash, or survive only in part: torn at 512-byte sector boundaries, each
 *     unsynced write keeping some prefix of its sectors (possibly none, possibly all). Data is never
 *     changed in any other way. A file's size after a crash may be any size those rules allow.
 *   - A successful FSYNC makes the file's data and size durable. It does NOT make the file's
 *     directory entry durable.
 *   - OPEN with RQ_DISK_CREATE, RENAME and UNLINK change the directory; each is durable only after
 *     a successful FSYNC_DIR of that directory. Until then a crash may undo it (a created file
 *     vanishes; a renamed file is back under its old name; an unlinked file is back).
 *   - A failed FSYNC (RQ_EIO) leaves the data's fate unknown: some, none or all of it may be
 *     durable, now or later. The node must not retry as if it were safe: it must fail-stop
 *     (io->halt). This is the lesson of PostgreSQL's "fsyncgate".
 *   - Synced data can rot (latent sector corruption): every on-disk format carries checksums and
 *     reading code must verify them.
 * ------------------------------------------------------------------------------------------- */

enum { RQ_DISK_PATH_MAX = 64, RQ_DISK_SECTOR_SIZE = 512 };

enum rq_disk_op {
    RQ_DISK_OPEN = 1,    /* path, flags -> result: file handle (>= 0); size: current file size */
    RQ_DISK_CLOSE,       /* file */
    RQ_DISK_PWRITE,      /* file, offset, buf, len -> result: 0 (all of len written) or error */
    RQ_DISK_PREAD,       /* file, offset, buf, len -> result: bytes read (short only at end of file) */
    RQ_DISK_FSYNC,       /* file: fdatasync -> 0 or RQ_EIO (then fail-stop, see above) */
    RQ_DISK_TRUNCATE,    /* file, offset = new size */
    RQ_DISK_RENAME,      /* path -> path2 (replaces path2 atomically if it exists) */
    RQ_DISK_UNLINK,      /* path */
    RQ_DISK_LIST,        /* path = directory; buf/len receive names -> result: number of names */
    RQ_DISK_FSYNC_DIR,   /* path = directory: makes its creates/renames/unlinks durable */
    RQ_DISK_MKDIR,       /* path = directory; durable after FSYNC_DIR of the parent ("") */
};

enum { RQ_DISK_CREATE = 1 };  /* OPEN flag: create the file if it does not exist */

/* One asynchronous disk request. The node owns it (and buf) from submission until on_disk_done
 * returns it; neither may be touched or freed in between. At a crash, requests in flight are
 * simply lost with the node's memory: each may or may not have taken effect (writes: torn as
 * above). The environment completes one node's requests in the order they were submitted. */
struct rq_disk_req {
    /* filled by the node */
    enum rq_disk_op op;
    uint32_t flags;
    int32_t file;                    /* handle from OPEN */
    uint64_t offset;
    void *buf;                       /* PWRITE: data; PREAD: destination; LIST: name buffer */
    size_t len;
    char path[RQ_DISK_PATH_MAX];
    char path2[RQ_DISK_PATH_MAX];    /* RENAME destination */
    uint64_t user;                   /* for the node: anything, e.g. which component submitted it */
    /* filled by the environment before on_disk_done */
    int64_t result;                  /* >= 0 as documented per op, or a negative RQ_E* code */
    uint64_t size;                   /* OPEN: file size */
};
/* LIST fills buf with NUL-terminated names, sorted bytewise, and sets result to their count, or
 * fails with RQ_ETOOBIG if they do not fit in len. Errors any request may return: RQ_EIO;
 * OPEN: RQ_ENOENT, RQ_EMFILE, RQ_EINVAL (bad path); PWRITE/TRUNCATE: RQ_ENOSPC (nothing written);
 * any op on a file: RQ_EBADF; RENAME/UNLINK: RQ_ENOENT. */

/* ---------------------------------------------------------------------------------------------
 * The environment's side: what a node may call.
 * ------------------------------------------------------------------------------------------- */

struct rq_io {
    void *env;
    uint32_t node_id;  /* 1..RQ_NODE_ID_MAX for servers; clients get ids above that */
    uint64_t seed;     /* the node's random seed; differs per node and per restart */

    /* This node's monotonic clock in nanoseconds. Never goes backward, including across a restart
     * of the process (it is the machine's clock). In the simulator it has an offset and may run
     * fast or slow within the configured drift bound. */
    uint64_t (*now)(void *env);

    /* Asks for one on_timer call at or after at_ns on this node's clock; replaces any earlier
     * request. The node keeps its own timer wheel and asks only for the earliest deadline. */
    void (*set_timer)(void *env, uint64_t at_ns);

    /* Sends bytes to another node. Best effort: the message may be lost, delayed, duplicated or
     * reordered, and is not delivered to a node that is down. The bytes are copied before send
     * returns. Messages longer than RQ_MSG_MAX are dropped (and counted).
     * From a client process (node_id > RQ_NODE_ID_MAX) to a server, the message travels over the
     * client's connection: the server sees on_client_message(conn), and the server's reply(conn)
     * reaches the client as on_peer_message(from_node = that server). */
    void (*send)(void *env, uint32_t to_node, const void *buf, size_t len);

    /* Sends bytes back over a client connection. Same delivery rules as send; copied. */
    void (*reply)(void *env, uint64_t conn, const void *buf, size_t len);

    /* Submits an asynchronous disk request; completion arrives through on_disk_done. */
    void (*disk)(void *env, struct rq_disk_req *req);

    /* Fail-stop: the node found its state cannot be trusted (failed fsync, corrupt durable data).
     * The environment stops the process as soon as the current handler returns; memory is lost
     * as at a crash. The handler that calls halt must return at once without touching the node's
     * state again (the shim may also exit the process inside halt). */
    void (*halt)(void *env, const char *reason);
};

enum { RQ_NODE_ID_MAX = 255, RQ_MSG_MAX = 1u << 20 };

/* ---------------------------------------------------------------------------------------------
 * The node's side: what the environment calls. `node` is what create() returned.
 * ------------------------------------------------------------------------------------------- */

struct rq_node_ops {
    const char *name;
    /* Allocates a node. `io` outlives the node. `config` is the workload's or daemon's. Returns
     * NULL only when memory is exhausted. Must not call io: start happens in on_start. */
    void *(*create)(const struct rq_io *io, const void *config);
    /* Frees everything the node owns. Called at a crash too: in-flight disk requests are then
     * abandoned by the environment first, so freeing them is safe. */
    void (*destroy)(void *node);
    void (*on_start)(void *node);
    void (*on_timer)(void *node);
    void (*on_peer_message)(void *node, uint32_t from_node, const void *buf, size_t len);
    /* A client sent bytes over connection `conn`; the buffer is valid only during the call. */
    void (*on_client_message)(void *node, uint64_t conn, const void *buf, size_t len);
    void (*on_disk_done)(void *node, struct rq_disk_req *req);
    void (*on_conn_closed)(void *node, uint64_t conn);
};

#endif
