/* suite_main.h — how every Check test binary ends: run the runner's suites, report, free, and turn
 * the failure count into the exit status scripts/run-unit.sh reads. Takes ownership of runner. */
#ifndef RQ_TESTS_SUITE_MAIN_H
#define RQ_TESTS_SUITE_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int run_suites(SRunner *runner) {
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
