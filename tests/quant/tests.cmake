# INT8 quantization: caches, calibration, INT8 kernels, accuracy.
mtmi_c_test(test_quant tests/quant/test_quant.c)
mtmi_c_test(test_cache_version tests/quant/test_cache_version.c)
mtmi_c_test(test_reassoc tests/quant/test_reassoc.c)
add_executable(quant_entropy_tool ${CMAKE_SOURCE_DIR}/tests/quant/entropy_tool.c)
target_include_directories(quant_entropy_tool PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(quant_entropy_tool PRIVATE mtmi)
mtmi_py_test(quant_entropy tests/quant/test_entropy.py $<TARGET_FILE:quant_entropy_tool>)
mtmi_py_test(quant_int8_conv tests/quant/test_int8_conv.py)
# The same on the AVX2 path of the INT8 kernels (CPUs without AVX-512 VNNI,
# where the default run above takes the VNNI path).
mtmi_py_test(quant_int8_conv_avx2 tests/quant/test_int8_conv.py)
set_tests_properties(quant_int8_conv_avx2 PROPERTIES ENVIRONMENT_MODIFICATION "MTMI_NO_AVX512=set:1")
mtmi_py_test(quant_accuracy tests/quant/test_accuracy.py)
mtmi_py_test(quant_cli tests/quant/test_quant_cli.py)
mtmi_py_test(quant_qdq_export tests/quant/test_qdq_export.py)
# Q/DQ models made by ONNX Runtime's quantize_static, run without a cache.
add_executable(qdq_weights_tool ${CMAKE_SOURCE_DIR}/tests/quant/qdq_weights_tool.c)
target_include_directories(qdq_weights_tool PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(qdq_weights_tool PRIVATE mtmi)
mtmi_py_test(quant_qdq_import tests/quant/test_qdq_import.py $<TARGET_FILE:qdq_weights_tool>)
