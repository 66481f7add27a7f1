/* The CPU backend (mt_backend of backend/backend.h): a CPU plan per stage,
 * run on the calling thread.
 *
 * `cpu`, `cpu:1`, ... are shares of the cores (src/pipeline/README.md): the
 * plan is compiled with its share's thread count, which every OpenMP
 * region of its kernels gets, and bind_thread sets it as the stage
 * thread's per-thread ICV too.  INT8 reaches this backend as QConv /
 * QLinear nodes (mt_plan_create's rewrite); their kernels are the exact
 * reference of the GPU's integer arithmetic. */
#include "cpu/cpu.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct cpu_plan {
    mt_devspec dev;
    int threads;
    mt_cpu_plan *plan;
} cpu_plan;

static mtmi_status check_device(const mt_devspec *d) {
    char buf[64];
    if (d->kind != MT_DEV_CPU) return mt_fail(MTMI_ERR_DEVICE, "cpu backend given device '%s'", mt_devspec_str(d, buf, sizeof buf));
    if (d->prec == MT_PREC_FP16)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "device '%s': the CPU runs fp32 and int8, not fp16", mt_devspec_str(d, buf, sizeof buf));
    if (d->index >= 64) return mt_fail(MTMI_ERR_DEVICE, "device '%s': at most 64 CPU devices", mt_devspec_str(d, buf, sizeof buf));
    return MTMI_OK;
}

/* Every live node has a kernel (what plan creation would find first). */
static mtmi_status cpu_supports(const mt_devspec *d, const mt_graph *g) {
    mtmi_status s = check_device(d);
    if (s || !g) return s;
    char desc[256];
    for (int i = 0; i < g->nnodes; i++) {
        const mt_node *n = &g->nodes[i];
        if (!n->dead && !mt_cpu_find_kernel(n->domain, n->op))
            return mt_fail(MTMI_ERR_UNSUPPORTED, "%s: no CPU kernel for this operator", mt_node_desc(g, n, desc, sizeof desc));
    }
    return MTMI_OK;
}

static mtmi_status cpu_create(const mt_devspec *d, const mt_graph *g, const mt_stage_cfg *cfg, void **out) {
    *out = NULL;
    mtmi_status s = check_device(d);
    if (s) return s;
    cpu_plan *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    p->dev = *d;
    /* 0: the executor's default (OpenMP's thread count), what a plan made
     * without a count has always used; a pipeline always gives its share. */
    p->threads = cfg && cfg->threads > 0 ? cfg->threads : 0;
    mt_cpu_plan_opts o = {.nthreads = p->threads, .tuning = cfg ? cfg->tuning : NULL};
    if ((s = mt_cpu_plan_create_ex(g, &o, &p->plan))) {
        free(p);
        return s;
    }
    *out = p;
    return MTMI_OK;
}

static mtmi_status cpu_bind(void *plan) {
    cpu_plan *p = plan;
    /* Per-thread ICV: this stage's parallel regions use its device's share. */
    if (p->threads > 0) omp_set_num_threads(p->threads);
    return MTMI_OK;
}

static mtmi_status cpu_run(void *plan, const mt_tview *in, int nin, mt_tview *out, int nout) {
    return mt_cpu_plan_run(((cpu_plan *)plan)->plan, in, nin, out, nout);
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

static void cpu_set_profile(void *plan, int on) { mt_cpu_plan_set_profile(((cpu_plan *)plan)->plan, on); }

static const double *cpu_node_ms(void *plan, int *count) { return mt_cpu_plan_node_ms(((cpu_plan *)plan)->plan, count); }

static void cpu_destroy(void *plan) {
    cpu_plan *p = plan;
    if (!p) return;
    mt_cpu_plan_free(p->plan);
    free(p);
}

static const mt_backend g_cpu_backend = {
    .version = MT_BACKEND_VERSION,
    .name = "cpu",
    .supports = cpu_supports,
    .create = cpu_create,
    .bind_thread = cpu_bind,
    .run = cpu_run,
    .submit = cpu_submit,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .memory = cpu_memory,
    .set_profile = cpu_set_profile,
    .node_ms = cpu_node_ms,
    .destroy = cpu_destroy,
};

const mt_backend *mt_backend_cpu(void) { return &g_cpu_backend; }
