"""Sinusoidal and learned positions: the paper's formula in numpy, Hugging Face's (XLM) table,
the course's worked 2 × 512 example (and its sheet's typo), and the rotation property."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn import LearnedPositions, SinusoidalPositions, sinusoidal_positions
from tests.helpers import assert_close, assert_init_shapes, draw_normal


def numpy_pe(n, d, base=10000.0):
    """PE(p, 2i) = sin(p / base^{2i/d}), PE(p, 2i+1) = cos(p / base^{2i/d}), entry by entry."""
    pe = np.zeros((n, d))
    for p in range(n):
        for i in range((d + 1) // 2):
            pe[p, 2 * i] = math.sin(p / base ** (2 * i / d))
            if 2 * i + 1 < d:
                pe[p, 2 * i + 1] = math.cos(p / base ** (2 * i / d))
    return pe


@pytest.mark.parametrize("n, d", [(1, 2), (7, 16), (50, 33), (3, 1)])
def test_sinusoidal_equals_the_formula(n, d):
    pe = sinusoidal_positions(n, d)
    assert pe.shape == (n, d) and pe.dtype == jnp.float32
    np.testing.assert_allclose(pe, numpy_pe(n, d), rtol=0, atol=2e-5)
    np.testing.assert_allclose(sinusoidal_positions(n, d, base=100.0), numpy_pe(n, d, 100.0), atol=2e-5)


def test_course_worked_example_two_positions_of_512():
    """Two positions of a 512-wide model give Z ∈ R^{2×512} with PE(p, 2i) = sin(p/10000^{2i/512})."""
    pe = np.asarray(sinusoidal_positions(2, 512))
    assert pe.shape == (2, 512)
    np.testing.assert_array_equal(pe[0], np.tile([0.0, 1.0], 256))  # p = 0: sin 0, cos 0
    i = np.arange(256)
    np.testing.assert_allclose(pe[1, 0::2], np.sin(1 / 10000 ** (2 * i / 512)), atol=1e-6)
    np.testing.assert_allclose(pe[1, 1::2], np.cos(1 / 10000 ** (2 * i / 512)), atol=1e-6)
    np.testing.assert_allclose(pe[1, :4], [math.sin(1), math.cos(1), math.sin(10000 ** (-2 / 512)),
                                           math.cos(10000 ** (-2 / 512))], atol=1e-6)
    # The sheet's base 100000 (one zero too many) and cosine exponent (2i+1)/512 give other numbers.
    sheet_sin = np.sin(1 / 100000 ** (2 * i / 512))
    sheet_cos = np.cos(1 / 100000 ** ((2 * i + 1) / 512))
    assert np.abs(pe[1, 0::2] - sheet_sin).max() > 0.05 and np.abs(pe[1, 1::2] - sheet_cos).max() > 0.03
    np.testing.assert_allclose(sinusoidal_positions(2, 512, base=100000.0)[1, 0::2], sheet_sin, atol=1e-6)


@pytest.mark.torch
def test_sinusoidal_equals_hugging_face_xlm_table():
    torch = pytest.importorskip("torch")
    xlm = pytest.importorskip("transformers.models.xlm.modeling_xlm")
    out = torch.empty(40, 24)
    xlm.create_sinusoidal_embeddings(40, 24, out)
    np.testing.assert_allclose(sinusoidal_positions(40, 24), out.numpy(), rtol=0, atol=1e-5)


def test_an_offset_is_a_rotation_of_each_pair():
    """PE(p + k) = R(k ω_i) PE(p) pair by pair: position offsets are linear in the encoding."""
    d, k = 8, 5
    pe = np.asarray(sinusoidal_positions(20, d), np.float64)
    omega = 10000.0 ** (-np.arange(0, d, 2) / d)
    c, s = np.cos(k * omega), np.sin(k * omega)
    sin_p, cos_p = pe[:-k, 0::2], pe[:-k, 1::2]
    np.testing.assert_allclose(pe[k:, 0::2], sin_p * c + cos_p * s, atol=1e-5)  # sin(a + b)
    np.testing.assert_allclose(pe[k:, 1::2], cos_p * c - sin_p * s, atol=1e-5)  # cos(a + b)


def test_sinusoidal_module_adds_the_table(key):
    x = draw_normal(key, (2, 6, 10))
    layer = SinusoidalPositions()
    params, state, y = assert_init_shapes(layer, x)
    assert params == {} and state == {}
    np.testing.assert_allclose(y, x + sinusoidal_positions(6, 10)[None], atol=1e-6)
    np.testing.assert_allclose(layer.apply({}, {}, x[0])[0], y[0], atol=1e-6)  # (T, d) input
    step, _ = jax.jit(lambda x, t: layer.apply({}, {}, x, positions=t))(x[:, 4:5], 4)
    np.testing.assert_allclose(step, y[:, 4:5], atol=1e-6)  # a decoding step at position 4
    per_row = jnp.array([[1, 2], [3, 0]])
    y2, _ = layer.apply({}, {}, jnp.zeros((2, 2, 10)), positions=per_row)
    np.testing.assert_allclose(y2, sinusoidal_positions(4, 10)[per_row], atol=1e-6)


def test_learned_positions_add_the_first_rows_and_train_them(key):
    x = draw_normal(key, (2, 3, 4))
    layer = LearnedPositions(5)
    params, _, y = assert_init_shapes(layer, x)
    assert params["w"].shape == (5, 4)
    np.testing.assert_allclose(y, x + params["w"][None, :3], rtol=1e-6)
    big, _ = LearnedPositions(400).init(key, jnp.zeros((1, 1, 64)))
    np.testing.assert_allclose(np.std(big["w"]), 0.02, rtol=0.05)  # GPT-2's N(0, 0.02²)
    g = jax.grad(lambda p: jnp.sum(layer.apply(p, {}, x)[0] * x))(params)["w"]
    np.testing.assert_allclose(g[:3], x.sum(0), rtol=1e-6)  # ∂L/∂W[p] = Σ_b upstream[b, p]
    np.testing.assert_array_equal(g[3:], 0)  # positions never used get no gradient
    step, _ = layer.apply(params, {}, x[:, 2:3], positions=2)
    np.testing.assert_allclose(step, y[:, 2:3], rtol=1e-6)
    out, _ = layer.apply(params, {}, x[:, :1], positions=jnp.array([[1], [9]]))
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()  # position 9 is outside the table


def test_errors_name_the_layer(key):
    with pytest.raises(ValueError, match="sinusoidal_positions: d must be a positive int, got 0"):
        sinusoidal_positions(2, 0)
    with pytest.raises(ValueError, match=r"SinusoidalPositions: expected an input of rank 2 or 3"):
        SinusoidalPositions().init(key, jnp.zeros((1, 2, 3, 4)))
    with pytest.raises(TypeError, match="SinusoidalPositions: expected a floating-point input"):
        SinusoidalPositions().init(key, jnp.zeros((2, 3), jnp.int32))
    with pytest.raises(TypeError, match="SinusoidalPositions: positions must be integers, got dtype float32"):
        SinusoidalPositions().apply({}, {}, jnp.zeros((2, 3, 4)), positions=jnp.ones(3))
    with pytest.raises(ValueError, match=r"SinusoidalPositions: positions of shape \(4,\) do not "
                                         r"broadcast against the input's \(B, T\) = \(2, 3\)"):
        SinusoidalPositions().apply({}, {}, jnp.zeros((2, 3, 4)), positions=jnp.arange(4))
    with pytest.raises(ValueError, match="LearnedPositions: max_len must be a positive int, got 0"):
        LearnedPositions(0)
    params, _ = LearnedPositions(5).init(key, jnp.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"LearnedPositions: input of shape \(2, 6, 4\) has T=6 "
                                         r"positions but the table holds max_len=5"):
        LearnedPositions(5).apply(params, {}, jnp.zeros((2, 6, 4)))
    with pytest.raises(ValueError, match=r"LearnedPositions: input of shape \(2, 3, 8\) has d=8 but "
                                         r"the table was initialized with d=4"):
        LearnedPositions(5).apply(params, {}, jnp.zeros((2, 3, 8)))
    with pytest.raises(TypeError, match="learned_positions: apply got an unexpected keyword argument 'position'"):
        LearnedPositions(5).apply(params, {}, jnp.zeros((2, 3, 4)), position=1)


def test_float64_under_x64():
    with jax.enable_x64(True):
        pe = sinusoidal_positions(30, 16, dtype=jnp.float64)
        assert pe.dtype == jnp.float64
        np.testing.assert_allclose(pe, numpy_pe(30, 16), rtol=0, atol=1e-13)
        x = jnp.zeros((1, 30, 16), jnp.float64)
        assert_close(SinusoidalPositions().apply({}, {}, x)[0][0], numpy_pe(30, 16), rtol=0, atol=1e-13)
