"""Shared test setup: silent broadcasting between ranks is an error, a key fixture, the
``jdl`` commands the tests start keep their compilation cache in a folder of this session
(``JDL_CACHE``), not in the home folder of the machine, XLA compiles with two flags that make
compiling cheaper and change no bit, the test processes share one persistent compilation
cache, and the longest files run first.

The suite is compile-bound: in one whole run (2 workers, 1,366 s) the test processes spent
1,340 CPU s in XLA's backend compilation, 371 in lowering and 110 in tracing, over 13,932
programs — most of them small, where a CPU compile costs a fixed ~40–60 ms. Two flags cut it:

- ``--xla_backend_optimization_level=1`` runs fewer of LLVM's optimization passes than the
  default (the whole suite: 1,400 → 1,204 s) while keeping its contraction of a·b + c into FMAs,
  which decides the rounding. Level 0 is not used: it turns contraction off, so its programs
  round differently from those users compile (four bit-for-bit tests failed with it).
- ``--xla_cpu_use_fusion_emitters=false`` emits the fused elementwise loops with XLA's
  elemental IR emitter instead of its MLIR fusion emitters, a shorter pipeline (a tiny jitted
  program: 58 → 49 ms to lower and compile; the whole suite: 1,366–1,417 → 1,140 s). It has
  one slow case found so far: a full sum over a (32, 32) array compiles in 0.41 s against 0.07
  (a (33, 33) one in 0.04), so experiments/vanishing_gradients.py's twenty per-layer norms take
  ~4 s to compile and its test 36 s instead of 11.

Neither changes a value: twenty float32 programs (tanh, exp, log, erf, GELU, softmax, sums,
an Adam-like update, …) and LeNet-5's loss and gradient give the same bits with the flags as
with XLA's defaults, and the suite's bit-for-bit checks pass either way. The flags reach the
processes the tests start too; a setting already in ``XLA_FLAGS`` wins, and a flag this jaxlib
does not know is left out (``known_to_xla``) rather than abort every test process.

The persistent compilation cache (``JDL_TEST_JAX_CACHE``: a folder made by the first pytest
process and removed when it exits, or the folder that variable names) is shared by the
pytest-xdist workers, so a program one worker compiled is read, not compiled, by the other; it
is set before any test compiles, because JAX decides on its first compilation whether to use
the cache. The processes the tests start use it only where a test hands it on
(tests/train/test_kill.py's workers); the ``jdl`` commands have ``JDL_CACHE``."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

TEST_XLA_FLAGS = ("--xla_backend_optimization_level=1", "--xla_cpu_use_fusion_emitters=false")


def known_to_xla(flag: str) -> bool:
    """Whether this jaxlib accepts ``flag``: XLA aborts a process whose XLA_FLAGS hold a flag it
    does not know, and the emitter flag may go in a later jaxlib (one ~2 s probe per run: the
    workers inherit the flags already set)."""
    probe = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
    env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode == 0


_flags = os.environ.get("XLA_FLAGS", "")
_missing = [f for f in TEST_XLA_FLAGS if f.split("=")[0] not in _flags and known_to_xla(f)]
os.environ["XLA_FLAGS"] = " ".join([_flags, *_missing]).strip()

import jax  # noqa: E402  (after XLA_FLAGS: the backend reads them when it starts)
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

for _var, _prefix in (("JDL_CACHE", "jdl-test-cli-cache-"), ("JDL_TEST_JAX_CACHE", "jdl-test-jax-cache-")):
    if _var not in os.environ:
        os.environ[_var] = tempfile.mkdtemp(prefix=_prefix)
        atexit.register(shutil.rmtree, os.environ[_var], ignore_errors=True)
jax.config.update("jax_compilation_cache_dir", os.environ["JDL_TEST_JAX_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


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
