/* The public API over the graph layer and the backends. */
#include "api/api.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "onnx/onnx.h"
#if MTMI_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif
#include "quant/quant.h"

/* ------------------------------------------------------------------ model */
mtmi_status mtmi_model_load(const char *path, const mtmi_load_options *opt, mtmi_model **out) {
    if (!path || !out) return mt_fail(MTMI_ERR_ARG, "mtmi_model_load: NULL argument");
    *out = NULL;
    mt_clear_error();
    mtmi_model *m = mt_alloc(sizeof *m);
    if (!m) return MTMI_ERR_NOMEM;
    if (opt) m->opt = *opt;
    mt_onnx_load_opts lo = {.fill_missing_weights = m->opt.fill_missing_weights, .seed = m->opt.seed,
                            .max_random_bytes = m->opt.max_random_bytes};
    mtmi_status s = mt_onnx_load(path, &lo, &m->graph);
    if (s) {
        free(m);
        return s;
    }
    m->graph->fold_budget = m->opt.max_fold_bytes;
    for (int v = 0; v < m->graph->nvalues; v++) {
        const mt_value *val = &m->graph->values[v];
        if (val->is_weight && (val->dtype == MTMI_FLOAT || val->dtype == MTMI_FLOAT16)) m->params += mt_value_numel(val);
    }
    *out = m;
    return MTMI_OK;
}

void mtmi_model_free(mtmi_model *m) {
    if (!m) return;
    mt_graph_free(m->graph);
    free(m);
}

int mtmi_model_num_inputs(const mtmi_model *m) { return m->graph->ninputs; }
int mtmi_model_num_outputs(const mtmi_model *m) { return m->graph->noutputs; }

const char *mtmi_model_input_name(const mtmi_model *m, int i) {
    return i >= 0 && i < m->graph->ninputs ? m->graph->values[m->graph->inputs[i]].name : NULL;
}

const char *mtmi_model_output_name(const mtmi_model *m, int i) {
    return i >= 0 && i < m->graph->noutputs ? m->graph->values[m->graph->outputs[i]].name : NULL;
}

mtmi_status mtmi_model_input_shape(const mtmi_model *m, int i, int *rank, int64_t dims[MTMI_MAX_RANK]) {
    if (i < 0 || i >= m->graph->ninputs) return mt_fail(MTMI_ERR_ARG, "input index %d out of range", i);
    const mt_value *v = &m->graph->values[m->graph->inputs[i]];
    *rank = v->rank;
    for (int d = 0; d < v->rank; d++) dims[d] = v->dims[d];
    return MTMI_OK;
}

mtmi_status mt_model_specialize(const mtmi_model *m, const mtmi_tensor *shapes, int nshapes, int fuse, mt_graph **out) {
    *out = NULL;
    mt_graph *g = mt_graph_clone(m->graph);
    if (!g) return MTMI_ERR_NOMEM;
    mtmi_status s = mt_graph_optimize(g, shapes, nshapes, mt_cpu_eval, NULL, fuse && !m->opt.no_optimize);
    if (s) {
        mt_graph_free(g);
        return s;
    }
    *out = g;
    return MTMI_OK;
}

/* ------------------------------------------------------------- describe */
typedef struct strbuf {
    char *s;
    size_t len, cap;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->s && b->len + n < b->cap) {
            b->len += n;
            return;
        }
        size_t nc = (b->cap + n + 1) * 2;
        char *p = realloc(b->s, nc);
        if (!p) return;
        b->s = p;
        b->cap = nc;
    }
}

static int cmp_hist(const void *a, const void *b) {
    const struct { const char *op; int n; } *x = a, *y = b;
    if (x->n != y->n) return y->n - x->n;
    return strcmp(x->op, y->op);
}

static void op_histogram(strbuf *b, const mt_graph *g, const char *title) {
    struct { const char *op; int n; } h[256];
    int nh = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const char *op = g->nodes[i].op;
        int j;
        for (j = 0; j < nh; j++)
            if (!strcmp(h[j].op, op)) break;
        if (j == nh && nh < 256) h[nh++] = (typeof(h[0])){op, 0};
        if (j < nh) h[j].n++;
    }
    qsort(h, nh, sizeof h[0], cmp_hist);
    sb_printf(b, "%s (%d nodes):", title, g->nnodes);
    for (int j = 0; j < nh; j++) sb_printf(b, "%s %s=%d", j ? "," : "", h[j].op, h[j].n);
    sb_printf(b, "\n");
}

