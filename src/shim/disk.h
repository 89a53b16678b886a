/* shim/disk.h — the POSIX implementation of io.h's disk requests.
 *
 * One struct shim_disk serves one node's data directory. Requests (struct rq_disk_req, io.h) run
 * on ONE worker thread, strictly in submission order, so a slow fdatasync never blocks the event
 * loop; completions come back to the loop thread, which learns of them through an eventfd
 * (shim_disk_eventfd) and receives them, still in submission order, from shim_disk_poll.
 *
 * Threads. shim_disk_submit, shim_disk_poll, shim_disk_drain and shim_disk_close are called from
 * one thread only, "the loop thread". The worker never calls back into the caller and never logs:
 * it records the failing system call and errno with each request, and shim_disk_poll logs them on
 * the loop thread (RQ_WARN; RQ_DEBUG for the routine answers ENOENT and EEXIST, which recovery code
 * asks for on purpose), so the logger and rq_ctx are only ever touched by one thread.
 *
 * Bounds. At most SHIM_DISK_INFLIGHT_MAX requests may be in flight, counted from submit until
 * shim_disk_poll hands the completion back. Submitting more is a caller bug and fails an
 * RQ_ASSERT: it never blocks the loop, never drops a request and never grows a queue. The bound is
 * deliberately far above what a node can reach, because the node owns every struct rq_disk_req it
 * submits and every component keeps its own requests bounded (the hard-state store has one in
 * flight, the WAL a fixed number of batches). shim_disk_stats.inflight_max shows the high-water
 * mark. Open files: at most SHIM_DISK_FILES_MAX handles (then RQ_EMFILE).
 *
 * Paths are validated exactly as io.h says (1..RQ_DISK_PATH_MAX-1 bytes of [A-Za-z0-9._-], at most
 * one '/', not at either end, no ".."): otherwise RQ_EINVAL and nothing is done. Directories are
 * top-level only: MKDIR, LIST and FSYNC_DIR take "" (the data directory) or a name without '/'.
 * Every path is resolved with the *at() calls against a descriptor of the data directory opened
 * once, so the process's working directory never matters.
 *
 * Per operation (errno mapping in the next paragraph):
 *   OPEN      openat(O_RDWR | O_CLOEXEC [| O_CREAT], 0644); a directory -> RQ_EINVAL (as the
 *             simulator); result = handle (0 .. SHIM_DISK_FILES_MAX-1), size = st_size.
 *   CLOSE     close(); the handle is free again (reused lowest first, like the simulator).
 *   PWRITE    pwrite() in a loop until all len bytes are written (EINTR retried). io.h promises
 *             that RQ_ENOSPC means "nothing written"; POSIX has no atomic write, so on ENOSPC or
 *             EDQUOT part-way the shim undoes what it can: the file is truncated back to the size
 *             it had before the request (fstat first), and if the request began INSIDE the file
 *             and extended it, the old bytes it overwrote are put back from a copy taken before
 *             the write (one pread of at most 64 KiB; only such straddling writes pay for it — a
 *             WAL rewriting its partial last sector is the common case). Then RQ_ENOSPC. When it
 *             cannot undo — a straddling write with more than 64 KiB of old bytes, a pure
 *             overwrite (end <= old size) that failed after writing something (possible on
 *             copy-on-write file systems such as btrfs), or a failure of the undo itself — the
 *             request reports RQ_EIO, so the node fail-stops rather than believe bytes unchanged
 *             that are not. Residual risk, which no POSIX call removes: between the failed write
 *             and its undo the kernel may already have written the new bytes back; a power loss
 *             before the undo (or the truncate) reaches the disk then leaves them there — in the
 *             range this request was overwriting, or as extra bytes past the old end of file.
 *             Until the next successful FSYNC of that file, its content is therefore only as
 *             certain as any unsynced data (io.h): formats must (and do) checksum what they read
 *             back. No other process writes the data directory meanwhile (flock, below).
 *   PREAD     pread() in a loop until len bytes or end of file: short only at end of file.
 *   FSYNC     fdatasync(); any failure -> RQ_EIO (io.h: the node must then halt).
 *   TRUNCATE  ftruncate(offset).
 *   RENAME    renameat(); a directory as source or destination -> RQ_EINVAL (as the simulator).
 *   UNLINK    unlinkat(); an empty directory is removed (AT_REMOVEDIR), a non-empty one is
 *             RQ_EEXIST.
 *   LIST      the names in the directory, without "." and "..", sorted bytewise (strcmp), each
 *             NUL-terminated, packed into buf; result = count; RQ_ETOOBIG if they do not fit.
 *   FSYNC_DIR open(O_RDONLY | O_DIRECTORY), fsync(), close(); failure of the fsync -> RQ_EIO.
 *   MKDIR     mkdirat(0755).
 * errno -> result: ENOENT and ENOTDIR -> RQ_ENOENT (the simulator's answer for a missing parent);
 * EEXIST and ENOTEMPTY -> RQ_EEXIST; ENOSPC and EDQUOT -> RQ_ENOSPC; EMFILE and ENFILE ->
 * RQ_EMFILE; EBADF -> RQ_EBADF; EISDIR and ENAMETOOLONG -> RQ_EINVAL; anything else -> RQ_EIO.
 * A handle that is not open -> RQ_EBADF without a system call.
 *
 * Durability is exactly what the file system gives (io.h's rules); this file adds nothing and
 * hides nothing. In particular no request is ever retried after a failure. */
