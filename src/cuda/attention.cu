// Flash-style attention: softmax(Q K^T * scale) V without storing the score
// matrix.  FP16: tensor cores (mma.sync m16n8k16, FP32 accumulation), 16
// query rows a warp (or a group of 2 / 4 warps splitting the keys), 64-key
// tiles in shared memory (a head's whole K and V where they fit, streamed
// otherwise), online softmax in registers.  FP32 (and head sizes other than
// 16 / 32 / 64 / 128): one thread per query row on CUDA cores.
#include <cuda_fp16.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels.h"
#include "launch.cuh"
#include "mma.cuh"

namespace {

// The FP16 tensor-core kernels.  Per 64-key tile and warp (16 query rows),
// against the instruction count of the first-generation kernel (removed
// 2026-11-25; docs/PERFORMANCE.md):
//  - the head dimension is permuted, identically for Q and K (a dot product
//    does not depend on the order of its terms), so that one 16-byte
//    shared-memory load gives a thread its K fragments of two k-steps
//    (8 loads a tile instead of 32);
//  - V fragments of two n-tiles per ldmatrix.x4.trans;
//  - the softmax denominator comes out of the P V product (a fifth n-tile
//    whose B operand is all ones): no additions per exponent, and it is the
//    sum of exactly the FP16 probabilities the numerator used;
//  - the running maximum is raised (and O rescaled) only when a tile's
//    maximum exceeds it by more than ATTN_RESCALE_LOG2 (log2 units; a
//    warp-uniform test): probabilities up to 2^8 are exact enough in FP16
//    and FP32 accumulation, and after the first tiles almost no tile
//    rescales.
// Two kernels share that tile step: k_attn_resident keeps a head's whole K
// and V in shared memory (D = 32, up to 1280 keys: the encoder's shapes)
// and k_attn_stream streams 64-key tiles through a double buffer.
constexpr float ATTN_RESCALE_LOG2 = 8.f;
constexpr int ATTN_KT = 64;  // keys a tile

// Offset of thread t's Q / K elements of k-step kk in a row (see above):
// k-slots 2t, 2t+1 hold elements base, base+1 and k-slots 2t+8, 2t+9 hold
// base+2, base+3; for D >= 32 a thread's four k-step pairs are 8
// contiguous elements.
template <int D>
__device__ __forceinline__ int qk_base(int kk, int t) {
    return D == 16 ? 4 * t : 32 * (kk >> 1) + 8 * t + 4 * (kk & 1);
}

// Shared-memory row strides (halves).  K: a quarter-warp's 16-byte loads
// (rows g, g+1) hit 8 distinct bank quads when a row is 64 bytes mod 128
// (D = 32: unpadded); D = 16 reads 8-byte pieces of 32-byte rows, also
// conflict-free.  V: ldmatrix.trans over 8 rows, conflict-free with 16
// bytes of padding.
template <int D>
struct AttnRows {
    static constexpr int K = D <= 32 ? D : D + 32;
    static constexpr int V = D + 8;
};

// One warp's 16 query rows: Q fragments, running maxima (log2 units), the
// unnormalized output and the denominator (l[0]: row g, l[2]: row g + 8;
// every column of the ones-product is the row sum).
template <int D>
struct AttnAcc {
    uint32_t qf[D / 16][4];
    float o[D / 8][4], l[4], m[2];

    __device__ __forceinline__ void start(const __half *Q, int64_t ld, int q0, int N, int g, int t) {
        const int r0 = q0 + g, r1 = r0 + 8;
        const __half *p0 = Q + (int64_t)r0 * ld, *p1 = Q + (int64_t)r1 * ld;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const int c = qk_base<D>(kk, t);
            qf[kk][0] = r0 < N ? *(const uint32_t *)(p0 + c) : 0u;
            qf[kk][1] = r1 < N ? *(const uint32_t *)(p1 + c) : 0u;
            qf[kk][2] = r0 < N ? *(const uint32_t *)(p0 + c + 2) : 0u;
            qf[kk][3] = r1 < N ? *(const uint32_t *)(p1 + c + 2) : 0u;
        }
#pragma unroll
        for (int j = 0; j < D / 8; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.f;
        l[0] = l[1] = l[2] = l[3] = 0.f;
        m[0] = m[1] = -INFINITY;
    }

