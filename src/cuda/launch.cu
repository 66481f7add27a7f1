// Launch-level utilities: the per-thread launch switch of launch.cuh
// (programmatic dependent launch, tuning.pdl), defined once here and set by
// the plan before a step; and the SM probe the partition tests use.
#include <cuda_runtime.h>

#include "kernels.h"
#include "launch.cuh"

thread_local int mtk_pdl_on = 0;

extern "C" void mtk_set_pdl(int on) { mtk_pdl_on = on != 0; }

thread_local int mtk_sm_limit = 0;

extern "C" void mtk_set_sm_limit(int sms) { mtk_sm_limit = sms > 0 ? sms : 0; }

/* Test probe: block b writes the multiprocessor it ran on; each block stays
 * a few microseconds so that a grid larger than the GPU spreads over every
 * SM it is allowed to use (green-context partition checks). */
__global__ void k_smid_probe(int *out) {
    MTK_PDL_WAIT();
    if (threadIdx.x == 0) {
        unsigned id;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
        out[blockIdx.x] = (int)id;
        long long t0 = clock64();
        while (clock64() - t0 < 20000) {
        }
    }
}

extern "C" cudaError_t mtk_smid_probe(cudaStream_t s, int *out, int nblocks) {
    mtk_launch(k_smid_probe, nblocks, 32, 0, s, out);
    return cudaGetLastError();
}
