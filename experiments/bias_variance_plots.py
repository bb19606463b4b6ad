"""Plots of the bias–variance experiment: the decomposition against capacity (polynomial degree
and MLP width) and the learning curves of a low- and a high-capacity model."""

from __future__ import annotations

import numpy as np


def _decomposition(ax, table: dict, xlabel: str, log_x: bool = False) -> None:
    keys = list(table)
    xs = np.array([int(k) for k in keys])
    for term, style in (("bias2", "-o"), ("variance", "-s"), ("noise", "--"), ("sum", "-"), ("test_mse", "x"),
                        ("train_mse", ":")):
        label = {"bias2": "bias²", "sum": "bias² + variance + noise", "test_mse": "test MSE (measured)",
                 "train_mse": "training MSE"}.get(term, term)
        ax.plot(xs, [table[k][term] for k in keys], style, label=label, markersize=4)
    ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean squared error")
    ax.legend(fontsize=7)


def plot_all(results: dict, workdir: str) -> list[str]:
    """bias_variance_polynomial.png, bias_variance_mlp.png, learning_curves.png; returns their names."""
    from matplotlib.figure import Figure


    names = []
    for part, xlabel, log_x in (("polynomial", "polynomial degree", False), ("mlp", "hidden units", True)):
        fig = Figure(figsize=(5.5, 4))
        ax = fig.subplots()
        _decomposition(ax, results[part], xlabel, log_x)
        ax.set_title(f"{part}: σ² = {results['problem']['sigma'] ** 2:.2f}, n = {results['problem']['n_train']}, "
                     f"{results['n_sets']} training sets", fontsize=9)
        names.append(f"bias_variance_{part}.png")
        fig.tight_layout()
        fig.savefig(f"{workdir}/{names[-1]}", dpi=90)
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for d, curve, color in ((k, v, c) for (k, v), c in zip(results["learning_curve"].items(), ("C0", "C3"))):
        ns = [int(n) for n in curve]
        ax.plot(ns, [curve[str(n)]["test_mse"] for n in ns], "-o", color=color, label=f"degree {d}: test")
        ax.plot(ns, [curve[str(n)]["train_mse"] for n in ns], "--", color=color, label=f"degree {d}: training")
    ax.axhline(results["problem"]["sigma"] ** 2, color="k", lw=0.8, label="noise σ²")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training-set size n")
    ax.set_ylabel("mean squared error")
    ax.legend(fontsize=7)
    names.append("learning_curves.png")
    fig.tight_layout()
    fig.savefig(f"{workdir}/{names[-1]}", dpi=90)
    return names
