/* mtmi: the command-line app.  `mtmi <command> [options]`; each command's
 * options are a table (cli.h, options.c) in its cmd_*.c file. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

typedef struct command {
    const cli_command *spec;
    int (*fn)(int argc, char **argv);
} command;

static const command g_commands[] = {
    {&cli_cmd_info, mt_cmd_info},         {&cli_cmd_ops, mt_cmd_ops},           {&cli_cmd_infer, mt_cmd_infer},
    {&cli_cmd_calibrate, mt_cmd_calibrate}, {&cli_cmd_accuracy, mt_cmd_accuracy}, {&cli_cmd_simplify, mt_cmd_simplify},
    {&cli_cmd_split, mt_cmd_split},       {&cli_cmd_make_model, mt_cmd_make_model}, {&cli_cmd_run, mt_cmd_run},
    {&cli_cmd_synth, mt_cmd_synth},       {&cli_cmd_eval, mt_cmd_eval},         {&cli_cmd_bench, mt_cmd_bench},
    {&cli_cmd_triton_repo, mt_cmd_triton_repo}, {&cli_cmd_build, mt_cmd_build},
};

static void usage(FILE *f) {
    fprintf(f, "usage: mtmi <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < MT_ARRAY_LEN(g_commands); i++) {
        const cli_command *c = g_commands[i].spec;
        char syn[128];
        snprintf(syn, sizeof syn, "%s%s%s", c->name, c->args[0] ? " " : "", c->args);
        if (strlen(syn) < 24) fprintf(f, "  %-24s %s\n", syn, c->summary);
        else fprintf(f, "  %s\n  %-24s %s\n", syn, "", c->summary);
    }
    fprintf(f, "\n`mtmi <command> --help` for a command's options; `mtmi --version`.\n"
               "Exit status: 0 done, 1 an error of the input files or the run, 2 a usage error,\n"
               "130 / 143 interrupted (SIGINT / SIGTERM; only complete files are left).\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
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
        if (!strcmp(argv[1], g_commands[i].spec->name)) {
            int rc = g_commands[i].fn(argc - 1, argv + 1);
            int sig = mt_stop_requested();
            if (sig) mt_temp_cleanup();
            fflush(stdout);
            return sig ? 128 + sig : rc;
        }
    cli_error("unknown command '%s' (try mtmi --help)", argv[1]);
    return CLI_USAGE;
}
