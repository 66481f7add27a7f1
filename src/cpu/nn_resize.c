/* Resize (opsets 10..19) and Upsample: nearest (every nearest_mode),
 * N-linear and cubic, every coordinate_transformation_mode, with the
 * arithmetic in float like ONNX Runtime so that nearest picks the same
 * pixels.
 *
 * Interpolation is separable, so each resized axis is one pass of taps
 * (index, weight) over a [outer, L, inner] view.  Bilinear over the last
 * two axes (the network's x2/x4 and resize-to-size) has its own path:
 * horizontal interpolation of the (at most two) source rows an output row
 * needs, cached per thread, then one vertical blend, parallel over planes
 * and row blocks. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/kernels_nn.h"
#include "graph/nn_resize.h"
#include "graph/ops.h"

enum { CT_HALF_PIXEL, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_HALF_PIXEL_NN, CT_TF_CROP_RESIZE, CT_HALF_PIXEL_SYM };
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };
enum { MODE_NEAREST, MODE_LINEAR, MODE_CUBIC };

typedef struct taps {
    int ntap;       /* taps per output coordinate (1, 2 or 4) */
    int64_t *idx;   /* [O * ntap] */
    float *w;       /* [O * ntap] */
    uint8_t *ex;    /* [O]: 1 = extrapolation value */
    int identity;
} taps;

static float transform(int ct, float o, float scale, int64_t L, int64_t O, float roi_s, float roi_e) {
    switch (ct) {
    case CT_HALF_PIXEL: return (o + 0.5f) / scale - 0.5f;
    case CT_PYTORCH_HALF_PIXEL: return O > 1 ? (o + 0.5f) / scale - 0.5f : 0.0f;
    case CT_ALIGN_CORNERS: return O == 1 ? 0.0f : o * (float)(L - 1) / (float)(O - 1);
    case CT_ASYMMETRIC: return o / scale;
    case CT_TF_HALF_PIXEL_NN: return (o + 0.5f) / scale;
    case CT_TF_CROP_RESIZE:
        return O > 1 ? roi_s * (float)(L - 1) + o * (roi_e - roi_s) * (float)(L - 1) / (float)(O - 1) : 0.5f * (roi_s + roi_e) * (float)(L - 1);
    case CT_HALF_PIXEL_SYM: {
        float adj = (float)O / (scale * (float)L);
        float center = (float)L / 2.0f;
        float off = center * (1.0f - adj);
        return off + (o + 0.5f) / scale - 0.5f;
    }
    }
    return 0.0f;
}

static int64_t nearest_index(int nm, float x, int down) {
    switch (nm) {
    case NM_ROUND_PREFER_FLOOR:
        if (x == (float)(int64_t)x + 0.5f) return (int64_t)x;
        return (int64_t)roundf(x);
    case NM_ROUND_PREFER_CEIL: return (int64_t)roundf(x);
    case NM_FLOOR: return (int64_t)floorf(x);
    case NM_CEIL: return (int64_t)ceilf(x);
    default: return down ? (int64_t)ceilf(x) : (int64_t)x;
    }
}

static void cubic_coeffs(float s, float A, float c[4]) {
    float s1 = s + 1.0f, s2 = 1.0f - s, s3 = 2.0f - s;
    c[0] = ((A * s1 - 5.0f * A) * s1 + 8.0f * A) * s1 - 4.0f * A;
    c[1] = ((A + 2.0f) * s - (A + 3.0f)) * s * s + 1.0f;
    c[2] = ((A + 2.0f) * s2 - (A + 3.0f)) * s2 * s2 + 1.0f;
    c[3] = ((A * s3 - 5.0f * A) * s3 + 8.0f * A) * s3 - 4.0f * A;
}

