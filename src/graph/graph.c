/* The IR's containers: values, nodes, attributes, topological order. */
#include "graph/graph.h"

#include <stdlib.h>
#include <string.h>

mt_graph *mt_graph_new(void) {
    mt_graph *g = mt_alloc(sizeof *g);
    if (g) {
        g->opset = 17;
        g->ir_version = 8;
    }
    return g;
}

void mt_value_free_data(mt_value *v) {
    free(v->data);
    v->data = NULL;
}

static void value_free(mt_value *v) {
    free(v->name);
    for (int i = 0; i < MT_MAX_RANK; i++) free(v->dim_param[i]);
    free(v->data);
}

void mt_attr_free(mt_attr *a) {
    free(a->name);
    free(a->s);
    free(a->ints);
    free(a->floats);
    for (int i = 0; a->strings && i < a->n; i++) free(a->strings[i]);
    free(a->strings);
    if (a->t) {
        value_free(a->t);
        free(a->t);
    }
    memset(a, 0, sizeof *a);
}

static void node_free(mt_node *n) {
    free(n->name);
    free(n->op);
    free(n->domain);
    free(n->in);
    free(n->out);
    for (int i = 0; i < n->nattr; i++) mt_attr_free(&n->attrs[i]);
    free(n->attrs);
}

void mt_graph_free(mt_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->nvalues; i++) value_free(&g->values[i]);
    for (int i = 0; i < g->nnodes; i++) node_free(&g->nodes[i]);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->name);
    free(g->producer);
    free(g->path);
    for (int i = 0; i < g->nsources; i++) free(g->sources[i]);
    free(g->sources);
    free(g);
}

int mt_graph_add_source(mt_graph *g, const char *path) {
    for (int i = 0; i < g->nsources; i++)
        if (!strcmp(g->sources[i], path)) return 0;
    char **p = realloc(g->sources, sizeof(char *) * (size_t)(g->nsources + 1));
    if (!p) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
    g->sources = p;
    if (!(p[g->nsources] = mt_strdup(path))) return -1;
    g->nsources++;
    return 0;
}

static int copy_value(mt_value *d, const mt_value *s) {
    *d = *s;
    d->name = mt_strdup(s->name);
    for (int i = 0; i < MT_MAX_RANK; i++) d->dim_param[i] = s->dim_param[i] ? mt_strdup(s->dim_param[i]) : NULL;
    d->data = NULL;
    if (s->data) {
        size_t n = mt_value_bytes(s);
        d->data = malloc(n ? n : 1);
        if (!d->data) return -1;
        memcpy(d->data, s->data, n);
    }
    return d->name ? 0 : -1;
}

static int copy_attr(mt_attr *d, const mt_attr *s) {
    memset(d, 0, sizeof *d);
    d->name = mt_strdup(s->name);
    d->type = s->type;
    d->i = s->i;
    d->f = s->f;
    d->n = s->n;
    if (s->s) d->s = mt_strdup(s->s);
    if (s->ints) {
        d->ints = malloc(sizeof(int64_t) * (s->n ? s->n : 1));
        if (!d->ints) return -1;
        memcpy(d->ints, s->ints, sizeof(int64_t) * s->n);
    }
    if (s->floats) {
        d->floats = malloc(sizeof(float) * (s->n ? s->n : 1));
        if (!d->floats) return -1;
        memcpy(d->floats, s->floats, sizeof(float) * s->n);
    }
    if (s->strings) {
        d->strings = calloc(s->n ? s->n : 1, sizeof(char *));
        if (!d->strings) return -1;
        for (int i = 0; i < s->n; i++) d->strings[i] = mt_strdup(s->strings[i]);
    }
    if (s->t) {
        d->t = mt_alloc(sizeof *d->t);
        if (!d->t || copy_value(d->t, s->t)) return -1;
    }
    return 0;
}

