/* mtmi build [--model M] [--place P] [--cache C] [--size HxW] -o PLAN: a
 * saved plan (pipeline/planfile.h).  Builds the pipeline as `run` and
 * `bench` would, searching every algorithm choice once, and writes the
 * choices with what they were made for (model, cache, input, placement,
 * GPU, driver and library versions), so that `run --plan PLAN` and
 * `bench --plan PLAN` start without searching again. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/app.h"
#include "cli/cli.h"

enum { O_OUTPUT = 1 };
static const cli_opt g_opts[] = {
    CLI_ROWS_APP_MODEL,
    CLI_ROW_APP_PLACE,
    CLI_ROW_APP_CACHE,
    CLI_ROW_APP_SIZE,
    CLI_ROW_APP_THREADS,
    CLI_ROW_APP_HOST_PRE,
    {O_OUTPUT, "output", 'o', CLI_STR, "PLAN", 0, 0, "the saved plan to write (required)"},
    CLI_ROW_APP_QUIET,
    {0},
};
const cli_command cli_cmd_build = {
    "build", "", 0, "a saved plan: algorithm choices searched once, for fast starts",
    "Builds the pipeline for a placement (as run and bench do, `auto` included),\n"
    "searching each algorithm choice of its GPU stages once, and saves the choices\n"
    "with what they were made for: the model, calibration cache, input size,\n"
    "placement, mtmi version, GPU, driver and library versions.  `run`, `bench`\n"
    "and `eval` with --plan PLAN then start without searching; a plan made for\n"
    "another model, size, GPU or version is refused in one line.",
    g_opts, NULL};

int mt_cmd_build(int argc, char **argv) {
    mt_app_opts o = {.inject_stage = -1, .trained_model = cli_trained_model(), .tuning = cli_tuning(), .inflight = 1};
    const char *out = NULL;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_build, argc, argv);
    int id;
    while ((id = cli_next(&p)) > 0) {
        const int took = cli_app_take(&p, id, &o, 1);
        if (took < 0) return CLI_USAGE;
        if (took) continue;
        if (id == O_OUTPUT) out = p.value;
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (!out) return cli_usage(&p, "no plan file given (-o PLAN)");
    struct stat sb;
    if (!stat(out, &sb) && S_ISDIR(sb.st_mode)) return cli_usage(&p, "-o %s is a folder; give a file name", out);
    mt_app app;
    memset(&app, 0, sizeof app);
    if (mt_app_open(&o, &app)) return cli_lib_error();
    const char *outs[1] = {out};
    int rc = 1;
    if (cli_check_app_report(&app, &o, "build", outs, 1)) goto done;
    printf("model: %s, input %dx%dx%dx%d\n", app.model_desc, app.batch, app.channels, app.height, app.width);
    printf("placement: %s; built in %.0f ms, %d algorithm choice%s searched\n", app.placement, app.build_ms,
           app.decisions_measured, app.decisions_measured == 1 ? "" : "s");
    if (mt_app_save_plan(&app, &o, out)) {
        cli_lib_error();
        goto done;
    }
    if (!stat(out, &sb)) printf("saved plan: %s (%lld bytes)\n", out, (long long)sb.st_size);
    rc = 0;
done:
    mt_app_close(&app);
    return rc;
}
