"""A GAN on 8×8 digits, trained twice: with the minimax generator loss log(1 − D(G(z))) and
with the non-saturating −log D(G(z)) (``jdl.models.gan``). Everything else is shared: the
models (MLP or DCGAN-style), Adam(2e-4, β₁ = 0.5) for each, one jitted two-optimizer step,
the data order and the noise. Per epoch: the mean losses, mean D(x) and D(G(z)), and the
samples of 10 fixed noise vectors; at the end, 100 samples and their MMD to the test digits
read against the MMD of two data draws (the yardstick of ``experiments.diffusion``).

    python -m experiments.gan --workdir=runs/gan [--quick]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

LOSSES = ("minimax", "non_saturating")


@dataclass(frozen=True)
class Config:
    """``arch`` 'mlp' (hidden layers ``hidden``) or 'dcgan' (``channels``); noise of ``z_dim``;
    ``epochs`` over the 1,437 training digits in batches of ``batch``; Adam(``lr``, b1=``b1``)."""
    arch: str = "mlp"
    hidden: tuple = (256, 256)
    channels: int = 32
    z_dim: int = 16
    epochs: int = 150
    batch: int = 64
    lr: float = 2e-4
    b1: float = 0.5
    n_fixed: int = 10
    grid_every: int = 15


QUICK = Config(hidden=(32,), epochs=2, grid_every=1)


def models(cfg: Config):
    """(G, D) for the configured architecture."""
    from jdl.models import gan

    if cfg.arch == "mlp":
        return gan.mlp_generator((8, 8, 1), cfg.hidden), gan.mlp_discriminator(cfg.hidden)
    if cfg.arch == "dcgan":
        return gan.dcgan_generator(cfg.channels), gan.dcgan_discriminator(cfg.channels)
    raise ValueError(f"experiments.gan: arch must be 'mlp' or 'dcgan', got {cfg.arch!r}")


def train_gan(cfg: Config, loss: str, x: np.ndarray, seed: int) -> dict:
    """Train with generator loss ``loss``; returns per-epoch records, fixed-noise samples per
    epoch (E, n_fixed, 8, 8, 1), the final generator params and the seconds spent."""
    import jax
    import jax.numpy as jnp

    from jdl import optim
    from jdl.data import batches
    from jdl.models import gan
    from jdl.train import init_train_state

    G, D = models(cfg)
    g_ts = init_train_state(G, optim.adam(cfg.lr, b1=cfg.b1), jnp.zeros((1, cfg.z_dim)), seed=seed)
    d_ts = init_train_state(D, optim.adam(cfg.lr, b1=cfg.b1), jnp.zeros((1, 8, 8, 1)), seed=seed + 1)
    step = gan.make_gan_step(G, D, optim.adam(cfg.lr, b1=cfg.b1), optim.adam(cfg.lr, b1=cfg.b1),
                             z_dim=cfg.z_dim, generator_loss=loss)
    sample = jax.jit(lambda p, z: G.apply(p, {}, z)[0])
    z_fixed = jax.random.normal(jax.random.key(seed + 100), (cfg.n_fixed, cfg.z_dim))
    history, fixed = [], []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        ms = []
        for xb, _ in batches(x, np.zeros(len(x), np.int32), cfg.batch, seed=seed, epoch=epoch):
            g_ts, d_ts, m = step(g_ts, d_ts, jnp.asarray(xb))
            ms.append(m)
        ms = jax.device_get(ms)
        history.append({k: float(np.mean([m[k] for m in ms])) for k in ms[0]})
        fixed.append(np.asarray(sample(g_ts.params, z_fixed)))
    return {"history": history, "fixed": np.stack(fixed), "params": g_ts.params, "G": G,
            "seconds": time.perf_counter() - start, "steps": int(g_ts.step)}


def saturation_probe(cfg: Config, x: np.ndarray, seed: int, d_steps: int = 200) -> dict:
    """The course's argument, measured: train D alone against the untrained G for ``d_steps``
    steps (D wins, D(G(z)) → 0), then compare the generator's gradient norm ‖∇_θG L_G‖ under
    the two losses, at the untrained G and that confident D."""
    import jax
    import jax.numpy as jnp

    from jdl import optim
    from jdl.models import gan
    from jdl.train import init_train_state

    G, D = models(cfg)
    gp, _ = G.init(jax.random.key(seed), jnp.zeros((1, cfg.z_dim)))
    d_ts = init_train_state(D, optim.adam(1e-3), jnp.zeros((1, 8, 8, 1)), seed=seed + 1)
    d_loss = jax.jit(jax.value_and_grad(lambda dp, xb, z: gan.discriminator_loss(
        D.apply(dp, {}, xb)[0], D.apply(dp, {}, G.apply(gp, {}, z)[0])[0])))
    opt, dp = optim.adam(1e-3), d_ts.params
    os_, rng = opt.init(dp), np.random.default_rng(seed)
    z = jax.random.normal(jax.random.key(seed + 3), (256, cfg.z_dim))
    out = {}
    for t in range(d_steps + 1):
        if t in (0, d_steps):
            logits = D.apply(dp, {}, G.apply(gp, {}, z)[0])[0]
            norms = {name: float(optim.global_norm(jax.grad(lambda p: fn(D.apply(dp, {}, G.apply(p, {}, z)[0])[0]))(gp)))
                     for name, fn in gan.GENERATOR_LOSSES.items()}
            out["after_d_steps" if t else "at_init"] = {"d_fake": float(jnp.mean(jax.nn.sigmoid(logits))),
                                                        "grad_norm": norms}
        _, g = d_loss(dp, jnp.asarray(x[rng.integers(0, len(x), cfg.batch)]), z[:cfg.batch])
        u, os_ = opt.update(g, os_, dp)
        dp = optim.apply_updates(dp, u)
    return out


def run(workdir: str, quick: bool = False, seed: int = 0, config: Config | None = None) -> dict:
    """Train with both generator losses; write results.json, the grids and the loss curves."""
    import jax

    from experiments.common import write_results
    from jdl import data
    from jdl.sample_metrics import median_bandwidth, mmd2

    cfg = config or (QUICK if quick else Config())
    x, _ = data.load("digits", "train", validation_fraction=0)
    test, _ = data.load("digits", "test")
    bw = [float(median_bandwidth(test)) * c for c in (0.1, 0.2, 0.5, 1.0)]
    rng = np.random.default_rng(seed)
    ref = float(np.mean([mmd2(x[rng.choice(len(x), len(test), replace=False)], test, bw) for _ in range(20)]))
    results: dict = {"config": cfg.__dict__, "data_mmd2": ref, "runs": {},
                     "saturation_probe": saturation_probe(cfg, x, seed, 20 if quick else 200)}
    runs = {}
    for loss in LOSSES:
        r = train_gan(cfg, loss, x, seed)
        samples = np.asarray(r["G"].apply(r["params"], {}, jax.random.normal(jax.random.key(seed + 7),
                                                                             (len(test), cfg.z_dim)))[0])
        m2 = float(mmd2(samples, test, bw))
        results["runs"][loss] = {"history": r["history"], "seconds": r["seconds"], "steps": r["steps"],
                                 "mmd2": m2, "mmd_ratio": float(np.sqrt(max(m2, 0.0) / ref)),
                                 "sample_pixel_sd": float(samples.reshape(len(samples), -1).std(0).mean()),
                                 "data_pixel_sd": float(test.reshape(len(test), -1).std(0).mean())}
        runs[loss] = (r["fixed"], samples)
        logging.info("%s: MMD ratio %.2f, last epoch %s", loss, results["runs"][loss]["mmd_ratio"], r["history"][-1])
    write_results(workdir, results)
    plot(results, runs, cfg, workdir)
    return results


def plot(results: dict, runs: dict, cfg: Config, workdir: str) -> None:
    """grids.png (fixed noise over epochs, final samples), losses.png (losses, D(x), D(G(z)))."""
    import matplotlib.pyplot as plt

    from experiments.common import save_figure
    from experiments.sample_grids import show_grid

    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    epochs = list(range(cfg.grid_every - 1, cfg.epochs, cfg.grid_every))
    for i, loss in enumerate(LOSSES):
        fixed, samples = runs[loss]
        show_grid(axes[2 * i], fixed[epochs].reshape(-1, 8, 8), f"{loss}: fixed z, one row per {cfg.grid_every} epochs",
                  n_cols=cfg.n_fixed)
        show_grid(axes[2 * i + 1], samples[:100], f"{loss}: 100 samples (MMD ×{results['runs'][loss]['mmd_ratio']:.2f})")
    save_figure(fig, workdir, "grids.png")
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for loss, style in zip(LOSSES, ("--", "-")):
        h = results["runs"][loss]["history"]
        axes[0].plot([e["d_loss"] for e in h], style, label=f"{loss}: D loss")
        axes[1].plot([e["g_loss"] for e in h], style, label=f"{loss}: G loss")
        axes[2].plot([e["d_real"] for e in h], style, label=f"{loss}: D(x)")
        axes[2].plot([e["d_fake"] for e in h], style, label=f"{loss}: D(G(z))")
    for ax, title in zip(axes, ("discriminator loss", "generator loss (its own objective)", "mean D outputs")):
        ax.set(xlabel="epoch", title=title)
        ax.legend(fontsize=7)
    save_figure(fig, workdir, "losses.png")


def main() -> None:
    from experiments.common import main as common_main

    common_main(run, "gan")


if __name__ == "__main__":
    main()
