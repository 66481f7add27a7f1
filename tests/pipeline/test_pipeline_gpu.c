/* The pipeline on a GPU (label "gpu"; needs one CUDA GPU):
 *  - SM partitions: a `cuda:0.smK` stage's green context keeps its kernels
 *    on at most its multiprocessors, launched from any thread and through
 *    the plan's captured CUDA graph (a GEMM-heavy plan is several times
 *    slower on a 16-SM partition than on the whole GPU);
 *  - the reference network (256x256) with every stage on cuda:0 FP16, with
 *    the heads on an SM partition, and with INT8 heads: frames pipelined
 *    (2 in flight, device-resident features, stream callbacks) give bit for
 *    bit the outputs of the same pipeline run one frame at a time, over many
 *    frames with distinct inputs, and agree with the whole model as one
 *    CUDA plan (seg class agreement, depth max error printed);
 *  - 8-bit frames normalized on the GPU (mtmi.Preprocess) give the outputs
 *    of host-normalized floats, bit for bit;
 *  - an error injected in a head shuts the GPU pipeline down cleanly;
 *  - device and resident memory stay flat over 1,000 frames;
 *  - device memory for 2 frames in flight is printed.
 * Exits 77 (skipped) when no GPU is visible. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "cuda/cuda_backend.h"
#include "cuda/kernels.h"
#include "graph/builder.h"
#include "oracle.h"
#include "graph/mtmi_net.h"
#include "image/image.h"
#include "app/app.h"
#include "pipeline/pipeline.h"
#include "quant/quant.h"

#include "check.h"

/* ------------------------------------------------------- SM partitions */
/* `layers` MatMuls by one shared weight: much compute, little I/O, so a
 * run's time is the GPU's, not the bus's. */
static mt_graph *gemm_graph(int rows, int dim, int layers) {
    mt_builder b;
    mt_builder_init(&b, 5, 17);
    int64_t dims[3] = {1, rows, dim}, wd[2] = {dim, dim};
    int x = mt_b_input(&b, "x", MTMI_FLOAT, 3, dims);
    int w = mt_b_weight(&b, "w", 2, wd, 1.0f / sqrtf((float)dim));
    for (int i = 0; i < layers; i++) {
        int in[2] = {x, w};
        x = mt_b_node(&b, "MatMul", in, 2);
    }
    mt_b_output(&b, x, "y");
    mt_graph *g = NULL;
    if (mt_builder_finish(&b, &g)) return NULL;
    mtmi_model *m = NULL;
    mt_graph *s = NULL;
    if (mt_model_from_graph(g, &m) || mt_model_specialize(m, NULL, 0, 1, &s)) s = NULL;
    mt_model_free(m);
    return s;
}

static int distinct_sms(const int *ids, int n) {
    unsigned char seen[1024] = {0};
    int d = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < 1024 && !seen[ids[i]]) seen[ids[i]] = 1, d++;
    return d;
}

/* Blocks of a probe grid on the stage's stream: how many SMs it touched. */
static int probe(void *stream) {
    enum { NB = 2048 };
    int *d = NULL, h[NB];
    if (cudaMalloc((void **)&d, sizeof h) != cudaSuccess) return -1;
    int r = -1;
    if (mtk_smid_probe((cudaStream_t)stream, d, NB) == cudaSuccess && cudaStreamSynchronize((cudaStream_t)stream) == cudaSuccess &&
        cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost) == cudaSuccess)
        r = distinct_sms(h, NB);
    cudaFree(d);
    return r;
}

typedef struct probe_arg {
    const mt_backend *be;
    void *plan;
    int sms_seen;
} probe_arg;

static void *probe_thread(void *arg) {
    probe_arg *a = arg;
    a->sms_seen = a->be->bind_thread(a->plan) == MTMI_OK ? probe(mt_cuda_stage_stream(a->plan)) : -1;
    return NULL;
}

static void noop_done(void *arg, mtmi_status s, const char *msg) {
    (void)msg;
    *(mtmi_status *)arg = s;
}