    // Keys k0 .. k0+63 (k0 < M; those >= M masked) from row-major K / V
    // tiles kt, vt in shared memory; sl2 = scale * log2(e).
    __device__ __forceinline__ void tile(const __half *kt, const __half *vt, int k0, int M, float sl2, int lane) {
        constexpr int KT = ATTN_KT, KRS = AttnRows<D>::K, VRS = AttnRows<D>::V;
        const int g = lane >> 2, t = lane & 3;
        float s[KT / 8][4];
#pragma unroll
        for (int n = 0; n < KT / 8; n++) {
            uint32_t kb[D / 16][2];
            const __half *row = kt + (n * 8 + g) * KRS;
            if constexpr (D == 16) {
                const uint2 v = *(const uint2 *)(row + 4 * t);
                kb[0][0] = v.x, kb[0][1] = v.y;
            } else {
#pragma unroll
                for (int c = 0; c < D / 32; c++) {
                    const uint4 v = *(const uint4 *)(row + 32 * c + 8 * t);
                    kb[2 * c][0] = v.x, kb[2 * c][1] = v.y;
                    kb[2 * c + 1][0] = v.z, kb[2 * c + 1][1] = v.w;
                }
            }
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) mma16816(s[n], qf[kk], kb[kk]);
        }
        if (k0 + KT > M) {  // keys past M: only in the last tile (warp-uniform)
#pragma unroll
            for (int n = 0; n < KT / 8; n++) {
                const int key = k0 + n * 8 + 2 * t;
#pragma unroll
                for (int e = 0; e < 4; e++)
                    if (key + (e & 1) >= M) s[n][e] = -INFINITY;
            }
        }
        uint32_t ph[KT / 8][2];
        auto probabilities = [&]() {
#pragma unroll
            for (int n = 0; n < KT / 8; n++) {
                const float e00 = exp2f(fmaf(s[n][0], sl2, -m[0])), e01 = exp2f(fmaf(s[n][1], sl2, -m[0]));
                const float e10 = exp2f(fmaf(s[n][2], sl2, -m[1])), e11 = exp2f(fmaf(s[n][3], sl2, -m[1]));
                __half2 h0 = __floats2half2_rn(e00, e01), h1 = __floats2half2_rn(e10, e11);
                ph[n][0] = *(uint32_t *)&h0;
                ph[n][1] = *(uint32_t *)&h1;
            }
        };
        // Row maxima of the tile (a tree, not a chain), in log2 units.
        float r[KT / 8][2];
#pragma unroll
        for (int n = 0; n < KT / 8; n++) {
            r[n][0] = fmaxf(s[n][0], s[n][1]);
            r[n][1] = fmaxf(s[n][2], s[n][3]);
        }
#pragma unroll
        for (int w = KT / 16; w >= 1; w >>= 1)
#pragma unroll
            for (int n = 0; n < w; n++) {
                r[n][0] = fmaxf(r[n][0], r[n + w][0]);
                r[n][1] = fmaxf(r[n][1], r[n + w][1]);
            }
        bool raise = false;
        float mx[2];
#pragma unroll
        for (int e = 0; e < 2; e++) {
            r[0][e] = fmaxf(r[0][e], __shfl_xor_sync(0xffffffffu, r[0][e], 1));
            r[0][e] = fmaxf(r[0][e], __shfl_xor_sync(0xffffffffu, r[0][e], 2));
            mx[e] = r[0][e] * sl2;  // sl2 > 0: the maximum scales
            raise |= mx[e] > m[e] + ATTN_RESCALE_LOG2;
        }
        if (__any_sync(0xffffffffu, raise)) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                // k0 < M: every row saw a key, so mn is finite (al = 0 at the start)
                const float mn = fmaxf(m[e], mx[e]), al = exp2f(m[e] - mn);
                m[e] = mn;
#pragma unroll
                for (int j = 0; j < D / 8; j++) o[j][2 * e] *= al, o[j][2 * e + 1] *= al;
                l[2 * e] *= al, l[2 * e + 1] *= al;
            }
        }
        probabilities();
        const uint32_t ones[2] = {0x3C003C00u, 0x3C003C00u};  // FP16 1.0 pairs
