import numpy as np

from experiments import distill


def test_packed_targets_give_the_distillation_loss():
    import jax.numpy as jnp

    from jdl.losses import distillation, softmax_cross_entropy
    rng = np.random.default_rng(0)
    s, t, y = rng.normal(size=(4, 10)), rng.normal(size=(4, 10)), rng.integers(0, 10, 4)
    packed = jnp.asarray(distill.pack(t.astype(np.float32), y))
    assert packed.shape == (4, 11)
    np.testing.assert_allclose(distill.distill_loss(jnp.asarray(s), packed),
                               distillation(jnp.asarray(s), jnp.asarray(t), jnp.asarray(y), distill.TEMPERATURE,
                                            distill.ALPHA), rtol=1e-6)
    np.testing.assert_allclose(distill.label_loss(jnp.asarray(s), packed, reduction="none"),
                               softmax_cross_entropy(jnp.asarray(s), jnp.asarray(y), reduction="none"), rtol=1e-6)


def test_quick_run(tmp_path):
    r = distill.run(str(tmp_path), quick=True)
    students = r["runs"][0]["fraction_1"]
    assert students["labels"]["params"] == students["distilled"]["params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert 0.1 < r["teacher"]["test_mean"] <= 1.0 and 0.0 <= r["table"]["distilled/1"]["test_mean"] <= 1.0
    assert (tmp_path / "distill.png").exists() and (tmp_path / "results.json").exists()