/* Median ms of `reps` runs of the plan, host input and output. */
static double time_stage(const mt_backend *be, void *plan, const mt_devspec *d, const mt_graph *g) {
    mt_stage_io io;
    memset(&io, 0, sizeof io);
    io.nin = io.nout = 1;
    const mt_value *vi = &g->values[g->inputs[0]], *vo = &g->values[g->outputs[0]];
    io.in[0] = (mt_tview){.dtype = vi->dtype, .rank = vi->rank};
    memcpy(io.in[0].dims, vi->dims, sizeof vi->dims);
    io.out[0] = (mt_tview){.dtype = vo->dtype, .rank = vo->rank};
    memcpy(io.out[0].dims, vo->dims, sizeof vo->dims);
    io.in[0].data = be->alloc(d, mt_value_bytes(vi), MT_MEM_HOST);
    io.out[0].data = be->alloc(d, mt_value_bytes(vo), MT_MEM_HOST);
    if (!io.in[0].data || !io.out[0].data) return -1;
    memset(io.in[0].data, 0, mt_value_bytes(vi));
    double t[9];
    mtmi_status st = MTMI_OK;
    cudaStream_t s = mt_cuda_stage_stream(plan);
    for (int r = 0; r < 11; r++) {
        double t0 = mt_now_ms();
        if (be->submit(plan, &io, noop_done, &st) || cudaStreamSynchronize(s) != cudaSuccess) return -1;
        if (r >= 2) t[r - 2] = mt_now_ms() - t0;
    }
    for (int i = 0; i < 9; i++)
        for (int j = i + 1; j < 9; j++)
            if (t[j] < t[i]) {
                double x = t[i];
                t[i] = t[j], t[j] = x;
            }
    be->release(d, io.in[0].data, MT_MEM_HOST);
    be->release(d, io.out[0].data, MT_MEM_HOST);
    return st ? -1 : t[4];
}

static void test_partition(void) {
    const mt_backend *be = mt_backend_cuda();
    mt_devspec whole = {.kind = MT_DEV_CUDA, .prec = MT_PREC_FP16}, part = whole;
    part.sms = 16;
    if (be->supports(&part, NULL) != MTMI_OK) {
        CHECK(0, "cuda:0.sm16: %s", mtmi_last_error());
        return;
    }
    mt_graph *g = gemm_graph(4096, 2048, 16);
    CHECK(g != NULL, "gemm graph: %s", mtmi_last_error());
    if (!g) return;
    void *pw = NULL, *pp = NULL;
    mt_stage_cfg cfg = {0};
    CHECK(be->create(&whole, g, &cfg, &pw) == MTMI_OK, "create cuda:0: %s", mtmi_last_error());
    CHECK(be->create(&part, g, &cfg, &pp) == MTMI_OK, "create cuda:0.sm16: %s", mtmi_last_error());
    if (pw && pp) {
        int total = 0;
        cudaDeviceGetAttribute(&total, cudaDevAttrMultiProcessorCount, 0);
        int k = mt_cuda_stage_sms(pp);
        int from_main = probe(mt_cuda_stage_stream(pp));
        probe_arg a = {be, pp, -1};
        pthread_t th;
        pthread_create(&th, NULL, probe_thread, &a);
        pthread_join(th, NULL);
        int all = probe(mt_cuda_stage_stream(pw));
        printf("partition: GPU has %d SMs; cuda:0.sm16 got %d; probe kernels ran on %d SMs (launched from the creating thread), "
               "%d (from a stage thread), %d on cuda:0\n",
               total, k, from_main, a.sms_seen, all);
        CHECK(k >= 16 && k < total, "partition size %d", k);
        CHECK(from_main > 0 && from_main <= k, "probe from the main thread used %d SMs (partition %d)", from_main, k);
        CHECK(a.sms_seen > 0 && a.sms_seen <= k, "probe from a stage thread used %d SMs (partition %d)", a.sms_seen, k);
        CHECK(all > k, "whole GPU probe used only %d SMs", all);
        /* The plan's own work (cuBLASLt GEMMs in a captured CUDA graph). */
        double tw = time_stage(be, pw, &whole, g), tp = time_stage(be, pp, &part, g);
        printf("partition: 16 GEMMs 4096x2048x2048 FP16 (%.1f GFLOP, 64 MB of host I/O): whole GPU %.3f ms, cuda:0.sm%d %.3f ms "
               "(%.1fx)\n",
               16 * 2.0 * 4096 * 2048 * 2048 / 1e9, tw, k, tp, tp / tw);
        /* Informational only (speed is measured by benchmarks, not asserted);
         * the probes above show that the partition is confined. */
        CHECK(tw > 0 && tp > 0, "timing runs failed: %s", mtmi_last_error());
    }
    if (pw) be->destroy(pw);
    if (pp) be->destroy(pp);
    mt_graph_free(g);
    /* Bad partitions: one-line errors. */
    part.sms = 100000 % 4096;
    CHECK(be->supports(&part, NULL) != MTMI_OK && strstr(mtmi_last_error(), "multiprocessors"), "huge partition: %s", mtmi_last_error());
}

