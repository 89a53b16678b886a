/* raftqd's settings; see daemon_config.h. One table describes every setting, so the flags and the
 * file are parsed by the same code and checked by the same rules. */
#include "cmd/daemon_config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/errors.h"
#include "cmd/cmd_error.h"
#include "shim/net.h"

enum kind { K_ID, K_ADDR, K_PEERS, K_PATH, K_LEVEL, K_U32, K_U64 };

struct setting {
    const char *name;
    enum kind kind;
    size_t offset;               /* into struct daemon_config */
    uint64_t min, max;           /* K_U32, K_U64 */
};

#define AT(field) offsetof(struct daemon_config, field)

static const struct setting SETTINGS[] = {
    {"id", K_ID, AT(id), 0, 0},
    {"listen", K_ADDR, AT(listen), 0, 0},
    {"peers", K_PEERS, 0, 0, 0},
    {"data-dir", K_PATH, AT(data_dir), 0, 0},
    {"metrics", K_ADDR, AT(metrics), 0, 0},
    {"log-level", K_LEVEL, AT(log_level), 0, 0},
    {"tick-ms", K_U32, AT(tick_ms), 1, 1000},
    {"election-ticks", K_U32, AT(election_ticks), 2, 1000},
    {"heartbeat-ms", K_U32, AT(heartbeat_ms), 10, 60000},
    {"heartbeat-timeout-ms", K_U32, AT(heartbeat_timeout_ms), 20, 600000},
    {"request-timeout-ms", K_U32, AT(request_timeout_ms), 1, 3600000},
    {"snapshot-entries", K_U32, AT(snapshot_entries), 1, 1000000000},
    {"segment-bytes", K_U64, AT(segment_bytes), 128u << 10, 1u << 30},
    {"max-connections", K_U32, AT(max_connections), 1, SHIM_NET_CONNS_MAX},
    {"hello-timeout-ms", K_U32, AT(hello_timeout_ms), 100, 600000},
    {"idle-timeout-ms", K_U32, AT(idle_timeout_ms), 1000, SHIM_NET_TIMEOUT_MS_MAX},
};
enum { SETTINGS_COUNT = sizeof SETTINGS / sizeof SETTINGS[0] };


void daemon_config_default(struct daemon_config *c) {
    memset(c, 0, sizeof *c);
    c->log_level = DAEMON_LOG_INFO;
    c->tick_ms = 10;
    c->election_ticks = 10;
    c->heartbeat_ms = 200;
    c->heartbeat_timeout_ms = 2000;
    c->request_timeout_ms = 10000;
    c->snapshot_entries = 1024;
    c->segment_bytes = 256u << 20;
    c->max_connections = SHIM_NET_CONNS_MAX;
    c->hello_timeout_ms = SHIM_NET_HELLO_TIMEOUT_MS;
    c->idle_timeout_ms = SHIM_NET_IDLE_TIMEOUT_MS;
}

/* ---- values ---------------------------------------------------------------------------------- */

/* A decimal number of v[0..n) in [min, max]; 0 or -1. */
static int parse_num(const char *v, size_t n, uint64_t min, uint64_t max, uint64_t *out) {
    if (n == 0 || n > 19) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (x < min || x > max) return -1;
    *out = x;
    return 0;
}

/* HOST:PORT (the last ':' splits, so a bracketed IPv6 host keeps its colons). */
static int parse_addr(const char *v, size_t n, struct daemon_addr *out) {
    size_t colon = n;
    for (size_t i = 0; i < n; i++)
        if (v[i] == ':') colon = i;
    uint64_t port;
    if (colon == 0 || colon >= n || colon > DAEMON_HOST_MAX ||
        parse_num(v + colon + 1, n - colon - 1, 1, 65535, &port) != 0)
        return -1;
    for (size_t i = 0; i < colon; i++)
        if (v[i] <= ' ' || v[i] == ',' || v[i] == '=' || (unsigned char)v[i] >= 0x7f) return -1;
    memcpy(out->host, v, colon);
    out->host[colon] = '\0';
    out->port = (uint16_t)port;
    return 0;
}

