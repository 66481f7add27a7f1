# nn operators (Conv, ConvTranspose, MatMul, Gemm, norms, pools, Resize)
# against ONNX Runtime, and the fused conv/GEMM kernels in C.
mtmi_py_test(nn_ops tests/nn/test_nn_ops.py)
mtmi_py_test(nn_bad_input tests/nn/test_nn_bad_input.py)
set_tests_properties(nn_bad_input PROPERTIES LABELS "ort;sanitize")
