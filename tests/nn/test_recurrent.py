"""SimpleRNN, LSTM and GRU equal torch.nn.RNN/LSTM/GRU given the same weights (outputs, final
states and gradients; masked batches as packed sequences; reversed runs), and flax's
LSTMCell/GRUCell."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import nn
from jdl.nn import GRU, LSTM, LSTMCarry, SimpleRNN
from tests.helpers import assert_close, draw_normal

B, T, C, H = 3, 5, 4, 6
RNG = np.random.default_rng(0)
X = RNG.normal(size=(B, T, C)).astype(np.float32)
LENGTHS = np.array([5, 2, 4])
MASK = np.arange(T)[None, :] < LENGTHS[:, None]          # (B, T)
G_Y = RNG.normal(size=(B, T, H)).astype(np.float32)      # upstream gradients ∂L/∂y, ∂L/∂h_T
G_H = RNG.normal(size=(B, H)).astype(np.float32)
TORCH_KINDS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}


def jit_apply(model, train=False):
    """``model.apply`` jitted (one compile is far cheaper than op-by-op dispatch of a scan):
    (params, x, **keywords) -> y."""
    return jax.jit(lambda p, x, key=None, **kw: model.apply(p, {}, x, key=key, train=train, **kw)[0])


def jdl_layer(kind, **kw):
    return {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}[kind](H, return_carry=True, **kw)


def torch_params(mod, kind, suffix="_l0"):
    """jdl params from a torch recurrent module's layer (w = Wᵀ; RNN/LSTM add their two biases,
    the GRU keeps b_hh as ``b_h``)."""
    get = lambda n: getattr(mod, n + suffix).detach().numpy()  # noqa: E731
    p = {"w_x": get("weight_ih").T, "w_h": get("weight_hh").T}
    if kind == "gru":
        p.update(b=get("bias_ih"), b_h=get("bias_hh"))
    else:
        p["b"] = get("bias_ih") + get("bias_hh")
    return jax.tree.map(jnp.asarray, p)


def torch_grads(mod, kind, suffix="_l0"):
    """The torch gradients in jdl's layout (∂L/∂b = ∂L/∂b_ih for the added biases)."""
    get = lambda n: getattr(mod, n + suffix).grad.numpy()  # noqa: E731
    g = {"w_x": get("weight_ih").T, "w_h": get("weight_hh").T, "b": get("bias_ih")}
    if kind == "gru":
        g["b_h"] = get("bias_hh")
    return g


def jdl_run(layer, params, x, carry=None, mask=None):
    """(y, final carry) and the gradients of L = Σ y ⊙ G_Y + Σ h_T ⊙ G_H w.r.t. params, x, carry."""
    def loss(p, x, carry):
        (y, c), _ = layer.apply(p, {}, x, carry=carry, mask=mask)
        return jnp.sum(y * G_Y) + jnp.sum(nn.hidden_of(c) * G_H), (y, c)
    grads, (y, c) = jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))(params, jnp.asarray(x), carry)
    return y, c, grads


def torch_run(torch, ref, kind, x, carry=None, lengths=None):
    """The same loss through ``ref`` (batch_first), packed when ``lengths`` is given."""
    xt = torch.tensor(x, requires_grad=True)
    carry_t = None if carry is None else tuple(torch.tensor(np.asarray(c)[None], requires_grad=True)
                                               for c in (carry if kind == "lstm" else (carry,)))
    hx = None if carry_t is None else (carry_t if kind == "lstm" else carry_t[0])
    inp = xt if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.tensor(lengths), batch_first=True, enforce_sorted=False)
    y, h_n = ref(inp, hx)
    if lengths is not None:
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=T)
    h_T = h_n[0] if kind == "lstm" else h_n
    loss = (y * torch.tensor(G_Y)).sum() + (h_T[0] * torch.tensor(G_H)).sum()
    loss.backward()
    carry_grads = None if carry_t is None else [c.grad.numpy()[0] for c in carry_t]
    return y.detach().numpy(), h_n, xt.grad.numpy(), carry_grads


