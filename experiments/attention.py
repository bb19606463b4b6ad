"""Why attention divides by √d_k, and what a trained attention layer looks at.

(a) Saturation. For queries and keys with independent unit-variance entries the dot product
⟨q, k⟩ = Σ_i q_i k_i is a sum of d_k unit-variance terms: Var⟨q, k⟩ = d_k. Unscaled, the logits
of a softmax over n keys spread like √d_k, the largest one takes all the weight (entropy → 0)
and the softmax's Jacobian ∂p/∂s = diag(p) − ppᵀ goes to 0 with it, so no gradient reaches the
queries and keys. Divided by √d_k (the course's r_ij = ⟨q_i, k_j⟩/√d_k) the logits keep unit
variance at every d_k, the entropy stays near that of a unit-variance softmax and the gradient
stays. Measured: the logits' variance, the weights' entropy H(p) = −Σ_j p_j log p_j, the
largest weight and ‖∂p/∂s‖_F (by autodiff), against d_k, both ways.

(b) Attention maps. One MultiHeadAttention layer on token embeddings + learned positions, then
a Dense read-out, is trained to reverse a digit string (y_t = x_{n−1−t}, data drawn offline
from a seeded generator). Only the attention moves information between positions, and the
answer at position t sits at position n−1−t: a layer that solves the task must put its weight
on the anti-diagonal. Reported: the attention mass on that key, averaged over the queries of a
held-out set, before training (≈ 1/n) and after, with the maps as heatmaps.

    python -m experiments.attention --workdir=runs/attention [--quick]
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

import jdl
from jdl.nn.attention import attention_scores


@jax.jit
def softmax_stats(s: jax.Array) -> dict:
    """Statistics of p = softmax(s) over the last axis, averaged over rows: the logits' variance
    Var s, the entropy H(p) = −Σ_j p_j log p_j (nats), max_j p_j, and ‖∂p/∂s‖_F of each row's
    Jacobian (by reverse-mode autodiff; analytically diag(p) − ppᵀ), mean and median over rows.

    Shapes: s (R, n) → dict of scalars.
    """
    p = jdl.nn.softmax(s, axis=-1)  # (R, n)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(p), 0.0), axis=-1)  # (R,)
    jac = jax.vmap(jax.jacrev(lambda row: jdl.nn.softmax(row, axis=-1)))(s)  # (R, n, n)
    return {"logit_var": jnp.var(s), "entropy": jnp.mean(entropy),
            "max_weight": jnp.mean(jnp.max(p, axis=-1)),
            "jacobian_norm": jnp.mean(jnp.linalg.norm(jac, axis=(-2, -1))),
            "median_jacobian_norm": jnp.median(jnp.linalg.norm(jac, axis=(-2, -1)))}


@jax.jit
def logits_both_ways(q: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The unscaled logits ⟨q, k_j⟩ and the scaled ⟨q, k_j⟩/√d_k (``attention_scores``) of one
    query per row against that row's keys.

    Shapes: q (R, 1, d_k), k (R, n, d_k) → unscaled, scaled (R, n).
    """
    unscaled = jnp.einsum("rqd,rkd->rk", q, k)  # (R, n)
    return unscaled, attention_scores(q, k)[:, 0]  # (R, n) each


def saturation(seed: int, d_ks: tuple[int, ...], n_keys: int, rows: int) -> dict:
    """For each d_k: ``rows`` queries q ~ N(0, I_{d_k}), each against its own ``n_keys`` keys
    k ~ N(0, I_{d_k}) (numpy's generator, seeded); the statistics of ``softmax_stats`` on the
    unscaled logits ⟨q, k⟩ and on the scaled ones ⟨q, k⟩/√d_k.

    Returns {"unscaled": {stat: [per d_k]}, "scaled": {...}, "uniform": the entropy log n and
    Jacobian norm √(n − 1)/n of uniform weights}.
    """
    rng = np.random.default_rng(seed)
    out = {"unscaled": {}, "scaled": {}}
    for d_k in d_ks:
        q = rng.standard_normal((rows, 1, d_k), np.float32)  # (R, 1, d_k): one query per row
        k = rng.standard_normal((rows, n_keys, d_k), np.float32)  # (R, n, d_k)
        for name, s in zip(("unscaled", "scaled"), logits_both_ways(q, k)):
            for stat, value in softmax_stats(s).items():
                out[name].setdefault(stat, []).append(float(value))
    out["uniform"] = {"entropy": math.log(n_keys), "jacobian_norm": math.sqrt(n_keys - 1) / n_keys}
    return out


