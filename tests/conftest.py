"""Shared test setup: silent broadcasting between ranks is an error, a key fixture, and the
``jdl`` commands the tests start keep their compilation cache in a folder of this session
(``JDL_CACHE``), not in the home folder of the machine."""

import atexit
import os
import shutil
import tempfile

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

if "JDL_CACHE" not in os.environ:
    os.environ["JDL_CACHE"] = tempfile.mkdtemp(prefix="jdl-test-cli-cache-")
    atexit.register(shutil.rmtree, os.environ["JDL_CACHE"], ignore_errors=True)


@pytest.fixture
def key():
    return jax.random.key(0)


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: compares against PyTorch (skipped without torch)")
