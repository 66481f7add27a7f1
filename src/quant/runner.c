/* The calibration / accuracy runner: encoder and heads as separate CPU
 * plans so that the shared features are computed once per frame, saved to
 * disk if asked, and fed to FP32 and INT8 heads alike. */
#include "quant/quant.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu/cpu.h"

void mt_qrunner_free(mt_qrunner *r) {
    mt_calib_observer_free(&r->obs_enc);
    mt_calib_observer_free(&r->obs_head);
    mt_cpu_plan_free(r->enc_plan);
    mt_cpu_plan_free(r->head_plan);
    mt_cpu_plan_free(r->head_qplan);
    if (r->feat)
        for (int i = 0; i < r->ncut; i++)
            if (!r->cut_is_input || !r->cut_is_input[i]) free(r->feat[i]);
    int nout = r->full ? r->full->noutputs : 0;
    for (int i = 0; i < nout; i++) {
        if (r->out) free(r->out[i]);
        if (r->out_q) free(r->out_q[i]);
    }
    free(r->out);
    free(r->out_q);
    free(r->out_numel);
    free(r->feat);
    free(r->feat_numel);
    free(r->cut_is_input);
    mt_free_names(r->cut, r->ncut);
    mt_graph_free(r->enc);
    mt_graph_free(r->heads);
    mt_graph_free(r->heads_q);
    mt_graph_free(r->full);
    memset(r, 0, sizeof *r);
}

/* A CPU plan with the runner's switches. */
static mtmi_status cpu_plan(const mt_qrunner *r, const mt_graph *g, int threads, mt_cpu_plan **out) {
    mt_cpu_plan_opts o = {.nthreads = threads, .tuning = &r->tuning};
    return mt_cpu_plan_create_ex(g, &o, out);
}

