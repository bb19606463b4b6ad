"""Vanishing and exploding gradients through time in a vanilla RNN, clipping, and the LSTM.

The course's RNN topic: BPTT multiplies one factor per step,

    ∂h_t/∂h_0 = Π_{s=t..1} diag(1 − h_s²) W_hh          (h_t = tanh(W_hh h_{t−1} + W_xh x_t + b))

so repeated multiplication by W_hh makes the gradient vanish (eigenvalues < 1) or explode
(> 1). "Exploding: clip gradients. Vanishing: use gates." This experiment measures all three
claims with ``jdl.autodiff.bptt``, for a 32-unit RNN and T = 1..100:

* W_hh = ρ·Q with Q a random orthogonal matrix and ρ = 0.5, 1.0, 1.5: its spectral radius is ρ
  and every singular value is ρ, so the linear-regime norm is exactly ρ^T (a Gaussian W_hh
  rescaled to spectral radius ρ, also run, follows ρ^T after a non-normal prefactor);
* two regimes. *Linear*: x = 0 and h_0 = 0, the fixed point of tanh, where tanh' = 1 and the
  Jacobian is the bare product W_hh^T — the course's statement, measured exactly. *tanh*: inputs
  x_t ~ N(0, 1) drive the state, and the factors 1 − h_t² < 1 damp every step (a saturated
  ρ = 1.5 network then vanishes instead of exploding);
* ``clip_by_global_norm(1)`` applied to the gradient of L_T = u·h_T with respect to
  (w_xh, w_hh, b, h_0): it caps the exploding norms at 1 and leaves vanishing ones untouched;
* an LSTM with the same sizes (forget-gate bias 1 and 3), driven by the same inputs: the
  forget-gate product Π f_s (the cell-state path) and the full ‖∂c_T/∂c_0‖.

Everything runs in float64 so that norms down to 1e−300 are measured, not rounded to 0.

    python -m experiments.rnn_gradients --workdir=runs/rnn_gradients [--quick]
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jdl.autodiff import bptt
from jdl.optim import clip_by_global_norm, global_norm

RHOS = (0.5, 1.0, 1.5)


@dataclass(frozen=True)
class Config:
    """Sizes of the experiment: hidden units H, input features C, longest sequence T."""
    hidden: int = 32
    d_in: int = 8
    seq_len: int = 100
    clip: float = 1.0
    forget_biases: tuple[float, ...] = (1.0, 3.0)


def recurrent_weights(rng: np.random.Generator, hidden: int, rho: float, kind: str) -> np.ndarray:
    """W_hh with spectral radius ρ: ρ·Q (Q orthogonal, from the QR of a Gaussian matrix; every
    singular value is then ρ) or a Gaussian matrix divided by its spectral radius, times ρ.
    Shapes: → (H, H)."""
    g = rng.standard_normal((hidden, hidden))
    if kind == "orthogonal":
        q, r = np.linalg.qr(g)
        return rho * q * np.sign(np.diag(r))[None, :]  # Haar-distributed Q
    if kind == "gaussian":
        return rho * g / np.max(np.abs(np.linalg.eigvals(g)))
    raise ValueError(f"rnn_gradients: unknown W_hh kind {kind!r}; known: 'orthogonal', 'gaussian'")


def rnn_norms(params: dict, x: jax.Array, u: jax.Array, clip: float) -> dict[str, np.ndarray]:
    """For every t = 1..T: ‖∂h_t/∂h_0‖₂ (``bptt.rnn_state_jacobian``), and for L_t = u·h_t the
    gradient g = ∂L_t/∂(w_xh, w_hh, b, h_0) by ``bptt.rnn_backward``: ‖∂L_t/∂h_0‖, ‖g‖ and
    ‖clip_by_global_norm(clip)(g)‖. Shapes: x (T, C), u (H,) → each (T,)."""
    T, H = x.shape[0], u.shape[0]
    h0 = jnp.zeros(H, x.dtype)
    _, jac_norm = bptt.rnn_state_jacobian(params, h0, x)
    _, cache = bptt.rnn_forward(params, h0, x)
    clipper = clip_by_global_norm(clip)

    def at(t):  # L_t = u·h_t: the loss reads only the state at step t (0-based)
        dL_dh = jnp.where((jnp.arange(T) == t)[:, None], u[None, :], 0.0)  # (T, H)
        grads, dh0, _ = bptt.rnn_backward(params, cache, dL_dh)
        g = {**grads, "h0": dh0}
        clipped, _ = clipper.update(g, clipper.init(g))
        return jnp.linalg.norm(dh0), global_norm(g), global_norm(clipped), jnp.linalg.norm(clipped["h0"])

    dh0, raw, clipped, clipped_h0 = jax.vmap(at)(jnp.arange(T))
    return dict(jacobian=jac_norm, dL_dh0=dh0, grad=raw, grad_clipped=clipped, dL_dh0_clipped=clipped_h0)


def lstm_params(rng: np.random.Generator, cfg: Config, forget_bias: float) -> dict:
    """LSTM weights w_x ~ N(0, 1/C), w_h ~ N(0, 1/H) (gate order i, f, g, o), b = 0 except the
    forget gate's b_f = ``forget_bias``. Shapes: w_x (C, 4H), w_h (H, 4H), b (4H,)."""
    H, C = cfg.hidden, cfg.d_in
    b = np.zeros(4 * H)
    b[H:2 * H] = forget_bias
    return {"w_x": rng.standard_normal((C, 4 * H)) / np.sqrt(C),
            "w_h": rng.standard_normal((H, 4 * H)) / np.sqrt(H), "b": b}


