/* Per-element oracles for the C tests (the counterparts of
 * tests/tools/mtmi_testutil.py's compare / check_classes / nondegenerate):
 * a result is compared element by element with an independent reference,
 * and a network's reference output is first checked to be discriminative,
 * so that a wrong kernel cannot hide behind a near-constant output. */
#ifndef MT_TESTS_ORACLE_H
#define MT_TESTS_ORACLE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* |got - ref| <= atol + rtol |ref| for every element, all finite.  Prints
 * the largest absolute error, the worst element and the share of its
 * tolerance it uses.  Returns 1 if within. */
static inline int oracle_close(const char *tag, const float *got, const float *ref, int64_t n, double atol, double rtol) {
    int64_t bad = 0, worst = 0, nonfinite = 0;
    double maxabs = 0, use = -1;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            nonfinite++;
            continue;
        }
        double d = fabs((double)got[i] - ref[i]), allow = atol + rtol * fabs((double)ref[i]);
        if (d > maxabs) maxabs = d;
        if (d > allow) bad++;
        double u = allow > 0 ? d / allow : (d > 0 ? INFINITY : 0);
        if (u > use) {
            use = u;
            worst = i;
        }
    }
    int ok = n > 0 && bad == 0 && nonfinite == 0;
    printf("  %s: max abs %.3e, worst element %lld got %.7g ref %.7g uses %.1f%% of its tolerance (atol %g + rtol %g |ref|)",
           tag, maxabs, (long long)worst, n ? got[worst] : 0.0, n ? ref[worst] : 0.0, use * 100, atol, rtol);
    if (bad || nonfinite) printf("; %lld of %lld outside, %lld non-finite", (long long)bad, (long long)n, (long long)nonfinite);
    printf("  %s\n", ok ? "ok" : "FAIL");
    return ok;
}

/* Argmax over c channels of [b, c, hw] logits at pixel i of image k. */
static inline int oracle_argmax(const float *x, int c, int64_t hw, int64_t k, int64_t i, float *top, float *second) {
    const float *p = x + (size_t)k * c * hw + i;
    int best = 0;
    float b = p[0], s = -INFINITY;
    for (int j = 1; j < c; j++) {
        float v = p[(size_t)j * hw];
        if (v > b) {
            s = b;
            b = v;
            best = j;
        } else if (v > s) s = v;
    }
    if (top) *top = b;
    if (second) *second = s;
    return best;
}

/* The class map of [b, c, hw] logits is discriminative: >= min_classes
 * classes each cover >= min_share of the pixels. */
static inline int oracle_classes_spread(const char *tag, const float *logits, int64_t b, int c, int64_t hw, int min_classes,
                                 double min_share) {
    int64_t cnt[256] = {0};
    if (c > 256) return 0;
    for (int64_t k = 0; k < b; k++)
        for (int64_t i = 0; i < hw; i++) cnt[oracle_argmax(logits, c, hw, k, i, NULL, NULL)]++;
    int n = 0;
    int64_t mx = 0;
    for (int j = 0; j < c; j++) {
        if (cnt[j] >= min_share * (double)(b * hw)) n++;
        if (cnt[j] > mx) mx = cnt[j];
    }
    int ok = n >= min_classes;
    printf("  %s: reference class map has %d classes covering >= %g%% of pixels each (largest %.1f%%; need %d)  %s\n", tag, n,
           min_share * 100, 100.0 * mx / (double)(b * hw), min_classes, ok ? "ok" : "DEGENERATE");
    return ok;
}

static inline int oracle_cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Depth spread: 99th minus 1st percentile >= min_spread. */
static inline int oracle_depth_spread(const char *tag, const float *d, int64_t n, double min_spread) {
    float *s = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!s || n <= 0) {
        free(s);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) s[i] = d[i];
    qsort(s, (size_t)n, sizeof(float), oracle_cmp_float);
    double p1 = s[(int64_t)(0.01 * (n - 1))], p99 = s[(int64_t)(0.99 * (n - 1))];
    free(s);
    int ok = p99 - p1 >= min_spread;
    printf("  %s: reference depth 1st..99th percentile %.3f..%.3f (spread %.3f, need %g)  %s\n", tag, p1, p99, p99 - p1,
           min_spread, ok ? "ok" : "DEGENERATE");
    return ok;
}

/* The MTMI network's reference outputs (seg logits [b,19,hw], depth
 * [b,1,hw]) are discriminative: >= 8 classes of >= 1 %, depth spread
 * >= 0.3. */
static inline int oracle_nondegenerate(const char *tag, const float *seg, const float *depth, int64_t b, int64_t hw) {
    int a = oracle_classes_spread(tag, seg, b, 19, hw, 8, 0.01);
    return oracle_depth_spread(tag, depth, b * hw, 0.3) && a;
}

/* Per-pixel class agreement of [b, c, hw] logits: the share of pixels whose
 * argmax equals the reference's. */
static inline double oracle_class_agreement(const float *got, const float *ref, int64_t b, int c, int64_t hw) {
    int64_t same = 0;
    for (int64_t k = 0; k < b; k++)
        for (int64_t i = 0; i < hw; i++)
            same += oracle_argmax(got, c, hw, k, i, NULL, NULL) == oracle_argmax(ref, c, hw, k, i, NULL, NULL);
    return b * hw > 0 ? (double)same / (double)(b * hw) : 0;
}

/* Seeded test data: splitmix64 + Box-Muller, independent of the library. */
typedef struct oracle_rng {
    uint64_t s;
} oracle_rng;
static inline uint64_t oracle_next(oracle_rng *r) {
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}
static inline double oracle_uniform(oracle_rng *r) { return (oracle_next(r) >> 11) * (1.0 / 9007199254740992.0); }
static inline float oracle_normal(oracle_rng *r) {
    double u1 = oracle_uniform(r), u2 = oracle_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* A test's base seed: $MTMI_TEST_SEED if set, else the test's default;
 * printed so that any run can be repeated. */
static inline uint64_t oracle_seed(uint64_t def) {
    const char *e = getenv("MTMI_TEST_SEED");
    uint64_t s = e && *e ? strtoull(e, NULL, 0) : def;
    printf("seed %llu (set MTMI_TEST_SEED to change)\n", (unsigned long long)s);
    return s;
}

#endif