/* ID=HOST:PORT,ID=HOST:PORT,...: ids unique, kept in ascending order. */
static int parse_peers(struct daemon_config *c, const char *v, size_t n, char *err, size_t cap) {
    c->peer_count = 0;
    for (size_t start = 0; start <= n;) {
        size_t end = start;
        while (end < n && v[end] != ',') end++;
        const char *item = v + start;
        size_t len = end - start, eq = 0;
        while (eq < len && item[eq] != '=') eq++;
        uint64_t id;
        struct daemon_peer p = {0};
        if (eq == len || parse_num(item, eq, 1, RQ_NODE_ID_MAX, &id) != 0 ||
            parse_addr(item + eq + 1, len - eq - 1, &p.addr) != 0)
            return cmd_fail(err, cap, "peers: '%.*s' is not ID=HOST:PORT (ID 1..%d)", (int)len, item,
                        RQ_NODE_ID_MAX);
        if (c->peer_count == DAEMON_PEERS_MAX)
            return cmd_fail(err, cap, "peers: more than %d", DAEMON_PEERS_MAX);
        uint32_t at = 0;
        while (at < c->peer_count && c->peers[at].id < id) at++;
        if (at < c->peer_count && c->peers[at].id == id)
            return cmd_fail(err, cap, "peers: node %u is listed twice", (unsigned)id);
        memmove(&c->peers[at + 1], &c->peers[at], (c->peer_count - at) * sizeof c->peers[0]);
        p.id = (uint32_t)id;
        c->peers[at] = p;
        c->peer_count++;
        start = end + 1;
    }
    return 0;
}

