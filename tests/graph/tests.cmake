# Graph passes: fusion patterns, fused kernels, and whole reference models
# against ONNX Runtime.
mtmi_c_test(test_fused_kernels tests/graph/test_fused_kernels.c)
mtmi_py_test(fusion_patterns tests/graph/test_fusion_patterns.py)
set_tests_properties(fusion_patterns PROPERTIES SKIP_RETURN_CODE 77)