/* ------------------------------------------------------------ exactness */
static void fill_input(float *x, size_t n, int pattern) {
    mt_rng r;
    mt_rng_seed(&r, 77 + pattern);
    printf("input pattern %d: seed %d\n", pattern, 77 + pattern);
    for (size_t i = 0; i < n; i++) x[i] = mt_rng_normal(&r);
}

enum { PATTERNS = 6 };

/* Whole model as one CUDA plan (mtmi_plan), for agreement numbers. */
static int whole_outputs(mtmi_model *m, const char *prec, const char *cache, int pattern, float **out, size_t *n) {
    mtmi_plan_options po = {.device = "cuda:0", .precision = prec, .calibration_cache = cache};
    mtmi_plan *pl = NULL;
    if (mtmi_plan_create(m, &po, &pl)) return -1;
    const mt_graph *g = m->graph;
    (void)g;
    int rank;
    int64_t dims[MTMI_MAX_RANK];
    mtmi_tensor in = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {1, 3, 256, 256}};
    in.data = malloc(sizeof(float) * 3 * 256 * 256);
    fill_input(in.data, 3 * 256 * 256, pattern);
    mtmi_tensor o[2];
    memset(o, 0, sizeof o);
    for (int i = 0; i < 2; i++) {
        mtmi_plan_output_shape(pl, i, &rank, dims);
        n[i] = 1;
        for (int d = 0; d < rank; d++) n[i] *= (size_t)dims[d];
        out[i] = malloc(n[i] * sizeof(float));
        o[i].data = out[i];
    }
    int rc = mtmi_plan_run(pl, &in, 1, o, 2) ? -1 : 0;
    free(in.data);
    mtmi_plan_free(pl);
    return rc;
}

static void agreement(const float *seg_a, const float *seg_b, const float *dep_a, const float *dep_b, int C, size_t hw,
                      double *agree, double *dmax) {
    size_t same = 0;
    for (size_t i = 0; i < hw; i++) {
        int ka = 0, kb = 0;
        for (int c = 1; c < C; c++) {
            if (seg_a[c * hw + i] > seg_a[ka * hw + i]) ka = c;
            if (seg_b[c * hw + i] > seg_b[kb * hw + i]) kb = c;
        }
        same += ka == kb;
    }
    *agree = 100.0 * same / hw;
    *dmax = 0;
    for (size_t i = 0; i < hw; i++)
        if (fabs(dep_a[i] - dep_b[i]) > *dmax) *dmax = fabs(dep_a[i] - dep_b[i]);
}

/* The features the pipeline p hands from the encoder to the heads.  INT8
 * heads: as int8 (mt_quant_handover; on the GPU the encoder's LayerNorms
 * write the codes, fuse_qln.c, and the heads' QConvs read them in place),
 * every feature, and the outputs must be, bit for bit, those of the same
 * placement with the heads quantizing the features themselves (tuning
 * no_int8_handover).  FP16 heads: as float16 NHWC
 * (mt_pipeline_handover_f16), every feature, and the outputs within FP16
 * rounding of the float cut's (tuning no_f16_handover; measured: the same
 * bits). */
