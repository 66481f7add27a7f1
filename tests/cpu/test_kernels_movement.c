/* The broadcasting, Transpose, Slice, Softmax, reduction, ArgMax, Concat,
 * Split, Expand, Gather and Pad CPU kernels against naive loops, on random shapes (size-1 and lower-rank
 * broadcasts, every permutation class, negative steps), with 1 and 2 threads
 * and sizes above the kernels' parallel thresholds.  Each case is a one-node
 * graph run through a CPU plan, as the engine runs it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "cpu/vmath.h"
#include "graph/ops.h"
#include "oracle.h"

static int failures, checks;
static mt_rng g_rng;

static int64_t rnd(int64_t n) { return (int64_t)(mt_rng_next(&g_rng) % (uint64_t)n); }

typedef struct tensor {
    int dtype, rank;
    int64_t dims[MT_MAX_RANK];
    void *data;
} tensor;

static int64_t numel(const tensor *t) { return mt_numel(t->rank, t->dims); }

static tensor make(int dtype, int rank, const int64_t *dims) {
    tensor t = {dtype, rank, {0}, NULL};
    memcpy(t.dims, dims, sizeof(int64_t) * rank);
    size_t b = (size_t)numel(&t) * mt_dtype_size(dtype);
    t.data = malloc(b ? b : 1);
    for (int64_t i = 0; i < numel(&t); i++) {
        if (dtype == MTMI_FLOAT) ((float *)t.data)[i] = mt_rng_normal(&g_rng);
        else if (dtype == MTMI_INT64) ((int64_t *)t.data)[i] = rnd(1000) - 500;
        else if (dtype == MTMI_BOOL) ((uint8_t *)t.data)[i] = (uint8_t)rnd(2);
        else ((uint8_t *)t.data)[i] = (uint8_t)rnd(256);
    }
    return t;
}

/* Builds op(inputs) with graph inputs for runtime tensors and constants for
 * the others (consts[i] != 0), infers, plans with `threads`, runs. */
static int run_node(const char *op, int opset, tensor *in, const int *consts, int nin, tensor *out, int nout, int threads,
                    void (*attrs)(mt_node *, void *), void *actx) {
    mt_graph *g = mt_graph_new();
    g->opset = opset;
    int iv[8], ov[8], nrt = 0;
    char name[32];
    g->inputs = malloc(sizeof(int) * 8);
    for (int i = 0; i < nin; i++) {
        snprintf(name, sizeof name, "in%d", i);
        iv[i] = mt_graph_add_value(g, name);
        mt_value *v = &g->values[iv[i]];
        mt_value_set_shape(v, in[i].dtype, in[i].rank, in[i].dims);
        if (consts && consts[i]) {
            size_t b = (size_t)numel(&in[i]) * mt_dtype_size(in[i].dtype);
            v->data = malloc(b ? b : 1);
            memcpy(v->data, in[i].data, b);
        } else {
            v->is_input = 1;
            g->inputs[nrt++] = iv[i];
        }
    }
    g->ninputs = nrt;
    g->outputs = malloc(sizeof(int) * nout);
    for (int k = 0; k < nout; k++) {
        snprintf(name, sizeof name, "out%d", k);
        ov[k] = mt_graph_add_value(g, name);
        g->values[ov[k]].is_output = 1;
        g->outputs[k] = ov[k];
    }
    g->noutputs = nout;
    int ni = mt_graph_add_node(g, op, "n", iv, nin, ov, nout);
    if (attrs) attrs(&g->nodes[ni], actx);
    mt_cpu_plan *p = NULL;
    int rc = 1;
    if (mt_graph_infer(g, NULL, 0, mt_cpu_eval, NULL) || mt_cpu_plan_create(g, threads, &p)) {
        printf("%s: %s\n", op, mtmi_last_error());
        goto done;
    }
    mt_tview tin[8], tout[8];
    for (int i = 0, k = 0; i < nin; i++) {
        if (consts && consts[i]) continue;
        tin[k].data = in[i].data;
        tin[k].dtype = in[i].dtype;
        tin[k].rank = in[i].rank;
        memcpy(tin[k].dims, in[i].dims, sizeof tin[k].dims);
        k++;
    }
    for (int k = 0; k < nout; k++) {
        mt_value *v = &g->values[ov[k]];
        out[k].dtype = v->dtype;
        out[k].rank = v->rank;
        memcpy(out[k].dims, v->dims, sizeof out[k].dims);
        size_t b = mt_value_bytes(v);
        out[k].data = malloc(b ? b : 1);
        tout[k].data = out[k].data;
    }
    if (mt_cpu_plan_run(p, tin, nrt, tout, nout)) {
        printf("%s: run: %s\n", op, mtmi_last_error());
        goto done;
    }
    rc = 0;
done:
    mt_cpu_plan_free(p);
    mt_graph_free(g);
    return rc;
}

