/* GPU kernel checks: every kernel of src/cuda against a plain CPU reference
 * (double accumulation) on seeded random inputs (the seed is printed;
 * MTMI_TEST_SEED sets it), FP16 and FP32 storage.
 * Prints max abs and relative L2 error per case; exit 1 on any failure,
 * 77 (ctest SKIP_RETURN_CODE) when no GPU is visible. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "cuda/kernels.h"

#include "cuda/cuda_ck.h"
#include "cuda/cuda_testutil.h"
#include "oracle.h"

static int g_fail = 0;
static mt_rng g_rng;


static float *rnd(int64_t n, float scale) {
    float *a = malloc(sizeof(float) * (n ? n : 1));
    for (int64_t i = 0; i < n; i++) a[i] = mt_rng_normal(&g_rng) * scale;
    return a;
}

/* device copy in storage type; host values rounded to it */
static void *up(float *h, int64_t n, int f16) {
    void *d;
    size_t es = f16 ? 2 : 4;
    CK(cudaMalloc(&d, n * es + 16));
    if (f16) {
        uint16_t *t = malloc(n * 2 + 2);
        for (int64_t i = 0; i < n; i++) {
            t[i] = mt_float_to_half(h[i]);
            h[i] = mt_half_to_float(t[i]);
        }
        CK(cudaMemcpy(d, t, n * 2, cudaMemcpyHostToDevice));
        free(t);
    } else CK(cudaMemcpy(d, h, n * 4, cudaMemcpyHostToDevice));
    return d;
}

static void *dalloc(int64_t n, int f16) {
    void *d;
    CK(cudaMalloc(&d, n * (f16 ? 2 : 4) + 16));
    CK(cudaMemset(d, 0xff, n * (f16 ? 2 : 4) + 16)); /* poison: NaN */
    return d;
}

static float *down(void *d, int64_t n, int f16) {
    CK(cudaDeviceSynchronize());
    float *h = malloc(sizeof(float) * (n ? n : 1));
    if (f16) {
        uint16_t *t = malloc(n * 2 + 2);
        CK(cudaMemcpy(t, d, n * 2, cudaMemcpyDeviceToHost));
        for (int64_t i = 0; i < n; i++) h[i] = mt_half_to_float(t[i]);
        free(t);
    } else CK(cudaMemcpy(h, d, n * 4, cudaMemcpyDeviceToHost));
    return h;
}

static void check(const char *name, const float *got, const double *ref, int64_t n, double tol) {
    double mx = 0, num = 0, den = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) bad = 1;
        double d = fabs(got[i] - ref[i]);
        if (d > mx) mx = d;
        num += d * d;
        den += ref[i] * ref[i];
    }
    double rel = den > 0 ? sqrt(num / den) : mx;
    int ok = !bad && rel <= tol;
    printf("  %-44s n=%-9lld max abs %.3e  rel L2 %.3e  %s (tol %.0e)\n", name, (long long)n, mx, rel,
           bad ? "NON-FINITE" : ok ? "ok" : "FAIL", tol);
    if (!ok) g_fail = 1;
}

static double tol_of(int f16) { return f16 ? 4e-3 : 1e-5; }

/* --------------------------------------------------------------- tests */
static void t_copy(int f16) {
    /* NCHW -> NHWC transpose copy with conversion f32 -> storage */
    int N = 2, C = 19, H = 33, W = 47;
    int64_t n = (int64_t)N * C * H * W;
    float *x = rnd(n, 1.f);
    void *dx;
    CK(cudaMalloc(&dx, n * 4));
    CK(cudaMemcpy(dx, x, n * 4, cudaMemcpyHostToDevice));
    void *dy = dalloc(n, f16);
    mtk_view sv = {4, {N, C, H, W}, {(int64_t)C * H * W, (int64_t)H * W, W, 1}};
    mtk_view dv = {4, {N, C, H, W}, {(int64_t)H * W * C, 1, (int64_t)W * C, C}};
    CK(mtk_copy(0, dy, &dv, f16 ? MTK_T_F16 : MTK_T_F32, dx, &sv, MTK_T_F32));
    float *y = down(dy, n, f16);
    double *ref = malloc(sizeof(double) * n);
    for (int a = 0; a < N; a++)
        for (int c = 0; c < C; c++)
            for (int h = 0; h < H; h++)
                for (int w = 0; w < W; w++) ref[(((int64_t)a * H + h) * W + w) * C + c] = x[(((int64_t)a * C + c) * H + h) * W + w];
    check(f16 ? "copy NCHW->NHWC f32->f16" : "copy NCHW->NHWC f32", y, ref, n, f16 ? 1e-3 : 0);
    free(x); free(y); free(ref); cudaFree(dx); cudaFree(dy);
}

static void t_elementwise(int f16) {
    /* gelu(x) * y + bias[c] with bias broadcast over rows, x transposed */
    int R = 1000, C = 96;
    int64_t n = (int64_t)R * C;
    float *x = rnd(n, 2.f), *y = rnd(n, 1.f), *b = rnd(C, 1.f);
    void *dx = up(x, n, f16), *dy = up(y, n, f16), *db = up(b, C, f16), *dout = dalloc(n, f16);
    mtk_prog pr;
    memset(&pr, 0, sizeof pr);
    mtk_instr ins[] = {{MTK_OP_LOAD, 0, 0, 0, 0, 0}, {MTK_OP_IMM, 1, 0, 0, 1.41421356f, 0}, {MTK_OP_DIV, 2, 0, 1, 0, 0},
                       {MTK_OP_ERF, 3, 2, 0, 0, 0},  {MTK_OP_IMM, 4, 0, 0, 1.f, 0},         {MTK_OP_ADD, 5, 3, 4, 0, 0},
                       {MTK_OP_MUL, 6, 0, 5, 0, 0},  {MTK_OP_IMM, 7, 0, 0, 0.5f, 0},        {MTK_OP_MUL, 8, 6, 7, 0, 0},
                       {MTK_OP_LOAD, 9, 1, 0, 0, 0}, {MTK_OP_MUL, 10, 8, 9, 0, 0},          {MTK_OP_LOAD, 11, 2, 0, 0, 0},
                       {MTK_OP_ADD, 12, 10, 11, 0, 0}};
    pr.n = sizeof ins / sizeof ins[0];
    memcpy(pr.ins, ins, sizeof ins);
    pr.result = 12;
    mtk_view ov = {2, {R, C}, {C, 1}};
    mtk_view iv[3] = {{2, {R, C}, {1, R}}, {2, {R, C}, {C, 1}}, {2, {R, C}, {0, 1}}};
    /* x is stored transposed: x_t[c][r] */
    float *xt = malloc(sizeof(float) * n);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) xt[(int64_t)c * R + r] = x[(int64_t)r * C + c];
    cudaFree(dx);
    dx = up(xt, n, f16);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) x[(int64_t)r * C + c] = xt[(int64_t)c * R + r];
    const void *ptrs[3] = {dx, dy, db};
    CK(mtk_elementwise(0, &pr, dout, &ov, 3, ptrs, iv, f16));
    float *o0 = down(dout, n, f16);
    void *dargs;
    CK(cudaMemset(dout, 0xff, n * (f16 ? 2 : 4)));
    CK(mtk_elementwise_prepare(&pr, dout, &ov, 3, ptrs, iv, &dargs));
    CK(mtk_elementwise_run(0, dargs, n, f16));
    float *o = down(dout, n, f16);
    cudaFree(dargs);
    double *ref = malloc(sizeof(double) * n);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            double v = x[(int64_t)r * C + c];
            ref[(int64_t)r * C + c] = 0.5 * v * (1 + erf(v / sqrt(2.0))) * y[(int64_t)r * C + c] + b[c];
        }
    check(f16 ? "elementwise gelu*y+b (strided) f16" : "elementwise gelu*y+b (strided) f32", o0, ref, n, tol_of(f16));
    check(f16 ? "elementwise, device args, f16" : "elementwise, device args, f32", o, ref, n, tol_of(f16));
    free(o0);
    free(x); free(xt); free(y); free(b); free(o); free(ref);
    cudaFree(dx); cudaFree(dy); cudaFree(db); cudaFree(dout);
}

