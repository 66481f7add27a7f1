/* FP16 3x3 convolutions (stride 1, padding 1) on Hopper's wgmma with the
 * weights resident in shared memory: wgconv.cuh's main loop with
 * wgmma.m64nNk16.f32.f16.f16 and an epilogue of bias, ReLU and FP16 stores
 * (kernels.h, mtk_hconv3x3).  What it is for: the depth head's 3x3 convs
 * run through cuDNN at ~210-270 TFLOP/s on an H100 (docs/PERFORMANCE.md,
 * the polyphase measurements), a quarter of FP16's dense rate, and they
 * are the largest part of the whole network's time after the encoder.
 * Opt-in (pass "wgconv", fuse_wgconv.c) until measured. */
#include <cuda_fp16.h>
#include <stdint.h>

#include "kernels.h"
#include "launch.cuh"
#include "wgconv.cuh"
#include "wgmma.cuh"

/* (id, BN output channels a block, MT 8x8 tiles stacked in y, NWG
 * warpgroups, S halo stages).  FP16 weights take twice INT8's bytes, so
 * the depth head's layers fit with 64 channels a block only at K <= ~1400
 * bytes (fuse.0), 32 up to ~2900 (fuse.1, fuse.3), 16 beyond (fuse.2: 832
 * bytes a tap and pixel, 120 KB at BN 16).  Shared-memory reads bound the
 * narrow ones: an m64nNk16 reads 2 KB of A and 32 N bytes of B, 128 bytes a
 * clock, against N / 2 clocks of MMAs, so n64 is balanced, n32 takes 1.5x
 * its MMA time and n16 2.5x. */
#define H_CFGS(X)       \
    X(1, 64, 1, 3, 4)   \
    X(2, 32, 2, 3, 3)   \
    X(3, 16, 2, 3, 3)
#define H_NCFG 3

/* One launch's part of K: bytes [koff, koff + kb) of each pixel and tap,
 * and what its epilogue does (H_ONE: the whole K, bias, activation and the
 * FP16 output; H_FIRST / H_MID: its sums to / added into the FP32 scratch;
 * H_LAST: its sums plus the scratch's, then as H_ONE). */
enum { H_ONE = 0, H_FIRST = 1, H_MID = 2, H_LAST = 3 };
struct h_part {
    int64_t koff;
    int kb, mode;
};

template <int BN, int MT, int NWG, int S>
__global__ void __launch_bounds__(WR<BN, MT, NWG, S>::NT, 1) k_hconv_wr(mtk_hconv h, h_part pt) {
#if MT_WGMMA
    MTK_PDL_WAIT();
    extern __shared__ __align__(128) unsigned char h_sm[];
    const wr_geom gm = {(const unsigned char *)h.x, h.xs0 * 2, h.xpix * 2, (const unsigned char *)h.w, (int64_t)18 * h.C,
                        (int64_t)2 * h.C, h.CO, h.N, h.H, h.W, pt.koff, pt.kb};
    const int lane = threadIdx.x & 31, warp = (threadIdx.x & 127) >> 5;
    const int g = lane >> 2, t = lane & 3, n0 = blockIdx.y * BN;
    const int mode = pt.mode;
    /* this thread's columns n0 + 8j + 2t (+ 1) and their biases */
    float bias[BN / 8][2];
#pragma unroll
    for (int j = 0; j < BN / 8; j++)
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int col = n0 + 8 * j + 2 * t + i;
            bias[j][i] = !h.bias || col >= h.CO ? 0.0f
                         : h.bias_f16            ? __half2float(((const __half *)h.bias)[col])
                                                 : ((const float *)h.bias)[col];
        }
    __half *const y = (__half *)h.y;
    float *const part = h.scratch;
    /* warp w's rows of tile block mt: image rows oy0 + 8 mt + 2w (hr 0)
     * and the next (hr 1), column ox0 + g (wgconv.cuh) */
    auto epi = [&](float(&acc)[MT][BN / 2], int n, int oy0, int ox0) {
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const int oy = oy0 + mt * 8 + 2 * warp + hr, ox = ox0 + g;
                const int64_t pix = ((int64_t)n * h.H + oy) * h.W + ox;
                __half *const yp = y + n * h.ys0 + ((int64_t)oy * h.W + ox) * h.ldy;
                float *const pp = part + pix * h.CO;
#pragma unroll
                for (int j = 0; j < BN / 8; j++) {
                    const int col = n0 + 8 * j + 2 * t;
                    if (col >= h.CO) continue;
                    const bool two = col + 1 < h.CO;
                    float v0 = acc[mt][4 * j + 2 * hr], v1 = acc[mt][4 * j + 2 * hr + 1];
                    if (mode == H_FIRST || mode == H_MID) {
                        if (mode == H_MID) v0 += pp[col], v1 += two ? pp[col + 1] : 0.0f;
                        pp[col] = v0;
                        if (two) pp[col + 1] = v1;
                        continue;
                    }
                    if (mode == H_LAST) v0 += pp[col], v1 += two ? pp[col + 1] : 0.0f;
                    v0 += bias[j][0], v1 += bias[j][1];
                    if (h.act == 1) v0 = fmaxf(v0, 0.0f), v1 = fmaxf(v1, 0.0f);
                    if (two)
                        *(__half2 *)(yp + col) = __floats2half2_rn(v0, v1);
                    else
                        yp[col] = __float2half_rn(v0);
                }
            }
    };
    wr_conv<BN, MT, NWG, S, wg_f16<BN>, float>(gm, h_sm, epi);
#else
    __trap(); /* never launched: mtk_hconv_parts is 0 without sm_90a */
#endif
}

