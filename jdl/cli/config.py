"""``TrainConfig``: everything ``jdl train`` uses, built from the parsed flags in one place
(``TrainConfig.from_flags``) and passed explicitly from there on."""

from __future__ import annotations

import dataclasses
from typing import Any

from absl import app

from jdl.cli.flags import DEFAULT_LEARNING_RATES


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The settings of one ``jdl train`` run; each field is the flag of the same name (see
    ``jdl train --helpfull``), ``hidden`` parsed into ints. Frozen: a run's config never changes."""

    # model and data
    model: str = "mlp"
    dataset: str = "digits"
    hidden: tuple[int, ...] = (128,)
    activation: str = "relu"
    embed: int = 64
    heads: int = 4
    lstm_impl: str = "fused"
    attention: str = "plain"
    seq_len: int = 64
    data_dir: str | None = None
    validation_fraction: float = 0.1
    train_size: int | None = None
    # loop
    batch_size: int = 32
    epochs: int = 20
    seed: int = 0
    accumulate_steps: int = 1
    test_every_epoch: bool = False
    workdir: str | None = None
    progress: bool = True
    # optimizer
    optimizer: str = "adam"
    learning_rate: float | None = None
    momentum: float | None = None
    nesterov: bool = False
    fused_optimizer: bool = False
    schedule: str = "constant"
    decay_rate: float = 0.5
    decay_steps: int | None = None
    warmup_steps: int | None = None
    # regularization
    dropout: float = 0.0
    weight_decay: float = 0.0
    l1: float = 0.0
    l2: float = 0.0
    norm: str = "none"
    augment: bool = False
    label_smoothing: float = 0.0
    early_stopping_patience: int | None = None
    # checkpoints, precision, non-finite values, compilation cache
    checkpoint_every: int = 100
    keep: int = 3
    restore: str | None = None
    compute_dtype: str = "float32"
    on_nonfinite: str = "stop"
    compilation_cache: str | None = None
    keep_host_memory: str = "auto"
    # devices and processes
    devices: int | None = None
    fsdp: bool = False
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

    def __post_init__(self):
        check(self)

    @classmethod
    def from_flags(cls, flag_values: Any) -> "TrainConfig":
        """The config of the parsed ``flag_values`` (absl ``FlagValues``, e.g. ``jdl.cli.FLAGS``);
        raises ``app.UsageError`` for values that do not go together."""
        values = {f.name: flag_values[f.name].value for f in dataclasses.fields(cls)}
        values["hidden"] = parse_hidden(values["hidden"])
        return cls(**values)

    @property
    def resolved_learning_rate(self) -> float:
        """``learning_rate``, or the optimizer's default (``DEFAULT_LEARNING_RATES``)."""
        return DEFAULT_LEARNING_RATES.get(self.optimizer, 0.0) if self.learning_rate is None else self.learning_rate

    def record(self) -> dict:
        """The config as written to summary.json and the checkpoints (JSON-able, the learning
        rate resolved)."""
        return {**dataclasses.asdict(self), "hidden": list(self.hidden), "learning_rate": self.resolved_learning_rate}


def refuse_unread(config: TrainConfig, names: tuple[str, ...], reads: str) -> None:
    """Raise ``app.UsageError`` naming each flag of ``names`` set away from its default: a path of
    ``jdl train`` that does not read a flag refuses it rather than ignore it silently; ``reads``
    says what the path does read."""
    default = TrainConfig()
    given = [f"--{name}={getattr(config, name)}" for name in names if getattr(config, name) != getattr(default, name)]
    if given:
        raise app.UsageError(f"--model={config.model} does not take {', '.join(given)}; {reads}")


def parse_hidden(hidden: Any) -> tuple[int, ...]:
    """``--hidden=128,64`` (a list of strings) as positive ints."""
    text = ",".join(str(h) for h in hidden)
    try:
        sizes = tuple(int(h) for h in hidden)
    except ValueError:
        raise app.UsageError(f"--hidden={text!r}: expected comma-separated positive ints") from None
    if any(h < 1 for h in sizes):
        raise app.UsageError(f"--hidden={text!r}: sizes must be positive")
    return sizes


def check(config: TrainConfig) -> None:
    """Refuse combinations of flags that cannot run, with the flags to change."""
    if not 0.0 <= config.validation_fraction < 1.0:
        raise app.UsageError(f"--validation_fraction={config.validation_fraction}: must be in [0, 1)")
    if config.early_stopping_patience is not None and config.validation_fraction == 0:
        raise app.UsageError("--early_stopping_patience uses the validation loss, but --validation_fraction=0 "
                             "holds out no validation split; use e.g. --validation_fraction=0.1")
    process = {"--coordinator": config.coordinator, "--num_processes": config.num_processes,
               "--process_id": config.process_id}
    missing = [name for name, value in process.items() if value is None]
    if 0 < len(missing) < 3:
        raise app.UsageError(f"--coordinator, --num_processes and --process_id go together; missing "
                             f"{', '.join(missing)}, e.g. --coordinator=10.0.0.1:1234 --num_processes=2 --process_id=0")
    if config.lstm_impl != "fused" and config.model != "lstm_lm":
        raise app.UsageError(f"--lstm_impl={config.lstm_impl} is for --model=lstm_lm, not --model={config.model}")
    if config.attention != "plain" and config.model != "gpt":
        raise app.UsageError(f"--attention={config.attention} is for --model=gpt, not --model={config.model}")
    if config.attention != "plain" and config.dropout:
        raise app.UsageError(f"--dropout={config.dropout} drops attention weights, which needs --attention=plain, "
                             f"not --attention={config.attention}")
    check_fused_optimizer(config)
    if config.accumulate_steps > 1 and config.batch_size % config.accumulate_steps:
        raise app.UsageError(f"--accumulate_steps={config.accumulate_steps} must divide "
                             f"--batch_size={config.batch_size}")


def check_fused_optimizer(config: TrainConfig) -> None:
    """``--fused_optimizer`` takes adam, adamw or sgd with --momentum, without --weight_decay (a
    chained transformation the fused step does not apply) or --fsdp (sharded params)."""
    if not config.fused_optimizer:
        return
    if config.optimizer not in ("adam", "adamw", "sgd") or (config.optimizer == "sgd" and config.momentum is None):
        raise app.UsageError(f"--fused_optimizer takes --optimizer=adam, adamw, or sgd with --momentum, "
                             f"not --optimizer={config.optimizer}" + (" without --momentum" if config.optimizer == "sgd" else ""))
    if config.weight_decay:
        raise app.UsageError(f"--fused_optimizer does not apply --weight_decay={config.weight_decay}; "
                             f"use --optimizer=adamw (decoupled decay) or drop --fused_optimizer")
    if config.fsdp:  # data-parallel is fine: every device updates its replica of the params
        raise app.UsageError("--fused_optimizer updates whole (replicated) params; drop it or --fsdp, which shards them")
