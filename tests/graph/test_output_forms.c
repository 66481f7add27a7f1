/* Result forms (mt_graph_output_forms: mtmi.ClassMap, mtmi.SymQuant, the
 * FP16 Cast) against oracles written here, on the CPU and (with --gpu) on
 * the GPU in FP16 and FP32 plans:
 *   - the class map equals the argmax of the float logits the same plan
 *     returns, ties to the lower index, NaN never winning;
 *   - the int8 logits equal the symmetric quantization `mtmi run` always
 *     wrote (scale = max|x| / 127, x / scale in double, round half to even),
 *     and the scale is that of each batch element;
 *   - FP16 equals the hardware conversion of the float output (F16C);
 *   - a plan asked for the class map alone (on the GPU: the resize and the
 *     argmax fused into one kernel, the logits never stored) gives the same
 *     map as a plan that also returns the logits.
 * The logits come from Relu -> bilinear x4 over inputs with duplicated
 * channels and whole-zero pixels, so the map has many classes and real
 * ties. */
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "graph/builder.h"
#include "graph/graph.h"
#include "check.h"
#if MTMI_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif


enum { NB = 2, C = 19, H = 12, W = 20, S = 4, OH = H * S, OW = W * S };

/* X [NB, C, H, W] -> Relu -> Resize x4 (bilinear) -> "seg"; nan_path:
 * X * 1 -> "seg" (no resize), so that NaN inputs reach the forms as NaN. */
static mt_graph *make_graph(int nan_path) {
    mt_builder b;
    if (mt_builder_init(&b, 7, 17)) return NULL;
    const int64_t dims[4] = {NB, C, H, W};
    int x = mt_b_input(&b, "x", MTMI_FLOAT, 4, dims), y;
    if (nan_path) {
        const float one = 1.0f;
        y = mt_b_binary(&b, "Mul", x, mt_b_const_f32(&b, 0, &one, 1));
    } else {
        const float sc[4] = {1, 1, S, S};
        y = mt_b_resize_scales(&b, mt_b_unary(&b, "Relu", x), sc, 4);
    }
    mt_b_output(&b, y, "seg");
    mt_graph *g = NULL;
    if (mt_builder_finish(&b, &g)) return NULL;
    mtmi_tensor shape = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {NB, C, H, W}};
    if (mt_graph_infer(g, &shape, 1, mt_cpu_eval, NULL)) {
        mt_graph_free(g);
        return NULL;
    }
    return g;
}

/* Seeded input: channel 7 duplicates channel 3 (ties), a band of pixels
 * negative everywhere (all-zero after Relu: a tie of every class). */
static void make_input(float *x, int with_nan) {
    uint64_t s = 12345;
    printf("input seed 12345%s\n", with_nan ? " (with NaN and inf)" : "");
    for (int i = 0; i < NB * C * H * W; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.35f) * 8.0f;
    }
    for (int n = 0; n < NB; n++)
        for (int p = 0; p < H * W; p++) {
            x[(n * C + 7) * H * W + p] = x[(n * C + 3) * H * W + p];
            if (p % W < 2)
                for (int c = 0; c < C; c++) x[(n * C + c) * H * W + p] = -1.0f - c;
        }
    if (with_nan) {
        x[5] = NAN;                         /* channel 0 of a pixel */
        x[3 * H * W + 9] = NAN;             /* channel 3 */
        x[1 * C * H * W + 11] = INFINITY;   /* batch element 1 gets scale 1 */
        x[1 * C * H * W + 40] = -INFINITY;
    }
}

/* The oracles. */
static uint8_t argmax_ref(const float *x, int64_t hw, int64_t i) {
    int best = -1;
    float bv = 0;
    for (int c = 0; c < C; c++) {
        const float v = x[c * hw + i];
        if (isnan(v)) continue;
        if (best < 0 || v > bv) best = c, bv = v;
    }
    return (uint8_t)(best < 0 ? 0 : best);
}

static double scale_ref(const float *x, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabsf(x[i]) > m) m = fabsf(x[i]); /* NaN never compares greater */
    return m > 0 && isfinite(m) ? m / 127.0 : 1.0;
}

static int8_t quant_ref(float x, double scale) {
    if (isnan(x)) return 0;
    double v = (double)x / scale;
    if (v > 127) v = 127;
    if (v < -127) v = -127;
    return (int8_t)lrint(v);
}

typedef struct run_out {
    float *logits;   /* NB x C x hw */
    uint16_t *half;
    int8_t *q;
    float scales[NB];
    uint8_t *classes;
    int64_t hw;
} run_out;

