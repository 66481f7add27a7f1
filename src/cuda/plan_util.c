/* The planner's helpers (plan_int.h): tensor views and buffers, constants,
 * copies, the graph queries every operator planner uses, and where a node
 * writes its output (a Concat slice or a new tensor). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/plan_int.h"
#include "graph/qops.h"

#include <stdarg.h>

mtmi_status mc_cuda_fail(cudaError_t e, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return mt_fail(MTMI_ERR_DEVICE, "CUDA: %s: %s", what, cudaGetErrorString(e));
}

mtmi_status mt_cuda_check_device(int device) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return mt_fail(MTMI_ERR_DEVICE, "device 'cuda:%d': no CUDA GPU is visible (%s)", device,
                       e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    if (device >= n) return mt_fail(MTMI_ERR_DEVICE, "device 'cuda:%d': only %d CUDA GPU%s visible", device, n, n == 1 ? " is" : "s are");
    return MTMI_OK;
}

size_t mc_esize(int st) {
    switch (st) {
    case MTMI_FLOAT16: return 2;
    case MTMI_FLOAT: case MTMI_INT32: return 4;
    case MTMI_INT64: case MTMI_DOUBLE: return 8;
    case MTMI_UINT8: case MTMI_INT8: case MTMI_BOOL: return 1;
    default: return 0;
    }
}

int mc_is_float(int dt) { return dt == MTMI_FLOAT || dt == MTMI_FLOAT16 || dt == MTMI_DOUBLE; }

/* Storage type of a graph dtype in this plan. */
int mc_storage_of(const mc_plan *p, int dt) {
    if (mc_is_float(dt)) return p->f16 ? MTMI_FLOAT16 : MTMI_FLOAT;
    return dt;
}

int mc_copy_kind(int st) {
    switch (st) {
    case MTMI_FLOAT: return MTK_T_F32;
    case MTMI_FLOAT16: return MTK_T_F16;
    default: {
        size_t e = mc_esize(st);
        return e == 1 ? MTK_T_RAW1 : e == 2 ? MTK_T_RAW2 : e == 4 ? MTK_T_RAW4 : MTK_T_RAW8;
    }
    }
}

void mc_contig(mc_tref *t) {
    int64_t s = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        t->strides[d] = s;
        s *= t->dims[d];
    }
}

int64_t mc_numel(const mc_tref *t) {
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) n *= t->dims[d];
    return n;
}

int mc_is_contig(const mc_tref *t) {
    int64_t s = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        if (t->dims[d] != 1 && t->strides[d] != s) return 0;
        s *= t->dims[d];
    }
    return 1;
}

/* Packed strides in the order of `like`'s strides (outermost = largest). */
void mc_packed_like(mc_tref *t, const mc_tref *like) {
    int order[MT_MAX_RANK];
    for (int i = 0; i < t->rank; i++) order[i] = i;
    if (like && like->rank == t->rank) {
        /* stable sort axes by like's stride descending */
        for (int i = 1; i < t->rank; i++)
            for (int j = i; j > 0; j--) {
                int a = order[j - 1], b = order[j];
                int64_t sa = like->dims[a] == 1 ? -1 : like->strides[a], sb = like->dims[b] == 1 ? -1 : like->strides[b];
                if (sa >= 0 && sb >= 0 && sb > sa) {
                    order[j - 1] = b;
                    order[j] = a;
                } else break;
            }
    }
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        t->strides[order[i]] = s;
        s *= t->dims[order[i]];
    }
}

int64_t mc_nhwc_ok(const mc_tref *t) {
    if (t->rank != 4) return 0;
    int64_t C = t->dims[1], H = t->dims[2], W = t->dims[3];
    return (t->strides[1] == 1 || C == 1) && (t->strides[3] == C || W == 1) && (t->strides[2] == W * C || H == 1) &&
           (t->strides[0] == H * W * C || t->dims[0] == 1);
}

