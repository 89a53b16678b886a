/* raftq's command line and output helpers; see cli_args.h. One table names every flag, the
 * commands it belongs to and how its value is read, so every flag is checked by the same code. */
#include "cmd/cli_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "broker/ttl.h"
#include "cmd/cmd_error.h"
#include "io/io.h"
#include "proto/frame.h"
#include "proto/msg.h"

static const char USAGE[] =
    "usage: raftq [--bootstrap HOST:PORT[,HOST:PORT...]] [--json] [--timeout DURATION] COMMAND\n"
    "\n"
    "commands:\n"
    "  topic create NAME [--partitions N] [--replication R] [--retention DURATION]\n"
    "                    [--retention-bytes N] [--max-message-bytes N]\n"
    "  topic delete NAME\n"
    "  topic list\n"
    "  topic describe NAME\n"
    "  produce TOPIC [--key K] [--acks all|1|0] [--idempotent] [--delay DURATION]\n"
    "                [--ttl DURATION] [MESSAGE...]\n"
    "                (no MESSAGE: one message per non-empty line of standard input)\n"
    "  consume TOPIC [--partition P] [--from-beginning | --offset N] [--count N] [--follow]\n"
    "                [--format FMT | --json]\n"
    "  consume TOPIC --group G [--mode queue|pubsub] [--member NAME] [--strategy sticky|range]\n"
    "                [--session DURATION] [--from-beginning] [--count N] [--follow] [...]\n"
    "  group list\n"
    "  group describe GROUP [--topic TOPIC] [--member NAME]\n"
    "  group reset-offsets GROUP --topic TOPIC (--to-earliest | --to-latest | --offset N)\n"
    "                [--partition P] [--member NAME]\n"
    "  cluster status\n"
    "  broker decommission ID\n"
    "\n"
    "global flags:\n"
    "  --bootstrap  servers to ask first (default " CLI_BOOTSTRAP_DEFAULT ")\n"
    "  --json       machine-readable output: one JSON object per line\n"
    "  --timeout    the longest wait for the cluster to answer or make progress (default 10s)\n"
    "durations: 500ms, 30s, 10m, 2h, 7d, or a number of milliseconds\n"
    "\n"
    "topic create defaults: 3 partitions and replication 3 (fewer on a smaller cluster),\n"
    "  retention 7d (0: forever), no byte limit, messages up to 60 KiB\n"
    "consume: starts at the end unless --from-beginning or --offset; without --follow it stops\n"
    "  at the end the partitions had when it started, or after --count messages; --follow runs\n"
    "  until --count, Ctrl-C or SIGTERM. --format fields: %o offset, %p partition, %k key,\n"
    "  %v value, %t timestamp (ms), %T topic, %% and \\n \\t \\\\ (default \"%v\\n\")\n"
    "produce --delay: consumers see the messages no earlier than DURATION later (by the\n"
    "  partition leader's clock), at most 366d; --ttl: never delivered once that long has\n"
    "  passed since it became visible (at most 366d)\n"
    "consume --group: partitions are shared among the group's members (queue, the default) or\n"
    "  every member gets every message (pubsub: --member names its own position); positions are\n"
    "  committed as it goes and it resumes there; a partition never committed starts at the\n"
    "  end, or the beginning with --from-beginning\n"
    "\n"
    "exit status: 0 ok; 1 an operation failed (the error is named, e.g. RQ_ETOPICEXISTS), or\n"
    "  produce: a message was not acknowledged; 2 bad usage; 3 no server answered within\n"
    "  --timeout\n";

const char *cli_usage(void) { return USAGE; }


/* ---- values ---------------------------------------------------------------------------------- */

int cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
    if (s == NULL || s[0] == '\0') return RQ_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 20) return RQ_EINVAL;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return RQ_EINVAL;
        v = v * 10 + d;
    }
    if (v < min || v > max) return RQ_EINVAL;
    *out = v;
    return 0;
}

