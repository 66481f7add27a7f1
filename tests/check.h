/* The C tests' assertion: counts checks and failures and prints each failure
 * with its place, so a test reports every broken expectation in one run and
 * ends with "N passed, N failed" from its own counters. */
#ifndef MT_TESTS_CHECK_H
#define MT_TESTS_CHECK_H

#include <stdio.h>

static int failures, checks;
#define CHECK(cond, ...)                                \
    do {                                                \
        checks++;                                       \
        if (!(cond)) {                                  \
            failures++;                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

#endif
