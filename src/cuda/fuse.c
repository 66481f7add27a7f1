/* Step-level fusion for the CUDA plan.
 *
 * plan_node() emits one or two steps per graph node; some chains of steps
 * are cheaper as one kernel because the tensors between them are large and
 * read once (the encoder's MLP: fc1 -> depthwise conv -> fc2 moves 16 MB
 * intermediates three times at stage 1).  These passes look at the emitted
 * steps, not at graph nodes, so they see the tensors as they will be laid out
 * (strides, concat slices, views) and need not know how an exporter spelled
 * the transposes between the ops. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "cuda/cuda_internal.h"

int mc_fuse_enabled(const mc_plan *p, const char *pass) { return !mt_tuning_list_has(p->tuning.cuda_no_fuse, pass, 1); }

int mc_step_uses(const mc_step *s, int buf) {
    for (int k = 0; k < s->nt; k++)
        if (s->t[k].buf == buf) return 1;
    return 0;
}

int mc_last_user_before(const mc_plan *p, int buf, int k) {
    for (int j = k - 1; j >= 0; j--)
        if (mc_step_uses(&p->steps[j], buf)) return j;
    return -1;
}

int mc_same_view(const mc_tref *a, const mc_tref *b) {
    if (a->buf != b->buf || a->st != b->st || a->off != b->off || a->rank != b->rank) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d] || (a->dims[d] > 1 && a->strides[d] != b->strides[d])) return 0;
    return 1;
}

int mc_buf_used_elsewhere(const mc_plan *p, int buf, int a, int b) {
    if (buf < 0) return 0;
    if (p->bufs[buf].kind != MC_ARENA) return 1;
    for (int s = 0; s < p->nsteps; s++)
        if (s != a && s != b && mc_step_uses(&p->steps[s], buf)) return 1;
    return 0;
}

mc_tref mc_nhwc_f16(int buf, int64_t N, int64_t C, int64_t H, int64_t W) {
    mc_tref t;
    memset(&t, 0, sizeof t);
    t.buf = buf, t.st = MTMI_FLOAT16, t.rank = 4;
    t.dims[0] = N, t.dims[1] = C, t.dims[2] = H, t.dims[3] = W;
    t.strides[0] = H * W * C, t.strides[1] = 1, t.strides[2] = W * C, t.strides[3] = C;
    return t;
}

int mc_f16_c8_view(const mc_tref *t, int64_t N) {
    return t->rank == 4 && t->st == MTMI_FLOAT16 && t->dims[0] == N && t->strides[1] == 1 && t->strides[0] % 8 == 0 &&
           t->strides[2] % 8 == 0 && t->strides[3] % 8 == 0 && t->off % 8 == 0 && t->dims[1] % 8 == 0;
}

int mc_views_overlap(const mc_tref *a, const mc_tref *b) {
    if (a->buf != b->buf || a->buf < 0) return 0;
    int64_t alo = a->off, ahi = a->off, blo = b->off, bhi = b->off;
    for (int d = 0; d < a->rank; d++) {
        const int64_t e = (a->dims[d] - 1) * a->strides[d];
        if (e < 0) alo += e;
        else ahi += e;
    }
    for (int d = 0; d < b->rank; d++) {
        const int64_t e = (b->dims[d] - 1) * b->strides[d];
        if (e < 0) blo += e;
        else bhi += e;
    }
    return alo <= bhi && blo <= ahi;
}

int mc_written_between(const mc_plan *p, int a, int b, const mc_tref *v, int nv) {
    for (int k = a + 1; k < b; k++)
        for (int j = 0; j < nv; j++)
            if (p->steps[k].nt > 0 && mc_views_overlap(&p->steps[k].t[0], &v[j])) return 1;
    return 0;
}

mc_step mc_step_like(const mc_step *from, int kind) {
    mc_step s;
    memset(&s, 0, sizeof s);
    s.kind = kind;
    s.node = from->node;
    s.label = from->label;
    s.order = from->order;
    return s;
}

mc_step *mc_insert_step(mc_plan *p, int at) {
    if (mc_reserve_step(p)) return NULL;
    memmove(&p->steps[at + 1], &p->steps[at], sizeof(mc_step) * (size_t)(p->nsteps - at));
    p->nsteps++;
    memset(&p->steps[at], 0, sizeof(mc_step));
    for (int k = 0; k < p->nsteps; k++) p->steps[k].order = k;
    return &p->steps[at];
}

/* takes the steps a pass marked MC_DROPPED out, keeping the order */
static void sweep(mc_plan *p) {
    int w = 0;
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s].kind != MC_DROPPED) p->steps[w++] = p->steps[s];
    p->nsteps = w;
}

/* runs pass `name` unless tuning.cuda_no_fuse (MTMI_CUDA_NO_FUSE) names it
 * (an opt-in pass only when tuning.cuda_fuse_opt, MTMI_CUDA_FUSE_OPT,
 * names it) and sweeps what it dropped; -1 (error set) on failure */
static int run_pass(mc_plan *p, const char *name, int optin, int (*pass)(mc_plan *)) {
    if (!mc_fuse_enabled(p, name) || (optin && !mt_tuning_list_has(p->tuning.cuda_fuse_opt, name, 0))) return 0;
    int made = pass(p);
    sweep(p);
    if (made >= 0 && p->nfused < (int)(sizeof p->fused / sizeof p->fused[0])) {
        p->fused[p->nfused].pass = name;
        p->fused[p->nfused++].made = made;
    }
    return made;
}

