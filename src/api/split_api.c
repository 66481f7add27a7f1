/* Splitting through the public API: the model cut at its shared features,
 * each part written as a model ONNX Runtime runs.  `mtmi split` is this
 * plus its report. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cpu/cpu.h"
#include "onnx/onnx.h"

/* Gives the (unsplit, unfolded) graph the types and shapes that inference
 * finds, so the cut tensors are declared with shapes in the head files.  The
 * graph itself is not folded: the parts compute exactly what the model did.
 *
 * Dynamic input dimensions are tried at two sets of sizes (multiples of 32,
 * a different one per dimension); a dimension of a cut tensor that changes
 * between the two stays dynamic, named after the input dimension when it
 * follows that one exactly. */
static const int64_t g_try[2][6] = {{96, 160, 224, 352, 416, 544}, {544, 608, 736, 928, 992, 1184}};

static mt_graph *infer_at(const mtmi_model *m, int set) {
    const mt_graph *g = m->graph;
    mtmi_tensor shapes[16];
    int n = g->ninputs < 16 ? g->ninputs : 16, j = 0;
    for (int i = 0; i < n; i++) {
        const mt_value *v = &g->values[g->inputs[i]];
        memset(&shapes[i], 0, sizeof shapes[i]);
        if (set < 0 || v->rank <= 0) continue;
        shapes[i].rank = v->rank;
        shapes[i].dtype = v->dtype;
        for (int d = 0; d < v->rank; d++) shapes[i].dims[d] = v->dims[d] > 0 ? v->dims[d] : g_try[set][j++ % 6];
    }
    mt_graph *inf = NULL;
    if (mt_model_specialize(m, shapes, n, 0, &inf) != MTMI_OK) return NULL;
    return inf;
}

/* The dim_param of the input dimension whose tried sizes were a and b. */
static const char *dim_name(const mt_graph *g, int64_t a, int64_t b) {
    int j = 0;
    for (int i = 0; i < g->ninputs && i < 16; i++) {
        const mt_value *v = &g->values[g->inputs[i]];
        for (int d = 0; d < v->rank; d++) {
            if (v->dims[d] > 0) continue;
            if (g_try[0][j % 6] == a && g_try[1][j % 6] == b && j < 6) return v->dim_param[d];
            j++;
        }
    }
    return NULL;
}

static void annotate_shapes(const mtmi_model *m, mt_graph *g) {
    int dynamic = 0;
    for (int i = 0; i < g->ninputs; i++)
        if (!mt_value_shape_known(&g->values[g->inputs[i]])) dynamic = 1;
    mt_graph *a = infer_at(m, dynamic ? 0 : -1), *b = dynamic && a ? infer_at(m, 1) : NULL;
    if (!a || (dynamic && !b)) {
        fprintf(stderr, "mtmi: note: shapes not inferred (%s); cut tensors are declared without shapes\n", mtmi_last_error());
        mt_clear_error();
        mt_graph_free(a);
        return;
    }
    for (int v = 0; v < g->nvalues; v++) {
        mt_value *d = &g->values[v];
        if (d->data || d->is_input) continue;
        int k = mt_graph_find_value(a, d->name);
        if (k < 0 || a->values[k].rank < 0) continue;
        const mt_value *x = &a->values[k];
        int kb = b ? mt_graph_find_value(b, d->name) : -1;
        const mt_value *y = kb >= 0 ? &b->values[kb] : NULL;
        if (b && (!y || y->rank != x->rank)) continue;
        d->dtype = x->dtype;
        d->rank = x->rank;
        for (int q = 0; q < x->rank; q++) {
            d->dims[q] = x->dims[q];
            if (!y || y->dims[q] == x->dims[q]) continue;
            d->dims[q] = -1;
            const char *nm = dim_name(g, x->dims[q], y->dims[q]);
            free(d->dim_param[q]);
            d->dim_param[q] = nm ? mt_strdup(nm) : NULL;
        }
    }
    mt_graph_free(a);
    mt_graph_free(b);
}

/* " 12.34 GFLOP" of a part (its shapes inferred on a copy), or "" when
 * inference cannot run. */
