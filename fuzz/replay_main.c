/* Replays fuzz corpus files through a target without libFuzzer, so make test can run every
 * corpus under gcc or clang with ASan+UBSan: replay FILE... (exit 0 when all ran). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { REPLAY_INPUT_MAX = 1 << 20 };

int main(int argc, char **argv) {
    static uint8_t buf[REPLAY_INPUT_MAX];
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 2;
        }
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("replayed %d inputs\n", argc - 1);
    return 0;
}