static void report(const char *what, int ok) {
    checks++;
    if (!ok) {
        failures++;
        printf("FAIL %s\n", what);
    }
}

static void strides_of(int rank, const int64_t *dims, int64_t *st) {
    int64_t acc = 1;
    for (int d = rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc *= dims[d];
    }
}

/* Offset in t (broadcast into rank r) of output multi-index idx. */
static int64_t bcast_offset(const tensor *t, int r, const int64_t *idx) {
    int64_t st[MT_MAX_RANK], off = 0;
    strides_of(t->rank, t->dims, st);
    for (int d = 0; d < t->rank; d++) {
        int64_t i = idx[r - t->rank + d];
        off += (t->dims[d] == 1 ? 0 : i) * st[d];
    }
    return off;
}

static void unravel(int64_t flat, int r, const int64_t *dims, int64_t *idx) {
    for (int d = r - 1; d >= 0; d--) {
        idx[d] = flat % dims[d];
        flat /= dims[d];
    }
}

/* ------------------------------------------------------------ broadcast */
static void random_broadcast_pair(tensor *a, tensor *b, int big) {
    int r = 1 + (int)rnd(5);
    int64_t full[MT_MAX_RANK];
    for (int d = 0; d < r; d++) full[d] = 1 + rnd(big ? 24 : 6);
    if (big) full[r - 1] = 64 + rnd(200);
    int64_t da[MT_MAX_RANK], db[MT_MAX_RANK];
    int ra = r - (int)rnd(2), rb = r - (int)rnd(r);
    for (int d = 0; d < ra; d++) da[d] = rnd(3) ? full[r - ra + d] : 1;
    for (int d = 0; d < rb; d++) db[d] = rnd(3) ? full[r - rb + d] : 1;
    *a = make(MTMI_FLOAT, ra, da);
    *b = make(MTMI_FLOAT, rb, db);
}

static void test_binary(const char *op, int threads, int big) {
    tensor in[2], out;
    random_broadcast_pair(&in[0], &in[1], big);
    if (run_node(op, 17, in, NULL, 2, &out, 1, threads, NULL, NULL)) {
        report(op, 0);
        return;
    }
    int ok = 1;
    int64_t idx[MT_MAX_RANK];
    for (int64_t i = 0; i < numel(&out) && ok; i++) {
        unravel(i, out.rank, out.dims, idx);
        float a = ((float *)in[0].data)[bcast_offset(&in[0], out.rank, idx)];
        float b = ((float *)in[1].data)[bcast_offset(&in[1], out.rank, idx)];
        float want = !strcmp(op, "Add") ? a + b : !strcmp(op, "Sub") ? a - b : !strcmp(op, "Mul") ? a * b : a / b;
        float got = ((float *)out.data)[i];
        if (!(got == want || fabsf(got - want) <= 1e-6f * fabsf(want))) ok = 0;
    }
    char what[128], s1[64], s2[64];
    snprintf(what, sizeof what, "%s %s %s t=%d", op, mt_shape_str(in[0].rank, in[0].dims, s1, sizeof s1),
             mt_shape_str(in[1].rank, in[1].dims, s2, sizeof s2), threads);
    report(what, ok);
    free(in[0].data), free(in[1].data), free(out.data);
}