int cli_parse_duration_ms(const char *s, uint64_t *out_ms) {
    static const struct {
        const char *suffix;
        uint64_t ms;
    } UNITS[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"", 1}};
    if (s == NULL) return RQ_EINVAL;
    size_t digits = 0;
    while (s[digits] >= '0' && s[digits] <= '9')
        digits++;
    if (digits == 0 || digits > 19) return RQ_EINVAL;
    char num[20];
    memcpy(num, s, digits);
    num[digits] = '\0';
    uint64_t v = 0;
    if (cli_parse_u64(num, 0, UINT64_MAX, &v) != 0) return RQ_EINVAL;
    for (size_t i = 0; i < sizeof UNITS / sizeof UNITS[0]; i++) {
        if (strcmp(s + digits, UNITS[i].suffix) != 0) continue;
        if (v > UINT64_MAX / UNITS[i].ms) return RQ_EINVAL;
        *out_ms = v * UNITS[i].ms;
        return 0;
    }
    return RQ_EINVAL;
}

int cli_address_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= CLI_ADDRESS_MAX) return 0;
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s) return 0;
    if (s[0] == '[' && (colon[-1] != ']' || colon - s < 3)) return 0;
    if (s[0] != '[' && memchr(s, ':', (size_t)(colon - s)) != NULL) return 0; /* bare v6 */
    for (const char *p = s; p < colon; p++)
        if (*p == ',' || *p == ' ' || *p == '/') return 0;
    uint64_t port = 0;
    return cli_parse_u64(colon + 1, 1, 65535, &port) == 0;
}

/* --bootstrap: a comma-separated list of addresses. */
static int parse_bootstrap(struct cli_args *a, const char *v, char *err, size_t cap) {
    a->bootstrap_count = 0;
    const char *p = v;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (a->bootstrap_count == CLI_BOOTSTRAP_MAX)
            return cmd_fail(err, cap, "--bootstrap: more than %d addresses", CLI_BOOTSTRAP_MAX);
        char *dst = a->bootstrap[a->bootstrap_count];
        if (n >= CLI_ADDRESS_MAX) return cmd_fail(err, cap, "--bootstrap: address too long");
        memcpy(dst, p, n);
        dst[n] = '\0';
        if (!cli_address_valid(dst))
            return cmd_fail(err, cap, "--bootstrap: '%s' is not HOST:PORT (port 1..65535)", dst);
        a->bootstrap_count++;
        if (end == NULL) return 0;
        p = end + 1;
    }
}

/* ---- the flag table -------------------------------------------------------------------------- */

#define ALL_COMMANDS 0xffffu
#define CMD(c)       (1u << (c))

enum flag_kind { F_SWITCH, F_U32, F_U64, F_DURATION, F_STRING, F_SPECIAL };

struct flag {
    const char *name;
    unsigned commands; /* CMD() bits of the commands that take it */
    enum flag_kind kind;
    size_t offset; /* into struct cli_args, for the plain kinds */
    uint64_t min, max;
};

#define AT(field) offsetof(struct cli_args, field)

