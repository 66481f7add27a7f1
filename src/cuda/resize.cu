// Resize (bilinear / nearest), a resize read through a channel concat,
// a sum of resizes, and bilinear resize + argmax (the fused class map).
// (C entry points in kernels.h; storage FP16 or FP32, arithmetic FP32.)
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "bilinear.cuh"
#include "concat.cuh"
#include "fastmath.cuh"
#include "kernels.h"
#include "kernels_common.cuh"
#include "launch.cuh"
#include "qquant.cuh"

namespace {

// --------------------------------------------------------------- resize
__device__ __forceinline__ int nearest_idx(float x, int mode, int len) {
    int i;
    switch (mode) {
    case 1: i = (x - floorf(x) == 0.5f) ? (int)ceilf(x) : (int)roundf(x); break;
    case 2: i = (int)floorf(x); break;
    case 3: i = (int)ceilf(x); break;
    default: i = (x - floorf(x) == 0.5f) ? (int)floorf(x) : (int)roundf(x); break;
    }
    return i < 0 ? 0 : i >= len ? len - 1 : i;
}

__global__ void k_resize(const void *x, int xs0, int xs1, int xs2, int xs3, void *y, int ys0, int ys1, int ys2,
                         int ys3, int N, int C, int IH, int IW, int OH, int OW, float sh, float sw, int mode, int coord,
                         int nmode, int c_inner, int f16, int of16) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * C * OH * OW;
    if (i >= total) return;
    int n, c, oh, ow;
    if (c_inner) {
        c = (int)(i % C); unsigned t = i / C;
        ow = (int)(t % OW); t /= OW;
        oh = (int)(t % OH); n = (int)(t / OH);
    } else {
        ow = (int)(i % OW); unsigned t = i / OW;
        oh = (int)(t % OH); t /= OH;
        c = (int)(t % C); n = (int)(t / C);
    }
    const int base = n * xs0 + c * xs1;
    float fy = src_coord(oh, sh, IH, OH, coord), fx = src_coord(ow, sw, IW, OW, coord);
    float v;
    if (mode == 0) {
        int iy = nearest_idx(fy, nmode, IH), ix = nearest_idx(fx, nmode, IW);
        v = ld(x, base + iy * xs2 + ix * xs3, f16);
    } else {
        fy = fminf(fmaxf(fy, 0.f), (float)(IH - 1));
        fx = fminf(fmaxf(fx, 0.f), (float)(IW - 1));
        int y0 = (int)fy, x0 = (int)fx;
        int y1 = min(y0 + 1, IH - 1), x1 = min(x0 + 1, IW - 1);
        float ay = fy - y0, ax = fx - x0;
        float a = ld(x, base + y0 * xs2 + x0 * xs3, f16), b = ld(x, base + y0 * xs2 + x1 * xs3, f16);
        float c0 = ld(x, base + y1 * xs2 + x0 * xs3, f16), d = ld(x, base + y1 * xs2 + x1 * xs3, f16);
        v = (a * (1.f - ax) + b * ax) * (1.f - ay) + (c0 * (1.f - ax) + d * ax) * ay;
    }
    st(y, n * ys0 + c * ys1 + oh * ys2 + ow * ys3, v, of16);
}

