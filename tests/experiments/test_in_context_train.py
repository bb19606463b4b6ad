import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import in_context
from experiments.in_context_train import Config, boundaries, build, d_active, n_active
from jdl import optim
from jdl.data.linear_functions import interleave, linear_function_prompts
from jdl.train import init_train_state, make_step

TINY = Config(d=3, n_points=6, num_layers=1, d_model=16, num_heads=2, batch_size=8, steps=7,
              learning_rate=1e-2, warmup_steps=2, schedule="constant", curriculum_every=3,
              points_start=3, eval_every=4)


def test_curricula_and_the_pauses():
    assert [d_active(TINY, t) for t in range(0, 10, 3)] == [2, 3, 3, 3]
    assert int(d_active(TINY, jnp.array(4))) == 3  # traced steps give the same stage
    assert [n_active(TINY, t) for t in (0, 2, 3, 6, 9)] == [3, 3, 5, 6, 6]  # 3 + 2·stage, at most 6
    assert n_active(dataclasses.replace(TINY, points_start=None), 0) == 6
    assert boundaries(TINY) == [0, 3, 4, 6, 7]  # evaluations every 4, n changes at 3 and 6, the end


def test_scanned_training_is_the_python_loop_of_one_draw_and_one_step_per_step():
    """The batches drawn inside the jitted scan are the ones a loop drawing
    linear_function_prompts(fold_in(key(seed + 1), t), …) each step makes (the loop of the
    first runs, with both curricula): the weights after 7 steps agree, to the float noise that
    Adam amplifies on near-zero gradients (far below its 10⁻² steps)."""
    model, ts, chunk = build(TINY, seed=0)
    for t, t_next in zip(boundaries(TINY), boundaries(TINY)[1:]):
        ts, losses = chunk(ts, t, t_next - t, n_active(TINY, t))

    def loss_fn(params, state, batch, key):
        z, ys = batch
        pred = model.apply(params, state, z, key=key, train=True)[0][:, ::2, 0]
        return jnp.mean((pred - ys) ** 2), (state, {})

    lr = optim.schedules.linear_schedule(0.0, 1e-2, 2)
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(lr))
    ref = init_train_state(model, opt, jax.ShapeDtypeStruct((1, 12, 4), jnp.float32), 0)
    step, data_key = make_step(loss_fn, opt), jax.random.key(1)
    for t in range(7):
        n, active = (3, 2) if t < 3 else ((5, 3) if t < 6 else (6, 3))
        xs, ys, _ = linear_function_prompts(jax.random.fold_in(data_key, t), 8, n, 3, active)
        ref, metrics = step(ref, (interleave(xs, ys), ys))
    np.testing.assert_allclose(float(losses[-1]), float(metrics["loss"]), rtol=1e-4)
    for a, b in zip(jax.tree.leaves(ts.params), jax.tree.leaves(ref.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=3e-5)
    assert int(ts.step) == 7


def test_overrides_parse_each_field_by_its_type():
    c = in_context.with_overrides(Config(), "learning_rate=1e-3,schedule=constant,num_layers=6,points_start=5,normalize_y=True")
    assert (c.learning_rate, c.schedule, c.num_layers, c.points_start, c.normalize_y) == (1e-3, "constant", 6, 5, True)
    assert in_context.with_overrides(c, "points_start=None").points_start is None
    with pytest.raises(ValueError, match="no Config field"):
        in_context.with_overrides(c, "lr=1")
