"""Per-example gradients: one gradient per example of a batch, g_i = ∇_θ ℓ(f_θ(x_i), y_i).

Differential privacy (clip each g_i), gradient-noise studies and influence estimates need the
gradient of every example, not only their mean. ``jax.jit(jax.vmap(jax.grad(ℓ)))`` computes them
in one line but is slow on CPU: XLA gives each example's outer product a transposed layout.

For a Dense layer z = a·W + b, backpropagation already holds what every example needs. With
δ_i = ∂ℓ_i/∂z_i (the output gradient of example i) and a_i its input,

    ∂ℓ_i/∂W = a_iᵀ δ_i   (an outer product, d_in × d_out),      ∂ℓ_i/∂b = δ_i,

and one ordinary backward pass of the summed loss L = Σ_i ℓ_i gives every δ_i at once, because
example i's loss depends on row i only: ∂L/∂z_i = ∂ℓ_i/∂z_i. ``per_example_grads`` obtains the
δ_i by differentiating L with respect to a zero "tap" added to each Dense output, keeps the a_i
from the forward pass, and forms the outer products in one broadcast multiply (the trick of
Goodfellow, 2015, "Efficient per-example gradient computations").
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, State
from jdl.nn.combinators import child_names
from jdl.nn.linear import dense

LossFn = Callable[..., jax.Array]  # loss(outputs, targets, reduction='mean' | 'none')
GradFn = Callable[..., Params]  # grads(params, state, x, y, out=None) -> per-example grads


def per_example_loss(model: Module, loss_fn: LossFn) -> Callable[..., jax.Array]:
    """ℓ(θ; x, y) for ONE example (no batch axis): loss_fn(f_θ(x[None]), y[None]), the mean over
    the example's own elements (one value for a classifier, the mean over T for a sequence).

    Shapes: x (...), y (...) → a scalar.
    """

    def loss(params: Params, state: State, x: jax.Array, y: jax.Array) -> jax.Array:
        out, _ = model.apply(params, state, x[None], train=False)
        return loss_fn(out, y[None])

    return loss


def vmap_grads(model: Module, loss_fn: LossFn) -> GradFn:
    """The reference: jit(vmap(grad ℓ)) over the batch axis, for any model.

    Shapes: x (B, ...), y (B, ...) → a params tree whose every leaf has a leading B axis.
    """
    grad = jax.grad(per_example_loss(model, loss_fn))
    return with_out(jax.vmap(grad, in_axes=(None, None, 0, 0)))


def with_out(grads: Callable[..., Params]) -> GradFn:
    """Jit ``grads(params, state, x, y)`` two ways: plain, and writing into a donated ``out``.

    Per-example gradients are large (B copies of the params: 343 MB for the 669k-param MLP at
    B = 128). A fresh output of that size costs a page fault per 4 KiB page on every call (about
    5 GB/s on CPU), while a donated buffer of the same shape is written in place (about 30 GB/s).
    Passing the previous result as ``out`` reuses its memory; ``out`` is consumed (donated).
    """
    fresh = jax.jit(grads)

    def into(params, state, x, y, out):
        new = grads(params, state, x, y)
        return jax.tree.map(lambda o, g: jax.lax.dynamic_update_slice(o, g, (0,) * g.ndim), out, new)

    reuse = jax.jit(into, donate_argnums=(4,))

    def call(params: Params, state: State, x: jax.Array, y: jax.Array, out: Params | None = None):
        return fresh(params, state, x, y) if out is None else reuse(params, state, x, y, out)

    return call


def supports_fast_path(model: Module, params: Params) -> bool:
    """True when ``model`` is a ``serial`` of Dense layers and parameter-free layers (the MLP
    family), where the outer-product trick applies; a lone Dense also qualifies."""
    if model.name == "dense":
        return True
    if model.name != "serial":
        return False
    names = child_names(model.children)
    return all(m.name == "dense" or not jax.tree.leaves(params.get(n, {}))
               for n, m in zip(names, model.children))


def _outer_grads(a: jax.Array, delta: jax.Array, has_bias: bool) -> dict:
    """Per-example Dense grads from inputs a (B, ..., d_in) and output grads δ (B, ..., d_out):
    ∂ℓ_i/∂W = Σ_t a_it ⊗ δ_it (B, d_in, d_out), ∂ℓ_i/∂b = Σ_t δ_it (B, d_out)."""
    b = a.shape[0]
    if a.ndim == 2:
        g_w = a[:, :, None] * delta[:, None, :]  # (B, d_in, 1) * (B, 1, d_out) → (B, d_in, d_out)
        g_b = delta  # (B, d_out)
    else:
        a3 = a.reshape(b, -1, a.shape[-1])  # (B, T, d_in)
        d3 = delta.reshape(b, -1, delta.shape[-1])  # (B, T, d_out)
        g_w = jnp.einsum("bti,btj->bij", a3, d3)  # (B, d_in, d_out)
        g_b = d3.sum(axis=1)  # (B, d_out)
    return {"w": g_w, "b": g_b} if has_bias else {"w": g_w}


def _fast_grads(model: Module, loss_fn: LossFn) -> GradFn:
    layers = (model,) if model.name == "dense" else model.children
    names = [None] if model.name == "dense" else child_names(layers)

    def sub(tree: Any, n: str | None) -> Any:
        return tree if n is None else tree.get(n, {})

    def grads(params: Params, state: State, x: jax.Array, y: jax.Array) -> Params:
        b = x.shape[0]

        def summed_loss(taps):
            h, inputs = x, {}
            for n, m in zip(names, layers):
                if m.name == "dense":
                    inputs[n] = h  # a, the layer's input (B, ..., d_in)
                    h = dense(sub(params, n), h) + taps[n]  # z = a·W + b + 0
                else:
                    h, _ = m.apply(sub(params, n), sub(state, n), h, train=False)
            per_example = loss_fn(h, y, reduction="none").reshape(b, -1).mean(axis=1)  # (B,)
            return per_example.sum(), inputs

        taps = {}
        h = jax.ShapeDtypeStruct(x.shape, x.dtype)
        for n, m in zip(names, layers):
            out = jax.eval_shape(lambda p, s, h, m=m: m.apply(p, s, h, train=False)[0],
                                 sub(params, n), sub(state, n), h)
            if m.name == "dense":
                taps[n] = jnp.zeros(out.shape, out.dtype)  # (B, ..., d_out)
            h = out
        deltas, inputs = jax.grad(summed_loss, has_aux=True)(taps)  # δ = ∂L/∂z per layer
        out = {n: (_outer_grads(inputs[n], deltas[n], "b" in sub(params, n)) if m.name == "dense"
                   else jax.tree.map(lambda p: jnp.zeros((b, *p.shape), p.dtype), sub(params, n)))
               for n, m in zip(names, layers)}
        return out[None] if model.name == "dense" else out

    return with_out(grads)


def per_example_grads(model: Module, loss_fn: LossFn, params: Params) -> GradFn:
    """A jitted ``grads(params, state, x, y, out=None)`` returning g_i = ∇_θ ℓ(f_θ(x_i), y_i)
    for every example i.

    For a ``serial`` of Dense and parameter-free layers (``jdl.models.mlp``) it uses the
    outer-product trick, ∂ℓ_i/∂W = a_iᵀ δ_i and ∂ℓ_i/∂b = δ_i, with all δ_i from one backward pass
    of Σ_i ℓ_i; for any other model it falls back to ``vmap_grads`` (jit(vmap(grad))). Both
    evaluate the model with ``train=False`` (no dropout, BatchNorm in inference mode), and ℓ_i is
    ``loss_fn`` on a batch of one example.

    Shapes: x (B, ...), y (B, ...) → a tree like ``params`` with each leaf (B, *leaf.shape).
    Pass the previous call's result as ``out=`` to write into its memory (donated; see
    ``with_out``): in a loop this is several times faster on CPU than fresh outputs.

    >>> import jax, jdl
    >>> model = jdl.models.mlp([3, 2])
    >>> x, y = jax.numpy.ones((5, 4)), jax.numpy.zeros(5, int)
    >>> params, state = model.init(jax.random.key(0), x)
    >>> grads = per_example_grads(model, jdl.losses.softmax_cross_entropy, params)
    >>> jax.tree.map(jax.numpy.shape, grads(params, state, x, y))["1_dense"]
    {'b': (5, 3), 'w': (5, 4, 3)}

    Args:
      model: the model whose gradients are wanted.
      loss_fn: ``loss(outputs, targets, reduction=...)``, e.g. ``jdl.losses.softmax_cross_entropy``.
      params: the model's params (only their structure is read, to choose the method).
    """
    if supports_fast_path(model, params):
        return _fast_grads(model, loss_fn)
    return vmap_grads(model, loss_fn)