void mc_set_nhwc(mc_tref *t) {
    int64_t C = t->dims[1], H = t->dims[2], W = t->dims[3];
    t->strides[1] = 1;
    t->strides[3] = C;
    t->strides[2] = W * C;
    t->strides[0] = H * W * C;
}

/* ---------------------------------------------------------- plan pieces */
int mc_new_buf(mc_plan *p, size_t bytes, int kind) {
    if (p->nbufs == p->cap_bufs) {
        int nc = p->cap_bufs ? p->cap_bufs * 2 : 256;
        mc_buf *b = realloc(p->bufs, sizeof(mc_buf) * nc);
        if (!b) return -1;
        p->bufs = b;
        p->cap_bufs = nc;
    }
    mc_buf *b = &p->bufs[p->nbufs];
    memset(b, 0, sizeof *b);
    b->bytes = bytes ? bytes : 16;
    b->kind = kind;
    b->first = b->last = -1;
    return p->nbufs++;
}

int mc_new_arena(mc_plan *p, size_t bytes) { return mc_new_buf(p, bytes, MC_ARENA); }

int mc_reserve_step(mc_plan *p) {
    if (p->nsteps < p->cap_steps) return 0;
    int nc = p->cap_steps ? p->cap_steps * 2 : 256;
    mc_step *s = realloc(p->steps, sizeof(mc_step) * nc);
    if (!s) return -1;
    p->steps = s;
    p->cap_steps = nc;
    return 0;
}

