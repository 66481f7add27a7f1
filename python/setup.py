"""Copies libmtmi.so into the package when one is at hand, so that the
installed package needs no MTMI_LIBRARY: the file $MTMI_LIBRARY names,
else the one in the source tree's CMake build (../build/libmtmi.so).
Without either the package is pure Python and loads the system's
libmtmi.so.<major> (after `cmake --install`)."""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    ns = {}
    with open(os.path.join(HERE, "mtmi", "_version.py")) as f:
        exec(f.read(), ns)
    return ns["__version__"]


def _library():
    env = os.environ.get("MTMI_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise SystemExit(f"MTMI_LIBRARY={env}: no such file")
        return env
    built = os.path.join(HERE, "..", "build", "libmtmi.so")
    return built if os.path.isfile(built) else None


class BuildPy(build_py):
    def run(self):
        super().run()
        lib = _library()
        if lib:
            major = _version().split(".")[0]
            dst = os.path.join(self.build_lib, "mtmi", f"libmtmi.so.{major}")
            self.announce(f"bundling {os.path.realpath(lib)} as {dst}", level=2)
            shutil.copyfile(os.path.realpath(lib), dst)


class Dist(Distribution):
    # With the library inside, the wheel is for this platform only.
    def has_ext_modules(self):
        return _library() is not None


setup(cmdclass={"build_py": BuildPy}, distclass=Dist)
