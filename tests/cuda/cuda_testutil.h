/* Small helpers shared by the CUDA test programs: FP16 rounding, the plans'
 * activations in double for the CPU references, and the median of timings. */
#ifndef MT_TESTS_CUDA_TESTUTIL_H
#define MT_TESTS_CUDA_TESTUTIL_H

#include <math.h>
#include <stdlib.h>

#include "core/core.h"

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

/* the median of n timings (sorts t) */
static inline float median_of(float *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_float_asc);
    return t[n / 2];
}

#endif