#ifndef RQ_SHIM_DISK_H
#define RQ_SHIM_DISK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/histogram.h"
#include "io/io.h"

enum {
    SHIM_DISK_INFLIGHT_MAX = 4096, /* requests submitted and not yet handed back by poll */
    SHIM_DISK_FILES_MAX = 1024,    /* open file handles */
    SHIM_DISK_POLL_MAX = 256,      /* completions one shim_disk_poll call hands back at most */
};

_Static_assert((SHIM_DISK_INFLIGHT_MAX & (SHIM_DISK_INFLIGHT_MAX - 1)) == 0,
               "the request ring is indexed by masking");
_Static_assert(SHIM_DISK_POLL_MAX <= SHIM_DISK_INFLIGHT_MAX, "poll never returns more than exist");

/* What happened to one request, kept beside it in the ring (filled by the worker). */
enum { SHIM_DISK_OPS = RQ_DISK_MKDIR + 1 };

struct shim_disk_job {
    struct rq_disk_req *req;
    uint64_t duration_ns;          /* the system calls' time, measured by the worker */
    const char *syscall;           /* the call that failed, or NULL */
    int errno_value;               /* its errno, or 0 */
    char path[RQ_DISK_PATH_MAX];   /* for the log: the request's path, or the handle's file */
};

struct shim_disk_file {
    int fd;                        /* -1 = free */
    char path[RQ_DISK_PATH_MAX];
};

struct shim_disk_stats {
    uint64_t submitted;
    uint64_t completed;            /* handed back by poll */
    uint64_t failed;               /* completed with result < 0 */
    uint64_t bytes_written;
    uint64_t bytes_read;
    uint64_t fsyncs;               /* FSYNC and FSYNC_DIR */
    uint32_t inflight_max;         /* high-water mark of in-flight requests */
    /* FSYNC durations as the worker measured them (not the queueing before) */
    struct rq_hist fsync;
    /* Per operation (indexed by enum rq_disk_op): how many, their time and the longest. The
     * worker runs requests one at a time, so a slow one (an unlink of a large file, a big fsync)
     * delays every request behind it: these show which. */
    uint64_t op_count[SHIM_DISK_OPS];
    uint64_t op_ns_total[SHIM_DISK_OPS];
    uint64_t op_ns_max[SHIM_DISK_OPS];
};

/* The operation's name ("PWRITE", ...), "?" for an unknown one. */
const char *shim_disk_op_name(enum rq_disk_op op);

/* The system calls whose failures tests cannot provoke on a healthy disk (ENOSPC part-way through
 * a write, EIO from fdatasync). shim_disk_open sets them to the real calls; a fault-injection test
 * may replace them after open and before submitting (the way SQLite's tests override its VFS
 * calls with xSetSystemCall). Called on the worker thread. */
