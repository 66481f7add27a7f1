/* MatMul / Gemm / Linear as cuBLASLt GEMMs (bias and activation in the
 * epilogue), and the attention pattern (MatMul-Softmax-MatMul, or
 * mtmi.Attention) as one flash-attention step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/plan_int.h"

/* ---------------------------------------------------------------- GEMM */
/* C2[m,n] = A2[m,k] B2[k,n] (+bias, act); all 2-D views (batch 1). */
mtmi_status mc_emit_gemm2(mc_plan *p, int node, mc_tref A, mc_tref B, const mc_tref *bias, int act, float alpha,
                              const mc_tref *C) {
    int64_t m = A.dims[0], k = A.dims[1], n = B.dims[1];
    mc_gemm gm;
    memset(&gm, 0, sizeof gm);
    for (int pass = 0; pass < 2; pass++) {
        if ((A.strides[1] == 1 || k == 1) && (A.strides[0] >= k || m == 1)) {
            gm.a_rowmajor = 1;
            gm.lda = m == 1 ? k : A.strides[0];
        } else if ((A.strides[0] == 1 || m == 1) && A.strides[1] >= m) {
            gm.a_rowmajor = 0;
            gm.lda = k == 1 ? m : A.strides[1];
        } else if (!pass) {
            TRY(mc_make_contig(p, node, &A));
            continue;
        }
        break;
    }
    for (int pass = 0; pass < 2; pass++) {
        if ((B.strides[1] == 1 || n == 1) && (B.strides[0] >= n || k == 1)) {
            gm.b_rowmajor = 1;
            gm.ldb = k == 1 ? n : B.strides[0];
        } else if ((B.strides[0] == 1 || k == 1) && B.strides[1] >= k) {
            gm.b_rowmajor = 0;
            gm.ldb = n == 1 ? k : B.strides[1];
        } else if (!pass) {
            TRY(mc_make_contig(p, node, &B));
            continue;
        }
        break;
    }
    if (gm.lda < 1) gm.lda = 1;
    if (gm.ldb < 1) gm.ldb = 1;
    gm.m = m;
    gm.n = n;
    gm.k = k;
    gm.ldc = m == 1 ? n : C->strides[0];
    gm.batch = 1;
    gm.act = act;
    gm.alpha = alpha;
    gm.has_bias = bias != NULL;
    mc_step *s = mc_new_step(p, MC_GEMM, node);
    if (!s) return NOMEM();
    s->gemm = gm;
    s->t[0] = *C;
    s->t[1] = A;
    s->t[2] = B;
    s->nt = 3;
    if (bias) {
        s->t[3] = *bias;
        s->nt = 4;
    }
    return MTMI_OK;
}

/* A bias for a GEMM/conv output of n columns: const with n elements (any
 * shape of ones and n), in the storage type. */
static int bias_like(mc_plan *p, int v, int64_t n) {
    if (v < 0) return 0;
    const mt_value *b = mc_val(p, v);
    if (!b->data || !mc_is_float(b->dtype) || mt_value_numel(b) != n) return 0;
    return b->rank >= 1 && b->dims[b->rank - 1] == n;
}

mtmi_status mc_bias_tref(mc_plan *p, int v, mc_tref *t) {
    TRY(mc_get(p, v, t));
    int64_t n = mc_numel(t);
    t->rank = 1;
    t->dims[0] = n;
    t->strides[0] = 1;
    return MTMI_OK;
}