static int build_taps(taps *t, int mode, int ct, int nm, float scale, int64_t L, int64_t O, float roi_s, float roi_e, float cubic_a,
                      int exclude_outside) {
    t->ntap = mode == MODE_NEAREST ? 1 : mode == MODE_LINEAR ? 2 : 4;
    t->idx = malloc(sizeof(int64_t) * O * t->ntap);
    t->w = malloc(sizeof(float) * O * t->ntap);
    t->ex = calloc(O, 1);
    if (!t->idx || !t->w || !t->ex) return -1;
    int extrap = ct == CT_TF_CROP_RESIZE;
    t->identity = L == O && !extrap;
    for (int64_t o = 0; o < O; o++) {
        float x = transform(ct, (float)o, scale, L, O, roi_s, roi_e);
        int64_t *ix = t->idx + o * t->ntap;
        float *w = t->w + o * t->ntap;
        if (extrap && (x < 0.0f || x > (float)(L - 1))) t->ex[o] = 1;
        if (mode == MODE_NEAREST) {
            int64_t i = nearest_index(nm, x, scale < 1.0f);
            ix[0] = i < 0 ? 0 : i >= L ? L - 1 : i;
            w[0] = 1.0f;
        } else if (mode == MODE_LINEAR) {
            float xc = x < 0.0f ? 0.0f : x > (float)(L - 1) ? (float)(L - 1) : x;
            int64_t x1 = (int64_t)xc;
            if (x1 > L - 1) x1 = L - 1;
            int64_t x2 = x1 + 1 < L ? x1 + 1 : L - 1;
            float d1 = fabsf(xc - (float)x1), d2 = fabsf(xc - (float)x2);
            if (x1 == x2) d1 = d2 = 0.5f;
            ix[0] = x1;
            ix[1] = x2;
            w[0] = d2;
            w[1] = d1;
        } else {
            float xf = floorf(x);
            int64_t xi = (int64_t)xf;
            float c[4];
            cubic_coeffs(x - xf, cubic_a, c);
            float sum = 0.0f;
            for (int k = 0; k < 4; k++) {
                int64_t i = xi - 1 + k;
                if (exclude_outside && (i < 0 || i >= L)) c[k] = 0.0f;
                sum += c[k];
                ix[k] = i < 0 ? 0 : i >= L ? L - 1 : i;
            }
            for (int k = 0; k < 4; k++) w[k] = exclude_outside && sum != 0.0f ? c[k] / sum : c[k];
        }
        /* Identity when all the weight sits on source index o. */
        float on = 0.0f, off = 0.0f;
        for (int k = 0; k < t->ntap; k++) {
            if (ix[k] == o) on += w[k];
            else off += fabsf(w[k]);
        }
        if (on != 1.0f || off != 0.0f) t->identity = 0;
    }
    return 0;
}

static void free_taps(taps *t) {
    free(t->idx);
    free(t->w);
    free(t->ex);
}

/* One axis: src [outer, L, inner] -> dst [outer, O, inner]. */
static void pass_axis(const float *src, float *dst, int64_t outer, int64_t L, int64_t O, int64_t inner, const taps *t, float extrap,
                      int nth) {
    #pragma omp parallel for num_threads(nth) schedule(static) if (outer * O * inner > 16384)
    for (int64_t r = 0; r < outer * O; r++) {
        int64_t a = r / O, o = r % O;
        float *d = dst + r * inner;
        if (t->ex[o]) {
            for (int64_t i = 0; i < inner; i++) d[i] = extrap;
            continue;
        }
        const int64_t *ix = t->idx + o * t->ntap;
        const float *w = t->w + o * t->ntap;
        const float *s0 = src + (a * L + ix[0]) * inner;
        for (int64_t i = 0; i < inner; i++) d[i] = w[0] * s0[i];
        for (int k = 1; k < t->ntap; k++) {
            const float *sk = src + (a * L + ix[k]) * inner;
            float wk = w[k];
            for (int64_t i = 0; i < inner; i++) d[i] += wk * sk[i];
        }
    }
}

