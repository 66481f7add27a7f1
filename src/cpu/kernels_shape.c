/* CPU kernels for the shape and data-movement operator family, Softmax,
 * reductions and ArgMax.
 *
 * Data movement is done on bytes through one strided-box copier (copy_box):
 * Slice, Expand, Tile, Concat and Split are each a box copy with the right
 * strides.  Transpose has its own cache-blocked path because its reads and
 * writes cannot both be contiguous.  Reshape, Squeeze, Unsqueeze and Flatten
 * are aliases and never run. */
#include "cpu/cpu.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vmath.h"
#include "graph/shape_math.h"

#define MAXV 64
#define BOX_RANK (2 * MT_MAX_RANK) /* Tile splits every dimension in two */

/* Reads an int64/int32 tensor's values; -1 if it is neither or too long. */
static int view_ints(const mt_tview *t, int64_t *v, int cap) {
    int64_t cnt = mt_tview_numel(t);
    if (!t->data || cnt > cap) return -1;
    for (int64_t i = 0; i < cnt; i++) {
        if (t->dtype == MTMI_INT64) v[i] = ((const int64_t *)t->data)[i];
        else if (t->dtype == MTMI_INT32) v[i] = ((const int32_t *)t->data)[i];
        else return -1;
    }
    return (int)cnt;
}

static void contiguous_strides(int rank, const int64_t *dims, int64_t *st) {
    int64_t acc = 1;
    for (int d = rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= dims[d];
    }
}

/* ------------------------------------------------------------- box copy */
/* Copies the box dims[0..rank) from src (element strides ss, which may be 0
 * or negative) to dst (strides ds).  Dimensions are merged where both stride
 * sets chain, so a plain slice of rows becomes a few long memcpys. */
static void copy_box(void *dst, const int64_t *ds_in, const void *src, const int64_t *ss_in, const int64_t *dims_in, int rank,
                     size_t esz, int nthreads) {
    int64_t dims[BOX_RANK], ds[BOX_RANK], ss[BOX_RANK];
    int r = 0;
    for (int d = 0; d < rank; d++) {
        if (dims_in[d] == 0) return;
        if (dims_in[d] == 1) continue;
        if (r > 0 && ds[r - 1] == ds_in[d] * dims_in[d] && ss[r - 1] == ss_in[d] * dims_in[d]) {
            dims[r - 1] *= dims_in[d];
            ds[r - 1] = ds_in[d];
            ss[r - 1] = ss_in[d];
            continue;
        }
        dims[r] = dims_in[d];
        ds[r] = ds_in[d];
        ss[r] = ss_in[d];
        r++;
    }
    if (r == 0) {
        memcpy(dst, src, esz);
        return;
    }
    int64_t inner = dims[r - 1], outer = 1;
    for (int d = 0; d < r - 1; d++) outer *= dims[d];
    /* Work items: a chunk of one long row, or a run of short rows walked
     * with an odometer (no division per row). */
    int64_t chunk = inner, rows_per = 1;
    if (outer < (int64_t)nthreads * 4 && inner > 65536) chunk = 65536;
    if (inner < 16384) rows_per = MT_MAX(1, MT_MIN(outer, 16384 / inner));
    int64_t nchunks = (inner + chunk - 1) / chunk, nruns = (outer + rows_per - 1) / rows_per, tasks = nruns * nchunks;
    int64_t dsi = ds[r - 1], ssi = ss[r - 1];
#pragma omp parallel for num_threads(nthreads) if (outer * inner > 65536 && tasks > 1) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t run = t / nchunks, c0 = (t % nchunks) * chunk, cnt = MT_MIN(chunk, inner - c0);
        int64_t row0 = run * rows_per, row1 = MT_MIN(row0 + rows_per, outer);
        int64_t idx[BOX_RANK], doff = c0 * dsi, soff = c0 * ssi, rem = row0;
        for (int d = r - 2; d >= 0; d--) {
            idx[d] = rem % dims[d];
            rem /= dims[d];
            doff += idx[d] * ds[d];
            soff += idx[d] * ss[d];
        }
        for (int64_t row = row0; row < row1; row++) {
            char *o = (char *)dst + doff * (int64_t)esz;
            const char *s = (const char *)src + soff * (int64_t)esz;
            if (dsi == 1 && ssi == 1) memcpy(o, s, (size_t)cnt * esz);
            else {
                switch (esz) {
#define STRIDED(SZ, T)                                                                          \
    case SZ:                                                                                    \
        for (int64_t i = 0; i < cnt; i++) ((T *)o)[i * dsi] = ((const T *)s)[i * ssi];          \
        break;
                    STRIDED(1, uint8_t)
                    STRIDED(2, uint16_t)
                    STRIDED(4, uint32_t)
                    STRIDED(8, uint64_t)
#undef STRIDED
                default:
                    for (int64_t i = 0; i < cnt; i++) memcpy(o + i * dsi * (int64_t)esz, s + i * ssi * (int64_t)esz, esz);
                }
            }
            /* next row: increment the odometer over dims[0..r-2] */
            for (int d = r - 2; d >= 0; d--) {
                doff += ds[d];
                soff += ss[d];
                if (++idx[d] < dims[d]) break;
                doff -= ds[d] * dims[d];
                soff -= ss[d] * dims[d];
                idx[d] = 0;
            }
        }
    }
}

/* ------------------------------------------------------------- transpose */
#define BLOCK 128

/* d[i*oi + j] = s[i + j*sj] for i in [i0,i1), j in [j0,j1): 8x8 register
 * transposes where a full 8x8 fits, scalar at the edges. */
