/* MTMI_* environment variables -> the tuning switches (core/tuning.h).
 *
 * The library reads no environment; the command line and the benchmark
 * and test programs call this once at start-up, so that the scripts that
 * set these variables (gpu_ab.sh, gpu_check.sh, gpu_profile.sh) keep
 * working.  Each variable keeps the meaning it had when the library read
 * it. */
#include <stdlib.h>
#include <string.h>

#include "app/app.h"

typedef struct env_map {
    const char *var, *key;
} env_map;

/* Variables whose value goes to the switch unchanged. */
static const env_map g_map[] = {
    {"MTMI_NO_FUSE", "no_fuse"},           {"MTMI_FUSE_CONCAT", "fuse_concat"},
    {"MTMI_NN_COL_KB", "nn_col_kb"},       {"MTMI_NN_1X1_KB", "nn_1x1_kb"},
    {"MTMI_NN_WINO_KB", "nn_wino_kb"},     {"MTMI_NO_AVX512", "no_avx512"},
    {"MTMI_BLAS_KEEP_CORE", "blas_keep_core"}, {"MTMI_CUDA_NO_FUSE", "cuda_no_fuse"},
    {"MTMI_CUDA_FUSE_OPT", "cuda_fuse_opt"}, {"MTMI_PDL", "pdl"},
    {"MTMI_ATTN_CFG", "attn_cfg"},         {"MTMI_QCONV_SIMPLE", "qconv_simple"},
    {"MTMI_QCONV_FUSE", "qconv_fuse"},     {"MTMI_CALIB_HIST_DIR", "calib_hist_dir"},
    {"MTMI_QCONV_WGMMA", "qconv_wgmma"},
    {"MTMI_NO_INT8_HANDOVER", "no_int8_handover"}, {"MTMI_NO_F16_HANDOVER", "no_f16_handover"},
    {"MTMI_INT8_REASSOC", "int8_reassoc"},
    {NULL, NULL}};

void mt_app_tuning_from_env(mt_tuning *t) {
    *t = *mt_tuning_default();
    for (const env_map *m = g_map; m->var; m++) {
        const char *v = getenv(m->var);
        if (v && mt_tuning_set(t, m->key, v)) fprintf(stderr, "mtmi: warning: %s: %s (ignored)\n", m->var, mtmi_last_error());
    }
    /* Inverted or presence-only variables. */
    const char *w = getenv("MTMI_NN_WINOGRAD");
    t->no_winograd = w && w[0] == '0';
    if (getenv("OPENBLAS_CORETYPE")) t->blas_keep_core = 1;
    if (getenv("MTMI_CUDA_TRACE_DEST")) t->trace_dest = 1;
    mt_clear_error();
}

const char *mt_app_tuning_env_string(char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (const env_map *m = g_map; m->var; m++) {
        const char *v = getenv(m->var);
        if (!v || len >= cap) continue;
        int n = snprintf(buf + len, cap - len, "%s%s=%s", len ? ";" : "", m->key, v);
        if (n > 0) len += (size_t)n;
    }
    const char *w = getenv("MTMI_NN_WINOGRAD");
    if (w && w[0] == '0' && len < cap) len += (size_t)snprintf(buf + len, cap - len, "%sno_winograd=1", len ? ";" : "");
    if (getenv("OPENBLAS_CORETYPE") && len < cap) len += (size_t)snprintf(buf + len, cap - len, "%sblas_keep_core=1", len ? ";" : "");
    if (getenv("MTMI_CUDA_TRACE_DEST") && len < cap) snprintf(buf + len, cap - len, "%strace_dest=1", len ? ";" : "");
    return buf;
}
