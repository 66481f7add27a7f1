/* Cutting a multi-task graph into an encoder and one graph per head (the
 * contract is in graph.h).  The encoder is the backward cone of the cut
 * tensors; head k is the backward cone of output k that stops at the cut
 * tensors, and must not reach a graph input (else the cut does not separate
 * that head from the input).  Constants are copied into every part that reads
 * them, so each part is a self-contained model. */
#include "graph/ops.h"

#include <stdlib.h>
#include <string.h>

/* Copies the marked nodes (and the values they touch) into a new graph whose
 * inputs and outputs are the given values. */
static mtmi_status extract(const mt_graph *g, const unsigned char *mark, const int *ins, int nin, const int *outs,
                           int nout, const char *name, mt_graph **res) {
    *res = NULL;
    mt_graph *p = mt_graph_new();
    int *map = malloc(sizeof(int) * (g->nvalues + 1));
    if (!p || !map) {
        mt_graph_free(p);
        free(map);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory splitting the graph");
    }
    for (int v = 0; v < g->nvalues; v++) map[v] = -1;
    p->opset = g->opset;
    p->ir_version = g->ir_version;
    p->name = mt_strdup(name);
    p->producer = mt_strdup(g->producer ? g->producer : "");
    p->path = mt_strdup(g->path ? g->path : "");
    p->inputs = malloc(sizeof(int) * (nin + 1));
    p->outputs = malloc(sizeof(int) * (nout + 1));
    mtmi_status s = p->inputs && p->outputs && p->name && p->producer && p->path ? MTMI_OK : MTMI_ERR_NOMEM;

/* Maps old value v into p (creating it with its type, shape and data). */
#define MAP(v)                                                                                     \
    do {                                                                                           \
        if (!s && (v) >= 0 && map[(v)] < 0) {                                                      \
            const mt_value *o = &g->values[(v)];                                                   \
            int nv = mt_graph_add_value(p, o->name);                                               \
            if (nv < 0) { s = MTMI_ERR_NOMEM; break; }                                             \
            mt_value *d = &p->values[nv];                                                          \
            d->dtype = o->dtype;                                                                   \
            d->rank = o->rank;                                                                     \
            memcpy(d->dims, o->dims, sizeof d->dims);                                              \
            for (int q = 0; q < MT_MAX_RANK; q++)                                                  \
                if (o->dim_param[q] && !(d->dim_param[q] = mt_strdup(o->dim_param[q]))) s = MTMI_ERR_NOMEM; \
            d->is_weight = o->is_weight;                                                           \
            if (o->data) {                                                                         \
                size_t nb = mt_value_bytes(o);                                                     \
                d->data = malloc(nb ? nb : 1);                                                     \
                if (!d->data) s = MTMI_ERR_NOMEM;                                                  \
                else memcpy(d->data, o->data, nb);                                                 \
            }                                                                                      \
            map[(v)] = nv;                                                                         \
        }                                                                                          \
    } while (0)

    for (int i = 0; i < nin && !s; i++) {
        MAP(ins[i]);
        if (s) break;
        mt_value *d = &p->values[map[ins[i]]];
        d->is_input = 1;
        d->is_weight = 0;
        mt_value_free_data(d); /* a cut tensor is never a constant here */
        p->inputs[p->ninputs++] = map[ins[i]];
    }
    for (int i = 0; i < g->nnodes && !s; i++) {
        const mt_node *n = &g->nodes[i];
        if (!mark[i] || n->dead) continue;
        int in[64], out[64];
        if (n->nin > 64 || n->nout > 64) {
            s = mt_fail(MTMI_ERR_UNSUPPORTED, "node '%s' (%s): more than 64 inputs or outputs", n->name, n->op);
            break;
        }
        for (int k = 0; k < n->nin && !s; k++) {
            MAP(n->in[k]);
            in[k] = n->in[k] >= 0 ? map[n->in[k]] : -1;
        }
        for (int k = 0; k < n->nout && !s; k++) {
            MAP(n->out[k]);
            out[k] = n->out[k] >= 0 ? map[n->out[k]] : -1;
        }
        if (s) break;
        int ni = mt_graph_add_node(p, n->op, n->name, in, n->nin, out, n->nout);
        if (ni < 0) {
            s = MTMI_ERR_NOMEM;
            break;
        }
        mt_node *d = &p->nodes[ni];
        free(d->domain);
        d->domain = mt_strdup(n->domain ? n->domain : "");
        if (!d->domain) s = MTMI_ERR_NOMEM;
        for (int k = 0; k < n->nattr && !s; k++)
            if (mt_node_set_attr(d, &n->attrs[k])) s = MTMI_ERR_NOMEM;
    }
    for (int i = 0; i < nout && !s; i++) {
        if (map[outs[i]] < 0) { /* cannot happen: outputs are produced by marked nodes */
            s = mt_fail(MTMI_ERR_INTERNAL, "split: output '%s' of part '%s' is produced by none of its nodes", g->values[outs[i]].name, name);
            break;
        }
        p->values[map[outs[i]]].is_output = 1;
        p->outputs[p->noutputs++] = map[outs[i]];
    }
#undef MAP
    free(map);
    if (!s) s = mt_graph_compact(p);
    if (s) {
        if (s == MTMI_ERR_NOMEM) mt_fail(s, "out of memory splitting the graph");
        mt_graph_free(p);
        return s;
    }
    *res = p;
    return MTMI_OK;
}

