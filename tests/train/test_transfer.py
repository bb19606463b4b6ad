"""restore_matching / load_matching: a trained classifier's params loaded into a model with a
different head (another number of classes, an extra layer), the report checked path by path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl import optim
from jdl.models.mlp import mlp
from jdl.nn import lora
from jdl.train import init_train_state, load_matching, restore_matching, starting_from
from jdl.train.checkpoint import save
from tests.helpers import draw_normal

X = jax.ShapeDtypeStruct((1, 6), jnp.float32)


def init(model, seed):
    return model.init(jax.random.key(seed), X)[0]


def test_different_head_report():
    source = init(mlp([8, 8, 3]), 0)  # 0_flatten, 1_dense (6, 8), 3_dense (8, 8), 5_dense head (8, 3)
    target = init(mlp([8, 8, 5]), 1)  # same body, a 5-class head
    new, report = restore_matching(target, source)
    assert report.copied == ["1_dense/b", "1_dense/w", "3_dense/b", "3_dense/w"]
    assert report.fresh == ["5_dense/b", "5_dense/w"]
    assert report.mismatched == ["5_dense/b: source (3,) vs target (5,)", "5_dense/w: source (8, 3) vs target (8, 5)"]
    assert report.unused == []
    np.testing.assert_array_equal(new["3_dense"]["w"], source["3_dense"]["w"])
    np.testing.assert_array_equal(new["5_dense"]["w"], target["5_dense"]["w"])
    assert jax.tree.structure(new) == jax.tree.structure(target)


def test_extra_layer_exclude_and_unused():
    source = init(mlp([8, 3]), 0)
    target = init(mlp([8, 3, 4]), 1)  # 3_dense (8, 3) now a hidden layer, a new 5_dense head
    new, report = restore_matching(target, source, exclude="3_dense")
    assert report.copied == ["1_dense/b", "1_dense/w"]
    assert report.fresh == ["3_dense/b", "3_dense/w", "5_dense/b", "5_dense/w"]
    assert report.unused == ["3_dense/b", "3_dense/w"]
    np.testing.assert_array_equal(new["3_dense"]["w"], target["3_dense"]["w"])


def test_load_checkpoint_into_lora_params(tmp_path):
    """A checkpoint of the base model restored under 'base' of LoRA params: the adapters stay fresh."""
    model = mlp([8, 3])
    ts = init_train_state(model, optim.sgd(0.1), X, seed=3)
    save(tmp_path, ts)
    cfg = lora.LoRAConfig(rank=2, alpha=2.0)
    fresh = lora.init_lora(jax.random.key(0), init(model, 9), cfg)
    new, report = load_matching(tmp_path, fresh, prefix="base")
    assert report.copied == ["base/1_dense/b", "base/1_dense/w", "base/3_dense/b", "base/3_dense/w"]
    assert report.fresh == ["lora/1_dense/a", "lora/1_dense/b", "lora/3_dense/a", "lora/3_dense/b"]
    np.testing.assert_array_equal(new["base"]["1_dense"]["w"], ts.params["1_dense"]["w"])
    x = draw_normal(jax.random.key(1), (4, 6))
    np.testing.assert_array_equal(lora.with_lora(model, cfg).apply(new, {}, x)[0], model.apply(ts.params, {}, x)[0])


def test_errors():
    with pytest.raises(TypeError, match="restore_matching: expected a glob string"):
        restore_matching({"w": jnp.zeros(2)}, {"w": jnp.ones(2)}, exclude=[1])


def test_starting_from_makes_fit_begin_at_the_given_params():
    model = jdl.models.mlp([4, 3])
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    y = np.arange(8, dtype=np.int32) % 3
    params, _ = model.init(jax.random.key(7), x)
    params = jax.tree.map(lambda v: v + 1.0, params)
    result = jdl.train.fit(starting_from(model, params), jdl.losses.softmax_cross_entropy, jdl.optim.sgd(0.0),
                           (x, y), epochs=1, batch_size=8, progress=False, tensorboard=False)
    jax.tree.map(np.testing.assert_array_equal, result.train_state.params, params)  # lr 0: still the given ones
    with pytest.raises(ValueError, match="starting_from: the given params do not fit serial's init at '1_dense/w'"):
        starting_from(model, {**params, "1_dense": {"w": jnp.zeros((4, 2)), "b": params["1_dense"]["b"]}}).init(
            jax.random.key(0), x)
