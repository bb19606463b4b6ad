"""GoogLeNet's auxiliary classifiers: at eval the model is exactly googlenet_small on
params['net']; in training the loss is ℓ_main + 0.3·(ℓ_aux1 + ℓ_aux2), each head reading the
output of its block (3b, 4a), and the accuracy reported is the main head's."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import losses, models, optim, train
from jdl.nn import Dense, relu, serial, with_auxiliary_heads
from tests.models.shapes import numpy_init

WIDTH = 4


@pytest.fixture(scope="module")
def setup():
    x = jnp.asarray(np.random.default_rng(0).uniform(size=(4, 8, 8, 1)), jnp.float32)
    y = jnp.array([0, 3, 1, 3])
    model = models.googlenet_small_aux(5, WIDTH)
    params, state = numpy_init(model, x.shape)
    return x, y, model, params, state


def test_eval_equals_the_model_without_heads(setup):
    x, _, model, params, state = setup
    plain = models.googlenet_small(5, WIDTH)
    assert sorted(params) == ["aux1", "aux2", "net"]
    assert jax.tree.structure(params["net"]) == jax.tree.structure(jax.eval_shape(plain.init, jax.random.key(0), x)[0])
    y_aux, y_plain = jax.jit(lambda p: (model.apply(p, state, x)[0], plain.apply(p["net"], state["net"], x)[0]))(params)
    np.testing.assert_array_equal(y_aux, y_plain)


def test_training_loss_is_main_plus_0_3_times_the_auxiliary_losses(setup):
    x, y, model, params, state = setup
    key = jax.random.key(7)
    loss_fn = train.supervised(model, losses.auxiliary_loss(losses.softmax_cross_entropy))
    net, head, ce = models.googlenet_small(5, WIDTH), models.auxiliary_classifier(5, WIDTH), losses.softmax_cross_entropy
    names = list(params["net"])

    def by_hand(params):
        model_key = jax.random.split(key)[1]  # supervised's (augment key, model key)
        prefix = lambda n: serial(*net.children[:n]).apply({k: params["net"][k] for k in names[:n]}, {}, x)[0]
        h3, h4 = prefix(4), prefix(6)  # the outputs of blocks 3b (layer 3) and 4a (layer 5)
        a1, _ = head.apply(params["aux1"], {}, h3, key=jax.random.fold_in(model_key, 1), train=True)
        a2, _ = head.apply(params["aux2"], {}, h4, key=jax.random.fold_in(model_key, 2), train=True)
        z, _ = net.apply(params["net"], {}, x)
        return ce(z, y) + 0.3 * (ce(a1, y) + ce(a2, y)), ce(z, y), jnp.mean(jnp.argmax(z, -1) == y)

    (loss, (_, metrics)), (expected, main, accuracy) = jax.jit(
        lambda p: (loss_fn(p, state, (x, y), key), by_hand(p)))(params)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert float(loss) > float(main) + 0.1  # the auxiliary terms are there
    np.testing.assert_allclose(metrics["accuracy"], accuracy)


def test_generic_heads_init_like_the_net_and_a_step_trains_them():
    x, y = jnp.asarray(np.random.default_rng(1).normal(size=(6, 4)), jnp.float32), jnp.array([0, 1, 2, 0, 1, 2])
    net = serial(Dense(8), relu, Dense(8), relu, Dense(3))
    model = with_auxiliary_heads(net, {1: Dense(3), 3: Dense(3)})
    params, state = model.init(jax.random.key(1), x)
    jax.tree.map(np.testing.assert_array_equal, params["net"], net.init(jax.random.fold_in(jax.random.key(1), 0), x)[0])
    loss = losses.auxiliary_loss(losses.softmax_cross_entropy, weights=(0.3, 0.5))
    outs, _ = model.apply(params, state, x, train=True)
    h1 = relu(x @ params["net"]["0_dense"]["w"] + params["net"]["0_dense"]["b"][None])
    np.testing.assert_allclose(outs[1], h1 @ params["aux1"]["w"] + params["aux1"]["b"][None], rtol=1e-5, atol=1e-6)
    ce = losses.softmax_cross_entropy
    np.testing.assert_allclose(loss(outs, y), ce(outs[0], y) + 0.3 * ce(outs[1], y) + 0.5 * ce(outs[2], y), rtol=1e-6)
    step = train.make_step(train.supervised(model, loss), optim.sgd(0.1), donate=False)
    ts = train.TrainState(params, state, optim.sgd(0.1).init(params), jnp.int32(0), jax.random.key(3))
    new, _ = step(ts, (x, y))
    assert not np.allclose(new.params["aux2"]["w"], params["aux2"]["w"])
    z, _ = model.apply(params, state, x)
    np.testing.assert_allclose(loss(z, y), ce(z, y), rtol=1e-6)  # eval: the main loss alone


def test_errors():
    with pytest.raises(ValueError, match="with_auxiliary_heads: net must be a jdl.nn.serial"):
        with_auxiliary_heads(Dense(3), {0: Dense(2)})
    with pytest.raises(ValueError, match="heads must be keyed by the index of a layer before the last"):
        with_auxiliary_heads(serial(Dense(3), relu), {1: Dense(2)})
    with pytest.raises(ValueError, match="auxiliary_loss: the model returned 1 auxiliary outputs for 2 weights"):
        losses.auxiliary_loss(losses.mse)((jnp.ones(2), jnp.ones(2)), jnp.ones(2))
