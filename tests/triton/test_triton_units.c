/* The Triton backend's parts that need no server (src/triton: json.c,
 * config.c, engine.c): the config reader and its messages, the placement of
 * an instance per GPU, and the batch run through the pipelines against the
 * plan API on the same frames (classes and depth equal), with the failure
 * paths: a frame size the network refuses, more sizes in one batch than the
 * cache holds, a failed request's later frames; several instances of one
 * model loading and running at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mtmi.h"
#include "triton/config.h"
#include "triton/engine.h"
#include "triton/json.h"

static const char *CFG_OK =
    "{\"name\":\"m\",\"backend\":\"mtmi\",\"max_batch_size\":8,"
    "\"input\":[{\"name\":\"image\",\"data_type\":\"TYPE_UINT8\",\"dims\":[-1,-1,3],\"optional\":true},"
    "{\"name\":\"input\",\"data_type\":\"TYPE_FP32\",\"dims\":[\"3\",\"64\",\"64\"],\"optional\":true}],"
    "\"output\":[{\"name\":\"classes\",\"data_type\":\"TYPE_UINT8\",\"dims\":[-1,-1]},"
    "{\"name\":\"depth\",\"data_type\":\"TYPE_FP16\",\"dims\":[1,-1,-1]},"
    "{\"name\":\"logits\",\"data_type\":\"TYPE_INT8\",\"dims\":[-1,-1,-1]},"
    "{\"name\":\"logits_scale\",\"data_type\":\"TYPE_FP32\",\"dims\":[1]}],"
    "\"parameters\":{\"placement\":{\"string_value\":\"cpu\"},\"frames_in_flight\":{\"string_value\":\"3\"},"
    "\"threads\":{\"string_value\":\"2\"}}}";

static void test_json(void) {
    mtj_value v;
    char err[256];
    const char *t = "{\"a\": [1, -2.5e1, \"x\\u00e9\\n\", true, null], \"b\": {\"c\": \"12\"}}";
    CHECK(!mtj_parse(t, strlen(t), &v, err, sizeof err), "parse: %s", err);
    const mtj_value *a = mtj_get(&v, "a");
    CHECK(a && a->type == MTJ_ARRAY && a->n == 5, "array");
    CHECK(a && a->items[1].number == -25.0, "number");
    CHECK(a && !strcmp(a->items[2].string, "x\xc3\xa9\n"), "escapes");
    int64_t x = 0;
    CHECK(!mtj_get_int(mtj_get(&v, "b"), "c", &x) && x == 12, "int as string");
    mtj_free(&v);
    const char *bad[] = {"{", "[1,]", "{\"a\" 1}", "\"\\q\"", "[1] x", "", "{\"a\":\"\x01\"}", "[\"\\u12\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        CHECK(mtj_parse(bad[i], strlen(bad[i]), &v, err, sizeof err) && err[0] && !strchr(err, '\n'), "bad JSON %zu: '%s'", i, err);
    }
    /* Bounded nesting: no stack exhaustion from a deep file. */
    char deep[4096];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    CHECK(mtj_parse(deep, strlen(deep), &v, err, sizeof err) && strstr(err, "deep"), "deep: '%s'", err);
    /* A NUL inside the text is not whitespace. */
    CHECK(mtj_parse("1\0 ", 3, &v, err, sizeof err), "NUL");
}

