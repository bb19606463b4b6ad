import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.autodiff.gradcheck import check_grads
from jdl.nn import BatchNorm, GroupNorm, InstanceNorm, LayerNorm, RMSNorm, torch_momentum
from tests.helpers import assert_close, assert_init_shapes, draw_normal


def random_affine(params, key):
    """gamma, beta drawn at random so that a swapped pair would show."""
    k1, k2 = jax.random.split(key)
    out = {"gamma": 1 + 0.5 * draw_normal(k1, params["gamma"].shape)}
    if "beta" in params:
        out["beta"] = draw_normal(k2, params["beta"].shape)
    return out


def to_flax(params):
    return {k: v for k, v in (("scale", params["gamma"]), ("bias", params.get("beta"))) if v is not None}


def batches(shape, n, key):
    """n batches of `shape`, with a mean and a spread per channel that are not 0 and 1."""
    c = shape[-1]
    lead = (1,) * (len(shape) - 1)
    scale, shift = 1 + jnp.arange(c).reshape(*lead, c), 3.0 - jnp.arange(c).reshape(*lead, c)
    return [draw_normal(k, shape) * scale + shift for k in jax.random.split(key, n)]


# ---------------------------------------------------------------- BatchNorm

@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 4)])
def test_batchnorm_equals_flax_train_eval_and_running_stats(shape, key):
    xs = batches(shape, 3, key)
    bn = BatchNorm(momentum=0.9)
    params, state = bn.init(key, xs[0])
    assert state["mean"].shape == state["var"].shape == (shape[-1],)
    params = random_affine(params, jax.random.key(7))
    ref = fnn.BatchNorm(momentum=0.9, epsilon=1e-5, use_running_average=False)
    variables = {"params": to_flax(params), "batch_stats": {"mean": state["mean"], "var": state["var"]}}
    apply = jax.jit(bn.apply, static_argnames="train")
    for x in xs:  # several training steps: outputs and running statistics agree
        y, state = apply(params, state, x, train=True)
        y_ref, upd = ref.apply(variables, x, mutable=["batch_stats"])
        variables = {"params": variables["params"], "batch_stats": upd["batch_stats"]}
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
        assert_close(state, upd["batch_stats"], rtol=1e-5, atol=1e-6)
    y_eval, state_eval = apply(params, state, xs[0], train=False)
    y_ref = fnn.BatchNorm(momentum=0.9, epsilon=1e-5, use_running_average=True).apply(variables, xs[0])
    np.testing.assert_allclose(y_eval, y_ref, rtol=1e-5, atol=1e-5)
    assert_close(state_eval, state, rtol=0, atol=0)  # evaluation leaves the state alone


def test_batchnorm_training_output_is_standardized(key):
    x = batches((64, 3), 1, key)[0]
    bn = BatchNorm()
    params, state = bn.init(key, x)
    y, new_state = bn.apply(params, state, x, train=True)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(0), 1, atol=1e-3)
    # one step of the running averages by hand (m = 0.99)
    np.testing.assert_allclose(new_state["mean"], 0.01 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(new_state["var"], 0.99 + 0.01 * x.var(0), rtol=1e-5)


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 4)])
def test_batchnorm_equals_torch_with_momentum_conversion(shape, key):
    torch = pytest.importorskip("torch")
    xs = batches(shape, 3, key)
    bn = BatchNorm(momentum=torch_momentum(0.1), unbiased_running_var=True)
    params, state = bn.init(key, xs[0])
    params = random_affine(params, jax.random.key(3))
    c = shape[-1]
    ref = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(c, eps=1e-5, momentum=0.1)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(np.asarray(params["gamma"])))
        ref.bias.copy_(torch.tensor(np.asarray(params["beta"])))
    nchw = lambda a: a if a.ndim == 2 else np.transpose(a, (0, 3, 1, 2))  # NHWC → NCHW
    nhwc = lambda a: a if a.ndim == 2 else np.transpose(a, (0, 2, 3, 1))
    ref.train()
    for x in xs:
        y, state = bn.apply(params, state, x, train=True)
        y_ref = nhwc(ref(torch.tensor(nchw(np.asarray(x)))).detach().numpy())
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state["mean"], ref.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["var"], ref.running_var.numpy(), rtol=1e-5, atol=1e-6)
    ref.eval()
    y, _ = bn.apply(params, state, xs[0], train=False)
    np.testing.assert_allclose(y, nhwc(ref(torch.tensor(nchw(np.asarray(xs[0])))).detach().numpy()),
                               rtol=1e-5, atol=1e-5)


