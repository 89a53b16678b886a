/* The mq workload's test hooks: deliberate faults a test switches on to show that the workload's
 * checks catch them end to end (a checker that never fires proves nothing). Each distorts what the
 * workload observes the way a broken broker or client would show it. */
#ifndef RQ_SIM_MQ_H
#define RQ_SIM_MQ_H

#include <stdint.h>

#include "sim/sim.h"

enum mq_bug {
    MQ_BUG_ACK_WRONG_OFFSET = 1u << 0,  /* acks=all acknowledgements name the next offset */
    MQ_BUG_CONSUMER_SKIPS = 1u << 1,    /* consumers lose every 20th record (a poll-skip) */
    MQ_BUG_REPLICA_SKEW = 1u << 2,      /* server 1's copy of offset 2 differs from the others' */
    MQ_BUG_PRODUCER_REPEATS = 1u << 3,  /* an idempotent producer sends every 20th message twice,
                                           as a retry the broker failed to recognise would */
    MQ_BUG_NO_HEAL = 1u << 4,           /* the servers stay cut off from each other after the heal */
    MQ_BUG_SKIP_TO_END = 1u << 5,       /* a consumer told it is below the log start jumps to the
                                           high watermark instead (retention on) */
    MQ_BUG_MOVES_PAUSED = 1u << 6,      /* brokers never move replicas; a broker is decommissioned
                                           (with 4 or more servers) */
    /* consumer groups (with mq_force_groups) */
    MQ_BUG_MEMBER_LOSES = 1u << 7,      /* a member loses the first record wherever it starts
                                           (claims answered one past the committed offset) */
    MQ_BUG_TWO_HOLDERS = 1u << 8,       /* a queue member's odd offsets are delivered to another
                                           member id of its generation (a coordinator assigning a
                                           partition twice) */
    MQ_BUG_STALE_COMMIT = 1u << 9,      /* replicas apply commits of the generation before the
                                           claim's (a partition that does not fence) */
    MQ_BUG_DELAY_EARLY = 1u << 10,      /* delayed messages are judged as if delayed 10 s more
                                           (as a broker releasing them early would be) */
};

/* s must run the mq workload; call before sim_run. */
void mq_inject_bugs(struct sim *s, uint32_t bugs);
/* Every `every`-th message of each producer that is not idempotent is delayed. */
void mq_force_delays(struct sim *s, uint32_t every);
/* Decommissions broker id at 2 s (whatever the seed drew). */
void mq_force_decommission(struct sim *s, uint32_t id);
/* Makes clients 4, 5 members of the queue group "q" and client 6 a pub/sub member of "p",
 * whatever the seed drew (at least 7 clients). */
void mq_force_groups(struct sim *s);
/* Gives the topic retention (bytes per partition, and time; 0: none), whatever the seed drew. */
void mq_force_retention(struct sim *s, uint64_t bytes, uint64_t ms);

#endif
