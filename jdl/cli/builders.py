"""What ``jdl train`` builds from its config, from plain arguments: the model, the learning-rate
schedule, the optimizer (with weight decay), the penalty and augmentation."""

from __future__ import annotations

from typing import Sequence

from absl import app

from jdl.cli.flags import CNN_MODELS, DEFAULT_LEARNING_RATES, LM_MODELS, MODELS, OPTIMIZERS, SCHEDULES


def build_model(name: str, n_classes: int, hidden: Sequence[int], activation: str,
                norm: str = "none", dropout: float = 0.0, input_shape: Sequence[int] | None = None,
                embed: int = 64, heads: int = 4, lstm_impl: str = "fused", attention: str = "plain"):
    """The model named by ``--model``, ending in ``n_classes`` logits; ``input_shape`` is one
    example's shape (no batch axis), which the convolutional models adapt to. For a language
    model ``n_classes`` is the vocabulary size, ``embed`` the embedding size of the recurrent
    ones, ``lstm_impl`` the LSTM's recurrence ('fused' or 'native'), ``heads`` the GPT's
    attention heads and ``attention`` its ``attend`` impl."""
    from jdl import models, nn

    if name == "mlp":
        return models.mlp([*hidden, n_classes], activation=getattr(nn, activation), norm=norm, dropout=dropout)
    if name in CNN_MODELS:
        return build_cnn_model(name, n_classes, input_shape, norm, dropout)
    if name == "gpt":
        return build_gpt_model(n_classes, hidden, heads, norm, dropout, input_shape, attention)
    if name in LM_MODELS:
        return build_lm_model(name, n_classes, hidden, embed, norm, dropout, input_shape, lstm_impl)
    raise app.UsageError(f"--model={name!r}: valid choices are {', '.join(MODELS)}")


def build_cnn_model(name: str, n_classes: int, input_shape: Sequence[int] | None, norm: str = "none",
                    dropout: float = 0.0):
    """A convolutional model of ``CNN_MODELS`` for inputs of ``input_shape``: ``--norm`` goes
    between the blocks of cnn and after the convolutions of vgg; ResNets always use BatchNorm."""
    from jdl import models, nn

    shape = tuple(input_shape or ())
    if dropout:
        raise app.UsageError(f"--dropout applies to --model=mlp only, not --model={name}")
    if name == "cnn1d":
        if len(shape) not in (1, 2):
            raise app.UsageError(f"--model=cnn1d needs sequences (L,) or (L, C); the data set's examples are {shape}")
        return models.cnn1d(n_classes)
    if len(shape) != 3:
        raise app.UsageError(f"--model={name} needs images (H, W, C); the data set's examples are {shape} "
                             "(use --model=cnn1d or mlp)")
    norm_layer = {"none": None, "batch": nn.BatchNorm, "layer": nn.LayerNorm}[norm]
    if name == "lenet5":
        return models.lenet5(n_classes, shape)
    if name == "cnn":
        return models.cnn(n_classes, shape, (32, 64), norm=norm_layer, hidden=(128,))
    if name == "vgg":
        return models.vgg("vgg_small", n_classes, norm=norm_layer)
    if name == "googlenet":
        return models.googlenet_small(n_classes)
    return models.cifar_resnet(int(name[-2:]), n_classes, shortcut=name.startswith("resnet"))


def check_lm_input(name: str, hidden: Sequence[int], norm: str, input_shape: Sequence[int] | None) -> None:
    """Refuse what no language model of ``LM_MODELS`` takes: examples that are not windows of
    ids (T,), ``--norm``, and ``--hidden`` sizes that differ (one size repeated per layer)."""
    shape = tuple(input_shape or ())
    if len(shape) != 1:
        raise app.UsageError(f"--model={name} reads windows of character ids (T,); the data set's examples are "
                             f"{shape} (use a text data set, e.g. --dataset=pydoc_text)")
    if norm != "none":
        raise app.UsageError(f"--norm applies to --model=mlp and the CNNs, not --model={name}")
    if len(set(hidden)) != 1:
        sizes = ",".join(map(str, hidden))
        raise app.UsageError(f"--model={name}: --hidden={sizes} must repeat one size, one per layer "
                             f"(e.g. --hidden={hidden[0]},{hidden[0]})")


def build_gpt_model(vocab_size: int, hidden: Sequence[int], heads: int, norm: str = "none", dropout: float = 0.0,
                    input_shape: Sequence[int] | None = None, attention: str = "plain"):
    """``jdl.models.gpt.gpt``: one Pre-LN block per ``--hidden`` size (all equal: d_model),
    ``--heads`` heads, the context T of the windows (``--seq_len``), ``--dropout``, tied head,
    ``--attention``'s implementation."""
    from jdl.models.gpt import GPTConfig, gpt

    check_lm_input("gpt", hidden, norm, input_shape)
    if hidden[0] % heads:
        raise app.UsageError(f"--model=gpt: d_model --hidden={hidden[0]} is not divisible by --heads={heads}")
    return gpt(GPTConfig(vocab_size=vocab_size, context=input_shape[0], num_layers=len(hidden),
                         d_model=hidden[0], num_heads=heads, dropout=dropout, attention=attention))


