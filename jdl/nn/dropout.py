"""Dropout: zero each unit with probability p during training (Srivastava et al., 2014).

Two forms keep the expected activation the same in training and at test time:

    inverted (default, what PyTorch, flax and the course's code do):
        train:  h' = m ⊙ h / (1 − p),   m_i ~ Bernoulli(1 − p)     test:  h' = h
    classic (the original paper; the course's "or multiply by 1 − p at test time"):
        train:  h' = m ⊙ h                                          test:  h' = (1 − p)·h

Both give E[h'] = (1 − p)·h·c with the same c in training and test. The inverted form is
preferred because evaluation then needs no knowledge of p.

Spatial dropout (``broadcast_dims``): one mask value is shared along the given axes, so on an
NHWC feature map ``broadcast_dims=(1, 2)`` drops whole channels of an example (PyTorch's
``Dropout2d``, flax's ``Dropout(broadcast_dims=...)``): neighbouring pixels are strongly
correlated, so dropping single pixels regularizes a convolutional layer little.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_key, leaf


def _check_p(name: str, p: Any) -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name}: the drop probability p must be a number in [0, 1), got {p!r} "
                         "(p = 1 would drop every unit)")


def _mask_shape(name: str, shape: tuple, broadcast_dims: Sequence[int]) -> tuple:
    """``shape`` with 1 on the broadcast axes (negative axes count from the end)."""
    dims = set()
    for d in broadcast_dims:
        if not isinstance(d, int) or not -len(shape) <= d < len(shape):
            raise ValueError(f"{name}: broadcast_dims {tuple(broadcast_dims)} must be axes of the "
                             f"input, which has shape {shape}")
        dims.add(d % len(shape))
    return tuple(1 if i in dims else n for i, n in enumerate(shape))


def dropout(key: PRNGKey, x: jax.Array, p: float, inverted: bool = True,
            broadcast_dims: Sequence[int] = ()) -> jax.Array:
    """The training-time dropout of ``x``: h' = m ⊙ x / (1 − p) (inverted) or m ⊙ x (classic),
    with a mask m_i ~ Bernoulli(1 − p) drawn from ``key``; the same key gives the same mask.
    Along ``broadcast_dims`` the mask is shared (spatial dropout: (1, 2) on NHWC drops whole
    channels).

    Shapes: x (...) → same shape and dtype; the mask has x's shape with 1 on ``broadcast_dims``.
    ``p`` is the drop probability in [0, 1).
    """
    _check_p("dropout", p)
    mask_shape = _mask_shape("dropout", x.shape, broadcast_dims)
    if p == 0.0:
        return x
    keep = jnp.broadcast_to(jax.random.bernoulli(key, 1.0 - p, mask_shape), x.shape)
    kept = x / (1.0 - p) if inverted else x
    return jnp.where(keep, kept, jnp.zeros_like(x)).astype(x.dtype)


def Dropout(p: float, inverted: bool = True, broadcast_dims: Sequence[int] = ()) -> Module:
    """A dropout layer: ``dropout(key, x, p)`` when ``train=True`` (a key is required), and in
    evaluation the identity (inverted, the default) or x·(1 − p) (``inverted=False``, the
    classic form). No params, no state. ``broadcast_dims`` shares the mask along those axes:
    ``Dropout(p, broadcast_dims=(1, 2))`` on (B, H, W, C) is spatial dropout (whole channels).

    Shapes: x (...) → same shape.
    """
    _check_p("Dropout", p)
    broadcast_dims = tuple(broadcast_dims)

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key
        _mask_shape("Dropout", tuple(x.shape), broadcast_dims)
        return {}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        del params
        _mask_shape("Dropout", x.shape, broadcast_dims)
        if not train:
            return (x if inverted else (x * (1.0 - p)).astype(x.dtype)), state
        check_key("Dropout", key, train)
        return dropout(key, x, p, inverted, broadcast_dims), state

    return leaf(init, apply, "dropout")
