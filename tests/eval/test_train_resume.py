"""scripts/train_mtmi.py across calls, on the CPU with small data (4 scenes
of 512x512, batch 2): needs PyTorch and onnx, and exits 77 (ctest: skipped)
without them, as on CI.  Run it by hand with a Python that has both:

    MTMI_BIN=build/mtmi PYTHONPATH=tests/tools python3 tests/eval/test_train_resume.py

- a run of 6 steps in two calls (3, then --resume) ends at the same step,
  its second call starts where the first left the schedule (50 %), and its
  weights and exported model are bit for bit those of the same run in one
  call (model, optimizer, step, schedule and sampler RNG all carried);
- the first call of a run that does not end writes checkpoints and no model;
- --resume from the compact checkpoint alone (the full one gone, as when the
  GPU machine was lost and the float16 file carried back): the run goes on
  from its step and schedule position, optimizer restarted with a re-warm-up;
- --resume with no checkpoint at all: says so loudly and starts over;
- a schedule over time (--total-minutes) in two calls, the second --last
  with a --deadline: it compresses what is left of the schedule into the
  time it has and ends it (schedule 100 %, the model exported)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

try:
    import torch  # noqa: F401
    import onnx  # noqa: F401
except ImportError as e:
    print("skipped: %s (this test needs PyTorch and onnx)" % e)
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MTMI = os.environ.get("MTMI_BIN", os.path.join(ROOT, "build", "mtmi"))
REF = os.path.join(os.environ.get("MTMI_SHARED", os.path.join(ROOT, "..", "shared")), "reference")
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import mtmi_testutil as tu  # noqa: E402

check = tu.Checks()
tmp = tempfile.mkdtemp(prefix="mtmi_train_resume_")
BASE = [sys.executable, os.path.join(ROOT, "scripts", "train_mtmi.py"), "--mtmi", MTMI, "--reference", REF, "--device", "cpu",
        "--scenes", "4", "--val-scenes", "2", "--size", "512", "--batch", "2", "--data", os.path.join(tmp, "train"),
        "--val-data", os.path.join(tmp, "val"), "--phase-check", "1", "--carry", ""]


def call(name, *args):
    d = os.path.join(tmp, name)
    cmd = BASE + ["--ckpt", os.path.join(d, "ck"), "--out", os.path.join(d, "m.onnx")] + [str(a) for a in args]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    lines = [ln for ln in r.stdout.splitlines() if not ln.startswith(" ")]
    print("== %s %s (%.0f s)\n%s" % (name, " ".join(str(a) for a in args), time.time() - t0, "\n".join(lines[-6:])))
    check(r.returncode == 0, f"{name}: exit {r.returncode}: {r.stderr[-800:]}")
    return r.stdout


def meta(name):
    return torch.load(os.path.join(tmp, name, "ck", "last.pt"), map_location="cpu")


def record(name):
    p = os.path.join(tmp, name, "m.json")
    return json.load(open(p)) if os.path.exists(p) else None


# one call of 6 steps against two of 3
call("one", "--total-steps", 6)
out = call("two", "--total-steps", 6, "--steps", 3)
check("does not end the schedule" in out and not os.path.exists(os.path.join(tmp, "two", "m.onnx")),
      "the first of two calls exported a model")
check(os.path.exists(os.path.join(tmp, "two", "ck", "last.pt")) and os.path.exists(os.path.join(tmp, "two", "ck", "mtmi_ckpt.pt")),
      "the first call left no checkpoints")
compact = os.path.join(tmp, "compact.pt")
shutil.copy(os.path.join(tmp, "two", "ck", "mtmi_ckpt.pt"), compact)
check(os.path.getsize(compact) < 16 * 2 ** 20, f"compact checkpoint {os.path.getsize(compact)} bytes: over 16 MiB")
out = call("two", "--resume")
check("resuming run" in out and "from the full checkpoint" in out, "the second call did not resume the full checkpoint")
a, b = meta("one"), meta("two")
ph = b["meta"]["phases"]
check(a["meta"]["step"] == b["meta"]["step"] == 6, f"steps {a['meta']['step']} / {b['meta']['step']}")
check(len(ph) == 2 and ph[0]["schedule_to"] == ph[1]["schedule_from"] == 0.5 and ph[1]["schedule_to"] == 1.0
      and ph[0]["step_to"] == ph[1]["step_from"] == 3, f"phases {ph}")
diff = max((a["model"][k].float() - b["model"][k].float()).abs().max().item() for k in a["model"])
check(diff == 0.0, f"two calls' weights differ from one call's by {diff}")
check(open(os.path.join(tmp, "one", "m.onnx"), "rb").read() == open(os.path.join(tmp, "two", "m.onnx"), "rb").read(),
      "two calls' export differs from one call's")
r1, r2 = record("one"), record("two")
check(r1 and r2 and r2["training"]["steps"] == 6 and r2["training"]["calls"] == 2 and len(r2["training"]["phases"]) == 2
      and r1["held_out_pytorch"] == r2["held_out_pytorch"], "records")

# the machine lost: only the compact checkpoint, carried
out = call("compact", "--resume", "--carry", compact, "--rewarm", 2)
m = meta("compact")["meta"]
check("from the compact checkpoint" in out and "re-warm-up" in out, "did not resume from the compact checkpoint")
check(m["step"] == 6 and m["finished"] and m["phases"][-1]["from"] == "compact" and m["phases"][-1]["schedule_from"] == 0.5
      and m["run_id"] == b["meta"]["run_id"], f"compact resume: {m['phases']}")
check(os.path.exists(os.path.join(tmp, "compact", "m.onnx")), "compact resume: no export")

# nothing to resume: start over, loudly
out = call("none", "--resume", "--total-steps", 2)
m = meta("none")["meta"]
check("NO CHECKPOINT" in out and "STARTING OVER" in out, "no loud start-over")
check(m["step"] == 2 and m["finished"] and m["phases"][0]["from"] == "none", f"start-over: {m['phases']}")

# a schedule over time: 0.5 training minutes in two calls, the second ends it within a deadline
out = call("time", "--total-minutes", 0.5, "--minutes", 0.2)
m1 = meta("time")["meta"]
check(not m1["finished"] and 0.3 < m1["sched_s"] / m1["total_s"] < 0.95, f"time call 1: schedule {m1['sched_s']} of {m1['total_s']}")
out = call("time", "--resume", "--last", "--deadline", time.time() + 60, "--reserve-final", 45)
m2 = meta("time")["meta"]
ph = m2["phases"]
check(m2["finished"] and ph[1]["schedule_from"] == ph[0]["schedule_to"] and ph[1]["schedule_to"] == 1.0 and ph[1]["rate"] > 1,
      f"time call 2: {ph}")
check(os.path.exists(os.path.join(tmp, "time", "m.onnx")), "time call 2: no export")

shutil.rmtree(tmp, ignore_errors=True)
check.finish("train resume")
