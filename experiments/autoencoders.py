"""PCA, autoencoders and VAEs on the 8×8 digits: what a 2-number code keeps, and how likely
each model finds the test digits.

Every model squeezes the 64 pixels of a digit into a code and rebuilds the digit from it:

- PCA (k = 2, by SVD): the best linear code for the squared error;
- a dense autoencoder (64-256-128-2 and back, sigmoid outputs, MSE), a convolutional one
  (stride-2 convolutions down, ``ConvTranspose2D`` up) and a denoising one (σ = 0.3 input
  noise in training);
- VAEs with a Bernoulli decoder (pixels in [0, 1] read as probabilities): 2-D and 8-D latent
  spaces, and a β-VAE (β = 4) in 2-D.

Reported on the test split (360 digits): reconstruction MSE per pixel (for a VAE, of
sigmoid(decoder(μ))), the ELBO (the one-sample bound L_1 averaged over 10 draws per digit) and
the importance-weighted bound L_K with K = 1,000 (Burda et al.), the tightest estimate of
log p(x) here, in nats per digit; the KL term; the training time. Plots: the 2-D codes of the
test digits by class, the VAE's samples from the prior, reconstructions, and a latent traversal
(the decoder over a grid of z ∈ [−2.5, 2.5]²).

    python -m experiments.autoencoders --workdir=runs/autoencoders [--quick]
"""

from __future__ import annotations

import os
import time

import numpy as np

#: the autoencoders: (builder name, keyword arguments)
AUTOENCODERS = {"ae": ("dense", {}), "conv_ae": ("conv", {}), "denoising_ae": ("dense", {"noise_std": 0.3})}
#: the VAEs: (latent size, beta)
VAES = {"vae_2d": (2, 1.0), "vae_8d": (8, 1.0), "beta_vae_2d": (2, 4.0)}
HIDDEN = (256, 128)
#: (epochs, quick epochs), Adam learning rate, batch size, importance samples (quick)
EPOCHS, LR, BATCH, K_IW, K_IW_QUICK = (150, 2), 1e-3, 64, 1000, 10


def train_autoencoder(name: str, x: np.ndarray, epochs: int, seed: int):
    """Train one autoencoder with ``fit`` on (x, x) and MSE; returns (model, train_state, seconds)."""
    import jdl
    from jdl.models import autoencoder as ae

    kind, kwargs = AUTOENCODERS[name]
    if kind == "conv":
        model = ae.conv_autoencoder(x.shape[1:], channels=(32, 64), latent=2, **kwargs)
    else:
        model = ae.dense_autoencoder(x.shape[1:], hidden=HIDDEN, latent=2, **kwargs)
    start = time.perf_counter()
    result = jdl.train.fit(model, jdl.losses.mse, jdl.optim.adam(LR), (x, x), epochs=epochs, batch_size=BATCH,
                           seed=seed, progress=False, tensorboard=False)
    return model, result.train_state, time.perf_counter() - start


def train_vae(name: str, x: np.ndarray, epochs: int, seed: int):
    """Train one VAE with ``fit`` on (x, x) and the negative ELBO (``vae_loss``, β from VAES)."""
    import jdl
    from jdl.models import vae

    latent, beta = VAES[name]
    model = vae.dense_vae(x.shape[1:], hidden=HIDDEN, latent=latent)
    start = time.perf_counter()
    result = jdl.train.fit(model, jdl.losses.vae_loss("bernoulli", beta=beta), jdl.optim.adam(LR), (x, x),
                           epochs=epochs, batch_size=BATCH, seed=seed, progress=False, tensorboard=False)
    return model, result.train_state, time.perf_counter() - start


