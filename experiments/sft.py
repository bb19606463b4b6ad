"""Supervised fine-tuning of a character GPT to follow instructions: full fine-tuning vs LoRA,
and zero-shot vs few-shot prompting before and after.

1. Pre-training: a small GPT (``jdl.models.gpt``) learns next characters of pydoc_text, as in
   ``experiments/gpt_text.py`` (its windows and its optimizer: AdamW, clipping, warmup-cosine),
   for ``pretrain_steps`` steps.
2. SFT: the pre-trained model is fine-tuned on offline instructions
   (``jdl.data.instructions``: reverse, add, upper, spell) with the next-token loss on the
   response tokens only (``jdl.train.sft``), either every parameter, or LoRA adapters
   W + (α/r)·A B (r in ``lora_ranks``, α = ``lora_alpha``·r) on the attention and MLP
   projections with the base frozen (``jdl.nn.lora``; also with the embeddings and LayerNorms
   training, ``experiments/sft_lora.py``), or every parameter on prompts that carry 0..2 solved
   examples (``with_shots``).
3. Evaluation: exact-match accuracy per task on the test questions, greedy decoding with the
   KV cache (``jdl.train.sft.complete``), with k = 0 (zero-shot) or k solved training examples
   of the same task before the question (few-shot prompting, in-context learning).

The pre-trained and fully fine-tuned params are saved under the workdir (``pretrained/``,
``sft_full/``); a rerun with the same settings reloads them, and ``experiments/dpo.py`` starts
from ``sft_full``.

    python -m experiments.sft --workdir=runs/sft [--quick]
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np

LN2 = math.log(2)


@dataclasses.dataclass(frozen=True)
class Config:
    """The GPT's shape, pre-training, SFT (full and LoRA) and evaluation settings."""

    num_layers: int = 4
    d_model: int = 96
    num_heads: int = 4
    context: int = 96  # pre-training windows; room for 2 solved examples before a question
    pretrain_steps: int = 1600
    pretrain_batch: int = 32
    pretrain_lr: float = 2e-3
    stride: int = 48
    windows_limit: int | None = None
    sft_steps: int = 600
    sft_batch: int = 64
    full_lr: float = 2e-3
    lora_lr: float = 3e-3  # above full SFT's 2e-3 (LoRA practice); 1e-2 was worse (docs/sft.md)
    lora_ranks: tuple[int, ...] = (8, 32)
    lora_alpha: float = 2.0  # α = lora_alpha · r
    lora_plus: bool = False  # also the "LoRA + LN/emb" row at r = lora_ranks[0] (experiments/sft_lora.py)
    lora_targets: tuple[str, ...] = ("blocks/*/attn/*", "blocks/*/mlp/*")
    mixed_shots: tuple[int, ...] = (0, 1, 2)  # the third model: SFT on prompts with k of these shots
    mixed_steps: int = 500
    mixed_batch: int = 32
    sft_length: int | None = None  # pad SFT sequences to this many tokens (None: the longest); with
    # mixed_steps, mixed_batch = sft_steps, sft_batch, full and k-shot SFT share one compiled step
    tasks: tuple[str, ...] = ("reverse", "add", "upper", "spell")
    train_per_task: int = 2000
    test_per_task: int = 200
    shots: tuple[int, ...] = (0, 1, 2)
    max_new: int = 10  # the longest response, "a-b-c-d" and END, is 8 characters


QUICK = Config(num_layers=1, d_model=32, num_heads=2, context=64, pretrain_steps=6, pretrain_batch=8,
               stride=32, windows_limit=64, sft_steps=12, sft_batch=16, full_lr=3e-3, lora_ranks=(2,),
               lora_plus=True, mixed_shots=(0, 1), mixed_steps=12, mixed_batch=16, sft_length=64,
               tasks=("reverse", "upper"), train_per_task=32, test_per_task=6, shots=(0, 1))


def gpt_config(config: Config, vocab_size: int):
    from jdl.models.gpt import GPTConfig

    return GPTConfig(vocab_size=vocab_size, context=config.context, num_layers=config.num_layers,
                     d_model=config.d_model, num_heads=config.num_heads)


