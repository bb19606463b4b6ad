"""Rotary position embeddings (RoPE, Su et al. 2021): rotate each pair of query and key features
by an angle proportional to the token's position, so that their dot product depends only on
the positions' difference. The default of modern decoders (GPT-NeoX, LLaMA, Mistral)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jdl.nn.positions import position_ids


def rope_frequencies(d: int, base: float = 10000.0) -> jax.Array:
    """The rotation speeds of RoPE's d/2 feature pairs: θ_i = base^{−2i/d}, i = 0 … d/2−1.

    They are the angular frequencies ω_i of the sinusoidal encoding: pair i turns by p·θ_i
    radians at position p, from 1 rad per position (i = 0) down to nearly 1/base.

    Shapes: → (d/2,) float32 (float64 under x64).

    Args:
      d: the (even) feature size of each head, d_k.
      base: the wavelength scale (10000 in RoPE and LLaMA 1–2; later models use larger ones).
    """
    if not isinstance(d, int) or d < 2 or d % 2:
        raise ValueError(f"rope_frequencies: d must be an even positive int, got {d!r}")
    return jnp.power(base, -jnp.arange(0, d, 2) / d)  # (d/2,)


def rope(x: jax.Array, positions: Any = None, base: float = 10000.0, *,
         interleaved: bool = False) -> jax.Array:
    """Rotate each feature pair (a_i, b_i) of x by the angle p·θ_i of its token's position p:

        a_i' = a_i cos(pθ_i) − b_i sin(pθ_i),    b_i' = b_i cos(pθ_i) + a_i sin(pθ_i)

    with θ_i = ``rope_frequencies(d, base)``. Applied to queries and keys (not values) before
    attention, so that for any vectors q, k

        ⟨rope(q, m), rope(k, n)⟩ = Re[Σ_i q̃_i conj(k̃_i) e^{i(m−n)θ_i}]

    (q̃_i = a_i + i·b_i) depends on the positions only through m − n: relative positions, with
    no parameters and no length limit. Rotations keep every pair's norm.

    Pairing conventions. The default, ``interleaved=False``, pairs feature i with i + d/2
    ("rotate half": a = x[..., :d/2], b = x[..., d/2:]), as GPT-NeoX and Hugging Face's LLaMA do.
    ``interleaved=True`` pairs features 2i and 2i+1 (a = x[..., 0::2], b = x[..., 1::2]), as
    the RoPE paper, GPT-J and Meta's original LLaMA code do. Both are the same map up to a fixed
    permutation of the d features, which a checkpoint converter folds into W_q and W_k; the
    attention scores are identical, but weights trained with one convention need that
    permutation to be used with the other.

    Shapes: x (..., T, d) with d even, e.g. (B, H, T, d_k); positions integers broadcastable to
    (..., T) (None: 0 … T−1; for x laid out (B, T, H, d_k) pass positions of shape (T, 1))
    → same shape and dtype as x. Angles are computed in float32 (or float64 under x64).

    Args:
      x: queries or keys, one head's features last.
      positions: the token positions p; a decoding step at position t passes ``t``.
      base: the wavelength scale of ``rope_frequencies``.
      interleaved: pair features (2i, 2i+1) instead of (i, i + d/2).

    >>> q = jnp.ones((1, 3, 4))
    >>> rope(q, jnp.arange(3)).shape
    (1, 3, 4)
    """
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"rope: the feature size d={d} of x {tuple(x.shape)} must be even "
                         "(RoPE rotates pairs of features)")
    p = position_ids("rope", x, positions)
    theta = rope_frequencies(d, base)
    angle = p[..., None].astype(theta.dtype) * theta.reshape((1,) * p.ndim + (d // 2,))  # (..., T, d/2)
    half = x.shape[:-1] + (d // 2,)
    cos = jnp.broadcast_to(jnp.cos(angle), half).astype(x.dtype)  # (..., T, d/2)
    sin = jnp.broadcast_to(jnp.sin(angle), half).astype(x.dtype)
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]  # (..., T, d/2) each
        y = jnp.stack([a * cos - b * sin, b * cos + a * sin], axis=-1)  # (..., T, d/2, 2)
        return y.reshape(x.shape)  # (..., T, d): pairs back in place
    a, b = x[..., : d // 2], x[..., d // 2:]  # (..., T, d/2) each
    return jnp.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)  # (..., T, d)
