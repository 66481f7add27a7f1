/* IR -> ONNX.  The graph is written as a ModelProto built in memory (every
 * allocation tracked by the writer so one call frees it all; weight bytes are
 * referenced, not copied) and streamed to a temporary file that is renamed
 * into place, so a failed write never leaves a partial model.
 *
 * Fused ops of the "mtmi" domain (graph.h) are written back as the standard
 * ONNX subgraphs they came from unless keep_fused is set, so that ONNX
 * Runtime (and our own fuser, on reload) sees an ordinary export. */
#include "onnx/onnx.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

/* protobuf's 2 GiB message limit: above this, weights must go external. */
#define MT_PROTO_LIMIT ((size_t)1800 * 1024 * 1024)

typedef struct writer {
    const mt_graph *g;
    void **ptrs;             /* everything allocated for the proto */
    int nptrs, cap_ptrs;
    int oom;
    Onnx__NodeProto **nodes;
    int nnodes, cap_nodes;
    Onnx__TensorProto **inits;
    int ninits, cap_inits;
    size_t threshold;        /* external data above this many bytes */
    FILE *data;              /* "<file>.data" while open */
    char data_tmp[4096];
    const char *data_path, *data_loc;
    uint64_t data_off;
    int keep_fused;
    int decompose_ln;        /* LayerNormalization written as primitives */
    int64_t opset;
    int uses_mtmi;
    const char *domains[16]; /* other non-default domains seen */
    int ndomains;
    const char *gelu_c[3];   /* shared Gelu constants, made on first use */
    const char **names;      /* hash set of node names written (ONNX Runtime
                              * rejects duplicates; lowering makes several
                              * nodes from one) */
    int names_cap, nnames;
    mtmi_status err;
} writer;

/* ------------------------------------------------------------- memory */
static void *w_alloc(writer *w, size_t n) {
    if (w->oom) return NULL;
    if (w->nptrs == w->cap_ptrs) {
        int nc = w->cap_ptrs ? w->cap_ptrs * 2 : 1024;
        void **p = realloc(w->ptrs, sizeof(void *) * nc);
        if (!p) {
            w->oom = 1;
            return NULL;
        }
        w->ptrs = p;
        w->cap_ptrs = nc;
    }
    void *p = calloc(1, n ? n : 1);
    if (!p) {
        w->oom = 1;
        return NULL;
    }
    w->ptrs[w->nptrs++] = p;
    return p;
}

