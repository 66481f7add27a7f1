/* mtmi split MODEL -o DIR [--cut a,b,...]: encoder.onnx plus one file per
 * head, each a self-contained model ONNX Runtime runs. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"

enum { O_OUTPUT = 1, O_CUT, O_RANDOM };
static const cli_opt g_opts[] = {
    {O_OUTPUT, "output", 'o', CLI_STR, "DIR", 0, 0, "the folder of the parts: DIR/encoder.onnx and\nDIR/<output>.onnx per head (made if missing)"},
    {O_OUTPUT, "output-dir", 0, CLI_STR, "DIR", 0, 0, "the same as --output (its older name)"},
    {O_CUT, "cut", 0, CLI_STR, "NAME,NAME,..", 0, 0, "the shared features to cut at (default: found)"},
    CLI_ROW_RANDOM_WEIGHTS(O_RANDOM),
    {0},
};
const cli_command cli_cmd_split = {
    "split", "MODEL", 1, "encoder.onnx and one ONNX file per head, cut at the shared features",
    "Cuts MODEL into DIR/encoder.onnx (model inputs -> shared features) and one\n"
    "DIR/<output>.onnx per head (shared features -> that output).  Without --cut\n"
    "the shared features are found automatically: the tensors computed by the\n"
    "part common to several outputs and read by a head.",
    g_opts, NULL};

int mt_cmd_split(int argc, char **argv) {
    const char *path = NULL, *outdir = NULL, *cutarg = NULL;
    int random = 0, id;
    long seed = 0;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_split, argc, argv);
    while ((id = cli_next(&p)) > 0) {
        switch (id) {
        case O_OUTPUT: outdir = p.value; break;
        case O_CUT: cutarg = p.value; break;
        case O_RANDOM:
            random = 1;
            seed = p.num;
            break;
        }
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (p.nargs) path = p.args[0];
    if (!path) return cli_usage(&p, "no model given (usage: mtmi split MODEL -o DIR)");
    if (!outdir) return cli_usage(&p, "no output folder given (-o DIR)");

    char *cutbuf = NULL;
    const char **cuts = NULL;
    int ncut = 0;
    if (cutarg) {
        cutbuf = mt_strdup(cutarg);
        cuts = calloc(strlen(cutarg) + 2, sizeof(char *));
        if (!cutbuf || !cuts) {
            free(cutbuf);
            free(cuts);
            return cli_error("split: out of memory");
        }
        for (char *q = cutbuf;;) {
            char *c = strchr(q, ',');
            if (c) *c = 0;
            if (!*q) {
                free(cutbuf);
                free(cuts);
                return cli_usage(&p, "empty name in --cut '%s'", cutarg);
            }
            cuts[ncut++] = q;
            if (!c) break;
            q = c + 1;
        }
    }

    mtmi_model *m = NULL;
    mt_split_files r;
    int rc = 1;
    if (cli_load_model(path, random, (uint64_t)seed, &m)) goto done;
    if (mt_split_write(m, cuts, ncut, outdir, &r) != MTMI_OK) {
        cli_lib_error();
        goto done;
    }
    const mt_graph *g = r.annotated;
    const mt_split *sp = &r.split;
    char sh[128];
    printf("cut (%d shared features):\n", sp->ncut);
    for (int c = 0; c < sp->ncut; c++) {
        const mt_value *v = &g->values[mt_graph_find_value(g, sp->cut_names[c])];
        printf("  %-40s %-7s %s  read by", v->name, mt_dtype_name(v->dtype ? v->dtype : MTMI_FLOAT),
               v->rank >= 0 ? mt_shape_str(v->rank, v->dims, sh, sizeof sh) : "?");
        for (int k = 0; k < sp->nheads; k++)
            if (mt_graph_find_value(sp->heads[k], v->name) >= 0) printf(" %s", g->values[g->outputs[k]].name);
        printf("\n");
    }
    char fl[64];
    printf("wrote %s (%d nodes%s)\n", r.paths[0], sp->encoder->nnodes, mt_split_part_gflop(sp->encoder, fl, sizeof fl));
    for (int k = 0; k < sp->nheads; k++)
        printf("wrote %s (%d nodes%s)\n", r.paths[k + 1], sp->heads[k]->nnodes, mt_split_part_gflop(sp->heads[k], fl, sizeof fl));
    mt_split_files_free(&r);
    rc = 0;
done:
    mtmi_model_free(m);
    free(cuts);
    free(cutbuf);
    return rc;
}