// The sum of bilinear resizes of up to 4 channels-last FP16 maps (each its
// own size) to one output size, 8 channels a thread, summed in FP32 and
// rounded once.  Used where a 1x1 conv over a concat of upsampled maps is
// reassociated (fuse_catgemm.c): the maps are projected at their own, small
// resolution and only their sum is upsampled.
struct ResizeSrc {
    const uint4 *x[4];
    int xs0[4], xs2[4], xs3[4], ih[4], iw[4];
    float rh[4], rw[4];  // 1 / scale: a multiply instead of a division a coordinate (exact for the power-of-two scales)
};
__global__ void __launch_bounds__(256) k_resize_sum8(ResizeSrc src, int nsrc, uint4 *y, int ys0, int ys2, int ys3, int N, int C8, int OH, int OW,
                              int coord) {
    MTK_PDL_WAIT();
    unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned total = (unsigned)N * C8 * OH * OW;
    if (i >= total) return;
    int c = (int)(i % C8);
    unsigned t = i / C8;
    int ow = (int)(t % OW);
    t /= OW;
    int oh = (int)(t % OH), n = (int)(t / OH);
    float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int k = 0; k < nsrc; k++) {
        // bilin_at with the coordinate's division turned into a multiply
        const int IH = src.ih[k], IW = src.iw[k];
        const float fy = coord == 2 ? (OH > 1 ? oh * (float)(IH - 1) / (float)(OH - 1) : 0.f)
                       : coord == 3 ? oh * src.rh[k] : (coord == 1 && OH <= 1) ? 0.f : (oh + 0.5f) * src.rh[k] - 0.5f;
        const float fx = coord == 2 ? (OW > 1 ? ow * (float)(IW - 1) / (float)(OW - 1) : 0.f)
                       : coord == 3 ? ow * src.rw[k] : (coord == 1 && OW <= 1) ? 0.f : (ow + 0.5f) * src.rw[k] - 0.5f;
        const Bilin tp = bilin_from(fy, fx, IH, IW);
        const uint4 *x = src.x[k];
        const int b = n * src.xs0[k] + c, xs2 = src.xs2[k], xs3 = src.xs3[k];
        uint4 q[4] = {x[b + tp.y0 * xs2 + tp.x0 * xs3], x[b + tp.y0 * xs2 + tp.x1 * xs3], x[b + tp.y1 * xs2 + tp.x0 * xs3],
                      x[b + tp.y1 * xs2 + tp.x1 * xs3]};
        const float w[4] = {tp.w00, tp.w01, tp.w10, tp.w11};
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const __half2 *h = (const __half2 *)&q[u];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float2 f = __half22float2(h[e]);
                acc[2 * e] = fmaf(f.x, w[u], acc[2 * e]);
                acc[2 * e + 1] = fmaf(f.y, w[u], acc[2 * e + 1]);
            }
        }
    }
    uint4 o;
    __half2 *ho = (__half2 *)&o;
#pragma unroll
    for (int e = 0; e < 4; e++) ho[e] = __floats2half2_rn(acc[2 * e], acc[2 * e + 1]);
    y[n * ys0 + c + oh * ys2 + ow * ys3] = o;
}

// The channels-last resizes below make RESIZE_RUN consecutive output
// pixels of one 8-channel chunk a thread: the index arithmetic (three
// divisions by run-time sizes), a concat's source choice and the row's
// coordinates are paid once a run instead of once an output, and the run's
// loads are independent.  With one output a thread the int8-writing
// upsample of the depth head's 512x512x96 input took 44.6 us (H100 ncu,
// 2026-12-07), about twice what its instructions cost to issue.  Every
// output is still bilin_at + bilin8 (+ q_quant8) of its own pixel, so the
// values are those of one output a thread; a run past the right edge
// computes its last pixel again and stores nothing there.  H100
// (2026-12-07, ncu, int8 outputs): the depth head's concat upsamples 14.6 /
// 27.4 / 44.6 -> 12.9 / 21.3 / 33.9 us; the seg head's upsamples into
// its concat's slices 16.4-16.9 us with one output a thread, 13.0-13.2
// with runs of 4.
#define RESIZE_RUN 4

struct RunAt {
    int c, x0, oh, n;
};
// work item i as (chunk, first pixel of the run, row, image); false past the end
__device__ __forceinline__ bool run_at(unsigned i, int N, int C8, int OH, int OW, RunAt *r) {
    const unsigned runs = (unsigned)(OW + RESIZE_RUN - 1) / RESIZE_RUN;
    if (i >= (unsigned)N * C8 * OH * runs) return false;
    r->c = (int)(i % C8);
    unsigned t = i / C8;
    r->x0 = (int)(t % runs) * RESIZE_RUN;
    t /= runs;
    r->oh = (int)(t % OH), r->n = (int)(t / OH);
    return true;
}
static unsigned run_items(int N, int C8, int OH, int OW) {
    return (unsigned)N * C8 * OH * ((OW + RESIZE_RUN - 1) / RESIZE_RUN);
}

