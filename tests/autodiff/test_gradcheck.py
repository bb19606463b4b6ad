import jax
import jax.numpy as jnp
import pytest

from jdl.autodiff import check_grads, compare_grads, grad_report


def test_per_leaf_report_finds_the_wrong_leaf():
    params = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.3)}

    def loss(p):
        return jnp.sum(jnp.tanh(p["w"] * 1.5 + p["b"]) ** 2)

    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        errors = check_grads(loss, params)
        assert set(errors) == {"['b']", "['w']"} and max(errors.values()) < 1e-8
        wrong = dict(jax.grad(loss)(params), b=jnp.array(0.0))  # a gradient with a bug in b
        bad = compare_grads(wrong, jax.grad(loss)(params))
    assert bad["['b']"] == pytest.approx(1.0) and bad["['w']"] == 0.0
    report = grad_report(bad, tol=1e-9)
    assert report.splitlines()[1].startswith("['b']") and report.splitlines()[1].endswith("FAIL")
    assert report.endswith("1 of 2 leaves above 1e-09")


def test_compare_grads_needs_the_same_structure():
    with pytest.raises(ValueError, match="different structures"):
        compare_grads({"w": jnp.ones(2)}, {"v": jnp.ones(2)})