def test_torch_momentum_conversion():
    assert torch_momentum(0.1) == pytest.approx(0.9) and torch_momentum(torch_momentum(0.3)) == pytest.approx(0.3)


def test_batchnorm_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        x = draw_normal(jax.random.key(1), (4, 3), jnp.float64)
        bn = BatchNorm()
        params, state = bn.init(jax.random.key(0), x)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), random_affine(params, jax.random.key(2)))
        w = draw_normal(jax.random.key(3), (4, 3), jnp.float64)

        def f(p):  # a loss that weights every output differently, through x and the params
            y, _ = bn.apply(p["params"], state, p["x"], train=True)
            return jnp.sum(w * jnp.tanh(y))

        errors = check_grads(f, {"params": params, "x": x})
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("unbiased", [False, True])
def test_batchnorm_vmap_axis_name_equals_full_batch(unbiased, key):
    x = batches((4, 6, 3), 1, key)[0]  # 4 shards of 6 examples
    bn_shard = BatchNorm(momentum=0.9, axis_name="batch", unbiased_running_var=unbiased)
    bn_full = BatchNorm(momentum=0.9, unbiased_running_var=unbiased)
    params, state = bn_full.init(key, x[0])
    params = random_affine(params, jax.random.key(5))
    y, s = jax.vmap(lambda xi: bn_shard.apply(params, state, xi, train=True), axis_name="batch")(x)
    y_full, s_full = bn_full.apply(params, state, x.reshape(24, 3), train=True)
    np.testing.assert_allclose(y.reshape(24, 3), y_full, rtol=1e-5, atol=1e-5)
    assert_close(jax.tree.map(lambda a: a[0], s), s_full)  # every shard holds the same state
    assert_close(jax.tree.map(lambda a: a[3], s), s_full)


def test_batchnorm_bad_input(key):
    bn = BatchNorm()
    params, state = bn.init(key, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="BatchNorm: in training .* batch of at least 2"):
        bn.apply(params, state, jnp.ones((1, 3)), train=True)
    y, _ = bn.apply(params, state, jnp.ones((1, 3)), train=False)  # evaluation works
    np.testing.assert_allclose(y, jnp.ones((1, 3)) / np.sqrt(1 + 1e-5), rtol=1e-6)
    with pytest.raises(ValueError, match=r"BatchNorm: expected an input laid out as \(B, D\) or .*\(B, H, W, C\), got shape \(3,\)"):
        bn.apply(params, state, jnp.ones(3), train=True)
    with pytest.raises(ValueError, match="BatchNorm: input of shape .* has C=5 but the layer was initialized with C=3"):
        bn.apply(params, state, jnp.ones((4, 5)))
    with pytest.raises(ValueError, match="momentum must be in"):
        BatchNorm(momentum=1.5)
    params, state, y = assert_init_shapes(bn, jnp.ones((2, 4, 4, 3)), key)
    assert set(params) == {"gamma", "beta"} and set(state) == {"mean", "var"}


# ------------------------------------------------------- the stateless norms

STATELESS = [  # (jdl layer, flax layer, input shape)
    (LayerNorm(), fnn.LayerNorm(epsilon=1e-5), (4, 6)),
    (LayerNorm(), fnn.LayerNorm(epsilon=1e-5), (2, 3, 6)),
    (InstanceNorm(), fnn.InstanceNorm(epsilon=1e-5), (2, 3, 3, 4)),
    (GroupNorm(2), fnn.GroupNorm(num_groups=2, epsilon=1e-5), (2, 3, 3, 4)),
    (GroupNorm(3), fnn.GroupNorm(num_groups=3, epsilon=1e-5), (4, 6)),
    (RMSNorm(), fnn.RMSNorm(epsilon=1e-6), (2, 3, 6)),
    # any rank ≥ 2, as flax (rank 5 was once refused)
    (LayerNorm(), fnn.LayerNorm(epsilon=1e-5), (2, 2, 3, 2, 6)),
    (RMSNorm(), fnn.RMSNorm(epsilon=1e-6), (2, 2, 3, 2, 6)),
    (RMSNorm(), fnn.RMSNorm(epsilon=1e-6), (2, 1, 2, 3, 2, 6)),
]


