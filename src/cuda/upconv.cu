// Fused bilinear 2x upsample -> 3x3 convolution (the depth head's
// cat -> Resize -> Conv + ReLU, three times a frame).
//
// Unfused, the upsampled concat is written to memory (50 MB at the largest
// scale) and read back by an implicit-GEMM convolution.  Here a block builds
// its (TH + 2) x (TW + 2) upsampled input tile (the conv's 1-pixel halo
// included) in shared memory straight from the low-resolution sources, KC
// channels at a time, and runs the convolution from there as an implicit
// GEMM on tensor cores (mma.sync m16n8k16, FP16 in, FP32 accumulation):
//   M = output pixels (an m16 tile is 16 pixels of one output row),
//   N = output channels, K = 9 taps x KC channels a chunk.
//
// Per chunk of KC input channels (double-buffered, one barrier a chunk):
//   - cp.async: the low-resolution patch (TH/2 + 2) x (TW/2 + 2) x KC (rows /
//     columns clamped at the image border, as the bilinear taps are) and the
//     weights [9][BN][KC] of the chunk after;
//   - the upsampled halo tile of the next chunk is blended from the raw patch
//     in FP32 and rounded to FP16 exactly as k_resize_cat8 does (same taps,
//     weights and expression order), so fused and unfused results differ only
//     by the convolution's accumulation order;
//   - the MMAs of this chunk.
// A warp owns WR output rows x 16 columns x NB8*8 output channels.  For each
// (k16 step, kx) it loads the B fragments of the three ky taps once and walks
// the WR + 2 halo rows: each A fragment (halo row h, shifted by kx) serves
// output rows h, h-1, h-2 (ky = 0, 1, 2), so A is read (WR + 2) / WR times
// per output row instead of 3 times (shared-memory bandwidth, not the tensor
// cores, limits mma.sync kernels with few output channels).
//
// Shared-memory tiles hold 16-byte chunks (8 channels); a pixel (or weight
// row) of KC channels is KC/8 chunks, XOR-swizzled so that the 8 row
// addresses of every ldmatrix phase (8 consecutive pixels / output channels)
// hit 8 distinct 16-byte bank groups.
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "concat.cuh"
#include "fastmath.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "mma.cuh"

