/* The CUDA backend (mt_backend of backend/backend.h): a pipeline stage, or
 * a one-stage plan (mt_plan, the plan API), on `cuda:N` or `cuda:N.smK`.
 *
 * A stage on `cuda:N` is a CUDA plan (plan.c) with its own stream, and a
 * second stream for what follows a run.  submit() only queues work: copies
 * of host inputs into the plan's staging buffers, the plan's CUDA graph (an
 * event recorded after it), then on the second stream, behind that event,
 * the copies of results the application takes on the host and a stream
 * callback that reports completion to the pipeline.  So neither a frame's
 * download nor the host callback (which holds up its stream until it
 * returns) delays the next frame's kernels; the stage thread is free for
 * the next frame at once and nothing on the hot path waits for the GPU.  Tensors
 * that stay on one GPU (the encoder's features, read by heads on the same
 * GPU) are read and written in place in device memory: the plan captures a
 * CUDA graph per frame slot's buffers (mt_cuda_plan_enqueue).
 *
 * `cuda:N.smK` is a green context of K multiprocessors of GPU N: the SoC's
 * dedicated engine, carved out of one GPU.  Every stage on a partition gets
 * its own green context made from the same SM group (the driver's split is
 * deterministic, so stages naming the same `.smK` share those SMs), because
 * a green context may be current to only one thread at a time and each
 * stage has its own thread.  The whole-GPU device `cuda:N` keeps every SM,
 * including a partition's: the hardware scheduler shares them.
 *
 * INT8 stages get the subgraph rewritten to QConv / QLinear (the CPU INT8
 * reference's rewrite, done by mt_plan_create) and run those on integer
 * tensor cores; the float tensors between them stay FP16. */
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#ifdef MTMI_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "backend/choices.h"
#include "cuda/cuda_internal.h"

#define CUDA_RING 64 /* completion records per plan: more than frames in flight */

typedef struct done_rec {
    mt_done_fn done;
    void *arg;
} done_rec;

typedef struct cuda_stage {
    mt_devspec dev;
    mt_cuda_plan *plan;
    CUgreenCtx gctx;      /* .smK: this stage's green context */
    CUcontext ctx;
    cudaStream_t gstream; /* .smK: the green context's stream (the plan's) */
    cudaStream_t side;    /* result copies and completion callbacks */
    cudaStream_t up;      /* input uploads */
    cudaEvent_t ran[CUDA_RING]; /* after a run, when the pipeline gives no event */
    cudaEvent_t uploaded[CUDA_RING];
    int sms;              /* multiprocessors the stage may use */
    done_rec ring[CUDA_RING];
    unsigned next;
} cuda_stage;

static const char *dev_str(const mt_devspec *d, char *buf, size_t cap) { return mt_devspec_str(d, buf, cap); }

/* The SM resource of GPU `index` (the primary context made current first,
 * as the driver advises before creating green contexts). */
static mtmi_status sm_resource(const mt_devspec *d, const mc_driver_api **api, CUdevice *dev, CUdevResource *all) {
    char buf[64];
    if (!(*api = mc_driver())) return mt_fail_context(MTMI_ERR_DEVICE, "device '%s'", dev_str(d, buf, sizeof buf));
    if (cudaSetDevice(d->index) != cudaSuccess || cudaFree(0) != cudaSuccess) {
        cudaGetLastError();
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': cannot initialize the GPU", dev_str(d, buf, sizeof buf));
    }
    CUresult r = (*api)->device_get(dev, d->index);
    if (r == CUDA_SUCCESS) r = (*api)->device_get_dev_resource(*dev, all, CU_DEV_RESOURCE_TYPE_SM);
    if (r != CUDA_SUCCESS)
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': cannot query its multiprocessors: %s", dev_str(d, buf, sizeof buf),
                       mc_driver_error(r));
    return MTMI_OK;
}

/* The device: the GPU exists, and a partition fits it. */
static mtmi_status cuda_check(const mt_devspec *d) {
    char buf[64];
    if (d->kind != MT_DEV_CUDA) return mt_fail(MTMI_ERR_DEVICE, "cuda backend given device '%s'", dev_str(d, buf, sizeof buf));
    mtmi_status s = mt_cuda_check_device(d->index); /* names the device itself */
    if (s) return s;
    if (!d->sms) return MTMI_OK;
    const mc_driver_api *api;
    CUdevice dev;
    CUdevResource all;
    if ((s = sm_resource(d, &api, &dev, &all))) return s;
    unsigned total = all.sm.smCount, least = all.sm.minSmPartitionSize ? all.sm.minSmPartitionSize : 1;
    if ((unsigned)d->sms >= total)
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': GPU %d has %u multiprocessors; a partition must leave some (K < %u)",
                       dev_str(d, buf, sizeof buf), d->index, total, total);
    if ((unsigned)d->sms < least)
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': the smallest partition of GPU %d is %u multiprocessors",
                       dev_str(d, buf, sizeof buf), d->index, least);
    return MTMI_OK;
}

