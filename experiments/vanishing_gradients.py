"""Vanishing and exploding gradients in a 20-layer network, and two fixes.

Backpropagation multiplies one factor per layer, dL/dz_m = (W_{m+1}ᵀ dL/dz_{m+1}) ⊙ φ'(z_m),
so the gradient reaching the first layer is a product of 20 of them: with σ' ≤ 1/4 it shrinks
geometrically (the course's 0.8¹⁰⁰ ≈ 2e−10), with weights that amplify it grows (1.5¹⁰⁰ ≈ 4e17).
Variants, each 20 Dense layers of ``width`` units on the moons data:

* ``sigmoid``, ``tanh``: LeCun-normal weights (Var w = 1/fan_in);
* ``relu``: He-normal weights (Var w = 2/fan_in) — the first fix;
* ``sigmoid_residual``: the sigmoid network with skip connections h ← h + F(h), whose
  ∂h_out/∂h_in = 1 + F'(h) keeps a path of 1 — the second fix;
* ``relu_exploding``: ReLU with Var w = 8/fan_in, each layer doubling the signal forward and
  the gradient backward: every kernel's gradient is ~2¹⁹ times He's, and one step of gradient
  descent wrecks the network.

For each: ‖∂L/∂W_l‖ of every layer at initialization, during full-batch gradient descent, and
the training loss.

    python -m experiments.vanishing_gradients --workdir=runs/vanishing_gradients [--quick]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jdl

# activation, weight initializer, residual
VARIANTS: dict[str, tuple[Any, Any, bool]] = {
    "sigmoid": (jdl.nn.sigmoid, jdl.init.lecun_normal, False),
    "tanh": (jdl.nn.tanh, jdl.init.lecun_normal, False),
    "relu": (jdl.nn.relu, jdl.init.he_normal, False),
    "sigmoid_residual": (jdl.nn.sigmoid, jdl.init.lecun_normal, True),
    "relu_exploding": (jdl.nn.relu, jdl.init.variance_scaling(8.0, "fan_in", "normal"), False),
}


def deep_network(activation, w_init, residual: bool, depth: int = 20, width: int = 32,
                 n_out: int = 2) -> jdl.Module:
    """``depth`` Dense layers of ``width`` units, then Dense(n_out) logits as the last of them.

    Plain: [Dense, φ] × (depth − 1), Dense. Residual: Dense, then depth − 2 blocks
    h ← h + Dense(φ(h)) (the pre-activation form: the stream stays centred), then φ, Dense.
    """
    dense = lambda d: jdl.nn.Dense(d, w_init=w_init)
    if residual:
        blocks = [jdl.nn.residual(jdl.nn.serial(activation, dense(width))) for _ in range(depth - 2)]
        return jdl.nn.serial(dense(width), *blocks, activation, dense(n_out))
    return jdl.nn.serial(*[m for _ in range(depth - 1) for m in (dense(width), activation)], dense(n_out))


def weight_grad_norms(grads: dict) -> jax.Array:
    """‖∂L/∂W_l‖_F of every Dense kernel, first layer first. Shapes: → (depth,)."""
    norms = []
    for key in sorted(grads, key=lambda k: int(k.split("_", 1)[0])):
        for path, leaf in jax.tree_util.tree_flatten_with_path(grads[key])[0]:
            if getattr(path[-1], "key", None) == "w":
                norms.append(jnp.linalg.norm(leaf))
    return jnp.stack(norms)


def _train(model, x, y, steps: int, lr: float, every: int, seed: int) -> dict:
    def loss_fn(params, state):
        return jdl.losses.softmax_cross_entropy(model.apply(params, state, x)[0], y)

    grad_norms = jax.jit(lambda p, s: weight_grad_norms(jax.grad(loss_fn)(p, s)))
    opt = jdl.optim.sgd(lr)
    ts = jdl.train.init_train_state(model, opt, x, seed=seed)
    step = jdl.train.make_step(jdl.train.supervised(model, jdl.losses.softmax_cross_entropy), opt)
    norms, losses, accs = [], [], []
    for t in range(steps + 1):
        if t % every == 0:
            norms.append(np.asarray(grad_norms(ts.params, ts.state)).tolist())
        if t == steps:
            break
        ts, metrics = step(ts, (x, y))
        losses.append(float(metrics["loss"]))
        accs.append(float(metrics["accuracy"]))
    return {"grad_norms": norms, "loss": losses, "accuracy": accs}


def run(workdir: str, quick: bool = False, seed: int = 0, depth: int = 20, width: int = 32) -> dict:
    """Per-layer gradient norms and training curves for every variant; writes results.json,
    vanishing_gradients.png."""
    from matplotlib.figure import Figure

    steps, every, lr = (30, 15, 0.1) if quick else (2000, 100, 0.05)
    x, y = (jnp.asarray(a) for a in jdl.data.load("moons", "train", validation_fraction=0))
    results: dict = {"depth": depth, "width": width, "steps": steps, "lr": lr, "every": every, "variants": {}}
    for name, (act, w_init, res) in VARIANTS.items():
        r = _train(deep_network(act, w_init, res, depth, width), x, y, steps, lr, every, seed)
        g0 = np.asarray(r["grad_norms"][0], np.float64)
        r["ratio_first_last_init"] = float(g0[0] / g0[-1])  # both > 0 at initialization
        r["final_loss"], r["final_accuracy"] = r["loss"][-1], r["accuracy"][-1]
        results["variants"][name] = r

    fig = Figure(figsize=(15, 4.2))
    axes = fig.subplots(1, 3)
    layers = np.arange(1, depth + 1)
    for name, r in results["variants"].items():
        axes[0].semilogy(layers, r["grad_norms"][0], marker=".", label=name)
        axes[1].semilogy(np.arange(1, steps + 1), r["loss"], label=name)
        g = np.asarray(r["grad_norms"])  # (checkpoints, depth)
        with np.errstate(divide="ignore", invalid="ignore"):
            axes[2].semilogy(np.arange(len(g)) * every, g[:, 0] / g[:, -1], marker=".", label=name)
    axes[0].set(xlabel="layer l (1 = next to the input)", ylabel="‖∂L/∂W_l‖ at initialization",
                title=f"{depth}-layer networks: gradient per layer")
    axes[1].set(xlabel="step", ylabel="training loss", title=f"full-batch gradient descent (lr {lr}), moons",
                ylim=(1e-4, 10))
    axes[2].set(xlabel="step", ylabel="‖∂L/∂W_1‖ / ‖∂L/∂W_L‖", title="first vs last layer, in training")
    for ax in axes:
        ax.legend(fontsize=8)
    from experiments import common

    common.save_figure(fig, workdir, "vanishing_gradients.png")
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "vanishing_gradients")
