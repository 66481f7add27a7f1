/* choices: the measured decisions a backend makes while it compiles a plan
 * (which cuBLASLt algorithm, which cuDNN engine), kept so that a saved plan
 * (`mtmi build`, pipeline/planfile.h) can make the same plan again without
 * measuring: the algorithm searches are most of a CUDA plan's build time.
 *
 * A list of records, each
 *   kind       what was decided (the backend's own numbering),
 *   signature  the bytes the decision depends on (GEMM m, n, k, strides...),
 *   value      the decision (an algorithm structure, an engine number...).
 * A backend first looks its decision up by kind and signature; when the
 * list has it (a saved plan), the backend uses it instead of measuring,
 * otherwise it measures and appends what it chose.  So a list loaded from
 * a saved plan serves any plan of the same stage, and a plan asked with
 * other options (other result forms, say) only measures what is new: a
 * timing cache, as TensorRT's.  The bytes are opaque here: only the
 * backend that wrote them reads them; the saved plan's header ties them to
 * that backend's GPU, driver and library versions, and the backend checks
 * a found decision with its library before using it.
 *
 * Who uses which part:
 *   field / call         backend (cuda/run.c)   pipeline              planfile
 *   mt_choices_find      looks up               -                     -
 *   mt_choices_put       appends a measured one -                     -
 *   found, measured      counts                 reports               -
 *   data, len, count     -                      one list per stage    writes / reads
 */
#ifndef MT_CHOICES_H
#define MT_CHOICES_H

#include <stddef.h>
#include <stdint.h>

#include "mtmi.h"

typedef struct mt_choices {
    unsigned char *data; /* the records, back to back                        */
    size_t len, cap;
    int count;           /* records in data                                   */
    int found, measured; /* lookups answered from the list / measured since   */
} mt_choices;

/* Record limits: a signature of at most 255 bytes, a value of at most 64 KiB. */
#define MT_CHOICE_MAX_SIG 255
#define MT_CHOICE_MAX_VALUE 65535

/* The decision recorded for (kind, signature) with a value of vallen bytes:
 * copied to val, 1; 0 when the list has none (counted as found). */
int mt_choices_find(mt_choices *c, int kind, const void *sig, size_t siglen, void *val, size_t vallen);
/* Appends a decision just measured (counted as measured). */
mtmi_status mt_choices_put(mt_choices *c, int kind, const void *sig, size_t siglen, const void *val, size_t vallen);
/* Takes over n bytes of records (a loaded file; copied) after checking
 * that they are well-formed; counts them. */
mtmi_status mt_choices_load(mt_choices *c, const void *data, size_t n);
void mt_choices_free(mt_choices *c);

#endif
