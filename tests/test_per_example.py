"""Per-example gradients: the outer-product fast path equals jit(vmap(grad)) and a Python loop
of single-example gradients (an independent reference), with and without a donated ``out``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.losses import mse, softmax_cross_entropy
from jdl.per_example import per_example_grads, per_example_loss, supports_fast_path, vmap_grads
from tests.helpers import assert_close, draw_normal


def loop_grads(model, loss_fn, params, state, x, y):
    """The slow, obvious reference: one jax.grad per example, stacked."""
    grad = jax.grad(per_example_loss(model, loss_fn))
    per = [grad(params, state, x[i], y[i]) for i in range(x.shape[0])]
    return jax.tree.map(lambda *gs: jnp.stack(gs), *per)


@pytest.fixture(scope="module")
def mlp_case():
    model = jdl.models.mlp([16, 12, 5])
    x = draw_normal(jax.random.key(1), (6, 3, 4))  # flattened to (6, 12) by the MLP
    y = jax.random.randint(jax.random.key(2), (6,), 0, 5)
    params, state = model.init(jax.random.key(0), x)
    return model, params, state, x, y


def test_mlp_fast_path_equals_vmap_grad_and_loop(mlp_case):
    model, params, state, x, y = mlp_case
    assert supports_fast_path(model, params)
    fast = per_example_grads(model, softmax_cross_entropy, params)(params, state, x, y)
    ref = vmap_grads(model, softmax_cross_entropy)(params, state, x, y)
    assert fast["1_dense"]["w"].shape == (6, 12, 16)
    assert_close(fast, ref, rtol=1e-5, atol=1e-6)
    assert_close(fast, loop_grads(model, softmax_cross_entropy, params, state, x, y), rtol=1e-5, atol=1e-6)
    # The mean of the per-example gradients is the ordinary minibatch gradient.
    batch = jax.grad(lambda p: softmax_cross_entropy(model.apply(p, state, x)[0], y))(params)
    assert_close(jax.tree.map(lambda g: g.mean(0), fast), batch, rtol=1e-5, atol=1e-6)


def test_out_buffer_is_reused_and_gives_the_same_values(mlp_case):
    model, params, state, x, y = mlp_case
    grads = per_example_grads(model, softmax_cross_entropy, params)
    first = grads(params, state, x, y)
    expected = jax.tree.map(np.asarray, first)
    x2 = x[::-1]
    second = grads(params, state, x2, y[::-1], out=first)  # first is donated
    assert_close(second, jax.tree.map(lambda g: g[::-1], expected), rtol=1e-5, atol=1e-6)


def test_sequence_inputs_sum_over_time():
    """Dense on (B, T, d): ∂ℓ_i/∂W = Σ_t a_it ⊗ δ_it, ℓ_i the mean over the example's T steps."""
    model = jdl.models.mlp([7, 3], flatten=False)
    x = draw_normal(jax.random.key(3), (4, 5, 6))
    y = draw_normal(jax.random.key(4), (4, 5, 3))
    params, state = model.init(jax.random.key(0), x)
    fast = per_example_grads(model, mse, params)(params, state, x, y)
    assert_close(fast, loop_grads(model, mse, params, state, x, y), rtol=1e-5, atol=1e-6)


def test_lone_dense_and_fallback_for_other_models():
    x = draw_normal(jax.random.key(5), (3, 4))
    y = draw_normal(jax.random.key(6), (3, 2))
    dense = jdl.nn.Dense(2)
    p, s = dense.init(jax.random.key(0), x)
    assert_close(per_example_grads(dense, mse, p)(p, s, x, y), loop_grads(dense, mse, p, s, x, y))
    other = jdl.nn.serial(jdl.nn.Dense(4), jdl.nn.PReLU(), jdl.nn.Dense(2))  # PReLU has params
    p, s = other.init(jax.random.key(0), x)
    assert not supports_fast_path(other, p)
    assert_close(per_example_grads(other, mse, p)(p, s, x, y), loop_grads(other, mse, p, s, x, y))
