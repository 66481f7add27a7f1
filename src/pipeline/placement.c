/* Placements: which stage runs on which device (the device grammar itself
 * is backend/device.c).  The automatic choices ask the backends whether
 * they run a device (mt_device_supports) instead of trying to build. */
#define _GNU_SOURCE /* strcasestr */
#include "pipeline/pipeline.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ----------------------------------------------------------- placement */
mtmi_status mt_placement_parse(const char *str, mt_placement *p) {
    memset(p, 0, sizeof *p);
    if (!str || !*str) return mt_fail(MTMI_ERR_ARG, "empty placement");
    char buf[1024];
    if (strlen(str) >= sizeof buf) return mt_fail(MTMI_ERR_ARG, "placement too long");
    strcpy(buf, str);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        if (!strcmp(tok, "auto")) {
            p->is_auto = 1;
            continue;
        }
        char *eq = strchr(tok, '=');
        mt_devspec d;
        if (!eq) {
            if (mt_devspec_parse(tok, &d)) return mt_fail_context(MTMI_ERR_ARG, "placement '%s'", str);
            if (p->has_default) return mt_fail(MTMI_ERR_ARG, "placement '%s': more than one default device", str);
            p->has_default = 1;
            p->def = d;
            continue;
        }
        *eq = 0;
        const char *name = tok, *dev = eq + 1;
        if (!*name || strlen(name) >= sizeof p->names[0])
            return mt_fail(MTMI_ERR_ARG, "placement '%s': bad stage name '%s'", str, name);
        if (mt_devspec_parse(dev, &d)) return mt_fail_context(MTMI_ERR_ARG, "placement '%s', stage '%s'", str, name);
        if (!strcmp(name, "*") || !strcmp(name, "default")) {
            p->has_default = 1;
            p->def = d;
            continue;
        }
        for (int i = 0; i < p->n; i++)
            if (!strcmp(p->names[i], name)) return mt_fail(MTMI_ERR_ARG, "placement '%s': stage '%s' placed twice", str, name);
        if (p->n == MT_PLACE_MAX) return mt_fail(MTMI_ERR_ARG, "placement '%s': too many stages", str);
        strcpy(p->names[p->n], name);
        p->dev[p->n++] = d;
    }
    if (p->is_auto && (p->n || p->has_default))
        return mt_fail(MTMI_ERR_ARG, "placement '%s': 'auto' cannot be combined with devices", str);
    if (!p->is_auto && !p->n && !p->has_default) return mt_fail(MTMI_ERR_ARG, "empty placement '%s'", str);
    return MTMI_OK;
}

static int find_entry(const mt_placement *p, const char *stage) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->names[i], stage)) return i;
    /* "seg" places a head whose output is called "seg_logits". */
    for (int i = 0; i < p->n; i++)
        if (strcasestr(stage, p->names[i])) return i;
    return -1;
}

mt_devspec mt_placement_lookup(const mt_placement *p, const char *stage) {
    int i = find_entry(p, stage);
    if (i >= 0) return p->dev[i];
    if (p->has_default) return p->def;
    mt_devspec d = {.kind = MT_DEV_CPU, .prec = MT_PREC_FP32};
    return d;
}

mtmi_status mt_placement_check(const mt_placement *p, const char *const *stages, int nstages) {
    for (int i = 0; i < p->n; i++) {
        int used = 0;
        for (int s = 0; s < nstages && !used; s++) used = find_entry(p, stages[s]) == i;
        if (!used) {
            char list[512] = "";
            for (int s = 0; s < nstages; s++) {
                if (s) strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, stages[s], sizeof list - strlen(list) - 1);
            }
            return mt_fail(MTMI_ERR_ARG, "placement names stage '%s', but the model's stages are %s", p->names[i], list);
        }
    }
    return MTMI_OK;
}

/* Does this build and machine run d?  A question to its backend, no plan
 * made; the error it leaves is cleared by the callers, which move on to
 * the next choice. */
static int have(const mt_devspec *d) { return mt_device_supports(d, NULL) == MTMI_OK; }