def build_lm_model(name: str, vocab_size: int, hidden: Sequence[int], embed: int, norm: str = "none",
                   dropout: float = 0.0, input_shape: Sequence[int] | None = None, lstm_impl: str = "fused"):
    """A character language model of ``LM_MODELS`` (``jdl.models.lstm_lm`` with kind lstm, gru
    or rnn): one recurrent layer per ``--hidden`` size (all equal), ``--dropout`` between them;
    ``--lstm_impl`` for lstm_lm."""
    from jdl import models

    check_lm_input(name, hidden, norm, input_shape)
    return models.lstm_lm(vocab_size, embed=embed, hidden=hidden[0], num_layers=len(hidden), dropout=dropout,
                          kind=name[:-len("_lm")], **({"lstm_impl": lstm_impl} if name == "lstm_lm" else {}))


def build_schedule(name: str, learning_rate: float, total_steps: int, decay_rate: float = 0.5,
                   decay_steps: int | None = None, warmup_steps: int | None = None):
    """The learning rate named by ``--schedule``: a float for ``constant``, else a schedule t ↦ η_t
    over ``total_steps`` updates (``decay_steps`` and ``warmup_steps`` default to total/epochs)."""
    from jdl.optim import schedules as s

    period = max(1, decay_steps or total_steps)
    if name == "constant":
        return learning_rate
    if name == "exponential":
        return s.exponential_decay(learning_rate, period, decay_rate)
    if name == "step":
        return s.step_decay(learning_rate, period, decay_rate)
    if name == "inverse_time":
        return s.inverse_time_decay(learning_rate, decay_rate, period)
    if name == "cosine":
        return s.cosine_decay_schedule(learning_rate, max(1, total_steps))
    if name == "warmup_cosine":
        warmup = min(warmup_steps if warmup_steps is not None else period, max(0, total_steps - 1))
        return s.warmup_cosine_decay_schedule(0.0, learning_rate, warmup, max(warmup + 1, total_steps))
    raise app.UsageError(f"--schedule={name!r}: valid choices are {', '.join(SCHEDULES)}")


def build_optimizer(name: str, learning_rate=None, momentum: float | None = None, nesterov: bool = False,
                    fused: bool = False):
    """The optimizer named by ``--optimizer``; ``learning_rate`` is a float, a schedule, or None for
    the optimizer's default (``DEFAULT_LEARNING_RATES``); ``fused`` (adam, adamw, sgd with
    momentum) its ``jdl.optim.fused_*`` form."""
    from jdl import optim

    if name not in OPTIMIZERS:
        raise app.UsageError(f"--optimizer={name!r}: valid choices are {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LEARNING_RATES[name] if learning_rate is None else learning_rate
    if (momentum is not None or nesterov) and name not in ("sgd", "rmsprop", "momentum_ema"):
        raise app.UsageError(f"--momentum/--nesterov apply to sgd, rmsprop and momentum_ema, not --optimizer={name}")
    if nesterov and momentum is None:
        raise app.UsageError("--nesterov needs --momentum, e.g. --momentum=0.9 --nesterov")
    try:
        if fused:
            return build_fused_optimizer(name, lr, momentum, nesterov)
        if name == "sgd":
            return optim.sgd(lr, momentum, nesterov)
        if name == "rmsprop":
            return optim.rmsprop(lr, momentum=momentum, nesterov=nesterov)
        if name == "momentum_ema":
            return optim.momentum_ema(lr, 0.9 if momentum is None else momentum)
        return getattr(optim, name)(lr)
    except ValueError as e:
        raise app.UsageError(f"--optimizer={name}: {e}")


def build_fused_optimizer(name: str, learning_rate, momentum: float | None, nesterov: bool):
    """``fused_adam``, ``fused_adamw`` (adamw's default decay) or ``fused_sgd`` for ``--fused_optimizer``."""
    from jdl import optim

    if name == "adam":
        return optim.fused_adam(learning_rate)
    if name == "adamw":
        return optim.fused_adamw(learning_rate)
    if name == "sgd" and momentum is not None:
        return optim.fused_sgd(learning_rate, momentum, nesterov)
    raise app.UsageError(f"--fused_optimizer takes --optimizer=adam, adamw, or sgd with --momentum, not --optimizer={name}")


def regularization_options(x_shape: Sequence[int], batch_size: int, l1: float = 0.0, l2: float = 0.0,
                           augment: bool = False) -> dict:
    """``fit``'s ``penalty`` (λ₁·‖w‖₁ + λ₂/2·‖w‖² on the weights) and ``augment`` (for batches of
    ``batch_size`` examples of ``x_shape[1:]``), each only when asked for."""
    from jdl import regularizers
    from jdl.data import augment as augment_lib

    options: dict = {}
    if l1 or l2:
        options["penalty"] = regularizers.penalty(l1_coef=l1, l2_coef=l2)
    if augment:
        options["augment"] = augment_lib.default((batch_size, *x_shape[1:]))
    return options


def with_weight_decay(optimizer, weight_decay: float):
    """``chain(add_decayed_weights(λ, mask=weights_only), optimizer)``: the optimizer sees
    g + λ·w for the weights ``w`` (not biases or norm parameters). With ``sgd`` that is
    w ← (1 − ηλ)·w − η·g, the same as ``--l2=λ``; with ``adam`` it is Adam + L2, not AdamW."""
    from jdl import optim

    if not weight_decay:
        return optimizer
    return optim.chain(optim.add_decayed_weights(weight_decay, mask=optim.weights_only), optimizer)
