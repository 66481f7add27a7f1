# nn operators (Conv, ConvTranspose, MatMul, Gemm, norms, pools, Resize)
# against ONNX Runtime, and the fused conv/GEMM kernels in C.
mtmi_py_test(nn_ops tests/nn/test_nn_ops.py)