@pytest.mark.parametrize("layer,ref,shape", STATELESS, ids=lambda v: getattr(v, "name", None) or str(v))
def test_stateless_norm_equals_flax(layer, ref, shape, key):
    x = batches(shape, 1, key)[0]
    params, state, _ = assert_init_shapes(layer, x, key)
    assert state == {}
    params = random_affine(params, jax.random.key(9))
    y_train, _ = layer.apply(params, state, x, train=True)
    y_eval, _ = layer.apply(params, state, x, train=False)
    y_ref = ref.apply({"params": to_flax(params)}, x)
    np.testing.assert_allclose(y_train, y_ref, rtol=1e-5, atol=1e-5)
    assert_close(y_eval, y_train, rtol=0, atol=0)  # no batch statistics: train equals eval


@pytest.mark.torch
def test_layer_group_instance_norm_equal_torch(key):
    torch = pytest.importorskip("torch")
    x = batches((2, 3, 3, 4), 1, key)[0]
    xt = torch.tensor(np.transpose(np.asarray(x), (0, 3, 1, 2)))  # NCHW
    for layer, ref in ((GroupNorm(2), torch.nn.GroupNorm(2, 4, eps=1e-5)),
                       (InstanceNorm(), torch.nn.InstanceNorm2d(4, eps=1e-5, affine=True))):
        params = random_affine(layer.init(key, x)[0], jax.random.key(4))
        with torch.no_grad():
            ref.weight.copy_(torch.tensor(np.asarray(params["gamma"])))
            ref.bias.copy_(torch.tensor(np.asarray(params["beta"])))
        y, _ = layer.apply(params, {}, x)
        np.testing.assert_allclose(y, np.transpose(ref(xt).detach().numpy(), (0, 2, 3, 1)), rtol=1e-5, atol=1e-5)
    xl = batches((4, 6), 1, key)[0]
    params = random_affine(LayerNorm().init(key, xl)[0], jax.random.key(6))
    ref = torch.nn.LayerNorm(6, eps=1e-5)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(np.asarray(params["gamma"])))
        ref.bias.copy_(torch.tensor(np.asarray(params["beta"])))
    np.testing.assert_allclose(LayerNorm().apply(params, {}, xl)[0], ref(torch.tensor(np.asarray(xl))).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer,shape", [(GroupNorm(2), (2, 1, 2, 4)), (RMSNorm(), (2, 4)),
                                         (LayerNorm(), (2, 4)), (InstanceNorm(), (2, 3, 2))])
def test_stateless_norm_gradients_match_finite_differences(layer, shape):
    with jax.enable_x64(True):
        x = draw_normal(jax.random.key(1), shape, jnp.float64)
        params, _ = layer.init(jax.random.key(0), x)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), random_affine(params, jax.random.key(2)))
        w = draw_normal(jax.random.key(3), shape, jnp.float64)
        f = lambda p: jnp.sum(w * jnp.tanh(layer.apply(p["params"], {}, p["x"])[0]))
        errors = check_grads(f, {"params": params, "x": x})
    assert max(errors.values()) < 1e-6, errors


def test_stateless_norm_bad_input(key):
    with pytest.raises(ValueError, match="GroupNorm: n_groups=3 does not divide the C=4 channels"):
        GroupNorm(3).init(key, jnp.ones((2, 5, 5, 4)))
    with pytest.raises(ValueError, match=r"InstanceNorm: expected an input laid out as \(B, T, C\) or \(B, H, W, C\)"):
        InstanceNorm().init(key, jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="LayerNorm: input of shape .* has C=5 but the layer was initialized with C=4"):
        LayerNorm().apply(LayerNorm().init(key, jnp.ones((2, 4)))[0], {}, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match=r"LayerNorm: expected an input \(B, \.\.\., D\) of rank ≥ 2, got shape \(4,\)"):
        LayerNorm().init(key, jnp.ones((4,)))
    with pytest.raises(ValueError, match="GroupNorm: n_groups must be a positive int"):
        GroupNorm(0)


def test_batchnorm_under_repeat_keeps_state_dtype_and_stacks_state(key):
    from jdl.nn import Dense, repeat, serial

    x = batches((8, 4), 1, key)[0]
    model = repeat(serial(Dense(4), BatchNorm(momentum=0.9)), 3)
    params, state = model.init(key, x)
    y, new_state = jax.jit(lambda p, s, x: model.apply(p, s, x, train=True))(params, state, x)
    assert new_state["1_batchnorm"]["mean"].shape == (3, 4)
    assert jax.tree.map(lambda a: a.dtype, new_state) == jax.tree.map(lambda a: a.dtype, state)
    np.testing.assert_allclose(y.mean(0), params["1_batchnorm"]["beta"][-1], atol=1e-5)  # last BN's β
