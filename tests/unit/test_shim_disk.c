/* The POSIX disk (src/shim/disk.c) and event loop (src/shim/loop.c), on real files.
 *
 * Every test gets a fresh directory under one mkdtemp directory in /tmp, which main() removes at
 * the end whatever happened. Failures a healthy disk cannot produce on demand (ENOSPC part-way
 * through a write, EIO from fdatasync) are injected through shim_disk.sys. Nothing here asserts an
 * upper bound on elapsed time: timers are checked only for firing no earlier than requested. */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/log.h"
#include "base/rng.h"
#include "shim/disk.h"
#include "shim/loop.h"
#include "shim/wallclock.h"

enum { ORDER_REQUESTS = 3000, BIG_BYTES = 8 << 20 };

static char root_dir[64];  /* made by main(), removed by main() */
static char test_dir[128]; /* this test's data directory */
static struct shim_disk disk;
static int disk_open;

/* ---- log capture ----------------------------------------------------------------------------- */

static char last_warn[RQ_LOG_LINE_MAX];
static int warn_lines;

static void capture_log(void *arg, enum rq_log_level level, const char *line, size_t len) {
    (void)arg;
    if (level < RQ_LOG_WARN) return;
    warn_lines++;
    size_t n = len < sizeof last_warn - 1 ? len : sizeof last_warn - 1;
    memcpy(last_warn, line, n);
    last_warn[n] = '\0';
}

/* ---- fixture --------------------------------------------------------------------------------- */

static void make_test_dir(void) {
    snprintf(test_dir, sizeof test_dir, "%s/t-XXXXXX", root_dir);
    ck_assert_ptr_nonnull(mkdtemp(test_dir));
}

static void setup(void) {
    rq_log_set_sink(capture_log, NULL);
    rq_log_set_level(RQ_LOG_DEBUG);
    warn_lines = 0;
    last_warn[0] = '\0';
    make_test_dir();
    ck_assert_int_eq(shim_disk_open(&disk, test_dir), 0);
    disk_open = 1;
}

static void teardown(void) {
    if (disk_open) shim_disk_close(&disk);
    disk_open = 0;
}

/* ---- synchronous helpers --------------------------------------------------------------------- */

static struct rq_disk_req *done_order[ORDER_REQUESTS + 16];
static uint32_t done_count;

static void record(void *arg, struct rq_disk_req *req) {
    (void)arg;
    if (done_count < sizeof done_order / sizeof done_order[0]) done_order[done_count] = req;
    done_count++;
}

static int64_t run(struct rq_disk_req *req) {
    shim_disk_submit(&disk, req);
    shim_disk_drain(&disk, record, NULL);
    return req->result;
}

/* Copies a path into a request's field; one of RQ_DISK_PATH_MAX bytes or more fills the field
 * without a terminating NUL, as a careless node might. */
static void set_path(char *field, const char *path) {
    size_t n = strlen(path);
    memset(field, 0, RQ_DISK_PATH_MAX);
    memcpy(field, path, n < RQ_DISK_PATH_MAX ? n : RQ_DISK_PATH_MAX);
}

static struct rq_disk_req path_req(enum rq_disk_op op, const char *path) {
    struct rq_disk_req r;
    memset(&r, 0, sizeof r);
    r.op = op;
    set_path(r.path, path);
    return r;
}

static int64_t do_open(const char *path, uint32_t flags, uint64_t *size) {
    struct rq_disk_req r = path_req(RQ_DISK_OPEN, path);
    r.flags = flags;
    int64_t rc = run(&r);
    if (size) *size = r.size;
    return rc;
}

static int64_t do_file(enum rq_disk_op op, int64_t file, uint64_t offset, void *buf, size_t len) {
    struct rq_disk_req r;
    memset(&r, 0, sizeof r);
    r.op = op;
    r.file = (int32_t)file;
    r.offset = offset;
    r.buf = buf;
    r.len = len;
    return run(&r);
}

static int64_t do_path(enum rq_disk_op op, const char *path) {
    struct rq_disk_req r = path_req(op, path);
    return run(&r);
}

static int64_t do_rename(const char *from, const char *to) {
    struct rq_disk_req r = path_req(RQ_DISK_RENAME, from);
    set_path(r.path2, to);
    return run(&r);
}

static int64_t do_list(const char *dir, char *buf, size_t len) {
    struct rq_disk_req r = path_req(RQ_DISK_LIST, dir);
    r.buf = buf;
    r.len = len;
    return run(&r);
}

static int64_t write_str(int64_t file, uint64_t offset, const char *s) {
    return do_file(RQ_DISK_PWRITE, file, offset, (void *)s, strlen(s));
}

/* The file's content as the OS sees it, read without the shim. */
static size_t read_raw(const char *name, char *buf, size_t cap) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", test_dir, name);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static int exists_raw(const char *name) {
    char path[256];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", test_dir, name);
    return stat(path, &st) == 0;
}

/* ---- open, close, handles -------------------------------------------------------------------- */

START_TEST(open_without_create_is_enoent_and_create_reports_the_size) {
    uint64_t size = 99;
    ck_assert_int_eq(do_open("a.log", 0, &size), RQ_ENOENT);
    int64_t f = do_open("a.log", RQ_DISK_CREATE, &size);
    ck_assert_int_ge(f, 0);
    ck_assert_uint_eq(size, 0);
    ck_assert_int_eq(write_str(f, 0, "hello, disk"), 0);
    ck_assert_int_eq(do_file(RQ_DISK_CLOSE, f, 0, NULL, 0), 0);
    int64_t g = do_open("a.log", 0, &size);
    ck_assert_int_ge(g, 0);
    ck_assert_uint_eq(size, 11);
    /* CREATE on an existing file opens it as it is. */
    int64_t h = do_open("a.log", RQ_DISK_CREATE, &size);
    ck_assert_int_ge(h, 0);
    ck_assert_int_ne(h, g);
    ck_assert_uint_eq(size, 11);
}
END_TEST

