"""jdl.data.split (stratified, seeded hold-out) and load's 'validation' split."""

import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.data import split
from jdl.data.splits import held_counts
from tests.data.test_mnist_idx import write_split


def labelled(counts):
    """Rows [i, 10·i] with labels 0..K−1 interleaved (class c has counts[c] rows): row i is its id."""
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)]).astype(np.int32)
    y = y[np.random.default_rng(7).permutation(len(y))]
    x = np.stack([np.arange(len(y)), 10 * np.arange(len(y))], axis=1)
    return x, y


def ids(x):
    return x[:, 0]


def test_stratified_counts_exact_in_both_parts():
    x, y = labelled([50, 30, 20])
    (xr, yr), (xh, yh) = split(x, y, 0.1)
    assert np.bincount(yh).tolist() == [5, 3, 2] and np.bincount(yr).tolist() == [45, 27, 18]
    assert xh.shape == (10, 2) and xr.shape == (90, 2) and yh.shape == (10,)


def test_largest_remainder_rounding():
    # 15 examples, 3 held: quotas 7·3/15 = 1.4, 5·3/15 = 1.0, 3·3/15 = 0.6 → 1, 1, 0 + the largest remainder
    x, y = labelled([7, 5, 3])
    (_, yr), (_, yh) = split(x, y, 0.2)
    assert np.bincount(yh).tolist() == [1, 1, 1] and np.bincount(yr).tolist() == [6, 4, 2]
    assert held_counts(np.array([1, 1, 1, 1]), 2).tolist() == [1, 1, 0, 0]  # ties to the lower class
    assert held_counts(np.array([3, 3, 4]), 5).tolist() == [2, 1, 2]  # 1.5, 1.5, 2: the spare one to class 0


def test_rows_partition_the_set_in_their_order():
    x, y = labelled([40, 35, 25])
    (xr, yr), (xh, yh) = split(x, y, 0.3, seed=3)
    assert len(xh) == 30 and len(xr) == 70
    assert not set(ids(xr)) & set(ids(xh))
    np.testing.assert_array_equal(np.sort(np.concatenate([ids(xr), ids(xh)])), np.arange(100))
    assert (np.diff(ids(xr)) > 0).all() and (np.diff(ids(xh)) > 0).all()  # original order kept
    np.testing.assert_array_equal(yr, y[ids(xr)])  # x and y stay paired
    np.testing.assert_array_equal(yh, y[ids(xh)])
    np.testing.assert_array_equal(xh[:, 1], 10 * ids(xh))


def test_deterministic_for_a_seed_and_different_for_another():
    x, y = labelled([50, 30, 20])
    a = split(x, y, 0.2, seed=1)
    b = split(x, y, 0.2, seed=1)
    c = split(x, y, 0.2, seed=2)
    np.testing.assert_array_equal(a[1][0], b[1][0])
    np.testing.assert_array_equal(a[0][0], b[0][0])
    assert not np.array_equal(a[1][0], c[1][0])
    assert np.bincount(c[1][1]).tolist() == np.bincount(a[1][1]).tolist() == [10, 6, 4]


@pytest.mark.parametrize("y", [np.linspace(0, 1, 20, dtype=np.float32), np.eye(4)[np.arange(20) % 4]],
                         ids=["float targets", "one-hot"])
def test_plain_random_split_for_other_targets(y):
    x = np.arange(20)[:, None]
    (xr, yr), (xh, yh) = split(x, y, 0.25, seed=0)
    assert len(xh) == 5 and len(xr) == 15 and yh.shape == (5, *y.shape[1:])
    np.testing.assert_array_equal(np.sort(np.concatenate([xr, xh])[:, 0]), np.arange(20))
    np.testing.assert_array_equal(yh, y[xh[:, 0]])
    np.testing.assert_array_equal(split(x, y, 0.25, seed=0)[1][0], xh)
    assert not np.array_equal(split(x, y, 0.25, seed=1)[1][0], xh)


def test_zero_fraction_and_jax_arrays():
    x, y = labelled([6, 4])
    (xr, yr), (xh, yh) = split(x, y, 0.0)
    np.testing.assert_array_equal(xr, x) and np.testing.assert_array_equal(yr, y)
    assert xh.shape == (0, 2) and yh.shape == (0,)
    (xr, _), (xh, yh) = split(jnp.asarray(x), jnp.asarray(y), 0.5)
    assert isinstance(xh, jnp.ndarray) and np.bincount(np.asarray(yh)).tolist() == [3, 2]