/* FLOPs of the shared part and of each head (cone labels). */
static void flops_report(strbuf *b, const mt_graph *g, int executed) {
    int *label = malloc(sizeof(int) * (g->nnodes + 1));
    if (!label || mt_graph_cone_labels(g, label) != MTMI_OK) {
        free(label);
        return;
    }
    double total = 0, shared = 0, per[64] = {0};
    int nshared = 0, nper[64] = {0};
    for (int i = 0; i < g->nnodes; i++) {
        double f = mt_node_flops(g, &g->nodes[i]);
        total += f;
        if (label[i] == -1) { shared += f; nshared++; }
        else if (label[i] >= 0 && label[i] < 64) { per[label[i]] += f; nper[label[i]]++; }
    }
    free(label);
    if (executed) {
        sb_printf(b, "GFLOP executed by the optimized plan: %.2f (shared %.2f", total / 1e9, shared / 1e9);
        for (int k = 0; k < g->noutputs && k < 64; k++) sb_printf(b, ", %s %.2f", g->values[g->outputs[k]].name, per[k] / 1e9);
        sb_printf(b, ")\n");
        return;
    }
    sb_printf(b, "GFLOP total: %.2f\n", total / 1e9);
    if (g->noutputs > 1) sb_printf(b, "  shared (encoder): %.2f GFLOP, %d nodes\n", shared / 1e9, nshared);
    for (int k = 0; k < g->noutputs && k < 64; k++)
        sb_printf(b, "  head '%s': %.2f GFLOP, %d nodes\n", g->values[g->outputs[k]].name, per[k] / 1e9, nper[k]);
}

char *mtmi_model_describe(mtmi_model *m) {
    strbuf b = {0};
    const mt_graph *g = m->graph;
    char sh[128];
    sb_printf(&b, "model: %s (ir %lld, opset %lld, producer '%s')\n", g->path ? g->path : "", (long long)g->ir_version,
              (long long)g->opset, g->producer ? g->producer : "");
    for (int i = 0; i < g->ninputs; i++) {
        const mt_value *v = &g->values[g->inputs[i]];
        sb_printf(&b, "input  %-24s %-8s %s\n", v->name, mt_dtype_name(v->dtype), mt_shape_str(v->rank, v->dims, sh, sizeof sh));
    }
    for (int i = 0; i < g->noutputs; i++) {
        const mt_value *v = &g->values[g->outputs[i]];
        sb_printf(&b, "output %-24s %-8s %s\n", v->name, mt_dtype_name(v->dtype), mt_shape_str(v->rank, v->dims, sh, sizeof sh));
    }
    sb_printf(&b, "parameters: %lld\n", (long long)m->params);
    op_histogram(&b, g, "ops as loaded");
    /* The model's own cost is counted on the folded graph before fusion:
     * some rewrites (e.g. moving a 1x1 conv ahead of an upsample) change
     * the arithmetic, and users compare with what they exported.  What the
     * optimized plan executes is reported after it. */
    mt_graph *folded = NULL, *opt = NULL;
    if (mt_model_specialize(m, NULL, 0, 0, &folded) != MTMI_OK || mt_model_specialize(m, NULL, 0, 1, &opt) != MTMI_OK) {
        sb_printf(&b, "optimized: not available (%s)\n", mtmi_last_error());
        mt_graph_free(folded);
        return b.s;
    }
    op_histogram(&b, opt, "ops optimized");
    for (int i = 0; i < opt->noutputs; i++) {
        const mt_value *v = &opt->values[opt->outputs[i]];
        sb_printf(&b, "output %-24s %s\n", v->name, mt_shape_str(v->rank, v->dims, sh, sizeof sh));
    }
    flops_report(&b, folded, 0);
    flops_report(&b, opt, 1);
    mt_graph_free(folded);
    mt_graph_free(opt);
    return b.s;
}

/* ------------------------------------------------------------------- plan */
struct mtmi_plan {
    mt_graph *graph;
    mt_cpu_plan *cpu;
    void *cuda; /* mt_cuda_plan when the plan runs on a GPU */
};

