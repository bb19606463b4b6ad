"""Plots of a training run."""

from __future__ import annotations

import os
from typing import Sequence

SPLIT_STYLES = (("train", "-"), ("validation", "--"), ("test", ":"))


def history_figure(history: Sequence[dict], title: str = "",
                   panels: Sequence[Sequence[str]] = (("loss",), ("accuracy",))):
    """A matplotlib ``Figure`` of per-epoch curves: one panel per group of metric names, one line
    per metric and split (train, validation, test) recorded as ``<split>_<metric>``; panels with
    nothing recorded are left out. With several metrics in a panel, colour tells the metric and
    the line style the split (``GAN``: ``("d_loss", "g_loss")`` in one panel)."""
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    shown = [ms for ms in panels if any(f"{s}_{m}" in h for h in history for m in ms for s, _ in SPLIT_STYLES)]
    fig = Figure(figsize=(5 * max(1, len(shown)), 3.6))
    axes = fig.subplots(1, max(1, len(shown)), squeeze=False)
    for ax, metrics in zip(axes[0], shown):
        for i, metric in enumerate(metrics):
            for split, style in SPLIT_STYLES:
                values = [h.get(f"{split}_{metric}") for h in history]
                if any(v is not None for v in values):
                    label, color = (split, None) if len(metrics) == 1 else (f"{split} {metric}", f"C{i}")
                    ax.plot(epochs, values, style, marker="o", markersize=3, label=label, color=color)
        ax.set_xlabel("epoch")
        ax.set_ylabel(", ".join(metrics))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(history: Sequence[dict], path: str | os.PathLike, title: str = "",
                 panels: Sequence[Sequence[str]] = (("loss",), ("accuracy",))) -> None:
    """Save ``history_figure(history, title, panels)`` (by default loss and accuracy curves) as a
    PNG at ``path`` (matplotlib's ``Figure`` API: no global backend is touched)."""
    history_figure(history, title, panels).savefig(path, dpi=110)


def image_grid(images, n_cols: int = 10, pad: int = 1):
    """Tile images (N, H, W), (N, H, W, 1) or (N, H, W, 3) into one (rows·(H + pad) − pad,
    n_cols·(W + pad) − pad[, 3]) array, row by row, clipped to [0, 1]; gaps and empty cells
    are 0 (white under ``cmap='gray_r'``, where ink 1 is black)."""
    import numpy as np

    x = np.clip(np.asarray(images, np.float32), 0, 1)
    x = x[..., 0] if x.ndim == 4 and x.shape[-1] == 1 else x  # (N, H, W) or (N, H, W, 3)
    n, h, w = x.shape[:3]
    rows = -(-n // n_cols)
    grid = np.zeros((rows * (h + pad) - pad, n_cols * (w + pad) - pad, *x.shape[3:]), np.float32)
    for i in range(n):
        r, c = divmod(i, n_cols)
        grid[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = x[i]
    return grid


def save_image_grid(path: str | os.PathLike, images, n_cols: int = 10, scale: int = 4) -> None:
    """Write ``image_grid(images)`` as a PNG, each pixel a ``scale``×``scale`` block: grey
    images ink dark on white (0 white, 1 black), colour images as they are.

    Shapes: images (N, H, W[, C]) with values in [0, 1], C = 1 or 3.
    """
    import numpy as np
    from matplotlib.image import imsave

    grid = np.repeat(np.repeat(image_grid(images, n_cols), scale, axis=0), scale, axis=1)
    if grid.ndim == 2:
        imsave(path, 1.0 - grid, cmap="gray", vmin=0.0, vmax=1.0)
    else:
        imsave(path, grid)