static void transpose_block_f32(const float *s, int64_t sj, float *d, int64_t oi, int64_t i0, int64_t i1, int64_t j0,
                                int64_t j1) {
    int64_t i8 = i0 + ((i1 - i0) & ~(int64_t)7), j8 = j0 + ((j1 - j0) & ~(int64_t)7);
#ifdef __AVX2__
    /* Keep the 8 rows on the side with the larger (often power-of-two, so
     * cache-set aliasing) stride in the inner loop's fixed set. */
    int i_outer = oi >= sj;
    int64_t na = i_outer ? i8 : j8, nb = i_outer ? j8 : i8, a0 = i_outer ? i0 : j0, b0 = i_outer ? j0 : i0;
    for (int64_t a = a0; a < na; a += 8)
        for (int64_t b = b0; b < nb; b += 8) {
            int64_t i = i_outer ? a : b, j = i_outer ? b : a;
            __m256 r0 = _mm256_loadu_ps(s + i + (j + 0) * sj), r1 = _mm256_loadu_ps(s + i + (j + 1) * sj);
            __m256 r2 = _mm256_loadu_ps(s + i + (j + 2) * sj), r3 = _mm256_loadu_ps(s + i + (j + 3) * sj);
            __m256 r4 = _mm256_loadu_ps(s + i + (j + 4) * sj), r5 = _mm256_loadu_ps(s + i + (j + 5) * sj);
            __m256 r6 = _mm256_loadu_ps(s + i + (j + 6) * sj), r7 = _mm256_loadu_ps(s + i + (j + 7) * sj);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
            __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
            _mm256_storeu_ps(d + (i + 0) * oi + j, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + (i + 1) * oi + j, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + (i + 2) * oi + j, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + (i + 3) * oi + j, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + (i + 4) * oi + j, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + (i + 5) * oi + j, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + (i + 6) * oi + j, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + (i + 7) * oi + j, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
#else
    i8 = i0;
    j8 = j0;
#endif
    /* edges: the rows past i8 for all j, and the columns past j8 for i < i8 */
    for (int64_t i = i8; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) d[i * oi + j] = s[i + j * sj];
    for (int64_t i = i0; i < i8; i++)
        for (int64_t j = j8; j < j1; j++) d[i * oi + j] = s[i + j * sj];
}

/* Transposes with perm; public to the tests through mt_cpu_transpose. */
void mt_cpu_transpose(void *dst, const void *src, int rank, const int64_t *in_dims, const int64_t *perm_in, size_t esz,
                      int nthreads);

void mt_cpu_transpose(void *dst, const void *src, int rank, const int64_t *in_dims, const int64_t *perm_in, size_t esz,
                      int nthreads) {
    /* Merge input axes that stay adjacent and in order in the output, and drop
     * size-1 axes, so e.g. NCHW->NHWC becomes [N, C, HW] -> [N, HW, C]. */
    int keep[MT_MAX_RANK], newidx[MT_MAX_RANK], nk = 0;
    for (int d = 0; d < rank; d++)
        if (in_dims[d] != 1) newidx[d] = nk, keep[nk++] = d;
        else newidx[d] = -1;
    int64_t perm[MT_MAX_RANK] = {0}, dims[MT_MAX_RANK] = {0};
    int np = 0;
    for (int k = 0; k < rank; k++)
        if (newidx[perm_in[k]] >= 0) perm[np++] = newidx[perm_in[k]];
    for (int d = 0; d < nk; d++) dims[d] = in_dims[keep[d]];
    /* merge: input axis p followed by p+1 in the output */
    int64_t mdims[MT_MAX_RANK];
    int group_of[MT_MAX_RANK], ng = 0;
    int64_t gd[MT_MAX_RANK] = {0};
    for (int d = 0; d < nk; d++) group_of[d] = -1;
    for (int k = 0; k < np; k++) {
        int p = (int)perm[k];
        if (k > 0 && perm[k - 1] == p - 1) {
            group_of[p] = group_of[p - 1];
            gd[group_of[p]] *= dims[p];
        } else {
            group_of[p] = ng;
            gd[ng] = dims[p];
            ng++;
        }
    }
    /* Groups in input order give the merged input shape. */
    int order[MT_MAX_RANK], no = 0;
    for (int d = 0; d < nk; d++)
        if (d == 0 || group_of[d] != group_of[d - 1]) order[no++] = group_of[d];
    int pos_in[MT_MAX_RANK];
    for (int i = 0; i < no; i++) {
        mdims[i] = gd[order[i]];
        pos_in[order[i]] = i;
    }
    int r = ng;
    int64_t ist[MT_MAX_RANK], os[MT_MAX_RANK], is[MT_MAX_RANK] = {0}, od[MT_MAX_RANK] = {0};
    contiguous_strides(r, mdims, ist);
    for (int k = 0; k < r; k++) {
        od[k] = gd[k];
        is[k] = ist[pos_in[k]];
    }
    contiguous_strides(r, od, os);
    int64_t total = mt_numel(r, od);
    if (total == 0) return;
    if (r <= 1 || is[r - 1] == 1) { /* rows stay contiguous: a box copy */
        copy_box(dst, os, src, is, od, r, esz, nthreads);
        return;
    }
    /* Blocked 2-D transpose between output axis a (contiguous in the input)
     * and the last output axis (contiguous in the output), in BLOCK x BLOCK
     * tiles that both sides keep in cache; one task per tile. */
    int a = 0;
    for (int k = 0; k < r; k++)
        if (is[k] == 1) a = k;
    int64_t ni = od[a], nj = od[r - 1], oi = os[a], sj = is[r - 1];
    int64_t outer = total / (ni * nj), ti = (ni + BLOCK - 1) / BLOCK, tj = (nj + BLOCK - 1) / BLOCK;
    int64_t tasks = outer * ti * tj;
#pragma omp parallel for num_threads(nthreads) if (total > 32768) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / (ti * tj), rest = t % (ti * tj);
        int64_t i0 = (rest / tj) * BLOCK, j0 = (rest % tj) * BLOCK;
        int64_t i1 = MT_MIN(i0 + BLOCK, ni), j1 = MT_MIN(j0 + BLOCK, nj);
        int64_t soff = 0, doff = 0, rem = o;
        for (int k = r - 2; k >= 0; k--) {
            if (k == a) continue;
            int64_t idx = rem % od[k];
            rem /= od[k];
            soff += idx * is[k];
            doff += idx * os[k];
        }
        if (esz == 4) {
            transpose_block_f32((const float *)src + soff, sj, (float *)dst + doff, oi, i0, i1, j0, j1);
            continue;
        }
        switch (esz) {
#define TBLOCK(SZ, T)                                                                           \
    case SZ: {                                                                                  \
        const T *s = (const T *)src + soff;                                                     \
        T *d = (T *)dst + doff;                                                                 \
        for (int64_t i = i0; i < i1; i++)                                                       \
            for (int64_t j = j0; j < j1; j++) d[i * oi + j] = s[i + j * sj];                    \
        break;                                                                                  \
    }
            TBLOCK(1, uint8_t)
            TBLOCK(2, uint16_t)
            TBLOCK(8, uint64_t)
#undef TBLOCK
        }
    }
}

static mtmi_status k_transpose(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                               int nout, mt_cpu_ctx *ctx) {
    int64_t perm[MT_MAX_RANK];
    const int64_t *p;
    int cnt = mt_attr_ints(n, "perm", &p);
    for (int i = 0; i < in[0].rank; i++) perm[i] = cnt < 0 ? in[0].rank - 1 - i : p[i];
    mt_cpu_transpose(out[0].data, in[0].data, in[0].rank, in[0].dims, perm, mt_dtype_size(in[0].dtype), ctx->nthreads);
    return MTMI_OK;
}

/* ------------------------------------------------------------ shape ops */
static mtmi_status k_shape(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                           int nout, mt_cpu_ctx *ctx) {
    int r = in[0].rank;
    int64_t st = mt_attr_int(n, "start", 0);
    if (st < 0) st += r;
    st = st < 0 ? 0 : (st > r ? r : st);
    for (int64_t i = 0; i < out[0].dims[0]; i++) ((int64_t *)out[0].data)[i] = in[0].dims[st + i];
    return MTMI_OK;
}

static mtmi_status k_size(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                          int nout, mt_cpu_ctx *ctx) {
    *(int64_t *)out[0].data = mt_tview_numel(&in[0]);
    return MTMI_OK;
}

static mtmi_status k_slice(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                           int nout, mt_cpu_ctx *ctx) {
    int64_t st[MAXV], en[MAXV], ax[MAXV], sp[MAXV];
    int cnt, na = -1, ns = -1;
    if (g->opset < 10) {
        const int64_t *a, *b, *c;
        cnt = mt_attr_ints(n, "starts", &a);
        if (cnt < 0 || cnt > MAXV || mt_attr_ints(n, "ends", &b) != cnt) return mt_kernel_fail(g, n, MTMI_ERR_PARSE, "bad starts/ends");
        memcpy(st, a, sizeof(int64_t) * cnt);
        memcpy(en, b, sizeof(int64_t) * cnt);
        na = mt_attr_ints(n, "axes", &c);
        if (na > MAXV) return mt_kernel_fail(g, n, MTMI_ERR_PARSE, "bad axes");
        if (na > 0) memcpy(ax, c, sizeof(int64_t) * na);
    } else {
        cnt = view_ints(&in[1], st, MAXV);
        if (cnt < 0 || view_ints(&in[2], en, MAXV) != cnt) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "bad starts/ends");
        if (nin > 3 && in[3].data) na = view_ints(&in[3], ax, MAXV);
        if (nin > 4 && in[4].data) ns = view_ints(&in[4], sp, MAXV);
    }
    int64_t o_st[MT_MAX_RANK], o_sp[MT_MAX_RANK], len[MT_MAX_RANK];
    if ((na >= 0 && na != cnt) || (ns >= 0 && ns != cnt)) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "parameter lengths differ");
    const char *err = mt_slice_resolve(in[0].rank, in[0].dims, cnt, st, en, na >= 0 ? ax : NULL, ns >= 0 ? sp : NULL, o_st, o_sp, len);
    if (err) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    for (int d = 0; d < in[0].rank; d++)
        if (len[d] != out[0].dims[d]) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "parameters changed since planning");
    int64_t ist[MT_MAX_RANK], ss[MT_MAX_RANK], ds[MT_MAX_RANK], base = 0;
    contiguous_strides(in[0].rank, in[0].dims, ist);
    contiguous_strides(out[0].rank, out[0].dims, ds);
    for (int d = 0; d < in[0].rank; d++) {
        base += o_st[d] * ist[d];
        ss[d] = o_sp[d] * ist[d];
    }
    size_t esz = mt_dtype_size(in[0].dtype);
    if (mt_tview_numel(&out[0]) == 0) return MTMI_OK;
    copy_box(out[0].data, ds, (const char *)in[0].data + base * (int64_t)esz, ss, out[0].dims, out[0].rank, esz, ctx->nthreads);
    return MTMI_OK;
}

static mtmi_status k_concat(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                            int nout, mt_cpu_ctx *ctx) {
    int r = out[0].rank;
    int axis = (int)mt_attr_int(n, "axis", 1);
    if (axis < 0) axis += r;
    size_t esz = mt_dtype_size(out[0].dtype);
    int64_t outer = mt_numel(axis, out[0].dims), inner = mt_numel(r - axis - 1, out[0].dims + axis + 1);
    int64_t orow = out[0].dims[axis] * inner, at = 0;
    for (int k = 0; k < nin; k++) {
        if (!in[k].data) continue;
        int64_t blk = in[k].dims[axis] * inner;
        int64_t dims[2] = {outer, blk}, ds[2] = {orow, 1}, ss[2] = {blk, 1};
        if (blk) copy_box((char *)out[0].data + at * (int64_t)esz, ds, in[k].data, ss, dims, 2, esz, ctx->nthreads);
        at += blk;
    }
    return MTMI_OK;
}

static mtmi_status k_split(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                           int nout, mt_cpu_ctx *ctx) {
    int r = in[0].rank;
    int axis = (int)mt_attr_int(n, "axis", 0);
    if (axis < 0) axis += r;
    size_t esz = mt_dtype_size(in[0].dtype);
    int64_t outer = mt_numel(axis, in[0].dims), inner = mt_numel(r - axis - 1, in[0].dims + axis + 1);
    int64_t irow = in[0].dims[axis] * inner, at = 0;
    for (int k = 0; k < nout; k++) {
        if (!out[k].data) { /* an unused output still advances */
            at += (k < n->nout && n->out[k] >= 0 ? g->values[n->out[k]].dims[axis] : 0) * inner;
            continue;
        }
        int64_t blk = out[k].dims[axis] * inner;
        int64_t dims[2] = {outer, blk}, ds[2] = {blk, 1}, ss[2] = {irow, 1};
        if (blk) copy_box(out[k].data, ds, (const char *)in[0].data + at * (int64_t)esz, ss, dims, 2, esz, ctx->nthreads);
        at += blk;
    }
    return MTMI_OK;
}

