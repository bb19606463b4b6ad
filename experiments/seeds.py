"""Different seeds, different minima: an MLP's loss on moons is not convex, and training the same
network on the same data with only the seed changed (the initialization and the order of the
minibatches) ends in different minima.

For every seed it reports the final training loss and the test accuracy; for every pair of seeds
the relative parameter distance ‖θ_i − θ_j‖ / ‖θ_i‖, the share of test points and of points on a
grid around the data where the two networks predict different classes, and the training loss
along the straight line between them, L((1 − t)θ_i + tθ_j), whose bump above the endpoints (the
barrier) shows that the two minima are separate basins, not one.

    python -m experiments.seeds --workdir=runs/seeds [--quick]
"""

from __future__ import annotations

import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np

import jdl


def train_seeds(seeds, epochs: int, width: int = 32):
    """One MLP 2 → width → width → 2 (ReLU) per seed, fitted by jdl.train.fit (Adam, 1e-2,
    batches of 32) on the 720 moons training points; returns the model and the train states."""
    model = jdl.models.mlp([width, width, 2])
    train = jdl.data.load("moons", "train")
    states = [jdl.train.fit(model, jdl.losses.softmax_cross_entropy, jdl.optim.adam(1e-2), train, epochs=epochs,
                            batch_size=32, seed=s, progress=False, tensorboard=False).train_state for s in seeds]
    return model, states


def flat(params) -> jax.Array:
    """All parameters as one vector (P,)."""
    return jnp.concatenate([jnp.ravel(p) for p in jax.tree.leaves(params)])


def interpolation_losses(model, p0, p1, x, y, ts=np.linspace(0, 1, 21)) -> np.ndarray:
    """L((1 − t)θ_0 + tθ_1) on (x, y) for every t: the loss along the straight line between two minima."""
    def loss(t):
        p = jax.tree.map(lambda a, b: (1 - t) * a + t * b, p0, p1)
        return jdl.losses.softmax_cross_entropy(model.apply(p, {}, x)[0], y)

    return np.asarray(jax.jit(jax.vmap(loss))(jnp.asarray(ts, jnp.float32)))


def grid(x: np.ndarray, margin: float = 1.0, resolution: int = 100) -> np.ndarray:
    """A resolution² grid (R², 2) around the points x, ``margin`` beyond them on every side."""
    lo, hi = x.min(0) - margin, x.max(0) + margin
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    return np.stack([g0.ravel(), g1.ravel()], 1).astype(np.float32)


def compare(model, states, train, test) -> dict:
    """Per seed: training loss, test accuracy; per pair: parameter distance, disagreement on the
    test set and on the grid, and the interpolation barrier (max along the line − mean of the ends)."""
    g = grid(train[0])
    predict = jax.jit(lambda p, x: jnp.argmax(model.apply(p, {}, x)[0], -1))
    preds_test = [np.asarray(predict(s.params, test[0])) for s in states]
    preds_grid = [np.asarray(predict(s.params, g)) for s in states]
    losses = [float(interpolation_losses(model, s.params, s.params, *train, ts=[0.0])[0]) for s in states]
    out = {"train_loss": losses, "test_accuracy": [float(np.mean(p == test[1])) for p in preds_test], "pairs": {}}
    for i, j in itertools.combinations(range(len(states)), 2):
        pi, pj = flat(states[i].params), flat(states[j].params)
        line = interpolation_losses(model, states[i].params, states[j].params, *train)
        out["pairs"][f"{i}-{j}"] = {
            "param_distance": float(jnp.linalg.norm(pi - pj) / jnp.linalg.norm(pi)),
            "test_disagreement": float(np.mean(preds_test[i] != preds_test[j])),
            "grid_disagreement": float(np.mean(preds_grid[i] != preds_grid[j])),
            "barrier": float(line.max() - 0.5 * (line[0] + line[-1])), "line": line.tolist()}
    return out


def run(workdir: str, quick: bool = False, seed: int = 0, seeds: int | None = None) -> dict:
    """``seeds`` runs (8; 3 with ``quick``) for 60 epochs (3 with ``quick``); writes results.json,
    seeds_boundaries.png and seeds_interpolation.png."""
    from experiments import seeds_plots
    from experiments.common import write_results

    n = seeds or (3 if quick else 8)
    model, states = train_seeds(range(seed, seed + n), epochs=3 if quick else 60)
    train, test = jdl.data.load("moons", "train"), jdl.data.load("moons", "test")
    out = compare(model, states, train, test)
    pairs = out["pairs"].values()
    out["summary"] = {k: {"mean": float(np.mean([p[k] for p in pairs])), "max": float(np.max([p[k] for p in pairs]))}
                      for k in ("param_distance", "test_disagreement", "grid_disagreement", "barrier")}
    out["summary"]["train_loss"] = {"mean": float(np.mean(out["train_loss"])), "std": float(np.std(out["train_loss"]))}
    os.makedirs(workdir, exist_ok=True)
    out["plots"] = seeds_plots.plot_all(model, states, out, train, workdir)
    write_results(workdir, out)
    return out


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_integer("seeds", None, "How many seeds (default 8, 3 with --quick).")
    common.main(run, "seeds")
