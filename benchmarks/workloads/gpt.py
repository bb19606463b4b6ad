"""GPT language model: 4 Pre-LN blocks, d_model 256, 4 heads, context 128, vocab 65 (the
char-LSTM's character vocabulary), tied head; 16 sequences × 128 tokens, next-token softmax
cross-entropy averaged over the B·T positions, AdamW lr 1e-3, weight decay 0.1 on every
parameter (PERFORMANCE.md's GPT row).

    h_0 = W_te[x] + W_pe[0..T−1];  h_l = h + MHA(LN(h)), h + FFN(LN(h));  logits = LN_f(h_N) W_teᵀ

jdl runs ``jdl.models.gpt``; flax.linen ``nn.Embed`` (its ``attend`` is the tied head),
``nn.MultiHeadDotProductAttention`` with ``nn.make_causal_mask``, ``nn.LayerNorm``, ``nn.Dense``
and optax.adamw; PyTorch is nanoGPT's model (one fused (C, 3C) ``c_attn`` projection,
``F.scaled_dot_product_attention(is_causal=True)``, GELU tanh, ``lm_head.weight = wte.weight``)
with the fused AdamW. All three start from jdl's initial weights (written once to an .npz).

FLOPs per step count the matmuls: forward 2·B·T·(N·12·C² + C·V) for the projections, the
feed-forward networks and the head, plus N·4·B·T²·C for QKᵀ and PV (the masked half included:
every implementation here computes it), and the backward twice the forward (weight and input
gradients of the projections; dP, dV, dQ, dK of attention): 42.1 GFLOP at the benchmark's size.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from benchmarks.workloads import common

NAME = "gpt"
OPTIMIZER = "adamw"
# The step's temporaries (252 MB) are past glibc's 32 MiB mmap ceiling: the harness runs
# jdl.runtime.keep_host_memory in the workers it names (--keep-host-memory); the other workloads'
# temporaries are small, and synchronous dispatch only costs them (benchmarks/NOTES.md, "GPT").
LARGE_TEMPORARIES = True
# jdl's GPT as the benchmark runs it: the feed-forward's weight gradients as plain matmuls
# (jdl.kernels.dense; same values), which XLA:CPU runs in YNNPACK (benchmarks/NOTES.md, "GPT")
JDL_OPTIONS = {"ffn_impl": "xt"}


def native_options(device: str = "cpu", dtype: str = "float32") -> dict:
    """The attention the jdl model runs where it can: the native C++ kernel
    (``attend(impl='native')``) for float32 on a CPU that builds it
    (``jdl.kernels.native.available()``), the default elsewhere (benchmarks/NOTES.md, "GPT")."""
    from jdl.kernels import native

    return {"attention": "native"} if device == "cpu" and dtype == "float32" and native.available() else {}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """The workload's shape; the default is the benchmark's, tests pass a tiny one."""

    vocab: int = 65
    context: int = 128
    layers: int = 4
    d_model: int = 256
    heads: int = 4
    batch: int = 16


# --quick checks that the harness runs, its timings mean nothing: 2 blocks of d 64 over 4 × 32
# tokens run the same code in a fraction of a second where the full size takes minutes to compile
# and time in three libraries and two dtypes.
QUICK = Sizes(context=32, layers=2, d_model=64, heads=4, batch=4)


def n_params(s: Sizes = Sizes()) -> int:
    """V·C + ctx·C (tied head) + N·(12·C² + 13·C) + 2·C: per block the q, k, v, o projections
    (4C² + 4C), the FFN (8C² + 5C) and two LayerNorms (4C); the final LayerNorm."""
    C = s.d_model
    return s.vocab * C + s.context * C + s.layers * (12 * C * C + 13 * C) + 2 * C


def flops(s: Sizes = Sizes()) -> int:
    """3 × forward, forward = 2·B·T·(N·12·C² + C·V) + N·4·B·T²·C (T = context)."""
    tokens = s.batch * s.context
    forward = 2 * tokens * (s.layers * 12 * s.d_model ** 2 + s.d_model * s.vocab)
    forward += s.layers * 4 * s.batch * s.context ** 2 * s.d_model
    return 3 * forward


def min_bytes(s: Sizes = Sizes()) -> int:
    """Params, AdamW's m and v read and written once, plus ids and targets: 4·(6·P + 2·B·T)."""
    return 4 * (6 * n_params(s) + 2 * s.batch * s.context)


