/* Pipeline results through the public API (mtmi.h): result requests (class
 * map, int8 logits, fp16 depth), the result table, mtmi_pipeline_collect
 * against the zero-copy mtmi_pipeline_collect_results, a head asked for
 * nothing left out, bad requests refused; with --gpu the same on a GPU with
 * results left in device memory (read back with cudaMemcpy after waiting on
 * the ready event, the frame given back with an event of a consumer
 * stream), compared with the same pipeline delivering to the host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mtmi.h"
#if MTMI_HAVE_CUDA
#include <cuda_runtime.h>
#endif


enum { H = 128, W = 128, FRAMES = 4 };

/* Frame k: seeded RGB-like floats, normalized like a picture. */
static void make_frame(float *x, int k) {
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(k + 1);
    for (int i = 0; i < 3 * H * W; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * 3.0f + (i / (H * W) - 1) * 0.3f;
    }
    printf("frame %d: seeded inputs\n", k);
}

static size_t result_bytes(const mtmi_result_info *r) {
    size_t n = 1;
    for (int d = 0; d < r->rank; d++) n *= (size_t)r->dims[d];
    return n * (r->dtype == MTMI_FLOAT ? 4 : r->dtype == MTMI_FLOAT16 ? 2 : 1);
}

/* Runs FRAMES frames; out[k][i] gets a host copy of result i of frame k. */
static int run_frames(mtmi_model *m, const char *place, const mtmi_result_request *req, int nreq, int zero_copy,
                      void *out[FRAMES][8], mtmi_result_info info[8], int *nres) {
    mtmi_tensor shape = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {1, 3, H, W}};
    mtmi_pipeline_options o = {.placement = place, .frames_in_flight = 2, .threads = 2, .input_shape = &shape,
                               .results = req, .nresults = nreq};
    mtmi_pipeline *p = NULL;
    if (mtmi_pipeline_create(m, &o, &p)) {
        fprintf(stderr, "pipeline (%s): %s\n", place, mtmi_last_error());
        return -1;
    }
    *nres = mtmi_pipeline_num_results(p);
    static char names[8][128]; /* the names live as long as the pipeline: keep copies */
    for (int i = 0; i < *nres && i < 8; i++) {
        mtmi_pipeline_result_info(p, i, &info[i]);
        snprintf(names[i], sizeof names[i], "%s", info[i].name);
        info[i].name = names[i];
    }
    float *x = malloc(sizeof(float) * 3 * H * W);
    int sub = 0, got = 0, rc = 0;
#if MTMI_HAVE_CUDA
    cudaStream_t consumer = NULL;
    cudaEvent_t done_reading = NULL;
#endif
    while (got < FRAMES && !rc) {
        if (sub < FRAMES && sub - got < 2) {
            make_frame(x, sub);
            mtmi_tensor in = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {1, 3, H, W}, .data = x};
            if (mtmi_pipeline_submit(p, &in, 1, (void *)(intptr_t)sub)) rc = -1;
            sub++;
            continue;
        }
        void *user = NULL;
        for (int i = 0; i < *nres; i++) out[got][i] = malloc(result_bytes(&info[i]));
        if (!zero_copy) {
            mtmi_tensor t[8];
            for (int i = 0; i < *nres; i++) t[i] = (mtmi_tensor){.data = out[got][i]};
            if (mtmi_pipeline_collect(p, t, *nres, &user)) rc = -1;
        } else {
            mtmi_result r[8];
            if (mtmi_pipeline_collect_results(p, r, *nres, &user)) {
                rc = -1;
                break;
            }
            void *event = NULL;
            for (int i = 0; i < *nres; i++) {
                if (!r[i].on_device) {
                    memcpy(out[got][i], r[i].tensor.data, result_bytes(&info[i]));
                    continue;
                }
#if MTMI_HAVE_CUDA
                /* a GPU consumer: waits for the result on its stream, reads it
                 * there, and gives the frame back with its own event */
                if (!consumer && (cudaStreamCreate(&consumer) || cudaEventCreate(&done_reading))) rc = -1;
                CHECK(r[i].ready_event != NULL, "device result %d without a ready event", i);
                if (cudaStreamWaitEvent(consumer, (cudaEvent_t)r[i].ready_event, 0) ||
                    cudaMemcpyAsync(out[got][i], r[i].tensor.data, result_bytes(&info[i]), cudaMemcpyDeviceToHost, consumer) ||
                    cudaEventRecord(done_reading, consumer))
                    rc = -1;
                event = done_reading;
#endif
            }
#if MTMI_HAVE_CUDA
            if (consumer && cudaStreamSynchronize(consumer)) rc = -1;
#endif
            CHECK(mtmi_pipeline_release(p, event) == MTMI_OK, "release: %s", mtmi_last_error());
            CHECK(mtmi_pipeline_release(p, NULL) != MTMI_OK, "a second release is refused");
        }
        CHECK((intptr_t)user == got, "frame %d came back as %d", got, (int)(intptr_t)user);
        got++;
    }
    if (rc) fprintf(stderr, "run (%s): %s\n", place, mtmi_last_error());
    free(x);
    mtmi_pipeline_free(p);
