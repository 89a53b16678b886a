/* raftq's command line (src/cmd/cli_args.c): every command and flag parsed, every bad input refused
 * with an error that names it (raftq then exits CLI_EXIT_USAGE), durations, --format strings, JSON
 * escaping, error names, and random words never crash the parser. Pure: no OS. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/errors.h"
#include "base/rng.h"
#include "cmd/cli_args.h"
#include "io/io.h"
#include "proto/msg.h"
#include "tests/unit/suite_main.h"

static char err[CLI_ERROR_MAX];
static struct cli_args a;

/* Parses "raftq " + line, split at spaces. */
static int parse(const char *line) {
    static char buf[2048];
    static char *argv[128];
    int argc = 0;
    argv[argc++] = "raftq";
    snprintf(buf, sizeof buf, "%s", line);
    for (char *tok = strtok(buf, " "); tok != NULL && argc < 128; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    err[0] = '\0';
    return cli_args_parse(&a, argc, argv, err, sizeof err);
}

START_TEST(defaults_without_flags) {
    ck_assert_int_eq(parse("cluster status"), 0);
    ck_assert_int_eq(a.command, CLI_CLUSTER_STATUS);
    ck_assert_uint_eq(a.bootstrap_count, 1);
    ck_assert_str_eq(a.bootstrap[0], "127.0.0.1:7001");
    ck_assert_int_eq(a.json, 0);
    ck_assert_uint_eq(a.timeout_ms, 10000);
    ck_assert_int_eq(a.help, 0);
    ck_assert_int_eq(parse("--help"), 0);
    ck_assert_int_eq(a.help, 1);
    ck_assert_int_eq(parse("topic create x -h"), 0);
    ck_assert_int_eq(a.help, 1);
    ck_assert_ptr_nonnull(strstr(cli_usage(), "exit status"));
}
END_TEST

START_TEST(global_flags_anywhere) {
    ck_assert_int_eq(parse("--bootstrap a:1,b.example:7002,[::1]:9 --json --timeout 2s topic list"),
                     0);
    ck_assert_int_eq(a.command, CLI_TOPIC_LIST);
    ck_assert_uint_eq(a.bootstrap_count, 3);
    ck_assert_str_eq(a.bootstrap[0], "a:1");
    ck_assert_str_eq(a.bootstrap[1], "b.example:7002");
    ck_assert_str_eq(a.bootstrap[2], "[::1]:9");
    ck_assert_int_eq(a.json, 1);
    ck_assert_uint_eq(a.timeout_ms, 2000);
    ck_assert_int_eq(parse("topic list --timeout 250 --json"), 0);
    ck_assert_uint_eq(a.timeout_ms, 250);
    ck_assert_int_eq(a.json, 1);
}
END_TEST

START_TEST(topic_commands) {
    ck_assert_int_eq(parse("topic create orders"), 0);
    ck_assert_int_eq(a.command, CLI_TOPIC_CREATE);
    ck_assert_str_eq(a.topic, "orders");
    ck_assert_uint_eq(a.partitions, 0); /* the cluster's default, decided later */
    ck_assert_uint_eq(a.replication, 0);
    ck_assert_uint_eq(a.retention_ms, CLI_RETENTION_MS_DEFAULT);
    ck_assert_uint_eq(a.retention_bytes, 0);
    ck_assert_uint_eq(a.max_message_bytes, CLI_MAX_MESSAGE_BYTES_DEFAULT);
    ck_assert_int_eq(parse("topic create o.1_x-y --partitions 12 --replication 2 --retention 30m "
                           "--retention-bytes 1000000 --max-message-bytes 4096"),
                     0);
    ck_assert_str_eq(a.topic, "o.1_x-y");
    ck_assert_uint_eq(a.partitions, 12);
    ck_assert_uint_eq(a.replication, 2);
    ck_assert_uint_eq(a.retention_ms, 30 * 60 * 1000);
    ck_assert_uint_eq(a.retention_bytes, 1000000);
    ck_assert_uint_eq(a.max_message_bytes, 4096);
    ck_assert_int_eq(parse("topic create t --retention 0"), 0);
    ck_assert_uint_eq(a.retention_ms, 0);
    ck_assert_int_eq(parse("topic delete orders"), 0);
    ck_assert_int_eq(a.command, CLI_TOPIC_DELETE);
    ck_assert_str_eq(a.topic, "orders");
    ck_assert_int_eq(parse("topic describe orders"), 0);
    ck_assert_int_eq(a.command, CLI_TOPIC_DESCRIBE);
    ck_assert_int_eq(parse("topic list"), 0);
    ck_assert_int_eq(a.command, CLI_TOPIC_LIST);
    ck_assert_int_eq(parse("broker decommission 4"), 0);
    ck_assert_int_eq(a.command, CLI_BROKER_DECOMMISSION);
    ck_assert_uint_eq(a.broker, 4);
}
END_TEST

START_TEST(produce_command) {
    ck_assert_int_eq(parse("produce orders"), 0);
    ck_assert_int_eq(a.command, CLI_PRODUCE);
    ck_assert_str_eq(a.topic, "orders");
    ck_assert_uint_eq(a.message_count, 0); /* stdin */
    ck_assert_ptr_null(a.key);
    ck_assert_uint_eq(a.acks, PROTO_ACKS_ALL);
    ck_assert_int_eq(a.idempotent, 0);
    ck_assert_int_eq(parse("produce orders one --key k7 two --acks 1 three"), 0);
    ck_assert_uint_eq(a.message_count, 3);
    ck_assert_str_eq(a.messages[0], "one");
    ck_assert_str_eq(a.messages[1], "two");
    ck_assert_str_eq(a.messages[2], "three");
    ck_assert_str_eq(a.key, "k7");
    ck_assert_uint_eq(a.acks, PROTO_ACKS_LEADER);
    ck_assert_int_eq(parse("produce orders --acks 0 x"), 0);
    ck_assert_uint_eq(a.acks, PROTO_ACKS_NONE);
    ck_assert_int_eq(parse("produce orders --acks all --idempotent x"), 0);
    ck_assert_uint_eq(a.acks, PROTO_ACKS_ALL);
    ck_assert_int_eq(a.idempotent, 1);
    /* "--" ends the flags: a message may start with dashes */
    ck_assert_int_eq(parse("produce orders -- --not-a-flag -x"), 0);
    ck_assert_uint_eq(a.message_count, 2);
    ck_assert_str_eq(a.messages[0], "--not-a-flag");
    ck_assert_str_eq(a.messages[1], "-x");
}
END_TEST

START_TEST(consume_command) {
    ck_assert_int_eq(parse("consume orders"), 0);
    ck_assert_int_eq(a.command, CLI_CONSUME);
    ck_assert_int_eq(a.start, CLI_START_END);
    ck_assert_int_eq(a.partition_set, 0);
    ck_assert_uint_eq(a.count, 0);
    ck_assert_int_eq(a.follow, 0);
    ck_assert_int_eq(a.format_set, 0);
    ck_assert_uint_eq(a.format.piece_count, 2); /* "%v\n" */
    ck_assert_int_eq(parse("consume orders --partition 2 --from-beginning --count 10 --follow"), 0);
    ck_assert_int_eq(a.partition_set, 1);
    ck_assert_uint_eq(a.partition, 2);
    ck_assert_int_eq(a.start, CLI_START_BEGINNING);
    ck_assert_uint_eq(a.count, 10);
    ck_assert_int_eq(a.follow, 1);
    ck_assert_int_eq(parse("consume orders --offset 42 --format %o:%v\\n"), 0);
    ck_assert_int_eq(a.start, CLI_START_OFFSET);
    ck_assert_uint_eq(a.offset, 42);
    ck_assert_int_eq(a.format_set, 1);
    ck_assert_int_eq(parse("consume orders --partition 0 --offset 0 --json"), 0);
    ck_assert_int_eq(a.partition_set, 1);
    ck_assert_uint_eq(a.partition, 0);
    ck_assert_int_eq(a.start, CLI_START_OFFSET);
    ck_assert_int_eq(a.json, 1);
}
END_TEST

START_TEST(group_commands) {
    ck_assert_int_eq(parse("consume orders --group billing"), 0);
    ck_assert_str_eq(a.group, "billing");
    ck_assert_int_eq(a.mode, PROTO_MODE_QUEUE);
    ck_assert_int_eq(a.strategy, PROTO_STRATEGY_STICKY);
    ck_assert_uint_eq(a.session_ms, CLI_SESSION_MS_DEFAULT);
    ck_assert_int_eq(parse("consume orders --group audit --mode pubsub --member m1 --strategy range "
                           "--session 3s --from-beginning --follow"),
                     0);
    ck_assert_int_eq(a.mode, PROTO_MODE_PUBSUB);
    ck_assert_str_eq(a.member, "m1");
    ck_assert_int_eq(a.strategy, PROTO_STRATEGY_RANGE);
    ck_assert_uint_eq(a.session_ms, 3000);
    ck_assert_int_eq(a.start, CLI_START_BEGINNING);
    ck_assert_int_eq(parse("group list"), 0);
    ck_assert_int_eq(a.command, CLI_GROUP_LIST);
    ck_assert_int_eq(parse("group describe billing --topic orders"), 0);
    ck_assert_int_eq(a.command, CLI_GROUP_DESCRIBE);
    ck_assert_str_eq(a.group, "billing");
    ck_assert_str_eq(a.topic, "orders");
    ck_assert_int_eq(parse("group reset-offsets billing --topic orders --to-earliest"), 0);
    ck_assert_int_eq(a.command, CLI_GROUP_RESET);
    ck_assert_int_eq(a.reset, CLI_RESET_EARLIEST);
    ck_assert_int_eq(parse("group reset-offsets billing --topic orders --offset 7 --partition 1"), 0);
    ck_assert_int_eq(a.reset, CLI_RESET_OFFSET);
    ck_assert_uint_eq(a.offset, 7);
    ck_assert_uint_eq(a.partition, 1);
    ck_assert_int_eq(parse("group reset-offsets audit --topic orders --to-latest --member m1"), 0);
    ck_assert_int_eq(a.reset, CLI_RESET_LATEST);
}
END_TEST

/* Each bad line is refused with RQ_EINVAL and an error that contains `names`. */
static const struct {
    const char *line;
    const char *names;
} BAD[] = {
    {"", "no command"},
    {"frobnicate", "unknown command 'frobnicate'"},
    {"topic", "unknown command 'topic'"},
    {"topic frob x", "unknown command 'topic frob'"},
    {"cluster", "unknown command 'cluster'"},
    {"cluster status extra", "unexpected argument 'extra'"},
    {"topic list extra", "unexpected argument 'extra'"},
    {"topic create", "topic name"},
    {"topic create a b", "unexpected argument 'b'"},
    {"topic describe", "topic name"},
    {"topic create bad/name", "'bad/name' is not a topic name"},
    {"topic create ..", "'..' is not a topic name"},
    {"broker decommission", "broker ID"},
    {"broker decommission 0", "broker ID '0'"},
    {"broker decommission 256", "broker ID '256'"},
    {"broker decommission x1", "broker ID 'x1'"},
    {"produce", "topic name"},
    {"consume", "topic name"},
    {"consume t extra", "unexpected argument 'extra'"},
    {"topic list --frob", "unknown flag --frob"},
    {"topic list --count=5", "unknown flag --count=5"},
    {"topic list --timeout", "--timeout needs a value"},
    {"topic list --bootstrap", "--bootstrap needs a value"},
    {"topic list --json --json", "--json given twice"},
    {"topic list --timeout 0", "--timeout: '0'"},
    {"topic list --timeout 5x", "--timeout: '5x'"},
    {"topic list --timeout 1.5s", "--timeout: '1.5s'"},
    {"topic list --timeout 2d", "--timeout: '2d'"},
    {"topic list --bootstrap host", "--bootstrap: 'host'"},
    {"topic list --bootstrap host:0", "--bootstrap: 'host:0'"},
    {"topic list --bootstrap host:65536", "--bootstrap: 'host:65536'"},
    {"topic list --bootstrap :7001", "--bootstrap: ':7001'"},
    {"topic list --bootstrap a:1,", "--bootstrap: ''"},
    {"topic list --bootstrap ::1:7001", "--bootstrap: '::1:7001'"},
    {"topic list --bootstrap "
     "a:1,a:2,a:3,a:4,a:5,a:6,a:7,a:8,a:9,a:10,a:11,a:12,a:13,a:14,a:15,a:16",
     "--bootstrap: more than 15 addresses"},
    {"topic create t --partitions 0", "--partitions: '0'"},
    {"topic create t --partitions 10001", "--partitions: '10001'"},
    {"topic create t --partitions -1", "--partitions: '-1'"},
    {"topic create t --partitions +3", "--partitions: '+3'"},
    {"topic create t --replication 10", "--replication: '10'"},
    {"topic create t --retention forever", "--retention: 'forever'"},
    {"topic create t --retention-bytes 1k", "--retention-bytes: '1k'"},
    {"topic create t --max-message-bytes 0", "--max-message-bytes: '0'"},
    {"topic create t --max-message-bytes 99999999", "--max-message-bytes: '99999999'"},
    {"topic create t --key k", "--key does not apply"},
    {"topic list --partitions 3", "--partitions does not apply"},
    {"produce t --acks 2", "--acks: '2'"},
    {"produce t --acks", "--acks needs a value"},
    {"produce t --acks 1 --idempotent", "--idempotent needs --acks all"},
    {"produce t --follow", "--follow does not apply"},
    {"produce t --partitions 3", "--partitions does not apply"},
    {"consume t --from-beginning --offset 3", "--from-beginning and --offset"},
    {"consume t --offset -1", "--offset: '-1'"},
    {"consume t --offset 99999999999999999999", "--offset: '99999999999999999999'"},
    {"consume t --partition x", "--partition: 'x'"},
    {"consume t --partition 10000", "--partition: '10000'"},
    {"consume t --count 0", "--count: '0'"},
    {"consume t --count", "--count needs a value"},
    {"consume t --format %v --json", "--format and --json"},
    {"consume t --format %x", "--format: unknown field '%x'"},
    {"consume t --format abc%", "--format: unknown field"},
    {"consume t --format \\q", "--format: unknown escape '\\q'"},
    {"consume t --key k", "--key does not apply"},
    {"cluster status --idempotent", "--idempotent does not apply"},
    {"consume t --mode queue", "--mode needs --group"},
    {"consume t --member m", "--member needs --group"},
    {"consume t --group g --mode fanout", "--mode: 'fanout'"},
    {"consume t --group g --strategy roundrobin", "--strategy: 'roundrobin'"},
    {"consume t --group g --mode pubsub", "--mode pubsub needs --member"},
    {"consume t --group g --partition 1", "not with --partition or --offset"},
    {"consume t --group g --offset 1", "not with --partition or --offset"},
    {"consume t --group g/x", "group 'g/x' is not a name"},
    {"consume t --group g --member a/b", "member 'a/b' is not a name"},
    {"consume t --group g --session 50ms", "--session: '50ms'"},
    {"group", "unknown command 'group'"},
    {"group frob", "unknown command 'group frob'"},
    {"group describe", "group name"},
    {"group list extra", "unexpected argument 'extra'"},
    {"group reset-offsets g --to-earliest", "needs --topic"},
    {"group reset-offsets g --topic t", "needs one of --to-earliest"},
    {"group reset-offsets g --topic t --to-earliest --to-latest", "needs one of"},
    {"group reset-offsets g --topic bad/t --to-latest", "'bad/t' is not a topic name"},
    {"group list --topic t", "--topic does not apply"},
};

START_TEST(bad_lines_are_refused_by_name) {
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        int rc = parse(BAD[i].line);
        if (rc != RQ_EINVAL || strstr(err, BAD[i].names) == NULL)
            ck_abort_msg("'%s': rc %d, error \"%s\", wanted \"%s\"", BAD[i].line, rc, err,
                         BAD[i].names);
    }
}
END_TEST