/* Strides of x broadcast into out's shape (0 on broadcast dimensions). */
static void broadcast_strides(const mt_tview *x, const mt_tview *out, int64_t *ss) {
    int off = out->rank - x->rank;
    int64_t acc = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t xd = d >= off ? x->dims[d - off] : 1;
        ss[d] = xd == 1 ? 0 : acc;
        acc *= xd;
    }
}

static mtmi_status k_expand(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                            int nout, mt_cpu_ctx *ctx) {
    int64_t ss[MT_MAX_RANK], ds[MT_MAX_RANK];
    broadcast_strides(&in[0], &out[0], ss);
    contiguous_strides(out[0].rank, out[0].dims, ds);
    if (mt_tview_numel(&out[0]))
        copy_box(out[0].data, ds, in[0].data, ss, out[0].dims, out[0].rank, mt_dtype_size(out[0].dtype), ctx->nthreads);
    return MTMI_OK;
}

static mtmi_status k_tile(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                          int nout, mt_cpu_ctx *ctx) {
    int r = in[0].rank;
    int64_t ist[MT_MAX_RANK], ost[MT_MAX_RANK], dims[BOX_RANK], ds[BOX_RANK], ss[BOX_RANK];
    contiguous_strides(r, in[0].dims, ist);
    contiguous_strides(r, out[0].dims, ost);
    /* Output axis d of size rep*dim is the pair (rep, dim): the repeat index
     * moves dim elements along the output and nowhere in the input. */
    for (int d = 0; d < r; d++) {
        int64_t dim = in[0].dims[d];
        dims[2 * d] = dim ? out[0].dims[d] / dim : 0;
        dims[2 * d + 1] = dim;
        ds[2 * d] = dim * ost[d];
        ds[2 * d + 1] = ost[d];
        ss[2 * d] = 0;
        ss[2 * d + 1] = ist[d];
    }
    if (mt_tview_numel(&out[0]))
        copy_box(out[0].data, ds, in[0].data, ss, dims, 2 * r, mt_dtype_size(out[0].dtype), ctx->nthreads);
    return MTMI_OK;
}

static mtmi_status k_gather(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                            int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0], *ix = &in[1];
    int axis = (int)mt_attr_int(n, "axis", 0);
    if (axis < 0) axis += x->rank;
    size_t esz = mt_dtype_size(x->dtype);
    int64_t outer = mt_numel(axis, x->dims), dim = x->dims[axis], inner = mt_numel(x->rank - axis - 1, x->dims + axis + 1);
    int64_t ni = mt_tview_numel(ix);
    for (int64_t j = 0; j < ni; j++) {
        int64_t v = ix->dtype == MTMI_INT64 ? ((const int64_t *)ix->data)[j] : ((const int32_t *)ix->data)[j];
        if (v < -dim || v >= dim)
            return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "index %lld out of range for axis of size %lld", (long long)v, (long long)dim);
    }
    size_t row = (size_t)inner * esz;
    int64_t tasks = outer * ni;
#pragma omp parallel for num_threads(ctx->nthreads) if (tasks * inner > 65536) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / ni, j = t % ni;
        int64_t v = ix->dtype == MTMI_INT64 ? ((const int64_t *)ix->data)[j] : ((const int32_t *)ix->data)[j];
        if (v < 0) v += dim;
        memcpy((char *)out[0].data + (size_t)t * row, (const char *)x->data + ((size_t)o * dim + v) * row, row);
    }
    return MTMI_OK;
}

static mtmi_status k_constant_of_shape(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                       mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    const mt_attr *v = mt_node_attr(n, "value");
    size_t esz = mt_dtype_size(out[0].dtype);
    int64_t cnt = mt_tview_numel(&out[0]);
    if (!v || !v->t || !v->t->data) {
        memset(out[0].data, 0, (size_t)cnt * esz);
        return MTMI_OK;
    }
    for (int64_t i = 0; i < cnt; i++) memcpy((char *)out[0].data + i * esz, v->t->data, esz);
    return MTMI_OK;
}

static mtmi_status k_range(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                           int nout, mt_cpu_ctx *ctx) {
    int64_t cnt = mt_tview_numel(&out[0]);
    switch (out[0].dtype) {
#define RANGE(DT, T, W)                                                                  \
    case DT: {                                                                           \
        T s = *(const T *)in[0].data, d = *(const T *)in[2].data;                        \
        for (int64_t i = 0; i < cnt; i++) ((T *)out[0].data)[i] = (T)((W)s + (W)i * (W)d); \
        break;                                                                           \
    }
        RANGE(MTMI_FLOAT, float, float)
        RANGE(MTMI_DOUBLE, double, double)
        RANGE(MTMI_INT32, int32_t, uint64_t)
        RANGE(MTMI_INT64, int64_t, uint64_t)
#undef RANGE
    default: return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s", mt_dtype_name(out[0].dtype));
    }
    return MTMI_OK;
}

/* ------------------------------------------------------------------ Pad */
enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

/* Source coordinate of output coordinate o along a dimension of size dim
 * padded by b in front; -1 = the constant value. */
static inline int64_t pad_src(int64_t o, int64_t b, int64_t dim, int mode) {
    int64_t c = o - b;
    if (c >= 0 && c < dim) return c;
    switch (mode) {
    case PAD_EDGE: return c < 0 ? 0 : dim - 1;
    case PAD_WRAP: c %= dim; return c < 0 ? c + dim : c;
    case PAD_REFLECT: {
        if (dim == 1) return 0;
        int64_t period = 2 * (dim - 1);
        c %= period;
        if (c < 0) c += period;
        return c < dim ? c : period - c;
    }
    default: return -1;
    }
}

static mtmi_status k_pad(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                         int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0];
    int r = x->rank;
    const char *ms = mt_attr_string(n, "mode", "constant");
    int mode = !strcmp(ms, "reflect") ? PAD_REFLECT : !strcmp(ms, "edge") ? PAD_EDGE : !strcmp(ms, "wrap") ? PAD_WRAP : PAD_CONSTANT;
    int64_t pads[2 * MAXV], axes[MAXV], b[MT_MAX_RANK], e[MT_MAX_RANK];
    int np, na = -1;
    size_t esz = mt_dtype_size(x->dtype);
    uint64_t cval = 0; /* the constant's bytes */
    if (g->opset < 11) {
        const int64_t *p;
        np = mt_attr_ints(n, "pads", &p);
        if (np < 0) np = mt_attr_ints(n, "paddings", &p);
        if (np < 0 || np > 2 * MAXV) return mt_kernel_fail(g, n, MTMI_ERR_PARSE, "bad pads");
        memcpy(pads, p, sizeof(int64_t) * np);
        float f = mt_attr_float(n, "value", 0.f);
        if (x->dtype == MTMI_FLOAT) memcpy(&cval, &f, 4);
        else if (x->dtype == MTMI_DOUBLE) {
            double dv = f;
            memcpy(&cval, &dv, 8);
        }
    } else {
        np = view_ints(&in[1], pads, 2 * MAXV);
        if (nin > 3 && in[3].data) na = view_ints(&in[3], axes, MAXV);
        if (nin > 2 && in[2].data && mt_tview_numel(&in[2]) == 1) memcpy(&cval, in[2].data, esz);
    }
    const char *err = np < 0 ? "bad pads" : mt_pad_resolve(r, np, pads, na, na >= 0 ? axes : NULL, b, e);
    if (err) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    int64_t total = mt_tview_numel(&out[0]);
    if (total == 0) return MTMI_OK;
    int64_t ist[MT_MAX_RANK];
    contiguous_strides(r, x->dims, ist);
    int64_t inner = r ? out[0].dims[r - 1] : 1, rows = total / inner;
    int64_t idim = r ? x->dims[r - 1] : 1, ib = r ? b[r - 1] : 0;
#pragma omp parallel for num_threads(ctx->nthreads) if (total > 65536) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        char *o = (char *)out[0].data + (size_t)(row * inner) * esz;
        int64_t rem = row, soff = 0;
        int constant_row = 0;
        for (int d = r - 2; d >= 0; d--) {
            int64_t idx = rem % out[0].dims[d];
            rem /= out[0].dims[d];
            int64_t c = pad_src(idx, b[d], x->dims[d], mode);
            if (c < 0) constant_row = 1;
            else soff += c * ist[d];
        }
        for (int64_t j = 0; j < inner; j++) {
            int64_t c = constant_row ? -1 : pad_src(j, ib, idim, mode);
            if (c < 0) memcpy(o + j * esz, &cval, esz);
            else memcpy(o + j * esz, (const char *)x->data + (size_t)(soff + c) * esz, esz);
        }
    }
    return MTMI_OK;
}

