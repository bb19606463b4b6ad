"""Small instruction-following tasks, generated offline: the data of supervised fine-tuning (the
course's SFT of a language model, and the instruction format of its prompting lectures).

Every example is a question and its one right answer, in one fixed format:

    prompt   = "Q: <task> <input>\\nA: "
    response = "<answer>"            (the model is trained to write it, then END = "\\n")

    reverse  "Q: reverse kbfa\\nA: "    → "afbk"        4 random lower-case letters, reversed
    add      "Q: add 37+45\\nA: "       → "82"          two 2-digit numbers, their sum
    upper    "Q: upper hzqwe\\nA: "     → "HZQWE"       5 random letters, upper-cased
    spell    "Q: spell gatu\\nA: "      → "g-a-t-u"     4 random letters, joined by '-'

Each task's inputs are drawn without repetition from a seeded generator and cut into train,
validation and test splits that share no input, so a test question was never seen in training.
Same seed, same examples, on every machine (numpy's PCG64).
"""

from __future__ import annotations

import string
from typing import NamedTuple

import numpy as np

END = "\n"  # the end of every response: greedy decoding stops at it
TASKS = ("reverse", "add", "upper", "spell")
SIZES = {"train": 2000, "validation": 100, "test": 200}


class Example(NamedTuple):
    """One instruction: ``task`` (a name of ``TASKS``), ``prompt`` (ending in "A: ") and the
    exact ``response`` (without ``END``)."""

    task: str
    prompt: str
    response: str


def _letters(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list(string.ascii_lowercase), n))


def _draw(task: str, rng: np.random.Generator) -> tuple[str, str]:
    """One (input, answer) of ``task``."""
    if task == "reverse":
        word = _letters(rng, 4)
        return word, word[::-1]
    if task == "add":
        a, b = rng.integers(10, 100, 2)
        return f"{a}+{b}", str(a + b)
    if task == "upper":
        word = _letters(rng, 5)
        return word, word.upper()
    word = _letters(rng, 4)
    return word, "-".join(word)


def make_example(task: str, question: str, answer: str) -> Example:
    """The ``Example`` of ``task`` on ``question``: prompt "Q: <task> <question>\\nA: "."""
    return Example(task, f"Q: {task} {question}\nA: ", answer)


def task_splits(task: str, sizes: dict[str, int] = SIZES, seed: int = 0) -> dict[str, list[Example]]:
    """One task's examples, {split: [Example, ...]} with ``sizes[split]`` examples each, the
    inputs distinct across all splits (drawn with the generator of (seed, task's index)).

    Raises ``ValueError`` for an unknown task or sizes the task cannot fill (add has 90² inputs).
    """
    if task not in TASKS:
        raise ValueError(f"instructions: task must be one of {TASKS}, got {task!r}")
    total = sum(sizes.values())
    if total > 90 * 90 and task == "add":
        raise ValueError(f"instructions: add has 8,100 distinct inputs, asked for {total}")
    rng = np.random.default_rng([seed, TASKS.index(task)])
    seen: dict[str, str] = {}
    while len(seen) < total:
        question, answer = _draw(task, rng)
        seen.setdefault(question, answer)
    pairs = list(seen.items())  # in the order drawn: deterministic
    out, start = {}, 0
    for split, n in sizes.items():
        out[split] = [make_example(task, q, a) for q, a in pairs[start:start + n]]
        start += n
    return out


def instruction_splits(sizes: dict[str, int] = SIZES, seed: int = 0,
                       tasks: tuple[str, ...] = TASKS) -> dict[str, list[Example]]:
    """All tasks' examples, {split: [Example, ...]}: each split holds ``sizes[split]`` examples
    of every task in ``tasks``, shuffled together (seeded) for training.

    >>> s = instruction_splits({"train": 2, "test": 1}, tasks=("reverse",))
    >>> [len(s["train"]), len(s["test"])], s["test"][0].prompt[:11]
    ([2, 1], 'Q: reverse ')
    """
    per_task = [task_splits(t, sizes, seed) for t in tasks]
    out = {}
    for i, split in enumerate(sizes):
        examples = [e for p in per_task for e in p[split]]
        order = np.random.default_rng([seed, 1000 + i]).permutation(len(examples))
        out[split] = [examples[j] for j in order]
    return out


def few_shot(example: Example, shots: list[Example]) -> Example:
    """``example`` with k solved examples before its prompt (in-context learning):
    prompt = Σ_i (prompt_i + response_i + END) + prompt; the response is unchanged."""
    context = "".join(s.prompt + s.response + END for s in shots)
    return example._replace(prompt=context + example.prompt)


def by_task(examples: list[Example]) -> dict[str, list[Example]]:
    """{task: its examples, in order}."""
    out: dict[str, list[Example]] = {}
    for e in examples:
        out.setdefault(e.task, []).append(e)
    return out


def exact_match(example: Example, output: str) -> bool:
    """True when the model's output, cut at the first END, is exactly the response."""
    return output.split(END, 1)[0] == example.response
