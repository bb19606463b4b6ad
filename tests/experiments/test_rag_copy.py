import numpy as np

from experiments import rag_copy


def test_quick_copy_probe_trains_both_position_variants(tmp_path):
    r = rag_copy.run(str(tmp_path), quick=True)
    assert set(r["variants"]) == {"learned, base 10000, 4 heads", "rotary, base 10000, 4 heads",
                                  "rotary, base 10000, 4 heads, 2 previous-token embeddings"}
    for name, v in r["variants"].items():
        assert len(v["stage_nats"]) == len(v["full_nats"]) == 1, name
        # 4 steps from GPT-2's initialization: still about a uniform guess over the ~100 characters
        assert 2.0 < v["stage_nats"][0] < np.log(120) and 2.0 < v["full_nats"][0] < np.log(120), name
    assert (tmp_path / "results.json").exists() and (tmp_path / "rag_copy.png").exists()


def test_random_letter_passages_end_each_word_with_a_character_to_copy():
    import re

    from experiments.rag_reader import random_letter_passages

    texts = random_letter_passages(np.random.default_rng(0), 50, 40)
    for t in texts:
        assert re.fullmatch(r"[a-z]{2,10}( [a-z]{2,10})*\.", t) and 29 <= len(t) <= 50, t
