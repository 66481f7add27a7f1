// Flash-style attention: softmax(Q K^T * scale) V without storing the score
// matrix.  FP16: tensor cores (mma.sync m16n8k16, FP32 accumulation), 16
// query rows a warp (or a group of 2 / 4 warps splitting the keys), 64-key
// tiles streamed into shared memory, online softmax in registers.  FP32 (and
// head sizes other than 16 / 32 / 64 / 128): one thread per query row on
// CUDA cores.
#include <cuda_fp16.h>
#include <stdint.h>

#include "kernels.h"
#include "launch.cuh"
#include "mma.cuh"

namespace {

// The tensor-core kernel for 16-byte-aligned K and V rows, 8 warps:
//  - K and V tiles stream into shared memory with cp.async, double-buffered
//    (the next tile loads while this one is computed: one barrier a tile);
//  - V stays row-major and ldmatrix.trans builds the P V operand (no
//    transposing scalar stores);
//  - KSPLIT warps share 16 query rows and take interleaved 64-key sub-tiles
//    each, merged at the end (max / rescale / sum through shared memory),
//    so that short query sequences with many heads (the encoder's later
//    stages: 1024-4096 queries) still fill the GPU: the grid has KSPLIT
//    times more blocks than with 16 rows a warp.
template <int D, int KSPLIT, int MINB>
__global__ void __launch_bounds__(256, MINB) k_attn_f16_async(mtk_attn a) {
    MTK_PDL_WAIT();
    constexpr int KT = 64, WARPS = 8, QG = WARPS / KSPLIT;
    constexpr int RS = D + 8;          // padded smem row (halves): conflict-free ldmatrix / 32-bit reads
    constexpr int TILE = KSPLIT * KT;  // keys a stage
    extern __shared__ __align__(16) unsigned char smraw[];
    __half *Ks = (__half *)smraw;        // [2][TILE][RS]
    __half *Vs = Ks + 2 * TILE * RS;     // [2][TILE][RS]
    const int bh = blockIdx.y;
    const int b = bh / a.H, h = bh % a.H;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int qg = warp / KSPLIT, ks = warp % KSPLIT;
    const int q0 = blockIdx.x * (QG * 16) + qg * 16;
    const __half *Q = (const __half *)a.q + b * a.qs[0] + h * a.qs[1];
    const __half *K = (const __half *)a.k + b * a.ks[0] + h * a.ks[1];
    const __half *V = (const __half *)a.v + b * a.vs[0] + h * a.vs[1];
    __half *O = (__half *)a.o + b * a.os[0] + h * a.os[1];

    uint32_t qf[D / 16][4];
    const int r0 = q0 + g, r1 = q0 + g + 8;
    if (a.wq) {
        // Fused query projection: this warp's 16 x D block of q = x W_h + b_h
        // on tensor cores, straight into the A-fragment layout (the m16n8
        // accumulators of two adjacent n-tiles are the m16k16 A fragment),
        // rounded to FP16 where the separate GEMM would have stored it.
        const __half *Wq = (const __half *)a.wq + h * D, *Bq = (const __half *)a.bq;
        float qa[D / 8][4];
#pragma unroll
        for (int j = 0; j < D / 8; j++) qa[j][0] = qa[j][1] = qa[j][2] = qa[j][3] = 0.f;
        for (int k0 = 0; k0 < a.cin; k0 += 16) {
            uint32_t xa[4];
            const int c0 = k0 + 2 * t, c1 = c0 + 8;
            xa[0] = r0 < a.N ? *(const uint32_t *)(Q + (int64_t)r0 * a.qs[2] + c0) : 0u;
            xa[1] = r1 < a.N ? *(const uint32_t *)(Q + (int64_t)r1 * a.qs[2] + c0) : 0u;
            xa[2] = r0 < a.N ? *(const uint32_t *)(Q + (int64_t)r0 * a.qs[2] + c1) : 0u;
            xa[3] = r1 < a.N ? *(const uint32_t *)(Q + (int64_t)r1 * a.qs[2] + c1) : 0u;
            const __half *w0 = Wq + (int64_t)c0 * a.ldw + g, *w1 = Wq + (int64_t)c1 * a.ldw + g;
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                // B fragment (k16 x n8, column g): rows 2t, 2t+1 and 2t+8, 2t+9
                __half2 b0 = __halves2half2(w0[j * 8], w0[a.ldw + j * 8]);
                __half2 b1 = __halves2half2(w1[j * 8], w1[a.ldw + j * 8]);
                uint32_t bf[2] = {*(uint32_t *)&b0, *(uint32_t *)&b1};
                mma16816(qa[j], xa, bf);
            }
        }
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            float b00 = 0.f, b01 = 0.f, b10 = 0.f, b11 = 0.f;
            if (Bq) {
                const int c = h * D + kk * 16 + 2 * t;
                b00 = __half2float(Bq[c]), b01 = __half2float(Bq[c + 1]);
                b10 = __half2float(Bq[c + 8]), b11 = __half2float(Bq[c + 9]);
            }
            __half2 q00 = __floats2half2_rn(qa[2 * kk][0] + b00, qa[2 * kk][1] + b01);
            __half2 q01 = __floats2half2_rn(qa[2 * kk][2] + b00, qa[2 * kk][3] + b01);
            __half2 q10 = __floats2half2_rn(qa[2 * kk + 1][0] + b10, qa[2 * kk + 1][1] + b11);
            __half2 q11 = __floats2half2_rn(qa[2 * kk + 1][2] + b10, qa[2 * kk + 1][3] + b11);
            qf[kk][0] = *(uint32_t *)&q00;
            qf[kk][1] = *(uint32_t *)&q01;
            qf[kk][2] = *(uint32_t *)&q10;
            qf[kk][3] = *(uint32_t *)&q11;
        }
    } else {
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const int c0 = kk * 16 + 2 * t, c1 = c0 + 8;
            qf[kk][0] = r0 < a.N ? *(const uint32_t *)(Q + (int64_t)r0 * a.qs[2] + c0) : 0u;
            qf[kk][1] = r1 < a.N ? *(const uint32_t *)(Q + (int64_t)r1 * a.qs[2] + c0) : 0u;
            qf[kk][2] = r0 < a.N ? *(const uint32_t *)(Q + (int64_t)r0 * a.qs[2] + c1) : 0u;
            qf[kk][3] = r1 < a.N ? *(const uint32_t *)(Q + (int64_t)r1 * a.qs[2] + c1) : 0u;
        }
    }
    float o[D / 8][4];
