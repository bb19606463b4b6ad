"""Scaled dot-product attention as native CPU custom calls (``jdl/kernels/native/attention.cc``):
the forward saves each query's log-sum-exp L_i = log Σ_j exp(S_ij), and the backward recomputes
the weights from it instead of keeping the (…, n_q, n_k) matrix:

    S = QKᵀ/√d,  P = softmax(S + M),  O = PV;
    dV = Pᵀ dO,  dS = P ⊙ (dO Vᵀ − rowsum(dO ⊙ O)),  dQ = dS K/√d,  dK = dSᵀ Q/√d.

M is the causal mask of ``jdl.nn.causal_mask`` (bottom-right aligned) or none; each
(batch, head) pair runs on one thread, the tiles that the causal mask zeroes are skipped.
``jdl.nn.attend(impl='native')`` calls it; equal to ``impl='plain'`` to float32 rounding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jdl.kernels import native
from jdl.kernels.lstm_native import cpu_threads


def _check(q: jax.Array, k: jax.Array, v: jax.Array, causal: bool) -> None:
    """Raise ValueError where the native kernel cannot take these arrays."""
    if any(a.dtype != jnp.float32 for a in (q, k, v)):
        raise ValueError(f"attend(impl='native'): float32 only, got {q.dtype}, {k.dtype}, {v.dtype}")
    if v.shape[-1] != q.shape[-1]:
        raise ValueError(f"attend(impl='native'): needs d_v = d_k, got d_k={q.shape[-1]}, d_v={v.shape[-1]}")
    if causal and k.shape[-2] < q.shape[-2]:
        raise ValueError(f"attend(impl='native'): causal needs n_k ≥ n_q, got n_q={q.shape[-2]}, n_k={k.shape[-2]}")


def _calls(causal: bool):
    """The forward and backward custom calls on (N, n, d) arrays."""
    native.load()
    threads = np.int64(cpu_threads())

    def forward(q, k, v):
        out = (jax.ShapeDtypeStruct(q.shape, q.dtype), jax.ShapeDtypeStruct(q.shape[:2], q.dtype))
        return jax.ffi.ffi_call("jdl_attention_forward", out, vmap_method="sequential")(
            q, k, v, causal=causal, threads=threads)

    def backward(q, k, v, o, lse, d_o):
        out = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (q, k, v))
        return jax.ffi.ffi_call("jdl_attention_backward", out, vmap_method="sequential")(
            q, k, v, o, lse, d_o, causal=causal, threads=threads)

    return forward, backward


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *, causal: bool = False) -> jax.Array:
    """softmax(QKᵀ/√d + M) V with M the causal mask (``causal=True``) or none, forward and
    backward in C++ (see the module docstring).

    Shapes: q (…, n_q, d), k, v (…, n_k, d) with the same leading axes → (…, n_q, d). float32;
    x86-64 with AVX2 (``jdl.kernels.native.load`` says why not elsewhere).
    """
    _check(q, k, v, causal)
    lead, (n_q, d), n_k = q.shape[:-2], q.shape[-2:], k.shape[-2]
    forward, backward = _calls(causal)

    @jax.custom_vjp
    def run(q, k, v):
        return forward(q, k, v)[0]

    def fwd(q, k, v):
        o, lse = forward(q, k, v)
        return o, (q, k, v, o, lse)

    def bwd(res, d_o):
        return backward(*res, d_o)

    run.defvjp(fwd, bwd)
    flat = lambda a, n: a.reshape(-1, n, d)
    return run(flat(q, n_q), flat(k, n_k), flat(v, n_k)).reshape(*lead, n_q, d)
