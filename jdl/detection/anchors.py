"""Anchors: reference boxes of a few scales and aspect ratios at every position of a feature map.

Faster R-CNN's region proposal network slides a 3×3 window over the last feature map and, at
each position, scores k = 3 scales × 3 aspect ratios = 9 anchors for "object / no object" and
regresses each anchor's box; SSD puts such reference shapes on several maps of different
resolutions. An anchor of size s and aspect ratio r = h/w has area s² and

    w = s / √r,   h = s·√r,

centred on the feature-map cell (j, i) at ((j + offset)·stride, (i + offset)·stride) in image
pixels (offset ½: the cell's centre; torchvision's AnchorGenerator uses offset 0).
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

DEFAULT_SIZES = (8.0, 16.0, 32.0)  # for 64×64 images: small, medium and large objects
DEFAULT_RATIOS = (0.5, 1.0, 2.0)


def anchor_shapes(sizes: Sequence[float] = DEFAULT_SIZES, ratios: Sequence[float] = DEFAULT_RATIOS):
    """The (w, h) of the A = len(sizes)·len(ratios) anchors of one position, size-major:
    anchor a = i·len(ratios) + j has w = sizes[i]/√ratios[j], h = sizes[i]·√ratios[j].

    Shapes: → (A, 2).
    """
    if not sizes or not ratios or min(sizes) <= 0 or min(ratios) <= 0:
        raise ValueError(f"anchor_shapes: sizes and ratios must be non-empty and positive, got {sizes} and {ratios}")
    s = jnp.asarray(sizes, jnp.float32)[:, None]  # (S, 1)
    r = jnp.sqrt(jnp.asarray(ratios, jnp.float32))[None, :]  # (1, R)
    return jnp.stack([s / r, s * r], axis=-1).reshape(-1, 2)  # (S·R, 2)


def anchors(feature_shape: tuple[int, int], stride: float, sizes: Sequence[float] = DEFAULT_SIZES,
            ratios: Sequence[float] = DEFAULT_RATIOS, offset: float = 0.5):
    """Anchors at every position of an (H_f, W_f) feature map whose cells are ``stride`` image
    pixels apart, as x1, y1, x2, y2 = c_x ∓ w/2, c_y ∓ h/2 with

        c_x = (j + offset)·stride,  c_y = (i + offset)·stride,  (w, h) from ``anchor_shapes``.

    Ordered (i, j, a) — row, column, then anchor — so a head's output (B, H_f, W_f, A·k)
    reshaped to (B, H_f·W_f·A, k) lines up with them. Static arguments: jittable.

    Args:
      feature_shape: (H_f, W_f) of the feature map.
      stride: image pixels per feature cell (64 / H_f for a 64×64 image).
      sizes: anchor sizes s in pixels (area s²); ratios: aspect ratios h/w.
      offset: where in its cell an anchor is centred, in cells (½: the centre).
    Shapes: → (H_f·W_f·A, 4) float32, A = len(sizes)·len(ratios).
    """
    h_f, w_f = feature_shape
    if h_f < 1 or w_f < 1 or stride <= 0:
        raise ValueError(f"anchors: feature_shape must be positive and stride > 0, got {feature_shape} and {stride}")
    wh = anchor_shapes(sizes, ratios)  # (A, 2)
    cy, cx = jnp.meshgrid((jnp.arange(h_f) + offset) * stride, (jnp.arange(w_f) + offset) * stride, indexing="ij")
    centres = jnp.stack([cx, cy], axis=-1)[:, :, None, :]  # (H_f, W_f, 1, 2)
    boxes = jnp.concatenate([centres - wh[None, None] / 2, centres + wh[None, None] / 2], axis=-1)  # (H_f, W_f, A, 4)
    return boxes.reshape(-1, 4).astype(jnp.float32)
