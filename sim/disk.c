#include "sim/disk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"

/* One unsynced operation, kept so a crash can replay a random part of it. */
struct pending_op {
    uint64_t offset;   /* write: where; truncate: the new size */
    uint32_t len;      /* write: bytes; truncate: 0 */
    uint8_t is_truncate;
    uint8_t *data;     /* write: a private copy */
};

struct image {
    uint8_t *bytes;
    uint64_t size;
    uint64_t cap;
};

struct inode {
    struct image vol;
    struct image dur;
    struct pending_op *pending;
    uint32_t pending_count;
    uint32_t pending_cap;
    uint64_t pending_bytes;
    int corrupted;
    int live;          /* slot in use */
    int mark;          /* scratch for garbage collection */
};

struct name {
    char path[RQ_DISK_PATH_MAX];
    int32_t inode;     /* -1 for a directory */
};

struct names {
    struct name entries[SIM_DISK_FILES_MAX];
    uint32_t count;    /* kept sorted by path, so LIST is ordered without sorting */
};

struct sim_disk {
    struct names vol_names;
    struct names dur_names;
    struct inode *inodes;
    uint32_t inode_count;
    uint32_t inode_cap;
    int32_t handles[SIM_DISK_HANDLES_MAX];  /* inode index, or -1 */
    struct sim_disk_stats stats;
};

/* ---- images ---------------------------------------------------------------------------------- */

static void image_reserve(struct image *im, uint64_t size) {
    if (size <= im->cap) return;
    uint64_t cap = im->cap ? im->cap : 4096;
    while (cap < size) cap *= 2;
    uint8_t *bytes = realloc(im->bytes, cap);
    RQ_ASSERT(bytes != NULL);
    im->bytes = bytes;
    im->cap = cap;
}

static void image_resize(struct image *im, uint64_t size) {
    image_reserve(im, size);
    if (size > im->size) memset(im->bytes + im->size, 0, size - im->size);
    im->size = size;
}

static void image_write(struct image *im, uint64_t offset, const uint8_t *data, uint64_t len) {
    if (offset + len > im->size) image_resize(im, offset + len);
    memcpy(im->bytes + offset, data, len);
}

static void image_copy(struct image *dst, const struct image *src) {
    image_reserve(dst, src->size);
    if (src->size) memcpy(dst->bytes, src->bytes, src->size);
    dst->size = src->size;
}

/* ---- names ----------------------------------------------------------------------------------- */

int sim_disk_path_valid(const char *path) {
    size_t len = 0;
    while (len < RQ_DISK_PATH_MAX && path[len] != '\0') len++;
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
    if (strcmp(path, ".") == 0 || strcmp(path, "..") == 0 || strstr(path, "..") != NULL) return RQ_EINVAL;
    return 0;
}

/* Writes the directory part of path ("" for top level) into dir. */
static void path_dir(const char *path, char *dir) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    memcpy(dir, path, n);
    dir[n] = '\0';
}

static int names_find(const struct names *ns, const char *path) {
    for (uint32_t i = 0; i < ns->count; i++) {
        if (strcmp(ns->entries[i].path, path) == 0) return (int)i;
    }
    return -1;
}

static void names_remove(struct names *ns, int at) {
    RQ_ASSERT(at >= 0 && (uint32_t)at < ns->count);
    memmove(&ns->entries[at], &ns->entries[at + 1], (ns->count - (uint32_t)at - 1) * sizeof(struct name));
    ns->count--;
}

/* Inserts or replaces path; returns 0 or RQ_ENOSPC when the table is full. */
static int names_put(struct names *ns, const char *path, int32_t inode) {
    int at = names_find(ns, path);
    if (at >= 0) {
        ns->entries[at].inode = inode;
        return 0;
    }
    if (ns->count == SIM_DISK_FILES_MAX) return RQ_ENOSPC;
    uint32_t i = ns->count;
    while (i > 0 && strcmp(ns->entries[i - 1].path, path) > 0) {
        ns->entries[i] = ns->entries[i - 1];
        i--;
    }
    memset(&ns->entries[i], 0, sizeof ns->entries[i]);
    strcpy(ns->entries[i].path, path);
    ns->entries[i].inode = inode;
    ns->count++;
    return 0;
}

