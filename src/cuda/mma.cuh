// Tensor-core and asynchronous-copy building blocks shared by the FP16
// kernels (attention, fused MLP, upsample-conv, stem, GEMM chain): mma.sync
// m16n8k16 with FP32 accumulation, ldmatrix fragment loads from padded
// shared-memory tiles, and cp.async global -> shared copies.
#ifndef MT_CUDA_MMA_CUH
#define MT_CUDA_MMA_CUH

#include <cuda_fp16.h>
#include <stdint.h>

static __device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

// c (m16n8, FP32) += a (m16k16, FP16, row) * b (k16n8, FP16, col)
static __device__ __forceinline__ void mma16816(float *c, const uint32_t *a, const uint32_t *b) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// A fragment (m16 x k16) of a row-major tile at p (row stride ld halves).
static __device__ __forceinline__ void ldsm_a(uint32_t *a, const __half *p, int ld, int lane) {
    const __half *q = p + (lane & 15) * ld + (lane >> 4) * 8;
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
                 : "r"(smem_u32(q)));
}

// B fragments (k16 x n8) of two adjacent n-tiles from a row-major [k][n]
// tile at p: b[0..1] for columns n0..n0+7, b[2..3] for n0+8..n0+15.
static __device__ __forceinline__ void ldsm_b2(uint32_t *b, const __half *p, int ld, int lane) {
    const __half *q = p + (lane & 15) * ld + (lane >> 4) * 8;
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                 : "r"(smem_u32(q)));
}

// The same from an [n][k] tile (k contiguous, row stride ld halves):
// non-transposed ldmatrix, for weights stored n-major.
static __device__ __forceinline__ void ldsm_bn2(uint32_t *b, const __half *p, int ld, int lane) {
    const __half *q = p + ((lane & 7) + ((lane >> 4) << 3)) * ld + ((lane >> 3) & 1) * 8;
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                 : "r"(smem_u32(q)));
}

// B fragment (k16 x n8) of a row-major [k][n] tile: rows k0..k0+15 at
// column n0, transposed by ldmatrix (lanes 0-15 give the row addresses).
static __device__ __forceinline__ void ldsm_x2_trans(uint32_t &r0, uint32_t &r1, const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(smem_u32(p)));
}

// 16 bytes global -> shared, asynchronously; zero-filled when !pred (the
// source is then not read).
static __device__ __forceinline__ void cp_async16(void *dst, const void *src, bool pred = true) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(pred ? 16 : 0));
}
static __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// wait until at most N of this thread's committed groups are in flight
template <int N>
static __device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }
static __device__ __forceinline__ void cp_async_wait_all() { cp_async_wait<0>(); }

#endif
