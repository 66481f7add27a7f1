# The Triton Inference Server backend (src/triton, docs/TRITON.md).
# Its parts without a server: the config reader, instance placements, the
# batch run through the pipelines against the plan API.  Linked like the
# backend (mtmi_triton_core and the library it names, MTMI_TRITON_LIBMTMI),
# not through mtmi_c_test: with libmtmi.so the test must not hold a second,
# static copy of the library (two copies keep two last errors).
add_executable(test_triton_units ${CMAKE_SOURCE_DIR}/tests/triton/test_triton_units.c)
target_include_directories(test_triton_units PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(test_triton_units PRIVATE mtmi_triton_core)
add_test(NAME test_triton_units COMMAND ${MTMI_TEST_SCRATCH} $<TARGET_FILE:test_triton_units>)
set_tests_properties(test_triton_units PROPERTIES LABELS "unit;sanitize" TIMEOUT 600)
# A real tritonserver (from PyPI: scripts/triton_deps.sh makes .venv-triton)
# loading the installed libtriton_mtmi.so on 127.0.0.1: HTTP and gRPC, one
# request, batches, 16 clients at once, malformed requests, shutdown.
if(TARGET triton_mtmi)
  add_test(NAME triton_server COMMAND ${MTMI_TEST_SCRATCH} bash ${CMAKE_SOURCE_DIR}/scripts/triton_test.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(triton_server PROPERTIES LABELS "triton" TIMEOUT 900
    ENVIRONMENT "MTMI_BIN=$<TARGET_FILE:mtmi_cli>;PYTHONUNBUFFERED=1")
  # The load client scripts/triton_perf.py against the same kind of server:
  # its counts against the server's statistics, percentiles, overlap at
  # concurrency 4, references against mtmi infer, a client that must fail.
  add_test(NAME triton_perf COMMAND ${MTMI_TEST_SCRATCH} bash ${CMAKE_SOURCE_DIR}/scripts/triton_test.sh ${CMAKE_BINARY_DIR}
           test_triton_perf.py)
  set_tests_properties(triton_perf PROPERTIES LABELS "triton" TIMEOUT 300
    ENVIRONMENT "MTMI_BIN=$<TARGET_FILE:mtmi_cli>;PYTHONUNBUFFERED=1")
endif()