/* -------------------------------------------------------------- Softmax */
/* The node's (outer, axis, inner) view: before opset 13 the input is coerced
 * to 2-D at axis and the softmax runs over the whole second part. */
static void softmax_view(const mt_graph *g, const mt_node *n, const mt_tview *x, int64_t *outer, int64_t *dim, int64_t *inner) {
    int r = x->rank;
    int64_t axis = mt_attr_int(n, "axis", g->opset < 13 ? 1 : -1);
    if (axis < 0) axis += r;
    *outer = mt_numel((int)axis, x->dims);
    if (g->opset < 13) {
        *dim = mt_numel(r - (int)axis, x->dims + axis);
        *inner = 1;
    } else {
        *dim = x->dims[axis];
        *inner = mt_numel(r - (int)axis - 1, x->dims + axis + 1);
    }
}

#define SOFTMAX_T(NAME, T, EXP, LOG)                                                                   \
    static void NAME(const T *x, T *y, int64_t outer, int64_t dim, int64_t inner, int logsm, int nthreads) { \
        int64_t tasks = outer * inner;                                                                 \
        _Pragma("omp parallel for num_threads(nthreads) if (tasks * dim > 16384) schedule(static)")    \
        for (int64_t t = 0; t < tasks; t++) {                                                          \
            int64_t o = t / inner, i = t % inner;                                                      \
            const T *xs = x + o * dim * inner + i;                                                     \
            T *ys = y + o * dim * inner + i;                                                           \
            T mx = xs[0];                                                                              \
            if (inner == 1) {                                                                          \
                for (int64_t k = 1; k < dim; k++) mx = xs[k] > mx ? xs[k] : mx;                        \
                T sum = 0;                                                                             \
                if (logsm) {                                                                           \
                    for (int64_t k = 0; k < dim; k++) sum += EXP(xs[k] - mx);                          \
                    T lse = mx + LOG(sum);                                                             \
                    for (int64_t k = 0; k < dim; k++) ys[k] = xs[k] - lse;                             \
                } else {                                                                               \
                    for (int64_t k = 0; k < dim; k++) {                                                \
                        T e = EXP(xs[k] - mx);                                                         \
                        ys[k] = e;                                                                     \
                        sum += e;                                                                      \
                    }                                                                                  \
                    T inv = (T)1 / sum;                                                                \
                    for (int64_t k = 0; k < dim; k++) ys[k] *= inv;                                    \
                }                                                                                      \
                continue;                                                                              \
            }                                                                                          \
            for (int64_t k = 1; k < dim; k++) mx = xs[k * inner] > mx ? xs[k * inner] : mx;            \
            T sum = 0;                                                                                 \
            for (int64_t k = 0; k < dim; k++) sum += EXP(xs[k * inner] - mx);                          \
            if (logsm) {                                                                               \
                T lse = mx + LOG(sum);                                                                 \
                for (int64_t k = 0; k < dim; k++) ys[k * inner] = xs[k * inner] - lse;                 \
            } else {                                                                                   \
                T inv = (T)1 / sum;                                                                    \
                for (int64_t k = 0; k < dim; k++) ys[k * inner] = EXP(xs[k * inner] - mx) * inv;       \
            }                                                                                          \
        }                                                                                              \
    }
SOFTMAX_T(softmax_f64, double, exp, log)