static char *w_strdup(writer *w, const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = w_alloc(w, n);
    if (d) memcpy(d, s, n);
    return d;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Inserts name if absent; 1 if inserted, 0 if present, -1 on no memory. */
static int name_insert(writer *w, const char *name) {
    if ((w->nnames + 1) * 2 > w->names_cap) {
        int nc = w->names_cap ? w->names_cap * 2 : 1024;
        const char **t = calloc(nc, sizeof(char *));
        if (!t) return -1;
        for (int i = 0; i < w->names_cap; i++)
            if (w->names[i]) {
                uint64_t h = hash_name(w->names[i]) & (nc - 1);
                while (t[h]) h = (h + 1) & (nc - 1);
                t[h] = w->names[i];
            }
        free(w->names);
        w->names = t;
        w->names_cap = nc;
    }
    uint64_t h = hash_name(name) & (w->names_cap - 1);
    while (w->names[h]) {
        if (!strcmp(w->names[h], name)) return 0;
        h = (h + 1) & (w->names_cap - 1);
    }
    w->names[h] = name;
    w->nnames++;
    return 1;
}

/* The node's name, made unique with a "_<k>" suffix if already written. */
static char *unique_node_name(writer *w, const char *name) {
    if (!name || !name[0]) return w_strdup(w, "");
    char *nm = w_strdup(w, name);
    for (int k = 1; nm; k++) {
        int r = name_insert(w, nm);
        if (r < 0) {
            w->oom = 1;
            return NULL;
        }
        if (r == 1) return nm;
        char buf[1100];
        snprintf(buf, sizeof buf, "%s_%d", name, k);
        nm = w_strdup(w, buf);
    }
    return NULL;
}

static void w_free(writer *w) {
    free(w->names);
    for (int i = 0; i < w->nptrs; i++) free(w->ptrs[i]);
    free(w->ptrs);
    free(w->nodes);
    free(w->inits);
}

/* ------------------------------------------------------------ tensors */
static mtmi_status write_external(writer *w, const void *data, size_t bytes, Onnx__TensorProto *t) {
    if (!w->data) {
        mtmi_status s = mt_check_not_input(w->data_path, (const char *const *)w->g->sources, w->g->nsources);
        if (s) return s;
        w->data = mt_atomic_open(w->data_path, w->data_tmp, sizeof w->data_tmp);
        if (!w->data) return MTMI_ERR_IO;
    }
    /* 64-byte alignment lets a reader map the file and use it in place. */
    static const uint8_t zeros[64];
    size_t pad = (size_t)((64 - (w->data_off & 63)) & 63);
    if (pad && fwrite(zeros, 1, pad, w->data) != pad) goto ioerr;
    w->data_off += pad;
    if (bytes && fwrite(data, 1, bytes, w->data) != bytes) goto ioerr;
    char off[32], len[32];
    snprintf(off, sizeof off, "%llu", (unsigned long long)w->data_off);
    snprintf(len, sizeof len, "%zu", bytes);
    w->data_off += bytes;
    Onnx__StringStringEntryProto **e = w_alloc(w, sizeof(*e) * 3);
    const char *kv[3][2] = {{"location", w->data_loc}, {"offset", off}, {"length", len}};
    for (int i = 0; e && i < 3; i++) {
        e[i] = w_alloc(w, sizeof **e);
        if (!e[i]) break;
        onnx__string_string_entry_proto__init(e[i]);
        e[i]->key = w_strdup(w, kv[i][0]);
        e[i]->value = w_strdup(w, kv[i][1]);
    }
    t->n_external_data = 3;
    t->external_data = e;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    return w->oom ? MTMI_ERR_NOMEM : MTMI_OK;
ioerr:
    return mt_fail(MTMI_ERR_IO, "%s: write failed: %s", w->data_path, strerror(errno));
}

static Onnx__TensorProto *tensor_proto(writer *w, const mt_value *v, const char *name, int allow_external) {
    Onnx__TensorProto *t = w_alloc(w, sizeof *t);
    if (!t) return NULL;
    onnx__tensor_proto__init(t);
    t->name = w_strdup(w, name);
    t->has_data_type = 1;
    t->data_type = v->dtype;
    int rank = v->rank > 0 ? v->rank : 0;
    t->n_dims = rank;
    t->dims = w_alloc(w, sizeof(int64_t) * (rank + 1));
    if (!t->dims) return NULL;
    for (int i = 0; i < rank; i++) t->dims[i] = v->dims[i];
    size_t bytes = mt_value_bytes(v);
    if (allow_external && w->threshold && bytes > w->threshold) {
        w->err = write_external(w, v->data, bytes, t);
        return w->err ? NULL : t;
    }
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = v->data; /* referenced: the graph outlives the write */
    return t;
}

static int push_init(writer *w, Onnx__TensorProto *t) {
    if (!t) return -1;
    if (mt_grow((void **)&w->inits, &w->cap_inits, w->ninits, sizeof(*w->inits))) {
        w->oom = 1;
        return -1;
    }
    w->inits[w->ninits++] = t;
    return 0;
}

/* A scalar float initializer with a fresh name. */
static const char *const_float(writer *w, const char *name, float x) {
    mt_value v = {0};
    v.dtype = MTMI_FLOAT;
    v.rank = 0;
    v.data = w_alloc(w, sizeof(float));
    if (!v.data) return NULL;
    memcpy(v.data, &x, sizeof x);
    if (push_init(w, tensor_proto(w, &v, name, 0))) return NULL;
    return w->inits[w->ninits - 1]->name;
}

/* ---------------------------------------------------------- attributes */
static Onnx__AttributeProto *attr_proto(writer *w, const mt_attr *a) {
    Onnx__AttributeProto *p = w_alloc(w, sizeof *p);
    if (!p) return NULL;
    onnx__attribute_proto__init(p);
    p->name = w_strdup(w, a->name);
    p->has_type = 1;
    p->type = (Onnx__AttributeProto__AttributeType)a->type;
    switch (a->type) {
    case MT_ATTR_FLOAT: p->has_f = 1; p->f = a->f; break;
    case MT_ATTR_INT: p->has_i = 1; p->i = a->i; break;
    case MT_ATTR_STRING:
        p->has_s = 1;
        p->s.data = (uint8_t *)w_strdup(w, a->s);
        p->s.len = a->s ? strlen(a->s) : 0;
        break;
    case MT_ATTR_FLOATS:
        p->n_floats = a->n;
        p->floats = w_alloc(w, sizeof(float) * (a->n + 1));
        if (p->floats && a->n) memcpy(p->floats, a->floats, sizeof(float) * a->n);
        break;
    case MT_ATTR_INTS:
        p->n_ints = a->n;
        p->ints = w_alloc(w, sizeof(int64_t) * (a->n + 1));
        if (p->ints && a->n) memcpy(p->ints, a->ints, sizeof(int64_t) * a->n);
        break;
    case MT_ATTR_STRINGS:
        p->n_strings = a->n;
        p->strings = w_alloc(w, sizeof(ProtobufCBinaryData) * (a->n + 1));
        for (int i = 0; p->strings && i < a->n; i++) {
            p->strings[i].data = (uint8_t *)w_strdup(w, a->strings[i]);
            p->strings[i].len = a->strings[i] ? strlen(a->strings[i]) : 0;
        }
        break;
    case MT_ATTR_TENSOR:
        if (!a->t) return NULL;
        p->t = tensor_proto(w, a->t, a->t->name ? a->t->name : "", 0);
        if (!p->t) return NULL;
        break;
    default:
        return NULL; /* graph-valued attributes were dropped at load */
    }
    return w->oom ? NULL : p;
}

/* --------------------------------------------------------------- nodes */
static Onnx__NodeProto *add_node(writer *w, const char *op, const char *domain, const char *name,
                                 const char *const *in, int nin, const char *const *out, int nout) {
    Onnx__NodeProto *n = w_alloc(w, sizeof *n);
    if (!n) return NULL;
    onnx__node_proto__init(n);
    n->op_type = w_strdup(w, op);
    n->name = unique_node_name(w, name);
    if (domain && domain[0]) n->domain = w_strdup(w, domain);
    n->n_input = nin;
    n->input = w_alloc(w, sizeof(char *) * (nin + 1));
    n->n_output = nout;
    n->output = w_alloc(w, sizeof(char *) * (nout + 1));
    if (!n->input || !n->output) return NULL;
    for (int i = 0; i < nin; i++) n->input[i] = w_strdup(w, in[i]);
    for (int i = 0; i < nout; i++) n->output[i] = w_strdup(w, out[i]);
    if (mt_grow((void **)&w->nodes, &w->cap_nodes, w->nnodes, sizeof(*w->nodes))) {
        w->oom = 1;
        return NULL;
    }
    w->nodes[w->nnodes++] = n;
    return w->oom ? NULL : n;
}

static int node_add_attr(writer *w, Onnx__NodeProto *n, const mt_attr *a) {
    Onnx__AttributeProto *p = attr_proto(w, a);
    if (!p) return w->oom ? -1 : 0; /* unsupported attribute kinds are skipped */
    Onnx__AttributeProto **arr = w_alloc(w, sizeof(*arr) * (n->n_attribute + 1));
    if (!arr) return -1;
    if (n->n_attribute) memcpy(arr, n->attribute, sizeof(*arr) * n->n_attribute);
    arr[n->n_attribute++] = p;
    n->attribute = arr; /* the old array stays owned by the writer */
    return 0;
}

static int node_int(writer *w, Onnx__NodeProto *n, const char *name, int64_t v) {
    mt_attr a = {.name = (char *)name, .type = MT_ATTR_INT, .i = v};
    return n ? node_add_attr(w, n, &a) : -1;
}

static int node_ints(writer *w, Onnx__NodeProto *n, const char *name, const int64_t *v, int cnt) {
    mt_attr a = {.name = (char *)name, .type = MT_ATTR_INTS, .ints = (int64_t *)v, .n = cnt};
    return n ? node_add_attr(w, n, &a) : -1;
}

/* A fresh tensor name "<base>/<suffix>" that no value of the graph has. */
static const char *fresh(writer *w, const char *base, const char *suffix) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s/mtmi_%s", base, suffix);
    for (int k = 1; mt_graph_find_value(w->g, buf) >= 0; k++)
        snprintf(buf, sizeof buf, "%s/mtmi_%s_%d", base, suffix, k);
    return w_strdup(w, buf);
}

