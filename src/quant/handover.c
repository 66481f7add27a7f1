/* The encoder's features handed to INT8 heads as int8 (a pipeline's stage
 * graphs, after the split and the heads' INT8 rewrite).
 *
 * An INT8 head's QConvs quantize their float input first.  When a cut
 * tensor (a feature the encoder stage outputs) is read in every INT8 head
 * only by QConvs of one input scale, the quantize can move to the encoder:
 * the encoder graph gets mtmi.QuantizeNHWC(feature) -> int8 [N,H,W,C] as a
 * new output, and those heads take that int8 tensor as their input and
 * their QConvs read the codes as they are (graph/qops.h).  The integers
 * are the ones each QConv made (the same quantize of the same values), so
 * the outputs are the same bits; the cut tensor is a quarter of its FP32
 * bytes, and each feature is quantized once instead of once per head (on a
 * GPU the encoder's LayerNorm writes the codes itself, cuda/fuse_qln.c).
 * As the original deployment did: the accelerators got int8 features.
 *
 * Taken only where the codes can be used in place: rank 4, channels a
 * multiple of 32 (the GPU kernels' padded width), a head reading the
 * feature only through QConvs (not QLinear, groups of 1) of the same
 * scale.  A float feature another head still reads stays an encoder output
 * too. */
#include "quant/quant.h"

#include <stdlib.h>
#include <string.h>

/* The scale with which every live reader of value v in g quantizes it, or
 * 0 when some reader is not a QConv that could take the codes in place. */
static float qconv_scale_of(const mt_graph *g, int v) {
    const mt_value *x = &g->values[v];
    if (x->dtype != MTMI_FLOAT || x->rank != 4 || x->dims[1] % 32 || x->dims[1] <= 0) return 0.0f;
    float s = 0.0f;
    int readers = 0;
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int j = 0; j < n->nin; j++) {
            if (n->in[j] != v) continue;
            const float xs = mt_attr_float(n, "x_scale", 0);
            if (j != 0 || !n->domain || strcmp(n->domain, "mtmi") || strcmp(n->op, "QConv") || mt_attr_int(n, "group", 1) != 1 ||
                !(xs > 0) || (readers && memcmp(&xs, &s, sizeof s)))
                return 0.0f;
            s = xs;
            readers++;
        }
    }
    return readers ? s : 0.0f;
}

/* head: input `in` (value v) replaced by a new int8 NHWC input named `name`
 * that its QConvs read in place of v */
static mtmi_status head_takes_codes(mt_graph *h, int in, const char *name) {
    const int v = h->inputs[in];
    const int q = mt_graph_add_nhwc_value(h, name, MTMI_INT8, v);
    if (q < 0) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    h->values[q].is_input = 1;
    h->values[q].producer = -1;
    for (int i = 0; i < h->nnodes; i++)
        for (int j = 0; j < h->nodes[i].nin; j++)
            if (h->nodes[i].in[j] == v) h->nodes[i].in[j] = q;
    h->values[v].is_input = 0;
    h->inputs[in] = q;
    return MTMI_OK;
}

/* encoder: QuantizeNHWC(value v) -> a new output `name` */
static mtmi_status encoder_gives_codes(mt_graph *e, int v, float scale, const char *name) {
    const int q = mt_graph_add_nhwc_value(e, name, MTMI_INT8, v);
    const int nd = q < 0 ? -1 : mt_graph_add_mtmi_node(e, "QuantizeNHWC", name, v, q);
    if (nd < 0 || mt_node_set_float(&e->nodes[nd], "scale", scale)) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    return mt_graph_add_output(e, q);
}

mtmi_status mt_quant_handover(mt_graph *enc, mt_graph *const *heads, int nheads, int *made) {
    if (made) *made = 0;
    const int ncut = enc->noutputs;
    int *cut = malloc(sizeof(int) * (size_t)(ncut + 1));
    unsigned char *takes = malloc((size_t)nheads + 1); /* per head: takes this feature's codes */
    if (!cut || !takes) {
        free(cut);
        free(takes);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    memcpy(cut, enc->outputs, sizeof(int) * (size_t)ncut);
    mtmi_status s = MTMI_OK;
    for (int c = 0; c < ncut && !s; c++) {
        const char *fname = enc->values[cut[c]].name;
        char qname[300];
        snprintf(qname, sizeof qname, "%s.int8_nhwc", fname);
        if (mt_graph_find_value(enc, qname) >= 0) continue; /* a name the model already uses: leave it */
        /* the heads that take the codes: those reading the feature only
         * through QConvs of the first such head's scale (and not already
         * using the codes' name); every other reader keeps the float */
        float scale = 0.0f;
        int takers = 0, float_readers = 0;
        for (int k = 0; k < nheads; k++) {
            const int in = mt_graph_find_input(heads[k], fname);
            const float hs = in < 0 ? 0.0f : qconv_scale_of(heads[k], heads[k]->inputs[in]);
            takes[k] = hs > 0 && (!takers || !memcmp(&hs, &scale, sizeof hs)) && mt_graph_find_value(heads[k], qname) < 0;
            if (takes[k]) scale = hs, takers++;
            else float_readers += in >= 0;
        }
        if (!takers) continue;
        for (int k = 0; k < nheads && !s; k++)
            if (takes[k]) s = head_takes_codes(heads[k], mt_graph_find_input(heads[k], fname), qname);
        if (!s) s = encoder_gives_codes(enc, cut[c], scale, qname);
        /* no head reads the float feature any more: no longer an output */
        if (!s && !float_readers) mt_graph_drop_output(enc, cut[c]);
        if (!s && made) (*made)++;
    }
    free(cut);
    free(takes);
    for (int k = 0; k < nheads && !s; k++) s = mt_graph_compact(heads[k]);
    if (!s) s = mt_graph_compact(enc);
    return s;
}
