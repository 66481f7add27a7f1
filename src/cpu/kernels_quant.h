/* kernels_quant.h: what the INT8 kernels (kernels_quant.c) share with
 * their AVX-512 VNNI micro-kernel (kernels_quant_vnni.c), which is compiled
 * for that instruction set alone and chosen at run time. */
#ifndef MT_CPU_KERNELS_QUANT_H
#define MT_CPU_KERNELS_QUANT_H

#include <stdint.h>

/* Largest K (weights per output channel) for which the offset activations'
 * sums fit int32: K * 255 * 127 < 2^31. */
#define MT_QVNNI_MAX_K 66000

/* 1 if this CPU runs mt_qvnni_micro (AVX-512 F, BW and VNNI). */
int mt_qvnni_available(void);
/* acc[r][t] = sum_q dot4(a[r * Q + q], b[(q * tile + t0 + t) * 4 ..]) for
 * r < 8, t < 32: a holds 4 int8 weights per int32, b 4 activations + 128
 * per column (uint8).  Only called when mt_qvnni_available(). */
void mt_qvnni_micro(const int32_t *a, int64_t Q, const uint8_t *b, int tile, int t0, int32_t acc[8][32]);

/* dst[4 t + j] = rows j (r0..r3)[t] for t < n, n a multiple of 16. */
void mt_qvnni_interleave4(const uint8_t *r0, const uint8_t *r1, const uint8_t *r2, const uint8_t *r3, uint8_t *dst, int n);

#endif
