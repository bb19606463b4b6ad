"""jdl.kernels.attention_native (``attend(impl='native')``): the C++ attention equals the plain
softmax(QKᵀ/√d + M)V of jdl.nn (itself tested against flax and PyTorch) to float32 rounding, in
values and in the gradients of q, k and v — causal (square and with n_k > n_q), full, sizes that
are not multiples of the kernel's 16-wide tiles, large logits — and a GPT with
``attention='native'`` equals the plain one. Skipped, with the reason, on machines that cannot
build it (no g++, no AVX2)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.nn.attention import attend


pytestmark = pytest.mark.usefixtures("native_kernels")  # tests/kernels/conftest.py


def rand(seed, *shape, scale=1.0):
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def close(got, want, rtol=2e-6, shared=False):
    """|got − want| ≤ rtol · max|want| elementwise, for every pair of leaves; ``shared``: the max
    over all leaves (a saturated softmax makes ∂q exactly 0 in the plain form, while the
    recomputed form leaves rounding of the size of the other gradients' terms)."""
    scale = max(float(jnp.max(jnp.abs(w))) for w in jax.tree.leaves(want))
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        atol = rtol * (scale if shared else float(jnp.max(jnp.abs(w))))
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=atol)


@pytest.mark.parametrize("lead, n_q, n_k, d, causal, scale", [
    ((2, 3), 37, 37, 20, True, 1.0),     # square causal, nothing a multiple of 16
    ((2, 3), 37, 45, 20, True, 1.0),     # causal with 8 earlier keys (bottom-right aligned)
    ((3,), 19, 33, 16, False, 1.0),      # full attention, one leading axis
    ((2, 1, 2), 32, 32, 64, True, 1.0),  # three leading axes, tile-aligned sizes
    ((2, 2), 24, 24, 8, True, 30.0),     # logits in the hundreds: the softmax's max shift
])
def test_equals_plain_attention_in_values_and_gradients(lead, n_q, n_k, d, causal, scale):
    q, k, v = rand(0, *lead, n_q, d, scale=scale), rand(1, *lead, n_k, d, scale=scale), rand(2, *lead, n_k, d)
    g = rand(3, *lead, n_q, d)
    run = lambda impl: jax.jit(lambda q, k, v: attend(q, k, v, causal=causal, impl=impl))
    close(run("native")(q, k, v), run("plain")(q, k, v))
    grad = lambda impl: jax.jit(jax.grad(lambda q, k, v: jnp.sum(attend(q, k, v, causal=causal, impl=impl) * g),
                                         argnums=(0, 1, 2)))
    close(grad("native")(q, k, v), grad("plain")(q, k, v), rtol=1e-5, shared=scale > 1)


def test_gpt_with_native_attention_equals_plain():
    """Loss and every parameter's gradient of a 2-block GPT (d 32, 4 heads, context 24)."""
    from jdl.losses import softmax_cross_entropy
    from jdl.models.gpt import GPTConfig, gpt

    ids = jnp.asarray(np.random.default_rng(4).integers(0, 11, (3, 25)))
    models = {a: gpt(GPTConfig(vocab_size=11, context=24, num_layers=2, d_model=32, num_heads=4, attention=a))
              for a in ("plain", "native")}
    params, _ = models["plain"].init(jax.random.key(0), ids[:, :-1])

    def loss(attention):
        f = lambda p: softmax_cross_entropy(models[attention].apply(p, {}, ids[:, :-1])[0], ids[:, 1:])
        return jax.jit(jax.value_and_grad(f))

    close(loss("native")(params), loss("plain")(params), rtol=1e-5, shared=True)  # ∂b_k is 0 up to rounding


def test_refusals_name_what_to_use_instead():
    q = rand(5, 2, 8, 16)
    with pytest.raises(ValueError, match="takes causal=True or nothing, not a mask or a bias"):
        attend(q, q, q, jnp.ones((8, 8), bool), impl="native")
    with pytest.raises(ValueError, match="needs d_v = d_k, got d_k=16, d_v=8"):
        attend(q, q, q[..., :8], impl="native")
    with pytest.raises(ValueError, match="float32 only"):
        attend(q.astype(jnp.bfloat16), q.astype(jnp.bfloat16), q.astype(jnp.bfloat16), impl="native")
    with pytest.raises(ValueError, match="causal needs n_k ≥ n_q, got n_q=8, n_k=4"):
        attend(q, q[:, :4], q[:, :4], causal=True, impl="native")
