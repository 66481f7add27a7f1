/* Resize / Upsample: bilinear and nearest, a resize read through a
 * Concat (MC_RESIZE_CAT), the rest as MC_RESIZE. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/plan_int.h"

/* ------------------------------------------------------------- resize */
mtmi_status mc_plan_resize(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    const mt_value *ov = mc_val(p, n->out[0]);
    if (x.rank != 4) return mc_unsupported(p, i, "only 4-D Resize");
    if (ov->dims[0] != x.dims[0] || ov->dims[1] != x.dims[1]) return mc_unsupported(p, i, "resizing the batch or channel axis");
    const char *mode = mt_attr_string(n, "mode", "nearest");
    int m = !strcmp(mode, "nearest") ? 0 : (!strcmp(mode, "linear") || !strcmp(mode, "bilinear")) ? 1 : -1;
    if (m < 0) return mc_unsupported(p, i, "mode (only nearest and linear)");
    if (mt_attr_int(n, "antialias", 0)) return mc_unsupported(p, i, "antialias");
    const char *ct = mt_attr_string(n, "coordinate_transformation_mode", mc_op_is(n, "Upsample") || p->g->opset < 11 ? "asymmetric" : "half_pixel");
    int coord = !strcmp(ct, "half_pixel") ? 0 : !strcmp(ct, "pytorch_half_pixel") ? 1 : !strcmp(ct, "align_corners") ? 2
              : !strcmp(ct, "asymmetric") ? 3 : -1;
    if (coord < 0) return mc_unsupported(p, i, "coordinate_transformation_mode");
    const char *nm = mt_attr_string(n, "nearest_mode", "round_prefer_floor");
    int nmode = !strcmp(nm, "round_prefer_ceil") ? 1 : !strcmp(nm, "floor") ? 2 : !strcmp(nm, "ceil") ? 3 : 0;
    float sh = (float)ov->dims[2] / (float)x.dims[2], sw = (float)ov->dims[3] / (float)x.dims[3];
    int si = mc_op_is(n, "Upsample") || p->g->opset < 11 ? 1 : 2;
    if (n->nin > si && n->in[si] >= 0 && mc_val(p, n->in[si])->data && mt_value_numel(mc_val(p, n->in[si])) == 4) {
        float sc[4];
        if (mt_const_floats((mt_graph *)p->g, n, si, sc, 4) == 4) {
            sh = sc[2];
            sw = sc[3];
        }
    }
    if (mc_identity_resize(p, i) && p->vcat[n->in[0]] < 0) { /* same size: a view */
        mc_set(p, n->out[0], &x);
        return MTMI_OK;
    }
    if (p->vcat[n->in[0]] >= 0 && m == 1) {
        const mt_node *cn = mc_node(p, p->vcat[n->in[0]]);
        mc_tref y;
        TRY(mc_dest_for(p, n->out[0], &x, &y));
        if (!(y.strides[1] == 1 && y.st == MTMI_FLOAT16)) {
            if (mc_new_tensor(p, MTMI_FLOAT16, ov->rank, ov->dims, &y)) return NOMEM();
            mc_set_nhwc(&y);
        }
        mc_step *s = mc_new_step(p, MC_RESIZE_CAT, i);
        if (!s) return NOMEM();
        s->t[0] = y;
        int64_t at = 0;
        for (int k = 0; k < cn->nin; k++) {
            mc_tref xs;
            TRY(mc_get(p, cn->in[k], &xs));
            s->t[1 + k] = xs;
            s->u.resize.at[k] = at;
            at += xs.dims[1];
        }
        s->nt = 1 + cn->nin;
        s->u.resize.mode = m;
        s->u.resize.coord = coord;
        s->u.resize.sh = sh;
        s->u.resize.sw = sw;
        mc_set(p, n->out[0], &y);
        return MTMI_OK;
    }
    mc_tref y;
    const int oi = mc_output_of(p, n->out[0]);
    if (oi >= 0 && (p->out_stage[oi].st == MTMI_FLOAT || p->out_stage[oi].st == MTMI_FLOAT16))
        y = p->out_stage[oi]; /* straight into the output, in its type and layout */
    else if (mc_feeds_only_class_forms(p, n->out[0])) {
        /* FP32 as when the resize writes a float graph output: a class map
         * or int8 logits made of it equal those made of the logits the plan
         * returns when asked for them (the pass classmap then fuses the
         * class map into this resize, and the tensor is never stored). */
        if (mc_new_tensor(p, MTMI_FLOAT, ov->rank, ov->dims, &y)) return NOMEM();
    } else
        TRY(mc_dest_for(p, n->out[0], &x, &y));
    mc_step *s = mc_new_step(p, MC_RESIZE, i);
    if (!s) return NOMEM();
    s->t[0] = y;
    s->t[1] = x;
    s->nt = 2;
    s->u.resize.mode = m;
    s->u.resize.coord = coord;
    s->u.resize.nearest = nmode;
    s->u.resize.sh = sh;
    s->u.resize.sw = sw;
    mc_set(p, n->out[0], &y);
    return MTMI_OK;
}
