/* Result forms: an output's class map, int8 or FP16 form computed by nodes
 * appended to the graph (mtmi.ClassMap, mtmi.SymQuant, Cast), so that they
 * run on the device of the stage that makes the output and only the form
 * asked for crosses the bus (`mtmi run --save classes,depth`: 1 MB of class
 * indices instead of 80 MB of float logits a 1024x1024 frame). */
#include "graph/graph.h"

#include <stdlib.h>
#include <string.h>

const char *mt_form_name(unsigned form) {
    switch (form) {
    case MT_FORM_FLOAT: return "float";
    case MT_FORM_FP16: return "fp16";
    case MT_FORM_INT8: return "int8";
    case MT_FORM_CLASSES: return "classes";
    default: return "?";
    }
}

/* A value "<base>:<suffix>" (unique) of the given type and shape. */
static int form_value(mt_graph *g, const char *base, const char *suffix) {
    char name[512];
    snprintf(name, sizeof name, "%s:%s", base, suffix);
    return mt_graph_find_value(g, name) < 0 ? mt_graph_add_value(g, name) : mt_graph_add_value_unique(g, name);
}

/* Appends one node computing `form` of value x; its outputs go to out[]
 * (two for INT8).  Returns the count, or -1. */
static int add_form(mt_graph *g, int x, unsigned form, int out[2]) {
    char base[400], name[512];
    snprintf(base, sizeof base, "%s", g->values[x].name);
    const char *op = form == MT_FORM_FP16 ? "Cast" : form == MT_FORM_INT8 ? "SymQuant" : "ClassMap";
    int n = 0;
    out[n++] = form_value(g, base, mt_form_name(form));
    if (form == MT_FORM_INT8) out[n++] = form_value(g, base, "scale");
    for (int k = 0; k < n; k++)
        if (out[k] < 0) return -1;
    snprintf(name, sizeof name, "%s_to_%s", base, mt_form_name(form));
    int nd = mt_graph_add_node(g, op, name, &x, 1, out, n);
    if (nd < 0) return -1;
    mt_node *node = &g->nodes[nd];
    if (form == MT_FORM_FP16) {
        if (mt_node_set_int(node, "to", MTMI_FLOAT16)) return -1;
    } else {
        free(node->domain);
        if (!(node->domain = mt_strdup("mtmi"))) return -1;
    }
    const mt_op_schema *sc = mt_op_find(node->domain, node->op);
    if (!sc || sc->infer(g, node)) return -1;
    return n;
}

int mt_graph_output_forms(mt_graph *g, const unsigned *forms, int *src_output, unsigned *form_of, int cap) {
    static const unsigned order[] = {MT_FORM_FLOAT, MT_FORM_FP16, MT_FORM_INT8, MT_FORM_CLASSES};
    const int nold = g->noutputs;
    int *outs = malloc(sizeof(int) * (4 * (size_t)nold + 8));
    if (!outs) return mt_fail(MTMI_ERR_NOMEM, "out of memory"), -1;
    int nnew = 0;
    for (int i = 0; i < nold; i++) {
        const int x = g->outputs[i];
        const unsigned f = forms[i];
        if (f & ~(unsigned)MT_FORM_ALL) {
            free(outs);
            return mt_fail(MTMI_ERR_ARG, "output '%s': unknown result form 0x%x", g->values[x].name, f), -1;
        }
        if ((f & ~(unsigned)MT_FORM_FLOAT) && g->values[x].dtype != MTMI_FLOAT) {
            free(outs);
            return mt_fail(MTMI_ERR_SHAPE, "output '%s' is %s; fp16, int8 and class-map results are made from float outputs",
                           g->values[x].name, mt_dtype_name(g->values[x].dtype)), -1;
        }
        for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
            if (!(f & order[k])) continue;
            int o[2], n = 1;
            if (order[k] == MT_FORM_FLOAT) o[0] = x;
            else if ((n = add_form(g, x, order[k], o)) < 0) {
                free(outs);
                const char *m = mtmi_last_error();
                return mt_fail(MTMI_ERR_NOMEM, "output '%s': cannot add its %s form%s%s", g->values[x].name,
                               mt_form_name(order[k]), m && *m ? ": " : "", m ? m : ""), -1;
            }
            for (int j = 0; j < n; j++) {
                if (nnew < cap && src_output) src_output[nnew] = i;
                if (nnew < cap && form_of) form_of[nnew] = order[k];
                outs[nnew++] = o[j];
            }
        }
    }
    for (int i = 0; i < nold; i++) g->values[g->outputs[i]].is_output = 0;
    for (int i = 0; i < nnew; i++) g->values[outs[i]].is_output = 1;
    free(g->outputs);
    g->outputs = outs;
    g->noutputs = nnew;
    if (mt_pass_dce(g)) return -1;
    return nnew;
}