#if MTMI_HAVE_CUDA
    if (consumer) cudaStreamDestroy(consumer);
    if (done_reading) cudaEventDestroy(done_reading);
#endif
    return rc;
}

static void free_frames(void *out[FRAMES][8], int n) {
    for (int k = 0; k < FRAMES; k++)
        for (int i = 0; i < n; i++) free(out[k][i]);
}

/* The class map: discriminative (>= 4 classes), and per frame different. */
static void check_classes(const char *what, void *out[FRAMES][8], int ci) {
    int seen[256] = {0}, nclasses = 0;
    for (int i = 0; i < H * W; i++) seen[((uint8_t *)out[0][ci])[i]]++;
    for (int c = 0; c < 256; c++) nclasses += seen[c] >= H * W / 100;
    printf("%s: frame 0's class map has %d classes of >= 1%% of pixels\n", what, nclasses);
    CHECK(nclasses >= 4, "%s: degenerate class map (%d classes)", what, nclasses);
    CHECK(memcmp(out[0][ci], out[1][ci], H * W) != 0, "%s: frames 0 and 1 have the same class map", what);
}

static void check_host(mtmi_model *m) {
    const char *place = "encoder=cpu,seg=cpu,depth=cpu";
    mtmi_result_request req[2] = {{.output = mtmi_model_output_name(m, 0), .forms = MTMI_RESULT_CLASSES | MTMI_RESULT_INT8},
                                  {.output = mtmi_model_output_name(m, 1), .forms = MTMI_RESULT_FP16}};
    void *a[FRAMES][8] = {{0}}, *b[FRAMES][8] = {{0}};
    mtmi_result_info ia[8], ib[8];
    int na = 0, nb = 0;
    CHECK(!run_frames(m, place, req, 2, 0, a, ia, &na), "collect run failed");
    CHECK(!run_frames(m, place, req, 2, 1, b, ib, &nb), "collect_results run failed");
    CHECK(na == 4 && nb == 4, "results: %d and %d, expected 4 (int8, scale, classes, fp16 depth)", na, nb);
    if (na == 4) {
        CHECK(ia[0].form == MTMI_RESULT_INT8 && !ia[0].is_scale && ia[0].dtype == MTMI_INT8 && ia[0].rank == 4, "result 0: int8");
        CHECK(ia[1].is_scale && ia[1].dtype == MTMI_FLOAT && ia[1].rank == 1 && ia[1].dims[0] == 1, "result 1: the scales");
        CHECK(ia[2].form == MTMI_RESULT_CLASSES && ia[2].dtype == MTMI_UINT8 && ia[2].rank == 3 && ia[2].dims[1] == H,
              "result 2: class map");
        CHECK(ia[3].form == MTMI_RESULT_FP16 && ia[3].output == 1 && ia[3].dtype == MTMI_FLOAT16, "result 3: fp16 depth");
        CHECK(strstr(ia[2].name, ":classes") && !ia[2].on_device, "result 2 named %s", ia[2].name);
        for (int k = 0; k < FRAMES && nb == na; k++)
            for (int i = 0; i < na; i++)
                CHECK(!memcmp(a[k][i], b[k][i], result_bytes(&ia[i])), "frame %d result %d: collect and collect_results differ", k, i);
        check_classes("cpu", a, 2);
    }
    free_frames(a, na);
    free_frames(b, nb);
    /* a head asked for nothing does not run; bad requests are refused */
    mtmi_result_request only = {.output = mtmi_model_output_name(m, 0), .forms = MTMI_RESULT_CLASSES};
    mtmi_result_request none = {.output = mtmi_model_output_name(m, 1), .forms = 0};
    mtmi_result_request two[2] = {only, none};
    mtmi_tensor shape = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {1, 3, H, W}};
    mtmi_pipeline_options o = {.placement = place, .threads = 2, .input_shape = &shape, .results = two, .nresults = 2};
    mtmi_pipeline *p = NULL;
    CHECK(mtmi_pipeline_create(m, &o, &p) == MTMI_OK, "classes only: %s", mtmi_last_error());
    CHECK(p && mtmi_pipeline_num_results(p) == 1, "classes only: %d results", p ? mtmi_pipeline_num_results(p) : -1);
    mtmi_pipeline_free(p);
    p = NULL;
    mtmi_result_request bad = {.output = "no_such_output", .forms = MTMI_RESULT_CLASSES};
    o.results = &bad, o.nresults = 1;
    CHECK(mtmi_pipeline_create(m, &o, &p) != MTMI_OK && strstr(mtmi_last_error(), "no_such_output"), "unknown output: %s",
          mtmi_last_error());
    mtmi_result_request dev = {.output = mtmi_model_output_name(m, 0), .forms = MTMI_RESULT_CLASSES, .on_device = 1};
    o.results = &dev;
    CHECK(mtmi_pipeline_create(m, &o, &p) != MTMI_OK && strstr(mtmi_last_error(), "GPU"), "device results on a CPU head: %s",
          mtmi_last_error());
}

