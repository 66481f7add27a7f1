/* The fused encoder MLP kernel (mtk_mlp_dw: fc1 -> depthwise 3x3 + act ->
 * fc2) against a CPU reference that rounds to FP16 where the unfused steps
 * store (fc1 output, conv output) and accumulates in double.  Random inputs;
 * sizes that do not divide the kernel's tiles, two images, biases absent,
 * the output written into a wider row (the other channels must stay
 * untouched).  Prints max abs and relative L2 errors; exit 1 on failure, 77
 * without a GPU.  --bench: times the network's two fused shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/kernels.h"

#include "cuda/cuda_ck.h"
#include "cuda/cuda_testutil.h"
#include "oracle.h"

static mt_rng g_rng;

/* n random FP16 values (host copy rounded), device copy */
static void *rnd16(float *h, int64_t n, float scale) {
    uint16_t *t = malloc(n * 2 + 2);
    for (int64_t i = 0; i < n; i++) {
        t[i] = mt_float_to_half(mt_rng_normal(&g_rng) * scale);
        h[i] = mt_half_to_float(t[i]);
    }
    void *d;
    CK(cudaMalloc(&d, n * 2 + 16));
    CK(cudaMemcpy(d, t, n * 2, cudaMemcpyHostToDevice));
    free(t);
    return d;
}

/* ln: the input is LN(x + r) computed by the kernel (mtk_mlp.ln), whose
 * sum x + r is also checked */
