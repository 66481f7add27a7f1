/* mtmi ops: the operators this build can run on the CPU, one "domain op" per
 * line, so that tests discover what we claim instead of keeping a list. */
#include <string.h>

#include "cli/cli.h"
#include "cpu/cpu.h"
#include "graph/ops.h"

static const cli_opt g_opts[] = {{0}};
const cli_command cli_cmd_ops = {
    "ops", "", 0, "list the operators this build runs (domain op, one per line)",
    "Prints every operator that has both shape inference and a CPU kernel,\n"
    "one per line as '<domain> <op>' (domain 'ai.onnx' for ONNX's own),\n"
    "and Constant, which the loader turns into data.",
    g_opts, NULL};

int mt_cmd_ops(int argc, char **argv) {
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_ops, argc, argv);
    int id;
    while ((id = cli_next(&p)) > 0) {}
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
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
