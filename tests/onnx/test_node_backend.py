"""Runs ONNX's own backend node tests through `mtmi infer`.

Every test case whose nodes all use operators that `mtmi ops` claims is run:
its inputs go in as .npy files, its outputs are compared with ONNX's expected
outputs (floats with the case's rtol/atol, ONNX's defaults 1e-3 / 1e-7;
integers and bools exactly).  New operators are picked up as soon as the
binary claims them.

The cases come from the ONNX package: the stored protobuf data in
onnx/backend/test/data/node when the package ships it (or the folder named by
$MTMI_ONNX_NODE_DIR), otherwise the same cases generated in memory from
onnx.backend.test.case.node (pip wheels leave the data out).

mtmi plans need concrete shapes, so inputs that decide an output's shape
(Reshape's shape, Slice's starts, Range's bounds, ...) are folded into the
model as initializers, as an exporter would have written them.

Usage: test_node_backend.py [-k SUBSTRING] [-v] [-j JOBS]
The last line is "N passed, N failed, N skipped"; the exit status is 1 if any
case failed.
"""
import argparse
import concurrent.futures
import fnmatch
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx
from onnx import numpy_helper, TensorProto

import mtmi_testutil as tu

NODE_DIR = os.environ.get("MTMI_ONNX_NODE_DIR") or os.path.join(os.path.dirname(onnx.__file__), "backend/test/data/node")

# Cases we do not run, each with the reason.  Patterns are fnmatch globs over
# the case name.
SKIP = [
    ("test_cast_*FLOAT8*", "float8 element types are not supported"),
    ("test_cast_*FLOAT4*", "float4 element types are not supported"),
    ("test_cast_*INT4*", "int4 element types are not supported"),
    ("test_cast_*INT2*", "int2 element types are not supported"),
    ("test_cast_*BFLOAT16*", "bfloat16 is not supported"),
    ("test_cast_*STRING*", "string tensors are not supported"),
    ("test_castlike_*FLOAT8*", "float8 element types are not supported"),
    ("test_castlike_*FLOAT4*", "float4 element types are not supported"),
    ("test_castlike_*INT4*", "int4 element types are not supported"),
    ("test_castlike_*INT2*", "int2 element types are not supported"),
    ("test_castlike_*BFLOAT16*", "bfloat16 is not supported"),
    ("test_castlike_*STRING*", "string tensors are not supported"),
    ("test_cast_*e8m0*", "float8 e8m0 is not supported"),
    ("test_*_expanded*_ver18*", "function expansions at older opsets duplicate the plain cases"),
    ("test_reduce_*_empty_set*", "zero-sized input dimensions cannot be given as plan shapes"),
    ("test_reduce_*_empty_axes_input_noop*", "axes input given at run time as an empty tensor: zero-sized plan shape"),
    ("test_slice_start_out_of_bounds", "empty output: zero-sized dimensions are rejected at planning"),
    ("test_constantofshape_int_zeros", "zero-sized dimensions are rejected at planning"),
    ("test_split_zero_size_splits*", "zero-sized outputs are rejected at planning"),
    ("test_tril_zero", "zero-sized input dimensions cannot be given as plan shapes"),
    ("test_triu_zero", "zero-sized input dimensions cannot be given as plan shapes"),
    ("test_reshape_allowzero_reordered", "zero-sized input dimensions cannot be given as plan shapes"),
    ("test_*_float16*", "float16 arithmetic is not supported on the CPU (only Cast)"),
    ("test_*_fp16*", "float16 arithmetic is not supported on the CPU (only Cast)"),
    ("test_attention_24_qk_matmul_output_mode3_softmax_precision_expanded",
     "float16 arithmetic is not supported on the CPU (only Cast)"),
    ("test_batchnorm_*_training_mode", "training-mode BatchNormalization (batch statistics) is not an inference op"),
    ("test_training_dropout*", "training-mode Dropout (random masks) is not an inference op"),
    ("test_resize_*_antialias", "Resize antialias=1 is not supported"),
    ("test_resize_downsample_scales_*_align_corners",
     "ONNX Runtime (our reference) gives the same result as mtmi; ONNX's expected output differs"),
    ("test_flexattention_double_expanded*", "double MatMul is not supported"),
]

# Element types the engine does not take at its inputs/outputs, with reasons.
UNSUPPORTED_TYPES = {
    TensorProto.STRING: "string tensors are not supported",
    TensorProto.BFLOAT16: "bfloat16 is not supported",
    TensorProto.UINT16: "uint16 tensors are not supported",
    TensorProto.INT16: "int16 tensors are not supported",
    TensorProto.UINT32: "uint32 tensors are not supported",
    TensorProto.UINT64: "uint64 tensors are not supported",
    TensorProto.COMPLEX64: "complex tensors are not supported",
    TensorProto.COMPLEX128: "complex tensors are not supported",
}
for name in ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1",
             "FLOAT8E8M0", "UINT2", "INT2"):
    if hasattr(TensorProto, name):
        UNSUPPORTED_TYPES[getattr(TensorProto, name)] = f"{name.lower()} is not supported"

