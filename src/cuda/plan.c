/* CUDA plan: layout pass (views), step list, memory planning, CUDA graphs. */
#include "cuda/cuda_backend.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backend/choices.h"
#include "cuda/plan_int.h"
#include "cuda/qkernels.h"

/* ------------------------------------------------------ memory planning */
static int step_cmp(const void *a, const void *b) {
    const mc_step *x = a, *y = b;
    int lx = x->label < 0 ? -1 : x->label, ly = y->label < 0 ? -1 : y->label;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x->order - y->order;
}

static mtmi_status plan_memory(mc_plan *p) {
    for (int s = 0; s < p->nsteps; s++) {
        mc_step *st = &p->steps[s];
        for (int k = 0; k < st->nt; k++) {
            int b = st->t[k].buf;
            if (b < 0) continue;
            if (p->bufs[b].first < 0 || p->bufs[b].first > s) p->bufs[b].first = s;
            if (p->bufs[b].last < s) p->bufs[b].last = s;
        }
    }
    mt_live_range *list = malloc(sizeof(mt_live_range) * (p->nbufs + 1));
    if (!list) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    int cnt = 0;
    size_t weights = 0;
    for (int b = 0; b < p->nbufs; b++) {
        mc_buf *B = &p->bufs[b];
        B->bytes = (B->bytes + 255) & ~(size_t)255;
        if (B->kind == MC_ARENA && B->first >= 0)
            list[cnt++] = (mt_live_range){.id = b, .first = B->first, .last = B->last, .size = B->bytes};
        else if (B->kind != MC_ARENA && !B->bound) weights += B->bytes;
    }
    size_t total = mt_place_ranges(list, cnt);
    for (int i = 0; i < cnt; i++) p->bufs[list[i].id].off = list[i].off;
    free(list);
    p->arena_bytes = total;
    MC_CK(cudaMalloc(&p->arena, total ? total : 256));
    /* persistent buffers: one pool */
    MC_CK(cudaMalloc(&p->pool, weights ? weights : 256));
    p->weight_bytes = weights;
    size_t off = 0;
    for (int b = 0; b < p->nbufs; b++) {
        mc_buf *B = &p->bufs[b];
        if (B->kind == MC_ARENA) {
            B->dptr = B->first >= 0 ? (char *)p->arena + B->off : NULL;
            continue;
        }
        if (B->bound) {
            /* Only for the validating first run (mt_cuda_plan_create_ex
             * frees it after): every later run binds the caller's memory. */
            MC_CK(cudaMalloc(&B->dptr, B->bytes ? B->bytes : 256));
            continue;
        }
        B->dptr = (char *)p->pool + off;
        off += B->bytes;
        if (B->host) {
            MC_CK(cudaMemcpy(B->dptr, B->host, B->bytes < B->host_bytes || !B->host_bytes ? B->bytes : B->host_bytes, cudaMemcpyHostToDevice));
        }
    }
    return MTMI_OK;
}

void *mc_ptr(const mc_plan *p, const mc_tref *t) {
    if (t->buf < 0) return NULL;
    return (char *)p->bufs[t->buf].dptr + t->off * (int64_t)mc_esize(t->st);
}

/* -------------------------------------------------------------- create */
/* A host-typed, row-major staging tensor for a graph input or output. */
static int new_stage(mc_plan *p, const mt_value *val, mc_tref *stg) {
    memset(stg, 0, sizeof *stg);
    stg->st = val->dtype;
    stg->rank = val->rank;
    for (int d = 0; d < val->rank; d++) stg->dims[d] = val->dims[d];
    mc_contig(stg);
    stg->buf = mc_new_buf(p, (size_t)mc_numel(stg) * mc_esize(val->dtype), MC_STAGE);
    return stg->buf < 0 ? -1 : 0;
}

