"""MultiHeadAttention: equal to flax's MultiHeadDotProductAttention and torch's
MultiheadAttention given the same weights (self and cross, with masks), finite differences,
and the course's worked shapes (8 heads of 2×64 concatenate to 2×512, W^O keeps 2×512)."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.nn.attention import causal_mask, dot_product_attention, padding_mask
from jdl.nn.multihead import (
    MultiHeadAttention, merge_heads, multi_head_attention, project_out, project_qkv, split_heads,
)
from tests.helpers import assert_init_shapes, draw_normal

B, TQ, TK, D, H = 2, 5, 6, 8, 2


@pytest.fixture(scope="module")
def setup():
    """Random (non-zero) biases too, so that every projection's bias is checked."""
    ks = jax.random.split(jax.random.key(0), 4)
    x, ctx = draw_normal(ks[0], (B, TQ, D)), draw_normal(ks[1], (B, TK, D))
    params, _ = MultiHeadAttention(H, D).init(ks[2], x)
    params = jax.tree.map(lambda p, k_: p + 0.1 * draw_normal(k_, p.shape), params,
                          jax.tree.unflatten(jax.tree.structure(params),
                                             list(jax.random.split(ks[3], 8))))
    return x, ctx, params


def to_flax(params):
    dk = D // H
    kernel = lambda w: w.reshape(D, H, dk)  # (d_model, h·d_k) → (d_model, h, d_k)
    p = {n: {"kernel": kernel(params[c]["w"]), "bias": params[c]["b"].reshape(H, dk)}
         for n, c in (("query", "q"), ("key", "k"), ("value", "v"))}
    p["out"] = {"kernel": params["o"]["w"].reshape(H, dk, D), "bias": params["o"]["b"]}
    return {"params": p}


def test_shapes_and_init(setup):
    x, _, _ = setup
    params, state, y = assert_init_shapes(MultiHeadAttention(H, D, d_k=3, d_v=5), x)
    assert jax.tree.map(jnp.shape, params) == {
        "q": {"w": (D, 6), "b": (6,)}, "k": {"w": (D, 6), "b": (6,)},
        "v": {"w": (D, 10), "b": (10,)}, "o": {"w": (10, D), "b": (D,)}}
    assert y.shape == x.shape and state == {}
    assert jdl.param_count(params) == 2 * D * 6 + D * 10 + 10 * D + 6 + 6 + 10 + D
    assert "b" not in MultiHeadAttention(H, D, use_bias=False).init(jax.random.key(0), x)[0]["o"]


@pytest.mark.parametrize("cross", [False, True])
def test_equals_flax_with_a_mask(setup, cross):
    x, ctx, params = setup
    kv = ctx if cross else x
    mask = padding_mask(jnp.array([TK - 2, TK]) if cross else jnp.array([3, TQ]), kv.shape[1])
    causal = not cross
    y, _ = MultiHeadAttention(H, D).apply(params, {}, x, context=ctx if cross else None,
                                          mask=mask, causal=causal)
    flax_mask = mask[:, None] & (causal_mask(TQ, TQ)[None, None] if causal else True)
    ref = fnn.MultiHeadDotProductAttention(H, qkv_features=D, out_features=D)
    y_flax = ref.apply(to_flax(params), x, kv, mask=flax_mask)
    np.testing.assert_allclose(y, y_flax, rtol=1e-5, atol=2e-6)


