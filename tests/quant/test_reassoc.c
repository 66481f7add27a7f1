/* The INT8 fuse conv reassociated in exact integers (src/quant/reassoc.c,
 * mtmi.QUpsampleSum; graph/qops.h) against an independent oracle.
 *
 * A seg-head-like graph: four maps y_l = conv1x1(x_l) at H, H/2, H/4, H/8,
 * the last three resized 2x / 4x / 8x (bilinear, half_pixel), concatenated,
 * fused by conv1x1 + Relu (z), then a classifier.  Quantized with min-max
 * scales of a CPU run (the rewrite as the INT8 paths make it), then once
 * more with mt_quant_reassociate.  The oracle takes the maps y_l of the
 * plain INT8 run and computes z by the contract in double: q = quantize(y_l,
 * x_scale of the fuse conv), the exact bilinear upsample of the codes, the
 * int8 weights' sums plus the bias, times 256 (an integer), to float, times
 * mult / 256, Relu, requantized with y_scale.  The reassociated graph's z
 * must be those bits, every element; the classifier's logits must stay
 * within a few quantization steps of the plain INT8 run's (where the
 * rounding moved) and its argmax agree on most pixels.  Odd sizes too
 * (clamped taps at every border).  Also: a graph whose concat has no
 * upsampled map is left alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu.h"
#include "graph/builder.h"
#include "oracle.h"
#include "quant/quant.h"

enum { L = 4, CLS = 5 };

typedef struct net {
    mt_graph *g;
    int64_t H, W, C[L], Cy[L];
} net;

/* y_l = conv1x1(x_l); cat(y_0, up2(y_1), up4(y_2), up8(y_3)) -> conv1x1 +
 * Relu -> conv1x1 (classes).  up == 0: no resizes (every map full size). */
static int build(net *nt, uint64_t seed, int up) {
    mt_builder b;
    if (mt_builder_init(&b, seed, 17)) return -1;
    int ys[L];
    for (int l = 0; l < L; l++) {
        const int f = up ? 1 << l : 1;
        const int64_t d[4] = {1, nt->C[l], nt->H / f, nt->W / f};
        char nm[16];
        snprintf(nm, sizeof nm, "x%d", l);
        int x = mt_b_input(&b, nm, MTMI_FLOAT, 4, d);
        snprintf(nm, sizeof nm, "proj%d", l);
        int y = mt_b_conv(&b, x, nm, (int)nt->C[l], (int)nt->Cy[l], 1, 1, 0, 1, 1, d[2] * d[3]);
        if (f > 1) {
            const float sc[4] = {1, 1, (float)f, (float)f};
            y = mt_b_resize_scales(&b, y, sc, 4);
        }
        ys[l] = y;
    }
    int cat = mt_b_concat(&b, ys, L, 1);
    int ctot = 0;
    for (int l = 0; l < L; l++) ctot += (int)nt->Cy[l];
    int z = mt_b_unary(&b, "Relu", mt_b_conv(&b, cat, "fuse", ctot, 16, 1, 1, 0, 1, 0, nt->H * nt->W));
    mt_b_output(&b, mt_b_conv(&b, z, "cls", 16, CLS, 1, 1, 0, 1, 1, nt->H * nt->W), "logits");
    return mt_builder_finish(&b, &nt->g) ? -1 : 0;
}

static float *run(const mt_graph *g, const mt_tview *in, int nin, mt_tview *out, int nout) {
    mt_cpu_plan *p = NULL;
    for (int i = 0; i < nout; i++) out[i].data = calloc(1, mt_value_bytes(&g->values[g->outputs[i]]) + 16);
    int rc = mt_cpu_plan_create(g, 1, &p) || mt_cpu_plan_run(p, in, nin, out, nout);
    if (rc) printf("  CPU run: %s\n", mtmi_last_error());
    mt_cpu_plan_free(p);
    return rc ? NULL : out[0].data;
}

/* the quantized graph of nt->g with min-max scales of a run on `in` */
static mt_graph *quantized(const mt_graph *g0, const mt_tview *in) {
    mt_graph *g = mt_graph_clone(g0), *q = NULL;
    mt_calib_stats st = {0};
    mt_calib_observer ob = {0};
    mt_calib_cache cache = {0};
    mt_cpu_plan *cp = NULL;
    unsigned char *sel = malloc((size_t)g->nnodes + 1);
    memset(sel, 1, (size_t)g->nnodes + 1);
    mt_tview o = {0};
    o.data = calloc(1, mt_value_bytes(&g->values[g->outputs[0]]) + 16);
    if (mt_calib_stats_init(&st, g, sel) || mt_cpu_plan_create(g, 1, &cp) || mt_calib_observer_attach(&ob, &st, g, cp) ||
        mt_cpu_plan_run(cp, in, L, &o, 1) || mt_calib_stats_scales(&st, MT_CALIB_MINMAX, 0, NULL, &cache) ||
        mt_quant_stage_graph(g, &cache, "test", &q))
        printf("  quantize: %s\n", mtmi_last_error());
    free(o.data);
    mt_calib_observer_free(&ob);
    mt_cpu_plan_free(cp);
    mt_calib_stats_free(&st);
    mt_calib_cache_free(&cache);
    mt_graph_free(g);
    free(sel);
    return q;
}