#pragma unroll
    for (int j = 0; j < D / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    const float sl2 = a.scale * 1.4426950408889634f;
    const int ntiles = (a.M + TILE - 1) / TILE;

    auto load = [&](int tile, int buf) {
        const int kb = tile * TILE;
        __half *kd = Ks + buf * TILE * RS, *vd = Vs + buf * TILE * RS;
        for (int idx = threadIdx.x; idx < TILE * (D / 8); idx += WARPS * 32) {
            const int kr = idx / (D / 8), c = (idx % (D / 8)) * 8;
            const bool ok = kb + kr < a.M;
            const int64_t row = ok ? kb + kr : 0;
            cp_async16(kd + kr * RS + c, K + row * a.ks[2] + c, ok);
            cp_async16(vd + kr * RS + c, V + row * a.vs[2] + c, ok);
        }
        cp_async_commit();
    };
    load(0, 0);
    for (int tile = 0; tile < ntiles; tile++) {
        cp_async_wait_all();
        __syncthreads();  // tile landed for everyone; everyone is done with the other buffer
        if (tile + 1 < ntiles) load(tile + 1, (tile + 1) & 1);
        const int k0 = tile * TILE + ks * KT;
        if (k0 >= a.M) continue;  // warp-uniform: this warp's sub-tile is past the keys
        const __half *kt = Ks + (tile & 1) * TILE * RS + ks * KT * RS;
        const __half *vt = Vs + (tile & 1) * TILE * RS + ks * KT * RS;
        float s[KT / 8][4];
#pragma unroll
        for (int n = 0; n < KT / 8; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                uint32_t bf[2];
                const __half *kp = kt + (n * 8 + g) * RS + kk * 16 + 2 * t;
                bf[0] = *(const uint32_t *)kp;
                bf[1] = *(const uint32_t *)(kp + 8);
                mma16816(s[n], qf[kk], bf);
            }
        }
        // Keys past M only in the last tile (a warp-uniform test): masking
        // costs nothing elsewhere.
        if (k0 + KT > a.M) {
#pragma unroll
            for (int n = 0; n < KT / 8; n++) {
                const int key = k0 + n * 8 + 2 * t;
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (key + (e & 1) >= a.M) s[n][e] = -INFINITY;
            }
        }
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < KT / 8; n++) {
            mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
            mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        // Running maxima are kept in scaled (log2) units; the scale goes into
        // one FMA per exponent (sl2 > 0, so the max of the raw scores scales).
        // k0 < M: every row sees at least one key here, so mn is finite.
        const float mn0 = fmaxf(m0, mx0 * sl2), mn1 = fmaxf(m1, mx1 * sl2);
        const float al0 = exp2f(m0 - mn0), al1 = exp2f(m1 - mn1);
        m0 = mn0;
        m1 = mn1;
        float ps0 = 0.f, ps1 = 0.f;
        uint32_t ph[KT / 8][2];
#pragma unroll
        for (int n = 0; n < KT / 8; n++) {
            float e00 = exp2f(fmaf(s[n][0], sl2, -mn0)), e01 = exp2f(fmaf(s[n][1], sl2, -mn0));
            float e10 = exp2f(fmaf(s[n][2], sl2, -mn1)), e11 = exp2f(fmaf(s[n][3], sl2, -mn1));
            ps0 += e00 + e01;
            ps1 += e10 + e11;
            __half2 h0 = __floats2half2_rn(e00, e01), h1 = __floats2half2_rn(e10, e11);
            ph[n][0] = *(uint32_t *)&h0;
            ph[n][1] = *(uint32_t *)&h1;
        }
        l0 = l0 * al0 + ps0;
        l1 = l1 * al1 + ps1;
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            o[j][0] *= al0;
            o[j][1] *= al0;
            o[j][2] *= al1;
            o[j][3] *= al1;
        }
