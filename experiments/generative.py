"""One yardstick for every generative model of the course: an autoencoder, VAEs, a GAN and a
DDPM trained on the same 1,437 training digits, each asked for 1,000 samples, and every set of
samples scored by one digit classifier (``jdl.digits_fid``):

- the digits FID: the Fréchet distance between Gaussians fitted to the classifier's
  penultimate features of the samples and of the 360 real test digits;
- the classifier's mean top probability on the samples (quality: does each look like a digit?)
  and the entropy of the predicted classes (diversity: log 10 ≈ 2.303 when all ten are drawn);
- test negative log-likelihood where the model has one, in nats per digit (VAE: −ELBO and the
  −IW bound, of the Bernoulli decoder; DDPM: its variational bound on −log P of the 17-level
  pixels, ``jdl.models.diffusion_bound``);
- training time.

The models are the other experiments' own, trained by their own code: the dense autoencoder and
VAEs of ``experiments.autoencoders`` (the autoencoder, which has no prior, is sampled by fitting
a Gaussian to its training codes), the MLP GAN of ``experiments.gan`` (non-saturating loss),
and the DDPM of ``experiments.diffusion`` (linear schedule, T = 200, ancestral sampling and
DDIM with 20 steps). The DDPM's ε-network is a parameter (``run(denoiser=...)``): by default
the ε-MLP on the 64 flattened pixels. Rows to read them against: 1,000 real training digits
(the floor: a model that reproduced its training set), a Gaussian fitted to the pixels, and
uniform noise.

    python -m experiments.generative --workdir=runs/generative [--quick]
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from experiments import autoencoders, diffusion, gan

IMAGE = (8, 8, 1)


@dataclass(frozen=True)
class Config:
    """Epochs of the autoencoder and VAEs (``ae_epochs``), which VAEs (keys of
    ``experiments.autoencoders.VAES``), the GAN's and the DDPM's configs, the DDPM schedule and
    DDIM steps, ``n_samples`` per model, the classifier's ``judge_epochs``, the IW bound's K."""
    ae_epochs: int = 150
    vaes: tuple = ("vae_2d", "vae_8d")
    gan: gan.Config = field(default_factory=gan.Config)
    ddpm: diffusion.Config = field(default_factory=diffusion.Config)
    schedule: str = "linear"
    ddim_steps: int = 20
    n_samples: int = 1000
    judge_epochs: int = 30
    iw_k: int = 1000


QUICK = Config(ae_epochs=2, vaes=("vae_2d",), gan=gan.QUICK, ddpm=dataclasses.replace(diffusion.QUICK, steps_digits=60),
               ddim_steps=10, n_samples=200, judge_epochs=3, iw_k=10)


def mlp_denoiser(cfg: diffusion.Config) -> Callable[[int], object]:
    """The default ε-network builder T → Module: ``TimeMLP`` on the 64 flattened pixels, wrapped
    to take and return images (B, 8, 8, 1) with ``t=`` as an image network (a U-Net) would."""
    from jdl.core import leaf
    from jdl.models import TimeMLP

    def build(T: int):
        net = TimeMLP(64, T, hidden=cfg.hidden_digits, n_layers=cfg.n_layers)

        def init(key, x):
            return net.init(key, np.zeros((1, 64), np.float32))

        def apply(params, state, x, *, t=None, key=None, train=False):
            eps, state = net.apply(params, state, x.reshape(x.shape[0], 64), t=t)  # (B, 64)
            return eps.reshape(x.shape), state  # (B, 8, 8, 1)

        return leaf(init, apply, "flat_time_mlp", accepts={"t"})

    return build


def sample_autoencoder(x: np.ndarray, cfg: Config, n: int, seed: int) -> dict:
    """Train the dense autoencoder (2-D code); sample z ~ N(mean, cov of the training codes), decode."""
    from jdl.models.autoencoder import decode, encode

    model, ts, secs = autoencoders.train_autoencoder("ae", x, cfg.ae_epochs, seed)
    codes = np.asarray(encode(model, ts.params, ts.state, x), np.float64)  # (N, 2)
    z = np.random.default_rng(seed).multivariate_normal(codes.mean(0), np.cov(codes.T), size=n)
    return {"samples": np.asarray(decode(model, ts.params, ts.state, z.astype(np.float32))), "seconds": secs}


def sample_vae(name: str, x: np.ndarray, x_test: np.ndarray, cfg: Config, n: int, seed: int) -> dict:
    """Train a VAE; samples are the Bernoulli means σ(decoder(z)), z ~ N(0, I); test bounds."""
    import jax

    from jdl.models import vae

    model, ts, secs = autoencoders.train_vae(name, x, cfg.ae_epochs, seed)
    logits = vae.sample(model, ts.params, ts.state, jax.random.key(seed + 7), n, autoencoders.VAES[name][0])
    m = autoencoders.vae_metrics(model, ts, x_test, cfg.iw_k, seed)
    return {"samples": np.asarray(jax.nn.sigmoid(logits)), "seconds": secs,
            "nll": {"elbo": -m["elbo"], f"iw_k{cfg.iw_k}": -m["iw_log_px"]}}


def sample_gan(x: np.ndarray, cfg: Config, n: int, seed: int) -> dict:
    """Train the GAN with the non-saturating loss; samples G(z), z ~ N(0, I)."""
    import jax

    r = gan.train_gan(cfg.gan, "non_saturating", x, seed)
    z = jax.random.normal(jax.random.key(seed + 7), (n, cfg.gan.z_dim))
    return {"samples": np.asarray(r["G"].apply(r["params"], {}, z)[0]), "seconds": r["seconds"]}


def sample_ddpm(x: np.ndarray, x_test: np.ndarray, cfg: Config, n: int, seed: int, denoiser) -> dict:
    """Train the DDPM on pixels in [−1, 1]; ancestral (all T steps) and DDIM (η = 0) samples,
    mapped back to [0, 1] and clipped to it; the variational bound on the test digits' −log P
    (17 grey levels, ``jdl.models.diffusion_bound``), in nats per digit."""
    import jax

    from jdl.models import diffusion as ddpm
    from jdl.models.denoisers import eps_fn
    from jdl.models.diffusion_bound import ddpm_bound

    model, params, s, _, secs = diffusion.train_ddpm(cfg.ddpm, "digits", cfg.schedule, (x - 0.5) / 0.5, seed,
                                                     model=denoiser(cfg.ddpm.T))
    f, shape, key = eps_fn(model, params), (n, *IMAGE), jax.random.key(seed + 7)
    bounds = {v: jax.jit(lambda x0, k, v=v: ddpm_bound(f, s, x0, k, levels=17, variance=v))(
        x_test * 2 - 1, jax.random.key(seed + 8)) for v in ("beta", "posterior")}
    b = bounds["beta"]
    terms = {k: float(np.mean(getattr(b, k))) for k in ("total", "prior", "diffusion", "decoder")}
    out = {}
    for label, sampler in (("ddpm", lambda k: ddpm.ancestral_sample(f, s, shape, k)),
                           (f"ddim_{cfg.ddim_steps}", lambda k: ddpm.ddim_sample(f, s, shape, k, steps=cfg.ddim_steps))):
        start = time.perf_counter()
        y = np.asarray(jax.jit(sampler)(key))
        out[label] = {"samples": np.clip(y * 0.5 + 0.5, 0, 1), "seconds": secs,
                      "sample_seconds": time.perf_counter() - start}
    out["ddpm"].update(nll={"bound": terms["total"], "bound_posterior_var": float(np.mean(bounds["posterior"].total))},
                       bound_terms=terms, bound_per_step=np.asarray(b.per_step).mean(1))
    return out


def controls(x: np.ndarray, n: int, seed: int) -> dict:
    """Stand-ins for a model: n real training digits, a Gaussian fitted to the 64 pixels
    (clipped to [0, 1]), and uniform noise."""
    rng = np.random.default_rng(seed + 1)
    flat = x.reshape(len(x), -1)
    gauss = np.clip(rng.multivariate_normal(flat.mean(0), np.cov(flat.T), size=n), 0, 1)
    return {"real": {"samples": x[rng.choice(len(x), n, replace=False)]},
            "pixel_gaussian": {"samples": gauss.reshape(n, *IMAGE).astype(np.float32)},
            "noise": {"samples": rng.uniform(size=(n, *IMAGE)).astype(np.float32)}}


def run(workdir: str, quick: bool = False, seed: int = 0, config: Config | None = None,
        denoiser: Callable[[int], object] | None = None, models: str | None = None) -> dict:
    """Train the models named in ``models`` (comma-separated: ae, the VAEs of ``config.vaes``,
    gan, ddpm; default all), score their samples and the controls; write results.json,
    table.md and samples.png. ``denoiser``: T → the DDPM's ε-network on (B, 8, 8, 1) and
    ``t=`` (default ``mlp_denoiser``)."""
    from experiments.common import write_results
    from jdl import data
    from jdl.digits_fid import score, train_judge

    cfg = config or (QUICK if quick else Config())
    known = ["ae", *cfg.vaes, "gan", "ddpm"]
    names = models.split(",") if models else known
    if set(names) - set(known):
        raise ValueError(f"generative: unknown models {sorted(set(names) - set(known))}; known: {', '.join(known)}")
    n = cfg.n_samples
    start = time.perf_counter()
    judge = train_judge(seed=seed, epochs=cfg.judge_epochs)
    judge_seconds = time.perf_counter() - start
    x, _ = data.load("digits", "train", validation_fraction=0)
    x_test, _ = data.load("digits", "test")
    rows: dict = {}
    for name in [m for m in known if m in names]:
        if name == "ae":
            rows[name] = sample_autoencoder(x, cfg, n, seed)
        elif name == "gan":
            rows[name] = sample_gan(x, cfg, n, seed)
        elif name == "ddpm":
            rows.update(sample_ddpm(x, x_test, cfg, n, seed, denoiser or mlp_denoiser(cfg.ddpm)))
        else:
            rows[name] = sample_vae(name, x, x_test, cfg, n, seed)
    rows.update(controls(x, n, seed))
    samples = {name: row.pop("samples") for name, row in rows.items()}
    for name, row in rows.items():
        row.update(score(judge, samples[name]))
        logging.info("%s: %s", name, row)
    rng = np.random.default_rng(seed + 2)  # how much the FID of real digits moves between draws
    real_fids = [score(judge, x[rng.choice(len(x), n, replace=False)])["fid"] for _ in range(5)]
    results = {"config": _plain(cfg), "n_samples": n, "rows": rows,
               "judge": {"test_accuracy": judge.test_accuracy, "epochs": cfg.judge_epochs, "seconds": judge_seconds,
                         "test_confidence": score(judge, x_test)["confidence"]},
               "real_fid_draws": {"mean": float(np.mean(real_fids)), "sd": float(np.std(real_fids))}}
    write_results(workdir, results)
    _write_table(results, workdir)
    plot(rows, samples, x_test, workdir)
    return results


def _plain(cfg: Config) -> dict:
    """The config as nested plain dicts (the sub-configs are dataclasses)."""
    return dataclasses.asdict(cfg)


LABELS = {"ae": "autoencoder (2-D code, Gaussian fit)", "vae_2d": "VAE, 2-D", "vae_8d": "VAE, 8-D",
          "gan": "GAN (MLP, non-saturating)", "ddpm": "DDPM (ε-MLP, ancestral T = 200)",
          "real": "real training digits", "pixel_gaussian": "Gaussian fit to pixels", "noise": "uniform noise"}


def label(name: str) -> str:
    """A row's name in the table and the plot."""
    if name.startswith("ddim_"):
        return f"DDIM (η = 0), {name[5:]} steps, same ε-MLP"
    return LABELS.get(name, name)