def make_torch(torch, kind, seed=0, **kw):
    torch.manual_seed(seed)
    return getattr(torch.nn, TORCH_KINDS[kind])(C, H, batch_first=True, **kw)


def assert_final_state(kind, c, h_n):
    if kind == "lstm":
        np.testing.assert_allclose(c.h, h_n[0][0].detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c.c, h_n[1][0].detach().numpy(), rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(c, h_n[0].detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "packed"])
def test_equals_torch_outputs_final_state_and_gradients(kind, masked):
    torch = pytest.importorskip("torch")
    ref = make_torch(torch, kind)
    params = torch_params(ref, kind)
    h0 = RNG.normal(size=(B, H)).astype(np.float32)
    carry = LSTMCarry(jnp.asarray(h0), jnp.asarray(-h0)) if kind == "lstm" else jnp.asarray(h0)
    mask = jnp.asarray(MASK) if masked else None
    y, c, (g_p, g_x, g_c) = jdl_run(jdl_layer(kind), params, X, carry, mask)
    y_t, h_n, g_x_t, g_c_t = torch_run(torch, ref, kind, X, carry, LENGTHS if masked else None)
    np.testing.assert_allclose(y, y_t, rtol=1e-5, atol=1e-6)
    assert_final_state(kind, c, h_n)
    assert_close(g_p, torch_grads(ref, kind), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_x, g_x_t, rtol=1e-4, atol=1e-5)
    assert_close(list(g_c) if kind == "lstm" else [g_c], g_c_t, rtol=1e-4, atol=1e-5)
    if masked:
        np.testing.assert_array_equal(np.asarray(y)[~MASK], 0.0)  # zero past each end


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_reverse_equals_torch_on_the_flipped_sequence(kind):
    torch = pytest.importorskip("torch")
    ref = make_torch(torch, kind, seed=1)
    params = torch_params(ref, kind)
    y, c = jit_apply(jdl_layer(kind, reverse=True))(params, X)
    y_t, h_n = ref(torch.tensor(X[:, ::-1].copy()))
    np.testing.assert_allclose(y, y_t.detach().numpy()[:, ::-1], rtol=1e-5, atol=1e-6)
    assert_final_state(kind, c, h_n)


def test_course_gru_convention_is_the_reset_before_matmul():
    """reset_after_matmul=False: n = tanh(x w_xn + (r ⊙ h) w_hn + b_n), written out by hand."""
    key = jax.random.key(3)
    params, _ = GRU(H, reset_after_matmul=False).init(key, X)
    params = {**params, "b": draw_normal(key, (3 * H,))}
    h = draw_normal(jax.random.key(4), (B, H))
    h1 = jax.jit(lambda p, h, x: nn.gru_step(p, h, x @ p["w_x"] + p["b"][None],
                                             reset_after_matmul=False))(params, h, X[:, 0])
    w_xr, w_xz, w_xn = np.split(np.asarray(params["w_x"]), 3, axis=1)
    w_hr, w_hz, w_hn = np.split(np.asarray(params["w_h"]), 3, axis=1)
    b_r, b_z, b_n = np.split(np.asarray(params["b"]), 3)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    x0, h = X[:, 0].astype(np.float64), np.asarray(h, np.float64)
    r, z = sig(x0 @ w_xr + h @ w_hr + b_r), sig(x0 @ w_xz + h @ w_hz + b_z)
    n = np.tanh(x0 @ w_xn + (r * h) @ w_hn + b_n)
    np.testing.assert_allclose(h1, z * h + (1 - z) * n, rtol=1e-5, atol=1e-6)
    assert "b_h" not in params


def to_flax_lstm(p):
    w_x, w_h, b = (np.split(np.asarray(p[k]), 4, axis=-1) for k in ("w_x", "w_h", "b"))
    return {"params": {"cell": {
        **{f"i{g}": {"kernel": w_x[j]} for j, g in enumerate("ifgo")},
        **{f"h{g}": {"kernel": w_h[j], "bias": b[j]} for j, g in enumerate("ifgo")}}}}