static int check_ln(int N, int H, int W, int C, int Ch, int act, int biases, int ldy, int ln) {
    int64_t P = (int64_t)N * H * W;
    float *x = malloc(sizeof(float) * P * C), *w1 = malloc(sizeof(float) * C * Ch), *b1 = malloc(sizeof(float) * Ch);
    float *wd = malloc(sizeof(float) * 9 * Ch), *bd = malloc(sizeof(float) * Ch), *w2 = malloc(sizeof(float) * Ch * C);
    float *b2 = malloc(sizeof(float) * C);
    mtk_mlp m = {0};
    m.x = rnd16(x, P * C, 1.f);
    float *rr = malloc(sizeof(float) * P * C), *gmm = malloc(sizeof(float) * C), *bet = malloc(sizeof(float) * C);
    void *dr = rnd16(rr, P * C, 1.f), *dg = rnd16(gmm, C, 1.f), *dbe = rnd16(bet, C, 0.5f), *dsum = NULL;
    float *sumref = NULL; /* ln: x + r rounded, the kernel's sum output */
    if (ln) {
        CK(cudaMalloc(&dsum, P * C * 2));
        m.ln = 1, m.res = dr, m.gamma = dg, m.beta = dbe, m.sum = dsum, m.eps = 1e-6f;
        sumref = malloc(sizeof(float) * P * C);
        for (int64_t p = 0; p < P; p++) {
            double mu = 0, var = 0;
            for (int c = 0; c < C; c++) mu += (double)x[p * C + c] + rr[p * C + c];
            mu /= C;
            for (int c = 0; c < C; c++) {
                double d = (double)x[p * C + c] + rr[p * C + c] - mu;
                var += d * d;
            }
            var /= C;
            for (int c = 0; c < C; c++) {
                sumref[p * C + c] = h16(x[p * C + c] + rr[p * C + c]);
                /* from here on x is the MLP's input: the LayerNorm, rounded */
                x[p * C + c] = h16((float)(((double)x[p * C + c] + rr[p * C + c] - mu) / sqrt(var + 1e-6) * gmm[c] + bet[c]));
            }
        }
    }
    m.w1 = rnd16(w1, (int64_t)C * Ch, 1.f / sqrtf((float)C));
    m.wdw = rnd16(wd, 9 * Ch, 1.f / 3.f);
    m.w2 = rnd16(w2, (int64_t)Ch * C, 1.f / sqrtf((float)Ch));
    void *db1 = rnd16(b1, Ch, 0.5f), *dbd = rnd16(bd, Ch, 0.5f), *db2 = rnd16(b2, C, 0.5f);
    if (!biases) {
        memset(b1, 0, sizeof(float) * Ch);
        memset(bd, 0, sizeof(float) * Ch);
        memset(b2, 0, sizeof(float) * C);
    }
    m.b1 = biases ? db1 : NULL;
    m.bdw = biases ? dbd : NULL;
    m.b2 = biases ? db2 : NULL;
    m.N = N, m.H = H, m.W = W, m.C = C, m.Ch = Ch, m.act = act, m.ldy = ldy;
    CK(cudaMalloc(&m.y, P * ldy * 2 + 16));
    CK(cudaMemset(m.y, 0xff, P * ldy * 2 + 16)); /* poison: NaN, and the canary of the unwritten channels */
    CK(mtk_mlp_dw(0, &m));
    CK(cudaDeviceSynchronize());
    uint16_t *y = malloc(P * ldy * 2);
    CK(cudaMemcpy(y, m.y, P * ldy * 2, cudaMemcpyDeviceToHost));

    /* reference: fc1 -> FP16 -> dw + act -> FP16 -> fc2 */
    float *h = malloc(sizeof(float) * P * Ch), *gbuf = malloc(sizeof(float) * P * Ch);
    for (int64_t p = 0; p < P; p++)
        for (int j = 0; j < Ch; j++) {
            double s = b1[j];
            for (int k = 0; k < C; k++) s += (double)x[p * C + k] * w1[(int64_t)k * Ch + j];
            h[p * Ch + j] = h16((float)s);
        }
    for (int n = 0; n < N; n++)
        for (int yy = 0; yy < H; yy++)
            for (int xx = 0; xx < W; xx++)
                for (int j = 0; j < Ch; j++) {
                    double s = bd[j];
                    for (int dy = 0; dy < 3; dy++)
                        for (int dx = 0; dx < 3; dx++) {
                            int iy = yy + dy - 1, ix = xx + dx - 1;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            s += (double)wd[(dy * 3 + dx) * Ch + j] * h[(((int64_t)n * H + iy) * W + ix) * Ch + j];
                        }
                    gbuf[(((int64_t)n * H + yy) * W + xx) * Ch + j] = h16((float)act_ref(s, act));
                }
    double maxe = 0, se = 0, sr = 0;
    int bad = 0, canary = 0;
    for (int64_t p = 0; p < P; p++) {
        for (int c = 0; c < C; c++) {
            double s = b2[c];
            for (int j = 0; j < Ch; j++) s += (double)gbuf[p * Ch + j] * w2[(int64_t)j * C + c];
            double got = mt_half_to_float(y[p * ldy + c]);
            double e = fabs(got - s);
            if (!(e <= 0.02 + 0.01 * fabs(s))) bad++;
            if (e > maxe || e != e) maxe = e;
            se += e * e;
            sr += s * s;
        }
        for (int c = C; c < ldy; c++) canary += y[p * ldy + c] != 0xffff;
    }
    double rel = sqrt(se / (sr > 0 ? sr : 1));
    int sumbad = 0;
    if (ln) {
        uint16_t *hs = malloc(P * C * 2);
        CK(cudaMemcpy(hs, dsum, P * C * 2, cudaMemcpyDeviceToHost));
        for (int64_t i = 0; i < P * C; i++) sumbad += fabsf(mt_half_to_float(hs[i]) - sumref[i]) > 1e-3f * (1 + fabsf(sumref[i]));
        free(hs);
    }
    int ok = !bad && !canary && !sumbad && rel < 3e-3;
    printf("%s mlp N%d %dx%d C%d Ch%d act%d bias%d ldy%d%s: max abs %.3g rel L2 %.3g%s%s\n", ok ? "ok  " : "FAIL", N, H, W, C,
           Ch, act, biases, ldy, ln ? " with the LayerNorm prologue" : "", maxe, rel, canary ? " (wrote outside its channels)" : "",
           sumbad ? " (wrong residual sum)" : "");
    free(rr), free(gmm), free(bet), free(sumref);
    cudaFree(dr), cudaFree(dg), cudaFree(dbe);
    if (dsum) cudaFree(dsum);
    cudaFree((void *)m.x), cudaFree((void *)m.w1), cudaFree((void *)m.wdw), cudaFree((void *)m.w2);
    cudaFree(db1), cudaFree(dbd), cudaFree(db2), cudaFree(m.y);
    free(x), free(w1), free(b1), free(wd), free(bd), free(w2), free(b2), free(y), free(h), free(gbuf);
    return ok;
}