static void t_layernorm(int f16, int C, int residual) {
    int64_t R = 4099;
    int64_t n = R * C;
    float *x = rnd(n, 3.f), *r = rnd(n, 1.f), *g = rnd(C, 1.f), *b = rnd(C, 1.f);
    for (int64_t i = 0; i < n; i++) x[i] += 0.5f;
    void *dx = up(x, n, f16), *dr = up(r, n, f16), *dg = up(g, C, f16), *db = up(b, C, f16);
    void *dy = dalloc(n, f16), *ds = dalloc(n, f16);
    CK(mtk_layernorm(0, dx, residual ? dr : NULL, residual ? ds : NULL, dy, dg, db, R, C, 1e-6f, f16));
    float *y = down(dy, n, f16);
    double *ref = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < R; i++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[i * C + c] + (residual ? r[i * C + c] : 0);
        m /= C;
        for (int c = 0; c < C; c++) {
            double d = x[i * C + c] + (residual ? r[i * C + c] : 0) - m;
            v += d * d;
        }
        v /= C;
        for (int c = 0; c < C; c++)
            ref[i * C + c] = (x[i * C + c] + (residual ? r[i * C + c] : 0) - m) / sqrt(v + 1e-6) * g[c] + b[c];
    }
    char name[96];
    snprintf(name, sizeof name, "layernorm C=%d%s %s", C, residual ? " +residual" : "", f16 ? "f16" : "f32");
    check(name, y, ref, n, tol_of(f16));
    free(x); free(r); free(g); free(b); free(y); free(ref);
    cudaFree(dx); cudaFree(dr); cudaFree(dg); cudaFree(db); cudaFree(dy); cudaFree(ds);
}

/* Two LayerNorms in one pass (mtk_layernorm_pair, optionally with the
 * im2col matrix of the second output): bit for bit the two separate
 * launches (mtk_layernorm, then mtk_layernorm / mtk_layernorm_im2col on its
 * output), which the other cases check against double references; the
 * second output also against a double reference of LN'(fp(LN(x))). */
