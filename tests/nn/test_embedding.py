"""Embedding: row id of the table, equal to one-hot · W, to torch.nn.Embedding and flax's Embed;
its gradient is the scatter-add of the upstream gradients into the rows."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.data.text import one_hot
from jdl.nn import Embedding, embed
from tests.helpers import assert_close, assert_init_shapes, draw_normal

V, D = 7, 5
IDS = jnp.array([[0, 3, 3, 6], [2, 0, 5, 3]], jnp.int32)  # (B, T) = (2, 4), with repeats


def test_shapes_for_any_id_shape(key):
    params, state, e = assert_init_shapes(Embedding(V, D), IDS, key)
    assert params["w"].shape == (V, D) and params["w"].dtype == jnp.float32 and state == {}
    assert e.shape == (2, 4, D)
    layer = Embedding(V, D)
    assert layer.apply(params, {}, jnp.int32(4))[0].shape == (D,)
    assert layer.apply(params, {}, np.zeros((2, 3, 4), np.uint8))[0].shape == (2, 3, 4, D)
    p2, _ = layer.init(key, jax.ShapeDtypeStruct((9,), jnp.int64))
    assert_close(p2, params, rtol=0, atol=0)  # init reads only the example's dtype


def test_embedding_is_one_hot_times_the_table(key):
    params, _ = Embedding(V, D).init(key, IDS)
    e, _ = Embedding(V, D).apply(params, {}, IDS)
    np.testing.assert_array_equal(e, np.asarray(params["w"])[np.asarray(IDS)])  # row id of W
    e_matmul = jnp.einsum("btv,vd->btd", one_hot(IDS, V), params["w"], precision="highest")
    np.testing.assert_allclose(e, e_matmul, rtol=1e-6, atol=0)


def test_default_init_is_flax_embed_init(key):
    params, _ = Embedding(V, 64).init(key, IDS)
    flax_w = fnn.linear.default_embed_init(key, (V, 64), jnp.float32)
    np.testing.assert_allclose(params["w"], flax_w, rtol=1e-6)
    big, _ = Embedding(1000, 64).init(key, IDS)
    np.testing.assert_allclose(np.std(big["w"]), 1 / np.sqrt(64), rtol=0.02)  # N(0, 1/d)


def test_equals_flax_embed_given_the_same_table(key):
    w = draw_normal(key, (V, D))
    e, _ = Embedding(V, D).apply({"w": w}, {}, IDS)
    e_flax = fnn.Embed(V, D).apply({"params": {"embedding": w}}, IDS)
    np.testing.assert_array_equal(e, e_flax)


@pytest.mark.torch
def test_equals_torch_embedding_values_and_weight_gradient(key):
    torch = pytest.importorskip("torch")
    w = np.asarray(draw_normal(key, (V, D)))
    g = np.asarray(draw_normal(jax.random.key(1), (2, 4, D)))  # upstream gradient ∂L/∂e
    ref = torch.nn.Embedding(V, D)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(w))
    e_ref = ref(torch.tensor(np.asarray(IDS), dtype=torch.long))
    (e_ref * torch.tensor(g)).sum().backward()
    e, _ = Embedding(V, D).apply({"w": jnp.asarray(w)}, {}, IDS)
    np.testing.assert_array_equal(e, e_ref.detach().numpy())
    grad = jax.grad(lambda w: jnp.sum(embed({"w": w}, IDS) * g))(jnp.asarray(w))
    np.testing.assert_allclose(grad, ref.weight.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_gradient_is_the_scatter_add_of_upstream_gradients(key):
    w = draw_normal(key, (V, D))
    g = draw_normal(jax.random.key(1), (2, 4, D))
    grad = jax.grad(lambda w: jnp.sum(embed({"w": w}, IDS) * g))(w)
    want = np.zeros((V, D), np.float32)
    np.add.at(want, np.asarray(IDS), np.asarray(g))  # row v gets Σ of g at the positions where id = v
    np.testing.assert_allclose(grad, want, rtol=1e-6, atol=1e-7)
    assert not np.asarray(grad)[[1, 4]].any()  # ids 1 and 4 never occur: no gradient
    grad_matmul = jax.grad(lambda w: jnp.sum(jnp.einsum("btv,vd->btd", one_hot(IDS, V), w,
                                                        precision="highest") * g))(w)
    np.testing.assert_allclose(grad, grad_matmul, rtol=1e-6, atol=1e-7)


def test_jit_and_vmap_give_the_same_embeddings(key):
    layer = Embedding(V, D)
    params, _ = layer.init(key, IDS)
    e, _ = layer.apply(params, {}, IDS)
    e_jit, _ = jax.jit(layer.apply)(params, {}, IDS)
    np.testing.assert_array_equal(e, e_jit)
    e_vmap = jax.vmap(lambda ids: embed(params, ids))(IDS)
    np.testing.assert_array_equal(e, e_vmap)


def test_ids_outside_the_table_give_nan_rows_and_no_gradient(key):
    w = draw_normal(key, (V, D))
    ids = jnp.array([1, V, -1, V + 100, 0])
    for f in (embed, jax.jit(embed)):
        e = np.asarray(f({"w": w}, ids))
        assert np.isnan(e[1:4]).all()  # V, −1 (not wrapped to row V − 1) and V + 100
        np.testing.assert_array_equal(e[[0, 4]], np.asarray(w)[[1, 0]])
    grad = jax.grad(lambda w: jnp.nansum(embed({"w": w}, ids)))(w)
    np.testing.assert_array_equal(np.asarray(grad).sum(axis=1), [D, D, 0, 0, 0, 0, 0])


def test_errors_name_the_layer(key):
    params, _ = Embedding(V, D).init(key, IDS)
    with pytest.raises(TypeError, match="Embedding: expected integer token ids, got dtype float32"):
        Embedding(V, D).apply(params, {}, jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="Embedding: expected integer token ids, got dtype float32"):
        Embedding(V, D).init(key, jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="Embedding: expected integer token ids"):
        jax.jit(Embedding(V, D).apply)(params, {}, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="Embedding: vocab_size must be a positive int, got 0"):
        Embedding(0, D)
    with pytest.raises(ValueError, match="Embedding: d must be a positive int, got 2.0"):
        Embedding(V, 2.0)
    with pytest.raises(TypeError, match="embedding: apply got an unexpected keyword argument 'trian'"):
        Embedding(V, D).apply(params, {}, IDS, trian=True)


def test_trains_in_a_model(key):
    """A bag of embeddings learns which of two tokens a sequence holds more of: the loss falls."""
    model = jdl.nn.serial(Embedding(2, 4), jdl.nn.as_module(lambda e: e.mean(axis=1)), jdl.nn.Dense(2))
    ids = jax.random.bernoulli(key, 0.5, (64, 9)).astype(jnp.int32)
    labels = (ids.sum(axis=1) > 4).astype(jnp.int32)
    params, state = model.init(key, ids)
    loss = lambda p: jdl.losses.softmax_cross_entropy(model.apply(p, state, ids)[0], labels)
    first = loss(params)
    for _ in range(50):
        params = jax.tree.map(lambda p, g: p - 0.5 * g, params, jax.grad(loss)(params))
    assert loss(params) < 0.5 * first
