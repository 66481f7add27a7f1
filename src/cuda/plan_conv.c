/* Conv / FusedConv (cuDNN, our direct and depthwise kernels, 1x1 as a
 * GEMM, im2col + GEMM) and the INT8 QConv / QLinear (qconv.cu). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/kernels.h"
#include "cuda/plan_int.h"
#include "cuda/qkernels.h"
#include "graph/qops.h"

/* --------------------------------------------------------------- conv */
/* The opt-in pass wgconv (fuse_wgconv.c) moves FP16 3x3 stride-1 convs
 * from the cuDNN form to our wgmma kernel; with it on, such a conv also
 * skips im2col + GEMM (the depth head's 64x64 one, whose column matrix is
 * under 48 MB), so that the pass sees it.  One it cannot take stays a
 * cuDNN (or direct) convolution. */
static int wgconv_wanted(const mc_plan *p, const mc_conv *cv) {
    return p->f16 && mt_tuning_list_has(p->tuning.cuda_fuse_opt, "wgconv", 0) && mc_fuse_enabled(p, "wgconv") &&
           mtk_hconv_built() && mc_wgconv_shape(cv);
}

mtmi_status mc_plan_conv(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    const mt_value *wv = mc_val(p, n->in[1]);
    if (x.rank != 4 || wv->rank != 4) return mc_unsupported(p, i, "only 2-D convolutions");
    if (!wv->data) return mc_unsupported(p, i, "non-constant weights");
    mc_conv cv;
    memset(&cv, 0, sizeof cv);
    cv.N = (int)x.dims[0]; cv.C = (int)x.dims[1]; cv.H = (int)x.dims[2]; cv.W = (int)x.dims[3];
    cv.CO = (int)wv->dims[0]; cv.KH = (int)wv->dims[2]; cv.KW = (int)wv->dims[3];
    int out_v = n->out[0];
    const mt_value *ov = mc_val(p, out_v);
    cv.OH = (int)ov->dims[2]; cv.OW = (int)ov->dims[3];
    const int64_t *a;
    cv.sh = cv.sw = 1; cv.dh = cv.dw = 1;
    if (mt_attr_ints(n, "strides", &a) == 2) { cv.sh = (int)a[0]; cv.sw = (int)a[1]; }
    if (mt_attr_ints(n, "dilations", &a) == 2) { cv.dh = (int)a[0]; cv.dw = (int)a[1]; }
    cv.groups = (int)mt_attr_int(n, "group", 1);
    const char *ap = mt_attr_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        int th = (cv.OH - 1) * cv.sh + (cv.KH - 1) * cv.dh + 1 - cv.H, tw = (cv.OW - 1) * cv.sw + (cv.KW - 1) * cv.dw + 1 - cv.W;
        th = th < 0 ? 0 : th; tw = tw < 0 ? 0 : tw;
        cv.ph = !strcmp(ap, "SAME_UPPER") ? th / 2 : (th + 1) / 2;
        cv.pw = !strcmp(ap, "SAME_UPPER") ? tw / 2 : (tw + 1) / 2;
        cv.ph2 = th - cv.ph; cv.pw2 = tw - cv.pw;
    } else if (mt_attr_ints(n, "pads", &a) == 4) {
        cv.ph = (int)a[0]; cv.pw = (int)a[1]; cv.ph2 = (int)a[2]; cv.pw2 = (int)a[3];
    }
    int act = 0;
    if (mc_mtmi_op_is(n, "FusedConv")) {
        act = mc_act_code(mt_attr_string(n, "activation", ""));
        if (act < 0) return mc_unsupported(p, i, "activation");
    }
    out_v = mc_absorb_act(p, out_v, &act);
    ov = mc_val(p, out_v);
    cv.act = act;
    int has_b = n->nin > 2 && n->in[2] >= 0;
    cv.has_bias = has_b;
    mc_tref bias;
    if (has_b) {
        if (!mc_val(p, n->in[2])->data) return mc_unsupported(p, i, "non-constant bias");
        TRY(mc_bias_tref(p, n->in[2], &bias));
    }
    mc_tref xraw = x;
    int cig = cv.C / cv.groups;
    int st = mc_storage_of(p, ov->dtype);
    /* im2col + GEMM when the column matrix is small (patchify, stem, patch
     * embeddings): tensor cores through cuBLASLt; else channels-last input */
    const int64_t Kp = ((int64_t)cv.KH * cv.KW * cig + 7) & ~(int64_t)7;
    const int is1x1 = cv.KH == 1 && cv.KW == 1 && cv.sh == 1 && cv.sw == 1 && !cv.ph && !cv.pw && !cv.ph2 && !cv.pw2;
    const int im2col = !is1x1 && !wgconv_wanted(p, &cv) && cv.groups == 1 &&
                       (size_t)cv.N * cv.OH * cv.OW * Kp * mc_esize(st) <= ((size_t)48 << 20) &&
                       (Kp <= 2048 || (cig % 8 == 0 && p->f16)) && (xraw.st == MTMI_FLOAT || xraw.st == MTMI_FLOAT16);
    if (!im2col) TRY(mc_make_nhwc(p, i, &x));
    /* 1x1 stride 1: a GEMM over NHWC rows */
    if (cv.KH == 1 && cv.KW == 1 && cv.sh == 1 && cv.sw == 1 && !cv.ph && !cv.pw && !cv.ph2 && !cv.pw2 && cv.groups == 1) {
        mc_tref A = x, W, Bm, Y, C2;
        A.rank = 2;
        A.dims[0] = (int64_t)cv.N * cv.H * cv.W;
        A.dims[1] = cv.C;
        A.strides[0] = cv.C;
        A.strides[1] = 1;
        TRY(mc_get(p, n->in[1], &W));
        if (cv.CO < 8 && cv.C <= 1024) {
            /* few output channels: a row-per-thread kernel (cuBLASLt picks slow GEMV kernels) */
            if (mc_new_tensor(p, st, ov->rank, ov->dims, &Y)) return NOMEM();
            mc_set_nhwc(&Y);
            mc_step *s = mc_new_step(p, MC_SMALLN, i);
            if (!s) return NOMEM();
            C2 = Y;
            C2.rank = 2;
            C2.dims[0] = A.dims[0];
            C2.dims[1] = cv.CO;
            C2.strides[0] = cv.CO;
            C2.strides[1] = 1;
            s->t[0] = C2;
            s->t[1] = A;
            s->t[2] = W;
            s->t[3] = has_b ? bias : W;
            s->nt = 4;
            s->u.smalln.has_bias = has_b;
            s->u.smalln.act = act;
            mc_set(p, out_v, &Y);
            return MTMI_OK;
        }
        if (cv.CO % 8) {
            /* pad the output channels to a multiple of 8 (16-byte rows for the
             * tensor-core kernels); consumers see a view of the first CO */
            int COp = (cv.CO + 7) & ~7;
            float *wp = calloc((size_t)COp * cv.C + COp, sizeof(float));
            if (!wp) return NOMEM();
            const mt_value *wv2 = mc_val(p, n->in[1]);
            for (int64_t k = 0; k < (int64_t)cv.CO * cv.C; k++) wp[k] = mc_const_float(wv2, k);
            int wb = mc_upload_floats(p, wp, (int64_t)COp * cv.C);
            int bb = -1;
            if (has_b) {
                float *bp = wp + (size_t)COp * cv.C;
                memset(bp, 0, sizeof(float) * COp);
                for (int k = 0; k < cv.CO; k++) bp[k] = mc_const_float(mc_val(p, n->in[2]), k);
                bb = mc_upload_floats(p, bp, COp);
            }
            free(wp);
            if (wb < 0 || (has_b && bb < 0)) return NOMEM();
            int64_t pd[4] = {cv.N, COp, cv.H, cv.W};
            mc_tref big;
            if (mc_new_tensor(p, st, 4, pd, &big)) return NOMEM();
            mc_set_nhwc(&big);
            Y = big;
            Y.dims[1] = cv.CO;
            memset(&Bm, 0, sizeof Bm);
            Bm.buf = wb;
            Bm.st = st;
            Bm.rank = 2;
            Bm.dims[0] = cv.C;
            Bm.dims[1] = COp;
            Bm.strides[0] = 1;
            Bm.strides[1] = cv.C;
            mc_tref pb;
            memset(&pb, 0, sizeof pb);
            pb.buf = bb;
            pb.st = st;
            pb.rank = 1;
            pb.dims[0] = COp;
            pb.strides[0] = 1;
            C2 = big;
            C2.rank = 2;
            C2.dims[0] = A.dims[0];
            C2.dims[1] = COp;
            C2.strides[0] = COp;
            C2.strides[1] = 1;
            TRY(mc_emit_gemm2(p, i, A, Bm, has_b ? &pb : NULL, act, 1.f, &C2));
            mc_set(p, out_v, &Y);
            return MTMI_OK;
        }
        Bm = W;
        Bm.rank = 2;
        Bm.dims[0] = cv.C;
        Bm.dims[1] = cv.CO;
        Bm.strides[0] = 1;
        Bm.strides[1] = cv.C;
        mc_tref like;
        memset(&like, 0, sizeof like);
        like.rank = 4;
        for (int d = 0; d < 4; d++) like.dims[d] = ov->dims[d];
        mc_set_nhwc(&like);
        TRY(mc_dest_for(p, out_v, &like, &Y));
        int ok = mc_nhwc_ok(&Y) || (Y.strides[1] == 1 && Y.strides[2] == Y.strides[3] * cv.W && (Y.strides[0] == Y.strides[2] * cv.H || cv.N == 1));
        if (!ok || (act >= 2 && !mc_nhwc_ok(&Y))) {
            if (mc_new_tensor(p, st, ov->rank, ov->dims, &Y)) return NOMEM();
            mc_set_nhwc(&Y);
        }
        C2 = Y;
        C2.rank = 2;
        C2.dims[0] = A.dims[0];
        C2.dims[1] = cv.CO;
        C2.strides[0] = Y.strides[3];
        C2.strides[1] = 1;
        TRY(mc_emit_gemm2(p, i, A, Bm, has_b ? &bias : NULL, act, 1.f, &C2));
        mc_set(p, out_v, &Y);
        return MTMI_OK;
    }
    mc_tref Y;
    if (mc_new_tensor(p, st, ov->rank, ov->dims, &Y)) return NOMEM();
    mc_set_nhwc(&Y);
    /* im2col + GEMM (decided above) */
    {
        int64_t M = (int64_t)cv.N * cv.OH * cv.OW;
        if (im2col) {
            x = xraw;
            float *wp = calloc((size_t)cv.CO * Kp, sizeof(float));
            if (!wp) return NOMEM();
            for (int co = 0; co < cv.CO; co++)
                for (int ci = 0; ci < cig; ci++)
                    for (int k = 0; k < cv.KH * cv.KW; k++)
                        wp[(int64_t)co * Kp + (int64_t)k * cig + ci] = mc_const_float(wv, ((int64_t)co * cig + ci) * cv.KH * cv.KW + k);
            int wb = mc_upload_floats(p, wp, (int64_t)cv.CO * Kp);
            free(wp);
            if (wb < 0) return NOMEM();
            mc_tref col, Bm, C2;
            int64_t cd[2] = {M, Kp};
            if (mc_new_tensor(p, st, 2, cd, &col)) return NOMEM();
            mc_step *s = mc_new_step(p, MC_IM2COL, i);
            if (!s) return NOMEM();
            s->conv = cv;
            s->t[0] = col;
            s->t[1] = x;
            s->nt = 2;
            memset(&Bm, 0, sizeof Bm);
            Bm.buf = wb;
            Bm.st = st;
            Bm.rank = 2;
            Bm.dims[0] = Kp;
            Bm.dims[1] = cv.CO;
            Bm.strides[0] = 1;
            Bm.strides[1] = Kp;
            C2 = Y;
            C2.rank = 2;
            C2.dims[0] = M;
            C2.dims[1] = cv.CO;
            C2.strides[0] = cv.CO;
            C2.strides[1] = 1;
            TRY(mc_emit_gemm2(p, i, col, Bm, has_b ? &bias : NULL, act, 1.f, &C2));
            mc_set(p, out_v, &Y);
            return MTMI_OK;
        }
    }
    const float *wf = NULL;
    float *tmp = NULL;
    int64_t wn = mt_value_numel(wv);
    tmp = malloc(sizeof(float) * wn);
    if (!tmp) return NOMEM();
    (void)wf;
    int depthwise = cv.groups == cv.C && cv.CO == cv.C && cig == 1;
    int kind;
    if (depthwise) {
        /* [C,1,KH,KW] -> [KH][KW][C] */
        for (int c = 0; c < cv.C; c++)
            for (int k = 0; k < cv.KH * cv.KW; k++) tmp[k * cv.C + c] = mc_const_float(wv, (int64_t)c * cv.KH * cv.KW + k);
        kind = MC_DW;
    } else {
        /* [CO,Cg,KH,KW] -> [CO][KH][KW][Cg] */
        for (int co = 0; co < cv.CO; co++)
            for (int ci = 0; ci < cig; ci++)
                for (int k = 0; k < cv.KH * cv.KW; k++)
                    tmp[((int64_t)co * cv.KH * cv.KW + k) * cig + ci] = mc_const_float(wv, ((int64_t)co * cig + ci) * cv.KH * cv.KW + k);
        int sym = cv.ph == cv.ph2 && cv.pw == cv.pw2;
#ifdef MTMI_HAVE_CUDNN
        kind = (cig < 8 || !sym || cv.C % 8 || cv.CO % 8) ? MC_CONVD : MC_CUDNN;
#else
        kind = MC_CONVD;
        (void)sym;
#endif
    }
    int wb = mc_upload_floats(p, tmp, wn);
    free(tmp);
    if (wb < 0) return NOMEM();
    mc_tref W;
    memset(&W, 0, sizeof W);
    W.buf = wb;
    W.st = p->f16 ? MTMI_FLOAT16 : MTMI_FLOAT;
    W.rank = 1;
    W.dims[0] = wn;
    W.strides[0] = 1;
    cv.ldy = cv.CO;
    cv.ys0 = (int64_t)cv.OH * cv.OW * cv.CO;
    if (kind == MC_CONVD) { /* cuDNN's legacy convolutions reject strided outputs */
        /* write straight into a Concat's channel slice when the output is
         * consumed by one (the depth head's progressive concats) */
        mc_tref like = Y, D;
        TRY(mc_dest_for(p, out_v, &like, &D));
        if (D.buf != Y.buf && D.rank == 4 && D.strides[1] == 1 && D.strides[3] >= cv.CO && D.strides[3] % 8 == 0 &&
            D.strides[2] == D.strides[3] * cv.OW && (cv.N == 1 || D.strides[0] == D.strides[2] * cv.OH) && D.off % 8 == 0) {
            Y = D;
            cv.ldy = D.strides[3];
            cv.ys0 = D.strides[0];
        }
    }
    mc_step *s = mc_new_step(p, kind, i);
    if (!s) return NOMEM();
    s->conv = cv;
    s->t[0] = Y;
    s->t[1] = x;
    s->t[2] = W;
    s->nt = 3;
    if (has_b) {
        s->t[3] = bias;
        s->nt = 4;
    }
    mc_set(p, out_v, &Y);
    return MTMI_OK;
}

