"""Fused multi-tensor optimizers (PyTorch's ``fused=True``): Adam, AdamW and SGD-momentum whose
step updates every leaf in one native pass (``jdl.kernels.optim_native``), the moments kept as one
flat float32 vector each.

A ``FusedTransformation`` is a gradient transformation (``init``, ``update`` — the plain
definition in jnp, so it composes and tests like any other) with one more function,

    step: (grads, opt_state, params) -> (params', opt_state')

which applies the update itself, reading g, θ, m, v once and writing θ, m, v once. ``make_step``
(and so ``fit``) calls ``step`` when given one. The update equals ``adam``/``adamw``/``sgd``'s
(and optax's) to float32 rounding: the same operations in the same order, each rounded to
float32, except that Adam's step multiplies by 1/c₁ and 1/c₂ instead of dividing by c₁ and c₂.

Why a flat moment buffer: under ``jax.jit`` every array of the call costs a few microseconds of
dispatch, so 200 leaves with two moments each spend milliseconds before any arithmetic; the flat
moments leave one array per param. Float32 params on the CPU only (x86-64 with AVX2): elsewhere
use ``adam``, ``adamw`` or ``sgd``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jdl.kernels import optim_native
from jdl.optim.base import (
    ScalarOrSchedule, bias_correction, check_decay, check_learning_rate, check_nonnegative, check_positive, is_none,
)
from jdl.optim.flat import ravel, unravel


class FusedTransformation(NamedTuple):
    """``init``, ``update`` as any gradient transformation, and ``step(grads, opt_state, params)
    -> (params', opt_state')``, the update applied in one fused pass."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]
    step: Callable[[Any, Any, Any], tuple[Any, Any]]


class FusedAdamState(NamedTuple):
    """count: t; m, v: the moments of all leaves, flattened and concatenated, (N,) float32."""

    count: jax.Array
    m: jax.Array
    v: jax.Array


class FusedTraceState(NamedTuple):
    """count: t; trace: τ of all leaves, flattened and concatenated, (N,) float32."""

    count: jax.Array
    trace: jax.Array


def _leaves(name: str, grads: Any, params: Any) -> tuple[list, list, Any]:
    """(gradient leaves, param leaves, treedef), refusing None gradients (the kernel checks dtypes
    and shapes)."""
    g, treedef = jax.tree.flatten(grads, is_leaf=is_none)
    if any(x is None for x in g):
        raise ValueError(f"{name}: every param needs a gradient (a None leaf freezes a param; "
                         f"use jdl.optim.adam/adamw/sgd with frozen params)")
    return g, treedef.flatten_up_to(params), treedef


def _zeros(name: str, params: Any) -> jax.Array:
    """A flat float32 zero vector as long as all params together, refusing non-float32 leaves."""
    for path, p in jax.tree_util.tree_leaves_with_path(params):
        if jnp.result_type(p) != jnp.float32:
            raise ValueError(f"{name}: float32 params only, {jax.tree_util.keystr(path)} is {jnp.result_type(p)}")
    return jnp.zeros((sum(jnp.size(p) for p in jax.tree.leaves(params)),), jnp.float32)


def _neg_lr(learning_rate: ScalarOrSchedule, count: jax.Array) -> jax.Array:
    """−η_t as float32, with t the updates made before this one (as ``scale_by_learning_rate``)."""
    lr = learning_rate(count) if callable(learning_rate) else learning_rate
    return jnp.asarray(-lr, jnp.float32)


def _check_cpu(name: str) -> None:
    if jax.default_backend() != "cpu":
        raise ValueError(f"{name}: the fused step is a CPU kernel, the backend is {jax.default_backend()}; "
                         f"use jdl.optim.adam/adamw/sgd there")