mt_graph *mt_graph_clone(const mt_graph *s) {
    mt_graph *g = mt_graph_new();
    if (!g) return NULL;
    g->opset = s->opset;
    g->ir_version = s->ir_version;
    g->name = s->name ? mt_strdup(s->name) : NULL;
    g->producer = s->producer ? mt_strdup(s->producer) : NULL;
    g->path = s->path ? mt_strdup(s->path) : NULL;
    g->max_tensor_bytes = s->max_tensor_bytes;
    g->fold_budget = s->fold_budget;
    for (int i = 0; i < s->nsources; i++)
        if (mt_graph_add_source(g, s->sources[i])) goto fail;
    if (mt_grow((void **)&g->values, &g->cap_values, s->nvalues, sizeof(mt_value))) goto fail;
    for (int i = 0; i < s->nvalues; i++) {
        if (copy_value(&g->values[i], &s->values[i])) goto fail;
        g->nvalues++;
    }
    if (mt_grow((void **)&g->nodes, &g->cap_nodes, s->nnodes, sizeof(mt_node))) goto fail;
    for (int i = 0; i < s->nnodes; i++) {
        const mt_node *a = &s->nodes[i];
        mt_node *b = &g->nodes[i];
        g->nnodes++;
        b->name = mt_strdup(a->name);
        b->op = mt_strdup(a->op);
        b->domain = mt_strdup(a->domain);
        b->nin = a->nin;
        b->nout = a->nout;
        b->dead = a->dead;
        b->in = malloc(sizeof(int) * (a->nin ? a->nin : 1));
        b->out = malloc(sizeof(int) * (a->nout ? a->nout : 1));
        if (!b->in || !b->out) goto fail;
        memcpy(b->in, a->in, sizeof(int) * a->nin);
        memcpy(b->out, a->out, sizeof(int) * a->nout);
        if (a->nattr) {
            b->attrs = calloc(a->nattr, sizeof(mt_attr));
            if (!b->attrs) goto fail;
            for (int k = 0; k < a->nattr; k++) {
                b->nattr++;
                if (copy_attr(&b->attrs[k], &a->attrs[k])) goto fail;
            }
        }
    }
    g->inputs = malloc(sizeof(int) * (s->ninputs + 1));
    g->outputs = malloc(sizeof(int) * (s->noutputs + 1));
    if (!g->inputs || !g->outputs) goto fail;
    memcpy(g->inputs, s->inputs, sizeof(int) * s->ninputs);
    memcpy(g->outputs, s->outputs, sizeof(int) * s->noutputs);
    g->ninputs = s->ninputs;
    g->noutputs = s->noutputs;
    return g;
fail:
    mt_graph_free(g);
    mt_fail(MTMI_ERR_NOMEM, "out of memory cloning graph");
    return NULL;
}

int mt_graph_find_value(const mt_graph *g, const char *name) {
    /* Linear scan is fine for the few thousand values of a vision model;
     * loaders keep their own hash while building. */
    for (int i = g->nvalues - 1; i >= 0; i--)
        if (strcmp(g->values[i].name, name) == 0) return i;
    return -1;
}

int mt_graph_find_input(const mt_graph *g, const char *name) {
    for (int i = 0; i < g->ninputs; i++)
        if (!strcmp(g->values[g->inputs[i]].name, name)) return i;
    return -1;
}

int mt_graph_add_nhwc_value(mt_graph *g, const char *name, int dtype, int x) {
    if (mt_graph_find_value(g, name) >= 0) return -1;
    const int v = mt_graph_add_value(g, name);
    if (v < 0) return -1;
    const mt_value *xv = &g->values[x];
    const int64_t d[4] = {xv->dims[0], xv->dims[2], xv->dims[3], xv->dims[1]};
    mt_value_set_shape(&g->values[v], dtype, 4, d);
    return v;
}

int mt_graph_add_mtmi_node(mt_graph *g, const char *op, const char *name, int in, int out) {
    char nn[320];
    snprintf(nn, sizeof nn, "%.300s_%s", name, op);
    const int nd = mt_graph_add_node(g, op, nn, &in, 1, &out, 1);
    if (nd < 0) return -1;
    mt_node *n = &g->nodes[nd];
    free(n->domain);
    n->domain = mt_strdup("mtmi");
    if (!n->domain) return -1;
    g->values[out].producer = nd;
    return nd;
}

mtmi_status mt_graph_add_output(mt_graph *g, int v) {
    int *outs = realloc(g->outputs, sizeof(int) * (size_t)(g->noutputs + 1));
    if (!outs) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    g->outputs = outs;
    g->outputs[g->noutputs++] = v;
    g->values[v].is_output = 1;
    return MTMI_OK;
}

void mt_graph_drop_output(mt_graph *g, int v) {
    int w = 0;
    for (int i = 0; i < g->noutputs; i++)
        if (g->outputs[i] != v) g->outputs[w++] = g->outputs[i];
    g->noutputs = w;
    g->values[v].is_output = 0;
}

