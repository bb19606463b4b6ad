"""A fast LSTM over a whole sequence: the recurrence of ``jdl.nn``'s LSTM (the course's "LSTM
gates and the cell state") formulated for XLA, with a hand-written backpropagation through time.

    z_t = x_t W_x + h_{t−1} W_h + b            (B, 4H), gates in the order i, f, g, o
    i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o)
    c_t = f ⊙ c_{t−1} + i ⊙ g,   h_t = o ⊙ tanh(c_t)

Params are ``{"w_x": (C, 4H), "w_h": (H, 4H), "b": (4H,)}`` (PyTorch's gate order; its two
biases sum to ``b``). The levers, each measured in benchmarks/NOTES.md ("char-LSTM"):
the input projection x_t W_x + b for all T steps as one (B·T, C)·(C, 4H) matmul outside the
loop; the four gates as one (H, 4H) matmul per step; and a custom VJP whose backward scan
carries only (∂L/∂h, ∂L/∂c) through time and emits ∂L/∂z_t, so that the weight gradients are
single matmuls over the stacked steps after the loop:

    ∂L/∂W_h = Σ_t h_{t−1}ᵀ ∂L/∂z_t = H_prevᵀ dZ,   ∂L/∂W_x = Xᵀ dZ,   ∂L/∂b = Σ_t,b dZ.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

IMPLS = ("scan", "hoisted", "fused", "native")


def _gates(z: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(i, f, g, o) = (σ(z_i), σ(z_f), tanh(z_g), σ(z_o)) from z (B, 4H) in the order i, f, g, o."""
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)  # 4 × (B, H)
    return jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jnp.tanh(z_g), jax.nn.sigmoid(z_o)


