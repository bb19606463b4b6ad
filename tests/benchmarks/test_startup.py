"""benchmarks/startup.py's bookkeeping, and the start-up facts it measures: ``import jdl`` leaves
orbax unimported, and model inits keep their exact params (CRC-32 of every leaf's bytes, recorded
at the commit before the start-up work) so that an init made faster cannot change a model."""

import os
import subprocess
import sys
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from benchmarks import report, startup

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_phases_are_differences_of_the_marks():
    marks = {"imports": (2.0, 1.0), "init": (5.0, 1.5), "step": (9.0, 4.0), "total": (9.5, 4.5)}
    got = startup.phases(marks)
    assert got == {"imports": (2.0, 1.0), "init": (3.0, 0.5), "step": (4.0, 2.5), "total": (9.5, 4.5)}


def test_table_gives_the_median_over_rounds():
    rounds = [{"imports": (1.0, 1.0), "init": (2.0, 1.0), "step": (3.0, 2.0), "total": (3.0, 2.0)},
              {"imports": (5.0, 1.0), "init": (6.0, 1.0), "step": (9.0, 2.0), "total": (9.0, 2.0)},
              {"imports": (2.0, 1.0), "init": (4.0, 1.0), "step": (5.0, 2.0), "total": (5.0, 2.0)}]
    row = startup.table({"mlp|jdl|cold": rounds, "jdl train|jdl|cached": [{"total": (7.0, 3.0)}]}).splitlines()
    assert row[2] == "| mlp | jdl | cold | 2.00 | 1.00 | 1.00 | 5.00 | 2.00 |"  # init 1, 1, 2; step 1, 3, 1
    assert row[3] == "| jdl train | jdl | cached | — | — | — | 7.00 | 3.00 |"


def test_splice_replaces_the_section_and_report_keeps_it(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\ngenerated part\n")
    for n in (1, 2):
        startup.splice(str(page), f"{startup.BEGIN}\nstartup table {n}\n{startup.END}\n")
    text = page.read_text()
    assert text.count(startup.BEGIN) == 1 and "startup table 2" in text and "generated part" in text
    assert report.kept_sections(str(page)) == f"{startup.BEGIN}\nstartup table 2\n{startup.END}"


def test_import_jdl_does_not_import_orbax():
    code = "import sys, jdl; print('orbax.checkpoint' in sys.modules, 'jdl.train.checkpoint' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}).stdout.split()
    assert out == ["False", "True"]


def crc(tree) -> int:
    value = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        value = zlib.crc32(jax.tree_util.keystr(path).encode() + str(leaf.dtype).encode()
                           + np.asarray(leaf).tobytes(), value)
    return value


# (model, example input, CRC-32 of init(key(0), x)'s (params, state), number of leaves), recorded
# with the jdl of commit d628c07 (eager init, before any start-up change). The CRC covers the
# key paths, so the ResNet is built with the positional keys it had then (keys='positional').
INITS = {
    "mlp": (lambda: jdl.models.mlp([512, 512, 10]), (4, 784), 3720456417, 6),
    "lenet5": (lambda: jdl.models.lenet5(n_classes=10, input_shape=(28, 28, 1), impl="auto"), (4, 28, 28, 1),
               3641225380, 10),
    "resnet20": (lambda: jdl.models.resnet20(keys="positional"), (2, 32, 32, 3), 1537392855, 107),
}


@pytest.mark.parametrize("name", sorted(INITS))
def test_init_gives_the_recorded_params_bit_for_bit(name):
    build, shape, want, leaves = INITS[name]
    tree = build().init(jax.random.key(0), jnp.zeros(shape))
    assert len(jax.tree.leaves(tree)) == leaves
    assert crc(tree) == want
