/* mtmi make-model -o mtmi.onnx: the reference MTMI network with seeded
 * random weights, written as ONNX (what `mtmi run` uses when given no
 * model). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "graph/mtmi_net.h"
#include "onnx/onnx.h"

int mt_cmd_make_model(int argc, char **argv) {
    const char *out = NULL;
    mt_mtmi_net_opts o = {0};
    long ext = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help")) {
            printf("usage: mtmi make-model -o mtmi.onnx [--seed N] [--size HxW] [--batch N]\n"
                   "       [--external-data BYTES] [--init spread|torch]\n"
                   "Builds the reference MTMI network (MiT-B0 encoder, SegFormer seg head, DEST\n"
                   "depth head; BatchNorm folded into the convolutions) with seeded random\n"
                   "weights and writes it as ONNX (opset 17).  Size defaults to 1024x1024.\n"
                   "--init spread (default): weights drawn by role so that the class map holds\n"
                   "many classes and depth spans a wide range; torch: the distributions of\n"
                   "mtmi_torch.randomize (nearly constant outputs).\n");
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(a, "--seed") && i + 1 < argc) {
            long v = cli_parse_long(a, argv[++i], 0, 1L << 30);
            if (v < 0) return 1;
            o.seed = (uint64_t)v;
        } else if (!strcmp(a, "--batch") && i + 1 < argc) {
            if ((o.batch = (int)cli_parse_long(a, argv[++i], 1, 1024)) < 0) return 1;
        } else if (!strcmp(a, "--size") && i + 1 < argc) {
            mtmi_tensor t;
            if (cli_parse_shape(argv[++i], &t) || t.rank != 2 || t.dims[0] > 16384 || t.dims[1] > 16384)
                return cli_error("make-model: bad --size '%s' (expected HxW, e.g. 512x1024)", argv[i]);
            o.height = (int)t.dims[0];
            o.width = (int)t.dims[1];
        } else if (!strcmp(a, "--init") && i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(v, "spread")) o.init = MT_MTMI_INIT_SPREAD;
            else if (!strcmp(v, "torch")) o.init = MT_MTMI_INIT_TORCH;
            else return cli_error("make-model: bad --init '%s' (spread or torch)", v);
        } else if (!strcmp(a, "--external-data") && i + 1 < argc) {
            if ((ext = cli_parse_long(a, argv[++i], 0, 1L << 40)) < 0) return 1;
        } else return cli_error("make-model: unknown or incomplete option '%s'", a);
    }
    if (!out) return cli_error("make-model: no output file given (-o mtmi.onnx)");
    mt_graph *g = NULL;
    mt_mtmi_net_info info;
    if (mt_make_mtmi_net(&o, &g, &info) != MTMI_OK) return cli_lib_error();
    mt_onnx_save_opts so = {.external_threshold = (size_t)ext};
    mtmi_status s = mt_onnx_save(g, out, &so);
    int nodes = g->nnodes;
    mt_graph_free(g);
    if (s) return cli_lib_error();
    printf("MTMI network %dx%d batch %d, seed %llu, %s weights: %d nodes\n", o.height ? o.height : 1024,
           o.width ? o.width : 1024, o.batch ? o.batch : 1, (unsigned long long)o.seed,
           o.init == MT_MTMI_INIT_TORCH ? "torch" : "spread", nodes);
    printf("parameters: %lld (BatchNorm folded; the PyTorch module counts %lld)\n", (long long)info.params,
           (long long)info.torch_params);
    printf("GFLOP: encoder %.2f, seg %.2f, depth %.2f, total %.2f\n", info.gflop_encoder, info.gflop_seg,
           info.gflop_depth, info.gflop_encoder + info.gflop_seg + info.gflop_depth);
    printf("wrote %s\n", out);
    return 0;
}
