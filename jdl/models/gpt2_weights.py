"""GPT-2 compatibility: Hugging Face ``GPT2LMHeadModel`` weights as jdl GPT params.

GPT-2's layers map one to one onto ``jdl.models.gpt``'s (the same Pre-LN block, tanh GELU and
tied head). Two differences of storage: GPT-2's ``Conv1D`` keeps its weights (in, out) —
already jdl's ``Dense`` layout, so nothing is transposed — and it fuses the three attention
projections into one ``c_attn`` of shape (C, 3C), which splits into W_q, W_k, W_v:

    transformer.wte.weight (V, C)            → wte/w
    transformer.wpe.weight (n_ctx, C)        → wpe/w
    h.{i}.ln_1.weight, .bias                 → {i}_block/ln_1/gamma, beta   (ln_2 likewise)
    h.{i}.attn.c_attn.weight (C, 3C), .bias  → {i}_block/attn/{q,k,v}/w (C, C), b (C,)
    h.{i}.attn.c_proj.weight (C, C), .bias   → {i}_block/attn/o/{w, b}
    h.{i}.mlp.c_fc.weight (C, 4C), .bias     → {i}_block/mlp/fc1/{w, b}
    h.{i}.mlp.c_proj.weight (4C, C), .bias   → {i}_block/mlp/fc2/{w, b}
    transformer.ln_f.weight, .bias           → ln_f/gamma, beta
    lm_head.weight (V, C)                    → head/w (C, V), only when untied

Nothing here downloads anything: the state dict comes from the caller (``docs/gpt.md``).
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import Params
from jdl.models.gpt import GPTConfig, stack_blocks

GPT2_HEAD_SIZE = 64  # every released GPT-2 (124M to 1.5B) has heads of 64 features
GELU_TANH = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")


def _get(hf_config: Any, name: str, default: Any = None) -> Any:
    if isinstance(hf_config, Mapping):
        return hf_config.get(name, default)
    return getattr(hf_config, name, default)


def gpt2_config(hf_config: Any, *, stack: str = "loop") -> GPTConfig:
    """The ``GPTConfig`` of a Hugging Face ``GPT2Config`` (or its ``config.json`` as a dict):
    n_layer, n_embd, n_head, n_positions, vocab_size, n_inner (None: 4·n_embd),
    layer_norm_epsilon, tie_word_embeddings and resid_pdrop as the dropout.

    Raises ``ValueError`` for the options jdl's block does not implement: an activation other
    than the tanh GELU, scale_attn_weights=False, scale_attn_by_inverse_layer_idx and
    reorder_and_upcast_attn.
    """
    act = _get(hf_config, "activation_function", "gelu_new")
    if act not in GELU_TANH:
        raise ValueError(f"gpt2_config: activation_function={act!r} is not supported; jdl's GPT "
                         f"uses GPT-2's tanh GELU ({', '.join(GELU_TANH)})")
    for flag, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                     ("reorder_and_upcast_attn", False)):
        if bool(_get(hf_config, flag, ok)) != ok:
            raise ValueError(f"gpt2_config: {flag}={not ok} is not supported by jdl's GPT")
    d = _get(hf_config, "n_embd")
    return GPTConfig(vocab_size=_get(hf_config, "vocab_size"), context=_get(hf_config, "n_positions"),
                     num_layers=_get(hf_config, "n_layer"), d_model=d,
                     num_heads=_get(hf_config, "n_head"), d_ff=_get(hf_config, "n_inner") or 4 * d,
                     dropout=float(_get(hf_config, "resid_pdrop", 0.0)),
                     tied_head=bool(_get(hf_config, "tie_word_embeddings", True)),
                     stack=stack, layer_norm_eps=float(_get(hf_config, "layer_norm_epsilon", 1e-5)))


def to_numpy(value: Any) -> np.ndarray:
    """A float32 numpy array from a torch tensor (any dtype or device), a numpy array or a jax
    array, without importing torch."""
    if hasattr(value, "detach"):  # a torch.Tensor: bfloat16 has no numpy dtype, go via float32
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def _is_mask_buffer(name: str) -> bool:
    """Older GPT-2 checkpoints also store the causal mask as attn.bias (1, 1, n, n) and a
    scalar attn.masked_bias: buffers, not weights."""
    return name.endswith(".attn.bias") or name.endswith(".attn.masked_bias")


def infer_config(sd: Mapping[str, np.ndarray]) -> GPTConfig:
    """A ``GPTConfig`` read off the weights' shapes, with h = C/64 heads (GPT-2's head size;
    the state dict cannot say) and a tied head unless ``lm_head.weight`` differs from wte."""
    V, C = sd["wte.weight"].shape
    n_layer = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("h."))
    head = sd.get("lm_head.weight")
    if C % GPT2_HEAD_SIZE:
        raise ValueError(f"from_gpt2: n_embd={C} is not a multiple of GPT-2's head size "
                         f"{GPT2_HEAD_SIZE}; pass config=gpt2_config(hf_config)")
    return GPTConfig(vocab_size=V, context=sd["wpe.weight"].shape[0], num_layers=n_layer,
                     d_model=C, num_heads=C // GPT2_HEAD_SIZE, d_ff=sd["h.0.mlp.c_fc.weight"].shape[1],
                     tied_head=head is None or np.array_equal(head, sd["wte.weight"]))


def _expect(sd: Mapping[str, np.ndarray], name: str, shape: tuple) -> np.ndarray:
    if name not in sd:
        raise ValueError(f"from_gpt2: the state dict has no {name!r} (expected shape {shape})")
    if tuple(sd[name].shape) != shape:
        raise ValueError(f"from_gpt2: {name!r} has shape {tuple(sd[name].shape)} but the config "
                         f"expects {shape}")
    return sd[name]


def _block_params(sd: Mapping[str, np.ndarray], i: int, C: int, F: int) -> Params:
    g = lambda name, shape: _expect(sd, f"h.{i}.{name}", shape)
    ln = lambda n: {"gamma": g(f"{n}.weight", (C,)), "beta": g(f"{n}.bias", (C,))}
    w_qkv, b_qkv = g("attn.c_attn.weight", (C, 3 * C)), g("attn.c_attn.bias", (3 * C,))
    attn = {name: {"w": w_qkv[:, j * C:(j + 1) * C], "b": b_qkv[j * C:(j + 1) * C]}  # (C, C), (C,)
            for j, name in enumerate(("q", "k", "v"))}
    attn["o"] = {"w": g("attn.c_proj.weight", (C, C)), "b": g("attn.c_proj.bias", (C,))}
    mlp = {"fc1": {"w": g("mlp.c_fc.weight", (C, F)), "b": g("mlp.c_fc.bias", (F,))},
           "fc2": {"w": g("mlp.c_proj.weight", (F, C)), "b": g("mlp.c_proj.bias", (C,))}}
    return {"ln_1": ln("ln_1"), "attn": attn, "ln_2": ln("ln_2"), "mlp": mlp}


def from_gpt2(state_dict: Mapping[str, Any], config: GPTConfig | None = None
              ) -> tuple[Params, GPTConfig]:
    """jdl GPT params from a Hugging Face GPT-2 state dict, of any size.

    Accepts ``GPT2LMHeadModel.state_dict()`` (keys ``transformer.…`` and ``lm_head.weight``),
    ``GPT2Model.state_dict()`` or the Hub's ``model.safetensors`` (keys without the prefix),
    with torch tensors or numpy arrays; the causal-mask buffers of older checkpoints are
    skipped and any other unknown key is an error. Weights become float32.

    Args:
      state_dict: name → tensor.
      config: the model's shape, e.g. ``gpt2_config(hf_config)``; None reads it off the
        shapes with heads of 64 features (true of every released GPT-2, not of every
        GPT2Config).

    Returns: (params, config), params in ``config.stack``'s layout for ``gpt(config)``,
    ``decode_step`` and ``generate``.
    """
    sd = {k.removeprefix("transformer."): to_numpy(v) for k, v in state_dict.items()
          if not _is_mask_buffer(k)}
    config = infer_config(sd) if config is None else config
    V, C, F, L = config.vocab_size, config.d_model, config.d_ff, config.num_layers
    params = {"wte": {"w": _expect(sd, "wte.weight", (V, C))},
              "wpe": {"w": _expect(sd, "wpe.weight", (config.context, C))},
              "blocks": {f"{i}_block": _block_params(sd, i, C, F) for i in range(L)},
              "ln_f": {"gamma": _expect(sd, "ln_f.weight", (C,)), "beta": _expect(sd, "ln_f.bias", (C,))}}
    head = sd.get("lm_head.weight")
    if config.tied_head and head is not None and not np.array_equal(head, params["wte"]["w"]):
        raise ValueError("from_gpt2: the config ties the head to wte but lm_head.weight differs "
                         "from wte.weight; use a config with tied_head=False")
    if not config.tied_head:
        params["head"] = {"w": _expect(sd, "lm_head.weight", (V, C)).T}  # (C, V)
    used = {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight"}
    used |= {k for k in sd if k.startswith("h.") and int(k.split(".")[1]) < L}
    if set(sd) - used:
        raise ValueError(f"from_gpt2: unexpected keys {sorted(set(sd) - used)[:5]}; is this a "
                         f"GPT-2 state dict with num_layers={L}?")
    params = jax.tree.map(jnp.asarray, params)
    if config.stack == "repeat":
        params["blocks"] = stack_blocks(params["blocks"])
    return params, config
