/* mtmi split MODEL -o DIR [--cut a,b,...]: encoder.onnx plus one file per
 * head, each a self-contained model ONNX Runtime runs. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cpu/cpu.h"
#include "onnx/onnx.h"

/* Gives the (unsplit, unfolded) graph the types and shapes that inference
 * finds, so the cut tensors are declared with shapes in the head files.  The
 * graph itself is not folded: the parts compute exactly what the model did.
 *
 * Dynamic input dimensions are tried at two sets of sizes (multiples of 32,
 * a different one per dimension); a dimension of a cut tensor that changes
 * between the two stays dynamic, named after the input dimension when it
 * follows that one exactly. */
static const int64_t g_try[2][6] = {{96, 160, 224, 352, 416, 544}, {544, 608, 736, 928, 992, 1184}};

static mt_graph *infer_at(const mtmi_model *m, int set) {
    const mt_graph *g = m->graph;
    mtmi_tensor shapes[16];
    int n = g->ninputs < 16 ? g->ninputs : 16, j = 0;
    for (int i = 0; i < n; i++) {
        const mt_value *v = &g->values[g->inputs[i]];
        memset(&shapes[i], 0, sizeof shapes[i]);
        if (set < 0 || v->rank <= 0) continue;
        shapes[i].rank = v->rank;
        shapes[i].dtype = v->dtype;
        for (int d = 0; d < v->rank; d++) shapes[i].dims[d] = v->dims[d] > 0 ? v->dims[d] : g_try[set][j++ % 6];
    }
    mt_graph *inf = NULL;
    if (mt_model_specialize(m, shapes, n, 0, &inf) != MTMI_OK) return NULL;
    return inf;
}

/* The dim_param of the input dimension whose tried sizes were a and b. */
static const char *dim_name(const mt_graph *g, int64_t a, int64_t b) {
    int j = 0;
    for (int i = 0; i < g->ninputs && i < 16; i++) {
        const mt_value *v = &g->values[g->inputs[i]];
        for (int d = 0; d < v->rank; d++) {
            if (v->dims[d] > 0) continue;
            if (g_try[0][j % 6] == a && g_try[1][j % 6] == b && j < 6) return v->dim_param[d];
            j++;
        }
    }
    return NULL;
}

static void annotate_shapes(const mtmi_model *m, mt_graph *g) {
    int dynamic = 0;
    for (int i = 0; i < g->ninputs; i++)
        if (!mt_value_shape_known(&g->values[g->inputs[i]])) dynamic = 1;
    mt_graph *a = infer_at(m, dynamic ? 0 : -1), *b = dynamic && a ? infer_at(m, 1) : NULL;
    if (!a || (dynamic && !b)) {
        fprintf(stderr, "mtmi: note: shapes not inferred (%s); cut tensors are declared without shapes\n", mtmi_last_error());
        mt_clear_error();
        mt_graph_free(a);
        return;
    }
    for (int v = 0; v < g->nvalues; v++) {
        mt_value *d = &g->values[v];
        if (d->data || d->is_input) continue;
        int k = mt_graph_find_value(a, d->name);
        if (k < 0 || a->values[k].rank < 0) continue;
        const mt_value *x = &a->values[k];
        int kb = b ? mt_graph_find_value(b, d->name) : -1;
        const mt_value *y = kb >= 0 ? &b->values[kb] : NULL;
        if (b && (!y || y->rank != x->rank)) continue;
        d->dtype = x->dtype;
        d->rank = x->rank;
        for (int q = 0; q < x->rank; q++) {
            d->dims[q] = x->dims[q];
            if (!y || y->dims[q] == x->dims[q]) continue;
            d->dims[q] = -1;
            const char *nm = dim_name(g, x->dims[q], y->dims[q]);
            free(d->dim_param[q]);
            d->dim_param[q] = nm ? mt_strdup(nm) : NULL;
        }
    }
    mt_graph_free(a);
    mt_graph_free(b);
}

/* " 12.34 GFLOP" of a part (its shapes inferred on a copy), or "" when
 * inference cannot run. */