static mtmi_status build_steps(mc_plan *p) {
    const mt_graph *g = p->g;
    mtmi_status s;
    /* inputs: host float32 (or dtype) staging, converted on the device */
    for (int i = 0; i < g->ninputs; i++) {
        int v = g->inputs[i];
        const mt_value *val = &g->values[v];
        mc_tref stg;
        if (new_stage(p, val, &stg)) return MTMI_ERR_NOMEM;
        p->in_stage[i] = stg;
        int st = mc_storage_of(p, val->dtype);
        if (st == val->dtype) {
            mc_set(p, v, &stg);
            continue;
        }
        /* consumers all convolutions: convert straight to NHWC */
        int all_conv = val->rank == 4 && p->nuse[v] > 0;
        for (int k = 0; k < g->nnodes && all_conv; k++) {
            const mt_node *n = &g->nodes[k];
            for (int j = 0; j < n->nin; j++)
                if (n->in[j] == v && !(mc_op_is(n, "Conv") || mc_mtmi_op_is(n, "FusedConv"))) all_conv = 0;
        }
        if (all_conv) {
            /* convolutions read the staging input themselves (im2col from
             * FP32 NCHW) or convert it to NHWC on demand */
            mc_set(p, v, &stg);
            continue;
        }
        mc_tref t;
        if (mc_new_tensor(p, st, val->rank, val->dims, &t)) return MTMI_ERR_NOMEM;
        p->cur_label = -1;
        if ((s = mc_emit_copy(p, -1, &t, &stg))) return s;
        mc_set(p, v, &t);
    }
    /* output staging (host types, row-major); producers may write it directly */
    for (int i = 0; i < g->noutputs; i++) {
        const mt_value *val = &g->values[g->outputs[i]];
        mc_tref stg;
        if (new_stage(p, val, &stg)) return MTMI_ERR_NOMEM;
        p->out_stage[i] = stg;
    }
    for (int i = 0; i < g->nnodes; i++) {
        if (p->skip[i] || g->nodes[i].dead) continue;
        p->cur_label = p->label[i];
        s = mc_plan_node(p, i);
        if (s) {
            char desc[256];
            const char *m = mtmi_last_error();
            if (m && strstr(m, "node '")) return s;
            return mt_fail_context(s, "%s: ", mt_node_desc(g, &g->nodes[i], desc, sizeof desc));
        }
    }
    /* outputs: converted into host-typed staging */
    for (int i = 0; i < g->noutputs; i++) {
        int v = g->outputs[i];
        const mt_value *val = &g->values[v];
        mc_tref t;
        if ((s = mc_get(p, v, &t))) return s;
        mc_tref stg = p->out_stage[i];
        (void)val;
        if (t.buf == stg.buf && t.off == stg.off) continue; /* written in place */
        p->cur_label = i;
        if ((s = mc_emit_copy(p, -1, &stg, &t))) return s;
        p->steps[p->nsteps - 1].label = g->noutputs > 1 ? i : -1;
    }
    return MTMI_OK;
}

static mtmi_status run_steps(mc_plan *p, int first, int last, int profile, FILE *f) {
    cudaEvent_t e0 = NULL, e1 = NULL;
    if (profile) {
        MC_CK(cudaEventCreate(&e0));
        MC_CK(cudaEventCreate(&e1));
    }
    for (int i = first; i < last; i++) {
        if (profile) MC_CK(cudaEventRecord(e0, p->stream));
        mtmi_status s = mc_run_step(p, &p->steps[i]);
        if (s) return s;
        if (profile) {
            MC_CK(cudaEventRecord(e1, p->stream));
            MC_CK(cudaEventSynchronize(e1));
            float ms = 0;
            cudaEventElapsedTime(&ms, e0, e1);
            const mc_step *st = &p->steps[i];
            char desc[256] = "(copy)";
            if (st->node >= 0) mt_node_desc(p->g, &p->g->nodes[st->node], desc, sizeof desc);
            fprintf(f, "step %4d part %2d %-10s %8.4f ms  %s\n", i, st->label + 1, mc_step_name(st->kind), ms, desc);
        }
    }
    if (profile) {
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
    }
    return MTMI_OK;
}

static mtmi_status capture(mc_plan *p, int first, int last, cudaGraphExec_t *exec) {
    cudaGraph_t graph;
    MC_CK(cudaStreamBeginCapture(p->stream, cudaStreamCaptureModeThreadLocal));
    mtmi_status s = run_steps(p, first, last, 0, NULL);
    cudaError_t e = cudaStreamEndCapture(p->stream, &graph);
    if (s) return s;
    if (e != cudaSuccess) return mt_fail(MTMI_ERR_DEVICE, "CUDA graph capture: %s", cudaGetErrorString(e));
    e = cudaGraphInstantiate(exec, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess) return mt_fail(MTMI_ERR_DEVICE, "CUDA graph instantiate: %s", cudaGetErrorString(e));
    return MTMI_OK;
}

