"""Plots of a training run."""

from __future__ import annotations

import os
from typing import Sequence

SPLIT_STYLES = (("train", "-"), ("validation", "--"), ("test", ":"))


def plot_history(history: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Save loss and accuracy curves (train, validation and, when recorded per epoch, test)
    as a PNG at ``path`` (matplotlib's ``Figure`` API: no global backend is touched)."""
    from matplotlib.figure import Figure

    epochs = [h["epoch"] for h in history]
    panels = [m for m in ("loss", "accuracy") if any(f"train_{m}" in h for h in history)]
    fig = Figure(figsize=(5 * max(1, len(panels)), 3.6))
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)
    for ax, metric in zip(axes[0], panels):
        for split, style in SPLIT_STYLES:
            values = [h.get(f"{split}_{metric}") for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, marker="o", markersize=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