/* the shapes every configuration needs, without shared memory */
static bool h_shape_ok(const mtk_hconv *h, int ty) {
    return MTMI_CUDA_WGMMA && h->N > 0 && h->C >= 16 && h->C % 16 == 0 && h->CO > 0 && h->H > 0 && h->W > 0 &&
           h->H % ty == 0 && h->W % 8 == 0 && (h->act == 0 || h->act == 1) && h->xpix >= h->C && h->xpix % 8 == 0 &&
           h->xs0 % 8 == 0 && h->ldy >= h->CO && h->ldy % 2 == 0 && h->ys0 % 2 == 0 &&
           (int64_t)h->N * h->H * h->W < ((int64_t)1 << 31) && (int64_t)h->CO * 18 * h->C < ((int64_t)1 << 31);
}

#define H_MAX_PARTS 4
/* 32-byte chunks of K (16 channels) a part, with K in `parts` parts */
static int h_part_chunks(const mtk_hconv *h, int parts) { return (h->C / 16 + parts - 1) / parts; }

/* the fewest parts of K (1..H_MAX_PARTS) whose weights fit in shared
 * memory with configuration <BN, MT, NWG, S>; 0: none.  The count
 * returned is the one its part size gives (ceil(nc / cpp)), so that with
 * h_part_chunks of it no part is empty. */
template <int BN, int MT, int NWG, int S> static int h_parts(const mtk_hconv *h) {
    if (!h_shape_ok(h, 8 * MT)) return 0;
    const int nc = h->C / 16;
    for (int parts = 1; parts <= H_MAX_PARTS && parts <= nc; parts++) {
        const int cpp = h_part_chunks(h, parts);
        if (wr_smem<BN, MT, NWG, S>(32 * (int64_t)cpp) <= WR_SMEM_MAX) return (nc + cpp - 1) / cpp;
    }
    return 0;
}

template <int BN, int MT, int NWG, int S> static cudaError_t h_launch(cudaStream_t st, const mtk_hconv *h, int parts) {
    typedef WR<BN, MT, NWG, S> T;
    auto kern = k_hconv_wr<BN, MT, NWG, S>;
    static unsigned long long done; /* this kernel's devices: opted in to the most, once */
    cudaError_t e = mtk_smem_optin(kern, WR_SMEM_MAX, &done);
    if (e != cudaSuccess) return e;
    const int64_t ntiles = (int64_t)h->N * (h->H / T::TY) * (h->W / T::TX);
    const dim3 grid = wr_grid(ntiles, (h->CO + BN - 1) / BN, NWG);
    const int nc = h->C / 16, cpp = h_part_chunks(h, parts);
    for (int p = 0; p < parts; p++) {
        const int c0 = p * cpp, c1 = c0 + cpp < nc ? c0 + cpp : nc;
        if (c1 <= c0) return cudaErrorInvalidValue; /* no empty part (h_parts) */
        const h_part pt = {(int64_t)32 * c0, 32 * (c1 - c0),
                           parts == 1 ? H_ONE : p == 0 ? H_FIRST : p == parts - 1 ? H_LAST : H_MID};
        mtk_launch(kern, grid, T::NT, (size_t)wr_smem<BN, MT, NWG, S>(pt.kb), st, *h, pt);
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
    }
    return cudaSuccess;
}

extern "C" int mtk_hconv_built(void) { return MTMI_CUDA_WGMMA; }
extern "C" int mtk_hconv_ncfg(void) { return H_NCFG; }

extern "C" const char *mtk_hconv_cfg_name(int cfg) {
    switch (cfg) {
#define X(id, BN, MT, NWG, S) \
    case id: return "wgmma resident 3x3 FP16 (" #MT "x8x8 pixels x " #BN ", " #NWG " warpgroups, s" #S ")";
        H_CFGS(X)
#undef X
    default: return "auto";
    }
}

extern "C" int mtk_hconv_parts(const mtk_hconv *h, int cfg) {
    switch (cfg) {
#define X(id, BN, MT, NWG, S) \
    case id: return h_parts<BN, MT, NWG, S>(h);
        H_CFGS(X)
#undef X
    default: return 0;
    }
}

/* By the shared-memory bound (H_CFGS): n64 where the channels come in 64s
 * and its weights fit whole, then n32 whole, then n32 with K in parts (the
 * partial sums' round trips, ~4 bytes an output a part, cost less than
 * n16's 2.5x), then n16 whole, n64 for any CO (one tile row: H a multiple
 * of 8 only), and n16 in parts. */
extern "C" int mtk_hconv_pick(const mtk_hconv *h) {
    if (h->CO % 64 == 0 && mtk_hconv_parts(h, 1) == 1) return 1;
    if (mtk_hconv_parts(h, 2) == 1) return 2;
    if (mtk_hconv_parts(h, 2) > 1) return 2;
    if (mtk_hconv_parts(h, 3) == 1) return 3;
    if (mtk_hconv_parts(h, 1) == 1) return 1;
    if (mtk_hconv_parts(h, 3) > 1) return 3;
    return mtk_hconv_parts(h, 1) > 1 ? 1 : 0;
}

extern "C" cudaError_t mtk_hconv3x3(cudaStream_t st, const mtk_hconv *h, int cfg) {
    if (cfg < 0) cfg = mtk_hconv_pick(h);
    const int parts = mtk_hconv_parts(h, cfg);
    if (!parts || (parts > 1 && (!h->scratch || ((uintptr_t)h->scratch & 15))) || ((uintptr_t)h->x & 15) ||
        ((uintptr_t)h->w & 15) || ((uintptr_t)h->y & 3))
        return cudaErrorInvalidValue;
    switch (cfg) {
#define X(id, BN, MT, NWG, S) \
    case id: return h_launch<BN, MT, NWG, S>(st, h, parts);
        H_CFGS(X)
#undef X
    default: return cudaErrorInvalidValue;
    }
}