static void test_where(int threads) {
    tensor in[3], out;
    random_broadcast_pair(&in[1], &in[2], 1);
    int64_t cd[2] = {1, in[2].rank ? in[2].dims[in[2].rank - 1] : 1};
    in[0] = make(MTMI_BOOL, 2, cd);
    if (run_node("Where", 17, in, NULL, 3, &out, 1, threads, NULL, NULL)) {
        report("Where", 0);
        return;
    }
    int ok = 1;
    int64_t idx[MT_MAX_RANK];
    for (int64_t i = 0; i < numel(&out) && ok; i++) {
        unravel(i, out.rank, out.dims, idx);
        uint8_t c = ((uint8_t *)in[0].data)[bcast_offset(&in[0], out.rank, idx)];
        float x = ((float *)in[1].data)[bcast_offset(&in[1], out.rank, idx)];
        float y = ((float *)in[2].data)[bcast_offset(&in[2], out.rank, idx)];
        if (((float *)out.data)[i] != (c ? x : y)) ok = 0;
    }
    report("Where broadcast", ok);
    for (int k = 0; k < 3; k++) free(in[k].data);
    free(out.data);
}

/* ------------------------------------------------------------ transpose */
typedef struct perm_ctx {
    int64_t perm[MT_MAX_RANK];
    int n;
} perm_ctx;

static void set_perm(mt_node *n, void *c) {
    perm_ctx *p = c;
    mt_node_set_ints(n, "perm", p->perm, p->n);
}

static void test_transpose(int dtype, int rank, const int64_t *dims, const int64_t *perm, int threads) {
    tensor in = make(dtype, rank, dims), out;
    perm_ctx pc = {{0}, rank};
    memcpy(pc.perm, perm, sizeof(int64_t) * rank);
    char what[160], s1[64];
    snprintf(what, sizeof what, "Transpose %s %s perm", mt_dtype_name(dtype), mt_shape_str(rank, dims, s1, sizeof s1));
    for (int d = 0; d < rank; d++) snprintf(what + strlen(what), sizeof what - strlen(what), " %lld", (long long)perm[d]);
    if (run_node("Transpose", 17, &in, NULL, 1, &out, 1, threads, set_perm, &pc)) {
        report(what, 0);
        return;
    }
    int64_t ist[MT_MAX_RANK], idx[MT_MAX_RANK];
    strides_of(rank, dims, ist);
    size_t esz = mt_dtype_size(dtype);
    int ok = 1;
    for (int64_t i = 0; i < numel(&out) && ok; i++) {
        unravel(i, rank, out.dims, idx);
        int64_t src = 0;
        for (int d = 0; d < rank; d++) src += idx[d] * ist[perm[d]];
        if (memcmp((char *)out.data + i * esz, (char *)in.data + src * esz, esz)) ok = 0;
    }
    report(what, ok);
    free(in.data), free(out.data);
}

static void test_random_transposes(int threads) {
    for (int k = 0; k < 40; k++) {
        int big = k % 4 == 0; /* long axes, few of them, to keep it small */
        int rank = 1 + (int)rnd(big ? 3 : 6);
        int64_t dims[MT_MAX_RANK], perm[MT_MAX_RANK];
        for (int d = 0; d < rank; d++) {
            dims[d] = 1 + rnd(big ? 60 : 7);
            perm[d] = d;
        }
        for (int d = rank - 1; d > 0; d--) { /* Fisher-Yates */
            int j = (int)rnd(d + 1);
            int64_t t = perm[d];
            perm[d] = perm[j];
            perm[j] = t;
        }
        int dtypes[3] = {MTMI_FLOAT, MTMI_INT64, MTMI_UINT8};
        test_transpose(dtypes[k % 3], rank, dims, perm, threads);
    }
    /* The activation layouts of the reference network, above the thresholds. */
    int64_t nchw[4] = {2, 32, 48, 40}, p0231[4] = {0, 2, 3, 1}, p0312[4] = {0, 3, 1, 2}, p0213[4] = {0, 2, 1, 3};
    test_transpose(MTMI_FLOAT, 4, nchw, p0231, threads);
    test_transpose(MTMI_FLOAT, 4, nchw, p0312, threads);
    test_transpose(MTMI_FLOAT, 4, nchw, p0213, threads);
}

