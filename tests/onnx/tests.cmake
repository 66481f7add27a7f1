# ONNX's own backend node tests, for every operator `mtmi ops` claims.
mtmi_py_test(onnx_node_backend tests/onnx/test_node_backend.py)
# Older-opset forms (attributes that became inputs, Softmax axis semantics)
# against ONNX Runtime.
mtmi_py_test(onnx_opset_variants tests/onnx/test_opset_variants.py)