#pragma unroll
        for (int kk = 0; kk < KT / 16; kk++) {
            const uint32_t pa[4] = {ph[2 * kk][0], ph[2 * kk][1], ph[2 * kk + 1][0], ph[2 * kk + 1][1]};
#pragma unroll
            for (int jp = 0; jp < D / 16; jp++) {
                uint32_t vb[4];
                ldsm_b2(vb, vt + kk * 16 * VRS + jp * 16, VRS, lane);
                mma16816(o[2 * jp], pa, vb);
                mma16816(o[2 * jp + 1], pa, vb + 2);
            }
            mma16816(l, pa, ones);
        }
    }

    // Partial results of KSPLIT warps over disjoint keys: each stores its
    // own to red (floats a lane: D/2 + 4, lane-interleaved), then warp
    // part 0 of the group combines them (rescaled to the common maximum;
    // a warp that saw no key has m = -inf, l = 0, o = 0 and weight 0).
    static constexpr int PER = D / 2 + 4;
    __device__ __forceinline__ void put(float *red, int lane) const {
#pragma unroll
        for (int j = 0; j < D / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) red[(j * 4 + e) * 32 + lane] = o[j][e];
        red[(D / 2 + 0) * 32 + lane] = m[0];
        red[(D / 2 + 1) * 32 + lane] = m[1];
        red[(D / 2 + 2) * 32 + lane] = l[0];
        red[(D / 2 + 3) * 32 + lane] = l[2];
    }
    __device__ __forceinline__ void merge(const float *red, int parts, int lane) {
        float M0 = m[0], M1 = m[1];
        for (int w = 1; w < parts; w++) {
            M0 = fmaxf(M0, red[(w * PER + D / 2 + 0) * 32 + lane]);
            M1 = fmaxf(M1, red[(w * PER + D / 2 + 1) * 32 + lane]);
        }
        const float f0 = exp2f(m[0] - M0), f1 = exp2f(m[1] - M1);
        l[0] *= f0, l[2] *= f1;
#pragma unroll
        for (int j = 0; j < D / 8; j++) o[j][0] *= f0, o[j][1] *= f0, o[j][2] *= f1, o[j][3] *= f1;
        for (int w = 1; w < parts; w++) {
            const float *ow = red + w * PER * 32;
            const float w0 = exp2f(ow[(D / 2 + 0) * 32 + lane] - M0), w1 = exp2f(ow[(D / 2 + 1) * 32 + lane] - M1);
            l[0] += ow[(D / 2 + 2) * 32 + lane] * w0;
            l[2] += ow[(D / 2 + 3) * 32 + lane] * w1;
#pragma unroll
            for (int j = 0; j < D / 8; j++) {
                o[j][0] += ow[(j * 4 + 0) * 32 + lane] * w0;
                o[j][1] += ow[(j * 4 + 1) * 32 + lane] * w0;
                o[j][2] += ow[(j * 4 + 2) * 32 + lane] * w1;
                o[j][3] += ow[(j * 4 + 3) * 32 + lane] * w1;
            }
        }
    }

    __device__ __forceinline__ void store(__half *O, int64_t ld, int q0, int N, int g, int t) const {
        const int r0 = q0 + g, r1 = r0 + 8;
        const float i0 = 1.f / l[0], i1 = 1.f / l[2];
#pragma unroll
        for (int j = 0; j < D / 8; j++) {
            const int c = j * 8 + 2 * t;
            if (r0 < N) *(__half2 *)(O + (int64_t)r0 * ld + c) = __floats2half2_rn(o[j][0] * i0, o[j][1] * i0);
            if (r1 < N) *(__half2 *)(O + (int64_t)r1 * ld + c) = __floats2half2_rn(o[j][2] * i1, o[j][3] * i1);
        }
    }
};

// Streaming kernel: 8 warps, KSPLIT warps share 16 query rows and take
// interleaved 64-key sub-tiles (so that short query sequences still fill
// the GPU); K / V tiles double-buffered with cp.async, one barrier a tile.
template <int D, int KSPLIT>
struct StreamShape {
    static constexpr int WARPS = 8, TILE = KSPLIT * ATTN_KT, ROWS = WARPS / KSPLIT * 16;
    static constexpr size_t KV_BYTES = (size_t)2 * TILE * (AttnRows<D>::K + AttnRows<D>::V) * sizeof(__half);
    static constexpr size_t RED_BYTES = KSPLIT > 1 ? (size_t)WARPS * AttnAcc<D>::PER * 32 * sizeof(float) : 0;
    static constexpr size_t SMEM = KV_BYTES > RED_BYTES ? KV_BYTES : RED_BYTES;
};

