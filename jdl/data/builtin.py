"""Built-in data sets that need no download: scikit-learn's 8×8 digits and 2-D toy problems.

Every split is fixed by a seed, so ``load(name, split)`` returns the same arrays on every
machine and every call.
"""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 0


def _split(x: np.ndarray, y: np.ndarray, split: str, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    idx = order[n_test:] if split == "train" else order[:n_test]
    return x[idx], y[idx]


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 handwritten digits scikit-learn ships (UCI optdigits test set, 8×8, 0..16).

    Returns x of shape (N, 8, 8, 1) float32 in [0, 1] (NHWC) and y (N,) int32 in 0..9;
    train has 1,437 examples, test 360 (a fixed, seeded 80/20 split).
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    return _split(x, d.target.astype(np.int32), split, n_test=360)


def _toy(points: np.ndarray, labels: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    return _split(points.astype(np.float32), labels.astype(np.int32), split, n_test=len(points) // 5)


def xor(split: str, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Noisy XOR: x uniform in [−1, 1]², y = 1 when x₁ and x₂ have opposite signs, else 0.
    No line separates the classes (the perceptron's limit); one hidden layer suffices.
    Returns x (N, 2) float32, y (N,) int32; 800 train, 200 test."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, size=(n, 2))
    return _toy(x, (x[:, 0] * x[:, 1] < 0), split)


def moons(split: str, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (scikit-learn's make_moons, noise 0.1).
    Returns x (N, 2) float32, y (N,) int32; 800 train, 200 test."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n, noise=0.1, random_state=2)
    return _toy(x, y, split)


def circles(split: str, n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """A circle inside a circle (scikit-learn's make_circles, factor 0.5, noise 0.05).
    Returns x (N, 2) float32, y (N,) int32; 800 train, 200 test."""
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=n, factor=0.5, noise=0.05, random_state=3)
    return _toy(x, y, split)


def spirals(split: str, n: int = 1000, turns: float = 1.5, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals: r = t, angle = 2π·turns·t + kπ for class k ∈ {0, 1}, t ∈ (0, 1],
    plus Gaussian noise. Returns x (N, 2) float32, y (N,) int32; 800 train, 200 test."""
    rng = np.random.default_rng(4)
    t = np.sqrt(rng.uniform(0.02, 1, size=n))
    k = rng.integers(0, 2, size=n)
    angle = 2 * np.pi * turns * t + np.pi * k
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) + noise * rng.normal(size=(n, 2))
    return _toy(x, k, split)
