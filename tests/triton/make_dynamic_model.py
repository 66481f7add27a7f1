"""A small two-head network with symbolic height and width (as PyTorch's
exporter writes dynamic axes), for the Triton test's any-size model: one
shared feature (3x3 conv, stride 2), a 19-class segmentation head and a
sigmoid depth head, each resized back to the input's size from Shape ops.
Usage: make_dynamic_model.py OUT.onnx [SEED]   (run with .venv's python: onnx)"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else 19)
X = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])
SEG = helper.make_tensor_value_info("seg", TensorProto.FLOAT, [1, 19, "height", "width"])
DEPTH = helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, "height", "width"])
w = lambda *s: (rng.standard_normal(s) / np.sqrt(np.prod(s[1:]))).astype(np.float32)
inits = [numpy_helper.from_array(a, n) for a, n in [
    (w(16, 3, 3, 3), "enc.w"), (rng.standard_normal(16).astype(np.float32) * 0.1, "enc.b"),
    (w(19, 16, 1, 1) * 3, "seg.w"), (rng.standard_normal(19).astype(np.float32) * 0.1, "seg.b"),
    (w(1, 16, 1, 1), "depth.w"), (np.zeros(1, np.float32), "depth.b"),
    (np.array([0], np.int64), "i0"), (np.array([2], np.int64), "i2"), (np.array([4], np.int64), "i4")]]
nodes = [
    helper.make_node("Conv", ["input", "enc.w", "enc.b"], ["enc.c"], strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
    helper.make_node("Relu", ["enc.c"], ["feat"]),
    helper.make_node("Shape", ["input"], ["xs"]),
    helper.make_node("Slice", ["xs", "i2", "i4"], ["hw"]),
    helper.make_node("Conv", ["feat", "seg.w", "seg.b"], ["seg.c"], kernel_shape=[1, 1]),
    helper.make_node("Shape", ["seg.c"], ["seg.s"]),
    helper.make_node("Slice", ["seg.s", "i0", "i2"], ["seg.nc"]),
    helper.make_node("Concat", ["seg.nc", "hw"], ["seg.sizes"], axis=0),
    helper.make_node("Resize", ["seg.c", "", "", "seg.sizes"], ["seg"], mode="linear", coordinate_transformation_mode="half_pixel"),
    helper.make_node("Conv", ["feat", "depth.w", "depth.b"], ["depth.c"], kernel_shape=[1, 1]),
    helper.make_node("Sigmoid", ["depth.c"], ["depth.s"]),
    helper.make_node("Shape", ["depth.s"], ["depth.sh"]),
    helper.make_node("Slice", ["depth.sh", "i0", "i2"], ["depth.nc"]),
    helper.make_node("Concat", ["depth.nc", "hw"], ["depth.sizes"], axis=0),
    helper.make_node("Resize", ["depth.s", "", "", "depth.sizes"], ["depth"], mode="linear",
                     coordinate_transformation_mode="half_pixel"),
]
m = helper.make_model(helper.make_graph(nodes, "mtmi_dyn", [X], [SEG, DEPTH], inits), opset_imports=[helper.make_opsetid("", 17)])
onnx.checker.check_model(m)
onnx.save(m, out)
