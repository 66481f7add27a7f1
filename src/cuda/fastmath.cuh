// Device math shared by the kernels: the plans' activations, and a faster
// GELU for the FP16 kernels, where results are rounded to FP16 (relative
// precision 4.9e-4) right after.
#ifndef MT_CUDA_FASTMATH_CUH
#define MT_CUDA_FASTMATH_CUH

// GELU (the erf form, ONNX Gelu / PyTorch approximate='none') in ~12
// instructions instead of erff's ~32: with q = Phi(-|x|) = erfc(|x|/sqrt 2)/2,
// log2(q) is smooth on [0, 5.5] and a degree-7 polynomial (Chebyshev fit,
// FP32 Horner) gives it to 1.5e-5, so Phi(x) = x >= 0 ? 1 - q : q and
// x Phi(x) come out within 1e-5 relative (5e-7 absolute) of the exact
// function over the whole line: 50x below FP16's rounding.  In the depthwise
// conv + GELU of the encoder MLP, erff was about half of all instructions.
__device__ __forceinline__ float mtk_gelu_fast(float x) {
    const float a = fminf(fabsf(x), 5.5f);
    float p = -1.995814500e-06f;
    p = fmaf(p, a, 6.483236939e-05f);
    p = fmaf(p, a, -9.561768384e-04f);
    p = fmaf(p, a, 8.609761484e-03f);
    p = fmaf(p, a, -5.417171493e-02f);
    p = fmaf(p, a, -4.582463205e-01f);
    p = fmaf(p, a, -1.151344538e+00f);
    p = fmaf(p, a, -9.999850988e-01f);
    float q;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(q) : "f"(p));
    return x * (x >= 0.f ? 1.f - q : q);
}

// The activations of the plans' fused steps in FP32: 0 none, 1 relu,
// 2 sigmoid, 3 gelu (erf form).
static __device__ __forceinline__ float mtk_act(float x, int act) {
    switch (act) {
    case 1: return x > 0.f ? x : 0.f;
    case 2: return 1.f / (1.f + __expf(-x));
    case 3: return 0.5f * x * (1.f + erff(x * 0.70710678118654752f));
    default: return x;
    }
}

// The same for kernels whose output is FP16: GELU by mtk_gelu_fast.
static __device__ __forceinline__ float mtk_act_h(float x, int act) { return act == 3 ? mtk_gelu_fast(x) : mtk_act(x, act); }

#endif
