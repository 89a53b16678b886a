/* Consumer groups' cursors in the partition state machine (src/broker/cursor.c through
 * partition.c): the CURSOR entry byte for byte; a claim creates a cursor and fences every older
 * generation, a retry of the same claim succeeds; commits only from the claim, never past the
 * partition's end, never backward; a reset moves the position either way within the log and
 * fences its holder; a full table refuses new cursors and keeps the old; malformed entries (every
 * truncation, wrong fields for the op, bad names, non-minimal varints) are counted no-ops that
 * take no offsets; the table in the image round-trips, a version-1 image (before cursors) still
 * restores, and a damaged table is refused. Entries handed to decoders are heap blocks of
 * exactly their size, so AddressSanitizer catches any read past the end. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/codec.h"
#include "base/crc32c.h"
#include "base/errors.h"
#include "broker/partition.h"
#include "tests/unit/suite_main.h"

static struct partition_sm *sm_new(void) {
    struct partition_sm *sm = malloc(sizeof *sm);
    ck_assert_ptr_nonnull(sm);
    partition_sm_init(sm);
    return sm;
}

static struct proto_bytes name_of(const char *s) {
    return (struct proto_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

/* Applies a CURSOR entry at the next Raft index, from an exact-size heap copy. */
static struct partition_apply_result apply_cursor(struct partition_sm *sm, uint8_t op,
                                                  const char *cursor, uint64_t generation,
                                                  uint64_t member, uint64_t offset) {
    uint8_t buf[CURSOR_ENTRY_MAX];
    struct cursor_entry e = {.op = op, .name = name_of(cursor), .generation = generation,
                             .member = member, .offset = offset};
    size_t n = cursor_entry_encode(buf, sizeof buf, &e);
    ck_assert_uint_gt(n, 0);
    uint8_t *exact = malloc(n);
    memcpy(exact, buf, n);
    struct partition_apply_result res;
    partition_sm_apply(sm, sm->applied_index + 1, exact, n, &res);
    free(exact);
    return res;
}

static struct partition_apply_result claim(struct partition_sm *sm, const char *c, uint64_t g,
                                           uint64_t m) {
    return apply_cursor(sm, CURSOR_CLAIM, c, g, m, 0);
}
static struct partition_apply_result commit(struct partition_sm *sm, const char *c, uint64_t g,
                                            uint64_t m, uint64_t offset) {
    return apply_cursor(sm, CURSOR_COMMIT, c, g, m, offset);
}
static struct partition_apply_result reset(struct partition_sm *sm, const char *c,
                                           uint64_t offset) {
    return apply_cursor(sm, CURSOR_RESET, c, 0, 0, offset);
}

/* Appends `count` one-record batches (producer 0) so the partition holds offsets. */
static void append_records(struct partition_sm *sm, uint32_t count) {
    static const uint8_t record[] = {0, 0, 1, 'v', 0};   /* ts 0, no key, value "v", 0 hdrs */
    struct proto_records rs;
    ck_assert_int_eq(proto_records_decode(record, sizeof record, 1, 0, &rs), 0);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t buf[64];
        size_t n = partition_entry_encode(buf, sizeof buf, sm->next_offset, 0, 0, 0, &rs);
        ck_assert_uint_gt(n, 0);
        struct partition_apply_result res;
        partition_sm_apply(sm, sm->applied_index + 1, buf, n, &res);
        ck_assert_int_eq(res.outcome, PARTITION_APPENDED);
    }
}