int mt_graph_add_value(mt_graph *g, const char *name) {
    if (mt_grow((void **)&g->values, &g->cap_values, g->nvalues, sizeof(mt_value))) return -1;
    mt_value *v = &g->values[g->nvalues];
    memset(v, 0, sizeof *v);
    v->name = mt_strdup(name);
    if (!v->name) return -1;
    v->rank = -1;
    v->producer = -1;
    return g->nvalues++;
}

int mt_graph_add_value_unique(mt_graph *g, const char *base) {
    char buf[512];
    for (int k = g->nvalues;; k++) {
        snprintf(buf, sizeof buf, "%s_%d", base, k);
        if (mt_graph_find_value(g, buf) < 0) return mt_graph_add_value(g, buf);
    }
}

int mt_graph_add_node(mt_graph *g, const char *op, const char *name, const int *in, int nin,
                      const int *out, int nout) {
    if (mt_grow((void **)&g->nodes, &g->cap_nodes, g->nnodes, sizeof(mt_node))) return -1;
    mt_node *n = &g->nodes[g->nnodes];
    memset(n, 0, sizeof *n);
    n->op = mt_strdup(op);
    n->name = mt_strdup(name ? name : "");
    n->domain = mt_strdup("");
    n->in = malloc(sizeof(int) * (nin ? nin : 1));
    n->out = malloc(sizeof(int) * (nout ? nout : 1));
    if (!n->op || !n->name || !n->domain || !n->in || !n->out) return -1;
    memcpy(n->in, in, sizeof(int) * nin);
    memcpy(n->out, out, sizeof(int) * nout);
    n->nin = nin;
    n->nout = nout;
    for (int i = 0; i < nout; i++)
        if (out[i] >= 0) g->values[out[i]].producer = g->nnodes;
    return g->nnodes++;
}

static mt_attr *attr_slot(mt_node *n, const char *name) {
    for (int i = 0; i < n->nattr; i++)
        if (strcmp(n->attrs[i].name, name) == 0) {
            mt_attr_free(&n->attrs[i]);
            return &n->attrs[i];
        }
    mt_attr *a = mt_realloc(n->attrs, sizeof(mt_attr) * (n->nattr + 1));
    if (!a) return NULL;
    n->attrs = a;
    memset(&a[n->nattr], 0, sizeof(mt_attr));
    return &a[n->nattr++];
}

int mt_node_set_attr(mt_node *n, const mt_attr *src) {
    mt_attr tmp;
    if (copy_attr(&tmp, src)) return -1;
    mt_attr *a = attr_slot(n, src->name);
    if (!a) {
        mt_attr_free(&tmp);
        return -1;
    }
    *a = tmp;
    return 0;
}

int mt_node_set_int(mt_node *n, const char *name, int64_t v) {
    mt_attr a = {.name = (char *)name, .type = MT_ATTR_INT, .i = v};
    return mt_node_set_attr(n, &a);
}

int mt_node_set_float(mt_node *n, const char *name, float v) {
    mt_attr a = {.name = (char *)name, .type = MT_ATTR_FLOAT, .f = v};
    return mt_node_set_attr(n, &a);
}

int mt_node_set_ints(mt_node *n, const char *name, const int64_t *v, int count) {
    mt_attr a = {.name = (char *)name, .type = MT_ATTR_INTS, .ints = (int64_t *)v, .n = count};
    return mt_node_set_attr(n, &a);
}

int mt_node_set_string(mt_node *n, const char *name, const char *s) {
    mt_attr a = {.name = (char *)name, .type = MT_ATTR_STRING, .s = (char *)s};
    return mt_node_set_attr(n, &a);
}

const mt_attr *mt_node_attr(const mt_node *n, const char *name) {
    for (int i = 0; i < n->nattr; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t mt_attr_int(const mt_node *n, const char *name, int64_t def) {
    const mt_attr *a = mt_node_attr(n, name);
    return a && a->type == MT_ATTR_INT ? a->i : def;
}

float mt_attr_float(const mt_node *n, const char *name, float def) {
    const mt_attr *a = mt_node_attr(n, name);
    if (!a) return def;
    if (a->type == MT_ATTR_FLOAT) return a->f;
    if (a->type == MT_ATTR_INT) return (float)a->i;
    return def;
}

const char *mt_attr_string(const mt_node *n, const char *name, const char *def) {
    const mt_attr *a = mt_node_attr(n, name);
    return a && a->type == MT_ATTR_STRING && a->s ? a->s : def;
}

int mt_attr_ints(const mt_node *n, const char *name, const int64_t **v) {
    const mt_attr *a = mt_node_attr(n, name);
    if (!a || a->type != MT_ATTR_INTS) {
        *v = NULL;
        return -1;
    }
    *v = a->ints;
    return a->n;
}

void mt_value_set_shape(mt_value *v, int dtype, int rank, const int64_t *dims) {
    v->dtype = dtype;
    v->rank = rank;
    for (int i = 0; i < rank && i < MT_MAX_RANK; i++) v->dims[i] = dims[i];
}

int mt_value_shape_known(const mt_value *v) {
    if (v->rank < 0) return 0;
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i] < 0) return 0;
    return 1;
}

