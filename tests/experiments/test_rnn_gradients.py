import jax
import numpy as np
import pytest

from experiments import rnn_gradients


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rnn_gradients")
    return rnn_gradients.run(str(workdir), quick=True), workdir


def test_linear_regime_norm_is_rho_to_the_T(quick):
    r, _ = quick
    lin = r["curves"]["rnn"]["orthogonal"]["linear"]
    T = np.arange(1, r["config"]["seq_len"] + 1)
    for rho in rnn_gradients.RHOS:  # W_hh = ρ·Q: every singular value of W_hh^T is ρ^T
        np.testing.assert_allclose(lin[str(rho)]["jacobian"], rho ** T, rtol=1e-9)
    # ∂L/∂h_0 = u·(W_hh^T)^T keeps ‖u‖ times the same factor
    ratio = lin["0.5"]["dL_dh0"] / 0.5 ** T
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)


def test_gaussian_weights_against_numpy_matrix_powers():
    cfg = rnn_gradients.Config(hidden=6, d_in=2, seq_len=12)
    rng = np.random.default_rng(3)
    w_hh = rnn_gradients.recurrent_weights(rng, cfg.hidden, 1.5, "gaussian")
    assert np.max(np.abs(np.linalg.eigvals(w_hh))) == pytest.approx(1.5)
    with jax.enable_x64(True):
        params = {"w_xh": np.ones((2, 6)), "w_hh": w_hh, "b": np.zeros(6)}
        norms = rnn_gradients.rnn_norms(params, np.zeros((12, 2)), np.ones(6), clip=1.0)
    want = [np.linalg.norm(np.linalg.matrix_power(w_hh.T, t), 2) for t in range(1, 13)]
    np.testing.assert_allclose(norms["jacobian"], want, rtol=1e-10)


def test_clipping_caps_the_norm_and_cannot_undo_vanishing(quick):
    r, _ = quick
    c = r["config"]["clip"]
    for regime in ("linear", "tanh"):
        for rho, n in r["curves"]["rnn"]["orthogonal"][regime].items():
            np.testing.assert_allclose(n["grad_clipped"], np.minimum(n["grad"], c), rtol=1e-9)
            # the rescaling keeps the direction, so the h_0 share shrinks with the whole
            np.testing.assert_allclose(n["dL_dh0_clipped"], n["dL_dh0"] * np.minimum(1, c / n["grad"]), rtol=1e-9)
    lin = r["curves"]["rnn"]["orthogonal"]["linear"]
    assert lin["1.5"]["grad"][-1] > 1e4 and lin["0.5"]["dL_dh0_clipped"][-1] < 1e-8


def test_tanh_damps_and_the_forget_bias_keeps_the_cell_path(quick):
    r, workdir = quick
    rnn = r["curves"]["rnn"]["orthogonal"]
    for rho in ("0.5", "1.0", "1.5"):  # 1 − h² ≤ 1: the driven network is below its linearization
        assert np.all(rnn["tanh"][rho]["jacobian"] <= rnn["linear"][rho]["jacobian"] * (1 + 1e-12))
    lstm = r["curves"]["lstm"]
    # σ(3) ≈ 0.95 per step vs σ(1) ≈ 0.73: the cell path of b_f = 3 decays far slower (T = 30)
    assert lstm["b_f=3"]["forget_product_max"][-1] > 1e2 * lstm["b_f=1"]["forget_product_max"][-1]
    assert np.all(np.diff(lstm["b_f=1"]["forget_product_max"]) <= 0)  # a product of f ∈ (0, 1)
    assert (workdir / "rnn_gradients.png").exists() and (workdir / "results.json").exists()
