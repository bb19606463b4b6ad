"""Gradient centralization (Yong et al., 2020), one of the course's techniques for training:
remove each weight vector's mean gradient before the optimizer sees it.

For a weight leaf W with fan-in axes A (every axis but the output one) and gradient G,

    Φ(G)_{·,o} = G_{·,o} − 1/|A| Σ_{i∈A} G_{i,o}          (leaves of rank ≥ 2)
    Φ(g) = g                                               (biases, norm scales: rank < 2)

so every output unit's gradient has mean 0 over its inputs: the step is projected onto the
hyperplane Σ_i ΔW_{i,o} = 0, which constrains the weights and, the paper argues, regularizes
and smooths the loss. Chain it before any optimizer: ``chain(centralize(), sgd(0.1))``.

jdl's weights are (d_in, d_out) and HWIO, so the output axis is the LAST one. optax's
``optax.centralize`` keeps the FIRST axis (PyTorch's (d_out, d_in) layout); on jdl's params that
is not gradient centralization. ``centralize(output_axis=0)`` reproduces optax's (tested).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.optim.base import EmptyState, GradientTransformation, map_updates


def centralized(g: jax.Array, output_axis: int = -1) -> jax.Array:
    """Φ(g) = g − mean of g over every axis but ``output_axis``, for rank ≥ 2; g otherwise.

    Shapes: g (...) → the same shape.

    >>> centralized(jnp.array([[1.0, 4.0], [3.0, 8.0]])).tolist()  # (d_in=2, d_out=2)
    [[-1.0, -2.0], [1.0, 2.0]]
    """
    if g.ndim < 2:
        return g
    keep = output_axis % g.ndim
    axes = tuple(a for a in range(g.ndim) if a != keep)
    return g - jnp.mean(g, axis=axes, keepdims=True)


def centralize(output_axis: int = -1) -> GradientTransformation:
    """u = Φ(g) leaf by leaf (see ``centralized``): gradient centralization, stateless.

    Args: output_axis: the axis of a weight that indexes its output units; −1 for jdl's
      Dense (d_in, d_out) and HWIO kernels, 0 for PyTorch layouts (optax's ``centralize``).
    """
    if not isinstance(output_axis, int):
        raise ValueError(f"centralize: output_axis must be an int, got {output_axis!r}")

    def update(grads, state, params=None):
        del params
        return map_updates(lambda g: centralized(g, output_axis), grads), state

    return GradientTransformation(lambda params: EmptyState(), update)