int64_t mt_value_numel(const mt_value *v) { return v->rank < 0 ? -1 : mt_numel(v->rank, v->dims); }

size_t mt_value_bytes(const mt_value *v) {
    int64_t n = mt_value_numel(v);
    return n < 0 ? 0 : (size_t)n * mt_dtype_size(v->dtype);
}

int mt_graph_consumers(const mt_graph *g, int v, int *out, int cap) {
    int k = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j] == v) {
                if (k < cap) out[k] = i;
                k++;
                break;
            }
    }
    return k;
}

const char *mt_node_desc(const mt_graph *g, const mt_node *n, char *buf, size_t cap) {
    char unnamed[300];
    if (!n->name || !n->name[0]) /* name it by what it makes */
        snprintf(unnamed, sizeof unnamed, "<unnamed, output '%s'>", n->nout && n->out[0] >= 0 ? g->values[n->out[0]].name : "");
    snprintf(buf, cap, "node '%s' (%s%s%s, opset %lld)", n->name && n->name[0] ? n->name : unnamed,
             n->domain && n->domain[0] ? n->domain : "", n->domain && n->domain[0] ? "." : "", n->op,
             (long long)g->opset);
    return buf;
}

/* ---------------------------------------------------- topological order
 * Kahn's algorithm taking the lowest ready index first (a min-heap), so the
 * original order is kept where it is already valid; O((N + E) log N), so a
 * large hostile graph cannot stall the loader. */
typedef struct order_ws {
    int *indeg, *prod, *heap, *order, *cons_at, *cons;
    unsigned char *placed;
    int nheap;
} order_ws;

static void ws_free(order_ws *w) {
    free(w->indeg); free(w->prod); free(w->heap); free(w->order);
    free(w->cons_at); free(w->cons); free(w->placed);
}

static void heap_push(order_ws *w, int x) {
    int i = w->nheap++;
    while (i > 0 && w->heap[(i - 1) / 2] > x) w->heap[i] = w->heap[(i - 1) / 2], i = (i - 1) / 2;
    w->heap[i] = x;
}

static int heap_pop(order_ws *w) {
    int top = w->heap[0], x = w->heap[--w->nheap], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= w->nheap) break;
        if (c + 1 < w->nheap && w->heap[c + 1] < w->heap[c]) c++;
        if (w->heap[c] >= x) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    w->heap[i] = x;
    return top;
}

/* A value read by node i makes it wait for its producer (a node reading
 * its own output waits forever: a cycle). */
static int is_dep(const mt_graph *g, const order_ws *w, int v) {
    return v >= 0 && w->prod[v] >= 0 && !g->values[v].data;
}

static int ws_init(const mt_graph *g, order_ws *w) {
    int nn = g->nnodes, nv = g->nvalues;
    memset(w, 0, sizeof *w);
    w->indeg = calloc(nn + 1, sizeof(int));
    w->prod = malloc(sizeof(int) * (nv + 1));
    w->heap = malloc(sizeof(int) * (nn + 1));
    w->order = malloc(sizeof(int) * (nn + 1));
    w->cons_at = calloc(nv + 2, sizeof(int));
    w->placed = calloc(nn + 1, 1);
    if (!w->indeg || !w->prod || !w->heap || !w->order || !w->cons_at || !w->placed) return -1;
    for (int v = 0; v < nv; v++) w->prod[v] = -1;
    for (int i = 0; i < nn; i++)
        for (int j = 0; !g->nodes[i].dead && j < g->nodes[i].nout; j++)
            if (g->nodes[i].out[j] >= 0) w->prod[g->nodes[i].out[j]] = i;
    /* Consumers of each value, one entry per read (CSR). */
    size_t reads = 0;
    for (int i = 0; i < nn; i++)
        for (int j = 0; !g->nodes[i].dead && j < g->nodes[i].nin; j++)
            if (is_dep(g, w, g->nodes[i].in[j])) w->cons_at[g->nodes[i].in[j] + 1]++, w->indeg[i]++, reads++;
    for (int v = 0; v < nv; v++) w->cons_at[v + 1] += w->cons_at[v];
    if (!(w->cons = malloc(sizeof(int) * (reads + 1)))) return -1;
    int *fill = malloc(sizeof(int) * (nv + 1));
    if (!fill) return -1;
    memcpy(fill, w->cons_at, sizeof(int) * nv);
    for (int i = 0; i < nn; i++)
        for (int j = 0; !g->nodes[i].dead && j < g->nodes[i].nin; j++)
            if (is_dep(g, w, g->nodes[i].in[j])) w->cons[fill[g->nodes[i].in[j]]++] = i;
    free(fill);
    return 0;
}

