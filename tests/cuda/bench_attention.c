/* mtmi_attn_bench [--iters N]
 * Times every configuration of the FP16 attention kernels on the encoder's
 * four attention shapes (MiT-B0 at 1024x1024: 65536 / 16384 / 4096 / 1024
 * queries, 1 / 2 / 5 / 8 heads of 32, 1024 keys) and on a head size of 64
 * (MiT-B1 and larger), laid out as the CUDA plan lays them out (queries
 * [N, H*D], keys and values as the two halves of one [M, 2*H*D] buffer).
 * For each configuration: microseconds a call (median of 7 batches of
 * `iters` back-to-back launches), the ratio to the configuration
 * mtk_attention picks, the achieved rate in exponentials a second against
 * the MUFU unit's peak, and the largest difference to the picked
 * configuration's output (a configuration that computes something else
 * shows here, not only in the tests). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "core/core.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_ck.h"
#include "cuda/cuda_testutil.h"
#include "cuda/kernels.h"

typedef struct {
    const char *name;
    int H, N, M, D;
} shape;

/* kernel 0: mtk_attention's own choice */
static float time_cfg(const mtk_attn *a, int kernel, int ks, int iters, cudaEvent_t e0, cudaEvent_t e1) {
    cudaError_t r = kernel ? mtk_attention_config(0, a, kernel, ks) : mtk_attention(0, a, 1);
    if (r == cudaErrorInvalidValue) {
        cudaGetLastError();
        return -1.f;
    }
    CK(r);
    CK(cudaDeviceSynchronize());
    float t[7];
    for (int b = 0; b < 7; b++) {
        CK(cudaEventRecord(e0, 0));
        for (int i = 0; i < iters; i++) kernel ? mtk_attention_config(0, a, kernel, ks) : mtk_attention(0, a, 1);
        CK(cudaEventRecord(e1, 0));
        CK(cudaEventSynchronize(e1));
        CK(cudaEventElapsedTime(&t[b], e0, e1));
        t[b] = t[b] * 1000.f / iters;
    }
    return median_of(t, 7);
}

static double max_diff(const uint16_t *x, const uint16_t *y, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)mt_half_to_float(x[i]) - mt_half_to_float(y[i]));
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

int main(int argc, char **argv) {
    int iters = 50;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
    if (mt_cuda_check_device(0)) {
        printf("skipped: no CUDA device\n");
        return 77;
    }
    int sms = 0, clk = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, 0); /* kHz, the boost clock */
    /* MUFU.EX2: 16 a clock an SM (4 a sub-partition) */
    const double mufu_peak = 16.0 * sms * clk * 1e3;
    static const shape shapes[] = {
        {"stage1 H1 N65536 D32", 1, 65536, 1024, 32}, {"stage2 H2 N16384 D32", 2, 16384, 1024, 32},
        {"stage3 H5 N4096 D32", 5, 4096, 1024, 32},   {"stage4 H8 N1024 D32", 8, 1024, 1024, 32},
        {"stage1 H1 N65536 D64", 1, 65536, 1024, 64},
    };
    static const int cfgs[][2] = {{MTK_ATTN_STREAM, 1},   {MTK_ATTN_STREAM, 2},   {MTK_ATTN_STREAM, 4},
                                  {MTK_ATTN_RESIDENT, 1}, {MTK_ATTN_RESIDENT, 2}, {MTK_ATTN_RESIDENT, 4}};
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    mt_rng rng;
    mt_rng_seed(&rng, 7);
    printf("attention kernels, FP16, %d SMs at %.2f GHz (MUFU peak %.1f G exp/s); us a call, median of 7 x %d\n", sms,
           clk / 1e6, mufu_peak / 1e9, iters);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *sh = &shapes[si];
        const int C = sh->H * sh->D;
        const int64_t nq = (int64_t)sh->N * C, nkv = (int64_t)sh->M * 2 * C;
        uint16_t *hq = malloc(nq * 2), *hkv = malloc(nkv * 2), *ref = malloc(nq * 2), *got = malloc(nq * 2);
        for (int64_t i = 0; i < nq; i++) hq[i] = mt_float_to_half(mt_rng_normal(&rng) * 1.5f);
        for (int64_t i = 0; i < nkv; i++) hkv[i] = mt_float_to_half(mt_rng_normal(&rng));
        void *dq, *dkv, *dout;
        CK(cudaMalloc(&dq, nq * 2));
        CK(cudaMalloc(&dkv, nkv * 2));
        CK(cudaMalloc(&dout, nq * 2));
        CK(cudaMemcpy(dq, hq, nq * 2, cudaMemcpyHostToDevice));
        CK(cudaMemcpy(dkv, hkv, nkv * 2, cudaMemcpyHostToDevice));
        mtk_attn a;
        memset(&a, 0, sizeof a);
        a.B = 1, a.H = sh->H, a.N = sh->N, a.M = sh->M, a.D = sh->D;
        a.scale = 1.f / sqrtf((float)sh->D);
        a.qs[0] = nq, a.qs[1] = sh->D, a.qs[2] = C;
        memcpy(a.os, a.qs, sizeof a.qs);
        a.ks[0] = nkv, a.ks[1] = sh->D, a.ks[2] = 2 * C;
        memcpy(a.vs, a.ks, sizeof a.ks);
        a.q = dq, a.k = dkv, a.v = (char *)dkv + (size_t)C * 2, a.o = dout;
        const double exps = (double)sh->H * sh->N * sh->M;
        const float tauto = time_cfg(&a, 0, 0, iters, e0, e1);
        CK(cudaMemcpy(ref, dout, nq * 2, cudaMemcpyDeviceToHost));
        printf("%-22s %-18s %8.2f us  1.00x  %5.1f %% of MUFU peak\n", sh->name, "picked", tauto,
               100.0 * exps / (tauto * 1e-6) / mufu_peak);
        for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
            CK(cudaMemset(dout, 0xff, nq * 2));
            const float tc = time_cfg(&a, cfgs[c][0], cfgs[c][1], iters, e0, e1);
            if (tc < 0) continue;
            CK(cudaMemcpy(got, dout, nq * 2, cudaMemcpyDeviceToHost));
            char nm[32];
            snprintf(nm, sizeof nm, "%s ksplit=%d", cfgs[c][0] == MTK_ATTN_RESIDENT ? "resident" : "stream", cfgs[c][1]);
            printf("%-22s %-18s %8.2f us  %.2fx  %5.1f %% of MUFU peak  max diff %.2e\n", sh->name, nm, tc, tc / tauto,
                   100.0 * exps / (tc * 1e-6) / mufu_peak, max_diff(ref, got, nq));
        }
        free(hq), free(hkv), free(ref), free(got);
        cudaFree(dq), cudaFree(dkv), cudaFree(dout);
    }
    return 0;
}
