"""A "digits FID": one yardstick for any model that draws 8×8 digits (autoencoder, VAE, GAN,
diffusion), after the Fréchet Inception Distance of Heusel et al. (2017) with a small jdl CNN
trained on the digits in place of Inception.

A classifier that tells digits apart has, in its last hidden layer, features that separate
what matters about a digit (its class, its strokes) and ignore what does not. Fit a Gaussian
to those features over the real test digits, N(μ_r, Σ_r), and another over a model's samples,
N(μ_g, Σ_g); the Fréchet distance between them (``jdl.sample_metrics.frechet_distance``) is
small only when the samples are like real digits *and* as varied (Σ_g matches Σ_r). Beside it,
the same classifier's mean top probability on the samples (do they look like some digit?) and
the entropy of their predicted classes (are all ten digits drawn? log 10 ≈ 2.303 when so).

The classifier is retrained from a fixed seed each time (a few seconds; same seed, same bits),
so nothing is cached between runs::

    judge = train_judge(seed=0)
    scores = score(judge, samples)   # {'fid', 'confidence', 'label_entropy'}
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import numpy as np

from jdl.core import Module, Params, State
from jdl.nn.activations import relu
from jdl.nn.combinators import serial
from jdl.nn.conv import Conv2D
from jdl.nn.linear import Dense, Flatten
from jdl.nn.pooling import MaxPool2D
from jdl.sample_metrics import frechet_distance, gaussian_stats, label_entropy, mean_confidence

IMAGE_SHAPE = (8, 8, 1)


class DigitJudge(NamedTuple):
    """A trained digit classifier and the statistics of the real test digits it compares with:
    ``model`` = serial(``features``, Dense(10)), its ``params`` and ``state``, its
    ``test_accuracy``, and μ_r (d,), Σ_r (d, d) of its features on the 360 test digits."""

    model: Module
    features: Module
    params: Params
    state: State
    test_accuracy: float
    mu: np.ndarray
    cov: np.ndarray


def feature_classifier(d_features: int = 64) -> tuple[Module, Module]:
    """(features, classifier): CONV3-32 → ReLU → POOL-2 → CONV3-64 → ReLU → POOL-2 → flatten →
    Dense(d_features) → ReLU are the features (the penultimate layer); the classifier adds a
    Dense(10) of logits. Shapes: x (B, 8, 8, 1) → features (B, d_features), logits (B, 10)."""
    features = serial(Conv2D(32, 3), relu, MaxPool2D(2), Conv2D(64, 3), relu, MaxPool2D(2),  # (B, 2, 2, 64)
                      Flatten(), Dense(d_features), relu)
    return features, serial(features, Dense(10))


def train_judge(*, seed: int = 0, epochs: int = 30, d_features: int = 64) -> DigitJudge:
    """Train ``feature_classifier`` with ``jdl.train.fit`` (softmax cross-entropy, Adam 1e-3,
    batch 64) on the digits' training split (1,293; 144 held out for validation), and take
    the feature statistics of the test split (360) as the real reference."""
    from jdl import data, losses, optim
    from jdl.train import fit

    features, model = feature_classifier(d_features)
    train, validation, test = (data.load("digits", s) for s in ("train", "validation", "test"))
    result = fit(model, losses.softmax_cross_entropy, optim.adam(1e-3), train, validation, test_data=test,
                 epochs=epochs, batch_size=64, seed=seed, progress=False, tensorboard=False)
    ts = result.train_state
    judge = DigitJudge(model, features, ts.params, ts.state, result.test["accuracy"], np.zeros(0), np.zeros(0))
    mu, cov = gaussian_stats(judge_outputs(judge, test[0])[0])
    return judge._replace(mu=mu, cov=cov)


def judge_outputs(judge: DigitJudge, images: Any, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The penultimate features and class probabilities of ``images`` (eval mode, in batches).

    Shapes: images (n, 8, 8, 1) (or (n, 64), reshaped) → features (n, d), probs (n, 10).
    """
    x = np.asarray(images, np.float32)
    if x.ndim < 2 or int(np.prod(x.shape[1:])) != 64:
        raise ValueError(f"judge_outputs: images must have shape (n, 8, 8, 1) or (n, 64), got {x.shape}")
    x = x.reshape(len(x), *IMAGE_SHAPE)
    outs = [_apply(judge.features, judge.params, judge.state, x[i:i + batch]) for i in range(0, len(x), batch)]
    return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])


@functools.partial(jax.jit, static_argnums=0)
def _apply(features: Module, params: Params, state: State, x: jax.Array):
    f, _ = features.apply(params["0_serial"], state["0_serial"], x)  # (B, d)
    logits, _ = Dense(10).apply(params["1_dense"], {}, f)  # (B, 10)
    return f, jax.nn.softmax(logits)



def score(judge: DigitJudge, images: Any) -> dict[str, float]:
    """The three read-outs of a set of images against the real test digits:

        fid           = ‖μ_g − μ_r‖² + Tr(Σ_g + Σ_r − 2(Σ_g Σ_r)^{1/2})   (features of the images vs the test digits)
        confidence    = mean_i max_c p(c | x_i)
        label_entropy = −Σ_c h_c log h_c,  h the histogram of argmax_c p(c | x_i)

    FID depends on the number of images (a biased estimate, larger for fewer): compare sets of
    one size. Shapes: images (n, 8, 8, 1), n ≥ 2 → a dict of floats.
    """
    f, probs = judge_outputs(judge, images)
    mu, cov = gaussian_stats(f)
    return {"fid": frechet_distance(mu, cov, judge.mu, judge.cov), "confidence": mean_confidence(probs),
            "label_entropy": label_entropy(probs)}
