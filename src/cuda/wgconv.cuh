/* The 3x3 convolution (stride 1, padding 1) on Hopper's wgmma with the
 * weights resident in shared memory, for sm_90a: the main loop shared by
 * the INT8 kernel (qconv.cu, k_qconv_wr: s8 x s8 -> s32, wgmma k32) and the
 * FP16 one (hconv.cu, k_hconv_wr: f16 x f16 -> f32, k16).  Both see their
 * operands as bytes: 32 bytes of a pixel's K (32 int8 or 16 FP16 channels)
 * are one wgmma K step of either type, both K-major, so the layouts, the
 * descriptors and the pipeline are the same; the MMA instruction and the
 * epilogue are the caller's.
 *
 * Why this shape (k_qconv_wg, one warpgroup and one tile a block, lost to
 * mma.sync on an H100, 2026-12-08, with its tensor pipe busy 15-17 % of the
 * time: nothing overlapped a tile's epilogue or its first loads, and each
 * block fetched its channels' weights again, ~42 bytes a clock an SM from
 * L2 for the depth head's 256x256 layer, against the ~24 that L2 gives
 * each SM):
 *   - persistent blocks of NWG warpgroups, the grid sized by the SM budget
 *     (wr_grid);
 *   - the block's BN output channels' weights, every 32-byte K chunk, go
 *     to shared memory once, before the halo prologue (9 K BN bytes: a
 *     configuration fits only where they do, wr_smem);
 *   - each warpgroup runs its own tiles (tile gw, gw + G, ..., gw its index
 *     in the grid, G the grid's warpgroups) as one stream of (tile, chunk)
 *     items through its own S-stage halo ring with its own named barrier,
 *     so the next tile's first halo loads are in flight during a tile's
 *     epilogue, and the warpgroups drift apart: one's epilogue runs beside
 *     another's MMAs.
 *
 * Layouts (core matrices of 8 rows x 16 bytes, no swizzling):
 *   halo   [k half][halo pixel][16 bytes], (8 MT + 2) x 10 pixels: the 8
 *          pixels of a tile row at a tap are 8 consecutive halo pixels (one
 *          core matrix at any 16-byte start), the next image row HX pixels
 *          on (sbo), the other k half HHALF bytes on (lbo);
 *   weights [chunk][tap][k half][BN rows][16 bytes] (sbo 128, lbo WHALF).
 * The halves' distances are 64 modulo 128, so a warp's 16-byte stores of
 * (pixel, half) pairs fill all 32 banks.
 *
 * The accumulators of tile row block mt: warp w of a warpgroup holds m64
 * rows 16w + g and 16w + g + 8 (g = lane / 4), which are image rows oy0 +
 * 8 mt + 2w and the one below, column ox0 + g; register 4j + i is column
 * 8j + 2t + i % 2 (t = lane % 4) of row g + 8 (i / 2) (wgmma.cuh). */
#ifndef MT_CUDA_WGCONV_CUH
#define MT_CUDA_WGCONV_CUH

#include <stdint.h>

#include "launch.cuh"
#include "mma.cuh"
#include "wgmma.cuh"

/* The convolution in bytes: output size = input size (stride 1, pad 1).
 * K may be a part of the whole (koff, KB): a caller that splits K runs
 * one launch a part and adds their sums (hconv.cu). */
struct wr_geom {
    const unsigned char *x; /* pixel (n, iy, ix) at x + n xs0 + (iy W + ix) xpix (16-byte aligned) */
    int64_t xs0;
    int64_t xpix;
    const unsigned char *w; /* output channel r's tap t at w + r wrow + t wtap */
    int64_t wrow, wtap;
    int rows;               /* weight rows that exist: r >= rows reads zeros */
    int N, H, W;
    int64_t koff;           /* the part's first byte of K, in a pixel and in a tap */
    int KB;                 /* the part's bytes of K, a multiple of 32 */
};

