"""Preference tuning with DPO (Rafailov et al., 2023): the alignment step that needs no reward
model and no reinforcement learning (the course's alignment lecture).

Given prompts x with a preferred response y_w and a dispreferred one y_l, and a frozen reference
policy π_ref (the SFT model), DPO trains π on

    ℓ(θ) = −E log σ(β[(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))])

(``jdl.losses.dpo_loss``), the closed-form solution of max_π E[r] − β KL(π ‖ π_ref) rewritten
as a classifier on pairs. Log-probabilities are summed over response tokens
(``jdl.train.sft.sequence_log_probs``). The reference's are computed once, before training
(``log_probs``), since π_ref never changes. How far π has moved is reported as the Monte-Carlo
estimate KL(π ‖ π_ref) ≈ (1/S) Σ_s [log π(y_s|x_s) − log π_ref(y_s|x_s)], y_s ~ π(·|x_s).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import Module
from jdl.data.text import Vocab
from jdl.losses import dpo_loss
from jdl.train.sft import encode_pairs, next_token_batch, sequence_log_probs


def pair_batch(vocab: Vocab, triples: Sequence[tuple[str, str, str]], length: int) -> tuple[np.ndarray, ...]:
    """(prompt, chosen, rejected) triples → (x_w, y_w, m_w, x_l, y_l, m_l), each (N, length − 1)
    (``encode_pairs`` then ``next_token_batch`` of prompt ‖ chosen and of prompt ‖ rejected)."""
    chosen = next_token_batch(*encode_pairs(vocab, [(p, w) for p, w, _ in triples], length))
    rejected = next_token_batch(*encode_pairs(vocab, [(p, l) for p, _, l in triples], length))
    return (*chosen, *rejected)


@functools.partial(jax.jit, static_argnums=0)
def _score(model: Module, params: Any, state: Any, x, y, m) -> jax.Array:
    return sequence_log_probs(model.apply(params, state, x)[0], y, m)  # (B,)


def log_probs(model: Module, params: Any, state: Any, x: np.ndarray, y: np.ndarray, m: np.ndarray,
              batch_size: int = 256) -> np.ndarray:
    """log π(y|x) = Σ_t m_t log softmax(z_t)[y_t] of every row, in batches of ``batch_size``
    rows (the last one padded, so one compiled program serves every batch of a model).

    Shapes: x, y (N, T) ids, m (N, T) → (N,) float32.
    """
    out = []
    for i in range(0, len(x), batch_size):
        rows = [a[i:i + batch_size] for a in (x, y, m)]
        pad = batch_size - len(rows[0]) if len(x) > batch_size else 0
        rows = [np.concatenate([a, np.repeat(a[-1:], pad, 0)]) for a in rows]
        out.append(np.asarray(_score(model, params, state, *rows))[:len(rows[0]) - pad])
    return np.concatenate(out)


def dpo_objective(model: Module, beta: float, nll_weight: float = 0.0):
    """The DPO loss as a ``jdl.train.make_step`` loss function on batches
    (x_w, y_w, m_w, x_l, y_l, m_l, ref_w, ref_l) with the reference's log-probs precomputed;
    with ``nll_weight`` λ > 0, "DPO + NLL" (Pang et al., 2024, iterative RPO): an SFT term on the
    preferred responses beside it,

        ℓ = ℓ_DPO + λ·(1/B) Σ_b −log π(y_w,b | x_b) / |y_w,b|,   |y_w,b| = Σ_t m_w,b,t

    (the per-token negative log-likelihood of each y_w, averaged over the pairs), which keeps
    log π(y_w) from falling with log π(y_l) (DPO alone only asks their log-ratios to part).

    Metrics: ``reward_accuracy`` (the fraction of pairs with r(y_w) > r(y_l), r = β log π/π_ref),
    ``margin`` (mean r(y_w) − r(y_l)), ``chosen`` and ``rejected`` (their mean rewards), ``nll``
    (the NLL term before λ).
    Shapes: x_*, y_*, m_* (B, T); ref_* (B,).
    """
    if not nll_weight >= 0:
        raise ValueError(f"dpo_objective: nll_weight must be >= 0, got {nll_weight!r}")

    def loss_fn(params, state, batch, key):
        x_w, y_w, m_w, x_l, y_l, m_l, ref_w, ref_l = batch
        x, y, m = (jnp.concatenate(pair) for pair in ((x_w, x_l), (y_w, y_l), (m_w, m_l)))  # (2B, T)
        logits, new_state = model.apply(params, state, x, key=key, train=True)  # (2B, T, V)
        logp = sequence_log_probs(logits, y, m)  # (2B,)
        pi_w, pi_l = jnp.split(logp, 2)
        nll = jnp.mean(-pi_w / jnp.maximum(jnp.sum(m_w, axis=-1), 1))
        loss = dpo_loss(pi_w, pi_l, ref_w, ref_l, beta) + (nll_weight * nll if nll_weight else 0.0)
        chosen, rejected = beta * (pi_w - ref_w), beta * (pi_l - ref_l)
        metrics = {"reward_accuracy": jnp.mean(chosen > rejected), "margin": jnp.mean(chosen - rejected),
                   "chosen": jnp.mean(chosen), "rejected": jnp.mean(rejected), "nll": nll}
        return loss, (new_state, metrics)

    return loss_fn


def preference_pairs(prompts: Sequence[str], samples: Sequence[Sequence[str]],
                     correct: Sequence[Sequence[bool]], per_prompt: int = 1,
                     seed: int = 0) -> list[tuple[str, str, str]]:
    """(prompt, chosen, rejected) triples from sampled responses judged right or wrong: for each
    prompt with at least one distinct right and one distinct wrong response, up to ``per_prompt``
    pairs (a right one against a wrong one, drawn with the seeded generator).

    Shapes: N prompts, samples[i] and correct[i] of one length each → a list of triples.
    """
    rng = np.random.default_rng(seed)
    out = []
    for prompt, ys, ok in zip(prompts, samples, correct):
        good = sorted({y for y, c in zip(ys, ok) if c})
        bad = sorted({y for y, c in zip(ys, ok) if not c})
        for _ in range(min(per_prompt, len(good) * len(bad))):
            out.append((prompt, good[rng.integers(len(good))], bad[rng.integers(len(bad))]))
    return out


def monte_carlo_kl(logp_policy: np.ndarray, logp_ref: np.ndarray) -> tuple[float, float]:
    """KL(π ‖ π_ref) ≈ mean_s [log π(y_s|x_s) − log π_ref(y_s|x_s)] over responses y_s ~ π, and
    the standard error of that mean.

    Shapes: (S,), (S,) → (estimate, standard error).
    """
    d = np.asarray(logp_policy, np.float64) - np.asarray(logp_ref, np.float64)  # (S,)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
