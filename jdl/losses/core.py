"""Loss functions. Each takes predictions first and targets second, returns the mean over
examples (``reduction='mean'``), their sum (``'sum'``) or one value per example (``'none'``),
and checks at trace time that the two shapes agree."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jdl.nn.activations import log_softmax

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: jax.Array, reduction: str, where: jax.Array | None = None) -> jax.Array:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "none":
        return values
    if where is not None:
        values = values * where
    total = jnp.sum(values)
    if reduction == "sum":
        return total
    count = values.size if where is None else jnp.maximum(jnp.sum(where), 1)
    return total / count


def _same_shape(name: str, pred: jax.Array, target: jax.Array) -> None:
    if jnp.shape(pred) != jnp.shape(target):
        raise ValueError(f"{name}: predictions have shape {jnp.shape(pred)} but targets have "
                         f"shape {jnp.shape(target)}; they must match")


def mse(pred: jax.Array, target: jax.Array, reduction: str = "mean") -> jax.Array:
    """Mean squared error: ℓ = mean_i (ŷ_i − y_i)²; ∂ℓ/∂ŷ_i = 2(ŷ_i − y_i)/n.

    Shapes: pred and target of one shape (...); 'none' returns the per-element squares.
    """
    _same_shape("mse", pred, target)
    return _reduce(jnp.square(pred - target), reduction)


def binary_cross_entropy(prob: jax.Array, target: jax.Array, reduction: str = "mean",
                         eps: float = 1e-7) -> jax.Array:
    """Binary cross-entropy on probabilities: ℓ = −[y log ŷ + (1 − y) log(1 − ŷ)].

    ŷ is clipped to [eps, 1 − eps] so log(0) never happens; prefer
    ``sigmoid_binary_cross_entropy`` on logits, which is exact and stable.
    Shapes: prob and target of one shape (...), target in [0, 1].
    """
    _same_shape("binary_cross_entropy", prob, target)
    p = jnp.clip(prob, eps, 1 - eps)
    return _reduce(-(target * jnp.log(p) + (1 - target) * jnp.log1p(-p)), reduction)


def sigmoid_binary_cross_entropy(logits: jax.Array, target: jax.Array,
                                 reduction: str = "mean") -> jax.Array:
    """Binary cross-entropy on logits z, with ŷ = σ(z):

        ℓ = −[y log σ(z) + (1 − y) log(1 − σ(z))] = max(z, 0) − z·y + log(1 + e^{−|z|}),

    the right-hand form is exact and never overflows (stable for |z| of 1e4). Its gradient is
    ∂ℓ/∂z = σ(z) − y (the course's "ŷ − y").
    Shapes: logits and target of one shape (...).
    """
    _same_shape("sigmoid_binary_cross_entropy", logits, target)
    z = logits
    return _reduce(jnp.maximum(z, 0) - z * target + jnp.log1p(jnp.exp(-jnp.abs(z))), reduction)


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array, reduction: str = "mean",
                          label_smoothing: float = 0.0, where: jax.Array | None = None) -> jax.Array:
    """Cross-entropy of softmax(z) against labels: ℓ = −Σ_k y_k log softmax(z)_k
    = log Σ_j e^{z_j} − Σ_k y_k z_k (computed with log-sum-exp: stable for any logits).
    Its gradient is ∂ℓ/∂z = softmax(z) − y.

    With label smoothing ε the target is y' = (1 − ε)·y + ε/K.

    Shapes: logits (..., K); labels either integer class indices (...) or one-hot /
    probabilities (..., K). ``where`` (...) masks examples out of the mean (padding).
    """
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"softmax_cross_entropy: label_smoothing must be in [0, 1), got {label_smoothing}")
    k = logits.shape[-1]
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"softmax_cross_entropy: integer labels must have shape {logits.shape[:-1]} "
                f"(logits {logits.shape} without the class axis K={k}), got {labels.shape}")
        labels = jax.nn.one_hot(labels, k, dtype=logits.dtype)
    elif labels.shape != logits.shape:
        raise ValueError(
            f"softmax_cross_entropy: one-hot labels must have the logits' shape {logits.shape}, "
            f"got {labels.shape} (integer class labels of shape {logits.shape[:-1]} also work)")
    if label_smoothing:
        labels = (1 - label_smoothing) * labels + label_smoothing / k
    per_example = -jnp.sum(labels * log_softmax(logits), axis=-1)
    return _reduce(per_example, reduction, where)


def distillation(student_logits: jax.Array, teacher_logits: jax.Array, labels: jax.Array,
                 temperature: float = 4.0, alpha: float = 0.9, reduction: str = "mean") -> jax.Array:
    """Knowledge distillation (Hinton, Vinyals & Dean 2015): the student s learns the teacher t's
    temperature-softened distribution and the true labels y,

        p_T = softmax(t/T),  q_T = softmax(s/T)
        ℓ = α·T²·KL(p_T ‖ q_T) + (1 − α)·CE(s, y),   KL(p ‖ q) = Σ_k p_k (log p_k − log q_k).

    ∂KL/∂s_k = (q_T,k − p_T,k)/T, which for T large is ≈ (s_k − t_k)/(K·T²) (zero-mean logits),
    so the soft term's gradient shrinks as 1/T²: the factor T² keeps its size roughly constant
    in T and the balance α between the two terms means the same at any temperature. The
    teacher's logits get no gradient (``stop_gradient``).

    Shapes: student_logits, teacher_logits (..., K); labels integer (...) or one-hot (..., K).
    Args: temperature T > 0; alpha α in [0, 1] (1: the soft targets alone); reduction as the
      other losses.
    """
    if jnp.shape(student_logits) != jnp.shape(teacher_logits):
        raise ValueError(f"distillation: student logits have shape {jnp.shape(student_logits)} but the "
                         f"teacher's have {jnp.shape(teacher_logits)}; they must match")
    if not temperature > 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"distillation: need temperature > 0 and alpha in [0, 1], got "
                         f"temperature={temperature}, alpha={alpha}")
    log_p = log_softmax(jax.lax.stop_gradient(teacher_logits) / temperature)
    log_q = log_softmax(student_logits / temperature)
    kl = jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)  # (...)
    hard = softmax_cross_entropy(student_logits, labels, reduction="none")
    return _reduce(alpha * temperature ** 2 * kl + (1 - alpha) * hard, reduction)


def dpo_loss(policy_chosen: jax.Array, policy_rejected: jax.Array, ref_chosen: jax.Array,
             ref_rejected: jax.Array, beta: float = 0.1, reduction: str = "mean") -> jax.Array:
    """Direct preference optimization (Rafailov et al., 2023), from sequence log-probabilities:

        h = β·[(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]
        ℓ = −log σ(h) = log(1 + e^{−h})      (softplus(−h): stable for any h)

    y_w the preferred response, y_l the other. The implicit reward of a response is
    r(x, y) = β log(π(y|x)/π_ref(y|x)); ℓ is the Bradley–Terry loss of r(y_w) − r(y_l). Its
    gradient ∂ℓ/∂h = −σ(−h) carries the factor β, so at β = 0 nothing moves.

    Shapes: the four log-probabilities (B,) → a scalar ('none': (B,)).
    """
    for name, value in (("policy_rejected", policy_rejected), ("ref_chosen", ref_chosen),
                        ("ref_rejected", ref_rejected)):
        if jnp.shape(value) != jnp.shape(policy_chosen):
            raise ValueError(f"dpo_loss: {name} has shape {jnp.shape(value)} but policy_chosen has "
                             f"{jnp.shape(policy_chosen)}; all four must match")
    if isinstance(beta, (int, float)) and not beta >= 0:
        raise ValueError(f"dpo_loss: beta must be >= 0, got {beta!r}")
    h = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return _reduce(jax.nn.softplus(-h), reduction)


def generalized_cross_entropy(logits: jax.Array, labels: jax.Array, q: float = 0.7,
                              reduction: str = "mean") -> jax.Array:
    """Generalized cross-entropy (Zhang & Sabuncu 2018), a loss robust to noisy labels:

        p = softmax(z),   ℓ_q = (1 − p_y^q) / q,   q ∈ [0, 1],

    computed as −expm1(q·log p_y)/q (log-softmax, stable). Its limits are the two losses it
    interpolates: q → 0 gives −log p_y, the cross-entropy (``q=0`` is exactly that), and q = 1
    gives 1 − p_y, the mean absolute error between p and the one-hot y divided by 2, which is
    robust to symmetric label noise but slow to fit. The gradient ∂ℓ_q/∂z = p_y^q·∂(−log p_y)/∂z
    is the cross-entropy's weighted by p_y^q: examples the model finds unlikely (often the
    mislabelled ones) pull less.

    Shapes: logits (..., K); labels integer class indices (...).
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"generalized_cross_entropy: q must be in [0, 1], got {q}")
    if not jnp.issubdtype(labels.dtype, jnp.integer) or labels.shape != logits.shape[:-1]:
        raise ValueError(f"generalized_cross_entropy: labels must be integer class indices of shape "
                         f"{logits.shape[:-1]}, got {labels.dtype} {labels.shape}")
    log_p = jnp.take_along_axis(log_softmax(logits), labels[..., None], axis=-1)[..., 0]  # (...)
    per_example = -log_p if q == 0 else -jnp.expm1(q * log_p) / q
    return _reduce(per_example, reduction)