/* Float softmax over a contiguous row: AVX2 max, exp-and-sum, scale. */
static void softmax_row_f32(const float *x, float *y, int64_t n, int logsm) {
    int64_t i = 0;
    float mx = -INFINITY, sum = 0;
#ifdef __AVX2__
    if (n >= 8) {
        __m256 m = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        mx = mt_hmax8(m);
    }
#endif
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    i = 0;
#ifdef __AVX2__
    __m256 acc = _mm256_setzero_ps(), vm = _mm256_set1_ps(mx);
    for (; i + 8 <= n; i += 8) {
        __m256 e = mt_vexp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        if (!logsm) _mm256_storeu_ps(y + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    sum = mt_hsum8(acc);
#endif
    for (; i < n; i++) {
        float e = mt_vexpf(x[i] - mx);
        if (!logsm) y[i] = e;
        sum += e;
    }
    if (logsm) {
        float lse = mx + logf(sum);
        for (i = 0; i < n; i++) y[i] = x[i] - lse;
    } else {
        float inv = 1.0f / sum;
        for (i = 0; i < n; i++) y[i] *= inv;
    }
}

/* Softmax over a strided axis: SM_CHUNK inner positions at a time, so that
 * every pass runs over contiguous memory. */
#define SM_CHUNK 256
static void softmax_strided_f32(const float *xs, float *ys, int64_t dim, int64_t inner, int64_t cnt, int logsm) {
    float mx[SM_CHUNK], sum[SM_CHUNK];
    for (int64_t j = 0; j < cnt; j++) {
        mx[j] = -INFINITY;
        sum[j] = 0;
    }
    for (int64_t k = 0; k < dim; k++)
        for (int64_t j = 0; j < cnt; j++) mx[j] = xs[k * inner + j] > mx[j] ? xs[k * inner + j] : mx[j];
    for (int64_t k = 0; k < dim; k++) {
        const float *xr = xs + k * inner;
        float *yr = ys + k * inner;
        int64_t j = 0;
#ifdef __AVX2__
        for (; j + 8 <= cnt; j += 8) {
            __m256 e = mt_vexp8(_mm256_sub_ps(_mm256_loadu_ps(xr + j), _mm256_loadu_ps(mx + j)));
            if (!logsm) _mm256_storeu_ps(yr + j, e);
            _mm256_storeu_ps(sum + j, _mm256_add_ps(_mm256_loadu_ps(sum + j), e));
        }
#endif
        for (; j < cnt; j++) {
            float e = mt_vexpf(xr[j] - mx[j]);
            if (!logsm) yr[j] = e;
            sum[j] += e;
        }
    }
    if (logsm) {
        for (int64_t j = 0; j < cnt; j++) sum[j] = mx[j] + logf(sum[j]);
        for (int64_t k = 0; k < dim; k++)
            for (int64_t j = 0; j < cnt; j++) ys[k * inner + j] = xs[k * inner + j] - sum[j];
    } else {
        for (int64_t j = 0; j < cnt; j++) sum[j] = 1.0f / sum[j];
        for (int64_t k = 0; k < dim; k++)
            for (int64_t j = 0; j < cnt; j++) ys[k * inner + j] *= sum[j];
    }
}

static void softmax_f32(const float *x, float *y, int64_t outer, int64_t dim, int64_t inner, int logsm, int nthreads) {
    if (inner == 1) {
#pragma omp parallel for num_threads(nthreads) if (outer * dim > 16384) schedule(static)
        for (int64_t o = 0; o < outer; o++) softmax_row_f32(x + o * dim, y + o * dim, dim, logsm);
        return;
    }
    int64_t nch = (inner + SM_CHUNK - 1) / SM_CHUNK, tasks = outer * nch;
#pragma omp parallel for num_threads(nthreads) if (outer * dim * inner > 16384) schedule(static)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t o = t / nch, j0 = (t % nch) * SM_CHUNK, cnt = MT_MIN(SM_CHUNK, inner - j0);
        softmax_strided_f32(x + o * dim * inner + j0, y + o * dim * inner + j0, dim, inner, cnt, logsm);
    }
}

static mtmi_status k_softmax(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                             int nout, mt_cpu_ctx *ctx) {
    int64_t outer, dim, inner;
    softmax_view(g, n, &in[0], &outer, &dim, &inner);
    if (!outer || !dim || !inner) return MTMI_OK;
    int logsm = !strcmp(n->op, "LogSoftmax");
    if (in[0].dtype == MTMI_FLOAT) softmax_f32(in[0].data, out[0].data, outer, dim, inner, logsm, ctx->nthreads);
    else if (in[0].dtype == MTMI_DOUBLE) softmax_f64(in[0].data, out[0].data, outer, dim, inner, logsm, ctx->nthreads);
    else return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s", mt_dtype_name(in[0].dtype));
    return MTMI_OK;
}

/* ----------------------------------------------------------- reductions */
enum { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_SUMSQ, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP };

static int reduce_kind(const char *op) {
    static const char *names[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                  "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"};
    for (int i = 0; i < (int)MT_ARRAY_LEN(names); i++)
        if (!strcmp(op, names[i])) return i;
    return -1;
}

/* The reduced dimensions, merged where contiguous: count, sizes, strides. */
typedef struct rplan {
    int nk, nr;
    int64_t kd[MT_MAX_RANK], ks[MT_MAX_RANK]; /* kept dims and input strides */
    int64_t rd[MT_MAX_RANK], rs[MT_MAX_RANK]; /* reduced dims and input strides */
    int64_t count;                            /* elements reduced per output */
} rplan;

static inline double reduce_init(int kind) {
    switch (kind) {
    case R_MAX: return -INFINITY;
    case R_MIN: return INFINITY;
    case R_PROD: return 1;
    default: return 0;
    }
}

/* Folds cnt elements x[0], x[s], ... into acc. */
#define REDUCE_RUN(NAME, T)                                                                     \
    static double NAME(const T *x, int64_t cnt, int64_t s, int kind, double acc) {              \
        switch (kind) {                                                                         \
        case R_SUM:                                                                             \
        case R_MEAN:                                                                            \
            if (s == 1)                                                                         \
                for (int64_t i = 0; i < cnt; i++) acc += x[i];                                  \
            else                                                                                \
                for (int64_t i = 0; i < cnt; i++) acc += x[i * s];                              \
            return acc;                                                                         \
        case R_MAX:                                                                             \
            for (int64_t i = 0; i < cnt; i++) acc = x[i * s] > acc ? x[i * s] : acc;            \
            return acc;                                                                         \
        case R_MIN:                                                                             \
            for (int64_t i = 0; i < cnt; i++) acc = x[i * s] < acc ? x[i * s] : acc;            \
            return acc;                                                                         \
        case R_PROD:                                                                            \
            for (int64_t i = 0; i < cnt; i++) acc *= x[i * s];                                  \
            return acc;                                                                         \
        case R_SUMSQ:                                                                           \
        case R_L2:                                                                              \
            for (int64_t i = 0; i < cnt; i++) acc += (double)x[i * s] * x[i * s];               \
            return acc;                                                                         \
        case R_L1:                                                                              \
            for (int64_t i = 0; i < cnt; i++) acc += fabs((double)x[i * s]);                    \
            return acc;                                                                         \
        case R_LOGSUM:                                                                          \
            for (int64_t i = 0; i < cnt; i++) acc += x[i * s];                                  \
            return acc;                                                                         \
        default:                                                                                \
            for (int64_t i = 0; i < cnt; i++) acc += exp((double)x[i * s]);                     \
            return acc;                                                                         \
        }                                                                                       \
    }

static inline double reduce_final(int kind, double acc, int64_t count) {
    switch (kind) {
    case R_MEAN: return count ? acc / count : NAN;
    case R_L2: return sqrt(acc);
    case R_LOGSUM:
    case R_LOGSUMEXP: return log(acc);
    default: return acc;
    }
}

/* Float sum of a contiguous run with 8 accumulators (vectorizes). */
static double sum_run_f32(const float *x, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += x[i + k];
    double s = 0;
    for (int k = 0; k < 8; k++) s += acc[k];
    for (; i < n; i++) s += x[i];
    return s;
}

#define REDUCE_T(NAME, RUN, T, TOUT)                                                            \
    static void NAME(const T *x, T *y, const rplan *p, int64_t nout, int kind, int nthreads) {  \
        int64_t inner = p->nr ? p->rd[p->nr - 1] : 1, is = p->nr ? p->rs[p->nr - 1] : 1;        \
        int64_t outer_r = p->nr ? p->count / inner : 1;                                         \
        _Pragma("omp parallel for num_threads(nthreads) if (nout * p->count > 32768) schedule(static)") \
        for (int64_t o = 0; o < nout; o++) {                                                    \
            int64_t base = 0, rem = o;                                                          \
            for (int d = p->nk - 1; d >= 0; d--) {                                              \
                base += (rem % p->kd[d]) * p->ks[d];                                            \
                rem /= p->kd[d];                                                                \
            }                                                                                   \
            double acc = reduce_init(kind);                                                     \
            for (int64_t q = 0; q < outer_r; q++) {                                             \
                int64_t off = base, rq = q;                                                     \
                for (int d = p->nr - 2; d >= 0; d--) {                                          \
                    off += (rq % p->rd[d]) * p->rs[d];                                          \
                    rq /= p->rd[d];                                                             \
                }                                                                               \
                acc = RUN(x + off, p->nr ? inner : 1, is, kind, acc);                           \
            }                                                                                   \
            y[o] = (TOUT)reduce_final(kind, acc, p->count);                                     \
        }                                                                                       \
    }
REDUCE_RUN(run_f32_generic, float)
REDUCE_RUN(run_f64, double)
REDUCE_RUN(run_i32, int32_t)
REDUCE_RUN(run_i64, int64_t)
REDUCE_RUN(run_i8, int8_t)
REDUCE_RUN(run_u8, uint8_t)
static double run_f32(const float *x, int64_t cnt, int64_t s, int kind, double acc) {
    if (s == 1 && (kind == R_SUM || kind == R_MEAN)) return acc + sum_run_f32(x, cnt);
    return run_f32_generic(x, cnt, s, kind, acc);
}
REDUCE_T(reduce_f32, run_f32, float, float)
REDUCE_T(reduce_f64, run_f64, double, double)
REDUCE_T(reduce_i32, run_i32, int32_t, int32_t)
REDUCE_T(reduce_i64, run_i64, int64_t, int64_t)
REDUCE_T(reduce_i8, run_i8, int8_t, int8_t)
REDUCE_T(reduce_u8, run_u8, uint8_t, uint8_t)

static mtmi_status k_reduce(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                            int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0];
    int kind = reduce_kind(n->op);
    int64_t axes[MAXV];
    const int64_t *a;
    int cnt = mt_attr_ints(n, "axes", &a);
    if (cnt > MAXV) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "too many axes");
    if (cnt >= 0) memcpy(axes, a, sizeof(int64_t) * cnt);
    else if (nin > 1 && in[1].data) cnt = view_ints(&in[1], axes, MAXV);
    else cnt = 0;
    if (cnt < 0) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "bad axes");
    int mask[MT_MAX_RANK];
    const char *err = mt_reduce_axes(x->rank, cnt, axes, (int)mt_attr_int(n, "noop_with_empty_axes", 0), mask);
    if (err) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    int64_t ist[MT_MAX_RANK];
    contiguous_strides(x->rank, x->dims, ist);
    rplan p = {.count = 1};
    for (int d = 0; d < x->rank; d++) {
        if (x->dims[d] == 1) continue;
        int64_t *dims = mask[d] ? p.rd : p.kd, *st = mask[d] ? p.rs : p.ks;
        int *cntp = mask[d] ? &p.nr : &p.nk;
        /* merge with the previous dimension of the same kind when contiguous */
        if (*cntp > 0 && st[*cntp - 1] == ist[d] * x->dims[d]) {
            dims[*cntp - 1] *= x->dims[d];
            st[*cntp - 1] = ist[d];
        } else {
            dims[*cntp] = x->dims[d];
            st[*cntp] = ist[d];
            (*cntp)++;
        }
        if (mask[d]) p.count *= x->dims[d];
    }
    for (int d = 0; d < x->rank; d++)
        if (mask[d] && x->dims[d] == 0) p.count = 0;
    int64_t no = mt_tview_numel(&out[0]);
    if (p.count == 0) { /* empty reduction: the identity of the operation */
        for (int64_t o = 0; o < no; o++) {
            double v = reduce_final(kind, reduce_init(kind), 0);
            if (kind == R_LOGSUMEXP || kind == R_LOGSUM) v = -INFINITY;
            if (x->dtype == MTMI_FLOAT) ((float *)out[0].data)[o] = (float)v;
            else if (x->dtype == MTMI_DOUBLE) ((double *)out[0].data)[o] = v;
            else if (x->dtype == MTMI_INT32) ((int32_t *)out[0].data)[o] = isfinite(v) ? (int32_t)v : (v > 0 ? INT32_MAX : INT32_MIN);
            else ((int64_t *)out[0].data)[o] = isfinite(v) ? (int64_t)v : (v > 0 ? INT64_MAX : INT64_MIN);
        }
        return MTMI_OK;
    }
    /* LayerNorm-style means: each output reduces one contiguous row */
    if (x->dtype == MTMI_FLOAT && (kind == R_SUM || kind == R_MEAN) && p.nr == 1 && p.rs[0] == 1 &&
        (p.nk == 0 || (p.nk == 1 && p.ks[0] == p.count))) {
        const float *xf = x->data;
        float *yf = out[0].data;
        double scale = kind == R_MEAN ? 1.0 / (double)p.count : 1.0;
#pragma omp parallel for num_threads(ctx->nthreads) if (no * p.count > 32768) schedule(static)
        for (int64_t o = 0; o < no; o++) yf[o] = (float)(sum_run_f32(xf + o * p.count, p.count) * scale);
        return MTMI_OK;
    }
    switch (x->dtype) {
    case MTMI_FLOAT: reduce_f32(x->data, out[0].data, &p, no, kind, ctx->nthreads); break;
    case MTMI_DOUBLE: reduce_f64(x->data, out[0].data, &p, no, kind, ctx->nthreads); break;
    case MTMI_INT32: reduce_i32(x->data, out[0].data, &p, no, kind, ctx->nthreads); break;
    case MTMI_INT64: reduce_i64(x->data, out[0].data, &p, no, kind, ctx->nthreads); break;
    case MTMI_INT8: reduce_i8(x->data, out[0].data, &p, no, kind, ctx->nthreads); break;
    case MTMI_UINT8:
    case MTMI_BOOL: reduce_u8(x->data, out[0].data, &p, no, kind, ctx->nthreads); break;
    default: return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s", mt_dtype_name(x->dtype));
    }
    return MTMI_OK;
}