/* ---------------------------------------------------------------- slice */
static void test_slice(int threads) {
    for (int k = 0; k < 30; k++) {
        int rank = 1 + (int)rnd(4);
        int64_t dims[MT_MAX_RANK];
        for (int d = 0; d < rank; d++) dims[d] = 1 + rnd(k % 5 == 0 ? 60 : 9);
        tensor in[5];
        in[0] = make(MTMI_FLOAT, rank, dims);
        int64_t n1[1] = {rank};
        for (int i = 1; i < 5; i++) in[i] = make(MTMI_INT64, 1, n1);
        int64_t *st = in[1].data, *en = in[2].data, *ax = in[3].data, *sp = in[4].data;
        for (int d = 0; d < rank; d++) {
            ax[d] = rank - 1 - d - (rnd(2) ? rank : 0); /* some negative axes */
            int64_t dim = dims[rank - 1 - d];
            st[d] = rnd(2 * dim + 2) - dim - 1;
            en[d] = rnd(4) == 0 ? (rnd(2) ? INT64_MAX : INT64_MIN) : rnd(2 * dim + 2) - dim - 1;
            sp[d] = (rnd(2) ? 1 : -1) * (1 + rnd(3));
        }
        int consts[5] = {0, 1, 1, 1, 1};
        tensor out;
        if (run_node("Slice", 17, in, consts, 5, &out, 1, threads, NULL, NULL)) {
            report("Slice", 0);
            continue;
        }
        /* naive: per axis, the list of source indices */
        int64_t ist[MT_MAX_RANK], idx[MT_MAX_RANK], s0[MT_MAX_RANK], step[MT_MAX_RANK];
        strides_of(rank, dims, ist);
        int ok = 1;
        for (int d = 0; d < rank; d++) {
            s0[d] = 0;
            step[d] = 1;
        }
        for (int i = 0; i < rank; i++) {
            int a = (int)(ax[i] < 0 ? ax[i] + rank : ax[i]);
            int64_t dim = dims[a], s = st[i], e = en[i], p = sp[i], cnt = 0;
            if (s < 0) s += dim;
            if (e < 0 && e != INT64_MIN) e += dim;
            if (p > 0) {
                s = s < 0 ? 0 : s > dim ? dim : s;
                e = e < 0 ? 0 : e > dim ? dim : e;
                for (int64_t j = s; j < e; j += p) cnt++;
            } else {
                s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
                e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
                for (int64_t j = s; j > e; j += p) cnt++;
            }
            if (out.dims[a] != cnt) ok = 0;
            s0[a] = s;
            step[a] = p;
        }
        for (int64_t i = 0; i < numel(&out) && ok; i++) {
            unravel(i, rank, out.dims, idx);
            int64_t src = 0;
            for (int d = 0; d < rank; d++) src += (s0[d] + idx[d] * step[d]) * ist[d];
            if (((float *)out.data)[i] != ((float *)in[0].data)[src]) ok = 0;
        }
        report("Slice random (negative steps, clamped bounds)", ok);
        for (int i = 0; i < 5; i++) free(in[i].data);
        free(out.data);
    }
}

/* -------------------------------------------------- softmax, reductions */
typedef struct axis_ctx {
    int64_t axis, keep;
    int64_t axes[MT_MAX_RANK];
    int naxes;
} axis_ctx;

