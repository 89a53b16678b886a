/* cli_args.h — the raftq command line, parsed strictly, and the pure helpers of its output
 * (durations, --format strings, JSON strings, error names). No OS calls: unit-tested like any
 * decoder (tests/unit/test_cli_args.c), and nothing on a command line can crash it.
 *
 * Rules of the command line (cli_usage() is the text users see):
 *   - Global flags (--bootstrap, --json, --timeout) and the command's own flags may appear
 *     anywhere after the program name; the words that are not flags name the command and its
 *     arguments. "--" ends the flags (a message that starts with "--" follows it).
 *   - Every flag that takes a value takes the next word ("--count 5"; "--count=5" is refused).
 *   - Refused, with an error that names the flag, word or value: an unknown command or flag, a
 *     flag of another command, a flag given twice, a missing value, a number that is not decimal
 *     or is out of range, a bad duration, a bad address, a bad topic name, --acks other than
 *     all|1|0, --idempotent without acks=all, --from-beginning with --offset, --format with
 *     --json, a bad --format string, extra words.
 * Strings in struct cli_args point into argv (which outlives it) or into the struct itself. */
#ifndef RQ_CMD_CLI_ARGS_H
#define RQ_CMD_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

enum {
    CLI_EXIT_OK = 0,          /* the command did what it was asked */
    CLI_EXIT_FAILED = 1,      /* the cluster answered with an error, or some message failed */
    CLI_EXIT_USAGE = 2,       /* the command line was refused */
    CLI_EXIT_UNREACHABLE = 3, /* no server answered within --timeout */
};

enum {
    CLI_BOOTSTRAP_MAX = 15, /* CLIENT_BOOTSTRAP_MAX - 1: raftq.c may repeat one */
    CLI_ADDRESS_MAX = 128,  /* "host:port" with its NUL (= SHIM_NET_ADDRESS_MAX) */
    CLI_ERROR_MAX = 256,
    CLI_FORMAT_TEXT_MAX = 256, /* a --format string, bytes */
    CLI_FORMAT_PIECES_MAX = 64,
    CLI_KEY_MAX = 64 * 1024, /* --key, bytes */
    CLI_WORDS_MAX = 4096,    /* command words and messages on the line */
    CLI_TIMEOUT_MS_DEFAULT = 10 * 1000,
    CLI_TIMEOUT_MS_MAX = 24 * 60 * 60 * 1000,
    CLI_PARTITIONS_DEFAULT = 3,
    CLI_REPLICATION_DEFAULT = 3,
    /* A produce batch is one Raft entry (RAFT_ENTRY_DATA_MAX, 64 KiB, framing included), so a
     * larger message could never be written: the default says so at creation. */
    CLI_MAX_MESSAGE_BYTES_DEFAULT = 60 << 10,
    CLI_SESSION_MS_DEFAULT = 10 * 1000,   /* a group member's session (Kafka's 10 s default) */
};

#define CLI_BOOTSTRAP_DEFAULT    "127.0.0.1:7001"
#define CLI_RETENTION_MS_DEFAULT (7ull * 24 * 60 * 60 * 1000) /* 7 days, Kafka's default */
#define CLI_OFFSET_MAX           (1ull << 62)                 /* --offset's ceiling */

enum cli_command {
    CLI_NONE = 0,
    CLI_TOPIC_CREATE,
    CLI_TOPIC_DELETE,
    CLI_TOPIC_LIST,
    CLI_TOPIC_DESCRIBE,
    CLI_PRODUCE,
    CLI_CONSUME,
    CLI_CLUSTER_STATUS,
    CLI_BROKER_DECOMMISSION,
    CLI_GROUP_LIST,
    CLI_GROUP_DESCRIBE,
    CLI_GROUP_RESET,        /* group reset-offsets NAME --topic T (--to-earliest|--to-latest|
                               --offset N) [--partition P] */
};

enum cli_reset { CLI_RESET_NONE = 0, CLI_RESET_EARLIEST, CLI_RESET_LATEST, CLI_RESET_OFFSET };

enum cli_start { CLI_START_END = 0, CLI_START_BEGINNING, CLI_START_OFFSET };

/* One piece of a compiled --format: a literal run of text, or a field of the record. */
enum cli_field {
    CLI_FIELD_TEXT = 0,
    CLI_FIELD_OFFSET,    /* %o */
    CLI_FIELD_PARTITION, /* %p */
    CLI_FIELD_KEY,       /* %k */
    CLI_FIELD_VALUE,     /* %v */
    CLI_FIELD_TIMESTAMP, /* %t: milliseconds since the epoch */
    CLI_FIELD_TOPIC,     /* %T */
};

struct cli_format_piece {
    uint8_t field;        /* enum cli_field */
    uint16_t text_offset; /* CLI_FIELD_TEXT: text[text_offset .. + text_size) */
    uint16_t text_size;
};

