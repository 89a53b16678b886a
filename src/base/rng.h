/* A seedable PRNG: xoshiro256** (Blackman & Vigna), seeded through splitmix64.
 *
 * Independent streams: rq_rng_stream(seed, k) starts from the seed's state and applies the
 * generator's jump function k times, so each stream is a disjoint 2^128-long window of one
 * sequence. The simulator gives the network, the disk, the fault schedule, the workload and each
 * node their own stream, so one more draw in one place never reshuffles the others.
 *
 * Probabilities are integers in parts per million, so no decision depends on floating point. */
#ifndef RQ_BASE_RNG_H
#define RQ_BASE_RNG_H

#include <stdint.h>

enum { RQ_PPM = 1000000 };

struct rq_rng {
    uint64_t s[4];
};

void rq_rng_seed(struct rq_rng *r, uint64_t seed);
/* Stream `stream` (0 .. 4095) of `seed`: seed, then `stream` jumps of 2^128 draws. */
void rq_rng_stream(struct rq_rng *r, uint64_t seed, uint32_t stream);
void rq_rng_jump(struct rq_rng *r);

uint64_t rq_rng_next(struct rq_rng *r);
/* Uniform in [0, bound), without modulo bias; bound > 0. */
uint64_t rq_rng_below(struct rq_rng *r, uint64_t bound);
/* Uniform in [lo, hi] inclusive; lo <= hi. */
uint64_t rq_rng_range(struct rq_rng *r, uint64_t lo, uint64_t hi);
/* 1 with probability ppm / 1,000,000. */
int rq_rng_chance(struct rq_rng *r, uint32_t ppm);

/* splitmix64 step, also useful as a 64-bit mixing function. */
uint64_t rq_splitmix64(uint64_t *state);
uint64_t rq_mix64(uint64_t x);

#endif
