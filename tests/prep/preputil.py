"""Helpers shared by the model-preparation checks."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
from mtmi_testutil import MTMI_BIN  # noqa: E402

FAILS = []
_DIRS = []


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
    d = tempfile.mkdtemp(prefix="mtmi_prep_")
    _DIRS.append(d)
    return d


def finish():
    """Exits with the result; work folders are removed unless something
    failed (then they are kept for a look)."""
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    for d in _DIRS:
        if FAILS:
            print(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(1 if FAILS else 0)