#pragma unroll
        for (int kk = 0; kk < KT / 16; kk++) {
            uint32_t pa[4];
            pa[0] = ph[2 * kk][0];
            pa[1] = ph[2 * kk][1];
            pa[2] = ph[2 * kk + 1][0];
            pa[3] = ph[2 * kk + 1][1];
            const __half *vrow = vt + (kk * 16 + (lane & 15)) * RS;
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                uint32_t bf[2];
                ldsm_x2_trans(bf[0], bf[1], vrow + j * 8);
                mma16816(o[j], pa, bf);
            }
        }
    }
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    if (KSPLIT > 1) {
        // Merge the KSPLIT partial results of each query group: warp ks = 0
        // rescales everyone's (o, l) to the common maximum and sums.  A warp
        // that saw no key has m = -inf, l = 0, o = 0 and weight 0.
        constexpr int PER = D / 2 + 4;  // floats a lane: o fragments, m0, m1, l0, l1
        cp_async_wait_all();
        __syncthreads();               // K/V buffers are free: reuse them
        float *red = (float *)smraw;
        float *mine = red + warp * PER * 32;
#pragma unroll
        for (int j = 0; j < D / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) mine[(j * 4 + e) * 32 + lane] = o[j][e];
        mine[(D / 2 + 0) * 32 + lane] = m0;
        mine[(D / 2 + 1) * 32 + lane] = m1;
        mine[(D / 2 + 2) * 32 + lane] = l0;
        mine[(D / 2 + 3) * 32 + lane] = l1;
        __syncthreads();
        if (ks != 0) return;
        float M0 = m0, M1 = m1;
#pragma unroll
        for (int w = 1; w < KSPLIT; w++) {
            const float *ow = red + (warp + w) * PER * 32;
            M0 = fmaxf(M0, ow[(D / 2 + 0) * 32 + lane]);
            M1 = fmaxf(M1, ow[(D / 2 + 1) * 32 + lane]);
        }
        const float f0 = exp2f(m0 - M0), f1 = exp2f(m1 - M1);
        l0 *= f0;
        l1 *= f1;
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            o[j][0] *= f0;
            o[j][1] *= f0;
            o[j][2] *= f1;
            o[j][3] *= f1;
        }
