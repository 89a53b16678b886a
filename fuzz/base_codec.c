/* Fuzz target: the bounds-checked reader (src/base/codec.h) every decoder is built on.
 * The input is a script: its first byte picks a sequence of reads; the rest is the data. The
 * reader must never read past its end (ASan), must report truncation or corruption instead,
 * must be sticky, and every varint it accepts must re-encode to a value that decodes the same. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "base/codec.h"
#include "base/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    uint8_t script = data[0];
    struct rq_reader r;
    rq_reader_init(&r, data + 1, size - 1);
    for (int step = 0; step < 64; step++) {
        size_t before = r.pos;
        int err;
        uint64_t v = 0;
        switch ((script >> (step % 4 * 2)) & 3) {
        case 0: {
            err = rq_read_varint(&r, &v);
            if (err == 0) {
                uint8_t buf[RQ_VARINT_MAX_SIZE];
                size_t n = rq_varint_put(buf, v);
                struct rq_reader again;
                rq_reader_init(&again, buf, n);
                uint64_t w;
                RQ_ASSERT(rq_read_varint(&again, &w) == 0);
                RQ_ASSERT(w == v);
                RQ_ASSERT(n <= r.pos - before);  /* canonical form is never longer */
            }
            break;
        }
        case 1: {
            uint32_t x;
            err = rq_read_u32(&r, &x);
            v = x;
            break;
        }
        case 2: err = rq_read_u64(&r, &v); break;
        default: {
            const uint8_t *p;
            err = rq_read_bytes(&r, step % 7, &p);
            if (err == 0 && step % 7) RQ_ASSERT(p >= data + 1 && p + step % 7 <= data + size);
            break;
        }
        }
        RQ_ASSERT(r.pos <= r.len);
        if (err) {
            RQ_ASSERT(err == RQ_ETRUNC || err == RQ_ECORRUPT);
            RQ_ASSERT(v == 0);
            uint32_t y;
            RQ_ASSERT(rq_read_u32(&r, &y) == err);  /* sticky */
            RQ_ASSERT(rq_reader_remaining(&r) == 0);
            break;
        }
    }
    return 0;
}
