/* libFuzzer target for the ONNX loader: any byte string must load or fail
 * with an error, never crash, leak or read out of bounds.  Loaded graphs are
 * also run through the Q/DQ import, shape inference and folding, which read
 * attribute and tensor contents the loader accepted. */
#include <stdint.h>
#include <stdlib.h>

#include "cpu/cpu.h"
#include "onnx/onnx.h"
#include "quant/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_graph *g = NULL;
    /* No base dir: external data references fail cleanly instead of
     * touching the file system. */
    if (mt_onnx_load_buffer(data, size, "/nonexistent", "fuzz", NULL, &g) == MTMI_OK) {
        g->max_tensor_bytes = (size_t)64 << 20; /* keep folding small */
        mt_qdq_info *q = NULL; /* as mt_model_load does: Q/DQ nodes imported first */
        if (mt_qdq_import(g, &q) == MTMI_OK) mt_graph_infer(g, NULL, 0, mt_cpu_eval, NULL);
        mt_qdq_free(q);
        mt_graph_free(g);
    }
    return 0;
}