/* A green context of d->sms multiprocessors and a stream in it. */
static mtmi_status make_partition(const mt_devspec *d, cuda_stage *c) {
    char buf[64];
    const mc_driver_api *api;
    CUdevice dev;
    CUdevResource all, group;
    mtmi_status s = sm_resource(d, &api, &dev, &all);
    if (s) return s;
    unsigned n = 1;
    memset(&group, 0, sizeof group);
    CUresult r = api->dev_sm_resource_split_by_count(&group, &n, &all, NULL, 0, (unsigned)d->sms);
    if (r != CUDA_SUCCESS || n < 1)
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': cannot split off %d multiprocessors: %s", dev_str(d, buf, sizeof buf), d->sms,
                       r != CUDA_SUCCESS ? mc_driver_error(r) : "no group");
    CUdevResourceDesc desc;
    r = api->dev_resource_generate_desc(&desc, &group, 1);
    if (r == CUDA_SUCCESS) r = api->green_ctx_create(&c->gctx, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM);
    if (r == CUDA_SUCCESS) r = api->ctx_from_green_ctx(&c->ctx, c->gctx);
    if (r == CUDA_SUCCESS) r = api->green_ctx_stream_create((CUstream *)&c->gstream, c->gctx, CU_STREAM_NON_BLOCKING, 0);
    if (r != CUDA_SUCCESS)
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': cannot create its green context: %s", dev_str(d, buf, sizeof buf),
                       mc_driver_error(r));
    c->sms = (int)group.sm.smCount;
    return MTMI_OK;
}

static void cuda_destroy(void *plan);

/* The stage's second stream and its ring of events, in the stage's
 * context (current after plan creation: the green context for `.smK`). */
static mtmi_status make_side_stream(cuda_stage *c) {
    char buf[64];
    cudaError_t e = cudaSuccess;
    if (c->ctx) {
        const mc_driver_api *api = mc_driver();
        CUresult r = api->green_ctx_stream_create((CUstream *)&c->side, c->gctx, CU_STREAM_NON_BLOCKING, 0);
        if (r == CUDA_SUCCESS) r = api->green_ctx_stream_create((CUstream *)&c->up, c->gctx, CU_STREAM_NON_BLOCKING, 0);
        if (r != CUDA_SUCCESS)
            return mt_fail(MTMI_ERR_DEVICE, "device '%s': cannot create its copy stream: %s", dev_str(&c->dev, buf, sizeof buf),
                           mc_driver_error(r));
    } else {
        e = cudaStreamCreateWithFlags(&c->side, cudaStreamNonBlocking);
        if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->up, cudaStreamNonBlocking);
    }
    for (int k = 0; k < CUDA_RING && e == cudaSuccess; k++) {
        e = cudaEventCreateWithFlags(&c->ran[k], cudaEventDisableTiming);
        if (e == cudaSuccess) e = cudaEventCreateWithFlags(&c->uploaded[k], cudaEventDisableTiming);
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': cannot create its copy stream: %s", dev_str(&c->dev, buf, sizeof buf),
                       cudaGetErrorString(e));
    }
    return MTMI_OK;
}

/* The device, then every operator of g against the planner's table (the
 * one plan_node dispatches on). */
static mtmi_status cuda_supports(const mt_devspec *d, const mt_graph *g) {
    mtmi_status s = cuda_check(d);
    if (s || !g) return s;
    return mt_cuda_graph_supported(g);
}

