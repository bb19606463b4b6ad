"""repeat(..., impl='custom_vjp') (jdl.kernels.repeat) equals the plain scan and the unrolled
loop in value and gradient, float64, with dropout keys; finite differences as the independent
reference; its refusals (forward mode, layers with state, unknown impl/save) are clear."""

import jax
import jax.numpy as jnp
import pytest

import jdl
from jdl.core import leaf
from jdl.kernels.repeat import stack_custom_vjp
from tests.helpers import assert_close, draw_normal

N = 3


def shifted(d: int):
    """x + tanh(x @ w + shift) · scale: a layer with a float keyword input (shift) and a bool
    one (keep), to check the shared keyword inputs' gradient (Σ over the layers)."""
    def init(key, x):
        return {"w": draw_normal(key, (d, d), x.dtype) / d}, {}

    def apply(params, state, x, *, shift=0.0, keep=None, key=None, train=False):
        y = jnp.tanh(x @ params["w"] + shift)
        return x + (y if keep is None else jnp.where(keep, y, 0.0)), state

    return leaf(init, apply, "shifted", accepts=("shift", "keep"))


@pytest.fixture(scope="module")
def case():
    """A residual Dense–tanh–Dropout–Dense block, float64 params and input, and the three
    builds of 3 copies: plain scan, custom VJP, unrolled serial (params unstacked)."""
    with jax.enable_x64(True):
        block = jdl.nn.residual(jdl.nn.serial(jdl.nn.Dense(6), jnp.tanh, jdl.nn.Dropout(0.3),
                                              jdl.nn.Dense(4)))
        x = draw_normal(jax.random.key(1), (3, 4), jnp.float64)
        params, state = jdl.nn.repeat(block, N).init(jax.random.key(0), x)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        serial_params = {f"{i}_residual": jax.tree.map(lambda a: a[i], params) for i in range(N)}
    return block, x, params, state, serial_params


def loss_of(model, state, key=jax.random.key(7)):
    return lambda p, x: jnp.sum(jnp.sin(model.apply(p, state, x, key=key, train=True)[0]))


@pytest.mark.parametrize("unroll", [1, 2])
def test_custom_vjp_equals_scan_and_loop(case, unroll):
    block, x, params, state, serial_params = case
    with jax.enable_x64(True):
        plain = loss_of(jdl.nn.repeat(block, N), state)
        fast = loss_of(jdl.nn.repeat(block, N, unroll=unroll, impl="custom_vjp"), state)
        loop = loss_of(jdl.nn.serial(*[block] * N), {})
        g_fast = jax.jit(jax.value_and_grad(fast, (0, 1)))(params, x)
        g_plain = jax.value_and_grad(plain, (0, 1))(params, x)
        v_loop, (gp_loop, gx_loop) = jax.value_and_grad(loop, (0, 1))(serial_params, x)
    assert_close(g_fast, g_plain, rtol=1e-12, atol=1e-12)
    assert_close(g_fast[0], v_loop, rtol=1e-12, atol=1e-12)
    assert_close(g_fast[1][1], gx_loop, rtol=1e-12, atol=1e-12)
    assert_close({f"{i}_residual": jax.tree.map(lambda a: a[i], g_fast[1][0]) for i in range(N)},
                 gp_loop, rtol=1e-12, atol=1e-12)


def test_stack_gradient_matches_finite_differences(case, save="inputs"):
    """save='inputs' against finite differences ('split' is repeat's, checked against the scan
    and the loop above)."""
    block, x, params, _, _ = case
    with jax.enable_x64(True):
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(7), i))(jnp.arange(N))
        f = lambda p, h, k: block.apply(p, {}, h, key=k, train=True)[0]
        loss = lambda px: jnp.sum(jnp.sin(stack_custom_vjp(f, px[0], px[1], keys, save=save)))
        errors = jdl.autodiff.check_grads(loss, (params, x))
    assert max(errors.values()) < 1e-7, errors


def test_residuals_pullback_equals_scan(case):
    """save='residuals' (whole pullback in the batched pass) against the plain scan, with
    dropout; 'split' is repeat's, checked above."""
    block, x, params, state, _ = case
    with jax.enable_x64(True):
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(7), i))(jnp.arange(N))
        f = lambda p, h, k: block.apply(p, {}, h, key=k, train=True)[0]
        split = lambda p, x: jnp.sum(jnp.sin(stack_custom_vjp(f, p, x, keys, save="residuals")))
        g_split = jax.value_and_grad(split, (0, 1))(params, x)
        g_plain = jax.value_and_grad(loss_of(jdl.nn.repeat(block, N), state), (0, 1))(params, x)
    assert_close(g_split, g_plain, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("save", ["residuals", "inputs", "split"])
def test_keyword_inputs_get_their_gradient(save):
    with jax.enable_x64(True):
        x = draw_normal(jax.random.key(2), (2, 3), jnp.float64)
        keep = jnp.array([[True, False, True]])
        model = jdl.nn.repeat(shifted(3), N)
        params, _ = model.init(jax.random.key(0), x)
        f = lambda p, h, k, **kw: shifted(3).apply(p, {}, h, **kw)[0]

        def loss(fast):
            def value(p, x, shift):
                y = (stack_custom_vjp(f, p, x, None, {"shift": shift, "keep": keep}, save=save) if fast
                     else model.apply(p, {}, x, shift=shift, keep=keep)[0])
                return jnp.sum(y ** 2)
            return jax.grad(value, (0, 1, 2))(params, x, jnp.float64(0.3))
        assert_close(loss(True), loss(False), rtol=1e-12, atol=1e-12)


def test_refusals(case):
    block, x, params, state, _ = case
    fast = jdl.nn.repeat(block, N, impl="custom_vjp")
    with jax.enable_x64(True), pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda x: loss_of(fast, state)(params, x), (x,), (x,))
    x = x.astype(jnp.float32)
    bn = jdl.nn.repeat(jdl.nn.serial(jdl.nn.Dense(4), jdl.nn.BatchNorm()), 2, impl="custom_vjp")
    p, s = bn.init(jax.random.key(0), x)
    with pytest.raises(ValueError, match=r"repeat\(impl='custom_vjp'\): serial has state"):
        bn.apply(p, s, x, train=True)
    with pytest.raises(ValueError, match="repeat: impl must be 'scan' or 'custom_vjp', got 'fast'"):
        jdl.nn.repeat(block, 2, impl="fast")
    with pytest.raises(ValueError, match="save must be one of"):
        stack_custom_vjp(lambda p, h, k: h, {}, x, save="all")