@dataclasses.dataclass(frozen=True)
class ReversalConfig:
    """The reversal task and its one-layer attention model."""

    seq_len: int = 8
    vocab: int = 10
    d_model: int = 32
    num_heads: int = 1
    steps: int = 1500
    batch: int = 64
    lr: float = 3e-3
    n_test: int = 512
    every: int = 100


def reversal_data(rng: np.random.Generator, count: int, cfg: ReversalConfig):
    """``count`` digit strings x and their reversals y_t = x_{n−1−t}.

    Shapes: → x, y (count, seq_len) int32.
    """
    x = rng.integers(0, cfg.vocab, (count, cfg.seq_len), dtype=np.int32)
    return x, x[:, ::-1].copy()


def reversal_model(cfg: ReversalConfig) -> jdl.Module:
    """logits = Dense(MHA(E[x] + P)): token embeddings plus learned positions P (seq_len, d),
    one self-attention layer with no residual path, a Dense read-out to the vocabulary.

    ``apply(..., return_weights=True)`` returns (logits, weights (B, h, T, T)).
    Shapes: ids (B, T) int → logits (B, T, vocab).
    """
    emb = jdl.nn.Embedding(cfg.vocab, cfg.d_model)
    mha = jdl.nn.MultiHeadAttention(cfg.num_heads, cfg.d_model)
    read = jdl.nn.Dense(cfg.vocab)

    def init(key, ids):
        k_e, k_m, k_r, k_p = jax.random.split(key, 4)
        h = jax.ShapeDtypeStruct((*ids.shape, cfg.d_model), jnp.float32)  # (B, T, d)
        pos = jax.random.normal(k_p, (cfg.seq_len, cfg.d_model)) / math.sqrt(cfg.d_model)
        return {"embed": emb.init(k_e, ids)[0], "pos": {"w": pos},
                "mha": mha.init(k_m, h)[0], "read": read.init(k_r, h)[0]}, {}

    def apply(params, state, ids, *, return_weights=False, key=None, train=False):
        h = emb.apply(params["embed"], {}, ids)[0] + params["pos"]["w"][None]  # (B, T, d)
        (z, p), _ = mha.apply(params["mha"], {}, h, return_weights=True)  # (B, T, d), (B, h, T, T)
        logits = read.apply(params["read"], {}, z)[0]  # (B, T, V)
        return ((logits, p) if return_weights else logits), state

    return jdl.core.leaf(init, apply, "reversal_attention", accepts={"return_weights"})


def target_mass(p: jax.Array) -> jax.Array:
    """Σ over queries of the weight on the right key (t → n−1−t), averaged over examples,
    heads and queries: 1 for a perfect anti-diagonal, 1/n for uniform weights.

    Shapes: p (B, h, T, T) → scalar.
    """
    return jnp.mean(jnp.diagonal(p[..., ::-1], axis1=-2, axis2=-1))  # p[b, h, t, T−1−t]


def train_reversal(cfg: ReversalConfig, seed: int) -> dict:
    """Train ``reversal_model`` with Adam on fresh batches; the held-out set's target mass and
    accuracy every ``cfg.every`` steps, and the weights before and after."""
    rng = np.random.default_rng(seed)
    x_test, y_test = (jnp.asarray(a) for a in reversal_data(rng, cfg.n_test, cfg))
    model, opt = reversal_model(cfg), jdl.optim.adam(cfg.lr)
    ts = jdl.train.init_train_state(model, opt, x_test[:1], seed=seed)
    step = jdl.train.make_step(jdl.train.supervised(model, jdl.losses.softmax_cross_entropy), opt)

    @jax.jit
    def evaluate(params):
        logits, p = model.apply(params, {}, x_test, return_weights=True)[0]
        hit = jnp.argmax(logits, -1) == y_test  # (B, T)
        return {"target_mass": target_mass(p), "token_accuracy": jnp.mean(hit),
                "exact_match": jnp.mean(jnp.all(hit, -1))}, p

    history, losses = [], []
    weights_before = np.asarray(evaluate(ts.params)[1])
    for t in range(cfg.steps + 1):
        if t % cfg.every == 0 or t == cfg.steps:
            history.append({"step": t, **{k: float(v) for k, v in evaluate(ts.params)[0].items()}})
        if t == cfg.steps:
            break
        ts, metrics = step(ts, reversal_data(rng, cfg.batch, cfg))
        losses.append(float(metrics["loss"]))
    weights_after = np.asarray(evaluate(ts.params)[1])  # (n_test, h, T, T)
    return {"config": dataclasses.asdict(cfg), "history": history, "loss": losses,
            "before": history[0], "after": history[-1], "chance_mass": 1.0 / cfg.seq_len,
            "example": np.asarray(x_test[0]).tolist(), "weights_before": weights_before[0],
            "weights_after": weights_after[0], "mean_weights_before": weights_before.mean(0),
            "mean_weights_after": weights_after.mean(0)}


