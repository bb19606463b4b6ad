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

import numpy as np


from experiments.in_context_train import Config, d_active, make_model, n_active, train as _train  # noqa: F401

# the earlier runs (their numbers are in docs/in_context.md): d = 5, k up to 2d, lr 10⁻³; then
# d = 3 at lr 3·10⁻³ with a cosine decay over 6,000 steps, eval every 250 steps
D5 = Config(d=5, n_points=11, steps=5000, learning_rate=1e-3, warmup_steps=200, schedule="cosine",
            curriculum_every=500, eval_every=250)
D3_COSINE = Config(steps=6000, learning_rate=3e-3, warmup_steps=100, schedule="cosine", eval_every=250)
# twice the depth (6 blocks, twice the CPU a step), 8,000 steps
D3_DEEP = Config(num_layers=6, steps=8000)
SETTINGS = {"d3": Config(), "d3_deep": D3_DEEP, "d3_deep_cosine": dataclasses.replace(D3_DEEP, schedule="cosine"), "d3_cosine": D3_COSINE, "d5": D5}
QUICK = Config(d=3, n_points=8, num_layers=1, d_model=16, num_heads=2, batch_size=32, steps=60,
               learning_rate=3e-3, warmup_steps=5, schedule="cosine", curriculum_every=20, eval_every=20,
               eval_prompts=256)


def normalized_errors(pred, ys, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over prompts of (ŷ_i − y_i)²/d at each position i.

    Shapes: pred, ys (B, n) → mean (n,), sem (n,)."""
    e = np.asarray((pred - ys) ** 2, np.float64) / d  # (B, n)
    return e.mean(axis=0), e.std(axis=0, ddof=1) / np.sqrt(len(e))


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
    k2 = min(2 * d, c["n_points"] - 1)
    ax2.plot(curve["step"], curve["error_at_2d"], "^-", ms=3, label=f"test error at k = {k2}")
    ax2.set_xlabel("step")
    ax2.set_ylabel("squared error / d")
    ax2.set_ylim(0, 1.6)
    ax2.legend(fontsize=8)
    ax2.set_title("training (curriculum on the dimension)")
    return save_figure(fig, workdir, "in_context.png", dpi=90)


def with_overrides(config: Config, overrides: str) -> Config:
    """``config`` with the fields of "name=value,name=value" replaced, each value parsed as the
    field's default is typed (None, int, float, str, bool): the probes' command-line knob."""
    changes = {}
    for item in filter(None, overrides.split(",")):
        name, _, value = item.partition("=")
        if name not in Config.__dataclass_fields__:
            raise ValueError(f"in_context: no Config field {name!r}")
        old = getattr(Config(), name)
        kind = int if name == "points_start" else type(old)
        changes[name] = None if value == "None" else (value == "True" if kind is bool else kind(value))
    return dataclasses.replace(config, **changes)


def run(workdir: str, quick: bool = False, seed: int = 0, steps: int | None = None,
        setting: str = "d3", overrides: str = "") -> dict:
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
    config = with_overrides(config, overrides)
    test = test_prompts(config, seed)
    trained = {**_train(config, seed, test), "test": test}
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
    flags.DEFINE_enum("setting", "d3", sorted(SETTINGS), "d3: d = 3, k ≤ 9 (Config); d3_deep(_cosine): 6 blocks, 8,000 steps (cosine decay); d3_cosine: the same at lr 3e-3, cosine, 6,000 steps; d5: d = 5, k ≤ 10.")
    flags.DEFINE_string("overrides", "", "Config fields to replace, e.g. learning_rate=1e-3,schedule=constant.")
    common.main(run, "in_context")
