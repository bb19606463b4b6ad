"""Train a small BatchNorm MLP with Adam for a few steps, on one device or data-parallel on a
mesh, and save what it learned; ``tests/test_distributed.py`` runs it in subprocesses (JAX reads
``XLA_FLAGS`` and joins a multi-process job only at start) and compares the runs.

    python tests/distributed_worker.py --out=r.npz --devices=0,1,8           # one process
    python tests/distributed_worker.py --out=r.npz --devices=4 \\
        --coordinator=127.0.0.1:PORT --num_processes=2 --process_id=I       # each of 2 processes

``--devices``: the mesh sizes to train on, one after the other; 0 means no mesh at all (plain
``jax.jit`` on the default device: the reference). The step is written here by hand and is the
same jitted function for every mesh; only its inputs' shardings differ. Only process 0 writes
``--out``: for each mesh size N, ``N/loss`` (STEPS,) and ``N/params/<path>``, ``N/state/<path>`` for every
leaf of params and state (BatchNorm's running mean and var).
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `jdl` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np

from jdl import distributed
from jdl.losses import softmax_cross_entropy
from jdl.nn import BatchNorm, Dense, relu, serial
from jdl.optim import adam, apply_updates
from jdl.train.state import TrainState

STEPS, BATCH, D_IN, CLASSES = 10, 32, 8, 3


def make_data() -> tuple[np.ndarray, np.ndarray]:
    """STEPS batches of BATCH rows: x (STEPS·B, D_IN) float32, y (STEPS·B,) int32 in [0, 3)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS * BATCH, D_IN)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5).astype(np.int32)
    return x, y


def make_step(model, optimizer):
    """The hand-written step: value_and_grad of softmax cross-entropy, BatchNorm in train mode."""

    def loss_fn(params, state, x, y):
        logits, state = model.apply(params, state, x, train=True)  # (B, CLASSES)
        return softmax_cross_entropy(logits, y), state

    @partial(jax.jit, donate_argnums=0)
    def step(ts: TrainState, batch):
        x, y = batch
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(ts.params, ts.state, x, y)
        updates, opt_state = optimizer.update(grads, ts.opt_state, ts.params)
        return TrainState(apply_updates(ts.params, updates), state, opt_state, ts.step + 1, ts.key), loss

    return step


def make_model():
    """Dense (no bias: BatchNorm's β is one), BatchNorm, relu, Dense: x (B, D_IN) → (B, CLASSES).
    BatchNorm's momentum 0.9 makes one step move the running statistics by a tenth of the batch's."""
    return serial(Dense(16, use_bias=False), BatchNorm(momentum=0.9), relu, Dense(CLASSES))


def init_params(model):
    return model.init(jax.random.key(0), jax.ShapeDtypeStruct((BATCH, D_IN), jnp.float32))


def _flat(tree) -> dict[str, np.ndarray]:
    """{'params/1_dense/w': array, ...}: host copies (replicated leaves are readable anywhere)."""
    return {"/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def train(num_devices: int) -> dict[str, np.ndarray]:
    """STEPS steps of Adam on a mesh of ``num_devices`` (0: no mesh); returns host arrays:
    'loss' (STEPS,), 'params/...', 'state/...' at the end and 'state1/...' after one step."""
    model, optimizer = make_model(), adam(1e-2)
    x, y = make_data()
    params, state = init_params(model)
    ts = TrainState(params, state, optimizer.init(params), jnp.zeros([], jnp.int32), jax.random.key(1))
    mesh = distributed.data_mesh(num_devices) if num_devices else None
    rows = slice(0, BATCH)
    if mesh is not None:
        distributed.check_batch_size(mesh, BATCH)
        ts = distributed.replicate(mesh, ts)
        rows = distributed.local_rows(BATCH, mesh)
    step, losses = make_step(model, optimizer), []
    for t in range(STEPS):
        xb, yb = x[t * BATCH:(t + 1) * BATCH][rows], y[t * BATCH:(t + 1) * BATCH][rows]  # (B/P, D_IN)
        batch = distributed.shard_batch(mesh, (xb, yb)) if mesh is not None else (xb, yb)
        old, (ts, loss) = ts, step(ts, batch)
        losses.append(np.asarray(loss))  # replicated: readable in every process
        if t == 0:
            first = _flat({"state1": ts.state})  # now: the next step donates these buffers
    if mesh is not None:
        _check_placement(mesh, old, ts)
    return {"loss": np.stack(losses), **first, **_flat({"params": ts.params, "state": ts.state})}


def _check_placement(mesh, old: TrainState, ts: TrainState) -> None:
    """The step kept the state replicated on the mesh and reused (donated) the old buffers."""
    for leaf in jax.tree.leaves(ts):
        if not (leaf.sharding.is_fully_replicated and leaf.sharding.mesh == mesh):
            raise SystemExit(f"worker: a train-state leaf came back as {leaf.sharding}")
    if not all(leaf.is_deleted() for leaf in jax.tree.leaves(old.params)):
        raise SystemExit("worker: the params given to the step were not donated")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--devices", default="0", help="comma list of mesh sizes; 0: no mesh")
    parser.add_argument("--coordinator")
    parser.add_argument("--num_processes", type=int)
    parser.add_argument("--process_id", type=int)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.coordinator:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id, timeout_s=60)
    results = {}
    for n in (int(s) for s in args.devices.split(",")):
        results.update({f"{n}/{k}": v for k, v in train(n).items()})
    if distributed.is_primary():
        np.savez(args.out, **results)
    print(f"worker {jax.process_index()}/{jax.process_count()}: {jax.device_count()} devices, "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
