"""Bidirectional and StackedRNN equal torch.nn.LSTM/GRU(num_layers=2, bidirectional=True) on a
packed batch (outputs, final states, gradients); dropout between layers; zero_carry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import nn
from jdl.nn import GRU, LSTM, Bidirectional, LSTMCarry, StackedRNN
from tests.helpers import assert_close
from tests.nn.test_recurrent import B, C, H, LENGTHS, MASK, RNG, T, X, jit_apply, torch_grads, torch_params

G_Y2 = RNG.normal(size=(B, T, 2 * H)).astype(np.float32)   # ∂L/∂y of a bidirectional layer
G_N = RNG.normal(size=(4, B, H)).astype(np.float32)        # ∂L/∂h_n, torch's (layers·2, B, H)


def bi_stack(kind):
    cell = {"lstm": LSTM, "gru": GRU}[kind]
    return StackedRNN([Bidirectional(cell(H, return_carry=True)) for _ in range(2)])


def stack_params(ref, kind):
    return {f"{l}_bidirectional": {f"{d}_{kind}": torch_params(ref, kind, f"_l{l}{sfx}")
                                   for d, sfx in enumerate(["", "_reverse"])} for l in range(2)}


def flat_h(carries):
    """torch's h_n order: layer 0 fwd, layer 0 bwd, layer 1 fwd, layer 1 bwd."""
    return jnp.stack([nn.hidden_of(c) for pair in carries for c in pair])  # (4, B, H)


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_stacked_bidirectional_equals_torch_on_a_packed_batch(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    ref = getattr(torch.nn, kind.upper())(C, H, num_layers=2, bidirectional=True, batch_first=True)
    model, params = bi_stack(kind), stack_params(ref, kind)
    h0 = RNG.normal(size=(4, B, H)).astype(np.float32)
    pair = lambda l: tuple(LSTMCarry(jnp.asarray(h0[2 * l + d]), jnp.asarray(-h0[2 * l + d]))  # noqa: E731
                           if kind == "lstm" else jnp.asarray(h0[2 * l + d]) for d in range(2))
    carry = (pair(0), pair(1))

    def loss(p, x):
        (y, c), _ = model.apply(p, {}, x, carry=carry, mask=MASK)
        return jnp.sum(y * G_Y2) + jnp.sum(flat_h(c) * G_N), (y, c)

    (g_p, g_x), (y, c) = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(params, jnp.asarray(X))
    xt = torch.tensor(X, requires_grad=True)
    hx = torch.tensor(h0) if kind == "gru" else (torch.tensor(h0), torch.tensor(-h0))
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(LENGTHS), batch_first=True,
                                                     enforce_sorted=False)
    y_t, h_n = ref(packed, hx)
    y_t, _ = torch.nn.utils.rnn.pad_packed_sequence(y_t, batch_first=True, total_length=T)
    h_t = h_n[0] if kind == "lstm" else h_n
    ((y_t * torch.tensor(G_Y2)).sum() + (h_t * torch.tensor(G_N)).sum()).backward()
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat_h(c), h_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    if kind == "lstm":
        cells = jnp.stack([cc.c for pair_ in c for cc in pair_])
        np.testing.assert_allclose(cells, h_n[1].detach().numpy(), rtol=1e-5, atol=1e-6)
    grads_t = {f"{l}_bidirectional": {f"{d}_{kind}": torch_grads(ref, kind, f"_l{l}{sfx}")
                                      for d, sfx in enumerate(["", "_reverse"])} for l in range(2)}
    assert_close(g_p, grads_t, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_x, xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_bidirectional_merges_and_last_states(key):
    x = jnp.asarray(X)
    pair = Bidirectional(GRU(H), GRU(H, reset_after_matmul=False), merge=None)
    params, _ = pair.init(key, x)
    y_f, y_b = jit_apply(pair)(params, x, mask=MASK)
    y_rev = jit_apply(GRU(H, reset_after_matmul=False, reverse=True))(params["1_gru"], x, mask=MASK)
    np.testing.assert_allclose(y_b, y_rev, rtol=1e-6, atol=1e-7)   # flipping = a reversed scan
    for merge, want in [("concat", jnp.concatenate([y_f, y_b], -1)), ("mean", (y_f + y_b) / 2)]:
        y = jit_apply(Bidirectional(GRU(H), GRU(H, reset_after_matmul=False), merge))(params, x, mask=MASK)
        np.testing.assert_allclose(y, want, rtol=1e-6)
    last = Bidirectional(GRU(H, return_sequences=False), GRU(H, reset_after_matmul=False, return_sequences=False))
    y_last = jit_apply(last)(params, x, mask=MASK)
    np.testing.assert_allclose(y_last[:, :H], np.asarray(y_f)[np.arange(B), LENGTHS - 1], rtol=1e-6)
    np.testing.assert_allclose(y_last[:, H:], y_b[:, 0], rtol=1e-6)   # backward ends at t = 0


def test_stacked_dropout_between_layers_only_in_training(key):
    x = jnp.asarray(X)
    model = StackedRNN([GRU(H), GRU(H), LSTM(H)], dropout=0.5)
    params, _ = model.init(key, x)
    k = jax.random.key(7)
    y = jit_apply(model, train=True)(params, x, key=k)

    @jax.jit
    def by_hand(params, h):
        for i, (name, layer) in enumerate(zip(params, [GRU(H), GRU(H), LSTM(H)])):
            h, _ = layer.apply(params[name], {}, h)
            if i < 2:
                h = nn.dropout(jax.random.fold_in(k, 3 + i), h, 0.5)
        return h

    np.testing.assert_allclose(y, by_hand(params, x), rtol=1e-6, atol=1e-7)
    y_eval = jit_apply(model)(params, x)
    y_plain = jit_apply(StackedRNN([GRU(H), GRU(H), LSTM(H)]), train=True)(params, x, key=k)
    np.testing.assert_array_equal(y_eval, y_plain)
    assert not np.allclose(y, y_eval)
    with pytest.raises(ValueError, match="StackedRNN is stochastic and needs a random key"):
        model.apply(params, {}, x, train=True)


def test_zero_carry_equals_no_carry(key):
    x = jnp.asarray(X)
    for model in [bi_stack("gru"),
                  StackedRNN([LSTM(H, return_carry=True), nn.SimpleRNN(H, return_carry=True)])]:
        params, _ = model.init(key, x)
        zeros = nn.zero_carry(model, params, B)
        assert all(a.shape == (B, H) and not a.any() for a in jax.tree.leaves(zeros))
        y0, c0 = jit_apply(model)(params, x, carry=zeros, mask=MASK)
        y1, c1 = jit_apply(model)(params, x, mask=MASK)
        assert_close((y0, c0), (y1, c1), rtol=0, atol=0)
