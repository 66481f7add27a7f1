/* engine.h - one model instance's mtmi side: pipelines (one per input size
 * and input kind, built on first use, a few kept) and the run of a batch of
 * frames through them with frames in flight.  Uses only include/mtmi.h and
 * no Triton type, so the unit test drives it without a server. */
#ifndef MTMI_TRITON_ENGINE_H
#define MTMI_TRITON_ENGINE_H

#include <pthread.h>
#include <stdint.h>

#include "mtmi.h"
#include "triton/config.h"

/* The model's two heads, as model output indices. */
typedef struct mtb_roles {
    int seg, depth;
} mtb_roles;
/* The segmentation and depth outputs: the configured names, else the
 * outputs whose names contain "seg" / "depth".  0, or -1 with err. */
int mtb_find_roles(const mtmi_model *m, const mtb_config *c, mtb_roles *r, char *err, size_t cap);

/* A pipeline for one input size and kind. */
typedef struct mtb_entry {
    mtmi_pipeline *pipe;
    int image, h, w;           /* uint8 frames or float input; the size       */
    uint64_t last_used, batch; /* LRU clock; the batch that last used it       */
    int res[MTB_NOUT];         /* the pipeline result of each output (-1 = not made) */
    int nres;
    /* Per frame (no batch dimension): each output's shape and bytes. */
    int rank[MTB_NOUT];
    int64_t dims[MTB_NOUT][MTMI_MAX_RANK];
    size_t bytes[MTB_NOUT];
    size_t in_bytes;           /* one frame's input */
} mtb_entry;

typedef struct mtb_engine {
    mtmi_model *model;          /* shared by the model's instances ...        */
    pthread_mutex_t *model_mu;  /* ... which build pipelines from it one at a time */
    const mtb_config *cfg;
    mtb_roles roles;
    char placement[512];        /* this instance's */
    const char *calib_path;     /* NULL = none */
    const char *plan_path;      /* a saved plan (parameter plan_file); NULL = none */
    int plan_refused;           /* an entry it did not fit compiled instead (noted once) */
    char plan_note[512];        /* why, for the backend's log */
    mtb_entry *entries;
    int nentries;
    uint64_t clock, batch;
} mtb_engine;

void mtb_engine_init(mtb_engine *e, mtmi_model *m, pthread_mutex_t *mu, const mtb_config *cfg, const mtb_roles *roles,
                     const char *placement, const char *calib_path);
void mtb_engine_free(mtb_engine *e);
/* Starts a batch: pipelines used from now on are kept until the next one. */
void mtb_engine_begin_batch(mtb_engine *e);
/* The pipeline for h x w frames (image: uint8 HWC; else float CHW), built
 * if new (evicting the least recently used one not used by this batch).
 * 0, or -1 with mtmi's message (or the backend's) in err. */
int mtb_engine_entry(mtb_engine *e, int image, int h, int w, mtb_entry **out, char *err, size_t cap);

/* One frame of a batch: its pipeline, its input, and where each output
 * goes (NULL = not wanted).  `fail` is shared by the frames of a request:
 * the first failure's message lands there; frames after a failed one of the
 * same request still run (the pipeline keeps its order) but their outputs
 * are not sent. */
typedef struct mtb_frame {
    mtb_entry *entry;
    const void *input;
    void *out[MTB_NOUT];
    char *fail;                /* request's message buffer ("" = no failure yet) */
    size_t fail_cap;
} mtb_frame;

/* Runs frames in order: each submitted as soon as a slot is free, results
 * collected oldest first, so up to frames_in_flight frames overlap across
 * requests.  A pipeline that fails fails its frames in flight, is dropped
 * and built again on next use. */
void mtb_engine_run(mtb_engine *e, mtb_frame *frames, int n);

#endif