def data(s: Sizes, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random batch of token ids: x (B, T) int32 and y (B, T), x shifted by one."""
    ids = np.random.default_rng(seed).integers(0, s.vocab, (s.batch, s.context + 1)).astype(np.int32)
    return ids[:, :-1], ids[:, 1:]


def jdl_config(s: Sizes, **kw):
    from jdl.models.gpt import GPTConfig

    return GPTConfig(vocab_size=s.vocab, context=s.context, num_layers=s.layers, d_model=s.d_model,
                     num_heads=s.heads, **kw)


def jdl_model(s: Sizes = Sizes(), **kw):
    """``jdl.models.gpt.gpt`` of the workload's shape (keyword arguments go to GPTConfig, over
    JDL_OPTIONS)."""
    from jdl.models.gpt import gpt

    return gpt(jdl_config(s, **{**JDL_OPTIONS, **kw}))


def flat(params: Any) -> dict[str, np.ndarray]:
    """jdl params as {'blocks/0_block/attn/q/w': array, ...}."""
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {"/".join(str(k.key) for k in path): np.asarray(v) for path, v in leaves}


def nested(weights: dict[str, np.ndarray]) -> dict:
    """The inverse of ``flat``: jdl's nested params (as jax arrays)."""
    import jax.numpy as jnp

    out: dict = {}
    for name, value in weights.items():
        *parents, leaf_name = name.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf_name] = jnp.asarray(value)
    return out


def in_layout(params: dict, stack: str) -> dict:
    """Loop-layout params with their blocks stacked for ``stack="repeat"`` (``stack_blocks``)."""
    from jdl.models.gpt import stack_blocks

    return {**params, "blocks": stack_blocks(params["blocks"])} if stack == "repeat" else params


def load_weights(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def configure(quick: bool, seed: int, workdir: str, sizes: Sizes | None = None) -> dict:
    """Initialize jdl's GPT once (GPT-2's init) and save its weights for all three; ``sizes``
    defaults to the benchmark's (``QUICK`` with ``quick``)."""
    import jax

    sizes = sizes or (QUICK if quick else Sizes())
    x, _ = data(sizes, seed)
    params, _ = jdl_model(sizes).init(jax.random.key(seed), x)
    path = os.path.join(workdir, f"{NAME}_weights.npz")
    os.makedirs(workdir, exist_ok=True)
    np.savez(path, **flat(params))
    s = sizes
    return {
        "spec": {"name": NAME, "description": f"GPT {s.layers} layers, d {s.d_model}, {s.heads} heads, "
                                               f"context {s.context}, vocab {s.vocab}, batch {s.batch}, "
                                               f"float32, {OPTIMIZER} lr {common.LEARNING_RATE} "
                                               f"wd {common.WEIGHT_DECAY}",
                 "flops": flops(s), "min_bytes": min_bytes(s), "params": n_params(s)},
        "options": {"weights": path, "optimizer": OPTIMIZER, "seed": seed, "sizes": dataclasses.asdict(s)},
    }


def build(impl: str, options: dict, device: str = "cpu", **jdl_kw):
    """The Runner of one implementation: 'jdl', 'flax' or 'torch' (``jdl_kw`` go to GPTConfig,
    over ``native_options`` and JDL_OPTIONS)."""
    from benchmarks.workloads import gpt_twins

    s = Sizes(**options.get("sizes", {}))
    weights = load_weights(options["weights"])
    x, y = data(s, options["seed"])
    opt, dtype = options["optimizer"], common.compute_dtype(options)
    if impl == "jdl":
        jdl_kw = {**native_options(device, dtype), **jdl_kw}
        return common.jdl_runner(jdl_model(s, **jdl_kw), weights, opt, x, y, dtype,
                                 load=lambda params, w: in_layout(nested(w), jdl_kw.get("stack", "loop")))
    if impl == "flax":
        import jax.numpy as jnp

        return common.flax_runner(gpt_twins.flax_model(s, dtype), gpt_twins.flax_params(weights, s), opt,
                                  (jnp.asarray(x), jnp.asarray(y)))
    if impl == "torch":
        return common.torch_runner(gpt_twins.torch_model(weights, s), opt, x, y.reshape(-1), device, dtype)
    raise ValueError(f"gpt: unknown implementation {impl!r}; expected jdl, flax or torch")