static int emit1(writer *w, const char *op, const char *name, const char *a, const char *b, const char *out) {
    const char *in[2] = {a, b};
    return add_node(w, op, "", name, in, b ? 2 : 1, &out, 1) ? 0 : -1;
}

/* x -> 0.5 x (1 + erf(x / sqrt 2)), the exporters' exact pattern, so that
 * a reload fuses it back. */
static int emit_gelu(writer *w, const char *x, const char *y, const char *base) {
    static const float vals[3] = {1.41421356237f, 1.0f, 0.5f};
    static const char *names[3] = {"gelu_sqrt2", "gelu_one", "gelu_half"};
    for (int i = 0; i < 3; i++)
        if (!w->gelu_c[i] && !(w->gelu_c[i] = const_float(w, fresh(w, "mtmi", names[i]), vals[i]))) return -1;
    const char *d = fresh(w, base, "gelu_div"), *e = fresh(w, base, "gelu_erf"), *a = fresh(w, base, "gelu_add"),
               *m = fresh(w, base, "gelu_mul");
    char nm[1024];
    snprintf(nm, sizeof nm, "%s/gelu", base);
    if (emit1(w, "Div", nm, x, w->gelu_c[0], d) || emit1(w, "Erf", nm, d, NULL, e) ||
        emit1(w, "Add", nm, e, w->gelu_c[1], a) || emit1(w, "Mul", nm, x, a, m) ||
        emit1(w, "Mul", nm, m, w->gelu_c[2], y))
        return -1;
    return 0;
}

