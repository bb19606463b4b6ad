"""The offline instruction tasks: right answers, deterministic, disjoint splits."""

import re

import pytest

from jdl.data.instructions import (
    END, TASKS, by_task, exact_match, few_shot, instruction_splits, make_example, task_splits,
)

SIZES = {"train": 50, "validation": 10, "test": 20}


def answer(prompt: str) -> str:
    """An independent solver, from the prompt's text alone."""
    task, arg = re.fullmatch(r"Q: (\w+) (\S+)\nA: ", prompt).groups()
    if task == "reverse":
        return "".join(reversed(arg))
    if task == "add":
        a, b = arg.split("+")
        return str(int(a) + int(b))
    if task == "upper":
        return arg.upper()
    return "-".join(arg)


@pytest.mark.parametrize("task", TASKS)
def test_every_answer_is_right_and_splits_share_no_question(task):
    splits = task_splits(task, SIZES, seed=3)
    assert {k: len(v) for k, v in splits.items()} == SIZES
    for examples in splits.values():
        for e in examples:
            assert e.task == task and e.response == answer(e.prompt)
    questions = [set(e.prompt for e in v) for v in splits.values()]
    assert sum(map(len, questions)) == sum(SIZES.values())  # distinct within and across splits


def test_same_seed_same_examples_other_seed_others():
    a, b = instruction_splits(SIZES, seed=1), instruction_splits(SIZES, seed=1)
    assert a == b
    assert instruction_splits(SIZES, seed=2)["test"] != a["test"]
    assert {t: len(v) for t, v in by_task(a["test"]).items()} == {t: 20 for t in TASKS}
    assert [e.task for e in a["train"][:8]] != sorted(e.task for e in a["train"][:8])  # shuffled together


def test_formats_few_shot_and_exact_match():
    e = make_example("reverse", "abcd", "dcba")
    assert e.prompt == "Q: reverse abcd\nA: "
    shot = make_example("reverse", "wxyz", "zyxw")
    fs = few_shot(e, [shot, shot])
    assert fs.prompt == "Q: reverse wxyz\nA: zyxw\n" * 2 + e.prompt and fs.response == "dcba"
    assert exact_match(e, "dcba" + END + "Q: junk") and not exact_match(e, "dcb") and not exact_match(e, "dcbaa")
    with pytest.raises(ValueError, match="instructions: task must be one of"):
        task_splits("sort", SIZES)
    with pytest.raises(ValueError, match="add has 8,100 distinct inputs"):
        task_splits("add", {"train": 9000})
