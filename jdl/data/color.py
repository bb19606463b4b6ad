"""Colour augmentations: brightness, contrast and sepia, beside the geometric ones of
``jdl.data.augment`` and composable with them (``augment.compose``, ``augment.batched``).

The course lists "rotation, zooming, sepia filter" as transformations h an image label does not
depend on. Images are (H, W, C) floats in [0, 1], C = 1 or 3 (RGB); results are clipped to
[0, 1]. The formulas are torchvision's documented ones (``torchvision.transforms.functional``),
so a pipeline ported from PyTorch keeps its meaning:

    adjust_brightness(x, f) = clip(f·x, 0, 1)                          (f = 0: black, 1: x)
    adjust_contrast(x, f)   = clip(f·x + (1 − f)·m, 0, 1),  m = mean over the image of
                              gray(x) = 0.2989·R + 0.587·G + 0.114·B   (f = 0: flat gray m)
    sepia(x)                = clip(x·Sᵀ, 0, 1) with the sepia-tone matrix
                              S = [[0.393, 0.769, 0.189],
                                   [0.349, 0.686, 0.168],
                                   [0.272, 0.534, 0.131]]              (R', G', B' rows)

Random versions draw f ~ U[max(0, 1 − δ), 1 + δ], as torchvision's ``ColorJitter(δ)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jdl.core import PRNGKey
from jdl.data.augment import Augmentation, _check_image

GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights (ITU-R 601-2 luma)
SEPIA = ((0.393, 0.769, 0.189), (0.349, 0.686, 0.168), (0.272, 0.534, 0.131))


def _check_channels(name: str, x: jax.Array, allowed: tuple[int, ...] = (1, 3)) -> None:
    _check_image(name, x)
    if x.shape[-1] not in allowed:
        raise ValueError(f"{name}: expected an image (H, W, C) with C in {allowed}, got shape {tuple(x.shape)}")


def grayscale(x: jax.Array) -> jax.Array:
    """gray = 0.2989·R + 0.587·G + 0.114·B (C = 3), or x itself (C = 1).

    Shapes: (H, W, C) → (H, W, 1).
    """
    _check_channels("grayscale", x)
    if x.shape[-1] == 1:
        return x
    return (x @ jnp.asarray(GRAY, x.dtype))[..., None]  # (H, W, 3) @ (3,) -> (H, W) -> (H, W, 1)


def adjust_brightness(x: jax.Array, factor: jax.Array | float) -> jax.Array:
    """x' = clip(f·x, 0, 1). Shapes: (H, W, C) → (H, W, C)."""
    _check_image("adjust_brightness", x)
    return jnp.clip(factor * x, 0, 1).astype(x.dtype)


def adjust_contrast(x: jax.Array, factor: jax.Array | float) -> jax.Array:
    """x' = clip(f·x + (1 − f)·m, 0, 1), m the image's mean gray level (one scalar).

    Shapes: (H, W, C) → (H, W, C), C = 1 or 3.
    """
    _check_channels("adjust_contrast", x)
    m = jnp.mean(grayscale(x))
    return jnp.clip(factor * x + (1 - factor) * m, 0, 1).astype(x.dtype)


def sepia(x: jax.Array) -> jax.Array:
    """x' = clip(x·Sᵀ, 0, 1): (R', G', B') = S·(R, G, B) at every pixel (see the module).

    Shapes: (H, W, 3) → (H, W, 3).
    """
    _check_channels("sepia", x, (3,))
    return jnp.clip(x @ jnp.asarray(SEPIA, x.dtype).T, 0, 1).astype(x.dtype)  # (H, W, 3) @ (3, 3)


def _jitter_factor(name: str, max_delta: float):
    if not max_delta >= 0:
        raise ValueError(f"{name}: max_delta must be >= 0, got {max_delta!r}")
    return lambda key, dtype: jax.random.uniform(key, (), dtype, max(0.0, 1 - max_delta), 1 + max_delta)


def random_brightness(max_delta: float) -> Augmentation:
    """x' = adjust_brightness(x, f), f ~ U[max(0, 1 − δ), 1 + δ]. Shapes: (H, W, C) → (H, W, C)."""
    draw = _jitter_factor("random_brightness", max_delta)
    return lambda key, x: adjust_brightness(x, draw(key, x.dtype))


def random_contrast(max_delta: float) -> Augmentation:
    """x' = adjust_contrast(x, f), f ~ U[max(0, 1 − δ), 1 + δ]. Shapes: (H, W, C) → (H, W, C)."""
    draw = _jitter_factor("random_contrast", max_delta)
    return lambda key, x: adjust_contrast(x, draw(key, x.dtype))


def random_sepia(p: float = 0.5) -> Augmentation:
    """x' = sepia(x) with probability p, else x. Shapes: (H, W, 3) → (H, W, 3)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_sepia: p must be in [0, 1], got {p!r}")

    def tone(key: PRNGKey, x: jax.Array) -> jax.Array:
        return jnp.where(jax.random.bernoulli(key, p), sepia(x), x)

    return tone
