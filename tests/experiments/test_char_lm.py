import math

import numpy as np

from experiments import char_lm


def test_quick_run_learns_writes_samples_and_scores_the_baselines(tmp_path):
    r = char_lm.run(str(tmp_path), quick=True)
    lm, base, config = r["lm"], r["baselines"], r["config"]
    log2_v = math.log2(r["data"]["vocab_size"])
    # two epochs on 192 windows: still far from the bigram, but learning and below the uniform's log₂ V
    assert lm["validation_bpc"][1] < lm["validation_bpc"][0] < log2_v + 0.1
    assert lm["test_bpc"] < log2_v and np.isfinite(lm["carried_test_bpc"])
    bigram_kn = base["bigram, Kneser–Ney (d = 0.75)"]
    assert bigram_kn["test_bpc"] < base["bigram, add-one"]["test_bpc"] < base["unigram (add-one)"]["test_bpc"] < log2_v
    assert [s["epoch"] for s in lm["samples"]] == [1, 2]
    for sample in lm["samples"]:
        for tau in ("0.5", "1.0"):
            assert sample[tau].startswith(config["prompt"])
            assert len(sample[tau]) == len(config["prompt"]) + config["sample_len"]
    assert (tmp_path / "results.json").exists() and (tmp_path / "char_lm.png").exists()
