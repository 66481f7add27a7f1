/* Saved plans (pipeline/planfile.h) and the decision lists they carry
 * (backend/choices.h), without a GPU:
 *  - choices: find answers exactly the (kind, signature, value size) put,
 *    the first put of a signature wins, counts, load refuses records that
 *    run past the end (every truncation of a valid list);
 *  - planfile: write -> read gives every field back, stage decisions
 *    included, bytes for bytes; every truncation and every single-byte
 *    change of a written plan is refused with a one-line error (the
 *    checksum), never read as a plan; another format number is named;
 *    check_run refuses another model, cache or input kind; check_machine
 *    refuses another mtmi version.
 * test_planfile --write-seed DIR writes the fuzz seeds (fuzz/corpus/planfile). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/choices.h"
#include "check.h"
#include "core/core.h"
#include "pipeline/planfile.h"

static void test_choices(void) {
    mt_choices c = {0};
    int64_t sa[3] = {1, 2, 3}, sb[3] = {1, 2, 4};
    uint64_t va = 0x1111, vb = 0x2222, v2 = 0x3333, got = 0;
    CHECK(mt_choices_put(&c, 1, sa, sizeof sa, &va, sizeof va) == MTMI_OK, "put a");
    CHECK(mt_choices_put(&c, 1, sb, sizeof sb, &vb, sizeof vb) == MTMI_OK, "put b");
    CHECK(mt_choices_put(&c, 1, sa, sizeof sa, &v2, sizeof v2) == MTMI_OK, "put a again");
    CHECK(c.count == 3 && c.measured == 3 && c.found == 0, "counts %d %d %d", c.count, c.measured, c.found);
    CHECK(mt_choices_find(&c, 1, sa, sizeof sa, &got, sizeof got) == 1 && got == va, "a -> first value (%llx)",
          (unsigned long long)got);
    CHECK(mt_choices_find(&c, 1, sb, sizeof sb, &got, sizeof got) == 1 && got == vb, "b -> its value");
    CHECK(mt_choices_find(&c, 2, sa, sizeof sa, &got, sizeof got) == 0, "another kind is not found");
    CHECK(mt_choices_find(&c, 1, sa, sizeof sa - 1, &got, sizeof got) == 0, "a shorter signature is not found");
    uint32_t small;
    CHECK(mt_choices_find(&c, 1, sa, sizeof sa, &small, sizeof small) == 0, "another value size is not found");
    int64_t sc[3] = {9, 9, 9};
    CHECK(mt_choices_find(&c, 1, sc, sizeof sc, &got, sizeof got) == 0, "an unknown signature is not found");
    CHECK(c.found == 2, "found %d", c.found);
    unsigned char big[300] = {0};
    CHECK(mt_choices_put(&c, 1, big, sizeof big, &va, sizeof va) != MTMI_OK, "a 300-byte signature is refused");
    CHECK(mt_choices_put(&c, 256, sa, sizeof sa, &va, sizeof va) != MTMI_OK, "kind 256 is refused");
    /* load: the whole list is taken; every strict prefix that cuts a
     * record is refused; prefixes that end between records load */
    mt_choices l = {0};
    CHECK(mt_choices_load(&l, c.data, c.len) == MTMI_OK && l.count == 3 && l.len == c.len, "load whole");
    CHECK(mt_choices_find(&l, 1, sb, sizeof sb, &got, sizeof got) == 1 && got == vb, "loaded list answers");
    size_t rec = 4 + sizeof sa + sizeof va;
    int bad = 0;
    for (size_t n = 0; n < c.len; n++) {
        mtmi_status s = mt_choices_load(&l, c.data, n);
        int boundary = n % rec == 0;
        if ((s == MTMI_OK) != boundary) bad++;
        if (s && strchr(mtmi_last_error(), '\n')) bad++;
    }
    CHECK(bad == 0, "%d prefixes loaded or refused wrongly", bad);
    mt_choices_free(&l);
    mt_choices_free(&c);
}

