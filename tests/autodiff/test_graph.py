import re

import jax
import jax.numpy as jnp
import pytest

import jdl
from jdl.autodiff import graph


@pytest.fixture(scope="module")
def mlp_graph():
    model = jdl.models.mlp([4, 2], activation=jdl.nn.relu)
    x, y = jnp.ones((3, 5)), jnp.array([0, 1, 0])
    params, state = model.init(jax.random.key(0), x)
    return graph.model_graph(model, params, state, x, jdl.losses.softmax_cross_entropy, y)


def test_worked_example_autograd_atomic_operations():
    # the course: h = ReLU(W_n x + b_n), o = W_o h + b_o, L = (y − o)², decomposed into atomic ops
    def loss(p, x, y):
        h = jdl.nn.relu(x @ p["w_n"] + p["b_n"])
        o = h @ p["w_o"] + p["b_o"]
        return jnp.sum((y - o) ** 2)

    p = {"w_n": jnp.ones((3, 4)), "b_n": jnp.ones(4), "w_o": jnp.ones((4, 1)), "b_o": jnp.ones(1)}
    g = graph.trace_graph(loss, p, jnp.ones(3), jnp.ones(1))
    labels = [op.label for op in g.ops if op.primitive != "broadcast_in_dim"]
    assert labels == ["matmul", "+", ">", "where", "matmul", "+", "−", "^2", "Σ"]
    assert set(g.inputs.values()) >= {"0/w_n f32[3,4]", "0/b_n f32[4]", "1 f32[3]"}
    assert not any(op.backward for op in g.ops)


def test_backward_ops_of_an_mlp(mlp_graph):
    fwd = [op for op in mlp_graph.ops if not op.backward]
    bwd = [op for op in mlp_graph.ops if op.backward]
    fwd_labels = [op.label for op in fwd]
    assert fwd_labels.count("matmul") == 2 and "where" in fwd_labels and "exp" in fwd_labels
    # backward: ∂L/∂w for two layers and ∂L/∂a for the hidden one: three matmuls, two transposes
    assert [op.label for op in bwd].count("matmul") == 3
    assert [op.label for op in bwd].count("transpose") == 2
    assert "where" in [op.label for op in bwd]  # ReLU's mask, φ'(z) = 1[z > 0]
    assert sorted(mlp_graph.outputs.values()) == ["loss", "∂loss/∂1_dense/b", "∂loss/∂1_dense/w",
                                                   "∂loss/∂3_dense/b", "∂loss/∂3_dense/w"]
    # the loss is computed by forward ops only, every gradient by a backward op
    producer = {o: op for op in mlp_graph.ops for o in op.outputs}
    for node, name in mlp_graph.outputs.items():
        assert producer[node].backward == (name != "loss")


def test_text_and_dot(mlp_graph, tmp_path):
    text = graph.graph_text(mlp_graph)
    assert "matmul(const" in text and "= loss" in text and text.count("\nbwd ") >= 10
    dot = graph.to_dot(mlp_graph, "mlp")
    assert dot.startswith('digraph "mlp" {') and dot.rstrip().endswith("}")
    assert "cluster_forward" in dot and "cluster_backward" in dot
    defined = set(re.findall(r'^\s*("?[\w]+"?) \[', dot, re.M))
    for a, b in re.findall(r'^\s*("?[\w]+"?) -> ("?[\w]+"?);', dot, re.M):
        assert a in defined and b in defined, (a, b)
    assert dot.count("{") == dot.count("}")


def test_scan_stays_one_op_and_simplify_false_keeps_plumbing():
    model = jdl.nn.repeat(jdl.nn.Dense(3), 4)
    x = jnp.ones((2, 3))
    params, state = model.init(jax.random.key(0), x)
    g = graph.model_graph(model, params, state, x)
    prims = [op.primitive for op in g.ops]
    assert prims.count("scan") == 1 and "dot_general" not in prims  # the 4 layers live inside it
    f = lambda w, b: jnp.sum(jnp.ones((2, 3)) @ w + b[None, :])
    full = graph.trace_graph(f, jnp.ones((3, 2)), jnp.ones(2), simplify=False)
    short = graph.trace_graph(f, jnp.ones((3, 2)), jnp.ones(2))
    plumbing = {"broadcast_in_dim", "reshape"}
    assert plumbing & {op.primitive for op in full.ops}
    # what is left of the plumbing only makes constants (jnp.ones); b[None, :] is gone
    assert all(not any(i in short.inputs or i.startswith("n") for i in op.inputs)
               for op in short.ops if op.primitive in plumbing)
    assert [op.label for op in short.ops if op.primitive not in plumbing] == ["matmul", "+", "Σ"]


def test_outputs_sharing_a_node_keep_both_names():
    g = graph.trace_graph(lambda p: jnp.sum(p["a"] * 2.0), {"a": jnp.ones(2), "u": jnp.ones(2), "v": jnp.ones(2)},
                          backward=True)
    names = ", ".join(g.outputs.values())
    assert all(n in names for n in ["loss", "∂loss/∂a", "∂loss/∂u", "∂loss/∂v"])
