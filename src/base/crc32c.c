#include "base/crc32c.h"

#include <string.h>

#include "base/assert.h"

#define CRC32C_POLY_REFLECTED 0x82F63B78u

/* Slicing-by-8 tables, built on first use (deterministic: pure function of the polynomial). */
static uint32_t crc_table[8][256];
static int crc_table_ready;

static void crc_table_build(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (CRC32C_POLY_REFLECTED & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = crc_table[t - 1][i];
            crc_table[t][i] = (prev >> 8) ^ crc_table[0][prev & 0xFF];
        }
    }
    crc_table_ready = 1;
}

uint32_t rq_crc32c_sw(uint32_t crc, const void *data, size_t len) {
    if (!crc_table_ready) crc_table_build();
    const uint8_t *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        lo ^= crc;
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
              crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
              crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const void *data,
                                                                size_t len) {
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t word;
        memcpy(&word, p, sizeof word);
        c = _mm_crc32_u64(c, word);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}

int rq_crc32c_hw_available(void) { return __builtin_cpu_supports("sse4.2"); }

uint32_t rq_crc32c_hw(uint32_t crc, const void *data, size_t len) {
    RQ_ASSERT(rq_crc32c_hw_available());
    return crc32c_sse42(crc, data, len);
}
#else
int rq_crc32c_hw_available(void) { return 0; }

uint32_t rq_crc32c_hw(uint32_t crc, const void *data, size_t len) {
    (void)crc;
    (void)data;
    (void)len;
    RQ_UNREACHABLE();
}
#endif

uint32_t rq_crc32c(uint32_t crc, const void *data, size_t len) {
    static int hw = -1;
    if (hw < 0) hw = rq_crc32c_hw_available();
    return hw ? rq_crc32c_hw(crc, data, len) : rq_crc32c_sw(crc, data, len);
}
