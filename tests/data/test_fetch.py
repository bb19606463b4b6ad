"""`download` with an injected fetch: no network, but the real verification and placement."""

import gzip
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

import jdl
from jdl.data import fetch
from jdl.data.files import DataFileError
from tests.data.test_mnist_idx import idx_bytes


def fake_mnist_files():
    rng = np.random.default_rng(1)
    files = {}
    for prefix, n in (("train", 4), ("t10k", 3)):
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(np.arange(n, dtype=np.uint8)))
    return files


def with_checksums(monkeypatch, name, contents):
    sub, entries = fetch.SOURCES[name]
    entries = [(url, f, hashlib.md5(contents[f]).hexdigest()) for url, f, _ in entries]
    monkeypatch.setitem(fetch.SOURCES, name, (sub, entries))


def serve(contents, calls):
    def fake_fetch(url, path):
        calls.append(url)
        with open(path, "wb") as f:
            f.write(contents[url.rsplit("/", 1)[1]])
    return fake_fetch


def test_download_places_verified_files_where_the_loader_reads(tmp_path, monkeypatch):
    contents = fake_mnist_files()
    with_checksums(monkeypatch, "mnist", contents)
    calls = []
    folder = jdl.data.download("mnist", str(tmp_path), fetch=serve(contents, calls), log=lambda s: None)
    assert folder == os.path.join(str(tmp_path), "mnist") and len(calls) == 4
    x, y = jdl.data.load("mnist", "test", data_dir=str(tmp_path))
    assert x.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(y, [0, 1, 2])
    jdl.data.download("mnist", str(tmp_path), fetch=serve(contents, calls), log=lambda s: None)
    assert len(calls) == 4  # verified files already there are not fetched again


def test_published_checksums_refuse_anything_else(tmp_path):
    contents = fake_mnist_files()  # not the published bytes: the real MD5s cannot match
    with pytest.raises(DataFileError, match=r"train-images-idx3-ubyte.gz has MD5 [0-9a-f]{32}, expected "
                                            r"f68b3c2dcbeaaa9fbdd348bbdeb94873; nothing was kept"):
        jdl.data.download("mnist", str(tmp_path), fetch=serve(contents, []), log=lambda s: None)
    assert os.listdir(tmp_path / "mnist") == []


def test_cifar_archive_is_unpacked_and_checked(tmp_path, monkeypatch):
    data = np.arange(2 * 3072, dtype=np.int64).reshape(2, 3072).astype(np.uint8)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            raw = pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    contents = {"cifar-10-python.tar.gz": buf.getvalue()}
    with_checksums(monkeypatch, "cifar10", contents)
    jdl.data.download("cifar10", str(tmp_path), fetch=serve(contents, []), log=lambda s: None)
    x, y = jdl.data.load("cifar10", "train", data_dir=str(tmp_path), validation_fraction=0)
    assert x.shape == (10, 32, 32, 3) and list(y[:2]) == [3, 4]


def test_unknown_name(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'imagenet'; downloadable: cifar10, fashion_mnist, mnist, mnist1d"):
        jdl.data.download("imagenet", str(tmp_path))
