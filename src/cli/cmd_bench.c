/* mtmi bench: the run pipeline on a fixed input, without file I/O, for
 * measurements (SPEC 7).  Prints a table; --compare runs --sync first and
 * shows the pipelining speedup; --json writes the numbers. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "image/image.h"
#include "app/app.h"

static void usage(void) {
    printf("usage: mtmi bench [--model M.onnx [--random-weights SEED]] [--place P] [--cache F] [--size HxW]\n"
           "                  [--frames N] [--warmup N] [--inflight N | --sync] [--compare]\n"
           "                  [--threads N] [--results LIST] [--on-device] [--vs-engine] [--json F]\n"
           "                  [--trace F] [--quiet]\n"
           "The `run` pipeline on one fixed synthetic frame, no file I/O: throughput,\n"
           "latency percentiles per stage and end to end, the bytes the results bring\n"
           "to the host and the copy bandwidth, memory.\n"
           "  --frames N    measured frames (default 20), after --warmup N (default 3)\n"
           "  --compare     also run --sync (one frame at a time) and print the speedup\n"
           "  --results L   what the heads return, made on their devices: classes,\n"
           "                logits (int8), logits:fp16, logits:fp32, depth (fp32),\n"
           "                depth:fp16; default classes,depth\n"
           "  --on-device   leave the results in GPU memory (no copy to the host)\n"
           "  --vs-engine   also time the whole network as one plan on the encoder's GPU\n"
           "                (the engine's rate) and print the pipeline's fraction of it\n"
           "  other options as in `mtmi run`\n");
}

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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        int took = cli_app_option("bench", argc, argv, &i, &o, 64);
        if (took < 0) return 1;
        if (took) continue;
        if (!strcmp(a, "--frames") && more) {
            if ((frames = cli_parse_long(a, argv[++i], 1, 100000000)) < 0) return 1;
        } else if (!strcmp(a, "--warmup") && more) {
            if ((warmup = cli_parse_long(a, argv[++i], 0, 1000000)) < 0) return 1;
        } else if (!strcmp(a, "--compare")) compare = 1;
        else if (!strcmp(a, "--vs-engine")) vs_engine = 1;
        else if (!strcmp(a, "--on-device")) o.results_on_device = 1;
        else if (!strcmp(a, "--results") && more) {
            if (mt_app_parse_results(argv[++i], &o.seg_forms, &o.depth_forms)) return cli_error("bench: %s", mtmi_last_error());
            o.forms_set = 1;
        }
        else if (!strcmp(a, "--json") && more) json = argv[++i];
        else if (!strcmp(a, "--trace") && more) trace = argv[++i];
        else return cli_error("bench: unknown or incomplete option '%s' (try mtmi bench --help)", a);
    }
    if (compare && o.sync) return cli_error("bench: --compare already runs --sync; give one of them");
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
    printf("model: %s, input %dx%dx%dx%d\n", app.model_desc, app.batch, app.channels, app.height, app.width);
    printf("placement: %s; %d in flight; built in %.0f ms\n", app.placement, mt_pipeline_inflight(app.pipe), app.build_ms);
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
    if (json && mt_app_write_json(json, "bench", &app, &pipe_r.st, &pipe_r.s, extra)) {
        cli_lib_error();
        goto out;
    }
    rc = 0;
out:
    mt_stats_free(&sync_r.st);
    mt_stats_free(&pipe_r.st);
    mt_app_close(&app);
    return rc;
}
