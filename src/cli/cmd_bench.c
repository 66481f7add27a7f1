/* mtmi bench: the run pipeline on a fixed input, without file I/O, for
 * measurements (SPEC 7).  Prints a table; --compare runs --sync first and
 * shows the pipelining speedup; --json writes the numbers. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "image/image.h"
#include "app/app.h"

enum { O_FRAMES = 1, O_WARMUP, O_COMPARE, O_VS_ENGINE, O_ON_DEVICE, O_RESULTS, O_JSON, O_TRACE };
static const cli_opt g_opts[] = {
    CLI_ROWS_APP_MODEL,
    CLI_ROW_APP_PLACE,
    CLI_ROW_APP_CACHE,
    CLI_ROW_APP_PLAN,
    CLI_ROW_APP_SIZE,
    {O_FRAMES, "frames", 0, CLI_INT, "N", 1, 100000000, "measured frames (default 20)"},
    {O_WARMUP, "warmup", 0, CLI_INT, "N", 0, 1000000, "frames before the measured ones (default 3)"},
    CLI_ROWS_APP_FLIGHT,
    {O_COMPARE, "compare", 0, CLI_FLAG, NULL, 0, 0, "also run --sync (one frame at a time) and print the speedup"},
    CLI_ROW_APP_THREADS,
    {O_RESULTS, "results", 0, CLI_STR, "LIST", 0, 0,
     "what the heads return, made on their devices: classes,\nlogits (int8), logits:fp16, logits:fp32, depth (fp32),\n"
     "depth:fp16; default classes,depth"},
    {O_ON_DEVICE, "on-device", 0, CLI_FLAG, NULL, 0, 0, "leave the results in GPU memory (no copy to the host)"},
    {O_VS_ENGINE, "vs-engine", 0, CLI_FLAG, NULL, 0, 0,
     "also time the whole network as one plan on the encoder's\nGPU (the engine's rate) and print the pipeline's fraction"},
    CLI_ROW_APP_HOST_PRE,
    {O_TRACE, "trace", 0, CLI_STR, "FILE", 0, 0, "Chrome trace-event timeline (open in ui.perfetto.dev)"},
    CLI_ROW_JSON(O_JSON, "the numbers"),
    CLI_ROW_APP_QUIET,
    CLI_ROW_APP_INJECT,
    {0},
};
const cli_command cli_cmd_bench = {
    "bench", "", 0, "the pipeline on a fixed input, timed (pipelined vs one frame at a time)",
    "The `run` pipeline on one fixed synthetic frame, no file I/O: throughput,\n"
    "latency percentiles per stage and end to end, the bytes the results bring\n"
    "to the host and the copy bandwidth, memory.",
    g_opts, NULL};

typedef struct bench_result {
    mt_summary s;
    mt_stats st;
} bench_result;

/* Runs warmup + frames frames through app's pipeline; every slot's input
 * is filled once (the input is fixed). */
static int bench_once(mt_app *app, long warmup, long frames, int quiet, bench_result *r) {
    mt_stats_init(&r->st, app->pipe);
    mt_image src = {0}, fit = {0};
    if (mt_image_synth_street(app->width, app->height, 1, &src) || mt_image_fit(&src, app->width, app->height, &fit)) {
        mt_image_free(&src);
        return cli_lib_error();
    }
    mt_image_free(&src);
    uint8_t filled[64] = {0};
    long total = warmup + frames, sub = 0, done = 0;
    const int inflight = mt_pipeline_inflight(app->pipe);
    int rc = 1;
    while (done < total) {
        mt_frame *f;
        if (sub < total && mt_pipeline_pending(app->pipe) < inflight) {
            if (mt_pipeline_begin(app->pipe, &f)) goto fail;
            if (!filled[f->slot]) {
                mt_app_fill_input(app->pipe, f, &fit);
                filled[f->slot] = 1;
            }
            if (mt_pipeline_submit(app->pipe, f)) goto fail;
            sub++;
            continue;
        }
        if (mt_pipeline_wait(app->pipe, &f)) goto fail;
        mt_stats_add(&r->st, f);
        if (!quiet) {
            char line[256];
            mt_stats_loop_line(&r->st, r->st.n - 1, line, sizeof line);
            printf("%s%s\n", line, done < warmup ? " (warm-up)" : "");
            fflush(stdout);
        }
        mt_pipeline_release(app->pipe, f);
        done++;
    }
    mt_stats_summary(&r->st, warmup, &r->s);
    rc = 0;
    goto out;
fail:
    cli_lib_error();
out:
    mt_image_free(&fit);
    return rc;
}

