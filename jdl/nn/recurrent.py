"""Recurrent layers: ``SimpleRNN``, ``LSTM`` and ``GRU`` as Modules over batch-major sequences.

Each runs its cell (``jdl.nn.recurrent_cells``) over time with ``lax.scan``. Every layer's
``apply`` takes two keywords beyond key and train:

    carry=  the initial state (h_0, or LSTMCarry(h_0, c_0)); zeros when None
    mask=   (B, T) True on the real steps, False on padding: the state is frozen past a
            sequence's end and the outputs there are 0

and its construction says what it returns: every step's h (B, T, H) or, with
``return_sequences=False``, the last state h (B, H); with ``return_carry=True`` the pair
(y, final carry), which is what truncated BPTT threads from one window to the next.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Initializer, Module, Params, PRNGKey, State, check_float, check_rank, leaf, shape_struct
from jdl.kernels.lstm import lstm_sequence
from jdl.nn.recurrent_cells import (
    GATES, Carry, LSTMCarry, check_sequence, gru_scan, hidden_of, initial_carry, lstm_scan, rnn_scan,
)

LSTM_IMPLS = ("scan", "fused", "native")


@dataclasses.dataclass(frozen=True)
class RecurrentInit:
    """How a recurrent layer's params start. Each initializer is called once per gate block, on
    (C, H) for ``w_x`` and (H, H) for ``w_h``, so every gate's recurrent matrix is orthogonal.

    The defaults are flax's (``LSTMCell``/``GRUCell``): LeCun normal inputs, orthogonal
    recurrent weights, zero biases. PyTorch draws every weight and bias from U(−1/√H, 1/√H):
    ``RecurrentInit(w_x=u, w_h=u, b=u)`` with ``u = jdl.init.uniform(1 / H ** 0.5)``.
    """

    w_x: Initializer = initializers.lecun_normal
    w_h: Initializer = initializers.orthogonal()
    b: Initializer = initializers.zeros


def _gate_blocks(init: Initializer, key: PRNGKey, shape: tuple[int, ...], gates: int,
                 dtype: Any) -> jax.Array:
    """``gates`` independent draws of ``init`` on ``shape``, side by side on the last axis."""
    keys = jax.random.split(key, gates)
    return jnp.concatenate([init(k, shape, dtype) for k in keys], axis=-1)  # (..., gates·H)


def recurrent_params(key: PRNGKey, cell: str, d_in: int, hidden: int, dtype: Any = jnp.float32,
                     init: RecurrentInit = RecurrentInit(), second_bias: bool = False) -> Params:
    """Fresh params of a ``cell`` ('simple_rnn', 'lstm' or 'gru') with G = ``GATES[cell]``:
    {'w_x': (C, G·H), 'w_h': (H, G·H), 'b': (G·H,)}, plus 'b_h': (G·H,) with ``second_bias``."""
    G = GATES[cell]
    kx, kh, kb, kbh = jax.random.split(key, 4)
    params = {"w_x": _gate_blocks(init.w_x, kx, (d_in, hidden), G, dtype),
              "w_h": _gate_blocks(init.w_h, kh, (hidden, hidden), G, dtype),
              "b": init.b(kb, (G * hidden,), dtype)}
    if second_bias:
        params["b_h"] = init.b(kbh, (G * hidden,), dtype)
    return params


def _recurrent(layer: str, name: str, cell: str, hidden: int, scan: Any, *,
               return_sequences: bool, return_carry: bool, reverse: bool, unroll: int | bool,
               init: RecurrentInit, adjust: Any = None, second_bias: bool = False) -> Module:
    """The Module shared by the three layers; ``scan`` is ``rnn_scan``-like and ``adjust``
    edits fresh params (the LSTM's forget-gate bias)."""
    if not isinstance(hidden, int) or isinstance(hidden, bool) or hidden < 1:
        raise ValueError(f"{layer}: hidden must be a positive int, got {hidden!r}")

    def init_fn(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        check_rank(layer, x, (3,), "B, T, C")
        check_float(layer, x)
        params = recurrent_params(key, cell, x.shape[-1], hidden, x.dtype, init, second_bias)
        return (adjust(params) if adjust else params), {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False,
              carry: Carry = None, mask: Any = None):
        del key, train
        x = jnp.asarray(x)
        check_sequence(layer, params, x, mask)
        carry = initial_carry(layer, cell, params, x, carry)
        hs, carry = scan(params, x, carry, mask=mask, reverse=reverse, unroll=unroll)
        y = hs if return_sequences else hidden_of(carry)
        return ((y, carry) if return_carry else y), state

    return leaf(init_fn, apply, name, accepts={"carry", "mask"})


_OPTIONS = """
    Shapes: x (B, T, C) → (B, T, H) with ``return_sequences`` (the default), else (B, H): the
    final state h_T, which is the last real step's h under a mask (and h at t = 0 reversed).
    With ``return_carry=True`` the output is (y, final carry).

    Args:
      hidden: H, the size of the state.
      return_sequences: return h at every step (True) or only the final state (False).
      return_carry: also return the final carry, to thread into the next window (``carry=``).
      reverse: run from t = T−1 down to 0 (the backward half of a bidirectional layer); outputs
        stay at their own t.
      unroll: ``lax.scan``'s unroll, time steps per loop iteration (a speed knob, same numbers).
      init: a ``RecurrentInit`` (defaults: flax's).
"""


def SimpleRNN(hidden: int, *, return_sequences: bool = True, return_carry: bool = False,
              reverse: bool = False, unroll: int | bool = 1,
              init: RecurrentInit = RecurrentInit()) -> Module:
    """The course's vanilla RNN: h_t = tanh(x_t w_x + h_{t−1} w_h + b), the same weights at
    every step (w_x is the course's W_xhᵀ, w_h its W_hhᵀ). As ``torch.nn.RNN`` (tanh), whose
    two biases b_ih + b_hh are one ``b`` here.

    Params: ``w_x`` (C, H), ``w_h`` (H, H), ``b`` (H,): H·(C + H) + H numbers.
    """
    return _recurrent("SimpleRNN", "simple_rnn", "simple_rnn", hidden, rnn_scan,
                      return_sequences=return_sequences, return_carry=return_carry,
                      reverse=reverse, unroll=unroll, init=init)


def fused_lstm_scan(params: Params, x: Any, carry: LSTMCarry, *, mask: Any = None,
                    reverse: bool = False, unroll: int | bool = 1, impl: str = "fused") -> tuple[jax.Array, LSTMCarry]:
    """``lstm_scan``'s numbers through the fast kernel ``jdl.kernels.lstm.lstm_sequence``
    (impl='fused': hand-written BPTT, weight gradients after the loop; 'native': the same with
    its scans in C++ for x86-64 CPUs); no padding mask.

    Shapes: x (B, T, C), carry LSTMCarry(h_0, c_0) each (B, H) → (h (B, T, H), LSTMCarry(h_T, c_T)).
    """
    if mask is not None:
        raise ValueError(f"LSTM(impl={impl!r}): the fused kernel takes no mask; padded batches "
                         "need LSTM(..., impl='scan') (the default)")
    x = jnp.flip(x, 1) if reverse else x
    hs, (h, c) = lstm_sequence(params, x, carry.h, carry.c, impl=impl, unroll=unroll)
    return (jnp.flip(hs, 1) if reverse else hs), LSTMCarry(h, c)


def LSTM(hidden: int, *, forget_bias: float = 1.0, return_sequences: bool = True,
         return_carry: bool = False, reverse: bool = False, unroll: int | bool = 1,
         init: RecurrentInit = RecurrentInit(), impl: str = "scan") -> Module:
    """The LSTM (``lstm_step``): gates i, f, c̃, o on [h_{t−1}, x_t], c_t = f ⊙ c_{t−1} + i ⊙ c̃,
    h_t = o ⊙ tanh(c_t); the carry is ``LSTMCarry(h, c)``. As ``torch.nn.LSTM``, whose two
    biases b_ih + b_hh are one ``b`` here, and flax's ``LSTMCell`` (carry (c, h) there).

    Params: ``w_x`` (C, 4H), ``w_h`` (H, 4H), ``b`` (4H,), gates in the order i, f, g (= c̃), o
    along the 4H axis (PyTorch's): 4·(H·(C + H) + H) numbers.

    ``forget_bias`` is added to the forget gate's bias b_f at init (default 1.0, Gers et al.
    2000 and Jozefowicz et al. 2015: the cell starts by remembering, f ≈ σ(1) = 0.73, so
    gradients flow through c from the first step). PyTorch and flax start at 0:
    ``forget_bias=0.0``.

    ``impl`` picks how the recurrence runs, with the same numbers: 'scan' (default) is
    ``lstm_scan``, the plain definition; 'fused' is the fast kernel (``fused_lstm_scan``; no
    ``mask``), measured in benchmarks/NOTES.md ("char-LSTM"); 'native' is 'fused' with its two
    scans compiled from C++ (``jdl.kernels.lstm_native``: float32 on x86-64 CPUs with AVX2, H a
    multiple of 8; equal to float32 rounding, not bit for bit).
    """
    if impl not in LSTM_IMPLS:
        raise ValueError(f"LSTM: impl must be one of {LSTM_IMPLS}, got {impl!r}")

    def adjust(params: Params) -> Params:
        b = params["b"].at[hidden:2 * hidden].add(forget_bias)   # gate f is the 2nd block
        return {**params, "b": b}

    scan = lstm_scan if impl == "scan" else functools.partial(fused_lstm_scan, impl=impl)
    return _recurrent("LSTM", "lstm", "lstm", hidden, scan,
                      return_sequences=return_sequences, return_carry=return_carry,
                      reverse=reverse, unroll=unroll, init=init, adjust=adjust)


def GRU(hidden: int, *, reset_after_matmul: bool = True, return_sequences: bool = True,
        return_carry: bool = False, reverse: bool = False, unroll: int | bool = 1,
        init: RecurrentInit = RecurrentInit()) -> Module:
    """The GRU (``gru_step``): reset gate r, update gate z, candidate n (the course's h̃),
    h_t = z ⊙ h_{t−1} + (1 − z) ⊙ n.

    ``reset_after_matmul`` says where r acts on the previous state:
      True (default; PyTorch's ``nn.GRU``, cuDNN, flax's ``GRUCell``, Keras' reset_after):
        n = tanh(x_t w_xn + b_n + r ⊙ (h_{t−1} w_hn + b_hn)); one (H, 3H) matmul per step and a
        second bias ``b_h`` (3H,) (flax keeps only its n part: its b_hr, b_hz are 0).
      False (the course's d2l notes, Cho et al. 2014): n = tanh(x_t w_xn + (r ⊙ h_{t−1}) w_hn + b_n);
        one bias, 3/4 of an LSTM's parameters at equal sizes.

    Params: ``w_x`` (C, 3H), ``w_h`` (H, 3H), ``b`` (3H,) [+ ``b_h`` (3H,)], gates r, z, n
    (PyTorch's order): 3·(H·(C + H) + H) numbers [+ 3H].
    """

    def scan(params: Params, x: Any, carry: Carry, **kw: Any):
        return gru_scan(params, x, carry, reset_after_matmul=reset_after_matmul, **kw)

    return _recurrent("GRU", "gru", "gru", hidden, scan, return_sequences=return_sequences,
                      return_carry=return_carry, reverse=reverse, unroll=unroll, init=init,
                      second_bias=reset_after_matmul)


for _layer in (SimpleRNN, LSTM, GRU):
    _layer.__doc__ += _OPTIONS
