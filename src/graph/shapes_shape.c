/* Shape inference for the shape and data-movement operator family, plus the
 * axis-wise Softmax, reductions and ArgMax.  Inputs that decide an output
 * shape (Reshape's shape, Slice's starts, ...) must be constants by the time
 * a node is inferred: mt_graph_infer folds shape computations first. */
#include "graph/ops.h"
#include "graph/shape_math.h"

#include <math.h>
#include <string.h>

#define MAXV 64 /* most entries a shape-like input may hold */

static mtmi_status set_out(mt_graph *g, mt_node *n, int k, int dtype, int rank, const int64_t *dims) {
    mt_value *y = mt_out(g, n, k);
    if (rank > MT_MAX_RANK) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank, MT_MAX_RANK);
    int64_t total = 1;
    for (int d = 0; d < rank; d++) {
        if (dims[d] < 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "output dimension %d would be negative", d);
        /* corrupt or hostile sizes (Tile, Expand, ConstantOfShape) must fail here, not in malloc */
        if (__builtin_mul_overflow(total, dims[d], &total) || total > ((int64_t)1 << 40))
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "output would have more than 2^40 elements");
    }
    if (y) mt_value_set_shape(y, dtype, rank, dims);
    return MTMI_OK;
}

/* Data movement works on bytes: any element type of 1, 2, 4 or 8 bytes. */
static mtmi_status need_movable(mt_graph *g, mt_node *n, const mt_value *x) {
    size_t s = mt_dtype_size(x->dtype);
    if (s != 1 && s != 2 && s != 4 && s != 8)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s of '%s' is not supported", mt_dtype_name(x->dtype), x->name);
    return MTMI_OK;
}

static mtmi_status need_numeric(mt_graph *g, mt_node *n, const mt_value *x, int float_only) {
    int t = x->dtype;
    int ok = t == MTMI_FLOAT || t == MTMI_DOUBLE || (!float_only && (t == MTMI_INT32 || t == MTMI_INT64));
    if (!ok) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "element type %s of '%s' is not supported", mt_dtype_name(t), x->name);
    return MTMI_OK;
}

/* Sets a constant int64 vector (or scalar when rank 0) as output 0's data. */
static mtmi_status set_const_ints(mt_graph *g, mt_node *n, int rank, const int64_t *v, int count) {
    mt_value *y = mt_out(g, n, 0);
    int64_t d[1] = {count};
    mt_value_set_shape(y, MTMI_INT64, rank, d);
    mt_value_free_data(y);
    y->data = mt_alloc(sizeof(int64_t) * (count ? count : 1));
    if (!y->data) return MTMI_ERR_NOMEM;
    memcpy(y->data, v, sizeof(int64_t) * count);
    return MTMI_OK;
}

static mtmi_status infer_shape_op(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    int r = x->rank;
    int64_t st = mt_attr_int(n, "start", 0), en = mt_attr_int(n, "end", r);
    if (st < 0) st += r;
    if (en < 0) en += r;
    st = st < 0 ? 0 : (st > r ? r : st);
    en = en < 0 ? 0 : (en > r ? r : en);
    int cnt = en > st ? (int)(en - st) : 0;
    return set_const_ints(g, n, 1, x->dims + st, cnt);
}

static mtmi_status infer_size(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    int64_t v = mt_value_numel(mt_in(g, n, 0));
    return set_const_ints(g, n, 0, &v, 1);
}

static mtmi_status infer_reshape(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    int64_t shape[MAXV];
    int cnt;
    if (g->opset < 5) {
        const int64_t *a;
        cnt = mt_attr_ints(n, "shape", &a);
        if (cnt < 0) return mt_node_fail(g, n, MTMI_ERR_PARSE, "attribute 'shape' is missing");
        if (cnt > MAXV) cnt = MAXV + 1;
        else memcpy(shape, a, sizeof(int64_t) * cnt);
    } else {
        if (!mt_in(g, n, 1)) return mt_node_fail(g, n, MTMI_ERR_PARSE, "input 'shape' is missing");
        cnt = mt_const_ints(g, n, 1, shape, MAXV);
        if (cnt < 0) return MTMI_ERR_UNSUPPORTED;
    }
    if (cnt > MT_MAX_RANK) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "target rank %d exceeds %d", cnt, MT_MAX_RANK);
    int allowzero = (int)mt_attr_int(n, "allowzero", 0);
    int64_t known = 1, total = mt_value_numel(x);
    int infer_at = -1;
    for (int i = 0; i < cnt; i++) {
        if (shape[i] == 0 && !allowzero) {
            if (i >= x->rank) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "shape entry %d is 0 (copy) but the input has rank %d", i, x->rank);
            shape[i] = x->dims[i];
        }
        if (shape[i] == -1) {
            if (infer_at >= 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "more than one -1 in the target shape");
            infer_at = i;
        } else if (shape[i] < 0) {
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "shape entry %d is %lld", i, (long long)shape[i]);
        } else if (__builtin_mul_overflow(known, shape[i], &known)) {
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "target shape overflows");
        }
    }
    char a[128];
    if (infer_at >= 0) {
        if (known == 0 || total % known)
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "cannot reshape %s (%lld elements) with a -1", mt_shape_str(x->rank, x->dims, a, sizeof a), (long long)total);
        shape[infer_at] = total / known;
    } else if (known != total) {
        char b[128];
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "cannot reshape %s to %s", mt_shape_str(x->rank, x->dims, a, sizeof a), mt_shape_str(cnt, shape, b, sizeof b));
    }
    return set_out(g, n, 0, x->dtype, cnt, shape);
}

