"""The MLP half of the bias–variance experiment: one hidden layer of tanh units, its width the
capacity, trained on every resampled training set at once (the train step vmapped over sets).

The variance here is over training sets *and* initializations (each set gets its own init key):
both are the randomness of "the model we would have got".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jdl
from experiments.bias_variance import Problem, decompose, sample_sets, test_points


def train_many(key: jax.Array, x: jax.Array, y: jax.Array, width: int, steps: int, lr: float = 0.01):
    """Train R MLPs 1 → width → 1 (tanh) by full-batch Adam on the MSE mean (ŷ − y)², one per
    training set; returns the predict function ŷ(params, x) and the R trained params.

    Shapes: x, y (R, n) → params with a leading R axis."""
    model = jdl.models.mlp([width, 1], activation=jdl.nn.tanh, w_init=jdl.init.xavier_normal)
    opt = jdl.optim.adam(lr)
    loss_fn = jdl.train.supervised(model, jdl.losses.mse)
    step = jdl.train.make_step(loss_fn, opt, jit=False)
    keys = jax.random.split(key, x.shape[0])
    ts = jax.vmap(lambda k, xr: jdl.train.init_train_state(model, opt, xr[:, None], seed=k))(keys, x)

    @jax.jit
    def train(ts, x, y):
        def body(ts, _):
            ts, m = jax.vmap(step)(ts, (x[..., None], y[..., None]))  # x (R, n, 1)
            return ts, m["loss"]
        return jax.lax.scan(body, ts, None, length=steps)

    ts, losses = train(ts, x, y)

    def predict(params, state, xs):
        return model.apply(params, state, xs[:, None])[0][:, 0]

    return predict, ts, losses[-1]


def mlp_capacity(key: jax.Array, problem: Problem, widths, n_sets: int, steps: int) -> dict:
    """bias², variance, noise, their sum, the measured test MSE and the training MSE per width."""
    k_train, k_test, k_init = jax.random.split(key, 3)
    x, y = sample_sets(k_train, problem, n_sets)
    x_test, f_test, y_test = test_points(k_test, problem, n_sets)
    out = {}
    for w in widths:
        predict, ts, train_loss = train_many(jax.random.fold_in(k_init, w), x, y, w, steps)
        pred = jax.vmap(predict, in_axes=(0, 0, None))(ts.params, ts.state, x_test)  # (R, M)
        out[w] = {**decompose(pred, f_test, y_test, problem.sigma), "train_mse": float(jnp.mean(train_loss))}
    return out