mc_step *mc_new_step(mc_plan *p, int kind, int node) {
    if (mc_reserve_step(p)) return NULL;
    mc_step *s = &p->steps[p->nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->node = node;
    s->label = node >= 0 && p->label ? p->label[node] : p->cur_label;
    s->order = p->nsteps - 1;
    return s;
}

/* A fresh arena tensor of the given logical shape (contiguous). */
int mc_new_tensor(mc_plan *p, int st, int rank, const int64_t *dims, mc_tref *t) {
    memset(t, 0, sizeof *t);
    t->st = st;
    t->rank = rank;
    for (int d = 0; d < rank; d++) t->dims[d] = dims[d];
    mc_contig(t);
    size_t bytes = (size_t)mc_numel(t) * mc_esize(st);
    t->buf = mc_new_buf(p, bytes, MC_ARENA);
    return t->buf < 0 ? -1 : 0;
}

/* Device copy of a constant, converted to the plan's storage type. */
mtmi_status mc_const_tref(mc_plan *p, int v, mc_tref *t) {
    if (p->has[v]) {
        *t = p->vt[v];
        return MTMI_OK;
    }
    const mt_value *val = &p->g->values[v];
    int st = mc_storage_of(p, val->dtype);
    size_t es = mc_esize(st);
    if (!es) return mt_fail(MTMI_ERR_UNSUPPORTED, "constant '%s': element type %s is not supported on the GPU", val->name, mt_dtype_name(val->dtype));
    memset(t, 0, sizeof *t);
    t->st = st;
    t->rank = val->rank;
    for (int d = 0; d < val->rank; d++) t->dims[d] = val->dims[d];
    mc_contig(t);
    int64_t n = mt_value_numel(val);
    void *host = malloc(n * es + 16);
    if (!host) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if (mc_is_float(val->dtype)) {
        for (int64_t i = 0; i < n; i++) {
            float f = mc_const_float(val, i);
            if (st == MTMI_FLOAT16) ((uint16_t *)host)[i] = mt_float_to_half(f);
            else ((float *)host)[i] = f;
        }
    } else memcpy(host, val->data, n * es);
    t->buf = mc_new_buf(p, n * es, MC_CONST);
    if (t->buf < 0) { free(host); return MTMI_ERR_NOMEM; }
    p->bufs[t->buf].host = host;
    p->vt[v] = *t;
    p->has[v] = 1;
    return MTMI_OK;
}

float mc_const_float(const mt_value *v, int64_t i) {
    switch (v->dtype) {
    case MTMI_FLOAT: return ((const float *)v->data)[i];
    case MTMI_FLOAT16: return mt_half_to_float(((const uint16_t *)v->data)[i]);
    case MTMI_DOUBLE: return (float)((const double *)v->data)[i];
    case MTMI_INT64: return (float)((const int64_t *)v->data)[i];
    case MTMI_INT32: return (float)((const int32_t *)v->data)[i];
    default: return 0.f;
    }
}

/* A persistent device buffer from host floats (converted to storage). */
int mc_upload_floats(mc_plan *p, const float *src, int64_t n) {
    int st = p->f16 ? MTMI_FLOAT16 : MTMI_FLOAT;
    size_t es = mc_esize(st);
    void *host = malloc(n * es + 16);
    if (!host) return -1;
    for (int64_t i = 0; i < n; i++) {
        if (p->f16) ((uint16_t *)host)[i] = mt_float_to_half(src[i]);
        else ((float *)host)[i] = src[i];
    }
    int b = mc_new_buf(p, n * es, MC_CONST);
    if (b < 0) { free(host); return -1; }
    p->bufs[b].host = host;
    return b;
}

/* The tref of a value (constants uploaded on first use). */
mtmi_status mc_get(mc_plan *p, int v, mc_tref *t) {
    if (v < 0) return mt_fail(MTMI_ERR_INTERNAL, "missing input");
    if (p->has[v]) {
        *t = p->vt[v];
        return MTMI_OK;
    }
    if (p->g->values[v].data) return mc_const_tref(p, v, t);
    return mt_fail(MTMI_ERR_INTERNAL, "value '%s' used before it is computed", p->g->values[v].name);
}

void mc_set(mc_plan *p, int v, const mc_tref *t) {
    if (v < 0) return;
    p->vt[v] = *t;
    p->has[v] = 1;
}

/* Adds a strided copy dst <- src (same logical dims; src may broadcast). */
mtmi_status mc_emit_copy(mc_plan *p, int node, const mc_tref *dst, const mc_tref *src) {
    mc_step *s = mc_new_step(p, MC_COPY, node);
    if (!s) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    s->t[0] = *dst;
    s->t[1] = *src;
    s->nt = 2;
    return MTMI_OK;
}

/* Materializes t contiguously (row-major) if it is not. */
mtmi_status mc_make_contig(mc_plan *p, int node, mc_tref *t) {
    if (mc_is_contig(t) && mc_storage_of(p, t->st) == t->st) return MTMI_OK;
    mc_tref n;
    if (mc_new_tensor(p, mc_storage_of(p, t->st), t->rank, t->dims, &n)) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mtmi_status s = mc_emit_copy(p, node, &n, t);
    if (s) return s;
    *t = n;
    return MTMI_OK;
}

mtmi_status mc_make_nhwc(mc_plan *p, int node, mc_tref *t) {
    if (mc_nhwc_ok(t) && mc_storage_of(p, t->st) == t->st) return MTMI_OK;
    mc_tref n;
    if (mc_new_tensor(p, mc_storage_of(p, t->st), t->rank, t->dims, &n)) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mc_set_nhwc(&n);
    mtmi_status s = mc_emit_copy(p, node, &n, t);
    if (s) return s;
    *t = n;
    return MTMI_OK;
}

/* numpy-style no-copy reshape of a strided view; 0 if impossible. */
int mc_reshape_view(const mc_tref *in, int rank, const int64_t *dims, mc_tref *out) {
    int64_t od[MT_MAX_RANK], os[MT_MAX_RANK];
    int on = 0;
    int64_t n = 1;
    for (int d = 0; d < in->rank; d++) {
        n *= in->dims[d];
        if (in->dims[d] != 1) {
            od[on] = in->dims[d];
            os[on] = in->strides[d];
            on++;
        }
    }
    *out = *in;
    out->rank = rank;
    for (int d = 0; d < rank; d++) out->dims[d] = dims[d];
    if (n == 0) {
        mc_contig(out);
        return 1;
    }
    int64_t ns[MT_MAX_RANK];
    int oi = 0, oj = 1, ni = 0, nj = 1;
    while (ni < rank && oi < on) {
        int64_t np = dims[ni], op = od[oi];
        while (np != op) {
            if (np < op) {
                if (nj >= rank) return 0;
                np *= dims[nj++];
            } else {
                if (oj >= on) return 0;
                op *= od[oj++];
            }
        }
        for (int ok = oi; ok < oj - 1; ok++)
            if (os[ok] != od[ok + 1] * os[ok + 1]) return 0;
        ns[nj - 1] = os[oj - 1];
        for (int nk = nj - 1; nk > ni; nk--) ns[nk - 1] = ns[nk] * dims[nk];
        ni = nj++;
        oi = oj++;
    }
    for (int d = ni; d < rank; d++) ns[d] = 1; /* trailing ones */
    for (int d = 0; d < rank; d++) out->strides[d] = ns[d];
    return 1;
}

/* Broadcasts t to rank/dims (numpy rules): stride 0 on broadcast axes. */
void mc_broadcast_to(const mc_tref *t, int rank, const int64_t *dims, mc_tref *o) {
    *o = *t;
    o->rank = rank;
    int off = rank - t->rank;
    for (int d = 0; d < rank; d++) {
        int s = d - off;
        o->dims[d] = dims[d];
        if (s < 0 || t->dims[s] == 1) o->strides[d] = 0;
        else o->strides[d] = t->strides[s];
    }
}

/* ------------------------------------------------------ use counting */
/* The single live consumer node of v (or -1). */
int mc_sole_consumer(mc_plan *p, int v) {
    if (v < 0 || p->nuse[v] != 1 || p->g->values[v].is_output) return -1;
    return p->consumer[v];
}

const mt_node *mc_node(mc_plan *p, int i) { return &p->g->nodes[i]; }

int mc_op_is(const mt_node *n, const char *op) {
    return !strcmp(n->op, op) && (!n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx"));
}
int mc_mtmi_op_is(const mt_node *n, const char *op) { return !strcmp(n->op, op) && n->domain && !strcmp(n->domain, "mtmi"); }

int mc_scalar_const(mc_plan *p, int v, float *f) {
    if (v < 0) return 0;
    const mt_value *val = &p->g->values[v];
    if (!val->data || mt_value_numel(val) != 1 || !mc_is_float(val->dtype)) return 0;
    *f = mc_const_float(val, 0);
    return 1;
}

int mc_act_code(const char *s) {
    if (!s || !*s) return 0;
    if (!strcmp(s, "Relu")) return 1;
    if (!strcmp(s, "Sigmoid")) return 2;
    if (!strcmp(s, "Gelu")) return 3;
    return -1;
}

/* If v's sole consumer is Relu or Sigmoid (and act is still 0), absorbs it:
 * returns the consumer's output value, sets *act. */
int mc_absorb_act(mc_plan *p, int v, int *act) {
    if (*act) return v;
    int c = mc_sole_consumer(p, v);
    if (c < 0) return v;
    const mt_node *n = mc_node(p, c);
    int a = mc_op_is(n, "Relu") ? 1 : mc_op_is(n, "Sigmoid") ? 2 : (mc_mtmi_op_is(n, "Gelu") || mc_op_is(n, "Gelu")) ? 3 : 0;
    if (!a) return v;
    *act = a;
    p->skip[c] = 1;
    return n->out[0];
}



mtmi_status mc_unsupported(mc_plan *p, int i, const char *why) {
    char desc[256];
    return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: not supported by the CUDA backend: %s",
                   mt_node_desc(p->g, mc_node(p, i), desc, sizeof desc), why);
}

const mt_value *mc_val(mc_plan *p, int v) { return &p->g->values[v]; }

/* ------------------------------------------------ destination hints */
/* Where a node that creates v should write it: a slice of the Concat that is
 * v's sole consumer (created on first use), else a new tensor packed like
 * `like` (NULL = row-major). */
int mc_identity_resize(mc_plan *p, int c) {
    const mt_node *n = mc_node(p, c);
    if (!(mc_op_is(n, "Resize") || mc_op_is(n, "Upsample")) || n->nout < 1) return 0;
    const mt_value *x = mc_val(p, n->in[0]), *y = mc_val(p, n->out[0]);
    if (x->rank != y->rank) return 0;
    for (int d = 0; d < x->rank; d++)
        if (x->dims[d] != y->dims[d]) return 0;
    const char *mode = mt_attr_string(n, "mode", "nearest");
    const char *ct = mt_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    return (!strcmp(mode, "linear") || !strcmp(mode, "nearest")) && strcmp(ct, "tf_crop_and_resize");
}

mtmi_status mc_dest_for(mc_plan *p, int v, const mc_tref *like, mc_tref *t) {
    const mt_value *val = mc_val(p, v);
    int st = mc_storage_of(p, val->dtype);
    int c = mc_sole_consumer(p, v);
    /* look through views of the same shape (Identity, same-size Resize or
     * Reshape) to a Concat */
    for (int hop = 0; hop < 4 && c >= 0; hop++) {
        const mt_node *cn0 = mc_node(p, c);
        int same = cn0->nout >= 1 && cn0->out[0] >= 0 && mc_same_dims(mc_val(p, cn0->out[0]), val) && cn0->in[0] == v;
        if (!same || !(mc_identity_resize(p, c) || mc_op_is(cn0, "Identity") || mc_op_is(cn0, "Dropout") || mc_op_is(cn0, "Reshape") ||
                       mc_op_is(cn0, "Squeeze") || mc_op_is(cn0, "Unsqueeze") || mc_op_is(cn0, "Flatten")))
            break;
        v = cn0->out[0];
        c = mc_sole_consumer(p, v);
    }
    if (p->tuning.trace_dest)
        fprintf(stderr, "dest_for %s: nuse %d consumer %s (%s)\n", val->name, p->nuse[v], c >= 0 ? mc_node(p, c)->name : "-",
                c >= 0 ? mc_node(p, c)->op : "-");
    if (c >= 0 && mc_op_is(mc_node(p, c), "Concat") && !p->skip[c]) {
        const mt_node *cn = mc_node(p, c);
        int cv = cn->out[0];
        const mt_value *cval = mc_val(p, cv);
        int axis = mt_norm_axis(mt_attr_int(cn, "axis", 0), cval->rank);
        int pos = -1;
        int64_t before = 0;
        for (int k = 0; k < cn->nin; k++) {
            if (cn->in[k] == v) { pos = k; break; }
            if (cn->in[k] >= 0) before += mc_val(p, cn->in[k])->dims[axis];
        }
        if (axis >= 0 && pos >= 0 && mc_storage_of(p, cval->dtype) == st) {
            if (!p->has[cv]) {
                mc_tref ct;
                if (mc_new_tensor(p, st, cval->rank, cval->dims, &ct)) return NOMEM();
                if (like && like->rank == ct.rank) mc_packed_like(&ct, like);
                mc_set(p, cv, &ct);
            }
            *t = p->vt[cv];
            t->off += before * t->strides[axis];
            for (int d = 0; d < val->rank; d++) t->dims[d] = val->dims[d];
            return MTMI_OK;
        }
    }
    if (mc_new_tensor(p, st, val->rank, val->dims, t)) return NOMEM();
    if (like && like->rank == t->rank) mc_packed_like(t, like);
    return MTMI_OK;
}

int mc_same_dims(const mt_value *a, const mt_value *b) {
    if (a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return 0;
    return 1;
}

int mc_available(mc_plan *p, int v) { return v < 0 || p->has[v] || mc_val(p, v)->data; }

int mc_output_of(const mc_plan *p, int v) {
    for (int k = 0; k < p->g->noutputs; k++)
        if (p->g->outputs[k] == v && p->out_stage[k].buf >= 0) return k;
    return -1;
}
