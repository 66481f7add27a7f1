"""Bad input to simplify, split and make-model: a non-zero exit, one line on
stderr ("mtmi: error: ..."), no crash and no partial output file."""
import os

from preputil import check, finish, mtmi, mtmi_ok, tmpdir

tmp = tmpdir()
model = os.path.join(tmp, "m.onnx")
mtmi_ok("make-model", "-o", model, "--size", "64x64")


def bad(args, expect, tag):
    rc, out, err = mtmi(*args)
    lines = err.strip().splitlines()
    ok = rc not in (0, None) and rc < 128 and len(lines) == 1 and lines[0].startswith("mtmi: error:") and expect in lines[0]
    check(ok, f"{tag}: rc {rc}, stderr {lines}")


def no_files(d, tag):
    left = []
    for root, _, files in os.walk(d):
        left += files
    check(not left, f"{tag}: nothing written ({left})")


out = os.path.join(tmp, "cut1")
bad(["split", model, "-o", out, "--cut", "no_such_tensor"], "no_such_tensor", "split: unknown cut name")
no_files(out, "unknown cut name") if os.path.exists(out) else check(True, "unknown cut name: no folder")
out = os.path.join(tmp, "cut2")
bad(["split", model, "-o", out, "--cut", "/enc/Transpose_1_output_0,/enc/Transpose_2_output_0,/enc/Transpose_3_output_0"],
    "does not separate", "split: cut that does not separate the heads")
check(not os.path.exists(out) or not os.listdir(out), "non-separating cut: nothing written")
bad(["split", model, "-o", os.path.join(tmp, "cut3"), "--cut", "seg"], "model output", "split: output as cut")
bad(["split", model, "-o", os.path.join(tmp, "cut4"), "--cut", "a,,b"], "empty name", "split: empty cut name")
bad(["split", model], "-o DIR", "split: no output folder")

# unwritable destinations: a folder under a regular file
blocker = os.path.join(tmp, "file")
open(blocker, "w").write("x")
bad(["split", model, "-o", os.path.join(blocker, "sub")], "cannot create", "split: unwritable output folder")
bad(["simplify", model, os.path.join(blocker, "o.onnx")], "o.onnx", "simplify: unwritable output")
bad(["make-model", "-o", os.path.join(tmp, "nodir", "m.onnx")], "m.onnx", "make-model: unwritable output")
check(not os.path.exists(os.path.join(tmp, "nodir")), "make-model: nothing created")

# bad models and options
trunc = os.path.join(tmp, "trunc.onnx")
open(trunc, "wb").write(open(model, "rb").read()[:5000])
bad(["simplify", trunc, os.path.join(tmp, "t.onnx")], "trunc.onnx", "simplify: truncated model")
check(not os.path.exists(os.path.join(tmp, "t.onnx")), "simplify of a truncated model: no output file")
bad(["split", trunc, "-o", os.path.join(tmp, "t")], "trunc.onnx", "split: truncated model")
bad(["simplify", model, os.path.join(tmp, "s.onnx"), "--shape", "1x3x65x64"], "", "simplify: shape that does not fit")
bad(["simplify", model, os.path.join(tmp, "s.onnx"), "--shape", "banana"], "banana", "simplify: unparsable shape")
check(not os.path.exists(os.path.join(tmp, "s.onnx")), "simplify with a bad shape: no output file")
bad(["make-model", "-o", os.path.join(tmp, "x.onnx"), "--size", "100x64"], "32", "make-model: size not a multiple of 32")
bad(["make-model", "-o", os.path.join(tmp, "x.onnx"), "--batch", "0"], "--batch", "make-model: batch 0")
check(not os.path.exists(os.path.join(tmp, "x.onnx")), "make-model with bad options: no output file")

# no temporary files anywhere
tmps = [f for _, _, fs in os.walk(tmp) for f in fs if ".tmp." in f]
check(not tmps, f"no temporary files left ({tmps})")
finish()
