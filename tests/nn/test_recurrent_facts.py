"""The course's facts about recurrent layers as tests: finite differences in float64; the LSTM's
exact copy of the cell state (f = 1, i = 0 ⇒ ∂c_T/∂c_0 = 1); a GRU has 3/4 of an LSTM's
parameters; a padded batch equals each sequence alone; truncated BPTT threads the carry
exactly and only cuts the gradient; error messages."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl import nn
from jdl.nn import GRU, LSTM, Bidirectional, LSTMCarry, SimpleRNN, StackedRNN
from tests.helpers import assert_close, draw_normal
from tests.nn.test_recurrent import H, LENGTHS, MASK, X, jit_apply

SCANS = {"rnn": nn.rnn_scan, "lstm": nn.lstm_scan, "gru": nn.gru_scan,
         "gru_course": functools.partial(nn.gru_scan, reset_after_matmul=False)}
LAYERS = {"rnn": SimpleRNN, "lstm": LSTM, "gru": GRU,
          "gru_course": functools.partial(GRU, reset_after_matmul=False)}


@pytest.mark.parametrize("kind", list(SCANS))
def test_gradients_match_finite_differences_in_float64(kind):
    with jax.enable_x64(True):
        rng = np.random.default_rng(5)
        x = jnp.asarray(rng.normal(size=(2, 3, 2)))                 # (B, T, C), float64
        params, _ = LAYERS[kind](3).init(jax.random.key(1), x)
        params = {k: v + 0.3 * jnp.asarray(rng.normal(size=v.shape)) for k, v in params.items()}
        h0 = jnp.asarray(rng.normal(size=(2, 3)))
        carry = LSTMCarry(h0, -h0) if kind == "lstm" else h0
        mask = jnp.array([[True, True, True], [True, True, False]])

        def f(t):
            h, c = SCANS[kind](t["p"], t["x"], t["c"], mask=mask)
            return jnp.sum(jnp.sin(h)) + jnp.sum(nn.hidden_of(c) ** 2)

        errors = jdl.autodiff.check_grads(jax.jit(f), {"p": params, "x": x, "c": carry})
    assert max(errors.values()) < 1e-7, errors


def test_forget_one_input_zero_copies_the_cell_state_exactly():
    """b_f = +100, b_i = −200 with zero weights into f and i: σ gives exactly 1 and 0 in float32,
    so c_T = c_0 bit for bit and ∂c_T/∂c_0 = I (the gradient highway)."""
    key = jax.random.key(2)
    params, _ = LSTM(H).init(key, X)
    gate = lambda a, j, v: a.at[..., j * H:(j + 1) * H].set(v)      # noqa: E731
    params = {"w_x": gate(gate(params["w_x"], 0, 0.0), 1, 0.0),
              "w_h": gate(gate(params["w_h"], 0, 0.0), 1, 0.0),
              "b": gate(gate(draw_normal(key, (4 * H,)), 0, -200.0), 1, 100.0)}
    h0, c0 = draw_normal(jax.random.key(3), (2, X.shape[0], H))
    c_T = jax.jit(lambda c, x, h: nn.lstm_scan(params, x, LSTMCarry(h, c))[1].c)
    np.testing.assert_array_equal(c_T(c0, X, h0), c0)
    jac = jax.jacrev(lambda c: c_T(c[None], X[:1], h0[:1])[0])(c0[0])  # (H, H), one sequence
    np.testing.assert_array_equal(jac, np.eye(H))


def test_a_gru_has_three_quarters_of_an_lstms_parameters(key):
    count = lambda m, c=7: jdl.core.param_count(m.init(key, jnp.ones((1, 2, c)))[0])  # noqa: E731
    assert count(GRU(H, reset_after_matmul=False)) * 4 == count(LSTM(H)) * 3   # one bias (course)
    for kind, layer, biases in [("simple_rnn", SimpleRNN(H), 1), ("lstm", LSTM(H), 1),
                                ("gru", GRU(H, reset_after_matmul=False), 1), ("gru", GRU(H), 2)]:
        assert count(layer) == nn.recurrent_param_count(kind, 7, H, biases)
    assert 4 * nn.recurrent_param_count("gru", 7, H, 2) == 3 * nn.recurrent_param_count("lstm", 7, H, 2)
    torch = pytest.importorskip("torch")
    for kind, cls in [("simple_rnn", torch.nn.RNN), ("lstm", torch.nn.LSTM), ("gru", torch.nn.GRU)]:
        numel = sum(p.numel() for p in cls(7, H).parameters())      # PyTorch's two biases
        assert numel == nn.recurrent_param_count(kind, 7, H, biases=2)


@pytest.mark.parametrize("kind", ["gru_course", "bidirectional"])
def test_a_padded_batch_equals_each_sequence_alone(kind, key):
    layer = (Bidirectional(LSTM(H, return_carry=True)) if kind == "bidirectional"
             else LAYERS[kind](H, return_carry=True))
    params, _ = layer.init(key, X)
    w = draw_normal(key, (X.shape[0], X.shape[1], 2 * H if kind == "bidirectional" else H))

    @jax.jit
    def grad_and_out(p, x, w, mask=None):
        def loss(p, x):
            y, c = layer.apply(p, {}, x, mask=mask)[0]
            return jnp.sum(y * w) + sum(jnp.sum(a) for a in jax.tree.leaves(c)), (y, c)
        return jax.grad(loss, argnums=(0, 1), has_aux=True)(p, x)

    (g_p, g_x), (y, c) = grad_and_out(params, X, w, MASK)
    g_alone = []
    for b, n in enumerate(LENGTHS):
        (g_pb, g_xb), (y_b, c_b) = grad_and_out(params, X[b:b + 1, :n], w[b:b + 1, :n])
        assert_close(y[b, :n], y_b[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(y[b, n:], 0.0)
        assert_close(jax.tree.map(lambda a: a[b], c), jax.tree.map(lambda a: a[0], c_b))
        assert_close(g_x[b, :n], g_xb[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(g_x[b, n:], 0.0)
        g_alone.append(g_pb)
    assert_close(g_p, jax.tree.map(lambda *g: sum(g), *g_alone), rtol=1e-4, atol=1e-5)


def test_truncated_bptt_threads_the_carry_and_cuts_only_the_gradient(key):
    """4 windows of 3 steps: the forward pass equals one 12-step run, detached or not; without
    detach the gradient is the long run's, with it the sum of each window's gradient from a
    constant initial carry (the paths across window edges are cut, nothing else)."""
    layer = LSTM(H, return_carry=True)
    x = draw_normal(key, (2, 12, X.shape[-1]))
    params, _ = layer.init(key, x)
    windows = jnp.split(x, 4, axis=1)

    def windowed(p, cut):
        carry, ys, loss = nn.zero_carry(layer, p, 2), [], 0.0
        for x_w in windows:
            y, carry = layer.apply(p, {}, x_w, carry=nn.detach(carry) if cut else carry)[0]
            ys.append(y)
            loss = loss + jnp.sum(y ** 2)
        return loss, jnp.concatenate(ys, axis=1)

    long_loss = lambda p: (lambda y: (jnp.sum(y ** 2), y))(layer.apply(p, {}, x)[0][0])  # noqa: E731
    g_long, y_long = jax.jit(jax.grad(long_loss, has_aux=True))(params)
    g_thread, y_thread = jax.jit(jax.grad(lambda p: windowed(p, False), has_aux=True))(params)
    g_cut, y_cut = jax.jit(jax.grad(lambda p: windowed(p, True), has_aux=True))(params)
    assert_close(y_thread, y_long) and assert_close(y_cut, y_long)
    assert_close(g_thread, g_long, rtol=1e-5, atol=1e-6)

    @jax.jit
    def per_window(p, carry, x_w):                  # the carry is an input, not a function of p
        return jax.grad(lambda p: jnp.sum(layer.apply(p, {}, x_w, carry=carry)[0][0] ** 2))(p)

    starts = jax.jit(lambda p: [nn.lstm_scan(p, x[:, :3 * k])[1] if k else nn.zero_carry(layer, p, 2)
                                for k in range(4)])(params)            # each window's h_0, c_0
    g_sum = jax.tree.map(lambda *g: sum(g), *[per_window(params, s, w) for s, w in zip(starts, windows)])
    assert_close(g_cut, g_sum, rtol=1e-5, atol=1e-6)
    assert not np.allclose(g_cut["w_h"], g_long["w_h"], rtol=1e-3)   # the cut paths mattered


def test_errors_name_the_layer_and_the_shapes(key):
    params, _ = LSTM(H).init(key, X)
    with pytest.raises(ValueError, match=re.escape("LSTM: expected an input of rank 3 (B, T, C), got shape (5, 4)")):
        LSTM(H).apply(params, {}, X[0])
    with pytest.raises(ValueError, match=re.escape("GRU: expected an input of rank 3 (B, T, C)")):
        GRU(H).init(key, X[0])
    with pytest.raises(ValueError, match=re.escape("LSTM: input of shape (3, 5, 2) has C=2 but the layer was initialized with C=4")):
        LSTM(H).apply(params, {}, X[..., :2])
    with pytest.raises(ValueError, match=re.escape("LSTM: the mask must have shape (B, T) = (3, 5), got (3, 4)")):
        LSTM(H).apply(params, {}, X, mask=MASK[:, :4])
    with pytest.raises(ValueError, match=re.escape("LSTM: carry must be an LSTMCarry(h, c) of two (B, H) = (3, 6)")):
        LSTM(H).apply(params, {}, X, carry=jnp.zeros((3, H)))
    with pytest.raises(ValueError, match=re.escape("SimpleRNN: carry must be (B, H) = (3, 6) for x of shape (3, 5, 4), got (2, 6)")):
        SimpleRNN(H).apply(SimpleRNN(H).init(key, X)[0], {}, X, carry=jnp.zeros((2, H)))
    with pytest.raises(ValueError, match="gru_scan: reset_after_matmul=True needs params\\['b_h'\\]"):
        nn.gru_scan(GRU(H, reset_after_matmul=False).init(key, X)[0], X)
    with pytest.raises(TypeError, match="LSTM: expected a floating-point input, got dtype int32"):
        LSTM(H).init(key, jnp.ones((1, 2, 3), jnp.int32))
    with pytest.raises(ValueError, match="GRU: hidden must be a positive int, got 0"):
        GRU(0)
    with pytest.raises(ValueError, match="Bidirectional: merge must be one of"):
        Bidirectional(LSTM(H), merge="max")
    with pytest.raises(ValueError, match="StackedRNN: dropout must be a probability in \\[0, 1\\), got 1.0"):
        StackedRNN([LSTM(H)], dropout=1.0)
    with pytest.raises(ValueError, match=re.escape("StackedRNN: layer 0_lstm returns shape (3, 6); every layer but the last")):
        StackedRNN([LSTM(H, return_sequences=False), LSTM(H)]).init(key, X)
    with pytest.raises(ValueError, match="zero_carry: 'dense' is not a recurrent layer"):
        nn.zero_carry(nn.Dense(3), {}, 2)
    with pytest.raises(ValueError, match="Bidirectional: build fwd and bwd with the same return_carry"):
        pair = Bidirectional(LSTM(H), LSTM(H, return_carry=True))
        pair.apply(pair.init(key, X)[0], {}, X)


def test_is_weight_covers_recurrent_weights_not_biases(key):
    params, _ = GRU(H).init(key, X)
    mask = jdl.optim.weights_only({"0_gru": params})["0_gru"]
    assert mask == {"w_x": True, "w_h": True, "b": False, "b_h": False}
    params = {**params, "b": params["b"] + 1.0}                     # biases would count if selected
    want = 0.5 * (jnp.sum(params["w_x"] ** 2) + jnp.sum(params["w_h"] ** 2))   # λ/2·‖w‖², λ = 1
    np.testing.assert_allclose(jdl.regularizers.l2({"0_gru": params}), want, rtol=1e-6)