static mtmi_status cuda_create(const mt_devspec *d, const mt_graph *g, const mt_stage_cfg *cfg, void **out) {
    *out = NULL;
    mtmi_status s = cuda_check(d);
    if (s) return s;
    cuda_stage *c = mt_alloc(sizeof *c);
    if (!c) return MTMI_ERR_NOMEM;
    c->dev = *d;
    mt_cuda_plan_opts o = {.fp16 = d->prec != MT_PREC_FP32, .tuning = cfg ? cfg->tuning : NULL,
                           .choices = cfg ? cfg->choices : NULL};
    unsigned char in_dev[MT_STAGE_MAX_IO] = {0}, out_dev[MT_STAGE_MAX_IO] = {0};
    for (int i = 0; cfg && cfg->in_mem && i < g->ninputs && i < MT_STAGE_MAX_IO; i++) in_dev[i] = cfg->in_mem[i] == MT_MEM_DEVICE;
    for (int i = 0; cfg && cfg->out_mem && i < g->noutputs && i < MT_STAGE_MAX_IO; i++) out_dev[i] = cfg->out_mem[i] == MT_MEM_DEVICE;
    o.in_dev = in_dev;
    o.out_dev = out_dev;
    if (d->sms) {
        if ((s = make_partition(d, c))) goto fail;
        o.stream = c->gstream;
        o.ctx = c->ctx;
        o.sms = c->sms;
    }
    s = mt_cuda_plan_create_ex(g, d->index, &o, &c->plan);
    if (!s) s = make_side_stream(c);
    /* Plan creation made the green context current on this thread; give
     * the thread its device's primary context back for what follows
     * (allocating the pipeline's buffers, creating the next stage). */
    if (c->ctx) {
        const mc_driver_api *api = mc_driver();
        if (api) api->ctx_set_current(NULL);
        cudaSetDevice(d->index);
    }
    if (s) goto fail;
    *out = c;
    return MTMI_OK;
fail:
    cuda_destroy(c);
    return s;
}

/* On the stage's thread: its GPU, or its green context (current to this
 * thread only, as green contexts require). */
static mtmi_status cuda_bind(void *plan) {
    cuda_stage *c = plan;
    char buf[64];
    if (c->ctx) {
        const mc_driver_api *api = mc_driver();
        CUresult r = api ? api->ctx_set_current(c->ctx) : CUDA_ERROR_NOT_INITIALIZED;
        if (r != CUDA_SUCCESS)
            return mt_fail(MTMI_ERR_DEVICE, "device '%s': cannot make its green context current: %s", dev_str(&c->dev, buf, sizeof buf),
                           mc_driver_error(r));
        return MTMI_OK;
    }
    if (cudaSetDevice(c->dev.index) != cudaSuccess)
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': %s", dev_str(&c->dev, buf, sizeof buf), cudaGetErrorString(cudaGetLastError()));
    return MTMI_OK;
}

/* Runs on a driver thread when the stream reaches it: no CUDA calls here
 * (cudaGetErrorString is a table lookup); `done` only takes the pipeline's
 * mutex.  Unlike cudaLaunchHostFunc, a stream callback also runs when the
 * stream's work failed, with the error: a fault reaches the pipeline as a
 * stage error instead of a hang. */
static void CUDART_CB stream_done(cudaStream_t stream, cudaError_t status, void *ud) {
    (void)stream;
    done_rec *r = ud;
    if (status != cudaSuccess) {
        char msg[192];
        snprintf(msg, sizeof msg, "GPU work failed: %s", cudaGetErrorString(status));
        r->done(r->arg, MTMI_ERR_DEVICE, msg);
    } else {
        r->done(r->arg, MTMI_OK, NULL);
    }
}

/* The results the application takes on the host, copied on the side
 * stream (between the timing events when given). */
static cudaError_t copy_results(cuda_stage *c, const mt_stage_io *io) {
    cudaError_t e = cudaSuccess;
    if (io->copy_begin) e = cudaEventRecord((cudaEvent_t)io->copy_begin, c->side);
    for (int i = 0; i < io->nout && e == cudaSuccess; i++)
        if (io->out_host[i])
            e = cudaMemcpyAsync(io->out_host[i], io->out[i].data, mt_tview_numel(&io->out[i]) * mt_dtype_size(io->out[i].dtype),
                                cudaMemcpyDeviceToHost, c->side);
    if (io->copy_end && e == cudaSuccess) e = cudaEventRecord((cudaEvent_t)io->copy_end, c->side);
    return e;
}

/* The inputs given in host memory to upload, on the upload stream, then
 * the run's stream waits for them (event `done`). */
static cudaError_t upload_inputs(cuda_stage *c, const mt_stage_io *io, cudaEvent_t done, cudaStream_t run) {
    int any = 0;
    cudaError_t e = cudaSuccess;
    for (int i = 0; i < io->nin && e == cudaSuccess; i++)
        if (io->in_host[i]) {
            any = 1;
            e = cudaMemcpyAsync(io->in[i].data, io->in_host[i], mt_tview_numel(&io->in[i]) * mt_dtype_size(io->in[i].dtype),
                                cudaMemcpyHostToDevice, c->up);
        }
    if (any && e == cudaSuccess) e = cudaEventRecord(done, c->up);
    if (any && e == cudaSuccess) e = cudaStreamWaitEvent(run, done, 0);
    return e;
}

