"""Multi-tensor optimizer updates as native CPU custom calls (``jdl/kernels/native/optim.cc``):
one pass over all leaves, each element's g, θ and moments read once and θ, moments written once.

    Adam(W):       m ← (1−β₁)·g + β₁·m,  v ← (1−β₂)·g² + β₂·v,
                   θ ← θ + (−η)·((m·c₁⁻¹)/(√(v·c₂⁻¹) + ε) + λ·θ),   c_i = 1 − β_i^t
    SGD-momentum:  τ ← g + μ·τ,  θ ← θ + (−η)·τ   (Nesterov: θ ← θ + (−η)·(g + μ·τ))

The moments are one flat float32 vector each (leaf i after the sizes of the leaves before it), the params and gradients
stay in their own buffers; the call's outputs alias θ and the moments, so under a donating
``jax.jit`` the update is in place. Products and sums are rounded one by one (no FMA
contraction; XLA:CPU contracts some, so jitted optax may differ by an ulp); the step takes the
bias corrections as products with their reciprocals (one division and one root per element,
where the three divisions of m̂/(√v̂ + ε) left the loop bound by the divider), which moves u by a
few ulp. ``jdl.optim.fused_adam``/``fused_sgd`` build optimizers on these.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdl.kernels import native
from jdl.kernels.lstm_native import cpu_threads


def _check(name: str, grads: Sequence[jax.Array], params: Sequence[jax.Array], moments: Sequence[jax.Array]) -> None:
    """Raise ValueError where the kernel cannot take these leaves."""
    if len(grads) != len(params):
        raise ValueError(f"{name}: {len(grads)} gradient leaves for {len(params)} params")
    n = sum(p.size for p in params)
    for i, (g, p) in enumerate(zip(grads, params)):
        if g.dtype != jnp.float32 or p.dtype != jnp.float32:
            raise ValueError(f"{name}: float32 leaves only, leaf {i} has grad {g.dtype}, param {p.dtype}")
        if g.shape != p.shape:
            raise ValueError(f"{name}: leaf {i}'s gradient has shape {g.shape}, its param {p.shape}")
    for m in moments:
        if m.shape != (n,) or m.dtype != jnp.float32:
            raise ValueError(f"{name}: a moment must be float32 of shape ({n},), got {m.dtype}{m.shape}")


def adam_update(grads: Sequence[jax.Array], params: Sequence[jax.Array], m: jax.Array, v: jax.Array,
                scalars: jax.Array, *, b1: float, b2: float, eps: float) -> tuple[list[jax.Array], jax.Array, jax.Array]:
    """One Adam(W) step on L leaves (module docstring) → (params', m', v').

    Shapes: grads[i], params[i] any shape, float32; m, v (N,) with N = Σ params[i].size, leaf i's
    moments at the running sum of the sizes before it; scalars (4,) = (1/c₁, 1/c₂, −η, λ).
    """
    _check("fused_adam", grads, params, (m, v))
    native.load()
    out = (jax.ShapeDtypeStruct(m.shape, m.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype),
           *(jax.ShapeDtypeStruct(p.shape, p.dtype) for p in params))
    n = len(params)
    # operands: scalars, m, v, g_0…g_{n−1}, θ_0…θ_{n−1}; results: m, v, θ_0…θ_{n−1}
    aliases = {1: 0, 2: 1, **{3 + n + i: 2 + i for i in range(n)}}
    res = jax.ffi.ffi_call("jdl_adam_update", out, input_output_aliases=aliases)(
        scalars.astype(jnp.float32), m, v, *grads, *params,
        b1=np.float32(b1), omb1=np.float32(1 - b1), b2=np.float32(b2), omb2=np.float32(1 - b2),
        eps=np.float32(eps), threads=np.int64(cpu_threads()))
    return list(res[2:]), res[0], res[1]


def momentum_update(grads: Sequence[jax.Array], params: Sequence[jax.Array], trace: jax.Array, neg_lr: jax.Array, *,
                    momentum: float, nesterov: bool) -> tuple[list[jax.Array], jax.Array]:
    """One SGD-momentum step on L leaves (module docstring) → (params', τ').

    Shapes: grads[i], params[i] any shape, float32; trace (N,) flat as in ``adam_update``;
    neg_lr a scalar, −η.
    """
    _check("fused_sgd", grads, params, (trace,))
    native.load()
    out = (jax.ShapeDtypeStruct(trace.shape, trace.dtype), *(jax.ShapeDtypeStruct(p.shape, p.dtype) for p in params))
    n = len(params)
    aliases = {1: 0, **{2 + n + i: 1 + i for i in range(n)}}
    res = jax.ffi.ffi_call("jdl_momentum_update", out, input_output_aliases=aliases)(
        jnp.reshape(neg_lr, (1,)).astype(jnp.float32), trace, *grads, *params,
        mu=np.float32(momentum), nesterov=bool(nesterov), threads=np.int64(cpu_threads()))
    return list(res[1:]), res[0]