// One run of a chunk: blended first, then stored, so that no store sits
// between the loads of two outputs (y may alias nothing, but the compiler
// cannot know).  Q: each 8 values quantized with scale qs (rq = fl(1 / qs))
// and stored as 8 int8 (8 bytes) into a channels-last int8 tensor of the
// same element strides (the next QConv's input; fuse_qresize.c).
template <bool Q>
__device__ __forceinline__ void resize_run8(const uint4 *x, int xb, int xs2, int xs3, void *y, int yb, int ys3,
                                            const RunAt &r, int IH, int IW, int OH, int OW, float sh, float sw, int coord,
                                            float qs, float rq) {
    /* bilin_at's steps, the row's coordinate once (bilin_from clamps it
     * again: the same value) */
    const float fy = src_coord(r.oh, sh, IH, OH, coord);
    float fx[RESIZE_RUN];
#pragma unroll
    for (int k = 0; k < RESIZE_RUN; k++) fx[k] = src_coord(min(r.x0 + k, OW - 1), sw, IW, OW, coord);
    uint4 o[RESIZE_RUN];
#pragma unroll
    for (int k = 0; k < RESIZE_RUN; k++) o[k] = bilin8(x, xb, xs2, xs3, bilin_from(fy, fx[k], IH, IW));
#pragma unroll
    for (int k = 0; k < RESIZE_RUN; k++) {
        if (r.x0 + k >= OW) break;
        const int oi = yb + (r.x0 + k) * ys3;
        if (Q) ((uint2 *)y)[oi] = q_quant8(o[k], qs, rq);
        else ((uint4 *)y)[oi] = o[k];
    }
}

// Channels-last bilinear resize, 8 FP16 channels (16 bytes) an output, a
// run of outputs a thread; Q as in resize_run8.
template <bool Q>
__global__ void k_resize_c8(const uint4 *x, int xs0, int xs2, int xs3, void *y, int ys0, int ys2, int ys3, int N,
                            int C8, int IH, int IW, int OH, int OW, float sh, float sw, int coord, float qs) {
    MTK_PDL_WAIT();
    RunAt r;
    if (!run_at(blockIdx.x * blockDim.x + threadIdx.x, N, C8, OH, OW, &r)) return;
    resize_run8<Q>(x, r.n * xs0 + r.c, xs2, xs3, y, r.n * ys0 + r.c + r.oh * ys2, ys3, r, IH, IW, OH, OW, sh, sw, coord, qs,
                   Q ? q_div(1.0f, qs) : 0.0f);
}

// The four taps of output pixel (n, oh, ow) and their weights, and the
// blend of channel offset cc: shared by k_resize_pix and k_resize_argmax so
// that both compute every value with the same operations.
struct PixTaps {
    int o00, o01, o10, o11;
    Bilin tp;
};
__device__ __forceinline__ PixTaps pix_taps(int n, int oh, int ow, int xs0, int xs2, int xs3, float sh, float sw, int IH,
                                            int IW, int OH, int OW, int coord) {
    PixTaps p;
    p.tp = bilin_at(oh, ow, sh, sw, IH, IW, OH, OW, coord);
    const int b = n * xs0;
    p.o00 = b + p.tp.y0 * xs2 + p.tp.x0 * xs3, p.o01 = b + p.tp.y0 * xs2 + p.tp.x1 * xs3;
    p.o10 = b + p.tp.y1 * xs2 + p.tp.x0 * xs3, p.o11 = b + p.tp.y1 * xs2 + p.tp.x1 * xs3;
    return p;
}
// Output pixel i of [N, OH, OW] as (n, oh, ow); false past the end.
__device__ __forceinline__ bool pixel_at(unsigned i, int N, int OH, int OW, int *n, int *oh, int *ow) {
    if (i >= (unsigned)N * OH * OW) return false;
    *ow = (int)(i % OW);
    const unsigned t = i / OW;
    *oh = (int)(t % OH), *n = (int)(t / OH);
    return true;
}
__device__ __forceinline__ float pix_value(const void *x, const PixTaps &p, int cc, int f16) {
    return ld(x, p.o00 + cc, f16) * p.tp.w00 + ld(x, p.o01 + cc, f16) * p.tp.w01 + ld(x, p.o10 + cc, f16) * p.tp.w10 +
           ld(x, p.o11 + cc, f16) * p.tp.w11;
}

