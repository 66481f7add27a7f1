// Kernel launches with programmatic dependent launch (PDL, sm_90+).
//
// In a CUDA graph every kernel waits for the previous one to finish and for
// its own blocks to be scheduled: 1-2 us a boundary, 0.15-0.25 ms over the
// ~130 kernels of the network (docs/PERFORMANCE.md).  A kernel launched with
// mtk_launch carries the programmatic-stream-serialization attribute: the
// GPU may start scheduling its blocks while the previous kernel drains, and
// the kernel's first statement, MTK_PDL_WAIT(), holds every thread until the
// previous grid has completed and its writes are visible.  So every kernel
// launched through mtk_launch must begin with MTK_PDL_WAIT() (before any
// early return): then no block can finish before its predecessor, and the
// ordering stays transitive for the kernels after it.  Library kernels
// (cuBLASLt, cuDNN) are launched without the attribute and keep the full
// serialization.
//
// Measured on an H100 (2026-11-25, whole network as one CUDA graph): no
// gain (1.30 ms with PDL against 1.28-1.29 without; most kernel boundaries
// involve a library kernel), so it is OFF by default: MTMI_PDL=1 in the
// environment turns the attribute on; without it the waits are no-ops.
#ifndef MT_CUDA_LAUNCH_CUH
#define MT_CUDA_LAUNCH_CUH

#include <cuda_runtime.h>
#include <stdlib.h>

#include <utility>

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define MTK_PDL_WAIT() asm volatile("griddepcontrol.wait;" ::: "memory")
#else
#define MTK_PDL_WAIT() ((void)0)
#endif

// Programmatic dependent launch (tuning.pdl, MTMI_PDL=1; off by default):
// a per-thread switch that the plan sets before it launches a step
// (mc_run_step), because every launcher would otherwise need the flag as a
// parameter.  Per thread, so plans on other threads are not affected.
extern thread_local int mtk_pdl_on;
static inline int mtk_pdl_enabled(void) { return mtk_pdl_on; }

// The current device's SM count, for sizing grids: 132 (an H100) when the
// runtime cannot tell, with its error returned and cleared (a failed query
// is not the error of the launch it sizes).
static inline cudaError_t mtk_sm_count(int *sms) {
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(sms, cudaDevAttrMultiProcessorCount, dev);
    if (e != cudaSuccess) {
        *sms = 132;
        (void)cudaGetLastError();
    }
    return e;
}

// The multiprocessors the current plan may use (its green context's for
// `cuda:N.smK`; 0 = the whole GPU), set per thread before each step like
// mtk_pdl_on.  Persistent kernels size their grids by mtk_sm_budget: a grid
// of one block per SM of the whole GPU on a 16-SM partition would run in
// eight rounds, each block reloading what it keeps resident.
extern thread_local int mtk_sm_limit;
static inline int mtk_sm_budget(void) {
    int sms = 132;
    mtk_sm_count(&sms);
    return mtk_sm_limit > 0 && mtk_sm_limit < sms ? mtk_sm_limit : sms;
}

// More than 48 KB of dynamic shared memory for kern: the attribute set
// once per device (done: the caller's bitmask of devices for this kernel;
// a host call, also fine while a graph is captured).
template <typename K> static inline cudaError_t mtk_smem_optin(K kern, int bytes, unsigned long long *done) {
    if (bytes <= 48 * 1024) return cudaSuccess;
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return e;
    if (dev < 64 && ((*done >> dev) & 1ull)) return cudaSuccess;
    e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
    if (e == cudaSuccess && dev < 64) *done |= 1ull << dev;
    return e;
}

template <typename... KArgs, typename... Args>
static inline cudaError_t mtk_launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                                     Args &&...args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = mtk_pdl_enabled() ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

#endif
