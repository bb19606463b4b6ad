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


def test_summary_expands_residual_and_parallel_branches():
    from jdl.nn import parallel, relu

    model = serial(Dense(8), residual(serial(Dense(8), relu, Dense(8)), shortcut=Dense(8)),
                   parallel(Dense(3), Dense(2)))
    lines = jdl.summary(model, jnp.zeros((1, 4))).splitlines()
    rows = {line.split()[0]: line.split() for line in lines[2:-2]}
    assert rows["1_residual"][-1] == str(3 * (8 * 8 + 8))  # body's two Dense + the shortcut
    assert rows["1_residual/0_serial/0_dense"][-1] == "72" and rows["1_residual/1_dense"][-1] == "72"
    assert rows["2_parallel/0_dense"][1:] == ["(1,", "3)", "27"]  # the branch's own output and count
    assert rows["2_parallel/1_dense"][1:] == ["(1,", "2)", "18"]
    assert lines[-1].split() == ["total", str(40 + 216 + 27 + 18)]