static mtmi_status infer_flatten(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    int64_t axis = mt_attr_int(n, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis > x->rank) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)mt_attr_int(n, "axis", 1), x->rank);
    int64_t d[2] = {mt_numel((int)axis, x->dims), mt_numel(x->rank - (int)axis, x->dims + axis)};
    return set_out(g, n, 0, x->dtype, 2, d);
}

/* Axes of Squeeze/Unsqueeze: attribute before opset 13, input from 13. */
static int read_axes(mt_graph *g, mt_node *n, int input, int64_t *axes, int *present) {
    const int64_t *a;
    int cnt = mt_attr_ints(n, "axes", &a);
    *present = 1;
    if (cnt >= 0) {
        if (cnt > MAXV) {
            mt_node_fail(g, n, MTMI_ERR_SHAPE, "too many axes");
            return -1;
        }
        memcpy(axes, a, sizeof(int64_t) * cnt);
        return cnt;
    }
    if (mt_in(g, n, input)) return mt_const_ints(g, n, input, axes, MAXV);
    *present = 0;
    return 0;
}

static mtmi_status infer_unsqueeze(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    int64_t axes[MAXV];
    int present, cnt = read_axes(g, n, 1, axes, &present);
    if (cnt < 0) return MTMI_ERR_UNSUPPORTED;
    if (!present) return mt_node_fail(g, n, MTMI_ERR_PARSE, "axes are missing");
    int r = x->rank + cnt;
    if (r > MT_MAX_RANK) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, MT_MAX_RANK);
    int mask[MT_MAX_RANK];
    const char *err = mt_reduce_axes(r, cnt, axes, 1, mask);
    if (err) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axes: %s", err);
    int64_t d[MT_MAX_RANK];
    for (int i = 0, k = 0; i < r; i++) d[i] = mask[i] ? 1 : x->dims[k++];
    return set_out(g, n, 0, x->dtype, r, d);
}

static mtmi_status infer_squeeze(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    int64_t axes[MAXV];
    int present, cnt = read_axes(g, n, 1, axes, &present);
    if (cnt < 0) return MTMI_ERR_UNSUPPORTED;
    int mask[MT_MAX_RANK];
    if (!present || cnt == 0) {
        for (int i = 0; i < x->rank; i++) mask[i] = x->dims[i] == 1;
    } else {
        const char *err = mt_reduce_axes(x->rank, cnt, axes, 1, mask);
        if (err) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axes: %s", err);
        for (int i = 0; i < x->rank; i++)
            if (mask[i] && x->dims[i] != 1)
                return mt_node_fail(g, n, MTMI_ERR_SHAPE, "cannot squeeze axis %d of size %lld", i, (long long)x->dims[i]);
    }
    int64_t d[MT_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!mask[i]) d[r++] = x->dims[i];
    return set_out(g, n, 0, x->dtype, r, d);
}

static mtmi_status infer_transpose(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (!s) s = need_movable(g, n, mt_in(g, n, 0));
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    const int64_t *perm;
    int cnt = mt_attr_ints(n, "perm", &perm);
    int64_t d[MT_MAX_RANK];
    int used[MT_MAX_RANK] = {0};
    if (cnt < 0) {
        for (int i = 0; i < x->rank; i++) d[i] = x->dims[x->rank - 1 - i];
    } else {
        if (cnt != x->rank) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "perm has %d entries for rank %d", cnt, x->rank);
        for (int i = 0; i < cnt; i++) {
            if (perm[i] < 0 || perm[i] >= x->rank || used[perm[i]]++)
                return mt_node_fail(g, n, MTMI_ERR_SHAPE, "perm is not a permutation of 0..%d", x->rank - 1);
            d[i] = x->dims[perm[i]];
        }
    }
    return set_out(g, n, 0, x->dtype, x->rank, d);
}

