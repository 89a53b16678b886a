/* Fuzz target: every pure decoder of src/store/snapshot.h on arbitrary bytes: the header and
 * trailer decoders, file-name parsing (which must round-trip), and the streaming verifier, fed the
 * whole input in pieces whose size the first byte picks (the verdict must not depend on it). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "base/assert.h"
#include "base/errors.h"
#include "store/snapshot.h"
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct store_snapshot_header h;
    uint64_t bad; const char *why;
    int rc = store_snapshot_decode_header(data, size, &h, &bad, &why);
    if (rc == 0) RQ_ASSERT(store_snapshot_file_size(&h) >= 72);
    uint32_t crc;
    (void)store_snapshot_decode_trailer(data, size, &crc);
    char name[STORE_SNAPSHOT_PATH_SIZE + 8];
    size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, n); name[n] = 0;
    uint64_t g, i;
    if (store_snapshot_parse_name(name, &g, &i) != STORE_SNAPSHOT_NAME_OTHER) {
        char back[STORE_SNAPSHOT_PATH_SIZE];
        if (strlen(name) == 43) store_snapshot_path(g, i, back); else store_snapshot_tmp_path(g, i, back);
        RQ_ASSERT(strcmp(back, name) == 0);
    }
    /* the whole input as a file, fed in pieces whose size the first byte picks */
    uint8_t config[STORE_SNAPSHOT_CONFIG_MAX];
    struct store_snapshot_verifier v, w;
    uint64_t group = size >= 16 ? ((uint64_t)data[8] | (uint64_t)data[9] << 8) : 0;
    if (size >= 16) memcpy(&group, data + 8, 8);
    store_snapshot_verifier_init(&v, group, config);
    store_snapshot_verifier_init(&w, group, NULL);
    size_t piece = size ? (size_t)data[0] % 97 + 1 : 1;
    for (size_t at = 0; at < size; at += piece)
        (void)store_snapshot_verifier_feed(&v, data + at, at + piece > size ? size - at : piece);
    (void)store_snapshot_verifier_feed(&w, data, size);
    int a = store_snapshot_verifier_finish(&v), b = store_snapshot_verifier_finish(&w);
    RQ_ASSERT(a == b);  /* piece sizes never change the verdict */
    if (a == 0) RQ_ASSERT(v.file_size == size);
    return 0;
}
