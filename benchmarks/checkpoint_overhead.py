"""What fault tolerance costs per training step: the non-finite guard (``on_nonfinite``) and
checkpointing every N steps, against a plain ``fit`` (``on_nonfinite=None``, no checkpoints).

Each setting trains 2 + E epochs; the CPU time of epochs 2..E+1 (timed by a callback at each
epoch's end, after the epoch's device sync) over their steps is the time of a compiled step. It also times one
``checkpoint.save`` and one ``restore`` of the model's whole TrainState.

    python -m benchmarks.checkpoint_overhead --workdir=runs/bench-ckpt [--quick]
"""

from __future__ import annotations

import os
import random
import tempfile
import time

import jax
import jax.numpy as jnp

import jdl
from experiments.common import write_results
from jdl.train import checkpoint as ckpt


def step_time(model, data, batch_size, epochs, repeats=3, **kw) -> float:
    """CPU seconds a compiled step takes inside ``fit`` with options ``kw`` (best of ``repeats``;
    CPU time, all threads, because wall time is unreliable on a shared machine): the time between the end of epoch 1 and the end of epoch 1 + ``epochs``, taken by a
    callback (each epoch ends with a device sync), over the steps in between. One more epoch
    follows, so the final checkpoint (and orbax's first-use set-up, in the first) is not timed."""
    best = float("inf")
    for _ in range(repeats):
        stamps: list[float] = []
        with tempfile.TemporaryDirectory() as workdir:
            jdl.train.fit(model, jdl.losses.softmax_cross_entropy, jdl.optim.sgd(0.05), data,
                          epochs=2 + epochs, batch_size=batch_size, progress=False, tensorboard=False,
                          workdir=workdir if "checkpoint_every" in kw else None,
                          callbacks=[lambda e, r, ts: stamps.append(time.process_time())], **kw)
        best = min(best, (stamps[-2] - stamps[0]) / (epochs * (len(data[0]) // batch_size)))
    return best


def guard_step_time(model, batch, rounds: int = 21, steps: int = 30) -> dict[str, float]:
    """CPU seconds of one compiled step for on_nonfinite None / 'stop' / 'skip' (best round)."""
    loss, opt = jdl.losses.softmax_cross_entropy, jdl.optim.sgd(0.05)
    x = jax.ShapeDtypeStruct(batch[0].shape, batch[0].dtype)
    steps_by = {m: jdl.train.make_step(jdl.train.supervised(model, loss), opt, on_nonfinite=m) for m in (None, "stop", "skip")}
    states = {m: jdl.train.init_train_state(model, opt, x) for m in steps_by}
    for m, step in steps_by.items():  # compile
        states[m] = jax.block_until_ready(step(states[m], batch)[0])
    best = {m: float("inf") for m in steps_by}
    order = list(steps_by)
    for _ in range(rounds):
        random.shuffle(order)
        for m in order:
            ts, start = states[m], time.process_time()
            for _ in range(steps):
                ts, _ = steps_by[m](ts, batch)
            states[m] = jax.block_until_ready(ts)
            best[m] = min(best[m], (time.process_time() - start) / steps)
    return {str(m): t for m, t in best.items()}


def save_restore_time(model, x, repeats=5) -> dict:
    """Seconds for one ``checkpoint.save`` and one ``checkpoint.restore`` of the TrainState."""
    ts = jdl.train.init_train_state(model, jdl.optim.sgd(0.05), x)
    saves, restores = [], []
    with tempfile.TemporaryDirectory() as d:
        for i in range(repeats):
            ts = ts._replace(step=ts.step + 1)
            start = time.perf_counter()
            ckpt.save(d, ts, keep=2)
            saves.append(time.perf_counter() - start)
            start = time.perf_counter()
            ckpt.restore(d, ts)
            restores.append(time.perf_counter() - start)
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(os.path.join(d, str(int(ts.step))))
                   for f in fs)
    return {"save_s": min(saves), "restore_s": min(restores), "bytes": size,
            "params": jdl.param_count(ts.params)}


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Time the settings on the digits MLP (128 hidden, the CLI's default) and a wider one."""
    x, y = jdl.data.load("digits", "train", validation_fraction=0)  # 1,437: timings comparable across versions
    epochs = 1 if quick else 10
    models = {"mlp-128": [128, 10]} if quick else {"mlp-128": [128, 10], "mlp-1024x2": [1024, 1024, 10]}
    settings = {"plain": {"on_nonfinite": None},
                "checkpoint_every=100": {"checkpoint_every": 100, "on_nonfinite": None},
                "checkpoint_every=10": {"checkpoint_every": 10, "on_nonfinite": None}}
    results: dict = {"backend": jax.default_backend(), "batch_size": 32, "epochs_timed": epochs, "models": {}}
    batch = (jnp.asarray(x[:32]), jnp.asarray(y[:32]))
    for name, features in models.items():
        model = jdl.models.mlp(features)
        guard = guard_step_time(model, batch, rounds=5 if quick else 21)
        in_fit = {s: step_time(model, (x, y), 32, epochs, repeats=1 if quick else 3, seed=seed, **kw)
                  for s, kw in settings.items()}
        results["models"][name] = {
            "step_us (jitted step alone, on_nonfinite)": {m: 1e6 * t for m, t in guard.items()},
            "guard_overhead": {m: t / guard["None"] - 1 for m, t in guard.items()},
            "fit_step_us": {s: 1e6 * t for s, t in in_fit.items()},
            "checkpoint": save_restore_time(model, jax.ShapeDtypeStruct((32, 8, 8, 1), x.dtype)),
        }
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "checkpoint_overhead")