static const char *part_gflop(const mt_graph *part, char *buf, size_t cap) {
    buf[0] = 0;
    mt_graph *c = mt_graph_clone(part);
    if (!c) return buf;
    if (mt_graph_infer(c, NULL, 0, mt_cpu_eval, NULL) == MTMI_OK) {
        double f = 0;
        for (int i = 0; i < c->nnodes; i++) f += mt_node_flops(c, &c->nodes[i]);
        snprintf(buf, cap, ", %.2f GFLOP", f / 1e9);
    }
    mt_clear_error();
    mt_graph_free(c);
    return buf;
}

static void file_name(char *buf, size_t cap, const char *dir, const char *name, int k) {
    char nm[512];
    snprintf(nm, sizeof nm, "%s", name && name[0] ? name : "head");
    for (char *p = nm; *p; p++)
        if (*p == '/' || *p == '\\' || *p == ':' || *p == ' ') *p = '_';
    if (!strcmp(nm, "encoder") || nm[0] == '.') snprintf(nm + strlen(nm), sizeof nm - strlen(nm), "_head%d", k);
    snprintf(buf, cap, "%s/%s.onnx", dir, nm);
}

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
    mt_graph *g = NULL;
    mt_split sp = {0};
    char (*written)[4096] = NULL;
    int nwritten = 0, rc = 1;
    if (cli_load_model(path, random, (uint64_t)seed, &m)) goto done;
    g = mt_graph_clone(m->graph);
    if (!g) {
        cli_lib_error();
        goto done;
    }
    annotate_shapes(m, g);
    if (mt_graph_split(g, cuts, ncut, &sp) != MTMI_OK) {
        cli_lib_error();
        goto done;
    }
    if (cli_mkdirs(outdir)) {
        cli_error("split: cannot create output folder '%s'", outdir);
        goto done;
    }
    written = calloc(sp.nheads + 1, sizeof *written);
    if (!written) {
        cli_error("split: out of memory");
        goto done;
    }
    snprintf(written[0], sizeof written[0], "%s/encoder.onnx", outdir);
    if (mt_onnx_save(sp.encoder, written[0], NULL) != MTMI_OK) {
        cli_lib_error();
        goto done;
    }
    nwritten = 1;
    for (int k = 0; k < sp.nheads; k++) {
        mt_graph *h = sp.heads[k];
        file_name(written[k + 1], sizeof written[k + 1], outdir, h->values[h->outputs[0]].name, k);
        for (int j = 0; j < k + 1; j++)
            if (!strcmp(written[j], written[k + 1])) { /* two outputs with one sanitized name */
                size_t len = strlen(written[k + 1]);
                snprintf(written[k + 1] + len - 5, sizeof written[k + 1] - (len - 5), "_%d.onnx", k);
            }
        if (mt_onnx_save(h, written[k + 1], NULL) != MTMI_OK) {
            cli_lib_error();
            goto done;
        }
        nwritten++;
    }
    char sh[128];
    printf("cut (%d shared features):\n", sp.ncut);
    for (int c = 0; c < sp.ncut; c++) {
        const mt_value *v = &g->values[mt_graph_find_value(g, sp.cut_names[c])];
        printf("  %-40s %-7s %s  read by", v->name, mt_dtype_name(v->dtype ? v->dtype : MTMI_FLOAT),
               v->rank >= 0 ? mt_shape_str(v->rank, v->dims, sh, sizeof sh) : "?");
        for (int k = 0; k < sp.nheads; k++)
            if (mt_graph_find_value(sp.heads[k], v->name) >= 0) printf(" %s", g->values[g->outputs[k]].name);
        printf("\n");
    }
    char fl[64];
    printf("wrote %s (%d nodes%s)\n", written[0], sp.encoder->nnodes, part_gflop(sp.encoder, fl, sizeof fl));
    for (int k = 0; k < sp.nheads; k++)
        printf("wrote %s (%d nodes%s)\n", written[k + 1], sp.heads[k]->nnodes, part_gflop(sp.heads[k], fl, sizeof fl));
    rc = 0;
done:
    /* A failed split leaves no part of the set behind. */
    if (rc)
        for (int i = 0; i < nwritten; i++) {
            char data[4200];
            remove(written[i]);
            snprintf(data, sizeof data, "%s.data", written[i]);
            remove(data);
        }
    free(written);
    mt_split_free(&sp);
    mt_graph_free(g);
    mtmi_model_free(m);
    free(cuts);
    free(cutbuf);
    return rc;
}