START_TEST(entry_format_byte_for_byte) {
    uint8_t buf[CURSOR_ENTRY_MAX];
    struct cursor_entry e = {.op = CURSOR_COMMIT, .name = name_of("g/m"), .generation = 300,
                             .member = 2, .offset = 5};
    static const uint8_t want[] = {PARTITION_ENTRY_CURSOR, CURSOR_COMMIT, 3, 'g', '/', 'm',
                                   0xAC, 0x02, 2, 5};
    size_t n = cursor_entry_encode(buf, sizeof buf, &e);
    ck_assert_uint_eq(n, sizeof want);
    ck_assert_mem_eq(buf, want, sizeof want);
    struct cursor_entry d;
    ck_assert_int_eq(cursor_entry_decode(buf, n, &d), 0);
    ck_assert_uint_eq(d.op, CURSOR_COMMIT);
    ck_assert_uint_eq(d.name.size, 3);
    ck_assert_mem_eq(d.name.data, "g/m", 3);
    ck_assert_uint_eq(d.generation, 300);
    ck_assert_uint_eq(d.member, 2);
    ck_assert_uint_eq(d.offset, 5);
    ck_assert_uint_eq(cursor_entry_encode(buf, n - 1, &e), 0);   /* does not fit: 0 */
}
END_TEST

