"""Dying ReLUs: after a too-large step, many ReLU units have a negative pre-activation on every
training input, so their gradient is 0 and they never come back; leaky ReLU and ELU keep a
gradient for z < 0, so their units cannot die.

A unit of a hidden layer is *dead* when z = a·w + b ≤ 0 for all training inputs (ReLU outputs 0
and ReLU′(z) = 0 there for every example). The same MLP 2 → 64 → 64 → 2 (He init) is trained
with SGD (batches of 32, 10 epochs of moons), once per activation, in three sweeps
(``sweeps``): plain SGD at growing rates (where leaky ReLU and ELU diverge to NaN before ReLU
units die), SGD with the gradient clipped to global norm 1 at growing rates (no activation can
diverge, so all three meet the same large steps), and SGD 0.1 after every hidden bias was
lowered by a shift (one large negative bias update, the classic way ReLUs die). The experiment
counts units with z ≤ 0 everywhere after training and reports the test accuracy. Leaky ReLU
(slope 0.01) and ELU units there still get a gradient, so the same count measures how many
units are stuck rather than dead.

    python -m experiments.dying_relu --workdir=runs/dying_relu [--quick]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jdl

ACTIVATIONS = {"relu": jdl.nn.relu, "leaky_relu": jdl.nn.leaky_relu, "elu": jdl.nn.elu}


def pre_activations(params, x: np.ndarray, activation) -> list[np.ndarray]:
    """z_l = a_{l−1}W_l + b_l of every hidden Dense layer of a jdl.models.mlp (a_0 = x,
    a_l = φ(z_l)), computed from the params dict. Shapes: x (N, d) → [(N, width_l), …]."""
    a, zs = jnp.asarray(x), []
    for k in _hidden_dense(params):
        z = a @ params[k]["w"] + params[k]["b"][None, :]  # (N, width)
        zs.append(np.asarray(z))
        a = activation(z)
    return zs


def dead_fraction(zs: list[np.ndarray]) -> float:
    """Share of hidden units with z ≤ 0 on every input (all columns of all layers)."""
    dead = np.concatenate([np.all(z <= 0, axis=0) for z in zs])
    return float(dead.mean())


def shift_hidden_biases(model: jdl.Module, shift: float) -> jdl.Module:
    """``model`` whose init returns every hidden Dense bias lowered by ``shift``: b ← b − shift,
    the outcome of one large negative bias update (the classic way ReLUs die)."""
    def init(key, x):
        params, state = model.init(key, x)
        params = dict(params)
        for k in _hidden_dense(params):
            params[k] = {**params[k], "b": params[k]["b"] - shift}
        return params, state

    return model._replace(init=init)


def _hidden_dense(params) -> list[str]:
    """Keys of the Dense layers of an mlp's params except the output layer, in order."""
    return [k for k in sorted(params, key=lambda k: int(k.split("_")[0])) if "w" in params[k]][:-1]


def train_one(activation, lr: float, epochs: int, seed: int, train, test, clip_norm: float | None = None,
              bias_shift: float = 0.0) -> dict:
    """SGD(lr) on the MLP with ``activation`` (gradients first clipped to global norm
    ``clip_norm`` when given; hidden biases lowered by ``bias_shift`` at init); returns the dead
    fraction before and after, the test accuracy and ``diverged`` (1.0 when a parameter went
    NaN/±∞: NaN ≤ 0 is false, so such a run counts no dead units and its dead fraction means
    nothing)."""
    model = shift_hidden_biases(jdl.models.mlp([64, 64, 2], activation=activation, w_init=jdl.init.he_normal),
                                bias_shift)
    opt = jdl.optim.sgd(lr)
    if clip_norm is not None:
        opt = jdl.optim.chain(jdl.optim.clip_by_global_norm(clip_norm), opt)
    before = jdl.train.init_train_state(model, opt, train[0][:1], seed=seed).params
    result = jdl.train.fit(model, jdl.losses.softmax_cross_entropy, opt, train, test_data=test,
                           epochs=epochs, batch_size=32, seed=seed, progress=False, tensorboard=False,
                           on_nonfinite=None)
    after = result.train_state.params
    return {"dead_before": dead_fraction(pre_activations(before, train[0], activation)),
            "dead_after": dead_fraction(pre_activations(after, train[0], activation)),
            "test_accuracy": float(result.test["accuracy"]),
            "diverged": float(not all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(after)))}


def sweeps(quick: bool) -> dict:
    """The three settings, each a list of (x value, train_one keywords): plain SGD at growing
    rates; SGD with gradients clipped to global norm 1 (so no activation can diverge) at
    growing rates; and lr = 0.1 after hidden biases lowered by a growing shift."""
    lrs = (0.01, 1.0) if quick else (0.01, 0.1, 1.0, 3.0)
    clipped = (10.0,) if quick else (1.0, 3.0, 10.0)
    shifts = (2.0,) if quick else (1.0, 2.0, 3.0)
    return {"plain": [(lr, {"lr": lr}) for lr in lrs],
            "clipped": [(lr, {"lr": lr, "clip_norm": 1.0}) for lr in clipped],
            "bias_shift": [(b, {"lr": 0.1, "bias_shift": b}) for b in shifts]}


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """ReLU, leaky ReLU and ELU in the three ``sweeps``, 2 seeds (1 with ``quick``); writes
    results.json (runs[sweep][activation][x] → mean dead_before, dead_after, test_accuracy,
    diverged) and dying_relu.png."""
    from experiments.common import write_results

    train, test = jdl.data.load("moons", "train"), jdl.data.load("moons", "test")
    seeds = range(seed, seed + (1 if quick else 2))
    epochs = 2 if quick else 10
    results: dict = {"epochs": epochs, "seeds": len(seeds), "runs": {}}
    for sweep, settings in sweeps(quick).items():
        results["runs"][sweep] = {}
        for name, act in ACTIVATIONS.items():
            runs = {x: [train_one(act, epochs=epochs, seed=s, train=train, test=test, **kw) for s in seeds]
                    for x, kw in settings}
            results["runs"][sweep][name] = {str(x): {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
                                            for x, rs in runs.items()}
    plot(results, workdir)
    write_results(workdir, results)
    return results


def plot(results: dict, workdir: str) -> None:
    """dying_relu.png: per sweep (columns), the share of units with z ≤ 0 everywhere and the test
    accuracy (rows) for each activation; diverged runs are left out of the top row."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 3)
    xlabels = {"plain": "SGD learning rate", "clipped": "SGD learning rate (‖g‖ clipped to 1)",
               "bias_shift": "bias shift at init (SGD 0.1)"}
    for col, (sweep, per_act) in enumerate(results["runs"].items()):
        for name, per_x in per_act.items():
            xs, vs = [float(x) for x in per_x], list(per_x.values())
            axes[0, col].plot(xs, [np.nan if v["diverged"] else v["dead_after"] for v in vs], "-o", label=name)
            axes[1, col].plot(xs, [v["test_accuracy"] for v in vs], "-o", label=name)
        for row, label in enumerate(("share of units with z ≤ 0 on all inputs", "test accuracy")):
            ax = axes[row, col]
            ax.set_xscale("linear" if sweep == "bias_shift" else "log")
            ax.set_xlabel(xlabels[sweep], fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.legend(fontsize=7)
    save_figure(fig, workdir, "dying_relu.png")


if __name__ == "__main__":
    from experiments import common

    common.main(run, "dying_relu")