static int emit_act(writer *w, const char *act, const char *x, const char *y, const char *base) {
    if (!strcmp(act, "Gelu")) return emit_gelu(w, x, y, base);
    char nm[1024];
    snprintf(nm, sizeof nm, "%s/%s", base, act);
    return emit1(w, act, nm, x, NULL, y); /* Relu, Sigmoid, Tanh...: unary ONNX ops */
}

static const char *vname(const mt_graph *g, const mt_node *n, int i, int out) {
    int v = out ? (i < n->nout ? n->out[i] : -1) : (i < n->nin ? n->in[i] : -1);
    return v >= 0 ? g->values[v].name : "";
}

static int is_conv_attr(const char *s) {
    return !strcmp(s, "auto_pad") || !strcmp(s, "dilations") || !strcmp(s, "group") || !strcmp(s, "kernel_shape") ||
           !strcmp(s, "pads") || !strcmp(s, "strides");
}

static int lower_fused(writer *w, const mt_node *n) {
    const mt_graph *g = w->g;
    const char *y = vname(g, n, 0, 1);
    const char *base = n->name && n->name[0] ? n->name : y;
    const char *act = mt_attr_string(n, "activation", "");
    char nm[1024];
    if (!strcmp(n->op, "FusedConv")) {
        const char *cy = act[0] ? fresh(w, y, "conv") : y;
        const char *in[3] = {vname(g, n, 0, 0), vname(g, n, 1, 0), vname(g, n, 2, 0)};
        int nin = n->nin >= 3 && n->in[2] >= 0 ? 3 : 2;
        Onnx__NodeProto *c = add_node(w, "Conv", "", base, in, nin, &cy, 1);
        if (!c) return -1;
        for (int i = 0; i < n->nattr; i++)
            if (is_conv_attr(n->attrs[i].name) && node_add_attr(w, c, &n->attrs[i])) return -1;
        return act[0] ? emit_act(w, act, cy, y, base) : 0;
    }
    if (!strcmp(n->op, "Linear")) {
        int has_b = n->nin >= 3 && n->in[2] >= 0;
        const char *mm = has_b || act[0] ? fresh(w, y, "matmul") : y;
        snprintf(nm, sizeof nm, "%s/MatMul", base);
        if (emit1(w, "MatMul", nm, vname(g, n, 0, 0), vname(g, n, 1, 0), mm)) return -1;
        const char *cur = mm;
        if (has_b) {
            const char *ad = act[0] ? fresh(w, y, "bias") : y;
            snprintf(nm, sizeof nm, "%s/Add", base);
            if (emit1(w, "Add", nm, mm, vname(g, n, 2, 0), ad)) return -1;
            cur = ad;
        }
        return act[0] ? emit_act(w, act, cur, y, base) : 0;
    }
    if (!strcmp(n->op, "Gelu")) return emit_gelu(w, vname(g, n, 0, 0), y, base);
    if (!strcmp(n->op, "Attention")) {
        /* softmax(Q K^T * scale) V, as the exporters write it (K transposed
         * by a Transpose of its last two axes). */
        int kv = n->nin > 1 ? n->in[1] : -1;
        int r = kv >= 0 && g->values[kv].rank >= 2 ? g->values[kv].rank : 4;
        int64_t perm[MT_MAX_RANK];
        for (int i = 0; i < r; i++) perm[i] = i;
        perm[r - 2] = r - 1;
        perm[r - 1] = r - 2;
        float scale = mt_attr_float(n, "scale", 1.0f);
        const char *kt = fresh(w, y, "kT"), *s = fresh(w, y, "scores"), *ss = fresh(w, y, "scaled"),
                   *p = fresh(w, y, "probs");
        const char *sc = const_float(w, fresh(w, y, "scale"), scale);
        if (!sc) return -1;
        const char *kin = vname(g, n, 1, 0);
        snprintf(nm, sizeof nm, "%s/Transpose", base);
        Onnx__NodeProto *t = add_node(w, "Transpose", "", nm, &kin, 1, &kt, 1);
        if (node_ints(w, t, "perm", perm, r)) return -1;
        snprintf(nm, sizeof nm, "%s/MatMul", base);
        if (emit1(w, "MatMul", nm, vname(g, n, 0, 0), kt, s)) return -1;
        snprintf(nm, sizeof nm, "%s/Mul", base);
        if (emit1(w, "Mul", nm, s, sc, ss)) return -1;
        snprintf(nm, sizeof nm, "%s/Softmax", base);
        Onnx__NodeProto *sm = add_node(w, "Softmax", "", nm, &ss, 1, &p, 1);
        if (node_int(w, sm, "axis", -1)) return -1;
        snprintf(nm, sizeof nm, "%s/MatMul_1", base);
        return emit1(w, "MatMul", nm, p, vname(g, n, 2, 0), y);
    }
    return 1; /* not one we lower */
}