def plot_saturation(sat: dict, d_ks, n_keys: int, workdir: str) -> None:
    """Three panels against d_k: the logits' variance, the entropy, ‖∂p/∂s‖_F."""
    from matplotlib.figure import Figure

    from experiments import common

    fig = Figure(figsize=(15, 4.2))
    axes = fig.subplots(1, 3)
    for name, style, c in (("unscaled", "o-", "C0"), ("scaled", "s-", "C1")):
        label = "⟨q, k⟩" if name == "unscaled" else "⟨q, k⟩/√d_k"
        axes[0].loglog(d_ks, sat[name]["logit_var"], style, color=c, label=label)
        axes[1].semilogx(d_ks, sat[name]["entropy"], style, color=c, label=label)
        axes[2].loglog(d_ks, sat[name]["jacobian_norm"], style, color=c, label=f"{label}, mean")
        axes[2].loglog(d_ks, sat[name]["median_jacobian_norm"], style[0] + "--", color=c,
                       label=f"{label}, median")
    axes[0].loglog(d_ks, d_ks, "k:", label="d_k")
    axes[1].axhline(sat["uniform"]["entropy"], color="k", ls=":", label=f"uniform, log {n_keys}")
    axes[2].axhline(sat["uniform"]["jacobian_norm"], color="k", ls=":", label="uniform weights")
    axes[0].set(xlabel="d_k", ylabel="Var of the logits", title="logit variance")
    axes[1].set(xlabel="d_k", ylabel="H(p) (nats)", title=f"entropy of the weights over {n_keys} keys")
    axes[2].set(xlabel="d_k", ylabel="‖∂p/∂s‖_F", title="softmax Jacobian (the gradient's gate)")
    for ax in axes:
        ax.legend(fontsize=8)
    common.save_figure(fig, workdir, "attention_saturation.png")


def plot_maps(rev: dict, workdir: str) -> None:
    """Heatmaps (head 0): one test string before and after training, the mean map after, and
    the target mass during training."""
    from matplotlib.figure import Figure

    from experiments import common

    fig = Figure(figsize=(17, 4.2))
    axes = fig.subplots(1, 4)
    ticks = [str(v) for v in rev["example"]]
    for ax, w, title in ((axes[0], rev["weights_before"][0], "before training"),
                         (axes[1], rev["weights_after"][0], "after training"),
                         (axes[2], rev["mean_weights_after"][0], "after, mean over the test set")):
        im = ax.imshow(np.asarray(w), vmin=0, vmax=1, cmap="viridis")
        ax.set(xlabel="key position j", ylabel="query position t", title=title)
        if "mean" not in title:
            ax.set(xticks=range(len(ticks)), xticklabels=ticks, yticks=range(len(ticks)),
                   yticklabels=ticks[::-1], xlabel="key (input digit)", ylabel="query (digit to output)")
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    h = rev["history"]
    axes[3].plot([r["step"] for r in h], [r["target_mass"] for r in h], "o-", label="mass on x_{n−1−t}")
    axes[3].plot([r["step"] for r in h], [r["exact_match"] for r in h], "s-", label="exact match")
    axes[3].axhline(rev["chance_mass"], color="k", ls=":", label="1/n (uniform)")
    axes[3].set(xlabel="step", ylim=(0, 1.02), title="held-out reversal")
    axes[3].legend(fontsize=8)
    common.save_figure(fig, workdir, "attention_maps.png")


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """The saturation sweep and the reversal maps; writes results.json,
    attention_saturation.png and attention_maps.png."""
    from experiments import common

    d_ks = tuple(2 ** i for i in range(2, 11))  # 4 … 1024
    n_keys, rows = 64, (64 if quick else 512)
    sat = saturation(seed, d_ks, n_keys, rows)
    cfg = ReversalConfig(steps=200, every=50, n_test=256) if quick else ReversalConfig()
    rev = train_reversal(cfg, seed)
    results = {"saturation": {"d_k": list(d_ks), "n_keys": n_keys, "rows": rows, **sat},
               "reversal": rev}
    plot_saturation(sat, d_ks, n_keys, workdir)
    plot_maps(rev, workdir)
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "attention")
