// The encoder's MLP in one kernel: y = fc2(act(dw3x3(fc1(x)))), FP16 NHWC
// tokens, FP32 accumulation.
//
// Unfused, stage 1 of the network (65536 tokens, C 32, hidden 128) writes
// the 16 MB fc1 output, reads it back for the depthwise conv, writes the
// 16 MB conv output and reads it again for fc2: ~70 MB of traffic and three
// launches per block for 0.75 GFLOP of tensor-core work.  Here a block owns
// a TH x TW tile of output pixels and keeps everything between its input
// rows and its output rows in shared memory:
//   1. the input rows of the tile and a one-pixel halo (the depthwise conv
//      needs fc1 at the neighbours) land in shared memory once;
//   2. per chunk of 64 hidden channels: fc1 for the halo rows on tensor
//      cores (rows outside the image set to 0: the conv's zero padding is on
//      the fc1 output), the 3x3 depthwise conv + activation on CUDA cores,
//      and fc2's partial product accumulated in registers;
//   3. fc2's bias, one FP16 store per output element.
// The halo costs (TH+2)(TW+2)/(TH TW) extra fc1 work (1.4x at 8x16), which
// is cheap next to the traffic it saves.  Weights of the next chunk load
// (cp.async) while this chunk computes.  fc1 and conv outputs are rounded to
// FP16 where the unfused steps store them, so both paths agree to rounding
// of the accumulation order.
#include <cuda_fp16.h>
#include <stdint.h>

#include "fastmath.cuh"
#include "kernels.h"
#include "launch.cuh"
#include "mma.cuh"

