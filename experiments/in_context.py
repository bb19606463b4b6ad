"""In-context learning of linear functions (Garg et al., 2022, in miniature): a small GPT reads
(x_1, f(x_1), …, x_k, f(x_k), x_q) for a fresh random f(x) = wᵀx and predicts f(x_q) — without
any update of its weights; how well it does against k, beside least squares, averaging and
3-nearest neighbours on the same prompts.

The model is ``jdl.models.gpt_vectors.vector_gpt``: GPT-2 blocks with a linear read-in of the
(d + 1)-feature tokens (x_i, 0) and (0, y_i) (``jdl.data.linear_functions.interleave``) and a
linear read-out of one number at every x position. It trains on the squared error of its
prediction of y_i at every x_i, averaged over i = 1..n, on a fresh batch of functions at every
step (``jdl.train.make_step``), with Garg et al.'s curriculum on the dimension: the x's first
``d_active`` coordinates only, ``d_active`` growing from ``curriculum_start`` to d. The test
error is the normalized squared error (ŷ − y)²/d on fresh prompts, against the number of
in-context examples i − 1; predicting 0 scores 1 (E[y²] = d).

    python -m experiments.in_context --workdir=runs/in_context [--quick] [--steps=N]
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Config:
    """The task (d, n_points = k_max + 1), the model, the optimizer, the curriculum, and the
    evaluation (``eval_prompts`` fresh prompts, the training curve every ``eval_every`` steps)."""

    d: int = 3
    n_points: int = 10  # up to 9 = 3d in-context examples
    num_layers: int = 3
    d_model: int = 64
    num_heads: int = 4
    batch_size: int = 64
    steps: int = 6000
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    clip_norm: float = 1.0
    curriculum_start: int = 2  # d_active at step 0; +1 every curriculum_every steps up to d
    curriculum_every: int = 300
    eval_every: int = 250
    eval_prompts: int = 1000
    knn: int = 3
    normalize_y: bool = False  # the model reads and writes y/√d (unit variance), scored as y


# the first full run: d = 5, k up to 2d, lr 10⁻³ (its numbers are in docs/in_context.md)
D5 = Config(d=5, n_points=11, steps=5000, learning_rate=1e-3, warmup_steps=200, curriculum_every=500)
SETTINGS = {"d3": Config(), "d5": D5}
QUICK = Config(d=3, n_points=8, num_layers=1, d_model=16, num_heads=2, batch_size=32, steps=60,
               learning_rate=3e-3, warmup_steps=5, curriculum_every=20, eval_every=20, eval_prompts=256)


def d_active(config: Config, step: int) -> int:
    """The curriculum: min(d, curriculum_start + ⌊step / curriculum_every⌋)."""
    return min(config.d, config.curriculum_start + step // config.curriculum_every)


def normalized_errors(pred, ys, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over prompts of (ŷ_i − y_i)²/d at each position i.

    Shapes: pred, ys (B, n) → mean (n,), sem (n,)."""
    e = np.asarray((pred - ys) ** 2, np.float64) / d  # (B, n)
    return e.mean(axis=0), e.std(axis=0, ddof=1) / np.sqrt(len(e))


def make_model(config: Config):
    from jdl.models.gpt import GPTConfig
    from jdl.models.gpt_vectors import vector_gpt

    gpt_config = GPTConfig(vocab_size=1, context=2 * config.n_points, num_layers=config.num_layers,
                           d_model=config.d_model, num_heads=config.num_heads)
    return vector_gpt(gpt_config, d_in=config.d + 1, d_out=1)


def train(config: Config, seed: int) -> dict:
    """Train on fresh prompts at every step; returns the params, the curve of the test error
    (mean over positions, and at k = d) against the step, the curriculum and the time taken."""
    import jax
    import jax.numpy as jnp

    from jdl import optim
    from jdl.data.linear_functions import interleave, linear_function_prompts
    from jdl.train import init_train_state, make_step

    model = make_model(config)
    n, d = config.n_points, config.d
    scale = float(np.sqrt(d)) if config.normalize_y else 1.0

    def loss_fn(params, state, batch, key):
        z, ys = batch
        pred = model.apply(params, state, z, key=key, train=True)[0][:, ::2, 0]  # (B, n): ŷ_i at x_i
        return jnp.mean((pred - ys) ** 2), (state, {})

    @jax.jit
    def draw(key, active):
        xs, ys, _ = linear_function_prompts(key, config.batch_size, n, d, active)
        return interleave(xs, ys / scale), ys / scale

    lr = optim.schedules.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps, config.steps)
    optimizer = optim.chain(optim.clip_by_global_norm(config.clip_norm), optim.adam(lr))
    ts = init_train_state(model, optimizer, jax.ShapeDtypeStruct((1, 2 * n, d + 1), jnp.float32), seed)
    step = make_step(loss_fn, optimizer)
    test = test_prompts(config, seed)
    predict = jax.jit(lambda p, z: scale * model.apply(p, {}, z)[0][:, ::2, 0])
    curve, data_key, start = {"step": [], "error": [], "error_at_d": [], "train_loss": []}, jax.random.key(seed + 1), time.perf_counter()
    losses = []
    for t in range(config.steps + 1):
        if t % config.eval_every == 0 or t == config.steps:
            err, _ = normalized_errors(predict(ts.params, test["z"]), test["ys"], d)
            curve["step"].append(t)
            curve["error"].append(float(err.mean()))
            curve["error_at_d"].append(float(err[d]))
            curve["train_loss"].append(float(np.mean(jax.device_get(losses[-config.eval_every:]))) * scale ** 2 / d if losses else float("nan"))
            print(f"step {t}: d_active {d_active(config, t)}, test error {err.mean():.3f}, at k=d {err[d]:.3f}", flush=True)
        if t == config.steps:
            break
        ts, metrics = step(ts, draw(jax.random.fold_in(data_key, t), d_active(config, t)))
        losses.append(metrics["loss"])
    return {"params": ts.params, "curve": curve, "seconds": time.perf_counter() - start,
            "predict": predict, "test": test}