static mtmi_status infer_gather(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (!s) s = need_movable(g, n, mt_in(g, n, 0));
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *idx = mt_in(g, n, 1);
    if (idx->dtype != MTMI_INT64 && idx->dtype != MTMI_INT32)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "indices must be int64 or int32, are %s", mt_dtype_name(idx->dtype));
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 0), x->rank);
    if (axis < 0 || x->rank == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)mt_attr_int(n, "axis", 0), x->rank);
    int r = x->rank - 1 + idx->rank;
    if (r > MT_MAX_RANK) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "output rank %d exceeds %d", r, MT_MAX_RANK);
    int64_t d[MT_MAX_RANK];
    int k = 0;
    for (int i = 0; i < axis; i++) d[k++] = x->dims[i];
    for (int i = 0; i < idx->rank; i++) d[k++] = idx->dims[i];
    for (int i = axis + 1; i < x->rank; i++) d[k++] = x->dims[i];
    /* Constant indices are checked now, so that a bad model fails at load. */
    if (idx->data) {
        int64_t cnt = mt_value_numel(idx);
        for (int64_t i = 0; i < cnt; i++) {
            int64_t v = idx->dtype == MTMI_INT64 ? ((int64_t *)idx->data)[i] : ((int32_t *)idx->data)[i];
            if (v < -x->dims[axis] || v >= x->dims[axis])
                return mt_node_fail(g, n, MTMI_ERR_SHAPE, "index %lld out of range for axis of size %lld", (long long)v, (long long)x->dims[axis]);
        }
    }
    return set_out(g, n, 0, x->dtype, r, d);
}

static mtmi_status infer_concat(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 4096);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_movable(g, n, x))) return s;
    if (!mt_node_attr(n, "axis") && g->opset >= 4) return mt_node_fail(g, n, MTMI_ERR_PARSE, "attribute 'axis' is missing");
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 1), x->rank);
    if (axis < 0 || x->rank == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)mt_attr_int(n, "axis", 1), x->rank);
    int64_t d[MT_MAX_RANK];
    memcpy(d, x->dims, sizeof(int64_t) * x->rank);
    d[axis] = 0;
    for (int i = 0; i < n->nin; i++) {
        const mt_value *v = mt_in(g, n, i);
        if (!v) continue;
        if (v->rank != x->rank || v->dtype != x->dtype)
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input %d has rank %d (%s), input 0 rank %d (%s)", i, v->rank, mt_dtype_name(v->dtype), x->rank, mt_dtype_name(x->dtype));
        for (int k = 0; k < x->rank; k++)
            if (k != axis && v->dims[k] != x->dims[k]) {
                char a[128], b[128];
                return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input %d shape %s does not match input 0 shape %s off axis %d", i,
                                    mt_shape_str(v->rank, v->dims, a, sizeof a), mt_shape_str(x->rank, x->dims, b, sizeof b), axis);
            }
        d[axis] += v->dims[axis];
    }
    return set_out(g, n, 0, x->dtype, x->rank, d);
}

static mtmi_status infer_split(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_movable(g, n, x))) return s;
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 0), x->rank);
    if (axis < 0 || x->rank == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)mt_attr_int(n, "axis", 0), x->rank);
    int64_t sizes[MAXV];
    int cnt = -1;
    const int64_t *a;
    int na = mt_attr_ints(n, "split", &a);
    if (na >= 0) {
        if (na > MAXV) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "too many splits");
        memcpy(sizes, a, sizeof(int64_t) * na);
        cnt = na;
    } else if (mt_in(g, n, 1)) {
        cnt = mt_const_ints(g, n, 1, sizes, MAXV);
        if (cnt < 0) return MTMI_ERR_UNSUPPORTED;
    }
    int64_t dim = x->dims[axis];
    if (cnt < 0) {
        /* Equal parts; from opset 18 num_outputs allows a smaller last part. */
        int parts = n->nout;
        if (mt_node_attr(n, "num_outputs")) parts = (int)mt_attr_int(n, "num_outputs", n->nout);
        if (parts <= 0 || parts != n->nout || parts > MAXV) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "num_outputs %d does not match %d outputs", parts, n->nout);
        int64_t chunk = (dim + parts - 1) / parts;
        if (!mt_node_attr(n, "num_outputs") && dim % parts)
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis of size %lld does not split evenly in %d", (long long)dim, parts);
        for (int i = 0; i < parts; i++) sizes[i] = MT_MAX(0, MT_MIN(chunk, dim - chunk * i));
        cnt = parts;
    }
    if (cnt != n->nout) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "%d split sizes for %d outputs", cnt, n->nout);
    int64_t sum = 0;
    for (int i = 0; i < cnt; i++) {
        if (sizes[i] < 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "negative split size");
        sum += sizes[i];
    }
    if (sum != dim) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "split sizes sum to %lld, axis has %lld", (long long)sum, (long long)dim);
    for (int i = 0; i < cnt; i++) {
        int64_t d[MT_MAX_RANK];
        memcpy(d, x->dims, sizeof(int64_t) * x->rank);
        d[axis] = sizes[i];
        if ((s = set_out(g, n, i, x->dtype, x->rank, d))) return s;
    }
    return MTMI_OK;
}

