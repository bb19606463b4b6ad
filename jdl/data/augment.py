"""Data augmentation as pure, keyed, vmappable functions that run inside the jitted step.

If the label does not depend on a transformation h (a digit moved by a pixel is the same digit),
training on (h(x), y) builds that invariance into the model. Each function here transforms ONE
image ``x`` of shape (H, W, C) with its own ``key``: ``f(key, x) -> x'``, same shape and dtype.
``batched(f)`` turns it into ``f(key, x_b)`` for a batch (B, H, W, C), with an independent key
per example, and ``compose`` chains several; the result is what ``jdl.train.fit(augment=...)``
takes, so augmentation costs no host round trip::

    augment = batched(compose(random_crop(padding=1), random_affine(max_degrees=10)))

Choose transformations the label is invariant to: a horizontal flip changes a "b" into a "d",
and turns some digits into non-digits.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

from jdl.core import PRNGKey

Augmentation = Callable[[PRNGKey, jax.Array], jax.Array]


def _check_image(name: str, x: jax.Array) -> None:
    if x.ndim != 3:
        hint = " (a batch? wrap the augmentation in jdl.data.augment.batched)" if x.ndim == 4 else ""
        raise ValueError(f"{name}: expected one image of shape (H, W, C), got shape {tuple(x.shape)}{hint}")


def random_flip(p: float = 0.5) -> Augmentation:
    """Flip left–right with probability p: x'[h, w] = x[h, W − 1 − w].

    Shapes: (H, W, C) → (H, W, C).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_flip: p must be in [0, 1], got {p!r}")

    def flip(key: PRNGKey, x: jax.Array) -> jax.Array:
        _check_image("random_flip", x)
        return jnp.where(jax.random.bernoulli(key, p), x[:, ::-1, :], x)

    return flip


def random_crop(padding: int) -> Augmentation:
    """Pad by ``padding`` zero pixels on every side, then cut an H × W window at a uniformly
    random offset (i, j) ∈ {0, …, 2·padding}²: a random translation by up to ``padding`` pixels.

        x' = pad(x)[i : i + H, j : j + W]

    Shapes: (H, W, C) → (H, W, C).
    """
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"random_crop: padding must be an int >= 0, got {padding!r}")

    def crop(key: PRNGKey, x: jax.Array) -> jax.Array:
        _check_image("random_crop", x)
        h, w, c = x.shape
        padded = jnp.pad(x, ((padding, padding), (padding, padding), (0, 0)))  # (H+2p, W+2p, C)
        i, j = jax.random.randint(key, (2,), 0, 2 * padding + 1)
        return jax.lax.dynamic_slice(padded, (i, j, 0), (h, w, c))

    return crop


def affine(x: jax.Array, degrees: jax.Array, shift: jax.Array, scale: jax.Array | float = 1.0) -> jax.Array:
    """Rotate ``x`` by ``degrees`` counter-clockwise about its centre and zoom it by ``scale``,
    then translate it by ``shift`` = (down, right) pixels; bilinear interpolation, zeros outside
    the image.

    Output pixel p (as an offset from the centre) reads the input at R(θ)·(p − shift)/s, with
    R(θ) = [[cos θ, sin θ], [−sin θ, cos θ]] acting on (row, column): θ = 90° is ``np.rot90``;
    s > 1 magnifies (zoom in), s < 1 shrinks the image inside a border of zeros.

    Shapes: x (H, W, C), degrees (), shift (2,), scale () → (H, W, C).
    """
    _check_image("affine", x)
    h, w, _ = x.shape
    theta = jnp.deg2rad(degrees)
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=x.dtype), jnp.arange(w, dtype=x.dtype), indexing="ij")
    r = (rows - (h - 1) / 2 - shift[0]) / scale  # (H, W) offsets from the centre, in input pixels
    c = (cols - (w - 1) / 2 - shift[1]) / scale
    src_r = jnp.cos(theta) * r + jnp.sin(theta) * c + (h - 1) / 2
    src_c = -jnp.sin(theta) * r + jnp.cos(theta) * c + (w - 1) / 2
    sample = lambda channel: map_coordinates(channel, [src_r, src_c], order=1, mode="constant", cval=0.0)
    return jax.vmap(sample, in_axes=2, out_axes=2)(x)  # channel by channel


