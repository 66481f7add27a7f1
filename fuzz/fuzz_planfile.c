/* libFuzzer target for the saved-plan reader (pipeline/planfile.h): any
 * bytes give a plan whose strings are terminated, whose stage count is in
 * range and whose decision lists are well-formed (each decision findable
 * by its own signature), or a one-line error; never a crash or a leak.
 * The checksum makes random bytes fail early; the seed corpus
 * (fuzz/corpus/planfile: test_planfile --write-seed, mtmi build on the
 * CPU) and libFuzzer's comparison tracing get past it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/planfile.h"

static void check_list(mt_choices *c) {
    size_t off = 0;
    int n = 0;
    while (off < c->len) {
        if (c->len - off < 4) abort();
        const unsigned char *p = c->data + off;
        size_t sl = p[1], vl = (size_t)p[2] | ((size_t)p[3] << 8);
        if (c->len - off - 4 < sl + vl) abort();
        unsigned char val[65536];
        if (!mt_choices_find(c, p[0], p + 4, sl, val, vl)) abort();
        off += 4 + sl + vl;
        n++;
    }
    if (n != c->count) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mt_planfile pf;
    if (mt_planfile_parse(data, size, "fuzz", &pf) == MTMI_OK) {
        if (pf.nstages < 1 || pf.nstages > MT_PLACE_MAX || pf.rank < 1 || pf.rank > MT_MAX_RANK) abort();
        if (strlen(pf.placement) >= sizeof pf.placement || strlen(pf.mtmi_version) >= sizeof pf.mtmi_version) abort();
        for (int i = 0; i < pf.nstages; i++) {
            if (strlen(pf.stage_name[i]) >= sizeof pf.stage_name[i] || strlen(pf.identity[i]) >= sizeof pf.identity[i]) abort();
            check_list(&pf.choices[i]);
        }
        mt_planfile_free(&pf);
    } else if (strchr(mtmi_last_error(), '\n')) {
        abort();
    }
    return 0;
}
