/* raftqd's settings (src/cmd/daemon_config.c): flags and the configuration file, every bad value
 * refused with an error that names it, flags over the file, and any byte string as a file never
 * crashes the parser. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "base/errors.h"
#include "base/rng.h"
#include "cmd/daemon_config.h"
#include "tests/unit/suite_main.h"

static char err[DAEMON_ERROR_MAX];

static int args(struct daemon_config *c, const char *line) {
    static char buf[1024];
    char *argv[64] = {"raftqd"};
    int argc = 1;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *tok = strtok(buf, " "); tok != NULL && argc < 64; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    err[0] = '\0';
    return daemon_config_apply_args(c, argc, argv, err, sizeof err);
}

static int text(struct daemon_config *c, const char *t) {
    err[0] = '\0';
    return daemon_config_apply_text(c, t, strlen(t), err, sizeof err);
}

START_TEST(flags_set_everything_and_validate) {
    struct daemon_config c;
    daemon_config_default(&c);
    ck_assert_int_eq(daemon_config_validate(&c, err, sizeof err), RQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--id"));
    ck_assert_int_eq(args(&c, "--id 2 --listen 0.0.0.0:7002 --peers "
                              "3=10.0.0.3:7003,1=10.0.0.1:7001,2=10.0.0.2:7002 --data-dir "
                              "./data/n2 --metrics 127.0.0.1:9102 --log-level debug --tick-ms 5"),
                     0);
    ck_assert_int_eq(daemon_config_validate(&c, err, sizeof err), 0);
    ck_assert_uint_eq(c.id, 2);
    ck_assert_str_eq(c.listen.host, "0.0.0.0");
    ck_assert_uint_eq(c.listen.port, 7002);
    ck_assert_uint_eq(c.peer_count, 3);
    for (uint32_t i = 0; i < 3; i++) ck_assert_uint_eq(c.peers[i].id, i + 1);   /* sorted */
    ck_assert_str_eq(c.peers[2].addr.host, "10.0.0.3");
    ck_assert_str_eq(c.data_dir, "./data/n2");
    ck_assert_uint_eq(c.metrics.port, 9102);
    ck_assert_int_eq(c.log_level, DAEMON_LOG_DEBUG);
    ck_assert_uint_eq(c.tick_ms, 5);
    ck_assert_uint_eq(c.heartbeat_ms, 200);   /* a default */
}
END_TEST

/* Each row: flags that must be refused, and a word the error must contain. */
static const struct {
    const char *flags;
    const char *says;
} BAD_FLAGS[] = {
    {"--id 0", "--id"},
    {"--id 256", "--id"},
    {"--id x", "not a node id"},
    {"--id", "a value is needed"},
    {"--id 1 --id 2", "twice"},
    {"--listen localhost", "HOST:PORT"},
    {"--listen :7000", "HOST:PORT"},
    {"--listen h:0", "HOST:PORT"},
    {"--listen h:65536", "HOST:PORT"},
    {"--listen h:70a", "HOST:PORT"},
    {"--peers 1=h:1,1=h:2", "listed twice"},
    {"--peers 1=h", "ID=HOST:PORT"},
    {"--peers 0=h:1", "ID=HOST:PORT"},
    {"--peers 1=h:1,", "ID=HOST:PORT"},
    {"--peers =h:1", "ID=HOST:PORT"},
    {"--tick-ms 0", "1..1000"},
    {"--tick-ms 99999999999999999999", "not a number"},
    {"--segment-bytes 1024", "131072"},
    {"--log-level loud", "error, warn, info or debug"},
    {"--bogus 1", "unknown flag"},
    {"id 1", "unknown flag"},
};

START_TEST(bad_flags_are_refused_by_name) {
    for (size_t i = 0; i < sizeof BAD_FLAGS / sizeof BAD_FLAGS[0]; i++) {
        struct daemon_config c;
        daemon_config_default(&c);
        ck_assert_msg(args(&c, BAD_FLAGS[i].flags) == RQ_EINVAL, "accepted: %s", BAD_FLAGS[i].flags);
        ck_assert_msg(strstr(err, BAD_FLAGS[i].says) != NULL, "%s: error '%s' lacks '%s'",
                      BAD_FLAGS[i].flags, err, BAD_FLAGS[i].says);
    }
}
END_TEST

START_TEST(validation_names_what_is_missing_or_inconsistent) {
    struct daemon_config c;
    daemon_config_default(&c);
    ck_assert_int_eq(args(&c, "--id 4 --listen h:1 --data-dir d --peers 1=h:1,2=h:2"), 0);
    ck_assert_int_eq(daemon_config_validate(&c, err, sizeof err), RQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "does not list this node"));
    daemon_config_default(&c);
    ck_assert_int_eq(args(&c, "--id 1 --listen h:1 --peers 1=h:1 --data-dir d "
                              "--heartbeat-ms 500 --heartbeat-timeout-ms 500"), 0);
    ck_assert_int_eq(daemon_config_validate(&c, err, sizeof err), RQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "heartbeat-timeout-ms"));
    daemon_config_default(&c);
    ck_assert_int_eq(args(&c, "--id 1 --listen h:1 --peers 1=h:1"), 0);
    ck_assert_int_eq(daemon_config_validate(&c, err, sizeof err), RQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--data-dir"));
}
END_TEST