static const struct flag FLAGS[] = {
    {"--bootstrap", ALL_COMMANDS, F_SPECIAL, 0, 0, 0},
    {"--json", ALL_COMMANDS, F_SWITCH, AT(json), 0, 0},
    {"--timeout", ALL_COMMANDS, F_DURATION, AT(timeout_ms), 1, CLI_TIMEOUT_MS_MAX},
    {"--partitions", CMD(CLI_TOPIC_CREATE), F_U32, AT(partitions), 1, PROTO_PARTITIONS_MAX},
    {"--replication", CMD(CLI_TOPIC_CREATE), F_U32, AT(replication), 1, PROTO_REPLICAS_MAX},
    {"--retention", CMD(CLI_TOPIC_CREATE), F_DURATION, AT(retention_ms), 0, UINT64_MAX},
    {"--retention-bytes", CMD(CLI_TOPIC_CREATE), F_U64, AT(retention_bytes), 0, UINT64_MAX},
    {"--max-message-bytes", CMD(CLI_TOPIC_CREATE), F_U32, AT(max_message_bytes), 1, RQ_MSG_MAX},
    {"--key", CMD(CLI_PRODUCE), F_STRING, AT(key), 0, 0},
    {"--acks", CMD(CLI_PRODUCE), F_SPECIAL, 0, 0, 0},
    {"--idempotent", CMD(CLI_PRODUCE), F_SWITCH, AT(idempotent), 0, 0},
    {"--delay", CMD(CLI_PRODUCE), F_DURATION, AT(delay_ms), 1, PROTO_DELAY_MS_MAX},
    {"--ttl", CMD(CLI_PRODUCE), F_DURATION, AT(ttl_ms), 1, PROTO_TTL_MS_MAX},
    {"--partition", CMD(CLI_CONSUME) | CMD(CLI_GROUP_RESET), F_SPECIAL, 0, 0,
     PROTO_PARTITIONS_MAX - 1},
    {"--from-beginning", CMD(CLI_CONSUME), F_SWITCH, 0, 0, 0},
    {"--offset", CMD(CLI_CONSUME) | CMD(CLI_GROUP_RESET), F_SPECIAL, 0, 0, CLI_OFFSET_MAX},
    {"--count", CMD(CLI_CONSUME), F_U64, AT(count), 1, UINT64_MAX},
    {"--follow", CMD(CLI_CONSUME), F_SWITCH, AT(follow), 0, 0},
    {"--format", CMD(CLI_CONSUME), F_SPECIAL, 0, 0, 0},
    {"--group", CMD(CLI_CONSUME), F_STRING, AT(group), 0, 0},
    {"--mode", CMD(CLI_CONSUME), F_SPECIAL, 0, 0, 0},
    {"--member", CMD(CLI_CONSUME) | CMD(CLI_GROUP_RESET) | CMD(CLI_GROUP_DESCRIBE), F_STRING,
     AT(member), 0, 0},
    {"--strategy", CMD(CLI_CONSUME), F_SPECIAL, 0, 0, 0},
    {"--session", CMD(CLI_CONSUME), F_DURATION, AT(session_ms), PROTO_SESSION_MS_MIN,
     PROTO_SESSION_MS_MAX},
    {"--topic", CMD(CLI_GROUP_RESET) | CMD(CLI_GROUP_DESCRIBE), F_STRING, AT(topic), 0, 0},
    {"--to-earliest", CMD(CLI_GROUP_RESET), F_SWITCH, 0, 0, 0},
    {"--to-latest", CMD(CLI_GROUP_RESET), F_SWITCH, 0, 0, 0},
};
enum { FLAGS_COUNT = sizeof FLAGS / sizeof FLAGS[0], WORDS_MAX = 4 };

static const struct flag *flag_find(const char *name) {
    for (int i = 0; i < FLAGS_COUNT; i++)
        if (strcmp(FLAGS[i].name, name) == 0) return &FLAGS[i];
    return NULL;
}

/* The flags whose value needs more than storing: --bootstrap, --acks, --partition, --offset,
 * --format, --from-beginning. */
static int apply_special(struct cli_args *a, const struct flag *f, const char *v, char *err,
                         size_t cap) {
    uint64_t n = 0;
    if (strcmp(f->name, "--bootstrap") == 0) return parse_bootstrap(a, v, err, cap);
    if (strcmp(f->name, "--acks") == 0) {
        if (strcmp(v, "all") == 0 || strcmp(v, "-1") == 0)
            a->acks = PROTO_ACKS_ALL;
        else if (strcmp(v, "1") == 0)
            a->acks = PROTO_ACKS_LEADER;
        else if (strcmp(v, "0") == 0)
            a->acks = PROTO_ACKS_NONE;
        else
            return cmd_fail(err, cap, "--acks: '%s' is not all, 1 or 0", v);
        return 0;
    }
    if (strcmp(f->name, "--format") == 0) {
        a->format_set = 1;
        return cli_format_parse(&a->format, v, err, cap);
    }
    if (strcmp(f->name, "--mode") == 0) {
        if (strcmp(v, "queue") == 0) a->mode = PROTO_MODE_QUEUE;
        else if (strcmp(v, "pubsub") == 0) a->mode = PROTO_MODE_PUBSUB;
        else return cmd_fail(err, cap, "--mode: '%s' is not queue or pubsub", v);
        return 0;
    }
    if (strcmp(f->name, "--strategy") == 0) {
        if (strcmp(v, "sticky") == 0) a->strategy = PROTO_STRATEGY_STICKY;
        else if (strcmp(v, "range") == 0) a->strategy = PROTO_STRATEGY_RANGE;
        else return cmd_fail(err, cap, "--strategy: '%s' is not sticky or range", v);
        return 0;
    }
    if (cli_parse_u64(v, f->min, f->max, &n) != 0)
        return cmd_fail(err, cap, "%s: '%s' is not a number in %llu..%llu", f->name, v,
                    (unsigned long long)f->min, (unsigned long long)f->max);
    if (strcmp(f->name, "--partition") == 0) {
        a->partition_set = 1;
        a->partition = (uint32_t)n;
    } else {
        a->start = CLI_START_OFFSET;
        a->reset = CLI_RESET_OFFSET;   /* group reset-offsets --offset */
        a->offset = n;
    }
    return 0;
}

