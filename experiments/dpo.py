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
import json
import os
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Config:
    """Pair sampling, DPO (+ NLL), early stopping and evaluation settings."""

    prompts_per_task: int = 300  # training questions sampled for pairs
    samples: int = 8
    per_prompt: int = 2
    beta: float = 0.1
    nll_weight: float = 0.0  # λ of "DPO + NLL" (jdl.train.dpo.dpo_objective)
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 3e-4
    check_every: int = 0  # > 0: early stopping on the win rate over held-out training questions
    val_per_task: int = 100  # those questions: the last of each task's training split
    eval_samples: int = 4
    gold_chosen: bool = False  # also offer the data set's answer as a right one (quick: a tiny model is never right)


# quick: every sampling call fills 16 rows a prompt length (4 × 4 pairs, 8 × 2 checks, 6 × 2 tests
# padded to 16), so each length compiles one sampler, not three
QUICK = Config(prompts_per_task=4, samples=4, steps=6, batch_size=4, check_every=3, val_per_task=8, eval_samples=2,
               gold_chosen=True)


def sample(params, gcfg, vocab, examples, n: int, key, max_new: int) -> list[list[str]]:
    """n answers to each example's prompt at temperature 1: [[answer, ...] per example]."""
    from jdl.train.sft import complete

    flat = complete(params, gcfg, vocab, [e.prompt for e in examples for _ in range(n)], max_new,
                    key=key, temperature=1.0)
    return [flat[i * n:(i + 1) * n] for i in range(len(examples))]


def judge(examples, answers) -> list[list[bool]]:
    from jdl.data.instructions import exact_match

    return [[exact_match(e, a) for a in row] for e, row in zip(examples, answers)]


def win_rate(policy, gcfg, vocab, examples, theirs: np.ndarray, n: int, key, max_new: int) -> tuple:
    """(win rate of the policy's i-th sample against ``theirs`` (judged reference samples drawn
    with the same ``key``): right against wrong wins, a tie counts ½; the policy's samples,
    judged)."""
    ours = sample(policy, gcfg, vocab, examples, n, key, max_new)
    a = np.array(judge(examples, ours))
    return float(np.mean((a > theirs) + 0.5 * (a == theirs))), ours, a


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
        b = np.array(judge(examples, sample(reference, gcfg, vocab, examples, config.eval_samples, key,
                                            sft_config.max_new)))
        wins, ours, a = win_rate(policy, gcfg, vocab, examples, b, config.eval_samples, key, sft_config.max_new)
        pairs = [(e.prompt, y) for e, row in zip(examples, ours) for y in row]
        arrays = next_token_batch(*encode_pairs(vocab, pairs, length))
        kl, se = monte_carlo_kl(log_probs(model, policy, {}, *arrays), log_probs(model, reference, {}, *arrays))
        out[task] = {"greedy": greedy[task], "sampled": float(a.mean()), "win_rate": wins, "kl": kl, "kl_se": se}
    out["mean"] = {k: float(np.mean([v[k] for v in out.values()])) for k in ("greedy", "sampled", "win_rate", "kl")}
    return out


def validation_check(reference, gcfg, vocab, data: dict, config: Config, sft_config, seed: int):
    """``check(params) -> win rate`` against the reference on the last ``val_per_task`` training
    questions of each task (never used for pairs), ``eval_samples`` samples each; for early
    stopping (``sft.fine_tune``)."""
    import jax

    from jdl.data.instructions import by_task

    examples = [e for _, v in sorted(by_task(data["train"]).items()) for e in v[-config.val_per_task:]]
    key = jax.random.key(seed + 11)
    theirs = np.array(judge(examples, sample(reference, gcfg, vocab, examples, config.eval_samples, key,
                                             sft_config.max_new)))
    return lambda params: win_rate(params, gcfg, vocab, examples, theirs, config.eval_samples, key,
                                   sft_config.max_new)[0]


