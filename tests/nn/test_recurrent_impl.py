"""LSTM(impl='fused') — the fast kernel behind the explicit dispatch — gives the plain layer's
outputs, final carry and gradients (params, inputs, initial carry), forward and reversed."""

import jax
import jax.numpy as jnp
import pytest

from jdl import nn
from jdl.nn.recurrent_cells import LSTMCarry
from tests.helpers import assert_close, draw_normal

X = draw_normal(jax.random.key(1), (3, 5, 4))
CARRY = LSTMCarry(draw_normal(jax.random.key(2), (3, 6)), draw_normal(jax.random.key(3), (3, 6)))


@pytest.mark.parametrize("reverse", [False, True])
def test_fused_lstm_equals_the_plain_layer_in_value_and_gradient(reverse, key):
    plain = nn.LSTM(6, return_carry=True, reverse=reverse)
    fused = nn.LSTM(6, return_carry=True, reverse=reverse, impl="fused", unroll=2)
    params, state = plain.init(key, X)

    def loss(layer):
        def f(params, x, carry):
            (hs, (h, c)), _ = layer.apply(params, state, x, carry=carry)
            return jnp.sum(hs * jnp.cos(hs)) + jnp.sum(h ** 2) + jnp.sum(jnp.sin(c))
        return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2)))

    (v_plain, g_plain), (v_fused, g_fused) = loss(plain)(params, X, CARRY), loss(fused)(params, X, CARRY)
    assert_close(v_fused, v_plain)
    for a, b in zip(jax.tree.leaves(g_fused), jax.tree.leaves(g_plain)):
        assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fused_lstm_refuses_a_mask_and_an_unknown_impl(key):
    fused = nn.LSTM(6, impl="fused")
    params, state = fused.init(key, X)
    with pytest.raises(ValueError, match=r"LSTM\(impl='fused'\): the fused kernel takes no mask"):
        fused.apply(params, state, X, mask=jnp.ones(X.shape[:2], bool))
    with pytest.raises(ValueError, match=r"LSTM: impl must be one of \('scan', 'fused', 'native'\), got 'cudnn'"):
        nn.LSTM(6, impl="cudnn")