mtmi_status mt_qrunner_init(mt_qrunner *r, const mt_graph *loaded, const mtmi_tensor *shape, int threads,
                            const mt_tuning *tuning) {
    memset(r, 0, sizeof *r);
    mtmi_status s;
    r->tuning = tuning ? *tuning : *mt_tuning_default();
    r->tuning.fuse_concat = 0; /* the names a calibration cache holds are the standard graph's */
    r->full = mt_graph_clone(loaded);
    if (!r->full) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    mt_optimize_opts oo = {.fuse = 1, .tuning = &r->tuning};
    if ((s = mt_graph_optimize_ex(r->full, shape, shape ? 1 : 0, mt_cpu_eval, &r->tuning, &oo))) goto fail;
    if (r->full->ninputs != 1) {
        s = mt_fail(MTMI_ERR_UNSUPPORTED, "calibration needs a model with one image input, this one has %d", r->full->ninputs);
        goto fail;
    }
    if ((s = mt_quant_cut(r->full, &r->cut, &r->ncut))) goto fail;
    int nout = r->full->noutputs;
    r->cut_is_input = calloc(r->ncut + 1, sizeof(int));
    r->feat = calloc(r->ncut + 1, sizeof(float *));
    r->feat_numel = calloc(r->ncut + 1, sizeof(int64_t));
    r->out = calloc(nout + 1, sizeof(float *));
    r->out_q = calloc(nout + 1, sizeof(float *));
    r->out_numel = calloc(nout + 1, sizeof(int64_t));
    char **enc_out = calloc(r->ncut + 1, sizeof(char *)), **outs = calloc(nout + 1, sizeof(char *));
    char *in0 = r->full->values[r->full->inputs[0]].name;
    if (!r->cut_is_input || !r->feat || !r->feat_numel || !r->out || !r->out_q || !r->out_numel || !enc_out || !outs) {
        free(enc_out);
        free(outs);
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int nenc = 0;
    for (int i = 0; i < r->ncut; i++) {
        int v = mt_graph_find_value(r->full, r->cut[i]);
        const mt_value *val = &r->full->values[v];
        r->feat_numel[i] = mt_value_numel(val);
        if (val->dtype != MTMI_FLOAT) {
            s = mt_fail(MTMI_ERR_UNSUPPORTED, "shared feature '%s' is %s, not float", val->name, mt_dtype_name(val->dtype));
            break;
        }
        if (val->is_input) r->cut_is_input[i] = 1;
        else {
            enc_out[nenc++] = r->cut[i];
            if (!(r->feat[i] = malloc(sizeof(float) * (size_t)r->feat_numel[i] + 4))) s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        }
    }
    for (int i = 0; i < nout; i++) {
        const mt_value *val = &r->full->values[r->full->outputs[i]];
        outs[i] = val->name;
        r->out_numel[i] = mt_value_numel(val);
        if (!(r->out[i] = malloc(mt_value_bytes(val) + 8)) || !(r->out_q[i] = malloc(mt_value_bytes(val) + 8)))
            s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
    }
    if (!s && nenc) s = mt_graph_extract(r->full, &in0, 1, enc_out, nenc, &r->enc);
    if (!s) s = mt_graph_extract(r->full, r->cut, r->ncut, outs, nout, &r->heads);
    free(enc_out);
    free(outs);
    if (s) goto fail;
    if (r->enc && (s = cpu_plan(r, r->enc, threads, &r->enc_plan))) goto fail;
    if ((s = cpu_plan(r, r->heads, threads, &r->head_plan))) goto fail;
    return MTMI_OK;
fail:
    mt_qrunner_free(r);
    return s;
}

mtmi_status mt_qrunner_observe(mt_qrunner *r, mt_calib_stats *st, int with_encoder) {
    mtmi_status s;
    if (with_encoder && r->enc_plan) {
        if ((s = mt_calib_observer_attach(&r->obs_enc, st, r->enc, r->enc_plan))) return s;
        /* The cut tensors are added once, by mt_qrunner_heads. */
        for (int i = 0; i < r->ncut; i++) {
            int v = mt_graph_find_value(r->enc, r->cut[i]);
            if (v >= 0) r->obs_enc.slot[v] = -1;
        }
    }
    if ((s = mt_calib_observer_attach(&r->obs_head, st, r->heads, r->head_plan))) return s;
    r->observing = with_encoder ? 2 : 1;
    return MTMI_OK;
}

mtmi_status mt_qrunner_quantize(mt_qrunner *r, const mt_graph *loaded, const mt_calib_cache *c, int threads,
                                mt_quant_report *rep) {
    mtmi_status s = mt_calib_cache_check(c, loaded, r->full);
    if (s) return s;
    if (!(r->heads_q = mt_graph_clone(r->heads))) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if ((s = mt_quant_rewrite(r->heads_q, c, NULL, rep))) return s;
    if ((s = mt_quant_apply_tuning(r->heads_q, &r->tuning))) return s; /* the CPU reference */
    if (rep->quantized == 0)
        return mt_fail(MTMI_ERR_ARG, "%s: no convolution of the heads has a scale for its input (first missing: '%s')",
                       c->path ? c->path : "calibration cache", rep->first_skipped);
    return cpu_plan(r, r->heads_q, threads, &r->head_qplan);
}

static void views_of(const mt_graph *g, const int *idx, int n, float *const *data, mt_tview *v) {
    for (int i = 0; i < n; i++) {
        const mt_value *val = &g->values[idx[i]];
        v[i].data = data[i];
        v[i].dtype = val->dtype;
        v[i].rank = val->rank;
        memcpy(v[i].dims, val->dims, sizeof v[i].dims);
    }
}

mtmi_status mt_qrunner_encode(mt_qrunner *r, const float *input) {
    for (int i = 0; i < r->ncut; i++)
        if (r->cut_is_input[i]) r->feat[i] = (float *)input;
    if (!r->enc_plan) return MTMI_OK;
    mt_tview in, out[64];
    float *outs[64];
    if (r->enc->noutputs > 64) return mt_fail(MTMI_ERR_UNSUPPORTED, "more than 64 shared features");
    float *inp = (float *)input;
    views_of(r->enc, r->enc->inputs, 1, &inp, &in);
    for (int i = 0; i < r->enc->noutputs; i++) {
        const char *name = r->enc->values[r->enc->outputs[i]].name;
        outs[i] = NULL;
        for (int k = 0; k < r->ncut; k++)
            if (!strcmp(r->cut[k], name)) outs[i] = r->feat[k];
    }
    views_of(r->enc, r->enc->outputs, r->enc->noutputs, outs, out);
    if (r->observing == 2) {
        const mt_value *v = &r->enc->values[r->enc->inputs[0]];
        mtmi_status s = mt_calib_stats_add(r->obs_enc.st, v->name, input, mt_value_numel(v));
        if (s) return s;
    }
    return mt_cpu_plan_run(r->enc_plan, &in, 1, out, r->enc->noutputs);
}

mtmi_status mt_qrunner_heads(mt_qrunner *r, int fp32, int int8) {
    mtmi_status s;
    if (r->observing)
        for (int i = 0; i < r->ncut; i++)
            if ((s = mt_calib_stats_add(r->obs_head.st, r->cut[i], r->feat[i], r->feat_numel[i]))) return s;
    mt_tview in[64], out[64];
    if (r->ncut > 64 || r->full->noutputs > 64) return mt_fail(MTMI_ERR_UNSUPPORTED, "too many features or outputs");
    for (int pass = 0; pass < 2; pass++) {
        mt_graph *g = pass ? r->heads_q : r->heads;
        mt_cpu_plan *p = pass ? r->head_qplan : r->head_plan;
        if (!(pass ? int8 : fp32)) continue;
        if (!p) return mt_fail(MTMI_ERR_ARG, "the INT8 heads were not built");
        /* The head graph's inputs are the cut tensors in cut order. */
        float *ins[64];
        for (int i = 0; i < g->ninputs; i++) {
            ins[i] = NULL;
            for (int k = 0; k < r->ncut; k++)
                if (!strcmp(r->cut[k], g->values[g->inputs[i]].name)) ins[i] = r->feat[k];
        }
        views_of(g, g->inputs, g->ninputs, ins, in);
        views_of(g, g->outputs, g->noutputs, pass ? r->out_q : r->out, out);
        if ((s = mt_cpu_plan_run(p, in, g->ninputs, out, g->noutputs))) return s;
    }
    return MTMI_OK;
}

/* Feature file: "MTMIFEAT1\n", int32 count, then per tensor: int32 name
 * length, name, int64 element count, float32 data (host byte order: a local
 * cache, never shipped). */
mtmi_status mt_qrunner_save_features(const mt_qrunner *r, const char *path) {
    char tmp[4200];
    FILE *f = mt_atomic_open(path, tmp, sizeof tmp);
    if (!f) return mt_fail(MTMI_ERR_IO, "cannot write feature cache '%s'", path);
    int ok = fwrite("MTMIFEAT1\n", 1, 10, f) == 10;
    int32_t n = r->ncut;
    ok = ok && fwrite(&n, 4, 1, f) == 1;
    for (int i = 0; ok && i < r->ncut; i++) {
        int32_t len = (int32_t)strlen(r->cut[i]);
        int64_t cnt = r->feat_numel[i];
        ok = fwrite(&len, 4, 1, f) == 1 && fwrite(r->cut[i], 1, len, f) == (size_t)len && fwrite(&cnt, 8, 1, f) == 1 &&
             fwrite(r->feat[i], sizeof(float), (size_t)cnt, f) == (size_t)cnt;
    }
    return mt_atomic_commit(f, tmp, path, ok);
}

int mt_qrunner_load_features(mt_qrunner *r, const char *path) {
    if (!r->enc_plan) return 0;
    for (int i = 0; i < r->ncut; i++)
        if (r->cut_is_input[i]) return 0; /* heads read the image itself: nothing worth caching */
    int fd;
    uint64_t size;
    FILE *f = NULL;
    /* A cache file is only a hint: absent, special (a FIFO would block) or
     * unreadable means "encode again". */
    if (mt_open_regular(path, &fd, &size)) {
        mt_clear_error();
        return 0;
    }
    if (!(f = fdopen(fd, "rb"))) {
        close(fd);
        return 0;
    }
    char magic[10];
    int32_t n = 0;
    int ok = fread(magic, 1, 10, f) == 10 && !memcmp(magic, "MTMIFEAT1\n", 10) && fread(&n, 4, 1, f) == 1 && n == r->ncut;
    for (int i = 0; ok && i < r->ncut; i++) {
        int32_t len = 0;
        int64_t cnt = 0;
        char name[1024];
        ok = fread(&len, 4, 1, f) == 1 && len > 0 && len < (int32_t)sizeof name && fread(name, 1, len, f) == (size_t)len;
        if (ok) name[len] = 0;
        ok = ok && !strcmp(name, r->cut[i]) && fread(&cnt, 8, 1, f) == 1 && cnt == r->feat_numel[i];
        if (ok) ok = fread(r->feat[i], sizeof(float), (size_t)cnt, f) == (size_t)cnt;
    }
    ok = ok && fgetc(f) == EOF;
    fclose(f);
    return ok;
}
