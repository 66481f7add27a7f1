/* MatMul, Gemm and mtmi.Linear on OpenBLAS sgemm.
 *
 * Threading: our OpenMP threads share out (batch, row block) items and
 * each calls a single-threaded sgemm and runs the epilogue on its block
 * while it is in cache.  OpenBLAS's own pool is never woken: two pools
 * taking turns (both spin when idle) fight for the cores. */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "cpu/kernels_nn.h"

/* Row-major C[M,N] = A[M,K] B[K,N] (+ C if beta). */
static void sgemm_nn(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                     int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0.0f)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(float) * N);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

/* Rows per block: about `budget` bytes of A+C rows, at least 64 rows, and
 * at least one block per thread. */
static int64_t row_block(int64_t M, int64_t K, int64_t N, int nth) {
    int64_t rb = (int64_t)(1u << 20) / ((K + N) * (int64_t)sizeof(float));
    int64_t even = (M + nth - 1) / nth;
    if (rb > even) rb = even;
    if (rb < 64) rb = 64;
    if (rb > M) rb = M;
    return rb > 0 ? rb : 1;
}

/* Y[M,N] = act(X[M,K] W[K,N] + bias) by row blocks over the threads. */
static void gemm_rows(int64_t M, int64_t N, int64_t K, const float *X, const float *W, const float *bias, int act, float *Y,
                      int nth) {
    if (M <= 0 || N <= 0) return;
    int64_t rb = row_block(M, K, N, nth), nb = (M + rb - 1) / rb;
    int team = (int)MT_MIN((int64_t)nth, nb);
    openblas_set_num_threads(1);
    #pragma omp parallel for num_threads(team) schedule(dynamic, 1)
    for (int64_t b = 0; b < nb; b++) {
        int64_t r0 = b * rb, m = MT_MIN(rb, M - r0);
        sgemm_nn(m, N, K, X + r0 * K, K, W, N, 0.0f, Y + r0 * N, N);
        if (act != MT_ACT_NONE || bias)
            for (int64_t i = 0; i < m; i++) mt_nn_bias_vec_act(Y + (r0 + i) * N, N, bias, act);
    }
    openblas_set_num_threads(nth);
}

mtmi_status mt_nn_matmul(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                         mt_cpu_ctx *ctx) {
    mtmi_status s = mt_nn_need_f32(g, n, in, 2);
    if (s) return s;
    const mt_tview *a = &in[0], *b = &in[1];
    int64_t da[MT_MAX_RANK], db[MT_MAX_RANK];
    int ra = a->rank, rb = b->rank;
    memcpy(da, a->dims, sizeof(int64_t) * ra);
    memcpy(db, b->dims, sizeof(int64_t) * rb);
    if (ra == 1) { da[1] = da[0]; da[0] = 1; ra = 2; }
    if (rb == 1) { db[1] = 1; rb = 2; }
    int64_t M = da[ra - 2], K = da[ra - 1], N = db[rb - 1];
    if (db[rb - 2] != K) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "inner dimensions %lld and %lld differ", (long long)K, (long long)db[rb - 2]);
    /* Batch dims right-aligned to rank r. */
    int r = MT_MAX(ra, rb) - 2;
    int64_t ba[MT_MAX_RANK], bb[MT_MAX_RANK], bo[MT_MAX_RANK];
    int64_t nba = 1, nbb = 1, nbo = 1;
    for (int i = 0; i < r; i++) {
        ba[i] = i - (r - (ra - 2)) >= 0 ? da[i - (r - (ra - 2))] : 1;
        bb[i] = i - (r - (rb - 2)) >= 0 ? db[i - (r - (rb - 2))] : 1;
        if (ba[i] != bb[i] && ba[i] != 1 && bb[i] != 1) return mt_kernel_fail(g, n, MTMI_ERR_SHAPE, "batch dimensions do not broadcast");
        bo[i] = ba[i] == 1 ? bb[i] : ba[i];
        nba *= ba[i];
        nbb *= bb[i];
        nbo *= bo[i];
    }
    const float *A = a->data, *B = b->data;
    float *Y = out[0].data;
    const int nth = ctx->nthreads;
    if (nbb == 1) {
        /* The batch folds into the rows of A. */
        gemm_rows(nba * M, N, K, A, B, NULL, MT_ACT_NONE, Y, nth);
        return MTMI_OK;
    }
    /* Work items: (batch, row block); single-threaded sgemm each. */
    int64_t rpb = row_block(M, K, N, (int)MT_MAX(1, nth / MT_MAX(nbo, 1))), nrb = (M + rpb - 1) / rpb;
    int64_t items = nbo * nrb;
    int team = (int)MT_MIN((int64_t)nth, items);
    openblas_set_num_threads(1);
    #pragma omp parallel for num_threads(team) schedule(dynamic, 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t t = it / nrb, r0 = it % nrb * rpb, m = MT_MIN(rpb, M - r0);
        int64_t oa = 0, ob = 0, sa = 1, sb = 1, rem = t;
        for (int i = r - 1; i >= 0; i--) {
            int64_t ix = rem % bo[i];
            rem /= bo[i];
            oa += (ba[i] == 1 ? 0 : ix) * sa;
            ob += (bb[i] == 1 ? 0 : ix) * sb;
            sa *= ba[i];
            sb *= bb[i];
        }
        sgemm_nn(m, N, K, A + oa * M * K + r0 * K, K, B + ob * K * N, N, 0.0f, Y + t * M * N + r0 * N, N);
    }
    openblas_set_num_threads(nth);
    return MTMI_OK;
}