int mt_cmd_bench(int argc, char **argv) {
    mt_app_opts o = {.inject_stage = -1, .trained_model = cli_trained_model(), .tuning = cli_tuning()};
    const char *json = NULL, *trace = NULL;
    long frames = 20, warmup = 3;
    int compare = 0, vs_engine = 0;
    cli_parser p;
    cli_parser_init(&p, &cli_cmd_bench, argc, argv);
    int id;
    while ((id = cli_next(&p)) > 0) {
        const int took = cli_app_take(&p, id, &o, 64);
        if (took < 0) return CLI_USAGE;
        if (took) continue;
        switch (id) {
        case O_FRAMES: frames = p.num; break;
        case O_WARMUP: warmup = p.num; break;
        case O_COMPARE: compare = 1; break;
        case O_VS_ENGINE: vs_engine = 1; break;
        case O_ON_DEVICE: o.results_on_device = 1; break;
        case O_RESULTS:
            if (mt_app_parse_results(p.value, &o.seg_forms, &o.depth_forms)) return cli_usage(&p, "%s", mtmi_last_error());
            o.forms_set = 1;
            break;
        case O_JSON: json = p.value; break;
        case O_TRACE: trace = p.value; break;
        }
    }
    if (id == CLI_HELP) return 0;
    if (id == CLI_ERROR) return CLI_USAGE;
    if (compare && o.sync) return cli_usage(&p, "--compare already runs --sync; give one of them");
    cli_json_stdout(json);
    int rc = 1;
    mt_app app;
    memset(&app, 0, sizeof app);
    bench_result sync_r, pipe_r;
    memset(&sync_r, 0, sizeof sync_r);
    memset(&pipe_r, 0, sizeof pipe_r);
    if (compare) {
        /* The same placement one frame at a time: the serial baseline. */
        mt_app_opts so = o;
        so.sync = 1;
        if (mt_app_open(&so, &app)) {
            cli_lib_error();
            goto out;
        }
        if (!o.quiet) printf("== sync (1 frame in flight): %s\n", app.placement);
        if (bench_once(&app, warmup, frames, o.quiet, &sync_r)) goto out;
        mt_app_close(&app);
    }
    if (mt_app_open(&o, &app)) {
        cli_lib_error();
        goto out;
    }
    const char *reports[2] = {json, trace};
    if ((json || trace) && cli_check_app_report(&app, &o, "bench", reports, 2)) goto out;
    printf("model: %s, input %dx%dx%dx%d\n", app.model_desc, app.batch, app.channels, app.height, app.width);
    char note[128];
    printf("placement: %s; %d in flight; built in %.0f ms%s\n", app.placement, mt_pipeline_inflight(app.pipe), app.build_ms,
           mt_app_build_note(&app, note, sizeof note));
    if (bench_once(&app, warmup, frames, o.quiet, &pipe_r)) goto out;
    mt_app_print_summary(stdout, &app, &pipe_r.st, &pipe_r.s);
    char extra[1024] = "";
    size_t elen = 0;
    if (vs_engine) {
        double ms = 0;
        if (mt_app_engine_ms(&app, 200, &ms)) {
            cli_lib_error();
            goto out;
        }
        const double rate = ms > 0 ? 1000.0 / ms : 0, frac = rate > 0 ? pipe_r.s.fps / rate : 0;
        printf("engine: whole network as one plan %.3f ms (%.1f frames/s); this pipeline delivers %.2f fps = %.3fx of it\n", ms,
               rate, pipe_r.s.fps, frac);
        elen += (size_t)snprintf(extra + elen, sizeof extra - elen, ",\n  \"engine_ms\": %.4f,\n  \"engine_fraction\": %.4f", ms, frac);
    }
    if (compare) {
        double speedup = sync_r.s.fps > 0 ? pipe_r.s.fps / sync_r.s.fps : 0;
        printf("%-28s %10s %12s %12s\n", "mode", "fps", "frame ms", "latency p50");
        printf("%-28s %10.2f %12.2f %12.2f\n", "sync (1 in flight)", sync_r.s.fps, sync_r.s.period_mean, sync_r.s.e2e_p50);
        char mode[64];
        snprintf(mode, sizeof mode, "pipelined (%d in flight)", mt_pipeline_inflight(app.pipe));
        printf("%-28s %10.2f %12.2f %12.2f\n", mode, pipe_r.s.fps, pipe_r.s.period_mean, pipe_r.s.e2e_p50);
        printf("pipelining speedup: %.2fx\n", speedup);
        snprintf(extra + elen, sizeof extra - elen,
                 ",\n  \"sync\": {\"fps\": %.4f, \"frame_ms\": %.4f, \"latency_p50_ms\": %.4f},\n  \"speedup\": %.4f",
                 sync_r.s.fps, sync_r.s.period_mean, sync_r.s.e2e_p50, speedup);
    }
    if (trace) {
        if (mt_stats_write_trace(&pipe_r.st, trace)) {
            cli_lib_error();
            goto out;
        }
        printf("trace: %s\n", trace);
    }
    if (json && cli_write_app_json(json, "bench", &app, &pipe_r.st, &pipe_r.s, extra)) goto out;
    rc = 0;
out:
    mt_stats_free(&sync_r.st);
    mt_stats_free(&pipe_r.st);
    mt_app_close(&app);
    return rc;
}
