/* The pipeline through the public API: a thin layer over src/pipeline that
 * copies between the caller's buffers and the frame slots and keeps the
 * model's output order. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "pipeline/pipeline.h"

struct mtmi_pipeline {
    mt_pipeline *pipe;
    int noutputs;
    int *out_slot;   /* model output i = pipeline output out_slot[i] */
};

void mtmi_pipeline_free(mtmi_pipeline *p) {
    if (!p) return;
    mt_pipeline_free(p->pipe);
    free(p->out_slot);
    free(p);
}

mtmi_status mtmi_pipeline_create(mtmi_model *m, const mtmi_pipeline_options *opt, mtmi_pipeline **out) {
    if (!m || !out) return mt_fail(MTMI_ERR_ARG, "mtmi_pipeline_create: NULL argument");
    *out = NULL;
    mt_clear_error();
    mtmi_pipeline_options none = {0};
    if (!opt) opt = &none;
    mt_placement pl;
    memset(&pl, 0, sizeof pl);
    mtmi_status s;
    if (opt->placement && strcmp(opt->placement, "auto") != 0) {
        if ((s = mt_placement_parse(opt->placement, &pl))) return s;
    } else {
        pl.is_auto = 1; /* the heuristic choice; `mtmi bench --place auto` measures */
    }
    mt_pipeline_opts po = MT_PIPELINE_OPTS_DEFAULT;
    /* Each frame in flight holds its own buffers: bounded. */
    po.inflight = opt->frames_in_flight > 0 ? MT_MIN(opt->frames_in_flight, MTMI_MAX_FRAMES_IN_FLIGHT) : 2;
    po.total_threads = opt->threads;
    po.calib_path = opt->calibration_cache;
    mtmi_pipeline *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    if ((s = mt_pipeline_from_model(m, opt->input_shape, &pl, &po, &p->pipe))) {
        free(p);
        return s;
    }
    p->noutputs = mtmi_model_num_outputs(m);
    p->out_slot = malloc(sizeof(int) * (p->noutputs + 1));
    if (!p->out_slot) {
        mtmi_pipeline_free(p);
        return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < p->noutputs; i++) {
        const char *name = mtmi_model_output_name(m, i);
        p->out_slot[i] = -1;
        for (int k = 0; k < mt_pipeline_num_outputs(p->pipe); k++)
            if (!strcmp(mt_pipeline_output_name(p->pipe, k), name)) p->out_slot[i] = k;
        if (p->out_slot[i] < 0) {
            mtmi_pipeline_free(p);
            return mt_fail(MTMI_ERR_INTERNAL, "pipeline has no stage computing output '%s'", name);
        }
    }
    *out = p;
    return MTMI_OK;
}

int mtmi_pipeline_frames_in_flight(const mtmi_pipeline *p) { return mt_pipeline_inflight(p->pipe); }

mtmi_status mtmi_pipeline_output_shape(const mtmi_pipeline *p, int i, int *rank, int64_t dims[MTMI_MAX_RANK]) {
    if (!p || i < 0 || i >= p->noutputs) return mt_fail(MTMI_ERR_ARG, "output index %d out of range", i);
    const mt_tview *t = mt_pipeline_output_shape(p->pipe, p->out_slot[i]);
    *rank = t->rank;
    memcpy(dims, t->dims, sizeof(int64_t) * t->rank);
    return MTMI_OK;
}

mtmi_status mtmi_pipeline_submit(mtmi_pipeline *p, const mtmi_tensor *inputs, int ninputs, void *user) {
    if (!p || (ninputs && !inputs)) return mt_fail(MTMI_ERR_ARG, "mtmi_pipeline_submit: NULL argument");
    mt_pipeline *pp = p->pipe;
    if (ninputs != mt_pipeline_num_inputs(pp))
        return mt_fail(MTMI_ERR_ARG, "pipeline takes %d inputs, got %d", mt_pipeline_num_inputs(pp), ninputs);
    if (mt_pipeline_pending(pp) >= mt_pipeline_inflight(pp))
        return mt_fail(MTMI_ERR_ARG, "all %d frames are in flight: collect one before submitting another", mt_pipeline_inflight(pp));
    char a[128], b[128];
    for (int i = 0; i < ninputs; i++) {
        const mt_tview *t = mt_pipeline_input_shape(pp, i);
        if (inputs[i].dtype != t->dtype || inputs[i].rank != t->rank || memcmp(inputs[i].dims, t->dims, sizeof(int64_t) * t->rank))
            return mt_fail(MTMI_ERR_SHAPE, "input %d: pipeline expects %s %s, got %s %s", i, mt_dtype_name(t->dtype),
                           mt_shape_str(t->rank, t->dims, a, sizeof a), mt_dtype_name(inputs[i].dtype),
                           mt_shape_str(inputs[i].rank, inputs[i].dims, b, sizeof b));
        if (!inputs[i].data) return mt_fail(MTMI_ERR_ARG, "input %d: no data", i);
    }
    mt_frame *f;
    mtmi_status s = mt_pipeline_begin(pp, &f);
    if (s) return s;
    for (int i = 0; i < ninputs; i++)
        memcpy(f->inputs[i].data, inputs[i].data, (size_t)mt_tview_numel(&f->inputs[i]) * mt_dtype_size(f->inputs[i].dtype));
    f->user = user;
    return mt_pipeline_submit(pp, f);
}

mtmi_status mtmi_pipeline_collect(mtmi_pipeline *p, mtmi_tensor *outputs, int noutputs, void **user) {
    if (!p || (noutputs && !outputs)) return mt_fail(MTMI_ERR_ARG, "mtmi_pipeline_collect: NULL argument");
    if (noutputs != p->noutputs) return mt_fail(MTMI_ERR_ARG, "pipeline has %d outputs, got %d buffers", p->noutputs, noutputs);
    for (int i = 0; i < noutputs; i++)
        if (!outputs[i].data) return mt_fail(MTMI_ERR_ARG, "output %d: no buffer", i);
    if (mt_pipeline_pending(p->pipe) == 0) return mt_fail(MTMI_ERR_ARG, "no frame in flight to collect");
    mt_frame *f;
    mtmi_status s = mt_pipeline_wait(p->pipe, &f);
    if (s) return s;
    for (int i = 0; i < noutputs; i++) {
        const mt_tview *t = &f->outputs[p->out_slot[i]];
        memcpy(outputs[i].data, t->data, (size_t)mt_tview_numel(t) * mt_dtype_size(t->dtype));
        outputs[i].dtype = t->dtype;
        outputs[i].rank = t->rank;
        memcpy(outputs[i].dims, t->dims, sizeof(int64_t) * t->rank);
    }
    if (user) *user = f->user;
    mt_pipeline_release(p->pipe, f);
    return MTMI_OK;
}
