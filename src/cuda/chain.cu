// Three chained per-pixel GEMMs in one kernel (the SegFormer decode head
// after fuse_catgemm.c):
//     h1 = act1(x W1 + b1)            x [M, K1], K1 in {32, 64}, h1 128 wide
//     h2 = act2(h1 W2 + r + b2)       r [M, 128] (the upsampled projections)
//     y  = act3(h2 W3 + b3)           y [M, N3], N3 <= 32 (the class logits)
// FP16 in and out, FP32 accumulation, each intermediate rounded to FP16 where
// the separate GEMMs store it.  Unfused, h1 and h2 (16 MB each at 65536
// pixels) are written and read back and each GEMM is a launch; here a warp
// owns 16 pixel rows through all three products: the m16n8 accumulators of
// one product are, packed to FP16, the m16k16 A fragments of the next, so
// h1 and h2 never leave registers.  Blocks are persistent (one per SM, all
// weights, 54 KB, loaded once into shared memory) and prefetch the next
// 128-row tile of x and r with cp.async while computing this one.
#include <cuda_fp16.h>
#include <stdint.h>

#include "kernels.h"
#include "launch.cuh"
#include "mma.cuh"

namespace {

constexpr int ROWS = 128, NH = 128;  // rows a tile (8 warps x 16), hidden width

__device__ __forceinline__ float act_f(float v, int act) { return act == 1 ? fmaxf(v, 0.f) : v; }

__device__ __forceinline__ uint32_t pack(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *(uint32_t *)&h;
}

template <int K1>
struct ChCfg {
    static constexpr int LX = K1 + 8, LH = NH + 8, L3 = 32 + 8;
    static constexpr int W1_H = K1 * LH, W2_H = NH * LH, W3_H = NH * L3;     // [k][n] row-major, padded
    static constexpr int X_H = ROWS * LX, R_H = ROWS * LH;                   // one tile each
    static constexpr int HALVES = W1_H + W2_H + W3_H + 2 * X_H + 2 * R_H;
    static constexpr size_t SMEM = (size_t)HALVES * 2 + (size_t)(NH + NH + 32) * 4;
};

// weights to shared memory as [k][n] (transposing [n][k] storage), FP16;
// columns n >= N are zero.  Consecutive threads read consecutive elements
// of the source's rows (k for [n][k], n for [k][n]: coalesced), and each
// thread issues a batch of LOADS loads before it stores any: a load-store
// loop without that waited on one L2 round trip per element (~100 a thread
// for the decode head's 24 K weights, most of the kernel's 34 us).
__device__ void load_w(__half *dst, int ldd, const __half *w, int ldw, int wt, int K, int N, int Npad) {
    constexpr int LOADS = 8;
    const int total = K * Npad;
    for (int base = threadIdx.x; base < total; base += LOADS * blockDim.x) {
        __half v[LOADS];
        int at[LOADS];
#pragma unroll
        for (int u = 0; u < LOADS; u++) {
            const int i = base + u * blockDim.x;
            // [n][k] source: i walks k fastest; [k][n]: n fastest
            const int k = wt ? i % K : i / Npad, n = wt ? i / K : i % Npad;
            at[u] = i < total ? k * ldd + n : -1;
            v[u] = i < total && n < N ? (wt ? w[(int64_t)n * ldw + k] : w[(int64_t)k * ldw + n]) : __float2half(0.f);
        }
#pragma unroll
        for (int u = 0; u < LOADS; u++)
            if (at[u] >= 0) dst[at[u]] = v[u];
    }
}

template <int K1>
__global__ void __launch_bounds__(256, 1) k_chain3(mtk_chain c) {
    MTK_PDL_WAIT();
    using S = ChCfg<K1>;
    extern __shared__ __align__(16) unsigned char smraw[];
    __half *W1 = (__half *)smraw, *W2 = W1 + S::W1_H, *W3 = W2 + S::W2_H, *Xs = W3 + S::W3_H, *Rs = Xs + 2 * S::X_H;
    float *b1 = (float *)(smraw + (size_t)S::HALVES * 2), *b2 = b1 + NH, *b3 = b2 + NH;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const __half *X = (const __half *)c.x, *R = (const __half *)c.r;
    const int ntiles = (int)((c.m + ROWS - 1) / ROWS);

    auto prefetch = [&](int tile, int buf) {
        const int64_t r0 = (int64_t)tile * ROWS;
        __half *xs = Xs + buf * S::X_H, *rs = Rs + buf * S::R_H;
        for (int i = tid; i < ROWS * (K1 / 8); i += 256) {
            const int r = i / (K1 / 8), col = (i % (K1 / 8)) * 8;
            const bool ok = r0 + r < c.m;
            cp_async16(xs + r * S::LX + col, ok ? X + (r0 + r) * c.ldx + col : X, ok);
        }
        for (int i = tid; i < ROWS * (NH / 8); i += 256) {
            const int r = i / (NH / 8), col = (i % (NH / 8)) * 8;
            const bool ok = r0 + r < c.m;
            cp_async16(rs + r * S::LH + col, ok ? R + (r0 + r) * c.ldr + col : R, ok);
        }
        asm volatile("cp.async.commit_group;\n" ::);
    };
    int tile = blockIdx.x;
    if (tile < ntiles) prefetch(tile, 0);
    load_w(W1, S::LH, (const __half *)c.w1, c.ldw1, c.wt1, K1, NH, NH);
    load_w(W2, S::LH, (const __half *)c.w2, c.ldw2, c.wt2, NH, NH, NH);
    load_w(W3, S::L3, (const __half *)c.w3, c.ldw3, c.wt3, NH, c.n3, 32);
    for (int i = tid; i < NH; i += 256) {
        b1[i] = c.b1 ? __half2float(((const __half *)c.b1)[i]) : 0.f;
        b2[i] = c.b2 ? __half2float(((const __half *)c.b2)[i]) : 0.f;
    }
    if (tid < 32) b3[tid] = c.b3 && tid < c.n3 ? __half2float(((const __half *)c.b3)[tid]) : 0.f;

    for (int it = 0; tile < ntiles; tile += gridDim.x, it++) {
        const int buf = it & 1;
        asm volatile("cp.async.wait_group 0;\n" ::: "memory");
        __syncthreads();  // this tile landed (and, the first time, the weights); the other buffer is free
        if (tile + gridDim.x < ntiles) prefetch(tile + gridDim.x, buf ^ 1);
        const __half *xs = Xs + buf * S::X_H + warp * 16 * S::LX, *rs = Rs + buf * S::R_H + warp * 16 * S::LH;

        // h1 = act1(x W1 + b1), as A fragments of the next product
        uint32_t ha[NH / 16][4];
        {
            float acc[NH / 8][4];
#pragma unroll
            for (int j = 0; j < NH / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < K1 / 16; kk++) {
                uint32_t a[4];
                ldsm_a(a, xs + kk * 16, S::LX, lane);
#pragma unroll
                for (int j = 0; j < NH / 8; j += 2) {
                    uint32_t b[4];
                    ldsm_b2(b, W1 + kk * 16 * S::LH + j * 8, S::LH, lane);
                    mma16816(acc[j], a, b);
                    mma16816(acc[j + 1], a, b + 2);
                }
            }
#pragma unroll
            for (int j = 0; j < NH / 16; j++) {
                const int c0 = 16 * j + 2 * t, c1 = c0 + 8;
                ha[j][0] = pack(act_f(acc[2 * j][0] + b1[c0], c.act1), act_f(acc[2 * j][1] + b1[c0 + 1], c.act1));
                ha[j][1] = pack(act_f(acc[2 * j][2] + b1[c0], c.act1), act_f(acc[2 * j][3] + b1[c0 + 1], c.act1));
                ha[j][2] = pack(act_f(acc[2 * j + 1][0] + b1[c1], c.act1), act_f(acc[2 * j + 1][1] + b1[c1 + 1], c.act1));
                ha[j][3] = pack(act_f(acc[2 * j + 1][2] + b1[c1], c.act1), act_f(acc[2 * j + 1][3] + b1[c1 + 1], c.act1));
            }
        }
        // h2 = act2(h1 W2 + r + b2) (r rounded as stored), again as A fragments
        uint32_t hb[NH / 16][4];
        {
            float acc[NH / 8][4];
#pragma unroll
            for (int j = 0; j < NH / 8; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < NH / 16; kk++)
#pragma unroll
                for (int j = 0; j < NH / 8; j += 2) {
                    uint32_t b[4];
                    ldsm_b2(b, W2 + kk * 16 * S::LH + j * 8, S::LH, lane);
                    mma16816(acc[j], ha[kk], b);
                    mma16816(acc[j + 1], ha[kk], b + 2);
                }
#pragma unroll
            for (int j = 0; j < NH / 8; j++) {
                const int col = 8 * j + 2 * t;
                const float2 r0 = __half22float2(*(const __half2 *)(rs + g * S::LH + col));
                const float2 r1 = __half22float2(*(const __half2 *)(rs + (g + 8) * S::LH + col));
                acc[j][0] = act_f(acc[j][0] + r0.x + b2[col], c.act2);
                acc[j][1] = act_f(acc[j][1] + r0.y + b2[col + 1], c.act2);
                acc[j][2] = act_f(acc[j][2] + r1.x + b2[col], c.act2);
                acc[j][3] = act_f(acc[j][3] + r1.y + b2[col + 1], c.act2);
            }
#pragma unroll
            for (int j = 0; j < NH / 16; j++) {
                hb[j][0] = pack(acc[2 * j][0], acc[2 * j][1]);
                hb[j][1] = pack(acc[2 * j][2], acc[2 * j][3]);
                hb[j][2] = pack(acc[2 * j + 1][0], acc[2 * j + 1][1]);
                hb[j][3] = pack(acc[2 * j + 1][2], acc[2 * j + 1][3]);
            }
        }
        // y = act3(h2 W3 + b3): 4 n-tiles (32 columns, n3 of them kept)
        float acc3[4][4];
#pragma unroll
        for (int j = 0; j < 4; j++) acc3[j][0] = acc3[j][1] = acc3[j][2] = acc3[j][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < NH / 16; kk++)
#pragma unroll
            for (int j = 0; j < 4; j += 2) {
                uint32_t b[4];
                ldsm_b2(b, W3 + kk * 16 * S::L3 + j * 8, S::L3, lane);
                mma16816(acc3[j], hb[kk], b);
                mma16816(acc3[j + 1], hb[kk], b + 2);
            }
        __half *Y = (__half *)c.y;
        const int64_t row0 = (int64_t)tile * ROWS + warp * 16 + g;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int col = 8 * j + 2 * t;
            if (col >= c.n3) continue;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int64_t row = row0 + 8 * h;
                if (row < c.m)
                    *(__half2 *)(Y + row * c.ldy + col) =
                        __floats2half2_rn(act_f(acc3[j][2 * h] + b3[col], c.act3), act_f(acc3[j][2 * h + 1] + b3[col + 1], c.act3));
            }
        }
    }
}

