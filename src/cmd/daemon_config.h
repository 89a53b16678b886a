/* daemon_config.h — raftqd's settings: command-line flags and the configuration file, parsed
 * strictly, with an error that names what was wrong.
 *
 *   raftqd --id N --listen HOST:PORT --peers 1=HOST:PORT,2=HOST:PORT,... --data-dir DIR
 *          [--metrics HOST:PORT] [--log-level error|warn|info|debug] [--config FILE]
 *
 * The configuration file holds the same settings and the tuning ones, one `key = value` per line;
 * blank lines and lines starting with '#' are ignored. Keys: the flags without their dashes (id,
 * listen, peers, data-dir, metrics, log-level) and:
 *   tick-ms                the Raft tick (1..1000, default 10)
 *   election-ticks         ticks without a leader before an election (2..1000, default 10)
 *   heartbeat-ms           a broker's heartbeat to the controller (10..60000, default 200)
 *   heartbeat-timeout-ms   the controller marks a silent broker down (> heartbeat-ms, default 2000)
 *   request-timeout-ms     a client request waiting longer is answered RQ_ETIMEOUT (default 10000)
 *   snapshot-entries       a group's snapshot every so many applied entries (1..10^9, default 1024)
 *   segment-bytes          a stored log's segment size (128 KiB..1 GiB, default 256 MiB)
 *   max-connections        accepted connections at once; more are closed (1..1024, default 1024)
 *   hello-timeout-ms       an accepted connection's hello must come within (100..600000, 10000)
 *   idle-timeout-ms        an accepted connection receiving nothing for so long is closed
 *                          (1000..86400000, default 600000: ten minutes)
 * Flags override the file (the file is read first, whatever the order on the command line). Every
 * value is checked: numbers are decimal and in range, addresses are HOST:PORT with a port of
 * 1..65535, node ids are 1..RQ_NODE_ID_MAX and unique, the node's own id must be among the peers
 * (a cluster of one lists itself), a key or flag given twice is an error, an unknown one is an
 * error. Pure: no OS calls (main reads the file and hands its text here), so it is unit-tested and
 * fuzzed like any decoder. */
#ifndef RQ_CMD_DAEMON_CONFIG_H
#define RQ_CMD_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "io/io.h"

enum {
    DAEMON_HOST_MAX = 255,               /* a host name or address, bytes */
    DAEMON_PATH_MAX = 1024,              /* the data directory and the config file's path */
    DAEMON_PEERS_MAX = 64,               /* servers in a cluster */
    DAEMON_CONFIG_TEXT_MAX = 64 * 1024,  /* a configuration file, bytes */
    DAEMON_ERROR_MAX = 256,
};

enum daemon_log_level { DAEMON_LOG_ERROR = 0, DAEMON_LOG_WARN, DAEMON_LOG_INFO, DAEMON_LOG_DEBUG };

struct daemon_addr {
    char host[DAEMON_HOST_MAX + 1];      /* NUL-terminated; empty: not set */
    uint16_t port;
};

struct daemon_peer {
    uint32_t id;
    struct daemon_addr addr;
};

struct daemon_config {
    uint32_t id;                         /* 0: not set */
    struct daemon_addr listen;
    uint32_t peer_count;
    struct daemon_peer peers[DAEMON_PEERS_MAX];   /* ascending id */
    char data_dir[DAEMON_PATH_MAX + 1];
    char config_file[DAEMON_PATH_MAX + 1];        /* --config, or empty */
    struct daemon_addr metrics;          /* empty host: no metrics endpoint */
    enum daemon_log_level log_level;
    uint32_t tick_ms;
    uint32_t election_ticks;
    uint32_t heartbeat_ms;
    uint32_t heartbeat_timeout_ms;
    uint32_t request_timeout_ms;
    uint32_t snapshot_entries;
    uint64_t segment_bytes;
    uint32_t max_connections;            /* accepted at once */
    uint32_t hello_timeout_ms;           /* accepted connection to its hello */
    uint32_t idle_timeout_ms;            /* accepted connection receiving nothing */
};

/* The defaults above, nothing required set. */
void daemon_config_default(struct daemon_config *c);

/* Finds --config FILE in argv[1..argc) (the file is read before the flags are applied). Returns 0
 * with c->config_file set (or left empty), or RQ_EINVAL with err when --config has no value, is
 * given twice or is too long. */
int daemon_config_find_file(struct daemon_config *c, int argc, char *const *argv, char *err,
                            size_t cap);

/* Applies the configuration file's text (text[0..len), not NUL-terminated). Returns 0, or
 * RQ_EINVAL with err naming the line and what is wrong with it. */
int daemon_config_apply_text(struct daemon_config *c, const char *text, size_t len, char *err,
                             size_t cap);

/* Applies the flags argv[1..argc). Returns 0, or RQ_EINVAL with err. */
int daemon_config_apply_args(struct daemon_config *c, int argc, char *const *argv, char *err,
                             size_t cap);

/* The checks that need every setting: id, listen, peers and data-dir set, the id among the peers,
 * heartbeat timeout above the heartbeat. Returns 0, or RQ_EINVAL with err. */
int daemon_config_validate(const struct daemon_config *c, char *err, size_t cap);

#endif
