/* config.h - what the mtmi Triton backend reads of a model's config.pbtxt
 * (as the JSON Triton gives the backend), checked once when the model
 * loads, and the placement of one model instance.  No Triton types here:
 * tests/triton/test_triton_units.c runs these without a server. */
#ifndef MTMI_TRITON_CONFIG_H
#define MTMI_TRITON_CONFIG_H

#include <stddef.h>

/* The backend's fixed tensor names (docs/TRITON.md). */
#define MTB_IN_IMAGE "image"   /* uint8 RGB frames, [H, W, 3] per batch item   */
#define MTB_IN_FLOAT "input"   /* the model's float input, [3, H, W]          */
enum { MTB_OUT_CLASSES, MTB_OUT_DEPTH, MTB_OUT_LOGITS, MTB_OUT_SCALE, MTB_NOUT };
extern const char *const mtb_output_names[MTB_NOUT]; /* classes, depth, logits, logits_scale */

#define MTB_PATH_MAX 1024

typedef struct mtb_config {
    /* parameters { key: ... value: { string_value: ... } } */
    char model_file[MTB_PATH_MAX];   /* "model_file", default model.onnx (in the version folder) */
    char placement[512];             /* "placement"; "" = the instance kind's default */
    char calibration_cache[MTB_PATH_MAX]; /* "calibration_cache"; "" = none */
    char plan_file[MTB_PATH_MAX];    /* "plan_file"; "" = none */
    char seg_output[128];            /* "seg_output"; "" = found by name */
    char depth_output[128];          /* "depth_output"; "" = found by name */
    int frames_in_flight;            /* "frames_in_flight", default 2 */
    int threads;                     /* "threads", CPU threads; 0 = all cores */
    int max_sizes;                   /* "max_input_sizes": pipelines kept, one per input size; default 4 */
    /* The rest of the config. */
    int max_batch_size;              /* 0 = requests carry no batch dimension */
    int has_image, has_float;        /* which inputs the config declares */
    long image_h, image_w;           /* their declared sizes (-1 = any) */
    long float_h, float_w;
    int want[MTB_NOUT];              /* which outputs the config declares */
    int depth_fp16;                  /* depth is TYPE_FP16 (else TYPE_FP32) */
} mtb_config;

/* Reads the config JSON (TRITONBACKEND_ModelConfig).  0, or -1 with a
 * one-line message saying what is wrong and what is allowed. */
int mtb_config_parse(const char *json, size_t len, mtb_config *c, char *err, size_t cap);

/* The placement of one model instance.  KIND_CPU (and AUTO / MODEL):
 * the placement as written, default "cpu".  KIND_GPU on device d: default
 * "cuda:0/fp16"; every "cuda:N" names GPU N counted from the instance's
 * own (cuda:0 is GPU d), so one placement serves the instance on each GPU;
 * "auto" (mtmi's choice, always GPU 0) only for the instance on GPU 0.
 * 0, or -1 with the message in err. */
enum { MTB_KIND_CPU, MTB_KIND_GPU };
int mtb_instance_placement(const char *placement, int kind, int device, char *out, size_t cap, char *err, size_t errcap);

#endif
