/* The INT8 GEMM micro-kernel on AVX-512 VNNI (vpdpbusd), for the QConv /
 * QLinear kernels of kernels_quant.c when the CPU has it (Xeon since
 * Cascade Lake, EPYC since Zen 4).
 *
 * vpdpbusd multiplies 4 unsigned bytes by 4 signed bytes and adds the four
 * products to an int32 lane, without saturation: 64 multiply-adds per
 * instruction, against 16 (and a separate add) for the AVX2 path's
 * vpmaddwd on int16 pairs.  Activations are signed, so they enter offset
 * by 128 (x + 128 in 0..255, made by flipping the sign bit) and the offset
 * comes back out exactly: sum (x + 128) w = sum x w + 128 sum w, with
 * 128 sum w per output channel computed once when the weights are packed.
 * Every step is integer arithmetic on values that cannot overflow int32
 * (|sum (x+128) w| <= K * 255 * 127 < 2^31 for K <= MT_QVNNI_MAX_K), so
 * the result is bit-identical with the AVX2 path and the contract
 * (graph/qops.h).
 *
 * Layouts (kernels_quant.c packs them):
 *   A: per output channel, K/4 int32, each holding 4 consecutive int8
 *      weights (k = 4q .. 4q+3, zeros past K); rows padded to 8 per block;
 *   B: per tile, [q][column][4] bytes: the 4 activations x + 128 of k =
 *      4q .. 4q+3 at that column. */
#include "cpu/kernels_quant.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#ifdef __clang__ /* clang ignores GCC's target pragma */
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni")
#endif

/* acc[r][0..32) = sum_q dot4(A[r][q], B[q][t0 .. t0+32)) for the 8 rows of
 * a (row stride Q) and 32 columns of b starting at t0 (tile width tile). */
void mt_qvnni_micro(const int32_t *a, int64_t Q, const uint8_t *b, int tile, int t0, int32_t acc[8][32]) {
    __m512i c[8][2];
    for (int r = 0; r < 8; r++) c[r][0] = c[r][1] = _mm512_setzero_si512();
    for (int64_t q = 0; q < Q; q++) {
        const uint8_t *bp = b + ((size_t)q * tile + t0) * 4;
        __m512i b0 = _mm512_loadu_si512((const void *)bp);
        __m512i b1 = _mm512_loadu_si512((const void *)(bp + 64));
        for (int r = 0; r < 8; r++) {
            __m512i av = _mm512_set1_epi32(a[r * Q + q]);
            c[r][0] = _mm512_dpbusd_epi32(c[r][0], b0, av);
            c[r][1] = _mm512_dpbusd_epi32(c[r][1], b1, av);
        }
    }
    for (int r = 0; r < 8; r++) {
        _mm512_storeu_si512((void *)acc[r], c[r][0]);
        _mm512_storeu_si512((void *)(acc[r] + 16), c[r][1]);
    }
}

/* dst[4 t + j] = rows[j][t] for t < n (n a multiple of 16), j < 4: four
 * contiguous im2col rows interleaved into the [column][4] layout with
 * byte and word unpacks, 16 columns at a time. */
void mt_qvnni_interleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, const uint8_t *r3, uint8_t *dst, int n) {
    for (int t = 0; t < n; t += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(r0 + t)), b = _mm_loadu_si128((const __m128i *)(r1 + t));
        __m128i c = _mm_loadu_si128((const __m128i *)(r2 + t)), d = _mm_loadu_si128((const __m128i *)(r3 + t));
        __m128i ab_lo = _mm_unpacklo_epi8(a, b), ab_hi = _mm_unpackhi_epi8(a, b); /* a0 b0 a1 b1 ... */
        __m128i cd_lo = _mm_unpacklo_epi8(c, d), cd_hi = _mm_unpackhi_epi8(c, d);
        _mm_storeu_si128((__m128i *)(dst + 4 * t), _mm_unpacklo_epi16(ab_lo, cd_lo)); /* a0 b0 c0 d0 a1 ... */
        _mm_storeu_si128((__m128i *)(dst + 4 * t + 16), _mm_unpackhi_epi16(ab_lo, cd_lo));
        _mm_storeu_si128((__m128i *)(dst + 4 * t + 32), _mm_unpacklo_epi16(ab_hi, cd_hi));
        _mm_storeu_si128((__m128i *)(dst + 4 * t + 48), _mm_unpackhi_epi16(ab_hi, cd_hi));
    }
}

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

int mt_qvnni_available(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
}

#else /* not x86-64 with GCC or clang: never chosen */
void mt_qvnni_interleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, const uint8_t *r3, uint8_t *dst, int n) {
    (void)r0, (void)r1, (void)r2, (void)r3, (void)dst, (void)n;
}
void mt_qvnni_micro(const int32_t *a, int64_t Q, const uint8_t *b, int tile, int t0, int32_t acc[8][32]) {
    (void)a, (void)Q, (void)b, (void)tile, (void)t0, (void)acc;
}
int mt_qvnni_available(void) { return 0; }
#endif