/* Batched MatMul / Linear: A [..., M, K] @ B [..., K, N]. */
static mtmi_status plan_matmul_core(mc_plan *p, int i, mc_tref A, mc_tref B, int bias_v, int act, float alpha,
                                    int out_v) {
    const mt_value *ov = mc_val(p, out_v);
    if (A.rank < 2 || B.rank < 2) return mc_unsupported(p, i, "MatMul with 1-D operands");
    int64_t M = A.dims[A.rank - 2], K = A.dims[A.rank - 1], Nn = B.dims[B.rank - 1];
    int orank = ov->rank;
    int64_t batch = 1;
    for (int d = 0; d < orank - 2; d++) batch *= ov->dims[d];
    int64_t bb = 1;
    for (int d = 0; d < B.rank - 2; d++) bb *= B.dims[d];
    mc_tref biasT, *bias = NULL;
    if (bias_v >= 0) {
        TRY(mc_bias_tref(p, bias_v, &biasT));
        bias = &biasT;
    }
    if (bb == 1) {
        int64_t d2[2] = {batch * M, K}, db[2] = {K, Nn};
        mc_tref A2, B2;
        if (!mc_reshape_view(&A, 2, d2, &A2)) {
            TRY(mc_make_contig(p, i, &A));
            mc_reshape_view(&A, 2, d2, &A2);
        }
        mc_reshape_view(&B, 2, db, &B2);
        mc_tref C, C2;
        TRY(mc_dest_for(p, out_v, NULL, &C));
        int64_t dc[2] = {batch * M, Nn};
        if (!mc_reshape_view(&C, 2, dc, &C2) || (C2.strides[1] != 1 && Nn > 1) || (act >= 2 && !mc_is_contig(&C))) {
            if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), ov->rank, ov->dims, &C)) return NOMEM();
            mc_reshape_view(&C, 2, dc, &C2);
        }
        TRY(mc_emit_gemm2(p, i, A2, B2, bias, act, alpha, &C2));
        mc_set(p, out_v, &C);
        return MTMI_OK;
    }
    /* batched: broadcast both to the output batch dims, views [batch, r, c] */
    int64_t bd[MT_MAX_RANK];
    for (int d = 0; d < orank - 2; d++) bd[d] = ov->dims[d];
    mc_tref Ab, Bb, A3, B3;
    bd[orank - 2] = M; bd[orank - 1] = K;
    mc_broadcast_to(&A, orank, bd, &Ab);
    bd[orank - 2] = K; bd[orank - 1] = Nn;
    mc_broadcast_to(&B, orank, bd, &Bb);
    int64_t da[3] = {batch, M, K}, db[3] = {batch, K, Nn};
    if (!mc_reshape_view(&Ab, 3, da, &A3)) {
        TRY(mc_make_contig(p, i, &A));
        bd[orank - 2] = M; bd[orank - 1] = K;
        mc_broadcast_to(&A, orank, bd, &Ab);
        if (!mc_reshape_view(&Ab, 3, da, &A3)) return mc_unsupported(p, i, "batch layout of A");
    }
    if (!mc_reshape_view(&Bb, 3, db, &B3)) {
        TRY(mc_make_contig(p, i, &B));
        bd[orank - 2] = K; bd[orank - 1] = Nn;
        mc_broadcast_to(&B, orank, bd, &Bb);
        if (!mc_reshape_view(&Bb, 3, db, &B3)) return mc_unsupported(p, i, "batch layout of B");
    }
    mc_tref C;
    if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), ov->rank, ov->dims, &C)) return NOMEM();
    mc_tref A2 = A3, B2 = B3, C2 = C;
    A2.rank = 2; A2.dims[0] = M; A2.dims[1] = K; A2.strides[0] = A3.strides[1]; A2.strides[1] = A3.strides[2];
    B2.rank = 2; B2.dims[0] = K; B2.dims[1] = Nn; B2.strides[0] = B3.strides[1]; B2.strides[1] = B3.strides[2];
    C2.rank = 2; C2.dims[0] = M; C2.dims[1] = Nn; C2.strides[0] = Nn; C2.strides[1] = 1;
    if ((A2.strides[1] != 1 && A2.strides[0] != 1) || (B2.strides[1] != 1 && B2.strides[0] != 1))
        return mc_unsupported(p, i, "matrix without a unit stride");
    TRY(mc_emit_gemm2(p, i, A2, B2, bias, act, alpha, &C2));
    mc_step *s = &p->steps[p->nsteps - 1];
    s->gemm.batch = batch;
    s->gemm.sa = A3.strides[0];
    s->gemm.sb = B3.strides[0];
    s->gemm.sc = M * Nn;
    if (s->t[1].buf != A3.buf || s->t[2].buf != B3.buf) return mc_unsupported(p, i, "batched operand copy");
    mc_set(p, out_v, &C);
    return MTMI_OK;
}

