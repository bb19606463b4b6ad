import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.autodiff import bptt, compare_grads, grad_report

T, C, H, B = 7, 3, 4, 2


def rnn_params(rng, scale=0.6):
    return {"w_xh": jnp.asarray(rng.normal(size=(C, H)) * scale),
            "w_hh": jnp.asarray(rng.normal(size=(H, H)) * scale),
            "b": jnp.asarray(rng.normal(size=H) * 0.1)}


def lstm_params(rng, scale=0.5):
    return {"w_x": jnp.asarray(rng.normal(size=(C, 4 * H)) * scale),
            "w_h": jnp.asarray(rng.normal(size=(H, 4 * H)) * scale),
            "b": jnp.asarray(rng.normal(size=4 * H) * 0.3)}


def sequence(rng, batched):
    lead = (B,) if batched else ()
    return jnp.asarray(rng.normal(size=(*lead, T, C))), jnp.asarray(rng.normal(size=(*lead, H)) * 0.5)


def loop_rnn(params, h0, x):
    """The reference forward pass: a plain Python loop over t, independent of bptt.rnn_forward."""
    xs = x if x.ndim == 3 else x[None]
    h, out = h0.reshape(-1, h0.shape[-1]), []
    for t in range(xs.shape[1]):
        h = jnp.tanh(xs[:, t] @ params["w_xh"] + h @ params["w_hh"] + params["b"][None])
        out.append(h)
    hs = jnp.stack(out, axis=1)  # (B, T, H)
    return hs if x.ndim == 3 else hs[0]


# losses written on the hidden states h, with their gradient ∂L/∂h_t|direct written by hand
LOSSES = {
    "sum_t <v_t, h_t>": (lambda h, v: jnp.sum(v * h), lambda h, v: v),
    "<v_T, h_T>": (lambda h, v: jnp.sum(v[..., -1, :] * h[..., -1, :]),
                   lambda h, v: jnp.zeros_like(h).at[..., -1, :].set(v[..., -1, :])),
    "|h_T|^2": (lambda h, v: jnp.sum(h[..., -1, :] ** 2),
                lambda h, v: jnp.zeros_like(h).at[..., -1, :].set(2 * h[..., -1, :])),
}


def test_rnn_forward_equals_a_plain_loop():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        params = rnn_params(rng)
        for batched in (False, True):
            x, h0 = sequence(rng, batched)
            h, cache = bptt.rnn_forward(params, h0, x)
            assert h.shape == (*x.shape[:-1], H)
            np.testing.assert_allclose(h, loop_rnn(params, h0, x), rtol=1e-14)
            assert set(cache) == {"x", "h0", "h"}


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_rnn_backward_equals_jax_grad(loss, batched):
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        params, (x, h0) = rnn_params(rng), sequence(rng, batched)
        v = jnp.asarray(rng.normal(size=(*x.shape[:-1], H)))
        value, dvalue = LOSSES[loss]
        h, cache = bptt.rnn_forward(params, h0, x)
        mine = bptt.rnn_backward(params, cache, dvalue(h, v))
        auto = jax.grad(lambda p, h0, x: value(loop_rnn(p, h0, x), v), argnums=(0, 1, 2))(params, h0, x)
        errors = compare_grads(mine, auto)
        jitted = compare_grads(jax.jit(bptt.rnn_backward)(params, cache, dvalue(h, v)), mine)
    assert max(errors.values()) < 1e-12, grad_report(errors, 1e-12)
    assert max(jitted.values()) < 1e-14
    assert mine[1].shape == h0.shape and mine[2].shape == x.shape


def test_rnn_backward_sums_one_gradient_per_unrolled_copy():
    # untie w_hh: copy t gets its own w_hh^(t); BPTT's ∂L/∂w_hh is the sum of their gradients
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        params, (x, h0) = rnn_params(rng), sequence(rng, False)
        v = jnp.asarray(rng.normal(size=(T, H)))

        def untied_loss(copies):
            h, total = h0, 0.0
            for t in range(T):
                h = jnp.tanh(x[t] @ params["w_xh"] + h @ copies[t] + params["b"])
                total = total + v[t] @ h
            return total

        per_copy = jax.grad(untied_loss)([params["w_hh"]] * T)
        grads, _, _ = bptt.rnn_backward(params, bptt.rnn_forward(params, h0, x)[1], v)
        summed = sum(per_copy)
    np.testing.assert_allclose(grads["w_hh"], summed, rtol=1e-12, atol=1e-14)
    assert min(float(np.abs(g).max()) for g in per_copy) > 1e-3  # every copy contributes


