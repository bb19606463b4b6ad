"""LoRA: low-rank adaptation of a frozen pre-trained model (Hu et al., 2021; the course's
parameter-efficient fine-tuning).

A Dense layer's weight W (d_in, d_out) stays frozen; the update is learned as a product of two
thin matrices:

    h = x W + (α/r)·(x A) B + b,   i.e.  W' = W + (α/r)·A B,   A (d_in, r), B (r, d_out)

with r ≪ min(d_in, d_out). At init A is random and B = 0, so ΔW = 0 and the wrapped model is
exactly the base model; only A and B train, r·(d_in + d_out) numbers instead of d_in·d_out.
``merge`` folds ΔW into W once training is done, so inference costs nothing extra.

jdl keeps the row-vector layout (``Dense``: y = x @ w), so ``a`` and ``b`` here are the
transposes of the paper's (and PEFT's ``lora_A.weight`` (r, d_in), ``lora_B.weight`` (d_out, r)):
a = A_PEFTᵀ, b = B_PEFTᵀ, and x a b = x (B_PEFT A_PEFT)ᵀ.

Any model whose params hold Dense-layout dicts ``{'w': (d_in, d_out), 'b'}`` can be wrapped
without editing it: its params become ``{'base': params, 'lora': {path: {'a', 'b'}}}`` (path the
Dense dict's, 'blocks/0_block/attn/q'), and ``with_lora(model)`` runs the model on the merged
weights, computed inside apply, with the gradient of ``base`` stopped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_keywords, param_count, path_str
from jdl.nn.linear import dense
from jdl.paths import Patterns, as_patterns, matches

INITS = ("gaussian", "kaiming")


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
    """Which Dense layers get adapters, and their rank and scale.

    Args:
      rank: r, the inner dimension of A B.
      alpha: α; the update is scaled by α/r, so changing r does not change the step size's
        meaning (the paper's choice; α = 2r is common).
      targets: ``jdl.paths`` patterns over the paths of Dense dicts ('blocks/*/attn/*' for the
        GPT's q, k, v, o). Only dicts with a 2-D ``w`` are adapted.
      init: A's init: "gaussian", A ~ N(0, 1/r²) (the paper's Gaussian, with PEFT's std for it),
        or "kaiming", A ~ U(−1/√d_in, 1/√d_in) (PEFT's default, kaiming_uniform with a = √5).
    """

    rank: int = 8
    alpha: float = 16.0
    targets: Patterns = "**"
    init: str = "gaussian"

    def __post_init__(self):
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"LoRAConfig: rank must be a positive int, got {self.rank!r}")
        if self.init not in INITS:
            raise ValueError(f"LoRAConfig: init must be one of {INITS}, got {self.init!r}")
        object.__setattr__(self, "targets", as_patterns(self.targets, "LoRAConfig.targets"))

    @property
    def scale(self) -> float:
        """α/r."""
        return self.alpha / self.rank


def dense_paths(params: Params, targets: Patterns) -> list[str]:
    """The paths of the dicts with a 2-D ``w`` leaf (Dense layout) that match ``targets``."""
    out = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if getattr(path[-1], "key", None) == "w" and jnp.ndim(leaf) == 2:
            parent = path_str(path[:-1])
            if matches(parent, targets):
                out.append(parent)
    return out


def get_at(tree: Params, path: str) -> Any:
    """tree[k_1][k_2]… for path 'k_1/k_2/…'; ``ValueError`` naming the missing key."""
    node = tree
    for k in path.split("/") if path else []:
        if not isinstance(node, dict) or k not in node:
            raise ValueError(f"lora: the base params have no {path!r} (no key {k!r} there)")
        node = node[k]
    return node


def set_at(tree: Params, path: str, value: Any) -> Params:
    """A copy of ``tree`` with the node at ``path`` replaced (dicts copied along the path only)."""
    if not path:
        return value
    k, _, rest = path.partition("/")
    return {**tree, k: set_at(tree[k], rest, value)}


def init_adapter(key: PRNGKey, d_in: int, d_out: int, config: LoRAConfig, dtype: Any) -> Params:
    """One adapter: a (d_in, r) random (``config.init``), b (r, d_out) zero, so ΔW = 0."""
    r = config.rank
    if config.init == "gaussian":
        a = jax.random.normal(key, (d_in, r), dtype) / r
    else:
        bound = 1.0 / math.sqrt(d_in)
        a = jax.random.uniform(key, (d_in, r), dtype, -bound, bound)
    return {"a": a, "b": jnp.zeros((r, d_out), dtype)}


def init_lora(key: PRNGKey, base: Params, config: LoRAConfig) -> Params:
    """Wrap pre-trained params: ``{'base': base, 'lora': {path: {'a', 'b'}}}``, one adapter per
    target Dense dict (adapter i gets the key fold_in(key, i), in path order).

    Shapes: a (d_in, r), b (r, d_out) for a target w (d_in, d_out).
    Args:
      key: a ``jax.random`` key for the A matrices.
      base: the model's params (left as they are, in ``base``).
      config: a ``LoRAConfig``.
    Returns: the LoRA params. Raises ``ValueError`` when no Dense dict matches the targets
    (listing those there are) or r exceeds min(d_in, d_out) of a target.
    """
    paths = dense_paths(base, config.targets)
    if not paths:
        raise ValueError(f"lora: no Dense params (a dict with a 2-D 'w') match {config.targets}; "
                         f"the Dense paths are {dense_paths(base, '**')}")
    lora = {}
    for i, path in enumerate(paths):
        w = get_at(base, path)["w"]
        d_in, d_out = w.shape
        if config.rank > min(d_in, d_out):
            raise ValueError(f"lora: rank r={config.rank} exceeds min(d_in, d_out)={min(d_in, d_out)} "
                             f"of {path!r} (w of shape {tuple(w.shape)})")
        lora[path] = init_adapter(jax.random.fold_in(key, i), d_in, d_out, config, w.dtype)
    return {"base": base, "lora": lora}


def check_lora_params(params: Any, where: str) -> None:
    """``TypeError`` unless params are ``{'base': …, 'lora': …}``, saying how to make them."""
    if not isinstance(params, dict) or set(params) != {"base", "lora"}:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise TypeError(f"{where}: expected LoRA params {{'base', 'lora'}}, got {got}; "
                        f"make them with init_lora(key, params, config)")


def delta(adapter: Params, scale: float) -> jax.Array:
    """ΔW = (α/r)·A B.  Shapes: a (d_in, r), b (r, d_out) → (d_in, d_out)."""
    return scale * (adapter["a"] @ adapter["b"])


def merge(params: Params, config: LoRAConfig, *, stop_base_gradient: bool = False) -> Params:
    """The base params with every adapted W replaced by W + (α/r)·A B: the same layout as the
    base model's, which it runs unchanged (and at no extra cost).

    Args:
      params: ``{'base', 'lora'}`` from ``init_lora``.
      config: the ``LoRAConfig`` they were made with (its α/r).
      stop_base_gradient: wrap ``base`` in ``jax.lax.stop_gradient`` (the frozen base of
        ``with_lora``), so gradients reach only A and B.
    Returns: params in the base layout. Raises ``ValueError`` for an adapter whose shapes do not
    fit its W.
    """
    check_lora_params(params, "lora.merge")
    base = jax.lax.stop_gradient(params["base"]) if stop_base_gradient else params["base"]
    for path, adapter in params["lora"].items():
        dense_p = get_at(base, path)
        w, a, b = dense_p["w"], adapter["a"], adapter["b"]
        if a.shape[0] != w.shape[0] or b.shape[1] != w.shape[1] or a.shape[1] != b.shape[0]:
            raise ValueError(f"lora.merge: {path!r} has w {tuple(w.shape)} but a {tuple(a.shape)}, "
                             f"b {tuple(b.shape)}; expected a (d_in, r), b (r, d_out)")
        base = set_at(base, path, {**dense_p, "w": w + delta(adapter, config.scale).astype(w.dtype)})
    return base


def lora_dense(params: Params, adapter: Params, x: jax.Array, scale: float) -> jax.Array:
    """The unmerged LoRA Dense: h = x W + b + (α/r)·(x A) B, two thin matmuls beside the frozen one.

    Shapes: x (..., d_in), w (d_in, d_out), a (d_in, r), b (r, d_out) → (..., d_out).
    """
    return dense(params, x) + scale * ((x @ adapter["a"]) @ adapter["b"])  # (..., d_out)


def with_lora(model: Module, config: LoRAConfig, *, train_base: bool = False) -> Module:
    """``model`` with LoRA adapters: init gives ``init_lora`` of the model's fresh params (load
    pre-trained ones with ``init_lora(key, pretrained, config)`` instead); apply runs the model on
    ``merge(params, config, stop_base_gradient=not train_base)``, so at init it equals the model
    exactly and gradients reach only ``lora``.

    Shapes: those of ``model``. Args: model, any ``jdl.Module``; config, a ``LoRAConfig``;
    train_base: let gradients reach ``base`` too (∂ℓ/∂W of the merged W' = W + (α/r)·A B), for
    variants that also train some base leaves (freeze the rest with ``jdl.optim.frozen``).
    """

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        params, state = model.init(jax.random.fold_in(key, 0), x)
        return init_lora(jax.random.fold_in(key, 1), params, config), state

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords(f"lora_{model.name}", extra, model.accepts)
        merged = merge(params, config, stop_base_gradient=not train_base)
        return model.apply(merged, state, x, key=key, train=train, **extra)

    return Module(init, apply, f"lora_{model.name}", (model,), model.accepts)


class ParamCounts(NamedTuple):
    """trainable: Σ r·(d_in + d_out) over the adapters; full: the base model's count;
    fraction: trainable/full."""

    trainable: int
    full: int
    fraction: float


def trainable_count(params: Params) -> ParamCounts:
    """The numbers LoRA trains beside the base model's count: r·(d_in + d_out) per adapter vs
    every base param (d_in·d_out + d_out per Dense)."""
    check_lora_params(params, "lora.trainable_count")
    trainable, full = param_count(params["lora"]), param_count(params["base"])
    return ParamCounts(trainable, full, trainable / full)