/* softmax(Q K^T * scale) V: raw MatMul -> [Mul|Div scalar] -> Softmax -> MatMul. */
static int match_attention(mc_plan *p, int i, float *scale, int *last) {
    const mt_node *m1 = mc_node(p, i);
    if (mc_val(p, m1->in[0])->rank < 3 || mc_val(p, m1->in[1])->rank != mc_val(p, m1->in[0])->rank) return 0;
    if (mc_val(p, m1->in[0])->data || mc_val(p, m1->in[1])->data) return 0;
    int c = mc_sole_consumer(p, m1->out[0]);
    if (c < 0) return 0;
    float sc = 1.f, f;
    int mulnode = -1;
    if (mc_op_is(mc_node(p, c), "Mul") || mc_op_is(mc_node(p, c), "Div")) {
        const mt_node *mn = mc_node(p, c);
        int other = mn->in[0] == m1->out[0] ? mn->in[1] : mn->in[0];
        if (!mc_scalar_const(p, other, &f)) return 0;
        if (mc_op_is(mn, "Div")) {
            if (mn->in[1] != other) return 0;
            sc = 1.f / f;
        } else sc = f;
        mulnode = c;
        c = mc_sole_consumer(p, mn->out[0]);
        if (c < 0) return 0;
    }
    const mt_node *sm = mc_node(p, c);
    if (!mc_op_is(sm, "Softmax")) return 0;
    int r = mc_val(p, sm->out[0])->rank;
    int64_t ax = mt_attr_int(sm, "axis", p->g->opset >= 13 ? -1 : 1);
    if (mt_norm_axis(ax, r) != r - 1) return 0;
    int c2 = mc_sole_consumer(p, sm->out[0]);
    if (c2 < 0 || !mc_op_is(mc_node(p, c2), "MatMul") || mc_node(p, c2)->in[0] != sm->out[0]) return 0;
    const mt_value *vv = mc_val(p, mc_node(p, c2)->in[1]);
    if (vv->data || vv->rank != r) return 0;
    if (mulnode >= 0) p->skip[mulnode] = 1;
    p->skip[c] = 1;
    p->skip[c2] = 1;
    *scale = sc;
    *last = c2;
    return 1;
}

static void to4(mc_tref *t) {
    if (t->rank == 3) {
        for (int d = 3; d > 0; d--) {
            t->dims[d] = t->dims[d - 1];
            t->strides[d] = t->strides[d - 1];
        }
        t->dims[1] = 1;
        t->strides[1] = 0;
        t->rank = 4;
    }
}

static mtmi_status emit_attention(mc_plan *p, int i, mc_tref Q, mc_tref K, mc_tref Vt, float scale, int out_v) {
    const mt_value *ov = mc_val(p, out_v);
    if (Q.rank > 4) return mc_unsupported(p, i, "attention of rank > 4");
    to4(&Q); to4(&K); to4(&Vt);
    if (Q.strides[3] != 1 && Q.dims[3] > 1) { TRY(mc_make_contig(p, i, &Q)); }
    if (K.strides[3] != 1 && K.dims[3] > 1) { TRY(mc_make_contig(p, i, &K)); }
    if (Vt.strides[3] != 1 && Vt.dims[3] > 1) { TRY(mc_make_contig(p, i, &Vt)); }
    int64_t B = Q.dims[0], H = Q.dims[1], Nq = Q.dims[2], D = Q.dims[3], M = K.dims[2];
    /* K and V may broadcast over batch/heads */
    mc_tref O;
    if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), ov->rank, ov->dims, &O)) return NOMEM();
    mc_tref O4 = O;
    to4(&O4);
    /* physical order (B, N, H, D): the usual transpose back to tokens is free */
    O4.strides[3] = 1;
    O4.strides[1] = D;
    O4.strides[2] = H * D;
    O4.strides[0] = Nq * H * D;
    if (ov->rank == 4) {
        for (int d = 0; d < 4; d++) O.strides[d] = O4.strides[d];
    } else {
        O.strides[0] = O4.strides[0];
        O.strides[1] = O4.strides[2];
        O.strides[2] = 1;
    }
    mc_step *s = mc_new_step(p, MC_ATTN, i);
    if (!s) return NOMEM();
    s->t[0] = O4;
    s->t[1] = Q;
    s->t[2] = K;
    s->t[3] = Vt;
    s->nt = 4;
    s->u.attn.scale = scale;
    s->u.attn.B = B; s->u.attn.H = H; s->u.attn.N = Nq; s->u.attn.M = M; s->u.attn.D = D;
    mc_set(p, out_v, &O);
    return MTMI_OK;
}

