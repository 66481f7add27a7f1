/* Every step fusion of the CUDA backend (src/cuda/fuse*.c) against the
 * unfused plan, on the GPU: the built-in MTMI network (spread weights: a
 * discriminative class map and depth) compiled in FP16 with every fusion off
 * (tuning.cuda_no_fuse = "all") is the reference; then each pass alone (with the
 * passes it builds on), the opt-in passes, and all default passes together.
 * For each: the fusion must have fired (its step kind appears, or the step
 * count drops) and the outputs must match the unfused plan per element
 * (|fused - unfused| <= atol + rtol |unfused|), with the class of every
 * pixel whose reference top-two margin exceeds twice the logit tolerance.
 *
 * The fused kernels round intermediates to FP16 at other places than the
 * unfused steps do (e.g. the decode head's projections before the
 * upsampling), so the two differ by FP16 rounding only.  The log prints
 * each case's largest error and the share of the tolerance it uses; the
 * tolerances are ~4x the largest errors of the first GPU run (H100,
 * 2026-12-06, 1024x1024, all cases: seg 7.0e-3, depth 3.0e-3).
 *
 * Usage: test_cuda_fusion [--size HxW] (default 1024x1024).  Exit 1 on any
 * failure, 77 (ctest's SKIP_RETURN_CODE) when no GPU is visible. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernels.h"
#include "graph/mtmi_net.h"

#include "check.h"
#include "oracle.h"

/* The default passes and the opt-in ones (src/cuda/fuse.c). */
static const char *const g_passes[] = {"mlp",    "upconv", "catgemm", "chain", "lnim2col", "stem",
                                       "lnpair", "lnproj", "mlpln",   "poly",  "poly32",   "wgconv"};
#define NPASSES ((int)(sizeof g_passes / sizeof g_passes[0]))

/* Per-element tolerances of a fused FP16 plan against the unfused FP16
 * plan: seg logits (|x| up to ~8) and depth (0..1); ~4x the measured. */
#define SEG_ATOL 3e-2
#define SEG_RTOL 1e-2
#define DEPTH_ATOL 1.2e-2
#define MIN_AGREE 0.99 /* class agreement over all pixels */

typedef struct run_out {
    float *seg, *depth;
    int nsteps;
    char *plan; /* mt_cuda_plan_profile's listing (step kinds) */
} run_out;

/* the passes that run only when named (src/cuda/fuse.c) */
static int is_optin(const char *pass) {
    return !strcmp(pass, "lnproj") || !strcmp(pass, "mlpln") || !strcmp(pass, "poly") || !strcmp(pass, "poly32") ||
           !strcmp(pass, "wgconv");
}

/* tuning.cuda_no_fuse (MTMI_CUDA_NO_FUSE) = every pass not in keep (comma
 * list); the opt-in ones in keep also go to tuning.cuda_fuse_opt. */
static void set_fusions(const char *keep, mt_tuning *t) {
    char no[512] = "", opt[256] = "";
    for (int i = 0; i < NPASSES; i++) {
        int kept = 0;
        if (keep) {
            size_t n = strlen(g_passes[i]);
            for (const char *q = keep; (q = strstr(q, g_passes[i])); q += n)
                if ((q == keep || q[-1] == ',') && (q[n] == 0 || q[n] == ',')) kept = 1;
        }
        char *dst = kept ? opt : no;
        size_t cap = kept ? sizeof opt : sizeof no;
        if (kept && !is_optin(g_passes[i])) continue; /* default pass: on */
        snprintf(dst + strlen(dst), cap - strlen(dst), "%s%s", dst[0] ? "," : "", g_passes[i]);
    }
    *t = *mt_tuning_default();
    snprintf(t->cuda_no_fuse, sizeof t->cuda_no_fuse, "%s", no);
    snprintf(t->cuda_fuse_opt, sizeof t->cuda_fuse_opt, "%s", opt);
}

