"""Shared test setup: silent broadcasting between ranks is an error, a key fixture, the
``jdl`` commands the tests start keep their compilation cache in a folder of this session
(``JDL_CACHE``), not in the home folder of the machine, XLA's LLVM backend compiles at level 1,
and the longest files run first.

The suite is compile-bound (XLA's compilation is about 60% of tests/models/test_gpt.py's time), and
``--xla_backend_optimization_level=1`` runs fewer of LLVM's optimization passes than the default
(the whole suite: 1,400 → 1,204 s) while keeping its contraction of a·b + c into FMAs, which
decides the rounding: elementwise programs give the same bits at level 1 as at the default, and
the suite's bit-for-bit checks pass at both. Level 0 is not used: it turns contraction off, so its
programs round differently from those users compile (four bit-for-bit tests failed with it).
The flag reaches the processes the tests start too; a level already in ``XLA_FLAGS`` wins."""

import atexit
import os
import shutil
import tempfile

if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = " ".join(
        f for f in (os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=1") if f)

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

if "JDL_CACHE" not in os.environ:
    os.environ["JDL_CACHE"] = tempfile.mkdtemp(prefix="jdl-test-cli-cache-")
    atexit.register(shutil.rmtree, os.environ["JDL_CACHE"], ignore_errors=True)


@pytest.fixture
def key():
    return jax.random.key(0)


# ``make test`` hands whole files to two pytest-xdist workers (``--dist loadfile``) in collection
# order, and a worker that gets a long file near the end runs it alone while the other idles.
# These files take longest (CPU seconds, one file at a time; the quick benchmark commands the
# most), so they are collected first, longest first, then the rest of the experiments' and
# command-line tests (one long test each); the many short files come last and even out the end.
LONG_FILES = (
    "tests/benchmarks/test_quick_command.py", "tests/benchmarks/test_quick_command_extras.py",
    "tests/benchmarks/test_quick_command_gpt.py", "tests/benchmarks/test_quick_command_char_lstm.py",
    "tests/experiments/test_sft.py", "tests/train/test_fit_mesh.py", "tests/experiments/test_generative.py",
    "tests/nn/test_norm.py", "tests/experiments/test_contrastive.py", "tests/test_cli.py",
    "tests/train/test_kill.py", "tests/experiments/test_seq2seq.py", "tests/experiments/test_scaling_cost.py",
    "tests/models/test_transformer.py", "tests/nn/test_transformer.py", "tests/nn/test_multihead.py",
    "tests/experiments/test_rag.py", "tests/experiments/test_diffusion_gan.py",
    "tests/experiments/test_generalization_quick.py", "tests/test_cli_detection.py", "tests/test_cli_config.py",
    "tests/detection/test_roi.py", "tests/models/test_diffusion.py",
)
LONG_FOLDERS = ("tests/experiments/", "tests/benchmarks/test_quick", "tests/test_cli")


def file_rank(path: str) -> int:
    """Where the file ``path`` (relative to the repository) runs: its place in LONG_FILES, then
    the other files under LONG_FOLDERS, then everything else (each group in collection order)."""
    if path in LONG_FILES:
        return LONG_FILES.index(path)
    return len(LONG_FILES) + (0 if path.startswith(LONG_FOLDERS) else 1)


def pytest_configure(config):
    config.addinivalue_line("markers", "torch: compares against PyTorch (skipped without torch)")
    if hasattr(config.option, "loadscopereorder"):
        # pytest-xdist would reorder the files by their number of tests, most first: the one-test
        # experiment and quick-command files, the longest, would start last
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """The longest files first (LONG_FILES); the order of the tests within a file is kept."""
    items.sort(key=lambda item: file_rank(item.nodeid.split("::", 1)[0]))