static cudaError_t wait_and_enqueue(cuda_stage *c, const mt_stage_io *io, cudaEvent_t uploaded, mtmi_status *s) {
    cudaStream_t st = (cudaStream_t)mt_cuda_plan_stream(c->plan);
    cudaError_t e = upload_inputs(c, io, uploaded, st);
    for (int i = 0; i < 2 && e == cudaSuccess; i++)
        if (io->wait_events[i]) e = cudaStreamWaitEvent(st, (cudaEvent_t)io->wait_events[i], 0);
    if (e != cudaSuccess) return e;
    *s = mt_cuda_plan_enqueue(c->plan, io->in, io->in_mem, io->nin, io->out, io->out_mem, io->nout);
    return cudaSuccess;
}

static mtmi_status cuda_submit(void *plan, const mt_stage_io *io, mt_done_fn done, void *arg) {
    cuda_stage *c = plan;
    char buf[64];
    mtmi_status s = MTMI_OK;
    const unsigned k = c->next++ % CUDA_RING;
    cudaError_t e = wait_and_enqueue(c, io, c->uploaded[k], &s);
    if (s) return mt_fail_context(s, "device '%s'", dev_str(&c->dev, buf, sizeof buf));
    done_rec *r = &c->ring[k];
    r->done = done;
    r->arg = arg;
    cudaEvent_t ran = io->ready_event ? (cudaEvent_t)io->ready_event : c->ran[k];
    if (e == cudaSuccess) e = cudaEventRecord(ran, (cudaStream_t)mt_cuda_plan_stream(c->plan));
    if (e == cudaSuccess) e = cudaStreamWaitEvent(c->side, ran, 0);
    if (e == cudaSuccess) e = copy_results(c, io);
    if (e == cudaSuccess) e = cudaStreamAddCallback(c->side, stream_done, r, 0);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return mt_fail(MTMI_ERR_DEVICE, "device '%s': cannot queue the run's completion: %s", dev_str(&c->dev, buf, sizeof buf),
                       cudaGetErrorString(e));
    }
    return MTMI_OK;
}

/* In the stage's own context (its green context for `.smK`), which its
 * streams record into; the caller's context is restored after. */
static void *cuda_event_create(void *plan, int timing) {
    cuda_stage *c = plan;
    const mc_driver_api *api = c->ctx ? mc_driver() : NULL;
    CUcontext prev_ctx = NULL;
    int prev = 0;
    cudaGetDevice(&prev);
    if (api && (api->ctx_get_current(&prev_ctx) != CUDA_SUCCESS || api->ctx_set_current(c->ctx) != CUDA_SUCCESS)) return NULL;
    if (!api) cudaSetDevice(c->dev.index);
    cudaEvent_t ev = NULL;
    if (cudaEventCreateWithFlags(&ev, timing ? cudaEventDefault : cudaEventDisableTiming) != cudaSuccess) {
        cudaGetLastError();
        ev = NULL;
    }
    if (api) api->ctx_set_current(prev_ctx);
    else cudaSetDevice(prev);
    return ev;
}

static void cuda_event_destroy(void *ev) { cudaEventDestroy((cudaEvent_t)ev); }

