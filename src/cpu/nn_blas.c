/* OpenBLAS core selection.
 *
 * A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU model it knows.
 * Releases older than the CPU (0.3.21 on AMD Zen 4/5, for instance) fall
 * back to the Haswell (AVX2) kernels although the CPU has AVX-512, which
 * halves sgemm throughput, and the convolutions and linears of the network
 * are almost all sgemm.  ONNX Runtime's MLAS picks AVX-512 by CPU features,
 * so without this we could not match it.  When the library chose an AVX2
 * core and the CPU has AVX-512 F/BW/DQ/VL, we re-run OpenBLAS's own core
 * selection with OPENBLAS_CORETYPE=SkylakeX (which itself checks the CPU
 * and keeps Haswell otherwise).  A user's OPENBLAS_CORETYPE is respected,
 * and MTMI_BLAS_KEEP_CORE=1 turns this off.
 *
 * The symbols are weak so that a non-DYNAMIC_ARCH OpenBLAS still links. */
#include <cblas.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/kernels_nn.h"

extern void *gotoblas __attribute__((weak));
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern char *openblas_get_corename(void);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void select_core(void) {
    if (!&gotoblas || !gotoblas_dynamic_init) return;
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *keep = getenv("MTMI_BLAS_KEEP_CORE");
    if (keep && keep[0] == '1') return;
    const char *core = openblas_get_corename();
    if (!core || (strcmp(core, "Haswell") && strcmp(core, "Zen"))) return;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vl"))
        return;
    /* Before any GEMM of ours runs (plan creation); OpenBLAS's worker
     * threads read the kernel table only inside a call. */
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    gotoblas = NULL;
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
#endif
}

void mt_nn_blas_init(void) { pthread_once(&g_once, select_core); }