mtmi_status mc_bind(const mc_plan *p) {
    if (!p->ctx) {
        MC_CK(cudaSetDevice(p->device));
        return MTMI_OK;
    }
    const mc_driver_api *d = mc_driver();
    if (!d) return MTMI_ERR_DEVICE;
    CUresult r = d->ctx_set_current(p->ctx);
    if (r != CUDA_SUCCESS) return mt_fail(MTMI_ERR_DEVICE, "CUDA: cannot make the plan's context current: %s", mc_driver_error(r));
    return MTMI_OK;
}

mtmi_status mt_cuda_plan_create(const mt_graph *g, int device, int fp16, mt_cuda_plan **out) {
    mt_cuda_plan_opts o = {.fp16 = fp16};
    return mt_cuda_plan_create_ex(g, device, &o, out);
}

mtmi_status mt_cuda_plan_create_ex(const mt_graph *g, int device, const mt_cuda_plan_opts *o, mt_cuda_plan **out) {
    *out = NULL;
    double t_phase = mt_now_ms();
    mtmi_status s = mt_cuda_check_device(device);
    if (s) return s;
    mc_plan *p = mt_alloc(sizeof *p);
    if (!p) return MTMI_ERR_NOMEM;
    p->g = g;
    p->device = device;
    p->f16 = o->fp16;
    p->ctx = (CUcontext)o->ctx;
    p->sms = o->sms > 0 ? o->sms : 0;
    p->tuning = o->tuning ? *o->tuning : *mt_tuning_default();
    p->choices = o->choices;
    if ((s = mc_bind(p))) {
        free(p);
        return s;
    }
    int nv = g->nvalues, nn = g->nnodes;
    p->vt = calloc(nv + 1, sizeof(mc_tref));
    p->has = calloc(nv + 1, 1);
    p->nuse = calloc(nv + 1, sizeof(int));
    p->consumer = malloc(sizeof(int) * (nv + 1));
    p->skip = calloc(nn + 1, 1);
    p->label = malloc(sizeof(int) * (nn + 1));
    p->vcat = malloc(sizeof(int) * (nv + 1));
    p->in_stage = calloc(g->ninputs + 1, sizeof(mc_tref));
    p->out_stage = calloc(g->noutputs + 1, sizeof(mc_tref));
    if (!p->vt || !p->has || !p->nuse || !p->consumer || !p->skip || !p->label || !p->in_stage || !p->out_stage || !p->vcat) {
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int v = 0; v < nv; v++) p->consumer[v] = -1;
    if (p->vcat)
        for (int v = 0; v < nv; v++) p->vcat[v] = -1;
    for (int i = 0; i < nn; i++) {
        const mt_node *n = &g->nodes[i];
        if (n->dead) continue;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= 0) {
                p->nuse[n->in[k]]++;
                p->consumer[n->in[k]] = i;
            }
    }
    for (int i = 0; i < g->noutputs; i++) p->nuse[g->outputs[i]]++;
    if ((s = mt_graph_cone_labels(g, p->label))) goto fail;
    p->nparts = 1 + (g->noutputs > 1 ? g->noutputs : 0);
    if (g->noutputs <= 1)
        for (int i = 0; i < nn; i++) p->label[i] = -1;
    {
        size_t free0 = 0, tot = 0;
        cudaFree(0);
        cudaMemGetInfo(&free0, &tot);
        p->mem_free_before = free0;
    }
    if (o->stream) {
        p->stream = (cudaStream_t)o->stream;
    } else if (cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking) != cudaSuccess) {
        s = mt_fail(MTMI_ERR_DEVICE, "cannot create a CUDA stream");
        goto fail;
    } else {
        p->own_stream = 1;
    }