static int apply_flag(struct cli_args *a, const struct flag *f, const char *v, char *err,
                      size_t cap) {
    char *base = (char *)a;
    uint64_t n = 0;
    switch (f->kind) {
    case F_SWITCH:
        if (strcmp(f->name, "--from-beginning") == 0)
            a->start = CLI_START_BEGINNING;
        else if (strcmp(f->name, "--to-earliest") == 0)
            a->reset = CLI_RESET_EARLIEST;
        else if (strcmp(f->name, "--to-latest") == 0)
            a->reset = CLI_RESET_LATEST;
        else
            *(int *)(base + f->offset) = 1;
        return 0;
    case F_STRING: *(const char **)(base + f->offset) = v; return 0;
    case F_SPECIAL: return apply_special(a, f, v, err, cap);
    case F_DURATION:
        if (cli_parse_duration_ms(v, &n) != 0 || n < f->min || n > f->max)
            return f->max == UINT64_MAX
                       ? cmd_fail(err, cap, "%s: '%s' is not a duration (500ms, 30s, 10m, 2h, 7d)",
                                  f->name, v)
                       : cmd_fail(err, cap,
                                  "%s: '%s' is not a duration (500ms, 30s, 10m, 2h, 7d) from %llu "
                                  "to %llu ms", f->name, v, (unsigned long long)f->min,
                                  (unsigned long long)f->max);
        *(uint64_t *)(base + f->offset) = n;
        return 0;
    case F_U32:
    case F_U64:
        if (cli_parse_u64(v, f->min, f->max, &n) != 0)
            return cmd_fail(err, cap, "%s: '%s' is not a number in %llu..%llu", f->name, v,
                        (unsigned long long)f->min, (unsigned long long)f->max);
        if (f->kind == F_U32)
            *(uint32_t *)(base + f->offset) = (uint32_t)n;
        else
            *(uint64_t *)(base + f->offset) = n;
        return 0;
    }
    return RQ_EINVAL;
}

/* ---- the command words ----------------------------------------------------------------------- */

struct command_form {
    const char *word1, *word2; /* word2 NULL: a one-word command */
    enum cli_command command;
    int takes_name; /* 1: NAME/TOPIC/ID follows; 2: TOPIC and any number of messages */
};

static const struct command_form FORMS[] = {
    {"topic", "create", CLI_TOPIC_CREATE, 1},
    {"topic", "delete", CLI_TOPIC_DELETE, 1},
    {"topic", "list", CLI_TOPIC_LIST, 0},
    {"topic", "describe", CLI_TOPIC_DESCRIBE, 1},
    {"produce", NULL, CLI_PRODUCE, 2},
    {"consume", NULL, CLI_CONSUME, 1},
    {"cluster", "status", CLI_CLUSTER_STATUS, 0},
    {"broker", "decommission", CLI_BROKER_DECOMMISSION, 1},
    {"group", "list", CLI_GROUP_LIST, 0},
    {"group", "describe", CLI_GROUP_DESCRIBE, 1},
    {"group", "reset-offsets", CLI_GROUP_RESET, 1},
};
enum { FORMS_COUNT = sizeof FORMS / sizeof FORMS[0] };

