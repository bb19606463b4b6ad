"""Recurrent cells as pure functions, and their scans over time (the course's RNN topic).

A recurrent cell applies the same weights at every time step (parameter sharing), carrying a
state from step to step; ``jax.lax.scan`` runs it over the time axis so a sequence of any
length compiles to one loop. jdl keeps row vectors and w = Wᵀ (as ``Dense``), so the course's
h_t = tanh(W_hh h_{t−1} + W_xh x_t + b) is written h_t = tanh(x_t w_x + h_{t−1} w_h + b).

Param layouts (the gates side by side along the last axis, in PyTorch's order):

    simple RNN  {'w_x': (C, H),  'w_h': (H, H),  'b': (H,)}
    LSTM        {'w_x': (C, 4H), 'w_h': (H, 4H), 'b': (4H,)}           gates i, f, g (= c̃), o
    GRU         {'w_x': (C, 3H), 'w_h': (H, 3H), 'b': (3H,)[, 'b_h': (3H,)]}   gates r, z, n

The input projection x_t w_x + b does not depend on the state, so every ``*_scan`` computes it
for all T steps at once, as one (B·T, C) × (C, G·H) matmul outside the loop (``project_inputs``);
the loop body then has one (B, H) × (H, G·H) matmul per step. The ``*_step`` functions take that
projected input ``xw_t`` for one step.

Sequences are batch-major, x (B, T, C). A padding ``mask`` (B, T) marks the real steps: where it
is False the state is frozen (carried over unchanged) and the output is zero, so a padded batch
gives each sequence's own outputs, final state and gradients.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jdl.core import Params, check_rank
from jdl.nn.activations import sigmoid, tanh

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}  # gate blocks along w_x's and w_h's last axis


class LSTMCarry(NamedTuple):
    """The LSTM's state: h (B, H) the hidden state (short-term memory, the output) and c (B, H)
    the cell state (long-term memory). PyTorch's order (h, c); flax's cells carry (c, h)."""

    h: jax.Array
    c: jax.Array


Carry = Any  # an array h (B, H) for the simple RNN and the GRU, an LSTMCarry for the LSTM
Step = Callable[[Params, Carry, jax.Array], Carry]


def hidden_of(carry: Carry) -> jax.Array:
    """The hidden state h (B, H) of a carry: the array itself, or an ``LSTMCarry``'s ``h``."""
    return carry.h if isinstance(carry, LSTMCarry) else carry


def project_inputs(params: Params, x: jax.Array) -> jax.Array:
    """xw_t = x_t w_x + b for every step at once, time-major for the scan.

    Shapes: x (B, T, C), w_x (C, G·H), b (G·H,) → xw (T, B, G·H).
    """
    B, T, C = x.shape
    x_tm = jnp.swapaxes(x, 0, 1).reshape(T * B, C)                 # (T·B, C)
    xw = x_tm @ params["w_x"] + params["b"][None, :]              # (T·B, G·H)
    return xw.reshape(T, B, -1)                                    # (T, B, G·H)


def rnn_step(params: Params, h_prev: jax.Array, xw_t: jax.Array) -> jax.Array:
    """One simple-RNN step: h_t = tanh(xw_t + h_{t−1} w_h), with xw_t = x_t w_x + b.

    Shapes: h_prev (B, H), xw_t (B, H) → h_t (B, H).
    """
    return tanh(xw_t + h_prev @ params["w_h"])


def lstm_step(params: Params, carry: LSTMCarry, xw_t: jax.Array) -> LSTMCarry:
    """One LSTM step (the course's gates on [h_{t−1}, x_t], computed as one (H, 4H) matmul):

        [z_i, z_f, z_g, z_o] = xw_t + h_{t−1} w_h          (xw_t = x_t w_x + b)
        i = σ(z_i), f = σ(z_f), c̃ = g = tanh(z_g), o = σ(z_o)
        c_t = f ⊙ c_{t−1} + i ⊙ c̃,   h_t = o ⊙ tanh(c_t)

    With f = 1 and i = 0 the cell state is copied exactly (c_t = c_{t−1}), the "gradient
    highway" of the course. Shapes: carry (h, c) each (B, H), xw_t (B, 4H) → LSTMCarry.
    """
    z = xw_t + carry.h @ params["w_h"]                             # (B, 4H)
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)                  # 4 × (B, H)
    c_t = sigmoid(z_f) * carry.c + sigmoid(z_i) * tanh(z_g)
    return LSTMCarry(sigmoid(z_o) * tanh(c_t), c_t)