/* a plan like a GPU pipeline's: three stages, CUDA identity lines, records */
static void make_plan(mt_planfile *pf) {
    memset(pf, 0, sizeof *pf);
    snprintf(pf->mtmi_version, sizeof pf->mtmi_version, "%s", MTMI_VERSION);
    pf->model_key = 0x0123456789abcdefull;
    pf->has_cache = 1;
    pf->cache_key = 0xfedcba9876543210ull;
    pf->image_input = 1;
    pf->rank = 4;
    int64_t d[4] = {1, 3, 1024, 2048};
    memcpy(pf->dims, d, sizeof d);
    snprintf(pf->placement, sizeof pf->placement, "encoder=cuda:0/fp16,seg=cuda:0.sm16/int8,depth=cpu/fp32");
    snprintf(pf->tuning, sizeof pf->tuning, "pdl=1;cuda_no_fuse=mlp");
    pf->nstages = 3;
    const char *names[3] = {"encoder", "seg", "depth"}, *devs[3] = {"cuda:0/fp16", "cuda:0.sm16/int8", "cpu/fp32"};
    for (int i = 0; i < 3; i++) {
        snprintf(pf->stage_name[i], sizeof pf->stage_name[i], "%s", names[i]);
        snprintf(pf->stage_dev[i], sizeof pf->stage_dev[i], "%s", devs[i]);
        if (i < 2)
            snprintf(pf->identity[i], sizeof pf->identity[i],
                     "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, driver 13000, runtime 13000, cuBLASLt 130000, cuDNN 91000");
        for (int r = 0; i < 2 && r < 5 + 3 * i; r++) {
            int64_t sig[20];
            unsigned char val[72];
            for (int k = 0; k < 20; k++) sig[k] = r * 100 + k + i;
            for (int k = 0; k < 72; k++) val[k] = (unsigned char)(r * 7 + k + i);
            mt_choices_put(&pf->choices[i], 1 + r % 2, sig, sizeof sig, val, r % 2 ? 16 : sizeof val);
        }
    }
}

static int read_all(const char *path, unsigned char **d, size_t *n) {
    uint8_t *data;
    if (mt_read_file(path, &data, n)) return 1;
    *d = data;
    return 0;
}