START_TEST(durations) {
    static const struct {
        const char *s;
        uint64_t ms;
    } OK[] = {{"0", 0},        {"1", 1},        {"500ms", 500},       {"30s", 30000},
              {"10m", 600000}, {"2h", 7200000}, {"7d", 604800000ull}, {"1500", 1500},
              {"0s", 0},       {"007s", 7000}};
    for (size_t i = 0; i < sizeof OK / sizeof OK[0]; i++) {
        uint64_t ms = 12345;
        ck_assert_int_eq(cli_parse_duration_ms(OK[i].s, &ms), 0);
        ck_assert_uint_eq(ms, OK[i].ms);
    }
    static const char *const BAD_DURATIONS[] = {"",
                                                "s",
                                                "ms",
                                                "1.5s",
                                                "-1s",
                                                "1 s",
                                                "1S",
                                                "1sec",
                                                "1w",
                                                "1y",
                                                "5msx",
                                                "s5",
                                                "+5",
                                                "99999999999999999999",
                                                "9999999999999999d"};
    for (size_t i = 0; i < sizeof BAD_DURATIONS / sizeof BAD_DURATIONS[0]; i++) {
        uint64_t ms = 0;
        if (cli_parse_duration_ms(BAD_DURATIONS[i], &ms) != RQ_EINVAL)
            ck_abort_msg("duration '%s' was taken", BAD_DURATIONS[i]);
    }
    uint64_t v = 0;
    ck_assert_int_eq(cli_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(cli_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), RQ_EINVAL);
    ck_assert_int_eq(cli_parse_u64("5", 6, 9, &v), RQ_EINVAL);
}
END_TEST