/* ---------------------------------------------------------------- ArgMax */
#define ARG_CHUNK 256
/* For each (outer, inner) position the index along the axis of the best
 * element; inner positions are swept in chunks so that the compare loop runs
 * over contiguous memory (the class map of a 19 x H x W logit tensor). */
#define ARGMAX_T(NAME, T)                                                                          \
    static void NAME(const T *x, int64_t *y, int64_t outer, int64_t dim, int64_t inner, int want_max, \
                     int last, int nthreads) {                                                     \
        int64_t nch = (inner + ARG_CHUNK - 1) / ARG_CHUNK, tasks = outer * nch;                    \
        _Pragma("omp parallel for num_threads(nthreads) if (tasks * dim * ARG_CHUNK > 65536) schedule(static)") \
        for (int64_t t = 0; t < tasks; t++) {                                                      \
            int64_t o = t / nch, j0 = (t % nch) * ARG_CHUNK, cnt = MT_MIN(ARG_CHUNK, inner - j0);  \
            const T *xs = x + o * dim * inner + j0;                                                \
            int64_t *ys = y + o * inner + j0;                                                      \
            T best[ARG_CHUNK];                                                                     \
            for (int64_t j = 0; j < cnt; j++) {                                                    \
                best[j] = xs[j];                                                                   \
                ys[j] = 0;                                                                         \
            }                                                                                      \
            for (int64_t k = 1; k < dim; k++) {                                                    \
                const T *row = xs + k * inner;                                                     \
                for (int64_t j = 0; j < cnt; j++) {                                                \
                    T v = row[j];                                                                  \
                    int better = want_max ? (last ? v >= best[j] : v > best[j])                    \
                                          : (last ? v <= best[j] : v < best[j]);                   \
                    if (better) {                                                                  \
                        best[j] = v;                                                               \
                        ys[j] = k;                                                                 \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
ARGMAX_T(argmax_f32_generic, float)

/* The float case, 8 positions at a time: compare, blend value and index. */
static void argmax_f32(const float *x, int64_t *y, int64_t outer, int64_t dim, int64_t inner, int want_max, int last,
                       int nthreads) {
#ifdef __AVX2__
    if (inner >= 8 && dim < INT32_MAX) {
        int pred = want_max ? (last ? _CMP_GE_OQ : _CMP_GT_OQ) : (last ? _CMP_LE_OQ : _CMP_LT_OQ);
        int64_t n8 = inner / 8, tasks = outer * n8;
#pragma omp parallel for num_threads(nthreads) if (tasks * dim * 8 > 65536) schedule(static)
        for (int64_t t = 0; t < tasks; t++) {
            int64_t o = t / n8, j = (t % n8) * 8;
            const float *xs = x + o * dim * inner + j;
            __m256 best = _mm256_loadu_ps(xs);
            __m256i idx = _mm256_setzero_si256();
            for (int64_t k = 1; k < dim; k++) {
                __m256 v = _mm256_loadu_ps(xs + k * inner), m;
                switch (pred) { /* the predicate must be a compile-time constant */
                case _CMP_GE_OQ: m = _mm256_cmp_ps(v, best, _CMP_GE_OQ); break;
                case _CMP_GT_OQ: m = _mm256_cmp_ps(v, best, _CMP_GT_OQ); break;
                case _CMP_LE_OQ: m = _mm256_cmp_ps(v, best, _CMP_LE_OQ); break;
                default: m = _mm256_cmp_ps(v, best, _CMP_LT_OQ); break;
                }
                best = _mm256_blendv_ps(best, v, m);
                idx = _mm256_blendv_epi8(idx, _mm256_set1_epi32((int32_t)k), _mm256_castps_si256(m));
            }
            int64_t *ys = y + o * inner + j;
            _mm256_storeu_si256((__m256i *)ys, _mm256_cvtepi32_epi64(_mm256_castsi256_si128(idx)));
            _mm256_storeu_si256((__m256i *)(ys + 4), _mm256_cvtepi32_epi64(_mm256_extracti128_si256(idx, 1)));
        }
        if (inner % 8 == 0) return;
        /* the last inner % 8 positions of every outer row */
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = n8 * 8; j < inner; j++) {
                const float *xs = x + o * dim * inner + j;
                float best = xs[0];
                int64_t bi = 0;
                for (int64_t k = 1; k < dim; k++) {
                    float v = xs[k * inner];
                    int better = want_max ? (last ? v >= best : v > best) : (last ? v <= best : v < best);
                    if (better) best = v, bi = k;
                }
                y[o * inner + j] = bi;
            }
        return;
    }
#endif
    argmax_f32_generic(x, y, outer, dim, inner, want_max, last, nthreads);
}
ARGMAX_T(argmax_f64, double)
ARGMAX_T(argmax_i32, int32_t)
ARGMAX_T(argmax_i64, int64_t)

static mtmi_status k_argmax(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                            int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0];
    int axis = (int)mt_attr_int(n, "axis", 0);
    if (axis < 0) axis += x->rank;
    int64_t outer = mt_numel(axis, x->dims), dim = x->dims[axis], inner = mt_numel(x->rank - axis - 1, x->dims + axis + 1);
    int want_max = !strcmp(n->op, "ArgMax"), last = (int)mt_attr_int(n, "select_last_index", 0);
    if (!outer || !inner) return MTMI_OK;
    switch (x->dtype) {
    case MTMI_FLOAT: argmax_f32(x->data, out[0].data, outer, dim, inner, want_max, last, ctx->nthreads); break;
    case MTMI_DOUBLE: argmax_f64(x->data, out[0].data, outer, dim, inner, want_max, last, ctx->nthreads); break;
    case MTMI_INT32: argmax_i32(x->data, out[0].data, outer, dim, inner, want_max, last, ctx->nthreads); break;
    case MTMI_INT64: argmax_i64(x->data, out[0].data, outer, dim, inner, want_max, last, ctx->nthreads); break;
    default: return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s", mt_dtype_name(x->dtype));
    }
    return MTMI_OK;
}


/* ---------------------------------------------- matrices, scans, layouts */
static mtmi_status k_trilu(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                           int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0];
    int64_t k = 0;
    if (nin > 1 && in[1].data) k = in[1].dtype == MTMI_INT64 ? *(const int64_t *)in[1].data : *(const int32_t *)in[1].data;
    int upper = (int)mt_attr_int(n, "upper", 1);
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1], mats = mt_numel(x->rank - 2, x->dims);
    size_t esz = mt_dtype_size(x->dtype);
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < rows; i++) {
            size_t row = (size_t)((m * rows + i) * cols) * esz;
            const char *src = (const char *)x->data + row;
            char *dst = (char *)out[0].data + row;
            for (int64_t j = 0; j < cols; j++) {
                int keep = upper ? j - i >= k : j - i <= k;
                if (keep) memcpy(dst + j * esz, src + j * esz, esz);
                else memset(dst + j * esz, 0, esz);
            }
        }
    return MTMI_OK;
}

#define CUMSUM_T(NAME, T, W)                                                                        \
    static void NAME(const T *x, T *y, int64_t outer, int64_t dim, int64_t inner, int excl, int rev, int prod) { \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t j = 0; j < inner; j++) {                                                  \
                T acc = prod ? 1 : 0;                                                              \
                for (int64_t t = 0; t < dim; t++) {                                                \
                    int64_t k = rev ? dim - 1 - t : t;                                             \
                    int64_t at = (o * dim + k) * inner + j;                                        \
                    T v = x[at];                                                                   \
                    if (excl) y[at] = acc;                                                         \
                    acc = (T)(prod ? (W)acc * (W)v : (W)acc + (W)v);                               \
                    if (!excl) y[at] = acc;                                                        \
                }                                                                                  \
            }                                                                                      \
    }
/* W: the type to compute in; integers wrap through uint64_t (no C overflow) */
CUMSUM_T(cumsum_f32, float, float)
CUMSUM_T(cumsum_f64, double, double)
CUMSUM_T(cumsum_i32, int32_t, uint64_t)
CUMSUM_T(cumsum_i64, int64_t, uint64_t)

static mtmi_status k_cumsum(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                            int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0];
    int64_t axis = in[1].dtype == MTMI_INT64 ? *(const int64_t *)in[1].data : *(const int32_t *)in[1].data;
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "axis out of range");
    int64_t outer = mt_numel((int)axis, x->dims), dim = x->dims[axis], inner = mt_numel(x->rank - (int)axis - 1, x->dims + axis + 1);
    int excl = (int)mt_attr_int(n, "exclusive", 0), rev = (int)mt_attr_int(n, "reverse", 0), prod = !strcmp(n->op, "CumProd");
    switch (x->dtype) {
    case MTMI_FLOAT: cumsum_f32(x->data, out[0].data, outer, dim, inner, excl, rev, prod); break;
    case MTMI_DOUBLE: cumsum_f64(x->data, out[0].data, outer, dim, inner, excl, rev, prod); break;
    case MTMI_INT32: cumsum_i32(x->data, out[0].data, outer, dim, inner, excl, rev, prod); break;
    case MTMI_INT64: cumsum_i64(x->data, out[0].data, outer, dim, inner, excl, rev, prod); break;
    default: return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s", mt_dtype_name(x->dtype));
    }
    return MTMI_OK;
}