# Inputs (by position) that decide an op's output shape: folded into the
# model as initializers before planning.  CastLike's second input carries
# only a type (the cases give it as an empty tensor).
SHAPE_INPUTS = {
    "Reshape": [1], "Expand": [1], "Tile": [1], "Slice": [1, 2, 3, 4], "Unsqueeze": [1], "Squeeze": [1],
    "Split": [1], "ConstantOfShape": [0], "Range": [0, 1, 2], "Pad": [1, 3], "ReduceMean": [1],
    "ReduceSum": [1], "ReduceMax": [1], "ReduceMin": [1], "ReduceProd": [1], "ReduceSumSquare": [1],
    "ReduceL1": [1], "ReduceL2": [1], "ReduceLogSum": [1], "ReduceLogSumExp": [1], "Resize": [1, 2, 3],
    "Upsample": [1], "TopK": [1], "CastLike": [1], "OneHot": [1], "CenterCropPad": [1], "Col2Im": [1, 2],
}


# Operators the MTMI network's exports (both exporters, opsets 13 to 18)
# use, and the common ones around them: each must pass at least one case.
REQUIRED_OPS = ["Add", "Cast", "Concat", "Conv", "Div", "Erf", "Gather", "Gemm", "LayerNormalization", "MatMul", "Mul",
                "Pow", "ReduceMean", "Relu", "Reshape", "Resize", "Shape", "Sigmoid", "Slice", "Softmax", "Sqrt", "Sub",
                "Transpose", "Unsqueeze", "BatchNormalization", "ConvTranspose", "MaxPool", "AveragePool", "Constant"]


def claimed_ops():
    r = subprocess.run([tu.MTMI_BIN, "ops"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"mtmi ops failed: {r.stderr.strip()}")
    ops = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            ops.add((parts[0], parts[1]))
    return ops


def to_array(x):
    if isinstance(x, TensorProto):
        return numpy_helper.to_array(x)
    if x is None or isinstance(x, (list, dict)):
        return None
    return np.asarray(x)


def load_cases(select):
    """Yields (name, model, [(inputs, outputs)], rtol, atol)."""
    if os.path.isdir(NODE_DIR):
        for d in sorted(glob.glob(os.path.join(NODE_DIR, "test_*"))):
            name = os.path.basename(d)
            if select and select not in name:
                continue
            model = onnx.load(os.path.join(d, "model.onnx"))
            sets = []
            for ds in sorted(glob.glob(os.path.join(d, "test_data_set_*"))):
                ins, outs = [], []
                for kind, lst in (("input", ins), ("output", outs)):
                    files = glob.glob(os.path.join(ds, f"{kind}_*.pb"))
                    for f in sorted(files, key=lambda p: int(p.rsplit("_", 1)[1].split(".")[0])):
                        t = TensorProto()
                        with open(f, "rb") as fh:
                            t.ParseFromString(fh.read())
                        lst.append(t)
                sets.append((ins, outs))
            yield name, model, sets, 1e-3, 1e-7
        return
    from onnx.backend.test.case import node as node_cases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases(None)
    for c in sorted(cases, key=lambda c: c.name):
        if select and select not in c.name:
            continue
        yield c.name, c.model, c.data_sets, c.rtol, c.atol


def graph_inputs(model):
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def elem_type(vi):
    t = vi.type
    return t.tensor_type.elem_type if t.HasField("tensor_type") else None


def skip_reason(name, model, sets):
    for pat, reason in SKIP:
        if fnmatch.fnmatch(name, pat):
            return reason
    for vi in list(model.graph.input) + list(model.graph.output):
        if not vi.type.HasField("tensor_type"):
            return "non-tensor (sequence/optional/map) inputs or outputs are not supported"
        et = elem_type(vi)
        if et in UNSUPPORTED_TYPES:
            return UNSUPPORTED_TYPES[et]
    for ins, outs in sets:
        for x in list(ins) + list(outs):
            if isinstance(x, TensorProto) and x.data_type in UNSUPPORTED_TYPES:
                return UNSUPPORTED_TYPES[x.data_type]
            if x is None or isinstance(x, (list, dict)):
                return "non-tensor (sequence/optional/map) inputs or outputs are not supported"
    return None


def case_ops(model):
    ops = set()
    for n in model.graph.node:
        ops.add((n.domain or "ai.onnx", n.op_type))
        for a in n.attribute:
            if a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                ops.add(("ai.onnx", "<subgraph>"))
    return ops


def bake_shape_inputs(model, inputs):
    """Moves graph inputs that a shape-deciding input slot depends on (through
    any chain of nodes, e.g. a window size cast and fed to Range) into the
    initializers; returns the remaining runtime inputs (as arrays).  Shape
    and Size read only their input's shape, so the walk stops there."""
    gin = graph_inputs(model)
    used = {i for n in model.graph.node for i in n.input}
    bake = {vi.name for vi in gin if vi.name not in used}  # unused: only a type
    producer = {o: n for n in model.graph.node for o in n.output}
    todo = [n.input[k] for n in model.graph.node for k in SHAPE_INPUTS.get(n.op_type, [])
            if k < len(n.input) and n.input[k]]
    seen = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        p = producer.get(name)
        if p is None:
            bake.add(name)
        elif p.op_type not in ("Shape", "Size"):
            todo.extend(i for i in p.input if i)
    keep, rest = [], []
    for vi, x in zip(gin, inputs):
        if vi.name in bake:
            model.graph.initializer.append(numpy_helper.from_array(x, vi.name))
        else:
            keep.append(vi)
            rest.append(x)
    if len(keep) != len(gin):
        rebuilt = [i for i in model.graph.input if i.name not in bake]
        del model.graph.input[:]
        model.graph.input.extend(rebuilt)
    return rest


def compare(got, ref, rtol, atol):
    if got.shape != ref.shape:
        return f"shape {got.shape}, expected {ref.shape}"
    if got.dtype != ref.dtype:
        return f"dtype {got.dtype}, expected {ref.dtype}"
    if ref.dtype.kind in "fc":
        try:
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol, equal_nan=True)
        except AssertionError as e:
            lines = [l for l in str(e).splitlines() if "Max" in l or "Mismatch" in l]
            return "values differ: " + "; ".join(l.strip() for l in lines)
        return None
    if not np.array_equal(got, ref):
        bad = int(np.sum(got != ref))
        return f"{bad} of {ref.size} values differ"
    return None


