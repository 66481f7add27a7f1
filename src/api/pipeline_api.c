/* The pipeline through the public API: a thin layer over src/pipeline that
 * turns result requests into the pipeline's result forms, and copies (or
 * lends) the frame slots' results to the caller. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "pipeline/pipeline.h"
#include "pipeline/planfile.h"

struct mtmi_pipeline {
    mt_pipeline *pipe;
    mt_plan_subject subject; /* what a saved plan of it is made for */
    mt_tuning tuning;  /* the stages' switches (the pipeline points at it) */
    mt_frame *held;  /* the frame of mtmi_pipeline_collect_results, until released */
};

void mtmi_pipeline_free(mtmi_pipeline *p) {
    if (!p) return;
    mt_pipeline_free(p->pipe);
    free(p);
}

/* The requests as the pipeline's per-output forms and device flags. */
static mtmi_status request_forms(mtmi_model *m, const mtmi_pipeline_options *opt, unsigned *forms, unsigned char *on_dev) {
    const int n = mtmi_model_num_outputs(m);
    for (int i = 0; i < n; i++) forms[i] = MT_FORM_FLOAT, on_dev[i] = 0;
    if (opt->nresults < 0 || (opt->nresults && !opt->results))
        return mt_fail(MTMI_ERR_ARG, "mtmi_pipeline_create: %d result requests and no array", opt->nresults);
    for (int r = 0; r < opt->nresults; r++) {
        const mtmi_result_request *q = &opt->results[r];
        int k = -1;
        for (int i = 0; i < n && q->output; i++)
            if (!strcmp(mtmi_model_output_name(m, i), q->output)) k = i;
        if (k < 0) return mt_fail(MTMI_ERR_ARG, "result request %d: the model has no output '%s'", r, q->output ? q->output : "(null)");
        if (q->forms & ~(unsigned)MT_FORM_ALL) return mt_fail(MTMI_ERR_ARG, "result request '%s': unknown forms 0x%x", q->output, q->forms);
        forms[k] = q->forms;
        on_dev[k] = q->on_device != 0;
    }
    return MTMI_OK;
}

/* opt->saved_plan: read and check it (machine, model, cache, input kind:
 * subject), and take its placement and input shape where the options
 * leave them out (given ones must agree). */