@pytest.mark.torch
@pytest.mark.parametrize("cross", [False, True])
def test_equals_torch_values_weights_and_gradients(setup, cross):
    torch = pytest.importorskip("torch")
    x, ctx, params = setup
    kv = ctx if cross else x
    n_k = kv.shape[1]
    ref = torch.nn.MultiheadAttention(D, H, batch_first=True)
    tw = lambda a: torch.tensor(np.asarray(a))
    with torch.no_grad():  # torch stores W as (d_out, d_in) and q, k, v stacked: [W_q; W_k; W_v]
        ref.in_proj_weight.copy_(tw(jnp.concatenate([params[c]["w"].T for c in "qkv"])))
        ref.in_proj_bias.copy_(tw(jnp.concatenate([params[c]["b"] for c in "qkv"])))
        ref.out_proj.weight.copy_(tw(params["o"]["w"].T))
        ref.out_proj.bias.copy_(tw(params["o"]["b"]))
    lengths = jnp.array([n_k - 2, n_k])
    pad = padding_mask(lengths, n_k)  # (B, 1, n_k), True = attend
    causal = causal_mask(TQ, n_k)
    xt = tw(x).requires_grad_()
    kvt = tw(ctx) if cross else xt
    y_t, w_t = ref(xt, kvt, kvt, key_padding_mask=~tw(pad[:, 0]), attn_mask=~tw(causal),
                   average_attn_weights=False)  # torch's boolean masks: True = do not attend
    y_t.pow(2).sum().backward()
    layer = MultiHeadAttention(H, D)
    apply = lambda p, x: layer.apply(p, {}, x, context=ctx if cross else None, mask=pad,
                                     causal=True, return_weights=True)[0]
    y, w = apply(params, x)
    np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(w, w_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    g_params, g_x = jax.grad(lambda p, x: jnp.sum(apply(p, x)[0] ** 2), argnums=(0, 1))(params, x)
    np.testing.assert_allclose(g_x, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g_params["o"]["w"], ref.out_proj.weight.grad.numpy().T,
                               rtol=1e-4, atol=1e-5)


def test_gradient_matches_finite_differences_float64():
    with jax.enable_x64(True):
        x = draw_normal(jax.random.key(1), (B, 3, 4), jnp.float64)
        ctx = draw_normal(jax.random.key(2), (B, 4, 4), jnp.float64)
        layer = MultiHeadAttention(2, 4, d_k=1, d_v=2)
        params, _ = layer.init(jax.random.key(3), x)
        mask = padding_mask(jnp.array([2, 4]), 4)
        f = jax.jit(lambda p: jnp.sum(jnp.sin(layer.apply(p, {}, x, context=ctx, mask=mask)[0])))
        g = jax.jit(jax.grad(f))(params)  # jitted: an op-by-op backward pass compiles every primitive
        errors = jdl.autodiff.compare_grads(g, jdl.autodiff.numerical_grad(f, params))
        g_bk = g["k"]["b"]
    # b_k adds q_i·b_k to every score of row i, which the softmax ignores: its gradient is 0 and
    # finite differences give only rounding noise there (relative error 1 of ~1e-11 against 0)
    assert np.abs(g_bk).max() < 1e-12
    del errors["['k']['b']"]
    assert max(errors.values()) < 1e-7, errors


def test_the_course_worked_shapes():
    """Decoder input 2×512 attends to an encoder output 4×512 with 8 heads of d_k = 64: each
    head's Q is 2×64, K = V 4×64 and its output 2×64; the 8 outputs concatenate to 2×512
    (head i in columns 64i..64i+63, equal to single-head attention on head i's projections),
    and W^O (512×512) keeps 2×512."""
    layer = MultiHeadAttention(8, 512)
    x_dec = draw_normal(jax.random.key(1), (2, 512))
    x_enc = draw_normal(jax.random.key(2), (4, 512))
    params, _ = layer.init(jax.random.key(0), x_dec)
    q, k, v = project_qkv(params, x_dec[None], x_enc[None], num_heads=8)
    assert (q.shape, k.shape, v.shape) == ((1, 8, 2, 64), (1, 8, 4, 64), (1, 8, 4, 64))
    heads = dot_product_attention(q, k, v)  # (1, 8, 2, 64)
    z = merge_heads(heads)
    assert heads.shape[-2:] == (2, 64) and z.shape == (1, 2, 512)
    for i in (0, 5):  # head i = Attention(X_dec W_q^i, X_enc W_k^i, X_enc W_v^i)
        cols = slice(64 * i, 64 * (i + 1))
        proj = lambda c, x: x @ params[c]["w"][:, cols] + params[c]["b"][None, cols]
        head = dot_product_attention(proj("q", x_dec), proj("k", x_enc), proj("v", x_enc))
        np.testing.assert_allclose(z[0, :, cols], head, rtol=1e-4, atol=1e-5)
    assert params["o"]["w"].shape == (512, 512)
    y, _ = layer.apply(params, {}, x_dec, context=x_enc)
    assert y.shape == (2, 512)
    np.testing.assert_allclose(y, z[0] @ params["o"]["w"] + params["o"]["b"][None], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(project_out(params, heads)[0], y, rtol=1e-5, atol=1e-5)


def test_split_merge_and_unbatched_input(setup):
    x, _, params = setup
    np.testing.assert_array_equal(merge_heads(split_heads(x, 4)), x)
    np.testing.assert_array_equal(split_heads(x, 4)[:, 1], x[:, :, 2:4])  # head 1: features 2..3
    layer = MultiHeadAttention(H, D)
    y, _ = layer.apply(params, {}, x, causal=True)
    y0, _ = layer.apply(params, {}, x[0], causal=True)
    np.testing.assert_allclose(y0, y[0], rtol=1e-6, atol=1e-6)
    y_mask, _ = layer.apply(params, {}, x, mask=causal_mask(TQ, TQ))
    np.testing.assert_array_equal(y, y_mask)
    y_jit, _ = jax.jit(lambda p, x: layer.apply(p, {}, x, causal=True))(params, x)
    np.testing.assert_allclose(y_jit, y, rtol=1e-6, atol=1e-6)


def test_jax_impl_equals_plain(setup):
    """(Gradients of the impls are compared in tests/nn/test_attention.py.)"""
    x, ctx, params = setup
    mask = padding_mask(jnp.array([3, TK]), TK)
    run = lambda impl: lambda p: MultiHeadAttention(H, D, impl=impl).apply(
        p, {}, x, context=ctx, mask=mask)[0]
    np.testing.assert_allclose(run("jax")(params), run("plain")(params), rtol=1e-5, atol=1e-6)


def test_dropout_drops_attention_weights(setup, key):
    x, _, params = setup
    layer = MultiHeadAttention(H, D, dropout=0.5)
    y_eval, _ = layer.apply(params, {}, x)
    np.testing.assert_array_equal(y_eval, MultiHeadAttention(H, D).apply(params, {}, x)[0])
    (y, w), _ = layer.apply(params, {}, x, key=key, train=True, return_weights=True)
    q, k, v = project_qkv(params, x, num_heads=H)
    z = jnp.einsum("bhqk,bhkd->bhqd", jdl.nn.dropout(key, w, 0.5), v)  # (B, h, T, d_v)
    np.testing.assert_allclose(y, project_out(params, z), rtol=1e-5, atol=1e-6)
    y2, _ = multi_head_attention(params, x, H, dropout=0.5, key=key)
    np.testing.assert_allclose(y2, y, rtol=1e-6, atol=1e-6)
    assert not np.allclose(y, y_eval)


def test_errors_name_the_layer(setup, key):
    x, ctx, params = setup
    layer = MultiHeadAttention(H, D)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: x must have shape \(B, T, d_model\) "
                                         r"or \(T, d_model\) with d_model=8, got \(2, 5, 7\)"):
        layer.apply(params, {}, x[..., :7])
    with pytest.raises(ValueError, match=r"context must have shape .* d_model=8, got \(2, 6, 4\)"):
        layer.apply(params, {}, x, context=ctx[..., :4])
    with pytest.raises(ValueError, match=r"context \(1, 6, 8\) and x \(2, 5, 8\) must have the "
                                         r"same batch axes"):
        layer.apply(params, {}, x, context=ctx[:1])
    with pytest.raises(ValueError, match=r"MultiHeadAttention: mask of shape \(2, 1, 5, 5\) does "
                                         r"not broadcast to the attention scores .* = \(2, 2, 5, 6\)"):
        layer.apply(params, {}, x, context=ctx, mask=jnp.ones((B, TQ, TQ), bool))
    with pytest.raises(TypeError, match="MultiHeadAttention: mask must be boolean"):
        layer.apply(params, {}, x, mask=jnp.ones((TQ, TQ)))
    with pytest.raises(ValueError, match="d_model=8 is not divisible by num_heads=3; pass d_k"):
        MultiHeadAttention(3, D)
    with pytest.raises(ValueError, match="dropout on the attention weights needs impl='plain'"):
        MultiHeadAttention(H, D, dropout=0.1, impl="jax")
    with pytest.raises(ValueError, match="return_weights=True needs impl='plain'"):
        MultiHeadAttention(H, D, impl="jax").apply(params, {}, x, return_weights=True)
    with pytest.raises(ValueError, match="MultiHeadAttention is stochastic and needs a random key"):
        MultiHeadAttention(H, D, dropout=0.1).apply(params, {}, x, train=True)
    with pytest.raises(TypeError, match="multihead_attention: apply got an unexpected keyword "
                                        "argument 'casual'.*did you mean 'causal'"):
        layer.apply(params, {}, x, casual=True)


def test_fused_qkv_projection_equals_three_matmuls(setup):
    """project_qkv(fused=True) (one matmul on [W_q W_k W_v]) gives the three projections' Q, K,
    V and the same gradients, also with d_v ≠ d_k and without biases; with a context (cross-
    attention) it falls back to separate projections."""
    from jdl.nn.multihead import init_params, multi_head_attention, project_qkv

    x, ctx, params = setup
    for p in (params, init_params(jax.random.key(5), H, D, 3, 5, use_bias=False)):
        for a, b in zip(project_qkv(p, x, None, H, fused=True), project_qkv(p, x, None, H)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    loss = lambda fused: jax.grad(lambda p: jnp.sum(jnp.sin(
        multi_head_attention(p, x, H, causal=True, fused_qkv=fused)[0])))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), loss(True), loss(False))
    for a, b in zip(project_qkv(params, x, ctx, H, fused=True), project_qkv(params, x, ctx, H)):
        np.testing.assert_array_equal(a, b)
