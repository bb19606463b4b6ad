"""Non-finite values in training: an infinite learning rate and a corrupt target stop fit at the
right step naming the param, leave the last good checkpoint loadable, or are skipped on request
exactly as if the bad batch had been left out."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl.data import batches, epoch_order
from jdl.losses import mse
from jdl.train import NonFiniteError, fit, init_train_state, make_step, supervised
from tests.helpers import draw_normal

X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32)).astype(np.float32)  # (200, 1) regression
BAD = 37  # the example corrupted below: finite, but its squared error overflows


def _corrupt(feature):
    x, y = X.copy(), Y.copy()
    if feature:
        x[BAD] = 1e30  # loss, the weights' gradients and so the weights overflow
    else:
        y[BAD] = 3e38  # only the loss overflows: (ŷ − y)² = inf, its gradient 2(ŷ − y)/B is finite
    return x, y


def test_infinite_learning_rate_stops_naming_step_and_param(tmp_path):
    schedule = lambda t: jnp.where(t < 10, 0.05, jnp.inf)  # noqa: E731  step 11 uses inf
    with pytest.raises(NonFiniteError) as e:
        fit(jdl.models.mlp([8, 1]), mse, jdl.optim.sgd(schedule), (X, Y), epochs=2, batch_size=10,
            workdir=tmp_path, checkpoint_every=4, progress=False, tensorboard=False)
    assert e.value.step == 11 and e.value.path == "1_dense/b"  # the first param leaf, in tree order
    message = str(e.value)
    assert "step 11 made a non-finite value" in message and "first param that went non-finite: 1_dense/b" in message
    assert f"the last good checkpoint is {tmp_path / 'checkpoints' / '8'}" in message
    # nothing after the bad step was saved, and the last good checkpoint loads with finite params
    assert jdl.train.checkpoint.steps(tmp_path / "checkpoints") == [4, 8]
    good = jdl.train.restore(tmp_path)
    assert int(good.train_state.step) == 8
    assert all(np.isfinite(np.asarray(p)).all() for p in jax.tree.leaves(good.train_state.params))


@pytest.mark.parametrize("feature", [True, False])
def test_corrupt_batch_stops_at_its_step(feature):
    position = int(np.argwhere(epoch_order(200, 0, 0) == BAD)[0, 0])
    with pytest.raises(NonFiniteError) as e:
        fit(jdl.models.mlp([8, 1]), mse, jdl.optim.sgd(0.05), _corrupt(feature), epochs=1, batch_size=10,
            progress=False)
    assert e.value.step == position // 10 + 1
    if feature:
        # x·w overflows: the weights' gradients (x ⊗ δ) are inf, the biases' (δ) not
        assert "non-finite value: loss, 1_dense/w, 3_dense/w (first param that went non-finite: 1_dense/w)" in str(e.value)
        assert e.value.path == "1_dense/w"
    else:
        assert "non-finite value: loss (the loss only; the params are still finite)" in str(e.value)


def test_skip_equals_leaving_the_bad_batch_out(key):
    """on_nonfinite='skip' == a plain loop over the same batches that does not apply the step
    of the batch holding the corrupt target (the step count, and so the keys, still advance)."""
    model, opt = jdl.models.mlp([8, 1]), jdl.optim.sgd(0.05)
    x, y = _corrupt(feature=True)
    result = fit(model, mse, opt, (x, y), epochs=2, batch_size=10, on_nonfinite="skip", progress=False)
    ts = init_train_state(model, opt, jax.ShapeDtypeStruct((10, 3), jnp.float32), 0)
    step = make_step(supervised(model, mse), opt, donate=False)
    for epoch in range(2):
        order = epoch_order(200, 0, epoch)
        for b, (xb, yb) in enumerate(batches(x, y, 10, seed=0, epoch=epoch)):
            new, _ = step(ts, (xb, yb))
            ts = ts._replace(step=new.step) if BAD in order[10 * b:10 * (b + 1)] else new
    jax.tree.map(np.testing.assert_array_equal, result.train_state.params, ts.params)
    assert [h["train_skipped_steps"] for h in result.history] == [1, 1]
    assert all(np.isfinite(h["train_loss"]) for h in result.history)


def test_make_step_modes(key):
    model = jdl.models.mlp([4, 2])
    x, y = draw_normal(key, (6, 3)), jnp.arange(6) % 2
    ts = init_train_state(model, jdl.optim.sgd(0.1), x)
    loss_fn = supervised(model, jdl.losses.softmax_cross_entropy)
    _, metrics = make_step(loss_fn, jdl.optim.sgd(0.1), donate=False)(ts, (x, y))
    assert set(metrics) == {"loss", "accuracy"}  # default: as before
    _, metrics = make_step(loss_fn, jdl.optim.sgd(0.1), donate=False, on_nonfinite="stop")(ts, (x, y))
    assert metrics["ok"].shape == (1 + 4,) and bool(metrics["ok"].all())
    with pytest.raises(ValueError, match="on_nonfinite='halt': valid choices are None, 'stop', 'skip'"):
        make_step(loss_fn, jdl.optim.sgd(0.1), on_nonfinite="halt")
