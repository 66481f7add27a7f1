"""`mtmi build` and `--plan` end to end on the CPU (the built-in network at
128x128): the plan's header says what it was made for; `bench`, `run` and
`eval` start from it with its placement and size, and `run` writes the same
bytes with and without it; every mismatch is refused with exit 1 and one
line naming it (another size, placement, model, input kind, cache, mtmi
version, machine; a damaged or truncated file); usage errors exit 2.
(The GPU half, algorithm choices reused and the start-up time, is
scripts/gpu_plans.sh's.)"""
import filecmp
import os
import re
import subprocess
import tempfile

import mtmi_testutil as tu

tmp = tempfile.mkdtemp(prefix="mtmi_plan_")
check = tu.Checks()
SIZE = "128x128"
PLACE = "encoder=cpu/fp32,seg=cpu/fp32,depth=cpu/fp32"


def mtmi(*args, env=None, timeout=300):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([tu.MTMI_BIN] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=e)


def rewrite(src, dst, old, new):
    """src with one header text replaced, checksum recomputed"""
    tu.rewrite_plan(src, dst, re.escape(old), new)


def refused(label, res, want):
    err = res.stderr.strip()
    check(res.returncode == 1, f"{label}: exit {res.returncode}, want 1 ({err})")
    check(len(err.splitlines()) == 1 and want in err, f"{label}: want one line with '{want}', got: {err!r}")


plan = os.path.join(tmp, "p.plan")
r = mtmi("build", "--place", PLACE, "--size", SIZE, "-o", plan)
check(r.returncode == 0, f"build: exit {r.returncode}: {r.stderr}")
check("saved plan: " in r.stdout and "0 algorithm choices searched" in r.stdout, f"build's report: {r.stdout}")
head = open(plan, "rb").read().decode("ascii", "replace")
for line in ("MTMI saved plan 1\n", "\nmtmi ", "\ninput 1x3x128x128\n", "\nimage_input 1\n", f"\nplacement {PLACE}\n",
             "\ncache none\n", "\nstages 3\n", "\nstage encoder cpu/fp32 0 -\n", "\nend\n", "\nchecksum "):
    check(line in head, f"plan header lacks {line!r}")

# bench / run / eval start from it: its size and placement, nothing searched
r = mtmi("bench", "--plan", plan, "--frames", 2, "--warmup", 0, "-q")
check(r.returncode == 0, f"bench --plan: exit {r.returncode}: {r.stderr}")
check("input 1x3x128x128" in r.stdout and f"placement: {PLACE};" in r.stdout, f"bench --plan took the plan's size and placement: {r.stdout}")
check("saved plan: 0 algorithm choices reused, 0 searched" in r.stdout, f"bench --plan's build note: {r.stdout}")
a, b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
ra = mtmi("run", "--plan", plan, "--frames", 3, "-q", "-o", a)
rb = mtmi("run", "--place", PLACE, "--size", SIZE, "--frames", 3, "-q", "-o", b)
check(ra.returncode == 0 and rb.returncode == 0, f"run with / without the plan: {ra.stderr} {rb.stderr}")
if ra.returncode == 0 and rb.returncode == 0:
    files = sorted(f for f in os.listdir(a) if f != "manifest.json")
    check(len(files) >= 6 and files == sorted(f for f in os.listdir(b) if f != "manifest.json"), f"run outputs: {files}")
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    check(not mismatch and not errors, f"run outputs differ with the plan: {mismatch} {errors}")
# the same placement written another way is the plan's
r = mtmi("bench", "--plan", plan, "--place", "cpu/fp32", "--frames", 1, "--warmup", 0, "-q")
check(r.returncode == 0, f"bench --plan --place cpu/fp32 (same devices): {r.stderr}")
data = os.path.join(tmp, "scenes")
r = mtmi("synth", "-o", data, "--count", 1, "--size", SIZE, "--seed", 5)
if r.returncode == 0:
    r = mtmi("eval", "--data", data, "--plan", plan)
    check(r.returncode == 0 and "mIoU" in r.stdout, f"eval --plan: exit {r.returncode}: {r.stderr}")