static void t_layernorm_pair(int f16, int C, int residual, int H, int W, int col) {
    int64_t R = (int64_t)H * W, n = R * C;
    int OH = H / 2, OW = W / 2, KH = 2, KW = 2; /* a 2x2/2 conv over the second output */
    int64_t Kp = (int64_t)KH * KW * C, M = (int64_t)OH * OW;
    float *x = rnd(n, 3.f), *r = rnd(n, 1.f), *g = rnd(C, 1.f), *b = rnd(C, 1.f), *g2 = rnd(C, 1.f), *b2 = rnd(C, 1.f);
    void *dx = up(x, n, f16), *dr = up(r, n, f16), *dg = up(g, C, f16), *db = up(b, C, f16), *dg2 = up(g2, C, f16), *db2 = up(b2, C, f16);
    void *y1 = dalloc(n, f16), *s1 = dalloc(n, f16), *y2 = dalloc(n, f16), *c1 = dalloc(M * Kp, f16);
    void *u1 = dalloc(n, f16), *us = dalloc(n, f16), *u2 = dalloc(n, f16), *uc = dalloc(M * Kp, f16);
    mtk_ln_im2col ic = {c1, 1, H, W, OH, OW, KH, KW, 2, 2, 0, 0, 1, 1, (int)Kp};
    mtk_ln_second sec = {y2, dg2, db2, 1e-5f};
    CK(mtk_layernorm_pair(0, dx, residual ? dr : NULL, residual ? s1 : NULL, y1, dg, db, R, C, 1e-6f, f16, &sec, col ? &ic : NULL));
    CK(mtk_layernorm(0, dx, residual ? dr : NULL, residual ? us : NULL, u1, dg, db, R, C, 1e-6f, f16));
    mtk_ln_im2col uic = ic;
    uic.col = uc;
    if (col) CK(mtk_layernorm_im2col(0, u1, NULL, NULL, u2, dg2, db2, R, C, 1e-5f, f16, &uic));
    else CK(mtk_layernorm(0, u1, NULL, NULL, u2, dg2, db2, R, C, 1e-5f, f16));
    CK(cudaDeviceSynchronize());
    size_t es = f16 ? 2 : 4;
    /* the same arithmetic in the same order; the compiler may still contract
     * the affine step into an FMA differently in the two instances, so one
     * FP16 ulp is allowed (counted), nothing more */
    int same = 1;
    int64_t ulp1 = 0;
    void *pairs[4][2] = {{y1, u1}, {y2, u2}, {s1, us}, {c1, uc}};
    int64_t sizes[4] = {n, n, residual ? n : 0, col ? M * Kp : 0};
    for (int k = 0; k < 4; k++) {
        if (!sizes[k]) continue;
        unsigned char *ha = malloc(sizes[k] * es), *hb = malloc(sizes[k] * es);
        CK(cudaMemcpy(ha, pairs[k][0], sizes[k] * es, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(hb, pairs[k][1], sizes[k] * es, cudaMemcpyDeviceToHost));
        if (f16) {
            const uint16_t *a16 = (const uint16_t *)ha, *b16 = (const uint16_t *)hb;
            for (int64_t e = 0; e < sizes[k]; e++) {
                int d = (int)a16[e] - (int)b16[e];
                if (d == 1 || d == -1) ulp1++;
                else if (d) same = 0;
            }
        } else
            same &= !memcmp(ha, hb, sizes[k] * es);
        free(ha); free(hb);
    }
    float *h1 = down(y1, n, f16), *h2 = down(y2, n, f16);
    double *ref = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < R; i++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += h1[i * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (h1[i * C + c] - m) * (h1[i * C + c] - m);
        v /= C;
        for (int c = 0; c < C; c++) ref[i * C + c] = (h1[i * C + c] - m) / sqrt(v + 1e-5) * g2[c] + b2[c];
    }
    char name[128];
    snprintf(name, sizeof name, "layernorm pair C=%d%s%s %s", C, residual ? " +residual" : "", col ? " +im2col" : "", f16 ? "f16" : "f32");
    check(name, h2, ref, n, tol_of(f16));
    printf("%s %s: %s the two separate launches (%lld values 1 ulp apart)\n", same ? "ok  " : "FAIL", name,
           same ? "within 1 ulp of" : "DIFFERS from", (long long)ulp1);
    if (!same) g_fail = 1;
    free(x); free(r); free(g); free(b); free(g2); free(b2); free(h1); free(h2); free(ref);
    void *all[] = {dx, dr, dg, db, dg2, db2, y1, s1, y2, c1, u1, us, u2, uc};
    for (int k = 0; k < 14; k++) cudaFree(all[k]);
}

/* LayerNorm of x + (a W + bias) with the projection computed in the kernel
 * (mtk_layernorm_proj): against the double reference with the projection
 * rounded to FP16 as the separate GEMM stores it; the sum output too. */
static void t_layernorm_proj(int C, int cin, int64_t R, int bias) {
    int64_t n = R * C, na = R * cin;
    float *x = rnd(n, 1.f), *a = rnd(na, 1.f), *w = rnd((int64_t)cin * C, 1.f / sqrtf((float)cin)), *pb = rnd(C, 0.5f);
    float *g = rnd(C, 1.f), *b = rnd(C, 1.f);
    void *dx = up(x, n, 1), *da = up(a, na, 1), *dw = up(w, (int64_t)cin * C, 1), *dpb = up(pb, C, 1), *dg = up(g, C, 1), *db = up(b, C, 1);
    void *dy = dalloc(n, 1), *ds = dalloc(n, 1);
    CK(mtk_layernorm_proj(0, dx, ds, dy, dg, db, R, C, 1e-6f, da, cin, dw, bias ? dpb : NULL, cin));
    float *y = down(dy, n, 1), *sm = down(ds, n, 1);
    double *ref = malloc(sizeof(double) * n), *refs = malloc(sizeof(double) * n), *v = malloc(sizeof(double) * C);
    for (int64_t i = 0; i < R; i++) {
        double m = 0, var = 0;
        for (int c = 0; c < C; c++) {
            double acc = bias ? pb[c] : 0;
            for (int k = 0; k < cin; k++) acc += (double)a[i * cin + k] * w[(int64_t)k * C + c];
            v[c] = x[i * C + c] + (double)mt_half_to_float(mt_float_to_half((float)acc));
            refs[i * C + c] = v[c];
            m += v[c];
        }
        m /= C;
        for (int c = 0; c < C; c++) var += (v[c] - m) * (v[c] - m);
        var /= C;
        for (int c = 0; c < C; c++) ref[i * C + c] = (v[c] - m) / sqrt(var + 1e-6) * g[c] + b[c];
    }
    char name[128];
    snprintf(name, sizeof name, "layernorm of x + projection C=%d K=%d%s f16", C, cin, bias ? " +bias" : "");
    check(name, y, ref, n, tol_of(1));
    snprintf(name, sizeof name, "layernorm of x + projection C=%d K=%d: the sum", C, cin);
    check(name, sm, refs, n, tol_of(1));
    free(x); free(a); free(w); free(pb); free(g); free(b); free(y); free(sm); free(ref); free(refs); free(v);
    void *all[] = {dx, da, dw, dpb, dg, db, dy, ds};
    for (int k = 0; k < 8; k++) cudaFree(all[k]);
}

/* Three chained per-pixel GEMMs (mtk_chain3) against the double reference
 * with the intermediates rounded to FP16; weights in both layouts; rows not
 * a multiple of the 128-row tile; the output a slice of wider rows. */
static void t_chain3(int k1, int n3, int64_t M, int wt, int ldy) {
    const int NH = 128;
    float *x = rnd(M * k1, 1.f), *r = rnd(M * NH, 1.f), *w1 = rnd((int64_t)k1 * NH, 1.f / sqrtf((float)k1));
    float *w2 = rnd((int64_t)NH * NH, 1.f / sqrtf((float)NH)), *w3 = rnd((int64_t)NH * n3, 1.f / sqrtf((float)NH));
    float *b1 = rnd(NH, 0.5f), *b2 = rnd(NH, 0.5f), *b3 = rnd(n3, 0.5f);
    void *dx = up(x, M * k1, 1), *dr = up(r, M * NH, 1), *dw1 = up(w1, (int64_t)k1 * NH, 1), *dw2 = up(w2, (int64_t)NH * NH, 1);
    void *dw3 = up(w3, (int64_t)NH * n3, 1), *db1 = up(b1, NH, 1), *db2 = up(b2, NH, 1), *db3 = up(b3, n3, 1), *dy = dalloc(M * ldy, 1);
    /* w as stored: [k][n] when !wt, [n][k] when wt (the host arrays are [k][n]; transpose for wt) */
    if (wt) {
        float *t1 = malloc(sizeof(float) * k1 * NH), *t2 = malloc(sizeof(float) * NH * NH), *t3 = malloc(sizeof(float) * NH * n3);
        for (int k = 0; k < k1; k++) for (int n = 0; n < NH; n++) t1[n * k1 + k] = w1[k * NH + n];
        for (int k = 0; k < NH; k++) for (int n = 0; n < NH; n++) t2[n * NH + k] = w2[k * NH + n];
        for (int k = 0; k < NH; k++) for (int n = 0; n < n3; n++) t3[n * NH + k] = w3[k * n3 + n];
        cudaFree(dw1); cudaFree(dw2); cudaFree(dw3);
        dw1 = up(t1, (int64_t)k1 * NH, 1), dw2 = up(t2, (int64_t)NH * NH, 1), dw3 = up(t3, (int64_t)NH * n3, 1);
        free(t1); free(t2); free(t3);
    }
    mtk_chain c = {.x = dx, .r = dr, .w1 = dw1, .w2 = dw2, .w3 = dw3, .b1 = db1, .b2 = db2, .b3 = db3, .y = dy, .m = M, .k1 = k1,
                   .n3 = n3, .ldx = k1, .ldr = NH, .ldy = ldy, .ldw1 = wt ? k1 : NH, .ldw2 = NH, .ldw3 = wt ? NH : n3,
                   .wt1 = wt, .wt2 = wt, .wt3 = wt, .act1 = 1, .act2 = 1, .act3 = 0};
    CK(mtk_chain3(0, &c));
    float *y = down(dy, M * ldy, 1), *got = malloc(sizeof(float) * M * n3);
    double *ref = malloc(sizeof(double) * M * n3), h1[128], h2[128];
    int canary = 0;
    for (int64_t i = 0; i < M; i++) {
        for (int n = 0; n < NH; n++) {
            double a = b1[n];
            for (int k = 0; k < k1; k++) a += (double)x[i * k1 + k] * w1[k * NH + n];
            h1[n] = h16((float)(a > 0 ? a : 0));
        }
        for (int n = 0; n < NH; n++) {
            double a = b2[n] + r[i * NH + n];
            for (int k = 0; k < NH; k++) a += h1[k] * w2[k * NH + n];
            h2[n] = h16((float)(a > 0 ? a : 0));
        }
        for (int n = 0; n < n3; n++) {
            double a = b3[n];
            for (int k = 0; k < NH; k++) a += h2[k] * w3[k * n3 + n];
            ref[i * n3 + n] = a;
            got[i * n3 + n] = y[i * ldy + n];
        }
        for (int n = n3; n < ldy; n++) canary += !isnan(y[i * ldy + n]);
    }
    char name[128];
    snprintf(name, sizeof name, "gemm chain K%d -> 128 -> 128 (+r) -> %d, W %s, ldy %d", k1, n3, wt ? "[n][k]" : "[k][n]", ldy);
    check(name, got, ref, M * n3, tol_of(1));
    if (canary) {
        printf("FAIL %s: wrote %d values outside its columns\n", name, canary);
        g_fail = 1;
    }
    free(x); free(r); free(w1); free(w2); free(w3); free(b1); free(b2); free(b3); free(y); free(got); free(ref);
    void *all[] = {dx, dr, dw1, dw2, dw3, db1, db2, db3, dy};
    for (int k = 0; k < 9; k++) cudaFree(all[k]);
}

/* LayerNorm that also writes the im2col matrix of a conv over its output
 * (read as NHWC [N, H, W, C]): the normal outputs against the double
 * reference, the column matrix against the reference LN scattered by the
 * im2col permutation, and bit for bit against the kernel's own y (each
 * entry a copy of one normalized element, or exactly zero for taps outside
 * the image and the columns K..Kp-1).  The matrix is poisoned (NaN) first,
 * as the arena is never zeroed: an entry left unwritten shows.  Kp = K +
 * kpad; kpad % 8 != 0 and FP32 take the two-kernel fallback. */
static void t_layernorm_im2col(int f16, int C, int residual, int N, int H, int W, int KH, int KW, int sh, int sw, int ph,
                               int pw, int dh, int dw, int kpad) {
    int OH = (H + 2 * ph - dh * (KH - 1) - 1) / sh + 1, OW = (W + 2 * pw - dw * (KW - 1) - 1) / sw + 1;
    int64_t R = (int64_t)N * H * W, n = R * C;
    int64_t K = (int64_t)KH * KW * C, Kp = K + kpad, M = (int64_t)N * OH * OW;
    float *x = rnd(n, 3.f), *r = rnd(n, 1.f), *g = rnd(C, 1.f), *b = rnd(C, 1.f);
    for (int64_t i = 0; i < n; i++) x[i] += 0.5f;
    void *dx = up(x, n, f16), *dr = up(r, n, f16), *dg = up(g, C, f16), *db = up(b, C, f16);
    void *dy = dalloc(n, f16), *ds = dalloc(n, f16), *dc = dalloc(M * Kp, f16);
    mtk_ln_im2col ic = {dc, N, H, W, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, (int)Kp};
    CK(mtk_layernorm_im2col(0, dx, residual ? dr : NULL, residual ? ds : NULL, dy, dg, db, R, C, 1e-6f, f16, &ic));
    float *y = down(dy, n, f16), *col = down(dc, M * Kp, f16);
    double *ref = malloc(sizeof(double) * n), *sref = malloc(sizeof(double) * n), *cref = malloc(sizeof(double) * M * Kp);
    for (int64_t i = 0; i < R; i++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) {
            sref[i * C + c] = (double)x[i * C + c] + (residual ? r[i * C + c] : 0);
            m += sref[i * C + c];
        }
        m /= C;
        for (int c = 0; c < C; c++) v += (sref[i * C + c] - m) * (sref[i * C + c] - m);
        v /= C;
        for (int c = 0; c < C; c++) ref[i * C + c] = (sref[i * C + c] - m) / sqrt(v + 1e-6) * g[c] + b[c];
    }
    int64_t wrong = 0;
    for (int nn = 0; nn < N; nn++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                int64_t row = ((int64_t)nn * OH + oh) * OW + ow;
                for (int64_t j = 0; j < Kp; j++) {
                    int64_t src = -1;
                    if (j < K) {
                        int c = (int)(j % C), t = (int)(j / C), kw = t % KW, kh = t / KW;
                        int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;
                        if (ih >= 0 && ih < H && iw >= 0 && iw < W) src = (((int64_t)nn * H + ih) * W + iw) * C + c;
                    }
                    float got = col[row * Kp + j];
                    cref[row * Kp + j] = src >= 0 ? ref[src] : 0.;
                    if (!(got == (src >= 0 ? y[src] : 0.f))) wrong++;
                }
            }
    char name[128];
    snprintf(name, sizeof name, "ln+im2col C=%d %dx%d %dx%d/%d p%d%s Kp=K+%d%s %s", C, N * H, W, KH, KW, sh, ph,
             dh > 1 ? " dil" : "", kpad, residual ? " +res" : "", f16 ? "f16" : "f32");
    check(name, y, ref, n, tol_of(f16));
    if (residual) {
        float *sm = down(ds, n, f16);
        check("  its residual sum", sm, sref, n, tol_of(f16));
        free(sm);
    }
    check("  its im2col matrix", col, cref, M * Kp, tol_of(f16));
    printf("  %-44s %lld of %lld entries differ from the permuted y / zero  %s\n", "  its im2col matrix, exact", (long long)wrong,
           (long long)(M * Kp), wrong ? "FAIL" : "ok");
    if (wrong) g_fail = 1;
    free(x); free(r); free(g); free(b); free(y); free(col); free(ref); free(sref); free(cref);
    cudaFree(dx); cudaFree(dr); cudaFree(dg); cudaFree(db); cudaFree(dy); cudaFree(ds); cudaFree(dc);
}