def make_pairs(params, gcfg, vocab, data: dict, config: Config, sft_config, seed: int,
               cache_dir: str | None = None) -> tuple[list, dict]:
    """Preference triples from the SFT model's own samples on training questions, and counts;
    kept in ``cache_dir`` (one JSON file per setting and reference params) and reloaded."""
    import jax

    from experiments.common import write_results
    from jdl.data.instructions import by_task
    from jdl.train.dpo import preference_pairs

    fingerprint = sum(float(np.abs(np.asarray(x, np.float64)).sum()) for x in jax.tree.leaves(params))
    name = (f"pairs_{config.prompts_per_task}x{config.samples}_{config.per_prompt}_{config.gold_chosen}_{seed}_"
            f"{fingerprint:.6e}")
    path = os.path.join(cache_dir, name, "results.json") if cache_dir else None
    if path and os.path.exists(path):
        with open(path) as f:
            cached = json.load(f)
        return [tuple(t) for t in cached["triples"]], cached["counts"] | {"loaded_from": path}
    start = time.perf_counter()
    examples = [e for task in sorted(by_task(data["train"]).items()) for e in task[1][:config.prompts_per_task]]
    answers = sample(params, gcfg, vocab, examples, config.samples, jax.random.key(seed + 3), sft_config.max_new)
    correct = judge(examples, answers)
    if config.gold_chosen:
        answers = [row + [e.response] for e, row in zip(examples, answers)]
        correct = [row + [True] for row in correct]
    triples = preference_pairs([e.prompt for e in examples], answers, correct, config.per_prompt, seed)
    task_of = {e.prompt: e.task for e in examples}
    counts = {"prompts": len(examples), "samples": len(examples) * config.samples,
              "right": int(np.sum([c[:config.samples] for c in correct])), "pairs": len(triples),
              "pairs_per_task": {t: sum(task_of[p] == t for p, _, _ in triples) for t in sorted(set(task_of.values()))},
              "sampling_seconds": time.perf_counter() - start}
    if path:
        write_results(os.path.dirname(path), {"triples": triples, "counts": counts})
    return triples, counts


def run(workdir: str, quick: bool = False, seed: int = 0, sft_workdir: str | None = None,
        learning_rate: float | None = None, beta: float | None = None, nll_weight: float | None = None,
        prompts_per_task: int | None = None, steps: int | None = None, check_every: int | None = None) -> dict:
    """Pairs from the SFT model, DPO against it, evaluation before and after; results.json.
    The keyword arguments other than the workdirs override ``Config``'s fields."""
    from experiments import sft
    from experiments.common import write_results
    from jdl import optim
    from jdl.data import pydoc_vocab
    from jdl.data.instructions import by_task, instruction_splits
    from jdl.models.gpt import gpt
    from jdl.train.dpo import dpo_objective, log_probs, pair_batch

    config, sft_config = (QUICK, sft.QUICK) if quick else (Config(), sft.Config())
    sft_workdir = sft_workdir or workdir
    overrides = dict(learning_rate=learning_rate, beta=beta, nll_weight=nll_weight, steps=steps,
                     prompts_per_task=prompts_per_task, check_every=check_every)
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    vocab = pydoc_vocab()
    gcfg = sft.gpt_config(sft_config, vocab.size)
    data = instruction_splits({"train": sft_config.train_per_task, "test": sft_config.test_per_task}, seed,
                              sft_config.tasks)
    pretrained, _ = sft.pretrain(sft_config, vocab, sft_workdir, seed)
    reference, _ = sft.full_sft(sft_config, vocab, data, pretrained, sft_workdir, seed)
    start = time.perf_counter()
    if config.check_every and config.prompts_per_task > sft_config.train_per_task - config.val_per_task:
        raise ValueError("dpo: the pairs' prompts would overlap the early-stopping questions")
    triples, counts = make_pairs(reference, gcfg, vocab, data, config, sft_config, seed, sft_workdir)
    batch = pair_batch(vocab, triples, length=max(len(p) + max(len(w), len(l)) for p, w, l in triples) + 1)
    model = gpt(gcfg)
    refs = [log_probs(model, reference, {}, *batch[i:i + 3]) for i in (0, 3)]
    counts["seconds"] = time.perf_counter() - start  # pairs (sampled or reloaded) and the reference log-probs
    check = validation_check(reference, gcfg, vocab, data, config, sft_config, seed) if config.check_every else None
    ts, info = sft.fine_tune(dpo_objective(model, config.beta, config.nll_weight), reference,
                             optim.adam(config.learning_rate), (*batch, *refs), config.steps, config.batch_size,
                             seed, check=check, check_every=config.check_every)
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
    flags.DEFINE_float("beta", None, "DPO's β (default: Config's, 0.1).")
    flags.DEFINE_float("nll_weight", None, "λ of the NLL term on y_w, DPO + NLL (default 0: DPO alone).")
    flags.DEFINE_integer("prompts_per_task", None, "Training questions per task sampled for pairs (default 300).")
    flags.DEFINE_integer("steps", None, "DPO steps (default 200).")
    flags.DEFINE_integer("check_every", None, "> 0: early stopping on the held-out win rate every N steps.")
    common.main(run, "dpo")
