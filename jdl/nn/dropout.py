"""Dropout: zero each unit with probability p during training (Srivastava et al., 2014).

Two forms keep the expected activation the same in training and at test time:

    inverted (default, what PyTorch, flax and the course's code do):
        train:  h' = m ⊙ h / (1 − p),   m_i ~ Bernoulli(1 − p)     test:  h' = h
    classic (the original paper; the course's "or multiply by 1 − p at test time"):
        train:  h' = m ⊙ h                                          test:  h' = (1 − p)·h

Both give E[h'] = (1 − p)·h·c with the same c in training and test. The inverted form is
preferred because evaluation then needs no knowledge of p.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_key


def _check_p(name: str, p: Any) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name}: the drop probability p must be a number in [0, 1), got {p!r} "
                         "(p = 1 would drop every unit)")


def dropout(key: PRNGKey, x: jax.Array, p: float, inverted: bool = True) -> jax.Array:
    """The training-time dropout of ``x``: h' = m ⊙ x / (1 − p) (inverted) or m ⊙ x (classic),
    with a mask m_i ~ Bernoulli(1 − p) drawn from ``key``; the same key gives the same mask.

    Shapes: x (...) → same shape and dtype. ``p`` is the drop probability in [0, 1).
    """
    _check_p("dropout", p)
    if p == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - p, x.shape)
    kept = x / (1.0 - p) if inverted else x
    return jnp.where(keep, kept, jnp.zeros_like(x)).astype(x.dtype)


def Dropout(p: float, inverted: bool = True) -> Module:
    """A dropout layer: ``dropout(key, x, p)`` when ``train=True`` (a key is required), and in
    evaluation the identity (inverted, the default) or x·(1 − p) (``inverted=False``, the
    classic form). No params, no state.

    Shapes: x (...) → same shape.
    """
    _check_p("Dropout", p)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key, x
        return {}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, **extra):
        del params, extra
        if not train:
            return (x if inverted else (x * (1.0 - p)).astype(x.dtype)), state
        check_key("Dropout", key, train)
        return dropout(key, x, p, inverted), state

    return Module(init, apply, "dropout")