mtmi_status mtmi_plan_create(mtmi_model *m, const mtmi_plan_options *opt, mtmi_plan **out) {
    if (!m || !out) return mt_fail(MTMI_ERR_ARG, "mtmi_plan_create: NULL argument");
    *out = NULL;
    mt_clear_error();
    const char *dev = opt && opt->device ? opt->device : "cpu";
    const char *prec = opt && opt->precision ? opt->precision : "fp32";
    if (strcmp(dev, "cpu") != 0) {
        if (strncmp(dev, "cuda", 4)) return mt_fail(MTMI_ERR_DEVICE, "unknown device '%s' (expected cpu or cuda:N)", dev);
#if MTMI_HAVE_CUDA
        int gpu = mt_cuda_parse_device(dev);
        if (gpu < 0) return mt_fail(MTMI_ERR_DEVICE, "unknown device '%s' (expected cpu or cuda:N)", dev);
        /* int8: the heads' convolutions in INT8 (the CPU int8 path's graph
         * rewrite, run on tensor cores), everything else in FP16 */
        int gint8 = !strcmp(prec, "int8");
        if (strcmp(prec, "fp16") && strcmp(prec, "fp32") && !gint8)
            return mt_fail(MTMI_ERR_UNSUPPORTED, "precision '%s' is not available on the GPU (use fp16, fp32 or int8)", prec);
        if (gint8 && !opt->calibration_cache)
            return mt_fail(MTMI_ERR_ARG, "precision int8 needs a calibration cache (mtmi_plan_options.calibration_cache)");
        mtmi_status cs = mt_cuda_check_device(gpu);
        if (cs) return cs;
        mtmi_plan *cp = mt_alloc(sizeof *cp);
        if (!cp) return MTMI_ERR_NOMEM;
        cs = mt_model_specialize(m, opt ? opt->input_shapes : NULL, opt ? opt->num_input_shapes : 0, 1, &cp->graph);
        if (!cs && gint8) cs = mt_quant_plan_graph(m->graph, cp->graph, opt->calibration_cache, NULL);
        if (!cs) cs = mt_cuda_plan_create(cp->graph, gpu, strcmp(prec, "fp32") != 0, (mt_cuda_plan **)&cp->cuda);
        if (cs) {
            mtmi_plan_free(cp);
            return cs;
        }
        *out = cp;
        return MTMI_OK;
#else
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': this build has no CUDA support", dev);
#endif
    }
    int int8 = !strcmp(prec, "int8");
    if (strcmp(prec, "fp32") != 0 && !int8)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "precision '%s' is not available on the CPU (use fp32 or int8)", prec);
    if (int8 && !opt->calibration_cache)
        return mt_fail(MTMI_ERR_ARG, "precision int8 needs a calibration cache (mtmi_plan_options.calibration_cache)");
    mtmi_plan *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    mtmi_status s = mt_model_specialize(m, opt ? opt->input_shapes : NULL, opt ? opt->num_input_shapes : 0, 1, &p->graph);
    if (!s && int8) s = mt_quant_plan_graph(m->graph, p->graph, opt->calibration_cache, NULL);
    if (!s) s = mt_cpu_plan_create(p->graph, opt ? opt->threads : 0, &p->cpu);
    if (s) {
        mtmi_plan_free(p);
        return s;
    }
    *out = p;
    return MTMI_OK;
}

void mtmi_plan_free(mtmi_plan *p) {
    if (!p) return;
#if MTMI_HAVE_CUDA
    mt_cuda_plan_free((mt_cuda_plan *)p->cuda);
#endif
    mt_cpu_plan_free(p->cpu);
    mt_graph_free(p->graph);
    free(p);
}

mtmi_status mtmi_plan_output_shape(const mtmi_plan *p, int i, int *rank, int64_t dims[MTMI_MAX_RANK]) {
    if (i < 0 || i >= p->graph->noutputs) return mt_fail(MTMI_ERR_ARG, "output index %d out of range", i);
    const mt_value *v = &p->graph->values[p->graph->outputs[i]];
    *rank = v->rank;
    for (int d = 0; d < v->rank; d++) dims[d] = v->dims[d];
    return MTMI_OK;
}

