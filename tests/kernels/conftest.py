"""The native kernels' tests run where the machine can build them (x86-64 with AVX2, a C++
compiler) and are skipped, with the reason, elsewhere; a build that fails is a failure."""

import pytest

from jdl.kernels import native


@pytest.fixture(scope="module")
def native_kernels():
    """Build and load ``jdl.kernels.native`` once, or skip the module saying why it cannot."""
    try:
        native.load()
    except native.NativeUnavailable as e:
        if str(e).startswith("building"):
            raise
        pytest.skip(f"native kernels unavailable here: {e}")