static int topic_check(const char *name, char *err, size_t cap) {
    if (proto_topic_name_valid((const uint8_t *)name, strlen(name))) return 0;
    return cmd_fail(err, cap,
                "'%s' is not a topic name (1..%d bytes of A-Z a-z 0-9 . _ -, not . or ..)", name,
                PROTO_TOPIC_NAME_MAX);
}

/* words[0..count) are the non-flag words; messages (produce) are every word after the topic. */
static int apply_words(struct cli_args *a, const char *const *words, uint32_t count, char *err,
                       size_t cap) {
    if (count == 0) return cmd_fail(err, cap, "no command given (try --help)");
    const struct command_form *form = NULL;
    for (int i = 0; i < FORMS_COUNT && form == NULL; i++) {
        if (strcmp(FORMS[i].word1, words[0]) != 0) continue;
        if (FORMS[i].word2 == NULL || (count > 1 && strcmp(FORMS[i].word2, words[1]) == 0))
            form = &FORMS[i];
    }
    if (form == NULL && count > 1 &&
        (strcmp(words[0], "topic") == 0 || strcmp(words[0], "cluster") == 0 ||
         strcmp(words[0], "broker") == 0 || strcmp(words[0], "group") == 0))
        return cmd_fail(err, cap, "unknown command '%s %s'", words[0], words[1]);
    if (form == NULL) return cmd_fail(err, cap, "unknown command '%s'", words[0]);
    a->command = form->command;
    uint32_t used = form->word2 ? 2 : 1;
    if (form->takes_name == 0 && count > used)
        return cmd_fail(err, cap, "unexpected argument '%s'", words[used]);
    if (form->takes_name == 0) return 0;
    if (count == used)
        return cmd_fail(err, cap, "'%s' needs its %s", words[0],
                        form->command == CLI_BROKER_DECOMMISSION ? "broker ID"
                        : words[0][0] == 'g'                     ? "group name"
                                                                 : "topic name");
    if (form->takes_name == 1 && count > used + 1)
        return cmd_fail(err, cap, "unexpected argument '%s'", words[used + 1]);
    if (form->command == CLI_BROKER_DECOMMISSION) {
        uint64_t id = 0;
        if (cli_parse_u64(words[used], 1, RQ_NODE_ID_MAX, &id) != 0)
            return cmd_fail(err, cap, "broker ID '%s' is not a number in 1..%d", words[used],
                        RQ_NODE_ID_MAX);
        a->broker = (uint32_t)id;
        return 0;
    }
    if (form->command == CLI_GROUP_DESCRIBE || form->command == CLI_GROUP_RESET) {
        a->group = words[used];
        return 0;   /* checked with the flags */
    }
    a->topic = words[used];
    a->messages = words + used + 1;
    a->message_count = count - used - 1;
    return topic_check(a->topic, err, cap);
}

/* ---- the whole line -------------------------------------------------------------------------- */

static void defaults(struct cli_args *a) {
    memset(a, 0, sizeof *a);
    snprintf(a->bootstrap[0], CLI_ADDRESS_MAX, "%s", CLI_BOOTSTRAP_DEFAULT);
    a->bootstrap_count = 1;
    a->timeout_ms = CLI_TIMEOUT_MS_DEFAULT;
    a->retention_ms = CLI_RETENTION_MS_DEFAULT;
    a->max_message_bytes = CLI_MAX_MESSAGE_BYTES_DEFAULT;
    a->acks = PROTO_ACKS_ALL;
    a->mode = PROTO_MODE_QUEUE;
    a->strategy = PROTO_STRATEGY_STICKY;
    a->session_ms = CLI_SESSION_MS_DEFAULT;
    char unused[1];
    int rc = cli_format_parse(&a->format, "%v\\n", unused, sizeof unused);
    (void)rc;
}

