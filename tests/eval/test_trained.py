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


tmp = tempfile.mkdtemp(prefix="mtmi_trained_")
env = dict(os.environ)
env.pop("MTMI_TRAINED_MODEL", None)  # the default lookup: build/../models


def synth_eval(name, count, size, place, timeout):
    """`mtmi synth` (seed 1000) then `mtmi eval` with the default model on
    those scenes at size: eval's JSON, or None (a failed check)."""
    data, out = os.path.join(tmp, name), os.path.join(tmp, name + ".json")
    r = subprocess.run([MTMI, "synth", "-o", data, "--count", str(count), "--size", size, "--seed", "1000"], capture_output=True, text=True)
    check(r.returncode == 0, f"synth {size}: {r.stderr.strip()}")
    if r.returncode:
        return None
    r = subprocess.run([MTMI, "eval", "--data", data, "--size", size, "--place", place, "--json", out],
                       capture_output=True, text=True, env=env, timeout=timeout)
    print(r.stdout)
    check(r.returncode == 0, f"eval {size}: {r.stderr.strip()}")
    if r.returncode:
        return None
    j = json.load(open(out))
    h, w = (int(v) for v in size.split("x"))
    check("trained" in j["model"] and j["input"] == [1, 3, h, w], f"the default model is not the trained one: {j['model']}, {j['input']}")
    return j


print("seed 1000 (the held-out scenes' seed; fixed)")
j = synth_eval("scenes", 3, "1024x1024", "encoder=cpu,seg=cpu:1,depth=cpu:1", 900)
if j:
    check(j["seg"]["miou_pct"] >= 60, f"mIoU {j['seg']['miou_pct']:.2f} % < 60 %")
    check(j["depth"]["abs_rel"] < 0.3, f"AbsRel {j['depth']['abs_rel']:.3f}")

print("seed 1000 at 256x256: the classes at a quarter of the training size")
j = synth_eval("small", 4, "256x256", "cpu", 300)
if j:
    check(j["seg"]["miou_pct"] >= 60, f"mIoU at 256x256 {j['seg']['miou_pct']:.2f} % < 60 %")
shutil.rmtree(tmp, ignore_errors=True)
check.finish("trained model")
