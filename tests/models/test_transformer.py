"""The encoder–decoder Transformer: equal to PyTorch's nn.Transformer between the same embeddings
and head, causal in the target, greedy decoding equal to a step-by-step loop, and it learns."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.models import TransformerConfig, encoder_decoder, greedy_decode
from jdl.models.transformer import decode, encode
from jdl.nn import sinusoidal_positions
from tests.nn import torch_transformer as tt

V_SRC, V_TGT, D, H, F, L = 11, 9, 8, 2, 16, 2
CONFIG = TransformerConfig(V_SRC, V_TGT, d_model=D, num_heads=H, num_layers=L, d_ff=F, dropout=0.0)
SRC = jnp.array([[1, 4, 2, 7, 0], [3, 3, 9, 0, 0]], jnp.int32)  # (B, S), 0 = padding
SRC_MASK = SRC != 0
TGT = jnp.array([[1, 5, 2, 8], [1, 6, 6, 3]], jnp.int32)  # (B, T)


@pytest.fixture(scope="module")
def model():
    m = encoder_decoder(CONFIG)
    params, _ = m.init(jax.random.key(0), (SRC, TGT))
    return m, params


@pytest.mark.torch
def test_equals_torch_transformer(model):
    torch = pytest.importorskip("torch")
    ref = tt.randomize(torch, torch.nn.Transformer(D, H, L, L, F, 0.0, "relu", batch_first=True,
                                                   norm_first=True), seed=4)
    emb_src, emb_tgt = torch.nn.Embedding(V_SRC, D), torch.nn.Embedding(V_TGT, D)
    head = tt.randomize(torch, torch.nn.Linear(D, V_TGT), seed=5)
    pe = torch.tensor(np.asarray(sinusoidal_positions(8, D)))
    src, tgt = (torch.tensor(np.asarray(a), dtype=torch.long) for a in (SRC, TGT))
    pad = torch.tensor(~np.asarray(SRC_MASK))
    x_src = emb_src(src) * D ** 0.5 + pe[: SRC.shape[1]]
    x_tgt = emb_tgt(tgt) * D ** 0.5 + pe[: TGT.shape[1]]
    y = ref(x_src, x_tgt, tgt_mask=ref.generate_square_subsequent_mask(TGT.shape[1]), tgt_is_causal=True,
            src_key_padding_mask=pad, memory_key_padding_mask=pad)
    want = tt.to_numpy(head(y))
    params = {"src_embed": {"w": jnp.asarray(tt.to_numpy(emb_src.weight))},
              "tgt_embed": {"w": jnp.asarray(tt.to_numpy(emb_tgt.weight))},
              "encoder": tt.stack(ref.encoder, tt.encoder_layer, "transformer_block"),
              "decoder": tt.stack(ref.decoder, tt.decoder_layer, "decoder_block"),
              "head": {"w": jnp.asarray(tt.to_numpy(head.weight)).T, "b": jnp.asarray(tt.to_numpy(head.bias))}}
    m, ours = model
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, ours)
    logits, _ = jax.jit(m.apply)(params, {}, (SRC, TGT), src_mask=SRC_MASK)
    assert logits.shape == (2, 4, V_TGT)
    np.testing.assert_allclose(logits, want, rtol=1e-5, atol=5e-5)


def test_target_is_causal_and_padding_is_ignored(model):
    m, params = model
    apply = jax.jit(m.apply)
    logits, _ = apply(params, {}, (SRC, TGT), src_mask=SRC_MASK)
    later, _ = apply(params, {}, (SRC, TGT.at[:, 2:].set(7)), src_mask=SRC_MASK)
    np.testing.assert_allclose(later[:, :2], logits[:, :2], rtol=1e-5, atol=1e-6)
    assert not np.allclose(later[:, 2:], logits[:, 2:])
    padded, _ = apply(params, {}, (SRC.at[1, 3:].set(5), TGT), src_mask=SRC_MASK)  # other pad ids
    np.testing.assert_allclose(padded, logits, rtol=1e-5, atol=1e-6)


def test_greedy_decode_equals_a_step_by_step_loop(model):
    _, params = model
    out = jax.jit(lambda p, s, m: greedy_decode(CONFIG, p, s, bos=1, length=4, src_mask=m))(params, SRC, SRC_MASK)
    z = jax.jit(lambda p, s, m: encode(CONFIG, p, s, src_mask=m))(params, SRC, SRC_MASK)
    dec = jax.jit(lambda p, ys, z, m: decode(CONFIG, p, ys, z, src_mask=m))  # op by op: 4× slower
    ys = jnp.ones((2, 1), jnp.int32)
    for _ in range(4):  # grow the prefix one argmax at a time (one compilation per prefix length)
        nxt = jnp.argmax(dec(params, ys, z, SRC_MASK)[:, -1], axis=-1)
        ys = jnp.concatenate([ys, nxt[:, None].astype(jnp.int32)], axis=1)
    np.testing.assert_array_equal(out, ys[:, 1:])


def test_learns_to_reverse_digit_strings():
    """Teacher-forced training on reversed strings: the loss falls from about log V to under half,
    below the log 6 ≈ 1.79 of guessing from the digit frequencies alone."""
    c = TransformerConfig(8, 8, d_model=16, num_heads=2, num_layers=1, d_ff=32, dropout=0.1,
                          positions="learned", max_len=8, tie_output=True)
    m = encoder_decoder(c)
    rng = np.random.default_rng(0)
    src = jnp.asarray(rng.integers(2, 8, size=(32, 5)), jnp.int32)
    tgt_out = src[:, ::-1]
    tgt_in = jnp.concatenate([jnp.ones((32, 1), jnp.int32), tgt_out[:, :-1]], axis=1)  # bos = 1
    params, _ = m.init(jax.random.key(1), (src, tgt_in))
    assert "head" not in params and params["tgt_pos"]["w"].shape == (8, 16)
    opt = jdl.optim.adam(1e-2)

    def loss_fn(p, key):
        logits, _ = m.apply(p, {}, (src, tgt_in), key=key, train=True)
        return jdl.losses.softmax_cross_entropy(logits, tgt_out)

    @jax.jit
    def step(p, s, key):
        loss, g = jax.value_and_grad(loss_fn)(p, key)
        u, s = opt.update(g, s, p)
        return jdl.optim.apply_updates(p, u), s, loss

    state = opt.init(params)
    losses = []
    for i in range(60):
        params, state, loss = step(params, state, jax.random.key(i))
        losses.append(float(loss))
    assert losses[0] > 1.5 and losses[-1] < min(0.5 * losses[0], np.log(6)), losses[::10]


def test_errors(model):
    m, params = model
    with pytest.raises(ValueError, match="TransformerConfig: positions must be 'sinusoidal' or 'learned'"):
        TransformerConfig(3, 3, positions="rope")
    with pytest.raises(ValueError, match=r"encoder_decoder: src_mask must be booleans of shape \(B, S\)"):
        m.apply(params, {}, (SRC, TGT), src_mask=SRC)
    with pytest.raises(TypeError, match="encoder_decoder: expected integer token ids"):
        m.apply(params, {}, (SRC.astype(jnp.float32), TGT))
    with pytest.raises(TypeError, match="encoder_decoder: apply got an unexpected keyword argument 'mask'"):
        m.apply(params, {}, (SRC, TGT), mask=SRC_MASK)
