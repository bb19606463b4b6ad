"""A stack of n identical layers with a hand-written reverse rule: the input cotangents run
layer by layer in a backward scan, and every layer's weight gradient comes afterwards, as ONE
batched computation over the layer axis — the fast path behind ``repeat(..., impl='custom_vjp')``.

The plain definition (``jdl.nn.repeat``) is h_{i+1} = f(θ_i, h_i), i = 0 … n−1, under
``lax.scan``, and lets JAX transpose the scan. Backpropagation through the stack is

    δ_n = ∂L/∂h_n,    δ_i = (∂f/∂h)(θ_i, h_i)ᵀ δ_{i+1}     (sequential: a backward scan)
    ∂L/∂θ_i = (∂f/∂θ)(θ_i, h_i)ᵀ δ_{i+1}                  (independent given δ_{i+1}: a vmap)

The plain transposed scan computes the second line inside the loop, writing each layer's dW into
the stacked (n, …) gradient buffer; here the loop does only the first line and stores δ_{i+1}
(n, B, …), and the second line runs once for all layers, as batched matmuls of (n, B, d) ×
(n, B, d') over the layer axis. Saved for the backward pass (``save=``):

- 'residuals': the linearization of each layer at its input (what ``jax.vjp`` keeps, stacked
  over the layers); nothing is recomputed. Memory as the plain scan, plus the δ's.
- 'inputs': only the layer inputs h_0 … h_{n−1} (n, B, …); the backward scan recomputes each
  layer's forward to get δ_i, and the batched weight gradient recomputes it again (batched).
- 'split': the residuals, and the layer's pullback cut in two at the jaxpr level
  (``jdl.kernels.repeat_split``): the backward scan runs the equations that δ_i needs and
  stores the values that the weight-only equations read from them (the cotangents inside the
  layer, e.g. tanh′ ⊙ δW₂ᵀ), so the batched pass does only the weight-gradient equations.

Reverse mode only: ``jax.custom_vjp`` defines no JVP, so ``jax.jvp`` through it raises JAX's
"can't apply forward-mode autodiff (jvp) to a custom_vjp function"; use the plain ``repeat``
for forward mode. tests/kernels/test_repeat.py checks values and gradients (params, input,
float keyword inputs, with dropout keys) against the plain scan and the unrolled loop in float64.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

SAVES = ("residuals", "inputs", "split")


def _split(extra: dict[str, Any]) -> tuple[dict, dict]:
    """Keyword inputs as (differentiable: floating leaves, the rest): only floating arrays get a
    cotangent."""
    is_float = lambda v: jnp.issubdtype(jnp.result_type(v), jnp.inexact)
    return ({k: v for k, v in extra.items() if is_float(v)},
            {k: v for k, v in extra.items() if not is_float(v)})


def stack_custom_vjp(f: Callable[..., Any], params: Any, x: Any, keys: Any = None,
                     extra: dict[str, Any] | None = None, *, unroll: int | bool = 1,
                     save: str = "residuals") -> Any:
    """h_n of h_{i+1} = f(θ_i, h_i, key_i, **extra) for the params θ stacked on a leading axis
    of length n, with the batched-weight-gradient reverse rule of this module.

    Shapes: every leaf of ``params`` is (n, *S); ``x`` any pytree that f maps to its own shape;
    ``keys`` None or n keys (n,); ``extra`` keyword inputs shared by all layers (their gradient
    is the sum over the layers). Returns h_n, shaped as x.
    """
    if save not in SAVES:  # repeat(impl='custom_vjp') uses 'split'; the default is the simplest
        raise ValueError(f"stack_custom_vjp: save must be one of {SAVES}, got {save!r}")
    diff, rest = _split(extra or {})
    run = _build(f, unroll, save)
    return run(params, x, keys, diff, rest)


def _build(f: Callable[..., Any], unroll: int | bool, save: str) -> Callable[..., Any]:
    """The custom_vjp function (params, x, keys, diff_extra, rest_extra) -> h_n."""
    scan = lambda body, init, xs, **kw: jax.lax.scan(body, init, xs, unroll=unroll, **kw)

    @jax.custom_vjp
    def run(params, x, keys, diff, rest):
        def layer(h, inputs):
            p, k = inputs
            return f(p, h, k, **diff, **rest), None
        return scan(layer, x, (params, keys))[0]

    def fwd(params, x, keys, diff, rest):
        def layer(h, inputs):
            p, k = inputs
            if save == "inputs":
                return f(p, h, k, **diff, **rest), h                    # keep h_i
            y, pullback = jax.vjp(lambda p, h, e: f(p, h, k, **e, **rest), p, h, diff)
            return y, pullback                                          # keep f's linearization
        y, saved = scan(layer, x, (params, keys))
        return y, (saved, params, keys, diff, rest)

    def bwd(res, ct_y):
        saved, params, keys, diff, rest = res
        if save == "split":
            from jdl.kernels.repeat_split import split_backward
            ct_p, ct_x, ct_e = split_backward(saved, ct_y, scan)
            return ct_p, ct_x, None, ct_e, jax.tree.map(lambda _: None, rest)
        if save == "residuals":
            input_ct = lambda pullback, p, k, ct: pullback(ct)[1]
            weight_ct = lambda pullback, p, k, ct: _pick(pullback(ct))
        else:
            def input_ct(h, p, k, ct):
                return jax.vjp(lambda h: f(p, h, k, **diff, **rest), h)[1](ct)[0]

            def weight_ct(h, p, k, ct):
                return jax.vjp(lambda p, e: f(p, h, k, **e, **rest), p, diff)[1](ct)

        def back(ct, inputs):                                           # δ_i from δ_{i+1}
            s, p, k = inputs
            return input_ct(s, p, k, ct), ct
        ct_x, deltas = scan(back, ct_y, (saved, params, keys), reverse=True)  # deltas[i] = δ_{i+1}
        ct_p, ct_e = jax.vmap(weight_ct)(saved, params, keys, deltas)   # all layers at once
        ct_e = jax.tree.map(lambda g: g.sum(0), ct_e)                   # shared inputs: Σ_i
        return ct_p, ct_x, None, ct_e, jax.tree.map(lambda _: None, rest)

    run.defvjp(fwd, bwd)
    return run


def _pick(cts: tuple[Any, Any, Any]) -> tuple[Any, Any]:
    """(∂θ, ∂extra) of a pullback's (∂θ, ∂h, ∂extra)."""
    return cts[0], cts[2]
