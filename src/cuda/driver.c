/* The few CUDA driver-API calls the backend needs (contexts, green
 * contexts), looked up at run time through the runtime's
 * cudaGetDriverEntryPointByVersion instead of linked: libcuda.so.1 comes
 * with the GPU driver, and a build that linked it would not even start on a
 * machine without one (CI compiles and tests the CUDA sources there).  With
 * the lookup, a missing driver or a driver too old for green contexts is a
 * one-line error at the moment a `cuda:N.smK` device is asked for. */
#include <pthread.h>
#include <string.h>

#include "cuda/cuda_internal.h"

static mc_driver_api g_api;
static int g_api_ok;
static char g_api_err[160];
static pthread_once_t g_api_once = PTHREAD_ONCE_INIT;

static int lookup(const char *sym, void **fn, unsigned ver) {
    enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    *fn = NULL;
    cudaError_t e = cudaGetDriverEntryPointByVersion(sym, fn, ver, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !*fn) {
        cudaGetLastError();
        snprintf(g_api_err, sizeof g_api_err, "the CUDA driver has no %s (green contexts need a CUDA 12.5 or newer driver)", sym);
        return -1;
    }
    return 0;
}

static void load_api(void) {
    /* The entry points as of the toolkit we were compiled with: their
     * prototypes are the ones in our cuda.h (cuGreenCtxStreamCreate, for
     * one, only exists from 12.5 on; the driver must be at least as new as
     * the runtime anyway). */
    const unsigned v = CUDART_VERSION;
    if (lookup("cuCtxGetCurrent", (void **)&g_api.ctx_get_current, v) ||
        lookup("cuCtxSetCurrent", (void **)&g_api.ctx_set_current, v) ||
        lookup("cuDeviceGet", (void **)&g_api.device_get, v) ||
        lookup("cuDeviceGetDevResource", (void **)&g_api.device_get_dev_resource, v) ||
        lookup("cuDevSmResourceSplitByCount", (void **)&g_api.dev_sm_resource_split_by_count, v) ||
        lookup("cuDevResourceGenerateDesc", (void **)&g_api.dev_resource_generate_desc, v) ||
        lookup("cuGreenCtxCreate", (void **)&g_api.green_ctx_create, v) ||
        lookup("cuGreenCtxDestroy", (void **)&g_api.green_ctx_destroy, v) ||
        lookup("cuCtxFromGreenCtx", (void **)&g_api.ctx_from_green_ctx, v) ||
        lookup("cuGreenCtxStreamCreate", (void **)&g_api.green_ctx_stream_create, v) ||
        lookup("cuGetErrorString", (void **)&g_api.get_error_string, v))
        return;
    g_api_ok = 1;
}

const mc_driver_api *mc_driver(void) {
    pthread_once(&g_api_once, load_api);
    if (!g_api_ok) {
        mt_fail(MTMI_ERR_DEVICE, "%s", g_api_err[0] ? g_api_err : "the CUDA driver API is not available");
        return NULL;
    }
    return &g_api;
}

const char *mc_driver_error(CUresult r) {
    const char *s = NULL;
    if (g_api_ok && g_api.get_error_string) g_api.get_error_string(r, &s);
    return s ? s : "unknown CUDA driver error";
}
