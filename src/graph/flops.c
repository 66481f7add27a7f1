/* FLOP counts by op (multiply-add = 2), from inferred shapes. */
#include "graph/ops.h"

#include <string.h>

double mt_node_flops(const mt_graph *gc, const mt_node *n) {
    mt_graph *g = (mt_graph *)gc;
    mt_value *y = mt_out(g, n, 0);
    if (!y || y->rank < 0) return 0;
    double out = (double)mt_value_numel(y);
    const char *op = n->op;
    if (!strcmp(op, "Conv") || !strcmp(op, "FusedConv")) {
        mt_value *w = mt_in(g, n, 1);
        if (!w || w->rank < 3) return 0;
        double k = 1;
        for (int i = 1; i < w->rank; i++) k *= (double)w->dims[i]; /* (C/group) * kh * kw */
        return 2.0 * out * k;
    }
    if (!strcmp(op, "ConvTranspose")) {
        mt_value *x = mt_in(g, n, 0), *w = mt_in(g, n, 1);
        if (!x || !w || w->rank < 3) return 0;
        double k = 1;
        for (int i = 1; i < w->rank; i++) k *= (double)w->dims[i];
        return 2.0 * (double)mt_value_numel(x) * k;
    }
    if (!strcmp(op, "MatMul") || !strcmp(op, "Gemm") || !strcmp(op, "FusedMatMul") || !strcmp(op, "Linear")) {
        mt_value *a = mt_in(g, n, 0);
        if (!a || a->rank < 1) return 0;
        double kdim = (double)a->dims[a->rank - 1];
        if (!strcmp(op, "Gemm") && mt_attr_int(n, "transA", 0)) kdim = (double)a->dims[0];
        return 2.0 * out * kdim;
    }
    if (!strcmp(op, "Attention")) { /* mtmi.Attention: q [B,H,N,d], k [B,H,M,d] */
        mt_value *q = mt_in(g, n, 0), *k = mt_in(g, n, 1);
        if (!q || !k || q->rank != 4) return 0;
        return 4.0 * (double)q->dims[0] * q->dims[1] * q->dims[2] * k->dims[2] * q->dims[3];
    }
    return 0;
}
