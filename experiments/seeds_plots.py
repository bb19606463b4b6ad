"""Plots of the seeds experiment: every seed's decision boundary on one picture, and the
training loss along the straight line between pairs of minima."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def plot_all(model, states, out: dict, train, workdir: str) -> list[str]:
    """seeds_boundaries.png and seeds_interpolation.png; returns their names."""
    from matplotlib.figure import Figure

    from experiments.seeds import grid

    x, y = train
    g = grid(x)
    r = int(round(np.sqrt(len(g))))
    g0, g1 = g[:, 0].reshape(r, r), g[:, 1].reshape(r, r)
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    votes = np.zeros(len(g))
    for i, s in enumerate(states):
        p = np.asarray(jax.nn.softmax(model.apply(s.params, {}, jnp.asarray(g))[0])[:, 1])
        votes += p > 0.5
        ax.contour(g0, g1, p.reshape(r, r), levels=[0.5], colors=[f"C{i % 10}"], linewidths=1)
    split = np.minimum(votes, len(states) - votes).reshape(r, r) / len(states)  # 0: all agree
    im = ax.imshow(split, extent=(g0.min(), g0.max(), g1.min(), g1.max()), origin="lower", cmap="Greys",
                   alpha=0.6, vmin=0, vmax=0.5)
    fig.colorbar(im, ax=ax, label="share of seeds in the minority")
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="Paired", s=4)
    ax.set_title(f"{len(states)} seeds: same data, same network, different boundaries", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{workdir}/seeds_boundaries.png", dpi=90)

    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for name, pair in list(out["pairs"].items())[:6]:
        ax.plot(np.linspace(0, 1, len(pair["line"])), pair["line"], label=f"seeds {name}")
    ax.set_xlabel("t   (θ = (1 − t)θ_i + tθ_j)")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{workdir}/seeds_interpolation.png", dpi=90)
    return ["seeds_boundaries.png", "seeds_interpolation.png"]
