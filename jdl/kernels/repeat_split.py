"""The backward pass of ``stack_custom_vjp(save='split')``: one layer's pullback cut in two at the
jaxpr level, so that the weight gradients of all layers run after the backward scan, batched,
without recomputing the cotangents inside the layer.

The pullback of a layer maps δ_{i+1} to (∂θ, δ_i, ∂extra). Its equations fall in two sets:

- the input side: every equation that δ_i depends on (walking back from δ_i's variables), run
  inside the backward scan, layer by layer;
- the weight side: the rest, which only ∂θ and ∂extra depend on (the dW = hᵀ·δ contractions,
  the bias sums), run once after the scan under ``vmap`` over the layer axis.

The scan stores, per layer, the input-side values that the weight side reads (for a block
Dense–tanh–Dense: δ_{i+1} itself and tanh′ ⊙ δ_{i+1}W₂ᵀ), so nothing is computed twice.
The equations are replayed with ``Primitive.bind`` as ``jax.core.eval_jaxpr`` does.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
from jax.extend.core import DropVar, Literal, Var


def _read(env: dict, v: Any) -> Any:
    return v.val if isinstance(v, Literal) else env[v]


def _run(eqns: list, env: dict) -> None:
    """Evaluate ``eqns`` in order, reading and writing ``env`` (variable → value)."""
    for eqn in eqns:
        params = eqn.primitive.get_bind_params(eqn.params)
        ans = eqn.primitive.bind(*[_read(env, v) for v in eqn.invars], **params)
        env.update(zip(eqn.outvars, ans if eqn.primitive.multiple_results else [ans]))


def _partition(jaxpr: Any, input_outvars: list, weight_outvars: list) -> tuple[list, list, list]:
    """(input-side equations, weight-side equations, boundary variables: defined on the input
    side, read by the weight side or returned as a weight gradient)."""
    needed = {v for v in input_outvars if isinstance(v, Var)}
    input_side = []
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(v in needed for v in eqn.outvars if not isinstance(v, DropVar)):
            input_side.append(eqn)
            needed.update(v for v in eqn.invars if isinstance(v, Var))
    input_side.reverse()
    chosen = {id(e) for e in input_side}
    weight_side = [e for e in jaxpr.eqns if id(e) not in chosen]
    defined = {v for e in input_side for v in e.outvars}
    boundary = []
    for v in [v for e in weight_side for v in e.invars] + list(weight_outvars):
        if isinstance(v, Var) and v in defined and v not in boundary:
            boundary.append(v)
    return input_side, weight_side, boundary


def split_backward(pullbacks: Any, ct_y: Any, scan: Callable[..., Any]) -> tuple[Any, Any, Any]:
    """(∂θ stacked (n, …), ∂x, ∂extra summed over layers) from the stacked per-layer pullbacks
    (``jax.vjp``'s, saved by the forward scan) and the output cotangent ``ct_y``."""
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), pullbacks)
    closed, out_shape = jax.make_jaxpr(lambda pb, ct: pb(ct), return_shape=True)(one, ct_y)
    jaxpr, consts = closed.jaxpr, closed.consts
    out_tree = jax.tree.structure(out_shape)
    n_p, n_h = len(jax.tree.leaves(out_shape[0])), len(jax.tree.leaves(out_shape[1]))
    outs = list(jaxpr.outvars)
    dh_vars, w_vars = outs[n_p:n_p + n_h], outs[:n_p] + outs[n_p + n_h:]
    input_side, weight_side, boundary = _partition(jaxpr, dh_vars, w_vars)
    ct_tree = jax.tree.structure(ct_y)

    def env_of(pb_leaves: list, ct_leaves: list) -> dict:
        env = dict(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, list(pb_leaves) + list(ct_leaves)))
        return env

    def back(ct, pb_leaves):                                   # δ_i from δ_{i+1}, in the scan
        ct_leaves = jax.tree.leaves(ct)
        env = env_of(pb_leaves, ct_leaves)
        _run(input_side, env)
        dh = jax.tree.unflatten(ct_tree, [_read(env, v) for v in dh_vars])
        return dh, (ct_leaves, [_read(env, v) for v in boundary])

    def weights(pb_leaves, ct_leaves, kept):                   # one layer's ∂θ, ∂extra
        env = env_of(pb_leaves, ct_leaves)
        env.update(zip(boundary, kept))
        _run(weight_side, env)
        return [_read(env, v) for v in w_vars]

    pb_leaves = jax.tree.leaves(pullbacks)
    ct_x, (cts, kept) = scan(back, ct_y, pb_leaves, reverse=True)
    w = jax.vmap(weights)(pb_leaves, cts, kept)                # all layers at once
    flat = w[:n_p] + [None] * n_h + w[n_p:]
    ct_p, _, ct_e = jax.tree.unflatten(out_tree, flat)
    return ct_p, ct_x, jax.tree.map(lambda g: g.sum(0), ct_e)