START_TEST(handles_are_reused_lowest_first_and_stale_handles_are_ebadf) {
    int64_t a = do_open("a", RQ_DISK_CREATE, NULL);
    int64_t b = do_open("b", RQ_DISK_CREATE, NULL);
    ck_assert_int_eq(a, 0);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(do_file(RQ_DISK_CLOSE, a, 0, NULL, 0), 0);
    ck_assert_int_eq(do_file(RQ_DISK_CLOSE, a, 0, NULL, 0), RQ_EBADF);
    char byte = 'x';
    ck_assert_int_eq(do_file(RQ_DISK_PWRITE, a, 0, &byte, 1), RQ_EBADF);
    ck_assert_int_eq(do_open("c", RQ_DISK_CREATE, NULL), 0);
}
END_TEST

static const int32_t bad_handles[] = {-1, 7, SHIM_DISK_FILES_MAX, INT32_MAX, INT32_MIN};
static const enum rq_disk_op file_ops[] = {RQ_DISK_CLOSE, RQ_DISK_PWRITE, RQ_DISK_PREAD,
                                           RQ_DISK_FSYNC, RQ_DISK_TRUNCATE};

START_TEST(every_file_op_on_a_bad_handle_is_ebadf) {
    char buf[16] = {0};
    for (size_t h = 0; h < sizeof bad_handles / sizeof bad_handles[0]; h++) {
        for (size_t o = 0; o < sizeof file_ops / sizeof file_ops[0]; o++) {
            ck_assert_int_eq(do_file(file_ops[o], bad_handles[h], 0, buf, sizeof buf), RQ_EBADF);
        }
    }
}
END_TEST

START_TEST(os_file_limit_is_emfile_and_a_close_frees_a_handle) {
    struct rlimit lim = {.rlim_cur = 48, .rlim_max = 0};
    struct rlimit old;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    lim.rlim_max = old.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &lim), 0); /* this test runs in its own process */
    int64_t last = -1, rc = 0;
    for (int i = 0; i < 64 && rc >= 0; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%02d", i);
        rc = do_open(name, RQ_DISK_CREATE, NULL);
        if (rc >= 0) last = rc;
    }
    ck_assert_int_eq(rc, RQ_EMFILE);
    ck_assert_int_ge(last, 0);
    ck_assert_ptr_nonnull(strstr(last_warn, "Too many open files"));
    ck_assert_int_eq(do_file(RQ_DISK_CLOSE, last, 0, NULL, 0), 0);
    ck_assert_int_ge(do_open("again", RQ_DISK_CREATE, NULL), 0);
}
END_TEST

/* ---- paths ----------------------------------------------------------------------------------- */

static const char *const bad_paths[] = {
    "",
    "/etc/passwd",
    "/x",
    "..",
    "../x",
    "a/../b",
    "a/b/c",
    "a/",
    ".",
    "./x",
    "x/.",
    "a..b",
    "a b",
    "a\\b",
    "a:b",
    "a*",
    "\xc3\xa9",
    "a\nb",
    "//",
    "a//b",
    "~root",
    "0123456789012345678901234567890123456789012345678901234567890123", /* 64 bytes: too long */
};

START_TEST(bad_paths_are_einval_for_every_op_and_touch_nothing) {
    const char *p = bad_paths[_i];
    ck_assert_int_eq(do_open(p, RQ_DISK_CREATE, NULL), RQ_EINVAL);
    ck_assert_int_eq(do_path(RQ_DISK_UNLINK, p), RQ_EINVAL);
    ck_assert_int_eq(do_rename(p, "ok"), RQ_EINVAL);
    if (p[0] != '\0') { /* "" is the data directory itself for these */
        ck_assert_int_eq(do_path(RQ_DISK_MKDIR, p), RQ_EINVAL);
        char buf[64];
        ck_assert_int_eq(do_list(p, buf, sizeof buf), RQ_EINVAL);
        ck_assert_int_eq(do_path(RQ_DISK_FSYNC_DIR, p), RQ_EINVAL);
    } else {
        ck_assert_int_eq(do_path(RQ_DISK_MKDIR, p), RQ_EINVAL);
    }
    int64_t f = do_open("ok", RQ_DISK_CREATE, NULL);
    ck_assert_int_ge(f, 0);
    ck_assert_int_eq(do_rename("ok", p), RQ_EINVAL);
    char names[64];
    ck_assert_int_eq(do_list("", names, sizeof names), 1);
    ck_assert_str_eq(names, "ok");
    ck_assert_int_gt(warn_lines, 0); /* each is logged */
}
END_TEST

