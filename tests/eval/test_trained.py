"""The trained built-in model (models/mtmi_trained.onnx; registered only
when the file is in the tree): on 3 held-out generated scenes (seed 1000,
the eval targets' seed, never trained on) at 1024x1024 on the CPU, `mtmi
eval` with no --model reaches mIoU >= 60 % over the classes present, and
its depth is in the right range (AbsRel < 0.3: random weights give 2-4).
At the training camera's size: depth read from apparent size scales with
the focal length, so the same scenes rendered at 256x256 (a quarter of the
focal length) read about 4x too far (AbsRel 1.7-2.3; docs/GROUND_TRUTH.md),
so at 256x256 (4 scenes, as issue 18 asks) only the classes are checked:
mIoU >= 60 % (67.6 % with the model of 2026-12-07)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MTMI = os.environ.get("MTMI_BIN", os.path.join(ROOT, "build", "mtmi"))
import mtmi_testutil as tu  # noqa: E402

check = tu.Checks()


print("seed 1000 (the held-out scenes' seed; fixed)")
tmp = tempfile.mkdtemp(prefix="mtmi_trained_")
data = os.path.join(tmp, "scenes")
r = subprocess.run([MTMI, "synth", "-o", data, "--count", "3", "--size", "1024x1024", "--seed", "1000"], capture_output=True, text=True)
check(r.returncode == 0, f"synth: {r.stderr.strip()}")
env = dict(os.environ)
env.pop("MTMI_TRAINED_MODEL", None)  # the default lookup: build/../models
out = os.path.join(tmp, "eval.json")
r = subprocess.run([MTMI, "eval", "--data", data, "--size", "1024x1024", "--place", "encoder=cpu,seg=cpu:1,depth=cpu:1", "--json", out],
                   capture_output=True, text=True, env=env, timeout=900)
print(r.stdout)
check(r.returncode == 0, f"eval: {r.stderr.strip()}")
if r.returncode == 0:
    j = json.load(open(out))
    check("trained" in j["model"], f"the default model is not the trained one: {j['model']}")
    check(j["seg"]["miou_pct"] >= 60, f"mIoU {j['seg']['miou_pct']:.2f} % < 60 %")
    check(j["depth"]["abs_rel"] < 0.3, f"AbsRel {j['depth']['abs_rel']:.3f}")

print("seed 1000 at 256x256: the classes at a quarter of the training size")
small = os.path.join(tmp, "small")
r = subprocess.run([MTMI, "synth", "-o", small, "--count", "4", "--size", "256x256", "--seed", "1000"], capture_output=True, text=True)
check(r.returncode == 0, f"synth 256: {r.stderr.strip()}")
out = os.path.join(tmp, "eval256.json")
r = subprocess.run([MTMI, "eval", "--data", small, "--size", "256x256", "--place", "cpu", "--json", out],
                   capture_output=True, text=True, env=env, timeout=300)
print(r.stdout)
check(r.returncode == 0, f"eval 256: {r.stderr.strip()}")
if r.returncode == 0:
    j = json.load(open(out))
    check("trained" in j["model"] and j["input"] == [1, 3, 256, 256], f"eval 256 json: {j['model']}, {j['input']}")
    check(j["seg"]["miou_pct"] >= 60, f"mIoU at 256x256 {j['seg']['miou_pct']:.2f} % < 60 %")
shutil.rmtree(tmp, ignore_errors=True)
check.finish("trained model")
