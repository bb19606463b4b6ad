"""CIFAR-10 loader on tiny pickle batches written here in the published layout."""

import os
import pickle

import numpy as np
import pytest

import jdl
from jdl.data.files import DataFileError

TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def batch_bytes(data, labels, str_keys=False):
    """A batch as published: protocol 2, numpy's pre-2.0 module name (numpy.core), bytes keys
    (as a Python 3 pickle of them) or str keys (what a Python 2 pickle reads back as)."""
    keys = ("batch_label", "labels", "data", "filenames")
    keys = keys if str_keys else tuple(k.encode() for k in keys)
    batch = dict(zip(keys, (b"fake", [int(v) for v in labels], data, [b"x.png"] * len(labels))))
    return pickle.dumps(batch, protocol=2).replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def write_cifar(root, n=2, seed=0):
    folder = os.path.join(root, "cifar10", "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for i, name in enumerate(TRAIN + ["test_batch"]):
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(batch_bytes(data, labels, str_keys=i % 2 == 1))
        written[name] = (data, labels)
    return folder, written


def test_reads_batches_in_order_and_converts_planes_to_nhwc(tmp_path):
    folder, written = write_cifar(str(tmp_path))
    x, y = jdl.data.load("cifar10", "train", data_dir=str(tmp_path), validation_fraction=0)  # as published
    xt, yt = jdl.data.load("cifar10", "test", data_dir=str(tmp_path))
    assert x.shape == (10, 32, 32, 3) and xt.shape == (2, 32, 32, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(y, np.concatenate([written[n][1] for n in TRAIN]))
    np.testing.assert_array_equal(yt, written["test_batch"][1])
    data = written["data_batch_1"][0]
    # row = 1024 red, 1024 green, 1024 blue values, each 32×32 row-major: pixel (r, c) of channel k
    for r, c, k in [(0, 0, 0), (1, 2, 0), (31, 5, 1), (7, 31, 2)]:
        assert x[0, r, c, k] == data[0, k * 1024 + r * 32 + c] / np.float32(255)
    data3 = written["data_batch_3"][0]
    assert x[5, 4, 9, 2] == data3[1, 2 * 1024 + 4 * 32 + 9] / np.float32(255)


def test_missing_batches_say_where(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        jdl.data.load("cifar10", "test", data_dir=str(tmp_path))
    folder = os.path.join(str(tmp_path), "cifar10", "cifar-10-batches-py")
    assert f"missing {os.path.join(folder, 'test_batch')}" in str(e.value)
    assert "data_batch_1" in str(e.value) and "data_batch_5" in str(e.value)


@pytest.mark.parametrize("content, message", [
    (lambda good: good[:len(good) // 2], "not a readable CIFAR-10 pickle batch"),
    (lambda good: b"garbage", "not a readable CIFAR-10 pickle batch"),
    (lambda good: pickle.dumps([1, 2, 3]), "a CIFAR-10 batch is a dict, found list"),
    (lambda good: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "needs keys 'data' and 'labels'"),
    (lambda good: batch_bytes(np.zeros((2, 3000), np.uint8), [0, 1]), r"found uint8 \(2, 3000\)"),
    (lambda good: batch_bytes(np.zeros((2, 3072), np.float32), [0, 1]), r"found float32"),
    (lambda good: batch_bytes(np.zeros((2, 3072), np.uint8), [0, 1, 2]), r"2 images but labels of shape \(3,\)"),
    (lambda good: batch_bytes(np.zeros((2, 3072), np.uint8), [0, 10]), r"labels must lie in 0..9, found 0..10"),
    (lambda good: pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": ["cat", "dog"]}),
     r"labels must be integers, found <U3"),
])
def test_corrupt_batches_are_refused(tmp_path, content, message):
    folder, _ = write_cifar(str(tmp_path))
    path = os.path.join(folder, "test_batch")
    with open(path, "rb") as f:
        good = f.read()
    with open(path, "wb") as f:
        f.write(content(good))
    with pytest.raises(DataFileError, match=f"test_batch: .*{message}"):
        jdl.data.load("cifar10", "test", data_dir=str(tmp_path))


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickles_that_run_code_are_refused(tmp_path):
    folder, _ = write_cifar(str(tmp_path))
    with open(os.path.join(folder, "test_batch"), "wb") as f:
        pickle.dump({b"data": Exploit(), b"labels": [0]}, f)
    with pytest.raises(DataFileError, match=r"global (posix|os|nt)\.system is not allowed"):
        jdl.data.load("cifar10", "test", data_dir=str(tmp_path))
