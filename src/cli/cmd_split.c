/* mtmi split MODEL -o DIR [--cut a,b,...]: encoder.onnx plus one file per
 * head, each a self-contained model ONNX Runtime runs. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"

int mt_cmd_split(int argc, char **argv) {
    const char *path = NULL, *outdir = NULL, *cutarg = NULL;
    int random = 0;
    long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: mtmi split MODEL -o DIR [--cut NAME,NAME,...] [--random-weights SEED]\n"
                   "Cuts MODEL into DIR/encoder.onnx (model inputs -> shared features) and one\n"
                   "DIR/<output>.onnx per head (shared features -> that output).  Without --cut\n"
                   "the shared features are found automatically: the tensors computed by the\n"
                   "part common to several outputs and read by a head.\n");
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output-dir")) && i + 1 < argc) outdir = argv[++i];
        else if (!strcmp(a, "--cut") && i + 1 < argc) cutarg = argv[++i];
        else if (!strcmp(a, "--random-weights") && i + 1 < argc) {
            random = 1;
            if ((seed = cli_parse_long(a, argv[++i], 0, 1L << 30)) < 0) return 1;
        } else if (a[0] == '-') return cli_error("split: unknown or incomplete option '%s'", a);
        else if (!path) path = a;
        else return cli_error("split: more than one model given");
    }
    if (!path) return cli_error("split: no model given (usage: mtmi split MODEL -o DIR)");
    if (!outdir) return cli_error("split: no output folder given (-o DIR)");

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
        for (char *p = cutbuf;;) {
            char *c = strchr(p, ',');
            if (c) *c = 0;
            if (!*p) {
                free(cutbuf);
                free(cuts);
                return cli_error("split: empty name in --cut '%s'", cutarg);
            }
            cuts[ncut++] = p;
            if (!c) break;
            p = c + 1;
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
