# The Python package (python/, issue 17) against the library just built:
# pytest on python/tests with $MTMI_LIBRARY = this build's libmtmi.so,
# against ONNX Runtime (label "ort"; needs .venv with pytest).  The
# package's own install into a fresh venv is scripts/test_package.sh's.
add_executable(abi_layout ${CMAKE_SOURCE_DIR}/tests/python/abi_layout.c)
target_include_directories(abi_layout PRIVATE ${CMAKE_SOURCE_DIR}/include)
set(MTMI_PY_ENV "MTMI_LIBRARY=$<TARGET_FILE:mtmi_shared>;MTMI_ABI_LAYOUT=$<TARGET_FILE:abi_layout>;MTMI_BIN=$<TARGET_FILE:mtmi_cli>;MTMI_SOURCE_DIR=${CMAKE_SOURCE_DIR};PYTHONPATH=${CMAKE_SOURCE_DIR}/python;PYTHONUNBUFFERED=1;PYTHONDONTWRITEBYTECODE=1")
add_test(NAME python_pkg COMMAND ${MTMI_TEST_SCRATCH} ${Python3_EXECUTABLE} -m pytest -q -rA -p no:cacheprovider -m "not gpu"
         ${CMAKE_SOURCE_DIR}/python/tests)
set_tests_properties(python_pkg PROPERTIES LABELS "ort;python" TIMEOUT 900 ENVIRONMENT "${MTMI_PY_ENV}")
# On a GPU: the CUDA cases (plans in FP32 and FP16 against ONNX Runtime, a
# pipeline on the GPU); registered where tests/cuda found a GPU.
if(MTMI_HAVE_CUDA AND MTMI_GPU_VISIBLE)
  add_test(NAME python_pkg_gpu COMMAND ${MTMI_TEST_SCRATCH} ${Python3_EXECUTABLE} -m pytest -q -rA -p no:cacheprovider -m gpu
           ${CMAKE_SOURCE_DIR}/python/tests)
  set_tests_properties(python_pkg_gpu PROPERTIES LABELS "gpu;python" TIMEOUT 900 ENVIRONMENT "${MTMI_PY_ENV}")
endif()