static mtmi_status infer_slice(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 5);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_movable(g, n, x))) return s;
    int64_t st[MAXV], en[MAXV], ax[MAXV], sp[MAXV];
    int cnt, na = -1, ns = -1;
    if (g->opset < 10) {
        const int64_t *a, *b, *c;
        cnt = mt_attr_ints(n, "starts", &a);
        if (cnt < 0 || mt_attr_ints(n, "ends", &b) != cnt) return mt_node_fail(g, n, MTMI_ERR_PARSE, "starts and ends must be given with equal lengths");
        if (cnt > MAXV) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "too many axes");
        memcpy(st, a, sizeof(int64_t) * cnt);
        memcpy(en, b, sizeof(int64_t) * cnt);
        na = mt_attr_ints(n, "axes", &c);
        if (na > MAXV) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "too many axes");
        if (na >= 0) memcpy(ax, c, sizeof(int64_t) * na);
    } else {
        if ((s = mt_check_inputs(g, n, 3, 5))) return s;
        cnt = mt_const_ints(g, n, 1, st, MAXV);
        if (cnt < 0 || mt_const_ints(g, n, 2, en, MAXV) != cnt) {
            if (cnt >= 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "starts and ends have different lengths");
            return MTMI_ERR_UNSUPPORTED;
        }
        if (mt_in(g, n, 3) && (na = mt_const_ints(g, n, 3, ax, MAXV)) < 0) return MTMI_ERR_UNSUPPORTED;
        if (mt_in(g, n, 4) && (ns = mt_const_ints(g, n, 4, sp, MAXV)) < 0) return MTMI_ERR_UNSUPPORTED;
    }
    if ((na >= 0 && na != cnt) || (ns >= 0 && ns != cnt)) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "starts, ends, axes and steps differ in length");
    int64_t o_st[MT_MAX_RANK], o_sp[MT_MAX_RANK], len[MT_MAX_RANK];
    const char *err = mt_slice_resolve(x->rank, x->dims, cnt, st, en, na >= 0 ? ax : NULL, ns >= 0 ? sp : NULL, o_st, o_sp, len);
    if (err) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    return set_out(g, n, 0, x->dtype, x->rank, len);
}

static mtmi_status infer_expand(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_movable(g, n, x))) return s;
    int64_t shape[MAXV], d[MT_MAX_RANK];
    int cnt = mt_const_ints(g, n, 1, shape, MAXV), r;
    if (cnt < 0) return MTMI_ERR_UNSUPPORTED;
    if (cnt > MT_MAX_RANK) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "target rank %d exceeds %d", cnt, MT_MAX_RANK);
    if ((s = mt_broadcast_shape(g, n, x->rank, x->dims, cnt, shape, &r, d))) return s;
    return set_out(g, n, 0, x->dtype, r, d);
}

static mtmi_status infer_tile(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_movable(g, n, x))) return s;
    int64_t rep[MAXV], d[MT_MAX_RANK];
    int cnt = mt_const_ints(g, n, 1, rep, MAXV);
    if (cnt < 0) return MTMI_ERR_UNSUPPORTED;
    if (cnt != x->rank) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "repeats has %d entries for rank %d", cnt, x->rank);
    for (int i = 0; i < cnt; i++) {
        if (rep[i] < 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "negative repeat");
        if (__builtin_mul_overflow(x->dims[i], rep[i], &d[i])) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "repeat overflows");
    }
    return set_out(g, n, 0, x->dtype, x->rank, d);
}

static mtmi_status infer_constant_of_shape(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    int64_t shape[MAXV];
    int cnt = mt_const_ints(g, n, 0, shape, MAXV);
    if (cnt < 0) return MTMI_ERR_UNSUPPORTED;
    const mt_attr *v = mt_node_attr(n, "value");
    int dtype = MTMI_FLOAT;
    if (v && v->t) {
        dtype = v->t->dtype;
        if (mt_value_numel(v->t) != 1 || !v->t->data) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "value must hold one element");
        if ((s = need_movable(g, n, v->t))) return s;
    }
    return set_out(g, n, 0, dtype, cnt, shape);
}

static mtmi_status infer_range(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 3, 3);
    if (s) return s;
    const mt_value *a = mt_in(g, n, 0);
    if ((s = need_numeric(g, n, a, 0))) return s;
    for (int i = 0; i < 3; i++) {
        const mt_value *v = mt_in(g, n, i);
        if (!v->data) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "input %d ('%s') must be a constant (the output size depends on it)", i, v->name);
        if (v->dtype != a->dtype || mt_value_numel(v) != 1) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "start, limit and delta must be scalars of one type");
    }
    double val[3];
    for (int i = 0; i < 3; i++) {
        const mt_value *v = mt_in(g, n, i);
        switch (v->dtype) {
        case MTMI_FLOAT: val[i] = *(float *)v->data; break;
        case MTMI_DOUBLE: val[i] = *(double *)v->data; break;
        case MTMI_INT32: val[i] = *(int32_t *)v->data; break;
        default: val[i] = (double)*(int64_t *)v->data; break;
        }
    }
    if (val[2] == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "delta is 0");
    double c = ceil((val[1] - val[0]) / val[2]);
    if (c != c) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "start, limit or delta is NaN");
    if (c > 1e12) c = 1e12; /* set_out rejects the size */
    int64_t d[1] = {c > 0 ? (int64_t)c : 0};
    return set_out(g, n, 0, a->dtype, 1, d);
}