#pragma unroll
        for (int w = 1; w < KSPLIT; w++) {
            const float *ow = red + (warp + w) * PER * 32;
            const float w0 = exp2f(ow[(D / 2 + 0) * 32 + lane] - M0), w1 = exp2f(ow[(D / 2 + 1) * 32 + lane] - M1);
            l0 += ow[(D / 2 + 2) * 32 + lane] * w0;
            l1 += ow[(D / 2 + 3) * 32 + lane] * w1;
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                o[j][0] += ow[(j * 4 + 0) * 32 + lane] * w0;
                o[j][1] += ow[(j * 4 + 1) * 32 + lane] * w0;
                o[j][2] += ow[(j * 4 + 2) * 32 + lane] * w1;
                o[j][3] += ow[(j * 4 + 3) * 32 + lane] * w1;
            }
        }
    }
    const float i0 = 1.f / l0, i1 = 1.f / l1;
#pragma unroll
    for (int j = 0; j < D / 8; j++) {
        const int c = j * 8 + 2 * t;
        if (r0 < a.N) *(__half2 *)(O + (int64_t)r0 * a.os[2] + c) = __floats2half2_rn(o[j][0] * i0, o[j][1] * i0);
        if (r1 < a.N) *(__half2 *)(O + (int64_t)r1 * a.os[2] + c) = __floats2half2_rn(o[j][2] * i1, o[j][3] * i1);
    }
}

template <int D, int KSPLIT, int MINB>
cudaError_t launch_async(cudaStream_t s, const mtk_attn *a) {
    constexpr int TILE = KSPLIT * 64, RS = D + 8;
    constexpr size_t kv = (size_t)4 * TILE * RS * sizeof(__half);
    constexpr size_t red = KSPLIT > 1 ? (size_t)8 * (D / 2 + 4) * 32 * sizeof(float) : 0;
    constexpr size_t smem = kv > red ? kv : red;
    if (smem > 48 * 1024) {
        /* Idempotent; launches happen when a plan is built and captured, not per frame. */
        cudaError_t e = cudaFuncSetAttribute(k_attn_f16_async<D, KSPLIT, MINB>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
    }
    constexpr int QROWS = 16 * 8 / KSPLIT;
    dim3 grid((a->N + QROWS - 1) / QROWS, a->B * a->H);
    mtk_launch(k_attn_f16_async<D, KSPLIT, MINB>, grid, 256, smem, s, *a);
    return cudaGetLastError();
}

// Smallest split whose grid covers the GPU twice over (keys permitting).
template <int D>
cudaError_t attn_async(cudaStream_t s, const mtk_attn *a) {
    int dev = 0, sms = 132;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    const long long bhs = (long long)a->B * a->H, want = 2LL * sms;
    int ksplit = 1;
    if (((a->N + 127) / 128) * bhs < want && a->M > 64) ksplit = 2;
    /* D = 128 with 4 sub-tiles would need 278 KB of shared memory */
    if (ksplit == 2 && D < 128 && ((a->N + 63) / 64) * bhs < want && a->M > 128) ksplit = 4;
    /* MINB (blocks per SM in __launch_bounds__) 2 or 3 measured no faster
     * than 1 for the encoder's first stage (H100, 2026-11-25). */
    if (ksplit == 4) return launch_async<D, 4, 1>(s, a);
    if (ksplit == 2) return launch_async<D, 2, 1>(s, a);
    return launch_async<D, 1, 1>(s, a);
}

// FP32 (or odd head size) path: one thread per query row, key tiles in shared memory.
template <typename T, int DM>
__global__ void k_attn_simple(mtk_attn a) {
    MTK_PDL_WAIT();
    constexpr int TK = 32;
    __shared__ float Ks[TK][DM], Vs[TK][DM];
    const int bh = blockIdx.y, b = bh / a.H, h = bh % a.H;
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    const T *Q = (const T *)a.q + b * a.qs[0] + h * a.qs[1];
    const T *K = (const T *)a.k + b * a.ks[0] + h * a.ks[1];
    const T *V = (const T *)a.v + b * a.vs[0] + h * a.vs[1];
    T *O = (T *)a.o + b * a.os[0] + h * a.os[1];
    const int D = a.D;
    float q[DM], o[DM];
#pragma unroll
    for (int d = 0; d < DM; d++) {
        q[d] = (r < a.N && d < D && !a.wq) ? (float)Q[(int64_t)r * a.qs[2] + d] : 0.f;
        o[d] = 0.f;
    }
    if (a.wq && r < a.N) { /* fused query projection (see mtk_attn), rounded to T */
        const T *W = (const T *)a.wq, *Bq = (const T *)a.bq;
#pragma unroll
        for (int d = 0; d < DM; d++) {
            if (d >= D) break;
            float acc = Bq ? (float)Bq[h * D + d] : 0.f;
            for (int k = 0; k < a.cin; k++) acc += (float)Q[(int64_t)r * a.qs[2] + k] * (float)W[(int64_t)k * a.ldw + h * D + d];
            q[d] = (float)(T)acc;
        }
    }
#pragma unroll
    for (int d = 0; d < DM; d++) q[d] *= a.scale;
    float m = -INFINITY, l = 0.f;
    for (int k0 = 0; k0 < a.M; k0 += TK) {
        __syncthreads();
        for (int i = threadIdx.x; i < TK * DM; i += blockDim.x) {
            int kr = i / DM, d = i % DM;
            bool ok = k0 + kr < a.M && d < D;
            Ks[kr][d] = ok ? (float)K[(int64_t)(k0 + kr) * a.ks[2] + d] : 0.f;
            Vs[kr][d] = ok ? (float)V[(int64_t)(k0 + kr) * a.vs[2] + d] : 0.f;
        }
        __syncthreads();
        int nk = min(TK, a.M - k0);
        for (int kr = 0; kr < nk; kr++) {
            float sc = 0.f;
            for (int d = 0; d < DM; d++) sc += q[d] * Ks[kr][d];
            float mn = fmaxf(m, sc);
            float al = __expf(m - mn), p = __expf(sc - mn);
            l = l * al + p;
            for (int d = 0; d < DM; d++) o[d] = o[d] * al + p * Vs[kr][d];
            m = mn;
        }
    }
    if (r < a.N)
        for (int d = 0; d < D; d++) O[(int64_t)r * a.os[2] + d] = (T)(o[d] / l);
}

template <typename T>
cudaError_t attn_simple(cudaStream_t s, const mtk_attn *a) {
    dim3 grid((a->N + 127) / 128, a->B * a->H);
    if (a->D <= 16) mtk_launch(k_attn_simple<T, 16>, grid, 128, 0, s, *a);
    else if (a->D <= 32) mtk_launch(k_attn_simple<T, 32>, grid, 128, 0, s, *a);
    else if (a->D <= 64) mtk_launch(k_attn_simple<T, 64>, grid, 128, 0, s, *a);
    else if (a->D <= 128) mtk_launch(k_attn_simple<T, 128>, grid, 128, 0, s, *a);
    else return cudaErrorInvalidValue;
    return cudaGetLastError();
}

}  // namespace