/* Horizontal 2-tap interpolation of one source row into h[OW]. */
static void hinterp(const float *r, float *h, int64_t OW, const int32_t *i0, const int32_t *i1, const float *w0, const float *w1) {
    int64_t ox = 0;
#ifdef MT_NN_AVX2
    for (; ox + 8 <= OW; ox += 8) {
        __m256 a = _mm256_i32gather_ps(r, _mm256_loadu_si256((const __m256i *)(i0 + ox)), 4);
        __m256 b = _mm256_i32gather_ps(r, _mm256_loadu_si256((const __m256i *)(i1 + ox)), 4);
        _mm256_storeu_ps(h + ox, _mm256_fmadd_ps(b, _mm256_loadu_ps(w1 + ox), _mm256_mul_ps(a, _mm256_loadu_ps(w0 + ox))));
    }
#endif
    for (; ox < OW; ox++) h[ox] = r[i0[ox]] * w0[ox] + r[i1[ox]] * w1[ox];
}

/* Bilinear over the last two axes.  tx/ty are 2-tap, no extrapolation.
 * Each output row blends two horizontally interpolated source rows; a
 * thread keeps the last two it made, so each source row is interpolated
 * about once however large the upscale. */
static mtmi_status bilinear2d(const float *X, float *Y, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const taps *ty,
                              const taps *tx, int nth) {
    const int64_t RB = 32; /* output rows per task */
    const int64_t nblk = (OH + RB - 1) / RB, tasks = planes * nblk;
    if (W > INT32_MAX) return MTMI_ERR_UNSUPPORTED;
    int32_t *xi = malloc(sizeof(int32_t) * 2 * OW);
    float *xw = malloc(sizeof(float) * 2 * OW);
    if (!xi || !xw) {
        free(xi);
        free(xw);
        return MTMI_ERR_NOMEM;
    }
    for (int64_t ox = 0; ox < OW; ox++) {
        xi[ox] = (int32_t)tx->idx[2 * ox];
        xi[OW + ox] = (int32_t)tx->idx[2 * ox + 1];
        xw[ox] = tx->w[2 * ox];
        xw[OW + ox] = tx->w[2 * ox + 1];
    }
    int fail = 0;
    #pragma omp parallel num_threads(nth)
    {
        float *buf = malloc(sizeof(float) * 2 * (OW + 16));
        int64_t key[2] = {-1, -1};
        if (!buf) {
            #pragma omp atomic write
            fail = 1;
        }
        #pragma omp for schedule(static)
        for (int64_t tk = 0; tk < tasks; tk++) {
            if (!buf) continue;
            int64_t p = tk / nblk, oy0 = (tk % nblk) * RB, oy1 = MT_MIN(oy0 + RB, OH);
            const float *x = X + p * H * W;
            float *y = Y + p * OH * OW;
            for (int64_t oy = oy0; oy < oy1; oy++) {
                const int64_t *iy = ty->idx + oy * 2;
                const float *wy = ty->w + oy * 2;
                float *h[2];
                for (int k = 0; k < 2; k++) {
                    int64_t rk = p * H + iy[k];
                    int slot = key[0] == rk ? 0 : key[1] == rk ? 1 : -1;
                    if (slot < 0) {
                        /* Evict the slot the other tap does not use. */
                        int64_t other = p * H + iy[1 - k];
                        slot = key[0] == other ? 1 : 0;
                        hinterp(x + iy[k] * W, buf + slot * (OW + 16), OW, xi, xi + OW, xw, xw + OW);
                        key[slot] = rk;
                    }
                    h[k] = buf + slot * (OW + 16);
                }
                float *yr = y + oy * OW;
                float w0 = wy[0], w1 = wy[1];
                int64_t ox = 0;
#ifdef MT_NN_AVX2
                __m256 a0 = _mm256_set1_ps(w0), a1 = _mm256_set1_ps(w1);
                for (; ox + 8 <= OW; ox += 8)
                    _mm256_storeu_ps(yr + ox, _mm256_fmadd_ps(a1, _mm256_loadu_ps(h[1] + ox), _mm256_mul_ps(a0, _mm256_loadu_ps(h[0] + ox))));
#endif
                for (; ox < OW; ox++) yr[ox] = w0 * h[0][ox] + w1 * h[1][ox];
            }
        }
        free(buf);
    }
    free(xi);
    free(xw);
    return fail ? MTMI_ERR_NOMEM : MTMI_OK;
}

