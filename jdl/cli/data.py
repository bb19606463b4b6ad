"""``jdl data download NAME``, and the train/validation/test splits that ``jdl train`` loads."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from absl import app

Data = tuple[np.ndarray, np.ndarray]


def load_data(name: str, split: str, data_dir: str | None = None, **kwargs) -> Data:
    """``jdl.data.load(name, split, data_dir)``; missing or corrupt files become a usage error
    that says which files to put where."""
    from jdl import data

    try:
        return data.load(name, split, data_dir=data_dir, **kwargs)
    except (FileNotFoundError, data.DataFileError) as e:
        raise app.UsageError(str(e)) from None


def first(split: Data, n: int | None) -> Data:
    """The first ``n`` examples of ``split`` (all of it when n is None): ``--train_size``."""
    return split if n is None else (split[0][:n], split[1][:n])


def load_splits(name: str, data_dir: str | None, fraction: float,
                seq_len: int | None = None, train_size: int | None = None) -> tuple[Data, Data | None, Data]:
    """``(train, validation, test)`` of data set ``name``: validation is a stratified, seeded
    ``fraction`` of the published training set (None when fraction is 0), train the rest
    (``jdl.data.load``'s 'train' and 'validation' splits), its first ``train_size`` examples when
    given; a text set's windows have length ``seq_len`` (its default when None)."""
    kw = {} if seq_len is None else {"seq_len": seq_len}
    train = first(load_data(name, "train", data_dir, validation_fraction=fraction, **kw), train_size)
    validation = load_data(name, "validation", data_dir, validation_fraction=fraction, **kw) if fraction else None
    return train, validation, load_data(name, "test", data_dir, **kw)


def data_command(args: Sequence[str], data_dir: str | None) -> None:
    """``jdl data download NAME``: fetch NAME's published files into the data root and verify
    them (the only jdl command that uses the network; nothing else downloads)."""
    from jdl import data
    from jdl.data.fetch import DOWNLOADABLE

    if len(args) != 2 or args[0] != "download":
        raise app.UsageError(f"jdl data: expected `jdl data download NAME` with NAME one of "
                             f"{', '.join(DOWNLOADABLE)}; got {' '.join(args) or 'nothing'}")
    try:
        data.download(args[1], data_dir)
    except (ValueError, OSError) as e:
        raise app.UsageError(f"jdl data download {args[1]}: {e}") from None