/* DepthToSpace / SpaceToDepth are a 6-D transpose between two reshapes. */
static mtmi_status k_depth_space(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                 mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0];
    int64_t bs = mt_attr_int(n, "blocksize", 1), N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int crd = !strcmp(mt_attr_string(n, "mode", "DCR"), "CRD");
    int64_t dims[6], perm[6];
    if (!strcmp(n->op, "DepthToSpace")) {
        int64_t c = C / (bs * bs);
        if (crd) {
            int64_t d[6] = {N, c, bs, bs, H, W}, p[6] = {0, 1, 4, 2, 5, 3};
            memcpy(dims, d, sizeof d), memcpy(perm, p, sizeof p);
        } else {
            int64_t d[6] = {N, bs, bs, c, H, W}, p[6] = {0, 3, 4, 1, 5, 2};
            memcpy(dims, d, sizeof d), memcpy(perm, p, sizeof p);
        }
    } else {
        /* DCR puts the block offset before the channel, CRD after it */
        int64_t d[6] = {N, C, H / bs, bs, W / bs, bs}, p_dcr[6] = {0, 3, 5, 1, 2, 4}, p_crd[6] = {0, 1, 3, 5, 2, 4};
        memcpy(dims, d, sizeof d), memcpy(perm, crd ? p_crd : p_dcr, sizeof perm);
    }
    mt_cpu_transpose(out[0].data, x->data, 6, dims, perm, mt_dtype_size(x->dtype), ctx->nthreads);
    return MTMI_OK;
}

static mtmi_status k_gather_elements(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                     mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0], *ix = &in[1];
    int r = x->rank;
    int axis = (int)mt_attr_int(n, "axis", 0);
    if (axis < 0) axis += r;
    size_t esz = mt_dtype_size(x->dtype);
    int64_t xst[MT_MAX_RANK], cnt = mt_tview_numel(ix), dim = x->dims[axis];
    contiguous_strides(r, x->dims, xst);
    for (int64_t i = 0; i < cnt; i++) {
        int64_t v = ix->dtype == MTMI_INT64 ? ((const int64_t *)ix->data)[i] : ((const int32_t *)ix->data)[i];
        if (v < -dim || v >= dim)
            return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "index %lld out of range for axis of size %lld", (long long)v, (long long)dim);
        if (v < 0) v += dim;
        int64_t rem = i, off = 0;
        for (int d = r - 1; d >= 0; d--) {
            int64_t c = rem % ix->dims[d];
            rem /= ix->dims[d];
            off += (d == axis ? v : c) * xst[d];
        }
        memcpy((char *)out[0].data + i * esz, (const char *)x->data + off * esz, esz);
    }
    return MTMI_OK;
}

static mtmi_status k_eyelike(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                             int nout, mt_cpu_ctx *ctx) {
    int64_t rows = out[0].dims[0], cols = out[0].dims[1], k = mt_attr_int(n, "k", 0);
    size_t esz = mt_dtype_size(out[0].dtype);
    memset(out[0].data, 0, (size_t)(rows * cols) * esz);
    for (int64_t i = 0; i < rows; i++) {
        int64_t j = i + k;
        if (j < 0 || j >= cols) continue;
        char *p = (char *)out[0].data + (size_t)(i * cols + j) * esz;
        switch (out[0].dtype) {
        case MTMI_FLOAT: *(float *)p = 1; break;
        case MTMI_DOUBLE: *(double *)p = 1; break;
        case MTMI_INT32: *(int32_t *)p = 1; break;
        case MTMI_INT64: *(int64_t *)p = 1; break;
        default: *(uint8_t *)p = 1; break;
        }
    }
    return MTMI_OK;
}

/* Hardmax: 1 at the first maximum along the softmax axis (same axis rules). */
static mtmi_status k_hardmax(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                             int nout, mt_cpu_ctx *ctx) {
    int64_t outer, dim, inner;
    softmax_view(g, n, &in[0], &outer, &dim, &inner);
    int isf = in[0].dtype == MTMI_FLOAT;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t best = 0;
            for (int64_t k = 1; k < dim; k++) {
                int64_t a = (o * dim + k) * inner + j, b = (o * dim + best) * inner + j;
                double va = isf ? ((const float *)in[0].data)[a] : ((const double *)in[0].data)[a];
                double vb = isf ? ((const float *)in[0].data)[b] : ((const double *)in[0].data)[b];
                if (va > vb) best = k;
            }
            for (int64_t k = 0; k < dim; k++) {
                int64_t a = (o * dim + k) * inner + j;
                if (isf) ((float *)out[0].data)[a] = k == best;
                else ((double *)out[0].data)[a] = k == best;
            }
        }
    return MTMI_OK;
}


/* ------------------------------------------------- scatter, gather, top-k */
static inline int64_t index_at(const mt_tview *t, int64_t i) {
    return t->dtype == MTMI_INT64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
}

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

/* dst = reduce(dst, src) for one element of a numeric type. */
static void reduce_into(void *dst, const void *src, int dtype, int red) {
    switch (dtype) {
#define RED_CASE(DT, T)                                                                    \
    case DT: {                                                                             \
        T a = *(T *)dst, b = *(const T *)src;                                              \
        *(T *)dst = red == RED_ADD ? a + b : red == RED_MUL ? a * b : red == RED_MAX ? (a > b ? a : b) : (a < b ? a : b); \
        break;                                                                             \
    }
        RED_CASE(MTMI_FLOAT, float)
        RED_CASE(MTMI_DOUBLE, double)
        RED_CASE(MTMI_INT32, int32_t)
        RED_CASE(MTMI_INT64, int64_t)
#undef RED_CASE
    }
}

static int reduction_of(const mt_node *n) {
    const char *r = mt_attr_string(n, "reduction", "none");
    return !strcmp(r, "add") ? RED_ADD : !strcmp(r, "mul") ? RED_MUL : !strcmp(r, "max") ? RED_MAX : !strcmp(r, "min") ? RED_MIN : RED_NONE;
}

static mtmi_status k_scatter_elements(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                      mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0], *ix = &in[1], *u = &in[2];
    int r = x->rank, red = reduction_of(n);
    int axis = (int)mt_attr_int(n, "axis", 0);
    if (axis < 0) axis += r;
    size_t esz = mt_dtype_size(x->dtype);
    memcpy(out[0].data, x->data, (size_t)mt_tview_numel(x) * esz);
    int64_t xst[MT_MAX_RANK], cnt = mt_tview_numel(ix), dim = x->dims[axis];
    contiguous_strides(r, x->dims, xst);
    for (int64_t i = 0; i < cnt; i++) {
        int64_t v = index_at(ix, i);
        if (v < -dim || v >= dim)
            return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "index %lld out of range for axis of size %lld", (long long)v, (long long)dim);
        if (v < 0) v += dim;
        int64_t rem = i, off = 0;
        for (int d = r - 1; d >= 0; d--) {
            int64_t c = rem % ix->dims[d];
            rem /= ix->dims[d];
            off += (d == axis ? v : c) * xst[d];
        }
        char *dst = (char *)out[0].data + off * (int64_t)esz;
        const char *src = (const char *)u->data + i * (int64_t)esz;
        if (red == RED_NONE) memcpy(dst, src, esz);
        else reduce_into(dst, src, x->dtype, red);
    }
    return MTMI_OK;
}

static mtmi_status k_scatter_nd(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                                mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0], *ix = &in[1], *u = &in[2];
    int red = reduction_of(n);
    size_t esz = mt_dtype_size(x->dtype);
    memcpy(out[0].data, x->data, (size_t)mt_tview_numel(x) * esz);
    int64_t k = ix->dims[ix->rank - 1], tuples = mt_tview_numel(ix) / (k ? k : 1);
    int64_t slice = mt_numel(x->rank - (int)k, x->dims + k), xst[MT_MAX_RANK];
    contiguous_strides(x->rank, x->dims, xst);
    for (int64_t t = 0; t < tuples; t++) {
        int64_t off = 0;
        for (int64_t d = 0; d < k; d++) {
            int64_t v = index_at(ix, t * k + d);
            if (v < -x->dims[d] || v >= x->dims[d])
                return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "index %lld out of range for axis of size %lld", (long long)v, (long long)x->dims[d]);
            off += (v < 0 ? v + x->dims[d] : v) * xst[d];
        }
        char *dst = (char *)out[0].data + off * (int64_t)esz;
        const char *src = (const char *)u->data + t * slice * (int64_t)esz;
        if (red == RED_NONE) memcpy(dst, src, (size_t)slice * esz);
        else
            for (int64_t e = 0; e < slice; e++) reduce_into(dst + e * (int64_t)esz, src + e * (int64_t)esz, x->dtype, red);
    }
    return MTMI_OK;
}

