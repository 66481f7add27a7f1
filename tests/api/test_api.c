/* The public API's discipline: status codes, per-thread error strings, two
 * models at once, NULL and bad arguments rejected without crashing. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
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

    /* The preparation API: build the reference network small, save it as
     * loaded and simplified, load both back and run them: same outputs. */
    mtmi_reference_options ro = {.seed = 3, .height = 64, .width = 96};
    mtmi_model *ref = NULL, *plain = NULL, *simple = NULL;
    char dir[] = "/tmp/mtmi_api_XXXXXX", p1[256], p2[256], bad[300];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(p1, sizeof p1, "%s/plain.onnx", dir);
    snprintf(p2, sizeof p2, "%s/simple.onnx", dir);
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.onnx", dir);
    s = mtmi_model_make_reference(&ro, &ref);
    CHECK(s == MTMI_OK, "make reference: %s", mtmi_last_error());
    if (s == MTMI_OK) {
        mtmi_save_options so = {.external_threshold = 4096};
        CHECK(mtmi_model_save(ref, p1, &so) == MTMI_OK, "save: %s", mtmi_last_error());
        so.simplify = 1;
        CHECK(mtmi_model_save(ref, p2, &so) == MTMI_OK, "save simplified: %s", mtmi_last_error());
        s = mtmi_model_save(ref, bad, &so);
        CHECK(s == MTMI_ERR_IO && strstr(mtmi_last_error(), "x.onnx"), "unwritable path: %d '%s'", s, mtmi_last_error());
        CHECK(access(bad, F_OK) != 0, "partial file left");
        CHECK(mtmi_model_load(p1, NULL, &plain) == MTMI_OK, "load plain: %s", mtmi_last_error());
        CHECK(mtmi_model_load(p2, NULL, &simple) == MTMI_OK, "load simplified: %s", mtmi_last_error());
    }
    if (plain && simple) {
        float *x = malloc(sizeof(float) * 3 * 64 * 96);
        for (int i = 0; i < 3 * 64 * 96; i++) x[i] = sinf(i * 0.37f) * 2.0f;
        mtmi_tensor in = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {1, 3, 64, 96}, .data = x};
        mtmi_model *models[2] = {plain, simple};
        float *outs[2][2] = {{0}};
        int64_t sizes[2] = {0};
        for (int k = 0; k < 2; k++) {
            mtmi_plan *p = NULL;
            mtmi_plan_options po = {.device = "cpu", .threads = 1};
            if (mtmi_plan_create(models[k], &po, &p) != MTMI_OK) {
                CHECK(0, "plan %d: %s", k, mtmi_last_error());
                continue;
            }
            mtmi_tensor out[2];
            for (int o = 0; o < 2; o++) {
                mtmi_plan_output_shape(p, o, &out[o].rank, out[o].dims);
                int64_t n = 1;
                for (int d = 0; d < out[o].rank; d++) n *= out[o].dims[d];
                sizes[o] = n;
                outs[k][o] = malloc(sizeof(float) * n);
                out[o].data = outs[k][o];
            }
            CHECK(mtmi_plan_run(p, &in, 1, out, 2) == MTMI_OK, "run %d: %s", k, mtmi_last_error());
            mtmi_plan_free(p);
        }
        for (int o = 0; o < 2; o++) {
            if (!outs[0][o] || !outs[1][o]) continue;
            double num = 0, den = 0;
            for (int64_t i = 0; i < sizes[o]; i++) {
                double d = outs[0][o][i] - outs[1][o][i];
                num += d * d;
                den += (double)outs[0][o][i] * outs[0][o][i];
            }
            double rel = den > 0 ? sqrt(num / den) : sqrt(num);
            printf("output %d: saved vs simplified rel L2 %.3e\n", o, rel);
            CHECK(rel < 1e-5, "output %d differs after simplify: %.3e", o, rel);
            free(outs[0][o]);
            free(outs[1][o]);
        }
        free(x);
    }
    mtmi_model_free(ref);
    mtmi_model_free(plain);
    mtmi_model_free(simple);

    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
