import math

import numpy as np

from experiments import char_lm, gpt_text


def test_quick_run_learns_samples_and_scores_on_char_lms_test_windows(tmp_path):
    r = gpt_text.run(str(tmp_path), quick=True)
    gpt, config = r["gpt"], r["config"]
    assert set(gpt) == {"curve", "epochs", "samples", "test_bpc", "test_accuracy", "params_count", "steps",
                        "steps_per_epoch", "wall_seconds"}  # train's docstring (no params: JSON) + run's timing
    assert set(gpt["curve"]) == {"step", "validation_bpc", "train_bpc"} and gpt["params_count"] > 0
    log2_v = math.log2(r["data"]["vocab_size"])
    curve = gpt["curve"]["validation_bpc"]
    # GPT-2's N(0, 0.02²) init spreads the probability evenly: log₂ V before the first step
    assert abs(curve[0] - log2_v) < 0.05
    # 12 steps: over a bit and a half below the uniform, falling at every epoch's end
    assert curve[-1] < log2_v - 1.5 and gpt["test_bpc"] < log2_v - 1.5
    ends = [e["validation_bpc"] for e in gpt["epochs"]]
    assert ends[1] < ends[0] < curve[0]
    assert gpt["curve"]["step"] == [0, 4, 6, 8, 12] and gpt["steps"] == 2 * gpt["steps_per_epoch"]
    assert [s["epoch"] for s in gpt["samples"]] == [1, 2]
    for sample in gpt["samples"]:
        for name in gpt_text.SAMPLERS:
            assert sample[name].startswith(config["prompt"])
            assert len(sample[name]) == len(config["prompt"]) + config["sample_len"]
    rows = {row["model"].split()[0]: row["test_bpc"] for row in r["table"]}
    assert rows["GPT"] == gpt["test_bpc"] and rows["LSTM"] == r["lstm"]["test_bpc"] and "bigram," in rows
    assert (tmp_path / "results.json").exists() and (tmp_path / "gpt_text.png").exists()


def test_validation_and_test_windows_are_char_lms():
    ours = gpt_text.load_windows(gpt_text.QUICK)
    theirs = char_lm.load_windows(char_lm.QUICK)  # the same seq_len (32) and windows limit
    for split in ("validation", "test"):
        for a, b in zip(ours[split], theirs[split]):
            np.testing.assert_array_equal(a, b)
    # the training windows overlap (stride 16): window i + 1 starts 16 characters after window i
    x = ours["train"][0]
    np.testing.assert_array_equal(x[1, :16], x[0, 16:])
