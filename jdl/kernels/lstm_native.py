"""The fused LSTM's two scans (``jdl.kernels.lstm``: the forward recurrence and the hand-written
BPTT) as native CPU custom calls (``jdl/kernels/native/lstm.cc``), same arguments, same results
to float32 rounding. XLA:CPU runs each step's (B, H)·(H, 4H) product on one or two threads of its
pool with a runtime hand-off per operation; the native loop splits the hidden units across the
cores for the whole sequence and meets once per step. Chosen only by ``impl='native'``.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jdl.kernels import native


def cpu_threads() -> int:
    """The CPUs this process may run on (its affinity mask, which also sizes XLA's pool)."""
    return len(os.sched_getaffinity(0))


def threads_for(h: int) -> int:
    """Threads for a hidden size H: ``cpu_threads()``, at most H/8 (each thread owns whole
    groups of 8 hidden units)."""
    return max(1, min(cpu_threads(), h // 8))


def _check(xw: jax.Array, w_h: jax.Array, threads: int | None) -> None:
    """Raise ValueError where the native kernel cannot take these arrays or thread count."""
    if xw.dtype != jnp.float32 or w_h.dtype != jnp.float32:
        raise ValueError(f"lstm_sequence(impl='native'): float32 only, got xw {xw.dtype}, w_h {w_h.dtype}")
    if w_h.shape[0] % 8:
        raise ValueError(f"lstm_sequence(impl='native'): H must be a multiple of 8, got H={w_h.shape[0]}")
    if xw.shape[0] < 1:
        raise ValueError("lstm_sequence(impl='native'): the sequence must have at least one step")
    if threads is not None and not 1 <= threads <= w_h.shape[0] // 8:
        raise ValueError(f"lstm_sequence(impl='native'): threads must be in 1..H/8 = {w_h.shape[0] // 8}, "
                         f"got {threads}")


def forward_scan(xw: jax.Array, w_h: jax.Array, h0: jax.Array, c0: jax.Array, threads: int | None = None):
    """``_forward_scan`` natively: xw (T, B, 4H), w_h (H, 4H), h0, c0 (B, H) → hs, cs (T, B, H)
    and the activated gates (T, B, 4H). ``threads`` (default ``threads_for(H)``) changes the
    speed, never the numbers: each element sums its products in the same order."""
    _check(xw, w_h, threads)
    native.load()
    t, b, h4 = xw.shape
    out = (jax.ShapeDtypeStruct((t, b, h4 // 4), xw.dtype),) * 2 + (jax.ShapeDtypeStruct(xw.shape, xw.dtype),)
    call = jax.ffi.ffi_call("jdl_lstm_forward", out, vmap_method="sequential")
    return call(xw, w_h, h0, c0, threads=np.int64(threads or threads_for(h4 // 4)))


def backward_scan(dhs: jax.Array, dc_T: jax.Array, acts: jax.Array, cs: jax.Array, c0: jax.Array,
                  w_h: jax.Array, threads: int | None = None):
    """``_backward_scan`` natively: returns dZ (T, B, 4H), ∂L/∂h_0 and ∂L/∂c_0 (B, H)."""
    _check(acts, w_h, threads)
    native.load()
    t, b, h = dhs.shape
    out = (jax.ShapeDtypeStruct(acts.shape, acts.dtype),) + (jax.ShapeDtypeStruct((b, h), acts.dtype),) * 2
    call = jax.ffi.ffi_call("jdl_lstm_backward", out, vmap_method="sequential")
    return call(dhs, dc_T, acts, cs, c0, w_h, threads=np.int64(threads or threads_for(h)))
