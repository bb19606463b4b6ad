"""What the workloads share: the optimizer choice, ordered weights that every implementation
loads, and the runners that wrap a JAX or a PyTorch training step.

Weights travel as a list of layers in jdl's layout (Dense ``w`` (d_in, d_out), Conv ``w`` HWIO,
``b``), written once by the parent to an .npz file so that jdl, flax and PyTorch start from the
same numbers.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Callable

import numpy as np

from benchmarks.timing import Runner, trace_counter

LEARNING_RATE = 1e-3


class Skip(Exception):
    """A workload (or an implementation of it) that cannot run here; the message says why."""


OPTIMIZER = "adam"  # what every implementation trains with ('sgd' and 'adamw' are the other choices the runners take)
WEIGHT_DECAY = 0.1  # AdamW's decoupled decay λ (nanoGPT's), on every parameter in all three libraries

# Compute dtypes a workload can run in. 'bfloat16' is mixed precision in all three libraries:
# float32 params and optimizer state, forward and backward in bfloat16, the loss in float32
# (jdl ``supervised(compute_dtype=)``, flax ``dtype=`` with ``param_dtype=float32``, PyTorch
# ``torch.autocast``).
DTYPES = ("float32", "bfloat16")


def compute_dtype(options: dict) -> str:
    """The workload's compute dtype ('float32' unless the options say otherwise), checked."""
    dtype = options.get("dtype", "float32")
    if dtype not in DTYPES:
        raise ValueError(f"unknown compute dtype {dtype!r}; expected one of {DTYPES}")
    return dtype


def _layer_index(path: tuple) -> tuple:
    """Sort key of a params path: '10_dense' after '2_relu' (numeric prefix), then the name."""
    key = []
    for part in path:
        name = str(getattr(part, "key", part))
        m = re.match(r"(\d+)_", name)
        key.append((int(m.group(1)) if m else -1, name))
    return tuple(key)


def ordered_layers(params: Any) -> list[tuple[tuple, dict]]:
    """Every dict of ``params`` holding a ``w``, in the order the layers run: [(path, {'w', 'b'})]."""
    found = []

    def visit(tree, path):
        if isinstance(tree, dict):
            if "w" in tree and not isinstance(tree["w"], dict):
                found.append((path, tree))
                return
            for k, v in tree.items():
                visit(v, path + (k,))

    visit(params, ())
    return sorted(found, key=lambda item: _layer_index(item[0]))


def with_layers(params: Any, layers: list[dict]) -> Any:
    """A copy of jdl ``params`` whose weight dicts (in run order) are replaced by ``layers``."""
    import jax.numpy as jnp

    paths = [p for p, _ in ordered_layers(params)]
    if len(paths) != len(layers):
        raise ValueError(f"with_layers: params have {len(paths)} weight layers, got {len(layers)}")

    def replace(tree, path):
        if path in paths:
            return {k: jnp.asarray(v) for k, v in layers[paths.index(path)].items()}
        if isinstance(tree, dict):
            return {k: replace(v, path + (k,)) for k, v in tree.items()}
        return tree

    return replace(params, ())