static void t_softmax(int f16) {
    int64_t R = 777;
    int C = 1000;
    int64_t n = R * C;
    float *x = rnd(n, 3.f);
    void *dx = up(x, n, f16), *dy = dalloc(n, f16);
    CK(mtk_softmax(0, dx, dy, R, C, f16));
    float *y = down(dy, n, f16);
    double *ref = malloc(sizeof(double) * n);
    for (int64_t i = 0; i < R; i++) {
        double m = -1e30, s = 0;
        for (int c = 0; c < C; c++) m = fmax(m, x[i * C + c]);
        for (int c = 0; c < C; c++) s += exp(x[i * C + c] - m);
        for (int c = 0; c < C; c++) ref[i * C + c] = exp(x[i * C + c] - m) / s;
    }
    check(f16 ? "softmax C=1000 f16" : "softmax C=1000 f32", y, ref, n, tol_of(f16));
    free(x); free(y); free(ref); cudaFree(dx); cudaFree(dy);
}

static double lin_src(int o, double scale, int in_len, int out_len, int coord) {
    switch (coord) {
    case 2: return out_len > 1 ? o * (double)(in_len - 1) / (out_len - 1) : 0;
    default: return (o + 0.5) / scale - 0.5;
    }
}

static void t_resize(int f16, int coord, int nhwc) {
    int N = 1, C = nhwc == 2 ? 32 : 19, IH = 17, IW = 23, OH = 68, OW = 90; /* OW % 4 != 0: a partial run of outputs where resize.cu makes runs of 4 */
    int64_t ni = (int64_t)N * C * IH * IW, no = (int64_t)N * C * OH * OW;
    float *x = rnd(ni, 1.f);
    void *dx = up(x, ni, f16), *dy = dalloc(no, f16);
    int64_t xs[4], ys[4];
    if (nhwc) {
        xs[0] = (int64_t)IH * IW * C; xs[1] = 1; xs[2] = (int64_t)IW * C; xs[3] = C;
        ys[0] = (int64_t)OH * OW * C; ys[1] = 1; ys[2] = (int64_t)OW * C; ys[3] = C;
    } else {
        xs[0] = (int64_t)C * IH * IW; xs[1] = (int64_t)IH * IW; xs[2] = IW; xs[3] = 1;
        ys[0] = (int64_t)C * OH * OW; ys[1] = (int64_t)OH * OW; ys[2] = OW; ys[3] = 1;
    }
    float sh = (float)OH / IH, sw = (float)OW / IW;
    CK(mtk_resize(0, dx, xs, dy, ys, N, C, IH, IW, OH, OW, sh, sw, 1, coord, 0, nhwc, f16, f16));
    float *y = down(dy, no, f16);
    double *ref = malloc(sizeof(double) * no);
    float *got = malloc(sizeof(float) * no);
    for (int c = 0; c < C; c++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double fy = lin_src(oh, sh, IH, OH, coord), fx = lin_src(ow, sw, IW, OW, coord);
                fy = fmin(fmax(fy, 0), IH - 1);
                fx = fmin(fmax(fx, 0), IW - 1);
                int y0 = (int)fy, x0 = (int)fx, y1 = y0 + 1 < IH ? y0 + 1 : IH - 1, x1 = x0 + 1 < IW ? x0 + 1 : IW - 1;
                double ay = fy - y0, ax = fx - x0;
#define X(h, w) ((double)x[h * xs[2] + w * xs[3] + c * xs[1]])
                double v = (X(y0, x0) * (1 - ax) + X(y0, x1) * ax) * (1 - ay) + (X(y1, x0) * (1 - ax) + X(y1, x1) * ax) * ay;
#undef X
                int64_t idx = ((int64_t)c * OH + oh) * OW + ow;
                ref[idx] = v;
                got[idx] = y[oh * ys[2] + ow * ys[3] + c * ys[1]];
            }
    char name[96];
    snprintf(name, sizeof name, "resize bilinear %s %s %s", coord == 2 ? "align_corners" : "half_pixel", nhwc == 2 ? "NHWC C=32 (x8)" : nhwc ? "NHWC" : "NCHW",
             f16 ? "f16" : "f32");
    check(name, got, ref, no, tol_of(f16));
    free(x); free(y); free(ref); free(got); cudaFree(dx); cudaFree(dy);
}

/* resize of a never-stored concat of two NHWC sources vs the CPU */
/* Sum of bilinear resizes of three channels-last FP16 maps of different
 * sizes (mtk_resize_sum, half_pixel) against the double reference. */
static void t_resize_sum(void) {
    const int C = 24, OH = 40, OW = 56, ih[3] = {20, 10, 5}, iw[3] = {28, 14, 7};
    float *xs[3];
    void *dx[3];
    int64_t st[3][4];
    for (int k = 0; k < 3; k++) {
        int64_t n = (int64_t)C * ih[k] * iw[k];
        xs[k] = rnd(n, 1.f);
        dx[k] = up(xs[k], n, 1);
        st[k][0] = n, st[k][1] = 1, st[k][2] = (int64_t)iw[k] * C, st[k][3] = C;
    }
    int64_t no = (int64_t)C * OH * OW, ys[4] = {no, 1, (int64_t)OW * C, C};
    void *dy = dalloc(no, 1);
    CK(mtk_resize_sum(0, 3, (const void *const *)dx, (const int64_t(*)[4])st, ih, iw, dy, ys, 1, C, OH, OW, 0));
    float *y = down(dy, no, 1);
    double *ref = malloc(sizeof(double) * no);
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++)
            for (int c = 0; c < C; c++) {
                double acc = 0;
                for (int k = 0; k < 3; k++) {
                    double fy = lin_src(oh, (double)OH / ih[k], ih[k], OH, 0), fx = lin_src(ow, (double)OW / iw[k], iw[k], OW, 0);
                    fy = fmin(fmax(fy, 0), ih[k] - 1), fx = fmin(fmax(fx, 0), iw[k] - 1);
                    int y0 = (int)fy, x0 = (int)fx, y1 = y0 + 1 < ih[k] ? y0 + 1 : y0, x1 = x0 + 1 < iw[k] ? x0 + 1 : x0;
                    double ay = fy - y0, ax = fx - x0;
                    const float *x = xs[k];
#define AT(yy, xx) x[((int64_t)(yy) * iw[k] + (xx)) * C + c]
                    acc += (1 - ay) * ((1 - ax) * AT(y0, x0) + ax * AT(y0, x1)) + ay * ((1 - ax) * AT(y1, x0) + ax * AT(y1, x1));
#undef AT
                }
                ref[((int64_t)oh * OW + ow) * C + c] = acc;
            }
    check("resize-sum of 3 maps (20x28, 10x14, 5x7 -> 40x56) f16", y, ref, no, tol_of(1));
    for (int k = 0; k < 3; k++) free(xs[k]), cudaFree(dx[k]);
    free(y); free(ref); cudaFree(dy);
}