struct shim_disk_syscalls {
    ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t offset);
    int (*ftruncate)(int fd, off_t size);
    int (*fdatasync)(int fd);
};

struct shim_disk_thread; /* pthread state, private to disk.c (keeps <pthread.h> out of headers) */

struct shim_disk {
    int dir_fd;                    /* the data directory, O_RDONLY | O_DIRECTORY, flock'ed */
    int event_fd;                  /* readable when completions wait for shim_disk_poll */
    struct shim_disk_thread *thread;
    /* The ring: jobs[i & mask] for i in [delivered, executed) are complete, in [executed,
     * submitted) wait for the worker. `submitted` and `delivered` are written by the loop thread,
     * `executed` by the worker; all three under the thread's mutex. */
    struct shim_disk_job *jobs;    /* SHIM_DISK_INFLIGHT_MAX of them */
    uint64_t submitted;
    uint64_t executed;
    uint64_t delivered;
    int stopping;
    struct shim_disk_syscalls sys;
    /* Owned by the worker while it runs; by the loop thread after close joined it. */
    struct shim_disk_file files[SHIM_DISK_FILES_MAX];
    struct shim_disk_stats stats;  /* loop thread (bytes_* and fsyncs counted at poll) */
    char data_dir[256];
};

typedef void (*shim_disk_done_fn)(void *arg, struct rq_disk_req *req);

/* Opens data_dir, which must already exist, be a directory, and be writable and searchable by
 * this process; starts the worker thread. It does NOT create data_dir: a mistyped path must not
 * silently start a node with empty state (a Raft node that forgets its term and vote may vote twice
 * in a term); whoever knows a node is new (the daemon's explicit first start, the benchmark's
 * fresh temporary directory) creates it. The directory is locked with flock(LOCK_EX) so that two
 * processes never share one data directory; no lock file is created (LIST shows only the node's
 * own files). Returns 0, or RQ_ENOENT (missing, or not a directory), RQ_EINVAL (data_dir empty or
 * longer than 255 bytes), RQ_EBUSY (locked by another process), RQ_EIO (not writable, or a system
 * call failed), RQ_ENOMEM; the cause is logged with RQ_ERROR. On failure nothing is left open. */
int shim_disk_open(struct shim_disk *d, const char *data_dir);

/* Queues req for the worker; returns at once. The body of rq_io.disk: `(void)env` aside, it is
 * exactly that call. req and its buffer belong to the shim until poll hands req back with
 * req->result (and req->size for OPEN) filled. Asserts fewer than SHIM_DISK_INFLIGHT_MAX are in
 * flight (see Bounds above) and that close has not begun. */
void shim_disk_submit(struct shim_disk *d, struct rq_disk_req *req);

/* A non-blocking eventfd, readable when completions are waiting: add it to epoll (EPOLLIN). */
int shim_disk_eventfd(const struct shim_disk *d);

/* Requests submitted and not yet handed back by poll. */
uint32_t shim_disk_inflight(const struct shim_disk *d);

/* Hands completed requests to done(arg, req), oldest first, at most SHIM_DISK_POLL_MAX per call
 * (if more are waiting, the eventfd stays readable, so the loop comes back after its timers).
 * Resets the eventfd. done may submit new requests. Returns the number handed back. */
uint32_t shim_disk_poll(struct shim_disk *d, shim_disk_done_fn done, void *arg);

/* Blocks the calling (loop) thread until every request in flight has been handed to done.
 * For tests, benchmarks and orderly shutdown; an event loop uses the eventfd instead.
 * Requests that done submits are waited for too. */
void shim_disk_drain(struct shim_disk *d, shim_disk_done_fn done, void *arg);

/* Stops accepting requests, lets the worker execute every request already submitted, joins it,
 * closes every file handle still open, the eventfd and the directory. Completions not yet handed
 * back by poll are not reported (as at a crash, io.h): the requests have run, and belong to the
 * caller again once close returns. Call shim_disk_drain first to receive them. Safe on a
 * shim_disk whose open failed, and twice. */
void shim_disk_close(struct shim_disk *d);

/* Checks a path as io.h defines it (file or directory path); 0 or RQ_EINVAL. */
int shim_disk_path_valid(const char *path);

#endif