START_TEST(directories_are_one_level_deep) {
    ck_assert_int_eq(do_path(RQ_DISK_MKDIR, "wal"), 0);
    ck_assert_int_eq(do_path(RQ_DISK_MKDIR, "wal"), RQ_EEXIST);
    ck_assert_int_eq(do_path(RQ_DISK_MKDIR, "wal/sub"), RQ_EINVAL);
    ck_assert_int_eq(do_path(RQ_DISK_FSYNC_DIR, ""), 0);
    int64_t f = do_open("wal/00000001.log", RQ_DISK_CREATE, NULL);
    ck_assert_int_ge(f, 0);
    ck_assert_int_eq(do_path(RQ_DISK_FSYNC_DIR, "wal"), 0);
    ck_assert_int_eq(do_open("nodir/x", RQ_DISK_CREATE, NULL), RQ_ENOENT);
    ck_assert_int_eq(do_open("wal", 0, NULL), RQ_EINVAL); /* a directory is not a file */
    ck_assert_int_eq(do_path(RQ_DISK_FSYNC_DIR, "nodir"), RQ_ENOENT);
    char buf[64];
    ck_assert_int_eq(do_list("nodir", buf, sizeof buf), RQ_ENOENT);
    /* A file where a directory is expected: missing, as the simulator answers. */
    ck_assert_int_ge(do_open("plain", RQ_DISK_CREATE, NULL), 0);
    ck_assert_int_eq(do_open("plain/x", RQ_DISK_CREATE, NULL), RQ_ENOENT);
    ck_assert_int_eq(do_list("plain", buf, sizeof buf), RQ_ENOENT);
    /* UNLINK removes an empty directory only. */
    ck_assert_int_eq(do_path(RQ_DISK_UNLINK, "wal"), RQ_EEXIST);
    ck_assert_int_eq(do_file(RQ_DISK_CLOSE, f, 0, NULL, 0), 0);
    ck_assert_int_eq(do_path(RQ_DISK_UNLINK, "wal/00000001.log"), 0);
    ck_assert_int_eq(do_path(RQ_DISK_UNLINK, "wal"), 0);
    ck_assert(!exists_raw("wal"));
}
END_TEST

START_TEST(unknown_op_is_einval) {
    struct rq_disk_req r = path_req((enum rq_disk_op)99, "x");
    ck_assert_int_eq(run(&r), RQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(last_warn, "unknown operation"));
}
END_TEST

/* ---- data ------------------------------------------------------------------------------------ */

START_TEST(large_pwrite_and_pread_round_trip_at_unaligned_offsets) {
    uint8_t *out = malloc(BIG_BYTES);
    uint8_t *in = malloc(BIG_BYTES + 100);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(in);
    struct rq_rng rng;
    rq_rng_seed(&rng, 11);
    for (size_t i = 0; i < BIG_BYTES; i++)
        out[i] = (uint8_t)rq_rng_next(&rng);
    int64_t f = do_open("big", RQ_DISK_CREATE, NULL);
    ck_assert_int_ge(f, 0);
    const uint64_t base = 4097;
    ck_assert_int_eq(do_file(RQ_DISK_PWRITE, f, base, out, BIG_BYTES), 0);
    ck_assert_int_eq(do_file(RQ_DISK_FSYNC, f, 0, NULL, 0), 0);
    /* exactly, then asking for more than there is: short only at the end of the file */
    ck_assert_int_eq(do_file(RQ_DISK_PREAD, f, base, in, BIG_BYTES), BIG_BYTES);
    ck_assert_int_eq(memcmp(in, out, BIG_BYTES), 0);
    ck_assert_int_eq(do_file(RQ_DISK_PREAD, f, base + 3, in, BIG_BYTES + 100), BIG_BYTES - 3);
    ck_assert_int_eq(memcmp(in, out + 3, BIG_BYTES - 3), 0);
    ck_assert_int_eq(do_file(RQ_DISK_PREAD, f, base + BIG_BYTES, in, 10), 0);
    ck_assert_int_eq(do_file(RQ_DISK_PREAD, f, base + BIG_BYTES + 5000, in, 10), 0);
    /* the hole before base reads as zeros */
    ck_assert_int_eq(do_file(RQ_DISK_PREAD, f, 0, in, base), base);
    for (uint64_t i = 0; i < base; i++)
        ck_assert_uint_eq(in[i], 0);
    uint64_t size = 0;
    ck_assert_int_ge(do_open("big", 0, &size), 0);
    ck_assert_uint_eq(size, base + BIG_BYTES);
    ck_assert_uint_eq(disk.stats.bytes_written, BIG_BYTES);
    free(out);
    free(in);
}
END_TEST

START_TEST(zero_length_and_out_of_range_requests) {
    int64_t f = do_open("z", RQ_DISK_CREATE, NULL);
    ck_assert_int_eq(do_file(RQ_DISK_PWRITE, f, 0, NULL, 0), 0);
    ck_assert_int_eq(do_file(RQ_DISK_PREAD, f, 0, NULL, 0), 0);
    ck_assert_int_eq(do_file(RQ_DISK_PWRITE, f, 0, NULL, 5), RQ_EINVAL);
    char b = 'b';
    ck_assert_int_eq(do_file(RQ_DISK_PWRITE, f, UINT64_MAX - 1, &b, 1), RQ_EINVAL);
    ck_assert_int_eq(do_file(RQ_DISK_PREAD, f, UINT64_MAX, &b, 1), RQ_EINVAL);
    ck_assert_int_eq(do_file(RQ_DISK_TRUNCATE, f, UINT64_MAX, NULL, 0), RQ_EINVAL);
}
END_TEST

START_TEST(truncate_shrinks_and_extends_with_zeros) {
    int64_t f = do_open("t", RQ_DISK_CREATE, NULL);
    ck_assert_int_eq(write_str(f, 0, "0123456789"), 0);
    ck_assert_int_eq(do_file(RQ_DISK_TRUNCATE, f, 4, NULL, 0), 0);
    ck_assert_int_eq(do_file(RQ_DISK_TRUNCATE, f, 8, NULL, 0), 0);
    ck_assert_int_eq(do_file(RQ_DISK_FSYNC, f, 0, NULL, 0), 0);
    char buf[16];
    ck_assert_uint_eq(read_raw("t", buf, sizeof buf), 8);
    ck_assert_int_eq(memcmp(buf, "0123\0\0\0\0", 8), 0);
    uint64_t size = 0;
    ck_assert_int_ge(do_open("t", 0, &size), 0);
    ck_assert_uint_eq(size, 8);
}
END_TEST

