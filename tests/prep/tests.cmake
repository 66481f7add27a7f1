# Model preparation: the ONNX writer, simplify, split and the built-in MTMI
# network (make-model), checked structurally in C and against ONNX Runtime.
mtmi_c_test(test_prep tests/prep/test_prep.c)
mtmi_py_test(prep_make_model tests/prep/test_make_model.py)
mtmi_py_test(prep_simplify tests/prep/test_simplify.py)
mtmi_py_test(prep_split tests/prep/test_split.py)
mtmi_py_test(prep_bad_input tests/prep/test_prep_bad_input.py)
mtmi_py_test(prep_roundtrip tests/prep/test_roundtrip.py)