#define PHASE(k)                                    \
    do {                                            \
        double t_now_ = mt_now_ms();                \
        p->build_ms[k] += t_now_ - t_phase;         \
        t_phase = t_now_;                           \
    } while (0)
    PHASE(MC_BUILD_SETUP);
    if ((s = mc_libs_init(p))) goto fail;
    PHASE(MC_BUILD_LIBS);
    if ((s = build_steps(p))) goto fail;
    PHASE(MC_BUILD_STEPS);
    if ((s = mc_fuse_steps(p))) goto fail;
    PHASE(MC_BUILD_FUSE);
    for (int i = 0; i < g->ninputs; i++)
        if (o->in_dev && o->in_dev[i] && p->in_stage[i].buf >= 0) p->bufs[p->in_stage[i].buf].bound = 1, p->any_bound = 1;
    for (int i = 0; i < g->noutputs; i++)
        if (o->out_dev && o->out_dev[i] && p->out_stage[i].buf >= 0) p->bufs[p->out_stage[i].buf].bound = 1, p->any_bound = 1;
    /* encoder steps first, then each head's: parts replay separately */
    qsort(p->steps, p->nsteps, sizeof(mc_step), step_cmp);
    for (int i = 0; i < p->nparts; i++) p->part_first[i] = p->part_last[i] = -1;
    for (int i = 0; i < p->nsteps; i++) {
        int part = p->steps[i].label < 0 ? 0 : p->steps[i].label + 1;
        if (part >= MC_MAX_PARTS) part = MC_MAX_PARTS - 1;
        if (p->part_first[part] < 0) p->part_first[part] = i;
        p->part_last[part] = i + 1;
    }
    if ((s = plan_memory(p))) goto fail;
    PHASE(MC_BUILD_MEMORY);
    for (int i = 0; i < p->nsteps; i++)
        if ((s = mc_finalize_step(p, &p->steps[i]))) goto fail;
    /* The algorithms were chosen among those fitting the full workspace;
     * keep only what the chosen ones need (often a few MiB, not 32: it
     * counts once per plan, and a pipeline has a plan per stage). */
    if (p->ws && p->ws_needed < p->ws_bytes) {
        cudaFree(p->ws);
        p->ws = NULL;
        p->ws_bytes = (p->ws_needed + 255) & ~(size_t)255;
        if (p->ws_bytes < 256) p->ws_bytes = 256;
        if (cudaMalloc(&p->ws, p->ws_bytes) != cudaSuccess) {
            s = mt_fail(MTMI_ERR_NOMEM, "CUDA: cannot allocate the workspace");
            goto fail;
        }
        p->workspace_bytes = p->ws_bytes;
    }
    p->choices = NULL; /* borrowed for create only */
    PHASE(MC_BUILD_FINALIZE);
    /* one eager run (validates every launch), then the CUDA graph */
    if ((s = run_steps(p, 0, p->nsteps, 0, NULL))) goto fail;
    if (cudaStreamSynchronize(p->stream) != cudaSuccess) {
        s = mt_fail(MTMI_ERR_DEVICE, "CUDA: first run failed: %s", cudaGetErrorString(cudaGetLastError()));
        goto fail;
    }
    PHASE(MC_BUILD_EAGER);
    if (p->any_bound) {
        /* No graph of its own: its staging buffers are gone. */
        for (int b = 0; b < p->nbufs; b++)
            if (p->bufs[b].bound) {
                cudaFree(p->bufs[b].dptr);
                p->bufs[b].dptr = NULL;
            }
    } else if ((s = capture(p, 0, p->nsteps, &p->exec))) {
        goto fail;
    }
    {
        size_t free1 = 0, tot = 0;
        cudaMemGetInfo(&free1, &tot);
        p->mem_used = p->mem_free_before > free1 ? p->mem_free_before - free1 : 0;
    }
    PHASE(MC_BUILD_CAPTURE);
#undef PHASE
    *out = (mt_cuda_plan *)p;
    return MTMI_OK;
fail:
    mt_cuda_plan_free((mt_cuda_plan *)p);
    return s;
}

