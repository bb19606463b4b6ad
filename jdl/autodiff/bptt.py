"""Backpropagation through time (BPTT) by hand: a vanilla RNN's backward pass written out step
by step, the Jacobian ∂h_t/∂h_0 that vanishes or explodes, and the LSTM's cell-state path.

The course's RNN topic, h_t = tanh(W_hh h_{t−1} + W_xh x_t + b), uses the same weights at every
step (parameter sharing) and trains them by BPTT: unroll into T copies of one layer, apply the
chain rule, compute a gradient for each copy of the shared weights, and sum them. That sum is
the course's backpropagation topic on weight sharing in computation graphs (w_1 = w_2 ⇒ ∂l/∂w is
the sum over both paths, as for a convolution kernel); the course's "or averaged" only rescales
the learning rate, so jdl sums, which is the exact derivative of L in the tied weight.

jdl keeps row vectors and w = Wᵀ (as ``jdl.nn.Dense``), with params
{'w_xh': (C, H), 'w_hh': (H, H), 'b': (H,)}:

    a_t = x_t w_xh + h_{t−1} w_hh + b,   h_t = tanh(a_t)                        (forward)
    g_t = ∂L/∂a_t = (∂L/∂h_t|direct + g_{t+1} w_hhᵀ) ⊙ (1 − h_t²),  g_{T+1} = 0
    ∂L/∂w_hh = Σ_t h_{t−1}ᵀ g_t,  ∂L/∂w_xh = Σ_t x_tᵀ g_t, ∂L/∂b = Σ_t g_t  (summed)
    ∂L/∂x_t = g_t w_xhᵀ,  ∂L/∂h_0 = g_1 w_hhᵀ

Inputs are x (T, C) with h_0 (H,), or batch-major x (B, T, C) with h_0 (B, H).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jdl.core import Params
from jdl.nn.activations import sigmoid, tanh

RNN_KEYS = ("w_xh", "w_hh", "b")
LSTM_KEYS = ("w_x", "w_h", "b")


def _check(fn: str, params: Params, keys: tuple[str, ...], h0: jax.Array, x: jax.Array,
           gates: int) -> None:
    """Raise ValueError naming ``fn`` unless params, h_0 and x have the shapes of one (batched or
    unbatched) sequence: w_x (C, gates·H), w_h (H, gates·H), b (gates·H,)."""
    if sorted(params) != sorted(keys):
        raise ValueError(f"{fn}: params must have the keys {list(keys)}, got {sorted(params)}")
    w_x, w_h, b = (params[k] for k in keys)
    H = w_h.shape[0]
    want = {keys[0]: (x.shape[-1], gates * H), keys[1]: (H, gates * H), keys[2]: (gates * H,)}
    for k, arr in zip(keys, (w_x, w_h, b)):
        if tuple(arr.shape) != want[k]:
            raise ValueError(f"{fn}: params[{k!r}] must have shape {want[k]} for C={x.shape[-1]}, "
                             f"H={H}, got {tuple(arr.shape)}")
    if x.ndim not in (2, 3):
        raise ValueError(f"{fn}: x must be (T, C) or (B, T, C), got shape {tuple(x.shape)}")
    if tuple(h0.shape) != (*x.shape[:-2], H):
        raise ValueError(f"{fn}: the initial state must have shape {(*x.shape[:-2], H)} for x of "
                         f"shape {tuple(x.shape)}, got {tuple(h0.shape)}")


def _time_major(x: jax.Array) -> jax.Array:
    """(T, C) → (T, 1, C) and (B, T, C) → (T, B, C): scan runs over the leading time axis."""
    return x[:, None] if x.ndim == 2 else jnp.swapaxes(x, 0, 1)


def _caller_layout(y: jax.Array, batched: bool) -> jax.Array:
    """The inverse of ``_time_major``: (T, B, …) → (B, T, …), or (T, 1, …) → (T, …)."""
    return jnp.swapaxes(y, 0, 1) if batched else y[:, 0]


def rnn_forward(params: Params, h0: jax.Array, x: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The forward pass h_t = tanh(x_t w_xh + h_{t−1} w_hh + b), t = 1..T, and the cache
    ``{'x', 'h0', 'h'}`` that ``rnn_backward`` reads.

    Shapes: x (T, C), h0 (H,) → h (T, H); or x (B, T, C), h0 (B, H) → h (B, T, H).
    """
    _check("rnn_forward", params, RNN_KEYS, h0, x, gates=1)

    def step(h_prev, x_t):                                       # (B, H), (B, C)
        h_t = tanh(x_t @ params["w_xh"] + h_prev @ params["w_hh"] + params["b"][None, :])
        return h_t, h_t

    _, h = jax.lax.scan(step, h0.reshape(-1, h0.shape[-1]), _time_major(x))  # (T, B, H)
    h = _caller_layout(h, x.ndim == 3)
    return h, {"x": x, "h0": h0, "h": h}