static mtmi_status infer_pad(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 4);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_movable(g, n, x))) return s;
    const char *mode = mt_attr_string(n, "mode", "constant");
    if (strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge") && strcmp(mode, "wrap"))
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "mode '%s' is not supported", mode);
    int64_t pads[2 * MAXV], axes[MAXV], b[MT_MAX_RANK], e[MT_MAX_RANK];
    int np, na = -1;
    if (g->opset < 11) {
        const int64_t *p;
        np = mt_attr_ints(n, "pads", &p);
        if (np < 0) np = mt_attr_ints(n, "paddings", &p);
        if (np < 0) return mt_node_fail(g, n, MTMI_ERR_PARSE, "attribute 'pads' is missing");
        if (np > 2 * MAXV) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "too many pads");
        memcpy(pads, p, sizeof(int64_t) * np);
    } else {
        if ((s = mt_check_inputs(g, n, 2, 4))) return s;
        if ((np = mt_const_ints(g, n, 1, pads, 2 * MAXV)) < 0) return MTMI_ERR_UNSUPPORTED;
        if (mt_in(g, n, 3) && (na = mt_const_ints(g, n, 3, axes, MAXV)) < 0) return MTMI_ERR_UNSUPPORTED;
        const mt_value *cv = mt_in(g, n, 2);
        if (cv && (cv->dtype != x->dtype || mt_value_numel(cv) > 1))
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "constant_value must be one element of the input's type");
    }
    const char *err = mt_pad_resolve(x->rank, np, pads, na, na >= 0 ? axes : NULL, b, e);
    if (err) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "%s", err);
    int64_t d[MT_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        d[i] = x->dims[i] + b[i] + e[i];
        if (d[i] < 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "pads make dimension %d negative", i);
        if (strcmp(mode, "constant") && d[i] > 0 && x->dims[i] == 0)
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "mode '%s' cannot pad an empty dimension", mode);
        if (!strcmp(mode, "reflect") && (b[i] > 0 || e[i] > 0) && (b[i] >= x->dims[i] || e[i] >= x->dims[i]))
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "reflect pads must be smaller than the dimension (%lld)", (long long)x->dims[i]);
    }
    return set_out(g, n, 0, x->dtype, x->rank, d);
}

static mtmi_status infer_softmax(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_numeric(g, n, x, 1))) return s;
    int64_t axis = mt_attr_int(n, "axis", g->opset < 13 ? 1 : -1);
    if (axis < 0) axis += x->rank;
    /* Before opset 13 axis may equal rank (coerced 2-D with an empty second part). */
    if (axis < 0 || axis > x->rank || (axis == x->rank && g->opset >= 13) || (x->rank == 0 && g->opset >= 13))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)mt_attr_int(n, "axis", 0), x->rank);
    return mt_infer_same(g, n);
}

/* Reductions: axes from the attribute, or from input 1 (ReduceSum from opset
 * 13, the others from 18). */
static mtmi_status reduce_mask(mt_graph *g, mt_node *n, const mt_value *x, int *mask) {
    int64_t axes[MAXV];
    int present, cnt = read_axes(g, n, 1, axes, &present);
    if (cnt < 0) return MTMI_ERR_UNSUPPORTED;
    int noop = (int)mt_attr_int(n, "noop_with_empty_axes", 0);
    const char *err = mt_reduce_axes(x->rank, cnt, axes, noop, mask);
    if (err) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axes: %s", err);
    return MTMI_OK;
}

static mtmi_status infer_reduce(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    /* Max and Min also order bytes (bool from opset 20, int8/uint8). */
    int bytes_ok = (!strcmp(n->op, "ReduceMax") || !strcmp(n->op, "ReduceMin")) &&
                   (x->dtype == MTMI_BOOL || x->dtype == MTMI_UINT8 || x->dtype == MTMI_INT8);
    if (!bytes_ok && (s = need_numeric(g, n, x, 0))) return s;
    int mask[MT_MAX_RANK];
    if ((s = reduce_mask(g, n, x, mask))) return s;
    int keep = (int)mt_attr_int(n, "keepdims", 1);
    int64_t d[MT_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (mask[i] && x->dims[i] == 0 && (!strcmp(n->op, "ReduceMax") || !strcmp(n->op, "ReduceMin") || !strcmp(n->op, "ReduceMean")))
            return mt_node_fail(g, n, MTMI_ERR_SHAPE, "cannot reduce an empty axis");
        if (!mask[i]) d[r++] = x->dims[i];
        else if (keep) d[r++] = 1;
    }
    return set_out(g, n, 0, x->dtype, r, d);
}