void mt_cuda_plan_free(mt_cuda_plan *pp) {
    mc_plan *p = (mc_plan *)pp;
    if (!p) return;
    mc_bind(p);
    if (p->stream) cudaStreamSynchronize(p->stream);
    if (p->exec) cudaGraphExecDestroy(p->exec);
    for (int i = 0; i < p->nbinds; i++) {
        mc_binding *b = &p->binds[i];
        if (b->exec) cudaGraphExecDestroy(b->exec);
        for (int k = 0; k < b->nobjs; k++) cudaFree(b->objs[k]);
        free(b->objs);
    }
    for (int i = 0; i < MC_MAX_PARTS; i++)
        if (p->part_exec[i]) cudaGraphExecDestroy(p->part_exec[i]);
    for (int i = 0; i < p->nsteps; i++) mc_release_step(p, &p->steps[i]);
    mc_libs_free(p);
    for (int b = 0; b < p->nbufs; b++) {
        free(p->bufs[b].host);
        if (p->bufs[b].bound && p->bufs[b].dptr) cudaFree(p->bufs[b].dptr);
    }
    if (p->arena) cudaFree(p->arena);
    if (p->pool) cudaFree(p->pool);
    if (p->stream && p->own_stream) cudaStreamDestroy(p->stream);
    free(p->bufs);
    free(p->steps);
    free(p->vt);
    free(p->has);
    free(p->nuse);
    free(p->consumer);
    free(p->skip);
    free(p->label);
    free(p->vcat);
    free(p->in_stage);
    free(p->out_stage);
    free(p);
}

/* Input i of a run: the graph's dtype and shape, and data. */
static mtmi_status check_input(const mc_plan *p, int i, const mt_tview *in) {
    const mt_value *v = &p->g->values[p->g->inputs[i]];
    char a[128], b[128];
    if (in->dtype != v->dtype || in->rank != v->rank || memcmp(in->dims, v->dims, sizeof(int64_t) * v->rank))
        return mt_fail(MTMI_ERR_SHAPE, "input '%s': plan expects %s %s, got %s %s", v->name, mt_dtype_name(v->dtype),
                       mt_shape_str(v->rank, v->dims, a, sizeof a), mt_dtype_name(in->dtype),
                       mt_shape_str(in->rank, in->dims, b, sizeof b));
    if (!in->data) return mt_fail(MTMI_ERR_ARG, "input '%s': no data", v->name);
    return MTMI_OK;
}

mtmi_status mt_cuda_plan_run(mt_cuda_plan *pp, const mt_tview *in, int nin, mt_tview *out, int nout) {
    mc_plan *p = (mc_plan *)pp;
    const mt_graph *g = p->g;
    if (nin != g->ninputs || nout != g->noutputs)
        return mt_fail(MTMI_ERR_ARG, "plan has %d inputs and %d outputs, got %d and %d", g->ninputs, g->noutputs, nin, nout);
    if (p->any_bound) return mt_fail(MTMI_ERR_ARG, "this plan takes some inputs / outputs in device memory only (mt_cuda_plan_enqueue)");
    mtmi_status bs = mc_bind(p);
    if (bs) return bs;
    for (int i = 0; i < nin; i++) {
        mtmi_status cs = check_input(p, i, &in[i]);
        if (cs) return cs;
        MC_CK(cudaMemcpyAsync(mc_ptr(p, &p->in_stage[i]), in[i].data, mt_value_bytes(&g->values[g->inputs[i]]),
                           cudaMemcpyHostToDevice, p->stream));
    }
    MC_CK(cudaGraphLaunch(p->exec, p->stream));
    for (int i = 0; i < nout; i++) {
        const mt_value *v = &g->values[g->outputs[i]];
        if (!out[i].data) return mt_fail(MTMI_ERR_ARG, "output %d: no buffer", i);
        out[i].dtype = v->dtype;
        out[i].rank = v->rank;
        memcpy(out[i].dims, v->dims, sizeof out[i].dims);
        MC_CK(cudaMemcpyAsync(out[i].data, mc_ptr(p, &p->out_stage[i]), mt_value_bytes(v), cudaMemcpyDeviceToHost, p->stream));
    }
    MC_CK(cudaStreamSynchronize(p->stream));
    return MTMI_OK;
}