@pytest.mark.torch
def test_rnn_forward_and_backward_equal_torch_rnn():
    torch = pytest.importorskip("torch")
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        params, (x, h0) = rnn_params(rng), sequence(rng, True)
        v = jnp.asarray(rng.normal(size=(B, T, H)))
        h, cache = bptt.rnn_forward(params, h0, x)
        grads, dh0, dx = bptt.rnn_backward(params, cache, v)
    rnn = torch.nn.RNN(C, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():  # torch: h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh)
        rnn.weight_ih_l0.copy_(torch.tensor(np.asarray(params["w_xh"]).T))
        rnn.weight_hh_l0.copy_(torch.tensor(np.asarray(params["w_hh"]).T))
        rnn.bias_ih_l0.copy_(torch.tensor(np.asarray(params["b"])))
        rnn.bias_hh_l0.zero_()
    tx = torch.tensor(np.asarray(x), requires_grad=True)
    th0 = torch.tensor(np.asarray(h0)[None], requires_grad=True)
    th, _ = rnn(tx, th0)
    (th * torch.tensor(np.asarray(v))).sum().backward()
    np.testing.assert_allclose(h, th.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grads["w_hh"], rnn.weight_hh_l0.grad.numpy().T, rtol=1e-10)
    np.testing.assert_allclose(grads["w_xh"], rnn.weight_ih_l0.grad.numpy().T, rtol=1e-10)
    np.testing.assert_allclose(grads["b"], rnn.bias_ih_l0.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dh0, th0.grad.numpy()[0], rtol=1e-10)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("batched", [False, True])
def test_state_jacobian_equals_jacfwd_and_jacrev(batched):
    with jax.enable_x64(True):
        rng = np.random.default_rng(4)
        params, (x, h0) = rnn_params(rng, scale=0.9), sequence(rng, batched)
        jac, norms = bptt.rnn_state_jacobian(params, h0, x)
        h_of_h0 = lambda h0: bptt.rnn_forward(params, h0, x)[0]  # noqa: E731
        fwd, rev = jax.jacfwd(h_of_h0)(h0), jax.jacrev(h_of_h0)(h0)  # [..t, j, ..i]
        if batched:  # sample b's states depend only on sample b's h_0: keep the diagonal blocks
            fwd, rev = (jnp.stack([r[b, :, :, b] for b in range(B)]) for r in (fwd, rev))
        assert jac.shape == (*x.shape[:-1], H, H) and norms.shape == x.shape[:-1]
        np.testing.assert_allclose(jac, fwd, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(jac, rev, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(norms, np.linalg.norm(np.asarray(fwd), ord=2, axis=(-2, -1)), rtol=1e-12)


@pytest.mark.parametrize("rho", [0.5, 1.0, 1.5])
def test_state_jacobian_norm_is_rho_to_the_t_at_the_zero_state(rho):
    # at h = 0, x = 0 every h_t = 0, so 1 − h_t² = 1 and ∂h_t/∂h_0 = (w_hhᵀ)^t; w_hh = ρ·Q with Q
    # orthogonal has every singular value ρ, so ‖∂h_t/∂h_0‖₂ = ρ^t: vanishing, flat, exploding
    with jax.enable_x64(True):
        q, _ = np.linalg.qr(np.random.default_rng(5).normal(size=(H, H)))
        params = {"w_xh": jnp.ones((C, H)), "w_hh": jnp.asarray(rho * q), "b": jnp.zeros(H)}
        jac, norms = bptt.rnn_state_jacobian(params, jnp.zeros(H), jnp.zeros((20, C)))
    np.testing.assert_allclose(norms, rho ** np.arange(1, 21), rtol=1e-12)
    np.testing.assert_allclose(jac[-1], np.linalg.matrix_power(rho * q.T, 20), rtol=1e-10, atol=1e-14)


def lstm_inputs(rng, batched=False, scale=0.5):
    x, h0 = sequence(rng, batched)
    return lstm_params(rng, scale), h0, jnp.asarray(rng.normal(size=h0.shape)), x


def cell_jacobian(params, h0, c0, x, gates_fn=bptt.lstm_gates):
    """The full derivative ∂c_t/∂c_0 by jax.jacfwd: (T, H, H), [t, j, i] = ∂c_t[j]/∂c_0[i]."""
    return jax.jacfwd(lambda c0: bptt.lstm_forward(params, h0, c0, x, gates_fn)[1])(c0)


@pytest.mark.torch
def test_lstm_forward_equals_torch_lstm():
    torch = pytest.importorskip("torch")
    with jax.enable_x64(True):
        params, h0, c0, x = lstm_inputs(np.random.default_rng(6), batched=True)
        h, c, gates = bptt.lstm_forward(params, h0, c0, x)
    lstm = torch.nn.LSTM(C, H, batch_first=True, dtype=torch.float64)  # gate order i, f, g, o
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(np.asarray(params["w_x"]).T))
        lstm.weight_hh_l0.copy_(torch.tensor(np.asarray(params["w_h"]).T))
        lstm.bias_ih_l0.copy_(torch.tensor(np.asarray(params["b"])))
        lstm.bias_hh_l0.zero_()
        th, (_, tc) = lstm(torch.tensor(np.asarray(x)), (torch.tensor(np.asarray(h0))[None],
                                                         torch.tensor(np.asarray(c0))[None]))
    np.testing.assert_allclose(h, th.numpy(), rtol=1e-12)
    np.testing.assert_allclose(c[:, -1], tc.numpy()[0], rtol=1e-12)
    assert gates["f"].shape == (B, T, H)


def test_without_feedback_the_forget_gate_product_is_the_whole_derivative():
    # w_h = 0: the gates see only x_t, so c_t = (Π_{s≤t} f_s) ⊙ c_0 + (terms free of c_0)
    with jax.enable_x64(True):
        params, h0, c0, x = lstm_inputs(np.random.default_rng(7))
        params = {**params, "w_h": jnp.zeros((H, 4 * H))}
        path = bptt.lstm_cell_path(params, h0, c0, x)
        path, jac = np.asarray(path), np.asarray(cell_jacobian(params, h0, c0, x))
    diagonal = np.diagonal(jac, axis1=-2, axis2=-1)  # (T, H)
    np.testing.assert_array_equal(diagonal, path)  # bit for bit, float64
    np.testing.assert_array_equal(jac - np.eye(H) * diagonal[:, None, :], 0.0)
    assert 0 < path[-1].max() < 0.5  # the product of T gates in (0, 1) decays


def test_forget_one_input_zero_copies_the_cell_state_exactly():
    # the course: forget gate 1 and input gate 0 ⇒ c_t = c_{t−1} exactly, gradients unchanged
    def copy_gates(params, h_prev, x_t):
        i, f, g, o = bptt.lstm_gates(params, h_prev, x_t)
        return jnp.zeros_like(i), jnp.ones_like(f), g, o

    with jax.enable_x64(True):
        params, h0, c0, x = lstm_inputs(np.random.default_rng(8))
        h, c, gates = bptt.lstm_forward(params, h0, c0, x, copy_gates)
        jac = cell_jacobian(params, h0, c0, x, copy_gates)
        path = bptt.lstm_cell_path(params, h0, c0, x, copy_gates)
        h, c, o, jac, path = map(np.asarray, (h, c, gates["o"], jac, path))
    np.testing.assert_array_equal(c, np.broadcast_to(c0, (T, H)))
    np.testing.assert_array_equal(jac, np.broadcast_to(np.eye(H), (T, H, H)))
    np.testing.assert_array_equal(path, 1.0)
    np.testing.assert_allclose(h, o * np.tanh(c), rtol=1e-14)  # h_t = o_t ⊙ tanh(c_0)


def test_with_feedback_the_forget_gate_product_is_only_the_direct_path():
    with jax.enable_x64(True):
        params, h0, c0, x = lstm_inputs(np.random.default_rng(9))
        path = np.asarray(bptt.lstm_cell_path(params, h0, c0, x))
        full = np.asarray(cell_jacobian(params, h0, c0, x))
        # cut the edges h_{t−1} → gates: what is left of ∂c_t/∂c_0 is the cell-state path alone
        cut = lambda p, h, x_t: bptt.lstm_gates(p, jax.lax.stop_gradient(h), x_t)  # noqa: E731
        direct = np.asarray(cell_jacobian(params, h0, c0, x, cut))
        # the paths through h add O(‖w_h‖): scale w_h by ε and the gap shrinks like ε
        gaps = []
        for eps in (1e-2, 1e-3):
            small = {**params, "w_h": eps * params["w_h"]}
            gap = np.diagonal(cell_jacobian(small, h0, c0, x), axis1=-2, axis2=-1)[-1] \
                - bptt.lstm_cell_path(small, h0, c0, x)[-1]
            gaps.append(float(np.abs(gap).max()))
    np.testing.assert_array_equal(np.diagonal(direct, axis1=-2, axis2=-1), path)
    assert np.abs(np.diagonal(full, axis1=-2, axis2=-1) - path).max() > 1e-3
    assert np.abs(full - np.eye(H) * np.diagonal(full, axis1=-2, axis2=-1)[:, None, :]).max() > 1e-3
    assert 5 < gaps[0] / gaps[1] < 20


def test_forget_gate_product_batched_is_per_sample():
    with jax.enable_x64(True):
        params, h0, c0, x = lstm_inputs(np.random.default_rng(10), batched=True)
        path = bptt.lstm_cell_path(params, h0, c0, x)
        single = [bptt.lstm_cell_path(params, h0[b], c0[b], x[b]) for b in range(B)]
        _, _, gates = bptt.lstm_forward(params, h0, c0, x)
    np.testing.assert_allclose(path, jnp.stack(single), rtol=1e-14)
    np.testing.assert_allclose(path, np.cumprod(np.asarray(gates["f"]), axis=1), rtol=1e-14)


def test_bad_inputs_raise_errors_naming_the_function():
    rnn = {"w_xh": jnp.ones((C, H)), "w_hh": jnp.ones((H, H)), "b": jnp.ones(H)}
    with pytest.raises(ValueError, match=r"rnn_forward: params must have the keys"):
        bptt.rnn_forward({"w": jnp.ones((C, H))}, jnp.zeros(H), jnp.ones((T, C)))
    with pytest.raises(ValueError, match=r"rnn_forward: params\['w_xh'\] must have shape \(5, 4\)"):
        bptt.rnn_forward(rnn, jnp.zeros(H), jnp.ones((T, 5)))
    with pytest.raises(ValueError, match=r"rnn_forward: x must be \(T, C\) or \(B, T, C\)"):
        bptt.rnn_forward(rnn, jnp.zeros(H), jnp.ones(C))
    with pytest.raises(ValueError, match=r"initial state must have shape \(2, 4\).*got \(4,\)"):
        bptt.rnn_forward(rnn, jnp.zeros(H), jnp.ones((B, T, C)))
    _, cache = bptt.rnn_forward(rnn, jnp.zeros(H), jnp.ones((T, C)))
    with pytest.raises(ValueError, match=r"rnn_backward: dL_dh must have the shape .*\(7, 4\)"):
        bptt.rnn_backward(rnn, cache, jnp.ones(H))
    lstm = {"w_x": jnp.ones((C, 4 * H)), "w_h": jnp.ones((H, 4 * H)), "b": jnp.ones(4 * H)}
    with pytest.raises(ValueError, match=r"lstm_forward: params\['w_h'\] must have shape \(4, 16\)"):
        bptt.lstm_forward({**lstm, "w_h": jnp.ones((H, H))}, jnp.zeros(H), jnp.zeros(H), jnp.ones((T, C)))
    with pytest.raises(ValueError, match=r"lstm_forward: c0 must have the shape of h0"):
        bptt.lstm_forward(lstm, jnp.zeros(H), jnp.zeros(3), jnp.ones((T, C)))


def test_worked_example_of_the_docs():
    # docs/autodiff.md, "Backpropagation through time": H = C = 1, L = h_3
    with jax.enable_x64(True):
        params = {"w_xh": jnp.array([[0.5]]), "w_hh": jnp.array([[0.9]]), "b": jnp.array([0.0])}
        x, h0 = jnp.array([[1.0], [-1.0], [2.0]]), jnp.array([0.0])
        h, cache = bptt.rnn_forward(params, h0, x)
        grads, dh0, dx = bptt.rnn_backward(params, cache, jnp.array([[0.0], [0.0], [1.0]]))
        auto = jax.grad(lambda p, h0, x: loop_rnn(p, h0, x)[-1, 0], argnums=(0, 1, 2))(params, h0, x)
        jac, _ = bptt.rnn_state_jacobian(params, h0, x)
        lstm = {"w_x": jnp.array([[0.0, 1.0, 0.5, 0.0]]), "w_h": jnp.zeros((1, 4)),
                "b": jnp.array([0.0, 1.0, 0.0, 0.0])}
        fed = {**lstm, "w_h": jnp.array([[0.0, 2.0, 0.0, 0.0]])}
        c0 = jnp.array([1.0])
        paths = [bptt.lstm_cell_path(p, h0, c0, x)[:, 0] for p in (lstm, fed)]
        fulls = [cell_jacobian(p, h0, c0, x)[:, 0, 0] for p in (lstm, fed)]
        assert max(compare_grads((grads, dh0, dx), auto).values()) < 1e-13
    np.testing.assert_allclose(h[:, 0], [0.4621, -0.0839, 0.7280], atol=5e-5)
    np.testing.assert_allclose([grads["w_hh"][0, 0], grads["w_xh"][0, 0], grads["b"][0], dh0[0]],
                               [0.1547, 0.8173, 1.1873, 0.2676], atol=5e-5)
    np.testing.assert_allclose(dx[:, 0], [0.1486, 0.2100, 0.2350], atol=5e-5)
    np.testing.assert_allclose(jac[:, 0, 0], [0.7078, 0.6325, 0.2676], atol=5e-5)
    np.testing.assert_allclose(paths[0], [0.8808, 0.4404, 0.4195], atol=5e-5)
    np.testing.assert_array_equal(fulls[0], paths[0])
    np.testing.assert_allclose(paths[1], [0.8808, 0.6086, 0.5906], atol=5e-5)
    np.testing.assert_allclose(fulls[1], [0.8808, 0.6823, 0.6701], atol=5e-5)
