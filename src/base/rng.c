#include "base/rng.h"

#include "base/assert.h"

uint64_t rq_splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t rq_mix64(uint64_t x) { return rq_splitmix64(&x); }

void rq_rng_seed(struct rq_rng *r, uint64_t seed) {
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++) r->s[i] = rq_splitmix64(&sm);
    /* xoshiro's state must not be all zero; splitmix64 never yields four zeros, but assert it. */
    RQ_ASSERT((r->s[0] | r->s[1] | r->s[2] | r->s[3]) != 0);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rq_rng_next(struct rq_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void rq_rng_jump(struct rq_rng *r) {
    static const uint64_t jump[4] = {0x180ec6d33cfd0abaull, 0xd5a61266f0c9392cull,
                                     0xa9582618e03fc9aaull, 0x39abdc4529b1661cull};
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int i = 0; i < 4; i++) {
        for (int b = 0; b < 64; b++) {
            if (jump[i] & (1ull << b)) {
                s0 ^= r->s[0];
                s1 ^= r->s[1];
                s2 ^= r->s[2];
                s3 ^= r->s[3];
            }
            rq_rng_next(r);
        }
    }
    r->s[0] = s0;
    r->s[1] = s1;
    r->s[2] = s2;
    r->s[3] = s3;
}

void rq_rng_stream(struct rq_rng *r, uint64_t seed, uint32_t stream) {
    RQ_ASSERT(stream < 4096);
    rq_rng_seed(r, seed);
    for (uint32_t i = 0; i < stream; i++) rq_rng_jump(r);
}

uint64_t rq_rng_below(struct rq_rng *r, uint64_t bound) {
    RQ_ASSERT(bound > 0);
    /* Lemire's nearly-divisionless method. */
    unsigned __int128 m = (unsigned __int128)rq_rng_next(r) * bound;
    uint64_t low = (uint64_t)m;
    if (low < bound) {
        uint64_t threshold = (0 - bound) % bound;
        while (low < threshold) {
            m = (unsigned __int128)rq_rng_next(r) * bound;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

uint64_t rq_rng_range(struct rq_rng *r, uint64_t lo, uint64_t hi) {
    RQ_ASSERT(lo <= hi);
    if (hi - lo == UINT64_MAX) return rq_rng_next(r);
    return lo + rq_rng_below(r, hi - lo + 1);
}

int rq_rng_chance(struct rq_rng *r, uint32_t ppm) {
    RQ_ASSERT(ppm <= RQ_PPM);
    if (ppm == 0) return 0;
    return rq_rng_below(r, RQ_PPM) < ppm;
}