static double cuda_event_elapsed_ms(void *begin, void *end) {
    float ms = 0;
    if (cudaEventElapsedTime(&ms, (cudaEvent_t)begin, (cudaEvent_t)end) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    return ms;
}

/* Device memory for tensors that stay on this GPU; pinned, portable host
 * memory for the rest (asynchronous copies need pinned memory, and
 * pageable copies serialize through the driver's staging buffers). */
static void *cuda_alloc(const mt_devspec *d, size_t bytes, int mem) {
    void *p = NULL;
    if (!bytes) bytes = 256;
    if (mem == MT_MEM_DEVICE) {
        int prev = 0;
        cudaGetDevice(&prev);
        cudaSetDevice(d->index);
        cudaError_t e = cudaMalloc(&p, bytes);
        cudaSetDevice(prev);
        if (e != cudaSuccess) {
            cudaGetLastError();
            return NULL;
        }
        return p;
    }
    if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cuda_release(const mt_devspec *d, void *ptr, int mem) {
    (void)d;
    if (mem == MT_MEM_DEVICE) cudaFree(ptr);
    else cudaFreeHost(ptr);
}

static size_t cuda_memory(void *plan) {
    size_t a = 0, w = 0, ws = 0;
    mt_cuda_plan_memory(((cuda_stage *)plan)->plan, &a, &w, &ws);
    return a + w + ws;
}

static size_t cuda_device_used(const mt_devspec *d) {
    size_t fr = 0, tot = 0;
    int prev = 0;
    cudaGetDevice(&prev);
    if (cudaSetDevice(d->index) != cudaSuccess || cudaMemGetInfo(&fr, &tot) != cudaSuccess) {
        cudaGetLastError();
        cudaSetDevice(prev);
        return 0;
    }
    cudaSetDevice(prev);
    return tot - fr;
}

static void cuda_destroy(void *plan) {
    cuda_stage *c = plan;
    if (!c) return;
    /* mt_cuda_plan_free waits for the stream: callbacks still queued fire
     * first, while the pipeline's buffers and records are alive. */
    if (c->side) cudaStreamSynchronize(c->side); /* callbacks still queued there fire first */
    mt_cuda_plan_free(c->plan);
    if (c->side) cudaStreamDestroy(c->side);
    if (c->up) cudaStreamDestroy(c->up);
    for (int k = 0; k < CUDA_RING; k++) {
        if (c->ran[k]) cudaEventDestroy(c->ran[k]);
        if (c->uploaded[k]) cudaEventDestroy(c->uploaded[k]);
    }
    if (c->gstream) cudaStreamDestroy(c->gstream);
    if (c->gctx) {
        const mc_driver_api *api = mc_driver();
        if (api) {
            api->ctx_set_current(NULL);
            api->green_ctx_destroy(c->gctx);
        }
        cudaSetDevice(c->dev.index);
    }
    free(c);
}

/* Synchronous, host in and out: the plan's own staging copies on its
 * stream (mt_cuda_plan_run binds the stage's context itself). */
static mtmi_status cuda_run(void *plan, const mt_tview *in, int nin, mt_tview *out, int nout) {
    return mt_cuda_plan_run(((cuda_stage *)plan)->plan, in, nin, out, nout);
}

static mtmi_status cuda_bench(void *plan, int iters, double *ms) {
    return mt_cuda_plan_bench(((cuda_stage *)plan)->plan, -1, iters, ms);
}

/* What the algorithm choices of a plan on d depend on: the GPU model (name,
 * compute capability, multiprocessors), the driver, and the libraries that
 * own the algorithms.  A saved plan made elsewhere is refused when this
 * differs (pipeline/planfile.h). */
static mtmi_status cuda_identity(const mt_devspec *d, char *buf, size_t cap) {
    mtmi_status s = mt_cuda_check_device(d->index);
    if (s) return s;
    struct cudaDeviceProp pr;
    if (cudaGetDeviceProperties(&pr, d->index) != cudaSuccess) {
        (void)cudaGetLastError();
        return mt_fail(MTMI_ERR_DEVICE, "GPU %d: cannot read its properties", d->index);
    }
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    size_t dnn = 0;
#ifdef MTMI_HAVE_CUDNN
    dnn = cudnnGetVersion();
#endif
    snprintf(buf, cap, "%s, sm_%d%d, %d SMs, driver %d, runtime %d, cuBLASLt %zu, cuDNN %zu", pr.name, pr.major, pr.minor,
             pr.multiProcessorCount, drv, rt, (size_t)cublasLtGetVersion(), dnn);
    return MTMI_OK;
}

static const mt_backend g_cuda_backend = {
    .version = MT_BACKEND_VERSION,
    .name = "cuda",
    .supports = cuda_supports,
    .create = cuda_create,
    .bind_thread = cuda_bind,
    .run = cuda_run,
    .submit = cuda_submit,
    .alloc = cuda_alloc,
    .release = cuda_release,
    .memory = cuda_memory,
    .device_used = cuda_device_used,
    .event_create = cuda_event_create,
    .event_destroy = cuda_event_destroy,
    .event_elapsed_ms = cuda_event_elapsed_ms,
    .bench = cuda_bench,
    .destroy = cuda_destroy,
    .identity = cuda_identity,
};

const mt_backend *mt_backend_cuda(void) { return &g_cuda_backend; }

int mt_cuda_stage_sms(const void *plan) { return plan ? ((const cuda_stage *)plan)->sms : 0; }
void *mt_cuda_stage_stream(const void *plan) { return plan ? mt_cuda_plan_stream(((const cuda_stage *)plan)->plan) : NULL; }