def save_layers(path: str, layers: list[dict]) -> str:
    """Write layers as ``{i}/w``, ``{i}/b`` arrays of one .npz file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    np.savez(path, **{f"{i}/{k}": np.asarray(v) for i, layer in enumerate(layers) for k, v in layer.items()})
    return path


def load_layers(path: str) -> list[dict]:
    """Read what ``save_layers`` wrote: [{'w': array, 'b': array}, ...]."""
    with np.load(path) as f:
        n = 1 + max(int(k.split("/")[0]) for k in f.files)
        return [{k.split("/")[1]: f[k] for k in f.files if k.split("/")[0] == str(i)} for i in range(n)]


def jax_runner(step: Callable, carry: Any, batch: Any, traces: Callable[[], int]) -> Runner:
    """A Runner for a jitted ``step(carry, batch) -> (carry, metrics)`` with the carry donated."""
    import jax

    held = [carry]

    def first_call() -> dict:
        start = time.perf_counter()
        step.lower(held[0], batch)
        lowered, lowered_cpu = time.perf_counter(), time.process_time()
        out = run_step()
        jax.block_until_ready(out)
        return {"trace_lower_s": lowered - start, "first_call_s": time.perf_counter() - lowered,
                "first_call_cpu_s": time.process_time() - lowered_cpu}

    def run_step():
        held[0], metrics = step(held[0], batch)
        return metrics

    return Runner(first_call, run_step, jax.block_until_ready, traces)


def flax_adam_or_sgd(name: str):
    """The optax optimizer matching jdl's choice (Adam β=(0.9, 0.999), ε=1e-8, AdamW with
    ``WEIGHT_DECAY``, or SGD)."""
    import optax

    if name == "adamw":
        return optax.adamw(LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    return optax.adam(LEARNING_RATE) if name == "adam" else optax.sgd(LEARNING_RATE)


def jdl_optimizer(name: str, fused: bool = False):
    """jdl's optimizer of that name: ``jdl.optim.adam``/``sgd``(lr), or ``adamw`` with ``WEIGHT_DECAY``;
    ``fused``: Adam and AdamW as ``jdl.optim.fused_adam``/``fused_adamw`` (one native pass over
    all leaves, the counterpart of PyTorch's ``fused=True``)."""
    import jdl

    if name == "adamw":
        return (jdl.optim.fused_adamw if fused else jdl.optim.adamw)(LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    if name == "adam" and fused:
        return jdl.optim.fused_adam(LEARNING_RATE)
    return getattr(jdl.optim, name)(LEARNING_RATE)


# below this many params the XLA update wins: its per-leaf loops start as each gradient is ready
# and overlap the rest of the backward pass on the other core, while the one fused call waits for
# all of them (LeNet-5, 61K params: +6–11% step time fused; benchmarks/NOTES.md, "one native pass")
FUSED_MIN_PARAMS = 500_000


def fused_update(optimizer: str, dtype: str = "float32", mesh: Any = None, n_params: int = 0) -> bool:
    """Whether jdl's step takes the fused optimizer: Adam or AdamW on float32 params, at least
    ``FUSED_MIN_PARAMS`` of them, the CPU backend, one device, and ``jdl.kernels.native``
    buildable here; the XLA update elsewhere (small models, GPUs, meshes)."""
    import jax

    from jdl.kernels import native

    return (optimizer in ("adam", "adamw") and dtype in ("float32", "bfloat16") and mesh is None
            and n_params >= FUSED_MIN_PARAMS and jax.default_backend() == "cpu" and native.available())


def flax_runner(model: Any, params: Any, optimizer: str, batch: tuple) -> Runner:
    """flax.linen + optax: value_and_grad of the mean softmax cross-entropy (of float32
    logits), the update and ``apply_updates`` in one jitted step with params and optimizer
    state donated. A bfloat16 run passes a model built with ``dtype=bfloat16``."""
    import jax
    import optax

    counted, traces = trace_counter()
    tx = flax_adam_or_sgd(optimizer)

    @counted
    def loss(p, x, y):
        logits = model.apply({"params": p}, x).astype("float32")
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(carry, batch):
        p, opt_state = carry
        value, grads = jax.value_and_grad(loss)(p, *batch)
        updates, opt_state = tx.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), {"loss": value}

    return jax_runner(jax.jit(step, donate_argnums=(0,)), (params, tx.init(params)), batch, traces)


def jdl_runner(model: Any, layers: list[dict], optimizer: str, x: np.ndarray, y: np.ndarray,
               dtype: str = "float32", load: Callable[[Any, list[dict]], Any] = with_layers,
               mesh: Any = None, fused: bool | None = None) -> Runner:
    """jdl as a user writes it: ``init_train_state`` and ``make_step`` (jitted, donated) with
    ``softmax_cross_entropy``; params replaced by the shared weights (``load(params, layers)``,
    by default ``with_layers``); ``dtype`` 'bfloat16' is
    ``supervised(model, loss, compute_dtype=jnp.bfloat16)``. With a ``mesh``
    (``jdl.distributed.data_mesh``) the train state is replicated and the batch split over it:
    the same step, data-parallel. ``fused`` (default: ``fused_update``) takes
    ``jdl_optimizer(optimizer, fused=True)``, as PyTorch's runner takes ``fused=True``."""
    import jax.numpy as jnp

    from jdl.losses import softmax_cross_entropy
    from jdl.train.state import TrainState, init_train_state
    from jdl.train.step import make_step
    from jdl.train.supervised import supervised

    counted, traces = trace_counter()
    if fused is None:
        import jax

        fused = fused_update(optimizer, dtype, mesh, sum(np.size(a) for a in jax.tree.leaves(layers)))
    opt = jdl_optimizer(optimizer, fused)
    ts = init_train_state(model, opt, jnp.asarray(x), seed=0)
    params = load(ts.params, layers)
    ts = TrainState(params, ts.state, opt.init(params), ts.step, ts.key)
    loss_fn = supervised(model, counted(softmax_cross_entropy),
                         compute_dtype=None if dtype == "float32" else jnp.dtype(dtype))
    step = make_step(loss_fn, opt)
    batch = (jnp.asarray(x), jnp.asarray(y))
    if mesh is not None:
        from jdl import distributed

        ts, batch = distributed.replicate(mesh, ts), distributed.shard_batch(mesh, batch)
    return jax_runner(step, ts, batch, traces)


def torch_runner(model: Any, optimizer: str, x: np.ndarray, y: np.ndarray, device: str = "cpu",
                 dtype: str = "float32") -> Runner:
    """PyTorch eager: zero_grad, forward, cross-entropy, backward, optimizer step; Adam is the
    fused kernel where this torch build has it (``fused=True``), else the foreach one (AdamW
    alike). ``dtype``
    'bfloat16' runs the forward and the loss under ``torch.autocast`` (float32 params)."""
    import torch
    import torch.nn.functional as F

    device = "cuda" if device == "gpu" else device
    model = model.to(device)
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    yt = torch.from_numpy(y.astype(np.int64)).to(device)
    if optimizer in ("adam", "adamw"):
        cls, kw = ((torch.optim.Adam, {}) if optimizer == "adam"
                   else (torch.optim.AdamW, {"weight_decay": WEIGHT_DECAY}))
        try:
            opt = cls(model.parameters(), lr=LEARNING_RATE, fused=True, **kw)
        except (RuntimeError, TypeError):
            opt = cls(model.parameters(), lr=LEARNING_RATE, foreach=True, **kw)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)

    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16")

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        return loss

    def sync(loss):
        if device != "cpu":
            torch.cuda.synchronize()

    def first_call() -> dict:
        start, start_cpu = time.perf_counter(), time.process_time()
        sync(step())
        return {"trace_lower_s": 0.0, "first_call_s": time.perf_counter() - start,
                "first_call_cpu_s": time.process_time() - start_cpu}

    return Runner(first_call, step, sync, lambda: -1)


def torch_linear(torch_layer: Any, layer: dict) -> None:
    """Copy a jdl Dense layer (w (d_in, d_out), b) into a torch.nn.Linear (weight = wᵀ)."""
    import torch

    with torch.no_grad():
        torch_layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer["w"].T)))
        torch_layer.bias.copy_(torch.from_numpy(np.array(layer["b"])))
