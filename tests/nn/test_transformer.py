"""Transformer blocks and stacks: equal to PyTorch's TransformerEncoderLayer/DecoderLayer and
TransformerEncoder/Decoder given the same weights (Post-LN and Pre-LN, ReLU and GELU, masks),
the course's worked shape (a block maps 2 × 512 to 2 × 512), and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn import DecoderBlock, TransformerBlock, TransformerDecoder, TransformerEncoder, sinusoidal_positions
from jdl.nn.attention import causal_mask, padding_mask
from tests.helpers import assert_init_shapes, draw_normal
from tests.nn import torch_transformer as tt

B, T, S, D, H, F = 2, 5, 4, 8, 2, 16
LENGTHS = np.array([5, 3])  # the second sequence has two padding tokens
SRC_LENGTHS = np.array([2, 4])

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def xs():
    rng = np.random.default_rng(0)
    return rng.normal(size=(B, T, D)).astype(np.float32), rng.normal(size=(B, S, D)).astype(np.float32)


def torch_padding(lengths, n):
    return torch.tensor(np.arange(n)[None, :] >= lengths[:, None])  # True = ignore (PyTorch)


@pytest.mark.torch
@pytest.mark.parametrize("norm_first, activation", [(False, "relu"), (True, "gelu"), (False, "gelu"),
                                                    (True, "relu")])
def test_encoder_block_equals_torch(xs, norm_first, activation):
    x, _ = xs
    ref = tt.randomize(torch, torch.nn.TransformerEncoderLayer(
        D, H, F, 0.0, activation, batch_first=True, norm_first=norm_first))
    attn_mask = torch.tensor(np.triu(np.ones((T, T), bool), 2))  # True = ignore: no key 2+ ahead
    want = ref(torch.tensor(x), src_mask=attn_mask, src_key_padding_mask=torch_padding(LENGTHS, T))
    mask = ~attn_mask.numpy()[None] & np.asarray(padding_mask(jnp.asarray(LENGTHS), T))  # (B, T, T)
    block = TransformerBlock(H, D, F, norm_first=norm_first, activation=activation)
    y, _ = jax.jit(block.apply)(tt.encoder_layer(ref), {}, jnp.asarray(x), mask=jnp.asarray(mask))
    np.testing.assert_allclose(y, tt.to_numpy(want), rtol=1e-5, atol=2e-5)


@pytest.mark.torch
@pytest.mark.parametrize("norm_first, activation", [(False, "relu"), (True, "gelu")])
def test_decoder_block_equals_torch(xs, norm_first, activation):
    x, memory = xs
    ref = tt.randomize(torch, torch.nn.TransformerDecoderLayer(
        D, H, F, 0.0, activation, batch_first=True, norm_first=norm_first), seed=1)
    want = ref(torch.tensor(x), torch.tensor(memory), tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(T),
               tgt_is_causal=True, memory_key_padding_mask=torch_padding(SRC_LENGTHS, S))
    block = DecoderBlock(H, D, F, norm_first=norm_first, activation=activation)
    y, _ = jax.jit(block.apply)(tt.decoder_layer(ref), {}, jnp.asarray(x), context=jnp.asarray(memory),
                                context_mask=padding_mask(jnp.asarray(SRC_LENGTHS), S))
    np.testing.assert_allclose(y, tt.to_numpy(want), rtol=1e-5, atol=2e-5)


@pytest.mark.torch
@pytest.mark.parametrize("norm_first, scan", [(True, False), (False, True)])
def test_stacks_equal_torch_encoder_and_decoder(xs, norm_first, scan):
    x, memory = xs
    enc_layer = torch.nn.TransformerEncoderLayer(D, H, F, 0.0, "gelu", batch_first=True, norm_first=norm_first)
    dec_layer = torch.nn.TransformerDecoderLayer(D, H, F, 0.0, "gelu", batch_first=True, norm_first=norm_first)
    final = (lambda: torch.nn.LayerNorm(D)) if norm_first else (lambda: None)
    ref_enc = tt.randomize(torch, torch.nn.TransformerEncoder(enc_layer, 2, norm=final(),
                                                             enable_nested_tensor=False), seed=2)
    ref_dec = tt.randomize(torch, torch.nn.TransformerDecoder(dec_layer, 2, norm=final()), seed=3)
    z_ref = ref_enc(torch.tensor(memory), src_key_padding_mask=torch_padding(SRC_LENGTHS, S))
    y_ref = ref_dec(torch.tensor(x), z_ref, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(T),
                    tgt_is_causal=True, memory_key_padding_mask=torch_padding(SRC_LENGTHS, S))
    encoder = TransformerEncoder(2, H, D, F, norm_first=norm_first, scan=scan)
    decoder = TransformerDecoder(2, H, D, F, norm_first=norm_first, scan=scan)
    src_mask = padding_mask(jnp.asarray(SRC_LENGTHS), S)
    p_enc = tt.stack(ref_enc, tt.encoder_layer, "transformer_block", scan)
    p_dec = tt.stack(ref_dec, tt.decoder_layer, "decoder_block", scan)
    shapes = lambda tree: jax.tree.map(jnp.shape, tree)  # noqa: E731
    # the shapes init draws (eval_shape: no sampler compiled for each leaf's shape)
    assert shapes(p_enc) == shapes(jax.eval_shape(encoder.init, jax.random.key(0), memory)[0])
    assert shapes(p_dec) == shapes(jax.eval_shape(decoder.init, jax.random.key(0), x)[0])
    z, _ = jax.jit(encoder.apply)(p_enc, {}, jnp.asarray(memory), mask=src_mask)
    np.testing.assert_allclose(z, tt.to_numpy(z_ref), rtol=1e-5, atol=3e-5)
    y, _ = jax.jit(decoder.apply)(p_dec, {}, jnp.asarray(x), context=z, context_mask=src_mask)
    np.testing.assert_allclose(y, tt.to_numpy(y_ref), rtol=1e-5, atol=3e-5)


@pytest.mark.torch
def test_course_worked_shape_a_block_maps_2x512_to_2x512():
    """Two words with sinusoidal positions, Z ∈ R^{2×512}, through one block of 8 heads (d_k = 64)
    and d_ff = 2048: the block keeps 2 × 512, and equals PyTorch's Post-LN layer."""
    rng = np.random.default_rng(5)
    z = jnp.asarray(rng.normal(size=(2, 512)), jnp.float32) + sinusoidal_positions(2, 512)
    block = TransformerBlock(8, 512, 2048, norm_first=False, activation="relu")
    params, state, y = assert_init_shapes(block, z)
    assert y.shape == (2, 512) and params["attn"]["q"]["w"].shape == (512, 8 * 64)
    ref = tt.randomize(torch, torch.nn.TransformerEncoderLayer(512, 8, 2048, 0.0, batch_first=True), scale=0.05)
    want = ref(torch.tensor(np.asarray(z))[None])[0]
    y, _ = block.apply(tt.encoder_layer(ref), state, z)
    np.testing.assert_allclose(y, tt.to_numpy(want), rtol=1e-4, atol=1e-4)


