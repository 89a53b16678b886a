/* shim/disk.c — io.h's disk requests on real files: one worker thread, a ring, an eventfd.
 * The contract, including every errno mapping and the ENOSPC caveat, is in disk.h. */
#define _GNU_SOURCE
#include "shim/disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/log.h"

enum {
    RING_MASK = SHIM_DISK_INFLIGHT_MAX - 1,
    UNDO_MAX = 64 * 1024,     /* old bytes kept before a write that straddles the end of file */
    LIST_NAMES_MAX = 1 << 20, /* directory entries one LIST reads at most */
};

struct shim_disk_thread {
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    uint8_t undo[UNDO_MAX]; /* worker only */
};

/* ---- paths and errors ------------------------------------------------------------------------ */

int shim_disk_path_valid(const char *path) {
    size_t len = 0;
    while (len < RQ_DISK_PATH_MAX && path[len] != '\0')
        len++;
    if (len == 0 || len >= RQ_DISK_PATH_MAX) return RQ_EINVAL;
    int slashes = 0;
    for (size_t i = 0; i < len; i++) {
        char c = path[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-' || c == '/';
        if (!ok) return RQ_EINVAL;
        if (c == '/') slashes++;
    }
    if (slashes > 1 || path[0] == '/' || path[len - 1] == '/') return RQ_EINVAL;
    if (strcmp(path, ".") == 0 || strstr(path, "..") != NULL) return RQ_EINVAL;
    /* "./x" or "wal/." would name the same file twice; the simulator has no such aliases. */
    if (strncmp(path, "./", 2) == 0 || (len >= 2 && strcmp(path + len - 2, "/.") == 0)) {
        return RQ_EINVAL;
    }
    return 0;
}

/* "" (the data directory) or one top-level name. */
static int dir_path_valid(const char *path) {
    if (path[0] == '\0') return 0;
    if (shim_disk_path_valid(path) != 0 || strchr(path, '/') != NULL) return RQ_EINVAL;
    return 0;
}

static int64_t errno_to_rq(int e) {
    switch (e) {
    case ENOENT:
    case ENOTDIR: return RQ_ENOENT;
    case EEXIST:
    case ENOTEMPTY: return RQ_EEXIST;
    case ENOSPC:
    case EDQUOT: return RQ_ENOSPC;
    case EMFILE:
    case ENFILE: return RQ_EMFILE;
    case EBADF: return RQ_EBADF;
    case EISDIR:
    case ENAMETOOLONG: return RQ_EINVAL;
    default: return RQ_EIO;
    }
}

/* Records the failed call for the log (written by shim_disk_poll) and maps its errno. */
static int64_t fail(struct shim_disk_job *job, const char *syscall, int e) {
    job->syscall = syscall;
    job->errno_value = e;
    return errno_to_rq(e);
}

/* A failure that is not a system call's (bad argument): logged with `why` as the call. */
static int64_t invalid(struct shim_disk_job *job, const char *why) {
    job->syscall = why;
    job->errno_value = 0;
    return RQ_EINVAL;
}

static void copy_path(char *dst, const char *src) {
    size_t n = strnlen(src, RQ_DISK_PATH_MAX - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int handle_fd(const struct shim_disk *d, int32_t file) {
    if (file < 0 || file >= SHIM_DISK_FILES_MAX) return -1;
    return d->files[file].fd;
}

/* ---- file operations (worker thread) --------------------------------------------------------- */

static int64_t op_open(struct shim_disk *d, struct shim_disk_job *job) {
    struct rq_disk_req *req = job->req;
    if (shim_disk_path_valid(req->path) != 0) return invalid(job, "bad path");
    int32_t handle = -1;
    for (int32_t h = 0; h < SHIM_DISK_FILES_MAX && handle < 0; h++) {
        if (d->files[h].fd < 0) handle = h;
    }
    if (handle < 0) return fail(job, "handle table", EMFILE);
    int flags = O_RDWR | O_CLOEXEC | ((req->flags & RQ_DISK_CREATE) ? O_CREAT : 0);
    int fd;
    do {
        fd = openat(d->dir_fd, req->path, flags, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return fail(job, "open", errno);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail(job, "fstat", e);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return invalid(job, "not a regular file");
    }
    d->files[handle].fd = fd;
    copy_path(d->files[handle].path, req->path);
    req->size = (uint64_t)st.st_size;
    return handle;
}

static int64_t op_close(struct shim_disk *d, struct shim_disk_job *job) {
    int fd = handle_fd(d, job->req->file);
    if (fd < 0) return RQ_EBADF;
    d->files[job->req->file].fd = -1;
    /* Linux closes the descriptor even when close fails (EINTR included): never retry. */
    if (close(fd) != 0 && errno != EINTR) return fail(job, "close", errno);
    return 0;
}

static int write_all(const struct shim_disk *d, int fd, const uint8_t *buf, size_t len,
                     uint64_t offset, size_t *done, int *e) {
    *done = 0;
    while (*done < len) {
        ssize_t n = d->sys.pwrite(fd, buf + *done, len - *done, (off_t)(offset + *done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            *e = errno;
            return -1;
        }
        if (n == 0) { /* no progress without an error: the device is full */
            *e = ENOSPC;
            return -1;
        }
        *done += (size_t)n;
    }
    return 0;
}

static int truncate_to(const struct shim_disk *d, int fd, uint64_t size) {
    int rc;
    do {
        rc = d->sys.ftruncate(fd, (off_t)size);
    } while (rc != 0 && errno == EINTR);
    return rc;
}

/* The write failed with ENOSPC (errno e) after `done` bytes. Makes "nothing written" true again
 * where it can (disk.h): old bytes it overwrote are put back from the undo copy (`saved` of them,
 * from req->offset), and the file is cut back to its old size. RQ_ENOSPC when that worked, else
 * RQ_EIO (the node must then fail-stop: the file holds bytes it does not know of). */
static int64_t pwrite_enospc(struct shim_disk *d, struct shim_disk_job *job, int fd,
                             uint64_t old_size, size_t saved, size_t done, int e) {
    struct rq_disk_req *req = job->req;
    uint64_t overlap = req->offset < old_size ? old_size - req->offset : 0;
    if (overlap > req->len) overlap = req->len;
    size_t overwritten = done < overlap ? done : (size_t)overlap;
    if (overwritten > saved) {
        fail(job, "pwrite (ENOSPC after overwriting old data it could not restore)", e);
        return RQ_EIO;
    }
    if (overwritten > 0) {
        size_t n;
        int e2 = 0;
        if (write_all(d, fd, d->thread->undo, overwritten, req->offset, &n, &e2) != 0) {
            fail(job, "pwrite (restoring old data after ENOSPC)", e2);
            return RQ_EIO;
        }
    }
    if (req->offset + req->len > old_size && truncate_to(d, fd, old_size) != 0) {
        int e2 = errno;
        fail(job, "ftruncate (undoing a write after ENOSPC)", e2);
        return RQ_EIO;
    }
    return fail(job, "pwrite", e);
}

static int64_t op_pwrite(struct shim_disk *d, struct shim_disk_job *job) {
    struct rq_disk_req *req = job->req;
    int fd = handle_fd(d, req->file);
    if (fd < 0) return RQ_EBADF;
    if (req->len > 0 && req->buf == NULL) return invalid(job, "NULL buffer");
    if (req->len > (size_t)INT64_MAX || req->offset > (uint64_t)INT64_MAX - req->len) {
        return invalid(job, "offset + length out of range");
    }
    struct stat st;
    if (fstat(fd, &st) != 0) return fail(job, "fstat", errno);
    uint64_t old_size = (uint64_t)st.st_size;
    uint64_t end = req->offset + req->len;
    /* A write that starts inside the file and extends it overwrites old bytes first, then
     * allocates: keep a copy of those old bytes (at most UNDO_MAX), so that an ENOSPC in the
     * allocating part can still leave the file as it was. Appends at or past the end and pure
     * overwrites need no copy (an overwrite allocates nothing on a file system that overwrites
     * in place; if one fails part-way anyway, that is RQ_EIO). */
    size_t saved = 0;
    if (req->offset < old_size && end > old_size && old_size - req->offset <= UNDO_MAX) {
        size_t want = (size_t)(old_size - req->offset);
        ssize_t n;
        do {
            n = pread(fd, d->thread->undo, want, (off_t)req->offset);
        } while (n < 0 && errno == EINTR);
        if (n < 0) return fail(job, "pread (saving old data)", errno);
        if ((size_t)n != want) return fail(job, "pread (saving old data: short)", EIO);
        saved = want;
    }
    size_t done;
    int e = 0;
    if (write_all(d, fd, req->buf, req->len, req->offset, &done, &e) == 0) return 0;
    if (e != ENOSPC && e != EDQUOT) return fail(job, "pwrite", e);
    return pwrite_enospc(d, job, fd, old_size, saved, done, e);
}

static int64_t op_pread(struct shim_disk *d, struct shim_disk_job *job) {
    struct rq_disk_req *req = job->req;
    int fd = handle_fd(d, req->file);
    if (fd < 0) return RQ_EBADF;
    if (req->len > 0 && req->buf == NULL) return invalid(job, "NULL buffer");
    if (req->len > (size_t)INT64_MAX || req->offset > (uint64_t)INT64_MAX - req->len) {
        return invalid(job, "offset + length out of range");
    }
    size_t done = 0;
    while (done < req->len) {
        ssize_t n =
            pread(fd, (uint8_t *)req->buf + done, req->len - done, (off_t)(req->offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(job, "pread", errno);
        if (n == 0) break; /* end of file */
        done += (size_t)n;
    }
    return (int64_t)done;
}

static int64_t op_fsync(struct shim_disk *d, struct shim_disk_job *job) {
    int fd = handle_fd(d, job->req->file);
    if (fd < 0) return RQ_EBADF;
    int rc;
    do {
        rc = d->sys.fdatasync(fd);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        fail(job, "fdatasync", errno);
        return RQ_EIO; /* io.h: a failed fsync is RQ_EIO whatever the errno; the node halts */
    }
    return 0;
}

static int64_t op_truncate(struct shim_disk *d, struct shim_disk_job *job) {
    int fd = handle_fd(d, job->req->file);
    if (fd < 0) return RQ_EBADF;
    if (job->req->offset > (uint64_t)INT64_MAX) return invalid(job, "size out of range");
    if (truncate_to(d, fd, job->req->offset) != 0) return fail(job, "ftruncate", errno);
    return 0;
}

/* ---- name operations (worker thread) --------------------------------------------------------- */

static int is_directory(int dir_fd, const char *path) {
    struct stat st;
    return fstatat(dir_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static int64_t op_rename(struct shim_disk *d, struct shim_disk_job *job) {
    struct rq_disk_req *req = job->req;
    if (shim_disk_path_valid(req->path) != 0) return invalid(job, "bad path");
    if (shim_disk_path_valid(req->path2) != 0) return invalid(job, "bad destination path");
    if (is_directory(d->dir_fd, req->path)) return invalid(job, "renaming a directory");
    if (is_directory(d->dir_fd, req->path2)) return invalid(job, "renaming onto a directory");
    if (renameat(d->dir_fd, req->path, d->dir_fd, req->path2) != 0)
        return fail(job, "rename", errno);
    return 0;
}

static int64_t op_unlink(struct shim_disk *d, struct shim_disk_job *job) {
    struct rq_disk_req *req = job->req;
    if (shim_disk_path_valid(req->path) != 0) return invalid(job, "bad path");
    if (unlinkat(d->dir_fd, req->path, 0) == 0) return 0;
    int e = errno;
    if (e != EISDIR && e != EPERM) return fail(job, "unlink", e);
    if (unlinkat(d->dir_fd, req->path, AT_REMOVEDIR) != 0) return fail(job, "rmdir", errno);
    return 0;
}

static int64_t op_mkdir(struct shim_disk *d, struct shim_disk_job *job) {
    struct rq_disk_req *req = job->req;
    if (req->path[0] == '\0' || dir_path_valid(req->path) != 0)
        return invalid(job, "bad directory path");
    if (mkdirat(d->dir_fd, req->path, 0755) != 0) return fail(job, "mkdir", errno);
    return 0;
}

static int open_dir(const struct shim_disk *d, const char *path) {
    int fd;
    do {
        fd = openat(d->dir_fd, path[0] ? path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

static int64_t op_fsync_dir(struct shim_disk *d, struct shim_disk_job *job) {
    if (dir_path_valid(job->req->path) != 0) return invalid(job, "bad directory path");
    int fd = open_dir(d, job->req->path);
    if (fd < 0) return fail(job, "open directory", errno);
    int rc;
    do {
        rc = fsync(fd);
    } while (rc != 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (rc != 0) {
        fail(job, "fsync directory", e);
        return RQ_EIO;
    }
    return 0;
}

static int name_compare(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b); /* bytewise: unsigned char */
}

/* Reads the names of an open directory into scratch (cap bytes) and their starts into names.
 * Returns the count, RQ_ETOOBIG, or a negative errno-mapped error via job. */
static int64_t list_read(DIR *dir, struct shim_disk_job *job, char *scratch, size_t cap,
                         const char **names, size_t names_max) {
    size_t used = 0, count = 0;
    for (;;) {
        errno = 0;
        struct dirent *ent = readdir(dir);
        if (ent == NULL) {
            if (errno != 0) return fail(job, "readdir", errno);
            return (int64_t)count;
        }
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
        size_t n = strlen(ent->d_name) + 1;
        if (n > cap - used || count == names_max) return RQ_ETOOBIG;
        memcpy(scratch + used, ent->d_name, n);
        names[count++] = scratch + used;
        used += n;
    }
}

static int64_t op_list(struct shim_disk *d, struct shim_disk_job *job) {
    struct rq_disk_req *req = job->req;
    if (dir_path_valid(req->path) != 0) return invalid(job, "bad directory path");
    if (req->len > 0 && req->buf == NULL) return invalid(job, "NULL buffer");
    int fd = open_dir(d, req->path);
    if (fd < 0) return fail(job, "open directory", errno);
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        int e = errno;
        close(fd);
        return fail(job, "fdopendir", e);
    }
    /* Every name takes at least 2 bytes ("x\0"), so len / 2 starts are always enough. */
    size_t names_max = req->len / 2 < LIST_NAMES_MAX ? req->len / 2 : LIST_NAMES_MAX;
    char *scratch = malloc(req->len + 1);
    const char **names = malloc((names_max + 1) * sizeof *names);
    int64_t count;
    if (scratch == NULL || names == NULL) {
        count = fail(job, "malloc", ENOMEM);
    } else {
        count = list_read(dir, job, scratch, req->len, names, names_max);
    }
    closedir(dir);
    if (count > 0) {
        qsort(names, (size_t)count, sizeof *names, name_compare);
        size_t used = 0;
        for (int64_t i = 0; i < count; i++) {
            size_t n = strlen(names[i]) + 1;
            memcpy((char *)req->buf + used, names[i], n);
            used += n;
        }
    }
    free(names);
    free(scratch);
    return count;
}

/* ---- the worker ------------------------------------------------------------------------------ */

static uint64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void execute_op(struct shim_disk *d, struct shim_disk_job *job);

static void execute(struct shim_disk *d, struct shim_disk_job *job) {
    uint64_t start = monotonic_ns();
    execute_op(d, job);
    job->duration_ns = monotonic_ns() - start;
}

static void execute_op(struct shim_disk *d, struct shim_disk_job *job) {
    struct rq_disk_req *req = job->req;
    int fd = handle_fd(d, req->file);
    int file_op = req->op == RQ_DISK_CLOSE || req->op == RQ_DISK_PWRITE ||
                  req->op == RQ_DISK_PREAD || req->op == RQ_DISK_FSYNC ||
                  req->op == RQ_DISK_TRUNCATE;
    copy_path(job->path,
              file_op ? (fd >= 0 ? d->files[req->file].path : "(bad handle)") : req->path);
    switch (req->op) {
    case RQ_DISK_OPEN: req->result = op_open(d, job); break;
    case RQ_DISK_CLOSE: req->result = op_close(d, job); break;
    case RQ_DISK_PWRITE: req->result = op_pwrite(d, job); break;
    case RQ_DISK_PREAD: req->result = op_pread(d, job); break;
    case RQ_DISK_FSYNC: req->result = op_fsync(d, job); break;
    case RQ_DISK_TRUNCATE: req->result = op_truncate(d, job); break;
    case RQ_DISK_RENAME: req->result = op_rename(d, job); break;
    case RQ_DISK_UNLINK: req->result = op_unlink(d, job); break;
    case RQ_DISK_LIST: req->result = op_list(d, job); break;
    case RQ_DISK_FSYNC_DIR: req->result = op_fsync_dir(d, job); break;
    case RQ_DISK_MKDIR: req->result = op_mkdir(d, job); break;
    default: req->result = invalid(job, "unknown operation"); break;
    }
}

static void signal_loop(const struct shim_disk *d) {
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(d->event_fd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN only if the counter were near 2^64: it is readable then anyway. */
}

static void *worker_main(void *arg) {
    struct shim_disk *d = arg;
    struct shim_disk_thread *t = d->thread;
    pthread_mutex_lock(&t->mutex);
    for (;;) {
        while (d->executed == d->submitted && !d->stopping)
            pthread_cond_wait(&t->cond, &t->mutex);
        if (d->executed == d->submitted) break; /* stopping, and everything submitted has run */
        struct shim_disk_job *job = &d->jobs[d->executed & RING_MASK];
        pthread_mutex_unlock(&t->mutex);
        execute(d, job); /* slots in [executed, submitted) belong to the worker */
        pthread_mutex_lock(&t->mutex);
        /* Wake the loop only when the completed set goes from empty to non-empty: the loop drains
         * until it sees it empty under this mutex, so no completion is ever left unannounced. */
        int was_empty = d->executed == d->delivered;
        d->executed++;
        if (was_empty) {
            /* Outside the mutex. If the loop drains it first, it wakes once for nothing. */
            pthread_mutex_unlock(&t->mutex);
            signal_loop(d);
            pthread_mutex_lock(&t->mutex);
        }
    }
    pthread_mutex_unlock(&t->mutex);
    return NULL;
}

/* ---- the loop thread's side ------------------------------------------------------------------ */

void shim_disk_submit(struct shim_disk *d, struct rq_disk_req *req) {
    RQ_ASSERT(d->thread != NULL);
    RQ_ASSERT(req != NULL);
    struct shim_disk_thread *t = d->thread;
    pthread_mutex_lock(&t->mutex);
    RQ_ASSERT(!d->stopping);
    uint64_t inflight = d->submitted - d->delivered;
    RQ_ASSERT(inflight < SHIM_DISK_INFLIGHT_MAX); /* a caller bug: see "Bounds" in disk.h */
    struct shim_disk_job *job = &d->jobs[d->submitted & RING_MASK];
    job->req = req;
    job->syscall = NULL;
    job->errno_value = 0;
    job->path[0] = '\0';
    req->result = 0;
    req->size = 0;
    d->submitted++;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mutex);
    d->stats.submitted++;
    if (inflight + 1 > d->stats.inflight_max) d->stats.inflight_max = (uint32_t)(inflight + 1);
}

int shim_disk_eventfd(const struct shim_disk *d) { return d->event_fd; }

uint32_t shim_disk_inflight(const struct shim_disk *d) {
    /* submitted and delivered are written only by this (the loop) thread. */
    return (uint32_t)(d->submitted - d->delivered);
}

const char *shim_disk_op_name(enum rq_disk_op op) {
    static const char *names[] = {"?",        "OPEN",   "CLOSE",  "PWRITE", "PREAD",     "FSYNC",
                                  "TRUNCATE", "RENAME", "UNLINK", "LIST",   "FSYNC_DIR", "MKDIR"};
    return (unsigned)op < sizeof names / sizeof names[0] ? names[op] : "?";
}

static void log_failure(const struct shim_disk_job *job) {
    const struct rq_disk_req *req = job->req;
    if (job->errno_value == 0) {
        RQ_WARN("disk: %s \"%s\": %s -> %s", shim_disk_op_name(req->op), job->path,
                job->syscall, rq_strerror((int)req->result));
        return;
    }
    int routine = job->errno_value == ENOENT || job->errno_value == EEXIST;
    enum rq_log_level level = routine ? RQ_LOG_DEBUG : RQ_LOG_WARN;
    if (!rq_log_enabled(level)) return;
    rq_log(level, "disk: %s \"%s\": %s: %s (errno %d) -> %s", shim_disk_op_name(req->op),
           job->path, job->syscall, strerror(job->errno_value), job->errno_value,
           rq_strerror((int)req->result));
}

static void count_completion(struct shim_disk *d, const struct rq_disk_req *req,
                             uint64_t duration_ns) {
    d->stats.completed++;
    if ((unsigned)req->op < SHIM_DISK_OPS) {
        d->stats.op_count[req->op]++;
        d->stats.op_ns_total[req->op] += duration_ns;
        if (duration_ns > d->stats.op_ns_max[req->op]) d->stats.op_ns_max[req->op] = duration_ns;
    }
    if (req->result < 0) {
        d->stats.failed++;
        return;
    }
    if (req->op == RQ_DISK_PWRITE) d->stats.bytes_written += req->len;
    if (req->op == RQ_DISK_PREAD) d->stats.bytes_read += (uint64_t)req->result;
    if (req->op == RQ_DISK_FSYNC || req->op == RQ_DISK_FSYNC_DIR) d->stats.fsyncs++;
    if (req->op == RQ_DISK_FSYNC) rq_hist_add(&d->stats.fsync, duration_ns);
}

uint32_t shim_disk_poll(struct shim_disk *d, shim_disk_done_fn done, void *arg) {
    RQ_ASSERT(d->thread != NULL);
    struct shim_disk_thread *t = d->thread;
    uint64_t counter;
    ssize_t n;
    do {
        n = read(d->event_fd, &counter, sizeof counter);
    } while (n < 0 && errno == EINTR);
    uint32_t count = 0;
    int more = 0;
    while (!more) {
        pthread_mutex_lock(&t->mutex);
        if (d->delivered == d->executed) {
            pthread_mutex_unlock(&t->mutex);
            break;
        }
        if (count == SHIM_DISK_POLL_MAX) {
            more = 1;
            pthread_mutex_unlock(&t->mutex);
            break;
        }
        struct shim_disk_job job = d->jobs[d->delivered & RING_MASK];
        d->delivered++; /* the slot is free before done() runs, so done() may submit */
        pthread_mutex_unlock(&t->mutex);
        if (job.syscall != NULL) log_failure(&job);
        count_completion(d, job.req, job.duration_ns);
        count++;
        done(arg, job.req);
    }
    if (more) signal_loop(d); /* the rest on the loop's next turn, after timers */
    return count;
}

void shim_disk_drain(struct shim_disk *d, shim_disk_done_fn done, void *arg) {
    while (shim_disk_inflight(d) > 0) {
        if (shim_disk_poll(d, done, arg) > 0) continue;
        struct pollfd p = {.fd = d->event_fd, .events = POLLIN, .revents = 0};
        int rc = poll(&p, 1, -1);
        RQ_ASSERT(rc >= 0 || errno == EINTR);
    }
}

/* ---- open and close -------------------------------------------------------------------------- */

static void reset(struct shim_disk *d) {
    memset(d, 0, sizeof *d);
    d->dir_fd = -1;
    d->event_fd = -1;
    for (int i = 0; i < SHIM_DISK_FILES_MAX; i++)
        d->files[i].fd = -1;
}

static int open_fail(struct shim_disk *d, int rc, const char *what, int e) {
    RQ_ERROR("disk: data directory \"%s\": %s: %s", d->data_dir, what,
             e ? strerror(e) : rq_strerror(rc));
    shim_disk_close(d);
    return rc;
}

static int start_worker(struct shim_disk *d) {
    struct shim_disk_thread *t = calloc(1, sizeof *t);
    if (t == NULL) return RQ_ENOMEM;
    if (pthread_mutex_init(&t->mutex, NULL) != 0) {
        free(t);
        return RQ_ENOMEM;
    }
    if (pthread_cond_init(&t->cond, NULL) != 0) {
        pthread_mutex_destroy(&t->mutex);
        free(t);
        return RQ_ENOMEM;
    }
    d->thread = t;
    /* The worker blocks every signal, so SIGTERM and friends always reach the loop thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t->thread, NULL, worker_main, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->mutex);
        free(t);
        d->thread = NULL;
        return RQ_EIO;
    }
    return 0;
}

int shim_disk_open(struct shim_disk *d, const char *data_dir) {
    reset(d);
    size_t len = strlen(data_dir);
    if (len == 0 || len >= sizeof d->data_dir) return open_fail(d, RQ_EINVAL, "path length", 0);
    memcpy(d->data_dir, data_dir, len + 1);
    d->dir_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dir_fd < 0) {
        int e = errno;
        return open_fail(d, (e == ENOENT || e == ENOTDIR) ? RQ_ENOENT : RQ_EIO, "open", e);
    }
    if (faccessat(d->dir_fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        return open_fail(d, RQ_EIO, "not writable", errno);
    }
    if (flock(d->dir_fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        return open_fail(d, e == EWOULDBLOCK ? RQ_EBUSY : RQ_EIO,
                         "flock (in use by another process?)", e);
    }
    d->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->event_fd < 0) return open_fail(d, RQ_EIO, "eventfd", errno);
    d->sys.pwrite = pwrite;
    d->sys.ftruncate = ftruncate;
    d->sys.fdatasync = fdatasync;
    d->jobs = calloc(SHIM_DISK_INFLIGHT_MAX, sizeof *d->jobs);
    if (d->jobs == NULL) return open_fail(d, RQ_ENOMEM, "allocating the request ring", 0);
    int rc = start_worker(d);
    if (rc != 0) return open_fail(d, rc, "starting the worker thread", 0);
    return 0;
}

void shim_disk_close(struct shim_disk *d) {
    struct shim_disk_thread *t = d->thread;
    if (t != NULL) {
        pthread_mutex_lock(&t->mutex);
        d->stopping = 1;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->mutex);
        pthread_join(t->thread, NULL);
        RQ_ASSERT(d->executed == d->submitted);
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->mutex);
        free(t);
        d->thread = NULL;
    }
    for (int i = 0; i < SHIM_DISK_FILES_MAX; i++) {
        if (d->files[i].fd >= 0) close(d->files[i].fd);
        d->files[i].fd = -1;
    }
    if (d->event_fd >= 0) close(d->event_fd);
    if (d->dir_fd >= 0) close(d->dir_fd); /* releases the flock */
    d->event_fd = -1;
    d->dir_fd = -1;
    free(d->jobs);
    d->jobs = NULL;
}