static void set_axis(mt_node *n, void *c) {
    axis_ctx *a = c;
    mt_node_set_int(n, "axis", a->axis);
    if (a->naxes) mt_node_set_ints(n, "axes", a->axes, a->naxes);
    mt_node_set_int(n, "keepdims", a->keep);
}

static void test_softmax(int opset, int threads) {
    int64_t dims[4] = {2, 3 + rnd(5), 40 + rnd(40), 1 + rnd(30)};
    tensor in = make(MTMI_FLOAT, 4, dims), out;
    for (int64_t i = 0; i < numel(&in); i++) ((float *)in.data)[i] *= 4;
    axis_ctx ac = {.axis = (int64_t)rnd(4) - (rnd(2) ? 4 : 0), .keep = 1};
    if (run_node("Softmax", opset, &in, NULL, 1, &out, 1, threads, set_axis, &ac)) {
        report("Softmax", 0);
        return;
    }
    int64_t axis = ac.axis < 0 ? ac.axis + 4 : ac.axis;
    /* opset < 13: rows are everything from axis on; >= 13: the one axis */
    int64_t outer = mt_numel((int)axis, dims), dim, inner;
    if (opset < 13) dim = mt_numel(4 - (int)axis, dims + axis), inner = 1;
    else dim = dims[axis], inner = mt_numel(3 - (int)axis, dims + axis + 1);
    int ok = 1;
    const float *x = in.data, *y = out.data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t k = 0; k < dim; k++) mx = fmax(mx, x[(o * dim + k) * inner + j]);
            for (int64_t k = 0; k < dim; k++) sum += exp(x[(o * dim + k) * inner + j] - mx);
            for (int64_t k = 0; k < dim; k++) {
                double want = exp(x[(o * dim + k) * inner + j] - mx) / sum;
                if (fabs(y[(o * dim + k) * inner + j] - want) > 1e-5 + 1e-4 * want) ok = 0;
            }
        }
    char what[96];
    snprintf(what, sizeof what, "Softmax opset %d axis %lld t=%d", opset, (long long)ac.axis, threads);
    report(what, ok);
    free(in.data), free(out.data);
}

static void test_reduce(const char *op, int threads) {
    int rank = 1 + (int)rnd(5);
    int64_t dims[MT_MAX_RANK];
    for (int d = 0; d < rank; d++) dims[d] = 1 + rnd(rank <= 2 ? 300 : 12);
    tensor in = make(MTMI_FLOAT, rank, dims), out;
    axis_ctx ac = {.keep = rnd(2)};
    int mask[MT_MAX_RANK] = {0};
    for (int d = 0; d < rank; d++)
        if (rnd(2)) {
            mask[d] = 1;
            ac.axes[ac.naxes++] = rnd(2) ? d : d - rank;
        }
    int reduce_all = ac.naxes == 0;
    if (run_node(op, 17, &in, NULL, 1, &out, 1, threads, set_axis, &ac)) {
        report(op, 0);
        return;
    }
    int ok = 1, is_mean = !strcmp(op, "ReduceMean"), is_max = !strcmp(op, "ReduceMax");
    int64_t idx[MT_MAX_RANK], ist[MT_MAX_RANK];
    strides_of(rank, dims, ist);
    double *acc = calloc((size_t)numel(&out), sizeof(double));
    int64_t *cnt = calloc((size_t)numel(&out), sizeof(int64_t));
    for (int64_t o = 0; o < numel(&out); o++) acc[o] = is_max ? -INFINITY : 0;
    for (int64_t i = 0; i < numel(&in); i++) {
        unravel(i, rank, dims, idx);
        int64_t o = 0;
        for (int d = 0; d < rank; d++) {
            if (mask[d] || reduce_all) continue;
            o = o * dims[d] + idx[d];
        }
        double v = ((float *)in.data)[i];
        acc[o] = is_max ? fmax(acc[o], v) : acc[o] + v;
        cnt[o]++;
    }
    for (int64_t o = 0; o < numel(&out); o++) {
        double want = is_mean ? acc[o] / cnt[o] : acc[o];
        if (fabs(((float *)out.data)[o] - want) > 1e-4 * (1 + fabs(want))) ok = 0;
    }
    char what[128], s1[64];
    snprintf(what, sizeof what, "%s %s naxes %d keepdims %lld", op, mt_shape_str(rank, dims, s1, sizeof s1), ac.naxes, (long long)ac.keep);
    report(what, ok);
    free(acc), free(cnt), free(in.data), free(out.data);
}

