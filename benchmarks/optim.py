"""One jitted optimizer update + apply_updates, jdl against its optax twin.

For each optimizer: 10M float32 params held in 4 leaves and in 200 leaves (``quick``: 100k
params, 3 repeats), the step ``(params, state) -> apply_updates(params, update(grads, state))``
jitted with params and state donated, A and B interleaved (alternating which goes first), each call timed to
``block_until_ready``, the median of the repeats reported in ms and as the ratio jdl/optax.

    python -m benchmarks.optim [--quick] [--out=runs/benchmarks/optim.json]
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jdl import optim

# name -> lib -> optimizer; lib is jdl.optim or optax (both share the alias names and arguments)
OPTIMIZERS: dict[str, Callable] = {
    "sgd": lambda o: o.sgd(0.01),
    "sgd_momentum": lambda o: o.sgd(0.01, momentum=0.9),
    "sgd_nesterov": lambda o: o.sgd(0.01, momentum=0.9, nesterov=True),
    "momentum_ema": lambda o: (o.momentum_ema(0.01) if o is optim
                               else o.chain(o.ema(0.9, debias=False), o.scale_by_learning_rate(0.01))),
    "adagrad": lambda o: o.adagrad(0.01),
    "rmsprop": lambda o: o.rmsprop(0.01),
    "rmsprop_centered": lambda o: o.rmsprop(0.01, centered=True),
    "adam": lambda o: o.adam(1e-3),
    "adam_cosine": lambda o: o.adam(o.cosine_decay_schedule(1e-3, 1000)),
    "adamw": lambda o: o.adamw(1e-3),
    "adam_l2": lambda o: (o.adam_l2(1e-3) if o is optim else o.chain(o.add_decayed_weights(1e-4), o.adam(1e-3))),
    "clip_adam": lambda o: o.chain(o.clip_by_global_norm(1.0), o.adam(1e-3)),
}


def make_tree(n_params: int, n_leaves: int, seed: int) -> dict:
    """``n_leaves`` float32 vectors holding ``n_params`` numbers in all."""
    size = n_params // n_leaves
    keys = jax.random.split(jax.random.key(seed), n_leaves)
    return {f"{i:03d}": jax.random.normal(k, (size,), jnp.float32) for i, k in enumerate(keys)}


def make_step(opt, apply_updates):
    """The jitted, donating step (params, state, grads) -> (params, state)."""

    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def time_pair(name: str, n_params: int, n_leaves: int, repeats: int) -> dict:
    """Median ms of one call of jdl's and optax's step, interleaved (jdl, optax, optax, jdl, ...)."""
    grads = make_tree(n_params, n_leaves, 1)
    runs, costs = {}, {}
    for lib, apply in (("jdl", optim.apply_updates), ("optax", optax.apply_updates)):
        opt = OPTIMIZERS[name](optim if lib == "jdl" else optax)
        params = make_tree(n_params, n_leaves, 0)
        step = make_step(opt, apply)
        state = opt.init(params)
        costs[lib] = _bytes_accessed(step, params, state, grads)
        carry = jax.block_until_ready(step(params, state, grads))  # compile + warm up
        runs[lib] = [step, carry, []]
    for r in range(repeats):
        for lib in (("jdl", "optax") if r % 2 == 0 else ("optax", "jdl")):  # no first-mover bias
            step, carry, times = runs[lib]
            start = time.perf_counter()
            carry = jax.block_until_ready(step(*carry, grads))
            times.append((time.perf_counter() - start) * 1e3)
            runs[lib][1] = carry
    jdl_ms, optax_ms = (statistics.median(runs[lib][2]) for lib in ("jdl", "optax"))
    return {"name": name, "leaves": n_leaves, "jdl_ms": jdl_ms, "optax_ms": optax_ms,
            "ratio": jdl_ms / optax_ms, "jdl_bytes": costs["jdl"], "optax_bytes": costs["optax"]}


def _bytes_accessed(step, *args) -> float:
    """XLA's count of the bytes the compiled step reads and writes (noise-free, unlike a clock)."""
    cost = step.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("bytes accessed", float("nan")))


def run(quick: bool = False) -> dict:
    """Time every optimizer; returns {"rows": [{name, leaves, jdl_ms, optax_ms, ratio, jdl_bytes,
    optax_bytes}], "params", ...}; ratio = jdl_ms / optax_ms, *_bytes XLA's bytes accessed."""
    n_params, repeats = (100_000, 3) if quick else (10_000_000, 21)
    rows = [time_pair(name, n_params, n_leaves, repeats)
            for n_leaves in (4, 200) for name in OPTIMIZERS]
    return {"rows": rows, "params": n_params, "repeats": repeats, "backend": jax.default_backend(),
            "device": str(jax.devices()[0])}


def table(result: dict) -> str:
    """The rows as a Markdown table."""
    lines = [f"{result['params']:,} float32 params, median of {result.get('repeats', '?')} "
             f"interleaved calls on {result.get('device', '?')}", "",
             "| optimizer | leaves | jdl ms | optax ms | jdl/optax | bytes jdl/optax |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['leaves']} | {r['jdl_ms']:.3f} | {r['optax_ms']:.3f} | {r['ratio']:.3f} "
              f"| {r['jdl_bytes'] / r['optax_bytes']:.3f} |" for r in result["rows"]]
    return "\n".join(lines)


def main() -> None:
    from absl import app, flags

    flags.DEFINE_bool("quick", False, "100k params and 3 repeats, to check it runs.")
    flags.DEFINE_string("out", os.path.join("runs", "benchmarks", "optim.json"), "Where the JSON goes.")

    def _main(argv):
        del argv
        result = run(flags.FLAGS.quick)
        os.makedirs(os.path.dirname(flags.FLAGS.out) or ".", exist_ok=True)
        with open(flags.FLAGS.out, "w") as f:
            json.dump(result, f, indent=1)
        print(table(result))

    app.run(_main)


if __name__ == "__main__":
    main()
