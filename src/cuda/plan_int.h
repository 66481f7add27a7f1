/* plan_int.h: the CUDA planner's internals (as SQLite's btreeInt.h is to
 * btree.h): what plan.c and the per-operator planners (plan_<family>.c)
 * share.  A planner turns one graph node (plus what it absorbs) into
 * tensor views and steps (mc_step, cuda_internal.h); plan.c then fuses
 * the steps (fuse*.c), plans memory and captures the CUDA graph. */
#ifndef MT_CUDA_PLAN_INT_H
#define MT_CUDA_PLAN_INT_H

#include "cuda/cuda_internal.h"
#include "graph/ops.h"

/* Returns the status of x from the calling function when it fails. */
#define TRY(x)                    \
    do {                          \
        mtmi_status s_ = (x);     \
        if (s_) return s_;        \
    } while (0)
#define NOMEM() mt_fail(MTMI_ERR_NOMEM, "out of memory")

/* ---- helpers (plan_util.c) */
int mc_is_float(int dt);
int mc_storage_of(const mc_plan *p, int dt);
void mc_packed_like(mc_tref *t, const mc_tref *like);
int64_t mc_nhwc_ok(const mc_tref *t);
void mc_set_nhwc(mc_tref *t);
int mc_new_buf(mc_plan *p, size_t bytes, int kind);
mc_step *mc_new_step(mc_plan *p, int kind, int node);
int mc_new_tensor(mc_plan *p, int st, int rank, const int64_t *dims, mc_tref *t);
mtmi_status mc_const_tref(mc_plan *p, int v, mc_tref *t);
int mc_upload_floats(mc_plan *p, const float *src, int64_t n);
mtmi_status mc_get(mc_plan *p, int v, mc_tref *t);
void mc_set(mc_plan *p, int v, const mc_tref *t);
mtmi_status mc_emit_copy(mc_plan *p, int node, const mc_tref *dst, const mc_tref *src);
mtmi_status mc_make_contig(mc_plan *p, int node, mc_tref *t);
mtmi_status mc_make_nhwc(mc_plan *p, int node, mc_tref *t);
int mc_reshape_view(const mc_tref *in, int rank, const int64_t *dims, mc_tref *out);
void mc_broadcast_to(const mc_tref *t, int rank, const int64_t *dims, mc_tref *o);
int mc_sole_consumer(mc_plan *p, int v);
const mt_node *mc_node(mc_plan *p, int i);
int mc_op_is(const mt_node *n, const char *op);
int mc_mtmi_op_is(const mt_node *n, const char *op);
int mc_scalar_const(mc_plan *p, int v, float *f);
int mc_act_code(const char *s);
int mc_absorb_act(mc_plan *p, int v, int *act);
mtmi_status mc_unsupported(mc_plan *p, int i, const char *why);
const mt_value *mc_val(mc_plan *p, int v);
int mc_identity_resize(mc_plan *p, int c);
mtmi_status mc_dest_for(mc_plan *p, int v, const mc_tref *like, mc_tref *t);
/* The index of the graph output whose staging buffer value v may be
 * written into directly (v is that output, the staging exists), or -1. */
int mc_output_of(const mc_plan *p, int v);
int mc_same_dims(const mt_value *a, const mt_value *b);
int mc_available(mc_plan *p, int v);

/* ---- elementwise (plan_ew.c) */
int mc_ew_supported(const mt_graph *g, const mt_node *n);
mtmi_status mc_plan_ew(mc_plan *p, int i);

/* ---- layout (plan_layout.c) */
mtmi_status mc_plan_reshape(mc_plan *p, int i);
mtmi_status mc_plan_transpose(mc_plan *p, int i);
mtmi_status mc_plan_expand(mc_plan *p, int i);
mtmi_status mc_plan_cast(mc_plan *p, int i);
mtmi_status mc_plan_slice(mc_plan *p, int i);
mtmi_status mc_plan_split(mc_plan *p, int i);
mtmi_status mc_plan_gather(mc_plan *p, int i);
mtmi_status mc_plan_concat(mc_plan *p, int i);

/* ---- GEMM and attention (plan_gemm.c) */
mtmi_status mc_emit_gemm2(mc_plan *p, int node, mc_tref A, mc_tref B, const mc_tref *bias, int act, float alpha,
                              const mc_tref *C);
mtmi_status mc_bias_tref(mc_plan *p, int v, mc_tref *t);
mtmi_status mc_plan_matmul(mc_plan *p, int i);
mtmi_status mc_plan_linear(mc_plan *p, int i);
mtmi_status mc_plan_gemm(mc_plan *p, int i);
mtmi_status mc_plan_mtmi_attention(mc_plan *p, int i);

/* ---- normalization (plan_norm.c) */
mtmi_status mc_plan_layernorm(mc_plan *p, int i);
mtmi_status mc_plan_softmax(mc_plan *p, int i);

/* ---- resize (plan_resize.c) */
mtmi_status mc_plan_resize(mc_plan *p, int i);

/* ---- convolutions (plan_conv.c) */
mtmi_status mc_plan_conv(mc_plan *p, int i);
mtmi_status mc_plan_qconv(mc_plan *p, int i);
mtmi_status mc_plan_qupsample_sum(mc_plan *p, int i);

/* ---- result forms (plan_forms.c) */
mtmi_status mc_plan_preprocess(mc_plan *p, int i);
int mc_feeds_only_class_forms(mc_plan *p, int v);
mtmi_status mc_plan_classmap(mc_plan *p, int i);
mtmi_status mc_plan_symquant(mc_plan *p, int i);
mtmi_status mc_plan_quantize_nhwc(mc_plan *p, int i); /* mtmi.QuantizeNHWC: int8 features for INT8 heads */
mtmi_status mc_plan_half_nhwc(mc_plan *p, int i);      /* mtmi.HalfNHWC: FP16 NHWC features for FP16 heads */
mtmi_status mc_plan_from_half_nhwc(mc_plan *p, int i); /* mtmi.FromHalfNHWC: their view on the heads' side */

/* ---- dispatch (plan_ops.c) */
mtmi_status mc_plan_node(mc_plan *p, int i);

#endif
