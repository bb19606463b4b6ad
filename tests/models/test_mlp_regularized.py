"""The MLP with BatchNorm/LayerNorm and dropout, and a training step through it."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.autodiff.gradcheck import check_grads
from jdl.losses import softmax_cross_entropy
from jdl.train import init_train_state, make_step, supervised
from tests.helpers import assert_close, draw_normal

X = draw_normal(jax.random.key(0), (8, 2, 2, 1))
Y = jnp.array([0, 1, 2, 0, 1, 2, 0, 1])


class FlaxMLP(fnn.Module):
    norm: str

    @fnn.compact
    def __call__(self, x, train):
        x = x.reshape(x.shape[0], -1)
        x = fnn.Dense(6, use_bias=self.norm != "batch")(x)
        if self.norm == "batch":
            x = fnn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-5)(x)
        else:
            x = fnn.LayerNorm(epsilon=1e-5)(x)
        return fnn.Dense(3)(fnn.relu(x))


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_normalized_mlp_equals_flax(norm, key):
    model = jdl.models.mlp([6, 3], norm=norm)
    params, state = model.init(key, X)
    names = sorted(params)
    assert names == ["0_flatten", "1_dense", f"2_{norm}norm", "3_relu", "4_dense"]
    assert ("b" in params["1_dense"]) == (norm == "layer")
    norm_p = params[f"2_{norm}norm"]
    flax_params = {"Dense_0": {"kernel": params["1_dense"]["w"], **({"bias": params["1_dense"]["b"]} if norm == "layer" else {})},
                   f"{'BatchNorm' if norm == 'batch' else 'LayerNorm'}_0": {"scale": norm_p["gamma"], "bias": norm_p["beta"]},
                   "Dense_1": {"kernel": params["4_dense"]["w"], "bias": params["4_dense"]["b"]}}
    variables = {"params": flax_params}
    if norm == "batch":
        variables["batch_stats"] = {"BatchNorm_0": state[f"2_{norm}norm"]}
    y, new_state = model.apply(params, state, X, train=True)
    y_ref, upd = FlaxMLP(norm).apply(variables, X, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    if norm == "batch":
        assert_close(new_state[f"2_{norm}norm"], upd["batch_stats"]["BatchNorm_0"])
        y_eval, _ = model.apply(params, new_state, X, train=False)
        y_ref = FlaxMLP(norm).apply({"params": flax_params, "batch_stats": upd["batch_stats"]}, X, train=False)
        np.testing.assert_allclose(y_eval, y_ref, rtol=1e-5, atol=1e-5)


def test_mlp_rejects_unknown_norm():
    with pytest.raises(ValueError, match="mlp: norm must be None, 'none', 'batch', 'layer' or a function returning a norm layer, got 'group'"):
        jdl.models.mlp([4, 2], norm="group")


@pytest.fixture(scope="module")
def bn_dropout_step():
    model = jdl.models.mlp([6, 3], norm="batch", dropout=0.3)
    opt = jdl.optim.sgd(0.1)
    return model, opt, make_step(supervised(model, softmax_cross_entropy), opt, jit=False)


def test_step_with_batchnorm_and_dropout_is_deterministic_under_jit(bn_dropout_step):
    model, opt, step = bn_dropout_step
    ts = init_train_state(model, opt, X, seed=3)
    jstep = jax.jit(step)
    a, ma = jstep(ts, (X, Y))
    b, mb = jstep(ts, (X, Y))
    assert_close((a.params, a.state, ma), (b.params, b.state, mb), rtol=0, atol=0)  # same key, same bits
    assert not np.allclose(a.state["2_batchnorm"]["mean"], ts.state["2_batchnorm"]["mean"])  # stats moved
    c, _ = jstep(a, (X, Y))  # the next step draws another dropout mask: a different update
    d, _ = jstep(a._replace(step=a.step + 1), (X, Y))
    assert not np.allclose(c.params["1_dense"]["w"] - a.params["1_dense"]["w"],
                           d.params["1_dense"]["w"] - a.params["1_dense"]["w"])


def test_step_vmapped_over_seeds_equals_one_run_per_seed(bn_dropout_step):
    model, opt, step = bn_dropout_step
    seeds = jnp.arange(3)
    ts_all = jax.vmap(lambda s: init_train_state(model, opt, X, jax.random.key(s)))(seeds)
    out_all, metrics = jax.jit(jax.vmap(step, in_axes=(0, None)))(ts_all, (X, Y))
    jstep = jax.jit(step)
    for i in (0, 2):
        one, m = jstep(init_train_state(model, opt, X, jax.random.key(i)), (X, Y))
        assert_close(jax.tree.map(lambda a: a[i], out_all.params), one.params, rtol=1e-5, atol=1e-6)
        assert_close(jax.tree.map(lambda a: a[i], out_all.state), one.state, rtol=1e-5, atol=1e-6)


def test_gradient_through_batchnorm_and_dropout_matches_finite_differences():
    with jax.enable_x64(True):
        model = jdl.models.mlp([4, 3], norm="batch", dropout=0.5, activation=jnp.tanh)
        x = draw_normal(jax.random.key(1), (6, 3), jnp.float64)
        y = jnp.array([0, 1, 2, 0, 1, 2])
        params, state = model.init(jax.random.key(0), x)
        key = jax.random.key(5)  # a fixed key: a fixed dropout mask
        f = lambda p: softmax_cross_entropy(model.apply(p, state, x, key=key, train=True)[0], y)
        errors = check_grads(f, params)
    assert max(errors.values()) < 1e-6, errors


def test_mlp_takes_a_norm_factory(key):
    model = jdl.models.mlp([8, 3], norm=lambda: jdl.nn.GroupNorm(4))
    params, _ = model.init(key, X)
    assert params["2_groupnorm"]["gamma"].shape == (8,) and "b" in params["1_dense"]


def test_norm_given_as_the_batchnorm_factory_builds_the_same_model_as_the_string(key):
    from jdl.nn import BatchNorm

    x = jnp.zeros((4, 5))
    by_name, _ = jdl.models.mlp([3, 2], norm="batch").init(key, x)
    by_factory, _ = jdl.models.mlp([3, 2], norm=BatchNorm).init(key, x)
    assert jax.tree.structure(by_name) == jax.tree.structure(by_factory)
    assert "b" not in by_factory["1_dense"]  # a Dense before BatchNorm has no bias
