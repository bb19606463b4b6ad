"""benchmarks.bpe_train in quick mode: the figures it writes are consistent, and its recounting
reference learns the merges train_bpe learns incrementally (nothing about time is asserted)."""

import json

from benchmarks import bpe_train
from jdl.data import bpe


def test_quick_run_writes_consistent_figures(tmp_path):
    results = bpe_train.run(str(tmp_path), quick=True)
    row = results["merges"][256]
    assert results["recount_merges_agree"] is True
    assert row["train_cpu_s"] > 0 and row["encode_validation_cpu_s"] > 0
    valid = bpe.pydoc_split_text("validation")
    assert results["validation_bytes"] == len(valid.encode())
    tok = bpe.train_bpe(bpe.pydoc_split_text("train"), 256)
    assert row["bytes_per_token_validation"] == len(valid.encode()) / len(bpe.encode(tok, valid))
    assert json.loads((tmp_path / "results.json").read_text())["merges"]["256"] == row
