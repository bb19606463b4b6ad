"""Character LSTM language model: vocab 65, embedding 128, one LSTM of hidden size 256, a Dense
head to the vocab; 32 sequences × 64 steps, next-character softmax cross-entropy averaged over
the B·T positions, Adam lr 1e-3 (PERFORMANCE.md's char-LSTM row).

    e_t = W_emb[id_t],   (h_t, c_t) = LSTM(e_t, h_{t−1}, c_{t−1}),   logits_t = h_t W_out + b_out

jdl runs ``jdl.nn.Embedding``'s table through ``jdl.kernels.lstm.embedded_lstm_sequence`` (the
input projection gathered from E·W_x, a leaf module here; its recurrence the native C++ kernel
on CPUs that can build it, XLA's scans elsewhere: ``lstm_impl``) and ``jdl.nn.Dense``; flax ``nn.Embed``, ``nn.RNN(nn.OptimizedLSTMCell)`` and ``nn.Dense``; PyTorch
``nn.Embedding``, ``nn.LSTM`` (oneDNN on CPU) and ``nn.Linear``. The LSTM's weights are jdl's
layout ``w_x`` (C, 4H), ``w_h`` (H, 4H), ``b`` (4H,) with gates i, f, g, o; flax splits them into
per-gate kernels (its one bias per gate sits on the hidden kernels), PyTorch takes the
transposes, ``bias_ih = b`` and ``bias_hh`` frozen at zero, so that every library trains the same
419,265 parameters and the three agree step for step.

FLOPs per step count the matmuls: forward 2·B·T·(C·4H + H·4H + H·V), and the backward twice
that (weight gradients, and input gradients of all three, the embedding being trained).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from benchmarks.workloads import common

NAME = "char_lstm"
VOCAB, EMBED, HIDDEN = 65, 128, 256
BATCH, SEQ = 32, 64
UNROLL = 2  # the kernel's scan unroll (the levers are measured in benchmarks/NOTES.md)


def n_params() -> int:
    """V·E + (E·4H + H·4H + 4H) + (H·V + V)."""
    return VOCAB * EMBED + (EMBED + HIDDEN + 1) * 4 * HIDDEN + HIDDEN * VOCAB + VOCAB


def flops() -> int:
    """3 × forward, forward = 2·B·T·(E·4H + H·4H + H·V): weight grads and input grads each cost
    what the forward matmuls cost (∂L/∂e feeds the embedding's gradient)."""
    return 3 * 2 * BATCH * SEQ * (EMBED * 4 * HIDDEN + HIDDEN * 4 * HIDDEN + HIDDEN * VOCAB)


def min_bytes(optimizer: str) -> int:
    """Params (and Adam's m, v) read and written once, plus the ids and targets: 4·(2·P·k + 2·B·T)."""
    k = 3 if optimizer == "adam" else 1
    return 4 * (2 * n_params() * k + 2 * BATCH * SEQ)


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random batch of character ids: x (B, T) int32, y (B, T) the next id (x shifted)."""
    ids = np.random.default_rng(seed).integers(0, VOCAB, (BATCH, SEQ + 1)).astype(np.int32)
    return ids[:, :-1], ids[:, 1:]


def lstm_init(key: Any, c: int, hidden: int) -> dict:
    """PyTorch's LSTM init: w_x (C, 4H), w_h (H, 4H), b (4H,) all U(−1/√H, 1/√H)."""
    import jax
    import jax.numpy as jnp

    from jdl import init as initializers

    u = initializers.uniform(hidden ** -0.5)
    k = jax.random.split(key, 3)
    return {"w_x": u(k[0], (c, 4 * hidden), jnp.float32), "w_h": u(k[1], (hidden, 4 * hidden), jnp.float32),
            "b": u(k[2], (4 * hidden,), jnp.float32)}


def LSTMLayer(hidden: int, sequence: Callable[..., Any]) -> Any:
    """A leaf module running ``sequence(params, x) -> (hs, (h_T, c_T))`` from zero state and
    returning hs (B, T, H); params from ``lstm_init``."""
    from jdl.core import leaf, shape_struct

    def init(key, x):
        return lstm_init(key, shape_struct(x).shape[-1], hidden), {}

    def apply(params, state, x, *, key=None, train=False):
        del key, train
        return sequence(params, x)[0], state

    return leaf(init, apply, "lstm")


def lstm_impl(device: str = "cpu", dtype: str = "float32") -> str:
    """The recurrence jdl's model runs on: the native C++ kernel ('native') for float32 on a CPU
    that can build it (``jdl.kernels.native.available()``), XLA's scans ('fused') elsewhere
    (the bf16 rows, GPUs)."""
    from jdl.kernels import native

    return "native" if device == "cpu" and dtype == "float32" and native.available() else "fused"


def EmbeddingLSTM(hidden: int, unroll: int = UNROLL, impl: str = "fused") -> Any:
    """ids (B, T) → hs (B, T, H): ``jdl.nn.Embedding(V, E)`` (its init and its table ``w``)
    feeding the LSTM through ``jdl.kernels.lstm.embedded_lstm_sequence`` (``impl`` 'fused' or
    'native'), which gathers the input projection from the (V, 4H) table E·W_x + b instead of
    projecting B·T embeddings. Params ``{'embedding': {'w'}, 'lstm': {'w_x', 'w_h', 'b'}}``."""
    import jax

    import jdl
    from jdl.core import leaf
    from jdl.kernels.lstm import embedded_lstm_sequence

    embedding = jdl.nn.Embedding(VOCAB, EMBED)

    def init(key, ids):
        emb, _ = embedding.init(jax.random.fold_in(key, 0), ids)
        return {"embedding": emb, "lstm": lstm_init(jax.random.fold_in(key, 1), EMBED, hidden)}, {}

    def apply(params, state, ids, *, key=None, train=False):
        del key, train
        return embedded_lstm_sequence(params["embedding"]["w"], params["lstm"], ids, unroll=unroll, impl=impl)[0], state

    return leaf(init, apply, "embedding_lstm")


def jdl_model(sequence: Callable[..., Any] | None = None, unroll: int = UNROLL, impl: str = "fused"):
    """serial(EmbeddingLSTM(H, impl=impl), Dense(V)) by default (the benchmark's jdl model, with
    ``impl=lstm_impl(device, dtype)``); with
    ``sequence(params, x)`` (e.g. ``lstm_sequence``), serial(Embedding(V, E), LSTMLayer(H,
    sequence), Dense(V)) — the same network with the embedding applied on its own."""
    import jdl

    if sequence is None:
        return jdl.nn.serial(EmbeddingLSTM(HIDDEN, unroll, impl), jdl.nn.Dense(VOCAB))
    return jdl.nn.serial(jdl.nn.Embedding(VOCAB, EMBED), LSTMLayer(HIDDEN, sequence), jdl.nn.Dense(VOCAB))


def jdl_layers(params: dict) -> list[dict]:
    """The shared layers [embedding, LSTM, head] of either jdl model's params."""
    if "0_embedding_lstm" in params:
        fused = params["0_embedding_lstm"]
        layers = [fused["embedding"], fused["lstm"], params["1_dense"]]
    else:
        layers = [params[n] for n in ("0_embedding", "1_lstm", "2_dense")]
    return [{k: np.asarray(v) for k, v in layer.items()} for layer in layers]


def load_jdl(params: dict, layers: list[dict]) -> dict:
    """Either jdl model's params holding the shared layers [embedding, LSTM, head]."""
    import jax.numpy as jnp

    emb, lstm, head = ({k: jnp.asarray(v) for k, v in layer.items()} for layer in layers)
    if "0_embedding_lstm" in params:
        return {"0_embedding_lstm": {"embedding": emb, "lstm": lstm}, "1_dense": head}
    return {"0_embedding": emb, "1_lstm": lstm, "2_dense": head}


def configure(quick: bool, seed: int, workdir: str) -> dict:
    """Initialize jdl's model once and save its weights (embedding, LSTM, head) for all three."""
    import jax

    model = jdl_model()
    x, _ = data(seed)
    params, _ = model.init(jax.random.key(seed), x)
    layers = jdl_layers(params)
    optimizer = common.OPTIMIZER
    weights = common.save_layers(os.path.join(workdir, f"{NAME}_weights.npz"), layers)
    return {
        "spec": {"name": NAME, "description": f"char-LSTM vocab {VOCAB}, embedding {EMBED}, hidden {HIDDEN}, "
                                               f"{BATCH}x{SEQ} tokens, float32, {optimizer} lr {common.LEARNING_RATE}",
                 "flops": flops(), "min_bytes": min_bytes(optimizer), "params": n_params()},
        "options": {"weights": weights, "optimizer": optimizer, "seed": seed},
    }


def flax_model(dtype: str = "float32"):
    """Embed → RNN(OptimizedLSTMCell) → Dense in flax.linen, computing in ``dtype``."""
    import flax.linen as nn
    import jax.numpy as jnp

    kw = {"dtype": jnp.dtype(dtype), "param_dtype": jnp.float32}

    class CharLSTM(nn.Module):
        @nn.compact
        def __call__(self, ids):
            e = nn.Embed(VOCAB, EMBED, **kw)(ids)
            hs = nn.RNN(nn.OptimizedLSTMCell(HIDDEN, **kw))(e)
            return nn.Dense(VOCAB, **kw)(hs)

    return CharLSTM()


def flax_params(layers: list[dict]) -> dict:
    """jdl's layers in flax's names: the LSTM's (·, 4H) kernels split per gate (i, f, g, o)."""
    import jax.numpy as jnp

    emb, lstm, head = layers
    cell = {}
    for k, gate in enumerate("ifgo"):
        cols = slice(k * HIDDEN, (k + 1) * HIDDEN)
        cell["i" + gate] = {"kernel": jnp.asarray(lstm["w_x"][:, cols])}
        cell["h" + gate] = {"kernel": jnp.asarray(lstm["w_h"][:, cols]), "bias": jnp.asarray(lstm["b"][cols])}
    return {"Embed_0": {"embedding": jnp.asarray(emb["w"])}, "OptimizedLSTMCell_0": cell,
            "Dense_0": {"kernel": jnp.asarray(head["w"]), "bias": jnp.asarray(head["b"])}}


def torch_model(layers: list[dict]):
    """nn.Embedding → nn.LSTM(batch_first) → nn.Linear, logits flattened to (B·T, V)."""
    import torch

    emb, lstm, head = layers

    class CharLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(VOCAB, EMBED)
            self.lstm = torch.nn.LSTM(EMBED, HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, VOCAB)

        def forward(self, ids):
            hs, _ = self.lstm(self.embed(ids))  # (B, T, H)
            return self.head(hs).reshape(-1, VOCAB)  # (B·T, V)

    net = CharLSTM()
    with torch.no_grad():
        net.embed.weight.copy_(torch.from_numpy(np.array(emb["w"])))
        net.lstm.weight_ih_l0.copy_(torch.from_numpy(np.ascontiguousarray(lstm["w_x"].T)))
        net.lstm.weight_hh_l0.copy_(torch.from_numpy(np.ascontiguousarray(lstm["w_h"].T)))
        net.lstm.bias_ih_l0.copy_(torch.from_numpy(np.array(lstm["b"])))
        net.lstm.bias_hh_l0.zero_()
    net.lstm.bias_hh_l0.requires_grad_(False)  # one trained bias, as in jdl and flax
    common.torch_linear(net.head, head)
    return net


def _check_torch_bf16_lstm(net: Any, x: np.ndarray, device: str) -> None:
    """Raise ``Skip`` where this PyTorch build cannot run ``nn.LSTM`` under bfloat16 autocast:
    oneDNN has no bfloat16 LSTM primitive on some CPUs ("could not create a primitive
    descriptor"), a property of the machine, not of the workload. Probes a forward and backward
    on one sequence of ``x``."""
    import torch

    dev = "cuda" if device == "gpu" else device
    probe = net.to(dev)
    try:
        with torch.autocast(dev, dtype=torch.bfloat16):
            out = probe(torch.from_numpy(np.ascontiguousarray(x[:1])).to(dev))
        out.float().sum().backward()
    except RuntimeError as err:
        if "primitive" not in str(err):
            raise
        raise common.Skip(f"PyTorch's nn.LSTM cannot run in bfloat16 on this CPU: {str(err)[:120]}") from err
    finally:
        probe.zero_grad(set_to_none=True)


def build(impl: str, options: dict, device: str = "cpu"):
    """The Runner of one implementation: 'jdl', 'flax' or 'torch'."""
    layers = common.load_layers(options["weights"])
    x, y = data(options["seed"])
    opt, dtype = options["optimizer"], common.compute_dtype(options)
    if impl == "jdl":
        return common.jdl_runner(jdl_model(impl=lstm_impl(device, dtype)), layers, opt, x, y, dtype, load=load_jdl)
    if impl == "flax":
        import jax.numpy as jnp

        return common.flax_runner(flax_model(dtype), flax_params(layers), opt, (jnp.asarray(x), jnp.asarray(y)))
    if impl == "torch":
        net = torch_model(layers)
        if dtype == "bfloat16":
            _check_torch_bf16_lstm(net, x, device)
        return common.torch_runner(net, opt, x, y.reshape(-1), device, dtype)
    raise ValueError(f"char_lstm: unknown implementation {impl!r}; expected jdl, flax or torch")