namespace {

constexpr int HC = 64;  // hidden channels a chunk

// C: token channels; TH x TW: output pixels a block; WM1 x WN1 and WM2 x WN2:
// how the 8 warps split fc1's [halo rows x 64] and fc2's [pixels x C].
template <int C, int TH, int TW, int WM1, int WN1, int WM2, int WN2>
struct MlpCfg {
    static constexpr int HALO = (TH + 2) * (TW + 2);
    static constexpr int MT1 = (HALO + 15) / 16;  // fc1 m-tiles
    static constexpr int HR = MT1 * 16;           // halo rows, padded
    static constexpr int P = TH * TW;             // output pixels
    static constexpr int MT2 = P / 16, NT2 = C / 8;
    static constexpr int LX = C + 8, LH = HC + 8, LW2 = C + 8;  // padded rows (halves): conflict-free ldmatrix
    static constexpr int NW1 = (HC / 8) / WN1;  // fc1 n-tiles a warp
    static constexpr int MW2 = MT2 / WM2, NW2 = NT2 / WN2;
    // shared memory, in halves then floats
    static constexpr int X_OFF = 0;
    static constexpr int W1_OFF = X_OFF + HR * LX;        // [2][C][LH]
    static constexpr int W2_OFF = W1_OFF + 2 * C * LH;    // [2][HC][LW2]
    static constexpr int H_OFF = W2_OFF + 2 * HC * LW2;   // [HR][LH]
    static constexpr int G_OFF = H_OFF + HR * LH;         // [P][LH]
    static constexpr int HALVES = G_OFF + P * LH;
    static constexpr int F_DW = 0;                        // [2][9][HC]
    static constexpr int F_B1 = F_DW + 2 * 9 * HC;        // [2][HC]
    static constexpr int F_BD = F_B1 + 2 * HC;            // [2][HC]
    static constexpr int F_B2 = F_BD + 2 * HC;            // [C]
    static constexpr int FLOATS = F_B2 + C;
    static constexpr size_t SMEM = (size_t)HALVES * 2 + (size_t)FLOATS * 4;
    static_assert(TH == 8 && TW % 4 == 0, "the depthwise phase maps one tile row to a warp, 4 outputs at a time");
    static_assert(WM1 * WN1 == 8 && WM2 * WN2 == 8, "8 warps");
    static_assert(MT2 % WM2 == 0 && NT2 % WN2 == 0 && NW2 % 2 == 0 && NW1 % 2 == 0, "even warp split");
    static_assert((HALVES * 2) % 16 == 0, "float area aligned");
    static_assert(HC >= C, "the LayerNorm prologue stages the residual in Hs");
};

template <int C, int TH, int TW, int WM1, int WN1, int WM2, int WN2, int ACT>
__global__ void __launch_bounds__(256) k_mlp_dw(mtk_mlp m) {
    MTK_PDL_WAIT();
    using K = MlpCfg<C, TH, TW, WM1, WN1, WM2, WN2>;
    extern __shared__ __align__(16) unsigned char smraw[];
    __half *sh = (__half *)smraw;
    float *sf = (float *)(smraw + K::HALVES * 2);
    __half *Xs = sh + K::X_OFF, *Hs = sh + K::H_OFF, *Gs = sh + K::G_OFF;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
    const int H = m.H, W = m.W, Ch = m.Ch;
    const int x0 = blockIdx.x * TW, y0 = blockIdx.y * TH, n = blockIdx.z;
    const __half *X = (const __half *)m.x + (int64_t)n * H * W * C;
    const __half *W1 = (const __half *)m.w1, *W2 = (const __half *)m.w2, *Wd = (const __half *)m.wdw;
    const __half *B1 = (const __half *)m.b1, *Bd = (const __half *)m.bdw, *B2 = (const __half *)m.b2;

    // input rows of the halo (zeros outside the image and in the padding rows)
    for (int i = tid; i < K::HR * (C / 8); i += 256) {
        const int r = i / (C / 8), c = (i % (C / 8)) * 8;
        const int yy = y0 - 1 + r / (TW + 2), xx = x0 - 1 + r % (TW + 2);
        const bool ok = r < K::HALO && yy >= 0 && yy < H && xx >= 0 && xx < W;
        cp_async16(Xs + r * K::LX + c, ok ? X + ((int64_t)yy * W + xx) * C + c : X, ok);
    }
    auto load_chunk = [&](int j, int buf) {
        const int c0 = j * HC;
        __half *w1 = sh + K::W1_OFF + buf * C * K::LH, *w2 = sh + K::W2_OFF + buf * HC * K::LW2;
        for (int i = tid; i < C * (HC / 8); i += 256) {
            const int k = i / (HC / 8), c = (i % (HC / 8)) * 8;
            cp_async16(w1 + k * K::LH + c, W1 + (int64_t)k * Ch + c0 + c, true);
        }
        for (int i = tid; i < HC * (C / 8); i += 256) {
            const int k = i / (C / 8), c = (i % (C / 8)) * 8;
            cp_async16(w2 + k * K::LW2 + c, W2 + (int64_t)(c0 + k) * C + c, true);
        }
        // small vectors as floats (plain loads: they are few)
        float *dw = sf + K::F_DW + buf * 9 * HC, *b1 = sf + K::F_B1 + buf * HC, *bd = sf + K::F_BD + buf * HC;
        for (int i = tid; i < 9 * HC; i += 256) dw[i] = __half2float(Wd[(i / HC) * Ch + c0 + i % HC]);
        if (tid < HC) {
            b1[tid] = B1 ? __half2float(B1[c0 + tid]) : 0.f;
            bd[tid] = Bd ? __half2float(Bd[c0 + tid]) : 0.f;
        }
        cp_async_commit();
    };
    if (tid < C) sf[K::F_B2 + tid] = B2 ? __half2float(B2[tid]) : 0.f;
    if (m.ln) {
        // the residual's second addend lands in Hs (free until fc1)
        const __half *Rr = (const __half *)m.res + (int64_t)n * H * W * C;
        for (int i = tid; i < K::HR * (C / 8); i += 256) {
            const int r = i / (C / 8), c = (i % (C / 8)) * 8;
            const int yy = y0 - 1 + r / (TW + 2), xx = x0 - 1 + r % (TW + 2);
            const bool ok = r < K::HALO && yy >= 0 && yy < H && xx >= 0 && xx < W;
            cp_async16(Hs + r * K::LX + c, ok ? Rr + ((int64_t)yy * W + xx) * C + c : Rr, ok);
        }
    }
    load_chunk(0, 0);
    if (m.ln) {
        // Residual LayerNorm of the halo rows, a warp a row, C / 32 channels
        // a lane, in the unfused kernel's formula (v = x + r in FP32, two-pass
        // variance); the normalized rows replace x in Xs, and the tile's own
        // pixels write x + r (the residual stream) as the unfused step does.
        cp_async_wait_all();
        __syncthreads();
        constexpr int CL = C / 32;  // channels a lane: 1 or 2
        float gm[CL], bt[CL];
#pragma unroll
        for (int e = 0; e < CL; e++) {
            gm[e] = __half2float(((const __half *)m.gamma)[lane * CL + e]);
            bt[e] = m.beta ? __half2float(((const __half *)m.beta)[lane * CL + e]) : 0.f;
        }
        __half *Sum = m.sum ? (__half *)m.sum + (int64_t)n * H * W * C : NULL;
        for (int r = warp; r < K::HALO; r += 8) {
            const int hy = r / (TW + 2), hx = r % (TW + 2), yy = y0 - 1 + hy, xx = x0 - 1 + hx;
            const bool in = yy >= 0 && yy < H && xx >= 0 && xx < W;  // warp-uniform
            if (!in) continue;  // stays zero (cp.async zero-filled it)
            float v[CL], s = 0.f;
#pragma unroll
            for (int e = 0; e < CL; e++) {
                v[e] = __half2float(Xs[r * K::LX + lane * CL + e]) + __half2float(Hs[r * K::LX + lane * CL + e]);
                s += v[e];
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
            const float mean = s / C;
            float q = 0.f;
#pragma unroll
            for (int e = 0; e < CL; e++) q += (v[e] - mean) * (v[e] - mean);
#pragma unroll
            for (int o = 16; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
            const float rstd = rsqrtf(q / C + m.eps);
#pragma unroll
            for (int e = 0; e < CL; e++) Xs[r * K::LX + lane * CL + e] = __float2half_rn((v[e] - mean) * rstd * gm[e] + bt[e]);
            if (Sum && hy >= 1 && hy <= TH && hx >= 1 && hx <= TW)
#pragma unroll
                for (int e = 0; e < CL; e++) Sum[((int64_t)yy * W + xx) * C + lane * CL + e] = __float2half_rn(v[e]);
        }
    }

    float acc2[K::MW2][K::NW2][4];
#pragma unroll
    for (int a = 0; a < K::MW2; a++)
#pragma unroll
        for (int b = 0; b < K::NW2; b++) acc2[a][b][0] = acc2[a][b][1] = acc2[a][b][2] = acc2[a][b][3] = 0.f;

    const int nch = Ch / HC;
    const int wm1 = warp / WN1, wn1 = warp % WN1, wm2 = warp / WN2, wn2 = warp % WN2;
    for (int j = 0; j < nch; j++) {
        const int buf = j & 1;
        cp_async_wait_all();
        __syncthreads();  // this chunk's weights (and the input) landed; the other buffer is free
        if (j + 1 < nch) load_chunk(j + 1, buf ^ 1);
        const __half *w1 = sh + K::W1_OFF + buf * C * K::LH, *w2 = sh + K::W2_OFF + buf * HC * K::LW2;
        const float *b1 = sf + K::F_B1 + buf * HC;

        // fc1: Hs[HR x 64] = Xs[HR x C] W1[C x 64] + b1; rows outside the image -> 0
        float2 bq[K::NW1];  // this thread's bias columns, the same for every row
#pragma unroll
        for (int q = 0; q < K::NW1; q++) bq[q] = *(const float2 *)(b1 + (wn1 * K::NW1 + q) * 8 + 2 * t);
        for (int mt = wm1; mt < K::MT1; mt += WM1) {
            float acc[K::NW1][4];
#pragma unroll
            for (int q = 0; q < K::NW1; q++) acc[q][0] = acc[q][1] = acc[q][2] = acc[q][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < C / 16; kk++) {
                uint32_t a[4];
                ldsm_a(a, Xs + mt * 16 * K::LX + kk * 16, K::LX, lane);
#pragma unroll
                for (int q = 0; q < K::NW1; q += 2) {
                    uint32_t b[4];
                    ldsm_b2(b, w1 + kk * 16 * K::LH + (wn1 * K::NW1 + q) * 8, K::LH, lane);
                    mma16816(acc[q], a, b);
                    mma16816(acc[q + 1], a, b + 2);
                }
            }
#pragma unroll
            for (int hr = 0; hr < 2; hr++) {
                const int r = mt * 16 + g + hr * 8;
                const int yy = y0 - 1 + r / (TW + 2), xx = x0 - 1 + r % (TW + 2);
                const bool in = r < K::HALO && yy >= 0 && yy < H && xx >= 0 && xx < W;
#pragma unroll
                for (int q = 0; q < K::NW1; q++) {
                    const int col = (wn1 * K::NW1 + q) * 8 + 2 * t;
                    __half2 v = in ? __floats2half2_rn(acc[q][2 * hr] + bq[q].x, acc[q][2 * hr + 1] + bq[q].y)
                                   : __floats2half2_rn(0.f, 0.f);
                    *(__half2 *)(Hs + r * K::LH + col) = v;
                }
            }
        }
        __syncthreads();

        // depthwise 3x3 + bias + act: warp w -> tile row w, lane -> 2 channels,
        // a 3x3 window sliding along the row
        {
            const int ty = warp, c = 2 * lane;
            const float *dw = sf + K::F_DW + buf * 9 * HC, *bd = sf + K::F_BD + buf * HC;
            float2 wk[9];
#pragma unroll
            for (int k = 0; k < 9; k++) wk[k] = make_float2(dw[k * HC + c], dw[k * HC + c + 1]);
            const float2 bias = make_float2(bd[c], bd[c + 1]);
            float2 win[3][3];  // [row][col] of the window
#pragma unroll
            for (int dy = 0; dy < 3; dy++)
#pragma unroll
                for (int dx = 0; dx < 2; dx++)
                    win[dy][dx + 1] = __half22float2(*(const __half2 *)(Hs + ((ty + dy) * (TW + 2) + dx) * K::LH + c));
            // 4 outputs at a time: their 9-tap sums and then their 8 activations
            // are independent chains the scheduler can interleave (one output
            // at a time left the warps waiting on the Horner chain's latency)
#pragma unroll
            for (int tx0 = 0; tx0 < TW; tx0 += 4) {
                float2 s[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {  // unrolled: the window shifts are register renames
                    const int tx = tx0 + u;
#pragma unroll
                    for (int dy = 0; dy < 3; dy++) {
                        win[dy][0] = win[dy][1];
                        win[dy][1] = win[dy][2];
                        win[dy][2] = __half22float2(*(const __half2 *)(Hs + ((ty + dy) * (TW + 2) + tx + 2) * K::LH + c));
                    }
                    s[u] = bias;
#pragma unroll
                    for (int dy = 0; dy < 3; dy++)
#pragma unroll
                        for (int dx = 0; dx < 3; dx++) {
                            s[u].x = fmaf(wk[dy * 3 + dx].x, win[dy][dx].x, s[u].x);
                            s[u].y = fmaf(wk[dy * 3 + dx].y, win[dy][dx].y, s[u].y);
                        }
                }
#pragma unroll
                for (int u = 0; u < 4; u++)
                    *(__half2 *)(Gs + (ty * TW + tx0 + u) * K::LH + c) = __floats2half2_rn(mtk_act_h(s[u].x, ACT), mtk_act_h(s[u].y, ACT));
            }
        }
        __syncthreads();

        // fc2: acc2[P x C] += Gs[P x 64] W2[64 x C]
#pragma unroll
        for (int kk = 0; kk < HC / 16; kk++) {
#pragma unroll
            for (int a = 0; a < K::MW2; a++) {
                uint32_t af[4];
                ldsm_a(af, Gs + ((wm2 * K::MW2 + a) * 16) * K::LH + kk * 16, K::LH, lane);
#pragma unroll
                for (int q = 0; q < K::NW2; q += 2) {
                    uint32_t b[4];
                    ldsm_b2(b, w2 + kk * 16 * K::LW2 + (wn2 * K::NW2 + q) * 8, K::LW2, lane);
                    mma16816(acc2[a][q], af, b);
                    mma16816(acc2[a][q + 1], af, b + 2);
                }
            }
        }
    }

    // fc2 bias, FP16 out
    __half *Y = (__half *)m.y + (int64_t)n * H * W * m.ldy;
    const float *b2 = sf + K::F_B2;
#pragma unroll
    for (int a = 0; a < K::MW2; a++)
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            const int p = (wm2 * K::MW2 + a) * 16 + g + hr * 8;
            const int yy = y0 + p / TW, xx = x0 + p % TW;
            if (yy >= H || xx >= W) continue;
            __half *row = Y + ((int64_t)yy * W + xx) * m.ldy;
#pragma unroll
            for (int q = 0; q < K::NW2; q++) {
                const int col = (wn2 * K::NW2 + q) * 8 + 2 * t;
                *(__half2 *)(row + col) = __floats2half2_rn(acc2[a][q][2 * hr] + b2[col], acc2[a][q][2 * hr + 1] + b2[col + 1]);
            }
        }
}

template <int C, int TH, int TW, int WM1, int WN1, int WM2, int WN2, int ACT>
cudaError_t launch_mlp_act(cudaStream_t s, const mtk_mlp *m) {
    using K = MlpCfg<C, TH, TW, WM1, WN1, WM2, WN2>;
    auto kern = k_mlp_dw<C, TH, TW, WM1, WN1, WM2, WN2, ACT>;
    /* idempotent; launches happen when a plan is built and captured, not per frame */
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)K::SMEM);
    if (e != cudaSuccess) return e;
    dim3 grid((m->W + TW - 1) / TW, (m->H + TH - 1) / TH, m->N);
    return mtk_launch(kern, grid, dim3(256), K::SMEM, s, *m);
}

template <int C, int TH, int TW, int WM1, int WN1, int WM2, int WN2>
cudaError_t launch_mlp(cudaStream_t s, const mtk_mlp *m) {
    switch (m->act) {
    case 0: return launch_mlp_act<C, TH, TW, WM1, WN1, WM2, WN2, 0>(s, m);
    case 1: return launch_mlp_act<C, TH, TW, WM1, WN1, WM2, WN2, 1>(s, m);
    case 2: return launch_mlp_act<C, TH, TW, WM1, WN1, WM2, WN2, 2>(s, m);
    default: return launch_mlp_act<C, TH, TW, WM1, WN1, WM2, WN2, 3>(s, m);
    }
}

}  // namespace

extern "C" int mtk_mlp_supported(int C, int Ch) { return (C == 32 || C == 64) && Ch > 0 && Ch % HC == 0; }

extern "C" cudaError_t mtk_mlp_dw(cudaStream_t s, const mtk_mlp *m) {
    if ((m->ln && (!m->res || !m->gamma || (uintptr_t)m->res % 16)) || m->act < 0 || m->act > 3 || !mtk_mlp_supported(m->C, m->Ch) || m->ldy < m->C || m->ldy % 2 || (uintptr_t)m->x % 16 || (uintptr_t)m->y % 4 ||
        (uintptr_t)m->w1 % 16 || (uintptr_t)m->w2 % 16)
        return cudaErrorInvalidValue;
    if (!m->N || !m->H || !m->W) return cudaSuccess;
    // stage 1 (C 32): 8 x 16 pixels a block; stage 2 (C 64, a quarter of the
    // pixels): 8 x 8, so that the grid still covers the GPU about twice
    if (m->C == 32) return launch_mlp<32, 8, 16, 4, 2, 8, 1>(s, m);
    return launch_mlp<64, 8, 8, 4, 2, 4, 2>(s, m);
}