def fused_adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
               weight_decay: float = 0.0) -> FusedTransformation:
    """Adam (``weight_decay=0``) or AdamW (λ > 0), as ``adam``/``adamw`` define them:

        m ← (1−β₁)·g + β₁·m,  v ← (1−β₂)·g² + β₂·v,  θ ← θ − η_t·((m/c₁)/(√(v/c₂) + ε) + λ·θ)

    with c₁ = 1 − β₁^t, c₂ = 1 − β₂^t. Shapes: params any tree of float32 arrays; m, v (N,) with
    N the number of params. Args as ``adamw`` (``learning_rate`` a float or a schedule); no mask
    for the decay (use ``adamw(mask=…)``).
    """
    for arg, value in (("b1", b1), ("b2", b2)):
        check_decay("fused_adam", arg, value)
    check_positive("fused_adam", "eps", eps)
    check_learning_rate("fused_adam", learning_rate)
    check_nonnegative("fused_adam", "weight_decay", weight_decay)

    def init(params):
        zeros = _zeros("fused_adam", params)
        return FusedAdamState(jnp.zeros([], jnp.int32), zeros, jnp.zeros_like(zeros))

    def scalars(state, count):
        return jnp.stack([bias_correction(b1, count), bias_correction(b2, count),
                          _neg_lr(learning_rate, state.count), jnp.asarray(weight_decay, jnp.float32)])

    def kernel_scalars(state, count):  # the kernel multiplies by 1/c₁ and 1/c₂
        c1, c2, neg_lr, wd = scalars(state, count)
        return jnp.stack([1 / c1, 1 / c2, neg_lr, wd])

    def update(grads, state, params=None):
        _leaves("fused_adam", grads, params)
        count = state.count + 1
        c1, c2, neg_lr, wd = scalars(state, count)
        flat_g = ravel(grads)
        m = (1 - b1) * flat_g + b1 * state.m
        v = (1 - b2) * (flat_g * flat_g) + b2 * state.v
        u = (m / c1) / (jnp.sqrt(v / c2) + eps)
        if weight_decay:
            u = u + wd * ravel(params)
        return unravel(neg_lr * u, grads), FusedAdamState(count, m, v)

    def step(grads, state, params):
        _check_cpu("fused_adam")
        g, p, treedef = _leaves("fused_adam", grads, params)
        count = state.count + 1
        new, m, v = optim_native.adam_update(g, p, state.m, state.v, kernel_scalars(state, count),
                                               b1=b1, b2=b2, eps=eps)
        return treedef.unflatten(new), FusedAdamState(count, m, v)

    return FusedTransformation(init, update, step)


def fused_adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                weight_decay: float = 1e-4) -> FusedTransformation:
    """AdamW, θ ← θ − η_t·(m̂/(√v̂ + ε) + λ·θ): ``fused_adam`` with ``adamw``'s default λ = 1e-4."""
    return fused_adam(learning_rate, b1, b2, eps, weight_decay)


def fused_sgd(learning_rate: ScalarOrSchedule, momentum: float = 0.9, nesterov: bool = False) -> FusedTransformation:
    """SGD with heavy-ball momentum as ``sgd(η, momentum=μ, nesterov=…)`` (optax's trace form):

        τ ← g + μ·τ;  θ ← θ − η_t·τ   (Nesterov: θ ← θ − η_t·(g + μ·τ))

    Shapes: params any tree of float32 arrays; τ (N,). Args: learning_rate: η or a schedule;
    momentum: μ in [0, 1); nesterov: bool.
    """
    check_decay("fused_sgd", "momentum", momentum)
    check_learning_rate("fused_sgd", learning_rate)

    def init(params):
        return FusedTraceState(jnp.zeros([], jnp.int32), _zeros("fused_sgd", params))

    def update(grads, state, params=None):
        _leaves("fused_sgd", grads, params if params is not None else grads)
        flat_g = ravel(grads)
        trace = flat_g + momentum * state.trace
        u = flat_g + momentum * trace if nesterov else trace
        return unravel(_neg_lr(learning_rate, state.count) * u, grads), FusedTraceState(state.count + 1, trace)

    def step(grads, state, params):
        _check_cpu("fused_sgd")
        g, p, treedef = _leaves("fused_sgd", grads, params)
        new, trace = optim_native.momentum_update(g, p, state.trace, _neg_lr(learning_rate, state.count),
                                                  momentum=momentum, nesterov=nesterov)
        return treedef.unflatten(new), FusedTraceState(state.count + 1, trace)

    return FusedTransformation(init, update, step)
