/* OpenBLAS core selection.
 *
 * A DYNAMIC_ARCH OpenBLAS picks its kernels from the CPU model it knows.
 * Releases older than the CPU fall back to older kernels: 0.3.21 runs
 * Haswell (AVX2) kernels on AMD Zen 5 and even Prescott (SSE3) kernels on
 * an Emerald Rapids KVM guest, at a half and a fifth of the AVX-512
 * throughput, and the convolutions and linears of the network are almost
 * all sgemm.  ONNX Runtime's MLAS picks AVX-512 by CPU features,
 * so without this we could not match it.  When the library chose a core
 * below what the CPU's features allow (AVX-512 F/BW/DQ/VL: SkylakeX; AVX2
 * and FMA: Haswell), we re-run OpenBLAS's own core selection with
 * OPENBLAS_CORETYPE set (it checks the CPU again itself).  A user's OPENBLAS_CORETYPE is respected,
 * and MTMI_BLAS_KEEP_CORE=1 turns this off.
 *
 * OpenBLAS's internals are looked up with dlsym so that a non-DYNAMIC_ARCH
 * OpenBLAS (without them) still links and simply keeps its kernels. */
#include <cblas.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/kernels_nn.h"

extern char *openblas_get_corename(void);

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static volatile int g_keep; /* read once, inside the pthread_once */

static int is_one_of(const char *core, const char *const *names) {
    for (; *names; names++)
        if (!strcmp(core, *names)) return 1;
    return 0;
}

static void select_core(void) {
    void **gotoblas = (void **)dlsym(RTLD_DEFAULT, "gotoblas");
    void (*dynamic_init)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "gotoblas_dynamic_init");
    if (!gotoblas || !dynamic_init) return;
    /* tuning.blas_keep_core: the command line sets it for MTMI_BLAS_KEEP_CORE
     * and when the user chose OPENBLAS_CORETYPE; the library reads no
     * environment. */
    if (g_keep) return;
    const char *core = openblas_get_corename();
    if (!core) return;
#if defined(__x86_64__) || defined(__i386__)
    static const char *const avx512_cores[] = {"SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    static const char *const avx2_cores[] = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", NULL};
    __builtin_cpu_init();
    const char *want = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl")) {
        if (!is_one_of(core, avx512_cores)) want = "SkylakeX";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        /* A CPU model newer than the library can even land on Prescott
         * (SSE3) kernels: seen on a KVM guest of an Emerald Rapids host. */
        if (!is_one_of(core, avx2_cores)) want = "Haswell";
    }
    if (!want) return;
    /* Before any GEMM of ours runs (plan creation); OpenBLAS's worker
     * threads read the kernel table only inside a call. */
    setenv("OPENBLAS_CORETYPE", want, 1);
    *gotoblas = NULL;
    dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
#endif
}

/* Process-wide, as OpenBLAS's kernel table is: the first plan's switch
 * decides. */
void mt_nn_blas_init(const mt_tuning *t) {
    if (t && t->blas_keep_core) g_keep = 1;
    pthread_once(&g_once, select_core);
}
