/* The C tests' assertion: counts checks and failures and prints each failure
 * with its place, so a test reports every broken expectation in one run and
 * ends with "N passed, N failed" from its own counters. */
#ifndef MT_TESTS_CHECK_H
#define MT_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* A mkdtemp/mkstemp template "<TMPDIR or /tmp>/<prefix>XXXXXX" in buf: the
 * tests write under $TMPDIR, which tests/tools/scratch.sh points at a folder
 * it removes when the test ends. */
static inline char *test_tmp_template(char *buf, size_t cap, const char *prefix) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, cap, "%s/%sXXXXXX", base && *base ? base : "/tmp", prefix);
    return buf;
}

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