static void run_out_free(run_out *r) {
    free(r->logits);
    free(r->half);
    free(r->q);
    free(r->classes);
    memset(r, 0, sizeof *r);
}

typedef enum { DEV_CPU, DEV_GPU16, DEV_GPU32 } dev_kind;

/* Builds the graph with `forms`, runs it on dev, fills the outputs made. */
static int run_forms(int nan_path, unsigned forms, dev_kind dev, const float *x, run_out *r) {
    memset(r, 0, sizeof *r);
    mt_graph *g = make_graph(nan_path);
    if (!g) return fprintf(stderr, "graph: %s\n", mtmi_last_error()), -1;
    int src[8];
    unsigned form[8];
    const int n = mt_graph_output_forms(g, &forms, src, form, 8);
    if (n < 1) {
        fprintf(stderr, "forms: %s\n", mtmi_last_error());
        mt_graph_free(g);
        return -1;
    }
    r->hw = nan_path ? H * W : OH * OW;
    mt_tview in = {.data = (void *)x, .dtype = MTMI_FLOAT, .rank = 4, .dims = {NB, C, H, W}};
    mt_tview out[8];
    int seen_int8 = 0;
    for (int i = 0; i < n; i++) {
        const mt_value *v = &g->values[g->outputs[i]];
        memset(&out[i], 0, sizeof out[i]);
        out[i].dtype = v->dtype;
        out[i].rank = v->rank;
        memcpy(out[i].dims, v->dims, sizeof out[i].dims);
        const size_t bytes = mt_value_bytes(v);
        void *p = NULL;
        if (form[i] == MT_FORM_FLOAT) p = r->logits = malloc(bytes);
        else if (form[i] == MT_FORM_FP16) p = r->half = malloc(bytes);
        else if (form[i] == MT_FORM_CLASSES) p = r->classes = malloc(bytes);
        else if (!seen_int8++) p = r->q = malloc(bytes);
        else p = r->scales;
        out[i].data = p;
    }
    mtmi_status s;
    if (dev == DEV_CPU) {
        mt_cpu_plan *p = NULL;
        s = mt_cpu_plan_create(g, 2, &p);
        if (!s) s = mt_cpu_plan_run(p, &in, 1, out, n);
        mt_cpu_plan_free(p);
    } else {
#if MTMI_HAVE_CUDA
        mt_cuda_plan *p = NULL;
        s = mt_cuda_plan_create(g, 0, dev == DEV_GPU16, &p);
        if (!s) s = mt_cuda_plan_run(p, &in, 1, out, n);
        mt_cuda_plan_free(p);
#else
        s = MTMI_ERR_DEVICE;
#endif
    }
    mt_graph_free(g);
    if (s) fprintf(stderr, "run: %s\n", mtmi_last_error());
    return s ? -1 : 0;
}

/* Every form of one plan against the oracles over that plan's own logits. */
static void check_all(const char *what, const run_out *r, int expect_nan) {
    const int64_t hw = r->hw;
    int64_t bad_cls = 0, bad_q = 0, bad_h = 0, ties = 0, nan_seen = 0;
    int hist[C] = {0};
    for (int n = 0; n < NB; n++) {
        const float *x = r->logits + (int64_t)n * C * hw;
        const double sc = scale_ref(x, C * hw);
        CHECK(r->scales[n] == (float)sc, "%s: scale of element %d is %.9g, expected %.9g", what, n, r->scales[n], sc);
        for (int64_t i = 0; i < hw; i++) {
            const uint8_t want = argmax_ref(x, hw, i), got = r->classes[n * hw + i];
            bad_cls += want != got;
            hist[got < C ? got : 0]++;
            int at_max = 0;
            for (int c = 0; c < C; c++) at_max += x[c * hw + i] == x[want * hw + i];
            ties += at_max > 1;
        }
        for (int64_t i = 0; i < C * hw; i++) {
            nan_seen += isnan(x[i]);
            bad_q += r->q[n * C * hw + i] != quant_ref(x[i], sc);
            bad_h += r->half[n * C * hw + i] != _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
        }
    }
    int classes = 0;
    for (int c = 0; c < C; c++) classes += hist[c] >= (int)(NB * hw / 100);
    printf("%s: %d classes of >= 1%% of pixels, %lld tied pixels, %lld NaN logits\n", what, classes, (long long)ties,
           (long long)nan_seen);
    CHECK(classes >= 8, "%s: degenerate class map (%d classes cover >= 1%% of pixels)", what, classes);
    CHECK(ties >= hw / 20, "%s: only %lld tied pixels: the tie-break is not exercised", what, (long long)ties);
    CHECK(!expect_nan || nan_seen > 0, "%s: no NaN reached the forms", what);
    CHECK(bad_cls == 0, "%s: %lld class-map pixels differ from the argmax of the logits", what, (long long)bad_cls);
    CHECK(bad_q == 0, "%s: %lld int8 logits differ from the reference quantization", what, (long long)bad_q);
    CHECK(bad_h == 0, "%s: %lld FP16 values differ from the F16C conversion", what, (long long)bad_h);
}

