"""Recurrent wrappers and helpers: ``Bidirectional``, ``StackedRNN`` (dropout between layers),
the carry helpers of truncated BPTT (``zero_carry``, ``detach``) and parameter counts.

Truncated BPTT trains on a long sequence cut into windows of T steps: the final carry of one
window is the initial carry of the next, so the forward pass is exactly the long sequence's,
while ``detach`` (``stop_gradient``) at each window edge cuts the backward pass there, so
memory and work stay O(T) and only the gradient paths crossing an edge are lost:

    carry = zero_carry(layer, params, B)
    for x_w in windows:                       # each (B, T, C)
        (y, carry), _ = layer.apply(params, state, x_w, carry=detach(carry))
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_key, check_keywords, fold_in, shape_struct
from jdl.nn.combinators import child_names
from jdl.nn.dropout import dropout as drop
from jdl.nn.recurrent_cells import GATES, LSTMCarry

ACCEPTS = frozenset({"carry", "mask"})
MERGES = ("concat", "sum", "mean", None)


def _split(layer: str, out: Any) -> tuple[jax.Array, Any, bool]:
    """A recurrent child's output as (y, carry or None, whether it returned a carry)."""
    if isinstance(out, tuple):
        if len(out) != 2:
            raise ValueError(f"{layer}: a child returned a tuple of {len(out)}; expected y or (y, carry)")
        return out[0], out[1], True
    return out, None, False


def _flip(a: Any) -> Any:
    """Reverse the time axis (axis 1) of a (B, T, …) array; None passes through."""
    return None if a is None else jnp.flip(jnp.asarray(a), axis=1)


def _merge(y_f: jax.Array, y_b: jax.Array, merge: str | None) -> Any:
    if merge == "concat":
        return jnp.concatenate([y_f, y_b], axis=-1)                # (..., 2H)
    if merge == "sum":
        return y_f + y_b
    if merge == "mean":
        return 0.5 * (y_f + y_b)
    return y_f, y_b


def Bidirectional(fwd: Module, bwd: Module | None = None, merge: str | None = "concat") -> Module:
    """Two recurrent layers over one sequence, one forward in time and one backward:

        h→_t = fwd(x_1..x_t),   h←_t = bwd(x_T..x_t),   y_t = [h→_t, h←_t]  (merge="concat")

    ``bwd`` runs forward in time on the time-flipped sequence (and flipped mask), and its
    outputs are flipped back, so build it like ``fwd`` (not with ``reverse=True``); ``bwd=None``
    uses a second copy of ``fwd`` with its own params. Under a mask each sequence's backward
    pass starts at its own last real step, as in PyTorch's packed bidirectional layers. With
    ``return_sequences=False`` children, y is [h→_T, h←_1], PyTorch's h_n of both directions.

    Shapes: x (B, T, C) → (B, T, 2H) ("concat"), (B, T, H) ("sum", "mean"), a pair of
    (B, T, H) (None); (B, ·) instead of (B, T, ·) with ``return_sequences=False``. The carry
    (in and out, when the children return one) is the pair (fwd's, bwd's).

    Args:
      fwd, bwd: recurrent layers (``LSTM(H)``, ``GRU(H)``, …); both return a carry or neither.
      merge: "concat", "sum", "mean", or None for the pair.
    """
    if merge not in MERGES:
        raise ValueError(f"Bidirectional: merge must be one of {MERGES}, got {merge!r}")
    mods = (fwd, fwd if bwd is None else bwd)
    names = child_names(mods)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        out = [m.init(jax.random.fold_in(key, i), x) for i, m in enumerate(mods)]
        return {n: p for n, (p, _) in zip(names, out)}, {n: s for n, (_, s) in zip(names, out)}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords("bidirectional", extra, ACCEPTS, combinator=True)
        carry, mask = extra.get("carry"), extra.get("mask")
        c_f, c_b = (None, None) if carry is None else carry
        out_f, s_f = mods[0].apply(params[names[0]], state.get(names[0], {}), x, key=fold_in(key, 0),
                                   train=train, carry=c_f, mask=mask)
        out_b, s_b = mods[1].apply(params[names[1]], state.get(names[1], {}), _flip(x),
                                   key=fold_in(key, 1), train=train, carry=c_b, mask=_flip(mask))
        (y_f, c_f, has_f), (y_b, c_b, has_b) = _split("Bidirectional", out_f), _split("Bidirectional", out_b)
        if has_f != has_b:
            raise ValueError("Bidirectional: build fwd and bwd with the same return_carry")
        y_b = _flip(y_b) if y_b.ndim == 3 else y_b                  # back to time order
        y = _merge(y_f, y_b, merge)
        return ((y, (c_f, c_b)) if has_f else y), {names[0]: s_f, names[1]: s_b}

    return Module(init, apply, "bidirectional", mods, ACCEPTS)


