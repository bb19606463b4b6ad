import numpy as np

from experiments import in_context


def test_quick_run_trains_and_sets_the_transformer_beside_the_baselines(tmp_path):
    r = in_context.run(str(tmp_path), quick=True)
    c, curves = r["config"], r["curves"]
    assert set(curves) == {"Transformer", "least squares", "averaging", "3-nearest neighbours", "zero (ŷ = 0)"}
    ls = np.array(curves["least squares"]["mean"])
    # noiseless least squares: error (d − k)/d below d examples, 0 from k = d on
    np.testing.assert_allclose(ls[1:c["d"]], [(c["d"] - k) / c["d"] for k in range(1, c["d"])], atol=0.15)
    assert np.all(ls[c["d"]:] < 1e-3)
    assert np.allclose(curves["zero (ŷ = 0)"]["mean"], 1.0, atol=0.2)  # E[y²]/d = 1
    err = r["training"]["curve"]["error"]
    assert r["training"]["curve"]["step"][-1] == c["steps"] and err[-1] < err[0]  # it learns something
    assert len(r["table"]) == c["n_points"] and r["table"][3]["least squares"] == ls[3]
    assert (tmp_path / "results.json").exists() and (tmp_path / "in_context.png").exists()
