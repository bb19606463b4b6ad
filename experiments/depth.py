"""Plain vs residual networks of growing depth: the degradation problem and the residual fix.

He et al. (2016) found that a deeper plain network (a stack of conv–BN–ReLU layers) reaches a
*higher* training error than a shallower one — not overfitting, an optimization failure — and
that adding identity shortcuts y = relu(F(x) + x) removes it. The chain rule says why: through
a residual block ∂L/∂x = ∂L/∂y·(1 + F'(x)), so the gradient reaching early layers always keeps
a direct path, while through a plain block ∂L/∂x = ∂L/∂y·F'(x) and the factors of all blocks
multiply.

This experiment trains the CIFAR-style ResNets of depth 6n + 2 (widths 8-16-32, BatchNorm) and
their plain twins on the 8×8 digits with SGD + momentum for the same number of steps, and
records the final training loss, the test accuracy and, at initialization, the gradient norm
‖∂L/∂w‖ of every block's first convolution (how much signal reaches each depth).

    python -m experiments.depth --workdir=runs/depth [--quick]
"""

from __future__ import annotations

import os

import numpy as np

WIDTHS = (8, 16, 32)


def make_model(depth: int, shortcut: bool):
    """ResNet-``depth`` (or its plain twin) with BatchNorm (momentum 0.9, the ResNet default)."""
    from jdl import models

    return models.cifar_resnet(depth, 10, WIDTHS, shortcut=shortcut)


def block_gradient_norms(model, x: np.ndarray, y: np.ndarray, seed: int) -> list[float]:
    """‖∂L/∂w‖ of the first convolution of every block, at initialization, in training mode."""
    import jax
    import jax.numpy as jnp

    from jdl.losses import softmax_cross_entropy

    params, state = model.init(jax.random.key(seed), jax.ShapeDtypeStruct(x.shape, jnp.float32))

    @jax.jit
    def grads(params):
        return jax.grad(lambda p: softmax_cross_entropy(model.apply(p, state, x, train=True)[0], y))(params)

    g = grads(params)
    norms = []
    for stage in sorted((k for k in g if k.startswith("layer")), key=lambda k: int(k[5:])):
        for block in sorted(g[stage], key=lambda k: int(k[5:])):  # layer{i}/block{j}/branch/conv1
            norms.append(float(jnp.linalg.norm(g[stage][block]["branch"]["conv1"]["w"])))
    return norms


def train_one(depth: int, shortcut: bool, seed: int, epochs: int, learning_rate: float = 0.05) -> dict:
    import jdl
    from jdl import data
    from jdl.losses import softmax_cross_entropy
    from jdl.train import fit

    # the published split (fixed settings, nothing chosen on the test set)
    train, test = data.load("digits", "train", validation_fraction=0), data.load("digits", "test")
    model = make_model(depth, shortcut)
    result = fit(model, softmax_cross_entropy, jdl.optim.sgd(learning_rate, 0.9), train, test_data=test,
                 test_every_epoch=True, epochs=epochs, batch_size=64, seed=seed, progress=False)  # per-epoch test curves, for plots; nothing is chosen on them
    h = result.history
    return {"train_loss": h[-1]["train_loss"], "train_accuracy": h[-1]["train_accuracy"],
            "test_accuracy": h[-1]["test_accuracy"], "loss_curve": [r["train_loss"] for r in h],
            "params": jdl.param_count(result.train_state.params),
            "grad_norms": block_gradient_norms(model, train[0][:128], train[1][:128], seed)}


def plot(results: dict, depths: list[int], workdir: str) -> list[str]:
    from matplotlib.figure import Figure

    paths = []
    fig = Figure(figsize=(14, 3.8))
    axes = fig.subplots(1, 3)
    for kind, ls in (("plain", "--"), ("residual", "-")):
        runs = [results[kind][str(d)] for d in depths]
        axes[0].plot(depths, [r["train_loss"] for r in runs], ls, marker="o", label=kind)
        axes[1].plot(depths, [r["test_accuracy"] for r in runs], ls, marker="o", label=kind)
        for d, r in zip(depths, runs):
            axes[2].plot(np.arange(1, len(r["loss_curve"]) + 1), r["loss_curve"], ls, label=f"{kind}-{d}")
    axes[0].set(xlabel="depth (layers)", ylabel="final training loss", yscale="log", title="degradation: training loss")
    axes[1].set(xlabel="depth (layers)", ylabel="test accuracy", title="test accuracy")
    axes[2].set(xlabel="epoch", ylabel="training loss", yscale="log", title="training curves")
    for ax in axes[:2]:
        ax.set_xticks(depths)
        ax.legend()
    axes[2].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    paths.append(os.path.join(workdir, "depth_degradation.png"))
    fig.savefig(paths[-1], dpi=90)

    fig = Figure(figsize=(6, 3.8))
    ax = fig.subplots()
    for kind, ls in (("plain", "--"), ("residual", "-")):
        r = results[kind][str(depths[-1])]
        ax.plot(np.arange(1, len(r["grad_norms"]) + 1), r["grad_norms"], ls, marker=".", label=f"{kind}-{depths[-1]}")
    ax.set(xlabel="block (input → output)", ylabel="‖∂L/∂w‖ of the block's first conv", yscale="log",
           title="gradient reaching each block at initialization")
    ax.legend()
    fig.tight_layout()
    paths.append(os.path.join(workdir, "depth_gradients.png"))
    fig.savefig(paths[-1], dpi=90)
    return paths


def run(workdir: str, quick: bool = False, seed: int = 0, depths: str | None = None,
        epochs: int | None = None) -> dict:
    """Train plain and residual nets of each depth in ``depths`` (8,20,32,56; 8,20 with
    ``quick``) for ``epochs`` (20; 2 with ``quick``). Returns {'plain'|'residual': {depth: …}}."""
    from experiments.common import write_results

    depth_list = [int(d) for d in (depths or ("8,20" if quick else "8,20,32,56")).split(",")]
    epochs = epochs or (2 if quick else 20)
    os.makedirs(workdir, exist_ok=True)
    results: dict = {"plain": {}, "residual": {}}
    for depth in depth_list:
        for kind in results:
            results[kind][str(depth)] = train_one(depth, kind == "residual", seed, epochs)
    results["depths"] = depth_list
    results["epochs"] = epochs
    results["plots"] = plot(results, depth_list, workdir)
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_string("depths", None, "Comma-separated depths 6n + 2 (default 8,20,32,56).")
    flags.DEFINE_integer("epochs", None, "Epochs (default 20, quick 2).")
    common.main(run, "depth")
