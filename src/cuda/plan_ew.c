/* Elementwise operators: chains of pointwise ops (with broadcasting
 * inputs) become one MC_EW step running a small program (mtk_prog). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/plan_int.h"

/* ------------------------------------------------------- elementwise */
typedef struct ew_def { const char *op; int code; int arity; } ew_def;
static const ew_def g_ew[] = {
    {"Add", MTK_OP_ADD, 2}, {"Sub", MTK_OP_SUB, 2}, {"Mul", MTK_OP_MUL, 2}, {"Div", MTK_OP_DIV, 2},
    {"Pow", MTK_OP_POW, 2}, {"Max", MTK_OP_MAX, 2}, {"Min", MTK_OP_MIN, 2}, {"Relu", MTK_OP_RELU, 1},
    {"Sigmoid", MTK_OP_SIGMOID, 1}, {"Erf", MTK_OP_ERF, 1}, {"Tanh", MTK_OP_TANH, 1}, {"Exp", MTK_OP_EXP, 1},
    {"Log", MTK_OP_LOG, 1}, {"Sqrt", MTK_OP_SQRT, 1}, {"Neg", MTK_OP_NEG, 1}, {"Abs", MTK_OP_ABS, 1},
    {"Reciprocal", MTK_OP_RECIP, 1}, {"Floor", MTK_OP_FLOOR, 1}, {"Ceil", MTK_OP_CEIL, 1}, {"Sin", MTK_OP_SIN, 1},
    {"Cos", MTK_OP_COS, 1}, {"Gelu", MTK_OP_GELU, 1}, {"Clip", MTK_OP_CLIP, 1}, {"LeakyRelu", MTK_OP_LEAKY, 1},
    {"HardSigmoid", MTK_OP_HSIGMOID, 1}, {NULL, 0, 0}};

static const ew_def *ew_def_for(const mt_graph *g, const mt_node *n) {
    int dom_onnx = !n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx");
    int dom_mtmi = n->domain && !strcmp(n->domain, "mtmi");
    if (!dom_onnx && !(dom_mtmi && !strcmp(n->op, "Gelu"))) return NULL;
    if (n->nout < 1 || n->out[0] < 0 || !mc_is_float(g->values[n->out[0]].dtype)) return NULL;
    if ((!strcmp(n->op, "Max") || !strcmp(n->op, "Min")) && n->nin != 2) return NULL;
    if (!strcmp(n->op, "Gelu") && dom_onnx && strcmp(mt_attr_string(n, "approximate", "none"), "none")) return NULL;
    for (const ew_def *d = g_ew; d->op; d++)
        if (!strcmp(d->op, n->op)) return d;
    return NULL;
}

static const ew_def *ew_find(mc_plan *p, const mt_node *n) { return ew_def_for(p->g, n); }