static void t_resize_cat(void) {
    int IH = 19, IW = 13, OH = 38, OW = 26, C0 = 16, C1 = 24, C = C0 + C1;
    int64_t n0 = (int64_t)IH * IW * C0, n1 = (int64_t)IH * IW * C1, no = (int64_t)OH * OW * C;
    float *a = rnd(n0, 1.f), *b = rnd(n1, 1.f);
    void *da = up(a, n0, 1), *db = up(b, n1, 1), *dy = dalloc(no, 1);
    const void *ptrs[2] = {da, db};
    int64_t xs[2][4] = {{n0, 1, (int64_t)IW * C0, C0}, {n1, 1, (int64_t)IW * C1, C1}};
    int cb[2] = {0, C0};
    int64_t ys[4] = {no, 1, (int64_t)OW * C, C};
    CK(mtk_resize_cat(0, 2, ptrs, (const int64_t(*)[4])xs, cb, dy, ys, 1, C, IH, IW, OH, OW, 2.f, 2.f, 0));
    float *y = down(dy, no, 1);
    double *ref = malloc(sizeof(double) * no);
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++)
            for (int c = 0; c < C; c++) {
                double fy = fmin(fmax((oh + 0.5) / 2 - 0.5, 0), IH - 1), fx = fmin(fmax((ow + 0.5) / 2 - 0.5, 0), IW - 1);
                int y0 = (int)fy, x0 = (int)fx, y1 = y0 + 1 < IH ? y0 + 1 : IH - 1, x1 = x0 + 1 < IW ? x0 + 1 : IW - 1;
                double ay = fy - y0, ax = fx - x0;
                const float *src = c < C0 ? a : b;
                int cc = c < C0 ? c : c - C0, cs = c < C0 ? C0 : C1;
#define X(h, w) ((double)src[((int64_t)(h) * IW + (w)) * cs + cc])
                ref[((int64_t)oh * OW + ow) * C + c] =
                    (X(y0, x0) * (1 - ax) + X(y0, x1) * ax) * (1 - ay) + (X(y1, x0) * (1 - ax) + X(y1, x1) * ax) * ay;
#undef X
            }
    check("resize of a virtual concat (16+24 ch) f16", y, ref, no, tol_of(1));
    free(a); free(b); free(y); free(ref); cudaFree(da); cudaFree(db); cudaFree(dy);
}

/* conv reference: NHWC x, weights [CO][KH][KW][Cg] */
static void conv_ref(const float *x, const float *w, const float *b, double *y, int N, int H, int W, int C, int OH, int OW,
                     int CO, int KH, int KW, int s, int pd, int groups, int act) {
    int cig = C / groups, cog = CO / groups;
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int co = 0; co < CO; co++) {
                    int g = co / cog;
                    double acc = b ? b[co] : 0;
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++) {
                            int ih = oh * s - pd + kh, iw = ow * s - pd + kw;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            for (int ci = 0; ci < cig; ci++)
                                acc += (double)x[(((int64_t)n * H + ih) * W + iw) * C + g * cig + ci] *
                                       w[(((int64_t)co * KH + kh) * KW + kw) * cig + ci];
                        }
                    if (act == 1) acc = acc > 0 ? acc : 0;
                    if (act == 3) acc = 0.5 * acc * (1 + erf(acc / sqrt(2.0)));
                    y[(((int64_t)n * OH + oh) * OW + ow) * CO + co] = acc;
                }
}

static void t_dwconv(int f16, int W, int act) {
    int N = 1, H = 37, C = W == 37 ? 42 : 128;
    int64_t n = (int64_t)N * H * W * C;
    float *x = rnd(n, 1.f), *w = rnd(9 * C, 0.3f), *b = rnd(C, 0.5f);
    void *dx = up(x, n, f16), *dw = up(w, 9 * C, f16), *db = up(b, C, f16), *dy = dalloc(n, f16);
    CK(mtk_dwconv(0, dx, dy, dw, db, N, H, W, C, H, W, 3, 3, 1, 1, 1, 1, 1, 1, act, f16));
    float *y = down(dy, n, f16);
    /* weights [kh][kw][c] -> reference layout [c][kh][kw][1] */
    float *wr = malloc(sizeof(float) * 9 * C);
    for (int c = 0; c < C; c++)
        for (int k = 0; k < 9; k++) wr[c * 9 + k] = w[k * C + c];
    double *ref = malloc(sizeof(double) * n);
    conv_ref(x, wr, b, ref, N, H, W, C, H, W, C, 3, 3, 1, 1, C, act);
    char name[96];
    snprintf(name, sizeof name, "dwconv3x3 W=%d C=%d act=%d %s", W, C, act, f16 ? "f16" : "f32");
    check(name, y, ref, n, tol_of(f16));
    free(x); free(w); free(b); free(y); free(wr); free(ref);
    cudaFree(dx); cudaFree(dw); cudaFree(db); cudaFree(dy);
}

static void t_conv_direct(int f16) {
    int N = 1, H = 64, W = 48, C = 3, CO = 32, K = 7, s = 4, pd = 3;
    int OH = (H + 2 * pd - K) / s + 1, OW = (W + 2 * pd - K) / s + 1;
    int64_t ni = (int64_t)N * H * W * C, no = (int64_t)N * OH * OW * CO, nw = (int64_t)CO * K * K * C;
    float *x = rnd(ni, 1.f), *w = rnd(nw, 0.1f), *b = rnd(CO, 0.5f);
    void *dx = up(x, ni, f16), *dw = up(w, nw, f16), *db = up(b, CO, f16), *dy = dalloc(no, f16);
    CK(mtk_conv_direct(0, dx, dy, dw, db, N, H, W, C, OH, OW, CO, K, K, s, s, pd, pd, 1, 1, 1, 1, f16));
    float *y = down(dy, no, f16);
    double *ref = malloc(sizeof(double) * no);
    conv_ref(x, w, b, ref, N, H, W, C, OH, OW, CO, K, K, s, pd, 1, 1);
    check(f16 ? "conv direct 7x7/4 3->32 relu f16" : "conv direct 7x7/4 3->32 relu f32", y, ref, no, tol_of(f16));
    free(x); free(w); free(b); free(y); free(ref);
    cudaFree(dx); cudaFree(dw); cudaFree(db); cudaFree(dy);
}

/* Set by t_attention_cfg: the queries' amplitude (large: sharp softmax rows
 * whose maximum rises from tile to tile, the lazy-rescale path) and a fixed
 * configuration of the FP16 kernel (mtk_attention_config) instead of the
 * one mtk_attention picks. */
static float g_attn_qamp = 1.f;
static int g_attn_kernel = 0, g_attn_ksplit = 0;

