import numpy as np

from experiments import seeds


def test_two_seeds_reach_different_minima_of_similar_loss(tmp_path):
    r = seeds.run(str(tmp_path), quick=True, seeds=2)
    pair = r["pairs"]["0-1"]
    # the line's ends are the two minima's own training losses (numpy reference below)
    np.testing.assert_allclose([pair["line"][0], pair["line"][-1]], r["train_loss"], rtol=1e-5)
    assert pair["param_distance"] > 0.5  # far apart in parameter space ...
    assert abs(r["train_loss"][0] - r["train_loss"][1]) < 0.1 and min(r["test_accuracy"]) > 0.9  # ... equally good
    assert pair["barrier"] > 0  # and separated by a bump in the loss
    assert pair["grid_disagreement"] >= pair["test_disagreement"]
    assert (tmp_path / "seeds_boundaries.png").exists()


def test_softmax_cross_entropy_of_the_interpolation_against_numpy():
    import jax

    import jdl

    model = jdl.models.mlp([3, 2])
    p0, _ = model.init(jax.random.key(0), np.zeros((1, 2), np.float32))
    p1, _ = model.init(jax.random.key(1), np.zeros((1, 2), np.float32))
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    y = np.array([0, 1, 1, 0, 1])
    got = seeds.interpolation_losses(model, p0, p1, x, y, ts=[0.5])[0]
    p = {k: {n: 0.5 * (np.asarray(p0[k][n]) + np.asarray(p1[k][n])) for n in p0[k]} for k in p0 if p0[k]}
    (l0, l1) = sorted(p)
    h = np.maximum(x @ p[l0]["w"] + p[l0]["b"], 0)
    z = h @ p[l1]["w"] + p[l1]["b"]
    z = z - z.max(1, keepdims=True)
    want = -np.mean(z[np.arange(5), y] - np.log(np.exp(z).sum(1)))
    np.testing.assert_allclose(got, want, rtol=1e-5)
