"""The ctypes mirror of include/mtmi.h's structures (mtmi/_lib.py) has the
C layout: every size and field offset as the C compiler lays them out
(tests/python/abi_layout.c, built by CMake: $MTMI_ABI_LAYOUT), and every
structure of the header is either mirrored or listed here as unused."""
import ctypes
import os
import re
import subprocess

from pkgtest import REPO

from mtmi import _lib as L

# mtmi_result: only mtmi_pipeline_collect_results (zero-copy, device
# pointers) takes it, which the package does not wrap.
NOT_WRAPPED = {"mtmi_result"}


def test_struct_layout():
    exe = os.environ.get("MTMI_ABI_LAYOUT")
    assert exe, "MTMI_ABI_LAYOUT (the abi_layout program of the CMake build) is not set: run through ctest or scripts/test_package.sh"
    c = dict(l.rsplit(" ", 1) for l in subprocess.run([exe], check=True, capture_output=True, text=True).stdout.splitlines())
    problems = []
    for cname, cls in L.STRUCTS.items():
        if cname not in c:
            problems.append(f"{cname}: not printed by abi_layout")
            continue
        if ctypes.sizeof(cls) != int(c[cname]):
            problems.append(f"{cname}: size {ctypes.sizeof(cls)} in Python, {c[cname]} in C")
        fields = {k.split(".", 1)[1]: int(v) for k, v in c.items() if k.startswith(cname + ".")}
        py = {f[0]: getattr(cls, f[0]).offset for f in cls._fields_}
        if fields != py:
            problems.append(f"{cname}: fields/offsets differ: C {fields}, Python {py}")
    hdr = open(os.path.join(REPO, "include", "mtmi.h")).read()
    declared = set(re.findall(r"typedef struct (mtmi_\w+) \{", hdr))
    missing = declared - set(L.STRUCTS) - NOT_WRAPPED
    if missing:
        problems.append(f"structures of the header neither mirrored nor listed as not wrapped: {sorted(missing)}")
    print(f"{len(L.STRUCTS)} structures compared")
    assert not problems, "\n".join(problems)
