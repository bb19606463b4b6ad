"""jdl.kernels.lstm_native (``impl='native'``): the C++ recurrence equals XLA's scans of
jdl.kernels.lstm (forward and BPTT) to float32 rounding, its σ and tanh equal jax.nn's across
their whole range, any thread count gives the same bits, and lstm_sequence / embedded_lstm_sequence
with it equal the plain scan LSTM (tested against torch.nn.LSTM in test_lstm.py) in values and
gradients. Skipped, with the reason, on machines that cannot build it (no g++, no AVX2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.kernels import lstm, lstm_native
from jdl.kernels.lstm import embedded_lstm_sequence, lstm_sequence

T, B, C, H = 9, 7, 5, 40  # B = 6 + 1 rows, H split 16 + 24 units: both tile widths and a short row block


pytestmark = pytest.mark.usefixtures("native_kernels")  # tests/kernels/conftest.py


def rand(seed, *shape, scale=1.0):
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def close(got, want, rtol=2e-6):
    """|got − want| ≤ rtol · max|want| elementwise, for every pair of leaves."""
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=rtol * float(jnp.max(jnp.abs(w))))


def test_gate_activations_equal_jax_nn_over_their_range():
    """With W_h = 0 and zero state, the gates are σ/tanh of xw itself: compare them with jax.nn's
    on values from −100 to 100, including the tiny ones where tanh switches to its series."""
    vals = np.concatenate([np.linspace(-100, 100, 1001), np.geomspace(1e-8, 30, 500), -np.geomspace(1e-8, 30, 500),
                           [0.0, 0.2499999, 0.25, 0.2500001, 88.0, -88.0, 89.0, -89.0]])
    n = 8 * 16 * 4
    xw = jnp.asarray(np.resize(vals, (3, 8 * ((len(vals) + n - 1) // n), 4 * 16)), jnp.float32)[:, :8]
    zeros = jnp.zeros((8, 16), jnp.float32)
    hs, cs, acts = jax.jit(lstm_native.forward_scan)(xw, jnp.zeros((16, 64), jnp.float32), zeros, zeros)
    z = xw[0]
    want = jnp.concatenate([jax.nn.sigmoid(z[:, :32]), jnp.tanh(z[:, 32:48]), jax.nn.sigmoid(z[:, 48:])], axis=-1)
    np.testing.assert_allclose(acts[0], want, rtol=1e-6, atol=1e-30)
    c = want[:, :16] * want[:, 32:48]
    np.testing.assert_allclose(cs[0], c, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(hs[0], want[:, 48:] * jnp.tanh(c), rtol=2e-6, atol=1e-30)


def scans_inputs():
    xw, w_h = rand(0, T, B, 4 * H), rand(1, H, 4 * H, scale=0.3)
    h0, c0, dhs, dc_T = rand(2, B, H), rand(3, B, H), rand(4, T, B, H), rand(5, B, H)
    return xw, w_h, h0, c0, dhs, dc_T


def test_scans_equal_xla_scans():
    xw, w_h, h0, c0, dhs, dc_T = scans_inputs()
    want = lstm._forward_scan(xw, w_h, h0, c0, 1)
    got = jax.jit(lstm_native.forward_scan)(xw, w_h, h0, c0)
    close(got, want)
    hs, cs, acts = want
    close(jax.jit(lstm_native.backward_scan)(dhs, dc_T, acts, cs, c0, w_h),
          lstm._backward_scan(dhs, dc_T, acts, cs, c0, w_h, 1))


@pytest.mark.parametrize("threads", [1, 3, 5])
def test_thread_count_changes_no_bits(threads):
    xw, w_h, h0, c0, dhs, dc_T = scans_inputs()
    one, other = (jax.jit(lstm_native.forward_scan, static_argnums=4)(xw, w_h, h0, c0, n) for n in (2, threads))
    hs, cs, acts = one
    back = [jax.jit(lstm_native.backward_scan, static_argnums=6)(dhs, dc_T, acts, cs, c0, w_h, n) for n in (2, threads)]
    for a, b in zip(jax.tree.leaves((one, back[0])), jax.tree.leaves((other, back[1]))):
        np.testing.assert_array_equal(a, b)


def loss_of(fn):
    """A scalar touching hs, h_T and c_T with fixed random weights."""
    u, v, s = rand(6, B, T, H), rand(7, B, H), rand(8, B, H)

    def loss(*args):
        hs, (h, c) = fn(*args)
        return jnp.sum(hs * u) + jnp.sum(h * v) + jnp.sum(jnp.sin(c) * s)

    return loss


def test_lstm_sequence_native_equals_scan_in_values_and_gradients():
    params = {"w_x": rand(9, C, 4 * H, scale=0.5), "w_h": rand(10, H, 4 * H, scale=0.3), "b": rand(11, 4 * H)}
    x, h0, c0 = rand(12, B, T, C), rand(13, B, H), rand(14, B, H)
    run = lambda impl: jax.jit(lambda *a: lstm_sequence(*a, impl=impl))(params, x, h0, c0)
    close(run("native"), run("scan"))
    grad = lambda impl: jax.jit(jax.grad(loss_of(lambda *a: lstm_sequence(*a, impl=impl)), argnums=(0, 1, 2, 3)))
    close(grad("native")(params, x, h0, c0), grad("scan")(params, x, h0, c0), rtol=1e-5)


def test_embedded_native_equals_fused_in_values_and_gradients():
    params = {"w_x": rand(15, C, 4 * H, scale=0.5), "w_h": rand(16, H, 4 * H, scale=0.3), "b": rand(17, 4 * H)}
    table, h0, c0 = rand(18, 11, C), rand(19, B, H), rand(20, B, H)
    ids = jnp.asarray(np.random.default_rng(21).integers(0, 11, (B, T)))
    run = lambda impl: jax.jit(lambda p, e, h, c: embedded_lstm_sequence(e, p, ids, h, c, impl=impl))
    close(run("native")(params, table, h0, c0), run("fused")(params, table, h0, c0))
    grad = lambda impl: jax.jit(jax.grad(loss_of(run(impl)), argnums=(0, 1, 2, 3)))
    close(grad("native")(params, table, h0, c0), grad("fused")(params, table, h0, c0), rtol=1e-5)


def test_saturated_long_sequence_stays_finite_and_equal():
    """Large pre-activations over 300 steps: gates at 0 and 1, no NaN, the same as XLA's scans."""
    xw, w_h = rand(22, 300, 2, 64, scale=30.0), rand(23, 16, 64, scale=0.1)  # input-driven, not chaotic
    zeros = jnp.zeros((2, 16), jnp.float32)
    got = jax.jit(lstm_native.forward_scan)(xw, w_h, zeros, zeros)
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in got)
    close(got, lstm._forward_scan(xw, w_h, zeros, zeros, 1), rtol=1e-5)


