"""What every experiment shares: its command line and where its results go.

Every experiment module defines ``run(workdir, quick=False, seed=0) -> dict``, which writes
``results.json`` and its PNG plots under ``workdir`` and returns the results. Tests call ``run``
directly with ``quick=True``; people call the module::

    python -m experiments.optimizers --workdir=runs/optimizers --quick

Flags are defined only when a module runs as a script (inside :func:`main`), so importing an
experiment never touches the global absl flags that ``jdl.cli`` uses.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable


def write_results(workdir: str, results: dict) -> str:
    """Write ``results`` as indented JSON to ``workdir/results.json``; returns the path."""
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1, default=_jsonable)
    return path


def _jsonable(value: Any):
    """numpy/jax scalars and arrays as plain Python numbers and lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"results.json: cannot write a {type(value).__name__}")


def main(run: Callable[..., dict], name: str) -> None:
    """Run ``run`` from the command line with ``--workdir``, ``--quick`` and ``--seed``.

    Extra experiment flags may be defined with ``absl.flags`` before calling this; they are
    passed to ``run`` as keyword arguments when listed in ``run``'s signature.
    """
    import inspect

    from absl import app, flags

    flags.DEFINE_string("workdir", os.path.join("runs", "experiments", name),
                        "Where results.json and the plots go.")
    flags.DEFINE_bool("quick", False, "A few steps of everything, to check it runs.")
    flags.DEFINE_integer("seed", 0, "Seed of the first run.")

    def _main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        fv = flags.FLAGS
        accepted = inspect.signature(run).parameters
        extra = {k: fv[k].value for k in accepted if k not in ("workdir", "quick", "seed") and k in fv}
        results = run(fv.workdir, quick=fv.quick, seed=fv.seed, **extra)
        print(json.dumps({"workdir": fv.workdir, "keys": sorted(results)}, indent=1))

    app.run(_main)


def save_figure(fig, workdir: str, filename: str, dpi: int = 80) -> str:
    """Lay out ``fig``, write it as ``workdir/filename`` (PNG) and close it; returns the path."""
    import matplotlib.pyplot as plt

    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, filename)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def cached(workdir: str, name: str, meta: dict, params_like, train):
    """Params from ``workdir/name`` when a checkpoint there was written with the same ``meta``,
    else ``train() -> (train_state, info)`` saved there; returns (params, info)."""
    import jax
    import numpy as np

    from jdl.train import checkpoint

    path = os.path.join(workdir, name)
    if os.path.isdir(path) and checkpoint.steps(path):
        ckpt = checkpoint.restore(path)
        if ckpt.meta.get("settings") == meta:
            params = jax.tree.map(lambda a, b: np.asarray(a, b.dtype), ckpt.train_state.params, params_like)
            return params, {**ckpt.meta.get("info", {}), "loaded_from": path}
    ts, info = train()
    checkpoint.save(path, ts, {"settings": meta, "info": info}, replace=True)
    return ts.params, info