START_TEST(a_claim_fences_older_generations) {
    struct partition_sm *sm = sm_new();
    append_records(sm, 10);
    struct partition_apply_result r = claim(sm, "g", 5, 1);
    ck_assert_int_eq(r.outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(r.committed, PROTO_NO_OFFSET);   /* never committed: the member chooses */
    ck_assert(cursor_table_owns(&sm->cursors, name_of("g"), 5, 1));
    ck_assert_int_eq(commit(sm, "g", 5, 1, 4).outcome, PARTITION_CURSOR_DONE);
    /* the same claim again (a retry) succeeds and answers the committed offset */
    r = claim(sm, "g", 5, 1);
    ck_assert_int_eq(r.outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(r.committed, 4);
    /* another member of the same generation, or an older generation: fenced */
    ck_assert_int_eq(claim(sm, "g", 5, 2).error, RQ_EFENCED);
    ck_assert_int_eq(claim(sm, "g", 4, 1).error, RQ_EFENCED);
    /* a newer generation takes it; the old claim's commits and reads are refused from then on */
    r = claim(sm, "g", 6, 2);
    ck_assert_int_eq(r.outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(r.committed, 4);
    r = commit(sm, "g", 5, 1, 9);
    ck_assert_int_eq(r.outcome, PARTITION_CURSOR_REFUSED);
    ck_assert_int_eq(r.error, RQ_EFENCED);
    ck_assert(!cursor_table_owns(&sm->cursors, name_of("g"), 5, 1));
    ck_assert(cursor_table_owns(&sm->cursors, name_of("g"), 6, 2));
    ck_assert_uint_eq(cursor_table_find(&sm->cursors, name_of("g"))->committed, 4);
    /* cursors are independent: another group claims at any generation */
    ck_assert_int_eq(claim(sm, "h", 1, 7).outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(sm->stats.cursor_ops, 5);
    ck_assert_uint_eq(sm->stats.cursor_refused, 3);
    ck_assert_uint_eq(sm->next_offset, 10);   /* control records take no offsets */
    free(sm);
}
END_TEST

START_TEST(commits_stay_in_the_log_and_never_go_backward) {
    struct partition_sm *sm = sm_new();
    append_records(sm, 10);
    claim(sm, "g", 1, 1);
    struct partition_apply_result r = commit(sm, "g", 1, 1, 11);
    ck_assert_int_eq(r.error, RQ_ERANGE);   /* past the end */
    ck_assert_uint_eq(r.committed, PROTO_NO_OFFSET);
    ck_assert_uint_eq(commit(sm, "g", 1, 1, 10).committed, 10);   /* the end itself: all read */
    r = commit(sm, "g", 1, 1, 3);   /* a late, older commit: accepted, changes nothing */
    ck_assert_int_eq(r.outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(r.committed, 10);
    ck_assert_int_eq(commit(sm, "nobody", 1, 1, 1).error, RQ_EFENCED);   /* unknown cursor */
    ck_assert_ptr_null(cursor_table_find(&sm->cursors, name_of("nobody")));
    free(sm);
}
END_TEST

START_TEST(a_reset_moves_the_cursor_and_fences_its_holder) {
    struct partition_sm *sm = sm_new();
    append_records(sm, 10);
    claim(sm, "g", 3, 1);
    commit(sm, "g", 3, 1, 8);
    ck_assert_int_eq(reset(sm, "g", 11).error, RQ_ERANGE);
    struct partition_apply_result r = reset(sm, "g", 2);   /* backward: an operator's choice */
    ck_assert_int_eq(r.outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(r.committed, 2);
    ck_assert_int_eq(commit(sm, "g", 3, 1, 9).error, RQ_EFENCED);   /* the holder is fenced */
    ck_assert_int_eq(claim(sm, "g", 2, 1).error, RQ_EFENCED);       /* an older generation */
    r = claim(sm, "g", 3, 1);   /* ... until it claims again, and starts where it was reset */
    ck_assert_int_eq(r.outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(r.committed, 2);
    ck_assert_int_eq(claim(sm, "g", 3, 2).error, RQ_EFENCED);   /* held again */
    ck_assert_int_eq(claim(sm, "g", 4, 1).outcome, PARTITION_CURSOR_DONE);
    /* a reset of a cursor never claimed creates it, below any generation */
    ck_assert_int_eq(reset(sm, "new", 10).outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(claim(sm, "new", 1, 1).committed, 10);
    /* below the log start: refused */
    uint8_t buf[PARTITION_RETAIN_ENTRY_MAX];
    size_t n = partition_retain_encode(buf, sizeof buf, 5);
    struct partition_apply_result rr;
    partition_sm_apply(sm, sm->applied_index + 1, buf, n, &rr);
    ck_assert_int_eq(rr.outcome, PARTITION_RETAINED);
    ck_assert_int_eq(reset(sm, "g", 4).error, RQ_ERANGE);
    ck_assert_int_eq(reset(sm, "g", 5).outcome, PARTITION_CURSOR_DONE);
    free(sm);
}
END_TEST

START_TEST(a_full_table_refuses_new_cursors_only) {
    struct partition_sm *sm = sm_new();
    append_records(sm, 3);
    char name[32];
    for (int i = 0; i < PARTITION_CURSORS_MAX; i++) {
        snprintf(name, sizeof name, "g%03d", i);
        ck_assert_int_eq(claim(sm, name, 1, 1).outcome, PARTITION_CURSOR_DONE);
    }
    ck_assert_int_eq(claim(sm, "late", 1, 1).error, RQ_ENOMEM);
    ck_assert_int_eq(reset(sm, "late", 0).error, RQ_ENOMEM);
    ck_assert_int_eq(commit(sm, "g007", 1, 1, 2).outcome, PARTITION_CURSOR_DONE);
    ck_assert_int_eq(claim(sm, "g063", 2, 9).outcome, PARTITION_CURSOR_DONE);
    ck_assert_uint_eq(sm->cursors.count, PARTITION_CURSORS_MAX);
    for (uint32_t i = 1; i < sm->cursors.count; i++)   /* sorted by name */
        ck_assert_int_lt(strcmp((const char *)sm->cursors.cursors[i - 1].name,
                                (const char *)sm->cursors.cursors[i].name), 0);
    free(sm);
}
END_TEST

/* Entries that are not valid CURSOR entries: each is one counted no-op. */
START_TEST(malformed_entries_are_counted_noops) {
    struct partition_sm *sm = sm_new();
    append_records(sm, 2);
    uint8_t buf[CURSOR_ENTRY_MAX];
    struct cursor_entry e = {.op = CURSOR_CLAIM, .name = name_of("grp"), .generation = 1,
                             .member = 1};
    size_t n = cursor_entry_encode(buf, sizeof buf, &e);
    uint64_t before = sm->stats.malformed;
    for (size_t cut = 1; cut < n; cut++) {   /* every truncation */
        uint8_t *p = malloc(cut);
        memcpy(p, buf, cut);
        struct partition_apply_result r;
        partition_sm_apply(sm, sm->applied_index + 1, p, cut, &r);
        ck_assert_int_eq(r.outcome, PARTITION_MALFORMED);
        free(p);
    }
    ck_assert_uint_eq(sm->stats.malformed - before, n - 1);
    static const uint8_t bad[][12] = {
        {PARTITION_ENTRY_CURSOR, 9, 1, 'g', 1, 1, 0},        /* unknown op */
        {PARTITION_ENTRY_CURSOR, CURSOR_CLAIM, 1, 'g', 1, 1, 3},   /* a claim with an offset */
        {PARTITION_ENTRY_CURSOR, CURSOR_CLAIM, 1, 'g', 0, 1, 0},   /* generation 0 */
        {PARTITION_ENTRY_CURSOR, CURSOR_COMMIT, 1, 'g', 1, 0, 0},  /* member 0 */
        {PARTITION_ENTRY_CURSOR, CURSOR_RESET, 1, 'g', 1, 0, 0},   /* a reset with a generation */
        {PARTITION_ENTRY_CURSOR, CURSOR_CLAIM, 1, '*', 1, 1, 0},   /* a bad name */
        {PARTITION_ENTRY_CURSOR, CURSOR_CLAIM, 0, 1, 1, 0},        /* an empty name */
        {PARTITION_ENTRY_CURSOR, CURSOR_CLAIM, 1, 'g', 0x81, 0, 1, 0},   /* non-minimal */
        {PARTITION_ENTRY_CURSOR, CURSOR_CLAIM, 1, 'g', 1, 1, 0, 0},      /* trailing */
    };
    static const size_t sizes[] = {7, 7, 7, 7, 7, 7, 6, 8, 8};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = malloc(sizes[i]);
        memcpy(p, bad[i], sizes[i]);
        struct partition_apply_result r;
        partition_sm_apply(sm, sm->applied_index + 1, p, sizes[i], &r);
        ck_assert_msg(r.outcome == PARTITION_MALFORMED, "bad entry %zu applied", i);
        free(p);
    }
    ck_assert_uint_eq(sm->cursors.count, 0);
    ck_assert_uint_eq(sm->next_offset, 2);
    /* a reader splitting the log for records skips a cursor entry: it holds none */
    struct partition_split split;
    ck_assert_int_eq(partition_entry_split(buf, n, &split), RQ_ETYPE);
    free(sm);
}
END_TEST

static size_t image_of(const struct partition_sm *sm, uint8_t **out) {
    uint8_t *buf = malloc(PARTITION_IMAGE_MAX);
    size_t n = partition_sm_image(sm, buf, PARTITION_IMAGE_MAX);
    ck_assert_uint_gt(n, 0);
    *out = buf;
    return n;
}

START_TEST(the_table_round_trips_in_the_image) {
    struct partition_sm *sm = sm_new();
    append_records(sm, 6);
    claim(sm, "b", 7, 3);
    commit(sm, "b", 7, 3, 5);
    claim(sm, "a/x", 2, 1);
    reset(sm, "c", 1);
    uint8_t *img;
    size_t n = image_of(sm, &img);
    struct partition_sm *copy = sm_new();
    ck_assert_int_eq(partition_sm_restore(copy, img, n), 0);
    ck_assert_uint_eq(copy->cursors.count, 3);
    ck_assert_mem_eq(&copy->cursors, &sm->cursors, sizeof sm->cursors);
    uint8_t *again;
    size_t m = image_of(copy, &again);
    ck_assert_uint_eq(m, n);
    ck_assert_mem_eq(again, img, n);
    /* the restored replica goes on deciding alike */
    ck_assert_int_eq(commit(copy, "b", 7, 3, 6).committed, 6);
    ck_assert_int_eq(claim(copy, "b", 6, 9).error, RQ_EFENCED);
    free(again);
    free(img);
    free(copy);
    free(sm);
}
END_TEST

/* An image written by hand with a CRC, version and body as given. */
static size_t write_image(uint8_t *buf, size_t cap, uint8_t version, const uint8_t *tail,
                          size_t tail_size) {
    struct rq_writer w;
    rq_writer_init(&w, buf, cap);
    rq_write_u32(&w, 0x53505152);
    rq_write_u8(&w, version);
    rq_write_varint(&w, 4);   /* next offset */
    rq_write_varint(&w, 0);   /* log start */
    rq_write_varint(&w, 9);   /* applied index */
    rq_write_varint(&w, 0);   /* no producers */
    rq_write_bytes(&w, tail, tail_size);
    rq_write_u32(&w, rq_crc32c(0, buf, w.len));
    ck_assert_int_eq(w.err, 0);
    return w.len;
}

START_TEST(a_version_1_image_restores_and_damaged_tables_are_refused) {
    uint8_t buf[256];
    struct partition_sm *sm = sm_new();
    size_t n = write_image(buf, sizeof buf, 1, NULL, 0);
    ck_assert_int_eq(partition_sm_restore(sm, buf, n), 0);
    ck_assert_uint_eq(sm->next_offset, 4);
    ck_assert_uint_eq(sm->cursors.count, 0);
    static const uint8_t good[] = {2, 1, 'a', 1, 1, 2, 1, 'b', 0, 0, 4};
    n = write_image(buf, sizeof buf, 2, good, sizeof good);
    ck_assert_int_eq(partition_sm_restore(sm, buf, n), 0);
    ck_assert_uint_eq(sm->cursors.count, 2);
    ck_assert_uint_eq(sm->cursors.cursors[1].committed, 4);
    static const uint8_t bad[][12] = {
        {2, 1, 'b', 1, 1, 2, 1, 'a', 0, 0, 4},   /* names out of order */
        {2, 1, 'a', 1, 1, 2, 1, 'a', 0, 0, 4},   /* a name twice */
        {1, 1, 'a', 1, 1, 5},                    /* committed past the next offset */
        {1, 1, 'a', 0, 1, 2},                    /* an owner at generation 0 */
        {1, 1, '%', 1, 1, 2},                    /* a bad name */
        {65},                                    /* more cursors than the table holds */
        {1, 1, 'a', 1, 1},                       /* cut short */
    };
    static const size_t sizes[] = {11, 11, 6, 6, 6, 1, 5};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        n = write_image(buf, sizeof buf, 2, bad[i], sizes[i]);
        ck_assert_msg(partition_sm_restore(sm, buf, n) == RQ_ECORRUPT, "bad table %zu taken", i);
    }
    ck_assert_uint_eq(sm->cursors.count, 2);   /* a refused image changed nothing */
    n = write_image(buf, sizeof buf, 4, NULL, 0);
    ck_assert_int_eq(partition_sm_restore(sm, buf, n), RQ_ECORRUPT);   /* a future version */
    free(sm);
}
END_TEST

/* The leader's preview of a cursor entry is the decision apply takes. */
START_TEST(preview_matches_apply) {
    struct partition_sm *sm = sm_new();
    append_records(sm, 3);
    claim(sm, "g", 2, 1);
    uint8_t buf[CURSOR_ENTRY_MAX];
    struct cursor_entry e = {.op = CURSOR_CLAIM, .name = name_of("g"), .generation = 1,
                             .member = 5};
    size_t n = cursor_entry_encode(buf, sizeof buf, &e);
    struct partition_apply_result p, a;
    partition_sm_preview(sm, buf, n, &p);
    partition_sm_apply(sm, sm->applied_index + 1, buf, n, &a);
    ck_assert_int_eq(p.outcome, a.outcome);
    ck_assert_int_eq(p.error, RQ_EFENCED);
    ck_assert_uint_eq(p.committed, a.committed);
    free(sm);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cursor");
    TCase *tc = tcase_create("cursor");
    tcase_add_test(tc, entry_format_byte_for_byte);
    tcase_add_test(tc, a_claim_fences_older_generations);
    tcase_add_test(tc, commits_stay_in_the_log_and_never_go_backward);
    tcase_add_test(tc, a_reset_moves_the_cursor_and_fences_its_holder);
    tcase_add_test(tc, a_full_table_refuses_new_cursors_only);
    tcase_add_test(tc, malformed_entries_are_counted_noops);
    tcase_add_test(tc, the_table_round_trips_in_the_image);
    tcase_add_test(tc, a_version_1_image_restores_and_damaged_tables_are_refused);
    tcase_add_test(tc, preview_matches_apply);
    suite_add_tcase(s, tc);
    return run_suites(srunner_create(s));
}
