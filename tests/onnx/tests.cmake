# ONNX's own backend node tests, for every operator `mtmi ops` claims.
mtmi_py_test(onnx_node_backend tests/onnx/test_node_backend.py)
# Older-opset forms (attributes that became inputs, Softmax axis semantics)
# against ONNX Runtime.
mtmi_py_test(onnx_opset_variants tests/onnx/test_opset_variants.py)
# Hostile bytes for the loader (nesting, malformed wire data, versions) and
# the fold budget on the reference exports at 1024x1024 (skipped, visibly,
# without ../shared).
mtmi_c_test(test_onnx_hostile tests/onnx/test_onnx_hostile.c)
add_test(NAME test_onnx_hostile_ref COMMAND ${MTMI_TEST_SCRATCH} $<TARGET_FILE:test_onnx_hostile> ${CMAKE_SOURCE_DIR}/../shared)
set_tests_properties(test_onnx_hostile_ref PROPERTIES LABELS "unit;sanitize" TIMEOUT 600 SKIP_RETURN_CODE 77)