static mtmi_status k_gather_nd(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin,
                               mt_tview *out, int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0], *ix = &in[1];
    int64_t b = mt_attr_int(n, "batch_dims", 0), k = ix->dims[ix->rank - 1];
    size_t esz = mt_dtype_size(x->dtype);
    int64_t batches = mt_numel((int)b, x->dims);
    int64_t per_batch = mt_numel(ix->rank - 1 - (int)b, ix->dims + b); /* tuples per batch */
    int64_t slice = mt_numel(x->rank - (int)(b + k), x->dims + b + k), xst[MT_MAX_RANK];
    contiguous_strides(x->rank, x->dims, xst);
    int64_t bstride = b ? xst[b - 1] : 0;
    for (int64_t bi = 0; bi < batches; bi++)
        for (int64_t t = 0; t < per_batch; t++) {
            int64_t tuple = bi * per_batch + t, off = bi * bstride;
            for (int64_t d = 0; d < k; d++) {
                int64_t dim = x->dims[b + d], v = index_at(ix, tuple * k + d);
                if (v < -dim || v >= dim)
                    return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "index %lld out of range for axis of size %lld", (long long)v, (long long)dim);
                off += (v < 0 ? v + dim : v) * xst[b + d];
            }
            memcpy((char *)out[0].data + tuple * slice * (int64_t)esz, (const char *)x->data + off * (int64_t)esz, (size_t)slice * esz);
        }
    return MTMI_OK;
}

static mtmi_status k_onehot(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                            int nout, mt_cpu_ctx *ctx) {
    const mt_tview *ix = &in[0], *vals = &in[2];
    int r = out[0].rank;
    int64_t axis = mt_attr_int(n, "axis", -1);
    if (axis < 0) axis += r;
    int64_t depth = out[0].dims[axis], outer = mt_numel((int)axis, out[0].dims), inner = mt_numel(r - (int)axis - 1, out[0].dims + axis + 1);
    size_t esz = mt_dtype_size(vals->dtype);
    const char *off = vals->data, *on = (const char *)vals->data + esz;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            int64_t i = o * inner + j, v;
            switch (ix->dtype) {
            case MTMI_FLOAT: v = (int64_t)((const float *)ix->data)[i]; break;
            case MTMI_DOUBLE: v = (int64_t)((const double *)ix->data)[i]; break;
            default: v = index_at(ix, i); break;
            }
            if (v < 0) v += depth;
            for (int64_t k = 0; k < depth; k++)
                memcpy((char *)out[0].data + ((o * depth + k) * inner + j) * (int64_t)esz, k == v ? on : off, esz);
        }
    return MTMI_OK;
}

/* TopK: one (value, index) sort per row; ties go to the smaller index. */
typedef struct topk_item {
    double v;
    int64_t i;
} topk_item;

static int topk_cmp_largest(const void *a, const void *b) {
    const topk_item *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int topk_cmp_smallest(const void *a, const void *b) {
    const topk_item *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static double read_num(const void *p, int dtype, int64_t i) {
    switch (dtype) {
    case MTMI_FLOAT: return ((const float *)p)[i];
    case MTMI_DOUBLE: return ((const double *)p)[i];
    case MTMI_INT32: return ((const int32_t *)p)[i];
    default: return (double)((const int64_t *)p)[i];
    }
}

static void write_num(void *p, int dtype, int64_t i, double v) {
    switch (dtype) {
    case MTMI_FLOAT: ((float *)p)[i] = (float)v; break;
    case MTMI_DOUBLE: ((double *)p)[i] = v; break;
    case MTMI_INT32: ((int32_t *)p)[i] = (int32_t)v; break;
    default: ((int64_t *)p)[i] = (int64_t)v; break;
    }
}

static mtmi_status k_topk(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                          int nout, mt_cpu_ctx *ctx) {
    const mt_tview *x = &in[0];
    int axis = (int)mt_attr_int(n, "axis", -1);
    if (axis < 0) axis += x->rank;
    int64_t outer = mt_numel(axis, x->dims), dim = x->dims[axis], inner = mt_numel(x->rank - axis - 1, x->dims + axis + 1);
    int64_t k = out[0].dims[axis];
    int largest = (int)mt_attr_int(n, "largest", 1);
    topk_item *items = malloc(sizeof(topk_item) * (size_t)(dim ? dim : 1));
    if (!items) return mt_kernel_fail(g, n, MTMI_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            for (int64_t t = 0; t < dim; t++) {
                items[t].v = read_num(x->data, x->dtype, (o * dim + t) * inner + j);
                items[t].i = t;
            }
            qsort(items, (size_t)dim, sizeof *items, largest ? topk_cmp_largest : topk_cmp_smallest);
            for (int64_t t = 0; t < k; t++) {
                int64_t at = (o * k + t) * inner + j;
                write_num(out[0].data, x->dtype, at, items[t].v);
                if (nout > 1 && out[1].data) ((int64_t *)out[1].data)[at] = items[t].i;
            }
        }
    free(items);
    return MTMI_OK;
}

/* Dropout at inference: the identity, and a mask of ones. */
static mtmi_status k_dropout(const mt_graph *g, const mt_node *n, void *state, const mt_tview *in, int nin, mt_tview *out,
                             int nout, mt_cpu_ctx *ctx) {
    int64_t cnt = mt_tview_numel(&in[0]);
    memcpy(out[0].data, in[0].data, (size_t)cnt * mt_dtype_size(in[0].dtype));
    if (nout > 1 && out[1].data) {
        if (out[1].dtype == MTMI_BOOL) memset(out[1].data, 1, (size_t)cnt);
        else
            for (int64_t i = 0; i < cnt; i++) write_num(out[1].data, out[1].dtype, i, 1.0);
    }
    return MTMI_OK;
}

const mt_cpu_kernel mt_kernels_shape[] = {
    {"Reshape", "", NULL, NULL, NULL, NULL, MT_KERNEL_ALIAS},
    {"Flatten", "", NULL, NULL, NULL, NULL, MT_KERNEL_ALIAS},
    {"Squeeze", "", NULL, NULL, NULL, NULL, MT_KERNEL_ALIAS},
    {"Unsqueeze", "", NULL, NULL, NULL, NULL, MT_KERNEL_ALIAS},
    {"Shape", "", k_shape, NULL, NULL, NULL, 0},
    {"Size", "", k_size, NULL, NULL, NULL, 0},
    {"Transpose", "", k_transpose, NULL, NULL, NULL, 0},
    {"Gather", "", k_gather, NULL, NULL, NULL, 0},
    {"Concat", "", k_concat, NULL, NULL, NULL, 0},
    {"Split", "", k_split, NULL, NULL, NULL, 0},
    {"Slice", "", k_slice, NULL, NULL, NULL, 0},
    {"Expand", "", k_expand, NULL, NULL, NULL, 0},
    {"Tile", "", k_tile, NULL, NULL, NULL, 0},
    {"ConstantOfShape", "", k_constant_of_shape, NULL, NULL, NULL, 0},
    {"Range", "", k_range, NULL, NULL, NULL, 0},
    {"Pad", "", k_pad, NULL, NULL, NULL, 0},
    {"Softmax", "", k_softmax, NULL, NULL, NULL, 0},
    {"LogSoftmax", "", k_softmax, NULL, NULL, NULL, 0},
    {"ReduceMean", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceSum", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceMax", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceMin", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceProd", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceSumSquare", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceL1", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceL2", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceLogSum", "", k_reduce, NULL, NULL, NULL, 0},
    {"ReduceLogSumExp", "", k_reduce, NULL, NULL, NULL, 0},
    {"ArgMax", "", k_argmax, NULL, NULL, NULL, 0},
    {"ArgMin", "", k_argmax, NULL, NULL, NULL, 0},
    {"Trilu", "", k_trilu, NULL, NULL, NULL, 0},
    {"CumSum", "", k_cumsum, NULL, NULL, NULL, 0},
    {"CumProd", "", k_cumsum, NULL, NULL, NULL, 0},
    {"ScatterElements", "", k_scatter_elements, NULL, NULL, NULL, 0},
    {"ScatterND", "", k_scatter_nd, NULL, NULL, NULL, 0},
    {"GatherND", "", k_gather_nd, NULL, NULL, NULL, 0},
    {"OneHot", "", k_onehot, NULL, NULL, NULL, 0},
    {"TopK", "", k_topk, NULL, NULL, NULL, 0},
    {"Dropout", "", k_dropout, NULL, NULL, NULL, 0},
    {"DepthToSpace", "", k_depth_space, NULL, NULL, NULL, 0},
    {"SpaceToDepth", "", k_depth_space, NULL, NULL, NULL, 0},
    {"GatherElements", "", k_gather_elements, NULL, NULL, NULL, 0},
    {"EyeLike", "", k_eyelike, NULL, NULL, NULL, 0},
    {"Hardmax", "", k_hardmax, NULL, NULL, NULL, 0},
    {NULL, NULL, NULL, NULL, NULL, NULL, 0},
};