def _write_table(results: dict, workdir: str) -> None:
    """table.md: one row per model and control, as docs/generative.md shows it."""
    import os

    lines = ["| samples | digits FID | mean confidence | label entropy | test NLL (nats) | train time (s) |",
             "|---|---|---|---|---|---|"]
    for name, r in results["rows"].items():
        nll = " / ".join(f"{v:.2f}" for v in r["nll"].values()) if "nll" in r else "—"
        secs = f"{r['seconds']:.0f}" if "seconds" in r else "—"
        lines.append(f"| {label(name)} | {r['fid']:.2f} | {r['confidence']:.3f} | "
                     f"{r['label_entropy']:.3f} | {nll} | {secs} |")
    with open(os.path.join(workdir, "table.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(rows: dict, samples: dict, x_test: np.ndarray, workdir: str) -> None:
    """samples.png: 50 test digits and 50 samples of each model and control, FID in the title."""
    import matplotlib.pyplot as plt

    from experiments.common import save_figure
    from experiments.sample_grids import show_grid

    panels = [("real test digits", x_test)] + [(f"{label(k)}\nFID {r['fid']:.1f}", samples[k])
                                               for k, r in rows.items()]
    cols = 5
    rows_ = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(3.6 * cols, 2.6 * rows_), squeeze=False)
    for ax, (title, images) in zip(axes.ravel(), panels):
        show_grid(ax, images[:50], title)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    save_figure(fig, workdir, "samples.png", dpi=100)


def main() -> None:
    from experiments.common import main as common_main

    from absl import flags

    flags.DEFINE_string("models", None, "Comma-separated models (default: all): ae, vae_2d, vae_8d, gan, ddpm.")
    common_main(run, "generative")


if __name__ == "__main__":
    main()