static void test_config(void) {
    mtb_config c;
    char err[512] = "";
    CHECK(!mtb_config_parse(CFG_OK, strlen(CFG_OK), &c, err, sizeof err), "good config: %s", err);
    CHECK(c.max_batch_size == 8 && c.has_image && c.has_float && c.image_h == -1 && c.float_h == 64, "inputs");
    CHECK(c.want[MTB_OUT_CLASSES] && c.want[MTB_OUT_DEPTH] && c.want[MTB_OUT_LOGITS] && c.want[MTB_OUT_SCALE] && c.depth_fp16, "outputs");
    CHECK(!strcmp(c.placement, "cpu") && c.frames_in_flight == 3 && c.threads == 2 && !strcmp(c.model_file, "model.onnx"), "params");
    /* Each mistake fails the load with a message naming it. */
    static const struct {
        const char *from, *to, *msg;
    } bad[] = {
        {"\"threads\":{", "\"thread\":{", "'thread' is not one of"},
        {"\"string_value\":\"3\"", "\"string_value\":\"0\"", "frames_in_flight"},
        {"TYPE_UINT8\",\"dims\":[-1,-1,3]", "TYPE_UINT8\",\"dims\":[-1,-1,4]", "input 'image' must be"},
        {"\"name\":\"input\"", "\"name\":\"pixels\"", "'pixels'"},
        {"TYPE_FP16", "TYPE_INT32", "output 'depth' must be"},
        {"\"name\":\"logits_scale\"", "\"name\":\"scales\"", "'scales'"},
        {",\"optional\":true}]", "}]", "optional"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char json[4096];
        const char *at = strstr(CFG_OK, bad[i].from);
        CHECK(at != NULL, "case %zu: pattern", i);
        if (!at) continue;
        snprintf(json, sizeof json, "%.*s%s%s", (int)(at - CFG_OK), CFG_OK, bad[i].to, at + strlen(bad[i].from));
        err[0] = 0;
        CHECK(mtb_config_parse(json, strlen(json), &c, err, sizeof err) && strstr(err, bad[i].msg) && !strchr(err, '\n'),
              "bad config %zu: '%s' (want '%s')", i, err, bad[i].msg);
    }
}

static void test_placement(void) {
    char out[512], err[256];
    CHECK(!mtb_instance_placement("", MTB_KIND_CPU, -1, out, sizeof out, err, sizeof err) && !strcmp(out, "cpu"), "cpu default");
    CHECK(!mtb_instance_placement("", MTB_KIND_GPU, 3, out, sizeof out, err, sizeof err) && !strcmp(out, "cuda:3/fp16"),
          "gpu default: %s", out);
    const char *p = "encoder=cuda:0/fp16,seg=cuda:1.sm16/int8,depth=cuda:0.sm16/int8";
    CHECK(!mtb_instance_placement(p, MTB_KIND_GPU, 2, out, sizeof out, err, sizeof err) &&
              !strcmp(out, "encoder=cuda:2/fp16,seg=cuda:3.sm16/int8,depth=cuda:2.sm16/int8"),
          "shifted: %s", out);
    CHECK(!mtb_instance_placement(p, MTB_KIND_CPU, -1, out, sizeof out, err, sizeof err) && !strcmp(out, p), "cpu kind keeps it");
    CHECK(!mtb_instance_placement("auto", MTB_KIND_GPU, 0, out, sizeof out, err, sizeof err) && !strcmp(out, "auto"), "auto on 0");
    CHECK(mtb_instance_placement("auto", MTB_KIND_GPU, 1, out, sizeof out, err, sizeof err) && strstr(err, "GPU 1"), "auto on 1: %s", err);
}

/* ------------------------------------------------------------------ engine */
enum { S = 64 };

static void fill_frame(uint8_t *px, int h, int w, unsigned seed) {
    for (int i = 0; i < h * w * 3; i++) px[i] = (uint8_t)((i * 2654435761u + seed * 40503u) >> 13);
}

/* The plan API's classes and depth for one uint8 frame (normalized on the
 * host with mtmi's arithmetic). */
/* threads: the engine's own count, so that the kernels are the same (a
 * conv's column tiles and Winograd bands depend on it, and so may the last
 * bits on CPUs without AVX-512) */
static int plan_ref(mtmi_model *m, const uint8_t *px, uint8_t *classes, float *depth, int threads) {
    static const float mean[3] = {123.675f, 116.28f, 103.53f}, sd[3] = {58.395f, 57.12f, 57.375f};
    float *x = malloc(sizeof(float) * 3 * S * S), *seg = malloc(sizeof(float) * 19 * S * S);
    mtmi_tensor in = {.dtype = MTMI_FLOAT, .rank = 4, .dims = {1, 3, S, S}, .data = x};
    mtmi_tensor out[2] = {{.data = seg}, {.data = depth}};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < S * S; i++) x[k * S * S + i] = ((float)px[i * 3 + k] - mean[k]) * (1.0f / sd[k]);
    mtmi_plan *p = NULL;
    mtmi_plan_options po = {.device = "cpu", .threads = threads, .num_input_shapes = 1, .input_shapes = &in};
    int rc = mtmi_plan_create(m, &po, &p) || mtmi_plan_run(p, &in, 1, out, 2);
    for (int i = 0; i < S * S && !rc; i++) {
        int best = 0;
        for (int c = 1; c < 19; c++)
            if (seg[c * S * S + i] > seg[best * S * S + i]) best = c;
        classes[i] = (uint8_t)best;
    }
    mtmi_plan_free(p);
    free(x);
    free(seg);
    return rc;
}

