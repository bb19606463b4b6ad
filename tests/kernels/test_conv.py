"""jdl.kernels.conv: the shifted-sum kernel equals the plain definition (``jdl.nn.conv2d``, one
lax.conv_general_dilated, and a direct sum written here) in value, gradient and forward-mode
derivative, under jit and vmap; the 'auto' rule picks it only where it applies; no value-based
conditional is left in the traced program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.kernels.conv import MAX_C_IN, choose_conv_impl, fast_conv, shifted_conv2d
from jdl.nn import Conv2D, conv2d
from tests.helpers import assert_close, draw_normal

NHWC = ("NHWC", "HWIO", "NHWC")


def lax_conv(x, w, pads):
    return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=NHWC)


# (batch, C_in, kernel, pads): odd batch (the two tiles get a zero image), asymmetric padding
CASES = [(2, 1, (5, 5), ((2, 2), (2, 2))), (3, 3, (3, 2), ((0, 0), (0, 0))), (1, 2, (3, 3), ((1, 0), (0, 2)))]


@pytest.mark.parametrize("batch, c_in, kernel, pads", CASES)
def test_value_gradient_and_jvp_equal_lax(batch, c_in, kernel, pads):
    kx, kw, kg, kt = jax.random.split(jax.random.key(0), 4)
    x = draw_normal(kx, (batch, 7, 6, c_in))
    w = draw_normal(kw, (*kernel, c_in, 4))
    y = jax.jit(shifted_conv2d, static_argnums=2)(x, w, pads)
    np.testing.assert_allclose(y, lax_conv(x, w, pads), rtol=1e-5, atol=1e-5)
    # by definition, for one output: y[n, i, j, o] = Σ x_pad[n, i + a, j + b, c] w[a, b, c, o]
    xp = np.pad(np.asarray(x), ((0, 0), *pads, (0, 0)))
    ref = np.einsum("abc,abco->o", xp[-1, 1:1 + kernel[0], 2:2 + kernel[1]], np.asarray(w))
    np.testing.assert_allclose(y[-1, 1, 2], ref, rtol=1e-5, atol=1e-5)
    g = draw_normal(kg, y.shape)
    ours = jax.grad(lambda x, w: jnp.sum(jnp.tanh(shifted_conv2d(x, w, pads)) * g), (0, 1))(x, w)
    theirs = jax.grad(lambda x, w: jnp.sum(jnp.tanh(lax_conv(x, w, pads)) * g), (0, 1))(x, w)
    assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    dx, dw = draw_normal(kt, x.shape), draw_normal(kg, w.shape)
    ours = jax.jvp(lambda x, w: jnp.tanh(shifted_conv2d(x, w, pads)), (x, w), (dx, dw))
    theirs = jax.jvp(lambda x, w: jnp.tanh(lax_conv(x, w, pads)), (x, w), (dx, dw))
    assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    batched = jax.vmap(lambda x: shifted_conv2d(x, w, pads))(x[:, None])
    np.testing.assert_allclose(batched[:, 0], y, rtol=1e-5, atol=1e-5)


def test_gradients_match_finite_differences_in_float64():
    with jax.enable_x64(True):
        x = draw_normal(jax.random.key(1), (2, 5, 5, 1), jnp.float64)
        w = draw_normal(jax.random.key(2), (3, 3, 1, 2), jnp.float64)
        f = lambda w: jnp.sum(jnp.sin(shifted_conv2d(x, w, ((1, 1), (1, 1)))))
        g = jax.grad(f)(w)
        e = np.zeros(w.shape)
        e[1, 2, 0, 1] = 1e-6
        fd = (f(w + e) - f(w - e)) / 2e-6
        np.testing.assert_allclose(g[1, 2, 0, 1], fd, rtol=1e-7)


def test_the_auto_rule_reads_shapes_dtype_and_backend():
    assert choose_conv_impl((5, 5, 1, 6), (1, 1), (1, 1), 1, backend="cpu") == "shifted"
    assert choose_conv_impl((3, 3, MAX_C_IN, 8), (1, 1), (1, 1), 1, backend="cpu") == "shifted"
    assert choose_conv_impl((5, 5, 6, 16), (1, 1), (1, 1), 1, backend="cpu") == "xla"  # C_in = 6
    assert choose_conv_impl((3, 3, 1, 6), (2, 2), (1, 1), 1, backend="cpu") == "xla"  # strided
    assert choose_conv_impl((3, 3, 1, 6), (1, 1), (2, 2), 1, backend="cpu") == "xla"  # dilated
    assert choose_conv_impl((3, 3, 1, 6), (1, 1), (1, 1), 2, backend="cpu") == "xla"  # grouped
    assert choose_conv_impl((5, 5, 1, 6), (1, 1), (1, 1), 1, jnp.bfloat16, "cpu") == "xla"
    assert choose_conv_impl((5, 5, 1, 6), (1, 1), (1, 1), 1, backend="gpu") == "xla"
    assert choose_conv_impl((5, 1, 6), (1,), (1,), 1, backend="cpu") == "xla"  # 1-D


@pytest.fixture(scope="module")
def layer_case():
    x = draw_normal(jax.random.key(3), (3, 8, 8, 1))
    params, _ = Conv2D(4, 5).init(jax.random.key(4), x)
    params = {"w": params["w"], "b": jnp.arange(4.0)}
    return x, params


@pytest.mark.parametrize("impl", ["auto", "shifted"])
def test_conv2d_layer_impls_equal_the_definition(layer_case, impl):
    x, params = layer_case
    plain, fast = Conv2D(4, 5), Conv2D(4, 5, impl=impl)
    loss = lambda layer: lambda p, x: jnp.sum(jnp.tanh(layer.apply(p, {}, x)[0]) ** 2)
    assert_close(fast.apply(params, {}, x)[0], plain.apply(params, {}, x)[0], rtol=1e-5, atol=1e-5)
    assert_close(jax.grad(loss(fast), (0, 1))(params, x), jax.grad(loss(plain), (0, 1))(params, x),
                 rtol=1e-5, atol=1e-5)
    tangents = (jax.tree.map(jnp.ones_like, params), jnp.ones_like(x))
    assert_close(jax.jvp(loss(fast), (params, x), tangents), jax.jvp(loss(plain), (params, x), tangents),
                 rtol=1e-5, atol=1e-4)
    jaxpr = str(jax.make_jaxpr(lambda p, x: fast.apply(p, {}, x)[0])(params, x))
    assert "cond[" not in jaxpr  # no value-based branch
    assert str(jax.make_jaxpr(lambda x, w: conv2d(x, w, padding="SAME"))(x, params["w"])).count(
        "conv_general_dilated[") == 1  # the definition: one XLA convolution


def test_fast_conv_falls_back_and_refuses_what_it_cannot_compute(layer_case):
    x, params = layer_case
    w = params["w"]
    np.testing.assert_allclose(fast_conv(x, w, stride=2, padding="SAME"), conv2d(x, w, stride=2, padding="SAME"),
                               rtol=1e-6)  # 'auto' on a strided conv is lax's
    with pytest.raises(ValueError, match=r"conv2d: impl='shifted' needs .*stride \(2, 2\)"):
        fast_conv(x, w, stride=2, name="conv2d", impl="shifted")
    with pytest.raises(ValueError, match=r"Conv2D: impl must be one of \('xla', 'shifted', 'auto'\), got 'fast'"):
        Conv2D(4, 5, impl="fast")