// Bilinear resize with a plane-major output (NCHW, e.g. a graph output) from
// a channels-last input: one thread per output pixel loops over channels,
// so the index arithmetic is paid once per pixel and writes stay coalesced.
__global__ void k_resize_pix(const void *x, int xs0, int xs1, int xs2, int xs3, void *y, int ys0, int ys1, int ys2,
                             int ys3, int N, int C, int IH, int IW, int OH, int OW, float sh, float sw, int coord,
                             int f16, int of16) {
    MTK_PDL_WAIT();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    int n, oh, ow;
    if (!pixel_at(i, N, OH, OW, &n, &oh, &ow)) return;
    const PixTaps px = pix_taps(n, oh, ow, xs0, xs2, xs3, sh, sw, IH, IW, OH, OW, coord);
    int oo = n * ys0 + oh * ys2 + ow * ys3;
    for (int c = 0; c < C; c++) st(y, oo + c * ys1, pix_value(x, px, c * xs1, f16), of16);
}

// k_resize_pix's values, reduced to the index of the largest per pixel
// (mtmi.ClassMap: the first of equal maxima, NaN never wins) instead of
// stored: a segmentation head's class map without its logits ever written.
// The values are k_resize_pix's own (pix_value), in FP32 as the plan keeps
// a resize that feeds a class map, so the map is the argmax of the logits
// the plan returns when asked for them.
__global__ void k_resize_argmax(const void *x, int xs0, int xs1, int xs2, int xs3, uint8_t *y, int N, int C, int IH, int IW,
                                int OH, int OW, float sh, float sw, int coord, int f16) {
    MTK_PDL_WAIT();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    int n, oh, ow;
    if (!pixel_at(i, N, OH, OW, &n, &oh, &ow)) return;
    const PixTaps px = pix_taps(n, oh, ow, xs0, xs2, xs3, sh, sw, IH, IW, OH, OW, coord);
    float best = pix_value(x, px, 0, f16);
    int arg = 0;
    for (int c = 1; c < C; c++) {
        const float v = pix_value(x, px, c * xs1, f16);
        if (v > best || (best != best && v == v)) best = v, arg = c;
    }
    y[i] = (uint8_t)arg;
}

// The same over a channel concatenation of up to 4 channels-last FP16
// sources (the concat is never stored; concat.cuh); Q as in resize_run8.
template <bool Q>
__global__ void k_resize_cat8(CatSrc src, void *y, int ys0, int ys2, int ys3, int N, int C8, int IH, int IW, int OH,
                              int OW, float sh, float sw, int coord, float qs) {
    MTK_PDL_WAIT();
    RunAt r;
    if (!run_at(blockIdx.x * blockDim.x + threadIdx.x, N, C8, OH, OW, &r)) return;
    const CatAt at = cat_at(src, r.c);
    resize_run8<Q>(at.x, r.n * at.s0 + at.c, at.s2, at.s3, y, r.n * ys0 + r.c + r.oh * ys2, ys3, r, IH, IW, OH, OW, sh, sw,
                   coord, qs, Q ? q_div(1.0f, qs) : 0.0f);
}

}  // namespace