static int parse_level(const char *v, size_t n, enum daemon_log_level *out) {
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strlen(names[i]) == n && memcmp(names[i], v, n) == 0) {
            *out = (enum daemon_log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Sets setting s from v[0..n); `where` names the source for the error ("--tick-ms", "line 3"). */
static int set(struct daemon_config *c, const struct setting *s, const char *v, size_t n,
               const char *where, char *err, size_t cap) {
    char *field = (char *)c + s->offset;
    uint64_t x;
    switch (s->kind) {
    case K_ID:
        if (parse_num(v, n, 1, RQ_NODE_ID_MAX, &x) != 0)
            return cmd_fail(err, cap, "%s: '%.*s' is not a node id (1..%d)", where, (int)n, v,
                        RQ_NODE_ID_MAX);
        *(uint32_t *)(void *)field = (uint32_t)x;
        return 0;
    case K_ADDR:
        if (parse_addr(v, n, (struct daemon_addr *)(void *)field) == 0) return 0;
        return cmd_fail(err, cap, "%s: '%.*s' is not HOST:PORT (port 1..65535)", where, (int)n, v);
    case K_PEERS: return parse_peers(c, v, n, err, cap);
    case K_PATH:
        if (n == 0 || n > DAEMON_PATH_MAX || memchr(v, '\0', n) != NULL)
            return cmd_fail(err, cap, "%s: a path of 1..%d bytes is needed", where, DAEMON_PATH_MAX);
        memcpy(field, v, n);
        field[n] = '\0';
        return 0;
    case K_LEVEL:
        if (parse_level(v, n, (enum daemon_log_level *)(void *)field) == 0) return 0;
        return cmd_fail(err, cap, "%s: '%.*s' is not error, warn, info or debug", where, (int)n, v);
    case K_U32:
    case K_U64:
        if (parse_num(v, n, s->min, s->max, &x) != 0)
            return cmd_fail(err, cap, "%s: '%.*s' is not a number in %llu..%llu", where, (int)n, v,
                        (unsigned long long)s->min, (unsigned long long)s->max);
        if (s->kind == K_U32) *(uint32_t *)(void *)field = (uint32_t)x;
        else *(uint64_t *)(void *)field = x;
        return 0;
    }
    return cmd_fail(err, cap, "%s: no such setting", where);
}

static const struct setting *find(const char *name, size_t n) {
    for (int i = 0; i < SETTINGS_COUNT; i++)
        if (strlen(SETTINGS[i].name) == n && memcmp(SETTINGS[i].name, name, n) == 0)
            return &SETTINGS[i];
    return NULL;
}

/* ---- the file -------------------------------------------------------------------------------- */

static int is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

/* Trims spaces around s[*b..*e). */
static void trim(const char *s, size_t *b, size_t *e) {
    while (*b < *e && is_space(s[*b])) (*b)++;
    while (*e > *b && is_space(s[*e - 1])) (*e)--;
}

static int apply_line(struct daemon_config *c, const char *line, size_t len, unsigned number,
                      uint8_t *seen, char *err, size_t cap) {
    size_t b = 0, e = len;
    trim(line, &b, &e);
    if (b == e || line[b] == '#') return 0;
    size_t eq = b;
    while (eq < e && line[eq] != '=') eq++;
    if (eq == e) return cmd_fail(err, cap, "line %u: 'key = value' expected", number);
    size_t kb = b, ke = eq, vb = eq + 1, ve = e;
    trim(line, &kb, &ke);
    trim(line, &vb, &ve);
    const struct setting *s = find(line + kb, ke - kb);
    if (s == NULL)
        return cmd_fail(err, cap, "line %u: unknown setting '%.*s'", number, (int)(ke - kb), line + kb);
    if (seen[s - SETTINGS]++) return cmd_fail(err, cap, "line %u: '%s' is set twice", number, s->name);
    char where[32];
    snprintf(where, sizeof where, "line %u (%s)", number, s->name);
    return set(c, s, line + vb, ve - vb, where, err, cap);
}

int daemon_config_apply_text(struct daemon_config *c, const char *text, size_t len, char *err,
                             size_t cap) {
    if (len > DAEMON_CONFIG_TEXT_MAX)
        return cmd_fail(err, cap, "the configuration file is over %d bytes", DAEMON_CONFIG_TEXT_MAX);
    uint8_t seen[SETTINGS_COUNT] = {0};
    unsigned number = 1;
    for (size_t start = 0; start < len; number++) {
        size_t end = start;
        while (end < len && text[end] != '\n') end++;
        if (memchr(text + start, '\0', end - start) != NULL)
            return cmd_fail(err, cap, "line %u: a NUL byte", number);
        int rc = apply_line(c, text + start, end - start, number, seen, err, cap);
        if (rc != 0) return rc;
        start = end + 1;
    }
    return 0;
}

/* ---- the flags ------------------------------------------------------------------------------- */

int daemon_config_find_file(struct daemon_config *c, int argc, char *const *argv, char *err,
                            size_t cap) {
    c->config_file[0] = '\0';
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") != 0) continue;
        if (i + 1 == argc) return cmd_fail(err, cap, "--config: a file is needed");
        if (c->config_file[0] != '\0') return cmd_fail(err, cap, "--config is given twice");
        size_t n = strlen(argv[i + 1]);
        if (n == 0 || n > DAEMON_PATH_MAX)
            return cmd_fail(err, cap, "--config: a path of 1..%d bytes is needed", DAEMON_PATH_MAX);
        memcpy(c->config_file, argv[i + 1], n + 1);
        i++;
    }
    return 0;
}

int daemon_config_apply_args(struct daemon_config *c, int argc, char *const *argv, char *err,
                             size_t cap) {
    uint8_t seen[SETTINGS_COUNT] = {0};
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--config") == 0) {   /* read before: daemon_config_find_file */
            i++;
            continue;
        }
        const struct setting *s = strncmp(flag, "--", 2) == 0 ? find(flag + 2, strlen(flag + 2)) : NULL;
        if (s == NULL) return cmd_fail(err, cap, "unknown flag '%s'", flag);
        if (i + 1 == argc) return cmd_fail(err, cap, "%s: a value is needed", flag);
        if (seen[s - SETTINGS]++) return cmd_fail(err, cap, "%s is given twice", flag);
        const char *v = argv[++i];
        int rc = set(c, s, v, strlen(v), flag, err, cap);
        if (rc != 0) return rc;
    }
    return 0;
}

int daemon_config_validate(const struct daemon_config *c, char *err, size_t cap) {
    if (c->id == 0) return cmd_fail(err, cap, "the node id is not set (--id)");
    if (c->listen.host[0] == '\0') return cmd_fail(err, cap, "the listen address is not set (--listen)");
    if (c->data_dir[0] == '\0') return cmd_fail(err, cap, "the data directory is not set (--data-dir)");
    if (c->peer_count == 0) return cmd_fail(err, cap, "the peers are not set (--peers, this node too)");
    int found = 0;
    for (uint32_t i = 0; i < c->peer_count; i++) found |= c->peers[i].id == c->id;
    if (!found) return cmd_fail(err, cap, "--peers does not list this node (id %u)", (unsigned)c->id);
    if (c->heartbeat_timeout_ms <= c->heartbeat_ms)
        return cmd_fail(err, cap, "heartbeat-timeout-ms (%u) must be above heartbeat-ms (%u)",
                    (unsigned)c->heartbeat_timeout_ms, (unsigned)c->heartbeat_ms);
    return 0;
}