int mt_cuda_plan_num_parts(const mt_cuda_plan *pp) { return ((const mc_plan *)pp)->nparts; }
int mt_cuda_plan_num_steps(const mt_cuda_plan *pp) { return ((const mc_plan *)pp)->nsteps; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

mtmi_status mt_cuda_plan_bench(mt_cuda_plan *pp, int part, int iters, double *median_ms) {
    mc_plan *p = (mc_plan *)pp;
    if (p->any_bound) return mt_fail(MTMI_ERR_ARG, "this plan takes some inputs / outputs in device memory only");
    if (mc_bind(p)) return MTMI_ERR_DEVICE;
    cudaGraphExec_t ex = p->exec;
    if (part >= 0) {
        if (part >= p->nparts || part >= MC_MAX_PARTS) return mt_fail(MTMI_ERR_ARG, "part %d out of range", part);
        if (p->part_first[part] < 0) {
            *median_ms = 0;
            return MTMI_OK;
        }
        if (!p->part_exec[part]) {
            mtmi_status s = capture(p, p->part_first[part], p->part_last[part], &p->part_exec[part]);
            if (s) return s;
        }
        ex = p->part_exec[part];
    }
    if (iters < 1) iters = 1;
    double *t = malloc(sizeof(double) * iters);
    if (!t) return mt_fail(MTMI_ERR_NOMEM, "out of memory");
    cudaEvent_t e0, e1;
    MC_CK(cudaEventCreate(&e0));
    MC_CK(cudaEventCreate(&e1));
    for (int i = 0; i < 5; i++) MC_CK(cudaGraphLaunch(ex, p->stream));
    for (int i = 0; i < iters; i++) {
        MC_CK(cudaEventRecord(e0, p->stream));
        MC_CK(cudaGraphLaunch(ex, p->stream));
        MC_CK(cudaEventRecord(e1, p->stream));
        MC_CK(cudaEventSynchronize(e1));
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        t[i] = ms;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    qsort(t, iters, sizeof(double), cmp_double);
    *median_ms = t[iters / 2];
    free(t);
    return MTMI_OK;
}

void mt_cuda_plan_memory(const mt_cuda_plan *pp, size_t *arena, size_t *weights, size_t *workspace) {
    const mc_plan *p = (const mc_plan *)pp;
    if (arena) *arena = p->arena_bytes;
    if (weights) *weights = p->weight_bytes;
    if (workspace) *workspace = p->workspace_bytes + p->mem_used * 0;
}

size_t mt_cuda_plan_device_delta(const mt_cuda_plan *pp) { return ((const mc_plan *)pp)->mem_used; }

void mt_cuda_plan_build_report(const mt_cuda_plan *pp, FILE *f) {
    const mc_plan *p = (const mc_plan *)pp;
    static const char *const names[8] = {"setup", "libraries", "steps+weights", "fusion", "memory", "finalize", "first run",
                                         "graph capture"};
    double tot = 0;
    for (int k = 0; k < 8; k++) tot += p->build_ms[k];
    fprintf(f, "plan build %.1f ms:", tot);
    for (int k = 0; k < 8; k++) fprintf(f, " %s %.1f%s", names[k], p->build_ms[k], k < 7 ? "," : "");
    fprintf(f, " (algorithm searches: %d cuBLASLt, %d cuDNN)\n", p->nsearch_lt, p->nsearch_dnn);
}

mtmi_status mt_cuda_plan_profile(mt_cuda_plan *pp, FILE *f) {
    mc_plan *p = (mc_plan *)pp;
    if (p->any_bound) return mt_fail(MTMI_ERR_ARG, "this plan takes some inputs / outputs in device memory only");
    if (mc_bind(p)) return MTMI_ERR_DEVICE;
    /* the plan: each step's operands (buffer, element offset, dims, strides) */
    for (int i = 0; i < p->nsteps; i++) {
        const mc_step *st = &p->steps[i];
        char desc[256] = "(copy)";
        if (st->node >= 0) mt_node_desc(p->g, &p->g->nodes[st->node], desc, sizeof desc);
        fprintf(f, "plan %4d %-11s %s\n", i, mc_step_name(st->kind), desc);
        for (int k = 0; k < st->nt; k++) {
            const mc_tref *t = &st->t[k];
            fprintf(f, "     t%d buf %d off %lld %s dims", k, t->buf, (long long)t->off, mt_dtype_name(t->st));
            for (int d = 0; d < t->rank; d++) fprintf(f, " %lld", (long long)t->dims[d]);
            fprintf(f, " strides");
            for (int d = 0; d < t->rank; d++) fprintf(f, " %lld", (long long)t->strides[d]);
            fprintf(f, "\n");
        }
    }
    mtmi_status s = run_steps(p, 0, p->nsteps, 1, f);
    if (s) return s;
    MC_CK(cudaStreamSynchronize(p->stream));
    return MTMI_OK;
}

/* ------------------------------------------------------------ enqueue */
void *mt_cuda_plan_stream(const mt_cuda_plan *pp) { return ((const mc_plan *)pp)->stream; }
int mt_cuda_plan_device(const mt_cuda_plan *pp) { return ((const mc_plan *)pp)->device; }

/* Captures the plan with the staging buffers of the bound inputs / outputs
 * pointing at the caller's device memory.  Every step reads its operands'
 * addresses when it is launched, except elementwise steps whose argument
 * block (with the addresses in it) lives in device memory: those that touch
 * a rebound buffer get a block of their own for this binding. */
static mtmi_status capture_binding(mc_plan *p, void *const *in, void *const *out, mc_binding *b) {
    const mt_graph *g = p->g;
    void **saved = malloc(sizeof(void *) * (p->nbufs + 1));
    unsigned char *rebound = calloc(p->nbufs + 1, 1);
    void **saved_obj = calloc(p->nsteps + 1, sizeof(void *));
    unsigned char *swapped = calloc(p->nsteps + 1, 1);
    b->objs = calloc(p->nsteps + 1, sizeof(void *));
    mtmi_status s = MTMI_OK;
    if (!saved || !rebound || !saved_obj || !swapped || !b->objs) {
        s = mt_fail(MTMI_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < p->nbufs; k++) saved[k] = p->bufs[k].dptr;
    for (int i = 0; i < g->ninputs; i++)
        if (in[i]) p->bufs[p->in_stage[i].buf].dptr = in[i], rebound[p->in_stage[i].buf] = 1;
    for (int i = 0; i < g->noutputs; i++)
        if (out[i]) p->bufs[p->out_stage[i].buf].dptr = out[i], rebound[p->out_stage[i].buf] = 1;
    for (int i = 0; i < p->nsteps && !s; i++) {
        mc_step *st = &p->steps[i];
        if (st->kind != MC_EW || !st->obj) continue;
        int uses = 0;
        for (int k = 0; k < st->nt; k++) uses |= st->t[k].buf >= 0 && rebound[st->t[k].buf];
        if (!uses) continue;
        saved_obj[i] = st->obj;
        swapped[i] = 1;
        st->obj = NULL;
        s = mc_finalize_step(p, st);
        if (st->obj) b->objs[b->nobjs++] = st->obj;
    }
    if (!s) s = capture(p, 0, p->nsteps, &b->exec);
done:
    for (int i = 0; i < p->nsteps && swapped; i++)
        if (swapped[i]) p->steps[i].obj = saved_obj[i];
    if (saved)
        for (int k = 0; k < p->nbufs; k++) p->bufs[k].dptr = saved[k];
    free(saved);
    free(rebound);
    free(saved_obj);
    free(swapped);
    return s;
}

mtmi_status mt_cuda_plan_enqueue(mt_cuda_plan *pp, const mt_tview *in, const unsigned char *in_dev, int nin,
                                 const mt_tview *out, const unsigned char *out_dev, int nout) {
    mc_plan *p = (mc_plan *)pp;
    const mt_graph *g = p->g;
    if (nin != g->ninputs || nout != g->noutputs || nin > MT_MAX_IO_BIND || nout > MT_MAX_IO_BIND)
        return mt_fail(MTMI_ERR_ARG, "plan has %d inputs and %d outputs, got %d and %d", g->ninputs, g->noutputs, nin, nout);
    void *bin[MT_MAX_IO_BIND] = {0}, *bout[MT_MAX_IO_BIND] = {0};
    int bound = 0;
    for (int i = 0; i < nin; i++) {
        mtmi_status cs = check_input(p, i, &in[i]);
        if (cs) return cs;
        if (in_dev && in_dev[i]) bin[i] = in[i].data, bound = 1;
        else if (p->bufs[p->in_stage[i].buf].bound)
            return mt_fail(MTMI_ERR_ARG, "input '%s': this plan takes it in device memory only", g->values[g->inputs[i]].name);
    }
    for (int i = 0; i < nout; i++) {
        if (!out[i].data) return mt_fail(MTMI_ERR_ARG, "output %d: no buffer", i);
        if (out_dev && out_dev[i]) bout[i] = out[i].data, bound = 1;
        else if (p->bufs[p->out_stage[i].buf].bound)
            return mt_fail(MTMI_ERR_ARG, "output %d: this plan writes it to device memory only", i);
    }
    mtmi_status s = mc_bind(p);
    if (s) return s;
    for (int i = 0; i < nin; i++)
        if (!bin[i])
            MC_CK(cudaMemcpyAsync(mc_ptr(p, &p->in_stage[i]), in[i].data, mt_value_bytes(&g->values[g->inputs[i]]),
                               cudaMemcpyHostToDevice, p->stream));
    cudaGraphExec_t exec = p->exec;
    if (bound) {
        exec = NULL;
        for (int k = 0; k < p->nbinds && !exec; k++)
            if (!memcmp(p->binds[k].in, bin, sizeof bin) && !memcmp(p->binds[k].out, bout, sizeof bout)) exec = p->binds[k].exec;
        if (!exec && p->nbinds < MC_MAX_BINDINGS) {
            mc_binding *b = &p->binds[p->nbinds];
            memset(b, 0, sizeof *b);
            memcpy(b->in, bin, sizeof bin);
            memcpy(b->out, bout, sizeof bout);
            s = capture_binding(p, bin, bout, b);
            p->nbinds++; /* kept even on failure: its objects are freed with the plan */
            if (s) return s;
            exec = b->exec;
        }
    }
    if (exec) {
        MC_CK(cudaGraphLaunch(exec, p->stream));
    } else {
        /* More pointer sets than cached graphs: launch step by step, with
         * the elementwise steps' by-value path (their prepared argument
         * blocks hold the staging addresses). */
        void **saved = malloc(sizeof(void *) * (p->nbufs + 1));
        void **saved_obj = malloc(sizeof(void *) * (p->nsteps + 1));
        if (!saved || !saved_obj) {
            free(saved);
            free(saved_obj);
            return mt_fail(MTMI_ERR_NOMEM, "out of memory");
        }
        for (int k = 0; k < p->nbufs; k++) saved[k] = p->bufs[k].dptr;
        for (int i = 0; i < p->nsteps; i++) {
            saved_obj[i] = p->steps[i].obj;
            if (p->steps[i].kind == MC_EW) p->steps[i].obj = NULL;
        }
        for (int i = 0; i < nin; i++)
            if (bin[i]) p->bufs[p->in_stage[i].buf].dptr = bin[i];
        for (int i = 0; i < nout; i++)
            if (bout[i]) p->bufs[p->out_stage[i].buf].dptr = bout[i];
        s = run_steps(p, 0, p->nsteps, 0, NULL);
        for (int k = 0; k < p->nbufs; k++) p->bufs[k].dptr = saved[k];
        for (int i = 0; i < p->nsteps; i++) p->steps[i].obj = saved_obj[i];
        free(saved);
        free(saved_obj);
        if (s) return s;
    }
    for (int i = 0; i < nout; i++)
        if (!bout[i])
            MC_CK(cudaMemcpyAsync(out[i].data, mc_ptr(p, &p->out_stage[i]), mt_value_bytes(&g->values[g->outputs[i]]),
                               cudaMemcpyDeviceToHost, p->stream));
    return MTMI_OK;
}

int mt_cuda_num_step_kinds(void) { return MC_NKINDS; }
const char *mt_cuda_step_kind_name(int kind) { return mc_step_name(kind); }

void mt_cuda_plan_step_counts(const mt_cuda_plan *pp, int *counts) {
    const mc_plan *p = (const mc_plan *)pp;
    for (int k = 0; k < MC_NKINDS; k++) counts[k] = 0;
    for (int i = 0; i < p->nsteps; i++)
        if (p->steps[i].kind >= 0 && p->steps[i].kind < MC_NKINDS) counts[p->steps[i].kind]++;
}
