"""Preference tuning of the SFT model with DPO, on preferences judged offline: a right answer is
preferred to a wrong one.

1. The fully fine-tuned model of ``experiments/sft.py`` (reloaded from its workdir, or trained
   here) samples ``samples`` answers at temperature 1 to training questions; each answer is
   judged by exact match, and every question with a right and a wrong answer gives pairs
   (x, y_w right, y_l wrong) (``jdl.train.dpo.preference_pairs``).
2. DPO (``jdl.losses.dpo_loss``) trains a copy of the SFT model against the frozen SFT model as
   the reference π_ref, whose sequence log-probabilities are computed once.
3. Before and after, on the test questions: greedy exact-match accuracy; sampled accuracy
   (temperature 1, ``eval_samples`` answers a question); the win rate of the DPO model's
   sample against the SFT model's on the same question (a win: right against wrong; a tie
   counts one half); and KL(π ‖ π_ref) ≈ mean log π(y|x) − log π_ref(y|x) over y ~ π.

    python -m experiments.dpo --workdir=runs/dpo --sft_workdir=runs/sft [--quick]
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Config:
    """Pair sampling, DPO and evaluation settings."""

    prompts_per_task: int = 300  # training questions sampled for pairs
    samples: int = 8
    per_prompt: int = 2
    beta: float = 0.1
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 3e-4
    eval_samples: int = 4
    gold_chosen: bool = False  # also offer the data set's answer as a right one (quick: a tiny model is never right)


QUICK = Config(prompts_per_task=8, samples=4, steps=6, batch_size=4, eval_samples=2, gold_chosen=True)


def sample(params, gcfg, vocab, examples, n: int, key, max_new: int) -> list[list[str]]:
    """n answers to each example's prompt at temperature 1: [[answer, ...] per example]."""
    from jdl.train.sft import complete

    flat = complete(params, gcfg, vocab, [e.prompt for e in examples for _ in range(n)], max_new,
                    key=key, temperature=1.0)
    return [flat[i * n:(i + 1) * n] for i in range(len(examples))]


def judge(examples, answers) -> list[list[bool]]:
    from jdl.data.instructions import exact_match

    return [[exact_match(e, a) for a in row] for e, row in zip(examples, answers)]


def evaluate(model, policy, reference, gcfg, vocab, test: dict, sft_config, config: Config, seed: int) -> dict:
    """Per task: greedy and sampled accuracy of the policy, its win rate against the reference
    (sample i against sample i), and the Monte-Carlo KL(π ‖ π_ref) over the policy's samples."""
    import jax

    from experiments import sft
    from jdl.train.dpo import log_probs, monte_carlo_kl
    from jdl.train.sft import encode_pairs, next_token_batch

    length = max(len(e.prompt) for v in test.values() for e in v) + sft_config.max_new + 1  # one shape
    greedy = sft.accuracy(policy, gcfg, vocab, test, test, 0, sft_config, seed)
    out = {}
    for j, (task, examples) in enumerate(sorted(test.items())):
        key = jax.random.key(seed + 7 + j)  # the same draws for the policy and the reference
        ours = sample(policy, gcfg, vocab, examples, config.eval_samples, key, sft_config.max_new)
        theirs = sample(reference, gcfg, vocab, examples, config.eval_samples, key, sft_config.max_new)
        a, b = np.array(judge(examples, ours)), np.array(judge(examples, theirs))
        pairs = [(e.prompt, y) for e, row in zip(examples, ours) for y in row]
        arrays = next_token_batch(*encode_pairs(vocab, pairs, length))
        kl, se = monte_carlo_kl(log_probs(model, policy, {}, *arrays), log_probs(model, reference, {}, *arrays))
        out[task] = {"greedy": greedy[task], "sampled": float(a.mean()),
                     "win_rate": float(np.mean((a > b) + 0.5 * (a == b))), "kl": kl, "kl_se": se}
    out["mean"] = {k: float(np.mean([v[k] for v in out.values()])) for k in ("greedy", "sampled", "win_rate", "kl")}
    return out


