/* Layout operators as views where possible (Reshape, Transpose, Slice,
 * Split, Expand), copies where not; Cast, Gather and Concat. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/plan_int.h"

/* ------------------------------------------------------------ views */
mtmi_status mc_plan_reshape(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x, o;
    TRY(mc_get(p, n->in[0], &x));
    const mt_value *ov = mc_val(p, n->out[0]);
    if (!mc_reshape_view(&x, ov->rank, ov->dims, &o)) {
        TRY(mc_make_contig(p, i, &x));
        if (!mc_reshape_view(&x, ov->rank, ov->dims, &o)) return mc_unsupported(p, i, "reshape of incompatible sizes");
    }
    mc_set(p, n->out[0], &o);
    return MTMI_OK;
}

mtmi_status mc_plan_transpose(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x, o;
    TRY(mc_get(p, n->in[0], &x));
    const int64_t *perm;
    int np = mt_attr_ints(n, "perm", &perm);
    o = x;
    for (int d = 0; d < x.rank; d++) {
        int src = np == x.rank ? (int)perm[d] : x.rank - 1 - d;
        if (src < 0 || src >= x.rank) return mc_unsupported(p, i, "bad perm");
        o.dims[d] = x.dims[src];
        o.strides[d] = x.strides[src];
    }
    mc_set(p, n->out[0], &o);
    return MTMI_OK;
}

mtmi_status mc_plan_expand(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x, o;
    TRY(mc_get(p, n->in[0], &x));
    const mt_value *ov = mc_val(p, n->out[0]);
    mc_broadcast_to(&x, ov->rank, ov->dims, &o);
    mc_set(p, n->out[0], &o);
    return MTMI_OK;
}

mtmi_status mc_plan_cast(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    const mt_value *ov = mc_val(p, n->out[0]);
    int st = mc_storage_of(p, ov->dtype);
    if (st == x.st) {
        mc_set(p, n->out[0], &x);
        return MTMI_OK;
    }
    if ((st == MTMI_FLOAT || st == MTMI_FLOAT16) && (x.st == MTMI_FLOAT || x.st == MTMI_FLOAT16)) {
        mc_tref o;
        if (mc_new_tensor(p, st, ov->rank, ov->dims, &o)) return NOMEM();
        TRY(mc_emit_copy(p, i, &o, &x));
        mc_set(p, n->out[0], &o);
        return MTMI_OK;
    }
    return mc_unsupported(p, i, "Cast between these element types");
}

mtmi_status mc_plan_slice(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    int64_t st[MT_MAX_RANK], en[MT_MAX_RANK], ax[MT_MAX_RANK], sp[MT_MAX_RANK];
    int cnt;
    if (p->g->opset >= 10 && n->nin >= 3) {
        cnt = mt_const_ints((mt_graph *)p->g, n, 1, st, MT_MAX_RANK);
        if (cnt < 0 || mt_const_ints((mt_graph *)p->g, n, 2, en, MT_MAX_RANK) != cnt) return mc_unsupported(p, i, "non-constant starts/ends");
        if (n->nin > 3 && n->in[3] >= 0) {
            if (mt_const_ints((mt_graph *)p->g, n, 3, ax, MT_MAX_RANK) != cnt) return mc_unsupported(p, i, "non-constant axes");
        } else for (int k = 0; k < cnt; k++) ax[k] = k;
        if (n->nin > 4 && n->in[4] >= 0) {
            if (mt_const_ints((mt_graph *)p->g, n, 4, sp, MT_MAX_RANK) != cnt) return mc_unsupported(p, i, "non-constant steps");
        } else for (int k = 0; k < cnt; k++) sp[k] = 1;
    } else {
        const int64_t *a;
        cnt = mt_attr_ints(n, "starts", &a);
        if (cnt < 0 || cnt > MT_MAX_RANK) return mc_unsupported(p, i, "missing starts");
        memcpy(st, a, sizeof(int64_t) * cnt);
        if (mt_attr_ints(n, "ends", &a) != cnt) return mc_unsupported(p, i, "bad ends");
        memcpy(en, a, sizeof(int64_t) * cnt);
        if (mt_attr_ints(n, "axes", &a) == cnt) memcpy(ax, a, sizeof(int64_t) * cnt);
        else for (int k = 0; k < cnt; k++) ax[k] = k;
        for (int k = 0; k < cnt; k++) sp[k] = 1;
    }
    mc_tref o = x;
    for (int k = 0; k < cnt; k++) {
        int a = mt_norm_axis(ax[k], x.rank);
        if (a < 0 || sp[k] == 0) return mc_unsupported(p, i, "bad axis or step");
        int64_t dim = x.dims[a], s = st[k], e = en[k], step = sp[k], len;
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (step > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            len = e > s ? (e - s + step - 1) / step : 0;
        } else {
            s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            len = s > e ? (s - e + (-step) - 1) / (-step) : 0;
        }
        if (len > 0) o.off += s * x.strides[a];
        o.dims[a] = len;
        o.strides[a] = x.strides[a] * step;
    }
    mc_set(p, n->out[0], &o);
    return MTMI_OK;
}

mtmi_status mc_plan_split(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 0), x.rank);
    if (axis < 0) return mc_unsupported(p, i, "bad axis");
    int64_t at = 0;
    for (int k = 0; k < n->nout; k++) {
        if (n->out[k] < 0) continue;
        const mt_value *ov = mc_val(p, n->out[k]);
        mc_tref o = x;
        o.off += at * x.strides[axis];
        o.dims[axis] = ov->dims[axis];
        at += ov->dims[axis];
        mc_set(p, n->out[k], &o);
    }
    return MTMI_OK;
}