def lstm_norms(params: dict, x: jax.Array) -> dict[str, np.ndarray]:
    """For every t: the forget-gate product Π_{s≤t} f_s (``bptt.lstm_cell_path``; its largest and
    mean unit), the full ‖∂c_t/∂c_0‖₂ (forward-mode through ``bptt.lstm_forward``, every path
    through h and the gates included) and ‖∂h_t/∂h_0‖₂. Shapes: x (T, C) → each (T,)."""
    H = params["w_h"].shape[0]
    zeros = jnp.zeros(H, x.dtype)
    path = bptt.lstm_cell_path(params, zeros, zeros, x)                       # (T, H)
    dc_dc0 = jax.jacfwd(lambda c0: bptt.lstm_forward(params, zeros, c0, x)[1])(zeros)  # (T, H, H)
    dh_dh0 = jax.jacfwd(lambda h0: bptt.lstm_forward(params, h0, zeros, x)[0])(zeros)  # (T, H, H)
    spectral = lambda j: jnp.linalg.norm(j, ord=2, axis=(-2, -1))  # noqa: E731
    return {"forget_product_max": path.max(-1), "forget_product_mean": path.mean(-1),
            "dc_dc0": spectral(dc_dc0), "dh_dh0": spectral(dh_dh0)}


def measure(cfg: Config, seed: int) -> dict:
    """Every curve of the experiment, in float64: {'rnn': {kind: {regime: {ρ: norms}}},
    'lstm': {'b_f=…': norms}}; numpy arrays of length T."""
    rng = np.random.default_rng(seed)
    x_driven = rng.standard_normal((cfg.seq_len, cfg.d_in))
    w_xh = rng.standard_normal((cfg.d_in, cfg.hidden)) / np.sqrt(cfg.d_in)
    u = rng.standard_normal(cfg.hidden) / np.sqrt(cfg.hidden)
    inputs = {"linear": np.zeros_like(x_driven), "tanh": x_driven}
    out: dict = {"rnn": {}, "lstm": {}}
    with jax.enable_x64(True):
        rnn, lstm = jax.jit(rnn_norms, static_argnums=3), jax.jit(lstm_norms)  # one compile each
        for kind in ("orthogonal", "gaussian"):
            w_hh = {rho: recurrent_weights(rng, cfg.hidden, rho, kind) for rho in RHOS}
            out["rnn"][kind] = {regime: {str(rho): rnn(
                {"w_xh": jnp.asarray(w_xh), "w_hh": jnp.asarray(w_hh[rho]), "b": jnp.zeros(cfg.hidden)},
                jnp.asarray(x), jnp.asarray(u), cfg.clip) for rho in RHOS} for regime, x in inputs.items()}
        for b_f in cfg.forget_biases:
            params = jax.tree.map(jnp.asarray, lstm_params(rng, cfg, b_f))
            out["lstm"][f"b_f={b_f:g}"] = lstm(params, jnp.asarray(x_driven))
        return jax.tree.map(np.asarray, out)


