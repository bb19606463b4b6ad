"""The triplet, batch-hard triplet and NT-Xent losses: hand-computed values on tiny examples,
a PyTorch reference written here, and finite-difference gradients in float64."""

import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import contrastive

# jitted here: one compilation a call signature, not one per primitive in eager mode
C = SimpleNamespace(
    triplet_loss=jax.jit(contrastive.triplet_loss, static_argnames=("margin", "squared", "reduction")),
    batch_hard_triplet_loss=jax.jit(contrastive.batch_hard_triplet_loss,
                                    static_argnames=("margin", "squared", "reduction")),
    nt_xent=jax.jit(contrastive.nt_xent, static_argnames=("temperature", "reduction")),
    positive_pair_accuracy=jax.jit(contrastive.positive_pair_accuracy))

rng = np.random.default_rng(0)
A, P, N = (rng.normal(size=(6, 4)).astype(np.float32) for _ in range(3))
EMB = rng.normal(size=(8, 3)).astype(np.float32)
LAB = np.array([0, 0, 1, 1, 2, 2, 2, 3], np.int32)  # class 3 has no positive: not an anchor


def test_triplet_hand_computed():
    a, p = jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]])
    n = jnp.array([[0.5, 0.0]])
    # squared: 1 − 0.25 + 1 = 1.75; Euclidean: 1 − 0.5 + 1 = 1.5
    np.testing.assert_allclose(C.triplet_loss(a, p, n, margin=1.0), 1.75, rtol=1e-6)
    np.testing.assert_allclose(C.triplet_loss(a, p, n, margin=1.0, squared=False), 1.5, rtol=1e-6)
    far = jnp.array([[0.0, 2.0]])  # 1 − 4 + 1 < 0 and 1 − 2 + 1 = 0: already separated
    assert float(C.triplet_loss(a, p, far)) == 0.0 and float(C.triplet_loss(a, p, far, squared=False)) == 0.0


@pytest.mark.torch
def test_triplet_equals_torch_triplet_margin_loss():
    torch = pytest.importorskip("torch")
    ref = torch.nn.TripletMarginLoss(margin=0.7, p=2, eps=0.0)(*(torch.tensor(v) for v in (A, P, N)))
    np.testing.assert_allclose(C.triplet_loss(A, P, N, margin=0.7, squared=False), ref.item(), rtol=1e-5)
    per = torch.nn.TripletMarginLoss(margin=0.7, p=2, eps=0.0, reduction="none")(
        *(torch.tensor(v) for v in (A, P, N)))
    np.testing.assert_allclose(C.triplet_loss(A, P, N, 0.7, squared=False, reduction="none"), per.numpy(),
                               rtol=1e-5, atol=1e-6)  # float32 cancellation near the hinge


def test_triplet_squared_equals_numpy_formula():
    d = lambda u, v: np.sum((u - v) ** 2, axis=1)
    np.testing.assert_allclose(C.triplet_loss(A, P, N, 2.0), np.maximum(d(A, P) - d(A, N) + 2.0, 0).mean(), rtol=1e-5)


def _batch_hard_loops(e, y, margin, squared):
    """Hermans et al.'s definition, one anchor at a time in float64."""
    e = np.asarray(e, np.float64)
    dist = lambda i, j: np.sum((e[i] - e[j]) ** 2) if squared else np.linalg.norm(e[i] - e[j])
    losses = []
    for a in range(len(e)):
        pos = [dist(a, p) for p in range(len(e)) if p != a and y[p] == y[a]]
        neg = [dist(a, n) for n in range(len(e)) if y[n] != y[a]]
        if pos and neg:
            losses.append(max(0.0, max(pos) - min(neg) + margin))
    return np.mean(losses)


@pytest.mark.parametrize("squared", [False, True])
def test_batch_hard_equals_anchor_by_anchor_loops(squared):
    got = C.batch_hard_triplet_loss(EMB, LAB, margin=0.5, squared=squared)
    np.testing.assert_allclose(got, _batch_hard_loops(EMB, LAB, 0.5, squared), rtol=1e-5)
    per = C.batch_hard_triplet_loss(EMB, LAB, margin=0.5, squared=squared, reduction="none")
    assert per.shape == (8,) and float(per[7]) == 0.0  # the anchor without a positive


