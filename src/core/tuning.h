/* tuning: the experimental switches of every layer, in one options struct.
 *
 * These are for measurements and comparisons (A/B of a fusion, a kernel
 * variant, a tile budget), not for users: the defaults (all zero) are what
 * the library is tuned and tested for.  The library never reads the
 * environment; whoever creates a plan or a pipeline passes this struct
 * (mt_stage_cfg.tuning, mt_pipeline_opts.tuning, mt_optimize_opts), and
 * the public API takes the same switches as a string
 * (mtmi_plan_options.tuning, "cuda_no_fuse=mlp,upconv;pdl=1", parsed by
 * mt_tuning_parse).  The command line and the benchmark programs map the
 * MTMI_* environment variables onto it (src/app/env.c), so that scripts
 * keep working: the variable is named beside each field.
 *
 * It lives in core because every layer reads some of it and none may
 * include a layer above its own; it holds data only. */
#ifndef MT_TUNING_H
#define MT_TUNING_H

#include <stddef.h>

#include "mtmi.h"

#define MT_TUNING_LIST 256

typedef struct mt_tuning {
    /* ---- graph passes (mt_graph_optimize) ---- */
    /* MTMI_NO_FUSE: graph fusion patterns not to apply: "all" or a comma
     * list of pattern names (bn, ln, gelu, attn, linear, act, actlayout,
     * layout, concat). */
    char no_fuse[MT_TUNING_LIST];
    /* MTMI_FUSE_CONCAT=1: the opt-in rewrite of a 1x1 conv over a Concat of
     * resized maps into one conv per map and Adds (faster on the CPU).  It
     * changes the graph but keeps every tensor name a calibration cache
     * can hold: the INT8 paths specialize without it. */
    int fuse_concat;

    /* ---- pipeline (src/pipeline) ---- */
    /* MTMI_NO_INT8_HANDOVER=1: INT8 head stages quantize the encoder's float
     * features themselves instead of receiving them as int8 from the
     * encoder stage (mt_quant_handover); for A/B measurements. */
    int no_int8_handover;
    /* MTMI_NO_F16_HANDOVER=1: GPU heads read a GPU encoder's features as
     * float NCHW cut tensors instead of float16 NHWC
     * (mt_pipeline_handover_f16); for A/B measurements. */
    int no_f16_handover;

    /* ---- INT8 (src/quant) ---- */
    /* MTMI_INT8_REASSOC=1: the INT8 1x1 QConv over a concat of upsampled
     * maps (the seg head's fuse conv) reassociated in exact integers:
     * per-map projections at their own resolution and mtmi.QUpsampleSum
     * (src/quant/reassoc.c; the concat's quantize moves before the
     * resizes).  CPU and CUDA stages (src/cuda/qupsum.cu; on the GPU
     * level 0's GEMM does the upsample-sum in its epilogue,
     * fuse_qupsum.c). */
    int int8_reassoc;

    /* ---- CPU kernels (src/cpu) ---- */
    int nn_col_kb;        /* MTMI_NN_COL_KB: im2col tile budget, KiB (0 = default)     */
    int nn_1x1_kb;        /* MTMI_NN_1X1_KB: 1x1 conv tile budget, KiB (0 = default)   */
    int nn_wino_kb;       /* MTMI_NN_WINO_KB: Winograd band budget, KiB (0 = default)  */
    int no_winograd;      /* MTMI_NN_WINOGRAD=0: 3x3 convolutions without Winograd     */
    int no_avx512;        /* MTMI_NO_AVX512=1: the AVX2 path of the fused kernels      */
    /* MTMI_BLAS_KEEP_CORE=1 (or OPENBLAS_CORETYPE set): keep the kernel set
     * OpenBLAS chose.  OpenBLAS's choice is process-wide, so the first CPU
     * plan's setting decides. */
    int blas_keep_core;

    /* ---- CUDA plans (src/cuda) ---- */
    /* MTMI_CUDA_NO_FUSE: step fusions not to apply ("all" or "1" = every
     * one; else a comma list: classmap, qchain, qresize, mlp, upconv,
     * catgemm, chain, lnproj, lnim2col, stem, lnpair, mlpln, qln, poly,
     * qupsum). */
    char cuda_no_fuse[MT_TUNING_LIST];
    /* MTMI_CUDA_FUSE_OPT: opt-in step fusions to apply (lnproj, mlpln, qupconv,
     * poly; poly32: poly also for convs of 32 or fewer outputs). */
    char cuda_fuse_opt[MT_TUNING_LIST];
    int pdl;              /* MTMI_PDL=1: programmatic dependent launch attributes      */
    /* MTMI_ATTN_CFG="kernel,ksplit": force the attention kernel and its key
     * split (attn_cfg_set = 1) instead of the heuristic choice. */
    int attn_cfg_set, attn_kernel, attn_ksplit;
    int qconv_simple;     /* MTMI_QCONV_SIMPLE=1: the untiled INT8 conv kernel         */
    int qconv_fuse;       /* MTMI_QCONV_FUSE=1: quantize + 1x1 INT8 GEMM in one kernel */
    /* MTMI_QCONV_WGMMA: the INT8 3x3 convolutions on the wgmma kernel (sm_90a
     * builds): 1 on, -1 off ("0"), 0 the library's default (off until
     * measured faster: docs/PERFORMANCE.md) */
    int qconv_wgmma;
    int trace_dest;       /* MTMI_CUDA_TRACE_DEST=1: where each tensor is written, to stderr */

    /* ---- calibration (src/quant) ---- */
    /* MTMI_CALIB_HIST_DIR: write every tensor's histogram there. */
    char calib_hist_dir[MT_TUNING_LIST];
} mt_tuning;

/* The defaults, for callers given NULL. */
const mt_tuning *mt_tuning_default(void);
/* 1 if `name` is in the comma list (or the list is "all"; `all1` also
 * takes "1" for "all"). */
int mt_tuning_list_has(const char *list, const char *name, int all1);
/* Parses "key=value;key=value" ("pdl=1;cuda_no_fuse=mlp,upconv": lists
 * keep their commas; a key alone means "1").  Keys are the field names above
 * (no_fuse, fuse_concat, nn_col_kb, nn_1x1_kb, nn_wino_kb, no_winograd,
 * no_avx512, blas_keep_core, no_int8_handover, no_f16_handover, cuda_no_fuse, cuda_fuse_opt, pdl, attn_cfg,
 * qconv_simple, qconv_fuse, qconv_wgmma, trace_dest, calib_hist_dir).  Starts from the
 * defaults; NULL or "" = the defaults. */
mtmi_status mt_tuning_parse(const char *s, mt_tuning *t);
/* Sets one key from its string value (what the environment mapping and
 * mt_tuning_parse share). */
mtmi_status mt_tuning_set(mt_tuning *t, const char *key, const char *value);

#endif
