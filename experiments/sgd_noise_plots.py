"""Plots of the SGD noise-ball experiment."""

from __future__ import annotations

import numpy as np


def plot_all(ball: dict, workdir: str) -> list[str]:
    """noise_ball.png: ‖θ_t − θ*‖² against t at the largest α; noise_scaling.png: the stationary
    level against α/B beside the formula α·trΣ/(B(2 − α))."""
    from matplotlib.figure import Figure

    lr_max = max(v["lr"] for v in ball.values())
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for name, v in ball.items():
        if v["lr"] == lr_max:
            label = "full-batch GD" if v["full_batch"] else ("SGD (B = 1)" if v["batch"] == 1 else f"minibatch B = {v['batch']}")
            ax.plot(np.arange(1, len(v["curve"]) + 1), v["curve"], label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("‖θ_t − θ*‖² (mean over chains)")
    ax.set_title(f"linear regression, α = {lr_max}: the noise ball", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{workdir}/noise_ball.png", dpi=90)

    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    sgd = [v for v in ball.values() if not v["full_batch"]]
    ratio = np.array([v["lr"] / v["batch"] for v in sgd])
    ax.scatter(ratio, [v["level"] for v in sgd], label="measured stationary level")
    order = np.argsort(ratio)
    ax.plot(ratio[order], np.array([v["predicted"] for v in sgd])[order], "k--", label="α·trΣ / (B(2 − α))")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate / batch size")
    ax.set_ylabel("E‖θ − θ*‖² (stationary)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{workdir}/noise_scaling.png", dpi=90)
    return ["noise_ball.png", "noise_scaling.png"]
