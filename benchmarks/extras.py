"""The benchmarks that are not one training step in three libraries:

- ``depth``: compile time and step time of Dense+tanh stacks of 12 and 24 layers built with a
  Python loop (``serial``) and with ``jdl.nn.repeat`` (``lax.scan``, optionally unrolled);
- ``per_example``: per-example gradients of the MLP at batch 128, ``jdl.per_example`` against
  jit(vmap(grad)), a Python loop of single-example grads and ``torch.func``;
- ``optim``: the optimizer updates of the optimizers issue (``benchmarks.optim``).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np


def _median_ms(fn: Callable[[], object], sync: Callable[[object], None], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        sync(fn())
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def depth(quick: bool = False, seed: int = 0) -> dict:
    """Compile seconds and step ms of L residual MLP blocks, x + Dense_d(tanh(Dense_2d(x))), for
    L in (12, 24) [quick: (2, 4)], built as a Python loop (``serial``) and as ``repeat``
    (unroll 1 and 2). Batch 128, d 256 [quick: 16, 32]."""
    import jax
    import jax.numpy as jnp

    import jdl
    from benchmarks.timing import measure
    from benchmarks.workloads import common

    batch, width = (16, 32) if quick else (128, 256)
    depths = (2, 4) if quick else (12, 24)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width), dtype=np.float32)
    y = rng.integers(0, width, batch).astype(np.int32)
    block = jdl.nn.residual(jdl.nn.serial(jdl.nn.Dense(2 * width), jnp.tanh, jdl.nn.Dense(width)))
    builds = {"loop": lambda n: jdl.nn.serial(*[block] * n),
              "repeat": lambda n: jdl.nn.repeat(block, n),
              "repeat_unroll2": lambda n: jdl.nn.repeat(block, n, unroll=2)}
    rows = []
    for n in depths:
        for kind, build in builds.items():
            model = build(n)
            params, _ = model.init(jax.random.key(seed), x)
            layers = [{k: np.asarray(v) for k, v in l.items()} for _, l in common.ordered_layers(params)]
            runner = common.jdl_runner(model, layers, common.OPTIMIZER, x, y) if kind == "loop" \
                else _stacked_runner(model, params, x, y)
            r = measure(runner, n_steps=2 if quick else 10, n_blocks=2 if quick else 5, n_warmup=1)
            rows.append({"layers": n, "kind": kind, "trace_lower_s": r["trace_lower_s"],
                         "first_call_s": r["first_call_s"], "first_call_cpu_s": r["first_call_cpu_s"],
                         "step_ms": r["step_ms"], "cpu_ms": r["cpu_ms"]})
    return {"batch": batch, "width": width, "rows": rows}


def _stacked_runner(model, params, x, y):
    """jdl_runner for a ``repeat`` model, whose params are already stacked (kept as initialized)."""
    import jax.numpy as jnp

    import jdl
    from benchmarks.timing import trace_counter
    from benchmarks.workloads import common
    from jdl.losses import softmax_cross_entropy
    from jdl.train.state import TrainState
    from jdl.train.step import make_step
    from jdl.train.supervised import supervised

    counted, traces = trace_counter()
    opt = getattr(jdl.optim, common.OPTIMIZER)(common.LEARNING_RATE)
    import jax

    ts = TrainState(params, {}, opt.init(params), jnp.zeros([], jnp.int32), jax.random.key(0))
    step = make_step(supervised(model, counted(softmax_cross_entropy)), opt)
    return common.jax_runner(step, ts, (jnp.asarray(x), jnp.asarray(y)), traces)


def per_example(quick: bool = False, seed: int = 0) -> dict:
    """ms per call of per-example gradients of the MLP 784-512-512-10 at batch 128 [quick: 8]."""
    import jax
    import jax.numpy as jnp

    from benchmarks.workloads import mlp
    from jdl.losses import softmax_cross_entropy
    from jdl.per_example import per_example_grads, per_example_loss, vmap_grads

    batch = 8 if quick else mlp.BATCH
    reps = 2 if quick else 7
    xn, yn = mlp.data(batch, seed)
    x, y = jnp.asarray(xn), jnp.asarray(yn)
    model = mlp.jdl_model()
    params, state = model.init(jax.random.key(seed), x)
    fast = per_example_grads(model, softmax_cross_entropy, params)
    ref = vmap_grads(model, softmax_cross_entropy)
    single = jax.jit(jax.grad(per_example_loss(model, softmax_cross_entropy)))
    sync = jax.block_until_ready
    rows = {}
    err = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), fast(params, state, x, y),
                       ref(params, state, x, y))
    for name, fn in (("jdl.per_example", fast), ("jit(vmap(grad))", ref)):
        rows[name] = _median_ms(lambda: fn(params, state, x, y), sync, reps)
        held = [fn(params, state, x, y)]

        def into(fn=fn):
            held[0] = fn(params, state, x, y, out=held[0])
            return held[0]

        sync(into())
        rows[name + ", out= donated"] = _median_ms(into, sync, reps)
    sync(single(params, state, x[0], y[0]))
    rows["loop of jit(grad)"] = _median_ms(
        lambda: [single(params, state, x[i], y[i]) for i in range(batch)], sync, reps)
    # The loop's 128 small trees are not the (B, …) arrays the others return; stacking them
    # writes the same fresh 343 MB (page faults included) that the rows above pay for.
    stack = jax.jit(lambda trees: jax.tree.map(lambda *g: jnp.stack(g), *trees))
    sync(stack([single(params, state, x[i], y[i]) for i in range(batch)]))
    rows["loop of jit(grad), stacked"] = _median_ms(
        lambda: stack([single(params, state, x[i], y[i]) for i in range(batch)]), sync, reps)
    try:
        rows["torch.func vmap(grad)"] = _torch_func_ms(params, xn, yn, reps)
    except ImportError:
        pass
    return {"batch": batch, "ms": rows, "max_abs_diff_vs_vmap": max(jax.tree.leaves(err))}


def _torch_func_ms(params, x, y, reps: int) -> float:
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad, vmap

    from benchmarks.workloads import common, mlp

    layers = [{k: np.asarray(v) for k, v in l.items()} for _, l in common.ordered_layers(params)]
    mods = []
    for i, (a, b) in enumerate(zip(mlp.DIMS, mlp.DIMS[1:])):
        lin = torch.nn.Linear(a, b)
        common.torch_linear(lin, layers[i])
        mods += [lin] + ([torch.nn.ReLU()] if i < len(mlp.DIMS) - 2 else [])
    # On a GPU run (JAX's backend is not the CPU) PyTorch runs on the GPU too, where it has one.
    import jax

    device = "cuda" if jax.default_backend() != "cpu" and torch.cuda.is_available() else "cpu"
    net = torch.nn.Sequential(*mods).to(device)
    weights = {k: v.detach() for k, v in net.named_parameters()}

    def loss(w, xi, yi):
        return F.cross_entropy(functional_call(net, w, (xi[None],)), yi[None])

    per = vmap(grad(loss), in_dims=(None, 0, 0))
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y.astype(np.int64)).to(device)

    def sync(_):
        if device != "cpu":
            torch.cuda.synchronize()

    sync(per(weights, xt, yt))
    return _median_ms(lambda: per(weights, xt, yt), sync, reps)


def optim(quick: bool = False, seed: int = 0) -> dict:
    """The optimizers issue's benchmark (``benchmarks.optim.run``)."""
    del seed
    from benchmarks import optim as optim_bench

    return optim_bench.run(quick=quick)


EXTRAS = {"depth": depth, "per_example": per_example, "optim": optim}


def run(name: str, quick: bool = False, seed: int = 0) -> dict:
    """Run the extra benchmark ``name`` (one of EXTRAS)."""
    if name not in EXTRAS:
        raise ValueError(f"unknown extra benchmark {name!r}; expected one of {sorted(EXTRAS)}")
    return EXTRAS[name](quick=quick, seed=seed)
