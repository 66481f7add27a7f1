/* Devices: parsing device and placement strings, the backend registry and the
 * CPU backend. */
#define _GNU_SOURCE /* strcasestr */
#include "pipeline/pipeline.h"
#include "quant/quant.h"

#include <ctype.h>
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const mt_backend *cuda_backend(void);

/* ------------------------------------------------------------- devspec */
const char *mt_precision_name(mt_precision p) {
    switch (p) {
    case MT_PREC_FP16: return "fp16";
    case MT_PREC_INT8: return "int8";
    default: return "fp32";
    }
}

static int parse_uint(const char **s, int *v) {
    if (!isdigit((unsigned char)**s)) return -1;
    errno = 0;
    char *e;
    long x = strtol(*s, &e, 10);
    if (errno || x < 0 || x > 4096) return -1;
    *v = (int)x;
    *s = e;
    return 0;
}

mtmi_status mt_devspec_parse(const char *str, mt_devspec *d) {
    memset(d, 0, sizeof *d);
    if (!str || !*str) return mt_fail(MTMI_ERR_ARG, "empty device (expected cpu[:N][/fp32] or cuda:N[.smK][/fp16|int8])");
    const char *s = str;
    int prec_given = 0;
    if (!strncmp(s, "cpu", 3)) {
        d->kind = MT_DEV_CPU;
        s += 3;
    } else if (!strncmp(s, "cuda", 4) || !strncmp(s, "gpu", 3)) {
        d->kind = MT_DEV_CUDA;
        s += s[0] == 'c' ? 4 : 3;
    } else {
        return mt_fail(MTMI_ERR_ARG, "unknown device '%s' (expected cpu[:N] or cuda:N[.smK])", str);
    }
    if (*s == ':') {
        s++;
        if (parse_uint(&s, &d->index)) return mt_fail(MTMI_ERR_ARG, "device '%s': bad index", str);
        if (*s == '.') {
            s++;
            if (d->kind != MT_DEV_CUDA || strncmp(s, "sm", 2))
                return mt_fail(MTMI_ERR_ARG, "device '%s': only cuda:N.smK takes an SM partition", str);
            s += 2;
            if (parse_uint(&s, &d->sms) || d->sms == 0)
                return mt_fail(MTMI_ERR_ARG, "device '%s': bad SM count (cuda:N.smK, K > 0)", str);
        }
    }
    d->prec = d->kind == MT_DEV_CUDA ? MT_PREC_FP16 : MT_PREC_FP32;
    if (*s == '/') {
        s++;
        prec_given = 1;
        if (!strcmp(s, "fp32")) d->prec = MT_PREC_FP32;
        else if (!strcmp(s, "fp16")) d->prec = MT_PREC_FP16;
        else if (!strcmp(s, "int8")) d->prec = MT_PREC_INT8;
        else return mt_fail(MTMI_ERR_ARG, "device '%s': unknown precision '%s' (fp32, fp16 or int8)", str, s);
        s += strlen(s);
    }
    (void)prec_given;
    if (*s) return mt_fail(MTMI_ERR_ARG, "device '%s': unexpected '%s'", str, s);
    return MTMI_OK;
}

const char *mt_device_str(const mt_devspec *d, char *buf, size_t cap) {
    if (d->kind == MT_DEV_CPU) {
        if (d->index) snprintf(buf, cap, "cpu:%d", d->index);
        else snprintf(buf, cap, "cpu");
    } else if (d->sms) snprintf(buf, cap, "cuda:%d.sm%d", d->index, d->sms);
    else snprintf(buf, cap, "cuda:%d", d->index);
    return buf;
}

const char *mt_devspec_str(const mt_devspec *d, char *buf, size_t cap) {
    char dev[48];
    snprintf(buf, cap, "%s/%s", mt_device_str(d, dev, sizeof dev), mt_precision_name(d->prec));
    return buf;
}

int mt_devspec_same_device(const mt_devspec *a, const mt_devspec *b) {
    return a->kind == b->kind && a->index == b->index && a->sms == b->sms;
}

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

static int num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    int m = omp_get_num_procs();
    if (m > 0 && m < n) n = m;
    return n > 0 ? (int)n : 1;
}