def zoom(x: jax.Array, scale: jax.Array | float) -> jax.Array:
    """Zoom about the centre c = ((H − 1)/2, (W − 1)/2), keeping the size: output pixel p
    reads the input at c + (p − c)/s, bilinearly (zeros outside). s = 2 shows the central half
    twice as large; s = 0.5 the whole image at half size inside a zero border.

    Shapes: (H, W, C) → (H, W, C).
    """
    return affine(x, jnp.zeros((), x.dtype), jnp.zeros((2,), x.dtype), scale)


def random_zoom(min_scale: float = 0.9, max_scale: float = 1.1) -> Augmentation:
    """x' = zoom(x, s), s ~ U[min_scale, max_scale]. Shapes: (H, W, C) → (H, W, C)."""
    if not 0 < min_scale <= max_scale:
        raise ValueError(f"random_zoom: need 0 < min_scale <= max_scale, got {min_scale!r}, {max_scale!r}")

    def scaled(key: PRNGKey, x: jax.Array) -> jax.Array:
        _check_image("random_zoom", x)
        return zoom(x, jax.random.uniform(key, (), x.dtype, min_scale, max_scale))

    return scaled


def random_affine(max_degrees: float = 10.0, max_shift: float = 0.0) -> Augmentation:
    """A small random rotation θ ~ U[−max_degrees, max_degrees] and translation
    (dy, dx) ~ U[−max_shift, max_shift]² pixels (see ``affine``).

    Shapes: (H, W, C) → (H, W, C).
    """
    if max_degrees < 0 or max_shift < 0:
        raise ValueError(f"random_affine: max_degrees and max_shift must be >= 0, got {max_degrees}, {max_shift}")

    def warp(key: PRNGKey, x: jax.Array) -> jax.Array:
        _check_image("random_affine", x)
        k_angle, k_shift = jax.random.split(key)
        degrees = jax.random.uniform(k_angle, (), x.dtype, -max_degrees, max_degrees)
        shift = jax.random.uniform(k_shift, (2,), x.dtype, -max_shift, max_shift)
        return affine(x, degrees, shift)

    return warp


def crop_resize(x: jax.Array, top: jax.Array, left: jax.Array, height: jax.Array, width: jax.Array) -> jax.Array:
    """Cut the window of ``height`` × ``width`` pixels at (``top``, ``left``) (real numbers, the
    window inside the image) and resize it to the image's H × W by bilinear interpolation:
    output pixel (i, j) reads the input at

        (top + (i + ½)·height/H − ½,  left + (j + ½)·width/W − ½)

    so the whole image (0, 0, H, W) is the identity, and a window half the size is a 2× zoom.

    Shapes: x (H, W, C), the window's numbers () → (H, W, C).
    """
    _check_image("crop_resize", x)
    h, w, _ = x.shape
    rows = top + (jnp.arange(h, dtype=x.dtype) + 0.5) * height / h - 0.5  # (H,)
    cols = left + (jnp.arange(w, dtype=x.dtype) + 0.5) * width / w - 0.5  # (W,)
    src_r, src_c = jnp.meshgrid(rows, cols, indexing="ij")  # (H, W)
    sample = lambda channel: map_coordinates(channel, [src_r, src_c], order=1, mode="nearest")
    return jax.vmap(sample, in_axes=2, out_axes=2)(x)


