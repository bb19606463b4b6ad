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


def stratified_split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0) -> tuple[Data, Data]:
    """``(train, validation)``: round(fraction·N) examples held out, drawn in proportion to each
    class (examples grouped by label, shuffled within it with ``seed``, every (1/fraction)-th
    taken), at least one when fraction > 0; the rest stay in order."""
    n = len(x)
    n_val = min(n - 1, max(1, round(fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    order = order[np.argsort(y[order], kind="stable")]  # grouped by class, shuffled within
    held = np.zeros(n, bool)
    held[order[(np.arange(n_val) * n) // n_val]] = True
    return (x[~held], y[~held]), (x[held], y[held])


def load_splits(name: str, data_dir: str | None, fraction: float) -> tuple[Data, Data | None, Data]:
    """``(train, validation, test)`` of data set ``name``: validation is a stratified, seeded
    ``fraction`` of the published training set (None when fraction is 0), train the rest."""
    from jdl import data

    if hasattr(data, "split"):  # jdl.data carves the validation split itself (0: none)
        train = load_data(name, "train", data_dir, validation_fraction=fraction)
        validation = load_data(name, "validation", data_dir, validation_fraction=fraction) if fraction else None
    elif fraction:
        train, validation = stratified_split(*load_data(name, "train", data_dir), fraction)
    else:
        train, validation = load_data(name, "train", data_dir), None
    return train, validation, load_data(name, "test", data_dir)


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
