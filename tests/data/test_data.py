import numpy as np
import pytest

import jdl


def test_digits_shapes_range_and_split():
    x, y = jdl.data.load("digits", "train")
    xv, _ = jdl.data.load("digits", "validation")
    xt, yt = jdl.data.load("digits", "test")
    assert x.shape == (1293, 8, 8, 1) and xv.shape == (144, 8, 8, 1) and xt.shape == (360, 8, 8, 1)
    assert x.dtype == np.float32 and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(y)) == set(range(10))
    from sklearn.datasets import load_digits
    assert len(x) + len(xv) + len(xt) == len(load_digits().target)
    x2, _ = jdl.data.load("digits", "train")
    np.testing.assert_array_equal(x, x2)


@pytest.mark.parametrize("name", ["xor", "moons", "circles", "spirals"])
def test_toy_sets(name):
    x, y = jdl.data.load(name, "train")
    xv, yv = jdl.data.load(name, "validation")
    xt, yt = jdl.data.load(name, "test")
    assert x.shape == (720, 2) and xv.shape == (80, 2) and xt.shape == (200, 2)
    assert set(np.unique(y)) == set(np.unique(yv)) == {0, 1}


def test_xor_labels():
    x, y = jdl.data.load("xor")
    np.testing.assert_array_equal(y, (np.sign(x[:, 0]) != np.sign(x[:, 1])).astype(np.int32))


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="unknown data set 'mnistt'; known: .*digits, .*mnist1d, .*xor"):
        jdl.data.load("mnistt")
    with pytest.raises(ValueError, match="split must be one of"):
        jdl.data.load("digits", "val")


def test_batches_are_seeded_shuffled_and_complete():
    x = np.arange(10)[:, None]
    y = np.arange(10)
    epoch0 = list(jdl.data.batches(x, y, 3, seed=1, epoch=0))
    assert len(epoch0) == 3 and all(b[0].shape == (3, 1) for b in epoch0)
    again = list(jdl.data.batches(x, y, 3, seed=1, epoch=0))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in epoch0]), np.concatenate([b[1] for b in again]))
    epoch1 = np.concatenate([b[1] for b in jdl.data.batches(x, y, 3, seed=1, epoch=1)])
    assert not np.array_equal(np.concatenate([b[1] for b in epoch0]), epoch1)
    full = np.concatenate([b[1] for b in jdl.data.batches(x, y, 3, seed=1, drop_remainder=False)])
    assert sorted(full) == list(range(10))
    resumed = list(jdl.data.batches(x, y, 3, seed=1, epoch=0, start=2))
    np.testing.assert_array_equal(resumed[0][1], epoch0[2][1])
    with pytest.raises(ValueError, match="x has 10 examples but y has 9"):
        next(jdl.data.batches(x, y[:9], 3))
