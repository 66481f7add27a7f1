/* mtmi ops: the operators this build can run on the CPU, one "domain op" per
 * line, so that tests discover what we claim instead of keeping a list. */
#include <string.h>

#include "cli/cli.h"
#include "cpu/cpu.h"
#include "graph/ops.h"

int mt_cmd_ops(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: mtmi ops\n"
                   "Prints every operator that has both shape inference and a CPU kernel,\n"
                   "one per line as '<domain> <op>' (domain 'ai.onnx' for ONNX's own),\n"
                   "and Constant, which the loader turns into data.\n");
            return 0;
        }
        return cli_error("ops: unknown argument '%s'", argv[i]);
    }
    /* Constant never reaches a backend: the loader turns it into data. */
    printf("ai.onnx Constant\n");
    const mt_op_schema *const tables[] = {mt_schemas_elementwise, mt_schemas_shape, mt_schemas_nn, mt_schemas_fused};
    for (size_t t = 0; t < MT_ARRAY_LEN(tables); t++)
        for (const mt_op_schema *s = tables[t]; s->op; s++) {
            const char *dom = s->domain && s->domain[0] ? s->domain : "ai.onnx";
            /* the first schema of a name wins in mt_op_find: skip shadowed ones */
            if (mt_op_find(s->domain, s->op) != s) continue;
            if (mt_cpu_find_kernel(s->domain, s->op)) printf("%s %s\n", dom, s->op);
        }
    return 0;
}
