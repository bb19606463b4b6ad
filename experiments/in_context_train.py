"""Training for ``experiments.in_context``: the configuration, the curricula, and a loop that
draws every batch inside the jitted step from a key, ``eval_every`` steps per call.

The batch of step t is ``linear_function_prompts(fold_in(data_key, t), B, n_t, d, d_t)`` with
d_t and n_t the curricula's dimension and number of points at t — the same draw a Python loop
calling the generator once a step would make (``tests/experiments/test_in_context_train.py`` checks
the trained weights against such a loop). Drawing inside ``lax.scan`` removes one dispatch and
one host round-trip a step; the step itself (the model's forward and backward pass) is the
cost (measured in docs/in_context.md).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Config:
    """The task (d, n_points = k_max + 1), the model, the optimizer, the curricula, and the
    evaluation (``eval_prompts`` fresh prompts, the training curve every ``eval_every`` steps).

    ``schedule``: 'cosine' (linear warmup, cosine decay to 0 at ``steps``) or 'constant' (linear
    warmup, then ``learning_rate``). ``points_start``: None (every prompt has ``n_points``) or
    the curriculum on the prompt length, n_t = min(n_points, points_start + points_step·stage)
    with the dimension's stage ⌊t / curriculum_every⌋ (Garg et al. grow both)."""

    d: int = 3
    n_points: int = 10  # up to 9 = 3d in-context examples
    num_layers: int = 3
    d_model: int = 64
    num_heads: int = 4
    batch_size: int = 64
    steps: int = 15000
    learning_rate: float = 3e-4
    warmup_steps: int = 500
    schedule: str = "constant"
    clip_norm: float = 1.0
    curriculum_start: int = 2  # d_active at step 0; +1 every curriculum_every steps up to d
    curriculum_every: int = 300
    points_start: int | None = None
    points_step: int = 2
    eval_every: int = 500
    eval_prompts: int = 1000
    knn: int = 3
    normalize_y: bool = False  # the model reads and writes y/√d (unit variance), scored as y


def d_active(config: Config, step):
    """The curriculum on the dimension: min(d, curriculum_start + ⌊step / curriculum_every⌋)
    (step an int or a traced integer array)."""
    stage = step // config.curriculum_every
    if isinstance(step, int):
        return min(config.d, config.curriculum_start + stage)
    import jax.numpy as jnp
    return jnp.minimum(config.d, config.curriculum_start + stage)


