# Library API discipline and bad input through the command line.
mtmi_c_test(test_api tests/api/test_api.c)
mtmi_py_test(bad_input tests/api/test_bad_input.py)
set_tests_properties(bad_input PROPERTIES LABELS "ort;sanitize")
mtmi_py_test(dynamic_shapes tests/api/test_dynamic_shapes.py)
