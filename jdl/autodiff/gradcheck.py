"""Gradient checking by central finite differences, over any pytree of parameters."""

from __future__ import annotations

from typing import Any, Callable

import jax
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


def relative_error(a: Any, b: Any) -> float:
    """Worst error relative to the leaf's scale: max_i |a_i − b_i| / max(max_i |a_i|, max_i |b_i|).

    Scaling by the largest entry (not entry by entry) keeps tiny gradient entries, where finite
    differences are all round-off, from dominating; 0 when both leaves are 0. Host-side (numpy):
    a leaf of a new shape costs no compilation."""
    a, b = np.asarray(a), np.asarray(b)
    if not a.size:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-30)
    return float(np.max(np.abs(a - b))) / scale


def check_grads(f: Callable[[Any], jax.Array], params: Any, eps: float = 1e-6) -> dict[str, float]:
    """Compare ``jax.grad(f)`` with central finite differences leaf by leaf.

    The gradient is jitted (f must be jittable: ``numerical_grad`` jits it too); op by op, its
    backward pass would compile every primitive separately.

    Returns {leaf path: worst relative error}; in float64 a correct gradient gives ~1e-8 or less.
    """
    return compare_grads(jax.jit(jax.grad(f))(params), numerical_grad(f, params, eps))


def compare_grads(a: Any, b: Any) -> dict[str, float]:
    """The worst relative error of every leaf of two gradient pytrees of one structure (a
    hand-derived gradient against ``jax.grad``, or ``jax.grad`` against finite differences):
    {leaf path: ``relative_error(a_leaf, b_leaf)``}, paths as ``jax.tree_util.keystr`` writes them.
    """
    ta, tb = jax.tree.structure(a), jax.tree.structure(b)
    if ta != tb:
        raise ValueError(f"compare_grads: the two gradients have different structures:\n{ta}\n{tb}")
    errors = jax.tree.map(lambda x, y: float(relative_error(x, y)), a, b)
    return {jax.tree_util.keystr(path): err for path, err in jax.tree_util.tree_leaves_with_path(errors)}


def grad_report(errors: dict[str, float], tol: float = 1e-7) -> str:
    """A per-leaf table of worst relative errors (from ``check_grads`` or ``compare_grads``),
    worst first, each marked ``ok`` or ``FAIL`` against ``tol``, and a last line with the verdict.

    >>> print(grad_report({"['w']": 3e-10, "['b']": 2e-3}, tol=1e-7))
    leaf   worst rel. error
    ['b']          2.00e-03  FAIL
    ['w']          3.00e-10  ok
    1 of 2 leaves above 1e-07
    """
    rows = sorted(errors.items(), key=lambda kv: -kv[1])
    width = max([len("leaf")] + [len(k) for k in errors])
    lines = [f"{'leaf':<{width}}  {'worst rel. error':>16}"]
    lines += [f"{k:<{width}}  {v:16.2e}  {'ok' if v <= tol else 'FAIL'}" for k, v in rows]
    bad = sum(v > tol or v != v for v in errors.values())
    lines.append(f"{bad} of {len(errors)} leaves above {tol:g}")
    return "\n".join(lines)
