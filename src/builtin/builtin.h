/* builtin: the default model of `mtmi run`, `bench`, `calibrate`,
 * `accuracy` and `eval` when no model is given: the trained MTMI network
 * (models/mtmi_trained.onnx, made by scripts/train_mtmi.py on `mtmi synth`
 * scenes) when its file is found, else the reference network with seeded
 * random ("spread") weights, as before any training.
 *
 * Where the trained file is looked for, first found wins:
 *   1. the caller's choice: a path (an error if it cannot be loaded), or
 *      "none" for the random-weight network (the CLI passes
 *      $MTMI_TRAINED_MODEL: the library reads no environment);
 *   2. <folder of the executable>/../models/mtmi_trained.onnx (a build
 *      folder inside the source tree: build/mtmi);
 *   3. <folder of the executable>/../share/mtmi/mtmi_trained.onnx
 *      (installed);
 *   4. <source tree at build time>/models/mtmi_trained.onnx.
 * Nothing has to be switched once the file exists: it is found. */
#ifndef MT_BUILTIN_H
#define MT_BUILTIN_H

#include "core/core.h"

#define MT_TRAINED_FILE "mtmi_trained.onnx"

/* The trained model's file into path (cap bytes): 1 if found, 0 if not
 * (or choice is "none"); choice NULL or "" = look in the places above. */
int mt_builtin_trained_path(const char *choice, char *path, size_t cap);
/* The default model at h x w (multiples of 32; 0 = 1024): the MTMI
 * network built in C at that size, with the trained weights when the
 * file is found (the export's float or float16 weights, matched in the
 * order the network reads them), else with seeded random ("spread")
 * weights.  desc (cap bytes) says which. */
mtmi_status mt_builtin_model(const char *choice, uint64_t seed, int h, int w, mtmi_model **out, char *desc, size_t cap);

#endif
