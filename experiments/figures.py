"""Plot helpers shared by the experiments."""

from __future__ import annotations

import os


def save_figure(fig, workdir: str, name: str) -> str:
    """Save a matplotlib figure as ``workdir/name`` (PNG, 100 dpi), close it, return the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = os.path.join(workdir, name)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
