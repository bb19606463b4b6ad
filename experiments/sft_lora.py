"""The parameter-efficient rows of ``experiments/sft.py``: LoRA on the frozen pre-trained GPT
(optionally also training the embeddings and LayerNorms, "LoRA + LN/emb"), and the probe that
fine-tunes every parameter except a frozen set.

    LoRA:          W' = W + (α/r)·A B on every attention and MLP projection; only A, B train.
    LoRA + LN/emb: the same, and the token/position embeddings and every LayerNorm's γ, β train
                   too, at full fine-tuning's learning rate (the Dense weights and biases stay
                   frozen).
"""

from __future__ import annotations

import os

#: the GPT's Dense layers (weights and biases): what "LoRA + LN/emb" keeps frozen in the base
BASE_DENSE = ("base/blocks/*/attn/**", "base/blocks/*/mlp/**")


def lora_sft(config, vocab, data: dict, pretrained, workdir: str, seed: int, rank: int,
             train_extra: bool = False):
    """LoRA adapters of rank r (α = ``lora_alpha``·r) on ``lora_targets`` trained with peak
    ``lora_lr``, the base frozen, or with ``train_extra`` its embeddings and LayerNorms training
    too, at full SFT's peak ``full_lr`` (cached in ``workdir/lora_r{r}_lr{lora_lr}[_ln_emb]``):
    (merged params, info with the trainable count and the total, base + adapters)."""
    import jax

    from experiments.common import cached
    from experiments.sft import fine_tune, gpt_config, sft_arrays, sft_optimizer
    from jdl import optim
    from jdl.core import param_count
    from jdl.models.gpt import gpt
    from jdl.nn import lora
    from jdl.train.sft import sft_objective

    lcfg = lora.LoRAConfig(rank=rank, alpha=config.lora_alpha * rank, targets=list(config.lora_targets))
    wrapped = lora.init_lora(jax.random.key(seed + 1), pretrained, lcfg)
    model = lora.with_lora(gpt(gpt_config(config, vocab.size)), lcfg, train_base=train_extra)
    frozen = list(BASE_DENSE) if train_extra else "base/**"
    inner = sft_optimizer(config, config.lora_lr, config.sft_steps)
    if train_extra:  # the embeddings and LayerNorms at full SFT's peak, the adapters at LoRA's
        base = sft_optimizer(config, config.full_lr, config.sft_steps)
        inner = optim.differential_lr({"lora": inner, "base": base}, {"lora": "lora/**"}, "base")
    optimizer = optim.frozen(inner, frozen)
    arrays = sft_arrays(vocab, data["train"])
    settings = {"rank": rank, "alpha": lcfg.alpha, "targets": list(config.lora_targets), "lr": config.lora_lr,
                "frozen": frozen, "steps": config.sft_steps, "batch": config.sft_batch, "seed": seed,
                "data": len(arrays[0])} | ({"base_lr": config.full_lr} if train_extra else {})
    train = lambda: fine_tune(sft_objective(model), wrapped, optimizer, arrays, config.sft_steps, config.sft_batch,
                              seed)
    name = f"lora_r{rank}_lr{config.lora_lr:g}" + ("_ln_emb" if train_extra else "")
    params, info = cached(workdir, name, settings, wrapped, train)
    mask = optim.trainable_mask(params, frozen)
    trainable = sum(int(x.size) for x, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask)) if m)
    return lora.merge(params, lcfg), info | {"trainable": trainable, "total": param_count(params)}


def freeze_probe(config, vocab, data: dict, workdir: str, seed: int, patterns: list[str]) -> dict:
    """Full SFT with the leaves under ``patterns`` frozen (e.g. what LoRA leaves frozen besides
    the Dense weights: embeddings and LayerNorms), zero-shot accuracy; ``workdir/freeze/``."""
    from experiments.common import write_results
    from experiments.sft import accuracy, fine_tune, gpt_config, pretrain, sft_arrays, sft_optimizer
    from jdl import optim
    from jdl.data.instructions import by_task
    from jdl.models.gpt import gpt
    from jdl.train.sft import sft_objective

    pretrained, _ = pretrain(config, vocab, workdir, seed)
    optimizer = optim.frozen(sft_optimizer(config, config.full_lr, config.sft_steps), patterns)
    ts, info = fine_tune(sft_objective(gpt(gpt_config(config, vocab.size))), pretrained, optimizer,
                         sft_arrays(vocab, data["train"]), config.sft_steps, config.sft_batch, seed)
    test = by_task(data["test"])
    results = {"frozen": patterns, "run": info,
               "accuracy": accuracy(ts.params, gpt_config(config, vocab.size), vocab, test, test, 0, config, seed)}
    write_results(os.path.join(workdir, "freeze"), results)
    print(results, flush=True)
    return results