static void t_attention(int f16, int B, int H, int Nq, int M, int D, int bnhd) {
    /* Q, O stored as [B, N, H, D] (token layout) when bnhd, else [B,H,N,D];
     * K, V as slices of one [B, M, 2, H, D] buffer (the kv Linear output). */
    int64_t nq = (int64_t)B * H * Nq * D, nkv = (int64_t)B * M * 2 * H * D;
    float *q = rnd(nq, g_attn_qamp), *kv = rnd(nkv, 1.f);
    if (g_attn_qamp > 1.f) /* keys later in the sequence score higher: the row maximum keeps rising */
        for (int64_t i = 0; i < nkv; i++) kv[i] *= 0.25f + 0.75f * (float)((i / (2 * H * D)) % M) / M;
    void *dq = up(q, nq, f16), *dkv = up(kv, nkv, f16), *dout = dalloc(nq, f16);
    mtk_attn a;
    memset(&a, 0, sizeof a);
    a.B = B; a.H = H; a.N = Nq; a.M = M; a.D = D;
    a.scale = 1.f / sqrtf((float)D);
    if (bnhd) {
        a.qs[0] = (int64_t)Nq * H * D; a.qs[1] = D; a.qs[2] = (int64_t)H * D;
    } else {
        a.qs[0] = (int64_t)H * Nq * D; a.qs[1] = (int64_t)Nq * D; a.qs[2] = D;
    }
    memcpy(a.os, a.qs, sizeof a.qs);
    a.ks[0] = (int64_t)M * 2 * H * D; a.ks[1] = D; a.ks[2] = 2 * H * D;
    memcpy(a.vs, a.ks, sizeof a.ks);
    a.q = dq;
    a.o = dout;
    a.k = dkv;
    a.v = (char *)dkv + (size_t)H * D * (f16 ? 2 : 4);
    if (g_attn_kernel)
        CK(mtk_attention_config(0, &a, g_attn_kernel, g_attn_ksplit));
    else
        CK(mtk_attention(0, &a, f16));
    float *o = down(dout, nq, f16);
    double *ref = malloc(sizeof(double) * nq);
    float *got = malloc(sizeof(float) * nq);
    double *sc = malloc(sizeof(double) * M);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Nq; i++) {
                const float *qi = q + b * a.qs[0] + h * a.qs[1] + i * a.qs[2];
                double mx = -1e300, s = 0;
                for (int j = 0; j < M; j++) {
                    const float *kj = kv + b * a.ks[0] + h * a.ks[1] + j * a.ks[2];
                    double d = 0;
                    for (int e = 0; e < D; e++) d += (double)qi[e] * kj[e];
                    sc[j] = d * a.scale;
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j < M; j++) {
                    sc[j] = exp(sc[j] - mx);
                    s += sc[j];
                }
                for (int e = 0; e < D; e++) {
                    double acc = 0;
                    for (int j = 0; j < M; j++) acc += sc[j] * kv[b * a.vs[0] + h * a.vs[1] + j * a.vs[2] + H * D + e];
                    int64_t idx = (((int64_t)b * H + h) * Nq + i) * D + e;
                    ref[idx] = acc / s;
                    got[idx] = o[b * a.os[0] + h * a.os[1] + i * a.os[2] + e];
                }
            }
    char name[128];
    char extra[48] = "";
    if (g_attn_kernel)
        snprintf(extra, sizeof extra, " %s ksplit=%d", g_attn_kernel == MTK_ATTN_RESIDENT ? "resident" : "stream", g_attn_ksplit);
    if (g_attn_qamp > 1.f) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " sharp");
    snprintf(name, sizeof name, "attention B%d H%d N%d M%d D%d %s %s%s", B, H, Nq, M, D, bnhd ? "BNHD" : "BHND",
             f16 ? "f16" : "f32", extra);
    check(name, got, ref, nq, f16 ? 1e-2 : 1e-5);
    free(q); free(kv); free(o); free(ref); free(got); free(sc);
    cudaFree(dq); cudaFree(dkv); cudaFree(dout);
}

static void t_attention_cfg(int B, int H, int Nq, int M, int D, int kernel, int ksplit, float qamp) {
    g_attn_kernel = kernel, g_attn_ksplit = ksplit, g_attn_qamp = qamp;
    t_attention(1, B, H, Nq, M, D, 1);
    g_attn_kernel = 0, g_attn_ksplit = 0, g_attn_qamp = 1.f;
}

static void t_preprocess(int f16) {
    int H = 31, W = 45;
    uint8_t *img = malloc(H * W * 3);
    for (int i = 0; i < H * W * 3; i++) img[i] = (uint8_t)(mt_rng_next(&g_rng) & 255);
    void *di, *dy = dalloc((int64_t)3 * H * W, f16);
    CK(cudaMalloc(&di, H * W * 3));
    CK(cudaMemcpy(di, img, H * W * 3, cudaMemcpyHostToDevice));
    const float mean[3] = {123.675f, 116.28f, 103.53f}, sd[3] = {58.395f, 57.12f, 57.375f};
    int64_t ys[4] = {(int64_t)3 * H * W, (int64_t)H * W, W, 1};
    CK(mtk_preprocess(0, di, H, W, dy, ys, mean, sd, f16));
    float *y = down(dy, (int64_t)3 * H * W, f16);
    double *ref = malloc(sizeof(double) * 3 * H * W);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < H * W; i++) ref[c * H * W + i] = (img[i * 3 + c] - mean[c]) / sd[c];
    check(f16 ? "preprocess uint8 HWC -> CHW f16" : "preprocess uint8 HWC -> CHW f32", y, ref, (int64_t)3 * H * W, tol_of(f16));
    free(img); free(y); free(ref); cudaFree(di); cudaFree(dy);
}


/* ------------------------------------------------ per-element checks
 * The kernels below are checked element by element against a bound that
 * follows from the arithmetic, not a global error norm: FP32 accumulation
 * of K products (|error| <= K 2^-24 sum |terms|: the worst case of
 * recursive summation; the activations' slopes are at most ~1.13), the
 * output's rounding to its storage type (half an ulp: 2^-11 |y| in FP16,
 * 2^-24 in FP32), and 2e-6 |y| + 1e-6 for __expf's / erff's few ulp (up
 * to ~13 ulp of __expf at |x| ~ 10).  mag[i] = sum of |terms| of element
 * i (NULL: 0).  A wrong tap, layout, bias or activation is off by far more. */
static void check_elem(const char *name, const float *got, const double *ref, const double *mag, int64_t n, int K,
                       int f16) {
    double u_out = f16 ? 1.0 / 2048 : 1.0 / 16777216, worst = 0, mx = 0;
    int64_t bad = 0, wi = 0;
    for (int64_t i = 0; i < n; i++) {
        double allow = 1e-6 + (1.01 * u_out + 2e-6) * fabs(ref[i]) + (mag ? 1.2 * (K + 2) * (1.0 / 16777216) * mag[i] : 0);
        double d = fabs((double)got[i] - ref[i]);
        if (!isfinite(got[i]) || d > allow) bad++;
        if (d > mx) mx = d;
        if (d / allow > worst) {
            worst = d / allow;
            wi = i;
        }
    }
    printf("  %-44s n=%-9lld max abs %.3e, worst element %lld got %.7g ref %.7g uses %.0f%% of its bound  %s\n", name,
           (long long)n, mx, (long long)wi, n ? got[wi] : 0.0, n ? ref[wi] : 0.0, 100 * worst, bad ? "FAIL" : "ok");
    if (bad) g_fail = 1;
}

/* poison outside the written elements must stay (0xffff / 0xffffffff: NaN) */
static void check_untouched(const char *name, void *d, int64_t rows, int64_t C, int64_t ld, int f16) {
    int64_t n = rows * ld, bad = 0;
    size_t es = f16 ? 2 : 4;
    uint8_t *h = malloc(n * es);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(h, d, n * es, cudaMemcpyDeviceToHost));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = C; c < ld; c++)
            for (size_t b = 0; b < es; b++) bad += h[(r * ld + c) * es + b] != 0xff;
    printf("  %-44s %s\n", name, bad ? "FAIL: elements between the rows were written" : "ok (gap untouched)");
    if (bad) g_fail = 1;
    free(h);
}