// Two blocks an SM (128 registers) up to D = 64: one block of 8 warps
// leaves the SM half idle at the tile barriers (D = 64 at 134 registers:
// 1.28x slower, H100 2026-11-25).
template <int D, int KSPLIT>
__global__ void __launch_bounds__(256, D <= 64 ? 2 : 1) k_attn_stream(mtk_attn a) {
    MTK_PDL_WAIT();
    using S = StreamShape<D, KSPLIT>;
    constexpr int TILE = S::TILE, KRS = AttnRows<D>::K, VRS = AttnRows<D>::V;
    extern __shared__ __align__(16) unsigned char smraw[];
    __half *Ks = (__half *)smraw;      // [2][TILE][KRS]
    __half *Vs = Ks + 2 * TILE * KRS;  // [2][TILE][VRS]
    const int b = blockIdx.y / a.H, h = blockIdx.y % a.H;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int qg = warp / KSPLIT, ks = warp % KSPLIT;
    const int q0 = blockIdx.x * S::ROWS + qg * 16;
    const __half *K = (const __half *)a.k + b * a.ks[0] + h * a.ks[1];
    const __half *V = (const __half *)a.v + b * a.vs[0] + h * a.vs[1];
    AttnAcc<D> acc;
    acc.start((const __half *)a.q + b * a.qs[0] + h * a.qs[1], a.qs[2], q0, a.N, lane >> 2, lane & 3);
    const float sl2 = a.scale * 1.4426950408889634f;
    const int ntiles = (a.M + TILE - 1) / TILE;
    auto load = [&](int tile, int buf) {
        const int kb = tile * TILE;
        __half *kd = Ks + buf * TILE * KRS, *vd = Vs + buf * TILE * VRS;
        for (int idx = threadIdx.x; idx < TILE * (D / 8); idx += S::WARPS * 32) {
            const int kr = idx / (D / 8), c = (idx % (D / 8)) * 8;
            const bool ok = kb + kr < a.M;
            const int64_t row = ok ? kb + kr : 0;
            cp_async16(kd + kr * KRS + c, K + row * a.ks[2] + c, ok);
            cp_async16(vd + kr * VRS + c, V + row * a.vs[2] + c, ok);
        }
        cp_async_commit();
    };
    load(0, 0);
    for (int tile = 0; tile < ntiles; tile++) {
        cp_async_wait_all();
        __syncthreads();  // tile landed for everyone; everyone is done with the other buffer
        if (tile + 1 < ntiles) load(tile + 1, (tile + 1) & 1);
        const int k0 = tile * TILE + ks * ATTN_KT;
        if (k0 >= a.M) continue;  // warp-uniform: this warp's sub-tile is past the keys
        const int off = (tile & 1) * TILE + ks * ATTN_KT;
        acc.tile(Ks + off * KRS, Vs + off * VRS, k0, a.M, sl2, lane);
    }
    if (KSPLIT > 1) {
        cp_async_wait_all();
        __syncthreads();  // K/V buffers are free: reuse them
        float *red = (float *)smraw + qg * KSPLIT * AttnAcc<D>::PER * 32;
        acc.put(red + ks * AttnAcc<D>::PER * 32, lane);
        __syncthreads();
        if (ks != 0) return;
        acc.merge(red, KSPLIT, lane);
    }
    acc.store((__half *)a.o + b * a.os[0] + h * a.os[1], a.os[2], q0, a.N, lane >> 2, lane & 3);
}

// Resident kernel: one block an SM keeps one head's whole K and V in shared
// memory (loaded once, 64-key tiles, each with an mbarrier that the copies
// arrive on) and its 16 warps work through a range of 16-row query groups
// each.  No block-wide barrier after the start: warps drift apart, so that
// one warp's exponentials (MUFU) overlap another's products (tensor cores),
// which the lock-step tile barrier of the streaming kernel prevents; and K
// and V cross L2 once per SM instead of once per 128 query rows.  KSPLIT
// warps share a query group (interleaved tiles, merged through shared
// memory behind a named barrier) when there are fewer groups than warps.
constexpr int ATTN_RES_WARPS = 16;
constexpr int ATTN_RES_MAX_TILES = 20;  // 1280 keys: 184 KB with the merge area