static int dir_exists(const struct names *ns, const char *dir) {
    if (dir[0] == '\0') return 1;
    int at = names_find(ns, dir);
    return at >= 0 && ns->entries[at].inode < 0;
}

/* ---- inodes ---------------------------------------------------------------------------------- */

static void inode_clear_pending(struct inode *in) {
    for (uint32_t i = 0; i < in->pending_count; i++) free(in->pending[i].data);
    in->pending_count = 0;
    in->pending_bytes = 0;
}

static void inode_free(struct inode *in) {
    inode_clear_pending(in);
    free(in->pending);
    free(in->vol.bytes);
    free(in->dur.bytes);
    memset(in, 0, sizeof *in);
}

static int32_t inode_new(struct sim_disk *d) {
    for (uint32_t i = 0; i < d->inode_count; i++) {
        if (!d->inodes[i].live) {
            d->inodes[i].live = 1;
            return (int32_t)i;
        }
    }
    if (d->inode_count == d->inode_cap) {
        uint32_t cap = d->inode_cap ? d->inode_cap * 2 : 16;
        struct inode *grown = realloc(d->inodes, cap * sizeof *grown);
        RQ_ASSERT(grown != NULL);
        memset(grown + d->inode_cap, 0, (cap - d->inode_cap) * sizeof *grown);
        d->inodes = grown;
        d->inode_cap = cap;
    }
    d->inodes[d->inode_count].live = 1;
    return (int32_t)d->inode_count++;
}

/* Frees inodes no name (durable or volatile) and no handle refers to. */
static void inode_gc(struct sim_disk *d) {
    for (uint32_t i = 0; i < d->inode_count; i++) d->inodes[i].mark = 0;
    const struct names *all[2] = {&d->vol_names, &d->dur_names};
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; i < all[k]->count; i++) {
            if (all[k]->entries[i].inode >= 0) d->inodes[all[k]->entries[i].inode].mark = 1;
        }
    }
    for (int h = 0; h < SIM_DISK_HANDLES_MAX; h++) {
        if (d->handles[h] >= 0) d->inodes[d->handles[h]].mark = 1;
    }
    for (uint32_t i = 0; i < d->inode_count; i++) {
        if (d->inodes[i].live && !d->inodes[i].mark) inode_free(&d->inodes[i]);
    }
}

/* The OS writes dirty data back on its own eventually; modelling that bounds the op log. */
static void inode_writeback_oldest(struct sim_disk *d, struct inode *in) {
    RQ_ASSERT(in->pending_count > 0);
    struct pending_op *op = &in->pending[0];
    if (op->is_truncate) image_resize(&in->dur, op->offset);
    else image_write(&in->dur, op->offset, op->data, op->len);
    in->pending_bytes -= op->len;
    free(op->data);
    memmove(&in->pending[0], &in->pending[1], (in->pending_count - 1) * sizeof *op);
    in->pending_count--;
    d->stats.writebacks++;
}

