import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jdl
from jdl.autodiff.scalar import Value, grad, topological_order

# the same expression language for the engine and for jax.numpy
UNARY = {
    "neg": (lambda a: -a, lambda a: -a),
    "tanh": (lambda a: a.tanh(), jnp.tanh),
    "sigmoid": (lambda a: a.sigmoid(), jdl.nn.sigmoid),
    "relu": (lambda a: a.relu(), jdl.nn.relu),
    "exp": (lambda a: a.exp(), jnp.exp),
    "cube": (lambda a: a ** 3, lambda a: a ** 3),
    "softplus": (lambda a: (1 + a.exp()).log(), lambda a: jnp.log(1 + jnp.exp(a))),
    "sqrt1p": (lambda a: (1 + a * a) ** 0.5, lambda a: (1 + a * a) ** 0.5),
    "rdiv": (lambda a: 1 / (2 + a.tanh()), lambda a: 1 / (2 + jnp.tanh(a))),
    "pow": (lambda a: 1.5 ** a, lambda a: 1.5 ** a),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "vpow": (lambda a, b: (1 + a * a) ** b.tanh(), lambda a, b: (1 + a * a) ** jnp.tanh(b)),
}


def evaluate(program, inputs, which):
    regs = list(inputs)
    for op, i, j in program:
        if op in UNARY:
            regs.append(UNARY[op][which](regs[i]))
        else:
            regs.append(BINARY[op][which](regs[i], regs[j]))
    return regs[-1]


@st.composite
def programs(draw):
    n_inputs = draw(st.integers(1, 4))
    # No subnormal numbers, nor inputs so tiny that a few products make one: XLA:CPU flushes
    # subnormals to zero (relu(2e-309) = 0 there, 2e-309 in Python).
    value = st.floats(-2, 2, allow_nan=False, allow_subnormal=False).filter(lambda v: v == 0 or abs(v) >= 1e-8)
    inputs = draw(st.lists(value, min_size=n_inputs, max_size=n_inputs))
    program = []
    for k in range(draw(st.integers(1, 10))):
        n_regs = n_inputs + k
        op = draw(st.sampled_from(sorted(UNARY) + sorted(BINARY)))
        program.append((op, draw(st.integers(0, n_regs - 1)), draw(st.integers(0, n_regs - 1))))
    return inputs, program


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_scalar_engine_equals_jax_grad_on_random_expressions(case):
    inputs, program = case
    leaves = [Value(v) for v in inputs]
    out = evaluate(program, leaves, 0)
    assume(abs(out.data) < 1e6)
    ours = np.array(grad(out, leaves))
    with jax.enable_x64(True):
        f = lambda xs: evaluate(program, list(xs), 1)
        value = f(jnp.asarray(inputs, jnp.float64))
        theirs = np.asarray(jax.grad(f)(jnp.asarray(inputs, jnp.float64)))
        np.testing.assert_allclose(out.data, value, rtol=1e-12)
        assume(np.all(np.isfinite(theirs)) and np.max(np.abs(theirs)) < 1e8)
        # relative to each entry, plus 1e-13 absolute: a gradient that is a tiny difference of large
        # terms (−4.8e-8 from an exp/cube chain) keeps only a few digits in either engine
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-13, err_msg=str(program))


def test_weight_sharing_sums_both_paths():
    # the course: L(y, σ3[σ1(w1·x1), σ2(w1·x1)]): ∂l/∂w1 = ∂l/∂o·∂o/∂a1·∂a1/∂w1 + ∂l/∂o·∂o/∂a2·∂a2/∂w1
    w1, x1, y = Value(0.7), Value(-1.3), 0.25
    a1, a2 = (w1 * x1).sigmoid(), (w1 * x1).tanh()
    o = a1 * a2  # σ3 = product
    loss = (y - o) ** 2
    s, t, z = a1.data, a2.data, 0.7 * -1.3
    dl_do = -2 * (y - o.data)
    by_hand = dl_do * t * s * (1 - s) * -1.3 + dl_do * s * (1 - t * t) * -1.3
    assert grad(loss, [w1])[0] == pytest.approx(by_hand, rel=1e-13)
    assert s == pytest.approx(1 / (1 + math.exp(-z)))


def test_branching_network_of_the_course():
    # a1 branches into z2 and z3, so ∂ℓ/∂w_a has two paths summed in brackets
    x, y = 0.8, 1.0
    wa, wc, wd, we, wf = (Value(v) for v in (0.5, -1.2, 0.9, 1.1, -0.7))
    a1 = (wa * x).sigmoid()
    a2, a3 = (wc * a1).sigmoid(), (wd * a1).sigmoid()
    y_hat = (we * a2 + wf * a3).sigmoid()
    loss = -(y * y_hat.log() + (1 - y) * (1 - y_hat).log())
    d = lambda v: v.data * (1 - v.data)  # σ' = σ(1 − σ)
    dl_dz4 = (-y / y_hat.data + (1 - y) / (1 - y_hat.data)) * d(y_hat)
    path2 = we.data * d(a2) * wc.data
    path3 = wf.data * d(a3) * wd.data
    by_hand = dl_dz4 * (path2 + path3) * d(a1) * x
    g_wa, g_we = grad(loss, [wa, we])
    assert g_wa == pytest.approx(by_hand, rel=1e-12)
    assert g_we == pytest.approx((y_hat.data - y) * a2.data, rel=1e-12)  # output side: (ŷ − y)·a2


@pytest.mark.parametrize("factor, low, high", [(0.8, 1.5e-10, 2.5e-10), (1.5, 3.5e17, 4.5e17)])
def test_vanishing_and_exploding_products(factor, low, high):
    # the course: 0.8^100 ≈ 2e−10 and 1.5^100 ≈ 4e17
    x = Value(1.0)
    h = x
    for _ in range(100):
        h = h * factor
    (g,) = grad(h, [x])
    assert low < g < high and g == pytest.approx(factor ** 100, rel=1e-12)
    assert len(topological_order(h)) == 201  # x, 100 constants, 100 products


def test_unused_input_gets_zero_and_order_is_topological():
    a, b, c = Value(1.0), Value(2.0), Value(3.0)
    out = (a * b + a).exp()
    assert grad(out, [a, b, c])[2] == 0.0
    order = topological_order(out)
    pos = {id(v): i for i, v in enumerate(order)}
    assert all(pos[id(p)] < pos[id(v)] for v in order for p, _ in v.parents)


def test_unsupported_operations_raise():
    v = Value(2.0)
    with pytest.raises(TypeError, match="float"):
        math.exp(v)
    with pytest.raises(TypeError):
        np.exp(v)
    with pytest.raises(TypeError, match="//"):
        v // 2
    with pytest.raises(TypeError, match="with a str"):
        v + "1"
    with pytest.raises(TypeError, match="with a ndarray|ndarray"):
        v * np.ones(2)
    with pytest.raises(TypeError):
        v > 1
    with pytest.raises(TypeError, match="truth value"):
        bool(v)
    with pytest.raises(ValueError, match="log of a non-positive"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="not a real number"):
        Value(-1.0) ** 0.5
