# The multi-frame pipeline: exact outputs vs the serial run, overlap, error
# shutdown, flat memory.  ThreadSanitizer build (not in CI; see
# src/pipeline/README.md):
#   cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMTMI_NO_CUDA=ON \
#         -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread
#   make -C build-tsan test_pipeline && build-tsan/tests/test_pipeline --quick
mtmi_c_test(test_pipeline tests/pipeline/test_pipeline.c)
# `mtmi run` / `mtmi bench` end to end (needs numpy; small 64x64 model).
mtmi_py_test(pipeline_run tests/pipeline/test_run.py)