static mtmi_status use_saved_plan(const mtmi_pipeline_options *opt, const mt_plan_subject *subject, mt_planfile *pf,
                                  mt_placement *pl, mtmi_tensor *shape, const mtmi_tensor **in_shape) {
    const char *name = opt->saved_plan;
    mtmi_status s = mt_planfile_open(name, pf);
    if (!s) s = mt_planfile_check_run(pf, name, subject->model_key, subject->has_cache, subject->cache_key, subject->image_input);
    if (s) return s;
    if (opt->input_shape) {
        if (opt->input_shape->rank != pf->rank || memcmp(opt->input_shape->dims, pf->dims, sizeof(int64_t) * (size_t)pf->rank))
            return mt_fail(MTMI_ERR_ARG, "%s: saved plan made for another input shape", name);
    } else {
        memset(shape, 0, sizeof *shape);
        shape->dtype = MTMI_FLOAT;
        shape->rank = pf->rank;
        memcpy(shape->dims, pf->dims, sizeof(int64_t) * (size_t)pf->rank);
        *in_shape = shape;
    }
    if (opt->placement && !pl->is_auto && (s = mt_planfile_check_placement(pf, name, opt->placement))) return s;
    return mt_placement_parse(pf->placement, pl);
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
    po.image_input = opt->image_input != 0;
    const int nout = mtmi_model_num_outputs(m);
    unsigned *forms = calloc((size_t)nout + 1, sizeof *forms);
    unsigned char *on_dev = calloc((size_t)nout + 1, 1);
    mtmi_pipeline *p = mt_alloc(sizeof *p);
    mt_planfile *pf = opt->saved_plan ? calloc(1, sizeof *pf) : NULL;
    const mtmi_tensor *in_shape = opt->input_shape;
    mtmi_tensor plan_shape;
    if (!forms || !on_dev || !p || (opt->saved_plan && !pf)) s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
    else s = request_forms(m, opt, forms, on_dev);
    if (!s) s = mt_plan_subject_of(m, opt->calibration_cache, opt->image_input, &p->subject);
    if (!s && pf && !(s = use_saved_plan(opt, &p->subject, pf, &pl, &plan_shape, &in_shape))) {
        po.replay = pf->choices;
        po.nreplay = pf->nstages;
    }
    if (!s) s = mt_tuning_parse(opt->tuning, &p->tuning);
    if (!s) po.tuning = &p->tuning;
    po.model_forms = forms;
    po.model_on_device = on_dev;
    if (!s) s = mt_pipeline_from_model(m, in_shape, &pl, &po, &p->pipe);
    free(forms);
    free(on_dev);
    mt_planfile_free(pf);
    free(pf);
    if (s) {
        mt_pipeline_free(p ? p->pipe : NULL);
        free(p);
        return s;
    }
    /* the model's input 0 as the pipeline was made for it (image input:
     * the N x 3 x H x W its uint8 N x H x W x 3 frames stand for) */
    const mt_tview *t = mt_pipeline_input_shape(p->pipe, 0);
    p->subject.rank = t->rank;
    memcpy(p->subject.dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    if (p->subject.image_input && t->rank == 4) {
        int64_t d[4] = {t->dims[0], t->dims[3], t->dims[1], t->dims[2]};
        memcpy(p->subject.dims, d, sizeof d);
    }
    *out = p;
    return MTMI_OK;
}

mtmi_status mtmi_pipeline_save_plan(const mtmi_pipeline *p, const char *path) {
    if (!p || !path) return mt_fail(MTMI_ERR_ARG, "mtmi_pipeline_save_plan: NULL argument");
    mt_clear_error();
    return mt_planfile_save(p->pipe, &p->subject, NULL, path);
}

int mtmi_pipeline_num_results(const mtmi_pipeline *p) { return p ? mt_pipeline_num_outputs(p->pipe) : 0; }

mtmi_status mtmi_pipeline_result_info(const mtmi_pipeline *p, int i, mtmi_result_info *info) {
    if (!p || !info || i < 0 || i >= mt_pipeline_num_outputs(p->pipe)) return mt_fail(MTMI_ERR_ARG, "result index %d out of range", i);
    memset(info, 0, sizeof *info);
    const mt_tview *t = mt_pipeline_output_shape(p->pipe, i);
    unsigned form;
    mt_pipeline_output_form(p->pipe, i, &info->output, &form);
    info->name = mt_pipeline_output_name(p->pipe, i);
    info->form = (mtmi_result_form)form;
    info->is_scale = form == MT_FORM_INT8 && t->dtype == MTMI_FLOAT;
    info->dtype = (mtmi_dtype)t->dtype;
    info->rank = t->rank;
    memcpy(info->dims, t->dims, sizeof(int64_t) * t->rank);
    info->on_device = mt_pipeline_output_mem(p->pipe, i) == MT_MEM_DEVICE;
    info->device = info->on_device ? mt_pipeline_output_device(p->pipe, i) : -1;
    return MTMI_OK;
}

int mtmi_pipeline_frames_in_flight(const mtmi_pipeline *p) { return mt_pipeline_inflight(p->pipe); }

mtmi_status mtmi_pipeline_output_shape(const mtmi_pipeline *p, int i, int *rank, int64_t dims[MTMI_MAX_RANK]) {
    if (!p || i < 0 || i >= mt_pipeline_num_outputs(p->pipe)) return mt_fail(MTMI_ERR_ARG, "result index %d out of range", i);
    const mt_tview *t = mt_pipeline_output_shape(p->pipe, i);
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

/* Waits for the oldest frame; fails while one is held. */
static mtmi_status take_frame(mtmi_pipeline *p, int nresults, mt_frame **f) {
    const int n = mt_pipeline_num_outputs(p->pipe);
    if (nresults != n) return mt_fail(MTMI_ERR_ARG, "pipeline has %d results, got %d", n, nresults);
    if (p->held) return mt_fail(MTMI_ERR_ARG, "a frame from mtmi_pipeline_collect_results is still held: release it first");
    if (mt_pipeline_pending(p->pipe) == 0) return mt_fail(MTMI_ERR_ARG, "no frame in flight to collect");
    return mt_pipeline_wait(p->pipe, f);
}

mtmi_status mtmi_pipeline_collect(mtmi_pipeline *p, mtmi_tensor *outputs, int noutputs, void **user) {
    if (!p || (noutputs && !outputs)) return mt_fail(MTMI_ERR_ARG, "mtmi_pipeline_collect: NULL argument");
    for (int i = 0; i < noutputs; i++) {
        if (!outputs[i].data) return mt_fail(MTMI_ERR_ARG, "result %d: no buffer", i);
        if (i < mt_pipeline_num_outputs(p->pipe) && mt_pipeline_output_mem(p->pipe, i) == MT_MEM_DEVICE)
            return mt_fail(MTMI_ERR_ARG, "result '%s' stays in device memory: take it with mtmi_pipeline_collect_results",
                           mt_pipeline_output_name(p->pipe, i));
    }
    mt_frame *f;
    mtmi_status s = take_frame(p, noutputs, &f);
    if (s) return s;
    for (int i = 0; i < noutputs; i++) {
        const mt_tview *t = &f->outputs[i];
        memcpy(outputs[i].data, t->data, (size_t)mt_tview_numel(t) * mt_dtype_size(t->dtype));
        outputs[i].dtype = t->dtype;
        outputs[i].rank = t->rank;
        memcpy(outputs[i].dims, t->dims, sizeof(int64_t) * t->rank);
    }
    if (user) *user = f->user;
    mt_pipeline_release(p->pipe, f);
    return MTMI_OK;
}

mtmi_status mtmi_pipeline_collect_results(mtmi_pipeline *p, mtmi_result *results, int nresults, void **user) {
    if (!p || (nresults && !results)) return mt_fail(MTMI_ERR_ARG, "mtmi_pipeline_collect_results: NULL argument");
    mt_frame *f;
    mtmi_status s = take_frame(p, nresults, &f);
    if (s) return s;
    for (int i = 0; i < nresults; i++) {
        const mt_tview *t = &f->outputs[i];
        mtmi_result *r = &results[i];
        memset(r, 0, sizeof *r);
        r->tensor.dtype = (mtmi_dtype)t->dtype;
        r->tensor.rank = t->rank;
        memcpy(r->tensor.dims, t->dims, sizeof(int64_t) * t->rank);
        r->tensor.data = t->data;
        r->on_device = f->out_mem[i] == MT_MEM_DEVICE;
        r->device = r->on_device ? mt_pipeline_output_device(p->pipe, i) : -1;
        r->ready_event = r->on_device ? f->out_ready[i] : NULL;
    }
    if (user) *user = f->user;
    p->held = f;
    return MTMI_OK;
}

mtmi_status mtmi_pipeline_release(mtmi_pipeline *p, void *after_event) {
    if (!p) return mt_fail(MTMI_ERR_ARG, "mtmi_pipeline_release: NULL argument");
    if (!p->held) return mt_fail(MTMI_ERR_ARG, "no frame is held (mtmi_pipeline_collect_results first)");
    mt_pipeline_release_after(p->pipe, p->held, after_event);
    p->held = NULL;
    return MTMI_OK;
}