def n_active(config: Config, step: int) -> int:
    """The curriculum on the prompt length: min(n_points, points_start + points_step·⌊step /
    curriculum_every⌋), or n_points without one."""
    if config.points_start is None:
        return config.n_points
    return min(config.n_points, config.points_start + config.points_step * (step // config.curriculum_every))


def make_model(config: Config):
    """``vector_gpt`` on (d + 1)-feature tokens, context 2n, one output: z (B, 2n, d + 1) → (B, 2n, 1)."""
    from jdl.models.gpt import GPTConfig
    from jdl.models.gpt_vectors import vector_gpt

    gpt_config = GPTConfig(vocab_size=1, context=2 * config.n_points, num_layers=config.num_layers,
                           d_model=config.d_model, num_heads=config.num_heads)
    return vector_gpt(gpt_config, d_in=config.d + 1, d_out=1)


def learning_rate(config: Config):
    """η_t: linear warmup over ``warmup_steps`` to ``learning_rate``, then cosine decay to 0 at
    ``steps`` ('cosine') or constant ('constant')."""
    from jdl import optim

    s = optim.schedules
    if config.schedule == "cosine":
        return s.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps, config.steps)
    if config.schedule == "constant":
        return s.warmup(config.learning_rate, config.warmup_steps)
    raise ValueError(f"in_context: schedule must be 'cosine' or 'constant', got {config.schedule!r}")


def y_scale(config: Config) -> float:
    """s = √d under ``normalize_y`` (the model reads and writes y/s), else 1."""
    return float(np.sqrt(config.d)) if config.normalize_y else 1.0


def draw_batch(config: Config, key, n: int, active):
    """One training batch: (z (B, 2n, d + 1), ys (B, n)) with y/√d under ``normalize_y``."""
    from jdl.data.linear_functions import interleave, linear_function_prompts

    xs, ys, _ = linear_function_prompts(key, config.batch_size, n, config.d, active)
    return interleave(xs, ys / y_scale(config)), ys / y_scale(config)


def build(config: Config, seed: int):
    """The model, the optimizer, the initial TrainState and ``chunk(ts, t0, length, n) -> (ts,
    losses)``: ``length`` steps from step t0 on prompts of n points, batches drawn inside."""
    import jax
    import jax.numpy as jnp

    from jdl import optim
    from jdl.train import init_train_state, make_step

    model, d = make_model(config), config.d

    def loss_fn(params, state, batch, key):
        z, ys = batch
        pred = model.apply(params, state, z, key=key, train=True)[0][:, ::2, 0]  # (B, n): ŷ_i at x_i
        return jnp.mean((pred - ys) ** 2), (state, {})

    optimizer = optim.chain(optim.clip_by_global_norm(config.clip_norm), optim.adam(learning_rate(config)))
    ts = init_train_state(model, optimizer, jax.ShapeDtypeStruct((1, 2 * config.n_points, d + 1), jnp.float32), seed)
    step, data_key = make_step(loss_fn, optimizer, jit=False), jax.random.key(seed + 1)

    def chunk(ts, t0, length, n):
        def body(ts, t):
            ts, metrics = step(ts, draw_batch(config, jax.random.fold_in(data_key, t), n, d_active(config, t)))
            return ts, metrics["loss"]
        return jax.lax.scan(body, ts, t0 + jnp.arange(length))

    return model, ts, jax.jit(chunk, static_argnums=(2, 3), donate_argnums=(0,))


def boundaries(config: Config) -> list[int]:
    """The steps where training pauses: every ``eval_every``, every change of n_active, and the end."""
    ts = set(range(0, config.steps, config.eval_every)) | {config.steps}
    if config.points_start is not None:
        ts |= {t for t in range(0, config.steps, config.curriculum_every) if t > 0}
    return sorted(ts)


def train(config: Config, seed: int, test: dict) -> dict:
    """Train on fresh prompts; returns the params, the curve of the test error (mean over
    positions, at k = d and at k = 2d) against the step, and the seconds taken. ``test`` holds
    {'ys', 'z'} (``test_prompts``)."""
    import jax

    from experiments.in_context import normalized_errors

    model, ts, chunk = build(config, seed)
    d, scale = config.d, y_scale(config)
    predict = jax.jit(lambda p, z: scale * model.apply(p, {}, z)[0][:, ::2, 0])
    curve = {"step": [], "error": [], "error_at_d": [], "error_at_2d": [], "train_loss": []}
    start, losses, marks = time.perf_counter(), [], boundaries(config)
    k2 = min(2 * d, config.n_points - 1)
    for t, t_next in zip(marks, marks[1:] + [None]):
        if t % config.eval_every == 0 or t == config.steps:
            err, _ = normalized_errors(predict(ts.params, test["z"]), test["ys"], d)
            recent = np.concatenate(losses)[-config.eval_every:] if losses else np.array([np.nan])
            for name, v in zip(curve, (t, err.mean(), err[d], err[k2], recent.mean() * scale ** 2 / d)):
                curve[name].append(float(v))
            print(f"step {t}: d_active {d_active(config, t)}, n {n_active(config, t)}, test error {err.mean():.3f}, "
                  f"at k=d {err[d]:.3f}, at k={k2} {err[k2]:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
        if t_next is None:
            break
        ts, loss = chunk(ts, t, t_next - t, n_active(config, t))
        losses.append(np.asarray(loss))
    return {"params": ts.params, "curve": curve, "seconds": time.perf_counter() - start, "predict": predict}