static void check_device(const char *name, dev_kind dev) {
    float *x = malloc(sizeof(float) * NB * C * H * W);
    for (int nan_path = 0; nan_path < 2; nan_path++) {
        char what[96];
        snprintf(what, sizeof what, "%s, %s", name, nan_path ? "NaN and inf logits" : "relu -> resize x4 logits");
        make_input(x, nan_path);
        run_out all, only_cls, only_q;
        if (run_forms(nan_path, MT_FORM_ALL, dev, x, &all)) {
            CHECK(0, "%s: the plan with every form failed", what);
            continue;
        }
        check_all(what, &all, nan_path);
        /* the class map alone (fused on the GPU) and the int8 logits alone */
        if (!run_forms(nan_path, MT_FORM_CLASSES, dev, x, &only_cls)) {
            int64_t d = 0;
            for (int64_t i = 0; i < NB * all.hw; i++) d += only_cls.classes[i] != all.classes[i];
            CHECK(d == 0, "%s: the class map alone differs from the one made beside the logits in %lld pixels", what, (long long)d);
        } else
            CHECK(0, "%s: the class-map-only plan failed", what);
        if (!run_forms(nan_path, MT_FORM_INT8, dev, x, &only_q)) {
            CHECK(!memcmp(only_q.q, all.q, (size_t)NB * C * all.hw), "%s: the int8 logits alone differ", what);
            CHECK(!memcmp(only_q.scales, all.scales, sizeof all.scales), "%s: the scales alone differ", what);
        } else
            CHECK(0, "%s: the int8-only plan failed", what);
        run_out_free(&all);
        run_out_free(&only_cls);
        run_out_free(&only_q);
    }
    free(x);
}

/* The graph-level contract: names, order, source indices, and a dropped
 * output's nodes gone. */
static void check_graph_forms(void) {
    mt_graph *g = make_graph(0);
    CHECK(g != NULL, "graph: %s", mtmi_last_error());
    if (!g) return;
    int src[8];
    unsigned form[8];
    unsigned forms = MT_FORM_CLASSES | MT_FORM_INT8;
    const int n = mt_graph_output_forms(g, &forms, src, form, 8);
    CHECK(n == 3, "classes + int8 give %d outputs, expected 3 (values, scales, map)", n);
    if (n == 3) {
        CHECK(!strcmp(g->values[g->outputs[0]].name, "seg:int8") && !strcmp(g->values[g->outputs[1]].name, "seg:scale") &&
                  !strcmp(g->values[g->outputs[2]].name, "seg:classes"),
              "output names %s %s %s", g->values[g->outputs[0]].name, g->values[g->outputs[1]].name, g->values[g->outputs[2]].name);
        CHECK(form[0] == MT_FORM_INT8 && form[1] == MT_FORM_INT8 && form[2] == MT_FORM_CLASSES && src[2] == 0, "form table");
        CHECK(g->values[g->outputs[2]].dtype == MTMI_UINT8 && g->values[g->outputs[2]].rank == 3 &&
                  g->values[g->outputs[2]].dims[1] == OH,
              "class map type/shape");
    }
    mt_graph_free(g);
    g = make_graph(0);
    forms = 0;
    CHECK(mt_graph_output_forms(g, &forms, NULL, NULL, 0) == 0 && g->nnodes == 0, "an output asked for nothing keeps %d nodes",
          g->nnodes);
    mt_graph_free(g);
    g = make_graph(0);
    forms = 64;
    CHECK(mt_graph_output_forms(g, &forms, NULL, NULL, 0) < 0 && strstr(mtmi_last_error(), "unknown result form"),
          "a bad form is refused: %s", mtmi_last_error());
    mt_graph_free(g);
}

int main(int argc, char **argv) {
    const int gpu = argc > 1 && !strcmp(argv[1], "--gpu");
    if (!gpu) {
        check_graph_forms();
        check_device("cpu", DEV_CPU);
    } else {
#if MTMI_HAVE_CUDA
        if (mt_cuda_check_device(0)) {
            printf("no GPU: %s\n", mtmi_last_error());
            return 77;
        }
        check_device("cuda fp16", DEV_GPU16);
        check_device("cuda fp32", DEV_GPU32);
#else
        printf("no CUDA in this build\n");
        return 77;
#endif
    }
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