/* The reference network (seed) and CFG_OK as the engine tests use it:
 * float depth (to compare exactly), no logits, two input sizes; NULL (and
 * a failed check) if the model or config could not be made. */
static mtmi_model *engine_setup(uint64_t seed, mtb_config *c, mtb_roles *roles) {
    mtmi_model *m = NULL;
    mtmi_reference_options ro = {.seed = seed, .height = S, .width = S};
    CHECK(!mtmi_model_make_reference(&ro, &m), "model: %s", mtmi_last_error());
    if (!m) return NULL;
    char err[512] = "";
    int ok = !mtb_config_parse(CFG_OK, strlen(CFG_OK), c, err, sizeof err);
    CHECK(ok, "config: %s", err);
    c->depth_fp16 = 0;
    c->want[MTB_OUT_LOGITS] = c->want[MTB_OUT_SCALE] = 0;
    c->max_sizes = 2;
    if (ok) ok = !mtb_find_roles(m, c, roles, err, sizeof err) && roles->seg == 0 && roles->depth == 1;
    CHECK(ok, "roles: %s", err);
    if (!ok) {
        mtmi_model_free(m);
        return NULL;
    }
    return m;
}

static void test_engine(void) {
    mtb_config c;
    mtb_roles roles;
    char err[512] = "";
    mtmi_model *m = engine_setup(11, &c, &roles);
    if (!m) return;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    mtb_engine e;
    mtb_engine_init(&e, m, &mu, &c, &roles, "cpu", NULL);

    /* 5 frames of two requests (3 + 2), 3 in flight: equal to the plan. */
    enum { N = 5 };
    uint8_t *px = malloc((size_t)N * S * S * 3), *cls = malloc((size_t)N * S * S), ref_cls[S * S];
    float *dep = malloc(sizeof(float) * N * S * S), ref_dep[S * S];
    char fail[2][256] = {"", ""};
    mtb_frame fr[N];
    mtb_entry *en = NULL;
    mtb_engine_begin_batch(&e);
    CHECK(!mtb_engine_entry(&e, 1, S, S, &en, err, sizeof err), "entry: %s", err);
    for (int i = 0; i < N && en; i++) {
        fill_frame(px + (size_t)i * S * S * 3, S, S, (unsigned)i);
        fr[i] = (mtb_frame){.entry = en, .input = px + (size_t)i * S * S * 3, .fail = fail[i >= 3], .fail_cap = 256};
        fr[i].out[MTB_OUT_CLASSES] = cls + (size_t)i * S * S;
        fr[i].out[MTB_OUT_DEPTH] = dep + (size_t)i * S * S;
    }
    if (en) mtb_engine_run(&e, fr, N);
    CHECK(!fail[0][0] && !fail[1][0], "run: '%s' '%s'", fail[0], fail[1]);
    for (int i = 0; i < N && en; i++) {
        CHECK(!plan_ref(m, px + (size_t)i * S * S * 3, ref_cls, ref_dep, c.threads), "plan: %s", mtmi_last_error());
        CHECK(!memcmp(cls + (size_t)i * S * S, ref_cls, S * S), "frame %d: classes differ from the plan's", i);
        CHECK(!memcmp(dep + (size_t)i * S * S, ref_dep, sizeof ref_dep), "frame %d: depth differs from the plan's", i);
    }

    /* A size the network refuses: mtmi's one-line message. */
    mtb_entry *bad = NULL;
    err[0] = 0;
    CHECK(mtb_engine_entry(&e, 1, 40, 40, &bad, err, sizeof err) && err[0] && !strchr(err, '\n'), "40x40: '%s'", err);
    /* A cache of one pipeline whose uint8 pipeline is in use in this batch:
     * the float input's pipeline (another key) is refused until the next
     * batch, where it takes the least recently used one's place. */
    mtb_config c1 = c;
    c1.max_sizes = 1;
    mtb_engine e1;
    mtb_engine_init(&e1, m, &mu, &c1, &roles, "cpu", NULL);
    mtb_entry *img1 = NULL, *flt = NULL;
    mtb_engine_begin_batch(&e1);
    CHECK(!mtb_engine_entry(&e1, 1, S, S, &img1, err, sizeof err), "uint8 pipeline: %s", err);
    err[0] = 0;
    CHECK(mtb_engine_entry(&e1, 0, S, S, &flt, err, sizeof err) && strstr(err, "max_input_sizes"), "second key: '%s'", err);
    mtb_engine_begin_batch(&e1);
    CHECK(!mtb_engine_entry(&e1, 0, S, S, &flt, err, sizeof err) && flt && !flt->image && e1.nentries == 1, "float next batch: %s", err);
    mtb_engine_free(&e1);

    /* A request that failed before the run: its frames are not run. */
    mtb_engine_begin_batch(&e);
    CHECK(!mtb_engine_entry(&e, 1, S, S, &en, err, sizeof err), "entry again: %s", err);
    snprintf(fail[0], sizeof fail[0], "earlier failure");
    fail[1][0] = 0;
    memset(cls, 0xEE, (size_t)N * S * S);
    for (int i = 0; i < N && en; i++) fr[i].entry = en;
    if (en) mtb_engine_run(&e, fr, N);
    CHECK(!strcmp(fail[0], "earlier failure") && !fail[1][0], "failed request kept its message: '%s' '%s'", fail[0], fail[1]);
    CHECK(cls[0] == 0xEE && cls[2 * S * S] == 0xEE, "a failed request's frames were not run");
    CHECK(cls[3 * S * S] < 19 && cls[4 * S * S] < 19, "the next request's frames were");

    mtb_engine_free(&e);
    free(px);
    free(cls);
    free(dep);
    mtmi_model_free(m);
}

