from experiments import initialization


def test_symmetry_problem_and_variance_preserving_inits(tmp_path):
    r = initialization.run(str(tmp_path), quick=True, depth=3, width=32)["runs"]
    for act in ("tanh", "relu"):
        # all-zeros (or any constant): every hidden unit of a layer stays identical after training —
        # up to float rounding: a matmul kernel may sum identical columns in different orders
        # (a tile's edge), which leaves ~1e-10 where the symmetric units' weights are O(0.1)
        assert r[f"{act}/zeros"]["unit_spread_after_training"] < 1e-6
        assert r[f"{act}/constant"]["unit_spread_after_training"] < 1e-6
        assert r[f"{act}/small_normal"]["unit_spread_after_training"] > 1e-3
        # small weights: the signal shrinks by an order of magnitude or more per layer
        std = r[f"{act}/small_normal"]["act_std"]
        assert std[-1] < 1e-2 * std[0]
    he = r["relu/he"]["act_std"]
    assert 0.3 < he[-1] / he[0] < 3  # He keeps ReLU activations at one scale
    assert r["relu/he"]["final_test_accuracy"] > r["relu/zeros"]["final_test_accuracy"] + 0.3
    assert r["tanh/xavier"]["final_test_accuracy"] > r["tanh/zeros"]["final_test_accuracy"] + 0.3