extern "C" {

cudaError_t mtk_resize_sum(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *ih,
                           const int *iw, void *y, const int64_t ys[4], int N, int C, int OH, int OW, int coord) {
    long long total = (long long)N * C * OH * OW;
    if (nsrc < 1 || nsrc > 4 || C % 8 || ys[1] != 1 || ys[0] % 8 || ys[2] % 8 || ys[3] % 8 || (uintptr_t)y % 16 ||
        total >= (1ll << 31))
        return cudaErrorInvalidValue;
    if (!total) return cudaSuccess;
    ResizeSrc src;
    memset(&src, 0, sizeof src);
    for (int k = 0; k < nsrc; k++) {
        if (xs[k][1] != 1 || xs[k][0] % 8 || xs[k][2] % 8 || xs[k][3] % 8 || (uintptr_t)x[k] % 16 || ih[k] < 1 || iw[k] < 1)
            return cudaErrorInvalidValue;
        src.x[k] = (const uint4 *)x[k];
        src.xs0[k] = (int)(xs[k][0] / 8), src.xs2[k] = (int)(xs[k][2] / 8), src.xs3[k] = (int)(xs[k][3] / 8);
        src.ih[k] = ih[k], src.iw[k] = iw[k];
        src.rh[k] = (float)ih[k] / (float)OH, src.rw[k] = (float)iw[k] / (float)OW;
    }
    mtk_launch(k_resize_sum8, blocks_for(total / 8, 256), 256, 0, s, src, nsrc, (uint4 *)y, (int)(ys[0] / 8), (int)(ys[2] / 8),
               (int)(ys[3] / 8), N, C / 8, OH, OW, coord);
    return cudaGetLastError();
}

cudaError_t mtk_resize(cudaStream_t s, const void *x, const int64_t xs[4], void *y, const int64_t ys[4], int N, int C,
                       int IH, int IW, int OH, int OW, float scale_h, float scale_w, int mode, int coord,
                       int nearest_mode, int c_inner, int f16, int out_f16) {
    long long total = (long long)N * C * OH * OW;
    if (!total) return cudaSuccess;
    if (total >= (1ll << 31)) return cudaErrorInvalidValue;
    if (mode == 1 && c_inner && f16 && out_f16 && C % 8 == 0 && xs[1] == 1 && ys[1] == 1 && xs[0] % 8 == 0 &&
        xs[2] % 8 == 0 && xs[3] % 8 == 0 && ys[0] % 8 == 0 && ys[2] % 8 == 0 && ys[3] % 8 == 0 &&
        (uintptr_t)x % 16 == 0 && (uintptr_t)y % 16 == 0) {
        mtk_launch(k_resize_c8<false>, blocks_for(run_items(N, C / 8, OH, OW), 256), 256, 0, s, (const uint4 *)x, (int)xs[0] / 8, (int)xs[2] / 8,
                   (int)xs[3] / 8, y, (int)ys[0] / 8, (int)ys[2] / 8, (int)ys[3] / 8, N, C / 8, IH, IW, OH, OW, scale_h,
                   scale_w, coord, 0.0f);
        return cudaGetLastError();
    }
    if (mode == 1 && !c_inner && C <= 64) {
        long long pix = (long long)N * OH * OW;
        mtk_launch(k_resize_pix, blocks_for(pix, 256), 256, 0, s, x, (int)xs[0], (int)xs[1], (int)xs[2], (int)xs[3], y, (int)ys[0],
                                                           (int)ys[1], (int)ys[2], (int)ys[3], N, C, IH, IW, OH, OW,
                                                           scale_h, scale_w, coord, f16, out_f16);
        return cudaGetLastError();
    }
    mtk_launch(k_resize, blocks_for(total, 256), 256, 0, s, x, (int)xs[0], (int)xs[1], (int)xs[2], (int)xs[3], y, (int)ys[0],
                                                     (int)ys[1], (int)ys[2], (int)ys[3], N, C, IH, IW, OH, OW, scale_h,
                                                     scale_w, mode, coord, nearest_mode, c_inner, f16, out_f16);
    return cudaGetLastError();
}

int mtk_resize_argmax_supported(int mode, int C, int f16, int out_f16) { return mode == 1 && C >= 1 && C <= 256 && !out_f16; }

cudaError_t mtk_resize_argmax(cudaStream_t s, const void *x, const int64_t xs[4], uint8_t *y, int N, int C, int IH, int IW,
                              int OH, int OW, float scale_h, float scale_w, int coord, int f16) {
    long long pix = (long long)N * OH * OW;
    if (!pix) return cudaSuccess;
    if (pix >= (1ll << 31) || (long long)N * C * IH * IW >= (1ll << 31)) return cudaErrorInvalidValue;
    mtk_launch(k_resize_argmax, blocks_for(pix, 256), 256, 0, s, x, (int)xs[0], (int)xs[1], (int)xs[2], (int)xs[3], y, N, C, IH, IW,
               OH, OW, scale_h, scale_w, coord, f16);
    return cudaGetLastError();
}

cudaError_t mtk_resize_cat(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *cbegin,
                           void *y, const int64_t ys[4], int N, int C, int IH, int IW, int OH, int OW, float scale_h,
                           float scale_w, int coord) {
    if (C % 8 || ys[1] != 1 || (uintptr_t)y % 16) return cudaErrorInvalidValue;
    CatSrc src;
    const cudaError_t e = cat_src_fill(&src, nsrc, x, xs, cbegin);
    if (e != cudaSuccess) return e;
    long long total = (long long)N * (C / 8) * OH * OW;
    if (!total) return cudaSuccess;
    mtk_launch(k_resize_cat8<false>, blocks_for(run_items(N, C / 8, OH, OW), 256), 256, 0, s, src, y, (int)(ys[0] / 8), (int)(ys[2] / 8),
               (int)(ys[3] / 8), N, C / 8, IH, IW, OH, OW, scale_h, scale_w, coord, 0.0f);
    return cudaGetLastError();
}

int mtk_resize_q8_supported(const void *x, const int64_t xs[4], const int64_t ys[4], int C, int mode, int f16) {
    return mode == 1 && f16 && C % 8 == 0 && C > 1 && xs[1] == 1 && ys[1] == 1 && xs[0] % 8 == 0 && xs[2] % 8 == 0 &&
           xs[3] % 8 == 0 && ys[0] % 8 == 0 && ys[2] % 8 == 0 && ys[3] % 8 == 0 && (uintptr_t)x % 16 == 0;
}

cudaError_t mtk_resize_q8(cudaStream_t s, const void *x, const int64_t xs[4], int8_t *y, const int64_t ys[4], int N, int C,
                          int IH, int IW, int OH, int OW, float scale_h, float scale_w, int coord, float qscale) {
    long long total = (long long)N * C * OH * OW;
    if (!total) return cudaSuccess;
    if (total >= (1ll << 31) || !(qscale > 0.0f) || !mtk_resize_q8_supported(x, xs, ys, C, 1, 1) || (uintptr_t)y % 8)
        return cudaErrorInvalidValue;
    mtk_launch(k_resize_c8<true>, blocks_for(run_items(N, C / 8, OH, OW), 256), 256, 0, s, (const uint4 *)x, (int)xs[0] / 8, (int)xs[2] / 8,
               (int)xs[3] / 8, (void *)y, (int)ys[0] / 8, (int)ys[2] / 8, (int)ys[3] / 8, N, C / 8, IH, IW, OH, OW, scale_h,
               scale_w, coord, qscale);
    return cudaGetLastError();
}

cudaError_t mtk_resize_cat_q8(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *cbegin,
                              int8_t *y, const int64_t ys[4], int N, int C, int IH, int IW, int OH, int OW, float scale_h,
                              float scale_w, int coord, float qscale) {
    if (C % 8 || ys[1] != 1 || ys[0] % 8 || ys[2] % 8 || ys[3] % 8 || (uintptr_t)y % 8 || !(qscale > 0.0f))
        return cudaErrorInvalidValue;
    CatSrc src;
    const cudaError_t e = cat_src_fill(&src, nsrc, x, xs, cbegin);
    if (e != cudaSuccess) return e;
    long long total = (long long)N * (C / 8) * OH * OW;
    if (!total) return cudaSuccess;
    mtk_launch(k_resize_cat8<true>, blocks_for(run_items(N, C / 8, OH, OW), 256), 256, 0, s, src, (void *)y, (int)(ys[0] / 8), (int)(ys[2] / 8),
               (int)(ys[3] / 8), N, C / 8, IH, IW, OH, OW, scale_h, scale_w, coord, qscale);
    return cudaGetLastError();
}

}  // extern "C"
