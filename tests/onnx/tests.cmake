# ONNX's own backend node tests, for every operator `mtmi ops` claims.
mtmi_py_test(onnx_node_backend tests/onnx/test_node_backend.py)