def rnn_backward(params: Params, cache: dict[str, jax.Array],
                 dL_dh: jax.Array) -> tuple[Params, jax.Array, jax.Array]:
    """BPTT: from ∂L/∂h_t|direct (the loss's own gradient at each h_t, zero where the loss does
    not read h_t), for t = T..1

        g_t = (∂L/∂h_t|direct + g_{t+1} w_hhᵀ) ⊙ (1 − h_t²)       (g_t = ∂L/∂a_t)

    then each unrolled copy's weight gradient, summed over the copies (the weights are shared):

        ∂L/∂w_hh = Σ_t h_{t−1}ᵀ g_t,  ∂L/∂w_xh = Σ_t x_tᵀ g_t,  ∂L/∂b = Σ_t g_t,
        ∂L/∂x_t = g_t w_xhᵀ,  ∂L/∂h_0 = g_1 w_hhᵀ.

    Shapes: dL_dh like cache['h'], (T, H) or (B, T, H). Returns (grads like params, ∂L/∂h_0 like
    h0, ∂L/∂x like x); equal to ``jax.grad`` of the same loss.

    >>> p = {"w_xh": jnp.array([[0.5]]), "w_hh": jnp.array([[0.9]]), "b": jnp.zeros(1)}
    >>> h, cache = rnn_forward(p, jnp.zeros(1), jnp.array([[1.0], [-1.0], [2.0]]))
    >>> grads, dL_dh0, dL_dx = rnn_backward(p, cache, jnp.array([[0.0], [0.0], [1.0]]))  # L = h_3
    >>> round(float(grads["w_hh"][0, 0]), 4)  # 0·g_1 + h_1·g_2 + h_2·g_3 = 0 + 0.1941 − 0.0394
    0.1547
    """
    x, h0, h = cache["x"], cache["h0"], cache["h"]
    if dL_dh.shape != h.shape:
        raise ValueError(f"rnn_backward: dL_dh must have the shape of the hidden states "
                         f"{tuple(h.shape)}, got {tuple(dL_dh.shape)}")
    xs, hs, dhs = _time_major(x), _time_major(h), _time_major(dL_dh)      # (T, B, ·)
    h_prev = jnp.concatenate([h0.reshape(1, -1, h0.shape[-1]), hs[:-1]])  # h_{t−1}: (T, B, H)

    def step(dh_from_next, inputs):       # dh_from_next = g_{t+1} w_hhᵀ, the path through h_{t+1}
        dh_direct, h_t = inputs
        g_t = (dh_direct + dh_from_next) * (1 - h_t * h_t)   # ∂L/∂a_t (B, H)
        return g_t @ params["w_hh"].T, g_t                   # ∂L/∂h_{t−1} through this copy

    dh0, g = jax.lax.scan(step, jnp.zeros_like(hs[0]), (dhs, hs), reverse=True)  # g (T, B, H)
    grads = {  # Σ over the T copies (and the batch) of each copy's gradient
        "w_xh": jnp.einsum("tbc,tbh->ch", xs, g),      # Σ_t x_tᵀ g_t       (C, H)
        "w_hh": jnp.einsum("tbi,tbh->ih", h_prev, g),  # Σ_t h_{t−1}ᵀ g_t   (H, H)
        "b": jnp.sum(g, axis=(0, 1)),                  # Σ_t g_t            (H,)
    }
    dx = _caller_layout(g @ params["w_xh"].T, x.ndim == 3)  # ∂L/∂x_t = g_t w_xhᵀ, like x
    return grads, dh0.reshape(h0.shape), dx


def rnn_state_jacobian(params: Params, h0: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """∂h_t/∂h_0 for every t = 1..T and its spectral norm ‖∂h_t/∂h_0‖₂ (largest singular value):

        ∂h_t/∂h_{t−1} = diag(1 − h_t²) w_hhᵀ,   ∂h_t/∂h_0 = Π_{s=t..1} diag(1 − h_s²) w_hhᵀ

    (latest step leftmost). Layout: entry [j, i] is ∂h_t[j]/∂h_0[i], the layout of
    ``jax.jacfwd``; with jdl's row vectors a gradient goes back as ∂L/∂h_0 = ∂L/∂h_t · ∂h_t/∂h_0.
    Since jdl's w_hh is the course's W_hhᵀ, each factor is the course's diag(1 − h_t²) W_hh:
    repeated multiplication by W_hh, which shrinks (spectral radius < 1) or grows (> 1) with t.

    Shapes: x (T, C), h0 (H,) → (T, H, H), (T,); x (B, T, C), h0 (B, H) → (B, T, H, H), (B, T).
    """
    h, _ = rnn_forward(params, h0, x)
    hs = _time_major(h)                                             # (T, B, H)
    B, H = hs.shape[1:]
    eye = jnp.broadcast_to(jnp.eye(H, dtype=hs.dtype), (B, H, H))   # ∂h_0/∂h_0

    def step(jac_prev, h_t):                                        # ∂h_{t−1}/∂h_0 (B, H, H)
        w_hh_jac = jnp.einsum("ji,bik->bjk", params["w_hh"].T, jac_prev)  # w_hhᵀ ∂h_{t−1}/∂h_0
        jac_t = (1 - h_t * h_t)[:, :, None] * w_hh_jac                    # diag(1 − h_t²) ·
        return jac_t, jac_t

    _, jac = jax.lax.scan(step, eye, hs)                           # (T, B, H, H)
    jac = _caller_layout(jac, x.ndim == 3)
    return jac, jnp.linalg.norm(jac, ord=2, axis=(-2, -1))


def lstm_gates(params: Params, h_prev: jax.Array, x_t: jax.Array) -> tuple[jax.Array, ...]:
    """The LSTM's gates at one step, from params {'w_x': (C, 4H), 'w_h': (H, 4H), 'b': (4H,)}:
    z = x_t w_x + h_{t−1} w_h + b split in the order (i, f, g, o);
    i = σ(z_i), f = σ(z_f), g = tanh(z_g), o = σ(z_o).

    Shapes: h_prev (B, H), x_t (B, C) → four arrays (B, H).
    """
    z = x_t @ params["w_x"] + h_prev @ params["w_h"] + params["b"][None, :]  # (B, 4H)
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)                            # 4 × (B, H)
    return sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)


