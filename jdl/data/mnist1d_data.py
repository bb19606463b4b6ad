"""MNIST-1D (Greydanus 2020): a 1-D analogue of MNIST, generated offline from templates.

Each of the 10 digits is a 12-point 1-D template; an example is its template padded with
36..60 zeros, stretched to 72 points, scaled by 1 + 0.4·(u − ½), translated by up to 48 points,
given correlated noise (σ = 0.25, Gaussian-smoothed) where the signal is zero plus i.i.d. noise
(σ = 0.02), sheared by up to ±0.375 and resampled to 40 points; the whole set is then centred
and scaled to unit standard deviation. With the paper's default arguments (5,000 examples,
80 % for training, seed 42) this gives 4,000 training and 1,000 test examples, the benchmark on
which the paper reports about 32 % for logistic regression, 68 % for an MLP and 94 % for a CNN.

The ``mnist1d`` package does the generation; it seeds numpy's global random state, so this
module saves and restores that state around the call (no hidden side effect on the caller).
The result is cached as ``<data root>/mnist1d/mnist1d_default.npz`` (about 1.3 MB) and reused.
"""

from __future__ import annotations

import json
import os
import random
import zipfile

import numpy as np

from jdl.data.files import cached_npz, data_root

FILE = os.path.join("mnist1d", "mnist1d_default.npz")
SEQ_LEN, N_TRAIN, N_TEST = 40, 4000, 1000


def generate() -> dict[str, np.ndarray]:
    """Generate MNIST-1D with the paper's default arguments (deterministic: seed 42).

    Returns a dict with x (4000, 40), y (4000,), x_test (1000, 40), y_test (1000,), the signals
    float32 and the labels int32, and ``args``, the generation arguments as a JSON string.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    settings = {k: v for k, v in vars(args).items() if k != "url"}
    return {"x": d["x"].astype(np.float32), "y": d["y"].astype(np.int32),
            "x_test": d["x_test"].astype(np.float32), "y_test": d["y_test"].astype(np.int32),
            "args": np.asarray(json.dumps(settings, sort_keys=True))}


def valid(arrays) -> bool:
    """Whether cached arrays have the shapes, dtypes and labels a default MNIST-1D has."""
    try:
        return (arrays["x"].shape == (N_TRAIN, SEQ_LEN) and arrays["x_test"].shape == (N_TEST, SEQ_LEN)
                and arrays["y"].shape == (N_TRAIN,) and arrays["y_test"].shape == (N_TEST,)
                and arrays["x"].dtype == np.float32 and set(np.unique(arrays["y"])) == set(range(10))
                and np.isfinite(arrays["x"]).all() and np.isfinite(arrays["x_test"]).all())
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return False


def cached(data_dir: str | None = None) -> dict[str, np.ndarray]:
    """The generated arrays, read from the cache when it holds a valid copy, else generated and
    written there (atomically; a cache folder that cannot be written is skipped)."""
    return cached_npz(os.path.join(data_root(data_dir), FILE), generate, valid)


def mnist1d(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D, the paper's default 4,000/1,000 split, generated once and cached.

    Returns x (N, 40, 1) float32 (a length-40 signal with one channel: NWC, ready for Conv1D
    and flattened by an MLP) and y (N,) int32 in 0..9.
    """
    arrays = cached(data_dir)
    x, y = (arrays["x"], arrays["y"]) if split == "train" else (arrays["x_test"], arrays["y_test"])
    return x[..., None], y