static void test_argmax(int threads) {
    int64_t dims[4] = {1 + rnd(2), 19, 30 + rnd(300), 1 + rnd(300)};
    tensor in = make(MTMI_FLOAT, 4, dims), out;
    axis_ctx ac = {.axis = 1, .keep = 1};
    if (run_node("ArgMax", 17, &in, NULL, 1, &out, 1, threads, set_axis, &ac)) {
        report("ArgMax", 0);
        return;
    }
    int64_t hw = dims[2] * dims[3];
    int ok = 1;
    for (int64_t b = 0; b < dims[0]; b++)
        for (int64_t j = 0; j < hw; j++) {
            const float *x = (const float *)in.data + b * 19 * hw + j;
            int64_t best = 0;
            for (int64_t k = 1; k < 19; k++)
                if (x[k * hw] > x[best * hw]) best = k;
            if (((int64_t *)out.data)[b * hw + j] != best) ok = 0;
        }
    report("ArgMax class map", ok);
    free(in.data), free(out.data);
}

/* ------------------------------------------ concat, split, expand, gather */
typedef struct int_ctx {
    const char *name;
    int64_t v;
    const char *sname, *sval;
} int_ctx;

static void set_int_attr(mt_node *n, void *c) {
    int_ctx *a = c;
    mt_node_set_int(n, a->name, a->v);
    if (a->sname) mt_node_set_string(n, a->sname, a->sval);
}

static void test_concat_split(int threads) {
    int rank = 1 + (int)rnd(4), axis = (int)rnd(rank);
    int64_t dims[MT_MAX_RANK];
    for (int d = 0; d < rank; d++) dims[d] = 1 + rnd(rank <= 2 ? 200 : 24);
    tensor in[3], cat;
    int64_t total = 0;
    for (int k = 0; k < 3; k++) {
        int64_t dk[MT_MAX_RANK];
        memcpy(dk, dims, sizeof dk);
        dk[axis] = 1 + rnd(40);
        total += dk[axis];
        in[k] = make(MTMI_FLOAT, rank, dk);
    }
    int_ctx ac = {"axis", axis - (rnd(2) ? rank : 0), NULL, NULL};
    if (run_node("Concat", 17, in, NULL, 3, &cat, 1, threads, set_int_attr, &ac)) {
        report("Concat", 0);
        return;
    }
    int ok = cat.dims[axis] == total;
    int64_t outer = mt_numel(axis, dims), inner = mt_numel(rank - axis - 1, dims + axis + 1), at = 0;
    for (int k = 0; k < 3 && ok; k++) {
        int64_t blk = in[k].dims[axis] * inner;
        for (int64_t o = 0; o < outer && ok; o++)
            if (memcmp((float *)cat.data + o * total * inner + at, (float *)in[k].data + o * blk, sizeof(float) * blk)) ok = 0;
        at += blk;
    }
    report("Concat random axis", ok);
    /* Split the concatenation back with the same sizes */
    tensor sin[2], parts[3];
    sin[0] = cat;
    int64_t n3[1] = {3};
    sin[1] = make(MTMI_INT64, 1, n3);
    for (int k = 0; k < 3; k++) ((int64_t *)sin[1].data)[k] = in[k].dims[axis];
    int consts[2] = {0, 1};
    if (run_node("Split", 17, sin, consts, 2, parts, 3, threads, set_int_attr, &ac)) {
        report("Split", 0);
    } else {
        ok = 1;
        for (int k = 0; k < 3; k++) {
            ok &= !memcmp(parts[k].data, in[k].data, sizeof(float) * numel(&in[k]));
            free(parts[k].data);
        }
        report("Split inverts Concat", ok);
    }
    for (int k = 0; k < 3; k++) free(in[k].data);
    free(cat.data), free(sin[1].data);
}