void mt_split_free(mt_split *s) {
    if (!s) return;
    mt_graph_free(s->encoder);
    for (int k = 0; s->heads && k < s->nheads; k++) mt_graph_free(s->heads[k]);
    free(s->heads);
    for (int k = 0; k < s->ncut; k++) free(s->cut_names[k]);
    free(s->cut_names);
    memset(s, 0, sizeof *s);
}

mtmi_status mt_graph_split(const mt_graph *g, const char *const *cut, int ncut, mt_split *out) {
    if (!g || !out || (ncut && !cut) || ncut < 0) return mt_fail(MTMI_ERR_ARG, "mt_graph_split: bad argument");
    memset(out, 0, sizeof *out);
    if (g->noutputs > 64) return mt_fail(MTMI_ERR_UNSUPPORTED, "split: %d outputs, at most 64 supported", g->noutputs);
    int nv = g->nvalues, nn = g->nnodes;
    size_t edges = (size_t)nv + 1; /* a node is pushed once per edge at most */
    for (int i = 0; i < nn; i++) edges += g->nodes[i].nin + 1;
    int *prod = malloc(sizeof(int) * (nv + 1));
    int *cuts = malloc(sizeof(int) * (nv + 1));
    int *label = malloc(sizeof(int) * (nn + 1));
    int *stack = malloc(sizeof(int) * edges);
    int *hin = malloc(sizeof(int) * (nv + 1));
    unsigned char *is_cut = calloc(nv + 1, 1), *enc = calloc(nn + 1, 1), *head = calloc(nn + 1, 1);
    unsigned char *cut_used = calloc(nv + 1, 1);
    int ncuts = 0;
    mtmi_status s = MTMI_OK;
    if (!prod || !cuts || !label || !stack || !hin || !is_cut || !enc || !head || !cut_used) {
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory splitting the graph");
        goto done;
    }
    for (int v = 0; v < nv; v++) prod[v] = -1;
    for (int i = 0; i < nn; i++) {
        if (g->nodes[i].dead) continue;
        for (int k = 0; k < g->nodes[i].nout; k++)
            if (g->nodes[i].out[k] >= 0) prod[g->nodes[i].out[k]] = i;
    }

    if (!cut) {
        /* Automatic: tensors made in the shared part and read by a head. */
        if (g->noutputs < 2) {
            s = mt_fail(MTMI_ERR_ARG, "split: the model has %d output: no shared part to find (name the cut tensors)", g->noutputs);
            goto done;
        }
        if ((s = mt_graph_cone_labels(g, label))) goto done;
        for (int i = 0; i < nn; i++) {
            const mt_node *n = &g->nodes[i];
            if (n->dead || label[i] < 0) continue;
            for (int k = 0; k < n->nin; k++) {
                int v = n->in[k];
                if (v < 0 || g->values[v].data || prod[v] < 0 || label[prod[v]] != -1 || is_cut[v]) continue;
                is_cut[v] = 1;
            }
        }
        /* Encoder output order: the order the encoder makes them in. */
        for (int i = 0; i < nn; i++)
            for (int k = 0; k < g->nodes[i].nout; k++) {
                int v = g->nodes[i].out[k];
                if (v >= 0 && is_cut[v]) cuts[ncuts++] = v;
            }
        if (ncuts == 0) {
            s = mt_fail(MTMI_ERR_ARG, "split: no shared part found: no tensor is read by more than one head");
            goto done;
        }
    } else {
        if (ncut == 0) {
            s = mt_fail(MTMI_ERR_ARG, "split: empty cut list");
            goto done;
        }
        for (int i = 0; i < ncut; i++) {
            const char *nm = cut[i] ? cut[i] : "";
            int v = nm[0] ? mt_graph_find_value(g, nm) : -1;
            if (v < 0) {
                s = mt_fail(MTMI_ERR_ARG, "split: cut tensor '%s' is not a tensor of the model", nm);
                goto done;
            }
            const mt_value *val = &g->values[v];
            if (val->data) s = mt_fail(MTMI_ERR_ARG, "split: cut tensor '%s' is a constant, not a computed feature", nm);
            else if (val->is_input) s = mt_fail(MTMI_ERR_ARG, "split: cut tensor '%s' is a model input", nm);
            else if (val->is_output) s = mt_fail(MTMI_ERR_ARG, "split: cut tensor '%s' is a model output, not a shared feature", nm);
            else if (prod[v] < 0) s = mt_fail(MTMI_ERR_ARG, "split: cut tensor '%s' is produced by no node", nm);
            else if (is_cut[v]) s = mt_fail(MTMI_ERR_ARG, "split: cut tensor '%s' is named twice", nm);
            if (s) goto done;
            is_cut[v] = 1;
            cuts[ncuts++] = v;
        }
    }

    /* Encoder: everything the cut tensors need. */
    int sp = 0;
    for (int i = 0; i < ncuts; i++) stack[sp++] = prod[cuts[i]];
    while (sp) {
        int i = stack[--sp];
        if (i < 0 || enc[i]) continue;
        enc[i] = 1;
        const mt_node *n = &g->nodes[i];
        for (int k = 0; k < n->nin; k++) {
            int v = n->in[k];
            if (v >= 0 && !g->values[v].data && prod[v] >= 0 && !enc[prod[v]]) stack[sp++] = prod[v];
        }
    }
    int enc_in[64], nenc_in = 0;
    for (int i = 0; i < g->ninputs; i++) {
        int v = g->inputs[i], read = 0;
        for (int j = 0; j < nn && !read; j++)
            if (enc[j])
                for (int k = 0; k < g->nodes[j].nin; k++)
                    if (g->nodes[j].in[k] == v) read = 1;
        if (read && nenc_in < 64) enc_in[nenc_in++] = v;
    }

    out->nheads = g->noutputs;
    out->heads = calloc(g->noutputs + 1, sizeof(mt_graph *));
    out->cut_names = calloc(ncuts + 1, sizeof(char *));
    if (!out->heads || !out->cut_names) {
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory splitting the graph");
        goto done;
    }
    for (int h = 0; h < g->noutputs; h++) {
        int ov = g->outputs[h];
        memset(head, 0, nn + 1);
        sp = 0;
        if (prod[ov] >= 0) stack[sp++] = prod[ov];
        while (sp) {
            int i = stack[--sp];
            if (head[i]) continue;
            head[i] = 1;
            const mt_node *n = &g->nodes[i];
            for (int k = 0; k < n->nin; k++) {
                int v = n->in[k];
                if (v < 0 || g->values[v].data || is_cut[v]) continue;
                if (g->values[v].is_input) {
                    char desc[256];
                    s = mt_fail(MTMI_ERR_ARG, "split: the cut does not separate output '%s' from input '%s' (%s reads it)",
                                g->values[ov].name, g->values[v].name, mt_node_desc(g, n, desc, sizeof desc));
                    goto done;
                }
                if (prod[v] >= 0 && !head[prod[v]]) stack[sp++] = prod[v];
            }
        }
        /* Head inputs: the cut tensors it reads, in cut order. */
        int nhin = 0;
        for (int c = 0; c < ncuts; c++) {
            int v = cuts[c], read = 0;
            for (int j = 0; j < nn && !read; j++)
                if (head[j])
                    for (int k = 0; k < g->nodes[j].nin; k++)
                        if (g->nodes[j].in[k] == v) read = 1;
            if (read) {
                hin[nhin++] = v;
                cut_used[v] = 1;
            }
        }
        if (nhin == 0) {
            s = mt_fail(MTMI_ERR_ARG, "split: output '%s' reads none of the cut tensors", g->values[ov].name);
            goto done;
        }
        s = extract(g, head, hin, nhin, &ov, 1, g->values[ov].name, &out->heads[h]);
        if (s) goto done;
    }
    for (int c = 0; c < ncuts; c++)
        if (!cut_used[cuts[c]]) {
            s = mt_fail(MTMI_ERR_ARG, "split: cut tensor '%s' is read by no head (it lies inside the encoder, not between it and the heads)",
                        g->values[cuts[c]].name);
            goto done;
        }
    s = extract(g, enc, enc_in, nenc_in, cuts, ncuts, "encoder", &out->encoder);
    if (s) goto done;
    for (int c = 0; c < ncuts; c++) {
        out->cut_names[c] = mt_strdup(g->values[cuts[c]].name);
        if (!out->cut_names[c]) {
            s = MTMI_ERR_NOMEM;
            goto done;
        }
        out->ncut = c + 1;
    }
done:
    if (s) mt_split_free(out);
    free(prod); free(cuts); free(label); free(stack); free(hin);
    free(is_cut); free(enc); free(head); free(cut_used);
    return s;
}
