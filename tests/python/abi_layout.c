/* abi_layout: the sizes and field offsets of include/mtmi.h's structures,
 * one "name size" or "name.field offset" per line, for the Python
 * package's layout test (python/tests/test_abi.py): its ctypes mirror must
 * match, or a field added here and not there would shift every field after
 * it without any error. */
#include <stddef.h>
#include <stdio.h>

#include "mtmi.h"

#define SIZE(T) printf("%s %zu\n", #T, sizeof(T))
#define FIELD(T, f) printf("%s.%s %zu\n", #T, #f, offsetof(T, f))

int main(void) {
    SIZE(mtmi_tensor);
    FIELD(mtmi_tensor, dtype), FIELD(mtmi_tensor, rank), FIELD(mtmi_tensor, dims), FIELD(mtmi_tensor, data);
    SIZE(mtmi_load_options);
    FIELD(mtmi_load_options, fill_missing_weights), FIELD(mtmi_load_options, seed), FIELD(mtmi_load_options, no_optimize);
    FIELD(mtmi_load_options, max_random_bytes), FIELD(mtmi_load_options, max_fold_bytes);
    SIZE(mtmi_reference_options);
    FIELD(mtmi_reference_options, seed), FIELD(mtmi_reference_options, height), FIELD(mtmi_reference_options, width);
    FIELD(mtmi_reference_options, batch), FIELD(mtmi_reference_options, init);
    SIZE(mtmi_save_options);
    FIELD(mtmi_save_options, simplify), FIELD(mtmi_save_options, keep_fused), FIELD(mtmi_save_options, external_threshold);
    FIELD(mtmi_save_options, num_input_shapes), FIELD(mtmi_save_options, input_shapes);
    SIZE(mtmi_calibrate_options);
    FIELD(mtmi_calibrate_options, method), FIELD(mtmi_calibrate_options, percentile), FIELD(mtmi_calibrate_options, subgraph);
    FIELD(mtmi_calibrate_options, threads), FIELD(mtmi_calibrate_options, tuning);
    SIZE(mtmi_plan_options);
    FIELD(mtmi_plan_options, device), FIELD(mtmi_plan_options, precision), FIELD(mtmi_plan_options, threads);
    FIELD(mtmi_plan_options, num_input_shapes), FIELD(mtmi_plan_options, input_shapes);
    FIELD(mtmi_plan_options, calibration_cache), FIELD(mtmi_plan_options, tuning);
    SIZE(mtmi_result_request);
    FIELD(mtmi_result_request, output), FIELD(mtmi_result_request, forms), FIELD(mtmi_result_request, on_device);
    SIZE(mtmi_pipeline_options);
    FIELD(mtmi_pipeline_options, placement), FIELD(mtmi_pipeline_options, frames_in_flight), FIELD(mtmi_pipeline_options, threads);
    FIELD(mtmi_pipeline_options, calibration_cache), FIELD(mtmi_pipeline_options, input_shape);
    FIELD(mtmi_pipeline_options, results), FIELD(mtmi_pipeline_options, nresults), FIELD(mtmi_pipeline_options, tuning);
    FIELD(mtmi_pipeline_options, image_input), FIELD(mtmi_pipeline_options, saved_plan);
    SIZE(mtmi_result_info);
    FIELD(mtmi_result_info, name), FIELD(mtmi_result_info, output), FIELD(mtmi_result_info, form);
    FIELD(mtmi_result_info, is_scale), FIELD(mtmi_result_info, dtype), FIELD(mtmi_result_info, rank);
    FIELD(mtmi_result_info, dims), FIELD(mtmi_result_info, on_device), FIELD(mtmi_result_info, device);
    return 0;
}
