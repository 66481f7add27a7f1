/* The tuning switches as data (tuning.h): defaults, parsing of the API's
 * "key=value;..." form, and list lookups. */
#include "core/tuning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static const mt_tuning g_default; /* all zero: every switch at its default */

const mt_tuning *mt_tuning_default(void) { return &g_default; }

static int has_item(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *q = list; (q = strstr(q, name)); q += n)
        if ((q == list || q[-1] == ',') && (q[n] == 0 || q[n] == ',')) return 1;
    return 0;
}

int mt_tuning_list_has(const char *list, const char *name, int all1) {
    if (!list || !*list) return 0;
    if (all1 && !strcmp(list, "1")) return 1;
    return has_item(list, name) || has_item(list, "all");
}

/* A flag is on for any value that does not start with '0' (as the
 * variables were read). */
static int flag(const char *v) { return v && *v && *v != '0'; }

static mtmi_status set_list(char *dst, const char *key, const char *v) {
    if (strlen(v) >= MT_TUNING_LIST) return mt_fail(MTMI_ERR_ARG, "tuning '%s': value longer than %d characters", key, MT_TUNING_LIST - 1);
    strcpy(dst, v);
    return MTMI_OK;
}

static int kib(const char *v) {
    long x = atol(v);
    return x > 0 && x < (1L << 21) ? (int)x : 0;
}

mtmi_status mt_tuning_set(mt_tuning *t, const char *key, const char *v) {
    if (!v) v = "";
    if (!strcmp(key, "no_fuse")) return set_list(t->no_fuse, key, v);
    if (!strcmp(key, "fuse_concat")) return t->fuse_concat = v[0] == '1', MTMI_OK;
    if (!strcmp(key, "nn_col_kb")) return t->nn_col_kb = kib(v), MTMI_OK;
    if (!strcmp(key, "nn_1x1_kb")) return t->nn_1x1_kb = kib(v), MTMI_OK;
    if (!strcmp(key, "nn_wino_kb")) return t->nn_wino_kb = kib(v), MTMI_OK;
    if (!strcmp(key, "no_winograd")) return t->no_winograd = flag(v), MTMI_OK;
    if (!strcmp(key, "no_avx512")) return t->no_avx512 = flag(v), MTMI_OK;
    if (!strcmp(key, "blas_keep_core")) return t->blas_keep_core = v[0] == '1', MTMI_OK;
    if (!strcmp(key, "no_int8_handover")) return t->no_int8_handover = flag(v), MTMI_OK;
    if (!strcmp(key, "int8_reassoc")) return t->int8_reassoc = flag(v), MTMI_OK;
    if (!strcmp(key, "no_f16_handover")) return t->no_f16_handover = flag(v), MTMI_OK;
    if (!strcmp(key, "cuda_no_fuse")) return set_list(t->cuda_no_fuse, key, v);
    if (!strcmp(key, "cuda_fuse_opt")) return set_list(t->cuda_fuse_opt, key, v);
    if (!strcmp(key, "pdl")) return t->pdl = flag(v), MTMI_OK;
    if (!strcmp(key, "attn_cfg")) {
        t->attn_cfg_set = sscanf(v, "%d,%d", &t->attn_kernel, &t->attn_ksplit) == 2;
        return MTMI_OK;
    }
    if (!strcmp(key, "qconv_simple")) return t->qconv_simple = v[0] == '1', MTMI_OK;
    if (!strcmp(key, "qconv_fuse")) return t->qconv_fuse = v[0] == '1', MTMI_OK;
    if (!strcmp(key, "qconv_wgmma")) return t->qconv_wgmma = flag(v) ? 1 : -1, MTMI_OK;
    if (!strcmp(key, "trace_dest")) return t->trace_dest = v[0] != 0, MTMI_OK;
    if (!strcmp(key, "calib_hist_dir")) return set_list(t->calib_hist_dir, key, v);
    return mt_fail(MTMI_ERR_ARG, "unknown tuning switch '%s' (see src/core/tuning.h)", key);
}

mtmi_status mt_tuning_parse(const char *s, mt_tuning *t) {
    *t = g_default;
    if (!s || !*s) return MTMI_OK;
    char buf[2048];
    if (strlen(s) >= sizeof buf) return mt_fail(MTMI_ERR_ARG, "tuning string too long");
    strcpy(buf, s);
    char *save = NULL;
    for (char *item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        while (*item == ' ') item++;
        if (!*item) continue;
        char *eq = strchr(item, '=');
        if (eq) *eq = 0;
        mtmi_status st = mt_tuning_set(t, item, eq ? eq + 1 : "1");
        if (st) return st;
    }
    return MTMI_OK;
}