def vae_metrics(model, ts, x: np.ndarray, k: int, seed: int, chunk: int = 40) -> dict:
    """Test-set means: ELBO (L_1 over 10 draws), IW bound L_k, KL(q‖p), reconstruction MSE."""
    import jax
    import jax.numpy as jnp

    from jdl.losses import gaussian_kl
    from jdl.models import vae

    key = jax.random.key(seed + 1000)
    elbo = np.mean([np.asarray(vae.iwae_bound(model, ts.params, ts.state, x, jax.random.fold_in(key, r), 1))
                    for r in range(10)])
    iw = np.concatenate([np.asarray(vae.iwae_bound(model, ts.params, ts.state, x[i:i + chunk],
                                                   jax.random.fold_in(key, 100 + i), k))
                         for i in range(0, len(x), chunk)])
    out, _ = model.apply(ts.params, ts.state, jnp.asarray(x))  # eval mode: z = μ
    return {"elbo": float(elbo), "iw_log_px": float(iw.mean()), "iw_k": k,
            "kl": float(gaussian_kl(out.mu, out.logvar)),
            "reconstruction_mse": float(jnp.mean(jnp.square(jax.nn.sigmoid(out.decoded) - x)))}


def codes(model, ts, x: np.ndarray) -> np.ndarray:
    """The 2-D codes of x: an autoencoder's z, a VAE's μ."""
    from jdl.models import autoencoder as ae

    z = np.asarray(ae.encode(model, ts.params, ts.state, x))
    return z[:, :2]


def run(workdir: str, quick: bool = False, seed: int = 0, epochs: int | None = None,
        models: str | None = None) -> dict:
    """Train PCA and the autoencoders and VAEs named in ``models`` (comma-separated keys of
    AUTOENCODERS and VAES; default all) on the digits; write the table, the plots and
    results.json. Returns {model: {metric: value}, 'plots': [...]}."""
    import jax.numpy as jnp

    from experiments.common import write_results
    from jdl import data
    from jdl.models import autoencoder as ae
    from jdl.models import latent

    names = models.split(",") if models else [*AUTOENCODERS, *VAES]
    unknown = sorted(set(names) - set(AUTOENCODERS) - set(VAES))
    if unknown:
        raise ValueError(f"autoencoders: unknown models {unknown}; known: {', '.join([*AUTOENCODERS, *VAES])}")
    os.makedirs(workdir, exist_ok=True)
    x, _ = data.load("digits", "train", validation_fraction=0)
    x_test, y_test = data.load("digits", "test")
    n_epochs = epochs or EPOCHS[1 if quick else 0]
    k_iw = K_IW_QUICK if quick else K_IW
    flat, flat_test = x.reshape(len(x), -1), x_test.reshape(len(x_test), -1)
    pca = latent.pca(jnp.asarray(flat), 2)
    z_pca = latent.pca_transform(pca, jnp.asarray(flat_test))
    table = {"pca": {"reconstruction_mse": float(jnp.mean(jnp.square(latent.pca_reconstruct(pca, z_pca) - flat_test))),
                     "seconds": 0.0}}
    latents = {"pca": np.asarray(z_pca)}
    trained = {}
    for name in [n for n in names if n in AUTOENCODERS]:
        model, ts, seconds = train_autoencoder(name, x, n_epochs, seed)
        table[name] = {"reconstruction_mse": float(ae.reconstruction_error(model, ts.params, ts.state,
                                                                           jnp.asarray(x_test))),
                       "seconds": seconds}
        latents[name], trained[name] = codes(model, ts, x_test), (model, ts)
    for name in [n for n in names if n in VAES]:
        d_z, beta = VAES[name]
        model, ts, seconds = train_vae(name, x, n_epochs, seed)
        table[name] = {**vae_metrics(model, ts, x_test, k_iw, seed), "seconds": seconds, "latent": d_z, "beta": beta}
        trained[name] = (model, ts)
        if d_z == 2:
            latents[name] = codes(model, ts, x_test)
    from experiments import autoencoders_plots as plots

    paths = plots.make_all(workdir, latents, y_test, trained, x_test, seed)
    out = {**table, "epochs": n_epochs, "plots": paths}
    write_results(workdir, out)
    return out


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("epochs", None, "Epochs of every model (default 150; 2 with --quick).")
    flags.DEFINE_string("models", None, "Comma-separated models (default: all): ae, conv_ae, denoising_ae, "
                        "vae_2d, vae_8d, beta_vae_2d.")
    common.main(run, "autoencoders")