/* ---- names ----------------------------------------------------------------------------------- */

START_TEST(rename_replaces_the_destination_and_needs_an_existing_source) {
    int64_t a = do_open("meta.tmp", RQ_DISK_CREATE, NULL);
    ck_assert_int_eq(write_str(a, 0, "new"), 0);
    ck_assert_int_eq(do_file(RQ_DISK_FSYNC, a, 0, NULL, 0), 0);
    int64_t b = do_open("meta", RQ_DISK_CREATE, NULL);
    ck_assert_int_eq(write_str(b, 0, "old!"), 0);
    ck_assert_int_eq(do_rename("meta.tmp", "meta"), 0);
    ck_assert_int_eq(do_path(RQ_DISK_FSYNC_DIR, ""), 0);
    char buf[16];
    ck_assert_uint_eq(read_raw("meta", buf, sizeof buf), 3);
    ck_assert_int_eq(memcmp(buf, "new", 3), 0);
    ck_assert(!exists_raw("meta.tmp"));
    ck_assert_int_eq(do_open("meta.tmp", 0, NULL), RQ_ENOENT);
    ck_assert_int_eq(do_rename("meta.tmp", "meta"), RQ_ENOENT);
    /* the handle opened before the rename still reads the renamed file */
    ck_assert_int_eq(do_file(RQ_DISK_PREAD, a, 0, buf, sizeof buf), 3);
    /* across directories, and the directory rules */
    ck_assert_int_eq(do_path(RQ_DISK_MKDIR, "d"), 0);
    ck_assert_int_eq(do_rename("meta", "d/meta"), 0);
    ck_assert_int_eq(do_path(RQ_DISK_FSYNC_DIR, "d"), 0);
    ck_assert_int_eq(do_path(RQ_DISK_FSYNC_DIR, ""), 0);
    ck_assert(exists_raw("d/meta"));
    ck_assert_int_eq(do_rename("d", "e"), RQ_EINVAL);
    ck_assert_int_eq(do_rename("d/meta", "d"), RQ_EINVAL);
    ck_assert_int_eq(do_rename("d/meta", "nodir/meta"), RQ_ENOENT);
}
END_TEST

START_TEST(unlink_removes_a_file_and_a_missing_one_is_enoent) {
    ck_assert_int_ge(do_open("x", RQ_DISK_CREATE, NULL), 0);
    ck_assert_int_eq(do_path(RQ_DISK_UNLINK, "x"), 0);
    ck_assert(!exists_raw("x"));
    ck_assert_int_eq(do_path(RQ_DISK_UNLINK, "x"), RQ_ENOENT);
    /* ENOENT is a routine answer: logged below RQ_WARN */
    ck_assert_int_eq(warn_lines, 0);
}
END_TEST

START_TEST(list_sorts_bytewise_and_skips_dot_entries) {
    const char *created[] = {"b", "a", "B", "_x", "-y", "Z", "0", "a.b", "aa", "a-", "z9", "wal"};
    const char *sorted[] = {"-y", "0", "B", "Z", "_x", "a", "a-", "a.b", "aa", "b", "wal", "z9"};
    enum { N = sizeof created / sizeof created[0] };
    for (int i = 0; i < N; i++) {
        if (strcmp(created[i], "wal") == 0) {
            ck_assert_int_eq(do_path(RQ_DISK_MKDIR, "wal"), 0);
        } else {
            ck_assert_int_ge(do_open(created[i], RQ_DISK_CREATE, NULL), 0);
        }
    }
    char buf[256];
    memset(buf, '#', sizeof buf);
    ck_assert_int_eq(do_list("", buf, sizeof buf), N);
    size_t at = 0, need = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_str_eq(buf + at, sorted[i]);
        at += strlen(sorted[i]) + 1;
        need += strlen(sorted[i]) + 1;
    }
    ck_assert_int_eq(buf[at], '#'); /* nothing written past the names */
    /* exactly enough room fits; one byte less is ETOOBIG; an empty buffer too */
    ck_assert_int_eq(do_list("", buf, need), N);
    ck_assert_int_eq(do_list("", buf, need - 1), RQ_ETOOBIG);
    ck_assert_int_eq(do_list("", NULL, 0), RQ_ETOOBIG);
    /* an empty directory lists nothing, even into no buffer */
    ck_assert_int_eq(do_list("wal", NULL, 0), 0);
    ck_assert_int_ge(do_open("wal/2", RQ_DISK_CREATE, NULL), 0);
    ck_assert_int_ge(do_open("wal/10", RQ_DISK_CREATE, NULL), 0);
    ck_assert_int_eq(do_list("wal", buf, sizeof buf), 2);
    ck_assert_str_eq(buf, "10");
    ck_assert_str_eq(buf + 3, "2");
}
END_TEST

START_TEST(list_of_many_names_is_sorted) {
    enum { NAMES = 500 };
    struct rq_rng rng;
    rq_rng_seed(&rng, 5);
    for (int i = 0; i < NAMES; i++) {
        char name[32];
        snprintf(name, sizeof name, "seg-%016llx", (unsigned long long)rq_rng_next(&rng));
        int64_t f = do_open(name, RQ_DISK_CREATE, NULL);
        ck_assert_int_ge(f, 0);
        ck_assert_int_eq(do_file(RQ_DISK_CLOSE, f, 0, NULL, 0), 0);
    }
    static char buf[NAMES * 24];
    ck_assert_int_eq(do_list("", buf, sizeof buf), NAMES);
    const char *prev = buf;
    const char *at = buf + strlen(buf) + 1;
    for (int i = 1; i < NAMES; i++) {
        ck_assert_int_lt(strcmp(prev, at), 0);
        prev = at;
        at += strlen(at) + 1;
    }
}
END_TEST

