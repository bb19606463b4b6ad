"""Gradient checking by central finite differences, over any pytree of parameters."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np


def numerical_grad(f: Callable[[Any], jax.Array], params: Any, eps: float = 1e-6) -> Any:
    """Central differences: ∂f/∂θ_i ≈ (f(θ + ε e_i) − f(θ − ε e_i)) / (2ε), for every scalar θ_i
    of every leaf. Run it in float64 (``with jax.enable_x64(True)``) for ~1e-9 accuracy; the
    truncation error is O(ε²).

    Shapes: params any pytree of arrays; f(params) a scalar. Returns a pytree like params.
    """
    leaves, treedef = jax.tree.flatten(params)
    leaves = [np.asarray(leaf) for leaf in leaves]
    f_jit = jax.jit(lambda ls: f(jax.tree.unflatten(treedef, ls)))
    grads = []
    for i, leaf in enumerate(leaves):
        g = np.zeros(leaf.shape, dtype=leaf.dtype)
        for idx in np.ndindex(leaf.shape):
            plus = [leaf.copy() if j == i else l for j, l in enumerate(leaves)]
            minus = [leaf.copy() if j == i else l for j, l in enumerate(leaves)]
            plus[i][idx] += eps
            minus[i][idx] -= eps
            g[idx] = (float(f_jit(plus)) - float(f_jit(minus))) / (2 * eps)
        grads.append(g)
    return jax.tree.unflatten(treedef, grads)


def relative_error(a: Any, b: Any) -> jax.Array:
    """Worst error relative to the leaf's scale: max_i |a_i − b_i| / max(max_i |a_i|, max_i |b_i|).

    Scaling by the largest entry (not entry by entry) keeps tiny gradient entries, where finite
    differences are all round-off, from dominating; 0 when both leaves are 0."""
    a, b = jnp.asarray(a), jnp.asarray(b)
    if not a.size:
        return jnp.zeros(())
    scale = jnp.maximum(jnp.maximum(jnp.max(jnp.abs(a)), jnp.max(jnp.abs(b))), 1e-30)
    return jnp.max(jnp.abs(a - b)) / scale


def check_grads(f: Callable[[Any], jax.Array], params: Any, eps: float = 1e-6) -> dict[str, float]:
    """Compare ``jax.grad(f)`` with central finite differences leaf by leaf.

    Returns {leaf path: worst relative error}; in float64 a correct gradient gives ~1e-8 or less.
    """
    auto = jax.grad(f)(params)
    num = numerical_grad(f, params, eps)
    errors = jax.tree.map(lambda a, n: float(relative_error(a, n)), auto, num)
    return {jax.tree_util.keystr(path): err for path, err in jax.tree_util.tree_leaves_with_path(errors)}