def test_errors():
    x, y = labelled([6, 4])
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"fraction must lie in \[0, 1\), got"):
            split(x, y, bad)
    with pytest.raises(ValueError, match="x has 10 examples but y has 9"):
        split(x, y[:9], 0.1)
    x7, y7 = labelled([2, 2, 1, 1, 1, 1, 2])
    with pytest.raises(ValueError, match="10 examples .* 1 to hold out, fewer than the 7 classes"):
        split(x7, y7, 0.1)
    with pytest.raises(ValueError, match="leave 1 to keep .* fewer than the 7 classes"):
        split(x7, y7, 0.9)


# --- load(name, split): 'validation' carved from the published training set ---

SIZES = {  # published train, train, validation, test at validation_fraction=0.1 (docs/data.md)
    "digits": (1437, 1293, 144, 360),
    "xor": (800, 720, 80, 200),
    "moons": (800, 720, 80, 200),
    "circles": (800, 720, 80, 200),
    "spirals": (800, 720, 80, 200),
    "mnist1d": (4000, 3600, 400, 1000),
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_documented_sizes(name, tmp_path):
    data_dir = str(tmp_path) if name == "mnist1d" else None
    published, n_train, n_val, n_test = SIZES[name]
    assert len(jdl.data.load(name, "train", data_dir, validation_fraction=0)[0]) == published
    assert len(jdl.data.load(name, "train", data_dir)[0]) == n_train
    assert len(jdl.data.load(name, "validation", data_dir)[1]) == n_val
    assert len(jdl.data.load(name, "test", data_dir)[0]) == n_test
    assert jdl.data.SPLITS == ("train", "validation", "test")


def test_digits_validation_is_a_stratified_part_of_the_published_train_set():
    x, y = jdl.data.load("digits", "train")
    xv, yv = jdl.data.load("digits", "validation")
    xp, yp = jdl.data.load("digits", "train", validation_fraction=0)
    rows = lambda a: {r.tobytes() for r in a.reshape(len(a), -1)}  # noqa: E731
    assert len(rows(xp)) == len(xp)  # no duplicate images, so rows identify examples
    assert not rows(x) & rows(xv)
    assert rows(x) | rows(xv) == rows(xp)
    assert not rows(xv) & rows(jdl.data.load("digits", "test")[0])
    np.testing.assert_array_equal(np.bincount(yv) + np.bincount(y), np.bincount(yp))
    expected = held_counts(np.bincount(yp), 144)
    np.testing.assert_array_equal(np.bincount(yv), expected)
    assert np.abs(np.bincount(yv) - 0.1 * np.bincount(yp)).max() < 1
    np.testing.assert_array_equal(jdl.data.load("digits", "validation")[0], xv)  # the same every call


def test_validation_fraction_changes_the_sizes():
    assert len(jdl.data.load("xor", "validation", validation_fraction=0.25)[0]) == 200
    assert len(jdl.data.load("xor", "train", validation_fraction=0.25)[0]) == 600
    assert len(jdl.data.load("xor", "test", validation_fraction=0.25)[0]) == 200


def test_file_based_sets_have_a_validation_split(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    labels = (np.arange(40) % 10).astype(np.uint8)
    write_split(tmp_path / "mnist", "train", images, labels)
    xv, yv = jdl.data.load("mnist", "validation", str(tmp_path), validation_fraction=0.25)
    x, y = jdl.data.load("mnist", "train", str(tmp_path), validation_fraction=0.25)
    assert xv.shape == (10, 28, 28, 1) and x.shape == (30, 28, 28, 1)
    assert sorted(yv.tolist()) == list(range(10))
    with pytest.raises(ValueError, match=r"load\('mnist', 'train'\): cannot hold out a validation set: .*"
                                         r"validation_fraction=0\) gives the whole published"):
        jdl.data.load("mnist", "train", str(tmp_path), validation_fraction=0.1)  # 4 held < 10 classes


def test_load_errors():
    with pytest.raises(ValueError, match=r"validation_fraction=0 holds out no validation set; .*"
                                         r"load\('digits', 'train', validation_fraction=0\)"):
        jdl.data.load("digits", "validation", validation_fraction=0)
    with pytest.raises(ValueError, match=r"validation_fraction must lie in \[0, 1\), got 1"):
        jdl.data.load("digits", "train", validation_fraction=1)
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'validation', 'test'\), got 'val'"):
        jdl.data.load("digits", "val")