/* ------------------------------------------------------------- int8 */
/* A persistent device buffer of raw host bytes (int8 weights, int32 biases,
 * float32 multipliers: kept exactly, never converted to the storage type);
 * takes ownership of host. */
static int upload_raw(mc_plan *p, void *host, size_t bytes) {
    int b = mc_new_buf(p, bytes, MC_CONST);
    if (b < 0) {
        free(host);
        return -1;
    }
    p->bufs[b].host = host;
    p->bufs[b].host_bytes = bytes;
    return b;
}

static mc_tref raw_tref(int buf, int st, int64_t n) {
    mc_tref t;
    memset(&t, 0, sizeof t);
    t.buf = buf;
    t.st = st;
    t.rank = 1;
    t.dims[0] = n;
    t.strides[0] = 1;
    return t;
}

/* every multiplier exactly 1: the float output is the int32 sum itself */
static int all_ones(const float *m, int64_t n) {
    for (int64_t k = 0; k < n; k++)
        if (m[k] != 1.0f) return 0;
    return 1;
}

/* v is read by mtmi.QUpsampleSum nodes only (and is no graph output) */
static int feeds_qupsample_sum(mc_plan *p, int v) {
    if (v < 0 || p->nuse[v] < 1 || p->g->values[v].is_output) return 0;
    for (int i = 0; i < p->g->nnodes; i++) {
        const mt_node *n = mc_node(p, i);
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] == v && !mc_mtmi_op_is(n, "QUpsampleSum")) return 0;
    }
    return 1;
}