const char *mt_split_part_gflop(const mt_graph *part, char *buf, size_t cap) {
    buf[0] = 0;
    mt_graph *c = mt_graph_clone(part);
    if (!c) return buf;
    if (mt_graph_infer(c, NULL, 0, mt_cpu_eval, NULL) == MTMI_OK) {
        double f = 0;
        for (int i = 0; i < c->nnodes; i++) f += mt_node_flops(c, &c->nodes[i]);
        snprintf(buf, cap, ", %.2f GFLOP", f / 1e9);
    }
    mt_clear_error();
    mt_graph_free(c);
    return buf;
}

/* The part files: encoder.onnx, then <output>.onnx per head, distinct
 * (mt_file_names: a head named "encoder", or "a/b" beside "a_b", gets
 * "_<k>"), within the path limits and none of them a file the model was
 * read from.  Decided before anything is written. */
static mtmi_status part_paths(const mtmi_model *m, const mt_split *sp, const char *outdir, char (*paths)[4096]) {
    int n = sp->nheads + 1;
    const char **names = malloc(sizeof(char *) * (size_t)n);
    char (*base)[MT_NAME_CAP] = malloc(sizeof *base * (size_t)n);
    mtmi_status s = names && base ? MTMI_OK : mt_fail(MTMI_ERR_NOMEM, "out of memory");
    for (int k = 0; !s && k < n; k++) {
        const mt_graph *h = k ? sp->heads[k - 1] : NULL;
        names[k] = k ? h->values[h->outputs[0]].name : "encoder";
    }
    if (!s) s = mt_file_names(names, n, ".onnx", base);
    for (int k = 0; !s && k < n; k++) {
        s = mt_path_join(paths[k], sizeof paths[k], outdir, base[k]);
        if (!s) s = mt_check_not_input(paths[k], (const char *const *)m->graph->sources, m->graph->nsources);
    }
    free(names);
    free(base);
    return s;
}

void mt_split_files_free(mt_split_files *r) {
    mt_split_free(&r->split);
    mt_graph_free(r->annotated);
    free(r->paths);
    memset(r, 0, sizeof *r);
}

static int is_source(const mtmi_model *m, const char *path) {
    for (int i = 0; i < m->graph->nsources; i++)
        if (mt_same_file(path, m->graph->sources[i])) return 1;
    return 0;
}

mtmi_status mt_split_write(const mtmi_model *m, const char *const *cuts, int ncut, const char *outdir, mt_split_files *r) {
    memset(r, 0, sizeof *r);
    mtmi_status s;
    if (!(r->annotated = mt_graph_clone(m->graph))) return MTMI_ERR_NOMEM;
    annotate_shapes(m, r->annotated);
    if ((s = mt_graph_split(r->annotated, cuts, ncut, &r->split))) goto fail;
    if (!(r->paths = calloc(r->split.nheads + 1, sizeof *r->paths))) {
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = part_paths(m, &r->split, outdir, r->paths))) goto fail;
    if (mt_mkdirs(outdir) != 0) {
        s = mt_fail(MTMI_ERR_IO, "cannot create output folder '%s': %s", outdir, strerror(errno));
        goto fail;
    }
    for (int k = 0; k <= r->split.nheads; k++) {
        if ((s = mt_onnx_save(k ? r->split.heads[k - 1] : r->split.encoder, r->paths[k], NULL))) goto fail;
        r->npaths++;
    }
    return MTMI_OK;
fail:
    /* A failed split leaves no part of the set behind. */
    for (int i = 0; i < r->npaths; i++) {
        char data[4200];
        remove(r->paths[i]);
        snprintf(data, sizeof data, "%s.data", r->paths[i]);
        if (!is_source(m, data)) remove(data); /* it may be the model's own weights */
    }
    mt_split_files_free(r);
    return s;
}

mtmi_status mtmi_model_split(mtmi_model *m, const char *const *cut, int ncut, const char *outdir) {
    if (!m || !outdir || (ncut && !cut)) return mt_fail(MTMI_ERR_ARG, "mtmi_model_split: NULL argument");
    mt_clear_error();
    mt_split_files r;
    mtmi_status s = mt_split_write(m, cut, ncut, outdir, &r);
    if (!s) mt_split_files_free(&r);
    return s;
}
