"""Region-of-interest pooling: a fixed-size feature grid for every box, whatever its size.

Fast R-CNN runs the CNN once over the whole image and cuts each proposal's features out of the
last feature map with RoI pooling: the box, scaled to the map by ``spatial_scale`` (1/stride),
is split into an (h_o × w_o) grid of bins, and each bin max-pools the map cells it covers. RoI
pooling rounds the box and the bins to whole cells; RoI align (Mask R-CNN) does not: each bin
averages the map bilinearly sampled on a regular grid of points inside it. Conventions follow
torchvision.ops ``roi_pool`` and ``roi_align`` (``spatial_scale``, ``sampling_ratio``,
``aligned``), with NHWC maps and the boxes of each image in a padded (B, R, 4) array.

Both are separable along the two axes — a bin's cells are a row range × a column range, and
bilinear weights are a product of a row weight and a column weight — so each is computed as
per-axis (R, bins, H) and (R, bins, W) weight or mask tensors applied to the map: vectorized,
jittable, and differentiable in the features (and, for RoI align, in the box coordinates).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _check(name: str, features: jax.Array, boxes: jax.Array, output_size) -> tuple[int, int]:
    if features.ndim != 4 or boxes.ndim != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != features.shape[0]:
        raise ValueError(f"{name}: features must be (B, H, W, C) and boxes (B, R, 4) with the same B, "
                         f"got {features.shape} and {boxes.shape}")
    out = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    if len(out) != 2 or min(out) < 1:
        raise ValueError(f"{name}: output_size must be a positive int or (h_o, w_o), got {output_size}")
    return out


def _round_half_away(x: jax.Array) -> jax.Array:
    """C's round(): halves away from zero (jnp.round rounds them to even)."""
    return jnp.sign(x) * jnp.floor(jnp.abs(x) + 0.5)


def _pool_axis_mask(lo: jax.Array, hi: jax.Array, n_bins: int, size: int, scale: float) -> jax.Array:
    """RoI pooling's bins along one axis: cells [start_p, end_p) with s = round(lo·scale),
    L = max(round(hi·scale) − s + 1, 1), start_p = clip(s + ⌊p·L/n⌋), end_p = clip(s + ⌈(p+1)·L/n⌉),
    clipped to [0, size]. Shapes: lo, hi (R,) → mask (R, n_bins, size) bool."""
    start = _round_half_away(lo * scale)
    length = jnp.maximum(_round_half_away(hi * scale) - start + 1, 1)  # (R,)
    p = jnp.arange(n_bins)[None, :]  # (1, n)
    bin_start = jnp.clip(jnp.floor(p * length[:, None] / n_bins) + start[:, None], 0, size)  # (R, n)
    bin_end = jnp.clip(jnp.ceil((p + 1) * length[:, None] / n_bins) + start[:, None], 0, size)
    cells = jnp.arange(size)[None, None, :]
    return (cells >= bin_start[..., None]) & (cells < bin_end[..., None])  # (R, n, size)


def roi_pool(features: jax.Array, boxes: jax.Array, output_size, spatial_scale: float = 1.0) -> jax.Array:
    """RoI max pooling (Fast R-CNN), as torchvision's ``roi_pool``:

        y[r, p, q, c] = max_{i ∈ rows_p(r), j ∈ cols_q(r)} f[i, j, c]   (0 for an empty bin),

    the bins of box r = (x1, y1, x2, y2) being whole cells of the box rounded to the map
    (``_pool_axis_mask``). The gradient flows to the max of each bin (not to the boxes).

    Args:
      features: the feature maps, NHWC; boxes: each image's R boxes, in image coordinates;
      output_size: h_o or (h_o, w_o); spatial_scale: map cells per image pixel (1/stride).

    Shapes: features (B, H, W, C), boxes (B, R, 4) xyxy in image coordinates → (B, R, h_o, w_o, C).
    """
    h_o, w_o = _check("roi_pool", features, boxes, output_size)
    _, height, width, _ = features.shape

    def one_image(f, b):  # f (H, W, C), b (R, 4)
        rows = _pool_axis_mask(b[:, 1], b[:, 3], h_o, height, spatial_scale)  # (R, h_o, H)
        cols = _pool_axis_mask(b[:, 0], b[:, 2], w_o, width, spatial_scale)  # (R, w_o, W)
        low = jnp.finfo(f.dtype).min
        over_cols = jnp.max(jnp.where(cols[:, None, :, :, None], f[None, :, None], low), axis=3)  # (R, H, w_o, C)
        pooled = jnp.max(jnp.where(rows[:, :, None, :, None], jnp.moveaxis(over_cols, 1, 2)[:, None], low),
                         axis=3)  # (R, h_o, w_o, C)
        empty = ~rows.any(-1)[:, :, None] | ~cols.any(-1)[:, None, :]  # (R, h_o, w_o)
        return jnp.where(empty[..., None], 0.0, pooled).astype(f.dtype)

    return jax.vmap(one_image)(features, boxes.astype(features.dtype))


