"""Fixtures of the Python package's tests.

Run by ctest (tests/python/tests.cmake: the build's libmtmi.so through
$MTMI_LIBRARY, the package from python/) and by scripts/test_package.sh
(the package pip-installed into a fresh venv, the library bundled in it).
The checkers are the suite's own (tests/tools/mtmi_testutil.py: per
element, printed margins, discriminative references)."""
import pytest

from pkgtest import H, W, tu

import mtmi


@pytest.fixture(scope="session")
def seed():
    return tu.test_seed(1)


@pytest.fixture(scope="session")
def ref_path(tmp_path_factory, seed):
    """The reference network (spread weights, H x W) written as ONNX by the
    library; the tests load it back and run ONNX Runtime on the file."""
    path = str(tmp_path_factory.mktemp("model") / "mtmi.onnx")
    with mtmi.reference_model(height=H, width=W, seed=seed) as m:
        m.save(path)
    return path


@pytest.fixture(scope="session")
def ref_model(ref_path):
    m = mtmi.load(ref_path)
    yield m
    m.close()