mtmi_status mc_fuse_steps(mc_plan *p) {
    if (run_pass(p, "classmap", 0, mc_fuse_classmap) < 0) return MTMI_ERR_DEVICE; /* FP16 and FP32 */
    /* the reassociated INT8 fuse conv (MTMI_INT8_REASSOC=1): its
     * upsample-sum in level 0's GEMM epilogue (fuse_qupsum.c: the same
     * bits); before qchain, which can then chain that GEMM to the next */
    if (run_pass(p, "qupsum", 0, mc_fuse_qupsum) < 0) return MTMI_ERR_DEVICE;
    /* INT8 heads, any storage; on by default since its GPU measurement
     * (fuse_qchain.c: same bits, seg -24 us, depth -20 us on an H200) */
    if (run_pass(p, "qchain", 0, mc_fuse_qchain) < 0) return MTMI_ERR_DEVICE;
    /* on by default since its GPU measurement (fuse_qresize.c: same bits,
     * depth head 0.511 -> 0.466 ms on an H100, 2026-12-07); after qchain */
    if (run_pass(p, "qresize", 0, mc_fuse_qresize) < 0) return MTMI_ERR_DEVICE;
    /* Opt-in only (MTMI_CUDA_FUSE_OPT=qupconv; fuse_qupconv.c): the same
     * bits, but measured slower on an H100 (2026-12-07, gpu_int8.sh: depth
     * head 0.494 ms with it, 0.288 without): each output-channel tile
     * makes the upsample again.  After qresize, whose int8 upsamples it
     * takes in. */
    if (run_pass(p, "qupconv", 1, mc_fuse_qupconv) < 0) return MTMI_ERR_DEVICE;
    if (!p->f16) return MTMI_OK; /* the other fused kernels are FP16 */
    if (run_pass(p, "mlp", 0, mc_fuse_mlp) < 0) return MTMI_ERR_DEVICE;
    /* Opt-in only (MTMI_CUDA_FUSE_OPT=poly; fuse_poly.c): correct, but
     * measured slower on an H100 (2026-12-07, scripts/gpu_ab.sh, 3 rounds:
     * depth head 0.62-0.66 ms with it, 0.27-0.28 without; cuDNN runs the
     * composed low-resolution conv no faster than the upsampled one, and
     * the finish kernel took 56-227 us).  Before upconv, which takes the
     * upsample -> conv pairs it leaves. */
    if (run_pass(p, "poly", 1, mc_fuse_poly) < 0) return MTMI_ERR_DEVICE;
    if (run_pass(p, "upconv", 0, mc_fuse_upconv) < 0) return MTMI_ERR_DEVICE;
    if (run_pass(p, "catgemm", 0, mc_fuse_concat_gemm) < 0) return MTMI_ERR_DEVICE;
    if (run_pass(p, "chain", 0, mc_fuse_chain) < 0) return MTMI_ERR_DEVICE; /* after catgemm */
    /* Opt-in only (MTMI_CUDA_FUSE_OPT=lnproj): correct, but measured no
     * faster on an H100 (2026-11-25, scripts/gpu_ab.sh, 3 alternating
     * rounds, first two stages only: whole net 1.076-1.091 ms with it,
     * 1.065-1.083 without; every stage: +130 us) */
    if (run_pass(p, "lnproj", 1, mc_fuse_ln_proj) < 0) return MTMI_ERR_DEVICE;
    if (run_pass(p, "lnim2col", 0, mc_fuse_ln_im2col) < 0) return MTMI_ERR_DEVICE;
    /* after lnim2col: an im2col that a LayerNorm already writes is gone;
     * the stem's (over the network input) is not one of those */
    if (run_pass(p, "stem", 0, mc_fuse_im2col_gemm) < 0) return MTMI_ERR_DEVICE;
    if (run_pass(p, "lnpair", 0, mc_fuse_ln_pair) < 0) return MTMI_ERR_DEVICE; /* after lnim2col */
    /* Opt-in only (MTMI_CUDA_FUSE_OPT=mlpln): correct, but measured no
     * faster on an H100 (2026-11-25, scripts/gpu_ab.sh, 3 rounds: whole net
     * 1.058-1.090 ms with it, 1.061-1.064 without): the LayerNorm of the 180
     * halo rows, serialized before each block's first product, costs what
     * the saved launch and round trip gained. */
    if (run_pass(p, "mlpln", 1, mc_fuse_mlp_ln) < 0) return MTMI_ERR_DEVICE;
    /* INT8 heads after an FP16 encoder: the encoder's LayerNorms write the
     * features' int8 codes for the heads' QConvs (fuse_qln.c); last, once
     * lnim2col / lnpair / mlpln have settled which LN kernel runs */
    if (run_pass(p, "qln", 0, mc_fuse_qln) < 0) return MTMI_ERR_DEVICE;
    /* Opt-in only (MTMI_CUDA_FUSE_OPT=wgconv; fuse_wgconv.c): the FP16 3x3
     * convs on our wgmma kernel instead of cuDNN; built without a GPU, not
     * yet measured.  Last: the passes above look for MC_CUDNN steps. */
    if (run_pass(p, "wgconv", 1, mc_fuse_wgconv) < 0) return MTMI_ERR_DEVICE;
    return MTMI_OK;
}

int mt_cuda_plan_fusions(const mt_cuda_plan *pp, const char *pass) {
    const mc_plan *p = (const mc_plan *)pp;
    for (int i = 0; i < p->nfused; i++)
        if (!strcmp(p->fused[i].pass, pass)) return p->fused[i].made;
    return -1;
}