template <int D>
struct ResShape {
    static constexpr size_t kv_bytes(int M) {
        return (size_t)((M + ATTN_KT - 1) / ATTN_KT) * ATTN_KT * (AttnRows<D>::K + AttnRows<D>::V) * sizeof(__half);
    }
    static constexpr size_t RED_BYTES = (size_t)ATTN_RES_WARPS * AttnAcc<D>::PER * 32 * sizeof(float);
    static constexpr size_t BAR_BYTES = ATTN_RES_MAX_TILES * 8;
    static size_t smem(int M) { return BAR_BYTES + RED_BYTES + kv_bytes(M); }
};

static __device__ __forceinline__ void mbar_init(uint64_t *bar, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(bar)), "r"(count) : "memory");
}
// arrives on bar once this thread's earlier cp.async copies have landed
static __device__ __forceinline__ void mbar_arrive_cp_async(uint64_t *bar) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_u32(bar)) : "memory");
}
static __device__ __forceinline__ void mbar_wait(uint64_t *bar, unsigned parity) {
    uint32_t done = 0;
    while (!done)
        asm volatile(
            "{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
            : "=r"(done)
            : "r"(smem_u32(bar)), "r"(parity)
            : "memory");
}

template <int D, int KSPLIT>
__global__ void __launch_bounds__(ATTN_RES_WARPS * 32, 1) k_attn_resident(mtk_attn a, int groups_per_block) {
    MTK_PDL_WAIT();
    constexpr int KRS = AttnRows<D>::K, VRS = AttnRows<D>::V, NT = ATTN_RES_WARPS * 32;
    constexpr int SLOTS = ATTN_RES_WARPS / KSPLIT;  // query groups in flight in the block
    extern __shared__ __align__(16) unsigned char smraw[];
    uint64_t *bars = (uint64_t *)smraw;
    float *red = (float *)(smraw + ResShape<D>::BAR_BYTES);
    const int ntiles = (a.M + ATTN_KT - 1) / ATTN_KT;
    __half *Ks = (__half *)(smraw + ResShape<D>::BAR_BYTES + ResShape<D>::RED_BYTES);  // [ntiles*64][KRS]
    __half *Vs = Ks + ntiles * ATTN_KT * KRS;                                            // [ntiles*64][VRS]
    const int b = blockIdx.y / a.H, h = blockIdx.y % a.H;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const __half *K = (const __half *)a.k + b * a.ks[0] + h * a.ks[1];
    const __half *V = (const __half *)a.v + b * a.vs[0] + h * a.vs[1];
    if (threadIdx.x == 0)
        for (int i = 0; i < ntiles; i++) mbar_init(&bars[i], NT);
    __syncthreads();
    for (int tile = 0; tile < ntiles; tile++) {
        for (int idx = threadIdx.x; idx < ATTN_KT * (D / 8); idx += NT) {
            const int kr = tile * ATTN_KT + idx / (D / 8), c = (idx % (D / 8)) * 8;
            const bool ok = kr < a.M;
            const int64_t row = ok ? kr : 0;
            cp_async16(Ks + kr * KRS + c, K + row * a.ks[2] + c, ok);
            cp_async16(Vs + kr * VRS + c, V + row * a.vs[2] + c, ok);
        }
        mbar_arrive_cp_async(&bars[tile]);
    }
    const int slot = warp / KSPLIT, part = warp % KSPLIT;
    const int g0 = blockIdx.x * groups_per_block;
    const int g1 = min(g0 + groups_per_block, (a.N + 15) / 16);
    const __half *Q = (const __half *)a.q + b * a.qs[0] + h * a.qs[1];
    __half *O = (__half *)a.o + b * a.os[0] + h * a.os[1];
    const float sl2 = a.scale * 1.4426950408889634f;
    int ready = 0;  // tiles below this one are known to have landed
    for (int grp = g0 + slot; grp < g1; grp += SLOTS) {
        AttnAcc<D> acc;
        acc.start(Q, a.qs[2], grp * 16, a.N, lane >> 2, lane & 3);
        for (int tile = part; tile < ntiles; tile += KSPLIT) {
            if (tile >= ready) {
                // an mbarrier completes when every thread's copies up to its tile have landed
                mbar_wait(&bars[tile], 0);
                ready = tile + 1;
            }
            acc.tile(Ks + tile * ATTN_KT * KRS, Vs + tile * ATTN_KT * VRS, tile * ATTN_KT, a.M, sl2, lane);
        }
        if (KSPLIT > 1) {
            float *r = red + slot * KSPLIT * AttnAcc<D>::PER * 32;
            acc.put(r + part * AttnAcc<D>::PER * 32, lane);
            // named barrier 1 + slot: the KSPLIT warps of this slot only
            asm volatile("bar.sync %0, %1;" ::"r"(1 + slot), "r"(KSPLIT * 32) : "memory");
            if (part == 0) {
                acc.merge(r, KSPLIT, lane);
                acc.store(O, a.os[2], grp * 16, a.N, lane >> 2, lane & 3);
            }
            asm volatile("bar.sync %0, %1;" ::"r"(1 + slot), "r"(KSPLIT * 32) : "memory");  // slots free again
        } else
            acc.store(O, a.os[2], grp * 16, a.N, lane >> 2, lane & 3);
    }
    cp_async_wait_all();  // a warp with no query group must not exit with copies in flight
}