/* LayerNormalization for opsets below 17 that cannot be raised:
 * (x - mean) / sqrt(var + eps) * scale + bias over the axes from `axis`. */
static int lower_layernorm(writer *w, const mt_node *n) {
    const mt_graph *g = w->g;
    const char *y = vname(g, n, 0, 1), *x = vname(g, n, 0, 0);
    const char *base = n->name && n->name[0] ? n->name : y;
    int64_t axis = mt_attr_int(n, "axis", -1);
    float eps = mt_attr_float(n, "epsilon", 1e-5f);
    int rank = n->in[0] >= 0 ? g->values[n->in[0]].rank : -1;
    int64_t axes[MT_MAX_RANK];
    int na = 0;
    if (axis < 0) {
        for (int64_t a = axis; a < 0 && na < MT_MAX_RANK; a++) axes[na++] = a;
    } else {
        if (rank < 0) {
            w->err = mt_fail(MTMI_ERR_UNSUPPORTED, "node '%s' (LayerNormalization): opset %lld needs it decomposed, but its input rank is unknown", base, (long long)w->opset);
            return -1;
        }
        for (int64_t a = axis; a < rank; a++) axes[na++] = a;
    }
    const char *mean = fresh(w, y, "ln_mean"), *d = fresh(w, y, "ln_sub"), *sq = fresh(w, y, "ln_sq"),
               *var = fresh(w, y, "ln_var"), *ve = fresh(w, y, "ln_veps"), *sd = fresh(w, y, "ln_std"),
               *nrm = fresh(w, y, "ln_norm");
    const char *ce = const_float(w, fresh(w, y, "ln_eps"), eps);
    if (!ce) return -1;
    int has_b = n->nin >= 3 && n->in[2] >= 0;
    const char *scaled = has_b ? fresh(w, y, "ln_scaled") : y;
    char nm[1024];
    snprintf(nm, sizeof nm, "%s/ln", base);
    Onnx__NodeProto *r1 = add_node(w, "ReduceMean", "", nm, &x, 1, &mean, 1);
    if (node_ints(w, r1, "axes", axes, na) || emit1(w, "Sub", nm, x, mean, d) || emit1(w, "Mul", nm, d, d, sq))
        return -1;
    Onnx__NodeProto *r2 = add_node(w, "ReduceMean", "", nm, &sq, 1, &var, 1);
    if (node_ints(w, r2, "axes", axes, na) || emit1(w, "Add", nm, var, ce, ve) || emit1(w, "Sqrt", nm, ve, NULL, sd) ||
        emit1(w, "Div", nm, d, sd, nrm) || emit1(w, "Mul", nm, nrm, vname(g, n, 1, 0), scaled))
        return -1;
    if (has_b && emit1(w, "Add", nm, scaled, vname(g, n, 2, 0), y)) return -1;
    return 0;
}