static int tview_floats(const mt_tview *t, float *v, int cap) {
    int64_t cnt = mt_tview_numel(t);
    if (cnt > cap) return -1;
    for (int64_t i = 0; i < cnt; i++) {
        if (t->dtype == MTMI_FLOAT) v[i] = ((const float *)t->data)[i];
        else if (t->dtype == MTMI_DOUBLE) v[i] = (float)((const double *)t->data)[i];
        else if (t->dtype == MTMI_FLOAT16) v[i] = mt_half_to_float(((const uint16_t *)t->data)[i]);
        else return -1;
    }
    return (int)cnt;
}

static int tview_ints(const mt_tview *t, int64_t *v, int cap) {
    int64_t cnt = mt_tview_numel(t);
    if (cnt > cap) return -1;
    for (int64_t i = 0; i < cnt; i++) {
        if (t->dtype == MTMI_INT64) v[i] = ((const int64_t *)t->data)[i];
        else if (t->dtype == MTMI_INT32) v[i] = ((const int32_t *)t->data)[i];
        else return -1;
    }
    return (int)cnt;
}

mtmi_status mt_nn_resize(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                         mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0];
    if (x->dtype != MTMI_FLOAT) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "input is %s, only float is supported", mt_dtype_name(x->dtype));
    const int upsample = !strcmp(n->op, "Upsample");
    const int old = upsample || g->opset < 11;
    const int rank = x->rank;
    const char *ms = mt_attr_string(n, "mode", "nearest");
    int mode = !strcmp(ms, "nearest") ? MODE_NEAREST : !strcmp(ms, "cubic") ? MODE_CUBIC : MODE_LINEAR;
    int ct = CT_ASYMMETRIC, nm = NM_SIMPLE;
    if (!old) {
        const char *c = mt_attr_string(n, "coordinate_transformation_mode", "half_pixel");
        if (!strcmp(c, "half_pixel")) ct = CT_HALF_PIXEL;
        else if (!strcmp(c, "pytorch_half_pixel")) ct = CT_PYTORCH_HALF_PIXEL;
        else if (!strcmp(c, "align_corners")) ct = CT_ALIGN_CORNERS;
        else if (!strcmp(c, "asymmetric")) ct = CT_ASYMMETRIC;
        else if (!strcmp(c, "tf_half_pixel_for_nearest")) ct = CT_TF_HALF_PIXEL_NN;
        else if (!strcmp(c, "tf_crop_and_resize")) ct = CT_TF_CROP_RESIZE;
        else if (!strcmp(c, "half_pixel_symmetric")) ct = CT_HALF_PIXEL_SYM;
        else return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "coordinate_transformation_mode '%s' is not supported", c);
        const char *m = mt_attr_string(n, "nearest_mode", "round_prefer_floor");
        if (!strcmp(m, "round_prefer_floor")) nm = NM_ROUND_PREFER_FLOOR;
        else if (!strcmp(m, "round_prefer_ceil")) nm = NM_ROUND_PREFER_CEIL;
        else if (!strcmp(m, "floor")) nm = NM_FLOOR;
        else if (!strcmp(m, "ceil")) nm = NM_CEIL;
        else return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "nearest_mode '%s' is not supported", m);
    }
    float cubic_a = mt_attr_float(n, "cubic_coeff_a", -0.75f);
    int exclude = (int)mt_attr_int(n, "exclude_outside", 0);
    float extrap = mt_attr_float(n, "extrapolation_value", 0.0f);

    float sc[MT_MAX_RANK];
    int64_t sz[MT_MAX_RANK];
    int nsc = 0, nsz = 0;
    if (upsample && g->opset < 9) {
        const mt_attr *a = mt_node_attr(n, "scales");
        if (!a || a->type != MT_ATTR_FLOATS || a->n > MT_MAX_RANK) return mt_kernel_fail(g, n, MTMI_ERR_PARSE, "scales attribute is required");
        nsc = a->n;
        memcpy(sc, a->floats, sizeof(float) * a->n);
    } else {
        int si = old ? 1 : 2;
        if (si < nin && in[si].data && mt_tview_numel(&in[si]) > 0 && (nsc = tview_floats(&in[si], sc, MT_MAX_RANK)) < 0)
            return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "bad scales input");
        if (!old && !nsc && nin > 3 && in[3].data && mt_tview_numel(&in[3]) > 0 && (nsz = tview_ints(&in[3], sz, MT_MAX_RANK)) < 0)
            return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "bad sizes input");
    }
    float scales[MT_MAX_RANK];
    int64_t od[MT_MAX_RANK];
    char err[256];
    if (mt_resize_setup(n, g->opset, rank, x->dims, sc, nsc, sz, nsz, scales, od, err, sizeof err))
        return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    for (int i = 0; i < rank; i++)
        if (od[i] != out[0].dims[i]) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "output shape differs from the planned one");
    /* roi (tf_crop_and_resize): starts then ends, over axes or all dims. */
    float rs[MT_MAX_RANK], re[MT_MAX_RANK];
    for (int i = 0; i < rank; i++) {
        rs[i] = 0.0f;
        re[i] = 1.0f;
    }
    if (ct == CT_TF_CROP_RESIZE) {
        float roi[2 * MT_MAX_RANK];
        int nr = nin > 1 && in[1].data ? tview_floats(&in[1], roi, 2 * MT_MAX_RANK) : -1;
        const int64_t *av;
        int na = mt_attr_ints(n, "axes", &av);
        int cnt = na >= 0 ? na : rank;
        if (nr != 2 * cnt) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "roi must have %d values for tf_crop_and_resize", 2 * cnt);
        for (int i = 0; i < cnt; i++) {
            int a = na >= 0 ? mt_norm_axis(av[i], rank) : i;
            if (a < 0) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "bad axes");
            rs[a] = roi[i];
            re[a] = roi[cnt + i];
        }
    }
    taps t[MT_MAX_RANK];
    memset(t, 0, sizeof t);
    mtmi_status s = MTMI_OK;
    int active[MT_MAX_RANK], nact = 0;
    for (int i = 0; i < rank; i++) {
        if (build_taps(&t[i], mode, ct, nm, scales[i], x->dims[i], od[i], rs[i], re[i], cubic_a, exclude)) {
            s = mt_kernel_fail(g, n, MTMI_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (!t[i].identity) active[nact++] = i;
    }
    const float *X = x->data;
    float *Y = out[0].data;
    if (nact == 0) {
        memcpy(Y, X, sizeof(float) * mt_tview_numel(x));
        goto done;
    }
    if (mode == MODE_LINEAR && ct != CT_TF_CROP_RESIZE && rank >= 2 && active[0] >= rank - 2) {
        int64_t planes = 1;
        for (int i = 0; i < rank - 2; i++) planes *= x->dims[i];
        s = bilinear2d(X, Y, planes, x->dims[rank - 2], x->dims[rank - 1], od[rank - 2], od[rank - 1], &t[rank - 2], &t[rank - 1],
                       ctx->nthreads);
        if (s) mt_kernel_fail(g, n, s, "out of memory (or a row too long)");
        goto done;
    }
    /* Generic: one pass per active axis, ping-ponging through temporaries. */
    {
        int64_t cur[MT_MAX_RANK];
        memcpy(cur, x->dims, sizeof(int64_t) * rank);
        float *tmp[2] = {NULL, NULL};
        const float *src = X;
        for (int k = 0; k < nact; k++) {
            int a = active[k];
            int64_t outer = 1, inner = 1;
            for (int i = 0; i < a; i++) outer *= cur[i];
            for (int i = a + 1; i < rank; i++) inner *= cur[i];
            float *dst;
            if (k == nact - 1) dst = Y;
            else {
                dst = tmp[k & 1] = realloc(tmp[k & 1], sizeof(float) * (outer * od[a] * inner + 1));
                if (!dst) {
                    s = mt_kernel_fail(g, n, MTMI_ERR_NOMEM, "out of memory");
                    break;
                }
            }
            pass_axis(src, dst, outer, cur[a], od[a], inner, &t[a], extrap, ctx->nthreads);
            cur[a] = od[a];
            src = dst;
        }
        free(tmp[0]);
        free(tmp[1]);
    }
done:
    for (int i = 0; i < rank; i++) free_taps(&t[i]);
    return s;
}
