/* The public API's discipline: status codes, per-thread error strings, two
 * models at once, NULL and bad arguments rejected without crashing. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtmi.h"

static int failures, checks;
#define CHECK(cond, ...)                                         \
    do {                                                         \
        checks++;                                                \
        if (!(cond)) {                                           \
            failures++;                                          \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);          \
            printf(__VA_ARGS__);                                 \
            printf("\n");                                        \
        }                                                        \
    } while (0)

static void *thread_error(void *arg) {
    mtmi_model *m = NULL;
    mtmi_status s = mtmi_model_load("/nonexistent/thread.onnx", NULL, &m);
    CHECK(s == MTMI_ERR_IO, "thread load status %d", s);
    CHECK(strstr(mtmi_last_error(), "thread.onnx") != NULL, "thread error '%s'", mtmi_last_error());
    return NULL;
}

int main(void) {
    mtmi_model *m = (mtmi_model *)0x1;
    mtmi_status s = mtmi_model_load("/nonexistent/main.onnx", NULL, &m);
    CHECK(s == MTMI_ERR_IO, "status %d", s);
    CHECK(m == NULL, "out handle not cleared");
    CHECK(strstr(mtmi_last_error(), "main.onnx") != NULL, "error '%s'", mtmi_last_error());
    CHECK(strchr(mtmi_last_error(), '\n') == NULL, "multi-line error");

    /* Another thread's failure must not overwrite this thread's message. */
    pthread_t t;
    pthread_create(&t, NULL, thread_error, NULL);
    pthread_join(t, NULL);
    CHECK(strstr(mtmi_last_error(), "main.onnx") != NULL, "error clobbered by other thread: '%s'", mtmi_last_error());

    s = mtmi_model_load(NULL, NULL, &m);
    CHECK(s == MTMI_ERR_ARG, "NULL path status %d", s);
    s = mtmi_plan_create(NULL, NULL, NULL);
    CHECK(s == MTMI_ERR_ARG, "NULL plan args status %d", s);
    CHECK(strcmp(mtmi_status_name(MTMI_ERR_PARSE), "parse error") == 0, "status name");
    mtmi_model_free(NULL);
    mtmi_plan_free(NULL);

    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