mtmi_status mc_plan_gather(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    mc_tref x;
    TRY(mc_get(p, n->in[0], &x));
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 0), x.rank);
    if (axis < 0) return mc_unsupported(p, i, "bad axis");
    const mt_value *iv = mc_val(p, n->in[1]);
    const mt_value *ov = mc_val(p, n->out[0]);
    if (iv->data && mt_value_numel(iv) == 1) {
        int64_t k;
        if (mt_const_ints((mt_graph *)p->g, n, 1, &k, 1) != 1) return MTMI_ERR_UNSUPPORTED;
        if (k < 0) k += x.dims[axis];
        if (k < 0 || k >= x.dims[axis]) return mc_unsupported(p, i, "index out of range");
        mc_tref o = x;
        o.off += k * x.strides[axis];
        if (iv->rank == 0) {
            for (int d = axis; d + 1 < x.rank; d++) {
                o.dims[d] = x.dims[d + 1];
                o.strides[d] = x.strides[d + 1];
            }
            o.rank = x.rank - 1;
        } else {
            mc_tref t = o;
            t.dims[axis] = 1;
            if (!mc_reshape_view(&t, ov->rank, ov->dims, &o)) return mc_unsupported(p, i, "gather view");
        }
        mc_set(p, n->out[0], &o);
        return MTMI_OK;
    }
    if (iv->dtype != MTMI_INT64) return mc_unsupported(p, i, "Gather indices must be int64");
    mc_tref idx, o;
    TRY(mc_get(p, n->in[1], &idx));
    TRY(mc_make_contig(p, i, &idx));
    TRY(mc_make_contig(p, i, &x));
    if (mc_new_tensor(p, x.st, ov->rank, ov->dims, &o)) return NOMEM();
    mc_step *s = mc_new_step(p, MC_GATHER, i);
    if (!s) return NOMEM();
    int64_t pre = 1, post = 1;
    for (int d = 0; d < axis; d++) pre *= x.dims[d];
    for (int d = axis + 1; d < x.rank; d++) post *= x.dims[d];
    s->t[0] = o;
    s->t[1] = x;
    s->t[2] = idx;
    s->nt = 3;
    s->u.gather.pre = pre;
    s->u.gather.n = x.dims[axis];
    s->u.gather.nidx = mt_value_numel(iv);
    s->u.gather.post = post;
    mc_set(p, n->out[0], &o);
    return MTMI_OK;
}

mtmi_status mc_plan_concat(mc_plan *p, int i) {
    const mt_node *n = mc_node(p, i);
    int cv = n->out[0];
    const mt_value *ov = mc_val(p, cv);
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 0), ov->rank);
    if (axis < 0) return mc_unsupported(p, i, "bad axis");
    int rc = mc_sole_consumer(p, cv);
    if (p->f16 && axis == 1 && ov->rank == 4 && rc >= 0 && (mc_op_is(mc_node(p, rc), "Resize") || mc_op_is(mc_node(p, rc), "Upsample")) &&
        !strcmp(mt_attr_string(mc_node(p, rc), "mode", "nearest"), "linear") && n->nin <= 4) {
        int ok = 1;
        for (int k = 0; k < n->nin && ok; k++) {
            mc_tref x;
            if (n->in[k] < 0 || mc_val(p, n->in[k])->data || mc_get(p, n->in[k], &x)) { ok = 0; break; }
            int64_t C = x.dims[1];
            ok = x.st == MTMI_FLOAT16 && x.rank == 4 && C % 8 == 0 && x.strides[1] == 1 && x.strides[0] % 8 == 0 &&
                 x.strides[2] % 8 == 0 && x.strides[3] % 8 == 0 && x.off % 8 == 0;
        }
        if (ok) {
            p->vcat[cv] = i;
            mc_tref first;
            TRY(mc_get(p, n->in[0], &first));
            first.dims[1] = ov->dims[1];
            mc_set(p, cv, &first); /* placeholder: only the resize reads it, through vcat */
            return MTMI_OK;
        }
    }
    mc_tref o;
    if (p->has[cv]) o = p->vt[cv];
    else {
        mc_tref first;
        int have_first = 0;
        for (int k = 0; k < n->nin && !have_first; k++)
            if (n->in[k] >= 0 && mc_available(p, n->in[k]) && !mc_val(p, n->in[k])->data) {
                TRY(mc_get(p, n->in[k], &first));
                have_first = 1;
            }
        if (mc_new_tensor(p, mc_storage_of(p, ov->dtype), ov->rank, ov->dims, &o)) return NOMEM();
        if (have_first) mc_packed_like(&o, &first);
        mc_set(p, cv, &o);
    }
    int64_t at = 0;
    for (int k = 0; k < n->nin; k++) {
        if (n->in[k] < 0) continue;
        mc_tref x;
        TRY(mc_get(p, n->in[k], &x));
        mc_tref slot = o;
        slot.off += at * o.strides[axis];
        slot.dims[axis] = x.dims[axis];
        at += x.dims[axis];
        if (x.buf == o.buf && x.off == slot.off) continue; /* written in place */
        if (x.st != o.st) return mc_unsupported(p, i, "mixed element types");
        TRY(mc_emit_copy(p, i, &slot, &x));
    }
    return MTMI_OK;
}
