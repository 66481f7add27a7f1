/* Layout clean-up for exported models (reshape_pass.h).  Exporters write
 * Reshape -> Transpose pairs whose Transpose only moves axes of size 1 (one
 * attention head: [B,N,1,d] -> [B,1,N,d]); that is a no-op on the data, so
 * the pair is one Reshape.  Every rewritten Reshape gets the concrete output
 * shape as its target, which keeps allowzero=0's "copy this dim" from
 * changing meaning when its input changes. */
#include "graph/reshape_pass.h"

#include <stdlib.h>
#include <string.h>

/* Sets node n (one data input) to Reshape(x, <shape of its output>). */
static mtmi_status make_reshape(mt_graph *g, int ni, int x) {
    mt_node *n = &g->nodes[ni];
    const mt_value *y = &g->values[n->out[0]];
    char base[600];
    snprintf(base, sizeof base, "%s_shape", y->name);
    int c = mt_graph_add_value_unique(g, base);
    if (c < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    n = &g->nodes[ni]; /* values moved, nodes did not, but keep it simple */
    y = &g->values[n->out[0]];
    mt_value *cv = &g->values[c];
    int64_t d1[1] = {y->rank};
    mt_value_set_shape(cv, MTMI_INT64, 1, d1);
    cv->data = malloc(sizeof(int64_t) * (y->rank ? y->rank : 1));
    if (!cv->data) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    memcpy(cv->data, y->dims, sizeof(int64_t) * y->rank);
    if (strcmp(n->op, "Reshape") != 0) {
        char *op = mt_strdup("Reshape");
        if (!op) return MTMI_ERR_NOMEM;
        free(n->op);
        n->op = op;
        for (int i = 0; i < n->nattr; i++) mt_attr_free(&n->attrs[i]);
        free(n->attrs);
        n->attrs = NULL;
        n->nattr = 0;
    }
    int *in = realloc(n->in, sizeof(int) * 2);
    if (!in) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    n->in = in;
    n->in[0] = x;
    n->in[1] = c;
    n->nin = 2;
    return MTMI_OK;
}

/* Known and without zero dims (a 0 in a Reshape target means "copy"). */
static int positive_shape(const mt_value *v) {
    if (!mt_value_shape_known(v)) return 0;
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i] <= 0) return 0;
    return 1;
}

/* A Transpose that keeps the order of the axes larger than 1. */
static int nop_transpose(const mt_graph *g, const mt_node *n) {
    if (n->nin < 1 || n->in[0] < 0 || n->nout != 1 || n->out[0] < 0) return 0;
    const mt_value *x = &g->values[n->in[0]];
    if (!positive_shape(x) || !positive_shape(&g->values[n->out[0]])) return 0;
    const int64_t *perm;
    int np = mt_attr_ints(n, "perm", &perm);
    if (np != x->rank) return 0;
    int64_t last = -1;
    for (int i = 0; i < np; i++) {
        if (perm[i] < 0 || perm[i] >= x->rank) return 0;
        if (x->dims[perm[i]] == 1) continue;
        if (perm[i] < last) return 0;
        last = perm[i];
    }
    return 1;
}

static int is_default(const mt_node *n) { return !n->domain || !n->domain[0]; }

mtmi_status mt_pass_reshape_chains(mt_graph *g, int *removed) {
    int before = g->nnodes;
    if (removed) *removed = 0;
    int *ncons = calloc(g->nvalues + 1, sizeof(int));
    if (!ncons) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->nnodes; i++)
        for (int k = 0; k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] >= 0) ncons[g->nodes[i].in[k]]++;
    mtmi_status s = MTMI_OK;
    int nvalues0 = g->nvalues;
    for (int i = 0; i < g->nnodes && !s; i++) {
        mt_node *n = &g->nodes[i];
        if (n->dead || !is_default(n)) continue;
        int is_t = !strcmp(n->op, "Transpose") && nop_transpose(g, n);
        int is_r = !strcmp(n->op, "Reshape") && n->nout == 1 && n->out[0] >= 0 && n->in[0] >= 0 &&
                   positive_shape(&g->values[n->out[0]]);
        if (!is_t && !is_r) continue;
        int x = n->in[0];
        /* Skip over a Reshape (or no-op Transpose, already turned into one)
         * that only this node reads. */
        int p = g->values[x].producer;
        int merged = 0;
        if (p >= 0 && p < i && !g->nodes[p].dead && is_default(&g->nodes[p]) && !strcmp(g->nodes[p].op, "Reshape") &&
            x < nvalues0 && ncons[x] == 1 && !g->values[x].is_output && g->nodes[p].in[0] >= 0) {
            x = g->nodes[p].in[0];
            g->nodes[p].dead = 1;
            merged = 1;
        }
        if (is_t || merged) {
            s = make_reshape(g, i, x);
            n = &g->nodes[i];
        }
    }
    /* Reshapes to their input's shape are identities: bypass them. */
    for (int i = 0; i < g->nnodes && !s; i++) {
        mt_node *n = &g->nodes[i];
        if (n->dead || !is_default(n) || strcmp(n->op, "Reshape") || n->nout != 1 || n->out[0] < 0 || n->in[0] < 0) continue;
        const mt_value *x = &g->values[n->in[0]], *y = &g->values[n->out[0]];
        if (y->is_output || !mt_value_shape_known(x) || !mt_value_shape_known(y) || x->rank != y->rank ||
            memcmp(x->dims, y->dims, sizeof(int64_t) * x->rank))
            continue;
        for (int j = 0; j < g->nnodes; j++)
            for (int k = 0; k < g->nodes[j].nin; k++)
                if (g->nodes[j].in[k] == n->out[0]) g->nodes[j].in[k] = n->in[0];
        n->dead = 1;
    }
    free(ncons);
    if (!s) s = mt_pass_dce(g);
    if (!s && removed) *removed = before - g->nnodes;
    return s;
}
