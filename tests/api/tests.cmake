# Library API discipline and bad input through the command line.
mtmi_c_test(test_api tests/api/test_api.c)
mtmi_py_test(bad_input tests/api/test_bad_input.py)
set_tests_properties(bad_input PROPERTIES LABELS "ort;sanitize")
mtmi_py_test(dynamic_shapes tests/api/test_dynamic_shapes.py)
# Hostile files and careless use (issue 13): nesting, size overflow, files
# outside the model's folder, FIFOs, memory bombs, invalid versions, output
# collisions, -o over an input, stale features, signals, clear errors.
mtmi_py_test(hardening tests/api/test_hardening.py)
set_tests_properties(hardening PROPERTIES LABELS "ort;sanitize")
# The packaged library (issue 17): libmtmi.so exports exactly the header's
# MTMI_API functions, libmtmi.a's objects are compiled with hidden
# visibility, the SONAME carries the major version.
add_test(NAME exports COMMAND ${MTMI_TEST_SCRATCH} bash ${CMAKE_SOURCE_DIR}/tests/api/test_exports.sh $<TARGET_FILE:mtmi_shared>
         $<TARGET_FILE:mtmi_static> ${CMAKE_SOURCE_DIR}/include/mtmi.h)
set_tests_properties(exports PROPERTIES LABELS "unit" TIMEOUT 60)
# The installed tree as a consumer sees it: `cmake --install` into a
# temporary prefix, examples/classify.c built against it with pkg-config
# (shared, static) and find_package(mtmi) (mtmi::mtmi, mtmi::mtmi_static),
# each run on a generated scene (scripts/test_package.sh; its --python-only
# part, the pip install into a fresh venv, runs in scripts/test.sh).
add_test(NAME package_install COMMAND ${MTMI_TEST_SCRATCH} bash ${CMAKE_SOURCE_DIR}/scripts/test_package.sh --c-only)
set_tests_properties(package_install PROPERTIES LABELS "package" TIMEOUT 300
  ENVIRONMENT "MTMI_BUILD_DIR=${CMAKE_BINARY_DIR}")
