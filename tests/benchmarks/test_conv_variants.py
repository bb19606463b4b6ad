"""The LeNet-5 formulations of benchmarks.conv_variants compute the same network, and the fast
shifted-sum convolution has XLA's convolution gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import conv_variants
from tests.helpers import draw_normal


def test_shifted_conv_equals_lax_conv_value_and_grads():
    x = draw_normal(jax.random.key(0), (2, 9, 9, 1))
    w = draw_normal(jax.random.key(1), (5, 5, 1, 3))
    g = draw_normal(jax.random.key(2), (2, 9, 9, 3))
    lax_conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
    # the reference value by definition: y[b,h,w,o] = Σ x_pad[b,h+i,w+j,0]·w[i,j,0,o]
    xp = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)))
    ref = sum(xp[:, i:i + 9, j:j + 9, :1] * np.asarray(w)[i, j, 0] for i in range(5) for j in range(5))
    np.testing.assert_allclose(conv_variants.shifted_conv(x, w, "SAME"), ref, rtol=1e-5, atol=1e-5)
    ours = jax.grad(lambda x, w: jnp.sum(conv_variants.shifted_conv(x, w, "SAME") * g), (0, 1))(x, w)
    theirs = jax.grad(lambda x, w: jnp.sum(lax_conv(x, w) * g), (0, 1))(x, w)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), ours, theirs)


def test_jdl_variant_agrees_with_flax_formulation_in_quick_mode():
    variants = ("conv+window", "jdl.kernels")
    result = conv_variants.run(quick=True, variants=variants, act="tanh", pool="avg")
    assert set(result["variants"]) == set(variants)
    assert max(v["max_abs_diff"] for v in result["variants"].values()) < 1e-5
