"""Shared test setup: silent broadcasting between ranks is an error, a key fixture, the
``jdl`` commands the tests start keep their compilation cache in a folder of this session
(``JDL_CACHE``), not in the home folder of the machine, and XLA compiles without its LLVM
backend optimizations.

The tests compile hundreds of small programs and run most of them a few times, so XLA:CPU's
LLVM passes cost more than they save: ``--xla_backend_optimization_level=0`` cut the CPU time
of tests/experiments/test_contrastive.py and tests/nn/test_transformer.py by a third. XLA's HLO
passes (fusion, layouts, buffer assignment, the cost analyses some tests read) are unchanged,
and matmuls and convolutions still run in their libraries. The flag reaches the processes the
tests start too; an ``--xla_backend_optimization_level`` already in ``XLA_FLAGS`` wins."""

import atexit
import os
import shutil
import tempfile

if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0") if f)

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)
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
