/* The results made on the device (graph/output_forms.c): mtmi.Preprocess
 * of 8-bit frames, mtmi.ClassMap, mtmi.SymQuant. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/plan_int.h"

/* mtmi.Preprocess (mt_graph_image_input): 8-bit RGB frames normalized on
 * the GPU, with the CPU's arithmetic ((x - mean) * (1 / std), no FMA to
 * contract), written in the plan's float storage. */
mtmi_status mc_plan_preprocess(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    const mt_attr *m = mt_node_attr(n, "mean"), *d = mt_node_attr(n, "std");
    if (x.st != MTMI_UINT8 || x.rank != 4 || x.dims[3] != 3 || !m || !d || m->n != 3 || d->n != 3)
        return mc_unsupported(p, i, "Preprocess takes uint8 [N,H,W,3] and 3 means and stds");
    TRY(mc_make_contig(p, i, &x));
    const mt_value *ov = mc_val(p, n->out[0]);
    mc_tref y;
    if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), ov->rank, ov->dims, &y)) return NOMEM();
    float *ms = malloc(6 * sizeof(float));
    if (!ms) return NOMEM();
    memcpy(ms, m->floats, 3 * sizeof(float));
    memcpy(ms + 3, d->floats, 3 * sizeof(float));
    mc_step *s = mc_new_step(p, MC_PREP, i);
    if (!s) {
        free(ms);
        return NOMEM();
    }
    s->obj = ms;
    s->t[0] = y;
    s->t[1] = x;
    s->nt = 2;
    mc_set(p, n->out[0], &y);
    return MTMI_OK;
}

/* ------------------------------------------------------- result forms */
/* Does value v feed only mtmi.ClassMap / mtmi.SymQuant (and no graph output)? */
int mc_feeds_only_class_forms(mc_plan *p, int v) {
    if (p->nuse[v] < 1 || mc_val(p, v)->is_output) return 0;
    int c[8];
    const int nc = mt_graph_consumers(p->g, v, c, 8);
    if (nc != p->nuse[v] || nc > 8) return 0;
    for (int k = 0; k < nc; k++)
        if (!mc_mtmi_op_is(mc_node(p, c[k]), "ClassMap") && !mc_mtmi_op_is(mc_node(p, c[k]), "SymQuant")) return 0;
    return 1;
}

/* Where a result of storage type st for value v goes: the output staging
 * buffer itself when v is a graph output of that host type (in a pipeline
 * the slot's device buffer, bound per run: no copy after the kernel), else
 * a fresh arena tensor. */
static int result_dest(mc_plan *p, int v, int st, mc_tref *t) {
    const mt_value *val = mc_val(p, v);
    const int k = mc_output_of(p, v);
    if (k >= 0 && p->out_stage[k].st == st && mc_is_contig(&p->out_stage[k])) {
        *t = p->out_stage[k];
        return 0;
    }
    return mc_new_tensor(p, st, val->rank, val->dims, t);
}

/* The result forms read their input as a 4-D [N, C, H, W] view: lower ranks
 * get trailing unit dimensions. */
static mtmi_status form_input(mc_plan *p, int i, mc_tref *x) {
    TRY(mc_get(p, mc_node(p, i)->in[0], x));
    if (x->rank < 2 || x->rank > 4 || (x->st != MTMI_FLOAT && x->st != MTMI_FLOAT16))
        return mc_unsupported(p, i, "the input must be a float tensor of rank 2 to 4");
    for (int d = x->rank; d < 4; d++) x->dims[d] = 1, x->strides[d] = 0;
    x->rank = 4;
    return MTMI_OK;
}

mtmi_status mc_plan_classmap(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x, y;
    TRY(form_input(p, i, &x));
    if (x.dims[1] > 256) return mc_unsupported(p, i, "more than 256 classes");
    if (result_dest(p, n->out[0], MTMI_UINT8, &y)) return NOMEM();
    mc_step *s = mc_new_step(p, MC_CLASSMAP, i);
    if (!s) return NOMEM();
    s->t[0] = y;
    s->t[1] = x;
    s->nt = 2;
    mc_set(p, n->out[0], &y);
    return MTMI_OK;
}