static int copy_node(writer *w, const mt_node *n) {
    const char *in[64], *out[64];
    const char **pin = n->nin <= 64 ? in : w_alloc(w, sizeof(char *) * n->nin);
    const char **pout = n->nout <= 64 ? out : w_alloc(w, sizeof(char *) * n->nout);
    if (!pin || !pout) return -1;
    for (int i = 0; i < n->nin; i++) pin[i] = vname(w->g, n, i, 0);
    for (int i = 0; i < n->nout; i++) pout[i] = vname(w->g, n, i, 1);
    /* Trailing absent outputs are dropped; absent inputs stay as "". */
    int nout = n->nout;
    while (nout > 1 && !pout[nout - 1][0]) nout--;
    Onnx__NodeProto *p = add_node(w, n->op, n->domain, n->name, pin, n->nin, pout, nout);
    if (!p) return -1;
    for (int i = 0; i < n->nattr; i++)
        if (node_add_attr(w, p, &n->attrs[i])) return -1;
    const char *dom = n->domain ? n->domain : "";
    if (!strcmp(dom, "mtmi")) w->uses_mtmi = 1;
    else if (dom[0]) {
        int k;
        for (k = 0; k < w->ndomains; k++)
            if (!strcmp(w->domains[k], dom)) break;
        if (k == w->ndomains && k < 16) w->domains[w->ndomains++] = dom;
    }
    return 0;
}

static int is_default_domain(const char *d) { return !d || !d[0] || !strcmp(d, "ai.onnx"); }

/* ------------------------------------------------------------ value info */
static Onnx__ValueInfoProto *value_info(writer *w, const mt_value *v) {
    Onnx__ValueInfoProto *vi = w_alloc(w, sizeof *vi);
    Onnx__TypeProto *tp = w_alloc(w, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = w_alloc(w, sizeof *tt);
    if (!vi || !tp || !tt) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    vi->name = w_strdup(w, v->name);
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = v->dtype ? v->dtype : MTMI_FLOAT; /* vision features are float */
    if (v->rank >= 0) {
        Onnx__TensorShapeProto *sp = w_alloc(w, sizeof *sp);
        if (!sp) return NULL;
        onnx__tensor_shape_proto__init(sp);
        sp->n_dim = v->rank;
        sp->dim = w_alloc(w, sizeof(*sp->dim) * (v->rank + 1));
        for (int i = 0; sp->dim && i < v->rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = w_alloc(w, sizeof *d);
            if (!d) return NULL;
            onnx__tensor_shape_proto__dimension__init(d);
            if (v->dims[i] >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = v->dims[i];
            } else if (v->dim_param[i]) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = w_strdup(w, v->dim_param[i]);
            } /* else: an unnamed unknown dimension */
            sp->dim[i] = d;
        }
        tt->shape = sp;
    }
    return w->oom ? NULL : vi;
}

