"""The trained built-in model's file, before any training: the reference
TorchScript export (opset 17, what scripts/train_mtmi.py's export is) with
seeded weights, packed by train_mtmi.pack_fp16 (float16 initializers behind
Casts, one file under 20 MB), given as MTMI_TRAINED_MODEL.  The built-in
model is then the C network with those weights: `mtmi run`'s fp32 logits
and depth equal ONNX Runtime's on the packed export per element, at the
export's 1024x1024 and at 256x512 (ORT on the export resized by
tests/tools/make_variants.py, the C network built at that size).  `eval`
and `calibrate` take it; MTMI_TRAINED_MODEL=none gives the random-weight
network, a missing file one error line; --dry-run of the training script
passes without PyTorch."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import mtmi_testutil as tu  # noqa: E402
import train_mtmi  # noqa: E402
from make_variants import resize_model  # noqa: E402

MTMI = tu.MTMI_BIN
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
check = tu.Checks()


def mtmi(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([MTMI] + [str(a) for a in args], capture_output=True, text=True, timeout=900, env=e)


def png_rgb(path, a):
    h, w, _ = a.shape

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    body = b"".join(b"\x00" + a[y].tobytes() for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(body))
                + chunk(b"IEND", b""))


def packed(model, path):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    n, vals = train_mtmi.pack_fp16(m)
    onnx.save(m, path)
    return n, vals


def against_ort(tag, ort_model, weights, h, w, rng):
    """mtmi run (built-in model = weights) on one h x w PNG vs ORT on ort_model."""
    d = os.path.join(tmp, tag)
    os.makedirs(os.path.join(d, "img"))
    # random colour blocks of h/16 pixels: a spread-weight network gives them
    # many classes (a smooth street scene gives one class 60-70 % of pixels)
    b = h // 16
    img = np.repeat(np.repeat(rng.integers(0, 256, (h // b, w // b, 3), dtype=np.uint8), b, 0), b, 1)
    png_rgb(os.path.join(d, "img", "x.png"), img)
    x = ((img.astype(np.float32) - MEAN) * (np.float32(1) / STD)).transpose(2, 0, 1)[None]  # mt_image_to_chw
    ref = tu.run_ort(ort_model, {"input": x}, threads=2)
    r = mtmi("run", "--images", os.path.join(d, "img"), "--size", f"{h}x{w}", "--save", "logits,depth", "--logits", "fp32",
             "--place", "encoder=cpu,seg=cpu:1,depth=cpu:1", "--threads", "2", "-o", os.path.join(d, "out"), "--quiet",
             env={"MTMI_TRAINED_MODEL": weights})
    check(r.returncode == 0, f"{tag}: run failed: {r.stderr.strip()}")
    if r.returncode:
        return
    man = json.load(open(os.path.join(d, "out", "manifest.json")))
    check("trained" in man["model"], f"{tag}: manifest model {man['model']}")
    seg = np.load(os.path.join(d, "out", "x_logits.npy"))[None]
    dep = np.load(os.path.join(d, "out", "x_depth.npy"))[None, None]
    ok = tu.nondegenerate(tag, seg_logits=ref["seg"], depth=ref["depth"])
    ok &= tu.compare(f"{tag} seg", seg, ref["seg"], rtol=0, atol=2e-5)
    ok &= tu.compare(f"{tag} depth", dep, ref["depth"], rtol=0, atol=7e-6)
    check(ok, f"{tag}: the built-in network with the trained weights differs from ONNX Runtime on the export")


tu.need_shared("the trained-model format check")
seed = tu.test_seed(2)
rng = np.random.default_rng(seed)
tmp = tempfile.mkdtemp(prefix="mtmi_trained_fmt_")
export = onnx.load(os.path.join(tu.SHARED, "reference", "mtmi_torchscript_opset17.graph.onnx"), load_external_data=False)
tu.fill_external_weights(export, seed=seed)
weights = os.path.join(tmp, "mtmi_trained.onnx")
n, vals = packed(export, weights)
size = os.path.getsize(weights)
print(f"packed export: {n} float16 initializers, {vals / 1e6:.2f} M values, {size / 1e6:.2f} MB")
check(n > 150 and vals > 4.8e6 and size < 20e6, "packing: too few tensors or too large a file")
m = onnx.load(weights)
check(all(t.data_type != onnx.TensorProto.FLOAT or np.prod(t.dims) <= 16 for t in m.graph.initializer), "float initializers left")

against_ort("1024x1024", weights, weights, 1024, 1024, rng)
small = os.path.join(tmp, "export_256x512.onnx")
packed(resize_model(export, 256, 512), small)
against_ort("256x512", small, weights, 256, 512, rng)

# eval and calibrate take it as the default model
env = {"MTMI_TRAINED_MODEL": weights}
data = os.path.join(tmp, "scenes")
r = mtmi("synth", "-o", data, "--count", 2, "--size", "64x64", "--seed", 1000)
check(r.returncode == 0, f"synth: {r.stderr.strip()}")
r = mtmi("eval", "--data", data, "--size", "64x64", "--json", os.path.join(tmp, "e.json"), env=env)
check(r.returncode == 0, f"eval with the packed weights: {r.stderr.strip()}")
if r.returncode == 0:
    j = json.load(open(os.path.join(tmp, "e.json")))
    check("trained" in j["model"] and j["input"] == [1, 3, 64, 64] and j["depth"]["pixels"] > 0, f"eval json: {j['model']}, {j['input']}")
r = mtmi("calibrate", "--images", os.path.join(data, "images"), "--size", "64x64", "-o", os.path.join(tmp, "c.cache"), env=env)
check(r.returncode == 0 and "trained" in r.stderr, f"calibrate with the default model: {r.stderr.strip()}")
r = mtmi("run", "--size", "64x64", "--frames", 1, "-o", os.path.join(tmp, "run_none"), "--quiet", env={"MTMI_TRAINED_MODEL": "none"})
check(r.returncode == 0 and "random weights" in r.stdout, f"MTMI_TRAINED_MODEL=none: {r.stdout.strip()[:200]} {r.stderr.strip()}")
r = mtmi("run", "--size", "64x64", "--frames", 1, "-o", os.path.join(tmp, "run_bad"), env={"MTMI_TRAINED_MODEL": os.path.join(tmp, "no.onnx")})
check(r.returncode == 1 and "trained built-in model" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
      f"a missing MTMI_TRAINED_MODEL: {r.stderr.strip()}")
r = mtmi("run", "--size", "64x64", "--frames", 1, "-o", os.path.join(tmp, "run_other"),
         env={"MTMI_TRAINED_MODEL": os.path.abspath(__file__)})
check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, f"a file that is not a model: {r.stderr.strip()}")

# the training script without PyTorch
r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train_mtmi.py"), "--dry-run", "--mtmi", MTMI, "--data",
                    os.path.join(tmp, "train")], capture_output=True, text=True, timeout=600)
check(r.returncode == 0 and "dry run ok" in r.stdout, f"train_mtmi.py --dry-run: {r.stdout[-400:]} {r.stderr[-400:]}")

shutil.rmtree(tmp, ignore_errors=True)
check.finish("trained format")
