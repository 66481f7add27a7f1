/* Calibration caches (TensorRT text format), quantization rounding, the
 * histogram and its threshold search on known distributions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph/graph.h"
#include "quant/quant.h"

#include "check.h"
#include "oracle.h"

static mtmi_status parse(const char *text, mt_calib_cache *c) { return mt_calib_cache_parse(text, strlen(text), "t.cache", c); }

/* A bad cache must fail with a one-line message naming the line. */
static void bad(const char *text, const char *want) {
    mt_calib_cache c;
    mtmi_status s = parse(text, &c);
    const char *e = mtmi_last_error();
    CHECK(s == MTMI_ERR_PARSE, "bad cache accepted: %s", text);
    CHECK(strstr(e, want) != NULL, "error '%s' lacks '%s'", e, want);
    CHECK(!strchr(e, '\n'), "multi-line error '%s'", e);
}

static void test_hex(void) {
    float s;
    CHECK(mt_scale_from_hex("3cb9c64a", &s) == 0 && fabsf(s - 0.0226776f) < 1e-7f, "3cb9c64a -> %.9g", s);
    char hex[9];
    mt_scale_to_hex(s, hex);
    CHECK(!strcmp(hex, "3cb9c64a"), "round trip hex %s", hex);
    mt_scale_to_hex(1.0f, hex);
    CHECK(!strcmp(hex, "3f800000"), "1.0 -> %s", hex);
    CHECK(mt_scale_from_hex("3CB9C64A", &s) == 0 && fabsf(s - 0.0226776f) < 1e-7f, "upper case hex");
    CHECK(mt_scale_from_hex("3cb9c64a0", &s) != 0, "9 digits accepted");
    CHECK(mt_scale_from_hex("3cb9g64a", &s) != 0, "bad digit accepted");
}