static int run_plan(const mt_graph *g, const float *x, const char *keep, run_out *r) {
    memset(r, 0, sizeof *r);
    mt_tuning t;
    set_fusions(keep, &t);
    mt_cuda_plan *p = NULL;
    mt_cuda_plan_opts po = {.fp16 = 1, .tuning = &t};
    if (mt_cuda_plan_create_ex(g, 0, &po, &p)) {
        printf("plan (fusions '%s'): %s\n", keep ? keep : "none", mtmi_last_error());
        return -1;
    }
    const mt_value *iv = &g->values[g->inputs[0]];
    mt_tview in = {.data = (void *)x, .dtype = MTMI_FLOAT, .rank = iv->rank};
    memcpy(in.dims, iv->dims, sizeof in.dims);
    mt_tview out[2];
    memset(out, 0, sizeof out);
    for (int i = 0; i < 2; i++) out[i].data = malloc(mt_value_bytes(&g->values[g->outputs[i]]));
    int rc = mt_cuda_plan_run(p, &in, 1, out, 2) ? -1 : 0;
    if (rc) printf("run (fusions '%s'): %s\n", keep ? keep : "none", mtmi_last_error());
    r->seg = out[0].data;
    r->depth = out[1].data;
    r->nsteps = mt_cuda_plan_num_steps(p);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f) {
        mt_cuda_plan_profile(p, f);
        fclose(f);
    }
    r->plan = buf;
    mt_cuda_plan_free(p);
    return rc;
}

static void free_out(run_out *r) {
    free(r->seg);
    free(r->depth);
    free(r->plan);
}

/* Plan steps of a kind ("plan %4d %-11s ..." lines). */
static int count_kind(const run_out *r, const char *kind) {
    int n = 0;
    if (!r->plan) return -1;
    for (const char *l = r->plan; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char k[32];
        int idx;
        if (sscanf(l, "plan %d %31s", &idx, k) == 2 && !strcmp(k, kind)) n++;
    }
    return n;
}