template <int BN, int MT, int NWG, int S> struct WR {
    static constexpr int TX = 8, TY = 8 * MT, NT = 128 * NWG;
    static constexpr int HX = TX + 2, HY = TY + 2, HP = HX * HY;
    static constexpr int HHALF = (HP * 16 + 127) / 128 * 128 + 64;
    static constexpr int HALO_BYTES = 2 * HHALF; /* a multiple of 128 */
    static constexpr int HALO_ALL = NWG * S * HALO_BYTES;
    static constexpr int WHALF = BN * 16 + 64, WTAP = 2 * WHALF, WCHUNK = 9 * WTAP;
    static constexpr int H_IT = (HP * 2 + 127) / 128; /* a warpgroup's halo pieces a thread */
};

#define WR_SMEM_MAX (227 * 1024) /* sm_90's dynamic shared memory a block */

/* dynamic shared memory for KB bytes of K: the halo rings and the weights */
template <int BN, int MT, int NWG, int S> static inline int64_t wr_smem(int64_t KB) {
    typedef WR<BN, MT, NWG, S> T;
    return T::HALO_ALL + KB / 32 * T::WCHUNK;
}

/* The grid: one block an SM of the budget (mtk_sm_budget), split between
 * the ncb channel blocks, then as few blocks as give every warpgroup the
 * same number of tiles (the last round is not left to a few). */
static inline dim3 wr_grid(int64_t ntiles, int ncb, int nwg) {
    int per = mtk_sm_budget() / ncb;
    if (per < 1) per = 1;
    const int64_t rounds = (ntiles + (int64_t)per * nwg - 1) / ((int64_t)per * nwg);
    const int64_t blocks = (ntiles + nwg * rounds - 1) / (nwg * rounds);
    return dim3((unsigned)blocks, (unsigned)ncb);
}

/* bar.sync on named barrier id of n threads (a warpgroup's own: ids
 * 1..NWG; 0 is __syncthreads') */
static __device__ __forceinline__ void wr_bar_sync(int id, int n) { asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(n) : "memory"); }

/* The block's part of the convolution (block y: output channels BN y ..):
 * Mma::mma(acc[mt], a descriptor, b descriptor) adds one K step of an m64
 * tile; epi(acc, n, oy0, ox0) stores a finished tile (every thread of the
 * warpgroup calls it) and may leave acc as it likes: it is zeroed after. */