def gru_step(params: Params, h_prev: jax.Array, xw_t: jax.Array,
             reset_after_matmul: bool = True) -> jax.Array:
    """One GRU step, gates (r, z, n) with xw_t = x_t w_x + b split as [xw_r, xw_z, xw_n]:

        r = σ(xw_r + h_{t−1} w_hr [+ b_hr]),   z = σ(xw_z + h_{t−1} w_hz [+ b_hz])
        reset_after_matmul=True  (PyTorch, cuDNN, flax):  n = tanh(xw_n + r ⊙ (h_{t−1} w_hn + b_hn))
        reset_after_matmul=False (the course's d2l notes): n = tanh(xw_n + (r ⊙ h_{t−1}) w_hn)
        h_t = z ⊙ h_{t−1} + (1 − z) ⊙ n

    n is the candidate state h̃; the update gate z blends old state and candidate, the reset
    gate r decides how much of h_{t−1} the candidate sees. Resetting after the matmul lets one
    (H, 3H) matmul serve all three gates, and needs the second bias ``b_h`` (3H,) since r
    multiplies h_{t−1} w_hn + b_hn; resetting before needs a second, dependent matmul.

    Shapes: h_prev (B, H), xw_t (B, 3H) → h_t (B, H).
    """
    H = h_prev.shape[-1]
    xw_r, xw_z, xw_n = jnp.split(xw_t, 3, axis=-1)                 # 3 × (B, H)
    w_h = params["w_h"]                                            # (H, 3H)
    if reset_after_matmul:
        hw = h_prev @ w_h + params["b_h"][None, :]                 # (B, 3H)
        hw_r, hw_z, hw_n = jnp.split(hw, 3, axis=-1)
        r, z = sigmoid(xw_r + hw_r), sigmoid(xw_z + hw_z)
        n = tanh(xw_n + r * hw_n)
    else:
        hw_r, hw_z = jnp.split(h_prev @ w_h[:, :2 * H], 2, axis=-1)  # 2 × (B, H)
        r, z = sigmoid(xw_r + hw_r), sigmoid(xw_z + hw_z)
        n = tanh(xw_n + (r * h_prev) @ w_h[:, 2 * H:])
    return z * h_prev + (1.0 - z) * n


def scan_steps(step: Step, params: Params, xw: jax.Array, carry: Carry,
               mask: jax.Array | None = None, reverse: bool = False,
               unroll: int | bool = 1) -> tuple[jax.Array, Carry]:
    """Run ``step(params, carry, xw_t) -> carry`` over the time axis of ``xw`` with ``lax.scan``.

    Where ``mask[b, t]`` is False the carry is kept (state_t = state_{t−1}) and the output is 0;
    ``reverse`` runs t = T−1..0 (outputs stay at their own t). With right-padding, a reversed
    scan stays at the initial carry through the padding and so starts at each sequence's own end.

    Shapes: xw (T, B, G·H), mask (B, T) or None → (h for every step (B, T, H), final carry).
    """
    if mask is None:
        def body(carry, xw_t):
            carry = step(params, carry, xw_t)
            return carry, hidden_of(carry)
        carry, hs = jax.lax.scan(body, carry, xw, reverse=reverse, unroll=unroll)
    else:
        def body(carry, inputs):
            xw_t, m_t = inputs                                     # (B, G·H), (B, 1)
            new = step(params, carry, xw_t)
            carry = jax.tree.map(lambda n, o: jnp.where(m_t, n, o), new, carry)
            return carry, jnp.where(m_t, hidden_of(new), 0.0).astype(xw.dtype)
        m = jnp.swapaxes(jnp.asarray(mask).astype(bool), 0, 1)[:, :, None]  # (T, B, 1)
        carry, hs = jax.lax.scan(body, carry, (xw, m), reverse=reverse, unroll=unroll)
    return jnp.swapaxes(hs, 0, 1), carry                           # (B, T, H)


