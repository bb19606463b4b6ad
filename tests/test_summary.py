import jax
import jax.numpy as jnp

import jdl
from jdl.nn import Dense, residual, serial


def test_worked_example_529411_parameters(key):
    model = jdl.models.mlp([1024, 512, 3])
    params, _ = model.init(key, jnp.zeros((1, 2)))
    assert jdl.param_count(params) == 529_411 == (2 * 1024 + 1024) + (1024 * 512 + 512) + (512 * 3 + 3)


def test_worked_example_20_50_100_3(key):
    params, _ = jdl.models.mlp([50, 100, 3]).init(key, jnp.zeros((1, 20)))
    assert jdl.param_count(params) == (20 * 50 + 50) + (50 * 100 + 100) + (100 * 3 + 3) == 6_453


def test_summary_table_lists_layers_shapes_and_counts():
    text = jdl.summary(jdl.models.mlp([50, 100, 3]), jax.ShapeDtypeStruct((8, 20), jnp.float32))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "output", "shape", "params"]
    rows = {line.split()[0]: line for line in lines[2:-2]}
    assert "(8, 50)" in rows["1_dense"] and rows["1_dense"].endswith("1,050")
    assert "(8, 100)" in rows["3_dense"] and rows["3_dense"].endswith("5,100")
    assert rows["5_dense"].endswith("303")
    assert lines[-1].split() == ["total", "6,453"]


def test_summary_nested_and_combinators():
    model = serial(Dense(4), serial(Dense(4), jnp.tanh), residual(Dense(4)))
    text = jdl.summary(model, jnp.zeros((2, 4)))
    assert "1_serial/0_dense" in text and "2_residual" in text
    assert text.splitlines()[-1].split() == ["total", str(3 * 20)]
