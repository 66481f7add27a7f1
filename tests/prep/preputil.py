"""Helpers shared by the model-preparation checks."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from mtmi_testutil import MTMI_BIN  # noqa: E402

FAILS = []


def check(cond, msg):
    print(("ok   " if cond else "FAIL ") + msg)
    if not cond:
        FAILS.append(msg)
    return cond


def mtmi(*args):
    """Runs the mtmi binary; returns (rc, stdout, stderr)."""
    r = subprocess.run([MTMI_BIN, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def mtmi_ok(*args):
    rc, out, err = mtmi(*args)
    if rc != 0:
        raise SystemExit(f"mtmi {' '.join(args)} failed ({rc}): {err.strip()}")
    return out


def tmpdir():
    return tempfile.mkdtemp(prefix="mtmi_prep_")


def finish():
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    sys.exit(1 if FAILS else 0)