static int find_node(const mt_graph *g, const char *op, int out_of) {
    for (int i = 0; i < g->nnodes; i++)
        if (!g->nodes[i].dead && !strcmp(g->nodes[i].op, op) && (out_of < 0 || g->nodes[i].in[0] == out_of)) return i;
    return -1;
}

/* half_pixel taps of output o over a side of `in` at factor f, weights x 16 */
static void taps(int64_t o, int64_t in, int f, int64_t *i0, int64_t *i1, double *w1) {
    double s = (o + 0.5) / f - 0.5;
    s = s < 0 ? 0 : s > in - 1 ? in - 1 : s;
    *i0 = (int64_t)s;
    *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
    *w1 = (s - (double)*i0) * 16.0;
}

static void check_sizes(uint64_t seed, int64_t H, int64_t W) {
    net nt = {.H = H, .W = W, .C = {8, 16, 24, 32}, .Cy = {8, 8, 16, 8}};
    CHECK(build(&nt, seed, 1) == 0, "build: %s", mtmi_last_error());
    mt_graph *g = nt.g;
    CHECK(mt_graph_optimize(g, NULL, 0, mt_cpu_eval, NULL, 1) == 0, "optimize: %s", mtmi_last_error());
    oracle_rng r = {seed + 5};
    mt_tview in[L];
    for (int l = 0; l < L; l++) {
        const mt_value *v = &g->values[g->inputs[l]];
        in[l] = (mt_tview){.dtype = MTMI_FLOAT, .rank = 4};
        memcpy(in[l].dims, v->dims, sizeof in[l].dims);
        const int64_t n = mt_value_numel(v);
        float *x = malloc(sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++) x[k] = (float)oracle_normal(&r);
        in[l].data = x;
    }
    mt_graph *qa = quantized(g, in);
    CHECK(qa != NULL, "no INT8 graph");
    if (!qa) return;
    /* the fuse QConv: the one reading the Concat */
    int cat = find_node(qa, "Concat", -1);
    int fi = cat >= 0 ? find_node(qa, "QConv", qa->nodes[cat].out[0]) : -1;
    CHECK(fi >= 0, "no QConv over the concat");
    if (fi < 0) return;
    /* y_l (the concat's sources: the resizes' inputs) and z as outputs */
    int yv[L], zv = qa->nodes[fi].out[0];
    for (int l = 0; l < L; l++) {
        int u = qa->nodes[cat].in[l], p = qa->values[u].producer;
        yv[l] = p >= 0 && !strcmp(qa->nodes[p].op, "Resize") ? qa->nodes[p].in[0] : u;
        CHECK(mt_graph_add_output(qa, yv[l]) == 0, "output y%d", l);
    }
    CHECK(mt_graph_add_output(qa, zv) == 0, "output z");
    /* the fuse QConv's constants, read before the rewrite */
    const mt_node *f = &qa->nodes[fi];
    const float sx = mt_attr_float(f, "x_scale", 0), ys = mt_attr_float(f, "y_scale", 0);
    const mt_value *wv = &qa->values[f->in[1]];
    const int64_t M = wv->dims[0], K = wv->dims[1];
    const int8_t *wq = wv->data;
    const int32_t *bq = qa->values[f->in[2]].data;
    const float *mult = qa->values[f->in[3]].data;
    CHECK(sx > 0 && M == 16 && K == 40, "fuse QConv: x_scale %g, %lld x %lld", sx, (long long)M, (long long)K);

    mt_graph *qb = mt_graph_clone(qa);
    int made = -1;
    CHECK(mt_quant_reassociate(qb, &made) == 0 && made == 1, "reassociate: made %d (%s)", made, mtmi_last_error());
    CHECK(find_node(qb, "QUpsampleSum", -1) >= 0 && find_node(qb, "Concat", -1) < 0 && find_node(qb, "Resize", -1) < 0,
          "the concat and resizes are still there");

    const int nout = 2 + L;
    mt_tview oa[2 + L], ob[2 + L];
    memset(oa, 0, sizeof oa);
    memset(ob, 0, sizeof ob);
    float *la = run(qa, in, L, oa, nout), *lb = run(qb, in, L, ob, nout);
    CHECK(la && lb, "runs");
    if (la && lb) {
        /* the oracle of z */
        const float *z = ob[1 + L].data;
        int64_t bad = 0, nonzero = 0;
        double *U = malloc(sizeof(double) * (size_t)K);
        for (int64_t oy = 0; oy < H; oy++)
            for (int64_t ox = 0; ox < W; ox++) {
                int64_t k = 0;
                for (int l = 0; l < L; l++) {
                    const int fct = 1 << l;
                    const int64_t hl = H / fct, wl = W / fct;
                    const float *y = oa[1 + l].data;
                    int64_t y0, y1, x0, x1;
                    double wy1, wx1;
                    taps(oy, hl, fct, &y0, &y1, &wy1);
                    taps(ox, wl, fct, &x0, &x1, &wx1);
                    for (int64_t c = 0; c < nt.Cy[l]; c++, k++) {
                        const float *p = y + c * hl * wl;
                        const double q00 = mt_quantize(p[y0 * wl + x0], sx), q01 = mt_quantize(p[y0 * wl + x1], sx);
                        const double q10 = mt_quantize(p[y1 * wl + x0], sx), q11 = mt_quantize(p[y1 * wl + x1], sx);
                        /* x 256: an integer */
                        U[k] = (16 - wy1) * ((16 - wx1) * q00 + wx1 * q01) + wy1 * ((16 - wx1) * q10 + wx1 * q11);
                    }
                }
                for (int64_t m = 0; m < M; m++) {
                    double acc = 256.0 * bq[m];
                    for (int64_t kk = 0; kk < K; kk++) acc += U[kk] * wq[m * K + kk];
                    float v = (float)acc * ldexpf(mult[m], -8);
                    v = v > 0 ? v : 0.0f;
                    if (ys > 0) v = (float)mt_quantize(v, ys) * ys;
                    const float got = z[(m * H + oy) * W + ox];
                    if (memcmp(&v, &got, sizeof v)) {
                        if (!bad) printf("  first difference: z[%lld, %lld, %lld] %.9g, oracle %.9g\n", (long long)m, (long long)oy,
                                         (long long)ox, got, v);
                        bad++;
                    }
                    nonzero += v != 0;
                }
            }
        free(U);
        printf("  %lldx%lld: z %lld of %lld elements differ from the oracle (%lld non-zero)\n", (long long)H, (long long)W,
               (long long)bad, (long long)(M * H * W), (long long)nonzero);
        CHECK(bad == 0 && nonzero > M * H * W / 10, "%lldx%lld: z differs from the oracle in %lld elements", (long long)H,
              (long long)W, (long long)bad);
        /* the logits: near the plain INT8 run's, the classes mostly the same */
        double mx = 0, amax = 0;
        int64_t agree = 0;
        for (int64_t px = 0; px < H * W; px++) {
            int ca = 0, cb = 0;
            for (int c = 0; c < CLS; c++) {
                const float a = la[c * H * W + px], b = lb[c * H * W + px];
                mx = fmax(mx, fabs(a - b));
                amax = fmax(amax, fabs(a));
                if (a > la[ca * H * W + px]) ca = c;
                if (b > lb[cb * H * W + px]) cb = c;
            }
            agree += ca == cb;
        }
        printf("  logits: max |reassociated - plain| %.4f of max |plain| %.3f; classes agree on %.2f %%\n", mx, amax,
               100.0 * agree / (H * W));
        CHECK(mx <= 0.1 * amax && agree >= 0.9 * H * W, "logits moved too far");
    }
    for (int i = 0; i < nout; i++) free(oa[i].data), free(ob[i].data);
    for (int l = 0; l < L; l++) free(in[l].data);
    mt_graph_free(qa);
    mt_graph_free(qb);
    mt_graph_free(g);
}

