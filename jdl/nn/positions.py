"""Position information for attention, which by itself is permutation-equivariant: the
course's sinusoidal encoding, learned positions (GPT-2), and rotary embeddings (RoPE, the
modern default, which rotates queries and keys instead of adding to the input)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl import init as initializers
from jdl.core import Initializer, Module, Params, PRNGKey, State, check_float, check_rank, leaf, shape_struct
from jdl.nn.embedding import embed


def sinusoidal_positions(n: int, d: int, base: float = 10000.0, dtype: Any = jnp.float32) -> jax.Array:
    """The sinusoidal position encoding of Vaswani et al. (2017), one row per position:

        PE(p, 2i) = sin(p / base^{2i/d}),   PE(p, 2i+1) = cos(p / base^{2i/d}),   base = 10000

    for p = 0 … n−1 and i = 0 … ⌈d/2⌉−1 (an odd d keeps the last sine column). Each pair of
    columns is a clock of angular frequency ω_i = base^{−2i/d}, from 1 rad per position down to
    1/base, so PE(p + k) is a fixed rotation of PE(p) in each pair: a relative offset is a linear
    function of the encodings.

    The course's sheet writes this as sin(p/(100000^{2i/512})) and cos(p/(100000^{(2i+1)/512}))
    for d = 512: a typo on both counts. The base is 10000 (four zeros, as in the paper and the
    course's own topic list, sin(p/10000^{2i/d})), and the cosine of column 2i+1 uses the same
    exponent 2i/d as its sine partner; the sheet's worked shape stands: 2 positions give a
    2 × 512 matrix. Pass ``base=100000.0`` to see the sheet's slower clocks.

    Shapes: → (n, d).

    Args:
      n: number of positions, p = 0 … n−1.
      d: the model width d_model.
      base: the wavelength scale (10000 in the paper).
      dtype: the result's dtype; angles are computed in float32 (or float64 under x64).

    >>> sinusoidal_positions(2, 512).shape
    (2, 512)
    """
    for name, value in (("n", n), ("d", d)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"sinusoidal_positions: {name} must be a positive int, got {value!r}")
    return _encode(jnp.arange(n), d, base).astype(dtype)


def _encode(p: jax.Array, d: int, base: float) -> jax.Array:
    """PE at integer positions p (...): column 2i is sin(p·ω_i), column 2i+1 cos(p·ω_i)."""
    j = jnp.arange(d).reshape((1,) * p.ndim + (d,))  # (1…, d): column j = 2i or 2i + 1
    omega = jnp.power(base, -(2 * (j // 2)) / d)  # ω_i = base^{−2i/d}
    angle = p[..., None] * omega  # (..., d)
    return jnp.where(j % 2 == 0, jnp.sin(angle), jnp.cos(angle))


def position_ids(layer: str, x: Any, positions: Any = None) -> jax.Array:
    """The position ids of the tokens of x (..., T, d): 0 … T−1 by default, else ``positions``,
    integers whose shape broadcasts to x's (..., T) (a decoding step at position t passes t).
    Raises a ``TypeError``/``ValueError`` naming ``layer`` otherwise.

    Shapes: x (..., T, d), positions broadcastable to (..., T) → (T,) or positions' shape.
    """
    if x.ndim < 2:
        raise ValueError(f"{layer}: expected an input of shape (..., T, d), got shape {tuple(x.shape)}")
    if positions is None:
        return jnp.arange(x.shape[-2])  # (T,)
    positions = jnp.asarray(positions)
    if not jnp.issubdtype(positions.dtype, jnp.integer):
        raise TypeError(f"{layer}: positions must be integers, got dtype {positions.dtype}")
    try:
        ok = jnp.broadcast_shapes(positions.shape, x.shape[:-1]) == tuple(x.shape[:-1])
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{layer}: positions of shape {tuple(positions.shape)} do not broadcast "
                         f"against the input's (B, T) = {tuple(x.shape[:-1])}")
    return positions


def SinusoidalPositions(base: float = 10000.0) -> Module:
    """Add the fixed sinusoidal encoding to a sequence of embeddings: y_p = x_p + PE(p)
    (``sinusoidal_positions``; no params). The original Transformer also scales the token
    embeddings by √d_model before the sum; that belongs to the model.

    ``apply(..., positions=ids)`` adds PE at the given integer positions instead of 0 … T−1
    (a decoding step at position t passes ``positions=t``).

    Shapes: x (B, T, d) or (T, d) → same shape; positions broadcast against (B, T).
    """

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        del key
        x = shape_struct(x)
        check_rank("SinusoidalPositions", x, (2, 3), "T, d or B, T, d")
        check_float("SinusoidalPositions", x)
        return {}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, positions=None):
        del params, key, train
        check_rank("SinusoidalPositions", x, (2, 3), "T, d or B, T, d")
        pe = _encode(position_ids("SinusoidalPositions", x, positions), x.shape[-1], base)  # (..., T, d)
        return x + jnp.broadcast_to(pe.astype(x.dtype), x.shape), state

    return leaf(init, apply, "sinusoidal_positions", accepts={"positions"})


def LearnedPositions(max_len: int, *, w_init: Initializer = initializers.normal(0.02)) -> Module:
    """Add a learned vector per position (GPT-2's ``wpe``): y_p = x_p + W[p], p = 0 … T−1.

    Unlike the sinusoidal encoding it knows no position ≥ ``max_len``: a longer input raises a
    ``ValueError``, and out-of-range ``positions=`` give NaN rows (as ``embed``). The default
    init N(0, 0.02²) is GPT-2's.

    Shapes: x (B, T, d) or (T, d), T ≤ max_len → same shape. Params: ``w`` (max_len, d).

    Args:
      max_len: the number of positions the table holds (the context length).
      w_init: initializer of the (max_len, d) table.
    """
    if not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"LearnedPositions: max_len must be a positive int, got {max_len!r}")

    def check(x: Any) -> None:
        check_rank("LearnedPositions", x, (2, 3), "T, d or B, T, d")
        check_float("LearnedPositions", x)
        if x.shape[-2] > max_len:
            raise ValueError(f"LearnedPositions: input of shape {tuple(x.shape)} has T={x.shape[-2]} "
                             f"positions but the table holds max_len={max_len}")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        x = shape_struct(x)
        check(x)
        return {"w": w_init(key, (max_len, x.shape[-1]), x.dtype)}, {}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False, positions=None):
        del key, train
        check(x)
        if x.shape[-1] != params["w"].shape[1]:
            raise ValueError(f"LearnedPositions: input of shape {tuple(x.shape)} has d={x.shape[-1]} "
                             f"but the table was initialized with d={params['w'].shape[1]}")
        p = position_ids("LearnedPositions", x, positions)
        return x + jnp.broadcast_to(embed(params, p).astype(x.dtype), x.shape), state

    return leaf(init, apply, "learned_positions", accepts={"positions"})