mtmi_status mc_plan_matmul(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    float scale;
    int last;
    if (match_attention(p, i, &scale, &last)) {
        mc_tref Q, KT, Vv;
        TRY(mc_get(p, n->in[0], &Q));
        TRY(mc_get(p, n->in[1], &KT));
        TRY(mc_get(p, mc_node(p, last)->in[1], &Vv));
        mc_tref K = KT;
        int r = K.rank;
        K.dims[r - 2] = KT.dims[r - 1];
        K.dims[r - 1] = KT.dims[r - 2];
        K.strides[r - 2] = KT.strides[r - 1];
        K.strides[r - 1] = KT.strides[r - 2];
        return emit_attention(p, i, Q, K, Vv, scale, mc_node(p, last)->out[0]);
    }
    mc_tref A, B;
    TRY(mc_get(p, n->in[0], &A));
    TRY(mc_get(p, n->in[1], &B));
    int out_v = n->out[0], bias_v = -1, act = 0;
    int64_t Nn = B.dims[B.rank - 1];
    int c = mc_sole_consumer(p, out_v);
    if (c >= 0 && mc_op_is(mc_node(p, c), "Add")) {
        const mt_node *an = mc_node(p, c);
        int other = an->in[0] == out_v ? an->in[1] : an->in[0];
        if (bias_like(p, other, Nn) && mc_val(p, other)->rank <= mc_val(p, out_v)->rank) {
            bias_v = other;
            p->skip[c] = 1;
            out_v = an->out[0];
        }
    }
    out_v = mc_absorb_act(p, out_v, &act);
    return plan_matmul_core(p, i, A, B, bias_v, act, 1.f, out_v);
}

mtmi_status mc_plan_linear(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref A, B;
    TRY(mc_get(p, n->in[0], &A));
    TRY(mc_get(p, n->in[1], &B));
    int act = mc_act_code(mt_attr_string(n, "activation", ""));
    if (act < 0) return mc_unsupported(p, i, "activation");
    int out_v = mc_absorb_act(p, n->out[0], &act);
    return plan_matmul_core(p, i, A, B, n->nin > 2 ? n->in[2] : -1, act, 1.f, out_v);
}

mtmi_status mc_plan_gemm(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref A, B;
    TRY(mc_get(p, n->in[0], &A));
    TRY(mc_get(p, n->in[1], &B));
    if (A.rank != 2 || B.rank != 2) return mc_unsupported(p, i, "Gemm operands must be 2-D");
    if (mt_attr_int(n, "transA", 0)) {
        int64_t t = A.dims[0]; A.dims[0] = A.dims[1]; A.dims[1] = t;
        t = A.strides[0]; A.strides[0] = A.strides[1]; A.strides[1] = t;
    }
    if (mt_attr_int(n, "transB", 0)) {
        int64_t t = B.dims[0]; B.dims[0] = B.dims[1]; B.dims[1] = t;
        t = B.strides[0]; B.strides[0] = B.strides[1]; B.strides[1] = t;
    }
    float alpha = mt_attr_float(n, "alpha", 1.f), beta = mt_attr_float(n, "beta", 1.f);
    int bias_v = -1;
    if (n->nin > 2 && n->in[2] >= 0 && beta != 0.f) {
        if (!bias_like(p, n->in[2], B.dims[1])) return mc_unsupported(p, i, "Gemm C must be a constant vector");
        if (beta != 1.f) return mc_unsupported(p, i, "Gemm beta != 1");
        bias_v = n->in[2];
    }
    int act = 0;
    int out_v = mc_absorb_act(p, n->out[0], &act);
    return plan_matmul_core(p, i, A, B, bias_v, act, alpha, out_v);
}

mtmi_status mc_plan_mtmi_attention(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref Q, K, Vv;
    TRY(mc_get(p, n->in[0], &Q));
    TRY(mc_get(p, n->in[1], &K));
    TRY(mc_get(p, n->in[2], &Vv));
    float scale = mt_attr_float(n, "scale", 1.f / sqrtf((float)Q.dims[Q.rank - 1]));
    return emit_attention(p, i, Q, K, Vv, scale, n->out[0]);
}