static void test_expand(int threads) {
    tensor a, b;
    random_broadcast_pair(&a, &b, 1);
    /* the target shape: a's broadcast with b */
    int r = a.rank > b.rank ? a.rank : b.rank;
    int64_t n1[1] = {r};
    tensor in[2] = {a, make(MTMI_INT64, 1, n1)};
    for (int d = 0; d < r; d++) {
        int64_t da = d - (r - a.rank) >= 0 ? a.dims[d - (r - a.rank)] : 1, db = d - (r - b.rank) >= 0 ? b.dims[d - (r - b.rank)] : 1;
        ((int64_t *)in[1].data)[d] = da > db ? da : db;
    }
    int consts[2] = {0, 1};
    tensor out;
    if (run_node("Expand", 17, in, consts, 2, &out, 1, threads, NULL, NULL)) {
        report("Expand", 0);
        return;
    }
    int ok = 1;
    int64_t idx[MT_MAX_RANK];
    for (int64_t i = 0; i < numel(&out) && ok; i++) {
        unravel(i, out.rank, out.dims, idx);
        if (((float *)out.data)[i] != ((float *)a.data)[bcast_offset(&a, out.rank, idx)]) ok = 0;
    }
    report("Expand broadcast", ok);
    free(a.data), free(b.data), free(in[1].data), free(out.data);
}

static void test_gather(int threads) {
    int rank = 1 + (int)rnd(4), axis = (int)rnd(rank);
    int64_t dims[MT_MAX_RANK];
    for (int d = 0; d < rank; d++) dims[d] = 1 + rnd(rank <= 2 ? 300 : 20);
    int64_t id[2] = {1 + rnd(4), 1 + rnd(30)};
    tensor in[2] = {make(MTMI_FLOAT, rank, dims), make(MTMI_INT64, 2, id)};
    for (int64_t i = 0; i < numel(&in[1]); i++) ((int64_t *)in[1].data)[i] = rnd(2 * dims[axis]) - dims[axis];
    int_ctx ac = {"axis", axis, NULL, NULL};
    tensor out;
    if (run_node("Gather", 17, in, NULL, 2, &out, 1, threads, set_int_attr, &ac)) {
        report("Gather", 0);
        return;
    }
    int64_t outer = mt_numel(axis, dims), inner = mt_numel(rank - axis - 1, dims + axis + 1), ni = numel(&in[1]);
    int ok = out.rank == rank + 1;
    for (int64_t o = 0; o < outer && ok; o++)
        for (int64_t j = 0; j < ni && ok; j++) {
            int64_t v = ((int64_t *)in[1].data)[j];
            if (v < 0) v += dims[axis];
            if (memcmp((float *)out.data + (o * ni + j) * inner, (float *)in[0].data + (o * dims[axis] + v) * inner, sizeof(float) * inner)) ok = 0;
        }
    report("Gather runtime negative indices", ok);
    free(in[0].data), free(in[1].data), free(out.data);
}

/* Pad against a per-element mapping written from ONNX's definition. */
static int64_t naive_pad_src(int64_t o, int64_t b, int64_t dim, const char *mode) {
    int64_t c = o - b;
    if (c >= 0 && c < dim) return c;
    if (!strcmp(mode, "constant")) return -1;
    if (!strcmp(mode, "edge")) return c < 0 ? 0 : dim - 1;
    while (c < 0 || c >= dim) c = c < 0 ? -c : 2 * (dim - 1) - c; /* reflect */
    return c;
}

