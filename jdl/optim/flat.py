"""The flat layout (the multi-tensor idea): an optimizer run on one contiguous vector that holds
every parameter, instead of leaf by leaf.

    g = concat(ravel(g_1), …, ravel(g_L))        θ = concat(ravel(θ_1), …, ravel(θ_L))
    u, s' = T.update(g, s, θ)                     u_i = reshape(u[o_i : o_i + n_i], shape_i)

with o_i the offset and n_i the size of leaf i. The optimizer's state (m, v, …) is then one
vector per moment, so an elementwise update is one loop over N numbers instead of L loops
over n_i; the values are those of the leaf-by-leaf update (elementwise rules are the same
numbers in another order; ``clip_by_global_norm`` sums the squares in another order, which
changes the last bits of the norm).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jdl.optim.base import GradientTransformation, is_none, with_extra_args_support


class FlatState(NamedTuple):
    """inner: the wrapped optimizer's state, built for the (N,) vector of all params."""

    inner: Any


def ravel(tree: Any) -> jax.Array:
    """The (N,) concatenation of every leaf, raveled, in ``jax.tree.leaves`` order."""
    leaves = jax.tree.leaves(tree)
    return jnp.concatenate([jnp.ravel(x) for x in leaves]) if leaves else jnp.zeros([0])


def unravel(flat: jax.Array, like: Any) -> Any:
    """The inverse of ``ravel``: ``flat`` cut into the leaves of ``like`` (shapes and dtypes)."""
    leaves, treedef = jax.tree.flatten(like)
    out, offset = [], 0
    for x in leaves:
        out.append(flat[offset:offset + x.size].reshape(x.shape).astype(x.dtype))
        offset += x.size
    return jax.tree.unflatten(treedef, out)


def _check(tree: Any, what: str) -> None:
    leaves = jax.tree.leaves(tree, is_leaf=is_none)
    if any(x is None for x in leaves):
        raise ValueError(f"flatten: the {what} tree has a None leaf; a frozen param has no place in the "
                         f"flat vector (use optax-style masking on the tree layout instead)")
    dtypes = {jnp.result_type(x) for x in leaves}
    if len(dtypes) > 1:
        raise TypeError(f"flatten: all {what} leaves must share one dtype to live in one vector, "
                        f"got {sorted(map(str, dtypes))}")


def flatten(optimizer: GradientTransformation) -> GradientTransformation:
    """``optimizer`` run on the flat layout (see the module docstring): its state is built for,
    and its update computed on, the (N,) vector of all params; updates come back as the tree.

    Transforms that look at the tree's structure (a mask such as ``weights_only``, per-leaf
    rules) see one vector: wrap the elementwise part only, e.g. ``chain(add_decayed_weights(λ,
    mask), flatten(adam(η)))``.

    Shapes: params and grads any pytree of one dtype; the inner state's moments are (N,),
    N = Σ_i n_i.
    Args: optimizer: any ``GradientTransformation``.
    Returns: a ``GradientTransformation`` with state ``FlatState(inner)``.
    Raises: ValueError for a None gradient leaf; TypeError for leaves of several dtypes.
    """
    inner = with_extra_args_support(optimizer)

    def init(params):
        _check(params, "params")
        return FlatState(inner.init(ravel(params)))

    def update(grads, state, params=None, **extra_args):
        _check(grads, "gradient")
        flat_params = None if params is None else ravel(params)
        updates, new_inner = inner.update(ravel(grads), state.inner, flat_params, **extra_args)
        return unravel(updates, grads), FlatState(new_inner)

    return GradientTransformation(init, update)
