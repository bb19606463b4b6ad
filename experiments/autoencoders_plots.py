"""The plots of ``experiments.autoencoders``: 2-D codes by class, VAE samples from the prior,
reconstructions, and a latent traversal grid."""

from __future__ import annotations

import os

import numpy as np


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def _save(fig, workdir: str, filename: str) -> str:
    path = os.path.join(workdir, filename)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return path


def _tile(images: np.ndarray, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """(rows·cols, H, W) → one (rows·(H+pad), cols·(W+pad)) mosaic."""
    n, h, w = images.shape
    out = np.zeros((rows * (h + pad), cols * (w + pad)))  # white gaps under gray_r
    for i in range(min(n, rows * cols)):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = images[i]
    return out


def latent_by_class(workdir: str, latents: dict, labels: np.ndarray) -> str:
    """One scatter per model of the test digits' 2-D codes, coloured by class."""
    fig = _figure(3.2 * len(latents), 3.2)
    axes = fig.subplots(1, len(latents), squeeze=False)[0]
    for ax, (name, z) in zip(axes, latents.items()):
        points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=6, vmin=-0.5, vmax=9.5)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes[-1], ticks=range(10), fraction=0.08)
    return _save(fig, workdir, "latent_by_class.png")


def image_grid(workdir: str, filename: str, panels: dict, rows: int, cols: int) -> str:
    """Side-by-side mosaics: panels = {title: images (rows·cols, H, W)}."""
    side = max(2.4, 0.3 * cols)  # inches per panel: a 15×15 grid needs room
    fig = _figure(side * len(panels), side * rows / cols + 0.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, images) in zip(axes, panels.items()):
        ax.imshow(_tile(images, rows, cols), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    return _save(fig, workdir, filename)


def make_all(workdir: str, latents: dict, labels: np.ndarray, trained: dict, x_test: np.ndarray,
             seed: int) -> list[str]:
    """Every plot of the experiment; returns their paths."""
    import jax
    import jax.numpy as jnp

    from jdl.models import vae

    paths = [latent_by_class(workdir, latents, labels)]
    sig = lambda a: np.asarray(jax.nn.sigmoid(a))[..., 0]  # noqa: E731  logits → pixel probabilities
    key = jax.random.key(seed + 7)
    vaes = [n for n in ("vae_2d", "vae_8d", "beta_vae_2d") if n in trained]
    samples = {}
    for n in vaes:
        model, ts = trained[n]
        d_z = ts.params["decoder"]["0_dense"]["w"].shape[0]
        samples[f"{n}: z ~ N(0, I)"] = sig(vae.sample(model, ts.params, ts.state, key, 64, d_z))
    paths.append(image_grid(workdir, "vae_samples.png", samples, 8, 8))
    originals = x_test[:16]
    recon = {"test digits": originals[..., 0]}
    for n, (model, ts) in trained.items():
        out, _ = model.apply(ts.params, ts.state, jnp.asarray(originals))
        recon[n] = sig(out.decoded) if n in vaes else np.asarray(out)[..., 0]
    paths.append(image_grid(workdir, "reconstructions.png", recon, 4, 4))
    grid = jnp.linspace(-2.5, 2.5, 15)
    traversals = {}
    for n in ("vae_2d", "beta_vae_2d"):
        if n in trained:
            model, ts = trained[n]
            traversals[f"{n}: decoder over z ∈ [−2.5, 2.5]²"] = sig(vae.traversal(model, ts.params, ts.state, grid)).reshape(-1, 8, 8)
    paths.append(image_grid(workdir, "latent_traversal.png", traversals, 15, 15))
    return paths
