/* mtmi: the command-line app.  `mtmi <command> [options]`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} command;

static const command g_commands[] = {
    {"info", mt_cmd_info, "MODEL [--shape 1x3xHxW]: inputs, outputs, ops, parameters, FLOPs per subgraph"},
    {"ops", mt_cmd_ops, ": list the operators this build runs (domain op, one per line)"},
    {"infer", mt_cmd_infer, "MODEL --input x.npy [--input ...] -o DIR: run a model on .npy inputs (CPU FP32)"},
    {"calibrate", mt_cmd_calibrate, "MODEL --images DIR -o CACHE [--subgraph seg|depth|heads|encoder|all] [--method entropy|minmax|percentile]: INT8 calibration cache (TensorRT format)"},
    {"accuracy", mt_cmd_accuracy, "MODEL --cache CACHE --images DIR [--json]: INT8 heads vs FP32 (seg agreement, IoU, depth error)"},
    {"simplify", mt_cmd_simplify, "IN OUT [--shape 1x3xHxW] [--keep-fused]: fold, fuse and write standard ONNX"},
    {"split", mt_cmd_split, "MODEL -o DIR [--cut a,b,..]: encoder.onnx and one ONNX file per head"},
    {"make-model", mt_cmd_make_model, "-o mtmi.onnx [--seed N] [--size HxW] [--batch N]: the reference MTMI network"},
    {"run", mt_cmd_run, "[--model M] [--images DIR] [--place P] [--frames N] [--sync] [-o DIR] [--trace F] [--json F]: the multi-task app, pipelined"},
    {"synth", mt_cmd_synth, "-o DIR --count N [--size HxW] [--seed S]: street scenes with exact labels and depth (Cityscapes-style folder)"},
    {"eval", mt_cmd_eval, "[--model M] --data DIR [--place P] [--cache C] [--json F]: mIoU, per-class IoU and depth errors against ground truth"},
    {"bench", mt_cmd_bench, "[--model M] [--place P] [--size HxW] [--frames N] [--compare] [--json F]: the pipeline on a fixed input, timed"},
    {"triton-repo", mt_cmd_triton_repo, "[--model M] -o REPO [--place P] [--cache C]: a Triton Inference Server model repository (mtmi backend)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: mtmi <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < MT_ARRAY_LEN(g_commands); i++) fprintf(f, "  %-12s %s\n", g_commands[i].name, g_commands[i].help);
    fprintf(f, "\n`mtmi <command> --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("mtmi %s\n", MTMI_VERSION);
        return 0;
    }
    /* SIGINT / SIGTERM remove the temporary files of writes in progress and
     * exit with 130 / 143: an interrupted command leaves only complete
     * files.  A command that finishes its unit of work first switches to
     * graceful mode (mt_signals_set_graceful) and polls mt_stop_requested. */
    mt_signals_install(0);
    for (size_t i = 0; i < MT_ARRAY_LEN(g_commands); i++)
        if (!strcmp(argv[1], g_commands[i].name)) {
            int rc = g_commands[i].fn(argc - 1, argv + 1);
            int sig = mt_stop_requested();
            if (sig) mt_temp_cleanup();
            return sig ? 128 + sig : rc;
        }
    return cli_error("unknown command '%s' (try mtmi --help)", argv[1]);
}