def StackedRNN(layers: Sequence[Module], dropout: float = 0.0) -> Module:
    """Recurrent layers on top of each other: layer l reads layer l−1's outputs h^(l−1)_t, with
    inverted dropout of rate ``dropout`` on the outputs of every layer but the last when
    ``train=True`` (PyTorch's ``nn.LSTM(num_layers=L, dropout=p)``); each layer gets the mask.

    Shapes: x (B, T, C) → the last layer's output. Carry, in and out (when the layers return
    one; all or none must): a tuple with one carry per layer.

    Args:
      layers: recurrent Modules (``LSTM``, ``GRU``, ``Bidirectional``, …); all but the last
        must return sequences.
      dropout: drop probability between layers, in [0, 1); needs ``key`` when training.
    """
    mods = tuple(layers)
    if not mods:
        raise ValueError("StackedRNN: needs at least one layer")
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"StackedRNN: dropout must be a probability in [0, 1), got {dropout!r}")
    names = child_names(mods)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        params, state = {}, {}
        x = shape_struct(x)
        for i, (n, m) in enumerate(zip(names, mods)):
            params[n], state[n] = m.init(jax.random.fold_in(key, i), x)
            out = jax.eval_shape(lambda p, s, x, m=m: m.apply(p, s, x)[0], params[n], state[n], x)
            x = _split("StackedRNN", out)[0]
            if i < len(mods) - 1 and x.ndim != 3:
                raise ValueError(f"StackedRNN: layer {n} returns shape {tuple(x.shape)}; every layer "
                                 "but the last must return sequences (B, T, H)")
        return params, state

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        check_keywords("stacked_rnn", extra, ACCEPTS, combinator=True)
        carries, mask = extra.get("carry"), extra.get("mask")
        if carries is not None and len(carries) != len(mods):
            raise ValueError(f"StackedRNN: carry must hold one carry per layer ({len(mods)}), "
                             f"got {len(carries)}")
        if train and dropout > 0:
            check_key("StackedRNN", key, train)
        new_state, out_carries, has = {}, [], set()
        for i, (n, m) in enumerate(zip(names, mods)):
            out, new_state[n] = m.apply(params[n], state.get(n, {}), x, key=fold_in(key, i),
                                        train=train, mask=mask,
                                        carry=None if carries is None else carries[i])
            x, c, returned = _split("StackedRNN", out)
            out_carries.append(c)
            has.add(returned)
            if train and dropout > 0 and i < len(mods) - 1:
                x = drop(jax.random.fold_in(key, len(mods) + i), x, dropout)
        if len(has) > 1:
            raise ValueError("StackedRNN: build every layer with the same return_carry")
        return ((x, tuple(out_carries)) if has == {True} else x), new_state

    return Module(init, apply, "stacked_rnn", mods, ACCEPTS)


def zero_carry(layer: Module, params: Params, batch: int) -> Any:
    """The all-zero initial carry of ``layer`` (SimpleRNN, LSTM, GRU, Bidirectional, StackedRNN)
    for a batch of ``batch`` sequences: h_0 (B, H), LSTMCarry(h_0, c_0), or the pair/tuple of
    its children's. Passing it equals passing ``carry=None``, but gives ``jit`` one pytree
    structure for the first window and the rest."""
    if layer.name in ("simple_rnn", "gru", "lstm"):
        w_h = params["w_h"]                                        # (H, G·H)
        h0 = jnp.zeros((batch, w_h.shape[0]), w_h.dtype)
        return LSTMCarry(h0, h0) if layer.name == "lstm" else h0
    if layer.name in ("bidirectional", "stacked_rnn"):
        return tuple(zero_carry(m, params[n], batch)
                     for m, n in zip(layer.children, child_names(layer.children)))
    raise ValueError(f"zero_carry: {layer.name!r} is not a recurrent layer (SimpleRNN, LSTM, GRU, "
                     "Bidirectional, StackedRNN)")


def detach(carry: Any) -> Any:
    """stop_gradient on every array of a carry: the forward value passes, the gradient is cut.
    Applied at a window edge in truncated BPTT, ∂L/∂(previous window) = 0 through the carry."""
    return jax.tree.map(jax.lax.stop_gradient, carry)


def recurrent_param_count(cell: str, d_in: int, hidden: int, biases: int = 1) -> int:
    """The parameters of one recurrent layer: G·(H·(C + H) + biases·H), G = 1, 4, 3 gates for
    'simple_rnn', 'lstm', 'gru'. ``biases=1`` counts as the course does (one bias per gate,
    jdl's SimpleRNN, LSTM and the reset-before GRU), ``biases=2`` as PyTorch does (b_ih and
    b_hh; jdl's reset-after GRU). A GRU has 3/4 of an LSTM's parameters either way.

    >>> recurrent_param_count("lstm", 100, 256), recurrent_param_count("lstm", 100, 256, biases=2)
    (365568, 366592)
    """
    if cell not in GATES:
        raise ValueError(f"recurrent_param_count: cell must be one of {sorted(GATES)}, got {cell!r}")
    if biases not in (1, 2):
        raise ValueError(f"recurrent_param_count: biases must be 1 (the course) or 2 (PyTorch), got {biases!r}")
    return GATES[cell] * (hidden * (d_in + hidden) + biases * hidden)
