/* Operator dispatch: which planner handles which node. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/plan_int.h"

/* ------------------------------------------------------------ dispatch */
/* Which planner handles which operator: plan_node dispatches on this table
 * and mt_cuda_graph_supported (mt_backend.supports) asks it, so the two
 * never disagree about an operator. */
typedef mtmi_status (*plan_fn)(mc_plan *p, int i);
typedef struct op_entry {
    int mtmi;           /* 1: domain "mtmi"; 0: the ONNX domain */
    const char *op;
    plan_fn plan;
} op_entry;
static const op_entry g_ops[] = {
    {1, "FusedConv", mc_plan_conv},      {1, "Linear", mc_plan_linear},       {1, "Attention", mc_plan_mtmi_attention},
    {1, "Gelu", mc_plan_ew},             {1, "QConv", mc_plan_qconv},         {1, "QLinear", mc_plan_qconv},
    {1, "Preprocess", mc_plan_preprocess}, {1, "ClassMap", mc_plan_classmap}, {1, "SymQuant", mc_plan_symquant},
    {1, "QuantizeNHWC", mc_plan_quantize_nhwc}, {1, "HalfNHWC", mc_plan_half_nhwc},
    {1, "FromHalfNHWC", mc_plan_from_half_nhwc}, {1, "QUpsampleSum", mc_plan_qupsample_sum},
    {0, "Reshape", mc_plan_reshape},     {0, "Flatten", mc_plan_reshape},     {0, "Squeeze", mc_plan_reshape},
    {0, "Unsqueeze", mc_plan_reshape},   {0, "Identity", mc_plan_reshape},    {0, "Dropout", mc_plan_reshape},
    {0, "Transpose", mc_plan_transpose}, {0, "Expand", mc_plan_expand},       {0, "Cast", mc_plan_cast},
    {0, "Slice", mc_plan_slice},         {0, "Split", mc_plan_split},         {0, "Gather", mc_plan_gather},
    {0, "Concat", mc_plan_concat},       {0, "MatMul", mc_plan_matmul},       {0, "Gemm", mc_plan_gemm},
    {0, "Conv", mc_plan_conv},           {0, "LayerNormalization", mc_plan_layernorm},
    {0, "Softmax", mc_plan_softmax},     {0, "Resize", mc_plan_resize},       {0, "Upsample", mc_plan_resize},
    {0, NULL, NULL}};

static int is_onnx_domain(const mt_node *n) { return !n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx"); }

/* The planner of node n, or NULL with *why saying what is missing.  The
 * elementwise ops (g_ew, float outputs only) come first, as before. */
static plan_fn find_planner(const mt_graph *g, const mt_node *n, const char **why) {
    const int mtmi = n->domain && !strcmp(n->domain, "mtmi");
    if (!mtmi && !is_onnx_domain(n)) return *why = "operator domain", NULL;
    /* mc_plan_qconv's limit, answered here too so that supports() can steer
     * a Q/DQ model's automatic placement away from it */
    if (mtmi && !strcmp(n->op, "QConv") && mt_attr_int(n, "group", 1) != 1) return *why = "grouped INT8 convolution", NULL;
    if (mc_ew_supported(g, n)) return mc_plan_ew;
    for (const op_entry *e = g_ops; e->op; e++)
        if (e->mtmi == mtmi && !strcmp(e->op, n->op)) return e->plan;
    *why = mtmi ? "unknown mtmi operator" : "no GPU kernel for this operator";
    return NULL;
}

mtmi_status mc_plan_node(mc_plan *p, int i) {
    const char *why = NULL;
    plan_fn f = find_planner(p->g, mc_node(p, i), &why);
    return f ? f(p, i) : mc_unsupported(p, i, why);
}

mtmi_status mt_cuda_graph_supported(const mt_graph *g) {
    char desc[256];
    const char *why = NULL;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (!n->dead && !find_planner(g, n, &why))
            return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: not supported by the CUDA backend: %s", mt_node_desc(g, n, desc, sizeof desc), why);
    }
    return MTMI_OK;
}
