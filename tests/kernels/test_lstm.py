"""jdl.kernels.lstm: every impl equals a plain lax.scan LSTM written here and torch.nn.LSTM given
the same weights, in values and in gradients (all params, h0, c0, inputs), and float64 finite
differences on a tiny case."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.kernels.lstm import IMPLS, embedded_lstm_sequence, lstm_sequence

B, T, C, H = 3, 5, 4, 6


def plain_lstm(params, x, h0, c0):
    """The textbook LSTM, step by step with four gates from [h, x]: the independent reference."""
    w = jnp.concatenate([params["w_h"], params["w_x"]], axis=0)  # (H + C, 4H)

    def step(carry, x_t):
        h, c = carry
        z = jnp.concatenate([h, x_t], axis=-1) @ w + params["b"][None, :]
        i, f, g, o = (jax.nn.sigmoid(z[:, :H]), jax.nn.sigmoid(z[:, H:2 * H]),
                      jnp.tanh(z[:, 2 * H:3 * H]), jax.nn.sigmoid(z[:, 3 * H:]))
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    (h, c), hs = jax.lax.scan(step, (h0, c0), jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(hs, 0, 1), (h, c)


def make(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    params = {"w_x": 0.5 * rng.standard_normal((C, 4 * H)), "w_h": 0.5 * rng.standard_normal((H, 4 * H)),
              "b": 0.3 * rng.standard_normal(4 * H)}
    params = {k: jnp.asarray(v, dtype) for k, v in params.items()}
    x, h0, c0 = (jnp.asarray(rng.standard_normal(s), dtype) for s in ((B, T, C), (B, H), (B, H)))
    return params, x, h0, c0


def loss_of(fn, **kw):
    """A scalar touching every output: hs, h_T and c_T with fixed random weights."""
    rng = np.random.default_rng(1)
    u, v, s = rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))

    def loss(params, x, h0, c0):
        hs, (h, c) = fn(params, x, h0, c0, **kw)
        return jnp.sum(hs * u) + jnp.sum(h * v) + jnp.sum(jnp.sin(c) * s)

    return loss


GRAD = jax.jit(jax.grad(loss_of(plain_lstm), argnums=(0, 1, 2, 3)))


@pytest.mark.parametrize("impl,unroll", [("scan", 1), ("hoisted", 2), ("fused", 1), ("fused", 4)])
def test_equals_plain_scan_in_values_and_gradients(impl, unroll):
    params, x, h0, c0 = make()
    want = plain_lstm(params, x, h0, c0)
    got = jax.jit(lambda *a: lstm_sequence(*a, impl=impl, unroll=unroll))(params, x, h0, c0)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, want)
    grads = jax.jit(jax.grad(loss_of(lstm_sequence, impl=impl, unroll=unroll), argnums=(0, 1, 2, 3)))(
        params, x, h0, c0)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), grads,
                 GRAD(params, x, h0, c0))


@pytest.mark.torch
def test_fused_equals_torch_lstm_in_values_and_gradients():
    torch = pytest.importorskip("torch")
    params, x, h0, c0 = make()
    net = torch.nn.LSTM(C, H, batch_first=True)
    with torch.no_grad():  # PyTorch stores W (4H, C) acting on columns; its two biases sum to b
        net.weight_ih_l0.copy_(torch.from_numpy(np.asarray(params["w_x"]).T.copy()))
        net.weight_hh_l0.copy_(torch.from_numpy(np.asarray(params["w_h"]).T.copy()))
        net.bias_ih_l0.copy_(torch.from_numpy(np.array(params["b"])))
        net.bias_hh_l0.zero_()
    tx, th0, tc0 = (torch.from_numpy(np.asarray(a)).requires_grad_() for a in (x, h0, c0))
    hs, (h, c) = net(tx, (th0[None], tc0[None]))
    rng = np.random.default_rng(1)
    u, v, s = (torch.from_numpy(rng.standard_normal(sh).astype(np.float32)) for sh in ((B, T, H), (B, H), (B, H)))
    (torch.sum(hs * u) + torch.sum(h[0] * v) + torch.sum(torch.sin(c[0]) * s)).backward()

    got = lstm_sequence(params, x, h0, c0, impl="fused")
    np.testing.assert_allclose(got[0], hs.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1][1], c[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    g_params, g_x, g_h0, g_c0 = jax.grad(loss_of(lstm_sequence, impl="fused"), argnums=(0, 1, 2, 3))(
        params, x, h0, c0)
    want = {"w_x": net.weight_ih_l0.grad.numpy().T, "w_h": net.weight_hh_l0.grad.numpy().T,
            "b": net.bias_ih_l0.grad.numpy()}
    for k in want:
        np.testing.assert_allclose(g_params[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(net.bias_hh_l0.grad.numpy(), want["b"], rtol=1e-6)  # ∂/∂b_hh = ∂/∂b_ih
    for g, t in ((g_x, tx), (g_h0, th0), (g_c0, tc0)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_fused_gradient_equals_float64_finite_differences():
    """Central differences (ε = 1e-6) of the loss along random directions of every input."""
    with jax.enable_x64(True):
        params, x, h0, c0 = make(np.float64, seed=2)
        loss = loss_of(lstm_sequence, impl="fused", unroll=2)
        grads = jax.grad(loss, argnums=(0, 1, 2, 3))(params, x, h0, c0)
        args = (params, x, h0, c0)
        rng = np.random.default_rng(3)
        for _ in range(3):
            d = jax.tree.map(lambda a: jnp.asarray(rng.standard_normal(a.shape)), args)
            eps = 1e-6
            plus = loss(*jax.tree.map(lambda a, e: a + eps * e, args, d))
            minus = loss(*jax.tree.map(lambda a, e: a - eps * e, args, d))
            fd = (plus - minus) / (2 * eps)
            analytic = sum(jnp.vdot(g, e) for g, e in zip(jax.tree.leaves(grads), jax.tree.leaves(d)))
            np.testing.assert_allclose(float(analytic), float(fd), rtol=1e-7)


def test_zero_initial_state_by_default_and_final_state_is_last_step():
    params, x, h0, c0 = make()
    hs, (h, c) = lstm_sequence(params, x)
    want_hs, (_, want_c) = plain_lstm(params, x, jnp.zeros((B, H)), jnp.zeros((B, H)))
    np.testing.assert_allclose(hs, want_hs, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(h, hs[:, -1])
    np.testing.assert_allclose(c, want_c, rtol=1e-5, atol=1e-6)


def test_errors_name_the_function_and_the_shapes():
    params, x, h0, c0 = make()
    with pytest.raises(ValueError, match=r"impl must be one of .*'cudnn'"):
        lstm_sequence(params, x, impl="cudnn")
    with pytest.raises(ValueError, match=r"expected x of shape \(B, T, C\), got shape \(3, 4\)"):
        lstm_sequence(params, x[:, 0])
    with pytest.raises(ValueError, match="x has C=3 but w_x expects C=4"):
        lstm_sequence(params, x[..., :3])
    with pytest.raises(ValueError, match=r"expected w_x \(C, 4H\), w_h \(H, 4H\)"):
        lstm_sequence({**params, "w_h": params["w_h"][:, :-1]}, x)
    with pytest.raises(ValueError, match=r"expected c0 of shape \(B, H\) = \(3, 6\), got \(2, 6\)"):
        lstm_sequence(params, x, h0, c0[:2])
    assert set(IMPLS) == {"scan", "hoisted", "fused", "native"}  # native: tests/kernels/test_lstm_native.py


def test_embedded_equals_lstm_of_the_embeddings_in_values_and_gradients():
    """(E·W_x + b)[ids] as the input projection equals running the LSTM on x = E[ids]."""
    params, _, h0, c0 = make()
    rng = np.random.default_rng(4)
    table = jnp.asarray(rng.standard_normal((7, C)), jnp.float32)
    ids = jnp.asarray(rng.integers(0, 7, (B, T)), jnp.int32)
    got = embedded_lstm_sequence(table, params, ids, h0, c0, unroll=2)
    want = lstm_sequence(params, table[ids], h0, c0, impl="scan")
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, want)
    fused = loss_of(lambda p, e, h, c: embedded_lstm_sequence(e, p, ids, h, c))
    plain = loss_of(lambda p, e, h, c: plain_lstm(p, e[ids], h, c))
    grads = jax.grad(fused, argnums=(0, 1, 2, 3))(params, table, h0, c0)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), grads,
                 jax.grad(plain, argnums=(0, 1, 2, 3))(params, table, h0, c0))
    hs, _ = embedded_lstm_sequence(table, params, ids.at[0, 2].set(7), h0, c0)  # id V: NaN, as Embedding gives
    assert np.all(np.isnan(hs[0, 2:])) and np.all(np.isfinite(hs[0, :2])) and np.all(np.isfinite(hs[1:]))
    with pytest.raises(ValueError, match=r"expected integer ids of shape \(B, T\), got float32"):
        embedded_lstm_sequence(table, params, ids.astype(jnp.float32))
    with pytest.raises(ValueError, match="x has C=3 but w_x expects C=4"):
        embedded_lstm_sequence(table[:, :3], params, ids)