static void inode_log_op(struct sim_disk *d, struct inode *in, uint64_t offset, const uint8_t *data,
                         uint32_t len, int is_truncate) {
    while (in->pending_count >= SIM_DISK_PENDING_OPS_MAX ||
           (in->pending_count > 0 && in->pending_bytes + len > SIM_DISK_PENDING_BYTES_MAX)) {
        inode_writeback_oldest(d, in);
    }
    if (in->pending_count == in->pending_cap) {
        uint32_t cap = in->pending_cap ? in->pending_cap * 2 : 8;
        struct pending_op *grown = realloc(in->pending, cap * sizeof *grown);
        RQ_ASSERT(grown != NULL);
        in->pending = grown;
        in->pending_cap = cap;
    }
    struct pending_op *op = &in->pending[in->pending_count++];
    op->offset = offset;
    op->len = len;
    op->is_truncate = (uint8_t)is_truncate;
    op->data = NULL;
    if (!is_truncate) {
        op->data = malloc(len ? len : 1);
        RQ_ASSERT(op->data != NULL);
        if (len) memcpy(op->data, data, len);
    }
    in->pending_bytes += len;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

struct sim_disk *sim_disk_create(void) {
    struct sim_disk *d = calloc(1, sizeof *d);
    RQ_ASSERT(d != NULL);
    for (int h = 0; h < SIM_DISK_HANDLES_MAX; h++) d->handles[h] = -1;
    return d;
}

void sim_disk_destroy(struct sim_disk *d) {
    if (d == NULL) return;
    for (uint32_t i = 0; i < d->inode_count; i++) {
        if (d->inodes[i].live) inode_free(&d->inodes[i]);
    }
    free(d->inodes);
    free(d);
}

const struct sim_disk_stats *sim_disk_stats(const struct sim_disk *d) { return &d->stats; }

static uint64_t disk_used_bytes(const struct sim_disk *d) {
    uint64_t used = 0;
    for (uint32_t i = 0; i < d->inode_count; i++) {
        if (d->inodes[i].live) used += d->inodes[i].vol.size;
    }
    return used;
}

/* Whether growing a file by `growth` bytes must fail with ENOSPC. */
static int disk_no_space(const struct sim_disk *d, const struct sim_disk_faults *f, uint64_t growth) {
    if (growth == 0) return 0;
    if (f->full) return 1;
    return f->capacity_bytes && disk_used_bytes(d) + growth > f->capacity_bytes;
}

static struct inode *handle_inode(struct sim_disk *d, int32_t file) {
    if (file < 0 || file >= SIM_DISK_HANDLES_MAX || d->handles[file] < 0) return NULL;
    return &d->inodes[d->handles[file]];
}

/* ---- operations ------------------------------------------------------------------------------ */

static int64_t op_open(struct sim_disk *d, struct rq_disk_req *req) {
    if (sim_disk_path_valid(req->path)) return RQ_EINVAL;
    int at = names_find(&d->vol_names, req->path);
    if (at >= 0 && d->vol_names.entries[at].inode < 0) return RQ_EINVAL;  /* a directory */
    int handle = -1;
    for (int h = 0; h < SIM_DISK_HANDLES_MAX && handle < 0; h++) {
        if (d->handles[h] < 0) handle = h;
    }
    if (handle < 0) return RQ_EMFILE;
    int32_t ino;
    if (at >= 0) {
        ino = d->vol_names.entries[at].inode;
    } else {
        if (!(req->flags & RQ_DISK_CREATE)) return RQ_ENOENT;
        char dir[RQ_DISK_PATH_MAX];
        path_dir(req->path, dir);
        if (!dir_exists(&d->vol_names, dir)) return RQ_ENOENT;
        ino = inode_new(d);
        if (names_put(&d->vol_names, req->path, ino) != 0) {
            inode_gc(d);
            return RQ_ENOSPC;
        }
    }
    d->handles[handle] = ino;
    req->size = d->inodes[ino].vol.size;
    return handle;
}

static int64_t op_pwrite(struct sim_disk *d, struct rq_disk_req *req, const struct sim_disk_faults *f) {
    struct inode *in = handle_inode(d, req->file);
    if (in == NULL) return RQ_EBADF;
    if (req->len > UINT32_MAX || req->offset > (1ull << 40)) return RQ_EINVAL;
    uint64_t end = req->offset + req->len;
    uint64_t growth = end > in->vol.size ? end - in->vol.size : 0;
    if (disk_no_space(d, f, growth)) {
        d->stats.enospc++;
        return RQ_ENOSPC;
    }
    image_write(&in->vol, req->offset, req->buf, req->len);
    inode_log_op(d, in, req->offset, req->buf, (uint32_t)req->len, 0);
    d->stats.bytes_written += req->len;
    return 0;
}

static int64_t op_pread(struct sim_disk *d, struct rq_disk_req *req) {
    struct inode *in = handle_inode(d, req->file);
    if (in == NULL) return RQ_EBADF;
    if (req->offset >= in->vol.size) return 0;
    uint64_t n = in->vol.size - req->offset;
    if (n > req->len) n = req->len;
    memcpy(req->buf, in->vol.bytes + req->offset, n);
    return (int64_t)n;
}

static int64_t op_fsync(struct sim_disk *d, struct rq_disk_req *req, const struct sim_disk_faults *f,
                        struct rq_rng *rng) {
    struct inode *in = handle_inode(d, req->file);
    if (in == NULL) return RQ_EBADF;
    d->stats.fsyncs++;
    if (rq_rng_chance(rng, f->fsync_eio_ppm)) {
        /* The fate of the data is unknown: some prefix of it may have reached the disk. */
        uint32_t written = (uint32_t)rq_rng_below(rng, (uint64_t)in->pending_count + 1);
        for (uint32_t i = 0; i < written; i++) inode_writeback_oldest(d, in);
        d->stats.fsync_errors++;
        return RQ_EIO;
    }
    /* The volatile image is always the durable one with the pending operations replayed on it
     * (corruption flips a cached byte only while it still equals the synced one), so replaying
     * them makes the two equal at the cost of what changed, not of the file's size. */
    for (uint32_t i = 0; i < in->pending_count; i++) {
        const struct pending_op *op = &in->pending[i];
        if (op->is_truncate) image_resize(&in->dur, op->offset);
        else image_write(&in->dur, op->offset, op->data, op->len);
    }
    RQ_ASSERT(in->dur.size == in->vol.size);
    inode_clear_pending(in);
    return 0;
}

static int64_t op_truncate(struct sim_disk *d, struct rq_disk_req *req, const struct sim_disk_faults *f) {
    struct inode *in = handle_inode(d, req->file);
    if (in == NULL) return RQ_EBADF;
    if (req->offset > (1ull << 40)) return RQ_EINVAL;
    uint64_t growth = req->offset > in->vol.size ? req->offset - in->vol.size : 0;
    if (disk_no_space(d, f, growth)) {
        d->stats.enospc++;
        return RQ_ENOSPC;
    }
    image_resize(&in->vol, req->offset);
    inode_log_op(d, in, req->offset, NULL, 0, 1);
    return 0;
}

static int64_t op_rename(struct sim_disk *d, struct rq_disk_req *req) {
    if (sim_disk_path_valid(req->path) || sim_disk_path_valid(req->path2)) return RQ_EINVAL;
    int at = names_find(&d->vol_names, req->path);
    if (at < 0) return RQ_ENOENT;
    int32_t ino = d->vol_names.entries[at].inode;
    if (ino < 0) return RQ_EINVAL;  /* directories are not renamed */
    char dir[RQ_DISK_PATH_MAX];
    path_dir(req->path2, dir);
    if (!dir_exists(&d->vol_names, dir)) return RQ_ENOENT;
    int dst = names_find(&d->vol_names, req->path2);
    if (dst >= 0 && d->vol_names.entries[dst].inode < 0) return RQ_EINVAL;
    if (strcmp(req->path, req->path2) == 0) return 0;
    names_remove(&d->vol_names, at);
    int rc = names_put(&d->vol_names, req->path2, ino);
    RQ_ASSERT(rc == 0);  /* one name was just freed */
    inode_gc(d);
    return 0;
}

static int64_t op_unlink(struct sim_disk *d, struct rq_disk_req *req) {
    if (sim_disk_path_valid(req->path)) return RQ_EINVAL;
    int at = names_find(&d->vol_names, req->path);
    if (at < 0) return RQ_ENOENT;
    if (d->vol_names.entries[at].inode < 0) {
        /* A directory: only when empty. */
        char prefix[RQ_DISK_PATH_MAX + 1];
        size_t n = strlen(req->path);
        memcpy(prefix, req->path, n);
        prefix[n] = '/';
        for (uint32_t i = 0; i < d->vol_names.count; i++) {
            if (strncmp(d->vol_names.entries[i].path, prefix, n + 1) == 0) return RQ_EEXIST;
        }
    }
    names_remove(&d->vol_names, at);
    inode_gc(d);
    return 0;
}

static int64_t op_list(struct sim_disk *d, struct rq_disk_req *req) {
    if (req->path[0] != '\0' && !dir_exists(&d->vol_names, req->path)) return RQ_ENOENT;
    size_t used = 0;
    int64_t count = 0;
    char dir[RQ_DISK_PATH_MAX];
    for (uint32_t i = 0; i < d->vol_names.count; i++) {
        const char *path = d->vol_names.entries[i].path;
        path_dir(path, dir);
        if (strcmp(dir, req->path) != 0) continue;
        const char *base = dir[0] ? path + strlen(dir) + 1 : path;
        size_t n = strlen(base) + 1;
        if (n > req->len - used) return RQ_ETOOBIG;
        memcpy((char *)req->buf + used, base, n);
        used += n;
        count++;
    }
    return count;
}

/* FSYNC_DIR: the durable names in dir become exactly the volatile ones. */
static int64_t op_fsync_dir(struct sim_disk *d, struct rq_disk_req *req) {
    if (req->path[0] != '\0' && !dir_exists(&d->vol_names, req->path)) return RQ_ENOENT;
    char dir[RQ_DISK_PATH_MAX];
    for (uint32_t i = d->dur_names.count; i-- > 0;) {
        path_dir(d->dur_names.entries[i].path, dir);
        if (strcmp(dir, req->path) == 0) names_remove(&d->dur_names, (int)i);
    }
    for (uint32_t i = 0; i < d->vol_names.count; i++) {
        path_dir(d->vol_names.entries[i].path, dir);
        if (strcmp(dir, req->path) != 0) continue;
        int rc = names_put(&d->dur_names, d->vol_names.entries[i].path, d->vol_names.entries[i].inode);
        RQ_ASSERT(rc == 0);  /* durable names never outnumber the volatile table's capacity */
    }
    d->stats.fsyncs++;
    inode_gc(d);
    return 0;
}

static int64_t op_mkdir(struct sim_disk *d, struct rq_disk_req *req) {
    if (sim_disk_path_valid(req->path) || strchr(req->path, '/') != NULL) return RQ_EINVAL;
    if (names_find(&d->vol_names, req->path) >= 0) return RQ_EEXIST;
    return names_put(&d->vol_names, req->path, -1);
}

void sim_disk_execute(struct sim_disk *d, struct rq_disk_req *req, const struct sim_disk_faults *f,
                      struct rq_rng *rng) {
    d->stats.ops++;
    req->path[RQ_DISK_PATH_MAX - 1] = '\0';
    req->path2[RQ_DISK_PATH_MAX - 1] = '\0';
    switch (req->op) {
    case RQ_DISK_OPEN: req->result = op_open(d, req); break;
    case RQ_DISK_CLOSE:
        if (handle_inode(d, req->file) == NULL) {
            req->result = RQ_EBADF;
        } else {
            d->handles[req->file] = -1;
            inode_gc(d);
            req->result = 0;
        }
        break;
    case RQ_DISK_PWRITE: req->result = op_pwrite(d, req, f); break;
    case RQ_DISK_PREAD: req->result = op_pread(d, req); break;
    case RQ_DISK_FSYNC: req->result = op_fsync(d, req, f, rng); break;
    case RQ_DISK_TRUNCATE: req->result = op_truncate(d, req, f); break;
    case RQ_DISK_RENAME: req->result = op_rename(d, req); break;
    case RQ_DISK_UNLINK: req->result = op_unlink(d, req); break;
    case RQ_DISK_LIST: req->result = op_list(d, req); break;
    case RQ_DISK_FSYNC_DIR: req->result = op_fsync_dir(d, req); break;
    case RQ_DISK_MKDIR: req->result = op_mkdir(d, req); break;
    default: req->result = RQ_EINVAL; break;
    }
}

/* ---- crash and corruption -------------------------------------------------------------------- */

/* Rebuilds one file as a crash leaves it: durable image + a random part of each unsynced op. */
static void inode_crash(struct sim_disk *d, struct inode *in, struct rq_rng *rng) {
    for (uint32_t i = 0; i < in->pending_count; i++) {
        struct pending_op *op = &in->pending[i];
        if (op->is_truncate) {
            if (rq_rng_chance(rng, RQ_PPM / 2)) image_resize(&in->dur, op->offset);
            continue;
        }
        if (op->len == 0) continue;
        /* Sectors are aligned to file offsets; a write covers pieces of one or more of them. */
        uint64_t first_sector = op->offset / RQ_DISK_SECTOR_SIZE;
        uint64_t last_sector = (op->offset + op->len - 1) / RQ_DISK_SECTOR_SIZE;
        uint64_t sectors = last_sector - first_sector + 1;
        uint64_t kept;
        switch (rq_rng_below(rng, 3)) {
        case 0: kept = 0; break;
        case 1: kept = sectors; break;
        default: kept = rq_rng_below(rng, sectors + 1); break;
        }
        if (kept == 0) {
            d->stats.lost_writes++;
            continue;
        }
        uint64_t end = (first_sector + kept) * RQ_DISK_SECTOR_SIZE;
        if (end > op->offset + op->len) end = op->offset + op->len;
        if (kept < sectors) d->stats.torn_writes++;
        image_write(&in->dur, op->offset, op->data, end - op->offset);
    }
    inode_clear_pending(in);
    image_copy(&in->vol, &in->dur);
}

void sim_disk_crash(struct sim_disk *d, struct rq_rng *rng) {
    for (int h = 0; h < SIM_DISK_HANDLES_MAX; h++) d->handles[h] = -1;
    /* Names: the durable ones, less those whose directory itself is not durable. */
    char dir[RQ_DISK_PATH_MAX];
    for (uint32_t i = d->dur_names.count; i-- > 0;) {
        path_dir(d->dur_names.entries[i].path, dir);
        if (!dir_exists(&d->dur_names, dir)) names_remove(&d->dur_names, (int)i);
    }
    d->vol_names = d->dur_names;
    inode_gc(d);
    for (uint32_t i = 0; i < d->inode_count; i++) {
        if (d->inodes[i].live) inode_crash(d, &d->inodes[i], rng);
    }
}

static int64_t put_step(struct sim_disk *d, struct rq_disk_req *req) {
    static const struct sim_disk_faults none = {0, 0, 0};
    struct rq_rng unused;  /* no faults: nothing is drawn */
    rq_rng_seed(&unused, 1);
    sim_disk_execute(d, req, &none, &unused);
    return req->result;
}

int sim_disk_put_durable(struct sim_disk *d, const char *path, const void *data, size_t size) {
    char dir[RQ_DISK_PATH_MAX] = "";
    path_dir(path, dir);
    struct rq_disk_req req = {.op = RQ_DISK_MKDIR};
    if (dir[0] != '\0') {
        strcpy(req.path, dir);
        put_step(d, &req);  /* or it exists */
        req = (struct rq_disk_req){.op = RQ_DISK_FSYNC_DIR};
        if (put_step(d, &req) < 0) return (int)req.result;
    }
    req = (struct rq_disk_req){.op = RQ_DISK_OPEN, .flags = RQ_DISK_CREATE};
    snprintf(req.path, sizeof req.path, "%s", path);
    int64_t file = put_step(d, &req);
    if (file < 0) return (int)file;
    struct rq_disk_req steps[4] = {
        {.op = RQ_DISK_TRUNCATE, .file = (int32_t)file, .offset = 0},
        {.op = RQ_DISK_PWRITE, .file = (int32_t)file, .buf = (void *)data, .len = size},
        {.op = RQ_DISK_FSYNC, .file = (int32_t)file},
        {.op = RQ_DISK_CLOSE, .file = (int32_t)file},
    };
    for (int i = 0; i < 4; i++) {
        if (i == 1 && size == 0) continue;
        if (put_step(d, &steps[i]) < 0) return (int)steps[i].result;
    }
    req = (struct rq_disk_req){.op = RQ_DISK_FSYNC_DIR};
    strcpy(req.path, dir);
    put_step(d, &req);
    return (int)req.result;
}

void sim_disk_process_exit(struct sim_disk *d) {
    for (int h = 0; h < SIM_DISK_HANDLES_MAX; h++) d->handles[h] = -1;
    inode_gc(d);
}

int sim_disk_corrupt(struct sim_disk *d, struct rq_rng *rng, const char *prefix, char *path_out,
                     uint64_t *offset_out) {
    uint32_t candidates[SIM_DISK_FILES_MAX];
    uint32_t count = 0;
    size_t prefix_len = strlen(prefix);
    for (uint32_t i = 0; i < d->dur_names.count; i++) {
        const struct name *nm = &d->dur_names.entries[i];
        if (nm->inode < 0 || strncmp(nm->path, prefix, prefix_len) != 0) continue;
        if (d->inodes[nm->inode].dur.size == 0) continue;
        candidates[count++] = i;
    }
    if (count == 0) return RQ_ENOENT;
    const struct name *nm = &d->dur_names.entries[candidates[rq_rng_below(rng, count)]];
    struct inode *in = &d->inodes[nm->inode];
    uint64_t offset = rq_rng_below(rng, in->dur.size);
    uint8_t bit = (uint8_t)(1u << rq_rng_below(rng, 8));
    /* The medium rotted: what was durable now reads differently, through the cache too when the
     * cached byte is still the one that was synced. */
    uint8_t synced = in->dur.bytes[offset];
    in->dur.bytes[offset] ^= bit;
    if (offset < in->vol.size && in->vol.bytes[offset] == synced) in->vol.bytes[offset] ^= bit;
    in->corrupted = 1;
    d->stats.corruptions++;
    strcpy(path_out, nm->path);
    *offset_out = offset;
    return 0;
}

static struct inode *inode_by_name(const struct sim_disk *d, const char *path, int durable) {
    const struct names *ns = durable ? &d->dur_names : &d->vol_names;
    int at = names_find(ns, path);
    if (at < 0 || ns->entries[at].inode < 0) return NULL;
    return &d->inodes[ns->entries[at].inode];
}

int sim_disk_any_corrupted(const struct sim_disk *d) { return d->stats.corruptions > 0; }

int sim_disk_was_corrupted(const struct sim_disk *d, const char *path) {
    const struct inode *in = inode_by_name(d, path, 0);
    return in != NULL && in->corrupted;
}

void sim_disk_clear_corrupted(struct sim_disk *d, const char *path) {
    struct inode *in = inode_by_name(d, path, 0);
    if (in != NULL) in->corrupted = 0;
}

int sim_disk_image(const struct sim_disk *d, const char *path, int durable, const uint8_t **data,
                   uint64_t *size) {
    const struct inode *in = inode_by_name(d, path, durable);
    if (in == NULL) return RQ_ENOENT;
    const struct image *im = durable ? &in->dur : &in->vol;
    *data = im->bytes;
    *size = im->size;
    return 0;
}

int sim_disk_exists(const struct sim_disk *d, const char *path, int durable) {
    return names_find(durable ? &d->dur_names : &d->vol_names, path) >= 0;
}
