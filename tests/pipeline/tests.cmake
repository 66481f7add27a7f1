# The multi-frame pipeline: exact outputs vs the serial run, overlap, error
# shutdown, flat memory.  ThreadSanitizer build (not in CI; see
# src/pipeline/README.md):
#   cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMTMI_NO_CUDA=ON \
#         -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread
#   make -C build-tsan test_pipeline && build-tsan/tests/test_pipeline --quick
mtmi_c_test(test_pipeline tests/pipeline/test_pipeline.c)
# `mtmi run` / `mtmi bench` end to end (needs numpy; small 64x64 model).
mtmi_py_test(pipeline_run tests/pipeline/test_run.py)
# The pipeline on a GPU (stream-ordered CUDA stages, SM partitions, INT8
# heads): built whenever CUDA is, registered when tests/cuda found a GPU.
if(MTMI_HAVE_CUDA)
  add_executable(test_pipeline_gpu ${CMAKE_SOURCE_DIR}/tests/pipeline/test_pipeline_gpu.c)
  target_include_directories(test_pipeline_gpu PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(test_pipeline_gpu PRIVATE mtmi_app mtmi)
  if(MTMI_GPU_VISIBLE)
    add_test(NAME pipeline_gpu COMMAND ${MTMI_TEST_SCRATCH} $<TARGET_FILE:test_pipeline_gpu>)
    # RUN_SERIAL: its out-of-memory case takes all but 96 MiB of the device
    # first, which would fail any GPU test that ctest -j ran beside it
    set_tests_properties(pipeline_gpu PROPERTIES LABELS "gpu" TIMEOUT 600 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
  endif()
endif()
# Result requests through the public API (class map, int8, fp16; collect vs
# zero-copy collect_results); --gpu: results left in device memory.
mtmi_c_test(test_pipeline_results tests/pipeline/test_pipeline_results.c)
if(MTMI_HAVE_CUDA AND MTMI_GPU_VISIBLE)
  add_test(NAME pipeline_results_gpu COMMAND ${MTMI_TEST_SCRATCH} $<TARGET_FILE:test_pipeline_results> --gpu)
  set_tests_properties(pipeline_results_gpu PROPERTIES LABELS "gpu" SKIP_RETURN_CODE 77)
endif()
# Saved plans (mtmi build): the decision lists and the file, refusals of
# every truncation and changed byte (no GPU needed).
mtmi_c_test(test_planfile tests/pipeline/test_planfile.c)
# `mtmi build` and --plan end to end on the CPU (refusals, same bytes).
mtmi_py_test(saved_plan tests/pipeline/test_saved_plan.py)