def _cell(z: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One step from pre-activations: c_t = f⊙c + i⊙g, h_t = o⊙tanh(c_t); also (i, f, g, o)."""
    i, f, g, o = _gates(z)
    c = f * c + i * g
    return o * jnp.tanh(c), c, jnp.concatenate([i, f, g, o], axis=-1)


def _forward_scan(xw: jax.Array, w_h: jax.Array, h0: jax.Array, c0: jax.Array, unroll: int):
    """Run the recurrence over precomputed input projections xw (T, B, 4H): returns the stacked
    h_t (T, B, H), c_t (T, B, H) and activated gates (T, B, 4H)."""

    def step(carry, xw_t):
        h, c = carry
        h, c, acts = _cell(xw_t + h @ w_h, c)  # (B, 4H) = (B, 4H) + (B, H)·(H, 4H)
        return (h, c), (h, c, acts)

    _, (hs, cs, acts) = jax.lax.scan(step, (h0, c0), xw, unroll=unroll)
    return hs, cs, acts


def _backward_scan(dhs, dc_T, acts, cs, c0, w_h, unroll: int):
    """BPTT carrying only (∂L/∂h_t, ∂L/∂c_t) backwards; returns dZ (T, B, 4H), dh0, dc0.

        ∂L/∂c_t += ∂L/∂h_t ⊙ o ⊙ (1 − tanh²c_t)
        dz_i = ∂c·g·i(1−i),  dz_f = ∂c·c_{t−1}·f(1−f),  dz_g = ∂c·i·(1−g²),  dz_o = ∂h·tanh(c_t)·o(1−o)
        ∂L/∂h_{t−1} = dz_t W_hᵀ (+ the output's own gradient),  ∂L/∂c_{t−1} = ∂c ⊙ f
    """
    c_prev = jnp.concatenate([c0[None], cs[:-1]], axis=0)  # (T, B, H)
    w_h_t = w_h.T  # (4H, H), transposed once, outside the loop

    def step(carry, inputs):
        dh, dc = carry
        dh_out, acts_t, c_t, c_prev_t = inputs
        i, f, g, o = jnp.split(acts_t, 4, axis=-1)
        dh = dh + dh_out
        tanh_c = jnp.tanh(c_t)
        dc = dc + dh * o * (1 - tanh_c * tanh_c)
        dz = jnp.concatenate([dc * g * i * (1 - i), dc * c_prev_t * f * (1 - f),
                              dc * i * (1 - g * g), dh * tanh_c * o * (1 - o)], axis=-1)  # (B, 4H)
        return (dz @ w_h_t, dc * f), dz

    (dh0, dc0), dz = jax.lax.scan(step, (jnp.zeros_like(dc_T), dc_T), (dhs, acts, cs, c_prev),
                                  reverse=True, unroll=unroll)
    return dz, dh0, dc0


def _scans(impl: str, unroll: int):
    """The forward and backward scans: XLA's ``lax.scan`` ('fused') or the native CPU kernel
    ('native', ``jdl.kernels.lstm_native``), with the same arguments and results."""
    if impl == "native":
        from jdl.kernels import lstm_native
        return lstm_native.forward_scan, lstm_native.backward_scan
    return (lambda *a: _forward_scan(*a, unroll)), (lambda *a: _backward_scan(*a, unroll))


def _recurrence_vjp(unroll: int, impl: str = "fused"):
    """The recurrence (xw, w_h, h0, c0) → (hs, c_T) with the hand-written backward."""
    forward_scan, backward_scan = _scans(impl, unroll)

    @jax.custom_vjp
    def recurrence(xw, w_h, h0, c0):
        hs, cs, _ = forward_scan(xw, w_h, h0, c0)
        return hs, cs[-1]

    def fwd(xw, w_h, h0, c0):
        hs, cs, acts = forward_scan(xw, w_h, h0, c0)
        return (hs, cs[-1]), (hs, cs, acts, w_h, h0, c0)

    def bwd(res, cotangents):
        hs, cs, acts, w_h, h0, c0 = res
        dhs, dc_T = cotangents
        dz, dh0, dc0 = backward_scan(dhs, dc_T, acts, cs, c0, w_h)
        t, b, h = hs.shape
        h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0).reshape(t * b, h)  # (T·B, H)
        dw_h = h_prev.T @ dz.reshape(t * b, 4 * h)  # (H, 4H): one matmul over all steps
        return dz, dw_h, dh0, dc0

    recurrence.defvjp(fwd, bwd)
    return recurrence


def _check(params: Any, x: jax.Array, h0: jax.Array, c0: jax.Array, impl: str) -> None:
    """Raise ValueError for shapes that do not fit the LSTM's params, or an unknown impl."""
    if impl not in IMPLS:
        raise ValueError(f"lstm_sequence: impl must be one of {IMPLS}, got {impl!r}")
    if x.ndim != 3:
        raise ValueError(f"lstm_sequence: expected x of shape (B, T, C), got shape {tuple(x.shape)}")
    c, h4 = params["w_x"].shape
    h = h4 // 4
    if h4 % 4 or params["w_h"].shape != (h, h4) or params["b"].shape != (h4,):
        raise ValueError(f"lstm_sequence: expected w_x (C, 4H), w_h (H, 4H), b (4H,), got "
                         f"{params['w_x'].shape}, {params['w_h'].shape}, {params['b'].shape}")
    if x.shape[-1] != c:
        raise ValueError(f"lstm_sequence: x has C={x.shape[-1]} but w_x expects C={c}")
    for name, s in (("h0", h0), ("c0", c0)):
        if s.shape != (x.shape[0], h):
            raise ValueError(f"lstm_sequence: expected {name} of shape (B, H) = {(x.shape[0], h)}, "
                             f"got {tuple(s.shape)}")


def lstm_sequence(params: Any, x: jax.Array, h0: jax.Array | None = None, c0: jax.Array | None = None,
                  *, impl: str = "fused", unroll: int = 1) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """An LSTM over a whole sequence: c_t = f⊙c_{t−1} + i⊙g, h_t = o⊙tanh(c_t) with
    [i, f, g, o] = [σ, σ, tanh, σ](x_t W_x + h_{t−1} W_h + b) (see the module docstring).

    Shapes: x (B, T, C); h0, c0 (B, H) (zeros when None) → hs (B, T, H), (h_T, c_T) (B, H) each.
    Params: ``w_x`` (C, 4H), ``w_h`` (H, 4H), ``b`` (4H,), gates in the order i, f, g, o.

    Args:
      params: the LSTM's weights.
      x: the input sequence, batch-major.
      h0, c0: the initial hidden and cell state.
      impl: 'scan' — the plain formulation, x_t W_x inside the loop, gradients by autodiff of
        the scan (the reference); 'hoisted' — the input projection for all T steps as one matmul
        before the loop, gradients by autodiff; 'fused' — hoisted, with the hand-written BPTT
        whose weight gradients are single matmuls after the loop (the fastest on XLA:CPU);
        'native' — 'fused' with its two scans as C++ custom calls for x86-64 CPUs with AVX2
        (``jdl.kernels.lstm_native``; float32, H a multiple of 8, built on first use; raises
        ``jdl.kernels.native.NativeUnavailable`` where it cannot run).
      unroll: steps per loop iteration of the scans (``jax.lax.scan``'s ``unroll``; not used
        by 'native').

    Returns:
      (hs, (h_T, c_T)): every step's hidden state and the final state.
    """
    x = jnp.asarray(x)
    b_size, h = x.shape[0], params["w_h"].shape[0]
    h0 = jnp.zeros((b_size, h), x.dtype) if h0 is None else h0
    c0 = jnp.zeros((b_size, h), x.dtype) if c0 is None else c0
    _check(params, x, h0, c0, impl)
    w_x, w_h, b = params["w_x"], params["w_h"], params["b"]
    x_tm = jnp.swapaxes(x, 0, 1)  # (T, B, C): time-major for the scan
    t, _, c = x_tm.shape
    if impl == "scan":
        def step(carry, x_t):
            h_prev, c_prev = carry
            h_t, c_t, _ = _cell(x_t @ w_x + h_prev @ w_h + b[None, :], c_prev)
            return (h_t, c_t), (h_t, c_t)

        _, (hs, cs) = jax.lax.scan(step, (h0, c0), x_tm, unroll=unroll)
        c_T = cs[-1]
    else:
        xw = (x_tm.reshape(t * b_size, c) @ w_x + b[None, :]).reshape(t, b_size, 4 * h)  # (T, B, 4H)
        if impl == "hoisted":
            hs, cs, _ = _forward_scan(xw, w_h, h0, c0, unroll)
            c_T = cs[-1]
        else:
            hs, c_T = _recurrence_vjp(unroll, impl)(xw, w_h, h0, c0)
    return jnp.swapaxes(hs, 0, 1), (hs[-1], c_T)  # (B, T, H)


def embedded_lstm_sequence(table: jax.Array, params: Any, ids: jax.Array, h0: jax.Array | None = None,
                           c0: jax.Array | None = None, *, unroll: int = 1, impl: str = "fused"):
    """The LSTM over embedded token ids, x_t = E[id_t], with the input projection gathered from
    one (V, 4H) table: x_t W_x + b = (E W_x + b)[id_t] (the one-hot·W identity applied twice).

    Computing E W_x costs 2·V·C·4H FLOPs instead of 2·B·T·C·4H for projecting every embedded
    token, and its gradients likewise (∂L/∂(E W_x) is the scatter-add of ∂L/∂z_t into the ids'
    rows): fewer FLOPs whenever V < B·T. The recurrence and its backward are ``impl='fused'``'s.

    Ids outside 0..V−1 give NaN states, as ``jdl.nn.Embedding`` gives NaN rows.

    Shapes: table E (V, C); ids (B, T) integers in 0..V−1; h0, c0 (B, H) → hs (B, T, H),
    (h_T, c_T) (B, H) each. Params: as ``lstm_sequence``.

    Args:
      table: the embedding table (``jdl.nn.Embedding``'s ``w``).
      params: the LSTM's weights.
      ids: token ids, batch-major.
      h0, c0: the initial state (zeros when None).
      unroll: steps per loop iteration of the scans.
      impl: 'fused' (XLA's scans) or 'native' (the C++ scans), as in ``lstm_sequence``.

    Returns:
      (hs, (h_T, c_T)) as ``lstm_sequence`` returns for x = E[ids].
    """
    ids = jnp.asarray(ids)
    if ids.ndim != 2 or not jnp.issubdtype(ids.dtype, jnp.integer):
        raise ValueError(f"embedded_lstm_sequence: expected integer ids of shape (B, T), got "
                         f"{ids.dtype} of shape {tuple(ids.shape)}")
    b_size, h = ids.shape[0], params["w_h"].shape[0]
    h0 = jnp.zeros((b_size, h), table.dtype) if h0 is None else h0
    c0 = jnp.zeros((b_size, h), table.dtype) if c0 is None else c0
    if impl not in ("fused", "native"):
        raise ValueError(f"embedded_lstm_sequence: impl must be 'fused' or 'native', got {impl!r}")
    _check(params, jax.ShapeDtypeStruct((b_size, 1, table.shape[-1]), table.dtype), h0, c0, impl)
    projected = table @ params["w_x"] + params["b"][None, :]  # (V, 4H)
    # (T, B, 4H), time-major by gathering with the transposed ids; an id outside 0..V−1 gives a
    # NaN row, as jdl.nn.Embedding's lookup does (not a silently clamped one)
    xw = projected.at[ids.T].get(mode="fill", fill_value=jnp.nan, wrap_negative_indices=False)
    hs, c_T = _recurrence_vjp(unroll, impl)(xw, params["w_h"], h0, c0)
    return jnp.swapaxes(hs, 0, 1), (hs[-1], c_T)  # (B, T, H)