/* A node on a cycle among the unplaced ones, by walking back through
 * unplaced producers until a node repeats: *via is the value it reads that
 * depends on its own output, *self whether it reads that output directly. */
static int cycle_node(const mt_graph *g, const order_ws *w, int *via, int *self) {
    int cur = -1, prev = -1;
    for (int i = 0; i < g->nnodes && cur < 0; i++)
        if (!g->nodes[i].dead && !w->placed[i]) cur = i;
    unsigned char *seen = calloc(g->nnodes + 1, 1);
    *via = -1;
    while (seen && !seen[cur]) {
        seen[cur] = 1;
        const mt_node *n = &g->nodes[cur];
        int next = -1;
        for (int j = 0; j < n->nin && next < 0; j++)
            if (is_dep(g, w, n->in[j]) && !w->placed[w->prod[n->in[j]]]) next = w->prod[n->in[j]], *via = n->in[j];
        if (next < 0) break;
        prev = cur;
        cur = next;
    }
    free(seen);
    *self = prev == cur;
    return prev >= 0 ? prev : cur;
}

static mtmi_status cycle_error(const mt_graph *g, const order_ws *w) {
    int via, self, c = cycle_node(g, w, &via, &self);
    char desc[300];
    const char *path = g->path ? g->path : "", *sep = g->path ? ": " : "", *v = via >= 0 ? g->values[via].name : "";
    mt_node_desc(g, &g->nodes[c], desc, sizeof desc);
    if (self) return mt_fail(MTMI_ERR_PARSE, "%s%sgraph has a cycle: %s reads its own output '%s'", path, sep, desc, v);
    return mt_fail(MTMI_ERR_PARSE, "%s%sgraph has a cycle through %s: its input '%s' depends on its own output", path, sep, desc, v);
}

mtmi_status mt_graph_compact(mt_graph *g) {
    int nn = g->nnodes;
    order_ws w;
    if (ws_init(g, &w)) {
        ws_free(&w);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    int live = 0, k = 0;
    for (int i = 0; i < nn; i++) {
        if (g->nodes[i].dead) continue;
        live++;
        if (!w.indeg[i]) heap_push(&w, i);
    }
    while (w.nheap) {
        int i = heap_pop(&w);
        w.placed[i] = 1;
        w.order[k++] = i;
        const mt_node *n = &g->nodes[i];
        for (int j = 0; j < n->nout; j++) {
            int v = n->out[j];
            if (v < 0 || w.prod[v] != i || g->values[v].data) continue;
            for (int c = w.cons_at[v]; c < w.cons_at[v + 1]; c++)
                if (--w.indeg[w.cons[c]] == 0 && !w.placed[w.cons[c]]) heap_push(&w, w.cons[c]);
        }
    }
    if (k < live) {
        mtmi_status s = cycle_error(g, &w);
        ws_free(&w);
        return s;
    }
    mt_node *nodes = malloc(sizeof(mt_node) * (g->cap_nodes ? g->cap_nodes : 1));
    if (!nodes) {
        ws_free(&w);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < k; i++) nodes[i] = g->nodes[w.order[i]];
    for (int i = 0; i < nn; i++)
        if (g->nodes[i].dead) node_free(&g->nodes[i]);
    free(g->nodes);
    g->nodes = nodes;
    g->nnodes = k;
    for (int v = 0; v < g->nvalues; v++) g->values[v].producer = -1;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < nodes[i].nout; j++)
            if (nodes[i].out[j] >= 0) g->values[nodes[i].out[j]].producer = i;
    ws_free(&w);
    return MTMI_OK;
}