static void test_parse(void) {
    /* As TensorRT writes it, with names holding ':' and a CRLF line. */
    const char *trt = "TRT-8601-EntropyCalibration2\n"
                      "input.72: 3cb9c64a\n"
                      "onnx::Conv_123: 3d1b9f6e\r\n"
                      "/seg/fuse/Relu_output_0: 3c010a14\n"
                      "\n";
    mt_calib_cache c;
    mtmi_status s = parse(trt, &c);
    CHECK(s == MTMI_OK, "TRT cache rejected: %s", mtmi_last_error());
    if (s) return;
    CHECK(!strcmp(c.header, "TRT-8601-EntropyCalibration2"), "header %s", c.header);
    CHECK(c.n == 3, "%d entries", c.n);
    CHECK(fabsf(mt_calib_cache_get(&c, "input.72") - 0.0226776f) < 1e-7f, "input.72 = %g", mt_calib_cache_get(&c, "input.72"));
    CHECK(mt_calib_cache_get(&c, "onnx::Conv_123") > 0.03f, "name with '::'");
    CHECK(mt_calib_cache_get(&c, "missing") == 0, "missing name has a scale");
    CHECK(c.e[1].line == 3, "line of entry 2 is %d", c.e[1].line);

    /* Write -> read gives the same bits, atomically (no temp files left). */
    char dir[200];
    CHECK(mkdtemp(test_tmp_template(dir, sizeof dir, "mtmi_quant_")) != NULL, "mkdtemp");
    char path[256];
    snprintf(path, sizeof path, "%s/c.cache", dir);
    CHECK(mt_calib_cache_set(&c, "added", 0.5f) == MTMI_OK, "set");
    CHECK(mt_calib_cache_override(&c, "input.72=0x3f800000") == MTMI_OK, "hex override");
    CHECK(mt_calib_cache_get(&c, "input.72") == 1.0f, "override value");
    CHECK(mt_calib_cache_override(&c, "onnx::Conv_123=0.25") == MTMI_OK, "override of a name with ':'");
    CHECK(mt_calib_cache_get(&c, "onnx::Conv_123") == 0.25f, "override value 0.25");
    CHECK(mt_calib_cache_override(&c, "x=-1") != MTMI_OK, "negative override accepted");
    CHECK(mt_calib_cache_override(&c, "x=nan") != MTMI_OK, "NaN override accepted");
    CHECK(mt_calib_cache_override(&c, "x=") != MTMI_OK, "empty override accepted");
    CHECK(mt_calib_cache_override(&c, "x=1e") != MTMI_OK, "malformed override accepted");
    CHECK(mt_calib_cache_write(path, &c) == MTMI_OK, "write: %s", mtmi_last_error());
    mt_calib_cache d;
    CHECK(mt_calib_cache_read(path, &d) == MTMI_OK, "read back: %s", mtmi_last_error());
    CHECK(d.n == c.n, "count %d vs %d", d.n, c.n);
    for (int i = 0; i < c.n && i < d.n; i++)
        CHECK(!strcmp(c.e[i].name, d.e[i].name) && memcmp(&c.e[i].scale, &d.e[i].scale, 4) == 0, "entry %d differs", i);
    FILE *f = fopen(path, "r");
    char line[128] = "";
    if (f) {
        CHECK(fgets(line, sizeof line, f) && !strcmp(line, "TRT-8601-EntropyCalibration2\n"), "first line '%s'", line);
        CHECK(fgets(line, sizeof line, f) && !strcmp(line, "input.72: 3f800000\n"), "second line '%s'", line);
        fclose(f);
    }
    /* A failed write leaves nothing behind. */
    char bad_path[300];
    snprintf(bad_path, sizeof bad_path, "%s/no/such/dir/c.cache", dir);
    CHECK(mt_calib_cache_write(bad_path, &c) != MTMI_OK, "write into a missing folder succeeded");
    mt_calib_cache_free(&d);

    /* Names are checked against a model. */
    mt_graph *g = mt_graph_new();
    mt_graph_add_value(g, "input.72");
    mt_graph_add_value(g, "onnx::Conv_123");
    mt_graph_add_value(g, "/seg/fuse/Relu_output_0");
    CHECK(mt_calib_cache_check(&c, g, NULL) != MTMI_OK && strstr(mtmi_last_error(), "'added'"), "unknown name: %s", mtmi_last_error());
    mt_calib_cache_free(&c);
    CHECK(parse(trt, &c) == MTMI_OK, "reparse");
    CHECK(mt_calib_cache_check(&c, g, NULL) == MTMI_OK, "known names rejected: %s", mtmi_last_error());
    mt_calib_cache_free(&c);
    CHECK(parse("TRT-8601-EntropyCalibration2\ninput.72: 3cb9c64a\nconv9: 3cb9c64a\n", &c) == MTMI_OK, "parse");
    CHECK(mt_calib_cache_check(&c, g, NULL) != MTMI_OK && strstr(mtmi_last_error(), "t.cache:3: tensor 'conv9' is not in the model"),
          "unknown-name error '%s'", mtmi_last_error());
    mt_calib_cache_free(&c);
    mt_graph_free(g);
    unlink(path);
    rmdir(dir);
}

static void test_bad(void) {
    bad("", "empty");
    bad("input.72: 3cb9c64a\n", "t.cache:1: expected a header");
    bad("TRT-8601-EntropyCalibration2\ninput.72 3cb9c64a\n", "t.cache:2:");
    bad("TRT-8601-EntropyCalibration2\na: 3cb9c64a\nb: zz\n", "t.cache:3:");
    bad("TRT-8601-EntropyCalibration2\na: 3cb9c64a\n\nb: 3cb9c64a11\n", "t.cache:4:");
    bad("TRT-8601-EntropyCalibration2\na: bf800000\n", "t.cache:2: tensor 'a': scale bf800000 is -1, must be positive");
    bad("TRT-8601-EntropyCalibration2\na: 00000000\n", "t.cache:2: tensor 'a': scale 00000000 is 0");
    bad("TRT-8601-EntropyCalibration2\na: 7fc00000\n", "t.cache:2: tensor 'a': scale 7fc00000 is nan");
    bad("TRT-8601-EntropyCalibration2\na: 7f800000\n", "t.cache:2:");
    bad("TRT-8601-EntropyCalibration2\na: 3cb9c64a\na: 3cb9c64a\n", "t.cache:3: tensor 'a' appears twice");
    bad("TRT-8601-EntropyCalibration2\n: 3cb9c64a\n", "t.cache:2:");
    const char nul[] = "TRT-8601-EntropyCalibration2\na: 3cb9\0c64a\n";
    mt_calib_cache c;
    CHECK(mt_calib_cache_parse(nul, sizeof nul - 1, "t.cache", &c) == MTMI_ERR_PARSE, "NUL byte accepted");
    CHECK(mt_calib_cache_read("/nonexistent/x.cache", &c) == MTMI_ERR_IO, "missing file status");
}

