/* mtmi info MODEL: what a model holds and costs. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int mt_cmd_info(int argc, char **argv) {
    const char *path = NULL;
    int random = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help")) {
            printf("usage: mtmi info MODEL\n"
                   "Prints inputs, outputs, the op histogram before and after optimization,\n"
                   "parameter count and FLOPs of the shared part and of each head.\n"
                   "Missing external weights are filled with random values (they do not\n"
                   "change shapes or FLOPs).\n");
            return 0;
        } else if (argv[i][0] == '-') return cli_error("info: unknown option '%s'", argv[i]);
        else if (!path) path = argv[i];
        else return cli_error("info: more than one model given");
    }
    if (!path) return cli_error("info: no model given (usage: mtmi info MODEL)");
    mtmi_model *m;
    if (cli_load_model(path, random, 0, &m)) return 1;
    char *d = mt_model_describe_ex(m, cli_tuning());
    if (d) fputs(d, stdout);
    free(d);
    mtmi_model_free(m);
    return 0;
}