def lstm_cell_from_gates(i: jax.Array, f: jax.Array, g: jax.Array, o: jax.Array,
                         c_prev: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One LSTM cell update from gate values: c_t = f ⊙ c_{t−1} + i ⊙ g, h_t = o ⊙ tanh(c_t).

    With f = 1 and i = 0 the cell state is copied exactly: c_t = c_{t−1}. Shapes: all (…, H).
    Returns (h_t, c_t).
    """
    c_t = f * c_prev + i * g
    return o * tanh(c_t), c_t


GatesFn = Callable[[Params, jax.Array, jax.Array], tuple[jax.Array, ...]]


def lstm_forward(params: Params, h0: jax.Array, c0: jax.Array, x: jax.Array,
                 gates_fn: GatesFn = lstm_gates) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
    """The LSTM over a sequence: (i, f, g, o) = gates_fn(params, h_{t−1}, x_t), then
    ``lstm_cell_from_gates``. ``gates_fn`` is ``lstm_gates`` unless a caller sets the gates
    itself (f = 1, i = 0 for an exact copy of the cell state).

    Shapes: x (T, C), h0 and c0 (H,) → h, c (T, H) and gates {'i', 'f', 'g', 'o'} each (T, H);
    x (B, T, C), h0 and c0 (B, H) → (B, T, H).
    """
    _check("lstm_forward", params, LSTM_KEYS, h0, x, gates=4)
    if c0.shape != h0.shape:
        raise ValueError(f"lstm_forward: c0 must have the shape of h0 {tuple(h0.shape)}, got {tuple(c0.shape)}")

    def step(carry, x_t):                                          # (B, H) × 2, (B, C)
        h_prev, c_prev = carry
        i, f, g, o = gates_fn(params, h_prev, x_t)
        h_t, c_t = lstm_cell_from_gates(i, f, g, o, c_prev)
        return (h_t, c_t), (h_t, c_t, {"i": i, "f": f, "g": g, "o": o})

    H = h0.shape[-1]
    _, (h, c, gates) = jax.lax.scan(step, (h0.reshape(-1, H), c0.reshape(-1, H)), _time_major(x))
    back = lambda y: _caller_layout(y, x.ndim == 3)  # noqa: E731
    return back(h), back(c), jax.tree.map(back, gates)


def forget_gate_product(f: jax.Array) -> jax.Array:
    """∂c_t/∂c_0 along the cell-state path alone, for every t: Π_{s=1..t} f_s (elementwise, the
    "constant error carousel"; 1 for f = 1). It is the whole of ∂c_t/∂c_0 when h does not feed
    back into the gates (w_h = 0); otherwise it is the direct path, and the paths through
    h_{t−1} → gates add to it.

    Multiplied one step at a time (s = 1, 2, …) so the result is bit-equal to the chain rule's.
    Shapes: f (T, H) → (T, H); f (B, T, H) → (B, T, H).
    """
    fs = _time_major(f)                                            # (T, B, H)
    step = lambda p, f_t: (f_t * p, f_t * p)  # noqa: E731
    _, prod = jax.lax.scan(step, jnp.ones_like(fs[0]), fs)
    return _caller_layout(prod, f.ndim == 3)


def lstm_cell_path(params: Params, h0: jax.Array, c0: jax.Array, x: jax.Array,
                   gates_fn: GatesFn = lstm_gates) -> jax.Array:
    """``forget_gate_product`` of the forget gates ``lstm_forward`` computes: ∂c_t/∂c_0 along the
    cell state, Π_{s≤t} f_s. Shapes: as ``lstm_forward``'s c, (T, H) or (B, T, H)."""
    _, _, gates = lstm_forward(params, h0, c0, x, gates_fn)
    return forget_gate_product(gates["f"])
