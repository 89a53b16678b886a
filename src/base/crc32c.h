/* CRC32C (Castagnoli), the checksum of every frame, WAL record, block and snapshot.
 * rq_crc32c() uses the SSE4.2 crc32 instruction when the CPU has it, else a slicing table;
 * both are exported so tests can check each against the published vectors.
 * The running form: crc = rq_crc32c(0, a, n); crc = rq_crc32c(crc, b, m) == rq_crc32c(0, ab, n+m). */
#ifndef RQ_BASE_CRC32C_H
#define RQ_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t rq_crc32c(uint32_t crc, const void *data, size_t len);
uint32_t rq_crc32c_sw(uint32_t crc, const void *data, size_t len);
/* Only callable when rq_crc32c_hw_available(); asserts so. */
uint32_t rq_crc32c_hw(uint32_t crc, const void *data, size_t len);
int rq_crc32c_hw_available(void);

#endif