static void handover_same_bits(mtmi_model *m, const mt_placement *pl, const mt_calib_cache *calib, const mt_pipeline *p,
                               const float *in, float *const *ref, const size_t *on) {
    const mt_graph *e = mt_pipeline_stage_graph(p, 0);
    int q = 0, h16 = 0;
    for (int i = 0; i < e->nnodes; i++) q += !e->nodes[i].dead && !strcmp(e->nodes[i].op, "QuantizeNHWC");
    CHECK(!calib || q == 4, "the encoder hands %d features to the INT8 heads as int8, not 4", q);
    /* INT8: p against the heads quantizing the float features; FP16: p
     * (float16 NHWC features) against the float NCHW cut */
    mt_tuning t = *mt_tuning_default();
    t.no_int8_handover = calib != NULL;
    t.no_f16_handover = calib == NULL;
    mt_pipeline_opts o = MT_PIPELINE_OPTS_DEFAULT;
    o.inflight = 1;
    o.calib = calib;
    o.tuning = &t;
    mt_pipeline *f = NULL;
    mt_frame *fr;
    if (mt_pipeline_from_model(m, NULL, pl, &o, &f) || mt_pipeline_begin(f, &fr) ||
        (memcpy(fr->inputs[0].data, in, mt_tview_numel(mt_pipeline_input_shape(f, 0)) * sizeof(float)), mt_pipeline_submit(f, fr)) ||
        mt_pipeline_wait(f, &fr)) {
        CHECK(0, "pipeline without the handover: %s", mtmi_last_error());
        mt_pipeline_free(f);
        return;
    }
    if (!calib) { /* p's FP16 features went over as float16 NHWC */
        const mt_graph *e16 = mt_pipeline_stage_graph(p, 0);
        for (int i = 0; i < e16->nnodes; i++) h16 += !e16->nodes[i].dead && !strcmp(e16->nodes[i].op, "HalfNHWC");
        CHECK(h16 == 4, "the encoder hands %d features to the FP16 heads as float16 NHWC, not 4", h16);
    }
    int64_t diff = 0;
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < on[i]; k++) diff += memcmp((const float *)fr->outputs[i].data + k, ref[i] + k, sizeof(float)) != 0;
    if (calib) {
        printf("  int8 features from the encoder (%d): %lld elements differ from the heads quantizing float features (must be 0)\n", q,
               (long long)diff);
        CHECK(diff == 0, "the handover changed %lld output elements", (long long)diff);
    } else {
        /* the same FP16 values reach the heads, but a head reading FP32
         * NCHW staging may pick other kernels for its first layers (their
         * sums in another order): per element as against the whole model */
        printf("  float16 NHWC features from the encoder (%d): %lld elements differ from the float cut's run\n", h16, (long long)diff);
        for (int i = 0; i < 2; i++) {
            const int seg = on[i] > on[1 - i];
            CHECK(oracle_close(seg ? "seg logits, FP16 features vs float cut" : "depth, FP16 features vs float cut",
                               (const float *)fr->outputs[i].data, ref[i], (int64_t)on[i], seg ? 0.05 : 5e-3, seg ? 0.02 : 0.0),
                  "the FP16 handover changed output %d beyond FP16 rounding", i);
        }
    }
    mt_pipeline_release(f, fr);
    mt_pipeline_free(f);
}

/* Runs PATTERNS frames one at a time, then `frames` frames pipelined
 * (cycling through the patterns), and compares every pipelined output
 * with the one-at-a-time output of its pattern, bit for bit. */
