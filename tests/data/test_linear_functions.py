import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.data.linear_functions import interleave, linear_function_prompts


def test_y_is_w_dot_x_and_inactive_coordinates_are_zero():
    xs, ys, w = linear_function_prompts(jax.random.key(0), 4, 6, 5, d_active=3)
    xs, ys, w = map(np.asarray, (xs, ys, w))
    assert xs.shape == (4, 6, 5) and ys.shape == (4, 6) and w.shape == (4, 5)
    np.testing.assert_allclose(ys, np.stack([xs[b] @ w[b] for b in range(4)]), rtol=1e-5, atol=1e-6)
    assert np.all(xs[..., 3:] == 0) and np.all(xs[..., :3] != 0)


def test_draws_are_standard_normal():
    xs, _, w = linear_function_prompts(jax.random.key(1), 2000, 8, 5)
    assert abs(float(jnp.mean(xs))) < 0.02 and abs(float(jnp.var(xs)) - 1) < 0.03
    assert abs(float(jnp.var(w)) - 1) < 0.06


def test_interleave_places_x_then_y():
    xs = jnp.arange(12.0).reshape(1, 4, 3)
    ys = jnp.array([[10.0, 20.0, 30.0, 40.0]])
    z = np.asarray(interleave(xs, ys))
    assert z.shape == (1, 8, 4)
    np.testing.assert_array_equal(z[0, ::2, :3], np.asarray(xs[0]))
    np.testing.assert_array_equal(z[0, 1::2, 3], [10, 20, 30, 40])
    assert np.all(z[0, ::2, 3] == 0) and np.all(z[0, 1::2, :3] == 0)
    with pytest.raises(ValueError, match="interleave: expected xs"):
        interleave(xs, ys[:, :3])