mtmi_status mc_plan_ew(mc_plan *p, int i) {
    mtk_prog prog;
    memset(&prog, 0, sizeof prog);
    int ext_v[MTK_MAX_IN], ext_reg[MTK_MAX_IN], next = 0;
    int map_v[MTK_MAX_INSTR], map_r[MTK_MAX_INSTR], nmap = 0;
    int nreg = 0;
    int cur = i;
    const mt_value *ov = mc_val(p, mc_node(p, i)->out[0]);
    for (;;) {
        const mt_node *n = mc_node(p, cur);
        const ew_def *d = ew_find(p, n);
        int ra[2] = {0, 0};
        for (int k = 0; k < d->arity; k++) {
            int v = n->in[k];
            int r = -1;
            for (int j = 0; j < nmap; j++)
                if (map_v[j] == v) r = map_r[j];
            for (int j = 0; j < next && r < 0; j++)
                if (ext_v[j] == v) r = ext_reg[j];
            float f;
            if (r < 0 && mc_scalar_const(p, v, &f)) {
                mtk_instr *in = &prog.ins[prog.n++];
                memset(in, 0, sizeof *in);
                in->op = MTK_OP_IMM;
                in->dst = r = nreg++;
                in->imm = f;
            } else if (r < 0) {
                if (next == MTK_MAX_IN) return mt_fail(MTMI_ERR_INTERNAL, "too many inputs in a fused chain");
                mtk_instr *in = &prog.ins[prog.n++];
                memset(in, 0, sizeof *in);
                in->op = MTK_OP_LOAD;
                in->a = next;
                in->dst = r = nreg++;
                ext_v[next] = v;
                ext_reg[next++] = r;
            }
            ra[k] = r;
        }
        mtk_instr *in = &prog.ins[prog.n++];
        memset(in, 0, sizeof *in);
        in->op = d->code;
        in->a = ra[0];
        in->b = ra[1];
        in->dst = nreg++;
        if (d->code == MTK_OP_CLIP) {
            float lo = -INFINITY, hi = INFINITY, f;
            if (n->nin > 1 && n->in[1] >= 0) {
                if (!mc_scalar_const(p, n->in[1], &f)) return mc_unsupported(p, cur, "Clip with a non-constant min");
                lo = f;
            } else lo = mt_attr_float(n, "min", -INFINITY);
            if (n->nin > 2 && n->in[2] >= 0) {
                if (!mc_scalar_const(p, n->in[2], &f)) return mc_unsupported(p, cur, "Clip with a non-constant max");
                hi = f;
            } else hi = mt_attr_float(n, "max", INFINITY);
            in->imm = lo;
            in->imm2 = hi;
        } else if (d->code == MTK_OP_LEAKY) in->imm = mt_attr_float(n, "alpha", 0.01f);
        else if (d->code == MTK_OP_HSIGMOID) {
            in->imm = mt_attr_float(n, "alpha", 0.2f);
            in->imm2 = mt_attr_float(n, "beta", 0.5f);
        }
        prog.result = in->dst;
        map_v[nmap] = n->out[0];
        map_r[nmap++] = in->dst;
        /* extend the chain */
        int c = mc_sole_consumer(p, n->out[0]);
        if (c < 0 || p->skip[c] || !ew_find(p, mc_node(p, c))) break;
        const mt_node *cn = mc_node(p, c);
        if (!mc_same_dims(mc_val(p, cn->out[0]), ov)) break;
        int ok = 1, newext = 0;
        for (int k = 0; k < cn->nin; k++) {
            if (!mc_available(p, cn->in[k]) && cn->in[k] != n->out[0]) ok = 0;
            if (cn->in[k] >= 0 && cn->in[k] != n->out[0] && !mc_val(p, cn->in[k])->data) newext++;
        }
        if (!ok || prog.n + 6 > MTK_MAX_INSTR || nreg + 4 > MTK_MAX_REG || next + newext > MTK_MAX_IN) break;
        p->skip[c] = 1;
        cur = c;
        ov = mc_val(p, cn->out[0]);
    }
    int out_v = mc_node(p, cur)->out[0];
    const mt_value *oval = mc_val(p, out_v);
    mc_tref ins[MTK_MAX_IN];
    const mc_tref *like = NULL;
    for (int k = 0; k < next; k++) {
        mc_tref t;
        TRY(mc_get(p, ext_v[k], &t));
        if (t.st != mc_storage_of(p, oval->dtype)) return mc_unsupported(p, i, "mixed element types");
        mc_broadcast_to(&t, oval->rank, oval->dims, &ins[k]);
        if (!like && mc_same_dims(mc_val(p, ext_v[k]), oval)) like = &p->vt[ext_v[k]];
    }
    mc_tref o;
    TRY(mc_dest_for(p, out_v, like, &o));
    mc_step *s = mc_new_step(p, MC_EW, cur);
    if (!s) return NOMEM();
    s->prog = prog;
    s->t[0] = o;
    for (int k = 0; k < next; k++) s->t[1 + k] = ins[k];
    s->nt = 1 + next;
    mc_set(p, out_v, &o);
    return MTMI_OK;
}

int mc_ew_supported(const mt_graph *g, const mt_node *n) { return ew_def_for(g, n) != NULL; }