/* mtmi.QConv / mtmi.QLinear (made by mt_quant_rewrite): the int8 weights,
 * int32 biases and float multipliers are the graph's constants, repacked
 * (not recomputed) so that the GPU reads the numbers the CPU reference
 * reads.  One MC_QCONV step: quantize the input to int8 NHWC, then the
 * tensor-core implicit GEMM with the CPU's epilogue (qconv.cu).  The output
 * is stored in the plan's float storage; with y_scale set it holds q * s_y,
 * which FP16 represents closely enough that the next QConv's quantize gives
 * q back (|q| <= 128: half's relative error 2^-11 is < 0.07 of a step). */
mtmi_status mc_plan_qconv(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    int lin = !strcmp(n->op, "QLinear");
    if (n->nin < 4) return mc_unsupported(p, i, "QConv / QLinear need 4 inputs");
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    const mt_value *wv = mc_val(p, n->in[1]), *bv = mc_val(p, n->in[2]), *mv = mc_val(p, n->in[3]);
    if (wv->dtype != MTMI_INT8 || !wv->data || bv->dtype != MTMI_INT32 || !bv->data || mv->dtype != MTMI_FLOAT || !mv->data)
        return mc_unsupported(p, i, "INT8 operands must be constant int8 weights, int32 biases and float multipliers");
    mtk_qconv q;
    memset(&q, 0, sizeof q);
    q.x_scale = mt_attr_float(n, "x_scale", 0);
    q.y_scale = mt_attr_float(n, "y_scale", 0);
    if (!(q.x_scale > 0)) return mc_unsupported(p, i, "x_scale must be positive");
    q.act = mc_act_code(mt_attr_string(n, "activation", ""));
    if (q.act < 0) return mc_unsupported(p, i, "activation");
    int out_v = n->out[0];
    const mt_value *ov = mc_val(p, out_v);
    int st = mc_storage_of(p, ov->dtype);
    /* a level of mtmi.QUpsampleSum (bias 0, multiplier 1): its exact sums,
     * stored as the int32 they are (y_i32) for the upsample-sum to add */
    const int exact = !lin && feeds_qupsample_sum(p, out_v);
    if (exact) st = MTMI_INT32;
    if (exact && !(q.act == 0 && q.y_scale == 0.0f && all_ones(mv->data, mt_value_numel(mv))))
        return mc_unsupported(p, i, "a QUpsampleSum level must be a QConv with multiplier 1, no activation and no output scale");
    mc_tref Y;
    q.KH = q.KW = q.sh = q.sw = q.dh = q.dw = 1;
    if (lin) {
        /* rows of X [..., K] are the GEMM's pixels: X as [1, K, R, 1] */
        int64_t K = x.dims[x.rank - 1], R = mc_numel(&x) / (K ? K : 1);
        if (wv->rank != 2 || wv->dims[1] != K) return mc_unsupported(p, i, "QLinear weights must be [N, K]");
        TRY(mc_make_contig(p, i, &x));
        mc_tref x4 = x;
        x4.rank = 4;
        x4.dims[0] = 1; x4.dims[1] = K; x4.dims[2] = R; x4.dims[3] = 1;
        x4.strides[0] = R * K; x4.strides[1] = 1; x4.strides[2] = K; x4.strides[3] = 1;
        x = x4;
        q.N = 1; q.C = (int)K; q.H = q.OH = (int)R; q.W = q.OW = 1;
        q.CO = (int)wv->dims[0];
        if (mc_new_tensor(p, st, ov->rank, ov->dims, &Y)) return NOMEM();
        q.ldy = q.CO;
        q.ys0 = R * q.CO;
    } else {
        if (x.rank != 4 || wv->rank != 4) return mc_unsupported(p, i, "only 2-D INT8 convolutions");
        mt_conv_geom cg;
        char err[128];
        int64_t xd[4];
        mt_qconv_input_dims(x.st, x.dims, xd);
        if (mt_conv_geometry(n, xd, wv->dims, &cg, err, sizeof err)) return mc_unsupported(p, i, err);
        if (cg.group != 1) return mc_unsupported(p, i, "grouped INT8 convolution");
        q.N = (int)cg.N; q.C = (int)cg.C; q.H = (int)cg.H; q.W = (int)cg.W;
        q.CO = (int)cg.M; q.OH = (int)cg.OH; q.OW = (int)cg.OW;
        q.KH = (int)cg.kh; q.KW = (int)cg.kw; q.sh = (int)cg.sh; q.sw = (int)cg.sw;
        q.dh = (int)cg.dh; q.dw = (int)cg.dw; q.ph = (int)cg.pt; q.pw = (int)cg.pl;
        /* NHWC output, straight into a Concat's channel slice when it feeds one */
        mc_tref like;
        memset(&like, 0, sizeof like);
        like.rank = 4;
        for (int d = 0; d < 4; d++) like.dims[d] = ov->dims[d];
        mc_set_nhwc(&like);
        if (exact) memset(&Y, 0, sizeof Y);
        else TRY(mc_dest_for(p, out_v, &like, &Y));
        int ok = !exact && Y.rank == 4 && (Y.strides[1] == 1 || q.CO == 1) && Y.strides[3] >= q.CO &&
                 (Y.strides[2] == Y.strides[3] * q.OW || q.OH == 1);
        if (!ok) {
            if (mc_new_tensor(p, st, ov->rank, ov->dims, &Y)) return NOMEM();
            mc_set_nhwc(&Y);
        }
        q.ldy = Y.strides[3];
        q.ys0 = Y.strides[0];
    }
    q.Cp = (q.C + 31) & ~31;
    q.COp = (q.CO + 31) & ~31;
    q.y_i32 = exact;
    if (x.st == MTMI_INT8 && (lin || q.C != q.Cp || !mc_is_contig(&x)))
        return mc_unsupported(p, i, "an int8 input must be contiguous NHWC codes of 32k channels");
    int khw = q.KH * q.KW;
    /* weights [CO][C][KH][KW] (QLinear: [N][K]) -> [COp][KH*KW][Cp], zero padded */
    size_t wbytes = (size_t)q.COp * khw * q.Cp;
    int8_t *wp = calloc(wbytes + 16, 1);
    int32_t *bp = calloc((size_t)q.COp + 4, sizeof(int32_t));
    float *mp = calloc((size_t)q.COp + 4, sizeof(float));
    if (!wp || !bp || !mp) {
        free(wp); free(bp); free(mp);
        return NOMEM();
    }
    const int8_t *w = wv->data;
    for (int co = 0; co < q.CO; co++)
        for (int c = 0; c < q.C; c++)
            for (int k = 0; k < khw; k++) wp[((size_t)co * khw + k) * q.Cp + c] = w[((size_t)co * q.C + c) * khw + k];
    memcpy(bp, bv->data, sizeof(int32_t) * q.CO);
    memcpy(mp, mv->data, sizeof(float) * q.CO);
    int wb = upload_raw(p, wp, wbytes);
    int bb = upload_raw(p, bp, sizeof(int32_t) * q.COp);
    int mb = upload_raw(p, mp, sizeof(float) * q.COp);
    if (wb < 0 || bb < 0 || mb < 0) return NOMEM();
    mc_tref xq;
    int64_t xqn = (int64_t)q.N * q.H * q.W * q.Cp;
    if (x.st == MTMI_INT8) {
        /* already the int8 NHWC codes (the encoder's features handed over,
         * graph/qops.h): the GEMM reads them in place, no quantize pass */
        xq = x;
        q.x_int8 = 1;
    } else if (mc_new_tensor(p, MTMI_INT8, 1, &xqn, &xq))
        return NOMEM();
    mc_step *s = mc_new_step(p, MC_QCONV, i);
    if (!s) return NOMEM();
    s->obj = malloc(sizeof q);
    if (!s->obj) return NOMEM();
    memcpy(s->obj, &q, sizeof q);
    s->t[0] = Y;
    s->t[1] = x;
    s->t[2] = xq;
    s->t[3] = raw_tref(wb, MTMI_INT8, (int64_t)wbytes);
    s->t[4] = raw_tref(bb, MTMI_INT32, q.COp);
    s->t[5] = raw_tref(mb, MTMI_FLOAT, q.COp);
    s->nt = 6;
    mc_set(p, out_v, &Y);
    return MTMI_OK;
}

