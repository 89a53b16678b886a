/* The simulator's disk: one per server node, modelling what a POSIX file system guarantees and
 * nothing more (see "Disk" in src/io/io.h).
 *
 * Each file (inode) has a volatile image (what reads see) and a durable image (what survives a
 * crash), plus the log of unsynced operations since its last fsync. A crash rebuilds each file
 * from its durable image and a random subset of those operations: each unsynced write keeps a
 * random prefix of its 512-byte sectors, each unsynced truncate happens or not. Names work the
 * same way per directory: creates, renames and unlinks are durable only after FSYNC_DIR.
 *
 * Operations run synchronously here; the event loop (sim.c) decides when they complete. */
#ifndef RQ_SIM_DISK_H
#define RQ_SIM_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"
#include "io/io.h"

enum {
    SIM_DISK_FILES_MAX = 256,          /* names (files and directories) per disk */
    SIM_DISK_HANDLES_MAX = 1024,       /* open handles per disk: Linux's default soft limit */
    SIM_DISK_PENDING_OPS_MAX = 4096,   /* unsynced ops per file before the oldest is written back */
    SIM_DISK_PENDING_BYTES_MAX = 64u << 20,
};

/* Faults in force for one operation. */
struct sim_disk_faults {
    int full;                   /* growing a file fails with RQ_ENOSPC, writing nothing */
    uint32_t fsync_eio_ppm;     /* chance that an fsync fails with RQ_EIO */
    uint64_t capacity_bytes;    /* sum of file sizes beyond which growth fails with RQ_ENOSPC */
};

struct sim_disk_stats {
    uint64_t ops;
    uint64_t bytes_written;
    uint64_t fsyncs;
    uint64_t fsync_errors;
    uint64_t enospc;
    uint64_t torn_writes;       /* unsynced writes cut short at a crash */
    uint64_t lost_writes;       /* unsynced writes dropped entirely at a crash */
    uint64_t corruptions;       /* latent bit flips injected */
    uint64_t writebacks;        /* unsynced ops made durable by the bounded write-back */
};

struct sim_disk;

struct sim_disk *sim_disk_create(void);
void sim_disk_destroy(struct sim_disk *d);

/* Executes req now and sets req->result (and req->size for OPEN). Draws from rng only for
 * injected faults. */
void sim_disk_execute(struct sim_disk *d, struct rq_disk_req *req, const struct sim_disk_faults *f,
                      struct rq_rng *rng);

/* The machine lost power: every file becomes its durable image plus a random subset of its
 * unsynced operations (torn at sectors); names become the durable names; handles are closed. */
void sim_disk_crash(struct sim_disk *d, struct rq_rng *rng);

/* The process died but the machine did not (kill -9): handles close; the page cache — every
 * volatile image and name — survives, still unsynced, for a later power loss to tear. */
void sim_disk_process_exit(struct sim_disk *d);

/* Latent corruption: flips one bit of a synced (durable) byte of a random file whose name starts
 * with prefix ("" for any). Returns 0 and names the file and offset, or RQ_ENOENT when no file
 * has synced data. Marks the file as corrupted (see sim_disk_was_corrupted). */
int sim_disk_corrupt(struct sim_disk *d, struct rq_rng *rng, const char *prefix, char *path_out,
                     uint64_t *offset_out);

/* Whether corruption was injected into any file of this disk (ever, or since cleared). */
int sim_disk_any_corrupted(const struct sim_disk *d);
/* Whether corruption was injected into the file now named path since the flag was cleared. */
int sim_disk_was_corrupted(const struct sim_disk *d, const char *path);
void sim_disk_clear_corrupted(struct sim_disk *d, const char *path);

/* For tests: makes `path` a durable file holding exactly data[0..size), bypassing any component
 * (the way a foreign or damaged file appears): its directory is created if missing and made
 * durable, the file written, fsynced and closed, and its directory fsynced. Returns 0 or the first
 * failing request's error. */
int sim_disk_put_durable(struct sim_disk *d, const char *path, const void *data, size_t size);

/* Test and checker access: the volatile (durable = 0) or durable (durable = 1) image of the file
 * named path in the corresponding namespace. Returns 0 or RQ_ENOENT. The pointer is valid until
 * the next operation. */
int sim_disk_image(const struct sim_disk *d, const char *path, int durable, const uint8_t **data,
                   uint64_t *size);
/* Whether path names a directory or file in the volatile (durable = 0) or durable names. */
int sim_disk_exists(const struct sim_disk *d, const char *path, int durable);

const struct sim_disk_stats *sim_disk_stats(const struct sim_disk *d);

/* Validates a path per io.h; returns 0 or RQ_EINVAL. */
int sim_disk_path_valid(const char *path);

#endif
