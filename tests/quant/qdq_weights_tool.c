/* qdq_weights_tool MODEL: for a Q/DQ model, checks the claim of
 * src/quant/qdq_import.c that the INT8 rewrite, which derives each output
 * channel's weight scale as max |w| / 127 from the weights the import
 * folded to float (q * s), gives back the model's own int8 weights, and
 * its int32 biases from the folded biases.  For every mtmi.QConv /
 * mtmi.QLinear of the model's int8 plan graph (as mtmi_plan_create makes
 * it, at the declared input shapes), the node of the same name in the file
 * as read without the import is found, and its weight and bias
 * DequantizeLinear inputs are compared with the node's Wq and Bq, value by
 * value.  Prints one line per layer and a summary; exit 0 when every value
 * is identical, 1 otherwise, 2 on errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "onnx/onnx.h"
#include "quant/quant.h"

/* The constant behind input k of node n in the raw graph: the int8/int32
 * tensor its DequantizeLinear reads, or NULL. */
static const mt_value *dq_source(const mt_graph *g, const mt_node *n, int k) {
    if (k >= n->nin || n->in[k] < 0) return NULL;
    int p = g->values[n->in[k]].producer;
    if (p < 0 || strcmp(g->nodes[p].op, "DequantizeLinear") || g->nodes[p].in[0] < 0) return NULL;
    const mt_value *v = &g->values[g->nodes[p].in[0]];
    return v->data ? v : NULL;
}

static const mt_node *find_node(const mt_graph *g, const char *name) {
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].name && !strcmp(g->nodes[i].name, name)) return &g->nodes[i];
    return NULL;
}

/* Differences between Wq [M][K] and the model's int8 weights (conv layout
 * [M][K], or [K][M] for a linear layer's MatMul). */
static int64_t weight_diffs(const int8_t *wq, const mt_value *src, int linear, int64_t M, int64_t K) {
    const int8_t *w = src->data;
    int64_t bad = 0;
    for (int64_t c = 0; c < M; c++)
        for (int64_t k = 0; k < K; k++) bad += wq[c * K + k] != (linear ? w[k * M + c] : w[c * K + k]);
    return bad;
}

static int64_t bias_diffs(const int32_t *bq, const mt_value *src, int64_t M) {
    int64_t bad = 0;
    for (int64_t c = 0; c < M; c++) bad += bq[c] != ((const int32_t *)src->data)[c];
    return bad;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: qdq_weights_tool MODEL.onnx\n");
        return 2;
    }
    mtmi_model *m = NULL;
    mt_graph *raw = NULL, *g = NULL;
    if (mt_model_load(argv[1], NULL, &m) || mt_onnx_load(argv[1], NULL, &raw) || !m->qdq ||
        mt_model_specialize(m, NULL, 0, 1, &g) || mt_quant_qdq_plan_graph(g, &m->qdq->scales, NULL)) {
        fprintf(stderr, "qdq_weights_tool: %s\n", m && !m->qdq ? "not a Q/DQ model" : mtmi_last_error());
        return 2;
    }
    int layers = 0, wsame = 0, bsame = 0, nbias = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        int linear = !strcmp(n->op, "QLinear");
        if (!linear && strcmp(n->op, "QConv")) continue;
        const mt_node *r = n->name ? find_node(raw, n->name) : NULL;
        const mt_value *w = r ? dq_source(raw, r, 1) : NULL, *b = r ? dq_source(raw, r, 2) : NULL;
        const mt_value *wq = &g->values[n->in[1]], *bq = &g->values[n->in[2]];
        int64_t M = wq->dims[0], K = mt_value_numel(wq) / M;
        layers++;
        if (!w || w->dtype != MTMI_INT8 || mt_value_numel(w) != M * K) {
            printf("%s: no int8 weights of this shape in the file\n", n->name ? n->name : "?");
            continue;
        }
        int64_t dw = weight_diffs(wq->data, w, linear, M, K), db = -1;
        if (b && b->dtype == MTMI_INT32 && mt_value_numel(b) == M) db = bias_diffs(bq->data, b, M), nbias++;
        wsame += dw == 0;
        bsame += db == 0;
        printf("%s: %lld weights, %lld differ; %s\n", n->name, (long long)(M * K), (long long)dw,
               db < 0 ? "no int32 bias" : db ? "bias differs" : "bias identical");
    }
    printf("%d quantized layers: int8 weights identical in %d, int32 biases identical in %d of %d\n", layers, wsame, bsame, nbias);
    mt_graph_free(g);
    mt_graph_free(raw);
    mt_model_free(m);
    return layers > 0 && wsame == layers && bsame == nbias ? 0 : 1;
}