static mtmi_status infer_argmax(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_numeric(g, n, x, 0))) return s;
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 0), x->rank);
    if (axis < 0 || x->rank == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)mt_attr_int(n, "axis", 0), x->rank);
    if (x->dims[axis] == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "cannot reduce an empty axis");
    int keep = (int)mt_attr_int(n, "keepdims", 1);
    int64_t d[MT_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != axis) d[r++] = x->dims[i];
        else if (keep) d[r++] = 1;
    }
    return set_out(g, n, 0, MTMI_INT64, r, d);
}


/* ---------------------------------------------- matrices, scans, layouts */
static mtmi_status infer_trilu(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *k = mt_in(g, n, 1);
    if ((s = need_movable(g, n, x))) return s;
    if (x->rank < 2) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must have rank 2 or more, has %d", x->rank);
    if (k && (mt_value_numel(k) != 1 || (k->dtype != MTMI_INT64 && k->dtype != MTMI_INT32)))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "k must be one int64");
    return mt_infer_same(g, n);
}

static mtmi_status infer_cumsum(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *a = mt_in(g, n, 1);
    if ((s = need_numeric(g, n, x, 0))) return s;
    if (x->rank == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must have rank 1 or more");
    if (mt_value_numel(a) != 1 || (a->dtype != MTMI_INT64 && a->dtype != MTMI_INT32))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis must be one int64 or int32");
    if (a->data) {
        int64_t v = a->dtype == MTMI_INT64 ? *(int64_t *)a->data : *(int32_t *)a->data;
        if (mt_norm_axis(v, x->rank) < 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis %lld out of range for rank %d", (long long)v, x->rank);
    }
    return mt_infer_same(g, n);
}

/* DepthToSpace and SpaceToDepth on NCHW. */
static mtmi_status infer_depth_space(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_movable(g, n, x))) return s;
    int64_t bs = mt_attr_int(n, "blocksize", 0);
    if (x->rank != 4) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must be NCHW, has rank %d", x->rank);
    if (bs <= 0 || bs > 4096) return mt_node_fail(g, n, MTMI_ERR_PARSE, "blocksize must be positive, is %lld", (long long)bs);
    const char *mode = mt_attr_string(n, "mode", "DCR");
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD")) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "mode '%s'", mode);
    int64_t d[4] = {x->dims[0], 0, 0, 0};
    if (!strcmp(n->op, "DepthToSpace")) {
        if (x->dims[1] % (bs * bs)) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "channels %lld are not a multiple of blocksize^2", (long long)x->dims[1]);
        d[1] = x->dims[1] / (bs * bs), d[2] = x->dims[2] * bs, d[3] = x->dims[3] * bs;
    } else {
        if (x->dims[2] % bs || x->dims[3] % bs) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "height and width must be multiples of blocksize");
        d[1] = x->dims[1] * bs * bs, d[2] = x->dims[2] / bs, d[3] = x->dims[3] / bs;
    }
    return set_out(g, n, 0, x->dtype, 4, d);
}

static mtmi_status infer_gather_elements(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *idx = mt_in(g, n, 1);
    if ((s = need_movable(g, n, x))) return s;
    if (idx->dtype != MTMI_INT64 && idx->dtype != MTMI_INT32)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "indices must be int64 or int32, are %s", mt_dtype_name(idx->dtype));
    if (idx->rank != x->rank || x->rank == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "indices rank %d differs from data rank %d", idx->rank, x->rank);
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 0), x->rank);
    if (axis < 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis out of range");
    for (int d = 0; d < x->rank; d++)
        if (d != axis && idx->dims[d] > x->dims[d]) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "indices dimension %d exceeds the data's", d);
    return set_out(g, n, 0, x->dtype, idx->rank, idx->dims);
}

static mtmi_status infer_eyelike(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 1);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if (x->rank != 2) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "input must be 2-D");
    int dt = (int)mt_attr_int(n, "dtype", x->dtype);
    int ok = dt == MTMI_FLOAT || dt == MTMI_DOUBLE || dt == MTMI_INT32 || dt == MTMI_INT64 || dt == MTMI_INT8 || dt == MTMI_UINT8 || dt == MTMI_BOOL;
    if (!ok) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "dtype %s", mt_dtype_name(dt));
    return set_out(g, n, 0, dt, 2, x->dims);
}

static mtmi_status infer_hardmax(mt_graph *g, mt_node *n) { return infer_softmax(g, n); }


/* ------------------------------------------------- scatter, gather, top-k */
static int is_index_dtype(int t) { return t == MTMI_INT64 || t == MTMI_INT32; }

