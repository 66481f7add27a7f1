/* LayerNormalization (with a residual Add folded in) and Softmax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/plan_int.h"

/* -------------------------------------------------------------- norms */
mtmi_status mc_plan_layernorm(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x, g, b;
    TRY(mc_get(p, n->in[0], &x));
    for (int k = 1; k < n->nout; k++)
        if (n->out[k] >= 0 && p->nuse[n->out[k]]) return mc_unsupported(p, i, "mean / inv-std outputs");
    int axis = mt_norm_axis(mt_attr_int(n, "axis", -1), x.rank);
    if (axis < 0) return mc_unsupported(p, i, "bad axis");
    int64_t C = 1, rows = 1;
    for (int d = axis; d < x.rank; d++) C *= x.dims[d];
    for (int d = 0; d < axis; d++) rows *= x.dims[d];
    if (!mc_val(p, n->in[1])->data || mt_value_numel(mc_val(p, n->in[1])) != C) return mc_unsupported(p, i, "scale must be a constant of the normalized size");
    TRY(mc_get(p, n->in[1], &g));
    int has_b = n->nin > 2 && n->in[2] >= 0;
    if (has_b) {
        if (!mc_val(p, n->in[2])->data || mt_value_numel(mc_val(p, n->in[2])) != C) return mc_unsupported(p, i, "bias must be a constant of the normalized size");
        TRY(mc_get(p, n->in[2], &b));
    }
    const mt_value *ov = mc_val(p, n->out[0]);
    mc_tref y;
    /* residual: x = a + r computed by the step just before (a plain Add of
     * two contiguous same-shaped tensors): one pass adds, writes the sum
     * (if anything else reads it) and normalizes */
    mc_step *prev = p->nsteps > 0 ? &p->steps[p->nsteps - 1] : NULL;
    if (prev && prev->kind == MC_EW && prev->nt == 3 && prev->prog.n == 3 && prev->prog.ins[0].op == MTK_OP_LOAD &&
        prev->prog.ins[1].op == MTK_OP_LOAD && prev->prog.ins[2].op == MTK_OP_ADD && prev->t[0].buf == x.buf &&
        prev->t[0].off == x.off && mc_is_contig(&x) && mc_is_contig(&prev->t[1]) && mc_is_contig(&prev->t[2]) &&
        mc_numel(&prev->t[1]) == mc_numel(&x) && mc_numel(&prev->t[2]) == mc_numel(&x) && prev->label == p->label[i]) {
        mc_tref a = prev->t[1], r = prev->t[2], sum = prev->t[0];
        int keep_sum = p->nuse[n->in[0]] > 1 || mc_val(p, n->in[0])->is_output;
        p->nsteps--; /* replaced by the fused step */
        if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), ov->rank, ov->dims, &y)) return NOMEM();
        mc_step *s = mc_new_step(p, MC_LN, i);
        if (!s) return NOMEM();
        s->t[0] = y;
        s->t[1] = a;
        s->t[2] = g;
        s->t[3] = has_b ? b : g;
        s->t[4] = r;
        s->t[5] = sum;
        s->nt = keep_sum ? 6 : 5;
        s->u.ln.rows = rows;
        s->u.ln.C = C;
        s->u.ln.has_beta = has_b;
        s->u.ln.has_res = 1;
        s->u.ln.keep_sum = keep_sum;
        s->u.ln.eps = mt_attr_float(n, "epsilon", 1e-5f);
        mc_set(p, n->out[0], &y);
        return MTMI_OK;
    }
    TRY(mc_make_contig(p, i, &x));
    if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), ov->rank, ov->dims, &y)) return NOMEM();
    mc_step *s = mc_new_step(p, MC_LN, i);
    if (!s) return NOMEM();
    s->t[0] = y;
    s->t[1] = x;
    s->t[2] = g;
    s->nt = 3;
    if (has_b) {
        s->t[3] = b;
        s->nt = 4;
    }
    s->u.ln.rows = rows;
    s->u.ln.C = C;
    s->u.ln.has_beta = has_b;
    s->u.ln.eps = mt_attr_float(n, "epsilon", 1e-5f);
    mc_set(p, n->out[0], &y);
    return MTMI_OK;
}

mtmi_status mc_plan_softmax(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    int r = x.rank;
    int axis = mt_norm_axis(mt_attr_int(n, "axis", p->g->opset >= 13 ? -1 : 1), r);
    if (axis < 0) return mc_unsupported(p, i, "bad axis");
    if (p->g->opset >= 13 && axis != r - 1) return mc_unsupported(p, i, "Softmax over an axis other than the last");
    int64_t C = 1, rows = 1;
    for (int d = axis; d < r; d++) C *= x.dims[d];
    for (int d = 0; d < axis; d++) rows *= x.dims[d];
    TRY(mc_make_contig(p, i, &x));
    const mt_value *ov = mc_val(p, n->out[0]);
    mc_tref y;
    if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), ov->rank, ov->dims, &y)) return NOMEM();
    mc_step *s = mc_new_step(p, MC_SOFTMAX, i);
    if (!s) return NOMEM();
    s->t[0] = y;
    s->t[1] = x;
    s->nt = 2;
    s->u.softmax.rows = rows;
    s->u.softmax.n = C;
    mc_set(p, n->out[0], &y);
    return MTMI_OK;
}
