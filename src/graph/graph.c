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
    free(g);
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

mtmi_status mt_graph_compact(mt_graph *g) {
    int nn = g->nnodes;
    int *order = malloc(sizeof(int) * (nn + 1));
    int *indeg = calloc(nn + 1, sizeof(int));
    int *prod = malloc(sizeof(int) * (g->nvalues + 1));
    unsigned char *placed = calloc(nn + 1, 1);
    if (!order || !indeg || !prod || !placed) {
        free(order); free(indeg); free(prod); free(placed);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int v = 0; v < g->nvalues; v++) prod[v] = -1;
    for (int i = 0; i < nn; i++) {
        if (g->nodes[i].dead) continue;
        for (int j = 0; j < g->nodes[i].nout; j++)
            if (g->nodes[i].out[j] >= 0) prod[g->nodes[i].out[j]] = i;
    }
    /* Kahn's algorithm, always taking the lowest ready index so the original
     * order is kept where it is already valid. */
    int live = 0;
    for (int i = 0; i < nn; i++) {
        mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        live++;
        for (int j = 0; j < n->nin; j++) {
            int v = n->in[j];
            if (v >= 0 && prod[v] >= 0 && prod[v] != i && !g->values[v].data) indeg[i]++;
        }
    }
    int k = 0;
    int progress = 1;
    while (k < live && progress) {
        progress = 0;
        for (int i = 0; i < nn; i++) {
            mt_node *n = &g->nodes[i];
            if (n->dead || placed[i] || indeg[i]) continue;
            placed[i] = 1;
            order[k++] = i;
            progress = 1;
            for (int j = 0; j < n->nout; j++) {
                int v = n->out[j];
                if (v < 0 || g->values[v].data) continue;
                for (int c = 0; c < nn; c++) {
                    if (g->nodes[c].dead || placed[c]) continue;
                    for (int q = 0; q < g->nodes[c].nin; q++)
                        if (g->nodes[c].in[q] == v) indeg[c]--;
                }
            }
            break; /* restart from the lowest index */
        }
    }
    if (k < live) {
        free(order); free(indeg); free(prod); free(placed);
        return mt_fail(MTMI_ERR_PARSE, "graph has a cycle");
    }
    mt_node *nodes = malloc(sizeof(mt_node) * (g->cap_nodes ? g->cap_nodes : 1));
    if (!nodes) {
        free(order); free(indeg); free(prod); free(placed);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < k; i++) nodes[i] = g->nodes[order[i]];
    for (int i = 0; i < nn; i++)
        if (g->nodes[i].dead) node_free(&g->nodes[i]);
    free(g->nodes);
    g->nodes = nodes;
    g->nnodes = k;
    for (int v = 0; v < g->nvalues; v++) g->values[v].producer = -1;
    for (int i = 0; i < k; i++)
        for (int j = 0; j < nodes[i].nout; j++)
            if (nodes[i].out[j] >= 0) g->values[nodes[i].out[j]].producer = i;
    free(order); free(indeg); free(prod); free(placed);
    return MTMI_OK;
}
