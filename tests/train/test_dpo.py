"""DPO: the loss against the paper's formula and a PyTorch reference, the gradient's factor β
(nothing moves at β = 0), and the pieces of the experiment (pairs, reference log-probs, KL)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import optim
from jdl.core import Module
from jdl.data.text import char_vocab
from jdl.losses import dpo_loss
from jdl.models.gpt import GPTConfig, gpt
from jdl.train import TrainState, make_step
from jdl.train.dpo import dpo_objective, log_probs, monte_carlo_kl, pair_batch, preference_pairs
from jdl.train.sft import sequence_log_probs

VOCAB = char_vocab("Q: abcd\nA0123456789-")


def test_dpo_loss_equals_the_formula_on_hand_computed_log_probs():
    # pair 1: h = 0.5·[(−1 − (−2)) − (−3 − (−2))] = 1;  pair 2: h = 0.5·[(−4 + 2) − (−1 + 3)] = −2
    pi_w, pi_l = jnp.array([-1.0, -4.0]), jnp.array([-3.0, -1.0])
    ref_w, ref_l = jnp.array([-2.0, -2.0]), jnp.array([-2.0, -3.0])
    per_pair = dpo_loss(pi_w, pi_l, ref_w, ref_l, beta=0.5, reduction="none")
    np.testing.assert_allclose(per_pair, [math.log1p(math.exp(-1)), math.log1p(math.exp(2))], rtol=1e-6)
    np.testing.assert_allclose(float(dpo_loss(pi_w, pi_l, ref_w, ref_l, beta=0.5)),
                               (math.log1p(math.exp(-1)) + math.log1p(math.exp(2))) / 2, rtol=1e-6)
    # the policy at the reference: h = 0 and ℓ = log 2 whatever β
    assert float(dpo_loss(ref_w, ref_l, ref_w, ref_l, beta=7.0)) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="dpo_loss: ref_rejected has shape"):
        dpo_loss(pi_w, pi_l, ref_w, ref_l[:1])
    with pytest.raises(ValueError, match="dpo_loss: beta must be >= 0"):
        dpo_loss(pi_w, pi_l, ref_w, ref_l, beta=-1.0)


def test_dpo_loss_and_gradients_equal_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    logps = [rng.normal(-10, 5, 16).astype(np.float32) for _ in range(4)]
    logps[0][0], logps[1][0] = 200.0, -200.0  # |h| = 0.3·400: stable (softplus), as logsigmoid
    beta = 0.3
    t = [torch.tensor(a, requires_grad=True) for a in logps]
    ref = -F.logsigmoid(beta * ((t[0] - t[2]) - (t[1] - t[3]))).mean()  # the loss of the DPO paper's code
    ref.backward()
    ours, grads = jax.value_and_grad(lambda *a: dpo_loss(*a, beta=beta), argnums=(0, 1, 2, 3))(
        *map(jnp.asarray, logps))
    np.testing.assert_allclose(float(ours), ref.item(), rtol=1e-6)
    for g, tt in zip(grads, t):
        np.testing.assert_allclose(np.asarray(g), tt.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_dpo_plus_nll_equals_a_hand_computed_value():
    """ℓ = softplus(−h) averaged + λ·mean_b −log π(y_w,b)/|y_w,b|, on a fake model whose logits
    are its params: p = (1/4, 3/4) at t = 0 and (1/2, 1/2) at t = 1 in every row."""
    z = jnp.tile(jnp.array([[0.0, math.log(3)], [0.0, 0.0]]), (4, 1, 1))  # (2B, T, V), rows w1, w2, l1, l2
    model = Module(lambda key, x: ({"z": z}, {}), lambda p, state, x, **kw: (p["z"], state), "fake", (), frozenset())
    x = np.zeros((2, 2), np.int32)
    y_w, m_w = np.array([[1, 0], [0, 0]]), np.array([[1, 1], [1, 0]], np.float32)
    y_l, m_l = np.array([[0, 1], [1, 1]]), np.array([[1, 0], [1, 1]], np.float32)
    ref_w, ref_l = np.array([-1.0, -1.5], np.float32), np.array([-2.0, -1.0], np.float32)
    # log π: y_w1 = log 3/4 + log 1/2 (2 tokens), y_w2 = log 1/4 (1 token), y_l1 = log 1/4, y_l2 = log 3/8
    pi_w, pi_l = [math.log(3 / 8), math.log(1 / 4)], [math.log(1 / 4), math.log(3 / 8)]
    beta, lam = 0.5, 0.3
    h = [beta * ((pi_w[b] - ref_w[b]) - (pi_l[b] - ref_l[b])) for b in range(2)]
    dpo = sum(math.log1p(math.exp(-hb)) for hb in h) / 2
    nll = (-pi_w[0] / 2 - pi_w[1] / 1) / 2
    batch = (x, y_w, m_w, x, y_l, m_l, ref_w, ref_l)
    loss, (_, metrics) = dpo_objective(model, beta, nll_weight=lam)({"z": z}, {}, batch, None)
    assert float(loss) == pytest.approx(dpo + lam * nll, rel=1e-6)
    assert float(metrics["nll"]) == pytest.approx(nll, rel=1e-6)
    plain, _ = dpo_objective(model, beta)({"z": z}, {}, batch, None)  # λ = 0: the DPO loss alone
    assert float(plain) == pytest.approx(dpo, rel=1e-6)
    with pytest.raises(ValueError, match="nll_weight must be >= 0"):
        dpo_objective(model, beta, nll_weight=-1.0)


@pytest.fixture(scope="module")
def setup():
    config = GPTConfig(vocab_size=VOCAB.size, context=16, num_layers=1, d_model=16, num_heads=2)
    model = gpt(config)
    params, state = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    triples = [("Q: ab\nA: ", "ba", "ab"), ("Q: 1+2\nA: ", "3", "12"), ("Q: cd\nA: ", "c-d", "cd")]
    batch = pair_batch(VOCAB, triples, length=14)
    ref_w, ref_l = (log_probs(model, params, state, *batch[i:i + 3], batch_size=2) for i in (0, 3))
    return model, params, state, (*batch, ref_w, ref_l)


def test_reference_log_probs_are_the_batched_sequence_log_probs(setup):
    model, params, state, batch = setup
    x, y, m = batch[:3]
    full = sequence_log_probs(model.apply(params, state, x)[0], y, m)
    np.testing.assert_allclose(batch[6], np.asarray(full), rtol=1e-6)  # computed in batches of 2


def test_at_the_reference_the_loss_is_log2_and_the_gradient_is_linear_in_beta(setup):
    model, params, state, batch = setup
    grad_at = jax.jit(jax.grad(lambda p, beta: dpo_objective(model, beta)(p, state, batch, None)[0]))
    grad = lambda beta: grad_at(params, jnp.float32(beta))  # β traced: one compile for every β
    loss, (_, metrics) = jax.jit(dpo_objective(model, 0.1))(params, state, batch, None)  # op by op: slow
    assert float(loss) == pytest.approx(math.log(2), abs=1e-6) and float(metrics["margin"]) == 0.0
    zero = grad(0.0)
    assert all(np.all(np.asarray(g) == 0.0) for g in jax.tree.leaves(zero))  # β = 0: exactly zero
    # ∇ℓ = −β σ(−h) ∇[log π(y_w) − log π(y_l)] with h = 0 at the reference: −β/2 · mean ∇Δ
    x_w, y_w, m_w, x_l, y_l, m_l = batch[:6]

    def delta(p):
        lp = lambda x, y, m: sequence_log_probs(model.apply(p, state, x)[0], y, m)
        return jnp.mean(lp(x_w, y_w, m_w) - lp(x_l, y_l, m_l))

    expected = jax.jit(jax.grad(delta))(params)
    for beta in (1e-3, 0.5):  # atol ∝ β: entries near 0 carry float32 rounding of the O(β·1e-3) ones
        jax.tree.map(lambda g, e: np.testing.assert_allclose(g, -beta / 2 * e, rtol=2e-4, atol=beta * 1e-6),
                     grad(beta), expected)


def test_at_beta_zero_the_policy_stays_at_the_reference_and_otherwise_moves(setup):
    model, params, state, batch = setup

    def train(beta, optimizer, steps=3):
        p = jax.tree.map(jnp.array, params)
        ts = TrainState(p, state, optimizer.init(p), jnp.zeros([], jnp.int32), jax.random.key(0))
        step = make_step(dpo_objective(model, beta), optimizer)
        for _ in range(steps):
            ts, metrics = step(ts, batch)
        return ts.params, metrics

    still, _ = train(0.0, optim.adam(1e-2))  # Adam's m/√v would magnify any non-zero gradient
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), still, params)
    moved, metrics = train(0.5, optim.adam(1e-2))
    assert float(metrics["margin"]) > 0 and float(metrics["reward_accuracy"]) == 1.0


def test_preference_pairs_and_monte_carlo_kl():
    prompts = ["p1", "p2", "p3"]
    samples = [["a", "b", "a"], ["c", "c"], ["d", "e", "f"]]
    correct = [[True, False, True], [True, True], [False, True, False]]
    pairs = preference_pairs(prompts, samples, correct, per_prompt=2, seed=0)
    # p1: one distinct right and one distinct wrong answer, so one pair; p2: nothing wrong, no pair;
    # p3: "e" against "d" or "f", two pairs
    assert pairs[0] == ("p1", "a", "b") and len(pairs) == 3
    assert [p[:2] for p in pairs[1:]] == [("p3", "e")] * 2 and {p[2] for p in pairs[1:]} <= {"d", "f"}
    kl, se = monte_carlo_kl(np.array([-1.0, -2.0, -3.0]), np.array([-2.0, -2.0, -5.0]))
    assert kl == pytest.approx(1.0) and se == pytest.approx(1.0 / math.sqrt(3))
