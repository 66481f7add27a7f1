"""The ONNX writer through `mtmi simplify --no-optimize` (load, then save):
on both reference exports the written model has the same nodes, tensors,
inputs and outputs (Constant nodes become initializers), passes the ONNX
checker, and ONNX Runtime gives bit-identical outputs; inline and with
external data."""
import os

import numpy as np
import onnx
from onnx import numpy_helper

from preputil import check, finish, mtmi_ok, tmpdir
from mtmi_testutil import REFERENCE, fill_external_weights, need_shared, run_ort, save_model, test_seed

need_shared("test_roundtrip.py")
SEED = test_seed(0)
tmp = tmpdir()


def tensors(m):
    """name -> array of initializers and Constant nodes' values."""
    t = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            t[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return t


def node_key(n):
    attrs = tuple(sorted((a.name, str(onnx.helper.get_attribute_value(a))) for a in n.attribute))
    return (n.op_type, n.domain, n.name, tuple(n.input), tuple(n.output), attrs)


def io(vs):
    return [(v.name, v.type.tensor_type.elem_type, [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]) for v in vs]


for tag, f in (("torchscript", "mtmi_torchscript_opset17.graph.onnx"), ("dynamo", "mtmi_dynamo_opset17.graph.onnx")):
    src = os.path.join(tmp, tag + ".onnx")
    save_model(fill_external_weights(onnx.load(os.path.join(REFERENCE, f), load_external_data=False), SEED), src)
    a = onnx.load(src)
    for variant, extra in (("inline", []), ("external", ["--external-data", "1024"])):
        dst = os.path.join(tmp, f"{tag}_{variant}.onnx")
        mtmi_ok("simplify", src, dst, "--no-optimize", *extra)
        b = onnx.load(dst)
        onnx.checker.check_model(b, full_check=True)
        na = [node_key(n) for n in a.graph.node if n.op_type != "Constant"]
        nb = [node_key(n) for n in b.graph.node]
        check(na == nb, f"{tag}/{variant}: same {len(na)} nodes in the same order")
        ta, tb = tensors(a), tensors(b)
        check(ta.keys() == tb.keys() and all(ta[k].dtype == tb[k].dtype and np.array_equal(ta[k], tb[k]) for k in ta),
              f"{tag}/{variant}: same {len(ta)} constant tensors")
        check(io(a.graph.input) == io(b.graph.input) and io(a.graph.output) == io(b.graph.output), f"{tag}/{variant}: same inputs and outputs")
        check(b.opset_import[0].version == 17 and len(b.opset_import) == 1, f"{tag}/{variant}: opset imports")
        if variant == "external":
            check(os.path.getsize(dst + ".data") > 19_000_000 and os.path.getsize(dst) < 400_000, f"{tag}: weights in {os.path.basename(dst)}.data")
    x = np.random.default_rng(SEED + 5).standard_normal((1, 3, 1024, 1024)).astype(np.float32)
    ra = run_ort(src, {"input": x}, threads=2)
    rb = run_ort(os.path.join(tmp, f"{tag}_external.onnx"), {"input": x}, threads=2)
    check(all(np.array_equal(ra[k], rb[k]) for k in ra), f"{tag}: ORT outputs of the re-saved model are bit-identical")
finish()