mtmi_status mtmi_plan_run(mtmi_plan *p, const mtmi_tensor *inputs, int ninputs, mtmi_tensor *outputs, int noutputs) {
    if (!p || (ninputs && !inputs) || (noutputs && !outputs)) return mt_fail(MTMI_ERR_ARG, "mtmi_plan_run: NULL argument");
    mt_tview in[16], out[16];
    if (ninputs > 16 || noutputs > 16) return mt_fail(MTMI_ERR_ARG, "too many inputs or outputs");
    for (int i = 0; i < ninputs; i++) {
        in[i].data = inputs[i].data;
        in[i].dtype = inputs[i].dtype;
        in[i].rank = inputs[i].rank;
        memcpy(in[i].dims, inputs[i].dims, sizeof in[i].dims);
    }
    for (int i = 0; i < noutputs; i++) out[i].data = outputs[i].data;
#if MTMI_HAVE_CUDA
    mtmi_status s = p->cuda ? mt_cuda_plan_run((mt_cuda_plan *)p->cuda, in, ninputs, out, noutputs)
                            : mt_cpu_plan_run(p->cpu, in, ninputs, out, noutputs);
#else
    mtmi_status s = mt_cpu_plan_run(p->cpu, in, ninputs, out, noutputs);
#endif
    if (s) return s;
    for (int i = 0; i < noutputs; i++) {
        outputs[i].dtype = out[i].dtype;
        outputs[i].rank = out[i].rank;
        memcpy(outputs[i].dims, out[i].dims, sizeof out[i].dims);
    }
    return MTMI_OK;
}

/* ---------------------------------------------------------------- profile */
void mt_plan_set_profile(mtmi_plan *p, int on) {
    if (p && p->cpu) mt_cpu_plan_set_profile(p->cpu, on);
}

typedef struct prof_row {
    char key[200];
    double ms;
    int n;
} prof_row;

static int cmp_prof(const void *a, const void *b) {
    const prof_row *x = a, *y = b;
    return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : 0;
}

char *mt_plan_profile_report(const mtmi_plan *p, int top) {
    int cnt = 0;
    const double *ms = p && p->cpu ? mt_cpu_plan_node_ms(p->cpu, &cnt) : NULL;
    const mt_graph *g = p ? p->graph : NULL;
    if (!ms || !g || cnt != g->nnodes) return NULL;
    prof_row *ops = calloc(cnt + 1, sizeof *ops), *nodes = calloc(cnt + 1, sizeof *nodes);
    strbuf b = {0};
    if (!ops || !nodes) goto done;
    int nops = 0;
    double total = 0;
    for (int i = 0; i < cnt; i++) {
        const mt_node *n = &g->nodes[i];
        const char *act = mt_attr_string(n, "activation", "");
        char key[96];
        /* activations fused into a node are part of its cost: show them */
        snprintf(key, sizeof key, "%s%s%s", n->op, act[0] ? "+" : "", act);
        int j;
        for (j = 0; j < nops; j++)
            if (!strcmp(ops[j].key, key)) break;
        if (j == nops) snprintf(ops[nops++].key, sizeof ops[0].key, "%s", key);
        ops[j].ms += ms[i];
        ops[j].n++;
        snprintf(nodes[i].key, sizeof nodes[i].key, "%s (%s)", n->name && n->name[0] ? n->name : "?", key);
        nodes[i].ms = ms[i];
        nodes[i].n = 1;
        total += ms[i];
    }
    qsort(ops, nops, sizeof *ops, cmp_prof);
    qsort(nodes, cnt, sizeof *nodes, cmp_prof);
    sb_printf(&b, "profile of the last run: %.2f ms in %d nodes\n", total, cnt);
    sb_printf(&b, "  %-28s %6s %10s %6s\n", "op", "nodes", "ms", "%");
    for (int j = 0; j < nops && j < top; j++)
        sb_printf(&b, "  %-28s %6d %10.2f %5.1f%%\n", ops[j].key, ops[j].n, ops[j].ms, total > 0 ? 100 * ops[j].ms / total : 0);
    sb_printf(&b, "  slowest nodes:\n");
    for (int j = 0; j < cnt && j < top; j++) sb_printf(&b, "  %10.2f ms  %s\n", nodes[j].ms, nodes[j].key);
done:
    free(ops);
    free(nodes);
    return b.s;
}
