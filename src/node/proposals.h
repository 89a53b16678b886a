/* proposals.h — proposals waiting for their entry to be applied: the bookkeeping every state
 * machine adapter on a host needs (controller_group.c, partition_group.c). A proposal is known by
 * the (index, term) its leader gave it; when the entry at that index is applied it is answered:
 * its own entry (same term) gets the state machine's result, another leader's entry means it was
 * lost. One that is never applied is forgotten after a timeout. Bounded: PROPOSALS_MAX. */
#ifndef RQ_NODE_PROPOSALS_H
#define RQ_NODE_PROPOSALS_H

#include <stdint.h>

#include "raft/raft.h"

enum { PROPOSALS_MAX = 256 };

struct proposal {
    uint8_t used;
    uint8_t early;                /* answered at the leader's durable append (proposals_durable) */
    int error;                    /* early: the result the leader foresaw */
    uint32_t part;                /* the batch of its entry it waits on (a SHARED entry's, see
                                     broker/partition.h; 0 otherwise) */
    uint64_t value;
    uint64_t index;
    uint64_t term;
    uint64_t cookie;
    uint64_t since_ns;
};

struct proposals {
    struct proposal slots[PROPOSALS_MAX];
    uint32_t count; /* slots used: the scans below return at once when none are (an idle
                       group's timeout check every tick was most of an idle node's CPU) */
};

/* Whether a slot is free (check before proposing, so that a proposal is never made that could
 * not be waited for). */
int proposals_room(const struct proposals *p);
/* Records a proposal (asserts room). */
void proposals_add(struct proposals *p, uint64_t index, uint64_t term, uint64_t cookie,
                   uint64_t now_ns);
/* The entry (index, term) was applied: if a proposal waits at index, returns 1 with its cookie
 * and *own (its own entry, or another leader's), and forgets it; else 0. More than one may wait
 * at one index (a leader's proposal whose entry was replaced, and a later leader's at the same
 * index): callers loop until 0. */
int proposals_applied(struct proposals *p, uint64_t index, uint64_t term, uint64_t *cookie,
                      int *own);
/* Records a proposal answered as soon as the leader's own log holds it durably (acks=1), with the
 * result the leader foresaw (asserts room). */
void proposals_add_early(struct proposals *p, uint64_t index, uint64_t term, uint64_t cookie,
                         uint64_t now_ns, int error, uint64_t value);
/* This node's log holds its entries up to durable_index durably: returns 1 with an early proposal
 * at or below it whose entry is still its own in r's log (same term), and forgets it; else 0. */
int proposals_durable(struct proposals *p, const struct raft *r, uint64_t durable_index,
                      uint64_t *cookie, int *error, uint64_t *value);
/* The number of free slots (a leader holding requests for a shared entry it has not proposed yet
 * keeps one for each). */
uint32_t proposals_free(const struct proposals *p);
/* As proposals_add and proposals_add_early, for a proposal waiting on batch `part` of its entry
 * (the entry is a SHARED one whose batches are answered one by one). */
void proposals_add_part(struct proposals *p, uint64_t index, uint64_t term, uint32_t part,
                        uint64_t cookie, uint64_t now_ns);
void proposals_add_early_part(struct proposals *p, uint64_t index, uint64_t term, uint32_t part,
                              uint64_t cookie, uint64_t now_ns, int error, uint64_t value);
/* As proposals_applied, also saying which batch of the entry the proposal waits on. */
int proposals_applied_part(struct proposals *p, uint64_t index, uint64_t term, uint64_t *cookie,
                           int *own, uint32_t *part);
/* Forgets one proposal older than timeout_ns: returns 1 with its cookie, else 0. */
int proposals_expired(struct proposals *p, uint64_t now_ns, uint64_t timeout_ns, uint64_t *cookie);

#endif