def check_sequence(layer: str, params: Params, x: Any, mask: Any = None) -> None:
    """Raise ``ValueError`` naming ``layer`` unless x is (B, T, C) with the C of ``w_x`` and the
    mask, if any, is (B, T)."""
    check_rank(layer, x, (3,), "B, T, C")
    if x.shape[-1] != params["w_x"].shape[0]:
        raise ValueError(f"{layer}: input of shape {tuple(x.shape)} has C={x.shape[-1]} but the "
                         f"layer was initialized with C={params['w_x'].shape[0]}")
    if mask is not None and tuple(jnp.shape(mask)) != tuple(x.shape[:2]):
        raise ValueError(f"{layer}: the mask must have shape (B, T) = {tuple(x.shape[:2])}, "
                         f"got {tuple(jnp.shape(mask))}")


def initial_carry(layer: str, cell: str, params: Params, x: jax.Array, carry: Carry) -> Carry:
    """The carry to start from: zeros when ``carry`` is None, else ``carry`` checked to be (B, H)
    (an ``LSTMCarry`` of two for the LSTM)."""
    B, H = x.shape[0], params["w_h"].shape[0]
    if carry is None:
        h0 = jnp.zeros((B, H), x.dtype)
        return LSTMCarry(h0, h0) if cell == "lstm" else h0
    if cell == "lstm" and not (isinstance(carry, tuple) and len(carry) == 2):
        raise ValueError(f"{layer}: carry must be an LSTMCarry(h, c) of two (B, H) = {(B, H)} "
                         f"arrays, got {type(carry).__name__}")
    leaves = carry if cell == "lstm" else (carry,)
    for leaf in leaves:
        if tuple(jnp.shape(leaf)) != (B, H):
            raise ValueError(f"{layer}: carry must be (B, H) = {(B, H)} for x of shape "
                             f"{tuple(x.shape)}, got {tuple(jnp.shape(leaf))}")
    return LSTMCarry(*carry) if cell == "lstm" else carry


def _scan(layer: str, cell: str, step: Step, params: Params, x: jax.Array, carry: Carry,
          mask: Any, reverse: bool, unroll: int | bool) -> tuple[jax.Array, Carry]:
    x = jnp.asarray(x)
    check_sequence(layer, params, x, mask)
    carry = initial_carry(layer, cell, params, x, carry)
    return scan_steps(step, params, project_inputs(params, x), carry, mask, reverse, unroll)


def rnn_scan(params: Params, x: jax.Array, carry: jax.Array | None = None, *, mask: Any = None,
             reverse: bool = False, unroll: int | bool = 1) -> tuple[jax.Array, jax.Array]:
    """The simple RNN over a sequence: h_t = tanh(x_t w_x + h_{t−1} w_h + b), t = 1..T.

    Shapes: x (B, T, C), carry h_0 (B, H) (zeros when None), mask (B, T) → (h (B, T, H), h_T).
    """
    return _scan("rnn_scan", "simple_rnn", rnn_step, params, x, carry, mask, reverse, unroll)


def lstm_scan(params: Params, x: jax.Array, carry: LSTMCarry | None = None, *, mask: Any = None,
              reverse: bool = False, unroll: int | bool = 1) -> tuple[jax.Array, LSTMCarry]:
    """The LSTM over a sequence (``lstm_step`` at each t), input projection hoisted out of the loop.

    Shapes: x (B, T, C), carry LSTMCarry(h_0, c_0) each (B, H) (zeros when None), mask (B, T)
    → (h (B, T, H), LSTMCarry(h_T, c_T)).
    """
    return _scan("lstm_scan", "lstm", lstm_step, params, x, carry, mask, reverse, unroll)


def gru_scan(params: Params, x: jax.Array, carry: jax.Array | None = None, *,
             reset_after_matmul: bool = True, mask: Any = None, reverse: bool = False,
             unroll: int | bool = 1) -> tuple[jax.Array, jax.Array]:
    """The GRU over a sequence (``gru_step`` at each t); ``params`` needs ``b_h`` when
    ``reset_after_matmul``.

    Shapes: x (B, T, C), carry h_0 (B, H) (zeros when None), mask (B, T) → (h (B, T, H), h_T).
    """
    if reset_after_matmul and "b_h" not in params:
        raise ValueError("gru_scan: reset_after_matmul=True needs params['b_h'] of shape (3H,) "
                         "(the bias inside r ⊙ (h w_hn + b_hn)); got keys " + str(sorted(params)))
    step = functools.partial(gru_step, reset_after_matmul=reset_after_matmul)
    return _scan("gru_scan", "gru", step, params, x, carry, mask, reverse, unroll)