int mc_qups_level(const mc_tref *t, const void *ptr, int OH, int OW, mtk_qups_level *l) {
    memset(l, 0, sizeof *l);
    if (t->rank != 4 || t->st != MTMI_INT32 || t->strides[1] != 1 || t->strides[2] != t->strides[3] * t->dims[3] ||
        t->dims[2] < 1 || t->dims[3] < 1 || OH % t->dims[2] || OW % t->dims[3])
        return -1;
    l->p = ptr;
    l->H = (int)t->dims[2], l->W = (int)t->dims[3];
    l->fy = OH / l->H, l->fx = OW / l->W;
    l->ldp = (int)t->strides[3];
    l->s0 = t->strides[0];
    return mt_qupsample_factor(OH, l->H) && mt_qupsample_factor(OW, l->W) ? 0 : -1;
}

/* mtmi.QUpsampleSum(Bq, Mult, P_0 ..) (graph/qops.h; made by
 * src/quant/reassoc.c): one MC_QUPSUM step, t[0] y (NHWC, a Concat's slice
 * where it feeds one), t[1] Bq int32, t[2] ldexpf(Mult, -8) float32, t[3 +
 * l] level l's sums (int32 NHWC: the QConvs that make them store their
 * sums, y_i32, see feeds_qupsample_sum).  fuse_qupsum.c folds it into level 0's
 * GEMM where it can. */