def test_batch_hard_hand_computed():
    # points on a line: class 0 at 0 and 3, class 1 at 1 and 5. Euclidean, margin 1:
    # anchor 0: hardest pos 3, nearest neg 1 → 3; anchor 3: pos 3, neg min(2, 2) → 2;
    # anchor 1: pos 4, neg 1 → 4; anchor 5: pos 4, neg 2 → 3; mean 3.
    e = jnp.array([[0.0], [3.0], [1.0], [5.0]])
    np.testing.assert_allclose(C.batch_hard_triplet_loss(e, jnp.array([0, 0, 1, 1]), margin=1.0), 3.0, rtol=1e-6)


def test_nt_xent_hand_computed():
    # z1 = z2 = (e1, e2): each view's positive has s = 1, its two negatives s = 0, so
    # ℓ = −log(e^{1/τ} / (e^{1/τ} + 2)) = log(1 + 2e^{−1/τ}) for every one of the 4 views
    e = jnp.eye(2)
    for tau in (1.0, 0.5):
        np.testing.assert_allclose(C.nt_xent(e, e, tau), math.log(1 + 2 * math.exp(-1 / tau)), rtol=1e-6)
    # scale does not matter (cosine similarity)
    np.testing.assert_allclose(C.nt_xent(3 * e, 0.5 * e, 1.0), math.log(1 + 2 * math.exp(-1)), rtol=1e-6)


def _torch_nt_xent(torch, z1, z2, tau):
    """SimCLR's loss as usually written in PyTorch: normalize, 2N×2N logits, mask the diagonal."""
    F = torch.nn.functional
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    logits = z @ z.T / tau
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(logits, target)


@pytest.mark.torch
def test_nt_xent_equals_torch():
    torch = pytest.importorskip("torch")
    for tau in (0.1, 0.5):
        ref = _torch_nt_xent(torch, torch.tensor(A), torch.tensor(P), tau).item()
        np.testing.assert_allclose(C.nt_xent(A, P, tau), ref, rtol=1e-5)


def _fd_check(f, x, eps=1e-6):
    """∇f against central differences (f(x + εe_k) − f(x − εe_k)) / 2ε, all k in one vmap."""
    g = np.asarray(jax.jit(jax.grad(f))(x))
    dx = eps * jnp.eye(x.size, dtype=x.dtype).reshape(x.size, *x.shape)  # (K, ...) one-hot steps
    fs = jax.jit(jax.vmap(f))
    num = np.asarray((fs(x[None] + dx) - fs(x[None] - dx)) / (2 * eps)).reshape(x.shape)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_gradients_equal_finite_differences_float64():
    with jax.enable_x64(True):
        z = jnp.asarray(np.concatenate([A, P]), jnp.float64)
        _fd_check(lambda z: C.nt_xent(z[:6], z[6:], 0.3), z)
        e = jnp.asarray(EMB, jnp.float64)
        _fd_check(lambda e: C.batch_hard_triplet_loss(e, jnp.asarray(LAB), 0.5), e)


def test_duplicate_points_give_finite_gradients():
    e = jnp.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [0.5, 0.1]])  # anchor 0's positive is itself
    for f in (lambda e: C.batch_hard_triplet_loss(e, jnp.array([0, 0, 1, 1])),
              lambda e: C.triplet_loss(e, e, e[::-1], squared=False)):
        assert bool(jnp.all(jnp.isfinite(jax.jit(jax.grad(f))(e))))


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="nt_xent: expected embeddings of one shape"):
        C.nt_xent(A, P[:3])
    with pytest.raises(ValueError, match="nt_xent: temperature must be > 0"):
        C.nt_xent(A, P, 0.0)
    with pytest.raises(ValueError, match="batch_hard_triplet_loss: expected embeddings"):
        C.batch_hard_triplet_loss(EMB, LAB[:3])
    with pytest.raises(ValueError, match="triplet_loss: expected embeddings"):
        C.triplet_loss(A, P, N[:, :2])


def test_positive_pair_accuracy():
    e = jnp.eye(3)
    assert float(C.positive_pair_accuracy(e, e)) == 1.0
    assert float(C.positive_pair_accuracy(e, e[jnp.array([1, 2, 0])])) < 1.0
