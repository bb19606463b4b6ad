"""Optimizers in the optax style, written from scratch (optax is the reference in the tests)."""

from jdl.optim.adagrad import AdagradState, scale_by_rss
from jdl.optim.adam import AdamState, scale_by_adam
from jdl.optim.aliases import adagrad, adam, adam_l2, adamw, adamw_paper, momentum_ema, rmsprop, rprop, sgd
from jdl.optim.base import (
    EmptyState, GradientTransformation, ScaleByScheduleState, apply_updates, chain, identity,
    scale, scale_by_learning_rate, scale_by_schedule, with_extra_args_support,
)
from jdl.optim.flat import FlatState, flatten
from jdl.optim.fused import FusedAdamState, FusedTraceState, FusedTransformation, fused_adam, fused_adamw, fused_sgd
from jdl.optim.inject import InjectHyperparamsState, inject_hyperparams, set_hyperparams
from jdl.optim import schedules
from jdl.optim.clipping import clip, clip_by_global_norm, global_norm
from jdl.optim.masking import weights_only
from jdl.optim.momentum import EmaState, TraceState, VelocityState, scale_by_ema, scale_by_velocity, trace
from jdl.optim.penalties import add_l1_penalty, add_l2_penalty
from jdl.optim.rmsprop import (
    CenteredRMSPropState, CenteredRMSPropWithCountState, RMSPropState, RMSPropWithCountState, scale_by_rms,
    scale_by_stddev,
)
from jdl.optim.weight_decay import add_decayed_weights
from jdl.optim.centralization import centralize, centralized
from jdl.optim.rprop import RpropState, scale_by_rprop
from jdl.optim.schedules import (
    constant_schedule, cosine_decay_schedule, exponential_decay, exponential_rate, inverse_time_decay,
    join_schedules, linear_schedule, piecewise_constant_schedule, polynomial_schedule, step_decay, warmup,
    warmup_cosine_decay_schedule, cosine_warm_restarts, sgdr_schedule,
)
from jdl.optim.partition import MaskedState, MultiTransformState, masked, multi_transform, set_to_zero
from jdl.optim.freeze import differential_lr, freeze, frozen, label_by_pattern, trainable_mask
