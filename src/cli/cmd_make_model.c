/* mtmi make-model -o mtmi.onnx: the reference MTMI network with seeded
 * random weights, written as ONNX (what `mtmi run` uses when given no
 * model). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "graph/mtmi_net.h"
#include "onnx/onnx.h"

enum { O_OUTPUT = 1, O_SEED, O_SIZE, O_BATCH, O_EXT, O_INIT };
static const cli_opt g_opts[] = {
    {O_OUTPUT, "output", 'o', CLI_STR, "FILE", 0, 0, "the ONNX file to write (required)"},
    {O_SEED, "seed", 0, CLI_INT, "N", 0, 1 << 30, "weight seed (default 0)"},
    {O_SIZE, "size", 0, CLI_STR, "HxW", 0, 0, "input size, multiples of 32 (default 1024x1024)"},
    {O_BATCH, "batch", 0, CLI_INT, "N", 1, 1024, "batch size (default 1)"},
    {O_EXT, "external-data", 0, CLI_INT, "BYTES", 0, 1099511627776.0, "weights over BYTES go to FILE.data (default: all inline)"},
    {O_INIT, "init", 0, CLI_CHOICE, "spread|torch", 0, 0,
     "spread (default): weights drawn by role, so that the class\nmap holds many classes and depth spans a wide range; torch:\n"
     "the distributions of mtmi_torch.randomize (near-constant\noutputs)"},
    {0},
};
const cli_command cli_cmd_make_model = {
    "make-model", "", 0, "the reference MTMI network (seeded random weights) as ONNX",
    "Builds the reference MTMI network (MiT-B0 encoder, SegFormer seg head, DEST\n"
    "depth head; BatchNorm folded into the convolutions) with seeded random\n"
    "weights and writes it as ONNX (opset 17).",
    g_opts, NULL};

int mt_cmd_make_model(int argc, char **argv) {
    const char *out = NULL;
    mt_mtmi_net_opts o = {0};
    long ext = 0;
    int id;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_make_model, argc, argv);
    while ((id = cli_next(&p)) > 0) {
        switch (id) {
        case O_OUTPUT: out = p.value; break;
        case O_SEED: o.seed = (uint64_t)p.num; break;
        case O_BATCH: o.batch = (int)p.num; break;
        case O_SIZE:
            if (cli_hxw(p.value, 16384, &o.height, &o.width)) return cli_usage(&p, "bad --size '%s' (expected HxW, e.g. 512x1024)", p.value);
            break;
        case O_INIT: o.init = !strcmp(p.value, "torch") ? MT_MTMI_INIT_TORCH : MT_MTMI_INIT_SPREAD; break;
        case O_EXT: ext = p.num; break;
        }
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (!out) return cli_usage(&p, "no output file given (-o mtmi.onnx)");
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
