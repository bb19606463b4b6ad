"""The GPT workload's flax.linen and PyTorch models, written as each library's users write them,
and the mapping of jdl's weights (``benchmarks.workloads.gpt.flat``'s names) into theirs.

flax: ``nn.MultiHeadDotProductAttention`` keeps per-head kernels (C, h, d) for q, k, v and
(h, d, C) for the output, so jdl's (C, C) matrices are reshaped. PyTorch (nanoGPT): one
``c_attn`` Linear whose weight is [W_q W_k W_v]ᵀ (3C, C), Linear weights transposed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def flax_model(s, dtype: str = "float32"):
    """GPT in flax.linen, computing in ``dtype`` (params float32)."""
    import flax.linen as nn
    import jax.numpy as jnp

    kw = {"dtype": jnp.dtype(dtype), "param_dtype": jnp.float32}

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x, mask):
            h = nn.LayerNorm(epsilon=1e-5, **kw)(x)
            x = x + nn.MultiHeadDotProductAttention(num_heads=s.heads, **kw)(h, h, mask=mask)
            h = nn.LayerNorm(epsilon=1e-5, **kw)(x)
            h = nn.gelu(nn.Dense(4 * s.d_model, **kw)(h), approximate=True)  # Dense_0: fc1
            h = nn.Dense(s.d_model, **kw)(h)  # Dense_1: fc2
            return x + h

    class GPT(nn.Module):
        @nn.compact
        def __call__(self, ids):
            wte = nn.Embed(s.vocab, s.d_model, **kw)
            wpe = self.param("wpe", nn.initializers.normal(0.02), (s.context, s.d_model))
            x = wte(ids) + wpe[None, : ids.shape[1]].astype(kw["dtype"])
            mask = nn.make_causal_mask(ids)  # (B, 1, T, T)
            for i in range(s.layers):
                x = Block(name=f"block_{i}")(x, mask)
            return wte.attend(nn.LayerNorm(epsilon=1e-5, **kw)(x))  # tied head, (B, T, V)

    return GPT()


def flax_params(w: dict[str, np.ndarray], s) -> dict:
    """jdl's flat weights in flax's names and shapes."""
    import jax.numpy as jnp

    h, d = s.heads, s.d_model // s.heads
    ln = lambda p: {"scale": jnp.asarray(w[p + "/gamma"]), "bias": jnp.asarray(w[p + "/beta"])}
    params: dict[str, Any] = {"Embed_0": {"embedding": jnp.asarray(w["wte/w"])}, "wpe": jnp.asarray(w["wpe/w"]),
                              "LayerNorm_0": ln("ln_f")}
    for i in range(s.layers):
        b = f"blocks/{i}_block/"
        attn = {name: {"kernel": jnp.asarray(w[b + f"attn/{p}/w"]).reshape(s.d_model, h, d),
                       "bias": jnp.asarray(w[b + f"attn/{p}/b"]).reshape(h, d)}
                for name, p in (("query", "q"), ("key", "k"), ("value", "v"))}
        attn["out"] = {"kernel": jnp.asarray(w[b + "attn/o/w"]).reshape(h, d, s.d_model),
                       "bias": jnp.asarray(w[b + "attn/o/b"])}
        dense = lambda p: {"kernel": jnp.asarray(w[b + p + "/w"]), "bias": jnp.asarray(w[b + p + "/b"])}
        params[f"block_{i}"] = {"LayerNorm_0": ln(b + "ln_1"), "MultiHeadDotProductAttention_0": attn,
                                "LayerNorm_1": ln(b + "ln_2"), "Dense_0": dense("mlp/fc1"),
                                "Dense_1": dense("mlp/fc2")}
    return params


def torch_model(w: dict[str, np.ndarray], s):
    """nanoGPT's GPT in PyTorch with jdl's weights; forward returns logits (B·T, V)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    C, H = s.d_model, s.heads

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, d)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(C), Attention(), nn.LayerNorm(C)
            self.c_fc, self.c_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(s.vocab, C), nn.Embedding(s.context, C)
            self.h = nn.ModuleList(Block() for _ in range(s.layers))
            self.ln_f = nn.LayerNorm(C)
            self.lm_head = nn.Linear(C, s.vocab, bias=False)
            self.lm_head.weight = self.wte.weight  # tied

        def forward(self, ids):
            x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1], device=ids.device))
            for block in self.h:
                x = block(x)
            return self.lm_head(self.ln_f(x)).view(-1, s.vocab)  # (B·T, V)

    net = GPT()
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a))
    with torch.no_grad():
        net.wte.weight.copy_(t(w["wte/w"]))
        net.wpe.weight.copy_(t(w["wpe/w"]))
        for p, ln in (("ln_f", net.ln_f),):
            ln.weight.copy_(t(w[p + "/gamma"])), ln.bias.copy_(t(w[p + "/beta"]))
        for i, blk in enumerate(net.h):
            b = f"blocks/{i}_block/"
            for p, ln in (("ln_1", blk.ln_1), ("ln_2", blk.ln_2)):
                ln.weight.copy_(t(w[b + p + "/gamma"])), ln.bias.copy_(t(w[b + p + "/beta"]))
            qkv = [w[b + f"attn/{p}/w"] for p in "qkv"]
            blk.attn.c_attn.weight.copy_(t(np.concatenate(qkv, axis=1).T))
            blk.attn.c_attn.bias.copy_(t(np.concatenate([w[b + f"attn/{p}/b"] for p in "qkv"])))
            for lin, p in ((blk.attn.c_proj, "attn/o"), (blk.c_fc, "mlp/fc1"), (blk.c_proj, "mlp/fc2")):
                lin.weight.copy_(t(w[b + p + "/w"].T)), lin.bias.copy_(t(w[b + p + "/b"]))
    return net