/* ------------------------------------------------------------- output */
typedef struct file_buffer {
    ProtobufCBuffer base;
    FILE *f;
    int err;
} file_buffer;

static void fb_append(ProtobufCBuffer *b, size_t len, const uint8_t *data) {
    file_buffer *fb = (file_buffer *)b;
    if (!fb->err && len && fwrite(data, 1, len, fb->f) != len) fb->err = errno ? errno : EIO;
}

/* Ops whose meaning changed in a way that matters between opsets below 13
 * and 17; with any of them the opset is not raised for LayerNormalization. */
static int blocks_raise(const char *op) {
    static const char *ops[] = {"Split", "ReduceSum", "Squeeze", "Unsqueeze", "Pad", "Resize", "Upsample",
                                "Clip", "Slice", "TopK", "Softmax", "LogSoftmax", "Hardmax", "Flatten"};
    for (size_t i = 0; i < MT_ARRAY_LEN(ops); i++)
        if (!strcmp(op, ops[i])) return 1;
    return 0;
}

static int64_t ir_for_opset(int64_t opset) {
    if (opset >= 21) return 10;
    if (opset >= 19) return 9;
    if (opset >= 15) return 8;
    if (opset >= 13) return 7;
    return 6;
}

mtmi_status mt_onnx_save(const mt_graph *g, const char *path, const mt_onnx_save_opts *opt) {
    if (!g || !path) return mt_fail(MTMI_ERR_ARG, "mt_onnx_save: NULL argument");
    writer w = {0};
    w.g = g;
    w.threshold = opt ? opt->external_threshold : 0;
    w.keep_fused = opt ? opt->keep_fused : 0;
    w.opset = g->opset > 0 ? g->opset : 17;
    /* Never over the files the graph was read from. */
    mtmi_status cs = mt_check_not_input(path, (const char *const *)g->sources, g->nsources);
    if (cs) return cs;
    char data_path[4096];
    if ((size_t)snprintf(data_path, sizeof data_path, "%s.data", path) >= sizeof data_path)
        return mt_fail(MTMI_ERR_ARG, "%.60s...: path too long", path);
    w.data_path = data_path;
    const char *slash = strrchr(data_path, '/');
    w.data_loc = slash ? slash + 1 : data_path;

    /* Which constants are used, and their total size. */
    unsigned char *used = calloc(g->nvalues + 1, 1);
    if (!used) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    size_t total = 0;
    int has_ln = 0, blocked = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) used[n->in[k]] = 1;
        if (is_default_domain(n->domain)) {
            if (!strcmp(n->op, "LayerNormalization")) has_ln = 1;
            else if (blocks_raise(n->op)) blocked = 1;
        }
    }
    for (int v = 0; v < g->nvalues; v++)
        if (used[v] && g->values[v].data && !g->values[v].is_input) total += mt_value_bytes(&g->values[v]);
    if (total > MT_PROTO_LIMIT && (w.threshold == 0 || w.threshold > 4096)) w.threshold = 1024;
    if (has_ln && w.opset < 17) {
        /* LayerNormalization exists from opset 17: raise the opset when the
         * other ops mean the same there (13 and up), else decompose. */
        if (w.opset >= 13 || !blocked) w.opset = 17;
        else w.decompose_ln = 1;
    }

    mtmi_status s = MTMI_OK;
    for (int v = 0; v < g->nvalues && !s; v++) {
        const mt_value *val = &g->values[v];
        if (!used[v] || !val->data || val->is_input) continue;
        if (push_init(&w, tensor_proto(&w, val, val->name, 1))) s = w.err ? w.err : MTMI_ERR_NOMEM;
    }
    for (int i = 0; i < g->nnodes && !s; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        int r = 1;
        if (!w.keep_fused && !strcmp(n->domain ? n->domain : "", "mtmi")) r = lower_fused(&w, n);
        else if (w.decompose_ln && is_default_domain(n->domain) && !strcmp(n->op, "LayerNormalization"))
            r = lower_layernorm(&w, n);
        if (r > 0) r = copy_node(&w, n);
        if (r < 0) s = w.err ? w.err : MTMI_ERR_NOMEM;
    }
    free(used);

    Onnx__GraphProto gp;
    Onnx__ModelProto mp;
    Onnx__OperatorSetIdProto ops[18], *opp[18];
    Onnx__ValueInfoProto **gin = NULL, **gout = NULL;
    if (!s) {
        onnx__graph_proto__init(&gp);
        onnx__model_proto__init(&mp);
        gp.name = w_strdup(&w, g->name && g->name[0] ? g->name : "mtmi");
        gp.n_node = w.nnodes;
        gp.node = w.nodes;
        gp.n_initializer = w.ninits;
        gp.initializer = w.inits;
        gin = w_alloc(&w, sizeof(*gin) * (g->ninputs + 1));
        gout = w_alloc(&w, sizeof(*gout) * (g->noutputs + 1));
        for (int i = 0; gin && i < g->ninputs; i++) gin[i] = value_info(&w, &g->values[g->inputs[i]]);
        for (int i = 0; gout && i < g->noutputs; i++) gout[i] = value_info(&w, &g->values[g->outputs[i]]);
        gp.n_input = g->ninputs;
        gp.input = gin;
        gp.n_output = g->noutputs;
        gp.output = gout;
        int nops = 0;
        onnx__operator_set_id_proto__init(&ops[nops]);
        ops[nops].domain = "";
        ops[nops].has_version = 1;
        ops[nops++].version = w.opset;
        if (w.uses_mtmi) {
            onnx__operator_set_id_proto__init(&ops[nops]);
            ops[nops].domain = "mtmi";
            ops[nops].has_version = 1;
            ops[nops++].version = 1;
        }
        for (int k = 0; k < w.ndomains; k++) {
            onnx__operator_set_id_proto__init(&ops[nops]);
            ops[nops].domain = (char *)w.domains[k];
            ops[nops].has_version = 1;
            ops[nops++].version = 1;
        }
        for (int k = 0; k < nops; k++) opp[k] = &ops[k];
        mp.has_ir_version = 1;
        mp.ir_version = MT_MAX(g->ir_version, ir_for_opset(w.opset));
        mp.n_opset_import = nops;
        mp.opset_import = opp;
        mp.producer_name = "mtmi";
        mp.producer_version = MTMI_VERSION;
        mp.graph = &gp;
        if (w.oom) s = mt_fail(MTMI_ERR_NOMEM, "%s: out of memory building the model", path);
    } else if (s == MTMI_ERR_NOMEM && w.oom) {
        mt_fail(s, "%s: out of memory building the model", path);
    }

    char tmp[4096];
    FILE *f = NULL;
    if (!s) {
        f = mt_atomic_open(path, tmp, sizeof tmp);
        if (!f) s = MTMI_ERR_IO;
    }
    if (!s) {
        file_buffer fb = {{fb_append}, f, 0};
        errno = 0;
        onnx__model_proto__pack_to_buffer(&mp, &fb.base);
        int ok = !fb.err;
        if (!ok) mt_fail(MTMI_ERR_IO, "%s: write failed: %s", path, strerror(fb.err));
        if (w.data) {
            /* The weights first, so the model never names missing data. */
            s = mt_atomic_commit(w.data, w.data_tmp, w.data_path, ok);
            w.data = NULL;
            if (s) ok = 0;
        }
        mtmi_status s2 = mt_atomic_commit(f, tmp, path, ok);
        if (!s) s = s2;
    }
    if (w.data) mt_atomic_commit(w.data, w.data_tmp, w.data_path, 0);
    w_free(&w);
    return s;
}