namespace {

struct UpArgs {
    CatSrc src;                 // the concat's sources (concat.cuh)
    int C;                      // concat channels
    const __half *w;            // [CO][3][3][C]
    const __half *b;            // [CO] or NULL
    __half *y;
    long long ys0;              // output image stride
    int ys2, ys3;               // output row, pixel stride
    int IH, IW, OH, OW, CO, act, tiles_x;
};

// volatile: ldmatrix reads what other threads stored before a barrier, so it
// must not move across __syncthreads
__device__ __forceinline__ void ldsm_x4(uint32_t *r, uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x2(uint32_t *r, uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(addr));
}

// One axis of bilin_at() (resize.cu) for scale 2, half_pixel: the two taps
// (clamped) and the fraction, with the same float operations.
struct Tap {
    int i0, i1;
    float a;
};
__device__ __forceinline__ Tap tap_at(int o, int in_len) {
    float f = (o + 0.5f) / 2.f - 0.5f;
    f = fminf(fmaxf(f, 0.f), (float)(in_len - 1));
    Tap t;
    t.i0 = (int)f;
    t.i1 = min(t.i0 + 1, in_len - 1);
    t.a = f - t.i0;
    return t;
}

// Blends 8 channels (taps already in FP32) with bilin8's weights and
// expression order, rounding to FP16 once.
__device__ __forceinline__ uint4 blend8(const float2 *fa, const float2 *fb, const float2 *fc, const float2 *fd,
                                        const Tap &ty, const Tap &tx) {
    const float ay = ty.a, ax = tx.a;
    const float w00 = (1.f - ay) * (1.f - ax), w01 = (1.f - ay) * ax, w10 = ay * (1.f - ax), w11 = ay * ax;
    uint4 o;
    __half2 *ho = (__half2 *)&o;
#pragma unroll
    for (int k = 0; k < 4; k++)
        ho[k] = __floats2half2_rn(fa[k].x * w00 + fb[k].x * w01 + fc[k].x * w10 + fd[k].x * w11,
                                  fa[k].y * w00 + fb[k].y * w01 + fc[k].y * w10 + fd[k].y * w11);
    return o;
}

__device__ __forceinline__ void to_f2(const uint4 &v, float2 *f) {
    const __half2 *h = (const __half2 *)&v;
#pragma unroll
    for (int k = 0; k < 4; k++) f[k] = __half22float2(h[k]);
}

template <int WR_, int WY_, int WX_, int WNB_, int NB8_, int KC_, int MINB_>
struct UpCfg {
    static constexpr int WR = WR_, WY = WY_, WX = WX_, WNB = WNB_, NB8 = NB8_, KC = KC_, MINB = MINB_;
    static constexpr int TH = WR * WY, TW = 16 * WX, BN = WNB * NB8 * 8, NT = 32 * WY * WX * WNB;
    static constexpr int CPP = KC / 8;              // 16-byte chunks a pixel
    // upsampled halo tile, rows padded to a multiple of 8 pixels: then the
    // swizzle of a pixel depends on its column only, and every ldmatrix
    // address is a per-lane base plus a compile-time offset
    static constexpr int HH = TH + 2, HW = (TW + 2 + 7) / 8 * 8;
    static constexpr int RH = TH / 2 + 2, RW = TW / 2 + 2;  // low-resolution patch
    static constexpr int QH = TH / 2 + 1, QW = TW / 2 + 1;  // 2x2 quads covering the halo tile
    static constexpr int HALO = HH * HW * CPP, RAW = RH * RW * CPP, WT = 9 * BN * CPP;  // in chunks
    static constexpr int STAGE = HALO + RAW + WT;
    static constexpr size_t SMEM = (size_t)2 * STAGE * 16;
    static_assert(KC == 16 || KC == 32 || KC == 64, "KC: 2, 4 or 8 chunks a pixel");
    static_assert(TH % 2 == 0, "quads start on odd upsampled rows");
};

// Chunk index of (row, chunk c) in a swizzled tile of CPP chunks a row: any
// 8 consecutive rows at a fixed c land in 8 distinct 16-byte bank groups.
template <int CPP>
__device__ __forceinline__ int swz(int row, int c) {
    return row * CPP + (c ^ ((row / (8 / CPP)) & (CPP - 1)));
}

template <class K>
__global__ void __launch_bounds__(K::NT, K::MINB) k_upconv3x3(const __grid_constant__ UpArgs a) {
    MTK_PDL_WAIT();
    constexpr int CPP = K::CPP, NT = K::NT;
    extern __shared__ uint4 sm[];
    uint4 *halo_s = sm;                      // [2][HALO]
    uint4 *raw_s = sm + 2 * K::HALO;         // [2][RAW]
    uint4 *w_s = raw_s + 2 * K::RAW;         // [2][WT]
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int bx = blockIdx.x % a.tiles_x, by = blockIdx.x / a.tiles_x;
    const int co0 = blockIdx.y * K::BN, img = blockIdx.z;
    const int oy0 = by * K::TH, ox0 = bx * K::TW;
    // low-resolution row / column of raw patch row / column 0 (quads start at
    // upsampled row 2 i + 1 = oy0 - 1, the first halo row)
    const int iy0 = oy0 / 2 - 1, ix0 = ox0 / 2 - 1;
    const int C = a.C, nch = (C + K::KC - 1) / K::KC;

    // ---- producers
    auto load_raw = [&](int ch, int buf) {
        uint4 *dst = raw_s + buf * K::RAW;
        for (int u = tid; u < K::RAW; u += NT) {
            const int cg = u % CPP, pix = u / CPP, rr = pix / K::RW, rc = pix % K::RW;
            const int iy = min(max(iy0 + rr, 0), a.IH - 1), ix = min(max(ix0 + rc, 0), a.IW - 1);
            const int c = ch * K::KC + cg * 8;
            const CatAt at = cat_at(a.src, c / 8);
            const bool ok = c < C;
            cp_async16(dst + u, ok ? at.x + img * at.s0 + iy * at.s2 + ix * at.s3 + at.c : a.src.p[0], ok);
        }
    };
    auto load_w = [&](int ch, int buf) {
        uint4 *dst = w_s + buf * K::WT;
        for (int u = tid; u < K::WT; u += NT) {
            const int cg = u % CPP, row = u / CPP;  // row = tap * BN + n
            const int tap = row / K::BN, co = co0 + row % K::BN, c = ch * K::KC + cg * 8;
            const bool ok = co < a.CO && c < C;
            cp_async16(dst + swz<CPP>(row, cg), ok ? a.w + ((long long)co * 9 + tap) * C + c : a.w, ok);
        }
    };
    // Upsampled halo tile of one chunk from its raw patch: one thread a 2x2
    // quad (upsampled rows 2i+1, 2i+2, columns 2j+1, 2j+2) and 8 channels.
    // Inside the image all four pixels blend the same four taps (low-res rows
    // i, i+1, columns j, j+1): loaded once.  Quads at the image border take
    // each pixel's own clamped taps, and pixels outside the upsampled image
    // are the convolution's zero padding.
    auto blend = [&](int buf) {
        const uint4 *raw = raw_s + buf * K::RAW;
        uint4 *dst = halo_s + buf * K::HALO;
        for (int u = tid; u < K::QH * K::QW * CPP; u += NT) {
            const int cg = u % CPP, q = u / CPP, qy = q / K::QW, qx = q % K::QW;
            const int i = iy0 + qy, j = ix0 + qx;
            const int uy = 2 * i + 1, ux = 2 * j + 1;
            const int hp = 2 * qy * K::HW + 2 * qx;
            if (i >= 0 && i + 1 < a.IH && j >= 0 && j + 1 < a.IW) {
                const uint4 *r = raw + (qy * K::RW + qx) * CPP + cg;
                float2 fa[4], fb[4], fc[4], fd[4];
                to_f2(r[0], fa);
                to_f2(r[CPP], fb);
                to_f2(r[K::RW * CPP], fc);
                to_f2(r[K::RW * CPP + CPP], fd);
                const Tap ty0 = tap_at(uy, a.IH), ty1 = tap_at(uy + 1, a.IH);
                const Tap tx0 = tap_at(ux, a.IW), tx1 = tap_at(ux + 1, a.IW);
                dst[swz<CPP>(hp, cg)] = blend8(fa, fb, fc, fd, ty0, tx0);
                dst[swz<CPP>(hp + 1, cg)] = blend8(fa, fb, fc, fd, ty0, tx1);
                dst[swz<CPP>(hp + K::HW, cg)] = blend8(fa, fb, fc, fd, ty1, tx0);
                dst[swz<CPP>(hp + K::HW + 1, cg)] = blend8(fa, fb, fc, fd, ty1, tx1);
            } else {
#pragma unroll
                for (int dy = 0; dy < 2; dy++)
#pragma unroll
                    for (int dx = 0; dx < 2; dx++) {
                        const int py = uy + dy, px = ux + dx;
                        uint4 v = make_uint4(0, 0, 0, 0);
                        if (py >= 0 && py < a.OH && px >= 0 && px < a.OW) {
                            const Tap ty = tap_at(py, a.IH), tx = tap_at(px, a.IW);
                            // the taps lie in the patch (rows iy0 .. iy0 + RH - 1)
                            const int r0 = ty.i0 - iy0, r1 = ty.i1 - iy0, c0 = tx.i0 - ix0, c1 = tx.i1 - ix0;
                            float2 fa[4], fb[4], fc[4], fd[4];
                            to_f2(raw[(r0 * K::RW + c0) * CPP + cg], fa);
                            to_f2(raw[(r0 * K::RW + c1) * CPP + cg], fb);
                            to_f2(raw[(r1 * K::RW + c0) * CPP + cg], fc);
                            to_f2(raw[(r1 * K::RW + c1) * CPP + cg], fd);
                            v = blend8(fa, fb, fc, fd, ty, tx);
                        }
                        dst[swz<CPP>(hp + dy * K::HW + dx, cg)] = v;
                    }
            }
        }
    };

    // ---- this warp's tile
    const int wn = warp % K::WNB, ws = warp / K::WNB, wx = ws % K::WX, wy = ws / K::WX;
    const int r0 = wy * K::WR, col0 = wx * 16, n0 = wn * K::NB8 * 8;
    float acc[K::WR][K::NB8][4];
#pragma unroll
    for (int m = 0; m < K::WR; m++)
#pragma unroll
        for (int n = 0; n < K::NB8; n++) acc[m][n][0] = acc[m][n][1] = acc[m][n][2] = acc[m][n][3] = 0.f;

    // ldmatrix row addresses: A rows are 16 pixels of a halo row (lanes 0-15
    // chunk 2kk, 16-31 chunk 2kk+1); B rows are 8 output channels (lanes 8-15
    // and 24-31 the second k chunk, lanes 16-31 the next 8 channels).  Rows
    // further on by a multiple of 8 keep their swizzle (HW, BN, r0, col0, n0
    // are multiples of 8): per lane, one base per (kk, kx) for A and per kk
    // for B; the rest are immediates.
    uint32_t a_base[CPP / 2][3], b_base[CPP / 2];
#pragma unroll
    for (int kk = 0; kk < CPP / 2; kk++) {
#pragma unroll
        for (int kx = 0; kx < 3; kx++)
            a_base[kk][kx] = 16 * (CPP * (r0 * K::HW + col0) + swz<CPP>((lane & 15) + kx, 2 * kk + (lane >> 4)));
        b_base[kk] = 16 * (CPP * n0 + swz<CPP>(((lane >> 4) << 3) + (lane & 7), 2 * kk + ((lane >> 3) & 1)));
    }

    auto mma_chunk = [&](int buf) {
        const uint32_t hb = smem_u32(halo_s + buf * K::HALO), wb = smem_u32(w_s + buf * K::WT);
#pragma unroll
        for (int kk = 0; kk < CPP / 2; kk++)
#pragma unroll
            for (int kx = 0; kx < 3; kx++) {
                uint32_t bf[3][K::NB8][2];
#pragma unroll
                for (int ky = 0; ky < 3; ky++) {
                    const uint32_t bp = wb + b_base[kk] + 16 * CPP * (ky * 3 + kx) * K::BN;
#pragma unroll
                    for (int np = 0; np + 1 < K::NB8; np += 2) {
                        uint32_t r[4];
                        ldsm_x4(r, bp + 16 * CPP * np * 8);
                        bf[ky][np][0] = r[0];
                        bf[ky][np][1] = r[1];
                        bf[ky][np + 1][0] = r[2];
                        bf[ky][np + 1][1] = r[3];
                    }
                    if (K::NB8 & 1)  // odd last n8 tile: lanes 0-15 give its addresses
                        ldsm_x2(bf[ky][K::NB8 - 1], bp + 16 * CPP * (K::NB8 - 1) * 8);
                }
                const uint32_t ap = hb + a_base[kk][kx];
#pragma unroll
                for (int h = 0; h < K::WR + 2; h++) {
                    uint32_t af[4];
                    ldsm_x4(af, ap + 16 * CPP * h * K::HW);
#pragma unroll
                    for (int ky = 0; ky < 3; ky++) {
                        const int m = h - ky;
                        if (m >= 0 && m < K::WR) {
#pragma unroll
                            for (int n = 0; n < K::NB8; n++) mma16816(acc[m][n], af, bf[ky][n]);
                        }
                    }
                }
            }
    };

    // ---- pipeline: raw patch two chunks ahead, weights and halo one ahead
    load_raw(0, 0);
    load_w(0, 0);
    cp_async_commit();
    if (nch > 1) load_raw(1, 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    blend(0);
    for (int ch = 0; ch < nch; ch++) {
        cp_async_wait<0>();
        // weights of ch and the raw patch of ch + 1 landed; halo ch written;
        // everyone is done with the buffers refilled below
        __syncthreads();
        if (ch + 1 < nch) load_w(ch + 1, (ch + 1) & 1);
        if (ch + 2 < nch) load_raw(ch + 2, ch & 1);
        cp_async_commit();
        mma_chunk(ch & 1);
        if (ch + 1 < nch) blend((ch + 1) & 1);
    }

    // ---- epilogue: bias, activation, FP16 pairs of channels
    const int g = lane >> 2, t2 = (lane & 3) * 2;
    __half *yb = a.y + img * a.ys0;
#pragma unroll
    for (int n = 0; n < K::NB8; n++) {
        const int co = co0 + n0 + n * 8 + t2;
        if (co >= a.CO) continue;
        float b0 = 0.f, b1 = 0.f;
        if (a.b) {
            const __half2 bb = *(const __half2 *)(a.b + co);
            b0 = __low2float(bb);
            b1 = __high2float(bb);
        }
#pragma unroll
        for (int m = 0; m < K::WR; m++) {
            const int oy = oy0 + r0 + m;
            if (oy >= a.OH) continue;
#pragma unroll
            for (int hlf = 0; hlf < 2; hlf++) {
                const int ox = ox0 + col0 + g + hlf * 8;
                if (ox >= a.OW) continue;
                const float v0 = mtk_act(acc[m][n][2 * hlf] + b0, a.act), v1 = mtk_act(acc[m][n][2 * hlf + 1] + b1, a.act);
                *(__half2 *)(yb + oy * a.ys2 + ox * a.ys3 + co) = __floats2half2_rn(v0, v1);
            }
        }
    }
}

// The instantiated tile shapes (rows a warp, warps along rows / columns /
// output channels, n8 tiles a warp, channels a chunk); see mtk_upconv3x3
// for which one runs.
// (MINB: blocks an SM must hold, which caps the registers.)
typedef UpCfg<8, 2, 2, 1, 4, 16, 2> V0;  // 16x32 px x 32 ch, 4 warps
typedef UpCfg<4, 4, 2, 1, 4, 16, 2> V1;  // 16x32 px x 32 ch, 8 warps
typedef UpCfg<8, 2, 1, 2, 4, 16, 2> V2;  // 16x16 px x 64 ch, 4 warps
typedef UpCfg<4, 4, 1, 2, 4, 16, 2> V3;  // 16x16 px x 64 ch, 8 warps
typedef UpCfg<4, 4, 1, 2, 5, 16, 1> V4;  // 16x16 px x 80 ch, 8 warps
typedef UpCfg<4, 2, 1, 5, 4, 16, 1> V5;  // 8x16 px x 160 ch, 10 warps
typedef UpCfg<4, 4, 1, 2, 5, 16, 2> V6;  // 16x16 px x 80 ch, 8 warps, 2 blocks an SM

template <class K>
cudaError_t launch_cfg(cudaStream_t s, const UpArgs &a0, int N) {
    // idempotent (and per device); launches happen when a plan is built and
    // captured, not per frame
    cudaError_t e = cudaFuncSetAttribute(k_upconv3x3<K>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)K::SMEM);
    if (e != cudaSuccess) return e;
    UpArgs a = a0;
    a.tiles_x = (a.OW + K::TW - 1) / K::TW;
    const int tiles_y = (a.OH + K::TH - 1) / K::TH;
    dim3 grid((unsigned)(a.tiles_x * tiles_y), (unsigned)((a.CO + K::BN - 1) / K::BN), (unsigned)N);
    mtk_launch(k_upconv3x3<K>, grid, dim3(K::NT), K::SMEM, s, a);
    return cudaGetLastError();
}

struct Variant {
    cudaError_t (*launch)(cudaStream_t, const UpArgs &, int);
    const char *name;
    int bn;
};
const Variant g_variants[] = {
    {launch_cfg<V0>, "16x32px x32co 4w kc16", V0::BN}, {launch_cfg<V1>, "16x32px x32co 8w kc16", V1::BN},
    {launch_cfg<V2>, "16x16px x64co 4w kc16", V2::BN}, {launch_cfg<V3>, "16x16px x64co 8w kc16", V3::BN},
    {launch_cfg<V4>, "16x16px x80co 8w kc16", V4::BN}, {launch_cfg<V5>, "8x16px x160co 10w kc16", V5::BN},
    {launch_cfg<V6>, "16x16px x80co 8w kc16 2blk", V6::BN},
};
const int g_nvariants = (int)(sizeof g_variants / sizeof g_variants[0]);

// The variant for CO output channels: the fewest padded channels (CO is
// split into BN-wide block columns, the last one partly idle); among equals
// the preferred order below (wider blocks recompute the upsampled tile
// fewer times and read the weights for more pixels).
// Measured (H100, test_cuda_upconv --bench, 2026-11-25): for CO 32 the
// 8-warp 16x32 tile is the fastest (80 us against 98 for the 4-warp one).
int pick_variant(int CO) {
    if (CO <= 32) return 1;
    static const int pref[] = {4, 2, 0, 5, 3, 1, 6};
    int best = -1, best_pad = 0;
    for (int k = 0; k < (int)(sizeof pref / sizeof pref[0]); k++) {
        const int v = pref[k], bn = g_variants[v].bn, pad = (CO + bn - 1) / bn * bn;
        if (best < 0 || pad < best_pad) best = v, best_pad = pad;
    }
    return best;
}

cudaError_t fill_args(UpArgs *a, int nsrc, const void *const *x, const int64_t (*xs)[4], const int *csrc, const void *w,
                      const void *bias, void *y, const int64_t ys[4], int IH, int IW, int CO, int act) {
    if (!mtk_upconv3x3_supported(nsrc, csrc, CO, act)) return cudaErrorInvalidValue;
    memset(a, 0, sizeof *a);
    int cbegin[CAT_MAXSRC], c = 0;
    for (int k = 0; k < nsrc; k++) cbegin[k] = c, c += csrc[k];
    const cudaError_t e = cat_src_fill(&a->src, nsrc, x, xs, cbegin);
    if (e != cudaSuccess) return e;
    if ((uintptr_t)w % 16 || (uintptr_t)y % 4 || (bias && (uintptr_t)bias % 4) || ys[1] != 1 || ys[2] % 2 || ys[3] % 2 ||
        ys[0] % 2)
        return cudaErrorInvalidValue;
    a->C = c;
    a->w = (const __half *)w;
    a->b = (const __half *)bias;
    a->y = (__half *)y;
    a->ys0 = ys[0];
    a->ys2 = (int)ys[2];
    a->ys3 = (int)ys[3];
    a->IH = IH;
    a->IW = IW;
    a->OH = 2 * IH;
    a->OW = 2 * IW;
    a->CO = CO;
    a->act = act;
    return cudaSuccess;
}

}  // namespace