def run_case(name, model, sets, rtol, atol, workdir):
    d = os.path.join(workdir, name)
    os.makedirs(d, exist_ok=True)
    try:
        for si, (ins, outs) in enumerate(sets):
            m = onnx.ModelProto()
            m.CopyFrom(model)
            arrays = [to_array(x) for x in ins]
            rest = bake_shape_inputs(m, arrays)
            path = os.path.join(d, "model.onnx")
            onnx.save(m, path)
            try:
                got = tu.run_mtmi(path, rest, extra=["--threads", "1"], workdir=d)
            except RuntimeError as e:
                return "fail", f"data set {si}: {e}"
            for vi, ref in zip(m.graph.output, outs):
                ref = to_array(ref)
                err = compare(np.asarray(got[vi.name]), ref, rtol, atol)
                if err:
                    return "fail", f"data set {si}, output '{vi.name}': {err}"
        return "pass", ""
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", dest="select", default="", help="only cases whose name contains this")
    ap.add_argument("-v", dest="verbose", action="store_true", help="print passing cases too")
    ap.add_argument("-j", dest="jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    args = ap.parse_args()
    claimed = claimed_ops()
    workdir = tempfile.mkdtemp(prefix="mtmi_node_")
    passed = failed = skipped = unclaimed = 0
    todo = []
    for name, model, sets, rtol, atol in load_cases(args.select):
        missing = case_ops(model) - claimed
        if missing:
            unclaimed += 1
            continue
        reason = skip_reason(name, model, sets)
        if reason:
            skipped += 1
            print(f"SKIP {name}: {reason}")
            continue
        todo.append((name, model, sets, rtol, atol))
    results = {}
    results_ops = {t[0]: case_ops(t[1]) for t in todo}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
        futs = {ex.submit(run_case, *t, workdir): t[0] for t in todo}
        for f in concurrent.futures.as_completed(futs):
            try:
                results[futs[f]] = f.result()
            except Exception as e:  # a runner bug must not hide the other cases
                results[futs[f]] = ("fail", f"runner error: {type(e).__name__}: {e}")
    for name in sorted(results):
        status, msg = results[name]
        if status == "pass":
            passed += 1
            if args.verbose:
                print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}: {msg}")
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"({unclaimed} cases use operators mtmi does not claim)")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if passed == 0:
        print("FAIL: no case ran (nothing collected, or every case skipped): the check would prove nothing")
        return 1
    if not args.select:
        # The operators the reference network and its fused forms need must
        # be claimed and pass at least one case each: a kernel that
        # disappears (and its claim with it) must not just shrink the count.
        ran = {}
        for name, (status, _) in results.items():
            for op in results_ops[name]:
                ran[op] = ran.get(op, 0) + (status == "pass")
        missing = [op for op in REQUIRED_OPS if ("ai.onnx", op) not in claimed or not ran.get(("ai.onnx", op))]
        if missing:
            print(f"FAIL: no passing case for required operators {missing} (claimed: "
                  f"{sorted(op for d, op in claimed if d == 'ai.onnx' and op in missing)})")
            return 1
        print(f"every one of the {len(REQUIRED_OPS)} required operators passed at least one case")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
