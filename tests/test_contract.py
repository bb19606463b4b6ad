"""The contract refuses typos: ``apply(..., trian=True)`` raises a TypeError naming the layer
(never a silent eval-mode run), while combinators still hand a keyword such as ``mask=`` to the
one child deep inside that accepts it, and to no other."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import nn
from jdl.core import Module, leaf, output_struct
from jdl.nn import Dense, parallel, relu, repeat, residual, serial
from tests.helpers import draw_normal

X = draw_normal(jax.random.key(42), (2, 4))
IMG = jnp.ones((2, 6, 6, 4))
SEQ = jnp.ones((2, 6, 4))

LEAVES = [  # (layer, example input, its name)
    (Dense(3), X, "dense"),
    (nn.Flatten(), IMG, "flatten"),
    (nn.Dropout(0.5), X, "dropout"),
    (nn.PReLU(), X, "prelu"),
    (nn.as_module(relu), X, "relu"),
    (nn.Conv1D(3, 3), SEQ, "conv1d"),
    (nn.Conv2D(3, 3), IMG, "conv2d"),
    (nn.ConvTranspose2D(3, 3), IMG, "conv_transpose2d"),
    (nn.MaxPool1D(2), SEQ, "max_pool1d"),
    (nn.AvgPool1D(2), SEQ, "avg_pool1d"),
    (nn.MaxPool2D(2), IMG, "max_pool2d"),
    (nn.AvgPool2D(2), IMG, "avg_pool2d"),
    (nn.GlobalAvgPool(), IMG, "global_avg_pool"),
    (nn.BatchNorm(), IMG, "batchnorm"),
    (nn.LayerNorm(), X, "layernorm"),
    (nn.InstanceNorm(), IMG, "instancenorm"),
    (nn.GroupNorm(2), IMG, "groupnorm"),
    (nn.RMSNorm(), X, "rmsnorm"),
    (nn.ActivityL1(0.1), X, "activity_l1"),
    (nn.WeightStandardized(Dense(3)), X, "ws_dense"),
]

COMBINATORS = [  # (combinator, example input, its name)
    (serial(Dense(3), relu), X, "serial"),
    (parallel(Dense(3), relu), X, "parallel"),
    (residual(Dense(4)), X, "residual"),
    (residual(Dense(3), Dense(3)), X, "residual"),
    (repeat(Dense(4), 2), X, "repeat"),
    (nn.with_auxiliary_heads(serial(Dense(3), relu, Dense(2)), {0: Dense(2)}), X, "with_auxiliary_heads"),
]


def typo_message(name: str, why: str) -> str:
    return re.escape(f"{name}: apply got an unexpected keyword argument 'trian' ({why}; "
                     f"did you mean 'train'?)")


@pytest.mark.parametrize("layer, x, name", LEAVES, ids=[n for _, _, n in LEAVES])
def test_every_leaf_refuses_a_typo_while_tracing(layer, x, name, key):
    params, state = layer.init(key, x)
    assert layer.name == name and layer.accepts == frozenset()
    with pytest.raises(TypeError, match=typo_message(name, "it takes key, train")):
        layer.apply(params, state, x, trian=True)
    with pytest.raises(TypeError, match=typo_message(name, "it takes key, train")):
        jax.eval_shape(lambda p, s, x: layer.apply(p, s, x, trian=True), params, state, x)
    layer.apply(params, state, x, key=key, train=True)  # the right spelling still runs


@pytest.mark.parametrize("model, x, name", COMBINATORS, ids=[n for _, _, n in COMBINATORS])
def test_every_combinator_refuses_a_typo_while_tracing(model, x, name, key):
    params, state = model.init(key, x)
    why = "no child takes it; they take key, train"
    with pytest.raises(TypeError, match=typo_message(name, why)):
        model.apply(params, state, x, trian=True)
    with pytest.raises(TypeError, match=typo_message(name, why)):
        jax.jit(lambda p, s, x: model.apply(p, s, x, trian=True))(params, state, x)


def MaskLayer() -> Module:
    """A test layer that accepts ``mask=``: y = x ⊙ mask (y = x without one)."""
    def apply(params, state, x, *, key=None, train=False, mask=None):
        del params, key, train
        return (x if mask is None else x * mask), state

    return leaf(lambda key, x: ({}, {}), apply, "masklayer", accepts={"mask"})


def Probe(seen: list) -> Module:
    """A layer built with plain ``Module`` and ``**kwargs``, recording the keywords it gets."""
    def apply(params, state, x, **kwargs):
        seen.append(sorted(kwargs))
        return x, state

    return Module(lambda key, x: ({}, {}), apply, "probe")


def test_a_mask_reaches_the_one_child_deep_inside_that_takes_it(key):
    seen = []
    inner = serial(Dense(4), MaskLayer())
    model = serial(Dense(4), Probe(seen), residual(inner), Probe(seen))
    assert model.accepts == inner.accepts == frozenset({"mask"})
    params, state = model.init(key, X)
    seen.clear()
    y, _ = model.apply(params, state, X)
    assert seen == [["key", "train"]] * 2
    ones, zeros = jnp.ones((2, 4)), jnp.zeros((2, 4))
    y_ones, _ = model.apply(params, state, X, mask=ones)
    y_zeros, _ = jax.jit(lambda p, s, x, m: model.apply(p, s, x, mask=m))(params, state, X, zeros)
    assert seen == [["key", "train"]] * 6  # the siblings never saw the mask
    np.testing.assert_array_equal(y_ones, y)
    h = X @ params["0_dense"]["w"] + params["0_dense"]["b"][None]  # residual(F ⊙ 0) is the identity
    np.testing.assert_allclose(y_zeros, h, rtol=1e-6)
    assert not np.allclose(y_zeros, y)
    assert output_struct(model, params, state, X, mask=zeros).shape == (2, 4)


def test_parallel_and_repeat_pass_a_mask_on(key):
    mask = jnp.array([[0.0, 1.0, 2.0, 3.0]])
    model = parallel(MaskLayer(), relu)
    y_mask, y_relu = model.apply(*model.init(key, X), X, mask=mask)[0]
    np.testing.assert_array_equal(y_mask, X * mask)
    np.testing.assert_array_equal(y_relu, jax.nn.relu(X))
    stack = repeat(MaskLayer(), 3)
    assert stack.accepts == frozenset({"mask"})
    np.testing.assert_allclose(stack.apply(*stack.init(key, X), X, mask=mask)[0], X * mask ** 3)


def test_a_keyword_no_layer_takes_names_the_combinator(key):
    model = serial(Dense(4), residual(serial(Dense(4), MaskLayer())))
    params, state = model.init(key, X)
    with pytest.raises(TypeError, match=re.escape(
            "serial: apply got an unexpected keyword argument 'encoder_out' (no child takes it; "
            "they take key, train, mask; a layer that takes it says so: leaf(init, apply, name, "
            "accepts={'encoder_out'})")):
        model.apply(params, state, X, mask=jnp.ones((2, 4)), encoder_out=X)
    with pytest.raises(TypeError, match=r"masklayer: .* 'trian' \(it takes key, train, mask; "):
        MaskLayer().apply({}, {}, X, trian=True)
    with pytest.raises(TypeError, match="arguments 'a', 'b' \\(no child takes them"):
        model.apply(params, state, X, b=1, a=2)


def test_positional_module_construction_still_works():
    init, apply = (lambda key, x: ({}, {})), (lambda p, s, x, *, key=None, train=False: (x, s))
    assert Module(init, apply, "id").accepts == frozenset()
    assert Module(init, apply, "id", ()).children == ()
    assert Module(init, apply, "id", (), frozenset({"mask"})).accepts == {"mask"}


RECURRENT = [  # layers that accept carry= and mask= (leaves, then wrappers)
    (nn.SimpleRNN(3), "simple_rnn", "it takes key, train, carry, mask"),
    (nn.LSTM(3), "lstm", "it takes key, train, carry, mask"),
    (nn.GRU(3), "gru", "it takes key, train, carry, mask"),
    (nn.Bidirectional(nn.LSTM(3)), "bidirectional", "no child takes it; they take key, train, carry, mask"),
    (nn.StackedRNN([nn.GRU(3), nn.LSTM(3)]), "stacked_rnn", "no child takes it; they take key, train, carry, mask"),
]


@pytest.mark.parametrize("layer, name, why", RECURRENT, ids=[n for _, n, _ in RECURRENT])
def test_recurrent_layers_take_carry_and_mask_and_refuse_a_typo(layer, name, why, key):
    params, state = layer.init(key, SEQ)
    assert layer.name == name and layer.accepts == frozenset({"carry", "mask"})
    with pytest.raises(TypeError, match=typo_message(name, why)):
        jax.eval_shape(lambda p, s, x: layer.apply(p, s, x, trian=True), params, state, SEQ)
    y = jax.eval_shape(lambda p, s, x: layer.apply(p, s, x, mask=jnp.ones((2, 6), bool)), params, state, SEQ)
    assert y[0].shape[:2] == (2, 6)


def test_serial_hands_the_mask_to_the_recurrent_layer(key):
    model = serial(Dense(4), nn.LSTM(3))
    params, state = model.init(key, SEQ)
    mask = jnp.array([[True] * 6, [True] * 2 + [False] * 4])
    y, _ = jax.jit(lambda p, x, m: model.apply(p, state, x, mask=m))(params, SEQ, mask)
    h = nn.dense(params["0_dense"], SEQ)
    want, _ = jax.jit(lambda p, h, m: nn.LSTM(3).apply(p, {}, h, mask=m))(params["1_lstm"], h, mask)
    np.testing.assert_allclose(y, want, rtol=1e-6)
    np.testing.assert_array_equal(y[1, 2:], 0.0)