/* ---- ordering, bounds, close ------------------------------------------------------------------
 */

START_TEST(completions_arrive_in_submission_order) {
    int64_t f = do_open("order", RQ_DISK_CREATE, NULL);
    ck_assert_int_ge(f, 0);
    static struct rq_disk_req reqs[ORDER_REQUESTS];
    static uint32_t values[ORDER_REQUESTS];
    static uint32_t readback[ORDER_REQUESTS];
    for (uint32_t i = 0; i < ORDER_REQUESTS; i++) {
        struct rq_disk_req *r = &reqs[i];
        memset(r, 0, sizeof *r);
        r->user = i;
        r->file = (int32_t)f;
        values[i] = i * 2654435761u;
        if (i % 100 == 99) {
            r->op = RQ_DISK_FSYNC;
        } else if (i % 7 == 3 && i > 10) {
            /* reads what an earlier request wrote: submission order is execution order */
            r->op = RQ_DISK_PREAD;
            r->offset = (uint64_t)(i - 5) * 4;
            r->buf = &readback[i];
            r->len = 4;
        } else {
            r->op = RQ_DISK_PWRITE;
            r->offset = (uint64_t)i * 4;
            r->buf = &values[i];
            r->len = 4;
        }
    }
    done_count = 0;
    for (uint32_t i = 0; i < ORDER_REQUESTS; i++)
        shim_disk_submit(&disk, &reqs[i]);
    ck_assert_uint_eq(shim_disk_inflight(&disk), ORDER_REQUESTS);
    shim_disk_drain(&disk, record, NULL);
    ck_assert_uint_eq(done_count, ORDER_REQUESTS);
    for (uint32_t i = 0; i < ORDER_REQUESTS; i++) {
        ck_assert_uint_eq(done_order[i]->user, i);
        ck_assert_int_ge(reqs[i].result, 0);
        if (reqs[i].op == RQ_DISK_PREAD) {
            ck_assert_int_eq(reqs[i].result, 4);
            uint32_t j = i - 5;
            if (reqs[j].op == RQ_DISK_PWRITE) ck_assert_uint_eq(readback[i], values[j]);
        }
    }
    ck_assert_uint_eq(disk.stats.inflight_max, ORDER_REQUESTS);
    ck_assert_uint_eq(shim_disk_inflight(&disk), 0);
}
END_TEST

START_TEST(one_poll_hands_back_at_most_poll_max_and_leaves_the_eventfd_readable) {
    enum { N = SHIM_DISK_POLL_MAX * 3 };
    static struct rq_disk_req reqs[N];
    for (int i = 0; i < N; i++) {
        memset(&reqs[i], 0, sizeof reqs[i]);
        reqs[i].op = RQ_DISK_FSYNC_DIR; /* path "" */
    }
    done_count = 0;
    for (int i = 0; i < N; i++)
        shim_disk_submit(&disk, &reqs[i]);
    while (done_count < N) {
        struct pollfd p = {.fd = shim_disk_eventfd(&disk), .events = POLLIN, .revents = 0};
        ck_assert_int_eq(poll(&p, 1, -1), 1);
        uint32_t n = shim_disk_poll(&disk, record, NULL);
        ck_assert_uint_le(n, SHIM_DISK_POLL_MAX);
        if (n == SHIM_DISK_POLL_MAX && done_count < N) {
            /* more may wait: the loop must be woken again without the worker's help */
            struct pollfd q = {.fd = shim_disk_eventfd(&disk), .events = POLLIN, .revents = 0};
            ck_assert_int_eq(poll(&q, 1, 0), 1);
        }
    }
    ck_assert_uint_eq(done_count, N);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(done_order[i], &reqs[i]);
    ck_assert_uint_eq(disk.stats.fsyncs, N);
    ck_assert_uint_eq(disk.stats.op_count[RQ_DISK_FSYNC_DIR], N); /* counted per operation */
    ck_assert_uint_ge(disk.stats.op_ns_total[RQ_DISK_FSYNC_DIR],
                      disk.stats.op_ns_max[RQ_DISK_FSYNC_DIR]);
    ck_assert_uint_gt(disk.stats.op_ns_max[RQ_DISK_FSYNC_DIR], 0);
    ck_assert_str_eq(shim_disk_op_name(RQ_DISK_FSYNC_DIR), "FSYNC_DIR");
}
END_TEST

START_TEST(close_finishes_requests_already_submitted) {
    int64_t f = do_open("c", RQ_DISK_CREATE, NULL);
    static struct rq_disk_req reqs[200];
    static char bytes[200];
    for (int i = 0; i < 200; i++) {
        bytes[i] = (char)('a' + i % 26);
        memset(&reqs[i], 0, sizeof reqs[i]);
        reqs[i].op = RQ_DISK_PWRITE;
        reqs[i].file = (int32_t)f;
        reqs[i].offset = (uint64_t)i;
        reqs[i].buf = &bytes[i];
        reqs[i].len = 1;
        reqs[i].result = -100;
        shim_disk_submit(&disk, &reqs[i]);
    }
    shim_disk_close(&disk);
    disk_open = 0;
    char buf[256];
    ck_assert_uint_eq(read_raw("c", buf, sizeof buf), 200);
    ck_assert_int_eq(memcmp(buf, bytes, 200), 0);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(reqs[i].result, 0);
    shim_disk_close(&disk); /* twice is harmless */
}
END_TEST

START_TEST(submitting_beyond_the_inflight_bound_aborts) {
    static struct rq_disk_req reqs[SHIM_DISK_INFLIGHT_MAX + 1];
    for (int i = 0; i <= SHIM_DISK_INFLIGHT_MAX; i++) {
        reqs[i].op = RQ_DISK_FSYNC_DIR;
        shim_disk_submit(&disk, &reqs[i]); /* never polled: all stay in flight */
    }
}
END_TEST