static void test_round_trip(const char *dir) {
    mt_planfile *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    make_plan(a);
    char path[600];
    snprintf(path, sizeof path, "%s/a.plan", dir);
    CHECK(mt_planfile_write(path, a) == MTMI_OK, "write: %s", mtmi_last_error());
    CHECK(mt_planfile_read(path, b) == MTMI_OK, "read: %s", mtmi_last_error());
    CHECK(!strcmp(a->mtmi_version, b->mtmi_version) && a->model_key == b->model_key && a->has_cache == b->has_cache &&
              a->cache_key == b->cache_key && a->image_input == b->image_input && a->rank == b->rank &&
              !memcmp(a->dims, b->dims, sizeof a->dims) && !strcmp(a->placement, b->placement) && !strcmp(a->tuning, b->tuning) &&
              a->nstages == b->nstages,
          "header fields come back");
    for (int i = 0; i < a->nstages; i++) {
        CHECK(!strcmp(a->stage_name[i], b->stage_name[i]) && !strcmp(a->stage_dev[i], b->stage_dev[i]) &&
                  !strcmp(a->identity[i], b->identity[i]),
              "stage %d's line comes back ('%s' '%s' '%s')", i, b->stage_name[i], b->stage_dev[i], b->identity[i]);
        CHECK(a->choices[i].len == b->choices[i].len && a->choices[i].count == b->choices[i].count &&
                  (!a->choices[i].len || !memcmp(a->choices[i].data, b->choices[i].data, a->choices[i].len)),
              "stage %d's decisions come back (%zu / %zu bytes)", i, a->choices[i].len, b->choices[i].len);
    }
    /* check_run: the same model, cache and input kind pass; each
     * difference is refused in one line naming it */
    CHECK(mt_planfile_check_run(b, "a.plan", a->model_key, 1, a->cache_key, 1) == MTMI_OK, "check_run same");
    CHECK(mt_planfile_check_run(b, "a.plan", a->model_key + 1, 1, a->cache_key, 1) != MTMI_OK &&
              strstr(mtmi_last_error(), "another model"),
          "another model: %s", mtmi_last_error());
    CHECK(mt_planfile_check_run(b, "a.plan", a->model_key, 1, a->cache_key ^ 1, 1) != MTMI_OK &&
              strstr(mtmi_last_error(), "calibration cache"),
          "another cache: %s", mtmi_last_error());
    CHECK(mt_planfile_check_run(b, "a.plan", a->model_key, 0, 0, 1) != MTMI_OK, "no cache");
    CHECK(mt_planfile_check_run(b, "a.plan", a->model_key, 1, a->cache_key, 0) != MTMI_OK && strstr(mtmi_last_error(), "input"),
          "float input: %s", mtmi_last_error());
    snprintf(b->mtmi_version, sizeof b->mtmi_version, "0.0.1");
    CHECK(mt_planfile_check_machine(b, "a.plan") != MTMI_OK && strstr(mtmi_last_error(), "mtmi 0.0.1"),
          "another version: %s", mtmi_last_error());
    mt_planfile_free(b);

    /* every truncation and every byte changed: refused, one line */
    unsigned char *d;
    size_t n;
    if (read_all(path, &d, &n)) {
        CHECK(0, "cannot read back %s", path);
        return;
    }
    int accepted = 0, multiline = 0;
    for (size_t k = 0; k < n; k++) {
        mtmi_status s = mt_planfile_parse(d, k, "t", b);
        if (s == MTMI_OK) accepted++, mt_planfile_free(b);
        else if (strchr(mtmi_last_error(), '\n')) multiline++;
    }
    CHECK(accepted == 0 && multiline == 0, "truncations: %d accepted, %d multi-line errors (of %zu)", accepted, multiline, n);
    accepted = multiline = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned char keep = d[k];
        d[k] ^= 0x20;
        mtmi_status s = mt_planfile_parse(d, n, "t", b);
        if (s == MTMI_OK) accepted++, mt_planfile_free(b);
        else if (strchr(mtmi_last_error(), '\n')) multiline++;
        d[k] = keep;
    }
    CHECK(accepted == 0 && multiline == 0, "changed bytes: %d accepted, %d multi-line errors (of %zu)", accepted, multiline, n);
    /* another format number, with a valid checksum: named */
    size_t body = n - 26; /* "checksum " + 16 hex + '\n' */
    unsigned char *e = malloc(n + 8);
    memcpy(e, d, body);
    e[strlen("MTMI saved plan ")] = '7';
    int w = snprintf((char *)e + body, 27, "checksum %016llx\n", (unsigned long long)mt_hash64(MT_HASH_SEED, e, body));
    CHECK(w == 26, "checksum line");
    CHECK(mt_planfile_parse(e, n, "t", b) != MTMI_OK && strstr(mtmi_last_error(), "format 7"), "format 7: %s", mtmi_last_error());
    free(e);
    free(d);
    /* names that cannot be written as a header token are refused */
    snprintf(a->stage_name[1], sizeof a->stage_name[1], "se g");
    CHECK(mt_planfile_write(path, a) != MTMI_OK, "a stage name with a space is refused");
    mt_planfile_free(a);
    free(a);
    free(b);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-seed")) {
        mt_planfile *a = calloc(1, sizeof *a);
        char path[600];
        make_plan(a);
        snprintf(path, sizeof path, "%s/gpu3.plan", argv[2]);
        int rc = mt_planfile_write(path, a) != MTMI_OK;
        mt_planfile_free(a);
        free(a);
        return rc;
    }
    char dir[512];
    test_tmp_template(dir, sizeof dir, "planfile.");
    if (!mkdtemp(dir)) {
        printf("cannot make a temporary folder\n");
        return 1;
    }
    test_choices();
    test_round_trip(dir);
    char path[600];
    snprintf(path, sizeof path, "%s/a.plan", dir);
    unlink(path);
    rmdir(dir);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
