/* cursor.h — consumer groups' positions in a partition: control records of its own log.
 *
 * A CURSOR is a queue group's name, or "GROUP/MEMBER" for a pub/sub member (proto/group_msg.h).
 * For each cursor the partition keeps, as replicated state (in every replica alike, and in the
 * partition's image):
 *     generation   the highest generation that claimed the partition for this cursor
 *     owner        the member id of that claim (0: none, after a reset)
 *     committed    the next offset to consume, or PROTO_NO_OFFSET when nothing was committed
 *
 * Three control records change it; each is one CURSOR entry of the partition's Raft log:
 *     u8     kind              PARTITION_ENTRY_CURSOR (4)
 *     u8     op                CURSOR_CLAIM (1), CURSOR_COMMIT (2) or CURSOR_RESET (3)
 *     varint cursor length     1..PROTO_CURSOR_MAX, then that many bytes: a valid cursor
 *     varint generation        CLAIM, COMMIT: >= 1; RESET: 0
 *     varint member            CLAIM, COMMIT: >= 1; RESET: 0
 *     varint offset            COMMIT, RESET: the next offset to consume; CLAIM: 0
 * Varints minimal, nothing trailing; an entry that breaks a rule applies as a counted no-op.
 *
 * The rules, which make a claim the FENCE of every older generation:
 *   CLAIM(g, m)   a cursor not held yet is created, owned by (g, m); a held one is taken when
 *                 g > its generation, or g == generation when a reset left it without owner;
 *                 g == generation and m == owner is the same claim again (a retry) and
 *                 succeeds; anything else is FENCED (RQ_EFENCED). Answered with the committed
 *                 offset: where the member starts.
 *   COMMIT(g, m, o)  succeeds only when (g, m) is the cursor's claim (else FENCED), and o is at
 *                 most the partition's next offset (else RQ_ERANGE). The committed offset becomes
 *                 max(committed, o): it never goes backward (a late commit of a slow retry
 *                 cannot undo a newer one).
 *   RESET(o)      an operator moves the cursor to o (log start <= o <= next offset, else
 *                 RQ_ERANGE), backward or forward, and clears the owner: the member that held
 *                 it is fenced (its fetches and commits refused) and claims it again, which
 *                 answers it the reset offset. A member of the same generation can do that
 *                 (only one member of a generation is assigned the partition); an older one
 *                 cannot.
 * Fetches for a cursor are served only to its claim (cursor_table_owns), so once a claim of
 * generation g has applied, no member of an older generation reads or commits here.
 *
 * The table holds at most PARTITION_CURSORS_MAX cursors, sorted by name (the image is then
 * deterministic); a claim or reset of a new cursor when it is full is refused (RQ_ENOMEM): a
 * position is never evicted. */
#ifndef RQ_BROKER_CURSOR_H
#define RQ_BROKER_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "base/codec.h"
#include "proto/msg.h"

enum {
    PARTITION_ENTRY_CURSOR = 4,
    CURSOR_CLAIM = 1,
    CURSOR_COMMIT = 2,
    CURSOR_RESET = 3,
    PARTITION_CURSORS_MAX = 64,
    CURSOR_ENTRY_MAX = 2 + 5 + PROTO_CURSOR_MAX + 3 * 10,
    /* the table in an image: a count, then per cursor its name and three varints */
    CURSOR_IMAGE_MAX = 10 + PARTITION_CURSORS_MAX * (5 + PROTO_CURSOR_MAX + 3 * 10),
};

struct cursor_entry {
    uint8_t op;
    struct proto_bytes name;      /* points into the entry */
    uint64_t generation;
    uint64_t member;
    uint64_t offset;
};

struct partition_cursor {
    uint8_t name[PROTO_CURSOR_MAX];
    uint32_t name_size;
    uint64_t generation;
    uint64_t owner;
    uint64_t committed;           /* PROTO_NO_OFFSET: none */
};

struct cursor_table {
    uint32_t count;
    struct partition_cursor cursors[PARTITION_CURSORS_MAX];   /* [0, count), by name */
};

/* What a CURSOR entry does (or would do) to a table. */
struct cursor_decision {
    int error;                    /* 0, RQ_EFENCED, RQ_ERANGE or RQ_ENOMEM */
    uint32_t slot;                /* the cursor's slot, or where a new one goes */
    int known;
    uint64_t committed;           /* the committed offset after it (PROTO_NO_OFFSET: none) */
};

/* Writes a CURSOR entry into buf[0..cap) (cap >= CURSOR_ENTRY_MAX always fits) and returns its
 * size; e must keep the rules above (asserted). */
size_t cursor_entry_encode(uint8_t *buf, size_t cap, const struct cursor_entry *e);
/* Decodes one strictly: 0, or RQ_ETRUNC / RQ_ECORRUPT / RQ_ETOOBIG. */
int cursor_entry_decode(const uint8_t *data, size_t size, struct cursor_entry *out);

/* The cursor of that name, or NULL. */
const struct partition_cursor *cursor_table_find(const struct cursor_table *t,
                                                 struct proto_bytes name);
/* Whether (generation, member) holds the cursor's claim: a fetch or commit may be served. */
int cursor_table_owns(const struct cursor_table *t, struct proto_bytes name, uint64_t generation,
                      uint64_t member);

/* Decides e against t, for a partition holding [log_start, next_offset); changes nothing. */
void cursor_decide(const struct cursor_table *t, const struct cursor_entry *e, uint64_t log_start,
                   uint64_t next_offset, struct cursor_decision *d);
/* Carries out a decision with error 0 (asserted) that cursor_decide just made for e on t. */
void cursor_apply(struct cursor_table *t, const struct cursor_entry *e,
                  const struct cursor_decision *d);

/* Appends the table to w (the partition's image). */
void cursor_table_write(const struct cursor_table *t, struct rq_writer *w);
/* Reads a table written by cursor_table_write, checking it strictly (names valid and ascending,
 * committed offsets at most next_offset or PROTO_NO_OFFSET, a generation >= 1 unless reset with
 * no owner); sets r->err to RQ_ECORRUPT on any fault. out may be NULL (check only). */
void cursor_table_read(struct rq_reader *r, uint64_t next_offset, struct cursor_table *out);

#endif