static void bench(int H, int W, int C, int Ch) {
    int64_t P = (int64_t)H * W;
    mtk_mlp m = {0};
    void *buf[8];
    size_t sz[8] = {P * C * 2, (size_t)C * Ch * 2, Ch * 2, 9 * Ch * 2, Ch * 2, (size_t)Ch * C * 2, C * 2, P * C * 2};
    for (int i = 0; i < 8; i++) {
        CK(cudaMalloc(&buf[i], sz[i] + 16));
        CK(cudaMemset(buf[i], 0, sz[i]));
    }
    m.x = buf[0], m.w1 = buf[1], m.b1 = buf[2], m.wdw = buf[3], m.bdw = buf[4], m.w2 = buf[5], m.b2 = buf[6], m.y = buf[7];
    m.N = 1, m.H = H, m.W = W, m.C = C, m.Ch = Ch, m.act = 3, m.ldy = C;
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    float t[50];
    for (int i = 0; i < 5; i++) CK(mtk_mlp_dw(0, &m));
    for (int i = 0; i < 50; i++) {
        CK(cudaEventRecord(a, 0));
        CK(mtk_mlp_dw(0, &m));
        CK(cudaEventRecord(b, 0));
        CK(cudaEventSynchronize(b));
        CK(cudaEventElapsedTime(&t[i], a, b));
    }
    double us = median_of(t, 50) * 1e3;
    double gflop = 2.0 * P * (2.0 * C * Ch + 9.0 * Ch) / 1e9;
    printf("bench mlp %dx%d C%d Ch%d: %.1f us (%.0f GFLOP/s; unfused it moves %.0f MB, fused %.0f MB)\n", H, W, C, Ch, us,
           gflop / (us * 1e-6), (P * C * 2.0 + 4.0 * P * Ch * 2 + P * C * 2) / 1e6, 2.0 * P * C * 2 / 1e6);
    for (int i = 0; i < 8; i++) cudaFree(buf[i]);
}

static int check(int N, int H, int W, int C, int Ch, int act, int biases, int ldy) { return check_ln(N, H, W, C, Ch, act, biases, ldy, 0); }

int main(int argc, char **argv) {
    int n;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        printf("skipped: no CUDA device\n");
        return 77;
    }
    mt_rng_seed(&g_rng, oracle_seed(42));
    int ok = 1;
    ok &= check(1, 8, 16, 32, 64, 3, 1, 32);    /* one tile exactly */
    ok &= check(2, 37, 29, 32, 128, 3, 1, 32);  /* partial tiles, two images */
    ok &= check(1, 19, 23, 64, 256, 3, 1, 64);
    ok &= check(1, 16, 16, 64, 128, 1, 0, 64);  /* relu, no biases */
    ok &= check(1, 20, 40, 32, 128, 0, 1, 48);  /* no act, output rows 48 wide */
    ok &= check(1, 9, 9, 64, 64, 2, 1, 80);
    ok &= check_ln(2, 37, 29, 32, 128, 3, 1, 32, 1);
    ok &= check_ln(1, 19, 23, 64, 256, 3, 1, 64, 1);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--bench")) {
            bench(256, 256, 32, 128);
            bench(128, 128, 64, 256);
        }
    printf(ok ? "all mlp checks passed\n" : "some mlp checks FAILED\n");
    return ok ? 0 : 1;
}