mtmi_status mt_placement_auto(const char *const *stages, int nstages, int have_calib, mt_placement *p) {
    memset(p, 0, sizeof *p);
    mt_devspec gpu = {.kind = MT_DEV_CUDA, .index = 0, .prec = MT_PREC_FP16};
    if (have(&gpu)) {
        p->has_default = 1;
        p->def = gpu;
        mt_devspec h = gpu;
        h.prec = MT_PREC_INT8;
        if (have_calib && have(&h))
            for (int s = 1; s < nstages && p->n < MT_PLACE_MAX; s++) {
                snprintf(p->names[p->n], sizeof p->names[0], "%s", stages[s]);
                p->dev[p->n++] = h;
            }
        mt_clear_error();
        return MTMI_OK;
    }
    mt_clear_error();
    /* CPU only: one device per stage while there are at least two cores a
     * device, so that heads overlap the next frame's encoder. */
    int cores = mt_num_cores();
    int ndev = cores / 2 < nstages ? cores / 2 : nstages;
    if (ndev < 1) ndev = 1;
    p->has_default = 1;
    p->def = (mt_devspec){.kind = MT_DEV_CPU, .prec = MT_PREC_FP32};
    for (int s = 0; s < nstages && p->n < MT_PLACE_MAX; s++) {
        snprintf(p->names[p->n], sizeof p->names[0], "%s", stages[s]);
        p->dev[p->n++] = (mt_devspec){.kind = MT_DEV_CPU, .index = s % ndev, .prec = MT_PREC_FP32};
    }
    return MTMI_OK;
}

static void place_all(mt_placement *p, const char *const *stages, int nstages, const mt_devspec *enc, const mt_devspec *heads) {
    memset(p, 0, sizeof *p);
    for (int s = 0; s < nstages && s < MT_PLACE_MAX; s++) {
        snprintf(p->names[s], sizeof p->names[0], "%s", stages[s]);
        p->dev[s] = s ? *heads : *enc;
    }
    p->n = nstages < MT_PLACE_MAX ? nstages : MT_PLACE_MAX;
}

int mt_placement_candidates(const char *const *stages, int nstages, int have_calib, mt_placement *out, int cap) {
    int n = 0;
    mt_devspec g16 = {.kind = MT_DEV_CUDA, .prec = MT_PREC_FP16};
    if (have(&g16)) {
        mt_devspec g8 = g16, part = g16;
        g8.prec = MT_PREC_INT8;
        if (n < cap) place_all(&out[n++], stages, nstages, &g16, &g16);
        if (have_calib && have(&g8) && n < cap) {
            place_all(&out[n++], stages, nstages, &g16, &g8);
            /* one head in INT8, the others FP16: on an H100 the INT8 depth
             * head is faster than its FP16 one and the INT8 seg head slower
             * (docs/PERFORMANCE.md), so the best mix is per head */
            for (int h = 1; nstages > 2 && h < nstages && n < cap; h++) {
                place_all(&out[n], stages, nstages, &g16, &g16);
                out[n++].dev[h] = g8;
            }
        }
        /* The SoC-like split: heads on their own multiprocessors, a small
         * engine (16 SMs) or half of an H100 (64: the heads do more FLOPs
         * than the encoder). */
        static const int parts[2] = {16, 64};
        for (int k = 0; k < 2; k++) {
            part.sms = parts[k];
            part.prec = have_calib ? MT_PREC_INT8 : MT_PREC_FP16;
            if (have(&part) && n < cap) place_all(&out[n++], stages, nstages, &g16, &part);
        }
    }
    mt_clear_error();
    mt_devspec c0 = {.kind = MT_DEV_CPU, .prec = MT_PREC_FP32}, c1 = c0;
    c1.index = 1;
    if (n < cap) place_all(&out[n++], stages, nstages, &c0, &c0);
    if (nstages > 1 && n < cap) place_all(&out[n++], stages, nstages, &c0, &c1);
    if (nstages > 2 && n < cap) {
        place_all(&out[n], stages, nstages, &c0, &c0);
        for (int s = 0; s < out[n].n; s++) out[n].dev[s].index = s;
        n++;
    }
    /* INT8 heads on the CPU: faster than FP32 where the CPU has AVX-512
     * VNNI, slower where it has only AVX2 (docs/PERFORMANCE.md); measuring
     * decides. */
    if (have_calib) {
        mt_devspec q0 = c0, q1 = c1;
        q0.prec = q1.prec = MT_PREC_INT8;
        if (n < cap) place_all(&out[n++], stages, nstages, &c0, &q0);
        if (nstages > 1 && n < cap) place_all(&out[n++], stages, nstages, &c0, &q1);
    }
    return n;
}

const char *mt_placement_str(const mt_placement *p, const char *const *stages, int nstages, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int s = 0; s < nstages && len < cap; s++) {
        char d[64];
        mt_devspec dv = mt_placement_lookup(p, stages[s]);
        int n = snprintf(buf + len, cap - len, "%s%s=%s", s ? " " : "", stages[s], mt_devspec_str(&dv, d, sizeof d));
        if (n < 0) break;
        len += (size_t)n;
    }
    return buf;
}

