"""The LSTM encoder–decoder: equal to a hand-assembled PyTorch encoder–decoder (nn.Embedding,
two nn.LSTM stacks, nn.Linear; padded sources packed) given the same weights, in logits and
gradients; greedy decoding equal to a step-by-step argmax over the growing prefix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.models import Seq2SeqConfig, lstm_encoder_decoder, lstm_greedy_decode
from jdl.models.seq2seq import lstm_encode
from tests.helpers import assert_close

V_SRC, V_TGT, E, H, L = 11, 9, 6, 8, 2
CONFIG = Seq2SeqConfig(V_SRC, V_TGT, d_embed=E, hidden=H, num_layers=L)
SRC = jnp.array([[1, 4, 2, 7, 10], [3, 3, 9, 0, 0], [5, 0, 0, 0, 0]], jnp.int32)  # (B, S), 0 = padding
SRC_MASK = SRC != 0
LENGTHS = [5, 3, 1]
TGT = jnp.array([[1, 5, 2, 8], [1, 6, 6, 3], [1, 2, 0, 7]], jnp.int32)  # (B, T)


@pytest.fixture(scope="module")
def model():
    m = lstm_encoder_decoder(CONFIG)
    params, _ = m.init(jax.random.key(0), (SRC, TGT))
    return m, params


def torch_reference(torch, seed=3):
    """Embeddings, encoder and decoder nn.LSTM(num_layers=L) and a Linear head, random weights."""
    torch.manual_seed(seed)
    mods = {"src_embed": torch.nn.Embedding(V_SRC, E), "tgt_embed": torch.nn.Embedding(V_TGT, E),
            "encoder": torch.nn.LSTM(E, H, num_layers=L, batch_first=True),
            "decoder": torch.nn.LSTM(E, H, num_layers=L, batch_first=True), "head": torch.nn.Linear(H, V_TGT)}
    with torch.no_grad():  # no parameter left at a default 0 or 1
        for mod in mods.values():
            for p in mod.parameters():
                p.copy_(torch.randn(p.shape) * 0.5)
    return mods


def torch_forward(torch, mods, src, tgt, lengths):
    """logits of the torch encoder–decoder: the packed source's final (h_n, c_n) start the decoder."""
    packed = torch.nn.utils.rnn.pack_padded_sequence(mods["src_embed"](src), torch.tensor(lengths),
                                                     batch_first=True, enforce_sorted=False)
    _, carry = mods["encoder"](packed)
    y, _ = mods["decoder"](mods["tgt_embed"](tgt), carry)
    return mods["head"](y)


def _np(t):
    return np.asarray(t.detach().numpy())


def to_jdl(mods, grad=False):
    """jdl params (or torch's gradients in jdl's layout): w = Wᵀ, the two LSTM biases added."""
    g = (lambda p: _np(p.grad)) if grad else _np
    lstm = lambda m: {f"{i}_lstm": {"w_x": g(getattr(m, f"weight_ih_l{i}")).T,  # noqa: E731
                                    "w_h": g(getattr(m, f"weight_hh_l{i}")).T,
                                    "b": g(getattr(m, f"bias_ih_l{i}")) + (0 if grad else g(getattr(m, f"bias_hh_l{i}")))}
                      for i in range(L)}
    return {"src_embed": {"w": g(mods["src_embed"].weight)}, "tgt_embed": {"w": g(mods["tgt_embed"].weight)},
            "encoder": lstm(mods["encoder"]), "decoder": lstm(mods["decoder"]),
            "head": {"w": g(mods["head"].weight).T, "b": g(mods["head"].bias)}}


