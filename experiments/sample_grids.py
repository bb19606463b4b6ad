"""Sample grids for the generative experiments: a batch of small images tiled into one."""

from __future__ import annotations

from jdl.train.plots import image_grid  # noqa: F401  (tiles the images; re-exported here)


def show_grid(ax, images, title: str, n_cols: int = 10) -> None:
    """Draw ``image_grid(images)`` on a matplotlib axis, ink dark on white, without ticks."""
    ax.imshow(image_grid(images, n_cols), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
