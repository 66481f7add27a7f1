// What one node of a CUDA graph costs on this GPU: chains of N dependent
// kernels captured into a graph and replayed, for an empty kernel and for a
// kernel that touches 4 MB (a stage-1 activation), with and without
// programmatic dependent launch.  Used by scripts/gpu_profile.sh to split a
// plan's replay time into kernel time and launch gaps.
#include <cstdio>
#include <cuda_runtime.h>
#include <algorithm>
#include <vector>

__global__ void k_empty(int *p) {
    if (p && threadIdx.x == 1023) p[0] = 1;
}
__global__ void k_touch(const uint4 *a, uint4 *b, int n) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) b[i] = a[i];
}

static float replay(cudaGraphExec_t ex, cudaStream_t s) {
    cudaEvent_t a, b;
    cudaEventCreate(&a); cudaEventCreate(&b);
    std::vector<float> t;
    for (int i = 0; i < 5; i++) cudaGraphLaunch(ex, s);
    for (int i = 0; i < 50; i++) {
        cudaEventRecord(a, s); cudaGraphLaunch(ex, s); cudaEventRecord(b, s); cudaEventSynchronize(b);
        float ms; cudaEventElapsedTime(&ms, a, b); t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

int main() {
    cudaStream_t s; cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    const int n = (4 << 20) / 16;
    uint4 *a, *b; cudaMalloc(&a, n * 16); cudaMalloc(&b, n * 16);
    cudaMemset(a, 0, n * 16);
    for (int kind = 0; kind < 3; kind++) {
        for (int N : {1, 64, 128}) {
            cudaGraph_t g; cudaGraphExec_t ex;
            cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
            for (int i = 0; i < N; i++) {
                if (kind == 0) k_empty<<<132, 128, 0, s>>>(nullptr);
                else {
                    cudaLaunchConfig_t c = {};
                    c.gridDim = dim3((n + 255) / 256); c.blockDim = dim3(256); c.stream = s;
                    cudaLaunchAttribute at[1];
                    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
                    at[0].val.programmaticStreamSerializationAllowed = kind == 2;
                    c.attrs = at; c.numAttrs = 1;
                    cudaLaunchKernelEx(&c, k_touch, (const uint4 *)(i & 1 ? b : a), i & 1 ? a : b, n);
                }
            }
            cudaStreamEndCapture(s, &g);
            if (cudaGraphInstantiate(&ex, g, 0) != cudaSuccess) { printf("instantiate failed\n"); return 1; }
            float ms = replay(ex, s);
            printf("graph of %3d %-22s %8.1f us  (%.2f us a node)\n", N,
                   kind == 0 ? "empty kernels" : kind == 1 ? "4 MB copy kernels" : "4 MB copies, PDL", ms * 1e3, ms * 1e3 / N);
            cudaGraphExecDestroy(ex); cudaGraphDestroy(g);
        }
    }
    return cudaGetLastError() != cudaSuccess;
}