def text_config(config: Config, steps: int, learning_rate: float):
    """gpt_text's Config with this run's windows and optimizer settings (for its
    ``load_windows`` and ``make_optimizer``)."""
    from experiments import gpt_text

    return gpt_text.Config(num_layers=config.num_layers, d_model=config.d_model, num_heads=config.num_heads,
                           seq_len=config.context, stride=config.stride, batch_size=config.pretrain_batch,
                           learning_rate=learning_rate, warmup_steps=min(50, steps // 5),
                           windows_limit=config.windows_limit)


def pretrain(config: Config, vocab, workdir: str, seed: int):
    """The GPT trained ``pretrain_steps`` on pydoc_text windows of length ``context``; returns
    (params, {validation_bpc, seconds, steps})."""
    import jax

    from experiments import common, gpt_text
    from jdl.data.batching import batches
    from jdl.losses import softmax_cross_entropy
    from jdl.models.gpt import gpt
    from jdl.train import evaluate, init_train_state, make_eval_step, make_step, supervised

    tc = text_config(config, config.pretrain_steps, config.pretrain_lr)
    model = gpt(gpt_config(config, vocab.size))
    optimizer = gpt_text.make_optimizer(tc, config.pretrain_steps)
    ts = init_train_state(model, optimizer, np.zeros((1, config.context), np.int32), seed)

    def train():
        nonlocal ts
        windows = gpt_text.load_windows(tc)
        step, start, t = make_step(supervised(model, softmax_cross_entropy), optimizer), time.perf_counter(), 0
        for epoch in range(10 ** 6):
            for batch in batches(*windows["train"], config.pretrain_batch, seed=seed, epoch=epoch):
                ts, metrics = step(ts, batch)
                t += 1
                if t % 50 == 0:
                    print(f"pre-training step {t}: loss {float(metrics['loss']):.3f}", flush=True)
                if t == config.pretrain_steps:
                    jax.block_until_ready(ts)
                    seconds = time.perf_counter() - start
                    val = evaluate(make_eval_step(model, softmax_cross_entropy), ts.params, ts.state,
                                   *windows["validation"], batch_size=64)["loss"] / LN2
                    return ts, {"validation_bpc": val, "seconds": seconds, "steps": t}

    meta = {k: v for k, v in dataclasses.asdict(tc).items()} | {"steps": config.pretrain_steps, "seed": seed}
    return common.cached(workdir, "pretrained", meta, ts.params, train)


def fine_tune(loss_fn, params, optimizer, data: tuple, steps: int, batch_size: int, seed: int,
              check=None, check_every: int = 0, step=None):
    """``steps`` steps of ``make_step(loss_fn, optimizer)`` over seeded epochs of the arrays in
    ``data`` (rows drawn together); returns (train_state, {seconds, steps, final_loss}). With
    ``check(params) -> score``, every ``check_every`` steps: early stopping, the train state's
    params are those of the best score (info: ``checks`` [(step, score)], ``best_step``). ``step``: a
    ``make_step(loss_fn, optimizer)`` to reuse (compiled once for stages of the same shapes)."""
    import jax
    import jax.numpy as jnp

    from jdl.data.batching import epoch_order
    from jdl.train import TrainState, make_step

    params = jax.tree.map(jnp.array, params)  # a copy: the step donates its train state
    ts = TrainState(params, {}, optimizer.init(params), jnp.zeros([], jnp.int32), jax.random.key(seed))
    step = step or make_step(loss_fn, optimizer)
    per_epoch, losses, start, checks, best = len(data[0]) // batch_size, [], time.perf_counter(), [], None
    for t in range(steps):
        epoch, b = divmod(t, per_epoch)
        idx = epoch_order(len(data[0]), seed, epoch)[b * batch_size:(b + 1) * batch_size]
        ts, metrics = step(ts, tuple(a[idx] for a in data))
        losses.append(metrics["loss"])
        if (t + 1) % 50 == 0:
            print(f"fine-tuning step {t + 1}: loss {float(metrics['loss']):.3f}", flush=True)
        if check is not None and (t + 1) % check_every == 0:
            checks.append((t + 1, float(check(ts.params))))
            print(f"check at step {t + 1}: {checks[-1][1]:.4f}", flush=True)
            if best is None or checks[-1][1] > best[0]:
                best = (checks[-1][1], t + 1, jax.tree.map(np.array, ts.params))  # a copy, not donated
    jax.block_until_ready(ts)
    tail = float(np.mean(jax.device_get(losses[-20:])))
    info = {"seconds": time.perf_counter() - start, "steps": steps, "final_loss": tail}
    if best is not None:
        ts, info = ts._replace(params=best[2]), info | {"checks": checks, "best_step": best[1]}
    return ts, info


def accuracy(params, gcfg, vocab, test: dict, train: dict, k: int, config: Config, seed: int) -> dict:
    """{task: exact-match accuracy} on ``test`` ({task: examples}) with k solved examples of the
    same task (drawn from ``train`` with the seeded generator) before each question."""
    from jdl.data.instructions import exact_match, few_shot
    from jdl.train.sft import complete

    out = {}
    for j, (task, examples) in enumerate(sorted(test.items())):
        rng = np.random.default_rng([seed, j, k])
        prompts = [few_shot(e, [train[task][i] for i in rng.choice(len(train[task]), k, replace=False)]).prompt
                   for e in examples]
        answers = complete(params, gcfg, vocab, prompts, config.max_new)
        out[task] = float(np.mean([exact_match(e, a) for e, a in zip(examples, answers)]))
    out["mean"] = float(np.mean(list(out.values())))
    return out


def sft_arrays(vocab, examples, length: int | None = None) -> tuple:
    """(x, y, m) of the examples' prompt ‖ response ‖ END (``jdl.train.sft``), padded to
    ``length`` tokens (None: the longest)."""
    from jdl.train.sft import encode_pairs, next_token_batch

    return next_token_batch(*encode_pairs(vocab, [(e.prompt, e.response) for e in examples], length))


def sft_optimizer(config: Config, lr: float, steps: int):
    """gpt_text's optimizer (clipping, AdamW, warmup-cosine) over ``steps``."""
    from experiments import gpt_text

    return gpt_text.make_optimizer(text_config(config, steps, lr), steps)


def with_shots(examples: list, train: dict, shots: tuple[int, ...], seed: int) -> list:
    """Each example with k ~ uniform(``shots``) solved examples of its task before it (drawn
    from ``train``, {task: examples}, seeded): SFT data in the few-shot format too."""
    from jdl.data.instructions import few_shot

    rng = np.random.default_rng([seed, 17])
    out = []
    for e in examples:
        k = int(rng.choice(shots))
        out.append(few_shot(e, [train[e.task][i] for i in rng.choice(len(train[e.task]), k, replace=False)]))
    return out


def full_sft(config: Config, vocab, data: dict, pretrained, workdir: str, seed: int, mixed: bool = False,
             step=None):
    """Every parameter fine-tuned (cached in ``workdir/sft_full``): (params, info). ``mixed``:
    on the training examples with 0..2 solved examples before each (``with_shots``),
    ``mixed_steps`` of ``mixed_batch`` (cached in ``workdir/sft_mixed``). ``step``: as
    ``fine_tune``'s."""
    from experiments import common
    from jdl.core import param_count
    from jdl.data.instructions import by_task
    from jdl.models.gpt import gpt
    from jdl.train.sft import sft_objective

    examples = with_shots(data["train"], by_task(data["train"]), config.mixed_shots, seed) if mixed else data["train"]
    arrays = sft_arrays(vocab, examples, config.sft_length)
    steps, batch = (config.mixed_steps, config.mixed_batch) if mixed else (config.sft_steps, config.sft_batch)
    settings = {"lr": config.full_lr, "steps": steps, "batch": batch, "seed": seed, "data": len(arrays[0])}
    settings |= {"shots": list(config.mixed_shots)} if mixed else {}
    settings |= {"length": config.sft_length} if config.sft_length else {}
    model = gpt(gpt_config(config, vocab.size))
    train = lambda: fine_tune(sft_objective(model), pretrained, sft_optimizer(config, config.full_lr, steps),
                              arrays, steps, batch, seed, step=step)
    params, info = common.cached(workdir, "sft_mixed" if mixed else "sft_full", settings, pretrained, train)
    return params, info | {"trainable": param_count(params), "total": param_count(params)}


def run(workdir: str, quick: bool = False, seed: int = 0, freeze: str = "", lora_lr: float | None = None,
        lora_plus: bool | None = None) -> dict:
    """Pre-train, fine-tune (full and LoRA), evaluate zero- and few-shot; write results.json and
    sft.png. Returns {'config', 'pretrain', 'runs', 'accuracy': {model: {k: {task: acc}}}, 'plots'}.
    ``freeze`` (comma-separated path patterns): only ``freeze_probe`` with them; ``lora_lr``,
    ``lora_plus``: Config's, overridden (the LoRA rows' peak, the "LoRA + LN/emb" row)."""
    from jdl.core import param_count
    from jdl.data import pydoc_vocab
    from jdl.data.instructions import by_task, instruction_splits
    from experiments import sft_lora, sft_plots
    from experiments.common import write_results
    from jdl.models.gpt import gpt
    from jdl.train import make_step
    from jdl.train.sft import sft_objective

    config = QUICK if quick else Config()
    config = dataclasses.replace(config, lora_plus=config.lora_plus if lora_plus is None else lora_plus,
                                 lora_lr=config.lora_lr if lora_lr is None else lora_lr)
    vocab = pydoc_vocab()
    gcfg = gpt_config(config, vocab.size)
    data = instruction_splits({"train": config.train_per_task, "test": config.test_per_task}, seed, config.tasks)
    if freeze:
        return sft_lora.freeze_probe(config, vocab, data, workdir, seed, freeze.split(","))
    pretrained, info = pretrain(config, vocab, workdir, seed)
    shared = None  # one compiled step for full and k-shot SFT when their shapes and schedules agree
    if config.sft_length and (config.mixed_steps, config.mixed_batch) == (config.sft_steps, config.sft_batch):
        shared = make_step(sft_objective(gpt(gcfg)), sft_optimizer(config, config.full_lr, config.sft_steps))
    full, info_full = full_sft(config, vocab, data, pretrained, workdir, seed, step=shared)
    runs = {"pre-trained": {**info, "trainable": 0, "total": param_count(pretrained)}, "SFT full": info_full}
    models = {"pre-trained": pretrained, "SFT full": full}
    lora_rows = [(f"SFT LoRA r={r}", r, False) for r in config.lora_ranks]
    if config.lora_plus:
        lora_rows.append((f"SFT LoRA r={config.lora_ranks[0]} + LN/emb", config.lora_ranks[0], True))
    for name, r, extra in lora_rows:
        models[name], runs[name] = sft_lora.lora_sft(config, vocab, data, pretrained, workdir, seed, r, extra)
    models["SFT full, k-shot data"], runs["SFT full, k-shot data"] = full_sft(
        config, vocab, data, pretrained, workdir, seed, mixed=True, step=shared)
    test, train = by_task(data["test"]), by_task(data["train"])
    start = time.perf_counter()
    acc = {name: {str(k): accuracy(p, gcfg, vocab, test, train, k, config, seed) for k in config.shots}
           for name, p in models.items()}
    results = {"config": dataclasses.asdict(config), "runs": runs, "accuracy": acc,
               "eval_seconds": time.perf_counter() - start}
    results["plots"] = [sft_plots.plot(results, workdir)]
    write_results(workdir, results)
    for name in models:
        print(name, {k: round(v["mean"], 3) for k, v in acc[name].items()}, runs[name].get("seconds"), flush=True)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_string("freeze", "", "Only fine-tune fully with these comma-separated path patterns frozen "
                        "(e.g. 'wte/**,wpe/**,**/gamma,**/beta'); results in <workdir>/freeze.")
    flags.DEFINE_float("lora_lr", None, "The LoRA rows' peak learning rate (default: Config's).")
    flags.DEFINE_bool("lora_plus", None, "Also the 'LoRA + LN/emb' row (default: Config's).")
    common.main(run, "sft")
