// Elementwise programs (mtk_prog): chains of pointwise ops with
// broadcasting inputs in one kernel, arguments by value or in device memory.
// (C entry points in kernels.h; storage FP16 or FP32, arithmetic FP32.)
#include <cuda_fp16.h>
#include <stdint.h>
#include <string.h>

#include "concat.cuh"
#include "fastmath.cuh"
#include "kernels.h"
#include "kernels_common.cuh"
#include "launch.cuh"

namespace {

// ---------------------------------------------------------- elementwise
struct EwArgs {
    void *out;
    mtk_prog prog;
    int nin;
    const void *in[MTK_MAX_IN];
    IView iv[MTK_MAX_IN];
    int mode[MTK_MAX_IN];  // 0 same layout as out (flat), 1 scalar, 2 strided
    IView ov;
    int out_flat;
};

__device__ __forceinline__ float ew_op(int op, float a, float b, float imm, float imm2) {
    switch (op) {
    case MTK_OP_ADD: return a + b;
    case MTK_OP_SUB: return a - b;
    case MTK_OP_MUL: return a * b;
    case MTK_OP_DIV: return a / b;
    case MTK_OP_POW: return (b == 2.f) ? a * a : powf(a, b);
    case MTK_OP_MAX: return fmaxf(a, b);
    case MTK_OP_MIN: return fminf(a, b);
    case MTK_OP_RELU: return a > 0.f ? a : 0.f;
    case MTK_OP_SIGMOID: return 1.f / (1.f + __expf(-a));
    case MTK_OP_ERF: return erff(a);
    case MTK_OP_TANH: return tanhf(a);
    case MTK_OP_EXP: return __expf(a);
    case MTK_OP_LOG: return __logf(a);
    case MTK_OP_SQRT: return sqrtf(a);
    case MTK_OP_NEG: return -a;
    case MTK_OP_ABS: return fabsf(a);
    case MTK_OP_RECIP: return 1.f / a;
    case MTK_OP_GELU: return 0.5f * a * (1.f + erff(a * 0.70710678118654752f));
    case MTK_OP_CLIP: return fminf(fmaxf(a, imm), imm2);
    case MTK_OP_LEAKY: return a >= 0.f ? a : a * imm;
    case MTK_OP_HSIGMOID: return fmaxf(0.f, fminf(1.f, imm * a + imm2));
    case MTK_OP_FLOOR: return floorf(a);
    case MTK_OP_CEIL: return ceilf(a);
    case MTK_OP_SIN: return sinf(a);
    case MTK_OP_COS: return cosf(a);
    case MTK_OP_COPY: return a;
    default: return a;
    }
}

// Runs the program for element i: loads, immediates and operations into
// registers, then the result into `out` at the output view's offset.
__device__ __forceinline__ void ew_eval(const EwArgs &A, void *out, int i, int f16) {
    float r[MTK_MAX_REG];
    const int ni = A.prog.n;
    for (int k = 0; k < ni; k++) {
        const mtk_instr in = A.prog.ins[k];
        float v;
        if (in.op == MTK_OP_LOAD) {
            int m = A.mode[in.a];
            long long o = m == 0 ? i : m == 1 ? 0 : offset_of(A.iv[in.a], i);
            v = ld(A.in[in.a], o, f16);
        } else if (in.op == MTK_OP_IMM) {
            v = in.imm;
        } else {
            v = ew_op(in.op, r[in.a & (MTK_MAX_REG - 1)], r[in.b & (MTK_MAX_REG - 1)], in.imm, in.imm2);
        }
        r[in.dst & (MTK_MAX_REG - 1)] = v;
    }
    long long oo = A.out_flat ? i : offset_of(A.ov, i);
    st(out, oo, r[A.prog.result & (MTK_MAX_REG - 1)], f16);
}

__global__ void k_elementwise(EwArgs A, void *out, int n, int f16) {
    MTK_PDL_WAIT();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    ew_eval(A, out, i, f16);
}

// The same with the arguments in device memory, staged in shared memory per
// block: the program indexes its inputs at run time, and a run-time index
// into a kernel parameter struct would copy the struct to local memory.
__global__ void k_elementwise_d(const EwArgs *__restrict__ Ag, int n, int f16) {
    MTK_PDL_WAIT();
    __shared__ EwArgs A;
    {
        const int *src = (const int *)Ag;
        int *dst = (int *)&A;
        for (int k = threadIdx.x; k < (int)(sizeof(EwArgs) / sizeof(int)); k += blockDim.x) dst[k] = src[k];
    }
    __syncthreads();
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    ew_eval(A, A.out, i, f16);
}

}  // namespace

extern "C" {

static void ew_build(EwArgs &A, const mtk_prog *prog, void *out, const mtk_view *ov, int nin, const void *const *in,
                     const mtk_view *iv) {
    memset(&A, 0, sizeof A);
    A.out = out;
    A.prog = *prog;
    A.nin = nin;
    A.ov = to_iview(ov);
    int64_t cs[MTK_RANK], acc = 1;
    for (int d = ov->rank - 1; d >= 0; d--) {
        cs[d] = acc;
        acc *= ov->dims[d];
    }
    A.out_flat = 1;
    for (int d = 0; d < ov->rank; d++)
        if (ov->dims[d] > 1 && ov->strides[d] != cs[d]) A.out_flat = 0;
    for (int k = 0; k < nin; k++) {
        A.in[k] = in[k];
        A.iv[k] = to_iview(&iv[k]);
        int same = A.out_flat, scalar = 1;
        for (int d = 0; d < iv[k].rank; d++) {
            if (iv[k].dims[d] > 1 && iv[k].strides[d] != 0) scalar = 0;
            if (iv[k].dims[d] > 1 && iv[k].strides[d] != cs[d]) same = 0;
        }
        A.mode[k] = scalar ? 1 : same ? 0 : 2;
    }
}

cudaError_t mtk_elementwise_prepare(const mtk_prog *prog, void *out, const mtk_view *ov, int nin, const void *const *in,
                                    const mtk_view *iv, void **dev_args) {
    int64_t n = numel(ov);
    *dev_args = NULL;
    if (n >= (1ll << 31) || nin > MTK_MAX_IN) return cudaErrorInvalidValue;
    EwArgs A;
    ew_build(A, prog, out, ov, nin, in, iv);
    cudaError_t e = cudaMalloc(dev_args, sizeof A);
    if (e != cudaSuccess) return e;
    return cudaMemcpy(*dev_args, &A, sizeof A, cudaMemcpyHostToDevice);
}

cudaError_t mtk_elementwise_run(cudaStream_t s, const void *dev_args, int64_t n, int f16) {
    if (n == 0) return cudaSuccess;
    mtk_launch(k_elementwise_d, blocks_for(n, 256), 256, 0, s, (const EwArgs *)dev_args, (int)n, f16);
    return cudaGetLastError();
}

cudaError_t mtk_elementwise(cudaStream_t s, const mtk_prog *prog, void *out, const mtk_view *ov, int nin,
                            const void *const *in, const mtk_view *iv, int f16) {
    int64_t n = numel(ov);
    if (n == 0) return cudaSuccess;
    if (n >= (1ll << 31) || nin > MTK_MAX_IN) return cudaErrorInvalidValue;
    EwArgs A;
    ew_build(A, prog, out, ov, nin, in, iv);
    mtk_launch(k_elementwise, blocks_for(n, 256), 256, 0, s, A, out, (int)n, f16);
    return cudaGetLastError();
}

}  // extern "C"