static void test_pad(const char *mode, int threads) {
    int64_t dims[4] = {1 + rnd(2), 1 + rnd(5), 4 + rnd(60), 4 + rnd(60)};
    int64_t n8[1] = {8};
    tensor in[3] = {make(MTMI_FLOAT, 4, dims), make(MTMI_INT64, 1, n8), make(MTMI_FLOAT, 0, dims)};
    int64_t *p = in[1].data;
    for (int d = 0; d < 4; d++) {
        int64_t lim = strcmp(mode, "reflect") ? 5 : dims[d] - 1;
        p[d] = d < 2 ? 0 : rnd(lim + 1) - (strcmp(mode, "constant") ? 0 : 0);
        p[d + 4] = d < 2 ? 0 : rnd(lim + 1);
    }
    if (!strcmp(mode, "constant")) p[3] = -(int64_t)rnd(3); /* a negative pad crops */
    *(float *)in[2].data = 7.5f;
    int consts[3] = {0, 1, 1};
    int_ctx ac = {"unused", 0, "mode", mode};
    tensor out;
    if (run_node("Pad", 17, in, consts, 3, &out, 1, threads, set_int_attr, &ac)) {
        report("Pad", 0);
        return;
    }
    int ok = 1;
    int64_t idx[4], ist[4];
    strides_of(4, dims, ist);
    for (int64_t i = 0; i < numel(&out) && ok; i++) {
        unravel(i, 4, out.dims, idx);
        int64_t src = 0;
        int constant = 0;
        for (int d = 0; d < 4; d++) {
            int64_t c = naive_pad_src(idx[d], p[d], dims[d], mode);
            if (c < 0) constant = 1;
            else src += c * ist[d];
        }
        float want = constant ? 7.5f : ((float *)in[0].data)[src];
        if (((float *)out.data)[i] != want) ok = 0;
    }
    char what[64];
    snprintf(what, sizeof what, "Pad %s t=%d", mode, threads);
    report(what, ok);
    for (int k = 0; k < 3; k++) free(in[k].data);
    free(out.data);
}

/* The vector exp behind Softmax and Sigmoid: relative error against libm's
 * double exp over the range softmax and sigmoid use, the scalar twin equal
 * to the vector one, NaN kept. */
static void test_vexp(void) {
    double worst = 0;
    int same = 1;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * (float)i / 200000.0f;
        double want = exp((double)x), got = mt_vexpf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
#ifdef __AVX2__
        float v[8];
        _mm256_storeu_ps(v, mt_vexp8(_mm256_set1_ps(x)));
        if (fabsf(v[0] - (float)got) > 1e-7f * (float)got) same = 0;
#endif
    }
    char what[96];
    snprintf(what, sizeof what, "vector exp: worst relative error %.2e", worst);
    printf("%s\n", what);
    report(what, worst < 5e-7 && same && isnan(mt_vexpf(NAN)));
}

int main(void) {
    test_vexp();
    mt_rng_seed(&g_rng, oracle_seed(12345));
    const char *bin[4] = {"Add", "Sub", "Mul", "Div"};
    for (int threads = 1; threads <= 2; threads++) {
        for (int k = 0; k < 60; k++) test_binary(bin[k % 4], threads, k % 3 == 0);
        for (int k = 0; k < 5; k++) test_where(threads);
        test_random_transposes(threads);
        test_slice(threads);
        for (int k = 0; k < 6; k++) test_softmax(k % 2 ? 13 : 11, threads);
        for (int k = 0; k < 20; k++) test_reduce(k % 3 == 0 ? "ReduceMean" : k % 3 == 1 ? "ReduceSum" : "ReduceMax", threads);
        for (int k = 0; k < 3; k++) test_argmax(threads);
        for (int k = 0; k < 8; k++) test_concat_split(threads);
        for (int k = 0; k < 8; k++) test_expand(threads);
        for (int k = 0; k < 8; k++) test_gather(threads);
        const char *modes[3] = {"constant", "reflect", "edge"};
        for (int k = 0; k < 9; k++) test_pad(modes[k % 3], threads);
    }
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
