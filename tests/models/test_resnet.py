from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jdl
from jdl import models
from jdl.nn import batchnorm_params, conv_params
from tests.models.shapes import count, numpy_init
from tests.helpers import draw_normal


def identity_norm():
    """A stand-in norm layer with no parameters (the tests also run with the real BatchNorm)."""
    return lambda x: x


def bn_channels_resnet18():
    # stem 64; stage 1: 4 BN of 64; stages 2-4: 4 BN + 1 projection BN of the stage width
    return 64 + 4 * 64 + 5 * 128 + 5 * 256 + 5 * 512


def test_resnet18_param_count_known_value():
    n, y = count(models.resnet18(norm=identity_norm), (1, 224, 224, 3))
    assert y == (1, 1000)
    assert n + batchnorm_params(bn_channels_resnet18())[0] == 11_689_512
    bn = pytest.importorskip("jdl.nn.norm")
    assert count(models.resnet18(norm=bn.BatchNorm), (1, 224, 224, 3))[0] == 11_689_512  # torchvision's count


def test_resnet34_and_50_param_counts():
    bn = pytest.importorskip("jdl.nn.norm")
    assert count(models.resnet34(norm=bn.BatchNorm), (1, 224, 224, 3)) == (21_797_672, (1, 1000))
    assert count(models.resnet50(norm=bn.BatchNorm), (1, 224, 224, 3)) == (25_557_032, (1, 1000))


@pytest.mark.parametrize("depth, with_bn", [(20, 272_474), (32, 466_906), (56, 855_770)])
def test_cifar_resnets_with_batchnorm(depth, with_bn):
    """He et al.'s 0.27M/0.46M/0.85M use zero-padding shortcuts (option A); the two 1x1
    projections with their BatchNorms (option B) add 16·32 + 64 + 32·64 + 128 = 2,752."""
    assert count(models.cifar_resnet(depth), (1, 32, 32, 3))[0] == with_bn
    assert round((with_bn - 2_752) / 1e6, 2) == {20: 0.27, 32: 0.46, 56: 0.85}[depth]


@pytest.mark.parametrize("depth, million", [(20, 0.27), (32, 0.46), (56, 0.85)])
def test_cifar_resnets_sizes(depth, million):
    n, y = count(models.cifar_resnet(depth, norm=identity_norm), (2, 32, 32, 3))
    k = (depth - 2) // 6
    convs = (conv_params(3, 3, 16, False) + (2 * k) * conv_params(3, 16, 16, False)
             + conv_params(3, 16, 32, False) + (2 * k - 1) * conv_params(3, 32, 32, False) + conv_params(1, 16, 32, False)
             + conv_params(3, 32, 64, False) + (2 * k - 1) * conv_params(3, 64, 64, False) + conv_params(1, 32, 64, False)
             + 64 * 10 + 10)
    assert n == convs and y == (2, 10)
    assert abs((n + 2 * (16 + 16 * 2 * k + 32 * (2 * k + 1) + 64 * (2 * k + 1))) / 1e6 - million) < 0.01


def test_plain_counterpart_has_no_skip_and_same_depth(key):
    x = draw_normal(key, (2, 8, 8, 1))
    res, plain = models.cifar_resnet(8, norm=identity_norm), models.cifar_resnet(8, norm=identity_norm, shortcut=False)
    p_res, s_res = numpy_init(res, x.shape)
    p_plain, s_plain = numpy_init(plain, x.shape)
    # same convolutions except the two 1x1 projections
    assert jdl.param_count(p_res) - jdl.param_count(p_plain) == conv_params(1, 16, 32, False) + conv_params(1, 32, 64, False)

    def zero_branches(p):  # zero F in every block: layer{i}/block{j}/branch/… (the shortcut stays)
        return jax.tree_util.tree_map_with_path(
            lambda path, v: jnp.zeros_like(v) if "'branch'" in jax.tree_util.keystr(path) else v, p)

    y_res, _ = res.apply(zero_branches(p_res), s_res, x)
    y_plain, _ = plain.apply(zero_branches(p_plain), s_plain, x)
    bias = p_plain["fc"]["b"]
    np.testing.assert_allclose(y_plain, np.broadcast_to(bias, (2, 10)), atol=1e-6)  # only the bias is left
    assert float(jnp.std(y_res)) > 1e-3  # the identity and projection paths still carry the input


