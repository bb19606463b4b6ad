import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn import ConvTranspose2D, conv2d, conv_transpose2d, conv_transpose_output_size
from tests.helpers import assert_init_shapes


@pytest.mark.torch
@pytest.mark.parametrize("k, stride, padding, output_padding, dilation", [
    (3, 1, 0, 0, 1), (3, 2, 1, 1, 1), (4, 2, 1, 0, 1), ((2, 3), (3, 2), (0, 1), (2, 0), 1), (3, 2, 1, 0, 2),
])
def test_conv_transpose2d_equals_torch(k, stride, padding, output_padding, dilation):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    kk = (k, k) if isinstance(k, int) else k
    x = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    w = rng.normal(size=(*kk, 3, 2)).astype(np.float32)
    b = rng.normal(size=(2,)).astype(np.float32)
    ref = torch.nn.functional.conv_transpose2d(
        torch.tensor(x.transpose(0, 3, 1, 2)), torch.tensor(w.transpose(2, 3, 0, 1)), torch.tensor(b),
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)
    y = conv_transpose2d(x, w, b, stride, padding, output_padding, dilation)
    np.testing.assert_allclose(y, ref.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x, w), y> = <x, conv_transpose(y, w)> for the same kernel, stride and padding
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(1, 8, 8, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, 3, 2)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(1, 4, 4, 2)), jnp.float32)
    lhs = jnp.sum(conv2d(x, w, stride=2, padding=1) * y)
    w_t = w.transpose(0, 1, 3, 2)  # the transpose maps C_out -> C_in
    rhs = jnp.sum(x * conv_transpose2d(y, w_t, stride=2, padding=1, output_padding=1))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4)


def test_conv_transpose_module_doubles_size(key):
    params, _, y = assert_init_shapes(ConvTranspose2D(5, 4, stride=2, padding=1), jnp.ones((2, 3, 3, 4)), key)
    assert params["w"].shape == (4, 4, 4, 5) and y.shape == (2, 6, 6, 5)
    assert conv_transpose_output_size(3, 4, 2, 1) == 6
    assert conv_transpose_output_size(4, 3, 2, 1, 1) == 8


def test_conv_transpose_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        t = {"x": jnp.asarray(rng.normal(size=(1, 3, 2, 2))), "w": jnp.asarray(rng.normal(size=(3, 2, 2, 2)))}
        f = lambda t: jnp.sum(jnp.tanh(conv_transpose2d(t["x"], t["w"], stride=2, padding=1)))
        errors = jdl.autodiff.check_grads(f, t)
    assert max(errors.values()) < 1e-7, errors


def test_conv_transpose_bad_input(key):
    with pytest.raises(ValueError, match="conv_transpose2d: input of shape .* has C_in=2 but the layer was initialized with C_in=3"):
        conv_transpose2d(jnp.ones((1, 3, 3, 2)), jnp.ones((3, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"ConvTranspose2D: padding 3 exceeds d\(k − 1\) = 2"):
        ConvTranspose2D(2, 3, padding=3)
    with pytest.raises(ValueError, match="ConvTranspose2D: output_padding 2 must be smaller than the stride 2"):
        ConvTranspose2D(2, 3, stride=2, output_padding=2)
