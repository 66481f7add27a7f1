/* An interim CUDA device for the pipeline, over src/cuda's synchronous plan
 * API (mt_cuda_plan_create / mt_cuda_plan_run with host inputs and
 * outputs).  It lets `cuda:N/fp16` and `cuda:N/fp32` stages run today; each
 * stage copies its inputs in and its outputs out, so stage-to-stage tensors
 * cross PCIe.  When src/cuda provides the asynchronous mt_backend_cuda()
 * (device-resident cut tensors, stream callbacks, int8, green contexts; see
 * README.md), mt_backend_for prefers it and this file can go. */
#include "pipeline/pipeline.h"

#if MTMI_HAVE_CUDA
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "cuda/cuda_backend.h"

typedef struct cuda_sync_plan {
    mt_devspec dev;
    mt_cuda_plan *plan;
} cuda_sync_plan;

static mtmi_status cs_check(const mt_devspec *d) {
    char buf[64];
    if (d->kind != MT_DEV_CUDA) return mt_fail(MTMI_ERR_DEVICE, "cuda backend given device '%s'", mt_devspec_str(d, buf, sizeof buf));
    mtmi_status s = mt_cuda_check_device(d->index);
    if (s) return mt_fail_context(s, "device '%s'", mt_devspec_str(d, buf, sizeof buf));
    if (d->sms)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "device '%s': SM partitions (green contexts) are not in the CUDA backend yet",
                       mt_devspec_str(d, buf, sizeof buf));
    if (d->prec == MT_PREC_INT8)
        return mt_fail(MTMI_ERR_UNSUPPORTED, "device '%s': INT8 GPU plans are not in the CUDA backend yet (use fp16, or cpu:N/int8)",
                       mt_devspec_str(d, buf, sizeof buf));
    return MTMI_OK;
}

static mtmi_status cs_create(const mt_devspec *d, const mt_graph *g, const mt_stage_cfg *cfg, void **out) {
    (void)cfg;
    *out = NULL;
    mtmi_status s = cs_check(d);
    if (s) return s;
    cuda_sync_plan *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    p->dev = *d;
    if ((s = mt_cuda_plan_create(g, d->index, d->prec == MT_PREC_FP16, &p->plan))) {
        free(p);
        return s;
    }
    *out = p;
    return MTMI_OK;
}

static mtmi_status cs_submit(void *plan, const mt_stage_io *io, mt_done_fn done, void *arg) {
    cuda_sync_plan *p = plan;
    mt_tview out[MT_STAGE_MAX_IO];
    memcpy(out, io->out, sizeof(mt_tview) * io->nout);
    /* Synchronous: returns when the outputs are on the host. */
    mtmi_status s = mt_cuda_plan_run(p->plan, io->in, io->nin, out, io->nout);
    done(arg, s, s ? mtmi_last_error() : NULL);
    return MTMI_OK;
}

/* Host memory in every case (the plan API takes host tensors), pinned and
 * portable across GPUs: copies from pageable memory go through the
 * driver's staging buffers at a fraction of the bus speed and serialize
 * across streams, which for the 80 MB seg logits at 1024x1024 is most of
 * a stage's time. */
static void *cs_alloc(const mt_devspec *d, size_t bytes, int mem) {
    (void)d, (void)mem;
    void *p = NULL;
    if (cudaHostAlloc(&p, bytes ? bytes : 64, cudaHostAllocPortable) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky-free error state */
        return NULL;
    }
    return p;
}

static void cs_release(const mt_devspec *d, void *ptr, int mem) {
    (void)d, (void)mem;
    cudaFreeHost(ptr);
}

static size_t cs_memory(void *plan) {
    size_t a = 0, w = 0, ws = 0;
    mt_cuda_plan_memory(((cuda_sync_plan *)plan)->plan, &a, &w, &ws);
    return a + w + ws;
}

static void cs_destroy(void *plan) {
    cuda_sync_plan *p = plan;
    if (!p) return;
    mt_cuda_plan_free(p->plan);
    free(p);
}

static const mt_backend g_cuda_sync = {
    .name = "cuda-sync",
    .check = cs_check,
    .create = cs_create,
    .submit = cs_submit,
    .alloc = cs_alloc,
    .release = cs_release,
    .memory = cs_memory,
    .destroy = cs_destroy,
};

const mt_backend *mt_backend_cuda_sync(void) { return &g_cuda_sync; }
#else
const mt_backend *mt_backend_cuda_sync(void) { return NULL; }
#endif
