"""Sample grids for the generative experiments: a batch of small images tiled into one."""

from __future__ import annotations

import numpy as np


def image_grid(images, n_cols: int = 10, pad: int = 1) -> np.ndarray:
    """Tile images (N, H, W) or (N, H, W, 1) into one (rows·(H + pad) − pad, n_cols·(W + pad) − pad)
    array, row by row, clipped to [0, 1]; gaps and empty cells are 0, the background (white
    under ``cmap='gray_r'``, where ink 1 is black)."""
    x = np.clip(np.asarray(images, np.float32), 0, 1)
    x = x[..., 0] if x.ndim == 4 else x  # (N, H, W)
    n, h, w = x.shape
    rows = -(-n // n_cols)
    grid = np.zeros((rows * (h + pad) - pad, n_cols * (w + pad) - pad), np.float32)
    for i in range(n):
        r, c = divmod(i, n_cols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = x[i]
    return grid


def show_grid(ax, images, title: str, n_cols: int = 10) -> None:
    """Draw ``image_grid(images)`` on a matplotlib axis, ink dark on white, without ticks."""
    ax.imshow(image_grid(images, n_cols), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
