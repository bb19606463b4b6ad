"""The classic single-layer models of the course, each with its own learning rule.

* McCulloch–Pitts neuron: a threshold unit with fixed ±1 weights (AND, OR, NOT; never XOR).
* Rosenblatt's perceptron: w ← w + η(y − ŷ)x, not gradient descent, scanned over examples.
* Linear regression: the normal equation w = (XᵀX)⁻¹XᵀY, or gradient descent on ½(ŷ − y)².
* Logistic regression: a = σ(xᵀw + b), ∂L/∂w = (a − y)x.
* Softmax regression: o = xᵀW + b, ∂L/∂o = softmax(o) − y.

Each hand-derived gradient (``*_grad``) is the one the course writes; the tests check it
against ``jax.grad`` of the matching ``*_loss``. Params are ``{'w', 'b'}`` dicts, with ``w`` of
shape (d_in,) or (d_in, K) acting on rows ``x`` (N, d_in), as in ``jdl.nn.Dense``.
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jdl.losses import sigmoid_binary_cross_entropy, softmax_cross_entropy
from jdl.nn.activations import sigmoid, softmax, step

Params = dict[str, jax.Array]

# (weights, threshold) of the McCulloch–Pitts units of the course: y = 1[Σ w_i x_i ≥ θ]
LOGIC_GATES: dict[str, tuple[tuple[float, ...], float]] = {
    "and": ((1.0, 1.0), 2.0),
    "or": ((1.0, 1.0), 1.0),
    "not": ((-1.0,), 0.0),
}


def mcculloch_pitts(x: jax.Array, w: jax.Array, threshold: float) -> jax.Array:
    """McCulloch–Pitts neuron: y = 1 if Σ_i w_i x_i ≥ θ else 0, weights in {+1, −1}.

    Shapes: x (..., d) binary, w (d,) → y (...) in {0, 1}.
    """
    x, w = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    if x.shape[-1:] != w.shape:
        raise ValueError(f"mcculloch_pitts: input has d={x.shape[-1:]} but there are {w.shape} weights")
    return (x @ w >= threshold).astype(jnp.int32)


def logic_gate(name: str, x: jax.Array) -> jax.Array:
    """AND, OR or NOT as a McCulloch–Pitts unit (``LOGIC_GATES``): AND = 1[x₁ + x₂ ≥ 2],
    OR = 1[x₁ + x₂ ≥ 1], NOT = 1[−x ≥ 0]. No (w, θ) gives XOR: it is not linearly separable.

    Shapes: x (..., 2) for AND/OR, (..., 1) for NOT → (...).
    """
    if name not in LOGIC_GATES:
        raise ValueError(f"logic_gate: unknown gate {name!r}; known: {', '.join(LOGIC_GATES)}")
    w, threshold = LOGIC_GATES[name]
    return mcculloch_pitts(x, jnp.asarray(w), threshold)


# ---------------------------------------------------------------- Rosenblatt's perceptron

_LABELS = {"01": (0, 1), "pm1": (-1, 1)}


def _check_labels(name: str, labels: str) -> None:
    if labels not in _LABELS:
        raise ValueError(f"{name}: labels must be '01' or 'pm1', got {labels!r}")


def perceptron_predict(params: Params, x: jax.Array, labels: str = "01") -> jax.Array:
    """ŷ = 1 if xᵀw + b > 0 else 0 (``labels='01'``), or +1 / −1 (``labels='pm1'``).

    At xᵀw + b = 0 the course's perceptron says 0 (−1): ŷ = ``step(z, value_at_zero=0)``, not
    ``jdl.nn.step``'s default 1; ``perceptron_update`` uses the same strict z > 0.
    Shapes: x (N, d), w (d,), b () → ŷ (N,) int32.
    """
    _check_labels("perceptron_predict", labels)
    z = x @ params["w"] + params["b"]
    lo = _LABELS[labels][0]
    return (lo + (1 - lo) * step(z, value_at_zero=0.0)).astype(jnp.int32)


def perceptron_update(params: Params, x: jax.Array, y: jax.Array, lr: float = 1.0,
                      labels: str = "01") -> tuple[Params, jax.Array]:
    """One step of Rosenblatt's rule on one example; returns (params, 1 if it was a mistake).

    labels '01':  ŷ = step(xᵀw + b, value_at_zero=0);  w ← w + η(y − ŷ)x,  b ← b + η(y − ŷ)  (err ∈ {−1, 0, 1})
    labels 'pm1': if y(xᵀw + b) ≤ 0:  w ← w + η·y·x,  b ← b + η·y

    Shapes: x (d,), y () → params of the same shapes.
    """
    _check_labels("perceptron_update", labels)
    z = x @ params["w"] + params["b"]
    if labels == "01":
        err = y - (z > 0).astype(x.dtype)
    else:
        err = jnp.where(y * z <= 0, y, 0).astype(x.dtype)
    new = {"w": params["w"] + lr * err * x, "b": params["b"] + lr * err}
    return new, (err != 0).astype(jnp.int32)


@partial(jax.jit, static_argnames=("epochs", "labels"))
def _perceptron_epochs(params, x, y, lr, epochs, labels, key):
    def one_example(p, xy):
        return perceptron_update(p, xy[0], xy[1], lr, labels)

    def one_epoch(p, epoch):
        order = (jnp.arange(x.shape[0]) if key is None
                 else jax.random.permutation(jax.random.fold_in(key, epoch), x.shape[0]))
        p, mistakes = jax.lax.scan(one_example, p, (x[order], y[order]))  # mistakes (N,)
        return p, jnp.sum(mistakes)

    return jax.lax.scan(one_epoch, params, jnp.arange(epochs))


def perceptron_train(x: jax.Array, y: jax.Array, epochs: int = 10, lr: float = 1.0,
                     labels: str = "01", key: jax.Array | None = None) -> tuple[Params, jax.Array]:
    """Rosenblatt's perceptron learning algorithm: w = 0, b = 0, then for every epoch and every
    example, ``perceptron_update``. Examples are visited in order, or in a fresh random order
    each epoch (``fold_in(key, epoch)``) when a ``key`` is given, as in the course's "pick a
    random (x_i, y_i)". Jitted once, examples and epochs under ``lax.scan``. It converges (zero
    mistakes in an epoch) exactly when the classes are linearly separable: AND and OR yes, XOR
    never.

    Shapes: x (N, d) float, y (N,) in {0, 1} (or {−1, 1} with ``labels='pm1'``).
    Returns: ({'w': (d,), 'b': ()}, mistakes per epoch (epochs,)).
    """
    _check_labels("perceptron_train", labels)
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2 or np.shape(y) != x.shape[:1]:
        raise ValueError(f"perceptron_train: expected x (N, d) and y (N,), got {x.shape} and {np.shape(y)}")
    bad = sorted(set(np.unique(np.asarray(y)).tolist()) - set(_LABELS[labels]))
    if bad:
        raise ValueError(f"perceptron_train: labels must be in {set(_LABELS[labels])} for labels={labels!r}, "
                         f"got {bad}" + (" (use labels='pm1' for −1/+1)" if -1 in bad else ""))
    params = {"w": jnp.zeros(x.shape[1], x.dtype), "b": jnp.zeros((), x.dtype)}
    return _perceptron_epochs(params, x, jnp.asarray(y, x.dtype), lr, epochs, labels, key)


# ---------------------------------------------------------------- regression

def _check_xy(name: str, x: jax.Array, y: jax.Array) -> None:
    if jnp.ndim(x) != 2 or jnp.shape(y)[:1] != jnp.shape(x)[:1]:
        raise ValueError(f"{name}: expected x (N, d_in) and y with N first, got {jnp.shape(x)} and {jnp.shape(y)}")


def normal_equation(x: jax.Array, y: jax.Array, method: str = "inverse", ridge: float = 0.0,
                    data_term: str = "sum") -> Params:
    """Least squares in closed form, min ‖Xw + b − Y‖², with X̃ = [X, 1] and θ = [w; b]:

        'inverse':  θ = (X̃ᵀX̃)⁻¹X̃ᵀY   (the course's normal equation; refuses a singular X̃ᵀX̃)
        'ridge':    θ = (X̃ᵀX̃ + λI₀)⁻¹X̃ᵀY, I₀ the identity without the bias entry (λ = ``ridge``)
        'pinv':     θ = X̃⁺Y  (Moore–Penrose: the minimum-norm solution, always defined)

    Ridge minimizes ‖X̃θ − Y‖² + λ‖w‖² (``data_term='sum'``, scikit-learn's ``Ridge(alpha=λ)``;
    the bias is not penalized). The course writes 1/n Σ_i (θ₀ + x_iᵀθ − y_i)² + λ‖θ‖², a mean
    over the n examples: ``data_term='mean'``, which solves (X̃ᵀX̃ + nλI₀)θ = X̃ᵀY, so
    λ_course = λ_sum / n. Both use λ‖w‖², not λ/2·‖w‖².

    Shapes: x (N, d), y (N,) or (N, K) → {'w': (d,) or (d, K), 'b': () or (K,)}.
    """
    _check_xy("normal_equation", x, y)
    if data_term not in ("sum", "mean"):
        raise ValueError(f"normal_equation: data_term must be 'sum' or 'mean', got {data_term!r}")
    x, y = jnp.asarray(x), jnp.asarray(y)
    xt = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)  # (N, d+1)
    p = xt.shape[1]
    if method == "pinv":
        theta = jnp.linalg.pinv(xt) @ y
    elif method in ("inverse", "ridge"):
        if method == "ridge" and ridge <= 0:
            raise ValueError(f"normal_equation: method='ridge' needs ridge=λ > 0, got {ridge}")
        gram = xt.T @ xt  # (d+1, d+1)
        if method == "ridge":
            lam = ridge * x.shape[0] if data_term == "mean" else ridge
            gram = gram + lam * jnp.diag(jnp.ones(p, x.dtype).at[-1].set(0))
        else:
            rank = int(np.linalg.matrix_rank(np.asarray(xt, np.float64)))
            if rank < p:
                raise ValueError(
                    f"normal_equation: XᵀX ({p}×{p}, bias column included) is singular: X has rank "
                    f"{rank} < {p} (collinear features or fewer examples than features). Use "
                    f"method='pinv' for the minimum-norm solution or method='ridge' with ridge=λ > 0")
        theta = jnp.linalg.solve(gram, xt.T @ y)
    else:
        raise ValueError(f"normal_equation: method must be 'inverse', 'ridge' or 'pinv', got {method!r}")
    return {"w": theta[:-1], "b": theta[-1]}


def linear_regression(params: Params, x: jax.Array) -> jax.Array:
    """ŷ = x w + b. Shapes: x (N, d), w (d,) or (d, K) → ŷ (N,) or (N, K)."""
    b = params["b"]
    return x @ params["w"] + (b[None] if b.ndim else b)  # (N,) or (N, K) + (1, K)


def linear_regression_loss(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """L = 1/N Σ_n ½(ŷ_n − y_n)² (the course's ½(ŷ − y)², averaged). Shapes as ``linear_regression``."""
    _check_xy("linear_regression_loss", x, y)
    return 0.5 * jnp.mean(jnp.sum(jnp.square(linear_regression(params, x) - y).reshape(len(x), -1), -1))


def linear_regression_grad(params: Params, x: jax.Array, y: jax.Array) -> Params:
    """By hand: ∂L/∂w = 1/N Xᵀ(ŷ − y) (the course's (ŷ − y)x per example), ∂L/∂b = mean(ŷ − y)."""
    err = (linear_regression(params, x) - y) / x.shape[0]  # (N,) or (N, K)
    return {"w": x.T @ err, "b": jnp.sum(err, axis=0)}


def logistic_regression(params: Params, x: jax.Array) -> jax.Array:
    """a = σ(x w + b) = P(y = 1 | x). Shapes: x (N, d), w (d,) → a (N,)."""
    return sigmoid(linear_regression(params, x))


def logistic_regression_loss(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean binary cross-entropy, L = −1/N Σ [y log a + (1 − y) log(1 − a)], on logits (stable)."""
    _check_xy("logistic_regression_loss", x, y)
    return sigmoid_binary_cross_entropy(linear_regression(params, x), y)


def logistic_regression_grad(params: Params, x: jax.Array, y: jax.Array) -> Params:
    """By hand: ∂L/∂a · da/dz = (a − y)/(a − a²) · a(1 − a) = a − y, so
    ∂L/∂w = 1/N Σ_n (a_n − y_n) x_n and ∂L/∂b = mean(a − y)."""
    err = (logistic_regression(params, x) - y) / x.shape[0]  # (N,)
    return {"w": x.T @ err, "b": jnp.sum(err)}


def softmax_regression(params: Params, x: jax.Array) -> jax.Array:
    """Class probabilities ŷ = softmax(o), o = x W + b. Shapes: x (N, d), W (d, K) → (N, K)."""
    return softmax(linear_regression(params, x))


def _one_hot(y: jax.Array, k: int) -> jax.Array:
    return jax.nn.one_hot(y, k) if jnp.issubdtype(jnp.asarray(y).dtype, jnp.integer) else y


def softmax_regression_loss(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean cross-entropy L = −1/N Σ_n Σ_k y_nk log ŷ_nk. y: integer labels (N,) or one-hot (N, K)."""
    _check_xy("softmax_regression_loss", x, y)
    return softmax_cross_entropy(linear_regression(params, x), y)


def softmax_regression_grad(params: Params, x: jax.Array, y: jax.Array) -> Params:
    """By hand: ∂L/∂o = (softmax(o) − y)/N (one-hot y), then ∂L/∂W = Xᵀ ∂L/∂o (d, K) and
    ∂L/∂b = Σ_n ∂L/∂o_n (K,)."""
    k = params["w"].shape[1]
    d_o = (softmax_regression(params, x) - _one_hot(y, k)) / x.shape[0]  # (N, K)
    return {"w": x.T @ d_o, "b": jnp.sum(d_o, axis=0)}


@partial(jax.jit, static_argnames=("loss_fn", "grad_fn", "steps"))
def gradient_descent(loss_fn: Callable, grad_fn: Callable, params: Params, x: jax.Array, y: jax.Array,
                     lr: float, steps: int) -> tuple[Params, jax.Array]:
    """Full-batch gradient descent with a hand-derived gradient: θ ← θ − η·grad_fn(θ, x, y),
    ``steps`` times under ``lax.scan``; e.g. ``gradient_descent(logistic_regression_loss,
    logistic_regression_grad, params, x, y, 0.5, 200)``.

    Returns: (final params, loss before each step (steps,)).
    """

    def one_step(p, _):
        g = grad_fn(p, x, y)
        return jax.tree.map(lambda a, b: a - lr * b, p, g), loss_fn(p, x, y)

    return jax.lax.scan(one_step, params, None, length=steps)


def init_regression(d_in: int, k: int | None = None, dtype=jnp.float32) -> Params:
    """Zero params: w (d_in,) and b () for one output, or w (d_in, k) and b (k,)."""
    shape = (d_in,) if k is None else (d_in, k)
    return {"w": jnp.zeros(shape, dtype), "b": jnp.zeros(shape[1:], dtype)}