# --place auto: the plan keeps the placement auto measured, and --plan
# starts with it without measuring again
autop = os.path.join(tmp, "auto.plan")
r = mtmi("build", "--place", "auto", "--size", SIZE, "-q", "-o", autop)
check(r.returncode == 0, f"build --place auto: {r.stderr}")
if r.returncode == 0:
    line = next((l for l in open(autop, "rb").read().decode("ascii", "replace").split("\n") if l.startswith("placement ")), "")
    chosen = line[len("placement "):]
    check(chosen and "auto" not in chosen and f"placement: {chosen};" in r.stdout, f"auto's choice saved: {line!r} / {r.stdout}")
    r = mtmi("bench", "--plan", autop, "--frames", 1, "--warmup", 0, "-q")
    check(r.returncode == 0 and f"placement: {chosen};" in r.stdout and "auto:" not in r.stdout,
          f"bench --plan of an auto plan: {r.stdout} {r.stderr}")

# refusals: exit 1, one line
refused("other size", mtmi("bench", "--plan", plan, "--size", "256x256", "-q"), "not --size 256x256")
refused("other placement", mtmi("bench", "--plan", plan, "--place", "cpu:1", "-q"), "placement")
refused("other model", mtmi("bench", "--plan", plan, "-q", env={"MTMI_TRAINED_MODEL": "none"}), "another model")
refused("float input", mtmi("bench", "--plan", plan, "--host-preprocess", "-q"), "input")
cache = os.path.join(tmp, "c.cache")
open(cache, "w").write("TRT-8601-EntropyCalibration2\ninput: 3c010204\n")
refused("a cache", mtmi("bench", "--plan", plan, "--cache", cache, "-q"), "calibration cache")
d = bytearray(open(plan, "rb").read())
bad = os.path.join(tmp, "bad.plan")
d[60] ^= 1
open(bad, "wb").write(bytes(d))
refused("damaged", mtmi("bench", "--plan", bad, "-q"), "checksum")
open(bad, "wb").write(bytes(d[: len(d) // 2]))
refused("truncated", mtmi("bench", "--plan", bad, "-q"), "truncated")
refused("not a plan", mtmi("bench", "--plan", cache, "-q"), "not a saved plan")
refused("missing", mtmi("bench", "--plan", os.path.join(tmp, "none.plan"), "-q"), "none.plan")
rewrite(plan, bad, b"\nmtmi ", b"\nmtmi 0.0.9-")
refused("other version", mtmi("bench", "--plan", bad, "-q"), "mtmi 0.0.9-")
rewrite(plan, bad, b"stage seg cpu/fp32 0 -", b"stage seg cpu/fp32 0 NVIDIA H100 80GB HBM3, sm_90")
refused("other machine", mtmi("bench", "--plan", bad, "-q"), "another machine")
rewrite(plan, bad, b"MTMI saved plan 1", b"MTMI saved plan 2")
refused("other format", mtmi("bench", "--plan", bad, "-q"), "format 2")
# build's usage errors
r = mtmi("build", "--place", PLACE, "--size", SIZE)
check(r.returncode == 2 and "-o PLAN" in r.stderr, f"build without -o: exit {r.returncode}: {r.stderr}")
r = mtmi("build", "--place", PLACE, "--size", SIZE, "-o", tmp)
check(r.returncode == 2 and "folder" in r.stderr, f"build -o DIR: exit {r.returncode}: {r.stderr}")
r = mtmi("build", "--place", "cuda:7", "--size", SIZE, "-o", os.path.join(tmp, "x.plan"))
check(r.returncode == 1 and not os.path.exists(os.path.join(tmp, "x.plan")), f"build on a missing device: exit {r.returncode}")

check.finish("saved plans")
