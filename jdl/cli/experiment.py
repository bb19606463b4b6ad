"""``jdl experiment NAME``: run one of the source checkout's ``experiments/``."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Sequence

from absl import app

from jdl.cli.cache import compilation_cache_dir, use_compilation_cache


def source_root() -> str:
    """The source checkout that holds ``experiments/`` and ``benchmarks/``: they sit beside the
    ``jdl`` package in the repository and are not installed with it."""
    import jdl

    root = os.path.dirname(os.path.dirname(os.path.abspath(jdl.__file__)))
    if not os.path.isdir(os.path.join(root, "experiments")):
        raise app.UsageError(f"experiments/ and benchmarks/ live in jdl's source checkout, not found beside "
                             f"{os.path.dirname(jdl.__file__)}; install jdl from a clone with pip install -e .")
    return root


def experiment_names(root: str) -> list[str]:
    """The runnable experiments: the modules of ``experiments/`` that define ``run``."""
    names = []
    for file in sorted(os.listdir(os.path.join(root, "experiments"))):
        if file.endswith(".py") and not file.startswith("_"):
            with open(os.path.join(root, "experiments", file)) as f:
                if "\ndef run(" in f.read():
                    names.append(file[:-3])
    return names


def run_module(root: str, module: str, args: list[str], env_extra: dict | None = None) -> None:
    """``python -m module args`` with the checkout on the path, in the caller's directory, in its
    own process (experiments and the harness define their own flags); exits with its status."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
               **(env_extra or {}))
    status = subprocess.call([sys.executable, "-m", module, *args], env=env)
    if status:
        raise SystemExit(status)


def experiment_command(args: Sequence[str], *, workdir: str | None, seed: int, quick: bool,
                       compilation_cache: str | None) -> None:
    """``jdl experiment NAME [--quick] [--seed=S] [--workdir=DIR]``: run ``experiments/NAME.py``,
    which writes results.json and its plots into the workdir (default runs/experiments/NAME)."""
    root = source_root()
    names = experiment_names(root)
    if len(args) != 1 or args[0] not in names:
        got = repr(args[0]) if args else "nothing"
        raise app.UsageError(f"jdl experiment: expected one of {', '.join(names)}; got {got}")
    workdir = os.path.abspath(workdir or os.path.join("runs", "experiments", args[0]))
    run_module(root, f"experiments.{args[0]}",
               [f"--workdir={workdir}", f"--seed={seed}", f"--quick={str(quick).lower()}"],
               use_compilation_cache(compilation_cache_dir(compilation_cache)))
