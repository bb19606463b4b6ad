"""DDPM on 8×8 digits with the small U-Net (``jdl.models.UNet``) instead of the ε-MLP, on the
linear and the cosine β schedule, and what clipping the predicted x̂_0 does to DDIM.

Training follows ``experiments.diffusion`` (pixels scaled to [−1, 1], Adam with cosine decay,
the DDPM loss); samples — ancestral on all T steps, DDIM (η = 0) on S < T steps with and without
``clip_x0=(−1, 1)`` — are scored by the same yardstick: √(MMD²_model / MMD²_data) against the
test digits, where MMD²_data is that of training subsets of the same size.

    python -m experiments.diffusion_unet --workdir=runs/diffusion_unet [--schedules=cosine] [--quick]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

SCHEDULES = ("linear", "cosine")
CLIP = (-1.0, 1.0)


@dataclass(frozen=True)
class Config:
    """``T`` steps (linear β from 1e-4 to ``beta_T``); a U-Net of ``channels`` per level; Adam at
    ``lr`` (cosine decay) for ``steps`` steps of ``batch`` digits; DDIM on each of ``ddim_steps``."""
    T: int = 200
    beta_T: float = 0.1
    channels: tuple = (32, 64)
    lr: float = 2e-3
    steps: int = 1200
    batch: int = 64
    ddim_steps: tuple = (50, 10)
    n_ref_draws: int = 20


QUICK = Config(T=10, channels=(8,), steps=20, batch=32, ddim_steps=(5,), n_ref_draws=3)


def train(cfg: Config, schedule_name: str, x: np.ndarray, seed: int):
    """Train the U-Net on images x (N, 8, 8, 1) in [−1, 1]; (model, params, schedule, losses, seconds)."""
    import jax
    import jax.numpy as jnp

    from jdl import optim
    from jdl.models import UNet, diffusion
    from jdl.models.denoisers import eps_fn
    from jdl.train import init_train_state, make_step

    s = (diffusion.linear_schedule(cfg.T, 1e-4, cfg.beta_T) if schedule_name == "linear"
         else diffusion.cosine_schedule(cfg.T))
    model = UNet(cfg.T, cfg.channels)
    opt = optim.adam(optim.cosine_decay_schedule(cfg.lr, cfg.steps))
    ts = init_train_state(model, opt, jnp.zeros((1, *x.shape[1:])), seed=seed)
    step = make_step(lambda p, st, b, k: (diffusion.ddpm_loss(eps_fn(model, p), s, b, k), (st, {})), opt)
    xs, rng, losses = jnp.asarray(x), np.random.default_rng(seed), []
    start = time.perf_counter()
    for _ in range(cfg.steps):
        ts, m = step(ts, xs[rng.integers(0, len(xs), cfg.batch)])
        losses.append(m["loss"])
    losses = np.asarray(jax.device_get(losses))
    return model, ts.params, s, losses, time.perf_counter() - start


def sample_all(cfg: Config, model, params, s, n: int, seed: int) -> dict:
    """{sampler: (samples (n, 64) in [0, 1] pixel units, seconds)} for ancestral and DDIM ± clip."""
    import jax

    from jdl.models import diffusion
    from jdl.models.denoisers import eps_fn

    f, shape = eps_fn(model, params), (n, 8, 8, 1)
    samplers = {"ancestral": lambda k: diffusion.ancestral_sample(f, s, shape, k)}
    for steps in cfg.ddim_steps:
        samplers[f"ddim_{steps}"] = lambda k, S=steps: diffusion.ddim_sample(f, s, shape, k, steps=S)
        samplers[f"ddim_{steps}_clip"] = lambda k, S=steps: diffusion.ddim_sample(f, s, shape, k, steps=S, clip_x0=CLIP)
    out = {}
    for label, sampler in samplers.items():
        start = time.perf_counter()
        x = np.asarray(jax.jit(sampler)(jax.random.key(seed + 1))).reshape(n, -1) * 0.5 + 0.5
        out[label] = (x, time.perf_counter() - start)
    return out


def run(workdir: str, quick: bool = False, seed: int = 0, config: Config | None = None,
        schedules: tuple = SCHEDULES) -> dict:
    """Train and sample on each schedule; write results.json and samples.png."""
    from experiments.common import write_results
    from jdl import data
    from jdl.sample_metrics import median_bandwidth, mmd2

    cfg = config or (QUICK if quick else Config())
    x, _ = data.load("digits", "train", validation_fraction=0)
    test, _ = data.load("digits", "test")
    test = test.reshape(len(test), -1)
    bw = [float(median_bandwidth(test)) * c for c in (0.1, 0.2, 0.5, 1.0)]
    rng, flat = np.random.default_rng(seed), x.reshape(len(x), -1)
    ref = float(np.mean([mmd2(flat[rng.choice(len(x), len(test), replace=False)], test, bw)
                         for _ in range(cfg.n_ref_draws)]))
    results: dict = {"config": cfg.__dict__, "data_mmd2": ref, "runs": {}}
    grids = {}
    for sched in schedules:
        model, params, s, losses, secs = train(cfg, sched, x * 2 - 1, seed)
        samples = sample_all(cfg, model, params, s, len(test), seed)
        ev = {k: {"mmd_ratio": float(np.sqrt(max(float(mmd2(v, test, bw)), 0.0) / ref)), "seconds": t}
              for k, (v, t) in samples.items()}
        grids[sched] = {k: v for k, (v, _) in samples.items()}
        results["runs"][sched] = {"train_seconds": secs, "final_loss": float(np.mean(losses[-100:])),
                                  "losses": losses[::10], "samplers": ev}
        logging.info("unet %s: %s", sched, {k: round(v["mmd_ratio"], 2) for k, v in ev.items()})
    from jdl.core import param_count

    results["param_count"] = param_count(params)
    write_results(workdir, results)
    plot(results, grids, workdir)
    return results


def plot(results: dict, grids: dict, workdir: str) -> None:
    """samples.png: per schedule, 50 samples of ancestral sampling and of the fewest-step DDIM ± clip."""
    import matplotlib.pyplot as plt

    from experiments.common import save_figure
    from experiments.sample_grids import show_grid

    fast = min(results["config"]["ddim_steps"])
    keys = ("ancestral", f"ddim_{fast}", f"ddim_{fast}_clip")
    fig, axes = plt.subplots(len(grids), 3, figsize=(12, 2.6 * len(grids)), squeeze=False)
    for row, (sched, samples) in zip(axes, grids.items()):
        for ax, key in zip(row, keys):
            ratio = results["runs"][sched]["samplers"][key]["mmd_ratio"]
            show_grid(ax, samples[key][:50].reshape(-1, 8, 8), f"U-Net, {sched}, {key.replace('_', ' ')} "
                      f"(MMD ×{ratio:.2f})")
    save_figure(fig, workdir, "samples.png")


def main() -> None:
    from absl import flags

    from experiments.common import main as common_main

    flags.DEFINE_list("schedules", list(SCHEDULES), "β schedules to train on, one run each.")

    common_main(run, "diffusion_unet")


if __name__ == "__main__":
    main()
