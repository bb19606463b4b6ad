"""Box coordinates and R-CNN's box regression targets.

R-CNN regresses, for a proposal (or anchor) P = (p_x, p_y, p_w, p_h) — centre, width, height —
and its ground truth G = (g_x, g_y, g_w, g_h), the scale-invariant offsets

    t_x = (g_x − p_x)/p_w,   t_y = (g_y − p_y)/p_h,   t_w = log(g_w/p_w),   t_h = log(g_h/p_h),

and a prediction d = (d_x, d_y, d_w, d_h) moves the proposal to Ĝ = (p_x + p_w·d_x,
p_y + p_h·d_y, p_w·e^{d_w}, p_h·e^{d_h}). Fast/Faster R-CNN multiply the targets by weights
(torchvision: (10, 10, 5, 5)); SSD divides them by "variances" (0.1, 0.1, 0.2, 0.2), i.e.
weights 1/variance. Boxes are otherwise x1, y1, x2, y2 ("xyxy"), as in ``jdl.metrics``.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

DEFAULT_CLIP = math.log(1000.0 / 16)  # largest d_w, d_h decoded (torchvision's bbox_xform_clip)


def xyxy_to_cxcywh(boxes: jax.Array) -> jax.Array:
    """(x1, y1, x2, y2) → (c_x, c_y, w, h) = ((x1 + x2)/2, (y1 + y2)/2, x2 − x1, y2 − y1).
    Shapes: (..., 4) → (..., 4)."""
    x1, y1, x2, y2 = jnp.moveaxis(jnp.asarray(boxes), -1, 0)
    return jnp.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def cxcywh_to_xyxy(boxes: jax.Array) -> jax.Array:
    """(c_x, c_y, w, h) → (c_x − w/2, c_y − h/2, c_x + w/2, c_y + h/2). Shapes: (..., 4) → (..., 4)."""
    cx, cy, w, h = jnp.moveaxis(jnp.asarray(boxes), -1, 0)
    return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def clip_boxes(boxes: jax.Array, height: float, width: float) -> jax.Array:
    """Clip xyxy boxes to the image [0, width] × [0, height]. Shapes: (..., 4) → (..., 4)."""
    boxes = jnp.asarray(boxes)
    limits = jnp.asarray([width, height, width, height], boxes.dtype).reshape((1,) * (boxes.ndim - 1) + (4,))
    return jnp.clip(boxes, 0, limits)


def _check(name: str, boxes: jax.Array, reference: jax.Array, weights: Sequence[float]):
    if jnp.shape(boxes)[-1:] != (4,) or jnp.shape(reference)[-1:] != (4,):
        raise ValueError(f"{name}: boxes and reference boxes must end in 4 coordinates, got "
                         f"{jnp.shape(boxes)} and {jnp.shape(reference)}")
    if len(weights) != 4:
        raise ValueError(f"{name}: weights must be 4 numbers (w_x, w_y, w_w, w_h), got {weights}")


def encode(boxes: jax.Array, reference: jax.Array, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> jax.Array:
    """Regression targets of ``boxes`` (G) relative to ``reference`` boxes (P, anchors or proposals):

        t = (w_x·(g_x − p_x)/p_w, w_y·(g_y − p_y)/p_h, w_w·log(g_w/p_w), w_h·log(g_h/p_h)).

    Degenerate boxes (zero width or height) give ±∞ or nan; mask them out of the loss.
    Args:
      boxes: the targets G; reference: the anchors or proposals P;
      weights: (w_x, w_y, w_w, w_h) scaling the targets (1/variance in SSD's terms).
    Returns: the offsets t.
    Shapes: boxes and reference xyxy, broadcast together (..., 4) → t (..., 4).
    """
    _check("encode", boxes, reference, weights)
    g, p = xyxy_to_cxcywh(boxes), xyxy_to_cxcywh(reference)
    w = jnp.asarray(weights, g.dtype).reshape((1,) * (g.ndim - 1) + (4,))
    t = jnp.concatenate([(g[..., :2] - p[..., :2]) / p[..., 2:], jnp.log(g[..., 2:] / p[..., 2:])], axis=-1)
    return t * w


def decode(deltas: jax.Array, reference: jax.Array, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
           clip: float = DEFAULT_CLIP) -> jax.Array:
    """Boxes from predicted offsets, the inverse of ``encode``: with d = deltas / weights,

        ĝ_x = p_x + p_w·d_x,  ĝ_y = p_y + p_h·d_y,  ĝ_w = p_w·exp(d_w),  ĝ_h = p_h·exp(d_h),

    d_w and d_h first clipped to at most ``clip`` so that exp never overflows early in training.
    decode(encode(G, P), P) = G for every G whose size ratio to P is below e^clip.
    Args:
      deltas: predicted offsets (weighted, as ``encode`` returns them); reference: P;
      weights: as given to ``encode``; clip: the largest d_w, d_h used.
    Returns: the boxes Ĝ, xyxy.
    Shapes: deltas and reference (..., 4) broadcast together → xyxy boxes (..., 4).
    """
    _check("decode", deltas, reference, weights)
    p = xyxy_to_cxcywh(reference)
    deltas = jnp.asarray(deltas)
    d = deltas / jnp.asarray(weights, jnp.result_type(deltas, p)).reshape((1,) * (deltas.ndim - 1) + (4,))
    centre = p[..., :2] + p[..., 2:] * d[..., :2]
    size = p[..., 2:] * jnp.exp(jnp.minimum(d[..., 2:], clip))
    return cxcywh_to_xyxy(jnp.concatenate([centre, size], axis=-1))
