import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn import Conv1D, Conv2D, conv1d, conv2d, conv2d_im2col
from tests.helpers import assert_close, assert_init_shapes, draw_normal

# (H, W, C_in, C_out, kernel, stride, padding, dilation, groups): paddings in every form
CASES = [
    (7, 9, 3, 4, (3, 3), 1, "SAME", 1, 1),
    (8, 8, 2, 5, (3, 2), (2, 1), "VALID", 1, 1),
    (9, 7, 4, 6, (3, 3), 2, 1, (2, 1), 2),
    (6, 10, 3, 2, (2, 3), (1, 3), (2, 0), 1, 1),
    (11, 6, 2, 3, (5, 3), 3, ((1, 2), (0, 1)), 1, 1),
    (8, 8, 4, 4, (3, 3), 1, "SAME", 2, 4),  # depthwise, dilated
    (7, 7, 3, 3, (4, 4), 2, "SAME", 1, 1),  # even kernel, SAME with stride
]


def _data(case, seed=0):
    h, w, ci, co, k, *_ , groups = case
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, h, w, ci)).astype(np.float32)
    kernel = rng.normal(size=(*k, ci // groups, co)).astype(np.float32)
    b = rng.normal(size=(co,)).astype(np.float32)
    return x, kernel, b


def _explicit(padding, x_shape, k, stride, dilation):
    from jdl.nn.conv_arithmetic import normalize_padding, normalize_window
    s = normalize_window("t", "s", stride, 2)
    d = normalize_window("t", "d", dilation, 2)
    return normalize_padding("t", padding, x_shape[1:3], k, s, d)


@pytest.mark.parametrize("case", CASES)
def test_conv2d_equals_im2col_and_flax(case):
    _, _, _, co, k, stride, padding, dilation, groups = case
    x, w, b = _data(case)
    y = conv2d(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(conv2d_im2col(x, w, b, stride, padding, dilation, groups), y, rtol=1e-5, atol=1e-5)
    flax_pad = padding if isinstance(padding, str) else _explicit(padding, x.shape, k, stride, dilation)
    layer = fnn.Conv(co, k, strides=stride, padding=flax_pad, kernel_dilation=dilation, feature_group_count=groups)
    y_flax = layer.apply({"params": {"kernel": w, "bias": b}}, x)
    np.testing.assert_allclose(y_flax, y, rtol=1e-5, atol=1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("case", CASES)
def test_conv2d_equals_torch(case):
    torch = pytest.importorskip("torch")
    _, _, _, co, k, stride, padding, dilation, groups = case
    x, w, b = _data(case, seed=1)
    pads = _explicit(padding, x.shape, k, stride, dilation)
    x_pad = np.pad(x, ((0, 0), *pads, (0, 0)))  # torch pads symmetrically only: pad first
    ref = torch.nn.functional.conv2d(
        torch.tensor(x_pad.transpose(0, 3, 1, 2)),  # NHWC -> NCHW
        torch.tensor(w.transpose(3, 2, 0, 1)),  # HWIO -> OIHW
        torch.tensor(b), stride=stride, dilation=dilation, groups=groups)
    y = conv2d(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(y, ref.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_course_worked_examples():
    x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    k = jnp.array([[0.0, 1.0], [2.0, 3.0]]).reshape(2, 2, 1, 1)
    assert conv2d(x, k)[0, :, :, 0].tolist() == [[19, 25], [37, 43]]
    assert conv2d(x, k, jnp.ones(1))[0, :, :, 0].tolist() == [[20, 26], [38, 44]]
    # two input channels: sum the per-channel correlations -> 56 at the top-left
    x2 = jnp.stack([jnp.arange(9.0), jnp.arange(1.0, 10.0)], -1).reshape(1, 3, 3, 2)
    k2 = jnp.stack([jnp.arange(4.0), jnp.arange(1.0, 5.0)], -1).reshape(2, 2, 2, 1)
    assert conv2d(x2, k2)[0, :, :, 0].tolist() == [[56, 72], [104, 120]]
    # 4x4 X, K rows [1, 0, -1], padding 1 per side, stride 2
    X = jnp.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 1, 2, 3], [4, 5, 6, 7]], jnp.float32).reshape(1, 4, 4, 1)
    K = jnp.array([[1.0, 0.0, -1.0]] * 3).reshape(3, 3, 1, 1)
    for fn in (conv2d, conv2d_im2col):
        assert fn(X, K, stride=2, padding=1)[0, :, :, 0].tolist() == [[-8, -4], [-12, -6]]
    # 3x3 kernel, stride 2, total padding 2 (one a side) on 9x13 -> 5x7
    y = conv2d(jnp.zeros((1, 9, 13, 1)), jnp.zeros((3, 3, 1, 1)), stride=2, padding=((1, 1), (1, 1)))
    assert y.shape == (1, 5, 7, 1)


def test_conv2d_module(key):
    layer = Conv2D(4, 3, stride=2)
    params, state, y = assert_init_shapes(layer, jnp.ones((2, 7, 7, 3)), key)
    assert params["w"].shape == (3, 3, 3, 4) and params["b"].shape == (4,) and state == {}
    assert y.shape == (2, 4, 4, 4)
    np.testing.assert_allclose(y, conv2d(jnp.ones((2, 7, 7, 3)), params["w"], params["b"], 2, "SAME"), rtol=1e-6)
    assert set(Conv2D(4, 3, use_bias=False).init(key, jnp.ones((1, 5, 5, 2)))[0]) == {"w"}
    p_struct, _ = Conv2D(4, 3).init(key, jax.ShapeDtypeStruct((1, 5, 5, 2), jnp.float32))
    assert_close(p_struct, Conv2D(4, 3).init(key, jnp.zeros((3, 5, 5, 2)))[0], rtol=0, atol=0)


def test_alexnet_layer_has_34944_params(key):
    params, _ = jax.eval_shape(Conv2D(96, 11, stride=4, padding="VALID").init, key,
                               jax.ShapeDtypeStruct((1, 227, 227, 3), jnp.float32))
    assert jdl.param_count(params) == 34_944 == jdl.nn.conv_params(11, 3, 96)
    y = jax.eval_shape(lambda p: Conv2D(96, 11, stride=4, padding="VALID").apply(p, {}, jnp.zeros((1, 227, 227, 3)))[0], params)
    assert y.shape == (1, 55, 55, 96)


def test_conv_jit_vmap_grad_consistent(key):
    x = draw_normal(key, (2, 6, 6, 2))
    layer = Conv2D(3, 3)
    params, _ = layer.init(key, x)
    f = lambda p, x: layer.apply(p, {}, x)[0]
    np.testing.assert_allclose(jax.jit(f)(params, x), f(params, x), rtol=1e-5, atol=1e-6)
    y_vmap = jax.vmap(lambda xi: f(params, xi[None])[0])(x)
    np.testing.assert_allclose(y_vmap, f(params, x), rtol=1e-5, atol=1e-6)
    g = jax.grad(lambda p: jnp.sum(f(p, x)))(params)
    # d(sum y)/db_o = number of output positions
    np.testing.assert_allclose(g["b"], np.full(3, 2 * 6 * 6), rtol=1e-6)


def test_conv_gradients_match_finite_differences():
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        x = jnp.asarray(rng.normal(size=(1, 5, 4, 2)))
        w = jnp.asarray(rng.normal(size=(3, 2, 2, 2)))
        b = jnp.asarray(rng.normal(size=(2,)))
        f = lambda t: jnp.sum(jnp.sin(conv2d(t["x"], t["w"], t["b"], stride=(2, 1), padding=1, dilation=(1, 2))))
        errors = jdl.autodiff.check_grads(f, {"x": x, "w": w, "b": b})
        g = lambda t: jnp.sum(jnp.sin(conv2d_im2col(t["x"], t["w"], None, 2, "SAME")))
        errors |= jdl.autodiff.check_grads(g, {"x": x, "w": w})
    assert max(errors.values()) < 1e-7, errors


def test_conv1d_equals_torch_and_module(key):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 40, 3)).astype(np.float32)
    w = rng.normal(size=(5, 3, 4)).astype(np.float32)
    b = rng.normal(size=(4,)).astype(np.float32)
    ref = torch.nn.functional.conv1d(torch.tensor(x.transpose(0, 2, 1)), torch.tensor(w.transpose(2, 1, 0)),
                                     torch.tensor(b), stride=2, padding=1)
    y = conv1d(x, w, b, stride=2, padding=1)
    np.testing.assert_allclose(y, ref.numpy().transpose(0, 2, 1), rtol=1e-5, atol=1e-5)
    assert y.shape == (2, 19, 4)
    params, _, y_mod = assert_init_shapes(Conv1D(4, 5, stride=2, padding=1), x, key)
    assert params["w"].shape == (5, 3, 4) and y_mod.shape == (2, 19, 4)


def test_bad_input_spells_out_the_arithmetic(key):
    with pytest.raises(ValueError, match=r"conv2d: kernel larger than the padded input: input 3, kernel 5, padding \(0, 0\), stride 1 gives ⌊\(3 \+ 0 − 5\)/1⌋ \+ 1 = -1"):
        conv2d(jnp.ones((1, 3, 3, 1)), jnp.ones((5, 5, 1, 1)))
    with pytest.raises(ValueError, match=r"conv2d: stride must be at least 1, got 0.*input \(4, 4\), kernel \(3, 3\)"):
        conv2d(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1)), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: input of shape \(1, 4, 4, 3\) has C_in=3 channels but the kernel \(3, 3, 2, 1\) expects C_in = 2"):
        conv2d(jnp.ones((1, 4, 4, 3)), jnp.ones((3, 3, 2, 1)))
    params, _ = Conv2D(2, 3).init(key, jnp.ones((1, 4, 4, 3)))
    with pytest.raises(ValueError, match="Conv2D: input of shape .* has C_in=1 channels"):
        Conv2D(2, 3).apply(params, {}, jnp.ones((1, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"Conv2D: expected an input of rank 4 \(B, H, W, C\), got shape \(4, 4, 3\)"):
        Conv2D(2, 3).init(key, jnp.ones((4, 4, 3)))
    with pytest.raises(ValueError, match="Conv2D: kernel larger than the padded input: input 2, kernel 3"):
        Conv2D(2, 3, padding="VALID").init(key, jnp.ones((1, 2, 2, 1)))
    with pytest.raises(ValueError, match="Conv2D: d_out must be a positive int"):
        Conv2D(0, 3)
    with pytest.raises(ValueError, match="Conv2D: stride must be at least 1"):
        Conv2D(2, 3, stride=0)
    with pytest.raises(ValueError, match="padding must be 'SAME', 'VALID'"):
        conv2d(jnp.ones((1, 4, 4, 1)), jnp.ones((3, 3, 1, 1)), padding="FULL")
