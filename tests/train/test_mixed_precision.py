"""Mixed precision (``compute_dtype``): one make_step against flax.linen Dense layers with
dtype=bfloat16, param_dtype=float32 and optax.adam, from the same weights and batch."""

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jdl
from jdl.losses import softmax_cross_entropy
from jdl.train.state import TrainState
from jdl.train import make_eval_step, make_step, supervised

DIMS = (12, 16, 5)


class FlaxMLP(fnn.Module):
    @fnn.compact
    def __call__(self, x):
        x = fnn.relu(fnn.Dense(DIMS[1], dtype=jnp.bfloat16, param_dtype=jnp.float32)(x))
        return fnn.Dense(DIMS[2], dtype=jnp.bfloat16, param_dtype=jnp.float32)(x)


def _setup():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((8, DIMS[0]), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, DIMS[2], 8).astype(np.int32))
    model = jdl.models.mlp(list(DIMS[1:]))
    params, state = model.init(jax.random.key(0), x)
    return model, params, state, x, y


def _flax_step(params, x, y):
    layers = [params[k] for k in sorted(params, key=lambda k: int(k.split("_")[0])) if params[k]]
    fparams = {f"Dense_{i}": {"kernel": l["w"], "bias": l["b"]} for i, l in enumerate(layers)}
    tx = optax.adam(1e-2)

    def loss(p):
        logits = FlaxMLP().apply({"params": p}, x).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    value, grads = jax.value_and_grad(loss)(fparams)
    updates, _ = tx.update(grads, tx.init(fparams), fparams)
    return value, grads, optax.apply_updates(fparams, updates)


def test_bfloat16_step_matches_flax_mixed_precision_and_keeps_float32_params():
    model, params, state, x, y = _setup()
    opt = jdl.optim.adam(1e-2)
    ts = TrainState(params, state, opt.init(params), jnp.zeros([], jnp.int32), jax.random.key(0))
    step = make_step(supervised(model, softmax_cross_entropy, compute_dtype=jnp.bfloat16), opt, donate=False)
    new, metrics = step(ts, (x, y))
    ref_loss, ref_grads, ref_params = _flax_step(params, x, y)
    f32_loss = softmax_cross_entropy(model.apply(params, state, x)[0], y)

    np.testing.assert_allclose(metrics["loss"], ref_loss, rtol=1e-6)
    # bfloat16 keeps 8 bits of mantissa: the loss differs from float32's, but is that of flax's
    # bfloat16 network.
    assert abs(float(f32_loss) - float(metrics["loss"])) > 1e-5
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(new.params))
    assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(new.opt_state) if jnp.issubdtype(a.dtype, jnp.floating))
    layers = [new.params[k] for k in sorted(new.params, key=lambda k: int(k.split("_")[0])) if new.params[k]]
    for i, layer in enumerate(layers):
        np.testing.assert_allclose(layer["w"], ref_params[f"Dense_{i}"]["kernel"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer["b"], ref_params[f"Dense_{i}"]["bias"], rtol=1e-5, atol=1e-6)


def test_bfloat16_eval_step_uses_the_compute_dtype():
    model, params, state, x, y = _setup()
    mask = jnp.ones(x.shape[0])
    sums16 = make_eval_step(model, softmax_cross_entropy, jnp.bfloat16)(params, state, x, y, mask)
    sums32 = make_eval_step(model, softmax_cross_entropy)(params, state, x, y, mask)
    ref_loss, _, _ = _flax_step(params, x, y)
    np.testing.assert_allclose(sums16["loss"] / sums16["count"], ref_loss, rtol=1e-6)
    assert abs(float(sums16["loss"]) - float(sums32["loss"])) > 1e-5
