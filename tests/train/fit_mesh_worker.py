"""``fit`` data-parallel in a process of its own (JAX reads XLA_FLAGS and joins a multi-process
job only at start); ``tests/train/test_fit_mesh.py`` runs it and compares with one device.

    python tests/train/fit_mesh_worker.py ROOT --devices=8 [--coordinator=H:P --num_processes=2 --process_id=I]

Runs, each into ROOT/<name>: 'full' (3 epochs on the mesh), 'fsdp' (the same with params and
optimizer state sharded; their layout in ROOT/fsdp_sharded.txt), 'eight_then_one' (2 epochs with
checkpoints, for the one-device process to finish) and, when ROOT/one_then_eight has a
checkpoint, its resume to 3 epochs on the mesh; with a coordinator, 'two_then_one' (2 epochs
with checkpoints written by both processes, for one process to finish); and the error of a batch of 30 on 8 devices
(ROOT/indivisible.txt). Process 0 writes ROOT/<name>.npz.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `jdl` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import jax
import numpy as np
from jax.experimental import multihost_utils

import jdl
from jdl import distributed
from jdl.losses import softmax_cross_entropy
from jdl.train import checkpoint as ckpt

EPOCHS, BATCH = 3, 32


def data():
    """(train, validation): 128 and 40 examples of a 3-class problem on 8 features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(168, 8)).astype(np.float32)
    y = ((x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5)).astype(np.int32)
    return (x[:128], y[:128]), (x[128:], y[128:])


def run(workdir, epochs: int = EPOCHS, mesh=None, checkpoints: bool = False, fsdp: bool = False):
    """The run every test compares: a BatchNorm MLP with dropout, Adam, validation each epoch."""
    train, validation = data()
    return jdl.train.fit(jdl.models.mlp([16, 3], norm="batch", dropout=0.1), softmax_cross_entropy,
                         jdl.optim.adam(1e-2), train, validation, epochs=epochs, batch_size=BATCH, seed=0,
                         eval_batch_size=16, workdir=workdir, progress=False, tensorboard=False, mesh=mesh, fsdp=fsdp,
                         checkpoint_every=4 if checkpoints else None)


def arrays(result) -> dict[str, np.ndarray]:
    """The history's numbers and the final params and state, as host arrays."""
    out = {f"history/{k}": np.array([h[k] for h in result.history]) for k in result.history[0]}
    for path, leaf in jax.tree_util.tree_flatten_with_path((result.train_state.params, result.train_state.state))[0]:
        # FSDP across processes: no process holds a sharded leaf whole; all of them gather it
        out["tree/" + jax.tree_util.keystr(path)] = np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--coordinator")
    parser.add_argument("--num_processes", type=int)
    parser.add_argument("--process_id", type=int)
    args = parser.parse_args()
    if args.coordinator:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id, timeout_s=60)
    mesh = distributed.data_mesh(args.devices)
    results = {"full": run(os.path.join(args.root, "full"), mesh=mesh)}
    results["fsdp"] = run(os.path.join(args.root, "fsdp"), mesh=mesh, fsdp=True)
    if distributed.is_primary():
        params = jax.tree_util.tree_flatten_with_path(results["fsdp"].train_state.params)[0]
        Path(args.root, "fsdp_sharded.txt").write_text("\n".join(
            f"{jax.tree_util.keystr(p)} {leaf.sharding.spec}" for p, leaf in params if not leaf.sharding.is_fully_replicated))
    if args.coordinator is not None:  # orbax across processes: every process saves its part
        results["two_then_one"] = run(os.path.join(args.root, "two_then_one"), 2, mesh, checkpoints=True)
    if args.coordinator is None:
        try:
            jdl.train.fit(jdl.models.mlp([3]), softmax_cross_entropy, jdl.optim.sgd(0.1), data()[0], batch_size=30,
                          mesh=mesh, progress=False)
        except ValueError as e:
            Path(args.root, "indivisible.txt").write_text(str(e))
        results["eight_then_one"] = run(os.path.join(args.root, "eight_then_one"), 2, mesh, checkpoints=True)
        if ckpt.steps(os.path.join(args.root, "one_then_eight", ckpt.CHECKPOINTS)):
            results["one_then_eight"] = run(os.path.join(args.root, "one_then_eight"), mesh=mesh, checkpoints=True)
    saved = {name: arrays(result) for name, result in results.items()}  # every process: gathers
    if distributed.is_primary():
        for name, values in saved.items():
            np.savez(os.path.join(args.root, f"{name}.npz"), **values)


if __name__ == "__main__":
    main()