/* ---- the data directory ---------------------------------------------------------------------- */

START_TEST(open_refuses_a_missing_or_non_directory_or_locked_data_dir) {
    struct shim_disk other;
    char path[256];
    snprintf(path, sizeof path, "%s/missing", test_dir);
    ck_assert_int_eq(shim_disk_open(&other, path), RQ_ENOENT);
    ck_assert(!exists_raw("missing")); /* never created */
    shim_disk_close(&other);           /* harmless after a failed open */
    ck_assert_int_ge(do_open("file", RQ_DISK_CREATE, NULL), 0);
    snprintf(path, sizeof path, "%s/file", test_dir);
    ck_assert_int_eq(shim_disk_open(&other, path), RQ_ENOENT);
    ck_assert_int_eq(shim_disk_open(&other, ""), RQ_EINVAL);
    /* the directory in use by `disk` is locked, even within one process */
    ck_assert_int_eq(shim_disk_open(&other, test_dir), RQ_EBUSY);
    shim_disk_close(&disk);
    disk_open = 0;
    ck_assert_int_eq(shim_disk_open(&other, test_dir), 0);
    shim_disk_close(&other);
    if (geteuid() != 0) { /* root may write anywhere */
        ck_assert_int_eq(chmod(test_dir, 0500), 0);
        ck_assert_int_eq(shim_disk_open(&other, test_dir), RQ_EIO);
        ck_assert_int_eq(chmod(test_dir, 0700), 0);
    }
}
END_TEST

/* ---- injected failures ----------------------------------------------------------------------- */

/* The fake pwrite writes fault_budget bytes (in short writes), then fails once with
 * fault_errno, then behaves like pwrite again: the disk filled at that moment, and the shim's
 * undo (an overwrite of blocks already allocated) still succeeds, as it would on ext4 or XFS. */
static size_t fault_budget;
static int fault_errno;
static int fault_fired;
static int truncate_fails;

static ssize_t fake_pwrite(int fd, const void *buf, size_t len, off_t offset) {
    if (fault_fired) return pwrite(fd, buf, len, offset);
    if (fault_budget == 0) {
        fault_fired = 1;
        errno = fault_errno;
        return -1;
    }
    size_t n = len < fault_budget ? len : fault_budget;
    if (n > 3) n = 3; /* short writes: the shim must loop */
    ssize_t w = pwrite(fd, buf, n, offset);
    if (w > 0) fault_budget -= (size_t)w;
    return w;
}

static int fake_ftruncate(int fd, off_t size) {
    if (truncate_fails) {
        errno = EIO;
        return -1;
    }
    return ftruncate(fd, size);
}

static int fake_fdatasync(int fd) {
    (void)fd;
    errno = EIO;
    return -1;
}

static void inject(size_t budget, int e) {
    fault_budget = budget;
    fault_errno = e;
    fault_fired = 0;
    disk.sys.pwrite = fake_pwrite;
    disk.sys.ftruncate = fake_ftruncate;
}

START_TEST(enospc_on_an_append_leaves_the_file_as_it_was) {
    int64_t f = do_open("w", RQ_DISK_CREATE, NULL);
    ck_assert_int_eq(write_str(f, 0, "durable"), 0);
    inject(5, _i == 0 ? ENOSPC : EDQUOT);
    ck_assert_int_eq(write_str(f, 7, "0123456789"), RQ_ENOSPC);
    ck_assert_ptr_nonnull(
        strstr(last_warn, _i == 0 ? "No space left on device" : "Disk quota exceeded"));
    ck_assert_ptr_nonnull(strstr(last_warn, "\"w\""));
    char buf[32];
    ck_assert_uint_eq(read_raw("w", buf, sizeof buf), 7);
    ck_assert_int_eq(memcmp(buf, "durable", 7), 0);
    /* an append past the end (a hole) is undone too */
    inject(1, ENOSPC);
    ck_assert_int_eq(write_str(f, 100, "xyz"), RQ_ENOSPC);
    ck_assert_uint_eq(read_raw("w", buf, sizeof buf), 7);
}
END_TEST

START_TEST(enospc_on_a_write_straddling_the_end_restores_the_overwritten_bytes) {
    int64_t f = do_open("w", RQ_DISK_CREATE, NULL);
    ck_assert_int_eq(write_str(f, 0, "0123456789"), 0);
    inject(7, ENOSPC); /* overwrites "6789" with "abcd", appends "efg", then fails */
    ck_assert_int_eq(write_str(f, 6, "abcdefghijkl"), RQ_ENOSPC);
    char buf[32];
    ck_assert_uint_eq(read_raw("w", buf, sizeof buf), 10);
    ck_assert_int_eq(memcmp(buf, "0123456789", 10), 0);
    inject(2, ENOSPC); /* fails inside the old bytes */
    ck_assert_int_eq(write_str(f, 6, "abcdefghijkl"), RQ_ENOSPC);
    ck_assert_uint_eq(read_raw("w", buf, sizeof buf), 10);
    ck_assert_int_eq(memcmp(buf, "0123456789", 10), 0);
}
END_TEST

START_TEST(enospc_that_cannot_be_undone_is_eio) {
    int64_t f = do_open("w", RQ_DISK_CREATE, NULL);
    ck_assert_int_eq(write_str(f, 0, "0123456789"), 0);
    /* a pure overwrite that failed part-way: old bytes are gone */
    inject(2, ENOSPC);
    ck_assert_int_eq(write_str(f, 2, "abcd"), RQ_EIO);
    /* a pure overwrite that failed before writing anything: nothing written */
    inject(0, ENOSPC);
    ck_assert_int_eq(write_str(f, 2, "abcd"), RQ_ENOSPC);
    /* the file cannot be cut back */
    inject(1, ENOSPC);
    truncate_fails = 1;
    ck_assert_int_eq(write_str(f, 10, "abcd"), RQ_EIO);
    ck_assert_ptr_nonnull(strstr(last_warn, "ftruncate"));
    truncate_fails = 0;
}
END_TEST

