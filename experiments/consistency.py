"""Consistency regularization with augmentation for the semi-supervised experiment, FixMatch-style
(Sohn et al. 2020): a weakly augmented unlabelled image gives a pseudo-label, and the model must
predict it on a strongly augmented view of the same image,

    p̃_i = stop_gradient(softmax(f(weak(u_i)))),  ŷ_i = argmax p̃_i,
    ℓ = CE(f(weak(x)), y) + λ · (1/μB) Σ_i 1[max p̃_i ≥ τ] · CE(f(strong(u_i)), ŷ_i),

on batches of B labelled and μB unlabelled examples. It is a ``make_step`` loss function on
batches (x, y, u); the loop around it is a few lines here because each step draws its labelled
and unlabelled batches from two sets of different sizes, which ``fit`` does not do. The
validation accuracy is measured every ``eval_every`` steps and the best step's params kept.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jdl.data import augment

WEAK = augment.random_crop(1)  # shift by up to one pixel
STRONG = augment.compose(augment.random_crop(1), augment.random_affine(15.0), augment.cutout(3))


def fixmatch_loss(model, *, tau: float = 0.9, lam: float = 1.0):
    """The loss function ``make_step`` takes, on batches (x (B, 8, 8, 1), y (B,), u (μB, 8, 8, 1))."""
    from jdl.losses import softmax_cross_entropy
    from jdl.metrics import accuracy

    weak, strong = augment.batched(WEAK), augment.batched(STRONG)

    def loss_fn(params: Any, state: Any, batch: Any, key: jax.Array):
        x, y, u = batch
        k_x, k_w, k_s = jax.random.split(key, 3)
        logits_x, state = model.apply(params, state, weak(k_x, x), train=True)
        logits_w, _ = model.apply(params, state, weak(k_w, u), train=True)
        p = jax.lax.stop_gradient(jax.nn.softmax(logits_w))  # (μB, K)
        mask = (p.max(axis=-1) >= tau).astype(jnp.float32)  # (μB,)
        logits_s, state = model.apply(params, state, strong(k_s, u), train=True)
        unsup = jnp.mean(mask * softmax_cross_entropy(logits_s, jnp.argmax(p, -1), reduction="none"))
        loss = softmax_cross_entropy(logits_x, y) + lam * unsup
        return loss, (state, {"accuracy": accuracy(logits_x, y), "mask_rate": jnp.mean(mask)})

    return loss_fn


def train(labelled: tuple, unlabelled: np.ndarray, validation: tuple, test: tuple, *, seed: int, steps: int,
          batch_size: int = 32, mu: int = 3, learning_rate: float = 3e-3, eval_every: int = 100) -> dict:
    """Train the paradigm classifier with ``fixmatch_loss``; returns the best validation accuracy,
    its step, and the test accuracy of those params (measured once)."""
    import jdl
    from jdl.losses import softmax_cross_entropy
    from jdl.train import evaluate, init_train_state, make_eval_step, make_step

    from experiments.paradigms_common import classifier

    model, optimizer = classifier(), jdl.optim.adam(learning_rate)
    ts = init_train_state(model, optimizer, jax.ShapeDtypeStruct((batch_size, 8, 8, 1), jnp.float32), seed)
    step = make_step(fixmatch_loss(model), optimizer, donate=False)
    eval_step = make_eval_step(model, softmax_cross_entropy)
    rng = np.random.default_rng(seed)
    best, mask_rates = (-1.0, 0, ts), []
    for t in range(1, steps + 1):
        i = rng.integers(0, len(labelled[0]), batch_size)
        j = rng.integers(0, len(unlabelled), mu * batch_size)
        ts, metrics = step(ts, (labelled[0][i], labelled[1][i], unlabelled[j]))
        if t % eval_every == 0 or t == steps:
            val = evaluate(eval_step, ts.params, ts.state, *validation)["accuracy"]
            mask_rates.append(float(metrics["mask_rate"]))
            if val > best[0]:
                best = (val, t, ts)
    test_acc = evaluate(eval_step, best[2].params, best[2].state, *test)["accuracy"]
    return {"validation_accuracy": best[0], "best_step": best[1], "test_accuracy": test_acc,
            "mask_rate": mask_rates}