template <int D, int KSPLIT>
cudaError_t launch_stream(cudaStream_t s, const mtk_attn *a) {
    using S = StreamShape<D, KSPLIT>;
    if (S::SMEM > 48 * 1024) {
        cudaError_t e = cudaFuncSetAttribute(k_attn_stream<D, KSPLIT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)S::SMEM);
        if (e != cudaSuccess) return e;
    }
    dim3 grid((a->N + S::ROWS - 1) / S::ROWS, a->B * a->H);
    mtk_launch(k_attn_stream<D, KSPLIT>, grid, 256, S::SMEM, s, *a);
    return cudaGetLastError();
}

template <int D, int KSPLIT>
cudaError_t launch_resident(cudaStream_t s, const mtk_attn *a, int blocks_per_head) {
    const size_t smem = ResShape<D>::smem(a->M);
    cudaError_t e = cudaFuncSetAttribute(k_attn_resident<D, KSPLIT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e != cudaSuccess) return e;
    const int groups = (a->N + 15) / 16;
    if (blocks_per_head > groups) blocks_per_head = groups;
    const int gpb = (groups + blocks_per_head - 1) / blocks_per_head;
    dim3 grid((groups + gpb - 1) / gpb, a->B * a->H);
    mtk_launch(k_attn_resident<D, KSPLIT>, grid, ATTN_RES_WARPS * 32, smem, s, *a, gpb);
    return cudaGetLastError();
}

// Whether the resident kernel takes a: D = 32 and one head's K and V (plus
// the merge area) within the SM's shared memory.
bool resident_fits(const mtk_attn *a) {
    if (a->D != 32 || a->M > ATTN_RES_MAX_TILES * ATTN_KT) return false;
    int dev = 0, optin = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    return ResShape<32>::smem(a->M) <= (size_t)optin;
}

template <int D>
cudaError_t attn_stream(cudaStream_t s, const mtk_attn *a, int ksplit) {
    if (ksplit == 1) return launch_stream<D, 1>(s, a);
    if (ksplit == 2) return launch_stream<D, 2>(s, a);
    if constexpr (D < 128) {  // 4 x 128-key double buffers would need 300 KB
        if (ksplit == 4) return launch_stream<D, 4>(s, a);
    }
    return cudaErrorInvalidValue;
}

// Blocks of the resident kernel a head: one wave (one block an SM) over all
// heads and batch items.
int resident_blocks_per_head(const mtk_attn *a) {
    int sms;
    mtk_sm_count(&sms);
    const long long bh = (long long)a->B * a->H, per = sms / bh;
    return per < 1 ? 1 : (int)per;
}

