# Graph passes: fusion patterns, fused kernels, and whole reference models
# against ONNX Runtime.
mtmi_c_test(test_fused_kernels tests/graph/test_fused_kernels.c)
# Every case must run: a missing kernel is a failure, not a skip.
mtmi_py_test(fusion_patterns tests/graph/test_fusion_patterns.py)

# The reference network from both exports against ONNX Runtime (FP32, per
# element, on discriminative outputs): small sizes, batch 2, opset 13, a
# non-square size, and one full 1024x1024 run (label "slow", still part of
# CI).  ../shared is always there in CI: without it these fail.
mtmi_py_test(ref_models_256 tests/graph/test_reference_models.py ts_256 dyn_256 ts_op13_256 dyn_op13_256 ts_224x352)
mtmi_py_test(ref_models_batch2 tests/graph/test_reference_models.py ts_b2_256 dyn_b2_256 ts_op13_b2_256 dyn_op13_b2_224x352)
mtmi_py_test(ref_models_512x1024 tests/graph/test_reference_models.py ts_512x1024 dyn_512x1024)
mtmi_py_test(ref_models_1024 tests/graph/test_reference_models.py dyn_1024)
mtmi_py_test(ref_models_fusion tests/graph/test_reference_models.py fusion_ts fusion_dyn fusion_ts_op13 fusion_dyn_op13)
set_tests_properties(ref_models_1024 PROPERTIES LABELS "ort;slow")
mtmi_py_test(make_variants tests/graph/test_make_variants.py)

# Result forms (class map, int8 logits, FP16) against oracles written in the
# test; with --gpu the same on the GPU (FP16 and FP32 plans, the fused
# resize + class map).
mtmi_c_test(test_output_forms tests/graph/test_output_forms.c)
if(MTMI_HAVE_CUDA AND MTMI_GPU_VISIBLE)
  add_test(NAME output_forms_gpu COMMAND ${MTMI_TEST_SCRATCH} $<TARGET_FILE:test_output_forms> --gpu)
  set_tests_properties(output_forms_gpu PROPERTIES LABELS "gpu" SKIP_RETURN_CODE 77)
endif()
