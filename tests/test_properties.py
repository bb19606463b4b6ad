"""Property-based tests (hypothesis): layers and losses fed random shapes, dtypes and values
either give the shape their docstring promises or refuse with a ValueError/TypeError that names
them; never an error from deep inside JAX/XLA and never a silently wrong shape."""

import re

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jdl

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)
dtypes = st.sampled_from([np.float32, np.float16, np.int32, np.bool_])
values = st.sampled_from([0.0, 1.0, -3.5, 1e30, np.nan, np.inf])


def _array(shape, dtype, value):
    with np.errstate(invalid="ignore", over="ignore"):
        return jnp.asarray(np.full(shape, value).astype(dtype))


def _clear(name, fn, *args, **kwargs):
    """fn's result, or None when it refused with a ValueError/TypeError that starts with name."""
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as e:
        assert re.match(rf"{name}\b", str(e)), f"unclear error from {name}: {type(e).__name__}: {e}"
        return None


@SETTINGS
@given(loss=st.sampled_from([jdl.losses.mse, jdl.losses.binary_cross_entropy,
                             jdl.losses.sigmoid_binary_cross_entropy]),
       pred_shape=shapes, target_shape=shapes, dtype=dtypes, value=values)
def test_elementwise_losses(loss, pred_shape, target_shape, dtype, value):
    pred, target = _array(pred_shape, np.float32, value), _array(target_shape, dtype, 1)
    out = _clear(loss.__name__, loss, pred, target, reduction="none")
    if pred_shape != target_shape:
        assert out is None  # a mismatch is never broadcast silently
    else:
        assert out is not None and out.shape == pred_shape
        assert _clear(loss.__name__, loss, pred, target).shape == ()


@SETTINGS
@given(batch=shapes, k=st.integers(1, 5), label_shape=shapes, integer=st.booleans(), value=values)
def test_softmax_cross_entropy(batch, k, label_shape, integer, value):
    logits = _array((*batch, k), np.float32, value)
    labels = _array(label_shape, np.int32 if integer else np.float32, 0)
    out = _clear("softmax_cross_entropy", jdl.losses.softmax_cross_entropy, logits, labels, reduction="none")
    valid = label_shape == (batch if integer else (*batch, k))
    assert (out is not None) == valid
    if valid:
        assert out.shape == batch


@SETTINGS
@given(x_shape=shapes, apply_shape=shapes, d_out=st.integers(1, 4), dtype=dtypes)
def test_dense(x_shape, apply_shape, d_out, dtype):
    layer = jdl.nn.Dense(d_out)
    init = _clear("Dense", layer.init, jax.random.key(0), jax.ShapeDtypeStruct(x_shape, dtype))
    if not x_shape:
        assert init is None  # no feature axis
        return
    if init is None:
        return
    params, state = init
    assert params["w"].shape == (x_shape[-1], d_out)
    y = _clear("Dense", lambda x: layer.apply(params, state, x)[0], _array(apply_shape, dtype, 1))
    if apply_shape and apply_shape[-1] == x_shape[-1] and y is not None:
        assert y.shape == (*apply_shape[:-1], d_out)
    elif apply_shape[-1:] != x_shape[-1:]:
        assert y is None


@SETTINGS
@given(x_shape=shapes, dtype=dtypes)
def test_mlp_and_fit_inputs(x_shape, dtype):
    model = jdl.models.mlp([3, 2])
    init = _clear("(Flatten|Dense|mlp)", model.init, jax.random.key(0), jax.ShapeDtypeStruct(x_shape, dtype))
    if init is not None:
        assert len(x_shape) >= 1
        y, _ = model.apply(*init, _array(x_shape, dtype, 1))
        assert y.shape == (x_shape[0], 2)