def plot(curves: dict, cfg: Config, workdir: str) -> str:
    """Three log-scale panels: the linear regime with ρ^T, the tanh regime beside the LSTM, and
    the loss gradient before and after clipping."""
    from matplotlib.figure import Figure

    from experiments import common

    t = np.arange(1, cfg.seq_len + 1)
    colors = dict(zip(map(str, RHOS), ("tab:blue", "tab:green", "tab:red")))
    fig = Figure(figsize=(16, 4.6))
    axes = fig.subplots(1, 3)
    for rho, c in colors.items():
        orth, gauss = curves["rnn"]["orthogonal"], curves["rnn"]["gaussian"]
        axes[0].semilogy(t, orth["linear"][rho]["jacobian"], color=c, label=f"ρ = {rho}, W_hh = ρ·Q")
        axes[0].semilogy(t, gauss["linear"][rho]["jacobian"], color=c, ls=":", label=f"ρ = {rho}, Gaussian")
        axes[0].semilogy(t, float(rho) ** t, color="k", lw=0.6, ls="--")
        axes[1].semilogy(t, orth["tanh"][rho]["jacobian"], color=c, label=f"RNN ρ = {rho}: ‖∂h_T/∂h_0‖")
        axes[2].semilogy(t, orth["linear"][rho]["grad"], color=c, label=f"ρ = {rho}, raw")
        axes[2].semilogy(t, orth["linear"][rho]["grad_clipped"], color=c, ls="--", lw=2.5, alpha=0.6,
                         label=f"ρ = {rho}, clipped")
        axes[2].semilogy(t, orth["linear"][rho]["dL_dh0_clipped"], color=c, ls=":",
                         label=f"ρ = {rho}, its ∂L/∂h_0 part, clipped")
    for (name, lstm), c in zip(curves["lstm"].items(), ("tab:purple", "tab:orange")):
        axes[1].semilogy(t, lstm["dc_dc0"], color=c, label=f"LSTM {name}: ‖∂c_T/∂c_0‖")
        axes[1].semilogy(t, lstm["forget_product_max"], color=c, ls="--", label=f"LSTM {name}: max Π f")
    axes[0].set(title="linear regime (x = 0, h = 0): ‖∂h_T/∂h_0‖₂; dashed ρ^T", ylabel="norm")
    axes[1].set(title="tanh regime (inputs x_t ~ N(0, 1))", ylim=(1e-60, 1e3))
    axes[2].set(title=f"linear regime: ‖∂L_T/∂(θ, h_0)‖, L_T = u·h_T; clip at {cfg.clip:g}")
    for ax in axes:
        ax.set_xlabel("T (steps back)")
        ax.legend(fontsize=7)
    return common.save_figure(fig, workdir, "rnn_gradients.png")


def run(workdir: str, quick: bool = False, seed: int = 0) -> dict:
    """Measure every curve, write results.json and rnn_gradients.png; returns the results with
    a summary at the longest T ('at_T')."""
    from experiments import common

    cfg = Config(hidden=16, seq_len=30) if quick else Config()
    curves = measure(cfg, seed)
    at_T = {f"rnn {kind} {regime} rho={rho}": {k: float(v[-1]) for k, v in norms.items()}
            for kind, regimes in curves["rnn"].items() for regime, by_rho in regimes.items()
            for rho, norms in by_rho.items()}
    at_T.update({f"lstm {name}": {k: float(v[-1]) for k, v in n.items()} for name, n in curves["lstm"].items()})
    results = {"config": cfg.__dict__, "seed": seed, "at_T": at_T, "curves": curves}
    results["plot"] = plot(curves, cfg, workdir)
    common.write_results(workdir, results)
    return results


if __name__ == "__main__":
    from experiments import common

    common.main(run, "rnn_gradients")
