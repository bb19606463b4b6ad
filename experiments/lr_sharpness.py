"""A larger learning rate as a regularizer: SGD at growing rates ends in flatter minima.

The same MLP 64 → 64 → 64 → 10 (ReLU) is trained on the 8×8 digits by plain SGD with the same
batch size and number of epochs at 2–3 learning rates. A stable step of gradient descent needs
the sharpness λ_max(∇²L) < 2/α (on a quadratic, θ ← θ − αHθ diverges along any eigenvector
with αλ > 2), and SGD's noise (the noise ball of ``experiments.sgd_noise``) grows with α/B, so
a larger α cannot settle in a sharp, narrow minimum: it ends where the loss is flatter, which
the course links to better generalization. Measured after training, on the training set:

* the training loss and the test accuracy;
* sharpness λ_max of the Hessian of the training loss, by power iteration on Hessian-vector
  products Hv = ∂/∂ε ∇L(θ + εv) (``jax.jvp`` of ``jax.grad``): v ← Hv/‖Hv‖, λ = vᵀHv;
* the mean loss increase L(θ + ρu) − L(θ) over random directions u of norm 1 (ρ fixed).

Cross-entropy's Hessian shrinks as the loss → 0 (the softmax saturates), and a larger α reaches
a lower loss in the same epochs, so the same measures are also taken at the first epoch whose
training loss fell below a common threshold: sharpness at equal loss.

    python -m experiments.lr_sharpness --workdir=runs/lr_sharpness [--quick]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jdl


def hvp(loss, theta, v):
    """Hessian-vector product H(θ)v = ∂/∂ε ∇L(θ + εv)|_{ε=0} by forward over reverse mode.
    ``theta`` and ``v`` are pytrees of the same shapes; returns a pytree of those shapes."""
    return jax.jvp(jax.grad(loss), (theta,), (v,))[1]


def top_eigenvalue(loss, theta, key: jax.Array, iters: int = 50) -> float:
    """Largest-magnitude eigenvalue of ∇²L(θ) by power iteration: v ← Hv/‖Hv‖ from a random unit
    v, then λ = vᵀHv (the Rayleigh quotient). For a minimum's PSD Hessian that is λ_max."""
    leaves, treedef = jax.tree.flatten(theta)
    keys = jax.random.split(key, len(leaves))
    v = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)])

    def normalize(t):
        return jax.tree.map(lambda a: a / jdl.optim.global_norm(t), t)

    def body(_, v):
        return normalize(hvp(loss, theta, v))

    v = jax.lax.fori_loop(0, iters, body, normalize(v))
    hv = hvp(loss, theta, v)
    return float(sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(hv))))


def perturbed_increase(loss, theta, key: jax.Array, radius: float, samples: int = 20) -> float:
    """Mean of L(θ + ρu) − L(θ) over ``samples`` random directions u, ‖u‖ = 1 over all params."""
    leaves, treedef = jax.tree.flatten(theta)
    base = loss(theta)

    def one(k):
        ks = jax.random.split(k, len(leaves))
        u = [jax.random.normal(kk, x.shape, x.dtype) for kk, x in zip(ks, leaves)]
        norm = jnp.sqrt(sum(jnp.sum(a ** 2) for a in u))
        return loss(jax.tree.unflatten(treedef, [x + radius * a / norm for x, a in zip(leaves, u)])) - base

    return float(jnp.mean(jax.jit(jax.vmap(one))(jax.random.split(key, samples))))


def train_at(lr: float, epochs: int, seed: int, train, test, radius: float, match_loss: float) -> dict:
    """SGD(lr), batches of 32, measured twice: at the end (``final``) and at the first epoch
    whose mean training loss fell below ``match_loss`` (``matched``; cross-entropy's Hessian
    shrinks as the loss → 0, so sharpness is compared at equal loss too). Each measure: the
    full-training-set loss, test accuracy, sharpness and perturbed loss increase."""
    model = jdl.models.mlp([64, 64, 10], w_init=jdl.init.he_normal)
    snapshot: dict = {}

    def keep_first_below(epoch, record, ts):
        if "params" not in snapshot and record["train_loss"] < match_loss:
            snapshot.update(params=jax.tree.map(np.array, ts.params), epoch=epoch)  # a copy: fit donates ts

    result = jdl.train.fit(model, jdl.losses.softmax_cross_entropy, jdl.optim.sgd(lr), train, test_data=test,
                           epochs=epochs, batch_size=32, seed=seed, progress=False, tensorboard=False,
                           callbacks=[keep_first_below])
    state = result.train_state.state
    x, y = jnp.asarray(train[0]), jnp.asarray(train[1])

    def loss(p):
        return jnp.mean(jdl.losses.softmax_cross_entropy(model.apply(p, state, x)[0], y))

    def measure(params):
        key = jax.random.key(seed)
        logits = model.apply(params, state, jnp.asarray(test[0]))[0]
        return {"train_loss": float(loss(params)),
                "test_accuracy": float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(test[1]))),
                "sharpness": top_eigenvalue(loss, params, jax.random.fold_in(key, 1)),
                "perturbed_increase": perturbed_increase(loss, params, jax.random.fold_in(key, 2), radius)}

    out = {f"final_{k}": v for k, v in measure(result.train_state.params).items()}
    if "params" in snapshot:
        out.update({f"matched_{k}": v for k, v in measure(snapshot["params"]).items()},
                   matched_epoch=float(snapshot["epoch"]))
    return out


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """SGD at α = 0.01, 0.05, 0.2 (two with ``quick``) for the same epochs and batch, 2 seeds
    (1 with ``quick``); writes results.json and lr_sharpness.png."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure, write_results

    train, test = jdl.data.load("digits", "train"), jdl.data.load("digits", "test")
    lrs = (0.01, 0.2) if quick else (0.01, 0.05, 0.2)
    seeds = range(seed, seed + (1 if quick else 2))
    epochs, radius, match_loss = (2 if quick else 150), 1.0, (1.0 if quick else 0.1)
    runs = {str(lr): [train_at(lr, epochs, s, train, test, radius, match_loss) for s in seeds] for lr in lrs}
    results = {"epochs": epochs, "batch_size": 32, "radius": radius, "match_loss": match_loss, "seeds": len(seeds),
               "runs": {lr: {k: float(np.mean([r[k] for r in rs if k in r])) for k in {k for r in rs for k in r}}
                        for lr, rs in runs.items()},
               "per_seed": runs}
    fig = Figure(figsize=(12, 3.2))
    keys = ("train_loss", "test_accuracy", "sharpness", "perturbed_increase")
    for ax, k in zip(fig.subplots(1, 4), keys):
        for when in ("final", "matched"):
            ys = [results["runs"][str(lr)].get(f"{when}_{k}", np.nan) for lr in lrs]
            ax.plot(lrs, ys, "-o", label=f"{when}" if when == "final" else f"train loss < {match_loss}")
        ax.legend(fontsize=7)
        if k == "sharpness":
            ax.plot(lrs, [2 / lr for lr in lrs], "--", label="2/α")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("SGD learning rate α")
        ax.set_title(k.replace("_", " "), fontsize=9)
    save_figure(fig, workdir, "lr_sharpness.png")
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "lr_sharpness")
