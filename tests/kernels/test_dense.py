"""jdl.kernels.dense: dense_xt equals jdl.nn.dense in value, reverse- and forward-mode
derivatives (float64, to rounding); its compiled weight gradient has no dot contracting the
token axis of the input (what XLA:CPU keeps out of YNNPACK); the GPT's ffn_impl='xt' gives the
default GPT's loss and gradients; unknown impls are refused by name."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.kernels.dense import dense_xt
from jdl.nn.feedforward import feed_forward
from jdl.nn.linear import dense
from tests.helpers import draw_normal


def case(dtype, lead=(2, 5), d_in=3, d_out=4):
    keys = jax.random.split(jax.random.key(0), 3)
    params = {"w": draw_normal(keys[0], (d_in, d_out), dtype), "b": draw_normal(keys[1], (d_out,), dtype)}
    return params, draw_normal(keys[2], (*lead, d_in), dtype)


def test_value_gradient_and_forward_mode_equal_the_plain_dense():
    with jax.enable_x64(True):
        params, x = case(jnp.float64)
        np.testing.assert_allclose(dense_xt(params, x), dense(params, x), rtol=1e-13)
        loss = lambda f: (lambda p, x: jnp.sum(jnp.sin(f(p, x))))
        got = jax.grad(loss(dense_xt), argnums=(0, 1))(params, x)
        want = jax.grad(loss(dense), argnums=(0, 1))(params, x)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
        tangents = jax.tree.map(jnp.cos, (params, x))
        y1, t1 = jax.jvp(dense_xt, (params, x), tangents)
        y0, t0 = jax.jvp(dense, (params, x), tangents)
        np.testing.assert_allclose(t1, t0, rtol=1e-12, atol=1e-14)
        # the weight gradient by hand: Σ_n x_n ⊗ ∂L/∂y_n
        dy = jnp.cos(dense(params, x)).reshape(-1, 4)
        np.testing.assert_allclose(got[0]["w"], x.reshape(-1, 3).T @ dy, rtol=1e-12)


def weight_gradient_dots(f, params, x):
    """The dot instructions of the compiled ∂L/∂w of L = Σ f(params, x)."""
    grad = jax.jit(jax.grad(lambda p, x: jnp.sum(f(p, x))))  # x an argument: no constant folding
    return [line for line in grad.lower(params, x).compile().as_text().splitlines() if " dot(" in line]


def test_the_compiled_weight_gradient_contracts_the_last_axis_of_a_transposed_copy():
    params, x = case(jnp.float32, lead=(64,), d_in=32, d_out=48)
    plain = weight_gradient_dots(dense, params, x)
    assert any("lhs_contracting_dims={0}" in line for line in plain)  # what the kernel avoids
    assert not any("lhs_contracting_dims={0}" in line for line in weight_gradient_dots(dense_xt, params, x))


def test_gpt_with_ffn_impl_xt_gives_the_default_loss_and_gradients():
    from jdl.losses import softmax_cross_entropy
    from jdl.models.gpt import GPTConfig, gpt

    ids = jax.random.randint(jax.random.key(1), (2, 8), 0, 11)
    models = [gpt(GPTConfig(vocab_size=11, context=8, num_layers=1, d_model=8, num_heads=2, ffn_impl=impl))
              for impl in ("xla", "xt")]
    params, state = models[0].init(jax.random.key(2), ids)

    def loss(model):
        return jax.jit(jax.value_and_grad(lambda p: softmax_cross_entropy(model.apply(p, state, ids)[0], ids)))

    (l0, g0), (l1, g1) = loss(models[0])(params), loss(models[1])(params)
    np.testing.assert_allclose(l1, l0, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g0)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_unknown_impls_are_refused_by_name():
    from jdl.models.gpt import GPTConfig

    params, x = case(jnp.float32)
    with pytest.raises(ValueError, match="feed_forward: impl must be one of"):
        feed_forward({"fc1": params, "fc2": params}, x, impl="cublas")
    with pytest.raises(ValueError, match="GPTConfig: ffn_impl must be one of"):
        GPTConfig(vocab_size=11, context=8, num_layers=1, d_model=8, num_heads=2, ffn_impl="fast")