static int name_check(const char *what, const char *name, size_t max, char *err, size_t cap) {
    if (proto_group_name_valid((const uint8_t *)name, strlen(name), max)) return 0;
    return cmd_fail(err, cap, "%s '%s' is not a name (1..%zu bytes of A-Z a-z 0-9 . _ -)", what,
                    name, max);
}

static int given_flag(const unsigned char *given, const char *name) {
    return given[flag_find(name) - FLAGS];
}

/* The rules of the group flags: consume --group, and the group commands' names. */
static int check_group_flags(const struct cli_args *a, const unsigned char *given, char *err,
                             size_t cap) {
    static const char *const needs_group[] = {"--mode", "--member", "--strategy", "--session"};
    if (a->command == CLI_CONSUME && a->group == NULL) {
        for (size_t i = 0; i < sizeof needs_group / sizeof needs_group[0]; i++)
            if (given_flag(given, needs_group[i]))
                return cmd_fail(err, cap, "%s needs --group", needs_group[i]);
        return 0;
    }
    if (a->group != NULL && name_check("group", a->group, PROTO_GROUP_NAME_MAX, err, cap))
        return RQ_EINVAL;
    if (a->member != NULL && name_check("member", a->member, PROTO_MEMBER_NAME_MAX, err, cap))
        return RQ_EINVAL;
    if (a->command == CLI_CONSUME) {
        if (a->partition_set || given_flag(given, "--offset"))
            return cmd_fail(err, cap, "--group assigns the partitions and starts at the group's "
                                      "offsets: not with --partition or --offset");
        if (a->mode == PROTO_MODE_PUBSUB && a->member == NULL)
            return cmd_fail(err, cap, "--mode pubsub needs --member NAME (its own position)");
    }
    if (a->topic != NULL && a->group != NULL && topic_check(a->topic, err, cap) != 0)
        return RQ_EINVAL;
    if (a->command == CLI_GROUP_RESET) {
        if (a->topic == NULL) return cmd_fail(err, cap, "group reset-offsets needs --topic");
        int ways = given_flag(given, "--to-earliest") + given_flag(given, "--to-latest") +
                   given_flag(given, "--offset");
        if (ways != 1)
            return cmd_fail(err, cap, "group reset-offsets needs one of --to-earliest, "
                                      "--to-latest or --offset N");
    }
    return 0;
}

/* Checks that every flag given belongs to the command, then the rules between flags. */
static int check_combination(const struct cli_args *a, const unsigned char *given, char *err,
                             size_t cap) {
    for (int i = 0; i < FLAGS_COUNT; i++)
        if (given[i] && !(FLAGS[i].commands & CMD(a->command)))
            return cmd_fail(err, cap, "%s does not apply to this command", FLAGS[i].name);
    int from_beginning = given[flag_find("--from-beginning") - FLAGS];
    int offset = given[flag_find("--offset") - FLAGS];
    if (from_beginning && offset)
        return cmd_fail(err, cap, "--from-beginning and --offset exclude each other");
    if (a->idempotent && a->acks != PROTO_ACKS_ALL)
        return cmd_fail(err, cap, "--idempotent needs --acks all");
    if (a->delay_ms && (a->idempotent || a->acks != PROTO_ACKS_ALL))
        return cmd_fail(err, cap, "--delay: delayed messages are sent with acks all and are not "
                                  "deduplicated (no --idempotent, no --acks 1|0)");
    if (a->format_set && a->json) return cmd_fail(err, cap, "--format and --json exclude each other");
    int rc = check_group_flags(a, given, err, cap);
    if (rc != 0) return rc;
    if (a->key != NULL && strlen(a->key) > CLI_KEY_MAX)
        return cmd_fail(err, cap, "--key: longer than %d bytes", CLI_KEY_MAX);
    return 0;
}

/* One word of the line: a flag (with its value) or a word of the command. */
static int take_flag(struct cli_args *a, unsigned char *given, int argc, char *const *argv, int *i,
                     char *err, size_t cap) {
    const char *w = argv[*i];
    const struct flag *f = flag_find(w);
    if (f == NULL) return cmd_fail(err, cap, "unknown flag %s", w);
    if (given[f - FLAGS]) return cmd_fail(err, cap, "%s given twice", w);
    given[f - FLAGS] = 1;
    const char *v = NULL;
    if (f->kind != F_SWITCH) {
        if (*i + 1 >= argc) return cmd_fail(err, cap, "%s needs a value", w);
        *i += 1;
        v = argv[*i];
    }
    return apply_flag(a, f, v, err, cap);
}