static size_t render(const char *fmt, char *out, size_t cap) {
    struct cli_format f;
    ck_assert_int_eq(cli_format_parse(&f, fmt, err, sizeof err), 0);
    static const uint8_t key[] = "k1", value[] = "hello";
    struct cli_record_view r = {.topic = "orders",
                                .partition = 2,
                                .offset = 41,
                                .timestamp_ns = 1700000000123456789ull,
                                .key = key,
                                .key_size = 2,
                                .value = value,
                                .value_size = 5};
    size_t n = cli_format_render(&f, &r, out, cap);
    if (n < cap) out[n] = '\0';
    return n;
}

START_TEST(format_strings) {
    char out[256];
    render("%v\\n", out, sizeof out);
    ck_assert_str_eq(out, "hello\n");
    render("%T/%p@%o %k=%v %t\\t100%%\\\\", out, sizeof out);
    ck_assert_str_eq(out, "orders/2@41 k1=hello 1700000000123\t100%\\");
    render("no fields", out, sizeof out);
    ck_assert_str_eq(out, "no fields");
    render("", out, sizeof out);
    ck_assert_str_eq(out, "");
    /* Too small a buffer: the length needed is still returned, nothing written past cap. */
    char small[8];
    memset(small, '#', sizeof small);
    ck_assert_uint_eq(render("%p@%o %v", small, 4), strlen("2@41 hello"));
    ck_assert_int_eq(memcmp(small, "2@41####", 8), 0);
    ck_assert_uint_eq(render("%v%v%v", NULL, 0), 15);
    /* Limits: the text bound and the piece bound. */
    char longfmt[CLI_FORMAT_TEXT_MAX + 8];
    memset(longfmt, 'a', sizeof longfmt - 1);
    longfmt[sizeof longfmt - 1] = '\0';
    struct cli_format f;
    ck_assert_int_eq(cli_format_parse(&f, longfmt, err, sizeof err), RQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--format"));
    char many[3 * CLI_FORMAT_PIECES_MAX + 8] = "";
    for (int i = 0; i < CLI_FORMAT_PIECES_MAX + 1; i++)
        strcat(many, "%o ");
    ck_assert_int_eq(cli_format_parse(&f, many, err, sizeof err), RQ_EINVAL);
}
END_TEST

START_TEST(json_escaping) {
    char out[64];
    static const uint8_t s[] = {'a', '"', '\\', '\n', '\t', 0x01, 0x7f, 0xc3, 0xa9, 0};
    size_t n = cli_json_escape(s, sizeof s, out, sizeof out);
    ck_assert_uint_eq(n, strlen("a\\\"\\\\\\n\\t\\u0001\\u007f\xc3\xa9\\u0000"));
    ck_assert_int_eq(memcmp(out, "a\\\"\\\\\\n\\t\\u0001\\u007f\xc3\xa9\\u0000", n), 0);
    ck_assert_uint_eq(cli_json_escape(s, sizeof s, NULL, 0), n);
    uint8_t worst[16];
    memset(worst, 0x02, sizeof worst);
    ck_assert_uint_eq(cli_json_escape(worst, sizeof worst, NULL, 0), 6 * sizeof worst);
}
END_TEST

START_TEST(defaults_follow_the_cluster_size_and_errors_have_names) {
    ck_assert_uint_eq(cli_default_partitions(0), 1);
    ck_assert_uint_eq(cli_default_partitions(1), 1);
    ck_assert_uint_eq(cli_default_partitions(2), 2);
    ck_assert_uint_eq(cli_default_partitions(3), 3);
    ck_assert_uint_eq(cli_default_partitions(9), 3);
    ck_assert_uint_eq(cli_default_replication(1), 1);
    ck_assert_uint_eq(cli_default_replication(2), 2);
    ck_assert_uint_eq(cli_default_replication(5), 3);
    ck_assert_str_eq(cli_error_name(0), "RQ_OK");
    ck_assert_str_eq(cli_error_name(RQ_ETOPICEXISTS), "RQ_ETOPICEXISTS");
    ck_assert_str_eq(cli_error_name(RQ_ENOTOPIC), "RQ_ENOTOPIC");
    ck_assert_str_eq(cli_error_name(RQ_ETIMEOUT), "RQ_ETIMEOUT");
    ck_assert_str_eq(cli_error_name(RQ_EIO), "RQ_EIO");
    ck_assert_str_eq(cli_error_name(RQ_ERROR_MIN - 1), "RQ_E?");
    ck_assert_str_eq(cli_error_name(5), "RQ_E?");
}
END_TEST

/* The defaults count the members a metadata answer lists: not a broker marked decommissioned
 * (3 brokers, one of them leaving: replication 2, 2 partitions; a version-1 answer marks none). */
START_TEST(defaults_count_no_decommissioned_broker) {
    struct proto_broker brokers[] = {{1, {(const uint8_t *)"a:1", 3}, 0},
                                     {2, {(const uint8_t *)"b:1", 3}, PROTO_BROKER_DECOMMISSIONED},
                                     {3, {(const uint8_t *)"c:1", 3}, 0}};
    uint8_t buf[128];
    struct proto_msg m;
    size_t n = proto_encode_metadata_resp_version(buf, sizeof buf, 2, 1, brokers, 3, NULL, 0, NULL);
    ck_assert_int_eq(proto_decode_version(2, PROTO_METADATA_RESP, buf, n, &m), 0);
    ck_assert_uint_eq(m.u.metadata_resp.broker_count, 3);
    ck_assert_uint_eq(cli_members(&m.u.metadata_resp), 2);
    ck_assert_uint_eq(cli_default_replication(cli_members(&m.u.metadata_resp)), 2);
    ck_assert_uint_eq(cli_default_partitions(cli_members(&m.u.metadata_resp)), 2);
    n = proto_encode_metadata_resp_version(buf, sizeof buf, 1, 1, brokers, 3, NULL, 0, NULL);
    ck_assert_int_eq(proto_decode_version(1, PROTO_METADATA_RESP, buf, n, &m), 0);
    ck_assert_uint_eq(cli_members(&m.u.metadata_resp), 3);
}
END_TEST

/* Random words (flags, values, garbage) never crash the parser, and what it takes is valid. */
START_TEST(random_lines_never_crash) {
    static const char *const WORDS[] = {
        "topic",
        "create",
        "delete",
        "list",
        "describe",
        "produce",
        "consume",
        "cluster",
        "status",
        "broker",
        "decommission",
        "--json",
        "--timeout",
        "--bootstrap",
        "--partitions",
        "--replication",
        "--retention",
        "--retention-bytes",
        "--max-message-bytes",
        "--key",
        "--acks",
        "--idempotent",
        "--partition",
        "--from-beginning",
        "--offset",
        "--count",
        "--follow",
        "--format",
        "--",
        "orders",
        "0",
        "1",
        "all",
        "7d",
        "%v",
        "%",
        "\\",
        "a:1",
        "3",
        "",
        "-",
        "x/y",
        "99999999999999999999999",
    };
    enum { WORD_COUNT = sizeof WORDS / sizeof WORDS[0] };
    struct rq_rng rng;
    rq_rng_seed(&rng, 7);
    int taken = 0;
    for (int iter = 0; iter < 20000; iter++) {
        char *argv[12] = {"raftq"};
        int argc = 1 + (int)rq_rng_below(&rng, 11);
        for (int i = 1; i < argc; i++)
            argv[i] = (char *)WORDS[rq_rng_below(&rng, WORD_COUNT)];
        if (cli_args_parse(&a, argc, argv, err, sizeof err) != 0) {
            ck_assert_uint_gt(strlen(err), 0);
            continue;
        }
        taken++;
        if (a.help) continue;
        ck_assert_int_ne(a.command, CLI_NONE);
        ck_assert_uint_ge(a.bootstrap_count, 1);
        ck_assert_uint_ge(a.timeout_ms, 1);
        if (a.idempotent) ck_assert_uint_eq(a.acks, PROTO_ACKS_ALL);
        if (a.topic != NULL)
            ck_assert(proto_topic_name_valid((const uint8_t *)a.topic, strlen(a.topic)));
    }
    ck_assert_int_gt(taken, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli_args");
    TCase *tc = tcase_create("command line");
    tcase_add_test(tc, defaults_without_flags);
    tcase_add_test(tc, global_flags_anywhere);
    tcase_add_test(tc, topic_commands);
    tcase_add_test(tc, produce_command);
    tcase_add_test(tc, consume_command);
    tcase_add_test(tc, group_commands);
    tcase_add_test(tc, bad_lines_are_refused_by_name);
    tcase_add_test(tc, durations);
    tcase_add_test(tc, format_strings);
    tcase_add_test(tc, json_escaping);
    tcase_add_test(tc, defaults_follow_the_cluster_size_and_errors_have_names);
    tcase_add_test(tc, defaults_count_no_decommissioned_broker);
    tcase_add_test(tc, random_lines_never_crash);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
