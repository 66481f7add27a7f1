/* Small helpers shared by the CUDA test programs: FP16 rounding, the plans'
 * activations in double for the CPU references, and the median of timings. */
#ifndef MT_TESTS_CUDA_TESTUTIL_H
#define MT_TESTS_CUDA_TESTUTIL_H

#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "cuda/cuda_ck.h"

/* x rounded to FP16 (round to nearest) */
static inline float h16(float x) { return mt_half_to_float(mt_float_to_half(x)); }

/* 0 none, 1 relu, 2 sigmoid, 3 gelu (erf form) */
static inline double act_ref(double x, int act) {
    switch (act) {
    case 1: return x > 0 ? x : 0;
    case 2: return 1.0 / (1.0 + exp(-x));
    case 3: return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
    default: return x;
    }
}

static inline int cmp_float_asc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* n FP16 values drawn normal * scale from r (malloc'd, at least one) */
static inline uint16_t *rnd_half(mt_rng *r, int64_t n, float scale) {
    uint16_t *a = (uint16_t *)malloc(sizeof(uint16_t) * (n ? n : 1));
    for (int64_t i = 0; i < n; i++) a[i] = mt_float_to_half(mt_rng_normal(r) * scale);
    return a;
}

/* a device copy of `bytes` of host memory (16 bytes allocated for none) */
static inline void *dev_copy(const void *h, size_t bytes) {
    void *d;
    CK(cudaMalloc(&d, bytes ? bytes : 16));
    if (bytes) CK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

/* the median of n timings (sorts t) */
static inline float median_of(float *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_float_asc);
    return t[n / 2];
}

#endif
