/* The public API over the graph layer and the backends. */
#include "api/api.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backend/registry.h"
#include "cpu/cpu.h"
#include "onnx/onnx.h"
#include "quant/quant.h"

/* The header's version compiled into the library: a program compares it
 * with its own MTMI_VERSION to see which library it was given. */
const char *mtmi_version(void) { return MTMI_VERSION; }

/* ------------------------------------------------------------------ model */
mtmi_status mtmi_model_load(const char *path, const mtmi_load_options *opt, mtmi_model **out) {
    if (!path || !out) return mt_fail(MTMI_ERR_ARG, "mtmi_model_load: NULL argument");
    *out = NULL;
    mt_clear_error();
    return mt_model_load(path, opt, out);
}

void mtmi_model_free(mtmi_model *m) { mt_model_free(m); }

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

char *mtmi_model_describe(mtmi_model *m) { return mt_model_describe_ex(m, NULL, 0, NULL); }

char *mt_model_describe_ex(mtmi_model *m, const mtmi_tensor *shapes, int nshapes, const mt_tuning *tuning) {
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
    if (m->qdq) /* imported at load: the ops below are the float graph's */
        sb_printf(&b, "Q/DQ model: %d quantized tensors (%d QuantizeLinear/DequantizeLinear pairs), %d quantized constants "
                      "dequantized; int8 stages use these scales\n",
                  m->qdq->scales.n, m->qdq->pairs, m->qdq->weights);
    op_histogram(&b, g, "ops as loaded");
    /* The model's own cost is counted on the folded graph before fusion:
     * some rewrites (e.g. moving a 1x1 conv ahead of an upsample) change
     * the arithmetic, and users compare with what they exported.  What the
     * optimized plan executes is reported after it. */
    mt_graph *folded = NULL, *opt = NULL;
    if (mt_model_specialize_ex(m, shapes, nshapes, 0, tuning, &folded) != MTMI_OK ||
        mt_model_specialize_ex(m, shapes, nshapes, 1, tuning, &opt) != MTMI_OK) {
        sb_printf(&b, "optimized: not available (%s)\n", mtmi_last_error());
        mt_graph_free(folded);
        return b.s;
    }
    op_histogram(&b, opt, "ops optimized");
    if (m->qdq) sb_printf(&b, "int8 layers: %d (the Q/DQ model's convolutions and linear layers)\n", mt_quant_count(opt, &m->qdq->scales));
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

/* ------------------------------------------------------------------- plan
 * A plan is a one-stage use of the backend interface (backend/registry.h):
 * the device string goes through the one device grammar, the backend of
 * its kind compiles the graph, runs are the backend's synchronous run. */
struct mtmi_plan {
    mt_graph *graph;
    mt_plan *plan;
    mt_tuning tuning;
};

/* The device and precision: the precision in the device string
 * ("cuda:0/fp16") or in options.precision (they must agree), else fp32,
 * the API's default on every device; int8 for a Q/DQ model, which states
 * its own precision (quant.h, "Q/DQ import"; *implicit = 1 then). */
static mtmi_status plan_device(const mtmi_model *m, const mtmi_plan_options *opt, mt_devspec *d, int *implicit) {
    const char *dev = opt && opt->device ? opt->device : "cpu";
    const char *prec = opt ? opt->precision : NULL;
    mtmi_status s = mt_devspec_parse(dev, d);
    if (s) return s;
    mt_precision p = m->qdq ? MT_PREC_INT8 : MT_PREC_FP32;
    if (prec && (s = mt_precision_parse(prec, &p))) return s;
    if (mt_devspec_has_precision(dev) && prec && p != d->prec)
        return mt_fail(MTMI_ERR_ARG, "device '%s' and precision '%s' disagree", dev, prec);
    if (!mt_devspec_has_precision(dev)) d->prec = p;
    *implicit = m->qdq && !prec && !mt_devspec_has_precision(dev);
    if (d->prec == MT_PREC_INT8 && !(opt && opt->calibration_cache) && !m->qdq)
        return mt_fail(MTMI_ERR_ARG, "precision int8 needs a calibration cache (mtmi_plan_options.calibration_cache) or a model "
                                     "quantized with QuantizeLinear / DequantizeLinear nodes");
    return mt_device_supports(d, NULL);
}

mtmi_status mtmi_plan_create(mtmi_model *m, const mtmi_plan_options *opt, mtmi_plan **out) {
    if (!m || !out) return mt_fail(MTMI_ERR_ARG, "mtmi_plan_create: NULL argument");
    *out = NULL;
    mt_clear_error();
    mt_devspec d;
    int implicit = 0;
    mtmi_status s = plan_device(m, opt, &d, &implicit);
    if (s) return s;
    mtmi_plan *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    if ((s = mt_tuning_parse(opt ? opt->tuning : NULL, &p->tuning))) {
        free(p);
        return s;
    }
    /* A calibration cache names the standard graph's tensors: INT8 plans
     * specialize without the opt-in graph rewrite (core/tuning.h). */
    mt_tuning spec = p->tuning;
    if (d.prec == MT_PREC_INT8) spec.fuse_concat = 0;
    const mtmi_tensor *shapes = opt ? opt->input_shapes : NULL;
    const int nshapes = opt ? opt->num_input_shapes : 0;
    s = mt_model_specialize_ex(m, shapes, nshapes, 1, &spec, &p->graph);
    /* int8: with a calibration cache, the heads' convolutions in INT8 (the
     * nodes not shared by several outputs); without, the layers a Q/DQ
     * model quantized, wherever they are (the cache wins over the model's
     * scales: it was asked for).  Everything else in the device's float
     * precision (fp32 on the CPU, fp16 on a GPU). */
    if (!s && d.prec == MT_PREC_INT8)
        s = opt && opt->calibration_cache ? mt_quant_plan_graph(m->graph, p->graph, opt->calibration_cache, NULL)
                                          : mt_quant_qdq_plan_graph(p->graph, &m->qdq->scales, NULL);
    if (!s && d.prec == MT_PREC_INT8) s = mt_quant_apply_tuning(p->graph, &p->tuning);
    /* A Q/DQ model's own int8 on a GPU that cannot run its quantized
     * layers (the CUDA backend has no grouped INT8 convolution yet): the
     * GPU's FP16 instead of an error, as nobody asked for int8. */
    if (!s && implicit && d.kind == MT_DEV_CUDA && mt_device_supports(&d, p->graph)) {
        mt_clear_error();
        mt_graph_free(p->graph);
        p->graph = NULL;
        d.prec = MT_PREC_FP16;
        s = mt_model_specialize_ex(m, shapes, nshapes, 1, &spec, &p->graph);
    }
    mt_stage_cfg cfg = {.threads = opt ? opt->threads : 0, .graph_quantized = 1, .tuning = &p->tuning};
    if (!s) s = mt_plan_create(NULL, &d, p->graph, &cfg, &p->plan);
    if (s) {
        mtmi_plan_free(p);
        return s;
    }
    *out = p;
    return MTMI_OK;
}

void mtmi_plan_free(mtmi_plan *p) {
    if (!p) return;
    mt_plan_free(p->plan);
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
    mtmi_status s = mt_plan_run(p->plan, in, ninputs, out, noutputs);
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
    if (p && p->plan->be->set_profile) p->plan->be->set_profile(p->plan->impl, on);
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
    const double *ms = p && p->plan->be->node_ms ? p->plan->be->node_ms(p->plan->impl, &cnt) : NULL;
    const mt_graph *g = p ? p->plan->graph : NULL;
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