extern "C" int mtk_upconv3x3_supported(int nsrc, const int *csrc, int CO, int act) {
    if (nsrc < 1 || nsrc > CAT_MAXSRC || CO < 8 || CO % 8 || act < 0 || act > 3) return 0;
    for (int k = 0; k < nsrc; k++)
        if (csrc[k] < 8 || csrc[k] % 8) return 0;
    return 1;
}

extern "C" cudaError_t mtk_upconv3x3(cudaStream_t s, int nsrc, const void *const *x, const int64_t (*xs)[4],
                                     const int *csrc, const void *w, const void *bias, void *y, const int64_t ys[4],
                                     int N, int IH, int IW, int CO, int act) {
    return mtk_upconv3x3_variant(s, -1, nsrc, x, xs, csrc, w, bias, y, ys, N, IH, IW, CO, act);
}

extern "C" int mtk_upconv3x3_nvariants(void) { return g_nvariants; }
extern "C" const char *mtk_upconv3x3_variant_name(int v) {
    return v >= 0 && v < g_nvariants ? g_variants[v].name : "?";
}

extern "C" cudaError_t mtk_upconv3x3_variant(cudaStream_t s, int variant, int nsrc, const void *const *x,
                                             const int64_t (*xs)[4], const int *csrc, const void *w, const void *bias,
                                             void *y, const int64_t ys[4], int N, int IH, int IW, int CO, int act) {
    UpArgs a;
    cudaError_t e = fill_args(&a, nsrc, x, xs, csrc, w, bias, y, ys, IH, IW, CO, act);
    if (e != cudaSuccess) return e;
    if (N <= 0 || IH <= 0 || IW <= 0) return cudaSuccess;
    if (variant < 0) variant = pick_variant(CO);
    if (variant >= g_nvariants) return cudaErrorInvalidValue;
    return g_variants[variant].launch(s, a, N);
}