mtmi_status mc_plan_qupsample_sum(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    const int L = n->nin - 2;
    if (L < 1 || L > MTK_QUPS_MAX || L + 3 > MC_MAX_T) return mc_unsupported(p, i, "QUpsampleSum takes 1 to 8 levels");
    const mt_value *bv = mc_val(p, n->in[0]), *mv = mc_val(p, n->in[1]), *ov = mc_val(p, n->out[0]);
    if (bv->dtype != MTMI_INT32 || !bv->data || mv->dtype != MTMI_FLOAT || !mv->data || ov->rank != 4)
        return mc_unsupported(p, i, "QUpsampleSum needs constant int32 Bq and float Mult");
    const int64_t C = ov->dims[1];
    if (mt_value_numel(bv) != C || mt_value_numel(mv) != C) return mc_unsupported(p, i, "Bq and Mult must have one value a channel");
    const int act = mc_act_code(mt_attr_string(n, "activation", ""));
    if (act < 0) return mc_unsupported(p, i, "activation");
    mc_tref lv[MTK_QUPS_MAX];
    for (int l = 0; l < L; l++) {
        TRY(mc_get(p, n->in[2 + l], &lv[l]));
        /* exact sums only: the int32 that the level's QConv stores */
        if (lv[l].st != MTMI_INT32 || lv[l].rank != 4 || lv[l].dims[1] != C)
            return mc_unsupported(p, i, "QUpsampleSum levels must be the sums of QConvs (bias 0, multiplier 1)");
        mtk_qups_level chk; /* dense NHWC as the QConv stored it */
        if (mc_qups_level(&lv[l], NULL, (int)ov->dims[2], (int)ov->dims[3], &chk))
            return mc_unsupported(p, i, "a QUpsampleSum level is not the output's size over 1, 2, 4 or 8");
    }
    int32_t *bp = malloc(sizeof(int32_t) * (size_t)C + 16);
    float *mp = malloc(sizeof(float) * (size_t)C + 16);
    if (!bp || !mp) {
        free(bp), free(mp);
        return NOMEM();
    }
    memcpy(bp, bv->data, sizeof(int32_t) * (size_t)C);
    for (int64_t c = 0; c < C; c++) mp[c] = ldexpf(((const float *)mv->data)[c], -8); /* the CPU kernel's ms */
    const int bb = upload_raw(p, bp, sizeof(int32_t) * (size_t)C), mb = upload_raw(p, mp, sizeof(float) * (size_t)C);
    if (bb < 0 || mb < 0) return NOMEM();
    mc_tref like, Y;
    memset(&like, 0, sizeof like);
    like.rank = 4;
    for (int d = 0; d < 4; d++) like.dims[d] = ov->dims[d];
    mc_set_nhwc(&like);
    TRY(mc_dest_for(p, n->out[0], &like, &Y));
    if (!(Y.rank == 4 && (Y.strides[1] == 1 || C == 1))) {
        if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), 4, ov->dims, &Y)) return NOMEM();
        mc_set_nhwc(&Y);
    }
    mc_step *s = mc_new_step(p, MC_QUPSUM, i);
    if (!s) return NOMEM();
    s->u.qups.act = act;
    s->u.qups.y_scale = mt_attr_float(n, "y_scale", 0);
    s->t[0] = Y;
    s->t[1] = raw_tref(bb, MTMI_INT32, C);
    s->t[2] = raw_tref(mb, MTMI_FLOAT, C);
    for (int l = 0; l < L; l++) s->t[3 + l] = lv[l];
    s->nt = 3 + L;
    mc_set(p, n->out[0], &Y);
    return MTMI_OK;
}
