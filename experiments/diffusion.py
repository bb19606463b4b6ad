"""DDPM on the 2-D toy sets (moons, spirals) and on 8×8 digits: how close are its samples to
the data, and what do DDIM's shortcuts cost?

For each data set and each β schedule (linear, cosine) an ε-MLP (``jdl.models.TimeMLP``) is
trained with the DDPM loss on the standardized training split (digits: 64 pixels scaled to
[−1, 1]). Its samples — ancestral on all T steps, DDIM (η = 0) on S < T steps — are compared with
the test split by the MMD (``jdl.sample_metrics.mmd2``, Gaussian kernels at 0.1, 0.2, 0.5 and 1
times the median distance of the test points) and read against the MMD of two data draws of the
same size (random training subsets vs the test split, averaged over 20 draws): the issue asks
for a ratio MMD_model/MMD_data ≤ 2. Two controls measure how much that yardstick can see: a
Gaussian with the data's mean and covariance, and training points blurred by noise of 0.1·std.

    python -m experiments.diffusion --workdir=runs/diffusion [--quick]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

SETS = ("moons", "spirals", "digits")
SCHEDULES = ("linear", "cosine")


@dataclass(frozen=True)
class Config:
    """``T`` diffusion steps; linear β from 1e-4 to ``beta_T``; the ε-MLP has ``n_layers`` hidden
    layers of ``hidden`` (``hidden_digits`` on digits) units; Adam at ``lr`` for ``steps``
    (``steps_digits``) steps of ``batch`` examples; DDIM on each of ``ddim_steps``."""
    T: int = 200
    beta_T: float = 0.1
    hidden: int = 128
    hidden_digits: int = 512
    n_layers: int = 3
    lr: float = 2e-3
    steps: int = 4000
    steps_digits: int = 6000
    batch: int = 256
    ddim_steps: tuple = (100, 50, 20, 10)
    n_ref_draws: int = 20


QUICK = Config(T=50, hidden=32, hidden_digits=64, steps=150, steps_digits=150, ddim_steps=(10,), n_ref_draws=3)


def load(name: str):
    """(train, test, to_data): standardized training points, raw test points (N, D), and the map
    from model space back to data space."""
    from jdl import data

    train, _ = data.load(name, "train", validation_fraction=0)
    test, _ = data.load(name, "test")
    train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
    mu, sd = (train.mean(0), train.std(0)) if name != "digits" else (0.5, 0.5)
    return (train - mu) / sd, test, lambda z: np.asarray(z) * sd + mu


def train_ddpm(cfg: Config, name: str, schedule_name: str, x, seed: int, model=None):
    """Train a noise predictor on x (N, ...) with the DDPM loss: ``model`` (any ε-network taking
    x_t of x's shape and ``t=``), by default the ε-MLP on flat points (N, D); returns
    (model, params, schedule, losses, seconds)."""
    import jax
    import jax.numpy as jnp

    from jdl import optim
    from jdl.models import TimeMLP, diffusion
    from jdl.models.denoisers import eps_fn
    from jdl.train import init_train_state, make_step

    s = (diffusion.linear_schedule(cfg.T, 1e-4, cfg.beta_T) if schedule_name == "linear"
         else diffusion.cosine_schedule(cfg.T))
    digits = name == "digits"
    if model is None:
        model = TimeMLP(x.shape[1], cfg.T, hidden=cfg.hidden_digits if digits else cfg.hidden, n_layers=cfg.n_layers)
    steps = cfg.steps_digits if digits else cfg.steps
    opt = optim.adam(optim.cosine_decay_schedule(cfg.lr, steps))
    ts = init_train_state(model, opt, jnp.zeros((1, *x.shape[1:])), seed=seed)
    step = make_step(lambda p, st, b, k: (diffusion.ddpm_loss(eps_fn(model, p), s, b, k), (st, {})), opt)
    xs, rng, losses = jnp.asarray(x), np.random.default_rng(seed), []
    start = time.perf_counter()
    for i in range(steps):
        ts, m = step(ts, xs[rng.integers(0, len(xs), cfg.batch)])
        losses.append(m["loss"])
    losses = np.asarray(jax.device_get(losses))
    return model, ts.params, s, losses, time.perf_counter() - start


def evaluate(cfg: Config, model, params, s, test, to_data, bandwidths, seed: int) -> dict:
    """MMD² of ancestral and DDIM samples (as many as test points) to the test set, and the samples."""
    import jax

    from jdl.models import diffusion
    from jdl.models.denoisers import eps_fn
    from jdl.sample_metrics import mmd2

    f, shape, out = eps_fn(model, params), test.shape, {}
    samplers = {"ancestral": lambda k: diffusion.ancestral_sample(f, s, shape, k)}
    for steps in cfg.ddim_steps:
        samplers[f"ddim_{steps}"] = lambda k, steps=steps: diffusion.ddim_sample(f, s, shape, k, steps=steps)
    for label, sampler in samplers.items():
        start = time.perf_counter()
        x = to_data(jax.jit(sampler)(jax.random.key(seed + 1)))
        out[label] = {"mmd2": float(mmd2(x, test, bandwidths)), "seconds": time.perf_counter() - start,
                      "samples": x}
    return out


def run(workdir: str, quick: bool = False, seed: int = 0, config: Config | None = None,
        sets: tuple = SETS, schedules: tuple = SCHEDULES) -> dict:
    """Train and evaluate every (set, schedule); write results.json and the plots."""
    from experiments.common import write_results
    from jdl.sample_metrics import median_bandwidth, mmd2

    cfg = config or (QUICK if quick else Config())
    results: dict = {"config": cfg.__dict__, "schedules": list(schedules), "runs": {}}
    samples: dict = {}
    for name in sets:
        x, test, to_data = load(name)
        bw = [float(median_bandwidth(test)) * c for c in (0.1, 0.2, 0.5, 1.0)]
        train_raw, rng = to_data(x), np.random.default_rng(seed)
        ref = [float(mmd2(train_raw[rng.choice(len(x), len(test), replace=False)], test, bw))
               for _ in range(cfg.n_ref_draws)]
        results["runs"][name] = {"data_mmd2": float(np.mean(ref)), "data_mmd2_sd": float(np.std(ref)),
                                 "controls": _controls(train_raw, test, bw, float(np.mean(ref)), rng)}
        for sched in schedules:
            model, params, s, losses, secs = train_ddpm(cfg, name, sched, x, seed)
            ev = evaluate(cfg, model, params, s, test, to_data, bw, seed)
            samples[name, sched] = {k: v.pop("samples") for k, v in ev.items()}
            for v in ev.values():
                v["mmd_ratio"] = float(np.sqrt(max(v["mmd2"], 0.0) / np.mean(ref)))
            results["runs"][name][sched] = {"train_seconds": secs, "final_loss": float(np.mean(losses[-100:])),
                                            "losses": losses[::10], "samplers": ev}
            logging.info("%s %s: %s", name, sched, {k: round(v["mmd_ratio"], 2) for k, v in ev.items()})
    write_results(workdir, results)
    plot(results, samples, {name: load(name)[1] for name in sets}, workdir)
    return results


def _controls(train, test, bw, ref: float, rng) -> dict:
    """MMD ratios of two stand-ins for a model: a Gaussian fitted to the training points, and
    training points plus N(0, (0.1·std)²) noise, each as many as the test points."""
    from jdl.sample_metrics import mmd2

    n = len(test)
    gauss = rng.multivariate_normal(train.mean(0), np.cov(train.T), size=n)
    blur = train[rng.choice(len(train), n, replace=False)] + 0.1 * train.std() * rng.normal(size=(n, train.shape[1]))
    return {k: float(np.sqrt(max(float(mmd2(v, test, bw)), 0.0) / ref)) for k, v in
            (("gaussian_fit", gauss), ("blurred_data", blur))}


def plot(results: dict, samples: dict, tests: dict, workdir: str) -> None:
    """samples.png (data and samples per set), mmd_vs_steps.png, losses.png."""
    import matplotlib.pyplot as plt

    from experiments.common import save_figure
    from experiments.sample_grids import show_grid

    sets = list(results["runs"])
    fig, axes = plt.subplots(len(sets), 4, figsize=(13, 3.2 * len(sets)), squeeze=False)
    fast = min(results["config"]["ddim_steps"])
    picks = [(sc, k) for sc, k in (("linear", "ancestral"), ("cosine", "ancestral"), ("cosine", f"ddim_{fast}"))
             if sc in results["schedules"]]
    for row, name in zip(axes, sets):
        panels = [("test data", tests[name])]
        for sched, key in picks:
            ratio = results["runs"][name][sched]["samplers"][key]["mmd_ratio"]
            panels.append((f"{sched}, {key.replace('_', ' ')} (MMD ×{ratio:.2f})", samples[name, sched][key]))
        for ax, (title, pts) in zip(row, panels):
            if name == "digits":
                show_grid(ax, pts[:50].reshape(-1, 8, 8), title)
            else:
                ax.scatter(pts[:, 0], pts[:, 1], s=3)
                ax.set_title(f"{name}: {title}", fontsize=9)
    save_figure(fig, workdir, "samples.png")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for name in sets:
        for sched, style in zip(results["schedules"], ("-", "--")):
            ev = results["runs"][name][sched]["samplers"]
            steps = [results["config"]["T"]] + list(results["config"]["ddim_steps"])
            axes[0].plot(steps, [v["mmd_ratio"] for v in ev.values()], style, marker="o", label=f"{name}, {sched}")
            axes[1].plot(results["runs"][name][sched]["losses"], style, label=f"{name}, {sched}", lw=0.8)
    axes[0].axhline(2.0, color="k", lw=0.8, ls=":")
    axes[0].set(xscale="log", xlabel="sampling steps (T: ancestral; fewer: DDIM η=0)", ylabel="MMD / MMD of two data draws")
    axes[1].set(yscale="log", xlabel="step / 10", ylabel="DDPM loss ‖ε − ε̂‖²")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    save_figure(fig, workdir, "mmd_vs_steps.png")


def main() -> None:
    from experiments.common import main as common_main

    common_main(run, "diffusion")


if __name__ == "__main__":
    main()