def test_residual_block_gradient_keeps_the_identity_path(key):
    """dL/dx = dL/dy (1 + F'(x)): with F's last conv zeroed, a block is relu(x), so for positive x
    the gradient is exactly the identity; the plain block's gradient is zero."""
    block = models.basic_block(4, norm=identity_norm)
    plain = models.basic_block(4, norm=identity_norm, shortcut=False)
    x = jnp.abs(draw_normal(key, (1, 5, 5, 4))) + 0.1
    for m, expected in [(block, jnp.ones_like(x)), (plain, jnp.zeros_like(x))]:
        p, s = numpy_init(m, x.shape)
        p = jax.tree_util.tree_map_with_path(
            lambda path, v: jnp.zeros_like(v) if "'conv2'" in jax.tree_util.keystr(path) else v, p)
        g = jax.grad(lambda x: jnp.sum(m.apply(p, s, x)[0]))(x)
        np.testing.assert_allclose(g, expected, atol=1e-6)


def test_bottleneck_block_and_projection(key):
    x = jnp.ones((2, 8, 8, 16))
    block = models.bottleneck_block(8, stride=2, projection=True, norm=identity_norm)
    params, _ = numpy_init(block, x.shape)
    y, _ = block.apply(params, {}, x)
    assert y.shape == (2, 4, 4, 32)
    expected = (conv_params(1, 16, 8, False) + conv_params(3, 8, 8, False) + conv_params(1, 8, 32, False)
                + conv_params(1, 16, 32, False))
    assert jdl.param_count(params) == expected
    with pytest.raises(ValueError, match="residual: the branch maps .* pass shortcut=a projection"):
        jax.eval_shape(models.basic_block(8, stride=2, norm=identity_norm).init, key, x)


def test_resnet_bad_arguments():
    with pytest.raises(ValueError, match=r"cifar_resnet: depth must be 6n \+ 2"):
        models.cifar_resnet(21)
    with pytest.raises(ValueError, match="resnet: block must be 'basic' or 'bottleneck'"):
        models.resnet((1,), (8,), block="wide")


def test_resnet_params_are_keyed_by_stage_names():
    p, s = jax.eval_shape(models.resnet((1, 2), (4, 8), n_classes=3).init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32))
    branch = ["bn1/beta", "bn1/gamma", "bn2/beta", "bn2/gamma", "conv1/w", "conv2/w"]
    shortcut = ["shortcut/bn/beta", "shortcut/bn/gamma", "shortcut/conv/w"]
    assert jdl.paths.leaf_paths(p) == (
        ["bn1/beta", "bn1/gamma", "conv1/w", "fc/b", "fc/w"]
        + [f"layer1/block0/{k}" for k in [f"branch/{b}" for b in branch] + shortcut]  # 64 → 4 channels
        + [f"layer2/block0/{k}" for k in [f"branch/{b}" for b in branch] + shortcut]
        + [f"layer2/block1/branch/{b}" for b in branch])
    assert s["layer2"]["block0"]["shortcut"]["bn"]["var"].shape == (8,) and p["conv1"]["w"].shape == (7, 7, 3, 64)
    assert set(p["layer1"]["block0"]["branch"]) == {"conv1", "bn1", "relu1", "conv2", "bn2"}


@pytest.mark.parametrize("block, shortcut", [("basic", True), ("bottleneck", False)])
def test_named_resnet_equals_positional_given_the_same_weights(key, block, shortcut):
    """The named layout is a rekeying: the positional model's params moved to the named keys by
    ``named_from_positional`` give the same logits and the same updated BatchNorm state."""
    sizes, widths = (1, 2), (4, 8)
    kw = dict(n_classes=3, block=block, stem="cifar", shortcut=shortcut)
    pos, nam = models.resnet(sizes, widths, keys="positional", **kw), models.resnet(sizes, widths, **kw)
    x = draw_normal(key, (2, 8, 8, 3))
    p, s = pos.init(jax.random.key(1), x)
    rng = np.random.default_rng(0)
    p = jax.tree.map(lambda v: v + 0.1 * rng.normal(size=v.shape).astype(np.float32), p)  # BN γ ≠ 1, β ≠ 0
    assert "2_relu" in p and any(k.endswith("_serial") for k in p)  # the layout jdl used before
    pn, sn = models.named_from_positional(p, sizes), models.named_from_positional(s, sizes)
    assert jax.tree.structure(pn) == jax.tree.structure(jax.eval_shape(nam.init, jax.random.key(1), x)[0])
    for train in (False, True):
        y_pos, s_pos = jax.jit(partial(pos.apply, train=train))(p, s, x)
        y_nam, s_nam = jax.jit(partial(nam.apply, train=train))(pn, sn, x)
        np.testing.assert_array_equal(y_nam, y_pos)
        jax.tree.map(np.testing.assert_array_equal, s_nam, models.named_from_positional(s_pos, sizes))
    with pytest.raises(ValueError, match="named_from_positional: expected a stem, 5 blocks"):
        models.named_from_positional(p, (2, 3))
    with pytest.raises(ValueError, match="resnet: keys must be 'named' or 'positional'"):
        models.resnet(sizes, widths, keys="torch")