START_TEST(other_write_errors_are_eio_and_fsync_failure_is_eio) {
    int64_t f = do_open("w", RQ_DISK_CREATE, NULL);
    inject(0, EFBIG);
    ck_assert_int_eq(write_str(f, 0, "x"), RQ_EIO);
    ck_assert_ptr_nonnull(strstr(last_warn, "File too large"));
    disk.sys.fdatasync = fake_fdatasync;
    ck_assert_int_eq(do_file(RQ_DISK_FSYNC, f, 0, NULL, 0), RQ_EIO);
    ck_assert_ptr_nonnull(strstr(last_warn, "fdatasync"));
    ck_assert_ptr_nonnull(strstr(last_warn, "Input/output error"));
    ck_assert_ptr_nonnull(strstr(last_warn, "\"w\""));
}
END_TEST

/* ---- the event loop -------------------------------------------------------------------------- */

enum { TIMER_STEPS = 6 };
static const uint64_t timer_delays_ns[TIMER_STEPS] = {0, 1, 1500000, 20000000, 999999, 3000000};

struct test_node {
    const struct rq_io *io;
    int mode; /* 0: timers; 1: disk chain; 2: halt on a disk completion */
    int step;
    uint64_t asked_at_ns;
    uint64_t deadline_ns;
    int early; /* a timer fired before its deadline */
    int fired;
    struct rq_disk_req req;
    char data[64];
    int disk_done;
    int destroyed;
    struct shim_loop *loop;
};

static struct test_node node_state;

static void *tn_create(const struct rq_io *io, const void *config) {
    node_state.io = io;
    node_state.mode = *(const int *)config;
    return &node_state;
}
static void tn_destroy(void *node) { ((struct test_node *)node)->destroyed = 1; }

static void tn_arm(struct test_node *n) {
    n->asked_at_ns = n->io->now(n->io->env);
    n->deadline_ns = n->asked_at_ns + timer_delays_ns[n->step];
    n->io->set_timer(n->io->env, n->deadline_ns);
}

static void tn_submit(struct test_node *n, enum rq_disk_op op) {
    memset(&n->req, 0, sizeof n->req);
    n->req.op = op;
    n->req.file = 0;
    snprintf(n->req.path, sizeof n->req.path, "node.dat");
    n->req.flags = RQ_DISK_CREATE;
    n->req.buf = n->data;
    n->req.len = sizeof n->data;
    n->io->disk(n->io->env, &n->req);
}

static void tn_start(void *node) {
    struct test_node *n = node;
    n->io->send(n->io->env, 2, "ping", 4);
    n->io->reply(n->io->env, 1, "pong", 4);
    if (n->mode == 0) {
        tn_arm(n);
    } else {
        memset(n->data, 'q', sizeof n->data);
        tn_submit(n, RQ_DISK_OPEN);
    }
}

static void tn_timer(void *node) {
    struct test_node *n = node;
    uint64_t now = n->io->now(n->io->env);
    uint64_t os_now = rq_shim_node_clock_ns();   /* read anew: the clock timers are set on */
    if (now < n->deadline_ns || os_now < n->deadline_ns) n->early++;
    n->fired++;
    if (++n->step == TIMER_STEPS) {
        shim_loop_stop(n->loop);
        return;
    }
    tn_arm(n);
}

static void tn_disk_done(void *node, struct rq_disk_req *req) {
    struct test_node *n = node;
    ck_assert_ptr_eq(req, &n->req);
    ck_assert_int_ge(req->result, 0);
    n->disk_done++;
    switch (req->op) {
    case RQ_DISK_OPEN:
        if (n->mode == 2) {
            n->io->halt(n->io->env, "test: halting on purpose");
            return;
        }
        tn_submit(n, RQ_DISK_PWRITE);
        break;
    case RQ_DISK_PWRITE: tn_submit(n, RQ_DISK_FSYNC); break;
    default: shim_loop_stop(n->loop); break;
    }
}

static void tn_ignore_msg(void *node, uint32_t from, const void *buf, size_t len) {
    (void)node, (void)from, (void)buf, (void)len;
}
static void tn_ignore_client(void *node, uint64_t conn, const void *buf, size_t len) {
    (void)node, (void)conn, (void)buf, (void)len;
}
static void tn_ignore_closed(void *node, uint64_t conn) { (void)node, (void)conn; }

static const struct rq_node_ops test_ops = {
    .name = "test",
    .create = tn_create,
    .destroy = tn_destroy,
    .on_start = tn_start,
    .on_timer = tn_timer,
    .on_peer_message = tn_ignore_msg,
    .on_client_message = tn_ignore_client,
    .on_disk_done = tn_disk_done,
    .on_conn_closed = tn_ignore_closed,
};

static struct shim_loop loop;

static void loop_setup(int mode) {
    memset(&node_state, 0, sizeof node_state);
    static int modes[3] = {0, 1, 2};
    ck_assert_int_eq(shim_loop_init(&loop, test_dir, &test_ops, &modes[mode], 3, 42), 0);
    node_state.loop = &loop;
}

