/* Calibration through the public API: frames in memory, a cache out.  The
 * `calibrate` command adds image loading and an on-disk feature cache. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "quant/quant.h"

mtmi_status mtmi_calibrate(mtmi_model *m, const mtmi_tensor *frames, int nframes, const mtmi_calibrate_options *opt,
                           const char *cache_path) {
    if (!m || !frames || nframes < 1 || !cache_path) return mt_fail(MTMI_ERR_ARG, "mtmi_calibrate: missing model, frames or cache path");
    mt_clear_error();
    mtmi_calibrate_options none = {0};
    if (!opt) opt = &none;
    if (opt->method < MTMI_CALIB_ENTROPY || opt->method > MTMI_CALIB_PERCENTILE)
        return mt_fail(MTMI_ERR_ARG, "mtmi_calibrate: unknown method %d", (int)opt->method);
    double pct = opt->percentile > 0 ? opt->percentile : 99.99;
    if (pct <= 0 || pct > 100) return mt_fail(MTMI_ERR_ARG, "mtmi_calibrate: percentile %g outside (0, 100]", pct);
    const char *subgraph = opt->subgraph ? opt->subgraph : "heads";
    char a[128], b[128];
    for (int f = 1; f < nframes; f++)
        if (frames[f].rank != frames[0].rank || memcmp(frames[f].dims, frames[0].dims, sizeof(int64_t) * frames[0].rank))
            return mt_fail(MTMI_ERR_SHAPE, "calibration frame %d is %s, frame 0 is %s", f,
                           mt_shape_str(frames[f].rank, frames[f].dims, a, sizeof a), mt_shape_str(frames[0].rank, frames[0].dims, b, sizeof b));
    for (int f = 0; f < nframes; f++)
        if (frames[f].dtype != MTMI_FLOAT || !frames[f].data) return mt_fail(MTMI_ERR_ARG, "calibration frame %d: float data expected", f);

    mt_qrunner r = {0};
    mt_calib_stats st = {0};
    mt_calib_cache cache = {0};
    unsigned char *sel = NULL;
    int *label = NULL;
    mt_tuning tn;
    mtmi_status s = mt_tuning_parse(opt->tuning, &tn);
    if (!s) s = mt_qrunner_init(&r, m->graph, &frames[0], opt->threads, &tn);
    if (!s && !(sel = malloc((size_t)r.full->nnodes + 1))) s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if (!s) s = mt_quant_select(r.full, subgraph, sel);
    if (!s) s = mt_calib_stats_init(&st, r.full, sel);
    /* The encoder is observed only when the chosen subgraph reaches into it. */
    int with_encoder = 0;
    if (!s && !(label = malloc(sizeof(int) * (r.full->nnodes + 1)))) s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
    if (!s) s = mt_graph_cone_labels(r.full, label);
    for (int i = 0; !s && i < r.full->nnodes; i++)
        if (sel[i] && label[i] == -1) with_encoder = 1;
    if (!s) s = mt_qrunner_observe(&r, &st, with_encoder);
    for (int f = 0; !s && f < nframes; f++) {
        s = mt_qrunner_encode(&r, frames[f].data);
        if (!s) s = mt_qrunner_heads(&r, 1, 0);
    }
    mt_calib_method method = (mt_calib_method)opt->method;
    if (!s && !(cache.header = mt_strdup(mt_calib_header(method)))) s = MTMI_ERR_NOMEM;
    if (!s) s = mt_calib_stats_scales(&st, method, pct, tn.calib_hist_dir, &cache);
    if (!s) s = mt_calib_cache_check(&cache, m->graph, r.full);
    if (!s) s = mt_calib_cache_write(cache_path, &cache);
    free(label);
    free(sel);
    mt_calib_cache_free(&cache);
    mt_calib_stats_free(&st);
    mt_qrunner_free(&r);
    return s;
}
