import json

import numpy as np
import pytest

from experiments import active_learning


def test_choose_entropy_picks_the_most_uncertain_and_random_is_seeded():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [0.9, 0.1], [0.6, 0.4]])
    np.testing.assert_allclose(active_learning.entropy(p), [0, np.log(2), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)),
                                                            -(0.6 * np.log(0.6) + 0.4 * np.log(0.4))])
    assert list(active_learning.choose("entropy", p, 2, None)) == [1, 3]
    assert list(active_learning.choose("least_confidence", p, 2, None)) == [1, 3]
    a = active_learning.choose("random", p, 2, np.random.default_rng(0))
    assert list(a) == list(active_learning.choose("random", p, 2, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="unknown strategy 'margin'"):
        active_learning.choose("margin", p, 2, None)


def test_quick_run_asks_for_the_uncertain_examples(tmp_path):
    out = active_learning.run(str(tmp_path), quick=True)
    for s in active_learning.STRATEGIES:
        rows = out["curves"][s][0]
        assert [r["labels"] for r in rows] == [20, 40]
        assert rows[-1]["validation_accuracy"] > rows[0]["validation_accuracy"]  # more labels help
    ent, rnd = out["curves"]["entropy"][0], out["curves"]["random"][0]
    assert ent[0]["test_accuracy"] == rnd[0]["test_accuracy"]  # the same 20 starting labels
    assert ent[0]["picked_entropy"] > 1.5 * ent[0]["pool_entropy"]  # it asks where the model is unsure
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["summary"]["entropy"]["labels"] == [20, 40]