def _align_axis_weights(lo, hi, n_bins: int, size: int, scale: float, sampling_ratio: int, aligned: bool):
    """RoI align's sampling along one axis, as a weight matrix A (R, n_bins, size): with
    s = lo·scale − o, L = hi·scale − o − s (o = ½ if aligned, else L ≥ 1 is enforced), bin
    size b = L/n and g samples per bin (``sampling_ratio``, or ⌈L/n⌉ when ≤ 0), bin p averages
    the points u = s + p·b + (k + ½)·b/g, k < g, each split between cells ⌊u⌋ and ⌊u⌋ + 1 by
    linear interpolation (0 when u < −1 or u > size; u clamped to [0, size − 1])."""
    offset = 0.5 if aligned else 0.0
    start, end = lo * scale - offset, hi * scale - offset  # (R,)
    length = end - start if aligned else jnp.maximum(end - start, 1.0)
    bin_size = length / n_bins
    if sampling_ratio > 0:
        grid, g_max = jnp.full_like(length, sampling_ratio), sampling_ratio
    else:  # adaptive: static upper bound so the shapes stay fixed under jit
        g_max = max(1, math.ceil((size + 1) / n_bins))
        grid = jnp.clip(jnp.ceil(length / n_bins), 0, g_max)
    k = jnp.arange(g_max)[None, None, :]  # (1, 1, g_max)
    u = (start[:, None, None] + jnp.arange(n_bins)[None, :, None] * bin_size[:, None, None]
         + (k + 0.5) * (bin_size / jnp.maximum(grid, 1))[:, None, None])  # (R, n, g_max)
    used = k < grid[:, None, None]  # (R, 1, g_max)
    inside = (u >= -1.0) & (u <= size)
    u = jnp.maximum(u, 0.0)
    low = jnp.floor(u)
    at_edge = low >= size - 1
    low = jnp.where(at_edge, size - 1, low)
    high = jnp.where(at_edge, size - 1, low + 1)
    frac = jnp.where(at_edge, 0.0, u - low)  # the weight of the higher cell
    cells = jnp.arange(size)[None, None, None, :]
    w = ((1 - frac)[..., None] * (cells == low[..., None]) + frac[..., None] * (cells == high[..., None]))
    w = jnp.where((used & inside)[..., None], w, 0.0)  # (R, n, g_max, size)
    return jnp.sum(w, axis=2) / jnp.maximum(grid, 1)[:, None, None]  # (R, n, size)


def roi_align(features: jax.Array, boxes: jax.Array, output_size, spatial_scale: float = 1.0,
              sampling_ratio: int = -1, aligned: bool = False) -> jax.Array:
    """RoI align (Mask R-CNN), as torchvision's ``roi_align``: bin (p, q) of box r is the mean of
    the map bilinearly interpolated at g_y × g_x regularly spaced points inside the bin,

        y[r, p, q, c] = (1/(g_y·g_x)) Σ_{k, l} f(u_{r,p,k}, v_{r,q,l}, c),
        f(u, v) = Σ_{i, j} max(0, 1 − |u − i|)·max(0, 1 − |v − j|)·f[i, j]   (bilinear),

    with the sample points of ``_align_axis_weights``; in matrix form y_r = A_r F B_rᵀ per channel.
    ``aligned=True`` shifts the box by −½ cell so that a pixel's centre samples it exactly
    (the corrected RoI align); ``aligned=False`` is the original, with boxes at least 1 cell wide.
    ``sampling_ratio`` ≤ 0 takes g = ⌈box size / bins⌉ per box, capped at ⌈(H + 1)/h_o⌉ (a
    static bound, so it is exact for any box no larger than the map plus a cell).

    Args:
      features, boxes, output_size, spatial_scale: as ``roi_pool``.
      sampling_ratio: g, the sample points per bin along each axis (≤ 0: adaptive).
      aligned: shift the box by −½ cell (torchvision's ``aligned=True``).

    Shapes: features (B, H, W, C), boxes (B, R, 4) xyxy in image coordinates → (B, R, h_o, w_o, C).
    """
    h_o, w_o = _check("roi_align", features, boxes, output_size)
    _, height, width, _ = features.shape

    def one_image(f, b):  # f (H, W, C), b (R, 4)
        a = _align_axis_weights(b[:, 1], b[:, 3], h_o, height, spatial_scale, sampling_ratio, aligned)  # (R, h_o, H)
        c = _align_axis_weights(b[:, 0], b[:, 2], w_o, width, spatial_scale, sampling_ratio, aligned)  # (R, w_o, W)
        return jnp.einsum("rph,rqw,hwc->rpqc", a, c, f)  # (R, h_o, w_o, C)

    return jax.vmap(one_image)(features, boxes.astype(features.dtype))