template <int BN, int MT, int NWG, int S, class Mma, class Acc, class Epi>
static __device__ __forceinline__ void wr_conv(const wr_geom &gm, unsigned char *smem, Epi &&epi) {
    typedef WR<BN, MT, NWG, S> T;
    const int tid = threadIdx.x, wg = tid >> 7, wt = tid & 127;
    const int tiles_x = gm.W / T::TX, tiles_y = gm.H / T::TY;
    const int ntiles = gm.N * tiles_y * tiles_x;
    const int n0 = blockIdx.y * BN;
    const int NC = gm.KB >> 5;
    unsigned char *const wsm = smem + T::HALO_ALL;

    /* the weights, piece p = ((r 9 + tap) NC + c) 2 + h: consecutive
     * threads read consecutive bytes of a weight row */
    {
        const int pieces = BN * 9 * NC * 2;
#pragma unroll 1
        for (int p = tid; p < pieces; p += T::NT) {
            const int h = p & 1, rc = p >> 1, c = rc % NC, rt = rc / NC, tap = rt % 9, r = rt / 9;
            const bool ok = n0 + r < gm.rows;
            cp_async16(wsm + c * T::WCHUNK + tap * T::WTAP + h * T::WHALF + r * 16,
                       ok ? gm.w + (n0 + r) * gm.wrow + tap * gm.wtap + gm.koff + c * 32 + h * 16 : gm.w, ok);
        }
        cp_async_commit();
    }

    /* this warpgroup's items: chunk c of its j-th tile is item j NC + c */
    const int gw = blockIdx.x * NWG + wg, gstride = gridDim.x * NWG;
    const int my_tiles = gw < ntiles ? (ntiles - gw + gstride - 1) / gstride : 0;
    const int nitems = my_tiles * NC;
    /* this thread's halo pieces (pixel, 16-byte half) of any tile: offsets
     * in the tile's halo and in the stage (-1: none) */
    int hdy[T::H_IT], hdx[T::H_IT], hhb[T::H_IT], hoff[T::H_IT];
#pragma unroll
    for (int i = 0; i < T::H_IT; i++) {
        const int piece = wt + i * 128, hp = piece >> 1, hh = piece & 1;
        hdy[i] = hp / T::HX - 1, hdx[i] = hp % T::HX - 1, hhb[i] = hh * 16;
        hoff[i] = piece < T::HP * 2 ? hh * T::HHALF + hp * 16 : -1;
    }
    unsigned char *const ring = smem + wg * S * T::HALO_BYTES;
    auto tile_at = [&](int j, int &n, int &oy0, int &ox0) {
        const int tile = gw + j * gstride, rest = tile / tiles_x;
        ox0 = (tile - rest * tiles_x) * T::TX;
        n = rest / tiles_y;
        oy0 = (rest - n * tiles_y) * T::TY;
    };
    auto load_item = [&](int k) {
        const int j = k / NC, c = k - j * NC;
        int n, oy0, ox0;
        tile_at(j, n, oy0, ox0);
        unsigned char *const base = ring + (k % S) * T::HALO_BYTES;
#pragma unroll
        for (int i = 0; i < T::H_IT; i++) {
            if (T::H_IT * 128 == T::HP * 2 || hoff[i] >= 0) {
                const int iy = oy0 + hdy[i], ix = ox0 + hdx[i];
                const bool ok = iy >= 0 && iy < gm.H && ix >= 0 && ix < gm.W;
                cp_async16(base + hoff[i],
                           ok ? gm.x + n * gm.xs0 + ((int64_t)iy * gm.W + ix) * gm.xpix + gm.koff + c * 32 + hhb[i] : gm.x, ok);
            }
        }
    };

    Acc acc[MT][BN / 2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < BN / 2; i++) acc[mt][i] = Acc(0);
#pragma unroll 1
    for (int s = 0; s < S - 1; s++) {
        if (s < nitems) load_item(s);
        cp_async_commit();
    }
    /* the weights (every thread's oldest group) in place for every
     * warpgroup: the block's one barrier */
    cp_async_wait<S - 1>();
    wg_proxy_fence();
    __syncthreads();
    const int bar = 1 + wg;
    const unsigned hs0 = smem_u32(ring), ws0 = smem_u32(wsm);
#pragma unroll 1
    for (int k = 0; k < nitems; k++) {
        /* item k landed (this thread's part), and every warp of the
         * warpgroup is past item k - 1's MMAs, whose slot the load below
         * refills */
        cp_async_wait<S - 2>();
        wg_proxy_fence();
        wr_bar_sync(bar, 128);
        if (k + S - 1 < nitems) load_item(k + S - 1);
        cp_async_commit();
        const int j = k / NC, c = k - j * NC;
        const unsigned hb = hs0 + (k % S) * T::HALO_BYTES, wb = ws0 + c * T::WCHUNK;
        wg_fence();
#pragma unroll
        for (int ky = 0; ky < 3; ky++)
#pragma unroll
            for (int kx = 0; kx < 3; kx++) {
                const uint64_t db = wg_desc(wb + (ky * 3 + kx) * T::WTAP, T::WHALF, 128);
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
                    Mma::mma(acc[mt], wg_desc(hb + ((mt * 8 + ky) * T::HX + kx) * 16, T::HHALF, T::HX * 16), db);
            }
        wg_commit();
        wg_wait<0>();
        if (c == NC - 1) { /* the tile's last chunk */
            int n, oy0, ox0;
            tile_at(j, n, oy0, ox0);
            epi(acc, n, oy0, ox0);
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int i = 0; i < BN / 2; i++) acc[mt][i] = Acc(0);
        }
    }
    cp_async_wait<0>();
}

#endif