def make_pairs(params, gcfg, vocab, data: dict, config: Config, sft_config, seed: int) -> tuple[list, dict]:
    """Preference triples from the SFT model's own samples on training questions, and counts."""
    import jax

    from jdl.data.instructions import by_task
    from jdl.train.dpo import preference_pairs

    examples = [e for task in sorted(by_task(data["train"]).items()) for e in task[1][:config.prompts_per_task]]
    answers = sample(params, gcfg, vocab, examples, config.samples, jax.random.key(seed + 3), sft_config.max_new)
    correct = judge(examples, answers)
    if config.gold_chosen:
        answers = [row + [e.response] for e, row in zip(examples, answers)]
        correct = [row + [True] for row in correct]
    triples = preference_pairs([e.prompt for e in examples], answers, correct, config.per_prompt, seed)
    return triples, {"prompts": len(examples), "samples": len(examples) * config.samples,
                     "right": int(np.sum([c[:config.samples] for c in correct])), "pairs": len(triples)}


def run(workdir: str, quick: bool = False, seed: int = 0, sft_workdir: str | None = None,
        learning_rate: float | None = None) -> dict:
    """Pairs from the SFT model, DPO against it, evaluation before and after; results.json."""
    from experiments import sft
    from experiments.common import write_results
    from jdl import optim
    from jdl.data import pydoc_vocab
    from jdl.data.instructions import by_task, instruction_splits
    from jdl.models.gpt import gpt
    from jdl.train.dpo import dpo_objective, log_probs, pair_batch

    config, sft_config = (QUICK, sft.QUICK) if quick else (Config(), sft.Config())
    sft_workdir = sft_workdir or workdir
    if learning_rate is not None:
        config = dataclasses.replace(config, learning_rate=learning_rate)
    vocab = pydoc_vocab()
    gcfg = sft.gpt_config(sft_config, vocab.size)
    data = instruction_splits({"train": sft_config.train_per_task, "test": sft_config.test_per_task}, seed,
                              sft_config.tasks)
    pretrained, _ = sft.pretrain(sft_config, vocab, sft_workdir, seed)
    reference, _ = sft.full_sft(sft_config, vocab, data, pretrained, sft_workdir, seed)
    start = time.perf_counter()
    triples, counts = make_pairs(reference, gcfg, vocab, data, config, sft_config, seed)
    batch = pair_batch(vocab, triples, length=max(len(p) + max(len(w), len(l)) for p, w, l in triples) + 1)
    model = gpt(gcfg)
    refs = [log_probs(model, reference, {}, *batch[i:i + 3]) for i in (0, 3)]
    counts["seconds"] = time.perf_counter() - start
    ts, info = sft.fine_tune(dpo_objective(model, config.beta), reference, optim.adam(config.learning_rate),
                             (*batch, *refs), config.steps, config.batch_size, seed)
    test = by_task(data["test"])
    results = {"config": dataclasses.asdict(config), "sft_config": dataclasses.asdict(sft_config),
               "pairs": counts, "dpo": info,
               "before": evaluate(model, reference, reference, gcfg, vocab, test, sft_config, config, seed),
               "after": evaluate(model, ts.params, reference, gcfg, vocab, test, sft_config, config, seed)}
    write_results(workdir, results)
    print({k: results[k]["mean"] for k in ("before", "after")}, counts, flush=True)
    return results


if __name__ == "__main__":
    from absl import flags

    from experiments import common

    flags.DEFINE_string("sft_workdir", None, "The workdir of experiments/sft.py whose pre-trained and SFT "
                        "params to reload (default: this workdir; they are trained there if absent).")
    flags.DEFINE_float("learning_rate", None, "DPO's Adam learning rate (default: Config's, 3e-4).")
    common.main(run, "dpo")