def to_flax_gru(p):
    w_x, w_h, b = (np.split(np.asarray(p[k]), 3, axis=-1) for k in ("w_x", "w_h", "b"))
    b_hn = np.split(np.asarray(p["b_h"]), 3)[2]
    return {"params": {"cell": {
        **{f"i{g}": {"kernel": w_x[j], "bias": b[j]} for j, g in enumerate("rzn")},
        "hr": {"kernel": w_h[0]}, "hz": {"kernel": w_h[1]}, "hn": {"kernel": w_h[2], "bias": b_hn}}}}


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_equals_flax_cells(kind, key):
    """flax's GRUCell resets after the matmul, with biases b_ir, b_iz, b_in, b_hn only: our b_h
    with its r and z parts zero. flax carries (c, h) where jdl carries LSTMCarry(h, c)."""
    layer = jdl_layer(kind)
    params, _ = layer.init(key, X)
    k1, k2 = jax.random.split(jax.random.key(9))
    params["b"] = draw_normal(k1, params["b"].shape)
    if kind == "gru":
        params["b_h"] = params["b_h"].at[2 * H:].set(draw_normal(k2, (H,)))
    y, c = jit_apply(layer)(params, X)
    cell = fnn.LSTMCell(H) if kind == "lstm" else fnn.GRUCell(H)
    variables = to_flax_lstm(params) if kind == "lstm" else to_flax_gru(params)
    c_f, y_f = jax.jit(fnn.RNN(cell, return_carry=True).apply)(variables, jnp.asarray(X))
    np.testing.assert_allclose(y, y_f, rtol=1e-5, atol=1e-6)
    c_jdl = (c.c, c.h) if kind == "lstm" else c
    assert_close(c_jdl, c_f)


@pytest.mark.parametrize("layer, n", [(SimpleRNN(H), H * (C + H) + H),
                                      (LSTM(H), 4 * (H * (C + H) + H)),
                                      (GRU(H), 3 * (H * (C + H) + 2 * H)),
                                      (GRU(H, reset_after_matmul=False), 3 * (H * (C + H) + H))])
def test_shapes_params_and_init(layer, n, key):
    params, state = layer.init(key, X)
    p_struct = jax.eval_shape(layer.init, key, jax.ShapeDtypeStruct(X.shape, X.dtype))[0]
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, p_struct)
    y = jit_apply(layer)(params, X)
    assert state == {} and y.shape == (B, T, H) and sum(a.size for a in jax.tree.leaves(params)) == n
    w_h = np.asarray(params["w_h"]).reshape(H, -1, H)           # each gate's block is orthogonal
    for j in range(w_h.shape[1]):
        np.testing.assert_allclose(w_h[:, j].T @ w_h[:, j], np.eye(H), atol=1e-5)


def test_forget_bias_init_and_return_last(key):
    params, _ = LSTM(H).init(key, X)
    np.testing.assert_array_equal(params["b"], np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)])
    p0, _ = LSTM(H, forget_bias=0.0).init(key, X)
    np.testing.assert_array_equal(p0["b"], 0.0)
    assert_close({k: v for k, v in p0.items() if k != "b"}, {k: v for k, v in params.items() if k != "b"})
    y_all = jit_apply(LSTM(H))(params, X, mask=MASK)
    y_last = jit_apply(LSTM(H, return_sequences=False))(params, X, mask=MASK)
    np.testing.assert_array_equal(y_last, np.asarray(y_all)[np.arange(B), LENGTHS - 1])


def test_module_equals_the_pure_scans_under_jit(key):
    for layer, scan in [(SimpleRNN(H, return_carry=True), nn.rnn_scan),
                        (LSTM(H, return_carry=True), nn.lstm_scan),
                        (GRU(H, return_carry=True), nn.gru_scan)]:
        params, _ = layer.init(key, X)
        y, c = jit_apply(layer)(params, X, mask=MASK)
        y2, c2 = jax.jit(lambda p, x: scan(p, x, mask=MASK, unroll=2))(params, X)
        assert_close((y, c), (y2, c2))
