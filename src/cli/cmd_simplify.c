/* mtmi simplify IN OUT: shape inference, constant folding, dead-node removal
 * and fusion, written back as a standard ONNX model (onnxsim's job, in C). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "cli/cli.h"
#include "graph/reshape_pass.h"
#include "onnx/onnx.h"

typedef struct op_count {
    const char *op;
    int before, after;
} op_count;

static op_count *count_slot(op_count *h, int *nh, int cap, const char *op) {
    for (int i = 0; i < *nh; i++)
        if (!strcmp(h[i].op, op)) return &h[i];
    if (*nh == cap) return NULL;
    h[*nh] = (op_count){op, 0, 0};
    return &h[(*nh)++];
}

/* Bytes of a model file and its "<file>.data" (the weights it names). */
static double model_mib(const char *path) {
    struct stat st;
    double n = 0;
    char data[4200];
    if (stat(path, &st) == 0) n += (double)st.st_size;
    snprintf(data, sizeof data, "%s.data", path);
    if (stat(data, &st) == 0) n += (double)st.st_size;
    return n / (1024.0 * 1024.0);
}

static int cmp_count(const void *a, const void *b) {
    const op_count *x = a, *y = b;
    int nx = MT_MAX(x->before, x->after), ny = MT_MAX(y->before, y->after);
    if (nx != ny) return ny - nx;
    return strcmp(x->op, y->op);
}

enum { O_OUTPUT = 1, O_SHAPE, O_KEEP_FUSED, O_NO_FUSE, O_NO_OPT, O_EXT, O_RANDOM };
static const cli_opt g_opts[] = {
    {O_OUTPUT, "output", 'o', CLI_STR, "OUT", 0, 0, "the simplified model (ONNX file); or give OUT as the\nsecond argument"},
    {O_SHAPE, "shape", 0, CLI_STR, "1x3xHxW", 0, 0, "input shape (repeat for several inputs, in input order);\nneeded for dynamic inputs"},
    {O_KEEP_FUSED, "keep-fused", 0, CLI_FLAG, NULL, 0, 0, "keep fused ops in the \"mtmi\" domain (only mtmi runs them)"},
    {O_NO_FUSE, "no-fuse", 0, CLI_FLAG, NULL, 0, 0, "fold and infer shapes, but fuse nothing"},
    {O_NO_OPT, "no-optimize", 0, CLI_FLAG, NULL, 0, 0, "write the graph as loaded (a plain re-save)"},
    {O_EXT, "external-data", 0, CLI_INT, "BYTES", 0, 1099511627776.0, "weights over BYTES go to OUT.data (default: all inline)"},
    CLI_ROW_RANDOM_WEIGHTS(O_RANDOM),
    {0},
};
const cli_command cli_cmd_simplify = {
    "simplify", "IN [OUT]", 2, "fold, fuse and write back standard ONNX (node counts before/after)",
    "Infers shapes (for the given input shapes), folds constants, removes dead\n"
    "nodes and fuses patterns, then writes OUT (the second argument or -o OUT) as\n"
    "standard ONNX: fused ops are written back as ONNX ops.",
    g_opts, NULL};

int mt_cmd_simplify(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    mtmi_tensor shapes[16];
    int nshapes = 0, keep_fused = 0, no_fuse = 0, no_opt = 0, random = 0, id;
    long seed = 0, ext = 0;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_simplify, argc, argv);
    while ((id = cli_next(&p)) > 0) {
        switch (id) {
        case O_OUTPUT: out = p.value; break;
        case O_SHAPE:
            if (nshapes == 16) return cli_usage(&p, "more than 16 --shape");
            if (cli_parse_shape(p.value, &shapes[nshapes])) return cli_usage(&p, "bad shape '%s' (expected e.g. 1x3x512x512)", p.value);
            nshapes++;
            break;
        case O_KEEP_FUSED: keep_fused = 1; break;
        case O_NO_FUSE: no_fuse = 1; break;
        case O_NO_OPT: no_opt = 1; break;
        case O_EXT: ext = p.num; break;
        case O_RANDOM:
            random = 1;
            seed = p.num;
            break;
        }
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (p.nargs) in = p.args[0];
    if (p.nargs > 1) {
        if (out) return cli_usage(&p, "OUT given twice ('%s' and -o '%s'): give one", p.args[1], out);
        out = p.args[1];
    }
    if (!in) return cli_usage(&p, "no model given (usage: mtmi simplify IN OUT, or IN -o OUT)");
    if (!out) return cli_usage(&p, "no output file given (usage: mtmi simplify IN OUT, or IN -o OUT)");

    mtmi_model *m = NULL;
    mt_graph *g = NULL, *back = NULL;
    int rc = 1;
    if (cli_load_model(in, random, (uint64_t)seed, &m)) return 1;
    double t0 = mt_now_ms(), in_mib = model_mib(in);
    if (no_opt) {
        if (!(g = mt_graph_clone(m->graph))) {
            cli_lib_error();
            goto done;
        }
    } else if (mt_model_specialize_ex(m, shapes, nshapes, !no_fuse, cli_tuning(), &g) != MTMI_OK) {
        /* Dynamic inputs are the usual cause: say how to fix it. */
        if (nshapes == 0 && strstr(mtmi_last_error(), "dynamic shape"))
            cli_error("%s (simplify: pass --shape for each input)", mtmi_last_error());
        else cli_lib_error();
        goto done;
    }
    if (!no_opt && mt_pass_reshape_chains(g, NULL) != MTMI_OK) {
        cli_lib_error();
        goto done;
    }
    mt_onnx_save_opts so = {.external_threshold = (size_t)ext, .keep_fused = keep_fused};
    if (mt_onnx_save(g, out, &so) != MTMI_OK) {
        cli_lib_error();
        goto done;
    }
    double t1 = mt_now_ms();
    /* Count what was written (fused ops come back as several ONNX nodes). */
    if (mt_onnx_load(out, NULL, &back) != MTMI_OK) {
        cli_error("simplify: the written model does not load back: %s", mtmi_last_error());
        remove(out);
        goto done;
    }
    op_count h[256];
    int nh = 0, before = 0, after = 0, cbefore = 0;
    const mt_graph *src = m->graph;
    /* The loader turns Constant nodes into values; count them as nodes. */
    for (int v = 0; v < src->nvalues; v++)
        if (src->values[v].data && !src->values[v].is_weight) cbefore++;
    if (cbefore) {
        op_count *c = count_slot(h, &nh, 256, "Constant");
        if (c) c->before = cbefore;
    }
    before = cbefore + src->nnodes;
    for (int i = 0; i < src->nnodes; i++) {
        op_count *c = count_slot(h, &nh, 256, src->nodes[i].op);
        if (c) c->before++;
    }
    for (int i = 0; i < back->nnodes; i++) {
        op_count *c = count_slot(h, &nh, 256, back->nodes[i].op);
        if (c) c->after++;
    }
    after = back->nnodes;
    qsort(h, nh, sizeof h[0], cmp_count);
    printf("%-24s %10s %10s\n", "op", "original", no_opt ? "written" : "simplified");
    for (int i = 0; i < nh; i++) printf("%-24s %10d %10d\n", h[i].op, h[i].before, h[i].after);
    printf("%-24s %10d %10d\n", "total nodes", before, after);
    printf("%-24s %10.2f %10.2f\n", "model size (MiB)", in_mib, model_mib(out));
    printf("wrote %s (opset %lld, %.0f ms)\n", out, (long long)back->opset, t1 - t0);
    rc = 0;
done:
    mt_graph_free(back);
    mt_graph_free(g);
    mtmi_model_free(m);
    return rc;
}