@pytest.mark.torch
def test_equals_torch_encoder_decoder_in_logits_and_gradients(model):
    torch = pytest.importorskip("torch")
    mods = torch_reference(torch)
    src, tgt = (torch.tensor(np.asarray(a), dtype=torch.long) for a in (SRC, TGT))
    want = torch_forward(torch, mods, src, tgt, LENGTHS)
    G = np.random.default_rng(0).normal(size=want.shape).astype(np.float32)  # a random cotangent
    (want * torch.tensor(G)).sum().backward()
    params = to_jdl(mods)
    m, ours = model
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, ours)
    apply = lambda p: m.apply(p, {}, (SRC, TGT), src_mask=SRC_MASK)[0]  # noqa: E731
    logits = jax.jit(apply)(params)
    assert logits.shape == (3, 4, V_TGT)
    np.testing.assert_allclose(logits, _np(want), rtol=1e-5, atol=1e-5)
    grads = jax.jit(jax.grad(lambda p: jnp.sum(apply(p) * G)))(params)
    assert_close(grads, to_jdl(mods, grad=True), rtol=1e-4, atol=1e-5)


def test_padding_is_skipped_and_the_carry_is_the_last_real_step(model):
    m, params = model
    apply = jax.jit(lambda p, s: m.apply(p, {}, (s, TGT), src_mask=SRC_MASK)[0])
    other_pad = SRC.at[1, 3:].set(4).at[2, 1:].set(8)  # other ids under the mask
    np.testing.assert_allclose(apply(params, other_pad), apply(params, SRC), rtol=1e-6, atol=1e-6)
    # the masked encoder's carry equals the carry of the unpadded sequence alone
    short = lstm_encode(CONFIG, params, SRC[1:2, :3])
    padded = lstm_encode(CONFIG, params, SRC, src_mask=SRC_MASK)
    for layer in range(L):
        np.testing.assert_allclose(padded[layer].h[1], short[layer].h[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(padded[layer].c[1], short[layer].c[0], rtol=1e-5, atol=1e-6)


def test_greedy_decode_equals_a_step_by_step_argmax(model):
    m, params = model
    n = 5
    out = jax.jit(lambda p: lstm_greedy_decode(CONFIG, p, SRC, bos=1, length=n, src_mask=SRC_MASK))(params)
    assert out.shape == (3, n) and out.dtype == jnp.int32
    ys = jnp.ones((3, 1), jnp.int32)
    apply = jax.jit(lambda p, ys: m.apply(p, {}, (SRC, ys), src_mask=SRC_MASK)[0])
    for _ in range(n):  # re-read the whole prefix with teacher forcing, take the last argmax
        logits = apply(params, ys)
        ys = jnp.concatenate([ys, jnp.argmax(logits[:, -1], -1)[:, None].astype(jnp.int32)], axis=1)
    np.testing.assert_array_equal(out, ys[:, 1:])
    assert len(np.unique(np.asarray(out))) > 1  # not a constant output that any loop would match


def test_param_count_is_torchs_less_the_second_lstm_biases(model):
    torch = pytest.importorskip("torch")
    _, params = model
    mods = torch_reference(torch)
    n_torch = sum(p.numel() for mod in mods.values() for p in mod.parameters())
    assert sum(a.size for a in jax.tree.leaves(params)) == n_torch - 2 * L * 4 * H


def test_errors(model):
    m, params = model
    with pytest.raises(ValueError, match="Seq2SeqConfig: hidden must be a positive int, got 0"):
        Seq2SeqConfig(3, 3, hidden=0)
    with pytest.raises(ValueError, match=r"lstm_encoder_decoder: src_mask must be booleans of shape \(B, S\) = \(3, 5\)"):
        m.apply(params, {}, (SRC, TGT), src_mask=SRC)
    with pytest.raises(ValueError, match=r"src_mask must be booleans .* got bool \(3, 4\)"):
        m.apply(params, {}, (SRC, TGT), src_mask=SRC_MASK[:, :4])
    with pytest.raises(TypeError, match="lstm_encoder_decoder: expected integer token ids"):
        m.apply(params, {}, (SRC.astype(jnp.float32), TGT))
    with pytest.raises(TypeError, match="lstm_encoder_decoder: expected integer token ids"):
        m.init(jax.random.key(0), (SRC, TGT.astype(jnp.float32)))
    with pytest.raises(TypeError, match="lstm_encoder_decoder: apply got an unexpected keyword argument 'mask'"):
        m.apply(params, {}, (SRC, TGT), mask=SRC_MASK)