template <int K1>
cudaError_t launch(cudaStream_t s, const mtk_chain *c) {
    auto kern = k_chain3<K1>;
    /* idempotent; launches happen when a plan is built and captured, not per frame */
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)ChCfg<K1>::SMEM);
    if (e != cudaSuccess) return e;
    int sms;
    mtk_sm_count(&sms);
    const int64_t ntiles = (c->m + ROWS - 1) / ROWS;
    const unsigned grid = (unsigned)(ntiles < sms ? ntiles : sms);
    return mtk_launch(kern, dim3(grid), dim3(256), ChCfg<K1>::SMEM, s, *c);
}

}  // namespace

extern "C" int mtk_chain3_supported(int k1, int n1, int n2, int n3) {
    return (k1 == 32 || k1 == 64) && n1 == NH && n2 == NH && n3 >= 2 && n3 <= 32 && n3 % 2 == 0;
}

extern "C" cudaError_t mtk_chain3(cudaStream_t s, const mtk_chain *c) {
    if (!mtk_chain3_supported(c->k1, NH, NH, c->n3) || c->ldx % 8 || c->ldr % 8 || c->ldy % 2 || c->ldy < c->n3 ||
        ((uintptr_t)c->x | (uintptr_t)c->r) % 16 || (uintptr_t)c->y % 4 || c->act1 < 0 || c->act1 > 1 || c->act2 < 0 ||
        c->act2 > 1 || c->act3 < 0 || c->act3 > 1)
        return cudaErrorInvalidValue;
    if (c->m <= 0) return cudaSuccess;
    return c->k1 == 32 ? launch<32>(s, c) : launch<64>(s, c);
}