/* Triton's pattern with several instances of one model: each instance an
 * engine over the shared model and its mutex; instance k builds its
 * pipeline (the load) while the instances before it run batches on their
 * own threads, then all run at once, every other batch with float input
 * (another pipeline, which each instance builds while the others run and
 * build theirs: what the model's mutex serializes).  Every uint8 frame
 * must equal the plan's answer, every float batch repeat itself; under ThreadSanitizer
 * (scripts/test.sh) a race between the loads and the running instances
 * fails the run.  (A server once crashed loading the third instance of a
 * model on a GPU: docs/PERFORMANCE.md.) */
enum { INST = 3, IFRAMES = 4, IROUNDS = 4 };
typedef struct {
    mtb_engine e;
    uint8_t px[IFRAMES][S * S * 3];
    uint8_t cls[IFRAMES][S * S];
    float dep[IFRAMES][S * S];
    float xf[3 * S * S]; /* the float input */
    uint8_t cls2[IFRAMES][S * S];
    float dep2[IFRAMES][S * S];
    int ok, stop_after; /* rounds run; run this many then return */
    char err[256];      /* why a batch did not run */
} instance;

static void *instance_main(void *arg) {
    instance *in = arg;
    for (int r = 0; r < in->stop_after; r++) {
        char err[256] = "", fail[IFRAMES][256];
        mtb_entry *en = NULL;
        const int flt = r & 1;
        mtb_engine_begin_batch(&in->e);
        if (mtb_engine_entry(&in->e, !flt, S, S, &en, err, sizeof err) || !en) {
            snprintf(in->err, sizeof in->err, "%s input: %s", flt ? "float" : "uint8", err);
            return NULL;
        }
        mtb_frame fr[IFRAMES];
        for (int i = 0; i < IFRAMES; i++) {
            fail[i][0] = 0;
            fr[i] = (mtb_frame){.entry = en, .input = flt ? (const void *)in->xf : in->px[i], .fail = fail[i], .fail_cap = 256};
            fr[i].out[MTB_OUT_CLASSES] = flt ? in->cls2[i] : in->cls[i];
            fr[i].out[MTB_OUT_DEPTH] = flt ? in->dep2[i] : in->dep[i];
        }
        mtb_engine_run(&in->e, fr, IFRAMES);
        for (int i = 0; i < IFRAMES; i++)
            if (fail[i][0]) {
                snprintf(in->err, sizeof in->err, "%s frame %d: %s", flt ? "float" : "uint8", i, fail[i]);
                return NULL;
            }
        in->ok++;
    }
    return NULL;
}

