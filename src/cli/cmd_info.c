/* mtmi info MODEL: what a model holds and costs. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { O_SHAPE = 1 };
static const cli_opt g_opts[] = {
    {O_SHAPE, "shape", 0, CLI_STR, "1x3xHxW", 0, 0,
     "input shape to report the optimized graph and FLOPs at\n(repeat for several inputs, in input order); default:\nthe shapes the model declares"},
    {0},
};
const cli_command cli_cmd_info = {
    "info", "MODEL", 1, "inputs, outputs, ops, parameters, FLOPs per subgraph",
    "Prints inputs, outputs, the op histogram before and after optimization,\n"
    "parameter count and FLOPs of the shared part and of each head.\n"
    "Missing external weights are filled with random values (they do not\n"
    "change shapes or FLOPs).",
    g_opts, NULL};

int mt_cmd_info(int argc, char **argv) {
    mtmi_tensor shapes[16];
    int nshapes = 0, id;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_info, argc, argv);
    while ((id = cli_next(&p)) > 0) {
        if (id == O_SHAPE) {
            if (nshapes == 16) return cli_usage(&p, "more than 16 --shape");
            if (cli_parse_shape(p.value, &shapes[nshapes])) return cli_usage(&p, "bad --shape '%s' (e.g. 1x3x512x512)", p.value);
            nshapes++;
        }
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (!p.nargs) return cli_usage(&p, "no model given (usage: mtmi info MODEL)");
    const char *path = p.args[0];
    mtmi_model *m;
    if (cli_load_model(path, 1, 0, &m)) return 1;
    if (nshapes) { /* the shapes must fit the model: an error, not a report without the optimized part */
        mt_graph *g = NULL;
        const int nin = mtmi_model_num_inputs(m);
        if (nshapes > nin) {
            mtmi_model_free(m);
            return cli_error("info: %d --shape given, but '%s' has %d input%s", nshapes, path, nin, nin == 1 ? "" : "s");
        }
        if (mt_model_specialize_ex(m, shapes, nshapes, 0, cli_tuning(), &g) != MTMI_OK) {
            cli_lib_error();
            mtmi_model_free(m);
            return 1;
        }
        mt_graph_free(g);
    }
    char *d = mt_model_describe_ex(m, shapes, nshapes, cli_tuning());
    if (d) fputs(d, stdout);
    free(d);
    mtmi_model_free(m);
    return 0;
}