static void check_gpu_pipeline(mtmi_model *m, const char *place, const mt_calib_cache *calib, const char *cache_path,
                               int frames) {
    mt_placement pl;
    CHECK(mt_placement_parse(place, &pl) == MTMI_OK, "parse '%s': %s", place, mtmi_last_error());
    mt_pipeline_opts o = MT_PIPELINE_OPTS_DEFAULT;
    o.inflight = 2;
    o.calib = calib;
    mt_pipeline *p = NULL;
    if (mt_pipeline_from_model(m, NULL, &pl, &o, &p) != MTMI_OK) {
        CHECK(0, "pipeline '%s': %s", place, mtmi_last_error());
        return;
    }
    int seg = -1, dep = -1;
    for (int i = 0; i < mt_pipeline_num_outputs(p); i++) {
        const mt_tview *t = mt_pipeline_output_shape(p, i);
        if (t->rank == 4 && t->dims[1] > 1) seg = i;
        if (t->rank == 4 && t->dims[1] == 1) dep = i;
    }
    CHECK(seg >= 0 && dep >= 0, "outputs");
    size_t in_n = mt_tview_numel(mt_pipeline_input_shape(p, 0));
    /* Inputs made once: the timed loop measures the pipeline, not the RNG. */
    float *pat[PATTERNS];
    for (int k = 0; k < PATTERNS; k++) {
        pat[k] = malloc(in_n * sizeof(float));
        fill_input(pat[k], in_n, k);
    }
    size_t on[2] = {mt_tview_numel(mt_pipeline_output_shape(p, 0)), mt_tview_numel(mt_pipeline_output_shape(p, 1))};
    float *ref[PATTERNS][2];
    for (int k = 0; k < PATTERNS; k++) {
        mt_frame *f;
        if (mt_pipeline_begin(p, &f) || (memcpy(f->inputs[0].data, pat[k], in_n * sizeof(float)), mt_pipeline_submit(p, f)) ||
            mt_pipeline_wait(p, &f)) {
            CHECK(0, "serial frame %d: %s", k, mtmi_last_error());
            mt_pipeline_free(p);
            for (int j = 0; j < PATTERNS; j++) free(pat[j]);
            return;
        }
        for (int i = 0; i < 2; i++) {
            ref[k][i] = malloc(on[i] * sizeof(float));
            memcpy(ref[k][i], f->outputs[i].data, on[i] * sizeof(float));
        }
        mt_pipeline_release(p, f);
    }
    double t_serial0 = mt_now_ms();
    for (int k = 0; k < 20; k++) {
        mt_frame *f;
        if (mt_pipeline_begin(p, &f) || mt_pipeline_submit(p, f) || mt_pipeline_wait(p, &f)) break;
        mt_pipeline_release(p, f);
    }
    double serial_ms = (mt_now_ms() - t_serial0) / 20;
    int submitted = 0, done = 0, mism = 0;
    double t0 = mt_now_ms();
    while (done < frames) {
        mt_frame *f;
        if (submitted < frames && mt_pipeline_pending(p) < mt_pipeline_inflight(p)) {
            if (mt_pipeline_begin(p, &f)) break;
            memcpy(f->inputs[0].data, pat[(int)(f->index % PATTERNS)], in_n * sizeof(float));
            if (mt_pipeline_submit(p, f)) break;
            submitted++;
            continue;
        }
        if (mt_pipeline_wait(p, &f)) {
            CHECK(0, "wait: %s", mtmi_last_error());
            break;
        }
        int k = (int)(f->index % PATTERNS);
        for (int i = 0; i < 2; i++)
            if (memcmp(f->outputs[i].data, ref[k][i], on[i] * sizeof(float))) mism++;
        mt_pipeline_release(p, f);
        done++;
    }
    double piped_ms = (mt_now_ms() - t0) / (done ? done : 1);
    CHECK(done == frames, "'%s': %d of %d frames: %s", place, done, frames, mtmi_last_error());
    CHECK(mism == 0, "'%s': %d pipelined outputs differ from the one-at-a-time run", place, mism);
    size_t devmem = mt_pipeline_num_gpus(p) ? mt_pipeline_gpu_memory(p, 0, NULL) : 0;
    printf("gpu pipeline '%s': %d frames pipelined, %d mismatches vs one at a time; %.3f ms/frame one at a time, %.3f pipelined "
           "(host I/O included); device memory %.1f MiB\n",
           place, done, mism, serial_ms, piped_ms, devmem / 1048576.0);
    /* Against the whole model as one CUDA plan. */
    float *w[2];
    size_t wn[2];
    if (whole_outputs(m, calib ? "int8" : "fp16", cache_path, 0, w, wn) == 0) {
        const mt_tview *t = mt_pipeline_output_shape(p, seg);
        size_t hw = (size_t)t->dims[2] * t->dims[3];
        double agree, dmax;
        agreement(ref[0][seg], w[seg], ref[0][dep], w[dep], (int)t->dims[1], hw, &agree, &dmax);
        printf("  vs whole model (%s, one CUDA plan): seg class agreement %.3f%%, depth max abs error %.2e\n",
               calib ? "int8 heads" : "fp16", agree, dmax);
        /* per element: the stages are the whole model's nodes in separate
         * plans, so only the FP16 rounding at the cut may differ; the
         * whole-model plan's own map must be discriminative */
        CHECK(oracle_nondegenerate("whole model", w[seg], w[dep], 1, (int64_t)hw), "'%s': the reference output is degenerate",
              place);
        CHECK(oracle_close("seg logits vs whole model", ref[0][seg], w[seg], (int64_t)t->dims[1] * hw, calib ? 0.25 : 0.05,
                           calib ? 0.05 : 0.02),
              "'%s': seg logits differ from the whole model", place);
        CHECK(oracle_close("depth vs whole model", ref[0][dep], w[dep], (int64_t)hw, calib ? 0.05 : 5e-3, 0.0),
              "'%s': depth differs from the whole model", place);
        free(w[0]);
        free(w[1]);
    } else {
        CHECK(0, "whole model plan: %s", mtmi_last_error());
    }
    handover_same_bits(m, &pl, calib, p, pat[0], ref[0], on);
    for (int k = 0; k < PATTERNS; k++) free(ref[k][0]), free(ref[k][1]), free(pat[k]);
    mt_pipeline_free(p);
}