def auxiliary_loss(loss: Callable[..., jax.Array], weights: Sequence[float] = (0.3, 0.3)) -> Callable[..., jax.Array]:
    """The loss of a network with auxiliary heads (``jdl.nn.with_auxiliary_heads``), GoogLeNet's
    "auxiliary losses" with its weight 0.3 for each head:

        ℓ((z, a_1, …, a_k), y) = loss(z, y) + Σ_j w_j·loss(a_j, y)    (training: a tuple)
        ℓ(z, y)                = loss(z, y)                           (evaluation: the main output)

    Shapes: z and each a_j as ``loss`` takes them with y. Args: loss: e.g.
    ``softmax_cross_entropy``; weights: w_1 … w_k, one per head.
    """
    weights = tuple(weights)
    if any(not w >= 0 for w in weights):
        raise ValueError(f"auxiliary_loss: weights must be >= 0, got {weights}")

    def total(outputs: Any, targets: jax.Array, reduction: str = "mean") -> jax.Array:
        if type(outputs) is not tuple:
            return loss(outputs, targets, reduction=reduction)
        main, *aux = outputs
        if len(aux) != len(weights):
            raise ValueError(f"auxiliary_loss: the model returned {len(aux)} auxiliary outputs for "
                             f"{len(weights)} weights {weights}")
        value = loss(main, targets, reduction=reduction)
        for w, a in zip(weights, aux):
            value = value + w * loss(a, targets, reduction=reduction)
        return value

    return total