static void t_bias_act(int f16, int act, int ld) {
    const int64_t R = 4099;
    const int C = 37, L = ld ? ld : C;
    float *y = rnd(R * C, 2.f), *b = rnd(C, 1.f);
    void *dv = up(y, R * C, f16), *db = up(b, C, f16), *dy = dalloc(R * L, f16);
    /* rows of C values L elements apart; the gap keeps its poison */
    size_t es = f16 ? 2 : 4;
    CK(cudaMemcpy2D(dy, L * es, dv, C * es, C * es, R, cudaMemcpyDeviceToDevice));
    if (ld) CK(mtk_bias_act_ld(0, dy, db, R, C, act, f16, L));
    else CK(mtk_bias_act(0, dy, db, R, C, act, f16));
    float *o = down(dy, R * L, f16), *got = malloc(sizeof(float) * R * C);
    double *ref = malloc(sizeof(double) * R * C);
    for (int64_t r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            got[r * C + c] = o[r * L + c];
            /* the kernel adds in FP32: x + b rounded to FP32 first */
            ref[r * C + c] = act_ref((double)(float)(y[r * C + c] + b[c]), act);
        }
    char name[96];
    snprintf(name, sizeof name, "bias_act%s act=%d R=%lld C=%d %s", ld ? "_ld" : "", act, (long long)R, C, f16 ? "f16" : "f32");
    check_elem(name, got, ref, NULL, R * C, 0, f16);
    if (ld) check_untouched(name, dy, R, C, L, f16);
    free(y); free(b); free(o); free(got); free(ref);
    cudaFree(dv); cudaFree(db); cudaFree(dy);
}

static void t_gather(int esize) {
    /* out[pre, i, post] = x[pre, idx[i], post]: negative indices wrap;
     * every element copied bit for bit */
    const int64_t pre = 3, L = 11, post = 29, nidx = 7;
    const int64_t idx[7] = {0, 10, -1, 5, -11, 3, 3};
    int64_t nx = pre * L * post * esize, ny = pre * nidx * post * esize;
    uint8_t *x = malloc(nx);
    for (int64_t i = 0; i < nx; i++) x[i] = (uint8_t)(mt_rng_next(&g_rng) & 255);
    void *dx, *dy, *di;
    CK(cudaMalloc(&dx, nx));
    CK(cudaMalloc(&dy, ny));
    CK(cudaMalloc(&di, sizeof idx));
    CK(cudaMemcpy(dx, x, nx, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(di, idx, sizeof idx, cudaMemcpyHostToDevice));
    CK(cudaMemset(dy, 0xa5, ny));
    CK(mtk_gather(0, dx, dy, di, pre, L, nidx, post, esize));
    uint8_t *y = malloc(ny);
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(y, dy, ny, cudaMemcpyDeviceToHost));
    int64_t bad = 0;
    for (int64_t a = 0; a < pre; a++)
        for (int64_t j = 0; j < nidx; j++) {
            int64_t k = idx[j] < 0 ? idx[j] + L : idx[j];
            for (int64_t p = 0; p < post; p++)
                bad += memcmp(y + ((a * nidx + j) * post + p) * esize, x + ((a * L + k) * post + p) * esize, esize) != 0;
        }
    printf("  gather esize %d (negative indices)%*s %lld of %lld elements wrong  %s\n", esize, 13, "", (long long)bad,
           (long long)(pre * nidx * post), bad ? "FAIL" : "ok");
    if (bad) g_fail = 1;
    free(x); free(y); cudaFree(dx); cudaFree(dy); cudaFree(di);
}

static void t_gemm_smalln(int f16, int N, int K, int lda, int act, int bias) {
    /* C[m, n] = act(sum_k A[m, k] B[n, k] + bias[n]); A rows lda apart, C rows
     * ldc = N + 3 apart (the gap must stay) */
    const int M = 3001, ldc = N + 3;
    float *a = rnd((int64_t)M * lda, 1.f), *b = rnd((int64_t)N * K, 1.f / sqrtf((float)K)), *bi = rnd(N, 0.5f);
    void *da = up(a, (int64_t)M * lda, f16), *dbm = up(b, (int64_t)N * K, f16), *dbi = up(bi, N, f16);
    void *dc = dalloc((int64_t)M * ldc, f16);
    CK(mtk_gemm_smalln(0, da, lda, dbm, bias ? dbi : NULL, dc, ldc, M, N, K, act, f16));
    float *o = down(dc, (int64_t)M * ldc, f16), *got = malloc(sizeof(float) * M * N);
    double *ref = malloc(sizeof(double) * M * N), *mag = malloc(sizeof(double) * M * N);
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double acc = bias ? bi[n] : 0, sa = bias ? fabs(bi[n]) : 0;
            for (int k = 0; k < K; k++) {
                double t = (double)a[(int64_t)m * lda + k] * b[(int64_t)n * K + k];
                acc += t;
                sa += fabs(t);
            }
            ref[(int64_t)m * N + n] = act_ref(acc, act);
            /* the activation's slope is at most 1 (relu, sigmoid: 1/4), so
             * the accumulation bound carries through */
            mag[(int64_t)m * N + n] = sa;
            got[(int64_t)m * N + n] = o[(int64_t)m * ldc + n];
        }
    char name[96];
    snprintf(name, sizeof name, "gemm_smalln M=%d N=%d K=%d lda=%d act=%d%s %s", M, N, K, lda, act, bias ? " bias" : "",
             f16 ? "f16" : "f32");
    check_elem(name, got, ref, mag, (int64_t)M * N, K, f16);
    check_untouched(name, dc, M, N, ldc, f16);
    free(a); free(b); free(bi); free(o); free(got); free(ref); free(mag);
    cudaFree(da); cudaFree(dbm); cudaFree(dbi); cudaFree(dc);
}

static void t_conv_direct_ld(int f16, int C, int CO, int KH, int KW, int sh, int sw, int ph, int pw, int dh, int dw, int groups,
                             int act, int ldy) {
    /* NHWC, weights [CO][KH][KW][C/g], output pixels ldy elements apart
     * (a channel slice of a concat: the other channels must stay) */
    const int N = 2, H = 23, W = 19;
    int OH = (H + 2 * ph - dh * (KH - 1) - 1) / sh + 1, OW = (W + 2 * pw - dw * (KW - 1) - 1) / sw + 1;
    int cig = C / groups, cog = CO / groups;
    int64_t ni = (int64_t)N * H * W * C, nw = (int64_t)CO * KH * KW * cig, npix = (int64_t)N * OH * OW;
    float *x = rnd(ni, 1.f), *w = rnd(nw, 1.f / sqrtf((float)(cig * KH * KW))), *b = rnd(CO, 0.5f);
    void *dx = up(x, ni, f16), *dw_ = up(w, nw, f16), *db = up(b, CO, f16), *dy = dalloc(npix * ldy, f16);
    CK(mtk_conv_direct_ld(0, dx, dy, dw_, db, N, H, W, C, OH, OW, CO, KH, KW, sh, sw, ph, pw, dh, dw, groups, act, f16, ldy));
    float *o = down(dy, npix * ldy, f16), *got = malloc(sizeof(float) * npix * CO);
    double *ref = malloc(sizeof(double) * npix * CO), *mag = malloc(sizeof(double) * npix * CO);
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int co = 0; co < CO; co++) {
                    int g = co / cog;
                    double acc = b[co], sa = fabs(b[co]);
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++) {
                            int ih = oh * sh - ph + kh * dh, iw = ow * sw - pw + kw * dw;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            for (int ci = 0; ci < cig; ci++) {
                                double t = (double)x[(((int64_t)n * H + ih) * W + iw) * C + g * cig + ci] *
                                           w[(((int64_t)co * KH + kh) * KW + kw) * cig + ci];
                                acc += t;
                                sa += fabs(t);
                            }
                        }
                    int64_t pix = ((int64_t)n * OH + oh) * OW + ow;
                    ref[pix * CO + co] = act_ref(acc, act);
                    mag[pix * CO + co] = sa;
                    got[pix * CO + co] = o[pix * ldy + co];
                }
    char name[128];
    snprintf(name, sizeof name, "conv_direct_ld %dx%d/%dx%d pad %d,%d dil %d,%d g%d %d->%d ldy %d act=%d %s", KH, KW, sh, sw, ph,
             pw, dh, dw, groups, C, CO, ldy, act, f16 ? "f16" : "f32");
    check_elem(name, got, ref, mag, npix * CO, cig * KH * KW, f16);
    if (ldy > CO) check_untouched(name, dy, npix, CO, ldy, f16);
    free(x); free(w); free(b); free(o); free(got); free(ref); free(mag);
    cudaFree(dx); cudaFree(dw_); cudaFree(db); cudaFree(dy);
}

