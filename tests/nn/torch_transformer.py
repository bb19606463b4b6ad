"""PyTorch's Transformer layers as references: random weights, and their conversion to jdl's
params (PyTorch stores Linear weights (d_out, d_in) and the q, k, v projections stacked in one
``in_proj_weight``; jdl stores w (d_in, d_out) per projection)."""

import jax.numpy as jnp
import numpy as np


def randomize(torch, module, seed=0, scale=0.3):
    """Every parameter of ``module`` ~ N(0, scale²), LayerNorm scales around 1, so that no
    weight is a default 0 or 1 that would hide a swapped or missing term."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * scale
            p.copy_(noise + 1.0 if "norm" in name and name.endswith("weight") else noise)
    return module


def _t(p):
    return jnp.asarray(p.detach().numpy())


def mha(m):
    """nn.MultiheadAttention → MultiHeadAttention params {q, k, v, o: {w, b}}."""
    d = m.embed_dim
    w, b = m.in_proj_weight, m.in_proj_bias
    out = {n: {"w": _t(w[i * d:(i + 1) * d]).T, "b": _t(b[i * d:(i + 1) * d])} for i, n in enumerate("qkv")}
    out["o"] = {"w": _t(m.out_proj.weight).T, "b": _t(m.out_proj.bias)}
    return out


def norm(m):
    return {"gamma": _t(m.weight), "beta": _t(m.bias)}


def ffn(layer):
    return {"fc1": {"w": _t(layer.linear1.weight).T, "b": _t(layer.linear1.bias)},
            "fc2": {"w": _t(layer.linear2.weight).T, "b": _t(layer.linear2.bias)}}


def encoder_layer(layer):
    """nn.TransformerEncoderLayer → TransformerBlock params."""
    return {"attn": mha(layer.self_attn), "norm1": norm(layer.norm1), "ffn": ffn(layer),
            "norm2": norm(layer.norm2)}


def decoder_layer(layer):
    """nn.TransformerDecoderLayer → DecoderBlock params."""
    return {"self_attn": mha(layer.self_attn), "norm1": norm(layer.norm1),
            "cross_attn": mha(layer.multihead_attn), "norm2": norm(layer.norm2),
            "ffn": ffn(layer), "norm3": norm(layer.norm3)}


def stack(torch_stack, convert, block_name, scan=False):
    """nn.TransformerEncoder/Decoder → TransformerEncoder/Decoder params: ``layers`` keyed
    '{i}_{block_name}' (serial) or stacked on a leading axis (scan), and ``norm`` if it has one."""
    blocks = [convert(layer) for layer in torch_stack.layers]
    if scan:
        layers = {k: _stack_trees([b[k] for b in blocks]) for k in blocks[0]}
    else:
        layers = {f"{i}_{block_name}": b for i, b in enumerate(blocks)}
    params = {"layers": layers}
    if torch_stack.norm is not None:
        params["norm"] = norm(torch_stack.norm)
    return params


def _stack_trees(trees):
    if isinstance(trees[0], dict):
        return {k: _stack_trees([t[k] for t in trees]) for k in trees[0]}
    return jnp.stack(trees)


def to_numpy(t):
    return np.asarray(t.detach().numpy())
