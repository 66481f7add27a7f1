/* classify: libmtmi from a program of your own.  Loads an ONNX model,
 * builds a plan on a device, runs it on a PNG and prints the histogram of
 * the class map (the argmax over the channels of the first output that has
 * several; for the MTMI network, the segmentation head's 19 classes).
 *
 *   classify MODEL.onnx IMAGE.png [DEVICE]      (DEVICE: cpu, cuda:0/fp16, ...)
 *
 * Build against an installed mtmi (README.md, "Using the library"):
 *   cc -o classify classify.c $(pkg-config --cflags --libs mtmi)
 *   cmake -S examples -B ex -DCMAKE_PREFIX_PATH=PREFIX && cmake --build ex
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mtmi.h>

/* Cityscapes' training classes, the MTMI segmentation head's order. */
static const char *const k_names[19] = {"road",  "sidewalk", "building", "wall",       "fence", "pole",  "traffic light",
                                        "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car",
                                        "truck", "bus", "train", "motorcycle", "bicycle"};

static int fail(const char *what) {
    fprintf(stderr, "classify: %s: %s\n", what, mtmi_last_error());
    return 1;
}

static void shape_str(int rank, const int64_t *d, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < rank && n < cap; i++) n += snprintf(buf + n, cap - n, "%s%lld", i ? "x" : "", (long long)d[i]);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: classify MODEL.onnx IMAGE.png [DEVICE]\n");
        return 2;
    }
    const char *device = argc > 3 ? argv[3] : "cpu";
    printf("libmtmi %s (compiled against %s)\n", mtmi_version(), MTMI_VERSION);

    mtmi_model *model = NULL;
    mtmi_plan *plan = NULL;
    float *input = NULL, *logits = NULL;
    int rc = 1;
    if (mtmi_model_load(argv[1], NULL, &model) != MTMI_OK) return fail("load");

    /* The input: one NCHW image; dimensions the model leaves open are
     * taken as batch 1 and 512x512. */
    mtmi_tensor in = {.dtype = MTMI_FLOAT};
    if (mtmi_model_num_inputs(model) != 1 || mtmi_model_input_shape(model, 0, &in.rank, in.dims) != MTMI_OK || in.rank != 4) {
        fprintf(stderr, "classify: the model must have one NCHW image input\n");
        goto done;
    }
    const int64_t open_dims[4] = {1, 3, 512, 512};
    for (int d = 0; d < 4; d++)
        if (in.dims[d] < 0) in.dims[d] = open_dims[d];
    if (in.dims[0] != 1 || in.dims[1] != 3) {
        fprintf(stderr, "classify: the input must be 1x3xHxW\n");
        goto done;
    }
    mtmi_plan_options opt = {.device = device, .num_input_shapes = 1, .input_shapes = &in};
    if (mtmi_plan_create(model, &opt, &plan) != MTMI_OK) {
        rc = fail("plan");
        goto done;
    }

    const int h = (int)in.dims[2], w = (int)in.dims[3];
    input = malloc(sizeof(float) * 3 * (size_t)h * w);
    if (!input) goto done;
    if (mtmi_image_load(argv[2], h, w, input) != MTMI_OK) {
        rc = fail("image");
        goto done;
    }
    in.data = input;

    /* Every output gets a buffer of its size; the class map is taken from
     * the first one with several channels. */
    const int nout = mtmi_model_num_outputs(model);
    mtmi_tensor out[16];
    int cls = -1;
    if (nout > 16) goto done;
    memset(out, 0, sizeof out);
    for (int i = 0; i < nout; i++) {
        if (mtmi_plan_output_shape(plan, i, &out[i].rank, out[i].dims) != MTMI_OK) {
            rc = fail("output shape");
            goto done;
        }
        size_t n = 1;
        for (int d = 0; d < out[i].rank; d++) n *= (size_t)out[i].dims[d];
        if (!(out[i].data = malloc(sizeof(float) * (n ? n : 1)))) goto free_out;
        if (cls < 0 && out[i].rank == 4 && out[i].dims[1] > 1) cls = i;
    }
    char sh[64], osh[64];
    shape_str(in.rank, in.dims, sh, sizeof sh);
    printf("model %s: input '%s' %s on %s\n", argv[1], mtmi_model_input_name(model, 0), sh, device);
    if (cls < 0) {
        fprintf(stderr, "classify: no output has several channels (NxCxHxW, C > 1)\n");
        goto free_out;
    }
    if (mtmi_plan_run(plan, &in, 1, out, nout) != MTMI_OK) {
        rc = fail("run");
        goto free_out;
    }

    /* argmax over the channels, the first of equal maxima */
    const int64_t c = out[cls].dims[1], oh = out[cls].dims[2], ow = out[cls].dims[3], hw = oh * ow;
    int64_t *hist = calloc((size_t)c, sizeof *hist);
    if (!hist) goto free_out;
    logits = out[cls].data;
    for (int64_t p = 0; p < hw; p++) {
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (logits[k * hw + p] > logits[best * hw + p]) best = k;
        hist[best]++;
    }
    shape_str(out[cls].rank, out[cls].dims, osh, sizeof osh);
    printf("output '%s' %s: class histogram of %lldx%lld = %lld pixels\n", mtmi_model_output_name(model, cls), osh,
           (long long)oh, (long long)ow, (long long)hw);
    int64_t total = 0;
    for (int64_t k = 0; k < c; k++) {
        printf("  class %2lld %-14s %lld\n", (long long)k, c == 19 ? k_names[k] : "", (long long)hist[k]);
        total += hist[k];
    }
    printf("total %lld\n", (long long)total);
    free(hist);
    rc = 0;
free_out:
    for (int i = 0; i < nout; i++) free(out[i].data);
done:
    free(input);
    mtmi_plan_free(plan);
    mtmi_model_free(model);
    return rc;
}
