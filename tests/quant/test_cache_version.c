/* The TensorRT version number in a calibration cache's header: kept as
 * read through a parse / override / write, chosen by the writer for a new
 * cache (mt_calib_header_make) or an old one (mt_calib_cache_set_version),
 * refused unless it is 1 to 9 digits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant/quant.h"

#include "check.h"

static char *first_line(const char *path) {
    static char line[256];
    FILE *f = fopen(path, "r");
    line[0] = 0;
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    line[strcspn(line, "\r\n")] = 0;
    return line;
}

/* Read, override, write: the header comes back as read. */
static void test_kept(const char *dir) {
    const char *text = "TRT-8501-MinMaxCalibration\r\ninput.72: 3cb9c64a\r\n";
    mt_calib_cache c;
    CHECK(mt_calib_cache_parse(text, strlen(text), "t.cache", &c) == MTMI_OK, "parse: %s", mtmi_last_error());
    CHECK(mt_calib_cache_override(&c, "input.72=0.5") == MTMI_OK, "override");
    char path[512];
    snprintf(path, sizeof path, "%s/kept.cache", dir);
    CHECK(mt_calib_cache_write(path, &c) == MTMI_OK, "write: %s", mtmi_last_error());
    CHECK(!strcmp(first_line(path), "TRT-8501-MinMaxCalibration"), "rewritten header '%s'", first_line(path));
    mt_calib_cache_free(&c);
    unlink(path);
}

static void set_version(const char *header, const char *version, const char *want) {
    mt_calib_cache c = {0};
    c.header = header ? strdup(header) : NULL;
    mtmi_status s = mt_calib_cache_set_version(&c, version);
    CHECK(s == MTMI_OK && c.header && !strcmp(c.header, want), "'%s' with version %s -> '%s', want '%s'", header ? header : "(none)",
          version, c.header ? c.header : "(none)", want);
    mt_calib_cache_free(&c);
}

static void test_chosen(void) {
    char *h = NULL;
    CHECK(mt_calib_header_make(MT_CALIB_ENTROPY, NULL, &h) == MTMI_OK && !strcmp(h, "TRT-8601-EntropyCalibration2"), "default %s", h);
    free(h);
    CHECK(mt_calib_header_make(MT_CALIB_PERCENTILE, "10300", &h) == MTMI_OK && !strcmp(h, "TRT-10300-PercentileCalibration"), "%s", h);
    free(h);
    set_version("TRT-8601-MinMaxCalibration", "10300", "TRT-10300-MinMaxCalibration");
    set_version("TRT-EntropyCalibration2", "8601", "TRT-8601-EntropyCalibration2"); /* no number: one is added */
    set_version("TRT-8601", "7", "TRT-7");                                          /* no algorithm */
    set_version(NULL, "8601", "TRT-8601-EntropyCalibration2");
    const char *bad[] = {"", "86a1", "1234567890", "-1", "8601 ", "+8601"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        h = NULL;
        mtmi_status s = mt_calib_header_make(MT_CALIB_ENTROPY, bad[i], &h);
        const char *e = mtmi_last_error();
        CHECK(s == MTMI_ERR_ARG && !h && strstr(e, "digits") && !strchr(e, '\n'), "version '%s' accepted or bad message '%s'", bad[i], e);
        free(h);
        mt_calib_cache c = {0};
        c.header = strdup("TRT-8601-MinMaxCalibration");
        CHECK(mt_calib_cache_set_version(&c, bad[i]) == MTMI_ERR_ARG && !strcmp(c.header, "TRT-8601-MinMaxCalibration"),
              "set_version '%s' accepted or changed the header to '%s'", bad[i], c.header);
        mt_calib_cache_free(&c);
    }
}

int main(void) {
    char dir[] = "/tmp/mtmi_cachever_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    test_kept(dir);
    test_chosen();
    rmdir(dir);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