extern "C" cudaError_t mtk_attention(cudaStream_t s, const mtk_attn *a, int f16) {
    if (a->N == 0 || a->B * a->H == 0) return cudaSuccess;
    if (!f16) return attn_simple<float>(s, a);
    if (a->wq && (a->cin < 1 || a->ldw < a->H * a->D)) return cudaErrorInvalidValue;
    bool aligned = ((uintptr_t)a->q % 4 == 0) && ((uintptr_t)a->o % 4 == 0) && a->qs[2] % 2 == 0 && a->os[2] % 2 == 0 &&
                   (!a->wq || a->cin % 16 == 0) &&
                   a->qs[0] % 2 == 0 && a->qs[1] % 2 == 0 && a->os[0] % 2 == 0 && a->os[1] % 2 == 0;
    int vec = ((uintptr_t)a->k % 16 == 0) && ((uintptr_t)a->v % 16 == 0) && a->ks[2] % 8 == 0 && a->vs[2] % 8 == 0 &&
              a->ks[0] % 8 == 0 && a->ks[1] % 8 == 0 && a->vs[0] % 8 == 0 && a->vs[1] % 8 == 0;
    if (a->M > 0 && aligned && vec) {
        switch (a->D) {
        case 16: return attn_async<16>(s, a);
        case 32: return attn_async<32>(s, a);
        case 64: return attn_async<64>(s, a);
        case 128: return attn_async<128>(s, a);
        default: break;
        }
    }
    /* other head sizes, or K / V rows not 16-byte aligned (cp.async) */
    return attn_simple<__half>(s, a);
}
