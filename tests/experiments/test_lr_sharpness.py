import jax
import jax.numpy as jnp
import numpy as np

from experiments import lr_sharpness


def _quadratic():
    """L(θ) = ½ θᵀAθ over a pytree {'a': (3,), 'b': (2,)} with A = Q diag(λ) Qᵀ, λ known."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    lam = np.array([7.0, 3.0, 1.0, 0.5, 0.1])
    a = jnp.asarray(q @ np.diag(lam) @ q.T, jnp.float32)

    def loss(t):
        th = jnp.concatenate([t["a"], t["b"]])
        return 0.5 * th @ a @ th

    theta = {"a": jnp.asarray(rng.normal(size=3), jnp.float32), "b": jnp.asarray(rng.normal(size=2), jnp.float32)}
    return loss, theta, a, lam


def test_hvp_and_top_eigenvalue_match_the_closed_form_hessian():
    loss, theta, a, lam = _quadratic()
    v = {"a": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.3, 4.0])}
    hv = lr_sharpness.hvp(loss, theta, v)
    np.testing.assert_allclose(np.concatenate([hv["a"], hv["b"]]), np.asarray(a) @ np.concatenate([v["a"], v["b"]]),
                               rtol=1e-5, atol=1e-5)
    assert abs(lr_sharpness.top_eigenvalue(loss, theta, jax.random.key(0), iters=100) - lam[0]) < 1e-3


def test_perturbed_increase_matches_the_quadratic_average():
    """At the minimum θ = 0, L(ρu) = ½ρ² uᵀAu and E[uᵀAu] = tr A / d for u uniform on the sphere."""
    loss, theta, a, lam = _quadratic()
    zero = jax.tree.map(jnp.zeros_like, theta)
    got = lr_sharpness.perturbed_increase(loss, zero, jax.random.key(1), radius=2.0, samples=1000)
    np.testing.assert_allclose(got, 0.5 * 4.0 * lam.sum() / 5, rtol=0.08)