START_TEST(timers_fire_no_earlier_than_requested) {
    teardown(); /* the loop opens the directory itself */
    loop_setup(0);
    ck_assert_int_eq(shim_loop_run(&loop), 0);
    ck_assert_int_eq(node_state.fired, TIMER_STEPS);
    ck_assert_int_eq(node_state.early, 0);
    ck_assert_uint_eq(loop.stats.timer_fires, TIMER_STEPS);
    ck_assert_uint_eq(loop.stats.sends_dropped, 1);
    ck_assert_uint_eq(loop.stats.replies_dropped, 1);
    ck_assert_uint_eq(loop.stats.bytes_dropped, 8);
    ck_assert_uint_eq(node_state.io->node_id, 3);
    ck_assert_uint_eq(node_state.io->seed, 42);
    shim_loop_free(&loop);
    ck_assert_int_eq(node_state.destroyed, 1);
}
END_TEST

START_TEST(the_loop_delivers_disk_completions_to_the_node) {
    teardown();
    loop_setup(1);
    ck_assert_int_eq(shim_loop_run(&loop), 0);
    ck_assert_int_eq(node_state.disk_done, 3); /* open, pwrite, fsync */
    ck_assert_uint_eq(loop.stats.disk_done, 3);
    char buf[128];
    ck_assert_uint_eq(read_raw("node.dat", buf, sizeof buf), 64);
    ck_assert_int_eq(buf[63], 'q');
    shim_loop_free(&loop);
}
END_TEST

START_TEST(halt_stops_the_loop_with_an_error) {
    teardown();
    loop_setup(2);
    ck_assert_int_eq(shim_loop_run(&loop), RQ_EIO);
    ck_assert(loop.halted);
    ck_assert_str_eq(loop.halt_reason, "test: halting on purpose");
    ck_assert_ptr_nonnull(strstr(last_warn, "halt: test: halting on purpose"));
    ck_assert_int_eq(node_state.disk_done, 1);
    ck_assert_int_eq(shim_loop_run(&loop), RQ_EIO); /* a halted node never runs again */
    shim_loop_free(&loop);
    ck_assert_int_eq(node_state.destroyed, 1);
}
END_TEST

START_TEST(loop_init_fails_cleanly_on_a_missing_directory) {
    teardown();
    char path[256];
    snprintf(path, sizeof path, "%s/missing", test_dir);
    static const int mode = 0;
    ck_assert_int_eq(shim_loop_init(&loop, path, &test_ops, &mode, 1, 1), RQ_ENOENT);
}
END_TEST

/* ---- main ------------------------------------------------------------------------------------ */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

int main(void) {
    snprintf(root_dir, sizeof root_dir, "/tmp/raftq-test-shim-XXXXXX");
    if (mkdtemp(root_dir) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    signal(SIGPIPE, SIG_IGN);
    Suite *suite = suite_create("shim_disk");

    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_add_test(files, open_without_create_is_enoent_and_create_reports_the_size);
    tcase_add_test(files, handles_are_reused_lowest_first_and_stale_handles_are_ebadf);
    tcase_add_test(files, every_file_op_on_a_bad_handle_is_ebadf);
    tcase_add_test(files, os_file_limit_is_emfile_and_a_close_frees_a_handle);
    tcase_add_loop_test(files, bad_paths_are_einval_for_every_op_and_touch_nothing, 0,
                        (int)(sizeof bad_paths / sizeof bad_paths[0]));
    tcase_add_test(files, directories_are_one_level_deep);
    tcase_add_test(files, unknown_op_is_einval);
    tcase_add_test(files, large_pwrite_and_pread_round_trip_at_unaligned_offsets);
    tcase_add_test(files, zero_length_and_out_of_range_requests);
    tcase_add_test(files, truncate_shrinks_and_extends_with_zeros);
    tcase_add_test(files, rename_replaces_the_destination_and_needs_an_existing_source);
    tcase_add_test(files, unlink_removes_a_file_and_a_missing_one_is_enoent);
    tcase_add_test(files, list_sorts_bytewise_and_skips_dot_entries);
    tcase_add_test(files, list_of_many_names_is_sorted);
    tcase_add_test(files, open_refuses_a_missing_or_non_directory_or_locked_data_dir);
    suite_add_tcase(suite, files);

    TCase *queue = tcase_create("queue");
    tcase_set_timeout(queue, 120); /* generous for slow sanitizer builds; not a timing test */
    tcase_add_checked_fixture(queue, setup, teardown);
    tcase_add_test(queue, completions_arrive_in_submission_order);
    tcase_add_test(queue, one_poll_hands_back_at_most_poll_max_and_leaves_the_eventfd_readable);
    tcase_add_test(queue, close_finishes_requests_already_submitted);
    tcase_add_test_raise_signal(queue, submitting_beyond_the_inflight_bound_aborts, SIGABRT);
    suite_add_tcase(suite, queue);

    TCase *faults = tcase_create("faults");
    tcase_add_checked_fixture(faults, setup, teardown);
    tcase_add_loop_test(faults, enospc_on_an_append_leaves_the_file_as_it_was, 0, 2);
    tcase_add_test(faults, enospc_on_a_write_straddling_the_end_restores_the_overwritten_bytes);
    tcase_add_test(faults, enospc_that_cannot_be_undone_is_eio);
    tcase_add_test(faults, other_write_errors_are_eio_and_fsync_failure_is_eio);
    suite_add_tcase(suite, faults);

    TCase *lp = tcase_create("loop");
    tcase_set_timeout(lp, 60);
    tcase_add_checked_fixture(lp, setup, teardown);
    tcase_add_test(lp, timers_fire_no_earlier_than_requested);
    tcase_add_test(lp, the_loop_delivers_disk_completions_to_the_node);
    tcase_add_test(lp, halt_stops_the_loop_with_an_error);
    tcase_add_test(lp, loop_init_fails_cleanly_on_a_missing_directory);
    suite_add_tcase(suite, lp);

    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    nftw(root_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
