"""Ready-made optimizers with optax's names, arguments and defaults.

Each is a ``chain`` of the transforms in this package; every ``learning_rate`` is a float η or a
schedule t ↦ η_t (t counts the updates made so far, see ``jdl.optim.schedules``).
"""

from __future__ import annotations

from typing import Any

from jdl.optim.adagrad import scale_by_rss
from jdl.optim.adam import scale_by_adam
from jdl.optim.base import (
    GradientTransformation, ScalarOrSchedule, chain, check_learning_rate, identity, scale, scale_by_learning_rate,
)
from jdl.optim.masking import Mask
from jdl.optim.momentum import scale_by_ema, trace
from jdl.optim.rmsprop import scale_by_rms, scale_by_stddev
from jdl.optim.rprop import scale_by_rprop
from jdl.optim.weight_decay import add_decayed_weights


def sgd(learning_rate: ScalarOrSchedule, momentum: float | None = None,
        nesterov: bool = False, accumulator_dtype: Any = None) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum:

        θ_{t+1} = θ_t − η_t·g_t                          (momentum=None)
        τ ← g + μ·τ;   θ ← θ − η·τ                       (momentum=μ, optax's trace form)
        τ ← g + μ·τ;   θ ← θ − η·(g + μ·τ)               (nesterov=True)

    Args: learning_rate: η or a schedule; momentum: μ in [0, 1) or None; nesterov: bool;
      accumulator_dtype: the dtype τ is stored in (None: the params').
    """
    check_learning_rate("sgd", learning_rate)
    if nesterov and momentum is None:
        raise ValueError("sgd: nesterov=True needs a momentum, e.g. sgd(0.1, momentum=0.9, nesterov=True)")
    return chain(trace(momentum, nesterov, accumulator_dtype) if momentum is not None else identity(),
                 scale_by_learning_rate(learning_rate))


def momentum_ema(learning_rate: ScalarOrSchedule, beta: float = 0.9) -> GradientTransformation:
    """Momentum as a moving average (the course's cheat sheet): v ← β·v + (1−β)·g; θ ← θ − η·v.

    Equal to ``sgd(η·(1−β), momentum=β)``. Args: learning_rate: η or a schedule; beta: β in [0, 1).
    """
    check_learning_rate("momentum_ema", learning_rate)
    return chain(scale_by_ema(beta), scale_by_learning_rate(learning_rate))


def adagrad(learning_rate: ScalarOrSchedule, initial_accumulator_value: float = 0.1,
            eps: float = 1e-7) -> GradientTransformation:
    """Adagrad: v ← v + g²; θ ← θ − η·g/√(v + ε) (see ``jdl.optim.adagrad``). v starts at
    ``initial_accumulator_value``: optax's 0.1 by default, the course's v₀ = 0 with 0.0."""
    check_learning_rate("adagrad", learning_rate)
    return chain(scale_by_rss(initial_accumulator_value, eps), scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            initial_scale: float = 0.0, eps_in_sqrt: bool = True, centered: bool = False,
            momentum: float | None = None, nesterov: bool = False,
            bias_correction: bool = False) -> GradientTransformation:
    """RMSProp: v ← β·v + (1−β)·g²; θ ← θ − η·g/√(v + ε); ``centered`` divides by √(v − m² + ε);
    ``momentum`` adds a trace after the learning rate, as optax does; ``bias_correction`` divides
    the moments by 1 − β^t (see ``jdl.optim.rmsprop``)."""
    check_learning_rate("rmsprop", learning_rate)
    scaler = scale_by_stddev if centered else scale_by_rms
    return chain(scaler(decay, eps, initial_scale, eps_in_sqrt, bias_correction), scale_by_learning_rate(learning_rate),
                 trace(momentum, nesterov) if momentum is not None else identity())


def adam(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         eps_in_sqrt: bool = False, mu_dtype: Any = None, bias_correction: bool = True) -> GradientTransformation:
    """Adam: θ ← θ − η·m̂/(√v̂ + ε) with bias-corrected moments (see ``jdl.optim.adam``);
    ``mu_dtype`` stores m in another dtype (``jnp.bfloat16``: half the memory of m);
    ``bias_correction=False`` steps with m/(√v + ε), as one of the course's slides writes it."""
    check_learning_rate("adam", learning_rate)
    return chain(scale_by_adam(b1, b2, eps, eps_in_sqrt, mu_dtype, bias_correction),
                 scale_by_learning_rate(learning_rate))


def adamw(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4, mask: Mask | None = None, mu_dtype: Any = None) -> GradientTransformation:
    """AdamW, decoupled weight decay (Loshchilov & Hutter 2019):
    θ ← θ − η·(m̂/(√v̂ + ε) + λ·θ); the decay never enters the moments. ``update`` needs params;
    ``mu_dtype`` as in ``adam``. This is optax's and PyTorch's form, the decay multiplied by the
    learning rate η; the paper's Algorithm 2 multiplies it by the schedule η_t only
    (``adamw_paper``): λ_paper = α·λ here."""
    check_learning_rate("adamw", learning_rate)
    return chain(scale_by_adam(b1, b2, eps, mu_dtype=mu_dtype), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(learning_rate))


def adamw_paper(learning_rate: float, weight_decay: float, b1: float = 0.9, b2: float = 0.999,
                eps: float = 1e-8, schedule_multiplier: ScalarOrSchedule = 1.0,
                mask: Mask | None = None) -> GradientTransformation:
    """AdamW as Loshchilov & Hutter's Algorithm 2 writes it (the course's slide):

        θ_t = θ_{t−1} − η_t·(α·m̂_t/(√v̂_t + ε) + λ·θ_{t−1})

    with α = ``learning_rate`` (the paper's 0.001), λ = ``weight_decay`` and the schedule
    multiplier η_t = ``schedule_multiplier`` (a float or a schedule t ↦ η_t): the decay is
    multiplied by η_t but not by α. ``adamw`` (optax, PyTorch) multiplies it by the learning rate,
    θ ← θ − lr_t·(m̂/(√v̂ + ε) + λ'·θ), so the two are equal when

        lr_t = α·η_t   and   λ' = λ/α      (``adamw(α·η_t, weight_decay=λ/α)``).

    PyTorch's ``AdamW(lr, weight_decay=λ')`` is the ``adamw`` form. ``update`` needs params.
    Shapes: every state leaf has its param's shape.
    """
    if callable(learning_rate):
        raise ValueError("adamw_paper: learning_rate is the constant α of Algorithm 2; pass the schedule as "
                         "schedule_multiplier=η_t, e.g. adamw_paper(1e-3, 1e-4, schedule_multiplier=schedule)")
    check_learning_rate("adamw_paper", learning_rate)
    check_learning_rate("adamw_paper", schedule_multiplier)
    return chain(scale_by_adam(b1, b2, eps), scale(learning_rate), add_decayed_weights(weight_decay, mask),
                 scale_by_learning_rate(schedule_multiplier))


def adam_l2(learning_rate: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
            weight_decay: float = 1e-4, mask: Mask | None = None) -> GradientTransformation:
    """Adam on the L2-penalized loss ℓ + λ/2·‖θ‖²: g ← g + λ·θ enters the moments, so the decay
    is divided by √v̂ like the gradient (weaker on coordinates with large gradients, unlike AdamW).
    ``update`` needs params."""
    check_learning_rate("adam_l2", learning_rate)
    return chain(add_decayed_weights(weight_decay, mask), scale_by_adam(b1, b2, eps),
                 scale_by_learning_rate(learning_rate))


def rprop(learning_rate: float, eta_minus: float = 0.5, eta_plus: float = 1.2, min_step_size: float = 1e-6,
          max_step_size: float = 50.0) -> GradientTransformation:
    """Rprop (iRprop⁻): θ ← θ − Δ·sign(g), each Δ grown by η⁺ while g keeps its sign and shrunk
    by η⁻ when it flips, Δ₀ = ``learning_rate`` (see ``jdl.optim.rprop``); optax's ``rprop``."""
    return scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)
