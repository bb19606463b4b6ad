"""The plots of experiments/sft.py and experiments/dpo.py (matplotlib's Figure API)."""

from __future__ import annotations

import numpy as np


def plot(results: dict, workdir: str) -> str:
    """Zero-shot accuracy per task of each model, and mean accuracy against k (few-shot)."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    acc = results["accuracy"]
    models, tasks = list(acc), [t for t in next(iter(acc.values()))["0"] if t != "mean"]
    fig = Figure(figsize=(9.0, 3.6))
    ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, m in enumerate(models):
        w = 0.8 / len(models)
        ax.bar(np.arange(len(tasks)) + w * (i - (len(models) - 1) / 2), [acc[m]["0"][t] for t in tasks], w, label=m)
        ks = sorted(int(k) for k in acc[m])
        bx.plot(ks, [acc[m][str(k)]["mean"] for k in ks], "o-", label=m)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("exact match (test)")
    ax.set_title("zero-shot, greedy")
    bx.set_xlabel("k solved examples in the prompt")
    bx.set_ylabel("mean exact match")
    bx.set_title("few-shot prompting")
    ax.legend(fontsize=7)
    return save_figure(fig, workdir, "sft.png", dpi=90)