static void test_instances(void) {
    mtb_config c;
    mtb_roles roles;
    char err[512] = "";
    mtmi_model *m = engine_setup(12, &c, &roles);
    if (!m) return;
    c.frames_in_flight = 2;
    c.threads = 1;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    instance *in = calloc(INST, sizeof *in);
    pthread_t th[INST];
    int started[INST] = {0};
    if (!in) return;
    for (int k = 0; k < INST; k++) {
        mtb_engine_init(&in[k].e, m, &mu, &c, &roles, "cpu", NULL);
        for (int i = 0; i < IFRAMES; i++) fill_frame(in[k].px[i], S, S, (unsigned)(7 * k + i));
        for (int i = 0; i < 3 * S * S; i++) in[k].xf[i] = (float)((i * 7 + k * 13) % 255) / 255.0f - 0.5f;
        /* the load: this instance's pipeline, built while the earlier
         * instances run (warm_up in backend.c) */
        mtb_entry *en = NULL;
        mtb_engine_begin_batch(&in[k].e);
        CHECK(!mtb_engine_entry(&in[k].e, 1, S, S, &en, err, sizeof err) && en, "instance %d load: %s", k, err);
        in[k].stop_after = IROUNDS;
        started[k] = pthread_create(&th[k], NULL, instance_main, &in[k]) == 0;
        CHECK(started[k], "instance %d: thread", k);
    }
    for (int k = 0; k < INST; k++)
        if (started[k]) pthread_join(th[k], NULL);
    uint8_t ref_cls[S * S];
    float ref_dep[S * S];
    for (int k = 0; k < INST; k++) {
        CHECK(in[k].ok == IROUNDS, "instance %d: %d of %d batches ran (%s)", k, in[k].ok, IROUNDS, in[k].err);
        CHECK(!memcmp(in[k].cls2[0], in[k].cls2[IFRAMES - 1], sizeof in[k].cls2[0]) &&
                  !memcmp(in[k].dep2[0], in[k].dep2[IFRAMES - 1], sizeof in[k].dep2[0]),
              "instance %d: the same float frame, different answers", k);
        for (int i = 0; i < IFRAMES; i++) {
            CHECK(!plan_ref(m, in[k].px[i], ref_cls, ref_dep, c.threads), "plan: %s", mtmi_last_error());
            CHECK(!memcmp(in[k].cls[i], ref_cls, sizeof ref_cls) && !memcmp(in[k].dep[i], ref_dep, sizeof ref_dep),
                  "instance %d frame %d differs from the plan's answer", k, i);
        }
        mtb_engine_free(&in[k].e);
    }
    free(in);
    mtmi_model_free(m);
}

/* --instances: only test_instances, at one CPU thread a stage (the
 * ThreadSanitizer run: libgomp is not instrumented, and a team of OpenMP
 * threads would only add false reports) */
int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--instances")) {
        test_instances();
        printf("%d passed, %d failed\n", checks - failures, failures);
        return failures != 0;
    }
    test_json();
    test_config();
    test_placement();
    test_engine();
    test_instances();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