/* 8-bit frames normalized on the GPU (mtmi.Preprocess in the encoder's
 * plan) vs floats normalized on the host: the same FP16 inputs, so the
 * same outputs bit for bit. */
static void test_image_input(mtmi_model *m) {
    mt_placement pl;
    mt_placement_parse("cuda:0/fp16", &pl);
    mt_pipeline *pf = NULL, *pi = NULL;
    mt_pipeline_opts o = MT_PIPELINE_OPTS_DEFAULT;
    CHECK(mt_pipeline_from_model(m, NULL, &pl, &o, &pf) == MTMI_OK, "float pipeline: %s", mtmi_last_error());
    o.image_input = 1;
    CHECK(mt_pipeline_from_model(m, NULL, &pl, &o, &pi) == MTMI_OK, "image pipeline: %s", mtmi_last_error());
    mt_image img = {0};
    CHECK(mt_image_synth_street(256, 256, 2, &img) == MTMI_OK, "synth");
    if (pf && pi && img.px) {
        mt_frame *a, *b;
        int ok = !mt_app_run_one(pf, &img, &a) && !mt_app_run_one(pi, &img, &b);
        CHECK(ok, "image input run: %s", mtmi_last_error());
        if (ok) {
            /* The normalized inputs are the same FP16 values, but the two
             * pipelines are separate plans whose GEMM tactics are chosen by
             * timing: measured 0 in most runs, 4.9e-4 (one FP16 step near 1)
             * in some (2026-12-06, H100).  A wrong normalization moves the
             * outputs by far more. */
            for (int i = 0; i < mt_pipeline_num_outputs(pf); i++) {
                char tag[96];
                snprintf(tag, sizeof tag, "image input on the GPU vs host-normalized, output %d", i);
                CHECK(oracle_close(tag, b->outputs[i].data, a->outputs[i].data, mt_tview_numel(&a->outputs[i]), 2e-3, 2e-3),
                      "GPU preprocessing differs from the host's (output %d)", i);
            }
        }
    }
    mt_image_free(&img);
    mt_pipeline_free(pf);
    mt_pipeline_free(pi);
}