int cli_args_parse(struct cli_args *a, int argc, char *const *argv, char *err, size_t cap) {
    defaults(a);
    unsigned char given[FLAGS_COUNT] = {0};
    int flags_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        if (!flags_done && (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0)) {
            a->help = 1;
            return 0;
        }
        if (!flags_done && strcmp(w, "--") == 0) {
            flags_done = 1;
        } else if (flags_done || strncmp(w, "--", 2) != 0) {
            if (a->word_count == CLI_WORDS_MAX)
                return cmd_fail(err, cap, "more than %d words (give messages on standard input)",
                            CLI_WORDS_MAX);
            a->words[a->word_count++] = w;
        } else {
            int rc = take_flag(a, given, argc, argv, &i, err, cap);
            if (rc != 0) return rc;
        }
    }
    int rc = apply_words(a, a->words, a->word_count, err, cap);
    if (rc != 0) return rc;
    return check_combination(a, given, err, cap);
}

/* ---- --format -------------------------------------------------------------------------------- */

static int format_add_text(struct cli_format *f, uint32_t *text_size, char c) {
    if (*text_size >= CLI_FORMAT_TEXT_MAX) return RQ_EINVAL;
    struct cli_format_piece *last = f->piece_count ? &f->pieces[f->piece_count - 1] : NULL;
    if (last == NULL || last->field != CLI_FIELD_TEXT) {
        if (f->piece_count == CLI_FORMAT_PIECES_MAX) return RQ_EINVAL;
        last = &f->pieces[f->piece_count++];
        *last = (struct cli_format_piece){CLI_FIELD_TEXT, (uint16_t)*text_size, 0};
    }
    f->text[(*text_size)++] = c;
    last->text_size++;
    return 0;
}

static int format_add_field(struct cli_format *f, enum cli_field field) {
    if (f->piece_count == CLI_FORMAT_PIECES_MAX) return RQ_EINVAL;
    f->pieces[f->piece_count++] = (struct cli_format_piece){(uint8_t)field, 0, 0};
    return 0;
}

int cli_format_parse(struct cli_format *f, const char *s, char *err, size_t cap) {
    memset(f, 0, sizeof *f);
    uint32_t text_size = 0;
    if (strlen(s) >= CLI_FORMAT_TEXT_MAX)
        return cmd_fail(err, cap, "--format: longer than %d bytes", CLI_FORMAT_TEXT_MAX - 1);
    for (size_t i = 0; s[i] != '\0'; i++) {
        int rc = 0;
        char c = s[i], next = s[i + 1];
        if (c == '%') {
            const char *fields = "opkvtT";
            const char *at = next != '\0' ? strchr(fields, next) : NULL;
            if (next == '%')
                rc = format_add_text(f, &text_size, '%');
            else if (at != NULL)
                rc = format_add_field(f, (enum cli_field)(at - fields + 1));
            else
                return cmd_fail(err, cap,
                            "--format: unknown field '%%%c' (%%o %%p %%k %%v %%t %%T %%%%)",
                            next != '\0' ? next : ' ');
            i++;
        } else if (c == '\\') {
            if (next == 'n')
                rc = format_add_text(f, &text_size, '\n');
            else if (next == 't')
                rc = format_add_text(f, &text_size, '\t');
            else if (next == '\\')
                rc = format_add_text(f, &text_size, '\\');
            else
                return cmd_fail(err, cap, "--format: unknown escape '\\%c' (\\n \\t \\\\)",
                            next != '\0' ? next : ' ');
            i++;
        } else {
            rc = format_add_text(f, &text_size, c);
        }
        if (rc != 0) return cmd_fail(err, cap, "--format: more than %d fields", CLI_FORMAT_PIECES_MAX);
    }
    return 0;
}

