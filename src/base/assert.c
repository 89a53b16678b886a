#include "base/assert.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"

static void (*assert_hook)(void *arg);
static void *assert_hook_arg;

void rq_assert_set_hook(void (*hook)(void *arg), void *arg) {
    assert_hook = hook;
    assert_hook_arg = arg;
}

_Noreturn void rq_assert_fail(const char *expr, const char *file, int line) {
    char stamp[64];
    rq_log_stamp(stamp, sizeof stamp);
    /* stderr is not "the OS" in the determinism sense: nothing is read back from it. */
    fprintf(stderr, "%sassertion failed: %s at %s:%d\n", stamp, expr, file, line);
    if (assert_hook) {
        void (*hook)(void *arg) = assert_hook;
        assert_hook = NULL;  /* an assert inside the hook must not recurse */
        hook(assert_hook_arg);
    }
    fflush(stdout);
    fflush(stderr);
    abort();
}
