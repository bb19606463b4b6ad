"""MNIST-1D: the paper's default split, deterministic, cached, hard for a linear model."""

import os
import random

import numpy as np
import pytest

import jdl
from jdl.data import mnist1d_data


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("jdl_data"))


@pytest.fixture(scope="module")
def splits(root):
    # the published 4,000 / 1,000 split, compared with the package's own
    return (jdl.data.load("mnist1d", "train", data_dir=root, validation_fraction=0),
            jdl.data.load("mnist1d", "test", data_dir=root))


def test_default_split_shapes_and_balance(splits):
    (x, y), (xt, yt) = splits
    assert x.shape == (4000, 40, 1) and xt.shape == (1000, 40, 1)
    assert x.dtype == np.float32 and y.dtype == np.int32
    assert set(np.unique(y)) == set(range(10)) and np.bincount(y).min() > 350
    # the generator centres the whole set and scales it to unit standard deviation
    all_x = np.concatenate([x, xt])
    assert abs(all_x.mean()) < 1e-3 and abs(all_x.std() - 1) < 1e-3


def test_equals_the_package_generator_and_leaves_global_rng_alone(splits):
    from mnist1d.data import get_dataset_args, make_dataset
    (x, y), (xt, yt) = splits
    np.random.seed(123)
    random.seed(123)
    before = np.random.get_state()[1].copy(), random.getstate()
    again = mnist1d_data.generate()
    after = np.random.get_state()[1], random.getstate()
    np.testing.assert_array_equal(before[0], after[0])
    assert before[1] == after[1]
    ref = make_dataset(get_dataset_args())  # the package's own call (it reseeds globally)
    np.testing.assert_allclose(x[..., 0], ref["x"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(yt, ref["y_test"])
    np.testing.assert_array_equal(again["x_test"], xt[..., 0])


def test_cache_is_reused_and_a_corrupt_cache_regenerated(root, splits):
    path = os.path.join(root, "mnist1d", "mnist1d_default.npz")
    assert os.path.isfile(path)
    with open(path, "wb") as f:
        f.write(b"PK\x03\x04 not a zip")
    x, y = jdl.data.load("mnist1d", "train", data_dir=root, validation_fraction=0)
    np.testing.assert_array_equal(x, splits[0][0])
    with np.load(path) as f:
        assert f["x"].shape == (4000, 40)


def test_hard_for_a_linear_classifier(splits):
    """The paper: logistic regression ≈ 32 %; a least-squares linear classifier does no better."""
    (x, y), (xt, yt) = splits
    a = np.c_[x[..., 0], np.ones(len(x))]
    w = np.linalg.lstsq(a, np.eye(10)[y], rcond=None)[0]
    acc = np.mean((np.c_[xt[..., 0], np.ones(len(xt))] @ w).argmax(1) == yt)
    assert 0.15 < acc < 0.45, acc