def test_prompts(config: Config, seed: int) -> dict:
    """``eval_prompts`` fresh prompts with every coordinate active, from a key no training draw
    uses: {'xs', 'ys', 'z'} (z holds y/√d with ``normalize_y``)."""
    import jax

    from jdl.data.linear_functions import interleave, linear_function_prompts

    xs, ys, _ = linear_function_prompts(jax.random.key(10_000 + seed), config.eval_prompts,
                                        config.n_points, config.d)
    scale = float(np.sqrt(config.d)) if config.normalize_y else 1.0
    return {"xs": xs, "ys": ys, "z": interleave(xs, ys / scale)}


def compare(config: Config, trained: dict) -> dict:
    """The normalized error of the Transformer and every baseline at k = 0..n−1 examples, the
    table rows, and how far the Transformer is from least squares."""
    from jdl.models.in_context import (
        averaging_predictions, least_squares_predictions, nearest_neighbour_predictions,
    )

    test, d = trained["test"], config.d
    preds = {"Transformer": trained["predict"](trained["params"], test["z"]),
             "least squares": least_squares_predictions(test["xs"], test["ys"]),
             "averaging": averaging_predictions(test["xs"], test["ys"]),
             f"{config.knn}-nearest neighbours": nearest_neighbour_predictions(test["xs"], test["ys"], config.knn),
             "zero (ŷ = 0)": 0 * test["ys"]}
    curves = {}
    for name, p in preds.items():
        mean, sem = normalized_errors(p, test["ys"], d)
        curves[name] = {"mean": mean.tolist(), "sem": sem.tolist()}
    table = [{"k": k, **{name: curves[name]["mean"][k] for name in curves}} for k in range(config.n_points)]
    gap = np.abs(np.array(curves["Transformer"]["mean"]) - np.array(curves["least squares"]["mean"]))
    return {"curves": curves, "table": table, "max_gap_to_least_squares": float(gap.max()),
            "gap_to_least_squares": gap.tolist()}


def plot(results: dict, workdir: str) -> str:
    """Left: normalized error against the number of in-context examples (the paper's figure);
    right: the Transformer's test error against the training step."""
    from matplotlib.figure import Figure

    from experiments.common import save_figure

    c, d = results["config"], results["config"]["d"]
    fig = Figure(figsize=(10, 4))
    ax, ax2 = fig.subplots(1, 2)
    k = np.arange(c["n_points"])
    for name, curve in results["curves"].items():
        mean, sem = np.array(curve["mean"]), np.array(curve["sem"])
        style = {"lw": 2.5} if name == "Transformer" else ({"ls": ":", "color": "gray"} if name.startswith("zero") else {})
        ax.plot(k, mean, label=name, **style)
        ax.fill_between(k, mean - 2 * sem, mean + 2 * sem, alpha=0.2, color=ax.lines[-1].get_color())
    ax.axvline(d, color="k", lw=0.5, ls="--")
    ax.set_ylim(-0.05, 2.0)
    ax.set_xlabel("in-context examples k")
    ax.set_ylabel("squared error / d")
    ax.set_title(f"linear functions, d = {d}")
    ax.legend(fontsize=8)
    curve = results["training"]["curve"]
    ax2.plot(curve["step"], curve["error"], "o-", ms=3, label="test error, mean over k")
    ax2.plot(curve["step"], curve["error_at_d"], "s-", ms=3, label=f"test error at k = d = {d}")
    ax2.set_xlabel("step")
    ax2.set_ylabel("squared error / d")
    ax2.set_ylim(0, 1.6)
    ax2.legend(fontsize=8)
    ax2.set_title("training (curriculum on the dimension)")
    return save_figure(fig, workdir, "in_context.png", dpi=90)


def run(workdir: str, quick: bool = False, seed: int = 0, steps: int | None = None,
        setting: str = "d3") -> dict:
    """Train (``SETTINGS[setting]``; ``QUICK`` with ``quick``), compare with the baselines on fresh
    prompts, write results.json and in_context.png. Returns {'config', 'training', 'curves',
    'table', 'max_gap_to_least_squares', 'gap_to_least_squares', 'plots'}."""
    import jdl
    from experiments.common import write_results

    if setting not in SETTINGS:
        raise ValueError(f"in_context: setting must be one of {sorted(SETTINGS)}, got {setting!r}")
    config = QUICK if quick else SETTINGS[setting]
    if steps is not None:
        config = dataclasses.replace(config, steps=steps)
    trained = train(config, seed)
    results = {"config": dataclasses.asdict(config),
               "training": {"curve": trained["curve"], "seconds": trained["seconds"],
                            "params_count": jdl.param_count(trained["params"])},
               **compare(config, trained)}
    results["plots"] = [plot(results, workdir)]
    write_results(workdir, results)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("steps", None, "Training steps (default: the setting's).")
    flags.DEFINE_enum("setting", "d3", sorted(SETTINGS), "d3: d = 3, k ≤ 9 (Config); d5: d = 5, k ≤ 10.")
    common.main(run, "in_context")