def test_bad_inputs_are_clear_errors():
    params = {"w_x": rand(24, C, 48), "w_h": rand(25, 12, 48), "b": rand(26, 48)}
    with pytest.raises(ValueError, match="H must be a multiple of 8, got H=12"):
        lstm_sequence(params, rand(27, B, T, C), impl="native")
    p64 = {k: v.astype(jnp.float64) if jax.config.jax_enable_x64 else v for k, v in params.items()}
    with pytest.raises(ValueError, match="threads must be in 1..H/8 = 5, got 6"):
        lstm_native.forward_scan(rand(0, T, B, 4 * H), rand(1, H, 4 * H), rand(2, B, H), rand(3, B, H), 6)
    with pytest.raises(ValueError, match="impl must be 'fused' or 'native'"):
        embedded_lstm_sequence(rand(28, 11, C), p64, jnp.zeros((B, T), jnp.int32), impl="scan")


def test_layer_and_language_model_take_native():
    """``jdl.nn.LSTM(impl='native')`` equals the plain scan layer, and ``lstm_lm(lstm_impl='native')``
    (its first layer on the embedded table, a second stacked layer) equals the fused one, in
    outputs and parameter gradients."""
    from jdl import nn
    from jdl.models import lstm_lm

    x = rand(29, B, T, C)
    layer = nn.LSTM(H, impl="native", return_carry=True)
    params, _ = layer.init(jax.random.key(0), x)
    run = lambda impl: jax.jit(lambda p: nn.LSTM(H, impl=impl, return_carry=True).apply(p, {}, x)[0])
    close(run("native")(params), run("scan")(params))
    ids = jnp.asarray(np.random.default_rng(30).integers(0, 9, (B, T)))
    models = {impl: lstm_lm(9, embed=C, hidden=H, num_layers=2, lstm_impl=impl) for impl in ("fused", "native")}
    lm_params, _ = models["fused"].init(jax.random.key(1), ids)
    loss = lambda impl: jax.jit(jax.value_and_grad(lambda p: jnp.sum(jnp.sin(models[impl].apply(p, {}, ids)[0]))))
    close(loss("native")(lm_params), loss("fused")(lm_params), rtol=1e-5)
