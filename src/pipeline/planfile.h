/* planfile: saved plans (`mtmi build`), the file that lets `run`, `bench`,
 * `eval` and the library start a pipeline without measuring again.
 *
 * Building a CUDA plan searches algorithms (cuBLASLt candidates timed,
 * cuDNN's Find): most of its build time.  A saved plan keeps, per stage,
 * the decisions its backend made (backend/choices.h), with what they were
 * made for: the model's content key, the input shape, the placement, the
 * mtmi version, and each stage backend's identity line (CUDA: the GPU
 * model, driver, cuBLASLt and cuDNN versions).  Loading checks every one
 * of those against the run and refuses, in one line naming the
 * difference, a plan made elsewhere or of something else; then the stages'
 * backends take their decisions from it instead of measuring.
 *
 * The file (all text up to the end of the header, so `head` shows what a
 * plan is):
 *
 *     MTMI saved plan 1                     format version
 *     mtmi 0.1.0
 *     model 9f2c...                         mt_model_content_key, 16 hex
 *     cache none | <16 hex>                 calibration cache content key
 *     input 1x3x1024x1024
 *     image_input 0|1
 *     placement encoder=cuda:0/fp16,...
 *     tuning - | <switches>
 *     stages 3
 *     stage encoder cuda:0/fp16 <bytes> <identity line, or ->
 *     ...
 *     end
 *     <each stage's decision records, back to back, <bytes> each>
 *     checksum <16 hex>                     mt_hash64 of every byte before
 *
 * Who uses which part:
 *   field            mt_planfile_from_pipeline  write  parse  check (run)
 *   model_key ...    caller fills               W      R      compared by the caller
 *   placement        W                          W      R      becomes the run's placement
 *   stage_*          W                          W      R      R (identity, devices)
 *   choices          W (copies)                 W      R      handed to the pipeline
 */
#ifndef MT_PLANFILE_H
#define MT_PLANFILE_H

#include "backend/choices.h"
#include "pipeline/pipeline.h"

#define MT_PLANFILE_FORMAT 1
#define MT_PLANFILE_MAX_BYTES ((size_t)64 << 20)

typedef struct mt_planfile {
    char mtmi_version[32];
    uint64_t model_key;
    int has_cache;
    uint64_t cache_key;
    int image_input;
    int rank;
    int64_t dims[MT_MAX_RANK];
    char placement[1024];
    char tuning[512];           /* "" = defaults */
    int nstages;
    char stage_name[MT_PLACE_MAX][64];
    char stage_dev[MT_PLACE_MAX][64];
    char identity[MT_PLACE_MAX][256]; /* "" = the backend has none */
    mt_choices choices[MT_PLACE_MAX];
} mt_planfile;

/* Stages, devices, identities, decisions and placement of a built
 * pipeline; the caller sets model_key, cache, input, image_input, tuning. */
mtmi_status mt_planfile_from_pipeline(const mt_pipeline *p, mt_planfile *pf);
/* Writes pf to path atomically (a temporary file renamed over it). */
mtmi_status mt_planfile_write(const char *path, const mt_planfile *pf);
/* Reads and parses path (at most MT_PLANFILE_MAX_BYTES); one-line errors
 * name the file and what is wrong (not a saved plan, another format,
 * truncated, checksum). */
mtmi_status mt_planfile_read(const char *path, mt_planfile *pf);
mtmi_status mt_planfile_parse(const unsigned char *data, size_t n, const char *name, mt_planfile *pf);
/* The machine side of the checks: the mtmi version, and for each stage
 * the identity its backend gives now against the saved one. */
mtmi_status mt_planfile_check_machine(const mt_planfile *pf, const char *name);
/* The run side: the plan was made of this model (content key), this
 * calibration cache (content key; has_cache 0 = none) and the same kind of
 * input (image_input).  The caller adopts its placement and input shape
 * (or refuses ones given that differ). */
mtmi_status mt_planfile_check_run(const mt_planfile *pf, const char *name, uint64_t model_key, int has_cache, uint64_t cache_key,
                                  int image_input);
/* The content key of a calibration cache file (planfile's "cache" line). */
mtmi_status mt_planfile_cache_key(const char *path, uint64_t *key);

/* What a plan is made of beside its stages, as a run has it: the model's
 * and the calibration cache's content keys, the input kind, and (for
 * mt_planfile_save; set by the caller) the model's input 0, N x C x H x W
 * for images (an image pipeline's N x H x W x 3 frames stand for
 * N x 3 x H x W). */
typedef struct mt_plan_subject {
    uint64_t model_key, cache_key;
    int has_cache, image_input;
    int rank;
    int64_t dims[MT_MAX_RANK];
} mt_plan_subject;
/* The keys of model m and of the cache at calib_path (NULL = none). */
mtmi_status mt_plan_subject_of(const mtmi_model *m, const char *calib_path, int image_input, mt_plan_subject *out);
/* mt_planfile_read, then mt_planfile_check_machine. */
mtmi_status mt_planfile_open(const char *path, mt_planfile *pf);
/* A placement given beside the plan must put every stage where the plan
 * does (written another way is fine; "auto" is refused). */
mtmi_status mt_planfile_check_placement(const mt_planfile *pf, const char *name, const char *given);
/* Pipeline p's saved plan (its stages and decisions, subject's keys and
 * input, the tuning string or NULL) written to path. */
mtmi_status mt_planfile_save(const mt_pipeline *p, const mt_plan_subject *subject, const char *tuning, const char *path);
void mt_planfile_free(mt_planfile *pf);

#endif