mtmi_status mt_placement_auto(const char *const *stages, int nstages, int have_calib, mt_placement *p) {
    memset(p, 0, sizeof *p);
    mt_devspec gpu = {.kind = MT_DEV_CUDA, .index = 0, .prec = MT_PREC_FP16};
    const mt_backend *cuda = cuda_backend();
    if (cuda && cuda->check(&gpu) == MTMI_OK) {
        p->has_default = 1;
        p->def = gpu;
        mt_devspec h = gpu;
        h.prec = MT_PREC_INT8;
        if (have_calib && cuda->check(&h) == MTMI_OK)
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
    int cores = num_cores();
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
    const mt_backend *cuda = cuda_backend();
    mt_devspec g16 = {.kind = MT_DEV_CUDA, .prec = MT_PREC_FP16};
    if (cuda && cuda->check(&g16) == MTMI_OK) {
        mt_devspec g8 = g16, part = g16;
        g8.prec = MT_PREC_INT8;
        if (n < cap) place_all(&out[n++], stages, nstages, &g16, &g16);
        if (have_calib && cuda->check(&g8) == MTMI_OK && n < cap) place_all(&out[n++], stages, nstages, &g16, &g8);
        /* The SoC-like split: heads on their own multiprocessors, a small
         * engine (16 SMs) or half of an H100 (64: the heads do more FLOPs
         * than the encoder). */
        static const int parts[2] = {16, 64};
        for (int k = 0; k < 2; k++) {
            part.sms = parts[k];
            part.prec = have_calib ? MT_PREC_INT8 : MT_PREC_FP16;
            if (cuda->check(&part) == MTMI_OK && n < cap) place_all(&out[n++], stages, nstages, &g16, &part);
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

/* ------------------------------------------------------------- backends */
/* The CUDA backend (src/cuda/stage.c); NULL in builds without nvcc. */
static const mt_backend *cuda_backend(void) {
#if MTMI_HAVE_CUDA
    return mt_backend_cuda();
#else
    return NULL;
#endif
}

const mt_backend *mt_backend_for(const mt_devspec *d) {
    char buf[64];
    if (d->kind == MT_DEV_CPU) return mt_backend_cpu();
    const mt_backend *b = cuda_backend();
    if (!b) {
        mt_fail(MTMI_ERR_DEVICE, "device '%s': this build has no CUDA support (no nvcc at build time)",
                mt_devspec_str(d, buf, sizeof buf));
        return NULL;
    }
    return b;
}

/* ------------------------------------------------------------ CPU backend */
typedef struct cpu_plan {
    mt_devspec dev;
    int threads;
    mt_graph *qgraph;   /* INT8: the subgraph rewritten to QConv/QLinear */
    mt_cpu_plan *plan;
} cpu_plan;

static mtmi_status cpu_check(const mt_devspec *d) {
    char buf[64];
    if (d->kind != MT_DEV_CPU) return mt_fail(MTMI_ERR_DEVICE, "cpu backend given device '%s'", mt_devspec_str(d, buf, sizeof buf));
    if (d->prec == MT_PREC_FP16)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "device '%s': the CPU runs fp32 and int8, not fp16", mt_devspec_str(d, buf, sizeof buf));
    if (d->index >= 64) return mt_fail(MTMI_ERR_DEVICE, "device '%s': at most 64 CPU devices", mt_devspec_str(d, buf, sizeof buf));
    return MTMI_OK;
}

static mtmi_status cpu_create(const mt_devspec *d, const mt_graph *g, const mt_stage_cfg *cfg, void **out) {
    *out = NULL;
    char buf[64];
    mtmi_status s = cpu_check(d);
    if (s) return s;
    cpu_plan *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    p->dev = *d;
    p->threads = cfg && cfg->threads > 0 ? cfg->threads : num_cores();
    if (d->prec == MT_PREC_INT8) {
        /* The CPU INT8 plan is the exact reference of the GPU's integer
         * arithmetic (quant.h): every convolution / linear layer whose input
         * has a scale becomes QConv / QLinear; the rest stays float. */
        char what[80];
        snprintf(what, sizeof what, "device '%s'", mt_devspec_str(d, buf, sizeof buf));
        if ((s = mt_quant_stage_graph(g, cfg ? cfg->calib : NULL, what, &p->qgraph))) {
            free(p);
            return s;
        }
        g = p->qgraph;
    }
    s = mt_cpu_plan_create(g, p->threads, &p->plan);
    if (s) {
        mt_graph_free(p->qgraph);
        free(p);
        return s;
    }
    *out = p;
    return MTMI_OK;
}

static mtmi_status cpu_bind(void *plan) {
    cpu_plan *p = plan;
    /* Per-thread ICV: this stage's parallel regions use its device's share. */
    omp_set_num_threads(p->threads);
    return MTMI_OK;
}

static mtmi_status cpu_submit(void *plan, const mt_stage_io *io, mt_done_fn done, void *arg) {
    cpu_plan *p = plan;
    mt_tview out[MT_STAGE_MAX_IO];
    memcpy(out, io->out, sizeof(mt_tview) * io->nout);
    mtmi_status s = mt_cpu_plan_run(p->plan, io->in, io->nin, out, io->nout);
    done(arg, s, s ? mtmi_last_error() : NULL);
    return MTMI_OK;
}

static void *cpu_alloc(const mt_devspec *d, size_t bytes, int mem) {
    (void)d, (void)mem;
    return mt_alloc_aligned(bytes ? bytes : 64);
}

static void cpu_release(const mt_devspec *d, void *ptr, int mem) {
    (void)d, (void)mem;
    free(ptr);
}

static size_t cpu_memory(void *plan) { return mt_cpu_plan_arena_bytes(((cpu_plan *)plan)->plan); }

static void cpu_destroy(void *plan) {
    cpu_plan *p = plan;
    if (!p) return;
    mt_cpu_plan_free(p->plan);
    mt_graph_free(p->qgraph);
    free(p);
}

static const mt_backend g_cpu_backend = {
    .name = "cpu",
    .check = cpu_check,
    .create = cpu_create,
    .bind_thread = cpu_bind,
    .submit = cpu_submit,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .memory = cpu_memory,
    .destroy = cpu_destroy,
};

const mt_backend *mt_backend_cpu(void) { return &g_cpu_backend; }

int mt_num_cores(void) { return num_cores(); }