/* The reduction attribute of ScatterElements and ScatterND: none, or add,
 * mul, max or min on numbers. */
static mtmi_status need_reduction(mt_graph *g, mt_node *n, const mt_value *x) {
    const char *red = mt_attr_string(n, "reduction", "none");
    if (strcmp(red, "none") && (need_numeric(g, n, x, 0) || (strcmp(red, "add") && strcmp(red, "mul") && strcmp(red, "max") && strcmp(red, "min"))))
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "reduction '%s' on %s is not supported", red, mt_dtype_name(x->dtype));
    return MTMI_OK;
}

static mtmi_status infer_scatter_elements(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 3, 3);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *idx = mt_in(g, n, 1), *u = mt_in(g, n, 2);
    if ((s = need_movable(g, n, x))) return s;
    if (!is_index_dtype(idx->dtype)) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "indices must be int64 or int32");
    if (u->dtype != x->dtype) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "updates type differs from data");
    if (idx->rank != x->rank || u->rank != x->rank || memcmp(idx->dims, u->dims, sizeof(int64_t) * idx->rank))
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "indices and updates must have the data's rank and one shape");
    int axis = mt_norm_axis(mt_attr_int(n, "axis", 0), x->rank);
    if (axis < 0 || x->rank == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis out of range");
    for (int d = 0; d < x->rank; d++)
        if (d != axis && idx->dims[d] > x->dims[d]) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "indices dimension %d exceeds the data's", d);
    if ((s = need_reduction(g, n, x))) return s;
    return mt_infer_same(g, n);
}

static mtmi_status infer_scatter_nd(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 3, 3);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *idx = mt_in(g, n, 1), *u = mt_in(g, n, 2);
    if ((s = need_movable(g, n, x))) return s;
    if (!is_index_dtype(idx->dtype) || idx->rank < 1) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "indices must be int64 of rank >= 1");
    int64_t k = idx->dims[idx->rank - 1];
    if (k < 1 || k > x->rank) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "index tuples of length %lld for data of rank %d", (long long)k, x->rank);
    /* updates = indices.shape[:-1] + data.shape[k:] */
    int ur = idx->rank - 1 + x->rank - (int)k;
    int ok = u->rank == ur && u->dtype == x->dtype;
    for (int d = 0; ok && d < idx->rank - 1; d++) ok = u->dims[d] == idx->dims[d];
    for (int d = 0; ok && d < x->rank - k; d++) ok = u->dims[idx->rank - 1 + d] == x->dims[k + d];
    if (!ok) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "updates shape does not match indices and data");
    if ((s = need_reduction(g, n, x))) return s;
    return mt_infer_same(g, n);
}

static mtmi_status infer_gather_nd(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 2, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *idx = mt_in(g, n, 1);
    if ((s = need_movable(g, n, x))) return s;
    if (!is_index_dtype(idx->dtype) || idx->rank < 1) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "indices must be int64 of rank >= 1");
    int64_t b = mt_attr_int(n, "batch_dims", 0), k = idx->dims[idx->rank - 1];
    if (b < 0 || b >= idx->rank || b >= x->rank || k < 1 || b + k > x->rank)
        return mt_node_fail(g, n, MTMI_ERR_SHAPE, "batch_dims %lld and tuples of %lld do not fit data of rank %d", (long long)b, (long long)k, x->rank);
    for (int d = 0; d < b; d++)
        if (idx->dims[d] != x->dims[d]) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "batch dimension %d differs", d);
    int64_t dd[MT_MAX_RANK * 2];
    int r = 0;
    for (int d = 0; d < idx->rank - 1; d++) dd[r++] = idx->dims[d];
    for (int d = (int)(b + k); d < x->rank; d++) dd[r++] = x->dims[d];
    return set_out(g, n, 0, x->dtype, r, dd);
}

static mtmi_status infer_onehot(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 3, 3);
    if (s) return s;
    const mt_value *idx = mt_in(g, n, 0), *depth = mt_in(g, n, 1), *vals = mt_in(g, n, 2);
    if ((s = need_numeric(g, n, idx, 0))) return s;
    if ((s = need_movable(g, n, vals))) return s;
    if (mt_value_numel(vals) != 2) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "values must hold [off, on]");
    if (!depth->data || mt_value_numel(depth) != 1)
        return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "depth must be a constant scalar (the output size depends on it)");
    double dv = depth->dtype == MTMI_INT64 ? (double)*(int64_t *)depth->data : depth->dtype == MTMI_INT32 ? *(int32_t *)depth->data
              : depth->dtype == MTMI_FLOAT ? *(float *)depth->data : depth->dtype == MTMI_DOUBLE ? *(double *)depth->data : -1;
    if (!(dv >= 1 && dv < 1e9)) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "depth must be positive");
    int r = idx->rank + 1;
    int64_t axis = mt_attr_int(n, "axis", -1);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis out of range");
    int64_t d[MT_MAX_RANK + 1];
    for (int i = 0, k = 0; i < r; i++) d[i] = i == axis ? (int64_t)dv : idx->dims[k++];
    return set_out(g, n, 0, vals->dtype, r, d);
}

