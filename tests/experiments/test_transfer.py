import json

import numpy as np

from experiments import transfer


def test_per_class_takes_n_of_each_class():
    y = np.repeat(np.arange(5), 20).astype(np.int32)
    x = np.arange(100, dtype=np.float32)
    xs, ys = transfer.per_class(x, y, 3, seed=0)
    assert np.bincount(ys).tolist() == [3] * 5 and np.array_equal(y[xs.astype(int)], ys)
    assert len(transfer.per_class(x, y, "all", 0)[0]) == 100


def test_quick_run_writes_the_table(tmp_path):
    r = transfer.run(str(tmp_path), quick=True)
    assert set(r["table"]) == {"probe/10", "lora/10"}
    for row in r["table"].values():
        assert 0.0 <= row["test_mean"] <= 1.0 and len(row["test_accuracy"]) == 1
    assert r["n_target"]["test"] == 187 and r["source_validation_accuracy"][0] > 0.2  # 5 classes: chance 0.2
    assert json.loads((tmp_path / "results.json").read_text())["labels"] == [10]
    assert (tmp_path / "transfer.png").exists()