int main(int argc, char **argv) {
    int H = 1024, W = 1024;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--size") && i + 1 < argc && sscanf(argv[++i], "%dx%d", &H, &W) == 2) continue;
        else {
            fprintf(stderr, "usage: test_cuda_fusion [--size HxW]\n");
            return 2;
        }
    if (mt_cuda_check_device(0)) {
        printf("skipped: %s\n", mtmi_last_error());
        return 77;
    }
    uint64_t seed = oracle_seed(0);
    mtmi_model *m = NULL;
    mt_mtmi_net_opts no = {.seed = seed, .height = H, .width = W};
    if (mt_model_builtin(&no, &m)) {
        printf("FAIL: MTMI network: %s\n", mtmi_last_error());
        return 1;
    }
    mt_graph *g = NULL;
    if (mt_model_specialize(m, NULL, 0, 1, &g)) {
        printf("FAIL: specialize: %s\n", mtmi_last_error());
        return 1;
    }
    int64_t hw = (int64_t)H * W, in_n = 3 * hw;
    float *x = malloc(sizeof(float) * in_n);
    oracle_rng r = {seed + 17};
    for (int64_t i = 0; i < in_n; i++) x[i] = oracle_normal(&r);

    run_out ref;
    if (run_plan(g, x, NULL, &ref)) return 1;
    printf("unfused FP16 plan: %d steps\n", ref.nsteps);
    CHECK(oracle_nondegenerate("unfused FP16 plan", ref.seg, ref.depth, 1, hw), "degenerate reference output");

    /* keep: the passes on (and those they build on); kind: the step kind
     * the fusion makes ("" = it rewrites existing steps: fewer steps). */
    static const struct {
        const char *keep, *kind;
    } cases[] = {
        {"mlp", "mlp-fused"},        {"upconv", "upconv"},    {"catgemm", "resize-sum"}, {"catgemm,chain", "gemm-chain"},
        {"lnim2col", ""},            {"stem", "conv-smallk"}, {"lnpair", ""},            {"lnim2col,lnpair", ""},
        {"lnproj", ""},              {"mlp,mlpln", ""},
        {"poly", "poly-finish"},     {"poly,poly32", "poly-finish"},
        /* the FP16 3x3 convs on our wgmma kernel (hconv.cu): every one of
         * them alone, then beside the upconv kernel (which takes fuse.0) */
        {"wgconv", "conv-wgmma"},    {"upconv,wgconv", "conv-wgmma"},
        {"mlp,upconv,catgemm,chain,lnim2col,stem,lnpair", "mlp-fused"}, /* the default plan */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        run_out o;
        printf("fusions '%s':\n", cases[c].keep);
        if (!strcmp(cases[c].kind, "conv-wgmma") && !mtk_hconv_built()) {
            /* not a hidden skip: a build without sm_90a has no such kernel */
            printf("  not built (CMAKE_CUDA_ARCHITECTURES is not 90a): case skipped\n");
            continue;
        }
        if (run_plan(g, x, cases[c].keep, &o)) {
            CHECK(0, "'%s': plan or run failed", cases[c].keep);
            free_out(&o);
            continue;
        }
        /* the fusion fired */
        int fired;
        if (cases[c].kind[0]) {
            int k = count_kind(&o, cases[c].kind);
            fired = k > 0;
            printf("  %d '%s' steps, %d steps in all (unfused %d)\n", k, cases[c].kind, o.nsteps, ref.nsteps);
        } else {
            int base = ref.nsteps;
            if (!strcmp(cases[c].keep, "mlp,mlpln") || !strcmp(cases[c].keep, "lnim2col,lnpair")) {
                /* builds on another pass: fewer steps than that pass alone */
                run_out b;
                const char *alone = !strcmp(cases[c].keep, "mlp,mlpln") ? "mlp" : "lnim2col";
                if (!run_plan(g, x, alone, &b)) base = b.nsteps;
                free_out(&b);
            }
            fired = o.nsteps < base;
            printf("  %d steps (without it %d)\n", o.nsteps, base);
        }
        CHECK(fired, "'%s': the fusion did not fire", cases[c].keep);
        char tag[128];
        snprintf(tag, sizeof tag, "'%s' vs unfused: seg", cases[c].keep);
        CHECK(oracle_close(tag, o.seg, ref.seg, 19 * hw, SEG_ATOL, SEG_RTOL), "%s", tag);
        snprintf(tag, sizeof tag, "'%s' vs unfused: depth", cases[c].keep);
        CHECK(oracle_close(tag, o.depth, ref.depth, hw, DEPTH_ATOL, 0), "%s", tag);
        /* classes of the decided pixels */
        int64_t decided = 0, flipped = 0;
        double tol = SEG_ATOL + SEG_RTOL * 8;
        for (int64_t i = 0; i < hw; i++) {
            float t1, t2;
            int a = oracle_argmax(ref.seg, 19, hw, 0, i, &t1, &t2);
            if (t1 - t2 > 2 * tol) {
                decided++;
                flipped += oracle_argmax(o.seg, 19, hw, 0, i, NULL, NULL) != a;
            }
        }
        printf("  class agreement %.4f%%, %.2f%% of pixels decided (margin > %.3g), %lld of them flipped\n",
               100 * oracle_class_agreement(o.seg, ref.seg, 1, 19, hw), 100.0 * decided / hw, 2 * tol, (long long)flipped);
        /* FP16's logit tolerance leaves many pixels undecided: the
         * agreement over all pixels is bounded too (measured >= 99.886 %) */
        double agree = oracle_class_agreement(o.seg, ref.seg, 1, 19, hw);
        CHECK(flipped == 0 && agree >= MIN_AGREE, "'%s': %lld decided pixels flipped, agreement %.4f", cases[c].keep,
              (long long)flipped, agree);
        free_out(&o);
    }
    free_out(&ref);
    free(x);
    mt_graph_free(g);
    mt_model_free(m);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
