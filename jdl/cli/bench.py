"""``jdl bench``: the benchmark harness of the source checkout."""

from __future__ import annotations

import os

from jdl.cli.experiment import run_module, source_root


def bench_command(*, workdir: str | None, seed: int, quick: bool) -> None:
    """``jdl bench [--quick] [--workdir=DIR]``: the benchmark harness (jdl vs flax+optax vs
    PyTorch); ``python -m benchmarks.run --help`` has its finer options."""
    root = source_root()
    out = os.path.abspath(workdir or os.path.join("runs", "benchmarks"))
    run_module(root, "benchmarks.run", [f"--out={out}", f"--seed={seed}"] + (["--quick"] if quick else []))