START_TEST(the_file_then_the_flags) {
    struct daemon_config c;
    daemon_config_default(&c);
    char *argv[] = {"raftqd", "--id", "3", "--config", "n3.conf", "--tick-ms", "20"};
    ck_assert_int_eq(daemon_config_find_file(&c, 7, argv, err, sizeof err), 0);
    ck_assert_str_eq(c.config_file, "n3.conf");
    ck_assert_int_eq(text(&c, "# node 3\n"
                              "id = 9\n"
                              "  listen=127.0.0.1:7003  \r\n"
                              "\n"
                              "peers = 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003\n"
                              "data-dir = data/n3\n"
                              "tick-ms = 10\n"
                              "snapshot-entries = 64"),
                     0);
    ck_assert_uint_eq(c.id, 9);
    ck_assert_int_eq(daemon_config_apply_args(&c, 7, argv, err, sizeof err), 0);
    ck_assert_uint_eq(c.id, 3);        /* the flag wins */
    ck_assert_uint_eq(c.tick_ms, 20);
    ck_assert_uint_eq(c.snapshot_entries, 64);
    ck_assert_int_eq(daemon_config_validate(&c, err, sizeof err), 0);
    char *twice[] = {"raftqd", "--config", "a", "--config", "b"};
    ck_assert_int_eq(daemon_config_find_file(&c, 5, twice, err, sizeof err), RQ_EINVAL);
    char *bare[] = {"raftqd", "--config"};
    ck_assert_int_eq(daemon_config_find_file(&c, 2, bare, err, sizeof err), RQ_EINVAL);
}
END_TEST

static const struct {
    const char *text;
    const char *says;
} BAD_FILES[] = {
    {"id = 1\nlisten\n", "line 2: 'key = value' expected"},
    {"lisen = h:1\n", "line 1: unknown setting 'lisen'"},
    {"id = 1\n\nid = 2\n", "line 3: 'id' is set twice"},
    {"tick-ms = fast\n", "line 1 (tick-ms)"},
    {"config = other.conf\n", "unknown setting 'config'"},
    {"peers = 1=h:1, 2=h:2\n", "ID=HOST:PORT"},
};

START_TEST(bad_files_are_refused_by_line) {
    for (size_t i = 0; i < sizeof BAD_FILES / sizeof BAD_FILES[0]; i++) {
        struct daemon_config c;
        daemon_config_default(&c);
        ck_assert_int_eq(text(&c, BAD_FILES[i].text), RQ_EINVAL);
        ck_assert_msg(strstr(err, BAD_FILES[i].says) != NULL, "'%s' lacks '%s'", err,
                      BAD_FILES[i].says);
    }
    struct daemon_config c;
    daemon_config_default(&c);
    ck_assert_int_eq(daemon_config_apply_text(&c, "id = 1\0x", 8, err, sizeof err), RQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
}
END_TEST

/* Random bytes and random mutations of a good file: refused or taken, never a crash, and an
 * accepted configuration always within its ranges. */
START_TEST(any_bytes_as_a_file) {
    static const char good[] = "id = 1\nlisten = h:1\npeers = 1=h:1,2=g:2\ndata-dir = d\n"
                               "tick-ms = 10\nsegment-bytes = 131072\nlog-level = warn\n";
    struct rq_rng rng;
    rq_rng_seed(&rng, 7);
    char buf[256];
    int taken = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = sizeof good - 1;
        memcpy(buf, good, n);
        for (uint32_t k = (uint32_t)rq_rng_range(&rng, 1, 4); k > 0; k--)
            buf[rq_rng_below(&rng, n)] = (char)rq_rng_below(&rng, 256);
        if (rq_rng_chance(&rng, 100000)) n = (size_t)rq_rng_below(&rng, n);
        struct daemon_config c;
        daemon_config_default(&c);
        if (daemon_config_apply_text(&c, buf, n, err, sizeof err) != 0) continue;
        taken++;
        ck_assert_uint_le(c.id, RQ_NODE_ID_MAX);
        ck_assert_uint_ge(c.tick_ms, 1);
        ck_assert_uint_le(c.tick_ms, 1000);
        ck_assert_uint_ge(c.segment_bytes, 128u << 10);
        ck_assert_uint_le(c.peer_count, DAEMON_PEERS_MAX);
        for (uint32_t i = 1; i < c.peer_count; i++) ck_assert_uint_lt(c.peers[i - 1].id, c.peers[i].id);
    }
    ck_assert_int_gt(taken, 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_config");
    TCase *tc = tcase_create("settings");
    tcase_add_test(tc, flags_set_everything_and_validate);
    tcase_add_test(tc, bad_flags_are_refused_by_name);
    tcase_add_test(tc, validation_names_what_is_missing_or_inconsistent);
    tcase_add_test(tc, the_file_then_the_flags);
    tcase_add_test(tc, bad_files_are_refused_by_line);
    tcase_add_test(tc, any_bytes_as_a_file);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