struct cli_format {
    uint32_t piece_count;
    struct cli_format_piece pieces[CLI_FORMAT_PIECES_MAX];
    char text[CLI_FORMAT_TEXT_MAX]; /* the literal text, escapes (\n, \t, \\, %%) resolved */
};

/* A record as --format renders it. */
struct cli_record_view {
    const char *topic;
    uint32_t partition;
    uint64_t offset;
    uint64_t timestamp_ns;
    const uint8_t *key;
    size_t key_size;
    const uint8_t *value;
    size_t value_size;
};

struct cli_args {
    int help; /* --help / -h: print the usage, exit 0 */
    char bootstrap[CLI_BOOTSTRAP_MAX][CLI_ADDRESS_MAX];
    uint32_t bootstrap_count; /* >= 1 after a successful parse */
    int json;
    uint64_t timeout_ms; /* > 0 */
    enum cli_command command;
    const char *topic; /* topic commands, produce, consume */
    /* topic create: 0 partitions / replication means "the default for the cluster's size" */
    uint32_t partitions;
    uint32_t replication;
    uint64_t retention_ms; /* 0: keep forever */
    uint64_t retention_bytes;
    uint32_t max_message_bytes;
    /* produce */
    const char *key; /* NULL: no key (round robin over partitions) */
    uint8_t acks;    /* enum proto_acks */
    int idempotent;
    uint64_t delay_ms; /* --delay: held this long before consumers see it; 0: none */
    uint64_t ttl_ms;   /* --ttl: never delivered after this long; 0: no limit */
    const char *const *messages; /* message words; message_count 0: one per line from stdin */
    uint32_t message_count;
    /* consume */
    int partition_set;
    uint32_t partition;
    enum cli_start start;
    uint64_t offset;
    uint64_t count; /* 0: no limit */
    int follow;
    int format_set;
    struct cli_format format; /* "%v\n" unless --format */
    /* consume --group (and the group commands: group is their NAME) */
    const char *group;     /* NULL: no group */
    uint8_t mode;          /* enum proto_group_mode; default queue */
    const char *member;    /* --member: the member's name (pub/sub: its cursor) */
    uint8_t strategy;      /* enum proto_group_strategy; default sticky */
    uint64_t session_ms;
    /* group reset-offsets */
    enum cli_reset reset;
    /* broker decommission */
    uint32_t broker;
    /* the words that are not flags (command, arguments, messages), in order */
    uint32_t word_count;
    const char *words[CLI_WORDS_MAX];
};

/* Parses argv[1..argc). Returns 0 with *a filled (defaults where nothing was given), or RQ_EINVAL
 * with err naming what is wrong (the caller exits CLI_EXIT_USAGE). */
int cli_args_parse(struct cli_args *a, int argc, char *const *argv, char *err, size_t cap);

/* "500ms", "30s", "10m", "2h", "7d", or a plain number of milliseconds. 0 or RQ_EINVAL. */
int cli_parse_duration_ms(const char *s, uint64_t *out_ms);

/* A decimal number in [min, max] (no sign, no spaces, no leading '+'). 0 or RQ_EINVAL. */
int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* "host:port" ("[v6]:port"), port 1..65535, host non-empty, shorter than CLI_ADDRESS_MAX. */
int cli_address_valid(const char *s);

/* Compiles a --format string: %o %p %k %v %t %T %% and the escapes \n \t \\. 0, or RQ_EINVAL
 * with err naming the bad sequence. */
int cli_format_parse(struct cli_format *f, const char *s, char *err, size_t cap);

/* Renders r into buf[0..cap) (not NUL-terminated) and returns the length the whole rendering
 * needs; buf holds all of it only when that is <= cap (snprintf's contract, without the NUL). */
size_t cli_format_render(const struct cli_format *f, const struct cli_record_view *r, char *buf,
                         size_t cap);

/* Writes s[0..size) as the inside of a JSON string (", \ and control bytes escaped; other bytes,
 * UTF-8 or not, as they are) into buf[0..cap); returns the length it needs (at most 6 * size). */
size_t cli_json_escape(const uint8_t *s, size_t size, char *buf, size_t cap);

/* The defaults of topic create for a cluster of `brokers` brokers: 3 partitions and a
 * replication of 3, fewer when the cluster has fewer brokers (never below 1). */
/* The brokers a metadata answer lists that are members (not marked decommissioned): what the
 * defaults below count. */
uint32_t cli_members(const struct proto_metadata_resp *m);
uint32_t cli_default_partitions(uint32_t brokers);
uint32_t cli_default_replication(uint32_t brokers);

/* "RQ_ETOPICEXISTS" for RQ_ETOPICEXISTS, ... ("RQ_OK" for 0, "RQ_E?" for an unknown code). */
const char *cli_error_name(int code);

/* The usage text (ends with a newline). */
const char *cli_usage(void);

#endif