static void test_round(void) {
    /* Half to even, clamped to [-128, 127]. */
    CHECK(mt_quantize(0.5f, 1) == 0 && mt_quantize(1.5f, 1) == 2 && mt_quantize(2.5f, 1) == 2, "half to even");
    CHECK(mt_quantize(-0.5f, 1) == 0 && mt_quantize(-1.5f, 1) == -2 && mt_quantize(-2.5f, 1) == -2, "negative half to even");
    CHECK(mt_quantize(300, 1) == 127 && mt_quantize(-300, 1) == -128 && mt_quantize(-128.4f, 1) == -128, "clamp");
    CHECK(mt_quantize(NAN, 1) == 0 && mt_quantize(INFINITY, 1) == 127, "NaN / inf");
    CHECK(mt_quantize(0.3f, 0.1f) == 3, "0.3 / 0.1");
    CHECK(mt_dequantize(-128, 0.5f) == -64.0f, "dequantize");
}

static uint64_t g_seed = 7;

static void test_hist(void) {
    mt_rng r;
    mt_rng_seed(&r, g_seed);
    /* Uniform |x| on [0, 1): nothing to clip, the threshold is near the max. */
    int n = 200000;
    float *x = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) x[i] = mt_rng_uniform(&r) * (i & 1 ? 1 : -1);
    mt_hist h = {0};
    CHECK(mt_hist_add(&h, x, n) == MTMI_OK, "add");
    float t = mt_hist_amax_entropy(&h);
    CHECK(t > 0.9f * h.amax && t <= h.amax, "uniform: entropy threshold %g of max %g", t, h.amax);
    CHECK(h.nbins == MT_HIST_BINS, "bins %d", h.nbins);
    float p = mt_hist_amax_percentile(&h, 50);
    CHECK(fabsf(p - 0.5f) < 0.01f, "median of |U(-1,1)| %g", p);
    mt_hist_free(&h);
    /* Gaussian with a few huge outliers: entropy clips them, min-max not. */
    for (int i = 0; i < n; i++) x[i] = mt_rng_normal(&r);
    x[5] = 60;
    x[6] = -55;
    CHECK(mt_hist_add(&h, x, n) == MTMI_OK, "add");
    t = mt_hist_amax_entropy(&h);
    CHECK(t > 2.0f && t < 10.0f, "gaussian+outliers: entropy threshold %g (max %g)", t, h.amax);
    float p9999 = mt_hist_amax_percentile(&h, 99.99);
    CHECK(p9999 > 3.0f && p9999 < 5.5f, "99.99th percentile %g", p9999);
    /* A later batch with a larger max appends bins of the same width. */
    float w = h.width;
    float big[2] = {120, 0.1f};
    CHECK(mt_hist_add(&h, big, 2) == MTMI_OK, "add");
    CHECK(h.width == w && h.nbins > MT_HIST_BINS && h.nbins * w >= 120, "growth: %d bins of %g", h.nbins, h.width);
    CHECK(h.amax == 120, "amax %g", h.amax);
    mt_hist_free(&h);
    /* All zeros first: no range yet; the zeros land in bin 0 later. */
    float z[4] = {0, 0, 0, 0}, one[1] = {1};
    CHECK(mt_hist_add(&h, z, 4) == MTMI_OK && h.width == 0, "zeros");
    CHECK(mt_hist_add(&h, one, 1) == MTMI_OK && h.count[0] == 4 && h.count[MT_HIST_BINS - 1] == 1, "zeros kept");
    mt_hist_free(&h);
    float inf[1] = {INFINITY};
    CHECK(mt_hist_add(&h, inf, 1) != MTMI_OK, "infinite activation accepted");
    mt_hist_free(&h);
    free(x);
}

int main(void) {
    g_seed = oracle_seed(7);
    test_hex();
    test_parse();
    test_bad();
    test_round();
    test_hist();
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