def _perturbed(tree, seed):
    """Random params away from the initial zero biases and unit LayerNorm scales (drawn in
    numpy: jax.random would compile a sampler per leaf shape)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: np.asarray(a) + 0.1 * rng.standard_normal(a.shape).astype(a.dtype), tree)


def test_gradients_match_finite_differences():
    """A Post-LN GELU decoder block (self- and cross-attention, feed-forward, three LayerNorms)
    entry by entry, and a Pre-LN ReLU encoder block along random directions, in float64."""
    with jax.enable_x64(True):
        x = draw_normal(jax.random.key(1), (1, 3, 4), jnp.float64)
        ctx = draw_normal(jax.random.key(2), (1, 2, 4), jnp.float64)
        dec = DecoderBlock(2, 4, 4, norm_first=False, activation="gelu")
        t = _perturbed({"dec": dec.init(jax.random.key(4), x)[0], "x": x, "ctx": ctx}, 5)
        f = jax.jit(lambda t: jnp.sum(jnp.sin(dec.apply(t["dec"], {}, t["x"], context=t["ctx"])[0])))
        g = jax.jit(jax.grad(f))(t)  # jitted: op-by-op backward passes compile every primitive
        errors = jdl.autodiff.compare_grads(g, jdl.autodiff.numerical_grad(f, t))
        enc = TransformerBlock(2, 4, 6, norm_first=True, activation="relu")
        te = _perturbed({"enc": enc.init(jax.random.key(3), x)[0], "x": x}, 6)
        fe = jax.jit(lambda t: jnp.sum(jnp.sin(enc.apply(t["enc"], {}, t["x"], mask=causal_mask(3, 3))[0])))
        ge = jax.jit(jax.grad(fe))(te)
        along = jax.jit(lambda s, v: fe(jax.tree.map(lambda a, d: a + s * d, te, v)))  # f(θ + s·v)
        for seed in range(3):
            v = _perturbed(jax.tree.map(np.zeros_like, te), 10 + seed)  # a random direction
            fd = (float(along(1e-6, v)) - float(along(-1e-6, v))) / 2e-6
            exact = sum(np.vdot(a, d) for a, d in zip(jax.tree.leaves(ge), jax.tree.leaves(v)))
            np.testing.assert_allclose(fd, exact, rtol=1e-7)
    # softmax is shift-invariant, so the key bias adds the same q·b_k to a query's every score:
    # its gradient is exactly 0, and finite differences give round-off only
    for attn in (g["dec"]["self_attn"], g["dec"]["cross_attn"], ge["enc"]["attn"]):
        np.testing.assert_allclose(attn["k"]["b"], 0, atol=1e-12)
    errors = {k: v for k, v in errors.items() if "['k']['b']" not in k}
    assert len(errors) == 26 and max(errors.values()) < 1e-6, errors


def test_causal_block_ignores_the_future(key):
    x = draw_normal(key, (B, T, D))
    block = TransformerBlock(H, D, F, causal=True)
    params, _ = block.init(key, x)
    apply = jax.jit(block.apply)
    y, _ = apply(params, {}, x)
    y2, _ = apply(params, {}, x.at[:, -1].add(10.0))
    np.testing.assert_allclose(y2[:, :-1], y[:, :-1], rtol=1e-6, atol=1e-6)
    assert not np.allclose(y2[:, -1], y[:, -1])
    y3, _ = jax.jit(TransformerBlock(H, D, F).apply)(params, {}, x, mask=causal_mask(T, T))
    np.testing.assert_allclose(y3, y, rtol=1e-6, atol=1e-6)  # the same mask given explicitly


def test_dropout_in_training(key, xs):
    x = jnp.asarray(xs[0])
    block = TransformerBlock(H, D, F, dropout=0.3)
    params, _ = block.init(key, x)
    train = jax.jit(lambda p, x, k: block.apply(p, {}, x, key=k, train=True))
    y_eval, _ = jax.jit(block.apply)(params, {}, x)
    y1, _ = train(params, x, jax.random.key(7))
    y2, _ = train(params, x, jax.random.key(7))
    y3, _ = train(params, x, jax.random.key(8))
    np.testing.assert_array_equal(y1, y2)  # same key, same masks
    assert not np.allclose(y1, y_eval, atol=1e-3) and not np.allclose(y1, y3, atol=1e-3)
    y0, _ = jax.jit(lambda p, x: TransformerBlock(H, D, F).apply(p, {}, x, train=True))(params, x)
    np.testing.assert_allclose(y0, y_eval, rtol=1e-6, atol=1e-6)  # p = 0: training is evaluation


def test_errors_name_the_layer(key, xs):
    x = jnp.asarray(xs[0])
    with pytest.raises(ValueError, match="TransformerBlock: d_ff must be a positive int, got 0"):
        TransformerBlock(H, D, 0)
    with pytest.raises(ValueError, match=r"TransformerBlock: expected an input of shape \(B, T, d_model\) "
                                         r"or \(T, d_model\) with d_model=6, got \(2, 5, 8\)"):
        TransformerBlock(H, 6, F).init(key, x)
    with pytest.raises(ValueError, match="TransformerBlock is stochastic and needs a random key"):
        block = TransformerBlock(H, D, F, dropout=0.1)
        block.apply(block.init(key, x)[0], {}, x, train=True)
    dec = DecoderBlock(H, D, F)
    params, _ = dec.init(key, x)
    with pytest.raises(ValueError, match=r"DecoderBlock: apply needs context=the encoder's output"):
        dec.apply(params, {}, x)
    with pytest.raises(TypeError, match="decoder_block: apply got an unexpected keyword argument "
                                        "'contxt'.*did you mean 'context'"):
        dec.apply(params, {}, x, contxt=x)
    with pytest.raises(ValueError, match="TransformerEncoder: num_layers must be a positive int, got 0"):
        TransformerEncoder(0, H, D, F)
    enc = TransformerEncoder(2, H, D, F)
    with pytest.raises(TypeError, match="TransformerEncoder: apply got an unexpected keyword argument 'context'"):
        enc.apply(enc.init(key, x)[0], {}, x, context=x)


def test_stack_init_equals_serial_and_repeat_init(key, xs):
    """The stacks initialize their blocks with serial's and repeat's keys and layouts."""
    x = jnp.asarray(xs[0])
    block = TransformerBlock(H, D, F)
    p_loop, _ = TransformerEncoder(2, H, D, F).init(key, x)
    p_scan, _ = TransformerEncoder(2, H, D, F, scan=True).init(key, x)
    k = jax.random.fold_in(key, 0)
    np.testing.assert_array_equal(jdl.nn.serial(block, block).init(k, x)[0]["1_transformer_block"]["ffn"]["fc2"]["w"],
                                  p_loop["layers"]["1_transformer_block"]["ffn"]["fc2"]["w"])
    np.testing.assert_array_equal(jdl.nn.repeat(block, 2).init(k, x)[0]["attn"]["q"]["w"],
                                  p_scan["layers"]["attn"]["q"]["w"])
    assert set(p_loop) == {"layers", "norm"} and "norm" not in TransformerEncoder(2, H, D, F, norm_first=False).init(key, x)[0]