/* 1,000 frames through a GPU pipeline: device memory and the process's
 * resident memory stay flat (no per-frame allocation, no growing cache of
 * CUDA graphs: one per frame slot). */
static void test_memory_flat(mtmi_model *m) {
    mt_placement pl;
    mt_placement_parse("encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0.sm16/fp16", &pl);
    mt_pipeline *p = NULL;
    if (mt_pipeline_from_model(m, NULL, &pl, NULL, &p)) {
        CHECK(0, "pipeline: %s", mtmi_last_error());
        return;
    }
    size_t dev100 = 0, rss100 = 0;
    int done = 0, sub = 0, failed = 0;
    while (done < 1000 && !failed) {
        mt_frame *f;
        if (sub < 1000 && mt_pipeline_pending(p) < mt_pipeline_inflight(p)) {
            if (mt_pipeline_begin(p, &f) || mt_pipeline_submit(p, f)) failed = 1;
            sub++;
            continue;
        }
        if (mt_pipeline_wait(p, &f)) {
            failed = 1;
            break;
        }
        mt_pipeline_release(p, f);
        if (++done == 100) {
            dev100 = mt_pipeline_gpu_memory(p, 0, NULL);
            rss100 = mt_rss_bytes();
        }
    }
    size_t dev1000 = mt_pipeline_gpu_memory(p, 0, NULL), rss1000 = mt_rss_bytes();
    printf("memory over 1000 frames: device %.1f -> %.1f MiB (after 100 -> 1000 frames), RSS %.1f -> %.1f MiB\n", dev100 / 1048576.0,
           dev1000 / 1048576.0, rss100 / 1048576.0, rss1000 / 1048576.0);
    CHECK(!failed && done == 1000, "1000 frames: %s", mtmi_last_error());
    CHECK(dev1000 <= dev100, "device memory grew over 1000 frames");
    CHECK(rss1000 < rss100 + 8 * 1048576, "resident memory grew by %.1f MiB", (rss1000 - (double)rss100) / 1048576.0);
    mt_pipeline_free(p);
}

static void test_error(mtmi_model *m) {
    mt_placement pl;
    mt_placement_parse("cuda:0/fp16", &pl);
    mt_pipeline_opts o = MT_PIPELINE_OPTS_DEFAULT;
    o.inject_stage = 2;
    o.inject_frame = 3;
    mt_pipeline *p = NULL;
    if (mt_pipeline_from_model(m, NULL, &pl, &o, &p)) {
        CHECK(0, "pipeline: %s", mtmi_last_error());
        return;
    }
    int failed = 0;
    for (int k = 0; k < 20 && !failed; k++) {
        mt_frame *f;
        if (mt_pipeline_pending(p) < 2) {
            if (mt_pipeline_begin(p, &f) || mt_pipeline_submit(p, f)) failed = 1;
            continue;
        }
        if (mt_pipeline_wait(p, &f)) failed = 1;
        else mt_pipeline_release(p, f);
    }
    CHECK(failed && strstr(mtmi_last_error(), "frame 3") && strstr(mtmi_last_error(), "cuda:0"), "error: %s", mtmi_last_error());
    printf("error shutdown: %s\n", mtmi_last_error());
    mt_pipeline_free(p);
}

/* A pipeline that cannot fit in the GPU's memory: the test first takes all
 * but 96 MiB of the free device memory, then asks for the built-in network
 * at 1024x1024 (a few hundred MiB): a one-line error that says so, and
 * every byte the attempt took given back (device use after the failure
 * within 16 MiB of before).  (A huge batch instead runs into the per-tensor
 * size limit of shape inference before any device memory is asked for.) */