/* no map upsampled: nothing to reassociate */
static void check_untouched(uint64_t seed) {
    net nt = {.H = 8, .W = 8, .C = {8, 8, 8, 8}, .Cy = {8, 8, 8, 8}};
    CHECK(build(&nt, seed, 0) == 0, "build: %s", mtmi_last_error());
    CHECK(mt_graph_optimize(nt.g, NULL, 0, mt_cpu_eval, NULL, 1) == 0, "optimize");
    mt_tview in[L];
    oracle_rng r = {seed};
    for (int l = 0; l < L; l++) {
        const mt_value *v = &nt.g->values[nt.g->inputs[l]];
        in[l] = (mt_tview){.dtype = MTMI_FLOAT, .rank = 4};
        memcpy(in[l].dims, v->dims, sizeof in[l].dims);
        float *x = malloc(sizeof(float) * (size_t)mt_value_numel(v));
        for (int64_t k = 0; k < mt_value_numel(v); k++) x[k] = (float)oracle_normal(&r);
        in[l].data = x;
    }
    mt_graph *q = quantized(nt.g, in);
    int made = -1;
    CHECK(q && mt_quant_reassociate(q, &made) == 0 && made == 0, "a concat of full-size maps was rewritten (%d)", made);
    for (int l = 0; l < L; l++) free(in[l].data);
    mt_graph_free(q);
    mt_graph_free(nt.g);
}

int main(void) {
    const uint64_t seed = oracle_seed(7);
    printf("INT8 fuse conv reassociated (QUpsampleSum) vs the contract's oracle:\n");
    check_sizes(seed, 32, 48);
    check_sizes(seed + 1, 40, 24); /* 40 / 8 = 5: odd low-resolution sides */
    check_untouched(seed + 2);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
