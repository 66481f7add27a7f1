/* FP16 features handed from a GPU encoder to GPU heads in the layout and
 * precision both plans keep them in.
 *
 * A cut tensor is a graph value, float [N,C,H,W], and a stage's inputs and
 * outputs are in graph types and row-major order.  A CUDA FP16 plan holds
 * the feature as float16 NHWC, so the encoder converted it to FP32 NCHW
 * for the cut (a transposing copy, twice the bytes) and each head converted
 * it back.  Here the encoder graph gets mtmi.HalfNHWC(feature) ->
 * "<name>.f16_nhwc" (float16 [N,H,W,C]) as an output, and each head that
 * can take it reads that input through mtmi.FromHalfNHWC, which makes the
 * float feature again: on the GPU one copy in the encoder and a view in
 * the head (cuda/plan_forms.c).  The values are the FP16 ones the encoder
 * computed, exactly (float16 -> float -> float16 is the identity).
 *
 * On by default (MTMI_NO_F16_HANDOVER=1, tuning no_f16_handover, turns it
 * off).  Measured on an H200 (2026-12-07, scripts/gpu_pipeline.sh): the
 * same output bits as the float cut (test_pipeline_gpu), all-FP16
 * pipeline 932 -> 1006 fps, FP16 heads on 16 SMs 373 -> 447.  The CPU
 * checks it on the split graphs (tests/pipeline: the heads' outputs bit
 * for bit those of the FP16-rounded float features). */
#include "pipeline/pipeline.h"

#include <stdlib.h>
#include <string.h>

static mtmi_status nomem(void) { return mt_fail(MTMI_ERR_NOMEM, "out of memory"); }

/* head input `in` (float [N,C,H,W]) becomes `name`, float16 [N,H,W,C],
 * read through FromHalfNHWC, which now makes the old value */
static mtmi_status head_takes_half(mt_graph *h, int in, const char *name) {
    const int v = h->inputs[in];
    const int q = mt_graph_add_nhwc_value(h, name, MTMI_FLOAT16, v);
    if (q < 0 || mt_graph_add_mtmi_node(h, "FromHalfNHWC", name, q, v) < 0) return nomem();
    h->values[v].is_input = 0;
    h->values[q].is_input = 1;
    h->values[q].producer = -1;
    h->inputs[in] = q;
    return MTMI_OK;
}

/* encoder: HalfNHWC(value v) -> a new output `name` */
static mtmi_status encoder_gives_half(mt_graph *e, int v, const char *name) {
    const int q = mt_graph_add_nhwc_value(e, name, MTMI_FLOAT16, v);
    if (q < 0 || mt_graph_add_mtmi_node(e, "HalfNHWC", name, v, q) < 0) return nomem();
    return mt_graph_add_output(e, q);
}

mtmi_status mt_pipeline_handover_f16(mt_graph *enc, mt_graph *const *heads, const unsigned char *take, int nheads, int *made) {
    if (made) *made = 0;
    const int ncut = enc->noutputs;
    int *cut = malloc(sizeof(int) * (size_t)(ncut + 1));
    if (!cut) return nomem();
    memcpy(cut, enc->outputs, sizeof(int) * (size_t)ncut);
    mtmi_status s = MTMI_OK;
    for (int c = 0; c < ncut && !s; c++) {
        const mt_value *f = &enc->values[cut[c]];
        if (f->dtype != MTMI_FLOAT || f->rank != 4 || !mt_value_shape_known(f)) continue;
        char name[300];
        snprintf(name, sizeof name, "%.280s.f16_nhwc", f->name);
        if (mt_graph_find_value(enc, name) >= 0) continue; /* a name the model already uses */
        int takers = 0, others = 0;
        for (int k = 0; k < nheads; k++) {
            const int in = mt_graph_find_input(heads[k], f->name);
            if (in < 0) continue;
            if (take[k] && mt_graph_find_value(heads[k], name) < 0) takers++;
            else others++;
        }
        if (!takers) continue;
        for (int k = 0; k < nheads && !s; k++) {
            const int in = mt_graph_find_input(heads[k], enc->values[cut[c]].name);
            if (in >= 0 && take[k] && mt_graph_find_value(heads[k], name) < 0) s = head_takes_half(heads[k], in, name);
        }
        const int v = cut[c];
        if (!s) s = encoder_gives_half(enc, v, name);
        if (!s && !others) mt_graph_drop_output(enc, v); /* no head reads the float feature any more */
        if (!s && made) (*made)++;
    }
    free(cut);
    for (int k = 0; k < nheads && !s; k++)
        if (take[k]) s = mt_graph_compact(heads[k]);
    if (!s) s = mt_graph_compact(enc);
    return s;
}