def random_resized_crop(min_scale: float = 0.5, max_ratio: float = 4 / 3) -> Augmentation:
    """SimCLR's crop-and-resize (Inception's "random resized crop"): a window covering a share
    s ~ U[min_scale, 1] of the image's area, with aspect ratio r (height / width) log-uniform in
    [1/max_ratio, max_ratio], at a uniformly random position inside the image, resized back to
    H × W (``crop_resize``): a random zoom, stretch and shift in one.

        height = H·√(s·r),  width = W·√(s/r)   (each capped at the image's size)

    Shapes: (H, W, C) → (H, W, C).
    """
    if not 0 < min_scale <= 1 or not max_ratio >= 1:
        raise ValueError(f"random_resized_crop: need 0 < min_scale <= 1 and max_ratio >= 1, got "
                         f"{min_scale!r}, {max_ratio!r}")

    def crop(key: PRNGKey, x: jax.Array) -> jax.Array:
        _check_image("random_resized_crop", x)
        h, w, _ = x.shape
        k_s, k_r, k_pos = jax.random.split(key, 3)
        s = jax.random.uniform(k_s, (), x.dtype, min_scale, 1.0)
        r = jnp.exp(jax.random.uniform(k_r, (), x.dtype, -math.log(max_ratio), math.log(max_ratio)))
        height, width = jnp.minimum(h * jnp.sqrt(s * r), h), jnp.minimum(w * jnp.sqrt(s / r), w)
        u = jax.random.uniform(k_pos, (2,), x.dtype)
        return crop_resize(x, u[0] * (h - height), u[1] * (w - width), height, width)

    return crop


def gaussian_noise(sigma: float) -> Augmentation:
    """x' = x + σ·ε, ε ~ N(0, I). Works on any shape (images or feature vectors)."""
    if sigma < 0:
        raise ValueError(f"gaussian_noise: sigma must be >= 0, got {sigma!r}")

    def noise(key: PRNGKey, x: jax.Array) -> jax.Array:
        return x + sigma * jax.random.normal(key, x.shape, x.dtype)

    return noise


def cutout(size: int) -> Augmentation:
    """Cutout (DeVries & Taylor, 2017): zero a size × size square centred at a uniformly random
    pixel (clipped at the border, so near an edge fewer pixels are cut).

    Shapes: (H, W, C) → (H, W, C).
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"cutout: size must be a positive int, got {size!r}")

    def cut(key: PRNGKey, x: jax.Array) -> jax.Array:
        _check_image("cutout", x)
        h, w, _ = x.shape
        k_r, k_c = jax.random.split(key)
        top = jax.random.randint(k_r, (), 0, h) - size // 2
        left = jax.random.randint(k_c, (), 0, w) - size // 2
        rows = jnp.arange(h)[:, None]  # (H, 1)
        cols = jnp.arange(w)[None, :]  # (1, W)
        inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)  # (H, W)
        return jnp.where(inside[:, :, None], jnp.zeros_like(x), x)

    return cut


def compose(*augmentations: Augmentation) -> Augmentation:
    """x' = f_n(… f_1(x)), f_i drawing its randomness from ``fold_in(key, i)``."""

    def composed(key: PRNGKey, x: jax.Array) -> jax.Array:
        for i, f in enumerate(augmentations):
            x = f(jax.random.fold_in(key, i), x)
        return x

    return composed


def batched(augmentation: Augmentation) -> Augmentation:
    """Apply a per-example augmentation to a batch with ``vmap``, example b using
    ``split(key, B)[b]``: independent transformations, one compiled kernel.

    Shapes: (B, ...) → (B, ...).
    """

    def apply(key: PRNGKey, xb: jax.Array) -> jax.Array:
        return jax.vmap(augmentation)(jax.random.split(key, xb.shape[0]), xb)

    return apply


def default(batch_shape: tuple[int, ...]) -> Augmentation:
    """The augmentation ``jdl train --augment`` uses for batches of ``batch_shape``: for images
    (B, H, W, C) a random translation by up to ⌈H/8⌉ pixels (crop with padding) and a rotation
    of up to ±10°; for feature vectors (B, D), Gaussian noise σ = 0.05. No flips: they change
    the meaning of digits."""
    if len(batch_shape) == 4:
        return batched(compose(random_crop(max(1, math.ceil(batch_shape[1] / 8))), random_affine(10.0)))
    return batched(gaussian_noise(0.05))