/* Appends src[0..n) at *len, as far as cap allows; *len counts what the whole needs. */
static void put(char *buf, size_t cap, size_t *len, const void *src, size_t n) {
    if (*len < cap) memcpy(buf + *len, src, n < cap - *len ? n : cap - *len);
    *len += n;
}

size_t cli_format_render(const struct cli_format *f, const struct cli_record_view *r, char *buf,
                         size_t cap) {
    size_t len = 0;
    for (uint32_t i = 0; i < f->piece_count; i++) {
        const struct cli_format_piece *p = &f->pieces[i];
        char num[24];
        int n = 0;
        switch ((enum cli_field)p->field) {
        case CLI_FIELD_TEXT: put(buf, cap, &len, f->text + p->text_offset, p->text_size); break;
        case CLI_FIELD_KEY: put(buf, cap, &len, r->key, r->key_size); break;
        case CLI_FIELD_VALUE: put(buf, cap, &len, r->value, r->value_size); break;
        case CLI_FIELD_TOPIC: put(buf, cap, &len, r->topic, strlen(r->topic)); break;
        case CLI_FIELD_OFFSET:
            n = snprintf(num, sizeof num, "%llu", (unsigned long long)r->offset);
            break;
        case CLI_FIELD_PARTITION:
            n = snprintf(num, sizeof num, "%u", (unsigned)r->partition);
            break;
        case CLI_FIELD_TIMESTAMP:
            n = snprintf(num, sizeof num, "%llu", (unsigned long long)(r->timestamp_ns / 1000000u));
            break;
        }
        if (n > 0) put(buf, cap, &len, num, (size_t)n);
    }
    return len;
}

/* ---- JSON, error names, defaults ------------------------------------------------------------- */

size_t cli_json_escape(const uint8_t *s, size_t size, char *buf, size_t cap) {
    size_t len = 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t c = s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(buf, cap, &len, esc, 2);
        } else if (c == '\n') {
            put(buf, cap, &len, "\\n", 2);
        } else if (c == '\t') {
            put(buf, cap, &len, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(buf, cap, &len, esc, 6);
        } else {
            put(buf, cap, &len, &c, 1);
        }
    }
    return len;
}

uint32_t cli_members(const struct proto_metadata_resp *m) {
    uint32_t members = 0;
    size_t cursor = 0;
    struct proto_broker b;
    while (proto_broker_next(m, &cursor, &b)) members += !(b.flags & PROTO_BROKER_DECOMMISSIONED);
    RQ_ASSERT(members <= m->broker_count);
    return members;
}

uint32_t cli_default_partitions(uint32_t brokers) {
    if (brokers == 0) return 1;
    return brokers < CLI_PARTITIONS_DEFAULT ? brokers : CLI_PARTITIONS_DEFAULT;
}

uint32_t cli_default_replication(uint32_t brokers) {
    if (brokers == 0) return 1;
    return brokers < CLI_REPLICATION_DEFAULT ? brokers : CLI_REPLICATION_DEFAULT;
}

const char *cli_error_name(int code) {
    static const char *const NAMES[] = {
        "RQ_OK",         "RQ_EIO",      "RQ_ENOSPC", "RQ_ENOENT",   "RQ_EEXIST",
        "RQ_EBADF",      "RQ_EINVAL",   "RQ_ETRUNC", "RQ_ECORRUPT", "RQ_ETOOBIG",
        "RQ_EBUSY",      "RQ_ENOMEM",   "RQ_ERANGE", "RQ_EMFILE",   "RQ_ECLOSED",
        "RQ_ENOTLEADER", "RQ_EVERSION", "RQ_ETYPE",  "RQ_ENOTOPIC", "RQ_ETOPICEXISTS",
        "RQ_ESEQUENCE",  "RQ_ETIMEOUT",   "RQ_EFENCED",    "RQ_ENOMEMBER",
    };
    _Static_assert(sizeof NAMES / sizeof NAMES[0] == 1 - RQ_ERROR_MIN, "one name per code");
    if (code > 0 || code < RQ_ERROR_MIN) return "RQ_E?";
    return NAMES[-code];
}