mtmi_status mt_nn_gemm(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                       mt_cpu_ctx *ctx) {
    mtmi_status s = mt_nn_need_f32(g, n, in, nin < 3 ? nin : 3);
    if (s) return s;
    int ta = mt_attr_int(n, "transA", 0) != 0, tb = mt_attr_int(n, "transB", 0) != 0;
    float alpha = mt_attr_float(n, "alpha", 1.0f), beta = mt_attr_float(n, "beta", 1.0f);
    const mt_tview *a = &in[0], *b = &in[1], *c = nin > 2 && in[2].data ? &in[2] : NULL;
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t N = tb ? b->dims[0] : b->dims[1];
    float *Y = out[0].data;
    float bet = 0.0f;
    if (c && beta != 0.0f) {
        int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        const float *C = c->data;
        #pragma omp parallel for num_threads(ctx->nthreads) if (M * N > 65536)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) Y[i * N + j] = beta * C[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
        bet = 1.0f;
    }
    if (M > 0 && N > 0) {
        if (K > 0) {
            /* Row blocks of op(A) over our threads (see the top). */
            const int nth = ctx->nthreads;
            int64_t rb = row_block(M, K, N, nth), nb = (M + rb - 1) / rb;
            const float *A = a->data;
            int lda = (int)a->dims[1];
            openblas_set_num_threads(1);
            #pragma omp parallel for num_threads((int)MT_MIN((int64_t)nth, nb)) schedule(dynamic, 1)
            for (int64_t bi = 0; bi < nb; bi++) {
                int64_t r0 = bi * rb, m = MT_MIN(rb, M - r0);
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)N, (int)K, alpha,
                            ta ? A + r0 : A + r0 * lda, lda, b->data, (int)b->dims[1], bet, Y + r0 * N, (int)N);
            }
            openblas_set_num_threads(nth);
        } else if (bet == 0.0f)
            memset(Y, 0, sizeof(float) * M * N);
    }
    return MTMI_OK;
}

mtmi_status mt_nn_linear(const mt_graph *g, const mt_node *n, void *st, const mt_tview *in, int nin, mt_tview *out, int nout,
                         mt_cpu_ctx *ctx) {
    mtmi_status s = mt_nn_need_f32(g, n, in, nin < 3 ? nin : 3);
    if (s) return s;
    int act = mt_nn_act_of(n);
    if (act < 0) return mt_kernel_fail(g, n, MTMI_ERR_UNSUPPORTED, "unknown activation");
    const mt_tview *x = &in[0], *w = &in[1];
    const float *B = nin > 2 && in[2].data ? in[2].data : NULL;
    int64_t K = w->dims[0], N = w->dims[1];
    int64_t M = K ? mt_tview_numel(x) / K : 0;
    gemm_rows(M, N, K, x->data, w->data, B, act, out[0].data, ctx->nthreads);
    return MTMI_OK;
}