static mtmi_status infer_topk(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 2);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0);
    if ((s = need_numeric(g, n, x, 0))) return s;
    int64_t k;
    if (g->opset < 10) k = mt_attr_int(n, "k", -1);
    else {
        int64_t v[1];
        if (mt_const_ints(g, n, 1, v, 1) != 1) return MTMI_ERR_UNSUPPORTED;
        k = v[0];
    }
    int axis = mt_norm_axis(mt_attr_int(n, "axis", -1), x->rank);
    if (axis < 0 || x->rank == 0) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "axis out of range");
    if (k < 0 || k > x->dims[axis]) return mt_node_fail(g, n, MTMI_ERR_SHAPE, "k = %lld for an axis of %lld", (long long)k, (long long)x->dims[axis]);
    int64_t d[MT_MAX_RANK];
    memcpy(d, x->dims, sizeof(int64_t) * x->rank);
    d[axis] = k;
    if ((s = set_out(g, n, 0, x->dtype, x->rank, d))) return s;
    return set_out(g, n, 1, MTMI_INT64, x->rank, d);
}

static mtmi_status infer_dropout(mt_graph *g, mt_node *n) {
    mtmi_status s = mt_check_inputs(g, n, 1, 3);
    if (s) return s;
    const mt_value *x = mt_in(g, n, 0), *tm = mt_in(g, n, 2);
    if ((s = need_movable(g, n, x))) return s;
    if (tm) {
        if (!tm->data || tm->dtype != MTMI_BOOL)
            return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "training_mode must be a constant bool");
        if (*(uint8_t *)tm->data) return mt_node_fail(g, n, MTMI_ERR_UNSUPPORTED, "training mode (random dropout) is not supported");
    }
    if ((s = set_out(g, n, 0, x->dtype, x->rank, x->dims))) return s;
    /* the mask is bool from opset 10, the input's type before */
    return set_out(g, n, 1, g->opset >= 10 ? MTMI_BOOL : x->dtype, x->rank, x->dims);
}

const mt_op_schema mt_schemas_shape[] = {
    {"Shape", "", infer_shape_op, 1},
    {"Size", "", infer_size, 1},
    {"Reshape", "", infer_reshape, 1},
    {"Flatten", "", infer_flatten, 1},
    {"Squeeze", "", infer_squeeze, 1},
    {"Unsqueeze", "", infer_unsqueeze, 1},
    {"Transpose", "", infer_transpose, 1},
    {"Gather", "", infer_gather, 1},
    {"Concat", "", infer_concat, 1},
    {"Split", "", infer_split, 1},
    {"Slice", "", infer_slice, 1},
    {"Expand", "", infer_expand, 8},
    {"Tile", "", infer_tile, 6},
    {"ConstantOfShape", "", infer_constant_of_shape, 9},
    {"Range", "", infer_range, 11},
    {"Pad", "", infer_pad, 2},
    {"Softmax", "", infer_softmax, 1},
    {"LogSoftmax", "", infer_softmax, 1},
    {"ReduceMean", "", infer_reduce, 1},
    {"ReduceSum", "", infer_reduce, 1},
    {"ReduceMax", "", infer_reduce, 1},
    {"ReduceMin", "", infer_reduce, 1},
    {"ReduceProd", "", infer_reduce, 1},
    {"ReduceSumSquare", "", infer_reduce, 1},
    {"ReduceL1", "", infer_reduce, 1},
    {"ReduceL2", "", infer_reduce, 1},
    {"ReduceLogSum", "", infer_reduce, 1},
    {"ReduceLogSumExp", "", infer_reduce, 1},
    {"ArgMax", "", infer_argmax, 1},
    {"ArgMin", "", infer_argmax, 1},
    {"Trilu", "", infer_trilu, 14},
    {"CumSum", "", infer_cumsum, 11},
    {"CumProd", "", infer_cumsum, 1},
    {"ScatterElements", "", infer_scatter_elements, 11},
    {"ScatterND", "", infer_scatter_nd, 11},
    {"GatherND", "", infer_gather_nd, 11},
    {"OneHot", "", infer_onehot, 9},
    {"TopK", "", infer_topk, 1},
    {"Dropout", "", infer_dropout, 1},
    {"DepthToSpace", "", infer_depth_space, 1},
    {"SpaceToDepth", "", infer_depth_space, 1},
    {"GatherElements", "", infer_gather_elements, 11},
    {"EyeLike", "", infer_eyelike, 9},
    {"Hardmax", "", infer_hardmax, 1},
    {NULL, NULL, NULL, 0},
};
