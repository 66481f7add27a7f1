/* libFuzzer target for placement strings ("encoder=cuda:0/fp16,seg=cpu:1/int8"
 * and single device specs): any string must parse or fail with a one-line
 * error; a parsed placement must print, look up and check without reading
 * past its tables. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    mt_placement p;
    static const char *const stages[] = {"encoder", "seg", "depth", "seg_logits"};
    if (mt_placement_parse(s, &p) == MTMI_OK) {
        char buf[512];
        mt_placement_str(&p, stages, 4, buf, sizeof buf);
        if (strlen(buf) >= sizeof buf) abort();
        for (int i = 0; i < 4; i++) {
            mt_devspec d = mt_placement_lookup(&p, stages[i]);
            mt_devspec_str(&d, buf, sizeof buf);
        }
        mt_placement_check(&p, stages, 4);
    } else if (strchr(mtmi_last_error(), '\n')) {
        abort();
    }
    mt_devspec d;
    if (mt_devspec_parse(s, &d) == MTMI_OK) {
        char buf[64];
        mt_devspec_str(&d, buf, sizeof buf);
        mt_device_str(&d, buf, sizeof buf);
    } else if (strchr(mtmi_last_error(), '\n')) {
        abort();
    }
    free(s);
    return 0;
}