int main(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("skipped: no GPU\n");
        return 77;
    }
    /* seeded, printed and settable (MTMI_TEST_SEED): a failure can be re-run */
    mt_rng_seed(&g_rng, oracle_seed(1) ^ 0x9e3779b97f4a7c15ull);
    for (int f16 = 1; f16 >= 0; f16--) {
        printf("%s storage:\n", f16 ? "FP16" : "FP32");
        /* kernels of the plan that had no direct test: bias + activation
         * (in place, rows ldy apart), gather, the few-column GEMM, the
         * direct convolution into a channel slice */
        for (int act = 0; act <= 3; act++) t_bias_act(f16, act, 0);
        t_bias_act(f16, 1, 53);
        t_bias_act(f16, 2, 40);
        if (f16) {
            t_gather(2);
            t_gather(1);
        } else {
            t_gather(4);
            t_gather(8);
        }
        t_gemm_smalln(f16, 1, 32, 32, 2, 1);   /* the depth classifier: 32 -> 1, sigmoid */
        t_gemm_smalln(f16, 8, 64, 72, 1, 1);
        t_gemm_smalln(f16, 5, 37, 41, 0, 0);   /* K, lda not multiples of 8: the scalar path */
        t_gemm_smalln(f16, 3, 1024, 1024, 3, 1);
        t_conv_direct_ld(f16, 3, 32, 7, 7, 4, 4, 3, 3, 1, 1, 1, 1, 48);
        t_conv_direct_ld(f16, 8, 12, 3, 3, 2, 1, 1, 0, 2, 1, 4, 0, 20);
        t_conv_direct_ld(f16, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6, 3, 6);
        t_conv_direct_ld(f16, 5, 7, 1, 3, 1, 2, 0, 1, 1, 3, 1, 2, 9);
        t_copy(f16);
        t_elementwise(f16);
        t_layernorm(f16, 32, 0);
        t_layernorm(f16, 160, 1);
        t_layernorm(f16, 1000, 0);
        t_layernorm_pair(f16, 32, 0, 64, 50, 1);
        t_layernorm_pair(f16, 64, 1, 31, 17, 0);
        t_layernorm_pair(f16, 160, 0, 16, 16, 1);
        t_layernorm_pair(f16, 256, 1, 8, 12, 0);
        /* LayerNorm + im2col: the encoder's spatial reductions (kernel ==
         * stride, pad 0; rows past the last window unused at 67 / 18x15) */
        t_layernorm_im2col(f16, 32, 1, 1, 64, 64, 8, 8, 8, 8, 0, 0, 1, 1, 0);
        t_layernorm_im2col(f16, 32, 0, 1, 67, 70, 8, 8, 8, 8, 0, 0, 1, 1, 0);
        t_layernorm_im2col(f16, 64, 1, 2, 32, 32, 4, 4, 4, 4, 0, 0, 1, 1, 0);
        t_layernorm_im2col(f16, 64, 0, 1, 30, 29, 4, 4, 4, 4, 0, 0, 1, 1, 0);
        t_layernorm_im2col(f16, 160, 1, 1, 16, 16, 2, 2, 2, 2, 0, 0, 1, 1, 0);
        t_layernorm_im2col(f16, 160, 0, 1, 18, 15, 2, 2, 2, 2, 0, 0, 1, 1, 0);
        /* the patch embeddings (3x3 / 2 pad 1: up to 4 places a pixel, zero
         * taps on the borders), odd sizes, padded columns */
        t_layernorm_im2col(f16, 32, 1, 1, 64, 64, 3, 3, 2, 2, 1, 1, 1, 1, 0);
        t_layernorm_im2col(f16, 32, 0, 2, 33, 31, 3, 3, 2, 2, 1, 1, 1, 1, 8);
        t_layernorm_im2col(f16, 64, 1, 1, 31, 33, 3, 3, 2, 2, 1, 1, 1, 1, 0);
        t_layernorm_im2col(f16, 64, 0, 1, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 16);
        t_layernorm_im2col(f16, 160, 1, 1, 17, 16, 3, 3, 2, 2, 1, 1, 1, 1, 0);
        t_layernorm_im2col(f16, 160, 0, 1, 16, 17, 3, 3, 2, 2, 1, 1, 1, 1, 0);
        /* other geometries the kernel takes: stride 1 (9 places a pixel),
         * padding wider than the stride, dilation, 1-pixel images, and the
         * two-kernel fallback (Kp not a multiple of 8) */
        t_layernorm_im2col(f16, 32, 1, 1, 13, 11, 3, 3, 1, 1, 1, 1, 1, 1, 0);
        t_layernorm_im2col(f16, 16, 0, 1, 37, 35, 7, 7, 4, 4, 3, 3, 1, 1, 8);
        t_layernorm_im2col(f16, 32, 0, 1, 19, 20, 3, 3, 2, 1, 2, 2, 2, 3, 0);
        t_layernorm_im2col(f16, 64, 1, 3, 1, 1, 3, 3, 2, 2, 1, 1, 1, 1, 8);
        t_layernorm_im2col(f16, 32, 1, 1, 9, 7, 3, 3, 2, 2, 1, 1, 1, 1, 3);
        t_softmax(f16);
        t_resize(f16, 0, 1);
        t_resize(f16, 2, 0);
        t_resize(f16, 0, 2);
        t_dwconv(f16, 64, 3);
        t_dwconv(f16, 37, 0);
        t_dwconv(f16, 30, 1);
        t_conv_direct(f16);
        t_attention(f16, 1, 1, 1000, 256, 32, 1);
        t_attention(f16, 2, 2, 300, 100, 32, 1);
        t_attention(f16, 1, 5, 257, 64, 32, 0);
        t_attention(f16, 1, 2, 130, 70, 64, 1);
        t_attention(f16, 1, 1, 64, 40, 24, 0);
        t_attention(f16, 1, 1, 34000, 200, 32, 1);
        /* the encoder's later stages (key-split variants of the FP16 kernel) */
        t_attention(f16, 1, 8, 1024, 1024, 32, 1);
        t_attention(f16, 1, 5, 4096, 1024, 32, 1);
        t_attention(f16, 1, 8, 100, 200, 64, 0);
        t_attention(f16, 1, 4, 70, 130, 128, 1);
        t_attention(f16, 1, 3, 50, 7, 16, 0);
        t_attention(f16, 2, 3, 333, 257, 32, 0);
        if (f16) {
            /* every configuration of the FP16 kernels (K / V streamed or
             * resident), ragged sizes (rows and keys not multiples of a
             * tile), sharp rows (lazy rescale), more query groups than a
             * block's warps, and the largest key count kept resident */
            const int S = MTK_ATTN_STREAM, R = MTK_ATTN_RESIDENT;
            for (int ks = 1; ks <= 4; ks *= 2) {
                t_attention_cfg(1, 2, 777, 333, 32, S, ks, 1.f);
                t_attention_cfg(2, 1, 301, 1024, 32, S, ks, 6.f);
                t_attention_cfg(1, 3, 100, 90, 16, S, ks, 4.f);
                t_attention_cfg(1, 2, 130, 200, 64, S, ks, 4.f);
                if (ks < 4) t_attention_cfg(1, 2, 70, 130, 128, S, ks, 3.f);
                t_attention_cfg(1, 2, 777, 333, 32, R, ks, 1.f);
                t_attention_cfg(2, 1, 301, 1024, 32, R, ks, 6.f);
                t_attention_cfg(1, 1, 9000, 97, 32, R, ks, 4.f);
                t_attention_cfg(1, 1, 40000, 200, 32, R, ks, 2.f);
                t_attention_cfg(1, 3, 50, 1250, 32, R, ks, 5.f);
            }
            t_attention_cfg(1, 1, 5000, 1024, 32, 0, 0, 8.f);
            t_resize_sum();
            t_layernorm_proj(32, 32, 4099, 1);
            t_layernorm_proj(64, 64, 1000, 0);
            t_layernorm_proj(160, 160, 333, 1);
            t_layernorm_proj(256, 256, 130, 1);
            t_chain3(32, 24, 65536 + 77, 1, 24);
            t_chain3(64, 32, 1000, 0, 40);
        }
        t_preprocess(f16);
    }
    t_resize_cat();
    printf(g_fail ? "FAILED\n" : "all GPU kernel checks passed\n");
    return g_fail;
}
