"""The README says only what exists: every experiment, module, name, command-line choice, file
and docs page it mentions is there. Nothing is run or trained; names are resolved."""

import importlib
import os
import re

import pytest

import jdl
from jdl.cli import MODELS, OPTIMIZERS, SCHEDULES
from jdl.cli.experiment import experiment_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()


def _mentions(pattern):
    return sorted(set(re.findall(pattern, README)))


def _resolve(dotted):
    """Import the longest importable prefix of a dotted name, then getattr the rest."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


EXPERIMENTS = sorted(set(_mentions(r"(?<![\w/])experiments\.(\w+)") + _mentions(r"experiments/(\w+)\.py")
                         + _mentions(r"jdl experiment (\w+)")))
JDL_NAMES = _mentions(r"\b(jdl(?:\.[A-Za-z_]\w*)+)")
IMPORTS = [(m, n.strip()) for m, names in _mentions(r"from (jdl[\w.]*) import ([\w, ]+)") for n in names.split(",")]
PATHS = sorted(set(_mentions(r"`((?:jdl|experiments|benchmarks|tests|docs)/[\w/.]*)`")
                   + _mentions(r"\]\(((?:docs)/[\w/.]+)\)")))


def _layout_modules():
    """(package, module) for each backticked module name in the Layout rows of jdl/nn/ and jdl/models/."""
    pairs = []
    for line in README.splitlines():
        row = re.match(r"\| `jdl/(nn|models)/` \|(.*)\|$", line)
        if row:
            listed = re.sub(r"\([^)]*\)", "", row.group(2))  # module names, not what the brackets say of them
            pairs += [(f"jdl.{row.group(1)}", name) for name in re.findall(r"`(\w+)`", listed)]
    return pairs


LAYOUT = _layout_modules()


def test_the_readme_mentions_what_these_checks_parse():
    """The parsers find what the README is known to name (so a changed format cannot make every
    check below vacuous)."""
    assert {"perceptron", "transfer", "distill"} <= set(EXPERIMENTS)
    assert {"jdl.models.from_torch_state_dict", "jdl.train.restore_matching", "jdl.losses.distillation"} <= set(JDL_NAMES)
    assert ("jdl.nn", "Dense") in IMPORTS and "docs/perceptron.md" in PATHS
    assert {"mlp", "lenet5"} <= set(_mentions(r"--model=(\w+)"))
    assert ("jdl.nn", "norm") in LAYOUT and ("jdl.models", "resnet") in LAYOUT


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_each_experiment_exists_and_runs_as_jdl_experiment(name):
    assert name in experiment_names(ROOT), f"README names experiments.{name}, which has no run()"


@pytest.mark.parametrize("dotted", JDL_NAMES)
def test_each_jdl_name_resolves(dotted):
    _resolve(dotted)


@pytest.mark.parametrize("module, name", IMPORTS)
def test_each_import_in_the_examples_works(module, name):
    assert hasattr(importlib.import_module(module), name), f"from {module} import {name}"


@pytest.mark.parametrize("package, name", LAYOUT)
def test_each_module_in_the_layout_table_exists(package, name):
    assert importlib.util.find_spec(f"{package}.{name}") is not None, f"README layout: {package}.{name}"


@pytest.mark.parametrize("path", PATHS)
def test_each_path_and_docs_page_exists(path):
    assert os.path.exists(os.path.join(ROOT, path)), path


def test_command_line_choices_exist():
    for flag, choices in (("model", MODELS), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                          ("dataset", jdl.data.names())):
        for value in _mentions(rf"--{flag}=(\w+)"):
            assert value in choices, f"README: --{flag}={value} is not one of {choices}"
    for line in README.splitlines():  # "jdl train --model=lstm_lm ...  # ... (also gru_lm, rnn_lm)"
        also = re.search(r"--model=.*\(also ([\w, ]+)\)", line)
        for name in also.group(1).split(", ") if also else ():
            assert name in MODELS, f"README: model {name} is not one of {MODELS}"


def test_make_targets_and_python_modules_exist():
    makefile = open(os.path.join(ROOT, "Makefile"), encoding="utf-8").read()
    for target in _mentions(r"\bmake (\w+)"):
        assert re.search(rf"^{target}:", makefile, re.M), f"README: make {target} is not a Makefile target"
    for module in _mentions(r"python -m ([\w.]+)"):
        assert importlib.util.find_spec(module) is not None, module


def test_the_course_topics_the_opening_names_exist():
    """Each topic the opening paragraph names ('from neurons and perceptrons to Transformers and
    diffusion') has its code."""
    opening = README.split("\n\n")[1].lower()
    topics = {"neuron": "jdl.models.classic.mcculloch_pitts", "perceptron": "jdl.models.classic.perceptron_train",
              "transformer": "jdl.models.transformer", "diffusion": "jdl.models.diffusion", "gpt": "jdl.models.gpt",
              "optimizers": "jdl.optim.adam", "optax": "optax"}
    named = [topic for topic in topics if topic in opening]
    assert {"perceptron", "transformer", "diffusion"} <= set(named)
    for topic in named:
        _resolve(topics[topic])