/* The scales stay FP32 whatever the plan's storage: they are exact. */
mtmi_status mc_plan_symquant(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x, q, sc, work;
    TRY(form_input(p, i, &x));
    const int64_t nb = x.dims[0];
    if (result_dest(p, n->out[0], MTMI_INT8, &q) || result_dest(p, n->out[1], MTMI_FLOAT, &sc) ||
        mc_new_tensor(p, MTMI_INT32, 1, &nb, &work))
        return NOMEM();
    mc_step *s = mc_new_step(p, MC_SYMQUANT, i);
    if (!s) return NOMEM();
    s->t[0] = q;
    s->t[1] = sc;
    s->t[2] = x;
    s->t[3] = work;
    s->nt = 4;
    mc_set(p, n->out[0], &q);
    mc_set(p, n->out[1], &sc);
    return MTMI_OK;
}

/* mtmi.QuantizeNHWC (src/quant/handover.c: the encoder's features handed to
 * INT8 heads as int8): the QConv's own quantize pass (mtk_qconv_quantize)
 * into int8 [N,H,W,C], the stage's output buffer when it is one.
 * fuse_qln.c lets the LayerNorm that made x write the codes instead. */
mtmi_status mc_plan_quantize_nhwc(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x, y;
    TRY(mc_get(p, n->in[0], &x));
    if (x.rank != 4 || (x.st != MTMI_FLOAT && x.st != MTMI_FLOAT16)) return mc_unsupported(p, i, "the input must be a float NCHW tensor");
    const float sc = mt_attr_float(n, "scale", 0);
    if (!(sc > 0)) return mc_unsupported(p, i, "scale must be positive");
    if (x.dims[1] % 8 || mc_numel(&x) >= ((int64_t)1 << 31)) return mc_unsupported(p, i, "channels not a multiple of 8, or too large");
    if (result_dest(p, n->out[0], MTMI_INT8, &y)) return NOMEM();
    mc_step *s = mc_new_step(p, MC_QUANT, i);
    if (!s) return NOMEM();
    s->t[0] = y;
    s->t[1] = x;
    s->nt = 2;
    s->u.quant.scale = sc;
    mc_set(p, n->out[0], &y);
    return MTMI_OK;
}

/* [N,H,W,C] contiguous storage t seen as the [N,C,H,W] tensor it holds */
static mc_tref nchw_view_of_nhwc(const mc_tref *t) {
    mc_tref v = *t;
    const int64_t N = t->dims[0], H = t->dims[1], W = t->dims[2], C = t->dims[3];
    v.dims[0] = N, v.dims[1] = C, v.dims[2] = H, v.dims[3] = W;
    v.strides[0] = H * W * C, v.strides[1] = 1, v.strides[2] = W * C, v.strides[3] = C;
    return v;
}

/* mtmi.HalfNHWC (a GPU pipeline's encoder handing a feature to FP16 GPU
 * heads, src/pipeline/handover.c): one copy of the feature into the
 * stage's float16 NHWC output, where a float cut took a transposing
 * conversion to FP32 NCHW. */
mtmi_status mc_plan_half_nhwc(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x, y;
    TRY(mc_get(p, n->in[0], &x));
    if (x.rank != 4 || (x.st != MTMI_FLOAT && x.st != MTMI_FLOAT16)) return mc_unsupported(p, i, "the input must be a float NCHW tensor");
    if (result_dest(p, n->out[0], MTMI_FLOAT16, &y)) return NOMEM();
    const mc_tref dst = nchw_view_of_nhwc(&y);
    TRY(mc_emit_copy(p, i, &dst, &x));
    mc_set(p, n->out[0], &y);
    return MTMI_OK;
}

/* mtmi.FromHalfNHWC (a head's side of the same): in an FP16 plan the
 * float16 NHWC input is the float NCHW tensor's storage, so a view and
 * no step; an FP32 plan converts it. */
mtmi_status mc_plan_from_half_nhwc(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    if (x.rank != 4 || x.st != MTMI_FLOAT16 || !mc_is_contig(&x)) return mc_unsupported(p, i, "the input must be contiguous float16 NHWC");
    mc_tref v = nchw_view_of_nhwc(&x);
    if (mc_storage_of(p, MTMI_FLOAT) != MTMI_FLOAT16) TRY(mc_make_contig(p, i, &v));
    mc_set(p, n->out[0], &v);
    return MTMI_OK;
}