// The kernel (MTK_ATTN_STREAM / MTK_ATTN_RESIDENT) and its key split for a.  Resident
// where it fits, with the split that minimizes the tiles its busiest warp
// computes; streaming otherwise, with the fewest splits whose grid still
// covers the GPU one and a half times (H100 sweep, 2026-11-25:
// tests/cuda/bench_attention.c).  a->force_kernel (tuning.attn_cfg,
// MTMI_ATTN_CFG="kernel,ksplit") overrides.
void attn_choice(const mtk_attn *a, int *kernel, int *ksplit) {
    if (a->force) {
        *kernel = a->force_kernel;
        *ksplit = a->force_ksplit;
        return;
    }
    if (resident_fits(a)) {
        const int bph = resident_blocks_per_head(a), groups = (a->N + 15) / 16;
        const int gpb = (groups + bph - 1) / bph, ntiles = (a->M + ATTN_KT - 1) / ATTN_KT;
        long best = -1;
        for (int k = 1; k <= 4; k *= 2) {
            const int slots = ATTN_RES_WARPS / k;
            const long cost = (long)((gpb + slots - 1) / slots) * ((ntiles + k - 1) / k);
            if (best < 0 || cost < best) best = cost, *ksplit = k;
        }
        *kernel = MTK_ATTN_RESIDENT;
        return;
    }
    int sms;
    mtk_sm_count(&sms);
    const long long bhs = (long long)a->B * a->H, want = 3LL * sms / 2;
    *kernel = MTK_ATTN_STREAM;
    for (int k = 1; k <= 4; k *= 2) {
        *ksplit = k;
        if ((a->N + 128 / k - 1) / (128 / k) * bhs >= want || (k == 2 && a->D >= 128)) return;
    }
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
        q[d] = (r < a.N && d < D) ? (float)Q[(int64_t)r * a.qs[2] + d] : 0.f;
        o[d] = 0.f;
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

extern "C" cudaError_t mtk_attention_config(cudaStream_t s, const mtk_attn *a, int kernel, int ksplit) {
    if (kernel == MTK_ATTN_RESIDENT) {
        if (!resident_fits(a)) return cudaErrorInvalidValue;
        const int bph = resident_blocks_per_head(a);
        if (ksplit == 1) return launch_resident<32, 1>(s, a, bph);
        if (ksplit == 2) return launch_resident<32, 2>(s, a, bph);
        if (ksplit == 4) return launch_resident<32, 4>(s, a, bph);
        return cudaErrorInvalidValue;
    }
    if (kernel != MTK_ATTN_STREAM) return cudaErrorInvalidValue;
    switch (a->D) {
    case 16: return attn_stream<16>(s, a, ksplit);
    case 32: return attn_stream<32>(s, a, ksplit);
    case 64: return attn_stream<64>(s, a, ksplit);
    case 128: return attn_stream<128>(s, a, ksplit);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t mtk_attention(cudaStream_t s, const mtk_attn *a, int f16) {
    if (a->N == 0 || a->B * a->H == 0) return cudaSuccess;
    if (!f16) return attn_simple<float>(s, a);
    /* Q / O in 32-bit pairs, K / V rows by 16-byte cp.async */
    const bool aligned = ((uintptr_t)a->q % 4 == 0) && ((uintptr_t)a->o % 4 == 0) && a->qs[2] % 2 == 0 && a->os[2] % 2 == 0 &&
                         a->qs[0] % 2 == 0 && a->qs[1] % 2 == 0 && a->os[0] % 2 == 0 && a->os[1] % 2 == 0;
    const bool vec = ((uintptr_t)a->k % 16 == 0) && ((uintptr_t)a->v % 16 == 0) && a->ks[2] % 8 == 0 && a->vs[2] % 8 == 0 &&
                     a->ks[0] % 8 == 0 && a->ks[1] % 8 == 0 && a->vs[0] % 8 == 0 && a->vs[1] % 8 == 0;
    if (a->M > 0 && aligned && vec) {
        int kernel = 0, ksplit = 0;
        attn_choice(a, &kernel, &ksplit);
        const cudaError_t e = mtk_attention_config(s, a, kernel, ksplit);
        if (e != cudaErrorInvalidValue) return e;
    }
    /* other head sizes, or K / V rows not 16-byte aligned */
    return attn_simple<__half>(s, a);
}
