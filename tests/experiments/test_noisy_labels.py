import json

import numpy as np

from experiments import noisy_labels


def test_corrupt_is_symmetric_noise_of_the_given_rate():
    y = np.repeat(np.arange(10), 2000).astype(np.int32)
    all_flipped = noisy_labels.corrupt(y, 1.0, seed=0)
    assert np.all(all_flipped != y)
    # every wrong class equally likely: 2000 per true class spread over 9 others ≈ 222 each
    counts = np.bincount(all_flipped[y == 3], minlength=10)
    assert counts[3] == 0 and np.all(np.abs(counts[np.arange(10) != 3] - 2000 / 9) < 60)
    assert abs(np.mean(noisy_labels.corrupt(y, 0.4, seed=1) != y) - 0.4) < 0.02
    assert np.array_equal(noisy_labels.corrupt(y, 0.0, seed=2), y)


def test_quick_run_with_40_percent_noise(tmp_path):
    out = noisy_labels.run(str(tmp_path), quick=True)
    for loss in ("ce", "gce"):
        row = out["table"][f"noise=0.4/{loss}/clean"]
        run = row["runs"][0]
        assert abs(run["actual_noise"] - 0.4) < 0.04
        assert 0.7 < row["early_stopped_test"]["mean"] <= 1.0  # far above the 60% of labels left right
        assert run["early_stopped_test"] >= run["test_curve"][run["best_epoch"] - 1] - 1e-9  # the restored epoch
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["q"] == 0.7 and set(saved["table"]) == {"noise=0.4/ce/clean", "noise=0.4/gce/clean"}