static void check_gpu(mtmi_model *m) {
    const char *place = "encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/fp16";
    mtmi_result_request host[2] = {{.output = mtmi_model_output_name(m, 0), .forms = MTMI_RESULT_CLASSES | MTMI_RESULT_INT8},
                                   {.output = mtmi_model_output_name(m, 1), .forms = MTMI_RESULT_FP16}};
    mtmi_result_request dev[2] = {host[0], host[1]};
    dev[0].on_device = dev[1].on_device = 1;
    void *a[FRAMES][8] = {{0}}, *b[FRAMES][8] = {{0}};
    mtmi_result_info ia[8], ib[8];
    int na = 0, nb = 0;
    CHECK(!run_frames(m, place, host, 2, 1, a, ia, &na), "GPU host-results run failed");
    CHECK(!run_frames(m, place, dev, 2, 1, b, ib, &nb), "GPU device-results run failed");
    CHECK(na == 4 && nb == 4 && ib[2].on_device && !ia[2].on_device && ib[2].device == 0, "GPU result tables");
    if (na == 4 && nb == 4) {
        for (int k = 0; k < FRAMES; k++)
            for (int i = 0; i < na; i++)
                CHECK(!memcmp(a[k][i], b[k][i], result_bytes(&ia[i])), "frame %d result %d: device and host delivery differ", k, i);
        check_classes("cuda fp16", a, 2);
    }
    free_frames(a, na);
    free_frames(b, nb);
}

int main(int argc, char **argv) {
    const int gpu = argc > 1 && !strcmp(argv[1], "--gpu");
    mtmi_reference_options ro = {.seed = 3, .height = H, .width = W};
    mtmi_model *m = NULL;
    if (mtmi_model_make_reference(&ro, &m)) {
        fprintf(stderr, "model: %s\n", mtmi_last_error());
        return 1;
    }
    if (!gpu) check_host(m);
    else {
#if MTMI_HAVE_CUDA
        int n = 0;
        if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
            printf("no GPU\n");
            mtmi_model_free(m);
            return 77;
        }
        check_gpu(m);
#else
        printf("no CUDA in this build\n");
        mtmi_model_free(m);
        return 77;
#endif
    }
    mtmi_model_free(m);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