static void test_out_of_memory(void) {
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    void *hog = NULL;
    for (size_t want = fr > (96u << 20) ? fr - (96u << 20) : 0; want > (64u << 20) && !hog; want -= 32u << 20)
        if (cudaMalloc(&hog, want) != cudaSuccess) hog = NULL, cudaGetLastError();
    CHECK(hog != NULL, "could not take the GPU's free memory for the out-of-memory case");
    if (!hog) return;
    cudaMemGetInfo(&fr, &tot);
    const size_t before = tot - fr;
    mtmi_model *big = NULL;
    mt_mtmi_net_opts no = {.seed = 5, .height = 1024, .width = 1024};
    if (mt_model_builtin(&no, &big) != MTMI_OK) {
        CHECK(0, "network: %s", mtmi_last_error());
        cudaFree(hog);
        return;
    }
    mt_placement pl;
    mt_placement_parse("cuda:0/fp16", &pl);
    mt_pipeline_opts o = MT_PIPELINE_OPTS_DEFAULT;
    mt_pipeline *p = NULL;
    const mtmi_status s = mt_pipeline_from_model(big, NULL, &pl, &o, &p);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", mtmi_last_error());
    CHECK(s != MTMI_OK && !p, "the network fitted in %.0f MiB of free device memory?", fr / 1048576.0);
    CHECK(strstr(msg, "memory") != NULL, "not reported as out of memory: '%s'", msg);
    CHECK(*msg && !strchr(msg, '\n'), "out-of-memory error is not one line: '%s'", msg);
    mt_pipeline_free(p);
    mt_model_free(big);
    cudaMemGetInfo(&fr, &tot);
    const size_t after = tot - fr;
    printf("out of memory: '%s'; device use %.1f MiB before, %.1f MiB after\n", msg, before / 1048576.0, after / 1048576.0);
    CHECK(after <= before + (16u << 20), "the failed pipeline left %.1f MiB on the device", (after - before) / 1048576.0);
    cudaFree(hog);
}

int main(void) {
    alarm(600);
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("no CUDA GPU: skipped\n");
        return 77;
    }
    test_partition();
    mtmi_model *m = NULL;
    mt_mtmi_net_opts no = {.seed = 5, .height = 256, .width = 256};
    if (mt_model_builtin(&no, &m) != MTMI_OK) {
        CHECK(0, "mtmi net: %s", mtmi_last_error());
    } else {
        test_out_of_memory();
        check_gpu_pipeline(m, "cuda:0/fp16", NULL, NULL, 60);
        check_gpu_pipeline(m, "encoder=cuda:0/fp16,seg=cuda:0.sm16/fp16,depth=cuda:0.sm16/fp16", NULL, NULL, 30);
        /* INT8 heads: a min-max cache from two frames. */
        char cache[256];
        snprintf(cache, sizeof cache, "%s/mtmi_gpu_pipe.cache", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        mtmi_tensor fr[2];
        for (int k = 0; k < 2; k++) {
            fr[k] = (mtmi_tensor){.dtype = MTMI_FLOAT, .rank = 4, .dims = {1, 3, 256, 256}};
            fr[k].data = malloc(sizeof(float) * 3 * 256 * 256);
            fill_input(fr[k].data, 3 * 256 * 256, 100 + k);
        }
        mtmi_calibrate_options co = {.method = MTMI_CALIB_MINMAX};
        mt_calib_cache c;
        memset(&c, 0, sizeof c);
        if (mtmi_calibrate(m, fr, 2, &co, cache) != MTMI_OK || mt_calib_cache_read(cache, &c) != MTMI_OK) {
            CHECK(0, "calibrate: %s", mtmi_last_error());
        } else {
            check_gpu_pipeline(m, "encoder=cuda:0/fp16,seg=cuda:0/int8,depth=cuda:0/int8", &c, cache, 30);
            check_gpu_pipeline(m, "encoder=cuda:0/fp16,seg=cuda:0.sm16/int8,depth=cuda:0.sm16/int8", &c, cache, 20);
        }
        mt_calib_cache_free(&c);
        free(fr[0].data);
        free(fr[1].data);
        test_image_input(m);
        test_memory_flat(m);
        test_error(m);
        mtmi_model_free(m);
    }
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
